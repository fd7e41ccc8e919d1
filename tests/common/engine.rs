//! The real engines of the end-to-end tests: `carbon-store realize` on the repository's
//! recipes and locks against the live store, and the dockerd that scripts/engines-up
//! started (DOCKER_HOST).

use super::{live_store, repo};
use std::path::Path;
use std::process::Command;

/// Runs `cmd`; fails the test with its output unless it succeeds. Returns stdout and stderr.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// `carbon-store realize IMAGE --out DIR` on the repository's recipes and locks.
pub fn realize(image: &str, out_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_carbon-store"));
    c.current_dir(repo())
        .arg("--store")
        .arg(live_store())
        .args(["realize", image, "--out"])
        .arg(out_dir);
    c
}

/// An image loaded into the test dockerd under its tags, removed from it again when
/// dropped (also when the test fails): the engines share one data root, and CI's disk
/// holds only so many images.
pub struct Loaded(Vec<String>);

impl Drop for Loaded {
    fn drop(&mut self) {
        let host = std::env::var("DOCKER_HOST").unwrap_or_default();
        let _ = Command::new("/usr/bin/docker")
            .args(["-H", &host, "rmi", "--force"])
            .args(&self.0)
            .output();
    }
}

/// `docker load` of the docker archive realize wrote into `out` for `image` and `arch`,
/// as `carbon/IMAGE:latest` and `carbon/IMAGE:latest-ARCH`. Whatever the engine held of
/// `image` before, either arch, is removed first, and the archive is deleted once loaded:
/// python-ml is some 6 GB per arch unpacked (2 GB of archive), and a second copy of it
/// (the other arch kept under its arch tag, or an archive nothing reads again) is what
/// ran CI's disk full.
pub fn load(out: &Path, image: &str, arch: &str) -> Loaded {
    drop(Loaded(
        ["latest", "latest-amd64", "latest-arm64"]
            .iter()
            .map(|tag| format!("carbon/{image}:{tag}"))
            .collect(),
    ));
    let archive = out.join(format!("{image}-{arch}.tar"));
    docker(&["load", "-i", archive.to_str().unwrap()]);
    std::fs::remove_file(&archive).unwrap();
    Loaded(vec![
        format!("carbon/{image}:latest"),
        format!("carbon/{image}:latest-{arch}"),
    ])
}

/// Fails naming the first of `expected` that `got` lacks.
pub fn assert_contains_all(got: &str, expected: &[&str]) {
    for e in expected {
        assert!(got.contains(e), "missing {e:?} in:\n{got}");
    }
}

/// `docker ARGS` against the test dockerd (DOCKER_HOST); fails the test unless it succeeds.
pub fn docker(args: &[&str]) -> String {
    let host = std::env::var("DOCKER_HOST").expect("DOCKER_HOST is set by scripts/engines-up");
    run(Command::new("/usr/bin/docker")
        .arg("-H")
        .arg(host)
        .args(args))
}

/// Each arch's SPDX and CycloneDX documents of `image` in `out`, as `carbon-store sbom`
/// prints them, pass their formats' own validators (scripts/validate-sbom) and name as
/// many packages as the lock pins for the arch.
pub fn assert_valid_sboms(out: &Path, image: &str, archs: &[&str]) {
    let lock: toml::Value = toml::from_str(
        &std::fs::read_to_string(repo().join(format!("lockfiles/{image}.lock"))).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for arch in archs {
        let pinned: usize = ["debian", "python", "npm"]
            .iter()
            .map(|k| {
                lock[arch]
                    .get(k)
                    .and_then(|v| v.as_array())
                    .map_or(0, Vec::len)
            })
            .sum();
        for format in ["spdx", "cyclonedx"] {
            let text = run(Command::new(env!("CARGO_BIN_EXE_carbon-store"))
                .args(["sbom", image, "--arch", arch, "--format", format, "--out"])
                .arg(out));
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            let listed = match format {
                "spdx" => doc["packages"].as_array().unwrap().len() - 1, // the image itself
                _ => doc["components"].as_array().unwrap().len(),
            };
            assert_eq!(listed, pinned, "{image} {arch} {format}");
            let file = dir.path().join(format!("{image}-{arch}.{format}.json"));
            std::fs::write(&file, text).unwrap();
            files.push(file);
        }
    }
    let said = run(Command::new(repo().join("scripts/validate-sbom")).args(&files));
    assert_eq!(said.matches(": valid ").count(), files.len(), "{said}");
}
