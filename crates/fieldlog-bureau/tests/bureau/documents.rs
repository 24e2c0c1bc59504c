//! Documents sent whole (`DocChanges::document`, protocol 3): every change in them goes
//! through the same checks as a change sent alone, and a hostile document (a bomb, a
//! truncated or damaged one, one too full of changes) is refused and stores nothing.

use crate::support::*;
use automerge::AutoCommit;
use automerge::transaction::Transactable;
use fieldlog_domain::Role;
use fieldlog_domain::sync::{DocChanges, MAX_INFLATED_BYTES, Refusal};

fn whole(doc_id: &str, bytes: Vec<u8>) -> Vec<DocChanges> {
    vec![DocChanges {
        doc_id: doc_id.into(),
        changes: Vec::new(),
        document: Some(bytes.into()),
        signatures: Vec::new(),
    }]
}

#[test]
fn a_document_sent_whole_is_taken_change_by_change_and_reaches_teammates() {
    let server = Server::with_teams();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let mut b = server.device("caravan-1", "王老师", Role::Volunteer);
    for topic in ["水的三态", "磁铁", "电路"] {
        a.add_visit(LEDGER, topic);
    }
    let bytes = a.doc(LEDGER).save();
    let answer = server.round(&mut a, whole(LEDGER, bytes.clone()), 100);
    assert_eq!(answer.accepted, 3);
    // Sent again (a retried round), nothing is new.
    let again = server.round(&mut a, whole(LEDGER, bytes), 100);
    assert_eq!(again.accepted, 0);
    // A teammate receives the three changes.
    let answer = server.round(&mut b, Vec::new(), 100);
    let received: usize = answer.changes.iter().map(|d| d.changes.len()).sum();
    assert_eq!(received, 3);
    assert_eq!(b.doc(LEDGER).get_heads(), a.doc(LEDGER).get_heads());
}

#[test]
fn a_document_holding_another_devices_unsigned_change_is_refused_as_forged() {
    let server = Server::with_teams();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let mut b = server.device("caravan-1", "王老师", Role::Volunteer);
    b.add_visit(LEDGER, "磁铁");
    // `a` holds b's change (as from a bundle) and its own, and sends the document whole
    // without b's signature.
    let theirs = b.doc(LEDGER).save();
    let held = AutoCommit::load(&theirs)
        .unwrap()
        .with_actor(a.actor.clone());
    a.docs.insert(LEDGER.into(), held);
    a.add_visit(LEDGER, "水的三态");
    let document = a.doc(LEDGER).save();
    let refused = server
        .sync(&a.token, &request(0, whole(LEDGER, document.clone()), 100))
        .unwrap_err();
    assert_eq!(refused.reason, Refusal::ForgedActor, "{}", refused.message);
    // With b's signature it goes through.
    let b_change = b
        .doc(LEDGER)
        .get_last_local_change()
        .unwrap()
        .raw_bytes()
        .to_vec();
    let mut docs = whole(LEDGER, document);
    docs[0].signatures.push(b.sign(&b_change));
    let answer = server.sync(&a.token, &request(0, docs, 100)).unwrap();
    assert_eq!(answer.accepted, 2);
}

#[test]
fn hostile_documents_are_refused_and_store_nothing() {
    let server = Server::with_teams();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    a.add_visit(LEDGER, "水的三态");
    let good = a.doc(LEDGER).save();

    // A bomb: one text of zeros that deflates to almost nothing, past the inflated limit.
    let mut bomb = AutoCommit::new().with_actor(a.actor.clone());
    let text = "0".repeat(MAX_INFLATED_BYTES + 1024);
    bomb.put(automerge::ROOT, "x", text.as_str()).unwrap();
    let bomb = bomb.save();
    assert!(
        bomb.len() < MAX_INFLATED_BYTES / 100,
        "{} bytes",
        bomb.len()
    );

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() / 2].to_vec()),
        ("not automerge", b"hello, bureau".to_vec()),
        ("bomb", bomb),
    ];
    let mut damaged = good.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x55;
    cases.push(("damaged", damaged));
    for (name, bytes) in cases {
        match server.sync(&a.token, &request(0, whole(LEDGER, bytes), 100)) {
            Err(refused) => assert!(
                matches!(refused.reason, Refusal::Malformed | Refusal::TooLarge),
                "{name}: {refused:?}"
            ),
            Ok(answer) => assert_eq!(answer.accepted, 0, "{name} stored something"),
        }
    }
    // The real document still goes through, and it is all a teammate receives.
    let answer = server
        .sync(&a.token, &request(0, whole(LEDGER, good), 100))
        .unwrap();
    assert_eq!(answer.accepted, 1);
    let mut b = server.device("caravan-1", "王老师", Role::Volunteer);
    let answer = server.round(&mut b, Vec::new(), 100);
    let received: usize = answer.changes.iter().map(|d| d.changes.len()).sum();
    assert_eq!(received, 1);
}

#[test]
fn a_first_sync_that_asks_gets_the_documents_whole_in_rounds_then_the_log_from_there() {
    let server = Server::with_teams_config(fieldlog_bureau::Config {
        max_response_bytes: 1,
        ..Default::default()
    });
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let months = [
        "ledger/caravan-1/2026-03",
        "ledger/caravan-1/2026-04",
        LEDGER,
    ];
    for month in months {
        a.add_visit(month, "水的三态");
        a.add_visit(month, "磁铁");
        let bytes = a.doc(month).save();
        server.round(&mut a, whole(month, bytes), 100);
    }
    let mut b = server.device("caravan-1", "王老师", Role::Volunteer);
    b.resume = Some(String::new());
    let mut delivered = Vec::new();
    let mut cursors = Vec::new();
    loop {
        let answer = server.round(&mut b, Vec::new(), 100);
        for doc in &answer.changes {
            assert!(doc.changes.is_empty() && doc.document.is_some());
            delivered.push(doc.doc_id.clone());
        }
        cursors.push(answer.cursor);
        if answer.resume.is_none() {
            break;
        }
    }
    // One document a round (the byte budget is tiny), in order, all at one cursor.
    assert_eq!(delivered, months);
    assert!(
        cursors.iter().all(|c| *c == cursors[0] && *c > 0),
        "{cursors:?}"
    );
    for month in months {
        assert_eq!(b.doc(month).get_heads(), a.doc(month).get_heads());
    }
    // Then the log from that cursor: a new visit comes as a change.
    let next = a.add_visit(LEDGER, "电路");
    server.round(&mut a, docs(LEDGER, vec![next]), 100);
    let answer = server.round(&mut b, Vec::new(), 100);
    let received: usize = answer.changes.iter().map(|d| d.changes.len()).sum();
    assert_eq!((received, answer.resume.clone()), (1, None));
    assert_eq!(b.doc(LEDGER).get_heads(), a.doc(LEDGER).get_heads());
}
