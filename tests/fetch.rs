//! `carbon-store fetch`: downloads into the store under Nix fixed-output names, verified,
//! retried, resumable, offline-safe, and safe with two processes on one store.

mod common;

use common::server::Fault;
use common::{Sandbox, sha256_hex};
use std::process::Command;

fn locked() -> Sandbox {
    let sb = Sandbox::new();
    sb.ok(&["lock", "test"]);
    sb
}

/// Distinct file names the lock pins (an `all` package is pinned once per arch).
fn locked_files(sb: &Sandbox) -> Vec<String> {
    let mut names: Vec<String> = sb
        .read("lockfiles/test.lock")
        .lines()
        .filter_map(|l| l.split("path = \"").nth(1))
        .map(|p| {
            p.split('"')
                .next()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn deb_requests(sb: &Sandbox) -> usize {
    sb.server
        .requests()
        .iter()
        .filter(|r| r.ends_with(".deb"))
        .count()
}

#[test]
fn fetch_stores_every_artifact_under_its_nix_path_and_skips_them_next_time() {
    let sb = locked();
    let out = sb.ok(&["fetch", "test"]);
    let files = locked_files(&sb);
    let distinct = files.len();
    // 12 packages per arch, 7 of them `all` and shared.
    assert_eq!(distinct, 17);
    assert!(
        out.contains(&format!(
            "{distinct} artifacts: 0 already in the store, {distinct} downloaded"
        )),
        "{out}"
    );
    for name in &files {
        let bytes = &sb.debs[name];
        let stored = sb
            .store_objects()
            .into_iter()
            .find(|o| o.ends_with(&format!("-{name}")))
            .unwrap_or_else(|| panic!("{name} not stored"));
        assert_eq!(
            std::fs::read(sb.path(&format!("store/{stored}"))).unwrap(),
            *bytes
        );
        // Where nix is installed, its own tool agrees on the store path.
        if let Ok(o) = Command::new("nix-store")
            .args(["--print-fixed-path", "sha256", &sha256_hex(bytes), name])
            .output()
            && o.status.success()
        {
            assert_eq!(
                String::from_utf8_lossy(&o.stdout).trim(),
                format!("/nix/store/{stored}")
            );
        }
    }
    let before = deb_requests(&sb);
    let out = sb.ok(&["fetch", "test"]);
    assert!(
        out.contains(&format!(
            "{distinct} artifacts: {distinct} already in the store, 0 downloaded"
        )),
        "{out}"
    );
    assert_eq!(deb_requests(&sb), before);
    assert_eq!(sb.temp_files(), 0);
}

#[test]
fn fetch_json_counts_what_it_downloaded_and_what_was_there() {
    let sb = Sandbox::new();
    sb.ok(&["lock", "test"]);
    let first = sb.json(&["fetch", "test", "--arch", "amd64"], 0);
    assert_eq!(first["images"], serde_json::json!(["test"]));
    assert_eq!(first["archs"], serde_json::json!(["amd64"]));
    let artifacts = first["artifacts"].as_u64().unwrap();
    assert!(artifacts > 0);
    assert_eq!(first["downloaded"], artifacts, "{first}");
    assert!(first["bytes_downloaded"].as_u64().unwrap() > 0);
    let again = sb.json(&["fetch", "test", "--arch", "amd64"], 0);
    assert_eq!(again["already_present"], artifacts, "{again}");
    assert_eq!(again["downloaded"], 0);
}

#[test]
fn fetch_arch_downloads_only_that_archs_packages_and_names_the_archs_it_lacks() {
    let sb = locked();
    let out = sb.ok(&["fetch", "test", "--arch", "arm64"]);
    // 12 packages for arm64 (a runner of an image × arch matrix needs no more).
    assert!(
        out.contains("12 artifacts: 0 already in the store, 12 downloaded"),
        "{out}"
    );
    let requests = sb.server.requests();
    assert!(
        requests.iter().any(|r| r.ends_with("_arm64.deb"))
            && !requests.iter().any(|r| r.ends_with("_amd64.deb")),
        "{requests:?}"
    );
    let err = sb.fails(&["fetch", "test", "--arch", "riscv64"], 2);
    assert!(
        err.contains(
            "\"riscv64\" is not an arch carbon-store builds: amd64 (x86_64, linux/amd64) or arm64"
        ),
        "{err}"
    );
}

#[test]
fn transient_failures_are_retried() {
    let sb = locked();
    sb.server.fault(
        "/debian/pool/main/h/hello/hello_2.10-5_amd64.deb",
        Fault::Status(503),
    );
    sb.server.fault(
        "/debian/pool/main/h/hello/hello_2.10-5_amd64.deb",
        Fault::Truncate(100),
    );
    sb.server.fault(
        "/debian/pool/main/h/hello/hello_2.10-5_arm64.deb",
        Fault::Status(429),
    );
    sb.ok(&["fetch", "test"]);
    let hello = sb
        .server
        .requests()
        .iter()
        .filter(|r| r.ends_with("hello_2.10-5_amd64.deb"))
        .count();
    assert_eq!(hello, 3, "two failures then a success");
    assert!(
        sb.store_objects()
            .iter()
            .any(|o| o.ends_with("-hello_2.10-5_amd64.deb"))
    );
    assert_eq!(sb.temp_files(), 0);
}

#[test]
fn a_file_that_does_not_match_the_lock_is_refused_and_nothing_partial_remains() {
    let sb = locked();
    let path = sb.path("mirror/debian/pool/main/h/hello/hello_2.10-5_amd64.deb");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = sb.fails(&["fetch", "test"], 1);
    assert!(
        err.contains("1 download(s) failed")
            && err.contains("hello_2.10-5_amd64.deb")
            && err.contains("sha256 mismatch"),
        "{err}"
    );
    assert!(err.contains("re-running resumes"), "{err}");
    assert!(
        !sb.store_objects()
            .iter()
            .any(|o| o.ends_with("-hello_2.10-5_amd64.deb"))
    );
    assert_eq!(sb.temp_files(), 0);
    // Everything else was verified and kept.
    assert_eq!(
        sb.store_objects()
            .iter()
            .filter(|o| o.ends_with(".deb"))
            .count(),
        locked_files(&sb).len() - 1
    );
}

#[test]
fn a_missing_file_falls_back_to_the_next_mirror() {
    let sb = locked();
    let second = tempfile::tempdir().unwrap();
    // The second mirror is a plain directory (file://), as an air-gapped site might use.
    let src = sb.path("mirror/debian/pool/main/h/hello/hello_2.10-5_amd64.deb");
    let dst = second
        .path()
        .join("pool/main/h/hello/hello_2.10-5_amd64.deb");
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::rename(&src, &dst).unwrap();
    let mirrors = format!(
        "{}/debian,file://{}",
        sb.server.url,
        second.path().display()
    );
    let out = sb
        .cmd(&["fetch", "test"])
        .env("CARBON_MIRROR_DEBIAN", mirrors)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        sb.store_objects()
            .iter()
            .any(|o| o.ends_with("-hello_2.10-5_amd64.deb"))
    );
}

#[test]
fn offline_fetch_makes_no_connection_and_lists_what_is_missing() {
    let sb = locked();
    let before = sb.server.requests().len();
    let err = sb.fails(&["--offline", "fetch", "test"], 4);
    assert!(
        err.contains("offline mode: 17 artifact(s) are not in the store"),
        "{err}"
    );
    assert!(err.contains("hello_2.10-5_amd64.deb (sha256:"), "{err}");
    assert_eq!(sb.server.requests().len(), before);
    sb.ok(&["fetch"]);
    sb.ok(&["--offline", "fetch", "test"]);
}

#[test]
fn two_processes_fetching_into_one_store_both_succeed() {
    let sb = locked();
    let mut a = sb
        .cmd(&["fetch", "test"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut b = sb
        .cmd(&["fetch", "test", "-j", "1"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    for (name, bytes) in &sb.debs {
        if let Some(o) = sb
            .store_objects()
            .into_iter()
            .find(|o| o.ends_with(&format!("-{name}")))
        {
            assert_eq!(
                sha256_hex(&std::fs::read(sb.path(&format!("store/{o}"))).unwrap()),
                sha256_hex(bytes)
            );
        }
    }
    assert_eq!(sb.temp_files(), 0);
}

#[test]
fn fetch_without_a_lock_says_to_lock_first() {
    let sb = Sandbox::new();
    let err = sb.fails(&["fetch", "test"], 3);
    assert!(
        err.contains("no lockfile; run `carbon-store lock test`"),
        "{err}"
    );
}

#[test]
fn a_dead_mirror_is_one_line_with_its_cause_and_the_rest_is_kept() {
    let sb = locked();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}/debian");
    let err = sb.fails(&["--mirror", &format!("debian={dead}"), "fetch", "test"], 1);
    let causes: Vec<&str> = err.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(causes.len(), 1, "one line per mirror and cause:\n{err}");
    assert!(
        causes[0].starts_with(&format!("  {dead}: "))
            && causes[0].contains("Connection refused")
            && causes[0].contains(" file(s): ")
            && causes[0].contains(" more"),
        "{err}"
    );
    assert!(err.contains("check the mirror"), "{err}");
    // The security mirror answered: what it serves was fetched and kept.
    assert!(
        sb.store_objects()
            .iter()
            .any(|o| o.contains("-libc6_2.41-12+deb13u1_")),
        "{:?}",
        sb.store_objects()
    );
}
