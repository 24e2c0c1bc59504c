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
    for n in 0..2500 {
        a.add("南山小学", n % 90);
    }
    // Cut the upload part-way, then kill the bureau while it may be applying.
    bureau.proxy.cut_next(Direction::Up, 60_000);
    let _ = a.sync();
    bureau.kill_and_restart();
    a.sync().unwrap();
    let mut b = Device::enrolled(&bureau, "二号机", "caravan-1");
    b.sync().unwrap();
    assert_eq!(b.visits().len(), 2500);
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
