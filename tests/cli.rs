//! The command line as a user meets it: help, list, show, recipe errors, mirror errors.

mod common;

use common::Sandbox;

#[test]
fn help_and_usage_errors_have_documented_exit_codes() {
    let sb = Sandbox::new();
    let out = sb.ok(&["--help"]);
    for cmd in [
        "lock",
        "fetch",
        "list",
        "show",
        "--offline",
        "--mirror",
        "Exit codes",
    ] {
        assert!(out.contains(cmd), "help lacks {cmd}:\n{out}");
    }
    sb.fails(&["--no-such-flag"], 2);
    sb.fails(&["show"], 2);
}

#[test]
fn list_shows_images_and_components_with_descriptions() {
    let sb = Sandbox::new();
    let out = sb.ok(&["list"]);
    assert!(
        out.contains("images:\n  test") && out.contains("test image"),
        "{out}"
    );
    assert!(
        out.contains("base-system") && out.contains("test base") && out.contains("a greeting"),
        "{out}"
    );
}

#[test]
fn show_reports_components_archs_counts_and_sizes_from_the_lock() {
    let sb = Sandbox::new();
    sb.ok(&["lock"]);
    let out = sb.ok(&["show", "test"]);
    assert!(out.contains("archs:       amd64, arm64"), "{out}");
    assert!(
        out.contains("debian:      testing (testing, testing-security)"),
        "{out}"
    );
    let base = out
        .lines()
        .find(|l| l.trim_start().starts_with("base-system"))
        .unwrap();
    assert!(
        base.contains("amd64: 10 packages") && base.contains("arm64: 10 packages"),
        "{base}"
    );
    let hello = out
        .lines()
        .find(|l| l.trim_start().starts_with("hello "))
        .unwrap();
    assert!(hello.contains("amd64: 2 packages"), "{hello}");
    assert!(out.contains("total amd64: 12 packages"), "{out}");
    // base-system comes first: hello names it in `after`.
    assert!(out.find("  base-system").unwrap() < out.find("  hello").unwrap());
}

#[test]
fn recipe_errors_name_the_file_line_and_key() {
    let sb = Sandbox::new();
    sb.write(
        "recipes/components/hello.toml",
        "[component]\nname = \"hello\"\n\n[debian]\npackges = [\"hello\"]\n",
    );
    let err = sb.fails(&["lock", "test"], 1);
    assert!(
        err.contains("recipes/components/hello.toml")
            && err.contains("line 5")
            && err.contains("unknown field `packges`"),
        "{err}"
    );
    sb.write(
        "recipes/components/hello.toml",
        "[component]\nname = \"hello\"\n[debian]\npackages = \"hello\"\n",
    );
    let err = sb.fails(&["lock", "test"], 1);
    assert!(
        err.contains("line 4") && err.contains("invalid type"),
        "{err}"
    );
    sb.write(
        "recipes/components/hello.toml",
        "[component]\nname = \"greeting\"\n",
    );
    let err = sb.fails(&["list"], 1);
    assert!(
        err.contains("the recipe is named \"greeting\" but the file is \"hello\".toml"),
        "{err}"
    );
}

#[test]
fn unknown_names_suggest_the_closest_and_cycles_are_reported() {
    let sb = Sandbox::new();
    sb.write(
        "recipes/images/test.toml",
        &common::TEST_IMAGE.replace("[\"hello\"]", "[\"helo\"]"),
    );
    let err = sb.fails(&["lock", "test"], 1);
    assert!(
        err.contains("image test: no component named \"helo\"")
            && err.contains("did you mean \"hello\"?"),
        "{err}"
    );
    let err = sb.fails(&["show", "tset"], 1);
    assert!(
        err.contains("no image named \"tset\"") && err.contains("did you mean \"test\"?"),
        "{err}"
    );
    sb.write(
        "recipes/images/a.toml",
        "[image]\nname = \"a\"\nfrom = \"b\"\n",
    );
    sb.write(
        "recipes/images/b.toml",
        "[image]\nname = \"b\"\nfrom = \"a\"\n",
    );
    let err = sb.fails(&["show", "a"], 1);
    assert!(err.contains("cycle in image `from`: a → b → a"), "{err}");
}

#[test]
fn from_inherits_components_source_archs_and_config() {
    let sb = Sandbox::new();
    sb.write(
        "recipes/components/extra.toml",
        "[component]\nname = \"extra\"\n[debian]\npackages = [\"mawk\"]\n",
    );
    sb.write(
        "recipes/images/child.toml",
        "[image]\nname = \"child\"\nfrom = \"test\"\ncomponents = [\"extra\"]\n",
    );
    sb.ok(&["lock", "child"]);
    let out = sb.ok(&["show", "child"]);
    assert!(out.contains("archs:       amd64, arm64"), "{out}");
    let order: Vec<&str> = out
        .lines()
        .skip_while(|l| *l != "components:")
        .skip(1)
        .take(3)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(order, ["base-system", "hello", "extra"]);
    // mawk is essential-adjacent (required) so it already belongs to base-system: extra is empty.
    let extra = out
        .lines()
        .find(|l| l.trim_start().starts_with("extra"))
        .unwrap();
    assert!(extra.contains("amd64: 0 packages"), "{extra}");
}

#[test]
fn a_missing_mirror_says_what_to_set() {
    let sb = Sandbox::new();
    let out = sb
        .cmd(&["lock", "test"])
        .env_remove("CARBON_MIRROR_DEBIAN")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("no mirror is configured for `debian`")
            && err.contains("CARBON_MIRROR_DEBIAN=URL")
            && err.contains("--mirror debian=URL"),
        "{err}"
    );
    // The host's apt sources are the last resort.
    sb.write("empty-apt/sources.list", &format!("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {}/debian testing main\n", sb.server.url));
    let out = sb
        .cmd(&["lock", "test"])
        .env_remove("CARBON_MIRROR_DEBIAN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_committed_locks_match_the_committed_recipes() {
    // Runs in the repository itself: no network is needed to check a lock.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_carbon-store"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["lock", "--check"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("minimal: lock is up to date"), "{err}");
}
