//! `cargo xtask test`: what CI runs, in order, stopping at the first failure.
//!
//! Fuzzing: the `fuzz corpus replay` step runs every seed and kept crasher through the
//! target bodies (`fieldlog_tests::fuzz`) as a plain test; the last step fuzzes each target
//! for [`FUZZ_SMOKE_SECONDS`] from its corpus. The long runs are `cargo xtask fuzz`.
//!
//! On a fresh machine with only rustup and cargo, it first adds the rustup components and the wasm
//! target it needs, `exiftool` (for the photo tests) and `libreoffice-calc` (to open the
//! exported work ledger) through apt-get, and the app's toolchain
//! ([`crate::app::ensure_app_toolchain`]), only what is missing.
//!
//! The bureau's photo-store tests need a real S3-compatible server: [`ensure_moto`] installs
//! `moto_server` (PyPI `moto[server]`, pinned to [`MOTO_VERSION`]) into a venv under the
//! target dir's tools (`python3-venv` from apt if missing; about half a minute, once), and the
//! test steps get its path in `FIELDLOG_MOTO_SERVER`. Its PostgreSQL tests need the server's
//! programs: [`ensure_postgres`] finds the newest `/usr/lib/postgresql/<version>/bin` holding
//! `initdb` and `pg_ctl` (Debian's `postgresql` package from apt if there is none), and the
//! test steps get it in `FIELDLOG_POSTGRES_BIN`; each test makes its own throwaway cluster. A
//! machine where either cannot be installed fails here, so CI never passes with those tests
//! skipped.
//!
//! The bureau's contract suite runs on both backends. The `test` step runs it on the embedded
//! one (SQLite file + photo folder); the `contract suite on PostgreSQL + S3` step then runs the
//! bureau's own tests and the end-to-end modules that drive a real bureau (the convergence
//! proptest, the proxy cuts and bureau kills, the coordinator scenario, the crafted requests,
//! photos, courses, relay) again with `FIELDLOG_BUREAU_TEST_BACKEND=postgres`: each bureau on
//! a database of its own and a bucket on a moto server of its own. It builds with the same
//! packages, features and profile as `test`, so nothing is rebuilt.
//!
//! After the app's end-to-end step, the package install test
//! ([`crate::bundle::check_debug_package`]) packages the debug build that step made and installs
//! it in a clean Debian 12 chroot (about 1 minute; 2½ the first time on a machine, which
//! debootstraps and downloads the dependencies once).

use crate::sh::{self, Stopwatch};
use anyhow::{Context, Result, bail};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The moto release the bureau's S3 tests run against.
pub const MOTO_VERSION: &str = "5.2.5";
/// Where the tests look for `moto_server` (`fieldlog_tests::s3::MOTO_ENV`).
const MOTO_ENV: &str = "FIELDLOG_MOTO_SERVER";
/// Where the tests look for `initdb` and `pg_ctl` (`fieldlog_tests::postgres::BIN_ENV`).
const POSTGRES_ENV: &str = "FIELDLOG_POSTGRES_BIN";
/// Where Debian's PostgreSQL packages put each major version's server programs
/// (`<version>/bin`).
const POSTGRES_LIB: &str = "/usr/lib/postgresql";
/// Which backend the bureau's tests run on (`fieldlog_tests::backend::BACKEND_ENV`).
const BACKEND_ENV: &str = "FIELDLOG_BUREAU_TEST_BACKEND";
/// How long CI fuzzes each target, after its corpus has run.
const FUZZ_SMOKE_SECONDS: u64 = 5;

/// One CI step: a name for the header and the failure line, cargo's arguments for each of
/// its runs (in order), and environment variables of its own.
struct Step {
    name: &'static str,
    runs: &'static [&'static [&'static str]],
    env: &'static [(&'static str, &'static str)],
}

impl Step {
    /// Its own environment as a shell prefix (`NAME=value `), for the transcript.
    fn shown_env(&self) -> String {
        self.env
            .iter()
            .map(|(name, value)| format!("{name}={value} "))
            .collect()
    }
}

const STEPS: &[Step] = &[
    Step {
        name: "fmt",
        runs: &[&["fmt", "--all", "--", "--check"]],
        env: &[],
    },
    Step {
        name: "clippy",
        runs: &[&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]],
        env: &[],
    },
    Step {
        name: "wasm build (fieldlog-domain, fieldlog-app-api)",
        runs: &[&[
            "build",
            "-p",
            "fieldlog-domain",
            "-p",
            "fieldlog-app-api",
            "--target",
            WASM_TARGET,
            "--locked",
        ]],
        env: &[],
    },
    Step {
        name: "test",
        // The app's end-to-end tests need the built app and a display: their own step below.
        runs: &[&[
            "test",
            "--workspace",
            "--locked",
            "--exclude",
            "fieldlog-app-e2e",
            "--",
            "--skip",
            "fuzz_replay",
        ]],
        env: &[],
    },
    Step {
        name: "contract suite on PostgreSQL + S3",
        // The bureau's own tests, then the end-to-end modules that drive a real bureau
        // (the crafted bundle files of `hostile` never reach one). The same packages and
        // features as the step above, so nothing is rebuilt.
        runs: &[
            &[
                "test",
                "--workspace",
                "--locked",
                "--exclude",
                "fieldlog-app-e2e",
                "--test",
                "bureau",
            ],
            &[
                "test",
                "--workspace",
                "--locked",
                "--exclude",
                "fieldlog-app-e2e",
                "--test",
                "e2e",
                "--",
                "sync::",
                "coordinators::",
                "courses::",
                "hostile::crafted_sync_requests",
                "photos::",
                "relay::",
            ],
        ],
        env: &[(BACKEND_ENV, "postgres")],
    },
    Step {
        name: "fuzz corpus replay",
        // Every seed and kept crasher through the fuzz targets' bodies, as a plain test. The
        // same packages and features as the steps above, so nothing is rebuilt.
        runs: &[&[
            "test",
            "--workspace",
            "--locked",
            "--exclude",
            "fieldlog-app-e2e",
            "--test",
            "e2e",
            "--",
            "fuzz_replay",
        ]],
        env: &[],
    },
];

pub fn test(args: &[String]) -> Result<()> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!(
            "Usage: cargo xtask test\n\n\
             Adds rustfmt, clippy and the {WASM_TARGET} target with rustup if missing, then runs:"
        );
        for step in STEPS {
            for run in step.runs {
                println!("  {}{}", step.shown_env(), sh::display("cargo", run));
            }
        }
        println!(
            "  (each with {MOTO_ENV} naming moto_server {MOTO_VERSION}, installed in a venv if missing,\n   \
             {POSTGRES_ENV} naming the newest {POSTGRES_LIB}/<version>/bin, from apt's\n   \
             postgresql if there is none, and {BACKEND_ENV}=embedded unless shown)"
        );
        println!("  then the app's end-to-end tests (see `cargo xtask run --help`)");
        println!("  then the package install test (cargo xtask bundle --check --debug)");
        println!("  then cargo xtask fuzz --seconds {FUZZ_SMOKE_SECONDS} (each target)");
        return Ok(());
    }
    if let Some(extra) = args.first() {
        bail!("`cargo xtask test` takes no arguments (got `{extra}`)");
    }

    let root = sh::workspace_root()?;
    let cargo = sh::cargo();
    let total = Stopwatch::start();

    println!("==> toolchain");
    let clock = Stopwatch::start();
    ensure_toolchain(&root, &cargo).context("step `toolchain` failed")?;
    let moto = ensure_moto(&root).context("step `toolchain` failed")?;
    let postgres = ensure_postgres(&root).context("step `toolchain` failed")?;
    println!("    toolchain: ok in {:.1} s", clock.seconds());

    for step in STEPS {
        println!("==> {}", step.name);
        // The embedded backend unless the step says otherwise (a later value wins), whatever
        // the calling shell exports.
        let mut env = vec![
            (MOTO_ENV, moto.as_os_str()),
            (POSTGRES_ENV, postgres.as_os_str()),
            (BACKEND_ENV, OsStr::new("embedded")),
        ];
        env.extend(
            step.env
                .iter()
                .map(|(name, value)| (*name, OsStr::new(value))),
        );
        let clock = Stopwatch::start();
        let outcome = step.runs.iter().try_for_each(|run| {
            println!("$ {}{}", step.shown_env(), sh::display(&cargo, run));
            sh::run_env(&root, &cargo, run, &env)
        });
        let seconds = clock.seconds();
        match outcome {
            Ok(()) => println!("    {}: ok in {seconds:.1} s", step.name),
            Err(error) => {
                return Err(
                    error.context(format!("step `{}` failed after {seconds:.1} s", step.name))
                );
            }
        }
    }
    println!("==> app end-to-end (tauri-driver, Xvfb when there is no display)");
    let clock = Stopwatch::start();
    crate::app::e2e(&root)
        .with_context(|| format!("step `app e2e` failed after {:.1} s", clock.seconds()))?;
    println!("    app e2e: ok in {:.1} s", clock.seconds());
    println!(
        "==> package install test (the e2e step's build as a .deb, in a clean Debian 12 chroot)"
    );
    let clock = Stopwatch::start();
    crate::bundle::check_debug_package(&root).with_context(|| {
        format!(
            "step `package install test` failed after {:.1} s",
            clock.seconds()
        )
    })?;
    println!("    package install test: ok in {:.1} s", clock.seconds());
    println!("==> fuzz smoke ({FUZZ_SMOKE_SECONDS} s per target from its corpus)");
    let clock = Stopwatch::start();
    crate::fuzz::run(
        &root,
        None,
        FUZZ_SMOKE_SECONDS,
        crate::fuzz::DEFAULT_RUNS,
        crate::fuzz::Build::Dev,
    )
    .with_context(|| format!("step `fuzz smoke` failed after {:.1} s", clock.seconds()))?;
    println!("    fuzz smoke: ok in {:.1} s", clock.seconds());
    println!(
        "==> all {} steps passed in {:.1} s",
        STEPS.len() + 4,
        total.seconds()
    );
    Ok(())
}

/// Adds rustfmt, clippy and the wasm target through rustup, each only if it is missing.
fn ensure_toolchain(root: &Path, cargo: &OsStr) -> Result<()> {
    let mut components = Vec::new();
    if sh::probe(root, cargo, &["fmt", "--version"]) != Some(true) {
        components.push("rustfmt");
    }
    if sh::probe(root, cargo, &["clippy", "--version"]) != Some(true) {
        components.push("clippy");
    }
    if components.is_empty() {
        println!("    rustfmt and clippy: present");
    } else {
        let mut args = vec!["component", "add"];
        args.extend(&components);
        rustup(root, &args)?;
    }

    let installed = sh::capture(root, "rustup", &["target", "list", "--installed"])
        .context("could not list installed targets (is rustup on PATH?)")?;
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        println!("    {WASM_TARGET}: present");
    } else {
        rustup(root, &["target", "add", WASM_TARGET])?;
    }
    // The photo tests check stripped metadata with exiftool.
    ensure_apt_tool(root, "exiftool", "libimage-exiftool-perl")?;
    // The work ledger test opens the exported XLSX with LibreOffice.
    ensure_apt_tool(root, "libreoffice", "libreoffice-calc")?;
    // The app's shell links WebKitGTK even for clippy; its UI needs trunk and wasm-bindgen.
    crate::app::ensure_app_toolchain(root).map(drop)
}

/// `moto_server` at [`MOTO_VERSION`] in `<target>/app-tools/moto` (a venv), installed only
/// when it is missing or another version; returns its path.
pub fn ensure_moto(root: &Path) -> Result<PathBuf> {
    let venv = sh::target_dir(root).join("app-tools").join("moto");
    let python = venv.join("bin").join("python");
    let server = venv.join("bin").join("moto_server");
    let version = || {
        sh::capture(
            root,
            &python,
            &[
                "-c",
                "import importlib.metadata as m; print(m.version('moto'))",
            ],
        )
        .ok()
        .map(|v| v.trim().to_string())
    };
    if server.is_file() && version().as_deref() == Some(MOTO_VERSION) {
        println!("    moto_server {MOTO_VERSION}: present");
        return Ok(server);
    }
    let clock = Stopwatch::start();
    println!(
        "    moto_server {MOTO_VERSION}: missing; installing it into {}",
        venv.display()
    );
    // Debian's python3 makes venvs (with pip) only with python3-venv.
    if sh::probe(root, "python3", &["-c", "import venv, ensurepip"]) != Some(true) {
        apt_install(root, &["python3", "python3-venv"])
            .context("could not install python3-venv (needed for moto_server)")?;
    }
    if !python.is_file() {
        let venv_arg = venv.to_string_lossy().into_owned();
        let args = ["-m", "venv", venv_arg.as_str()];
        println!("$ {}", sh::display("python3", &args));
        sh::run(root, "python3", &args).context("creating moto's venv")?;
    }
    let pip = venv.join("bin").join("pip");
    let spec = format!("moto[server]=={MOTO_VERSION}");
    let args = [
        "install",
        "--quiet",
        "--disable-pip-version-check",
        spec.as_str(),
    ];
    println!("$ {}", sh::display(&pip, &args));
    sh::run(root, &pip, &args).with_context(|| format!("installing {spec} from PyPI"))?;
    if !server.is_file() || version().as_deref() != Some(MOTO_VERSION) {
        bail!(
            "installed {spec}, but {} is not moto_server {MOTO_VERSION}",
            server.display()
        );
    }
    println!(
        "    moto_server {MOTO_VERSION}: installed in {:.1} s",
        clock.seconds()
    );
    Ok(server)
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb` and `pg_ctl` (Debian's
/// `postgresql` package through apt-get when there is none); fails when there is still none.
pub fn ensure_postgres(root: &Path) -> Result<PathBuf> {
    let lib = Path::new(POSTGRES_LIB);
    if let Some(bin) = newest_postgres_bin(lib) {
        println!("    PostgreSQL: present in {}", bin.display());
        return Ok(bin);
    }
    let clock = Stopwatch::start();
    println!("    PostgreSQL: missing; installing the Debian package postgresql");
    apt_install(root, &["postgresql"])
        .context("could not install postgresql (needed for the bureau's PostgreSQL backend)")?;
    let Some(bin) = newest_postgres_bin(lib) else {
        bail!("installed postgresql, but no {POSTGRES_LIB}/<version>/bin holds initdb and pg_ctl");
    };
    println!(
        "    PostgreSQL: installed in {:.1} s ({})",
        clock.seconds(),
        bin.display()
    );
    Ok(bin)
}

/// The `<version>/bin` under `lib` of the highest version (`16` above `15`, `9.6` below
/// both) that holds `initdb` and `pg_ctl`.
fn newest_postgres_bin(lib: &Path) -> Option<PathBuf> {
    std::fs::read_dir(lib)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let version = name
                .to_str()?
                .split('.')
                .map(|part| part.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, bin)| bin)
}

/// Installs a Debian package when `program` is not on `PATH`.
pub fn ensure_apt_tool(root: &Path, program: &str, package: &str) -> Result<()> {
    let on_path = || sh::probe(root, "sh", &["-c", &format!("command -v {program}")]) == Some(true);
    if on_path() {
        println!("    {program}: present");
        return Ok(());
    }
    println!("    {program}: missing; installing the Debian package {package}");
    apt_install(root, &[package])
        .with_context(|| format!("could not install {package} (needed for `{program}`)"))?;
    if !on_path() {
        bail!("installed {package}, but `{program}` is still not on PATH");
    }
    Ok(())
}

/// `apt-get update`, then installs `packages` (through `sudo` unless already root), printing
/// each command it runs.
pub fn apt_install(root: &Path, packages: &[&str]) -> Result<()> {
    let root_user = sh::capture(root, "id", &["-u"]).is_ok_and(|uid| uid.trim() == "0");
    let noninteractive = [("DEBIAN_FRONTEND", OsStr::new("noninteractive"))];
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(packages);
    for apt_args in [vec!["update"], install] {
        let mut args = Vec::new();
        if !root_user {
            args.push("apt-get");
        }
        args.extend(apt_args);
        let program = if root_user { "apt-get" } else { "sudo" };
        println!("$ {}", sh::display(program, &args));
        sh::run_env(root, program, &args, &noninteractive)?;
    }
    Ok(())
}

/// Runs rustup from `PATH`, in the workspace root so that a `rust-toolchain.toml` there applies.
fn rustup(root: &Path, args: &[&str]) -> Result<()> {
    println!("$ {}", sh::display("rustup", args));
    sh::run(root, "rustup", args)
}

#[cfg(test)]
mod tests {
    use super::newest_postgres_bin;
    use std::path::Path;

    fn server(lib: &Path, version: &str, programs: &[&str]) {
        let bin = lib.join(version).join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for program in programs {
            std::fs::write(bin.join(program), "").unwrap();
        }
    }

    #[test]
    fn the_newest_postgres_version_with_both_programs_is_taken() {
        let lib = std::env::temp_dir().join(format!("xtask-postgres-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&lib);
        assert_eq!(newest_postgres_bin(&lib), None, "no directory at all");
        server(&lib, "9.6", &["initdb", "pg_ctl"]);
        server(&lib, "15", &["initdb", "pg_ctl"]);
        // Only the client programs (postgresql-client-17): not a server.
        server(&lib, "17", &["psql"]);
        server(&lib, "16", &["initdb"]);
        server(&lib, "notes", &["initdb", "pg_ctl"]);
        assert_eq!(newest_postgres_bin(&lib), Some(lib.join("15").join("bin")));
        server(&lib, "16", &["pg_ctl"]);
        assert_eq!(newest_postgres_bin(&lib), Some(lib.join("16").join("bin")));
        std::fs::remove_dir_all(&lib).unwrap();
    }
}
