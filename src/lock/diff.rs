//! What changed between two versions of lockfiles, per image and arch: packages added,
//! removed and changed (old → new version, security updates marked), and the change in
//! download size — as text, Markdown (a pull-request body) or JSON.

use crate::lockfile::{DebianArtifact, Lockfile};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Change {
    pub name: String,
    pub old: Option<String>,
    pub new: Option<String>,
    /// The new version comes from a `-security` suite.
    pub security: bool,
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

/// image → arch → diff; images that did not change are left out.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, Default)]
pub struct LockDiff {
    pub images: BTreeMap<String, BTreeMap<String, ArchDiff>>,
}

fn by_name(list: &[DebianArtifact]) -> BTreeMap<&str, &DebianArtifact> {
    list.iter().map(|a| (a.name.as_str(), a)).collect()
}

/// Compares two locks of one image (either may be absent: a new or deleted image).
pub fn diff_image(old: Option<&Lockfile>, new: Option<&Lockfile>) -> BTreeMap<String, ArchDiff> {
    let empty = Vec::new();
    let mut archs: Vec<&String> = old
        .iter()
        .chain(new.iter())
        .flat_map(|l| l.archs.keys())
        .collect();
    archs.sort();
    archs.dedup();
    let mut out = BTreeMap::new();
    for arch in archs {
        let o = old
            .and_then(|l| l.archs.get(arch))
            .map(|a| &a.debian)
            .unwrap_or(&empty);
        let n = new
            .and_then(|l| l.archs.get(arch))
            .map(|a| &a.debian)
            .unwrap_or(&empty);
        let (om, nm) = (by_name(o), by_name(n));
        let mut d = ArchDiff {
            old_download: o.iter().map(|a| a.size).sum(),
            new_download: n.iter().map(|a| a.size).sum(),
            ..Default::default()
        };
        for (name, a) in &nm {
            let security = a.suite.ends_with("-security");
            match om.get(name) {
                None => d.added.push(Change {
                    name: name.to_string(),
                    old: None,
                    new: Some(a.version.clone()),
                    security,
                }),
                Some(b) if b.version != a.version || b.sha256 != a.sha256 => {
                    d.changed.push(Change {
                        name: name.to_string(),
                        old: Some(b.version.clone()),
                        new: Some(a.version.clone()),
                        security,
                    })
                }
                _ => {}
            }
        }
        for (name, b) in &om {
            if !nm.contains_key(name) {
                d.removed.push(Change {
                    name: name.to_string(),
                    old: Some(b.version.clone()),
                    new: None,
                    security: false,
                });
            }
        }
        if !d.is_empty() {
            out.insert(arch.clone(), d);
        }
    }
    out
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

impl LockDiff {
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    pub fn to_text(&self) -> String {
        if self.is_empty() {
            return "no changes\n".into();
        }
        let mut out = String::new();
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
                        c.name,
                        c.old.as_deref().unwrap_or(""),
                        c.new.as_deref().unwrap_or("")
                    ));
                }
                for c in &d.added {
                    out.push_str(&format!(
                        "  + {} {}\n",
                        c.name,
                        c.new.as_deref().unwrap_or("")
                    ));
                }
                for c in &d.removed {
                    out.push_str(&format!(
                        "  - {} {}\n",
                        c.name,
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
                        "| `{}` | {} | {} | {note} |\n",
                        c.name,
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
