//! The PostgreSQL fixture itself (`fieldlog_tests::postgres`): separate databases, data kept
//! across a restart and a stop, and nothing left behind by a dropped cluster or a test process
//! that ended without dropping one.

use fieldlog_tests::postgres::PgCluster;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the watchdog may take to notice its process ended (it looks every second).
const WATCHDOG_DEADLINE: Duration = Duration::from_secs(30);

fn note(url: &str) -> String {
    let mut client = PgCluster::connect(url).unwrap();
    let row = client
        .query_one("SELECT note FROM visits WHERE id = 1", &[])
        .unwrap();
    row.get(0)
}

#[test]
fn a_cluster_keeps_its_databases_apart_and_a_committed_row_across_a_restart_and_a_stop() {
    let Some(cluster) = PgCluster::start_or_skip(
        "a_cluster_keeps_its_databases_apart_and_a_committed_row_across_a_restart_and_a_stop",
    ) else {
        return;
    };
    let first = cluster.create_database();
    let second = cluster.create_database();
    assert_ne!(first, second);
    let prefix = format!("postgres://postgres@127.0.0.1:{}/", cluster.port());
    assert!(first.starts_with(&prefix), "{first}");

    let mut client = PgCluster::connect(&first).unwrap();
    client
        .batch_execute(
            "CREATE TABLE visits (id integer PRIMARY KEY, note text NOT NULL);
             INSERT INTO visits VALUES (1, 'école de Kaya');",
        )
        .unwrap();
    assert_eq!(note(&first), "école de Kaya");
    let missing = PgCluster::connect(&second)
        .unwrap()
        .query("SELECT note FROM visits", &[])
        .unwrap_err();
    assert_eq!(
        missing.code(),
        Some(&postgres::error::SqlState::UNDEFINED_TABLE),
        "{missing}"
    );

    cluster.restart().unwrap();
    assert!(
        client.query("SELECT 1", &[]).is_err(),
        "a connection from before the restart still answers"
    );
    assert_eq!(note(&first), "école de Kaya", "after the restart");

    cluster.stop().unwrap();
    assert!(
        PgCluster::connect(&first).is_err(),
        "a stopped server answers"
    );
    cluster.start().unwrap();
    assert_eq!(note(&first), "école de Kaya", "after a stop and a start");
}

#[test]
fn dropping_a_cluster_stops_its_server_and_removes_its_dir() {
    let Some(cluster) =
        PgCluster::start_or_skip("dropping_a_cluster_stops_its_server_and_removes_its_dir")
    else {
        return;
    };
    let url = cluster.create_database();
    PgCluster::connect(&url).unwrap();
    let dir = cluster.dir().to_path_buf();
    assert!(dir.join("data").join("PG_VERSION").is_file());
    drop(cluster);
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(
        PgCluster::connect(&url).is_err(),
        "a dropped cluster answers"
    );
}

#[test]
fn the_shared_cluster_starts_once_and_gives_each_caller_its_own_database_even_inside_tokio() {
    let test =
        "the_shared_cluster_starts_once_and_gives_each_caller_its_own_database_even_inside_tokio";
    let Some(shared) = PgCluster::shared_or_skip(test) else {
        return;
    };
    let again = PgCluster::shared_or_skip(test).unwrap();
    assert!(std::ptr::eq(shared, again));

    // The blocking client would panic on a runtime's thread; the fixture's SQL has its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (first, second) =
        runtime.block_on(async { (shared.create_database(), shared.create_database()) });
    assert_ne!(first, second);
    let database = first.rsplit('/').next().unwrap();
    shared
        .execute(
            database,
            "CREATE TABLE visits (id integer PRIMARY KEY, note text NOT NULL);
             INSERT INTO visits VALUES (1, 'shared');",
        )
        .unwrap();
    assert_eq!(note(&first), "shared");
}

#[test]
fn the_watchdog_stops_the_server_and_removes_its_dir_when_the_watched_process_ends() {
    let Some(bin) = PgCluster::bin_or_skip(
        "the_watchdog_stops_the_server_and_removes_its_dir_when_the_watched_process_ends",
    ) else {
        return;
    };
    // Stands for a test process that ends without dropping its cluster (killed, or a static).
    let mut process = Command::new("sleep")
        .arg("600")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let cluster = PgCluster::new_watching(&bin, process.id()).unwrap();
    let url = cluster.create_database();
    let dir = cluster.dir().to_path_buf();

    process.kill().unwrap();
    process.wait().unwrap();
    let asked = Instant::now();
    while dir.exists() {
        assert!(
            asked.elapsed() < WATCHDOG_DEADLINE,
            "{} is still there {WATCHDOG_DEADLINE:?} after its process ended",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        PgCluster::connect(&url).is_err(),
        "the server still answers once its dir is gone"
    );
}
