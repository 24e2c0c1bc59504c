//! `cargo xtask bench coordinator`: a coordinator's work on a region of 100,000 visits over
//! three years (2024–2026), 20 districts, 2,000 schools, 5 % of the visits logged twice.
//!
//! A coordinator device records the region, verifies 10,000 visits, merges 1,000 of the
//! duplicates and sets targets, then syncs everything to a real bureau. On each side it
//! times `report`, `targets`, `review duplicates` and `export ledger --xlsx` (median of
//! three), each next to its plain counterpart on the same tables in the same run: a plain
//! SQL aggregate (the old eight figures), the same aggregate once per target, the blocking
//! self-join returning both records, and a plain `rust_xlsxwriter` write of the same rows.
//! The export's peak memory is measured on the release binaries with `/usr/bin/time`.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark report"
)]

use fieldlog_core::decide::{Export, MergeRequest};
use fieldlog_core::{FixedClock, Options, ReportFilter, Store};
use fieldlog_domain::{AudienceRule, Visit};
use fieldlog_tests::backend::Backend;
use fieldlog_tests::bureau::Bureau;
use fieldlog_tests::region::{self, DISTRICTS, SCHOOLS_PER_DISTRICT, START_MS, VISITS};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn release_bin(var: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{var} names a release binary (cargo xtask bench coordinator sets it)")
    })
}

fn median<T>(mut f: impl FnMut() -> T) -> Duration {
    let mut samples: Vec<Duration> = (0..3)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples[1]
}

fn row(name: &str, ours: Duration, plain: Duration, plain_name: &str) {
    println!(
        "  {name:<22} {:>9.1} ms   {plain_name:<34} {:>9.1} ms   {:>5.2}×",
        ours.as_secs_f64() * 1e3,
        plain.as_secs_f64() * 1e3,
        ours.as_secs_f64() / plain.as_secs_f64().max(1e-9)
    );
}

const PLAIN_REPORT: &str = "SELECT count(*), count(DISTINCT v.school_id),
        count(DISTINCT CASE WHEN s.area = 'rural' THEN v.school_id END),
        count(DISTINCT CASE WHEN s.area = 'urban' THEN v.school_id END),
        sum(v.audience), sum(v.lecture), sum(v.books), sum(v.kits)
    FROM visits v JOIN schools s ON s.id = v.school_id
    WHERE v.deleted = 0 AND v.duplicate_of IS NULL
      AND (?1 IS NULL OR v.date >= ?1) AND (?2 IS NULL OR v.date <= ?2)";

fn plain_report(conn: &Connection, from: Option<&str>, to: Option<&str>) -> i64 {
    conn.query_row(PLAIN_REPORT, rusqlite::params![from, to], |r| r.get(0))
        .unwrap()
}

fn plain_candidates(conn: &Connection) -> usize {
    let mut stmt = conn
        .prepare(
            "SELECT a.record, b.record FROM visits a JOIN visits b
               ON b.school_id = a.school_id AND b.id > a.id
              AND b.date BETWEEN date(a.date, '-1 day') AND date(a.date, '+1 day')
             WHERE a.deleted = 0 AND a.duplicate_of IS NULL
               AND b.deleted = 0 AND b.duplicate_of IS NULL",
        )
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut n = 0;
    while let Some(r) = rows.next().unwrap() {
        let (a, b): (String, String) = (r.get(0).unwrap(), r.get(1).unwrap());
        n += usize::from(!a.is_empty() && !b.is_empty());
    }
    n
}

/// The same rows as the ledger's first sheet, written the plain way.
fn plain_xlsx(conn: &Connection, file: &Path) -> usize {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet_with_constant_memory().unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT v.record, s.district, s.name, s.area FROM visits v
             JOIN schools s ON s.id = v.school_id
             WHERE v.deleted = 0 AND v.duplicate_of IS NULL ORDER BY v.date, v.created_at, v.id",
        )
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut r = 0u32;
    for (c, title) in fieldlog_core::export::COLUMNS.iter().enumerate() {
        sheet.write_string(0, c as u16, title.0).unwrap();
    }
    while let Some(row) = rows.next().unwrap() {
        r += 1;
        let record: String = row.get(0).unwrap();
        let v: Visit = serde_json::from_str(&record).unwrap();
        let f = &v.fields;
        let texts: [String; 3] = [
            row.get(1).unwrap(),
            row.get(2).unwrap(),
            row.get(3).unwrap(),
        ];
        let activities: Vec<&str> = f.activities.iter().map(|a| a.key()).collect();
        sheet.write_number(r, 0, r).unwrap();
        sheet.write_string(r, 1, f.date.to_string()).unwrap();
        for (i, t) in texts.iter().enumerate() {
            sheet.write_string(r, 2 + i as u16, t).unwrap();
        }
        sheet.write_string(r, 5, activities.join("、")).unwrap();
        sheet.write_string(r, 6, &f.topic).unwrap();
        sheet.write_string(r, 7, &f.presenters).unwrap();
        let numbers = [
            f.audience.students,
            f.audience.teachers,
            f.audience.others,
            f.audience.total() as u32,
            f.donations.books,
            f.donations.kits,
            v.photos.len() as u32,
        ];
        for (i, n) in numbers.iter().enumerate() {
            sheet.write_number(r, 8 + i as u16, *n).unwrap();
        }
        sheet.write_string(r, 15, &v.created_by).unwrap();
        sheet.write_string(r, 16, "").unwrap();
        sheet.write_string(r, 17, &f.notes).unwrap();
    }
    workbook.save(file).unwrap();
    r as usize
}

/// Max RSS in MiB of one run, from `/usr/bin/time -f %M`.
fn peak_mib(bin: &Path, args: &[&str], scratch: &Path) -> f64 {
    let report = scratch.join("time.out");
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&report)
        .arg(bin)
        .args(args)
        .env("FIELDLOG_LANG", "en")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{} {args:?}", bin.display());
    let kib: f64 = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kib / 1024.0
}

fn main() {
    let scratch = tempfile::tempdir().unwrap();
    let bureau_bin = release_bin("FIELDLOG_BUREAU_BIN");
    let cli_bin = release_bin("FIELDLOG_BIN");
    println!("coordinator bench — {}", fieldlog_tests::machine());
    println!(
        "region: {VISITS} visits over 2024–2026, {DISTRICTS} districts, {} schools, 5 % logged twice",
        DISTRICTS * SCHOOLS_PER_DISTRICT
    );

    let districts = region::districts();
    // Embedded whatever FIELDLOG_BUREAU_TEST_BACKEND says: the bureau's side is timed in
    // process against plain SQL on its `bureau.sqlite3`.
    let bureau = Bureau::start_region_on(
        &bureau_bin,
        &region::registry(scratch.path()),
        &districts.join(","),
        Backend::Embedded,
    );
    let device_dir = scratch.path().join("device");
    let clock = FixedClock::at(START_MS);
    let options = Options {
        clock: Arc::new(clock.clone()),
    };
    let mut store = Store::init(&device_dir, "协调机", "bureau", options).unwrap();
    let code = bureau.coordinator_code("王协调");
    fieldlog_core::sync::enroll(&mut store, &bureau.url(), &code).unwrap();
    sync(&mut store);

    let t = Instant::now();
    let region::Recorded { ids, twins } = region::record(&mut store, &clock, VISITS);
    let today: chrono::NaiveDate = "2027-01-01".parse().unwrap();
    println!(
        "recorded on the coordinator device in {:.0} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    store.verify_visits(&ids[..10_000], "").unwrap();
    for (keep, other) in twins.iter().take(1_000) {
        store
            .merge_visits(&MergeRequest {
                keep: *keep,
                other: *other,
                audience: AudienceRule::Keep,
                take: Vec::new(),
                note: String::new(),
            })
            .unwrap();
    }
    let goals: Vec<(String, String)> = [
        ("lectures", "30000"),
        ("audience", "4000000"),
        ("schools", "2000"),
        ("rural_lecture_share", "0.2"),
        ("districts_covered", "all"),
        ("teachers_trained", "5000"),
        ("books", "400000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    store.set_targets(2025, None, &goals).unwrap();
    for d in districts.iter().take(2) {
        store.set_targets(2025, Some(d), &goals[..3]).unwrap();
    }
    println!(
        "10,000 verified, 1,000 duplicates merged, targets set in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    sync(&mut store);
    println!("synced to the bureau in {:.0} s", t.elapsed().as_secs_f64());
    println!();

    let device_db = Connection::open(store.path()).unwrap();
    let all = ReportFilter::default();
    let report = store.report(&all).unwrap();
    println!(
        "figures: {} visits, {} duplicates merged, {} verified; {} suspected duplicate pairs",
        report.visits,
        report.duplicates_merged,
        report.verified_visits,
        store.duplicates(&all).unwrap().len()
    );
    let targets = store.targets(Some(2025), None).unwrap().len();
    let offset = chrono::FixedOffset::east_opt(8 * 3600).unwrap();

    println!("coordinator device (in process)");
    row(
        "report",
        median(|| std::hint::black_box(store.report(&all).unwrap())),
        median(|| std::hint::black_box(plain_report(&device_db, None, None))),
        "plain SQL aggregate",
    );
    row(
        &format!("targets ({targets})"),
        median(|| std::hint::black_box(store.targets(Some(2025), None).unwrap())),
        median(|| {
            for _ in 0..targets {
                plain_report(&device_db, Some("2025-01-01"), Some("2025-12-31"));
            }
        }),
        "plain aggregate once per target",
    );
    row(
        "review duplicates",
        median(|| std::hint::black_box(store.duplicates(&all).unwrap())),
        median(|| std::hint::black_box(plain_candidates(&device_db))),
        "plain blocking self-join",
    );
    let xlsx = scratch.path().join("device.xlsx");
    let plain = scratch.path().join("plain.xlsx");
    row(
        "export ledger --xlsx",
        median(|| {
            std::hint::black_box(
                store
                    .export(Export::LedgerXlsx, &xlsx, &all, offset)
                    .unwrap(),
            )
        }),
        median(|| std::hint::black_box(plain_xlsx(&device_db, &plain))),
        "plain rust_xlsxwriter, same rows",
    );

    println!("bureau (in process, same data synced)");
    let at_bureau =
        fieldlog_bureau::Bureau::open(bureau.dir.path(), fieldlog_bureau::Config::default())
            .unwrap();
    let bureau_db = Connection::open(bureau.dir.path().join("bureau.sqlite3")).unwrap();
    assert_eq!(
        at_bureau.report(&all).unwrap(),
        report,
        "the same figures at the bureau"
    );
    row(
        "report",
        median(|| std::hint::black_box(at_bureau.report(&all).unwrap())),
        median(|| std::hint::black_box(plain_report(&bureau_db, None, None))),
        "plain SQL aggregate",
    );
    row(
        &format!("targets ({targets})"),
        median(|| std::hint::black_box(at_bureau.targets(Some(2025), None).unwrap())),
        median(|| {
            for _ in 0..targets {
                plain_report(&bureau_db, Some("2025-01-01"), Some("2025-12-31"));
            }
        }),
        "plain aggregate once per target",
    );
    row(
        "review (queue)",
        median(|| std::hint::black_box(at_bureau.review_queue(today, 14).unwrap())),
        median(|| std::hint::black_box(plain_candidates(&bureau_db))),
        "plain blocking self-join",
    );
    let bureau_xlsx = scratch.path().join("bureau.xlsx");
    row(
        "export ledger --xlsx",
        median(|| {
            std::hint::black_box(
                at_bureau
                    .export(Export::LedgerXlsx, &bureau_xlsx, &all, offset)
                    .unwrap(),
            )
        }),
        median(|| std::hint::black_box(plain_xlsx(&bureau_db, &plain))),
        "plain rust_xlsxwriter, same rows",
    );

    println!("peak memory of the export, release binaries");
    let out = scratch.path().join("peak.xlsx");
    let out = out.to_str().unwrap();
    let device = device_dir.to_str().unwrap();
    println!(
        "  fieldlog export ledger --xlsx          {:>7.1} MiB",
        peak_mib(
            &cli_bin,
            &["--data-dir", device, "export", "ledger", "--xlsx", out],
            scratch.path()
        )
    );
    println!(
        "  fieldlog-bureau export ledger --xlsx   {:>7.1} MiB",
        peak_mib(
            &bureau_bin,
            &[
                "--data-dir",
                bureau.dir.path().to_str().unwrap(),
                "export",
                "ledger",
                "--xlsx",
                out
            ],
            scratch.path()
        )
    );
    println!(
        "  ledger file: {:.1} MB, {} rows",
        std::fs::metadata(out).unwrap().len() as f64 / 1e6,
        report.visits
    );
}

fn sync(store: &mut Store) {
    for _ in 0..1000 {
        match fieldlog_core::sync::sync(store, |_| {}) {
            Ok(_) => return,
            Err(fieldlog_core::Error::SyncUnfinished { .. }) => continue,
            Err(e) => panic!("sync: {e}"),
        }
    }
    panic!("sync did not finish");
}
