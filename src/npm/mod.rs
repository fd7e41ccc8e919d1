//! The npm ecosystem: packages from the npm registry (and Node.js itself, from the
//! registry's official builds), resolved as npm would place them for a global install,
//! pinned by their sha512 integrity, and installed into a layer without npm and without
//! running any package's scripts.
//!
//! - `spec.rs`: package names and specs (`name@range`, `npm:` aliases), checked before
//!   any becomes a path;
//! - `registry.rs`: the registry's abbreviated metadata (packuments), fetched once per run
//!   and kept in the store for the registry's five minutes;
//! - `resolve.rs`: npm's choice of versions and its placement of packages (`node_modules`
//!   nesting), for one arch;
//! - `install.rs`: tarballs into a layer tree, with `bin` links and declared scripts.

pub mod install;
pub mod registry;
pub mod resolve;
pub mod spec;

use crate::lockfile::{Lockfile, NpmArtifact};
use crate::recipe::PlannedComponent;
use crate::recipe::model::DeclaredScripts;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// npm's name for an image arch (`process.arch`).
pub fn cpu_of(arch: &str) -> Option<&'static str> {
    match arch {
        "amd64" => Some("x64"),
        "arm64" => Some("arm64"),
        _ => None,
    }
}

/// The registry package holding Node.js's official build for an arch.
pub fn runtime_package(arch: &str) -> Option<String> {
    cpu_of(arch).map(|cpu| format!("node-linux-{cpu}"))
}

/// The Node prefix in every image (no leading `/`), first on `PATH`.
pub const PREFIX: &str = "opt/carbon/node";

/// The mirror name of the npm registry (its URL comes from configuration or the host's npm).
pub const MIRROR: &str = "npm";

/// What an image's components ask of npm.
#[derive(Clone, Debug, Default)]
pub struct NpmPlan {
    pub requests: Vec<resolve::Request>,
    /// (component, major) of the Node.js runtime.
    pub node: Option<(String, String)>,
    /// Declared install scripts by package name, with the component declaring them.
    pub scripts: BTreeMap<String, (String, DeclaredScripts)>,
}

#[derive(Debug, thiserror::Error)]
pub enum NpmError {
    #[error(transparent)]
    Resolve(#[from] resolve::ResolveError),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error("components {first} and {second} both set the Node.js runtime ([npm] node)")]
    TwoRuntimes { first: String, second: String },
    #[error(
        "components have [npm] packages but none sets the Node.js runtime (`node = \"24\"` under [npm])"
    )]
    NoRuntime,
    #[error("npm packages are not built for arch {0}")]
    Arch(String),
    #[error("{url}: {error}")]
    Size {
        url: String,
        error: crate::fetch::FetchError,
    },
}

impl NpmError {
    /// Offline, and the registry's metadata needed is not in the store.
    pub fn is_offline_missing(&self) -> bool {
        match self {
            NpmError::Registry(e) | NpmError::Resolve(resolve::ResolveError::Registry(e)) => {
                e.is_offline_missing()
            }
            _ => false,
        }
    }
}

impl NpmPlan {
    /// The npm side of an image (`None` when no component has an `[npm]` table).
    pub fn of(components: &[PlannedComponent]) -> Result<Option<NpmPlan>, NpmError> {
        let mut plan = NpmPlan::default();
        let mut any = false;
        for c in components {
            let Some(npm) = &c.recipe.npm else { continue };
            any = true;
            if let Some(major) = &npm.node {
                if let Some((first, _)) = &plan.node {
                    return Err(NpmError::TwoRuntimes {
                        first: first.clone(),
                        second: c.name.clone(),
                    });
                }
                plan.node = Some((c.name.clone(), major.clone()));
            }
            if !npm.packages.is_empty() {
                plan.requests.push(resolve::Request {
                    component: c.name.clone(),
                    packages: npm.packages.clone(),
                });
            }
            for (name, declared) in &npm.scripts {
                plan.scripts
                    .entry(name.clone())
                    .or_insert_with(|| (c.name.clone(), declared.clone()));
            }
        }
        if !any {
            return Ok(None);
        }
        if plan.node.is_none() {
            return Err(NpmError::NoRuntime);
        }
        Ok(Some(plan))
    }

    /// Packages the recipes leave out.
    pub fn omitted(&self) -> BTreeSet<String> {
        self.scripts
            .iter()
            .filter(|(_, (_, d))| d.omit)
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// What an earlier lock tells a new resolution: tarball sizes already known (by
/// integrity), so only the others are asked of the registry, and, per arch, the versions
/// to keep (`lock --update NAME`).
#[derive(Clone, Debug, Default)]
pub struct Earlier {
    sizes: BTreeMap<String, u64>,
    kept: BTreeMap<String, resolve::Kept>,
}

impl Earlier {
    /// The tarball sizes `lock` knows; no versions kept (a re-lock after a recipe change
    /// resolves afresh).
    pub fn sizes_of(lock: &Lockfile) -> Earlier {
        let sizes = lock
            .archs
            .values()
            .flat_map(|a| a.npm.iter())
            .map(|p| (p.integrity.sri(), p.size))
            .collect();
        Earlier {
            sizes,
            kept: BTreeMap::new(),
        }
    }

    /// The sizes, and the versions of every package of `lock` not named in `refresh`.
    pub fn keeping(lock: &Lockfile, refresh: &[String]) -> Earlier {
        let kept = lock
            .archs
            .iter()
            .map(|(arch, a)| {
                let pins = a.npm.iter().filter(|p| !refresh.contains(&p.name));
                let kept = resolve::Kept::new(pins.map(|p| (p.name.clone(), p.version.clone())));
                (arch.clone(), kept)
            })
            .collect();
        Earlier {
            kept,
            ..Earlier::sizes_of(lock)
        }
    }
}

/// Pins the runtime and the packages of `plan` for one arch.
pub fn lock_arch(
    registry: &registry::Registry,
    plan: &NpmPlan,
    arch: &str,
    earlier: &Earlier,
) -> Result<Vec<NpmArtifact>, NpmError> {
    let no_pins = resolve::Kept::default();
    let kept = earlier.kept.get(arch).unwrap_or(&no_pins);
    let cpu = cpu_of(arch).ok_or_else(|| NpmError::Arch(arch.to_string()))?;
    let (node_component, major) = plan.node.clone().ok_or(NpmError::NoRuntime)?;
    let runtime_name = runtime_package(arch).expect("known arch");
    let runtime_packument = registry.packument(&runtime_name)?;
    let runtime = resolve::runtime(&runtime_packument, &major, kept)?;
    let target = resolve::Target {
        os: "linux",
        cpu,
        libc: "glibc",
        node: nodejs_semver::Version::parse(&runtime.version).map_err(|e| {
            resolve::ResolveError::Runtime {
                wanted: major.clone(),
                reason: format!("{}: {e}", runtime.version),
            }
        })?,
    };
    let placed = resolve::resolve(registry, &target, &plan.requests, &plan.omitted(), kept)?;
    for p in &placed {
        if p.manifest.has_install_script && !plan.scripts.contains_key(&p.package) {
            return Err(resolve::ResolveError::UndeclaredScripts {
                name: p.package.clone(),
                version: p.version.clone(),
                component: p.component.clone(),
            }
            .into());
        }
    }
    let runtime = resolve::Placed {
        location: install::RUNTIME_AT.to_string(),
        package: runtime.name.clone(),
        version: runtime.version.clone(),
        integrity: resolve::integrity_of(&runtime)?,
        tarball: runtime.dist.tarball.clone(),
        component: node_component,
        manifest: std::sync::Arc::new(runtime),
    };
    std::iter::once(runtime)
        .chain(placed)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|p| {
            let path = registry.tarball_path(&p.package, &p.tarball)?;
            let size = match earlier.sizes.get(&p.integrity.sri()) {
                Some(&s) => s,
                None => registry
                    .tarball_size(&p.tarball, &p.integrity)
                    .map_err(|error| NpmError::Size {
                        url: p.tarball.clone(),
                        error,
                    })?,
            };
            Ok(NpmArtifact {
                name: p.package,
                version: p.version,
                component: p.component,
                at: p.location,
                integrity: p.integrity,
                path,
                size,
            })
        })
        .collect()
}
