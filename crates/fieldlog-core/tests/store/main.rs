//! The device store's integration tests: one binary, a module per concern.

mod bundles;
mod convergence;
mod records;
mod support;
