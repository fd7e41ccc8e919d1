//! The npm registry's abbreviated metadata ("corgi" packuments): every version of a
//! package with what installing it needs — dependencies, platform fields, `bin`, whether
//! it has install scripts, and where its tarball is with its integrity. Fetched once per
//! package per run and shared by the archs.

use super::spec::check_name;
use crate::fetch::{FetchError, Fetcher};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("fetching the registry's metadata of {name}: {error}")]
    Fetch { name: String, error: FetchError },
    #[error("the registry's metadata of {name} is not valid: {reason}")]
    Bad { name: String, reason: String },
}

impl RegistryError {
    /// Offline, and the store keeps no copy of the metadata asked for (the lock does not
    /// pin the registry's metadata, so neither bundles nor the registry cache carry it).
    pub fn is_offline_missing(&self) -> bool {
        matches!(
            self,
            RegistryError::Fetch {
                error: FetchError::Offline { .. },
                ..
            }
        )
    }
}

/// All versions of one package. Each version's manifest is parsed only when asked for:
/// a packument lists hundreds (megabytes of JSON) and resolution looks at a few.
#[derive(Debug, Deserialize)]
pub struct Packument {
    pub name: String,
    #[serde(rename = "dist-tags", default)]
    pub dist_tags: BTreeMap<String, String>,
    #[serde(default)]
    versions: BTreeMap<String, Box<serde_json::value::RawValue>>,
}

impl Packument {
    /// The versions it lists.
    pub fn versions(&self) -> impl Iterator<Item = &str> {
        self.versions.keys().map(String::as_str)
    }

    /// The manifest of `version`; `None` when it is not listed, does not parse, or names
    /// another package or version than where it is listed.
    pub fn manifest(&self, version: &str) -> Option<Manifest> {
        let m: Manifest = serde_json::from_str(self.versions.get(version)?.get()).ok()?;
        (m.name == self.name && m.version == version).then_some(m)
    }
}

/// One version of a package, as the registry describes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub dependencies: BTreeMap<String, String>,
    #[serde(default)]
    pub optional_dependencies: BTreeMap<String, String>,
    #[serde(default)]
    pub peer_dependencies: BTreeMap<String, String>,
    #[serde(default)]
    pub peer_dependencies_meta: BTreeMap<String, PeerMeta>,
    /// `true` (all dependencies) or a list of names; the tarball carries them.
    #[serde(default, alias = "bundledDependencies")]
    pub bundle_dependencies: serde_json::Value,
    #[serde(default)]
    pub bin: serde_json::Value,
    #[serde(default)]
    pub os: serde_json::Value,
    #[serde(default)]
    pub cpu: serde_json::Value,
    #[serde(default)]
    pub libc: serde_json::Value,
    #[serde(default)]
    pub engines: serde_json::Value,
    #[serde(default)]
    pub has_install_script: bool,
    #[serde(default)]
    pub deprecated: serde_json::Value,
    pub dist: Dist,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PeerMeta {
    #[serde(default)]
    pub optional: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dist {
    #[serde(default)]
    pub integrity: Option<String>,
    pub tarball: String,
    #[serde(default)]
    pub unpacked_size: Option<u64>,
}

/// A field that is a string or a list of strings (`os`, `cpu`, `libc`).
pub fn string_list(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The commands of package `name` from its `bin` field: name → path in the package. A
/// string `bin` is named after the package (without its scope).
pub fn bins(name: &str, bin: &serde_json::Value) -> BTreeMap<String, String> {
    match bin {
        serde_json::Value::String(path) => {
            let name = name.rsplit('/').next().unwrap_or(name);
            [(name.to_string(), path.clone())].into()
        }
        serde_json::Value::Object(map) => map
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|p| (k.clone(), p.to_string())))
            .collect(),
        _ => BTreeMap::new(),
    }
}

impl Manifest {
    /// The commands it installs (see [`bins`]).
    pub fn bins(&self) -> BTreeMap<String, String> {
        bins(&self.name, &self.bin)
    }

    /// Names of dependencies shipped inside the tarball.
    pub fn bundled(&self) -> Vec<String> {
        match &self.bundle_dependencies {
            serde_json::Value::Bool(true) => self.dependencies.keys().cloned().collect(),
            other => string_list(other),
        }
    }

    pub fn is_deprecated(&self) -> bool {
        match &self.deprecated {
            serde_json::Value::String(s) => !s.is_empty(),
            serde_json::Value::Bool(b) => *b,
            _ => false,
        }
    }

    /// `engines.node`, when it is a range.
    pub fn node_engine(&self) -> Option<&str> {
        self.engines.get("node").and_then(|v| v.as_str())
    }
}

/// The cache file of a URL: its sha256, so that no name from outside becomes a path.
fn cache_name(url: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(url.as_bytes()))
}

/// `@scope/name` → `@scope%2fname`, as npm asks for it.
fn escaped(name: &str) -> String {
    name.replacen('/', "%2f", 1)
}

/// How long a packument on disk is used without asking the registry again: the
/// `max-age` the npm registry gives packuments, which npm's own cache honours.
pub const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// Packuments fetched this run, by package name, and (with a disk cache) fetched lately.
pub struct Registry<'a> {
    fetcher: &'a Fetcher,
    /// The registry's base URLs, first tried first.
    pub urls: Vec<String>,
    cache: Mutex<HashMap<String, Arc<Packument>>>,
    /// Where packuments are kept between runs (the store's `npm-metadata`).
    disk: Option<std::path::PathBuf>,
}

impl<'a> Registry<'a> {
    pub fn new(fetcher: &'a Fetcher, urls: Vec<String>) -> Registry<'a> {
        Registry {
            fetcher,
            urls,
            cache: Mutex::default(),
            disk: None,
        }
    }

    /// Keeps packuments in `dir`: one fetched less than [`FRESH_FOR`] ago is used without
    /// asking the registry, and offline any kept one is.
    pub fn with_disk_cache(mut self, dir: std::path::PathBuf) -> Registry<'a> {
        self.disk = Some(dir);
        self
    }

    /// Keeps a packument for the rest of the run.
    fn remember(&self, name: &str, packument: Packument) -> Arc<Packument> {
        let packument = Arc::new(packument);
        self.cache
            .lock()
            .expect("cache lock")
            .insert(name.to_string(), packument.clone());
        packument
    }

    /// The kept copy of `url` if it may be used now.
    fn kept(&self, url: &str) -> Option<Vec<u8>> {
        let path = self.disk.as_ref()?.join(cache_name(url));
        let age = std::fs::metadata(&path)
            .ok()?
            .modified()
            .ok()?
            .elapsed()
            .ok()?;
        (self.fetcher.is_offline() || age < FRESH_FOR)
            .then(|| std::fs::read(&path).ok())
            .flatten()
    }

    /// Writes `bytes` under `file` in the disk cache, if there is one.
    fn keep(&self, file: &str, bytes: &[u8]) {
        if let Some(dir) = &self.disk
            && std::fs::create_dir_all(dir).is_ok()
        {
            // A cache: a failed write only costs a fetch next time.
            let _ = crate::store::write_atomic(&dir.join(file), bytes);
        }
    }

    /// The packument of `name` (fetched once).
    pub fn packument(&self, name: &str) -> Result<Arc<Packument>, RegistryError> {
        if let Some(p) = self.cache.lock().expect("cache lock").get(name) {
            return Ok(p.clone());
        }
        check_name(name).map_err(|e| RegistryError::Bad {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        let mut last = None;
        for base in &self.urls {
            let url = format!("{}/{}", base.trim_end_matches('/'), escaped(name));
            // A kept copy is used while fresh; one that does not parse is fetched again.
            let kept = self.kept(&url);
            if let Some(packument) = kept
                .as_deref()
                .filter(|b| !b.is_empty())
                .and_then(|b| parse(name, b).ok())
            {
                return Ok(self.remember(name, packument));
            }
            let got = match kept.as_deref() {
                Some([]) => Ok(None),
                _ => self
                    .fetcher
                    .get_url_if_present(
                        &url,
                        Some("application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8"),
                    )
                    // An empty file keeps "the registry has no such package".
                    .inspect(|got| {
                        self.keep(&cache_name(&url), got.as_deref().unwrap_or_default())
                    }),
            };
            match got {
                Ok(Some(bytes)) => return Ok(self.remember(name, parse(name, &bytes)?)),
                Ok(None) => {
                    last = Some(FetchError::Failed {
                        name: url.clone(),
                        attempts: crate::fetch::Attempts::only("the registry has no such package"),
                    })
                }
                Err(error) => last = Some(error),
            }
        }
        Err(RegistryError::Fetch {
            name: name.to_string(),
            error: last.unwrap_or(FetchError::Offline {
                what: format!("{name} (no npm registry configured)"),
            }),
        })
    }

    /// The size of the tarball at `url` whose sha512 is `integrity` (a HEAD request, kept
    /// on disk: the bytes an integrity names never change).
    pub fn tarball_size(
        &self,
        url: &str,
        integrity: &crate::digest::Digest,
    ) -> Result<u64, FetchError> {
        let file = format!("size-{}", cache_name(&integrity.to_string()));
        if let Some(size) = self
            .disk
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join(&file)).ok())
            .and_then(|t| t.trim().parse().ok())
        {
            return Ok(size);
        }
        let size = self.fetcher.content_length(url)?;
        self.keep(&file, size.to_string().as_bytes());
        Ok(size)
    }

    /// Where a tarball URL lies under the registry: the path after the base URL. A
    /// tarball elsewhere is refused (the lock names paths, never hosts).
    pub fn tarball_path(&self, name: &str, url: &str) -> Result<String, RegistryError> {
        self.urls
            .iter()
            .find_map(|base| {
                url.strip_prefix(base.trim_end_matches('/'))
                    .and_then(|rest| rest.strip_prefix('/'))
            })
            .filter(|path| crate::name::relative_path("tarball", path).is_ok())
            .map(str::to_string)
            .ok_or_else(|| RegistryError::Bad {
                name: name.to_string(),
                reason: format!("its tarball {url} is not under the configured registry"),
            })
    }
}

/// Parses a packument and checks that it is the package asked for.
pub fn parse(name: &str, bytes: &[u8]) -> Result<Packument, RegistryError> {
    let bad = |reason: String| RegistryError::Bad {
        name: name.to_string(),
        reason,
    };
    let packument: Packument = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if packument.name != name {
        return Err(bad(format!("it describes {:?}", packument.name)));
    }
    Ok(packument)
}
