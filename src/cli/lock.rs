//! `carbon-store lock`: resolve recipes into lockfiles, or check them (`--check`).

use super::error::CliError;
use super::{Cli, Output};
use carbon_store::fetch::Fetcher;
use carbon_store::lock::{self, LockContext, LockOutcome};
use std::time::{Instant, SystemTime};

#[derive(clap::Args, Debug)]
pub struct LockArgs {
    /// Images to lock (default: every image under recipes/images)
    images: Vec<String>,
    /// Exit non-zero (code 3) when a lock is missing, malformed or stale; change nothing
    #[arg(long)]
    check: bool,
    /// Re-resolve even up-to-date locks against the newest indexes
    #[arg(long, conflicts_with = "check")]
    update: bool,
}

pub fn run(cli: &Cli, args: &LockArgs, out: &Output) -> Result<(), CliError> {
    let recipes = cli.load_recipes()?;
    let images = cli.images(&recipes, &args.images)?;
    if args.check {
        let mut failures = Vec::new();
        for image in &images {
            match lock::check(&recipes, &cli.lockfiles, image) {
                Ok(_) => out.info(format!("{image}: lock is up to date")),
                Err(e) => failures.push(CliError::from(e)),
            }
        }
        return match failures.len() {
            0 => Ok(()),
            1 => Err(failures.pop().expect("one failure")),
            n => {
                let code = failures
                    .iter()
                    .map(|f| f.code)
                    .max()
                    .unwrap_or(super::exit::FAILURE);
                let text: Vec<String> = failures.into_iter().map(|f| f.message).collect();
                Err(
                    CliError::new(format!("{n} locks failed the check:\n{}", text.join("\n")))
                        .code(code),
                )
            }
        };
    }
    let store = cli.open_store()?;
    let _guard = store.lock_shared()?;
    let fetcher = Fetcher::new(cli.offline);
    let mirrors = cli.mirror_settings()?;
    let ctx = LockContext {
        store: &store,
        fetcher: &fetcher,
        mirrors: &mirrors,
        now: SystemTime::now(),
    };
    for image in &images {
        let started = Instant::now();
        if args.update {
            let plan = recipes.plan(image)?;
            let resolved = lock::resolve(&plan, &ctx).map_err(CliError::from)?;
            let path = lock::lock_path(&cli.lockfiles, image);
            let text = resolved.to_toml();
            if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
                out.info(format!(
                    "{image}: lock unchanged ({:.2}s)",
                    started.elapsed().as_secs_f64()
                ));
            } else {
                carbon_store::store::write_atomic(&path, text.as_bytes())?;
                out.info(format!(
                    "{image}: wrote {} ({:.2}s)",
                    path.display(),
                    started.elapsed().as_secs_f64()
                ));
            }
            continue;
        }
        match lock::lock_image(&recipes, &cli.lockfiles, image, &ctx)? {
            LockOutcome::Unchanged => out.info(format!("{image}: lock is up to date")),
            LockOutcome::Written { packages } => out.info(format!(
                "{image}: wrote {} ({packages} artifacts, {:.2}s)",
                lock::lock_path(&cli.lockfiles, image).display(),
                started.elapsed().as_secs_f64()
            )),
        }
    }
    Ok(())
}
