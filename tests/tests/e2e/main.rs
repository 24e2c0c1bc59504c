//! End-to-end tests: the real `fieldlog` binary, run as a separate process on temporary data
//! dirs. One test binary; each area of behaviour is a module.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod cli;
mod coordinators;
mod courses;
mod demo_region;
mod durability;
mod fuzz_replay;
mod hostile;
mod photos;
mod postgres;
mod relay;
mod sync;

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::SystemTime;

/// The demo region's registry: 60 synthetic schools.
pub fn demo_registry() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/demo-registry.csv")
}

/// The `fieldlog` binary of this build.
pub fn fieldlog_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| workspace_bin("fieldlog-cli", "fieldlog"))
}

/// The `fieldlog-bureau` binary of this build.
pub fn bureau_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| workspace_bin("fieldlog-bureau", "fieldlog-bureau"))
}

/// A binary of another workspace package. `cargo test --workspace` builds it; `cargo test -p
/// fieldlog-tests` does not, so it is built here when it is missing or older than a source.
fn workspace_bin(package: &str, bin: &str) -> PathBuf {
    // The test runs from `<target dir>/<profile>/deps/`; the binary lands in `<profile>/`.
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary sits in <target dir>/<profile>/deps");
    let path = profile_dir.join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
    if is_stale(&path) {
        build(profile_dir, package, bin);
        assert!(path.is_file(), "no {bin} binary at {}", path.display());
    }
    path
}

/// Whether `bin` is missing or older than a crate source or the lock file.
///
/// Asking cargo instead would be exact, but `cargo build -p …` resolves features without the
/// workspace's dev-dependencies, so right after `cargo test --workspace` it would rebuild
/// half the graph for a binary that is already up to date.
fn is_stale(bin: &Path) -> bool {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return true;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    ["Cargo.toml", "Cargo.lock", "crates"]
        .iter()
        .any(|source| newer_than(&root.join(source), built))
}

fn newer_than(path: &Path, built: SystemTime) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if meta.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return true;
        };
        entries
            .flatten()
            .any(|entry| newer_than(&entry.path(), built))
    } else {
        meta.modified().map_or(true, |modified| modified > built)
    }
}

fn build(profile_dir: &Path, package: &str, bin: &str) {
    let profile = profile_dir
        .file_name()
        .and_then(|name| name.to_str())
        .expect("the profile directory has a UTF-8 name");
    let target_dir = profile_dir
        .parent()
        .expect("the profile directory sits in the target dir");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "--package", package, "--bin", bin])
        .arg("--target-dir")
        .arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cargo.arg("--release");
        }
        other => {
            cargo.args(["--profile", other]);
        }
    }
    let status = cargo.status().expect("cargo runs");
    assert!(status.success(), "building {bin} failed");
}

/// What one run of `fieldlog` did.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success with nothing on stderr; returns stdout.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(self.code, Some(0), "fieldlog failed: {self:#?}");
        assert_eq!(self.stderr, "", "fieldlog succeeded but wrote to stderr");
        self.stdout
    }

    /// Asserts the failure contract: exit code 1, nothing on stdout, exactly one stderr line.
    #[track_caller]
    pub fn fails(self) -> String {
        assert_eq!(self.code, Some(1), "expected a failure: {self:#?}");
        assert_eq!(self.stdout, "", "a failed command printed to stdout");
        assert_eq!(self.stderr.lines().count(), 1, "{self:#?}");
        self.stderr.trim_end().to_string()
    }
}

/// One device: its own temporary data dir, spoken to in one language (`FIELDLOG_LANG`).
#[derive(Debug)]
pub struct TestDevice {
    dir: tempfile::TempDir,
    lang: &'static str,
}

impl TestDevice {
    /// A data dir with nothing in it yet.
    pub fn empty(lang: &'static str) -> TestDevice {
        TestDevice {
            dir: tempfile::tempdir().expect("a temp dir"),
            lang,
        }
    }

    /// A device created with `fieldlog init`.
    pub fn init(lang: &'static str, name: &str, team: &str) -> TestDevice {
        let device = TestDevice::empty(lang);
        device
            .run(&["init", "--device-name", name, "--team", team])
            .ok();
        device
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `fieldlog --data-dir <dir> <args>` in this device's language, with no stray settings
    /// from the environment that runs the tests.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(fieldlog_bin());
        command
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env("FIELDLOG_LANG", self.lang)
            .env_remove("FIELDLOG_DATA_DIR")
            .env_remove("FIELDLOG_LOG")
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().expect("fieldlog runs");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fieldlog starts");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(stdin.as_bytes())
            .expect("fieldlog reads stdin");
        let output = child.wait_with_output().expect("fieldlog finishes");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Runs with `--json`, asserts success and parses stdout.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        let stdout = self.run(&with_json).ok();
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
    }

    /// Imports the demo registry.
    pub fn import_demo_registry(&self) {
        let registry = demo_registry();
        let registry = registry.to_str().expect("a UTF-8 path");
        self.run(&["school", "import", registry]).ok();
    }

    /// `visit add --json-in` with `input`; returns the new visit's id.
    #[track_caller]
    pub fn add_visit(&self, input: &Value) -> String {
        let stdout = self
            .run_with_stdin(&["visit", "add", "--json-in"], &input.to_string())
            .ok();
        stdout.trim_end().to_string()
    }
}

/// A command line's words, for arguments that hold no spaces: `words("visit list --deleted")`.
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}
