//! `realize`: from a lock to images. For every arch (one after the other, each using every
//! core): load and verify the locked packages, build one layer per component plus the
//! fixups layer (each written in the background while the next is made, `writer`), write
//! the config and manifest, and its SBOMs and provenance; then the OCI layout with the
//! multi-arch index and a docker-archive per arch. A realize whose inputs and outputs are
//! unchanged only verifies and returns.

pub mod apt_sources;
pub mod check;
pub mod debian_bytecode;
pub mod derived_layer;
mod image_tools;
pub mod input_cache;
pub mod layers;
pub mod npm_layers;
pub mod packages;
pub mod python_layers;
pub mod trigger_caches;
mod writer;

use crate::config::image_mirrors::ImageMirrors;
use crate::fixup::{self, FixupError, FixupInput};
use crate::layer::compress::Compression;
use crate::layer::content::Spill;
use crate::layer::tree::{Tree, TreeError};
use crate::lockfile::Lockfile;
use crate::oci::metadata::{Metadata, MetadataOverrides};
use crate::oci::{self, Attachment, BuiltImage, BuiltLayer, ConfigSettings, digest_of};
use crate::recipe::ImagePlan;
use crate::sbom;
use crate::store::{Store, StoreError, write_atomic};
use layers::LayerError;
use packages::{LoadError, ReplacesTable};
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RealizeError {
    #[error("{arch}: {error}")]
    Load {
        arch: String,
        #[source]
        error: LoadError,
    },
    #[error("{arch}: {error}")]
    Layer {
        arch: String,
        #[source]
        error: LayerError,
    },
    #[error("{arch}: {error}")]
    Tree {
        arch: String,
        #[source]
        error: TreeError,
    },
    #[error("{arch}: {error}")]
    Wheel {
        arch: String,
        #[source]
        error: crate::python::install::WheelError,
    },
    #[error("{arch}: npm: {error}")]
    Npm {
        arch: String,
        error: crate::npm::install::InstallError,
    },
    #[error("{arch}: fixups: {error}")]
    Fixup {
        arch: String,
        #[source]
        error: FixupError,
    },
    #[error("{arch}: trigger caches: {error}")]
    Triggers {
        arch: String,
        #[source]
        error: trigger_caches::TriggerError,
    },
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
    #[error("{arch}: delivering a layer: {error}")]
    Deliver {
        arch: String,
        #[source]
        error: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Told of each layer as soon as its blob is in the store, reused layers included
/// (`realize --push` uploads it then, while the next layers are built).
pub trait LayerSink: Sync {
    /// An `Err` stops the build.
    fn layer_written(
        &self,
        layer: &BuiltLayer,
        blob: &Path,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// Told what a realize is doing, for a progress display: each arch's stages as they
/// begin, and each layer once its blob is in the store.
pub trait BuildProgress: Sync {
    /// `what` is a short phrase: "unpacking 907 packages", "fixups", …
    fn stage(&self, arch: &str, what: &str);
    /// A stage of the whole image, after its archs: comparing, writing the outputs.
    fn image_stage(&self, what: &str);
    /// `reused`: taken from the store's layer cache, not written now; `seconds`: the time
    /// this layer took to write.
    fn layer(&self, arch: &str, layer: &BuiltLayer, reused: bool, seconds: f64);
}

/// No display: what library callers and tests use.
pub struct NoProgress;

impl BuildProgress for NoProgress {
    fn stage(&self, _: &str, _: &str) {}
    fn image_stage(&self, _: &str) {}
    fn layer(&self, _: &str, _: &BuiltLayer, _: bool, _: f64) {}
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
    /// The OCI layout `check` compares with, when not `out_dir/IMAGE` (`verify-image`).
    pub check_layout: Option<PathBuf>,
    /// Annotations and labels from version control and the command line.
    pub metadata: MetadataOverrides,
    /// The mirrors the image's own apt reads (its top layer); empty: no such layer.
    pub image_mirrors: ImageMirrors,
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
    /// Each arch's image documents (of this realize, not of a record: empty when reused).
    #[serde(skip)]
    pub images: Vec<BuiltImage>,
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
            // Hashed as a stream: a recipe may ship a file larger than the memory.
            let mut hasher = sha2::Sha256::new();
            let read = std::fs::File::open(files_dir.join(source))
                .and_then(|mut file| std::io::copy(&mut file, &mut hasher));
            let digest = match read {
                Ok(_) => hex::encode(hasher.finalize()),
                Err(_) => "unreadable".to_string(),
            };
            out.push_str(&format!("{source} sha256:{digest}\n"));
        }
    }
    out
}

/// The key of a whole realize: same recipes, lock, shipped files, settings and tool ⇒
/// same outputs. (The lock's recipes hash covers only what resolution reads; `plan_hash`
/// covers the rest: config, users, paths, realize-time options.)
fn realize_key(plan_hash: &str, lock_text: &str, shipped: &str, opts: &RealizeOptions) -> String {
    let text = format!(
        "{}\n{}\n{plan_hash}\n{}\n{:?}\n{}\n{}\n{}\n{}\n{:?}\n{:?}\n{shipped}\n{}",
        layers::LAYER_FORMAT,
        env!("CARBON_SOURCE_HASH"),
        opts.compression.name(),
        opts.archs,
        opts.oci,
        opts.docker,
        opts.repo_tag,
        opts.out_dir.display(),
        opts.metadata,
        opts.image_mirrors,
        lock_text
    );
    digest_of(text.as_bytes())
        .trim_start_matches("sha256:")
        .to_string()
}

fn record_path(store: &Store, key: &str) -> PathBuf {
    store
        .area(crate::store::Area::Realized)
        .join(format!("{key}.json"))
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

/// Where an arch's Debian layers come from.
enum DebianSource {
    /// Their record: trees without contents, blobs in the store.
    Reused(Vec<input_cache::DebianLayer>),
    /// The packages, unpacked.
    Loaded(Vec<packages::LoadedPackage>),
}

/// An arch's Debian package layers before the cross-layer rules, and what the rest of the
/// build needs of the packages.
struct DebianSide {
    trees: Vec<Tree>,
    comments: Vec<String>,
    /// Per layer, its diff id when it comes from the record (its blob is in the store).
    prebuilt: Vec<Option<String>>,
    /// The trees without contents, to record once written (`None` when reused or checking).
    as_built: Option<Vec<Tree>>,
    /// In lock order.
    infos: Vec<fixup::InstalledPackage>,
    retained: BTreeMap<String, Vec<u8>>,
    replaces: ReplacesTable,
}

/// The Debian side: taken from its record when its layers were built before from the same
/// packages (no .deb is read), otherwise (or when `need_contents`) unpacked.
fn debian_side(
    build: &Build,
    artifacts: &[crate::lockfile::DebianArtifact],
    components: &[String],
    key: &str,
    arch: &str,
    need_contents: bool,
    spill: &Spill,
) -> Result<DebianSide, RealizeError> {
    let (store, opts) = (build.store, build.opts);
    let reused = if opts.check || need_contents {
        None
    } else {
        input_cache::lookup_debian(store, key, |diff_id| {
            layers::cached(store, diff_id, opts.compression).is_some()
        })
    };
    let (source, infos, retained) = match reused {
        Some(side) => (
            DebianSource::Reused(side.layers),
            side.packages,
            side.retained,
        ),
        None => {
            let what = format!("unpacking {} packages", artifacts.len());
            build.progress.stage(arch, &what);
            let mut loaded = packages::load_all(store, artifacts, spill).map_err(|error| {
                RealizeError::Load {
                    arch: arch.into(),
                    error,
                }
            })?;
            let infos: Vec<fixup::InstalledPackage> =
                loaded.iter().map(|p| p.info.clone()).collect();
            let mut retained = BTreeMap::new();
            for p in &mut loaded {
                retained.append(&mut p.retained);
            }
            (DebianSource::Loaded(loaded), infos, retained)
        }
    };
    let replaces = ReplacesTable::new(artifacts.iter().zip(&infos));
    let (trees, comments, prebuilt, as_built) = match source {
        DebianSource::Reused(reused) => {
            build
                .progress
                .stage(arch, "Debian layers built before: reused");
            let mut trees = Vec::new();
            let mut comments = Vec::new();
            let mut prebuilt = Vec::new();
            for layer in reused {
                trees.push(layer.tree);
                comments.push(layer.comment);
                prebuilt.push(Some(layer.diff_id));
            }
            (trees, comments, prebuilt, None)
        }
        DebianSource::Loaded(mut loaded) => {
            let plans = layers::plan(components, &loaded);
            let trees = layers::trees(&plans, &mut loaded, &replaces).map_err(|error| {
                RealizeError::Layer {
                    arch: arch.into(),
                    error,
                }
            })?;
            drop(loaded);
            let as_built: Option<Vec<Tree>> =
                (!opts.check).then(|| trees.iter().map(Tree::without_contents).collect());
            let comments = plans.into_iter().map(|p| p.comment).collect();
            let prebuilt = vec![None; trees.len()];
            (trees, comments, prebuilt, as_built)
        }
    };
    Ok(DebianSide {
        trees,
        comments,
        prebuilt,
        as_built,
        infos,
        retained,
        replaces,
    })
}

/// What each arch's build reads and where it puts things.
struct Build<'a> {
    plan: &'a ImagePlan,
    lock: &'a Lockfile,
    /// The lockfile's bytes, whose digest the provenance records.
    lock_text: &'a str,
    store: &'a Store,
    opts: &'a RealizeOptions,
    files_dir: &'a Path,
    /// Byte-code for Python layers, compiled by the image's interpreter once it is needed.
    compiler: python_layers::LazyCompiler<'a>,
    sink: Option<&'a dyn LayerSink>,
    progress: &'a dyn BuildProgress,
}

impl Build<'_> {
    /// Writes a layer's tree (or takes its `prebuilt` blob, hashing its tar first to look
    /// for it in the store when `look_up`), then tells the progress and the sink.
    fn finish_layer(
        &self,
        arch: &str,
        look_up: bool,
        tree: &Tree,
        prebuilt: Option<&str>,
        comment: &str,
    ) -> Result<BuiltLayer, RealizeError> {
        let (store, compression) = (self.store, self.opts.compression);
        let started = std::time::Instant::now();
        let layer = layers::finish(store, tree, prebuilt, comment, compression, look_up).map_err(
            |error| RealizeError::Layer {
                arch: arch.into(),
                error,
            },
        )?;
        let seconds = started.elapsed().as_secs_f64();
        self.progress
            .layer(arch, &layer, prebuilt.is_some(), seconds);
        if let Some(sink) = self.sink {
            sink.layer_written(&layer, &layers::blob_path(store, &layer.digest))
                .map_err(|error| RealizeError::Deliver {
                    arch: arch.into(),
                    error,
                })?;
        }
        Ok(layer)
    }
}

/// Unpacked files go to spill files in the store's temp area, not to memory. Each stage of
/// a build has its own, so that its disk space is freed once its layers are written.
fn new_spill(store: &Store) -> Spill {
    Spill::new(store.area(crate::store::Area::Tmp))
}

/// The layers above the Debian side, each reconciled with the layers below, its paths
/// added to the image's, and handed to the writers: the byte-code and trigger-cache layers
/// derived from the Debian side, the Python and npm layers (each reused by its input key
/// when built before and its lower directories are unchanged, or else built), and the
/// fixups and apt sources on top.
struct Stacked<'s, 'b, 'w> {
    build: &'s Build<'b>,
    arch: &'s str,
    reconciler: &'s mut layers::Reconciler,
    replaces: &'s packages::ReplacesTable,
    paths: &'s mut BTreeSet<String>,
    writers: &'s writer::Writers<'w>,
}

/// The fixups layer's history comment.
const FIXUPS_COMMENT: &str = "fixups: dpkg database, accounts, alternatives, configuration";

/// Writes a layer's tree (or takes its prebuilt blob) and tells the sink.
type FinishLayer<'f> =
    dyn Fn(&Tree, Option<&str>, &str) -> Result<BuiltLayer, RealizeError> + Sync + 'f;

/// Saves a layer's input record (its tree as built, before reconciling, and the digest
/// of the reconciled skeleton) once its writer knows the diff id.
fn record_when_written(
    store: &Store,
    key: String,
    as_built: Tree,
    reconciled: &Tree,
) -> writer::AfterWrite {
    let store = store.clone();
    let reconciled = input_cache::skeleton_digest(reconciled);
    Box::new(move |layer: &BuiltLayer| {
        input_cache::save(&store, &key, &as_built, &reconciled, &layer.diff_id)?;
        Ok(())
    })
}

impl Stacked<'_, '_, '_> {
    /// Reconciles `tree` with the layers below (`layers::Reconciler`).
    fn apply(&mut self, tree: &mut Tree) -> Result<(), RealizeError> {
        self.reconciler
            .apply(tree, self.replaces)
            .map_err(|error| RealizeError::Tree {
                arch: self.arch.into(),
                error,
            })
    }

    /// Reconciles `tree` and adds its paths to the image's.
    fn reconcile(&mut self, tree: &mut Tree) -> Result<(), RealizeError> {
        self.apply(tree)?;
        self.paths.extend(tree.nodes.keys().cloned());
        Ok(())
    }

    /// Hands over a layer derived from the Debian side (made with it, so not in turn),
    /// recording it under its key when it was built now.
    fn derived(&mut self, layer: derived_layer::Layer, comment: &str) -> Result<(), RealizeError> {
        let mut tree = layer.tree;
        let as_built = layer.record_under.as_ref().map(|_| tree.without_contents());
        self.reconcile(&mut tree)?;
        let store = self.build.store;
        let record = layer
            .record_under
            .zip(as_built)
            .map(|(key, skeleton)| record_when_written(store, key, skeleton, &tree));
        let prebuilt = layer.prebuilt.map(|p| p.diff_id);
        self.writers.submit(tree, prebuilt, comment, record)?;
        Ok(())
    }

    /// Hands over a layer of the image's top (fixups, apt sources): made from the whole
    /// image below, never reused.
    fn top(&mut self, mut tree: Tree, comment: &str) -> Result<(), RealizeError> {
        self.reconcile(&mut tree)?;
        self.writers.submit(tree, None, comment, None)?;
        Ok(())
    }

    /// Hands the layer over to the writers: reused by its inputs where it can be. Made
    /// only once the writers have room for it.
    fn layer(
        &mut self,
        key: &str,
        comment: &str,
        make: impl Fn() -> Result<Tree, RealizeError>,
    ) -> Result<(), RealizeError> {
        self.writers.wait_for_room()?;
        let (store, opts) = (self.build.store, self.build.opts);
        let mut hit = None;
        let mut tree = match input_cache::lookup(store, key, |diff_id| {
            layers::cached(store, diff_id, opts.compression).is_some()
        }) {
            Some((skeleton, prebuilt)) if !opts.check => {
                hit = Some(prebuilt);
                skeleton
            }
            _ => make()?,
        };
        let mut as_built = hit.is_none().then(|| tree.without_contents());
        self.apply(&mut tree)?;
        // A reused layer whose directories below changed since it was built is built again.
        if let Some(prebuilt) = &hit
            && input_cache::skeleton_digest(&tree) != prebuilt.reconciled
        {
            hit = None;
            tree = make()?;
            as_built = Some(tree.without_contents());
            self.apply(&mut tree)?;
        }
        self.paths.extend(tree.nodes.keys().cloned());
        let record = as_built
            .filter(|_| !opts.check)
            .map(|skeleton| record_when_written(store, key.to_string(), skeleton, &tree));
        self.writers
            .submit_in_turn(tree, hit.map(|h| h.diff_id), comment, record)?;
        Ok(())
    }
}

/// Builds one arch's image from the lock.
fn build_arch(build: &Build, arch: &str) -> Result<BuiltImage, RealizeError> {
    let (plan, lock, store, opts, files_dir) = (
        build.plan,
        build.lock,
        build.store,
        build.opts,
        build.files_dir,
    );
    let compiler = &build.compiler;
    let debian_spill = new_spill(store);
    let artifacts = &lock.archs[arch].debian;
    let components: Vec<String> = plan.components.iter().map(|c| c.name.clone()).collect();
    let tree_error = |error| RealizeError::Tree {
        arch: arch.into(),
        error,
    };
    let debian_key = input_cache::debian_key(arch, &components, artifacts);
    let blob_exists = |diff_id: &str| layers::cached(store, diff_id, opts.compression).is_some();
    let (bytecode, minor) =
        debian_bytecode::plan(store, lock, &debian_key, opts.check, blob_exists);
    let recipe_paths: Vec<_> = plan
        .components
        .iter()
        .flat_map(|c| c.recipe.path.clone())
        .collect();
    let trigger_inputs =
        trigger_caches::recipe_inputs(&recipe_paths, files_dir).map_err(|error| {
            RealizeError::Triggers {
                arch: arch.into(),
                error,
            }
        })?;
    let triggers =
        trigger_caches::plan(store, &debian_key, &trigger_inputs, opts.check, blob_exists);
    let DebianSide {
        mut trees,
        comments,
        prebuilt,
        as_built,
        mut infos,
        retained,
        replaces,
    } = debian_side(
        build,
        artifacts,
        &components,
        &debian_key,
        arch,
        bytecode.needs_contents() || triggers.needs_contents(),
        &debian_spill,
    )?;
    // Layers are reconciled bottom-up and written one after another; a written layer's
    // contents are dropped, only the paths stay (for the fixups).
    let mut reconciler = layers::Reconciler::default();
    for tree in trees.iter_mut() {
        reconciler.apply(tree, &replaces).map_err(tree_error)?;
    }
    // Byte-code for Debian's Python modules, compiled while the layers have their contents.
    if bytecode.needs_contents() {
        build
            .progress
            .stage(arch, "compiling byte-code of Debian's Python modules");
    }
    let bytecode_tree = debian_bytecode::compile(
        &bytecode,
        &minor,
        &trees,
        store,
        &format!("{arch}-debian"),
        &debian_spill,
        || compiler.get(),
    )
    .map_err(|error| RealizeError::Wheel {
        arch: arch.into(),
        error,
    })?;
    // The caches dpkg's triggers would write, by the image's own tools.
    if triggers.needs_contents() {
        build
            .progress
            .stage(arch, "trigger caches (schemas, icons, fonts, …)");
    }
    let triggers_tree = triggers
        .build(|| trigger_caches::build(&trees, &trigger_inputs, &infos, arch, store))
        .map_err(|error| RealizeError::Triggers {
            arch: arch.into(),
            error,
        })?;
    let mut paths: BTreeSet<String> = trees.iter().flat_map(|t| t.nodes.keys().cloned()).collect();
    let look_up = !opts.check && layers::any_cached(store, opts.compression);
    let finish = |tree: &Tree, prebuilt: Option<&str>, comment: &str| {
        build.finish_layer(arch, look_up, tree, prebuilt, comment)
    };
    // Each layer streams from the spill to its blob, written in the background (two at a
    // time, each holding a few MiB of compressor buffers) while the next trees are made.
    // Input records name diff ids: each layer's is saved by its writer, the Debian side's
    // (one record for its layers together) once every layer is written.
    let debian_record = as_built.map(|trees| (trees, comments.clone(), infos.clone()));
    let built = std::thread::scope(|scope| -> Result<Vec<BuiltLayer>, RealizeError> {
        let writers = writer::Writers::start(scope, &finish);
        build.progress.stage(arch, "writing the Debian layers");
        let mut debian_tickets = Vec::new();
        for ((tree, prebuilt), comment) in trees.into_iter().zip(prebuilt).zip(&comments) {
            debian_tickets.push(writers.submit(tree, prebuilt, comment, None)?);
        }
        let mut stacked = Stacked {
            build,
            arch,
            reconciler: &mut reconciler,
            replaces: &replaces,
            paths: &mut paths,
            writers: &writers,
        };
        for (plan, tree, comment) in [
            (bytecode, bytecode_tree, debian_bytecode::COMMENT),
            (triggers, triggers_tree, trigger_caches::COMMENT),
        ] {
            if let Some(layer) = plan.layer(tree, store, opts.check)? {
                stacked.derived(layer, comment)?;
            }
        }
        // The Debian side's spill is not needed for new files; the trees being written
        // keep what they point into.
        drop(debian_spill);
        // Python environments: one layer per component with wheels (a wheel of 200 MB or more
        // on its own), the venv skeleton in the first, built one after another (the wheels of
        // a layer in parallel); a layer built before from the same inputs is reused without
        // unpacking its wheels.
        let python = python_layers::plan(plan, lock, arch, stacked.paths).map_err(|error| {
            RealizeError::Wheel {
                arch: arch.into(),
                error,
            }
        })?;
        let build_python = |i: usize| {
            python_layers::build(
                store,
                &python,
                &python.groups[i],
                compiler,
                &format!("{arch}-{i}"),
                &new_spill(store),
            )
            .map_err(|error| RealizeError::Wheel {
                arch: arch.into(),
                error,
            })
        };
        for (i, group) in python.groups.iter().enumerate() {
            build.progress.stage(arch, &group.comment);
            stacked.layer(&group.key, &group.comment, || build_python(i))?;
        }

        // npm: one layer per component with npm packages, built the same way.
        let npm = npm_layers::plan(plan, lock, arch);
        for group in &npm.groups {
            build.progress.stage(arch, &group.comment);
            stacked.layer(&group.key, &group.comment, || {
                npm_layers::build(store, &npm, group, &new_spill(store)).map_err(|error| {
                    RealizeError::Npm {
                        arch: arch.into(),
                        error,
                    }
                })
            })?;
        }

        // The fixups layer sees the whole image; the image's apt sources go on top, alone,
        // so that the layers below stay the same whatever mirror the image's apt is given.
        build.progress.stage(arch, "fixups");
        let fixups_spill = new_spill(store);
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        let users: Vec<_> = plan
            .components
            .iter()
            .flat_map(|c| c.recipe.user.clone())
            .collect();
        let input = FixupInput {
            arch,
            source_date_epoch: lock.source_date_epoch,
            packages: &infos,
            paths: stacked.paths,
            retained: &retained,
            users: &users,
            recipe_paths: &recipe_paths,
            files_dir: files_dir.to_path_buf(),
            spill: &fixups_spill,
        };
        let fixups = fixup::build(&input).map_err(|error| RealizeError::Fixup {
            arch: arch.into(),
            error,
        })?;
        let sources = apt_sources::tree(&input, lock, &opts.image_mirrors);
        stacked.top(fixups, FIXUPS_COMMENT)?;
        if let Some(sources) = sources {
            build.progress.stage(arch, "apt sources");
            stacked.top(sources, apt_sources::COMMENT)?;
        }
        if writers.busy() {
            build.progress.stage(arch, "writing the last layers");
        }
        let written = writers.wait()?;
        if let Some((trees, comments, infos)) = debian_record {
            let recorded: Vec<input_cache::DebianLayer> = trees
                .into_iter()
                .zip(comments)
                .zip(&debian_tickets)
                .map(|((tree, comment), &ticket)| input_cache::DebianLayer {
                    comment,
                    diff_id: written.get(ticket).diff_id.clone(),
                    tree,
                })
                .collect();
            input_cache::save_debian(store, &debian_key, &recorded, &infos, &retained)?;
        }
        Ok(written.into_layers())
    })?;
    let metadata = Metadata::of(plan, lock.source_date_epoch, &opts.metadata);
    let settings = ConfigSettings {
        arch,
        config: &plan.config,
        metadata: &metadata,
        source_date_epoch: lock.source_date_epoch,
    };
    let mut image = oci::image::build(&settings, built, layers::blob_dir(store));
    // `--check` (and verify-image) compare layers and documents; nothing keeps these.
    if !opts.check {
        image.attachments = attachments(build, arch, &image, &infos);
    }
    Ok(image)
}

/// An arch's SBOMs (SPDX and CycloneDX) and its provenance, about its manifest.
fn attachments(
    build: &Build,
    arch: &str,
    image: &BuiltImage,
    debian: &[fixup::InstalledPackage],
) -> Vec<Attachment> {
    let (lock, opts) = (build.lock, build.opts);
    let arch_lock = &lock.archs[arch];
    let subject = sbom::Subject {
        image: build.plan.name.clone(),
        arch: arch.to_string(),
        manifest_digest: image.manifest_digest.clone(),
        source_date_epoch: lock.source_date_epoch,
        distro: sbom::distro(arch_lock),
    };
    let inventory = sbom::Inventory::of(subject, arch_lock, debian);
    let facts = sbom::provenance::BuildFacts {
        lockfile: digest_of(build.lock_text.as_bytes()),
        recipes: lock.recipes.clone(),
        compression: opts.compression.name().to_string(),
        repo_tag: opts.repo_tag.clone(),
        layer_format: layers::LAYER_FORMAT,
        image_mirrors: opts.image_mirrors.clone(),
    };
    let created = BTreeMap::from([(
        oci::metadata::CREATED.to_string(),
        oci::rfc3339(lock.source_date_epoch),
    )]);
    let mut provenance_annotations = created.clone();
    provenance_annotations.insert(
        "in-toto.io/predicate-type".to_string(),
        sbom::provenance::PREDICATE_TYPE.to_string(),
    );
    vec![
        Attachment {
            artifact_type: sbom::spdx::MEDIA_TYPE.to_string(),
            bytes: sbom::spdx::document(&inventory),
            annotations: created.clone(),
        },
        Attachment {
            artifact_type: sbom::cyclonedx::MEDIA_TYPE.to_string(),
            bytes: sbom::cyclonedx::document(&inventory),
            annotations: created,
        },
        Attachment {
            artifact_type: sbom::provenance::MEDIA_TYPE.to_string(),
            bytes: sbom::provenance::statement(&inventory, &facts),
            annotations: provenance_annotations,
        },
    ]
}

/// Who is told of a realize's work as it goes.
#[derive(Clone, Copy)]
pub struct Observers<'a> {
    /// Given each layer's blob once written (`realize --push` uploads it).
    pub sink: Option<&'a dyn LayerSink>,
    pub progress: &'a dyn BuildProgress,
}

impl Observers<'_> {
    /// Nobody: for library callers and tests.
    pub const NONE: Observers<'static> = Observers {
        sink: None,
        progress: &NoProgress,
    };
}

/// Realizes one image from its (current) lock.
pub fn realize(
    plan: &ImagePlan,
    lock: &Lockfile,
    lock_text: &str,
    store: &Store,
    opts: &RealizeOptions,
    files_dir: &Path,
    observers: Observers,
) -> Result<Realized, RealizeError> {
    let Observers { sink, progress } = observers;
    for arch in &opts.archs {
        if !lock.archs.contains_key(arch) || !plan.archs.contains(arch) {
            return Err(RealizeError::UnknownArch {
                image: plan.name.clone(),
                arch: arch.clone(),
                archs: plan.archs.join(", "),
            });
        }
    }
    let key = realize_key(
        &plan.content_hash(),
        lock_text,
        &shipped_files(plan, files_dir),
        opts,
    );
    // Without outputs (a realize that only pushes) there is nothing to find intact; a
    // realize that pushes takes its record only when it has a layout to push instead.
    let has_outputs = opts.oci || opts.docker;
    if !opts.check
        && has_outputs
        && (sink.is_none() || opts.oci)
        && let Some(done) = previous(store, &key)
    {
        return Ok(done);
    }
    let build = Build {
        plan,
        lock,
        lock_text,
        store,
        opts,
        files_dir,
        compiler: python_layers::LazyCompiler::new(store, lock),
        sink,
        progress,
    };
    // One arch after the other: each already uses every core.
    let built: Vec<BuiltImage> = opts
        .archs
        .iter()
        .map(|arch| build_arch(&build, arch))
        .collect::<Result<_, _>>()?;
    if opts.check {
        progress.image_stage("comparing with the outputs");
        let layout = match &opts.check_layout {
            Some(layout) => layout.clone(),
            None => opts.out_dir.join(&plan.name),
        };
        check::compare(&layout, &built, opts.compression)?;
        return Ok(Realized {
            image: plan.name.clone(),
            oci_layout: None,
            index_digest: None,
            archs: built
                .iter()
                .map(|i| (i.arch.clone(), (i.manifest_digest.clone(), None)))
                .collect(),
            files: BTreeMap::new(),
            layers: BTreeMap::new(),
            reused: false,
            images: built,
        });
    }
    let images = built;
    if has_outputs {
        std::fs::create_dir_all(&opts.out_dir).map_err(|e| StoreError::Io {
            action: "creating",
            path: opts.out_dir.clone(),
            source: e,
        })?;
    }
    let tag = tag_part(&opts.repo_tag);
    if has_outputs {
        progress.image_stage("writing the outputs");
    }
    let mut realized = Realized {
        image: plan.name.clone(),
        oci_layout: None,
        index_digest: None,
        archs: BTreeMap::new(),
        files: BTreeMap::new(),
        layers: BTreeMap::new(),
        reused: false,
        images: Vec::new(),
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
            // Also under `TAG-ARCH`: loading both archs' archives moves the tag to the
            // second, and leaves the first reachable by its arch's tag.
            let tags = [
                opts.repo_tag.clone(),
                format!("{}-{}", opts.repo_tag, img.arch),
            ];
            oci::docker_archive::write(&path, img, &tags, &index, lock.source_date_epoch)?;
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
    if has_outputs {
        write_atomic(
            &record_path(store, &key),
            &serde_json::to_vec(&realized).expect("record serializes"),
        )?;
    }
    realized.images = images;
    Ok(realized)
}
