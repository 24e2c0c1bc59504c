//! One table per rule: each row is an input and the field and reason it must be refused with.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

use fieldlog_domain::visit::Context;
use fieldlog_domain::{
    ActivityKind, Area, Field, Lang, Reason, SchoolId, SchoolInput, SchoolLevel, ValidationErrors,
    VisitInput,
};
use serde_json::json;

const SCHOOL: SchoolId = SchoolId(uuid::Uuid::from_u128(7));

fn today() -> chrono::NaiveDate {
    "2026-05-20".parse().unwrap()
}

fn validate(input: serde_json::Value) -> Result<fieldlog_domain::VisitFields, ValidationErrors> {
    let find = |r: &str| (r == "南山小学" || r == SCHOOL.to_string()).then_some(SCHOOL);
    let ctx = Context {
        today: today(),
        find_school: &find,
        find_course: &|_| None,
    };
    let mut base = json!({"school": "南山小学", "date": "2026-05-20", "activities": ["lecture"]});
    for (k, v) in input.as_object().unwrap() {
        base[k] = v.clone();
    }
    serde_json::from_value::<VisitInput>(base)
        .unwrap()
        .validate(&ctx)
}

fn refused(input: serde_json::Value) -> Vec<(Field, &'static str)> {
    validate(input)
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| (e.field, e.reason.key()))
        .collect()
}

#[test]
fn a_complete_visit_is_accepted_and_trimmed() {
    let fields = validate(json!({
        "activities": ["lecture", "实验秀", " hands_on "],
        "topic": "  水的三态 ",
        "audience": {"students": 86, "teachers": 4, "others": 2,
                     "breakdown": {"grades_4_6.female": 40, "grades_4_6.male": 46}},
        "donations": {"books": 120, "kits": 2},
    }))
    .unwrap();
    assert_eq!(fields.school, SCHOOL);
    assert_eq!(fields.topic, "水的三态");
    assert_eq!(fields.audience.total(), 92);
    assert_eq!(
        fields.activities.into_iter().collect::<Vec<_>>(),
        [
            ActivityKind::Lecture,
            ActivityKind::ExperimentShow,
            ActivityKind::HandsOn
        ]
    );
}

#[test]
fn school_is_required_and_must_be_known() {
    let cases = [
        (json!({"school": ""}), "validation.required"),
        (json!({"school": "   "}), "validation.required"),
        (json!({"school": "北山小学"}), "validation.unknown_school"),
    ];
    for (input, reason) in cases {
        assert_eq!(refused(input.clone()), [(Field::School, reason)], "{input}");
    }
    assert!(validate(json!({"school": SCHOOL.to_string()})).is_ok());
}

#[test]
fn dates_from_2000_to_tomorrow() {
    let cases = [
        ("2026-05-22", Some("validation.too_far_in_future")),
        ("2027-01-01", Some("validation.too_far_in_future")),
        ("1999-12-31", Some("validation.too_early")),
        ("2026-02-30", Some("validation.invalid_date")),
        ("20/05/2026", Some("validation.invalid_date")),
        ("", Some("validation.required")),
        ("2026-05-21", None),
        ("2000-01-01", None),
        ("2026-05-20", None),
    ];
    for (date, reason) in cases {
        let result = refused_or_ok(json!({"date": date}));
        assert_eq!(result, reason.map(|r| vec![(Field::Date, r)]), "{date}");
    }
    let missing = validate(json!({"date": null})).unwrap();
    assert_eq!(missing.date, today(), "no date means today");
}

fn refused_or_ok(input: serde_json::Value) -> Option<Vec<(Field, &'static str)>> {
    validate(input.clone()).err().map(|_| refused(input))
}

#[test]
fn counts_are_between_0_and_100000() {
    let fields = [
        ("students", Field::Students),
        ("teachers", Field::Teachers),
        ("others", Field::Others),
    ];
    for (key, field) in fields {
        for (n, ok) in [(-1, false), (0, true), (100_000, true), (100_001, false)] {
            let result = refused_or_ok(json!({"audience": {key: n}}));
            let expected = (!ok).then(|| vec![(field, "validation.out_of_range")]);
            assert_eq!(result, expected, "{key}={n}");
        }
    }
    for (key, field) in [("books", Field::Books), ("kits", Field::Kits)] {
        assert_eq!(
            refused(json!({"donations": {key: -3}})),
            [(field, "validation.out_of_range")]
        );
        assert!(validate(json!({"donations": {key: 100_000}})).is_ok());
    }
}

#[test]
fn breakdown_cells_are_known_and_within_students() {
    let cases = [
        (
            json!({"students": 10, "breakdown": {"grades_1_3.female": 11}}),
            "validation.breakdown_exceeds_students",
        ),
        (
            json!({"students": 10, "breakdown": {"grade_9.female": 1}}),
            "validation.unknown_value",
        ),
        (
            json!({"students": 10, "breakdown": {"grades_1_3": 1}}),
            "validation.unknown_value",
        ),
        (
            json!({"students": 10, "breakdown": {"grades_1_3.male": -1}}),
            "validation.out_of_range",
        ),
    ];
    for (audience, reason) in cases {
        assert_eq!(
            refused(json!({"audience": audience.clone()})),
            [(Field::Breakdown, reason)],
            "{audience}"
        );
    }
}

#[test]
fn text_fields_are_trimmed_and_bounded() {
    let cases = [
        ("topic", Field::Topic, 200),
        ("presenters", Field::Presenters, 200),
        ("notes", Field::Notes, 4000),
    ];
    for (key, field, max) in cases {
        let at_limit = "科".repeat(max);
        assert!(validate(json!({key: format!("  {at_limit}  ")})).is_ok());
        assert_eq!(
            refused(json!({key: "科".repeat(max + 1)})),
            [(field, "validation.too_long")],
            "{key}"
        );
    }
}

#[test]
fn activities_are_required_and_known() {
    assert_eq!(
        refused(json!({"activities": []})),
        [(Field::Activities, "validation.required")]
    );
    assert_eq!(
        refused(json!({"activities": ["lecture", "dance"]})),
        [(Field::Activities, "validation.unknown_value")]
    );
    for kind in ActivityKind::ALL {
        for spelling in [kind.key(), kind.label(Lang::ZhCn), kind.label(Lang::En)] {
            assert!(
                validate(json!({"activities": [spelling]})).is_ok(),
                "{spelling}"
            );
        }
    }
}

#[test]
fn every_failing_field_is_reported_at_once() {
    let errors = validate(json!({
        "school": "", "date": "1999-01-01", "activities": ["dance"],
        "audience": {"students": -5}, "donations": {"kits": 200000},
    }))
    .unwrap_err();
    assert_eq!(
        errors.fields().collect::<Vec<_>>(),
        [
            Field::School,
            Field::Date,
            Field::Activities,
            Field::Students,
            Field::Kits
        ]
    );
    let zh = errors.message(Lang::ZhCn);
    assert!(
        zh.starts_with("学校：必填；日期：不能早于 2000-01-01；"),
        "{zh}"
    );
    let en = errors.message(Lang::En);
    assert!(
        en.contains("students: must be between 0 and 100000"),
        "{en}"
    );
}

#[test]
fn set_parses_text_per_field() {
    let mut input: VisitInput =
        serde_json::from_value(json!({"school": "南山小学", "activities": ["lecture"]})).unwrap();
    input.set("audience.students", " 40 ").unwrap();
    input.set("activities", "lecture，实验秀").unwrap();
    input
        .set("audience.breakdown.grades_1_3.female", "12")
        .unwrap();
    input.set("donations.books", "30").unwrap();
    let fields = validate(serde_json::to_value(&input).unwrap()).unwrap();
    assert_eq!(fields.audience.students, 40);
    assert_eq!(fields.activities.len(), 2);
    assert_eq!(fields.donations.books, 30);

    let not_a_number = input.set("audience.teachers", "many").unwrap_err();
    assert_eq!(not_a_number.field, Field::Teachers);
    assert_eq!(not_a_number.reason.key(), "validation.not_a_number");
    let unknown = input.set("colour", "red").unwrap_err();
    assert_eq!(
        unknown.reason,
        Reason::UnknownField {
            given: "colour".into()
        }
    );
    assert_eq!(
        unknown.message(Lang::ZhCn),
        "字段名：没有名为“colour”的字段"
    );
}

#[test]
fn schools_need_name_district_and_area() {
    let ok = SchoolInput {
        name: " 南山小学 ".into(),
        district: "南山区".into(),
        area: "城区".into(),
        level: "小学".into(),
        enrollment: Some(1280),
    }
    .validate()
    .unwrap();
    assert_eq!(ok.name, "南山小学");
    assert_eq!(ok.area, Area::Urban);
    assert_eq!(ok.level, Some(SchoolLevel::Primary));

    let errors = SchoolInput {
        name: "".into(),
        district: "南山/区".into(),
        area: "suburban".into(),
        level: "college".into(),
        enrollment: Some(-1),
    }
    .validate()
    .unwrap_err();
    let got: Vec<_> = errors.0.iter().map(|e| (e.field, e.reason.key())).collect();
    assert_eq!(
        got,
        [
            (Field::SchoolName, "validation.required"),
            (Field::District, "validation.forbidden_character"),
            (Field::Area, "validation.unknown_value"),
            (Field::Level, "validation.unknown_value"),
            (Field::Enrollment, "validation.out_of_range"),
        ]
    );
    for area in ["rural", "乡村", "RURAL"] {
        let input = SchoolInput {
            name: "x".into(),
            district: "y".into(),
            area: area.into(),
            ..Default::default()
        };
        assert_eq!(input.validate().unwrap().area, Area::Rural, "{area}");
    }
}

#[test]
fn every_reason_has_a_message_in_both_languages() {
    let reasons = [
        Reason::Required,
        Reason::UnknownSchool { given: "x".into() },
        Reason::InvalidDate { given: "x".into() },
        Reason::TooFarInFuture { latest: "x".into() },
        Reason::TooEarly {
            earliest: "x".into(),
        },
        Reason::OutOfRange { min: 0, max: 1 },
        Reason::NotANumber { given: "x".into() },
        Reason::TooLong { max: 1 },
        Reason::UnknownValue {
            given: "x".into(),
            expected: vec!["a".into()],
        },
        Reason::BreakdownExceedsStudents {
            breakdown: 2,
            students: 1,
        },
        Reason::UnknownField { given: "x".into() },
        Reason::ForbiddenCharacter {
            character: "/".into(),
        },
    ];
    for reason in reasons {
        let zh = reason.message(Lang::ZhCn);
        let en = reason.message(Lang::En);
        assert!(
            zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{zh}"
        );
        assert!(en.is_ascii() || en.contains('"'), "{en}");
        assert_ne!(zh, en);
        assert!(reason.key().starts_with("validation."));
    }
    for field in Field::ALL {
        assert_ne!(field.label(Lang::ZhCn), field.label(Lang::En));
        assert_eq!(Field::try_from(field.key().to_string()), Ok(field));
    }
}

#[test]
fn locales_pick_a_language() {
    for (tag, lang) in [
        ("zh_CN.UTF-8", Lang::ZhCn),
        ("zh-Hans", Lang::ZhCn),
        ("en_US.UTF-8", Lang::En),
        ("fr_FR", Lang::En),
    ] {
        assert_eq!(Lang::from_locale(tag), lang, "{tag}");
    }
}
