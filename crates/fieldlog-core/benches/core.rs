//! `cargo xtask bench core`: the device store's speed and size, measured (not asserted).
//!
//! - one visit saved: p50 / p99 over 1,000 saves into a store that already holds 1,000;
//! - 10,000 visits added in one run;
//! - reopening a store of 10,000 visits (open + first read, open + first write) and its size;
//! - a bundle of 1,000 visits against the same visits as zstd-compressed JSON.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark report"
)]

use fieldlog_core::{ExportScope, Options, ReportFilter, Store, VisitFilter};
use fieldlog_domain::{SchoolInput, SchoolStatus, VisitInput};
use std::path::Path;
use std::time::{Duration, Instant};

fn store(dir: &Path) -> Store {
    let mut store = Store::init(dir, "基准设备", "caravan-1", Options::default()).unwrap();
    for (name, area) in [("南山小学", "城区"), ("青溪县龙潭镇中心小学", "乡村")] {
        let input = SchoolInput {
            name: name.into(),
            district: "南山区".into(),
            area: area.into(),
            ..Default::default()
        };
        store.add_school(&input, SchoolStatus::Registered).unwrap();
    }
    store
}

fn visit(n: usize) -> VisitInput {
    serde_json::from_value(serde_json::json!({
        "school": if n.is_multiple_of(3) { "青溪县龙潭镇中心小学" } else { "南山小学" },
        "date": "2026-05-19",
        "activities": if n.is_multiple_of(2) { vec!["lecture", "experiment_show"] } else { vec!["hands_on"] },
        "topic": format!("第{}课：水的三态", n % 16 + 1),
        "presenters": "李老师、王志愿者",
        "audience": {"students": 20 + n % 80, "teachers": 2 + n % 3, "others": n % 5},
        "donations": {"books": n % 40, "kits": n % 2},
        "notes": "学生积极参与，课后提问很多。",
    }))
    .unwrap()
}

fn today() -> chrono::NaiveDate {
    "2026-05-20".parse().unwrap()
}

fn file_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    println!("fieldlog-core bench — {}", machine());
    println!();

    if wants("save") {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        for n in 0..1_000 {
            s.add_visit(&visit(n), today()).unwrap();
        }
        let mut times: Vec<Duration> = (0..1_000)
            .map(|n| {
                let start = Instant::now();
                s.add_visit(&visit(n), today()).unwrap();
                start.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "save one visit (store holds 1,000–2,000; fsync on): p50 {}  p99 {}  max {}",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            ms(*times.last().unwrap())
        );
    }

    if wants("bulk") || wants("reopen") {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let start = Instant::now();
        for n in 0..10_000 {
            s.add_visit(&visit(n), today()).unwrap();
        }
        let took = start.elapsed();
        println!(
            "10,000 visits added in one run: {:.1} s ({:.0} visits/s)",
            took.as_secs_f64(),
            10_000.0 / took.as_secs_f64()
        );
        drop(s);
        let size = file_size(dir.path());

        let start = Instant::now();
        let s = Store::open(dir.path(), Options::default()).unwrap();
        let report = s.report(&ReportFilter::default()).unwrap();
        let listed = s.visits(&VisitFilter::default()).unwrap().len();
        let read = start.elapsed();
        assert_eq!((report.visits, listed), (10_000, 10_000));
        drop(s);
        let start = Instant::now();
        let mut s = Store::open(dir.path(), Options::default()).unwrap();
        s.add_visit(&visit(0), today()).unwrap();
        let write = start.elapsed();
        println!(
            "reopen with 10,000 visits: open + report + list {}, open + first save {}; files {:.1} MB",
            ms(read),
            ms(write),
            size as f64 / 1e6
        );
    }

    if wants("bundle") {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let visits: Vec<_> = (0..1_000)
            .map(|n| s.add_visit(&visit(n), today()).unwrap())
            .collect();
        let (bundle, stats) = s.export_bundle(&ExportScope::All).unwrap();
        let json = serde_json::to_vec(&visits).unwrap();
        let zstd_json = zstd::bulk::compress(&json, 3).unwrap();
        println!(
            "1,000 visits: bundle {:.1} KB ({} changes) | JSON {:.1} KB, zstd-3 JSON {:.1} KB | bundle / zstd JSON = {:.2}",
            bundle.len() as f64 / 1e3,
            stats.changes,
            json.len() as f64 / 1e3,
            zstd_json.len() as f64 / 1e3,
            bundle.len() as f64 / zstd_json.len() as f64
        );
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores, {}", std::env::consts::OS)
}
