//! Garbage collection and verification of the store.
//!
//! `gc` keeps what a lockfile, an output under `oci-out/` or an explicit root still needs
//! and removes the rest, holding the store's exclusive lock so no other carbon-store
//! process is reading or writing meanwhile. `verify` re-hashes every object.

use super::{Area, Store, StoreError, path};
use crate::digest::Digest;
use crate::lockfile::{Lockfile, Origin};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The entries of a directory that may not exist (then there are none).
fn entries(dir: &Path) -> impl Iterator<Item = fs::DirEntry> {
    fs::read_dir(dir).into_iter().flatten().flatten()
}

/// A JSON file, or `None` when it is missing or not JSON.
fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// What must stay.
#[derive(Debug, Default)]
pub struct Roots {
    /// Store file names (`<hash>-<name>`).
    pub objects: BTreeSet<String>,
    /// Blob digests (hex) under `store/blobs/sha256/`.
    pub blobs: BTreeSet<String>,
    /// The packages among `objects`: what `fetch` brings, so what `verify` calls missing.
    pub packages: BTreeSet<String>,
    /// The sha256 of every wheel and sdist the locks pin (their metadata stays cached).
    pub python_hashes: BTreeSet<String>,
}

impl Roots {
    /// Everything the locks name: packages, and the InRelease and Packages files.
    pub fn add_lock(&mut self, lock: &Lockfile) {
        for file in lock.archs.values().flat_map(|a| a.files()) {
            let name = path::fixed_output_name_of(&file.digest, file.name);
            self.objects.insert(name.clone());
            self.packages.insert(name);
            if let (Origin::PythonIndex { .. } | Origin::BuiltHere, Digest::Sha256(hex)) =
                (file.origin, &file.digest)
            {
                self.python_hashes.insert(hex.clone());
            }
        }
        for i in &lock.index {
            self.objects.insert(path::fixed_output_name(
                i.inrelease.trim_start_matches("sha256:"),
                &format!("{}_InRelease", i.suite),
            ));
            for (component, hash) in &i.packages {
                self.objects.insert(path::fixed_output_name(
                    hash.trim_start_matches("sha256:"),
                    &format!("Packages_{}_{component}_{}", i.suite, i.arch),
                ));
            }
        }
    }

    /// Every blob an OCI layout references (through its index.json, manifests, configs).
    pub fn add_layout(&mut self, layout: &Path) {
        let blob = |d: &str| {
            layout
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:"))
        };
        let read = |p: PathBuf| read_json(&p);
        let mut pending: Vec<serde_json::Value> =
            read(layout.join("index.json")).into_iter().collect();
        while let Some(doc) = pending.pop() {
            let descriptors = doc["manifests"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(doc["layers"].as_array().into_iter().flatten())
                .chain(std::iter::once(&doc["config"]));
            for d in descriptors {
                let Some(digest) = d["digest"].as_str() else {
                    continue;
                };
                if self
                    .blobs
                    .insert(digest.trim_start_matches("sha256:").to_string())
                    && d["mediaType"]
                        .as_str()
                        .is_some_and(|m| m.contains("manifest") || m.contains("index"))
                {
                    pending.extend(read(blob(digest)));
                }
            }
        }
    }
}

/// What a gc removed (or would remove).
#[derive(Debug, Default)]
pub struct GcReport {
    pub removed: Vec<(PathBuf, u64)>,
    pub kept: usize,
}

impl GcReport {
    pub fn bytes(&self) -> u64 {
        self.removed.iter().map(|(_, s)| s).sum()
    }
}

fn size_of(p: &Path) -> u64 {
    fs::symlink_metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Removes (or with `dry_run` lists) everything the roots do not need: objects, then each
/// area of the store by its own rule.
pub fn gc(store: &Store, roots: &Roots, dry_run: bool) -> Result<GcReport, StoreError> {
    let _lock = store.lock_exclusive()?;
    let mut report = GcReport::default();
    let mut doomed = dead_objects(store, roots, &mut report)?;
    for area in Area::ALL {
        doomed.extend(dead_in(store, area, roots, &mut report));
    }
    doomed.sort();
    for p in doomed {
        let size = size_of(&p);
        if !dry_run {
            (if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            })
            .map_err(|e| StoreError::Io {
                action: "removing",
                path: p.clone(),
                source: e,
            })?;
        }
        report.removed.push((p, size));
    }
    Ok(report)
}

/// Objects (`<32 chars>-<name>` files) no root names; refs keep the InRelease they point at.
fn dead_objects(
    store: &Store,
    roots: &Roots,
    report: &mut GcReport,
) -> Result<Vec<PathBuf>, StoreError> {
    let root = store.root();
    let referenced: BTreeSet<String> = entries(&store.area(Area::Refs))
        .filter_map(|e| {
            fs::read_to_string(e.path())
                .ok()
                .map(|v| (e.file_name().to_string_lossy().into_owned(), v))
        })
        .filter_map(|(name, v)| {
            let sha = v.split_whitespace().next()?.to_string();
            let suite = name
                .strip_prefix("debian-")?
                .strip_suffix("-InRelease")?
                .to_string();
            Some(path::fixed_output_name(&sha, &format!("{suite}_InRelease")))
        })
        .collect();
    let mut doomed = Vec::new();
    for e in fs::read_dir(root)
        .map_err(|e| StoreError::Io {
            action: "reading",
            path: root.to_path_buf(),
            source: e,
        })?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.len() > 33 && name.as_bytes()[32] == b'-' && e.path().is_file() {
            if roots.objects.contains(&name) || referenced.contains(&name) {
                report.kept += 1;
            } else {
                doomed.push(e.path());
            }
        }
    }
    Ok(doomed)
}

/// What is dead in one area (every area has a rule: the match is exhaustive).
fn dead_in(store: &Store, area: Area, roots: &Roots, report: &mut GcReport) -> Vec<PathBuf> {
    let dir = store.area(area);
    match area {
        // Nothing in them is live once gc holds the exclusive lock, or it is a pure cache
        // whose every entry can be made again with identical bytes.
        Area::Tmp | Area::PycCache | Area::NpmMetadata | Area::Uploads => {
            entries(&dir).map(|e| e.path()).collect()
        }
        // Pointers (their targets are kept above) and the user's own roots.
        Area::Refs | Area::GcRoots => Vec::new(),
        Area::Blobs => entries(&dir.join("sha256"))
            .filter(|e| {
                let keep = roots.blobs.contains(&*e.file_name().to_string_lossy());
                report.kept += keep as usize;
                !keep
            })
            .map(|e| e.path())
            .collect(),
        Area::Layers => dead_layers(&dir, roots),
        // A realize record stays while the outputs it describes are all there.
        Area::Realized => entries(&dir)
            .filter(|e| {
                let outputs_exist = read_json(&e.path())
                    .and_then(|v| {
                        v["files"]
                            .as_object()
                            .map(|files| files.keys().all(|f| Path::new(f).exists()))
                    })
                    .unwrap_or(false);
                !outputs_exist
            })
            .map(|e| e.path())
            .collect(),
        // `<wheel sha256>.METADATA`: kept while a root lock pins that wheel.
        Area::PypiMetadata => entries(&dir)
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let sha = name.strip_suffix(".METADATA").unwrap_or("");
                !roots.python_hashes.contains(sha)
            })
            .map(|e| e.path())
            .collect(),
        // A build record stays while the wheel it names is kept.
        Area::PypiBuilds => entries(&dir)
            .filter(|e| {
                let wheel = read_json(&e.path()).and_then(|v| {
                    Some(path::fixed_output_name(
                        v["sha256"].as_str()?,
                        v["file"].as_str()?,
                    ))
                });
                !wheel.is_some_and(|w| roots.objects.contains(&w))
            })
            .map(|e| e.path())
            .collect(),
    }
}

/// Layer cache entries whose blob goes, and the input records (`inputs-*.json`) of layers
/// no longer cached.
fn dead_layers(dir: &Path, roots: &Roots) -> Vec<PathBuf> {
    let mut doomed = Vec::new();
    let mut kept_diff_ids = BTreeSet::new();
    let mut input_records = Vec::new();
    for e in entries(dir) {
        if e.file_name().to_string_lossy().starts_with("inputs-") {
            input_records.push(e);
            continue;
        }
        let layer = read_json(&e.path());
        let keep = layer
            .as_ref()
            .and_then(|v| {
                v["digest"]
                    .as_str()
                    .map(|d| roots.blobs.contains(d.trim_start_matches("sha256:")))
            })
            .unwrap_or(false);
        if keep {
            if let Some(diff_id) = layer.as_ref().and_then(|v| v["diff_id"].as_str()) {
                kept_diff_ids.insert(diff_id.to_string());
            }
        } else {
            doomed.push(e.path());
        }
    }
    // A Python layer's record names one diff id; an arch's Debian record (`diff_ids`) is kept
    // while all of its layers are; a record that inputs give no layer (`derived_from`) is
    // kept while the record it derives from is.
    let mut kept_records = BTreeSet::new();
    let mut no_layer = Vec::new();
    for e in input_records {
        let Some(v) = read_json(&e.path()) else {
            doomed.push(e.path());
            continue;
        };
        if let Some(of) = v["derived_from"].as_str() {
            no_layer.push((e.path(), format!("inputs-{of}.json")));
            continue;
        }
        let keep = match v["diff_ids"].as_array() {
            Some(ids) => ids
                .iter()
                .all(|d| d.as_str().is_some_and(|d| kept_diff_ids.contains(d))),
            None => v["diff_id"]
                .as_str()
                .is_some_and(|d| kept_diff_ids.contains(d)),
        };
        if keep {
            kept_records.insert(e.file_name().to_string_lossy().into_owned());
        } else {
            doomed.push(e.path());
        }
    }
    for (path, of) in no_layer {
        if !kept_records.contains(&of) {
            doomed.push(path);
        }
    }
    doomed
}

/// One problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The content does not hash to the name.
    Corrupt(PathBuf),
    /// A root the store does not have.
    Missing(String),
}

/// The digest of a file's content, of the algorithm of `like`.
fn file_digest(p: &Path, like: Digest) -> std::io::Result<Digest> {
    let mut f = fs::File::open(p)?;
    let mut h = like.hasher();
    std::io::copy(&mut f, &mut h)?;
    Ok(h.finalize())
}

/// How a file's hash must relate to its name.
enum Named {
    /// `<nix hash>-<name>`: the fixed-output name of its sha256 (or, for an npm tarball,
    /// of its sha512).
    Object(String),
    /// `blobs/sha256/<hex>`: the hex itself.
    Blob(String),
}

impl Named {
    /// Whether the file's content is what its name says.
    fn holds(&self, p: &Path) -> bool {
        match self {
            Named::Object(name) => [Digest::Sha256(String::new()), Digest::Sha512(String::new())]
                .into_iter()
                .any(|like| {
                    file_digest(p, like)
                        .is_ok_and(|d| path::fixed_output_name_of(&d, &name[33..]) == *name)
                }),
            Named::Blob(hex) => {
                file_digest(p, Digest::Sha256(String::new())).is_ok_and(|d| d.hex() == hex)
            }
        }
    }
}

/// Re-hashes every object and blob; reports corrupt ones and packages that are missing.
pub fn verify(store: &Store, roots: &Roots) -> Result<(usize, Vec<Problem>), StoreError> {
    let _lock = store.lock_shared()?;
    let root = store.root();
    let mut files: Vec<(PathBuf, Named)> = Vec::new();
    for e in fs::read_dir(root)
        .map_err(|e| StoreError::Io {
            action: "reading",
            path: root.to_path_buf(),
            source: e,
        })?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.len() > 33 && name.as_bytes()[32] == b'-' && e.path().is_file() {
            files.push((e.path(), Named::Object(name)));
        }
    }
    for e in entries(&store.area(Area::Blobs).join("sha256")) {
        files.push((
            e.path(),
            Named::Blob(e.file_name().to_string_lossy().into_owned()),
        ));
    }
    use rayon::prelude::*;
    let mut problems: Vec<Problem> = files
        .par_iter()
        .filter_map(|(p, named)| (!named.holds(p)).then(|| Problem::Corrupt(p.clone())))
        .collect();
    problems.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    for name in &roots.packages {
        if !root.join(name).exists() {
            problems.push(Problem::Missing(name.clone()));
        }
    }
    Ok((files.len(), problems))
}
