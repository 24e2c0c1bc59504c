//! The `fieldlog-bureau` binary, as an operator runs it.

use fieldlog_domain::sync::EnrollRequest;
use fieldlog_tests::backend::Backend;
use fieldlog_tests::postgres::PgCluster;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

const BIN: &str = env!("CARGO_BIN_EXE_fieldlog-bureau");

/// The binary for the bureau in `dir`: on the PostgreSQL backend ([`Backend::from_env`]),
/// with a database of its own, the same for every command on `dir`.
fn bureau(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    if Backend::from_env() == Backend::PostgresS3 {
        static DATABASES: Mutex<BTreeMap<PathBuf, String>> = Mutex::new(BTreeMap::new());
        let url = DATABASES
            .lock()
            .unwrap()
            .entry(dir.to_path_buf())
            .or_insert_with(Backend::fresh_database)
            .clone();
        command.env("FIELDLOG_BUREAU_DATABASE", url);
    } else {
        command.env_remove("FIELDLOG_BUREAU_DATABASE");
    }
    command
        .env_remove("FIELDLOG_LOG")
        .env_remove("FIELDLOG_BUREAU_CONFIG")
        .env_remove("FIELDLOG_BUREAU_LISTEN")
        .env_remove("FIELDLOG_BUREAU_EXPIRES_HOURS")
        .env_remove("FIELDLOG_BUREAU_MAX_CHANGES_PER_RESPONSE")
        .env("FIELDLOG_BUREAU_DATA_DIR", dir);
    command
}

fn run(dir: &Path, args: &[&str]) -> Output {
    bureau(dir).args(args).output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(dir, args)).unwrap()
}

#[test]
fn admin_commands_then_serve_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    let init = json(
        dir,
        &[
            "--json",
            "init",
            "--coordinator",
            "王主任",
            "--districts",
            "南山区,北山区",
        ],
    );
    assert_eq!(init["team"], "bureau");
    assert_eq!(init["role"], "coordinator");
    let again = run(
        dir,
        &["init", "--coordinator", "王主任", "--districts", "南山区"],
    );
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8(again.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("already initialized"), "{stderr}");

    let team = ok(
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
    assert_eq!(team.trim(), "added team caravan-1 (caravan) in 南山区");

    let csv = dir.join("schools.csv");
    std::fs::write(
        &csv,
        "name,district,area,level,enrollment\n南山小学,南山区,城区,小学,600\n",
    )
    .unwrap();
    let csv = csv.to_str().unwrap();
    assert_eq!(
        ok(dir, &["school", "import", csv]).trim(),
        "schools: 1 added, 0 updated, 0 unchanged"
    );
    assert_eq!(
        ok(dir, &["school", "import", csv]).trim(),
        "schools: 0 added, 0 updated, 1 unchanged"
    );

    // A code with its QR code for the terminal, or as JSON.
    let shown = ok(
        dir,
        &["enroll", "--team", "caravan-1", "--member", "李老师"],
    );
    assert!(
        shown.contains("enrollment code for 李老师 (volunteer, team caravan-1)"),
        "{shown}"
    );
    assert!(
        shown.contains('█') || shown.contains('▀'),
        "a QR code:\n{shown}"
    );
    let code = json(
        dir,
        &[
            "--json",
            "enroll",
            "--team",
            "caravan-1",
            "--member",
            "李老师",
            "--expires-hours",
            "48",
        ],
    );
    assert_eq!(
        (code["team"].as_str(), code["member"].as_str()),
        (Some("caravan-1"), Some("李老师"))
    );
    let code = code["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 10);

    let missing = run(dir, &["enroll", "--team", "nobody", "--member", "李老师"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no team nobody"));

    // Serve on a free port; the first stdout line says where.
    let mut server = bureau(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("not a readiness line: {line:?}"))
        .to_string();

    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let health = agent
        .get(format!("{url}/healthz"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert_eq!(health, "ok");
    let request = EnrollRequest {
        code,
        device_name: "一号机".into(),
        actors: vec![automerge::ActorId::random().to_hex_string()],
        signing_key: None,
    };
    let mut response = agent
        .post(format!("{url}/v1/enroll"))
        .content_type("application/json")
        .send(serde_json::to_vec(&request).unwrap())
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let enrolled: serde_json::Value =
        serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();

    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");

    let devices = json(dir, &["--json", "device", "list"]);
    assert_eq!(devices.as_array().unwrap().len(), 1);
    assert_eq!(devices[0]["device_id"], enrolled["device_id"]);
    assert_eq!(devices[0]["revoked_at"], serde_json::Value::Null);
    let id = enrolled["device_id"].as_str().unwrap();
    ok(dir, &["device", "revoke", id]);
    let table = ok(dir, &["device", "list"]);
    assert!(table.contains(id) && table.contains("一号机"), "{table}");
    let devices = json(dir, &["--json", "device", "list"]);
    assert!(devices[0]["revoked_at"].is_string());
}

#[test]
fn settings_come_from_flags_then_env_then_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bureau.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nexpires_hours = 1\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut init = Command::new(BIN);
    init.env_remove("FIELDLOG_BUREAU_DATA_DIR")
        .env_remove("FIELDLOG_BUREAU_EXPIRES_HOURS")
        .args([
            "--config",
            config.to_str().unwrap(),
            "--json",
            "init",
            "--coordinator",
            "王主任",
            "--districts",
            "南山区",
        ]);
    let out = init.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        data.join("bureau.sqlite3").exists(),
        "data_dir from the file"
    );
    let expiry = |extra: &[&str], env: Option<&str>| {
        let mut command = Command::new(BIN);
        command
            .env_remove("FIELDLOG_BUREAU_DATA_DIR")
            .env_remove("FIELDLOG_BUREAU_EXPIRES_HOURS");
        if let Some(hours) = env {
            command.env("FIELDLOG_BUREAU_EXPIRES_HOURS", hours);
        }
        let out = command
            .args([
                "--config",
                config.to_str().unwrap(),
                "--json",
                "enroll",
                "--team",
                "bureau",
                "--member",
                "王主任",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        chrono::DateTime::parse_from_rfc3339(value["expires_at"].as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    let file = expiry(&[], None);
    let env = expiry(&[], Some("100"));
    let flag = expiry(&["--expires-hours", "1000"], Some("100"));
    // Codes are issued moments apart; the hours set apart who won.
    assert!(
        env - file > 90 * 3600 && env - file < 110 * 3600,
        "env wins over the file"
    );
    assert!(flag - env > 800 * 3600, "the flag wins over env");

    let bad = Command::new(BIN)
        .env_remove("FIELDLOG_BUREAU_DATA_DIR")
        .args(["device", "list"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no data directory"));
}

#[test]
fn the_database_comes_from_the_flag_the_environment_or_the_file() {
    let Some(cluster) = PgCluster::shared_or_skip("the_database_comes_from_the_flag…") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (from_file, from_env) = (cluster.create_database(), cluster.create_database());
    let config = dir.path().join("bureau.toml");
    std::fs::write(&config, format!("database = {from_file:?}\n")).unwrap();
    let command = |args: &[&str]| {
        let mut command = Command::new(BIN);
        command
            .env_remove("FIELDLOG_BUREAU_DATABASE")
            .env("FIELDLOG_BUREAU_DATA_DIR", &data)
            .args(["--config", config.to_str().unwrap()])
            .args(args);
        command
    };
    let succeeds = |mut command: Command| {
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    succeeds(command(&[
        "init",
        "--coordinator",
        "王主任",
        "--districts",
        "南山区",
    ]));
    assert!(
        !data.join(fieldlog_bureau::DB_FILE).exists(),
        "no embedded file"
    );
    let teams = |url: &str| -> i64 {
        let url = url.to_string();
        std::thread::spawn(move || {
            PgCluster::connect(&url)
                .unwrap()
                .query_one("SELECT count(*) FROM teams", &[])
                .unwrap()
                .get(0)
        })
        .join()
        .unwrap()
    };
    assert_eq!(teams(&from_file), 1, "the file's database");
    // The variable wins over the file, and the flag over both.
    let mut env = command(&["init", "--coordinator", "王主任", "--districts", "南山区"]);
    env.env("FIELDLOG_BUREAU_DATABASE", &from_env);
    succeeds(env);
    assert_eq!(teams(&from_env), 1);
    let mut flag = command(&[
        "--database",
        &from_file,
        "team",
        "add",
        "--team",
        "caravan-1",
    ]);
    flag.args(["--kind", "caravan", "--districts", "南山区"])
        .env("FIELDLOG_BUREAU_DATABASE", &from_env);
    succeeds(flag);
    assert_eq!((teams(&from_file), teams(&from_env)), (2, 1));

    // `backup` copies the embedded file; a PostgreSQL bureau is told to use its tools.
    let out = command(&["backup", "--to", dir.path().join("b").to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("pg_dump"),
        "{stderr}"
    );

    // Not a database the bureau speaks: said before anything is touched.
    let out = command(&["--database", "mysql://db/bureau", "team", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--database must be a postgres:// URL"),
        "{stderr}"
    );
    // Unreachable: the error names the server, never the password.
    let out = command(&[
        "--database",
        "postgres://u:s3cret@127.0.0.1:1/bureau",
        "team",
        "list",
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
