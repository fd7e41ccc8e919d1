//! `carbon-store fetch`: download what the images' lockfiles name.

use super::error::CliError;
use super::progress::Progress;
use super::{Cli, Output};
use carbon_store::fetch::Fetcher;
use carbon_store::fetch::lockfile::{self as fetch_lock, FetchReport, Wanted};
use carbon_store::lock;
use carbon_store::store::Store;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    /// Images whose locks to fetch (default: every image)
    images: Vec<String>,
}

pub fn run(cli: &Cli, args: &FetchArgs, out: &Output) -> Result<(), CliError> {
    let recipes = cli.load_recipes()?;
    let images = cli.images(&recipes, &args.images)?;
    let mut wanted: Vec<Wanted> = Vec::new();
    for image in &images {
        let lock = lock::read(&cli.lockfiles, image)?;
        for w in fetch_lock::wanted(&lock)? {
            if !wanted
                .iter()
                .any(|x| x.sha256 == w.sha256 && x.name == w.name)
            {
                wanted.push(w);
            }
        }
    }
    let store = cli.open_store()?;
    let _guard = store.lock_shared()?;
    let started = Instant::now();
    let report = download(cli, out, &store, &wanted)?;
    let secs = started.elapsed().as_secs_f64();
    out.info(format!(
        "{} artifacts: {} already in the store, {} downloaded ({:.1} MB in {:.1}s)",
        report.artifacts,
        report.already_present,
        report.downloaded,
        report.bytes_downloaded as f64 / 1e6,
        secs
    ));
    Ok(())
}

/// Downloads what is missing with a progress display; shared by `fetch` and `realize`.
pub fn download(
    cli: &Cli,
    out: &Output,
    store: &Store,
    wanted: &[Wanted],
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
    );
    progress.finish();
    Ok(report?)
}
