//! The app: its toolchain, builds, `cargo xtask run [--demo]`, the end-to-end step of
//! `cargo xtask test` and `cargo xtask bench app`.
//!
//! [`ensure_app_toolchain`] installs only what is missing or at the wrong version: the Debian
//! packages (WebKitGTK, its WebDriver, Xvfb, CJK fonts), trunk, wasm-bindgen-cli at the
//! version in Cargo.lock, tauri-driver, and binaryen's `wasm-opt` from npm (Debian's
//! older one produces `-Oz` output that loads blank).

use crate::sh::{self, Stopwatch};
use anyhow::{Context, Result, bail};
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TRUNK_VERSION: &str = "0.21.14";
const TAURI_DRIVER_VERSION: &str = "2.1.0";
const BINARYEN_VERSION: &str = "132.0.0";
/// ECharts for the desk's charts, trimmed by esbuild to what `src-ui/vendor/echarts-entry.mjs`
/// uses (about 200 KB gzip instead of 370), and bundled locally: nothing loads from the network.
const ECHARTS_PACKAGES: [(&str, &str); 2] = [("echarts", "6.1.0"), ("esbuild", "0.28.2")];
const APP_PACKAGE: &str = "fieldlog-app";
const APP_BIN: &str = "fieldlog-app";
const REGISTRY: &str = "assets/demo-registry.csv";
const DEMO_DISTRICTS: &str = "南山区,青溪县,石门县,临江区,白云县";

/// What the WebKit app and its tests need from Debian (see shared/TOOLCHAIN.md).
const APT_PACKAGES: &[&str] = &[
    "libwebkit2gtk-4.1-dev",
    "build-essential",
    "curl",
    "wget",
    "file",
    "libxdo-dev",
    "libssl-dev",
    "libayatana-appindicator3-dev",
    "librsvg2-dev",
    "pkg-config",
    "xvfb",
    "xauth",
    "dbus-x11",
    "at-spi2-core",
    "webkit2gtk-driver",
    "imagemagick",
    "fonts-noto-cjk",
    "npm",
];

/// Overrides the tools' own release profiles for `cargo install`: trunk's (fat LTO, one codegen
/// unit) took 11.6 minutes on two cores, these 7.5; the tools do little work per run.
const FAST_INSTALL_PROFILE: [(&str, &str); 4] = [
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1"),
    ("CARGO_PROFILE_RELEASE_LTO", "false"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16"),
    ("CARGO_PROFILE_RELEASE_DEBUG", "false"),
];

/// Where the app's tools live, for the `PATH` of the commands that use them.
#[derive(Debug)]
pub struct Tools {
    path: OsString,
}

impl Tools {
    fn env(&self) -> [(&'static str, &OsStr); 1] {
        [("PATH", self.path.as_os_str())]
    }
}

/// Installs the app's toolchain, each piece only when missing or at another version.
pub fn ensure_app_toolchain(root: &Path) -> Result<Tools> {
    ensure_apt_packages(root)?;
    let cargo = sh::cargo();
    let installed = sh::capture(root, &cargo, &["install", "--list"]).unwrap_or_default();
    let wasm_bindgen = wasm_bindgen_version(root)?;
    for (krate, version, locked) in [
        ("trunk", TRUNK_VERSION, true),
        // Not --locked: its lock file pins a yanked crate.
        ("wasm-bindgen-cli", wasm_bindgen.as_str(), false),
        ("tauri-driver", TAURI_DRIVER_VERSION, true),
    ] {
        if installed
            .lines()
            .any(|line| line.starts_with(&format!("{krate} v{version}:")))
        {
            println!("    {krate} {version}: present");
            continue;
        }
        let spec = format!("{krate}@{version}");
        let mut args = vec!["install", spec.as_str()];
        if locked {
            args.push("--locked");
        }
        println!("$ {}", sh::display(&cargo, &args));
        let env: Vec<(&str, &OsStr)> = FAST_INSTALL_PROFILE
            .iter()
            .map(|&(key, value)| (key, OsStr::new(value)))
            .collect();
        sh::run_env(root, &cargo, &args, &env).with_context(|| format!("installing {spec}"))?;
    }
    let npm_dir = ensure_npm_packages(root, "binaryen", &[("binaryen", BINARYEN_VERSION)])?;
    ensure_npm_packages(root, "echarts", &ECHARTS_PACKAGES)?;
    let mut paths = vec![npm_dir.join("node_modules/.bin"), cargo_bin_dir()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    Ok(Tools {
        path: std::env::join_paths(paths).context("joining PATH")?,
    })
}

/// Installs npm `packages` (name, version) under `<app tools>/<dir>` unless each is there
/// at its version; returns that directory.
pub fn ensure_npm_packages(root: &Path, dir: &str, packages: &[(&str, &str)]) -> Result<PathBuf> {
    let npm_dir = tools_dir(root).join(dir);
    let present = |name: &str, version: &str| {
        let manifest = npm_dir.join("node_modules").join(name).join("package.json");
        std::fs::read_to_string(manifest)
            .is_ok_and(|json| json.contains(&format!("\"version\": \"{version}\"")))
    };
    if packages
        .iter()
        .all(|(name, version)| present(name, version))
    {
        for (name, version) in packages {
            println!("    {name} {version} (npm): present");
        }
        return Ok(npm_dir);
    }
    std::fs::create_dir_all(&npm_dir)?;
    let prefix = npm_dir.to_string_lossy().into_owned();
    let specs: Vec<String> = packages
        .iter()
        .map(|(name, version)| format!("{name}@{version}"))
        .collect();
    let mut args = vec![
        "install",
        "--no-audit",
        "--no-fund",
        "--prefix",
        prefix.as_str(),
    ];
    args.extend(specs.iter().map(String::as_str));
    println!("$ {}", sh::display("npm", &args));
    sh::run(root, "npm", &args)
        .with_context(|| format!("installing {} from npm", specs.join(" ")))?;
    Ok(npm_dir)
}

fn ensure_apt_packages(root: &Path) -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|package| {
            sh::capture(root, "dpkg-query", &["-W", "-f=${Status}", package])
                .map_or(true, |status| !status.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        println!("    Debian packages for the app: present");
        return Ok(());
    }
    // npm is only needed when node is absent altogether.
    let missing: Vec<&str> = missing
        .into_iter()
        .filter(|p| *p != "npm" || sh::probe(root, "npm", &["--version"]) != Some(true))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("    missing Debian packages: {}", missing.join(" "));
    crate::ci::apt_install(root, &missing)?;
    Ok(())
}

/// The wasm-bindgen version Cargo.lock pins: the CLI must match it exactly.
fn wasm_bindgen_version(root: &Path) -> Result<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\""
            && let Some(version) = lines
                .next()
                .and_then(|l| l.strip_prefix("version = \""))
                .and_then(|l| l.strip_suffix('"'))
        {
            return Ok(version.to_string());
        }
    }
    bail!("Cargo.lock has no wasm-bindgen package")
}

fn cargo_bin_dir() -> PathBuf {
    match std::env::var_os("CARGO_HOME") {
        Some(home) => PathBuf::from(home).join("bin"),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo/bin"),
    }
}

/// Tools and outputs that outlive a clone: beside the target dir.
fn tools_dir(root: &Path) -> PathBuf {
    sh::target_dir(root).join("app-tools")
}

/// The UI's two pages into `src-ui/dist`: the field screens (`index.html`), then the
/// coordinator's desk (`desk/index.html` into `dist/desk`, with the trimmed ECharts bundled
/// first into `src-ui/vendor/echarts.min.js`). Each is a release `trunk build`.
pub fn build_ui(root: &Path, tools: &Tools) -> Result<()> {
    let clock = Stopwatch::start();
    bundle_echarts(root)?;
    let ui = root.join("src-ui");
    for args in [
        &["build", "--release", "--offline"][..],
        // The target first: `--offline` takes an optional value.
        &[
            "build",
            "desk/index.html",
            "--release",
            "--offline",
            "--dist",
            "dist/desk",
            "--public-url",
            "/desk/",
        ][..],
    ] {
        println!("$ (cd src-ui && {})", sh::display("trunk", args));
        sh::run_env(&ui, "trunk", args, &tools.env()).context("building the UI")?;
    }
    println!("    UI built in {:.1} s", clock.seconds());
    Ok(())
}

/// esbuild of `src-ui/vendor/echarts-entry.mjs` with the ECharts from npm.
fn bundle_echarts(root: &Path) -> Result<()> {
    let npm_dir = tools_dir(root).join("echarts");
    let esbuild = npm_dir.join("node_modules/.bin/esbuild");
    let vendor = root.join("src-ui/vendor");
    let entry = vendor.join("echarts-entry.mjs");
    let out = format!("--outfile={}", vendor.join("echarts.min.js").display());
    let args = [
        entry.to_string_lossy().into_owned(),
        "--bundle".into(),
        "--minify".into(),
        "--format=iife".into(),
        // ECharts is Apache-2.0: its notice stays in the file.
        "--legal-comments=eof".into(),
        out,
    ];
    // esbuild resolves `echarts/…` from the entry's directory upwards, or NODE_PATH.
    let node_path = npm_dir.join("node_modules");
    let env = [("NODE_PATH", node_path.as_os_str())];
    sh::run_env(root, &esbuild, &args, &env).context("bundling ECharts")
}

/// The field screens' release wasm (wasm-opt -Oz) before the coordinator's desk existed
/// (commit 6feb252, this toolchain), in bytes.
const FIELD_WASM_BEFORE_DESK: u64 = 1_795_566;
/// How much the desk may grow the field screens' wasm: they must not carry the desk.
const DESK_GROWTH_LIMIT: f64 = 0.10;

/// The two pages' wasm sizes in `src-ui/dist`.
#[derive(Debug, Clone, Copy)]
pub struct UiSizes {
    pub field: u64,
    pub desk: u64,
}

/// The `.wasm` of a built page.
fn page_wasm(dir: &Path) -> Result<PathBuf> {
    std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "wasm"))
        .with_context(|| format!("no .wasm in {}", dir.display()))
}

/// Fails when the field screens' wasm grew by more than [`DESK_GROWTH_LIMIT`] over its size
/// before the desk, or when the field page loads the chart library (only the desk may).
pub fn check_ui_sizes(root: &Path) -> Result<UiSizes> {
    let dist = root.join("src-ui/dist");
    let sizes = UiSizes {
        field: std::fs::metadata(page_wasm(&dist)?)?.len(),
        desk: std::fs::metadata(page_wasm(&dist.join("desk"))?)?.len(),
    };
    let growth = sizes.field as f64 / FIELD_WASM_BEFORE_DESK as f64 - 1.0;
    println!(
        "    field wasm {} ({:+.1} % against {} before the desk), desk wasm {}",
        kb(sizes.field),
        growth * 100.0,
        kb(FIELD_WASM_BEFORE_DESK),
        kb(sizes.desk)
    );
    if growth > DESK_GROWTH_LIMIT {
        bail!(
            "the field screens' wasm grew {:.1} % (limit {:.0} %): something links the desk's code into it",
            growth * 100.0,
            DESK_GROWTH_LIMIT * 100.0
        );
    }
    let field_page = std::fs::read_to_string(dist.join("index.html"))?;
    let desk_page = std::fs::read_to_string(dist.join("desk/index.html"))?;
    if field_page.contains("echarts") || !desk_page.contains("echarts.min.js") {
        bail!("the chart library must load on the desk page only");
    }
    Ok(sizes)
}

/// Builds the app with the UI embedded (`custom-protocol`) and returns the binary.
pub fn build_app(root: &Path, release: bool) -> Result<PathBuf> {
    let cargo = sh::cargo();
    let mut args = vec![
        "build",
        "--locked",
        "-p",
        APP_PACKAGE,
        "--features",
        "custom-protocol",
    ];
    if release {
        args.push("--release");
    }
    println!("$ {}", sh::display(&cargo, &args));
    sh::run(root, &cargo, &args).context("building the app")?;
    let profile = if release { "release" } else { "debug" };
    let binary = sh::target_dir(root).join(profile).join(APP_BIN);
    if !binary.is_file() {
        bail!("built the app but found no binary at {}", binary.display());
    }
    Ok(binary)
}

/// Builds the bureau and CLI binaries (debug) the demo and the tests drive.
fn build_servers(root: &Path) -> Result<(PathBuf, PathBuf)> {
    build_servers_in(root, false)
}

/// The bureau and CLI binaries, in release for the benchmarks.
fn build_servers_in(root: &Path, release: bool) -> Result<(PathBuf, PathBuf)> {
    let cargo = sh::cargo();
    let mut args = vec![
        "build",
        "--locked",
        "-p",
        "fieldlog-bureau",
        "-p",
        "fieldlog-cli",
    ];
    if release {
        args.push("--release");
    }
    println!("$ {}", sh::display(&cargo, &args));
    sh::run(root, &cargo, &args)?;
    let dir = sh::target_dir(root).join(if release { "release" } else { "debug" });
    Ok((dir.join("fieldlog-bureau"), dir.join("fieldlog")))
}

/// An X display: `$DISPLAY` if set, or a private Xvfb that lives as long as this value.
#[derive(Debug)]
pub struct Display {
    pub name: String,
    xvfb: Option<Child>,
}

impl Display {
    pub fn get(width: u32, height: u32) -> Result<Display> {
        if let Some(name) = std::env::var("DISPLAY").ok().filter(|d| !d.is_empty()) {
            return Ok(Display { name, xvfb: None });
        }
        Display::private(width, height)
    }

    /// A private Xvfb even on a desktop (a chroot reaches it through `/tmp/.X11-unix`
    /// without an X cookie).
    pub fn private(width: u32, height: u32) -> Result<Display> {
        // -displayfd: Xvfb picks a free display and writes its number when it is ready.
        let screen = format!("{width}x{height}x24");
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &screen,
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting Xvfb")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("Xvfb stdout")?).read_line(&mut line)?;
        let number = line.trim().to_string();
        let display = Display {
            name: format!(":{number}"),
            xvfb: Some(child),
        };
        if number.is_empty() {
            bail!("Xvfb did not report a display");
        }
        Ok(display)
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        // SIGTERM lets Xvfb remove its socket and lock file; SIGKILL if it lingers.
        let Some(mut xvfb) = self.xvfb.take() else {
            return;
        };
        let _ = Command::new("kill").arg(xvfb.id().to_string()).status();
        for _ in 0..20 {
            if matches!(xvfb.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = xvfb.kill();
        let _ = xvfb.wait();
    }
}

/// Whom `run --demo --coordinator` enrolls the app as (the bureau's first coordinator).
const COORDINATOR: &str = "王协调";

const RUN_HELP: &str = "\
Usage: cargo xtask run [--demo [--coordinator] | --cli]

Builds the UI (trunk) and the app with the UI embedded, then launches it on your display.
  --demo         also starts a local bureau on loopback with assets/demo-registry.csv and
                 enrolls the app in team caravan-1, so sync works at once (data under
                 <target dir>/demo/); Enter in this terminal takes the bureau out of signal,
                 and Enter again brings it back
  --coordinator  with --demo: the bureau holds a generated region instead (3,000 visits over
                 this year and the last in 7 districts, logged by 8 crew and tutor devices,
                 with duplicates, conflicts and schools entered in the field), and the app is
                 enrolled as its coordinator 王协调, synced before it opens
  --cli          instead walks through the fieldlog CLI on a fresh data dir";

pub fn run(args: &[String]) -> Result<()> {
    let (mut demo, mut coordinator) = (false, false);
    for arg in args {
        match arg.as_str() {
            "--demo" => demo = true,
            "--coordinator" => coordinator = true,
            "-h" | "--help" => {
                println!("{RUN_HELP}");
                return Ok(());
            }
            other => bail!("unknown option `{other}`\n\n{RUN_HELP}"),
        }
    }
    if coordinator && !demo {
        bail!("--coordinator goes with --demo\n\n{RUN_HELP}");
    }
    let root = sh::workspace_root()?;
    println!("==> toolchain");
    let tools = ensure_app_toolchain(&root)?;
    println!("==> build");
    build_ui(&root, &tools)?;
    let app = build_app(&root, false)?;
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        bail!("no display: run this from a desktop session (the tests use Xvfb on their own)");
    }
    let mut env: Vec<(&str, OsString)> = Vec::new();
    let bureau = if demo {
        let servers = build_servers(&root)?;
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let demo_dir = sh::target_dir(&root).join("demo");
        let (bureau, device_dir) = if coordinator {
            coordinator_demo(&root, &servers, &demo_dir.join(format!("region-{stamp}")))?
        } else {
            volunteer_demo(&root, &servers, &demo_dir, stamp)?
        };
        env.push(("FIELDLOG_DATA_DIR", device_dir.into_os_string()));
        Some(bureau)
    } else {
        None
    };
    println!("==> launch {}", app.display());
    let mut child = Command::new(&app)
        .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
        .spawn()
        .context("starting the app")?;
    let status = match bureau {
        Some(bureau) => signal_switch(bureau, &mut child)?,
        None => child.wait()?,
    };
    if !status.success() {
        bail!("the app exited with {status}");
    }
    Ok(())
}

/// `run --demo`: a bureau with the demo registry, and the app's data dir enrolled in team
/// caravan-1.
fn volunteer_demo(
    root: &Path,
    (bureau_bin, cli_bin): &(PathBuf, PathBuf),
    demo_dir: &Path,
    stamp: u64,
) -> Result<(DemoBureau, PathBuf)> {
    let bureau = DemoBureau::start(root, bureau_bin, &demo_dir.join(format!("bureau-{stamp}")))?;
    let device_dir = demo_dir.join(format!("app-{stamp}"));
    let device = device_dir.to_string_lossy().into_owned();
    let code = bureau.code("caravan-1", "演示志愿者", "volunteer")?;
    for cli_args in [
        vec![
            "--data-dir",
            &device,
            "init",
            "--device-name",
            "演示平板",
            "--team",
            "caravan-1",
        ],
        vec!["--data-dir", &device, "enroll", &bureau.url, &code],
    ] {
        println!("$ {}", sh::display("fieldlog", &cli_args));
        sh::run(root, cli_bin, &cli_args)?;
    }
    println!(
        "==> demo: bureau at {}; the app's data dir is {device}\n    \
         to see what reached the bureau: {} --data-dir {} visits",
        bureau.url,
        bureau_bin.display(),
        bureau.dir.display()
    );
    Ok((bureau, device_dir))
}

/// `run --demo --coordinator`: a bureau holding a generated region ([`crate::region`]), and the
/// app's data dir enrolled as the region's coordinator and synced, so the app opens on it.
fn coordinator_demo(
    root: &Path,
    (bureau_bin, cli_bin): &(PathBuf, PathBuf),
    region_dir: &Path,
) -> Result<(DemoBureau, PathBuf)> {
    let generator = crate::region::build_generator(root)?;
    println!("==> the region");
    let bureau_dir = region_dir.join("bureau");
    crate::region::setup(root, &generator, bureau_bin, &bureau_dir)?;
    let bureau = DemoBureau::serve_existing(bureau_bin, &bureau_dir)?;
    let phones_dir = region_dir.join("devices");
    let summary = crate::region::generate(
        root,
        &generator,
        bureau_bin,
        &bureau_dir,
        &bureau.url,
        &phones_dir,
    )?;
    println!("==> the app, enrolled as the coordinator {COORDINATOR}");
    let device_dir = region_dir.join("app");
    let device = device_dir.to_string_lossy().into_owned();
    let code = bureau.code("bureau", COORDINATOR, "coordinator")?;
    for cli_args in [
        vec![
            "--data-dir",
            &device,
            "init",
            "--device-name",
            "协调员电脑",
            "--team",
            "bureau",
        ],
        vec!["--data-dir", &device, "enroll", &bureau.url, &code],
        vec!["--data-dir", &device, "sync"],
        vec!["--data-dir", &device, "report"],
    ] {
        println!("$ {}", sh::display("fieldlog", &cli_args));
        sh::run(root, cli_bin, &cli_args)?;
    }
    crate::region::check(root, &generator, &device_dir, &summary)?;
    println!(
        "==> demo: bureau at {} (data dir {})\n    \
         the app's data dir (coordinator {COORDINATOR}) is {device}\n    \
         the crew and tutor devices' data dirs are under {}, what was made in {}\n    \
         the review queue from the command line: {} --data-dir {device} review",
        bureau.url,
        bureau.dir.display(),
        phones_dir.display(),
        summary.display(),
        cli_bin.display(),
    );
    Ok((bureau, device_dir))
}

/// While the demo app runs, each Enter on the terminal takes the bureau out of signal or
/// brings it back, so a newcomer can watch a visit wait offline and then sync on its own.
fn signal_switch(mut bureau: DemoBureau, app: &mut Child) -> Result<ExitStatus> {
    println!("    press Enter to take the bureau out of signal, and Enter again to bring it back");
    let (enter, pressed) = mpsc::channel();
    std::thread::spawn(move || {
        for _ in std::io::stdin().lock().lines().map_while(Result::ok) {
            if enter.send(()).is_err() {
                break;
            }
        }
    });
    loop {
        if let Some(status) = app.try_wait()? {
            return Ok(status);
        }
        match pressed.recv_timeout(Duration::from_millis(200)) {
            Ok(()) if bureau.is_running() => {
                bureau.stop();
                println!("==> the bureau is out of signal; the app keeps working offline");
            }
            Ok(()) => match bureau.restart() {
                Ok(()) => println!(
                    "==> the bureau is back at {}; the app syncs on its own",
                    bureau.url
                ),
                Err(error) => println!("    the bureau did not start again: {error:#}"),
            },
            Err(_) => {}
        }
    }
}

/// A `fieldlog-bureau serve` for the demo: team caravan-1 and the demo registry, or a
/// generated region.
struct DemoBureau {
    bin: PathBuf,
    dir: PathBuf,
    url: String,
    child: Option<Child>,
}

impl DemoBureau {
    fn start(root: &Path, bin: &Path, dir: &Path) -> Result<DemoBureau> {
        let data_dir = dir.to_string_lossy().into_owned();
        let registry = root.join(REGISTRY).to_string_lossy().into_owned();
        for args in [
            vec![
                "init",
                "--coordinator",
                "王协调",
                "--districts",
                DEMO_DISTRICTS,
            ],
            vec![
                "team",
                "add",
                "--team",
                "caravan-1",
                "--kind",
                "caravan",
                "--districts",
                "南山区,青溪县",
            ],
            vec!["school", "import", &registry],
        ] {
            let mut full = vec!["--data-dir", data_dir.as_str()];
            full.extend(args);
            // The coordinator's code is printed; the demo does not need it.
            sh::capture(root, bin, &full)?;
        }
        DemoBureau::serve_existing(bin, dir)
    }

    /// Serves a bureau already set up in `dir` on a free loopback port.
    fn serve_existing(bin: &Path, dir: &Path) -> Result<DemoBureau> {
        let (child, url) = serve(bin, dir, "127.0.0.1:0")?;
        Ok(DemoBureau {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            url,
            child: Some(child),
        })
    }

    fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Serves again at the same address, so the enrolled app finds it.
    fn restart(&mut self) -> Result<()> {
        let address = self.url.trim_start_matches("http://");
        let (child, _) = serve(&self.bin, &self.dir, address)?;
        self.child = Some(child);
        Ok(())
    }

    /// A one-time enrollment code for `member` of `team` with `role` (volunteer or
    /// coordinator; a coordinator's team is `bureau`).
    fn code(&self, team: &str, member: &str, role: &str) -> Result<String> {
        let data_dir = self.dir.to_string_lossy().into_owned();
        let out = sh::capture(
            &self.dir,
            &self.bin,
            &[
                "--data-dir",
                &data_dir,
                "--json",
                "enroll",
                "--team",
                team,
                "--member",
                member,
                "--role",
                role,
            ],
        )?;
        let key = "\"code\":\"";
        let start = out.find(key).context("no code in the bureau's answer")? + key.len();
        let end = out[start..].find('"').context("unterminated code")? + start;
        Ok(out[start..end].to_string())
    }
}

impl Drop for DemoBureau {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `fieldlog-bureau serve` on `listen` and returns it with the URL it announced.
fn serve(bin: &Path, dir: &Path, listen: &str) -> Result<(Child, String)> {
    let mut child = Command::new(bin)
        .arg("--data-dir")
        .arg(dir)
        .args(["serve", "--listen", listen])
        .env("FIELDLOG_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the bureau")?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    match line.trim().strip_prefix("listening on ") {
        Some(url) => Ok((child, url.to_string())),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the bureau did not start on {listen}: {line:?}")
        }
    }
}

/// The end-to-end step of `cargo xtask test`: the real app (UI embedded) through
/// tauri-driver against a real bureau, under Xvfb when there is no display.
pub fn e2e(root: &Path) -> Result<()> {
    let tools = ensure_app_toolchain(root)?;
    build_ui(root, &tools)?;
    check_ui_sizes(root)?;
    let app = build_app(root, false)?;
    let (bureau, cli) = build_servers(root)?;
    let display = Display::get(1280, 900)?;
    let artifacts = sh::target_dir(root).join("app-e2e");
    let cargo = sh::cargo();
    let args = ["test", "--locked", "-p", "fieldlog-app-e2e"];
    println!("$ {}", sh::display(&cargo, &args));
    let env = [
        ("PATH", tools.path.clone()),
        ("DISPLAY", OsString::from(&display.name)),
        ("FIELDLOG_APP_BIN", app.into_os_string()),
        ("FIELDLOG_BUREAU_BIN", bureau.into_os_string()),
        ("FIELDLOG_CLI_BIN", cli.into_os_string()),
        ("FIELDLOG_E2E_ARTIFACTS", artifacts.clone().into_os_string()),
    ];
    let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    sh::run_env(root, &cargo, &args, &env)?;
    println!(
        "    screenshots in {}",
        artifacts.join("screenshots").display()
    );
    Ok(())
}

/// `cargo xtask bench app`: release wasm size (raw and gzip), app binary size, and cold
/// start to the first rendered home screen under Xvfb (median of several runs).
pub fn bench(args: &[String]) -> Result<()> {
    let runs: usize = match args {
        [] => 7,
        [flag, n] if flag == "--runs" => n.parse().context("--runs takes a number")?,
        _ => bail!("usage: cargo xtask bench app [--runs N]"),
    };
    let root = sh::workspace_root()?;
    let tools = ensure_app_toolchain(&root)?;
    build_ui(&root, &tools)?;
    let app = build_app(&root, true)?;
    check_ui_sizes(&root)?;
    let dist = root.join("src-ui/dist");
    let wasm = page_wasm(&dist)?;
    let raw = std::fs::metadata(&wasm)?.len();
    let gzip = gzip_size(&root, &wasm)?;
    let desk_wasm = page_wasm(&dist.join("desk"))?;
    let desk_raw = std::fs::metadata(&desk_wasm)?.len();
    let desk_gzip = gzip_size(&root, &desk_wasm)?;
    let charts = root.join("src-ui/vendor/echarts.min.js");
    let charts_gzip = gzip_size(&root, &charts)?;
    let binary = std::fs::metadata(&app)?.len();
    // The release profile keeps line tables for profiling; a shipped binary has none.
    let stripped = tools_dir(&root).join("fieldlog-app.stripped");
    let strip_args = [OsStr::new("-o"), stripped.as_os_str(), app.as_os_str()];
    sh::run(&root, "strip", &strip_args).context("stripping a copy of the app")?;
    let stripped_bytes = std::fs::metadata(&stripped)?.len();
    let stripped_gzip = gzip_size(&root, &stripped)?;
    println!("==> sizes");
    println!(
        "    field screens' wasm (release, wasm-opt -Oz): {} raw, {} gzip; before the desk {} raw ({:.3}×)",
        kb(raw),
        kb(gzip),
        kb(FIELD_WASM_BEFORE_DESK),
        raw as f64 / FIELD_WASM_BEFORE_DESK as f64
    );
    println!(
        "    desk wasm: {} raw, {} gzip; its charts (trimmed ECharts): {} raw, {} gzip",
        kb(desk_raw),
        kb(desk_gzip),
        kb(std::fs::metadata(&charts)?.len()),
        kb(charts_gzip)
    );
    println!(
        "    app binary (release, UI embedded): {} as built, {} stripped ({} gzip)",
        mb(binary),
        mb(stripped_bytes),
        mb(stripped_gzip)
    );

    println!("==> cold start to the first rendered home screen ({runs} runs, Xvfb)");
    let mut times = Vec::new();
    for run in 1..=runs {
        let display = Display::get(1280, 800)?;
        let data_dir = tempdir(&root, run)?;
        let elapsed = cold_start(&app, &display, &data_dir)?;
        println!("    run {run}: {:.0} ms", elapsed.as_secs_f64() * 1e3);
        times.push(elapsed);
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!("    median: {:.0} ms", median.as_secs_f64() * 1e3);

    println!("==> the desk's dashboard over 100,000 visits (release app and CLI, Xvfb)");
    let (bureau, cli) = build_servers_in(&root, true)?;
    let display = Display::get(1280, 900)?;
    let artifacts = sh::target_dir(&root).join("app-e2e");
    let cargo = sh::cargo();
    let args = [
        "test",
        "--release",
        "--locked",
        "-p",
        "fieldlog-app-e2e",
        "--test",
        "desk_bench",
        "--",
        "--ignored",
        "--nocapture",
    ];
    println!("$ {}", sh::display(&cargo, &args));
    let env = [
        ("PATH", tools.path.clone()),
        ("DISPLAY", OsString::from(&display.name)),
        ("FIELDLOG_APP_BIN", app.into_os_string()),
        ("FIELDLOG_BUREAU_BIN", bureau.into_os_string()),
        ("FIELDLOG_CLI_BIN", cli.into_os_string()),
        ("FIELDLOG_E2E_ARTIFACTS", artifacts.into_os_string()),
    ];
    let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    sh::run_env(&root, &cargo, &args, &env)
}

/// Time from exec to the UI's `first-render` mark, which the app prints on stdout when
/// `FIELDLOG_REPORT_FIRST_RENDER` is set.
fn cold_start(app: &Path, display: &Display, data_dir: &Path) -> Result<Duration> {
    let start = Instant::now();
    let mut child = Command::new(app)
        .env("DISPLAY", &display.name)
        .env("FIELDLOG_DATA_DIR", data_dir)
        .env("FIELDLOG_REPORT_FIRST_RENDER", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the app")?;
    let stdout = child.stdout.take().context("app stdout")?;
    let mut seen = None;
    for line in BufReader::new(stdout).lines() {
        if line?.trim() == "first-render" {
            seen = Some(start.elapsed());
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    seen.context("the app exited before it rendered the home screen")
}

fn tempdir(root: &Path, run: usize) -> Result<PathBuf> {
    let dir = tools_dir(root).join(format!("bench-start-{}-{run}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn gzip_size(root: &Path, file: &Path) -> Result<u64> {
    let mut child = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(file)
        .current_dir(root)
        .stdout(Stdio::piped())
        .spawn()
        .context("running gzip")?;
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .context("gzip stdout")?
        .read_to_end(&mut out)?;
    child.wait()?;
    Ok(out.len() as u64)
}

fn kb(bytes: u64) -> String {
    format!("{:.1} KB", bytes as f64 / 1024.0)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}
