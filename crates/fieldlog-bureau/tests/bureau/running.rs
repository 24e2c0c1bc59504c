//! The bureau as a service: stopped by a signal with a round in flight, backed up and
//! restored under traffic, served over TLS with its certificate reloaded.

use crate::operations::{Process, admin, code, command, init, photographer, serve_command, signal};
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
    let db = rusqlite::Connection::open(dir.join(fieldlog_bureau::DB_FILE)).unwrap();
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

/// A caravan-1 device store enrolled at `url` as `member` and synced once (for the registry).
fn device(
    dir: &std::path::Path,
    url: &str,
    member: &str,
) -> (fieldlog_core::Store, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut store = fieldlog_core::Store::init(
        &data.path().join("data"),
        member,
        "caravan-1",
        fieldlog_core::Options::default(),
    )
    .unwrap();
    fieldlog_core::sync::enroll(&mut store, url, &code(dir, member)).unwrap();
    fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
    (store, data)
}

/// Records a visit at 南山小学.
fn add_visit(store: &mut fieldlog_core::Store, students: i64) -> fieldlog_domain::VisitId {
    let input = serde_json::from_value(serde_json::json!({
        "school": "南山小学", "activities": ["lecture"], "audience": {"students": students},
    }))
    .unwrap();
    store
        .add_visit(&input, chrono::Local::now().date_naive())
        .unwrap()
        .id
}

/// The ids of the visits a store holds.
fn visit_ids(store: &fieldlog_core::Store) -> std::collections::BTreeSet<String> {
    store
        .visits(&fieldlog_core::VisitFilter::default())
        .unwrap()
        .into_iter()
        .map(|v| v.id.to_string())
        .collect()
}

/// The ids of the visits the bureau in `dir` holds (its CLI).
fn bureau_visit_ids(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    let json: serde_json::Value = serde_json::from_str(&admin(dir, &["--json", "visits"])).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_backup_taken_under_sync_traffic_restores_all_it_held_and_devices_sync_on_with_it() {
    let root = tempfile::tempdir().unwrap();
    let (live, backup, restored) = (
        root.path().join("live"),
        root.path().join("backup"),
        root.path().join("restored"),
    );
    init(&live);
    let mut bureau = Process::serve(&live, &[], &[]);
    let url = bureau.url.clone();
    let (mut a, _a_dir, _) = photographer(&live, &url);
    fieldlog_core::sync::sync(&mut a, |_| {}).unwrap();
    let (b, _b_dir) = device(&live, &url, "王老师");

    // Device b records and syncs visits without pause while the backup is taken.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (synced, first_round) = std::sync::mpsc::channel();
    let traffic = std::thread::spawn({
        let stop = stop.clone();
        let mut b = b;
        move || {
            let mut rounds = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || rounds < 2 {
                add_visit(&mut b, 10 + rounds);
                fieldlog_core::sync::sync(&mut b, |_| {}).unwrap();
                rounds += 1;
                let _ = synced.send(());
            }
            b
        }
    });
    first_round.recv().unwrap();
    let taken: serde_json::Value = serde_json::from_str(&admin(
        &live,
        &["--json", "backup", "--to", backup.to_str().unwrap()],
    ))
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut b = traffic.join().unwrap();
    assert_eq!(taken["photo_files"], 2, "{taken}");
    // b syncs once more after the backup: its cursor is past what the backup holds. (That
    // visit stays on b: a device does not send again what the bureau once took; see the
    // README's "Running a bureau".)
    add_visit(&mut b, 99);
    fieldlog_core::sync::sync(&mut b, |_| {}).unwrap();

    // A backup goes into a new or empty directory only.
    let again = command(&live)
        .args(["backup", "--to", backup.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
    // A restore never writes over a data directory that holds something (here the live
    // one, still serving) unless told to.
    let over = command(&live)
        .args(["restore", "--from", backup.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(over.status.code(), Some(1));
    let said = String::from_utf8_lossy(&over.stderr);
    assert!(
        said.contains(live.to_str().unwrap()) && said.contains("--force"),
        "{said}"
    );
    // A damaged backup is refused before anything is written.
    let damaged = root.path().join("damaged");
    copy_dir(&backup, &damaged);
    let manifest = fieldlog_bureau::backup::read_manifest(&damaged).unwrap();
    let photo = damaged.join(&manifest.files[1].path);
    let mut bytes = std::fs::read(&photo).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&photo, bytes).unwrap();
    let refused_dir = root.path().join("refused");
    let refused = command(&refused_dir)
        .args(["restore", "--from", damaged.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains(&manifest.files[1].path) && said.contains("sha256"),
        "{said}"
    );
    assert!(!refused_dir.exists(), "nothing written");

    let restored_out: serde_json::Value = serde_json::from_str(&admin(
        &restored,
        &["--json", "restore", "--from", backup.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(restored_out["photo_files"], 2);
    // Everything a's first rounds sent is there, its photo files too.
    assert!(bureau_visit_ids(&restored).is_superset(&visit_ids(&a)));
    let photos: serde_json::Value =
        serde_json::from_str(&admin(&restored, &["--json", "photos"])).unwrap();
    assert_eq!(photos.as_array().unwrap().len(), 1);
    assert_eq!(photos[0]["thumbnail_held"], true);
    assert_eq!(photos[0]["display_held"], true);

    // The restored bureau takes the live one's place (same address).
    let held = bureau_visit_ids(&restored);
    let addr = url.trim_start_matches("http://").to_string();
    assert!(bureau.terminate().success());
    let mut serve = command(&restored);
    serve
        .args(["serve", "--listen", &addr])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let _bureau = Process::ready(serve.spawn().unwrap(), false);
    // A device that synced only before the backup records a visit and syncs it; b, whose
    // cursor is past the restored change log (it synced after the backup), receives it.
    let new = add_visit(&mut a, 7).to_string();
    fieldlog_core::sync::sync(&mut a, |_| {}).unwrap();
    fieldlog_core::sync::sync(&mut b, |_| {}).unwrap();
    assert!(
        visit_ids(&b).contains(&new),
        "a change after the restore hid below b's cursor"
    );
    let mut now_held = held.clone();
    now_held.insert(new);
    assert_eq!(bureau_visit_ids(&restored), now_held);
    assert!(visit_ids(&b).is_superset(&now_held));
    // A new device receives everything the restored bureau holds, photo included.
    let (c, _c_dir) = device(&restored, &url, "赵老师");
    assert_eq!(visit_ids(&c), now_held);
    let photo = &photos[0]["photo"]["display_sha256"];
    let fetched = fieldlog_core::upload::fetch_photo(&c, photo.as_str().unwrap());
    assert!(fetched.is_ok(), "{fetched:?}");
}

/// Copies a directory tree.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A certificate authority made for the test, and a server certificate it signed for
/// 127.0.0.1, written as PEM into `dir` (`cert.pem`, `key.pem`); the CA's DER.
fn issue(dir: &std::path::Path, ca_name: &str) -> Vec<u8> {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    ca.der().to_vec()
}

/// A client that trusts only `ca` (DER), and keeps connections alive.
fn trusting(ca: &[u8]) -> ureq::Agent {
    let roots = ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
        ureq::tls::Certificate::from_der(ca).to_owned(),
    ]));
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .build(),
    )
}

#[test]
fn tls_serves_a_sync_round_and_sighup_swaps_the_certificate_for_new_connections_only() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    init(&dir);
    let tls = root.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let first_ca = issue(&tls, "first CA");
    let (cert, key) = (tls.join("cert.pem"), tls.join("key.pem"));
    let mut command = serve_command(
        &dir,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[("FIELDLOG_LOG", "info")],
    );
    command.stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut bureau = Process::ready(child, false);
    assert!(
        bureau.url.starts_with("https://127.0.0.1:"),
        "{}",
        bureau.url
    );

    // A device enrolls and syncs over TLS. (The core sync client trusts the web's roots
    // only, so a test CA needs this client; see the README.)
    let old = trusting(&first_ca);
    let mut enrolled = old
        .post(format!("{}/v1/enroll", bureau.url))
        .content_type("application/json")
        .send(
            serde_json::to_vec(&fieldlog_domain::sync::EnrollRequest {
                code: code(&dir, "李老师"),
                device_name: "一号机".into(),
                actors: vec![automerge::ActorId::random().to_hex_string()],
                signing_key: None,
            })
            .unwrap(),
        )
        .unwrap();
    assert_eq!(enrolled.status(), 200);
    let enrolled: fieldlog_domain::sync::EnrollResponse =
        serde_json::from_slice(&enrolled.body_mut().read_to_vec().unwrap()).unwrap();
    let round = |agent: &ureq::Agent| {
        let body = crate::support::encode(&crate::support::request(0, Vec::new(), 100));
        let mut answer = agent
            .post(format!("{}/v1/sync", bureau.url))
            .header("Content-Type", fieldlog_domain::sync::SYNC_CONTENT_TYPE)
            .header("Content-Encoding", "zstd")
            .header("Authorization", format!("Bearer {}", enrolled.token))
            .send(body)?;
        assert_eq!(answer.status(), 200);
        let body = answer.body_mut().read_to_vec()?;
        let response: fieldlog_domain::sync::SyncResponse =
            postcard::from_bytes(&zstd::decode_all(&body[..]).unwrap()).unwrap();
        Ok::<_, ureq::Error>(response)
    };
    round(&old).unwrap();
    // Plain HTTP on the TLS port is not served.
    let plain = ureq::get(format!(
        "{}/healthz",
        bureau.url.replacen("https", "http", 1)
    ))
    .call();
    assert!(plain.is_err(), "{plain:?}");

    // A new certificate from another CA, then SIGHUP.
    let second_ca = issue(&tls, "second CA");
    signal(&bureau.child, "HUP");
    wait_for_line(&mut stderr, "reloaded the TLS certificate");
    // The connection the old client keeps open still works (a new one would be refused,
    // as the next client shows)…
    round(&old).unwrap();
    // …new connections get the new certificate: a client trusting only the old CA is
    // refused, one trusting only the new CA syncs.
    let refused = round(&trusting(&first_ca));
    assert!(
        format!("{refused:?}").contains("UnknownIssuer"),
        "{refused:?}"
    );
    round(&trusting(&second_ca)).unwrap();

    // A reload that fails (a key that is not PEM) keeps the certificate in use.
    std::fs::write(&key, "not a key").unwrap();
    signal(&bureau.child, "HUP");
    wait_for_line(&mut stderr, "keeping the one in use");
    round(&trusting(&second_ca)).unwrap();
    assert!(bureau.terminate().success());
}
