//! A `fieldlog-bureau serve` process for tests and benchmarks, and enrolled devices.
//!
//! A [`Bureau`] runs on the backend [`Backend::from_env`] names: its data directory alone
//! (`bureau.sqlite3` and `blobs/`), or, with `FIELDLOG_BUREAU_TEST_BACKEND=postgres`, a
//! database of its own in the test process's PostgreSQL cluster and a bucket on an S3 server
//! of its own. Every run of the binary (admin commands, `serve`, a restart after a kill)
//! names them. A test that looks behind the bureau's back does it through
//! [`Bureau::integers`] and [`Bureau::complete_blob`], which read either.

use crate::backend::Backend;
use crate::proxy::Proxy;
use crate::s3::S3Server;
use fieldlog_core::{Options, Store, VisitFilter};
use fieldlog_domain::VisitInput;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use tempfile::TempDir;

const DISTRICTS: &str = "南山区,青溪县,石门县,临江区,白云县";

/// Where a fixture bureau keeps its complete photo files in its bucket (PostgreSQL + S3).
pub const S3_PREFIX: &str = "bureau/photos";

/// A `fieldlog-bureau serve` process with its data dir, behind a proxy.
#[derive(Debug)]
pub struct Bureau {
    bin: PathBuf,
    pub dir: TempDir,
    child: Option<Child>,
    pub proxy: Proxy,
    address_space: Option<u64>,
    storage: Storage,
}

/// Where a fixture bureau keeps its records and its complete photo files.
#[derive(Debug)]
enum Storage {
    /// In its data directory: `bureau.sqlite3` and `blobs/`.
    Embedded,
    /// A database of its own in the test process's shared cluster, and a bucket on an S3
    /// server of its own (stopped with the bureau).
    PostgresS3 { database: String, s3: S3Server },
}

impl Storage {
    /// New and empty on `backend`; panics when its servers are missing.
    fn new(backend: Backend) -> Storage {
        match backend {
            Backend::Embedded => Storage::Embedded,
            Backend::PostgresS3 => Storage::PostgresS3 {
                database: Backend::fresh_database(),
                s3: Backend::s3_server(),
            },
        }
    }

    /// The flags that name it, for every run of the binary.
    fn flags(&self) -> Vec<String> {
        match self {
            Storage::Embedded => Vec::new(),
            Storage::PostgresS3 { database, s3 } => {
                let settings = s3.settings(S3_PREFIX);
                vec![
                    "--database".into(),
                    database.clone(),
                    "--blobs".into(),
                    settings.url(),
                    "--s3-endpoint".into(),
                    s3.endpoint.clone(),
                    "--s3-region".into(),
                    settings.region,
                ]
            }
        }
    }

    /// The environment it needs: the bucket's credentials.
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Storage::Embedded => Vec::new(),
            Storage::PostgresS3 { s3, .. } => {
                let settings = s3.settings(S3_PREFIX);
                vec![
                    ("AWS_ACCESS_KEY_ID", settings.access_key_id),
                    ("AWS_SECRET_ACCESS_KEY", settings.secret_access_key),
                ]
            }
        }
    }

    /// `fieldlog-bureau --data-dir DIR <its flags> <args>`, its stdout.
    fn admin(&self, bin: &Path, dir: &Path, args: &[&str]) -> String {
        let flags = self.flags();
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut all: Vec<&str> = flags.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        admin_with(bin, dir, &env, &all)
    }

    /// `serve` on port 0 with its flags (under `prlimit --as` when capped).
    fn serve(&self, bin: &Path, dir: &Path, address_space: Option<u64>) -> (Child, SocketAddr) {
        let mut flags = self.flags();
        flags.extend(TEST_LIMITS.iter().map(|f| f.to_string()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let served = Served::start_with(bin, dir, address_space, &flags, &env);
        (served.child, served.addr)
    }
}

impl Bureau {
    /// A bureau with the demo registry, a caravan team for 南山区 and 青溪县, and a team
    /// for 石门县, serving on a free loopback port.
    pub fn start(bin: &Path, registry: &Path) -> Bureau {
        Bureau::start_capped(bin, registry, None)
    }

    /// The same, its server process limited to `address_space` bytes of memory (`prlimit
    /// --as`), so an allocation bomb makes it fail rather than slow the machine down.
    pub fn start_capped(bin: &Path, registry: &Path, address_space: Option<u64>) -> Bureau {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(Backend::from_env());
        let bureau = |args: &[&str]| storage.admin(bin, dir.path(), args);
        bureau(&["init", "--coordinator", "王协调", "--districts", DISTRICTS]);
        bureau(&[
            "team",
            "add",
            "--team",
            "caravan-1",
            "--kind",
            "caravan",
            "--districts",
            "南山区,青溪县",
        ]);
        bureau(&[
            "team",
            "add",
            "--team",
            "shimen",
            "--kind",
            "volunteer",
            "--districts",
            "石门县",
        ]);
        Bureau::launch(bin, dir, storage, registry, address_space)
    }

    /// A bureau whose region is `districts` (comma-separated), holding `registry`, with no
    /// team but the coordinators'.
    pub fn start_region(bin: &Path, registry: &Path, districts: &str) -> Bureau {
        Bureau::start_region_on(bin, registry, districts, Backend::from_env())
    }

    /// [`Bureau::start_region`] on `backend`, whatever the environment names.
    pub fn start_region_on(
        bin: &Path,
        registry: &Path,
        districts: &str,
        backend: Backend,
    ) -> Bureau {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(backend);
        storage.admin(
            bin,
            dir.path(),
            &["init", "--coordinator", "王协调", "--districts", districts],
        );
        Bureau::launch(bin, dir, storage, registry, None)
    }

    fn launch(
        bin: &Path,
        dir: TempDir,
        storage: Storage,
        registry: &Path,
        address_space: Option<u64>,
    ) -> Bureau {
        storage.admin(
            bin,
            dir.path(),
            &["school", "import", registry.to_str().unwrap()],
        );
        let (child, addr) = storage.serve(bin, dir.path(), address_space);
        if let Storage::PostgresS3 { .. } = storage {
            let file = dir.path().join(fieldlog_bureau::DB_FILE);
            assert!(!file.exists(), "{} made on PostgreSQL", file.display());
        }
        let proxy = Proxy::start(addr).unwrap();
        Bureau {
            bin: bin.to_path_buf(),
            dir,
            child: Some(child),
            proxy,
            address_space,
            storage,
        }
    }

    /// The backend this bureau runs on.
    pub fn backend(&self) -> Backend {
        match self.storage {
            Storage::Embedded => Backend::Embedded,
            Storage::PostgresS3 { .. } => Backend::PostgresS3,
        }
    }

    pub fn url(&self) -> String {
        self.proxy.url()
    }

    /// A one-time enrollment code for a member of `team`.
    pub fn code(&self, team: &str, member: &str) -> String {
        let json = self.read(&["enroll", "--team", team, "--member", member]);
        json["code"].as_str().unwrap().to_string()
    }

    /// A one-time enrollment code for a coordinator of the bureau's own team (the region).
    pub fn coordinator_code(&self, member: &str) -> String {
        let json = self.read(&[
            "enroll",
            "--team",
            "bureau",
            "--member",
            member,
            "--role",
            "coordinator",
        ]);
        json["code"].as_str().unwrap().to_string()
    }

    /// Adds a volunteer team working in `districts` (comma-separated).
    pub fn add_team(&self, team: &str, districts: &str) {
        self.show(&[
            "team",
            "add",
            "--team",
            team,
            "--kind",
            "volunteer",
            "--districts",
            districts,
        ]);
    }

    /// `fieldlog-bureau <args>` (on this bureau's backend): the text a coordinator reads.
    pub fn show(&self, args: &[&str]) -> String {
        self.storage.admin(&self.bin, self.dir.path(), args)
    }

    /// `fieldlog-bureau --json <args>`, parsed.
    pub fn read(&self, args: &[&str]) -> serde_json::Value {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        serde_json::from_str(&self.show(&with_json)).unwrap()
    }

    /// SIGKILL, then a fresh process on the same data dir behind the same proxy.
    pub fn kill_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        let (child, addr) = self
            .storage
            .serve(&self.bin, self.dir.path(), self.address_space);
        self.proxy.retarget(addr);
        self.child = Some(child);
    }

    /// The columns of the one row `sql` selects from the bureau's own database (the same
    /// SQL on both engines; each column an integer), read behind its back.
    pub fn integers(&self, sql: &str) -> Vec<i64> {
        match &self.storage {
            Storage::Embedded => {
                let conn =
                    rusqlite::Connection::open(self.dir.path().join(fieldlog_bureau::DB_FILE))
                        .unwrap();
                conn.query_row(sql, [], |row| {
                    (0..row.as_ref().column_count())
                        .map(|i| row.get(i))
                        .collect()
                })
                .unwrap()
            }
            // The blocking client runs a runtime of its own: on a thread of its own, so a
            // caller driving a tokio runtime is no matter.
            Storage::PostgresS3 { database, .. } => std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        let row = crate::postgres::PgCluster::connect(database)
                            .unwrap()
                            .query_one(sql, &[])
                            .unwrap();
                        (0..row.len()).map(|i| row.get(i)).collect()
                    })
                    .join()
                    .unwrap()
            }),
        }
    }

    /// The bytes of a complete photo file, read where this bureau keeps it (`blobs/` in its
    /// data dir, or its bucket), not through the bureau.
    pub fn complete_blob(&self, sha256: &str) -> Option<Vec<u8>> {
        let local = fieldlog_core::photo::stored_path(
            &self.dir.path().join(fieldlog_bureau::BLOB_DIR),
            sha256,
        );
        match &self.storage {
            Storage::Embedded => std::fs::read(local).ok(),
            Storage::PostgresS3 { s3, .. } => {
                assert!(!local.exists(), "{sha256} is in the bucket, not here");
                s3.object(&format!("{S3_PREFIX}/{}/{sha256}.jpg", &sha256[..2]))
            }
        }
    }
}

impl Drop for Bureau {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `fieldlog-bureau --data-dir DIR <args>` (flags such as a backend's go in `args`), its
/// stdout; panics with its stderr if it fails.
pub fn admin(bin: &Path, dir: &Path, args: &[&str]) -> String {
    admin_with(bin, dir, &[], args)
}

/// [`admin`] with environment variables added (a bucket's `AWS_*` credentials).
pub fn admin_with(bin: &Path, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = Command::new(bin)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fieldlog-bureau {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

impl Bureau {
    /// Whether the server process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

/// Every device here enrolls from 127.0.0.1, a hundred at once in the ingest bench; the rate
/// limits have their own tests (the bureau crate's `connections`).
const TEST_LIMITS: [&str; 4] = ["--enroll-rate", "100000", "--device-rate", "1000000"];

/// A `fieldlog-bureau serve` process on a free loopback port, reached directly (no proxy):
/// what a load benchmark talks to. It is not stopped on drop; kill `child` when done.
#[derive(Debug)]
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
    /// Where `GET /metrics` answers, when `--metrics-listen` was among the flags.
    pub metrics: Option<SocketAddr>,
}

impl Served {
    /// `fieldlog-bureau --data-dir DIR serve --listen 127.0.0.1:0 <flags>` (under `prlimit
    /// --as` when capped), logging warnings and errors only; returns once it printed its
    /// `listening on http://ADDR` line (and its metrics line, with `--metrics-listen`).
    pub fn start(bin: &Path, dir: &Path, address_space: Option<u64>, flags: &[&str]) -> Served {
        Served::start_with(bin, dir, address_space, flags, &[])
    }

    /// [`Served::start`] with environment variables added (a bucket's `AWS_*` credentials).
    pub fn start_with(
        bin: &Path,
        dir: &Path,
        address_space: Option<u64>,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Served {
        let mut command = match address_space {
            Some(bytes) => {
                let mut prlimit = Command::new("prlimit");
                prlimit.arg(format!("--as={bytes}")).arg("--").arg(bin);
                prlimit
            }
            None => Command::new(bin),
        };
        let mut child = command
            .arg("--data-dir")
            .arg(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(flags)
            // Warnings and errors only: a served request is not news in a test.
            .env("FIELDLOG_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut read = |prefix: &str| {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            line.trim()
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("expected {prefix:?}, read {line:?}"))
                .trim_end_matches("/metrics")
                .parse::<SocketAddr>()
                .unwrap()
        };
        let addr = read("listening on http://");
        let metrics = flags
            .iter()
            .any(|f| f.starts_with("--metrics-listen"))
            .then(|| read("metrics on http://"));
        Served {
            child,
            addr,
            metrics,
        }
    }
}

/// A device: a real store in a temp dir, enrolled with the bureau.
#[derive(Debug)]
pub struct Device {
    pub store: Store,
    _dir: TempDir,
}

impl Device {
    pub fn enrolled(bureau: &Bureau, name: &str, team: &str) -> Device {
        Device::enrolled_with(bureau, name, team, Options::default())
    }

    /// Enrolled, with a chosen clock.
    pub fn enrolled_with(bureau: &Bureau, name: &str, team: &str, options: Options) -> Device {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(dir.path(), name, team, options).unwrap();
        let code = bureau.code(team, name);
        fieldlog_core::sync::enroll(&mut store, &bureau.url(), &code).unwrap();
        Device { store, _dir: dir }
    }

    pub fn sync(&mut self) -> fieldlog_core::Result<fieldlog_core::SyncSummary> {
        fieldlog_core::sync::sync(&mut self.store, |_| {})
    }

    pub fn add(&mut self, school: &str, students: i64) -> fieldlog_domain::VisitId {
        let input: VisitInput = serde_json::from_value(serde_json::json!({
            "school": school, "activities": ["lecture"], "topic": "水的三态",
            "audience": {"students": students, "teachers": 2}, "donations": {"books": 5},
        }))
        .unwrap();
        let today = chrono::Local::now().date_naive();
        self.store.add_visit(&input, today).unwrap().id
    }

    pub fn visits(&self) -> Vec<fieldlog_domain::Visit> {
        self.store
            .visits(&VisitFilter {
                include_deleted: true,
                ..Default::default()
            })
            .unwrap()
    }
}
