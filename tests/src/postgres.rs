//! A real PostgreSQL for tests: a throwaway cluster (`initdb`, then `pg_ctl start`) in a temp
//! dir, on a free loopback port, stopped and removed when dropped.
//!
//! `cargo xtask test` installs PostgreSQL (Debian's `postgresql`) when it is missing and names
//! the directory holding `initdb` and `pg_ctl` in [`BIN_ENV`]; set there, a cluster that does
//! not start fails the test. Under plain `cargo test` without the variable,
//! [`PgCluster::start_or_skip`] says the test is skipped.
//!
//! Running as root, the cluster's programs run as the `postgres` user (`runuser`), since
//! PostgreSQL refuses to run as root. Every cluster has the superuser `postgres`, trusts every
//! local connection and runs with `fsync=off`: data survives a restart, not a power cut.
//!
//! Each cluster also starts a small watchdog (`sh`, in its own process group so a Ctrl-C of the
//! tests does not kill it) that stops the server and removes its dir once the test process has
//! gone. That is what cleans up [`PgCluster::shared_or_skip`]'s cluster, which lives in a
//! static and is never dropped, and any cluster of a test process that was killed.
//!
//! The fixture's own SQL runs on a thread of its own, so it may be called from inside a tokio
//! runtime (the blocking `postgres` client starts a runtime of its own).

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The directory holding PostgreSQL's `initdb` and `pg_ctl`, set by `cargo xtask test`.
pub const BIN_ENV: &str = "FIELDLOG_POSTGRES_BIN";
/// The superuser of every cluster.
pub const SUPERUSER: &str = "postgres";
/// The user the cluster's programs run as when the tests run as root.
const OS_USER: &str = "postgres";
/// How long `pg_ctl` waits for the server to start or stop (it takes well under a second).
const PG_CTL_SECONDS: &str = "30";
/// How long the fixture waits to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries with a new free port, should another process take the one chosen first.
const PORT_TRIES: usize = 3;
/// Connections the server takes: room for load tests with many clients.
const MAX_CONNECTIONS: u32 = 300;
/// How many lines of the server's log a failure shows.
const LOG_TAIL_LINES: usize = 40;

/// A running PostgreSQL cluster in a temp dir, stopped (`-m immediate`) and removed when
/// dropped.
#[derive(Debug)]
pub struct PgCluster {
    bin: PathBuf,
    /// Holds `data/` (the cluster), `log` (the server's) and the server's socket.
    dir: tempfile::TempDir,
    port: u16,
    /// The server's `-o` options, given again at each [`PgCluster::start`].
    options: String,
    as_root: bool,
    watchdog: Option<Child>,
    databases: AtomicU64,
}

impl PgCluster {
    /// A new cluster from the programs in [`BIN_ENV`], or `None` (after saying `test` is
    /// skipped) when the variable is not set. Panics when it is set and the cluster does not
    /// start.
    pub fn start_or_skip(test: &str) -> Option<PgCluster> {
        let bin = PgCluster::bin_or_skip(test)?;
        match PgCluster::new(&bin) {
            Ok(cluster) => Some(cluster),
            Err(e) => panic!("{BIN_ENV}: {e}"),
        }
    }

    /// One cluster for the whole test process, started by the first test that asks for it
    /// (`None` and a skip line as with [`PgCluster::start_or_skip`]). Tests share it through
    /// [`PgCluster::create_database`]; one that stops or restarts the server wants its own.
    /// It is never dropped: its watchdog stops it and removes its dir when the process ends.
    pub fn shared_or_skip(test: &str) -> Option<&'static PgCluster> {
        static SHARED: OnceLock<PgCluster> = OnceLock::new();
        let bin = PgCluster::bin_or_skip(test)?;
        Some(SHARED.get_or_init(|| match PgCluster::new(&bin) {
            Ok(cluster) => cluster,
            Err(e) => panic!("{BIN_ENV}: {e}"),
        }))
    }

    /// The directory named by [`BIN_ENV`], or `None` after a line saying `test` is skipped.
    pub fn bin_or_skip(test: &str) -> Option<PathBuf> {
        match std::env::var_os(BIN_ENV) {
            Some(bin) => Some(PathBuf::from(bin)),
            None => {
                #[allow(clippy::print_stderr, reason = "the skip must show in the test output")]
                {
                    eprintln!(
                        "skipped {test}: {BIN_ENV} is not set (`cargo xtask test` installs PostgreSQL and sets it)"
                    );
                }
                None
            }
        }
    }

    /// Creates a cluster with the programs in `bin` and starts it on a free loopback port,
    /// watched for the end of this process.
    pub fn new(bin: &Path) -> Result<PgCluster, String> {
        PgCluster::new_watching(bin, std::process::id())
    }

    /// [`PgCluster::new`], with the watchdog stopping the cluster and removing its dir once
    /// the process `pid` has ended rather than this one.
    pub fn new_watching(bin: &Path, pid: u32) -> Result<PgCluster, String> {
        PgCluster::create(bin, pid, &[])
    }

    /// [`PgCluster::new`], the server started with `settings` (`-c name=value` each) after
    /// the fixture's own, which they override: a benchmark's `fsync=on`, or
    /// `shared_preload_libraries=pg_stat_statements`.
    pub fn with_settings(bin: &Path, settings: &[(&str, &str)]) -> Result<PgCluster, String> {
        PgCluster::create(bin, std::process::id(), settings)
    }

    fn create(bin: &Path, pid: u32, settings: &[(&str, &str)]) -> Result<PgCluster, String> {
        let as_root = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("fieldlog-pg-")
            .tempdir()
            .map_err(|e| format!("a temp dir: {e}"))?;
        let mut cluster = PgCluster {
            bin: bin.to_path_buf(),
            dir,
            port: 0,
            options: String::new(),
            as_root,
            watchdog: None,
            databases: AtomicU64::new(0),
        };
        if as_root {
            let owner = format!("{OS_USER}:{OS_USER}");
            let chown = Command::new("chown")
                .arg(&owner)
                .arg(cluster.dir())
                .output()
                .map_err(|e| format!("running chown: {e}"))?;
            check("chown", &chown)?;
        }
        let initdb = cluster
            .program("initdb")
            .arg("-D")
            .arg(cluster.data_dir())
            .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8"])
            .args(["--locale=C.UTF-8", "--no-sync"])
            .output()
            .map_err(|e| format!("running initdb: {e}"))?;
        check("initdb", &initdb)?;
        cluster.watchdog = Some(cluster.spawn_watchdog(pid)?);

        let mut last = String::new();
        for _ in 0..PORT_TRIES {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .map_err(|e| format!("finding a free port: {e}"))?
                .port();
            cluster.port = port;
            cluster.options = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k '{}' -c fsync=off -c max_connections={MAX_CONNECTIONS}",
                cluster.dir().display()
            );
            for (name, value) in settings {
                cluster.options.push_str(&format!(" -c {name}={value}"));
            }
            match cluster.start() {
                Ok(()) => return Ok(cluster),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Starts the stopped server again, on the same port; returns once it accepts
    /// connections.
    pub fn start(&self) -> Result<(), String> {
        let output = self
            .pg_ctl()
            .arg("-o")
            .arg(&self.options)
            .arg("start")
            .output()
            .map_err(|e| format!("running pg_ctl start: {e}"))?;
        check("pg_ctl start", &output).map_err(|e| format!("{e}\n{}", self.log_tail()))
    }

    /// Stops the server (`-m fast`: open sessions end, their transactions roll back).
    pub fn stop(&self) -> Result<(), String> {
        let output = self
            .pg_ctl()
            .args(["-m", "fast", "stop"])
            .output()
            .map_err(|e| format!("running pg_ctl stop: {e}"))?;
        check("pg_ctl stop", &output).map_err(|e| format!("{e}\n{}", self.log_tail()))
    }

    /// Restarts the server (`-m fast`) on the same port; returns once it accepts connections
    /// again. Clients connected before get errors and must reconnect.
    pub fn restart(&self) -> Result<(), String> {
        let output = self
            .pg_ctl()
            .args(["-m", "fast", "restart"])
            .output()
            .map_err(|e| format!("running pg_ctl restart: {e}"))?;
        check("pg_ctl restart", &output).map_err(|e| format!("{e}\n{}", self.log_tail()))
    }

    /// Creates a new, empty database with a name unique in this cluster; returns its URL.
    pub fn create_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("fieldlog_test_{n}");
        self.execute("postgres", &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("creating database {name}: {e}\n{}", self.log_tail()));
        self.url(&name)
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// The port the server listens on (the same after a restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's temp dir (removed when the cluster is dropped).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Connects to `url` with the blocking client. Call it outside any tokio runtime, or
    /// on a thread of its own.
    pub fn connect(url: &str) -> Result<postgres::Client, postgres::Error> {
        postgres::Config::from_str(url)?
            .connect_timeout(CONNECT_TIMEOUT)
            .connect(postgres::NoTls)
    }

    /// Runs `sql` (one or more statements) in `database`, on a thread of its own.
    pub fn execute(&self, database: &str, sql: &str) -> Result<(), String> {
        let url = self.url(database);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let mut client = PgCluster::connect(&url).map_err(|e| e.to_string())?;
                    client.batch_execute(sql).map_err(|e| e.to_string())
                })
                .join()
                .unwrap_or_else(|_| Err("the fixture's SQL thread panicked".into()))
        })
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.log_path()) {
            let _ = file.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!(
            "server log ({}), last lines:\n{}",
            self.log_path().display(),
            lines[from..].join("\n")
        )
    }

    fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir().join("log")
    }

    /// `pg_ctl -D <data> -l <log> -w -t 30`, to which the caller adds the mode and action.
    fn pg_ctl(&self) -> Command {
        let mut command = self.program("pg_ctl");
        command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", PG_CTL_SECONDS]);
        command
    }

    /// One of PostgreSQL's programs, as the `postgres` user when running as root, in the
    /// cluster's dir (which that user can enter) with no input.
    fn program(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        let mut command = if self.as_root {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", OS_USER, "--"]).arg(program);
            runuser
        } else {
            Command::new(program)
        };
        command.current_dir(self.dir()).stdin(Stdio::null());
        command
    }

    /// A `sh` that waits while `pid` lives and the cluster's dir is there, then stops the
    /// server and removes the dir. In its own process group, so a Ctrl-C sent to the tests'
    /// group does not end it before the tests.
    fn spawn_watchdog(&self, pid: u32) -> Result<Child, String> {
        use std::os::unix::process::CommandExt as _;
        const SCRIPT: &str = r#"pid=$1 dir=$2; shift 2
while kill -0 "$pid" 2>/dev/null && [ -d "$dir" ]; do sleep 1; done
if [ -d "$dir" ]; then
  "$@" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1
  rm -rf "$dir"
fi"#;
        let mut command = Command::new("sh");
        command
            .args(["-c", SCRIPT, "fieldlog-pg-watchdog", &pid.to_string()])
            .arg(self.dir());
        if self.as_root {
            command.args(["runuser", "-u", OS_USER, "--"]);
        }
        command
            .arg(self.bin.join("pg_ctl"))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting the cluster's watchdog: {e}"))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        if self.data_dir().join("postmaster.pid").exists() {
            let _ = self.pg_ctl().args(["-m", "immediate", "stop"]).output();
        }
        // The temp dir goes when `self.dir` drops, right after this.
    }
}

/// Whether this process runs as root (PostgreSQL's programs then run as `postgres`).
fn running_as_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
    })
}

/// `Ok` when `output` is a success, else what the program printed.
fn check(what: &str, output: &Output) -> Result<(), String> {
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}
