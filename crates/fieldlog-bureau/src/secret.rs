//! Enrollment codes and device tokens. The bureau keeps only their sha256.

use rand::Rng;

/// Code characters: no `0`/`O` and no `1`/`I`, so a code read aloud or off paper is
/// typed right.
const CODE_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// 10 characters of 5 bits: 50 bits, for a single-use code that expires.
const CODE_LEN: usize = 10;

pub use fieldlog_bureau_storage::SecretHash;

/// A fresh enrollment code.
pub(crate) fn new_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_LEN)
        .map(|_| char::from(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())]))
        .collect()
}

/// A fresh device token: 256 random bits, hex.
pub(crate) fn new_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_unambiguous_alphabet() {
        for _ in 0..100 {
            let code = new_code();
            assert_eq!(code.len(), CODE_LEN);
            assert!(
                code.chars().all(|c| !"0O1I".contains(c)),
                "{code} has an ambiguous character"
            );
        }
    }

    #[test]
    fn a_code_matches_however_it_is_typed() {
        assert_eq!(
            SecretHash::of_code("abcde-fghjk"),
            SecretHash::of_code(" ABCDE FGHJK ")
        );
        assert_ne!(
            SecretHash::of_code("ABCDEFGHJK"),
            SecretHash::of_code("ABCDEFGHJM")
        );
    }

    #[test]
    fn tokens_are_256_bits_of_hex() {
        let token = new_token();
        assert_eq!(token.len(), 64);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(token, new_token());
    }
}
