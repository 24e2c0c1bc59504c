//! `cargo xtask soak [--kills N] [--syncs N]`: the durability tests, long.
//!
//! 1. `durability::visits_reported_saved_survive_sigkill` with `FIELDLOG_SOAK_KILLS=N`: a
//!    device saving visits is SIGKILLed N times; after every kill each visit it reported
//!    saved is there and `PRAGMA integrity_check` is ok.
//! 2. `sync::syncs_through_cuts_and_bureau_kills_lose_and_duplicate_nothing` with
//!    `FIELDLOG_SOAK_SYNCS=N`: N syncs, uploads and downloads, through the cutting proxy with
//!    the bureau process killed at random moments (also while it applies a request) and
//!    restarted on its data dir; nothing acknowledged lost, nothing duplicated, and a device
//!    that syncs to quiet holds exactly the bureau's visits.
//!
//! Both tests run on every `cargo test` with a dozen of each; this only raises the counts.

use crate::sh::{self, Stopwatch};
use anyhow::{Context, Result, bail};
use std::ffi::OsStr;

const DEFAULT_COUNT: u64 = 1000;

pub fn soak(args: &[String]) -> Result<()> {
    let (mut kills, mut syncs) = (DEFAULT_COUNT, DEFAULT_COUNT);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64> {
            let value = args
                .next()
                .with_context(|| format!("{name} needs a number"))?;
            value
                .parse()
                .with_context(|| format!("{name} {value}: not a number"))
        };
        match arg.as_str() {
            "-h" | "--help" => {
                println!(
                    "Usage: cargo xtask soak [--kills N] [--syncs N]\n\n\
                     SIGKILLs a saving device N times (default {DEFAULT_COUNT}), then runs N \
                     syncs (default {DEFAULT_COUNT}) through a cutting proxy with the bureau \
                     killed at random moments; 0 skips a part."
                );
                return Ok(());
            }
            "--kills" => kills = number("--kills")?,
            "--syncs" => syncs = number("--syncs")?,
            other => bail!("`cargo xtask soak` does not take `{other}`"),
        }
    }
    let root = sh::workspace_root()?;
    let cargo = sh::cargo();
    let parts = [
        (
            "SIGKILLs of a saving device",
            "FIELDLOG_SOAK_KILLS",
            kills,
            "durability::visits_reported_saved_survive_sigkill",
        ),
        (
            "syncs through cuts and bureau kills",
            "FIELDLOG_SOAK_SYNCS",
            syncs,
            "sync::syncs_through_cuts_and_bureau_kills_lose_and_duplicate_nothing",
        ),
    ];
    for (what, variable, count, test) in parts {
        if count == 0 {
            continue;
        }
        let args = [
            "test",
            "-p",
            "fieldlog-tests",
            "--test",
            "e2e",
            "--locked",
            "--",
            "--exact",
            test,
            "--nocapture",
        ];
        println!("==> soak: {count} {what}");
        println!("$ {variable}={count} {}", sh::display(&cargo, &args));
        let clock = Stopwatch::start();
        let value = count.to_string();
        sh::run_env(&root, &cargo, &args, &[(variable, OsStr::new(&value))])
            .with_context(|| format!("soak `{what}` failed after {:.0} s", clock.seconds()))?;
        println!("    {count} {what}: ok in {:.0} s", clock.seconds());
    }
    Ok(())
}
