//! The device ↔ bureau protocol. Both sides use these types, so they cannot drift apart.
//!
//! ## Transport
//! - `POST /v1/enroll`: JSON [`EnrollRequest`] → JSON [`EnrollResponse`]. No token.
//! - `POST /v1/sync`: `Authorization: Bearer <token>`, `Content-Type:` [`SYNC_CONTENT_TYPE`],
//!   `Content-Encoding: zstd`; the body is zstd(postcard([`SyncRequest`])), the answer
//!   zstd(postcard([`SyncResponse`])) with the same headers.
//! - `GET /v1/members` (bearer token) → JSON [`MembersResponse`]: the members the bureau
//!   enrolled (with a device not revoked) of the device's team, or for a coordinator of the
//!   teams of its region. Pairings name them; the pairing rate counts them.
//! - `GET /healthz` → `ok`.
//! - Every refusal is an HTTP error status with a JSON body [`ErrorBody`], whose `reason` is
//!   a stable [`Refusal`] key. A refused request changes nothing on the bureau.
//! - Unknown fields: the JSON bodies ([`EnrollRequest`], [`EnrollResponse`], [`ErrorBody`])
//!   tolerate fields they do not know, so either side may add one without breaking the
//!   other. The postcard bodies have no field names: any change to them is a new
//!   [`PROTOCOL_VERSION`], which the bureau refuses with `unsupported_protocol`.
//! - Limits on the connection: headers must arrive within a few seconds, a body may not
//!   pause long nor take longer than a device's round (`too_slow`, `408`, then the
//!   connection closes), a device (and, for enrollment, a network address) has a request
//!   rate (`rate_limited`, `429`), and a bureau at its connection limit answers `busy`
//!   (`503`). Both carry `Retry-After` (seconds). These three are "try again later"
//!   ([`Refusal::is_temporary`]): the device keeps its records and backs off.
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
//!
//! A first sync (cursor 0) may ask not to page through the log, by sending an empty
//! [`SyncRequest::resume`]: the bureau notes the log's newest sequence number as the
//! cursor and answers the documents the device may see, whole and in document order
//! ([`DocChanges::document`]), as many as fit an answer; while some remain,
//! [`SyncResponse::resume`] names the last one sent, and the next request carries it back
//! with that cursor. Then rounds go on from the cursor as above (changes made during the
//! delivery may come twice; a change is taken once).
//!
//! ## Signatures and relays
//! Each device signs the changes it authors with an ed25519 key whose public half it
//! registers at enrollment ([`EnrollRequest::signing_key`], or the first request that
//! carries [`SyncRequest::signing_key`]). [`DocChanges::signatures`] carries the signatures
//! of the teammates' changes it carries (its own need none, and a device never passes on a
//! signature of a change the bureau sent it: the bureau holds that change already, so a
//! carrier of it is never asked for one). A device sends its own changes and, when it holds
//! their signatures, changes of teammates it received by bundle: the bureau takes a change
//! from a device that is not its author when the signature verifies under the author
//! device's key and the author (not revoked) could have sent it itself; a change of another
//! device with no signature is refused (`forged_actor`). A correctly signed change the
//! bureau cannot take yet (its author unknown, revoked or out of scope) is left out, like a
//! change whose dependencies are missing, so it never blocks the carrier's own changes.
//!
//! ## Limits
//! A change a device sends is a plain (uncompressed) Automerge change chunk of at most
//! [`MAX_CHANGE_BYTES`] (`too_large`). A document sent whole ([`DocChanges::document`])
//! may inflate to at most [`MAX_INFLATED_BYTES`] and hold changes of that size each, at
//! most [`MAX_DOCUMENT_CHANGES`] in one request; its changes pass the same checks as sent
//! ones (authorship, signatures, scope, the registry rule). An answer carries changes up to
//! [`MAX_PASSED_CHANGE_BYTES`] each; a stored change larger than that is skipped (the cursor
//! moves past it), so one oversized change can never stop a device from syncing.
//!
//! ## Photo files (blobs)
//! After the records of a sync, the device uploads the photo files the bureau lacks,
//! thumbnails first, then display copies. A blob is named by the sha256 (lower-case hex) of
//! its bytes. The scheme follows tus 1.0's core protocol, with the length known in advance:
//!
//! - `HEAD /v1/blobs/<sha256>` (bearer token) → `204` with [`UPLOAD_OFFSET`]: how many bytes
//!   of this device's upload the bureau holds (the full length once any device completed
//!   the blob) and [`UPLOAD_LENGTH`]. Each device uploads into its own partial file, so no
//!   other device can add to it or hold it up; the first to complete the blob makes it
//!   available to all. A partial file left untouched for weeks may be dropped: the device
//!   then starts that file again from 0.
//! - `PATCH /v1/blobs/<sha256>` (bearer token), `Content-Type:` [`BLOB_CONTENT_TYPE`],
//!   [`UPLOAD_OFFSET`] (where the body starts) and [`UPLOAD_LENGTH`] (the whole blob); the body
//!   is the rest of the file. The bureau appends what arrives as it arrives, so a cut
//!   connection keeps every byte that got through; the answer is `204` with the new
//!   [`UPLOAD_OFFSET`]. An offset other than the one held is refused with `offset_mismatch`
//!   (`409`, carrying the held offset): the device asks again and resumes there. A body
//!   that pauses too long or takes too long is cut; the bytes that arrived are kept.
//! - When the last byte arrives the bureau checks the sha256; a mismatch discards the bytes
//!   (`checksum_mismatch`), a match makes the blob available.
//! - `GET /v1/blobs/<sha256>` (bearer token) → the bytes.
//!
//! A device may upload or fetch a blob only if a visit in its scope, already at the bureau,
//! refers to it (so records go first), and only with the length that visit records
//! (`unknown_blob` otherwise, `404`, which also hides whether the blob exists).
//! Uploading a blob the bureau holds is a `HEAD` and nothing more.

use serde::{Deserialize, Serialize};

/// 2: change signatures ([`DocChanges::signatures`], [`SyncRequest::signing_key`]).
/// 3: a whole document instead of its changes ([`DocChanges::document`]); signatures only
/// of changes the sender did not author.
pub const PROTOCOL_VERSION: u16 = 3;
pub const SYNC_CONTENT_TYPE: &str = "application/x-fieldlog-sync";
/// The bureau refuses a compressed body larger than this…
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// …or one that inflates beyond this.
pub const MAX_INFLATED_BYTES: usize = 32 * 1024 * 1024;
/// The most changes one request may carry; a device with more sends several rounds.
pub const MAX_CHANGES_PER_REQUEST: usize = 2_000;
/// The most changes the documents of one request may hold ([`DocChanges::document`]).
pub const MAX_DOCUMENT_CHANGES: usize = 100_000;
/// The largest change a device may send. A visit with every text field full and a dozen
/// photo records is under 64 KiB; a device refuses to write a larger change.
pub const MAX_CHANGE_BYTES: usize = 256 * 1024;
/// The largest change anyone passes on (answers, bundles): the bureau's own registry
/// imports may exceed [`MAX_CHANGE_BYTES`]. The bureau never sends a larger one.
pub const MAX_PASSED_CHANGE_BYTES: usize = 4 * 1024 * 1024;

/// Header: bytes of a blob the bureau holds, or where a `PATCH` body starts.
pub const UPLOAD_OFFSET: &str = "Upload-Offset";
/// Header: the whole length of a blob.
pub const UPLOAD_LENGTH: &str = "Upload-Length";
/// The content type of a `PATCH` body.
pub const BLOB_CONTENT_TYPE: &str = "application/offset+octet-stream";
/// The largest blob the bureau takes (a display copy is well under 1 MB).
pub const MAX_BLOB_BYTES: u64 = 16 * 1024 * 1024;

/// The path of a blob's endpoint.
pub fn blob_path(sha256: &str) -> String {
    format!("/v1/blobs/{sha256}")
}

/// Whether `text` is a lower-case hex sha256, the only form blob names take.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A 32-byte Automerge change hash.
pub type Hash = [u8; 32];
/// A device's ed25519 public key.
pub type PublicKey = [u8; 32];

/// A device's ed25519 signature (64 bytes) of one change's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSignature {
    pub hash: Hash,
    pub signature: serde_bytes::ByteBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub protocol: u16,
    pub cursor: u64,
    pub docs: Vec<DocChanges>,
    /// The most changes the device takes back in this round.
    pub max_changes: u32,
    /// The device's signing key, registered if the bureau has none for it yet (a device
    /// enrolled before signatures existed).
    pub signing_key: Option<PublicKey>,
    /// A first sync asks for whole documents with `Some("")`, then carries back where
    /// their delivery goes on ([`SyncResponse::resume`]).
    pub resume: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocChanges {
    pub doc_id: String,
    /// Changes in Automerge's change encoding, in an order that applies cleanly.
    pub changes: Vec<serde_bytes::ByteBuf>,
    /// Or the whole document in Automerge's compressed document encoding, when the
    /// receiver holds none (or little) of it: every change it holds is taken as if sent in
    /// `changes`, at a fraction of the bytes (one table of actors, no per-change hashes,
    /// columns compressed together).
    pub document: Option<serde_bytes::ByteBuf>,
    /// Their authors' signatures, of the changes the sender did not author itself (its own
    /// need none: its token says who sent them).
    pub signatures: Vec<ChangeSignature>,
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
    /// A first sync (cursor 0) receives the documents it may see whole rather than their
    /// changes one by one, in rounds: this names the last document sent while others
    /// remain, and the device sends it back with the cursor this answer gave.
    pub resume: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The one-time code a coordinator issued.
    pub code: String,
    pub device_name: String,
    /// The Automerge actor ids (hex) this device signs its changes with.
    pub actors: Vec<String>,
    /// The device's ed25519 public key (hex), which its change signatures verify under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
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

/// The path of the members endpoint.
pub const MEMBERS_PATH: &str = "/v1/members";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersResponse {
    pub members: Vec<crate::EnrolledMember>,
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
    /// A change is by an actor that is not this device's, and carries no valid signature
    /// of its author's device.
    ForgedActor,
    /// A document outside this device's team or region.
    OutOfScope,
    /// A volunteer device edited a registered school or registered one.
    RegistryEdit,
    /// A review decision or a target from a device that is not a coordinator's of the
    /// region the decision is about.
    NotCoordinator,
    /// The body is larger than the limit, before or after decompression.
    TooLarge,
    /// More changes than one request may carry.
    TooManyChanges,
    /// The body, a change or a document id does not decode.
    Malformed,
    /// The device speaks a protocol version the bureau does not.
    UnsupportedProtocol,
    /// No visit this device may see refers to this blob with this length.
    UnknownBlob,
    /// An upload started at an offset other than the one the bureau holds.
    OffsetMismatch,
    /// A completed blob's bytes do not hash to its name; they were discarded.
    ChecksumMismatch,
    /// This device (or, for enrollment, this network address) sent too many requests;
    /// `429` with `Retry-After`. Try again later.
    RateLimited,
    /// The bureau has as many connections open as it can serve; `503` with `Retry-After`.
    /// Try again later.
    Busy,
    /// The body arrived too slowly and was cut; `408`. What arrived of a photo file is kept.
    TooSlow,
}

impl Refusal {
    /// Whether the refusal says "not now" rather than "not this": the request may succeed
    /// unchanged later, so a device backs off and tries again as after a network failure.
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            Refusal::RateLimited | Refusal::Busy | Refusal::TooSlow
        )
    }

    /// What the refusal means for the person holding the device, and what to do.
    pub fn explain(self, lang: crate::Lang) -> &'static str {
        use crate::Lang::{En, ZhCn};
        match (self, lang) {
            (Refusal::Unauthenticated, ZhCn) => "本设备的凭证无效，请向协调员索取邀请码重新加入",
            (Refusal::Unauthenticated, En) => {
                "this device's token is not valid; ask a coordinator for a new code"
            }
            (Refusal::Revoked, ZhCn) => "本设备已被协调员停用，请向协调员索取邀请码重新加入",
            (Refusal::Revoked, En) => "a coordinator revoked this device; enroll it again",
            (Refusal::BadCode, ZhCn) => "邀请码无效、已使用或已过期",
            (Refusal::BadCode, En) => "the code is unknown, used or expired",
            (Refusal::ForgedActor, ZhCn) => "有修改既不是本设备所作，也没有作者设备的签名",
            (Refusal::ForgedActor, En) => {
                "a change is neither this device's nor signed by the device that made it"
            }
            (Refusal::OutOfScope, ZhCn) => "记录不属于本设备的团队或地区",
            (Refusal::OutOfScope, En) => "a record outside this device's team or region",
            (Refusal::RegistryEdit, ZhCn) => "志愿者不能修改已登记的学校，请联系协调员",
            (Refusal::RegistryEdit, En) => {
                "volunteers may not change registered schools; ask a coordinator"
            }
            (Refusal::NotCoordinator, ZhCn) => "只有本地区的协调员设备可以做审核决定和设定目标",
            (Refusal::NotCoordinator, En) => {
                "only a coordinator device of the region may make review decisions and set targets"
            }
            (Refusal::TooLarge, ZhCn) => "发送的数据超过上限",
            (Refusal::TooLarge, En) => "the data sent is over the limit",
            (Refusal::TooManyChanges, ZhCn) => "一次发送的修改过多",
            (Refusal::TooManyChanges, En) => "too many changes in one request",
            (Refusal::Malformed, ZhCn) => "发送的数据无法识别",
            (Refusal::Malformed, En) => "the data sent does not decode",
            (Refusal::UnsupportedProtocol, ZhCn) => "本软件版本与科协平台不兼容，请更新",
            (Refusal::UnsupportedProtocol, En) => {
                "this version does not match the bureau's; update it"
            }
            (Refusal::UnknownBlob, ZhCn) => "科协平台没有可供本设备访问的这张照片",
            (Refusal::UnknownBlob, En) => "no visit this device may see shows this photo",
            (Refusal::OffsetMismatch, ZhCn) => "照片上传位置不一致，请再同步一次",
            (Refusal::OffsetMismatch, En) => "the upload lost its place; sync again",
            (Refusal::ChecksumMismatch, ZhCn) => "照片文件在传输中损坏，请再同步一次",
            (Refusal::ChecksumMismatch, En) => "the photo file arrived damaged; sync again",
            (Refusal::RateLimited, ZhCn) => {
                "本设备的请求过于频繁，科协平台暂时不接收，稍后会自动再同步"
            }
            (Refusal::RateLimited, En) => {
                "this device sent too many requests; it syncs again by itself in a while"
            }
            (Refusal::Busy, ZhCn) => "科协平台正忙，记录已保存在本机，稍后会自动再同步",
            (Refusal::Busy, En) => {
                "the bureau is busy; records are saved here and sync again in a while"
            }
            (Refusal::TooSlow, ZhCn) => "网络太慢，传输被中断，记录已保存在本机，信号好时会再同步",
            (Refusal::TooSlow, En) => {
                "the connection was too slow and was cut; records are saved here and sync again later"
            }
        }
    }
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
