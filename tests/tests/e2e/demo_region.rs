//! The coordinator demo's generated region (`demo-region`, run by `cargo xtask run --demo
//! --coordinator`), small: it reaches a real bureau the real way, and a coordinator device
//! that joins afterwards finds exactly the duplicates, conflicts, field-entered schools and
//! fixed visits the generator says it made, and the bureau's figures.

use crate::bureau_bin;
use fieldlog_core::{Options, ReportFilter, Store};
use fieldlog_domain::DuplicateReason;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const TODAY: &str = "2026-12-03";

/// `fieldlog-bureau serve` on a free loopback port, stopped on drop.
struct Serving {
    child: Child,
    url: String,
}

impl Serving {
    fn start(dir: &Path) -> Serving {
        let mut child = Command::new(bureau_bin())
            .arg("--data-dir")
            .arg(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("FIELDLOG_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Serving { child, url }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn generator(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_demo-region"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "demo-region {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn bureau(dir: &Path, args: &[&str]) -> Value {
    let out = Command::new(bureau_bin())
        .arg("--data-dir")
        .arg(dir)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "fieldlog-bureau {args:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a < b {
        (a.into(), b.into())
    } else {
        (b.into(), a.into())
    }
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_generated_region_reaches_the_coordinator_with_its_duplicates_conflicts_and_pending_schools() {
    let scratch = tempfile::tempdir().unwrap();
    let bureau_dir = scratch.path().join("bureau");
    let devices = scratch.path().join("devices");
    let (bin, dir) = (bureau_bin().to_str().unwrap(), bureau_dir.to_str().unwrap());
    generator(&["setup", "--bureau-bin", bin, "--bureau-dir", dir]);
    let serving = Serving::start(&bureau_dir);
    let printed = generator(&[
        "generate",
        "--bureau-bin",
        bin,
        "--bureau-dir",
        dir,
        "--url",
        &serving.url,
        "--out",
        devices.to_str().unwrap(),
        "--visits",
        "60",
        "--today",
        TODAY,
    ]);
    assert!(printed.contains("generated 60 visits"), "{printed}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(devices.join("region.json")).unwrap())
            .unwrap();

    // What a region of 60 visits holds (the sizes scale with --visits).
    let made_pairs = summary["duplicates"].as_array().unwrap();
    let kinds: BTreeSet<&str> = made_pairs
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "field_entered_school",
            "identical",
            "next_day",
            "other_count"
        ])
    );
    assert_eq!(made_pairs.len(), 4);
    assert_eq!(summary["conflicts"].as_array().unwrap().len(), 2);
    assert_eq!(summary["pending_schools"].as_array().unwrap().len(), 3);
    assert!(summary["verified"].as_u64().unwrap() > 10, "{summary}");
    assert_eq!(summary["fixed"].as_array().unwrap().len(), 1);
    assert_eq!(summary["devices"].as_array().unwrap().len(), 8);

    // A coordinator device that joins now sees all of it at its first sync.
    let today = TODAY.parse().unwrap();
    let code = bureau(
        &bureau_dir,
        &[
            "enroll",
            "--team",
            "bureau",
            "--member",
            "王协调",
            "--role",
            "coordinator",
        ],
    )["code"]
        .as_str()
        .unwrap()
        .to_string();
    let mut store = Store::init(
        &scratch.path().join("coordinator"),
        "协调机",
        "bureau",
        Options::default(),
    )
    .unwrap();
    fieldlog_core::sync::enroll(&mut store, &serving.url, &code).unwrap();
    fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
    let queue = store.review_queue(today).unwrap();

    let listed: BTreeSet<(String, String)> = queue
        .duplicates
        .iter()
        .map(|p| pair(&p.a.to_string(), &p.b.to_string()))
        .collect();
    let planned: BTreeSet<(String, String)> = made_pairs
        .iter()
        .map(|p| pair(p["a"].as_str().unwrap(), p["b"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, planned, "exactly the generated pairs are suspected");
    let field_entered = made_pairs
        .iter()
        .find(|p| p["kind"] == "field_entered_school")
        .unwrap();
    let suspected = queue
        .duplicates
        .iter()
        .find(|p| {
            pair(&p.a.to_string(), &p.b.to_string())
                == pair(
                    field_entered["a"].as_str().unwrap(),
                    field_entered["b"].as_str().unwrap(),
                )
        })
        .unwrap();
    assert!(
        suspected
            .reasons
            .contains(&DuplicateReason::CloseSchoolName),
        "{suspected:?}"
    );

    let held: BTreeSet<(String, String, BTreeSet<String>)> = queue
        .conflicts
        .iter()
        .map(|c| {
            let values = c.values.iter().map(|v| v.value.clone()).collect();
            (c.record_id.clone(), c.field.key().to_string(), values)
        })
        .collect();
    let made: BTreeSet<(String, String, BTreeSet<String>)> = summary["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["visit"].as_str().unwrap().to_string(),
                c["field"].as_str().unwrap().to_string(),
                strings(&c["values"]),
            )
        })
        .collect();
    assert_eq!(held, made, "each edited field holds both phones' values");
    let fields: BTreeSet<&str> = made.iter().map(|(_, f, _)| f.as_str()).collect();
    assert_eq!(fields, BTreeSet::from(["donations.books", "topic"]));

    let pending: BTreeSet<String> = queue
        .pending_schools
        .iter()
        .map(|s| s.id.to_string())
        .collect();
    let entered: BTreeSet<String> = summary["pending_schools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pending, entered);
    assert!(
        queue
            .pending_schools
            .iter()
            .any(|s| s.fields.name == "南山镇小学")
    );
    let fixed: BTreeSet<String> = queue.fixed.iter().map(|v| v.id.to_string()).collect();
    assert_eq!(fixed, strings(&summary["fixed"]));

    let report = store.report(&ReportFilter::default()).unwrap();
    assert_eq!(report.visits, 60);
    assert_eq!(
        report.verified_visits,
        summary["verified"].as_u64().unwrap()
    );
    assert_eq!(report.districts_covered, 7, "{report:?}");
    assert!(
        report.rural_schools * 3 >= report.schools_reached,
        "{report:?}"
    );
    assert_eq!(
        bureau(&bureau_dir, &["report"]),
        serde_json::to_value(report).unwrap(),
        "the bureau's figures are the coordinator's"
    );
    // This year's targets, set by the other coordinator, reached this device too.
    assert_eq!(store.targets(Some(2026), None).unwrap().len(), 7);

    // Each phone enrolled as a device of its own (and the two coordinators), and holds what
    // it recorded.
    let enrolled = bureau(&bureau_dir, &["device", "list"]);
    assert_eq!(enrolled.as_array().unwrap().len(), 8 + 2, "{enrolled}");
    for device in summary["devices"].as_array().unwrap() {
        let phone = Store::open(
            Path::new(device["data_dir"].as_str().unwrap()),
            Options::default(),
        )
        .unwrap();
        let own = phone
            .visits(&Default::default())
            .unwrap()
            .into_iter()
            .filter(|v| v.created_by == device["name"].as_str().unwrap())
            .count();
        assert_eq!(own as u64, device["visits"].as_u64().unwrap(), "{device}");
    }
}
