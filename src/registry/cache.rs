//! A store cache in a registry: the packages, wheels and npm tarballs an image's lock pins,
//! pushed as OCI artifacts, and read back by their locked digest before the mirrors.
//!
//! Why a registry: CI runners and sites already have one, with auth, replication and
//! garbage collection; blobs there are content-addressed by the digest a lock pins (sha256,
//! or sha512 for npm tarballs), so a runner can ask for exactly the bytes it needs
//! (`GET /blobs/sha256:…`) and
//! check them against the lock. One artifact manifest per lock and arch keeps the blobs
//! referenced (a registry's gc removes unreferenced ones) and lists them by store name;
//! its tag, `IMAGE-ARCH-<lock sha256 prefix>`, never collides between images or locks.
//!
//! The signed indexes the lock was resolved against (each suite's InRelease and Packages
//! files) travel with the objects: a store filled from the cache can then `lock --offline`
//! against the same indexes, and holds the evidence that each pinned hash was published.
//!
//! Only sources are cached, not built layers: a layer cannot be checked against the lock
//! without building it, so taking one from a cache would trust whoever wrote the cache with
//! the image's contents (docs/registry.md).

use super::client::{Payload, Registry, RegistryError, pull_scope};
use super::documents::Descriptor;
use super::push::{self, PushProgress};
use super::reference::ImageRef;
use super::sessions::Sessions;
use crate::debian::index as debian_index;
use crate::digest::Digest;
use crate::download::{Substituter, Wanted};
use crate::fetch::http::{BodyError, body_into_store};
use crate::lockfile::Lockfile;
use crate::store::{Expected, Store};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use std::path::PathBuf;

pub const ARTIFACT_TYPE: &str = "application/vnd.carbon-store.cache.v1";
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
const OBJECT_TYPE: &str = "application/octet-stream";
/// The annotation holding an object's file name in the store.
pub const NAME_ANNOTATION: &str = "org.opencontainers.image.title";

/// The tag of the cache artifact of one image's lock and arch.
pub fn tag(image: &str, arch: &str, lock_text: &str) -> String {
    let lock = hex::encode(Sha256::digest(lock_text.as_bytes()));
    format!("{image}-{arch}-{}", &lock[..16])
}

/// What `cache push` did for one image and arch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CachePushReport {
    pub tag: String,
    pub objects: usize,
    /// Signed indexes among the objects.
    pub indexes: usize,
    pub counts: push::BlobCounts,
}

/// The signed indexes one arch of a lock was resolved against, as (store name, sha256 hex):
/// each suite's InRelease and the arch's Packages files.
pub fn locked_indexes(lock: &Lockfile, arch: &str) -> Vec<(String, String)> {
    let hex = |digest: &str| digest.trim_start_matches("sha256:").to_string();
    let mut out = Vec::new();
    for index in lock.index.iter().filter(|i| i.arch == arch) {
        out.push((
            debian_index::inrelease_name(&index.suite),
            hex(&index.inrelease),
        ));
        for (component, digest) in &index.packages {
            let name = debian_index::packages_name(&index.suite, component, arch);
            out.push((name, hex(digest)));
        }
    }
    out
}

/// The artifact manifest: an empty config, one layer per object, annotated with its name.
fn manifest(image: &str, arch: &str, lock_text: &str, objects: &[(String, Descriptor)]) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = objects
        .iter()
        .map(|(name, d)| {
            serde_json::json!({
                "mediaType": OBJECT_TYPE,
                "digest": d.digest,
                "size": d.size,
                "annotations": { NAME_ANNOTATION: name },
            })
        })
        .collect();
    let doc = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": super::documents::OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": { "mediaType": EMPTY_TYPE, "digest": empty_digest(), "size": 2 },
        "layers": layers,
        "annotations": {
            "org.carbon-store.image": image,
            "org.carbon-store.arch": arch,
            "org.carbon-store.lock": crate::oci::digest_of(lock_text.as_bytes()),
        },
    });
    serde_json::to_vec(&doc).expect("a manifest serializes")
}

fn empty_digest() -> String {
    crate::oci::digest_of(b"{}")
}

/// Pushes the objects one arch of a lock needs (`wanted`, all in the store) and the signed
/// indexes it was resolved against (`indexes`, those the store holds) into `repo`, then the
/// artifact manifest under its tag.
#[allow(clippy::too_many_arguments)]
pub fn push_arch(
    store: &Store,
    registry: &Registry,
    repo: &str,
    sessions: &Sessions,
    image: &str,
    arch: &str,
    lock_text: &str,
    wanted: &[Wanted],
    indexes: &[(String, String)],
    jobs: usize,
    progress: &dyn PushProgress,
) -> Result<CachePushReport, RegistryError> {
    let mut objects: Vec<(String, Descriptor)> = Vec::new();
    let mut files: Vec<(PathBuf, Descriptor)> = Vec::new();
    let mut add = |name: &str, digest: &Digest, size: u64| {
        let d = Descriptor {
            media_type: OBJECT_TYPE.into(),
            digest: digest.to_string(),
            size,
        };
        files.push((store.object_path(digest, name), d.clone()));
        objects.push((name.to_string(), d));
    };
    for w in wanted {
        add(&w.name, &w.digest, w.size);
    }
    let mut index_count = 0;
    for (name, sha256) in indexes {
        if let Ok(meta) = std::fs::metadata(store.source_path(sha256, name)) {
            add(name, &Digest::Sha256(sha256.clone()), meta.len());
            index_count += 1;
        }
    }
    // The empty config, from a file like every blob.
    let empty = store
        .area(crate::store::Area::Uploads)
        .join("empty-config.json");
    crate::store::write_atomic(&empty, b"{}")
        .map_err(|e| RegistryError::io("writing", &empty, std::io::Error::other(e.to_string())))?;
    files.push((
        empty,
        Descriptor {
            media_type: EMPTY_TYPE.into(),
            digest: empty_digest(),
            size: 2,
        },
    ));
    let counts = push::push_blobs(registry, repo, &files, sessions, jobs, progress)?;
    let tag = tag(image, arch, lock_text);
    let bytes = manifest(image, arch, lock_text, &objects);
    let digest = crate::oci::digest_of(&bytes);
    push::put_manifest(
        registry,
        repo,
        &tag,
        &bytes,
        super::documents::OCI_MANIFEST,
        &digest,
    )?;
    Ok(CachePushReport {
        tag,
        objects: objects.len(),
        indexes: index_count,
        counts,
    })
}

/// Reads objects from a cache repository by sha256, for `fetch` and `realize`.
pub struct RegistryCache {
    registry: Registry,
    reference: ImageRef,
}

impl RegistryCache {
    pub fn new(registry: Registry, reference: ImageRef) -> RegistryCache {
        RegistryCache {
            registry,
            reference,
        }
    }
}

impl RegistryCache {
    /// Takes the signed indexes one arch of a lock was resolved against from the lock's
    /// cache artifact into the store (those it lacks, each checked against the lock's
    /// sha256), and makes them the ones an offline `lock` reads where the store has none.
    /// Returns how many came; none when the cache has no artifact for this lock.
    pub fn restore_indexes(
        &self,
        store: &Store,
        image: &str,
        arch: &str,
        lock_text: &str,
        lock: &Lockfile,
    ) -> Result<usize, String> {
        let missing: Vec<(String, String)> = locked_indexes(lock, arch)
            .into_iter()
            .filter(|(name, sha256)| !store.contains(sha256, name, None))
            .collect();
        let mut came = 0;
        if !missing.is_empty() {
            let repo = &self.reference.repository;
            let manifest =
                match super::pull::get_manifest(&self.registry, repo, &tag(image, arch, lock_text))
                {
                    Ok(bytes) => bytes,
                    Err(RegistryError::Status { status: 404, .. }) => return Ok(0),
                    Err(e) => return Err(e.to_string()),
                };
            let listed =
                match super::documents::parse_cache_artifact(&manifest, "the cache artifact") {
                    Ok(super::documents::Parsed::Manifest { blobs, .. }) => blobs,
                    Ok(_) => return Err("the cache artifact is an index, not a manifest".into()),
                    Err(e) => return Err(e.to_string()),
                };
            for (name, sha256) in &missing {
                let digest = format!("sha256:{sha256}");
                let Some(blob) = listed.iter().find(|b| b.digest == digest) else {
                    continue;
                };
                let wanted = Wanted {
                    name: name.clone(),
                    path: String::new(),
                    mirror: String::new(),
                    digest: Digest::Sha256(sha256.clone()),
                    size: blob.size,
                    project: None,
                };
                if self.substitute(&wanted, store, &|_| {})? {
                    came += 1;
                }
            }
        }
        for index in lock.index.iter().filter(|i| i.arch == arch) {
            let sha256 = index.inrelease.trim_start_matches("sha256:");
            debian_index::adopt_locked_release(store, &index.suite, sha256, &index.date)
                .map_err(|e| e.to_string())?;
        }
        Ok(came)
    }
}

impl Substituter for RegistryCache {
    fn substitute(
        &self,
        wanted: &Wanted,
        store: &Store,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<bool, String> {
        let repo = &self.reference.repository;
        let digest = wanted.digest.to_string();
        let mut response = self
            .registry
            .send(
                Method::GET,
                self.registry.url(&format!("{repo}/blobs/{digest}")),
                &[],
                Payload::Empty,
                &[pull_scope(repo)],
                &format!("cache object {}", wanted.name),
            )
            .map_err(|e| e.to_string())?;
        match response.status() {
            StatusCode::NOT_FOUND => return Ok(false),
            s if s.is_success() => {}
            s => return Err(format!("the cache answered HTTP {}", s.as_u16())),
        }
        let expected = Expected {
            digest: wanted.digest.clone(),
            size: Some(wanted.size),
        };
        match body_into_store(&mut response, store, &wanted.name, &expected, progress) {
            Ok(_) => Ok(true),
            Err(BodyError::Broken { error, .. }) => Err(format!("the transfer broke off: {error}")),
            Err(BodyError::TooLong(size)) => Err(format!(
                "the cache served other bytes (more than the locked {size})"
            )),
            Err(BodyError::Mismatch(e)) => Err(format!("the cache served other bytes ({e})")),
            Err(BodyError::Store(e)) => Err(e.to_string()),
        }
    }
}
