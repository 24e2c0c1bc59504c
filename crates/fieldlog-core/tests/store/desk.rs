//! The coordinator's desk reads: every figure's visits add up to the report's figure, the
//! dashboard's series cover the region, the registry filters, and a pending school finds the
//! registered schools whose names are close.

use crate::support::{Device, team, today, visit};
use fieldlog_core::ReportFilter;
use fieldlog_core::decide::MergeRequest;
use fieldlog_core::desk::RegistryFilter;
use fieldlog_domain::{
    Area, AudienceRule, District, Figure, SchoolInput, SchoolStatus, VisitInput,
};
use std::collections::BTreeSet;

fn coordinator() -> Device {
    let mut d = team(1).remove(0);
    d.act_as_coordinator("王协调", &["南山区", "青溪县", "石门县"]);
    d
}

fn dated(school: &str, date: &str, students: i64, activities: &[&str]) -> VisitInput {
    let mut input = visit(school, students);
    input.date = Some(date.to_string());
    input.activities = activities.iter().map(|a| a.to_string()).collect();
    input
}

#[test]
fn each_figure_opens_exactly_the_visits_it_counts() {
    let mut c = coordinator();
    let s = &mut c.store;
    let on =
        |school, date, students, activities: &[&str]| dated(school, date, students, activities);
    let kept = s
        .add_visit(&on("南山小学", "2026-05-19", 100, &["lecture"]), today())
        .unwrap();
    let twin = s
        .add_visit(&on("南山小学", "2026-05-19", 90, &["lecture"]), today())
        .unwrap();
    s.add_visit(
        &on("青溪县马场乡教学点", "2026-04-02", 30, &["lecture"]),
        today(),
    )
    .unwrap();
    s.add_visit(
        &on(
            "青溪县龙潭镇中心小学",
            "2025-11-02",
            40,
            &["experiment_show"],
        ),
        today(),
    )
    .unwrap();
    s.add_visit(
        &on("石门县第二中学", "2026-03-08", 0, &["teacher_training"]),
        today(),
    )
    .unwrap();
    s.merge_visits(&MergeRequest {
        keep: kept.id,
        other: twin.id,
        audience: AudienceRule::Keep,
        take: Vec::new(),
        note: String::new(),
    })
    .unwrap();

    for filter in [
        ReportFilter::default(),
        ReportFilter {
            from: "2026-01-01".parse().ok(),
            to: "2026-12-31".parse().ok(),
            district: None,
        },
        ReportFilter {
            district: District::parse("青溪县").ok(),
            ..ReportFilter::default()
        },
    ] {
        let report = s.report(&filter).unwrap();
        for figure in Figure::ALL {
            let behind = s.figure_visits(&filter, figure, 1000).unwrap();
            assert_eq!(behind.total as usize, behind.visits.len());
            let rows = &behind.visits;
            let schools = rows.iter().map(|v| v.school).collect::<BTreeSet<_>>().len() as u64;
            let value = match figure {
                Figure::Visits
                | Figure::Lectures
                | Figure::RuralLectures
                | Figure::CourseSessions => rows.len() as u64,
                Figure::Schools | Figure::RuralSchools | Figure::UrbanSchools => schools,
                Figure::Audience => rows.iter().map(|v| v.audience).sum(),
                Figure::Books => rows.iter().map(|v| v.books).sum(),
                Figure::Kits => rows.iter().map(|v| v.kits).sum(),
                Figure::TeachersTrained => rows.iter().map(|v| v.teachers_trained).sum(),
            };
            assert_eq!(value, figure.of(&report), "{figure:?} under {filter:?}");
            assert!(
                rows.iter().all(|v| v.id != twin.id),
                "a merged duplicate never counts"
            );
        }
    }
    let rural = s
        .figure_visits(&ReportFilter::default(), Figure::RuralLectures, 10)
        .unwrap();
    assert_eq!(rural.total, 1);
    assert_eq!(rural.visits[0].area, Some(Area::Rural));
}

#[test]
fn the_dashboard_lists_every_district_and_this_year_against_last() {
    let mut c = coordinator();
    let s = &mut c.store;
    for (school, date) in [
        ("南山小学", "2026-05-19"),
        ("南山区第一中学", "2026-05-03"),
        ("青溪县马场乡教学点", "2025-05-10"),
    ] {
        s.add_visit(&dated(school, date, 20, &["lecture"]), today())
            .unwrap();
    }
    let board = s.dashboard(&ReportFilter::default(), 2026).unwrap();
    assert_eq!(board.months.len(), 12);
    assert_eq!(
        (board.months[4].visits, board.months[4].previous_year),
        (2, 1)
    );
    assert_eq!(board.months.iter().map(|m| m.visits).sum::<u64>(), 2);
    let districts: Vec<(String, u64)> = board
        .districts
        .iter()
        .map(|d| (d.district.to_string(), d.visits))
        .collect();
    assert_eq!(
        districts,
        [
            ("南山区".into(), 2),
            ("青溪县".into(), 1),
            ("石门县".into(), 0)
        ]
    );
    assert_eq!(board.districts[1].rural_visits, 1);
    assert_eq!(board.report.visits, 3);
}

#[test]
fn the_registry_filters_and_a_pending_school_finds_its_registered_twin() {
    let mut c = coordinator();
    let s = &mut c.store;
    let pending = s
        .add_school(
            &SchoolInput {
                name: "南山镇小学".into(),
                district: "南山区".into(),
                area: "城区".into(),
                ..SchoolInput::default()
            },
            SchoolStatus::Pending,
        )
        .unwrap();
    let similar = s.similar_schools(pending.id, 5).unwrap();
    assert_eq!(similar[0].school.fields.name, "南山小学");
    assert!(
        similar
            .iter()
            .all(|x| x.school.fields.district.as_str() == "南山区")
    );
    let registered = s.find_school("南山小学").unwrap().unwrap();
    assert_eq!(
        s.similar_schools(registered, 5).unwrap_err().kind(),
        "school_not_pending"
    );

    let rows = s
        .registry(&RegistryFilter {
            status: Some(SchoolStatus::Pending),
            ..RegistryFilter::default()
        })
        .unwrap();
    assert_eq!(rows.len(), 1);
    let by_pinyin = s
        .registry(&RegistryFilter {
            query: "qxx".into(),
            area: Some(Area::Rural),
            ..RegistryFilter::default()
        })
        .unwrap();
    let names: Vec<_> = by_pinyin
        .iter()
        .map(|r| r.school.fields.name.as_str())
        .collect();
    assert_eq!(names, ["青溪县马场乡教学点", "青溪县龙潭镇中心小学"]);
}
