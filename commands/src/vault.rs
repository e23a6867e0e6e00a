//! Sealing credentials: every credential gets a data key of its own,
//! AES-256-GCM, and its secret is sealed under that key; the data key is
//! stored (wrapped by the master key) outside the log, in
//! `credential_keys`. Deleting the row destroys the only way to open what
//! the log keeps. Master keys have ids, recorded with each wrapped key, so
//! a new master key can be introduced while old ones still open what they
//! wrapped (`ENCRYPTION_KEY`, `ENCRYPTION_OLD_KEYS`), and `rewrap` moves
//! every data key under the current one.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use domain::credential::SealedSecret;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

/// The cipher named in every sealed secret.
pub const ALG: &str = "A256GCM";

/// Why sealing or opening failed. Never answered with an empty secret.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The credential's data key was destroyed (the credential was deleted).
    #[error("the credential's key was destroyed; its secret cannot be read")]
    Shredded,
    /// The data key was wrapped by a master key this process does not have.
    #[error("the credential's key is wrapped by master key {0}, which is not configured (ENCRYPTION_KEY / ENCRYPTION_OLD_KEYS)")]
    UnknownMasterKey(String),
    /// Sealing failed (AES-GCM refuses only inputs beyond 64 GiB): nothing
    /// is stored rather than an empty ciphertext.
    #[error("the secret could not be encrypted")]
    Encrypt,
    /// The ciphertext or its key did not authenticate.
    #[error("the credential could not be decrypted: it was altered or sealed under another key")]
    Decrypt,
    /// A configured master key is not 32 bytes in base64 or hex.
    #[error("invalid master key: {0}")]
    BadKey(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A master key and its id (the start of its SHA-256). `Debug` shows the
/// id only.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    key: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl MasterKey {
    /// A key from 32 bytes.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let id = eventlog::seal::hex(&Sha256::digest(key)[..8]);
        Self { id, key }
    }

    /// A key from its text: base64 (standard or URL-safe, as a Fernet key
    /// is written) or hex of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, VaultError> {
        let text = text.trim();
        // 64 hex digits are also valid base64 (of 48 bytes): hex first.
        let bytes = hex_bytes(text)
            .filter(|b| b.len() == 32)
            .or_else(|| STANDARD.decode(text).or_else(|_| URL_SAFE.decode(text)).ok())
            .ok_or_else(|| VaultError::BadKey("not base64 or hex".into()))?;
        let key: [u8; 32] =
            bytes.try_into().map_err(|b: Vec<u8>| VaultError::BadKey(format!("{} bytes, not 32", b.len())))?;
        Ok(Self::from_bytes(key))
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The bytes a string of hex digits spells, if it is one.
pub(crate) fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    (text.len().is_multiple_of(2) && text.is_ascii())
        .then(|| (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect())
        .flatten()
}

fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
}

/// `nonce || ciphertext` of `plain` under `key`, bound to `aad`.
fn seal_bytes(key: &[u8; 32], plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let sealed = cipher(key).encrypt(&nonce, Payload { msg: plain, aad }).map_err(|_| VaultError::Encrypt)?;
    Ok([nonce.as_slice(), &sealed].concat())
}

fn open_bytes(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
    if sealed.len() < 12 {
        return Err(VaultError::Decrypt);
    }
    let (nonce, body) = sealed.split_at(12);
    cipher(key).decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad }).map_err(|_| VaultError::Decrypt)
}

/// The data-key id a sealed secret names.
fn data_key_id(credential_id: Uuid) -> String {
    format!("dek-{credential_id}")
}

/// Seals and opens credential secrets. Cheap to clone.
#[derive(Clone)]
pub struct Vault {
    pool: PgPool,
    current: MasterKey,
    old: Vec<MasterKey>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("current", &self.current).field("old", &self.old).finish_non_exhaustive()
    }
}

impl Vault {
    /// A vault over `pool` with the current master key and older ones that
    /// may still have wrapped some data keys.
    pub fn new(pool: PgPool, current: MasterKey, old: Vec<MasterKey>) -> Self {
        Self { pool, current, old }
    }

    /// The development master key: made once per database and kept in it
    /// (`vault_dev_key`), so every instance on that database shares it. It
    /// protects nothing against someone who can read the database; set
    /// `ENCRYPTION_KEY` for that.
    pub async fn dev_key(pool: &PgPool) -> Result<MasterKey, VaultError> {
        let fresh = Aes256Gcm::generate_key(&mut OsRng);
        sqlx::query("INSERT INTO vault_dev_key (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
            .bind(fresh.as_slice())
            .execute(pool)
            .await?;
        let stored: Vec<u8> = sqlx::query_scalar("SELECT key FROM vault_dev_key WHERE id = 1").fetch_one(pool).await?;
        let key: [u8; 32] = stored.try_into().map_err(|_| VaultError::BadKey("stored development key".into()))?;
        Ok(MasterKey::from_bytes(key))
    }

    /// The current master key's id.
    pub fn key_id(&self) -> &str {
        self.current.id()
    }

    fn master(&self, id: &str) -> Result<&MasterKey, VaultError> {
        std::iter::once(&self.current)
            .chain(&self.old)
            .find(|k| k.id == id)
            .ok_or_else(|| VaultError::UnknownMasterKey(id.to_owned()))
    }

    /// Seal `plain` for a new credential: make its data key, store it
    /// wrapped, and answer the sealed secret the log may keep.
    pub async fn seal(&self, credential_id: Uuid, plain: &[u8]) -> Result<SealedSecret, VaultError> {
        let data_key: [u8; 32] = Aes256Gcm::generate_key(&mut OsRng).into();
        let aad = credential_id.as_bytes();
        let wrapped = seal_bytes(&self.current.key, &data_key, aad)?;
        sqlx::query(
            "INSERT INTO credential_keys (credential_id, master_key_id, wrapped) VALUES ($1, $2, $3) \
             ON CONFLICT (credential_id) DO UPDATE SET master_key_id = $2, wrapped = $3",
        )
        .bind(credential_id)
        .bind(self.current.id())
        .bind(&wrapped)
        .execute(&self.pool)
        .await?;
        let sealed = seal_bytes(&data_key, plain, aad)?;
        let (nonce, body) = sealed.split_at(12);
        Ok(SealedSecret {
            alg: ALG.into(),
            key_id: data_key_id(credential_id),
            nonce: STANDARD.encode(nonce),
            ciphertext: STANDARD.encode(body),
        })
    }

    /// Open a credential's sealed secret. Every failure is an error: a
    /// destroyed key, an unknown master key, a ciphertext that does not
    /// authenticate.
    pub async fn open(&self, credential_id: Uuid, sealed: &SealedSecret) -> Result<Vec<u8>, VaultError> {
        if sealed.alg != ALG || sealed.key_id != data_key_id(credential_id) {
            return Err(VaultError::Decrypt);
        }
        let row: Option<(String, Vec<u8>)> =
            sqlx::query_as("SELECT master_key_id, wrapped FROM credential_keys WHERE credential_id = $1")
                .bind(credential_id)
                .fetch_optional(&self.pool)
                .await?;
        let (master_id, wrapped) = row.ok_or(VaultError::Shredded)?;
        let aad = credential_id.as_bytes();
        let data_key: [u8; 32] =
            open_bytes(&self.master(&master_id)?.key, &wrapped, aad)?.try_into().map_err(|_| VaultError::Decrypt)?;
        let nonce = STANDARD.decode(&sealed.nonce).map_err(|_| VaultError::Decrypt)?;
        let body = STANDARD.decode(&sealed.ciphertext).map_err(|_| VaultError::Decrypt)?;
        open_bytes(&data_key, &[nonce, body].concat(), aad)
    }

    /// Destroy a credential's data key. Answers whether there was one.
    pub async fn shred(&self, credential_id: Uuid) -> Result<bool, VaultError> {
        let done = sqlx::query("DELETE FROM credential_keys WHERE credential_id = $1")
            .bind(credential_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Wrap every data key under the current master key (after a new
    /// `ENCRYPTION_KEY`, with the old one in `ENCRYPTION_OLD_KEYS`).
    /// Answers how many were moved.
    pub async fn rewrap(&self) -> Result<u64, VaultError> {
        let rows: Vec<(Uuid, String, Vec<u8>)> = sqlx::query_as(
            "SELECT credential_id, master_key_id, wrapped FROM credential_keys WHERE master_key_id <> $1",
        )
        .bind(self.current.id())
        .fetch_all(&self.pool)
        .await?;
        let mut moved = 0;
        for (credential_id, master_id, wrapped) in rows {
            let aad = credential_id.as_bytes();
            let data_key = open_bytes(&self.master(&master_id)?.key, &wrapped, aad)?;
            let rewrapped = seal_bytes(&self.current.key, &data_key, aad)?;
            moved += sqlx::query(
                "UPDATE credential_keys SET master_key_id = $2, wrapped = $3 \
                 WHERE credential_id = $1 AND master_key_id = $4",
            )
            .bind(credential_id)
            .bind(self.current.id())
            .bind(&rewrapped)
            .bind(&master_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bytes_open_only_with_their_key_and_binding() {
        let key = [7u8; 32];
        let sealed = seal_bytes(&key, b"sk-secret", b"cred-1").unwrap();
        assert!(!sealed.windows(9).any(|w| w == b"sk-secret"));
        assert_eq!(open_bytes(&key, &sealed, b"cred-1").unwrap(), b"sk-secret");
        assert!(matches!(open_bytes(&key, &sealed, b"cred-2"), Err(VaultError::Decrypt)));
        assert!(matches!(open_bytes(&[8u8; 32], &sealed, b"cred-1"), Err(VaultError::Decrypt)));
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(matches!(open_bytes(&key, &flipped, b"cred-1"), Err(VaultError::Decrypt)));
    }

    #[test]
    fn master_keys_parse_from_base64_urlsafe_or_hex_and_have_stable_ids() {
        let raw = [42u8; 32];
        let b64 = MasterKey::parse(&STANDARD.encode(raw)).unwrap();
        let url = MasterKey::parse(&URL_SAFE.encode(raw)).unwrap();
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let hexed = MasterKey::parse(&hex).unwrap();
        assert_eq!(b64.id(), url.id());
        assert_eq!(b64.id(), hexed.id());
        assert_eq!(b64.id().len(), 16);
        assert!(!format!("{b64:?}").contains("42"));
        assert!(matches!(MasterKey::parse("c2hvcnQ="), Err(VaultError::BadKey(_))));
        assert!(matches!(MasterKey::parse("not a key!"), Err(VaultError::BadKey(_))));
    }
}
