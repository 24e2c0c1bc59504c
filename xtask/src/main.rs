//! `cargo xtask`: the project's own build scripts, in Rust, so they run the same everywhere.
//!
//! - [`app`] — the Tauri app: its toolchain, builds, `cargo xtask run [--demo]`, the end-to-end
//!   test step and `cargo xtask bench app`.
//! - [`ci`] — `cargo xtask test`: installs the rustup components and servers CI needs, then fmt,
//!   clippy, the wasm build of `fieldlog-domain`, the workspace tests and the bureau's contract
//!   suite on PostgreSQL + S3, stopping at the first failure.
//! - [`demo`] — `cargo xtask run --cli`: builds the `fieldlog` CLI and walks through a demo session
//!   on a fresh data dir.
//! - [`bench`] — `cargo xtask bench <target>`: runs one named benchmark suite.
//! - [`bundle`] — `cargo xtask bundle [--check] [--debug]`: the app as a .deb (Tauri bundler), and
//!   the test that installs it in a clean Debian 12 chroot and waits for its home screen.
//! - [`fuzz`] — `cargo xtask fuzz [--seconds N] [--runs N] [TARGET]`: runs the cargo-fuzz targets under a
//!   memory cap and reports executions per target.
//! - [`soak`] — `cargo xtask soak`: the SIGKILL and bureau-kill durability tests, 1,000 each.
//! - [`sh`] — finding the workspace and cargo, and running commands with a visible transcript.
//!
//! Uses only std and anyhow, so it builds in seconds on a fresh machine.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "xtask is a terminal program"
)]

mod app;
mod bench;
mod bundle;
mod ci;
mod demo;
mod fuzz;
mod region;
mod sh;
mod soak;

use std::process::ExitCode;

const USAGE: &str = "\
Usage: cargo xtask <command> [args]

Commands:
  run [--demo]   Build the UI and the app and launch it; --demo also starts a local bureau
                 and enrolls the app (--cli: a walk through the fieldlog CLI instead)
  test           Install what is missing, then run what CI runs: fmt, clippy, the wasm
                 builds, the workspace tests, the bureau's contract suite again on
                 PostgreSQL + S3, and the app's end-to-end tests
  bench <target> Run a benchmark suite (`cargo xtask bench` lists the targets)
  bundle [--check] [--debug]
                 Build the app (release) and package it as a .deb; --check then installs
                 it in a clean Debian 12 chroot and waits for its home screen under Xvfb
  fuzz [--seconds N] [--runs N] [TARGET]
                 Run each fuzz target (or TARGET) for N seconds (default 1800) under a
                 2 GiB memory cap; installs cargo-fuzz if missing
  soak [--kills N] [--syncs N]
                 1,000 SIGKILLs of a saving device, then 1,000 syncs through a cutting
                 proxy with the bureau killed at random moments

Options:
  -h, --help     Print this help";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let result = match command.as_str() {
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        "run" if rest.first().is_some_and(|a| a == "--cli") => demo::run(&rest[1..]),
        "run" => app::run(rest),
        "test" => ci::test(rest),
        "bench" => bench::bench(rest),
        "bundle" => bundle::bundle(rest),
        "fuzz" => fuzz::fuzz(rest),
        "soak" => soak::soak(rest),
        unknown => {
            eprintln!("xtask: unknown command `{unknown}`\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
