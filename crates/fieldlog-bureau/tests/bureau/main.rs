//! The bureau over HTTP: a real server on a loopback port per test, requests built by hand.
//!
//! - [`enroll`]: codes for devices (once, before they expire, for fresh actors).
//! - [`sync`]: rounds between devices through the bureau (cursors, resends, pages, scope,
//!   registry imports reaching devices).
//! - [`refusals`]: every refusal gets its status and reason and leaves the bureau as it was.
//! - [`blobs`]: photo files uploaded by a real device store, resumed, checked and scoped.
//! - [`relay`]: teammates' signed changes carried by another device; the limits on one
//!   change (size, compression, record layout); a poisoned bureau purged.
//! - [`hostile`]: requests damaged at every layer are refused, never a crash.
//! - [`connections`]: slow, idle and too many clients (timeouts, the connection cap, rate
//!   limits, the shutdown deadline) and uploads that stall or reach into another's partial.
//! - [`cli`]: the `fieldlog-bureau` binary: admin commands, then `serve` until SIGTERM.
//! - [`migrate`]: an embedded bureau copied into PostgreSQL + S3 and served from there.
//! - [`operations`]: what an operator watches: `/readyz`, `/metrics`, logs.
//! - [`postgres`]: the PostgreSQL backend's cursor rule under writers in parallel.
//! - [`running`]: the bureau as a service: SIGTERM with a round in flight, backup and
//!   restore under traffic, TLS with its certificate reloaded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

mod blobs;
mod cli;
mod connections;
mod documents;
mod enroll;
mod hostile;
mod migrate;
mod operations;
mod postgres;
mod refusals;
mod relay;
mod running;
mod support;
mod sync;
