//! A real S3-compatible server for tests: `moto_server` (PyPI `moto[server]`) on a free
//! loopback port, with one bucket, killed when dropped.
//!
//! `cargo xtask test` installs it (pinned, in a venv under the target dir's tools) and names
//! it in [`MOTO_ENV`]; set there, a server that does not start fails the test. Under plain
//! `cargo test` without the variable, [`S3Server::start_or_skip`] says the test is skipped.

use fieldlog_bureau::S3Settings;
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path of `moto_server`, set by `cargo xtask test`.
pub const MOTO_ENV: &str = "FIELDLOG_MOTO_SERVER";
/// The bucket every server starts with.
pub const BUCKET: &str = "fieldlog-photos";
/// How long the server has to answer (it takes about a second).
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How often a starting server is asked whether it answers.
const POLL: Duration = Duration::from_millis(50);
/// Tries with a new free port, should another process take the one chosen first.
const PORT_TRIES: usize = 3;

/// Whether the server checks the credentials requests are signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// Any key and secret (moto's default).
    AnyTaken,
    /// Only keys moto's IAM knows, so none a test makes up: each request is refused
    /// `InvalidAccessKeyId` (403), as S3 refuses a wrong key.
    Checked,
}

/// A `moto_server` process holding [`BUCKET`].
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    pub bucket: String,
    log: tempfile::NamedTempFile,
}

impl S3Server {
    /// The server named by [`MOTO_ENV`], or `None` (after saying `test` is skipped) when
    /// the variable is not set. Panics when it is set and the server does not start.
    pub fn start_or_skip(test: &str) -> Option<S3Server> {
        S3Server::start_or_skip_with(test, Credentials::AnyTaken)
    }

    /// [`S3Server::start_or_skip`], with the server taking or refusing credentials.
    pub fn start_or_skip_with(test: &str, credentials: Credentials) -> Option<S3Server> {
        match std::env::var_os(MOTO_ENV) {
            Some(program) => match S3Server::start(Path::new(&program), credentials) {
                Ok(server) => Some(server),
                Err(e) => panic!("{MOTO_ENV}: {e}"),
            },
            None => {
                #[allow(clippy::print_stderr, reason = "the skip must show in the test output")]
                {
                    eprintln!(
                        "skipped {test}: {MOTO_ENV} is not set (`cargo xtask test` installs moto_server and sets it)"
                    );
                }
                None
            }
        }
    }

    /// Starts `program` on a free loopback port and creates [`BUCKET`], polling until it
    /// answers (within [`START_DEADLINE`]).
    pub fn start(program: &Path, credentials: Credentials) -> Result<S3Server, String> {
        let mut last = String::new();
        for _ in 0..PORT_TRIES {
            match S3Server::start_once(program, credentials) {
                Ok(server) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn start_once(program: &Path, credentials: Credentials) -> Result<S3Server, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let log = tempfile::NamedTempFile::new().map_err(|e| format!("a log file: {e}"))?;
        let output = |log: &tempfile::NamedTempFile| {
            log.reopen()
                .map(Stdio::from)
                .map_err(|e| format!("opening {}: {e}", log.path().display()))
        };
        let mut command = Command::new(program);
        if credentials == Credentials::Checked {
            // moto checks credentials after this many requests: the bucket's creation.
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", "1");
        }
        let child = command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(output(&log)?)
            .stderr(output(&log)?)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", program.display()))?;
        let mut server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: BUCKET.to_string(),
            log,
        };
        let started = Instant::now();
        loop {
            // Creating the bucket is the first request that succeeds once it listens.
            let created = server
                .request("PUT", &format!("/{BUCKET}"), None)
                .map(|(status, _)| status);
            match created {
                Ok(200) => return Ok(server),
                Ok(status) => {
                    return Err(format!(
                        "creating the bucket: {status}\n{}",
                        server.log_text()
                    ));
                }
                Err(_) if started.elapsed() < START_DEADLINE => {}
                Err(e) => {
                    return Err(format!(
                        "{} did not answer within {START_DEADLINE:?}: {e}\n{}",
                        program.display(),
                        server.log_text()
                    ));
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before answering\n{}",
                    program.display(),
                    server.log_text()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The bureau's settings for this server's bucket, under `prefix`.
    pub fn settings(&self, prefix: &str) -> S3Settings {
        S3Settings {
            bucket: self.bucket.clone(),
            prefix: prefix.to_string(),
            endpoint: Some(self.endpoint.clone()),
            region: "us-east-1".into(),
            // moto takes any credentials.
            access_key_id: "fieldlog-test".into(),
            secret_access_key: "fieldlog-test-secret".into(),
            session_token: None,
        }
    }

    /// The object `key` in the bucket, if it is there.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        match self.request("GET", &format!("/{}/{key}", self.bucket), None) {
            Ok((200, body)) => Some(body),
            Ok((404, _)) => None,
            other => panic!("GET {key}: {other:?}"),
        }
    }

    /// Removes the object `key` from the bucket.
    pub fn delete(&self, key: &str) {
        match self.request("DELETE", &format!("/{}/{key}", self.bucket), None) {
            Ok((204 | 200, _)) => {}
            other => panic!("DELETE {key}: {other:?}"),
        }
    }

    /// Removes the (empty) bucket: requests naming it are then refused `NoSuchBucket`,
    /// while one for an object in it reads as "not there".
    pub fn delete_bucket(&self) {
        match self.request("DELETE", &format!("/{}", self.bucket), None) {
            Ok((204 | 200, _)) => {}
            other => panic!("DELETE the bucket: {other:?}"),
        }
    }

    /// Creates the bucket again.
    pub fn create_bucket(&self) {
        match self.request("PUT", &format!("/{}", self.bucket), None) {
            Ok((200, _)) => {}
            other => panic!("PUT the bucket: {other:?}"),
        }
    }

    /// Kills the server now (the bureau's store then stops answering).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// A request to the server: its status and body. moto checks no signature, but answers
    /// an anonymous `GET` 403, so the request carries a made-up one.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(u16, Vec<u8>), String> {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(10)))
                .build(),
        );
        let url = format!("{}{path}", self.endpoint);
        let auth = "AWS4-HMAC-SHA256 Credential=fieldlog-test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";
        let sent = match method {
            "PUT" => agent
                .put(&url)
                .header("Authorization", auth)
                .send(body.unwrap_or_default()),
            "DELETE" => agent.delete(&url).header("Authorization", auth).call(),
            _ => agent.get(&url).header("Authorization", auth).call(),
        };
        let mut response = sent.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        response
            .body_mut()
            .as_reader()
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        Ok((status, bytes))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
