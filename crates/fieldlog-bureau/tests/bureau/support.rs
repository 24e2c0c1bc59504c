//! A real bureau on a loopback port, devices that write with Automerge directly, and a
//! look at what the bureau stored.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ObjType, ROOT};
use fieldlog_bureau::{Bureau, Config, Database, FixedClock, TeamType};
use fieldlog_domain::photo::PhotoRef;
use fieldlog_domain::sync::{
    ChangeSignature, DocChanges, EnrollRequest, EnrollResponse, ErrorBody, PROTOCOL_VERSION,
    Refusal, SYNC_CONTENT_TYPE, SyncRequest, SyncResponse,
};
use fieldlog_domain::{Role, School, SchoolFields, SchoolId, SchoolStatus};
use fieldlog_tests::backend::Backend;
use fieldlog_tests::s3::S3Server;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// 2026-05-20T08:00:00Z, when every test runs.
pub const T0: i64 = 1_779_264_000_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const LEDGER: &str = "ledger/caravan-1/2026-05";
pub const OTHER_LEDGER: &str = "ledger/caravan-2/2026-05";
pub const REGISTRY: &str = "registry/南山区";

/// A bureau served on `127.0.0.1:0` in this process. Dropping it shuts the server down
/// gracefully and waits for it.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub bureau: Bureau,
    pub clock: FixedClock,
    pub url: String,
    agent: ureq::Agent,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    runtime: tokio::runtime::Runtime,
    /// The S3 server holding the complete photo files, if not the data directory.
    pub s3: Option<S3Server>,
    /// The PostgreSQL database holding the records, if not the data directory's file.
    pub database: Option<String>,
}

/// Where a test bureau keeps complete photo files.
pub enum PhotoStore {
    /// `blobs/` in its data directory (the default).
    Local,
    /// A bucket on this S3 server, under [`S3_PREFIX`].
    S3(S3Server),
}

/// Where a test bureau's photo files go in the bucket.
pub const S3_PREFIX: &str = "bureau/photos";

/// Each `fn name(PhotoStore)` listed as two tests, `local::name` and `s3::name`; the second
/// is skipped (and says so) when there is no `moto_server` to run.
macro_rules! on_both_photo_stores {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::support::PhotoStore::Local);
                }
            )*
        }
        mod s3 {
            $(
                #[test]
                fn $name() {
                    if let Some(server) =
                        fieldlog_tests::s3::S3Server::start_or_skip(stringify!($name))
                    {
                        super::$name($crate::support::PhotoStore::S3(server));
                    }
                }
            )*
        }
    };
}
pub(crate) use on_both_photo_stores;

impl Server {
    pub fn start() -> Server {
        Server::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Server {
        Server::on(config, PhotoStore::Local)
    }

    /// [`Server::with_config`], its complete photo files in `photos`. On the PostgreSQL
    /// backend ([`Backend::from_env`]) the records go to a new database and the photo
    /// files to a bucket, always.
    pub fn on(config: Config, photos: PhotoStore) -> Server {
        Server::on_backend(config, photos, Backend::from_env())
    }

    /// A bureau on the embedded backend whatever the suite runs on.
    pub fn embedded(config: Config) -> Server {
        Server::on_backend(config, PhotoStore::Local, Backend::Embedded)
    }

    /// [`Server::on`] on `backend`; a `config` naming its own database keeps it.
    fn on_backend(config: Config, photos: PhotoStore, backend: Backend) -> Server {
        let (photos, database) = match (backend, &config.database, photos) {
            (Backend::PostgresS3, Database::Embedded, photos) => (
                match photos {
                    PhotoStore::Local => PhotoStore::S3(Backend::s3_server()),
                    s3 => s3,
                },
                Database::Postgres {
                    url: Backend::fresh_database(),
                },
            ),
            (_, database, photos) => (photos, database.clone()),
        };
        let (blob_store, s3) = match photos {
            PhotoStore::Local => (config.blob_store.clone(), None),
            PhotoStore::S3(s3) => {
                let store = fieldlog_bureau::S3Store::new(&s3.settings(S3_PREFIX)).unwrap();
                (
                    Some(Arc::new(store) as Arc<dyn fieldlog_bureau::BlobStore>),
                    Some(s3),
                )
            }
        };
        let config = Config {
            blob_store,
            database,
            ..config
        };
        let dir = tempfile::tempdir().unwrap();
        let clock = FixedClock::at(T0);
        let bureau = Bureau::open(
            dir.path(),
            Config {
                clock: Arc::new(clock.clone()),
                ..config
            },
        )
        .unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // Bound before serving: connections wait in the backlog, so no readiness wait.
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let task = runtime.spawn(fieldlog_bureau::serve(listener, bureau.clone(), async {
            let _ = stop.await;
        }));
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        );
        let database = match &bureau.config().database {
            Database::Postgres { url } => Some(url.clone()),
            Database::Embedded => None,
        };
        Server {
            dir,
            bureau,
            clock,
            url,
            agent,
            shutdown: Some(shutdown),
            task: Some(task),
            runtime,
            s3,
            database,
        }
    }

    /// A second bureau on the same data and database, as another process (an admin
    /// command, a restart) opens it.
    pub fn open_again(&self) -> Bureau {
        Bureau::open(
            self.dir.path(),
            Config {
                database: self.bureau.config().database.clone(),
                ..Config::default()
            },
        )
        .unwrap()
    }

    /// The bytes of a complete photo file, read where this bureau keeps them (not through
    /// the bureau). In a bucket, the data directory holds no complete file of it.
    pub fn complete_blob(&self, sha256: &str) -> Option<Vec<u8>> {
        let local = fieldlog_core::photo::stored_path(
            &self.dir.path().join(fieldlog_bureau::BLOB_DIR),
            sha256,
        );
        match &self.s3 {
            None => std::fs::read(local).ok(),
            Some(s3) => {
                assert!(!local.exists(), "{} is in the bucket, not here", sha256);
                s3.object(&format!("{S3_PREFIX}/{}/{sha256}.jpg", &sha256[..2]))
            }
        }
    }

    /// Removes a complete photo file from where this bureau keeps it (the bureau then
    /// takes it again from the start).
    pub fn forget_blob(&self, sha256: &str) {
        match &self.s3 {
            None => std::fs::remove_file(fieldlog_core::photo::stored_path(
                &self.dir.path().join(fieldlog_bureau::BLOB_DIR),
                sha256,
            ))
            .unwrap(),
            Some(s3) => s3.delete(&format!("{S3_PREFIX}/{}/{sha256}.jpg", &sha256[..2])),
        }
    }

    /// The usual world: the bureau's region 南山区 and 北山区, caravan-1 in 南山区,
    /// caravan-2 in 西山区.
    pub fn with_teams() -> Server {
        Server::with_teams_config(Config::default())
    }

    /// [`Server::with_teams`] with `config`.
    pub fn with_teams_config(config: Config) -> Server {
        Server::with_teams_on(config, PhotoStore::Local)
    }

    /// [`Server::with_teams_config`], its complete photo files in `photos`.
    pub fn with_teams_on(config: Config, photos: PhotoStore) -> Server {
        let server = Server::on(config, photos);
        server.add_usual_teams();
        server
    }

    /// The bureau's region 南山区 and 北山区, caravan-1 in 南山区, caravan-2 in 西山区.
    pub fn add_usual_teams(&self) {
        self.bureau
            .initialize(
                "王主任",
                &["南山区".into(), "北山区".into()],
                Duration::from_secs(3600),
            )
            .unwrap();
        self.bureau
            .add_team("caravan-1", TeamType::Caravan, &["南山区".into()])
            .unwrap();
        self.bureau
            .add_team("caravan-2", TeamType::Caravan, &["西山区".into()])
            .unwrap();
    }

    /// A caravan-1 device store (李老师's), enrolled and synced, that then recorded a visit
    /// at 南山小学 (imported here) with one photo of noise, not yet synced.
    pub fn photographer(&self) -> (fieldlog_core::Store, tempfile::TempDir, PhotoRef) {
        self.bureau
            .import_schools_csv("name,district,area\n南山小学,南山区,城区\n".as_bytes())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store = fieldlog_core::Store::init(
            &dir.path().join("data"),
            "一号机",
            "caravan-1",
            fieldlog_core::Options::default(),
        )
        .unwrap();
        let code = self.code("caravan-1", "李老师", Role::Volunteer);
        fieldlog_core::sync::enroll(&mut store, &self.url, &code).unwrap();
        fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
        let input = serde_json::from_value(serde_json::json!({
            "school": "南山小学", "activities": ["lecture"], "audience": {"students": 30},
        }))
        .unwrap();
        let visit = store
            .add_visit(&input, "2026-05-20".parse().unwrap())
            .unwrap();
        let source = dir.path().join("photo.png");
        noise(800, 600, 7).save(&source).unwrap();
        let photo = store.add_photo(visit.id, &source, "实验课", true).unwrap();
        (store, dir, photo)
    }

    /// A complete photo file as a device holding `token` downloads it.
    pub fn fetch_blob(&self, token: &str, sha256: &str) -> Vec<u8> {
        let mut response = self
            .agent
            .get(format!("{}/v1/blobs/{sha256}", self.url))
            .header("authorization", format!("Bearer {token}"))
            .call()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.body_mut().read_to_vec().unwrap()
    }

    pub fn code(&self, team: &str, member: &str, role: Role) -> String {
        self.bureau
            .issue_code(team, member, role, Duration::from_secs(3600))
            .unwrap()
            .code
    }

    /// Posts an enrollment request as JSON.
    pub fn post_enroll(&self, request: &EnrollRequest) -> Result<EnrollResponse, (u16, ErrorBody)> {
        let mut response = self
            .agent
            .post(format!("{}/v1/enroll", self.url))
            .content_type("application/json")
            .send(serde_json::to_vec(request).unwrap())
            .unwrap();
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_vec().unwrap();
        if status == 200 {
            Ok(serde_json::from_slice(&body).unwrap())
        } else {
            Err((status, serde_json::from_slice(&body).unwrap()))
        }
    }

    /// `GET /v1/members` with `token`: the status and the JSON body.
    pub fn members(&self, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut request = self.agent.get(format!("{}/v1/members", self.url));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = request.call().unwrap();
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_vec().unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    /// Enrolls a new device (with a fresh actor) for a new member of `team`.
    pub fn device(&self, team: &str, member: &str, role: Role) -> Device {
        let actor = ActorId::random();
        let key = fieldlog_core::signing::new_key();
        let enrolled = self
            .post_enroll(&EnrollRequest {
                code: self.code(team, member, role),
                device_name: format!("{member}的手机"),
                actors: vec![actor.to_hex_string()],
                signing_key: Some(hex::encode(fieldlog_core::signing::public_key(&key))),
            })
            .unwrap();
        Device {
            token: enrolled.token,
            device_id: enrolled.device_id,
            actor,
            key,
            docs: BTreeMap::new(),
            cursor: 0,
            resume: None,
            visits: 0,
        }
    }

    /// Posts a raw sync body with the protocol's headers (and `token` if given).
    pub fn post_sync_raw(&self, token: Option<&str>, body: Vec<u8>) -> (u16, Vec<u8>) {
        let mut request = self
            .agent
            .post(format!("{}/v1/sync", self.url))
            .header("Content-Type", SYNC_CONTENT_TYPE)
            .header("Content-Encoding", "zstd");
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = request.send(body).unwrap();
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .unwrap();
        (status, body)
    }

    pub fn sync(&self, token: &str, request: &SyncRequest) -> Result<SyncResponse, Refused> {
        self.sync_body(Some(token), encode(request))
    }

    pub fn sync_body(&self, token: Option<&str>, body: Vec<u8>) -> Result<SyncResponse, Refused> {
        let (status, body) = self.post_sync_raw(token, body);
        if status == 200 {
            let inflated = zstd::decode_all(&body[..]).unwrap();
            Ok(postcard::from_bytes(&inflated).unwrap())
        } else {
            let body: ErrorBody = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("status {status} without an error body: {e}"));
            Err(Refused {
                status,
                reason: body.error.reason,
                message: body.error.message,
            })
        }
    }

    /// One round for `device`: sends `docs`, stores what comes back, moves its cursor.
    pub fn round(
        &self,
        device: &mut Device,
        docs: Vec<DocChanges>,
        max_changes: u32,
    ) -> SyncResponse {
        let mut request = request(device.cursor, docs, max_changes);
        request.resume = device.resume.clone();
        let answer = self.sync(&device.token, &request).unwrap();
        device.receive(&answer);
        answer
    }

    /// Runs statements (the same SQL on both engines) on the bureau's own database, behind
    /// its back.
    pub fn execute_sql(&self, sql: &str) {
        match &self.database {
            Some(url) => on_postgres(url, |client| client.batch_execute(sql).unwrap()),
            None => self.sqlite().execute_batch(sql).unwrap(),
        }
    }

    /// The first column, as text, of each row `sql` selects from the bureau's own database.
    pub fn texts(&self, sql: &str) -> Vec<String> {
        match &self.database {
            Some(url) => on_postgres(url, |client| {
                client
                    .query(sql, &[])
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect()
            }),
            None => self
                .sqlite()
                .prepare(sql)
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap(),
        }
    }

    /// Puts a change straight into the log of a document the bureau holds, as an older
    /// bureau (one that did not check sizes) would have stored it.
    pub fn inject_change(&self, doc_id: &str, hash: &[u8], device_id: &str, bytes: &[u8]) {
        match &self.database {
            Some(url) => on_postgres(url, |client| {
                let mut tx = client.transaction().unwrap();
                tx.execute(
                    "WITH n AS (UPDATE log_counter SET seq = seq + 1 RETURNING seq)
                     INSERT INTO changes (seq, doc_id, scope_key, hash, device_id, bytes)
                     SELECT n.seq, $1, (SELECT scope_key FROM documents WHERE doc_id = $1),
                            $2, $3, $4
                     FROM n",
                    &[&doc_id, &hash, &device_id, &bytes],
                )
                .unwrap();
                tx.execute(
                    "UPDATE documents SET last_seq = (SELECT max(seq) FROM changes)
                     WHERE doc_id = $1",
                    &[&doc_id],
                )
                .unwrap();
                tx.commit().unwrap();
            }),
            None => {
                let conn = self.sqlite();
                conn.execute(
                    "INSERT INTO changes (doc_id, scope_key, hash, device_id, bytes)
                     VALUES (?1, (SELECT scope_key FROM documents WHERE doc_id = ?1), ?2, ?3, ?4)",
                    rusqlite::params![doc_id, hash, device_id, bytes],
                )
                .unwrap();
                conn.execute(
                    "UPDATE documents SET last_seq = (SELECT max(seq) FROM changes)
                     WHERE doc_id = ?1",
                    [doc_id],
                )
                .unwrap();
            }
        }
    }

    fn sqlite(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.path().join(fieldlog_bureau::DB_FILE)).unwrap()
    }

    /// Everything the bureau stored: the change log and the documents' rows.
    pub fn stored(&self) -> Stored {
        if let Some(url) = &self.database {
            return stored_in_postgres(url);
        }
        let conn =
            rusqlite::Connection::open(self.dir.path().join(fieldlog_bureau::DB_FILE)).unwrap();
        let changes = conn
            .prepare("SELECT seq, doc_id, hash FROM changes ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let documents = conn
            .prepare("SELECT doc_id, heads, last_seq FROM documents ORDER BY doc_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        Stored { changes, documents }
    }

    pub fn healthz(&self) -> (u16, String) {
        let mut response = self
            .agent
            .get(format!("{}/healthz", self.url))
            .call()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let stopped = self.runtime.block_on(task);
            if !std::thread::panicking() {
                stopped.unwrap().unwrap();
            }
        }
    }
}

/// Runs `f` with a client of the database at `url`, on a thread of its own (the blocking
/// client runs a runtime of its own).
fn on_postgres<T: Send>(url: &str, f: impl FnOnce(&mut postgres::Client) -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| f(&mut fieldlog_tests::postgres::PgCluster::connect(url).unwrap()))
            .join()
            .unwrap()
    })
}

/// [`Server::stored`] from a PostgreSQL database.
fn stored_in_postgres(url: &str) -> Stored {
    on_postgres(url, |client| {
        let changes = client
            .query("SELECT seq, doc_id, hash FROM changes ORDER BY seq", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let documents = client
            .query(
                "SELECT doc_id, heads, last_seq FROM documents ORDER BY doc_id",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        Stored { changes, documents }
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// (seq, doc_id, hash)
    pub changes: Vec<(i64, String, Vec<u8>)>,
    /// (doc_id, heads, last_seq)
    pub documents: Vec<(String, Vec<u8>, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub reason: Refusal,
    pub message: String,
}

/// A device as the tests drive it: its token, its actor and its documents.
#[derive(Debug)]
pub struct Device {
    pub token: String,
    pub device_id: String,
    pub actor: ActorId,
    /// The device's signing key, registered at enrollment.
    pub key: ed25519_dalek::SigningKey,
    pub docs: BTreeMap<String, AutoCommit>,
    pub cursor: u64,
    /// Where a first sync's delivery of whole documents goes on.
    pub resume: Option<String>,
    visits: u32,
}

impl Device {
    pub fn doc(&mut self, doc_id: &str) -> &mut AutoCommit {
        let actor = self.actor.clone();
        self.docs
            .entry(doc_id.to_string())
            .or_insert_with(|| AutoCommit::new().with_actor(actor))
    }

    /// The record key (a visit id) of this device's `n`th visit (from 1).
    pub fn visit_key(&self, n: u32) -> String {
        let mut bytes = [0u8; 16];
        let actor = self.actor.to_bytes();
        let len = actor.len().min(12);
        bytes[..len].copy_from_slice(&actor[..len]);
        bytes[12..].copy_from_slice(&n.to_be_bytes());
        uuid::Uuid::from_bytes(bytes).to_string()
    }

    /// This device's signature of a change.
    pub fn sign(&self, change: &[u8]) -> ChangeSignature {
        fieldlog_core::signing::sign(
            &self.key,
            &Change::from_bytes(change.to_vec()).unwrap().hash(),
        )
    }

    /// Records a visit in `doc_id` as one change; returns the change.
    pub fn add_visit(&mut self, doc_id: &str, topic: &str) -> Vec<u8> {
        self.visits += 1;
        let key = self.visit_key(self.visits);
        let doc = self.doc(doc_id);
        let visit = doc.put_object(ROOT, key, ObjType::Map).unwrap();
        doc.put(&visit, "topic", topic).unwrap();
        doc.put(&visit, "date", "2026-05-20").unwrap();
        commit(doc, "add visit")
    }

    /// Enters a school in the registry the way a device does (pending); returns its id and
    /// the change.
    pub fn add_school(&mut self, name: &str, status: SchoolStatus) -> (SchoolId, Vec<u8>) {
        let school = School {
            id: SchoolId(uuid::Uuid::now_v7()),
            fields: SchoolFields {
                name: name.to_string(),
                district: fieldlog_domain::District::parse("南山区").unwrap(),
                area: fieldlog_domain::Area::Rural,
                level: None,
                enrollment: None,
            },
            status,
            merged_into: None,
        };
        let doc = self.doc(REGISTRY);
        fieldlog_core::ledger::put_school(doc, &school).unwrap();
        (school.id, commit(doc, "put school"))
    }

    /// Writes a "verified" decision about `visit` into a review document; returns the change.
    pub fn verify(&mut self, doc_id: &str, visit: &str) -> Vec<u8> {
        self.decide(
            doc_id,
            fieldlog_domain::DecisionKind::Verify,
            visit.parse().ok(),
            None,
        )
    }

    /// Writes any decision, sensible or not, into a review document; returns the change.
    pub fn decide(
        &mut self,
        doc_id: &str,
        kind: fieldlog_domain::DecisionKind,
        visit: Option<fieldlog_domain::VisitId>,
        other: Option<fieldlog_domain::VisitId>,
    ) -> Vec<u8> {
        let decision = fieldlog_domain::Decision {
            id: uuid::Uuid::now_v7().to_string(),
            kind,
            visit,
            other,
            school: None,
            into: None,
            audience: None,
            fields: Vec::new(),
            value: String::new(),
            note: String::new(),
            member: "someone".into(),
            device: "some device".into(),
            at: T0,
        };
        let doc = self.doc(doc_id);
        fieldlog_core::ledger::insert_decision(doc, &decision).unwrap();
        commit(doc, "decide")
    }

    /// Sets a target in a targets document; returns the change.
    pub fn set_target(&mut self, doc_id: &str) -> Vec<u8> {
        let target = fieldlog_domain::Target {
            year: 2026,
            district: None,
            key: fieldlog_domain::TargetKey::Lectures,
            goal: fieldlog_domain::Goal::Number(1.0),
            set_by: "someone".into(),
            set_at: T0,
        };
        let doc = self.doc(doc_id);
        fieldlog_core::ledger::put_target(doc, &target).unwrap();
        commit(doc, "set target")
    }

    /// Sets one field of a record in a document; returns the change.
    pub fn set(&mut self, doc_id: &str, record: &str, key: &str, value: &str) -> Vec<u8> {
        let doc = self.doc(doc_id);
        let obj = fieldlog_core::ledger::record_obj(doc, record).expect("the record exists");
        doc.put(&obj, key, value).unwrap();
        commit(doc, "edit")
    }

    pub fn receive(&mut self, answer: &SyncResponse) {
        for doc in &answer.changes {
            if let Some(document) = &doc.document {
                self.doc(&doc.doc_id).load_incremental(document).unwrap();
            }
            let changes: Vec<Change> = doc
                .changes
                .iter()
                .map(|c| Change::from_bytes(c.to_vec()).unwrap())
                .collect();
            self.doc(&doc.doc_id).apply_changes(changes).unwrap();
        }
        self.cursor = answer.cursor;
        self.resume = answer.resume.clone();
    }
}

fn commit(doc: &mut AutoCommit, message: &str) -> Vec<u8> {
    doc.commit_with(
        CommitOptions::default()
            .with_message(message.to_string())
            .with_time(T0),
    );
    doc.get_last_local_change().unwrap().raw_bytes().to_vec()
}

pub fn docs(doc_id: &str, changes: Vec<Vec<u8>>) -> Vec<DocChanges> {
    vec![DocChanges {
        doc_id: doc_id.to_string(),
        changes: changes.into_iter().map(Into::into).collect(),
        document: None,
        signatures: Vec::new(),
    }]
}

pub fn request(cursor: u64, docs: Vec<DocChanges>, max_changes: u32) -> SyncRequest {
    SyncRequest {
        protocol: PROTOCOL_VERSION,
        cursor,
        docs,
        max_changes,
        signing_key: None,
        resume: None,
    }
}

pub fn encode(request: &SyncRequest) -> Vec<u8> {
    zstd::encode_all(&postcard::to_allocvec(request).unwrap()[..], 3).unwrap()
}

/// A change's hash, as the protocol carries it.
pub fn hash_of(change: &[u8]) -> [u8; 32] {
    Change::from_bytes(change.to_vec()).unwrap().hash().0
}

/// The heads the answer reports for `doc_id`.
pub fn heads_of(answer: &SyncResponse, doc_id: &str) -> Vec<[u8; 32]> {
    answer
        .heads
        .iter()
        .find(|h| h.doc_id == doc_id)
        .unwrap_or_else(|| panic!("no heads for {doc_id}"))
        .heads
        .clone()
}

/// The bytes of the changes an answer carries for `doc_id`.
pub fn changes_of(answer: &SyncResponse, doc_id: &str) -> Vec<Vec<u8>> {
    answer
        .changes
        .iter()
        .filter(|d| d.doc_id == doc_id)
        .flat_map(|d| d.changes.iter().map(|c| c.to_vec()))
        .collect()
}

/// A `width`×`height` image of random pixels (JPEG cannot shrink it much).
pub fn noise(width: u32, height: u32, seed: u64) -> image::RgbImage {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    image::RgbImage::from_fn(width, height, |_, _| image::Rgb(rng.random()))
}
