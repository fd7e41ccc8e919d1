//! Live: the npm resolver against the configured registry (CARBON_MIRROR_NPM, or the host's
//! npm configuration), with npm itself as the oracle — as `apt-get -s` is for Debian. The
//! suite's npm set (every `[npm]` request of the `base` image) is resolved for both archs,
//! then the locked Node.js and npm run `npm install --package-lock-only` with the strategy
//! of a global install over the same requests; npm's lock, filtered for each arch as npm
//! filters it when installing, must hold exactly the packages we place, at the same paths
//! and versions. Ignored by plain `cargo test`.

use carbon_store::config::mirrors::MirrorSettings;
use carbon_store::fetch::Fetcher;
use carbon_store::lockfile::NpmArtifact;
use carbon_store::npm::{self, NpmPlan, registry::Registry};
use carbon_store::recipe::Recipes;
use carbon_store::store::{Expected, Store};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Brings a locked tarball into the store and unpacks its `package/` into `dir`.
fn unpack(fetcher: &Fetcher, store: &Store, urls: &[String], a: &NpmArtifact, dir: &Path) {
    let name = a.file_name();
    let path = fetcher
        .fetch_into_store(
            urls,
            &a.path,
            store,
            name,
            &Expected {
                digest: a.integrity.clone(),
                size: Some(a.size),
            },
            &|_| {},
        )
        .unwrap();
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap());
    tar::Archive::new(gz).unpack(dir).unwrap();
}

/// Whether `value` passes an `os`/`cpu`/`libc` list of a package-lock entry.
fn fits(entry: &Value, field: &str, value: &str) -> bool {
    let Some(list) = entry.get(field).and_then(Value::as_array) else {
        return true;
    };
    let list: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
    if list.contains(&format!("!{value}").as_str()) {
        return false;
    }
    let positive: Vec<&&str> = list.iter().filter(|e| !e.starts_with('!')).collect();
    positive.is_empty() || positive.iter().any(|e| **e == value)
}

/// What npm installs from its lock for one arch: everything reachable from the root
/// through edges whose package fits the platform (or is required) and is not omitted.
fn installed(lock: &Value, cpu: &str, omit: &BTreeSet<String>) -> BTreeSet<(String, String)> {
    let packages = lock["packages"].as_object().unwrap();
    let resolve = |from: &str, name: &str| -> Option<String> {
        let mut at = from.to_string();
        loop {
            let candidate = if at.is_empty() {
                format!("node_modules/{name}")
            } else {
                format!("{at}/node_modules/{name}")
            };
            if packages.contains_key(&candidate) {
                return Some(candidate);
            }
            if at.is_empty() {
                return None;
            }
            at = at
                .rsplit_once("/node_modules/")
                .map_or(String::new(), |(p, _)| p.to_string());
        }
    };
    let mut seen = BTreeSet::new();
    let mut stack = vec![String::new()];
    while let Some(at) = stack.pop() {
        let entry = &packages[&at];
        let optional: BTreeSet<&str> = entry["optionalDependencies"]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let peer_optional: BTreeSet<&str> = entry["peerDependenciesMeta"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(_, v)| v["optional"] == Value::Bool(true))
                    .map(|(k, _)| k.as_str())
                    .collect()
            })
            .unwrap_or_default();
        let mut names: BTreeSet<&str> = BTreeSet::new();
        for field in ["dependencies", "optionalDependencies", "peerDependencies"] {
            if let Some(m) = entry[field].as_object() {
                names.extend(m.keys().map(String::as_str));
            }
        }
        for name in names {
            if peer_optional.contains(name) || omit.contains(name) {
                continue;
            }
            let Some(to) = resolve(&at, name) else {
                continue;
            };
            let target = &packages[&to];
            if target["inBundle"] == Value::Bool(true) {
                continue;
            }
            let fit = fits(target, "os", "linux")
                && fits(target, "cpu", cpu)
                && fits(target, "libc", "glibc");
            if !fit {
                assert!(
                    optional.contains(name),
                    "{to} does not fit {cpu} and is required"
                );
                continue;
            }
            if seen.insert((to.clone(), target["version"].as_str().unwrap().to_string())) {
                stack.push(to);
            }
        }
    }
    seen
}

#[test]
#[ignore = "live: needs the npm registry; run by scripts/test"]
fn places_the_suites_npm_packages_as_npm_does_on_both_archs() {
    let store = Store::open(repo().join("target/live-store")).unwrap();
    let mirrors = MirrorSettings::from_host(&[]).unwrap();
    let urls = mirrors.mirror(npm::MIRROR).unwrap().urls;
    let fetcher = Fetcher::new(false);
    let registry = Registry::new(&fetcher, urls.clone());
    let recipes = Recipes::load(&repo().join("recipes")).unwrap();
    let plan = recipes.plan("base").unwrap();
    let npm_plan = NpmPlan::of(&plan.components).unwrap().unwrap();
    let mut ours: BTreeMap<&str, Vec<NpmArtifact>> = BTreeMap::new();
    for arch in ["amd64", "arm64"] {
        let started = std::time::Instant::now();
        let locked = npm::lock_arch(&registry, &npm_plan, arch, &npm::Earlier::default()).unwrap();
        println!(
            "{arch}: {} npm packages in {:.2}s",
            locked.len(),
            started.elapsed().as_secs_f64()
        );
        ours.insert(arch, locked);
    }

    // The oracle: the locked Node.js (this host's arch) running the locked npm.
    let work = tempfile::tempdir().unwrap();
    let host_arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    let runtime = ours[host_arch].iter().find(|a| a.at == ".").unwrap();
    let npm_cli = ours[host_arch]
        .iter()
        .find(|a| a.at == "node_modules/npm")
        .unwrap();
    unpack(&fetcher, &store, &urls, runtime, &work.path().join("node"));
    unpack(&fetcher, &store, &urls, npm_cli, &work.path().join("npm"));
    let project = work.path().join("project");
    std::fs::create_dir(&project).unwrap();
    let mut dependencies = serde_json::Map::new();
    for request in &npm_plan.requests {
        for spec in &request.packages {
            let s = npm::spec::parse_request(spec).unwrap();
            let version = spec.strip_prefix(&s.name).and_then(|v| v.strip_prefix('@'));
            dependencies.insert(s.name.clone(), Value::from(version.unwrap_or("latest")));
        }
    }
    let manifest =
        serde_json::json!({"name": "oracle", "version": "1.0.0", "dependencies": dependencies});
    std::fs::write(project.join("package.json"), manifest.to_string()).unwrap();
    let started = std::time::Instant::now();
    let status = std::process::Command::new(work.path().join("node/package/bin/node"))
        .arg(work.path().join("npm/package/bin/npm-cli.js"))
        .args([
            "install",
            "--package-lock-only",
            "--install-strategy=shallow",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--registry",
            &urls[0],
            "--cache",
        ])
        .arg(work.path().join("npm-cache"))
        .current_dir(&project)
        .status()
        .unwrap();
    assert!(status.success());
    println!(
        "npm install --package-lock-only: {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let lock: Value =
        serde_json::from_slice(&std::fs::read(project.join("package-lock.json")).unwrap()).unwrap();
    let omit = npm_plan.omitted();
    for (arch, locked) in &ours {
        let cpu = npm::cpu_of(arch).unwrap();
        let expected = installed(&lock, cpu, &omit);
        let got: BTreeSet<(String, String)> = locked
            .iter()
            .filter(|a| a.at != ".")
            .map(|a| (a.at.clone(), a.version.clone()))
            .collect();
        assert_eq!(
            got, expected,
            "{arch}: ours (left) and npm's (right) differ"
        );
        assert!(got.len() > 10, "{arch}: {got:?}");
    }
}
