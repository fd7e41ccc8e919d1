//! Time to resolve and pin the npm side of an image, both archs, as `lock` does it: the
//! same as npm's `install --package-lock-only`, which does only that part.
//!
//! Usage: `cargo bench --bench npm_lock -- IMAGE CACHE_DIR` (the recipes of this
//! repository; CACHE_DIR: where packuments and tarball sizes are kept between runs — empty
//! for a cold run). Prints the wall time and the number of packages pinned.

use carbon_store::config::mirrors::MirrorSettings;
use carbon_store::fetch::Fetcher;
use carbon_store::npm::{self, NpmPlan, registry::Registry};
use carbon_store::recipe::Recipes;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (Some(image), Some(cache)) = (args.first(), args.get(1)) else {
        eprintln!("usage: cargo bench --bench npm_lock -- IMAGE CACHE_DIR");
        std::process::exit(2);
    };
    let started = Instant::now();
    let recipes = Recipes::load(std::path::Path::new("recipes")).expect("recipes");
    let plan = recipes.plan(image).expect("image");
    let npm_plan = NpmPlan::of(&plan.components)
        .expect("npm plan")
        .expect("the image has [npm] packages");
    let mirrors = MirrorSettings::from_host(&[]).expect("mirrors");
    let fetcher = Fetcher::new(false);
    let registry = Registry::new(&fetcher, mirrors.mirror(npm::MIRROR).expect("npm").urls)
        .with_disk_cache(cache.into());
    let ready = started.elapsed().as_secs_f64();
    let mut pinned = 0;
    for arch in &plan.archs {
        pinned += npm::lock_arch(&registry, &npm_plan, arch, &npm::Earlier::default())
            .expect("lock")
            .len();
    }
    println!(
        "npm lock {image}: {pinned} packages over {} archs in {:.3} s ({ready:.3} s of it reading the recipes and finding the registry)",
        plan.archs.len(),
        started.elapsed().as_secs_f64()
    );
}
