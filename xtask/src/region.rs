//! The generated region of `cargo xtask run --demo --coordinator`: builds and runs the
//! `demo-region` program (`tests/src/bin/demo_region.rs`), which makes a bureau's region
//! the real way (device stores enrolled with the bureau, every change signed and synced).

use crate::sh;
use anyhow::{Context, Result, bail};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// How many visits the demo region holds.
const VISITS: &str = "3000";

/// Builds `demo-region` (release: it records and syncs thousands of visits) and returns it.
pub fn build_generator(root: &Path) -> Result<PathBuf> {
    let cargo = sh::cargo();
    let args = [
        "build",
        "--locked",
        "--release",
        "-p",
        "fieldlog-tests",
        "--bin",
        "demo-region",
    ];
    println!("$ {}", sh::display(&cargo, &args));
    sh::run(root, &cargo, &args).context("building demo-region")?;
    let binary = sh::target_dir(root).join("release/demo-region");
    if !binary.is_file() {
        bail!(
            "built demo-region but found no binary at {}",
            binary.display()
        );
    }
    Ok(binary)
}

/// Creates the region's bureau in `bureau_dir` (districts, teams, registry), before it serves.
pub fn setup(root: &Path, generator: &Path, bureau_bin: &Path, bureau_dir: &Path) -> Result<()> {
    let args = [
        OsStr::new("setup"),
        OsStr::new("--bureau-bin"),
        bureau_bin.as_os_str(),
        OsStr::new("--bureau-dir"),
        bureau_dir.as_os_str(),
    ];
    sh::run(root, generator, &args).context("setting up the region's bureau")
}

/// Records the region on devices in `out`, enrolled with the bureau serving at `url`, and
/// syncs them; returns the file that says what was made.
pub fn generate(
    root: &Path,
    generator: &Path,
    bureau_bin: &Path,
    bureau_dir: &Path,
    url: &str,
    out: &Path,
) -> Result<PathBuf> {
    let args = [
        OsStr::new("generate"),
        OsStr::new("--bureau-bin"),
        bureau_bin.as_os_str(),
        OsStr::new("--bureau-dir"),
        bureau_dir.as_os_str(),
        OsStr::new("--url"),
        OsStr::new(url),
        OsStr::new("--out"),
        out.as_os_str(),
        OsStr::new("--visits"),
        OsStr::new(VISITS),
    ];
    println!("$ {}", sh::display("demo-region", &args));
    sh::run(root, generator, &args).context("generating the region")?;
    Ok(out.join("region.json"))
}

/// Fails unless the coordinator's data dir holds the generated region's review queue.
pub fn check(root: &Path, generator: &Path, data_dir: &Path, summary: &Path) -> Result<()> {
    let args = [
        OsStr::new("check"),
        OsStr::new("--data-dir"),
        data_dir.as_os_str(),
        OsStr::new("--summary"),
        summary.as_os_str(),
    ];
    sh::run(root, generator, &args).context("checking the coordinator's device")
}
