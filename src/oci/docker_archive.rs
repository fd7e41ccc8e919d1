//! A docker-archive tarball per arch (`docker load -i`): `manifest.json` with `RepoTags`,
//! the config and layer blobs, plus `oci-layout` and `index.json` so the same file is also
//! an OCI archive. Written as a deterministic tar to a temp name, then renamed.

use super::canonical_json;
use super::image::BuiltImage;
use crate::layer::tar::{EntryKind, Header, TarWriter};
use crate::store::StoreError;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

fn header(path: &str, kind: EntryKind, size: u64, mtime: u64) -> Header {
    let mode = if kind == EntryKind::Dir { 0o755 } else { 0o644 };
    Header {
        path: path.into(),
        kind,
        mode,
        uid: 0,
        gid: 0,
        size,
        mtime,
    }
}

/// Writes `image` as a docker archive at `path`, loaded under every one of `repo_tags`.
pub fn write(
    path: &Path,
    image: &BuiltImage,
    repo_tags: &[String],
    index: &[u8],
    mtime: u64,
) -> Result<(), StoreError> {
    let err = |action: &'static str, e: std::io::Error| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source: e,
    };
    let manifest = serde_json::json!([{
        "Config": format!("blobs/sha256/{}", image.config_digest.trim_start_matches("sha256:")),
        "RepoTags": repo_tags,
        "Layers": image.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.trim_start_matches("sha256:"))).collect::<Vec<_>>(),
    }]);
    let manifest = canonical_json(&manifest);
    let tmp = path.with_extension(format!("tar.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut w = TarWriter::new(BufWriter::with_capacity(1 << 20, File::create(&tmp)?));
        w.append(&header("blobs", EntryKind::Dir, 0, mtime), &[])?;
        w.append(&header("blobs/sha256", EntryKind::Dir, 0, mtime), &[])?;
        let mut blobs: Vec<(String, Option<&[u8]>, u64)> = image
            .layers
            .iter()
            .map(|l| (l.digest.clone(), None, l.size))
            .collect();
        blobs.push((
            image.config_digest.clone(),
            Some(&image.config),
            image.config.len() as u64,
        ));
        blobs.push((
            image.manifest_digest.clone(),
            Some(&image.manifest),
            image.manifest.len() as u64,
        ));
        blobs.sort_by(|a, b| a.0.cmp(&b.0));
        blobs.dedup_by(|a, b| a.0 == b.0);
        for (digest, bytes, size) in blobs {
            let hex = digest.trim_start_matches("sha256:");
            let h = header(&format!("blobs/sha256/{hex}"), EntryKind::File, size, mtime);
            match bytes {
                Some(b) => w.append(&h, b)?,
                None => {
                    w.append_reader(&h, File::open(image.blob_dir.join("sha256").join(hex))?)?
                }
            }
        }
        w.append(
            &header("index.json", EntryKind::File, index.len() as u64, mtime),
            index,
        )?;
        w.append(
            &header(
                "manifest.json",
                EntryKind::File,
                manifest.len() as u64,
                mtime,
            ),
            &manifest,
        )?;
        let layout = b"{\"imageLayoutVersion\":\"1.0.0\"}";
        w.append(
            &header("oci-layout", EntryKind::File, layout.len() as u64, mtime),
            layout,
        )?;
        let mut out = w.finish()?;
        out.flush()?;
        out.get_ref().sync_all()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(err("writing", e));
    }
    fs::rename(&tmp, path).map_err(|e| err("renaming into", e))
}
