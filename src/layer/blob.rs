//! Writing a layer: one streaming pass from the tree's entries to a compressed blob file.
//!
//! Why: a layer can be gigabytes. The tar is hashed as it is written (its diff id), fed to
//! the compressor, whose output is hashed (the blob digest) and written to a temp file in
//! the store, renamed to its digest at the end. Nothing of the layer is held whole.

use super::compress::{Compression, Compressor};
use super::tree::Tree;
use sha2::{Digest, Sha256};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A writer that hashes and counts what passes through it.
pub struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The writer, the `sha256:` digest and the byte count of what was written.
    pub fn finish(self) -> (W, String, u64) {
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        (self.inner, digest, self.size)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What a written layer blob is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenBlob {
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    /// `sha256:` of the blob.
    pub digest: String,
    pub size: u64,
    pub tar_size: u64,
}

/// The path of blob `digest` under a blob directory (`…/sha256/<hex>`).
pub fn blob_path(blob_dir: &Path, digest: &str) -> PathBuf {
    blob_dir
        .join("sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// Streams `tree` as a tar through `compression` into `blob_dir`, by way of a temp file in
/// `tmp_dir` (on the same file system). A blob already there with that digest is kept.
pub fn write(
    tree: &Tree,
    compression: Compression,
    blob_dir: &Path,
    tmp_dir: &Path,
) -> io::Result<WrittenBlob> {
    let tmp = tempfile::Builder::new()
        .prefix("layer-")
        .tempfile_in(tmp_dir)?;
    let file = tmp.as_file().try_clone()?;
    let blob = Hashing::new(BufWriter::with_capacity(1 << 20, file));
    let tar = Hashing::new(Compressor::new(compression, blob)?);
    let tar = tree.write_tar(tar)?;
    let (compressor, diff_id, tar_size) = tar.finish();
    let (out, digest, size) = compressor.finish()?.finish();
    out.into_inner().map_err(|e| e.into_error())?;
    let path = blob_path(blob_dir, &digest);
    if !std::fs::metadata(&path).is_ok_and(|m| m.len() == size) {
        std::fs::create_dir_all(path.parent().expect("blob path has a parent"))?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path).map_err(|e| e.error)?;
    }
    Ok(WrittenBlob {
        diff_id,
        digest,
        size,
        tar_size,
    })
}
