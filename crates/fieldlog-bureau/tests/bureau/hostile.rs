//! Hostile bodies: a valid sync request damaged at each layer (the zstd frame, the postcard
//! encoding behind it, the Automerge change inside) is answered with a refusal or applied,
//! never with a panic or an internal error, and the bureau keeps working.

use crate::support::*;
use fieldlog_domain::Role;
use fieldlog_domain::sync::{DocChanges, SyncRequest};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Layer {
    Compressed,
    Postcard,
    Change,
}

/// Flips, overwrites, cuts or splices bytes of `data`.
fn mangle(data: &mut Vec<u8>, edits: &[(u16, u8, u8)]) {
    for &(at, byte, how) in edits {
        if data.is_empty() {
            return;
        }
        let at = usize::from(at) % data.len();
        match how % 4 {
            0 => data[at] ^= byte | 1,
            1 => data[at] = byte,
            2 => data.truncate(at),
            _ => {
                data.splice(at..at, std::iter::repeat_n(byte, usize::from(byte % 32)))
                    .for_each(drop);
            }
        }
    }
}

fn damaged_body(request: &SyncRequest, layer: Layer, edits: &[(u16, u8, u8)]) -> Vec<u8> {
    match layer {
        Layer::Compressed => {
            let mut body = encode(request);
            mangle(&mut body, edits);
            body
        }
        Layer::Postcard => {
            let mut plain = postcard::to_allocvec(request).unwrap();
            mangle(&mut plain, edits);
            zstd::encode_all(&plain[..], 3).unwrap()
        }
        Layer::Change => {
            let mut request = request.clone();
            let change = &mut request.docs[0].changes[0];
            let mut bytes = change.to_vec();
            mangle(&mut bytes, edits);
            *change = bytes.into();
            encode(&request)
        }
    }
}

/// 128 damaged requests against one bureau (a new device each), which must keep working
/// after every one of them.
#[test]
fn damaged_requests_are_refused_or_applied_never_a_crash() {
    // 128 devices enroll from 127.0.0.1; enrollment's own limit has its test.
    let mut config = fieldlog_bureau::Config::default();
    config.serve.enroll_rate = fieldlog_bureau::RateLimit::per_minute(10_000);
    let server = Server::with_teams_config(config);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (
        prop_oneof![
            Just(Layer::Compressed),
            Just(Layer::Postcard),
            Just(Layer::Change)
        ],
        proptest::collection::vec((any::<u16>(), any::<u8>(), any::<u8>()), 1..8),
    );
    let devices = std::sync::atomic::AtomicUsize::new(0);
    let outcome = runner.run(&strategy, |(layer, edits)| {
        let n = devices.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut device = server.device("caravan-1", &format!("李老师{n}"), Role::Volunteer);
        let record = server.bureau.authenticate(&device.token).unwrap();
        let visit = device.add_visit(LEDGER, "水的三态");
        let request = request(
            0,
            vec![DocChanges {
                doc_id: LEDGER.into(),
                changes: vec![visit.into()],
                document: None,
                signatures: Vec::new(),
            }],
            100,
        );

        let body = damaged_body(&request, layer, &edits);
        // A panic fails the case too: proptest catches it and shrinks.
        if let Err(error) = server.bureau.sync(&record, &body) {
            prop_assert!(
                error.refusal().is_some(),
                "a {layer:?} body caused an internal error: {error:?}"
            );
        }
        // Whatever happened, the device's real request still goes through.
        let answer = server.sync(&device.token, &request).unwrap();
        prop_assert!(answer.accepted <= 1);
        let next = device.add_visit(LEDGER, "磁铁");
        let answer = server
            .sync(
                &device.token,
                &crate::support::request(answer.cursor, docs(LEDGER, vec![next]), 100),
            )
            .unwrap();
        prop_assert_eq!(answer.accepted, 1);
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// A coordinator device (a stolen one, say) sends decisions that make no sense: a visit
/// merged into itself, a cycle, merges into visits nobody holds, an unknown kind, fields of
/// the wrong type. The bureau takes or refuses each without failing, its figures stay what
/// the real visits give, and it goes on serving.
#[test]
fn nonsense_decisions_leave_the_figures_sane() {
    use automerge::transaction::Transactable;
    use fieldlog_domain::DecisionKind;
    let server = Server::with_teams();
    let (mut store, _dir, _photo) = server.photographer();
    fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
    let real = store.visits(&Default::default()).unwrap()[0].id;
    let before = server.bureau.report(&Default::default()).unwrap();
    assert_eq!(before.visits, 1);

    let mut c = server.device("bureau", "王主任", Role::Coordinator);
    server.round(&mut c, Vec::new(), 100);
    let review = "review/南山区/2026";
    let nobody = fieldlog_domain::VisitId(uuid::Uuid::now_v7());
    let nobody_else = fieldlog_domain::VisitId(uuid::Uuid::now_v7());
    let mut changes = vec![
        c.decide(review, DecisionKind::Merge, Some(real), Some(real)),
        c.decide(review, DecisionKind::Merge, Some(real), Some(nobody)),
        c.decide(review, DecisionKind::Merge, Some(nobody), Some(real)),
        c.decide(review, DecisionKind::Merge, Some(nobody_else), Some(nobody)),
        c.decide(review, DecisionKind::Merge, Some(nobody), Some(nobody_else)),
        c.decide(review, DecisionKind::Unmerge, None, None),
        c.decide(review, DecisionKind::Distinct, Some(real), Some(real)),
        c.decide(review, DecisionKind::Resolve, Some(real), None),
        c.decide(review, DecisionKind::SchoolMerge, None, None),
    ];
    // A record with an unknown kind and fields of the wrong types.
    let doc = c.doc(review);
    let odd = doc
        .put_object(
            automerge::ROOT,
            uuid::Uuid::now_v7().to_string(),
            automerge::ObjType::Map,
        )
        .unwrap();
    doc.put(&odd, "kind", "explode").unwrap();
    doc.put(&odd, "visit", 42).unwrap();
    doc.put(&odd, "at", "yesterday").unwrap();
    doc.commit();
    changes.push(doc.get_last_local_change().unwrap().raw_bytes().to_vec());
    let answer = server.round(&mut c, docs(review, changes), 100);
    assert_eq!(answer.accepted, 10, "every change is within the layout");

    // The real visit was merged into a visit nobody holds, which a cycle with another
    // unknown visit surrounds: it stops counting, as a coordinator said, and nothing fails.
    let after = server.bureau.report(&Default::default()).unwrap();
    assert_eq!((after.visits, after.duplicates_merged), (0, 1), "{after:?}");
    server
        .bureau
        .review_queue("2026-05-20".parse().unwrap(), 14)
        .unwrap();
    server.bureau.targets(None, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rows = server
        .bureau
        .export(
            fieldlog_core::decide::Export::LedgerXlsx,
            &dir.path().join("ledger.xlsx"),
            &Default::default(),
            chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
        )
        .unwrap();
    assert_eq!(rows, 0);
    // An unmerge puts it back, and the bureau still syncs devices.
    let undo = c.decide(review, DecisionKind::Unmerge, Some(real), None);
    assert_eq!(
        server.round(&mut c, docs(review, vec![undo]), 100).accepted,
        1
    );
    assert_eq!(server.bureau.report(&Default::default()).unwrap(), before);
    fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
}
