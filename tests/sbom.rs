//! SBOMs and provenance attached to realized images, read as a compliance pipeline reads
//! them (`carbon-store sbom`) and checked against the lock: every package with its purl,
//! its file's hash, its source package, its declared license and its dependencies; the
//! same lock gives the same bytes.

mod common;

use common::Sandbox;
use common::deb::{DebSpec, Entry};
use serde_json::Value;
use std::collections::BTreeMap;

/// A machine-readable copyright file with a choice of licenses and a name SPDX lacks.
const COPYRIGHT: &str = "Format: https://example.invalid/copyright-format/1.0/
Upstream-Name: demo

Files: *
Copyright: 2026 Someone
License: GPL-2+ or Artistic

Files: debian/*
Copyright: 2026 Packager
License: public-domain
";

/// The standard archive plus `libdemo1` (with the copyright file) and `libdemo-dev`
/// (whose documentation directory links to libdemo1's), both from the source `demo`.
fn sandbox() -> Sandbox {
    let sb = Sandbox::build(|main, _| {
        main.add(
            &["amd64", "arm64"],
            DebSpec::new("libdemo1", "1.0-1", "all")
                .field("Source", "demo")
                .field("Depends", "libc6")
                .file(
                    "./usr/share/doc/libdemo1/copyright",
                    COPYRIGHT.as_bytes(),
                    0o644,
                ),
        );
        let mut dev = DebSpec::new("libdemo-dev", "1.0-1", "all")
            .field("Source", "demo")
            .field("Depends", "libdemo1 (= 1.0-1)");
        dev.entries
            .retain(|e| !matches!(e, Entry::Dir { path, .. } if path.contains("/doc/")));
        dev = dev.entry(Entry::Symlink {
            path: "./usr/share/doc/libdemo-dev".into(),
            target: "libdemo1".into(),
        });
        main.add(&["amd64", "arm64"], dev);
    });
    let component = common::HELLO_COMPONENT.replace("[\"hello\"]", "[\"hello\", \"libdemo-dev\"]");
    sb.write("recipes/components/hello.toml", &component);
    sb
}

/// The lock's Debian lines of `arch`: name → (version, sha256).
fn locked(sb: &Sandbox, arch: &str) -> BTreeMap<String, (String, String)> {
    let lock: toml::Value = toml::from_str(&sb.read("lockfiles/test.lock")).unwrap();
    lock[arch]["debian"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                (
                    p["version"].as_str().unwrap().to_string(),
                    p["sha256"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// Each arch's manifest digest, from the layout's index.
fn manifests(sb: &Sandbox) -> BTreeMap<String, String> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(sb.path("oci-out/test/index.json")).unwrap())
            .unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            Some((
                m["platform"]["architecture"].as_str()?.to_string(),
                m["digest"].as_str()?.to_string(),
            ))
        })
        .collect()
}

fn document(sb: &Sandbox, args: &[&str]) -> Value {
    let mut all = vec!["sbom", "test"];
    all.extend(args);
    serde_json::from_str(&sb.ok(&all)).unwrap()
}

#[test]
fn the_spdx_sbom_names_every_locked_package_with_hash_license_source_and_dependencies() {
    let sb = sandbox();
    sb.ok(&["realize", "test"]);
    let manifest = &manifests(&sb)["amd64"];
    let doc = document(&sb, &["--arch", "amd64"]);
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let packages: BTreeMap<String, &Value> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["SPDXID"].as_str().unwrap().to_string(), p))
        .collect();
    // The image is the described package, by its manifest digest.
    let image = packages["SPDXRef-image"];
    assert_eq!(image["versionInfo"], manifest.as_str());
    assert_eq!(
        image["checksums"][0]["checksumValue"],
        manifest.trim_start_matches("sha256:")
    );
    // Every locked package, once, with the lock's version and the .deb's sha256.
    let lock = locked(&sb, "amd64");
    let by_name: BTreeMap<&str, &Value> = packages
        .values()
        .filter(|p| p["SPDXID"] != "SPDXRef-image")
        .map(|p| (p["name"].as_str().unwrap(), *p))
        .collect();
    assert_eq!(by_name.len(), lock.len(), "{:?}", by_name.keys());
    assert_eq!(packages.len(), lock.len() + 1);
    for (name, (version, sha256)) in &lock {
        let p = by_name[name.as_str()];
        assert_eq!(p["versionInfo"], version.as_str());
        assert_eq!(p["checksums"][0]["algorithm"], "SHA256");
        assert_eq!(p["checksums"][0]["checksumValue"], sha256.as_str());
        let purl = p["externalRefs"][0]["referenceLocator"].as_str().unwrap();
        assert!(
            purl.starts_with(&format!(
                "pkg:deb/debian/{name}@{}?arch=",
                version.replace('+', "%2B")
            )),
            "{purl}"
        );
        assert!(purl.ends_with("&distro=debian-testing"), "{purl}");
    }
    // Licenses from the machine-readable copyright file, also for the package whose
    // documentation links to it; none where the package has no such file.
    let expected = "(GPL-2.0-or-later OR Artistic-1.0) AND LicenseRef-public-domain";
    assert_eq!(by_name["libdemo1"]["licenseDeclared"], expected);
    assert_eq!(by_name["libdemo-dev"]["licenseDeclared"], expected);
    assert_eq!(by_name["hello"]["licenseDeclared"], "NOASSERTION");
    let extracted = doc["hasExtractedLicensingInfos"].as_array().unwrap();
    assert_eq!(extracted.len(), 1);
    assert_eq!(extracted[0]["licenseId"], "LicenseRef-public-domain");
    assert_eq!(
        by_name["libdemo-dev"]["sourceInfo"],
        "built from the Debian source package demo 1.0-1"
    );
    // Relationships: the document describes the image, which contains every package;
    // dependencies as the control data name them, alternatives as installed.
    let id = |name: &str| by_name[name]["SPDXID"].as_str().unwrap().to_string();
    let relations: Vec<(String, String, String)> = doc["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["spdxElementId"].as_str().unwrap().to_string(),
                r["relationshipType"].as_str().unwrap().to_string(),
                r["relatedSpdxElement"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |a: &str, kind: &str, b: &str| relations.contains(&(a.into(), kind.into(), b.into()));
    assert!(has("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-image"));
    for name in lock.keys() {
        assert!(has("SPDXRef-image", "CONTAINS", &id(name)), "{name}");
    }
    assert!(has(&id("hello"), "DEPENDS_ON", &id("libc6")));
    assert!(has(&id("hello"), "DEPENDS_ON", &id("hello-data")));
    assert!(has(&id("libdemo-dev"), "DEPENDS_ON", &id("libdemo1")));
    assert!(!has(&id("libdemo1"), "DEPENDS_ON", &id("hello")));
    // No clock: the document's time is the lock's.
    let lock_text = sb.read("lockfiles/test.lock");
    let sde: u64 = lock_text
        .lines()
        .find_map(|l| l.strip_prefix("source-date-epoch = "))
        .unwrap()
        .parse()
        .unwrap();
    let created = doc["creationInfo"]["created"].as_str().unwrap();
    let date = Command::new("date")
        .args(["-u", "-d", &format!("@{sde}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    assert_eq!(created, String::from_utf8_lossy(&date.stdout).trim());
}

use std::process::Command;

#[test]
fn cyclonedx_and_provenance_describe_the_same_image_and_the_lock_it_came_from() {
    let sb = sandbox();
    sb.ok(&["realize", "test", "--arch", "arm64"]);
    let manifest = &manifests(&sb)["arm64"];
    let lock = locked(&sb, "arm64");
    let bom = document(&sb, &["--format", "cyclonedx"]);
    assert_eq!(bom["specVersion"], "1.6");
    assert_eq!(bom["metadata"]["component"]["version"], manifest.as_str());
    assert_eq!(bom["metadata"]["component"]["type"], "container");
    let serial = bom["serialNumber"].as_str().unwrap();
    assert!(
        serial.starts_with("urn:uuid:") && serial.len() == 45,
        "{serial}"
    );
    let components = bom["components"].as_array().unwrap();
    assert_eq!(components.len(), lock.len());
    let demo = components.iter().find(|c| c["name"] == "libdemo1").unwrap();
    assert_eq!(demo["hashes"][0]["content"], lock["libdemo1"].1.as_str());
    assert_eq!(
        demo["licenses"][0]["expression"],
        "(GPL-2.0-or-later OR Artistic-1.0) AND LicenseRef-public-domain"
    );
    let deps = bom["dependencies"].as_array().unwrap();
    let of = |name: &str| {
        components.iter().find(|c| c["name"] == name).unwrap()["bom-ref"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let dev = deps
        .iter()
        .find(|d| d["ref"] == of("libdemo-dev").as_str())
        .unwrap();
    assert_eq!(dev["dependsOn"], serde_json::json!([of("libdemo1")]));

    // The provenance: the manifest as subject, the lockfile by its sha256, every package.
    let statement = document(&sb, &["--format", "provenance"]);
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        manifest.trim_start_matches("sha256:")
    );
    let definition = &statement["predicate"]["buildDefinition"];
    let lockfile = std::fs::read(sb.path("lockfiles/test.lock")).unwrap();
    assert_eq!(
        definition["externalParameters"]["lockfile"],
        format!("sha256:{}", common::sha256_hex(&lockfile))
    );
    assert_eq!(definition["externalParameters"]["arch"], "arm64");
    assert_eq!(
        definition["resolvedDependencies"].as_array().unwrap().len(),
        lock.len()
    );
    let text = statement.to_string();
    assert!(
        !text.contains(sb.dir.path().to_str().unwrap()),
        "no host path in the provenance"
    );

    // Attached in the layout as OCI 1.1 referrers of the arch's manifest.
    let index: Value =
        serde_json::from_slice(&std::fs::read(sb.path("oci-out/test/index.json")).unwrap())
            .unwrap();
    let types: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["artifactType"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "application/spdx+json",
            "application/vnd.cyclonedx+json",
            "application/vnd.in-toto+json"
        ]
    );
}

#[test]
fn the_same_lock_gives_the_same_documents_and_a_missing_one_says_what_to_do() {
    let sb = sandbox();
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    let formats = ["spdx", "cyclonedx", "provenance"];
    let first: Vec<String> = formats
        .iter()
        .map(|f| sb.ok(&["sbom", "test", "--format", f]))
        .collect();
    // Again from nothing: another store, one thread, another time zone.
    std::fs::remove_dir_all(sb.path("oci-out")).unwrap();
    let again = sb
        .cmd(&[
            "--store", "store-2", "-j", "1", "realize", "test", "--arch", "amd64",
        ])
        .env("TZ", "Asia/Kolkata")
        .output()
        .unwrap();
    assert!(again.status.success(), "{again:?}");
    for (f, before) in formats.iter().zip(&first) {
        assert_eq!(&sb.ok(&["sbom", "test", "--format", f]), before, "{f}");
    }
    let err = sb.fails(&["sbom", "test", "--arch", "arm64"], 1);
    assert!(
        err.contains("has no image for arm64 (it has: amd64)"),
        "{err}"
    );
    let err = sb.fails(&["sbom", "other"], 1);
    assert!(err.contains("hint: realize the image first"), "{err}");
}
