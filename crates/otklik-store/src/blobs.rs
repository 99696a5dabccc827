//! Attachment bytes, addressed by their SHA-256. A blob is durable (file and folder fsynced)
//! before `put` returns, so a message that refers to it is never committed before its bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::{StoreError, StoreResult};

/// Where attachment bytes live.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` durably and returns their hex SHA-256 (storing the same bytes twice is a
    /// no-op).
    async fn put(&self, bytes: Vec<u8>) -> StoreResult<String>;
    /// The bytes stored under `sha256`, if any.
    async fn get(&self, sha256: &str) -> StoreResult<Option<Vec<u8>>>;
}

/// Blobs as files under a folder: `<root>/ab/cd/abcd…` (the hex hash), never a sender's name.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    /// A blob store under `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path_of(&self, sha256: &str) -> Option<PathBuf> {
        let valid = sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        valid.then(|| {
            self.root
                .join(&sha256[..2])
                .join(&sha256[2..4])
                .join(sha256)
        })
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)?;
    let mut temporary = tempfile_in(folder)?;
    temporary.1.write_all(bytes)?;
    temporary.1.sync_all()?;
    std::fs::rename(&temporary.0, path)?;
    // The rename is only durable once the folder entry is.
    std::fs::File::open(folder)?.sync_all()
}

fn tempfile_in(folder: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = format!(".tmp-{}", uuid::Uuid::now_v7().simple());
    let path = folder.join(name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, bytes: Vec<u8>) -> StoreResult<String> {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let path = self
            .path_of(&sha256)
            .ok_or_else(|| StoreError::corrupt("bad hash"))?;
        tokio::task::spawn_blocking(move || {
            if path.exists() {
                return Ok(());
            }
            write_durably(&path, &bytes)
        })
        .await
        .map_err(StoreError::database)?
        .map_err(StoreError::database)?;
        Ok(sha256)
    }

    async fn get(&self, sha256: &str) -> StoreResult<Option<Vec<u8>>> {
        let Some(path) = self.path_of(sha256) else {
            return Ok(None);
        };
        match tokio::fs::read(path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StoreError::database(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stored_blob_reads_back_under_its_hash_and_storing_twice_is_harmless() {
        let folder = tempfile::tempdir().unwrap();
        let blobs = LocalBlobStore::new(folder.path());
        let sha256 = blobs.put(b"%PDF-1.7 invoice".to_vec()).await.unwrap();
        assert_eq!(
            blobs.put(b"%PDF-1.7 invoice".to_vec()).await.unwrap(),
            sha256
        );
        assert_eq!(
            blobs.get(&sha256).await.unwrap().unwrap(),
            b"%PDF-1.7 invoice"
        );
    }

    #[tokio::test]
    async fn a_malformed_hash_never_becomes_a_path() {
        let folder = tempfile::tempdir().unwrap();
        let blobs = LocalBlobStore::new(folder.path());
        assert_eq!(blobs.get("../../etc/passwd").await.unwrap(), None);
        assert_eq!(blobs.get(&"A".repeat(64)).await.unwrap(), None);
    }
}
