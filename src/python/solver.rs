//! Python requirements → exact wheels for one target, with PubGrub.
//!
//! Versions are PEP 440, requirements PEP 508 with markers evaluated for the target
//! (CPython of the image, Linux, its machine). Only wheels the target accepts count; yanked
//! files and files whose `Requires-Python` excludes the interpreter are skipped; no sdist
//! is ever chosen. Extras are packages of their own (`name[extra]`) that pin their base.
//! Index pages and metadata of the likely graph are prefetched in parallel, so the solver
//! mostly reads from memory.

use super::build::SourceBuilder;
use super::simple::{self, CoreMetadata, IndexFile, PypiError};
use super::tags::{Target, WheelName};
use crate::digest::Sha256Hex;
use crate::fetch::Fetcher;
use crate::store::Store;
use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{ExtraName, MarkerEnvironment, Requirement, VersionOrUrl};
use pubgrub::{
    Dependencies, DependencyConstraints, DependencyProvider, PackageResolutionStatistics,
    PubGrubError, Ranges, Reporter,
};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// Index pages fetched during one lock run, shared by every arch's resolution (the pages
/// do not depend on the arch; which files fit does).
#[derive(Default)]
pub struct PageCache {
    pages: Mutex<HashMap<String, Arc<Vec<IndexFile>>>>,
}

impl PageCache {
    fn get(
        &self,
        fetcher: &Fetcher,
        indexes: &[String],
        name: &str,
    ) -> Result<Arc<Vec<IndexFile>>, PypiError> {
        if let Some(p) = self.pages.lock().expect("lock").get(name) {
            return Ok(p.clone());
        }
        let files = Arc::new(simple::project_files(fetcher, indexes, name)?);
        self.pages
            .lock()
            .expect("lock")
            .insert(name.to_string(), files.clone());
        Ok(files)
    }
}

/// Fetches, before the target is known (while the Debian side of a lock resolves), the
/// index pages of `roots` and of what their newest releases require, with the wheel
/// metadata that tells; the resolution then finds most pages in memory. Only a guess of the
/// graph: dependencies behind extras or markers for other systems are not followed, and
/// failures are left for the resolution to report.
pub fn warm_pages(
    fetcher: &Fetcher,
    store: &Store,
    indexes: &[String],
    pages: &PageCache,
    roots: Vec<String>,
) {
    let elsewhere = [
        "win32",
        "Windows",
        "darwin",
        "Darwin",
        "cygwin",
        "emscripten",
    ];
    walk_breadth_first(roots, |name| {
        let Ok(files) = pages.get(fetcher, indexes, name) else {
            return Vec::new();
        };
        // The newest version with a wheel; its first wheel by name.
        let newest = files
            .iter()
            .filter(|f| !f.yanked)
            .filter_map(|f| {
                let wheel = WheelName::parse(&f.filename)?;
                let version = Version::from_str(&wheel.version).ok()?;
                (!version.any_prerelease()).then_some((version, &f.filename, f))
            })
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)));
        let Some((_, _, file)) = newest else {
            return Vec::new();
        };
        let Ok(meta) = simple::wheel_metadata(fetcher, store, file) else {
            return Vec::new();
        };
        meta.requires_dist
            .iter()
            .filter(|t| {
                let marker = t.split_once(';').map_or("", |(_, m)| m);
                !marker.contains("extra") && !elsewhere.iter().any(|e| marker.contains(e))
            })
            .filter_map(|t| parse_requirement(t).ok())
            .map(|r| simple::normalize(r.name.as_ref()))
            .collect()
    });
}

/// Visits project names breadth-first from `roots`, each once; `expand` gives a name's
/// next names. Page and metadata requests wait on the network, not the CPU: 16 run at a
/// time, more than there are cores.
fn walk_breadth_first(roots: Vec<String>, expand: impl Fn(&str) -> Vec<String> + Sync) {
    let Ok(pool) = rayon::ThreadPoolBuilder::new().num_threads(16).build() else {
        return;
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut level = roots;
    while !level.is_empty() {
        level.retain(|n| seen.insert(n.clone()));
        let next: Vec<Vec<String>> =
            pool.install(|| level.par_iter().map(|name| expand(name)).collect());
        level = next.into_iter().flatten().collect();
    }
}

/// One component's Python request.
#[derive(Clone, Debug, Default)]
pub struct PyRequest {
    pub component: String,
    pub requirements: Vec<String>,
    pub constraints: Vec<String>,
    pub exclude: Vec<String>,
    /// Names whose sdist may be built when no wheel fits.
    pub build_from_source: Vec<String>,
}

/// The interpreter and platform one arch resolves for.
pub struct PyTarget {
    pub arch: String,
    pub tags: Target,
    pub env: MarkerEnvironment,
    pub python: Version,
}

impl PyTarget {
    /// CPython `python` (e.g. `3.13.5`) on Linux for `machine` (`x86_64`, `aarch64`) with
    /// glibc `glibc`; `arch` names the target in messages.
    pub fn cpython_linux(
        arch: &str,
        python: &str,
        machine: &str,
        glibc: (u32, u32),
    ) -> Result<PyTarget, String> {
        let minor: u32 = python
            .split('.')
            .nth(1)
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| format!("cannot read the Python version {python:?}"))?;
        let env: MarkerEnvironment = pep508_rs::MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: python,
            os_name: "posix",
            platform_machine: machine,
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: python,
            python_version: &format!("3.{minor}"),
            sys_platform: "linux",
        }
        .try_into()
        .map_err(|e| format!("Python version {python:?}: {e}"))?;
        Ok(PyTarget {
            arch: arch.to_string(),
            tags: Target {
                minor,
                machine: machine.to_string(),
                glibc,
            },
            env,
            python: Version::from_str(python).map_err(|e| format!("{python:?}: {e}"))?,
        })
    }
}

/// A chosen wheel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub name: String,
    pub version: String,
    pub component: String,
    pub file: IndexFile,
    /// Set when the wheel was built here from an sdist.
    pub built_from: Option<crate::lockfile::SourceBuild>,
}

#[derive(Debug, thiserror::Error)]
pub enum PyResolveError {
    #[error("component {component}: requirement {text:?}: {reason}")]
    BadRequirement {
        component: String,
        text: String,
        reason: String,
    },
    #[error("{arch}: no set of Python packages satisfies the requirements:\n{report}")]
    NoSolution { arch: String, report: String },
    #[error("{arch}: {0}", arch = .1)]
    Index(PypiError, String),
    #[error("{arch}: choosing a version of {package}: {reason}")]
    Provider {
        arch: String,
        package: String,
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pkg {
    Root,
    Name(String),
    Extra(String, String),
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => f.write_str("the image's requirements"),
            Pkg::Name(n) => f.write_str(n),
            Pkg::Extra(n, e) => write!(f, "{n}[{e}]"),
        }
    }
}

type Range = Ranges<Version>;

#[derive(Clone, Debug)]
struct Candidate {
    version: Version,
    file: IndexFile,
}

struct Provider<'a> {
    fetcher: &'a Fetcher,
    store: &'a Store,
    indexes: &'a [String],
    target: &'a PyTarget,
    root: Vec<(Pkg, Range)>,
    constraints: HashMap<String, Range>,
    excluded: HashSet<String>,
    projects: Mutex<HashMap<String, Arc<Vec<Candidate>>>>,
    pages: &'a PageCache,
    metadata: Mutex<HashMap<Sha256Hex, Arc<CoreMetadata>>>,
    build_from_source: HashSet<String>,
    /// sdist sha256 → the wheel built from it and what it was built with.
    builds: Mutex<HashMap<Sha256Hex, (IndexFile, crate::lockfile::SourceBuild)>>,
    builder: &'a dyn SourceBuilder,
}

/// `name-version.tar.gz` → version.
fn sdist_version(filename: &str) -> Option<&str> {
    let stem = filename.strip_suffix(".tar.gz")?;
    stem.rsplit_once('-').map(|(_, v)| v)
}

fn parse_requirement(text: &str) -> Result<Requirement, String> {
    Requirement::from_str(text).map_err(|e| e.to_string())
}

fn range_of(req: &Requirement) -> Result<Range, String> {
    match &req.version_or_url {
        None => Ok(Range::full()),
        Some(VersionOrUrl::VersionSpecifier(spec)) => Ok(Range::from(spec.clone())),
        Some(VersionOrUrl::Url(_)) => Err("URL requirements are not supported".into()),
    }
}

impl<'a> Provider<'a> {
    fn candidates(&self, name: &str) -> Result<Arc<Vec<Candidate>>, PypiError> {
        if let Some(c) = self.projects.lock().expect("lock").get(name) {
            return Ok(c.clone());
        }
        let files = self.pages.get(self.fetcher, self.indexes, name)?;
        let mut best: BTreeMap<Version, (u32, IndexFile)> = BTreeMap::new();
        for f in files.iter().cloned() {
            if f.yanked {
                continue;
            }
            let (version_text, score) = match WheelName::parse(&f.filename) {
                Some(wheel) => match self.target.tags.score(&wheel) {
                    Some(score) => (wheel.version, score),
                    None => continue,
                },
                // An sdist counts only where the recipe allows building it, below any wheel.
                None if self.build_from_source.contains(name) => match sdist_version(&f.filename) {
                    Some(v) => (v.to_string(), 0),
                    None => continue,
                },
                None => continue,
            };
            if let Some(rp) = &f.requires_python {
                match VersionSpecifiers::from_str(rp) {
                    Ok(spec) if spec.contains(&self.target.python) => {}
                    _ => continue,
                }
            }
            let Ok(version) = Version::from_str(&version_text) else {
                continue;
            };
            // Best tag first; equal scores go to the file name that sorts first.
            let better = best
                .get(&version)
                .is_none_or(|(s, b)| score > *s || score == *s && f.filename < b.filename);
            if better {
                best.insert(version, (score, f));
            }
        }
        let list: Vec<Candidate> = best
            .into_iter()
            .rev()
            .map(|(version, (_, file))| Candidate { version, file })
            .collect();
        let list = Arc::new(list);
        self.projects
            .lock()
            .expect("lock")
            .insert(name.to_string(), list.clone());
        Ok(list)
    }

    fn metadata_of(&self, file: &IndexFile) -> Result<Arc<CoreMetadata>, PypiError> {
        if let Some(m) = self.metadata.lock().expect("lock").get(&file.sha256) {
            return Ok(m.clone());
        }
        let m = Arc::new(if sdist_version(&file.filename).is_some() {
            self.build_sdist(file)?
        } else {
            simple::wheel_metadata(self.fetcher, self.store, file)?
        });
        self.metadata
            .lock()
            .expect("lock")
            .insert(file.sha256.clone(), m.clone());
        Ok(m)
    }

    /// Builds an allowed sdist into a wheel (its backend resolved for the host's Python and
    /// pinned) and returns the wheel's metadata.
    fn build_sdist(&self, file: &IndexFile) -> Result<CoreMetadata, PypiError> {
        let failed = |reason: String| PypiError::Metadata {
            file: file.filename.clone(),
            reason,
        };
        let project = file
            .filename
            .strip_suffix(".tar.gz")
            .and_then(|s| s.rsplit_once('-'))
            .map(|(n, _)| simple::normalize(n))
            .unwrap_or_default();
        let fetch = |f: &IndexFile| simple::fetch_file(self.fetcher, self.store, f);
        fetch(file)?;
        let bytes = self
            .store
            .read_verified(&file.sha256, &file.filename)
            .map_err(|e| failed(e.to_string()))?;
        let build_requires = self
            .builder
            .build_requires(&bytes, &file.filename)
            .map_err(|e| failed(e.to_string()))?;
        let full = self
            .builder
            .python_version()
            .map_err(|e| failed(e.to_string()))?;
        // Build backends run on the host: its machine, and manylinux2014 wheels at most.
        let host = PyTarget::cpython_linux(
            &format!("the build of {}", file.filename),
            &full,
            std::env::consts::ARCH,
            (2, 17),
        )
        .map_err(|e| failed(format!("host Python: {e}")))?;
        let request = PyRequest {
            component: format!("build-system of {}", file.filename),
            requirements: build_requires,
            ..Default::default()
        };
        let backend = resolve(
            self.fetcher,
            self.store,
            self.indexes,
            &host,
            &[request],
            self.pages,
            self.builder,
        )
        .map_err(|e| failed(format!("resolving its build backend: {e}")))?;
        let mut requires = Vec::new();
        for r in &backend {
            let path = fetch(&r.file)?;
            requires.push(crate::lockfile::IndexPin {
                project: r.name.clone(),
                file: r.file.filename.clone(),
                sha256: r.file.sha256.clone(),
                size: std::fs::metadata(&path)
                    .map_err(|e| failed(e.to_string()))?
                    .len(),
            });
        }
        let sdist = crate::lockfile::IndexPin {
            project,
            file: file.filename.clone(),
            sha256: file.sha256.clone(),
            size: bytes.len() as u64,
        };
        let built = self
            .builder
            .build(&sdist, &requires)
            .map_err(|e| failed(e.to_string()))?;
        // Built on the host: only a pure-Python wheel is right for every arch.
        let pure = WheelName::parse(&built.file).is_some_and(|w| {
            w.tags
                .iter()
                .all(|t| t.platform == "any" && t.abi == "none")
        });
        if !pure {
            return Err(failed(format!(
                "it built {}, which is not pure Python; only pure-Python sdists can be built (the host's compiler would make code for the host's arch)",
                built.file
            )));
        }
        let wheel = self
            .store
            .read_verified(&built.sha256, &built.file)
            .map_err(|e| failed(e.to_string()))?;
        let metadata =
            simple::metadata_in_wheel(wheel).map_err(|e| failed(format!("{}: {e}", built.file)))?;
        self.builds.lock().expect("lock").insert(
            file.sha256.clone(),
            (
                IndexFile {
                    filename: built.file.clone(),
                    url: String::new(),
                    sha256: built.sha256.clone(),
                    size: Some(built.size),
                    requires_python: file.requires_python.clone(),
                    yanked: false,
                    core_metadata: false,
                },
                crate::lockfile::SourceBuild { sdist, requires },
            ),
        );
        Ok(CoreMetadata::parse(&String::from_utf8_lossy(&metadata)))
    }

    /// Lines naming the projects seen that have no file this target can use, and why.
    fn unusable_projects(&self) -> String {
        let projects = self.projects.lock().expect("lock");
        let mut names: Vec<&String> = projects
            .iter()
            .filter(|(_, c)| c.is_empty())
            .map(|(n, _)| n)
            .collect();
        names.sort();
        let mut out = String::new();
        for name in names {
            let Ok(files) = self.pages.get(self.fetcher, self.indexes, name) else {
                continue;
            };
            let t = &self.target.tags;
            let why = if files.is_empty() {
                "the index lists no files".to_string()
            } else if files
                .iter()
                .all(|f| WheelName::parse(&f.filename).is_none())
            {
                "the index has only source distributions; list it in `build-from-source` to build it (pure-Python sdists only)".to_string()
            } else {
                format!(
                    "none of its {} files is a wheel for CPython 3.{} on {} with glibc {}.{} (or is yanked, or excluded by Requires-Python)",
                    files.len(),
                    t.minor,
                    t.machine,
                    t.glibc.0,
                    t.glibc.1
                )
            };
            out.push_str(&format!("\n{name}: {why}"));
        }
        out
    }

    /// Turns requirements into constraints, for `extras` active.
    fn requirement_deps(
        &self,
        reqs: &[String],
        extras: &[ExtraName],
        only_extra: bool,
        out: &mut Vec<(Pkg, Range)>,
    ) -> Result<(), String> {
        for text in reqs {
            let req = parse_requirement(text)?;
            if !req.marker.evaluate(&self.target.env, extras) {
                continue;
            }
            if only_extra && req.marker.evaluate(&self.target.env, &[]) {
                continue;
            }
            let name = simple::normalize(req.name.as_ref());
            if self.excluded.contains(&name) {
                continue;
            }
            let mut range = range_of(&req)?;
            if let Some(c) = self.constraints.get(&name) {
                range = range.intersection(c);
            }
            for extra in &req.extras {
                out.push((Pkg::Extra(name.clone(), extra.to_string()), range.clone()));
            }
            out.push((Pkg::Name(name), range));
        }
        Ok(())
    }

    /// Walks the newest candidates breadth-first, fetching pages and metadata in parallel.
    fn prefetch(&self) {
        let roots: Vec<String> = self
            .root
            .iter()
            .filter_map(|(p, _)| {
                if let Pkg::Name(n) = p {
                    Some(n.clone())
                } else {
                    None
                }
            })
            .collect();
        walk_breadth_first(roots, |name| {
            let Ok(cands) = self.candidates(name) else {
                return Vec::new();
            };
            let Some(first) = cands.first() else {
                return Vec::new();
            };
            let Ok(meta) = self.metadata_of(&first.file) else {
                return Vec::new();
            };
            meta.requires_dist
                .iter()
                .filter_map(|t| parse_requirement(t).ok())
                .filter(|r| r.marker.evaluate(&self.target.env, &[]))
                .map(|r| simple::normalize(r.name.as_ref()))
                .collect()
        });
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(String);

impl<'a> DependencyProvider for Provider<'a> {
    type P = Pkg;
    type V = Version;
    type VS = Range;
    type Priority = (u32, std::cmp::Reverse<usize>);
    type M = String;
    type Err = ProviderError;

    fn prioritize(
        &self,
        package: &Pkg,
        range: &Range,
        stats: &PackageResolutionStatistics,
    ) -> Self::Priority {
        let count = match package {
            Pkg::Name(n) | Pkg::Extra(n, _) => self
                .candidates(n)
                .map(|c| c.iter().filter(|v| range.contains(&v.version)).count())
                .unwrap_or(0),
            Pkg::Root => 0,
        };
        (stats.conflict_count(), std::cmp::Reverse(count))
    }

    fn choose_version(
        &self,
        package: &Pkg,
        range: &Range,
    ) -> Result<Option<Version>, ProviderError> {
        match package {
            Pkg::Root => Ok(Some(Version::from_str("0").expect("version"))),
            Pkg::Name(n) | Pkg::Extra(n, _) => {
                let cands = self
                    .candidates(n)
                    .map_err(|e| ProviderError(e.to_string()))?;
                // PEP 440: pre-releases only when no final release fits.
                let fits = |c: &&Candidate| range.contains(&c.version);
                let stable = cands
                    .iter()
                    .filter(fits)
                    .find(|c| !c.version.any_prerelease());
                Ok(stable
                    .or_else(|| cands.iter().find(fits))
                    .map(|c| c.version.clone()))
            }
        }
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, Range, String>, ProviderError> {
        let mut deps: Vec<(Pkg, Range)> = Vec::new();
        match package {
            Pkg::Root => deps.extend(self.root.iter().cloned()),
            Pkg::Name(n) | Pkg::Extra(n, _) => {
                let cands = self
                    .candidates(n)
                    .map_err(|e| ProviderError(e.to_string()))?;
                let Some(c) = cands.iter().find(|c| &c.version == version) else {
                    return Ok(Dependencies::Unavailable(format!(
                        "no usable wheel of {n} {version}"
                    )));
                };
                let meta = self
                    .metadata_of(&c.file)
                    .map_err(|e| ProviderError(e.to_string()))?;
                match package {
                    Pkg::Extra(_, extra) => {
                        deps.push((Pkg::Name(n.clone()), Range::singleton(version.clone())));
                        let e =
                            ExtraName::from_str(extra).map_err(|e| ProviderError(e.to_string()))?;
                        self.requirement_deps(&meta.requires_dist, &[e], true, &mut deps)
                            .map_err(ProviderError)?;
                    }
                    _ => self
                        .requirement_deps(&meta.requires_dist, &[], false, &mut deps)
                        .map_err(ProviderError)?,
                }
            }
        }
        // One constraint per package: intersect duplicates.
        let mut merged: BTreeMap<Pkg, Range> = BTreeMap::new();
        for (p, r) in deps {
            let entry = merged.entry(p).or_insert_with(Range::full);
            *entry = entry.intersection(&r);
        }
        Ok(Dependencies::Available(
            merged
                .into_iter()
                .collect::<DependencyConstraints<Pkg, Range>>(),
        ))
    }
}

/// Resolves every component's requirements together for one target. Packages belong to the
/// first component (in order) whose requirements lead to them.
/// Resolves `requests` for `target`; sdists the requests allow are built by `builder`.
pub fn resolve(
    fetcher: &Fetcher,
    store: &Store,
    indexes: &[String],
    target: &PyTarget,
    requests: &[PyRequest],
    pages: &PageCache,
    builder: &dyn SourceBuilder,
) -> Result<Vec<Resolved>, PyResolveError> {
    let env_none: &[ExtraName] = &[];
    let mut root = Vec::new();
    let mut constraints: HashMap<String, Range> = HashMap::new();
    let mut excluded = HashSet::new();
    let mut direct: Vec<(String, Vec<String>)> = Vec::new();
    for r in requests {
        for e in &r.exclude {
            excluded.insert(simple::normalize(e));
        }
        for text in &r.constraints {
            let req = parse_requirement(text).map_err(|reason| PyResolveError::BadRequirement {
                component: r.component.clone(),
                text: text.clone(),
                reason,
            })?;
            let range = range_of(&req).map_err(|reason| PyResolveError::BadRequirement {
                component: r.component.clone(),
                text: text.clone(),
                reason,
            })?;
            let name = simple::normalize(req.name.as_ref());
            let entry = constraints.entry(name).or_insert_with(Range::full);
            *entry = entry.intersection(&range);
        }
    }
    for r in requests {
        let mut names = Vec::new();
        for text in &r.requirements {
            let req = parse_requirement(text).map_err(|reason| PyResolveError::BadRequirement {
                component: r.component.clone(),
                text: text.clone(),
                reason,
            })?;
            if !req.marker.evaluate(&target.env, env_none) {
                continue;
            }
            let name = simple::normalize(req.name.as_ref());
            let mut range = range_of(&req).map_err(|reason| PyResolveError::BadRequirement {
                component: r.component.clone(),
                text: text.clone(),
                reason,
            })?;
            if let Some(c) = constraints.get(&name) {
                range = range.intersection(c);
            }
            for extra in &req.extras {
                root.push((Pkg::Extra(name.clone(), extra.to_string()), range.clone()));
            }
            root.push((Pkg::Name(name.clone()), range));
            names.push(name);
        }
        direct.push((r.component.clone(), names));
    }
    let provider = Provider {
        fetcher,
        store,
        indexes,
        target,
        root,
        constraints,
        excluded,
        projects: Mutex::new(HashMap::new()),
        pages,
        metadata: Mutex::new(HashMap::new()),
        build_from_source: requests
            .iter()
            .flat_map(|r| r.build_from_source.iter())
            .map(|n| simple::normalize(n))
            .collect(),
        builds: Mutex::new(HashMap::new()),
        builder,
    };
    provider.prefetch();
    let solution = match pubgrub::resolve(
        &provider,
        Pkg::Root,
        Version::from_str("0").expect("version"),
    ) {
        Ok(s) => s,
        Err(PubGrubError::NoSolution(tree)) => {
            let mut tree = tree;
            tree.collapse_no_versions();
            let mut report = pubgrub::DefaultStringReporter::report(&tree);
            report.push_str(&provider.unusable_projects());
            return Err(PyResolveError::NoSolution {
                arch: target.arch.clone(),
                report,
            });
        }
        // The index failed us (a page refused, a download broken): that, not "no
        // solution", is what the user must read.
        Err(PubGrubError::ErrorChoosingVersion { package, source }) => {
            return Err(PyResolveError::Provider {
                arch: target.arch.clone(),
                package: package.to_string(),
                reason: source.to_string(),
            });
        }
        Err(PubGrubError::ErrorRetrievingDependencies {
            package,
            version,
            source,
        }) => {
            return Err(PyResolveError::NoSolution {
                arch: target.arch.clone(),
                report: format!("reading the dependencies of {package} {version}: {source}"),
            });
        }
        Err(e) => {
            return Err(PyResolveError::NoSolution {
                arch: target.arch.clone(),
                report: e.to_string(),
            });
        }
    };
    let mut chosen: BTreeMap<String, Version> = BTreeMap::new();
    let mut extras: BTreeMap<String, Vec<ExtraName>> = BTreeMap::new();
    for (p, v) in solution {
        match p {
            Pkg::Name(n) => {
                chosen.insert(n, v);
            }
            Pkg::Extra(n, e) => extras
                .entry(n)
                .or_default()
                .extend(ExtraName::from_str(&e).ok()),
            Pkg::Root => {}
        }
    }
    // Component ownership: breadth-first from each component's direct requirements.
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for (component, names) in &direct {
        let mut queue: Vec<String> = names.clone();
        while let Some(name) = queue.pop() {
            if owner.contains_key(&name) || !chosen.contains_key(&name) {
                continue;
            }
            owner.insert(name.clone(), component.clone());
            let cands = provider
                .candidates(&name)
                .map_err(|e| PyResolveError::Index(e, target.arch.clone()))?;
            let Some(c) = cands.iter().find(|c| c.version == chosen[&name]) else {
                continue;
            };
            let meta = provider
                .metadata_of(&c.file)
                .map_err(|e| PyResolveError::Index(e, target.arch.clone()))?;
            let active = extras.get(&name).cloned().unwrap_or_default();
            for text in &meta.requires_dist {
                if let Ok(req) = parse_requirement(text)
                    && req.marker.evaluate(&target.env, &active)
                {
                    queue.push(simple::normalize(req.name.as_ref()));
                }
            }
        }
    }
    let mut out = Vec::new();
    let names: BTreeSet<&String> = chosen.keys().collect();
    for name in names {
        let version = &chosen[name];
        let cands = provider
            .candidates(name)
            .map_err(|e| PyResolveError::Index(e, target.arch.clone()))?;
        let c = cands
            .iter()
            .find(|c| &c.version == version)
            .expect("chosen versions have candidates");
        let built = if sdist_version(&c.file.filename).is_some() {
            provider
                .metadata_of(&c.file)
                .map_err(|e| PyResolveError::Index(e, target.arch.clone()))?;
            provider
                .builds
                .lock()
                .expect("lock")
                .get(&c.file.sha256)
                .cloned()
        } else {
            None
        };
        let (file, built_from) = match built {
            Some((wheel, from)) => (wheel, Some(from)),
            None => (c.file.clone(), None),
        };
        let mut file = file;
        if file.size.is_none() {
            let size = simple::file_size(fetcher, store, &file)
                .map_err(|e| PyResolveError::Index(e, target.arch.clone()))?;
            file.size = Some(size);
        }
        out.push(Resolved {
            name: name.clone(),
            version: version.to_string(),
            component: owner
                .get(name)
                .cloned()
                .unwrap_or_else(|| direct.first().map(|d| d.0.clone()).unwrap_or_default()),
            file,
            built_from,
        });
    }
    Ok(out)
}
