//! Property tests for every parser of outside data: arbitrary bytes, and valid inputs with
//! bytes flipped, inserted, deleted or cut off, never panic, always end in a typed error or
//! a value, and never allocate (on the Rust heap) more than a bound proportional to the
//! input. The allocation is counted per thread by a counting global allocator.

mod common;

use carbon_store::deb822 as control;
use carbon_store::debian::{relation, release, signature, version};
use carbon_store::python::simple;
use common::deb::{DebSpec, Entry};
use common::pypi::WheelSpec;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the bytes this thread holds and the peak since the last reset.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    // `try_with`: a thread being torn down has no counters left.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `parse` and returns the most heap it held at once, in bytes. Library errors do not
/// capture backtraces, as in the binary (`main.rs`: `RUST_LIB_BACKTRACE=0`).
fn peak_of<R>(parse: impl FnOnce() -> R) -> usize {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
            // SAFETY: std's own environment reads take its lock; nothing here calls C getenv.
            unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
        }
    });
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    drop(parse());
    PEAK.with(|p| p.get()).max(0) as usize
}

/// What any parser may hold for an input of `len` bytes.
fn bound(len: usize) -> usize {
    (64 << 20) + 100 * len
}

/// A valid input changed: (position, byte, what to do) edits, then a cut.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((any::<usize>(), any::<u8>(), 0..3u8), 0..6),
        any::<Option<usize>>(),
    )
        .prop_map(move |(edits, cut)| {
            let mut bytes = seed.clone();
            for (at, byte, op) in edits {
                let i = if bytes.is_empty() {
                    0
                } else {
                    at % bytes.len()
                };
                match op {
                    0 if !bytes.is_empty() => bytes[i] ^= byte | 1,
                    1 => bytes.insert(i, byte),
                    _ if !bytes.is_empty() => {
                        bytes.remove(i);
                    }
                    _ => {}
                }
            }
            if let Some(c) = cut
                && !bytes.is_empty()
            {
                bytes.truncate(c % (bytes.len() + 1));
            }
            bytes
        })
}

/// Arbitrary bytes, or a seed changed.
fn input(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..2048), mutated(seed)]
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const PARAGRAPH: &str = "Package: hello\nVersion: 1:2.10-5~rc1\nArchitecture: amd64\nDepends: libc6 (>= 2.34), dash | bash:any, foo [amd64] <!nocheck>\nDescription: greet\n multi line\n .\n more\n\nPackage: b\nVersion: 1\n";

fn release_text() -> String {
    "Origin: Debian\nSuite: testing\nCodename: testing\nDate: Sat, 28 Nov 2026 21:05:53 UTC\nValid-Until: Sat, 05 Dec 2026 21:05:53 UTC\nAcquire-By-Hash: yes\nArchitectures: amd64 arm64\nComponents: main\nSHA256:\n 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 1234 main/binary-amd64/Packages\n".into()
}

fn sample_deb() -> Vec<u8> {
    DebSpec::new("sample", "1.0-1", "amd64")
        .file("./usr/bin/sample", b"#!/bin/sh\necho hi\n", 0o755)
        .entry(Entry::Symlink {
            path: "./usr/bin/alias".into(),
            target: "sample".into(),
        })
        .entry(Entry::Hardlink {
            path: "./usr/bin/hard".into(),
            target: "./usr/bin/sample".into(),
        })
        .member("postinst", "#!/bin/sh\nexit 0\n")
        .build()
}

fn sample_wheel() -> Vec<u8> {
    let mut spec = WheelSpec::new("sample", "1.0", "py3-none-any")
        .file("sample/data.txt", b"data\n")
        .file("sample-1.0.data/scripts/tool", b"#!python\nprint(1)\n");
    spec.entry_points = Some("[console_scripts]\nsample = sample:main\n".into());
    spec.build()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn deb822_paragraphs(bytes in input(PARAGRAPH.as_bytes().to_vec())) {
        let t = text(&bytes);
        let peak = peak_of(|| {
            let _ = control::parse(&t);
            control::Paragraphs::new(&t).count()
        });
        prop_assert!(peak <= bound(bytes.len()), "{peak} bytes");
    }

    #[test]
    fn debian_versions(bytes in input(b"1:2.10-5~rc1+b2".to_vec()), other in "[0-9a-z.+~:-]{0,12}") {
        let t = text(&bytes);
        if let (Ok(a), Ok(b)) = (version::Version::parse(&t), version::Version::parse(&other)) {
            // A total order: comparing both ways agrees.
            prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
            prop_assert_eq!(version::compare(&t, &other).unwrap(), a.cmp(&b));
        }
    }

    #[test]
    fn debian_relations(bytes in input(b"libc6 (>= 2.34), dash | bash:any (<< 5) [amd64] <!nocheck>".to_vec())) {
        let t = text(&bytes);
        let peak = peak_of(|| relation::parse_field(&t).map(|g| g.len()));
        prop_assert!(peak <= bound(bytes.len()), "{peak} bytes");
    }

    #[test]
    fn release_files(bytes in input(release_text().into_bytes())) {
        let t = text(&bytes);
        let peak = peak_of(|| release::Release::parse(&t).map(|r| r.date_epoch()));
        prop_assert!(peak <= bound(bytes.len()), "{peak} bytes");
    }

    #[test]
    fn signed_inrelease_files(bytes in input(
        common::archive::sign(&release_text(), common::archive::Signer::ArchiveSubkey).into_bytes()
    )) {
        let mut keyring = signature::Keyring::default();
        let key = std::fs::read(common::archive::fixtures().join("keys/archive.pub.asc")).unwrap();
        keyring.add("archive", &key).unwrap();
        let peak = peak_of(|| {
            keyring.verify_clearsigned("InRelease", &bytes, std::time::SystemTime::now())
        });
        prop_assert!(peak <= bound(bytes.len()), "{peak} bytes");
    }

    #[test]
    fn deb_archives(bytes in input(sample_deb())) {
        let peak = peak_of(|| carbon_store::unpack::deb::read_deb(&bytes[..], "fuzz", carbon_store::unpack::deb::Sink::Memory));
        prop_assert!(peak <= bound(bytes.len()), "{peak} bytes");
    }

    #[test]
    fn deb_member_size_claims(claim in 0u64..10_000_000_000, member in 0usize..3) {
        // An ar member header says its size in ASCII; the claim must not be allocated.
        let mut bytes = sample_deb();
        let mut at = 8;
        for _ in 0..member {
            let size: usize = String::from_utf8_lossy(&bytes[at + 48..at + 58]).trim().parse().unwrap();
            at += 60 + size + size % 2;
        }
        bytes[at + 48..at + 58].copy_from_slice(format!("{claim:<10}").as_bytes());
        let peak = peak_of(|| carbon_store::unpack::deb::read_deb(&bytes[..], "fuzz", carbon_store::unpack::deb::Sink::Memory));
        prop_assert!(peak <= bound(bytes.len()), "{peak} bytes");
    }

    #[test]
    fn core_metadata(bytes in input(b"Metadata-Version: 2.1\nName: a\nVersion: 1\nRequires-Dist: b>=1; extra == \"x\"\n\nbody".to_vec())) {
        let t = text(&bytes);
        let peak = peak_of(|| simple::CoreMetadata::parse(&t));
        prop_assert!(peak <= bound(bytes.len()), "{peak} bytes");
    }

    #[test]
    fn index_pages(bytes in input(format!(
        "{{\"files\": [{{\"filename\": \"a-1.0-py3-none-any.whl\", \"url\": \"../a.whl\", \"hashes\": {{\"sha256\": \"{}\"}}, \"size\": 12}}]}}",
        "ab".repeat(32)
    ).into_bytes()), html in input(format!(
        "<a href=\"../../f/a-1.0-py3-none-any.whl#sha256={}\" data-requires-python=\"&gt;=3\">a</a>",
        "cd".repeat(32)
    ).into_bytes())) {
        for page in [&bytes, &html] {
            let peak = peak_of(|| simple::parse_page("http://h/simple/a/", page));
            prop_assert!(peak <= bound(page.len()), "{peak} bytes");
        }
    }

    #[test]
    fn wheel_metadata_and_members(bytes in input(sample_wheel())) {
        let peak = peak_of(|| simple::metadata_in_wheel(bytes.clone()));
        prop_assert!(peak <= bound(bytes.len()), "{peak} bytes");
    }

    #[test]
    fn lockfiles(bytes in input(include_bytes!("../lockfiles/python-data.lock").to_vec())) {
        let t = text(&bytes);
        let peak = peak_of(|| carbon_store::lockfile::Lockfile::parse(&t));
        prop_assert!(peak <= bound(bytes.len()), "{peak} bytes");
    }
}

proptest! {
    // These write files per case; fewer cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn wheels_installed_into_a_tree(bytes in input(sample_wheel())) {
        use carbon_store::python::install::{self as python, InstallOptions, Venv};
        let dir = tempfile::tempdir().unwrap();
        let store = carbon_store::store::Store::open(dir.path()).unwrap();
        let (sha256, _) = store.insert_bytes("sample-1.0-py3-none-any.whl", &bytes).unwrap();
        let wheel = carbon_store::lockfile::PythonArtifact {
            name: "sample".into(),
            version: "1.0".into(),
            component: "py".into(),
            file: "sample-1.0-py3-none-any.whl".into(),
            sha256,
            size: bytes.len() as u64,
            built_from: None,
        };
        let venv = Venv {
            prefix: "opt/venv".into(),
            python_minor: "3.13".into(),
            python_full: "3.13.5".into(),
            system_site_packages: false,
        };
        let options = InstallOptions { requested: true, check_record: true, tags_from_file_name: false, omit: &[] };
        let mut tree = carbon_store::layer::tree::Tree::default();
        let spill = carbon_store::layer::content::Spill::new(dir.path().to_path_buf());
        let peak = peak_of(|| python::install(&store, &wheel, &venv, options, &mut tree, &spill));
        prop_assert!(peak <= bound(bytes.len()), "{peak} bytes");
        // Whatever was installed stays inside the environment.
        for path in tree.nodes.keys() {
            let inside = path == "opt" || path == "opt/venv" || path.starts_with("opt/venv/");
            prop_assert!(inside && !path.split('/').any(|c| c == ".." || c.is_empty()), "{path}");
        }
    }

    #[test]
    fn recipes(image in input(common::TEST_IMAGE.as_bytes().to_vec()),
               component in input(common::HELLO_COMPONENT.as_bytes().to_vec())) {
        let dir = tempfile::tempdir().unwrap();
        for (sub, name, bytes) in [("images", "test.toml", &image), ("components", "hello.toml", &component)] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
            std::fs::write(dir.path().join(sub).join(name), bytes).unwrap();
        }
        if let Ok(recipes) = carbon_store::recipe::Recipes::load(dir.path()) {
            for name in recipes.image_names() {
                let _ = recipes.plan(&name);
            }
        }
    }

    #[test]
    fn bundles(bytes in input(sample_bundle())) {
        let dir = tempfile::tempdir().unwrap();
        let store = carbon_store::store::Store::open(dir.path().join("store")).unwrap();
        let file = dir.path().join("in.bundle");
        std::fs::write(&file, &bytes).unwrap();
        let imported = carbon_store::store::bundle::import(&store, &file);
        // Whatever happened, nothing lies outside the store but the input itself.
        let outside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "store" && n != "in.bundle")
            .collect();
        prop_assert!(outside.is_empty(), "{outside:?}");
        if imported.is_err() {
            let names: Vec<_> = std::fs::read_dir(dir.path().join("store")).unwrap().flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() > 33)
                .collect();
            prop_assert!(names.is_empty(), "a refused bundle left {names:?}");
        }
    }
}

/// A one-object bundle, written as `bundle export` writes one.
fn sample_bundle() -> Vec<u8> {
    let object = b"package bytes".to_vec();
    let sha = common::sha256_hex(&object);
    let manifest = serde_json::json!({
        "format": 1,
        "images": ["test"],
        "objects": [{"name": "p_1_all.deb", "sha256": sha, "size": object.len(), "kind": "package"}],
        "refs": {},
        "locks": {"test": "version = 1\n"},
    });
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in [
        (
            "carbon-bundle.json".to_string(),
            serde_json::to_vec(&manifest).unwrap(),
        ),
        (format!("objects/{sha}/p_1_all.deb"), object),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_path(&path).unwrap();
        header.set_cksum();
        tar.append(&header, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap()
}
