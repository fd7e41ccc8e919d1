//! `carbon-store show IMAGE`: what an image is made of, from its recipes and its lock, and
//! the layers of its last realize (compressed and unpacked sizes).

use super::Cli;
use super::error::CliError;
use carbon_store::lock;
use carbon_store::lockfile::Origin;
use carbon_store::realize::Realized;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The image to describe
    image: String,
}

pub fn run(cli: &Cli, args: &ShowArgs) -> Result<(), CliError> {
    let mut out = String::new();
    describe(cli, args, &mut out)?;
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(())
}

/// The newest realize record of `image` in the store, if any.
fn last_realize(cli: &Cli, image: &str) -> Option<Realized> {
    let dir = cli.store.join("realized");
    let mut best: Option<(std::time::SystemTime, Realized)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(bytes) = std::fs::read(entry.path()) else {
            continue;
        };
        let Ok(record) = serde_json::from_slice::<Realized>(&bytes) else {
            continue;
        };
        let modified = entry.metadata().and_then(|m| m.modified()).ok()?;
        if record.image == image && best.as_ref().is_none_or(|(t, _)| modified > *t) {
            best = Some((modified, record));
        }
    }
    best.map(|(_, r)| r)
}

fn describe(cli: &Cli, args: &ShowArgs, out: &mut String) -> Result<(), CliError> {
    macro_rules! println {
        ($($arg:tt)*) => {{
            let _ = writeln!(out, $($arg)*);
        }};
    }
    let recipes = cli.load_recipes()?;
    let plan = recipes.plan(&args.image)?;
    println!("image:       {}", plan.name);
    if !plan.description.is_empty() {
        println!("description: {}", plan.description);
    }
    println!("archs:       {}", plan.archs.join(", "));
    let suites: Vec<&str> = plan.source.suite.iter().map(|s| s.suite.as_str()).collect();
    println!("debian:      {} ({})", plan.source.name, suites.join(", "));
    let lock = match lock::check(&recipes, &cli.lockfiles, &args.image) {
        Ok(lock) => Some(lock),
        Err(e) => {
            println!("lock:        {}", CliError::from(e).message);
            lock::read(&cli.lockfiles, &args.image).ok()
        }
    };
    println!("components:");
    for c in &plan.components {
        let mut counts = Vec::new();
        if let Some(lock) = &lock {
            for (arch, a) in &lock.archs {
                let debs: Vec<_> = a.debian.iter().filter(|d| d.component == c.name).collect();
                let wheels: Vec<_> = a.python.iter().filter(|w| w.component == c.name).collect();
                let npm: Vec<_> = a.npm.iter().filter(|p| p.component == c.name).collect();
                let bytes: u64 = debs.iter().map(|d| d.size).sum::<u64>()
                    + wheels.iter().map(|w| w.size).sum::<u64>()
                    + npm.iter().map(|p| p.size).sum::<u64>();
                counts.push(format!(
                    "{arch}: {} packages{}{}, {}",
                    debs.len(),
                    more(wheels.len(), "wheels"),
                    more(npm.len(), "npm packages"),
                    human(bytes)
                ));
            }
        }
        println!("  {:<20} {}", c.name, counts.join("; "));
    }
    if let Some(lock) = &lock {
        println!("source-date-epoch: {}", lock.source_date_epoch);
        let mut unique: BTreeMap<String, u64> = BTreeMap::new();
        for (arch, a) in &lock.archs {
            // A wheel built here is not downloaded: its sources are.
            let downloaded: Vec<_> = a
                .files()
                .filter(|f| f.origin != Origin::BuiltHere)
                .collect();
            let bytes: u64 = downloaded.iter().map(|f| f.size).sum();
            println!(
                "total {arch}: {} packages{}{}, {} to download",
                a.debian.len(),
                more(a.python.len(), "wheels"),
                more(a.npm.len(), "npm packages"),
                human(bytes)
            );
            for f in downloaded {
                unique.insert(f.digest.to_string(), f.size);
            }
        }
        println!("total distinct download: {}", human(unique.values().sum()));
    }
    match last_realize(cli, &plan.name) {
        None => println!("layers:      not realized in this store yet"),
        Some(record) => {
            for (arch, layers) in &record.layers {
                println!("layers {arch} (last realize; compressed / unpacked):");
                for l in layers {
                    println!(
                        "  {:>10} / {:>10}  {}",
                        human(l.size),
                        if l.tar_size > 0 {
                            human(l.tar_size)
                        } else {
                            "?".into()
                        },
                        l.comment
                    );
                }
                let size: u64 = layers.iter().map(|l| l.size).sum();
                let tar: u64 = layers.iter().map(|l| l.tar_size).sum();
                println!("  {:>10} / {:>10}  total", human(size), human(tar));
            }
        }
    }
    Ok(())
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.1} kB", b / 1e3)
    }
}

/// " + N what", or nothing for none: the counts after a component's Debian packages.
fn more(n: usize, what: &str) -> String {
    match n {
        0 => String::new(),
        n => format!(" + {n} {what}"),
    }
}
