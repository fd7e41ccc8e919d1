//! An image's attachments (SBOMs, provenance) on a registry, as OCI 1.1 referrers: pushed
//! after the image, found again by its manifest's digest.
//!
//! A registry that implements the referrers API indexes an artifact manifest by its
//! `subject` and says so with an `OCI-Subject` header; one that does not gets the
//! distribution spec's fallback: an image index under the tag `sha256-<hex of subject>`
//! listing the referrers, which `list` reads when the API is missing.

use super::client::{Payload, Registry, RegistryError, pull_scope};
use super::documents::{Descriptor, OCI_INDEX, OCI_MANIFEST};
use super::push::{BlobBytes, BlobCounts, Uploader, excerpt};
use reqwest::{Method, StatusCode};
use std::io::Read;

/// An artifact to push: its manifest (about a subject) and its one document.
pub struct Artifact {
    pub artifact_type: String,
    pub manifest: Vec<u8>,
    pub document: Vec<u8>,
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Artifact {
    /// The artifact of an attachment to the manifest `subject` (digest, size).
    pub fn of(attachment: &crate::oci::Attachment, subject: (&str, u64)) -> Artifact {
        Artifact {
            artifact_type: attachment.artifact_type.clone(),
            manifest: crate::oci::referrer::manifest(attachment, subject),
            document: attachment.bytes.clone(),
            annotations: attachment.annotations.clone(),
        }
    }

    fn descriptor(&self) -> serde_json::Value {
        let mut d = serde_json::json!({
            "mediaType": OCI_MANIFEST,
            "digest": crate::oci::digest_of(&self.manifest),
            "size": self.manifest.len(),
            "artifactType": self.artifact_type,
        });
        if !self.annotations.is_empty() {
            d["annotations"] = serde_json::json!(self.annotations);
        }
        d
    }
}

/// The fallback tag of a subject: `sha256-<hex>`.
fn fallback_tag(subject: &str) -> String {
    subject.replace(':', "-")
}

/// Pushes `artifacts`, each about its subject: their blobs (each distinct one once),
/// their manifests, then for the subjects the registry does not index itself the fallback
/// tag listing their referrers with what it listed before. Returns the blobs' counts.
pub(super) fn push(
    uploader: &Uploader,
    registry: &Registry,
    repo: &str,
    artifacts: &[(String, &Artifact)],
) -> Result<BlobCounts, RegistryError> {
    let mut counts = BlobCounts::default();
    let mut sent: Vec<String> = Vec::new();
    for (_, a) in artifacts {
        for (bytes, media_type) in [
            (
                crate::oci::referrer::EMPTY_CONFIG,
                crate::oci::referrer::EMPTY_MEDIA_TYPE,
            ),
            (a.document.as_slice(), a.artifact_type.as_str()),
        ] {
            let d = Descriptor {
                media_type: media_type.to_string(),
                digest: crate::oci::digest_of(bytes),
                size: bytes.len() as u64,
            };
            if sent.contains(&d.digest) {
                continue;
            }
            counts.add(d.size, &uploader.blob(BlobBytes::Memory(bytes), &d)?);
            sent.push(d.digest);
        }
    }
    let mut unindexed: Vec<&str> = Vec::new();
    for (subject, a) in artifacts {
        let digest = crate::oci::digest_of(&a.manifest);
        let what = format!(
            "storing the {} referrer of {subject} in {repo}",
            a.artifact_type
        );
        let response =
            super::push::send_manifest(registry, repo, &digest, &a.manifest, OCI_MANIFEST, &what)?;
        if !response.headers().contains_key("OCI-Subject") && !unindexed.contains(&subject.as_str())
        {
            unindexed.push(subject);
        }
    }
    for subject in unindexed {
        let mut listed = fallback_index(registry, repo, subject)?;
        for (_, a) in artifacts.iter().filter(|(s, _)| s == subject) {
            let d = a.descriptor();
            if !listed.iter().any(|l| l["digest"] == d["digest"]) {
                listed.push(d);
            }
        }
        let index = crate::oci::canonical_json(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": listed,
        }));
        super::push::put_manifest(
            registry,
            repo,
            &fallback_tag(subject),
            &index,
            OCI_INDEX,
            &crate::oci::digest_of(&index),
        )?;
    }
    Ok(counts)
}

/// GETs a small JSON document; `None` when the registry answers 404 (or, for the referrers
/// API, that it has no such endpoint).
fn get_json(
    registry: &Registry,
    path: &str,
    accept: &str,
    scope: String,
    what: &str,
) -> Result<Option<serde_json::Value>, RegistryError> {
    let response = registry.send(
        Method::GET,
        registry.url(path),
        &[("Accept", accept.to_string())],
        Payload::Empty,
        &[scope],
        what,
    )?;
    if matches!(
        response.status(),
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::BAD_REQUEST
    ) {
        return Ok(None);
    }
    if !response.status().is_success() {
        let status = response.status();
        return Err(registry.status_error(
            what,
            status,
            &excerpt(&response.text().unwrap_or_default()),
        ));
    }
    let mut bytes = Vec::new();
    response
        .take(4 << 20)
        .read_to_end(&mut bytes)
        .map_err(|e| RegistryError::Connect {
            registry: registry.name.clone(),
            what: what.to_string(),
            reason: e.to_string(),
        })?;
    Ok(serde_json::from_slice(&bytes).ok())
}

/// The descriptors the fallback tag of `subject` lists (none when there is no such tag).
fn fallback_index(
    registry: &Registry,
    repo: &str,
    subject: &str,
) -> Result<Vec<serde_json::Value>, RegistryError> {
    let tag = fallback_tag(subject);
    let found = get_json(
        registry,
        &format!("{repo}/manifests/{tag}"),
        OCI_INDEX,
        pull_scope(repo),
        &format!("the referrers tag {tag} in {repo}"),
    )?;
    Ok(found
        .and_then(|v| v["manifests"].as_array().cloned())
        .unwrap_or_default())
}

/// A referrer a registry lists: its manifest's descriptor and artifact type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub descriptor: Descriptor,
    pub artifact_type: String,
}

/// The referrers of `subject` in `repo`: from the referrers API, else the fallback tag.
pub fn list(registry: &Registry, repo: &str, subject: &str) -> Result<Vec<Listed>, RegistryError> {
    let what = format!("the referrers of {subject} in {repo}");
    let from_api = get_json(
        registry,
        &format!("{repo}/referrers/{subject}"),
        OCI_INDEX,
        pull_scope(repo),
        &what,
    )?
    .and_then(|v| v["manifests"].as_array().cloned());
    let entries = match from_api {
        Some(entries) if !entries.is_empty() => entries,
        _ => fallback_index(registry, repo, subject)?,
    };
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            Some(Listed {
                artifact_type: e["artifactType"].as_str()?.to_string(),
                descriptor: serde_json::from_value(e).ok()?,
            })
        })
        .collect())
}
