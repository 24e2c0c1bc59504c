//! `cargo xtask bench core`: the device store's speed and size, measured (not asserted).
//!
//! - 10,000 visits added by one import (`Store::add_visits`);
//! - one visit saved: p50 / p99 over 1,000 saves into the month holding those 10,000, next
//!   to a bare SQLite WAL commit with fsync of the same bytes in the same run;
//! - reopening that store (open + first read, open + first save into the month) and its size;
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

/// Saves timed one by one into the 10,000-visit month.
const SAVES: usize = 1_000;
/// Edits timed one by one in that month.
const EDITS: usize = 200;

/// A SQLite file opened the way the store opens its own (WAL, `synchronous=FULL`).
fn bare_db(dir: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(dir.join("bare.sqlite3")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE t (id INTEGER PRIMARY KEY, bytes BLOB NOT NULL);",
    )
    .unwrap();
    conn
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

    if wants("save") || wants("import") || wants("reopen") {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let inputs: Vec<VisitInput> = (0..10_000).map(visit).collect();
        let start = Instant::now();
        s.add_visits(&inputs, today()).unwrap();
        let took = start.elapsed();
        println!(
            "10,000 visits added by one import: {:.2} s ({:.0} visits/s; target ≤ 3 s)",
            took.as_secs_f64(),
            10_000.0 / took.as_secs_f64()
        );

        // Saves into the month that holds those 10,000 visits, next to a bare SQLite WAL
        // commit with fsync of the same bytes (the change and its projection row) in a
        // file beside it.
        let bare = bare_db(dir.path());
        let peek = rusqlite::Connection::open(s.path()).unwrap();
        let mut ours = Vec::new();
        let mut plain = Vec::new();
        for n in 0..SAVES {
            let start = Instant::now();
            let saved = s.add_visit(&visit(n), today()).unwrap();
            ours.push(start.elapsed());
            let bytes: i64 = peek
                .query_row(
                    "SELECT length(c.bytes) + length(v.record) FROM visits v
                     JOIN doc_chunks c ON c.doc_id = v.doc_id
                     WHERE v.id = ?1 ORDER BY c.seq DESC LIMIT 1",
                    [saved.id.to_string()],
                    |r| r.get(0),
                )
                .unwrap();
            let payload = vec![(n % 251) as u8; bytes as usize];
            let start = Instant::now();
            bare.execute("INSERT INTO t (bytes) VALUES (?1)", [&payload])
                .unwrap();
            plain.push(start.elapsed());
        }
        ours.sort();
        plain.sort();
        let (p50, bare_p50) = (percentile(&ours, 0.5), percentile(&plain, 0.5));
        println!(
            "save one visit into a 10,000-visit month (fsync on): p50 {}  p99 {}  max {} | bare SQLite WAL commit of the same bytes: p50 {}  p99 {} | p50 ratio {:.2}× (target ≤ 3×)",
            ms(p50),
            ms(percentile(&ours, 0.99)),
            ms(*ours.last().unwrap()),
            ms(bare_p50),
            ms(percentile(&plain, 0.99)),
            p50.as_secs_f64() / bare_p50.as_secs_f64()
        );
        drop((bare, peek));
        // An edit loads the month (it changes existing operations), then edits in place.
        let ids: Vec<_> = s
            .visits(&VisitFilter::default())
            .unwrap()
            .iter()
            .map(|v| v.id)
            .take(EDITS)
            .collect();
        let mut edits: Vec<Duration> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let set = [("audience.students".to_string(), (n % 90 + 1).to_string())];
                let start = Instant::now();
                s.edit_visit(*id, &set, today()).unwrap();
                start.elapsed()
            })
            .collect();
        let first_edit = edits[0];
        edits.sort();
        println!(
            "edit one visit in that month: first {} (loads the month), then p50 {}  p99 {}",
            ms(first_edit),
            ms(percentile(&edits[1..], 0.5)),
            ms(percentile(&edits[1..], 0.99)),
        );
        drop(s);
        let size = file_size(dir.path());

        let start = Instant::now();
        let s = Store::open(dir.path(), Options::default()).unwrap();
        let report = s.report(&ReportFilter::default()).unwrap();
        let listed = s.visits(&VisitFilter::default()).unwrap().len();
        let read = start.elapsed();
        assert_eq!(
            (report.visits as usize, listed),
            (10_000 + SAVES, 10_000 + SAVES)
        );
        drop(s);
        let start = Instant::now();
        let mut s = Store::open(dir.path(), Options::default()).unwrap();
        s.add_visit(&visit(0), today()).unwrap();
        let write = start.elapsed();
        drop(s);
        let start = Instant::now();
        let mut s = Store::open(dir.path(), Options::default()).unwrap();
        let id = s.visits(&VisitFilter::default()).unwrap()[0].id;
        s.edit_visit(id, &[("topic".into(), "改过".into())], today())
            .unwrap();
        let edit = start.elapsed();
        println!(
            "reopen: open + first edit {} (loads the month: snapshot and appended chunks)",
            ms(edit)
        );
        println!(
            "reopen with {} visits in one month: open + report + list {}, open + first save {} (target ≤ 100 ms); files {:.1} MB",
            10_000 + SAVES,
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
