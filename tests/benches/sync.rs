//! `cargo xtask bench sync`: what syncing costs, against plain per-document Automerge sync,
//! PouchDB replication and the zstd-compressed JSON of the same visits.
//!
//! For 100, 1,000 and 10,000 visits (200 per month, so one ledger per 200 visits) one device
//! syncs with a bureau: an empty first sync (before any visit), the first push of the visits,
//! a sync after editing one visit, an idle sync, and then a new device of the same team
//! does its first sync and receives everything. Side by side, in the same run and on the
//! same visits (the device store's own records, as JSON, one document per visit with the
//! visit's id as `_id`), a PouchDB client replicates to a CouchDB-API server
//! (`tests/benches/pouch/peer.cjs`: PouchDB and express-pouchdb, each in its own node
//! process) through the same steps: an empty first push, the first push, the edited visit,
//! an idle push, and a new empty PouchDB pulling from the server. Both are measured at the
//! same byte-counting TCP proxy (`fieldlog_tests::proxy`), headers included. The reference
//! is the visits as one JSON array compressed with zstd level 3.
//!
//! The first three steps are also done with Automerge's own sync protocol
//! (`generate_sync_message` / `receive_sync_message`) per ledger, with sync states kept
//! between steps; that baseline is the sum of its message sizes, with no transport at all.
//! Then the bureau's ingest rate with 1, 10 and 100 devices syncing at once.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark report"
)]

use automerge::sync::{State, SyncDoc};
use automerge::{Automerge, ChangeHash};
use fieldlog_core::{DocId, FixedClock, Options};
use fieldlog_domain::Visit;
use fieldlog_tests::bureau::{Bureau, Device};
use fieldlog_tests::proxy::Proxy;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

const MONTH_MS: i64 = 31 * 24 * 3600 * 1000;
const VISITS_PER_MONTH: usize = 200;
const TEAM: &str = "caravan-1";

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

/// Bytes, requests and time of one step.
#[derive(Default, Clone, Copy)]
struct Cost {
    up: u64,
    down: u64,
    /// Ours: sync rounds (one `POST /v1/sync` each). PouchDB: the HTTP requests its client
    /// sent. Automerge: message exchanges.
    round_trips: u64,
    /// Wall time of the step (none for the Automerge baseline, which has no transport).
    time: Option<Duration>,
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
    let start = Instant::now();
    let summary = device.sync().unwrap();
    let time = start.elapsed();
    let (up, down) = bureau.proxy.bytes();
    Cost {
        up,
        down,
        round_trips: summary.rounds as u64,
        time: Some(time),
    }
}

/// PouchDB replicating to express-pouchdb (`tests/benches/pouch/peer.cjs`), both on the
/// in-memory adapter, the client behind its own byte-counting proxy. Dropping it ends both
/// node processes.
struct Pouch {
    server: Child,
    client: Child,
    commands: ChildStdin,
    answers: BufReader<ChildStdout>,
    proxy: Proxy,
    files: TempDir,
}

impl Pouch {
    fn start() -> Pouch {
        let modules = std::env::var_os("FIELDLOG_NODE_MODULES").expect(
            "FIELDLOG_NODE_MODULES names the node_modules holding pouchdb and express-pouchdb \
             (cargo xtask bench sync installs them and sets it)",
        );
        let script = root().join("tests/benches/pouch/peer.cjs");
        let node = |args: &[&str]| {
            Command::new("node")
                .arg(&script)
                .args(args)
                .env("NODE_PATH", &modules)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("node runs (cargo xtask bench sync installs it)")
        };
        let mut server = node(&["server"]);
        let mut out = BufReader::new(server.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line from the PouchDB server {line:?}"))
            .parse()
            .unwrap();
        // Whatever else it prints must not fill the pipe and stall it.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let proxy = Proxy::start(addr).unwrap();
        let mut client = node(&["client", &format!("{}/visits", proxy.url())]);
        Pouch {
            commands: client.stdin.take().unwrap(),
            answers: BufReader::new(client.stdout.take().unwrap()),
            server,
            client,
            proxy,
            files: tempfile::tempdir().unwrap(),
        }
    }

    fn ask(&mut self, command: &Value) -> Value {
        writeln!(self.commands, "{command}").unwrap();
        let mut line = String::new();
        self.answers.read_line(&mut line).unwrap();
        let answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("PouchDB client answered {line:?}: {e}"));
        if let Some(error) = answer.get("error") {
            panic!("PouchDB client: {}", error.as_str().unwrap_or_default());
        }
        answer
    }

    /// Writes `docs` into the device's database (not measured: saving is not syncing).
    fn put(&mut self, docs: &[Value]) {
        let file = self.files.path().join("docs.json");
        std::fs::write(&file, serde_json::to_vec(docs).unwrap()).unwrap();
        let answer = self.ask(&json!({"op": "put", "file": file}));
        assert_eq!(answer["written"], docs.len());
    }

    /// One replication (`push`, or `pull` into a new database), measured at the proxy.
    fn replicate(&mut self, command: &Value) -> (Cost, Value) {
        self.proxy.reset_counts();
        let answer = self.ask(command);
        let (up, down) = self.proxy.bytes();
        let cost = Cost {
            up,
            down,
            round_trips: answer["requests"].as_u64().unwrap(),
            time: Some(Duration::from_secs_f64(
                answer["ms"].as_f64().unwrap() / 1000.0,
            )),
        };
        (cost, answer)
    }

    fn push(&mut self) -> Cost {
        self.replicate(&json!({"op": "push"})).0
    }
}

impl Drop for Pouch {
    fn drop(&mut self) {
        for child in [&mut self.client, &mut self.server] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A visit as a PouchDB document: the store's record, its `id` as `_id`.
fn pouch_doc(visit: &Visit) -> Value {
    let mut doc = serde_json::to_value(visit).unwrap();
    let fields = doc.as_object_mut().unwrap();
    let id = fields.remove("id").unwrap();
    fields.insert("_id".into(), id);
    doc
}

/// The visits as one JSON array, compressed with zstd level 3.
fn zstd_json(visits: &[Visit]) -> u64 {
    let json = serde_json::to_vec(visits).unwrap();
    zstd::bulk::compress(&json, 3).unwrap().len() as u64
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

/// Which way a row's ratios look.
#[derive(Clone, Copy)]
enum Way {
    Up,
    Down,
}

/// One step, for both systems.
struct Row {
    step: &'static str,
    ours: Cost,
    pouch: Cost,
    /// zstd-3 JSON of the visits the step carries.
    zstd: Option<u64>,
    /// Ratios are printed for the rows the targets name, on the bytes going this way.
    ratios: Option<Way>,
}

impl Row {
    fn ratios(&self) -> Option<(f64, f64)> {
        let way = self.ratios?;
        let pick = |c: &Cost| match way {
            Way::Up => c.up,
            Way::Down => c.down,
        } as f64;
        let zstd = self.zstd? as f64;
        Some((
            pick(&self.ours) / zstd,
            pick(&self.ours) / pick(&self.pouch),
        ))
    }
}

/// step | ours: up, down, rounds, time | PouchDB: up, down, requests, time | zstd-3 | ratios
fn table_line(cells: [&str; 12]) {
    let [
        step,
        up,
        down,
        rounds,
        time,
        p_up,
        p_down,
        requests,
        p_time,
        zstd,
        vs_z,
        vs_p,
    ] = cells;
    println!(
        "  {step:<19}{up:>10}{down:>10}{rounds:>7}{time:>9}  \
         {p_up:>10}{p_down:>10}{requests:>9}{p_time:>9}  {zstd:>9}  {vs_z:>7} {vs_p:>8}"
    );
}

fn secs(cost: &Cost) -> String {
    cost.time
        .map_or_else(|| "-".into(), |t| format!("{:.3} s", t.as_secs_f64()))
}

fn costs(visits: usize, versions: &mut Option<Value>) {
    let bureau = bureau();
    let mut pouch = Pouch::start();
    if versions.is_none() {
        *versions = Some(pouch.ask(&json!({"op": "versions"})));
    }
    let clock = FixedClock::at(1_767_225_600_000); // 2026-01-01
    let options = Options {
        clock: Arc::new(clock.clone()),
    };
    let mut device = Device::enrolled_with(&bureau, "基准", TEAM, options);
    let empty = Row {
        step: "empty first sync",
        ours: ours(&mut device, &bureau),
        pouch: pouch.push(),
        zstd: None,
        ratios: None,
    };
    let mut first_visit = None;
    for n in 0..visits {
        if n > 0 && n % VISITS_PER_MONTH == 0 {
            clock.advance(MONTH_MS);
        }
        let id = device.add("南山小学", (n % 90) as i64);
        first_visit.get_or_insert(id);
    }
    let first_visit = first_visit.unwrap();
    let records = device.visits();
    assert_eq!(records.len(), visits);
    pouch.put(&records.iter().map(pouch_doc).collect::<Vec<_>>());
    let mut baseline = Baseline {
        bureau: BTreeMap::new(),
        states: BTreeMap::new(),
    };

    let first = Row {
        step: "first push",
        ours: ours(&mut device, &bureau),
        pouch: pouch.push(),
        zstd: Some(zstd_json(&records)),
        ratios: Some(Way::Up),
    };
    let base_first = baseline.step(&device.store.documents().unwrap());
    assert!(heads_equal(&mut device, &baseline));

    let today = chrono::Local::now().date_naive();
    let set = [("audience.students".to_string(), "99".to_string())];
    device.store.edit_visit(first_visit, &set, today).unwrap();
    let records = device.visits();
    let edited = records.iter().find(|v| v.id == first_visit).unwrap();
    let edited_doc = pouch_doc(edited);
    pouch.put(std::slice::from_ref(&edited_doc));
    let edit = Row {
        step: "one edited visit",
        ours: ours(&mut device, &bureau),
        pouch: pouch.push(),
        zstd: Some(zstd_json(std::slice::from_ref(edited))),
        ratios: None,
    };
    let base_edit = baseline.step(&device.store.documents().unwrap());

    let idle = Row {
        step: "idle sync",
        ours: ours(&mut device, &bureau),
        pouch: pouch.push(),
        zstd: None,
        ratios: None,
    };
    let base_idle = baseline.step(&device.store.documents().unwrap());

    // A new device of the same team: its first sync receives everything.
    let mut newcomer = Device::enrolled(&bureau, "新设备", TEAM);
    let newcomer_cost = ours(&mut newcomer, &bureau);
    assert_eq!(
        newcomer.visits(),
        records,
        "the new device holds the team's visits"
    );
    let (pouch_pull, pulled) = pouch.replicate(&json!({"op": "pull", "check": edited_doc["_id"]}));
    assert_eq!(
        pulled["doc_count"], visits,
        "the new PouchDB holds every visit"
    );
    let mut check = pulled["check"].clone();
    check.as_object_mut().unwrap().remove("_rev");
    assert_eq!(check, edited_doc, "the new PouchDB holds the edited visit");
    let pull = Row {
        step: "new device pull",
        ours: newcomer_cost,
        pouch: pouch_pull,
        zstd: Some(zstd_json(&records)),
        ratios: Some(Way::Down),
    };

    let ledgers = visits.div_ceil(VISITS_PER_MONTH);
    println!();
    let plural = if ledgers == 1 { "" } else { "s" };
    println!("{visits} visits ({ledgers} ledger{plural} of team {TEAM}):");
    println!(
        "  {:<19}{:─^36}  {:─^38}  {:>9}  {:^16}",
        "", " fieldlog ", " PouchDB ", "zstd-3", "ours ÷"
    );
    table_line([
        "step", "up B", "down B", "rounds", "time", "up B", "down B", "requests", "time", "JSON B",
        "zstd", "PouchDB",
    ]);
    let rows = [empty, first, edit, idle, pull];
    for row in &rows {
        let way = match row.ratios {
            Some(Way::Up) => " ↑",
            Some(Way::Down) => " ↓",
            None => "",
        };
        let (vs_zstd, vs_pouch) = row.ratios().map_or_else(
            || ("-".to_string(), "-".to_string()),
            |(z, p)| (format!("{z:.2}×"), format!("{p:.2}×")),
        );
        table_line([
            &format!("{}{way}", row.step),
            &row.ours.up.to_string(),
            &row.ours.down.to_string(),
            &row.ours.round_trips.to_string(),
            &secs(&row.ours),
            &row.pouch.up.to_string(),
            &row.pouch.down.to_string(),
            &row.pouch.round_trips.to_string(),
            &secs(&row.pouch),
            &row.zstd.map_or_else(|| "-".into(), |z| z.to_string()),
            &vs_zstd,
            &vs_pouch,
        ]);
    }
    let [_, first, _, _, pull] = &rows;
    let verdict = |ratio: f64, target: f64| {
        format!(
            "{ratio:.2}× (target ≤ {target}: {})",
            if ratio <= target { "met" } else { "missed" }
        )
    };
    if visits >= 1_000
        && let Some((vs_zstd, vs_pouch)) = first.ratios()
    {
        println!(
            "  target, first sync bytes up: {} zstd-3 JSON, {} PouchDB",
            verdict(vs_zstd, 1.3),
            verdict(vs_pouch, 0.2)
        );
    }
    if visits >= 10_000
        && let Some((vs_zstd, _)) = pull.ratios()
    {
        println!(
            "  target, new device bytes down: {} zstd-3 JSON",
            verdict(vs_zstd, 1.3)
        );
    }
    println!("  automerge sync per ledger (sum of message sizes, no transport):");
    for (step, base) in [
        ("first push", base_first),
        ("one edited visit", base_edit),
        ("idle sync", base_idle),
    ] {
        println!("    {step:<22}{base}");
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
    let mut versions = None;
    for visits in [100, 1_000, 10_000] {
        costs(visits, &mut versions);
    }
    if let Some(v) = versions {
        println!();
        println!(
            "PouchDB {} (pouchdb-adapter-memory {}) replicating to express-pouchdb {} (memory \
             adapter, mode minimumForPouchDB; it gzips answers when asked, as PouchDB's fetch \
             does), node {}.",
            v["pouchdb"].as_str().unwrap_or("?"),
            v["pouchdb-adapter-memory"].as_str().unwrap_or("?"),
            v["express-pouchdb"].as_str().unwrap_or("?"),
            v["node"].as_str().unwrap_or("?"),
        );
    }
    println!(
        "Bytes: at a TCP proxy, HTTP headers included, both systems. rounds: fieldlog's sync \
         rounds (one POST /v1/sync each). requests: HTTP requests the PouchDB client sent \
         (counted at its fetch). Times: wall time of the sync or replication as the client \
         sees it (PouchDB on memory, ours committing SQLite on both ends). zstd-3 JSON: the \
         step's visits (the store's records) as one JSON array, zstd level 3; for the edit, \
         the edited visit alone. ↑/↓: ratios of bytes up / down."
    );
    println!();
    println!("bureau ingest (first sync of devices that each hold new visits):");
    for (devices, each) in [(1, 2_000), (10, 200), (100, 20)] {
        ingest(devices, each);
    }
}
