//! The apt sources realize writes into images (`/etc/apt/sources.list.d/debian.sources`),
//! as a user extending an image meets them: the mirror configuration names them, they sit
//! alone in the top layer (so images for other mirrors share every other layer), the same
//! configuration gives the same digest, a credential or a local tree never goes in, and
//! `verify-image` rebuilds an image with the sources it was built with.

mod common;

use common::Sandbox;
use std::io::Read;
use std::path::Path;

const MIRROR: &str = "http://images.invalid/debian";
const SECURITY: &str = "https://images.invalid/debian-security";

/// `realize test --arch amd64` into `out` with the image mirrors set as given (`None`:
/// unset, so the build's own mirror applies).
fn realize(sb: &Sandbox, out: &str, debian: Option<&str>, security: Option<&str>) -> String {
    let mut cmd = sb.cmd(&["realize", "test", "--arch", "amd64", "--out", out]);
    for (var, value) in [
        ("CARBON_MIRROR_IMAGE_DEBIAN", debian),
        ("CARBON_MIRROR_IMAGE_DEBIAN_SECURITY", security),
    ] {
        match value {
            Some(v) => cmd.env(var, v),
            None => cmd.env_remove(var),
        };
    }
    let got = cmd.output().unwrap();
    let said = String::from_utf8_lossy(&got.stderr).into_owned();
    assert!(got.status.success(), "realize failed:\n{said}");
    said
}

/// The paths and file contents of a gzip layer blob.
fn entries(blob: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(blob).unwrap();
    let mut layer = tar::Archive::new(flate2::read::MultiGzDecoder::new(bytes.as_slice()));
    layer
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, data)
        })
        .collect()
}

/// The image's `debian.sources`, asserting it is the only file of the top layer.
fn sources(sb: &Sandbox, out: &str) -> String {
    let blobs = common::layer_blobs(&sb.path(&format!("{out}/test")), "amd64");
    let top = entries(blobs.last().unwrap());
    let paths: Vec<&str> = top.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "etc/",
            "etc/apt/",
            "etc/apt/sources.list.d/",
            "etc/apt/sources.list.d/debian.sources"
        ],
        "the top layer holds the sources and their directories only"
    );
    String::from_utf8(top.last().unwrap().1.clone()).unwrap()
}

#[test]
fn the_image_gets_apt_sources_from_configuration_in_its_own_top_layer() {
    let sb = Sandbox::new();
    realize(&sb, "none", Some("none"), Some("none"));
    let said = realize(&sb, "named", Some(MIRROR), Some(SECURITY));
    assert!(said.contains("amd64: apt sources"), "{said}");
    let text = sources(&sb, "named");
    // The suites and components the lock read, at the configured mirrors.
    assert!(
        text.contains(&format!(
            "Types: deb\nURIs: {MIRROR}\nSuites: testing\nComponents: main\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "URIs: {SECURITY}\nSuites: testing-security\nComponents: main\n"
        )),
        "{text}"
    );

    // Every other layer is the one the image without sources has.
    let without = common::layer_blobs(&sb.path("none/test"), "amd64");
    let with = common::layer_blobs(&sb.path("named/test"), "amd64");
    assert_eq!(with.len(), without.len() + 1);
    let names = |blobs: &[std::path::PathBuf]| -> Vec<String> {
        blobs
            .iter()
            .map(|b| b.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&with[..without.len()]), names(&without));

    // Another mirror changes the top layer only; the same configuration, the same image.
    realize(
        &sb,
        "other",
        Some("https://elsewhere.invalid/debian"),
        Some(SECURITY),
    );
    let other = common::layer_blobs(&sb.path("other/test"), "amd64");
    assert_eq!(names(&other[..without.len()]), names(&without));
    assert_ne!(names(&other), names(&with));
    assert!(sources(&sb, "other").contains("URIs: https://elsewhere.invalid/debian\n"));
    realize(&sb, "again", Some(MIRROR), Some(SECURITY));
    assert_eq!(
        std::fs::read(sb.path("again/test/index.json")).unwrap(),
        std::fs::read(sb.path("named/test/index.json")).unwrap()
    );
}

#[test]
fn by_default_the_image_reads_the_mirror_the_build_used() {
    let sb = Sandbox::new();
    realize(&sb, "default", None, Some("none"));
    let text = sources(&sb, "default");
    // The sandbox's build mirror is its test server.
    assert!(text.contains("URIs: http://127.0.0.1:"), "{text}");
    assert!(text.contains("/debian\nSuites: testing\n"), "{text}");
    assert!(
        !text.contains("testing-security"),
        "`none` left security out:\n{text}"
    );
}

#[test]
fn a_mirror_with_credentials_or_a_local_tree_never_goes_into_an_image() {
    let sb = Sandbox::new();
    // Named for images: refused before any work, without printing the password.
    for bad in [
        "http://ci:s3cret@images.invalid/debian",
        "file:///srv/debian",
    ] {
        let got = sb
            .cmd(&["realize", "test", "--arch", "amd64"])
            .env("CARBON_MIRROR_IMAGE_DEBIAN", bad)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&got.stderr);
        assert_eq!(got.status.code(), Some(2), "{said}");
        assert!(
            said.contains("`image-debian`") && said.contains("cannot go into an image"),
            "{said}"
        );
        assert!(said.contains("hint:"), "{said}");
        assert!(
            !said.contains("s3cret"),
            "the password was printed:\n{said}"
        );
        assert!(!sb.path("oci-out/test").exists());
    }
    // A build mirror with credentials serves the build (here from the store, offline)
    // but is left out of the image, and realize says so.
    realize(&sb, "first", Some("none"), Some("none"));
    let got = sb
        .cmd(&[
            "--offline",
            "realize",
            "test",
            "--arch",
            "amd64",
            "--out",
            "offline",
        ])
        .env_remove("CARBON_MIRROR_IMAGE_DEBIAN")
        .env(
            "CARBON_MIRROR_DEBIAN",
            "http://ci:s3cret@127.0.0.1:9/debian",
        )
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&got.stderr);
    assert!(got.status.success(), "{said}");
    assert!(
        said.contains("note: images get no apt sources for `debian`"),
        "{said}"
    );
    assert!(!said.contains("s3cret"), "{said}");
    assert_eq!(
        common::layer_blobs(&sb.path("offline/test"), "amd64"),
        common::layer_blobs(&sb.path("first/test"), "amd64")
            .iter()
            .map(|b| sb
                .path("offline/test")
                .join(b.strip_prefix(sb.path("first/test")).unwrap()))
            .collect::<Vec<_>>(),
        "no sources layer"
    );
}

#[test]
fn verify_image_rebuilds_with_the_sources_the_image_was_built_with() {
    let sb = Sandbox::new();
    realize(&sb, "oci-out", Some(MIRROR), Some(SECURITY));
    let provenance = sb.ok(&[
        "sbom",
        "oci-out/test",
        "--arch",
        "amd64",
        "--format",
        "provenance",
    ]);
    assert!(
        provenance.contains(MIRROR),
        "the provenance records the image's mirror"
    );
    // This machine's configuration says otherwise; the image's own record wins.
    let said = sb.ok(&["verify-image", "oci-out/test"]);
    assert!(said.contains("identical: test amd64"), "{said}");
}
