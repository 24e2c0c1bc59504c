//! Series courses, rosters and pairings with a real bureau: two phones of one team logging
//! sessions of a course offline converge on the same sessions, numbers and attendance, with
//! the clash shown; roster names never reach another team's device, a bundle or an export;
//! the pairing rate has known numbers on a coordinator's device and at the bureau.

use crate::{TestDevice, bureau_bin, demo_registry};
use fieldlog_domain::{CourseInput, Session, StudentInput, VisitInput};
use fieldlog_tests::bureau::{Bureau, Device};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

const RURAL: &str = "南山区东坪镇中心小学";

fn today() -> chrono::NaiveDate {
    chrono::Local::now().date_naive()
}

fn session(
    device: &mut Device,
    course: &str,
    date: &str,
    present: &[&str],
) -> fieldlog_domain::VisitId {
    let input: VisitInput = serde_json::from_value(json!({
        "course": course, "date": date, "activities": ["hands_on"], "attendance": present,
    }))
    .unwrap();
    device.store.add_visit(&input, today()).unwrap().id
}

/// (number, date, students, present, clash) of each session, in order.
fn numbered(device: &Device, course: &str) -> Vec<(u32, String, u32, Option<u32>, bool)> {
    let summary = device.store.course(course).unwrap();
    summary
        .sessions
        .iter()
        .map(|s: &Session| (s.number, s.date.to_string(), s.students, s.present, s.clash))
        .collect()
}

#[test]
fn two_phones_logging_one_course_offline_converge_and_show_the_clash() {
    let bureau = Bureau::start(bureau_bin(), &demo_registry());
    bureau.add_team("tutors", "南山区");
    let mut a = Device::enrolled(&bureau, "辅导甲", "tutors");
    let mut b = Device::enrolled(&bureau, "辅导乙", "tutors");
    a.sync().unwrap();
    let course = a
        .store
        .add_course(
            &CourseInput {
                school: RURAL.into(),
                title: "水的旅行".into(),
                sessions: 16,
                ..CourseInput::default()
            },
            today(),
        )
        .unwrap()
        .id
        .to_string();
    for name in ["林一", "林二", "林三", "林四"] {
        a.store
            .add_student(
                &course,
                &StudentInput {
                    name: name.into(),
                    ..StudentInput::default()
                },
            )
            .unwrap();
    }
    a.sync().unwrap();
    b.sync().unwrap();
    assert_eq!(
        b.store.roster(&course).unwrap().len(),
        4,
        "b holds the roster"
    );

    // A week without signal: both log sessions, and one session (the 8th) on both phones.
    let first = session(&mut a, &course, "2026-09-01", &["林一", "林二"]);
    session(&mut a, &course, "2026-09-08", &["林一"]);
    session(&mut b, &course, "2026-09-08", &["林三"]);
    session(
        &mut b,
        &course,
        "2026-09-15",
        &["林一", "林二", "林三", "林四"],
    );
    assert_eq!(b.store.next_session(&course).unwrap(), (3, 16));
    assert_eq!(
        numbered(&a, &course)
            .iter()
            .map(|s| s.0)
            .collect::<Vec<_>>(),
        [1, 2]
    );

    for _ in 0..2 {
        a.sync().unwrap();
        b.sync().unwrap();
    }
    // Both phones also take attendance of the first session, differently, offline.
    a.store
        .attend(
            first,
            &["林一".into(), "林二".into(), "林三".into()],
            today(),
        )
        .unwrap();
    b.store
        .attend(first, &["林一".into(), "林四".into()], today())
        .unwrap();
    for _ in 0..2 {
        a.sync().unwrap();
        b.sync().unwrap();
    }

    let expected = vec![
        // 林三 added by a, 林四 added and 林二 removed by b: every addition kept.
        (1, "2026-09-01".to_string(), 3, Some(3), false),
        (2, "2026-09-08".to_string(), 1, Some(1), true),
        (3, "2026-09-08".to_string(), 1, Some(1), true),
        (4, "2026-09-15".to_string(), 4, Some(4), false),
    ];
    assert_eq!(numbered(&a, &course), expected);
    assert_eq!(numbered(&b, &course), expected);
    let present: Vec<String> = a
        .store
        .visit(first)
        .unwrap()
        .fields
        .attendance
        .iter()
        .map(|id| {
            let roster = a.store.roster(&course).unwrap();
            roster.iter().find(|s| s.id == *id).unwrap().name.clone()
        })
        .collect();
    let mut present = present;
    present.sort();
    assert_eq!(present, ["林一", "林三", "林四"]);

    let summary = a.store.course(&course).unwrap();
    assert_eq!(
        (summary.held, summary.planned, summary.missing),
        (4, 16, 12)
    );
    let report = a.store.report(&Default::default()).unwrap();
    assert_eq!(report.course_sessions, 4);
    assert_eq!(report.courses_completed, 0);
    assert_eq!(b.store.report(&Default::default()).unwrap(), report);
    let at_bureau = bureau.read(&["report"]);
    assert_eq!(at_bureau["course_sessions"], 4);
    // 3 + 1 + 1 + 4 students, wherever it is counted.
    assert_eq!(at_bureau["audience"], report.audience);
    assert_eq!(report.audience, 9);
}

/// Every file under `dir`, read whole (SQLite files, their journals, photos).
fn bytes_under(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(bytes_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
    out
}

/// A bundle's body, inflated (names inside would be zstd-compressed otherwise).
fn bundle_body(file: &Path) -> Vec<u8> {
    let bytes = std::fs::read(file).unwrap();
    zstd::decode_all(&bytes[16 + 1 + 32..]).unwrap()
}

/// Every part of an XLSX, inflated.
fn xlsx_parts(file: &Path) -> Vec<u8> {
    let out = Command::new("unzip").arg("-p").arg(file).output().unwrap();
    assert!(out.status.success(), "unzip {}", file.display());
    out.stdout
}

fn holds(haystack: &[u8], name: &str) -> bool {
    haystack.windows(name.len()).any(|w| w == name.as_bytes())
}

#[test]
fn roster_names_stay_with_the_team_and_the_bureau() {
    let bureau = Bureau::start(bureau_bin(), &demo_registry());
    bureau.add_team("tutors", "南山区");
    let tutor = TestDevice::init("zh-CN", "辅导一号", "tutors");
    let other = TestDevice::init("zh-CN", "一号机", "caravan-1");
    let coordinator = TestDevice::init("zh-CN", "协调机", "bureau");
    tutor
        .run(&["enroll", &bureau.url(), &bureau.code("tutors", "辅导一号")])
        .ok();
    other
        .run(&["enroll", &bureau.url(), &bureau.code("caravan-1", "一号机")])
        .ok();
    coordinator
        .run(&["enroll", &bureau.url(), &bureau.coordinator_code("王协调")])
        .ok();
    let all = [&tutor, &other, &coordinator];
    let sync_all = || {
        for _ in 0..2 {
            for d in all {
                d.run(&["sync"]).ok();
            }
        }
    };
    sync_all();

    let names = ["欧阳晓晴", "司马明轩", "诸葛星辰"];
    let course = tutor.run(&[
        "course",
        "add",
        "--school",
        RURAL,
        "--title",
        "水的旅行",
        "--sessions",
        "16",
    ]);
    let course = course.ok().trim().to_string();
    for name in names {
        tutor
            .run(&[
                "course",
                "roster",
                &course,
                "add",
                name,
                "--grade",
                "四年级",
            ])
            .ok();
    }
    let visit = tutor.run(&[
        "visit",
        "add",
        "--course",
        &course,
        "--date",
        "2026-09-01",
        "--activity",
        "hands_on",
        "--attend",
        names[0],
        "--attend",
        names[1],
    ]);
    let visit = visit.ok().trim().to_string();
    // A typed count that disagrees with the attendance is refused, naming the field.
    let refused = tutor
        .run(&[
            "visit",
            "add",
            "--course",
            &course,
            "--date",
            "2026-09-02",
            "--activity",
            "lecture",
            "--attend",
            names[0],
            "--students",
            "30",
        ])
        .fails();
    assert!(
        refused.contains("学生人数") && refused.contains("到课 1 人"),
        "{refused}"
    );
    sync_all();

    // The team's coordinator (region) holds the roster; the session counts 2 students.
    let roster = coordinator.run(&["course", "roster", &course]).ok();
    assert!(names.iter().all(|n| roster.contains(n)), "{roster}");
    let shown = coordinator.json(&["visit", "show", &visit]);
    assert_eq!(shown["audience"]["students"], 2);

    // Another team of the same district holds neither the course nor any name.
    assert!(
        other
            .run(&["course", "show", &course])
            .fails()
            .contains("课程")
    );
    let other_bytes = bytes_under(other.data_dir());
    for name in names {
        assert!(
            !holds(&other_bytes, name),
            "{name} reached another team's device"
        );
    }

    // Bundles, from the tutor and from the coordinator, carry no roster; another team's
    // device importing one holds the course but is refused its roster.
    let dir = tempfile::tempdir().unwrap();
    for (device, file) in [
        (&tutor, "tutor.bundle"),
        (&coordinator, "coordinator.bundle"),
    ] {
        let file = dir.path().join(file);
        device
            .run(&["bundle", "export", "--all", file.to_str().unwrap()])
            .ok();
        let body = bundle_body(&file);
        assert!(holds(&body, "水的旅行"), "the bundle carries the course");
        for name in names {
            assert!(!holds(&body, name), "{name} in a bundle");
        }
        other
            .run(&["bundle", "import", file.to_str().unwrap()])
            .ok();
    }
    let refused = other
        .run(&["course", "roster", &course, "export", "--csv", "/dev/null"])
        .fails();
    assert!(refused.contains("tutors"), "{refused}");
    let other_bytes = bytes_under(other.data_dir());
    assert!(names.iter().all(|n| !holds(&other_bytes, n)));

    // Exports: the ledger (CSV and XLSX) and the courses workbook, on the coordinator's
    // device and at the bureau, hold counts only.
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    coordinator
        .run(&["export", "ledger", "--csv", &file("ledger.csv")])
        .ok();
    coordinator
        .run(&["export", "ledger", "--xlsx", &file("ledger.xlsx")])
        .ok();
    coordinator
        .run(&["export", "courses", "--xlsx", &file("courses.xlsx")])
        .ok();
    bureau.show(&["export", "ledger", "--xlsx", &file("bureau-ledger.xlsx")]);
    bureau.show(&["export", "courses", "--xlsx", &file("bureau-courses.xlsx")]);
    let csv = std::fs::read(file("ledger.csv")).unwrap();
    assert!(
        holds(&csv, "水的旅行") && holds(&csv, "1/16"),
        "the ledger names course and session"
    );
    let mut exported = csv;
    for xlsx in [
        "ledger.xlsx",
        "courses.xlsx",
        "bureau-ledger.xlsx",
        "bureau-courses.xlsx",
    ] {
        let parts = xlsx_parts(Path::new(&file(xlsx)));
        assert!(holds(&parts, "水的旅行"), "{xlsx} lists the course");
        exported.extend(parts);
    }
    for name in names {
        assert!(!holds(&exported, name), "{name} in an export");
    }
    // The tutor's own roster export does hold them.
    tutor
        .run(&[
            "course",
            "roster",
            &course,
            "export",
            "--csv",
            &file("roster.csv"),
        ])
        .ok();
    let roster_csv = std::fs::read_to_string(file("roster.csv")).unwrap();
    assert!(names.iter().all(|n| roster_csv.contains(n)), "{roster_csv}");
}

fn target<'a>(targets: &'a Value, key: &str) -> &'a Value {
    targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {targets}"))
}

#[test]
fn the_pairing_rate_has_known_numbers_on_a_device_and_at_the_bureau() {
    let bureau = Bureau::start(bureau_bin(), &demo_registry());
    bureau.add_team("tutors", "南山区");
    let volunteers = ["甲", "乙", "丙", "丁", "戊"];
    let devices: Vec<TestDevice> = volunteers
        .iter()
        .map(|name| {
            let d = TestDevice::init("zh-CN", &format!("{name}的手机"), "tutors");
            d.run(&["enroll", &bureau.url(), &bureau.code("tutors", name)])
                .ok();
            d
        })
        .collect();
    let coordinator = TestDevice::init("zh-CN", "协调机", "bureau");
    coordinator
        .run(&["enroll", &bureau.url(), &bureau.coordinator_code("王协调")])
        .ok();
    let tutor = &devices[0];
    tutor.run(&["sync"]).ok();
    let members = tutor.json(&["members"]);
    assert_eq!(members.as_array().unwrap().len(), 5, "{members}");
    // A name the bureau never enrolled is refused, naming the field.
    let refused = tutor
        .run(&[
            "pairing",
            "add",
            "--volunteer",
            "己",
            "--teacher",
            "李梅",
            "--school",
            RURAL,
        ])
        .fails();
    assert!(refused.contains("志愿者"), "{refused}");

    let pair = |volunteer: &str, teacher: &str, school: &str, since: &str| {
        tutor
            .run(&[
                "pairing",
                "add",
                "--volunteer",
                volunteer,
                "--teacher",
                teacher,
                "--school",
                school,
                "--since",
                since,
            ])
            .ok()
            .trim()
            .to_string()
    };
    pair("甲", "李梅", RURAL, "2026-03-01");
    pair("乙", "张伟", "南山区凤凰乡小学", "2026-03-01");
    pair("丙", "王芳", "南山小学", "2026-03-01"); // urban: not toward the rate
    let ended = pair("丁", "赵强", "南山区西岭学校", "2026-02-01");
    tutor
        .run(&["pairing", "end", &ended, "--on", "2026-06-30"])
        .ok();

    coordinator
        .run(&[
            "target",
            "set",
            "--year",
            "2026",
            "pairing_rate=80%",
            "pairings=100",
        ])
        .ok();
    for _ in 0..2 {
        tutor.run(&["sync"]).ok();
        coordinator.run(&["sync"]).ok();
    }
    let region_members = coordinator.json(&["members"]);
    assert_eq!(
        region_members.as_array().unwrap().len(),
        6,
        "{region_members}"
    );

    let expect = |targets: &Value| {
        let rate = target(targets, "pairing_rate");
        assert_eq!(
            (rate["numerator"].clone(), rate["denominator"].clone()),
            (json!(2), json!(5))
        );
        assert_eq!(rate["current"], 0.4);
        assert_eq!(rate["met"], false);
        let pairings = target(targets, "pairings");
        assert_eq!(pairings["current"], 3.0);
    };
    expect(&coordinator.json(&["targets", "--year", "2026"]));
    expect(&bureau.read(&["targets", "--year", "2026"]));
    let text = coordinator.run(&["targets", "--year", "2026"]).ok();
    assert!(
        text.contains("志愿者结对率") && text.contains("40.0% (2/5)"),
        "{text}"
    );
}
