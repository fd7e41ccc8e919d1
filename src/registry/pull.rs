//! Pulling an image into an OCI layout: the tag's document, every manifest below it and
//! every blob, each checked against its digest and size before it gets its name.
//!
//! Why a layout: it is what `push --layout` reads, what skopeo and umoci read, and what an
//! air-gapped site carries to its own registry. Nothing the registry sends is trusted: a
//! digest must be `sha256:` and 64 hex digits before it becomes a file name, and a blob is
//! written to a temporary file and renamed only once its bytes hash to its digest.

use super::client::{Payload, Registry, RegistryError, pull_scope};
use super::documents::{self, Descriptor, Parsed};
use super::push::{blob_path, excerpt};
use super::reference::ImageRef;
use crate::layer::blob::Hashing;
use crate::store::write_atomic;
use reqwest::{Method, StatusCode};
use std::io::{Read, Write};
use std::path::Path;

/// Manifests larger than this are refused (the OCI distribution spec suggests 4 MiB).
const MANIFEST_MAX: u64 = 4 << 20;

/// A pull's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullReport {
    pub digest: String,
    pub media_type: String,
    pub blobs: usize,
    pub downloaded_bytes: u64,
    pub already_there: usize,
}

/// Pulls `source` into the layout at `out` (created if missing), recording it in
/// `index.json` under `ref_name`.
pub fn pull(
    source: &ImageRef,
    registry: &Registry,
    out: &Path,
    ref_name: &str,
    progress: &dyn Fn(u64),
) -> Result<PullReport, RegistryError> {
    let repo = &source.repository;
    let top_bytes = get_manifest(registry, repo, source.reference())?;
    let digest = crate::oci::digest_of(&top_bytes);
    if let Some(wanted) = &source.digest
        && *wanted != digest
    {
        return Err(RegistryError::DigestMismatch {
            what: format!("manifest {source}"),
            expected: wanted.clone(),
            got: digest,
        });
    }
    let mut documents_to_write = vec![(digest.clone(), top_bytes.clone())];
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut add_blobs = |list: Vec<Descriptor>| {
        for b in list {
            if !blobs.iter().any(|x| x.digest == b.digest) {
                blobs.push(b);
            }
        }
    };
    let bad = |e: documents::DocumentError| RegistryError::Status {
        registry: registry.name.clone(),
        what: format!("reading {source}"),
        status: 200,
        detail: format!(" ({e})"),
    };
    let media_type = match documents::parse(&top_bytes, &digest).map_err(bad)? {
        Parsed::Index {
            manifests,
            media_type,
        } => {
            for m in manifests {
                let bytes = get_manifest(registry, repo, &m.digest)?;
                let got = crate::oci::digest_of(&bytes);
                if got != m.digest {
                    return Err(RegistryError::DigestMismatch {
                        what: format!("manifest {}", m.digest),
                        expected: m.digest,
                        got,
                    });
                }
                match documents::parse(&bytes, &m.digest).map_err(bad)? {
                    Parsed::Manifest { blobs, .. } => add_blobs(blobs),
                    Parsed::Index { .. } => {
                        return Err(bad(documents::DocumentError {
                            what: m.digest.clone(),
                            reason: "an index inside an index".into(),
                        }));
                    }
                }
                documents_to_write.push((m.digest, bytes));
            }
            media_type
        }
        Parsed::Manifest { blobs, media_type } => {
            add_blobs(blobs);
            media_type
        }
    };
    let mut report = PullReport {
        digest: digest.clone(),
        media_type: media_type.clone(),
        ..PullReport::default()
    };
    let blob_dir = out.join("blobs/sha256");
    std::fs::create_dir_all(&blob_dir).map_err(|e| RegistryError::io("creating", &blob_dir, e))?;
    for b in &blobs {
        let path = blob_path(out, &b.digest);
        if file_has_digest(&path, &b.digest) {
            report.already_there += 1;
            progress(b.size);
            continue;
        }
        get_blob(registry, repo, b, &path, progress)?;
        report.blobs += 1;
        report.downloaded_bytes += b.size;
    }
    // Documents after the blobs they name; index.json last.
    for (d, bytes) in documents_to_write.iter().rev() {
        write_atomic(&blob_path(out, d), bytes)
            .map_err(|e| RegistryError::io("writing", out, std::io::Error::other(e.to_string())))?;
    }
    let subjects: Vec<String> = if documents_to_write.len() > 1 {
        documents_to_write[1..]
            .iter()
            .map(|(d, _)| d.clone())
            .collect()
    } else {
        vec![digest.clone()]
    };
    let referrers = pull_referrers(registry, repo, &subjects, out, progress)?;
    write_layout_index(
        out,
        &digest,
        &media_type,
        top_bytes.len() as u64,
        ref_name,
        &referrers,
    )?;
    Ok(report)
}

/// The referrers (SBOMs, provenance) of each subject into the layout; their index entries.
fn pull_referrers(
    registry: &Registry,
    repo: &str,
    subjects: &[String],
    out: &Path,
    progress: &dyn Fn(u64),
) -> Result<Vec<serde_json::Value>, RegistryError> {
    let mut entries = Vec::new();
    for subject in subjects {
        for listed in super::referrers::list(registry, repo, subject)? {
            let d = &listed.descriptor;
            if !documents::is_sha256_digest(&d.digest) {
                continue;
            }
            let bytes = get_manifest(registry, repo, &d.digest)?;
            let got = crate::oci::digest_of(&bytes);
            if got != d.digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("referrer {} of {subject}", d.digest),
                    expected: d.digest.clone(),
                    got,
                });
            }
            let bad = |e: documents::DocumentError| RegistryError::Status {
                registry: registry.name.clone(),
                what: format!("reading the referrer {}", d.digest),
                status: 200,
                detail: format!(" ({e})"),
            };
            if let Parsed::Manifest { blobs, .. } =
                documents::parse(&bytes, &d.digest).map_err(bad)?
            {
                for b in &blobs {
                    let path = blob_path(out, &b.digest);
                    if !file_has_digest(&path, &b.digest) {
                        get_blob(registry, repo, b, &path, progress)?;
                    }
                }
            }
            write_atomic(&blob_path(out, &d.digest), &bytes).map_err(|e| {
                RegistryError::io("writing", out, std::io::Error::other(e.to_string()))
            })?;
            entries.push(serde_json::json!({
                "mediaType": documents::OCI_MANIFEST,
                "digest": d.digest,
                "size": bytes.len(),
                "artifactType": listed.artifact_type,
            }));
        }
    }
    Ok(entries)
}

/// Whether a file exists and hashes to `digest`.
fn file_has_digest(path: &Path, digest: &str) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut hashing = Hashing::new(std::io::sink());
    std::io::copy(&mut f, &mut hashing).is_ok() && hashing.finish().1 == digest
}

/// A manifest or index, byte for byte (its digest is of these bytes).
pub(super) fn get_manifest(
    registry: &Registry,
    repo: &str,
    reference: &str,
) -> Result<Vec<u8>, RegistryError> {
    let what = format!("manifest {repo}:{reference}");
    let r = registry.send(
        Method::GET,
        registry.url(&format!("{repo}/manifests/{reference}")),
        &[("Accept", documents::accept())],
        Payload::Empty,
        &[pull_scope(repo)],
        &what,
    )?;
    if r.status() == StatusCode::NOT_FOUND {
        return Err(registry.status_error(&what, r.status(), "no such image"));
    }
    if !r.status().is_success() {
        let status = r.status();
        return Err(registry.status_error(&what, status, &excerpt(&r.text().unwrap_or_default())));
    }
    let mut bytes = Vec::new();
    r.take(MANIFEST_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| RegistryError::Connect {
            registry: registry.name.clone(),
            what: what.clone(),
            reason: e.to_string(),
        })?;
    if bytes.len() as u64 > MANIFEST_MAX {
        return Err(registry.status_error(&what, StatusCode::OK, "larger than 4 MiB"));
    }
    Ok(bytes)
}

/// Streams a blob to a temp file beside `path`, checks size and digest, renames it.
fn get_blob(
    registry: &Registry,
    repo: &str,
    blob: &Descriptor,
    path: &Path,
    progress: &dyn Fn(u64),
) -> Result<(), RegistryError> {
    let what = format!("blob {}", blob.digest);
    let mut r = registry.send(
        Method::GET,
        registry.url(&format!("{repo}/blobs/{}", blob.digest)),
        &[],
        Payload::Empty,
        &[pull_scope(repo)],
        &what,
    )?;
    if !r.status().is_success() {
        let status = r.status();
        return Err(registry.status_error(&what, status, ""));
    }
    let dir = path.parent().expect("blob paths have a parent");
    let mut tmp = tempfile::Builder::new()
        .prefix(".pull-")
        .tempfile_in(dir)
        .map_err(|e| RegistryError::io("creating a file in", dir, e))?;
    let tmp_path = tmp.path().to_path_buf();
    let mut out = Hashing::new(tmp.as_file_mut());
    let mut received = 0u64;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = r.read(&mut buf).map_err(|e| RegistryError::Connect {
            registry: registry.name.clone(),
            what: what.clone(),
            reason: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        received += n as u64;
        if received > blob.size {
            break;
        }
        out.write_all(&buf[..n])
            .map_err(|e| RegistryError::io("writing", &tmp_path, e))?;
        progress(n as u64);
    }
    let (_, got, written) = out.finish();
    if received > blob.size || written != blob.size || got != blob.digest {
        return Err(RegistryError::DigestMismatch {
            what,
            expected: format!("{} ({} bytes)", blob.digest, blob.size),
            got: if received > blob.size {
                format!("more than {} bytes", blob.size)
            } else {
                format!("{got} ({written} bytes)")
            },
        });
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| RegistryError::io("syncing", tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| RegistryError::io("renaming into", path, e.error))?;
    Ok(())
}

/// `oci-layout` and `index.json`, keeping other tags' entries.
fn write_layout_index(
    out: &Path,
    digest: &str,
    media_type: &str,
    size: u64,
    ref_name: &str,
    referrers: &[serde_json::Value],
) -> Result<(), RegistryError> {
    let io = |e: crate::store::StoreError| {
        RegistryError::io("writing", out, std::io::Error::other(e.to_string()))
    };
    write_atomic(
        &out.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(io)?;
    let index_path = out.join("index.json");
    let mut manifests: Vec<serde_json::Value> = std::fs::read(&index_path)
        .ok()
        .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
        .and_then(|v| v["manifests"].as_array().cloned())
        .unwrap_or_default();
    manifests.retain(|m| m["annotations"][crate::oci::layout::REF_NAME].as_str() != Some(ref_name));
    manifests.push(serde_json::json!({
        "mediaType": media_type,
        "digest": digest,
        "size": size,
        "annotations": { crate::oci::layout::REF_NAME: ref_name },
    }));
    manifests.retain(|m| !referrers.iter().any(|r| r["digest"] == m["digest"]));
    manifests.extend(referrers.iter().cloned());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": documents::OCI_INDEX,
        "manifests": manifests,
    });
    write_atomic(
        &index_path,
        &serde_json::to_vec(&index).expect("index serializes"),
    )
    .map_err(io)
}
