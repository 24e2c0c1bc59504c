//! [`PostgresStorage`]: the bureau's records in PostgreSQL (`--database postgres://…`).
//! The tables mirror the embedded file's (`fieldlog-bureau-sqlite`); the bureau keeps its
//! projection in a SQLite file of its own beside it.
//!
//! **The cursor rule.** A plain `bigserial` hands out numbers when rows are inserted, not
//! when they commit: writer A takes 5, writer B takes 6 and commits first, a device reads
//! up to 6 and moves its cursor past 5, which then commits unseen. Here every write
//! transaction first locks the one row of `log_counter` (`SELECT … FOR UPDATE`) and takes
//! its sequence numbers from it (`UPDATE … RETURNING`), holding the lock until it commits
//! or rolls back. Writers therefore commit in the order of their numbers, and a reader's
//! snapshot (`REPEATABLE READ`) holds every number up to the counter it sees and none
//! after: the visible numbers are a prefix. The price is one writer at a time per
//! database, which is what the embedded file has too (one process already orders its own
//! writes); the bureau's `tests/bureau/postgres.rs` proves the rule with writers in parallel.
//!
//! Connections are kept in a small pool and dropped when closed, so a restarted server
//! costs the requests in flight, not the process.

use automerge::{ActorId, ChangeHash};
use fieldlog_bureau_storage::{
    Append, Appended, ChangeRow, ChangedSince, ChangesPage, ChangesQuery, DeviceRecord, DocVersion,
    DocWriter, DocumentsInScope, Enrolled, LoggedChange, NewCode, Redemption, Result, Rewrite,
    SecretHash, Storage, StorageError as Error, StoredDoc, Team, device_from_row, page,
};
use fieldlog_domain::sync::{PublicKey, Refusal};
use fieldlog_domain::{DeviceId, Role, TeamId};
use postgres::{Client, GenericClient, IsolationLevel, NoTls, Row};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Applied in order, once each, recorded in `schema_migrations` with their sha256 as the
/// embedded file's are. Never edit one that has shipped: append a new one.
/// `tests::migrations_are_append_only` pins the hash of every entry.
pub const MIGRATIONS: &[&str] = &[r#"
-- The bureau itself: the Automerge actor it writes registries with.
CREATE TABLE bureau (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    actor TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE teams (
    team TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    districts TEXT NOT NULL, -- JSON array of district names
    created_at BIGINT NOT NULL
);
CREATE TABLE members (
    team TEXT NOT NULL REFERENCES teams (team),
    member TEXT NOT NULL,
    role TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (team, member)
);
-- Enrollment codes, by sha256; single use.
CREATE TABLE codes (
    code_hash TEXT PRIMARY KEY,
    team TEXT NOT NULL REFERENCES teams (team),
    member TEXT NOT NULL,
    role TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    device_id TEXT
);
CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    team TEXT NOT NULL REFERENCES teams (team),
    member TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    enrolled_at BIGINT NOT NULL,
    revoked_at BIGINT,
    signing_key BYTEA -- ed25519 public key, 32 bytes
);
-- Which device signs with each Automerge actor; NULL is the bureau itself.
CREATE TABLE device_actors (
    actor TEXT PRIMARY KEY,
    device_id TEXT REFERENCES devices (device_id)
);
CREATE INDEX device_actors_by_device ON device_actors (device_id);
-- The log's last sequence number. Writers lock this row for their whole transaction and
-- take numbers from it, so numbers commit in order (the cursor rule, see the module).
CREATE TABLE log_counter (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    seq BIGINT NOT NULL
);
INSERT INTO log_counter (singleton, seq) VALUES (1, 0);
-- Every accepted change, numbered in the order it was accepted.
CREATE TABLE changes (
    seq BIGINT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    hash BYTEA NOT NULL UNIQUE,
    device_id TEXT, -- NULL: written by the bureau
    bytes BYTEA NOT NULL,
    signature BYTEA -- the author device's, when one came with the change
);
CREATE INDEX changes_by_scope ON changes (scope_key, seq);
CREATE INDEX changes_by_doc ON changes (doc_id, seq);
-- Document ids compare bytewise ("C"), as SQLite's do: a first sync pages by them.
CREATE TABLE documents (
    doc_id TEXT COLLATE "C" PRIMARY KEY,
    scope_key TEXT NOT NULL,
    heads BYTEA NOT NULL, -- 32-byte hashes, concatenated
    last_seq BIGINT NOT NULL,
    change_count BIGINT NOT NULL,
    since_snapshot BIGINT NOT NULL,
    purges BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX documents_by_scope ON documents (scope_key, doc_id);
CREATE INDEX documents_by_last_seq ON documents (last_seq);
-- A saved copy of each document, holding every change up to `upto_seq`.
CREATE TABLE doc_snapshots (
    doc_id TEXT PRIMARY KEY,
    upto_seq BIGINT NOT NULL,
    bytes BYTEA NOT NULL
);
"#];

/// Idle connections kept for the next request.
const IDLE_CONNECTIONS: usize = 16;

pub struct PostgresStorage {
    config: postgres::Config,
    /// `host/database`, for logs and errors.
    target: String,
    actor: ActorId,
    idle: Mutex<Vec<Client>>,
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A URL with its password left out, for logs.
pub fn redacted(url: &str) -> String {
    match url.parse::<postgres::Config>() {
        Ok(config) => target_of(&config),
        Err(_) => "(an unreadable PostgreSQL URL)".to_string(),
    }
}

fn target_of(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_default();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{host}:{port}/{}",
        config.get_dbname().unwrap_or("")
    )
}

impl PostgresStorage {
    /// Connects, applies pending migrations and creates the bureau's actor the first time.
    pub fn connect(url: &str, now_ms: i64) -> Result<PostgresStorage> {
        let mut config: postgres::Config = url.parse().map_err(|source| Error::Database {
            backend: "PostgreSQL",
            target: "(the --database URL)".into(),
            source: Box::new(source),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("fieldlog-bureau");
        }
        let target = target_of(&config);
        let mut client = config.connect(NoTls).map_err(pg(&target))?;
        migrate(&mut client, &target)?;
        let actor = bureau_actor(&mut client, &target, now_ms)?;
        Ok(PostgresStorage {
            config,
            target,
            actor,
            idle: Mutex::new(vec![client]),
        })
    }

    fn client(&self) -> Result<Pooled<'_>> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let client = match idle {
            Some(client) if !client.is_closed() => client,
            _ => self.config.connect(NoTls).map_err(pg(&self.target))?,
        };
        Ok(Pooled {
            client: Some(client),
            storage: self,
        })
    }

    /// Runs `read` in one read-only snapshot.
    fn read<T>(
        &self,
        read: impl FnOnce(&mut postgres::Transaction<'_>, &str) -> Result<T>,
    ) -> Result<T> {
        let mut client = self.client()?;
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(pg(&self.target))?;
        let value = read(&mut tx, &self.target)?;
        tx.commit().map_err(pg(&self.target))?;
        Ok(value)
    }

    /// Runs `write` in one transaction, committed if it succeeds.
    fn write<T>(
        &self,
        write: impl FnOnce(&mut postgres::Transaction<'_>, &str) -> Result<T>,
    ) -> Result<T> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(pg(&self.target))?;
        let value = write(&mut tx, &self.target)?;
        tx.commit().map_err(pg(&self.target))?;
        Ok(value)
    }
}

impl Drop for PostgresStorage {
    fn drop(&mut self) {
        // A client shuts its connection down on a runtime of its own, which cannot start
        // on a thread already driving one (the server's, when a bureau is dropped there).
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        let _ = std::thread::spawn(move || drop(idle)).join();
    }
}

/// A pooled connection, back to the pool when dropped (unless it closed).
struct Pooled<'a> {
    client: Option<Client>,
    storage: &'a PostgresStorage,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("taken only on drop")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("taken only on drop")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && !client.is_closed()
        {
            let mut idle = self
                .storage
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if idle.len() < IDLE_CONNECTIONS {
                idle.push(client);
            }
        }
    }
}

fn pg(target: &str) -> impl FnOnce(postgres::Error) -> Error + '_ {
    move |source| Error::Database {
        backend: "PostgreSQL",
        target: target.to_string(),
        source: Box::new(source),
    }
}

fn int(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

fn uint(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn migrate(client: &mut Client, target: &str) -> Result<()> {
    let mut tx = client.transaction().map_err(pg(target))?;
    // One migrator at a time, whichever process starts first.
    tx.execute("SELECT pg_advisory_xact_lock(7163524)", &[])
        .map_err(pg(target))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            sha256 TEXT NOT NULL
        )",
    )
    .map_err(pg(target))?;
    for (version, sql) in MIGRATIONS.iter().enumerate() {
        let code = fieldlog_core::db::migration_hash(sql);
        let number = i32::try_from(version).unwrap_or(i32::MAX);
        let stored: Option<String> = tx
            .query_opt(
                "SELECT sha256 FROM schema_migrations WHERE version = $1",
                &[&number],
            )
            .map_err(pg(target))?
            .map(|r| r.get(0));
        match stored {
            Some(stored) if stored == code => {}
            Some(stored) => {
                return Err(Error::Open(fieldlog_core::Error::MigrationChanged {
                    version,
                    stored,
                    code,
                }));
            }
            None => {
                tx.batch_execute(sql).map_err(pg(target))?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, sha256) VALUES ($1, $2)",
                    &[&number, &code],
                )
                .map_err(pg(target))?;
            }
        }
    }
    tx.commit().map_err(pg(target))
}

/// The bureau's actor, created on first open and registered so no device can claim it.
fn bureau_actor(client: &mut Client, target: &str, now_ms: i64) -> Result<ActorId> {
    let mut tx = client.transaction().map_err(pg(target))?;
    let fresh = ActorId::random().to_hex_string();
    tx.execute(
        "INSERT INTO bureau (singleton, actor, created_at) VALUES (1, $1, $2)
         ON CONFLICT (singleton) DO NOTHING",
        &[&fresh, &now_ms],
    )
    .map_err(pg(target))?;
    let hex: String = tx
        .query_one("SELECT actor FROM bureau WHERE singleton = 1", &[])
        .map_err(pg(target))?
        .get(0);
    tx.execute(
        "INSERT INTO device_actors (actor, device_id) VALUES ($1, NULL) ON CONFLICT DO NOTHING",
        &[&hex],
    )
    .map_err(pg(target))?;
    tx.commit().map_err(pg(target))?;
    ActorId::try_from(hex.as_str()).map_err(|_| Error::Database {
        backend: "PostgreSQL",
        target: target.to_string(),
        source: "the bureau's stored actor is not hex".into(),
    })
}

impl Storage for PostgresStorage {
    fn describe(&self) -> String {
        format!("PostgreSQL {}", self.target)
    }

    fn bureau_actor(&self) -> &ActorId {
        &self.actor
    }

    fn add_team(&self, team: &Team, now_ms: i64) -> Result<()> {
        let inserted = self.write(|tx, target| {
            tx.execute(
                "INSERT INTO teams (team, kind, districts, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (team) DO NOTHING",
                &[
                    &team.id.as_str(),
                    &team.kind.key(),
                    &team.districts_json(),
                    &now_ms,
                ],
            )
            .map_err(pg(target))
        })?;
        if inserted == 0 {
            return Err(Error::TeamExists(team.id.clone()));
        }
        Ok(())
    }

    fn teams(&self) -> Result<Vec<Team>> {
        self.read(|tx, target| {
            let rows = tx
                .query("SELECT team, kind, districts FROM teams ORDER BY team", &[])
                .map_err(pg(target))?;
            Ok(rows
                .iter()
                .filter_map(|r| {
                    let id: String = r.get(0);
                    let team = Team::from_row(&id, r.get(1), r.get(2));
                    if team.is_none() {
                        tracing::warn!(team = id, "skipping an unreadable team row");
                    }
                    team
                })
                .collect())
        })
    }

    fn team(&self, id: &TeamId) -> Result<Option<Team>> {
        self.read(|tx, target| read_team(tx, target, id))
    }

    fn add_code(&self, code: &NewCode) -> Result<()> {
        self.write(|tx, target| {
            if read_team(tx, target, &code.team)?.is_none() {
                return Err(Error::UnknownTeam(code.team.clone()));
            }
            tx.execute(
                "INSERT INTO members (team, member, role, added_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (team, member) DO UPDATE SET role = excluded.role",
                &[
                    &code.team.as_str(),
                    &code.member,
                    &code.role.key(),
                    &code.issued_at,
                ],
            )
            .map_err(pg(target))?;
            tx.execute(
                "INSERT INTO codes (code_hash, team, member, role, issued_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &code.code.as_str(),
                    &code.team.as_str(),
                    &code.member,
                    &code.role.key(),
                    &code.issued_at,
                    &code.expires_at,
                ],
            )
            .map_err(pg(target))?;
            Ok(())
        })
    }

    fn redeem_code(&self, r: &Redemption) -> Result<Enrolled> {
        self.write(|tx, target| {
            // The code's row stays locked until this commits: two devices presenting the
            // same code cannot both have it.
            let code = tx
                .query_opt(
                    "SELECT team, member, role, expires_at, used_at FROM codes
                     WHERE code_hash = $1 FOR UPDATE",
                    &[&r.code.as_str()],
                )
                .map_err(pg(target))?;
            let bad_code = |why: &str| Err(Error::refused(Refusal::BadCode, why));
            let Some(code) = code else {
                return bad_code("unknown enrollment code");
            };
            let (team, member, role, expires_at, used_at): (
                String,
                String,
                String,
                i64,
                Option<i64>,
            ) = (
                code.get(0),
                code.get(1),
                code.get(2),
                code.get(3),
                code.get(4),
            );
            if used_at.is_some() {
                return bad_code("this enrollment code was already used");
            }
            if r.now_ms >= expires_at {
                return bad_code("this enrollment code has expired");
            }
            let (Ok(team), Ok(role)) = (TeamId::parse(&team), Role::parse(&role)) else {
                return bad_code("this enrollment code names an unknown team");
            };
            let Some(team) = read_team(tx, target, &team)? else {
                return bad_code("this enrollment code names an unknown team");
            };
            let actors: Vec<String> = r.actors.iter().map(ActorId::to_hex_string).collect();
            let taken = tx
                .query_opt(
                    "SELECT actor FROM device_actors WHERE actor = ANY($1) LIMIT 1",
                    &[&actors],
                )
                .map_err(pg(target))?;
            if let Some(taken) = taken {
                let actor: String = taken.get(0);
                return Err(Error::refused(
                    Refusal::ForgedActor,
                    format!("actor {actor} is already registered to another device"),
                ));
            }
            let device_id = r.device_id.to_string();
            tx.execute(
                "INSERT INTO devices
                     (device_id, name, team, member, role, token_hash, enrolled_at, signing_key)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &device_id,
                    &r.device_name,
                    &team.id.as_str(),
                    &member,
                    &role.key(),
                    &r.token.as_str(),
                    &r.now_ms,
                    &r.signing_key.as_ref().map(|k| &k[..]),
                ],
            )
            .map_err(pg(target))?;
            tx.execute(
                "INSERT INTO device_actors (actor, device_id) SELECT unnest($1::text[]), $2",
                &[&actors, &device_id],
            )
            .map_err(pg(target))?;
            tx.execute(
                "UPDATE codes SET used_at = $1, device_id = $2 WHERE code_hash = $3",
                &[&r.now_ms, &device_id, &r.code.as_str()],
            )
            .map_err(pg(target))?;
            Ok(Enrolled { team, member, role })
        })
    }

    fn authenticate(&self, token: &SecretHash) -> Result<Option<DeviceRecord>> {
        self.read(|tx, target| Ok(read_devices(tx, target, Some(token))?.into_iter().next()))
    }

    fn devices(&self) -> Result<Vec<DeviceRecord>> {
        self.read(|tx, target| read_devices(tx, target, None))
    }

    fn revoke_device(&self, device: DeviceId, now_ms: i64) -> Result<DeviceRecord> {
        let id = device.to_string();
        self.write(|tx, target| {
            tx.execute(
                "UPDATE devices SET revoked_at = coalesce(revoked_at, $1) WHERE device_id = $2",
                &[&now_ms, &id],
            )
            .map_err(pg(target))?;
            read_devices(tx, target, None)
        })?
        .into_iter()
        .find(|d| d.id == device)
        .ok_or(Error::UnknownDevice(id))
    }

    fn set_signing_key(&self, device: DeviceId, key: &PublicKey) -> Result<()> {
        self.write(|tx, target| {
            tx.execute(
                "UPDATE devices SET signing_key = $1 WHERE device_id = $2 AND signing_key IS NULL",
                &[&&key[..], &device.to_string()],
            )
            .map_err(pg(target))?;
            Ok(())
        })
    }

    fn changes_after(&self, query: &ChangesQuery) -> Result<ChangesPage> {
        self.read(|tx, target| {
            let last_seq = last_seq(tx, target)?;
            let limit = int(query.max_changes.saturating_add(1));
            let rows = tx
                .query(
                    "SELECT seq, doc_id, hash, bytes, signature FROM changes
                     WHERE seq > $1
                       AND scope_key = ANY($2)
                       AND device_id IS DISTINCT FROM $3
                       AND octet_length(bytes) <= $5::BIGINT
                     ORDER BY seq
                     LIMIT $4",
                    &[
                        &int(query.after),
                        &query.scope_keys,
                        &query.exclude_device.to_string(),
                        &limit,
                        &int(query.max_change_bytes),
                    ],
                )
                .map_err(pg(target))?;
            let rows = rows.into_iter().map(|r| {
                Ok(ChangeRow {
                    seq: uint(r.get(0)),
                    doc_id: r.get(1),
                    hash: r.get(2),
                    bytes: r.get(3),
                    signature: r.get(4),
                })
            });
            page(rows, query, last_seq)
        })
    }

    fn heads(&self, doc_ids: &[String]) -> Result<Vec<Vec<ChangeHash>>> {
        self.read(|tx, target| {
            let rows = tx
                .query(
                    "SELECT doc_id, heads FROM documents WHERE doc_id = ANY($1)",
                    &[&doc_ids],
                )
                .map_err(pg(target))?;
            let found: std::collections::HashMap<String, Vec<u8>> =
                rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            Ok(doc_ids
                .iter()
                .map(|id| {
                    found
                        .get(id)
                        .map(|h| fieldlog_core::decode_heads(h))
                        .unwrap_or_default()
                })
                .collect())
        })
    }

    fn documents_in_scope(
        &self,
        scope_keys: &[String],
        after: Option<&str>,
        max_change_bytes: usize,
    ) -> Result<Option<DocumentsInScope>> {
        self.read(|tx, target| {
            let oversized: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM changes
                     WHERE scope_key = ANY($1) AND octet_length(bytes) > $2::BIGINT)",
                    &[&scope_keys, &int(max_change_bytes)],
                )
                .map_err(pg(target))?
                .get(0);
            if oversized {
                return Ok(None);
            }
            let doc_ids = tx
                .query(
                    "SELECT doc_id FROM documents
                     WHERE scope_key = ANY($1) AND doc_id > $2
                     ORDER BY doc_id",
                    &[&scope_keys, &after.unwrap_or("")],
                )
                .map_err(pg(target))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            Ok(Some(DocumentsInScope {
                last_seq: last_seq(tx, target)?,
                doc_ids,
            }))
        })
    }

    fn version(&self, doc_id: &str) -> Result<DocVersion> {
        self.read(|tx, target| version(tx, target, doc_id))
    }

    fn document(&self, doc_id: &str, after: Option<u64>) -> Result<StoredDoc> {
        self.read(|tx, target| document(tx, target, doc_id, after))
    }

    fn changed_since(&self, seq: u64) -> Result<ChangedSince> {
        self.read(|tx, target| {
            let purges: i64 = tx
                .query_one(
                    "SELECT coalesce(sum(purges), 0)::BIGINT FROM documents",
                    &[],
                )
                .map_err(pg(target))?
                .get(0);
            let doc_ids = tx
                .query(
                    "SELECT doc_id FROM documents WHERE last_seq > $1 ORDER BY doc_id",
                    &[&int(seq)],
                )
                .map_err(pg(target))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            Ok(ChangedSince {
                last_seq: last_seq(tx, target)?,
                purges: uint(purges),
                doc_ids,
            })
        })
    }

    fn begin(&self) -> Result<Box<dyn DocWriter + '_>> {
        let mut client = self.client()?;
        client
            .batch_execute("BEGIN; SELECT seq FROM log_counter WHERE singleton = 1 FOR UPDATE")
            .map_err(pg(&self.target))?;
        Ok(Box::new(Writer {
            client,
            target: &self.target,
            open: true,
        }))
    }
}

/// A transaction holding the log counter's lock; rolled back on drop unless committed.
struct Writer<'a> {
    client: Pooled<'a>,
    target: &'a str,
    open: bool,
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        if self.open
            && !self.client.is_closed()
            && let Err(error) = self.client.batch_execute("ROLLBACK")
        {
            tracing::error!(%error, "rolling back a failed write");
        }
    }
}

impl DocWriter for Writer<'_> {
    fn version(&mut self, doc_id: &str) -> Result<DocVersion> {
        version(&mut *self.client, self.target, doc_id)
    }

    fn document(&mut self, doc_id: &str, after: Option<u64>) -> Result<StoredDoc> {
        document(&mut *self.client, self.target, doc_id, after)
    }

    fn held(&mut self, hashes: &[ChangeHash]) -> Result<Vec<(ChangeHash, String)>> {
        let raw: Vec<&[u8]> = hashes.iter().map(|h| &h.0[..]).collect();
        let rows = self
            .client
            .query(
                "SELECT hash, doc_id FROM changes WHERE hash = ANY($1)",
                &[&raw],
            )
            .map_err(pg(self.target))?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let hash: Vec<u8> = r.get(0);
                Some((ChangeHash(hash.try_into().ok()?), r.get(1)))
            })
            .collect())
    }

    fn append(&mut self, append: &Append<'_>) -> Result<Appended> {
        let target = self.target;
        let count = int(append.changes.len());
        let last: i64 = self
            .client
            .query_one(
                "UPDATE log_counter SET seq = seq + $1 WHERE singleton = 1 RETURNING seq",
                &[&count],
            )
            .map_err(pg(target))?
            .get(0);
        let seqs: Vec<i64> = (last - count + 1..=last).collect();
        let hashes: Vec<&[u8]> = append.changes.iter().map(|c| &c.hash.0[..]).collect();
        let bytes: Vec<&[u8]> = append.changes.iter().map(|c| c.bytes).collect();
        let signatures: Vec<Option<&[u8]>> = append.changes.iter().map(|c| c.signature).collect();
        let device = append.device.map(|d| d.to_string());
        self.client
            .execute(
                "INSERT INTO changes (seq, doc_id, scope_key, hash, device_id, bytes, signature)
                 SELECT s, $2, $3, h, $4, b, g
                 FROM unnest($1::BIGINT[], $5::BYTEA[], $6::BYTEA[], $7::BYTEA[]) AS t (s, h, b, g)",
                &[&seqs, &append.doc_id, &append.scope_key, &device, &hashes, &bytes, &signatures],
            )
            .map_err(pg(target))?;
        let since: i64 = self
            .client
            .query_one(
                "INSERT INTO documents AS d
                     (doc_id, scope_key, heads, last_seq, change_count, since_snapshot)
                 VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (doc_id) DO UPDATE SET
                     heads = excluded.heads,
                     last_seq = excluded.last_seq,
                     change_count = d.change_count + excluded.change_count,
                     since_snapshot = d.since_snapshot + excluded.since_snapshot
                 RETURNING since_snapshot",
                &[
                    &append.doc_id,
                    &append.scope_key,
                    &fieldlog_core::encode_heads(append.heads),
                    &last,
                    &count,
                ],
            )
            .map_err(pg(target))?
            .get(0);
        Ok(Appended {
            last_seq: uint(last),
            since_snapshot: uint(since),
        })
    }

    fn put_snapshot(&mut self, doc_id: &str, upto_seq: u64, bytes: &[u8]) -> Result<()> {
        self.client
            .execute(
                "INSERT INTO doc_snapshots (doc_id, upto_seq, bytes) VALUES ($1, $2, $3)
                 ON CONFLICT (doc_id) DO UPDATE SET upto_seq = excluded.upto_seq,
                                                    bytes = excluded.bytes",
                &[&doc_id, &int(upto_seq), &bytes],
            )
            .map_err(pg(self.target))?;
        self.client
            .execute(
                "UPDATE documents SET since_snapshot = 0 WHERE doc_id = $1",
                &[&doc_id],
            )
            .map_err(pg(self.target))?;
        Ok(())
    }

    fn oversized_documents(&mut self, max_bytes: usize) -> Result<Vec<String>> {
        Ok(self
            .client
            .query(
                "SELECT DISTINCT doc_id FROM changes
                 WHERE device_id IS NOT NULL AND octet_length(bytes) > $1::BIGINT ORDER BY doc_id",
                &[&int(max_bytes)],
            )
            .map_err(pg(self.target))?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn log(&mut self, doc_id: &str) -> Result<Vec<LoggedChange>> {
        Ok(self
            .client
            .query(
                "SELECT seq, hash, device_id, bytes FROM changes WHERE doc_id = $1 ORDER BY seq",
                &[&doc_id],
            )
            .map_err(pg(self.target))?
            .iter()
            .map(|r| LoggedChange {
                seq: uint(r.get(0)),
                hash: r.get(1),
                device_id: r.get(2),
                bytes: r.get(3),
            })
            .collect())
    }

    fn rewrite(&mut self, rewrite: &Rewrite<'_>) -> Result<()> {
        let removed: Vec<i64> = rewrite.removed.iter().map(|s| int(*s)).collect();
        self.client
            .execute("DELETE FROM changes WHERE seq = ANY($1)", &[&removed])
            .map_err(pg(self.target))?;
        self.put_snapshot(rewrite.doc_id, rewrite.last_seq, rewrite.snapshot)?;
        self.client
            .execute(
                "UPDATE documents SET heads = $2, last_seq = $3, change_count = $4,
                     since_snapshot = 0, purges = purges + 1
                 WHERE doc_id = $1",
                &[
                    &rewrite.doc_id,
                    &fieldlog_core::encode_heads(rewrite.heads),
                    &int(rewrite.last_seq),
                    &int(rewrite.change_count),
                ],
            )
            .map_err(pg(self.target))?;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        self.client
            .batch_execute("COMMIT")
            .map_err(pg(self.target))?;
        self.open = false;
        Ok(())
    }
}

/// The log's newest sequence number.
fn last_seq(tx: &mut impl GenericClient, target: &str) -> Result<u64> {
    let seq: i64 = tx
        .query_one("SELECT seq FROM log_counter WHERE singleton = 1", &[])
        .map_err(pg(target))?
        .get(0);
    Ok(uint(seq))
}

fn version(tx: &mut impl GenericClient, target: &str, doc_id: &str) -> Result<DocVersion> {
    let row = tx
        .query_opt(
            "SELECT last_seq, purges FROM documents WHERE doc_id = $1",
            &[&doc_id],
        )
        .map_err(pg(target))?;
    Ok(row.map_or(DocVersion::default(), |r| DocVersion {
        last_seq: uint(r.get(0)),
        purges: uint(r.get(1)),
    }))
}

fn document(
    tx: &mut impl GenericClient,
    target: &str,
    doc_id: &str,
    after: Option<u64>,
) -> Result<StoredDoc> {
    let mut stored = StoredDoc {
        version: version(tx, target, doc_id)?,
        ..StoredDoc::default()
    };
    let from = match after {
        Some(after) => after,
        None => {
            if let Some(row) = tx
                .query_opt(
                    "SELECT upto_seq, bytes FROM doc_snapshots WHERE doc_id = $1",
                    &[&doc_id],
                )
                .map_err(pg(target))?
            {
                stored.snapshot_seq = uint(row.get(0));
                stored.snapshot = Some(row.get(1));
            }
            stored.snapshot_seq
        }
    };
    stored.changes = tx
        .query(
            "SELECT seq, bytes FROM changes WHERE doc_id = $1 AND seq > $2 ORDER BY seq",
            &[&doc_id, &int(from)],
        )
        .map_err(pg(target))?
        .iter()
        .map(|r| (uint(r.get(0)), r.get(1)))
        .collect();
    Ok(stored)
}

fn read_team(tx: &mut impl GenericClient, target: &str, team: &TeamId) -> Result<Option<Team>> {
    Ok(tx
        .query_opt(
            "SELECT kind, districts FROM teams WHERE team = $1",
            &[&team.as_str()],
        )
        .map_err(pg(target))?
        .and_then(|r| Team::from_row(team.as_str(), r.get(0), r.get(1))))
}

/// Devices with their actors: the one holding `token`, or all of them.
fn read_devices(
    tx: &mut impl GenericClient,
    target: &str,
    token: Option<&SecretHash>,
) -> Result<Vec<DeviceRecord>> {
    let rows = tx
        .query(
            "SELECT device_id, name, team, member, role, enrolled_at, revoked_at, signing_key,
                    coalesce((SELECT array_agg(actor ORDER BY actor) FROM device_actors a
                              WHERE a.device_id = d.device_id), '{}')
             FROM devices d
             WHERE $1::TEXT IS NULL OR token_hash = $1
             ORDER BY enrolled_at, device_id",
            &[&token.map(SecretHash::as_str)],
        )
        .map_err(pg(target))?;
    Ok(rows.iter().filter_map(device_row).collect())
}

fn device_row(r: &Row) -> Option<DeviceRecord> {
    let actors: Vec<String> = r.get(8);
    device_from_row(
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        &actors,
        r.get(7),
        r.get(5),
        r.get(6),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins every shipped migration. If this fails you edited an applied migration:
    /// revert it and append a new one instead.
    #[test]
    fn migrations_are_append_only() {
        let pinned = ["c8ee51f1df5052e85032313d91e0149472ce7f7d00c52a5284f3df3f089228f3"];
        let actual: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| fieldlog_core::db::migration_hash(m))
            .collect();
        assert_eq!(actual, pinned, "pin the new migration's hash here");
    }

    #[test]
    fn a_url_is_logged_without_its_password() {
        assert_eq!(
            redacted("postgres://fieldlog:s3cret@db.example:5433/bureau"),
            "postgres://db.example:5433/bureau"
        );
    }
}
