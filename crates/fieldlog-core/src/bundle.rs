//! Bundles: changes carried between devices as a file (USB stick, SD card, chat attachment).
//!
//! Layout: `FIELDLOG-BUNDLE\n` (16 bytes), a format version byte, the sha256 of the payload
//! (32 bytes), then the payload: zstd-compressed postcard of [`Body`]. Per document it holds
//! either the whole history in Automerge's document encoding or a list of changes. A bundle also carries
//! the sender's heads per document, so the receiver learns what the sender holds and its
//! next export to that sender leaves those changes out. Changes are content-addressed:
//! importing a bundle twice, or one that overlaps, changes nothing the second time.

use crate::docs;
use crate::error::{DbContext, Result};
use crate::ledger::DocId;
use crate::store::Store;
use automerge::{Change, ChangeHash};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::Read;

const MAGIC: &[u8; 16] = b"FIELDLOG-BUNDLE\n";
const VERSION: u8 = 1;
const HEADER_LEN: usize = MAGIC.len() + 1 + 32;
/// A bundle never inflates beyond this, however it was crafted.
const MAX_PAYLOAD_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("not a Fieldlog bundle")]
    NotABundle,
    #[error("bundle format {0} is newer than this version of Fieldlog understands")]
    UnsupportedVersion(u8),
    #[error("the bundle is truncated or damaged (checksum mismatch)")]
    Damaged,
    #[error("the bundle does not decompress")]
    Decompress(#[source] std::io::Error),
    #[error("the bundle inflates beyond {MAX_PAYLOAD_BYTES} bytes")]
    TooLarge,
    #[error("the bundle's contents do not decode")]
    Decode(#[source] postcard::Error),
    #[error("could not encode the bundle")]
    Encode(#[source] postcard::Error),
    #[error("could not compress the bundle")]
    Compress(#[source] std::io::Error),
    #[error("the bundle names an unknown document `{0}`")]
    UnknownDocument(String),
    #[error("document {doc_id} does not load")]
    BadDocument {
        doc_id: String,
        #[source]
        source: Box<automerge::AutomergeError>,
    },
    #[error("document {doc_id} carries a malformed change")]
    BadChange {
        doc_id: String,
        #[source]
        source: crate::ledger::ChangeError,
    },
}

impl BundleError {
    pub(crate) fn message_zh(&self) -> String {
        match self {
            BundleError::NotABundle => "这不是 Fieldlog 同步包".into(),
            BundleError::UnsupportedVersion(v) => format!("同步包格式 {v} 太新，请先升级 Fieldlog"),
            BundleError::Damaged => "同步包不完整或已损坏（校验不符）".into(),
            BundleError::Decompress(_) => "同步包无法解压".into(),
            BundleError::TooLarge => "同步包解压后过大".into(),
            BundleError::Decode(_) => "同步包内容无法解析".into(),
            BundleError::Encode(_) | BundleError::Compress(_) => "无法生成同步包".into(),
            BundleError::UnknownDocument(id) => format!("同步包含有未知文档“{id}”"),
            BundleError::BadDocument { doc_id, .. } => format!("文档 {doc_id} 已损坏"),
            BundleError::BadChange { doc_id, .. } => format!("文档 {doc_id} 中有损坏的修改"),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Body {
    from_device: String,
    from_name: String,
    docs: Vec<DocPart>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DocPart {
    doc_id: String,
    /// The sender's heads, 32 bytes each.
    heads: ByteBuf,
    payload: Payload,
}

#[derive(Debug, Serialize, Deserialize)]
enum Payload {
    /// The whole history in Automerge's compact document encoding (several times smaller
    /// than the same changes one by one).
    Document(ByteBuf),
    /// Some changes, each in Automerge's change encoding.
    Changes(Vec<ByteBuf>),
}

/// Which changes a bundle carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportScope {
    /// Everything this device holds.
    All,
    /// What at least one known peer lacks; everything when no peer is known yet.
    MissingAtPeers,
    /// What one peer (by device id or name) lacks, as far as its last bundle told us.
    For(String),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleStats {
    pub documents: usize,
    pub changes: usize,
    pub bytes: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportStats {
    pub from_device: String,
    pub from_name: String,
    pub documents: usize,
    /// Changes new to this device.
    pub applied: usize,
    /// Changes it already had (a repeated import applies none).
    pub already_present: usize,
}

impl Store {
    /// Writes the changes `scope` selects into bundle bytes.
    pub fn export_bundle(&mut self, scope: &ExportScope) -> Result<(Vec<u8>, BundleStats)> {
        let peers = self.peers_for(scope)?;
        let mut parts = Vec::new();
        let mut stats = BundleStats::default();
        for doc_id in docs::doc_ids(&self.conn, &self.path)? {
            let mut known_at_peers = Vec::new();
            for peer in &peers {
                known_at_peers.push(docs::peer_heads(&self.conn, &self.path, peer, &doc_id)?);
            }
            let doc = &self
                .docs
                .fresh(&self.conn, &self.path, &doc_id, &self.actor)?
                .doc;
            let changes = missing_changes(doc, scope, &known_at_peers);
            stats.documents += 1;
            stats.changes += changes.len();
            let whole_history = changes.len() == doc.get_changes_meta(&[]).len();
            let payload = if whole_history && !changes.is_empty() {
                Payload::Document(ByteBuf::from(doc.save()))
            } else {
                Payload::Changes(
                    changes
                        .iter()
                        .map(|c| ByteBuf::from(c.raw_bytes().to_vec()))
                        .collect(),
                )
            };
            parts.push(DocPart {
                heads: ByteBuf::from(docs::encode_heads(&doc.get_heads())),
                payload,
                doc_id,
            });
        }
        let body = Body {
            from_device: self.device.id.to_string(),
            from_name: self.device.name.clone(),
            docs: parts,
        };
        let bytes = encode(&body)?;
        stats.bytes = bytes.len();
        Ok((bytes, stats))
    }

    /// The peers whose known heads decide what `scope` exports (none for `All`).
    fn peers_for(&self, scope: &ExportScope) -> Result<Vec<String>> {
        let wanted = match scope {
            ExportScope::All => return Ok(Vec::new()),
            ExportScope::MissingAtPeers => None,
            ExportScope::For(peer) => Some(peer.as_str()),
        };
        let mut stmt = self
            .conn
            .prepare("SELECT peer_id FROM peers WHERE ?1 IS NULL OR peer_id = ?1 OR name = ?1")
            .db(&self.path)?;
        let peers = stmt
            .query_map([wanted], |r| r.get(0))
            .db(&self.path)?
            .collect::<Result<Vec<String>, _>>()
            .db(&self.path)?;
        Ok(peers)
    }

    /// Applies a bundle. All of it is checked before anything is written, and it is written
    /// in one transaction: a damaged or foreign file changes nothing.
    pub fn import_bundle(&mut self, bytes: &[u8]) -> Result<ImportStats> {
        let body = decode(bytes)?;
        let mut parts = Vec::new();
        for part in body.docs {
            let doc_id = DocId::parse(&part.doc_id)
                .ok_or_else(|| BundleError::UnknownDocument(part.doc_id.clone()))?;
            let changes = match part.payload {
                Payload::Changes(changes) => changes
                    .into_iter()
                    .map(|c| crate::ledger::decode_change(c.into_vec()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|source| BundleError::BadChange {
                        doc_id: part.doc_id.clone(),
                        source,
                    })?,
                Payload::Document(bytes) => automerge::Automerge::load(&bytes)
                    .map_err(|source| BundleError::BadDocument {
                        doc_id: part.doc_id.clone(),
                        source: Box::new(source),
                    })?
                    .get_changes(&[]),
            };
            parts.push((doc_id, docs::decode_heads(&part.heads), changes));
        }
        let mut stats = ImportStats {
            from_device: body.from_device,
            from_name: body.from_name,
            documents: parts.len(),
            ..ImportStats::default()
        };
        let mut w = self.begin()?;
        let now = w.now;
        for (doc_id, sender_heads, changes) in parts {
            let offered = changes.len();
            let (_, applied) = w.apply(&doc_id, changes)?;
            stats.applied += applied;
            stats.already_present += offered.saturating_sub(applied);
            w.tx()
                .execute(
                    "INSERT INTO peer_heads (peer_id, doc_id, heads) VALUES (?1, ?2, ?3)
                     ON CONFLICT (peer_id, doc_id) DO UPDATE SET heads = excluded.heads",
                    params![
                        stats.from_device,
                        doc_id.to_string(),
                        docs::encode_heads(&sender_heads)
                    ],
                )
                .db(w.path)?;
        }
        w.tx()
            .execute(
                "INSERT INTO peers (peer_id, name, last_seen_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (peer_id) DO UPDATE SET name = excluded.name,
                     last_seen_at = excluded.last_seen_at",
                params![stats.from_device, stats.from_name, now],
            )
            .db(w.path)?;
        w.commit()?;
        Ok(stats)
    }
}

/// The changes of `doc` that the scope asks for, in an order that applies cleanly.
fn missing_changes(
    doc: &automerge::Automerge,
    scope: &ExportScope,
    known_at_peers: &[Option<Vec<ChangeHash>>],
) -> Vec<Change> {
    if *scope == ExportScope::All || known_at_peers.is_empty() {
        return doc.get_changes(&[]);
    }
    let mut wanted: HashSet<ChangeHash> = HashSet::new();
    for known in known_at_peers {
        let heads: Vec<ChangeHash> = known
            .iter()
            .flatten()
            .filter(|h| doc.get_change_meta_by_hash(h).is_some())
            .copied()
            .collect();
        wanted.extend(doc.get_changes(&heads).iter().map(Change::hash));
    }
    doc.get_changes(&[])
        .into_iter()
        .filter(|c| wanted.contains(&c.hash()))
        .collect()
}

fn encode(body: &Body) -> Result<Vec<u8>, BundleError> {
    let plain = postcard::to_stdvec(body).map_err(BundleError::Encode)?;
    let payload = zstd::bulk::compress(&plain, 3).map_err(BundleError::Compress)?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&Sha256::digest(&payload));
    out.extend_from_slice(&payload);
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<Body, BundleError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(BundleError::NotABundle);
    }
    if bytes.len() < HEADER_LEN {
        return Err(BundleError::Damaged);
    }
    let version = bytes[MAGIC.len()];
    if version != VERSION {
        return Err(BundleError::UnsupportedVersion(version));
    }
    let (checksum, payload) = bytes[MAGIC.len() + 1..].split_at(32);
    if Sha256::digest(payload).as_slice() != checksum {
        return Err(BundleError::Damaged);
    }
    let mut plain = Vec::new();
    zstd::stream::Decoder::new(payload)
        .map_err(BundleError::Decompress)?
        .take(MAX_PAYLOAD_BYTES + 1)
        .read_to_end(&mut plain)
        .map_err(BundleError::Decompress)?;
    if plain.len() as u64 > MAX_PAYLOAD_BYTES {
        return Err(BundleError::TooLarge);
    }
    postcard::from_bytes(&plain).map_err(BundleError::Decode)
}
