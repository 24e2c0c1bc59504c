//! Answers from a bureau (or whoever sits in the middle of plain HTTP) that a device must not
//! trust: a canned HTTP server on a loopback port plays the bureau.

use crate::support::Device;
use fieldlog_core::Error;
use fieldlog_core::sync::decode_response;
use fieldlog_domain::Role;
use fieldlog_domain::sync::{DocChanges, EnrollResponse, SyncResponse};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

/// Serves `answers` in order, one per connection, on `127.0.0.1:0`; returns its URL.
fn canned(answers: Vec<(&'static str, Vec<u8>)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for (content_type, body) in answers {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut request = vec![0; length];
            let _ = reader.read_exact(&mut request);
            let mut stream = reader.into_inner();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    url
}

fn enrolled_answer() -> Vec<u8> {
    serde_json::to_vec(&EnrollResponse {
        token: "t".repeat(64),
        device_id: uuid::Uuid::now_v7().to_string(),
        team: "caravan-1".into(),
        member: "李老师".into(),
        role: Role::Volunteer,
        districts: vec!["南山区".into()],
    })
    .unwrap()
}

fn answer(changes: Vec<Vec<u8>>) -> Vec<u8> {
    let response = SyncResponse {
        accepted: 0,
        heads: Vec::new(),
        changes: vec![DocChanges {
            doc_id: "ledger/caravan-1/2026-05".into(),
            changes: changes.into_iter().map(Into::into).collect(),
            document: None,
            signatures: Vec::new(),
        }],
        cursor: 7,
        more: false,
        resume: None,
    };
    zstd::bulk::compress(&postcard::to_stdvec(&response).unwrap(), 3).unwrap()
}

/// A change chunk of type "compressed" that inflates to 64 MiB: a few hundred bytes.
fn compressed_bomb() -> Vec<u8> {
    use automerge::transaction::Transactable;
    let mut doc = automerge::AutoCommit::new();
    let visit = doc
        .put_object(
            automerge::ROOT,
            uuid::Uuid::now_v7().to_string(),
            automerge::ObjType::Map,
        )
        .unwrap();
    doc.put(&visit, "notes", "x".repeat(64 * 1024 * 1024))
        .unwrap();
    doc.commit();
    doc.get_last_local_change().unwrap().bytes().to_vec()
}

#[test]
fn an_answer_holding_a_compressed_change_is_refused_and_stores_nothing() {
    let mut device = Device::new("一号机", "caravan-1");
    let bomb = compressed_bomb();
    assert!(bomb.len() < 512 * 1024, "{} bytes", bomb.len());
    let sync = ("application/x-fieldlog-sync", answer(vec![bomb]));
    let url = canned(vec![("application/json", enrolled_answer()), sync]);
    fieldlog_core::sync::enroll(&mut device.store, &url, "CODE").unwrap();
    let before = device.all_rows();
    match fieldlog_core::sync::sync(&mut device.store, |_| {}) {
        Err(Error::BadResponse { detail }) => assert!(detail.contains("compressed"), "{detail}"),
        other => panic!("expected a refused answer, got {other:?}"),
    }
    assert_eq!(device.all_rows(), before);
    assert_eq!(device.store.enrollment().unwrap().unwrap().cursor, 0);
}

fn answer_with_document(document: Vec<u8>) -> Vec<u8> {
    let response = SyncResponse {
        accepted: 0,
        heads: Vec::new(),
        changes: vec![DocChanges {
            doc_id: "ledger/caravan-1/2026-05".into(),
            changes: Vec::new(),
            document: Some(document.into()),
            signatures: Vec::new(),
        }],
        cursor: 7,
        more: false,
        resume: None,
    };
    zstd::bulk::compress(&postcard::to_stdvec(&response).unwrap(), 3).unwrap()
}

#[test]
fn an_answer_holding_a_whole_document_is_taken_and_a_bomb_is_refused() {
    // A teammate's month, sent whole: every visit in it arrives.
    let mut teammate = Device::new("二号机", "caravan-1");
    teammate
        .store
        .import_schools_csv(crate::support::REGISTRY.as_bytes())
        .unwrap();
    for students in [10, 20] {
        teammate
            .store
            .add_visit(
                &crate::support::visit("南山小学", students),
                crate::support::today(),
            )
            .unwrap();
    }
    let (_, month) = teammate
        .store
        .documents()
        .unwrap()
        .into_iter()
        .find(|(id, _)| id.to_string().starts_with("ledger/"))
        .unwrap();

    // A document whose one text deflates from 40 MiB to a few kilobytes.
    use automerge::transaction::Transactable;
    let mut bomb = automerge::AutoCommit::new();
    bomb.put(automerge::ROOT, "x", "0".repeat(40 * 1024 * 1024))
        .unwrap();
    let bomb = bomb.save();
    assert!(bomb.len() < 512 * 1024, "{} bytes", bomb.len());

    let mut device = Device::new("一号机", "caravan-1");
    let url = canned(vec![
        ("application/json", enrolled_answer()),
        ("application/x-fieldlog-sync", answer_with_document(bomb)),
        (
            "application/x-fieldlog-sync",
            answer_with_document(month.save()),
        ),
    ]);
    fieldlog_core::sync::enroll(&mut device.store, &url, "CODE").unwrap();
    let before = device.all_rows();
    match fieldlog_core::sync::sync(&mut device.store, |_| {}) {
        Err(Error::BadResponse { detail }) => assert!(detail.contains("inflates"), "{detail}"),
        other => panic!("expected a refused answer, got {other:?}"),
    }
    assert_eq!(device.all_rows(), before);
    fieldlog_core::sync::sync(&mut device.store, |_| {}).unwrap();
    let heads = |d: &mut Device| {
        d.store
            .documents()
            .unwrap()
            .into_iter()
            .find(|(id, _)| id.to_string().starts_with("ledger/"))
            .map(|(_, doc)| doc.get_heads())
    };
    assert_eq!(heads(&mut device), heads(&mut teammate));
    assert_eq!(device.store.enrollment().unwrap().unwrap().cursor, 7);
}

#[test]
fn an_answer_that_inflates_beyond_the_limit_is_refused() {
    let huge = vec![0u8; 40 * 1024 * 1024];
    let body = zstd::bulk::compress(&huge, 3).unwrap();
    assert!(matches!(
        decode_response(&body),
        Err(Error::BadResponse { .. })
    ));
}

#[test]
fn a_hostile_members_answer_is_refused_and_keeps_the_list_held() {
    let mut device = Device::new("一号机", "caravan-1");
    let good = r#"{"members": [{"team": "caravan-1", "name": "李老师", "role": "volunteer",
                    "districts": ["南山区"]}]}"#
        .as_bytes()
        .to_vec();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    let bad_district = br#"{"members": [{"team": "caravan-1", "name": "x", "role": "volunteer",
                            "districts": ["a/b"]}]}"#
        .to_vec();
    let huge = vec![b' '; 80 * 1024 * 1024];
    let url = canned(vec![
        ("application/json", enrolled_answer()),
        ("application/json", good),
        ("application/json", deep),
        ("application/json", bad_district),
        ("application/json", huge),
    ]);
    fieldlog_core::sync::enroll(&mut device.store, &url, "CODE").unwrap();
    let members = fieldlog_core::sync::refresh_members(&mut device.store).unwrap();
    assert_eq!(members.len(), 1);
    for _ in 0..3 {
        let refused = fieldlog_core::sync::refresh_members(&mut device.store);
        assert!(
            matches!(
                refused,
                Err(Error::BadResponse { .. } | Error::Network { .. })
            ),
            "{refused:?}"
        );
        assert_eq!(
            device.store.members().unwrap(),
            members,
            "the list held stays"
        );
    }
}
