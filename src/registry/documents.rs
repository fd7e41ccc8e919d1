//! What push and pull need of an image's documents: which manifests an index names and
//! which blobs (config, layers) a manifest names, in both OCI and Docker media types.
//!
//! Why not oci-spec's types: a pulled document must be stored byte for byte (its digest is
//! its name), and only the descriptors are read; a permissive reader of the descriptors
//! accepts Docker's media types too.

use serde::Deserialize;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The `Accept` header for manifests.
pub fn accept() -> String {
    [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].join(", ")
}

/// A content descriptor (the fields used).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// An index or a manifest.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

/// What a manifest document is.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// An index: its manifests.
    Index {
        media_type: String,
        manifests: Vec<Descriptor>,
    },
    /// A manifest: its config, then its layers.
    Manifest {
        media_type: String,
        blobs: Vec<Descriptor>,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("{what} is not an image index or manifest: {reason}")]
pub struct DocumentError {
    pub what: String,
    pub reason: String,
}

/// Reads a manifest or index; `what` names it in errors. Every digest must be a sha256:
/// an image's blobs are stored under their digests.
pub fn parse(bytes: &[u8], what: &str) -> Result<Parsed, DocumentError> {
    parse_checking(bytes, what, is_sha256_digest)
}

/// Reads the store cache's artifact manifest (`cache push`), whose blobs are store objects
/// under the digest their lock pins: sha256, or sha512 for npm tarballs. Its digests name
/// no file; each is checked again when its blob is fetched.
pub fn parse_cache_artifact(bytes: &[u8], what: &str) -> Result<Parsed, DocumentError> {
    parse_checking(bytes, what, |d| crate::digest::Digest::parse_oci(d).is_ok())
}

fn parse_checking(
    bytes: &[u8],
    what: &str,
    digest_ok: fn(&str) -> bool,
) -> Result<Parsed, DocumentError> {
    let bad = |reason: String| DocumentError {
        what: what.into(),
        reason,
    };
    let doc: Document = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    for d in doc
        .manifests
        .iter()
        .flatten()
        .chain(doc.config.iter())
        .chain(doc.layers.iter().flatten())
    {
        if !digest_ok(&d.digest) {
            return Err(bad(format!("descriptor digest {:?}", d.digest)));
        }
    }
    match (doc.manifests, doc.config) {
        (Some(manifests), None) => Ok(Parsed::Index {
            media_type: doc.media_type.unwrap_or_else(|| OCI_INDEX.into()),
            manifests,
        }),
        (None, Some(config)) => {
            let mut blobs = vec![config];
            blobs.extend(doc.layers.unwrap_or_default());
            Ok(Parsed::Manifest {
                media_type: doc.media_type.unwrap_or_else(|| OCI_MANIFEST.into()),
                blobs,
            })
        }
        _ => Err(bad("neither `manifests` nor `config`".into())),
    }
}

/// `sha256:` and 64 lowercase hex digits: the only digests used as file names.
pub fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_manifest() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":5}}]}}"#
        );
        assert!(
            matches!(parse(index.as_bytes(), "x").unwrap(), Parsed::Index { manifests, .. } if manifests.len() == 1)
        );
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{d}","size":1}},"layers":[{{"digest":"{d}","size":2}}]}}"#
        );
        assert!(
            matches!(parse(manifest.as_bytes(), "x").unwrap(), Parsed::Manifest { blobs, .. } if blobs.len() == 2)
        );
    }

    #[test]
    fn refuses_digests_that_could_name_other_files() {
        for digest in ["sha256:../../etc/passwd", "sha512:00", "sha256:ABCD"] {
            let m = format!(r#"{{"config":{{"digest":"{digest}","size":1}},"layers":[]}}"#);
            assert!(parse(m.as_bytes(), "x").is_err(), "{digest}");
            assert!(parse_cache_artifact(m.as_bytes(), "x").is_err(), "{digest}");
        }
    }

    #[test]
    fn the_cache_artifact_may_list_npm_tarballs_by_sha512_and_images_may_not() {
        let sha512 = format!("sha512:{}", "ab".repeat(64));
        let m = format!(r#"{{"config":{{"digest":"{sha512}","size":1}},"layers":[]}}"#);
        assert!(parse_cache_artifact(m.as_bytes(), "x").is_ok());
        assert!(parse(m.as_bytes(), "x").is_err());
    }
}
