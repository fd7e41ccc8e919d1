//! Downloads everything a lockfile names into the store (Debian pool paths from the mirrors,
//! wheels by their index pages, npm tarballs by their registry paths, a registry cache asked first), in parallel with bounded
//! concurrency, skipping what the store already has.

use crate::config::mirrors::{MirrorError, MirrorSettings};
use crate::digest::Digest;
use crate::fetch::{Attempts, FetchError, Fetcher};
use crate::lockfile::{Lockfile, Origin};
use crate::store::{Expected, Store};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Told about download progress; the CLI draws bars or prints lines from it.
pub trait FetchProgress: Sync {
    fn start(&self, _count: usize, _bytes: u64) {}
    fn bytes(&self, _n: u64) {}
    fn finished(&self, _name: &str, _size: u64) {}
}

/// Reports nothing.
pub struct Silent;
impl FetchProgress for Silent {}

/// A place that may hold artifacts by their sha256 (a registry cache), asked before the
/// mirrors. What it delivers is verified like a download: it goes into the store only if
/// size and sha256 match the lock.
pub trait Substituter: Sync {
    /// Brings `wanted` into the store: `Ok(true)` when it did, `Ok(false)` when it does
    /// not have it, `Err(why)` when it had something else (refused; the mirrors are used).
    fn substitute(
        &self,
        wanted: &Wanted,
        store: &Store,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<bool, String>;
}

/// One artifact to have in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub name: String,
    /// Path on the mirror (Debian), or empty when the URL comes from an index page.
    pub path: String,
    /// Mirror name(s), comma-separated for Python indexes tried in order.
    pub mirror: String,
    pub digest: Digest,
    pub size: u64,
    /// For wheels: the project whose index page lists the file.
    pub project: Option<String>,
}

/// What a fetch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchReport {
    pub artifacts: usize,
    pub already_present: usize,
    pub downloaded: usize,
    pub bytes_downloaded: u64,
    /// Of those downloaded, how many came from the substituter (the cache).
    pub substituted: usize,
    /// Why the substituter's copies were refused (the mirrors were used instead).
    pub refused: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchLockError {
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    #[error(
        "offline mode: {count} artifact(s) are not in the store:\n{list}\nrun `carbon-store fetch` on a connected machine, or import a bundle"
    )]
    OfflineMissing { count: usize, list: String },
    #[error("{count} download(s) failed:\n{details}")]
    Failed { count: usize, details: String },
    #[error(
        "lock for {image}: artifact {name} is in suite {suite}, which no [[index]] entry names"
    )]
    UnknownSuite {
        image: String,
        name: String,
        suite: String,
    },
    #[error("cannot start download threads: {0}")]
    Threads(String),
}

/// Every distinct file of a lock to fetch (arch `all` packages appear once), sorted by
/// name. A wheel built here is left out: its sources are fetched instead (and
/// `sdist::rebuild_missing` builds it).
pub fn wanted(lock: &Lockfile) -> Result<Vec<Wanted>, FetchLockError> {
    let mut out: BTreeMap<(String, String), Wanted> = BTreeMap::new();
    for file in lock.archs.values().flat_map(|a| a.files()) {
        let (path, mirror, project) = match file.origin {
            Origin::Debian { suite, path } => {
                let mirror =
                    lock.mirror_of_suite(suite)
                        .ok_or_else(|| FetchLockError::UnknownSuite {
                            image: lock.image.clone(),
                            name: file.name.to_string(),
                            suite: suite.to_string(),
                        })?;
                (path.to_string(), mirror.to_string(), None)
            }
            Origin::PythonIndex { project } => (
                String::new(),
                lock.python_indexes.join(","),
                Some(project.to_string()),
            ),
            Origin::BuiltHere => continue,
            Origin::Npm { path } => (path.to_string(), crate::npm::MIRROR.to_string(), None),
        };
        out.entry((file.digest.to_string(), file.name.to_string()))
            .or_insert_with(|| Wanted {
                name: file.name.to_string(),
                path,
                mirror,
                digest: file.digest,
                size: file.size,
                project,
            });
    }
    let mut list: Vec<Wanted> = out.into_values().collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}

/// Brings every artifact into the store, `jobs` downloads at a time: from `substituter`
/// first when there is one, then from the mirrors.
pub fn fetch_all(
    items: &[Wanted],
    store: &Store,
    fetcher: &Fetcher,
    mirrors: &MirrorSettings,
    jobs: usize,
    progress: &dyn FetchProgress,
    substituter: Option<&dyn Substituter>,
) -> Result<FetchReport, FetchLockError> {
    let mut missing: Vec<&Wanted> = items
        .iter()
        .filter(|w| !store.holds(&w.digest, &w.name, Some(w.size)))
        .collect();
    let mut report = FetchReport {
        artifacts: items.len(),
        already_present: items.len() - missing.len(),
        ..Default::default()
    };
    if missing.is_empty() {
        return Ok(report);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| FetchLockError::Threads(e.to_string()))?;
    // Told once, for everything missing, whichever source then brings it.
    let mut started = false;
    if let Some(substituter) = substituter.filter(|_| !fetcher.is_offline()) {
        progress.start(missing.len(), missing.iter().map(|w| w.size).sum());
        started = true;
        let outcomes: Vec<Result<bool, String>> = pool.install(|| {
            missing
                .par_iter()
                .map(|w| {
                    let got = substituter.substitute(w, store, &|n| progress.bytes(n));
                    if let Ok(true) = got {
                        progress.finished(&w.name, w.size);
                    }
                    got.map_err(|why| format!("{}: {why}", w.name))
                })
                .collect()
        });
        let mut still = Vec::new();
        for (w, outcome) in missing.into_iter().zip(outcomes) {
            match outcome {
                Ok(true) => {
                    report.downloaded += 1;
                    report.substituted += 1;
                    report.bytes_downloaded += w.size;
                }
                Ok(false) => still.push(w),
                Err(why) => {
                    report.refused.push(why);
                    still.push(w);
                }
            }
        }
        missing = still;
        if missing.is_empty() {
            return Ok(report);
        }
    }
    if fetcher.is_offline() {
        let list: Vec<String> = missing
            .iter()
            .map(|w| format!("  {} ({})", w.name, w.digest))
            .collect();
        return Err(FetchLockError::OfflineMissing {
            count: missing.len(),
            list: list.join("\n"),
        });
    }
    let mut bases: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for w in &missing {
        if !bases.contains_key(w.mirror.as_str()) {
            let mut urls = Vec::new();
            for name in w.mirror.split(',') {
                urls.extend(mirrors.mirror(name)?.urls);
            }
            bases.insert(&w.mirror, urls);
        }
    }
    // Wheels: their URLs come from the index pages of their projects.
    let projects: std::collections::BTreeSet<(&str, &str)> = missing
        .iter()
        .filter_map(|w| w.project.as_deref().map(|p| (p, w.mirror.as_str())))
        .collect();
    let pages: Vec<Result<(String, Vec<crate::python::simple::IndexFile>), String>> = projects
        .par_iter()
        .map(|(project, mirror)| {
            crate::python::simple::project_files(fetcher, &bases[mirror], project)
                .map(|files| (project.to_string(), files))
                .map_err(|e| format!("{project}: {e}"))
        })
        .collect();
    let mut urls: BTreeMap<String, String> = BTreeMap::new();
    let mut page_errors = Vec::new();
    for page in pages {
        match page {
            Ok((_, files)) => urls.extend(files.into_iter().map(|f| (f.filename, f.url))),
            Err(e) => page_errors.push(e),
        }
    }
    if !page_errors.is_empty() {
        return Err(FetchLockError::Failed {
            count: page_errors.len(),
            details: page_errors.join("\n"),
        });
    }
    if !started {
        progress.start(missing.len(), missing.iter().map(|w| w.size).sum());
    }
    let results: Vec<Result<u64, (String, FetchError)>> = pool.install(|| {
        missing
            .par_iter()
            .map(|w| {
                let expected = Expected {
                    digest: w.digest.clone(),
                    size: Some(w.size),
                };
                let (sources, path) = match &w.project {
                    Some(_) => match urls.get(&w.name) {
                        Some(url) => (vec![url.clone()], String::new()),
                        None => {
                            let attempts = Attempts::only("the index no longer lists this file");
                            return Err((
                                w.name.clone(),
                                FetchError::Failed {
                                    name: w.name.clone(),
                                    attempts,
                                },
                            ));
                        }
                    },
                    None => (bases[w.mirror.as_str()].clone(), w.path.clone()),
                };
                fetcher
                    .fetch_into_store(&sources, &path, store, &w.name, &expected, &|n| {
                        progress.bytes(n)
                    })
                    .map(|_| {
                        progress.finished(&w.name, w.size);
                        w.size
                    })
                    .map_err(|e| (w.name.clone(), e))
            })
            .collect()
    });
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(size) => {
                report.downloaded += 1;
                report.bytes_downloaded += size;
            }
            Err(failure) => failures.push(failure),
        }
    }
    if !failures.is_empty() {
        return Err(FetchLockError::Failed {
            count: failures.len(),
            details: summarize(&failures),
        });
    }
    Ok(report)
}

/// The failed downloads grouped by where and why they finally failed — one line per
/// mirror and cause, with the first few files — rather than every file's every attempt:
/// a dead mirror is one line, not one per artifact and retry.
fn summarize(failures: &[(String, FetchError)]) -> String {
    const NAMED: usize = 3;
    let mut groups: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    for (name, error) in failures {
        let key = match error {
            FetchError::Failed { attempts, .. } => match attempts.last() {
                Some(last) if !last.base.is_empty() => (last.base.clone(), last.why.clone()),
                Some(last) => (String::new(), last.why.clone()),
                None => (String::new(), error.to_string()),
            },
            other => (String::new(), other.to_string()),
        };
        groups.entry(key).or_default().push(name);
    }
    let mut lines = Vec::new();
    for ((base, why), names) in groups {
        let mut shown = names[..names.len().min(NAMED)].join(", ");
        if names.len() > NAMED {
            shown.push_str(&format!(" and {} more", names.len() - NAMED));
        }
        let place = if base.is_empty() {
            String::new()
        } else {
            format!("{base}: ")
        };
        lines.push(format!("  {place}{why} — {} file(s): {shown}", names.len()));
    }
    lines.join("\n")
}
