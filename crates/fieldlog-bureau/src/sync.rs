//! One sync round at the bureau, in the order the checks run (the first failure refuses
//! the whole request and stores nothing):
//!
//! 1. [`Bureau::authenticate`]: the bearer token's hash names a device (`unauthenticated`)
//!    that is not revoked (`revoked`).
//! 2. [`decode_body`]: at most [`MAX_BODY_BYTES`] compressed (`too_large`), inflated by a
//!    streaming zstd decoder that stops past [`MAX_INFLATED_BYTES`] (`too_large`: a bomb is
//!    refused, never inflated), postcard (`malformed`), the protocol version
//!    (`unsupported_protocol`), at most [`MAX_CHANGES_PER_REQUEST`] changes
//!    (`too_many_changes`).
//! 3. Each document id parses (`malformed`) and is in the device's [`Scope`]
//!    (`out_of_scope`); each change is a plain change chunk (`malformed`; compressed ones
//!    are never inflated) of at most [`MAX_CHANGE_BYTES`] (`too_large`); a document sent
//!    whole loads within [`MAX_INFLATED_BYTES`] (its compressed columns inflated with a cap
//!    first) and holds no larger change, and the request's documents hold at most
//!    [`MAX_DOCUMENT_CHANGES`] changes (`too_large`); its changes go on as if sent alone.
//! 4. Changes by other devices' actors (a teammate's, carried here): taken when their
//!    signature verifies under the author device's key and that device, not revoked,
//!    could send to the document itself; left out (not stored, not refused) when the
//!    author is unknown, keyless, revoked or out of scope, or the signature is wrong, so a
//!    carrier's own changes always go through; refused (`forged_actor`) when they carry no
//!    signature at all.
//! 5. [`Storage::apply`](crate::Storage::apply), which runs [`crate::admit::admit`]:
//!    actor binding (`forged_actor`), the record layout (`malformed`) and the registry
//!    rule (`registry_edit`).
//! 6. The answer: the changes after the device's cursor in its scope, not its own, at most
//!    the smaller of what it asked for and [`crate::Config::max_changes_per_response`],
//!    with their signatures; or, for a first sync that asks ([`SyncRequest::resume`]), the
//!    documents in its scope whole, up to [`crate::Config::max_response_bytes`] a round.

use crate::Bureau;
use crate::error::{Error, Result};
use crate::scope::Scope;
use crate::secret::SecretHash;
use crate::storage::{ChangesQuery, DeviceRecord, IncomingDoc};
use automerge::{ActorId, Change, ChangeHash};
use fieldlog_core::DocId;
use fieldlog_core::chunks::CarriedLimits;
use fieldlog_domain::sync::{
    ChangeSignature, DocChanges, DocHeads, MAX_BODY_BYTES, MAX_CHANGE_BYTES,
    MAX_CHANGES_PER_REQUEST, MAX_DOCUMENT_CHANGES, MAX_INFLATED_BYTES, PROTOCOL_VERSION, Refusal,
    SyncRequest, SyncResponse,
};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// zstd level for answers: fast, and most of the gain on small changes.
const ANSWER_ZSTD_LEVEL: i32 = 3;
/// A decoder window no larger than the inflated limit, so a crafted frame header cannot
/// make the bureau reserve more memory than a legitimate body needs.
const MAX_WINDOW_LOG: u32 = 25;
const _: () = assert!(1 << MAX_WINDOW_LOG >= MAX_INFLATED_BYTES);

impl Bureau {
    /// The device holding `token`; refuses an unknown token and a revoked device.
    pub fn authenticate(&self, token: &str) -> Result<DeviceRecord> {
        let device = self
            .storage()
            .authenticate(&SecretHash::of(token))?
            .ok_or_else(|| Error::refused(Refusal::Unauthenticated, "unknown device token"))?;
        if device.revoked_at.is_some() {
            return Err(Error::refused(
                Refusal::Revoked,
                "this device was revoked by a coordinator; enroll it again",
            ));
        }
        Ok(device)
    }

    /// One round from its wire form: a zstd(postcard) body in, a zstd(postcard) answer out.
    pub fn sync(&self, device: &DeviceRecord, body: &[u8]) -> Result<Vec<u8>> {
        let request = decode_body(body)?;
        let response = self.sync_request(device, request)?;
        encode_response(&response)
    }

    /// One round, decoded: applies the request's changes and answers with what the device
    /// lacks.
    pub fn sync_request(
        &self,
        device: &DeviceRecord,
        request: SyncRequest,
    ) -> Result<SyncResponse> {
        let round = self.round(device, request)?;
        self.answer(device, round)
    }

    /// Steps 2–4 of a round: the request checked and its changes decoded (documents sent
    /// whole included), nothing stored yet.
    #[tracing::instrument(skip_all, fields(device = %device.id, cursor = request.cursor))]
    pub fn round(&self, device: &DeviceRecord, request: SyncRequest) -> Result<Round> {
        check_request(&request)?;
        if let Some(key) = &request.signing_key
            && device.signing_key.is_none()
        {
            self.storage().set_signing_key(device.id, key)?;
        }
        let scope = self.scope_of(device)?;
        // Every document id first (`malformed`, `out_of_scope`), then every change.
        let mut named = Vec::with_capacity(request.docs.len());
        for doc in request.docs {
            let id = DocId::parse(&doc.doc_id).ok_or_else(|| {
                Error::refused(
                    Refusal::Malformed,
                    format!("`{}` is not a document id", doc.doc_id),
                )
            })?;
            if !scope.allows(&id) {
                return Err(Error::refused(
                    Refusal::OutOfScope,
                    format!("{id} is outside this device's team and region"),
                ));
            }
            named.push((id, doc));
        }
        let mut docs: BTreeMap<DocId, (Vec<Change>, Vec<ChangeSignature>)> = BTreeMap::new();
        let mut document_changes = MAX_DOCUMENT_CHANGES;
        for (id, doc) in named {
            let (decoded, signed) = docs.entry(id.clone()).or_default();
            signed.extend(doc.signatures);
            let carried = fieldlog_core::chunks::carried_changes(
                doc.document.as_deref().map(|d| &d[..]),
                doc.changes.into_iter().map(|c| c.into_vec()).collect(),
                CarriedLimits {
                    change_bytes: MAX_CHANGE_BYTES,
                    inflated_bytes: MAX_INFLATED_BYTES,
                    document_changes,
                },
            )
            .map_err(|e| {
                let reason = if e.is_too_large() {
                    Refusal::TooLarge
                } else {
                    Refusal::Malformed
                };
                Error::refused(reason, format!("changes to {id}: {e}"))
            })?;
            if doc.document.is_some() {
                document_changes = document_changes.saturating_sub(carried.len());
            }
            decoded.extend(carried);
        }

        let requested: Vec<DocId> = docs.keys().cloned().collect();
        let carried = docs.values().map(|(changes, _)| changes.len()).sum();
        let mut incoming = Vec::new();
        for (doc_id, (changes, signatures)) in docs {
            if changes.is_empty() {
                continue;
            }
            incoming.push(self.carried(device, doc_id, changes, signatures)?);
        }
        Ok(Round {
            cursor: request.cursor,
            resume: request.resume,
            max_changes: request.max_changes,
            scope,
            requested,
            incoming,
            carried,
        })
    }

    /// Steps 5–6 of a round: its changes applied, and the answer.
    #[tracing::instrument(skip_all, fields(device = %device.id, cursor = round.cursor))]
    pub fn answer(&self, device: &DeviceRecord, round: Round) -> Result<SyncResponse> {
        let Round {
            cursor,
            resume,
            max_changes,
            scope,
            requested,
            incoming,
            ..
        } = round;
        let applied = if incoming.is_empty() {
            Default::default()
        } else {
            self.apply(device, incoming)?
        };

        let config = self.config();
        let mut heads: BTreeMap<DocId, Vec<ChangeHash>> = applied.heads.into_iter().collect();
        // A first sync that asks gets the documents whole, in rounds (see the protocol).
        let whole = match &resume {
            Some(after) => self.whole_documents(
                &scope.keys(),
                Some(after.as_str()).filter(|a| !a.is_empty()),
                config.max_response_bytes,
            )?,
            None => None,
        };
        if let Some(whole) = whole {
            let at = if cursor == 0 { whole.last_seq } else { cursor };
            let resume = whole
                .more
                .then(|| whole.documents.last().map(|(id, _, _)| id.to_string()))
                .flatten();
            let more = resume.is_some() || whole.last_seq > at;
            let mut changes = Vec::with_capacity(whole.documents.len());
            for (doc_id, doc_heads, bytes) in whole.documents {
                changes.push(DocChanges {
                    doc_id: doc_id.to_string(),
                    changes: Vec::new(),
                    document: Some(bytes.into()),
                    signatures: Vec::new(),
                });
                heads.insert(doc_id, doc_heads);
            }
            let unknown: Vec<DocId> = requested
                .into_iter()
                .filter(|id| !heads.contains_key(id))
                .collect();
            heads.extend(self.heads(&unknown)?);
            tracing::info!(
                accepted = applied.accepted,
                documents = changes.len(),
                cursor = at,
                more,
                "sync round, documents whole"
            );
            return Ok(answer(applied.accepted, heads, changes, at, more, resume));
        }
        let page = self.storage().changes_after(&ChangesQuery {
            scope_keys: scope.keys(),
            after: cursor,
            exclude_device: device.id,
            max_changes: max_changes.min(config.max_changes_per_response) as usize,
            max_bytes: config.max_response_bytes,
            max_change_bytes: fieldlog_domain::sync::MAX_PASSED_CHANGE_BYTES,
        })?;
        let sent = page.changes.len();
        let mut changes: Vec<DocChanges> = Vec::new();
        for change in page.changes {
            let index = match changes.iter().position(|d| d.doc_id == change.doc_id) {
                Some(index) => index,
                None => {
                    changes.push(DocChanges {
                        doc_id: change.doc_id.clone(),
                        changes: Vec::new(),
                        document: None,
                        signatures: Vec::new(),
                    });
                    changes.len() - 1
                }
            };
            let doc = &mut changes[index];
            if let Some(signature) = change.signature {
                doc.signatures.push(ChangeSignature {
                    hash: change.hash.0,
                    signature: signature.into(),
                });
            }
            doc.changes.push(change.bytes.into());
        }

        // Heads read now, after the page: a document this answer carries changes of gets
        // heads that cover them. Heads from this round's own write may predate a teammate's
        // change committed since and delivered here, and a device told those would count
        // that change as not yet at the bureau for good.
        let delivered = changes.iter().filter_map(|d| DocId::parse(&d.doc_id));
        let unknown: BTreeSet<DocId> = requested
            .into_iter()
            .filter(|id| !heads.contains_key(id))
            .chain(delivered)
            .collect();
        let unknown: Vec<DocId> = unknown.into_iter().collect();
        heads.extend(self.heads(&unknown)?);

        tracing::info!(
            accepted = applied.accepted,
            sent,
            cursor = page.cursor,
            more = page.more,
            "sync round"
        );
        Ok(answer(
            applied.accepted,
            heads,
            changes,
            page.cursor,
            page.more,
            None,
        ))
    }
}

fn answer(
    accepted: usize,
    heads: BTreeMap<DocId, Vec<ChangeHash>>,
    changes: Vec<DocChanges>,
    cursor: u64,
    more: bool,
    resume: Option<String>,
) -> SyncResponse {
    SyncResponse {
        accepted: u32::try_from(accepted).unwrap_or(u32::MAX),
        heads: heads
            .into_iter()
            .map(|(doc_id, heads)| DocHeads {
                doc_id: doc_id.to_string(),
                heads: heads.into_iter().map(|h| h.0).collect(),
            })
            .collect(),
        changes,
        cursor,
        more,
        resume,
    }
}

/// A round's request once checked and decoded ([`Bureau::round`]), for [`Bureau::answer`].
#[derive(Debug)]
pub struct Round {
    cursor: u64,
    resume: Option<String>,
    max_changes: u32,
    scope: Scope,
    requested: Vec<DocId>,
    incoming: Vec<IncomingDoc>,
    carried: usize,
}

impl Round {
    /// How many changes the request carried, those in documents sent whole included.
    pub fn carried(&self) -> usize {
        self.carried
    }
}

impl Bureau {
    /// Sorts one document's changes by author: this device's own go on to admission, and so
    /// do teammates' that carry a valid signature of an author who could send them itself
    /// (their authors returned for admission) and unsigned ones (admission refuses those the
    /// bureau does not hold yet); other signed changes are left out.
    fn carried(
        &self,
        device: &DeviceRecord,
        doc_id: DocId,
        changes: Vec<Change>,
        signatures: Vec<ChangeSignature>,
    ) -> Result<IncomingDoc> {
        let foreign: BTreeSet<ActorId> = changes
            .iter()
            .map(|c| c.actor_id().clone())
            .filter(|a| !device.actors.contains(a))
            .collect();
        if foreign.is_empty() {
            return Ok(IncomingDoc {
                doc_id,
                changes,
                signatures,
                authors: Vec::new(),
            });
        }
        let foreign: Vec<ActorId> = foreign.into_iter().collect();
        let owners = self.storage().devices_of_actors(&foreign)?;
        // The authors' scopes (rare: only changes carried for teammates get here).
        let teams = self.teams()?;
        let signature_of = |hash: &ChangeHash| signatures.iter().find(|s| s.hash == hash.0);
        let mut authors: Vec<DeviceRecord> = Vec::new();
        let mut kept = Vec::with_capacity(changes.len());
        let mut left_out = 0usize;
        for change in changes {
            if device.actors.contains(change.actor_id()) {
                kept.push(change);
                continue;
            }
            // Without a signature, admission refuses it unless the bureau already holds it.
            let Some(signature) = signature_of(&change.hash()) else {
                kept.push(change);
                continue;
            };
            let author = owners
                .iter()
                .find(|(actor, _)| actor == change.actor_id())
                .map(|(_, d)| d)
                .filter(|d| d.revoked_at.is_none())
                .filter(|d| Scope::of(d, &teams).allows(&doc_id))
                .filter(|d| {
                    d.signing_key
                        .is_some_and(|key| fieldlog_core::signing::verify(&key, signature))
                });
            match author {
                Some(author) => {
                    if !authors.iter().any(|a| a.id == author.id) {
                        authors.push(author.clone());
                    }
                    kept.push(change);
                }
                None => left_out += 1,
            }
        }
        if left_out > 0 {
            tracing::info!(
                %doc_id,
                left_out,
                "carried changes left out: author unknown, revoked, out of scope or signature wrong"
            );
        }
        Ok(IncomingDoc {
            doc_id,
            changes: kept,
            signatures,
            authors,
        })
    }
}

fn check_request(request: &SyncRequest) -> Result<()> {
    if request.protocol != PROTOCOL_VERSION {
        return Err(unsupported(request.protocol));
    }
    let count: usize = request.docs.iter().map(|d| d.changes.len()).sum();
    if count > MAX_CHANGES_PER_REQUEST {
        return Err(Error::refused(
            Refusal::TooManyChanges,
            format!("{count} changes in one request; send at most {MAX_CHANGES_PER_REQUEST}"),
        ));
    }
    Ok(())
}

fn unsupported(version: u16) -> Error {
    Error::refused(
        Refusal::UnsupportedProtocol,
        format!("protocol {version} is not spoken here; this bureau speaks {PROTOCOL_VERSION}"),
    )
}

/// Inflates and decodes a request body within the protocol's limits.
pub fn decode_body(body: &[u8]) -> Result<SyncRequest> {
    let malformed = |why: String| Error::refused(Refusal::Malformed, why);
    if body.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    let mut decoder = zstd::stream::read::Decoder::with_buffer(body)
        .map_err(|e| malformed(format!("the body is not zstd: {e}")))?;
    decoder
        .window_log_max(MAX_WINDOW_LOG)
        .map_err(|e| malformed(format!("the body is not zstd: {e}")))?;
    let mut inflated = Vec::new();
    decoder
        .take(MAX_INFLATED_BYTES as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| malformed(format!("the body is not zstd: {e}")))?;
    if inflated.len() > MAX_INFLATED_BYTES {
        return Err(too_large());
    }
    // The version comes first on the wire; read it alone, so a device speaking another
    // version hears that rather than "malformed".
    #[derive(Deserialize)]
    struct Version {
        protocol: u16,
    }
    let (version, _) = postcard::take_from_bytes::<Version>(&inflated)
        .map_err(|e| malformed(format!("the body does not decode: {e}")))?;
    if version.protocol != PROTOCOL_VERSION {
        return Err(unsupported(version.protocol));
    }
    match postcard::take_from_bytes::<SyncRequest>(&inflated) {
        Ok((request, [])) => Ok(request),
        Ok(_) => Err(malformed("the body has trailing bytes".into())),
        Err(e) => Err(malformed(format!("the body does not decode: {e}"))),
    }
}

fn too_large() -> Error {
    Error::refused(
        Refusal::TooLarge,
        format!(
            "the body is larger than {MAX_BODY_BYTES} bytes, or inflates beyond {MAX_INFLATED_BYTES}"
        ),
    )
}

pub fn encode_response(response: &SyncResponse) -> Result<Vec<u8>> {
    let bytes = postcard::to_allocvec(response).map_err(Error::Encode)?;
    zstd::encode_all(&bytes[..], ANSWER_ZSTD_LEVEL).map_err(Error::Compress)
}
