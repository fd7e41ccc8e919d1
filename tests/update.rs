//! Lockfile updates reviewed in pull requests: `lock --update PACKAGE` keeps every other
//! pin, `lock --update` refreshes all, and `lock diff` reports the change in text,
//! Markdown and JSON, between files, directories or a git revision.

mod common;

use common::Sandbox;
use common::deb::DebSpec;

fn lines_with(lock: &str, name: &str) -> Vec<String> {
    lock.lines()
        .filter(|l| l.contains(&format!("name = \"{name}\"")))
        .map(str::to_string)
        .collect()
}

/// The mirror moves on: hello 2.10-6 (needing a newer libc6), a new tzdata, and a libc6
/// security update.
fn moved_on(sb: &Sandbox) {
    sb.republish(|main, security| {
        for arch in ["amd64", "arm64"] {
            main.packages
                .get_mut(arch)
                .unwrap()
                .retain(|p| p.name != "hello" && p.name != "tzdata");
            main.add(
                &[arch],
                DebSpec::new("hello", "2.10-6", arch)
                    .field("Priority", "optional")
                    .field("Depends", "libc6 (>= 2.41-12+deb13u2), hello-data")
                    .file("./usr/bin/hello", b"hello world 6", 0o755),
            );
            main.add(
                &[arch],
                DebSpec::new("tzdata", "2025c-1", "all")
                    .field("Priority", "required")
                    .field("Depends", "debconf | debconf-2.0"),
            );
            security.packages.get_mut(arch).unwrap().clear();
            security.add(
                &[arch],
                DebSpec::new("libc6", "2.41-12+deb13u2", arch)
                    .field("Priority", "required")
                    .field("Multi-Arch", "same"),
            );
        }
    });
}

#[test]
fn updating_one_package_keeps_every_other_pin_and_takes_what_it_newly_needs() {
    let sb = Sandbox::new();
    sb.ok(&["lock"]);
    let before = sb.read("lockfiles/test.lock");
    moved_on(&sb);
    let out = sb.ok(&["lock", "--update", "hello"]);
    assert!(out.contains("test: wrote lockfiles/test.lock"), "{out}");
    let after = sb.read("lockfiles/test.lock");
    // hello moved, and libc6 with it (hello 2.10-6 needs it); tzdata kept its pin.
    assert!(
        lines_with(&after, "hello")
            .iter()
            .all(|l| l.contains("version = \"2.10-6\""))
    );
    assert!(
        lines_with(&after, "libc6")
            .iter()
            .all(|l| l.contains("version = \"2.41-12+deb13u2\""))
    );
    assert_eq!(lines_with(&after, "tzdata"), lines_with(&before, "tzdata"));
    // Only those lines changed.
    let changed: Vec<&str> = after
        .lines()
        .filter(|l| l.trim_start().starts_with("{ name") && !before.contains(l))
        .collect();
    assert_eq!(changed.len(), 4, "{changed:#?}");
    // A full update takes the rest; doing it again changes nothing.
    sb.ok(&["lock", "--update"]);
    let full = sb.read("lockfiles/test.lock");
    assert!(
        lines_with(&full, "tzdata")
            .iter()
            .all(|l| l.contains("version = \"2025c-1\""))
    );
    let out = sb.ok(&["lock", "--update"]);
    assert!(out.contains("test: lock unchanged"), "{out}");
    assert_eq!(sb.read("lockfiles/test.lock"), full);
    let err = sb.fails(&["lock", "--update", "no-such-package"], 1);
    assert!(
        err.contains("no-such-package is not pinned in any of the locks"),
        "{err}"
    );
}

#[test]
fn lock_diff_in_text_markdown_and_json() {
    let sb = Sandbox::new();
    sb.ok(&["lock"]);
    std::fs::create_dir_all(sb.path("old")).unwrap();
    std::fs::copy(sb.path("lockfiles/test.lock"), sb.path("old/test.lock")).unwrap();
    moved_on(&sb);
    sb.ok(&["lock", "--update"]);
    let text = sb.ok(&["lock", "diff", "old/test.lock", "lockfiles/test.lock"]);
    assert!(
        text.contains("test amd64: 3 changed, 0 added, 0 removed; download"),
        "{text}"
    );
    assert!(
        text.contains("  ~ libc6 2.41-12+deb13u1 → 2.41-12+deb13u2  [security]"),
        "{text}"
    );
    assert!(text.contains("  ~ hello 2.10-5 → 2.10-6\n"), "{text}");
    let md = sb.ok(&["lock", "diff", "old", "lockfiles", "--format", "markdown"]);
    assert!(md.contains("**2 security update(s)**"), "{md}");
    assert!(
        md.contains("### `test` (arm64)")
            && md.contains("| `libc6` | 2.41-12+deb13u1 | 2.41-12+deb13u2 | 🔒 security |"),
        "{md}"
    );
    let json: serde_json::Value = serde_json::from_str(&sb.ok(&[
        "-q",
        "lock",
        "diff",
        "old",
        "lockfiles",
        "--format",
        "json",
    ]))
    .unwrap();
    let changed = json["images"]["test"]["amd64"]["changed"]
        .as_array()
        .unwrap();
    assert_eq!(changed.len(), 3);
    assert!(changed.iter().any(|c| c["name"] == "tzdata"
        && c["old"] == "2025b-4"
        && c["new"] == "2025c-1"
        && c["security"] == false));
    let no_change = sb.ok(&["lock", "diff", "lockfiles", "lockfiles"]);
    assert!(no_change.contains("no changes"), "{no_change}");
}

#[test]
fn lock_diff_against_a_git_revision() {
    let sb = Sandbox::new();
    sb.ok(&["lock"]);
    sb.git(&["init", "-q"]);
    sb.git(&["add", "lockfiles"]);
    sb.git(&["commit", "-qm", "lock"]);
    moved_on(&sb);
    sb.ok(&["lock", "--update", "tzdata"]);
    let md = sb.ok(&["lock", "diff", "--git", "HEAD", "--format", "markdown"]);
    assert!(md.contains("| `tzdata` | 2025b-4 | 2025c-1 |  |"), "{md}");
    assert!(!md.contains("hello"), "only tzdata was updated:\n{md}");
}

#[test]
fn image_config_does_not_make_a_lock_stale_and_a_recipe_change_moves_only_what_it_must() {
    let sb = Sandbox::new();
    sb.ok(&["lock"]);
    let before = sb.read("lockfiles/test.lock");
    std::fs::create_dir_all(sb.path("old")).unwrap();
    std::fs::write(sb.path("old/test.lock"), &before).unwrap();
    moved_on(&sb);
    // Labels, environment and a user change the image, not what is pinned.
    sb.write(
        "recipes/images/test.toml",
        &format!(
            "{}\n[config]\nenv = {{ EDITOR = \"vi\" }}\nlabels = {{ \"org.example.team\" = \"infra\" }}\n",
            common::TEST_IMAGE
        ),
    );
    sb.ok(&["lock", "--check", "test"]);
    let out = sb.ok(&["lock", "test"]);
    assert!(out.contains("test: lock is up to date"), "{out}");
    assert_eq!(sb.read("lockfiles/test.lock"), before);
    // A new request is stale; the re-lock adds python3 and keeps every other pin, though
    // the mirror has moved on (hello, tzdata and libc6 are newer there).
    sb.write(
        "recipes/components/hello.toml",
        &common::HELLO_COMPONENT.replace("[\"hello\"]", "[\"hello\", \"python3\"]"),
    );
    sb.fails(&["lock", "--check", "test"], 3);
    sb.ok(&["lock", "test"]);
    let after = sb.read("lockfiles/test.lock");
    for name in ["hello", "tzdata", "libc6"] {
        assert_eq!(
            lines_with(&after, name),
            lines_with(&before, name),
            "{name}"
        );
    }
    let out = sb.run(&[
        "lock",
        "diff",
        "--exit-code",
        "old/test.lock",
        "lockfiles/test.lock",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("test amd64: 0 changed, 1 added, 0 removed")
            && text.contains("  + python3 3.13.5-1\n"),
        "{text}"
    );
    let out = sb.run(&["lock", "diff", "--exit-code", "lockfiles", "lockfiles"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn an_update_that_moves_no_pin_leaves_the_lock_and_its_date_alone() {
    let sb = Sandbox::new();
    sb.ok(&["lock"]);
    let before = sb.read("lockfiles/test.lock");
    std::fs::create_dir_all(sb.path("old")).unwrap();
    std::fs::write(sb.path("old/test.lock"), &before).unwrap();
    // The mirror signs new indexes, newer by a day, with the same packages.
    sb.republish(|main, security| {
        main.date += std::time::Duration::from_secs(86_400);
        security.date += std::time::Duration::from_secs(86_400);
    });
    for args in [
        &["lock", "--update", "--image", "test"][..],
        &["lock", "--update", "hello", "--image", "test"][..],
    ] {
        let out = sb.ok(args);
        assert!(out.contains("test: lock unchanged"), "{args:?}: {out}");
        assert_eq!(sb.read("lockfiles/test.lock"), before, "{args:?}");
    }
    // Once a pin moves, the lock records the indexes it now comes from and their date.
    sb.republish(|main, security| {
        main.date += std::time::Duration::from_secs(2 * 86_400);
        security.date += std::time::Duration::from_secs(2 * 86_400);
        for arch in ["amd64", "arm64"] {
            main.packages
                .get_mut(arch)
                .unwrap()
                .retain(|p| p.name != "tzdata");
            main.add(
                &[arch],
                DebSpec::new("tzdata", "2025c-1", "all")
                    .field("Priority", "required")
                    .field("Depends", "debconf | debconf-2.0"),
            );
        }
    });
    sb.ok(&["lock", "--update", "tzdata"]);
    let after = sb.read("lockfiles/test.lock");
    let epoch = |lock: &str| {
        lock.lines()
            .find(|l| l.starts_with("source-date-epoch = "))
            .unwrap()
            .to_string()
    };
    assert_ne!(epoch(&after), epoch(&before));
    let text = sb.ok(&["lock", "diff", "old/test.lock", "lockfiles/test.lock"]);
    assert!(
        text.contains("test: source-date-epoch ") && text.contains("  ~ tzdata 2025b-4 → 2025c-1"),
        "{text}"
    );
}

#[test]
fn a_pin_no_index_at_hand_still_has_moves_and_says_so() {
    let sb = Sandbox::new();
    sb.ok(&["lock"]);
    moved_on(&sb);
    // Another machine, whose store never held the indexes the lock was made from.
    sb.write(
        "recipes/components/hello.toml",
        &common::HELLO_COMPONENT.replace("[\"hello\"]", "[\"hello\", \"mawk\"]"),
    );
    let out = sb.ok(&["--store", "fresh-store", "lock", "test"]);
    assert!(
        out.contains("note: test: tzdata 2025b-4 (amd64, arm64) is in neither the current indexes nor the ones the lock was made from"),
        "{out}"
    );
    let lock = sb.read("lockfiles/test.lock");
    assert!(lines_with(&lock, "tzdata")[0].contains("2025c-1"), "{lock}");
    assert!(!lines_with(&lock, "mawk").is_empty(), "{lock}");
}
