//! dpkg triggers of the Carbon suite: every trigger interest that a package of the suite
//! declares must be handled or explained in docs/triggers.md. Live (it fetches the suite's
//! packages into the live store); ignored by plain `cargo test`, run by `scripts/test`.
//!
//! Package scripts never run in carbon-store, so neither do the triggers dpkg would fire
//! after them; the fixups must write what a trigger's tool would have written, or the doc
//! must say why the image does without it. A package update that declares a new interest
//! fails this test until the doc covers it.

mod common;

use carbon_store::lockfile::Lockfile;
use carbon_store::store::Store;
use common::{live_store, repo};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// One interest: who declares it, and what in the suite activates it.
#[derive(Default)]
struct Interest {
    declared_by: BTreeSet<String>,
    activated_by: BTreeSet<String>,
}

/// `interest*` and `activate*` lines of a package's control `triggers` file.
fn trigger_lines(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|line| {
        let mut words = line.split('#').next().unwrap_or("").split_whitespace();
        Some((words.next()?, words.next()?))
    })
}

#[test]
#[ignore = "live: fetches the suite's packages; run by scripts/test"]
fn every_trigger_interest_of_the_suite_is_handled_or_documented() {
    let images = ["base", "tools", "compute-macos"];
    let mut fetch = Command::new(env!("CARGO_BIN_EXE_carbon-store"));
    fetch
        .current_dir(repo())
        .arg("--store")
        .arg(live_store())
        .arg("fetch")
        .args(images);
    let out = fetch.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open(live_store()).unwrap();
    // Every distinct package of every image and arch.
    let mut artifacts = BTreeMap::new();
    for image in images {
        let text = std::fs::read_to_string(repo().join(format!("lockfiles/{image}.lock"))).unwrap();
        let lock = Lockfile::parse(&text).unwrap();
        for arch in lock.archs.into_values() {
            for artifact in arch.debian {
                artifacts.insert(artifact.sha256.clone(), artifact);
            }
        }
    }
    // Per package: its triggers file and the paths it ships.
    use rayon::prelude::*;
    let read: Vec<(String, String, Vec<String>)> = artifacts
        .par_iter()
        .map(|(_, artifact)| {
            let bytes = store
                .read_verified(&artifact.sha256, artifact.file_name())
                .unwrap();
            let deb = carbon_store::unpack::deb::read_deb(
                &bytes[..],
                &artifact.name,
                carbon_store::unpack::deb::Sink::Memory,
            )
            .unwrap();
            let triggers = deb
                .control
                .get("triggers")
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .unwrap_or_default();
            let paths = deb
                .entries
                .into_iter()
                .map(|e| format!("/{}", e.path))
                .collect();
            (artifact.name.clone(), triggers, paths)
        })
        .collect();
    let mut interests: BTreeMap<String, Interest> = BTreeMap::new();
    let mut shipped: Vec<(String, String)> = Vec::new();
    let mut activations: Vec<(String, String)> = Vec::new();
    for (package, triggers, paths) in read {
        for (kind, what) in trigger_lines(&triggers) {
            if kind.starts_with("interest") {
                interests
                    .entry(what.to_string())
                    .or_default()
                    .declared_by
                    .insert(package.clone());
            } else if kind.starts_with("activate") {
                activations.push((what.to_string(), package.clone()));
            }
        }
        shipped.extend(paths.into_iter().map(|p| (package.clone(), p)));
    }
    for (what, interest) in interests.iter_mut() {
        if what.starts_with('/') {
            let prefix = format!("{}/", what.trim_end_matches('/'));
            interest.activated_by.extend(
                shipped
                    .iter()
                    .filter(|(_, path)| path.starts_with(&prefix))
                    .map(|(p, _)| p.clone()),
            );
        } else {
            interest.activated_by.extend(
                activations
                    .iter()
                    .filter(|(name, _)| name == what)
                    .map(|(_, p)| p.clone()),
            );
        }
    }
    let doc = std::fs::read_to_string(repo().join("docs/triggers.md")).unwrap();
    let missing: Vec<String> = interests
        .iter()
        .filter(|(what, _)| !doc.contains(&format!("`{what}`")))
        .map(|(what, i)| {
            format!(
                "{what}: declared by {:?}, activated in the suite by {} package(s) {:?}",
                i.declared_by,
                i.activated_by.len(),
                i.activated_by.iter().take(5).collect::<Vec<_>>()
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/triggers.md does not cover these trigger interests:\n{}",
        missing.join("\n")
    );
    // The inventory is printed for whoever updates the doc.
    for (what, i) in &interests {
        println!(
            "{what}\tdeclared by {}\tactivated by {} package(s)",
            i.declared_by.iter().cloned().collect::<Vec<_>>().join(" "),
            i.activated_by.len()
        );
    }
}
