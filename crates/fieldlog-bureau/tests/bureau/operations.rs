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
    let db = rusqlite::Connection::open(server.dir.path().join(fieldlog_bureau::sqlite::DB_FILE))
        .unwrap();
    db.execute_batch("ALTER TABLE teams RENAME TO teams_away")
        .unwrap();
    let (status, body) = server.get_text("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("not ready: the storage failed a query") && body.contains("teams"),
        "{body}"
    );
    assert_eq!(server.healthz(), (200, "ok".to_string()));
    db.execute_batch("ALTER TABLE teams_away RENAME TO teams")
        .unwrap();
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
