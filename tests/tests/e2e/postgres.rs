//! The PostgreSQL fixture itself (`fieldlog_tests::postgres`): separate databases, data kept
//! across a restart and a stop, and nothing left behind by a dropped cluster or a test process
//! that ended without dropping one. Then a bureau on PostgreSQL + S3 whose database restarts
//! while devices sync: they retry, nothing acknowledged is lost, nothing is stored twice.

use fieldlog_core::{Options, PhotoToAttach, Store, VisitSave};
use fieldlog_domain::VisitInput;
use fieldlog_tests::bureau::{Served, admin_with};
use fieldlog_tests::postgres::PgCluster;
use fieldlog_tests::s3::S3Server;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long the watchdog may take to notice its process ended (it looks every second).
const WATCHDOG_DEADLINE: Duration = Duration::from_secs(30);

fn note(url: &str) -> String {
    let mut client = PgCluster::connect(url).unwrap();
    let row = client
        .query_one("SELECT note FROM visits WHERE id = 1", &[])
        .unwrap();
    row.get(0)
}

#[test]
fn a_cluster_keeps_its_databases_apart_and_a_committed_row_across_a_restart_and_a_stop() {
    let Some(cluster) = PgCluster::start_or_skip(
        "a_cluster_keeps_its_databases_apart_and_a_committed_row_across_a_restart_and_a_stop",
    ) else {
        return;
    };
    let first = cluster.create_database();
    let second = cluster.create_database();
    assert_ne!(first, second);
    let prefix = format!("postgres://postgres@127.0.0.1:{}/", cluster.port());
    assert!(first.starts_with(&prefix), "{first}");

    let mut client = PgCluster::connect(&first).unwrap();
    client
        .batch_execute(
            "CREATE TABLE visits (id integer PRIMARY KEY, note text NOT NULL);
             INSERT INTO visits VALUES (1, 'école de Kaya');",
        )
        .unwrap();
    assert_eq!(note(&first), "école de Kaya");
    let missing = PgCluster::connect(&second)
        .unwrap()
        .query("SELECT note FROM visits", &[])
        .unwrap_err();
    assert_eq!(
        missing.code(),
        Some(&postgres::error::SqlState::UNDEFINED_TABLE),
        "{missing}"
    );

    cluster.restart().unwrap();
    assert!(
        client.query("SELECT 1", &[]).is_err(),
        "a connection from before the restart still answers"
    );
    assert_eq!(note(&first), "école de Kaya", "after the restart");

    cluster.stop().unwrap();
    assert!(
        PgCluster::connect(&first).is_err(),
        "a stopped server answers"
    );
    cluster.start().unwrap();
    assert_eq!(note(&first), "école de Kaya", "after a stop and a start");
}

#[test]
fn dropping_a_cluster_stops_its_server_and_removes_its_dir() {
    let Some(cluster) =
        PgCluster::start_or_skip("dropping_a_cluster_stops_its_server_and_removes_its_dir")
    else {
        return;
    };
    let url = cluster.create_database();
    PgCluster::connect(&url).unwrap();
    let dir = cluster.dir().to_path_buf();
    assert!(dir.join("data").join("PG_VERSION").is_file());
    drop(cluster);
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(
        PgCluster::connect(&url).is_err(),
        "a dropped cluster answers"
    );
}

#[test]
fn the_shared_cluster_starts_once_and_gives_each_caller_its_own_database_even_inside_tokio() {
    let test =
        "the_shared_cluster_starts_once_and_gives_each_caller_its_own_database_even_inside_tokio";
    let Some(shared) = PgCluster::shared_or_skip(test) else {
        return;
    };
    let again = PgCluster::shared_or_skip(test).unwrap();
    assert!(std::ptr::eq(shared, again));

    // The blocking client would panic on a runtime's thread; the fixture's SQL has its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (first, second) =
        runtime.block_on(async { (shared.create_database(), shared.create_database()) });
    assert_ne!(first, second);
    let database = first.rsplit('/').next().unwrap();
    shared
        .execute(
            database,
            "CREATE TABLE visits (id integer PRIMARY KEY, note text NOT NULL);
             INSERT INTO visits VALUES (1, 'shared');",
        )
        .unwrap();
    assert_eq!(note(&first), "shared");
}

#[test]
fn the_watchdog_stops_the_server_and_removes_its_dir_when_the_watched_process_ends() {
    let Some(bin) = PgCluster::bin_or_skip(
        "the_watchdog_stops_the_server_and_removes_its_dir_when_the_watched_process_ends",
    ) else {
        return;
    };
    // Stands for a test process that ends without dropping its cluster (killed, or a static).
    let mut process = Command::new("sleep")
        .arg("600")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let cluster = PgCluster::new_watching(&bin, process.id()).unwrap();
    let url = cluster.create_database();
    let dir = cluster.dir().to_path_buf();

    process.kill().unwrap();
    process.wait().unwrap();
    let asked = Instant::now();
    while dir.exists() {
        assert!(
            asked.elapsed() < WATCHDOG_DEADLINE,
            "{} is still there {WATCHDOG_DEADLINE:?} after its process ended",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        PgCluster::connect(&url).is_err(),
        "the server still answers once its dir is gone"
    );
}

/// Devices syncing while the bureau's database restarts.
const DEVICES: usize = 20;
/// Devices per team. One: with teammates syncing at once a device can stay "waiting"
/// for good (it receives a teammate's change in the same round as its own write's heads,
/// taken before that change, so it believes the bureau lacks a change it cannot relay
/// unsigned), with or without a restart, and "synced to completion" would never come.
const TEAM_SIZE: usize = 1;
/// How long any one stage may take: devices syncing once, the bureau answering again, a
/// device's last sync.
const STAGE_DEADLINE: Duration = Duration::from_secs(120);
/// The pause between a device's failed sync and its next try, and between polls.
const RETRY: Duration = Duration::from_millis(50);

/// Where the restart stands, as a device's sync sees it when it starts and ends.
const BEFORE: u8 = 0;
const RESTARTING: u8 = 1;
const RESTARTED: u8 = 2;

/// What one device's syncs came to while the others ran.
#[derive(Default)]
struct Tally {
    /// Syncs that succeeded.
    ok: AtomicUsize,
    /// Syncs that started after the restart was over and succeeded.
    ok_after: AtomicUsize,
    /// Syncs that failed while the database restarted (started before it was back).
    failed_in_outage: AtomicUsize,
    /// Syncs that failed after it was back, each retried.
    failed_after: AtomicUsize,
}

/// Tells the devices to stop their loop when dropped: also when the test fails first.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A bureau process, killed when the test ends, whether it passes or not.
struct Running(std::process::Child);

impl Running {
    fn is_running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A small PNG, different for each device.
fn photo(device: usize) -> Vec<u8> {
    let image = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, (device * 12) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn visit(n: usize) -> VisitInput {
    serde_json::from_value(serde_json::json!({
        "school": "南山小学", "activities": ["lecture"], "topic": "水的三态",
        "audience": {"students": 20 + n % 50, "teachers": 1 + n % 3}, "donations": {"books": n % 7},
    }))
    .unwrap()
}

/// The change hashes `store`'s own actor wrote, over all its documents.
fn own_changes(store: &mut Store) -> BTreeSet<Vec<u8>> {
    let actor = store.device().actor.clone();
    let mut own = BTreeSet::new();
    for (_, doc) in store.documents().unwrap() {
        for change in doc.get_changes(&[]) {
            if change.actor_id().to_hex_string() == actor {
                own.insert(change.hash().0.to_vec());
            }
        }
    }
    own
}

/// A device's work: its first sync, then visits saved and synced in a loop until `stop`,
/// then syncs until nothing waits. Returns its device id, the visits it saved and the
/// changes it wrote.
fn device_loop(
    index: usize,
    url: &str,
    code: &str,
    phase: &AtomicU8,
    stop: &AtomicBool,
    tally: &Tally,
) -> (String, Vec<String>, BTreeSet<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let team = format!("team-{}", index / TEAM_SIZE);
    let mut store = Store::init(
        dir.path(),
        &format!("设备{index}"),
        &team,
        Options::default(),
    )
    .unwrap();
    fieldlog_core::sync::enroll(&mut store, url, code).unwrap();
    fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
    let today = chrono::Local::now().date_naive();
    let staged = store.stage_photo(&photo(index)).unwrap();
    let mut saved = Vec::new();
    let mut attach = vec![PhotoToAttach {
        token: staged.token,
        caption: "实验现场".into(),
        consent: true,
    }];
    while !stop.load(Ordering::SeqCst) {
        let save = VisitSave {
            id: None,
            input: visit(saved.len()),
            attach: std::mem::take(&mut attach),
            remove: Vec::new(),
        };
        saved.push(store.save_visit(&save, today).unwrap().id.to_string());
        let started = phase.load(Ordering::SeqCst);
        let result = fieldlog_core::sync::sync(&mut store, |_| {});
        let ended = phase.load(Ordering::SeqCst);
        match result {
            Ok(_) => {
                tally.ok.fetch_add(1, Ordering::SeqCst);
                if started == RESTARTED {
                    tally.ok_after.fetch_add(1, Ordering::SeqCst);
                }
            }
            Err(error) => {
                assert_ne!(
                    ended, BEFORE,
                    "device {index}: a sync failed before the database restarted: {error}"
                );
                if started == RESTARTED {
                    tally.failed_after.fetch_add(1, Ordering::SeqCst);
                } else {
                    tally.failed_in_outage.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(RETRY);
            }
        }
    }
    // Everything this device saved goes up, its photo files too.
    let asked = Instant::now();
    loop {
        let result = fieldlog_core::sync::sync(&mut store, |_| {});
        let status = store.sync_status().unwrap();
        if result.is_ok() && status.waiting_changes == 0 && status.waiting_photos.files == 0 {
            break;
        }
        assert!(
            asked.elapsed() < STAGE_DEADLINE,
            "device {index} still not synced after {STAGE_DEADLINE:?}: {result:?}, {} changes \
             and {} photo files waiting",
            status.waiting_changes,
            status.waiting_photos.files
        );
        std::thread::sleep(RETRY);
    }
    let device_id = store.enrollment().unwrap().unwrap().device_id.to_string();
    (device_id, saved, own_changes(&mut store))
}

/// Polls `what` until it holds, failing after [`STAGE_DEADLINE`].
fn wait_for(what: &str, mut holds: impl FnMut() -> bool) {
    let asked = Instant::now();
    while !holds() {
        assert!(
            asked.elapsed() < STAGE_DEADLINE,
            "{what}: not within {STAGE_DEADLINE:?}"
        );
        std::thread::sleep(RETRY);
    }
}

/// `GET http://addr/path`: its status, or `None` when nothing answers.
fn status(addr: std::net::SocketAddr, path: &str) -> Option<u16> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build(),
    );
    agent
        .get(&format!("http://{addr}{path}"))
        .call()
        .ok()
        .map(|r| r.status().as_u16())
}

#[test]
fn a_postgresql_restart_while_devices_sync_loses_nothing_acknowledged_and_stores_nothing_twice() {
    let test = "a_postgresql_restart_while_devices_sync_loses_nothing_acknowledged_and_stores_nothing_twice";
    // A cluster of its own: it restarts under the bureau.
    let Some(cluster) = PgCluster::start_or_skip(test) else {
        return;
    };
    let Some(s3) = S3Server::start_or_skip(test) else {
        return;
    };
    let database = cluster.create_database();
    let settings = s3.settings("restart");
    let blobs = settings.url();
    let flags = [
        "--database",
        database.as_str(),
        "--blobs",
        blobs.as_str(),
        "--s3-endpoint",
        s3.endpoint.as_str(),
    ];
    let env = [
        ("AWS_ACCESS_KEY_ID", settings.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", settings.secret_access_key.as_str()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let bin = crate::bureau_bin();
    let admin = |args: &[&str]| admin_with(bin, dir.path(), &env, &[&flags[..], args].concat());
    admin(&["init", "--coordinator", "王协调", "--districts", "南山区"]);
    admin(&["school", "import", crate::demo_registry().to_str().unwrap()]);
    for t in 0..DEVICES.div_ceil(TEAM_SIZE) {
        let team = format!("team-{t}");
        admin(&[
            "team",
            "add",
            "--team",
            &team,
            "--kind",
            "volunteer",
            "--districts",
            "南山区",
        ]);
    }
    let codes: Vec<String> = (0..DEVICES)
        .map(|i| {
            let team = format!("team-{}", i / TEAM_SIZE);
            let json = admin(&[
                "--json",
                "enroll",
                "--team",
                &team,
                "--member",
                &format!("志愿者{i}"),
            ]);
            let code: serde_json::Value = serde_json::from_str(&json).unwrap();
            code["code"].as_str().unwrap().to_string()
        })
        .collect();

    let mut serve_flags = flags.to_vec();
    serve_flags.extend([
        "--metrics-listen",
        "127.0.0.1:0",
        "--device-rate",
        "1000000",
    ]);
    let Served {
        child,
        addr,
        metrics,
    } = Served::start_with(bin, dir.path(), None, &serve_flags, &env);
    let mut bureau = Running(child);
    let metrics = metrics.unwrap();
    let url = format!("http://{addr}");

    let phase = AtomicU8::new(BEFORE);
    let stop = AtomicBool::new(false);
    let tallies: Vec<Tally> = (0..DEVICES).map(|_| Tally::default()).collect();
    let took = Instant::now();
    let devices = std::thread::scope(|scope| {
        let stopping = StopOnDrop(&stop);
        let handles: Vec<_> = codes
            .iter()
            .zip(&tallies)
            .enumerate()
            .map(|(i, (code, tally))| {
                let (url, phase, stop) = (&url, &phase, &stop);
                scope.spawn(move || device_loop(i, url, code, phase, stop, tally))
            })
            .collect();
        let every_device = |count: fn(&Tally) -> &AtomicUsize| {
            tallies.iter().all(|t| count(t).load(Ordering::SeqCst) > 0)
        };
        wait_for("every device synced once before the restart", || {
            every_device(|t| &t.ok)
        });

        phase.store(RESTARTING, Ordering::SeqCst);
        cluster.restart().unwrap();
        phase.store(RESTARTED, Ordering::SeqCst);

        assert!(
            bureau.is_running(),
            "the bureau exited when its database restarted"
        );
        wait_for("the bureau answers /healthz", || {
            status(metrics, "/healthz") == Some(200)
        });
        wait_for("the bureau is ready again (/readyz)", || {
            status(metrics, "/readyz") == Some(200)
        });
        wait_for("every device synced after the restart", || {
            every_device(|t| &t.ok_after)
        });
        drop(stopping);
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert!(bureau.is_running(), "the bureau exited during the test");
    assert_eq!(status(addr, "/healthz"), Some(200));
    drop(bureau);

    // Stored once each: every change a device wrote, under that device, and nothing else
    // from devices.
    let held: Vec<(String, Vec<u8>)> = PgCluster::connect(&database)
        .unwrap()
        .query(
            "SELECT device_id, hash FROM changes WHERE device_id IS NOT NULL ORDER BY seq",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut by_device: BTreeMap<&str, BTreeSet<Vec<u8>>> = BTreeMap::new();
    for (device, hash) in &held {
        by_device.entry(device).or_default().insert(hash.clone());
    }
    let distinct: usize = by_device.values().map(BTreeSet::len).sum();
    assert_eq!(held.len(), distinct, "a change is stored twice");
    assert_eq!(by_device.len(), DEVICES);
    for (device_id, _, own) in &devices {
        assert_eq!(
            by_device.get(device_id.as_str()),
            Some(own),
            "device {device_id}: the changes it wrote are not the ones stored under it"
        );
    }

    // Every visit saved, once, in the bureau's figures (after it catches up from the log).
    let listed: serde_json::Value = serde_json::from_str(&admin(&["--json", "visits"])).unwrap();
    let mut listed_ids: BTreeMap<String, usize> = BTreeMap::new();
    for visit in listed.as_array().unwrap() {
        *listed_ids
            .entry(visit["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let saved: BTreeSet<String> = devices.iter().flat_map(|(_, s, _)| s.clone()).collect();
    assert_eq!(
        saved.len(),
        devices.iter().map(|(_, s, _)| s.len()).sum::<usize>()
    );
    assert_eq!(
        listed_ids.keys().cloned().collect::<BTreeSet<_>>(),
        saved,
        "the bureau's visits are not the ones the devices saved"
    );
    assert!(listed_ids.values().all(|n| *n == 1), "a visit listed twice");
    let photos: serde_json::Value = serde_json::from_str(&admin(&["--json", "photos"])).unwrap();
    let held_photos = photos
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["thumbnail_held"] == true && p["display_held"] == true)
        .count();
    assert_eq!(held_photos, DEVICES, "every device's photo, both files");

    let count = |f: fn(&Tally) -> &AtomicUsize| -> usize {
        tallies.iter().map(|t| f(t).load(Ordering::SeqCst)).sum()
    };
    #[allow(
        clippy::print_stderr,
        reason = "what the outage cost, in the test's output"
    )]
    {
        eprintln!(
            "{DEVICES} devices, {} visits and {} changes stored once each in {:.1} s; syncs: \
             {} succeeded, {} failed during the restart, {} failed after it (each retried)",
            saved.len(),
            held.len(),
            took.elapsed().as_secs_f64(),
            count(|t| &t.ok),
            count(|t| &t.failed_in_outage),
            count(|t| &t.failed_after),
        );
    }
}
