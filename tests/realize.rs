//! `carbon-store realize` against the signed test archive: layer contents and tar headers,
//! merged /usr, the dpkg database and other fixups, docker archives, determinism under
//! changed conditions, caching, `--check`, and refusal of malicious or conflicting packages.

mod common;

use common::Sandbox;
use common::deb::{DebSpec, Entry};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// One tar entry as a test sees it.
#[derive(Debug, Clone, PartialEq)]
struct Item {
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: Option<String>,
    data: Vec<u8>,
}

fn read_tar(bytes: &[u8]) -> Vec<(String, Item)> {
    let mut out = Vec::new();
    let mut ar = tar::Archive::new(bytes);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((
            path,
            Item {
                kind: h.entry_type(),
                mode: h.mode().unwrap(),
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                mtime: h.mtime().unwrap(),
                link,
                data,
            },
        ));
    }
    out
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The manifest of an arch in an OCI layout, and its layers' uncompressed tars.
fn layers(layout: &Path, arch: &str) -> (Value, Vec<Vec<(String, Item)>>) {
    let index = json(&layout.join("index.json"));
    let desc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == format!("latest-{arch}"))
        .unwrap()
        .clone();
    let blob = |d: &Value| {
        layout
            .join("blobs/sha256")
            .join(d["digest"].as_str().unwrap().trim_start_matches("sha256:"))
    };
    let manifest = json(&blob(&desc));
    let tars = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| read_tar(&gunzip(&std::fs::read(blob(l)).unwrap())))
        .collect();
    (manifest, tars)
}

fn find<'a>(layer: &'a [(String, Item)], path: &str) -> &'a Item {
    &layer
        .iter()
        .find(|(p, _)| p == path)
        .unwrap_or_else(|| {
            panic!(
                "{path} not in layer: {:?}",
                layer.iter().map(|(p, _)| p).collect::<Vec<_>>()
            )
        })
        .1
}

#[test]
fn layers_hold_the_packages_with_exact_headers_in_path_order() {
    let sb = Sandbox::new();
    let out = sb.ok(&["realize", "test"]);
    assert!(
        out.contains("test amd64: manifest sha256:")
            && out.contains("(3 layers, docker archive oci-out/test-amd64.tar)"),
        "{out}"
    );
    let (manifest, tars) = layers(&sb.path("oci-out/test"), "amd64");
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        3,
        "base-system, hello, fixups"
    );
    let base = &tars[0];
    let paths: Vec<&String> = base.iter().map(|(p, _)| p).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "entries are in path-byte order");
    // merged /usr: ./bin/ls of coreutils lands in usr/bin; bin itself is base-files' symlink.
    assert_eq!(find(base, "usr/bin/ls").data, b"ls for amd64");
    assert!(!paths.iter().any(|p| p.starts_with("bin/")));
    assert_eq!(find(base, "bin").link.as_deref(), Some("usr/bin"));
    // Modes as packaged, setuid and sticky included; numeric owners; package mtimes.
    assert_eq!(find(base, "usr/bin/su").mode, 0o4755);
    assert_eq!(find(base, "tmp/").mode, 0o1777);
    let su = find(base, "usr/bin/su");
    assert_eq!((su.uid, su.gid, su.mtime), (0, 0, 1_700_000_000));
    // Hard links: the first path in tar order carries the data, the other links to it.
    assert_eq!(find(base, "usr/bin/[").data, b"test binary");
    assert_eq!(find(base, "usr/bin/test").kind, tar::EntryType::Link);
    assert_eq!(
        find(base, "usr/bin/test").link.as_deref(),
        Some("usr/bin/[")
    );
    // The hello component's layer holds only its packages.
    let hello: Vec<&String> = tars[1]
        .iter()
        .filter(|(_, i)| i.kind == tar::EntryType::Regular)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        hello,
        [
            "etc/hello.conf",
            "usr/bin/hello",
            "usr/share/hello/greeting"
        ]
    );
    // The fixups layer: everything stamped with SOURCE_DATE_EPOCH.
    let lock = sb.read("lockfiles/test.lock");
    let sde: u64 = lock
        .lines()
        .find_map(|l| l.strip_prefix("source-date-epoch = "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        tars[2]
            .iter()
            .all(|(_, i)| i.mtime == sde || i.kind == tar::EntryType::Directory)
    );
}

#[test]
fn the_fixups_layer_writes_what_the_scripts_would_have() {
    let sb = Sandbox::new();
    sb.ok(&["realize", "test", "--arch", "arm64"]);
    let (manifest, tars) = layers(&sb.path("oci-out/test"), "arm64");
    let fixups = tars.last().unwrap();
    let text = |p: &str| String::from_utf8(find(fixups, p).data.clone()).unwrap();
    let status = text("var/lib/dpkg/status");
    assert_eq!(
        status.matches("Status: install ok installed\n").count(),
        12,
        "{status}"
    );
    assert!(
        status.contains("Package: hello\nStatus: install ok installed\nPriority: optional\n"),
        "{status}"
    );
    // Conffiles with the md5 of the shipped file.
    assert!(status.contains("Conffiles:\n /etc/hello.conf "), "{status}");
    let md5 = text("var/lib/dpkg/status")
        .lines()
        .skip_while(|l| *l != "Conffiles:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    use md5::Digest;
    assert_eq!(md5, hex::encode(md5::Md5::digest(b"greeting=hi\n")));
    // The file lists are dpkg's: "/." then every path as packaged.
    let list = text("var/lib/dpkg/info/coreutils.list");
    assert!(
        list.starts_with("/.\n/usr\n")
            && list.contains("\n/bin/ls\n")
            && list.contains("\n/usr/bin/[\n"),
        "{list}"
    );
    assert!(
        fixups
            .iter()
            .any(|(p, _)| p == "var/lib/dpkg/info/libc6:arm64.list"),
        "Multi-Arch: same packages are arch-qualified"
    );
    assert_eq!(text("var/lib/dpkg/info/format"), "1\n");
    assert_eq!(find(fixups, "var/lib/dpkg/info/mawk.postinst").mode, 0o755);
    // Accounts from base-passwd's masters, no passwd package so no shadow files.
    assert!(text("etc/passwd").starts_with("root:*:0:0:root:/root:/bin/bash\n"));
    assert!(!fixups.iter().any(|(p, _)| p == "etc/shadow"));
    // Alternatives from mawk's postinst.
    assert_eq!(
        find(fixups, "etc/alternatives/awk").link.as_deref(),
        Some("/usr/bin/mawk")
    );
    assert_eq!(
        find(fixups, "usr/bin/awk").link.as_deref(),
        Some("/etc/alternatives/awk")
    );
    assert_eq!(
        find(fixups, "usr/bin/nawk").link.as_deref(),
        Some("/etc/alternatives/nawk")
    );
    assert_eq!(
        text("var/lib/dpkg/alternatives/awk"),
        "auto\n/usr/bin/awk\nnawk\n/usr/bin/nawk\n\n/usr/bin/mawk\n5\n/usr/bin/mawk\n\n"
    );
    // base-files' postinst effects.
    assert_eq!(find(fixups, "var/run").link.as_deref(), Some("/run"));
    assert_eq!(
        find(fixups, "etc/dpkg/origins/default").link.as_deref(),
        Some("debian")
    );
    assert_eq!(text("etc/profile"), "# profile\n");
    // Directories the lower layers define keep their metadata (tmp stays sticky).
    assert!(
        fixups
            .iter()
            .filter(|(p, _)| p == "tmp/")
            .all(|(_, i)| i.mode == 0o1777)
    );
    // arm64 config carries its variant.
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let config = json(&sb.path("oci-out/test/blobs/sha256").join(config_digest));
    assert_eq!(
        (
            config["architecture"].as_str(),
            config["variant"].as_str(),
            config["os"].as_str()
        ),
        (Some("arm64"), Some("v8"), Some("linux"))
    );
    assert_eq!(config["history"].as_array().unwrap().len(), 3);
    assert_eq!(
        config["history"][0]["comment"],
        "component base-system: 10 packages"
    );
}

#[test]
fn recipe_users_get_their_home_except_nonexistent() {
    let sb = Sandbox::new();
    sb.write(
        "recipes/components/hello.toml",
        &format!(
            "{}\n[[user]]\nname = \"dev\"\nuid = 1000\ngid = 1000\n\n\
             [[user]]\nname = \"messagebus\"\nuid = 995\ngid = 995\nhome = \"/nonexistent\"\n",
            common::HELLO_COMPONENT
        ),
    );
    sb.ok(&["lock", "test"]);
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    let (_, tars) = layers(&sb.path("oci-out/test"), "amd64");
    let fixups = tars.last().unwrap();
    let passwd = String::from_utf8(find(fixups, "etc/passwd").data.clone()).unwrap();
    assert!(
        passwd.contains("\ndev:x:1000:1000::/home/dev:")
            && passwd.contains("\nmessagebus:x:995:995::/nonexistent:"),
        "{passwd}"
    );
    let home = find(fixups, "home/dev/");
    assert_eq!((home.uid, home.gid, home.mode), (1000, 1000, 0o755));
    assert!(
        !fixups.iter().any(|(p, _)| p.starts_with("nonexistent")),
        "/nonexistent is never created"
    );
}

#[test]
fn docker_archives_name_the_tag_config_and_layers() {
    let sb = Sandbox::new();
    // Tags docker would refuse are refused before the build, and every way of writing an
    // arch is taken.
    for bad in [
        "UPPER/x:1",
        "example/test:bad tag",
        "example/test@sha256:00",
    ] {
        let err = sb.fails(&["realize", "test", "--tag", bad], 2);
        assert!(err.contains("--tag") && err.contains("NAME:TAG"), "{err}");
    }
    assert!(!sb.path("oci-out").exists());
    sb.ok(&[
        "realize",
        "test",
        "--tag",
        "example/test:1.0",
        "--arch",
        "x86_64",
    ]);
    let bytes = std::fs::read(sb.path("oci-out/test-amd64.tar")).unwrap();
    let entries: BTreeMap<String, Item> = read_tar(&bytes).into_iter().collect();
    let manifest: Value = serde_json::from_slice(&entries["manifest.json"].data).unwrap();
    // Also by arch: loading the other arch's archive moves `1.0` but not `1.0-amd64`.
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["example/test:1.0", "example/test:1.0-amd64"])
    );
    let config: Value =
        serde_json::from_slice(&entries[manifest[0]["Config"].as_str().unwrap()].data).unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    for (i, layer) in manifest[0]["Layers"].as_array().unwrap().iter().enumerate() {
        let blob = &entries[layer.as_str().unwrap()].data;
        assert_eq!(
            diff_ids[i].as_str().unwrap(),
            common::sha256_hex(&gunzip(blob))
                .as_str()
                .pipe(|h| format!("sha256:{h}"))
        );
    }
    assert!(
        config["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("PATH=/usr/local/sbin:"))
    );
    // The OCI layout names references after the tag (the referrers after them have none).
    let index = json(&sb.path("oci-out/test/index.json"));
    let refs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    assert_eq!(refs, ["1.0", "1.0-amd64"]);
    // Without a tag, `latest`; a zstd docker archive is worth a warning.
    let out = sb.ok(&[
        "realize",
        "test",
        "--tag",
        "example/test",
        "--arch",
        "linux/arm64/v8",
        "--compression",
        "zstd",
    ]);
    assert!(
        out.contains("warning: the docker archives hold zstd layers"),
        "{out}"
    );
    let arm_tar = std::fs::read(sb.path("oci-out/test-arm64.tar")).unwrap();
    let arm_entries: BTreeMap<String, Item> = read_tar(&arm_tar).into_iter().collect();
    let arm: Value = serde_json::from_slice(&arm_entries["manifest.json"].data).unwrap();
    assert_eq!(
        arm[0]["RepoTags"],
        serde_json::json!(["example/test:latest", "example/test:latest-arm64"])
    );
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

#[test]
fn outputs_are_bit_identical_across_threads_time_zones_umasks_locales_dirs_and_stores() {
    let sb = Sandbox::new();
    sb.ok(&["realize", "test"]);
    let first = common::digests(&sb.path("oci-out"));
    // Again from a subdirectory, one thread, another zone, locale and umask, a fresh store.
    std::fs::create_dir_all(sb.path("elsewhere")).unwrap();
    let out = sb
        .program("sh")
        .current_dir(sb.path("elsewhere"))
        .env("RAYON_NUM_THREADS", "1")
        .env("TZ", "Pacific/Chatham")
        .env("LC_ALL", "C")
        .env("LANG", "tr_TR.UTF-8")
        .arg("-c")
        .arg("umask 077; exec \"$0\" --store ../store2 --recipes ../recipes --lockfiles ../lockfiles realize test --out ../oci-out2")
        .arg(env!("CARGO_BIN_EXE_carbon-store"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(common::digests(&sb.path("oci-out2")), first);
}

#[test]
fn a_config_change_keeps_the_lock_and_every_layer_and_changes_the_config() {
    let sb = Sandbox::new();
    let config = |m: &Value| {
        let digest = m["config"]["digest"].as_str().unwrap().to_string();
        json(
            &sb.path("oci-out/test/blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
    };
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    let lock = sb.read("lockfiles/test.lock");
    let (before, _) = layers(&sb.path("oci-out/test"), "amd64");
    let env_before = config(&before)["config"]["Env"].clone();
    sb.write(
        "recipes/images/test.toml",
        &format!(
            "{}\n[config]\nenv = {{ EDITOR = \"vi\" }}\n",
            common::TEST_IMAGE
        ),
    );
    let out = sb.ok(&["realize", "test", "--arch", "amd64"]);
    assert!(!out.contains("test: unchanged"), "{out}");
    assert_eq!(sb.read("lockfiles/test.lock"), lock, "config is not pinned");
    let (after, _) = layers(&sb.path("oci-out/test"), "amd64");
    assert_eq!(after["layers"], before["layers"]);
    let env = config(&after)["config"]["Env"].clone();
    assert!(
        env.as_array().unwrap().iter().any(|e| e == "EDITOR=vi"),
        "{env}"
    );
    assert_ne!(env_before, env);
}

#[test]
fn images_carry_annotations_and_labels_from_defaults_git_recipes_and_flags() {
    let sb = Sandbox::new();
    sb.write(
        "recipes/images/test.toml",
        &format!(
            "{}\n[config]\nlabels = {{ team = \"infra\", tier = \"dev\" }}\n\n[annotations]\n\"org.opencontainers.image.vendor\" = \"Carbon\"\n",
            common::TEST_IMAGE
        ),
    );
    sb.git(&["init", "-q"]);
    sb.git(&[
        "remote",
        "add",
        "origin",
        "https://ci:secret-token@git.invalid/carbon.git",
    ]);
    sb.ok(&["lock", "test"]);
    sb.git(&["add", "recipes", "lockfiles"]);
    sb.git(&["commit", "-qm", "recipes"]);
    sb.git(&["tag", "v1.2.0"]);
    let commit = sb.git(&["rev-parse", "HEAD"]);
    sb.ok(&[
        "realize",
        "test",
        "--label",
        "tier=prod",
        "--label",
        "team=",
        "--annotation",
        "org.opencontainers.image.description=",
        "--annotation",
        "org.example.build=42",
    ]);
    let layout = sb.path("oci-out/test");
    let blob = |digest: &Value| {
        json(
            &layout
                .join("blobs/sha256")
                .join(digest.as_str().unwrap().trim_start_matches("sha256:")),
        )
    };
    let (manifest, _) = layers(&layout, "amd64");
    // The creation time is the lock's source-date-epoch, whatever day the test runs.
    let epoch: u64 = sb
        .read("lockfiles/test.lock")
        .lines()
        .find_map(|l| l.strip_prefix("source-date-epoch = "))
        .unwrap()
        .parse()
        .unwrap();
    let expected = serde_json::json!({
        "org.opencontainers.image.created": rfc3339_by_date(epoch),
        "org.opencontainers.image.title": "test",
        "org.opencontainers.image.vendor": "Carbon",
        "org.opencontainers.image.revision": commit,
        "org.opencontainers.image.source": "https://git.invalid/carbon.git",
        "org.opencontainers.image.version": "v1.2.0",
        "org.example.build": "42",
    });
    assert_eq!(manifest["annotations"], expected);
    let config = blob(&manifest["config"]["digest"]);
    assert_eq!(
        config["config"]["Labels"],
        serde_json::json!({ "tier": "prod" })
    );
    // The image index a tag points to carries them too.
    let index = blob(&json(&layout.join("index.json"))["manifests"][0]["digest"]);
    assert_eq!(index["annotations"], expected);
    // A tracked change since the commit marks the revision and the version.
    sb.write(
        "recipes/components/hello.toml",
        &format!("{}\n", common::HELLO_COMPONENT),
    );
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    let (manifest, _) = layers(&layout, "amd64");
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.revision"],
        format!("{commit}-dirty")
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.version"],
        "v1.2.0-dirty"
    );
}

/// RFC 3339 of a Unix time, as `date -u` prints it.
fn rfc3339_by_date(epoch: u64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn json_and_the_metadata_file_carry_every_digest_and_path() {
    let sb = Sandbox::new();
    let realize = |sb: &Sandbox| {
        let out = sb.run(&[
            "realize",
            "test",
            "--json",
            "--metadata-file",
            "meta/realize.json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            sb.read("meta/realize.json"),
            stdout,
            "the file holds what was printed"
        );
        serde_json::from_str::<Value>(&stdout).expect("stdout is one JSON document")
    };
    let first = realize(&sb);
    let image = &first["images"][0];
    assert_eq!(
        (image["image"].as_str(), image["outcome"].as_str()),
        (Some("test"), Some("built"))
    );
    assert_eq!(image["tag"], "carbon/test:latest");
    let layout = sb.path("oci-out/test");
    for arch in ["amd64", "arm64"] {
        let (manifest, _) = layers(&layout, arch);
        let reported = &image["archs"][arch];
        let digest = reported["manifest_digest"].as_str().unwrap();
        let blob = layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        assert_eq!(
            json(&blob),
            manifest,
            "{arch}: the manifest the layout holds"
        );
        let layer_digests: Vec<&Value> = reported["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| &l["digest"])
            .collect();
        let manifest_digests: Vec<&Value> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| &l["digest"])
            .collect();
        assert_eq!(layer_digests, manifest_digests);
        assert_eq!(
            reported["docker_archive"],
            format!("oci-out/test-{arch}.tar")
        );
    }
    let second = realize(&sb);
    assert_eq!(second["images"][0]["outcome"], "unchanged");
    assert_eq!(second["images"][0]["archs"], image["archs"]);
    assert_eq!(second["images"][0]["index_digest"], image["index_digest"]);
}

#[test]
fn an_unchanged_realize_reuses_and_a_changed_component_rebuilds_only_its_layer() {
    let sb = Sandbox::build(|main, _| {
        main.add(
            &["amd64", "arm64"],
            DebSpec::new("extra", "1.0", "all").file("./usr/share/extra/data", b"extra", 0o644),
        );
    });
    sb.ok(&["realize", "test"]);
    let out = sb.ok(&["realize", "test"]);
    assert!(out.contains("test: unchanged"), "{out}");
    let (before, _) = layers(&sb.path("oci-out/test"), "amd64");
    sb.write(
        "recipes/components/hello.toml",
        &common::HELLO_COMPONENT.replace("[\"hello\"]", "[\"hello\", \"extra\"]"),
    );
    let err = sb.fails(&["realize", "test"], 3);
    assert!(
        err.contains("is stale") && err.contains("carbon-store lock test"),
        "{err}"
    );
    sb.ok(&["lock", "test"]);
    sb.ok(&["realize", "test"]);
    let (after, _) = layers(&sb.path("oci-out/test"), "amd64");
    let digest = |m: &Value, i: usize| m["layers"][i]["digest"].as_str().unwrap().to_string();
    assert_eq!(
        digest(&before, 0),
        digest(&after, 0),
        "base-system's layer is untouched"
    );
    assert_ne!(digest(&before, 1), digest(&after, 1));
    assert_ne!(digest(&before, 2), digest(&after, 2));
}

#[test]
fn realize_says_each_archs_stage_and_what_its_layers_wrote_and_nothing_with_q() {
    let sb = Sandbox::new();
    // Off a terminal (as in CI): plain lines on standard error, in order, per arch.
    let out = sb.run(&["realize", "test"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let packages = |arch: &str| {
        let lock: toml::Table =
            toml::from_str(&std::fs::read_to_string(sb.path("lockfiles/test.lock")).unwrap())
                .unwrap();
        lock[arch]["debian"].as_array().unwrap().len()
    };
    let mut at = 0;
    for line in [
        format!("test amd64: unpacking {} packages", packages("amd64")),
        "test amd64: writing the Debian layers".to_string(),
        "test amd64: fixups".to_string(),
        format!("test arm64: unpacking {} packages", packages("arm64")),
        "test arm64: fixups".to_string(),
        "test: writing the outputs".to_string(),
    ] {
        let found = err[at..]
            .find(&line)
            .unwrap_or_else(|| panic!("no {line:?} after byte {at}:\n{err}"));
        at += found + line.len();
    }
    let summary = err
        .lines()
        .find(|l| l.starts_with("test amd64: ") && l.contains("layers written"))
        .unwrap_or_else(|| panic!("no layer summary for amd64:\n{err}"));
    assert!(
        summary.contains(" at ") && summary.contains("/s"),
        "{summary}"
    );
    // -v names every layer as it is written.
    std::fs::remove_dir_all(sb.path("oci-out")).unwrap();
    let again = sb.run(&["-v", "realize", "test", "--arch", "amd64"]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("test amd64: layer sha256:") && l.contains("component hello")),
        "{err}"
    );
    // -q: nothing but errors.
    std::fs::remove_dir_all(sb.path("oci-out")).unwrap();
    let quiet = sb.run(&["-q", "realize", "test"]);
    assert!(quiet.status.success());
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
}

#[test]
fn debian_layers_built_before_are_reused_without_reading_the_debs_and_check_rebuilds_them() {
    let sb = Sandbox::new();
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    let first = common::digests(&sb.path("oci-out"));
    // Spoil every stored .deb (same size, so only its hash tells). A realize into a new
    // output directory takes the Debian side from its record and never opens them: same
    // layers, same fixups (users, dpkg database), same files.
    sb.spoil_store_objects(".deb");
    std::fs::remove_dir_all(sb.path("oci-out")).unwrap();
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    assert_eq!(common::digests(&sb.path("oci-out")), first);
    // --check rebuilds every layer from its sources, and so reads a spoiled package.
    let err = sb.fails(&["realize", "test", "--arch", "amd64", "--check"], 1);
    assert!(err.contains(".deb"), "{err}");
}

#[test]
fn realize_check_passes_and_names_the_first_differing_path() {
    let sb = Sandbox::new();
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    let out = sb.ok(&["realize", "test", "--arch", "amd64", "--check"]);
    assert!(out.contains("rebuilt from sources and identical"), "{out}");
    // Tamper with the published hello layer: one byte of /usr/bin/hello.
    let layout = sb.path("oci-out/test");
    let index_path = layout.join("index.json");
    let mut index = json(&index_path);
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let desc = index["manifests"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == "latest-amd64")
        .unwrap();
    let mut manifest = json(&blob(desc["digest"].as_str().unwrap()));
    let old = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut tar = gunzip(&std::fs::read(blob(&old)).unwrap());
    let pos = tar.windows(11).position(|w| w == b"hello world").unwrap();
    tar[pos] = b'H';
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let new_blob = gz.finish().unwrap();
    let new_digest = format!("sha256:{}", common::sha256_hex(&new_blob));
    std::fs::write(blob(&new_digest), &new_blob).unwrap();
    manifest["layers"][1]["digest"] = new_digest.into();
    manifest["layers"][1]["size"] = new_blob.len().into();
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = format!("sha256:{}", common::sha256_hex(&manifest_bytes));
    std::fs::write(blob(&manifest_digest), &manifest_bytes).unwrap();
    desc["digest"] = manifest_digest.into();
    desc["size"] = manifest_bytes.len().into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let err = sb.fails(&["realize", "test", "--arch", "amd64", "--check"], 1);
    assert!(
        err.contains("amd64: layer 2 (component hello: 2 packages) differs"),
        "{err}"
    );
    assert!(
        err.contains("first differing path: usr/bin/hello: content differs"),
        "{err}"
    );
}

#[test]
fn packages_escaping_the_root_or_clashing_are_refused() {
    let sb = Sandbox::build(|main, _| {
        main.add(
            &["amd64", "arm64"],
            DebSpec::new("evil", "1", "all")
                .entry(Entry::Symlink {
                    path: "./usr/share/evil".into(),
                    target: "../../../etc".into(),
                })
                .file("./usr/share/evil/passwd", b"pwned", 0o644),
        );
        main.add(
            &["amd64", "arm64"],
            DebSpec::new("dotdot", "1", "all").file("./usr/../../etc/shadow", b"pwned", 0o644),
        );
        main.add(
            &["amd64", "arm64"],
            DebSpec::new("clash", "1", "all").file("./usr/bin/hello", b"another hello", 0o755),
        );
    });
    for (package, expected) in [
        (
            "evil",
            "evil: \"usr/share/evil/passwd\" leads outside the image root through symlink \"usr/share/evil\"",
        ),
        (
            "dotdot",
            "dotdot 1: entry \"./usr/../../etc/shadow\" escapes the image root",
        ),
        (
            "clash",
            "file conflict: \"usr/bin/hello\" is shipped by both",
        ),
    ] {
        sb.write(
            "recipes/components/hello.toml",
            &common::HELLO_COMPONENT.replace("[\"hello\"]", &format!("[\"hello\", \"{package}\"]")),
        );
        sb.ok(&["lock", "test"]);
        let err = sb.fails(&["realize", "test", "--arch", "amd64"], 1);
        assert!(err.contains(expected), "{package}: {err}");
    }
}

#[test]
fn offline_realize_after_fetch_makes_no_connection() {
    let sb = Sandbox::new();
    sb.ok(&["lock", "test"]);
    sb.ok(&["fetch", "test"]);
    let before = sb.server.requests().len();
    sb.ok(&["--offline", "realize", "test"]);
    assert_eq!(sb.server.requests().len(), before);
    let fresh = Sandbox::new();
    fresh.ok(&["lock", "test"]);
    let err = fresh.fails(&["--offline", "realize", "test"], 4);
    assert!(err.contains("are not in the store"), "{err}");
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_while_unpacking_says_so_and_leaves_nothing_behind() {
    // A package whose 64 MiB file compresses to almost nothing: the store's disk (a
    // 24 MiB tmpfs) holds the .deb but not its unpacked file.
    let (sb, _) = Sandbox::with_big_file(64 << 20);
    sb.ok(&["lock", "test"]);
    let small = sb.path("small-disk");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "mounting a tmpfs needs root (CI runs as root)"
    );
    let _unmount = Tmpfs(small.clone());
    let store = small.join("store");
    let out = sb.fails(
        &[
            "--store",
            store.to_str().unwrap(),
            "realize",
            "test",
            "--arch",
            "amd64",
        ],
        1,
    );
    assert!(out.contains("hint: the disk is full"), "{out}");
    // The spill files were unlinked and nothing else was left: the disk is free again.
    let tmp: Vec<_> = std::fs::read_dir(store.join(".tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    // No layer blob was published from a half-written tar.
    let blobs = store.join("blobs/sha256");
    let published = std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(published, 0, "a layer blob was left in {}", blobs.display());
}
