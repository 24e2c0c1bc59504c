//! `cargo xtask bundle [--check] [--debug]`: the app as a Debian package, and a test that
//! installs it on a clean Debian 12 and sees the home screen.
//!
//! **Building.** The release UI ([`app::build_ui`]) and app (`custom-protocol`), then a stripped
//! copy of the binary in `<target dir>/bundle/stage/<profile>/`, which `tauri bundle --bundles
//! deb` (the Tauri CLI from npm, in the app tools dir) packages: the app is compiled once, and
//! cargo's own output is never rewritten. `tauri.conf.json` lists the icons relative to the
//! root, where `generate_context!` reads them; the CLI reads the same file through the symlink
//! `src-tauri/tauri.conf.json` but resolves paths from `src-tauri`, so the icons and the desktop
//! entry ([`DESKTOP_TEMPLATE`], with `Name[zh_CN]`) reach it as absolute paths in a config
//! overlay. The package's desktop entry and `Depends` are checked before the path is printed.
//!
//! **Checking** (`--check`). A Debian 12 `debootstrap --variant=minbase` tree with the zh_CN.UTF-8
//! locale and CJK fonts ([`BASE_PACKAGES`]), unpacked from a tarball cached in
//! `~/.cache/fieldlog/`, gets the package with `dpkg -i` and its dependencies with
//! `apt-get -f install --no-install-recommends`, so `Depends` alone must be enough (downloaded
//! packages are kept in `~/.cache/fieldlog/` for the next run). The installed binary then starts on Xvfb with a fresh
//! home (so a fresh data dir) in Chinese, must print `first-render` within
//! [`FIRST_RENDER_TIMEOUT`], and the screen is saved as `<target dir>/bundle/installed-home.png`.
//! A guard kills what runs in the chroot and undoes every mount, on failure too.
//!
//! `--debug` packages the debug build instead (what CI's app e2e step already built), so CI
//! checks the package without a release build.

use crate::app;
use crate::sh::{self, Stopwatch};
use anyhow::{Context, Result, bail};
use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The Tauri CLI from npm, on the 2.x line of the `tauri` crate (prebuilt, about 3 s).
const TAURI_CLI_VERSION: &str = "2.12.6";
/// The Debian release the install test runs on.
const SUITE: &str = "bookworm";
/// What the clean system has beyond `minbase`: what a Chinese desktop has, the zh_CN.UTF-8
/// locale and CJK fonts (the package only recommends the fonts, and the test installs no
/// recommends). Part of the cached tarball's name, so a change makes a new one.
const BASE_PACKAGES: &[&str] = &["locales", "fonts-noto-cjk"];
/// How long the installed app may take to show its first screen (a cold chroot builds its
/// font cache first).
const FIRST_RENDER_TIMEOUT: Duration = Duration::from_secs(120);
/// A rendered screen has many colours (text is anti-aliased); a blank one has one or two.
const MIN_SCREENSHOT_COLOURS: u64 = 64;

/// The desktop entry (a Tauri bundler template: `{{name}}` and the rest are filled from
/// tauri.conf.json).
const DESKTOP_TEMPLATE: &str = "\
[Desktop Entry]
Type=Application
Name={{name}}
Name[zh_CN]=田野日志
GenericName=Field work log
GenericName[zh_CN]=科普活动记录
Comment={{comment}}
Comment[zh_CN]=离线记录科普进校园活动
Exec={{exec}}
StartupWMClass={{exec}}
Icon={{icon}}
Categories={{categories}}
Keywords=science;outreach;school;visit;
Keywords[zh_CN]=科普;进校园;科技辅导员;大篷车;
Terminal=false
";

/// What the package must say, checked on every build.
const DESKTOP_MUST_HAVE: &[&str] = &[
    "Name=Fieldlog",
    "Name[zh_CN]=田野日志",
    "Categories=Education;",
];

const USAGE: &str = "\
Usage: cargo xtask bundle [--check] [--debug]

Builds the UI and the app (release, UI embedded) and packages them as a .deb with the Tauri
bundler; prints the package's path and size.
  --check  then installs the package in a clean Debian 12 chroot (dpkg -i, apt-get -f install),
           starts it on Xvfb and waits for the home screen; the screenshot is saved as
           <target dir>/bundle/installed-home.png
  --debug  packages the debug build (what `cargo xtask test` checks) instead of a release build";

pub fn bundle(args: &[String]) -> Result<()> {
    let (mut check, mut debug) = (false, false);
    for arg in args {
        match arg.as_str() {
            "--check" => check = true,
            "--debug" => debug = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown option `{other}`\n\n{USAGE}"),
        }
    }
    let root = sh::workspace_root()?;
    let total = Stopwatch::start();
    println!("==> toolchain");
    let tools = app::ensure_app_toolchain(&root)?;
    let tauri = ensure_tauri_cli(&root)?;
    println!("==> build");
    let clock = Stopwatch::start();
    let binary = if debug {
        // The debug build packages whatever UI is there, as the e2e step left it.
        if !root.join("src-ui/dist/index.html").is_file() {
            app::build_ui(&root, &tools)?;
        }
        app::build_app(&root, false)?
    } else {
        app::build_ui(&root, &tools)?;
        app::build_app(&root, true)?
    };
    println!("    built in {:.1} s", clock.seconds());
    let deb = package(&root, &tauri, &binary, !debug)?;
    if check {
        check_install(&root, &deb)?;
    }
    println!("==> bundle: done in {:.1} s", total.seconds());
    Ok(())
}

/// CI's step: packages the debug build the app e2e step made and installs it in a clean chroot.
pub fn check_debug_package(root: &Path) -> Result<()> {
    let tauri = ensure_tauri_cli(root)?;
    // Nothing to do when the e2e step built it; the UI is left as that step built it.
    let binary = app::build_app(root, false)?;
    let deb = package(root, &tauri, &binary, false)?;
    check_install(root, &deb)
}

/// Installs the Tauri CLI from npm into the app tools dir, unless that version is there.
fn ensure_tauri_cli(root: &Path) -> Result<PathBuf> {
    let dir = sh::target_dir(root).join("app-tools/tauri-cli");
    let cli = dir.join("node_modules/.bin/tauri");
    let have = sh::capture(root, &cli, &["--version"]).unwrap_or_default();
    if have.trim() == format!("tauri-cli {TAURI_CLI_VERSION}") {
        println!("    tauri-cli {TAURI_CLI_VERSION}: present");
        return Ok(cli);
    }
    fs::create_dir_all(&dir)?;
    let package = format!("@tauri-apps/cli@{TAURI_CLI_VERSION}");
    let prefix = dir.to_string_lossy().into_owned();
    let args = ["install", "--prefix", prefix.as_str(), package.as_str()];
    println!("$ {}", sh::display("npm", &args));
    sh::run(root, "npm", &args).context("installing the Tauri CLI from npm")?;
    Ok(cli)
}

/// Packages `binary` as a .deb with the Tauri bundler, checks it, and returns its path.
fn package(root: &Path, tauri: &Path, binary: &Path, release: bool) -> Result<PathBuf> {
    println!("==> package (tauri bundle --bundles deb)");
    let clock = Stopwatch::start();
    let profile = if release { "release" } else { "debug" };
    let stage = sh::target_dir(root).join("bundle/stage");
    let staged_dir = stage.join(profile);
    fs::create_dir_all(&staged_dir)?;
    let name = binary
        .file_name()
        .context("the app binary has no file name")?;
    let staged = staged_dir.join(name);
    // Stripped: the release profile keeps line tables, which a user does not need.
    let strip_args = [OsStr::new("-o"), staged.as_os_str(), binary.as_os_str()];
    sh::run(root, "strip", &strip_args).context("stripping a copy of the app")?;

    let config =
        fs::read_to_string(root.join("tauri.conf.json")).context("reading tauri.conf.json")?;
    let mut icons = Vec::new();
    for icon in listed_icons(&config)? {
        let path = root.join(icon);
        if !path.is_file() {
            bail!("tauri.conf.json lists the icon {icon}, which does not exist");
        }
        icons.push(json_string(&path)?);
    }
    let template = stage.join("fieldlog.desktop");
    fs::write(&template, DESKTOP_TEMPLATE)?;
    let overlay = format!(
        r#"{{"bundle":{{"icon":[{}],"linux":{{"deb":{{"desktopTemplate":{}}}}}}}}}"#,
        icons.join(","),
        json_string(&template)?
    );
    let overlay_file = stage.join("overlay.json");
    fs::write(&overlay_file, overlay)?;

    let out_dir = staged_dir.join("bundle/deb");
    let _ = fs::remove_dir_all(&out_dir);
    let mut args: Vec<&OsStr> = ["bundle", "--bundles", "deb", "--ci", "--no-sign"]
        .map(OsStr::new)
        .to_vec();
    // The bundle-type mark is for Tauri's updater, which the app does not use; the stripped
    // copy no longer has the symbol it patches.
    args.push(OsStr::new("--no-binary-patching"));
    args.extend([OsStr::new("--config"), overlay_file.as_os_str()]);
    if !release {
        args.push(OsStr::new("--debug"));
    }
    let env = [
        // The CLI looks for the config beside a package manifest.
        ("TAURI_APP_PATH", OsStr::new("src-tauri")),
        // It takes the binary from `<target dir>/<profile>/`: the stripped copy.
        ("CARGO_TARGET_DIR", stage.as_os_str()),
    ];
    println!(
        "$ TAURI_APP_PATH=src-tauri CARGO_TARGET_DIR={} {}",
        stage.display(),
        sh::display("tauri", &args)
    );
    sh::run_env(root, tauri, &args, &env).context("bundling the .deb")?;
    let deb = fs::read_dir(&out_dir)
        .with_context(|| format!("reading {}", out_dir.display()))?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|e| e == "deb"))
        .with_context(|| format!("the bundler made no .deb in {}", out_dir.display()))?;
    check_package(root, &deb)?;
    let size = fs::metadata(&deb)?.len();
    println!(
        "    {} ({:.1} MB, {profile} build) in {:.1} s",
        deb.display(),
        size as f64 / (1024.0 * 1024.0),
        clock.seconds()
    );
    Ok(deb)
}

/// The package's desktop entry has the names and category, and it depends on WebKitGTK.
fn check_package(root: &Path, deb: &Path) -> Result<()> {
    let deb_arg = deb.to_string_lossy().into_owned();
    let fields = sh::capture(
        root,
        "dpkg-deb",
        &["--field", &deb_arg, "Package", "Depends"],
    )?;
    print!("{}", indent(&fields));
    if !fields.contains("libwebkit2gtk-4.1-0") {
        bail!("the package does not depend on libwebkit2gtk-4.1-0:\n{fields}");
    }
    let contents = sh::capture(root, "dpkg-deb", &["--contents", &deb_arg])?;
    let entry_path = contents
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .find(|path| path.starts_with("usr/share/applications/") && path.ends_with(".desktop"))
        .context("the package has no desktop entry")?;
    let mut unpack = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting dpkg-deb")?;
    let tar = unpack.stdout.take().context("dpkg-deb stdout")?;
    let entry = Command::new("tar")
        .args(["-xO", entry_path])
        .stdin(tar)
        .output()
        .context("running tar")?;
    unpack.wait()?;
    let entry = String::from_utf8(entry.stdout).context("the desktop entry is not UTF-8")?;
    for line in DESKTOP_MUST_HAVE {
        if !entry.lines().any(|l| l == *line) {
            bail!("the desktop entry {entry_path} lacks `{line}`:\n{entry}");
        }
    }
    println!("    desktop entry /{entry_path}: Name, Name[zh_CN]=田野日志, Categories=Education");
    Ok(())
}

/// Installs `deb` in a clean Debian chroot, starts it on Xvfb and waits for its home screen.
fn check_install(root: &Path, deb: &Path) -> Result<()> {
    println!("==> install test (a clean Debian 12 chroot)");
    let total = Stopwatch::start();
    if sh::capture(root, "id", &["-u"])?.trim() != "0" {
        bail!("the install test needs root (debootstrap, mount, chroot); run it as root");
    }
    crate::ci::ensure_apt_tool(root, "debootstrap", "debootstrap")?;
    let cache = cache_dir(root);
    fs::create_dir_all(&cache)?;
    let tarball = cache.join(format!(
        "debian-{SUITE}-minbase+{}.tar.gz",
        BASE_PACKAGES.join("+")
    ));
    if tarball.is_file() {
        println!("    {}: present", tarball.display());
    } else {
        make_pristine_tarball(root, &tarball)?;
    }

    let out = sh::target_dir(root).join("bundle");
    let chroot = out.join("chroot");
    remove_tree(root, &chroot)?;
    fs::create_dir_all(&chroot)?;
    let clock = Stopwatch::start();
    let tar_args = [
        OsStr::new("-xzf"),
        tarball.as_os_str(),
        OsStr::new("-C"),
        chroot.as_os_str(),
        OsStr::new("--numeric-owner"),
    ];
    sh::run(root, "tar", &tar_args).context("unpacking the pristine chroot")?;
    println!("    unpacked in {:.1} s", clock.seconds());

    let outcome = install_and_start(root, deb, &chroot, &cache, &out);
    // The guard inside has undone the mounts; the tree goes, whatever happened.
    let removed = remove_tree(root, &chroot);
    outcome?;
    removed?;
    println!("    install test: ok in {:.1} s", total.seconds());
    Ok(())
}

fn install_and_start(
    root: &Path,
    deb: &Path,
    chroot: &Path,
    cache: &Path,
    out: &Path,
) -> Result<()> {
    let display = crate::app::Display::private(1280, 800)?;
    let archives = cache.join(format!("debian-{SUITE}-apt-archives"));
    fs::create_dir_all(archives.join("partial"))?;
    let mut mounts = ChrootMounts::new(root, chroot);
    mounts.mount("proc", &["-t", "proc", "proc"])?;
    mounts.mount("sys", &["-t", "sysfs", "sysfs"])?;
    mounts.mount("dev", &["--bind", "/dev"])?;
    mounts.mount("dev/pts", &["--bind", "/dev/pts"])?;
    mounts.mount("dev/shm", &["-t", "tmpfs", "tmpfs"])?;
    mounts.mount("run", &["-t", "tmpfs", "tmpfs"])?;
    mounts.mount("tmp/.X11-unix", &["--bind", "/tmp/.X11-unix"])?;
    let archives_arg = archives.to_string_lossy().into_owned();
    mounts.mount("var/cache/apt/archives", &["--bind", &archives_arg])?;
    fs::copy("/etc/resolv.conf", chroot.join("etc/resolv.conf")).context("copying resolv.conf")?;
    let deb_name = deb.file_name().context("the package has no file name")?;
    fs::copy(deb, chroot.join("tmp").join(deb_name))?;
    let deb_in_chroot = format!("/tmp/{}", deb_name.to_string_lossy());

    println!("==> dpkg -i, apt-get -f install (in the chroot)");
    let clock = Stopwatch::start();
    // dpkg unpacks the package and stops at the missing dependencies; apt-get fetches them.
    println!("    (dpkg is expected to stop at the missing dependencies)");
    if in_chroot(root, chroot, &["dpkg", "-i", &deb_in_chroot]).is_ok() {
        println!("    dpkg -i found every dependency already there");
    }
    in_chroot(root, chroot, &["apt-get", "update", "-q"])?;
    let fix = [
        "apt-get",
        "-f",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
    ];
    in_chroot(root, chroot, &fix)?;
    let status = sh::capture(
        root,
        "chroot",
        &[
            &chroot.to_string_lossy(),
            "dpkg-query",
            "-W",
            "-f=${Status}",
            "fieldlog",
        ],
    )?;
    if status.trim() != "install ok installed" {
        bail!("after apt-get -f install the package is `{status}`, not installed");
    }
    // Keeps only what the mirror still has, so the download cache stays small.
    in_chroot(root, chroot, &["apt-get", "autoclean", "-q"])?;
    println!("    installed in {:.1} s", clock.seconds());

    println!(
        "==> start the installed app (Xvfb {}, zh_CN.UTF-8)",
        display.name
    );
    let clock = Stopwatch::start();
    let log = out.join("installed-app.log");
    let log_file = fs::File::create(&log)?;
    let chroot_arg = chroot.as_os_str();
    let display_env = format!("DISPLAY={}", display.name);
    let mut child = Command::new("chroot")
        .arg(chroot_arg)
        .args([
            "/usr/bin/env",
            "-i",
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "HOME=/root",
            "LANG=zh_CN.UTF-8",
            "FIELDLOG_REPORT_FIRST_RENDER=1",
            &display_env,
            "/usr/bin/fieldlog-app",
        ])
        .stdout(Stdio::piped())
        .stderr(log_file)
        .process_group(0)
        .spawn()
        .context("starting the installed app")?;
    let stdout = child.stdout.take().context("app stdout")?;
    let (rendered, first_render) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.trim() == "first-render" {
                let _ = rendered.send(());
            }
        }
    });
    let waited = first_render.recv_timeout(FIRST_RENDER_TIMEOUT);
    let seconds = clock.seconds();
    let screenshot = out.join("installed-home.png");
    let shot = match waited {
        Ok(()) => {
            println!("    first-render after {seconds:.1} s");
            let shot_args = [
                OsStr::new("-display"),
                OsStr::new(&display.name),
                OsStr::new("-window"),
                OsStr::new("root"),
                screenshot.as_os_str(),
            ];
            sh::run(root, "import", &shot_args).context("taking the screenshot")
        }
        Err(_) => Ok(()),
    };
    // The app and its WebKit processes all run inside the chroot.
    kill_processes_in(chroot);
    let exit = child.wait()?;
    if let Err(error) = waited {
        let why = match error {
            mpsc::RecvTimeoutError::Timeout => {
                format!("did not print first-render within {FIRST_RENDER_TIMEOUT:?}")
            }
            mpsc::RecvTimeoutError::Disconnected => format!("exited ({exit}) before first-render"),
        };
        bail!(
            "the installed app {why}; its stderr is in {}:\n{}",
            log.display(),
            tail(&log, 20)
        );
    }
    shot?;
    let colours: u64 = sh::capture(
        root,
        "identify",
        &["-format", "%k", &screenshot.to_string_lossy()],
    )?
    .trim()
    .parse()
    .context("reading the screenshot's colour count")?;
    if colours < MIN_SCREENSHOT_COLOURS {
        bail!(
            "the screenshot {} has only {colours} colours: the window looks blank",
            screenshot.display()
        );
    }
    let data_dir = chroot.join("root/.local/share");
    let store_files = walk_count(&data_dir);
    if store_files == 0 {
        bail!("the app wrote no data under ~/.local/share in the chroot");
    }
    println!(
        "    home screen: {} ({colours} colours); {store_files} files in the fresh data dir",
        screenshot.display()
    );
    drop(mounts);
    Ok(())
}

/// `debootstrap --variant=minbase` of Debian 12 with [`BASE_PACKAGES`] and the zh_CN.UTF-8
/// locale, the host's mirrors and security updates, packed into `tarball`.
fn make_pristine_tarball(root: &Path, tarball: &Path) -> Result<()> {
    println!(
        "==> debootstrap --variant=minbase {SUITE} (once; cached as {})",
        tarball.display()
    );
    let clock = Stopwatch::start();
    let (mirror, security) = host_mirrors();
    let work = tarball.with_extension("d");
    remove_tree(root, &work)?;
    let work_arg = work.to_string_lossy().into_owned();
    let include = format!("--include={}", BASE_PACKAGES.join(","));
    let args = [
        "--variant=minbase",
        include.as_str(),
        SUITE,
        work_arg.as_str(),
        mirror.as_str(),
    ];
    println!("$ {}", sh::display("debootstrap", &args));
    sh::run(root, "debootstrap", &args).context("debootstrap")?;
    fs::write(
        work.join("etc/apt/sources.list"),
        format!(
            "deb {mirror} {SUITE} main\ndeb {mirror} {SUITE}-updates main\n\
             deb {security} {SUITE}-security main\n"
        ),
    )?;
    fs::write(work.join("etc/locale.gen"), "zh_CN.UTF-8 UTF-8\n")?;
    in_chroot(root, &work, &["locale-gen"])?;
    // No package may start a service in the chroot.
    let policy = work.join("usr/sbin/policy-rc.d");
    fs::write(&policy, "#!/bin/sh\nexit 101\n")?;
    sh::run(root, "chmod", &[OsStr::new("755"), policy.as_os_str()])?;
    in_chroot(root, &work, &["apt-get", "clean"])?;
    let partial = tarball.with_extension("partial");
    let tar_args = [
        OsStr::new("-czf"),
        partial.as_os_str(),
        OsStr::new("--numeric-owner"),
        OsStr::new("-C"),
        work.as_os_str(),
        OsStr::new("."),
    ];
    sh::run(root, "tar", &tar_args).context("packing the pristine chroot")?;
    fs::rename(&partial, tarball)?;
    remove_tree(root, &work)?;
    let size = fs::metadata(tarball)?.len();
    println!(
        "    {} ({:.0} MB) in {:.1} s",
        tarball.display(),
        size as f64 / (1024.0 * 1024.0),
        clock.seconds()
    );
    Ok(())
}

/// The Debian and security mirrors the host's apt uses (only these may be reachable).
fn host_mirrors() -> (String, String) {
    let mut uris = Vec::new();
    let sources = fs::read_dir("/etc/apt/sources.list.d")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .chain([PathBuf::from("/etc/apt/sources.list")]);
    for file in sources {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("URIs:") {
                uris.extend(rest.split_whitespace().map(str::to_string));
            } else if let Some(rest) = line.strip_prefix("deb ") {
                uris.extend(
                    rest.split_whitespace()
                        .find(|w| w.contains("://"))
                        .map(str::to_string),
                );
            }
        }
    }
    let pick = |suffix: &str, fallback: &str| {
        uris.iter()
            .map(|uri| uri.trim_end_matches('/'))
            .find(|uri| uri.ends_with(suffix))
            .unwrap_or(fallback)
            .to_string()
    };
    (
        pick("/debian", "http://deb.debian.org/debian"),
        pick("/debian-security", "http://deb.debian.org/debian-security"),
    )
}

/// Runs a command inside the chroot with a clean environment.
fn in_chroot(root: &Path, chroot: &Path, command: &[&str]) -> Result<()> {
    let mut args: Vec<&OsStr> = vec![chroot.as_os_str()];
    args.extend(
        [
            "/usr/bin/env",
            "-i",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME=/root",
            "LANG=C.UTF-8",
            "DEBIAN_FRONTEND=noninteractive",
        ]
        .map(OsStr::new),
    );
    args.extend(command.iter().map(OsStr::new));
    println!("$ (chroot) {}", sh::display(command[0], &command[1..]));
    sh::run(root, "chroot", &args)
}

/// Mounts inside a chroot, undone in reverse order when dropped, after killing every process
/// that still runs in it.
#[derive(Debug)]
struct ChrootMounts {
    root: PathBuf,
    chroot: PathBuf,
    mounted: Vec<PathBuf>,
}

impl ChrootMounts {
    fn new(root: &Path, chroot: &Path) -> ChrootMounts {
        ChrootMounts {
            root: root.to_path_buf(),
            chroot: chroot.to_path_buf(),
            mounted: Vec::new(),
        }
    }

    /// `mount ARGS <chroot>/<at>`, made private so nothing propagates back to the host.
    fn mount(&mut self, at: &str, args: &[&str]) -> Result<()> {
        let target = self.chroot.join(at);
        fs::create_dir_all(&target)?;
        let mut full: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        full.push(target.as_os_str());
        sh::run(&self.root, "mount", &full)
            .with_context(|| format!("mounting {at} in the chroot"))?;
        self.mounted.push(target.clone());
        let private = [OsStr::new("--make-private"), target.as_os_str()];
        sh::run(&self.root, "mount", &private)
    }
}

impl Drop for ChrootMounts {
    fn drop(&mut self) {
        kill_processes_in(&self.chroot);
        for target in self.mounted.drain(..).rev() {
            unmount(&self.root, &target);
        }
    }
}

/// Unmounts `target`, lazily if it is still busy.
fn unmount(root: &Path, target: &Path) {
    if sh::probe(root, "umount", &[&target.to_string_lossy()]) != Some(true) {
        let _ = sh::probe(root, "umount", &["-l", &target.to_string_lossy()]);
    }
}

/// SIGKILLs every process whose root directory is `chroot` (the app, its WebKit processes,
/// anything a package left running).
fn kill_processes_in(chroot: &Path) {
    let Ok(chroot) = chroot.canonicalize() else {
        return;
    };
    for _round in 0..10 {
        let pids: Vec<String> = fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            })
            .filter(|entry| fs::read_link(entry.path().join("root")).is_ok_and(|r| r == chroot))
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        if pids.is_empty() {
            return;
        }
        let _ = Command::new("kill").arg("-KILL").args(&pids).status();
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes a chroot tree, first undoing any mount a crashed run left inside it; refuses while
/// anything is still mounted there.
fn remove_tree(root: &Path, dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    kill_processes_in(dir);
    let leftovers = mounts_under(dir);
    for target in &leftovers {
        println!(
            "    unmounting {} (left by an earlier run)",
            target.display()
        );
        unmount(root, target);
    }
    let still = mounts_under(dir);
    if !still.is_empty() {
        bail!(
            "{} is still mounted; not removing {}",
            still[0].display(),
            dir.display()
        );
    }
    // --one-file-system: never descends into another file system, whatever happens.
    let args = [
        OsStr::new("-rf"),
        OsStr::new("--one-file-system"),
        dir.as_os_str(),
    ];
    sh::run(root, "rm", &args).with_context(|| format!("removing {}", dir.display()))
}

/// Mount points under `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(unescape_mount_point(point)))
        .filter(|point| point.starts_with(&dir) && point != &dir)
        .collect();
    found.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    found
}

/// /proc/self/mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape_mount_point(point: &str) -> String {
    point
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Where the pristine chroot and the downloaded packages are kept between runs.
fn cache_dir(root: &Path) -> PathBuf {
    match (std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME")) {
        (Some(cache), _) if !cache.is_empty() => PathBuf::from(cache).join("fieldlog"),
        (_, Some(home)) if !home.is_empty() => PathBuf::from(home).join(".cache/fieldlog"),
        _ => sh::target_dir(root).join("bundle/cache"),
    }
}

/// The icon paths in tauri.conf.json's `bundle.icon` array (no JSON parser: xtask is std-only).
fn listed_icons(config: &str) -> Result<Vec<&str>> {
    let key = config
        .find("\"icon\"")
        .context("tauri.conf.json has no \"icon\" list")?;
    let rest = config[key + "\"icon\"".len()..].trim_start();
    let rest = rest
        .strip_prefix(':')
        .context("\"icon\" is not followed by a colon")?;
    let rest = rest
        .trim_start()
        .strip_prefix('[')
        .context("\"icon\" is not a list")?;
    let end = rest.find(']').context("the \"icon\" list is not closed")?;
    let icons: Vec<&str> = rest[..end]
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.strip_prefix('"')
                .and_then(|i| i.strip_suffix('"'))
                .filter(|i| !i.contains(['\\', '"']))
                .with_context(|| format!("unexpected icon entry {item} in tauri.conf.json"))
        })
        .collect::<Result<_>>()?;
    if icons.is_empty() {
        bail!("tauri.conf.json lists no icons");
    }
    Ok(icons)
}

/// A path as a JSON string.
fn json_string(path: &Path) -> Result<String> {
    let text = path
        .to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))?;
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

/// How many files lie under `dir`, at any depth.
fn walk_count(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => walk_count(&entry.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

fn tail(file: &Path, lines: usize) -> String {
    let text = fs::read_to_string(file).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("    {line}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_icon_tauri_conf_lists_exists_and_the_list_is_read_whole() {
        let root = sh::workspace_root().unwrap();
        let config = fs::read_to_string(root.join("tauri.conf.json")).unwrap();
        let icons = listed_icons(&config).unwrap();
        assert!(icons.len() >= 4, "{icons:?}");
        for icon in icons {
            assert!(root.join(icon).is_file(), "{icon} is listed but missing");
        }
        assert_eq!(
            listed_icons(r#"{"iconPath": 1, "icon": [ "a.png", "b/c.icns" ], "x": ["d"]}"#)
                .unwrap(),
            ["a.png", "b/c.icns"]
        );
        assert!(listed_icons(r#"{"icon": []}"#).is_err());
    }

    #[test]
    fn paths_become_json_strings() {
        assert_eq!(
            json_string(Path::new("/a b/\"c\"\\d")).unwrap(),
            r#""/a b/\"c\"\\d""#
        );
    }

    #[test]
    fn mount_points_with_spaces_are_unescaped() {
        assert_eq!(unescape_mount_point("/x/a\\040b\\134c"), "/x/a b\\c");
    }

    #[test]
    fn the_desktop_template_carries_what_the_check_asks_for() {
        assert!(DESKTOP_TEMPLATE.contains("Name[zh_CN]=田野日志"));
        assert!(DESKTOP_TEMPLATE.contains("Categories={{categories}}"));
    }
}
