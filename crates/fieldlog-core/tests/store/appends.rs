//! New visits are appended to their month without loading it (`DocCache::rebase`): the
//! appended changes must be exactly what the loaded document would have made, whether the
//! month is cached, loaded later, edited in between, or written by a store older than the
//! recorded base.

use crate::support::{Device, send, team, today, visit};
use fieldlog_core::VisitFilter;
use fieldlog_domain::{Visit, VisitInput};

fn inputs(n: usize) -> Vec<VisitInput> {
    (0..n)
        .map(|i| {
            let mut input = visit(
                if i % 2 == 0 {
                    "南山小学"
                } else {
                    "石门县第二中学"
                },
                i as i64,
            );
            input.topic = format!("第{i}课");
            input
        })
        .collect()
}

/// The visits as the projection holds them, and as the stored documents give them when
/// loaded afresh (with their hashes checked) and projected again.
fn projected_and_loaded(d: &mut Device) -> (Vec<Visit>, Vec<Visit>) {
    let projected = d.store.visits(&VisitFilter::default()).unwrap();
    d.reopen();
    for (_, doc) in d.store.documents().unwrap() {
        automerge::Automerge::load(&doc.save()).unwrap();
    }
    d.store.rebuild_projection().unwrap();
    let loaded = d.store.visits(&VisitFilter::default()).unwrap();
    (projected, loaded)
}

#[test]
fn appended_visits_equal_what_the_loaded_month_gives_through_edits_imports_and_reopens() {
    let mut devices = team(2);
    let d = &mut devices[0];
    let first = d.store.add_visit(&inputs(1)[0], today()).unwrap();
    // The month is now cached; appends leave the copy behind and it catches up when used.
    d.store.add_visits(&inputs(30), today()).unwrap();
    let edited = d
        .store
        .edit_visit(
            first.id,
            &[("audience.students".into(), "77".into())],
            today(),
        )
        .unwrap();
    assert_eq!(edited.fields.audience.students, 77);
    d.store.add_visit(&inputs(3)[2], today()).unwrap();
    d.reopen();
    // Appended onto a month this process never loaded.
    d.store.add_visits(&inputs(5), today()).unwrap();
    // Appended, not rewritten: a write that loads the month compacts it at 64 chunks.
    for input in inputs(70) {
        d.store.add_visit(&input, today()).unwrap();
    }
    let conn = rusqlite::Connection::open(d.store.path()).unwrap();
    let chunks: i64 = conn
        .query_row(
            "SELECT count(*) FROM doc_chunks WHERE doc_id LIKE 'ledger/%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(chunks > 70, "{chunks} chunks");
    let (projected, loaded) = projected_and_loaded(d);
    assert_eq!(projected.len(), 107);
    assert_eq!(projected, loaded);

    // A teammate receives every change, and the documents agree.
    let (a, b) = devices.split_at_mut(1);
    send(&mut a[0], &mut b[0]);
    let theirs = b[0].store.visits(&VisitFilter::default()).unwrap();
    assert_eq!(theirs, loaded);
    let heads = |d: &mut Device| -> Vec<_> {
        d.store
            .documents()
            .unwrap()
            .into_iter()
            .map(|(id, doc)| (id.to_string(), doc.get_heads()))
            .collect()
    };
    assert_eq!(heads(&mut a[0]), heads(&mut b[0]));
}

#[test]
fn a_store_without_a_recorded_base_loads_the_month_and_records_it() {
    let mut d = team(1).pop().unwrap();
    d.store.add_visits(&inputs(4), today()).unwrap();
    let conn = rusqlite::Connection::open(d.store.path()).unwrap();
    conn.execute("DELETE FROM doc_heads", []).unwrap();
    d.reopen();
    d.store.add_visit(&inputs(5)[4], today()).unwrap();
    let recorded: i64 = conn
        .query_row("SELECT count(*) FROM doc_heads", [], |r| r.get(0))
        .unwrap();
    assert!(
        recorded > 0,
        "the save that loaded the month records its base"
    );
    let (projected, loaded) = projected_and_loaded(&mut d);
    assert_eq!(projected.len(), 5);
    assert_eq!(projected, loaded);
}

#[test]
fn a_base_left_stale_by_a_write_around_it_is_not_used() {
    let mut d = team(1).pop().unwrap();
    d.store.add_visits(&inputs(2), today()).unwrap();
    // Another writer appended a chunk without recording a base (as an older build would).
    let conn = rusqlite::Connection::open(d.store.path()).unwrap();
    conn.execute(
        "UPDATE doc_heads SET generation = generation - 1 WHERE doc_id LIKE 'ledger/%'",
        [],
    )
    .unwrap();
    d.store.add_visit(&inputs(3)[2], today()).unwrap();
    let (projected, loaded) = projected_and_loaded(&mut d);
    assert_eq!(projected.len(), 3);
    assert_eq!(projected, loaded);
}

#[test]
fn a_refused_import_names_the_visit_and_saves_nothing() {
    let mut d = team(1).pop().unwrap();
    let mut batch = inputs(3);
    batch[1].audience.students = -5;
    let before = d.all_rows();
    match d.store.add_visits(&batch, today()) {
        Err(fieldlog_core::Error::ImportedVisit { number, errors }) => {
            assert_eq!(number, 2);
            assert!(
                errors
                    .message(fieldlog_domain::Lang::ZhCn)
                    .contains("学生人数"),
                "{errors}"
            );
        }
        other => panic!("expected the second visit refused, got {other:?}"),
    }
    assert_eq!(d.all_rows(), before);
}
