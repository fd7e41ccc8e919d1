//! Store maintenance and air-gapped transport: `bundle export|import`, `gc`, `verify`.

use super::error::CliError;
use super::{Cli, Output, exit, human};
use carbon_store::download as fetch_lock;
use carbon_store::lock;
use carbon_store::lockfile::Lockfile;
use carbon_store::store::bundle::{self, BundleError};
use carbon_store::store::gc::{self, Problem, Roots};
use carbon_store::store::path::fixed_output_name_of;
use carbon_store::store::{Area, Store};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Subcommand, Debug)]
pub enum BundleAction {
    /// Write everything the images' locks need into one archive for an air-gapped site
    Export {
        /// Images whose locks to bundle
        #[arg(required = true)]
        images: Vec<String>,
        /// The bundle file to write
        #[arg(short, long)]
        output: PathBuf,
        /// Compress the bundle with zstd
        #[arg(long)]
        zstd: bool,
    },
    /// Verify a bundle and add its objects to the store (all of them, or none)
    Import {
        /// The bundle file
        file: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
pub struct GcArgs {
    /// List what would be removed, remove nothing
    #[arg(long)]
    dry_run: bool,
    /// Output directory whose OCI layouts are roots
    #[arg(long, default_value = "oci-out")]
    out: PathBuf,
    /// Extra lockfiles to keep (also every file in STORE/gcroots/)
    #[arg(long = "root")]
    roots: Vec<PathBuf>,
    #[command(flatten)]
    json: super::JsonFlag,
}

/// What `gc --json` reports.
#[derive(serde::Serialize)]
struct GcSummary<'a> {
    dry_run: bool,
    /// What was removed (or, with `--dry-run`, would be).
    removed: Vec<RemovedFile<'a>>,
    freed_bytes: u64,
    kept: usize,
}

#[derive(serde::Serialize)]
struct RemovedFile<'a> {
    path: &'a std::path::Path,
    bytes: u64,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Images whose locked packages must all be in the store (default: none; every object
    /// the store holds is re-hashed either way)
    images: Vec<String>,
    /// Every image's locked packages must be in the store
    #[arg(long, conflicts_with = "images")]
    all: bool,
    /// Remove corrupt objects and fetch again what was corrupt or missing
    #[arg(long)]
    repair: bool,
    #[command(flatten)]
    json: super::JsonFlag,
}

/// What `verify --json` reports: the problems found and, with `--repair`, those left.
#[derive(serde::Serialize)]
struct VerifySummary {
    checked: usize,
    /// The images whose locked packages had to be present.
    images: Vec<String>,
    #[serde(flatten)]
    found: Problems,
    #[serde(skip_serializing_if = "Option::is_none")]
    repair: Option<Problems>,
}

/// Store problems by kind: corrupt objects (paths) and missing ones (store names).
#[derive(serde::Serialize)]
struct Problems {
    corrupt: Vec<PathBuf>,
    missing: Vec<String>,
}

impl Problems {
    fn of(problems: &[Problem]) -> Problems {
        let mut by_kind = Problems {
            corrupt: Vec::new(),
            missing: Vec::new(),
        };
        for p in problems {
            match p {
                Problem::Corrupt(path) => by_kind.corrupt.push(path.clone()),
                Problem::Missing(name) => by_kind.missing.push(name.clone()),
            }
        }
        by_kind
    }
}

impl From<BundleError> for CliError {
    fn from(e: BundleError) -> Self {
        match e {
            BundleError::Store(s) => s.into(),
            other => CliError::new(other.to_string()),
        }
    }
}

fn all_locks(cli: &Cli) -> Result<Vec<Lockfile>, CliError> {
    let mut locks = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&cli.lockfiles) {
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_suffix(".lock")
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        for image in names {
            locks.push(lock::read(&cli.lockfiles, &image)?);
        }
    }
    Ok(locks)
}

fn read_lock_file(path: &PathBuf) -> Result<Lockfile, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
    Lockfile::parse(&text).map_err(|e| CliError::new(format!("{}: {e}", path.display())))
}

pub fn bundle(cli: &Cli, action: &BundleAction, out: &Output) -> Result<(), CliError> {
    let store = cli.open_store()?;
    let started = Instant::now();
    match action {
        BundleAction::Export {
            images,
            output,
            zstd,
        } => {
            let _guard = store.lock_shared()?;
            let recipes = cli.load_recipes()?;
            let mut locks = Vec::new();
            let mut keyrings = Vec::new();
            for image in images {
                locks.push(lock::check(&recipes, &cli.lockfiles, image)?);
                for k in recipes.plan(image)?.keyring_bytes {
                    if !keyrings.iter().any(|(n, _): &(String, Vec<u8>)| *n == k.0) {
                        keyrings.push(k);
                    }
                }
            }
            let report = bundle::export(&store, &locks, &keyrings, output, *zstd)?;
            let size = std::fs::metadata(output).map(|m| m.len()).unwrap_or(0);
            out.info(format!(
                "wrote {} ({} objects, {} of content, {} on disk, {:.2}s)",
                output.display(),
                report.objects,
                human(report.bytes),
                human(size),
                started.elapsed().as_secs_f64()
            ));
            if !report.missing_indexes.is_empty() {
                out.info(format!(
                    "note: {} index file(s) the locks were made from are not in this store, so `lock` cannot run offline at the site (realize can): {}",
                    report.missing_indexes.len(),
                    report.missing_indexes.join(", ")
                ));
            }
        }
        BundleAction::Import { file } => {
            let _guard = store.lock_shared()?;
            let report = bundle::import(&store, file)?;
            out.info(format!(
                "imported {} objects ({} already present) for {} ({:.2}s)",
                report.objects,
                report.already_present,
                report.images.join(", "),
                started.elapsed().as_secs_f64()
            ));
        }
    }
    Ok(())
}

fn roots(cli: &Cli, out_dir: &PathBuf, extra: &[PathBuf]) -> Result<Roots, CliError> {
    let mut roots = Roots::default();
    for l in all_locks(cli)? {
        roots.add_lock(&l);
    }
    let mut files: Vec<PathBuf> = extra.to_vec();
    if let Ok(entries) = std::fs::read_dir(cli.store.join(Area::GcRoots.dir_name())) {
        files.extend(entries.flatten().map(|e| e.path()));
    }
    for f in &files {
        roots.add_lock(&read_lock_file(f)?);
    }
    if let Ok(entries) = std::fs::read_dir(out_dir) {
        for e in entries.flatten() {
            if e.path().join("index.json").exists() {
                roots.add_layout(&e.path());
            }
        }
    }
    Ok(roots)
}

pub fn gc(cli: &Cli, args: &GcArgs, out: &Output) -> Result<(), CliError> {
    let store = cli.open_store()?;
    let roots = roots(cli, &args.out, &args.roots)?;
    if store.lock_exclusive_nowait().is_err() {
        out.info("waiting for other carbon-store processes using the store to finish…");
    }
    let report = gc::gc(&store, &roots, args.dry_run)?;
    if args.json.json {
        super::print_json(&GcSummary {
            dry_run: args.dry_run,
            removed: report
                .removed
                .iter()
                .map(|(path, bytes)| RemovedFile {
                    path,
                    bytes: *bytes,
                })
                .collect(),
            freed_bytes: report.bytes(),
            kept: report.kept,
        })?;
    } else if args.dry_run {
        for (p, size) in &report.removed {
            println!("{} ({size} bytes)", p.display());
        }
    }
    if args.dry_run {
        out.info(format!(
            "would remove {} files, freeing {}; keeping {}",
            report.removed.len(),
            human(report.bytes()),
            report.kept
        ));
    } else {
        out.info(format!(
            "removed {} files, freed {} ({} bytes); kept {}",
            report.removed.len(),
            human(report.bytes()),
            report.bytes(),
            report.kept
        ));
    }
    Ok(())
}

pub fn verify(cli: &Cli, args: &VerifyArgs, out: &Output) -> Result<(), CliError> {
    let store = cli.open_store()?;
    let scope = verify_scope(cli, args)?;
    let mut roots = Roots::default();
    for l in &scope {
        roots.add_lock(l);
    }
    let started = Instant::now();
    let (checked, problems) = gc::verify(&store, &roots)?;
    let mut summary = VerifySummary {
        checked,
        images: scope.iter().map(|l| l.image.clone()).collect(),
        found: Problems::of(&problems),
        repair: None,
    };
    if !args.json.json {
        print_problems(&summary.found, out.verbose > 0);
    }
    out.info(format!(
        "checked {checked} objects in {:.2}s{}: {} problem(s)",
        started.elapsed().as_secs_f64(),
        match scope.len() {
            0 => String::new(),
            _ => format!(
                ", and the packages of {}",
                scope
                    .iter()
                    .map(|l| l.image.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        problems.len()
    ));
    // With `--repair` the document waits for what the repair leaves.
    if args.json.json && (problems.is_empty() || !args.repair) {
        super::print_json(&summary)?;
    }
    if problems.is_empty() {
        return Ok(());
    }
    if !args.repair {
        let images = scope
            .iter()
            .map(|l| format!(" {}", l.image))
            .collect::<String>();
        return Err(
            CliError::new(format!("{} problem(s) in the store", problems.len())).hint(format!(
                "run `carbon-store verify --repair{images}` to remove corrupt objects and fetch again what was corrupt or missing"
            )),
        );
    }
    repair(cli, out, &store, &problems)?;
    let (_, left) = gc::verify(&store, &roots)?;
    if args.json.json {
        summary.repair = Some(Problems::of(&left));
        super::print_json(&summary)?;
    }
    if left.is_empty() {
        out.info("repaired: every object verifies, every locked package checked is present");
        Ok(())
    } else {
        if !args.json.json {
            print_problems(&Problems::of(&left), out.verbose > 0);
        }
        Err(
            CliError::new(format!("{} problem(s) remain after repair", left.len()))
                .code(exit::FAILURE),
        )
    }
}

/// The locks whose packages `verify` requires: the named images', every one with `--all`,
/// none by default (a store that holds one image is not missing the others).
fn verify_scope(cli: &Cli, args: &VerifyArgs) -> Result<Vec<Lockfile>, CliError> {
    if args.all {
        return all_locks(cli);
    }
    args.images
        .iter()
        .map(|image| Ok(lock::read(&cli.lockfiles, image)?))
        .collect()
}

/// Each kind of problem: up to five of it, then how many more (all of them with `-v`).
fn print_problems(problems: &Problems, verbose: bool) {
    const SHOWN: usize = 5;
    let corrupt: Vec<String> = problems
        .corrupt
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    for (kind, list) in [("corrupt", &corrupt), ("missing", &problems.missing)] {
        let shown = if verbose { list.len() } else { SHOWN };
        for item in list.iter().take(shown) {
            println!("{kind}: {item}");
        }
        if list.len() > shown {
            println!("{kind}: … and {} more (-v lists all)", list.len() - shown);
        }
    }
}

/// Removes the corrupt objects, then fetches (and builds from source) again what any lock
/// pins among the corrupt and missing — nothing else.
fn repair(cli: &Cli, out: &Output, store: &Store, problems: &[Problem]) -> Result<(), CliError> {
    let mut broken = std::collections::BTreeSet::new();
    {
        let _exclusive = store.lock_exclusive()?;
        for p in problems {
            match p {
                Problem::Corrupt(path) => {
                    std::fs::remove_file(path)
                        .map_err(|e| CliError::new(format!("removing {}: {e}", path.display())))?;
                    if let Some(name) = path.file_name() {
                        broken.insert(name.to_string_lossy().into_owned());
                    }
                }
                Problem::Missing(name) => {
                    broken.insert(name.clone());
                }
            }
        }
    }
    let locks = all_locks(cli)?;
    let mut wanted = Vec::new();
    for l in &locks {
        for w in fetch_lock::wanted(l)? {
            if broken.contains(&fixed_output_name_of(&w.digest, &w.name)) && !wanted.contains(&w) {
                wanted.push(w);
            }
        }
    }
    // The locks that pin a broken file, a wheel built here included (fetched as its
    // sources, then built again).
    let touched = locks.iter().filter(|l| {
        l.archs
            .values()
            .flat_map(|a| a.files())
            .any(|f| broken.contains(&fixed_output_name_of(&f.digest, f.name)))
    });
    let _guard = store.lock_shared()?;
    super::fetch::download(cli, out, store, &wanted, None)?;
    for l in touched {
        super::fetch::build_sources(out, store, l)?;
    }
    Ok(())
}
