//! Byte-code for Debian's Python modules: the standard library and `dist-packages`, as
//! `py3compile` in their packages' postinst scripts would have written it. Without it,
//! every Python start compiles what it imports again in memory (nobody but root may write
//! `__pycache__` there), which made an import-heavy start three to five times slower.
//!
//! One layer above the Debian layers, in checked-hash mode (PEP 552): the bytes follow from
//! the sources alone, and a module that `apt` replaces inside a container is recompiled
//! rather than run from stale byte-code. Its inputs are the arch's Debian side (its key
//! covers every package's hash) and the interpreter that compiles, so a realize whose
//! Debian side is unchanged reuses the layer without reading a `.deb`.

use super::derived_layer::Plan;
use super::input_cache::InputKey;
use crate::layer::content::Spill;
use crate::layer::tar::EntryKind;
use crate::layer::tree::Tree;
use crate::lockfile::Lockfile;
use crate::python::install::{self as python, Compiler, Invalidation, WheelError};
use crate::store::Store;

pub const COMMENT: &str = "byte-code of Debian's Python modules (checked-hash)";

/// The layer's input key.
pub fn key(debian_key: &str, lock: &Lockfile, minor: &str) -> String {
    let mut key = InputKey::new();
    key.add("debian byte-code");
    key.add(debian_key);
    key.add(minor);
    for a in Compiler::packages(lock, minor) {
        key.add(&a.name);
        key.add(&a.sha256);
    }
    key.finish()
}

/// Where Debian installs modules that `py3compile` compiles: the standard library and the
/// public `dist-packages`.
fn compiled_here(path: &str, minor: &str) -> bool {
    path.starts_with("usr/lib/python3/dist-packages/")
        || path
            .strip_prefix("usr/lib/python")
            .and_then(|rest| rest.strip_prefix(minor))
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The byte-code layer's tree for Debian layers `trees` (with contents, bottom first), or
/// `None` when they hold no module or there is no interpreter to compile with.
fn build<'c>(
    trees: &[Tree],
    minor: &str,
    store: &Store,
    stage_name: &str,
    spill: &Spill,
    compiler: impl FnOnce() -> Result<Option<&'c Compiler>, WheelError>,
) -> Result<Option<Tree>, WheelError> {
    // The modules as the image has them: a higher layer's file replaces a lower one's.
    let mut tree = Tree::default();
    for layer in trees {
        for (path, node) in &layer.nodes {
            if node.kind == EntryKind::File && path.ends_with(".py") && compiled_here(path, minor) {
                tree.put(path, node.clone());
            }
        }
    }
    let added = python::compile_tree(
        &mut tree,
        &|_| true,
        minor,
        Invalidation::CheckedHash,
        &python::PycPlaces::new(store, stage_name, spill),
        compiler,
    )?;
    if added == 0 {
        return Ok(None);
    }
    // Only the byte-code and its directories stay; the sources are in the layers below.
    // Like py3compile's output, the files belong to no package.
    tree.nodes.retain(|path, _| !path.ends_with(".py"));
    let mut parents = Vec::new();
    for (path, node) in tree.nodes.iter_mut() {
        node.package = None;
        let mut dir = path.as_str();
        while let Some((parent, _)) = dir.rsplit_once('/') {
            parents.push(parent.to_string());
            dir = parent;
        }
    }
    // The directories holding `__pycache__` come from the layers below; the cross-layer
    // rules give them the metadata those have.
    for parent in parents {
        tree.nodes.entry(parent).or_insert_with(python::wheel_dir);
    }
    Ok(Some(tree))
}

/// The layer's plan: built when no layer was recorded under the key of `lock`'s Debian
/// side (`None` when the image has no Python, so nothing to compile).
pub fn plan(
    store: &Store,
    lock: &Lockfile,
    debian_key: &str,
    check: bool,
    blob_exists: impl Fn(&str) -> bool,
) -> (Plan, String) {
    let minor = python::python_minor(lock);
    let key = (!minor.is_empty()).then(|| key(debian_key, lock, &minor));
    (Plan::new(store, key, debian_key, check, blob_exists), minor)
}

/// The byte-code of Debian layers `trees` (with contents, bottom first) when `plan` is to
/// build, see [`build`].
pub fn compile<'c>(
    plan: &Plan,
    minor: &str,
    trees: &[Tree],
    store: &Store,
    stage_name: &str,
    spill: &Spill,
    compiler: impl FnOnce() -> Result<Option<&'c Compiler>, WheelError>,
) -> Result<Option<Tree>, WheelError> {
    plan.build(|| build(trees, minor, store, stage_name, spill, compiler))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_the_standard_library_and_dist_packages_only() {
        assert!(compiled_here("usr/lib/python3.13/json/__init__.py", "3.13"));
        assert!(compiled_here(
            "usr/lib/python3/dist-packages/torch/__init__.py",
            "3.13"
        ));
        assert!(!compiled_here("usr/lib/python3.130/x.py", "3.13"));
        assert!(!compiled_here(
            "usr/lib/python3.12/json/__init__.py",
            "3.13"
        ));
        assert!(!compiled_here("usr/share/doc/python3.13/x.py", "3.13"));
        assert!(!compiled_here(
            "opt/carbon/python/lib/python3.13/x.py",
            "3.13"
        ));
    }
}
