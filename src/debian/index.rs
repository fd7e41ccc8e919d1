//! Getting a Debian source's indexes: `InRelease` fetched and verified against the
//! recipe's keyrings, then each `Packages` file checked against it and kept in the store.
//!
//! Uncompressed `Packages` files are stored under the sha256 that `InRelease` lists for
//! them, so a warm lock reads them straight from the store without decompressing.

use super::packages::{self, IndexError, PackageIndex};
use super::release::{Release, ReleaseError};
use super::signature::{Keyring, SignatureError};
use crate::config::mirrors::{MirrorError, MirrorSettings};
use crate::fetch::{FetchError, Fetcher};
use crate::recipe::DebianSource;
use crate::store::{Expected, Store, StoreError};
use rayon::prelude::*;
use sha2::Digest;
use std::collections::BTreeMap;
use std::io::Read;
use std::time::SystemTime;

/// An index that could not be had or trusted.
#[derive(Debug, thiserror::Error)]
pub enum DebianIndexError {
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("{suite}/InRelease: {error}")]
    Release { suite: String, error: ReleaseError },
    #[error(
        "{suite}/InRelease is for suite {found:?}, not {suite:?}: the mirror may be misconfigured or serving a substitute"
    )]
    WrongSuite { suite: String, found: String },
    #[error(
        "{suite}/InRelease expired on {valid_until} (Valid-Until); the mirror is stale or replaying an old release: point CARBON_MIRROR_* at an up-to-date mirror"
    )]
    Expired { suite: String, valid_until: String },
    #[error("{suite}/InRelease does not list {path}: is component or arch wrong for this suite?")]
    NotListed { suite: String, path: String },
    #[error(
        "offline mode: no InRelease of {suite} in the store; run `carbon-store lock` once with network, or import a bundle"
    )]
    OfflineNoRelease { suite: String },
    #[error("{name}: compressed data is corrupt: {reason}")]
    Decompress { name: String, reason: String },
    #[error(transparent)]
    Packages(#[from] IndexError),
}

/// What the lock records about one suite's index for one arch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexRecord {
    pub suite: String,
    pub mirror: String,
    pub arch: String,
    pub date: String,
    pub date_epoch: u64,
    /// `sha256:<hex>` of the InRelease file.
    pub inrelease: String,
    /// component → `sha256:<hex>` of the uncompressed Packages file.
    pub packages: BTreeMap<String, String>,
}

/// The verified indexes of a Debian source, per arch.
#[derive(Clone)]
pub struct LoadedIndexes {
    pub records: Vec<IndexRecord>,
    pub by_arch: BTreeMap<String, PackageIndex>,
}

struct VerifiedRelease {
    suite: String,
    mirror_urls: Vec<String>,
    mirror: String,
    inrelease_sha256: String,
    release: Release,
}

fn inrelease_ref(suite: &str) -> String {
    format!("debian-{suite}-InRelease")
}

/// Makes a suite's InRelease from a lock (already in the store, under its sha256) the one
/// an offline `lock` reads, where the store has none yet (a store filled from a registry
/// cache): offline locking then resolves against the indexes the lock was made from. It is
/// verified against the keyrings when read, like any InRelease in the store.
pub fn adopt_locked_release(
    store: &Store,
    suite: &str,
    sha256: &str,
    date: &str,
) -> Result<bool, StoreError> {
    let name = inrelease_ref(suite);
    if store.get_ref(&name).is_some() || !store.contains(sha256, &inrelease_name(suite), None) {
        return Ok(false);
    }
    store.set_ref(&name, &format!("{sha256} {date}"))?;
    Ok(true)
}

/// The store name of a suite's InRelease.
pub fn inrelease_name(suite: &str) -> String {
    format!("{suite}_InRelease")
}

/// The store name of the uncompressed Packages file of a suite, component and arch.
pub fn packages_name(suite: &str, component: &str, arch: &str) -> String {
    format!("Packages_{suite}_{component}_{arch}")
}

/// Fetches (or, offline, takes from the store) and verifies every suite's InRelease, then
/// loads the Packages files of every component for every arch, in parallel.
pub fn load(
    source: &DebianSource,
    keyring_files: &[(String, Vec<u8>)],
    archs: &[String],
    store: &Store,
    fetcher: &Fetcher,
    mirrors: &MirrorSettings,
    now: SystemTime,
) -> Result<LoadedIndexes, DebianIndexError> {
    let mut keyring = Keyring::default();
    for (name, bytes) in keyring_files {
        keyring.add(name, bytes)?;
    }
    let releases: Vec<VerifiedRelease> = source
        .suite
        .par_iter()
        .map(|spec| {
            let mirror = mirrors.mirror(&spec.mirror)?;
            let (bytes, sha256, fresh) = if fetcher.is_offline() {
                let name = store.get_ref(&inrelease_ref(&spec.suite)).ok_or_else(|| {
                    DebianIndexError::OfflineNoRelease {
                        suite: spec.suite.clone(),
                    }
                })?;
                let sha = name
                    .split_once(' ')
                    .map(|(s, _)| s.to_string())
                    .unwrap_or_default();
                let bytes = store.read_verified(&sha, &inrelease_name(&spec.suite))?;
                (bytes, sha, false)
            } else {
                let bytes =
                    fetcher.get_bytes(&mirror.urls, &format!("dists/{}/InRelease", spec.suite))?;
                let sha = hex::encode(sha2::Sha256::digest(&bytes));
                (bytes, sha, true)
            };
            let text =
                keyring.verify_clearsigned(&format!("{}/InRelease", spec.suite), &bytes, now)?;
            let release = Release::parse(&text).map_err(|error| DebianIndexError::Release {
                suite: spec.suite.clone(),
                error,
            })?;
            let names = [release.codename.as_deref(), release.suite.as_deref()];
            if !names.contains(&Some(spec.suite.as_str())) {
                return Err(DebianIndexError::WrongSuite {
                    suite: spec.suite.clone(),
                    found: release
                        .codename
                        .clone()
                        .or(release.suite.clone())
                        .unwrap_or_default(),
                });
            }
            // A stale InRelease is refused when it comes from the network; one already in the
            // store was checked when it arrived, and offline builds must keep working.
            if fresh {
                if let Some(until) = release.valid_until
                    && until <= now
                {
                    return Err(DebianIndexError::Expired {
                        suite: spec.suite.clone(),
                        valid_until: httpdate::fmt_http_date(until),
                    });
                }
                // Only now, signed, for the right suite and not stale, does it get a name.
                store.insert_bytes(&inrelease_name(&spec.suite), &bytes)?;
                store.set_ref(
                    &inrelease_ref(&spec.suite),
                    &format!("{sha256} {}", release.date_text),
                )?;
            }
            Ok(VerifiedRelease {
                suite: spec.suite.clone(),
                mirror_urls: mirror.urls,
                mirror: spec.mirror.clone(),
                inrelease_sha256: sha256,
                release,
            })
        })
        // All results, then the first error in input order: the error reported must not
        // depend on thread timing.
        .collect::<Vec<Result<_, _>>>()
        .into_iter()
        .collect::<Result<_, _>>()?;

    // One job per (suite, arch, component), smallest index first: with as many threads as
    // cores, a few-kilobyte index queued behind a 50 MB one would wait for it.
    let mut jobs = Vec::new();
    for (suite_index, r) in releases.iter().enumerate() {
        for arch in archs {
            for component in &source.components {
                jobs.push((suite_index, r, arch.clone(), component.clone()));
            }
        }
    }
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| {
        let (_, r, arch, component) = &jobs[i];
        let entry = r
            .release
            .entry(&format!("{component}/binary-{arch}/Packages"));
        (entry.map_or(u64::MAX, |e| e.size), i)
    });
    let mut loaded: Vec<(usize, Result<_, DebianIndexError>)> = order
        .into_par_iter()
        .map(|i| {
            let (suite_index, r, arch, component) = &jobs[i];
            let result = load_packages(r, arch, component, *suite_index, store, fetcher)
                .map(|(sha, parsed)| (*suite_index, arch.clone(), component.clone(), sha, parsed));
            (i, result)
        })
        .collect();
    // Back in job order; the first error in that order: the error reported must not depend
    // on thread timing.
    loaded.sort_by_key(|(i, _)| *i);
    let loaded: Vec<(usize, String, String, String, Vec<packages::BinaryPackage>)> = loaded
        .into_iter()
        .map(|(_, result)| result)
        .collect::<Result<_, _>>()?;

    let mut records = Vec::new();
    for (suite_index, r) in releases.iter().enumerate() {
        for arch in archs {
            let packages = loaded
                .iter()
                .filter(|(s, a, ..)| *s == suite_index && a == arch)
                .map(|(_, _, c, sha, _)| (c.clone(), format!("sha256:{sha}")))
                .collect();
            records.push(IndexRecord {
                suite: r.suite.clone(),
                mirror: r.mirror.clone(),
                arch: arch.clone(),
                date: r.release.date_text.clone(),
                date_epoch: r.release.date_epoch(),
                inrelease: format!("sha256:{}", r.inrelease_sha256),
                packages,
            });
        }
    }
    let mut per_arch: BTreeMap<String, Vec<Vec<packages::BinaryPackage>>> = BTreeMap::new();
    for (_, arch, _, _, parsed) in loaded {
        per_arch.entry(arch).or_default().push(parsed);
    }
    let by_arch = per_arch
        .into_par_iter()
        .map(|(arch, suites)| (arch, PackageIndex::build(suites)))
        .collect();
    Ok(LoadedIndexes { records, by_arch })
}

/// Returns the uncompressed Packages hash and its parsed stanzas.
fn load_packages(
    r: &VerifiedRelease,
    arch: &str,
    component: &str,
    suite_index: usize,
    store: &Store,
    fetcher: &Fetcher,
) -> Result<(String, Vec<packages::BinaryPackage>), DebianIndexError> {
    let dir = format!("{component}/binary-{arch}");
    let plain_path = format!("{dir}/Packages");
    let plain = r
        .release
        .entry(&plain_path)
        .ok_or_else(|| DebianIndexError::NotListed {
            suite: r.suite.clone(),
            path: plain_path.clone(),
        })?;
    let name = packages_name(&r.suite, component, arch);
    let text = if store.contains(&plain.sha256, &name, Some(plain.size)) {
        store.read_verified(&plain.sha256, &name)?
    } else {
        let plain_bytes = fetch_compressed(r, &dir, &name, plain.size, store, fetcher)?;
        // Stored (written, hashed, synced) while it is parsed.
        let (stored, parsed) = rayon::join(
            || -> Result<(), DebianIndexError> {
                let mut pending = store.begin(&name)?;
                pending.write_all(&plain_bytes)?;
                pending.commit(&Expected::sha256(&plain.sha256, Some(plain.size)))?;
                Ok(())
            },
            || parse(&plain_bytes, r, &plain_path, suite_index),
        );
        stored?;
        return Ok((plain.sha256.clone(), parsed?));
    };
    let parsed = parse(&text, r, &plain_path, suite_index)?;
    Ok((plain.sha256.clone(), parsed))
}

/// Which compressed `Packages` to fetch: gzip when the Release lists it, otherwise xz, the
/// one form every Debian suite offers. gzip is a third larger but decodes about four times
/// faster; on links faster than about 80 Mbit/s, where CI runners and local mirrors are,
/// the lock is quicker for it (docs/architecture.md).
const INDEX_FORMATS: [IndexFormat; 2] = [IndexFormat::Gzip, IndexFormat::Xz];

#[derive(Clone, Copy)]
enum IndexFormat {
    Gzip,
    Xz,
}

impl IndexFormat {
    fn extension(self) -> &'static str {
        match self {
            IndexFormat::Gzip => "gz",
            IndexFormat::Xz => "xz",
        }
    }

    /// A decoder over a file whose sha256 already matched the signed Release (the result is
    /// checked against the plain file's entry besides, so xz's own check is skipped).
    fn decoder<'a>(self, file: impl Read + 'a) -> std::io::Result<Box<dyn Read + 'a>> {
        match self {
            IndexFormat::Gzip => Ok(Box::new(flate2::read::MultiGzDecoder::new(
                std::io::BufReader::with_capacity(1 << 16, file),
            ))),
            // The index's dictionary size is whatever the signed file says.
            IndexFormat::Xz => crate::unpack::verified_xz(file, u64::MAX),
        }
    }
}

/// Downloads `DIR/Packages.gz` (or `.xz`) as the Release lists it, by hash where the
/// archive offers that, into the store, and returns it decompressed.
fn fetch_compressed(
    r: &VerifiedRelease,
    dir: &str,
    name: &str,
    plain_size: u64,
    store: &Store,
    fetcher: &Fetcher,
) -> Result<Vec<u8>, DebianIndexError> {
    let (format, path, entry) = INDEX_FORMATS
        .iter()
        .find_map(|&format| {
            let path = format!("{dir}/Packages.{}", format.extension());
            let entry = r.release.entry(&path)?;
            Some((format, path, entry))
        })
        .ok_or_else(|| DebianIndexError::NotListed {
            suite: r.suite.clone(),
            path: format!("{dir}/Packages.xz"),
        })?;
    let url_path = if r.release.acquire_by_hash {
        format!("dists/{}/{dir}/by-hash/SHA256/{}", r.suite, entry.sha256)
    } else {
        format!("dists/{}/{path}", r.suite)
    };
    let stored_name = format!("{name}.{}", format.extension());
    let expected = Expected::sha256(&entry.sha256, Some(entry.size));
    let file_path = fetcher.fetch_into_store(
        &r.mirror_urls,
        &url_path,
        store,
        &stored_name,
        &expected,
        &|_| {},
    )?;
    let file = std::fs::File::open(&file_path).map_err(|e| StoreError::Io {
        action: "opening",
        path: file_path.clone(),
        source: e,
    })?;
    let decompress_error = |reason: String| DebianIndexError::Decompress {
        name: stored_name.clone(),
        reason,
    };
    let mut plain = Vec::with_capacity(plain_size as usize);
    format
        .decoder(file)
        .and_then(|mut d| d.read_to_end(&mut plain))
        .map_err(|e| decompress_error(e.to_string()))?;
    Ok(plain)
}

fn parse(
    text: &[u8],
    r: &VerifiedRelease,
    plain_path: &str,
    suite_index: usize,
) -> Result<Vec<packages::BinaryPackage>, DebianIndexError> {
    // Archives are UTF-8; the lossy conversion (its slower scan) only for one that is not.
    let text = match std::str::from_utf8(text) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(text),
    };
    Ok(packages::parse_packages(
        &text,
        &format!("{}/{plain_path}", r.suite),
        suite_index,
    )?)
}
