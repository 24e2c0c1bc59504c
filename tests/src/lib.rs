//! Test support shared by the end-to-end tests.
//!
//! - [`proxy`]: a loopback TCP proxy that counts bytes on the wire, cuts a connection after
//!   a chosen number of bytes in either direction, or refuses connections (offline).
//! - [`bureau`]: a real `fieldlog-bureau` process behind a proxy, and enrolled devices.
//! - [`fuzz`]: the fuzz targets' bodies (`fuzz/`), their shared fixtures and seed corpus.

#![allow(clippy::unwrap_used, reason = "test fixtures fail loudly")]

pub mod bureau;
pub mod fuzz;
pub mod proxy;
