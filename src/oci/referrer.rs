//! OCI 1.1 referrers: documents about an image (SBOMs, provenance) stored as artifact
//! manifests whose `subject` is the image's manifest, with the empty config and the
//! document as their one layer.
//!
//! Why referrers rather than files beside the layout: a registry keeps them with the image
//! (the referrers API, or the `sha256-<hex>` tag schema where it lacks one), tools that
//! read OCI 1.1 find them by the image's digest, and the layout stays one self-contained
//! directory. In the layout, `index.json` lists them without a tag; a reader finds the
//! ones of a manifest by their `subject`.

use super::{Attachment, canonical_json};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The empty JSON config every artifact manifest points to.
pub const EMPTY_CONFIG: &[u8] = b"{}";
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// The artifact manifest of `attachment`, about the manifest `subject` (digest, size).
pub fn manifest(attachment: &Attachment, subject: (&str, u64)) -> Vec<u8> {
    let mut doc = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": attachment.artifact_type,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": super::digest_of(EMPTY_CONFIG),
            "size": EMPTY_CONFIG.len(),
            "data": "e30=",
        },
        "layers": [{
            "mediaType": attachment.artifact_type,
            "digest": super::digest_of(&attachment.bytes),
            "size": attachment.bytes.len(),
        }],
        "subject": {
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": subject.0,
            "size": subject.1,
        },
    });
    if !attachment.annotations.is_empty() {
        doc["annotations"] = json!(attachment.annotations);
    }
    canonical_json(&doc)
}

#[derive(Debug, thiserror::Error)]
pub enum ReferrerError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

/// A referrer listed in a layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referrer {
    pub artifact_type: String,
    /// Its artifact manifest.
    pub digest: String,
    pub size: u64,
    /// The manifest it is about.
    pub subject: String,
    /// Its document (the manifest's one layer).
    pub document: String,
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// A blob of a layout, checked against its digest.
pub fn read_blob(layout: &Path, digest: &str) -> Result<Vec<u8>, ReferrerError> {
    let hex = digest.strip_prefix("sha256:").unwrap_or("");
    crate::name::sha256_hex("digest", hex).map_err(|e| ReferrerError::Malformed {
        path: layout.to_path_buf(),
        reason: e.to_string(),
    })?;
    let path = layout.join("blobs/sha256").join(hex);
    let bytes = std::fs::read(&path).map_err(|source| ReferrerError::Io {
        path: path.clone(),
        source,
    })?;
    if super::digest_of(&bytes) != digest {
        return Err(ReferrerError::Malformed {
            path,
            reason: format!("its content does not have the digest {digest}"),
        });
    }
    Ok(bytes)
}

/// A layout's `index.json`, parsed.
fn read_index(index_path: &Path) -> Result<serde_json::Value, ReferrerError> {
    let bytes = std::fs::read(index_path).map_err(|source| ReferrerError::Io {
        path: index_path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ReferrerError::Malformed {
        path: index_path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Every referrer the layout's `index.json` lists (untagged artifact manifests with a
/// subject), in index order.
pub fn in_layout(layout: &Path) -> Result<Vec<Referrer>, ReferrerError> {
    let index_path = layout.join("index.json");
    let malformed = |reason: String| ReferrerError::Malformed {
        path: index_path.clone(),
        reason,
    };
    let index = read_index(&index_path)?;
    let mut found = Vec::new();
    for entry in index["manifests"].as_array().into_iter().flatten() {
        let Some(artifact_type) = entry["artifactType"].as_str() else {
            continue;
        };
        let digest = entry["digest"].as_str().unwrap_or_default().to_string();
        let manifest: serde_json::Value = serde_json::from_slice(&read_blob(layout, &digest)?)
            .map_err(|e| malformed(e.to_string()))?;
        let (Some(subject), Some(document)) = (
            manifest["subject"]["digest"].as_str(),
            manifest["layers"][0]["digest"].as_str(),
        ) else {
            return Err(malformed(format!(
                "artifact manifest {digest} has no subject or no document"
            )));
        };
        found.push(Referrer {
            artifact_type: artifact_type.to_string(),
            digest,
            size: entry["size"].as_u64().unwrap_or(0),
            subject: subject.to_string(),
            document: document.to_string(),
            annotations: serde_json::from_value(manifest["annotations"].clone())
                .unwrap_or_default(),
        });
    }
    Ok(found)
}

/// Each arch's manifest digest in a layout, by carbon-store's arch name: the entries of
/// `index.json` with a platform (as realize writes them), else the manifests of the image
/// index it holds (as `pull` writes it).
pub fn arch_manifests(
    layout: &Path,
) -> Result<std::collections::BTreeMap<String, String>, ReferrerError> {
    let index_path = layout.join("index.json");
    let malformed = |reason: String| ReferrerError::Malformed {
        path: index_path.clone(),
        reason,
    };
    let index = read_index(&index_path)?;
    let with_platform = |list: &serde_json::Value| {
        let mut archs = std::collections::BTreeMap::new();
        for entry in list["manifests"].as_array().into_iter().flatten() {
            if let (Some(arch), Some(digest)) = (
                entry["platform"]["architecture"].as_str(),
                entry["digest"].as_str(),
            ) {
                archs.insert(arch.to_string(), digest.to_string());
            }
        }
        archs
    };
    let archs = with_platform(&index);
    if !archs.is_empty() {
        return Ok(archs);
    }
    for entry in index["manifests"].as_array().into_iter().flatten() {
        if entry["mediaType"] == "application/vnd.oci.image.index.v1+json" {
            let digest = entry["digest"].as_str().unwrap_or_default();
            let inner: serde_json::Value = serde_json::from_slice(&read_blob(layout, digest)?)
                .map_err(|e| malformed(e.to_string()))?;
            return Ok(with_platform(&inner));
        }
    }
    Ok(archs)
}
