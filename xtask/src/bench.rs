//! `cargo xtask bench <target>`: runs one benchmark suite with cargo's own output.

use crate::{ci, sh};
use anyhow::{Result, bail};

/// A named benchmark suite: `cargo bench -p <package> --bench <bench>`.
struct Target {
    name: &'static str,
    package: &'static str,
    bench: &'static str,
    about: &'static str,
    /// Release binaries the suite runs, built first and passed in `FIELDLOG_BUREAU_BIN` and
    /// `FIELDLOG_BIN`.
    bureau: bool,
    /// Programs the suite runs, each with the Debian package that installs it if missing.
    tools: &'static [(&'static str, &'static str)],
}

/// Add a suite with one line here (kept on one line each, hence no rustfmt).
#[rustfmt::skip]
const TARGETS: &[Target] = &[
    Target { name: "core", package: "fieldlog-core", bench: "core", about: "fieldlog-core: storage and queries", bureau: false, tools: &[] },
    Target { name: "sync", package: "fieldlog-tests", bench: "sync", about: "sync bytes and round trips vs Automerge sync; bureau ingest", bureau: true, tools: &[] },
    Target { name: "coordinator", package: "fieldlog-tests", bench: "coordinator", about: "report, targets, duplicates and the XLSX ledger on 100,000 visits vs plain SQL / rust_xlsxwriter; export peak memory", bureau: true, tools: &[("time", "time")] },
    Target { name: "photos", package: "fieldlog-core", bench: "photos", about: "photo ingest vs vipsthumbnail on one core: time and peak memory", bureau: false, tools: &[("vipsthumbnail", "libvips-tools")] },
];

pub fn bench(args: &[String]) -> Result<()> {
    let Some((name, rest)) = args.split_first() else {
        bail!("which benchmark? {}", known_targets());
    };
    if name == "-h" || name == "--help" {
        println!(
            "Usage: cargo xtask bench <target> [-- <args for the bench binary>]\n\n{}",
            known_targets()
        );
        return Ok(());
    }
    if name == "app" {
        return crate::app::bench(rest);
    }
    let Some(target) = TARGETS.iter().find(|t| t.name == name) else {
        bail!("unknown benchmark `{name}`; {}", known_targets());
    };

    let root = sh::workspace_root()?;
    let cargo = sh::cargo();
    let mut cargo_args = vec![
        "bench",
        "-p",
        target.package,
        "--bench",
        target.bench,
        "--locked",
    ];
    // Anything after the target goes to the bench binary, e.g. a filter: `bench core -- open`.
    let passed = match rest.split_first() {
        Some((dashes, tail)) if dashes == "--" => tail,
        _ => rest,
    };
    if !passed.is_empty() {
        cargo_args.push("--");
        cargo_args.extend(passed.iter().map(String::as_str));
    }
    for (program, package) in target.tools {
        ci::ensure_apt_tool(&root, program, package)?;
    }
    let bureau_bin = sh::target_dir(&root).join("release/fieldlog-bureau");
    let cli_bin = sh::target_dir(&root).join("release/fieldlog");
    if target.bureau {
        let build = [
            "build",
            "--release",
            "--locked",
            "-p",
            "fieldlog-bureau",
            "-p",
            "fieldlog-cli",
        ];
        println!("$ {}", sh::display(&cargo, &build));
        sh::run(&root, &cargo, &build)?;
    }
    println!("==> bench {}", target.name);
    println!("$ {}", sh::display(&cargo, &cargo_args));
    let env = [
        ("FIELDLOG_BUREAU_BIN", bureau_bin.as_os_str()),
        ("FIELDLOG_BIN", cli_bin.as_os_str()),
    ];
    sh::run_env(
        &root,
        &cargo,
        &cargo_args,
        if target.bureau { &env } else { &[] },
    )
}

fn known_targets() -> String {
    let mut out = String::from("known targets:");
    out.push_str(&format!(
        "\n  {:<8} {}",
        "app", "release wasm and binary sizes; cold start to the home screen under Xvfb"
    ));
    for target in TARGETS {
        out.push_str(&format!("\n  {:<8} {}", target.name, target.about));
    }
    out
}
