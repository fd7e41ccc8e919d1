//! Bundles carry a store into an air-gapped site: one tar (optionally zstd-compressed)
//! with a manifest of hashes first, then every object the locks need — packages, the
//! InRelease and Packages files they were resolved from, the recipes' keyrings — and the
//! locks themselves. Import verifies every object while streaming and publishes them only
//! when the whole bundle checked out: a tampered or truncated bundle leaves nothing behind.

use super::{Expected, Store, StoreError, VerifiedObject};
use crate::digest::Digest;
use crate::layer::tar::{EntryKind, Header, TarWriter};
use crate::lockfile::Lockfile;
use crate::name::NameError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "carbon-bundle.json";
/// 2: objects may be pinned by sha512 (npm tarballs); format 1 bundles are still read.
const FORMAT: u32 = 2;

/// One object of a bundle: its file name (as the store names it after the hash), hash, size.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct BundleObject {
    pub name: String,
    /// Empty for an object pinned by `sha512`.
    #[serde(default)]
    pub sha256: String,
    /// An npm tarball's sha512 (hex), which the store names it by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha512: Option<String>,
    pub size: u64,
    /// `package`, `index` or `keyring`.
    pub kind: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BundleManifest {
    pub format: u32,
    pub images: Vec<String>,
    pub objects: Vec<BundleObject>,
    /// Store refs to set on import (the newest InRelease of each suite).
    pub refs: BTreeMap<String, String>,
    /// image → lock text, for reference and `lock --check` at the site.
    pub locks: BTreeMap<String, String>,
}

impl BundleObject {
    /// What the object is pinned by (and the store names it by).
    pub fn digest(&self) -> Digest {
        match &self.sha512 {
            Some(hex) => Digest::Sha512(hex.clone()),
            None => Digest::Sha256(self.sha256.clone()),
        }
    }
}

impl BundleManifest {
    /// Checks every name the manifest carries before any of it is used: object names and
    /// hashes become store paths, ref names become files under `refs/`, and a ref must
    /// point at an index the bundle itself carries.
    fn validate(&self) -> Result<(), NameError> {
        use crate::name::{file_name, image_name, ref_name, sha256_hex};
        for o in &self.objects {
            file_name("bundle object name", &o.name)?;
            match &o.sha512 {
                Some(hex) => {
                    Digest::sha512(hex).map_err(|_| NameError {
                        what: "bundle object sha512",
                        shown: format!("{hex:?}"),
                        reason: crate::name::Reason::NotHex,
                    })?;
                }
                None => {
                    sha256_hex("bundle object sha256", &o.sha256)?;
                }
            }
            if !["package", "index", "keyring"].contains(&o.kind.as_str()) {
                return Err(NameError {
                    what: "bundle object kind",
                    shown: format!("{:?}", o.kind),
                    reason: crate::name::Reason::Character(o.kind.chars().next().unwrap_or(' ')),
                });
            }
        }
        for image in self.images.iter().chain(self.locks.keys()) {
            image_name("bundle image name", image)?;
        }
        for (name, value) in &self.refs {
            ref_name("bundle ref", name)?;
            let (sha, date) = value.split_once(' ').unwrap_or((value, ""));
            sha256_hex("bundle ref target", sha)?;
            if !carries_index(&self.objects, value)
                || date.is_empty()
                || date.contains(|c: char| c.is_control())
            {
                return Err(NameError {
                    what: "bundle ref value",
                    shown: format!("{value:?}"),
                    reason: crate::name::Reason::Dangling,
                });
            }
        }
        Ok(())
    }
}

/// Whether `objects` hold the index a ref's value (`<sha256> <date>`) points at.
fn carries_index(objects: &[BundleObject], ref_value: &str) -> bool {
    let sha = ref_value.split(' ').next().unwrap_or("");
    objects.iter().any(|o| o.kind == "index" && o.sha256 == sha)
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{count} object(s) the locks need are not in the store:\n{list}\nrun `carbon-store fetch` first"
    )]
    Missing { count: usize, list: String },
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{path} is not a carbon-store bundle: {reason}")]
    NotABundle { path: PathBuf, reason: String },
    #[error("{path}: the bundle's manifest was refused: {error}; nothing was imported")]
    Hostile { path: PathBuf, error: NameError },
    #[error("{path}: the bundle is damaged or was tampered with: {reason}; nothing was imported")]
    Damaged { path: PathBuf, reason: String },
}

/// What export wrote.
pub struct ExportReport {
    pub objects: usize,
    pub bytes: u64,
    /// Index files the locks name that the store does not have (offline `lock` at the site
    /// will lack them; offline `realize` does not need them).
    pub missing_indexes: Vec<String>,
}

/// The objects a set of locks needs, keyed for dedup.
fn needed(
    locks: &[Lockfile],
) -> (
    Vec<BundleObject>,
    Vec<BundleObject>,
    BTreeMap<String, String>,
) {
    let mut packages = BTreeMap::new();
    let mut indexes = BTreeMap::new();
    let mut refs: BTreeMap<String, (String, String)> = BTreeMap::new();
    for lock in locks {
        // A wheel built from an sdist travels with its sources (files() lists them), so
        // that the site can also rebuild it.
        for file in lock.archs.values().flat_map(|a| a.files()) {
            let (sha256, sha512) = match &file.digest {
                Digest::Sha256(hex) => (hex.clone(), None),
                Digest::Sha512(hex) => (String::new(), Some(hex.clone())),
            };
            packages.insert(
                (file.digest.to_string(), file.name.to_string()),
                BundleObject {
                    name: file.name.to_string(),
                    sha256,
                    sha512,
                    size: file.size,
                    kind: "package".into(),
                },
            );
        }
        for i in &lock.index {
            let inrelease = i.inrelease.trim_start_matches("sha256:").to_string();
            let name = format!("{}_InRelease", i.suite);
            indexes.insert(
                (inrelease.clone(), name.clone()),
                BundleObject {
                    name,
                    sha256: inrelease.clone(),
                    sha512: None,
                    size: 0,
                    kind: "index".into(),
                },
            );
            let epoch = httpdate_epoch(&i.date);
            let key = format!("debian-{}-InRelease", i.suite);
            if refs
                .get(&key)
                .is_none_or(|(_, d)| httpdate_epoch(d) < epoch)
            {
                refs.insert(key, (format!("{inrelease} {}", i.date), i.date.clone()));
            }
            for (component, hash) in &i.packages {
                let name = format!("Packages_{}_{component}_{}", i.suite, i.arch);
                let sha = hash.trim_start_matches("sha256:").to_string();
                indexes.insert(
                    (sha.clone(), name.clone()),
                    BundleObject {
                        name,
                        sha256: sha,
                        sha512: None,
                        size: 0,
                        kind: "index".into(),
                    },
                );
            }
        }
    }
    (
        packages.into_values().collect(),
        indexes.into_values().collect(),
        refs.into_iter().map(|(k, (v, _))| (k, v)).collect(),
    )
}

fn httpdate_epoch(date: &str) -> u64 {
    httpdate::parse_http_date(&date.replace(" UTC", " GMT"))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> BundleError {
    BundleError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Writes a bundle for `locks` (with the recipes' keyrings) to `out`.
pub fn export(
    store: &Store,
    locks: &[Lockfile],
    keyrings: &[(String, Vec<u8>)],
    out: &Path,
    zstd: bool,
) -> Result<ExportReport, BundleError> {
    let (packages, indexes, refs) = needed(locks);
    let missing: Vec<String> = packages
        .iter()
        .filter(|o| !store.holds(&o.digest(), &o.name, Some(o.size)))
        .map(|o| format!("  {} ({})", o.name, o.digest()))
        .collect();
    if !missing.is_empty() {
        return Err(BundleError::Missing {
            count: missing.len(),
            list: missing.join("\n"),
        });
    }
    let mut objects = packages;
    let mut missing_indexes = Vec::new();
    for mut o in indexes {
        match std::fs::metadata(store.object_path(&o.digest(), &o.name)) {
            Ok(m) => {
                o.size = m.len();
                objects.push(o);
            }
            Err(_) => missing_indexes.push(o.name),
        }
    }
    let mut keyring_objects = Vec::new();
    for (name, bytes) in keyrings {
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
        keyring_objects.push((
            BundleObject {
                name: name.rsplit('/').next().unwrap_or(name).to_string(),
                sha256: sha,
                sha512: None,
                size: bytes.len() as u64,
                kind: "keyring".into(),
            },
            bytes,
        ));
    }
    objects.extend(keyring_objects.iter().map(|(o, _)| o.clone()));
    objects.sort();
    objects.dedup();
    // A ref travels only with the InRelease it points at (import refuses a dangling one).
    let refs = refs
        .into_iter()
        .filter(|(_, value)| carries_index(&objects, value))
        .collect();
    let manifest = BundleManifest {
        format: FORMAT,
        images: locks.iter().map(|l| l.image.clone()).collect(),
        objects: objects.clone(),
        refs,
        locks: locks
            .iter()
            .map(|l| (l.image.clone(), l.to_toml()))
            .collect(),
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    let mtime = locks.iter().map(|l| l.source_date_epoch).max().unwrap_or(0);
    let tmp = out.with_extension(format!("partial.{}", std::process::id()));
    let result = (|| -> std::io::Result<u64> {
        let file = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        let sink: Box<dyn Write> = if zstd {
            let mut enc = zstd::stream::Encoder::new(file, 3)?;
            enc.multithread(rayon::current_num_threads().max(1) as u32)?;
            Box::new(enc.auto_finish())
        } else {
            Box::new(file)
        };
        let mut w = TarWriter::new(sink);
        let header = |path: String, size: u64| Header {
            path,
            kind: EntryKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size,
            mtime,
        };
        w.append(
            &header(MANIFEST.into(), manifest_bytes.len() as u64),
            &manifest_bytes,
        )?;
        let mut bytes = 0;
        for o in &objects {
            let path = format!("objects/{}/{}", o.digest().hex(), o.name);
            if o.kind == "keyring" {
                let data = keyring_objects
                    .iter()
                    .find(|(k, _)| k == o)
                    .map(|(_, d)| d.as_slice())
                    .unwrap_or_default();
                w.append(&header(path, o.size), data)?;
            } else {
                w.append_reader(
                    &header(path, o.size),
                    File::open(store.object_path(&o.digest(), &o.name))?,
                )?;
            }
            bytes += o.size;
        }
        let mut sink = w.finish()?;
        sink.flush()?;
        Ok(bytes)
    })();
    let bytes = match result {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(out, e));
        }
    };
    std::fs::rename(&tmp, out).map_err(|e| io_err(out, e))?;
    Ok(ExportReport {
        objects: objects.len(),
        bytes,
        missing_indexes,
    })
}

/// What import did.
pub struct ImportReport {
    pub objects: usize,
    pub already_present: usize,
    pub images: Vec<String>,
    pub locks: BTreeMap<String, String>,
}

/// Verifies every object of a bundle and, only if all check out, adds them to the store.
pub fn import(store: &Store, path: &Path) -> Result<ImportReport, BundleError> {
    let mut file =
        BufReader::with_capacity(1 << 20, File::open(path).map_err(|e| io_err(path, e))?);
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(|e| io_err(path, e))?;
    let head = std::io::Cursor::new(magic[..n].to_vec()).chain(file);
    let reader: Box<dyn Read> = if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::stream::read::Decoder::new(head).map_err(|e| io_err(path, e))?)
    } else {
        Box::new(head)
    };
    let damaged = |reason: String| BundleError::Damaged {
        path: path.to_path_buf(),
        reason,
    };
    let mut archive = tar::Archive::new(reader);
    let mut entries = archive.entries().map_err(|e| BundleError::NotABundle {
        path: path.into(),
        reason: e.to_string(),
    })?;
    let mut first = match entries.next() {
        Some(Ok(e)) => e,
        Some(Err(e)) => {
            return Err(BundleError::NotABundle {
                path: path.into(),
                reason: e.to_string(),
            });
        }
        None => {
            return Err(BundleError::NotABundle {
                path: path.into(),
                reason: "it is empty".into(),
            });
        }
    };
    if first.path_bytes().as_ref() != MANIFEST.as_bytes() {
        return Err(BundleError::NotABundle {
            path: path.into(),
            reason: format!("it does not start with {MANIFEST}"),
        });
    }
    let mut text = Vec::new();
    first
        .read_to_end(&mut text)
        .map_err(|e| damaged(e.to_string()))?;
    let manifest: BundleManifest =
        serde_json::from_slice(&text).map_err(|e| BundleError::NotABundle {
            path: path.into(),
            reason: format!("{MANIFEST}: {e}"),
        })?;
    if !(1..=FORMAT).contains(&manifest.format) {
        return Err(BundleError::NotABundle {
            path: path.into(),
            reason: format!(
                "format {} is not supported (expected {FORMAT})",
                manifest.format
            ),
        });
    }
    manifest.validate().map_err(|e| BundleError::Hostile {
        path: path.into(),
        error: e,
    })?;
    let mut wanted: BTreeMap<String, &BundleObject> = manifest
        .objects
        .iter()
        .map(|o| (format!("objects/{}/{}", o.digest().hex(), o.name), o))
        .collect();
    let mut verified: Vec<VerifiedObject> = Vec::new();
    let mut already = 0;
    for entry in entries {
        let mut entry = entry.map_err(|e| damaged(format!("reading the archive: {e}")))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(object) = wanted.remove(&name) else {
            return Err(damaged(format!("{name:?} is not in the manifest")));
        };
        if store.holds(&object.digest(), &object.name, Some(object.size))
            && object.kind != "keyring"
        {
            already += 1;
            std::io::copy(&mut entry, &mut std::io::sink()).map_err(|e| damaged(e.to_string()))?;
            continue;
        }
        let mut pending = store.begin_for(&object.name, &object.digest())?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| damaged(format!("{name}: {e}")))?;
            if n == 0 {
                break;
            }
            pending.write_all(&buf[..n])?;
        }
        let expected = Expected {
            digest: object.digest(),
            size: Some(object.size),
        };
        verified.push(
            pending
                .verify(&expected)
                .map_err(|e| damaged(e.to_string()))?,
        );
    }
    if !wanted.is_empty() {
        let names: Vec<&str> = wanted.values().map(|o| o.name.as_str()).take(5).collect();
        return Err(damaged(format!(
            "{} object(s) are missing (truncated?): {}",
            wanted.len(),
            names.join(", ")
        )));
    }
    let objects = verified.len();
    for v in verified {
        v.publish()?;
    }
    for (name, value) in &manifest.refs {
        let newer = store.get_ref(name).is_none_or(|current| {
            let date = |v: &str| httpdate_epoch(v.split_once(' ').map(|(_, d)| d).unwrap_or(""));
            date(&current) < date(value)
        });
        if newer {
            store.set_ref(name, value)?;
        }
    }
    Ok(ImportReport {
        objects,
        already_present: already,
        images: manifest.images.clone(),
        locks: manifest.locks.clone(),
    })
}
