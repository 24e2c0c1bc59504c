//! `cargo xtask fuzz [--seconds N] [--runs N] [TARGET]`: runs the cargo-fuzz targets in
//! `fuzz/`, each until N seconds or N inputs (30 minutes or 10 million by default).
//!
//! Installs cargo-fuzz when it is missing, then runs each target (or the one named) for `N`
//! seconds on stable Rust (`--sanitizer none`), under libFuzzer's memory cap, so an
//! allocation bomb is a failure like a panic. The fuzz crate builds into
//! `<target dir>/fuzz`, apart from the workspace's build.
//!
//! Corpus: the checked-in seeds are `fuzz/corpus/<target>/seed-*` (real traffic, written by
//! the `write_fuzz_seeds` test). What a run finds on top goes to
//! `<target dir>/fuzz/corpus/<target>`, outside git: it grows by the thousand, and the
//! replay test (`fuzz_replay` in the e2e tests) runs everything in `fuzz/corpus` and
//! `fuzz/artifacts-kept` on every `cargo test`. A crasher lands in
//! `fuzz/artifacts/<target>/`; keep it under `fuzz/artifacts-kept/<target>/` with a named
//! regression test.
//!
//! At the end it prints each target's executions, seconds and executions per second, from
//! libFuzzer's final `stat::number_of_executed_units` line.

use crate::sh::{self, Stopwatch};
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// Long enough to find something: half an hour per target, or
const DEFAULT_SECONDS: u64 = 1800;
/// ten million inputs, whichever comes first.
pub const DEFAULT_RUNS: u64 = 10_000_000;
/// libFuzzer's memory cap, in MiB, for the whole process and for one allocation.
pub const MEMORY_CAP_MB: u32 = 2048;

/// One target's run.
#[derive(Debug)]
struct Outcome {
    target: String,
    executions: Option<u64>,
    /// libFuzzer's own count (`Done N runs in S second(s)`), without the build; else the
    /// wall clock.
    seconds: f64,
    /// Where libFuzzer wrote the input that failed, or why the run failed.
    failure: Option<String>,
}

pub fn fuzz(args: &[String]) -> Result<()> {
    let mut seconds = DEFAULT_SECONDS;
    let mut runs = DEFAULT_RUNS;
    let mut only = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!(
                    "Usage: cargo xtask fuzz [--seconds N] [--runs N] [TARGET]\n\n\
                     Runs each fuzz target in fuzz/ (or TARGET) for N seconds (default \
                     {DEFAULT_SECONDS}) or N inputs (default {DEFAULT_RUNS}), whichever \
                     comes first, with --sanitizer none, -rss_limit_mb={MEMORY_CAP_MB} \
                     and -malloc_limit_mb={MEMORY_CAP_MB}; installs cargo-fuzz if missing."
                );
                return Ok(());
            }
            "--seconds" => {
                let value = args.next().context("--seconds needs a number")?;
                seconds = value
                    .parse()
                    .with_context(|| format!("--seconds {value}: not a number"))?;
            }
            "--runs" => {
                let value = args.next().context("--runs needs a number")?;
                runs = value
                    .parse()
                    .with_context(|| format!("--runs {value}: not a number"))?;
            }
            target if !target.starts_with('-') && only.is_none() => only = Some(target),
            other => bail!("`cargo xtask fuzz` does not take `{other}`"),
        }
    }
    let root = sh::workspace_root()?;
    run(&root, only, seconds, runs, Build::Release)
}

/// How the fuzz targets are built: optimized for long runs, or quickly (about 2½ minutes
/// instead of 11 on two cores) for CI's few seconds per target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    Release,
    Dev,
}

/// Fuzzes each target (or `only`) for `seconds` or `runs` inputs and prints the summary;
/// fails when a target failed. CI calls it with a few seconds per target.
pub fn run(root: &Path, only: Option<&str>, seconds: u64, runs: u64, build: Build) -> Result<()> {
    let cargo = sh::cargo();
    ensure_cargo_fuzz(root, &cargo)?;
    let targets = list_targets(root, &cargo)?;
    let chosen: Vec<String> = match only {
        Some(name) if targets.iter().any(|t| t == name) => vec![name.to_string()],
        Some(name) => bail!(
            "no fuzz target `{name}`; the targets: {}",
            targets.join(", ")
        ),
        None => targets,
    };
    let outcomes = chosen
        .iter()
        .map(|target| run_target(root, &cargo, target, seconds, runs, build))
        .collect::<Result<Vec<_>>>()?;
    report(&outcomes)
}

fn ensure_cargo_fuzz(root: &Path, cargo: &std::ffi::OsStr) -> Result<()> {
    if sh::probe(root, cargo, &["fuzz", "--version"]) == Some(true) {
        return Ok(());
    }
    let args = ["install", "cargo-fuzz", "--locked"];
    println!("$ {}", sh::display(cargo, &args));
    sh::run(root, cargo, &args).context("could not install cargo-fuzz")
}

fn list_targets(root: &Path, cargo: &std::ffi::OsStr) -> Result<Vec<String>> {
    let listed = sh::capture(root, cargo, &["fuzz", "list"])?;
    let targets: Vec<String> = listed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if targets.is_empty() {
        bail!("`cargo fuzz list` names no target");
    }
    Ok(targets)
}

fn run_target(
    root: &Path,
    cargo: &std::ffi::OsStr,
    target: &str,
    seconds: u64,
    runs: u64,
    build: Build,
) -> Result<Outcome> {
    let build_dir = sh::target_dir(root).join("fuzz");
    let grown = build_dir.join("corpus").join(target);
    std::fs::create_dir_all(&grown)
        .with_context(|| format!("could not create {}", grown.display()))?;
    let seeds = root.join("fuzz").join("corpus").join(target);
    let mut args: Vec<String> = vec![
        "fuzz".into(),
        "run".into(),
        target.into(),
        "--sanitizer".into(),
        "none".into(),
        "--target-dir".into(),
        build_dir.display().to_string(),
        // The first corpus dir is where new inputs go; the seeds are read only.
        grown.display().to_string(),
        seeds.display().to_string(),
        "--".into(),
        format!("-max_total_time={seconds}"),
        format!("-runs={runs}"),
        format!("-rss_limit_mb={MEMORY_CAP_MB}"),
        format!("-malloc_limit_mb={MEMORY_CAP_MB}"),
        // An input that takes this long is a hang, and a finding.
        "-timeout=60".into(),
        "-print_final_stats=1".into(),
    ];
    if !seeds.is_dir() {
        args.remove(8);
    }
    if build == Build::Dev {
        args.insert(2, "--dev".into());
    }
    println!("==> fuzz {target} for {seconds} s or {runs} inputs");
    println!("$ {}", sh::display(cargo, &args));
    let clock = Stopwatch::start();
    let mut child = Command::new(cargo)
        .args(&args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{}`", sh::display(cargo, &args)))?;
    let stderr = child.stderr.take().context("stderr was not captured")?;
    let mut executions = None;
    let mut artifact = None;
    let mut fuzz_seconds = None;
    let mut err = std::io::stderr().lock();
    for line in BufReader::new(stderr).lines() {
        let line = line.context("reading libFuzzer's output")?;
        if let Some(n) = final_executions(&line) {
            executions = Some(n);
        }
        if let Some(s) = done_seconds(&line) {
            fuzz_seconds = Some(s);
        }
        if let Some((_, path)) = line.split_once("Test unit written to ") {
            artifact = Some(path.trim().to_string());
        }
        // Progress lines come several a second; show the milestones, failures and stats.
        if !line.starts_with('#') || line.contains("DONE") || line.contains("pulse") {
            let _ = writeln!(err, "{line}");
        }
    }
    drop(err);
    let status = child.wait().context("waiting for cargo fuzz")?;
    let failure = (!status.success()).then(|| {
        artifact.unwrap_or_else(|| format!("cargo fuzz failed ({status}) without an artifact"))
    });
    Ok(Outcome {
        target: target.to_string(),
        executions,
        seconds: fuzz_seconds.map_or_else(|| clock.seconds(), |s| s as f64),
        failure,
    })
}

/// The executions in libFuzzer's final lines: `stat::number_of_executed_units: N` or
/// `#N DONE …`.
fn final_executions(line: &str) -> Option<u64> {
    if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
        return n.trim().parse().ok();
    }
    let rest = line.strip_prefix('#')?;
    let (n, tail) = rest.split_once(char::is_whitespace)?;
    tail.trim_start()
        .starts_with("DONE")
        .then(|| n.parse().ok())?
}

/// The seconds in libFuzzer's `Done N runs in S second(s)`.
fn done_seconds(line: &str) -> Option<u64> {
    let rest = line.strip_prefix("Done ")?;
    let (_, after) = rest.split_once(" runs in ")?;
    after.split_whitespace().next()?.parse().ok()
}

fn report(outcomes: &[Outcome]) -> Result<()> {
    println!("==> fuzz summary");
    println!(
        "    {:<16} {:>14} {:>10} {:>10}  result",
        "target", "executions", "seconds", "exec/s"
    );
    for o in outcomes {
        let executions = o.executions.map_or("?".into(), |n| n.to_string());
        let rate = o.executions.map_or("?".into(), |n| {
            format!("{:.0}", n as f64 / o.seconds.max(0.001))
        });
        let result = o
            .failure
            .as_deref()
            .map_or("ok".into(), |f| format!("FAILED: {f}"));
        println!(
            "    {:<16} {executions:>14} {:>10.0} {rate:>10}  {result}",
            o.target, o.seconds
        );
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.failure.is_some())
        .map(|o| o.target.as_str())
        .collect();
    if !failed.is_empty() {
        bail!("fuzz targets failed: {}", failed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{done_seconds, final_executions};

    #[test]
    fn final_executions_reads_both_of_libfuzzers_final_lines() {
        assert_eq!(
            final_executions("stat::number_of_executed_units: 123456"),
            Some(123456)
        );
        assert_eq!(
            final_executions("#2097152\tDONE   cov: 9 ft: 9 corp: 1/1b lim: 4 exec/s: 0 rss: 40Mb"),
            Some(2097152)
        );
        assert_eq!(
            final_executions("#1024\tpulse  cov: 9 ft: 9 corp: 1/1b exec/s: 0 rss: 40Mb"),
            None
        );
        assert_eq!(final_executions("INFO: Seed: 1"), None);
        assert_eq!(done_seconds("Done 5230 runs in 61 second(s)"), Some(61));
    }
}
