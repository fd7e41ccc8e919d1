//! Air-gapped builds: a bundle exported on a connected machine, imported where there is no
//! network, gives the same images; tampered and truncated bundles are refused whole.

mod common;

use common::Sandbox;
use common::engine::run;
use std::path::Path;
use std::process::Command;

/// A second working copy: the same recipes and lockfiles, an empty store, and mirrors that
/// point nowhere (as at a site with no network).
fn site(connected: &Sandbox) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["recipes", "lockfiles"] {
        let status = Command::new("cp")
            .arg("-r")
            .arg(connected.path(sub))
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
    dir
}

fn at_site(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_carbon-store"));
    c.current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("CARBON_CONFIG", dir.join("none.toml"))
        .env("CARBON_APT_DIR", dir.join("no-apt"))
        .env("CARBON_MIRROR_DEBIAN", "http://127.0.0.1:9/debian")
        .env(
            "CARBON_MIRROR_DEBIAN_SECURITY",
            "http://127.0.0.1:9/debian-security",
        );
    c
}

#[test]
fn a_bundle_builds_the_same_images_with_no_network_and_no_connection_attempt() {
    let sb = Sandbox::new();
    // Images read the apt sources configuration names, the same at both sites (the build
    // mirrors differ): the same configuration gives the same images.
    let image_mirror = "http://mirror.invalid/debian";
    let built = sb
        .cmd(&["realize", "test"])
        .env("CARBON_MIRROR_IMAGE_DEBIAN", image_mirror)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let connected = common::digests(&sb.path("oci-out"));
    let out = sb.ok(&["bundle", "export", "test", "-o", "test.bundle", "--zstd"]);
    assert!(
        out.contains("wrote test.bundle (") && out.contains("objects"),
        "{out}"
    );

    let site = site(&sb);
    std::fs::copy(sb.path("test.bundle"), site.path().join("test.bundle")).unwrap();
    // Inside a network namespace with only a loopback interface, every syscall that opens a
    // connection is recorded: there must be none to an IP address.
    let trace = site.path().join("trace");
    let bin = env!("CARGO_BIN_EXE_carbon-store");
    let script = format!(
        "strace -f -qq -e trace=connect -o {trace} {bin} bundle import test.bundle && strace -f -qq -e trace=connect -o {trace}.2 {bin} --offline realize test && {bin} --offline lock --check",
        trace = trace.display()
    );
    let o = Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .current_dir(site.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", site.path())
        .env("CARBON_CONFIG", site.path().join("none.toml"))
        .env("CARBON_APT_DIR", site.path().join("no-apt"))
        .env("CARBON_MIRROR_DEBIAN", "http://127.0.0.1:9/debian")
        .env("CARBON_MIRROR_IMAGE_DEBIAN", image_mirror)
        .env("CARBON_MIRROR_IMAGE_DEBIAN_SECURITY", "none")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "offline build in a network namespace failed:\n{text}"
    );
    for log in [trace.clone(), trace.with_extension("2")] {
        let calls =
            std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let ip: Vec<&str> = calls.lines().filter(|l| l.contains("AF_INET")).collect();
        assert!(ip.is_empty(), "connection attempts:\n{}", ip.join("\n"));
    }
    assert_eq!(
        common::digests(&site.path().join("oci-out")),
        connected,
        "the air-gapped build differs"
    );
}

#[test]
fn tampered_and_truncated_bundles_are_refused_and_leave_nothing() {
    let sb = Sandbox::new();
    sb.ok(&["lock", "test"]);
    sb.ok(&["fetch", "test"]);
    sb.ok(&["bundle", "export", "test", "-o", "test.bundle"]);
    let bundle = std::fs::read(sb.path("test.bundle")).unwrap();
    let site = site(&sb);
    // One byte of hello's package changed.
    let mut tampered = bundle.clone();
    let deb = &sb.debs["hello_2.10-5_amd64.deb"];
    let at = tampered
        .windows(deb.len())
        .position(|w| w == deb.as_slice())
        .unwrap();
    tampered[at + deb.len() / 2] ^= 1;
    std::fs::write(site.path().join("tampered.bundle"), &tampered).unwrap();
    std::fs::write(
        site.path().join("truncated.bundle"),
        &bundle[..bundle.len() * 2 / 3],
    )
    .unwrap();
    std::fs::write(site.path().join("junk.bundle"), b"not a bundle at all").unwrap();
    for (file, expected) in [
        ("tampered.bundle", "sha256 mismatch"),
        ("truncated.bundle", "damaged or was tampered with"),
        ("junk.bundle", "is not a carbon-store bundle"),
    ] {
        let o = at_site(site.path(), &["bundle", "import", file])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{file}: {err}");
        assert!(err.contains(expected), "{file}: {err}");
        let store = site.path().join("store");
        let objects = std::fs::read_dir(&store)
            .map(|d| d.flatten().filter(|e| e.file_name().len() > 33).count())
            .unwrap_or(0);
        assert_eq!(objects, 0, "{file} left objects in the store");
        assert_eq!(
            std::fs::read_dir(store.join(".tmp"))
                .map(|d| d.count())
                .unwrap_or(0),
            0,
            "{file} left temp files"
        );
    }
    // The intact bundle imports.
    std::fs::write(site.path().join("good.bundle"), &bundle).unwrap();
    let out = run(&mut at_site(
        site.path(),
        &["bundle", "import", "good.bundle"],
    ));
    assert!(
        out.contains("imported") && out.contains("for test"),
        "{out}"
    );
}

#[test]
fn a_bundle_made_from_a_store_without_the_indexes_imports_and_realizes_offline() {
    // A CI store that only fetched the committed lock holds no InRelease: the bundle then
    // carries no ref to one (import refuses a ref to an index the bundle lacks).
    let sb = Sandbox::new();
    sb.ok(&["lock", "test"]);
    for object in sb.store_objects() {
        if object.ends_with("_InRelease") {
            std::fs::remove_file(sb.path("store").join(&object)).unwrap();
        }
    }
    sb.ok(&["fetch", "test"]);
    sb.ok(&["bundle", "export", "test", "-o", "test.bundle"]);
    let site = site(&sb);
    std::fs::copy(sb.path("test.bundle"), site.path().join("test.bundle")).unwrap();
    run(&mut at_site(
        site.path(),
        &["bundle", "import", "test.bundle"],
    ));
    run(&mut at_site(site.path(), &["--offline", "realize", "test"]));
}
