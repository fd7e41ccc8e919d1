//! Shared test support: a signed Debian archive built in Rust, served over HTTP on
//! 127.0.0.1, and a sandbox that runs the real `carbon-store` binary against it.
#![allow(dead_code)]

pub mod archive;
pub mod deb;
pub mod engine;
pub mod npm;
pub mod pypi;
pub mod server;

use archive::{Signer, Suite, days_ago, publish};
use deb::DebSpec;
use server::Server;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary working directory with recipes, lockfiles, a store and a mirror.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub server: Server,
    pub debs: BTreeMap<String, Vec<u8>>,
}

/// The packages of the standard test archive: a miniature essential set whose files
/// exercise merged /usr, setuid, hard links, symlinks, conffiles and alternatives.
pub fn base_packages() -> Vec<(Vec<&'static str>, DebSpec)> {
    let both = vec!["amd64", "arm64"];
    let mut out = Vec::new();
    for arch in ["amd64", "arm64"] {
        out.push((
            vec![arch],
            DebSpec::new("libc6", "2.41-12", arch)
                .field("Priority", "required")
                .field("Multi-Arch", "same")
                .file("./usr/lib/libc.so.6", arch.as_bytes(), 0o755),
        ));
        out.push((
            vec![arch],
            DebSpec::new("dash", "0.5.12-12", arch)
                .field("Essential", "yes")
                .field("Priority", "required")
                .field("Depends", "libc6 (>= 2.34)")
                .file("./usr/bin/dash", b"#!dash", 0o755),
        ));
        out.push((
            vec![arch],
            DebSpec::new("coreutils", "9.7-3", arch)
                .field("Essential", "yes")
                .field("Priority", "required")
                .field("Pre-Depends", "libc6 (>= 2.38)")
                // An old-style path: lands under /usr through the merged-/usr rule.
                .entry(deb::Entry::Dir {
                    path: "./bin/".into(),
                    mode: 0o755,
                })
                .file("./bin/ls", format!("ls for {arch}").as_bytes(), 0o755)
                .file("./usr/bin/su", b"setuid", 0o4755)
                .file("./usr/bin/test", b"test binary", 0o755)
                .entry(deb::Entry::Hardlink {
                    path: "./usr/bin/[".into(),
                    target: "./usr/bin/test".into(),
                }),
        ));
        out.push((
            vec![arch],
            DebSpec::new("mawk", "1.3.4-1", arch)
                .field("Priority", "required")
                .field("Provides", "awk")
                .field("Depends", "libc6")
                .file("./usr/bin/mawk", b"mawk", 0o755)
                .member("postinst", "#!/bin/sh\nset -e\nupdate-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n  --slave /usr/bin/nawk nawk /usr/bin/mawk\n"),
        ));
        out.push((
            vec![arch],
            DebSpec::new("hello", "2.10-5", arch)
                .field("Priority", "optional")
                .field("Depends", "libc6 (>= 2.34), hello-data | hello-data-legacy")
                .file("./usr/bin/hello", b"hello world", 0o755)
                .file("./etc/hello.conf", b"greeting=hi\n", 0o644)
                .member("conffiles", "/etc/hello.conf\n"),
        ));
        out.push((
            vec![arch],
            DebSpec::new("usrmerge", "39", arch).field("Depends", "perl"),
        ));
    }
    out.push((
        both.clone(),
        DebSpec::new("base-files", "13.8", "all")
            .field("Essential", "yes")
            .field("Priority", "required")
            .entry(deb::Entry::Symlink {
                path: "./bin".into(),
                target: "usr/bin".into(),
            })
            .entry(deb::Entry::Symlink {
                path: "./lib".into(),
                target: "usr/lib".into(),
            })
            .entry(deb::Entry::Dir {
                path: "./tmp/".into(),
                mode: 0o1777,
            })
            .entry(deb::Entry::Dir {
                path: "./usr/bin/".into(),
                mode: 0o755,
            })
            .entry(deb::Entry::Dir {
                path: "./etc/".into(),
                mode: 0o755,
            })
            .file("./usr/share/base-files/profile", b"# profile\n", 0o644)
            .file("./etc/dpkg/origins/debian", b"Vendor: Debian\n", 0o644),
    ));
    out.push((
        both.clone(),
        DebSpec::new("base-passwd", "3.6.7", "all")
            .field("Essential", "yes")
            .field("Priority", "required")
            .file("./usr/share/base-passwd/passwd.master", b"root:*:0:0:root:/root:/bin/bash\nnobody:*:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", 0o644)
            .file("./usr/share/base-passwd/group.master", b"root:*:0:\nmail:*:8:\nshadow:*:42:\nutmp:*:43:\nnogroup:*:65534:\n", 0o644),
    ));
    out.push((
        both.clone(),
        DebSpec::new("usr-is-merged", "39", "all").field("Priority", "optional"),
    ));
    out.push((
        both.clone(),
        DebSpec::new("init-system-helpers", "1.69", "all")
            .field("Priority", "optional")
            .field("Depends", "usrmerge | usr-is-merged"),
    ));
    out.push((
        both.clone(),
        DebSpec::new("hello-data", "2.10-5", "all").file(
            "./usr/share/hello/greeting",
            b"hi",
            0o644,
        ),
    ));
    out.push((
        both,
        DebSpec::new("tzdata", "2025b-4", "all")
            .field("Priority", "required")
            .field("Depends", "debconf | debconf-2.0"),
    ));
    out
}

pub const BASE_COMPONENT: &str = r#"# The miniature essential set.
[component]
name = "base-system"
description = "test base"

[debian]
packages = ["usr-is-merged", "init-system-helpers"]
essential = true
"#;

pub const HELLO_COMPONENT: &str = r#"[component]
name = "hello"
description = "a greeting"
after = ["base-system"]

[debian]
packages = ["hello"]
"#;

pub const TEST_IMAGE: &str = r#"[image]
name = "test"
description = "test image"
archs = ["amd64", "arm64"]
debian-source = "testing"
components = ["hello"]
"#;

/// The standard archive (main suite and security overlay), adjusted, published under
/// `mirror`; returns the .deb bytes by file name.
pub fn publish_standard(
    mirror: &Path,
    adjust: impl FnOnce(&mut Suite, &mut Suite),
) -> BTreeMap<String, Vec<u8>> {
    let mut main = Suite::new("testing", days_ago(2));
    main.valid_until = Some(days_ago(0) + std::time::Duration::from_secs(7 * 86_400));
    for (archs, spec) in base_packages() {
        main.add(&archs, spec);
    }
    for arch in ["amd64", "arm64"] {
        main.add(
            &[arch],
            DebSpec::new("python3", "3.13.5-1", arch)
                .field("Priority", "optional")
                .field("Depends", "libc6")
                .file("./usr/bin/python3.13", b"#!python", 0o755),
        );
    }
    // tzdata's debconf alternative is missing on purpose: debconf-2.0 is provided below.
    main.add(
        &["amd64", "arm64"],
        DebSpec::new("cdebconf", "0.280", "all").field("Provides", "debconf-2.0"),
    );
    let mut security = Suite::new("testing-security", days_ago(1));
    security.signer = Signer::Release;
    security.gzip_index = false;
    for arch in ["amd64", "arm64"] {
        security.add(
            &[arch],
            DebSpec::new("libc6", "2.41-12+deb13u1", arch)
                .field("Priority", "required")
                .field("Multi-Arch", "same"),
        );
    }
    adjust(&mut main, &mut security);
    let mut debs = publish(&mirror.join("debian"), &main, "pool");
    debs.extend(publish(
        &mirror.join("debian-security"),
        &security,
        "pool/updates",
    ));
    debs
}

impl Sandbox {
    /// Publishes the standard archive again, adjusted (a mirror that moved on).
    pub fn republish(&self, adjust: impl FnOnce(&mut Suite, &mut Suite)) {
        publish_standard(&self.path("mirror"), adjust);
    }

    /// A sandbox whose main suite is signed by `signer`, plus a security overlay.
    pub fn with_signer(signer: Signer) -> Sandbox {
        Self::build(|main, _| main.signer = signer)
    }

    pub fn new() -> Sandbox {
        Self::build(|_, _| {})
    }

    /// Builds the standard archive, letting the caller adjust both suites before publishing.
    pub fn build(adjust: impl FnOnce(&mut Suite, &mut Suite)) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("mirror");
        let debs = publish_standard(&mirror, adjust);
        let server = Server::start(mirror);
        let sandbox = Sandbox { dir, server, debs };
        sandbox.write("recipes/components/base-system.toml", BASE_COMPONENT);
        sandbox.write("recipes/components/hello.toml", HELLO_COMPONENT);
        sandbox.write("recipes/images/test.toml", TEST_IMAGE);
        sandbox.write(
            "recipes/sources/testing.toml",
            r#"[debian-source]
name = "testing"
components = ["main"]
keyrings = ["keys/archive.pub.asc", "keys/release.pub.asc", "keys/expired.pub.asc"]

[[debian-source.suite]]
suite = "testing"

[[debian-source.suite]]
suite = "testing-security"
mirror = "debian-security"
"#,
        );
        for k in ["archive", "release", "expired"] {
            let bytes = fs::read(archive::fixtures().join(format!("keys/{k}.pub.asc"))).unwrap();
            sandbox.write_bytes(&format!("recipes/keys/{k}.pub.asc"), &bytes);
        }
        fs::create_dir_all(sandbox.path("lockfiles")).unwrap();
        fs::create_dir_all(sandbox.path("empty-apt")).unwrap();
        sandbox
    }

    /// The standard sandbox plus a package `bigdata` holding one file of `size` bytes of
    /// one repeated byte (streamed, never whole in the test's memory; it compresses to
    /// almost nothing), installed by the `hello` component. Returns the component's text,
    /// for a test that adds to it.
    pub fn with_big_file(size: u64) -> (Sandbox, String) {
        let sb = Sandbox::build(|main, _| {
            main.add(
                &["amd64", "arm64"],
                DebSpec::new("bigdata", "1", "all").entry(deb::Entry::Filled {
                    path: "./usr/share/bigdata/blob".into(),
                    byte: 7,
                    size,
                }),
            );
        });
        let component = HELLO_COMPONENT.replace("[\"hello\"]", "[\"hello\", \"bigdata\"]");
        sb.write("recipes/components/hello.toml", &component);
        (sb, component)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        self.write_bytes(rel, text.as_bytes());
    }

    pub fn write_bytes(&self, rel: &str, bytes: &[u8]) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap()
    }

    /// The binary, run in the sandbox with mirrors pointing at the test server and the
    /// host's own configuration hidden.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.program(env!("CARGO_BIN_EXE_carbon-store"));
        c.args(args);
        c
    }

    /// Any program, in the sandbox's directory and environment.
    pub fn program(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("CARBON_CONFIG", self.path("no-config.toml"))
            .env("CARBON_APT_DIR", self.path("empty-apt"))
            .env(
                "CARBON_MIRROR_DEBIAN",
                format!("{}/debian", self.server.url),
            )
            .env(
                "CARBON_MIRROR_DEBIAN_SECURITY",
                format!("{}/debian-security", self.server.url),
            )
            .env(
                "CARBON_MIRROR_PYPI",
                format!("{}/pypi/simple", self.server.url),
            )
            .env("CARBON_MIRROR_NPM", format!("{}/npm", self.server.url))
            // The test server's port changes from run to run: images get no apt sources
            // unless a test names their mirror (tests/image_apt.rs).
            .env("CARBON_MIRROR_IMAGE_DEBIAN", "none")
            .env("CARBON_MIRROR_IMAGE_DEBIAN_SECURITY", "none");
        c
    }

    /// Runs git in the sandbox as a fixed author, asserting success; returns its output.
    pub fn git(&self, args: &[&str]) -> String {
        let o = self
            .program("git")
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t.invalid")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and asserts success, returning stderr (where carbon-store reports).
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "carbon-store {args:?} failed ({:?}):\n{stderr}",
            out.status.code()
        );
        stderr + &String::from_utf8_lossy(&out.stdout)
    }

    /// Runs a command given `--json`, asserts `code`, and parses its standard output,
    /// which must be one JSON document and nothing else.
    pub fn json(&self, args: &[&str], code: i32) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        assert_eq!(
            out.status.code(),
            Some(code),
            "carbon-store {all:?}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "carbon-store {all:?} printed no JSON document ({e}):\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Runs and asserts failure with `code`, returning stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "carbon-store {args:?}: expected exit {code}:\n{stderr}"
        );
        stderr
    }

    /// Flips the last byte of every store object whose name ends with `suffix` (same size,
    /// so only its hash tells); panics when there is none.
    pub fn spoil_store_objects(&self, suffix: &str) {
        let spoiled: Vec<String> = self
            .store_objects()
            .into_iter()
            .filter(|o| o.ends_with(suffix))
            .collect();
        assert!(!spoiled.is_empty(), "no {suffix} in the store");
        for name in &spoiled {
            let path = self.path("store").join(name);
            let mut bytes = fs::read(&path).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            fs::write(&path, bytes).unwrap();
        }
    }

    /// Files in the store that are final objects (not temp, lock or refs).
    pub fn store_objects(&self) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(self.path("store"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.') && n != "refs")
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    pub fn temp_files(&self) -> usize {
        fs::read_dir(self.path("store/.tmp"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// Every file under a directory with its sha256, by relative path.
pub fn digests(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    sha256_hex(&fs::read(&p).unwrap()),
                );
            }
        }
    }
    out
}

/// The largest peak resident set of any child process this test process has waited for
/// (`getrusage(RUSAGE_CHILDREN)`), in bytes.
pub fn children_peak_rss_bytes() -> u64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(r, 0, "getrusage");
    // Linux reports ru_maxrss in KiB.
    usage.ru_maxrss as u64 * 1024
}

/// Every path in every layer of a docker-archive tarball (gzip layers), in order.
pub fn layer_paths(docker_archive: &[u8]) -> Vec<String> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(docker_archive);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("blobs/sha256/") {
            continue;
        }
        let mut blob = Vec::new();
        entry.read_to_end(&mut blob).unwrap();
        if !blob.starts_with(&[0x1f, 0x8b]) {
            continue;
        }
        let mut layer = tar::Archive::new(flate2::read::MultiGzDecoder::new(blob.as_slice()));
        for e in layer.entries().unwrap() {
            out.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
        }
    }
    out
}

/// The layer blobs of `arch`'s image in an OCI layout (tagged `latest-ARCH`), bottom first.
pub fn layer_blobs(layout: &Path, arch: &str) -> Vec<PathBuf> {
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let read = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
    };
    let index = read(layout.join("index.json"));
    let desc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == format!("latest-{arch}"))
        .unwrap_or_else(|| panic!("no latest-{arch} in {}", layout.display()))
        .clone();
    let manifest = read(blob(desc["digest"].as_str().unwrap()));
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| blob(l["digest"].as_str().unwrap()))
        .collect()
}

/// The repository (the crate's root).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The store the live and end-to-end tests share, kept inside the clone between runs so
/// repeated runs download little (`CARBON_LIVE_STORE` overrides it).
pub fn live_store() -> PathBuf {
    std::env::var_os("CARBON_LIVE_STORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/live-store"))
}
