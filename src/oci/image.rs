//! One arch's image: its layers (each knowing its digests and size, like
//! go-containerregistry's `v1.Layer`), the image config and the manifest.

use super::metadata::Metadata;
use super::{canonical_json, digest_of, rfc3339};
use crate::layer::compress::Compression;
use crate::recipe::ImageConfig;
use oci_spec::image::{
    Arch, ConfigBuilder, DescriptorBuilder, HistoryBuilder, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// A finished layer blob in the store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BuiltLayer {
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    /// `sha256:` of the blob.
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    /// What the layer holds, for the image history (`component base-system: 81 packages`).
    pub comment: String,
    /// Bytes of the uncompressed tar (what it takes unpacked), for reports; 0 when unknown.
    #[serde(default)]
    pub tar_size: u64,
}

/// Image config settings from the recipes and the lock.
pub struct ConfigSettings<'a> {
    pub arch: &'a str,
    pub config: &'a ImageConfig,
    /// The config's labels and the manifest's annotations (`config.labels` is not read).
    pub metadata: &'a Metadata,
    pub source_date_epoch: u64,
}

/// A built image for one arch: its documents and where its blobs are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltImage {
    pub arch: String,
    pub layers: Vec<BuiltLayer>,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    /// The manifest's annotations, which the image index carries too.
    pub annotations: BTreeMap<String, String>,
    /// Directory holding `sha256/<hex>` blobs (the store's blob directory).
    pub blob_dir: PathBuf,
    /// Documents about the image (SBOMs, provenance), written as OCI 1.1 referrers.
    pub attachments: Vec<Attachment>,
}

/// A document attached to an image: an OCI artifact whose `subject` is the image's
/// manifest, found through the referrers of that manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The artifact type, also the document's media type (`application/spdx+json`).
    pub artifact_type: String,
    pub bytes: Vec<u8>,
    /// The artifact manifest's annotations.
    pub annotations: BTreeMap<String, String>,
}

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn oci_arch(arch: &str) -> (Arch, Option<&'static str>) {
    match arch {
        "arm64" => (Arch::ARM64, Some("v8")),
        _ => (Arch::Amd64, None),
    }
}

fn media(compression: &str) -> MediaType {
    match compression {
        "application/vnd.oci.image.layer.v1.tar+gzip" => MediaType::ImageLayerGzip,
        "application/vnd.oci.image.layer.v1.tar+zstd" => MediaType::ImageLayerZstd,
        _ => MediaType::ImageLayer,
    }
}

/// Builds the config and manifest documents for layers already in `blob_dir`.
pub fn build(settings: &ConfigSettings, layers: Vec<BuiltLayer>, blob_dir: PathBuf) -> BuiltImage {
    let c = settings.config;
    let mut env: Vec<String> = Vec::new();
    if !c.env.contains_key("PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env.extend(c.env.iter().map(|(k, v)| format!("{k}={v}")));
    let mut config = ConfigBuilder::default().env(env);
    if let Some(u) = &c.user {
        config = config.user(u.clone());
    }
    if let Some(w) = &c.workdir {
        config = config.working_dir(w.clone());
    }
    if let Some(e) = &c.entrypoint {
        config = config.entrypoint(e.clone());
    }
    if let Some(cmd) = &c.cmd {
        config = config.cmd(cmd.clone());
    }
    if let Some(p) = &c.exposed_ports {
        config = config.exposed_ports(p.clone());
    }
    let labels = &settings.metadata.labels;
    if !labels.is_empty() {
        config = config.labels(labels.clone().into_iter().collect::<HashMap<_, _>>());
    }
    let created = rfc3339(settings.source_date_epoch);
    let history = layers
        .iter()
        .map(|l| {
            HistoryBuilder::default()
                .created(created.clone())
                .created_by(format!("carbon-store realize: {}", l.comment))
                .comment(l.comment.clone())
                .build()
                .expect("history fields are set")
        })
        .collect::<Vec<_>>();
    let (arch, variant) = oci_arch(settings.arch);
    let mut image = ImageConfigurationBuilder::default()
        .created(created)
        .architecture(arch)
        .os(Os::Linux)
        .config(config.build().expect("config fields are set"))
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>())
                .build()
                .expect("rootfs"),
        )
        .history(history);
    if let Some(v) = variant {
        image = image.variant(v);
    }
    let config_bytes = canonical_json(&image.build().expect("image config fields are set"));
    let config_digest = digest_of(&config_bytes);
    let descriptor = |media_type: MediaType, digest: &str, size: u64| {
        DescriptorBuilder::default()
            .media_type(media_type)
            .digest(oci_spec::image::Digest::try_from(digest).expect("sha256 digest"))
            .size(size)
            .build()
            .expect("descriptor")
    };
    let annotations = settings.metadata.annotations.clone();
    let mut manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(
            MediaType::ImageConfig,
            &config_digest,
            config_bytes.len() as u64,
        ))
        .layers(
            layers
                .iter()
                .map(|l| descriptor(media(&l.media_type), &l.digest, l.size))
                .collect::<Vec<_>>(),
        );
    if !annotations.is_empty() {
        manifest = manifest.annotations(annotations.clone().into_iter().collect::<HashMap<_, _>>());
    }
    let manifest = manifest.build().expect("manifest fields are set");
    let manifest_bytes = canonical_json(&manifest);
    BuiltImage {
        arch: settings.arch.to_string(),
        manifest_digest: digest_of(&manifest_bytes),
        manifest: manifest_bytes,
        config: config_bytes,
        config_digest,
        annotations,
        layers,
        blob_dir,
        attachments: Vec::new(),
    }
}

/// The media type written for a compression.
pub fn layer_media_type(c: Compression) -> String {
    c.media_type().to_string()
}
