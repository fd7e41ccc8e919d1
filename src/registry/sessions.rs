//! What a push remembers in the store between runs: unfinished chunked uploads (to resume
//! after an interruption) and the repositories it pushed to on each registry (where a blob
//! can be mounted from instead of uploaded again).
//!
//! Why in the store: both are only accelerators, keyed by registry, repository and digest;
//! losing them costs an upload, never correctness (gc empties them).

use crate::store::{Area, Store, write_atomic};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The store's registry records.
pub struct Sessions {
    dir: PathBuf,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Session {
    location: String,
}

fn key(parts: &[&str]) -> String {
    hex::encode(Sha256::digest(parts.join("\n").as_bytes()))
}

impl Sessions {
    pub fn new(store: &Store) -> Sessions {
        Sessions {
            dir: store.area(Area::Uploads),
        }
    }

    fn session_path(&self, registry: &str, repository: &str, digest: &str) -> PathBuf {
        self.dir.join(format!(
            "session-{}.json",
            key(&[registry, repository, digest])
        ))
    }

    fn repos_path(&self, registry: &str) -> PathBuf {
        self.dir.join(format!("repos-{}.json", key(&[registry])))
    }

    /// The upload URL of an unfinished upload of `digest`, if one was left.
    pub fn session(&self, registry: &str, repository: &str, digest: &str) -> Option<String> {
        let text = std::fs::read(self.session_path(registry, repository, digest)).ok()?;
        serde_json::from_slice::<Session>(&text)
            .ok()
            .map(|s| s.location)
    }

    /// Records where an upload stands (after each chunk). Failing to record only costs a
    /// later resume, so errors are ignored.
    pub fn save(&self, registry: &str, repository: &str, digest: &str, location: &str) {
        let session = Session {
            location: location.into(),
        };
        let _ = write_atomic(
            &self.session_path(registry, repository, digest),
            &serde_json::to_vec(&session).expect("session serializes"),
        );
    }

    pub fn forget(&self, registry: &str, repository: &str, digest: &str) {
        let _ = std::fs::remove_file(self.session_path(registry, repository, digest));
    }

    /// Repositories pushed to on `registry`, oldest first.
    pub fn repositories(&self, registry: &str) -> Vec<String> {
        std::fs::read(self.repos_path(registry))
            .ok()
            .and_then(|t| serde_json::from_slice(&t).ok())
            .unwrap_or_default()
    }

    pub fn add_repository(&self, registry: &str, repository: &str) {
        let mut repos = self.repositories(registry);
        if !repos.iter().any(|r| r == repository) {
            repos.push(repository.into());
            let _ = write_atomic(
                &self.repos_path(registry),
                &serde_json::to_vec(&repos).expect("names serialize"),
            );
        }
    }
}
