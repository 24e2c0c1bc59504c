//! Test support shared by the end-to-end tests.
//!
//! - [`proxy`]: a loopback TCP proxy that counts bytes on the wire, cuts a connection after
//!   a chosen number of bytes in either direction, or refuses connections (offline).
//! - [`backend`]: which bureau backend a suite runs on (`FIELDLOG_BUREAU_TEST_BACKEND`).
//! - [`bureau`]: a real `fieldlog-bureau` process behind a proxy, and enrolled devices.
//! - [`fuzz`]: the fuzz targets' bodies (`fuzz/`), their shared fixtures and seed corpus.
//! - [`postgres`]: a throwaway PostgreSQL cluster on a loopback port (`PgCluster`), its own or
//!   one shared by the test process, that can be restarted under load.

#![allow(clippy::unwrap_used, reason = "test fixtures fail loudly")]

pub mod backend;
pub mod bureau;
pub mod fuzz;
pub mod libreoffice;
pub mod postgres;
pub mod proxy;
pub mod region;
pub mod s3;

/// The machine a benchmark ran on: CPU model and cores.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}
