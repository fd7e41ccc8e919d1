//! Python from a package index served on 127.0.0.1 (JSON and HTML pages, with and without
//! PEP 658 metadata, range requests): resolution per arch with markers, extras, yanked
//! files, Requires-Python and excludes; wheels installed into the venv layer without pip.

mod common;

use common::Sandbox;
use common::pypi::{WheelSpec, publish};
use std::io::Read;

const X86: &str = "cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64";
const ARM: &str = "cp313-cp313-manylinux_2_28_aarch64";

fn index() -> Vec<WheelSpec> {
    let mut yanked = WheelSpec::new("alpha", "2.0", "py3-none-any");
    yanked.yanked = true;
    let mut old_python = WheelSpec::new("alpha", "1.5", "py3-none-any");
    old_python.requires_python = Some("<3.10".into());
    let mut eps = WheelSpec::new("eps", "1.0", "py3-none-any").requires("zeta; extra == \"fast\"");
    eps.pep658 = true;
    let mut tool = WheelSpec::new("tool", "1.0", "py3-none-any")
        .file(
            "tool-1.0.data/scripts/tool-legacy",
            b"#!python\nprint('legacy')\n",
        )
        .file("tool-1.0.data/data/share/tool/data.txt", b"shared data\n");
    tool.entry_points = Some("[console_scripts]\ntool = tool.cli:main\n".into());
    vec![
        WheelSpec::new("alpha", "1.0", "py3-none-any"),
        yanked,
        old_python,
        WheelSpec::new("alpha", "3.0rc1", "py3-none-any"),
        WheelSpec::new("beta", "1.0", X86),
        WheelSpec::new("beta", "1.0", ARM),
        WheelSpec::new("beta", "1.0", "cp313-cp313-musllinux_1_2_x86_64"),
        WheelSpec::new("gamma", "1.0", "py3-none-any")
            .requires("delta; platform_machine == \"aarch64\""),
        WheelSpec::new("delta", "1.0", "py3-none-any"),
        eps,
        WheelSpec::new("zeta", "1.0", "py3-none-any"),
        WheelSpec::new("omega", "1.0", "py3-none-any").requires("nvidia-blob>=1"),
        WheelSpec::new("nvidia-blob", "1.0", "py3-none-any"),
        tool,
        WheelSpec::new("muslonly", "1.0", "cp313-cp313-musllinux_1_2_x86_64"),
    ]
}

fn sandbox(html: bool, requirements: &[&str], exclude: &[&str]) -> Sandbox {
    let sb = Sandbox::new();
    publish(&sb.path("mirror/pypi"), &index(), html);
    let list = |v: &[&str]| {
        v.iter()
            .map(|r| format!("{r:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    sb.write(
        "recipes/components/py.toml",
        &format!("[component]\nname = \"py\"\nafter = [\"base-system\"]\n[debian]\npackages = [\"python3\"]\n[python]\nrequirements = [{}]\nexclude = [{}]\n", list(requirements), list(exclude)),
    );
    sb.write(
        "recipes/images/test.toml",
        &common::TEST_IMAGE.replace("[\"hello\"]", "[\"py\"]"),
    );
    sb
}

fn wheels(lock: &str, arch: &str) -> Vec<String> {
    let section = lock.split(&format!("[{arch}]\n")).nth(1).unwrap();
    let python = section
        .split("python = [\n")
        .nth(1)
        .map(|s| s.split("\n]").next().unwrap())
        .unwrap_or("");
    python
        .lines()
        .map(|l| {
            l.split("file = \"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn requirements_resolve_per_arch_with_markers_extras_yanked_and_excludes() {
    for html in [false, true] {
        let sb = sandbox(
            html,
            &["alpha", "beta", "gamma", "eps[fast]", "omega"],
            &["nvidia-blob"],
        );
        sb.ok(&["lock", "test"]);
        let lock = sb.read("lockfiles/test.lock");
        assert!(lock.contains("python-indexes = [\"pypi\"]"), "{lock}");
        let amd = wheels(&lock, "amd64");
        let arm = wheels(&lock, "arm64");
        // alpha: 2.0 is yanked, 1.5 needs an older Python, 3.0rc1 is a pre-release.
        assert!(
            amd.contains(&"alpha-1.0-py3-none-any.whl".to_string()),
            "html={html}: {amd:?}"
        );
        assert!(
            amd.contains(&format!("beta-1.0-{X86}.whl"))
                && arm.contains(&format!("beta-1.0-{ARM}.whl")),
            "{amd:?} {arm:?}"
        );
        // delta only where its marker holds; zeta through the extra; nvidia-blob excluded.
        assert!(
            !amd.iter().any(|w| w.starts_with("delta-"))
                && arm.iter().any(|w| w.starts_with("delta-")),
            "{amd:?} {arm:?}"
        );
        assert!(amd.iter().any(|w| w.starts_with("zeta-")), "{amd:?}");
        assert!(!lock.contains("nvidia-blob"), "{lock}");
        assert!(!lock.contains("http"), "no URL in the lock");
    }
}

#[test]
fn a_requirement_no_wheel_satisfies_explains_itself() {
    let sb = sandbox(false, &["muslonly"], &[]);
    let err = sb.fails(&["lock", "test"], 1);
    assert!(
        err.contains("amd64: no set of Python packages satisfies the requirements")
            && err.contains("muslonly: none of its 1 files is a wheel for CPython 3.13 on x86_64"),
        "{err}"
    );
}

fn layer_files(sb: &Sandbox, arch: &str) -> Vec<(String, u32, Vec<u8>)> {
    let mut out = Vec::new();
    for layer in common::layer_blobs(&sb.path("oci-out/test"), arch) {
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(layer).unwrap())
            .read_to_end(&mut tar)
            .unwrap();
        let mut ar = tar::Archive::new(tar.as_slice());
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mode = e.header().mode().unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.push((path, mode, data));
        }
    }
    out
}

/// The content of the one file of `files` whose path ends with `suffix`.
fn installed(files: &[(String, u32, Vec<u8>)], suffix: &str) -> Vec<u8> {
    files
        .iter()
        .find(|(p, _, _)| p.ends_with(suffix))
        .map(|(_, _, d)| d.clone())
        .unwrap_or_else(|| panic!("{suffix} not installed"))
}

#[test]
fn wheels_install_into_the_virtual_environment_without_pip() {
    let sb = sandbox(false, &["tool", "gamma"], &[]);
    sb.ok(&["realize", "test", "--arch", "arm64"]);
    let files = layer_files(&sb, "arm64");
    let get = |p: &str| {
        files
            .iter()
            .find(|(f, _, _)| f == p)
            .unwrap_or_else(|| panic!("{p} missing"))
            .clone()
    };
    let site = "opt/carbon/python/lib/python3.13/site-packages";
    assert_eq!(
        get(&format!("{site}/tool/__init__.py")).2,
        b"VERSION = '1.0'\n"
    );
    // .data/scripts: executable, #!python rewritten; .data/data: under the prefix.
    let legacy = get("opt/carbon/python/bin/tool-legacy");
    assert_eq!(
        (legacy.1, String::from_utf8(legacy.2).unwrap()),
        (
            0o755,
            "#!/opt/carbon/python/bin/python\nprint('legacy')\n".to_string()
        )
    );
    assert_eq!(
        get("opt/carbon/python/share/tool/data.txt").2,
        b"shared data\n"
    );
    // Console script from entry_points.txt.
    let script = String::from_utf8(get("opt/carbon/python/bin/tool").2).unwrap();
    assert!(
        script.starts_with("#!/opt/carbon/python/bin/python\n")
            && script.contains("from tool.cli import main")
            && script.contains("sys.exit(main())"),
        "{script}"
    );
    // Installer metadata: INSTALLER, REQUESTED only for what the recipe asked for, RECORD.
    assert_eq!(
        get(&format!("{site}/tool-1.0.dist-info/INSTALLER")).2,
        b"carbon-store\n"
    );
    assert!(
        files
            .iter()
            .any(|(f, _, _)| f == &format!("{site}/gamma-1.0.dist-info/REQUESTED"))
    );
    assert!(
        !files
            .iter()
            .any(|(f, _, _)| f == &format!("{site}/delta-1.0.dist-info/REQUESTED")),
        "delta is only a dependency"
    );
    let record = String::from_utf8(get(&format!("{site}/tool-1.0.dist-info/RECORD")).2).unwrap();
    assert!(
        record.contains("../../../bin/tool,sha256=")
            && record.contains("tool/__init__.py,sha256=")
            && record.ends_with("tool-1.0.dist-info/RECORD,,\n"),
        "{record}"
    );
    // The environment itself.
    let cfg = String::from_utf8(get("opt/carbon/python/pyvenv.cfg").2).unwrap();
    assert!(
        cfg.contains("home = /usr/bin\n") && cfg.contains("version = 3.13.5\n"),
        "{cfg}"
    );
}

/// Recipes for an image `test` whose one component `py` installs `requirement` (Debian's
/// python3 and the wheel), allowing the sdists named in `build_from_source`.
fn python_image(sb: &Sandbox, requirement: &str, build_from_source: &[&str]) {
    let allowed: Vec<String> = build_from_source.iter().map(|n| format!("{n:?}")).collect();
    sb.write(
        "recipes/components/py.toml",
        &format!(
            "[component]\nname = \"py\"\n[debian]\npackages = [\"python3\"]\n[python]\nrequirements = [{requirement:?}]\nbuild-from-source = [{}]\n",
            allowed.join(", ")
        ),
    );
    sb.write(
        "recipes/images/test.toml",
        &common::TEST_IMAGE.replace("[\"hello\"]", "[\"py\"]"),
    );
}

#[test]
fn a_wheel_that_does_not_match_its_record_is_refused() {
    let sb = Sandbox::new();
    let mut bad = WheelSpec::new("bad", "1.0", "py3-none-any");
    bad.tamper = true;
    let escape = WheelSpec::new("escape", "1.0", "py3-none-any").file("../../../etc/evil", b"x");
    publish(&sb.path("mirror/pypi"), &[bad, escape], false);
    for (name, expected) in [
        ("bad", "bad/__init__.py does not match its RECORD hash"),
        (
            "escape",
            "member \"../../../etc/evil\" escapes the environment",
        ),
    ] {
        python_image(&sb, name, &[]);
        sb.ok(&["lock", "test"]);
        let err = sb.fails(&["realize", "test", "--arch", "amd64"], 1);
        assert!(err.contains(expected), "{name}: {err}");
    }
}

#[test]
fn a_wheel_whose_publisher_got_record_wrong_installs_when_the_recipe_says_so() {
    let sb = Sandbox::new();
    let mut bad = WheelSpec::new("bad", "1.0", "py3-none-any");
    bad.tamper = true;
    publish(&sb.path("mirror/pypi"), &[bad], false);
    python_image(&sb, "bad", &[]);
    let component = std::fs::read_to_string(sb.path("recipes/components/py.toml")).unwrap();
    sb.write(
        "recipes/components/py.toml",
        &format!("{component}ignore-record-hashes = [\"bad\"]\n"),
    );
    sb.ok(&["lock", "test"]);
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    // The installed RECORD lists what was installed, with its true hash.
    let files = layer_files(&sb, "amd64");
    let init = installed(&files, "site-packages/bad/__init__.py");
    let record = String::from_utf8(installed(&files, "bad-1.0.dist-info/RECORD")).unwrap();
    let line = record
        .lines()
        .find(|l| l.starts_with("bad/__init__.py,"))
        .unwrap();
    assert_eq!(
        line,
        format!(
            "bad/__init__.py,{},{}",
            carbon_store::python::install::record_hash(&init),
            init.len()
        )
    );
}

#[test]
fn a_member_the_recipe_omits_is_not_installed_and_a_stale_omission_is_an_error() {
    let sb = Sandbox::new();
    let tool =
        WheelSpec::new("tool", "1.0", "py3-none-any").file("tool/global_flags.py", b"G = 1\n");
    publish(&sb.path("mirror/pypi"), &[tool], false);
    python_image(&sb, "tool", &[]);
    let component = std::fs::read_to_string(sb.path("recipes/components/py.toml")).unwrap();
    let omit = |member: &str| {
        sb.write(
            "recipes/components/py.toml",
            &format!("{component}[python.omit-members]\ntool = [{member:?}]\n"),
        );
    };
    omit("tool/global_flags.py");
    sb.ok(&["lock", "test"]);
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    let files = layer_files(&sb, "amd64");
    let has = |suffix: &str| files.iter().any(|(f, _, _)| f.ends_with(suffix));
    assert!(
        has("site-packages/tool/__init__.py"),
        "the rest of the wheel is installed"
    );
    assert!(
        !has("site-packages/tool/global_flags.py"),
        "the omitted member is left out"
    );
    assert!(
        !files
            .iter()
            .any(|(f, _, _)| f.contains("global_flags.cpython")),
        "and gets no byte-code"
    );
    let record = String::from_utf8(installed(&files, "tool-1.0.dist-info/RECORD")).unwrap();
    assert!(!record.contains("global_flags"), "{record}");
    // A member the wheel does not have (a later release dropped it) stops the build and
    // says where the stale line is.
    omit("tool/gone.py");
    let err = sb.fails(&["realize", "test", "--arch", "amd64"], 1);
    assert!(
        err.contains("tool/gone.py is not a member of this wheel")
            && err.contains("[python.omit-members] tool"),
        "{err}"
    );
}

#[test]
fn bundles_gc_and_verify_cover_wheels() {
    let sb = sandbox(false, &["tool"], &[]);
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    sb.ok(&["fetch", "test"]);
    sb.ok(&["gc"]);
    assert!(
        sb.store_objects()
            .iter()
            .any(|o| o.ends_with("-tool-1.0-py3-none-any.whl")),
        "gc kept the locked wheel"
    );
    // What each kept input record is: an arch's Debian side (its layers' diff ids), a
    // layer (one diff id), or inputs derived from the Debian side that give no layer.
    let input_records = || {
        let mut kinds: Vec<&str> = std::fs::read_dir(sb.path("store/layers"))
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().starts_with("inputs-"))
            .map(|e| {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
                if v["diff_ids"].is_array() {
                    "debian side"
                } else if v["derived_from"].is_string() {
                    "no layer"
                } else {
                    "layer"
                }
            })
            .collect();
        kinds.sort();
        kinds
    };
    assert_eq!(
        input_records(),
        ["debian side", "layer", "no layer", "no layer"],
        "the output's Python layer and its arch's Debian side stay known, and so does what \
         the Debian side gives no byte-code or trigger caches layer"
    );
    sb.ok(&["verify"]);
    sb.ok(&["bundle", "export", "test", "-o", "test.bundle"]);
    let bundle = std::fs::read(sb.path("test.bundle")).unwrap();
    std::fs::remove_dir_all(sb.path("oci-out")).unwrap();
    sb.ok(&["gc"]);
    assert!(
        input_records().is_empty(),
        "their blobs went with the output, and the Debian side's record with them"
    );
    let manifest_end = bundle.windows(2).position(|w| w == b"\n}").unwrap();
    let manifest = String::from_utf8_lossy(&bundle[512..manifest_end]);
    assert!(
        manifest.contains("\"name\": \"tool-1.0-py3-none-any.whl\""),
        "{manifest}"
    );
}

#[test]
fn a_python_layer_built_before_from_the_same_inputs_is_reused_and_check_rebuilds_it() {
    let sb = sandbox(false, &["tool", "gamma"], &[]);
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    let first = layer_files(&sb, "amd64");
    // Spoil the stored wheels (same size, so only their hashes tell). A realize into a new
    // output directory reuses the Python layer from its inputs and never opens them.
    sb.spoil_store_objects(".whl");
    std::fs::remove_dir_all(sb.path("oci-out")).unwrap();
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    assert_eq!(layer_files(&sb, "amd64"), first);
    // --check rebuilds every layer from its sources, and so reads the spoiled wheel.
    let err = sb.fails(&["realize", "test", "--arch", "amd64", "--check"], 1);
    assert!(err.contains(".whl"), "{err}");
}

/// A PEP 517 backend in pure Python: packs `src/` and `METADATA.in` into a wheel whose
/// zip entries carry SOURCE_DATE_EPOCH.
const FAKE_BACKEND: &str = r#"import base64, hashlib, os, time, zipfile

def _hash(b):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b"=").decode()

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    meta = open("METADATA.in").read()
    field = lambda k: [l.split(": ", 1)[1] for l in meta.splitlines() if l.startswith(k + ": ")][0]
    name, version = field("Name"), field("Version")
    tag = open("TAG.in").read().strip() if os.path.exists("TAG.in") else "py3-none-any"
    dist = f"{name}-{version}.dist-info"
    members = []
    for root, dirs, files in os.walk("src"):
        for f in files:
            p = os.path.join(root, f)
            members.append((os.path.relpath(p, "src"), open(p, "rb").read()))
    members.sort()
    members.append((f"{dist}/METADATA", meta.encode()))
    members.append((f"{dist}/WHEEL", f"Wheel-Version: 1.0\nGenerator: fake\nRoot-Is-Purelib: true\nTag: {tag}\n".encode()))
    record = "".join(f"{p},{_hash(d)},{len(d)}\n" for p, d in members) + f"{dist}/RECORD,,\n"
    members.append((f"{dist}/RECORD", record.encode()))
    stamp = time.gmtime(int(os.environ["SOURCE_DATE_EPOCH"]))[:6]
    filename = f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as z:
        for p, d in members:
            z.writestr(zipfile.ZipInfo(p, stamp), d)
    return filename
"#;

/// FAKE_BACKEND as a wheel of the test index.
fn fake_backend() -> WheelSpec {
    let mut backend = WheelSpec::new("fakebackend", "1.0", "py3-none-any");
    backend.files = vec![(
        "fakebackend/__init__.py".into(),
        FAKE_BACKEND.as_bytes().to_vec(),
    )];
    backend
}

/// An sdist that FAKE_BACKEND builds: `metadata` (after Name and Version) goes into the
/// wheel's METADATA, `module` is `<name>/__init__.py`, `extra` are more source files.
fn fake_sdist(
    name: &str,
    version: &str,
    metadata: &str,
    module: &[u8],
    extra: &[(&str, &[u8])],
) -> WheelSpec {
    let mut source = WheelSpec::new(name, version, "");
    source.sdist = true;
    source.files = vec![
        (
            "pyproject.toml".into(),
            b"[build-system]\nrequires = [\"fakebackend>=1\"]\nbuild-backend = \"fakebackend\"\n"
                .to_vec(),
        ),
        (
            "METADATA.in".into(),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{metadata}")
                .into_bytes(),
        ),
        (format!("src/{name}/__init__.py"), module.to_vec()),
    ];
    for (path, data) in extra {
        source.files.push((path.to_string(), data.to_vec()));
    }
    source
}

#[test]
fn an_allowed_sdist_is_built_pinned_in_the_lock_installed_and_rebuilt_identically() {
    let sb = Sandbox::new();
    let source = fake_sdist(
        "srcpkg",
        "2.0",
        "Requires-Dist: delta\n",
        b"VALUE = 42\n",
        &[],
    );
    let delta = WheelSpec::new("delta", "1.0", "py3-none-any");
    publish(
        &sb.path("mirror/pypi"),
        &[fake_backend(), source, delta],
        false,
    );
    // Without permission the sdist is never chosen.
    python_image(&sb, "srcpkg", &[]);
    let err = sb.fails(&["lock", "test"], 1);
    assert!(
        err.contains(
            "srcpkg: the index has only source distributions; list it in `build-from-source`"
        ),
        "{err}"
    );

    python_image(&sb, "srcpkg", &["srcpkg"]);
    sb.ok(&["lock", "test"]);
    let lock = std::fs::read_to_string(sb.path("lockfiles/test.lock")).unwrap();
    assert!(
        lock.contains("file = \"srcpkg-2.0-py3-none-any.whl\"")
            && lock.contains("sdist = { project = \"srcpkg\", file = \"srcpkg-2.0.tar.gz\"")
            && lock.contains("build-requires = [{ project = \"fakebackend\", file = \"fakebackend-1.0-py3-none-any.whl\"")
            && lock.contains("file = \"delta-1.0-py3-none-any.whl\""),
        "{lock}"
    );
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    let files = layer_files(&sb, "amd64");
    let site = "opt/carbon/python/lib/python3.13/site-packages";
    assert!(
        files
            .iter()
            .any(|(p, _, d)| p == &format!("{site}/srcpkg/__init__.py") && d == b"VALUE = 42\n"),
        "the built wheel is installed"
    );

    // A store without the built wheel (a fresh machine): fetch rebuilds it, same bytes.
    let built = |sb: &Sandbox| {
        sb.store_objects()
            .into_iter()
            .filter(|o| o.ends_with("-srcpkg-2.0-py3-none-any.whl"))
            .collect::<Vec<_>>()
    };
    let first = built(&sb);
    assert_eq!(first.len(), 1, "{first:?}");
    let forget = |sb: &Sandbox| {
        for o in built(sb) {
            std::fs::remove_file(sb.path("store").join(o)).unwrap();
        }
        std::fs::remove_dir_all(sb.path("store/pypi-builds")).unwrap();
    };
    forget(&sb);
    let report = sb.ok(&["fetch", "test"]);
    assert!(report.contains("built 1 wheel(s) from sdists"), "{report}");
    assert_eq!(built(&sb), first);
    // verify names the lost wheel, and its repair builds it again.
    forget(&sb);
    let missing = String::from_utf8(sb.run(&["verify", "test"]).stdout).unwrap();
    assert!(
        missing.contains("-srcpkg-2.0-py3-none-any.whl"),
        "{missing}"
    );
    let report = sb.ok(&["verify", "--repair", "test"]);
    assert!(report.contains("built 1 wheel(s) from sdists"), "{report}");
    assert_eq!(built(&sb), first);

    // A lock whose wheel hash the build does not give is refused, naming the file.
    let wheel_sha = first[0].split('-').next().unwrap().to_string();
    let line = lock
        .lines()
        .find(|l| l.contains("file = \"srcpkg-2.0-py3-none-any.whl\""))
        .unwrap();
    let sha = line
        .split("sha256 = \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_ne!(
        sha, wheel_sha,
        "store names use the nix hash, not the sha256"
    );
    sb.write(
        "lockfiles/test.lock",
        &lock.replacen(
            &format!("sha256 = \"{sha}\", size"),
            &format!("sha256 = \"{}\", size", "0".repeat(64)),
            1,
        ),
    );
    forget(&sb);
    let err = sb.fails(&["fetch", "test"], 1);
    assert!(
        err.contains("srcpkg-2.0-py3-none-any.whl") && err.contains("not reproducible"),
        "{err}"
    );
}

#[test]
fn an_sdist_that_builds_a_platform_wheel_is_refused() {
    let sb = Sandbox::new();
    let source = fake_sdist(
        "nativepkg",
        "1.0",
        "",
        b"\n",
        &[("TAG.in", b"cp313-cp313-linux_x86_64\n")],
    );
    publish(&sb.path("mirror/pypi"), &[fake_backend(), source], false);
    python_image(&sb, "nativepkg", &["nativepkg"]);
    let err = sb.fails(&["lock", "test"], 1);
    assert!(
        err.contains("nativepkg-1.0-cp313-cp313-linux_x86_64.whl, which is not pure Python"),
        "{err}"
    );
}

/// A lock of alpha 1.0 and gamma 1.0; then the index publishes alpha 4.0 and gamma 2.0.
fn locked_then_moved_on() -> Sandbox {
    let sb = sandbox(false, &["alpha", "gamma"], &[]);
    sb.ok(&["lock", "test"]);
    let mut newer = index();
    newer.push(WheelSpec::new("alpha", "4.0", "py3-none-any"));
    newer.push(WheelSpec::new("gamma", "2.0", "py3-none-any"));
    publish(&sb.path("mirror/pypi"), &newer, false);
    sb
}

#[test]
fn lock_update_keeps_the_python_pins_it_is_not_asked_to_refresh() {
    let sb = locked_then_moved_on();
    // An option applied at realize time does not make the lock stale.
    let component = sb.read("recipes/components/py.toml");
    sb.write(
        "recipes/components/py.toml",
        &format!("{component}ignore-record-hashes = [\"gamma\"]\n"),
    );
    sb.ok(&["lock", "--check", "test"]);
    // Refreshing one package keeps every other pin.
    sb.ok(&["lock", "--update", "gamma", "--image", "test"]);
    sb.ok(&["lock", "--check", "test"]);
    let lock = sb.read("lockfiles/test.lock");
    for arch in ["amd64", "arm64"] {
        let files = wheels(&lock, arch);
        assert!(
            files.contains(&"alpha-1.0-py3-none-any.whl".to_string()),
            "{files:?}"
        );
        assert!(
            files.contains(&"gamma-2.0-py3-none-any.whl".to_string()),
            "{files:?}"
        );
    }
    sb.ok(&["lock", "--update", "alpha", "--image", "test"]);
    let lock = sb.read("lockfiles/test.lock");
    assert!(
        wheels(&lock, "amd64").contains(&"alpha-4.0-py3-none-any.whl".to_string()),
        "{lock}"
    );
}

#[test]
fn a_tightened_requirement_moves_its_package_and_keeps_the_other_pins() {
    let sb = locked_then_moved_on();
    // alpha's kept pin (1.0) no longer satisfies the recipe; gamma's still does.
    let component = sb.read("recipes/components/py.toml");
    sb.write(
        "recipes/components/py.toml",
        &component.replace("\"alpha\"", "\"alpha>=4\""),
    );
    sb.fails(&["lock", "--check", "test"], 3);
    sb.ok(&["lock", "test"]);
    let lock = sb.read("lockfiles/test.lock");
    for arch in ["amd64", "arm64"] {
        let files = wheels(&lock, arch);
        assert!(
            files.contains(&"alpha-4.0-py3-none-any.whl".to_string())
                && files.contains(&"gamma-1.0-py3-none-any.whl".to_string()),
            "{arch}: {files:?}"
        );
    }
}

#[test]
fn wheel_tags_come_from_the_file_name_when_the_recipe_says_so() {
    let sb = Sandbox::new();
    let mut sbsa = WheelSpec::new("sbsa", "1.0", "py3-none-any");
    sbsa.wheel_tag = Some("py3-none-manylinux2014_sbsa".into());
    publish(&sb.path("mirror/pypi"), &[sbsa], false);
    python_image(&sb, "sbsa", &[]);
    let wheel_file = |sb: &Sandbox| {
        let files = layer_files(sb, "amd64");
        String::from_utf8(installed(&files, "sbsa-1.0.dist-info/WHEEL")).unwrap()
    };
    // By default the wheel is installed as published, like pip and uv do.
    sb.ok(&["lock", "test"]);
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    assert!(wheel_file(&sb).contains("Tag: py3-none-manylinux2014_sbsa\n"));
    let component = sb.read("recipes/components/py.toml");
    sb.write(
        "recipes/components/py.toml",
        &format!("{component}wheel-tags-from-file-name = [\"sbsa\"]\n"),
    );
    sb.ok(&["lock", "test"]);
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    let wheel = wheel_file(&sb);
    assert!(wheel.contains("Tag: py3-none-any\n"), "{wheel}");
    assert!(!wheel.contains("sbsa"), "{wheel}");
}

#[test]
fn an_html_only_index_locks_each_file_with_its_real_size_and_realizes() {
    // PEP 503 HTML pages give no sizes; the lock must still pin them, since fetch refuses
    // anything longer than the locked size.
    let sb = sandbox(true, &["tool", "gamma"], &[]);
    sb.ok(&["lock", "test"]);
    let lock = sb.read("lockfiles/test.lock");
    let python_lines: Vec<&str> = lock.lines().filter(|l| l.contains(".whl")).collect();
    assert!(!python_lines.is_empty(), "{lock}");
    for line in &python_lines {
        assert!(!line.contains("size = 0 "), "size 0 locked: {line}");
        let file = line
            .split("file = \"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let real = std::fs::metadata(sb.path("mirror/pypi/files").join(file))
            .unwrap()
            .len();
        assert!(
            line.contains(&format!("size = {real} ")),
            "{line}: real size {real}"
        );
    }
    // A second store fetches by those sizes and realizes.
    std::fs::remove_dir_all(sb.path("store")).unwrap();
    sb.ok(&["realize", "test", "--arch", "amd64"]);
}

#[test]
fn gc_cleans_every_python_cache_by_its_own_rule() {
    let sb = sandbox(false, &["tool"], &[]);
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    let area = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(sb.path("store").join(name))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let lock = sb.read("lockfiles/test.lock");
    let pinned = lock
        .split("sha256 = \"")
        .skip(1)
        .map(|s| &s[..64])
        .find(|sha| area("pypi-metadata").contains(&format!("{sha}.METADATA")))
        .expect("the lock pins a wheel whose metadata is cached")
        .to_string();
    let stale = "0".repeat(64);
    sb.write_bytes(
        &format!("store/pypi-metadata/{stale}.METADATA"),
        b"Name: gone\n",
    );
    sb.write_bytes("store/pyc-cache/0123abcd", b"byte-code");
    sb.write(
        "store/pypi-builds/gone.json",
        &format!(r#"{{"file": "gone-1.0-py3-none-any.whl", "sha256": "{stale}", "size": 1}}"#),
    );
    sb.ok(&["gc"]);
    assert!(area("pyc-cache").is_empty(), "{:?}", area("pyc-cache"));
    let metadata = area("pypi-metadata");
    assert!(
        metadata.contains(&format!("{pinned}.METADATA")),
        "{metadata:?}"
    );
    assert!(
        !metadata.contains(&format!("{stale}.METADATA")),
        "{metadata:?}"
    );
    assert!(area("pypi-builds").is_empty(), "{:?}", area("pypi-builds"));
    // What gc kept still realizes without the network.
    sb.ok(&["--offline", "realize", "test", "--arch", "amd64"]);
}
