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

/// A copy of the layout at `from` in which the file `path` of layer `layer` of the amd64
/// image holds `content`: the layer, config, manifest, index and referrers all rewritten
/// to match, as someone altering an image would.
fn altered_copy(
    from: &std::path::Path,
    to: &std::path::Path,
    layer: usize,
    path: &str,
    content: &[u8],
) {
    use std::io::Write as _;
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(ok.success());
    let blob = |d: &str| {
        to.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let put = |bytes: &[u8]| {
        let digest = format!("sha256:{}", common::sha256_hex(bytes));
        std::fs::write(blob(&digest), bytes).unwrap();
        (digest, bytes.len())
    };
    let read =
        |d: &str| -> Value { serde_json::from_slice(&std::fs::read(blob(d)).unwrap()).unwrap() };
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(to.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .position(|m| m["platform"]["architecture"] == "amd64")
        .unwrap();
    let old_manifest = index["manifests"][entry]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest = read(&old_manifest);
    // The layer's tar with one file's content replaced.
    let gz = std::fs::read(blob(manifest["layers"][layer]["digest"].as_str().unwrap())).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz.as_slice()));
    let mut builder = tar::Builder::new(Vec::new());
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let mut header = e.header().clone();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if name == path {
            data = content.to_vec();
            header.set_size(data.len() as u64);
            header.set_cksum();
        }
        builder.append(&header, data.as_slice()).unwrap();
    }
    let tar_bytes = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar_bytes).unwrap();
    let (layer_digest, layer_size) = put(&gz.finish().unwrap());
    manifest["layers"][layer]["digest"] = layer_digest.into();
    manifest["layers"][layer]["size"] = layer_size.into();
    let mut config = read(manifest["config"]["digest"].as_str().unwrap());
    config["rootfs"]["diff_ids"][layer] =
        format!("sha256:{}", common::sha256_hex(&tar_bytes)).into();
    let (config_digest, config_size) = put(&serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = config_digest.into();
    manifest["config"]["size"] = config_size.into();
    let (manifest_digest, manifest_size) = put(&serde_json::to_vec(&manifest).unwrap());
    index["manifests"][entry]["digest"] = manifest_digest.clone().into();
    index["manifests"][entry]["size"] = manifest_size.into();
    // The referrers now point at the altered manifest.
    for m in index["manifests"].as_array_mut().unwrap() {
        if m["artifactType"].is_string() {
            let mut referrer = read(m["digest"].as_str().unwrap());
            if referrer["subject"]["digest"] == old_manifest.as_str() {
                referrer["subject"]["digest"] = manifest_digest.clone().into();
                referrer["subject"]["size"] = manifest_size.into();
                let (d, s) = put(&serde_json::to_vec(&referrer).unwrap());
                m["digest"] = d.into();
                m["size"] = s.into();
            }
        }
    }
    std::fs::write(to.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn verify_image_rebuilds_in_a_clean_store_and_names_an_altered_layer_and_path() {
    let sb = sandbox();
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    let layers_before = std::fs::read_dir(sb.path("store/layers")).unwrap().count();
    let said = sb.ok(&["verify-image", "oci-out/test"]);
    let manifest = &manifests(&sb)["amd64"];
    assert!(
        said.contains(&format!("identical: test amd64 {manifest}")),
        "{said}"
    );
    assert!(
        said.contains("pinned files taken from store after re-hashing"),
        "{said}"
    );
    // The user's store gained nothing: the rebuild ran in its own.
    assert_eq!(
        std::fs::read_dir(sb.path("store/layers")).unwrap().count(),
        layers_before
    );

    // One file of the hello layer altered, everything around it made consistent.
    altered_copy(
        &sb.path("oci-out/test"),
        &sb.path("altered"),
        1,
        "usr/bin/hello",
        b"hello, altered",
    );
    let err = sb.fails(&["verify-image", "altered"], 1);
    assert!(err.contains("amd64: layer 2 (component hello"), "{err}");
    assert!(err.contains("first differing path: usr/bin/hello"), "{err}");

    // A lockfile other than the one the image was built from is refused before any work.
    let lock = sb.read("lockfiles/test.lock");
    sb.write(
        "lockfiles/test.lock",
        &lock.replace("# Generated", "# Edited. Generated"),
    );
    let err = sb.fails(&["verify-image", "oci-out/test"], 1);
    assert!(
        err.contains("the image was built from a lock with sha256"),
        "{err}"
    );
    assert!(
        err.contains("hint: check out the commit the image names"),
        "{err}"
    );
}
