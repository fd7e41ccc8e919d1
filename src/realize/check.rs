//! `realize --check`: the freshly rebuilt layers against the existing output. A difference
//! names the arch, the layer and the first path whose header or content differs.

use super::RealizeError;
use crate::layer::compress::{Compression, decompress};
use crate::oci::BuiltImage;
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

/// (path, header summary, content) of every entry of a tar.
fn entries(tar: &[u8]) -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(tar);
    let Ok(list) = archive.entries() else {
        return out;
    };
    for e in list.flatten() {
        let mut e = e;
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
        let mut data = Vec::new();
        let _ = e.read_to_end(&mut data);
        out.push((path, summary, data));
    }
    out
}

/// Explains the first difference between two layer tars.
pub fn first_difference(old: &[u8], new: &[u8]) -> String {
    let (a, b) = (entries(old), entries(new));
    for i in 0..a.len().max(b.len()) {
        match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) if x.0 != y.0 => {
                return format!(
                    "first differing path: {} (existing) vs {} (rebuilt)",
                    x.0, y.0
                );
            }
            (Some(x), Some(y)) if x.1 != y.1 => {
                return format!(
                    "first differing path: {}: {} (existing) vs {} (rebuilt)",
                    x.0, x.1, y.1
                );
            }
            (Some(x), Some(y)) if x.2 != y.2 => {
                return format!("first differing path: {}: content differs", x.0);
            }
            (Some(x), None) => {
                return format!("first differing path: {} only in the existing layer", x.0);
            }
            (None, Some(y)) => {
                return format!("first differing path: {} only in the rebuilt layer", y.0);
            }
            _ => {}
        }
    }
    "the tars have the same entries; the compressed bytes differ".into()
}

/// The manifest of `arch` in the existing OCI layout, and its blob reader.
fn existing_manifest(
    layout: &Path,
    arch: &str,
) -> Result<Option<(String, serde_json::Value)>, RealizeError> {
    let index = read_json(&layout.join("index.json"))?;
    let wanted_ref = format!("-{arch}");
    let Some(desc) = index["manifests"].as_array().and_then(|m| {
        m.iter().find(|d| {
            d["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .is_some_and(|r| r.ends_with(&wanted_ref))
        })
    }) else {
        return Ok(None);
    };
    let digest = desc["digest"].as_str().unwrap_or("").to_string();
    let manifest = read_json(&blob_path(layout, &digest))?;
    Ok(Some((digest, manifest)))
}

fn blob_path(layout: &Path, digest: &str) -> std::path::PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The layer digests of `arch` in the existing output, read before rebuilding so that only
/// the tars of layers that differ are kept for the report (an image's tars together can
/// exceed the memory). `None` when the output has no image for the arch. Fails when there
/// is no output to compare with.
pub fn existing_layers(
    image: &str,
    out_dir: &Path,
    arch: &str,
) -> Result<Option<std::collections::HashSet<String>>, RealizeError> {
    Ok(
        existing_manifest(&out_dir.join(image), arch)?.map(|(_, manifest)| {
            manifest["layers"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|d| d["digest"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        }),
    )
}

/// Compares the rebuilt images with the existing output; `built` holds, per layer, its tar
/// when it differs from every existing layer (empty otherwise).
pub fn compare(
    image: &str,
    out_dir: &Path,
    built: &[(BuiltImage, Vec<Vec<u8>>)],
    compression: Compression,
) -> Result<(), RealizeError> {
    let layout = out_dir.join(image);
    let blob = |digest: &str| blob_path(&layout, digest);
    let mut problems = Vec::new();
    for (img, tars) in built {
        let Some((existing, manifest)) = existing_manifest(&layout, &img.arch)? else {
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
                    let detail = if tars[i].is_empty() {
                        "the rebuilt layer equals another layer of the existing image: the layer order differs".into()
                    } else {
                        std::fs::read(blob(old))
                            .ok()
                            .and_then(|b| decompress(&b, compression).ok())
                            .map(|old_tar| first_difference(&old_tar, &tars[i]))
                            .unwrap_or_else(|| "the existing layer blob cannot be read".into())
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
            problems.push(format!("{}: manifest differs (existing {existing}, rebuilt {}) although every layer matches: the image config differs", img.arch, img.manifest_digest));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RealizeError::CheckFailed(format!(
            "realize --check found differences:\n  {}",
            problems.join("\n  ")
        )))
    }
}
