//! Layers known by their inputs, so that a realize whose wheels were installed before
//! reuses the layer instead of unpacking, hashing, byte-compiling and compressing them again,
//! and one whose Debian packages were unpacked before never decompresses a `.deb` again.
//!
//! A Python layer's bytes follow from its wheels, the venv settings, the interpreter that
//! compiled its byte-code and this tool's sources (the key), and from the metadata of the
//! directories below it that the cross-layer reconciliation copies in. The record keeps the
//! layer's tree without file contents (so that conflict checks and fixups see the same
//! paths as on a fresh build), a digest of that tree after reconciliation, and the diff id.
//! A hit is used only when today's reconciliation gives the same digest and the compressed
//! blob is still in the store; otherwise the layer is built afresh.
//!
//! The Debian side of an arch (its package layers, and what the fixups and the cross-layer
//! rules need of its packages) is recorded as a whole under a key over the arch, the
//! components and every locked package's hash and component. Those layers sit at the bottom
//! of the image, so nothing below them can change; the record is used while every one of
//! their blobs is in the store.

use crate::debian::copyright::Licensing;
use crate::fixup::InstalledPackage;
use crate::layer::tar::EntryKind;
use crate::layer::tree::{Node, Tree};
use crate::lockfile::DebianArtifact;
use crate::store::{Store, StoreError, write_atomic};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The inputs of one layer, hashed into its cache key in the order given.
#[derive(Default)]
pub struct InputKey {
    hasher: Sha256,
}

impl InputKey {
    pub fn new() -> InputKey {
        let mut key = InputKey::default();
        key.add(super::layers::LAYER_FORMAT);
        key.add(env!("CARBON_SOURCE_HASH"));
        key
    }

    /// Adds one input; inputs are separated so that ("ab", "c") differs from ("a", "bc").
    pub fn add(&mut self, part: &str) {
        self.hasher.update((part.len() as u64).to_le_bytes());
        self.hasher.update(part.as_bytes());
    }

    pub fn finish(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

#[derive(Serialize, Deserialize)]
struct SkeletonNode {
    path: String,
    kind: EntryKind,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    package: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Record {
    diff_id: String,
    /// For a record of inputs that give no layer: the key of the record those inputs
    /// derive from (an arch's Debian side), which gc keeps it with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    derived_from: Option<String>,
    /// [`skeleton_digest`] of the tree after reconciliation when the layer was built.
    reconciled: String,
    nodes: Vec<SkeletonNode>,
}

/// A layer taken from the cache: its diff id and the digest its reconciled tree must have.
#[derive(Clone, Debug)]
pub struct Prebuilt {
    pub key: String,
    pub diff_id: String,
    pub reconciled: String,
}

fn record_path(store: &Store, key: &str) -> PathBuf {
    store
        .area(crate::store::Area::Layers)
        .join(format!("inputs-{key}.json"))
}

/// A digest of everything in the tree's tar except file contents and sizes (which the key
/// fixes).
pub fn skeleton_digest(tree: &Tree) -> String {
    let mut h = Sha256::new();
    for (path, node) in &tree.nodes {
        let line = serde_json::to_vec(&skeleton_node(path, node)).expect("node serializes");
        h.update((line.len() as u64).to_le_bytes());
        h.update(&line);
    }
    hex::encode(h.finalize())
}

fn skeleton_node(path: &str, node: &Node) -> SkeletonNode {
    SkeletonNode {
        path: path.to_string(),
        kind: node.kind.clone(),
        mode: node.mode,
        uid: node.uid,
        gid: node.gid,
        mtime: node.mtime,
        package: node.package.clone(),
    }
}

/// A contents-less tree from recorded nodes.
fn tree_of(recorded: Vec<SkeletonNode>) -> Tree {
    let nodes = recorded
        .into_iter()
        .map(|n| {
            let node = Node {
                kind: n.kind,
                mode: n.mode,
                uid: n.uid,
                gid: n.gid,
                mtime: n.mtime,
                content: crate::layer::content::Content::default(),
                package: n.package,
            };
            (n.path, node)
        })
        .collect();
    Tree { nodes }
}

/// What a record says of its inputs.
pub enum Recorded {
    /// A layer: its contents-less tree and diff id.
    Layer(Tree, Prebuilt),
    /// Inputs found to give no layer ([`save_none`]).
    NoLayer,
}

/// What is recorded under `key`: inputs known to give no layer, or a layer whose blob
/// `blob_exists` still finds, as a contents-less tree (the nodes' data are empty; only
/// metadata is kept). One read of the record.
pub fn lookup_recorded(
    store: &Store,
    key: &str,
    blob_exists: impl Fn(&str) -> bool,
) -> Option<Recorded> {
    let text = std::fs::read(record_path(store, key)).ok()?;
    let record: Record = serde_json::from_slice(&text).ok()?;
    if record.diff_id.is_empty() {
        return Some(Recorded::NoLayer);
    }
    if !blob_exists(&record.diff_id) {
        return None;
    }
    Some(Recorded::Layer(
        tree_of(record.nodes),
        Prebuilt {
            key: key.to_string(),
            diff_id: record.diff_id,
            reconciled: record.reconciled,
        },
    ))
}

/// The layer recorded under `key`, as [`lookup_recorded`] finds it.
pub fn lookup(
    store: &Store,
    key: &str,
    blob_exists: impl Fn(&str) -> bool,
) -> Option<(Tree, Prebuilt)> {
    match lookup_recorded(store, key, blob_exists)? {
        Recorded::Layer(tree, prebuilt) => Some((tree, prebuilt)),
        Recorded::NoLayer => None,
    }
}

/// Records a freshly built layer: `built` is its tree before reconciliation,
/// `reconciled` its [`skeleton_digest`] after.
pub fn save(
    store: &Store,
    key: &str,
    built: &Tree,
    reconciled: &str,
    diff_id: &str,
) -> Result<(), StoreError> {
    let record = Record {
        diff_id: diff_id.to_string(),
        derived_from: None,
        reconciled: reconciled.to_string(),
        nodes: built
            .nodes
            .iter()
            .map(|(path, node)| skeleton_node(path, node))
            .collect(),
    };
    write_atomic(
        &record_path(store, key),
        &serde_json::to_vec(&record).expect("record serializes"),
    )
}

/// Records that these inputs give no layer at all (an empty diff id), so that the next
/// realize need not read the inputs again to find that out. `derived_from` is the key of
/// the record the inputs derive from (an arch's Debian side): gc keeps this record as long
/// as that one.
pub fn save_none(store: &Store, key: &str, derived_from: &str) -> Result<(), StoreError> {
    let record = Record {
        diff_id: String::new(),
        derived_from: Some(derived_from.to_string()),
        reconciled: String::new(),
        nodes: Vec::new(),
    };
    write_atomic(
        &record_path(store, key),
        &serde_json::to_vec(&record).expect("record serializes"),
    )
}

/// File contents in a record: as text when they are UTF-8 (control files, templates),
/// otherwise hex.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Bytes {
    Text(String),
    Hex(String),
}

impl Bytes {
    fn from(data: &[u8]) -> Bytes {
        match std::str::from_utf8(data) {
            Ok(text) => Bytes::Text(text.to_string()),
            Err(_) => Bytes::Hex(hex::encode(data)),
        }
    }

    fn into_vec(self) -> Option<Vec<u8>> {
        match self {
            Bytes::Text(text) => Some(text.into_bytes()),
            Bytes::Hex(h) => hex::decode(h).ok(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct PackageRecord {
    name: String,
    architecture: String,
    multi_arch_same: bool,
    control: BTreeMap<String, Bytes>,
    list: Vec<String>,
    conffiles: Vec<(String, String)>,
    licenses: Licensing,
}

#[derive(Serialize, Deserialize)]
struct DebianLayerRecord {
    comment: String,
    diff_id: String,
    /// The layer's tree as built, before the cross-layer rules.
    nodes: Vec<SkeletonNode>,
}

#[derive(Serialize, Deserialize)]
struct DebianRecord {
    /// Every layer's diff id, for `gc`.
    diff_ids: Vec<String>,
    layers: Vec<DebianLayerRecord>,
    /// In lock order.
    packages: Vec<PackageRecord>,
    retained: BTreeMap<String, Bytes>,
}

/// One Debian package layer as recorded.
pub struct DebianLayer {
    pub comment: String,
    pub diff_id: String,
    /// Metadata only: file contents are empty.
    pub tree: Tree,
}

/// An arch's Debian side without its file contents: what a realize needs of it once its
/// layers are in the store.
pub struct DebianSide {
    pub layers: Vec<DebianLayer>,
    /// In lock order.
    pub packages: Vec<InstalledPackage>,
    pub retained: BTreeMap<String, Vec<u8>>,
}

/// The key of an arch's Debian side: what its package layers and package records follow from.
pub fn debian_key(arch: &str, components: &[String], artifacts: &[DebianArtifact]) -> String {
    let mut key = InputKey::new();
    // The record holds each package's license names since version 2.
    key.add("debian layers 2");
    key.add(arch);
    for c in components {
        key.add(c);
    }
    key.add("");
    for a in artifacts {
        key.add(&a.name);
        key.add(&a.version);
        key.add(&a.component);
        key.add(&a.sha256);
    }
    key.finish()
}

/// The record of an arch's Debian side, if every one of its layers' blobs (checked with
/// `blob_exists`) is still in the store.
pub fn lookup_debian(
    store: &Store,
    key: &str,
    blob_exists: impl Fn(&str) -> bool,
) -> Option<DebianSide> {
    let text = std::fs::read(record_path(store, key)).ok()?;
    let record: DebianRecord = serde_json::from_slice(&text).ok()?;
    if !record.layers.iter().all(|l| blob_exists(&l.diff_id)) {
        return None;
    }
    let layers = record
        .layers
        .into_iter()
        .map(|l| DebianLayer {
            comment: l.comment,
            diff_id: l.diff_id,
            tree: tree_of(l.nodes),
        })
        .collect();
    let packages = record
        .packages
        .into_iter()
        .map(|p| {
            Some(InstalledPackage {
                name: p.name,
                architecture: p.architecture,
                multi_arch_same: p.multi_arch_same,
                control: p
                    .control
                    .into_iter()
                    .map(|(k, v)| v.into_vec().map(|v| (k, v)))
                    .collect::<Option<_>>()?,
                list: p.list,
                conffiles: p.conffiles,
                licenses: p.licenses,
            })
        })
        .collect::<Option<_>>()?;
    let retained = record
        .retained
        .into_iter()
        .map(|(k, v)| v.into_vec().map(|v| (k, v)))
        .collect::<Option<_>>()?;
    Some(DebianSide {
        layers,
        packages,
        retained,
    })
}

/// Records a freshly built Debian side (layer trees as built, before the cross-layer rules).
pub fn save_debian(
    store: &Store,
    key: &str,
    layers: &[DebianLayer],
    packages: &[InstalledPackage],
    retained: &BTreeMap<String, Vec<u8>>,
) -> Result<(), StoreError> {
    let record = DebianRecord {
        diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        layers: layers
            .iter()
            .map(|l| DebianLayerRecord {
                comment: l.comment.clone(),
                diff_id: l.diff_id.clone(),
                nodes: l
                    .tree
                    .nodes
                    .iter()
                    .map(|(path, node)| skeleton_node(path, node))
                    .collect(),
            })
            .collect(),
        packages: packages
            .iter()
            .map(|p| PackageRecord {
                name: p.name.clone(),
                architecture: p.architecture.clone(),
                multi_arch_same: p.multi_arch_same,
                control: p
                    .control
                    .iter()
                    .map(|(k, v)| (k.clone(), Bytes::from(v)))
                    .collect(),
                list: p.list.clone(),
                conffiles: p.conffiles.clone(),
                licenses: p.licenses.clone(),
            })
            .collect(),
        retained: retained
            .iter()
            .map(|(k, v)| (k.clone(), Bytes::from(v)))
            .collect(),
    };
    write_atomic(
        &record_path(store, key),
        &serde_json::to_vec(&record).expect("record serializes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(data: &[u8]) -> Node {
        Node {
            kind: EntryKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1,
            content: data.to_vec().into(),
            package: Some("pkg".into()),
        }
    }

    #[test]
    fn key_separates_inputs() {
        let key = |parts: &[&str]| {
            let mut k = InputKey::new();
            for p in parts {
                k.add(p);
            }
            k.finish()
        };
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
        assert_eq!(key(&["ab", "c"]), key(&["ab", "c"]));
    }

    #[test]
    fn skeleton_digest_sees_metadata_not_contents() {
        let mut a = Tree::default();
        a.put("x", file(b"one"));
        let mut b = Tree::default();
        b.put("x", file(b"three"));
        assert_eq!(skeleton_digest(&a), skeleton_digest(&b));
        let mut c = Tree::default();
        c.put("y", file(b"one"));
        assert_ne!(skeleton_digest(&a), skeleton_digest(&c));
        let mut d = Tree::default();
        let mut n = file(b"one");
        n.mode = 0o755;
        d.put("x", n);
        assert_ne!(skeleton_digest(&a), skeleton_digest(&d));
    }

    #[test]
    fn saved_layers_come_back_without_contents_only_while_the_blob_exists() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut tree = Tree::default();
        tree.put("x", file(b"data"));
        save(&store, "k", &tree, "r", "sha256:abc").unwrap();
        let (back, prebuilt) = lookup(&store, "k", |_| true).unwrap();
        assert!(back.nodes["x"].content.is_empty());
        assert_eq!(skeleton_digest(&back), skeleton_digest(&tree));
        assert_eq!(prebuilt.diff_id, "sha256:abc");
        assert!(lookup(&store, "k", |_| false).is_none());
        assert!(lookup(&store, "other", |_| true).is_none());
    }
}
