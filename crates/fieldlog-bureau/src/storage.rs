//! The storage seam ([`fieldlog_bureau_storage`], re-exported here) and the records of the
//! document lifecycle above it ([`crate::documents`]).

pub use fieldlog_bureau_storage::*;

use automerge::{Change, ChangeHash};
use fieldlog_core::DocId;
use fieldlog_domain::sync::ChangeSignature;
use serde::Serialize;

/// One document's changes from a request, decoded.
#[derive(Debug, Clone)]
pub struct IncomingDoc {
    pub doc_id: DocId,
    pub changes: Vec<Change>,
    /// Signatures that came with them, kept with the changes admitted.
    pub signatures: Vec<ChangeSignature>,
    /// The devices (other than the sender) whose signed changes these are; their
    /// signatures were verified before.
    pub authors: Vec<DeviceRecord>,
}

/// A change `purge` removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Purged {
    pub seq: u64,
    pub doc_id: String,
    pub hash: String,
    /// The device that sent it.
    pub device_id: Option<String>,
    pub bytes: usize,
    /// Why: too large itself, or building on a removed change.
    pub reason: PurgeReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PurgeReason {
    TooLarge,
    DependsOnRemoved,
}

#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// How many changes were new and stored.
    pub accepted: usize,
    /// The bureau's heads of each document of the request, after applying.
    pub heads: Vec<(DocId, Vec<ChangeHash>)>,
}

/// Documents sent whole in a first sync ([`crate::Bureau::whole_documents`]).
#[derive(Debug, Clone, Default)]
pub struct WholeDocuments {
    /// The log's newest sequence number when they were read.
    pub last_seq: u64,
    /// Each document with its heads and its bytes.
    pub documents: Vec<(DocId, Vec<ChangeHash>, Vec<u8>)>,
    /// Whether documents in scope remain after the last one.
    pub more: bool,
}

pub use fieldlog_core::registry::ImportSummary;
