//! The device ↔ bureau protocol. Both sides use these types, so they cannot drift apart.
//!
//! ## Transport
//! - `POST /v1/enroll`: JSON [`EnrollRequest`] → JSON [`EnrollResponse`]. No token.
//! - `POST /v1/sync`: `Authorization: Bearer <token>`, `Content-Type:` [`SYNC_CONTENT_TYPE`],
//!   `Content-Encoding: zstd`; the body is zstd(postcard([`SyncRequest`])), the answer
//!   zstd(postcard([`SyncResponse`])) with the same headers.
//! - `GET /healthz` → `ok`.
//! - Every refusal is an HTTP error status with a JSON body [`ErrorBody`], whose `reason` is
//!   a stable [`Refusal`] key. A refused request changes nothing on the bureau.
//! - Unknown fields: the JSON bodies ([`EnrollRequest`], [`EnrollResponse`], [`ErrorBody`])
//!   tolerate fields they do not know, so either side may add one without breaking the
//!   other. The postcard bodies have no field names: any change to them is a new
//!   [`PROTOCOL_VERSION`], which the bureau refuses with `unsupported_protocol`.
//!
//! ## One round
//! 1. The device sends its cursor (the highest bureau sequence number it has received) and,
//!    for each document it changed since its last sync, the changes the bureau lacks: it
//!    knows them because it remembers the bureau's heads of each document.
//! 2. The bureau applies them atomically. Changes are content-addressed, so a resent change
//!    is recognised and ignored: a retried round is harmless.
//! 3. The bureau answers with its heads of every document the request carried or the answer
//!    carries, and with the changes after the cursor in the documents this device may see
//!    (not those this device sent), at most `max_changes` of them; `more` says another round
//!    would bring more. The device stores what it received and the new cursor, so a later
//!    failure never costs a completed round.
//!
//! An idle device sends its cursor and an empty list, and gets an empty list back.

use serde::{Deserialize, Serialize};

pub const PROTOCOL_VERSION: u16 = 1;
pub const SYNC_CONTENT_TYPE: &str = "application/x-fieldlog-sync";
/// The bureau refuses a compressed body larger than this…
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// …or one that inflates beyond this.
pub const MAX_INFLATED_BYTES: usize = 32 * 1024 * 1024;
/// The most changes one request may carry; a device with more sends several rounds.
pub const MAX_CHANGES_PER_REQUEST: usize = 2_000;

/// A 32-byte Automerge change hash.
pub type Hash = [u8; 32];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub protocol: u16,
    pub cursor: u64,
    pub docs: Vec<DocChanges>,
    /// The most changes the device takes back in this round.
    pub max_changes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocChanges {
    pub doc_id: String,
    /// Changes in Automerge's change encoding, in an order that applies cleanly.
    pub changes: Vec<serde_bytes::ByteBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocHeads {
    pub doc_id: String,
    pub heads: Vec<Hash>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    /// How many of the request's changes were new to the bureau.
    pub accepted: u32,
    /// The bureau's heads of every document in the request or in `changes`.
    pub heads: Vec<DocHeads>,
    pub changes: Vec<DocChanges>,
    /// The cursor to send next time.
    pub cursor: u64,
    /// Whether more changes wait after `cursor`.
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The one-time code a coordinator issued.
    pub code: String,
    pub device_name: String,
    /// The Automerge actor ids (hex) this device signs its changes with.
    pub actors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// 256 random bits, hex. The bureau keeps only its hash; it is shown once.
    pub token: String,
    pub device_id: String,
    pub team: String,
    pub member: String,
    pub role: crate::Role,
    /// The districts whose registries this device receives.
    pub districts: Vec<String>,
}

/// Why the bureau refused a request. The key is stable; the message is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// No token, or one the bureau does not know.
    Unauthenticated,
    /// The device was revoked by a coordinator.
    Revoked,
    /// The enrollment code is unknown, used or expired.
    BadCode,
    /// A change is signed by an actor that is not this device's.
    ForgedActor,
    /// A document outside this device's team or region.
    OutOfScope,
    /// A volunteer device edited a registered school or registered one.
    RegistryEdit,
    /// The body is larger than the limit, before or after decompression.
    TooLarge,
    /// More changes than one request may carry.
    TooManyChanges,
    /// The body, a change or a document id does not decode.
    Malformed,
    /// The device speaks a protocol version the bureau does not.
    UnsupportedProtocol,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub reason: Refusal,
    pub message: String,
}
