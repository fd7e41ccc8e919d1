//! `carbon-store push` and `pull` (and `realize --push`): images to and from OCI registries.

use super::error::CliError;
use super::{Cli, Output, exit};
use carbon_store::layer::compress::Compression;
use carbon_store::oci::BuiltLayer;
use carbon_store::realize::{LayerSink, RealizeError, Realized};
use carbon_store::registry::auth::Credential;
use carbon_store::registry::cache::RegistryCache;
use carbon_store::registry::documents::Descriptor;
use carbon_store::registry::push::{BlobCounts, BlobOutcome, PushProgress, PushReport};
use carbon_store::registry::sessions::Sessions;
use carbon_store::registry::stream::{AfterUpload, BlobQueue, check_access, finish_images, stream};
use carbon_store::registry::{ConnectOptions, ImageRef, Registry, RegistryError};
use carbon_store::store::Store;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to reach and log into a registry (shared by push, pull and realize --push).
#[derive(clap::Args, Debug, Default)]
pub struct RegistryArgs {
    /// Speak plain HTTP to the registry (registries on this machine may without it)
    #[arg(long)]
    plain_http: bool,
    /// Trust the CA certificates in this PEM file as well as the system's
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Log in as this user (with --password-stdin) instead of docker's or podman's stored login
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the password (or token) for --username from standard input
    #[arg(long, requires = "username")]
    password_stdin: bool,
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// An image name (pushes the layout `realize` wrote under --out) or an OCI layout directory
    source: String,
    /// Where to: HOST[:PORT]/REPOSITORY[:TAG]
    reference: String,
    /// Output directory `realize` wrote the image's layout to
    #[arg(long, default_value = "oci-out")]
    out: PathBuf,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    json: super::JsonFlag,
}

/// What `push --json` reports.
#[derive(serde::Serialize)]
struct PushSummary<'a> {
    /// `REF@DIGEST`: the reference pinned to what the tag now points at.
    pushed: String,
    digest: &'a str,
    blobs: &'a carbon_store::registry::push::BlobCounts,
    manifests: usize,
}

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// What to pull: HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]
    reference: String,
    /// The OCI layout directory to write (created; other tags in it are kept)
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    registry: RegistryArgs,
}

impl From<RegistryError> for CliError {
    fn from(e: RegistryError) -> Self {
        let message = e.to_string();
        match e {
            RegistryError::NoCredentials { .. } => CliError::new(message).hint(
                "log in with `docker login` or `podman login`, or pass --username and --password-stdin",
            ),
            RegistryError::BadCredentials { .. } => CliError::new(message)
                .hint("check the user name and password (or token); `docker login` again if it expired"),
            RegistryError::Denied { .. } => CliError::new(message)
                .hint("the credentials are valid but lack the rights: pushing needs push rights on the repository"),
            RegistryError::Connect { .. } => CliError::new(message).hint(
                "check the address; for a registry with its own CA pass --ca-file, for one without TLS --plain-http",
            ),
            RegistryError::Reference(_) => CliError::new(message).code(exit::USAGE),
            _ => CliError::new(message),
        }
    }
}

impl RegistryArgs {
    pub(super) fn connect(&self, reference: &ImageRef) -> Result<Registry, CliError> {
        let credential = match &self.username {
            Some(username) => {
                let mut password = String::new();
                std::io::stdin()
                    .read_to_string(&mut password)
                    .map_err(|e| {
                        CliError::new(format!("reading the password from standard input: {e}"))
                    })?;
                let password = password.trim_end_matches(['\n', '\r']).to_string();
                if password.is_empty() {
                    return Err(
                        CliError::new("--password-stdin read an empty password").code(exit::USAGE)
                    );
                }
                Some(Credential::Basic {
                    username: username.clone(),
                    password,
                })
            }
            None => None,
        };
        let opts = ConnectOptions {
            plain_http: self.plain_http,
            ca_file: self.ca_file.clone(),
            credential,
            backoff: None,
        };
        Ok(Registry::new(reference, &opts)?)
    }
}

/// `--cache REF`: a registry cache read before the mirrors.
#[derive(clap::Args, Debug, Default)]
pub struct CacheArg {
    /// Take packages and wheels from this registry cache (HOST[:PORT]/REPOSITORY) before the mirrors
    #[arg(long, env = "CARBON_CACHE", value_name = "REF")]
    cache: Option<String>,
}

/// The cache to read, if one is named by `--cache`, `CARBON_CACHE` or the config file's
/// `cache` (the connection is made here; no request yet).
pub fn open_cache(
    cli: &Cli,
    arg: &CacheArg,
    registry: &RegistryArgs,
) -> Result<Option<RegistryCache>, CliError> {
    let settings = cli.mirror_settings()?;
    let Some(text) = arg.cache.as_deref().or(settings.config_cache()) else {
        return Ok(None);
    };
    let reference = parse_ref(text)?;
    let connection = registry.connect(&reference)?;
    Ok(Some(RegistryCache::new(connection, reference)))
}

fn parse_ref(text: &str) -> Result<ImageRef, CliError> {
    Ok(ImageRef::parse(text).map_err(RegistryError::from)?)
}

/// Progress of a push: a byte bar on a terminal; nothing otherwise (the summary follows).
struct Bar(Option<ProgressBar>);

impl Bar {
    fn new(out: &Output, message: &str) -> Bar {
        Bar((std::io::stderr().is_terminal() && !out.quiet).then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .expect("template is valid")
                .progress_chars("=> "),
            );
            bar.set_message(message.to_string());
            bar
        }))
    }
}

impl Bar {
    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// `3 blobs uploaded (52.4 MB, 1 resumed), 0 mounted, 2 already there`
fn describe(c: &BlobCounts) -> String {
    format!(
        "{} blobs uploaded ({:.1} MB{}), {} mounted, {} already there",
        c.uploaded,
        c.uploaded_bytes as f64 / 1e6,
        if c.resumed > 0 {
            format!(", {} resumed", c.resumed)
        } else {
            String::new()
        },
        c.mounted,
        c.present,
    )
}

impl PushProgress for Bar {
    fn start(&self, _blobs: usize, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(bytes);
        }
    }
    fn bytes(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }
    fn blob_done(&self, _digest: &str, _outcome: &BlobOutcome) {}
}

/// The layout a push reads: `OUT/IMAGE` for an image name, else the directory given.
fn source_layout(cli: &Cli, source: &str, out: &Path) -> Result<PathBuf, CliError> {
    let is_image = cli
        .load_recipes()
        .map(|r| r.image_names().iter().any(|n| n == source))
        .unwrap_or(false);
    let layout = if is_image {
        out.join(source)
    } else {
        PathBuf::from(source)
    };
    if !layout.join("oci-layout").is_file() {
        let mut e = CliError::new(format!("{} holds no OCI layout", layout.display()));
        e = if is_image {
            e.hint(format!(
                "build it first (`carbon-store realize {source}`), or build and push in one step: `carbon-store realize {source} --push REF`"
            ))
        } else {
            e.hint("name an image of the recipes, or an OCI layout directory (one with an `oci-layout` file)")
        };
        return Err(e);
    }
    Ok(layout)
}

/// Where a push goes, connected once (a password read from standard input can be read
/// only once).
pub struct PushTarget {
    target: ImageRef,
    registry: Registry,
}

impl PushTarget {
    pub fn connect(reference: &str, registry_args: &RegistryArgs) -> Result<Self, CliError> {
        let target = parse_ref(reference)?;
        let registry = registry_args.connect(&target)?;
        Ok(PushTarget { target, registry })
    }

    /// Connects and checks the login for pushing, before a long build.
    pub fn connect_checked(
        reference: &str,
        registry_args: &RegistryArgs,
    ) -> Result<Self, CliError> {
        let to = Self::connect(reference, registry_args)?;
        check_access(&to.registry, &to.target.repository)?;
        Ok(to)
    }
}

pub fn push(cli: &Cli, args: &PushArgs, out: &Output) -> Result<(), CliError> {
    parse_ref(&args.reference)?;
    let layout = source_layout(cli, &args.source, &args.out)?;
    let image = carbon_store::registry::push::read_layout(&layout, None)?;
    let to = PushTarget::connect(&args.reference, &args.registry)?;
    let out = &Output {
        json: args.json.json,
        ..*out
    };
    let (report, pushed) = push_layout(cli, &image, &to, out)?;
    if args.json.json {
        super::print_json(&PushSummary {
            pushed,
            digest: &report.digest,
            blobs: &report.blobs,
            manifests: report.manifests,
        })?;
    }
    Ok(())
}

/// Pushes a layout's image and prints `REF@DIGEST` (returned too); shared with
/// `realize --push`.
fn push_layout(
    cli: &Cli,
    image: &carbon_store::registry::push::LayoutImage,
    to: &PushTarget,
    out: &Output,
) -> Result<(PushReport, String), CliError> {
    let (target, registry) = (&to.target, &to.registry);
    let store = cli.open_store()?;
    let sessions = Sessions::new(&store);
    let started = Instant::now();
    let bar = Bar::new(out, &format!("pushing to {target}"));
    let report = carbon_store::registry::push::push(
        image,
        target,
        registry,
        &sessions,
        cli.upload_jobs(),
        &bar,
    );
    bar.finish();
    let report = report?;
    let pinned = print_pushed(out, target, started, &report);
    Ok((report, pinned))
}

/// `pushed REF in 1.2s: …` on stderr, `REF@DIGEST` on stdout (unless it is JSON's);
/// returns `REF@DIGEST`.
fn print_pushed(out: &Output, target: &ImageRef, started: Instant, report: &PushReport) -> String {
    out.info(format!(
        "pushed {target} in {:.1}s: {}; {} manifests",
        started.elapsed().as_secs_f64(),
        describe(&report.blobs),
        report.manifests,
    ));
    let mut pinned = target.clone();
    pinned.digest = Some(report.digest.clone());
    if !out.json {
        println!("{pinned}");
    }
    pinned.to_string()
}

/// Uploads each layer as realize writes it; removes it from the store once the registry
/// has it when `forget` names the layers' compression (a realize that keeps no image).
struct UploadingSink<'q, 'a> {
    queue: &'q BlobQueue<'a>,
    store: &'a Store,
    forget: Option<Compression>,
}

impl LayerSink for UploadingSink<'_, '_> {
    fn layer_written(
        &self,
        layer: &BuiltLayer,
        blob: &Path,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let descriptor = Descriptor {
            media_type: layer.media_type.clone(),
            digest: layer.digest.clone(),
            size: layer.size,
        };
        let after = self.forget.map(|compression| {
            let (store, layer) = (self.store, layer.clone());
            Box::new(move || carbon_store::realize::layers::forget(store, &layer, compression))
                as AfterUpload
        });
        self.queue.push(blob.to_path_buf(), descriptor, after)?;
        Ok(())
    }
}

/// `realize --push`: runs `build` with a sink that uploads every layer while the next ones
/// are built, then pushes the configs, manifests and the index. A realize that found its
/// outputs intact built nothing: its layout is pushed instead.
pub fn build_and_push(
    cli: &Cli,
    store: &Store,
    to: &PushTarget,
    out: &Output,
    forget: Option<Compression>,
    created: u64,
    build: impl FnOnce(&dyn LayerSink) -> Result<Realized, RealizeError>,
) -> Result<(Realized, String), CliError> {
    let (target, registry) = (&to.target, &to.registry);
    let sessions = Sessions::new(store);
    let started = Instant::now();
    let bar = Bar::new(out, &format!("pushing to {target}"));
    let (built, layers) = stream(
        registry,
        &target.repository,
        &sessions,
        cli.upload_jobs(),
        &bar,
        |queue| {
            build(&UploadingSink {
                queue,
                store,
                forget,
            })
        },
    );
    // An upload error explains a build stopped by it better than the build's own error.
    let layers = layers?;
    let realized = built?;
    if realized.images.is_empty() {
        bar.finish();
        let layout = realized.oci_layout.as_ref().ok_or_else(|| {
            CliError::new("nothing to push: the realize was unchanged and wrote no OCI layout")
                .hint("realize with --format oci (the default) to push an unchanged image")
        })?;
        let image = carbon_store::registry::push::read_layout(layout, None)?;
        let (_, pinned) = push_layout(cli, &image, to, out)?;
        return Ok((realized, pinned));
    }
    let report = finish_images(
        &realized.images,
        created,
        target,
        registry,
        &sessions,
        &bar,
        layers,
    );
    bar.finish();
    let pinned = print_pushed(out, target, started, &report?);
    Ok((realized, pinned))
}

pub fn pull(_cli: &Cli, args: &PullArgs, out: &Output) -> Result<(), CliError> {
    let source = parse_ref(&args.reference)?;
    let registry = args.registry.connect(&source)?;
    let started = Instant::now();
    let bar = Bar::new(out, &format!("pulling {source}"));
    let ref_name = source.tag.clone().unwrap_or_else(|| "latest".into());
    let report =
        carbon_store::registry::pull::pull(&source, &registry, &args.out, &ref_name, &|n| {
            if let Some(b) = &bar.0 {
                b.inc(n);
            }
        });
    bar.finish();
    let report = report?;
    out.info(format!(
        "pulled {source} into {} in {:.1}s: {} blobs downloaded ({:.1} MB), {} already there",
        args.out.display(),
        started.elapsed().as_secs_f64(),
        report.blobs,
        report.downloaded_bytes as f64 / 1e6,
        report.already_there,
    ));
    println!(
        "{}@{}",
        source.to_string().split('@').next().unwrap_or(""),
        report.digest
    );
    Ok(())
}

#[derive(clap::Subcommand, Debug)]
pub enum CacheAction {
    /// Push the packages and wheels images' locks pin to a registry, for `--cache` to read
    Push(CachePushArgs),
}

#[derive(clap::Args, Debug)]
pub struct CachePushArgs {
    /// Images whose locks to cache (default: every image)
    images: Vec<String>,
    /// The cache repository, HOST[:PORT]/REPOSITORY
    #[arg(long, value_name = "REF")]
    to: String,
    /// Archs to cache, comma-separated (default: all of each lock's)
    #[arg(long, value_delimiter = ',', value_parser = carbon_store::recipe::arch_named)]
    arch: Vec<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn cache(cli: &Cli, action: &CacheAction, out: &Output) -> Result<(), CliError> {
    let CacheAction::Push(args) = action;
    let target = parse_ref(&args.to)?;
    let recipes = cli.load_recipes()?;
    let images = cli.images(&recipes, &args.images)?;
    let store = cli.open_store()?;
    let _guard = store.lock_shared()?;
    let registry = args.registry.connect(&target)?;
    let sessions = Sessions::new(&store);
    for image in &images {
        let (lock, lock_text) = super::fetch::read_lock(cli, image)?;
        let archs = super::fetch::chosen_archs(&lock, &args.arch);
        for arch in &archs {
            let selected = super::fetch::select_archs(&lock, std::slice::from_ref(arch));
            let wanted = carbon_store::download::wanted(&selected)?;
            let indexes = carbon_store::registry::cache::locked_indexes(&lock, arch);
            // What the store lacks comes from the mirrors first.
            super::fetch::download(cli, out, &store, &wanted, None)?;
            let started = Instant::now();
            let bar = Bar::new(out, &format!("caching {image} {arch}"));
            let report = carbon_store::registry::cache::push_arch(
                &store,
                &registry,
                &target.repository,
                &sessions,
                image,
                arch,
                &lock_text,
                &wanted,
                &indexes,
                cli.upload_jobs(),
                &bar,
            );
            bar.finish();
            let report = report?;
            out.info(format!(
                "cached {image} {arch} in {:.1}s: {} objects ({} signed indexes of the {} the lock names), {}",
                started.elapsed().as_secs_f64(),
                report.objects,
                report.indexes,
                indexes.len(),
                describe(&report.counts),
            ));
            println!("{}/{}:{}", target.registry, target.repository, report.tag);
        }
    }
    Ok(())
}
