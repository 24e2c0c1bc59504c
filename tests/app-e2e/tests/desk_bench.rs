//! `cargo xtask bench app` (not a test: ignored, run with `--ignored` by the bench): the
//! desk's dashboard over the benchmarks' 100,000-visit region (`fieldlog_tests::region`) in
//! the real app, release build: its first render after opening it, and a change of the
//! district filter, each timed inside the page (from the click to the new figures and chart
//! on screen), median of several runs; next to `fieldlog report --json` (release) computing
//! the same figures for the same filter.
//!
//! The region is recorded once on a coordinator's device enrolled with a real bureau and
//! kept under `$FIELDLOG_E2E_ARTIFACTS/../bench-region` for later runs.

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark report"
)]

use anyhow::{Context, Result, ensure};
use chrono::Datelike;
use fantoccini::Client;
use fieldlog_app_e2e::{Driver, click, env_path, wait_for};
use fieldlog_core::{FixedClock, Options, Store};
use fieldlog_tests::bureau::Bureau;
use fieldlog_tests::region;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const RUNS: usize = 5;

/// The coordinator's data dir holding the region, recorded on first use.
fn region_dir() -> Result<PathBuf> {
    let dir = env_path("FIELDLOG_E2E_ARTIFACTS")?.join("../bench-region");
    let done = dir.join("complete");
    if done.exists() {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let scratch = tempfile::tempdir()?;
    let bureau = Bureau::start_region(
        &env_path("FIELDLOG_BUREAU_BIN")?,
        &region::registry(scratch.path()),
        &region::districts().join(","),
    );
    let device = dir.join("device");
    let clock = FixedClock::at(region::START_MS);
    let options = Options {
        clock: Arc::new(clock.clone()),
    };
    let mut store = Store::init(&device, "协调机", "bureau", options)?;
    fieldlog_core::sync::enroll(
        &mut store,
        &bureau.url(),
        &bureau.coordinator_code("王协调"),
    )?;
    while let Err(e) = fieldlog_core::sync::sync(&mut store, |_| {}) {
        ensure!(
            matches!(e, fieldlog_core::Error::SyncUnfinished { .. }),
            "sync: {e}"
        );
    }
    let t = Instant::now();
    region::record(&mut store, &clock, region::VISITS);
    println!(
        "recorded the region ({} visits) in {:.0} s",
        region::VISITS,
        t.elapsed().as_secs_f64()
    );
    std::fs::write(&done, "")?;
    Ok(dir)
}

/// Milliseconds from running `action` in the page to `ready` (a JS expression) holding,
/// measured by the page's own clock.
async fn timed(client: &Client, action: &str, ready: &str) -> Result<f64> {
    let script = format!(
        "const done = arguments[arguments.length - 1];
         const t0 = performance.now();
         {action};
         const check = () => ({ready}) ? done(performance.now() - t0) : requestAnimationFrame(check);
         requestAnimationFrame(check);"
    );
    let value = client.execute_async(&script, Vec::new()).await?;
    value.as_f64().context("the page's timing")
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Median milliseconds of `fieldlog --json ARGS` on the region, and its last answer.
fn cli_timed(data_dir: &Path, args: &[&str]) -> Result<(f64, Vec<u8>)> {
    let cli = env_path("FIELDLOG_CLI_BIN")?;
    let mut samples = Vec::new();
    let mut last = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let out = Command::new(&cli)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--json")
            .args(args)
            .output()?;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        last = out.stdout;
    }
    Ok((median(samples), last))
}

fn cli_median(data_dir: &Path, args: &[&str]) -> Result<f64> {
    Ok(cli_timed(data_dir, args)?.0)
}

/// `fieldlog report ARGS`: its median time and the figures.
fn cli_report(data_dir: &Path, args: &[&str]) -> Result<(f64, serde_json::Value)> {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    let (ms, out) = cli_timed(data_dir, &all)?;
    Ok((ms, serde_json::from_slice(&out)?))
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "a benchmark: cargo xtask bench app"]
async fn dashboard_over_a_region_of_100000_visits() -> Result<()> {
    let app = env_path("FIELDLOG_APP_BIN")?;
    let device = region_dir()?.join("device");
    let driver = Driver::start(&[("FIELDLOG_DATA_DIR", device.as_path())])?;
    let client = driver.session(&app).await?;
    let outcome = measure(&client, &device).await;
    let _ = client.close().await;
    outcome
}

async fn measure(client: &Client, device: &Path) -> Result<()> {
    client.set_window_size(1280, 900).await?;
    wait_for(client, "#nav-dashboard").await?;
    let year = chrono::Local::now().year();
    let (from, to) = (format!("{year}-01-01"), format!("{year}-12-31"));
    let district = region::district(0);
    let dashboard_ready = "document.querySelector('#figure-value-visits') \
                           && document.querySelector('#chart-districts svg')";
    // The desk opens on the queue: let its first load finish before timing anything.
    wait_for(client, ".pair").await?;
    let mut first = Vec::new();
    let mut change = Vec::new();
    let mut queue = Vec::new();
    for _ in 0..RUNS {
        // From a screen that loads little, so nothing else holds the store.
        click(client, "#nav-targets").await?;
        wait_for(client, "#targets-save").await?;
        first.push(
            timed(
                client,
                "document.querySelector('#nav-dashboard').click()",
                dashboard_ready,
            )
            .await?,
        );
        // The district filter, then back to the whole region: each until the visits
        // figure shows the new value.
        for value in [district.as_str(), ""] {
            let action = format!(
                "window.__before = document.querySelector('#figure-value-visits').textContent;
                 const s = document.querySelector('#filter-district');
                 s.value = '{value}';
                 s.dispatchEvent(new Event('change'))"
            );
            let ready = "document.querySelector('#figure-value-visits') \
                         && document.querySelector('#figure-value-visits').textContent !== window.__before";
            change.push(timed(client, &action, ready).await?);
        }
    }
    // The queue last: its load (every duplicate pair of the region) holds the store while it
    // runs, so the dashboard is never timed behind it. Loaded when its first pair shows.
    for _ in 0..RUNS {
        click(client, "#nav-targets").await?;
        wait_for(client, "#targets-save").await?;
        queue.push(
            timed(
                client,
                "document.querySelector('#nav-queue').click()",
                "document.querySelector('.pair')",
            )
            .await?,
        );
    }
    click(client, "#nav-dashboard").await?;
    let shown: u64 = wait_for(client, "#figure-value-visits")
        .await?
        .text()
        .await?
        .parse()?;
    let (cli_year, report) = cli_report(device, &["--from", &from, "--to", &to])?;
    ensure!(
        report["visits"].as_u64() == Some(shown),
        "the dashboard shows {shown} visits, the CLI {report}"
    );
    let (cli_district, _) = cli_report(
        device,
        &["--from", &from, "--to", &to, "--district", &district],
    )?;
    let cli_queue = cli_median(device, &["review"])?;
    let (first, change, queue) = (median(first), median(change), median(queue));
    println!(
        "dashboard over {} visits ({shown} in {year}), median of {RUNS}:",
        region::VISITS
    );
    println!(
        "  first render          {first:>8.0} ms   fieldlog report (same filter)      {cli_year:>6.0} ms   {:.2}×",
        first / cli_year
    );
    println!(
        "  district filter change {change:>7.0} ms   fieldlog report --district          {cli_district:>6.0} ms   {:.2}×",
        change / cli_district
    );
    println!(
        "  review queue, first load {queue:>5.0} ms   fieldlog review (the whole queue)   {cli_queue:>6.0} ms   {:.2}×",
        queue / cli_queue
    );
    Ok(())
}
