//! Store maintenance: gc keeps what locks, outputs and roots need and waits for other
//! processes; verify finds corrupt and missing objects and --repair fetches them again.

mod common;

use common::Sandbox;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn objects(sb: &Sandbox) -> Vec<String> {
    sb.store_objects()
        .into_iter()
        .filter(|o| o.len() > 33)
        .collect()
}

#[test]
fn gc_keeps_what_locks_outputs_and_roots_need() {
    let sb = Sandbox::new();
    sb.ok(&["realize", "test"]);
    let before = objects(&sb);
    // Nothing to collect but the downloaded compressed indexes (their plain form is kept).
    let dry = sb.ok(&["gc", "--dry-run"]);
    assert!(dry.contains("would remove"), "{dry}");
    let listed: Vec<&str> = dry.lines().filter(|l| l.contains(" bytes)")).collect();
    assert!(
        listed.iter().all(
            |l| l.contains("Packages_") && (l.contains(".gz") || l.contains(".xz"))
                || l.contains("/realized/")
        ),
        "{listed:#?}"
    );
    assert_eq!(objects(&sb), before, "a dry run removes nothing");
    let out = sb.ok(&["gc"]);
    assert!(out.contains("removed") && out.contains("freed"), "{out}");
    // The build is still a no-op and every package is still there.
    assert!(
        sb.ok(&["--offline", "realize", "test"])
            .contains("test: unchanged"),
        "gc kept everything the outputs need"
    );
    let after_first = objects(&sb);
    assert!(
        after_first
            .iter()
            .any(|o| o.ends_with("-hello_2.10-5_amd64.deb"))
    );
    // An explicit root keeps a lock's packages after the lockfile is gone.
    std::fs::create_dir_all(sb.path("store/gcroots")).unwrap();
    std::fs::copy(
        sb.path("lockfiles/test.lock"),
        sb.path("store/gcroots/test.lock"),
    )
    .unwrap();
    std::fs::rename(sb.path("lockfiles/test.lock"), sb.path("test.lock.saved")).unwrap();
    std::fs::remove_dir_all(sb.path("oci-out")).unwrap();
    let out = sb.ok(&["gc"]);
    assert!(
        objects(&sb)
            .iter()
            .any(|o| o.ends_with("-hello_2.10-5_amd64.deb")),
        "{out}"
    );
    assert_eq!(
        std::fs::read_dir(sb.path("store/blobs/sha256"))
            .unwrap()
            .count(),
        0,
        "no output references the layer blobs any more"
    );
    // Without the root, the packages go too, and gc says how much it freed.
    std::fs::remove_file(sb.path("store/gcroots/test.lock")).unwrap();
    let out = sb.ok(&["gc"]);
    assert!(!objects(&sb).iter().any(|o| o.ends_with(".deb")), "{out}");
    let freed: u64 = out
        .split(" bytes)")
        .next()
        .unwrap()
        .rsplit('(')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let debs: u64 = sb
        .debs
        .iter()
        .filter(|(n, _)| !n.starts_with("usrmerge") && !n.starts_with("libc6_2.41-12_"))
        .map(|(_, d)| d.len() as u64)
        .sum();
    assert!(
        freed >= debs,
        "freed {freed} bytes, the packages alone are {debs}: {out}"
    );
}

#[test]
fn gc_waits_for_a_process_using_the_store() {
    let sb = Sandbox::new();
    sb.ok(&["lock", "test"]);
    // flock(1) and carbon-store use the same flock(2) lock on store/.lock.
    let mut holder = Command::new("flock")
        .arg("-s")
        .arg(sb.path("store/.lock"))
        .args(["sleep", "2"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let out = sb.ok(&["gc"]);
    assert!(
        started.elapsed() >= Duration::from_millis(1200),
        "gc did not wait: {:?}",
        started.elapsed()
    );
    assert!(
        out.contains("waiting for other carbon-store processes"),
        "{out}"
    );
    holder.wait().unwrap();
}

#[test]
fn verify_reports_corrupt_and_missing_objects_and_repair_refetches_them() {
    let sb = Sandbox::new();
    sb.ok(&["lock", "test"]);
    sb.ok(&["fetch", "test"]);
    let out = sb.ok(&["verify"]);
    assert!(out.contains(": 0 problem(s)"), "{out}");
    let hello = objects(&sb)
        .into_iter()
        .find(|o| o.ends_with("-hello_2.10-5_amd64.deb"))
        .unwrap();
    let dash = objects(&sb)
        .into_iter()
        .find(|o| o.ends_with("-dash_0.5.12-12_arm64.deb"))
        .unwrap();
    let path = sb.path(&format!("store/{hello}"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    std::fs::remove_file(sb.path(&format!("store/{dash}"))).unwrap();
    // Without an image named, only what the store holds is checked.
    let o = sb.run(&["verify"]);
    let listed = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1));
    assert!(!listed.contains("missing:"), "{listed}");
    let o = sb.run(&["verify", "test"]);
    assert_eq!(o.status.code(), Some(1));
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        err.contains(&format!("corrupt: store/{hello}"))
            || err.contains(&format!("corrupt: {}", path.display())),
        "{err}"
    );
    assert!(err.contains(&format!("missing: {dash}")), "{err}");
    assert!(
        err.contains("2 problem(s)") && err.contains("run `carbon-store verify --repair test`"),
        "{err}"
    );
    let out = sb.ok(&["verify", "--repair", "test"]);
    assert!(out.contains("repaired"), "{out}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        sb.debs["hello_2.10-5_amd64.deb"]
    );
    sb.ok(&["verify", "--all"]);
}

#[test]
fn gc_and_verify_report_in_json_what_they_did() {
    let sb = Sandbox::new();
    sb.ok(&["realize", "test"]);
    let dry = sb.json(&["gc", "--dry-run"], 0);
    assert_eq!(dry["dry_run"], true);
    let would: Vec<String> = dry["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert!(!would.is_empty(), "{dry}");
    let gone = sb.json(&["gc"], 0);
    assert_eq!(
        gone["removed"], dry["removed"],
        "gc removes what the dry run listed"
    );
    assert_eq!(gone["freed_bytes"], dry["freed_bytes"]);
    assert!(would.iter().all(|p| !std::path::Path::new(p).exists()));

    let hello = objects(&sb)
        .into_iter()
        .find(|o| o.ends_with("-hello_2.10-5_amd64.deb"))
        .unwrap();
    std::fs::remove_file(sb.path(&format!("store/{hello}"))).unwrap();
    let report = sb.json(&["verify", "test"], 1);
    assert_eq!(report["images"], serde_json::json!(["test"]));
    assert_eq!(report["missing"], serde_json::json!([hello]));
    assert_eq!(report["corrupt"], serde_json::json!([]));
    assert!(report["checked"].as_u64().unwrap() > 10, "{report}");
    let repaired = sb.json(&["verify", "--repair", "test"], 0);
    assert_eq!(repaired["missing"], serde_json::json!([hello]));
    assert_eq!(repaired["repair"]["missing"], serde_json::json!([]));
    assert!(sb.path(&format!("store/{hello}")).exists());
}

#[test]
fn verify_checks_the_named_images_says_each_kind_once_and_repairs_only_what_they_miss() {
    let sb = Sandbox::new();
    sb.ok(&["lock", "test"]);
    sb.ok(&["fetch", "test", "--arch", "amd64"]);
    // The store holds the amd64 packages only: no problem while nothing asks for arm64.
    sb.ok(&["verify"]);
    // One amd64 package is lost and one damaged; the image needs arm64 too.
    let store_object = |suffix: &str| {
        objects(&sb)
            .into_iter()
            .find(|o| o.ends_with(suffix))
            .unwrap()
    };
    std::fs::remove_file(sb.path(&format!(
        "store/{}",
        store_object("-hello_2.10-5_amd64.deb")
    )))
    .unwrap();
    sb.spoil_store_objects("-dash_0.5.12-12_amd64.deb");
    let o = sb.run(&["verify", "test"]);
    assert_eq!(o.status.code(), Some(1));
    let listed = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<&str> = listed.lines().collect();
    // Each kind: up to five, then how many more.
    assert_eq!(lines.len(), 7, "{listed}");
    assert!(
        lines[0].starts_with("corrupt: ") && lines[0].ends_with("-dash_0.5.12-12_amd64.deb"),
        "{listed}"
    );
    assert!(
        lines[1..6].iter().all(|l| l.starts_with("missing: ")),
        "{listed}"
    );
    assert_eq!(lines[6], "missing: … and 1 more (-v lists all)", "{listed}");
    let all = sb.run(&["-v", "verify", "test"]);
    let all = String::from_utf8_lossy(&all.stdout).into_owned();
    assert_eq!(all.lines().count(), 7, "{all}");
    assert!(all.contains("-hello_2.10-5_amd64.deb"), "{all}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("7 problem(s)") && stderr.contains("verify --repair test`"),
        "{stderr}"
    );
    // The repair fetches exactly what was corrupt or missing.
    let before = sb.server.requests().len();
    sb.ok(&["verify", "--repair", "test"]);
    assert_eq!(sb.server.requests().len() - before, 7);
    sb.ok(&["verify", "--all"]);
}
