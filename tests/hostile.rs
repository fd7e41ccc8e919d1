//! The malicious-input corpus: bundles, packages, indexes and wheels made by an adversary,
//! each fed to the real binary. Every case checks the refusal a user would read, that
//! nothing appeared in a canary directory outside the work directories, and that the store
//! holds no partial or unverified object afterwards.

mod common;

use common::Sandbox;
use common::deb::{DebSpec, Entry};
use common::pypi::WheelSpec;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A directory beside the sandbox that hostile input aims at; it must stay empty.
struct Canary {
    dir: tempfile::TempDir,
}

impl Canary {
    fn new() -> Canary {
        Canary {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn assert_untouched(&self, case: &str) {
        let found: Vec<PathBuf> = std::fs::read_dir(self.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(
            found.is_empty(),
            "{case}: written outside the store: {found:?}"
        );
    }
}

/// `verify` has nothing to report: no corrupt object, no temp file left.
fn assert_store_clean(sb: &Sandbox, case: &str) {
    let out = sb.run(&["verify", "-v"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.lines().any(|l| l.starts_with("corrupt:")),
        "{case}: {text}"
    );
    assert_eq!(sb.temp_files(), 0, "{case}: temp files left");
}

/// The bundle's tar with its manifest replaced by `edit(manifest)`.
fn rewrite_manifest(bundle: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let mut archive = tar::Archive::new(bundle);
    let mut out = tar::Builder::new(Vec::new());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if entry.path().unwrap().to_str() == Some("carbon-bundle.json") {
            let mut manifest: serde_json::Value = serde_json::from_slice(&data).unwrap();
            edit(&mut manifest);
            data = serde_json::to_vec(&manifest).unwrap();
            header.set_size(data.len() as u64);
            header.set_cksum();
        }
        out.append(&header, data.as_slice()).unwrap();
    }
    out.into_inner().unwrap()
}

#[test]
fn a_bundle_whose_manifest_names_paths_outside_the_store_is_refused_whole() {
    let canary = Canary::new();
    let sb = Sandbox::new();
    sb.ok(&["lock", "test"]);
    sb.ok(&["fetch", "test"]);
    sb.ok(&["bundle", "export", "test", "-o", "test.bundle"]);
    let bundle = std::fs::read(sb.path("test.bundle")).unwrap();
    let target = canary.path().join("pwned");
    let absolute = target.to_str().unwrap().to_string();
    let relative = format!("../../..{absolute}");
    let inrelease = |m: &serde_json::Value| {
        m["refs"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .clone()
    };
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    // A ref under `name` pointing at the bundle's own InRelease.
    let add_ref = |name: String| -> Edit {
        Box::new(move |m| {
            let v = inrelease(m);
            m["refs"][name.as_str()] = v;
        })
    };
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("ref with ..", add_ref(relative.clone()), "bundle ref"),
        ("absolute ref", add_ref(absolute.clone()), "bundle ref"),
        (
            "ref to something the bundle lacks",
            Box::new(|m| {
                m["refs"]["debian-testing-InRelease"] =
                    format!("{} Mon, 01 Jan 2024 00:00:00 GMT", "0".repeat(64)).into()
            }),
            "does not point at anything the input carries",
        ),
        (
            "object name with a path",
            Box::new({
                let relative = relative.clone();
                move |m| m["objects"][0]["name"] = relative.clone().into()
            }),
            "bundle object name",
        ),
        (
            "image name with a path",
            Box::new(|m| m["images"][0] = "../../x".into()),
            "bundle image name",
        ),
    ];
    let store = sb.path("store");
    let refs_before: Vec<_> = std::fs::read_dir(store.join("refs"))
        .unwrap()
        .flatten()
        .map(|e| (e.file_name(), std::fs::read(e.path()).unwrap()))
        .collect();
    for (case, edit, expected) in cases {
        sb.write_bytes("hostile.bundle", &rewrite_manifest(&bundle, edit));
        let err = sb.fails(&["bundle", "import", "hostile.bundle"], 1);
        assert!(
            err.contains("manifest was refused") && err.contains(expected),
            "{case}: {err}"
        );
        canary.assert_untouched(case);
        assert!(!sb.path("pwned").exists() && !sb.path("store/pwned").exists());
        let refs_after: Vec<_> = std::fs::read_dir(store.join("refs"))
            .unwrap()
            .flatten()
            .map(|e| (e.file_name(), std::fs::read(e.path()).unwrap()))
            .collect();
        assert_eq!(refs_before, refs_after, "{case}: refs changed");
        assert_store_clean(&sb, case);
    }
    // The untouched bundle still imports.
    sb.ok(&["bundle", "import", "test.bundle"]);
}

/// Makes the test image a Python image: the Debian packages `debian` (a TOML list's
/// items) and the Python project `alpha`.
fn wants_alpha(sb: &Sandbox, debian: &str) {
    sb.write(
        "recipes/components/py.toml",
        &format!(
            "[component]\nname = \"py\"\nafter = [\"base-system\"]\n[debian]\npackages = [{debian}]\n[python]\nrequirements = [\"alpha\"]\n"
        ),
    );
    sb.write(
        "recipes/images/test.toml",
        &common::TEST_IMAGE.replace("[\"hello\"]", "[\"py\"]"),
    );
}

/// A python image whose interpreter package (`python3.13-minimal`, which byte-compiling
/// unpacks and runs) is `interpreter`.
fn python_image_with_interpreter(interpreter: DebSpec) -> Sandbox {
    let sb = Sandbox::build(|main, _| main.add(&["amd64", "arm64"], interpreter));
    common::pypi::publish(
        &sb.path("mirror/pypi"),
        &[WheelSpec::new("alpha", "1.0", "py3-none-any")
            .file("alpha/hostile_target.py", b"x = 1\n")],
        false,
    );
    wants_alpha(&sb, "\"python3\", \"python3.13-minimal\"");
    sb
}

#[test]
fn the_interpreter_is_unpacked_without_following_the_links_its_packages_make() {
    let canary = Canary::new();
    let absolute = canary.path().to_str().unwrap().to_string();
    for (case, target) in [
        ("absolute link", absolute.clone()),
        (
            "relative link",
            format!("../../../../../../../../..{absolute}"),
        ),
    ] {
        let sb = python_image_with_interpreter(
            DebSpec::new("python3.13-minimal", "3.13.5-1", "all")
                .entry(Entry::Symlink {
                    path: "./usr/lib/x".into(),
                    target: target.clone(),
                })
                .file("./usr/lib/x/file", b"pwned", 0o644)
                .file("./usr/bin/python3.13", b"#!python", 0o755),
        );
        sb.ok(&["lock", "test"]);
        let err = sb.fails(&["realize", "test", "--arch", "amd64"], 1);
        assert!(
            err.contains("python3.13-minimal") && err.contains("usr/lib/x"),
            "{case}: {err}"
        );
        canary.assert_untouched(case);
        let scratch: Vec<_> = std::fs::read_dir(sb.path("store/.tmp"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(scratch.is_empty(), "{case}: scratch left: {scratch:?}");
        assert_store_clean(&sb, case);
    }
}

#[test]
fn an_inrelease_gets_a_store_name_only_after_its_signature_checks() {
    let sb = Sandbox::new();
    let path = sb.path("mirror/debian/dists/testing/InRelease");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("Label: Test", "Label: Evil")).unwrap();
    sb.fails(&["lock", "test"], 1);
    let named: Vec<String> = sb
        .store_objects()
        .into_iter()
        .filter(|n| n.contains("testing_InRelease"))
        .collect();
    assert!(named.is_empty(), "unverified InRelease stored: {named:?}");
    assert_store_clean(&sb, "tampered InRelease");
}

#[test]
fn a_release_changed_after_signing_is_called_altered_not_an_unknown_key() {
    let sb = Sandbox::new();
    let path = sb.path("mirror/debian/dists/testing/InRelease");
    let text = std::fs::read_to_string(&path).unwrap();
    // One flipped byte in the signed text.
    std::fs::write(&path, text.replacen("Label: Test", "Label: Tesu", 1)).unwrap();
    let err = sb.fails(&["lock", "test"], 1);
    assert!(
        err.contains("does not match the text") && err.contains("use another mirror"),
        "{err}"
    );
    assert!(
        !err.contains("not in the keyring") && !err.contains("update the keyrings"),
        "{err}"
    );
}

#[test]
fn a_package_refused_for_an_escape_is_not_blamed_on_the_store() {
    let sb = Sandbox::build(|main, _| {
        main.add(
            &["amd64", "arm64"],
            DebSpec::new("dotdot", "1", "all").file("./usr/../../etc/shadow", b"pwned", 0o644),
        );
    });
    sb.write(
        "recipes/components/hello.toml",
        &common::HELLO_COMPONENT.replace("[\"hello\"]", "[\"hello\", \"dotdot\"]"),
    );
    sb.ok(&["lock", "test"]);
    let err = sb.fails(&["realize", "test", "--arch", "amd64"], 1);
    assert!(err.contains("escapes the image root"), "{err}");
    assert!(err.contains("refused whatever the store holds"), "{err}");
    assert!(!err.contains("fetch` again"), "{err}");
}

/// Runs `carbon-store ARGS` with the sandbox's store mounted read-only (a private mount
/// namespace, as a shared cache mounted read-only would be).
fn on_read_only_store(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    let store = sb.path("store");
    let script = format!(
        "mount --bind {s} {s} && mount -o remount,ro,bind {s} && exec \"$0\" \"$@\"",
        s = store.display()
    );
    let mut c = sb.program("unshare");
    c.args(["--map-root-user", "--mount", "sh", "-c", &script])
        .arg(env!("CARGO_BIN_EXE_carbon-store"))
        .args(args);
    c.output().unwrap()
}

#[test]
fn a_read_only_store_can_still_be_shown_verified_and_built_from() {
    let sb = Sandbox::new();
    sb.ok(&["realize", "test", "--out", "first"]);
    for args in [
        &["show", "test"][..],
        &["verify"][..],
        &["--offline", "lock", "--check", "test"][..],
    ] {
        let out = on_read_only_store(&sb, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Writing is what fails, and it says why.
    let out = on_read_only_store(&sb, &["gc"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "gc on a read-only store succeeded");
    assert!(err.contains("Read-only file system"), "{err}");
}

#[test]
fn hard_links_to_what_the_package_did_not_ship_are_refused() {
    let link = |name: &str, target: &str| {
        DebSpec::new(name, "1", "all").entry(Entry::Hardlink {
            path: "./usr/bin/link".into(),
            target: target.into(),
        })
    };
    let sb = Sandbox::build(|main, _| {
        main.add(&["amd64", "arm64"], link("dangling", "./usr/bin/nothing"));
        main.add(&["amd64", "arm64"], link("borrower", "./usr/bin/hello"));
        main.add(&["amd64", "arm64"], link("dirlink", "./usr/share"));
    });
    for package in ["dangling", "borrower", "dirlink"] {
        sb.write(
            "recipes/components/hello.toml",
            &common::HELLO_COMPONENT.replace("[\"hello\"]", &format!("[\"hello\", \"{package}\"]")),
        );
        sb.ok(&["lock", "test"]);
        let err = sb.fails(&["realize", "test", "--arch", "amd64"], 1);
        assert!(
            err.contains(&format!("{package}: hard link \"usr/bin/link\" points at"))
                && err.contains("not a file this package shipped before it"),
            "{package}: {err}"
        );
        assert!(
            !sb.path("oci-out/test").exists(),
            "{package}: an image was written"
        );
    }
}

#[test]
fn an_index_page_naming_a_file_with_a_path_is_refused() {
    let sb = Sandbox::new();
    let wheel = WheelSpec::new("alpha", "1.0", "py3-none-any").build();
    std::fs::create_dir_all(sb.path("mirror/pypi/files")).unwrap();
    std::fs::write(sb.path("mirror/pypi/files/evil.whl"), &wheel).unwrap();
    let sha = common::sha256_hex(&wheel);
    std::fs::create_dir_all(sb.path("mirror/pypi/simple/alpha")).unwrap();
    std::fs::write(
        sb.path("mirror/pypi/simple/alpha/index.html"),
        format!(
            "<html><body><a href=\"../../files/..%2F..%2Fevil.whl#sha256={sha}\">alpha-1.0-py3-none-any.whl</a></body></html>"
        ),
    )
    .unwrap();
    wants_alpha(&sb, "\"python3\"");
    let err = sb.fails(&["lock", "test"], 1);
    assert!(
        err.contains("index file name \"../../evil.whl\" is not allowed"),
        "{err}"
    );
    assert!(!sb.path("lockfiles/test.lock").exists());
    assert_store_clean(&sb, "index file name");
}

/// Sets the uncompressed size that the zip's local and central headers declare for
/// `member` to `size` (the data stays as it is).
fn declare_size(zip: &mut [u8], member: &str, size: u32) {
    let name = member.as_bytes();
    let mut patched = 0;
    for i in 0..zip.len().saturating_sub(46) {
        let sig = &zip[i..i + 4];
        let (name_at, size_at) = match sig {
            [0x50, 0x4b, 0x03, 0x04] => (i + 30, i + 22),
            [0x50, 0x4b, 0x01, 0x02] => (i + 46, i + 24),
            _ => continue,
        };
        if zip.get(name_at..name_at + name.len()) == Some(name) {
            zip[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "local and central header of {member}");
}

#[test]
fn a_wheel_member_that_inflates_past_its_declared_size_is_refused() {
    let sb = Sandbox::new();
    let spec =
        WheelSpec::new("alpha", "1.0", "py3-none-any").file("alpha/bomb.bin", &vec![0u8; 64 << 20]);
    common::pypi::publish(&sb.path("mirror/pypi"), std::slice::from_ref(&spec), true);
    let file = sb.path("mirror/pypi/files").join(spec.filename());
    let honest = std::fs::read(&file).unwrap();
    let mut bomb = honest.clone();
    declare_size(&mut bomb, "alpha/bomb.bin", 1000);
    std::fs::write(&file, &bomb).unwrap();
    let page = sb.path("mirror/pypi/simple/alpha/index.html");
    let text = std::fs::read_to_string(&page)
        .unwrap()
        .replace(&common::sha256_hex(&honest), &common::sha256_hex(&bomb));
    std::fs::write(&page, text).unwrap();
    wants_alpha(&sb, "\"python3\"");
    sb.ok(&["lock", "test"]);
    let err = sb.fails(&["realize", "test", "--arch", "amd64"], 1);
    // The zip reader or our own cap stops it at the first byte past the declaration.
    assert!(
        err.contains("alpha/bomb.bin: ") && err.contains("declared uncompressed size")
            || err.contains("inflates past the 1000 bytes"),
        "{err}"
    );
    assert!(!sb.path("oci-out/test").exists());
    assert_store_clean(&sb, "zip bomb");
}

/// A wheel holding `alpha/bomb.bin`: `size` zero bytes, declared honestly, written without
/// holding them in memory.
fn honest_bomb_wheel(size: u64) -> Vec<u8> {
    use sha2::Digest;
    use std::io::Write;
    let dist = "alpha-1.0.dist-info";
    let mut hasher = sha2::Sha256::new();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..size / chunk.len() as u64 {
        hasher.update(&chunk);
    }
    let b64 = |d: &[u8]| {
        let mut s = String::new();
        for c in d.chunks(3) {
            let n = c.iter().fold(0u32, |a, b| a << 8 | *b as u32) << (8 * (3 - c.len()));
            for i in 0..=c.len() {
                let v = (n >> (18 - 6 * i)) & 63;
                s.push(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[v as usize]
                        as char,
                );
            }
        }
        s
    };
    let metadata = "Metadata-Version: 2.1\nName: alpha\nVersion: 1.0\n";
    let wheel = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
    let record = format!(
        "alpha/bomb.bin,sha256={},{size}\n{dist}/METADATA,sha256={},{}\n{dist}/WHEEL,sha256={},{}\n{dist}/RECORD,,\n",
        b64(&hasher.finalize()),
        b64(&sha2::Sha256::digest(metadata)),
        metadata.len(),
        b64(&sha2::Sha256::digest(wheel)),
        wheel.len(),
    );
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(size >= u32::MAX as u64);
    zip.start_file("alpha/bomb.bin", options).unwrap();
    for _ in 0..size / chunk.len() as u64 {
        zip.write_all(&chunk).unwrap();
    }
    for (name, text) in [
        (format!("{dist}/METADATA"), metadata.to_string()),
        (format!("{dist}/WHEEL"), wheel.to_string()),
        (format!("{dist}/RECORD"), record),
    ] {
        zip.start_file(name, options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[test]
fn a_wheel_that_honestly_declares_gigabytes_from_kilobytes_is_refused_without_inflating_it() {
    let sb = Sandbox::new();
    let bomb = honest_bomb_wheel(2 << 30);
    assert!(bomb.len() < 8 << 20, "{} bytes", bomb.len());
    let file = "alpha-1.0-py3-none-any.whl";
    std::fs::create_dir_all(sb.path("mirror/pypi/files")).unwrap();
    std::fs::write(sb.path("mirror/pypi/files").join(file), &bomb).unwrap();
    std::fs::create_dir_all(sb.path("mirror/pypi/simple/alpha")).unwrap();
    std::fs::write(
        sb.path("mirror/pypi/simple/alpha/index.html"),
        format!(
            "<a href=\"../../files/{file}#sha256={}\">{file}</a>\n",
            common::sha256_hex(&bomb)
        ),
    )
    .unwrap();
    wants_alpha(&sb, "\"python3\"");
    sb.ok(&["lock", "test"]);
    let err = sb.fails(&["realize", "test", "--arch", "amd64"], 1);
    assert!(
        err.contains("alpha/bomb.bin: declares 2147483648 bytes from")
            && err.contains("refused as a decompression bomb"),
        "{err}"
    );
    // The realize process never held the member: its peak stays far below 2 GiB.
    let peak = common::children_peak_rss_bytes();
    assert!(peak < 512 << 20, "peak RSS of a child: {} MiB", peak >> 20);
}

#[test]
fn packages_are_refused_for_devices_and_kept_whole_for_scripts_and_long_paths() {
    let canary = Canary::new();
    let long = format!("./usr/share/{}/{}", "d".repeat(150), "f".repeat(150));
    let sb = Sandbox::build(|main, _| {
        main.add(
            &["amd64", "arm64"],
            DebSpec::new("device", "1", "all").entry(Entry::CharDevice {
                path: "./usr/share/disk".into(),
                major: 8,
                minor: 0,
            }),
        );
        main.add(
            &["amd64", "arm64"],
            DebSpec::new("scripted", "1", "all")
                .file(&long, b"deep", 0o644)
                .member(
                    "postinst",
                    &format!("#!/bin/sh\ntouch {}/pwned\n", canary.path().display()),
                ),
        );
    });
    let with = |package: &str| {
        sb.write(
            "recipes/components/hello.toml",
            &common::HELLO_COMPONENT.replace("[\"hello\"]", &format!("[\"hello\", \"{package}\"]")),
        );
        sb.ok(&["lock", "test"]);
    };
    with("device");
    let err = sb.fails(&["realize", "test", "--arch", "amd64"], 1);
    assert!(
        err.contains("device: \"usr/share/disk\" is a device file or named pipe"),
        "{err}"
    );
    // Maintainer scripts are kept for dpkg's database, never run; a 300-byte path is kept
    // whole.
    with("scripted");
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    canary.assert_untouched("postinst");
    let tar = std::fs::read(sb.path("oci-out/test-amd64.tar")).unwrap();
    let found = common::layer_paths(&tar);
    assert!(found.iter().any(|p| p == &long[2..]), "long path missing");
    assert!(
        found
            .iter()
            .any(|p| p == "var/lib/dpkg/info/scripted.postinst"),
        "postinst not recorded"
    );
}

#[test]
fn wheels_whose_members_leave_the_environment_are_refused() {
    for (case, member) in [
        ("dot-dot", "../../../etc/evil.py"),
        ("absolute", "/etc/evil.py"),
        (".data escape", "alpha-1.0.data/data/../../../../etc/evil"),
        (
            "purelib escape",
            "alpha-1.0.data/purelib/../../../etc/evil.py",
        ),
    ] {
        let sb = Sandbox::new();
        common::pypi::publish(
            &sb.path("mirror/pypi"),
            &[WheelSpec::new("alpha", "1.0", "py3-none-any").file(member, b"pwned\n")],
            false,
        );
        wants_alpha(&sb, "\"python3\"");
        sb.ok(&["lock", "test"]);
        let err = sb.fails(&["realize", "test", "--arch", "amd64"], 1);
        assert!(err.contains("escapes the environment"), "{case}: {err}");
        assert!(!sb.path("oci-out/test").exists(), "{case}");
    }
}

#[test]
fn bundles_with_links_or_unlisted_entries_are_refused_whole() {
    let sb = Sandbox::new();
    sb.ok(&["lock", "test"]);
    sb.ok(&["fetch", "test"]);
    sb.ok(&["bundle", "export", "test", "-o", "test.bundle"]);
    let bundle = std::fs::read(sb.path("test.bundle")).unwrap();
    let site = Sandbox::new();
    let canary = Canary::new();
    // Each entry of the bundle turned into a symlink out of the store, in turn; then an
    // entry the manifest does not list.
    let entries: Vec<(tar::Header, Vec<u8>)> = tar::Archive::new(bundle.as_slice())
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (e.header().clone(), data)
        })
        .collect();
    let write = |entries: &[(tar::Header, Vec<u8>)]| {
        let mut out = tar::Builder::new(Vec::new());
        for (h, d) in entries {
            out.append(h, d.as_slice()).unwrap();
        }
        out.into_inner().unwrap()
    };
    let mut linked = entries.clone();
    let (header, _) = &mut linked[1];
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_link_name(canary.path().join("pwned")).unwrap();
    header.set_size(0);
    header.set_cksum();
    linked[1].1.clear();
    let mut extra = entries.clone();
    let mut h = tar::Header::new_ustar();
    h.set_path("objects/../../pwned")
        .unwrap_or_else(|_| h.set_path("objects/extra").unwrap());
    h.set_size(5);
    h.set_cksum();
    extra.push((h, b"pwned".to_vec()));
    for (case, bytes) in [
        ("symlink entry", write(&linked)),
        ("unlisted entry", write(&extra)),
    ] {
        site.write_bytes("hostile.bundle", &bytes);
        let err = site.fails(&["bundle", "import", "hostile.bundle"], 1);
        assert!(err.contains("nothing was imported"), "{case}: {err}");
        canary.assert_untouched(case);
        assert!(
            site.store_objects().iter().all(|o| !o.ends_with(".deb")),
            "{case}: objects imported"
        );
        assert_store_clean(&site, case);
    }
}
