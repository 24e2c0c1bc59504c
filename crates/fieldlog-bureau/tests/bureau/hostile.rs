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

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn damaged_requests_are_refused_or_applied_never_a_crash(
        layer in prop_oneof![Just(Layer::Compressed), Just(Layer::Postcard), Just(Layer::Change)],
        edits in proptest::collection::vec((any::<u16>(), any::<u8>(), any::<u8>()), 1..8),
    ) {
        let server = Server::with_teams();
        let mut device = server.device("caravan-1", "李老师", Role::Volunteer);
        let record = server.bureau.authenticate(&device.token).unwrap();
        let visit = device.add_visit(LEDGER, "水的三态");
        let request = request(0, vec![DocChanges {
            doc_id: LEDGER.into(),
            changes: vec![visit.into()],
            signatures: Vec::new(),
        }], 100);

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
            .sync(&device.token, &crate::support::request(0, docs(LEDGER, vec![next]), 100))
            .unwrap();
        prop_assert_eq!(answer.accepted, 1);
    }
}
