//! The OCI image layout: `oci-layout`, `blobs/sha256/…` (hard-linked from the store where
//! possible) and `index.json`, written last and atomically so a reader never sees an index
//! that names missing blobs. `index.json` holds a multi-arch image index under the tag,
//! and each arch's manifest under `<tag>-<arch>` for tools that want one manifest, then
//! each arch's attachments (SBOMs, provenance) as untagged referrers (`referrer.rs`).

use super::image::{BuiltImage, oci_arch};
use super::{canonical_json, digest_of, referrer, rfc3339};
use crate::store::{StoreError, write_atomic};
use oci_spec::image::{DescriptorBuilder, ImageIndexBuilder, MediaType, Os, PlatformBuilder};
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::Path;

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub use super::metadata::CREATED;

fn io(action: &'static str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io {
        action,
        path: path.to_path_buf(),
        source: e,
    }
}

/// Puts a blob into `dir/sha256/<hex>` from the store: a hard link, or a copy across devices.
pub fn place_blob(store_blob_dir: &Path, dir: &Path, digest: &str) -> Result<(), StoreError> {
    let hex = digest.trim_start_matches("sha256:");
    let from = store_blob_dir.join("sha256").join(hex);
    let to_dir = dir.join("sha256");
    fs::create_dir_all(&to_dir).map_err(|e| io("creating", &to_dir, e))?;
    let to = to_dir.join(hex);
    if to.exists() {
        return Ok(());
    }
    let tmp = to_dir.join(format!(".{hex}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    if fs::hard_link(&from, &tmp).is_err() {
        fs::copy(&from, &tmp).map_err(|e| io("copying", &from, e))?;
    }
    fs::rename(&tmp, &to).map_err(|e| io("renaming", &to, e))
}

/// The image index document for all archs (the one a tag points to). It carries the
/// images' annotations (every arch has the same).
pub fn image_index(images: &[BuiltImage], created: u64) -> Vec<u8> {
    let manifests = images
        .iter()
        .map(|img| manifest_descriptor(img, None, created))
        .collect::<Vec<_>>();
    let mut index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests);
    if let Some(first) = images.first().filter(|i| !i.annotations.is_empty()) {
        index = index.annotations(
            first
                .annotations
                .clone()
                .into_iter()
                .collect::<HashMap<_, _>>(),
        );
    }
    canonical_json(&index.build().expect("index"))
}

fn manifest_descriptor(
    img: &BuiltImage,
    ref_name: Option<&str>,
    created: u64,
) -> oci_spec::image::Descriptor {
    let (arch, variant) = oci_arch(&img.arch);
    let mut platform = PlatformBuilder::default().architecture(arch).os(Os::Linux);
    if let Some(v) = variant {
        platform = platform.variant(v);
    }
    let mut annotations = HashMap::new();
    if let Some(r) = ref_name {
        annotations.insert(REF_NAME.to_string(), r.to_string());
        annotations.insert(CREATED.to_string(), rfc3339(created));
    }
    let mut d = DescriptorBuilder::default()
        .media_type(MediaType::ImageManifest)
        .digest(oci_spec::image::Digest::try_from(img.manifest_digest.as_str()).expect("digest"))
        .size(img.manifest.len() as u64)
        .platform(platform.build().expect("platform"));
    if !annotations.is_empty() {
        d = d.annotations(annotations);
    }
    d.build().expect("descriptor")
}

/// Writes (or updates) the layout at `dir` and returns the image index digest.
pub fn write(
    dir: &Path,
    images: &[BuiltImage],
    tag: &str,
    created: u64,
) -> Result<String, StoreError> {
    let blobs = dir.join("blobs");
    fs::create_dir_all(&blobs).map_err(|e| io("creating", &blobs, e))?;
    let mut wanted = BTreeSet::new();
    let put_bytes = |bytes: &[u8]| -> Result<String, StoreError> {
        let digest = digest_of(bytes);
        let path = blobs
            .join("sha256")
            .join(digest.trim_start_matches("sha256:"));
        if !path.exists() {
            write_atomic(&path, bytes)?;
        }
        Ok(digest)
    };
    for img in images {
        for layer in &img.layers {
            place_blob(&img.blob_dir, &blobs, &layer.digest)?;
            wanted.insert(layer.digest.clone());
        }
        wanted.insert(put_bytes(&img.config)?);
        wanted.insert(put_bytes(&img.manifest)?);
    }
    let index = image_index(images, created);
    let index_digest = put_bytes(&index)?;
    wanted.insert(index_digest.clone());
    let mut top = vec![{
        let mut annotations = HashMap::new();
        annotations.insert(REF_NAME.to_string(), tag.to_string());
        annotations.insert(CREATED.to_string(), rfc3339(created));
        DescriptorBuilder::default()
            .media_type(MediaType::ImageIndex)
            .digest(oci_spec::image::Digest::try_from(index_digest.as_str()).expect("digest"))
            .size(index.len() as u64)
            .annotations(annotations)
            .build()
            .expect("descriptor")
    }];
    for img in images {
        top.push(manifest_descriptor(
            img,
            Some(&format!("{tag}-{}", img.arch)),
            created,
        ));
    }
    // Each arch's attachments, as untagged artifact manifests about its manifest.
    for img in images {
        for attachment in &img.attachments {
            wanted.insert(put_bytes(&attachment.bytes)?);
            wanted.insert(put_bytes(referrer::EMPTY_CONFIG)?);
            let manifest = referrer::manifest(
                attachment,
                (&img.manifest_digest, img.manifest.len() as u64),
            );
            let digest = put_bytes(&manifest)?;
            wanted.insert(digest.clone());
            top.push(
                DescriptorBuilder::default()
                    .media_type(MediaType::ImageManifest)
                    .artifact_type(MediaType::Other(attachment.artifact_type.clone()))
                    .digest(oci_spec::image::Digest::try_from(digest.as_str()).expect("digest"))
                    .size(manifest.len() as u64)
                    .build()
                    .expect("descriptor"),
            );
        }
    }
    let top_index = canonical_json(
        &ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(top)
            .build()
            .expect("index"),
    );
    write_atomic(
        &dir.join("oci-layout"),
        b"{\"imageLayoutVersion\":\"1.0.0\"}",
    )?;
    write_atomic(&dir.join("index.json"), &top_index)?;
    // Blobs of earlier builds that nothing references any more.
    if let Ok(entries) = fs::read_dir(blobs.join("sha256")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && !wanted.contains(&format!("sha256:{name}")) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    Ok(index_digest)
}

/// The `index.json` inside a single-arch archive: its manifest under `ref_name`.
pub fn archive_index(img: &BuiltImage, ref_name: &str, created: u64) -> Vec<u8> {
    let d = manifest_descriptor(img, Some(ref_name), created);
    canonical_json(
        &ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![d])
            .build()
            .expect("index"),
    )
}
