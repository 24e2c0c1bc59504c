//! `cargo xtask bench bureau`: the bureau in production. 1,000 devices (`--devices`), each
//! holding 100 new visits (`--visits`) and one small photo, sync at once with the real
//! `fieldlog-bureau` binary on loopback, next to the same changes written by a plain batched
//! SQL insert on the bureau's own engine (the ceiling).
//!
//! **The devices are a protocol-level simulation, run in this one process.** Each is a real
//! `fieldlog_core::Store` in its own data dir, so its visits are the app's: saved one by one
//! through `Store::save_visit` (the editor's save: one signed Automerge change per visit, the
//! photo staged with `Store::stage_photo` and attached to the first), and its sync is core's
//! own client (`fieldlog_core::sync::sync`: postcard + zstd rounds over HTTP, then the
//! resumable photo uploads). What is not real is the fleet: 1,000 phones are threads here,
//! `--concurrency` of them (default 128) syncing at once, and their stores live on tmpfs
//! (`/dev/shm`), because 1,000 phones' flash is not the bureau's disk: a device's own
//! `fsync` must not queue behind the bureau's.
//!
//! Setup (not timed): the bureau's data dir gets a region, the demo registry, one volunteer
//! team per `--team-size` devices (default 1, so a sync only uploads: a device with
//! teammates also downloads their visits, and applying those is work for this process, not
//! for the bureau) and a one-time code per device, all through the binary's admin commands
//! with the backend's flags (so a database backend gets them too). Then `serve` starts on a
//! free loopback port, each device enrolls with its code and syncs once (it receives its
//! district's registry, which a visit needs) and saves its visits.
//!
//! Timed: every device syncs until it is synced (nothing waiting to send, photo files
//! confirmed). Each sync round is timed as the device sees it, from the start of the round
//! (building the request) to the answer stored; a failed sync counts as an error and is
//! retried. Throughput is visits over the wall time of the whole fleet's syncs. The bureau's
//! peak memory is its `VmHWM` over the timed part (reset through `/proc/PID/clear_refs`
//! after setup), read before it stops. Afterwards the bureau's own figures must show every
//! visit and every photo file.
//!
//! Ceiling: each device's own changes (document, scope, hash, device, bytes, no signature,
//! as the bureau stores a device's own change) written by a plain batched insert into a
//! fresh table of the bureau's `changes` shape (columns, unique hash, both indexes) on the
//! same engine, one transaction per 1,000 rows, sequence numbers given by the writer (one
//! writer, so no counter row). Embedded: a file opened with the bureau's pragmas (WAL,
//! `synchronous=FULL`), a prepared insert per row. PostgreSQL: `COPY … FROM STDIN BINARY` in
//! a database of its own in the bureau's cluster (and, for reference, the same rows as one
//! `INSERT … SELECT FROM unnest(…)` a batch, the statement the bureau itself appends with, in
//! a third database). After a run the bench checks that shape against the bureau's own.
//! For reference it also times the same changes only parsed and merged into in-memory
//! Automerge documents on one core, nothing stored: the least any bureau that merges
//! changes (rather than storing opaque bytes) must do.
//!
//! Backends (`--backend embedded|postgres|both`, default both, one row each in the table):
//! - `embedded`: one SQLite file and a folder of photos in the bureau's data dir.
//! - `postgres`: PostgreSQL + S3. A throwaway cluster (`fieldlog_tests::postgres::PgCluster`,
//!   programs from `FIELDLOG_POSTGRES_BIN`) run durably here (`fsync=on`, which the test
//!   fixture turns off; `synchronous_commit` at its default, on, as SQLite's
//!   `synchronous=FULL`), and `moto_server` (`FIELDLOG_MOTO_SERVER`) for the bucket; every
//!   bureau command gets `--database postgres://… --blobs s3://fieldlog-photos/bench
//!   --s3-endpoint http://…` and `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`. PostgreSQL
//!   and moto are processes of their own: the peak RSS is the bureau's alone.
//!   `cargo xtask bench bureau` installs both when missing and sets the variables.
//!
//! Flags: `--devices N` `--visits N` `--concurrency N` `--team-size N` `--backend NAME`,
//! `--bureau-flag FLAG` (repeatable, added to every bureau command), `--pg-statements`
//! (PostgreSQL: load `pg_stat_statements` and print the statements that took the most time
//! over the timed part), `--bureau-log FILTER` (the bureau's `FIELDLOG_LOG`, default `warn`).

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark report"
)]

use fieldlog_core::{Options, PhotoToAttach, Store, VisitSave};
use fieldlog_domain::VisitInput;
use fieldlog_tests::bureau::{Served, admin_with};
use fieldlog_tests::postgres::PgCluster;
use fieldlog_tests::s3::S3Server;
use rusqlite::{Connection, params};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The region every team works in (the demo registry's districts).
const DISTRICTS: [&str; 5] = ["南山区", "青溪县", "石门县", "临江区", "白云县"];
/// Rows per transaction of the plain insert.
const CEILING_BATCH: usize = 1_000;
/// Attempts at one device's sync before it counts as never synced.
const ATTEMPTS: u32 = 20;
/// The bureau's limits this bench lifts, and why. Nothing else is changed: connection cap,
/// timeouts and the per-device rate are the bureau's defaults.
const RAISED_LIMITS: [&str; 2] = ["--enroll-rate", "1000000"];
const RAISED_WHY: &str = "every device enrolls from 127.0.0.1 during setup; the default \
     is 60 enrollments a minute per address";

/// Where the bureau keeps its data, as its binary is told with flags, and the plain insert
/// on the same engine that is its ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// One SQLite file and a folder of photos in the data dir: the binary's default.
    Embedded,
    /// PostgreSQL for the records, an S3 bucket for the photo files.
    Postgres,
}

impl Backend {
    /// The backends `name` asks for, in the order they run.
    fn parse(name: &str) -> Vec<Backend> {
        match name {
            "embedded" | "sqlite" => vec![Backend::Embedded],
            "postgres" | "pg" => vec![Backend::Postgres],
            "both" => vec![Backend::Embedded, Backend::Postgres],
            other => panic!("unknown backend `{other}` (known: embedded, postgres, both)"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Postgres => "postgres+s3",
        }
    }

    /// Starts the servers the backend needs besides the bureau.
    fn start(self, statements: bool) -> Engine {
        match self {
            Backend::Embedded => Engine::Embedded,
            Backend::Postgres => {
                let bin = std::env::var_os(fieldlog_tests::postgres::BIN_ENV)
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        panic!(
                            "{} names PostgreSQL's programs (cargo xtask bench bureau sets it)",
                            fieldlog_tests::postgres::BIN_ENV
                        )
                    });
                let moto = std::env::var_os(fieldlog_tests::s3::MOTO_ENV)
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        panic!(
                            "{} names moto_server (cargo xtask bench bureau sets it)",
                            fieldlog_tests::s3::MOTO_ENV
                        )
                    });
                let mut settings = PG_SETTINGS.to_vec();
                if statements {
                    settings.push(("shared_preload_libraries", "pg_stat_statements"));
                }
                let cluster = PgCluster::with_settings(&bin, &settings).unwrap();
                let bureau_db = cluster.create_database();
                if statements {
                    let name = database_name(&bureau_db);
                    cluster
                        .execute(name, "CREATE EXTENSION pg_stat_statements")
                        .unwrap();
                }
                let s3 = S3Server::start(&moto, fieldlog_tests::s3::Credentials::AnyTaken).unwrap();
                Engine::Postgres {
                    cluster: Box::new(cluster),
                    s3: Box::new(s3),
                    bureau_db,
                    statements,
                }
            }
        }
    }
}

/// The cluster's settings for the bench over the test fixture's: durable commits, as the
/// embedded file's `synchronous=FULL`.
const PG_SETTINGS: [(&str, &str); 1] = [("fsync", "on")];
/// The bucket's prefix for the bureau's photo files.
const S3_PREFIX: &str = "bench";
/// Credentials moto takes (it takes any).
const S3_CREDENTIALS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "fieldlog-bench"),
    ("AWS_SECRET_ACCESS_KEY", "fieldlog-bench-secret"),
];

/// A backend's servers, running while the bench uses them.
enum Engine {
    Embedded,
    Postgres {
        cluster: Box<PgCluster>,
        s3: Box<S3Server>,
        /// The bureau's database.
        bureau_db: String,
        /// Whether `pg_stat_statements` is loaded.
        statements: bool,
    },
}

fn database_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

impl Engine {
    /// Flags every bureau command gets (admin commands and `serve`).
    fn flags(&self) -> Vec<String> {
        match self {
            Engine::Embedded => Vec::new(),
            Engine::Postgres { s3, bureau_db, .. } => vec![
                "--database".into(),
                bureau_db.clone(),
                "--blobs".into(),
                format!("s3://{}/{S3_PREFIX}", s3.bucket),
                "--s3-endpoint".into(),
                s3.endpoint.clone(),
            ],
        }
    }

    /// Environment every bureau command gets.
    fn env(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            Engine::Embedded => &[],
            Engine::Postgres { .. } => &S3_CREDENTIALS,
        }
    }

    /// The plain inserts into scratch stores of this engine (under `scratch` for a file):
    /// the ceiling first, then any shown for reference.
    fn ceilings(&self, scratch: &Path) -> Vec<Box<dyn PlainInsert>> {
        match self {
            Engine::Embedded => vec![Box::new(SqliteInsert::create(
                &scratch.join("plain.sqlite3"),
            ))],
            Engine::Postgres { cluster, .. } => vec![
                Box::new(PgInsert::create(cluster.create_database(), PgWay::Copy)),
                Box::new(PgInsert::create(cluster.create_database(), PgWay::Unnest)),
            ],
        }
    }

    /// The bureau's `changes` shape against the ceiling's, and what each holds from devices.
    fn check_shape(&self, bureau_dir: &Path, scratch: &Path, ceiling: &dyn PlainInsert) -> String {
        match self {
            Engine::Embedded => check_shape(
                &bureau_dir.join(fieldlog_bureau::DB_FILE),
                &scratch.join("plain.sqlite3"),
            ),
            Engine::Postgres { bureau_db, .. } => {
                check_pg_shape(bureau_db, ceiling.url().expect("a database's URL"))
            }
        }
    }

    /// Starts counting statements anew, when `pg_stat_statements` is loaded.
    fn reset_statements(&self) {
        if let Engine::Postgres {
            bureau_db,
            statements: true,
            ..
        } = self
        {
            PgCluster::connect(bureau_db)
                .unwrap()
                .batch_execute("SELECT pg_stat_statements_reset()")
                .unwrap();
        }
    }

    /// The bureau database's statements that took the most time since the reset.
    fn top_statements(&self) -> Vec<String> {
        let Engine::Postgres {
            bureau_db,
            statements: true,
            ..
        } = self
        else {
            return Vec::new();
        };
        let mut client = PgCluster::connect(bureau_db).unwrap();
        let total: f64 = client
            .query_one(
                "SELECT coalesce(sum(total_exec_time), 0)::float8 FROM pg_stat_statements
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[],
            )
            .unwrap()
            .get(0);
        let mut lines = vec![format!(
            "pg_stat_statements over the timed part: {:.1} s of statement time in the bureau's \
             database; the most:",
            total / 1e3
        )];
        for row in client
            .query(
                "SELECT calls, total_exec_time, mean_exec_time, rows,
                        left(regexp_replace(query, '\\s+', ' ', 'g'), 110)
                 FROM pg_stat_statements
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                 ORDER BY total_exec_time DESC LIMIT 12",
                &[],
            )
            .unwrap()
        {
            let (calls, total, mean, rows, query): (i64, f64, f64, i64, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
            lines.push(format!(
                "  {:>8.1} s {:>8} calls {:>8.2} ms each {:>9} rows  {query}",
                total / 1e3,
                grouped(calls as f64),
                mean,
                grouped(rows as f64)
            ));
        }
        lines
    }

    /// What the backend's servers are, for the report.
    fn describe(&self) -> Option<String> {
        match self {
            Engine::Embedded => None,
            Engine::Postgres { cluster, s3, .. } => {
                let mut client = PgCluster::connect(&cluster.url("postgres")).unwrap();
                let show = |client: &mut postgres::Client, name: &str| -> String {
                    client
                        .query_one(&format!("SHOW {name}"), &[])
                        .unwrap()
                        .get(0)
                };
                let settings: Vec<String> = [
                    "server_version",
                    "fsync",
                    "synchronous_commit",
                    "shared_buffers",
                    "max_connections",
                ]
                .iter()
                .map(|name| format!("{name}={}", show(&mut client, name)))
                .collect();
                Some(format!(
                    "PostgreSQL cluster in {} ({}); photo bucket s3://{}/{S3_PREFIX} on \
                     moto_server at {}",
                    cluster.dir().display(),
                    settings.join(" "),
                    s3.bucket,
                    s3.endpoint
                ))
            }
        }
    }
}

/// One row of the bureau's change log, as it stores a device's own change.
struct ChangeRow {
    doc_id: String,
    scope_key: String,
    hash: [u8; 32],
    device_id: String,
    bytes: Vec<u8>,
}

/// The ceiling: change rows written the plain way on the bureau's engine.
trait PlainInsert {
    /// The engine and how it writes, for the report.
    fn describe(&self) -> String;
    /// Inserts `rows` in one transaction, committed durably.
    fn insert_batch(&mut self, rows: &[ChangeRow]);
    /// The database written to, for one on a server.
    fn url(&self) -> Option<&str> {
        None
    }
}

/// The bureau's `changes` table as its migrations leave it (`MIGRATIONS` in
/// `crates/fieldlog-bureau/src/sqlite.rs`: created in the first, `signature` added in the
/// fourth), with both indexes. Checked against the bureau's file after an embedded run.
const CHANGES_TABLE: &str = "
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    device_id TEXT,
    bytes BLOB NOT NULL,
    signature BLOB
);
CREATE INDEX changes_by_scope ON changes (scope_key, seq, device_id);
CREATE INDEX changes_by_doc ON changes (doc_id, seq);
";

/// SQLite opened as the bureau opens its file (`fieldlog_core::db::open_with`: WAL,
/// `synchronous=FULL`), a prepared insert per row, one `BEGIN IMMEDIATE … COMMIT` per batch.
struct SqliteInsert {
    conn: Connection,
}

impl SqliteInsert {
    fn create(path: &Path) -> SqliteInsert {
        SqliteInsert {
            conn: fieldlog_core::db::open_with(path, &[CHANGES_TABLE]).unwrap(),
        }
    }
}

impl PlainInsert for SqliteInsert {
    fn describe(&self) -> String {
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = self
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        format!(
            "SQLite {} journal_mode={mode} synchronous={}, {CEILING_BATCH} rows a transaction",
            rusqlite::version(),
            if sync == 2 { "FULL" } else { "other" }
        )
    }

    fn insert_batch(&mut self, rows: &[ChangeRow]) {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO changes (doc_id, scope_key, hash, device_id, bytes, signature)
                     VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
                )
                .unwrap();
            for row in rows {
                insert
                    .execute(params![
                        row.doc_id,
                        row.scope_key,
                        &row.hash[..],
                        row.device_id,
                        row.bytes
                    ])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
}

/// The bureau's PostgreSQL `changes` table (`MIGRATIONS` in
/// `crates/fieldlog-bureau/src/postgres.rs`), with both indexes. Checked against the bureau's
/// database after a PostgreSQL run.
const PG_CHANGES_TABLE: &str = "
CREATE TABLE changes (
    seq BIGINT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    hash BYTEA NOT NULL UNIQUE,
    device_id TEXT,
    bytes BYTEA NOT NULL,
    signature BYTEA
);
CREATE INDEX changes_by_scope ON changes (scope_key, seq);
CREATE INDEX changes_by_doc ON changes (doc_id, seq);
";

/// How [`PgInsert`] writes a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PgWay {
    /// `COPY changes (…) FROM STDIN BINARY`: PostgreSQL's bulk load.
    Copy,
    /// One `INSERT … SELECT … FROM unnest($1, …)` of arrays, the bureau's own statement.
    Unnest,
}

/// A database of its own in the bureau's cluster, one transaction per batch, sequence
/// numbers counted by this one writer.
struct PgInsert {
    url: String,
    client: postgres::Client,
    way: PgWay,
    next_seq: i64,
}

impl PgInsert {
    fn create(url: String, way: PgWay) -> PgInsert {
        let mut client = PgCluster::connect(&url).unwrap();
        client.batch_execute(PG_CHANGES_TABLE).unwrap();
        PgInsert {
            url,
            client,
            way,
            next_seq: 1,
        }
    }
}

impl PlainInsert for PgInsert {
    fn describe(&self) -> String {
        let way = match self.way {
            PgWay::Copy => "COPY changes (…) FROM STDIN BINARY",
            PgWay::Unnest => "INSERT INTO changes … SELECT … FROM unnest(7 arrays)",
        };
        format!(
            "PostgreSQL, {way}, {CEILING_BATCH} rows a transaction, in database {}",
            database_name(&self.url)
        )
    }

    fn url(&self) -> Option<&str> {
        Some(&self.url)
    }

    fn insert_batch(&mut self, rows: &[ChangeRow]) {
        use postgres::types::Type;
        let first = self.next_seq;
        self.next_seq += rows.len() as i64;
        let mut tx = self.client.transaction().unwrap();
        match self.way {
            PgWay::Copy => {
                let sink = tx
                    .copy_in(
                        "COPY changes (seq, doc_id, scope_key, hash, device_id, bytes, signature)
                         FROM STDIN BINARY",
                    )
                    .unwrap();
                let types = [
                    Type::INT8,
                    Type::TEXT,
                    Type::TEXT,
                    Type::BYTEA,
                    Type::TEXT,
                    Type::BYTEA,
                    Type::BYTEA,
                ];
                let mut writer = postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
                let none: Option<&[u8]> = None;
                for (seq, row) in (first..).zip(rows) {
                    writer
                        .write(&[
                            &seq,
                            &row.doc_id,
                            &row.scope_key,
                            &&row.hash[..],
                            &row.device_id,
                            &row.bytes,
                            &none,
                        ])
                        .unwrap();
                }
                writer.finish().unwrap();
            }
            PgWay::Unnest => {
                let seqs: Vec<i64> = (first..first + rows.len() as i64).collect();
                let docs: Vec<&str> = rows.iter().map(|r| r.doc_id.as_str()).collect();
                let scopes: Vec<&str> = rows.iter().map(|r| r.scope_key.as_str()).collect();
                let hashes: Vec<&[u8]> = rows.iter().map(|r| &r.hash[..]).collect();
                let devices: Vec<&str> = rows.iter().map(|r| r.device_id.as_str()).collect();
                let bytes: Vec<&[u8]> = rows.iter().map(|r| r.bytes.as_slice()).collect();
                tx.execute(
                    "INSERT INTO changes (seq, doc_id, scope_key, hash, device_id, bytes, signature)
                     SELECT s, d, k, h, v, b, NULL
                     FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BYTEA[], $5::TEXT[],
                                 $6::BYTEA[]) AS t (s, d, k, h, v, b)",
                    &[&seqs, &docs, &scopes, &hashes, &devices, &bytes],
                )
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
}

/// The same changes parsed and applied to in-memory Automerge documents (one per document,
/// each device's changes in order), on one thread, nothing stored: the least a bureau that
/// merges them does. Timed.
fn merge_only(rows: &[ChangeRow]) -> Duration {
    let mut by_doc: BTreeMap<&str, Vec<&[u8]>> = BTreeMap::new();
    for row in rows {
        by_doc.entry(&row.doc_id).or_default().push(&row.bytes);
    }
    let start = Instant::now();
    for changes in by_doc.values() {
        let parsed = changes
            .iter()
            .map(|bytes| automerge::Change::from_bytes(bytes.to_vec()).unwrap());
        let mut doc = automerge::Automerge::new();
        doc.apply_changes(parsed).unwrap();
    }
    start.elapsed()
}

/// The plain insert of `rows`, timed.
fn ceiling(plain: &mut dyn PlainInsert, rows: &[ChangeRow]) -> Duration {
    let start = Instant::now();
    for batch in rows.chunks(CEILING_BATCH) {
        plain.insert_batch(batch);
    }
    start.elapsed()
}

struct Args {
    devices: usize,
    visits: usize,
    concurrency: usize,
    team_size: usize,
    backends: Vec<Backend>,
    bureau_flags: Vec<String>,
    /// PostgreSQL: load `pg_stat_statements` and print the costliest statements.
    statements: bool,
    /// The bureau's `FIELDLOG_LOG`.
    bureau_log: String,
}

impl Args {
    fn parse() -> Args {
        let mut args = Args {
            devices: 1_000,
            visits: 100,
            concurrency: 128,
            team_size: 1,
            backends: Backend::parse("both"),
            bureau_flags: Vec::new(),
            statements: false,
            bureau_log: "warn".into(),
        };
        // `cargo bench` adds `--bench`.
        let mut given = std::env::args().skip(1).filter(|a| a != "--bench");
        while let Some(flag) = given.next() {
            let mut value = || {
                given
                    .next()
                    .unwrap_or_else(|| panic!("{flag} needs a value"))
            };
            let mut number = || {
                let v = value();
                v.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .unwrap_or_else(|| panic!("{flag} takes a positive number, not {v:?}"))
            };
            match flag.as_str() {
                "--devices" => args.devices = number(),
                "--visits" => args.visits = number(),
                "--concurrency" => args.concurrency = number(),
                "--team-size" => args.team_size = number(),
                "--backend" => args.backends = Backend::parse(&value()),
                "--bureau-flag" => args.bureau_flags.push(value()),
                "--bureau-log" => args.bureau_log = value(),
                "--pg-statements" => args.statements = true,
                other => panic!(
                    "unknown flag {other}; known: --devices N --visits N --concurrency N \
                     --team-size N --backend embedded|postgres|both --bureau-flag FLAG \
                     --bureau-log FILTER --pg-statements"
                ),
            }
        }
        args
    }
}

fn release_bin(var: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{var} names a release binary (cargo xtask bench bureau sets it)")
    })
}

fn registry_csv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/demo-registry.csv")
}

/// The registry's school names by district.
fn schools_by_district() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(registry_csv()).unwrap();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let mut cells = line.split(',');
        if let (Some(name), Some(district)) = (cells.next(), cells.next()) {
            out.entry(district.to_string())
                .or_default()
                .push(name.to_string());
        }
    }
    out
}

/// One simulated device: where its store lives, its team and district, its code.
struct Sim {
    dir: PathBuf,
    name: String,
    team: String,
    district: &'static str,
    code: String,
}

/// A small PNG (320×240, a few KB), different for each device.
fn photo(device: usize) -> Vec<u8> {
    let shift = (device % 256) as u32;
    let tone = (device / 256 * 40 % 256) as u8;
    let image = image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([((x + shift) % 256) as u8, (y % 256) as u8, tone])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

const TOPICS: [&str; 5] = [
    "水的三态",
    "植物的光合作用",
    "简单电路",
    "星空与四季",
    "声音的传播",
];
const ACTIVITIES: [&str; 4] = ["lecture", "experiment_show", "class_session", "hands_on"];

/// The `n`-th visit a device saves, at one of its district's schools.
fn visit_input(schools: &[String], n: usize, today: chrono::NaiveDate) -> VisitInput {
    let date = today - chrono::Days::new((n % 20) as u64);
    serde_json::from_value(serde_json::json!({
        "school": schools[n % schools.len()],
        "date": date.to_string(),
        "activities": [ACTIVITIES[n % ACTIVITIES.len()]],
        "topic": TOPICS[n % TOPICS.len()],
        "audience": {"students": 20 + (n % 90), "teachers": 1 + n % 4},
        "donations": {"books": n % 12},
    }))
    .unwrap()
}

/// Enrolls a device, gives it its registry (a first sync), saves its visits and photo, and
/// returns its own changes as the bureau will store them.
fn prepare(
    sim: &Sim,
    url: &str,
    schools: &[String],
    visits: usize,
    index: usize,
) -> Vec<ChangeRow> {
    let mut store = Store::init(&sim.dir, &sim.name, &sim.team, Options::default()).unwrap();
    fieldlog_core::sync::enroll(&mut store, url, &sim.code).unwrap();
    fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
    let today = chrono::Local::now().date_naive();
    let staged = store.stage_photo(&photo(index)).unwrap();
    for n in 0..visits {
        let attach = if n == 0 {
            vec![PhotoToAttach {
                token: staged.token.clone(),
                caption: "实验现场".into(),
                consent: true,
            }]
        } else {
            Vec::new()
        };
        let save = VisitSave {
            id: None,
            input: visit_input(schools, n, today),
            attach,
            remove: Vec::new(),
        };
        store.save_visit(&save, today).unwrap();
    }
    let device_id = store.enrollment().unwrap().unwrap().device_id;
    let actor = store.device().actor.clone();
    let mut rows = Vec::new();
    for (doc_id, doc) in store.documents().unwrap() {
        let fieldlog_core::DocId::Ledger { .. } = doc_id else {
            continue;
        };
        let scope_key = fieldlog_bureau::scope::scope_key(&doc_id);
        for change in doc.get_changes(&[]) {
            if change.actor_id().to_hex_string() != actor {
                continue;
            }
            rows.push(ChangeRow {
                doc_id: doc_id.to_string(),
                scope_key: scope_key.clone(),
                hash: change.hash().0,
                device_id: device_id.clone(),
                bytes: change.raw_bytes().to_vec(),
            });
        }
    }
    rows
}

/// What one device's timed sync came to.
#[derive(Default)]
struct Outcome {
    /// Each answered sync round, as the device saw it.
    rounds: Vec<Duration>,
    /// Its photo files' uploads, after its last round.
    photos: Duration,
    /// Failed syncs (each retried), by what failed.
    errors: Vec<String>,
    synced: bool,
}

/// Syncs one device until nothing waits, retrying a failed sync.
fn sync_device(dir: &Path) -> Outcome {
    let mut store = Store::open(dir, Options::default()).unwrap();
    let mut outcome = Outcome::default();
    for attempt in 1..=ATTEMPTS {
        let mut mark = Instant::now();
        let mut rounds_seen = 0;
        let result = fieldlog_core::sync::sync(&mut store, |summary| {
            if summary.rounds > rounds_seen {
                rounds_seen = summary.rounds;
                outcome.rounds.push(mark.elapsed());
                mark = Instant::now();
            }
        });
        match result {
            Ok(_) => {
                outcome.photos += mark.elapsed();
                let status = store.sync_status().unwrap();
                if status.waiting_changes == 0 && status.waiting_photos.files == 0 {
                    outcome.synced = true;
                    return outcome;
                }
                outcome.errors.push(format!(
                    "unfinished: {} changes, {} photo files still waiting",
                    status.waiting_changes, status.waiting_photos.files
                ));
            }
            Err(error) => outcome.errors.push(match &error {
                fieldlog_core::Error::Refused { reason, status, .. } => {
                    format!("refused {status} {reason:?}")
                }
                other => format!("{}: {other}", other.kind()),
            }),
        }
        std::thread::sleep(Duration::from_millis(100 * u64::from(attempt.min(10))));
    }
    outcome
}

/// CPU seconds (user + system) a process has used so far, from `/proc/PID/stat` (in
/// clock ticks of 1/100 s, Linux's `USER_HZ`).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at `state`, field 3.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// A `/proc/PID/status` line's value in KiB (`VmHWM`, `VmRSS`).
fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The process's open-file limit (soft), from `/proc/PID/limits`.
fn open_file_limit(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// Thousands separated by commas.
fn grouped(n: f64) -> String {
    let digits = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The bureau's own counts, from its metrics listener.
#[derive(Default)]
struct Scrape {
    /// The sync round time histogram: (upper bound in seconds, rounds at most that long).
    buckets: Vec<(f64, f64)>,
    /// Answers other than 2xx, by their labels.
    not_ok: BTreeMap<String, f64>,
    turned_away: f64,
}

impl Scrape {
    fn take(addr: SocketAddr) -> Scrape {
        let text = ureq::get(&format!("http://{addr}/metrics"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let mut scrape = Scrape::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            if let Some(le) = name
                .strip_prefix("fieldlog_bureau_sync_round_duration_seconds_bucket{le=\"")
                .and_then(|rest| rest.strip_suffix("\"}"))
            {
                scrape
                    .buckets
                    .push((le.parse().unwrap_or(f64::INFINITY), value));
            } else if let Some(labels) = name.strip_prefix("fieldlog_bureau_http_requests_total")
                && !labels.contains("status=\"2")
            {
                *scrape.not_ok.entry(labels.to_string()).or_default() += value;
            } else if name.starts_with("fieldlog_bureau_connections_turned_away_total") {
                scrape.turned_away += value;
            }
        }
        scrape
    }

    /// What happened between `before` and `self`, in a line.
    fn since(&self, before: &Scrape) -> String {
        let buckets: Vec<(f64, f64)> = self
            .buckets
            .iter()
            .map(|(bound, n)| {
                let earlier = before
                    .buckets
                    .iter()
                    .find(|(b, _)| b == bound)
                    .map_or(0.0, |(_, n)| *n);
                (*bound, n - earlier)
            })
            .collect();
        let total = buckets.last().map_or(0.0, |(_, n)| *n);
        let bound_for = |p: f64| {
            buckets
                .iter()
                .find(|(_, n)| *n >= p * total)
                .map_or_else(|| "?".to_string(), |(b, _)| format!("≤ {b} s"))
        };
        let not_ok: Vec<String> = self
            .not_ok
            .iter()
            .filter_map(|(labels, n)| {
                let n = n - before.not_ok.get(labels).copied().unwrap_or(0.0);
                (n > 0.0).then(|| format!("{n} × {labels}"))
            })
            .collect();
        format!(
            "the bureau's own sync round histogram over the timed part ({total} rounds): p50 {}, \
             p99 {}; answers other than 2xx: {}; connections turned away: {}",
            bound_for(0.5),
            bound_for(0.99),
            if not_ok.is_empty() {
                "none".to_string()
            } else {
                not_ok.join(", ")
            },
            self.turned_away - before.turned_away
        )
    }
}

/// With the embedded backend: the bureau's `changes` columns and indexes, and what it holds
/// from devices, next to the ceiling's.
fn check_shape(bureau_db: &Path, plain_db: &Path) -> String {
    let shape = |path: &Path| {
        let conn =
            Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let columns: Vec<(String, String, bool)> = conn
            .prepare("SELECT name, type, \"notnull\" FROM pragma_table_info('changes')")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let indexes: Vec<String> = conn
            .prepare(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'changes' AND type = 'index'
                 AND sql IS NOT NULL ORDER BY name",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let (rows, bytes): (i64, i64) = conn
            .query_row(
                "SELECT count(*), coalesce(sum(length(bytes)), 0) FROM changes
                 WHERE device_id IS NOT NULL",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        ((columns, indexes), rows, bytes)
    };
    let (bureau_shape, bureau_rows, bureau_bytes) = shape(bureau_db);
    let (plain_shape, plain_rows, plain_bytes) = shape(plain_db);
    assert_eq!(
        bureau_shape, plain_shape,
        "the ceiling's `changes` table no longer matches the bureau's: update CHANGES_TABLE"
    );
    format!(
        "same `changes` columns and indexes as the bureau's file; devices' rows: bureau \
         {bureau_rows} ({} KB), plain insert {plain_rows} ({} KB)",
        grouped(bureau_bytes as f64 / 1e3),
        grouped(plain_bytes as f64 / 1e3)
    )
}

/// With the PostgreSQL backend: the bureau's `changes` columns and indexes, and what it
/// holds from devices, next to the ceiling's database.
fn check_pg_shape(bureau_db: &str, plain_db: &str) -> String {
    let shape = |url: &str| {
        let mut client = PgCluster::connect(url).unwrap();
        let columns: Vec<(String, String, String)> = client
            .query(
                "SELECT column_name::TEXT, data_type::TEXT, is_nullable::TEXT
                 FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name = 'changes'
                 ORDER BY ordinal_position",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let indexes: Vec<String> = client
            .query(
                "SELECT indexdef FROM pg_indexes
                 WHERE schemaname = 'public' AND tablename = 'changes' ORDER BY indexname",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let row = client
            .query_one(
                "SELECT count(*), coalesce(sum(octet_length(bytes)), 0)::BIGINT FROM changes
                 WHERE device_id IS NOT NULL",
                &[],
            )
            .unwrap();
        let (rows, bytes): (i64, i64) = (row.get(0), row.get(1));
        ((columns, indexes), rows, bytes)
    };
    let (bureau_shape, bureau_rows, bureau_bytes) = shape(bureau_db);
    let (plain_shape, plain_rows, plain_bytes) = shape(plain_db);
    assert_eq!(
        bureau_shape, plain_shape,
        "the ceiling's `changes` table no longer matches the bureau's: update PG_CHANGES_TABLE"
    );
    format!(
        "same `changes` columns and indexes as the bureau's database; devices' rows: bureau \
         {bureau_rows} ({} KB), plain insert {plain_rows} ({} KB)",
        grouped(bureau_bytes as f64 / 1e3),
        grouped(plain_bytes as f64 / 1e3)
    )
}

/// One backend's run: its row of the table, the targets, and what else it showed.
struct Run {
    backend: Backend,
    cells: Vec<String>,
    ratio: f64,
    p99: Duration,
    errors: usize,
    unsynced: usize,
    details: Vec<String>,
    total: usize,
    held_visits: usize,
    devices: usize,
    held_photos: usize,
}

const HEADER: [&str; 11] = [
    "backend",
    "devices",
    "visits",
    "visits/s",
    "plain insert visits/s",
    "ratio",
    "round p50",
    "round p99",
    "errors",
    "bureau peak RSS",
    "photos",
];

fn main() {
    let args = Args::parse();
    let bin = release_bin("FIELDLOG_BUREAU_BIN");
    println!("bureau load bench — {}", fieldlog_tests::machine());
    println!(
        "{} devices × {} visits and 1 photo each, {} syncing at once, teams of {}, backends: {}",
        args.devices,
        args.visits,
        args.concurrency,
        args.team_size,
        args.backends
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let runs: Vec<Run> = args
        .backends
        .iter()
        .map(|backend| {
            println!("==> {} …", backend.name());
            let done = run(&args, &bin, *backend);
            println!(
                "    {}: {} visits/s, ratio {:.3}×",
                backend.name(),
                done.cells[3],
                done.ratio
            );
            done
        })
        .collect();

    println!();
    let widths: Vec<usize> = HEADER
        .iter()
        .enumerate()
        .map(|(i, h)| {
            runs.iter()
                .map(|r| r.cells[i].chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &[&str]| {
        let padded: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}", w = *w))
            .collect();
        println!("  {}", padded.join("  "));
    };
    line(&HEADER);
    for run in &runs {
        line(&run.cells.iter().map(String::as_str).collect::<Vec<_>>());
    }
    let verdict = |ok: bool| if ok { "met" } else { "missed" };
    for run in &runs {
        println!();
        println!(
            "  {} — targets: ratio ≥ 0.5× {}, round p99 < 2 s {}, errors = 0 {}",
            run.backend.name(),
            verdict(run.ratio >= 0.5),
            verdict(run.p99 < Duration::from_secs(2)),
            verdict(run.errors == 0 && run.unsynced == 0)
        );
        for detail in &run.details {
            println!("  {detail}");
        }
    }
    for run in &runs {
        assert_eq!(
            run.held_visits,
            run.total,
            "{}: the bureau holds every visit synced",
            run.backend.name()
        );
        assert_eq!(
            run.held_photos,
            run.devices,
            "{}: the bureau holds every device's photo files",
            run.backend.name()
        );
    }
}

/// Sets up a bureau on `backend`, runs the fleet against it, then the ceiling.
fn run(args: &Args, bin: &Path, backend: Backend) -> Run {
    let Args {
        devices,
        visits,
        concurrency,
        team_size,
        ..
    } = *args;
    let engine = backend.start(args.statements);
    let mut details = Vec::new();

    // Setup, through the bureau's admin commands.
    let setup = Instant::now();
    let data = tempfile::Builder::new()
        .prefix("fieldlog-bench-bureau")
        .tempdir()
        .unwrap();
    let shm = Path::new("/dev/shm");
    let device_root = if shm.is_dir() {
        tempfile::Builder::new()
            .prefix("fieldlog-bench-devices")
            .tempdir_in(shm)
            .unwrap()
    } else {
        tempfile::Builder::new()
            .prefix("fieldlog-bench-devices")
            .tempdir()
            .unwrap()
    };
    let mut flags: Vec<String> = engine.flags();
    flags.extend(args.bureau_flags.iter().cloned());
    let env = engine.env();
    let bureau_dir = data.path().join("bureau");
    let bureau = |command: &[&str]| {
        let mut all: Vec<&str> = flags.iter().map(String::as_str).collect();
        all.extend_from_slice(command);
        admin_with(bin, &bureau_dir, env, &all)
    };
    bureau(&[
        "init",
        "--coordinator",
        "王协调",
        "--districts",
        &DISTRICTS.join(","),
    ]);
    bureau(&["school", "import", registry_csv().to_str().unwrap()]);
    let teams = devices.div_ceil(team_size);
    for t in 0..teams {
        bureau(&[
            "team",
            "add",
            "--team",
            &format!("team-{t}"),
            "--kind",
            "volunteer",
            "--districts",
            DISTRICTS[t % DISTRICTS.len()],
        ]);
    }
    let sims: Vec<Sim> = (0..devices)
        .map(|i| {
            let t = i / team_size;
            let team = format!("team-{t}");
            let member = format!("志愿者{i}");
            let json = bureau(&["--json", "enroll", "--team", &team, "--member", &member]);
            let code: serde_json::Value = serde_json::from_str(&json).unwrap();
            Sim {
                dir: device_root.path().join(format!("d{i}")),
                name: format!("设备{i}"),
                team,
                district: DISTRICTS[t % DISTRICTS.len()],
                code: code["code"].as_str().unwrap().to_string(),
            }
        })
        .collect();
    let admin_took = setup.elapsed();

    let mut serve_flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    serve_flags.extend(RAISED_LIMITS);
    serve_flags.extend(["--metrics-listen", "127.0.0.1:0"]);
    let mut serve_env: Vec<(&str, &str)> = env.to_vec();
    serve_env.push(("FIELDLOG_LOG", &args.bureau_log));
    let Served {
        mut child,
        addr,
        metrics,
    } = Served::start_with(bin, &bureau_dir, None, &serve_flags, &serve_env);
    let pid = child.id();
    let url = format!("http://{addr}");
    let schools = schools_by_district();

    // Devices enroll, take their registry and save their visits, a few at a time.
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<(usize, Vec<ChangeRow>)>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get() * 2);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(sim) = sims.get(i) else { break };
                    let own = prepare(sim, &url, &schools[sim.district], visits, i);
                    rows.lock().unwrap().push((i, own));
                }
            });
        }
    });
    let mut rows = rows.into_inner().unwrap();
    rows.sort_by_key(|(i, _)| *i);
    let rows: Vec<ChangeRow> = rows.into_iter().flat_map(|(_, r)| r).collect();
    assert_eq!(
        rows.len(),
        devices * visits,
        "one change per saved visit (the device's name rides in its first)"
    );
    let setup_took = setup.elapsed();

    // The timed part.
    println!(
        "    setup done in {:.1} s; timing the fleet's syncs (bureau pid {pid})",
        setup_took.as_secs_f64()
    );
    engine.reset_statements();
    let hwm_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
    let rss_before = status_kib(pid, "VmRSS");
    let bureau_cpu = cpu_seconds(&pid.to_string());
    let own_cpu = cpu_seconds("self");
    let scraped = metrics.map(Scrape::take);
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Outcome>> = Mutex::new(Vec::with_capacity(devices));
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..concurrency.min(devices) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(sim) = sims.get(i) else { break };
                    let outcome = sync_device(&sim.dir);
                    outcomes.lock().unwrap().push(outcome);
                }
            });
        }
    });
    let took = start.elapsed();
    let bureau_cpu = cpu_seconds(&pid.to_string()) - bureau_cpu;
    let own_cpu = cpu_seconds("self") - own_cpu;
    let peak_kib = status_kib(pid, "VmHWM");
    let open_files = open_file_limit(pid);
    let seen = metrics
        .zip(scraped)
        .map(|(addr, before)| Scrape::take(addr).since(&before));
    let statements = engine.top_statements();
    let _ = child.kill();
    let _ = child.wait();

    // What the bureau holds now, through its own commands.
    let report: serde_json::Value = serde_json::from_str(&bureau(&["--json", "report"])).unwrap();
    let held_visits = report["visits"].as_u64().unwrap_or(0);
    let photos: serde_json::Value = serde_json::from_str(&bureau(&["--json", "photos"])).unwrap();
    let photos = photos.as_array().cloned().unwrap_or_default();
    let held_photos = photos
        .iter()
        .filter(|p| p["thumbnail_held"] == true && p["display_held"] == true)
        .count();
    let photo_bytes: u64 = photos
        .iter()
        .map(|p| {
            p["photo"]["thumbnail_bytes"].as_u64().unwrap_or(0)
                + p["photo"]["display_bytes"].as_u64().unwrap_or(0)
        })
        .sum();

    // The ceiling, on the same disk as the bureau's data dir (or in the same cluster), and
    // any plain insert shown for reference.
    let mut plains = engine.ceilings(data.path());
    let plain_took: Vec<Duration> = plains
        .iter_mut()
        .map(|plain| ceiling(plain.as_mut(), &rows))
        .collect();
    let shape = engine.check_shape(&bureau_dir, data.path(), plains[0].as_ref());
    let merge_took = merge_only(&rows);

    let outcomes = outcomes.into_inner().unwrap();
    let mut rounds: Vec<Duration> = outcomes.iter().flat_map(|o| o.rounds.clone()).collect();
    rounds.sort();
    let mut uploads: Vec<Duration> = outcomes.iter().map(|o| o.photos).collect();
    uploads.sort();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for e in outcomes.iter().flat_map(|o| &o.errors) {
        *errors.entry(e.clone()).or_default() += 1;
    }
    let error_count: usize = errors.values().sum();
    let unsynced = outcomes.iter().filter(|o| !o.synced).count();
    let total = devices * visits;
    let rate = total as f64 / took.as_secs_f64();
    let plain_rate = total as f64 / plain_took[0].as_secs_f64();
    let ratio = rate / plain_rate;
    let (p50, p99) = (percentile(&rounds, 0.50), percentile(&rounds, 0.99));

    let cells = vec![
        backend.name().to_string(),
        grouped(devices as f64),
        grouped(total as f64),
        grouped(rate),
        grouped(plain_rate),
        format!("{ratio:.3}×"),
        ms(p50),
        ms(p99),
        error_count.to_string(),
        format!("{:.1} MiB", peak_kib as f64 / 1024.0),
        format!("{held_photos}/{devices}"),
    ];
    details.push(format!(
        "timed: {total} visits in {:.2} s; {} sync rounds (p90 {}, max {}); photo uploads \
         after the last round, per device: p50 {}, p99 {}",
        took.as_secs_f64(),
        rounds.len(),
        ms(percentile(&rounds, 0.90)),
        ms(rounds.last().copied().unwrap_or_default()),
        ms(percentile(&uploads, 0.50)),
        ms(percentile(&uploads, 0.99)),
    ));
    let merge_rate = total as f64 / merge_took.as_secs_f64();
    details.push(format!(
        "reference: the same changes only parsed and merged into in-memory Automerge \
         documents, nothing stored, on one core: {} visits/s ({:.3}× the plain insert; the \
         bureau reached {:.2}× of it)",
        grouped(merge_rate),
        merge_rate / plain_rate,
        rate / merge_rate,
    ));
    details.push(format!(
        "CPU over the timed part: bureau {bureau_cpu:.1} s, the simulated devices {own_cpu:.1} s \
         (this process), of {:.1} s × {} cores{}",
        took.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if backend == Backend::Postgres {
            " (PostgreSQL and moto_server use the rest)"
        } else {
            ""
        }
    ));
    details.push(format!(
        "bureau peak RSS: VmHWM {} the timed part (RSS {:.1} MiB when it began)",
        if hwm_reset {
            "over"
        } else {
            "since start (clear_refs refused), including"
        },
        rss_before as f64 / 1024.0
    ));
    if let Some(seen) = seen {
        details.push(seen);
    }
    details.push(format!(
        "held at the bureau afterwards: {held_visits} visits (of {total}), {held_photos} \
         photos with both files ({} KB of files)",
        grouped(photo_bytes as f64 / 1e3)
    ));
    if !errors.is_empty() || unsynced > 0 {
        details.push(format!(
            "errors (failed syncs, each retried): {unsynced} devices never synced"
        ));
        for (what, n) in &errors {
            details.push(format!("  {n} × {what}"));
        }
    }
    for (i, (plain, plain_took)) in plains.iter().zip(&plain_took).enumerate() {
        details.push(format!(
            "plain insert{}: {} in {:.3} s ({} visits/s); {}",
            if i == 0 {
                " (the ceiling)"
            } else {
                ", for reference"
            },
            grouped(total as f64),
            plain_took.as_secs_f64(),
            grouped(total as f64 / plain_took.as_secs_f64()),
            plain.describe()
        ));
    }
    details.push(shape);
    if let Some(servers) = engine.describe() {
        details.push(servers);
    }
    details.extend(statements);
    details.push(format!(
        "bureau flags: {} {} ({RAISED_WHY}); --metrics-listen 127.0.0.1:0; connection cap \
         and timeouts at their defaults (cap {} from its open-file limit {})",
        flags.join(" "),
        RAISED_LIMITS.join(" "),
        open_files.map_or_else(
            || "?".into(),
            |n| fieldlog_bureau::connection_cap(n).to_string()
        ),
        open_files.map_or_else(|| "?".into(), |n| n.to_string()),
    ));
    details.push(format!(
        "setup (not timed): admin commands {:.1} s, enrollment + first sync + visits {:.1} s",
        admin_took.as_secs_f64(),
        (setup_took - admin_took).as_secs_f64()
    ));
    Run {
        backend,
        cells,
        ratio,
        p99,
        errors: error_count,
        unsynced,
        details,
        total,
        held_visits: held_visits as usize,
        devices,
        held_photos,
    }
}
