//! An npm registry in a directory (served by the test server): packuments in the
//! abbreviated form npm asks for, and tarballs packed as `npm pack` packs them; and the
//! sandbox with an image that takes Node.js and a tool from it (tests/npm.rs and the
//! registry cache's test).

use super::Sandbox;
use serde_json::{Value, json};
use std::path::Path;

/// One file of a package: path under `package/`, bytes, mode.
pub type File<'a> = (&'a str, &'a [u8], u32);

/// A gzip tarball of `files` under `package/`, with `package.json` made from `manifest`.
pub fn tarball(manifest: &Value, files: &[File]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let json = manifest.to_string();
    let mut all: Vec<File> = vec![("package.json", json.as_bytes(), 0o644)];
    all.extend_from_slice(files);
    for (path, data, mode) in all {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(499_162_500);
        h.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut h, format!("package/{path}"), data)
            .unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

/// `sha512-<base64>` of `bytes`.
pub fn integrity(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest;
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(bytes))
    )
}

/// Publishes `name@version` (its manifest: `fields` plus name and version) with `files`
/// into the registry at `root`, served at `url`; the newest publish is `latest`.
pub fn publish(root: &Path, url: &str, name: &str, version: &str, fields: Value, files: &[File]) {
    let mut manifest = fields;
    manifest["name"] = json!(name);
    manifest["version"] = json!(version);
    let tgz = tarball(&manifest, files);
    let base = name.rsplit('/').next().unwrap();
    // Tarballs under their own directory: a packument is a file where the registry has a
    // directory of the same name.
    let rel = format!("tarballs/{name}/-/{base}-{version}.tgz");
    let path = root.join(&rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &tgz).unwrap();
    manifest["dist"] = json!({"tarball": format!("{url}/{rel}"), "integrity": integrity(&tgz)});
    let doc_path = root.join(name.replacen('/', "%2f", 1));
    let mut doc: Value = std::fs::read(&doc_path)
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or_else(|_| json!({"name": name, "dist-tags": {}, "versions": {}}));
    doc["versions"][version] = manifest;
    doc["dist-tags"]["latest"] = json!(version);
    std::fs::write(doc_path, doc.to_string()).unwrap();
}

pub const JS_COMPONENT: &str = r#"[component]
name = "js"
description = "a Node.js tool"
after = ["hello"]

[npm]
node = "24"
packages = ["tool@^1"]

[npm.scripts.tool]
why = "postinstall links the native binary of the platform package"
link = { "bin/native" = { package = "tool-linux-{cpu}", file = "native" } }
"#;

/// The sandbox with a registry holding Node.js 24 and 25 builds, `tool` (a command, a
/// dependency and per-platform optional packages) and its dependency in two versions.
pub fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    let root = sb.path("mirror/npm");
    let url = format!("{}/npm", sb.server.url);
    for (cpu, arch_note) in [("x64", "amd64"), ("arm64", "arm64")] {
        for version in ["24.1.0", "24.2.0", "25.0.0"] {
            let node = format!("#!/bin/sh\necho v{version} {arch_note}\n");
            publish(
                &root,
                &url,
                &format!("node-linux-{cpu}"),
                version,
                json!({"os": "linux", "cpu": cpu, "bin": {"node": "bin/node"}}),
                &[
                    ("bin/node", node.as_bytes(), 0o755),
                    ("include/node/node.h", b"/* */", 0o644),
                ],
            );
        }
        publish(
            &root,
            &url,
            &format!("tool-linux-{cpu}"),
            "1.0.0",
            json!({"os": ["linux"], "cpu": [cpu]}),
            &[("native", format!("native for {cpu}").as_bytes(), 0o755)],
        );
    }
    publish(
        &root,
        &url,
        "dep",
        "1.0.0",
        json!({}),
        &[("index.js", b"module.exports = 1;\n", 0o644)],
    );
    publish(
        &root,
        &url,
        "dep",
        "1.1.0",
        json!({}),
        &[("index.js", b"module.exports = 11;\n", 0o644)],
    );
    publish(
        &root,
        &url,
        "tool",
        "1.0.0",
        json!({
            "bin": {"tool": "./cli.js"},
            "dependencies": {"dep": "^1.0.0"},
            "optionalDependencies": {"tool-linux-x64": "1.0.0", "tool-linux-arm64": "1.0.0"},
            "hasInstallScript": true,
            "scripts": {"postinstall": "node link-native.js"}
        }),
        &[
            (
                "cli.js",
                b"#!/usr/bin/env node\nconsole.log('tool');\n",
                0o644,
            ),
            ("bin/native", b"placeholder", 0o644),
        ],
    );
    sb.write("recipes/components/js.toml", JS_COMPONENT);
    sb.write(
        "recipes/images/test.toml",
        &super::TEST_IMAGE.replace("[\"hello\"]", "[\"hello\", \"js\"]"),
    );
    sb
}
