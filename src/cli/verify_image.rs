//! `carbon-store verify-image LAYOUT|REF`: an independent rebuild. Reads each arch's
//! provenance, checks that the lockfile here is the one it names, rebuilds from that lock
//! in a clean store (sources taken from the user's store only after re-hashing, the rest
//! downloaded), and answers "identical" or names the first differing layer and path.
//!
//! Why a clean store: a rebuild that reuses the store's cached layers, or its records of
//! them, would compare the image with itself. Only pinned inputs cross over, by hash.

use super::error::CliError;
use super::{Cli, Output};
use carbon_store::lock;
use carbon_store::lockfile::Lockfile;
use carbon_store::oci::metadata::MetadataOverrides;
use carbon_store::oci::referrer;
use carbon_store::realize::{self, RealizeError, RealizeOptions};
use carbon_store::sbom::provenance::{self, Parameters};
use carbon_store::store::{Expected, Store};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct VerifyImageArgs {
    /// An OCI layout directory (as realize or pull wrote it), or HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]
    image: String,
    /// Archs to verify (default: every arch the image has)
    #[arg(long, value_delimiter = ',', value_parser = carbon_store::recipe::arch_named)]
    arch: Vec<String>,
    /// Where to put the clean store and a pulled image (default: the system's temp dir);
    /// removed afterwards
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
}

/// An arch's image in the layout: its manifest digest and its provenance's parameters.
struct ArchImage {
    manifest: String,
    parameters: Parameters,
}

/// Each arch's manifest and provenance parameters, read from the layout's referrers.
fn provenances(layout: &Path, archs: &[String]) -> Result<BTreeMap<String, ArchImage>, CliError> {
    let manifests = referrer::arch_manifests(layout).map_err(|e| CliError::new(e.to_string()))?;
    let referrers = referrer::in_layout(layout).map_err(|e| CliError::new(e.to_string()))?;
    let mut found = BTreeMap::new();
    for (arch, manifest) in &manifests {
        if !archs.is_empty() && !archs.contains(arch) {
            continue;
        }
        let statement = referrers
            .iter()
            .find(|r| r.subject == *manifest && r.artifact_type == provenance::MEDIA_TYPE)
            .ok_or_else(|| {
                CliError::new(format!(
                    "{}: the {arch} image has no provenance attached",
                    layout.display()
                ))
                .hint("only images realized by carbon-store (with their referrers pulled or copied along) can be rebuilt")
            })?;
        let bytes = referrer::read_blob(layout, &statement.document)
            .map_err(|e| CliError::new(e.to_string()))?;
        let parameters = provenance::parameters(&bytes)
            .map_err(|e| CliError::new(format!("{arch} provenance: {e}")))?;
        if parameters.arch != *arch {
            return Err(CliError::new(format!(
                "the {arch} image's provenance says it is for {}",
                parameters.arch
            )));
        }
        let manifest = manifest.clone();
        found.insert(
            arch.clone(),
            ArchImage {
                manifest,
                parameters,
            },
        );
    }
    if found.is_empty() {
        return Err(CliError::new(format!(
            "{} holds no image for {}",
            layout.display(),
            archs.join(", ")
        )));
    }
    Ok(found)
}

/// The image's own annotations and labels (from its manifest and config), as overrides
/// that reproduce exactly them: defaults it lacks are removed.
fn own_metadata(
    layout: &Path,
    manifest_digest: &str,
    plan: &carbon_store::recipe::ImagePlan,
) -> Result<MetadataOverrides, CliError> {
    let read = |digest: &str| -> Result<serde_json::Value, CliError> {
        let bytes =
            referrer::read_blob(layout, digest).map_err(|e| CliError::new(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| CliError::new(format!("{digest}: {e}")))
    };
    let manifest = read(manifest_digest)?;
    let config = read(manifest["config"]["digest"].as_str().unwrap_or_default())?;
    let map = |v: &serde_json::Value| -> BTreeMap<String, String> {
        serde_json::from_value(v.clone()).unwrap_or_default()
    };
    let mut annotations = map(&manifest["annotations"]);
    let defaults = [
        carbon_store::oci::metadata::CREATED,
        carbon_store::oci::metadata::TITLE,
        carbon_store::oci::metadata::DESCRIPTION,
    ];
    for key in defaults
        .iter()
        .map(|k| k.to_string())
        .chain(plan.annotations.keys().cloned())
    {
        annotations.entry(key).or_default();
    }
    let mut labels = map(&config["config"]["Labels"]);
    for key in plan.config.labels.keys() {
        labels.entry(key.clone()).or_default();
    }
    Ok(MetadataOverrides {
        vcs: BTreeMap::new(),
        annotations,
        labels,
    })
}

/// Copies into `clean` every file the lock pins that `user` holds intact.
fn seed(clean: &Store, user: &Store, lock: &Lockfile) -> Result<(usize, usize), CliError> {
    let (mut taken, mut all) = (0, 0);
    for file in lock.archs.values().flat_map(|a| a.files()) {
        all += 1;
        let expected = Expected {
            digest: file.digest.clone(),
            size: Some(file.size),
        };
        if clean.adopt(user, &expected, file.name)? {
            taken += 1;
        }
    }
    Ok((taken, all))
}

/// The layout to verify: the directory given, or the image pulled into `work`.
fn layout_of(args: &VerifyImageArgs, work: &Path, out: &Output) -> Result<PathBuf, CliError> {
    let path = PathBuf::from(&args.image);
    if path.join("index.json").is_file() {
        return Ok(path);
    }
    if path.exists() || !args.image.contains('/') {
        return Err(CliError::new(format!(
            "{} is not an OCI layout (no index.json)",
            args.image
        ))
        .hint("give the layout directory realize wrote (oci-out/IMAGE) or a registry reference"));
    }
    let source = carbon_store::registry::reference::ImageRef::parse(&args.image)
        .map_err(carbon_store::registry::RegistryError::from)?;
    let registry = args.registry.connect(&source)?;
    let dir = work.join("pulled");
    out.info(format!("pulling {source} with its referrers"));
    let ref_name = source.tag.clone().unwrap_or_else(|| "latest".into());
    carbon_store::registry::pull::pull(&source, &registry, &dir, &ref_name, &|_| {})?;
    Ok(dir)
}

/// The lockfile here, refused unless it is byte for byte the lock the provenance names.
fn the_named_lock(cli: &Cli, built: &Parameters) -> Result<(PathBuf, String), CliError> {
    let lock_path = lock::lock_path(&cli.lockfiles, &built.image);
    let lock_text = std::fs::read_to_string(&lock_path).map_err(|e| {
        CliError::new(format!("reading {}: {e}", lock_path.display()))
            .hint("run from a checkout of the recipes the image was built from")
    })?;
    let here = carbon_store::oci::digest_of(lock_text.as_bytes());
    if here != built.lockfile {
        return Err(CliError::new(format!(
            "the image was built from a lock with sha256 {}, and {} is {here}",
            built.lockfile,
            lock_path.display()
        ))
        .hint("check out the commit the image names (its org.opencontainers.image.revision annotation) and run again"));
    }
    Ok((lock_path, lock_text))
}

/// A new store under `work` holding every file the lock pins for `archs`: from the user's
/// store where it holds them intact, else downloaded (or built, for wheels built here).
fn clean_store(
    cli: &Cli,
    out: &Output,
    work: &Path,
    lock: &Lockfile,
    archs: &[String],
) -> Result<Store, CliError> {
    let clean = Store::open(work.join("store"))?;
    let selected = super::fetch::select_archs(lock, archs);
    if cli.store.is_dir() {
        let (taken, all) = seed(&clean, &Store::open(&cli.store)?, &selected)?;
        out.info(format!(
            "{taken} of {all} pinned files taken from {} after re-hashing",
            cli.store.display()
        ));
    }
    let wanted = carbon_store::download::wanted(&selected)?;
    super::fetch::download(cli, out, &clean, &wanted, None)?;
    super::fetch::build_sources(out, &clean, &selected)?;
    Ok(clean)
}

pub fn run(cli: &Cli, args: &VerifyImageArgs, out: &Output) -> Result<(), CliError> {
    let started = Instant::now();
    let work_parent = args.work.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&work_parent)
        .map_err(|e| CliError::new(format!("creating {}: {e}", work_parent.display())))?;
    let work = tempfile::Builder::new()
        .prefix("carbon-verify-")
        .tempdir_in(&work_parent)
        .map_err(|e| {
            CliError::new(format!(
                "creating a directory in {}: {e}",
                work_parent.display()
            ))
        })?;
    let layout = layout_of(args, work.path(), out)?;
    let images = provenances(&layout, &args.arch)?;
    let first = &images
        .values()
        .next()
        .expect("at least one arch")
        .parameters;
    if let Some(other) = images
        .values()
        .map(|i| &i.parameters)
        .find(|p| p.image != first.image || p.lockfile != first.lockfile)
    {
        return Err(CliError::new(format!(
            "the archs' provenances disagree: {} from lock {} and {} from lock {}",
            first.image, first.lockfile, other.image, other.lockfile
        )));
    }
    let image = &first.image;
    carbon_store::name::image_name("image name", image)
        .map_err(|e| CliError::new(format!("the provenance's {e}")))?;
    let plan = cli.load_recipes()?.plan(image)?;
    let (lock_path, lock_text) = the_named_lock(cli, first)?;
    let lock = lock::read(&cli.lockfiles, image)?;
    let archs: Vec<String> = images.keys().cloned().collect();
    let compression = carbon_store::layer::compress::Compression::parse(&first.compression)
        .ok_or_else(|| CliError::new(format!("unknown compression {:?}", first.compression)))?;
    let clean = clean_store(cli, out, work.path(), &lock, &archs)?;
    for (arch, arch_image) in &images {
        let (manifest, parameters) = (&arch_image.manifest, &arch_image.parameters);
        let opts = RealizeOptions {
            archs: vec![arch.clone()],
            compression,
            oci: false,
            docker: false,
            out_dir: work.path().join("out"),
            repo_tag: parameters.repo_tag.clone(),
            check: true,
            check_layout: Some(layout.clone()),
            metadata: own_metadata(&layout, manifest, &plan)?,
            image_mirrors: parameters.image_mirrors.clone(),
        };
        let progress = super::progress::BuildDisplay::new(out, image);
        let observers = realize::Observers {
            sink: None,
            progress: &progress,
        };
        let files = cli.recipes.join("files");
        let result = realize::realize(&plan, &lock, &lock_text, &clean, &opts, &files, observers);
        progress.finish();
        match result {
            Ok(_) => {}
            Err(RealizeError::CheckFailed(why)) => {
                return Err(CliError::new(format!("{image} {arch}: {why}")).hint(
                    "the image is not what its lock builds: it was built from other inputs or altered afterwards",
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    out.info(format!(
        "{image}: rebuilt from {} in a clean store in {:.1}s",
        lock_path.display(),
        started.elapsed().as_secs_f64()
    ));
    for (arch, arch_image) in &images {
        println!("identical: {image} {arch} {}", arch_image.manifest);
    }
    Ok(())
}
