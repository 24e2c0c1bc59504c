//! `cargo xtask bench sync`: what syncing costs, against plain per-document Automerge sync.
//!
//! For 100, 1,000 and 10,000 visits (200 per month, so one ledger per 200 visits), it prints
//! the bytes on the wire and HTTP round trips of a first sync, of a sync after editing one
//! visit, and of an idle sync, next to the same three steps done with Automerge's own sync
//! protocol (`generate_sync_message` / `receive_sync_message`) per ledger, with sync states
//! kept between steps. Ours is measured at a TCP proxy, headers included; the baseline is the
//! sum of its message sizes, with no transport at all. Then the bureau's ingest rate with 1,
//! 10 and 100 devices syncing at once.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark report"
)]

use automerge::sync::{State, SyncDoc};
use automerge::{Automerge, ChangeHash};
use fieldlog_core::{DocId, FixedClock, Options};
use fieldlog_tests::bureau::{Bureau, Device};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

const MONTH_MS: i64 = 31 * 24 * 3600 * 1000;
const VISITS_PER_MONTH: usize = 200;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bureau() -> Bureau {
    let bin = std::env::var_os("FIELDLOG_BUREAU_BIN")
        .map(PathBuf::from)
        .expect(
            "FIELDLOG_BUREAU_BIN names a release fieldlog-bureau (cargo xtask bench sync sets it)",
        );
    Bureau::start(&bin, &root().join("assets/demo-registry.csv"))
}

/// Bytes and round trips of one step.
#[derive(Default, Clone, Copy)]
struct Cost {
    up: u64,
    down: u64,
    round_trips: u64,
}

impl std::fmt::Display for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>9} B up {:>9} B down {:>5} RT",
            self.up, self.down, self.round_trips
        )
    }
}

fn ours(device: &mut Device, bureau: &Bureau) -> Cost {
    bureau.proxy.reset_counts();
    let summary = device.sync().unwrap();
    let (up, down) = bureau.proxy.bytes();
    Cost {
        up,
        down,
        round_trips: summary.rounds as u64,
    }
}

/// Automerge's sync protocol between the device's ledgers and the bureau's copies.
struct Baseline {
    bureau: BTreeMap<String, Automerge>,
    /// Sync states as each side would persist them between sessions.
    states: BTreeMap<String, (Vec<u8>, Vec<u8>)>,
}

impl Baseline {
    fn step(&mut self, device_docs: &[(DocId, Automerge)]) -> Cost {
        let mut cost = Cost::default();
        for (doc_id, device_doc) in device_docs {
            let DocId::Ledger { .. } = doc_id else {
                continue;
            };
            let key = doc_id.to_string();
            let bureau_doc = self.bureau.entry(key.clone()).or_default();
            let (ds, bs) = self.states.get(&key).cloned().unwrap_or_default();
            let decode = |b: &[u8]| {
                if b.is_empty() {
                    State::new()
                } else {
                    State::decode(b).unwrap()
                }
            };
            let (mut ds, mut bs) = (decode(&ds), decode(&bs));
            let mut device_doc = device_doc.fork();
            loop {
                let to_bureau = device_doc.generate_sync_message(&mut ds);
                let sent = to_bureau.is_some();
                if let Some(m) = to_bureau {
                    let bytes = m.encode();
                    cost.up += bytes.len() as u64;
                    let m = automerge::sync::Message::decode(&bytes).unwrap();
                    bureau_doc.receive_sync_message(&mut bs, m).unwrap();
                }
                let to_device = bureau_doc.generate_sync_message(&mut bs);
                let answered = to_device.is_some();
                if let Some(m) = to_device {
                    let bytes = m.encode();
                    cost.down += bytes.len() as u64;
                    let m = automerge::sync::Message::decode(&bytes).unwrap();
                    device_doc.receive_sync_message(&mut ds, m).unwrap();
                }
                if !sent && !answered {
                    break;
                }
                cost.round_trips += 1;
            }
            self.states.insert(key, (ds.encode(), bs.encode()));
        }
        cost
    }
}

fn heads_equal(device: &mut Device, baseline: &Baseline) -> bool {
    device.store.documents().unwrap().iter().all(|(id, doc)| {
        let theirs: Vec<ChangeHash> = baseline
            .bureau
            .get(&id.to_string())
            .map(|d| d.get_heads())
            .unwrap_or_else(|| doc.get_heads());
        !matches!(id, DocId::Ledger { .. }) || theirs == doc.get_heads()
    })
}

fn costs(visits: usize) {
    let bureau = bureau();
    let clock = FixedClock::at(1_767_225_600_000); // 2026-01-01
    let options = Options {
        clock: Arc::new(clock.clone()),
    };
    let mut device = Device::enrolled_with(&bureau, "基准", "caravan-1", options);
    device.sync().unwrap();
    let mut first_visit = None;
    for n in 0..visits {
        if n > 0 && n % VISITS_PER_MONTH == 0 {
            clock.advance(MONTH_MS);
        }
        let id = device.add("南山小学", (n % 90) as i64);
        first_visit.get_or_insert(id);
    }
    let mut baseline = Baseline {
        bureau: BTreeMap::new(),
        states: BTreeMap::new(),
    };

    let first = ours(&mut device, &bureau);
    let base_first = baseline.step(&device.store.documents().unwrap());
    assert!(heads_equal(&mut device, &baseline));

    let today = chrono::Local::now().date_naive();
    let set = [("audience.students".to_string(), "99".to_string())];
    device
        .store
        .edit_visit(first_visit.unwrap(), &set, today)
        .unwrap();
    let edit = ours(&mut device, &bureau);
    let base_edit = baseline.step(&device.store.documents().unwrap());

    let idle = ours(&mut device, &bureau);
    let base_idle = baseline.step(&device.store.documents().unwrap());

    let ledgers = visits.div_ceil(VISITS_PER_MONTH);
    println!("{visits} visits ({ledgers} ledgers):");
    for (step, ours, base) in [
        ("first sync", first, base_first),
        ("one edited visit", edit, base_edit),
        ("idle sync", idle, base_idle),
    ] {
        println!("  {step:<17} fieldlog {ours} | automerge sync {base}");
    }
}

fn ingest(devices: usize, visits_each: usize) {
    let bureau = bureau();
    // One team each, so a sync uploads without also downloading the others' visits.
    let mut all: Vec<Device> = (0..devices)
        .map(|i| {
            let team = format!("team-{i}");
            bureau.add_team(&team, "南山区");
            Device::enrolled(&bureau, &format!("设备{i}"), &team)
        })
        .collect();
    for d in &mut all {
        d.sync().unwrap();
        for n in 0..visits_each {
            d.add("南山小学", (n % 90) as i64);
        }
    }
    let start = Instant::now();
    std::thread::scope(|scope| {
        for d in &mut all {
            scope.spawn(move || d.sync().unwrap());
        }
    });
    let took = start.elapsed();
    let total = devices * visits_each;
    println!(
        "  {devices:>3} devices × {visits_each} visits at once: {total} visits in {:.2} s = {:.0} visits/s",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );
}

fn main() {
    println!("sync bench — {}", fieldlog_tests::machine());
    for visits in [100, 1_000, 10_000] {
        costs(visits);
    }
    println!("bureau ingest (first sync of devices that each hold new visits):");
    for (devices, each) in [(1, 2_000), (10, 200), (100, 20)] {
        ingest(devices, each);
    }
}
