//! Change signatures: proof of who wrote a change, so any teammate can carry it.
//!
//! Each device holds an ed25519 key (made when the store is created, or on first open of an
//! older store) and registers its public key with the bureau. Every change the device
//! authors is signed over its hash, and the signature travels with the change: in bundles,
//! in sync requests and in the bureau's answers. A device that imported a teammate's bundle
//! sends the teammate's signed changes along with its own; the bureau takes them when the
//! signature verifies under the key of the device that owns the change's actor. A device
//! never sends another device's change it holds no signature for.

use crate::error::{DbContext, Result};
use automerge::ChangeHash;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use fieldlog_domain::sync::{ChangeSignature, PublicKey};
use rusqlite::OptionalExtension;

/// What is signed: this context, then the 32-byte change hash.
const CONTEXT: &[u8] = b"fieldlog change signature v1\0";

fn message(hash: &ChangeHash) -> Vec<u8> {
    [CONTEXT, &hash.0[..]].concat()
}

/// A fresh key from the operating system's randomness.
pub fn new_key() -> SigningKey {
    SigningKey::from_bytes(&rand::random::<[u8; 32]>())
}

/// The key stored as 32 secret bytes; `None` when the bytes are not a key.
pub fn key_from_bytes(bytes: &[u8]) -> Option<SigningKey> {
    Some(SigningKey::from_bytes(bytes.try_into().ok()?))
}

pub fn public_key(key: &SigningKey) -> PublicKey {
    key.verifying_key().to_bytes()
}

pub fn sign(key: &SigningKey, hash: &ChangeHash) -> ChangeSignature {
    ChangeSignature {
        hash: hash.0,
        signature: key.sign(&message(hash)).to_bytes().to_vec().into(),
    }
}

/// Whether `signature` is `public`'s signature of its change hash.
pub fn verify(public: &PublicKey, signature: &ChangeSignature) -> bool {
    let (Ok(key), Ok(sig)) = (
        VerifyingKey::from_bytes(public),
        Signature::from_slice(&signature.signature),
    ) else {
        return false;
    };
    key.verify_strict(&message(&ChangeHash(signature.hash)), &sig)
        .is_ok()
}

/// Keeps signatures (a repeated one is ignored).
pub(crate) fn store(
    conn: &rusqlite::Connection,
    path: &std::path::Path,
    signatures: &[ChangeSignature],
) -> Result<()> {
    let mut insert = conn
        .prepare_cached("INSERT OR IGNORE INTO change_signatures (hash, signature) VALUES (?1, ?2)")
        .db(path)?;
    for signed in signatures {
        insert
            .execute(rusqlite::params![&signed.hash[..], &signed.signature[..]])
            .db(path)?;
    }
    Ok(())
}

/// The signatures held for these changes (those without one are left out).
pub(crate) fn held(
    conn: &rusqlite::Connection,
    path: &std::path::Path,
    hashes: impl IntoIterator<Item = ChangeHash>,
) -> Result<Vec<ChangeSignature>> {
    let mut select = conn
        .prepare_cached("SELECT signature FROM change_signatures WHERE hash = ?1")
        .db(path)?;
    let mut out = Vec::new();
    for hash in hashes {
        let signature: Option<Vec<u8>> = select
            .query_row([&hash.0[..]], |r| r.get(0))
            .optional()
            .db(path)?;
        if let Some(signature) = signature {
            out.push(ChangeSignature {
                hash: hash.0,
                signature: signature.into(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_key_and_hash() {
        let (key, other) = (new_key(), new_key());
        let hash = ChangeHash([7; 32]);
        let signed = sign(&key, &hash);
        assert!(verify(&public_key(&key), &signed));
        assert!(!verify(&public_key(&other), &signed));
        let mut moved = signed.clone();
        moved.hash[0] ^= 1;
        assert!(!verify(&public_key(&key), &moved));
        let mut cut = signed;
        cut.signature.truncate(63);
        assert!(!verify(&public_key(&key), &cut));
        let restored = key_from_bytes(&key.to_bytes()).unwrap();
        assert_eq!(public_key(&restored), public_key(&key));
    }
}
