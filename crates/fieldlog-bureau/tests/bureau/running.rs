//! The bureau as a service: stopped by a signal with a round in flight, backed up and
//! restored under traffic, served over TLS with its certificate reloaded.

use crate::operations::{Process, code, init, serve_command, signal};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long a test waits on the bureau before it fails (nothing here should take long).
const BOUND: Duration = Duration::from_secs(20);

/// An HTTP answer read off a raw connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Reads one answer (or an interim `100 Continue`), its body as long as its
/// `Content-Length`, a byte at a time so nothing after it is taken.
fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; if status >= 200 { length } else { 0 }];
    stream.read_exact(&mut body).unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

/// Reads `stderr` until a line containing `text`; panics if it ends first.
fn wait_for_line(stderr: &mut impl BufRead, text: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        let n = stderr.read_line(&mut line).unwrap();
        assert!(n > 0, "the bureau's stderr ended before {text:?}");
        if line.contains(text) {
            return;
        }
    }
}

/// One change recording a visit in caravan-1's ledger, written with `actor`.
fn visit_change(actor: &automerge::ActorId) -> Vec<u8> {
    use automerge::transaction::Transactable;
    let mut doc = automerge::AutoCommit::new().with_actor(actor.clone());
    let visit = doc
        .put_object(
            automerge::ROOT,
            uuid::Uuid::now_v7().to_string(),
            automerge::ObjType::Map,
        )
        .unwrap();
    doc.put(&visit, "topic", "水的三态").unwrap();
    doc.put(&visit, "date", "2026-05-20").unwrap();
    doc.get_last_local_change().unwrap().raw_bytes().to_vec()
}

/// Changes stored by the bureau in `dir`.
fn stored_changes(dir: &std::path::Path) -> i64 {
    let db = rusqlite::Connection::open(dir.join(fieldlog_bureau::sqlite::DB_FILE)).unwrap();
    db.query_row("SELECT count(*) FROM changes", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn sigterm_stops_accepting_finishes_the_round_in_flight_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    init(dir);
    let mut command = serve_command(
        dir,
        // A grace far longer than the test, so only finishing the round can end it.
        &["--shutdown-grace", "60", "--body-stall-timeout", "60"],
        &[("FIELDLOG_LOG", "info")],
    );
    command.stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut bureau = Process::ready(child, false);
    let addr = bureau.url.trim_start_matches("http://").to_string();

    // A device's round, its body sent in two pieces: the bureau has checked the token and
    // is reading the body (its `100 Continue`) when SIGTERM comes.
    let actor = automerge::ActorId::random();
    let enrolled = {
        let request = fieldlog_domain::sync::EnrollRequest {
            code: code(dir, "李老师"),
            device_name: "一号机".into(),
            actors: vec![actor.to_hex_string()],
            signing_key: None,
        };
        let body = ureq::post(format!("{}/v1/enroll", bureau.url))
            .content_type("application/json")
            .send(serde_json::to_vec(&request).unwrap())
            .unwrap()
            .body_mut()
            .read_to_vec()
            .unwrap();
        serde_json::from_slice::<fieldlog_domain::sync::EnrollResponse>(&body).unwrap()
    };
    let body = crate::support::encode(&crate::support::request(
        0,
        crate::support::docs("ledger/caravan-1/2026-05", vec![visit_change(&actor)]),
        100,
    ));
    let before = stored_changes(dir);
    let mut round = TcpStream::connect(&addr).unwrap();
    round.set_read_timeout(Some(BOUND)).unwrap();
    write!(
        round,
        "POST /v1/sync HTTP/1.1\r\nHost: bureau\r\nAuthorization: Bearer {}\r\n\
         Content-Type: {}\r\nContent-Encoding: zstd\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\n\r\n",
        enrolled.token,
        fieldlog_domain::sync::SYNC_CONTENT_TYPE,
        body.len()
    )
    .unwrap();
    assert_eq!(read_answer(&mut round).status, 100);
    let (first, rest) = body.split_at(body.len() / 2);
    round.write_all(first).unwrap();
    round.flush().unwrap();

    signal(&bureau.child, "TERM");
    wait_for_line(&mut stderr, "shutting down");
    round.write_all(rest).unwrap();
    let answer = read_answer(&mut round);
    assert_eq!(answer.status, 200, "{answer:?}");
    let response: fieldlog_domain::sync::SyncResponse =
        postcard::from_bytes(&zstd::decode_all(&answer.body[..]).unwrap()).unwrap();
    assert_eq!(response.accepted, 1, "the round in flight was stored");
    // The listener was closed before the rounds in flight were waited for.
    assert!(TcpStream::connect(&addr).is_err(), "still accepting");
    // Its connection closes with it rather than wait for another request.
    assert!(
        answer
            .headers
            .iter()
            .any(|(n, v)| n == "connection" && v == "close"),
        "{answer:?}"
    );
    let start = Instant::now();
    let status = bureau.child.wait().unwrap();
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
    assert!(
        start.elapsed() < BOUND,
        "it waited for its grace, not for the round"
    );
    wait_for_line(&mut stderr, "stopped");
    assert_eq!(stored_changes(dir), before + 1);
}
