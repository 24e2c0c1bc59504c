//! Devices and a real bureau process on loopback, through a proxy that counts bytes and cuts
//! connections. Devices are real stores driven through core's sync client (the same code the
//! CLI and the app run); one test drives the CLI itself.

use crate::{TestDevice, bureau_bin, demo_registry};
use fieldlog_tests::bureau::{self, Device};
use fieldlog_tests::proxy::Direction;
use rand::{Rng, SeedableRng, rngs::StdRng};

fn start_bureau() -> bureau::Bureau {
    bureau::Bureau::start(bureau_bin(), &demo_registry())
}

#[test]
fn two_devices_exchange_visits_through_the_readme_commands() {
    let bureau = start_bureau();
    let a = TestDevice::init("en", "一号机", "caravan-1");
    let b = TestDevice::init("en", "二号机", "caravan-1");
    for (device, name) in [(&a, "一号机"), (&b, "二号机")] {
        let code = bureau.code("caravan-1", name);
        device.run(&["enroll", &bureau.url(), &code]).ok();
    }
    // The registry arrives with the first sync; then A records a visit.
    a.run(&["sync"]).ok();
    let id = a
        .run(&[
            "visit",
            "add",
            "--school",
            "南山小学",
            "--activity",
            "lecture",
            "--students",
            "40",
            "--teachers",
            "3",
        ])
        .ok();
    let status = json(a.run(&["--json", "status"]).ok());
    assert!(status["waiting_changes"].as_u64().unwrap() > 0, "{status}");
    let summary = json(a.run(&["--json", "sync"]).ok());
    assert!(summary["accepted"].as_u64().unwrap() > 0, "{summary}");

    b.run(&["sync"]).ok();
    let shown = json(b.run(&["--json", "visit", "show", id.trim()]).ok());
    assert_eq!(shown["audience"]["students"], 40);
    assert_eq!(
        a.run(&["--json", "report"]).ok(),
        b.run(&["--json", "report"]).ok()
    );
    let idle = json(b.run(&["--json", "status"]).ok());
    assert_eq!(idle["waiting_changes"], 0, "{idle}");
    let listed = bureau.show(&["visits"]);
    assert!(
        listed.contains("南山小学") && listed.contains(id.trim()),
        "the coordinator sees the school by name:\n{listed}"
    );
}

fn json(text: String) -> serde_json::Value {
    serde_json::from_str(&text).unwrap()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 4, ..Default::default() })]

    /// Random edits on three devices, syncs in random order; at quiet the devices, a device
    /// that only listens and the bureau itself hold the same visits, report and conflicts.
    #[test]
    fn devices_and_bureau_converge_in_any_order(seed in proptest::prelude::any::<u64>()) {
        converge(seed);
    }
}

fn converge(seed: u64) {
    {
        let mut rng = StdRng::seed_from_u64(seed);
        let bureau = start_bureau();
        let mut devices: Vec<Device> = (0..3)
            .map(|i| Device::enrolled(&bureau, &format!("设备{i}"), "caravan-1"))
            .collect();
        // A device that only listens: what a fresh member of the team would receive.
        let mut observer = Device::enrolled(&bureau, "旁观", "caravan-1");
        for d in &mut devices {
            d.sync().unwrap();
        }
        let mut expected_students = std::collections::BTreeMap::new();
        for _ in 0..30 {
            let i = rng.random_range(0..3);
            let d = &mut devices[i];
            match rng.random_range(0..5) {
                0 | 1 => {
                    let n = rng.random_range(0..50);
                    expected_students.insert(d.add("南山小学", n), n as u32);
                }
                2 => {
                    let visits = d.visits();
                    if !visits.is_empty() {
                        let v = &visits[rng.random_range(0..visits.len())];
                        let set = [(
                            "topic".to_string(),
                            format!("主题{}", rng.random_range(0..3)),
                        )];
                        let today = chrono::Local::now().date_naive();
                        d.store.edit_visit(v.id, &set, today).unwrap();
                    }
                }
                3 => {
                    let visits = d.visits();
                    if !visits.is_empty() {
                        let v = &visits[rng.random_range(0..visits.len())];
                        let delta = rng.random_range(1..5);
                        let now = v.fields.audience.students + delta;
                        let set = [("audience.students".to_string(), now.to_string())];
                        let today = chrono::Local::now().date_naive();
                        d.store.edit_visit(v.id, &set, today).unwrap();
                        *expected_students.get_mut(&v.id).unwrap() += delta;
                    }
                }
                _ => {
                    d.sync().unwrap();
                }
            }
        }
        // Until quiet: everyone syncs twice, in order.
        for _ in 0..2 {
            for d in &mut devices {
                d.sync().unwrap();
            }
        }
        observer.sync().unwrap();
        let reference = devices[0].visits();
        assert_eq!(reference.len(), expected_students.len(), "seed {seed}");
        for v in &reference {
            assert_eq!(
                v.fields.audience.students, expected_students[&v.id],
                "seed {seed}"
            );
        }
        let report = devices[0].store.report(&Default::default()).unwrap();
        let conflicts = devices[0].store.conflicts().unwrap();
        for d in devices[1..].iter().chain([&observer]) {
            assert_eq!(d.visits(), reference, "seed {seed}");
            assert_eq!(d.store.report(&Default::default()).unwrap(), report);
            assert_eq!(d.store.conflicts().unwrap(), conflicts);
        }
        assert_eq!(
            bureau.read(&["visits", "--deleted"]),
            serde_json::to_value(&reference).unwrap(),
            "seed {seed}"
        );
        assert_eq!(
            bureau.read(&["report"]),
            serde_json::to_value(report).unwrap(),
            "seed {seed}"
        );
        assert_eq!(
            bureau.read(&["conflicts"]),
            serde_json::to_value(&conflicts).unwrap(),
            "seed {seed}"
        );
    }
}

#[test]
fn sync_survives_connections_cut_at_random_bytes() {
    let mut rng = StdRng::seed_from_u64(7);
    let bureau = start_bureau();
    let mut a = Device::enrolled(&bureau, "一号机", "caravan-1");
    let mut b = Device::enrolled(&bureau, "二号机", "caravan-1");
    a.sync().unwrap();
    b.sync().unwrap();
    let mut failures = 0;
    let mut added = 0;
    for attempt in 0..40 {
        // Both devices always have something in flight, each way.
        for n in 0..10 {
            a.add("南山小学", n);
            b.add("青溪县龙潭镇中心小学", n);
            added += 2;
        }
        let direction = if attempt % 2 == 0 {
            Direction::Up
        } else {
            Direction::Down
        };
        bureau.proxy.cut_next(direction, rng.random_range(1..3_000));
        let device = if attempt % 3 == 0 { &mut b } else { &mut a };
        if device.sync().is_err() {
            failures += 1;
        }
    }
    assert!(
        failures >= 20,
        "the proxy should break most syncs ({failures} of 40)"
    );
    for _ in 0..2 {
        a.sync().unwrap();
        b.sync().unwrap();
    }
    let (va, vb) = (a.visits(), b.visits());
    assert_eq!(va.len(), added, "nothing lost, nothing duplicated");
    assert_eq!(va, vb);
}

#[test]
fn a_bureau_killed_mid_sync_loses_nothing_it_acknowledged() {
    let mut bureau = start_bureau();
    let mut a = Device::enrolled(&bureau, "一号机", "caravan-1");
    a.sync().unwrap();
    // Acknowledged before the kill: these must survive it.
    let acknowledged: Vec<_> = (0..20).map(|n| a.add("南山小学", n)).collect();
    a.sync().unwrap();
    // Enough changes that decoding and applying the next request takes a while.
    for n in 0..2500 {
        a.add("南山小学", n % 90);
    }
    // Kill the bureau once the whole request has reached it and before any answer byte has
    // come back: it is then decoding or applying the request.
    let watch = bureau.proxy.watch_next();
    let device = std::thread::scope(|scope| {
        let syncing = scope.spawn(move || {
            let result = a.sync();
            (result, a)
        });
        let answered_before_kill = watch
            .forwarded
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the request reached the bureau");
        bureau.kill_and_restart();
        assert_eq!(answered_before_kill, 0, "killed before the bureau answered");
        let (result, device) = syncing.join().unwrap();
        assert!(
            result.is_err(),
            "the round that was killed cannot have been answered"
        );
        device
    });
    a = device;
    let answered = watch.answered.recv().unwrap();
    assert_eq!(answered, 0, "the killed bureau never started its answer");

    a.sync().unwrap();
    let mut b = Device::enrolled(&bureau, "二号机", "caravan-1");
    b.sync().unwrap();
    for id in &acknowledged {
        assert!(
            b.store.visit(*id).is_ok(),
            "acknowledged visit {id} was lost"
        );
    }
    assert_eq!(b.visits().len(), 2520);
    assert_eq!(a.visits(), b.visits());
    assert_eq!(a.store.sync_status().unwrap().waiting_changes, 0);
}

#[test]
fn an_idle_sync_is_one_small_request_whatever_the_store_holds() {
    let bureau = start_bureau();
    let mut maker = Device::enrolled(&bureau, "制作机", "caravan-1");
    maker.sync().unwrap();
    for n in 0..10_000 {
        maker.add("南山小学", n % 90);
    }
    maker.sync().unwrap();
    let mut a = Device::enrolled(&bureau, "一号机", "caravan-1");
    a.sync().unwrap();
    assert_eq!(a.visits().len(), 10_000);

    bureau.proxy.reset_counts();
    let summary = a.sync().unwrap();
    let (up, down) = bureau.proxy.bytes();
    assert_eq!(summary.rounds, 1);
    assert_eq!(bureau.proxy.connections(), 1, "one HTTP request");
    assert!(up < 2048, "{up} bytes up");
    assert!(down < 2048, "{down} bytes down");
}

#[test]
fn a_revoked_device_is_told_why_in_its_language() {
    let bureau = start_bureau();
    let device = TestDevice::init("zh-CN", "一号机", "caravan-1");
    device
        .run(&["enroll", &bureau.url(), &bureau.code("caravan-1", "李老师")])
        .ok();
    let devices = bureau.read(&["device", "list"]);
    let id = devices[0]["device_id"].as_str().unwrap();
    bureau.read(&["device", "revoke", id]);
    let error = device.run(&["sync"]).fails();
    assert!(error.contains("本设备已被协调员停用"), "{error}");
    let error = device.run(&["--lang", "en", "sync"]).fails();
    assert!(
        error.contains("a coordinator revoked this device"),
        "{error}"
    );
}

/// How many syncs the soak runs: `FIELDLOG_SOAK_SYNCS` (`cargo xtask soak` sets it), or 12.
fn soak_syncs() -> u32 {
    std::env::var("FIELDLOG_SOAK_SYNCS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12)
}

/// What the soak does to one sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    None,
    /// The connection cut after a random number of request bytes.
    CutUpload,
    /// The connection cut after a random number of answer bytes.
    CutDownload,
    /// The bureau killed once the whole request reached it, before it answered (while it
    /// decodes or applies).
    KillWhileApplying,
    /// The bureau killed a random 0–30 ms after the whole request reached it: while it
    /// applies, commits or answers.
    KillSoonAfterRequest,
    /// The bureau killed and restarted between two syncs.
    KillBetweenSyncs,
}

/// Two devices write and sync through cuts in both directions and a bureau killed at random
/// moments (restarted on the same data dir); a third only listens. Every visit a sync
/// acknowledged is at the bureau at every check, and at quiet the devices, the listener and
/// the bureau hold exactly the visits written, each change once: nothing lost, nothing
/// duplicated, no cursor skipped anything.
#[test]
fn syncs_through_cuts_and_bureau_kills_lose_and_duplicate_nothing() {
    use std::collections::{BTreeMap, BTreeSet};
    let syncs = soak_syncs();
    let mut rng = StdRng::seed_from_u64(11);
    let mut bureau = start_bureau();
    let mut devices = [
        Device::enrolled(&bureau, "一号机", "caravan-1"),
        Device::enrolled(&bureau, "二号机", "caravan-1"),
    ];
    let mut listener = Device::enrolled(&bureau, "旁观", "caravan-1");
    for d in &mut devices {
        d.sync().unwrap();
    }
    let mut written = BTreeSet::new();
    let mut acknowledged = BTreeSet::new();
    let mut unacknowledged: [Vec<_>; 2] = [Vec::new(), Vec::new()];
    let mut faults: BTreeMap<Fault, (u32, u32)> = BTreeMap::new();
    let faults_all = [
        Fault::None,
        Fault::CutUpload,
        Fault::CutDownload,
        Fault::KillWhileApplying,
        Fault::KillSoonAfterRequest,
        Fault::KillBetweenSyncs,
    ];
    for round in 0..syncs {
        // Both devices have something to send, so each sync uploads and downloads.
        for (d, pending) in devices.iter_mut().zip(&mut unacknowledged) {
            for _ in 0..rng.random_range(1..4) {
                let id = d.add("南山小学", rng.random_range(0..90));
                written.insert(id);
                pending.push(id);
            }
        }
        let which = rng.random_range(0..2);
        let fault = faults_all[rng.random_range(0..faults_all.len())];
        let device = &mut devices[which];
        let result = match fault {
            Fault::None => device.sync(),
            Fault::CutUpload | Fault::CutDownload => {
                let direction = if fault == Fault::CutUpload {
                    Direction::Up
                } else {
                    Direction::Down
                };
                bureau.proxy.cut_next(direction, rng.random_range(1..4_000));
                device.sync()
            }
            Fault::KillBetweenSyncs => {
                bureau.kill_and_restart();
                device.sync()
            }
            Fault::KillWhileApplying | Fault::KillSoonAfterRequest => {
                let delay = match fault {
                    Fault::KillWhileApplying => 0,
                    _ => rng.random_range(0..30_000),
                };
                let watch = bureau.proxy.watch_next();
                let bureau = &mut bureau;
                std::thread::scope(|scope| {
                    let syncing = scope.spawn(|| device.sync());
                    watch
                        .forwarded
                        .recv_timeout(std::time::Duration::from_secs(120))
                        .expect("the request reached the bureau");
                    // A random moment after the request arrived, not a wait for anything.
                    std::thread::sleep(std::time::Duration::from_micros(delay));
                    bureau.kill_and_restart();
                    syncing.join().unwrap()
                })
            }
        };
        let counts = faults.entry(fault).or_default();
        counts.0 += 1;
        if result.is_ok() {
            counts.1 += 1;
            acknowledged.extend(unacknowledged[which].drain(..));
        }
        if round % 100 == 99 {
            let held = bureau_visit_ids(&bureau);
            let lost: Vec<_> = acknowledged.difference(&held).collect();
            assert!(
                lost.is_empty(),
                "round {round}: acknowledged but lost: {lost:?}"
            );
        }
    }
    // Quiet: every device syncs cleanly until nothing moves.
    for _ in 0..2 {
        for d in &mut devices {
            d.sync().unwrap();
        }
    }
    listener.sync().unwrap();
    let ids = |d: &Device| -> Vec<_> { d.visits().iter().map(|v| v.id).collect() };
    let reference = ids(&devices[0]);
    assert_eq!(reference.len(), written.len(), "each visit once");
    assert_eq!(
        reference.iter().copied().collect::<BTreeSet<_>>(),
        written,
        "nothing lost"
    );
    assert_eq!(devices[0].visits(), devices[1].visits());
    assert_eq!(
        devices[0].visits(),
        listener.visits(),
        "the listener's cursor skipped nothing"
    );
    assert_eq!(bureau_visit_ids(&bureau), written);
    // The bureau's change log holds each of the ledgers' changes exactly once.
    let ledger_changes: usize = devices[0]
        .store
        .documents()
        .unwrap()
        .iter()
        .filter(|(id, _)| id.to_string().starts_with("ledger/"))
        .map(|(_, doc)| doc.get_changes(&[]).len())
        .sum();
    let counted = bureau.integers(
        "SELECT COUNT(*), COUNT(DISTINCT hash) FROM changes WHERE doc_id LIKE 'ledger/%'",
    );
    let ledger_changes = i64::try_from(ledger_changes).unwrap();
    assert_eq!(counted, [ledger_changes, ledger_changes]);
    let failed: u32 = faults.values().map(|(n, ok)| n - ok).sum();
    eprintln!(
        "soak: {syncs} syncs, {failed} failed and retried, {} visits; (fault: syncs, ok) {faults:?}",
        written.len()
    );
}

/// The ids of every visit the bureau holds (deleted ones too).
fn bureau_visit_ids(
    bureau: &bureau::Bureau,
) -> std::collections::BTreeSet<fieldlog_domain::VisitId> {
    let visits = bureau.read(&["visits", "--deleted"]);
    let ids: Vec<_> = visits
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().parse().unwrap())
        .collect();
    let unique: std::collections::BTreeSet<_> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "the bureau lists a visit twice");
    unique
}
