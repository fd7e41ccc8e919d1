//! `carbon-store realize`: lock if needed, fetch what is missing, build every arch.

use super::error::CliError;
use super::{Cli, Output, exit};
use carbon_store::config::image_mirrors::ImageMirrors;
use carbon_store::config::mirrors::MirrorSettings;
use carbon_store::download as fetch_lock;
use carbon_store::fetch::Fetcher;
use carbon_store::layer::compress::Compression;
use carbon_store::lock::{self, LockContext, LockError};
use carbon_store::lockfile::Lockfile;
use carbon_store::oci::metadata::{MetadataOverrides, parse_pair};
use carbon_store::python::install::WheelError;
use carbon_store::realize::packages::LoadError;
use carbon_store::realize::{self, RealizeError, RealizeOptions};
use carbon_store::sandbox::SandboxError;
use carbon_store::unpack::deb::UnpackError;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

#[derive(clap::Args, Debug)]
pub struct RealizeArgs {
    /// Images to build
    images: Vec<String>,
    /// Build every image under recipes/images
    #[arg(long, conflicts_with = "images")]
    all: bool,
    /// Archs to build, comma-separated (default: all of the image's)
    #[arg(long, value_delimiter = ',', value_parser = carbon_store::recipe::arch_named)]
    arch: Vec<String>,
    /// Layer compression: gzip (loads in Docker 20.10+), zstd, none
    #[arg(long, default_value = "gzip")]
    compression: String,
    /// Outputs, comma-separated: oci (layout dir) and/or docker (tarball per arch), or none
    /// with --push (layers leave the store once pushed)
    #[arg(long, value_delimiter = ',', default_value = "oci,docker")]
    format: Vec<String>,
    /// Output directory
    #[arg(long, default_value = "oci-out")]
    out: PathBuf,
    /// Repository and tag for the images, NAME:TAG (default carbon/IMAGE:latest)
    #[arg(long)]
    tag: Option<String>,
    /// Rebuild from the sources ignoring cached layers and compare with the existing output
    #[arg(long)]
    check: bool,
    /// A label in the image config, over the recipes' (repeatable; an empty VALUE removes)
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_pair)]
    labels: Vec<(String, String)>,
    /// An annotation on the manifest and index, over the defaults, git's and the recipes'
    /// (repeatable; an empty VALUE removes one, e.g. org.opencontainers.image.revision=)
    #[arg(long = "annotation", value_name = "KEY=VALUE", value_parser = parse_pair)]
    annotations: Vec<(String, String)>,
    #[command(flatten)]
    cache: super::registry::CacheArg,
    /// Then push the image to this registry reference, HOST[:PORT]/REPOSITORY[:TAG]
    #[arg(long, value_name = "REF", conflicts_with = "check")]
    push: Option<String>,
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
    /// Print the results as one JSON document on standard output (progress stays on
    /// standard error)
    #[arg(long)]
    json: bool,
    /// Also write that JSON document to FILE (replaced atomically)
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,
}

/// What `--json` and `--metadata-file` report: per image, what was done and where the
/// outputs are; per arch, the manifest and its layers. No time or host path beyond the
/// outputs' own, so two identical realizes report the same (but for `outcome`).
#[derive(serde::Serialize)]
struct ImageReport {
    image: String,
    /// `built`, `unchanged` or `checked` (`--check` found the outputs identical).
    outcome: &'static str,
    tag: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    oci_layout: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index_digest: Option<String>,
    /// `REF@DIGEST` with `--push`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pushed: Option<String>,
    archs: std::collections::BTreeMap<String, ArchReport>,
}

#[derive(serde::Serialize)]
struct ArchReport {
    manifest_digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    docker_archive: Option<PathBuf>,
    layers: Vec<carbon_store::oci::BuiltLayer>,
}

impl ImageReport {
    fn of(
        realized: &realize::Realized,
        outcome: &'static str,
        tag: String,
        pushed: Option<String>,
    ) -> Self {
        let archs = realized
            .archs
            .iter()
            .map(|(arch, (digest, archive))| {
                let layers = realized.layers.get(arch).cloned().unwrap_or_default();
                let report = ArchReport {
                    manifest_digest: digest.clone(),
                    docker_archive: archive.clone(),
                    layers,
                };
                (arch.clone(), report)
            })
            .collect();
        ImageReport {
            image: realized.image.clone(),
            outcome,
            tag,
            oci_layout: realized.oci_layout.clone(),
            index_digest: realized.index_digest.clone(),
            pushed,
            archs,
        }
    }
}

/// Whether an error, or any error it was caused by, is a full disk.
fn disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
        {
            return true;
        }
        current = err.source();
    }
    false
}

impl From<RealizeError> for CliError {
    fn from(e: RealizeError) -> Self {
        match &e {
            RealizeError::Store(s) if s.is_disk_full() => CliError::new(e.to_string()).hint("the disk is full: free space or use --store/--out on a larger disk"),
            _ if disk_full(&e) => CliError::new(e.to_string()).hint("the disk is full: free space or use --store/--out on a larger disk (unpacked files go to the store's temp area while layers are written)"),
            // The package itself breaks a rule: fetching it again gives the same bytes.
            RealizeError::Load { error: LoadError::Unpack(UnpackError::Escape { .. }), .. } => CliError::new(e.to_string())
                .hint("the package itself writes outside the image root, so it is refused whatever the store holds: leave it out of the recipe, or report it to whoever publishes it"),
            RealizeError::Load { error: LoadError::Store(_), .. } => CliError::new(e.to_string())
                .hint("a package in the store failed its hash check: run `carbon-store verify --repair` to fetch it again"),
            RealizeError::Load { .. } => CliError::new(e.to_string()).hint("the package is not a valid .deb: its bytes match the lock, so the archive publishes it so"),
            RealizeError::Wheel { error: WheelError::Sandbox(SandboxError::Unavailable { .. }), .. } => CliError::new(e.to_string())
                .hint("this host refuses user namespaces (a container's seccomp profile, or kernel.unprivileged_userns_clone=0): allow them, or set CARBON_BYTECODE_SANDBOX=off to compile byte-code unconfined where the locked packages are trusted (docs/security.md)"),
            _ => CliError::new(e.to_string()),
        }
    }
}

/// The mirrors an image's own apt sources name, for the Debian mirrors its lock reads;
/// why a mirror is left out is said once per run (`said`).
fn image_mirrors(
    mirrors: &MirrorSettings,
    lock: &Lockfile,
    out: &Output,
    said: &mut BTreeSet<String>,
) -> Result<ImageMirrors, CliError> {
    let names = lock
        .archs
        .keys()
        .flat_map(|arch| lock.debian_indexes(arch))
        .map(|i| i.mirror.clone())
        .collect();
    let (found, notes) = carbon_store::config::image_mirrors::resolve(mirrors, &names)
        .map_err(|e| {
            CliError::new(e.to_string())
                .hint("name the mirror containers should use with `--mirror image-debian=URL` (or `none` for no apt sources), docs/mirrors.md")
                .code(exit::USAGE)
        })?;
    for note in notes {
        if said.insert(note.clone()) {
            out.info(format!("note: {note}"));
        }
    }
    Ok(found)
}

pub fn run(cli: &Cli, args: &RealizeArgs, out: &Output) -> Result<(), CliError> {
    let out = &Output {
        json: args.json,
        ..*out
    };
    let mut reports = Vec::new();
    let recipes = cli.load_recipes()?;
    let images = if args.all {
        recipes.image_names()
    } else {
        cli.images(&recipes, &args.images)?
    };
    let compression = Compression::parse(&args.compression).ok_or_else(|| {
        CliError::new(format!("unknown compression {:?}", args.compression))
            .hint("use gzip, zstd or none")
            .code(exit::USAGE)
    })?;
    for f in &args.format {
        if f != "oci" && f != "docker" && f != "none" {
            return Err(CliError::new(format!("unknown format {f:?}"))
                .hint("use oci, docker, oci,docker, or none with --push")
                .code(exit::USAGE));
        }
    }
    if compression == Compression::Zstd && args.format.iter().any(|f| f == "docker") {
        out.info("warning: the docker archives hold zstd layers, which `docker load` reads from Docker 23.0 on; an older Docker (20.10) refuses them: use --compression gzip for it");
    }
    let repo_tag = args
        .tag
        .as_deref()
        .map(carbon_store::registry::reference::repo_tag)
        .transpose()
        .map_err(|why| {
            CliError::new(format!("--tag {why}"))
                .hint("write NAME:TAG with a lowercase name, e.g. team/base:v1")
                .code(exit::USAGE)
        })?;
    let no_outputs = args.format.iter().any(|f| f == "none");
    if no_outputs && (args.format.len() > 1 || args.push.is_none()) {
        return Err(CliError::new(
            "--format none keeps no image on disk: it goes alone, with --push REF",
        )
        .code(exit::USAGE));
    }
    if args.push.is_some() && images.len() > 1 {
        return Err(
            CliError::new("--push pushes one image: realize one image with it").code(exit::USAGE),
        );
    }
    if args.tag.is_some() && images.len() > 1 {
        return Err(
            CliError::new("--tag names one image; realize one image at a time with it")
                .code(exit::USAGE),
        );
    }
    let push_to = args
        .push
        .as_deref()
        .map(|r| super::registry::PushTarget::connect_checked(r, &args.registry))
        .transpose()?;
    let metadata = MetadataOverrides {
        vcs: super::vcs::annotations(&cli.recipes),
        annotations: args.annotations.iter().cloned().collect(),
        labels: args.labels.iter().cloned().collect(),
    };
    let store = cli.open_store()?;
    let _guard = store.lock_shared()?;
    let fetcher = Fetcher::new(cli.offline);
    let mirrors = cli.mirror_settings()?;
    let mut said = BTreeSet::new();
    for image in &images {
        let started = Instant::now();
        let plan = recipes.plan(image)?;
        let lock = match lock::check(&recipes, &cli.lockfiles, image) {
            Ok(lock) => lock,
            Err(LockError::Missing { .. }) => {
                out.info(format!("{image}: no lockfile yet, locking"));
                let ctx = LockContext {
                    store: &store,
                    fetcher: &fetcher,
                    mirrors: &mirrors,
                    now: SystemTime::now(),
                };
                lock::lock_image(&recipes, &cli.lockfiles, image, &ctx)?;
                lock::read(&cli.lockfiles, image)?
            }
            Err(e) => return Err(e.into()),
        };
        let lock_text = std::fs::read_to_string(lock::lock_path(&cli.lockfiles, image))
            .map_err(|e| CliError::new(e.to_string()))?;
        let archs = if args.arch.is_empty() {
            plan.archs.clone()
        } else {
            args.arch.clone()
        };
        let selected = super::fetch::select_archs(&lock, &archs);
        let wanted = fetch_lock::wanted(&selected)?;
        let cache = super::registry::open_cache(cli, &args.cache, &args.registry)?;
        super::fetch::download(cli, out, &store, &wanted, cache.as_ref())?;
        if let Some(cache) = &cache {
            super::fetch::restore_indexes(out, &store, cache, image, &lock_text, &lock, &archs);
        }
        super::fetch::build_sources(out, &store, &selected)?;
        let opts = RealizeOptions {
            archs: archs.clone(),
            compression,
            oci: args.format.iter().any(|f| f == "oci"),
            docker: args.format.iter().any(|f| f == "docker"),
            out_dir: args.out.clone(),
            repo_tag: repo_tag
                .clone()
                .unwrap_or_else(|| format!("carbon/{image}:latest")),
            check: args.check,
            check_layout: None,
            metadata: metadata.clone(),
            image_mirrors: image_mirrors(&mirrors, &lock, out, &mut said)?,
        };
        let files_dir = cli.recipes.join("files");
        let progress = super::progress::BuildDisplay::new(out, image);
        let build = |sink: Option<&dyn realize::LayerSink>| {
            let observers = realize::Observers {
                sink,
                progress: &progress,
            };
            realize::realize(
                &plan, &lock, &lock_text, &store, &opts, &files_dir, observers,
            )
        };
        let (realized, pushed) = match &push_to {
            None => (build(None)?, None),
            Some(to) => super::registry::build_and_push(
                cli,
                &store,
                to,
                out,
                no_outputs.then_some(compression),
                lock.source_date_epoch,
                |sink| build(Some(sink)),
            )
            .map(|(realized, pinned)| (realized, Some(pinned)))?,
        };
        progress.finish();
        let secs = started.elapsed().as_secs_f64();
        let outcome = if args.check {
            out.info(format!(
                "{image}: rebuilt from sources and identical to {} ({secs:.2}s)",
                args.out.join(image).display()
            ));
            "checked"
        } else if realized.reused {
            "unchanged"
        } else {
            "built"
        };
        let report = ImageReport::of(&realized, outcome, opts.repo_tag.clone(), pushed);
        if !args.check {
            out.info(format!("{image}: {outcome} in {secs:.2}s"));
            if !args.json {
                print_text(&report);
            }
        }
        reports.push(report);
    }
    let document = serde_json::to_string_pretty(&serde_json::json!({ "images": reports }))
        .expect("reports serialize")
        + "\n";
    if let Some(file) = &args.metadata_file {
        carbon_store::store::write_atomic(file, document.as_bytes())?;
    }
    if args.json {
        print!("{document}");
    }
    Ok(())
}

/// The text lines of one image's outputs on standard output.
fn print_text(report: &ImageReport) {
    let image = &report.image;
    if let (Some(dir), Some(d)) = (&report.oci_layout, &report.index_digest) {
        println!("{image}: OCI layout {} (index {d})", dir.display());
    }
    for (arch, a) in &report.archs {
        let archive = a
            .docker_archive
            .as_ref()
            .map(|p| format!(", docker archive {}", p.display()))
            .unwrap_or_default();
        println!(
            "{image} {arch}: manifest {} ({} layers{archive})",
            a.manifest_digest,
            a.layers.len()
        );
    }
}
