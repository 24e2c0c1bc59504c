//! `cargo xtask test`: what CI runs, in order, stopping at the first failure.
//!
//! On a fresh machine with only rustup and cargo, it first adds the rustup components and the wasm
//! target it needs, and only those that are missing.

use crate::sh::{self, Stopwatch};
use anyhow::{Context, Result, bail};
use std::ffi::OsStr;
use std::path::Path;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

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
        name: "wasm build (fieldlog-domain)",
        args: &[
            "build",
            "-p",
            "fieldlog-domain",
            "--target",
            WASM_TARGET,
            "--locked",
        ],
    },
    Step {
        name: "test",
        args: &["test", "--workspace", "--locked"],
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
    println!("    toolchain: ok in {:.1} s", clock.seconds());

    for step in STEPS {
        println!("==> {}", step.name);
        println!("$ {}", sh::display(&cargo, step.args));
        let clock = Stopwatch::start();
        let outcome = sh::run(&root, &cargo, step.args);
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
    println!(
        "==> all {} steps passed in {:.1} s",
        STEPS.len() + 1,
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
    Ok(())
}

/// Runs rustup from `PATH`, in the workspace root so that a `rust-toolchain.toml` there applies.
fn rustup(root: &Path, args: &[&str]) -> Result<()> {
    println!("$ {}", sh::display("rustup", args));
    sh::run(root, "rustup", args)
}
