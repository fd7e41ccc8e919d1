//! npm packages into a layer tree, as `npm install --global --ignore-scripts` would lay
//! them out under the Node prefix: each tarball's `package/` directory at its place in
//! `lib/node_modules`, the commands of top-level packages linked from `bin/` (nested
//! ones from their parent's `node_modules/.bin`), the runtime's build at the prefix
//! itself. Only files and directories are taken from a tarball (as npm does); every
//! member path is checked before it becomes a path of the image. What a package's install
//! scripts would have done comes from the recipes' declarations, never from running them.

use crate::layer::content::{Content, Spill};
use crate::layer::tar::EntryKind;
use crate::layer::tree::{Node, Tree};
use crate::lockfile::NpmArtifact;
use crate::recipe::model::DeclaredScripts;
use crate::store::{Store, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// Installed files' mtime: the one npm gives every file of a tarball it packs
/// (1985-10-26 08:15 UTC), the same in every image.
pub const NPM_MTIME: u64 = 499_162_500;

/// `at` of the runtime's lock line: its build goes to the prefix itself.
pub const RUNTIME_AT: &str = ".";

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{package}: {reason}")]
    Bad { package: String, reason: String },
    #[error("creating a spill file in the store's temp area: {0}")]
    SpillFile(#[from] std::io::Error),
}

fn node(kind: EntryKind, mode: u32, content: Content, package: &str) -> Node {
    Node {
        kind,
        mode,
        uid: 0,
        gid: 0,
        mtime: NPM_MTIME,
        content,
        package: Some(format!("npm:{package}")),
    }
}

/// A member path of a tarball, without its first component (`package/`), or `None` for
/// the top directory itself. Refused: absolute paths, `.`/`..` components, NUL.
fn member_path(raw: &str) -> Result<Option<String>, String> {
    if raw.starts_with('/') || raw.contains('\0') || raw.len() > 3072 {
        return Err(format!("member {raw:?} is not a relative path"));
    }
    let parts: Vec<&str> = raw
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.iter().any(|p| *p == ".." || p.len() > 255) {
        return Err(format!("member {raw:?} climbs out of its package"));
    }
    Ok((parts.len() > 1).then(|| parts[1..].join("/")))
}

/// Adds `path`'s missing parent directories.
fn add_parents(tree: &mut Tree, path: &str, package: &str) {
    let mut end = 0;
    while let Some(i) = path[end..].find('/') {
        end += i;
        let dir = &path[..end];
        if !tree.nodes.contains_key(dir) {
            tree.put(
                dir,
                node(EntryKind::Dir, 0o755, Content::default(), package),
            );
        }
        end += 1;
    }
}

/// Where a package's files go under the prefix (`prefix` has no leading `/`).
pub fn package_dir(prefix: &str, artifact: &NpmArtifact) -> String {
    if artifact.at == RUNTIME_AT {
        prefix.to_string()
    } else {
        format!("{prefix}/lib/{}", artifact.at)
    }
}

/// Unpacks one tarball into `tree` at its place.
pub fn unpack(
    store: &Store,
    prefix: &str,
    artifact: &NpmArtifact,
    tree: &mut Tree,
    spill: &Spill,
) -> Result<(), InstallError> {
    let bad = |reason: String| InstallError::Bad {
        package: format!("{}@{}", artifact.name, artifact.version),
        reason,
    };
    let file = store.open_verified_digest(&artifact.integrity, artifact.file_name())?;
    let gz = flate2::read::GzDecoder::new(std::io::BufReader::new(file));
    let mut archive = tar::Archive::new(gz);
    let dir = package_dir(prefix, artifact);
    add_parents(tree, &format!("{dir}/"), &artifact.name);
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(format!("reading the tarball: {e}")))?;
        let raw = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| bad("a member's path is not UTF-8".into()))?;
        let Some(rel) = member_path(&raw).map_err(bad)? else {
            continue;
        };
        let path = format!("{dir}/{rel}");
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644);
        if kind.is_dir() {
            add_parents(tree, &format!("{path}/"), &artifact.name);
            continue;
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            // Links, devices and the like: npm leaves them out too.
            continue;
        }
        let declared = entry.header().size().map_err(|e| bad(e.to_string()))?;
        let content = spill.with_writer(|w| -> std::io::Result<Content> {
            w.copy(&mut (&mut entry).take(declared))
        })?;
        if content.len() != declared {
            return Err(bad(format!("member {raw:?} is cut short")));
        }
        add_parents(tree, &path, &artifact.name);
        let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
        tree.put(&path, node(EntryKind::File, mode, content, &artifact.name));
    }
    Ok(())
}

/// `a/./b/../c` → `a/c`; `None` if it climbs above its start.
fn normalize(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            p => out.push(p),
        }
    }
    Some(out.join("/"))
}

/// The relative symlink target from the directory `from_dir` to `to` (both under one root).
fn relative(from_dir: &str, to: &str) -> String {
    let from: Vec<&str> = from_dir.split('/').filter(|p| !p.is_empty()).collect();
    let to_parts: Vec<&str> = to.split('/').filter(|p| !p.is_empty()).collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(&to_parts[common..]);
    parts.join("/")
}

/// A relative symbolic link at `link` to the file `to` (both paths of the image).
fn put_link(tree: &mut Tree, link: &str, to: &str, package: &str) {
    let link_dir = link.rsplit_once('/').map_or("", |(d, _)| d);
    let target = relative(link_dir, to);
    add_parents(tree, link, package);
    let symlink = node(
        EntryKind::Symlink(target),
        0o777,
        Content::default(),
        package,
    );
    tree.put(link, symlink);
}

/// The commands of a package: a link per `bin` entry, from `prefix/bin` for a top-level
/// package and from the parent's `node_modules/.bin` otherwise. The linked file becomes
/// executable, as npm makes it.
pub fn link_bins(
    tree: &mut Tree,
    prefix: &str,
    artifact: &NpmArtifact,
    bins: &BTreeMap<String, String>,
) -> Result<(), InstallError> {
    let bad = |reason: String| InstallError::Bad {
        package: format!("{}@{}", artifact.name, artifact.version),
        reason,
    };
    if artifact.at == RUNTIME_AT {
        return Ok(());
    }
    let dir = package_dir(prefix, artifact);
    let bin_dir = match artifact.at.rsplit_once("/node_modules/") {
        None => format!("{prefix}/bin"),
        Some((parent, _)) => format!("{prefix}/lib/{parent}/node_modules/.bin"),
    };
    for (name, target) in bins {
        let name = name.rsplit('/').next().unwrap_or(name);
        crate::name::file_name("bin name", name).map_err(|e| bad(e.to_string()))?;
        let target = normalize(target)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad(format!("bin {name}: {target:?} is outside the package")))?;
        let file = format!("{dir}/{target}");
        if let Some(n) = tree.nodes.get_mut(&file)
            && n.kind == EntryKind::File
        {
            n.mode = 0o755;
        }
        put_link(tree, &format!("{bin_dir}/{name}"), &file, &artifact.name);
    }
    Ok(())
}

/// The location of package `name` as Node finds it from the package at `from`: the
/// nearest `node_modules/<name>` up the tree.
pub fn find_from(locations: &BTreeSet<String>, from: &str, name: &str) -> Option<String> {
    let mut at = from.to_string();
    loop {
        let candidate = format!("{at}/node_modules/{name}");
        if locations.contains(&candidate) {
            return Some(candidate);
        }
        let top = format!("node_modules/{name}");
        match at.rsplit_once("/node_modules/") {
            Some((parent, _)) => at = parent.to_string(),
            None => return locations.contains(&top).then_some(top),
        }
    }
}

/// Applies a package's declared scripts: each `link` replaces a file of the package by a
/// link to a file of another installed package.
pub fn apply_declared(
    tree: &mut Tree,
    prefix: &str,
    artifact: &NpmArtifact,
    declared: &DeclaredScripts,
    cpu: &str,
    locations: &BTreeSet<String>,
) -> Result<(), InstallError> {
    let bad = |reason: String| InstallError::Bad {
        package: format!("{}@{}", artifact.name, artifact.version),
        reason,
    };
    let dir = package_dir(prefix, artifact);
    for (path, target) in &declared.link {
        let path = normalize(path)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| bad(format!("declared link {path:?} is outside the package")))?;
        let package = target.package.replace("{cpu}", cpu);
        let found = find_from(locations, &artifact.at, &package).ok_or_else(|| {
            bad(format!(
                "declared link {path}: {package} is not installed where the package finds it"
            ))
        })?;
        let file = normalize(&target.file)
            .filter(|f| !f.is_empty())
            .ok_or_else(|| bad(format!("declared link {path}: bad file {:?}", target.file)))?;
        let to = format!("{prefix}/lib/{found}/{file}");
        if !tree
            .nodes
            .get(&to)
            .is_some_and(|n| n.kind == EntryKind::File)
        {
            return Err(bad(format!(
                "declared link {path}: {to} is not a file of {package}"
            )));
        }
        put_link(tree, &format!("{dir}/{path}"), &to, &artifact.name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths_lose_their_top_directory_and_may_not_climb() {
        assert_eq!(
            member_path("package/bin/x.js").unwrap().as_deref(),
            Some("bin/x.js")
        );
        assert_eq!(member_path("package/").unwrap(), None);
        assert_eq!(member_path("other/./a//b").unwrap().as_deref(), Some("a/b"));
        assert!(member_path("package/../../etc/passwd").is_err());
        assert!(member_path("/etc/passwd").is_err());
    }

    #[test]
    fn links_are_relative_and_found_as_node_finds_modules() {
        assert_eq!(
            relative("opt/n/bin", "opt/n/lib/node_modules/a/b.js"),
            "../lib/node_modules/a/b.js"
        );
        let locations: BTreeSet<String> = [
            "node_modules/a",
            "node_modules/a/node_modules/b",
            "node_modules/a/node_modules/c",
            "node_modules/d",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let from_c = find_from(&locations, "node_modules/a/node_modules/c", "b");
        assert_eq!(from_c.as_deref(), Some("node_modules/a/node_modules/b"));
        assert_eq!(
            find_from(&locations, "node_modules/a", "d").as_deref(),
            Some("node_modules/d")
        );
        assert_eq!(find_from(&locations, "node_modules/d", "b"), None);
        assert_eq!(normalize("./bin/../x"), Some("x".into()));
        assert_eq!(normalize("../x"), None);
    }
}
