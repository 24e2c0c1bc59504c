//! `demo-region`: a generated region for `cargo xtask run --demo --coordinator`, made the real
//! way: real device stores, enrolled with a real bureau, every change signed and synced.
//!
//! ```text
//! demo-region setup    --bureau-bin BIN --bureau-dir DIR
//! demo-region generate --bureau-bin BIN --bureau-dir DIR --url URL --out DIR
//!                      [--visits 3000] [--seed 2026] [--today YYYY-MM-DD]
//! demo-region check    --data-dir DIR --summary FILE [--today YYYY-MM-DD]
//! ```
//!
//! `setup` creates the bureau before it serves: 7 districts, a registry of 133 schools
//! (87 rural), two caravan crews and a team of volunteer tutors. `generate` enrolls eight
//! crew and tutor devices with the bureau while it serves and records the visits of the
//! current and the previous year with core's `Store` under a set clock: crew phones logging
//! the same stop (identical, another count, a day apart, or once at a school entered in the
//! field), visits edited on two phones before either synced (topic, books), schools entered
//! in the field (some named close to registered ones). A second coordinator's device then
//! verifies the previous year, flags a few visits (some fixed since) and sets this year's
//! targets. Everything comes from a seeded generator: the same arguments make the same
//! region, ids aside. `generate` writes what it made to `<out>/region.json`; `check` says
//! whether a coordinator's data dir holds exactly that review queue.

#![allow(clippy::print_stdout, reason = "a terminal program")]

use anyhow::{Context, Result, bail, ensure};
use chrono::{Datelike, Days, NaiveDate, Weekday};
use fieldlog_core::{Clock, Options, ReportFilter, Store};
use fieldlog_domain::{SchoolInput, SchoolStatus, VisitId, VisitInput};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

const USAGE: &str = "\
usage: demo-region setup --bureau-bin BIN --bureau-dir DIR
       demo-region generate --bureau-bin BIN --bureau-dir DIR --url URL --out DIR
                            [--visits N] [--seed N] [--today YYYY-MM-DD]
       demo-region check --data-dir DIR --summary FILE [--today YYYY-MM-DD]";

/// The coordinator `setup` names; the app enrolls as this member.
const FIRST_COORDINATOR: &str = "王协调";
/// The coordinator whose device makes the decisions already taken.
const SECOND_COORDINATOR: &str = "李协调";

// ---- the region ----

/// Districts with their towns; a 区 (city district) has more urban schools than a 县.
const DISTRICTS: [(&str, &[&str]); 7] = [
    ("南山区", &["东坪", "白沙"]),
    ("临江区", &["江口", "柳林"]),
    ("青溪县", &["龙潭", "清水", "石桥", "梅溪", "竹山"]),
    ("石门县", &["皂市", "新关", "雁池", "磨市", "夏家"]),
    ("白云县", &["高峰", "双河", "大坪", "长乐", "金盆"]),
    ("松岭县", &["马鞍", "洪山", "花桥", "三江", "南岭"]),
    ("桃溪县", &["杨柳", "黄土", "新田", "茶园", "古城"]),
];
const CITY_SCHOOLS: [(&str, &str); 10] = [
    ("第一小学", "小学"),
    ("第二小学", "小学"),
    ("实验小学", "小学"),
    ("第一中学", "完全中学"),
    ("城关中学", "初中"),
    ("第三小学", "小学"),
    ("实验中学", "初中"),
    ("第二中学", "初中"),
    ("育才学校", "九年一贯制"),
    ("第一高级中学", "高中"),
];
/// One village school per town, in the order of [`DISTRICTS`].
const VILLAGES: [&str; 29] = [
    "上湾", "枫树", "石岭", "桐木", "青山", "板桥", "柏林", "水井", "朝阳", "凉亭", "松树", "河坪",
    "杉木", "岩口", "桃坪", "竹园", "荷塘", "田坪", "龙井", "栗山", "白果", "新屋", "塘湾", "沙坪",
    "坳头", "溪口", "茅坪", "樟树", "梨园",
];

#[derive(Debug, Clone)]
struct RegistrySchool {
    name: String,
    district: &'static str,
    rural: bool,
    level: &'static str,
    enrollment: u32,
}

/// The registry: a 区 has 10 city schools, a 县 5; every town a central primary school, a
/// middle school and a village school (rural). 南山区 also has 南山小学.
fn registry() -> Vec<RegistrySchool> {
    let mut schools = Vec::new();
    let mut village = 0;
    for (d, (district, towns)) in DISTRICTS.iter().enumerate() {
        let city = if district.ends_with('区') { 10 } else { 5 };
        for (n, (suffix, level)) in CITY_SCHOOLS.iter().take(city).enumerate() {
            schools.push(RegistrySchool {
                name: format!("{district}{suffix}"),
                district,
                rural: false,
                level,
                enrollment: 900 + ((d * 7 + n * 13) % 20) as u32 * 90,
            });
        }
        if *district == "南山区" {
            schools.push(RegistrySchool {
                name: "南山小学".into(),
                district,
                rural: false,
                level: "小学",
                enrollment: 1280,
            });
        }
        for (t, town) in towns.iter().enumerate() {
            for (suffix, level, enrollment) in [
                ("镇中心小学".to_string(), "小学", 320 + (t * 40) as u32),
                ("镇中学".to_string(), "初中", 480 + (t * 30) as u32),
                (
                    format!("镇{}村小学", VILLAGES[village]),
                    "教学点",
                    40 + (t * 9) as u32,
                ),
            ] {
                schools.push(RegistrySchool {
                    name: format!("{district}{town}{suffix}"),
                    district,
                    rural: true,
                    level,
                    enrollment,
                });
            }
            village += 1;
        }
    }
    schools
}

fn registry_csv(schools: &[RegistrySchool]) -> String {
    let mut csv = String::from("name,district,area,level,enrollment\n");
    for s in schools {
        let area = if s.rural { "乡村" } else { "城区" };
        csv.push_str(&format!(
            "{},{},{area},{},{}\n",
            s.name, s.district, s.level, s.enrollment
        ));
    }
    csv
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Caravan,
    Tutors,
}

struct TeamPlan {
    id: &'static str,
    kind: Kind,
    districts: &'static [&'static str],
    /// Device name, member name.
    devices: &'static [(&'static str, &'static str)],
}

const TEAMS: [TeamPlan; 3] = [
    TeamPlan {
        id: "caravan-1",
        kind: Kind::Caravan,
        districts: &["南山区", "青溪县", "石门县", "白云县"],
        devices: &[
            ("大篷车一号机", "李明"),
            ("大篷车二号机", "张华"),
            ("大篷车三号机", "王芳"),
        ],
    },
    TeamPlan {
        id: "caravan-2",
        kind: Kind::Caravan,
        districts: &["临江区", "松岭县", "桃溪县"],
        devices: &[("大篷车四号机", "赵强"), ("大篷车五号机", "孙丽")],
    },
    TeamPlan {
        id: "tutors",
        kind: Kind::Tutors,
        districts: &["南山区", "青溪县", "石门县", "桃溪县"],
        devices: &[
            ("陈老师的手机", "陈静"),
            ("刘老师的手机", "刘洋"),
            ("周老师的平板", "周敏"),
        ],
    },
];

/// A school entered in the field: by which team's device (index within the team), and
/// whether a crew-mate logged the same stop at the registered school it resembles.
struct PendingPlan {
    name: &'static str,
    district: &'static str,
    level: &'static str,
    team: usize,
    device: usize,
    /// The registered school a crew-mate chose for the same stop.
    twin_of: Option<&'static str>,
}

/// In the order they are used: a small region takes the first three.
const PENDING: [PendingPlan; 8] = [
    PendingPlan {
        name: "青溪县龙潭中心小学",
        district: "青溪县",
        level: "小学",
        team: 0,
        device: 1,
        twin_of: Some("青溪县龙潭镇中心小学"),
    },
    PendingPlan {
        name: "南山镇小学",
        district: "南山区",
        level: "小学",
        team: 2,
        device: 0,
        twin_of: None,
    },
    PendingPlan {
        name: "石门县新关镇北坡村小",
        district: "石门县",
        level: "教学点",
        team: 2,
        device: 1,
        twin_of: None,
    },
    PendingPlan {
        name: "松岭县马鞍镇中心学校",
        district: "松岭县",
        level: "小学",
        team: 1,
        device: 1,
        twin_of: Some("松岭县马鞍镇中心小学"),
    },
    PendingPlan {
        name: "桃溪县杨柳镇黄泥村教学点",
        district: "桃溪县",
        level: "教学点",
        team: 2,
        device: 2,
        twin_of: None,
    },
    PendingPlan {
        name: "白云县高峰镇中心小学分校",
        district: "白云县",
        level: "小学",
        team: 0,
        device: 2,
        twin_of: None,
    },
    PendingPlan {
        name: "青溪县清水镇民族小学",
        district: "青溪县",
        level: "小学",
        team: 2,
        device: 0,
        twin_of: None,
    },
    PendingPlan {
        name: "临江区柳林镇新村小学",
        district: "临江区",
        level: "小学",
        team: 1,
        device: 0,
        twin_of: None,
    },
];

const CARAVAN_TOPICS: [&str; 15] = [
    "科普大篷车进校园",
    "神奇的空气炮",
    "磁悬浮列车的秘密",
    "机器人与编程",
    "走近天文望远镜",
    "VR 太空之旅",
    "有趣的静电",
    "声光电互动展",
    "人体的奥秘",
    "防震减灾知识",
    "垃圾分类小科学",
    "气象科普展",
    "航天模型展示",
    "奇妙的液氮实验",
    "中国古代科技",
];
const CARAVAN_ACTIVITIES: [&[&str]; 6] = [
    &["experiment_show"],
    &["mobile_museum", "exhibition"],
    &["lecture", "experiment_show"],
    &["exhibition"],
    &["lecture"],
    &["mobile_museum", "hands_on"],
];
const TUTOR_ACTIVITIES: [&[&str]; 4] = [
    &["class_session"],
    &["class_session", "hands_on"],
    &["hands_on"],
    &["lecture"],
];
const TUTOR_TOPICS: [&str; 16] = [
    "水的三态",
    "磁铁的秘密",
    "声音的传播",
    "植物的一生",
    "简单电路",
    "光的折射",
    "空气的力量",
    "种子发芽",
    "认识岩石",
    "天气观测",
    "浮力实验",
    "桥梁结构",
    "纸飞机与飞行",
    "太阳系",
    "杠杆原理",
    "昆虫观察",
];
const TRAINING_TOPICS: [&str; 3] = ["科学实验教学培训", "小学科学课程标准解读", "实验室安全培训"];
const NOTES: [&str; 6] = [
    "",
    "学生积极参与",
    "下雨改在室内进行",
    "校长陪同",
    "",
    "留下器材供课后使用",
];
const FLAG_NOTES: [&str; 5] = [
    "请补充主讲人",
    "受众人数与学校规模不符，请核实",
    "请确认活动日期",
    "请补充活动照片",
    "备注与所选学校不一致，请核对",
];

// ---- a seeded generator ----

/// SplitMix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1) as u64) as i64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }
}

// ---- a clock the generator sets ----

/// Every device's clock: the generator sets it before each action, so records carry the
/// times they would have had in the field.
#[derive(Debug)]
struct SetClock(AtomicI64);

impl SetClock {
    fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for SetClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Milliseconds at `minute` past midnight of `date` in China (UTC+8).
fn at(date: NaiveDate, minute: i64) -> i64 {
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or_default();
    midnight + (minute - 8 * 60) * 60_000
}

/// Weekdays outside the winter, summer and National Day holidays.
fn school_day(date: NaiveDate) -> bool {
    let (month, day) = (date.month(), date.day());
    let holiday = (month == 1 && day >= 20)
        || (month == 2 && day <= 25)
        || (month == 7 && day >= 10)
        || month == 8
        || (month == 10 && day <= 7);
    !holiday && !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

// ---- arguments ----

struct Args(BTreeMap<String, String>);

impl Args {
    fn parse(words: &[String]) -> Result<Args> {
        let mut map = BTreeMap::new();
        let mut words = words.iter();
        while let Some(flag) = words.next() {
            let key = flag
                .strip_prefix("--")
                .with_context(|| format!("unexpected `{flag}`\n{USAGE}"))?;
            let value = words
                .next()
                .with_context(|| format!("--{key} takes a value\n{USAGE}"))?;
            map.insert(key.to_string(), value.clone());
        }
        Ok(Args(map))
    }

    fn get(&self, key: &str) -> Result<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .with_context(|| format!("--{key} is required\n{USAGE}"))
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        self.get(key).map(PathBuf::from)
    }

    fn number(&self, key: &str, default: u64) -> Result<u64> {
        self.0.get(key).map_or(Ok(default), |v| {
            v.parse()
                .with_context(|| format!("--{key} takes a number, not `{v}`"))
        })
    }

    fn today(&self) -> Result<NaiveDate> {
        match self.0.get("today") {
            Some(day) => day
                .parse()
                .with_context(|| format!("--today takes YYYY-MM-DD, not `{day}`")),
            None => Ok(chrono::Local::now().date_naive()),
        }
    }
}

fn main() -> Result<()> {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = words.split_first() else {
        bail!("{USAGE}");
    };
    let args = Args::parse(rest)?;
    match command.as_str() {
        "setup" => setup(&args.path("bureau-bin")?, &args.path("bureau-dir")?),
        "generate" => generate(&args),
        "check" => check(&args),
        "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n{USAGE}"),
    }
}

// ---- the bureau's admin commands ----

fn bureau(bin: &Path, dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("FIELDLOG_LANG", "en")
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "fieldlog-bureau {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// A one-time enrollment code from `fieldlog-bureau enroll`.
fn code(bin: &Path, dir: &Path, team: &str, member: &str, role: &str) -> Result<String> {
    let out = bureau(
        bin,
        dir,
        &[
            "--json", "enroll", "--team", team, "--member", member, "--role", role,
        ],
    )?;
    let answer: Value = serde_json::from_str(&out)?;
    answer["code"]
        .as_str()
        .map(str::to_string)
        .context("no code in the bureau's answer")
}

fn setup(bin: &Path, dir: &Path) -> Result<()> {
    let schools = registry();
    let mut file = tempfile::Builder::new()
        .prefix("region-registry")
        .suffix(".csv")
        .tempfile()?;
    std::io::Write::write_all(&mut file, registry_csv(&schools).as_bytes())?;
    let districts: Vec<&str> = DISTRICTS.iter().map(|(d, _)| *d).collect();
    let districts = districts.join(",");
    bureau(
        bin,
        dir,
        &[
            "init",
            "--coordinator",
            FIRST_COORDINATOR,
            "--districts",
            &districts,
        ],
    )?;
    for team in &TEAMS {
        let kind = match team.kind {
            Kind::Caravan => "caravan",
            Kind::Tutors => "volunteer",
        };
        let districts = team.districts.join(",");
        bureau(
            bin,
            dir,
            &[
                "team",
                "add",
                "--team",
                team.id,
                "--kind",
                kind,
                "--districts",
                &districts,
            ],
        )?;
    }
    let registry = file.path().to_string_lossy().into_owned();
    bureau(bin, dir, &["school", "import", &registry])?;
    let rural = schools.iter().filter(|s| s.rural).count();
    println!(
        "region: {} districts ({districts}), {} registered schools ({rural} rural, {} urban), teams {}",
        DISTRICTS.len(),
        schools.len(),
        schools.len() - rural,
        TEAMS.iter().map(|t| t.id).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

// ---- planning ----

/// How alike a field-entered school's name must be to a registered one's for the duplicate
/// finder to compare their visits (its `CLOSE_NAME`).
const CLOSE_NAME: f64 = 0.5;
/// How alike for the coordinator's desk to suggest the registered one (its `CLOSE_SCHOOL`).
const SIMILAR_NAME: f64 = 0.25;

/// Registered schools of the pending school's district whose name is at least `threshold`
/// alike, most alike first.
fn close_schools(schools: &[RegistrySchool], pending: &PendingPlan, threshold: f64) -> Vec<usize> {
    let mut close: Vec<(f64, usize)> = schools
        .iter()
        .enumerate()
        .filter(|(_, s)| s.district == pending.district)
        .map(|(n, s)| {
            (
                fieldlog_core::duplicates::similarity(&s.name, pending.name),
                n,
            )
        })
        .filter(|(score, _)| *score >= threshold)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    close.into_iter().map(|(_, n)| n).collect()
}

/// Where a visit happens: a registered school by index into the registry, or a field-entered
/// one by index into [`PENDING`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Registered(usize),
    Pending(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DuplicateKind {
    Identical,
    OtherCount,
    NextDay,
    FieldEnteredSchool,
}

impl DuplicateKind {
    fn key(self) -> &'static str {
        match self {
            DuplicateKind::Identical => "identical",
            DuplicateKind::OtherCount => "other_count",
            DuplicateKind::NextDay => "next_day",
            DuplicateKind::FieldEnteredSchool => "field_entered_school",
        }
    }
}

/// One visit record to make.
#[derive(Debug, Clone)]
struct Planned {
    /// Index into the flat device list.
    device: usize,
    date: NaiveDate,
    minute: i64,
    place: Place,
    activities: Vec<&'static str>,
    topic: String,
    presenters: String,
    audience: [i64; 3],
    books: i64,
    kits: i64,
    notes: &'static str,
}

/// The flat list of devices: (team index, device index within the team).
fn device_list() -> Vec<(usize, usize)> {
    TEAMS
        .iter()
        .enumerate()
        .flat_map(|(t, team)| (0..team.devices.len()).map(move |d| (t, d)))
        .collect()
}

fn device_index(team: usize, device: usize) -> usize {
    TEAMS[..team].iter().map(|t| t.devices.len()).sum::<usize>() + device
}

/// How much of each thing a region of `visits` records gets.
struct Sizes {
    events: usize,
    duplicates: usize,
    conflicts: usize,
    pending: usize,
    flags: usize,
}

impl Sizes {
    fn of(visits: usize) -> Result<Sizes> {
        ensure!(visits >= 40, "--visits must be at least 40");
        let pending = (visits / 375).clamp(3, PENDING.len());
        let duplicates = (visits * 3 / 100).max(4);
        Ok(Sizes {
            events: visits - duplicates,
            duplicates,
            conflicts: (visits / 100).max(2),
            pending,
            flags: (visits / 600).max(2),
        })
    }
}

struct Planner<'a> {
    rng: Rng,
    schools: &'a [RegistrySchool],
    /// Spacing group of each place: a field-entered school shares one with the registered
    /// schools its name is close to, so no two visits to them fall within two days unless
    /// planned as duplicates.
    group_of: BTreeMap<Place, usize>,
    busy: BTreeMap<usize, BTreeSet<NaiveDate>>,
    days: Vec<NaiveDate>,
    today: NaiveDate,
}

impl Planner<'_> {
    fn group(&self, place: Place) -> usize {
        self.group_of.get(&place).copied().unwrap_or(usize::MAX)
    }

    /// Whether no visit to the place's group falls within two days of `date`.
    fn free(&self, place: Place, date: NaiveDate) -> bool {
        let Some(dates) = self.busy.get(&self.group(place)) else {
            return true;
        };
        let from = date - Days::new(2);
        let to = date + Days::new(2);
        dates.range(from..=to).next().is_none()
    }

    fn book(&mut self, place: Place, date: NaiveDate) {
        let group = self.group(place);
        self.busy.entry(group).or_default().insert(date);
    }

    fn day(&mut self) -> NaiveDate {
        *self.rng.pick(&self.days)
    }

    fn school_in(&mut self, districts: &[&str]) -> usize {
        loop {
            let n = self.rng.below(self.schools.len());
            if districts.contains(&self.schools[n].district) {
                return n;
            }
        }
    }

    /// A free (place, date) for the device, trying its own schools first for tutors.
    fn slot(&mut self, device: usize, home: &[usize]) -> Option<(Place, NaiveDate)> {
        let (team, _) = device_list()[device];
        for _ in 0..200 {
            let date = self.day();
            let school = if !home.is_empty() && self.rng.percent(80) {
                *self.rng.pick(home)
            } else {
                self.school_in(TEAMS[team].districts)
            };
            let place = Place::Registered(school);
            if self.free(place, date) {
                self.book(place, date);
                return Some((place, date));
            }
        }
        None
    }

    fn content(&mut self, device: usize, place: Place, date: NaiveDate) -> Planned {
        let (team, d) = device_list()[device];
        let plan = &TEAMS[team];
        let rng = &mut self.rng;
        let minute = rng.range(8 * 60 + 30, 16 * 60);
        let notes = *rng.pick(&NOTES);
        match plan.kind {
            Kind::Caravan => {
                let crew: Vec<&str> = plan.devices.iter().map(|(_, m)| *m).collect();
                Planned {
                    device,
                    date,
                    minute,
                    place,
                    activities: rng.pick(&CARAVAN_ACTIVITIES).to_vec(),
                    topic: (*rng.pick(&CARAVAN_TOPICS)).to_string(),
                    presenters: crew.join("、"),
                    audience: [rng.range(80, 400), rng.range(3, 15), rng.range(0, 20)],
                    books: rng.range(0, 6) * 10,
                    kits: rng.range(0, 3),
                    notes,
                }
            }
            Kind::Tutors => {
                let training = rng.percent(6);
                let (activities, topic, audience): (&[&str], &str, [i64; 3]) = if training {
                    (
                        &["teacher_training", "lecture"],
                        *rng.pick(&TRAINING_TOPICS),
                        [0, rng.range(15, 40), 0],
                    )
                } else {
                    (
                        *rng.pick(&TUTOR_ACTIVITIES),
                        *rng.pick(&TUTOR_TOPICS),
                        [rng.range(25, 55), rng.range(1, 3), 0],
                    )
                };
                Planned {
                    device,
                    date,
                    minute,
                    place,
                    activities: activities.to_vec(),
                    topic: topic.to_string(),
                    presenters: plan.devices[d].1.to_string(),
                    audience,
                    books: rng.range(0, 4) * 5,
                    kits: rng.range(0, 2),
                    notes,
                }
            }
        }
    }
}

/// What the plan makes: the records (in no particular order), and which are duplicates.
struct Plan {
    records: Vec<Planned>,
    /// (index of the first record, index of its twin, kind).
    pairs: Vec<(usize, usize, DuplicateKind)>,
}

fn plan(
    seed: u64,
    visits: usize,
    today: NaiveDate,
    schools: &[RegistrySchool],
) -> Result<(Plan, Sizes)> {
    let sizes = Sizes::of(visits)?;
    let start = NaiveDate::from_ymd_opt(today.year() - 1, 1, 1).context("a start date")?;
    let days: Vec<NaiveDate> = start
        .iter_days()
        .take_while(|d| *d <= today)
        .filter(|d| school_day(*d))
        .collect();
    ensure!(days.len() > 20, "too few school days before {today}");
    let by_name = |name: &str| schools.iter().position(|s| s.name == name);
    // Field-entered schools share a spacing group with every registered school of their
    // district whose name is close (the duplicate finder blocks on those pairs).
    let mut group_of = BTreeMap::new();
    for n in 0..schools.len() {
        group_of.insert(Place::Registered(n), n);
    }
    for (p, pending) in PENDING.iter().enumerate().take(sizes.pending) {
        let group = schools.len() + p;
        group_of.insert(Place::Pending(p), group);
        for n in close_schools(schools, pending, CLOSE_NAME) {
            let old = group_of[&Place::Registered(n)];
            for g in group_of.values_mut().filter(|g| **g == old) {
                *g = group;
            }
        }
    }
    let mut planner = Planner {
        rng: Rng(seed),
        schools,
        group_of,
        busy: BTreeMap::new(),
        days,
        today,
    };
    let devices = device_list();
    let mut records: Vec<Planned> = Vec::new();
    let mut pairs = Vec::new();
    let mut twins = 0;

    // Field-entered schools: the device that entered one logs its visits there; for some,
    // a crew-mate logged the same stop at the registered school it resembles.
    for (p, pending) in PENDING.iter().enumerate().take(sizes.pending) {
        let device = device_index(pending.team, pending.device);
        let crew = TEAMS[pending.team].devices.len();
        let mut placed = 0;
        for _ in 0..1000 {
            if placed == 2 {
                break;
            }
            let date = planner.day();
            let place = Place::Pending(p);
            if !planner.free(place, date) {
                continue;
            }
            planner.book(place, date);
            let visit = planner.content(device, place, date);
            match pending.twin_of.and_then(by_name) {
                Some(registered) if placed == 0 && twins < sizes.duplicates => {
                    ensure!(
                        planner.group(Place::Registered(registered)) == planner.group(place),
                        "{} is not close enough to {} to be suspected",
                        pending.name,
                        schools[registered].name
                    );
                    let mate = device_index(pending.team, (pending.device + 1) % crew);
                    let mut first = visit.clone();
                    first.device = mate;
                    first.place = Place::Registered(registered);
                    let mut twin = visit;
                    twin.minute += 4;
                    twin.audience[0] = first.audience[0] * 9 / 10;
                    records.push(first);
                    records.push(twin);
                    pairs.push((
                        records.len() - 2,
                        records.len() - 1,
                        DuplicateKind::FieldEnteredSchool,
                    ));
                    twins += 1;
                }
                _ => records.push(visit),
            }
            placed += 1;
        }
        ensure!(placed == 2, "no free day for visits to {}", pending.name);
    }

    // Tutors return to their own schools.
    let mut homes: Vec<Vec<usize>> = vec![Vec::new(); devices.len()];
    for (device, &(team, _)) in devices.iter().enumerate() {
        if TEAMS[team].kind == Kind::Tutors {
            homes[device] = (0..6)
                .map(|_| planner.school_in(TEAMS[team].districts))
                .collect();
        }
    }
    // Caravans log a little more than half the visits.
    let caravans: Vec<usize> = (0..devices.len())
        .filter(|&d| TEAMS[devices[d].0].kind == Kind::Caravan)
        .collect();
    let tutors: Vec<usize> = (0..devices.len())
        .filter(|&d| TEAMS[devices[d].0].kind == Kind::Tutors)
        .collect();
    while records.len() - twins < sizes.events {
        let device = if planner.rng.percent(55) {
            *planner.rng.pick(&caravans)
        } else {
            *planner.rng.pick(&tutors)
        };
        let home = homes[device].clone();
        let Some((place, date)) = planner.slot(device, &home) else {
            bail!("no free school day left for {} visits", visits);
        };
        records.push(planner.content(device, place, date));
    }

    // Crew phones logging the same stop: another phone of the caravan logs it too.
    let kinds = [
        DuplicateKind::Identical,
        DuplicateKind::OtherCount,
        DuplicateKind::NextDay,
    ];
    let candidates: Vec<usize> = (0..records.len())
        .filter(|&n| {
            TEAMS[devices[records[n].device].0].kind == Kind::Caravan
                && matches!(records[n].place, Place::Registered(_))
                && !pairs.iter().any(|&(a, b, _)| a == n || b == n)
        })
        .collect();
    ensure!(
        candidates.len() >= 2 * sizes.duplicates,
        "too few caravan visits for {} duplicates",
        sizes.duplicates
    );
    let mut used = BTreeSet::new();
    while twins < sizes.duplicates {
        let n = *planner.rng.pick(&candidates);
        if !used.insert(n) {
            continue;
        }
        let first = &records[n];
        let (team, d) = devices[first.device];
        let crew = TEAMS[team].devices.len();
        let mate = device_index(team, (d + 1 + planner.rng.below(crew - 1)) % crew);
        let mut kind = kinds[twins % kinds.len()];
        let mut twin = first.clone();
        twin.device = mate;
        twin.minute += 3;
        match kind {
            DuplicateKind::OtherCount => {
                twin.audience[0] = first.audience[0] * (85 + planner.rng.range(0, 7)) / 100;
                twin.audience[2] = 0;
            }
            DuplicateKind::NextDay if first.date < planner.today => {
                twin.date = first.date + Days::new(1);
            }
            DuplicateKind::NextDay => kind = DuplicateKind::Identical,
            _ => {}
        }
        records.push(twin);
        pairs.push((n, records.len() - 1, kind));
        twins += 1;
    }
    Ok((Plan { records, pairs }, sizes))
}

// ---- making it ----

/// A device: its store and the clock it runs on.
struct Phone {
    name: &'static str,
    member: &'static str,
    team: &'static str,
    dir: PathBuf,
    store: Store,
    clock: Arc<SetClock>,
}

/// Where the bureau is: its binary and data dir (for enrollment codes) and its URL.
#[derive(Clone, Copy)]
struct BureauAt<'a> {
    bin: &'a Path,
    dir: &'a Path,
    url: &'a str,
}

impl Phone {
    /// A new store in `dir`, enrolled with the bureau, holding what it may see.
    fn enroll(
        (name, member, team): (&'static str, &'static str, &'static str),
        dir: PathBuf,
        bureau: BureauAt<'_>,
        role: &str,
        now: i64,
    ) -> Result<Phone> {
        ensure!(
            !dir.exists(),
            "{} exists: generate into a new --out",
            dir.display()
        );
        let clock = Arc::new(SetClock(AtomicI64::new(now)));
        let options = Options {
            clock: clock.clone(),
        };
        let store = Store::init(&dir, name, team, options)
            .with_context(|| format!("creating {name} in {}", dir.display()))?;
        let mut phone = Phone {
            name,
            member,
            team,
            dir,
            store,
            clock,
        };
        let code = code(bureau.bin, bureau.dir, team, member, role)?;
        fieldlog_core::sync::enroll(&mut phone.store, bureau.url, &code)
            .with_context(|| format!("enrolling {name}"))?;
        phone.sync()?;
        Ok(phone)
    }

    fn sync(&mut self) -> Result<()> {
        fieldlog_core::sync::sync(&mut self.store, |_| {})
            .with_context(|| format!("syncing {}", self.name))?;
        Ok(())
    }
}

/// Every phone syncs at `now`, all at once, `rounds` times: what one phone sends in a round
/// reaches its teammates in the next.
fn sync_all(phones: &mut [Phone], now: i64, rounds: usize) -> Result<()> {
    for _ in 0..rounds {
        std::thread::scope(|scope| {
            let syncs: Vec<_> = phones
                .iter_mut()
                .map(|phone| {
                    phone.clock.set(now);
                    scope.spawn(move || phone.sync())
                })
                .collect();
            syncs
                .into_iter()
                .try_for_each(|s| s.join().unwrap_or_else(|_| bail!("a sync panicked")))
        })?;
    }
    Ok(())
}

/// What recording made: each record's visit id, and the field-entered schools by plan index.
type Recorded = (Vec<(usize, VisitId)>, Vec<(usize, String)>);

/// Records one phone's visits (record index, record) in time order, the clock at each
/// visit's time. The phone enters a field-entered school at its first visit there.
fn record(
    phone: &mut Phone,
    records: &[(usize, &Planned)],
    schools: &[RegistrySchool],
    today: NaiveDate,
) -> Result<Recorded> {
    let mut entered: BTreeMap<usize, String> = BTreeMap::new();
    let mut visits = Vec::new();
    for &(n, record) in records {
        phone.clock.set(at(record.date, record.minute));
        let school = match record.place {
            Place::Registered(s) => schools[s].name.clone(),
            Place::Pending(p) => match entered.get(&p) {
                Some(id) => id.clone(),
                None => {
                    let plan = &PENDING[p];
                    let school = phone.store.add_school(
                        &SchoolInput {
                            name: plan.name.into(),
                            district: plan.district.into(),
                            area: "乡村".into(),
                            level: plan.level.into(),
                            enrollment: None,
                        },
                        SchoolStatus::Pending,
                    )?;
                    entered.insert(p, school.id.to_string());
                    school.id.to_string()
                }
            },
        };
        let visit = phone
            .store
            .add_visit(&input(record, school), today)
            .with_context(|| format!("recording a visit on {}", phone.name))?;
        visits.push((n, visit.id));
    }
    Ok((visits, entered.into_iter().collect()))
}

fn input(record: &Planned, school: String) -> VisitInput {
    VisitInput {
        school,
        date: Some(record.date.to_string()),
        activities: record.activities.iter().map(|a| a.to_string()).collect(),
        topic: record.topic.clone(),
        presenters: record.presenters.clone(),
        audience: fieldlog_domain::visit::AudienceInput {
            students: record.audience[0],
            teachers: record.audience[1],
            others: record.audience[2],
            ..Default::default()
        },
        donations: fieldlog_domain::visit::DonationsInput {
            books: record.books,
            kits: record.kits,
        },
        notes: record.notes.to_string(),
        ..VisitInput::default()
    }
}

fn generate(args: &Args) -> Result<()> {
    let started = Instant::now();
    let bin = args.path("bureau-bin")?;
    let bureau_dir = args.path("bureau-dir")?;
    let bureau = BureauAt {
        bin: &bin,
        dir: &bureau_dir,
        url: args.get("url")?,
    };
    let out = args.path("out")?;
    let visits = usize::try_from(args.number("visits", 3000)?)?;
    let seed = args.number("seed", 2026)?;
    let today = args.today()?;
    let schools = registry();
    let (Plan { records, pairs }, sizes) = plan(seed, visits, today, &schools)?;
    let mut rng = Rng(seed ^ 0x5EED);
    let devices = device_list();

    std::fs::create_dir_all(&out)?;
    let start = NaiveDate::from_ymd_opt(today.year() - 1, 1, 1).context("a start date")?;
    let mut phones = Vec::new();
    for &(team, d) in &devices {
        let (name, member) = TEAMS[team].devices[d];
        let dir = out.join(format!("{}-phone-{}", TEAMS[team].id, d + 1));
        let who = (name, member, TEAMS[team].id);
        let enrolled = at(start - Days::new(7), 9 * 60);
        phones.push(Phone::enroll(who, dir, bureau, "volunteer", enrolled)?);
    }

    // Every phone records its visits, all phones at once: each save waits for its disk
    // flush (synchronous=FULL), so one phone after another would mostly wait.
    let recording = Instant::now();
    let recorded = std::thread::scope(|scope| {
        let threads: Vec<_> = phones
            .iter_mut()
            .enumerate()
            .map(|(device, phone)| {
                let mut own: Vec<(usize, &Planned)> = records
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.device == device)
                    .collect();
                own.sort_by_key(|&(n, r)| (r.date, r.minute, n));
                let schools = &schools;
                scope.spawn(move || record(phone, &own, schools, today))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| bail!("recording panicked")))
            .collect::<Result<Vec<_>>>()
    })?;
    let recording = recording.elapsed();
    let mut ids: Vec<Option<VisitId>> = vec![None; records.len()];
    let mut pending_ids: Vec<Option<String>> = vec![None; sizes.pending];
    for (visits, entered) in recorded {
        for (n, id) in visits {
            ids[n] = Some(id);
        }
        for (p, id) in entered {
            pending_ids[p] = Some(id);
        }
    }
    let ids: Vec<VisitId> = ids
        .into_iter()
        .map(|id| id.context("a planned visit was not recorded"))
        .collect::<Result<_>>()?;
    sync_all(&mut phones, at(today, 18 * 60), 2)?;

    // Concurrent edits: two crew phones correct one visit before either syncs.
    let in_pairs: BTreeSet<usize> = pairs.iter().flat_map(|&(a, b, _)| [a, b]).collect();
    let editable: Vec<usize> = (0..records.len())
        .filter(|&n| {
            let (team, _) = devices[records[n].device];
            TEAMS[team].kind == Kind::Caravan && !in_pairs.contains(&n) && records[n].date < today
        })
        .collect();
    let mut conflicts = Vec::new();
    let mut edited = BTreeSet::new();
    while conflicts.len() < sizes.conflicts && edited.len() < editable.len() {
        let n = *rng.pick(&editable);
        if !edited.insert(n) {
            continue;
        }
        let record = &records[n];
        let (team, d) = devices[record.device];
        let mate = device_index(team, (d + 1) % TEAMS[team].devices.len());
        let (field, values) = if conflicts.len() % 2 == 0 {
            (
                "topic",
                [
                    format!("{}（互动体验）", record.topic),
                    format!("{}实验秀", record.topic),
                ],
            )
        } else {
            (
                "donations.books",
                [
                    (record.books + 20).to_string(),
                    (record.books + 30).to_string(),
                ],
            )
        };
        for (device, value) in [(record.device, &values[0]), (mate, &values[1])] {
            let phone = &mut phones[device];
            phone.clock.set(at(record.date + Days::new(1), 20 * 60));
            phone
                .store
                .edit_visit(ids[n], &[(field.to_string(), value.clone())], today)
                .with_context(|| format!("editing {} on {}", ids[n], phone.name))?;
        }
        conflicts.push((n, field, values));
    }
    sync_all(&mut phones, at(today, 19 * 60), 2)?;

    // Decisions already taken by a second coordinator: the previous year verified, a few
    // visits flagged (some fixed since), this year's targets.
    let mut coordinator = Phone::enroll(
        ("协调科办公电脑", SECOND_COORDINATOR, "bureau"),
        out.join("coordinator-li"),
        bureau,
        "coordinator",
        at(today - Days::new(8), 9 * 60),
    )?;
    let conflicted: BTreeSet<usize> = conflicts.iter().map(|(n, _, _)| *n).collect();
    let quiet = |n: &usize| !in_pairs.contains(n) && !conflicted.contains(n);
    let verify: Vec<VisitId> = (0..records.len())
        .filter(|n| quiet(n) && records[*n].date.year() < today.year())
        .map(|n| ids[n])
        .collect();
    coordinator.store.verify_visits(&verify, "")?;
    let flaggable: Vec<usize> = (0..records.len())
        .filter(|n| {
            quiet(n)
                && records[*n].date.year() == today.year()
                && records[*n].date + Days::new(14) < today
        })
        .collect();
    let mut flagged = BTreeSet::new();
    while flagged.len() < sizes.flags.min(flaggable.len()) {
        flagged.insert(*rng.pick(&flaggable));
    }
    for (k, &n) in flagged.iter().enumerate() {
        coordinator
            .store
            .flag_visit(ids[n], FLAG_NOTES[k % FLAG_NOTES.len()])?;
    }
    let last_year = coordinator.store.report(&ReportFilter {
        from: NaiveDate::from_ymd_opt(today.year() - 1, 1, 1),
        to: NaiveDate::from_ymd_opt(today.year() - 1, 12, 31),
        district: None,
    })?;
    let more = |n: u64, percent: u64| (n * percent / 100).max(1).to_string();
    let goals: Vec<(String, String)> = [
        ("lectures", more(last_year.lectures, 110)),
        ("audience", more(last_year.audience, 110)),
        ("schools", more(last_year.schools_reached, 100)),
        ("rural_lecture_share", "30%".into()),
        ("districts_covered", "all".into()),
        ("teachers_trained", more(last_year.teachers_trained, 120)),
        ("books", more(last_year.books, 110)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    coordinator.store.set_targets(today.year(), None, &goals)?;
    coordinator.sync()?;

    // Half the flagged visits were fixed by their authors.
    let fixed: Vec<usize> = flagged.iter().copied().step_by(2).collect();
    for &n in &fixed {
        let phone = &mut phones[records[n].device];
        phone.clock.set(at(today - Days::new(4), 20 * 60));
        phone.sync()?;
        let notes = [records[n].notes, "已按审核意见补充说明"]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("；");
        phone
            .store
            .edit_visit(ids[n], &[("notes".to_string(), notes)], today)?;
    }
    // Every phone ends up holding what its team and the coordinators did.
    sync_all(&mut phones, at(today, 20 * 60), 2)?;
    coordinator.clock.set(at(today, 20 * 60));
    coordinator.sync()?;
    let seconds = started.elapsed().as_secs_f64();

    // What was made.
    let pending: Vec<(&PendingPlan, String, Vec<&str>)> = PENDING
        .iter()
        .take(sizes.pending)
        .zip(pending_ids)
        .map(|(plan, id)| {
            let similar = close_schools(&schools, plan, SIMILAR_NAME)
                .into_iter()
                .take(2)
                .map(|n| schools[n].name.as_str())
                .collect();
            (plan, id.unwrap_or_default(), similar)
        })
        .collect();
    let summary = json!({
        "today": today.to_string(),
        "seed": seed,
        "visits": records.len(),
        "districts": DISTRICTS.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
        "schools": {
            "registered": schools.len(),
            "rural": schools.iter().filter(|s| s.rural).count(),
        },
        "devices": phones.iter().enumerate().map(|(n, p)| json!({
            "name": p.name, "member": p.member, "team": p.team,
            "data_dir": p.dir,
            "visits": records.iter().filter(|r| r.device == n).count(),
        })).collect::<Vec<_>>(),
        "coordinator": {
            "name": coordinator.name, "member": coordinator.member, "data_dir": coordinator.dir,
        },
        "duplicates": pairs.iter().map(|&(a, b, kind)| json!({
            "a": ids[a], "b": ids[b], "kind": kind.key(),
        })).collect::<Vec<_>>(),
        "conflicts": conflicts.iter().map(|(n, field, values)| json!({
            "visit": ids[*n], "field": field, "values": values,
        })).collect::<Vec<_>>(),
        "pending_schools": pending.iter().map(|(plan, id, similar)| json!({
            "id": id, "name": plan.name, "district": plan.district, "similar_to": similar,
        })).collect::<Vec<_>>(),
        "verified": verify.len(),
        "flagged": flagged.iter().map(|&n| ids[n]).collect::<Vec<_>>(),
        "fixed": fixed.iter().map(|&n| ids[n]).collect::<Vec<_>>(),
        "targets_year": today.year(),
        "seconds": (seconds * 10.0).round() / 10.0,
    });
    let summary_file = out.join("region.json");
    std::fs::write(&summary_file, serde_json::to_string_pretty(&summary)?)?;

    println!(
        "generated {} visits ({start} to {today}) on {} devices in {seconds:.1} s (recording {:.1} s):",
        records.len(),
        phones.len(),
        recording.as_secs_f64()
    );
    for (n, phone) in phones.iter().enumerate() {
        println!(
            "  {:<8} {:<10} {:>5} visits  {}",
            phone.name,
            phone.team,
            records.iter().filter(|r| r.device == n).count(),
            phone.dir.display()
        );
    }
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, kind) in &pairs {
        *kinds.entry(kind.key()).or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!(
        "  duplicates: {} pairs logged by two crew phones ({})",
        pairs.len(),
        kinds.join(", ")
    );
    let topics = conflicts.iter().filter(|c| c.1 == "topic").count();
    println!(
        "  conflicts: {} visits edited on two phones before either synced ({topics} topic, {} books)",
        conflicts.len(),
        conflicts.len() - topics
    );
    println!("  pending schools: {}", pending.len());
    for (plan, _, similar) in &pending {
        let like = match similar.first() {
            Some(name) => format!(", close to {name}"),
            None => String::new(),
        };
        println!("    {} ({}{like})", plan.name, plan.district);
    }
    println!(
        "  decided by {SECOND_COORDINATOR} on {}: {} verified, {} flagged ({} fixed since), targets for {}",
        coordinator.dir.display(),
        verify.len(),
        flagged.len(),
        fixed.len(),
        today.year()
    );
    println!("  all of it, with ids: {}", summary_file.display());
    Ok(())
}

// ---- checking a coordinator's device ----

fn ids_of(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn check(args: &Args) -> Result<()> {
    let dir = args.path("data-dir")?;
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(args.path("summary")?).context("reading the summary")?,
    )?;
    let today = args.today()?;
    let store = Store::open(&dir, Options::default())?;
    let report = store.report(&ReportFilter::default())?;
    let queue = store.review_queue(today)?;
    let mut wrong = Vec::new();
    let visits = summary["visits"].as_u64().unwrap_or_default();
    if report.visits != visits {
        wrong.push(format!("{} visits, {visits} generated", report.visits));
    }
    let listed: BTreeSet<(String, String)> = queue
        .duplicates
        .iter()
        .map(|p| ordered(p.a.to_string(), p.b.to_string()))
        .collect();
    let planned: BTreeSet<(String, String)> = summary["duplicates"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            ordered(
                p["a"].as_str().unwrap_or_default().into(),
                p["b"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    if listed != planned {
        wrong.push(format!(
            "{} duplicate pairs listed, {} generated ({} of them listed)",
            listed.len(),
            planned.len(),
            listed.intersection(&planned).count()
        ));
    }
    let held: BTreeSet<(String, String)> = queue
        .conflicts
        .iter()
        .map(|c| (c.record_id.clone(), c.field.key().to_string()))
        .collect();
    let made: BTreeSet<(String, String)> = summary["conflicts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["visit"].as_str().unwrap_or_default().into(),
                c["field"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    if held != made {
        wrong.push(format!(
            "{} conflicts held, {} generated",
            held.len(),
            made.len()
        ));
    }
    let pending: BTreeSet<String> = queue
        .pending_schools
        .iter()
        .map(|s| s.id.to_string())
        .collect();
    let entered: BTreeSet<String> = summary["pending_schools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect();
    if pending != entered {
        wrong.push(format!(
            "{} pending schools, {} entered",
            pending.len(),
            entered.len()
        ));
    }
    let fixed: BTreeSet<String> = queue.fixed.iter().map(|v| v.id.to_string()).collect();
    if fixed != ids_of(&summary["fixed"]) {
        wrong.push(format!("{} fixed visits waiting", fixed.len()));
    }
    ensure!(
        wrong.is_empty(),
        "{} does not hold the generated region: {}",
        dir.display(),
        wrong.join("; ")
    );
    println!(
        "the coordinator's device holds the region: {} visits ({} verified), {} suspected duplicate pairs, {} conflicts, {} pending schools, {} fixed visits to review",
        report.visits,
        report.verified_visits,
        listed.len(),
        held.len(),
        pending.len(),
        fixed.len()
    );
    Ok(())
}

fn ordered(a: String, b: String) -> (String, String) {
    if a < b { (a, b) } else { (b, a) }
}
