//! The secret of a key: `agpt_` and 32 random bytes, url-safe. It is shown
//! once and kept only as a slow salted hash (argon2id), a short fast digest
//! to find it by, and its first and last characters for display.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64ct::{Base64UrlUnpadded, Encoding};
use domain::api_key::StoredSecret;
use sha2::{Digest, Sha256};

/// What every key starts with.
pub const PREFIX: &str = "agpt_";
/// The longest header value worth looking at: a key is 48 characters.
const MAX_KEY_LEN: usize = 128;

/// Memory (KiB), passes and lanes of the hash. Small, so tests and key
/// creation stay fast, but real argon2id: the secret carries 256 random
/// bits, so the hash guards against a leaked log, not a guessable password.
/// Verification reads the parameters from the stored hash, so raising them
/// later leaves existing keys working.
const MEMORY_KIB: u32 = 4096;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// A key's plain text, never logged: `Debug` hides it.
pub struct PlainKey(String);

impl PlainKey {
    /// The text, to show its owner once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The text, moved out to be shown once.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for PlainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlainKey(..)")
    }
}

fn hasher() -> Argon2<'static> {
    // The constants are within argon2's bounds; fall back to its defaults otherwise.
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A new key and what is kept of it. CPU-heavy (the hash): call it off the
/// async workers.
pub fn generate() -> Result<(PlainKey, StoredSecret), argon2::password_hash::Error> {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let plain = format!("{PREFIX}{}", Base64UrlUnpadded::encode_string(&bytes));
    let salt = SaltString::generate(&mut OsRng);
    let hash = hasher().hash_password(plain.as_bytes(), &salt)?.to_string();
    let chars: Vec<char> = plain.chars().collect();
    let head: String = chars[..8].iter().collect();
    let tail: String = chars[chars.len() - 8..].iter().collect();
    let stored = StoredSecret { hash, lookup: lookup(&plain), head, tail };
    Ok((PlainKey(plain), stored))
}

/// Whether a presented value can be a key at all (checked before any lookup).
pub fn well_formed(presented: &str) -> bool {
    presented.starts_with(PREFIX) && presented.len() <= MAX_KEY_LEN && presented.is_ascii()
}

/// The index a key's record is found by: 64 bits of a SHA-256 of the key.
/// Fast, so a request costs no slow hash to find its candidate; short, so
/// it says nothing that could stand in for the hash (the secret's 256 bits
/// cannot be searched for from it either way).
pub fn lookup(presented: &str) -> String {
    let digest = Sha256::new().chain_update(b"agpt-key-lookup\0").chain_update(presented.as_bytes()).finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A full digest of a presented key: how the in-memory cache remembers a
/// key that verified, without holding the key itself.
pub fn fingerprint(presented: &str) -> [u8; 32] {
    Sha256::digest(presented.as_bytes()).into()
}

/// Whether `presented` is the key `phc` hashes. CPU-heavy: call it off the
/// async workers.
pub fn verify(presented: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| hasher().verify_password(presented.as_bytes(), &hash).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_verifies_against_its_hash_only_and_shows_its_ends() {
        let (plain, stored) = generate().unwrap();
        let text = plain.expose();
        assert!(text.starts_with(PREFIX) && text.len() == 48 && well_formed(text));
        assert!(verify(text, &stored.hash));
        assert!(!verify(&format!("{text}x"), &stored.hash));
        assert!(!stored.hash.contains(&text[PREFIX.len()..]));
        assert_eq!(stored.head, text[..8]);
        assert_eq!(stored.tail, text[40..]);
        assert_eq!(stored.lookup, lookup(text));
        assert_eq!(format!("{plain:?}"), "PlainKey(..)");
    }
}
