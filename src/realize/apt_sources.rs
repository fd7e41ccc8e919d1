//! The image's own apt sources: `/etc/apt/sources.list.d/debian.sources` in a small layer
//! of its own on top of the image, so that `apt-get install` works in a container and in
//! a `FROM` of the image. It names the suites and components the lock read, at the mirror
//! URLs configuration gives for images (config/image_mirrors.rs); the lower layers do not
//! depend on it, so images built with other mirrors share every other layer.

use crate::config::image_mirrors::ImageMirrors;
use crate::fixup::{self, FixupInput};
use crate::layer::tree::Tree;
use crate::lockfile::Lockfile;

/// Where the file goes (the name a Debian system installed by debootstrap or the installer
/// uses, so that tools which rewrite it find it).
pub const PATH: &str = "etc/apt/sources.list.d/debian.sources";

/// The layer's history comment.
pub const COMMENT: &str = "apt sources: /etc/apt/sources.list.d/debian.sources";

/// The keyring Debian's archive signs with, as debian-archive-keyring ships it (`.pgp`
/// from trixie on, `.gpg` before).
const KEYRINGS: [&str; 2] = [
    "usr/share/keyrings/debian-archive-keyring.pgp",
    "usr/share/keyrings/debian-archive-keyring.gpg",
];

/// The deb822 text: one stanza per mirror in `mirrors` that the lock reads for `arch`,
/// with the suites in lock order and the components (`main` first); `None` when no mirror
/// the lock reads goes into images.
pub fn text(
    lock: &Lockfile,
    arch: &str,
    mirrors: &ImageMirrors,
    keyring: Option<&str>,
) -> Option<String> {
    let mut stanzas = Vec::new();
    for (name, urls) in mirrors {
        let indexes: Vec<_> = lock
            .debian_indexes(arch)
            .filter(|i| i.mirror == *name)
            .collect();
        if indexes.is_empty() {
            continue;
        }
        let mut suites: Vec<&str> = Vec::new();
        let mut components: Vec<&str> = Vec::new();
        for index in &indexes {
            if !suites.contains(&index.suite.as_str()) {
                suites.push(&index.suite);
            }
            for component in index.packages.keys() {
                if !components.contains(&component.as_str()) {
                    components.push(component);
                }
            }
        }
        components.sort_by_key(|c| (*c != "main", *c));
        let mut stanza = format!(
            "Types: deb\nURIs: {}\nSuites: {}\nComponents: {}\n",
            urls.join(" "),
            suites.join(" "),
            components.join(" ")
        );
        if let Some(keyring) = keyring {
            stanza.push_str(&format!("Signed-By: /{keyring}\n"));
        }
        stanzas.push(stanza);
    }
    if stanzas.is_empty() {
        return None;
    }
    Some(format!(
        "# Written by carbon-store from its mirror configuration (image-debian, docs/mirrors.md).\n\n{}",
        stanzas.join("\n")
    ))
}

/// The layer's tree, or `None` when the image gets no sources.
pub fn tree(input: &FixupInput, lock: &Lockfile, mirrors: &ImageMirrors) -> Option<Tree> {
    let keyring = KEYRINGS.into_iter().find(|k| input.exists(k));
    let text = text(lock, input.arch, mirrors, keyring)?;
    let mut tree = Tree::default();
    fixup::put(input, &mut tree, PATH, input.file(text, 0o644));
    Some(tree)
}
