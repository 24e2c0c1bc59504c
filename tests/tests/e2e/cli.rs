//! The `fieldlog` command as a user or a script meets it: registry import, search, visits,
//! validation errors in both languages, reports, bundles between devices and conflicts.

use crate::{TestDevice, demo_registry, words};
use fieldlog_domain::{DeviceId, VisitId};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const TEAM: &str = "caravan-1";
const URBAN: &str = "南山小学";
const RURAL: &str = "南山区东坪镇中心小学";
const RURAL_2: &str = "临江区码头镇中学";

fn device(lang: &'static str) -> TestDevice {
    let device = TestDevice::init(lang, "一号机", TEAM);
    device.import_demo_registry();
    device
}

fn school_id(device: &TestDevice, name: &str) -> String {
    let found = device.json(&["school", "search", name, "--limit", "1"]);
    assert_eq!(found[0]["name"], name, "{found}");
    found[0]["id"].as_str().expect("a school id").to_string()
}

/// Three visits that count (one school twice) and one deleted: the report's test data.
fn add_report_visits(device: &TestDevice) {
    let visits = [
        json!({"school": URBAN, "date": "2025-05-20", "activities": ["lecture"],
               "audience": {"students": 40, "teachers": 2}, "donations": {"books": 10, "kits": 1}}),
        json!({"school": RURAL, "date": "2025-05-21", "activities": ["experiment_show"],
               "audience": {"students": 30, "others": 3}, "donations": {"books": 5}}),
        json!({"school": URBAN, "date": "2025-06-02", "activities": ["lecture", "hands_on"],
               "audience": {"students": 20, "teachers": 1}, "donations": {"kits": 2}}),
    ];
    for visit in &visits {
        device.add_visit(visit);
    }
    let deleted = device.add_visit(&json!({"school": RURAL_2, "date": "2025-06-03",
        "activities": ["lecture"], "audience": {"students": 100}, "donations": {"books": 50}}));
    device.run(&["visit", "delete", &deleted]).ok();
}

#[test]
fn registry_import_adds_sixty_schools_then_changes_nothing() {
    let device = TestDevice::init("zh-CN", "一号机", TEAM);
    let registry = demo_registry();
    let registry = registry.to_str().expect("a UTF-8 path");

    let first = device.run(&["school", "import", registry]).ok();
    assert_eq!(first, "新增：60\n更新：0\n未变：0\n");

    let again = device.json(&["school", "import", registry]);
    assert_eq!(again, json!({"added": 0, "updated": 0, "unchanged": 60}));
    assert_eq!(
        device.json(&["school", "list"]).as_array().map(Vec::len),
        Some(60)
    );
}

#[test]
fn a_registry_listing_a_school_twice_is_refused_and_a_fixed_one_imports_once() {
    let device = TestDevice::init("zh-CN", "一号机", TEAM);
    let dir = tempfile::tempdir().expect("a temp dir");
    let rows = "name,district,area,level,enrollment\n\
                南山小学,南山区,城区,小学,1280\n\
                青溪县龙潭镇中心小学,青溪县,乡村,小学,420\n";
    let twice = dir.path().join("twice.csv");
    std::fs::write(&twice, format!("{rows}南山小学,南山区,城区,小学,1280\n")).expect("written");
    let once = dir.path().join("once.csv");
    std::fs::write(&once, rows).expect("written");
    let count = || device.json(&["school", "list"]).as_array().map(Vec::len);

    for _ in 0..3 {
        let refused = device
            .run(&["school", "import", twice.to_str().expect("UTF-8")])
            .fails();
        for part in ["第 4 行", "第 2 行", "南山小学"] {
            assert!(refused.contains(part), "{refused}");
        }
        assert_eq!(count(), Some(0));
    }
    let english = device
        .run(&[
            "--lang",
            "en",
            "school",
            "import",
            twice.to_str().expect("UTF-8"),
        ])
        .fails();
    assert!(english.contains("listed twice"), "{english}");

    let mut summaries = Vec::new();
    for _ in 0..3 {
        summaries.push(device.json(&["school", "import", once.to_str().expect("UTF-8")]));
        assert_eq!(count(), Some(2));
    }
    assert_eq!(
        summaries[0],
        json!({"added": 2, "updated": 0, "unchanged": 0})
    );
    assert_eq!(
        summaries[2],
        json!({"added": 0, "updated": 0, "unchanged": 2})
    );
}

#[test]
fn init_accepts_an_empty_dir_and_refuses_a_second_device() {
    let device = TestDevice::empty("en");
    let created = device.json(&["init", "--device-name", "laptop", "--team", TEAM]);
    assert_eq!(created["name"], "laptop");
    assert_eq!(created["team"], TEAM);
    assert!(
        created["id"]
            .as_str()
            .is_some_and(|id| id.parse::<DeviceId>().is_ok())
    );

    let again = device
        .run(&["init", "--device-name", "other", "--team", TEAM])
        .fails();
    assert!(
        again.starts_with("error: ") && again.contains("laptop"),
        "{again}"
    );
    let data_dir = device.data_dir().to_str().expect("a UTF-8 path");
    assert!(again.contains(data_dir), "{again}");
}

#[test]
fn school_search_finds_nanshan_primary_by_pinyin() {
    let device = device("zh-CN");
    for query in ["nsxx", "nanshan", "南山小学"] {
        let found = device.json(&["school", "search", query]);
        assert_eq!(found[0]["name"], URBAN, "{query}: {found}");
        assert_eq!(found[0]["area"], "urban", "{query}: {found}");
    }
    let limited = device.json(&["school", "search", "nanshan", "--limit", "2"]);
    assert_eq!(limited.as_array().map(Vec::len), Some(2));
}

#[test]
fn schools_entered_in_the_field_stay_pending_unless_registered() {
    let device = device("zh-CN");
    let added = device.json(&words(
        "school add --name 岩口新村小学 --district 南山区 --area 乡村 --level 小学",
    ));
    let found = device.json(&["school", "search", "ykxcxx"]);
    assert_eq!(found[0]["id"], added["id"], "{found}");
    assert_eq!(found[0]["status"], "pending");
    assert_eq!(found[0]["area"], "rural");

    let id = device
        .run(&words(
            "school add --name 江北小学 --district 临江区 --area urban --registered",
        ))
        .ok();
    let found = device.json(&["school", "search", "江北小学"]);
    assert_eq!(found[0]["id"], id.trim_end());
    assert_eq!(found[0]["status"], "registered");
    let table = device.run(&["school", "search", "江北小学"]).ok();
    assert!(
        table.contains("已登记") && table.contains("城区"),
        "{table}"
    );

    let refused = device
        .run(&words(
            "school add --name 无名 --district 南山区 --area 山区",
        ))
        .fails();
    assert!(
        refused.contains("城乡类别") && refused.contains("山区"),
        "{refused}"
    );
    assert_eq!(
        device.json(&["school", "list"]).as_array().map(Vec::len),
        Some(62)
    );
}

#[test]
fn visit_added_from_json_or_flags_reads_back_the_same() {
    let device = device("zh-CN");
    let input = json!({
        "school": URBAN, "date": "2025-05-20", "activities": ["lecture", "experiment_show"],
        "topic": "水的三态", "presenters": "王老师", "notes": "第一站",
        "audience": {"students": 86, "teachers": 4, "others": 2},
        "donations": {"books": 120, "kits": 2},
    });
    let stdout = device
        .run_with_stdin(&["visit", "add", "--json-in"], &input.to_string())
        .ok();
    assert_eq!(stdout.lines().count(), 1, "only the id: {stdout}");
    let id = stdout.trim_end();
    assert!(id.parse::<VisitId>().is_ok(), "not a visit id: {stdout}");

    let shown = device.json(&["visit", "show", id]);
    assert_eq!(shown["id"], id);
    assert_eq!(shown["school"], school_id(&device, URBAN).as_str());
    for key in [
        "date",
        "activities",
        "topic",
        "presenters",
        "notes",
        "donations",
    ] {
        assert_eq!(shown[key], input[key], "{key}");
    }
    assert_eq!(
        shown["audience"],
        json!({"students": 86, "teachers": 4, "others": 2})
    );
    assert_eq!(shown["status"], "recorded");
    assert_eq!(shown["deleted"], false);
    assert_eq!(shown["created_by"], "一号机");

    let listed = device.json(&["visit", "list"]);
    assert_eq!(listed, json!([shown]));

    let line = format!(
        "visit add --school {RURAL} --date 2025-06-01 --activity lecture \
         --activity hands_on,讲座 --topic 磁铁 --students 30 --teachers 2 --others 1 \
         --books 5 --kits 1 --presenters 李老师 --notes 雨天"
    );
    let id2 = device.run(&words(&line)).ok();
    let shown2 = device.json(&["visit", "show", id2.trim_end()]);
    assert_eq!(shown2["school"], school_id(&device, RURAL).as_str());
    assert_eq!(shown2["date"], "2025-06-01");
    assert_eq!(shown2["activities"], json!(["lecture", "hands_on"]));
    assert_eq!(
        shown2["audience"],
        json!({"students": 30, "teachers": 2, "others": 1})
    );
    assert_eq!(shown2["donations"], json!({"books": 5, "kits": 1}));
    assert_eq!(
        (&shown2["topic"], &shown2["presenters"], &shown2["notes"]),
        (&json!("磁铁"), &json!("李老师"), &json!("雨天"))
    );

    let june = device.json(&["visit", "list", "--month", "2025-06"]);
    assert_eq!(june, json!([shown2]));
    let at_urban = device.json(&["visit", "list", "--school", URBAN]);
    assert_eq!(at_urban, json!([shown]));
}

#[test]
fn report_counts_each_school_once_and_never_a_deleted_visit() {
    let device = device("zh-CN");
    add_report_visits(&device);
    let report = device.json(&["report"]);
    assert_eq!(
        report,
        json!({
            "visits": 3, "schools_reached": 2, "rural_schools": 1, "urban_schools": 1,
            "audience": 42 + 33 + 21, "lectures": 2, "books": 15, "kits": 3,
            "rural_lectures": 0, "districts_covered": 1, "teachers_trained": 0,
            "duplicates_merged": 0, "verified_visits": 0, "unverified_visits": 3,
            "courses_completed": 0, "course_sessions": 0,
        })
    );
    // The eight keys of the first release, exactly the six coordinators' figures and the
    // two of courses.
    let keys: Vec<&String> = report.as_object().expect("an object").keys().collect();
    assert_eq!(keys.len(), 8 + 6 + 2, "{keys:?}");

    let june = device.json(&["report", "--from", "2025-06-01", "--to", "2025-06-30"]);
    assert_eq!(
        (&june["visits"], &june["schools_reached"]),
        (&json!(1), &json!(1))
    );
    let elsewhere = device.json(&["report", "--district", "临江区"]);
    assert_eq!(elsewhere["visits"], 0, "the deleted visit never counts");
}

#[test]
fn visits_imported_from_a_file_read_back_and_a_refused_one_saves_none() {
    let device = device("zh-CN");
    let visits: Vec<Value> = (0..3)
        .map(|i| {
            json!({"school": URBAN, "date": "2025-05-20", "activities": ["lecture"],
                   "topic": format!("第{i}课"), "audience": {"students": 30 + i}})
        })
        .collect();
    let array = device.data_dir().join("visits.json");
    std::fs::write(&array, serde_json::to_string(&visits).unwrap()).unwrap();
    let imported = device.json(&["visit", "import", array.to_str().unwrap()]);
    assert_eq!(imported["imported"], 3);
    let lines = device.data_dir().join("visits.jsonl");
    let text: String = visits.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&lines, text).unwrap();
    let said = device
        .run(&["visit", "import", lines.to_str().unwrap()])
        .ok();
    assert!(said.contains('3'), "{said}");
    let listed = device.json(&["visit", "list"]);
    let mut topics: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["topic"].as_str())
        .collect();
    topics.sort();
    assert_eq!(
        topics,
        ["第0课", "第0课", "第1课", "第1课", "第2课", "第2课"]
    );
    let id = imported["ids"][1].as_str().unwrap();
    assert_eq!(
        device.json(&["visit", "show", id])["audience"]["students"],
        31
    );

    // The second visit is refused: the message names it and its field, and nothing is saved.
    let mut bad = visits.clone();
    bad[1]["audience"]["students"] = json!(-5);
    std::fs::write(&array, serde_json::to_string(&bad).unwrap()).unwrap();
    let zh = device
        .run(&["visit", "import", array.to_str().unwrap()])
        .fails();
    assert!(zh.contains("第 2 条") && zh.contains("学生人数"), "{zh}");
    let en = device
        .run(&["--lang", "en", "visit", "import", array.to_str().unwrap()])
        .fails();
    assert!(
        en.contains("visit 2 of the import") && en.contains("students"),
        "{en}"
    );
    std::fs::write(&array, "[{\"school\": ").unwrap();
    let broken = device
        .run(&["visit", "import", array.to_str().unwrap()])
        .fails();
    assert!(broken.contains("visits.json"), "{broken}");
    assert_eq!(device.json(&["visit", "list"]), listed);
}

#[test]
fn invalid_visit_names_every_field_in_the_users_language_and_saves_nothing() {
    let device = device("zh-CN");
    device.add_visit(&json!({"school": URBAN, "date": "2025-05-20", "activities": ["lecture"]}));
    let before = device.json(&["visit", "list"]);
    let bad = json!({"school": URBAN, "date": "1999-01-01", "activities": ["dance"],
                     "audience": {"students": -5}})
    .to_string();

    let en = device
        .run_with_stdin(&["--lang", "en", "visit", "add", "--json-in"], &bad)
        .fails();
    assert!(en.starts_with("error: "), "{en}");
    for part in ["date", "activities", "\"dance\"", "students", "2000-01-01"] {
        assert!(en.contains(part), "{part} missing in: {en}");
    }

    let zh = device
        .run_with_stdin(&["--lang", "zh-CN", "visit", "add", "--json-in"], &bad)
        .fails();
    assert!(zh.starts_with("错误："), "{zh}");
    for part in ["日期", "活动类型", "“dance”", "学生人数"] {
        assert!(zh.contains(part), "{part} missing in: {zh}");
    }

    let line = device
        .run_with_stdin(&["--json", "visit", "add", "--json-in"], &bad)
        .fails();
    let error: Value = serde_json::from_str(&line).expect("the error line is JSON");
    assert_eq!(error["error"]["kind"], "invalid");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("学生人数"))
    );
    let fields: BTreeSet<&str> = error["error"]["fields"]
        .as_array()
        .expect("a list of fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from(["date", "activities", "audience.students"])
    );

    let line = format!("--lang en visit add --school {URBAN} --activity lecture --students -5");
    let flags = device.run(&words(&line)).fails();
    assert!(flags.contains("students"), "{flags}");

    assert_eq!(device.json(&["visit", "list"]), before, "nothing was saved");
}

#[test]
fn bad_usage_keeps_clap_exit_code_and_help_documents_input() {
    let device = device("en");
    let mixed = device.run_with_stdin(&["visit", "add", "--json-in", "--topic", "x"], "{}");
    assert_eq!(mixed.code, Some(2), "{mixed:#?}");

    let help = device.run(&["--help"]).ok();
    for kind in [
        "lecture",
        "experiment_show",
        "mobile_museum",
        "hands_on",
        "讲座",
        "--json-in",
    ] {
        assert!(help.contains(kind), "{kind} missing in --help");
    }
    let add_help = device.run(&["visit", "add", "--help"]).ok();
    assert!(
        add_help.contains(r#""audience": {"students""#),
        "{add_help}"
    );

    let not_json = device
        .run_with_stdin(&["--json", "visit", "add", "--json-in"], "school: 南山小学")
        .fails();
    let error: Value = serde_json::from_str(&not_json).expect("the error line is JSON");
    assert_eq!(error["error"]["kind"], "invalid_json");

    let fresh = TestDevice::empty("zh-CN");
    let missing = fresh.run(&["visit", "list"]).fails();
    assert!(
        missing.starts_with("错误：") && missing.contains("fieldlog init"),
        "{missing}"
    );
}

#[test]
fn visit_edit_changes_only_the_named_fields_and_refuses_unknown_ones() {
    let device = device("zh-CN");
    let id = device.add_visit(&json!({"school": URBAN, "date": "2025-05-20",
        "activities": ["lecture"], "topic": "电路", "audience": {"students": 40, "teachers": 2}}));

    let line = format!("visit edit {id} --set audience.students=50 --set topic=磁铁");
    let shown = device.run(&words(&line)).ok();
    assert!(shown.contains("主题：磁铁"), "{shown}");
    assert!(shown.contains("学生 50"), "{shown}");
    assert!(shown.contains("合计 52"), "{shown}");

    let after = device.json(&["visit", "show", &id]);
    assert_eq!(after["topic"], "磁铁");
    assert_eq!(
        after["audience"],
        json!({"students": 50, "teachers": 2, "others": 0})
    );
    assert_eq!(after["activities"], json!(["lecture"]));

    let refused = device
        .run(&["--lang", "en", "visit", "edit", &id, "--set", "nosuch=1"])
        .fails();
    assert!(refused.contains("\"nosuch\""), "{refused}");
    assert_eq!(device.json(&["visit", "show", &id]), after);

    let unknown = device.run(&["visit", "show", "not-an-id"]).fails();
    assert!(unknown.contains("not-an-id"), "{unknown}");
}

#[test]
fn bundles_carry_visits_between_devices_and_concurrent_edits_become_conflicts() {
    let a = device("zh-CN");
    let b = TestDevice::init("en", "二号机", TEAM);
    let first = a.add_visit(&json!({"school": URBAN, "date": "2025-05-20",
        "activities": ["lecture"], "topic": "电路", "audience": {"students": 40}}));
    a.add_visit(&json!({"school": RURAL, "date": "2025-05-21",
        "activities": ["exhibition"], "audience": {"students": 25}}));

    let exchange = tempfile::tempdir().expect("a temp dir");
    let a_to_b = exchange.path().join("a-to-b.bundle");
    let a_to_b = a_to_b.to_str().expect("a UTF-8 path");
    let exported = a.json(&["bundle", "export", a_to_b]);
    assert!(
        exported["changes"].as_u64().is_some_and(|n| n > 0),
        "{exported}"
    );

    let imported = b.json(&["bundle", "import", a_to_b]);
    assert_eq!(imported["from_name"], "一号机");
    assert_eq!(imported["applied"], exported["changes"]);
    assert_eq!(b.json(&["visit", "list"]), a.json(&["visit", "list"]));
    assert_eq!(b.json(&["school", "list"]), a.json(&["school", "list"]));
    assert_eq!(b.json(&["report"]), a.json(&["report"]));

    let again = b.json(&["bundle", "import", a_to_b]);
    assert_eq!(again["applied"], 0);
    assert_eq!(again["already_present"], exported["changes"]);

    // A damaged or foreign file is refused whole, and B stays as it was.
    let before = b.json(&["visit", "list"]);
    let bytes = std::fs::read(a_to_b).expect("the bundle was written");
    let truncated = exchange.path().join("truncated.bundle");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let foreign = exchange.path().join("photo.jpg");
    std::fs::write(&foreign, b"\xff\xd8\xff\xe0 not a bundle at all").expect("write");
    for bad in [&truncated, &foreign] {
        let bad = bad.to_str().expect("a UTF-8 path");
        let line = b.run(&["--json", "bundle", "import", bad]).fails();
        let error: Value = serde_json::from_str(&line).expect("the error line is JSON");
        assert_eq!(error["error"]["kind"], "invalid_bundle", "{line}");
        let text = b.run(&["bundle", "import", bad]).fails();
        assert!(text.starts_with("error: "), "{text}");
    }
    assert_eq!(b.json(&["visit", "list"]), before);

    // Both devices change the same field while apart, then swap bundles both ways.
    a.run(&["visit", "edit", &first, "--set", "topic=磁铁"])
        .ok();
    b.run(&["visit", "edit", &first, "--set", "topic=光的折射"])
        .ok();
    let a_to_b_2 = exchange.path().join("a-to-b-2.bundle");
    let b_to_a = exchange.path().join("b-to-a.bundle");
    let (a_to_b_2, b_to_a) = (
        a_to_b_2.to_str().expect("a UTF-8 path"),
        b_to_a.to_str().expect("a UTF-8 path"),
    );
    a.run(&["bundle", "export", a_to_b_2]).ok();
    b.run(&["bundle", "export", b_to_a]).ok();
    b.run(&["bundle", "import", a_to_b_2]).ok();
    a.run(&["bundle", "import", b_to_a]).ok();

    let conflicts = a.json(&["conflicts"]);
    assert_eq!(
        conflicts,
        b.json(&["conflicts"]),
        "both devices see the same conflict"
    );
    let list = conflicts.as_array().expect("a list");
    assert_eq!(list.len(), 1, "{conflicts}");
    assert_eq!(list[0]["record_id"], first.as_str());
    assert_eq!(list[0]["field"], "topic");
    let values: BTreeSet<(&str, &str)> = list[0]["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| {
            (
                v["value"].as_str().unwrap_or(""),
                v["author"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        values,
        BTreeSet::from([("磁铁", "一号机"), ("光的折射", "二号机")])
    );

    let text = a.run(&["conflicts"]).ok();
    for part in ["主题", "磁铁", "光的折射", "一号机", "二号机", URBAN] {
        assert!(text.contains(part), "{part} missing in:\n{text}");
    }
    assert_eq!(
        a.run(&["--lang", "en", "conflicts"]).ok().lines().count(),
        text.lines().count()
    );
    let shown = b.run(&["visit", "show", &first]).ok();
    assert!(shown.contains("in conflict: topic"), "{shown}");
}

#[test]
fn conflicts_say_so_plainly_when_there_are_none() {
    let device = TestDevice::init("en", "laptop", TEAM);
    assert_eq!(device.run(&["conflicts"]).ok(), "No conflicts.\n");
    assert_eq!(device.json(&["conflicts"]), json!([]));
}

#[test]
fn report_and_search_read_well_in_both_languages() {
    let device = device("zh-CN");
    add_report_visits(&device);
    let report = |lang| device.run(&["--lang", lang, "report"]).ok();
    let search = |lang| {
        device
            .run(&[
                "--lang", lang, "school", "search", "nanshan", "--limit", "4",
            ])
            .ok()
    };
    let transcript = format!(
        "$ fieldlog --lang zh-CN report\n{}\n$ fieldlog --lang en report\n{}\n\
         $ fieldlog --lang zh-CN school search nanshan --limit 4\n{}\n\
         $ fieldlog --lang en school search nanshan --limit 4\n{}",
        report("zh-CN"),
        report("en"),
        search("zh-CN"),
        search("en"),
    );
    insta::with_settings!({filters => vec![(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[id]",
    )]}, {
        insta::assert_snapshot!(transcript);
    });
}

#[test]
fn photos_attach_list_and_detach_without_their_metadata() {
    let device = device("zh-CN");
    let visit = device.add_visit(&json!({"school": URBAN, "date": "2025-05-20",
        "activities": ["lecture"], "audience": {"students": 40}}));
    let photo_file = device.data_dir().join("课堂.png");
    image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([x as u8, y as u8, 200]))
        .save(&photo_file)
        .unwrap();

    let id = device
        .run(&[
            "photo",
            "add",
            &visit,
            photo_file.to_str().unwrap(),
            "--caption",
            "实验秀",
        ])
        .ok();
    let listed = device.json(&["photo", "list", &visit]);
    assert_eq!(listed[0]["display_sha256"], id.trim(), "{listed}");
    assert_eq!(listed[0]["caption"], "实验秀");
    assert_eq!(listed[0]["consent"], false);
    assert_eq!(
        (listed[0]["width"].as_u64(), listed[0]["height"].as_u64()),
        (Some(640), Some(480))
    );
    let status = device.json(&["status"]);
    assert!(status["photo_bytes"].as_u64().unwrap() > 0, "{status}");

    let not_a_photo = device.data_dir().join("notes.txt");
    std::fs::write(&not_a_photo, "x").unwrap();
    let error = device
        .run(&["photo", "add", &visit, not_a_photo.to_str().unwrap()])
        .fails();
    assert!(error.starts_with("错误："), "{error}");
    assert_eq!(
        device.json(&["photo", "list", &visit]),
        listed,
        "a refused file changed the visit"
    );

    device.run(&["photo", "remove", &visit, id.trim()]).ok();
    assert_eq!(device.json(&["photo", "list", &visit]), json!([]));
}
