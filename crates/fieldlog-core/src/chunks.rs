//! Automerge bytes from elsewhere, checked before Automerge sees them.
//!
//! Automerge 0.12 inflates compressed chunks and compressed columns with no limit, and the
//! copies it makes after inflating cannot fail, so a few hundred crafted bytes could make a
//! process allocate gigabytes and abort. Every change or document that arrives from another
//! device or from the bureau goes through here first:
//!
//! - a change must be one plain change chunk (Fieldlog never sends compressed ones), no
//!   larger than the caller's limit, whose header checksum matches its content
//!   ([`decode_change`]);
//! - a document may be document and change chunks only, and may inflate to no more than the
//!   caller's limit: each compressed column is inflated here with a cap, before Automerge
//!   inflates it ([`load_document`]).
//!
//! Chunk layout (the Automerge binary format): magic `85 6f 4a 83`, a 4-byte checksum, a
//! type byte (0 document, 1 change, 2 compressed change, 3 bundle), the data length as
//! unsigned LEB128, then the data.

use automerge::{Automerge, Change};
use std::io::Read;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
/// The bit of a column specification that marks its data as DEFLATE-compressed.
const DEFLATE_BIT: u32 = 0b1000;

/// Why a change from elsewhere was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Decode(#[from] automerge::LoadChangeError),
    #[error("its checksum does not match its content (damaged on the way?)")]
    Checksum,
    #[error("it is {len} bytes; a change may take at most {max}")]
    TooLarge { len: usize, max: usize },
    #[error("it is not a plain change chunk ({0})")]
    NotAChange(&'static str),
    /// Automerge 0.12 panics on some crafted chunks instead of returning an error.
    #[error("Automerge cannot decode it (it panicked)")]
    Panicked,
}

/// Why a document from elsewhere was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("it inflates beyond {max} bytes")]
    TooLarge { max: usize },
    #[error("it is not an Automerge document ({0})")]
    Malformed(&'static str),
    #[error(transparent)]
    Load(#[from] automerge::AutomergeError),
    #[error("Automerge cannot load it (it panicked)")]
    Panicked,
}

/// Why the changes a sync message carries for one document were not taken.
#[derive(Debug, thiserror::Error)]
pub enum CarriedError {
    #[error("a change: {0}")]
    Change(#[from] ChangeError),
    #[error("the document sent whole: {0}")]
    Document(#[from] DocumentError),
    #[error(
        "the document sent whole holds a change of {len} bytes; a change may take at most {max}"
    )]
    ChangeTooLarge { len: usize, max: usize },
    #[error("the document sent whole holds {count} changes; at most {max} may come at once")]
    TooManyChanges { count: u64, max: usize },
}

impl CarriedError {
    /// Whether the changes were refused for their size (rather than for their form).
    pub fn is_too_large(&self) -> bool {
        match self {
            CarriedError::Change(e) => e.is_too_large(),
            CarriedError::Document(e) => matches!(e, DocumentError::TooLarge { .. }),
            CarriedError::ChangeTooLarge { .. } | CarriedError::TooManyChanges { .. } => true,
        }
    }
}

/// What one message may carry for a document, for [`carried_changes`].
#[derive(Debug, Clone, Copy)]
pub struct CarriedLimits {
    /// Bytes of one change, sent alone or within the document.
    pub change_bytes: usize,
    /// Bytes the document may inflate to.
    pub inflated_bytes: usize,
    /// Changes the document may hold.
    pub document_changes: usize,
}

/// The changes a sync message carries for one document, in an order that applies
/// cleanly: every change of the document if it came whole, then each change sent alone
/// ([`decode_change`]). A document must inflate within the limit ([`load_document`]), and
/// hold no more changes, nor any larger change, than the limits allow.
pub fn carried_changes(
    document: Option<&[u8]>,
    changes: Vec<Vec<u8>>,
    limits: CarriedLimits,
) -> Result<Vec<Change>, CarriedError> {
    let mut out = Vec::new();
    if let Some(bytes) = document {
        let doc = load_document(bytes, limits.inflated_bytes)?;
        let count = automerge::ReadDoc::stats(&doc).num_changes;
        if count > u64::try_from(limits.document_changes).unwrap_or(u64::MAX) {
            return Err(CarriedError::TooManyChanges {
                count,
                max: limits.document_changes,
            });
        }
        out = doc.get_changes(&[]);
        if let Some(len) = out
            .iter()
            .map(|c| c.raw_bytes().len())
            .find(|len| *len > limits.change_bytes)
        {
            return Err(CarriedError::ChangeTooLarge {
                len,
                max: limits.change_bytes,
            });
        }
    }
    for bytes in changes {
        out.push(decode_change(bytes, limits.change_bytes)?);
    }
    Ok(out)
}

impl ChangeError {
    /// Whether the change was refused for its size (rather than for its form).
    pub fn is_too_large(&self) -> bool {
        matches!(self, ChangeError::TooLarge { .. })
    }
}

/// One chunk's type, its whole length (header included) and its data.
struct Chunk<'a> {
    kind: u8,
    len: usize,
    data: &'a [u8],
}

/// Reads the chunk at the start of `bytes`.
fn chunk(bytes: &[u8]) -> Result<Chunk<'_>, &'static str> {
    if bytes.get(..4) != Some(&MAGIC[..]) {
        return Err("no chunk magic");
    }
    let kind = *bytes.get(8).ok_or("truncated chunk header")?;
    let mut rest = &bytes[9..];
    let data_len = uleb(&mut rest).ok_or("bad chunk length")?;
    let header_len = bytes.len() - rest.len();
    let data = usize::try_from(data_len)
        .ok()
        .and_then(|n| rest.get(..n))
        .ok_or("truncated chunk")?;
    Ok(Chunk {
        kind,
        len: header_len + data.len(),
        data,
    })
}

/// Reads an unsigned LEB128 number (at most 64 bits) and advances `input` past it.
fn uleb(input: &mut &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for (i, byte) in input.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        let shift = 7 * i as u32;
        if shift == 63 && bits > 1 {
            return None;
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            *input = &input[i + 1..];
            return Some(value);
        }
    }
    None
}

fn take<'a>(input: &mut &'a [u8], n: u64) -> Option<&'a [u8]> {
    let n = usize::try_from(n).ok()?;
    let (head, tail) = (input.get(..n)?, input.get(n..)?);
    *input = tail;
    Some(head)
}

/// Decodes one change of at most `max_bytes`, refusing compressed chunks (they would be
/// inflated without a limit) and checking the checksum in the header, which
/// `Change::from_bytes` does not: a damaged change would otherwise be taken under another
/// hash, and its sequence number would then block its author's real change for good.
pub fn decode_change(bytes: Vec<u8>, max_bytes: usize) -> Result<Change, ChangeError> {
    if bytes.len() > max_bytes {
        return Err(ChangeError::TooLarge {
            len: bytes.len(),
            max: max_bytes,
        });
    }
    let chunk = chunk(&bytes).map_err(ChangeError::NotAChange)?;
    match chunk.kind {
        CHANGE => {}
        2 => return Err(ChangeError::NotAChange("compressed changes are not taken")),
        _ => return Err(ChangeError::NotAChange("another kind of chunk")),
    }
    if chunk.len != bytes.len() {
        return Err(ChangeError::NotAChange("bytes after the chunk"));
    }
    // Automerge 0.12 panics on some crafted changes (found by fuzzing: an `unwrap` while
    // verifying ops); one bad change must not take the bureau or the app down.
    let change = std::panic::catch_unwind(|| Change::from_bytes(bytes))
        .map_err(|_| ChangeError::Panicked)??;
    if change.raw_bytes().get(4..8) != Some(&change.hash().0[..4]) {
        return Err(ChangeError::Checksum);
    }
    Ok(change)
}

/// Loads a document that inflates to at most `max_inflated` bytes: the limit is checked on
/// every chunk before Automerge inflates anything.
pub fn load_document(bytes: &[u8], max_inflated: usize) -> Result<Automerge, DocumentError> {
    inflated_size(bytes, max_inflated)?;
    // As in `decode_change`: a panic inside Automerge is a refusal.
    Ok(std::panic::catch_unwind(|| Automerge::load(bytes))
        .map_err(|_| DocumentError::Panicked)??)
}

/// What `bytes` (document and change chunks) inflate to; refuses past `max`.
fn inflated_size(mut bytes: &[u8], max: usize) -> Result<usize, DocumentError> {
    let mut total = 0usize;
    while !bytes.is_empty() {
        let chunk = chunk(bytes).map_err(DocumentError::Malformed)?;
        let size = match chunk.kind {
            CHANGE => chunk.len,
            DOCUMENT => {
                let budget = max.saturating_sub(total);
                chunk.len - chunk.data.len() + document_data_size(chunk.data, budget)?
            }
            _ => return Err(DocumentError::Malformed("a compressed or bundle chunk")),
        };
        total = total.saturating_add(size);
        if total > max {
            return Err(DocumentError::TooLarge { max });
        }
        bytes = &bytes[chunk.len..];
    }
    Ok(total)
}

/// The inflated size of a document chunk's data: its prefix (actors, heads and column
/// metadata), each column (inflated, with a cap, where compressed) and what follows.
fn document_data_size(data: &[u8], budget: usize) -> Result<usize, DocumentError> {
    let bad = DocumentError::Malformed;
    let mut i = data;
    let actors = uleb(&mut i).ok_or(bad("actor count"))?;
    for _ in 0..actors {
        let len = uleb(&mut i).ok_or(bad("actor length"))?;
        take(&mut i, len).ok_or(bad("truncated actor"))?;
    }
    let heads = uleb(&mut i).ok_or(bad("head count"))?;
    take(&mut i, heads.saturating_mul(32)).ok_or(bad("truncated heads"))?;
    let mut columns = Vec::new();
    for _ in 0..2 {
        let count = uleb(&mut i).ok_or(bad("column count"))?;
        for _ in 0..count {
            let spec = uleb(&mut i).ok_or(bad("column spec"))?;
            let len = uleb(&mut i).ok_or(bad("column length"))?;
            columns.push((spec, len));
        }
    }
    let mut size = data.len() - i.len();
    for (spec, len) in columns {
        let column = take(&mut i, len).ok_or(bad("truncated column"))?;
        size = size.saturating_add(if spec & u64::from(DEFLATE_BIT) != 0 {
            inflate_len(column, budget.saturating_sub(size))?
        } else {
            column.len()
        });
        if size > budget {
            return Err(DocumentError::TooLarge { max: budget });
        }
    }
    Ok(size.saturating_add(i.len()))
}

/// How many bytes a DEFLATE stream inflates to, reading no further than `cap + 1`.
fn inflate_len(column: &[u8], cap: usize) -> Result<usize, DocumentError> {
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    let n = std::io::copy(
        &mut flate2::bufread::DeflateDecoder::new(column).take(limit),
        &mut std::io::sink(),
    )
    .map_err(|_| DocumentError::Malformed("a compressed column does not inflate"))?;
    usize::try_from(n).map_err(|_| DocumentError::TooLarge { max: cap })
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    fn big_change() -> Change {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "note", "x".repeat(64 * 1024)).unwrap();
        doc.get_last_local_change().unwrap().clone()
    }

    /// Found by the `bureau_admit` fuzz target: a bundle chunk (kind 3) that makes
    /// `Change::from_bytes` panic inside Automerge. The kind is checked first, so it never
    /// reaches Automerge.
    #[test]
    fn a_bundle_chunk_that_panics_automerge_is_refused_unread() {
        let bytes = include_bytes!("testdata/bundle-chunk-panics-automerge.bin").to_vec();
        let panics = std::panic::catch_unwind(|| Change::from_bytes(bytes.clone()));
        assert!(panics.is_err(), "Automerge 0.12 panics on this chunk");
        assert!(matches!(
            decode_change(bytes.clone(), 1 << 20),
            Err(ChangeError::NotAChange(_))
        ));
        assert!(matches!(
            load_document(&bytes, 1 << 20),
            Err(DocumentError::Malformed(_))
        ));
    }

    /// Found by the `bureau_admit` fuzz target: a plain change chunk on which
    /// `Change::from_bytes` panics (automerge `types.rs`, an `unwrap` of a `TryFromIntError`).
    #[test]
    fn a_change_that_panics_automerge_is_refused() {
        let bytes = include_bytes!("testdata/change-chunk-panics-automerge.bin").to_vec();
        assert_eq!(bytes[8], CHANGE, "a plain change chunk");
        let panics = std::panic::catch_unwind(|| Change::from_bytes(bytes.clone()));
        assert!(panics.is_err(), "Automerge 0.12 panics on this chunk");
        assert!(matches!(
            decode_change(bytes.clone(), 1 << 20),
            Err(ChangeError::Panicked)
        ));
        assert!(load_document(&bytes, 1 << 20).is_err());
    }

    #[test]
    fn a_compressed_change_is_refused_before_it_is_inflated() {
        let mut change = big_change();
        let compressed = change.bytes().to_vec();
        assert_eq!(compressed[8], 2, "automerge compresses a change this large");
        assert!(compressed.len() < 1024);
        assert!(matches!(
            decode_change(compressed, 1 << 20),
            Err(ChangeError::NotAChange(_))
        ));
        let plain = change.raw_bytes().to_vec();
        assert!(decode_change(plain.clone(), 1 << 20).is_ok());
        assert!(decode_change(plain, 1024).unwrap_err().is_too_large());
    }

    #[test]
    fn a_change_damaged_anywhere_is_refused() {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "topic", "水的三态").unwrap();
        let bytes = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
        assert!(decode_change(bytes.clone(), 1 << 20).is_ok());
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x01;
            assert!(decode_change(damaged, 1 << 20).is_err(), "damaged at {at}");
        }
    }

    #[test]
    fn trailing_bytes_after_a_change_are_refused() {
        let mut bytes = big_change().raw_bytes().to_vec();
        bytes.push(0);
        assert!(matches!(
            decode_change(bytes, 1 << 20),
            Err(ChangeError::NotAChange(_))
        ));
    }

    #[test]
    fn a_document_is_measured_inflated_before_it_is_loaded() {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "note", "x".repeat(256 * 1024)).unwrap();
        let saved = doc.save();
        assert!(saved.len() < 4096, "the column is compressed");
        let size = inflated_size(&saved, usize::MAX).unwrap();
        assert!(size > 256 * 1024, "{size}");
        assert!(load_document(&saved, size).is_ok());
        assert!(matches!(
            load_document(&saved, 64 * 1024),
            Err(DocumentError::TooLarge { .. })
        ));
        // Uncompressed, it measures the same.
        let plain = doc.save_nocompress();
        assert_eq!(inflated_size(&plain, usize::MAX).unwrap(), plain.len());
    }

    #[test]
    fn a_document_holding_a_compressed_change_chunk_is_refused() {
        let bytes = big_change().bytes().to_vec();
        assert!(matches!(
            load_document(&bytes, usize::MAX),
            Err(DocumentError::Malformed(_))
        ));
    }

    #[test]
    fn truncated_documents_are_refused_never_panic() {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "note", "南山小学".repeat(100)).unwrap();
        let saved = doc.save();
        for cut in 1..saved.len() {
            assert!(
                load_document(&saved[..cut], 1 << 20).is_err(),
                "cut at {cut}"
            );
        }
    }
}
