//! Bundles: repeat imports are harmless, damaged or foreign files change nothing.

use crate::support::{send, team, today, visit};
use fieldlog_core::{Error, ExportScope, VisitFilter, bundle::BundleError};

#[test]
fn importing_twice_changes_nothing_the_second_time() {
    let mut devices = team(2);
    let (a, b) = devices.split_at_mut(1);
    let (a, b) = (&mut a[0], &mut b[0]);
    for i in 0..3 {
        a.store.add_visit(&visit("南山小学", i), today()).unwrap();
    }
    let (bundle, stats) = a.store.export_bundle(&ExportScope::All).unwrap();
    assert_eq!(stats.bytes, bundle.len());
    let first = b.store.import_bundle(&bundle).unwrap();
    assert!(first.applied >= 3, "{first:?}");
    let state = b.all_rows();
    let second = b.store.import_bundle(&bundle).unwrap();
    assert_eq!(second.applied, 0);
    assert_eq!(
        second.already_present,
        first.applied + first.already_present
    );
    assert_eq!(b.all_rows(), state, "a repeated import wrote something");
    assert_eq!(
        a.store.visits(&VisitFilter::default()).unwrap(),
        b.store.visits(&VisitFilter::default()).unwrap()
    );
}

#[test]
fn damaged_and_foreign_files_are_refused_without_a_trace() {
    let mut devices = team(2);
    let (a, b) = devices.split_at_mut(1);
    let (a, b) = (&mut a[0], &mut b[0]);
    a.store.add_visit(&visit("南山小学", 9), today()).unwrap();
    let (bundle, _) = a.store.export_bundle(&ExportScope::All).unwrap();
    let before = b.all_rows();

    let mut flipped = bundle.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    let mut newer = bundle.clone();
    newer[16] = 9;
    type Expect = fn(&BundleError) -> bool;
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("empty", vec![], |e| matches!(e, BundleError::NotABundle)),
        ("a photo", b"\xff\xd8\xff\xe0JFIF".to_vec(), |e| {
            matches!(e, BundleError::NotABundle)
        }),
        ("half", bundle[..bundle.len() / 2].to_vec(), |e| {
            matches!(e, BundleError::Damaged)
        }),
        ("header only", bundle[..20].to_vec(), |e| {
            matches!(e, BundleError::Damaged)
        }),
        ("one flipped bit", flipped, |e| {
            matches!(e, BundleError::Damaged)
        }),
        ("a newer format", newer, |e| {
            matches!(e, BundleError::UnsupportedVersion(9))
        }),
    ];
    for (name, bytes, expected) in cases {
        match b.store.import_bundle(&bytes) {
            Err(Error::Bundle(e)) => assert!(expected(&e), "{name}: {e:?}"),
            other => panic!("{name}: expected a bundle error, got {other:?}"),
        }
    }
    assert_eq!(b.all_rows(), before);
}

#[test]
fn exports_carry_only_what_the_peer_lacks() {
    let mut devices = team(2);
    let (a, b) = devices.split_at_mut(1);
    let (a, b) = (&mut a[0], &mut b[0]);
    for i in 0..10 {
        a.store.add_visit(&visit("南山小学", i), today()).unwrap();
    }
    send(a, b);
    // B answers, so A learns what B holds.
    send(b, a);
    let b_id = b.store.device().id.to_string();
    let (_, nothing_new) = a
        .store
        .export_bundle(&ExportScope::For(b_id.clone()))
        .unwrap();
    assert_eq!(nothing_new.changes, 0);

    a.store.add_visit(&visit("南山小学", 99), today()).unwrap();
    let (_, one) = a.store.export_bundle(&ExportScope::For(b_id)).unwrap();
    assert_eq!(one.changes, 1);
    let (_, by_name) = a
        .store
        .export_bundle(&ExportScope::For("设备2".into()))
        .unwrap();
    assert_eq!(by_name.changes, 1);
    let (_, all) = a.store.export_bundle(&ExportScope::All).unwrap();
    assert!(all.changes > 11, "{all:?}");
}

mod hostile {
    use super::*;
    use proptest::prelude::*;
    use sha2::Digest;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Any bytes, or a real bundle with bytes changed, cut or appended: the import
        /// either succeeds or is refused, never panics, and a refusal writes nothing.
        #[test]
        fn mangled_bundles_never_panic_or_half_apply(
            garbage in prop::collection::vec(any::<u8>(), 0..512),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut devices = team(2);
            let (a, b) = devices.split_at_mut(1);
            let (a, b) = (&mut a[0], &mut b[0]);
            a.store.add_visit(&visit("南山小学", 3), today()).unwrap();
            let (bundle, _) = a.store.export_bundle(&ExportScope::All).unwrap();
            let mut mangled = bundle.clone();
            for (at, byte) in &flips {
                let i = at.index(mangled.len());
                mangled[i] ^= byte;
            }
            // The same damage inside the compressed payload, re-framed with a valid checksum,
            // so it reaches the decoders behind the checksum.
            let mut plain = zstd::decode_all(&bundle[49..]).unwrap();
            for (at, byte) in &flips {
                let i = at.index(plain.len());
                plain[i] ^= byte;
            }
            plain.truncate(cut.index(plain.len() + 1));
            plain.extend(&garbage);
            let payload = zstd::encode_all(&plain[..], 1).unwrap();
            let mut reframed = bundle[..17].to_vec();
            reframed.extend(sha2::Sha256::digest(&payload));
            reframed.extend(payload);

            mangled.truncate(cut.index(mangled.len() + 1));
            mangled.extend(&garbage);
            for bytes in [garbage.clone(), mangled, reframed] {
                let before = b.all_rows();
                if b.store.import_bundle(&bytes).is_err() {
                    prop_assert_eq!(b.all_rows(), before);
                }
            }
        }
    }
}
