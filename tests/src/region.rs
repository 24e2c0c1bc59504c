//! The benchmarks' region: 100,000 visits over 2024–2026 in 20 districts of 100 schools
//! (two in five rural), 5 % of the visits logged twice, from a seeded generator so every run
//! measures the same region. `cargo xtask bench coordinator` and `bench app` record it.

use fieldlog_core::{FixedClock, Store};
use fieldlog_domain::{VisitId, VisitInput};
use std::path::{Path, PathBuf};

pub const VISITS: usize = 100_000;
pub const DISTRICTS: usize = 20;
pub const SCHOOLS_PER_DISTRICT: usize = 100;
/// 2024-01-01 00:00 UTC.
pub const START_MS: i64 = 1_704_067_200_000;
pub const DAYS: i64 = 1096;

pub fn district(d: usize) -> String {
    format!("测试{:02}县", d + 1)
}

pub fn districts() -> Vec<String> {
    (0..DISTRICTS).map(district).collect()
}

fn school(n: usize) -> String {
    let d = n / SCHOOLS_PER_DISTRICT;
    format!("{}第{:03}小学", district(d), n % SCHOOLS_PER_DISTRICT + 1)
}

/// Writes the region's registry CSV into `dir`.
pub fn registry(dir: &Path) -> PathBuf {
    let mut csv = String::from("name,district,area,level,enrollment\n");
    for n in 0..DISTRICTS * SCHOOLS_PER_DISTRICT {
        let area = if n % 5 < 2 { "乡村" } else { "城区" };
        csv.push_str(&format!(
            "{},{},{area},小学,{}\n",
            school(n),
            district(n / SCHOOLS_PER_DISTRICT),
            200 + n % 900
        ));
    }
    let path = dir.join("registry.csv");
    std::fs::write(&path, csv).expect("writing the registry");
    path
}

/// A small deterministic generator.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn visit_input(rng: &mut Lcg, date: chrono::NaiveDate) -> VisitInput {
    let activities = match rng.next(10) {
        0..=5 => vec!["lecture"],
        6..=8 => vec!["experiment_show", "hands_on"],
        _ => vec!["lecture", "teacher_training"],
    };
    serde_json::from_value(serde_json::json!({
        "school": school(rng.next(DISTRICTS * SCHOOLS_PER_DISTRICT)),
        "date": date.to_string(),
        "activities": activities,
        "topic": format!("第{}课：{}", rng.next(16) + 1, ["水的三态", "磁铁的秘密", "声音的传播", "植物的一生"][rng.next(4)]),
        "presenters": "李老师",
        "audience": {"students": 20 + rng.next(200), "teachers": 1 + rng.next(6), "others": rng.next(10)},
        "donations": {"books": rng.next(30), "kits": rng.next(2)},
        "notes": "学生积极参与",
    }))
    .expect("a generated visit")
}

/// The visits recorded, and the pairs logged twice (the earlier first).
#[derive(Debug)]
pub struct Recorded {
    pub ids: Vec<VisitId>,
    pub twins: Vec<(VisitId, VisitId)>,
}

/// Records `visits` visits on `store` (which holds the registry), one every
/// `DAYS / visits` days from 2024-01-01, advancing `clock` (the store's) as it goes.
pub fn record(store: &mut Store, clock: &FixedClock, visits: usize) -> Recorded {
    let mut rng = Lcg(2026);
    let today: chrono::NaiveDate = "2027-01-01".parse().expect("a date");
    let step = DAYS * 86_400_000 / visits as i64;
    let mut ids: Vec<VisitId> = Vec::with_capacity(visits);
    let mut twins = Vec::new();
    let mut previous: Option<VisitInput> = None;
    for n in 0..visits {
        let date = chrono::DateTime::from_timestamp_millis(fieldlog_core::Clock::now_ms(clock))
            .expect("a time")
            .date_naive();
        let input = match previous.take() {
            Some(input) if n % 20 == 0 => input,
            _ => visit_input(&mut rng, date),
        };
        let id = store.add_visit(&input, today).expect("a visit").id;
        if n % 20 == 0 && n > 0 {
            twins.push((ids[n - 1], id));
        }
        ids.push(id);
        previous = Some(input);
        clock.advance(step);
    }
    Recorded { ids, twins }
}
