//! One layer's file tree, built from package entries (and fixups) and written as a sorted,
//! deterministic tar.
//!
//! Placing an entry follows what dpkg does on a merged-/usr system: paths under `/bin`,
//! `/sbin` and `/lib*` land under `/usr`, and a parent directory that is a symlink in this
//! layer is followed (tar's `--keep-directory-symlink`), never replaced. A symlink that
//! would lead outside the root is refused, as are two packages shipping the same file
//! unless one `Replaces` the other.

use super::content::Content;
use super::tar::{EntryKind, Header, TarWriter};
use std::collections::BTreeMap;

/// An entry of the tree: metadata, content, and the package that put it there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// A file's bytes (empty for anything else).
    pub content: Content,
    /// The owning package, or `None` for files made by fixups.
    pub package: Option<String>,
}

/// A node with its path: what a package's data archive holds, before it is placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub node: Node,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("{package}: {path:?} leads outside the image root through symlink {link:?}")]
    Escape {
        package: String,
        path: String,
        link: String,
    },
    #[error(
        "{package}: hard link {path:?} points at {target:?}, which is not a file this package shipped before it"
    )]
    DanglingHardlink {
        package: String,
        path: String,
        target: String,
    },
    #[error(
        "{package}: {path:?} is a device file or named pipe, which Debian Policy 10.6 forbids in packages"
    )]
    SpecialFile { package: String, path: String },
    #[error("{package}: too many levels of symlinks resolving {path:?}")]
    Loop { package: String, path: String },
    #[error(
        "file conflict: {path:?} is shipped by both {first} and {second} (and {second} does not Replace {first})"
    )]
    Conflict {
        path: String,
        first: String,
        second: String,
    },
    #[error("{package}: {path:?} is a directory in one package and not in another ({other})")]
    DirectoryClash {
        package: String,
        path: String,
        other: String,
    },
}

const MERGED: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32", "libo32"];

/// `bin/ls` → `usr/bin/ls`. The top-level names themselves are left alone when they are
/// symlinks (base-files ships `bin -> usr/bin`), and mapped when they are directories.
pub fn merged_usr(path: &str, kind: &EntryKind) -> String {
    let (first, rest) = path.split_once('/').unwrap_or((path, ""));
    if !MERGED.contains(&first) {
        return path.to_string();
    }
    if rest.is_empty() && !matches!(kind, EntryKind::Dir) {
        return path.to_string();
    }
    format!("usr/{path}")
}

/// Joins a symlink's target onto the directory holding the link, inside the root.
/// `None` when `..` climbs above the root.
pub fn resolve_link(link_path: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        let mut p: Vec<&str> = link_path.split('/').collect();
        p.pop();
        p
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Decides whether `new` may overwrite a file of `old` (dpkg's `Replaces`).
pub type ReplacesFn<'a> = &'a (dyn Fn(&str, &str) -> bool + Sync);

/// A layer's entries by path; iteration order is path-byte order, which is tar order.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    pub nodes: BTreeMap<String, Node>,
}

impl Tree {
    /// The first proper prefix of `path` that is a symlink in this tree: (its length, target).
    fn symlinked_parent<'t>(&'t self, path: &str) -> Option<(usize, &'t str)> {
        path.match_indices('/')
            .find_map(|(i, _)| match self.nodes.get(&path[..i]) {
                Some(Node {
                    kind: EntryKind::Symlink(target),
                    ..
                }) => Some((i, target.as_str())),
                _ => None,
            })
    }

    /// Follows symlinked parent directories of `path` within this tree.
    fn place(&self, package: &str, path: &str) -> Result<String, TreeError> {
        let mut current = path.to_string();
        for _ in 0..40 {
            let Some((i, target)) = self.symlinked_parent(&current) else {
                return Ok(current);
            };
            let link = &current[..i];
            let resolved = resolve_link(link, target).ok_or_else(|| TreeError::Escape {
                package: package.into(),
                path: path.into(),
                link: link.into(),
            })?;
            current = if resolved.is_empty() {
                current[i + 1..].to_string()
            } else {
                format!("{resolved}{}", &current[i..])
            };
        }
        Err(TreeError::Loop {
            package: package.into(),
            path: path.into(),
        })
    }

    /// Adds one package's entries. Directory metadata already present wins (as in dpkg).
    pub fn add_package(
        &mut self,
        package: &str,
        entries: Vec<Entry>,
        replaces: ReplacesFn,
    ) -> Result<(), TreeError> {
        for Entry { path, mut node } in entries {
            // Debian Policy 10.6: packages must not ship device files or named pipes; the
            // engine gives a container its /dev.
            if matches!(
                node.kind,
                EntryKind::CharDevice(..) | EntryKind::BlockDevice(..) | EntryKind::Fifo
            ) {
                return Err(TreeError::SpecialFile {
                    package: package.into(),
                    path,
                });
            }
            let mapped = merged_usr(&path, &node.kind);
            let path = self.place(package, &mapped)?;
            if let EntryKind::Hardlink(t) = &node.kind {
                let target = self.place(package, &merged_usr(t, &EntryKind::File))?;
                self.check_link_target(package, &path, &target)?;
                node.kind = EntryKind::Hardlink(target);
            }
            node.package = Some(package.to_string());
            self.insert(package, path, node, replaces)?;
        }
        Ok(())
    }

    /// A hard link must name a regular file the same package shipped before it: tar
    /// engines can only link to what they have already written.
    fn check_link_target(&self, package: &str, path: &str, target: &str) -> Result<(), TreeError> {
        match self.nodes.get(target) {
            Some(Node {
                kind: EntryKind::File,
                package: Some(owner),
                ..
            }) if owner == package => Ok(()),
            _ => Err(TreeError::DanglingHardlink {
                package: package.into(),
                path: path.into(),
                target: target.into(),
            }),
        }
    }

    fn insert(
        &mut self,
        package: &str,
        path: String,
        node: Node,
        replaces: ReplacesFn,
    ) -> Result<(), TreeError> {
        match self.nodes.get(&path) {
            None => {
                self.nodes.insert(path, node);
            }
            Some(existing) => {
                let other = existing
                    .package
                    .clone()
                    .unwrap_or_else(|| "carbon-store".into());
                match (&existing.kind, &node.kind) {
                    (EntryKind::Dir, EntryKind::Dir) => {}
                    // A directory where a package ships a symlink to a directory (or vice
                    // versa) is kept as it is: dpkg keeps directory symlinks.
                    (EntryKind::Symlink(_), EntryKind::Dir) => {}
                    (EntryKind::Dir, _) | (_, EntryKind::Dir) => {
                        return Err(TreeError::DirectoryClash {
                            package: package.into(),
                            path,
                            other,
                        });
                    }
                    _ if other == package => {
                        self.nodes.insert(path, node);
                    }
                    _ if replaces(package, &other) => {
                        self.nodes.insert(path, node);
                    }
                    _ if existing.kind == node.kind
                        && existing.mode == node.mode
                        && existing.content.same_bytes(&node.content).unwrap_or(false) =>
                    {
                        // Identical content shipped twice (dpkg refuses this too, but only
                        // for differing files in Multi-Arch: same packages of one arch).
                    }
                    _ => {
                        return Err(TreeError::Conflict {
                            path,
                            first: other,
                            second: package.into(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds a file made by a fixup, replacing whatever was there.
    pub fn put(&mut self, path: &str, node: Node) {
        self.nodes.insert(path.to_string(), node);
    }

    /// The same tree with every file's contents left out (metadata only).
    pub fn without_contents(&self) -> Tree {
        Tree {
            nodes: self
                .nodes
                .iter()
                .map(|(path, node)| {
                    let node = Node {
                        content: Content::default(),
                        package: node.package.clone(),
                        kind: node.kind.clone(),
                        ..*node
                    };
                    (path.clone(), node)
                })
                .collect(),
        }
    }

    /// Paths of non-directories with their owning package, for cross-layer checks.
    pub fn owned_files(&self) -> impl Iterator<Item = (&String, &str)> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.kind != EntryKind::Dir)
            .filter_map(|(p, n)| n.package.as_deref().map(|pkg| (p, pkg)))
    }

    /// Writes the tree as a tar, each file's bytes streamed from where they are. Hard links
    /// point at the first path of their group in tar order, which holds the bytes.
    pub fn write_tar<W: std::io::Write>(&self, out: W) -> std::io::Result<W> {
        // Group hard links with their targets so that the first path in order holds the data.
        let mut leader: BTreeMap<&str, &str> = BTreeMap::new();
        for (path, node) in &self.nodes {
            if let EntryKind::Hardlink(target) = &node.kind {
                let group_first = leader
                    .get(target.as_str())
                    .copied()
                    .unwrap_or(target.as_str());
                let first = group_first.min(path.as_str());
                leader.insert(target.as_str(), first);
            }
        }
        let empty = Content::default();
        let mut w = TarWriter::new(out);
        for (path, node) in &self.nodes {
            let (kind, content): (EntryKind, &Content) = match &node.kind {
                EntryKind::Hardlink(target) => {
                    let first = leader[target.as_str()];
                    if first == path.as_str() {
                        let holder = self
                            .nodes
                            .get(target.as_str())
                            .map(|n| &n.content)
                            .unwrap_or(&empty);
                        (EntryKind::File, holder)
                    } else {
                        (EntryKind::Hardlink(first.to_string()), &empty)
                    }
                }
                EntryKind::File => match leader.get(path.as_str()) {
                    Some(first) if *first != path.as_str() => {
                        (EntryKind::Hardlink(first.to_string()), &empty)
                    }
                    _ => (EntryKind::File, &node.content),
                },
                other => (other.clone(), &empty),
            };
            let size = if kind == EntryKind::File {
                content.len()
            } else {
                0
            };
            let header = Header {
                path: path.clone(),
                kind,
                mode: node.mode,
                uid: node.uid,
                gid: node.gid,
                size,
                mtime: node.mtime,
            };
            w.append_reader(&header, content.reader())?;
        }
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind, mode: u32, data: &[u8]) -> Entry {
        Entry {
            path: path.into(),
            node: Node {
                kind,
                mode,
                uid: 0,
                gid: 0,
                mtime: 1,
                content: data.to_vec().into(),
                package: None,
            },
        }
    }
    fn file(path: &str, data: &[u8]) -> Entry {
        entry(path, EntryKind::File, 0o644, data)
    }
    fn dir(path: &str, mode: u32) -> Entry {
        entry(path, EntryKind::Dir, mode, b"")
    }
    fn link(path: &str, target: &str) -> Entry {
        entry(path, EntryKind::Symlink(target.into()), 0o777, b"")
    }
    const NO: ReplacesFn = &|_, _| false;

    #[test]
    fn merged_usr_and_directory_symlinks_are_followed() {
        let mut t = Tree::default();
        t.add_package(
            "base-files",
            vec![link("bin", "usr/bin"), dir("usr/bin", 0o755)],
            NO,
        )
        .unwrap();
        t.add_package(
            "coreutils",
            vec![
                dir("bin", 0o755),
                file("bin/ls", b"ls"),
                file("lib/x86_64-linux-gnu/libc.so", b"c"),
            ],
            NO,
        )
        .unwrap();
        assert!(
            t.nodes.contains_key("usr/bin/ls")
                && t.nodes.contains_key("usr/lib/x86_64-linux-gnu/libc.so")
        );
        assert_eq!(t.nodes["bin"].kind, EntryKind::Symlink("usr/bin".into()));
        t.add_package(
            "foo",
            vec![
                link("usr/share/foo", "../lib/foo"),
                file("usr/share/foo/data", b"d"),
            ],
            NO,
        )
        .unwrap();
        assert!(
            t.nodes.contains_key("usr/lib/foo/data"),
            "{:?}",
            t.nodes.keys().collect::<Vec<_>>()
        );
    }

    #[test]
    fn escaping_symlinks_and_conflicts_are_refused() {
        let mut t = Tree::default();
        let err = t
            .add_package(
                "evil",
                vec![link("usr/x", "../../../etc"), file("usr/x/passwd", b"")],
                NO,
            )
            .unwrap_err();
        assert!(matches!(err, TreeError::Escape { .. }), "{err}");
        let mut t = Tree::default();
        t.add_package("a", vec![file("usr/bin/tool", b"a")], NO)
            .unwrap();
        let err = t
            .add_package("b", vec![file("usr/bin/tool", b"b")], NO)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "file conflict: \"usr/bin/tool\" is shipped by both a and b (and b does not Replace a)"
        );
        t.add_package("b", vec![file("usr/bin/tool", b"b")], &|new, old| {
            new == "b" && old == "a"
        })
        .unwrap();
        assert_eq!(t.nodes["usr/bin/tool"].content.to_vec().unwrap(), b"b");
    }

    #[test]
    fn first_directory_metadata_wins() {
        let mut t = Tree::default();
        t.add_package("base-files", vec![dir("tmp", 0o1777)], NO)
            .unwrap();
        t.add_package("other", vec![dir("tmp", 0o755)], NO).unwrap();
        assert_eq!(t.nodes["tmp"].mode, 0o1777);
    }

    #[test]
    fn hard_links_point_at_the_first_path_in_tar_order() {
        let mut t = Tree::default();
        let hl = entry(
            "usr/bin/a-link",
            EntryKind::Hardlink("usr/bin/z-file".into()),
            0o755,
            b"",
        );
        t.add_package("p", vec![file("usr/bin/z-file", b"payload"), hl], NO)
            .unwrap();
        let tar = t.write_tar(Vec::new()).unwrap();
        let mut ar = tar::Archive::new(tar.as_slice());
        let entries: Vec<(String, tar::EntryType, u64)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                    e.header().size().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries[0],
            ("usr/bin/a-link".into(), tar::EntryType::Regular, 7)
        );
        assert_eq!(entries[1].1, tar::EntryType::Link);
    }

    #[test]
    fn resolve_link_stays_inside_the_root() {
        assert_eq!(
            resolve_link("usr/lib/foo", "../share/x").as_deref(),
            Some("usr/share/x")
        );
        assert_eq!(resolve_link("usr/lib/foo", "/etc").as_deref(), Some("etc"));
        assert_eq!(resolve_link("a", "../../b"), None);
    }
}
