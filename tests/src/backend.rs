//! Which bureau backend a test suite runs on. `cargo xtask test` runs the bureau's contract
//! suite twice: on the embedded default (SQLite file + photo folder), then with
//! [`BACKEND_ENV`]`=postgres` on PostgreSQL ([`crate::postgres`], a database of its own per
//! bureau in a cluster shared by the test process) + an S3-compatible server
//! ([`crate::s3`], one per bureau). Asked for PostgreSQL, a test never skips: a missing
//! server fails it.

use crate::postgres::PgCluster;
use crate::s3::S3Server;

/// `embedded` (or unset) or `postgres`.
pub const BACKEND_ENV: &str = "FIELDLOG_BUREAU_TEST_BACKEND";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `bureau.sqlite3` and `blobs/` in the data directory.
    Embedded,
    /// PostgreSQL for the records, an S3 bucket for the photo files.
    PostgresS3,
}

impl Backend {
    /// The backend [`BACKEND_ENV`] names; panics on an unknown name.
    pub fn from_env() -> Backend {
        match std::env::var(BACKEND_ENV).as_deref() {
            Err(_) | Ok("" | "embedded") => Backend::Embedded,
            Ok("postgres") => Backend::PostgresS3,
            Ok(other) => panic!("{BACKEND_ENV}={other}: expected `embedded` or `postgres`"),
        }
    }

    /// A new empty database in the process's shared cluster: its URL.
    pub fn fresh_database() -> String {
        PgCluster::shared_or_skip("(a PostgreSQL bureau)")
            .unwrap_or_else(|| {
                panic!(
                    "{BACKEND_ENV}=postgres needs {} (cargo xtask test sets it)",
                    crate::postgres::BIN_ENV
                )
            })
            .create_database()
    }

    /// An S3-compatible server of its own.
    pub fn s3_server() -> S3Server {
        S3Server::start_or_skip("(a bureau keeping photos in S3)").unwrap_or_else(|| {
            panic!(
                "{BACKEND_ENV}=postgres needs {} (cargo xtask test sets it)",
                crate::s3::MOTO_ENV
            )
        })
    }
}
