//! Live tests against the configured Debian mirror (the host's apt sources, or
//! CARBON_MIRROR_DEBIAN / CARBON_MIRROR_DEBIAN_SECURITY). Ignored by plain `cargo test`;
//! `scripts/test` runs them with `--include-ignored`.
//!
//! The resolver is compared with apt itself: `apt-get -s install --no-install-recommends`
//! over the very Packages files the lock was made from, given every Debian request of an
//! image on one command line in layer order, must choose the same packages at the same
//! versions — for every image of the suite, amd64 and arm64.

mod common;

use common::{live_store, repo};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn carbon(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_carbon-store"))
        .current_dir(dir)
        .arg("--store")
        .arg(live_store())
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success()
        && (stderr.contains("error sending request")
            || stderr.contains("dns error")
            || stderr.contains("Connection refused"))
    {
        panic!(
            "the Debian mirror is unreachable, so the live tests cannot run.\nSet CARBON_MIRROR_DEBIAN / CARBON_MIRROR_DEBIAN_SECURITY or fix the network; `cargo test` alone runs the hermetic tests.\n{stderr}"
        );
    }
    assert!(
        out.status.success(),
        "carbon-store {args:?} failed:\n{stderr}"
    );
    stderr + &String::from_utf8_lossy(&out.stdout)
}

/// Every `name version` the lock pins for an arch.
fn locked(lock: &toml::Table, arch: &str) -> BTreeSet<String> {
    lock[arch]["debian"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap()
            )
        })
        .collect()
}

/// What apt chooses for the same requests over the lock's own Packages files.
/// An apt of its own over the Packages files a lock was made from: `apt-get update` runs
/// once per arch and set of files, then each image's requests are simulated over it.
struct AptRoot {
    root: tempfile::TempDir,
    arch: String,
    /// Essential or required packages, which apt is asked for besides an image's requests.
    essential: BTreeSet<String>,
}

/// The Packages files of a lock for one arch: `(suite, sha256)`, the key apt roots share.
fn indexes(lock: &toml::Table, arch: &str) -> Vec<(String, String)> {
    lock["index"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["arch"].as_str() == Some(arch))
        .map(|index| {
            let sha = index["packages"]["main"].as_str().unwrap();
            (
                index["suite"].as_str().unwrap().to_string(),
                sha.trim_start_matches("sha256:").to_string(),
            )
        })
        .collect()
}

impl AptRoot {
    fn new(arch: &str, indexes: &[(String, String)]) -> AptRoot {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for d in [
            "state/lists/partial",
            "cache/archives/partial",
            "etc/apt.conf.d",
            "etc/preferences.d",
            "etc/sources.list.d",
        ] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        fs::write(r.join("status"), "").unwrap();
        let mut sources = String::new();
        let mut essential = BTreeSet::new();
        for (suite, sha) in indexes {
            let name = format!("Packages_{suite}_main_{arch}");
            let stored =
                live_store().join(carbon_store::store::path::fixed_output_name(sha, &name));
            let text = fs::read_to_string(&stored).unwrap();
            for stanza in text.split("\n\n") {
                let field = |f: &str| {
                    stanza
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("{f}: ")))
                        .map(str::trim)
                };
                if field("Essential") == Some("yes") || field("Priority") == Some("required") {
                    essential.insert(field("Package").unwrap().to_string());
                }
            }
            let dir = r.join(format!("repo/dists/{suite}/main/binary-{arch}"));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("Packages"), text).unwrap();
            sources.push_str(&format!(
                "deb [trusted=yes arch={arch}] file:{}/repo {suite} main\n",
                r.display()
            ));
        }
        fs::write(r.join("etc/sources.list"), sources).unwrap();
        let d = r.display();
        fs::write(
            r.join("apt.conf"),
            format!("Dir \"{d}/\"; Dir::State \"{d}/state/\"; Dir::State::status \"{d}/status\"; Dir::Cache \"{d}/cache/\"; Dir::Etc \"{d}/etc/\";\nAPT::Architecture \"{arch}\"; APT::Architectures {{ \"{arch}\"; }}; Acquire::Languages \"none\";\n"),
        )
        .unwrap();
        let apt = AptRoot {
            root,
            arch: arch.to_string(),
            essential,
        };
        assert!(apt.apt_get(&["-q", "update"]).status.success());
        apt
    }

    fn apt_get(&self, args: &[&str]) -> std::process::Output {
        Command::new("apt-get")
            .env("APT_CONFIG", self.root.path().join("apt.conf"))
            .args(args)
            .output()
            .expect("apt-get runs (Debian hosts have it)")
    }

    /// `name version` of every package `apt-get -s install --no-install-recommends` picks
    /// for `requests` and the essential set.
    fn choice(&self, requests: &[&str]) -> BTreeSet<String> {
        let mut args = vec!["-s", "install", "--no-install-recommends"];
        args.extend(requests);
        args.extend(self.essential.iter().map(String::as_str));
        let out = self.apt_get(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "apt-get ({}) failed:\n{stdout}\n{}",
            self.arch,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .filter_map(|l| l.strip_prefix("Inst "))
            .map(|l| {
                let mut w = l.split_whitespace();
                let name = w.next().unwrap();
                format!("{name} {}", w.next().unwrap().trim_start_matches('('))
            })
            .collect()
    }
}

fn assert_same(image: &str, arch: &str, ours: &BTreeSet<String>, apt: &BTreeSet<String>) {
    let only_ours: Vec<_> = ours.difference(apt).collect();
    let only_apt: Vec<_> = apt.difference(ours).collect();
    assert!(
        only_ours.is_empty() && only_apt.is_empty(),
        "{image} {arch}: carbon-store and apt disagree\nonly carbon-store: {only_ours:?}\nonly apt: {only_apt:?}"
    );
    println!(
        "{image} {arch}: {} packages, identical to apt-get",
        ours.len()
    );
}

/// An image of the suite reduced to its Debian side: base-system (the essential set), then
/// one component asking for every other component's Debian packages in layer order. apt
/// sees one command line either way, so the chosen set is the image's own; locking it
/// needs no Python or npm index.
struct DebianSide {
    image: String,
    /// What apt is asked for, in order (the essential set is added by `apt_choice`).
    requests: Vec<String>,
}

fn debian_sides(recipes: &carbon_store::recipe::Recipes, work: &Path) -> Vec<DebianSide> {
    let mut sides = Vec::new();
    for name in recipes.image_names() {
        let plan = recipes.plan(&name).unwrap();
        assert_eq!(plan.components[0].name, "base-system", "{name}");
        let debian = |i: usize| {
            plan.components[i]
                .recipe
                .debian
                .clone()
                .unwrap_or_default()
                .packages
        };
        let base = debian(0);
        let rest: Vec<String> = (1..plan.components.len()).flat_map(debian).collect();
        let image = format!("live-{name}");
        let quoted: Vec<String> = rest.iter().map(|p| format!("{p:?}")).collect();
        fs::write(
            work.join(format!("recipes/components/{image}.toml")),
            format!(
                "[component]\nname = \"{image}\"\nafter = [\"base-system\"]\n[debian]\npackages = [{}]\n",
                quoted.join(", ")
            ),
        )
        .unwrap();
        fs::write(
            work.join(format!("recipes/images/{image}.toml")),
            format!(
                "[image]\nname = \"{image}\"\narchs = [\"amd64\", \"arm64\"]\ndebian-source = \"trixie\"\ncomponents = [\"base-system\", \"{image}\"]\n"
            ),
        )
        .unwrap();
        sides.push(DebianSide {
            image,
            requests: base.into_iter().chain(rest).collect(),
        });
    }
    sides
}

#[test]
#[ignore = "live: needs the Debian mirror; run by scripts/test"]
fn every_image_resolves_as_apt_does_then_minimal_fetches() {
    let work = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("recipes"), &work.path().join("recipes"));
    fs::create_dir_all(work.path().join("lockfiles")).unwrap();
    let recipes = carbon_store::recipe::Recipes::load(&repo().join("recipes")).unwrap();
    let sides = debian_sides(&recipes, work.path());
    assert!(sides.len() >= 8, "the suite has at least 8 images");
    let mut args = vec!["lock"];
    args.extend(sides.iter().map(|s| s.image.as_str()));
    carbon(work.path(), &args);
    // Images locked together read the same Packages files: one apt root serves them all.
    let mut apt_roots: std::collections::BTreeMap<(String, Vec<(String, String)>), AptRoot> =
        Default::default();
    for side in &sides {
        let lock: toml::Table = toml::from_str(
            &fs::read_to_string(work.path().join(format!("lockfiles/{}.lock", side.image)))
                .unwrap(),
        )
        .unwrap();
        let requests: Vec<&str> = side.requests.iter().map(String::as_str).collect();
        for arch in ["amd64", "arm64"] {
            let ours = locked(&lock, arch);
            assert!(
                ours.iter().any(|p| p.starts_with("usr-is-merged "))
                    && !ours.iter().any(|p| p.starts_with("usrmerge "))
            );
            let key = (arch.to_string(), indexes(&lock, arch));
            let apt = apt_roots
                .entry(key)
                .or_insert_with_key(|(arch, files)| AptRoot::new(arch, files));
            assert_same(&side.image, arch, &ours, &apt.choice(&requests));
        }
    }
    // A fresh minimal lock downloads and verifies.
    carbon(work.path(), &["lock", "minimal"]);
    let out = carbon(work.path(), &["fetch", "minimal"]);
    assert!(out.contains("artifacts:"), "{out}");
    carbon(work.path(), &["--offline", "fetch", "minimal"]);
}
