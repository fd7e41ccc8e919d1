//! What package maintainer scripts would have done, done declaratively.
//!
//! No script runs at build time. Each submodule produces the files one family of scripts
//! writes (the dpkg database, accounts, alternatives, base-files and friends, CA
//! certificates, recipe paths) into the image's final, small fixups layer. Every file made
//! here has `SOURCE_DATE_EPOCH` as its mtime.

mod accounts;
mod alternatives;
mod base;
mod certificates;
mod dpkg_db;
mod java_keystore;
mod pam;
pub mod recipe_paths;

use crate::layer::content::{Content, Spill};
use crate::layer::tar::EntryKind;
use crate::layer::tree::{Node, Tree};
use crate::recipe::{PathSpec, UserSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// What the fixups need to know about one installed package.
#[derive(Clone, Debug, Default)]
pub struct InstalledPackage {
    pub name: String,
    pub architecture: String,
    pub multi_arch_same: bool,
    /// Control members by name (`control`, `md5sums`, `conffiles`, `postinst`, …).
    pub control: BTreeMap<String, Vec<u8>>,
    /// The package's paths as dpkg lists them: `/.`, then `/usr`, `/usr/bin`, … in archive order.
    pub list: Vec<String>,
    /// (conffile path, md5 of its shipped content).
    pub conffiles: Vec<(String, String)>,
    /// The license names of its copyright file, for the SBOMs.
    pub licenses: crate::debian::copyright::Licensing,
}

impl InstalledPackage {
    /// `name` or `name:arch` for Multi-Arch: same packages, as dpkg names info files.
    pub fn info_name(&self) -> String {
        if self.multi_arch_same {
            format!("{}:{}", self.name, self.architecture)
        } else {
            self.name.clone()
        }
    }

    pub fn member_text(&self, name: &str) -> Option<String> {
        self.control
            .get(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// Everything the fixups read: the image's packages and files, and the recipe settings.
pub struct FixupInput<'a> {
    pub arch: &'a str,
    pub source_date_epoch: u64,
    /// Sorted by name.
    pub packages: &'a [InstalledPackage],
    /// Every path in the image's package layers (after merged /usr), files and dirs.
    pub paths: &'a BTreeSet<String>,
    /// Content of the few package files fixups copy or read (see [`RETAINED_PREFIXES`]).
    pub retained: &'a BTreeMap<String, Vec<u8>>,
    pub users: &'a [UserSpec],
    pub recipe_paths: &'a [PathSpec],
    /// `recipes/files/`, where `kind = "file"` paths come from.
    pub files_dir: PathBuf,
    /// Where the bytes of recipe files go (they may be large).
    pub spill: &'a Spill,
}

/// Package files whose content fixups need; the unpacker keeps these in memory.
pub const RETAINED_PREFIXES: &[&str] = &[
    "usr/share/base-passwd/",
    "usr/share/base-files/",
    "usr/share/libc-bin/",
    "usr/share/debianutils/",
    "usr/share/ca-certificates/",
    "etc/ca-certificates.conf",
    "usr/share/pam/",
    "usr/share/pam-configs/",
];

#[derive(Debug, thiserror::Error)]
pub enum FixupError {
    #[error("recipe path {path}: {reason}")]
    RecipePath { path: String, reason: String },
    #[error("user {name}: {reason}")]
    User { name: String, reason: String },
}

impl<'a> FixupInput<'a> {
    pub fn has_package(&self, name: &str) -> bool {
        self.packages
            .binary_search_by(|p| p.name.as_str().cmp(name))
            .is_ok()
    }

    pub fn exists(&self, path: &str) -> bool {
        self.paths.contains(path.trim_start_matches('/'))
    }

    pub fn retained(&self, path: &str) -> Option<&'a [u8]> {
        self.retained
            .get(path.trim_start_matches('/'))
            .map(Vec::as_slice)
    }

    fn node(&self, kind: EntryKind, mode: u32, content: Content) -> Node {
        Node {
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: self.source_date_epoch,
            content,
            package: None,
        }
    }

    pub fn file(&self, data: impl Into<Vec<u8>>, mode: u32) -> Node {
        self.node(EntryKind::File, mode, Content::Inline(data.into()))
    }

    /// A file whose bytes are already somewhere (a spill file).
    pub fn file_with(&self, content: Content, mode: u32) -> Node {
        self.node(EntryKind::File, mode, content)
    }

    pub fn dir(&self, mode: u32) -> Node {
        self.node(EntryKind::Dir, mode, Content::default())
    }

    pub fn symlink(&self, target: &str) -> Node {
        self.node(
            EntryKind::Symlink(target.to_string()),
            0o777,
            Content::default(),
        )
    }
}

/// Builds the fixups layer's tree.
pub fn build(input: &FixupInput) -> Result<Tree, FixupError> {
    let mut tree = Tree::default();
    let accounts = accounts::build(input, &mut tree)?;
    base::build(input, &accounts, &mut tree);
    alternatives::build(input, &mut tree);
    certificates::build(input, &mut tree);
    java_keystore::build(input, &mut tree);
    pam::build(input, &mut tree);
    dpkg_db::build(input, &mut tree);
    recipe_paths::build(input, &accounts, &mut tree)?;
    Ok(tree)
}

/// Every parent directory of `path` that the tree lacks, so the fixups layer is
/// self-describing; their metadata is replaced by the lower layers' where those have them.
pub(crate) fn ensure_parents(input: &FixupInput, tree: &mut Tree, path: &str) {
    let mut prefix = String::new();
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        if !tree.nodes.contains_key(&prefix) {
            tree.put(&prefix, input.dir(0o755));
        }
    }
}

/// Puts a node and its missing parents.
pub(crate) fn put(input: &FixupInput, tree: &mut Tree, path: &str, node: Node) {
    let path = path.trim_start_matches('/');
    ensure_parents(input, tree, path);
    tree.put(path, node);
}
