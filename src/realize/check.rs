//! `realize --check`: the freshly rebuilt layers against the existing output. A difference
//! names the arch, the layer and the first path whose header or content differs.

use super::RealizeError;
use crate::layer::blob::blob_path;
use crate::layer::compress::{Compression, decoder};
use crate::oci::BuiltImage;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

fn read_json(path: &Path) -> Result<serde_json::Value, RealizeError> {
    let bytes = std::fs::read(path).map_err(|e| {
        RealizeError::CheckFailed(format!(
            "cannot read {}: {e}; realize the image first",
            path.display()
        ))
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| RealizeError::CheckFailed(format!("{}: {e}", path.display())))
}

/// (path, header summary, sha256 of the content) of one tar entry, its content streamed.
fn describe<R: Read>(
    entry: std::io::Result<tar::Entry<R>>,
) -> std::io::Result<(String, String, String)> {
    let mut e = entry?;
    let h = e.header().clone();
    let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
    let link = e
        .link_name_bytes()
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .unwrap_or_default();
    let summary = format!(
        "type {:?} mode {:o} uid {} gid {} mtime {} size {} link {link:?}",
        h.entry_type(),
        h.mode().unwrap_or(0),
        h.uid().unwrap_or(0),
        h.gid().unwrap_or(0),
        h.mtime().unwrap_or(0),
        h.size().unwrap_or(0)
    );
    let mut hasher = Sha256::new();
    std::io::copy(&mut e, &mut hasher)?;
    Ok((path, summary, hex::encode(hasher.finalize())))
}

/// Explains the first difference between two layer tars, read side by side as streams
/// (a layer can be larger than the memory).
pub fn first_difference(old: impl Read, new: impl Read) -> std::io::Result<String> {
    let (mut old, mut new) = (tar::Archive::new(old), tar::Archive::new(new));
    let (mut a, mut b) = (old.entries()?, new.entries()?);
    loop {
        let (x, y) = (
            a.next().map(describe).transpose()?,
            b.next().map(describe).transpose()?,
        );
        let found = match (x, y) {
            (Some(x), Some(y)) if x.0 != y.0 => format!(
                "first differing path: {} (existing) vs {} (rebuilt)",
                x.0, y.0
            ),
            (Some(x), Some(y)) if x.1 != y.1 => format!(
                "first differing path: {}: {} (existing) vs {} (rebuilt)",
                x.0, x.1, y.1
            ),
            (Some(x), Some(y)) if x.2 != y.2 => {
                format!("first differing path: {}: content differs", x.0)
            }
            (Some(x), None) => {
                format!("first differing path: {} only in the existing layer", x.0)
            }
            (None, Some(y)) => {
                format!("first differing path: {} only in the rebuilt layer", y.0)
            }
            (None, None) => "the tars have the same entries; the compressed bytes differ".into(),
            _ => continue,
        };
        return Ok(found);
    }
}

/// The manifest of `arch` in the existing OCI layout (as realize or `pull` wrote it).
fn existing_manifest(
    layout: &Path,
    arch: &str,
) -> Result<Option<(String, serde_json::Value)>, RealizeError> {
    let archs = crate::oci::referrer::arch_manifests(layout)
        .map_err(|e| RealizeError::CheckFailed(format!("{e}; realize the image first")))?;
    let Some(digest) = archs.get(arch) else {
        return Ok(None);
    };
    let manifest = read_json(&blob_path(&layout.join("blobs"), digest))?;
    Ok(Some((digest.clone(), manifest)))
}

/// The first difference between an existing and a rebuilt layer blob, or why it is unknown.
fn explain(old: &Path, new: &Path, compression: Compression) -> String {
    let open = |path: &Path| -> std::io::Result<Box<dyn Read>> {
        decoder(std::fs::File::open(path)?, compression)
    };
    let (old, new) = match (open(old), open(new)) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(e), _) => return format!("the existing layer blob cannot be read: {e}"),
        (_, Err(e)) => return format!("the rebuilt layer blob cannot be read: {e}"),
    };
    first_difference(old, new)
        .unwrap_or_else(|e| format!("the layers cannot be read side by side: {e}"))
}

/// Compares the rebuilt images (their blobs in the store) with the existing OCI layout:
/// digests first; the tars of the first layer that differs are then read side by side.
pub fn compare(
    layout: &Path,
    built: &[BuiltImage],
    compression: Compression,
) -> Result<(), RealizeError> {
    let mut problems = Vec::new();
    for img in built {
        let Some((existing, manifest)) = existing_manifest(layout, &img.arch)? else {
            problems.push(format!(
                "{}: no manifest for this arch in {}",
                img.arch,
                layout.display()
            ));
            continue;
        };
        if existing == img.manifest_digest {
            continue;
        }
        let old_layers: Vec<String> = manifest["layers"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|d| d["digest"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut explained = false;
        for (i, layer) in img.layers.iter().enumerate() {
            match old_layers.get(i) {
                Some(old) if *old == layer.digest => {}
                Some(old) => {
                    let detail = if old_layers.contains(&layer.digest) {
                        "the rebuilt layer equals another layer of the existing image: the layer order differs".into()
                    } else {
                        explain(
                            &blob_path(&layout.join("blobs"), old),
                            &blob_path(&img.blob_dir, &layer.digest),
                            compression,
                        )
                    };
                    problems.push(format!(
                        "{}: layer {} ({}) differs: existing {old}, rebuilt {}; {detail}",
                        img.arch,
                        i + 1,
                        layer.comment,
                        layer.digest
                    ));
                    explained = true;
                    break;
                }
                None => {
                    problems.push(format!(
                        "{}: the rebuilt image has more layers ({}) than the existing one ({})",
                        img.arch,
                        img.layers.len(),
                        old_layers.len()
                    ));
                    explained = true;
                    break;
                }
            }
        }
        if !explained {
            let what = if manifest["config"]["digest"].as_str() == Some(img.config_digest.as_str())
            {
                // Same layers, same config: only the annotations are left.
                format!(
                    "the annotations differ (existing {}, rebuilt {:?}); a git revision or an --annotation changed",
                    manifest["annotations"], img.annotations
                )
            } else {
                "the image config differs".to_string()
            };
            problems.push(format!(
                "{}: manifest differs (existing {existing}, rebuilt {}) although every layer matches: {what}",
                img.arch, img.manifest_digest
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RealizeError::CheckFailed(format!(
            "the rebuilt image differs:\n  {}",
            problems.join("\n  ")
        )))
    }
}
