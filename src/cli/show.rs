//! `carbon-store show IMAGE`: what an image is made of, from its recipes and its lock.

use super::Cli;
use super::error::CliError;
use carbon_store::lock;
use std::collections::BTreeMap;

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The image to describe
    image: String,
}

pub fn run(cli: &Cli, args: &ShowArgs) -> Result<(), CliError> {
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
                let bytes: u64 = debs.iter().map(|d| d.size).sum();
                counts.push(format!("{arch}: {} packages, {}", debs.len(), human(bytes)));
            }
        }
        println!("  {:<20} {}", c.name, counts.join("; "));
    }
    if let Some(lock) = &lock {
        println!("source-date-epoch: {}", lock.source_date_epoch);
        let mut unique: BTreeMap<&str, u64> = BTreeMap::new();
        for (arch, a) in &lock.archs {
            let bytes: u64 = a.debian.iter().map(|d| d.size).sum();
            println!(
                "total {arch}: {} packages, {} to download",
                a.debian.len(),
                human(bytes)
            );
            for d in &a.debian {
                unique.insert(&d.sha256, d.size);
            }
        }
        println!("total distinct download: {}", human(unique.values().sum()));
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
