//! Bundles: changes carried between devices as a file (USB stick, SD card, chat attachment).
//!
//! Layout: `FIELDLOG-BUNDLE\n` (16 bytes), a format version byte, the sha256 of the payload
//! (32 bytes), then the payload: one zstd frame (declaring its size) of postcard [`Body`].
//! Per document it holds either the whole history in Automerge's document encoding or a
//! list of changes, and the authors' signatures of those changes that the sender holds, so
//! the receiver can carry them to the bureau (see [`crate::signing`]). A bundle also carries
//! the sender's heads per document, so the receiver learns what the sender holds and its
//! next export to that sender leaves those changes out. Changes are content-addressed:
//! importing a bundle twice, or one that overlaps, changes nothing the second time.
//! Version 1 bundles (before signatures) still import.
//!
//! A bundle comes from elsewhere (a chat attachment, a stick), so sizes are checked before
//! anything inflates: the frame's declared size against the file's, each change against
//! [`MAX_PASSED_CHANGE_BYTES`], and what the documents inflate to against a budget.

use crate::docs;
use crate::error::{DbContext, Result};
use crate::ledger::DocId;
use crate::store::Store;
use automerge::{Change, ChangeHash};
use fieldlog_domain::DeviceId;
use fieldlog_domain::sync::{ChangeSignature, MAX_PASSED_CHANGE_BYTES};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};
use std::collections::HashSet;

const MAGIC: &[u8; 16] = b"FIELDLOG-BUNDLE\n";
/// 2: signatures. 1 (no signatures) still imports.
const VERSION: u8 = 2;
const VERSION_UNSIGNED: u8 = 1;
const HEADER_LEN: usize = MAGIC.len() + 1 + 32;
/// A bundle's payload never inflates beyond this…
const MAX_PAYLOAD_BYTES: u64 = 512 * 1024 * 1024;
/// …nor beyond this many times its compressed size, plus [`MIN_PAYLOAD_ALLOWANCE`]:
/// postcard of Automerge chunks compresses a few times over, never a hundred.
const MAX_INFLATION_RATIO: u64 = 64;
const MIN_PAYLOAD_ALLOWANCE: u64 = 1024 * 1024;
/// Documents in a bundle inflate (Automerge's compressed columns, in version 1 bundles) to at
/// most this many times the payload's size, plus the same allowance.
const MAX_DOCUMENT_RATIO: usize = 16;

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
    #[error("the bundle would inflate to more than its contents can need")]
    TooLarge,
    #[error("the bundle has bytes after its contents")]
    TrailingBytes,
    #[error("the bundle does not name the device that made it")]
    NoSender,
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
        source: Box<crate::chunks::DocumentError>,
    },
    #[error("document {doc_id} carries a malformed change")]
    BadChange {
        doc_id: String,
        #[source]
        source: Box<crate::chunks::ChangeError>,
    },
}

impl BundleError {
    pub(crate) fn message_zh(&self) -> String {
        match self {
            BundleError::NotABundle => "这不是 Fieldlog 同步包".into(),
            BundleError::UnsupportedVersion(v) => format!("同步包格式 {v} 太新，请先升级 Fieldlog"),
            BundleError::Damaged => "同步包不完整或已损坏（校验不符）".into(),
            BundleError::Decompress(_) => "同步包无法解压".into(),
            BundleError::TooLarge => "同步包解压后过大（可能是恶意文件）".into(),
            BundleError::TrailingBytes => "同步包末尾有多余的数据".into(),
            BundleError::NoSender => "同步包没有注明来自哪台设备".into(),
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
    /// Authors' signatures of the changes in `payload`, those the sender holds.
    signatures: Vec<ChangeSignature>,
}

/// Version 1: no signatures.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct BodyUnsigned {
    from_device: String,
    from_name: String,
    docs: Vec<DocPartUnsigned>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct DocPartUnsigned {
    doc_id: String,
    heads: ByteBuf,
    payload: Payload,
}

impl From<BodyUnsigned> for Body {
    fn from(old: BodyUnsigned) -> Body {
        Body {
            from_device: old.from_device,
            from_name: old.from_name,
            docs: old
                .docs
                .into_iter()
                .map(|d| DocPart {
                    doc_id: d.doc_id,
                    heads: d.heads,
                    payload: d.payload,
                    signatures: Vec::new(),
                })
                .collect(),
        }
    }
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
            // Rosters hold minors' names: they reach teammates through the bureau only, never
            // in a file that may be handed to anyone.
            if matches!(DocId::parse(&doc_id), Some(DocId::Roster { .. })) {
                continue;
            }
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
            let hashes: Vec<ChangeHash> = changes.iter().map(Change::hash).collect();
            let payload = if whole_history && !changes.is_empty() {
                // Uncompressed columns: the receiver never inflates what zstd already does.
                Payload::Document(ByteBuf::from(doc.save_nocompress()))
            } else {
                Payload::Changes(
                    changes
                        .iter()
                        .map(|c| ByteBuf::from(c.raw_bytes().to_vec()))
                        .collect(),
                )
            };
            let heads = ByteBuf::from(docs::encode_heads(&doc.get_heads()));
            parts.push(DocPart {
                heads,
                payload,
                signatures: crate::signing::held(&self.conn, &self.path, hashes)?,
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
        let (body, plain_len) = decode(bytes)?;
        if body.from_device.parse::<DeviceId>().is_err() {
            return Err(BundleError::NoSender.into());
        }
        let mut budget =
            plain_len.saturating_mul(MAX_DOCUMENT_RATIO) + MIN_PAYLOAD_ALLOWANCE as usize;
        let mut parts = Vec::new();
        for part in body.docs {
            let doc_id = DocId::parse(&part.doc_id)
                .ok_or_else(|| BundleError::UnknownDocument(part.doc_id.clone()))?;
            let changes = match part.payload {
                Payload::Changes(changes) => changes
                    .into_iter()
                    .map(|c| crate::chunks::decode_change(c.into_vec(), MAX_PASSED_CHANGE_BYTES))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|source| BundleError::BadChange {
                        doc_id: part.doc_id.clone(),
                        source: Box::new(source),
                    })?,
                Payload::Document(bytes) => {
                    let doc = crate::chunks::load_document(&bytes, budget).map_err(|source| {
                        BundleError::BadDocument {
                            doc_id: part.doc_id.clone(),
                            source: Box::new(source),
                        }
                    })?;
                    budget = budget.saturating_sub(bytes.len());
                    doc.get_changes(&[])
                }
            };
            let hashes: HashSet<ChangeHash> = changes.iter().map(Change::hash).collect();
            let signatures: Vec<ChangeSignature> = part
                .signatures
                .into_iter()
                .filter(|s| hashes.contains(&ChangeHash(s.hash)))
                .collect();
            parts.push((doc_id, docs::decode_heads(&part.heads), changes, signatures));
        }
        let mut stats = ImportStats {
            from_device: body.from_device,
            from_name: body.from_name,
            documents: parts.len(),
            ..ImportStats::default()
        };
        let mut w = self.begin()?;
        let now = w.now;
        for (doc_id, sender_heads, changes, signatures) in parts {
            let offered = changes.len();
            let (_, applied) = w.apply(&doc_id, changes)?;
            crate::signing::store(w.tx(), w.path, &signatures)?;
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

/// The body and the size of its postcard encoding. Nothing inflates before the frame's
/// declared size is checked against what the file's size allows.
fn decode(bytes: &[u8]) -> Result<(Body, usize), BundleError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(BundleError::NotABundle);
    }
    if bytes.len() < HEADER_LEN {
        return Err(BundleError::Damaged);
    }
    let version = bytes[MAGIC.len()];
    if version != VERSION && version != VERSION_UNSIGNED {
        return Err(BundleError::UnsupportedVersion(version));
    }
    let (checksum, payload) = bytes[MAGIC.len() + 1..].split_at(32);
    if Sha256::digest(payload).as_slice() != checksum {
        return Err(BundleError::Damaged);
    }
    let frame = zstd::zstd_safe::find_frame_compressed_size(payload)
        .map_err(|_| BundleError::Decompress(std::io::ErrorKind::InvalidData.into()))?;
    if frame != payload.len() {
        return Err(BundleError::TrailingBytes);
    }
    let allowed = (payload.len() as u64)
        .saturating_mul(MAX_INFLATION_RATIO)
        .saturating_add(MIN_PAYLOAD_ALLOWANCE)
        .min(MAX_PAYLOAD_BYTES);
    let declared = match zstd::zstd_safe::get_frame_content_size(payload) {
        Ok(Some(size)) if size <= allowed => size,
        Ok(Some(_)) => return Err(BundleError::TooLarge),
        // Every bundle Fieldlog wrote declares its size.
        Ok(None) | Err(_) => {
            return Err(BundleError::Decompress(
                std::io::ErrorKind::InvalidData.into(),
            ));
        }
    };
    let plain =
        zstd::bulk::decompress(payload, declared as usize).map_err(BundleError::Decompress)?;
    let body = if version == VERSION {
        postcard::from_bytes(&plain).map_err(BundleError::Decode)?
    } else {
        postcard::from_bytes::<BodyUnsigned>(&plain)
            .map_err(BundleError::Decode)?
            .into()
    };
    Ok((body, plain.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, Options};
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ROOT};

    fn store(dir: &tempfile::TempDir) -> Store {
        Store::init(dir.path(), "一号机", "caravan-1", Options::default()).unwrap()
    }

    /// A bundle file around `plain` (a postcard body), as `version`.
    fn framed(version: u8, plain: &[u8]) -> Vec<u8> {
        let payload = zstd::bulk::compress(plain, 3).unwrap();
        let mut out = MAGIC.to_vec();
        out.push(version);
        out.extend_from_slice(&Sha256::digest(&payload));
        out.extend_from_slice(&payload);
        out
    }

    fn one_doc(payload: Payload) -> Vec<u8> {
        let body = Body {
            from_device: DeviceId(uuid::Uuid::now_v7()).to_string(),
            from_name: "二号机".into(),
            docs: vec![DocPart {
                doc_id: "ledger/caravan-1/2026-05".into(),
                heads: ByteBuf::new(),
                payload,
                signatures: Vec::new(),
            }],
        };
        framed(VERSION, &postcard::to_stdvec(&body).unwrap())
    }

    fn refusal(store: &mut Store, bytes: &[u8]) -> BundleError {
        match store.import_bundle(bytes) {
            Err(Error::Bundle(e)) => e,
            other => panic!("expected a bundle error, got {other:?}"),
        }
    }

    fn visit_doc(notes_len: usize) -> AutoCommit {
        let mut doc = AutoCommit::new();
        let visit = doc
            .put_object(ROOT, uuid::Uuid::now_v7().to_string(), ObjType::Map)
            .unwrap();
        doc.put(&visit, "notes", "x".repeat(notes_len)).unwrap();
        doc.commit();
        doc
    }

    #[test]
    fn a_zstd_bomb_is_refused_by_its_declared_size_before_inflating() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(&dir);
        // 256 MiB of zeros, streamed, declaring its size: a few KB on disk.
        let size: u64 = 256 * 1024 * 1024;
        let mut encoder = zstd::stream::Encoder::new(Vec::new(), 19).unwrap();
        encoder.include_contentsize(true).unwrap();
        encoder.set_pledged_src_size(Some(size)).unwrap();
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..size / zeros.len() as u64 {
            std::io::Write::write_all(&mut encoder, &zeros).unwrap();
        }
        let payload = encoder.finish().unwrap();
        assert!(payload.len() < 64 * 1024, "{}", payload.len());
        let mut bomb = MAGIC.to_vec();
        bomb.push(VERSION);
        bomb.extend_from_slice(&Sha256::digest(&payload));
        bomb.extend_from_slice(&payload);
        assert!(matches!(refusal(&mut store, &bomb), BundleError::TooLarge));
    }

    #[test]
    fn bytes_after_the_frame_and_a_bundle_from_no_one_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(&dir);
        let good = one_doc(Payload::Changes(Vec::new()));
        let payload_start = HEADER_LEN;
        let mut payload = good[payload_start..].to_vec();
        payload.extend_from_slice(&good[payload_start..]);
        let mut trailing = MAGIC.to_vec();
        trailing.push(VERSION);
        trailing.extend_from_slice(&Sha256::digest(&payload));
        trailing.extend_from_slice(&payload);
        assert!(matches!(
            refusal(&mut store, &trailing),
            BundleError::TrailingBytes
        ));

        let nobody = Body {
            from_device: String::new(),
            from_name: String::new(),
            docs: Vec::new(),
        };
        let bytes = framed(VERSION, &postcard::to_stdvec(&nobody).unwrap());
        assert!(matches!(refusal(&mut store, &bytes), BundleError::NoSender));
        assert!(store.import_bundle(&good).is_ok());
    }

    #[test]
    fn compressed_automerge_chunks_in_a_bundle_are_refused_never_inflated() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(&dir);
        let mut doc = visit_doc(1024 * 1024);
        let compressed = doc.get_last_local_change().unwrap().bytes().to_vec();
        let bytes = one_doc(Payload::Changes(vec![ByteBuf::from(compressed)]));
        assert!(bytes.len() < 16 * 1024);
        assert!(matches!(
            refusal(&mut store, &bytes),
            BundleError::BadChange { .. }
        ));
        // A document whose compressed columns inflate far beyond what the bundle can need.
        let saved = visit_doc(64 * 1024 * 1024).save();
        assert!(saved.len() < 1024 * 1024);
        let bytes = one_doc(Payload::Document(ByteBuf::from(saved)));
        assert!(matches!(
            refusal(&mut store, &bytes),
            BundleError::BadDocument { .. }
        ));
    }

    #[test]
    fn a_version_1_bundle_without_signatures_still_imports() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(&dir);
        let mut doc = visit_doc(100);
        let old = BodyUnsigned {
            from_device: DeviceId(uuid::Uuid::now_v7()).to_string(),
            from_name: "旧设备".into(),
            docs: vec![DocPartUnsigned {
                doc_id: "ledger/caravan-1/2026-05".into(),
                heads: ByteBuf::from(docs::encode_heads(&doc.get_heads())),
                // Version 1 wrote documents with compressed columns.
                payload: Payload::Document(ByteBuf::from(doc.document().save())),
            }],
        };
        let bytes = framed(VERSION_UNSIGNED, &postcard::to_stdvec(&old).unwrap());
        let stats = store.import_bundle(&bytes).unwrap();
        assert_eq!((stats.documents, stats.applied), (1, 1));
    }

    #[test]
    fn a_bundle_carries_the_signatures_of_the_changes_it_holds() {
        let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (mut a, mut b) = (store(&a_dir), store(&b_dir));
        a.add_school(
            &fieldlog_domain::SchoolInput {
                name: "南山小学".into(),
                district: "南山区".into(),
                area: "城区".into(),
                ..Default::default()
            },
            fieldlog_domain::SchoolStatus::Pending,
        )
        .unwrap();
        let (bundle, stats) = a.export_bundle(&ExportScope::All).unwrap();
        b.import_bundle(&bundle).unwrap();
        let count: i64 = b
            .conn
            .query_row("SELECT count(*) FROM change_signatures", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count as usize, stats.changes);
        let public = crate::signing::public_key(&a.signer);
        let hashes: Vec<ChangeHash> = b
            .documents()
            .unwrap()
            .iter()
            .flat_map(|(_, d)| d.get_changes(&[]).into_iter().map(|c| c.hash()))
            .collect();
        let held = crate::signing::held(&b.conn, &b.path, hashes).unwrap();
        assert!(held.iter().all(|s| crate::signing::verify(&public, s)));
    }
}
