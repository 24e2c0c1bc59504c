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
//! test steps get its path in `FIELDLOG_MOTO_SERVER`. A machine where it cannot be installed
//! fails here, so CI never passes with those tests skipped.
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
/// How long CI fuzzes each target, after its corpus has run.
const FUZZ_SMOKE_SECONDS: u64 = 5;

/// One CI step: a name for the header and the failure line, and cargo's arguments.
struct Step {
    name: &'static str,
    args: &'static [&'static str],
}

const STEPS: &[Step] = &[
    Step {
        name: "fmt",
        args: &["fmt", "--all", "--", "--check"],
    },
    Step {
        name: "clippy",
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    },
    Step {
        name: "wasm build (fieldlog-domain, fieldlog-app-api)",
        args: &[
            "build",
            "-p",
            "fieldlog-domain",
            "-p",
            "fieldlog-app-api",
            "--target",
            WASM_TARGET,
            "--locked",
        ],
    },
    Step {
        name: "test",
        // The app's end-to-end tests need the built app and a display: their own step below.
        args: &[
            "test",
            "--workspace",
            "--locked",
            "--exclude",
            "fieldlog-app-e2e",
            "--",
            "--skip",
            "fuzz_replay",
        ],
    },
    Step {
        name: "fuzz corpus replay",
        // Every seed and kept crasher through the fuzz targets' bodies, as a plain test. The
        // same packages and features as the step above, so nothing is rebuilt.
        args: &[
            "test",
            "--workspace",
            "--locked",
            "--exclude",
            "fieldlog-app-e2e",
            "--test",
            "e2e",
            "--",
            "fuzz_replay",
        ],
    },
];

pub fn test(args: &[String]) -> Result<()> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!(
            "Usage: cargo xtask test\n\n\
             Adds rustfmt, clippy and the {WASM_TARGET} target with rustup if missing, then runs:"
        );
        for step in STEPS {
            println!("  {}", sh::display("cargo", step.args));
        }
        println!(
            "  (each with {MOTO_ENV} naming moto_server {MOTO_VERSION}, installed in a venv if missing)"
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
    println!("    toolchain: ok in {:.1} s", clock.seconds());

    for step in STEPS {
        println!("==> {}", step.name);
        println!("$ {}", sh::display(&cargo, step.args));
        let clock = Stopwatch::start();
        let outcome = sh::run_env(&root, &cargo, step.args, &[(MOTO_ENV, moto.as_os_str())]);
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
