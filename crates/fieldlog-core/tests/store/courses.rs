//! Courses on one store: validation, derived session numbers, completed courses and the
//! courses target, merged and deleted sessions, rosters kept out of bundles.

use crate::support::{Device, team, today};
use fieldlog_core::decide::MergeRequest;
use fieldlog_core::{ExportScope, ReportFilter};
use fieldlog_domain::{
    AudienceRule, CourseInput, Field, Reason, StudentInput, TargetKey, VisitId, VisitInput,
};

fn course(device: &mut Device, school: &str, sessions: i64) -> String {
    device
        .store
        .add_course(
            &CourseInput {
                school: school.into(),
                title: "磁铁的秘密".into(),
                sessions,
                ..CourseInput::default()
            },
            today(),
        )
        .unwrap()
        .id
        .to_string()
}

fn session(device: &mut Device, course: &str, date: &str, students: i64) -> VisitId {
    let input: VisitInput = serde_json::from_value(serde_json::json!({
        "course": course, "date": date, "activities": ["lecture"],
        "audience": {"students": students},
    }))
    .unwrap();
    device.store.add_visit(&input, today()).unwrap().id
}

fn refused_fields(result: fieldlog_core::Result<fieldlog_domain::Visit>) -> Vec<(Field, Reason)> {
    match result {
        Err(fieldlog_core::Error::Invalid(errors)) => {
            errors.0.into_iter().map(|e| (e.field, e.reason)).collect()
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_session_takes_its_course_school_and_title_and_bad_references_are_named() {
    let mut a = team(1).pop().unwrap();
    let id = course(&mut a, "青溪县龙潭镇中心小学", 16);
    let visit = session(&mut a, &id, "2026-05-04", 30);
    let visit = a.store.visit(visit).unwrap();
    assert_eq!(visit.fields.topic, "磁铁的秘密");
    assert_eq!(
        a.store.school(visit.fields.school).unwrap().fields.name,
        "青溪县龙潭镇中心小学"
    );
    let (session, planned) = a.store.session_of(&visit).unwrap().unwrap();
    assert_eq!((session.number, planned), (1, 16));

    // An edit changes what it names; a bad value changes nothing.
    let edited = a
        .store
        .edit_course(&id, |c| c.sessions = 12, today())
        .unwrap();
    assert_eq!(
        (edited.fields.sessions, &edited.fields.title[..]),
        (12, "磁铁的秘密")
    );
    let refused = a.store.edit_course(&id, |c| c.sessions = 0, today());
    assert!(matches!(refused, Err(fieldlog_core::Error::Invalid(_))));
    assert_eq!(a.store.course(&id).unwrap().planned, 12);

    let input = |json: serde_json::Value| serde_json::from_value::<VisitInput>(json).unwrap();
    let refused = refused_fields(a.store.add_visit(
        &input(serde_json::json!({
            "course": id, "school": "南山小学", "activities": ["lecture"],
        })),
        today(),
    ));
    assert_eq!(refused, [(Field::School, Reason::CourseAtOtherSchool)]);
    let refused = refused_fields(a.store.add_visit(
        &input(serde_json::json!({
            "school": "南山小学", "activities": ["lecture"], "attendance": ["小明"],
        })),
        today(),
    ));
    assert_eq!(refused, [(Field::Course, Reason::Required)]);
    let refused = refused_fields(a.store.add_visit(
        &input(serde_json::json!({"course": "没有这门课", "activities": ["lecture"]})),
        today(),
    ));
    assert_eq!(
        refused,
        [
            (
                Field::Course,
                Reason::UnknownCourse {
                    given: "没有这门课".into()
                }
            ),
            (Field::School, Reason::Required),
        ]
    );
}

#[test]
fn twelve_counted_sessions_in_the_year_complete_a_course() {
    let mut a = team(1).pop().unwrap();
    a.act_as_coordinator("王协调", &["青溪县", "南山区"]);
    let long = course(&mut a, "青溪县龙潭镇中心小学", 16);
    let short = course(&mut a, "南山小学", 12);
    let mut sessions = Vec::new();
    for week in 0..12 {
        let date =
            chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap() + chrono::Days::new(7 * week);
        sessions.push(session(&mut a, &long, &date.to_string(), 20));
        if week < 11 {
            session(&mut a, &short, &date.to_string(), 20);
        }
    }
    let year = ReportFilter {
        from: "2026-01-01".parse().ok(),
        to: "2026-12-31".parse().ok(),
        district: None,
    };
    let report = a.store.report(&year).unwrap();
    assert_eq!((report.courses_completed, report.course_sessions), (1, 23));
    let qingxi = ReportFilter {
        district: Some(fieldlog_domain::District::parse("南山区").unwrap()),
        ..year.clone()
    };
    assert_eq!(a.store.report(&qingxi).unwrap().courses_completed, 0);

    a.store
        .set_targets(2026, None, &[("courses".into(), "1".into())])
        .unwrap();
    let progress = a.store.targets(Some(2026), None).unwrap();
    let courses = progress
        .iter()
        .find(|t| t.key == TargetKey::Courses)
        .unwrap();
    assert!(courses.met && courses.current == 1.0, "{courses:?}");

    // A session logged twice is merged by a coordinator: it stops counting and numbering
    // closes up. A deleted session never counts.
    let twice = session(&mut a, &long, "2026-01-05", 20);
    let numbers = |a: &Device| {
        a.store
            .course(&long)
            .unwrap()
            .sessions
            .iter()
            .map(|s| (s.number, s.clash))
            .collect::<Vec<_>>()
    };
    assert_eq!(numbers(&a)[..3], [(1, true), (2, true), (3, false)]);
    let pairs = a.store.duplicates(&year).unwrap();
    assert!(
        pairs.iter().any(|p| [p.a, p.b].contains(&twice)),
        "the clash is suggested"
    );
    a.store
        .merge_visits(&MergeRequest {
            keep: sessions[0],
            other: twice,
            audience: AudienceRule::Keep,
            take: Vec::new(),
            note: String::new(),
        })
        .unwrap();
    assert_eq!(numbers(&a).len(), 12);
    assert!(numbers(&a).iter().all(|(_, clash)| !clash));
    a.store.delete_visit(sessions[11]).unwrap();
    assert_eq!(a.store.report(&year).unwrap().courses_completed, 0);
    let summary = a.store.course(&long).unwrap();
    assert_eq!((summary.held, summary.missing), (11, 5));

    // The projection is derived: rebuilt from the documents, it is the same.
    let before = a.store.courses().unwrap();
    a.store.rebuild_projection().unwrap();
    assert_eq!(a.store.courses().unwrap(), before);
}

#[test]
fn sessions_of_one_course_on_consecutive_days_are_not_suggested_as_duplicates() {
    let mut devices = team(2);
    devices[0].act_as_coordinator("王协调", &["南山区"]);
    let id = course(&mut devices[0], "南山小学", 5);
    let monday = session(&mut devices[0], &id, "2026-05-18", 20);
    let (a, b) = crate::support::pair(&mut devices, 0, 1);
    crate::support::send(a, b);
    let tuesday = session(b, &id, "2026-05-19", 20);
    let lone = b
        .store
        .add_visit(&crate::support::visit("南山小学", 20), today())
        .unwrap();
    crate::support::send(b, a);
    let pairs = a.store.duplicates(&ReportFilter::default()).unwrap();
    let listed = |x: VisitId, y: VisitId| {
        pairs
            .iter()
            .any(|p| (p.a, p.b) == (x, y) || (p.a, p.b) == (y, x))
    };
    assert!(
        !listed(monday, tuesday),
        "two sessions of a holiday camp: {pairs:?}"
    );
    // The same two days, one visit outside the course: still a candidate pair.
    assert!(listed(monday, lone.id), "{pairs:?}");
}

#[test]
fn attendance_sets_the_headcount_and_a_roster_never_goes_into_a_bundle() {
    let mut devices = team(2);
    let id = course(&mut devices[0], "南山小学", 16);
    for name in ["周一", "周二", "周三"] {
        devices[0]
            .store
            .add_student(
                &id,
                &StudentInput {
                    name: name.into(),
                    ..StudentInput::default()
                },
            )
            .unwrap();
    }
    let again = devices[0].store.add_student(
        &id,
        &StudentInput {
            name: "周一".into(),
            ..StudentInput::default()
        },
    );
    assert!(matches!(again, Err(fieldlog_core::Error::Invalid(_))));
    let visit = session(&mut devices[0], &id, "2026-05-11", 0);
    let visit = devices[0]
        .store
        .attend(visit, &["周一".into(), "周三".into()], today())
        .unwrap();
    assert_eq!(visit.fields.audience.students, 2);
    devices[0].store.remove_student(&id, "周三").unwrap();
    // Taken off the roster, 周三 still counts where they were present, and the session
    // can still be edited; a name off the roster marks no one new.
    let edited = devices[0]
        .store
        .edit_visit(visit.id, &[("topic".into(), "磁悬浮".into())], today())
        .unwrap();
    assert_eq!(
        (edited.fields.audience.students, &edited.fields.topic[..]),
        (2, "磁悬浮")
    );
    let refused = devices[0]
        .store
        .attend(visit.id, &["周一".into(), "周三".into()], today());
    assert!(
        matches!(refused, Err(fieldlog_core::Error::Invalid(_))),
        "{refused:?}"
    );

    let (bundle, _) = devices[0].store.export_bundle(&ExportScope::All).unwrap();
    devices[1].store.import_bundle(&bundle).unwrap();
    let b = &devices[1].store;
    assert_eq!(b.course(&id).unwrap().held, 1);
    assert!(
        b.roster(&id).unwrap().is_empty(),
        "no roster travels in a bundle"
    );
    assert_eq!(b.visit(visit.id).unwrap().fields.audience.students, 2);
}
