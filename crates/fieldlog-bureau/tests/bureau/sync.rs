use crate::support::*;
use automerge::ReadDoc;
use fieldlog_bureau::Config;
use fieldlog_domain::{Role, SchoolStatus};

#[test]
fn healthz_says_ok() {
    let server = Server::start();
    assert_eq!(server.healthz(), (200, "ok".to_string()));
}

#[test]
fn a_change_reaches_the_other_device_of_the_team_once() {
    let server = Server::with_teams();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let mut b = server.device("caravan-1", "张老师", Role::Volunteer);
    let visit = a.add_visit(LEDGER, "水的三态");
    let request = request(0, docs(LEDGER, vec![visit.clone()]), 100);

    let answer = server.sync(&a.token, &request).unwrap();
    assert_eq!(answer.accepted, 1);
    assert_eq!(heads_of(&answer, LEDGER), [hash_of(&visit)]);
    assert!(
        answer.changes.is_empty(),
        "a device never gets its own changes back"
    );
    assert!(!answer.more);
    let cursor = answer.cursor;
    assert_eq!(cursor, 1);
    let stored = server.stored();
    assert_eq!(stored.changes.len(), 1);

    // Resending the same request is harmless: nothing new, nothing stored.
    let again = server.sync(&a.token, &request).unwrap();
    assert_eq!((again.accepted, again.cursor), (0, cursor));
    assert_eq!(server.stored(), stored);

    // The other device of the team receives it, with the heads, and its cursor moves.
    let answer = server.round(&mut b, Vec::new(), 100);
    assert_eq!(changes_of(&answer, LEDGER), std::slice::from_ref(&visit));
    assert_eq!(heads_of(&answer, LEDGER), [hash_of(&visit)]);
    assert_eq!((b.cursor, answer.more), (cursor, false));
    let key = a.visit_key(1);
    let ledger = b.doc(LEDGER);
    let visit_obj = fieldlog_core::ledger::record_obj(ledger, &key).unwrap();
    assert_eq!(
        ledger
            .get(&visit_obj, "topic")
            .unwrap()
            .unwrap()
            .0
            .to_string(),
        "\"水的三态\""
    );

    // An idle round brings nothing more.
    let idle = server.round(&mut b, Vec::new(), 100);
    assert!(idle.changes.is_empty() && idle.heads.is_empty());
    assert_eq!(idle.cursor, cursor);

    // B's edit on top reaches A, and A's cursor skips B's own changes for B.
    let edit = b.set(LEDGER, &a.visit_key(1), "topic", "水的三态与循环");
    let answer = server.round(&mut b, docs(LEDGER, vec![edit.clone()]), 100);
    assert_eq!((answer.accepted, answer.cursor), (1, 2));
    assert_eq!(heads_of(&answer, LEDGER), [hash_of(&edit)]);
    let answer = server.round(&mut a, Vec::new(), 100);
    assert_eq!(changes_of(&answer, LEDGER), [edit]);
}

#[test]
fn another_team_never_receives_a_ledger() {
    let server = Server::with_teams();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let mut other = server.device("caravan-2", "赵老师", Role::Volunteer);
    let mut coordinator = server.device("bureau", "王主任", Role::Coordinator);
    let visit = a.add_visit(LEDGER, "水的三态");
    server.round(&mut a, docs(LEDGER, vec![visit.clone()]), 100);
    let own = other.add_visit(OTHER_LEDGER, "磁铁");
    server.round(&mut other, docs(OTHER_LEDGER, vec![own]), 100);

    let answer = server.round(&mut other, Vec::new(), 100);
    assert!(answer.changes.is_empty());
    assert_eq!(
        answer.cursor, 2,
        "the cursor still moves past what it may not see"
    );
    // The coordinator's region holds caravan-1 (南山区) but not caravan-2 (西山区).
    let answer = server.round(&mut coordinator, Vec::new(), 100);
    assert_eq!(changes_of(&answer, LEDGER), [visit]);
    assert!(changes_of(&answer, OTHER_LEDGER).is_empty());
}

#[test]
fn a_backlog_comes_in_pages() {
    let server = Server::with_teams();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let mut b = server.device("caravan-1", "张老师", Role::Volunteer);
    let visits: Vec<Vec<u8>> = (0..5)
        .map(|i| a.add_visit(LEDGER, &format!("第{i}课")))
        .collect();
    let answer = server.round(&mut a, docs(LEDGER, visits.clone()), 100);
    assert_eq!(answer.accepted, 5);

    let mut received = Vec::new();
    let mut cursors = Vec::new();
    loop {
        let answer = server.round(&mut b, Vec::new(), 2);
        assert!(changes_of(&answer, LEDGER).len() <= 2);
        received.extend(changes_of(&answer, LEDGER));
        cursors.push(answer.cursor);
        if !answer.more {
            break;
        }
    }
    assert_eq!(received, visits, "every change once, in order");
    assert_eq!(cursors, [2, 4, 5]);
    assert_eq!(b.doc(LEDGER).get_heads(), a.doc(LEDGER).get_heads());
}

#[test]
fn the_server_caps_a_page_whatever_the_device_asks() {
    let server = Server::with_config(Config {
        max_changes_per_response: 3,
        ..Config::default()
    });
    server
        .bureau
        .add_team(
            "caravan-1",
            fieldlog_bureau::TeamType::Caravan,
            &["南山区".into()],
        )
        .unwrap();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let mut b = server.device("caravan-1", "张老师", Role::Volunteer);
    let visits: Vec<Vec<u8>> = (0..5)
        .map(|i| a.add_visit(LEDGER, &format!("第{i}课")))
        .collect();
    server.round(&mut a, docs(LEDGER, visits), 100);
    let answer = server.round(&mut b, Vec::new(), u32::MAX);
    assert_eq!(
        (
            changes_of(&answer, LEDGER).len(),
            answer.more,
            answer.cursor
        ),
        (3, true, 3)
    );
}

#[test]
fn changes_missing_their_dependencies_wait_until_they_are_sent() {
    let server = Server::with_teams();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let first = a.add_visit(LEDGER, "第一课");
    let key = a.visit_key(1);
    let second = a.set(LEDGER, &key, "topic", "第一课（改）");

    let answer = server.round(&mut a, docs(LEDGER, vec![second.clone()]), 100);
    assert_eq!(
        answer.accepted, 0,
        "the edit builds on a visit the bureau lacks"
    );
    assert!(heads_of(&answer, LEDGER).is_empty());
    assert!(server.stored().changes.is_empty());

    // Sent together (in any order), both go in, dependencies first.
    let answer = server.round(
        &mut a,
        docs(LEDGER, vec![second.clone(), first.clone()]),
        100,
    );
    assert_eq!(answer.accepted, 2);
    assert_eq!(heads_of(&answer, LEDGER), [hash_of(&second)]);
    let stored: Vec<[u8; 32]> = server
        .stored()
        .changes
        .iter()
        .map(|(_, _, hash)| hash.as_slice().try_into().unwrap())
        .collect();
    assert_eq!(stored, [hash_of(&first), hash_of(&second)]);
}

#[test]
fn imported_schools_reach_devices_and_a_reimport_changes_nothing() {
    let server = Server::with_teams();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let mut far = server.device("caravan-2", "赵老师", Role::Volunteer);
    let csv = "name,district,area,level,enrollment\n\
               南山小学,南山区,城区,小学,600\n\
               北山中学,北山区,乡村,初中,300\n";
    let summary = server.bureau.import_schools_csv(csv.as_bytes()).unwrap();
    assert_eq!(
        (summary.added, summary.updated, summary.unchanged),
        (2, 0, 0)
    );
    let stored = server.stored();
    assert_eq!(stored.changes.len(), 2, "one change per district");

    let answer = server.round(&mut a, Vec::new(), 100);
    assert_eq!(changes_of(&answer, REGISTRY).len(), 1);
    assert!(
        changes_of(&answer, "registry/北山区").is_empty(),
        "not caravan-1's district"
    );
    let registry = a.doc(REGISTRY);
    let keys = fieldlog_core::ledger::record_keys(registry);
    assert_eq!(keys.len(), 1);
    let obj = fieldlog_core::ledger::record_obj(registry, &keys[0]).unwrap();
    let school = fieldlog_core::ledger::read_school(registry, &keys[0], &obj).unwrap();
    assert_eq!(school.fields.name, "南山小学");
    assert_eq!(school.status, SchoolStatus::Registered);
    assert!(server.round(&mut far, Vec::new(), 100).changes.is_empty());

    let again = server.bureau.import_schools_csv(csv.as_bytes()).unwrap();
    assert_eq!((again.added, again.updated, again.unchanged), (0, 0, 2));
    assert_eq!(server.stored(), stored);

    // A changed row updates the same school, and the device receives just that.
    let changed = csv.replace("600", "650");
    let third = server
        .bureau
        .import_schools_csv(changed.as_bytes())
        .unwrap();
    assert_eq!((third.added, third.updated, third.unchanged), (0, 1, 1));
    let answer = server.round(&mut a, Vec::new(), 100);
    assert_eq!(changes_of(&answer, REGISTRY).len(), 1);
    let registry = a.doc(REGISTRY);
    assert_eq!(fieldlog_core::ledger::record_keys(registry), keys);
    let school = fieldlog_core::ledger::read_school(registry, &keys[0], &obj).unwrap();
    assert_eq!(school.fields.enrollment, Some(650));
}

#[test]
fn a_bad_registry_row_imports_nothing() {
    let server = Server::with_teams();
    let csv = "name,district,area\n南山小学,南山区,城区\n,南山区,火星\n";
    let error = server
        .bureau
        .import_schools_csv(csv.as_bytes())
        .unwrap_err();
    assert!(error.to_string().contains("line 3"), "{error}");
    let twice = "name,district,area\n南山小学,南山区,城区\n南山小学,南山区,乡村\n";
    let error = server
        .bureau
        .import_schools_csv(twice.as_bytes())
        .unwrap_err();
    assert!(error.to_string().contains("listed twice"), "{error}");
    assert!(server.stored().changes.is_empty());
}

#[test]
fn a_volunteer_enters_and_edits_its_own_pending_school_and_a_coordinator_registers_it() {
    let server = Server::with_teams();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let mut coordinator = server.device("bureau", "王主任", Role::Coordinator);
    let (id, entered) = a.add_school("山脚小学", SchoolStatus::Pending);
    let answer = server.round(&mut a, docs(REGISTRY, vec![entered]), 100);
    assert_eq!(answer.accepted, 1);
    let edit = a.set(REGISTRY, &id.to_string(), "name", "山脚村小学");
    assert_eq!(
        server
            .round(&mut a, docs(REGISTRY, vec![edit]), 100)
            .accepted,
        1
    );

    server.round(&mut coordinator, Vec::new(), 100);
    let register = coordinator.set(REGISTRY, &id.to_string(), "status", "registered");
    let answer = server.round(&mut coordinator, docs(REGISTRY, vec![register]), 100);
    assert_eq!(answer.accepted, 1, "a coordinator may register a school");
    let answer = server.round(&mut a, Vec::new(), 100);
    assert_eq!(changes_of(&answer, REGISTRY).len(), 1);
}

#[test]
fn the_bureau_reloads_documents_from_the_file() {
    // A tiny cache and frequent snapshots: documents are loaded from snapshot + log.
    let server = Server::with_config(Config {
        documents: fieldlog_bureau::DocOptions {
            snapshot_every: 2,
            cache_docs: 1,
        },
        ..Config::default()
    });
    server
        .bureau
        .add_team(
            "caravan-1",
            fieldlog_bureau::TeamType::Caravan,
            &["南山区".into()],
        )
        .unwrap();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let mut heads = Vec::new();
    for month in ["2026-05", "2026-06"] {
        for i in 0..3 {
            let doc = format!("ledger/caravan-1/{month}");
            let visit = a.add_visit(&doc, &format!("第{i}课"));
            let answer = server.round(&mut a, docs(&doc, vec![visit.clone()]), 100);
            assert_eq!(answer.accepted, 1);
            assert_eq!(heads_of(&answer, &doc), [hash_of(&visit)]);
            heads.push(hash_of(&visit));
        }
    }
    // Another process (an admin command) sees the same documents.
    let again = server.open_again();
    let docs_ids = [
        "ledger/caravan-1/2026-05".to_string(),
        "ledger/caravan-1/2026-06".to_string(),
    ];
    let reloaded = again.storage().heads(&docs_ids).unwrap();
    assert_eq!(reloaded[0][0].0, heads[2]);
    assert_eq!(reloaded[1][0].0, heads[5]);
    // A resend of an old change is recognised after the reload too.
    let old = changes_of(
        &server.round(
            &mut server.device("caravan-1", "张老师", Role::Volunteer),
            Vec::new(),
            100,
        ),
        "ledger/caravan-1/2026-05",
    );
    assert_eq!(old.len(), 3);
    let answer = server.round(&mut a, docs("ledger/caravan-1/2026-05", old), 100);
    assert_eq!(answer.accepted, 0);
}

/// A device's own view of what waits: only the visits whose content the bureau lacks, not
/// every visit of a month whose ledger changed.
#[test]
fn only_the_visits_changed_since_the_last_sync_wait() {
    use fieldlog_core::{Options, Store};
    use std::collections::BTreeSet;
    let server = Server::with_teams();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::init(dir.path(), "一号机", "caravan-1", Options::default()).unwrap();
    // A school entered in the field, so the device can log before it ever syncs.
    let school = fieldlog_domain::SchoolInput {
        name: "北坡村小".into(),
        district: "南山区".into(),
        area: "乡村".into(),
        level: String::new(),
        enrollment: None,
    };
    store.add_school(&school, SchoolStatus::Pending).unwrap();
    let input = |students: u32| {
        serde_json::from_value(serde_json::json!({
            "school": "北坡村小", "activities": ["lecture"], "audience": {"students": students},
        }))
        .unwrap()
    };
    let day = "2026-05-20".parse().unwrap();
    let first = store.add_visit(&input(30), day).unwrap().id;
    assert!(store.waiting_records().unwrap().is_empty(), "not enrolled");

    let code = server.code("caravan-1", "李老师", Role::Volunteer);
    fieldlog_core::sync::enroll(&mut store, &server.url, &code).unwrap();
    let second = store.add_visit(&input(12), day).unwrap().id;
    let ids = |ids: &[fieldlog_domain::VisitId]| -> BTreeSet<String> {
        ids.iter().map(ToString::to_string).collect()
    };
    let waiting = store.waiting_records().unwrap();
    assert!(waiting.is_superset(&ids(&[first, second])), "{waiting:?}");

    fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
    assert!(store.waiting_records().unwrap().is_empty());

    // One visit edited: the other, in the same month's ledger, stays synced.
    store
        .edit_visit(second, &[("audience.students".into(), "15".into())], day)
        .unwrap();
    assert_eq!(store.waiting_records().unwrap(), ids(&[second]));
    fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
    assert!(store.waiting_records().unwrap().is_empty());
}

/// Devices syncing while coordinators read the figures: every round and every read
/// succeeds (the projection's catch-up and a write take their locks in one order; the
/// other order deadlocked the embedded file under load).
#[test]
fn rounds_and_reads_at_once_all_go_through() {
    let mut config = Config::default();
    config.serve.enroll_rate = fieldlog_bureau::RateLimit::per_minute(10_000);
    let server = Server::with_teams_config(config);
    let devices: Vec<_> = (0..6)
        .map(|n| server.device("caravan-1", &format!("队员{n}"), Role::Volunteer))
        .collect();
    std::thread::scope(|s| {
        for mut device in devices {
            let server = &server;
            s.spawn(move || {
                for i in 0..15 {
                    let visit = device.add_visit(LEDGER, &format!("第{i}课"));
                    let answer = server.round(&mut device, docs(LEDGER, vec![visit]), 1_000);
                    assert_eq!(answer.accepted, 1);
                }
            });
        }
        for _ in 0..2 {
            let server = &server;
            s.spawn(move || {
                for _ in 0..30 {
                    server.bureau.report(&Default::default()).unwrap();
                    server.bureau.visits(&Default::default()).unwrap();
                }
            });
        }
    });
    let stored = server.stored();
    let ledger = stored.changes.iter().filter(|(_, doc, _)| doc == LEDGER);
    assert_eq!(ledger.count(), 6 * 15);
}

/// The projection is derived data in a file of its own: lost, it is rebuilt from the log
/// when the bureau opens, with the same figures; the records' file holds none of it.
#[test]
fn a_lost_projection_is_rebuilt_with_the_same_figures() {
    let server = Server::with_teams();
    // A real device store: its visit is one the figures count, with a photo.
    let (mut store, _store_dir, _photo) = server.photographer();
    fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
    let report = server.bureau.report(&Default::default()).unwrap();
    let visits = server.bureau.visits(&Default::default()).unwrap();
    assert_eq!(visits.len(), 1);
    assert_eq!(report.visits, 1);
    assert_eq!(visits[0].photos.len(), 1);

    let file = server.dir.path().join(fieldlog_bureau::PROJECTION_FILE);
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", file.display());
        let _ = std::fs::remove_file(path);
    }
    // Another process on the same data (an admin command, a restart).
    let again = server.open_again();
    assert!(file.exists());
    assert_eq!(again.report(&Default::default()).unwrap(), report);
    assert_eq!(again.visits(&Default::default()).unwrap(), visits);
    if server.database.is_none() {
        let tables = server.texts("SELECT name FROM sqlite_master WHERE name = 'visits'");
        assert!(tables.is_empty(), "{tables:?}");
    }
}
