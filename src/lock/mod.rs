//! Making, reading and checking lockfiles.
//!
//! `lock` resolves an image's recipes against freshly verified indexes and writes the
//! lock only when its bytes change; `check` is the CI gate that compares a lock with
//! the recipes it claims to come from.
//!
//! A lock is re-resolved as cargo treats Cargo.lock: every pin that still satisfies the
//! recipes is kept, so a recipe change or `--update NAME` moves only what it must, and
//! when no pin moves, the lock keeps the indexes and `source-date-epoch` it was made
//! from — a lock whose pins did not move describes the same image.

pub mod diff;

use crate::lockfile::{ArchLock, DebianArtifact, LockedIndex, Lockfile, PythonArtifact};

use crate::config::mirrors::MirrorSettings;
use crate::debian::index::{self, DebianIndexError};
use crate::debian::solver::{self, Request, ResolveError};
use crate::fetch::Fetcher;
use crate::python::solver::{self as pysolver, PyRequest, PyTarget};
use crate::python::tags::Target;
use crate::recipe::{ImagePlan, RecipeError, Recipes};
use crate::store::{Store, StoreError};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Why `lock` or `lock --check` failed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    #[error(transparent)]
    Index(#[from] DebianIndexError),
    #[error("image {image}, {arch}: {error}")]
    Resolve {
        image: String,
        arch: String,
        error: Box<ResolveError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: no lockfile; run `carbon-store lock {image}` and commit the result")]
    Missing { path: PathBuf, image: String },
    #[error(
        "{path}: cannot read the lockfile: {error}; run `carbon-store lock {image}` to regenerate it"
    )]
    Malformed {
        path: PathBuf,
        image: String,
        error: String,
    },
    #[error(
        "{path} is stale: what the recipes of {image} ask for (packages, sources, archs or indexes) changed since it was made (lock has {locked}, recipes are {current}); run `carbon-store lock {image}`"
    )]
    Stale {
        path: PathBuf,
        image: String,
        locked: String,
        current: String,
    },
    #[error("{path} is for image {found:?}, not {image:?}")]
    WrongImage {
        path: PathBuf,
        image: String,
        found: String,
    },
    #[error("image {image}: {what}")]
    Unsupported { image: String, what: String },
    #[error(transparent)]
    Python(Box<crate::python::solver::PyResolveError>),
    #[error("image {image}, {arch}: {error}")]
    Npm {
        image: String,
        arch: String,
        error: Box<crate::npm::NpmError>,
    },
    #[error(transparent)]
    Mirror(#[from] crate::config::mirrors::MirrorError),
    #[error(
        "{path} has no [{arch}] section although {image} is built for {arch}; run `carbon-store lock {image}`"
    )]
    MissingArch {
        path: PathBuf,
        image: String,
        arch: String,
    },
}

/// What `lock` did to one lockfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    Unchanged,
    /// Pins over all archs: Debian packages, wheels and npm packages; and the earlier
    /// pins that could not be kept.
    Written {
        debian: usize,
        wheels: usize,
        npm: usize,
        released: Vec<ReleasedPin>,
    },
}

/// Where an image's lockfile lives.
pub fn lock_path(lockfiles: &Path, image: &str) -> PathBuf {
    lockfiles.join(format!("{image}.lock"))
}

/// Reads a lockfile, mapping absence and parse failures to actionable errors.
pub fn read(lockfiles: &Path, image: &str) -> Result<Lockfile, LockError> {
    let path = lock_path(lockfiles, image);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LockError::Missing {
                path,
                image: image.to_string(),
            });
        }
        Err(e) => {
            return Err(LockError::Malformed {
                path,
                image: image.to_string(),
                error: e.to_string(),
            });
        }
    };
    let lock = Lockfile::parse(&text).map_err(|e| LockError::Malformed {
        path: path.clone(),
        image: image.to_string(),
        error: e.to_string(),
    })?;
    if lock.image != image {
        return Err(LockError::WrongImage {
            path,
            image: image.to_string(),
            found: lock.image,
        });
    }
    Ok(lock)
}

/// `lock --check`: the lock exists, parses, covers every arch and matches the recipes.
pub fn check(recipes: &Recipes, lockfiles: &Path, image: &str) -> Result<Lockfile, LockError> {
    let plan = recipes.plan(image)?;
    let lock = read(lockfiles, image)?;
    let path = lock_path(lockfiles, image);
    let current = plan.resolution_hash();
    if lock.recipes != current {
        return Err(LockError::Stale {
            path,
            image: image.to_string(),
            locked: lock.recipes,
            current,
        });
    }
    for arch in &plan.archs {
        if !lock.archs.contains_key(arch) {
            return Err(LockError::MissingArch {
                path: path.clone(),
                image: image.to_string(),
                arch: arch.clone(),
            });
        }
    }
    Ok(lock)
}

/// The per-component requests of a plan, in layer order.
pub fn requests(plan: &ImagePlan) -> Vec<Request> {
    plan.components
        .iter()
        .map(|c| {
            let debian = c.recipe.debian.clone().unwrap_or_default();
            Request {
                component: c.name.clone(),
                packages: debian.packages,
                essential: debian.essential,
                recommends: debian.recommends,
            }
        })
        .collect()
}

/// Shared context of a lock run.
pub struct LockContext<'a> {
    pub store: &'a Store,
    pub fetcher: &'a Fetcher,
    pub mirrors: &'a MirrorSettings,
    pub now: SystemTime,
}

/// Loads the Debian indexes while the Python index pages the plan will likely need are
/// fetched alongside (the Python resolution needs the Debian result to start).
fn load_indexes(
    plan: &ImagePlan,
    ctx: &LockContext,
    pages: &pysolver::PageCache,
) -> Result<index::LoadedIndexes, LockError> {
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let roots: Vec<String> = python_requests(plan)
                .unwrap_or_default()
                .iter()
                .flat_map(|r| r.requirements.iter())
                .filter_map(|r| <pep508_rs::Requirement as std::str::FromStr>::from_str(r).ok())
                .map(|r| crate::python::simple::normalize(r.name.as_ref()))
                .collect();
            if let (false, Ok(indexes)) = (roots.is_empty(), python_indexes(plan, ctx)) {
                pysolver::warm_pages(ctx.fetcher, ctx.store, &indexes, pages, roots);
            }
        });
        Ok(index::load(
            &plan.source,
            &plan.keyring_bytes,
            &plan.archs,
            ctx.store,
            ctx.fetcher,
            ctx.mirrors,
            ctx.now,
        )?)
    })
}

/// The index URLs of the plan's Python indexes, in order (none without Python).
fn python_indexes(plan: &ImagePlan, ctx: &LockContext) -> Result<Vec<String>, LockError> {
    let Some(settings) = &plan.python else {
        return Ok(Vec::new());
    };
    Ok(settings
        .indexes
        .iter()
        .map(|name| ctx.mirrors.mirror(name).map(|m| m.urls))
        .collect::<Result<Vec<_>, _>>()?
        .concat())
}

/// Which pins of an earlier lock a re-resolution may move.
#[derive(Clone, Copy, Debug)]
pub enum Moving<'a> {
    /// `lock --update`: every pin, to the newest the indexes allow.
    All,
    /// `lock --update NAME...` (the names) and a stale lock (none): every other pin is
    /// kept unless what moves, or a changed recipe, needs it to.
    Only(&'a [String]),
}

/// A pin that could not be kept: its version is in neither the current indexes nor the
/// ones the earlier lock was made from (not in the store), so it moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleasedPin {
    pub arch: String,
    pub name: String,
    pub version: String,
}

/// A lock made again from an earlier one.
#[derive(Debug)]
pub struct Relocked {
    pub lock: Lockfile,
    pub released: Vec<ReleasedPin>,
}

/// Re-resolves `plan` against the current indexes, keeping what `moving` does not name
/// of `old`. When no pin of any arch moved, the result keeps `old`'s indexes and
/// `source-date-epoch`: only what the recipes hash records can differ.
pub fn relock(
    plan: &ImagePlan,
    ctx: &LockContext,
    old: Option<&Lockfile>,
    moving: Moving,
) -> Result<Relocked, LockError> {
    let pages = pysolver::PageCache::default();
    let loaded = load_indexes(plan, ctx, &pages)?;
    let (mut lock, released) = match (old, moving) {
        (Some(old), Moving::Only(names)) => resolve_keeping(plan, ctx, loaded, old, names, &pages)?,
        (old, _) => {
            // Tarball sizes of the earlier lock spare registry requests; nothing is kept.
            let earlier_npm = old.map(crate::npm::Earlier::sizes_of).unwrap_or_default();
            let lock = resolve_loaded(plan, loaded, ctx, &pages, &BTreeMap::new(), &earlier_npm)?;
            (lock, Vec::new())
        }
    };
    // The same pins from the same suites and mirrors: the earlier indexes still say
    // where every pin comes from.
    let sources = |l: &Lockfile| -> std::collections::BTreeSet<(String, String, String)> {
        l.index
            .iter()
            .map(|r| (r.arch.clone(), r.suite.clone(), r.mirror.clone()))
            .collect()
    };
    if let Some(old) = old
        && old.archs == lock.archs
        && sources(old) == sources(&lock)
    {
        lock.index = old.index.clone();
        lock.source_date_epoch = old.source_date_epoch;
    }
    Ok(Relocked { lock, released })
}

/// Resolves keeping every pin of `old` not named in `refresh` — unless a refreshed
/// package or a changed recipe now needs another version. Pinned stanzas come from the
/// Packages files `old` was made from, which the store keeps.
fn resolve_keeping(
    plan: &ImagePlan,
    ctx: &LockContext,
    loaded: index::LoadedIndexes,
    old: &Lockfile,
    refresh: &[String],
    pages: &pysolver::PageCache,
) -> Result<(Lockfile, Vec<ReleasedPin>), LockError> {
    let mut refresh: Vec<String> = refresh.to_vec();
    // Each round that finds a pin too old for a refreshed package unpins it and retries.
    loop {
        match resolve_with_pins(plan, ctx, loaded.clone(), old, &refresh, pages) {
            Err(LockError::Resolve { error, .. }) if matches!(&*error, ResolveError::AlreadyChosen { name, .. } if !refresh.contains(name)) =>
            {
                let ResolveError::AlreadyChosen { name, .. } = *error else {
                    unreachable!()
                };
                refresh.push(name);
            }
            other => return other,
        }
    }
}

/// The stanzas of the Packages files `old` was made from for one arch that the store
/// still holds, by (name, version, suite).
fn earlier_stanzas(
    store: &Store,
    plan: &ImagePlan,
    old: &Lockfile,
    arch: &str,
) -> HashMap<(String, String, String), crate::debian::packages::BinaryPackage> {
    let suites: Vec<&str> = plan.source.suite.iter().map(|s| s.suite.as_str()).collect();
    let mut stanzas = HashMap::new();
    for record in old.index.iter().filter(|r| r.arch == arch) {
        let Some(suite_index) = suites.iter().position(|s| *s == record.suite) else {
            continue;
        };
        for (component, hash) in &record.packages {
            let sha = hash.trim_start_matches("sha256:");
            let name = format!("Packages_{}_{component}_{arch}", record.suite);
            let Ok(bytes) = store.read_verified(sha, &name) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(parsed) = crate::debian::packages::parse_packages(&text, &name, suite_index) {
                for p in parsed {
                    let key = (p.name.clone(), p.version.to_string(), record.suite.clone());
                    stanzas.insert(key, p);
                }
            }
        }
    }
    stanzas
}

fn resolve_with_pins(
    plan: &ImagePlan,
    ctx: &LockContext,
    mut loaded: index::LoadedIndexes,
    old: &Lockfile,
    refresh: &[String],
    pages: &pysolver::PageCache,
) -> Result<(Lockfile, Vec<ReleasedPin>), LockError> {
    let mut released = Vec::new();
    for (arch, index) in loaded.by_arch.iter_mut() {
        let Some(locked) = old.archs.get(arch) else {
            continue;
        };
        let mut stanzas = earlier_stanzas(ctx.store, plan, old, arch);
        for artifact in locked.debian.iter().filter(|a| !refresh.contains(&a.name)) {
            let key = (
                artifact.name.clone(),
                artifact.version.clone(),
                artifact.suite.clone(),
            );
            let stanza = match stanzas.remove(&key) {
                Some(s) => s,
                None => match index.candidate(&artifact.name) {
                    Some(c) if c.version.as_str() == artifact.version => c.clone(),
                    // Gone from every index at hand: its .deb is likely gone from the
                    // mirror too, so it moves (and is reported) rather than failing.
                    _ => {
                        released.push(ReleasedPin {
                            arch: arch.clone(),
                            name: artifact.name.clone(),
                            version: artifact.version.clone(),
                        });
                        continue;
                    }
                },
            };
            index.pin(stanza);
        }
    }
    // Python pins are kept as `name==version` constraints: they hold whenever the package
    // is still needed, and a refreshed or newly needed package resolves freely.
    let kept_python: BTreeMap<String, Vec<String>> = old
        .archs
        .iter()
        .map(|(arch, locked)| {
            let pins = locked
                .python
                .iter()
                .filter(|p| !refresh.contains(&p.name))
                .map(|p| format!("{}=={}", p.name, p.version))
                .collect();
            (arch.clone(), pins)
        })
        .collect();
    // npm pins are kept as npm keeps package-lock.json's: wherever they still satisfy
    // what asks for them.
    let earlier_npm = crate::npm::Earlier::keeping(old, refresh);
    let lock = resolve_loaded(plan, loaded, ctx, pages, &kept_python, &earlier_npm)?;
    Ok((lock, released))
}

/// `kept_python`: per arch, `name==version` constraints for the Python pins to keep.
fn resolve_loaded(
    plan: &ImagePlan,
    loaded: index::LoadedIndexes,
    ctx: &LockContext,
    pages: &pysolver::PageCache,
    kept_python: &BTreeMap<String, Vec<String>>,
    earlier_npm: &crate::npm::Earlier,
) -> Result<Lockfile, LockError> {
    let python_requests = python_requests(plan)?;
    let npm_error = |arch: &str, error: crate::npm::NpmError| LockError::Npm {
        image: plan.name.clone(),
        arch: arch.to_string(),
        error: Box::new(error),
    };
    let npm_plan = crate::npm::NpmPlan::of(&plan.components).map_err(|e| npm_error("all", e))?;
    let npm_registry = match &npm_plan {
        Some(_) => Some(
            crate::npm::registry::Registry::new(
                ctx.fetcher,
                ctx.mirrors.mirror(crate::npm::MIRROR)?.urls,
            )
            .with_disk_cache(ctx.store.area(crate::store::Area::NpmMetadata)),
        ),
        None => None,
    };
    let python_indexes = if python_requests.is_empty() {
        Vec::new()
    } else {
        python_indexes(plan, ctx)?
    };
    let requests = requests(plan);
    let suite_names: Vec<String> = plan.source.suite.iter().map(|s| s.suite.clone()).collect();
    let archs: BTreeMap<String, ArchLock> = plan
        .archs
        .par_iter()
        .map(|arch| {
            let index = &loaded.by_arch[arch];
            let selected =
                solver::resolve(index, arch, &requests).map_err(|error| LockError::Resolve {
                    image: plan.name.clone(),
                    arch: arch.clone(),
                    error: Box::new(error),
                })?;

            let python = if python_requests.is_empty() {
                Vec::new()
            } else {
                let kept = kept_python.get(arch).map(Vec::as_slice).unwrap_or_default();
                let resolve = |pins: &[String]| {
                    resolve_python(
                        plan,
                        arch,
                        &selected,
                        &with_pins(&python_requests, pins),
                        &python_indexes,
                        ctx,
                        pages,
                    )
                };
                // A changed requirement may exclude a kept pin: then the pins the recipes
                // no longer allow go, and if that is not enough, all of them.
                let mut resolved = resolve(kept);
                if resolved.is_err() && !kept.is_empty() {
                    resolved = resolve(&pins_still_allowed(kept, &python_requests))
                        .or_else(|_| resolve(&[]));
                }
                resolved?
            };
            let debian = selected
                .into_iter()
                .map(|s| DebianArtifact {
                    name: s.package.name,
                    version: s.package.version.to_string(),
                    component: s.component,
                    suite: suite_names[s.package.suite].clone(),
                    path: s.package.filename,
                    sha256: s.package.sha256,
                    size: s.package.size,
                })
                .collect();
            let npm = match (&npm_plan, &npm_registry) {
                (Some(npm_plan), Some(registry)) => {
                    crate::npm::lock_arch(registry, npm_plan, arch, earlier_npm)
                        .map_err(|e| npm_error(arch, e))?
                }
                _ => Vec::new(),
            };
            Ok((
                arch.clone(),
                ArchLock {
                    debian,
                    python,
                    npm,
                },
            ))
        })
        // All results, then the first error in input order: the error reported must not
        // depend on thread timing.
        .collect::<Vec<Result<_, LockError>>>()
        .into_iter()
        .collect::<Result<_, _>>()?;
    let index::LoadedIndexes { records, by_arch } = loaded;
    // Each arch's index holds a few hundred thousand small strings: freeing them takes a
    // tenth of a second that nothing needs to wait for.
    std::thread::spawn(move || drop(by_arch));
    let source_date_epoch = records.iter().map(|r| r.date_epoch).max().unwrap_or(0);
    Ok(Lockfile {
        image: plan.name.clone(),
        recipes: plan.resolution_hash(),
        source_date_epoch,
        index: records
            .into_iter()
            .map(|r| LockedIndex {
                ecosystem: "debian".into(),
                suite: r.suite,
                mirror: r.mirror,
                arch: r.arch,
                date: r.date,
                inrelease: r.inrelease,
                packages: r.packages,
            })
            .collect(),
        python_indexes: if python_requests.is_empty() {
            Vec::new()
        } else {
            plan.python.clone().unwrap_or_default().indexes
        },
        archs,
    })
}

/// `requests` with `pins` (`name==version`) as one more request's constraints.
fn with_pins(requests: &[PyRequest], pins: &[String]) -> Vec<PyRequest> {
    let mut requests = requests.to_vec();
    if !pins.is_empty() {
        requests.push(PyRequest {
            component: "(pins kept from the earlier lock)".into(),
            constraints: pins.to_vec(),
            ..PyRequest::default()
        });
    }
    requests
}

/// The pins (`name==version`) that every requirement and constraint of `requests` naming
/// their package still allows.
fn pins_still_allowed(pins: &[String], requests: &[PyRequest]) -> Vec<String> {
    use pep508_rs::{Requirement, VersionOrUrl};
    use std::str::FromStr;
    let named: Vec<Requirement> = requests
        .iter()
        .flat_map(|r| r.requirements.iter().chain(&r.constraints))
        .filter_map(|r| Requirement::from_str(r).ok())
        .collect();
    let normalize = crate::python::simple::normalize;
    let allowed = |pin: &&String| {
        let Some((name, version)) = pin.split_once("==") else {
            return false;
        };
        let Ok(version) = pep440_rs::Version::from_str(version) else {
            return false;
        };
        let name = normalize(name);
        named
            .iter()
            .filter(|r| normalize(r.name.as_ref()) == name)
            .all(|r| match &r.version_or_url {
                Some(VersionOrUrl::VersionSpecifier(specifiers)) => specifiers.contains(&version),
                _ => true,
            })
    };
    pins.iter().filter(allowed).cloned().collect()
}

/// The components' `[python]` requests, in layer order.
fn python_requests(plan: &ImagePlan) -> Result<Vec<PyRequest>, LockError> {
    let mut out = Vec::new();
    for c in &plan.components {
        let Some(p) = &c.recipe.python else { continue };
        out.push(PyRequest {
            component: c.name.clone(),
            requirements: p.requirements.clone(),
            constraints: p.constraints.clone(),
            exclude: p.exclude.clone(),
            build_from_source: p.build_from_source.clone(),
        });
    }
    Ok(out)
}

/// Resolves the Python requests for one arch, for the interpreter and glibc the Debian
/// resolution chose.
fn resolve_python(
    plan: &ImagePlan,
    arch: &str,
    debian: &[solver::Selected],
    requests: &[PyRequest],
    indexes: &[String],
    ctx: &LockContext,
    pages: &pysolver::PageCache,
) -> Result<Vec<PythonArtifact>, LockError> {
    let unsupported = |what: String| LockError::Unsupported {
        image: plan.name.clone(),
        what,
    };
    let version_of = |name: &str| {
        debian
            .iter()
            .find(|s| s.package.name == name)
            .map(|s| s.package.version.upstream().to_string())
    };
    let python = version_of("python3").ok_or_else(|| unsupported(format!("{arch}: components have [python] requirements but the image installs no python3; add the `python` component")))?;
    let glibc = version_of("libc6").unwrap_or_else(|| "2.41".into());
    let mut g = glibc.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let glibc = (g.next().unwrap_or(2), g.next().unwrap_or(0));
    let target = PyTarget::cpython_linux(arch, &python, Target::machine_of(arch), glibc)
        .map_err(|e| unsupported(format!("{arch}: {e}")))?;
    let builder = crate::python::sdist::HostBuilder { store: ctx.store };
    let resolved = pysolver::resolve(
        ctx.fetcher,
        ctx.store,
        indexes,
        &target,
        requests,
        pages,
        &builder,
    )
    .map_err(|e| LockError::Python(Box::new(e)))?;
    Ok(resolved
        .into_iter()
        .map(|r| PythonArtifact {
            name: r.name,
            version: r.version,
            component: r.component,
            sha256: r.file.sha256,
            size: r.file.size.unwrap_or(0),
            file: r.file.filename,
            built_from: r.built_from,
        })
        .collect())
}

/// `lock IMAGE`: leaves an up-to-date lock untouched (no network); otherwise resolves and
/// writes it atomically, and only if its bytes differ.
pub fn lock_image(
    recipes: &Recipes,
    lockfiles: &Path,
    image: &str,
    ctx: &LockContext,
) -> Result<LockOutcome, LockError> {
    let plan = recipes.plan(image)?;
    let path = lock_path(lockfiles, image);
    let earlier = read(lockfiles, image).ok();
    if let Some(existing) = &earlier
        && existing.recipes == plan.resolution_hash()
        && plan.archs.iter().all(|a| existing.archs.contains_key(a))
    {
        return Ok(LockOutcome::Unchanged);
    }
    // A stale lock keeps every pin that still satisfies the recipes.
    let Relocked { lock, released } = relock(&plan, ctx, earlier.as_ref(), Moving::Only(&[]))?;
    let text = lock.to_toml();
    if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        return Ok(LockOutcome::Unchanged);
    }
    crate::store::write_atomic(&path, text.as_bytes())?;
    Ok(LockOutcome::Written {
        debian: lock.archs.values().map(|a| a.debian.len()).sum(),
        wheels: lock.archs.values().map(|a| a.python.len()).sum(),
        npm: lock.archs.values().map(|a| a.npm.len()).sum(),
        released,
    })
}
