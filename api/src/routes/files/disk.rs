//! The disk side of uploads: one folder per user and area, each file named
//! by the SHA-256 of its bytes. No part of a path comes from the client:
//! the user is the token's (a uuid), the name is a digest we computed, the
//! extension one of a fixed list, so no upload can reach outside its
//! folder whatever name it was sent with.
//!
//! Files are written under a temporary name and renamed into place, so a
//! reader sees a whole file or none, and two uploads of the same bytes (the
//! same name) simply replace one another with identical content.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The longest an uploaded file is kept, in hours (AutoGPT's bound).
pub(crate) const MAX_EXPIRATION_HOURS: i64 = 48;

/// Where uploaded files are kept, and how large one may be.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
    max_bytes: usize,
}

/// The two kinds of upload, each in a folder tree of its own.
#[derive(Debug, Clone, Copy)]
pub(super) enum Area {
    /// `POST /api/files/upload`: private to the uploader, kept for a while.
    Uploads,
    /// `POST /api/store/submissions/media`: public store images and videos.
    Media,
}

impl Area {
    fn dir(self) -> &'static str {
        match self {
            Area::Uploads => "uploads",
            Area::Media => "media",
        }
    }
}

/// What is kept beside a private upload: what to answer it with and until
/// when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Meta {
    /// The name it was uploaded under (its last path segment only).
    pub file_name: String,
    /// The type it was declared with (normalised).
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// After this it is gone.
    pub expires_at: DateTime<Utc>,
}

impl FileStore {
    /// Files under `root`, none larger than `max_bytes`.
    pub fn new(root: PathBuf, max_bytes: usize) -> Self {
        Self { root, max_bytes }
    }

    /// The largest file taken.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    fn folder(&self, area: Area, user: Uuid) -> PathBuf {
        self.root.join(area.dir()).join(user.to_string())
    }

    /// Keep `bytes` as `name` in `user`'s folder of `area` (created on
    /// demand); bytes already there under that name are not written again.
    pub(super) async fn put(&self, area: Area, user: Uuid, name: &str, bytes: &[u8]) -> io::Result<()> {
        if !tokio::fs::try_exists(&self.root).await? {
            tokio::fs::create_dir_all(&self.root).await?;
            // The default lives in the working directory, often a checkout.
            let _ = tokio::fs::write(self.root.join(".gitignore"), "*\n").await;
        }
        let folder = self.folder(area, user);
        tokio::fs::create_dir_all(&folder).await?;
        let target = folder.join(name);
        if tokio::fs::try_exists(&target).await? {
            return Ok(());
        }
        write_atomically(&folder, &target, bytes).await
    }

    /// Record (or refresh) a private upload's metadata. The same bytes
    /// uploaded again keep the later of both expiries.
    pub(super) async fn put_meta(&self, user: Uuid, digest: &str, mut meta: Meta) -> io::Result<()> {
        let folder = self.folder(Area::Uploads, user);
        if let Some(old) = self.meta(user, digest).await? {
            meta.expires_at = meta.expires_at.max(old.expires_at);
        }
        let body = serde_json::to_vec(&meta).map_err(io::Error::other)?;
        write_atomically(&folder, &folder.join(format!("{digest}.json")), &body).await
    }

    /// A private upload's metadata, if it is kept.
    pub(super) async fn meta(&self, user: Uuid, digest: &str) -> io::Result<Option<Meta>> {
        let path = self.folder(Area::Uploads, user).join(format!("{digest}.json"));
        match tokio::fs::read(&path).await {
            Ok(raw) => Ok(serde_json::from_slice(&raw).ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The bytes kept as `name` in `user`'s folder of `area`.
    pub(super) async fn get(&self, area: Area, user: Uuid, name: &str) -> io::Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.folder(area, user).join(name)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Forget a private upload (its time is up).
    pub(super) async fn remove_upload(&self, user: Uuid, digest: &str) {
        let folder = self.folder(Area::Uploads, user);
        let _ = tokio::fs::remove_file(folder.join(format!("{digest}.json"))).await;
        let _ = tokio::fs::remove_file(folder.join(digest)).await;
    }

    /// Remove `user`'s private uploads that have certainly expired, and
    /// leftovers of interrupted writes. Run on each upload, so a folder is
    /// kept tidy without a sweeper: metadata is rewritten on every upload
    /// of its file, so one untouched for longer than the longest expiry
    /// has expired, and only file times are read, never the files.
    pub(super) async fn sweep(&self, user: Uuid) {
        let folder = self.folder(Area::Uploads, user);
        let Ok(mut entries) = tokio::fs::read_dir(&folder).await else { return };
        let now = SystemTime::now();
        let longest = Duration::from_secs(MAX_EXPIRATION_HOURS as u64 * 3600);
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            let age =
                entry.metadata().await.ok().and_then(|m| m.modified().ok()).and_then(|t| now.duration_since(t).ok());
            let Some(age) = age else { continue };
            if let Some(digest) = name.strip_suffix(".json").filter(|_| age > longest) {
                self.remove_upload(user, digest).await;
            } else if name.ends_with(".tmp") && age > Duration::from_secs(3600) {
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
    }
}

/// Write `bytes` to a fresh temporary file in `folder`, then rename it to
/// `target`: a reader never sees a partial file.
async fn write_atomically(folder: &Path, target: &Path, bytes: &[u8]) -> io::Result<()> {
    let temp = folder.join(format!(".{}.tmp", Uuid::new_v4().simple()));
    if let Err(e) = tokio::fs::write(&temp, bytes).await {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(e);
    }
    tokio::fs::rename(&temp, target).await.inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

/// The lower-case hex SHA-256 of `bytes`: the file's name.
pub(super) fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `text` is a digest as [`digest`] writes it: any other name in a
/// path names no file.
pub(super) fn is_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_the_only_names() {
        let name = digest(b"hello");
        assert!(is_digest(&name));
        for other in ["../etc/passwd", "", &name.to_uppercase(), &format!("{name}/x"), &name[..63]] {
            assert!(!is_digest(other), "{other:?}");
        }
    }
}
