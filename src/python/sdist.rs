//! Building the few pure-Python sdists a recipe allows (`build-from-source`) into wheels.
//!
//! The host's Python runs the sdist's PEP 517 backend (`[build-system]` of its
//! `pyproject.toml`, or setuptools' legacy backend without one) in an isolated directory:
//! `python3 -S` (no host site-packages), the backend's pinned wheels installed by
//! carbon-store itself, a scrubbed environment with `SOURCE_DATE_EPOCH` fixed. The wheel
//! goes into the store; builds are cached by their inputs, and a rebuild (on a machine
//! whose store lacks the wheel) must give the hash the lock records.

use super::build::{BuildError, BuiltWheel, SourceBuilder};
use super::install::{self as python, Venv};
use crate::digest::Sha256Hex;
use crate::layer::tar::EntryKind;
use crate::layer::tree::Tree;
use crate::lockfile::{IndexPin, Lockfile, PythonArtifact};
use crate::store::{Store, StoreError, write_atomic};
use crate::unpack::beneath::{Beneath, BeneathError};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `SOURCE_DATE_EPOCH` of every build: the zip epoch, so that the wheel depends on the
/// sdist and its backend only (not on the lock's date).
pub const BUILD_EPOCH: u64 = 315_532_800;
/// Bump when the way wheels are built changes (cache key).
const BUILD_FORMAT: &str = "carbon-store sdist build 1";

#[derive(Debug, thiserror::Error)]
pub enum SdistError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{file}: {reason}")]
    Bad { file: String, reason: String },
    #[error("{file}: the build backend failed:\n{log}")]
    Build { file: String, log: String },
    #[error(
        "{file}: building it gave {got}, but the lock records sha256 {expected}; the build is not reproducible on this host (its Python is {python}); lock again here or copy the wheel from the machine that locked (bundle export/import)"
    )]
    NotReproducible {
        file: String,
        expected: String,
        got: String,
        python: String,
    },
    #[error("building sdists needs the host's python3: {0}")]
    NoPython(String),
}

/// What an sdist's `pyproject.toml` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildSystem {
    pub requires: Vec<String>,
    pub backend: String,
    pub backend_path: Vec<String>,
}

/// A built wheel in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    pub file: String,
    pub sha256: Sha256Hex,
    pub size: u64,
}

/// Source builds on this host, for the resolver (`python::build`).
pub struct HostBuilder<'a> {
    pub store: &'a Store,
}

impl SourceBuilder for HostBuilder<'_> {
    fn build_requires(&self, sdist: &[u8], file: &str) -> Result<Vec<String>, BuildError> {
        Ok(build_system(sdist, file)?.requires)
    }

    fn python_version(&self) -> Result<String, BuildError> {
        Ok(host_python()?.0)
    }

    fn build(&self, sdist: &IndexPin, requires: &[IndexPin]) -> Result<BuiltWheel, BuildError> {
        let built = build(self.store, sdist, requires)?;
        Ok(BuiltWheel {
            file: built.file,
            sha256: built.sha256,
            size: built.size,
        })
    }
}

/// The host's `python3`: (full version, minor), asked once per process.
pub fn host_python() -> Result<(String, u32), SdistError> {
    static ANSWER: std::sync::OnceLock<Result<(String, u32), String>> = std::sync::OnceLock::new();
    ANSWER
        .get_or_init(ask_host_python)
        .clone()
        .map_err(SdistError::NoPython)
}

fn ask_host_python() -> Result<(String, u32), String> {
    let out = Command::new("python3")
        .args([
            "-S",
            "-c",
            "import platform; print(platform.python_version())",
        ])
        .output()
        .map_err(|e| e.to_string())?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let minor = version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .filter(|_| out.status.success())
        .ok_or_else(|| format!("cannot read its version {version:?}"))?;
    Ok((version, minor))
}

/// The sdist's entries (top directory stripped), refusing paths that leave it.
fn entries(bytes: &[u8], file: &str) -> Result<Vec<(String, Vec<u8>, u32)>, SdistError> {
    let bad = |reason: String| SdistError::Bad {
        file: file.to_string(),
        reason,
    };
    if !file.ends_with(".tar.gz") {
        return Err(bad("only .tar.gz sdists can be built".into()));
    }
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut out = Vec::new();
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| bad(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        if !kind.is_file() {
            return Err(bad(format!("{path:?}: only regular files are allowed")));
        }
        let rel = path
            .split_once('/')
            .map_or("", |(_, rest)| rest)
            .to_string();
        if rel.is_empty()
            || path.starts_with('/')
            || rel.split('/').any(|p| p == ".." || p.is_empty())
        {
            return Err(bad(format!("{path:?} leaves the source directory")));
        }
        let mode = entry.header().mode().unwrap_or(0o644);
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| bad(e.to_string()))?;
        out.push((rel, data, mode));
    }
    Ok(out)
}

/// Reads `[build-system]` from the sdist (setuptools' legacy backend without one).
pub fn build_system(bytes: &[u8], file: &str) -> Result<BuildSystem, SdistError> {
    let legacy = BuildSystem {
        requires: vec!["setuptools>=40.8.0".into()],
        backend: "setuptools.build_meta:__legacy__".into(),
        backend_path: Vec::new(),
    };
    let Some((_, text, _)) = entries(bytes, file)?
        .into_iter()
        .find(|(p, _, _)| p == "pyproject.toml")
    else {
        return Ok(legacy);
    };
    let bad = |reason: String| SdistError::Bad {
        file: file.to_string(),
        reason: format!("pyproject.toml: {reason}"),
    };
    let table: toml::Table =
        toml::from_str(&String::from_utf8_lossy(&text)).map_err(|e| bad(e.to_string()))?;
    let Some(system) = table.get("build-system").and_then(|v| v.as_table()) else {
        return Ok(legacy);
    };
    let strings = |key: &str| -> Result<Vec<String>, SdistError> {
        match system.get(key) {
            None => Ok(Vec::new()),
            Some(v) => v
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|i| i.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| bad(format!("build-system.{key} must be an array of strings"))),
        }
    };
    let backend = system.get("build-backend").and_then(|v| v.as_str());
    Ok(BuildSystem {
        requires: strings("requires")?,
        backend: backend.unwrap_or(&legacy.backend).to_string(),
        backend_path: strings("backend-path")?,
    })
}

fn cache_path(store: &Store, key: &str) -> PathBuf {
    store
        .area(crate::store::Area::PypiBuilds)
        .join(format!("{key}.json"))
}

/// Writes a tree (as the wheel installer made it) into a directory, beneath it only.
fn write_tree(tree: &Tree, root: &Path) -> Result<(), BeneathError> {
    let beneath = Beneath::open(root)?;
    for (path, node) in &tree.nodes {
        match &node.kind {
            EntryKind::Dir => beneath.create_dir_all(path)?,
            EntryKind::File => beneath.write_file(path, node.content.reader(), node.mode)?,
            EntryKind::Symlink(target) => beneath.symlink(path, target)?,
            _ => {}
        }
    }
    Ok(())
}

/// The backend call: imports the backend from the isolated environment and the sdist's
/// `backend-path`, builds the wheel into `argv[1]`, prints its file name.
const RUN_BACKEND: &str = r#"
import importlib, os, sys
out, site, backend = sys.argv[1], sys.argv[2], sys.argv[3]
paths = [os.path.abspath(p) for p in sys.argv[4:]]
sys.path[:0] = paths + [site]
module, _, obj = backend.partition(":")
hooks = importlib.import_module(module)
for attr in filter(None, obj.split(".")):
    hooks = getattr(hooks, attr)
print("CARBON-WHEEL:" + hooks.build_wheel(out))
"#;

/// Builds `sdist` with `requires` (wheels, all in the store) into a wheel in the store, or
/// takes it from the build cache.
pub fn build(store: &Store, sdist: &IndexPin, requires: &[IndexPin]) -> Result<Built, SdistError> {
    // One build at a time: the archs resolve in parallel and would build the same sdist.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (python_full, python_minor) = host_python()?;
    let mut key = Sha256::new();
    for part in [BUILD_FORMAT, &python_full, &sdist.sha256]
        .into_iter()
        .chain(requires.iter().map(|r| r.sha256.as_str()))
    {
        key.update((part.len() as u64).to_le_bytes());
        key.update(part.as_bytes());
    }
    let key = hex::encode(key.finalize());
    if let Ok(text) = std::fs::read(cache_path(store, &key))
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text)
        && let (Some(file), Some(sha256), Some(size)) =
            (v["file"].as_str(), v["sha256"].as_str(), v["size"].as_u64())
        && let Ok(sha256) = Sha256Hex::parse(sha256)
        && store.contains(&sha256, file, Some(size))
    {
        return Ok(Built {
            file: file.into(),
            sha256,
            size,
        });
    }
    let bad = |reason: String| SdistError::Bad {
        file: sdist.file.clone(),
        reason,
    };
    let io = |e: std::io::Error| bad(e.to_string());
    let bytes = store.read_verified(&sdist.sha256, &sdist.file)?;
    let system = build_system(&bytes, &sdist.file)?;
    let work = store
        .scratch_dir(&format!(
            "sdist-build-{}-{}",
            &key[..16],
            std::process::id()
        ))
        .map_err(io)?;
    std::fs::create_dir_all(work.path()).map_err(io)?;
    let src = work.path().join("src");
    let beneath = Beneath::create(&src).map_err(|e| bad(e.to_string()))?;
    for (rel, data, mode) in entries(&bytes, &sdist.file)? {
        beneath
            .write_file(&rel, data.as_slice(), mode & 0o755 | 0o600)
            .map_err(|e| bad(e.to_string()))?;
    }
    // The backend's wheels, installed by our own installer into an isolated environment.
    let venv = Venv {
        prefix: "env".into(),
        python_minor: format!("3.{python_minor}"),
        python_full: python_full.clone(),
        system_site_packages: false,
    };
    let mut env = Tree::default();
    let spill = crate::layer::content::Spill::new(store.area(crate::store::Area::Tmp));
    for r in requires {
        let artifact = PythonArtifact {
            name: r.project.clone(),
            version: String::new(),
            component: String::new(),
            file: r.file.clone(),
            sha256: r.sha256.clone(),
            size: r.size,
            built_from: None,
        };
        python::install(
            store,
            &artifact,
            &venv,
            python::InstallOptions {
                requested: false,
                check_record: true,
                tags_from_file_name: false,
                omit: &[],
            },
            &mut env,
            &spill,
        )
        .map_err(|e| bad(format!("installing the build backend: {e}")))?;
    }
    write_tree(&env, work.path()).map_err(|e| bad(e.to_string()))?;
    let out_dir = work.path().join("out");
    let home = work.path().join("home");
    std::fs::create_dir_all(&out_dir).map_err(io)?;
    std::fs::create_dir_all(&home).map_err(io)?;
    let output = Command::new("python3")
        .arg("-S")
        .arg("-c")
        .arg(RUN_BACKEND)
        .arg(&out_dir)
        .arg(work.path().join(venv.site_packages()))
        .arg(&system.backend)
        .args(&system.backend_path)
        .current_dir(&src)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &home)
        .env("SOURCE_DATE_EPOCH", BUILD_EPOCH.to_string())
        .env("PYTHONHASHSEED", "0")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("LC_ALL", "C.UTF-8")
        .env("TZ", "UTC")
        .output()
        .map_err(|e| SdistError::NoPython(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let name = stdout
        .lines()
        .find_map(|l| l.strip_prefix("CARBON-WHEEL:"))
        .map(str::trim)
        .filter(|n| output.status.success() && !n.contains('/') && n.ends_with(".whl"));
    let Some(name) = name else {
        let log = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        return Err(SdistError::Build {
            file: sdist.file.clone(),
            log: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    };
    let wheel = std::fs::read(out_dir.join(name)).map_err(io)?;
    let (sha256, _) = store.insert_bytes(name, &wheel)?;
    let built = Built {
        file: name.to_string(),
        sha256,
        size: wheel.len() as u64,
    };
    write_atomic(
        &cache_path(store, &key),
        &serde_json::to_vec(&serde_json::json!({
            "file": built.file, "sha256": built.sha256.as_str(), "size": built.size
        }))
        .expect("json serializes"),
    )?;
    Ok(built)
}

/// Builds every wheel of `lock` made from an sdist that the store lacks (its sdist and
/// backend wheels fetched already), checking each against the lock. Returns how many
/// were built.
pub fn rebuild_missing(store: &Store, lock: &Lockfile) -> Result<usize, SdistError> {
    let mut built = 0;
    let mut done = std::collections::BTreeSet::new();
    for artifact in lock.archs.values().flat_map(|a| a.python.iter()) {
        let Some(from) = &artifact.built_from else {
            continue;
        };
        if store.contains(&artifact.sha256, &artifact.file, Some(artifact.size))
            || !done.insert(artifact.sha256.clone())
        {
            continue;
        }
        let got = build(store, &from.sdist, &from.requires)?;
        if got.sha256 != artifact.sha256 || got.file != artifact.file {
            return Err(SdistError::NotReproducible {
                file: artifact.file.clone(),
                expected: artifact.sha256.to_string(),
                got: format!("{} (sha256 {})", got.file, got.sha256),
                python: host_python().map(|p| p.0).unwrap_or_default(),
            });
        }
        built += 1;
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdist(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, data) in members {
            let mut header = tar::Header::new_gnu();
            // Written raw: the tar crate itself refuses to write `..`.
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append(&header, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn build_system_comes_from_pyproject_or_defaults_to_setuptools_legacy() {
        let with = sdist(&[(
            "p-1/pyproject.toml",
            b"[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n",
        )]);
        assert_eq!(
            build_system(&with, "p-1.tar.gz").unwrap(),
            BuildSystem {
                requires: vec!["hatchling".into()],
                backend: "hatchling.build".into(),
                backend_path: vec![],
            }
        );
        let without = sdist(&[("p-1/setup.py", b"")]);
        let legacy = build_system(&without, "p-1.tar.gz").unwrap();
        assert_eq!(legacy.backend, "setuptools.build_meta:__legacy__");
        assert_eq!(legacy.requires, vec!["setuptools>=40.8.0".to_string()]);
    }

    #[test]
    fn members_leaving_the_source_directory_are_refused() {
        for path in ["p-1/../../evil.py", "/etc/evil", "p-1/a//b"] {
            let bytes = sdist(&[(path, b"x")]);
            let err = build_system(&bytes, "p-1.tar.gz").unwrap_err().to_string();
            assert!(err.contains("leaves the source directory"), "{path}: {err}");
        }
        let err = build_system(b"", "p-1.zip").unwrap_err().to_string();
        assert!(err.contains("only .tar.gz"), "{err}");
    }
}
