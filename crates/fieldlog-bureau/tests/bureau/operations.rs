//! What an operator watches: readiness, metrics, logs.

use crate::support::Server;

impl Server {
    /// `GET <path>`: the status and the body as text.
    pub fn get_text(&self, path: &str) -> (u16, String) {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        );
        let mut response = agent.get(format!("{}{path}", self.url)).call().unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }
}

#[test]
fn readyz_is_ready_while_storage_answers_and_names_what_failed_when_not() {
    let server = Server::with_teams();
    assert_eq!(server.get_text("/readyz"), (200, "ready".to_string()));

    // The database stops answering the query every request makes (here: its teams table
    // is gone from under the bureau); liveness still says ok.
    server.execute_sql("ALTER TABLE teams RENAME TO teams_away");
    let (status, body) = server.get_text("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("not ready: the storage failed a query") && body.contains("teams"),
        "{body}"
    );
    assert_eq!(server.healthz(), (200, "ok".to_string()));
    server.execute_sql("ALTER TABLE teams_away RENAME TO teams");
    assert_eq!(server.get_text("/readyz"), (200, "ready".to_string()));

    // The blob directory is gone (an unmounted disk).
    let blobs = server.dir.path().join(fieldlog_bureau::BLOB_DIR);
    let away = server.dir.path().join("blobs-away");
    std::fs::rename(&blobs, &away).unwrap();
    let (status, body) = server.get_text("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("the blob directory") && body.contains("blobs"),
        "{body}"
    );
    std::fs::rename(&away, &blobs).unwrap();
    assert_eq!(server.get_text("/readyz"), (200, "ready".to_string()));
}

/// A `fieldlog-bureau serve` process on loopback port 0, stopped with SIGTERM when dropped.
pub struct Process {
    pub child: std::process::Child,
    pub url: String,
    /// The metrics URL, when served.
    pub metrics: Option<String>,
    /// The rest of stdout, after the readiness lines.
    pub stdout: std::io::BufReader<std::process::ChildStdout>,
}

pub const BIN: &str = env!("CARGO_BIN_EXE_fieldlog-bureau");

/// `fieldlog-bureau` on `dir`, with no setting from this process's environment.
pub fn command(dir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FIELDLOG_") {
            command.env_remove(name);
        }
    }
    command.env("FIELDLOG_BUREAU_DATA_DIR", dir);
    command
}

/// `serve --listen 127.0.0.1:0 <args>` with `env`, its stdout piped.
pub fn serve_command(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Command {
    let mut command = command(dir);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// Enrolls a device of caravan-1 over HTTP (a fresh actor, no signing key).
pub fn enroll(url: &str, code: String) -> fieldlog_domain::sync::EnrollResponse {
    let request = fieldlog_domain::sync::EnrollRequest {
        code,
        device_name: "二号机".into(),
        actors: vec![automerge::ActorId::random().to_hex_string()],
        signing_key: None,
    };
    let body = ureq::post(format!("{url}/v1/enroll"))
        .content_type("application/json")
        .send(serde_json::to_vec(&request).unwrap())
        .unwrap()
        .body_mut()
        .read_to_vec()
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// A sync round with no changes; the status.
pub fn empty_round(url: &str, token: &str) -> u16 {
    let body = crate::support::encode(&crate::support::request(0, Vec::new(), 100));
    ureq::post(format!("{url}/v1/sync"))
        .header("Content-Type", fieldlog_domain::sync::SYNC_CONTENT_TYPE)
        .header("Content-Encoding", "zstd")
        .header("Authorization", format!("Bearer {token}"))
        .config()
        .http_status_as_error(false)
        .build()
        .send(body)
        .unwrap()
        .status()
        .as_u16()
}

/// Runs an admin command; its stdout.
pub fn admin(dir: &std::path::Path, args: &[&str]) -> String {
    let out = command(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A bureau in 南山区 with the caravan-1 team there and 南山小学 in its registry.
pub fn init(dir: &std::path::Path) {
    admin(
        dir,
        &["init", "--coordinator", "王主任", "--districts", "南山区"],
    );
    admin(
        dir,
        &[
            "team",
            "add",
            "--team",
            "caravan-1",
            "--kind",
            "caravan",
            "--districts",
            "南山区",
        ],
    );
    let csv = dir.join("schools.csv");
    std::fs::write(
        &csv,
        "name,district,area,level,enrollment\n南山小学,南山区,城区,小学,600\n",
    )
    .unwrap();
    admin(dir, &["school", "import", csv.to_str().unwrap()]);
}

/// A one-time code for a new member of caravan-1.
pub fn code(dir: &std::path::Path, member: &str) -> String {
    let out = admin(
        dir,
        &[
            "--json",
            "enroll",
            "--team",
            "caravan-1",
            "--member",
            member,
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    json["code"].as_str().unwrap().to_string()
}

impl Process {
    /// `serve --listen 127.0.0.1:0 <args>`, with `env`; waits for the readiness line(s).
    pub fn serve(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut command = serve_command(dir, args, env);
        command.stderr(std::process::Stdio::null());
        Process::ready(command.spawn().unwrap(), args.contains(&"--metrics-listen"))
    }

    /// Waits for `child`'s readiness line (and metrics line).
    pub fn ready(mut child: std::process::Child, metrics: bool) -> Process {
        use std::io::BufRead;
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("not a readiness line: {line:?}"))
            .to_string();
        let metrics = metrics.then(|| {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            line.trim()
                .strip_prefix("metrics on ")
                .unwrap_or_else(|| panic!("not a metrics line: {line:?}"))
                .to_string()
        });
        Process {
            child,
            url,
            metrics,
            stdout,
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        signal(&self.child, "TERM");
        self.child.wait().unwrap()
    }

    /// The metrics, scraped now.
    pub fn scrape(&self) -> Scraped {
        let url = self.metrics.as_ref().expect("serving metrics");
        let mut response = ureq::get(url).call().unwrap();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        Scraped(response.body_mut().read_to_string().unwrap())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends `kill -<name>` to `child`.
pub fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Metrics as scraped: OpenMetrics text.
#[derive(Debug)]
pub struct Scraped(pub String);

impl Scraped {
    /// The value of one series, written as in the text (`name{label="v",…}`); 0 when absent
    /// (a labelled series appears at its first count).
    pub fn value(&self, series: &str) -> f64 {
        self.0
            .lines()
            .find_map(|line| {
                let rest = line.strip_prefix(series)?;
                rest.strip_prefix(' ')?.split(' ').next()?.parse().ok()
            })
            .unwrap_or(0.0)
    }
}

/// A device store of caravan-1, enrolled at `url` and synced (for the registry), then with
/// one visit at 南山小学 showing one photo, not yet synced; and its first sync.
pub fn photographer(
    dir: &std::path::Path,
    url: &str,
) -> (
    fieldlog_core::Store,
    tempfile::TempDir,
    fieldlog_core::SyncSummary,
) {
    let device = tempfile::tempdir().unwrap();
    let mut store = fieldlog_core::Store::init(
        &device.path().join("data"),
        "一号机",
        "caravan-1",
        fieldlog_core::Options::default(),
    )
    .unwrap();
    fieldlog_core::sync::enroll(&mut store, url, &code(dir, "李老师")).unwrap();
    let first = fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
    let input = serde_json::from_value(serde_json::json!({
        "school": "南山小学", "activities": ["lecture"], "audience": {"students": 30},
    }))
    .unwrap();
    let visit = store
        .add_visit(&input, chrono::Local::now().date_naive())
        .unwrap();
    let source = device.path().join("photo.png");
    crate::support::noise(400, 300, 7).save(&source).unwrap();
    store.add_photo(visit.id, &source, "实验课", true).unwrap();
    (store, device, first)
}

#[test]
fn metrics_count_requests_by_route_rounds_changes_bytes_blobs_and_devices_on_their_own_port() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    init(dir);
    let mut bureau = Process::serve(dir, &["--metrics-listen", "127.0.0.1:0"], &[]);
    let before = bureau.scrape();
    assert_eq!(before.value("fieldlog_bureau_devices_enrolled"), 0.0);
    assert_eq!(before.value("fieldlog_bureau_blob_files"), 0.0);
    assert!(before.0.ends_with("# EOF\n"), "{}", before.0);

    // A device syncs a visit and uploads its photo's two files.
    let (mut store, _device, first) = photographer(dir, &bureau.url);
    let second = fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
    assert!(second.accepted > 0 && second.photos_done == second.photos_total);
    let summary = fieldlog_core::SyncSummary {
        rounds: first.rounds + second.rounds,
        sent: first.sent + second.sent,
        accepted: first.accepted + second.accepted,
        bytes_sent: first.bytes_sent + second.bytes_sent,
        ..second
    };

    // A second device's round refused after decoding: a change to another team's ledger.
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let actor = automerge::ActorId::random();
    let enroll = fieldlog_domain::sync::EnrollRequest {
        code: code(dir, "张老师"),
        device_name: "二号机".into(),
        actors: vec![actor.to_hex_string()],
        signing_key: None,
    };
    let enrolled: fieldlog_domain::sync::EnrollResponse = serde_json::from_slice(
        &agent
            .post(format!("{}/v1/enroll", bureau.url))
            .content_type("application/json")
            .send(serde_json::to_vec(&enroll).unwrap())
            .unwrap()
            .body_mut()
            .read_to_vec()
            .unwrap(),
    )
    .unwrap();
    let mut doc = automerge::AutoCommit::new().with_actor(actor);
    let change = {
        use automerge::transaction::Transactable;
        let visit = doc
            .put_object(
                automerge::ROOT,
                uuid::Uuid::now_v7().to_string(),
                automerge::ObjType::Map,
            )
            .unwrap();
        doc.put(&visit, "topic", "水的三态").unwrap();
        doc.get_last_local_change().unwrap().raw_bytes().to_vec()
    };
    let round = |token: &str| {
        let body = crate::support::encode(&crate::support::request(
            0,
            crate::support::docs("ledger/shimen/2026-05", vec![change.clone()]),
            100,
        ));
        agent
            .post(format!("{}/v1/sync", bureau.url))
            .header("Content-Type", fieldlog_domain::sync::SYNC_CONTENT_TYPE)
            .header("Content-Encoding", "zstd")
            .header("Authorization", format!("Bearer {token}"))
            .send(body)
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(round(&enrolled.token), 403);
    assert_eq!(round("not-a-token"), 401);
    // No route, and the metrics are not on the API's port.
    for path in ["/nowhere", "/metrics"] {
        let status = agent
            .get(format!("{}{path}", bureau.url))
            .call()
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 404, "{path}");
    }

    let m = bureau.scrape();
    let sync_ok =
        r#"fieldlog_bureau_http_requests_total{route="/v1/sync",method="POST",status="200"}"#;
    assert_eq!(m.value(sync_ok), summary.rounds as f64, "{}", m.0);
    assert_eq!(
        m.value(r#"fieldlog_bureau_sync_rounds_total{outcome="answered"}"#),
        summary.rounds as f64
    );
    assert_eq!(
        m.value("fieldlog_bureau_sync_round_duration_seconds_count"),
        summary.rounds as f64
    );
    assert_eq!(
        m.value("fieldlog_bureau_sync_changes_accepted_total"),
        summary.accepted as f64
    );
    assert_eq!(
        m.value("fieldlog_bureau_sync_changes_not_taken_total"),
        (summary.sent - summary.accepted) as f64
    );
    assert_eq!(
        m.value(r#"fieldlog_bureau_sync_changes_refused_total{reason="out_of_scope"}"#),
        1.0
    );
    assert_eq!(
        m.value(r#"fieldlog_bureau_sync_rounds_total{outcome="unauthenticated"}"#),
        1.0
    );
    assert_eq!(
        m.value(r#"fieldlog_bureau_http_refusals_total{route="/v1/sync",reason="out_of_scope"}"#),
        1.0
    );
    assert_eq!(
        m.value(
            r#"fieldlog_bureau_http_requests_total{route="/v1/enroll",method="POST",status="200"}"#
        ),
        2.0
    );
    assert_eq!(
        m.value(
            r#"fieldlog_bureau_http_requests_total{route="unmatched",method="GET",status="404"}"#
        ),
        2.0
    );
    // Blob requests by their route template, never a photo's hash.
    let blob_route = r#"{route="/v1/blobs/{sha256}",method="PATCH",status="204"}"#;
    assert!(m.value(&format!("fieldlog_bureau_http_requests_total{blob_route}")) >= 2.0);
    assert!(!m.0.contains("/v1/blobs/0") && !m.0.contains("/v1/blobs/a"));
    // Bytes: every body the device sent (rounds and photo files) and the refused round's
    // (the one without a valid token is refused before its body is read).
    let refused_body = crate::support::encode(&crate::support::request(
        0,
        crate::support::docs("ledger/shimen/2026-05", vec![change.clone()]),
        100,
    ));
    let synced = m.value(r#"fieldlog_bureau_http_received_bytes_total{route="/v1/sync"}"#);
    let uploaded =
        m.value(r#"fieldlog_bureau_http_received_bytes_total{route="/v1/blobs/{sha256}"}"#);
    assert_eq!(uploaded, summary.photo_bytes_total as f64);
    assert_eq!(
        synced + uploaded,
        (summary.bytes_sent + refused_body.len() as u64) as f64
    );
    assert!(m.value(r#"fieldlog_bureau_http_sent_bytes_total{route="/v1/sync"}"#) > 0.0);
    assert_eq!(m.value("fieldlog_bureau_blob_files"), 2.0);
    assert_eq!(
        m.value("fieldlog_bureau_blob_stored_bytes"),
        summary.photo_bytes_total as f64
    );
    // Two devices enrolled; one had a round answered.
    assert_eq!(m.value("fieldlog_bureau_devices_enrolled"), 2.0);
    assert_eq!(m.value("fieldlog_bureau_devices_active"), 1.0);
    // The scrape's own connection at least (clients may keep others alive).
    assert!(m.value("fieldlog_bureau_connections_open") >= 1.0);

    assert!(bureau.terminate().success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut bureau.stdout, &mut rest).unwrap();
    assert_eq!(rest, "", "stdout holds only the readiness lines");
}

#[test]
fn json_logs_give_each_request_its_route_status_latency_and_device_and_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    init(dir);
    // The format from the config file.
    let config = dir.join("bureau.toml");
    std::fs::write(&config, "log_format = \"json\"\n").unwrap();
    let mut command = serve_command(dir, &["--config", config.to_str().unwrap()], &[]);
    command.stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut bureau = Process::ready(child, false);
    let code = code(dir, "张老师");
    let enrolled = enroll(&bureau.url, code.clone());
    assert_eq!(empty_round(&bureau.url, &enrolled.token), 200);
    assert_eq!(empty_round(&bureau.url, "some-other-secret"), 401);
    assert_eq!(
        ureq::get(format!("{}/readyz", bureau.url))
            .call()
            .unwrap()
            .status(),
        200
    );
    assert!(bureau.terminate().success());
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut logs).unwrap();

    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let answered: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "answered")
        .collect();
    let summary: Vec<(String, u64, Option<&str>)> = answered
        .iter()
        .map(|l| {
            assert!(l["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{l}");
            assert_eq!(l["level"], "INFO");
            (
                l["span"]["route"].as_str().unwrap().to_string(),
                l["status"].as_u64().unwrap(),
                l["span"]["device"].as_str(),
            )
        })
        .collect();
    // Health checks log at debug only.
    assert_eq!(
        summary,
        [
            ("/v1/enroll".to_string(), 200, None),
            (
                "/v1/sync".to_string(),
                200,
                Some(enrolled.device_id.as_str())
            ),
            ("/v1/sync".to_string(), 401, None),
        ]
    );
    let refused = lines
        .iter()
        .find(|l| l["message"] == "refused")
        .unwrap_or_else(|| panic!("{logs}"));
    assert_eq!(refused["reason"], "unauthenticated");
    for secret in [&enrolled.token, &code, &"some-other-secret".to_string()] {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret in the logs:\n{logs}"
        );
    }

    // A flag beats the environment, which beats the file.
    let mut command = serve_command(
        dir,
        &["--config", config.to_str().unwrap(), "--log-format", "text"],
        &[("FIELDLOG_BUREAU_LOG_FORMAT", "json")],
    );
    command.stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut bureau = Process::ready(child, false);
    assert!(bureau.terminate().success());
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut logs).unwrap();
    assert!(logs.contains("serving") && !logs.contains('{'), "{logs}");
}
