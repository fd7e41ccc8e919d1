//! An arch's Python layers: which wheels go into which layer (one layer per component, a
//! wheel of 200 MB or more on its own, the venv skeleton in the first), each layer's input
//! key for [`super::input_cache`], and building one layer's tree.

use super::layers::OWN_LAYER_BYTES;
use crate::layer::content::Spill;
use crate::layer::tar::EntryKind;
use crate::layer::tree::{Node, Tree};
use crate::lockfile::{Lockfile, PythonArtifact};
use crate::python::install::{self as python, Compiler, Venv, WheelError};
use crate::recipe::ImagePlan;
use crate::store::Store;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

/// The wheels of one layer.
pub struct PythonGroup<'l> {
    pub comment: String,
    pub members: Vec<&'l PythonArtifact>,
    /// Whether the venv's `pyvenv.cfg` and `bin/python*` go into this layer.
    pub skeleton: bool,
    /// The layer's input key (see [`super::input_cache`]).
    pub key: String,
}

/// Where Debian puts the modules of its `python3-*` packages.
const DEBIAN_MODULES: &str = "usr/lib/python3/dist-packages";

/// The Python layers of one arch.
pub struct PythonLayers<'l> {
    pub venv: Venv,
    /// Debian modules exposed in the venv: (name in site-packages, absolute link target).
    pub debian_links: Vec<(String, String)>,
    /// Top-level requirements (normalized names): their wheels get `REQUESTED`.
    pub requested: BTreeSet<String>,
    /// Projects (normalized names) installed without checking members against `RECORD`.
    pub unchecked_record: BTreeSet<String>,
    /// Projects (normalized names) whose `WHEEL` tags are taken from the file name.
    pub tags_from_file_name: BTreeSet<String>,
    /// Members left out of projects' wheels (normalized names → member names).
    pub omit_members: BTreeMap<String, Vec<String>>,
    pub groups: Vec<PythonGroup<'l>>,
}

/// A project name a recipe gives, in PEP 503's normal form as the lock's names are (a
/// name that is not one is kept as written, and matches nothing).
fn normal_name(name: &str) -> String {
    pep508_rs::PackageName::new(name.to_string())
        .map_or_else(|_| name.to_string(), |p| p.to_string())
}

/// The venv of an image: its prefix and the version of the locked `python3`.
fn venv(plan: &ImagePlan, lock: &Lockfile, arch: &str) -> Venv {
    let python_full = python::python_version(&lock.archs[arch].debian);
    let python_minor = python::minor_of(&python_full);
    let prefix = plan
        .python
        .clone()
        .unwrap_or_default()
        .prefix
        .trim_start_matches('/')
        .to_string();
    let system_site_packages = plan.components.iter().any(|c| {
        c.recipe
            .python
            .as_ref()
            .is_some_and(|p| p.system_site_packages)
    });
    Venv {
        prefix,
        python_minor,
        python_full,
        system_site_packages,
    }
}

/// Plans the Python layers of `arch` (empty when the lock has no wheels for it);
/// `image_paths` are the paths of the Debian layers below.
pub fn plan<'l>(
    plan: &ImagePlan,
    lock: &'l Lockfile,
    arch: &str,
    image_paths: &BTreeSet<String>,
) -> Result<PythonLayers<'l>, WheelError> {
    let wheels = &lock.archs[arch].python;
    let venv = venv(plan, lock, arch);
    let mut debian_links = Vec::new();
    for c in &plan.components {
        for module in c.recipe.python.iter().flat_map(|p| p.debian_modules.iter()) {
            let dir = format!("{DEBIAN_MODULES}/{module}");
            if !image_paths.contains(&dir) {
                return Err(WheelError::Bad {
                    wheel: format!("component {}", c.name),
                    reason: format!(
                        "debian-modules: {module} is not in /{DEBIAN_MODULES} of the image; add the Debian package that ships it"
                    ),
                });
            }
            let metadata = image_paths
                .range(format!("{dir}-")..)
                .take_while(|p| p.starts_with(&format!("{dir}-")));
            for path in std::iter::once(&dir).chain(metadata.filter(|p| {
                let name = &p[DEBIAN_MODULES.len() + 1..];
                !name.contains('/') && (name.ends_with(".dist-info") || name.ends_with(".egg-info"))
            })) {
                let name = path[DEBIAN_MODULES.len() + 1..].to_string();
                debian_links.push((name, format!("/{path}")));
            }
        }
    }
    debian_links.sort();
    let requested: BTreeSet<String> = plan
        .components
        .iter()
        .filter_map(|c| c.recipe.python.as_ref())
        .flat_map(|p| p.requirements.iter())
        .filter_map(|r| <pep508_rs::Requirement as std::str::FromStr>::from_str(r).ok())
        .map(|r| r.name.to_string())
        .collect();
    let names = |list: fn(&crate::recipe::model::PythonRequest) -> &Vec<String>| {
        plan.components
            .iter()
            .filter_map(|c| c.recipe.python.as_ref())
            .flat_map(|p| list(p).iter())
            .map(|n| normal_name(n))
            .collect::<BTreeSet<String>>()
    };
    let unchecked_record = names(|p| &p.ignore_record_hashes);
    let tags_from_file_name = names(|p| &p.wheel_tags_from_file_name);
    let mut omit_members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (project, members) in plan
        .components
        .iter()
        .filter_map(|c| c.recipe.python.as_ref())
        .flat_map(|p| &p.omit_members)
    {
        let list = omit_members.entry(normal_name(project)).or_default();
        list.extend(members.iter().cloned());
        list.sort();
        list.dedup();
    }
    let mut groups: Vec<PythonGroup> = Vec::new();
    for c in &plan.components {
        let mine: Vec<_> = wheels.iter().filter(|w| w.component == c.name).collect();
        let (big, small): (Vec<_>, Vec<_>) =
            mine.into_iter().partition(|w| w.size >= OWN_LAYER_BYTES);
        if !small.is_empty() {
            groups.push(PythonGroup {
                comment: format!("component {}: {} Python packages", c.name, small.len()),
                members: small,
                skeleton: false,
                key: String::new(),
            });
        }
        for w in big {
            groups.push(PythonGroup {
                comment: format!("component {}: Python package {}", c.name, w.name),
                members: vec![w],
                skeleton: false,
                key: String::new(),
            });
        }
    }
    if let Some(first) = groups.first_mut() {
        first.skeleton = true;
    }
    // What the bytes of a layer depend on besides the lower layers' directories (which
    // the cache checks separately): the interpreter compiling the byte-code, the venv,
    // the wheels and which of them were requested.
    let interpreter: Vec<String> = Compiler::packages(lock, &venv.python_minor)
        .into_iter()
        .map(|a| format!("{} {}", a.name, a.sha256))
        .collect();
    for g in &mut groups {
        let mut key = super::input_cache::InputKey::new();
        key.add("python layer");
        key.add(arch);
        key.add(&venv.prefix);
        key.add(&venv.python_full);
        key.add(if venv.system_site_packages {
            "system-site-packages"
        } else {
            ""
        });
        for i in &interpreter {
            key.add(i);
        }
        key.add(if g.skeleton { "skeleton" } else { "" });
        if g.skeleton {
            for (name, target) in &debian_links {
                key.add(name);
                key.add(target);
            }
        }
        for w in &g.members {
            key.add(&w.name);
            key.add(&w.file);
            key.add(&w.sha256);
            key.add(if requested.contains(&w.name) {
                "requested"
            } else {
                ""
            });
            key.add(if tags_from_file_name.contains(&w.name) {
                "tags from file name"
            } else {
                ""
            });
            for member in omit_members.get(&w.name).into_iter().flatten() {
                key.add("omit");
                key.add(member);
            }
        }
        g.key = key.finish();
    }
    Ok(PythonLayers {
        venv,
        debian_links,
        requested,
        unchecked_record,
        tags_from_file_name,
        omit_members,
        groups,
    })
}

/// The byte-code compiler, prepared the first time a layer needs it (never when every
/// Python layer comes from the cache).
pub struct LazyCompiler<'a> {
    store: &'a Store,
    lock: &'a Lockfile,
    cell: OnceLock<Option<Compiler>>,
    preparing: Mutex<()>,
}

impl<'a> LazyCompiler<'a> {
    pub fn new(store: &'a Store, lock: &'a Lockfile) -> LazyCompiler<'a> {
        LazyCompiler {
            store,
            lock,
            cell: OnceLock::new(),
            preparing: Mutex::new(()),
        }
    }

    pub fn get(&self) -> Result<Option<&Compiler>, WheelError> {
        if let Some(c) = self.cell.get() {
            return Ok(c.as_ref());
        }
        let _one = self.preparing.lock().expect("compiler lock");
        if self.cell.get().is_none() {
            let minor = python::python_minor(self.lock);
            let compiler = Compiler::prepare(self.store, self.lock, &minor)?;
            let _ = self.cell.set(compiler);
        }
        Ok(self.cell.get().and_then(|c| c.as_ref()))
    }
}

/// Installs one layer's wheels (in parallel, each into its own tree, merged in lock order)
/// and compiles their byte-code.
pub fn build(
    store: &Store,
    layers: &PythonLayers,
    group: &PythonGroup,
    compiler: &LazyCompiler,
    stage_name: &str,
    spill: &Spill,
) -> Result<Tree, WheelError> {
    let parts: Vec<Tree> = group
        .members
        .par_iter()
        .map(|w| {
            let mut part = Tree::default();
            python::install(
                store,
                w,
                &layers.venv,
                python::InstallOptions {
                    requested: layers.requested.contains(&w.name),
                    check_record: !layers.unchecked_record.contains(&w.name),
                    tags_from_file_name: layers.tags_from_file_name.contains(&w.name),
                    omit: layers
                        .omit_members
                        .get(&w.name)
                        .map_or(&[], |m| m.as_slice()),
                },
                &mut part,
                spill,
            )?;
            Ok(part)
        })
        .collect::<Result<_, WheelError>>()?;
    let mut tree = Tree::default();
    if group.skeleton {
        layers.venv.skeleton(&mut tree);
        let site = layers.venv.site_packages();
        for (name, target) in &layers.debian_links {
            tree.put(
                &format!("{site}/{name}"),
                Node {
                    kind: EntryKind::Symlink(target.clone()),
                    mode: 0o777,
                    uid: 0,
                    gid: 0,
                    mtime: python::WHEEL_MTIME,
                    content: crate::layer::content::Content::default(),
                    package: Some(format!("debian-modules:{name}")),
                },
            );
        }
    }
    // As if installed one after another: a later wheel's file replaces an earlier one's,
    // directories are made once.
    for part in parts {
        for (path, node) in part.nodes {
            if node.kind == EntryKind::Dir {
                tree.nodes.entry(path).or_insert(node);
            } else {
                tree.nodes.insert(path, node);
            }
        }
    }
    let site = layers.venv.site_packages();
    python::compile_tree(
        &mut tree,
        &|path: &str| path.starts_with(&site),
        &layers.venv.python_minor,
        python::Invalidation::UncheckedHash,
        &python::PycPlaces::new(store, stage_name, spill),
        || compiler.get(),
    )?;
    Ok(tree)
}
