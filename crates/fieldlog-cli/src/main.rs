//! `fieldlog`: everything the app does, headless, for scripts, bulk work and tests.
//!
//! - [`args`]: the command line (clap).
//! - [`cmd`]: one function per command, returning what to print.
//! - [`output`]: tables, local times and JSON.
//! - [`lang`]: which language to speak, and the CLI's own few words.
//! - [`error`]: failures as one line on stderr, in the user's language or as JSON.
//!
//! Exit codes: 0 on success, 1 when the command failed (one line on stderr), 2 for bad usage.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a terminal program prints"
)]

mod args;
mod cmd;
mod error;
mod lang;
mod output;

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    init_tracing();
    let lang = lang::resolve(cli.global.lang, |name| std::env::var(name).ok());
    let json = cli.global.json;
    let result = cmd::Ctx::new(&cli.global, lang).and_then(|ctx| cmd::run(cli.command, &ctx));
    match result.and_then(|text| print(&text)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::debug!(error = ?error, "command failed");
            eprintln!(
                "{}",
                error::Failure::from_anyhow(&error, lang).render(lang, json)
            );
            ExitCode::FAILURE
        }
    }
}

/// Diagnostics go to stderr, filtered by `FIELDLOG_LOG` (e.g. `debug`, `fieldlog_core=trace`).
/// Off by default, so a failure is exactly one line on stderr.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FIELDLOG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Prints the command's output; a closed pipe (`fieldlog visit list | head`) is not a panic.
fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
