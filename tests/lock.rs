//! `carbon-store lock`: resolution against a signed test archive served over HTTP,
//! the lockfile's content and stability, `--check`, and refusal of untrusted indexes.

mod common;

use common::archive::{Signer, days_ago};
use common::{Sandbox, sha256_hex};

fn arch_names(lock: &str, arch: &str) -> Vec<String> {
    let section = lock
        .split(&format!("[{arch}]\n"))
        .nth(1)
        .unwrap()
        .split("\n]")
        .next()
        .unwrap();
    section
        .lines()
        .filter_map(|l| l.split("name = \"").nth(1))
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

#[test]
fn lock_pins_the_closure_with_hashes_suites_and_components() {
    let sb = Sandbox::new();
    let out = sb.ok(&["lock", "test"]);
    assert!(out.contains("test: wrote lockfiles/test.lock"), "{out}");
    let lock = sb.read("lockfiles/test.lock");
    for arch in ["amd64", "arm64"] {
        // Essential set + requests + dependencies; usr-is-merged instead of usrmerge/perl;
        // debconf-2.0 through cdebconf's Provides; Recommends never.
        assert_eq!(
            arch_names(&lock, arch),
            [
                "base-files",
                "base-passwd",
                "cdebconf",
                "coreutils",
                "dash",
                "hello",
                "hello-data",
                "init-system-helpers",
                "libc6",
                "mawk",
                "tzdata",
                "usr-is-merged"
            ],
            "{arch}:\n{lock}"
        );
    }
    // The security overlay's newer libc6 wins, recorded with its suite.
    let libc = lock
        .lines()
        .find(|l| l.contains("name = \"libc6\"") && l.contains("amd64.deb"))
        .unwrap();
    assert!(
        libc.contains("version = \"2.41-12+deb13u1\"")
            && libc.contains("suite = \"testing-security\""),
        "{libc}"
    );
    assert!(
        libc.contains("path = \"pool/updates/main/l/libc6/libc6_2.41-12+deb13u1_amd64.deb\""),
        "{libc}"
    );
    // Hashes and sizes are those of the served files.
    let hello = &sb.debs["hello_2.10-5_arm64.deb"];
    let line = lock
        .lines()
        .find(|l| l.contains("hello_2.10-5_arm64.deb"))
        .unwrap();
    assert!(
        line.contains(&format!("sha256 = \"{}\"", sha256_hex(hello)))
            && line.contains(&format!("size = {} ", hello.len())),
        "{line}"
    );
    // Packages belong to the first component that needs them.
    assert!(line.contains("component = \"hello\""), "{line}");
    assert!(
        lock.lines()
            .any(|l| l.contains("name = \"dash\"") && l.contains("component = \"base-system\""))
    );
    // SOURCE_DATE_EPOCH is the newest index date (the security suite, a day ago).
    let sde: u64 = lock
        .lines()
        .find_map(|l| l.strip_prefix("source-date-epoch = "))
        .unwrap()
        .parse()
        .unwrap();
    let expected = days_ago(1)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(sde.abs_diff(expected) <= 1, "{sde} vs {expected}");
    // No URL or host in the lock: artifacts are mirror-relative.
    assert!(!lock.contains("http"), "{lock}");
}

#[test]
fn an_up_to_date_lock_is_left_byte_for_byte_and_update_reproduces_it() {
    let sb = Sandbox::new();
    sb.ok(&["lock"]);
    let first = std::fs::read(sb.path("lockfiles/test.lock")).unwrap();
    let requests = sb.server.requests().len();
    let out = sb.ok(&["lock", "test"]);
    assert!(out.contains("test: lock is up to date"), "{out}");
    assert_eq!(
        sb.server.requests().len(),
        requests,
        "an up-to-date lock needs no network"
    );
    let out = sb.ok(&["lock", "--update", "--image", "test"]);
    assert!(out.contains("lock unchanged"), "{out}");
    assert_eq!(
        std::fs::read(sb.path("lockfiles/test.lock")).unwrap(),
        first
    );
}

#[test]
fn recipe_formatting_and_comments_do_not_change_the_recipes_hash() {
    let sb = Sandbox::new();
    sb.ok(&["lock"]);
    sb.write(
        "recipes/components/hello.toml",
        "# A comment, reordered keys and other spacing.\n[debian]\npackages = [ \"hello\" ]\n\n[component]\ndescription = \"a greeting\"\nafter = [\"base-system\"]\nname = \"hello\"\n",
    );
    sb.ok(&["lock", "--check"]);
    sb.write(
        "recipes/components/hello.toml",
        &common::HELLO_COMPONENT.replace("[\"hello\"]", "[\"hello\", \"mawk\"]"),
    );
    let err = sb.fails(&["lock", "--check"], 3);
    assert!(
        err.contains("lockfiles/test.lock is stale")
            && err.contains("run `carbon-store lock test`"),
        "{err}"
    );
}

#[test]
fn lock_check_fails_for_missing_and_malformed_locks() {
    let sb = Sandbox::new();
    let err = sb.fails(&["lock", "--check", "test"], 3);
    assert!(
        err.contains("no lockfile; run `carbon-store lock test`"),
        "{err}"
    );
    sb.ok(&["lock"]);
    let text = sb.read("lockfiles/test.lock");
    sb.write(
        "lockfiles/test.lock",
        &text.replace("sha256 = \"", "sha256 = \"zz"),
    );
    let err = sb.fails(&["lock", "--check", "test"], 3);
    assert!(
        err.contains("cannot read the lockfile") && err.contains("64 lowercase hex digits"),
        "{err}"
    );
    sb.write("lockfiles/test.lock", &text[..text.len() / 2]);
    let err = sb.fails(&["lock", "--check", "test"], 3);
    assert!(err.contains("cannot read the lockfile"), "{err}");
    // `lock` repairs it.
    sb.ok(&["lock", "test"]);
    assert_eq!(sb.read("lockfiles/test.lock"), text);
}

#[test]
fn signatures_from_untrusted_or_expired_keys_and_unsigned_releases_are_refused() {
    for (signer, expected) in [
        (
            Signer::Untrusted,
            "made by a key that is not in the keyring",
        ),
        (Signer::Expired, "expired on"),
        (Signer::Unsigned, "is not a clear-signed OpenPGP message"),
    ] {
        let sb = Sandbox::with_signer(signer);
        let err = sb.fails(&["lock", "test"], 1);
        assert!(
            err.contains("testing/InRelease") && err.contains(expected),
            "{signer:?}: {err}"
        );
        assert!(!sb.path("lockfiles/test.lock").exists());
    }
    // Both signing styles Debian uses verify: an RSA signing subkey (main suite) and an
    // Ed25519 primary key (security suite) — exercised by every other test.
    let sb = Sandbox::with_signer(Signer::Release);
    sb.ok(&["lock", "test"]);
}

#[test]
fn a_release_tampered_after_signing_is_refused() {
    let sb = Sandbox::new();
    let path = sb.path("mirror/debian/dists/testing/InRelease");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("Label: Test", "Label: Evil")).unwrap();
    let err = sb.fails(&["lock", "test"], 1);
    assert!(err.contains("has no valid signature"), "{err}");
}

#[test]
fn an_expired_valid_until_is_refused() {
    let sb = Sandbox::build(|main, _| main.valid_until = Some(days_ago(1)));
    let err = sb.fails(&["lock", "test"], 1);
    assert!(
        err.contains("testing/InRelease expired on") && err.contains("Valid-Until"),
        "{err}"
    );
}

#[test]
fn a_release_for_another_suite_is_refused() {
    let sb = Sandbox::build(|main, _| main.codename = "oldstable".into());
    // The suite field still says "testing": rename both to simulate a substituted release.
    let path = sb.path("mirror/debian/dists/testing/Release");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("Suite: testing\n", "Suite: oldstable\n");
    std::fs::write(
        sb.path("mirror/debian/dists/testing/InRelease"),
        common::archive::sign(&text, Signer::ArchiveSubkey),
    )
    .unwrap();
    let err = sb.fails(&["lock", "test"], 1);
    assert!(
        err.contains("is for suite \"oldstable\", not \"testing\""),
        "{err}"
    );
}

#[test]
fn a_packages_index_that_does_not_match_the_release_is_refused() {
    let sb = Sandbox::new();
    let dir = sb.path("mirror/debian/dists/testing/main/binary-amd64/by-hash/SHA256");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        std::fs::write(&p, common::deb::xz(b"Package: evil\n")).unwrap();
    }
    let err = sb.fails(&["lock", "test"], 1);
    assert!(
        err.contains("Packages_testing_main_amd64.gz")
            && (err.contains("size mismatch") || err.contains("sha256 mismatch")),
        "{err}"
    );
    assert!(
        !sb.store_objects()
            .iter()
            .any(|o| o.ends_with("Packages_testing_main_amd64")),
        "{:?}",
        sb.store_objects()
    );
    assert_eq!(sb.temp_files(), 0);
}

#[test]
fn gzip_indexes_are_fetched_where_listed_and_xz_where_not() {
    // The main suite lists Packages.gz and .xz (gzip decodes four times faster); the
    // security suite, like Debian's, only .xz.
    let sb = Sandbox::new();
    sb.ok(&["lock", "test"]);
    let objects = sb.store_objects();
    let has = |suffix: &str| objects.iter().any(|o| o.ends_with(suffix));
    for arch in ["amd64", "arm64"] {
        assert!(
            has(&format!("-Packages_testing_main_{arch}.gz")),
            "{objects:?}"
        );
        assert!(
            !has(&format!("-Packages_testing_main_{arch}.xz")),
            "{objects:?}"
        );
        assert!(
            has(&format!("-Packages_testing-security_main_{arch}.xz")),
            "{objects:?}"
        );
        for suite in ["testing", "testing-security"] {
            assert!(
                has(&format!("-Packages_{suite}_main_{arch}")),
                "{objects:?}"
            );
        }
    }
    // Offline, from the plain indexes the two forms gave, the same lock again.
    let lock = sb.read("lockfiles/test.lock");
    std::fs::remove_file(sb.path("lockfiles/test.lock")).unwrap();
    sb.ok(&["--offline", "lock", "test"]);
    assert_eq!(sb.read("lockfiles/test.lock"), lock);
}

#[test]
fn unsatisfiable_requests_explain_themselves() {
    let sb = Sandbox::new();
    sb.write(
        "recipes/components/hello.toml",
        &common::HELLO_COMPONENT.replace("[\"hello\"]", "[\"hello\", \"libc6 (>= 3.0)\"]"),
    );
    let err = sb.fails(&["lock", "test"], 1);
    assert!(
        err.contains("image test, amd64")
            && err.contains("libc6 (>= 3.0)")
            && err.contains("the candidate is libc6 2.41-12+deb13u1"),
        "{err}"
    );
    sb.write(
        "recipes/components/hello.toml",
        &common::HELLO_COMPONENT.replace("[\"hello\"]", "[\"helo\"]"),
    );
    let err = sb.fails(&["lock", "test"], 1);
    assert!(
        err.contains("component hello: package \"helo\" is not in the index for amd64"),
        "{err}"
    );
}

#[test]
fn offline_lock_uses_the_indexes_already_in_the_store() {
    let sb = Sandbox::new();
    sb.ok(&["lock"]);
    let text = sb.read("lockfiles/test.lock");
    std::fs::remove_file(sb.path("lockfiles/test.lock")).unwrap();
    let before = sb.server.requests().len();
    sb.ok(&["--offline", "lock", "test"]);
    assert_eq!(
        sb.server.requests().len(),
        before,
        "offline lock made a request"
    );
    assert_eq!(sb.read("lockfiles/test.lock"), text);
    let fresh = Sandbox::new();
    let err = fresh.fails(&["--offline", "lock", "test"], 4);
    assert!(
        err.contains("offline mode: no InRelease of testing"),
        "{err}"
    );
}
