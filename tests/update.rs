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
    let git = |args: &[&str]| {
        let o = sb
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
    };
    git(&["init", "-q"]);
    git(&["add", "lockfiles"]);
    git(&["commit", "-qm", "lock"]);
    moved_on(&sb);
    sb.ok(&["lock", "--update", "tzdata"]);
    let md = sb.ok(&["lock", "diff", "--git", "HEAD", "--format", "markdown"]);
    assert!(md.contains("| `tzdata` | 2025b-4 | 2025c-1 |  |"), "{md}");
    assert!(!md.contains("hello"), "only tzdata was updated:\n{md}");
}
