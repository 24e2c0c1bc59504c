//! Coordinators' decisions: what each does to the figures, what is refused, and that two
//! coordinators and three volunteers deciding and editing concurrently, with bundles lost,
//! repeated and reordered, end with the same reports, queues and histories everywhere.

use crate::support::{Device, pair, pick, talk_until_quiet, team, today, visit};
use fieldlog_core::Error;
use fieldlog_core::decide::MergeRequest;
use fieldlog_domain::{AudienceRule, Field, ReviewState, VisitId};
use proptest::prelude::*;

const REGION: [&str; 3] = ["南山区", "青溪县", "石门县"];

/// Five devices of one team sharing a registry; the first two are coordinators.
fn region() -> Vec<Device> {
    let mut devices = team(5);
    devices[0].act_as_coordinator("王协调", &REGION);
    devices[1].act_as_coordinator("李协调", &REGION);
    devices
}

fn merge(keep: VisitId, other: VisitId, audience: AudienceRule) -> MergeRequest {
    MergeRequest {
        keep,
        other,
        audience,
        take: Vec::new(),
        note: String::new(),
    }
}

#[test]
fn a_merge_counts_once_with_the_audience_it_chose_and_unmerge_restores_both() {
    let mut d = region();
    let c = &mut d[0];
    let keep = c.store.add_visit(&visit("南山小学", 200), today()).unwrap();
    let other = c.store.add_visit(&visit("南山小学", 150), today()).unwrap();
    let before = c.store.report(&Default::default()).unwrap();
    assert_eq!((before.visits, before.audience), (2, 354));

    let mut request = merge(keep.id, other.id, AudienceRule::Sum);
    request.take = vec![Field::Notes];
    c.store.merge_visits(&request).unwrap();
    let after = c.store.report(&Default::default()).unwrap();
    assert_eq!(
        (
            after.visits,
            after.audience,
            after.duplicates_merged,
            after.books
        ),
        (1, 354, 1, 10)
    );
    // Both originals stay readable as entered.
    assert_eq!(
        c.store.visit(other.id).unwrap().fields.audience.students,
        150
    );
    assert_eq!(
        c.store.visit(keep.id).unwrap().fields.audience.students,
        200
    );
    assert_eq!(
        c.store
            .effective_visit(keep.id)
            .unwrap()
            .fields
            .audience
            .students,
        350
    );
    assert_eq!(
        c.store.visit_review(other.id).unwrap().duplicate_of,
        Some(keep.id)
    );

    // Merging into a duplicate follows it to the kept visit.
    let third = c.store.add_visit(&visit("南山小学", 10), today()).unwrap();
    let decided = c
        .store
        .merge_visits(&merge(other.id, third.id, AudienceRule::Keep))
        .unwrap();
    assert_eq!(decided.other, Some(keep.id));

    c.store.unmerge_visit(other.id, "两场活动").unwrap();
    let restored = c.store.report(&Default::default()).unwrap();
    assert_eq!((restored.visits, restored.audience), (2, 354));
    let kinds: Vec<_> = c
        .store
        .history(other.id)
        .unwrap()
        .iter()
        .map(|d| d.kind.key())
        .collect();
    assert_eq!(kinds, ["merge", "unmerge"]);
}

#[test]
fn refusals_change_nothing() {
    let mut d = region();
    let a = d[0]
        .store
        .add_visit(&visit("南山小学", 20), today())
        .unwrap();
    let b = d[0]
        .store
        .add_visit(&visit("南山小学", 20), today())
        .unwrap();
    talk_until_quiet(&mut d);

    let volunteer = &mut d[2];
    let volunteer_rows = volunteer.all_rows();
    let refused = volunteer.store.verify_visits(&[a.id], "").unwrap_err();
    assert_eq!(refused.kind(), "not_coordinator");
    assert!(
        refused
            .message(fieldlog_domain::Lang::ZhCn)
            .contains("协调员")
    );
    let refused = volunteer
        .store
        .set_targets(2026, None, &[("lectures".into(), "5".into())]);
    assert_eq!(refused.unwrap_err().kind(), "not_coordinator");
    assert_eq!(volunteer.all_rows(), volunteer_rows);

    let c = &mut d[0];
    let self_merge = c.store.merge_visits(&merge(a.id, a.id, AudienceRule::Keep));
    assert!(matches!(self_merge, Err(Error::MergeIntoItself(_))));
    c.store
        .merge_visits(&merge(a.id, b.id, AudienceRule::Keep))
        .unwrap();
    let rows = c.all_rows();
    let cycle = c.store.merge_visits(&merge(b.id, a.id, AudienceRule::Keep));
    assert!(matches!(cycle, Err(Error::MergeCycle { .. })), "{cycle:?}");
    let unknown = c.store.resolve_field(a.id, "weather", "晴", "", today());
    assert_eq!(unknown.unwrap_err().kind(), "invalid");
    let bad_value = c
        .store
        .resolve_field(a.id, "audience.students", "-3", "", today());
    assert_eq!(bad_value.unwrap_err().kind(), "invalid");
    let bad_target = c
        .store
        .set_targets(2026, None, &[("pupils".into(), "5".into())]);
    let message = bad_target.unwrap_err().message(fieldlog_domain::Lang::En);
    assert!(message.contains("pupils"), "{message}");
    let bad_share =
        c.store
            .set_targets(2026, None, &[("rural_lecture_share".into(), "120%".into())]);
    assert_eq!(bad_share.unwrap_err().kind(), "invalid");
    let flag_without_note = c.store.flag_visit(a.id, " ");
    assert_eq!(flag_without_note.unwrap_err().kind(), "invalid");
    assert_eq!(c.all_rows(), rows);
}

#[test]
fn concurrent_merges_into_each_other_still_count_the_event_once() {
    let mut d = region();
    let a = d[2]
        .store
        .add_visit(&visit("南山小学", 30), today())
        .unwrap();
    let b = d[3]
        .store
        .add_visit(&visit("南山小学", 30), today())
        .unwrap();
    talk_until_quiet(&mut d);
    d[0].store
        .merge_visits(&merge(a.id, b.id, AudienceRule::Keep))
        .unwrap();
    d[1].store
        .merge_visits(&merge(b.id, a.id, AudienceRule::Keep))
        .unwrap();
    talk_until_quiet(&mut d);
    for device in &d {
        let report = device.store.report(&Default::default()).unwrap();
        assert_eq!((report.visits, report.duplicates_merged), (1, 1));
    }
}

#[test]
fn a_resolved_conflict_is_gone_everywhere_and_a_flag_reaches_the_volunteer() {
    let mut d = region();
    let v = d[2]
        .store
        .add_visit(&visit("南山小学", 30), today())
        .unwrap();
    talk_until_quiet(&mut d);
    let topic = |t: &str| [("topic".to_string(), t.to_string())];
    d[2].store.edit_visit(v.id, &topic("水"), today()).unwrap();
    d[3].store.edit_visit(v.id, &topic("冰"), today()).unwrap();
    talk_until_quiet(&mut d);
    assert_eq!(d[4].store.conflicts().unwrap().len(), 1);
    d[0].store
        .resolve_field(v.id, "topic", "水的三态", "", today())
        .unwrap();
    d[0].store.flag_visit(v.id, "请补充照片").unwrap();
    talk_until_quiet(&mut d);
    for device in &d {
        assert!(device.store.conflicts().unwrap().is_empty());
        assert_eq!(device.store.visit(v.id).unwrap().fields.topic, "水的三态");
        let review = device.store.visit_review(v.id).unwrap();
        assert_eq!(review.state, Some(ReviewState::Flagged));
        assert_eq!(review.flag_note, "请补充照片");
    }
    // The volunteer's fix, later, is marked for the coordinator.
    d[2].clock.advance(60_000);
    let notes = [("notes".to_string(), "已补充".to_string())];
    d[2].store.edit_visit(v.id, &notes, today()).unwrap();
    talk_until_quiet(&mut d);
    let queue = d[1].store.review_queue(today()).unwrap();
    assert_eq!(queue.fixed.len(), 1);
    assert_eq!(queue.fixed[0].note, "请补充照片");
}

#[derive(Debug, Clone)]
enum Op {
    Add {
        device: usize,
        school: usize,
        students: u8,
    },
    Tally {
        device: usize,
        visit: usize,
        delta: u8,
    },
    Topic {
        device: usize,
        visit: usize,
        topic: u8,
    },
    Delete {
        device: usize,
        visit: usize,
    },
    Merge {
        coordinator: usize,
        keep: usize,
        other: usize,
        rule: usize,
    },
    Unmerge {
        coordinator: usize,
        visit: usize,
    },
    Distinct {
        coordinator: usize,
        a: usize,
        b: usize,
    },
    Verify {
        coordinator: usize,
        visit: usize,
    },
    Flag {
        coordinator: usize,
        visit: usize,
    },
    Resolve {
        coordinator: usize,
        visit: usize,
        topic: u8,
    },
    Send {
        from: usize,
        to: usize,
        lost: bool,
        twice: bool,
    },
}

const SCHOOLS: [&str; 3] = ["南山小学", "青溪县龙潭镇中心小学", "石门县第二中学"];

fn op() -> impl Strategy<Value = Op> {
    let d = 0..5usize;
    let c = 0..2usize;
    let v = any::<usize>();
    prop_oneof![
        (d.clone(), 0..3usize, 0..50u8).prop_map(|(device, school, students)| Op::Add {
            device,
            school,
            students
        }),
        (d.clone(), v, 1..10u8).prop_map(|(device, visit, delta)| Op::Tally {
            device,
            visit,
            delta
        }),
        (d.clone(), v, 0..3u8).prop_map(|(device, visit, topic)| Op::Topic {
            device,
            visit,
            topic
        }),
        (d.clone(), v).prop_map(|(device, visit)| Op::Delete { device, visit }),
        (c.clone(), v, v, 0..3usize).prop_map(|(coordinator, keep, other, rule)| {
            Op::Merge {
                coordinator,
                keep,
                other,
                rule,
            }
        }),
        (c.clone(), v).prop_map(|(coordinator, visit)| Op::Unmerge { coordinator, visit }),
        (c.clone(), v, v).prop_map(|(coordinator, a, b)| Op::Distinct { coordinator, a, b }),
        (c.clone(), v).prop_map(|(coordinator, visit)| Op::Verify { coordinator, visit }),
        (c.clone(), v).prop_map(|(coordinator, visit)| Op::Flag { coordinator, visit }),
        (c, v, 0..3u8).prop_map(|(coordinator, visit, topic)| Op::Resolve {
            coordinator,
            visit,
            topic
        }),
        (d.clone(), d, any::<bool>(), any::<bool>()).prop_map(|(from, to, lost, twice)| Op::Send {
            from,
            to,
            lost,
            twice
        }),
        // Sends are the common case, so that decisions meet the records they are about.
        (0..5usize, 0..5usize).prop_map(|(from, to)| Op::Send {
            from,
            to,
            lost: false,
            twice: false
        }),
    ]
}

/// A decision may be refused for what the device knows (a cycle, a deleted visit, nothing
/// to unmerge), never for anything else.
fn refused_cleanly<T: std::fmt::Debug>(outcome: fieldlog_core::Result<T>) {
    if let Err(e) = outcome {
        assert!(
            [
                "merge_into_itself",
                "merge_cycle",
                "not_merged",
                "visit_deleted",
                "invalid"
            ]
            .contains(&e.kind()),
            "{e:?}"
        );
    }
}

fn run(ops: Vec<Op>) {
    let mut devices = region();
    let rules = [AudienceRule::Keep, AudienceRule::Other, AudienceRule::Sum];
    for op in ops {
        match op {
            Op::Add {
                device,
                school,
                students,
            } => {
                devices[device]
                    .store
                    .add_visit(&visit(SCHOOLS[school], students.into()), today())
                    .unwrap();
            }
            Op::Tally {
                device,
                visit,
                delta,
            } => {
                let d = &mut devices[device];
                if let Some(id) = pick(d, visit) {
                    let now = d.store.visit(id).unwrap().fields.audience.students;
                    let set = [(
                        "audience.students".into(),
                        (now + u32::from(delta)).to_string(),
                    )];
                    d.store.edit_visit(id, &set, today()).unwrap();
                }
            }
            Op::Topic {
                device,
                visit,
                topic,
            } => {
                let d = &mut devices[device];
                if let Some(id) = pick(d, visit) {
                    let set = [("topic".into(), format!("主题{topic}"))];
                    d.store.edit_visit(id, &set, today()).unwrap();
                }
            }
            Op::Delete { device, visit } => {
                let d = &mut devices[device];
                if let Some(id) = pick(d, visit) {
                    d.store.delete_visit(id).unwrap();
                }
            }
            Op::Merge {
                coordinator,
                keep,
                other,
                rule,
            } => {
                let d = &mut devices[coordinator];
                if let (Some(keep), Some(other)) = (pick(d, keep), pick(d, other)) {
                    refused_cleanly(d.store.merge_visits(&merge(keep, other, rules[rule])));
                }
            }
            Op::Unmerge { coordinator, visit } => {
                let d = &mut devices[coordinator];
                if let Some(id) = pick(d, visit) {
                    refused_cleanly(d.store.unmerge_visit(id, ""));
                }
            }
            Op::Distinct { coordinator, a, b } => {
                let d = &mut devices[coordinator];
                if let (Some(a), Some(b)) = (pick(d, a), pick(d, b)) {
                    refused_cleanly(d.store.mark_distinct(a, b, ""));
                }
            }
            Op::Verify { coordinator, visit } => {
                let d = &mut devices[coordinator];
                if let Some(id) = pick(d, visit) {
                    refused_cleanly(d.store.verify_visits(&[id], ""));
                }
            }
            Op::Flag { coordinator, visit } => {
                let d = &mut devices[coordinator];
                if let Some(id) = pick(d, visit) {
                    refused_cleanly(d.store.flag_visit(id, "请核对人数"));
                }
            }
            Op::Resolve {
                coordinator,
                visit,
                topic,
            } => {
                let d = &mut devices[coordinator];
                if let Some(id) = pick(d, visit) {
                    let topic = format!("定稿{topic}");
                    refused_cleanly(d.store.resolve_field(id, "topic", &topic, "", today()));
                }
            }
            Op::Send {
                from,
                to,
                lost,
                twice,
            } if from != to => {
                let (sender, receiver) = pair(&mut devices, from, to);
                let (bundle, _) = sender
                    .store
                    .export_bundle(&fieldlog_core::ExportScope::MissingAtPeers)
                    .unwrap();
                if !lost {
                    receiver.store.import_bundle(&bundle).unwrap();
                    if twice {
                        receiver.store.import_bundle(&bundle).unwrap();
                    }
                }
            }
            Op::Send { .. } => {}
        }
    }
    talk_until_quiet(&mut devices);

    let state = |d: &Device| {
        let visits = d
            .store
            .visits(&fieldlog_core::VisitFilter {
                include_deleted: true,
                ..Default::default()
            })
            .unwrap();
        let histories: Vec<_> = visits
            .iter()
            .map(|v| {
                (
                    d.store.history(v.id).unwrap(),
                    d.store.visit_review(v.id).unwrap(),
                    d.store.effective_visit(v.id).unwrap(),
                )
            })
            .collect();
        (
            visits,
            d.store.report(&Default::default()).unwrap(),
            format!("{:?}", d.store.review_queue(today()).unwrap()),
            histories,
            d.rows("visits"),
        )
    };
    let reference = state(&devices[0]);
    for other in &devices[1..] {
        assert_eq!(state(other), reference, "{}", other.store.device().name);
    }
    // A rebuilt projection gives the same rows: the effective columns depend only on the
    // documents.
    let rows = devices[0].rows("visits");
    devices[0].store.rebuild_projection().unwrap();
    assert_eq!(devices[0].rows("visits"), rows);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn decisions_converge_across_two_coordinators_and_three_volunteers(
        ops in prop::collection::vec(op(), 1..50)
    ) {
        run(ops);
    }
}

#[test]
fn duplicates_are_blocked_on_school_and_day_then_scored() {
    use fieldlog_domain::{DuplicateReason, SchoolInput, SchoolStatus};
    let mut d = region();
    let lecture = |school: &str, students: i64, date: &str, topic: &str| {
        let mut input = visit(school, students);
        input.date = Some(date.into());
        input.topic = topic.into();
        input
    };
    // Two crew phones at one stop: listed, different authors.
    let a = d[2]
        .store
        .add_visit(&lecture("南山小学", 40, "2026-05-18", "水的三态"), today())
        .unwrap();
    let b = d[3]
        .store
        .add_visit(
            &lecture("南山小学", 44, "2026-05-19", "水的三态变化"),
            today(),
        )
        .unwrap();
    // One phone, the same lesson saved twice: listed; one phone, two classes: not.
    let twice = lecture("青溪县龙潭镇中心小学", 30, "2026-05-18", "磁铁");
    let c = d[2].store.add_visit(&twice, today()).unwrap();
    let c2 = d[2].store.add_visit(&twice, today()).unwrap();
    d[2].store
        .add_visit(
            &lecture("青溪县龙潭镇中心小学", 60, "2026-05-18", "声音"),
            today(),
        )
        .unwrap();
    // A school entered in the field under a close name, the same day.
    let pending = d[4]
        .store
        .add_school(
            &SchoolInput {
                name: "南山区南山小学".into(),
                district: "南山区".into(),
                area: "城区".into(),
                ..Default::default()
            },
            SchoolStatus::Pending,
        )
        .unwrap();
    let e = d[4]
        .store
        .add_visit(
            &lecture("南山区南山小学", 41, "2026-05-18", "水的三态"),
            today(),
        )
        .unwrap();
    // Too far apart in time: never a candidate.
    d[3].store
        .add_visit(&lecture("南山小学", 40, "2026-05-10", "水的三态"), today())
        .unwrap();
    talk_until_quiet(&mut d);

    let pairs = d[0].store.duplicates(&Default::default()).unwrap();
    let find = |x: VisitId, y: VisitId| {
        pairs
            .iter()
            .find(|p| (p.a, p.b) == (x, y) || (p.a, p.b) == (y, x))
            .cloned()
    };
    let ab = find(a.id, b.id).expect("the crew pair");
    assert!(
        ab.reasons.contains(&DuplicateReason::DifferentAuthors),
        "{ab:?}"
    );
    assert!(ab.reasons.contains(&DuplicateReason::NextDay), "{ab:?}");
    let cc = find(c.id, c2.id).expect("the same lesson saved twice");
    assert!(cc.reasons.contains(&DuplicateReason::Identical), "{cc:?}");
    let ae = find(a.id, e.id).expect("a pending school with a close name");
    assert!(
        ae.reasons.contains(&DuplicateReason::CloseSchoolName),
        "{ae:?}"
    );
    assert_eq!(pairs.len(), 4, "{pairs:#?}");
    assert!(pairs.windows(2).all(|w| w[0].score >= w[1].score));

    // Called distinct, a pair never comes back; merged, a visit leaves the candidates.
    d[0].store.mark_distinct(a.id, b.id, "两次课").unwrap();
    let nanshan = d[0].store.find_school("南山小学").unwrap().unwrap();
    d[0].store.merge_school(pending.id, nanshan, "").unwrap();
    let pairs = d[0].store.duplicates(&Default::default()).unwrap();
    assert!(
        pairs
            .iter()
            .all(|p| (p.a, p.b) != (a.id, b.id) && (p.a, p.b) != (b.id, a.id))
    );
    // After the school merge, the field-entered school's visit blocks as the same school.
    assert!(pairs.iter().any(|p| [p.a, p.b].contains(&e.id) && p.reasons.contains(&DuplicateReason::SameSchool)), "{pairs:#?}");
}

#[test]
fn school_decisions_reach_every_figure_and_the_queue_lists_old_unverified_visits() {
    use fieldlog_core::decide::SchoolChanges;
    use fieldlog_domain::{SchoolInput, SchoolStatus};
    let mut d = region();
    let field_entered = d[2]
        .store
        .add_school(
            &SchoolInput {
                name: "北坡村小".into(),
                district: "石门县".into(),
                area: "城区".into(),
                ..Default::default()
            },
            SchoolStatus::Pending,
        )
        .unwrap();
    let mut input = visit("北坡村小", 25);
    input.date = Some("2026-04-01".into());
    d[2].store.add_visit(&input, today()).unwrap();
    d[2].store
        .add_visit(&visit("南山小学", 40), today())
        .unwrap();
    talk_until_quiet(&mut d);
    let queue = d[0].store.review_queue(today()).unwrap();
    assert_eq!(queue.pending_schools.len(), 1);
    // The April visit is older than the 14 days the queue waits; the other is from today.
    assert_eq!(queue.unverified.len(), 1);
    assert_eq!(queue.unverified[0].school, "北坡村小");
    d[0].store.set_review_after_days(0).unwrap();
    assert_eq!(
        d[0].store.review_queue(today()).unwrap().unverified.len(),
        2
    );

    // A registered school cannot be approved again.
    let nanshan = d[0].store.find_school("南山小学").unwrap().unwrap();
    let again = d[0]
        .store
        .approve_school(nanshan, &SchoolChanges::default(), "");
    assert_eq!(again.unwrap_err().kind(), "school_not_pending");

    let rural = SchoolChanges {
        area: Some("乡村".into()),
        name: Some("石门县北坡村小学".into()),
        ..Default::default()
    };
    d[0].store
        .approve_school(field_entered.id, &rural, "核实过")
        .unwrap();
    let city = SchoolChanges {
        area: Some("rural".into()),
        ..Default::default()
    };
    d[1].store
        .set_school(nanshan, &city, "已撤并为乡村学校")
        .unwrap();
    talk_until_quiet(&mut d);
    for device in &d {
        let report = device.store.report(&Default::default()).unwrap();
        assert_eq!(
            (report.rural_schools, report.urban_schools),
            (2, 0),
            "{report:?}"
        );
        let school = device.store.school(field_entered.id).unwrap();
        assert_eq!(
            (school.status, school.fields.name.as_str()),
            (SchoolStatus::Registered, "石门县北坡村小学")
        );
        assert!(
            device
                .store
                .review_queue(today())
                .unwrap()
                .pending_schools
                .is_empty()
        );
        let history = device.store.school_history(field_entered.id).unwrap();
        assert_eq!(history[0].note, "核实过");
    }
}

#[test]
fn a_long_chain_of_summed_merges_counts_once_with_every_door() {
    let mut d = region();
    let c = &mut d[0];
    let visits: Vec<VisitId> = (0..70)
        .map(|_| {
            c.store
                .add_visit(&visit("南山小学", 1), today())
                .unwrap()
                .id
        })
        .collect();
    // Each visit merged into the next, summing: a chain of 69 merges, longer than the
    // 64 steps followed looking for a cycle.
    for pair in visits.windows(2) {
        c.store
            .merge_visits(&merge(pair[1], pair[0], AudienceRule::Sum))
            .unwrap();
    }
    let report = c.store.report(&Default::default()).unwrap();
    assert_eq!((report.visits, report.duplicates_merged), (1, 69));
    // Each visit counted 1 student and 2 teachers.
    assert_eq!(report.audience, 70 * 3);
    let rows = c.rows("visits");
    c.store.rebuild_projection().unwrap();
    assert_eq!(c.rows("visits"), rows);
}
