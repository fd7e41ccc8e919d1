//! `realize`: from a lock to images. For every arch (in parallel): load and verify the
//! locked packages, build one layer per component plus the fixups layer, write the config
//! and manifest; then the OCI layout with the multi-arch index and a docker-archive per
//! arch. A realize whose inputs and outputs are unchanged only verifies and returns.

pub mod check;
pub mod input_cache;
pub mod layers;
pub mod packages;
pub mod python;
pub mod python_layers;

use crate::fixup::{self, FixupError, FixupInput};
use crate::layer::compress::Compression;
use crate::layer::tree::{Tree, TreeError};
use crate::lock::Lockfile;
use crate::oci::{self, BuiltImage, BuiltLayer, ConfigSettings, digest_of};
use crate::recipe::ImagePlan;
use crate::store::{Store, StoreError, write_atomic};
use layers::LayerError;
use packages::{LoadError, ReplacesTable};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RealizeError {
    #[error("{arch}: {error}")]
    Load { arch: String, error: LoadError },
    #[error("{arch}: {error}")]
    Layer { arch: String, error: LayerError },
    #[error("{arch}: {error}")]
    Tree { arch: String, error: TreeError },
    #[error("{arch}: {error}")]
    Wheel {
        arch: String,
        error: python::WheelError,
    },
    #[error("{arch}: fixups: {error}")]
    Fixup { arch: String, error: FixupError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("image {image} is not built for {arch} (its archs: {archs})")]
    UnknownArch {
        image: String,
        arch: String,
        archs: String,
    },
    #[error("{0}")]
    CheckFailed(String),
}

/// What to produce.
#[derive(Clone, Debug)]
pub struct RealizeOptions {
    pub archs: Vec<String>,
    pub compression: Compression,
    pub oci: bool,
    pub docker: bool,
    pub out_dir: PathBuf,
    /// `name:tag` for docker archives; the tag part names the OCI layout references.
    pub repo_tag: String,
    /// Rebuild from sources ignoring cached layers and compare with the existing output.
    pub check: bool,
}

/// Where the outputs of one realize went.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Realized {
    pub image: String,
    pub oci_layout: Option<PathBuf>,
    pub index_digest: Option<String>,
    /// arch → (manifest digest, docker archive path)
    pub archs: BTreeMap<String, (String, Option<PathBuf>)>,
    /// Size of every file written, to verify a no-op quickly.
    pub files: BTreeMap<PathBuf, u64>,
    /// Layer count per arch, for reporting.
    pub layers: BTreeMap<String, Vec<BuiltLayer>>,
    #[serde(default)]
    pub reused: bool,
}

fn tag_part(repo_tag: &str) -> &str {
    repo_tag
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map(|(_, t)| t)
        .unwrap_or("latest")
}

/// The contents of the files the plan's `[[path]]` entries ship (the lock's recipes hash
/// covers the recipes, not these files).
fn shipped_files(plan: &ImagePlan, files_dir: &Path) -> String {
    let mut out = String::new();
    for spec in plan.components.iter().flat_map(|c| c.recipe.path.iter()) {
        if spec.kind == crate::recipe::PathKind::File
            && let Some(source) = &spec.source
        {
            let content = std::fs::read(files_dir.join(source)).unwrap_or_default();
            out.push_str(&format!("{source} {}\n", digest_of(&content)));
        }
    }
    out
}

/// The key of a whole realize: same lock, shipped files, settings and tool ⇒ same outputs.
fn realize_key(lock_text: &str, shipped: &str, opts: &RealizeOptions) -> String {
    let text = format!(
        "{}\n{}\n{}\n{:?}\n{}\n{}\n{}\n{}\n{shipped}\n{}",
        layers::LAYER_FORMAT,
        env!("CARBON_SOURCE_HASH"),
        opts.compression.name(),
        opts.archs,
        opts.oci,
        opts.docker,
        opts.repo_tag,
        opts.out_dir.display(),
        lock_text
    );
    digest_of(text.as_bytes())
        .trim_start_matches("sha256:")
        .to_string()
}

fn record_path(store: &Store, key: &str) -> PathBuf {
    store.root().join("realized").join(format!("{key}.json"))
}

/// A previous identical realize whose outputs are all still there, unchanged in size.
fn previous(store: &Store, key: &str) -> Option<Realized> {
    let record: Realized =
        serde_json::from_slice(&std::fs::read(record_path(store, key)).ok()?).ok()?;
    let intact = record
        .files
        .iter()
        .all(|(p, size)| std::fs::metadata(p).is_ok_and(|m| m.len() == *size));
    if !intact {
        return None;
    }
    if let (Some(layout), Some(digest)) = (&record.oci_layout, &record.index_digest) {
        let index = std::fs::read(
            layout
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .ok()?;
        if digest_of(&index) != *digest {
            return None;
        }
    }
    Some(Realized {
        reused: true,
        ..record
    })
}

/// Builds one arch's image from the lock.
fn build_arch(
    plan: &ImagePlan,
    lock: &Lockfile,
    arch: &str,
    store: &Store,
    opts: &RealizeOptions,
    files_dir: &Path,
    compiler: &python_layers::LazyCompiler,
) -> Result<(BuiltImage, Vec<Vec<u8>>), RealizeError> {
    let artifacts = &lock.archs[arch].debian;
    let mut loaded = packages::load_all(store, artifacts).map_err(|error| RealizeError::Load {
        arch: arch.into(),
        error,
    })?;
    let replaces = ReplacesTable::new(&loaded);
    let components: Vec<String> = plan.components.iter().map(|c| c.name.clone()).collect();
    let plans = layers::plan(&components, &loaded);
    let mut python_comments: Vec<String> = Vec::new();
    let mut trees =
        layers::trees(&plans, &mut loaded, &replaces).map_err(|error| RealizeError::Layer {
            arch: arch.into(),
            error,
        })?;

    // Python environments: one layer per component with wheels (a wheel of 200 MB or more
    // on its own), the venv skeleton in the first; a layer built before from the same
    // inputs is reused without unpacking its wheels.
    let python = python_layers::plan(plan, lock, arch);
    let wheel_error = |error| RealizeError::Wheel {
        arch: arch.into(),
        error,
    };
    let build_python = |i: usize| {
        python_layers::build(
            store,
            &python,
            &python.groups[i],
            compiler,
            &format!("{arch}-{i}"),
        )
        .map_err(wheel_error)
    };
    let python_built: Vec<Result<(Tree, Option<input_cache::Prebuilt>), RealizeError>> = (0
        ..python.groups.len())
        .into_par_iter()
        .map(|i| {
            if !opts.check
                && let Some(hit) = input_cache::lookup(store, &python.groups[i].key, |diff_id| {
                    layers::cached(store, diff_id, opts.compression).is_some()
                })
            {
                return Ok((hit.0, Some(hit.1)));
            }
            Ok((build_python(i)?, None))
        })
        .collect();
    let python_first = trees.len();
    let mut prebuilt: Vec<Option<input_cache::Prebuilt>> = vec![None; trees.len()];
    for (built, group) in python_built.into_iter().zip(&python.groups) {
        let (tree, hit) = built?;
        trees.push(tree);
        prebuilt.push(hit);
        python_comments.push(group.comment.clone());
    }
    // Fresh Python layers are recorded as built, before the reconciliation below.
    let fresh_python: Vec<(usize, Tree)> = (python_first..trees.len())
        .filter(|&t| prebuilt[t].is_none())
        .map(|t| (t, trees[t].without_contents()))
        .collect();

    // The fixups layer sees the whole image.
    let mut infos: Vec<fixup::InstalledPackage> = loaded.iter().map(|p| p.info.clone()).collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    let mut retained = BTreeMap::new();
    for p in &mut loaded {
        retained.append(&mut p.retained);
    }
    let paths: BTreeSet<String> = trees.iter().flat_map(|t| t.nodes.keys().cloned()).collect();
    let users: Vec<_> = plan
        .components
        .iter()
        .flat_map(|c| c.recipe.user.clone())
        .collect();
    let recipe_paths: Vec<_> = plan
        .components
        .iter()
        .flat_map(|c| c.recipe.path.clone())
        .collect();
    let input = FixupInput {
        arch,
        source_date_epoch: lock.source_date_epoch,
        packages: &infos,
        paths: &paths,
        retained: &retained,
        users: &users,
        recipe_paths: &recipe_paths,
        files_dir: files_dir.to_path_buf(),
    };
    let fixups: Tree = fixup::build(&input).map_err(|error| RealizeError::Fixup {
        arch: arch.into(),
        error,
    })?;
    drop(loaded);
    trees.push(fixups);
    prebuilt.push(None);
    let mut comments: Vec<String> = plans.iter().map(|p| p.comment.clone()).collect();
    comments.extend(python_comments);
    comments.push("fixups: dpkg database, accounts, alternatives, configuration".into());
    let tree_error = |error| RealizeError::Tree {
        arch: arch.into(),
        error,
    };
    layers::reconcile(&mut trees, &replaces).map_err(tree_error)?;
    // A reused layer whose directories below changed since it was built is built again.
    let mut stale = false;
    for t in python_first..python_first + python.groups.len() {
        if let Some(hit) = &prebuilt[t]
            && input_cache::skeleton_digest(&trees[t]) != hit.reconciled
        {
            trees[t] = build_python(t - python_first)?;
            prebuilt[t] = None;
            stale = true;
        }
    }
    if stale {
        layers::reconcile(&mut trees, &replaces).map_err(tree_error)?;
    }
    let reconciled: Vec<(usize, String)> = fresh_python
        .iter()
        .map(|(t, _)| (*t, input_cache::skeleton_digest(&trees[*t])))
        .collect();

    let results: Vec<Result<(BuiltLayer, Vec<u8>), LayerError>> = trees
        .par_iter()
        .zip(comments.par_iter())
        .zip(prebuilt.par_iter())
        .map(|((tree, comment), hit)| {
            let diff_id = hit.as_ref().map(|h| h.diff_id.as_str());
            layers::finish(store, tree, diff_id, comment, opts.compression, !opts.check)
                .map(|(layer, tar)| (layer, if opts.check { tar } else { Vec::new() }))
        })
        .collect();
    let mut built = Vec::new();
    let mut tars = Vec::new();
    for r in results {
        let (layer, tar) = r.map_err(|error| RealizeError::Layer {
            arch: arch.into(),
            error,
        })?;
        built.push(layer);
        tars.push(tar);
    }
    for ((t, skeleton), (_, digest)) in fresh_python.iter().zip(&reconciled) {
        if prebuilt[*t].is_none() && !opts.check {
            input_cache::save(
                store,
                &python.groups[t - python_first].key,
                skeleton,
                digest,
                &built[*t].diff_id,
            )?;
        }
    }
    let settings = ConfigSettings {
        arch,
        config: &plan.config,
        source_date_epoch: lock.source_date_epoch,
    };
    Ok((
        oci::image::build(&settings, built, layers::blob_dir(store)),
        tars,
    ))
}

/// Realizes one image from its (current) lock.
pub fn realize(
    plan: &ImagePlan,
    lock: &Lockfile,
    lock_text: &str,
    store: &Store,
    opts: &RealizeOptions,
    files_dir: &Path,
) -> Result<Realized, RealizeError> {
    for arch in &opts.archs {
        if !lock.archs.contains_key(arch) || !plan.archs.contains(arch) {
            return Err(RealizeError::UnknownArch {
                image: plan.name.clone(),
                arch: arch.clone(),
                archs: plan.archs.join(", "),
            });
        }
    }
    let key = realize_key(lock_text, &shipped_files(plan, files_dir), opts);
    if !opts.check
        && let Some(done) = previous(store, &key)
    {
        return Ok(done);
    }
    // Byte-code for Python layers, compiled by the image's interpreter once it is needed.
    let compiler = python_layers::LazyCompiler::new(store, lock);
    let built: Vec<(BuiltImage, Vec<Vec<u8>>)> = opts
        .archs
        .par_iter()
        .map(|arch| build_arch(plan, lock, arch, store, opts, files_dir, &compiler))
        .collect::<Vec<_>>()
        .into_iter()
        .collect::<Result<_, _>>()?;
    if opts.check {
        check::compare(&plan.name, &opts.out_dir, &built, opts.compression)?;
        return Ok(Realized {
            image: plan.name.clone(),
            oci_layout: None,
            index_digest: None,
            archs: built
                .iter()
                .map(|(i, _)| (i.arch.clone(), (i.manifest_digest.clone(), None)))
                .collect(),
            files: BTreeMap::new(),
            layers: BTreeMap::new(),
            reused: false,
        });
    }
    let images: Vec<BuiltImage> = built.into_iter().map(|(i, _)| i).collect();
    std::fs::create_dir_all(&opts.out_dir).map_err(|e| StoreError::Io {
        action: "creating",
        path: opts.out_dir.clone(),
        source: e,
    })?;
    let tag = tag_part(&opts.repo_tag);
    let mut realized = Realized {
        image: plan.name.clone(),
        oci_layout: None,
        index_digest: None,
        archs: BTreeMap::new(),
        files: BTreeMap::new(),
        layers: BTreeMap::new(),
        reused: false,
    };
    if opts.oci {
        let dir = opts.out_dir.join(&plan.name);
        let digest = oci::layout::write(&dir, &images, tag, lock.source_date_epoch)?;
        realized.files.insert(
            dir.join("index.json"),
            std::fs::metadata(dir.join("index.json"))
                .map(|m| m.len())
                .unwrap_or(0),
        );
        realized.oci_layout = Some(dir);
        realized.index_digest = Some(digest);
    }
    for img in &images {
        let mut archive = None;
        if opts.docker {
            let path = opts.out_dir.join(format!("{}-{}.tar", plan.name, img.arch));
            let index = oci::layout::archive_index(img, &opts.repo_tag, lock.source_date_epoch);
            oci::docker_archive::write(&path, img, &opts.repo_tag, &index, lock.source_date_epoch)?;
            realized.files.insert(
                path.clone(),
                std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
            );
            archive = Some(path);
        }
        realized
            .archs
            .insert(img.arch.clone(), (img.manifest_digest.clone(), archive));
        realized.layers.insert(img.arch.clone(), img.layers.clone());
    }
    write_atomic(
        &record_path(store, &key),
        &serde_json::to_vec(&realized).expect("record serializes"),
    )?;
    Ok(realized)
}
