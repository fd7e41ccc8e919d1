//! A SLSA provenance v1 statement (in-toto Statement v1) for one arch's image: what was
//! built (the manifest digest), from what (the lock by sha256, the recipes hash, every
//! artifact by digest) and by which build of carbon-store. It holds no secret, host path
//! or clock time, and is what `verify-image` reads to rebuild the image.

use super::Inventory;
use serde_json::json;

/// The media type of the statement (as an OCI artifact type too).
pub const MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// The statement's predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What `buildDefinition.buildType` says: a realize of carbon-store, this version of the
/// parameters.
pub const BUILD_TYPE: &str = "urn:carbon-store:realize:v1";

/// How the image was built, beside its inventory.
#[derive(Clone, Debug)]
pub struct BuildFacts {
    /// `sha256:…` of the lockfile's bytes.
    pub lockfile: String,
    /// The lock's recipes hash (`sha256:…`).
    pub recipes: String,
    /// `gzip` or `zstd`.
    pub compression: String,
    /// The `name:tag` docker archives are written under.
    pub repo_tag: String,
    /// The version of the layers' byte format.
    pub layer_format: &'static str,
    /// The mirrors the image's apt sources name (its top layer).
    pub image_mirrors: crate::config::image_mirrors::ImageMirrors,
}

/// What `verify-image` needs back from a statement.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    pub image: String,
    pub arch: String,
    pub lockfile: String,
    pub recipes: String,
    pub compression: String,
    pub repo_tag: String,
    /// Absent from statements of images without apt sources.
    #[serde(default)]
    pub image_mirrors: crate::config::image_mirrors::ImageMirrors,
}

fn digest_map(digest: &crate::digest::Digest) -> serde_json::Value {
    json!({ digest.algorithm(): digest.hex() })
}

/// The statement, as canonical JSON bytes.
pub fn statement(inventory: &Inventory, facts: &BuildFacts) -> Vec<u8> {
    let s = &inventory.subject;
    let manifest = crate::digest::Digest::parse_oci(&s.manifest_digest).expect("a manifest digest");
    let dependencies: Vec<_> = inventory
        .packages
        .iter()
        .map(|p| {
            json!({
                "uri": p.purl,
                "name": p.file,
                "digest": digest_map(&p.digest),
            })
        })
        .collect();
    let doc = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": s.image, "digest": digest_map(&manifest) }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "image": s.image,
                    "arch": s.arch,
                    "lockfile": facts.lockfile,
                    "recipes": facts.recipes,
                    "compression": facts.compression,
                    "repoTag": facts.repo_tag,
                    "imageMirrors": facts.image_mirrors,
                },
                "internalParameters": {
                    "sourceDateEpoch": s.source_date_epoch,
                    "layerFormat": facts.layer_format,
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {
                    "id": "urn:carbon-store:builder",
                    "version": {
                        "carbon-store": env!("CARGO_PKG_VERSION"),
                        "source": format!("sha256:{}", env!("CARBON_SOURCE_HASH")),
                    },
                },
                "metadata": {
                    "invocationId": format!("urn:uuid:{}", inventory.uuid("provenance")),
                },
            },
        },
    });
    crate::oci::canonical_json(&doc)
}

/// The build parameters of a statement written by [`statement`].
pub fn parameters(statement: &[u8]) -> Result<Parameters, String> {
    let value: serde_json::Value =
        serde_json::from_slice(statement).map_err(|e| format!("not JSON: {e}"))?;
    if value["predicateType"] != PREDICATE_TYPE
        || value["predicate"]["buildDefinition"]["buildType"] != BUILD_TYPE
    {
        return Err(format!(
            "not a carbon-store provenance (build type {})",
            value["predicate"]["buildDefinition"]["buildType"]
        ));
    }
    serde_json::from_value(value["predicate"]["buildDefinition"]["externalParameters"].clone())
        .map_err(|e| format!("its parameters: {e}"))
}
