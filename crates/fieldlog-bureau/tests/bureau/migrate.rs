//! `migrate`: an embedded bureau copied into PostgreSQL + S3, checked, and served from
//! there; its devices go on from their cursors (nothing resent, nothing missed) and its
//! photos come from the bucket.

use crate::support::{Server, docs, hash_of};
use fieldlog_bureau::{Config, Database, S3Store};
use fieldlog_domain::Role;
use fieldlog_tests::backend::Backend;
use fieldlog_tests::postgres::PgCluster;
use std::sync::Arc;

const LEDGER: &str = "ledger/caravan-1/2026-05";

#[test]
fn an_embedded_bureau_moves_to_postgres_and_s3_and_its_devices_go_on_from_their_cursors() {
    if PgCluster::bin_or_skip("an_embedded_bureau_moves_to_postgres…").is_none() {
        return;
    }
    let old = Server::embedded(Config::default());
    old.add_usual_teams();
    let mut a = old.device("caravan-1", "李老师", Role::Volunteer);
    let mut b = old.device("caravan-1", "张老师", Role::Volunteer);
    for topic in ["水的三态", "磁铁", "电路"] {
        let visit = a.add_visit(LEDGER, topic);
        assert_eq!(
            old.round(&mut a, docs(LEDGER, vec![visit]), 100).accepted,
            1
        );
    }
    let answer = old.round(&mut b, Vec::new(), 100);
    assert_eq!(crate::support::changes_of(&answer, LEDGER).len(), 3);
    // A photo, uploaded by a real device store; both devices catch up with it.
    let (mut store, _store_dir, photo) = old.photographer();
    fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
    for device in [&mut a, &mut b] {
        while old.round(device, Vec::new(), 100).more {}
    }
    let photo_bytes = old.complete_blob(&photo.display_sha256).unwrap();
    let report = old.bureau.report(&Default::default()).unwrap();
    let devices = old.bureau.devices().unwrap();

    // The copy: into an empty database, the photo files into a bucket.
    let url = Backend::fresh_database();
    let s3 = Backend::s3_server();
    let bucket = S3Store::new(&s3.settings(crate::support::S3_PREFIX)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let migrated =
        fieldlog_bureau::migrate::to_postgres(old.dir.path(), &url, Some((&bucket, &runtime)))
            .unwrap();
    assert_eq!(migrated.devices, devices.len());
    assert_eq!(migrated.teams, 3);
    assert!(
        migrated.blobs >= 2,
        "the display copy and the thumbnail: {migrated:?}"
    );
    // Again into the same database: refused, nothing touched.
    let again = fieldlog_bureau::migrate::to_postgres(old.dir.path(), &url, None).unwrap_err();
    assert!(
        again.to_string().contains("already holds a bureau"),
        "{again}"
    );
    drop(old);

    let new = Server::on(
        Config {
            database: Database::Postgres { url },
            blob_store: Some(Arc::new(bucket)),
            ..Config::default()
        },
        crate::support::PhotoStore::S3(s3),
    );
    assert_eq!(new.bureau.report(&Default::default()).unwrap(), report);
    assert_eq!(new.bureau.devices().unwrap(), devices);
    assert_eq!(
        new.complete_blob(&photo.display_sha256).unwrap(),
        photo_bytes
    );

    // Each device goes on from its cursor: nothing again, then only what is new.
    let answer = new.round(&mut b, Vec::new(), 100);
    assert!(
        answer.changes.is_empty(),
        "nothing resent: {:?}",
        answer.changes
    );
    let fourth = a.add_visit(LEDGER, "光的折射");
    assert_eq!(
        new.round(&mut a, docs(LEDGER, vec![fourth.clone()]), 100)
            .accepted,
        1
    );
    let answer = new.round(&mut b, Vec::new(), 100);
    let received = crate::support::changes_of(&answer, LEDGER);
    assert_eq!(received.len(), 1);
    assert_eq!(hash_of(&received[0]), hash_of(&fourth));
    // The photo now comes from the bucket.
    let fetched = new.fetch_blob(&a.token, &photo.display_sha256);
    assert_eq!(fetched, photo_bytes);
}
