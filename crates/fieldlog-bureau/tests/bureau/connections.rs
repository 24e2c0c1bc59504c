//! The limits on connections and clients ([`fieldlog_bureau::ServeConfig`]), each against
//! a real bureau on a loopback port, with raw sockets for the slow and idle clients: they
//! are closed rather than held, the connection cap answers `busy`, shutdown keeps its
//! deadline, request rates answer `rate_limited`, and a cut upload keeps its bytes without
//! holding its lock or touching another device's upload (the upload tests run with
//! complete files in the data directory and in an S3 bucket: `local::…`, `s3::…`).
//!
//! Timeouts are a second or two, so the tests are quick; a bureau must act within
//! [`BOUND`], far longer, so a test fails only when a limit is missing, not when the
//! machine is slow.

use crate::support::{Device, PhotoStore, Server, on_both_photo_stores, request};
use fieldlog_bureau::{Bureau, Config, RateLimit, ServeConfig};
use fieldlog_core::Store;
use fieldlog_domain::Role;
use fieldlog_domain::sync::{
    BLOB_CONTENT_TYPE, EnrollRequest, ErrorBody, Refusal, UPLOAD_LENGTH, UPLOAD_OFFSET,
};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the bureau may take to do what a timeout of a second or two asks: long enough
/// for a loaded machine, short enough that a limit that is missing fails the test.
const BOUND: Duration = Duration::from_secs(10);

const SECOND: Duration = Duration::from_secs(1);

/// A config whose serve limits are `serve` applied to the defaults.
fn config(serve: impl FnOnce(&mut ServeConfig)) -> Config {
    let mut config = Config::default();
    serve(&mut config.serve);
    config
}

/// A bureau in 南山区 with team caravan-1 there, under `config`.
fn address(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// A raw client connection that gives up reading after [`BOUND`].
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// A request's head (with `Host` and `Content-Length`), ready to write.
fn head(method: &str, path: &str, headers: &[(&str, String)], length: usize) -> Vec<u8> {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: bureau\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if length > 0 || !matches!(method, "GET" | "HEAD") {
        text.push_str(&format!("Content-Length: {length}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

fn get(path: &str) -> Vec<u8> {
    head("GET", path, &[], 0)
}

/// One answer read off a raw connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn refusal(&self) -> Option<Refusal> {
        serde_json::from_slice::<ErrorBody>(&self.body)
            .ok()
            .map(|b| b.error.reason)
    }

    fn message(&self) -> String {
        serde_json::from_slice::<ErrorBody>(&self.body)
            .map(|b| b.error.message)
            .unwrap_or_default()
    }

    /// Whether the bureau keeps the connection open after this answer.
    fn keeps_alive(&self) -> bool {
        !self
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads one answer (or an interim `100 Continue`), with a body as long as its
/// `Content-Length`.
fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut reader = BufReader::new(ByteAtATime(stream));
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut answer = Answer {
        status,
        headers,
        body: Vec::new(),
    };
    let length: usize = answer
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    if status >= 200 {
        answer.body = vec![0; length];
        reader.read_exact(&mut answer.body).unwrap();
    }
    answer
}

/// Reads a byte per call, so a `BufReader` over it never takes bytes of what follows.
struct ByteAtATime<'a>(&'a mut TcpStream);

impl Read for ByteAtATime<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

/// Waits until the bureau closes `stream`; returns what it sent before. Panics if it is
/// still open after [`BOUND`].
fn closed_by_bureau(stream: &mut TcpStream) -> Vec<u8> {
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    loop {
        assert!(
            start.elapsed() < BOUND,
            "the bureau still sends after {BOUND:?}"
        );
        match stream.read(&mut buf) {
            Ok(0) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the bureau left the connection open for {BOUND:?}")
            }
            // Reset: closed with bytes unread.
            Err(_) => return seen,
        }
    }
}

/// Whether `stream` is open with nothing to read (the bureau neither answered nor closed).
fn still_open(mut stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let open = matches!(stream.read(&mut [0; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    open
}

/// `GET /healthz` on a connection of its own, closed after.
fn healthz(addr: SocketAddr) -> Answer {
    let mut stream = connect(addr);
    stream.write_all(&get("/healthz")).unwrap();
    read_answer(&mut stream)
}

/// An enrollment request's head that expects `100 Continue` and a body of `length` bytes.
fn slow_enroll(length: usize) -> Vec<u8> {
    head(
        "POST",
        "/v1/enroll",
        &[
            ("Content-Type", "application/json".into()),
            ("Expect", "100-continue".into()),
        ],
        length,
    )
}

/// Sends `slow_enroll` and waits until the bureau is reading its body (its `100 Continue`).
fn enroll_in_flight(addr: SocketAddr, length: usize) -> TcpStream {
    let mut stream = connect(addr);
    stream.write_all(&slow_enroll(length)).unwrap();
    let interim = read_answer(&mut stream);
    assert_eq!(interim.status, 100, "{interim:?}");
    stream.write_all(b"{\"code\":").unwrap();
    stream
}

#[test]
fn headers_never_finished_are_closed_and_do_not_hold_up_other_clients() {
    let server = Server::with_config(config(|s| s.header_timeout = 2 * SECOND));
    let addr = address(&server.url);
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut stream = connect(addr);
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: bureau\r\nX-Wait: for")
                .unwrap();
            stream
        })
        .collect();

    // Answered while all fifty are still waiting.
    assert_eq!(server.healthz(), (200, "ok".to_string()));
    let open = slow.iter().filter(|s| still_open(s)).count();
    assert_eq!(open, 50, "answered meanwhile, not after the slow ones went");

    for stream in &mut slow {
        let sent = closed_by_bureau(stream);
        assert!(
            !sent.starts_with(b"HTTP/1.1 2"),
            "a request never finished was answered: {}",
            String::from_utf8_lossy(&sent)
        );
    }
    assert_eq!(healthz(addr).status, 200);
}

#[test]
fn a_body_that_stalls_is_cut_too_slow_and_the_bureau_answers_others() {
    let server = Server::with_config(config(|s| {
        s.header_timeout = 30 * SECOND;
        s.body_stall_timeout = SECOND;
    }));
    let addr = address(&server.url);
    let mut slow = connect(addr);
    slow.write_all(&head(
        "POST",
        "/v1/enroll",
        &[("Content-Type", "application/json".into())],
        200,
    ))
    .unwrap();
    // One byte, then a pause longer than the stall timeout.
    slow.write_all(b"{").unwrap();
    assert_eq!(healthz(addr).status, 200, "others are answered meanwhile");
    let answer = read_answer(&mut slow);

    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.refusal(), Some(Refusal::TooSlow));
    assert!(answer.message().contains("paused"), "{}", answer.message());
    assert!(!answer.keeps_alive(), "{answer:?}");
    closed_by_bureau(&mut slow);
    assert_eq!(healthz(addr).status, 200);
}

#[test]
fn a_body_that_trickles_past_the_body_timeout_is_cut_too_slow() {
    let server = Server::with_config(config(|s| {
        s.header_timeout = 30 * SECOND;
        s.body_stall_timeout = 2 * SECOND;
        s.body_timeout = 3 * SECOND;
    }));
    let addr = address(&server.url);
    let mut slow = connect(addr);
    slow.write_all(&head(
        "POST",
        "/v1/enroll",
        &[("Content-Type", "application/json".into())],
        1_000,
    ))
    .unwrap();
    // Never pausing as long as the stall timeout, but never done either.
    let mut writer = slow.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..1_000 {
            if writer.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let answer = read_answer(&mut slow);
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.refusal(), Some(Refusal::TooSlow));
    assert!(
        answer.message().contains("took more than"),
        "{}",
        answer.message()
    );
    closed_by_bureau(&mut slow);
    trickle.join().unwrap();
}

#[test]
fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let server = Server::with_config(config(|s| s.header_timeout = SECOND));
    let mut stream = connect(address(&server.url));
    for _ in 0..2 {
        stream.write_all(&get("/healthz")).unwrap();
        let answer = read_answer(&mut stream);
        assert_eq!((answer.status, &answer.body[..]), (200, &b"ok"[..]));
        assert!(answer.keeps_alive(), "{answer:?}");
    }
    let sent = closed_by_bureau(&mut stream);
    assert!(!sent.starts_with(b"HTTP/1.1 2"), "{sent:?}");
}

#[test]
fn at_the_connection_cap_the_next_client_is_told_busy_until_others_leave() {
    let server = Server::with_config(config(|s| {
        s.max_connections = 4;
        s.header_timeout = 60 * SECOND;
    }));
    let addr = address(&server.url);
    // Accepted in the order they connect, so these four hold every place.
    let mut holders: Vec<TcpStream> = (0..4).map(|_| connect(addr)).collect();
    // A quarter as many again wait for their `busy` answer…
    let mut refused = connect(addr);
    // …and any beyond that are closed at once.
    let mut beyond = connect(addr);
    assert!(closed_by_bureau(&mut beyond).is_empty());

    refused.write_all(&get("/healthz")).unwrap();
    let answer = read_answer(&mut refused);
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.refusal(), Some(Refusal::Busy));
    assert_eq!(answer.header("retry-after"), Some("5"));
    assert!(!answer.keeps_alive());
    closed_by_bureau(&mut refused);

    for holder in &mut holders {
        assert!(still_open(holder), "a holder was never refused nor closed");
        holder.shutdown(Shutdown::Write).unwrap();
        closed_by_bureau(holder);
    }
    // Their places are free again.
    for _ in 0..5 {
        let answer = healthz(addr);
        assert_eq!((answer.status, &answer.body[..]), (200, &b"ok"[..]));
    }
}

/// A bureau served in this process whose shutdown a test starts and then watches, unlike
/// [`Server`], which waits for it on drop.
struct Served {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start(config: Config) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let bureau = Bureau::open(dir.path(), config).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = runtime.spawn(fieldlog_bureau::serve(listener, bureau, async {
            let _ = stopped.await;
        }));
        Served {
            addr,
            stop: Some(stop),
            task: Some(task),
            runtime,
            _dir: dir,
        }
    }

    fn shut_down(&mut self) {
        self.stop.take().unwrap().send(()).unwrap();
    }

    /// Waits for `serve` to return; panics after `within`.
    fn stopped_within(&mut self, within: Duration) {
        let task = self.task.take().unwrap();
        let served = self
            .runtime
            .block_on(async { tokio::time::timeout(within, task).await })
            .unwrap_or_else(|_| panic!("still serving {within:?} after shutdown"));
        served.unwrap().unwrap();
    }
}

#[test]
fn shutdown_lets_requests_in_flight_finish_within_the_grace_then_cuts_the_rest() {
    let grace = 3 * SECOND;
    let mut served = Served::start(config(|s| {
        s.shutdown_grace = grace;
        s.header_timeout = 60 * SECOND;
        s.body_stall_timeout = 60 * SECOND;
        s.body_timeout = 120 * SECOND;
    }));
    let addr = served.addr;
    let body = serde_json::to_vec(&EnrollRequest {
        code: "ABCDEFGHJK".into(),
        device_name: "一号机".into(),
        actors: vec![automerge::ActorId::random().to_hex_string()],
        signing_key: None,
    })
    .unwrap();
    let mut finishing = enroll_in_flight(addr, body.len());
    let mut stalled: Vec<TcpStream> = (0..3).map(|_| enroll_in_flight(addr, 1_000)).collect();
    let mut half_headers: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = connect(addr);
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
            stream
        })
        .collect();
    let mut idle = connect(addr);
    idle.write_all(&get("/healthz")).unwrap();
    assert_eq!(read_answer(&mut idle).status, 200);

    let start = Instant::now();
    served.shut_down();
    // No request in flight there: closed now, not at the header timeout (a minute) nor
    // when the grace is over (or the request below, finished after these, would be cut).
    for stream in half_headers.iter_mut().chain([&mut idle]) {
        closed_by_bureau(stream);
    }
    // The listener went before they closed.
    assert!(TcpStream::connect(addr).is_err(), "still accepting");
    // A request in flight finishes within the grace; its connection then closes.
    finishing.write_all(&body[b"{\"code\":".len()..]).unwrap();
    let answer = read_answer(&mut finishing);
    assert_eq!(answer.refusal(), Some(Refusal::BadCode), "{answer:?}");
    assert!(!answer.keeps_alive());
    closed_by_bureau(&mut finishing);
    // Stalled ones (well within their own timeouts) are cut when the grace is over.
    for stream in &mut stalled {
        closed_by_bureau(stream);
    }
    // All within the grace and a margin, not the minute the stalled bodies could take.
    served.stopped_within(BOUND.saturating_sub(start.elapsed()));
}

#[test]
fn the_binary_stops_within_its_shutdown_grace_on_sigterm() {
    const BIN: &str = env!("CARGO_BIN_EXE_fieldlog-bureau");
    let dir = tempfile::tempdir().unwrap();
    let bureau = || {
        let mut command = Command::new(BIN);
        command
            .env_remove("FIELDLOG_LOG")
            .env_remove("FIELDLOG_BUREAU_CONFIG")
            .env_remove("FIELDLOG_BUREAU_LISTEN")
            .env("FIELDLOG_BUREAU_DATA_DIR", dir.path());
        for name in [
            "MAX_CONNECTIONS",
            "HEADER_TIMEOUT",
            "BODY_STALL_TIMEOUT",
            "BODY_TIMEOUT",
            "SHUTDOWN_GRACE",
            "DEVICE_RATE",
            "ENROLL_RATE",
        ] {
            command.env_remove(format!("FIELDLOG_BUREAU_{name}"));
        }
        command
    };
    let init = bureau()
        .args(["init", "--coordinator", "王主任", "--districts", "南山区"])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let mut server = bureau()
        .args(["serve", "--listen", "127.0.0.1:0", "--shutdown-grace", "1"])
        .args(["--header-timeout", "60", "--body-stall-timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = address(
        line.trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("not a readiness line: {line:?}")),
    );
    let mut in_flight: Vec<TcpStream> = (0..3).map(|_| enroll_in_flight(addr, 1_000)).collect();
    assert_eq!(healthz(addr).status, 200);

    let pid = server.id();
    let (exited, exit) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = exited.send(server.wait());
    });
    let start = Instant::now();
    let term = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = match exit.recv_timeout(BOUND) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("still running {BOUND:?} after SIGTERM with a 1 s grace");
        }
    };
    waiter.join().unwrap();
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
    assert!(start.elapsed() < BOUND);
    for stream in &mut in_flight {
        closed_by_bureau(stream);
    }
}

/// Sends a sync round with no changes; `(status, Retry-After, refusal)`.
fn empty_round(server: &Server, device: &Device) -> (u16, Option<u64>, Option<Refusal>) {
    let mut response = agent()
        .post(format!("{}/v1/sync", server.url))
        .header("Content-Type", fieldlog_domain::sync::SYNC_CONTENT_TYPE)
        .header("Content-Encoding", "zstd")
        .header("Authorization", format!("Bearer {}", device.token))
        .send(crate::support::encode(&request(0, Vec::new(), 100)))
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = retry_after(&response);
    let body = response.body_mut().read_to_vec().unwrap();
    let refusal = serde_json::from_slice::<ErrorBody>(&body)
        .ok()
        .map(|b| b.error.reason);
    (status, retry_after, refusal)
}

fn retry_after(response: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok())
}

/// An agent that reports every status and gives up after [`BOUND`] (a request held up by
/// a lock would otherwise hang the test).
fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(BOUND))
            .build(),
    )
}

#[test]
fn a_device_over_its_rate_is_told_to_wait_and_other_devices_are_not() {
    let server = Server::with_teams_config(config(|s| s.device_rate = RateLimit::per_minute(5)));
    let busy = server.device("caravan-1", "李老师", Role::Volunteer);
    let other = server.device("caravan-1", "钱老师", Role::Volunteer);
    // A minute's worth may come at once (the bucket refills one every 12 s).
    for n in 1..=5 {
        assert_eq!(
            empty_round(&server, &busy),
            (200, None, None),
            "request {n}"
        );
    }
    let (status, wait, refusal) = empty_round(&server, &busy);
    assert_eq!((status, refusal), (429, Some(Refusal::RateLimited)));
    let wait = wait.expect("Retry-After");
    assert!((1..=12).contains(&wait), "Retry-After: {wait}");
    // Every authenticated request counts, a blob request too.
    let blob = agent()
        .head(format!("{}/v1/blobs/{}", server.url, "ab".repeat(32)))
        .header("Authorization", format!("Bearer {}", busy.token))
        .call()
        .unwrap();
    assert_eq!(blob.status().as_u16(), 429);

    assert_eq!(empty_round(&server, &other), (200, None, None));
}

/// Posts an enrollment from `from` (a loopback address) on a raw connection.
fn enroll_from(from: &str, server: &Server, request: &EnrollRequest) -> Answer {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(format!("{from}:0").parse().unwrap())?;
            socket.connect(address(&server.url)).await
        })
        .unwrap();
    let mut stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let body = serde_json::to_vec(request).unwrap();
    let mut bytes = head(
        "POST",
        "/v1/enroll",
        &[("Content-Type", "application/json".into())],
        body.len(),
    );
    bytes.extend_from_slice(&body);
    stream.write_all(&bytes).unwrap();
    read_answer(&mut stream)
}

#[test]
fn enrollment_from_one_address_over_its_rate_is_refused_and_others_are_not() {
    let server = Server::with_teams_config(config(|s| s.enroll_rate = RateLimit::per_minute(3)));
    let enrolled = server.device("caravan-1", "李老师", Role::Volunteer);
    let enrollment = |code: String| EnrollRequest {
        code,
        device_name: "二号机".into(),
        actors: vec![automerge::ActorId::random().to_hex_string()],
        signing_key: None,
    };
    // Wrong codes count too: the rate is checked first.
    for _ in 0..2 {
        let answer = enroll_from("127.0.0.1", &server, &enrollment("ABCDEFGHJK".into()));
        assert_eq!(answer.refusal(), Some(Refusal::BadCode), "{answer:?}");
    }
    let code = server.code("caravan-1", "钱老师", Role::Volunteer);
    let refused = enroll_from("127.0.0.1", &server, &enrollment(code.clone()));
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(refused.refusal(), Some(Refusal::RateLimited));
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "Retry-After: {wait}");

    // Another address, and an enrolled device's own requests, are not held to it; the
    // refused code was not used up.
    let answer = enroll_from("127.0.0.2", &server, &enrollment(code));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(empty_round(&server, &enrolled), (200, None, None));
}

/// A bureau with a caravan-1 device (`photographer`) whose visit with a photo is at the
/// bureau, the photo's display copy not (yet) uploaded, and a teammate who may see it.
struct Upload {
    server: Server,
    sha256: String,
    bytes: Vec<u8>,
    photographer: BlobClient,
    teammate: BlobClient,
    _store: Store,
    _dir: tempfile::TempDir,
}

on_both_photo_stores!(
    a_teammate_uploads_into_its_own_partial_file_never_into_anothers,
    a_stalled_upload_is_cut_keeps_what_arrived_and_leaves_the_blob_free,
    an_upload_offset_past_the_upload_length_is_refused_and_writes_nothing,
);

fn upload_world(config: Config, photos: PhotoStore) -> Upload {
    let server = Server::with_teams_on(config, photos);
    let (mut store, dir, photo) = server.photographer();
    fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
    let sha256 = photo.display_sha256.clone();
    let bytes = std::fs::read(fieldlog_core::photo::stored_path(
        &store.photo_dir(),
        &sha256,
    ))
    .unwrap();
    // Start this blob over at the bureau (its visit stays).
    server.forget_blob(&sha256);
    let (token, device_id): (String, String) = rusqlite::Connection::open(store.path())
        .unwrap()
        .query_row("SELECT token, device_id FROM bureau", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let teammate = server.device("caravan-1", "钱老师", Role::Volunteer);
    let client = |token: String, device_id: String| BlobClient {
        url: format!("{}/v1/blobs/{sha256}", server.url),
        addr: address(&server.url),
        path: format!("/v1/blobs/{sha256}"),
        token,
        partial: server
            .dir
            .path()
            .join(fieldlog_bureau::BLOB_DIR)
            .join("partial")
            .join(device_id)
            .join(&sha256),
    };
    let photographer = client(token, device_id);
    let teammate = client(teammate.token, teammate.device_id);
    Upload {
        sha256,
        bytes,
        photographer,
        teammate,
        server,
        _store: store,
        _dir: dir,
    }
}

/// One device's requests for one blob.
struct BlobClient {
    url: String,
    addr: SocketAddr,
    path: String,
    token: String,
    /// Its partial file at the bureau.
    partial: PathBuf,
}

impl BlobClient {
    /// `(status, Upload-Offset)`.
    fn head(&self) -> (u16, Option<u64>) {
        let response = agent()
            .head(&self.url)
            .header("Authorization", format!("Bearer {}", self.token))
            .call()
            .unwrap();
        (response.status().as_u16(), offset(&response))
    }

    /// `(status, Upload-Offset, refusal)`.
    fn patch(&self, at: u64, length: u64, body: &[u8]) -> (u16, Option<u64>, Option<Refusal>) {
        let mut response = agent()
            .patch(&self.url)
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", BLOB_CONTENT_TYPE)
            .header(UPLOAD_OFFSET, at.to_string())
            .header(UPLOAD_LENGTH, length.to_string())
            .send(body)
            .unwrap();
        let status = response.status().as_u16();
        let held = offset(&response);
        let body = response.body_mut().read_to_vec().unwrap();
        let refusal = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .map(|b| b.error.reason);
        (status, held, refusal)
    }

    fn get(&self) -> (u16, Vec<u8>) {
        let mut response = agent()
            .get(&self.url)
            .header("Authorization", format!("Bearer {}", self.token))
            .call()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_vec().unwrap())
    }

    /// A `PATCH` of `length - at` bytes whose head is sent; returns once the bureau holds
    /// this upload's lock and reads the body (its `100 Continue`).
    fn patch_in_flight(&self, at: u64, length: u64) -> TcpStream {
        let mut stream = connect(self.addr);
        let headers = [
            ("Authorization", format!("Bearer {}", self.token)),
            ("Content-Type", BLOB_CONTENT_TYPE.to_string()),
            (UPLOAD_OFFSET, at.to_string()),
            (UPLOAD_LENGTH, length.to_string()),
            ("Expect", "100-continue".to_string()),
        ];
        let size = usize::try_from(length - at).unwrap();
        stream
            .write_all(&head("PATCH", &self.path, &headers, size))
            .unwrap();
        let interim = read_answer(&mut stream);
        assert_eq!(interim.status, 100, "{interim:?}");
        stream
    }

    /// The bytes of its partial file at the bureau, if it has one.
    fn partial(&self) -> Option<Vec<u8>> {
        std::fs::read(&self.partial).ok()
    }
}

fn offset(response: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    response
        .headers()
        .get(UPLOAD_OFFSET)
        .and_then(|v| v.to_str().ok()?.parse().ok())
}

fn a_teammate_uploads_into_its_own_partial_file_never_into_anothers(photos: PhotoStore) {
    let world = upload_world(Config::default(), photos);
    let (a, b, bytes) = (&world.photographer, &world.teammate, &world.bytes);
    let length = bytes.len() as u64;
    let half = length / 2;
    assert_eq!(a.head(), (204, Some(0)));
    assert_eq!(
        a.patch(0, length, &bytes[..half as usize]),
        (204, Some(half), None)
    );

    // The teammate starts from its own 0: it cannot append to the photographer's half…
    assert_eq!(b.head(), (204, Some(0)));
    let junk = vec![0x55; 1_000];
    assert_eq!(
        b.patch(half, length, &junk),
        (409, Some(0), Some(Refusal::OffsetMismatch))
    );
    // …and what it sends goes into its own file.
    assert_eq!(b.patch(0, length, &junk), (204, Some(1_000), None));
    assert_eq!(b.partial(), Some(junk.clone()));
    assert_eq!(a.head(), (204, Some(half)), "unchanged by the teammate");
    assert_eq!(a.partial().as_deref(), Some(&bytes[..half as usize]));

    // The photographer completes it; the blob verifies and is the teammate's too.
    assert_eq!(
        a.patch(half, length, &bytes[half as usize..]),
        (204, Some(length), None)
    );
    assert_eq!(a.get(), (200, bytes.clone()));
    assert_eq!(
        world.server.complete_blob(&world.sha256).as_ref(),
        Some(bytes)
    );
    assert_eq!(a.partial(), None, "given to the store");
    assert_eq!(b.head(), (204, Some(length)));
    assert_eq!(
        b.partial(),
        None,
        "its junk is dropped once the blob is whole"
    );
    assert_eq!(b.get(), (200, bytes.clone()));
}

fn a_stalled_upload_is_cut_keeps_what_arrived_and_leaves_the_blob_free(photos: PhotoStore) {
    let world = upload_world(
        config(|s| {
            s.header_timeout = 30 * SECOND;
            s.body_stall_timeout = 3 * SECOND;
        }),
        photos,
    );
    let (a, b, bytes) = (&world.photographer, &world.teammate, &world.bytes);
    let blobs = world.server.bureau.blobs();
    let length = bytes.len() as u64;
    let arrived = 1_000;

    let mut stalled = a.patch_in_flight(0, length);
    stalled.write_all(&bytes[..arrived]).unwrap();
    // While it stalls with the photographer's lock held, the teammate is not held up.
    assert_eq!(blobs.locks_in_use(), 1);
    assert_eq!(b.head(), (204, Some(0)));
    assert!(still_open(&stalled), "answered before the stall timeout");

    let answer = read_answer(&mut stalled);
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.refusal(), Some(Refusal::TooSlow));
    closed_by_bureau(&mut stalled);
    assert_eq!(blobs.locks_in_use(), 0, "the lock went with the request");

    // Right after, the same device sees what arrived and resumes there.
    assert_eq!(a.head(), (204, Some(arrived as u64)));
    assert_eq!(a.partial().as_deref(), Some(&bytes[..arrived]));
    assert_eq!(
        a.patch(arrived as u64, length, &bytes[arrived..]),
        (204, Some(length), None)
    );
    assert_eq!(a.get(), (200, bytes.clone()));
    assert_eq!(b.head(), (204, Some(length)));
}

fn an_upload_offset_past_the_upload_length_is_refused_and_writes_nothing(photos: PhotoStore) {
    let world = upload_world(Config::default(), photos);
    let (a, bytes) = (&world.photographer, &world.bytes);
    let length = bytes.len() as u64;
    let half = length / 2;
    assert_eq!(
        a.patch(0, length, &bytes[..half as usize]),
        (204, Some(half), None)
    );

    let rest = &bytes[half as usize..];
    // Past the blob's length…
    let (status, _, refusal) = a.patch(length + 1, length, rest);
    assert_eq!((status, refusal), (400, Some(Refusal::Malformed)));
    // …or past the length the request itself claims.
    let (status, _, refusal) = a.patch(length, half, rest);
    assert!((400..500).contains(&status), "{status}");
    assert!(refusal.is_some());
    let (status, _, _) = a.patch(u64::MAX, length, rest);
    assert!((400..500).contains(&status), "{status}");

    assert_eq!(a.head(), (204, Some(half)));
    assert_eq!(a.partial().as_deref(), Some(&bytes[..half as usize]));
    assert_eq!(world.server.bureau.blobs().locks_in_use(), 0);
    assert_eq!(a.get().0, 404, "not whole");
}
