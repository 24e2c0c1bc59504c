//! The device store's integration tests: one binary, a module per concern.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod answers;
mod appends;
mod bundles;
mod convergence;
mod courses;
mod decisions;
mod desk;
mod photos;
mod records;
mod registry;
mod saves;
mod support;
