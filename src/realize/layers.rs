//! Turning an arch's packages into layers: one per component in image order (a package of
//! 200 MB or more gets its own), directory metadata as the first layer defines it, files
//! checked for conflicts across layers, then tar + compression in one streaming pass into
//! the store, reusing any layer whose inputs say the store already has it.

use super::packages::{LoadedPackage, ReplacesTable};
use crate::layer::blob;
use crate::layer::compress::Compression;
use crate::layer::tar::EntryKind;
use crate::layer::tree::{Tree, TreeError};
use crate::oci::BuiltLayer;
use crate::store::{Store, StoreError, write_atomic};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;

/// A package this big (uncompressed) gets a layer of its own, shared by every image using it.
pub const OWN_LAYER_BYTES: u64 = 200 * 1024 * 1024;
/// Layers an image may have, the fixups layer included.
pub const MAX_LAYERS: usize = 100;
/// Bump when the bytes of layers change for the same inputs (cache key). 2: byte-code is
/// compiled one file per process (docs/architecture.md, "Byte-code"). 3: gzip level 5.
pub const LAYER_FORMAT: &str = "carbon-store layer format 3";

/// Which packages go into one layer, and what the history says of it.
pub struct LayerPlan {
    pub comment: String,
    pub packages: Vec<usize>,
}

/// Groups packages (indexes into `packages`) into layers, in component order.
pub fn plan(components: &[String], packages: &[LoadedPackage]) -> Vec<LayerPlan> {
    let mut out = Vec::new();
    for component in components {
        let mut members: Vec<usize> = (0..packages.len())
            .filter(|&i| &packages[i].artifact.component == component)
            .collect();
        members.sort_by(|&a, &b| packages[a].artifact.name.cmp(&packages[b].artifact.name));
        let (big, small): (Vec<usize>, Vec<usize>) = members
            .into_iter()
            .partition(|&i| packages[i].data_size >= OWN_LAYER_BYTES);
        if !small.is_empty() {
            out.push(LayerPlan {
                comment: format!("component {component}: {} packages", small.len()),
                packages: small,
            });
        }
        for i in big {
            out.push(LayerPlan {
                comment: format!(
                    "component {component}: package {}",
                    packages[i].artifact.name
                ),
                packages: vec![i],
            });
        }
    }
    // Keep room for the fixups layer: fold the excess into the last package layer.
    while out.len() > MAX_LAYERS - 1 {
        let last = out.pop().expect("more than one layer");
        let prev = out.last_mut().expect("more than one layer");
        prev.packages.extend(last.packages);
        prev.comment = format!("{} + {}", prev.comment, last.comment);
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("layer {0} left the store while being reused; run the command again")]
    Vanished(String),
}

/// Builds each planned layer's tree in parallel, consuming the packages' entries.
pub fn trees(
    plans: &[LayerPlan],
    packages: &mut [LoadedPackage],
    replaces: &ReplacesTable,
) -> Result<Vec<Tree>, LayerError> {
    let mut entries: Vec<Option<Vec<crate::layer::tree::Entry>>> = packages
        .iter_mut()
        .map(|p| Some(std::mem::take(&mut p.entries)))
        .collect();
    let inputs: Vec<Vec<(String, Vec<crate::layer::tree::Entry>)>> = plans
        .iter()
        .map(|plan| {
            plan.packages
                .iter()
                .map(|&i| {
                    (
                        packages[i].artifact.name.clone(),
                        entries[i].take().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .collect();
    let allows = |new: &str, old: &str| replaces.allows(new, old);
    inputs
        .into_par_iter()
        .map(|members| {
            let mut tree = Tree::default();
            for (name, entries) in members {
                tree.add_package(&name, entries, &allows)?;
            }
            Ok(tree)
        })
        .collect::<Vec<Result<Tree, LayerError>>>()
        .into_iter()
        .collect()
}

/// The cross-layer rules, applied one layer at a time from the bottom up: directory
/// metadata as the lowest layer defining it has it (a recipe's `[[path]]` directory keeps
/// its own), and files that two layers' packages both ship are conflicts unless the upper
/// one `Replaces` the lower. Keeps only metadata of the layers seen, so that each layer can
/// be written and dropped before the next is built.
#[derive(Default)]
pub struct Reconciler {
    dirs: HashMap<String, (u32, u64, u64, u64)>,
    files: HashMap<String, String>,
}

impl Reconciler {
    /// Applies the rules to the next layer up.
    pub fn apply(&mut self, tree: &mut Tree, replaces: &ReplacesTable) -> Result<(), TreeError> {
        for (path, node) in tree.nodes.iter_mut() {
            if node.kind == EntryKind::Dir
                && node.package.as_deref() != Some(crate::fixup::recipe_paths::RECIPE_DIR)
            {
                match self.dirs.get(path) {
                    Some(&(mode, uid, gid, mtime)) => {
                        node.mode = mode;
                        node.uid = uid;
                        node.gid = gid;
                        node.mtime = mtime;
                    }
                    None => {
                        self.dirs
                            .insert(path.clone(), (node.mode, node.uid, node.gid, node.mtime));
                    }
                }
            }
        }
        let mut new_files = Vec::new();
        for (path, package) in tree.owned_files() {
            if let Some(old) = self.files.get(path)
                && old != package
                && !replaces.allows(package, old)
            {
                return Err(TreeError::Conflict {
                    path: path.clone(),
                    first: old.clone(),
                    second: package.to_string(),
                });
            }
            new_files.push((path.clone(), package.to_string()));
        }
        self.files.extend(new_files);
        Ok(())
    }
}

/// The store's blob directory (`store/blobs`, holding `sha256/<hex>`).
pub fn blob_dir(store: &Store) -> PathBuf {
    store.area(crate::store::Area::Blobs)
}

/// Where the store keeps the blob of `digest`.
pub fn blob_path(store: &Store, digest: &str) -> PathBuf {
    blob_dir(store)
        .join("sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// Removes a layer from the store (its record first, so that it is never found without its
/// blob): for a realize that pushed it and keeps no image on disk.
pub fn forget(store: &Store, layer: &BuiltLayer, compression: Compression) {
    let _ = std::fs::remove_file(cache_path(store, &layer.diff_id, compression));
    let _ = std::fs::remove_file(blob_path(store, &layer.digest));
}

fn cache_path(store: &Store, diff_id: &str, compression: Compression) -> PathBuf {
    store.area(crate::store::Area::Layers).join(format!(
        "{}-{}.json",
        diff_id.trim_start_matches("sha256:"),
        compression.name()
    ))
}

/// The layer with this diff id, if the store has it in `compression`.
pub fn cached(store: &Store, diff_id: &str, compression: Compression) -> Option<BuiltLayer> {
    let text = std::fs::read_to_string(cache_path(store, diff_id, compression)).ok()?;
    let layer = serde_json::from_str::<BuiltLayer>(&text).ok()?;
    std::fs::metadata(blob_path(store, &layer.digest))
        .is_ok_and(|m| m.len() == layer.size)
        .then_some(layer)
}

/// Whether the store holds any layer in `compression`: when it holds none (a new store),
/// hashing a tar first to look for it could only cost time. Asked once, before a build
/// writes its first layer: the layers it writes itself are never found again by it, and
/// asking after each one would hash every later tar twice.
pub fn any_cached(store: &Store, compression: Compression) -> bool {
    let suffix = format!("-{}.json", compression.name());
    std::fs::read_dir(store.area(crate::store::Area::Layers)).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && !name.starts_with("inputs-") && name.ends_with(&suffix)
        })
    })
}

/// Writes (or reuses) one layer: its tar streamed through the compressor into a blob of
/// the store, hashed on the way (diff id and digest). A `prebuilt` layer (its diff id known
/// from its inputs) is taken from the store without a tar. With `look_up` (the store held
/// layers when the build began, see [`any_cached`]), the tar is first only hashed: a layer
/// the store has by that diff id is not compressed again (hashing reads at several times
/// the speed compression writes).
pub fn finish(
    store: &Store,
    tree: &Tree,
    prebuilt: Option<&str>,
    comment: &str,
    compression: Compression,
    look_up: bool,
) -> Result<BuiltLayer, LayerError> {
    if let Some(diff_id) = prebuilt {
        let mut layer = cached(store, diff_id, compression)
            .ok_or_else(|| LayerError::Vanished(diff_id.to_string()))?;
        layer.comment = comment.to_string();
        return Ok(layer);
    }
    let blobs = blob_dir(store);
    if look_up {
        let (_, diff_id, tar_size) = tree
            .write_tar(blob::Hashing::new(std::io::sink()))
            .map_err(|e| StoreError::io("reading the files of a layer for", &blobs, e))?
            .finish();
        if let Some(mut layer) = cached(store, &diff_id, compression) {
            layer.comment = comment.to_string();
            layer.tar_size = tar_size;
            return Ok(layer);
        }
    }
    let written = blob::write(
        tree,
        compression,
        &blobs,
        &store.area(crate::store::Area::Tmp),
    )
    .map_err(|e| StoreError::io("writing a layer into", &blobs, e))?;
    let layer = BuiltLayer {
        diff_id: written.diff_id,
        digest: written.digest,
        size: written.size,
        media_type: compression.media_type().to_string(),
        comment: comment.to_string(),
        tar_size: written.tar_size,
    };
    write_atomic(
        &cache_path(store, &layer.diff_id, compression),
        &serde_json::to_vec(&layer).expect("layer metadata serializes"),
    )?;
    Ok(layer)
}
