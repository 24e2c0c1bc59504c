//! Changes carried by a teammate (signed by their author), the limits on what a change may
//! be, and a bureau that stored a poisoned change before those limits existed.

use crate::support::*;
use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT};
use fieldlog_bureau::TeamType;
use fieldlog_domain::Role;
use fieldlog_domain::sync::{
    DocChanges, MAX_CHANGE_BYTES, MAX_PASSED_CHANGE_BYTES, Refusal, SyncRequest,
};

/// Changes of `doc_id` with signatures.
fn signed(doc_id: &str, changes: Vec<(Vec<u8>, Option<&Device>)>) -> Vec<DocChanges> {
    let signatures = changes
        .iter()
        .filter_map(|(c, by)| by.map(|d| d.sign(c)))
        .collect();
    vec![DocChanges {
        doc_id: doc_id.to_string(),
        changes: changes.into_iter().map(|(c, _)| c.into()).collect(),
        document: None,
        signatures,
    }]
}

/// A's device holds B's visit (from a bundle) and records its own on top of it.
fn a_carries_b() -> (Server, Device, Device, Vec<u8>, Vec<u8>) {
    let server = Server::with_teams();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let mut b = server.device("caravan-1", "张老师", Role::Volunteer);
    let theirs = b.add_visit(LEDGER, "水的三态");
    a.doc(LEDGER)
        .apply_changes([automerge::Change::from_bytes(theirs.clone()).unwrap()])
        .unwrap();
    let mine = a.add_visit(LEDGER, "磁铁");
    (server, a, b, theirs, mine)
}

#[test]
fn a_teammate_carries_a_signed_visit_and_its_own_goes_through_with_it() {
    let (server, a, b, theirs, mine) = a_carries_b();
    let request = request(
        0,
        signed(LEDGER, vec![(theirs, Some(&b)), (mine, None)]),
        100,
    );
    let answer = server.sync(&a.token, &request).unwrap();
    assert_eq!(
        answer.accepted, 2,
        "B's visit and A's own, which builds on it"
    );
    // B later receives its own visit back (harmless) and A's.
    let mut b = b;
    let answer = server.round(&mut b, Vec::new(), 100);
    assert_eq!(changes_of(&answer, LEDGER).len(), 2);
}

#[test]
fn a_teammates_change_without_a_signature_is_refused_as_forged() {
    let (server, a, _, theirs, mine) = a_carries_b();
    let before = server.stored();
    let refused = server
        .sync(
            &a.token,
            &request(0, signed(LEDGER, vec![(theirs, None), (mine, None)]), 100),
        )
        .unwrap_err();
    assert_eq!(refused.reason, Refusal::ForgedActor);
    assert_eq!(server.stored(), before);
}

#[test]
fn a_change_with_a_wrong_signature_is_left_out_and_the_carriers_own_changes_go_through() {
    let (server, mut a, b, theirs, _) = a_carries_b();
    // Signed by A, not by its author B.
    let forged = vec![DocChanges {
        signatures: vec![a.sign(&theirs)],
        ..signed(LEDGER, vec![(theirs, None)]).remove(0)
    }];
    let own = a.add_visit("ledger/caravan-1/2026-06", "电路");
    let mut docs = forged;
    docs.extend(signed("ledger/caravan-1/2026-06", vec![(own, None)]));
    let answer = server.sync(&a.token, &request(0, docs, 100)).unwrap();
    assert_eq!(answer.accepted, 1, "only A's own visit");
    assert!(
        heads_of(&answer, LEDGER).is_empty(),
        "B's visit was left out"
    );
    drop(b);
}

#[test]
fn a_revoked_authors_signed_change_is_left_out() {
    let (server, a, b, theirs, _) = a_carries_b();
    server.bureau.revoke(&b.device_id).unwrap();
    let answer = server
        .sync(
            &a.token,
            &request(0, signed(LEDGER, vec![(theirs, Some(&b))]), 100),
        )
        .unwrap();
    assert_eq!(answer.accepted, 0);
}

#[test]
fn a_device_enrolled_without_a_key_registers_it_in_a_request() {
    let server = Server::with_teams();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let mut b = server.device("caravan-1", "张老师", Role::Volunteer);
    // Forget B's key at the bureau, as for a device enrolled before signatures.
    server.execute_sql("UPDATE devices SET signing_key = NULL");
    let theirs = b.add_visit(LEDGER, "水的三态");
    let carried = request(0, signed(LEDGER, vec![(theirs.clone(), Some(&b))]), 100);
    assert_eq!(server.sync(&a.token, &carried).unwrap().accepted, 0);
    let key = fieldlog_core::signing::public_key(&b.key);
    let idle = SyncRequest {
        signing_key: Some(key),
        resume: None,
        ..request(0, Vec::new(), 100)
    };
    server.sync(&b.token, &idle).unwrap();
    assert_eq!(server.sync(&a.token, &carried).unwrap().accepted, 1);
    let _ = &mut a;
}

#[test]
fn a_compressed_change_is_refused_without_inflating_it() {
    let server = Server::with_teams();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let doc = a.doc(LEDGER);
    let visit = doc
        .put_object(ROOT, uuid::Uuid::now_v7().to_string(), ObjType::Map)
        .unwrap();
    doc.put(&visit, "notes", "啊".repeat(60_000)).unwrap();
    doc.commit();
    let compressed = doc.get_last_local_change().unwrap().bytes().to_vec();
    assert_eq!(compressed[8], 2, "a compressed change chunk");
    let body = encode(&request(0, docs(LEDGER, vec![compressed]), 100));
    assert!(body.len() < 4096, "{} bytes on the wire", body.len());
    let refused = server.sync_body(Some(&a.token), body).unwrap_err();
    assert_eq!(refused.reason, Refusal::Malformed, "{}", refused.message);
    assert_eq!(server.healthz(), (200, "ok".into()));
}

#[test]
fn a_change_larger_than_a_change_may_be_is_refused() {
    let server = Server::with_teams();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let doc = a.doc(LEDGER);
    let visit = doc
        .put_object(ROOT, uuid::Uuid::now_v7().to_string(), ObjType::Map)
        .unwrap();
    doc.put(&visit, "notes", "x".repeat(MAX_CHANGE_BYTES))
        .unwrap();
    doc.commit();
    let big = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
    let before = server.stored();
    let refused = server
        .sync(&a.token, &request(0, docs(LEDGER, vec![big]), 100))
        .unwrap_err();
    assert_eq!((refused.status, refused.reason), (413, Refusal::TooLarge));
    assert_eq!(server.stored(), before);
}

#[test]
fn a_change_outside_the_record_layout_is_refused() {
    let server = Server::with_teams();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let doc = a.doc(REGISTRY);
    doc.put(ROOT, "junk", "x".repeat(10_000)).unwrap();
    doc.commit();
    let junk = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
    let refused = server
        .sync(&a.token, &request(0, docs(REGISTRY, vec![junk]), 100))
        .unwrap_err();
    assert!(
        matches!(refused.reason, Refusal::Malformed | Refusal::RegistryEdit),
        "{refused:?}"
    );
    let visit_junk = {
        let key = a.visit_key(1);
        let doc = a.doc(LEDGER);
        let visit = doc.put_object(ROOT, key, ObjType::Map).unwrap();
        doc.put(&visit, "payload", "x".repeat(10_000)).unwrap();
        doc.commit();
        doc.get_last_local_change().unwrap().raw_bytes().to_vec()
    };
    let refused = server
        .sync(&a.token, &request(0, docs(LEDGER, vec![visit_junk]), 100))
        .unwrap_err();
    assert_eq!(refused.reason, Refusal::Malformed, "{}", refused.message);
}

/// The poisoning of a bureau that stored huge changes before it refused them: its teammates
/// and the other teams of the district keep syncing, and `purge` removes the changes.
#[test]
fn a_poisoned_ledger_and_registry_stop_no_one_and_purge_removes_them() {
    let server = Server::with_teams();
    server
        .bureau
        .import_schools_csv("name,district,area\n南山小学,南山区,城区\n".as_bytes())
        .unwrap();
    // Another team in the same district: it receives the district's registry.
    server
        .bureau
        .add_team("caravan-3", TeamType::Caravan, &["南山区".into()])
        .unwrap();
    let mut attacker = server.device("caravan-1", "坏人", Role::Volunteer);
    let mut teammate = server.device("caravan-1", "李老师", Role::Volunteer);
    let mut neighbour = server.device("caravan-3", "赵老师", Role::Volunteer);
    let first = teammate.add_visit(LEDGER, "水的三态");
    server.round(&mut teammate, docs(LEDGER, vec![first]), 100);
    let registry_changes = changes_of(&server.round(&mut neighbour, Vec::new(), 100), REGISTRY);
    assert!(!registry_changes.is_empty());

    // Stored as an older bureau would have: straight into the log, one change in the team's
    // ledger and one in the district's registry.
    let base = server.stored().changes.len() as i64;
    let mut poison = |doc_id: &str| {
        let doc = attacker.doc(doc_id);
        let record = doc
            .put_object(ROOT, uuid::Uuid::now_v7().to_string(), ObjType::Map)
            .unwrap();
        doc.put(&record, "notes", "x".repeat(MAX_PASSED_CHANGE_BYTES + 1024))
            .unwrap();
        doc.commit();
        let huge = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
        server.inject_change(doc_id, &hash_of(&huge), &attacker.device_id, &huge);
        huge
    };
    let huge = poison(LEDGER);
    let huge_registry = poison(REGISTRY);

    // The other team keeps syncing: a fresh device of it gets the registry without the
    // huge change.
    let mut neighbour_newcomer = server.device("caravan-3", "孙老师", Role::Volunteer);
    let answer = server.round(&mut neighbour_newcomer, Vec::new(), 100);
    assert_eq!(changes_of(&answer, REGISTRY), registry_changes);
    assert!(!answer.more);
    let answer = server.round(&mut neighbour, Vec::new(), 100);
    assert!(changes_of(&answer, REGISTRY).is_empty(), "passed, not sent");

    // A new teammate syncs past it: the answer holds only what a device takes.
    let mut newcomer = server.device("caravan-1", "张老师", Role::Volunteer);
    let answer = server.round(&mut newcomer, Vec::new(), 100);
    assert_eq!(
        changes_of(&answer, LEDGER).len(),
        1,
        "the first visit, not the huge change"
    );
    assert!(!answer.more);
    // The teammate keeps syncing and learns its new visit arrived.
    let second = teammate.add_visit(LEDGER, "磁铁");
    let answer = server.round(&mut teammate, docs(LEDGER, vec![second.clone()]), 100);
    assert_eq!(answer.accepted, 1);
    assert!(heads_of(&answer, LEDGER).contains(&hash_of(&second)));

    let purged = server.bureau.purge(MAX_CHANGE_BYTES).unwrap();
    assert_eq!(purged.len(), 2, "{purged:?}");
    let mut hashes: Vec<_> = purged.iter().map(|p| p.hash.clone()).collect();
    hashes.sort();
    let mut expected = vec![
        hex::encode(hash_of(&huge)),
        hex::encode(hash_of(&huge_registry)),
    ];
    expected.sort();
    assert_eq!(hashes, expected);
    assert!(
        purged
            .iter()
            .all(|p| p.reason == fieldlog_bureau::PurgeReason::TooLarge)
    );
    let stored = server.stored();
    assert_eq!(
        stored.changes.len() as i64,
        base + 1,
        "the two visits remain"
    );
    // The document reloads without it, and syncing goes on.
    let third = teammate.add_visit(LEDGER, "电路");
    let answer = server.round(&mut teammate, docs(LEDGER, vec![third.clone()]), 100);
    assert_eq!(answer.accepted, 1);
    let answer = server.round(&mut newcomer, Vec::new(), 100);
    assert_eq!(changes_of(&answer, LEDGER).len(), 2);
    // The attacker's resend is refused.
    let refused = server
        .sync(&attacker.token, &request(0, docs(LEDGER, vec![huge]), 100))
        .unwrap_err();
    assert_eq!(refused.reason, Refusal::TooLarge);
}

/// Finding 1, with real device stores: A imports B's bundle (B is out of signal), records a
/// visit and syncs. A's visit and B's both reach the bureau, and a third device receives them.
#[test]
fn a_device_that_imported_a_teammates_bundle_syncs_both_visits() {
    use fieldlog_core::{ExportScope, Options, Store, VisitFilter};
    let server = Server::with_teams();
    server
        .bureau
        .import_schools_csv("name,district,area\n南山小学,南山区,城区\n".as_bytes())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let enrolled = |name: &str, member: &str| {
        let mut store = Store::init(
            &dir.path().join(name),
            name,
            "caravan-1",
            Options::default(),
        )
        .unwrap();
        let code = server.code("caravan-1", member, Role::Volunteer);
        fieldlog_core::sync::enroll(&mut store, &server.url, &code).unwrap();
        fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
        store
    };
    let (mut a, mut b, mut c) = (
        enrolled("一号机", "李老师"),
        enrolled("二号机", "张老师"),
        enrolled("三号机", "王老师"),
    );
    let visit = |topic: &str| {
        serde_json::from_value(serde_json::json!({
            "school": "南山小学", "activities": ["lecture"], "topic": topic,
            "audience": {"students": 30},
        }))
        .unwrap()
    };
    let today = "2026-05-20".parse().unwrap();
    b.add_visit(&visit("水的三态"), today).unwrap();
    let (bundle, _) = b.export_bundle(&ExportScope::All).unwrap();
    a.import_bundle(&bundle).unwrap();
    a.add_visit(&visit("磁铁"), today).unwrap();

    let summary = fieldlog_core::sync::sync(&mut a, |_| {}).unwrap();
    assert_eq!(
        summary.accepted, 2,
        "A's visit and the one it carried for B"
    );
    assert!(a.waiting_records().unwrap().is_empty());
    let at_bureau = server.bureau.visits(&VisitFilter::default()).unwrap();
    assert_eq!(at_bureau.len(), 2);
    fieldlog_core::sync::sync(&mut c, |_| {}).unwrap();
    assert_eq!(c.visits(&VisitFilter::default()).unwrap().len(), 2);
    // B, back in signal, has nothing left to send and receives A's visit.
    let summary = fieldlog_core::sync::sync(&mut b, |_| {}).unwrap();
    assert_eq!(summary.accepted, 0);
    assert_eq!(b.visits(&VisitFilter::default()).unwrap().len(), 2);
}

/// A bundle passed through three devices: A's visit goes to B by bundle, B adds its own and
/// bundles everything to C, and C, the only one with signal, syncs both to the bureau.
#[test]
fn a_bundle_passed_through_three_devices_reaches_the_bureau_from_the_last() {
    use fieldlog_core::{ExportScope, Options, Store, VisitFilter};
    let server = Server::with_teams();
    server
        .bureau
        .import_schools_csv("name,district,area\n南山小学,南山区,城区\n".as_bytes())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let enrolled = |name: &str| {
        let mut store = Store::init(
            &dir.path().join(name),
            name,
            "caravan-1",
            Options::default(),
        )
        .unwrap();
        let code = server.code("caravan-1", name, Role::Volunteer);
        fieldlog_core::sync::enroll(&mut store, &server.url, &code).unwrap();
        fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
        store
    };
    let (mut a, mut b, mut c) = (enrolled("一号机"), enrolled("二号机"), enrolled("三号机"));
    let visit = |topic: &str| {
        serde_json::from_value(serde_json::json!({
            "school": "南山小学", "activities": ["lecture"], "topic": topic,
        }))
        .unwrap()
    };
    let today = "2026-05-20".parse().unwrap();
    a.add_visit(&visit("水的三态"), today).unwrap();
    b.import_bundle(&a.export_bundle(&ExportScope::All).unwrap().0)
        .unwrap();
    b.add_visit(&visit("磁铁"), today).unwrap();
    c.import_bundle(&b.export_bundle(&ExportScope::All).unwrap().0)
        .unwrap();
    let summary = fieldlog_core::sync::sync(&mut c, |_| {}).unwrap();
    assert_eq!(summary.accepted, 2);
    assert_eq!(
        server.bureau.visits(&VisitFilter::default()).unwrap().len(),
        2
    );
}

/// Found by fuzzing `bureau_admit`: a plain change chunk on which Automerge 0.12 panics while
/// decoding. The bureau refuses it as malformed and goes on serving.
#[test]
fn a_change_that_panics_automerge_is_refused_and_the_bureau_goes_on() {
    let server = Server::with_teams();
    let mut device = server.device("caravan-1", "李老师", Role::Volunteer);
    let crafted =
        include_bytes!("../../../fieldlog-core/src/testdata/change-chunk-panics-automerge.bin");
    let refused = server
        .sync(
            &device.token,
            &request(0, docs(LEDGER, vec![crafted.to_vec()]), 100),
        )
        .unwrap_err();
    assert_eq!(refused.reason, Refusal::Malformed, "{}", refused.message);
    assert!(refused.message.contains("panicked"), "{}", refused.message);
    let visit = device.add_visit(LEDGER, "水的三态");
    let answer = server.round(&mut device, docs(LEDGER, vec![visit]), 100);
    assert_eq!(answer.accepted, 1);
}
