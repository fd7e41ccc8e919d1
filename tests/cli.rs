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
fn short_help_keeps_to_the_command_and_completions_and_manual_pages_exist() {
    let sb = Sandbox::new();
    let stdout = |args: &[&str]| {
        let out = sb.run(args);
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let short = stdout(&["realize", "-h"]);
    assert!(
        short.contains("--arch") && short.contains("--store"),
        "{short}"
    );
    assert!(
        !short.contains("--mirror") && !short.contains("--lockfiles"),
        "{short}"
    );
    let long = stdout(&["realize", "--help"]);
    assert!(
        long.contains("--mirror") && long.contains("Global options"),
        "{long}"
    );

    // TAB in bash, as a user presses it: the command, then one of its options.
    let script = sb.path("carbon-store.bash");
    std::fs::write(&script, stdout(&["completions", "bash"])).unwrap();
    let complete = |words: &[&str]| {
        let n = words.len();
        let line = format!(
            "source {}; COMP_WORDS=({}); COMP_CWORD={}; \
             f=$(complete -p carbon-store | sed 's/.*-F \\([^ ]*\\).*/\\1/'); \
             $f carbon-store {} {}; echo \"${{COMPREPLY[@]}}\"",
            script.display(),
            words.join(" "),
            n - 1,
            words[n - 1],
            words[n - 2],
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &line])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(complete(&["carbon-store", "real"]), "realize");
    assert_eq!(
        complete(&["carbon-store", "realize", "--metadata-f"]),
        "--metadata-file"
    );
    sb.fails(&["completions", "tcsh"], 2);

    let dir = sb.path("man");
    sb.ok(&["man", dir.to_str().unwrap()]);
    let page = std::fs::read_to_string(dir.join("carbon-store-realize.1")).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("metadata\\-file") || page.contains("metadata-file"));
    // man itself renders it (where man is installed).
    if let Ok(out) = std::process::Command::new("man")
        .arg("-l")
        .arg(dir.join("carbon-store.1"))
        .env("MANPAGER", "cat")
        .output()
        && out.status.success()
    {
        assert!(String::from_utf8_lossy(&out.stdout).contains("realize"));
    }
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
fn list_and_show_answer_in_json_what_they_print() {
    let sb = Sandbox::new();
    sb.ok(&["lock"]);
    let list = sb.json(&["list"], 0);
    let names = |key: &str| -> Vec<String> {
        list[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(names("images").contains(&"test".to_string()), "{list}");
    assert!(
        names("components").contains(&"base-system".to_string()),
        "{list}"
    );
    assert_eq!(list["images"][0]["description"], "test image", "{list}");

    let show = sb.json(&["show", "test"], 0);
    assert_eq!(show["image"], "test");
    assert_eq!(show["lock"], "current");
    assert_eq!(show["archs"], serde_json::json!(["amd64", "arm64"]));
    assert_eq!(show["debian"]["suites"][1], "testing-security");
    let components: Vec<&str> = show["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(components[0], "base-system");
    assert_eq!(show["components"][0]["archs"]["arm64"]["debian"], 10);
    // The totals are the lock's: one entry per Debian package pinned for the arch.
    let lock: toml::Table =
        toml::from_str(&std::fs::read_to_string(sb.path("lockfiles/test.lock")).unwrap()).unwrap();
    let pinned = lock["amd64"]["debian"].as_array().unwrap().len();
    assert_eq!(show["totals"]["amd64"]["debian"], pinned);
    assert!(show["layers"].is_null(), "not realized yet: {show}");
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    let show = sb.json(&["show", "test"], 0);
    let layers = show["layers"]["amd64"].as_array().unwrap();
    assert!(
        layers
            .iter()
            .all(|l| l["digest"].as_str().unwrap().starts_with("sha256:")),
        "{show}"
    );
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

/// compute-macos is compute for machines without NVIDIA GPUs: a package both hold differs
/// in version only where the CPU/GPU split forces it (docs/images.md, "compute and
/// compute-macos"). A lock update that widens the list fails here until the doc says why.
#[test]
fn compute_and_compute_macos_differ_only_where_the_gpu_split_forces_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_carbon-store"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "lock",
            "diff",
            "lockfiles/compute.lock",
            "lockfiles/compute-macos.lock",
        ])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let mut per_arch: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut arch = String::new();
    for line in text.lines() {
        if let Some(head) = line.strip_prefix("compute-macos ") {
            arch = head.split(':').next().unwrap().to_string();
        } else if let Some(changed) = line.strip_prefix("  ~ ") {
            let name = changed.split(" (").next().unwrap().to_string();
            per_arch.entry(arch.clone()).or_default().push(name);
        }
    }
    // vLLM (compute only) pins lark, setuptools and transformers below the latest, and
    // numba (for vLLM) numpy; Debian's CPU torch declares sympy==1.13.1.
    let documented = ["lark", "numpy", "setuptools", "sympy", "transformers"];
    for arch in ["amd64", "arm64"] {
        assert_eq!(
            per_arch.get(arch).map(Vec::as_slice).unwrap_or_default(),
            documented,
            "{arch}:\n{text}"
        );
    }
}

#[test]
fn run_refuses_bad_input_and_says_to_realize_an_image_the_engine_lacks() {
    let sb = Sandbox::new();
    let err = sb.fails(&["run", "test", "--name", "a b"], 2);
    assert!(err.contains("is not a container name"), "{err}");
    let err = sb.fails(&["run", "test", "--services", "vnc,novcn"], 2);
    assert!(err.contains("unknown service \"novcn\""), "{err}");
    assert!(err.contains("hint: use jupyter, postgres"), "{err}");

    // An engine that holds no image, and nothing realized: the error says what to run.
    let bin = sb.path("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let docker = bin.join("docker");
    std::fs::write(
        &docker,
        "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'Docker version 0'; exit 0; }\necho \"Error: No such image\" >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&docker, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let got = sb
        .cmd(&["run", "test", "--engine", "docker", "--arch", "amd64"])
        .env("PATH", path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&got.stderr);
    assert_eq!(got.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "docker has no image carbon/test:latest and oci-out/test-amd64.tar does not exist"
        ),
        "{err}"
    );
    assert!(
        err.contains("hint: build it first: carbon-store realize test --arch amd64"),
        "{err}"
    );
}
