//! Every refusal: its status and reason, and a bureau left exactly as it was (the change log
//! and the documents' rows compared before and after; where a document was touched, a
//! later round shows the in-memory copy is clean too).

use crate::support::*;
use fieldlog_domain::sync::{
    DocChanges, MAX_BODY_BYTES, MAX_CHANGES_PER_REQUEST, MAX_INFLATED_BYTES, Refusal, SyncRequest,
};
use fieldlog_domain::{Role, SchoolStatus};
use std::io::Write;

/// caravan-1's devices A and B; A's first visit is stored, and the registry of 南山区
/// holds one registered school.
fn world() -> (Server, Device, Device) {
    let server = Server::with_teams();
    let mut a = server.device("caravan-1", "李老师", Role::Volunteer);
    let b = server.device("caravan-1", "张老师", Role::Volunteer);
    let visit = a.add_visit(LEDGER, "水的三态");
    assert_eq!(
        server
            .round(&mut a, docs(LEDGER, vec![visit]), 100)
            .accepted,
        1
    );
    let csv = "name,district,area\n南山小学,南山区,城区\n";
    server.bureau.import_schools_csv(csv.as_bytes()).unwrap();
    (server, a, b)
}

/// Sends `body`, expects the refusal, and checks nothing changed.
fn refused(
    server: &Server,
    token: Option<&str>,
    body: Vec<u8>,
    status: u16,
    reason: Refusal,
) -> String {
    let before = server.stored();
    let refused = server.sync_body(token, body).unwrap_err();
    assert_eq!(
        (refused.status, refused.reason),
        (status, reason),
        "{}",
        refused.message
    );
    assert_eq!(server.stored(), before, "a refused request stores nothing");
    refused.message
}

/// A request carrying one fresh visit of `device`'s, as a well-formed body.
fn fresh_visit(device: &mut Device, doc_id: &str) -> Vec<u8> {
    let visit = device.add_visit(doc_id, "新的一课");
    encode(&request(device.cursor, docs(doc_id, vec![visit]), 100))
}

#[test]
fn no_token() {
    let (server, mut a, _) = world();
    let body = fresh_visit(&mut a, LEDGER);
    refused(&server, None, body, 401, Refusal::Unauthenticated);
}

#[test]
fn wrong_token() {
    let (server, mut a, _) = world();
    let body = fresh_visit(&mut a, LEDGER);
    let wrong = "0".repeat(64);
    refused(&server, Some(&wrong), body, 401, Refusal::Unauthenticated);
}

#[test]
fn revoked_token() {
    let (server, mut a, _) = world();
    server.bureau.revoke(&a.device_id).unwrap();
    let body = fresh_visit(&mut a, LEDGER);
    let token = a.token.clone();
    refused(&server, Some(&token), body, 401, Refusal::Revoked);
}

#[test]
fn another_teams_ledger() {
    let (server, mut a, _) = world();
    let body = fresh_visit(&mut a, OTHER_LEDGER);
    let token = a.token.clone();
    let message = refused(&server, Some(&token), body, 403, Refusal::OutOfScope);
    assert!(message.contains(OTHER_LEDGER), "{message}");
    // Nor the registry of a district outside the team's.
    let body = encode(&request(0, docs("registry/西山区", Vec::new()), 100));
    refused(&server, Some(&token), body, 403, Refusal::OutOfScope);
}

#[test]
fn a_volunteer_editing_a_registered_school() {
    let (server, mut a, _) = world();
    server.round(&mut a, Vec::new(), 100);
    let school = fieldlog_core::ledger::record_keys(a.doc(REGISTRY))[0].clone();
    let edit = a.set(REGISTRY, &school, "name", "改名小学");
    // Together with a good change to another document: the whole request is refused.
    let visit = a.add_visit(LEDGER, "第二课");
    let mut both = docs(LEDGER, vec![visit.clone()]);
    both.extend(docs(REGISTRY, vec![edit]));
    let body = encode(&request(a.cursor, both, 100));
    let token = a.token.clone();
    let message = refused(&server, Some(&token), body, 403, Refusal::RegistryEdit);
    assert!(message.contains("南山小学"), "{message}");

    // The bureau's copies are clean: the visit alone goes in on top of what was there, and
    // another device's pending school lands on the imported registry, not on the edit.
    let answer = server.round(&mut a, docs(LEDGER, vec![visit.clone()]), 100);
    assert_eq!(answer.accepted, 1);
    assert_eq!(heads_of(&answer, LEDGER), [hash_of(&visit)]);
    let mut b = server.device("caravan-1", "陈老师", Role::Volunteer);
    server.round(&mut b, Vec::new(), 100);
    let (_, pending) = b.add_school("山脚小学", SchoolStatus::Pending);
    let answer = server.round(&mut b, docs(REGISTRY, vec![pending.clone()]), 100);
    assert_eq!(answer.accepted, 1);
    assert_eq!(heads_of(&answer, REGISTRY), [hash_of(&pending)]);
}

#[test]
fn a_volunteer_sending_a_decision_or_a_target() {
    let (server, mut a, _) = world();
    let token = a.token.clone();
    let visit = a.visit_key(1);
    let decision = a.verify("review/南山区/2026", &visit);
    let body = encode(&request(
        a.cursor,
        docs("review/南山区/2026", vec![decision]),
        100,
    ));
    let message = refused(&server, Some(&token), body, 403, Refusal::NotCoordinator);
    assert!(message.contains("review/南山区/2026"), "{message}");
    let target = a.set_target("targets/caravan-1");
    let body = encode(&request(
        a.cursor,
        docs("targets/caravan-1", vec![target]),
        100,
    ));
    refused(&server, Some(&token), body, 403, Refusal::NotCoordinator);

    // A coordinator of the region decides; of another team's targets, it may not.
    let mut c = server.device("bureau", "王主任", Role::Coordinator);
    let decision = c.verify("review/南山区/2026", &visit);
    let answer = server.round(&mut c, docs("review/南山区/2026", vec![decision]), 100);
    assert_eq!(answer.accepted, 1);
    let target = c.set_target("targets/caravan-1");
    let body = encode(&request(
        c.cursor,
        docs("targets/caravan-1", vec![target]),
        100,
    ));
    let token = c.token.clone();
    refused(&server, Some(&token), body, 403, Refusal::NotCoordinator);
    let target = c.set_target("targets/bureau");
    assert_eq!(
        server
            .round(&mut c, docs("targets/bureau", vec![target]), 100)
            .accepted,
        1
    );
}

#[test]
fn a_volunteer_registering_a_school() {
    let (server, mut a, _) = world();
    let token = a.token.clone();
    // Entering a school as registered…
    let (_, registered) = a.add_school("新建小学", SchoolStatus::Registered);
    let body = encode(&request(0, docs(REGISTRY, vec![registered]), 100));
    refused(&server, Some(&token), body, 403, Refusal::RegistryEdit);

    // …or registering its own pending one.
    let mut b = server.device("caravan-1", "陈老师", Role::Volunteer);
    let (id, pending) = b.add_school("山脚小学", SchoolStatus::Pending);
    assert_eq!(
        server
            .round(&mut b, docs(REGISTRY, vec![pending]), 100)
            .accepted,
        1
    );
    let register = b.set(REGISTRY, &id.to_string(), "status", "registered");
    let body = encode(&request(b.cursor, docs(REGISTRY, vec![register]), 100));
    let token = b.token.clone();
    refused(&server, Some(&token), body, 403, Refusal::RegistryEdit);
}

#[test]
fn a_volunteer_editing_another_devices_pending_school() {
    let (server, mut a, mut b) = world();
    let (id, pending) = a.add_school("山脚小学", SchoolStatus::Pending);
    assert_eq!(
        server
            .round(&mut a, docs(REGISTRY, vec![pending]), 100)
            .accepted,
        1
    );
    server.round(&mut b, Vec::new(), 100);
    let edit = b.set(REGISTRY, &id.to_string(), "name", "山脚村小学");
    let body = encode(&request(b.cursor, docs(REGISTRY, vec![edit]), 100));
    let token = b.token.clone();
    let message = refused(&server, Some(&token), body, 403, Refusal::RegistryEdit);
    assert!(message.contains("another device"), "{message}");
}

#[test]
fn a_change_signed_with_another_devices_actor() {
    let (server, mut a, mut b) = world();
    // A change A made but never sent, carried by B.
    let carried = a.add_visit(LEDGER, "第二课");
    let body = encode(&request(0, docs(LEDGER, vec![carried]), 100));
    let token = b.token.clone();
    let message = refused(&server, Some(&token), body, 403, Refusal::ForgedActor);
    assert!(message.contains(&a.actor.to_hex_string()), "{message}");

    // A change the bureau already holds is merely skipped, whoever relays it.
    let held = changes_of(&server.round(&mut b, Vec::new(), 100), LEDGER);
    assert_eq!(held.len(), 1);
    let answer = server.round(&mut b, docs(LEDGER, held), 100);
    assert_eq!(answer.accepted, 0);
    // And B's own change goes in on the clean document.
    let own = b.add_visit(LEDGER, "B 的一课");
    let answer = server.round(&mut b, docs(LEDGER, vec![own.clone()]), 100);
    assert_eq!(answer.accepted, 1);
    assert_eq!(heads_of(&answer, LEDGER).len(), 1);
    assert_eq!(heads_of(&answer, LEDGER), [hash_of(&own)]);
}

#[test]
fn an_oversized_body() {
    let (server, a, _) = world();
    let body = vec![0u8; MAX_BODY_BYTES + 1];
    refused(&server, Some(&a.token), body, 413, Refusal::TooLarge);
}

#[test]
fn a_zstd_bomb() {
    let (server, a, _) = world();
    // 100 MB of zeros compresses to a few kilobytes.
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..100 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 64 * 1024 && 100 * zeros.len() > MAX_INFLATED_BYTES);
    refused(&server, Some(&a.token), bomb, 413, Refusal::TooLarge);
}

#[test]
fn a_garbage_body() {
    let (server, a, _) = world();
    let token = Some(a.token.as_str());
    refused(
        &server,
        token,
        b"this is not zstd at all".to_vec(),
        400,
        Refusal::Malformed,
    );
    let not_postcard = zstd::encode_all(&[0xffu8; 64][..], 3).unwrap();
    refused(&server, token, not_postcard, 400, Refusal::Malformed);
    let mut trailing = postcard::to_allocvec(&request(0, Vec::new(), 100)).unwrap();
    trailing.extend_from_slice(b"junk");
    let trailing = zstd::encode_all(&trailing[..], 3).unwrap();
    refused(&server, token, trailing, 400, Refusal::Malformed);
}

#[test]
fn a_bad_document_id_or_change() {
    let (server, a, _) = world();
    let token = Some(a.token.as_str());
    let body = encode(&request(
        0,
        docs("ledger/caravan-1/2026-13", Vec::new()),
        100,
    ));
    refused(&server, token, body, 400, Refusal::Malformed);
    let body = encode(&request(
        0,
        docs(LEDGER, vec![b"not a change".to_vec()]),
        100,
    ));
    refused(&server, token, body, 400, Refusal::Malformed);
}

#[test]
fn another_protocol_version() {
    let (server, a, _) = world();
    let body = encode(&SyncRequest {
        protocol: 1,
        ..request(0, Vec::new(), 100)
    });
    refused(
        &server,
        Some(&a.token),
        body,
        400,
        Refusal::UnsupportedProtocol,
    );
}

#[test]
fn too_many_changes() {
    let (server, mut a, _) = world();
    let visit = a.add_visit(LEDGER, "第二课");
    let body = encode(&request(
        0,
        vec![DocChanges {
            doc_id: LEDGER.into(),
            changes: vec![visit.into(); MAX_CHANGES_PER_REQUEST + 1],
            document: None,
            signatures: Vec::new(),
        }],
        100,
    ));
    refused(&server, Some(&a.token), body, 413, Refusal::TooManyChanges);
}
