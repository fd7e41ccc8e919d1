//! `realize`: from a lock to images. For every arch (in parallel): load and verify the
//! locked packages, build one layer per component plus the fixups layer, write the config
//! and manifest; then the OCI layout with the multi-arch index and a docker-archive per
//! arch. A realize whose inputs and outputs are unchanged only verifies and returns.

pub mod check;
pub mod layers;
pub mod packages;
pub mod python;

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

/// The key of a whole realize: same lock, settings and tool ⇒ same outputs.
fn realize_key(lock_text: &str, opts: &RealizeOptions) -> String {
    let text = format!(
        "{}\n{}\n{}\n{:?}\n{}\n{}\n{}\n{}\n{}",
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
    compiler: Option<&python::Compiler>,
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
    // on its own), the venv skeleton in the first.
    let wheels = &lock.archs[arch].python;
    if !wheels.is_empty() {
        let python_full = artifacts
            .iter()
            .find(|a| a.name == "python3")
            .map(|a| {
                a.version
                    .split('-')
                    .next()
                    .unwrap_or("")
                    .split(':')
                    .next_back()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default();
        let python_minor = python_full.split('.').take(2).collect::<Vec<_>>().join(".");
        let prefix = plan
            .python
            .clone()
            .unwrap_or_default()
            .prefix
            .trim_start_matches('/')
            .to_string();
        let venv = python::Venv {
            prefix,
            python_minor,
            python_full,
        };
        let requested: BTreeSet<String> = plan
            .components
            .iter()
            .filter_map(|c| c.recipe.python.as_ref())
            .flat_map(|p| p.requirements.iter())
            .filter_map(|r| <pep508_rs::Requirement as std::str::FromStr>::from_str(r).ok())
            .map(|r| crate::resolve::pypi::simple::normalize(r.name.as_ref()))
            .collect();
        let mut groups: Vec<(String, Vec<&crate::lock::PythonArtifact>)> = Vec::new();
        for c in &plan.components {
            let mine: Vec<_> = wheels.iter().filter(|w| w.component == c.name).collect();
            let (big, small): (Vec<_>, Vec<_>) = mine
                .into_iter()
                .partition(|w| w.size >= layers::OWN_LAYER_BYTES);
            if !small.is_empty() {
                groups.push((
                    format!("component {}: {} Python packages", c.name, small.len()),
                    small,
                ));
            }
            for w in big {
                groups.push((
                    format!("component {}: Python package {}", c.name, w.name),
                    vec![w],
                ));
            }
        }
        let built: Vec<Result<Tree, RealizeError>> = groups
            .par_iter()
            .enumerate()
            .map(|(i, (_, members))| {
                let mut tree = Tree::default();
                if i == 0 {
                    venv.skeleton(&mut tree);
                }
                for w in members {
                    python::install(store, w, &venv, requested.contains(&w.name), &mut tree)
                        .map_err(|error| RealizeError::Wheel {
                            arch: arch.into(),
                            error,
                        })?;
                }
                if let Some(c) = compiler {
                    c.compile(&mut tree, &venv.site_packages(), &format!("{arch}-{i}"))
                        .map_err(|error| RealizeError::Wheel {
                            arch: arch.into(),
                            error,
                        })?;
                }
                Ok(tree)
            })
            .collect();
        for (tree, (comment, _)) in built.into_iter().zip(&groups) {
            trees.push(tree?);
            python_comments.push(comment.clone());
        }
    }

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
    let mut comments: Vec<String> = plans.iter().map(|p| p.comment.clone()).collect();
    comments.extend(python_comments);
    comments.push("fixups: dpkg database, accounts, alternatives, configuration".into());
    layers::reconcile(&mut trees, &replaces).map_err(|error| RealizeError::Tree {
        arch: arch.into(),
        error,
    })?;

    let results: Vec<Result<(BuiltLayer, Vec<u8>), LayerError>> = trees
        .par_iter()
        .zip(comments.par_iter())
        .map(|(tree, comment)| {
            layers::finish(store, tree, comment, opts.compression, !opts.check)
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
    let key = realize_key(lock_text, opts);
    if !opts.check
        && let Some(done) = previous(store, &key)
    {
        return Ok(done);
    }
    // Byte-code for Python layers, compiled once by the image's interpreter.
    let has_python = lock.archs.values().any(|a| !a.python.is_empty());
    let minor = python::python_minor(lock);
    let compiler = if has_python {
        python::Compiler::prepare(store, lock, &minor).map_err(|error| RealizeError::Wheel {
            arch: "all".into(),
            error,
        })?
    } else {
        None
    };
    let built: Vec<(BuiltImage, Vec<Vec<u8>>)> = opts
        .archs
        .par_iter()
        .map(|arch| build_arch(plan, lock, arch, store, opts, files_dir, compiler.as_ref()))
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
