//! Syncing with the bureau (protocol: [`fieldlog_domain::sync`]).
//!
//! The device remembers the bureau's heads of each document (peer `bureau` in `peer_heads`),
//! the chunk generation of each document at its last complete upload (`doc_sync`), and a
//! cursor into the bureau's change sequence. A round sends only documents whose generation
//! moved, and only the changes the bureau lacks; it receives only changes after the cursor.
//! So an idle sync is one small request, whatever the store holds. Each round is stored as
//! soon as it is answered: a cut connection costs at most the round in flight.

use crate::chunks::CarriedLimits;
use crate::docs;
use crate::error::{DbContext, Error, Result};
use crate::ledger::DocId;
use crate::store::Store;
use crate::upload::{UploadQueue, upload_photos};
use automerge::{Change, ChangeHash, PatchAction, Prop};
use fieldlog_domain::sync::{
    ChangeSignature, DocChanges, EnrollRequest, EnrollResponse, ErrorBody, MAX_BODY_BYTES,
    MAX_CHANGES_PER_REQUEST, MAX_DOCUMENT_CHANGES, MAX_INFLATED_BYTES, MAX_PASSED_CHANGE_BYTES,
    MEMBERS_PATH, MembersResponse, PROTOCOL_VERSION, SYNC_CONTENT_TYPE, SyncRequest, SyncResponse,
};
use fieldlog_domain::{Role, TeamId};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::collections::BTreeSet;
use std::io::Read;
use std::time::Duration;

const BUREAU_PEER: &str = "bureau";
/// The most changes one answer may bring back.
const MAX_CHANGES_RECEIVED: u32 = 2_000;
/// A slow link still finishes a bounded round in this time.
const ROUND_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_RESPONSE_BYTES: u64 = fieldlog_domain::sync::MAX_INFLATED_BYTES as u64;
/// A decoder window no larger than the inflated limit (as at the bureau).
const MAX_WINDOW_LOG: u32 = 25;
/// A sync that still has work after this many rounds stops and says so.
const MAX_ROUNDS: usize = 10_000;

/// Where this device syncs to, as enrollment set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    pub url: String,
    pub device_id: String,
    pub member: String,
    pub role: Role,
    pub districts: Vec<String>,
    pub cursor: u64,
    /// Milliseconds since the Unix epoch.
    pub last_sync_at: Option<i64>,
}

/// What a sync did. Bytes are the request and response bodies as sent (records compressed,
/// photo files as they are).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    pub rounds: usize,
    pub sent: usize,
    pub accepted: usize,
    pub received: usize,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Photos whose files the bureau now holds, of those waiting when uploads began.
    pub photos_done: usize,
    pub photos_total: usize,
    /// Bytes of those photos' files the bureau holds, of their total size.
    pub photo_bytes_done: u64,
    pub photo_bytes_total: u64,
}

/// What waits to go, and where it would go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    pub enrollment: Option<Enrollment>,
    pub waiting_documents: usize,
    pub waiting_changes: usize,
    /// Photo files waiting to upload.
    pub waiting_photos: UploadQueue,
    /// Bytes of photo files on this device (originals included).
    pub photo_bytes: u64,
}

/// What the bureau lacks of a document that a round can send, and whether that is all it
/// lacks (a teammate's change whose signature this device does not hold stays behind).
struct Sendable {
    changes: Vec<Change>,
    signatures: Vec<ChangeSignature>,
    everything: bool,
}

/// Documents sent whole in one request stop at this many bytes (half the body limit).
const DOCUMENT_BYTES_PER_REQUEST: usize = MAX_BODY_BYTES / 2;

/// One round's plan: which documents were offered, and whether all of their missing
/// changes fit.
struct Offered {
    doc_id: String,
    complete: bool,
    /// Changes sent, alone or in the document sent whole.
    changes: usize,
}

impl Store {
    pub fn enrollment(&self) -> Result<Option<Enrollment>> {
        Ok(self.bureau_row()?.map(|(enrollment, _)| enrollment))
    }

    pub(crate) fn bureau_row(&self) -> Result<Option<(Enrollment, String)>> {
        let row = self
            .conn
            .query_row(
                "SELECT url, device_id, member, role, districts, cursor, last_sync_at, token
                 FROM bureau WHERE singleton = 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, Option<i64>>(6)?,
                        r.get::<_, String>(7)?,
                    ))
                },
            )
            .optional()
            .db(&self.path)?;
        Ok(row.map(
            |(url, device_id, member, role, districts, cursor, last_sync_at, token)| {
                (
                    Enrollment {
                        url,
                        device_id,
                        member,
                        role: Role::parse(&role).unwrap_or(Role::Volunteer),
                        districts: serde_json::from_str(&districts).unwrap_or_default(),
                        cursor: u64::try_from(cursor).unwrap_or(0),
                        last_sync_at,
                    },
                    token,
                )
            },
        ))
    }

    /// Documents with changes the bureau may lack, within what this device may send.
    fn changed_docs(&self, enrollment: &Enrollment) -> Result<Vec<(String, i64)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT c.doc_id, c.generation
                 FROM (SELECT doc_id, max(seq) AS generation FROM doc_chunks GROUP BY doc_id) c
                 LEFT JOIN doc_sync s ON s.doc_id = c.doc_id
                 WHERE s.synced_generation IS NULL OR c.generation > s.synced_generation
                 ORDER BY c.doc_id",
            )
            .db(&self.path)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .db(&self.path)?
            .collect::<Result<Vec<_>, _>>()
            .db(&self.path)?;
        Ok(rows
            .into_iter()
            .filter(|(id, _)| self.may_send(enrollment, id))
            .collect())
    }

    /// A volunteer sends its team's ledgers and its districts' registries. A coordinator also
    /// sends other teams' ledgers; the bureau checks those against its region.
    fn may_send(&self, enrollment: &Enrollment, doc_id: &str) -> bool {
        match DocId::parse(doc_id) {
            Some(DocId::Ledger { team, .. }) => {
                team == self.device.team || enrollment.role == Role::Coordinator
            }
            Some(DocId::Registry { district }) => {
                enrollment.districts.iter().any(|d| d == district.as_str())
            }
            Some(DocId::Review { district, .. }) => {
                enrollment.role == Role::Coordinator
                    && enrollment.districts.iter().any(|d| d == district.as_str())
            }
            Some(DocId::Targets { team }) => {
                enrollment.role == Role::Coordinator && team == self.device.team
            }
            Some(
                DocId::Courses { team } | DocId::Pairings { team } | DocId::Roster { team, .. },
            ) => team == self.device.team || enrollment.role == Role::Coordinator,
            None => false,
        }
    }

    /// The changes the bureau lacks that this device can send: its own, and teammates'
    /// whose signatures it holds, with those signatures (its own need none).
    fn sendable(&mut self, doc_id: &str) -> Result<Sendable> {
        let lacking = self.bureau_lacks(doc_id)?;
        let actor = &self.actor;
        let signatures = crate::signing::held(
            &self.conn,
            &self.path,
            lacking
                .iter()
                .filter(|c| c.actor_id() != actor)
                .map(Change::hash),
        )?;
        let signed: BTreeSet<[u8; 32]> = signatures.iter().map(|s| s.hash).collect();
        let lacked = lacking.len();
        let changes: Vec<Change> = lacking
            .into_iter()
            .filter(|c| c.actor_id() == actor || signed.contains(&c.hash().0))
            .collect();
        Ok(Sendable {
            everything: changes.len() == lacked,
            changes,
            signatures,
        })
    }

    fn bureau_lacks(&mut self, doc_id: &str) -> Result<Vec<Change>> {
        let heads = self.bureau_heads(doc_id)?;
        let doc = &self
            .docs
            .fresh(&self.conn, &self.path, doc_id, &self.actor)?
            .doc;
        Ok(doc.get_changes(&heads))
    }

    /// The bureau's last known heads of a document, those this device holds.
    fn bureau_heads(&mut self, doc_id: &str) -> Result<Vec<ChangeHash>> {
        let known = docs::peer_heads(&self.conn, &self.path, BUREAU_PEER, doc_id)?;
        let doc = &self
            .docs
            .fresh(&self.conn, &self.path, doc_id, &self.actor)?
            .doc;
        Ok(known
            .unwrap_or_default()
            .into_iter()
            .filter(|h| doc.get_change_meta_by_hash(h).is_some())
            .collect())
    }

    /// What the next sync would send.
    pub fn sync_status(&mut self) -> Result<SyncStatus> {
        let enrollment = self.enrollment()?;
        let (mut waiting_documents, mut waiting_changes) = (0, 0);
        if let Some(enrollment) = &enrollment {
            for (doc_id, _) in self.changed_docs(enrollment)? {
                let n = self.bureau_lacks(&doc_id)?.len();
                if n > 0 {
                    waiting_documents += 1;
                    waiting_changes += n;
                }
            }
        }
        Ok(SyncStatus {
            enrollment,
            waiting_documents,
            waiting_changes,
            waiting_photos: self.upload_queue()?,
            photo_bytes: self.photo_bytes(),
        })
    }

    /// The records (visits, schools: the keys at the top of their documents) whose content
    /// here differs from what the bureau has, as far as this device knows; empty when not
    /// enrolled. The app marks these visits as not yet synced.
    pub fn waiting_records(&mut self) -> Result<BTreeSet<String>> {
        let Some(enrollment) = self.enrollment()? else {
            return Ok(BTreeSet::new());
        };
        let mut waiting = BTreeSet::new();
        for (doc_id, _) in self.changed_docs(&enrollment)? {
            let heads = self.bureau_heads(&doc_id)?;
            let doc = &self
                .docs
                .fresh(&self.conn, &self.path, &doc_id, &self.actor)?
                .doc;
            if doc.get_changes(&heads).is_empty() {
                continue;
            }
            for patch in doc.diff(&heads, &doc.get_heads()) {
                let record = match (patch.path.first(), &patch.action) {
                    (Some((_, Prop::Map(key))), _) => key.clone(),
                    (None, PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key }) => {
                        key.clone()
                    }
                    _ => continue,
                };
                waiting.insert(record);
            }
        }
        Ok(waiting)
    }

    /// Ledgers go before registries, in rounds of their own: visits must never wait on a
    /// registry edit the bureau might refuse.
    fn build_round(&mut self, enrollment: &Enrollment) -> Result<(SyncRequest, Vec<Offered>)> {
        let mut budget = MAX_CHANGES_PER_REQUEST;
        let mut docs = Vec::new();
        let mut offered = Vec::new();
        let mut changed = self.changed_docs(enrollment)?;
        let is_ledger = |id: &str| matches!(DocId::parse(id), Some(DocId::Ledger { .. }));
        if changed.iter().any(|(id, _)| is_ledger(id)) {
            changed.retain(|(id, _)| is_ledger(id));
        }
        let mut document_bytes = 0;
        for (doc_id, _) in changed {
            if budget == 0 {
                break;
            }
            let Sendable {
                mut changes,
                mut signatures,
                everything,
            } = self.sendable(&doc_id)?;
            // A document the bureau lacks most of (or all) goes whole: its compressed
            // encoding is a fraction of its changes' bytes, and the bureau skips what it
            // holds.
            let doc = &self
                .docs
                .fresh(&self.conn, &self.path, &doc_id, &self.actor)?
                .doc;
            let far_behind = changes.len() as u64 * 2 >= automerge::ReadDoc::stats(doc).num_changes;
            if everything && !changes.is_empty() && far_behind {
                let document = doc.save();
                if document_bytes + document.len() <= DOCUMENT_BYTES_PER_REQUEST {
                    document_bytes += document.len();
                    docs.push(DocChanges {
                        doc_id: doc_id.clone(),
                        changes: Vec::new(),
                        document: Some(ByteBuf::from(document)),
                        signatures,
                    });
                    offered.push(Offered {
                        doc_id,
                        complete: true,
                        changes: changes.len(),
                    });
                    continue;
                }
            }
            let complete = changes.len() <= budget;
            changes.truncate(budget);
            budget -= changes.len();
            let sent: BTreeSet<[u8; 32]> = changes.iter().map(|c| c.hash().0).collect();
            signatures.retain(|s| sent.contains(&s.hash));
            if !changes.is_empty() {
                docs.push(DocChanges {
                    doc_id: doc_id.clone(),
                    changes: changes
                        .iter()
                        .map(|c| ByteBuf::from(c.raw_bytes().to_vec()))
                        .collect(),
                    document: None,
                    signatures,
                });
            }
            offered.push(Offered {
                doc_id,
                complete,
                changes: changes.len(),
            });
        }
        let signing_key =
            (!self.key_registered()?).then(|| crate::signing::public_key(&self.signer));
        let request = SyncRequest {
            protocol: PROTOCOL_VERSION,
            cursor: enrollment.cursor,
            docs,
            max_changes: MAX_CHANGES_RECEIVED,
            signing_key,
            // A first sync asks for the documents whole.
            resume: self
                .resume_point()?
                .or_else(|| (enrollment.cursor == 0).then(String::new)),
        };
        Ok((request, offered))
    }

    /// Where the bureau's delivery of whole documents goes on, mid first sync.
    fn resume_point(&self) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT resume FROM bureau WHERE singleton = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map(Option::flatten)
            .db(&self.path)
    }

    /// Stores an answered round in one transaction: the received changes, the bureau's
    /// heads, what is now fully uploaded, and the cursor. Returns how many changes were new.
    fn finish_round(&mut self, offered: &[Offered], response: SyncResponse) -> Result<usize> {
        let touched: Vec<String> = offered
            .iter()
            .map(|d| d.doc_id.clone())
            .chain(response.changes.iter().map(|d| d.doc_id.clone()))
            .collect();
        let mut parts = Vec::new();
        for part in response.changes {
            let doc_id = DocId::parse(&part.doc_id).ok_or_else(|| Error::BadResponse {
                detail: format!("unknown document `{}`", part.doc_id),
            })?;
            let changes = crate::chunks::carried_changes(
                part.document.as_deref().map(|d| &d[..]),
                part.changes.into_iter().map(ByteBuf::into_vec).collect(),
                CarriedLimits {
                    change_bytes: MAX_PASSED_CHANGE_BYTES,
                    inflated_bytes: MAX_INFLATED_BYTES,
                    document_changes: MAX_DOCUMENT_CHANGES,
                },
            )
            .map_err(|e| Error::BadResponse {
                detail: format!("changes to {doc_id} do not decode: {e}"),
            })?;
            let hashes: BTreeSet<[u8; 32]> = changes.iter().map(|c| c.hash().0).collect();
            let mut signatures = part.signatures;
            signatures.retain(|s| hashes.contains(&s.hash));
            parts.push((doc_id, changes, signatures));
        }
        let mut w = self.begin()?;
        let mut received = 0;
        for (doc_id, changes, signatures) in parts {
            received += w.apply(&doc_id, changes)?.1;
            crate::signing::store(w.tx(), w.path, &signatures)?;
        }
        let now = w.now;
        let tx = w.tx();
        for heads in &response.heads {
            let hashes: Vec<ChangeHash> = heads.heads.iter().map(|h| ChangeHash(*h)).collect();
            tx.execute(
                "INSERT INTO peer_heads (peer_id, doc_id, heads) VALUES (?1, ?2, ?3)
                 ON CONFLICT (peer_id, doc_id) DO UPDATE SET heads = excluded.heads",
                params![BUREAU_PEER, heads.doc_id, docs::encode_heads(&hashes)],
            )
            .db(w.path)?;
        }
        // An answered round also means the bureau holds this device's signing key.
        tx.execute(
            "UPDATE bureau SET cursor = ?1, last_sync_at = ?2, key_registered = 1, resume = ?3
             WHERE singleton = 1",
            params![
                i64::try_from(response.cursor).unwrap_or(i64::MAX),
                now,
                response.resume
            ],
        )
        .db(w.path)?;
        w.commit()?;
        self.mark_synced(touched)?;
        Ok(received)
    }

    /// A document is synced at the generation just checked when the bureau's heads cover all
    /// of this device's changes in it. A change the bureau held back (its dependencies came
    /// from another device that has not synced yet) keeps the document waiting.
    fn mark_synced(&mut self, doc_ids: Vec<String>) -> Result<()> {
        for doc_id in doc_ids {
            if !self.bureau_lacks(&doc_id)?.is_empty() {
                continue;
            }
            let Some(generation) = self.docs.generation(&doc_id) else {
                continue;
            };
            self.conn
                .execute(
                    "INSERT INTO doc_sync (doc_id, synced_generation) VALUES (?1, ?2)
                     ON CONFLICT (doc_id) DO UPDATE SET synced_generation = excluded.synced_generation",
                    params![doc_id, generation],
                )
                .db(&self.path)?;
        }
        Ok(())
    }

    /// Whether the bureau holds this device's signing key (given at enrollment or in an
    /// answered round).
    fn key_registered(&self) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT key_registered FROM bureau WHERE singleton = 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map(|v| v.unwrap_or(false))
            .db(&self.path)
    }

    fn save_enrollment(&mut self, url: &str, answer: &EnrollResponse) -> Result<()> {
        let team = TeamId::parse(&answer.team).map_err(|_| Error::BadResponse {
            detail: format!("team `{}` is not a valid team name", answer.team),
        })?;
        if team != self.device.team && self.has_ledgers_of(&self.device.team)? {
            return Err(Error::TeamMismatch {
                local: self.device.team.to_string(),
                enrolled: team.to_string(),
            });
        }
        let w = self.begin()?;
        let now = w.now;
        let tx = w.tx();
        tx.execute(
            "INSERT OR REPLACE INTO bureau
                 (singleton, url, token, device_id, member, role, districts, cursor, enrolled_at,
              key_registered)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, 1)",
            params![
                url,
                answer.token,
                answer.device_id,
                answer.member,
                answer.role.key(),
                serde_json::to_string(&answer.districts).unwrap_or_default(),
                now
            ],
        )
        .db(w.path)?;
        tx.execute("DELETE FROM doc_sync", []).db(w.path)?;
        tx.execute("DELETE FROM peer_heads WHERE peer_id = ?1", [BUREAU_PEER])
            .db(w.path)?;
        tx.execute("UPDATE device SET team = ?1", [team.as_str()])
            .db(w.path)?;
        w.commit()?;
        self.device.team = team;
        Ok(())
    }

    fn has_ledgers_of(&self, team: &TeamId) -> Result<bool> {
        let prefix = format!("ledger/{team}/");
        Ok(docs::doc_ids(&self.conn, &self.path)?
            .iter()
            .any(|id| id.starts_with(&prefix)))
    }
}

/// The HTTP client. Every request leaves out `User-Agent` and `Accept`: the protocol
/// version travels in the body and every answer's type is fixed, and over 2G the 37 bytes
/// are a tenth of an idle sync.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(ROUND_TIMEOUT))
        .http_status_as_error(false)
        .user_agent(ureq::config::AutoHeaderValue::None)
        .accept(ureq::config::AutoHeaderValue::None)
        .build()
        .into()
}

/// Exchanges a one-time code for a device token and remembers the bureau.
pub fn enroll(store: &mut Store, url: &str, code: &str) -> Result<Enrollment> {
    let url = url.trim().trim_end_matches('/').to_string();
    let request = EnrollRequest {
        code: code.trim().to_string(),
        device_name: store.device.name.clone(),
        actors: vec![store.actor.to_hex_string()],
        signing_key: Some(hex::encode(crate::signing::public_key(&store.signer))),
    };
    let endpoint = format!("{url}/v1/enroll");
    let json = serde_json::to_vec(&request).unwrap_or_default();
    let mut response = agent()
        .post(&endpoint)
        .header("Content-Type", "application/json")
        .send(&json[..])
        .map_err(|e| network(&endpoint, e))?;
    let body = read_body(&endpoint, response.body_mut())?;
    if !response.status().is_success() {
        return Err(refusal(response.status().as_u16(), &body));
    }
    let answer: EnrollResponse = serde_json::from_slice(&body).map_err(|e| Error::BadResponse {
        detail: format!("the enrollment answer does not decode: {e}"),
    })?;
    store.save_enrollment(&url, &answer)?;
    store.enrollment()?.ok_or(Error::NotEnrolled)
}

/// Fetches the members the bureau enrolled (see [`MEMBERS_PATH`]) and keeps them, so
/// pairings and the pairing rate work offline afterwards.
pub fn refresh_members(store: &mut Store) -> Result<Vec<fieldlog_domain::EnrolledMember>> {
    let (enrollment, token) = store.bureau_row()?.ok_or(Error::NotEnrolled)?;
    let endpoint = format!("{}{MEMBERS_PATH}", enrollment.url);
    let mut response = agent()
        .get(&endpoint)
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .map_err(|e| network(&endpoint, e))?;
    let body = read_body(&endpoint, response.body_mut())?;
    if !response.status().is_success() {
        return Err(refusal(response.status().as_u16(), &body));
    }
    let answer: MembersResponse =
        serde_json::from_slice(&body).map_err(|e| Error::BadResponse {
            detail: format!("the members answer does not decode: {e}"),
        })?;
    store.set_members(&answer.members)?;
    Ok(answer.members)
}

/// Runs rounds until nothing is left to send and nothing more waits at the bureau, then
/// uploads the photo files the bureau lacks. `progress` hears about each completed round and
/// about upload progress.
pub fn sync(store: &mut Store, mut progress: impl FnMut(&SyncSummary)) -> Result<SyncSummary> {
    let (enrollment, token) = store.bureau_row()?.ok_or(Error::NotEnrolled)?;
    let agent = agent();
    let mut summary = SyncSummary::default();
    sync_records(store, &agent, &token, &mut summary, &mut progress)?;
    upload_photos(
        store,
        &agent,
        &enrollment.url,
        &token,
        &mut summary,
        &mut progress,
    )?;
    Ok(summary)
}

fn sync_records(
    store: &mut Store,
    agent: &ureq::Agent,
    token: &str,
    summary: &mut SyncSummary,
    progress: &mut dyn FnMut(&SyncSummary),
) -> Result<()> {
    while summary.rounds < MAX_ROUNDS {
        let enrollment = store.enrollment()?.ok_or(Error::NotEnrolled)?;
        let (request, offered) = store.build_round(&enrollment)?;
        let sent: usize = offered.iter().map(|d| d.changes).sum();
        let plain = postcard::to_stdvec(&request).map_err(|e| Error::BadResponse {
            detail: format!("the request does not encode: {e}"),
        })?;
        let body = zstd::bulk::compress(&plain, 3).map_err(|source| Error::Io {
            path: store.path.clone(),
            source,
        })?;
        let endpoint = format!("{}/v1/sync", enrollment.url);
        let mut response = agent
            .post(&endpoint)
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", SYNC_CONTENT_TYPE)
            .header("Content-Encoding", "zstd")
            .send(&body[..])
            .map_err(|e| network(&endpoint, e))?;
        let answer = read_body(&endpoint, response.body_mut())?;
        if !response.status().is_success() {
            return Err(refusal(response.status().as_u16(), &answer));
        }
        let response_bytes = answer.len() as u64;
        let answer: SyncResponse = decode_response(&answer)?;
        let more = answer.more;
        let answer_accepted = answer.accepted as usize;
        summary.accepted += answer_accepted;
        summary.received += store.finish_round(&offered, answer)?;
        summary.rounds += 1;
        summary.sent += sent;
        summary.bytes_sent += body.len() as u64;
        summary.bytes_received += response_bytes;
        progress(summary);
        if more {
            continue;
        }
        // Nothing new accepted: whatever still waits cannot go now (status shows it).
        if answer_accepted == 0 {
            return Ok(());
        }
        let waiting =
            offered.iter().any(|d| !d.complete) || !store.changed_docs(&enrollment)?.is_empty();
        if !waiting {
            return Ok(());
        }
    }
    Err(Error::SyncUnfinished {
        rounds: summary.rounds,
    })
}

/// Inflates (within the protocol's limit) and decodes a sync answer.
pub fn decode_response(body: &[u8]) -> Result<SyncResponse> {
    let mut plain = Vec::new();
    zstd::stream::Decoder::new(body)
        .and_then(|mut d| {
            d.window_log_max(MAX_WINDOW_LOG)?;
            d.take(MAX_RESPONSE_BYTES + 1).read_to_end(&mut plain)
        })
        .map_err(|e| Error::BadResponse {
            detail: format!("the answer does not decompress: {e}"),
        })?;
    if plain.len() as u64 > MAX_RESPONSE_BYTES {
        return Err(Error::BadResponse {
            detail: format!("the answer inflates beyond {MAX_RESPONSE_BYTES} bytes"),
        });
    }
    postcard::from_bytes(&plain).map_err(|e| Error::BadResponse {
        detail: format!("the answer does not decode: {e}"),
    })
}

pub(crate) fn read_body(endpoint: &str, body: &mut ureq::Body) -> Result<Vec<u8>> {
    body.with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_vec()
        .map_err(|e| network(endpoint, e))
}

pub(crate) fn network(url: &str, source: ureq::Error) -> Error {
    Error::Network {
        url: url.to_string(),
        source: Box::new(source),
    }
}

pub(crate) fn refusal(status: u16, body: &[u8]) -> Error {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => Error::Refused {
            status,
            reason: error.reason,
            message: error.message,
        },
        Err(_) => Error::BadResponse {
            detail: format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ),
        },
    }
}
