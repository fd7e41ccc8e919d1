//! `carbon-store fetch`: download what the images' lockfiles name.

use super::error::CliError;
use super::progress::Progress;
use super::{Cli, Output};
use carbon_store::download::{self as fetch_lock, FetchReport, Wanted};
use carbon_store::fetch::Fetcher;
use carbon_store::lock;
use carbon_store::lockfile::Lockfile;
use carbon_store::python::sdist;
use carbon_store::store::Store;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    /// Images whose locks to fetch (default: every image)
    images: Vec<String>,
    /// Archs to fetch, comma-separated (default: all of each lock's)
    #[arg(long, value_delimiter = ',', value_parser = carbon_store::recipe::arch_named)]
    arch: Vec<String>,
    #[command(flatten)]
    cache: super::registry::CacheArg,
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
    #[command(flatten)]
    json: super::JsonFlag,
}

/// What `fetch --json` reports.
#[derive(serde::Serialize)]
struct FetchSummary<'a> {
    images: &'a [String],
    archs: &'a [String],
    artifacts: usize,
    already_present: usize,
    downloaded: usize,
    bytes_downloaded: u64,
    /// Of those downloaded, how many came from the registry cache.
    from_cache: usize,
    /// Wheels built from their sdists because the store lacked them.
    built_from_source: usize,
    /// Copies the cache offered that did not match the lock (taken from the mirrors).
    refused_from_cache: &'a [String],
    seconds: f64,
}

/// The lock reduced to `archs`, plus what building them needs beyond their own sections:
/// byte-code is compiled by the image's interpreter for the host's arch.
pub fn select_archs(lock: &Lockfile, archs: &[String]) -> Lockfile {
    let mut selected = lock.clone();
    selected.archs.retain(|a, _| archs.contains(a));
    if selected.archs.values().any(|a| !a.python.is_empty()) {
        let minor = carbon_store::python::install::python_minor(lock);
        let extra = carbon_store::python::install::Compiler::packages(lock, &minor);
        if let Some(section) = selected.archs.values_mut().next() {
            for p in extra {
                if !section.debian.contains(&p) {
                    section.debian.push(p);
                }
            }
        }
    }
    selected
}

/// The archs of `lock` among `wanted` (all of them when `wanted` is empty).
pub fn chosen_archs(lock: &Lockfile, wanted: &[String]) -> Vec<String> {
    lock.archs
        .keys()
        .filter(|a| wanted.is_empty() || wanted.contains(a))
        .cloned()
        .collect()
}

/// An image's lock and its text (the cache tags artifacts by the text's hash).
pub fn read_lock(cli: &Cli, image: &str) -> Result<(Lockfile, String), CliError> {
    let lock = lock::read(&cli.lockfiles, image)?;
    let text = std::fs::read_to_string(lock::lock_path(&cli.lockfiles, image))
        .map_err(|e| CliError::new(e.to_string()))?;
    Ok((lock, text))
}

pub fn run(cli: &Cli, args: &FetchArgs, out: &Output) -> Result<(), CliError> {
    let recipes = cli.load_recipes()?;
    let images = cli.images(&recipes, &args.images)?;
    let mut wanted: Vec<Wanted> = Vec::new();
    // Per image: its lock's text (the cache names artifacts by it) and the lock reduced to
    // the archs asked for.
    let mut locks: Vec<(&String, String, Lockfile)> = Vec::new();
    for image in &images {
        let (mut lock, text) = read_lock(cli, image)?;
        if let Some(arch) = args.arch.iter().find(|a| !lock.archs.contains_key(*a)) {
            let archs: Vec<&str> = lock.archs.keys().map(String::as_str).collect();
            return Err(CliError::new(format!(
                "{image} is not locked for {arch} (its archs: {})",
                archs.join(", ")
            ))
            .code(super::exit::USAGE));
        }
        if !args.arch.is_empty() {
            lock = select_archs(&lock, &args.arch);
        }
        for w in fetch_lock::wanted(&lock)? {
            if !wanted
                .iter()
                .any(|x| x.digest == w.digest && x.name == w.name)
            {
                wanted.push(w);
            }
        }
        locks.push((image, text, lock));
    }
    let store = cli.open_store()?;
    let _guard = store.lock_shared()?;
    let started = Instant::now();
    let cache = super::registry::open_cache(cli, &args.cache, &args.registry)?;
    let report = download(cli, out, &store, &wanted, cache.as_ref())?;
    if let Some(cache) = &cache {
        for (image, text, lock) in &locks {
            let archs: Vec<String> = lock.archs.keys().cloned().collect();
            restore_indexes(out, &store, cache, image, text, lock, &archs);
        }
    }
    let mut built = 0;
    for (_, _, lock) in &locks {
        built += build_sources(out, &store, lock)?;
    }
    let secs = started.elapsed().as_secs_f64();
    if args.json.json {
        super::print_json(&FetchSummary {
            images: &images,
            archs: &args.arch,
            artifacts: report.artifacts,
            already_present: report.already_present,
            downloaded: report.downloaded,
            bytes_downloaded: report.bytes_downloaded,
            from_cache: report.substituted,
            built_from_source: built,
            refused_from_cache: &report.refused,
            seconds: (secs * 100.0).round() / 100.0,
        })?;
    }
    out.info(format!(
        "{} artifacts: {} already in the store, {} downloaded ({:.1} MB in {:.1}s{})",
        report.artifacts,
        report.already_present,
        report.downloaded,
        report.bytes_downloaded as f64 / 1e6,
        secs,
        if cache.is_some() {
            format!(", {} from the cache", report.substituted)
        } else {
            String::new()
        }
    ));
    Ok(())
}

/// Downloads what is missing with a progress display; shared by `fetch` and `realize`.
pub fn download(
    cli: &Cli,
    out: &Output,
    store: &Store,
    wanted: &[Wanted],
    cache: Option<&carbon_store::registry::cache::RegistryCache>,
) -> Result<FetchReport, CliError> {
    let fetcher = Fetcher::new(cli.offline);
    let mirrors = cli.mirror_settings()?;
    let progress = Progress::new(out);
    let report = fetch_lock::fetch_all(
        wanted,
        store,
        &fetcher,
        &mirrors,
        cli.download_jobs(),
        &progress,
        cache.map(|c| c as &dyn fetch_lock::Substituter),
    );
    progress.finish();
    let report = report?;
    for why in &report.refused {
        out.info(format!(
            "warning: refused from the cache, taken from the mirror: {why}"
        ));
    }
    Ok(report)
}

/// Takes the signed indexes of each of the lock's `archs` from the cache, where it has
/// them; a failure only warns (nothing is built from them).
pub fn restore_indexes(
    out: &Output,
    store: &Store,
    cache: &carbon_store::registry::cache::RegistryCache,
    image: &str,
    lock_text: &str,
    lock: &Lockfile,
    archs: &[String],
) {
    for arch in archs {
        match cache.restore_indexes(store, image, arch, lock_text, lock) {
            Ok(0) => {}
            Ok(n) => out.info(format!("{image} {arch}: {n} signed indexes from the cache")),
            Err(e) => out.info(format!(
                "warning: {image} {arch}: the signed indexes did not come from the cache: {e}"
            )),
        }
    }
}

/// Builds the lock's wheels made from sdists that the store lacks, and says how many;
/// shared by `fetch` and `realize`.
pub fn build_sources(out: &Output, store: &Store, lock: &Lockfile) -> Result<usize, CliError> {
    let built = sdist::rebuild_missing(store, lock).map_err(|e| {
        let hint = match &e {
            sdist::SdistError::NotReproducible { .. } => {
                "see docs/recipes.md (build-from-source) on reproducible sdist builds"
            }
            sdist::SdistError::NoPython(_) => "install python3 (scripts/ensure-tools does)",
            _ => "fix the sdist or drop it from build-from-source, then lock again",
        };
        CliError::new(e.to_string()).hint(hint)
    })?;
    if built > 0 {
        out.info(format!(
            "built {built} wheel(s) from sdists; their hashes match the lock"
        ));
    }
    Ok(built)
}
