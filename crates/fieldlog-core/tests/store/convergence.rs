//! Three devices edit at random and swap bundles in any order, with repeats and losses.
//! Once they have talked until nothing new arrives, they must agree on everything, and
//! every tally must equal the sum of all increments.

use crate::support::{pair, pick, talk_until_quiet, team, today, visit};
use fieldlog_core::{ExportScope, VisitFilter};
use fieldlog_domain::{ActivityKind, VisitId};
use proptest::prelude::*;
use std::collections::BTreeMap;

const SCHOOLS: [&str; 3] = ["南山小学", "青溪县龙潭镇中心小学", "石门县第二中学"];

#[derive(Debug, Clone)]
enum Op {
    Add {
        device: usize,
        school: usize,
        students: u8,
    },
    Topic {
        device: usize,
        visit: usize,
        topic: u8,
    },
    Notes {
        device: usize,
        visit: usize,
    },
    Tally {
        device: usize,
        visit: usize,
        delta: u8,
    },
    ToggleActivity {
        device: usize,
        visit: usize,
        kind: usize,
    },
    Delete {
        device: usize,
        visit: usize,
    },
    Send {
        from: usize,
        to: usize,
        lost: bool,
        twice: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let d = 0..3usize;
    let v = any::<usize>();
    prop_oneof![
        (d.clone(), 0..3usize, 0..50u8).prop_map(|(device, school, students)| Op::Add {
            device,
            school,
            students
        }),
        (d.clone(), v, 0..3u8).prop_map(|(device, visit, topic)| Op::Topic {
            device,
            visit,
            topic
        }),
        (d.clone(), v).prop_map(|(device, visit)| Op::Notes { device, visit }),
        (d.clone(), v, 1..10u8).prop_map(|(device, visit, delta)| Op::Tally {
            device,
            visit,
            delta
        }),
        (d.clone(), v, 0..ActivityKind::ALL.len()).prop_map(|(device, visit, kind)| {
            Op::ToggleActivity {
                device,
                visit,
                kind,
            }
        }),
        (d.clone(), v).prop_map(|(device, visit)| Op::Delete { device, visit }),
        (d.clone(), d, any::<bool>(), any::<bool>()).prop_map(|(from, to, lost, twice)| {
            Op::Send {
                from,
                to,
                lost,
                twice,
            }
        }),
    ]
}

fn run(ops: Vec<Op>) {
    let mut devices = team(3);
    let mut expected_students: BTreeMap<VisitId, u32> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Add {
                device,
                school,
                students,
            } => {
                let v = devices[device]
                    .store
                    .add_visit(&visit(SCHOOLS[school], students.into()), today())
                    .unwrap();
                expected_students.insert(v.id, students.into());
            }
            Op::Topic {
                device,
                visit,
                topic,
            } => {
                let d = &mut devices[device];
                if let Some(id) = pick(d, visit) {
                    let set = [("topic".to_string(), format!("主题{topic}"))];
                    d.store.edit_visit(id, &set, today()).unwrap();
                }
            }
            Op::Notes { device, visit } => {
                let d = &mut devices[device];
                if let Some(id) = pick(d, visit) {
                    let set = [(
                        "notes".to_string(),
                        format!("{}的备注", d.store.device().name),
                    )];
                    d.store.edit_visit(id, &set, today()).unwrap();
                }
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
                        "audience.students".to_string(),
                        (now + u32::from(delta)).to_string(),
                    )];
                    d.store.edit_visit(id, &set, today()).unwrap();
                    *expected_students.get_mut(&id).unwrap() += u32::from(delta);
                }
            }
            Op::ToggleActivity {
                device,
                visit,
                kind,
            } => {
                let d = &mut devices[device];
                if let Some(id) = pick(d, visit) {
                    let mut kinds = d.store.visit(id).unwrap().fields.activities;
                    let kind = ActivityKind::ALL[kind];
                    if !kinds.remove(&kind) {
                        kinds.insert(kind);
                    }
                    if !kinds.is_empty() {
                        let keys: Vec<&str> = kinds.iter().map(|k| k.key()).collect();
                        let set = [("activities".to_string(), keys.join(","))];
                        d.store.edit_visit(id, &set, today()).unwrap();
                    }
                }
            }
            Op::Delete { device, visit } => {
                let d = &mut devices[device];
                if let Some(id) = pick(d, visit) {
                    d.store.delete_visit(id).unwrap();
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
                    .export_bundle(&ExportScope::MissingAtPeers)
                    .unwrap();
                if !lost {
                    receiver.store.import_bundle(&bundle).unwrap();
                    if twice {
                        let again = receiver.store.import_bundle(&bundle).unwrap();
                        assert_eq!(again.applied, 0);
                    }
                }
            }
            Op::Send { .. } => {}
        }
    }

    talk_until_quiet(&mut devices);

    let everything = VisitFilter {
        include_deleted: true,
        ..Default::default()
    };
    let reference = &devices[0];
    let visits = reference.store.visits(&everything).unwrap();
    let report = reference.store.report(&Default::default()).unwrap();
    let conflicts = reference.store.conflicts().unwrap();
    for other in &devices[1..] {
        assert_eq!(other.store.visits(&everything).unwrap(), visits);
        assert_eq!(other.store.report(&Default::default()).unwrap(), report);
        assert_eq!(other.store.conflicts().unwrap(), conflicts);
    }
    assert_eq!(visits.len(), expected_students.len());
    for v in &visits {
        assert_eq!(
            v.fields.audience.students, expected_students[&v.id],
            "tally of {}",
            v.id
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn three_devices_converge_through_bundles(ops in prop::collection::vec(op(), 1..40)) {
        run(ops);
    }
}

#[test]
fn concurrent_topic_edits_converge_to_one_conflict_listing() {
    run(vec![
        Op::Add {
            device: 0,
            school: 0,
            students: 10,
        },
        Op::Send {
            from: 0,
            to: 1,
            lost: false,
            twice: false,
        },
        Op::Send {
            from: 0,
            to: 2,
            lost: false,
            twice: false,
        },
        Op::Topic {
            device: 0,
            visit: 0,
            topic: 0,
        },
        Op::Topic {
            device: 1,
            visit: 0,
            topic: 1,
        },
        Op::Topic {
            device: 2,
            visit: 0,
            topic: 2,
        },
        Op::Tally {
            device: 1,
            visit: 0,
            delta: 3,
        },
        Op::Tally {
            device: 2,
            visit: 0,
            delta: 4,
        },
    ]);
}
