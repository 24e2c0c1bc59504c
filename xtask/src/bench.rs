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
    /// PostgreSQL's server programs and `moto_server` (the bureau's PostgreSQL + S3 backend),
    /// located or installed as `cargo xtask test` does and passed in `FIELDLOG_POSTGRES_BIN`
    /// and `FIELDLOG_MOTO_SERVER`.
    servers: bool,
    /// npm packages (name, exact version) the suite runs, installed into
    /// `<app tools>/bench-<name>` and passed as its `node_modules` in `FIELDLOG_NODE_MODULES`.
    npm: &'static [(&'static str, &'static str)],
}

/// The sync bench's PouchDB peer (`tests/benches/pouch/peer.cjs`). The memory adapter needs
/// no native build; `pouchdb` itself also pulls leveldown, which loads its shipped prebuilt
/// binary and is never used.
const POUCHDB_PACKAGES: &[(&str, &str)] = &[
    ("pouchdb", "9.0.0"),
    ("pouchdb-adapter-memory", "9.0.0"),
    ("express-pouchdb", "4.2.0"),
];

/// Add a suite with one line here (kept on one line each, hence no rustfmt).
#[rustfmt::skip]
const TARGETS: &[Target] = &[
    Target { name: "core", package: "fieldlog-core", bench: "core", about: "fieldlog-core: storage and queries", bureau: false, servers: false, tools: &[], npm: &[] },
    Target { name: "sync", package: "fieldlog-tests", bench: "sync", about: "sync bytes, round trips and time vs Automerge sync, PouchDB replication and zstd-3 JSON; bureau ingest", bureau: true, servers: false, tools: &[("node", "nodejs"), ("npm", "npm")], npm: POUCHDB_PACKAGES },
    Target { name: "coordinator", package: "fieldlog-tests", bench: "coordinator", about: "report, targets, duplicates and the XLSX ledger on 100,000 visits vs plain SQL / rust_xlsxwriter; export peak memory", bureau: true, servers: false, tools: &[("time", "time")], npm: &[] },
    Target { name: "bureau", package: "fieldlog-tests", bench: "bureau", about: "1,000 devices × 100 visits and a photo syncing at once with a real bureau, on SQLite + files and on PostgreSQL + S3 (--backend embedded|postgres|both): visits/s vs a plain batched insert on each engine, round p50/p99, errors, peak RSS", bureau: true, servers: true, tools: &[], npm: &[] },
    Target { name: "photos", package: "fieldlog-core", bench: "photos", about: "photo ingest vs vipsthumbnail on one core: time and peak memory", bureau: false, servers: false, tools: &[("vipsthumbnail", "libvips-tools")], npm: &[] },
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
    let node_modules = if target.npm.is_empty() {
        None
    } else {
        let dir =
            crate::app::ensure_npm_packages(&root, &format!("bench-{}", target.name), target.npm)?;
        Some(dir.join("node_modules"))
    };
    let servers = if target.servers {
        Some((ci::ensure_postgres(&root)?, ci::ensure_moto(&root)?))
    } else {
        None
    };
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
    let mut env = Vec::new();
    if target.bureau {
        env.push(("FIELDLOG_BUREAU_BIN", bureau_bin.as_os_str()));
        env.push(("FIELDLOG_BIN", cli_bin.as_os_str()));
    }
    if let Some((postgres, moto)) = &servers {
        env.push(("FIELDLOG_POSTGRES_BIN", postgres.as_os_str()));
        env.push(("FIELDLOG_MOTO_SERVER", moto.as_os_str()));
    }
    if let Some(dir) = &node_modules {
        env.push(("FIELDLOG_NODE_MODULES", dir.as_os_str()));
    }
    sh::run_env(&root, &cargo, &cargo_args, &env)
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
