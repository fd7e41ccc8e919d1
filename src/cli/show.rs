//! `carbon-store show IMAGE`: what an image is made of, from its recipes and its lock, and
//! the layers of its last realize (compressed and unpacked sizes). One report value is
//! rendered either as text or, with `--json`, as a JSON document.

use super::error::CliError;
use super::{Cli, human};
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
    #[command(flatten)]
    json: super::JsonFlag,
}

/// What `show` knows of an image, printed as text or as `--json`.
#[derive(serde::Serialize)]
struct ImageReport {
    image: String,
    description: String,
    archs: Vec<String>,
    debian: DebianReport,
    /// `current`, or why the lock cannot be used as it is (the counts then come from it
    /// anyway where it can be read).
    lock: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_date_epoch: Option<u64>,
    components: Vec<ComponentReport>,
    /// Per arch: every package of the lock, and what is downloaded.
    totals: BTreeMap<String, Counts>,
    /// Bytes to download for all archs, each file counted once.
    #[serde(skip_serializing_if = "Option::is_none")]
    distinct_download_bytes: Option<u64>,
    /// The layers of the image's last realize in this store, per arch.
    #[serde(skip_serializing_if = "Option::is_none")]
    layers: Option<BTreeMap<String, Vec<carbon_store::oci::BuiltLayer>>>,
}

#[derive(serde::Serialize)]
struct DebianReport {
    source: String,
    suites: Vec<String>,
}

#[derive(serde::Serialize)]
struct ComponentReport {
    name: String,
    /// Per arch, what the lock gives this component.
    archs: BTreeMap<String, Counts>,
}

#[derive(serde::Serialize, Default)]
struct Counts {
    debian: usize,
    wheels: usize,
    npm: usize,
    /// For a component: the bytes of its files; for an arch total: the bytes downloaded
    /// (a wheel built here is not downloaded, its sources are).
    bytes: u64,
}

impl Counts {
    /// "907 packages + 302 wheels + 28 npm packages, 1.96 GB".
    fn described(&self) -> String {
        format!(
            "{} packages{}{}, {}",
            self.debian,
            more(self.wheels, "wheels"),
            more(self.npm, "npm packages"),
            human(self.bytes)
        )
    }
}

pub fn run(cli: &Cli, args: &ShowArgs) -> Result<(), CliError> {
    let report = report(cli, &args.image)?;
    if args.json.json {
        return super::print_json(&report);
    }
    let mut out = String::new();
    render(&report, &mut out);
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

fn report(cli: &Cli, image: &str) -> Result<ImageReport, CliError> {
    let recipes = cli.load_recipes()?;
    let plan = recipes.plan(image)?;
    let (lock, state) = match lock::check(&recipes, &cli.lockfiles, image) {
        Ok(lock) => (Some(lock), "current".to_string()),
        Err(e) => (
            lock::read(&cli.lockfiles, image).ok(),
            CliError::from(e).message,
        ),
    };
    let components = plan
        .components
        .iter()
        .map(|c| ComponentReport {
            name: c.name.clone(),
            archs: lock
                .iter()
                .flat_map(|l| &l.archs)
                .map(|(arch, a)| {
                    let debs: Vec<_> = a.debian.iter().filter(|d| d.component == c.name).collect();
                    let wheels: Vec<_> =
                        a.python.iter().filter(|w| w.component == c.name).collect();
                    let npm: Vec<_> = a.npm.iter().filter(|p| p.component == c.name).collect();
                    let bytes = debs.iter().map(|d| d.size).sum::<u64>()
                        + wheels.iter().map(|w| w.size).sum::<u64>()
                        + npm.iter().map(|p| p.size).sum::<u64>();
                    let counts = Counts {
                        debian: debs.len(),
                        wheels: wheels.len(),
                        npm: npm.len(),
                        bytes,
                    };
                    (arch.clone(), counts)
                })
                .collect(),
        })
        .collect();
    let mut totals = BTreeMap::new();
    let mut unique: BTreeMap<String, u64> = BTreeMap::new();
    for (arch, a) in lock.iter().flat_map(|l| &l.archs) {
        let downloaded: Vec<_> = a
            .files()
            .filter(|f| f.origin != Origin::BuiltHere)
            .collect();
        let counts = Counts {
            debian: a.debian.len(),
            wheels: a.python.len(),
            npm: a.npm.len(),
            bytes: downloaded.iter().map(|f| f.size).sum(),
        };
        totals.insert(arch.clone(), counts);
        for f in downloaded {
            unique.insert(f.digest.to_string(), f.size);
        }
    }
    Ok(ImageReport {
        image: plan.name.clone(),
        description: plan.description.clone(),
        archs: plan.archs.clone(),
        debian: DebianReport {
            source: plan.source.name.clone(),
            suites: plan.source.suite.iter().map(|s| s.suite.clone()).collect(),
        },
        lock: state,
        source_date_epoch: lock.as_ref().map(|l| l.source_date_epoch),
        components,
        totals,
        distinct_download_bytes: lock.as_ref().map(|_| unique.values().sum()),
        layers: last_realize(cli, &plan.name).map(|r| r.layers),
    })
}

fn render(r: &ImageReport, out: &mut String) {
    macro_rules! println {
        ($($arg:tt)*) => {{
            let _ = writeln!(out, $($arg)*);
        }};
    }
    println!("image:       {}", r.image);
    if !r.description.is_empty() {
        println!("description: {}", r.description);
    }
    println!("archs:       {}", r.archs.join(", "));
    println!(
        "debian:      {} ({})",
        r.debian.source,
        r.debian.suites.join(", ")
    );
    if r.lock != "current" {
        println!("lock:        {}", r.lock);
    }
    println!("components:");
    for c in &r.components {
        let counts: Vec<String> = c
            .archs
            .iter()
            .map(|(arch, n)| format!("{arch}: {}", n.described()))
            .collect();
        println!("  {:<20} {}", c.name, counts.join("; "));
    }
    if let Some(epoch) = r.source_date_epoch {
        println!("source-date-epoch: {epoch}");
    }
    for (arch, n) in &r.totals {
        println!("total {arch}: {} to download", n.described());
    }
    if let Some(bytes) = r.distinct_download_bytes {
        println!("total distinct download: {}", human(bytes));
    }
    match &r.layers {
        None => println!("layers:      not realized in this store yet"),
        Some(layers) => {
            for (arch, layers) in layers {
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
}

/// " + N what", or nothing for none: the counts after a component's Debian packages.
fn more(n: usize, what: &str) -> String {
    match n {
        0 => String::new(),
        n => format!(" + {n} {what}"),
    }
}
