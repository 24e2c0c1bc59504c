//! Temp data dirs, a pinned clock, and a small team of devices that share a registry.

use fieldlog_core::{ExportScope, FixedClock, ImportStats, Options, Store};
use fieldlog_domain::VisitInput;
use tempfile::TempDir;

/// 2026-05-20 08:00 UTC.
pub const START_MS: i64 = 1_779_264_000_000;

pub fn today() -> chrono::NaiveDate {
    "2026-05-20".parse().unwrap()
}

pub const REGISTRY: &str = "name,district,area,level,enrollment
南山小学,南山区,城区,小学,1280
南山区第一中学,南山区,urban,完全中学,2650
青溪县龙潭镇中心小学,青溪县,乡村,小学,420
青溪县马场乡教学点,青溪县,rural,教学点,35
石门县第二中学,石门县,乡村,初中,900
";

pub struct Device {
    pub store: Store,
    pub clock: FixedClock,
    pub dir: TempDir,
}

impl Device {
    pub fn new(name: &str, team: &str) -> Device {
        let dir = tempfile::tempdir().unwrap();
        let clock = FixedClock::at(START_MS);
        let store = Store::init(
            dir.path(),
            name,
            team,
            Options {
                clock: std::sync::Arc::new(clock.clone()),
            },
        )
        .unwrap();
        Device { store, clock, dir }
    }

    pub fn reopen(&mut self) {
        let options = Options {
            clock: std::sync::Arc::new(self.clock.clone()),
        };
        self.store = Store::open(self.dir.path(), options).unwrap();
    }

    /// Makes this device a coordinator of `districts`, as an enrollment with that role
    /// records it (these tests run without a bureau; the e2e tests enroll for real).
    pub fn act_as_coordinator(&mut self, member: &str, districts: &[&str]) {
        let conn = rusqlite::Connection::open(self.store.path()).unwrap();
        conn.execute(
            "INSERT OR REPLACE INTO bureau (singleton, url, token, device_id, member, role,
                 districts, enrolled_at)
             VALUES (1, 'http://127.0.0.1:9', 'token', ?1, ?2, 'coordinator', ?3, 0)",
            rusqlite::params![
                self.store.device().id.to_string(),
                member,
                serde_json::to_string(districts).unwrap()
            ],
        )
        .unwrap();
    }

    /// Every row of a table, as text, for comparing states.
    pub fn rows(&self, table: &str) -> Vec<String> {
        let conn = rusqlite::Connection::open(self.store.path()).unwrap();
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2, 3"))
            .unwrap();
        let columns = stmt.column_count();
        stmt.query_map([], |row| {
            Ok((0..columns)
                .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                .collect::<Vec<_>>()
                .join("|"))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    /// How many changes all documents hold.
    pub fn changes(&mut self) -> usize {
        self.store
            .documents()
            .unwrap()
            .iter()
            .map(|(_, doc)| doc.get_changes(&[]).len())
            .sum()
    }

    /// All stored state: documents, peers and projection.
    pub fn all_rows(&self) -> Vec<String> {
        [
            "doc_chunks",
            "peer_heads",
            "peers",
            "visits",
            "schools",
            "conflicts",
            "visit_photos",
            "photo_files",
        ]
        .iter()
        .flat_map(|t| self.rows(t))
        .collect()
    }
}

/// `n` devices of one team; the first imports the registry and hands it to the others.
pub fn team(n: usize) -> Vec<Device> {
    let mut devices: Vec<Device> = (0..n)
        .map(|i| Device::new(&format!("设备{}", i + 1), "caravan-1"))
        .collect();
    devices[0]
        .store
        .import_schools_csv(REGISTRY.as_bytes())
        .unwrap();
    let (bundle, _) = devices[0].store.export_bundle(&ExportScope::All).unwrap();
    for device in &mut devices[1..] {
        device.store.import_bundle(&bundle).unwrap();
    }
    devices
}

/// Sends what `to` lacks from `from`, as a bundle file would.
pub fn send(from: &mut Device, to: &mut Device) -> ImportStats {
    let (bundle, _) = from
        .store
        .export_bundle(&ExportScope::MissingAtPeers)
        .unwrap();
    to.store.import_bundle(&bundle).unwrap()
}

pub fn visit(school: &str, students: i64) -> VisitInput {
    serde_json::from_value(serde_json::json!({
        "school": school, "date": "2026-05-19", "activities": ["lecture"],
        "topic": "水的三态", "audience": {"students": students, "teachers": 2},
        "donations": {"books": 10},
    }))
    .unwrap()
}

/// Two devices of a slice, to send from one to the other.
pub fn pair(devices: &mut [Device], from: usize, to: usize) -> (&mut Device, &mut Device) {
    assert_ne!(from, to);
    if from < to {
        let (left, right) = devices.split_at_mut(to);
        (&mut left[from], &mut right[0])
    } else {
        let (left, right) = devices.split_at_mut(from);
        (&mut right[0], &mut left[to])
    }
}

/// The `index`-th visit a device holds (deleted ones too), wrapping around.
pub fn pick(device: &Device, index: usize) -> Option<fieldlog_domain::VisitId> {
    let all = device
        .store
        .visits(&fieldlog_core::VisitFilter {
            include_deleted: true,
            ..Default::default()
        })
        .unwrap();
    (!all.is_empty()).then(|| all[index % all.len()].id)
}

/// Every device sends every other what it lacks, until nothing new arrives.
pub fn talk_until_quiet(devices: &mut [Device]) {
    for round in 0.. {
        let mut applied = 0;
        for from in 0..devices.len() {
            for to in 0..devices.len() {
                if from != to {
                    let (sender, receiver) = pair(devices, from, to);
                    applied += send(sender, receiver).applied;
                }
            }
        }
        if applied == 0 {
            return;
        }
        assert!(round < 8, "still exchanging changes after {round} rounds");
    }
}
