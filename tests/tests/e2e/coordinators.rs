//! Coordinators through the real binaries: three crew phones of one caravan log the same
//! stops (exact duplicates, different counts, two doors counted apart), enter a school in
//! the field, edit one visit's topic and count concurrently and delete one; a coordinator
//! device reviews all of it. After everyone syncs, every device's report, the bureau's, the
//! targets, the CSV and XLSX work ledgers (opened by LibreOffice) give the same known
//! figures.

use crate::{TestDevice, bureau_bin, demo_registry};
use fieldlog_tests::bureau::Bureau;
use fieldlog_tests::libreoffice::sheets_as_csv;
use serde_json::{Value, json};
use std::path::Path;

/// The figures the scenario must end with (see each visit below).
fn expected_report() -> Value {
    json!({
        "visits": 8,
        "schools_reached": 7,
        "rural_schools": 4,
        "urban_schools": 3,
        // 42 + 124 + (206 + 154 + 10) + 25 + 83 + 47 + 63 + 58
        "audience": 812,
        "lectures": 6,
        "books": 60,
        "kits": 1,
        "rural_lectures": 4,
        "districts_covered": 2,
        "teachers_trained": 25,
        "duplicates_merged": 3,
        "verified_visits": 3,
        "unverified_visits": 5,
        "courses_completed": 0,
        "course_sessions": 0,
    })
}

fn visit(
    device: &TestDevice,
    school: &str,
    date: &str,
    activities: &[&str],
    topic: &str,
    audience: [u32; 3],
    [books, kits]: [u32; 2],
) -> String {
    device.add_visit(&json!({
        "school": school, "date": date, "activities": activities, "topic": topic,
        "audience": {"students": audience[0], "teachers": audience[1], "others": audience[2]},
        "donations": {"books": books, "kits": kits},
    }))
}

fn enroll(device: &TestDevice, bureau: &Bureau, code: &str) {
    device.run(&["enroll", &bureau.url(), code]).ok();
}

fn sync_all(devices: &[&TestDevice]) {
    // Twice round: what one device sent reaches the others on the second pass.
    for _ in 0..2 {
        for device in devices {
            device.run(&["sync"]).ok();
        }
    }
}

fn pair_listed(pairs: &Value, a: &str, b: &str) -> bool {
    pairs.as_array().unwrap().iter().any(|p| {
        let (x, y) = (p["a"].as_str().unwrap(), p["b"].as_str().unwrap());
        (x == a && y == b) || (x == b && y == a)
    })
}

#[test]
fn a_coordinator_takes_a_regions_logs_to_published_figures() {
    let bureau = Bureau::start(bureau_bin(), &demo_registry());
    let a = TestDevice::init("zh-CN", "一号机", "caravan-1");
    let b = TestDevice::init("zh-CN", "二号机", "caravan-1");
    let v = TestDevice::init("zh-CN", "三号机", "caravan-1");
    let c = TestDevice::init("zh-CN", "协调机", "bureau");
    for (device, name) in [(&a, "一号机"), (&b, "二号机"), (&v, "三号机")] {
        enroll(device, &bureau, &bureau.code("caravan-1", name));
    }
    enroll(&c, &bureau, &bureau.coordinator_code("王协调"));
    let all = [&a, &b, &v, &c];
    sync_all(&all);

    // A volunteer device may not decide anything.
    let refused = a.run(&["review", "verify", &uuid_like()]).fails();
    assert!(refused.contains("协调员"), "{refused}");

    // Stop 1: both phones log the same lecture, identically.
    let lesson = |d: &TestDevice| {
        visit(
            d,
            "南山小学",
            "2026-05-11",
            &["lecture"],
            "水的三态",
            [40, 2, 0],
            [10, 0],
        )
    };
    let (v1, v1b) = (lesson(&a), lesson(&b));
    // Stop 2: the same show, counted differently.
    let v2 = visit(
        &a,
        "南山区东坪镇中心小学",
        "2026-05-12",
        &["lecture", "experiment_show"],
        "磁铁的秘密",
        [120, 4, 0],
        [20, 0],
    );
    let v2b = visit(
        &b,
        "南山区东坪镇中心小学",
        "2026-05-12",
        &["lecture", "experiment_show"],
        "磁铁的秘密",
        [100, 4, 0],
        [20, 0],
    );
    // Stop 3: each counted a different door.
    let v3 = visit(
        &a,
        "青溪县龙潭镇中学",
        "2026-05-13",
        &["experiment_show"],
        "科普大篷车实验秀",
        [200, 6, 10],
        [0, 1],
    );
    let v3b = visit(
        &b,
        "青溪县龙潭镇中学",
        "2026-05-13",
        &["experiment_show"],
        "科普大篷车实验秀",
        [150, 4, 0],
        [0, 1],
    );
    // A school first entered in the field, and a teacher training there.
    let pending = v.json(&[
        "school",
        "add",
        "--name",
        "青溪县龙潭镇中心学校",
        "--district",
        "青溪县",
        "--area",
        "乡村",
    ])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v4 = visit(
        &v,
        "青溪县龙潭镇中心学校",
        "2026-05-14",
        &["lecture", "teacher_training"],
        "教师科学实验培训",
        [0, 25, 0],
        [30, 0],
    );
    // Visits edited concurrently once both phones hold them.
    let v5 = visit(
        &a,
        "青溪县城关小学",
        "2026-05-15",
        &["lecture"],
        "声音",
        [80, 3, 0],
        [0, 0],
    );
    let v6 = visit(
        &a,
        "南山区实验小学",
        "2026-05-16",
        &["hands_on"],
        "动手做风车",
        [50, 2, 0],
        [0, 0],
    );
    let v7 = visit(
        &a,
        "南山区第二中学",
        "2026-05-17",
        &["lecture"],
        "误录",
        [300, 0, 0],
        [0, 0],
    );
    let v8 = visit(
        &a,
        "南山区西岭学校",
        "2026-05-18",
        &["lecture"],
        "植物的一生",
        [60, 3, 0],
        [0, 0],
    );
    let v8b = visit(
        &b,
        "南山区西岭学校",
        "2026-05-19",
        &["lecture"],
        "植物的一生",
        [55, 3, 0],
        [0, 0],
    );
    sync_all(&all);

    a.run(&["visit", "edit", &v5, "--set", "topic=声音是怎样传播的"])
        .ok();
    b.run(&["visit", "edit", &v5, "--set", "topic=声音的传播实验"])
        .ok();
    a.run(&["visit", "edit", &v6, "--set", "audience.students=45"])
        .ok();
    b.run(&["visit", "edit", &v6, "--set", "audience.students=40"])
        .ok();
    a.run(&["visit", "delete", &v7]).ok();
    sync_all(&all);

    // The coordinator's queue shows the suspected duplicates, the conflict, the pending school.
    let queue = c.json(&["review"]);
    for (x, y) in [(&v1, &v1b), (&v2, &v2b), (&v3, &v3b), (&v8, &v8b)] {
        assert!(
            pair_listed(&queue["duplicates"], x, y),
            "{x} {y} in {}",
            queue["duplicates"]
        );
    }
    let identical = queue["duplicates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| pair_listed(&json!([p]), &v1, &v1b))
        .unwrap();
    assert!(
        identical["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("different_authors"))
    );
    assert!(
        queue["conflicts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["record_id"] == json!(v5) && c["field"] == "topic"),
        "{}",
        queue["conflicts"]
    );
    assert_eq!(queue["pending_schools"][0]["id"], json!(pending));
    // A count lowered on two phones: 50 - 5 - 10.
    assert_eq!(c.json(&["visit", "show", &v6])["audience"]["students"], 35);

    // Refusals change nothing.
    let before = c.json(&["review", "history", &v1]);
    assert!(
        c.run(&["review", "merge", &v1, &v1])
            .fails()
            .contains("不能合并到它自己")
    );
    let unknown = c.run(&["review", "resolve", &v5, "weather", "晴"]).fails();
    assert!(unknown.contains("weather"), "{unknown}");
    let bad_target = c
        .run(&["target", "set", "--year", "2026", "pupils=5"])
        .fails();
    assert!(bad_target.contains("pupils"), "{bad_target}");
    assert_eq!(c.json(&["review", "history", &v1]), before);

    // Decisions.
    c.run(&[
        "review",
        "merge",
        &v1,
        &v1b,
        "--note",
        "两台手机记录了同一场讲座",
    ])
    .ok();
    c.run(&["review", "merge", &v2, &v2b]).ok();
    c.run(&[
        "review",
        "merge",
        &v3,
        &v3b,
        "--audience",
        "sum",
        "--note",
        "两个门分别计数",
    ])
    .ok();
    // A merge the other way round would make a cycle.
    assert!(
        c.run(&["review", "merge", &v1b, &v1])
            .fails()
            .contains("循环")
    );
    c.run(&["review", "merge", &v8, &v8b]).ok();
    c.run(&["review", "unmerge", &v8b, "--note", "是两次课"])
        .ok();
    c.run(&["school", "merge", &pending, "青溪县龙潭镇中心小学"])
        .ok();
    c.run(&["review", "resolve", &v5, "topic", "声音的传播"])
        .ok();
    c.run(&["review", "resolve", &v6, "audience.students", "45"])
        .ok();
    c.run(&["review", "verify", &v1, &v2, &v3]).ok();
    c.run(&["review", "flag", &v8, "--note", "请补充主讲人"])
        .ok();
    c.run(&[
        "target",
        "set",
        "--year",
        "2026",
        "lectures=5",
        "audience=1000",
        "schools=7",
        "rural_lecture_share=20%",
        "districts_covered=all",
        "teachers_trained=20",
        "books=100",
    ])
    .ok();
    sync_all(&all);

    // The flag reached the crew phone, offline from here on; the fix goes back.
    let shown = a.run(&["visit", "show", &v8]).ok();
    assert!(
        shown.contains("请补充主讲人") && shown.contains("待修改"),
        "{shown}"
    );
    a.run(&["visit", "edit", &v8, "--set", "presenters=李老师"])
        .ok();
    sync_all(&all);
    let queue = c.json(&["review"]);
    assert_eq!(queue["fixed"][0]["id"], json!(v8), "{}", queue["fixed"]);
    assert!(
        queue["conflicts"].as_array().unwrap().is_empty(),
        "{}",
        queue["conflicts"]
    );
    assert!(queue["pending_schools"].as_array().unwrap().is_empty());
    assert!(
        pair_listed(&queue["duplicates"], &v8, &v8b),
        "unmerged pairs come back"
    );
    assert!(!pair_listed(&queue["duplicates"], &v1, &v1b));

    // The same figures everywhere.
    let expected = expected_report();
    for device in all {
        assert_eq!(
            device.json(&["report"]),
            expected,
            "{}",
            device.data_dir().display()
        );
        assert_eq!(device.json(&["visit", "show", &v5])["topic"], "声音的传播");
        assert_eq!(
            device.json(&["visit", "show", &v6])["audience"]["students"],
            45
        );
    }
    assert_eq!(bureau.read(&["report"]), expected);
    let history = c.json(&["review", "history", &v8b]);
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["merge", "unmerge"]);
    assert_eq!(history[0]["member"], "王协调");

    // Targets.
    let targets = c.json(&["targets", "--year", "2026"]);
    let target = |key: &str| {
        targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == key)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (
            target("lectures")["current"].as_f64(),
            target("lectures")["met"].as_bool()
        ),
        (Some(6.0), Some(true))
    );
    assert_eq!(target("audience")["met"], false);
    let share = target("rural_lecture_share");
    assert_eq!(
        (share["numerator"].as_u64(), share["denominator"].as_u64()),
        (Some(4), Some(6))
    );
    assert_eq!(share["met"], true);
    let coverage = target("districts_covered");
    assert_eq!(
        coverage["missing_districts"],
        json!(["临江区", "白云县", "石门县"])
    );
    assert_eq!(coverage["met"], false);
    assert_eq!(target("teachers_trained")["met"], true);
    assert_eq!(target("books")["current"].as_f64(), Some(60.0));
    assert_eq!(bureau.read(&["targets", "--year", "2026"]), targets);

    // The work ledger: CSV on the coordinator device, XLSX there and at the bureau.
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    c.run(&["export", "ledger", "--csv", &file("device.csv")])
        .ok();
    c.run(&["export", "ledger", "--xlsx", &file("device.xlsx")])
        .ok();
    bureau.show(&["export", "ledger", "--xlsx", &file("bureau.xlsx")]);
    bureau.show(&["export", "ledger", "--csv", &file("bureau.csv")]);
    let csv = std::fs::read(file("device.csv")).unwrap();
    assert!(csv.starts_with("\u{feff}序号,活动日期,区县,学校,学校类别".as_bytes()));
    assert_eq!(
        csv,
        std::fs::read(file("bureau.csv")).unwrap(),
        "device and bureau rows agree"
    );
    let rows = csv_rows(&String::from_utf8(csv).unwrap());
    assert_eq!(rows.len(), 1 + 8, "a header and one row per counted visit");
    let audience: u64 = rows[1..]
        .iter()
        .map(|r| r[13].parse::<u64>().unwrap())
        .sum();
    assert_eq!(audience, 812);
    let stop3 = rows.iter().find(|r| r[1] == "2026-05-13").unwrap();
    assert_eq!(
        (&stop3[10][..], &stop3[13][..]),
        ("350", "370"),
        "summed doors: {stop3:?}"
    );
    // The visit keeps the school it was entered with; it counts for the registered one.
    assert_eq!(c.json(&["visit", "show", &v4])["school"], json!(pending));
    let merged_school = rows.iter().find(|r| r[1] == "2026-05-14").unwrap();
    assert_eq!(
        (&merged_school[3][..], &merged_school[4][..]),
        ("青溪县龙潭镇中心小学", "乡村")
    );

    for xlsx in ["device.xlsx", "bureau.xlsx"] {
        let sheets = libreoffice_csv(Path::new(&file(xlsx)));
        assert_eq!(sheets[0], rows, "{xlsx}: 工作台账 as LibreOffice reads it");
        let summary = &sheets[1];
        let figure = |label: &str| {
            summary
                .iter()
                .find(|r| r[0] == label)
                .map(|r| r[1].clone())
                .unwrap()
        };
        for (label, key) in [
            ("走访次数(次)", "visits"),
            ("覆盖学校(所)", "schools_reached"),
            ("乡村学校(所)", "rural_schools"),
            ("城区学校(所)", "urban_schools"),
            ("受众人数(人次)", "audience"),
            ("讲座(场)", "lectures"),
            ("乡村学校讲座(场)", "rural_lectures"),
            ("赠书(册)", "books"),
            ("器材(套)", "kits"),
            ("覆盖区县(个)", "districts_covered"),
            ("培训教师(人)", "teachers_trained"),
            ("合并的重复记录(条)", "duplicates_merged"),
            ("已核实(条)", "verified_visits"),
            ("未核实(条)", "unverified_visits"),
        ] {
            assert_eq!(figure(label), expected[key].to_string(), "{xlsx}: {label}");
        }
        assert!(
            summary.iter().any(|r| r[0] == "乡村学校讲座占比"
                && r[4] == "66.7%"
                && r[5] == "4"
                && r[6] == "6"
                && r[7] == "已达成"),
            "{summary:?}"
        );
        let decisions = &sheets[2];
        assert_eq!(decisions[0][..4], ["时间", "协调员", "设备", "决定"]);
        assert!(
            decisions
                .iter()
                .any(|r| r[3] == "撤销合并" && r[6] == "是两次课")
        );
        assert_eq!(decisions.len(), 1 + 12, "{decisions:?}");
    }
}

/// Some visit id nobody holds (the refusal comes before the lookup).
fn uuid_like() -> String {
    "0190f0d0-0000-7000-8000-000000000000".into()
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let text = text.trim_start_matches('\u{feff}');
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// Every sheet of `xlsx` as LibreOffice reads it, in sheet order, without empty rows.
fn libreoffice_csv(xlsx: &Path) -> Vec<Vec<Vec<String>>> {
    sheets_as_csv(xlsx, &["工作台账", "汇总", "审核记录"])
        .iter()
        .map(|text| {
            csv_rows(text)
                .into_iter()
                .filter(|r| r.iter().any(|c| !c.is_empty()))
                .collect()
        })
        .collect()
}
