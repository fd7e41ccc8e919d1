//! `carbon-store lock`: resolve recipes into lockfiles, check them (`--check`), refresh pins
//! (`--update [PACKAGE...]`), and review changes (`lock diff`).

use super::error::CliError;
use super::{Cli, Output, exit};
use carbon_store::fetch::Fetcher;
use carbon_store::lock::diff::LockDiff;
use carbon_store::lock::{self, LockContext, LockOutcome, Moving, ReleasedPin};
use carbon_store::lockfile::Lockfile;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LockArgs {
    #[command(subcommand)]
    action: Option<LockAction>,
    /// Images to lock (default: every image). With --update: the packages to refresh.
    names: Vec<String>,
    /// Exit non-zero (code 3) when a lock is missing, malformed or stale; change nothing
    #[arg(long)]
    check: bool,
    /// Refresh pins to the newest the indexes allow: all of them, or only the PACKAGEs named
    /// (and what they newly need), keeping every other pin
    #[arg(long, conflicts_with = "check")]
    update: bool,
    /// With --update: the images to update (repeatable; default: every image)
    #[arg(long = "image", requires = "update")]
    image: Vec<String>,
}

#[derive(clap::Subcommand, Debug)]
enum LockAction {
    /// Show what changed between two sets of locks: `lock diff OLD NEW` or `lock diff --git REF`
    Diff(DiffArgs),
}

#[derive(clap::Args, Debug)]
struct DiffArgs {
    /// Old and new lockfile (or lockfiles directory)
    paths: Vec<PathBuf>,
    /// Compare the lockfiles at a git revision with the working tree
    #[arg(long, conflicts_with = "paths")]
    git: Option<String>,
    /// text, markdown (a pull-request body) or json
    #[arg(long, default_value = "text")]
    format: String,
    /// Exit with 1 when anything that alters an image changed, 0 when nothing did (as
    /// `git diff --exit-code`)
    #[arg(long)]
    exit_code: bool,
}

pub fn run(cli: &Cli, args: &LockArgs, out: &Output) -> Result<(), CliError> {
    if let Some(LockAction::Diff(diff)) = &args.action {
        return run_diff(cli, diff);
    }
    let recipes = cli.load_recipes()?;
    let images = if args.update {
        cli.images(&recipes, &args.image)?
    } else {
        cli.images(&recipes, &args.names)?
    };
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
                    .unwrap_or(exit::FAILURE);
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
    if args.update {
        let refresh = &args.names;
        if !refresh.is_empty() {
            let known: BTreeSet<String> = images
                .iter()
                .filter_map(|i| lock::read(&cli.lockfiles, i).ok())
                .flat_map(|l| {
                    l.archs.into_values().flat_map(|a| {
                        let python = a.python.into_iter().map(|p| p.name);
                        let npm = a.npm.into_iter().map(|p| p.name);
                        a.debian
                            .into_iter()
                            .map(|d| d.name)
                            .chain(python)
                            .chain(npm)
                    })
                })
                .collect();
            if let Some(missing) = refresh.iter().find(|n| !known.contains(*n)) {
                return Err(CliError::new(format!("{missing} is not pinned in any of the locks being updated ({})", images.join(", ")))
                    .hint("name packages as they appear in the lockfiles; `lock --update` alone refreshes everything"));
            }
        }
        for image in &images {
            let started = Instant::now();
            let plan = recipes.plan(image)?;
            let old = lock::read(&cli.lockfiles, image).ok();
            let moving = if refresh.is_empty() {
                Moving::All
            } else {
                Moving::Only(refresh)
            };
            let relocked = lock::relock(&plan, &ctx, old.as_ref(), moving)?;
            report_released(image, &relocked.released, out);
            write_if_changed(&cli.lockfiles, image, &relocked.lock, out, started)?;
        }
        return Ok(());
    }
    for image in &images {
        let started = Instant::now();
        match lock::lock_image(&recipes, &cli.lockfiles, image, &ctx)? {
            LockOutcome::Unchanged => out.info(format!("{image}: lock is up to date")),
            LockOutcome::Written {
                debian,
                wheels,
                npm,
                released,
            } => {
                report_released(image, &released, out);
                out.info(format!(
                    "{image}: wrote {} ({debian} Debian packages, {wheels} wheels, {npm} npm packages over all archs, {:.2}s)",
                    lock::lock_path(&cli.lockfiles, image).display(),
                    started.elapsed().as_secs_f64()
                ))
            }
        }
    }
    Ok(())
}

/// Names the pins that moved because no index at hand still has their version: one line
/// per package, its archs together.
fn report_released(image: &str, released: &[ReleasedPin], out: &Output) {
    let mut by_pin: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for pin in released {
        by_pin
            .entry((&pin.name, &pin.version))
            .or_default()
            .push(&pin.arch);
    }
    for ((name, version), mut archs) in by_pin {
        archs.sort_unstable();
        out.info(format!(
            "note: {image}: {name} {version} ({}) is in neither the current indexes nor the ones the lock was made from (the store lacks them), so it moved",
            archs.join(", ")
        ));
    }
}

fn write_if_changed(
    dir: &Path,
    image: &str,
    lock: &Lockfile,
    out: &Output,
    started: Instant,
) -> Result<(), CliError> {
    let path = lock::lock_path(dir, image);
    let text = lock.to_toml();
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
    Ok(())
}

/// Lockfile texts by image name.
type LockTexts = Vec<(String, String)>;

/// Every `<image>.lock` in a directory, by image name.
fn locks_in_dir(dir: &Path) -> Result<LockTexts, CliError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CliError::new(format!("cannot read {}: {e}", dir.display())))?;
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "lock") {
            let name = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&p)
                .map_err(|err| CliError::new(format!("{}: {err}", p.display())))?;
            out.push((name, text));
        }
    }
    Ok(out)
}

/// The lockfiles at a git revision: `(image, text)`.
fn locks_at_git(dir: &Path, rev: &str) -> Result<LockTexts, CliError> {
    let git = |args: &[&str]| -> Result<String, CliError> {
        let o = Command::new("git")
            .current_dir(dir)
            .args(args)
            .output()
            .map_err(|e| CliError::new(format!("cannot run git: {e}")))?;
        if !o.status.success() {
            return Err(CliError::new(format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            ))
            .hint("run inside the repository; REF must be a commit, branch or tag"));
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let mut out = Vec::new();
    for file in git(&["ls-tree", "--name-only", rev, "./"])?.lines() {
        let name = file.rsplit('/').next().unwrap_or(file);
        if let Some(image) = name.strip_suffix(".lock") {
            out.push((
                image.to_string(),
                git(&["show", &format!("{rev}:./{name}")])?,
            ));
        }
    }
    Ok(out)
}

fn parse(label: &str, text: &str) -> Result<Lockfile, CliError> {
    Lockfile::parse(text).map_err(|e| CliError::new(format!("{label}: {e}")))
}

fn run_diff(cli: &Cli, args: &DiffArgs) -> Result<(), CliError> {
    let (old, new): (LockTexts, LockTexts) = match (&args.git, args.paths.as_slice()) {
        (Some(rev), _) => (
            locks_at_git(&cli.lockfiles, rev)?,
            locks_in_dir(&cli.lockfiles)?,
        ),
        (None, [a, b]) if a.is_dir() && b.is_dir() => (locks_in_dir(a)?, locks_in_dir(b)?),
        (None, [a, b]) => {
            let read = |p: &PathBuf| {
                std::fs::read_to_string(p)
                    .map_err(|e| CliError::new(format!("{}: {e}", p.display())))
            };
            let (ta, tb) = (read(a)?, read(b)?);
            let image = parse(&b.display().to_string(), &tb)?.image;
            (vec![(image.clone(), ta)], vec![(image, tb)])
        }
        _ => {
            return Err(CliError::new(
                "lock diff needs OLD NEW (files or directories) or --git REF",
            )
            .code(exit::USAGE));
        }
    };
    let mut images: BTreeSet<String> = old.iter().map(|(i, _)| i.clone()).collect();
    images.extend(new.iter().map(|(i, _)| i.clone()));
    let mut diff = LockDiff::default();
    for image in images {
        let find = |list: &[(String, String)], side: &str| -> Result<Option<Lockfile>, CliError> {
            list.iter()
                .find(|(i, _)| *i == image)
                .map(|(_, t)| parse(&format!("{image} ({side})"), t))
                .transpose()
        };
        let (o, n) = (find(&old, "old")?, find(&new, "new")?);
        diff.add_image(&image, o.as_ref(), n.as_ref());
    }
    let text = match args.format.as_str() {
        "text" => diff.to_text(),
        "markdown" => diff.to_markdown(),
        "json" => diff.to_json(),
        other => {
            return Err(CliError::new(format!("unknown format {other:?}"))
                .hint("use text, markdown or json")
                .code(exit::USAGE));
        }
    };
    print!("{text}");
    if args.exit_code && !diff.is_empty() {
        return Err(CliError::exit_only(exit::FAILURE));
    }
    Ok(())
}
