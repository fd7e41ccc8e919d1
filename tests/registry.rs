//! Pushing to and pulling from a real registry (Debian's `docker-registry`, started here on
//! 127.0.0.1): plain and with TLS from a CA made by the test plus htpasswd logins, pushes
//! checked with skopeo and pulled and run by Docker, an interrupted push resumed.

mod common;

use common::engine::{assert_contains_all, docker, realize, run};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `docker-registry` on 127.0.0.1, stopped when dropped.
struct Registry {
    child: Child,
    port: u16,
    storage: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// TLS material and an htpasswd file for a registry that wants logins.
struct Secure {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    htpasswd: PathBuf,
}

const USER: &str = "ci-user";
const PASSWORD: &str = "correct horse battery";

fn make_secure(dir: &Path) -> Secure {
    let p = |n: &str| dir.join(n);
    let openssl = |args: &[&str]| run(Command::new("openssl").current_dir(dir).args(args));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=carbon-store test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        p("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    let line = run(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]));
    std::fs::write(p("htpasswd"), line.trim()).unwrap();
    Secure {
        ca: p("ca.crt"),
        cert: p("server.crt"),
        key: p("server.key"),
        htpasswd: p("htpasswd"),
    }
}

fn start_registry(secure: Option<&Secure>) -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let storage = dir.path().join("data");
    let mut config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
        storage.display()
    );
    if let Some(s) = secure {
        config += &format!(
            "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: carbon-test\n    path: {}\n",
            s.cert.display(),
            s.key.display(),
            s.htpasswd.display()
        );
    }
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, config).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry is installed by scripts/engines-up");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "docker-registry did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Registry {
        child,
        port,
        storage,
        _dir: dir,
    }
}

/// `carbon-store ARGS` with its own store; returns (success, stdout, stderr).
fn carbon(
    store: &Path,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &Path)],
) -> (bool, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_carbon-store"));
    c.current_dir(common::repo())
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env("HOME", store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The sha256 of the manifest skopeo reads for `reference` (plain HTTP allowed).
fn skopeo_digest(reference: &str) -> String {
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    sha256(&out.stdout)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The digest `index.json` names under `ref_name`.
fn layout_digest(layout: &Path, ref_name: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == ref_name)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A one-arch OCI layout with one layer of `layer_size` random bytes (as gzip media type;
/// the registry does not look inside).
fn synthetic_layout(dir: &Path, layer_size: usize) -> PathBuf {
    use rand::RngCore;
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = sha256(bytes);
        std::fs::write(blobs.join(d.trim_start_matches("sha256:")), bytes).unwrap();
        (d, bytes.len())
    };
    let mut layer = vec![0u8; layer_size];
    rand::thread_rng().fill_bytes(&mut layer);
    let (layer_d, layer_n) = put(&layer);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let (config_d, config_n) = put(config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_d}","size":{config_n}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer_d}","size":{layer_n}}}]}}"#
    );
    let (manifest_d, manifest_n) = put(manifest.as_bytes());
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_d}","size":{manifest_n},"annotations":{{"org.opencontainers.image.ref.name":"latest"}}}}]}}"#
        ),
    )
    .unwrap();
    layout
}

#[test]
#[ignore = "needs docker-registry, skopeo, dockerd, qemu-user-static and the mirror; run by scripts/test"]
fn minimal_is_pushed_mounted_pulled_and_run_from_a_registry() {
    let registry = start_registry(None);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("oci-out");
    run(&mut realize("minimal", &out));
    let local = layout_digest(&out.join("minimal"), "latest");
    let store = work.path().join("store");
    let target = format!("127.0.0.1:{}/carbon/minimal:v1", registry.port);
    let layout = out.join("minimal");
    let layout = layout.to_str().unwrap();

    // The first push uploads every blob and prints the local index digest.
    let (ok, stdout, stderr) = carbon(&store, &["push", layout, &target], None, &[]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), format!("{target}@{local}"));
    assert!(stderr.contains("0 mounted, 0 already there"), "{stderr}");
    assert_eq!(skopeo_digest(&target), local, "skopeo sees another index");

    // Again: nothing is uploaded; `--json` says so as data.
    let (ok, stdout, stderr) = carbon(&store, &["push", layout, &target, "--json"], None, &[]);
    assert!(
        ok && stderr.contains(": 0 blobs uploaded (0.0 MB), 0 mounted"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["pushed"], format!("{target}@{local}"));
    assert_eq!(report["digest"], local);
    assert_eq!(report["blobs"]["uploaded"], 0);
    assert!(report["blobs"]["present"].as_u64().unwrap() > 0, "{report}");

    // Another repository of the registry gets the blobs by mount.
    let other = format!("127.0.0.1:{}/team/minimal:v1", registry.port);
    let (ok, stdout, stderr) = carbon(&store, &["push", layout, &other], None, &[]);
    assert!(
        ok && stderr.contains(": 0 blobs uploaded") && !stderr.contains(" 0 mounted"),
        "{stderr}"
    );
    assert!(stdout.contains(&local), "{stdout}");

    // Docker pulls and runs both archs (arm64 under qemu).
    for (platform, machine) in [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")] {
        let image = format!("127.0.0.1:{}/team/minimal:v1", registry.port);
        docker(&["pull", "--platform", platform, &image]);
        let got = docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--platform",
            platform,
            &image,
            "sh",
            "-c",
            "uname -m; cat /etc/debian_version",
        ]);
        assert_contains_all(&got, &[machine, "13."]);
        let _ = Command::new("/usr/bin/docker")
            .args([
                "-H",
                &std::env::var("DOCKER_HOST").unwrap(),
                "rmi",
                "--force",
                &image,
            ])
            .output();
    }

    // Pulled into a layout, every blob verified, with the same digest; that layout pushes
    // on like any other.
    let pulled = work.path().join("pulled");
    let (ok, stdout, stderr) = carbon(
        &store,
        &["pull", &target, "--out", pulled.to_str().unwrap()],
        None,
        &[],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.trim().ends_with(&local), "{stdout}");
    assert_eq!(layout_digest(&pulled, "v1"), local);
    for entry in std::fs::read_dir(pulled.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert_eq!(
            sha256(&std::fs::read(entry.path()).unwrap()),
            format!("sha256:{name}")
        );
    }
    let third = format!("127.0.0.1:{}/mirror/minimal:v1", registry.port);
    let (ok, stdout, stderr) = carbon(
        &store,
        &["push", pulled.to_str().unwrap(), &third],
        None,
        &[],
    );
    assert!(ok && stdout.contains(&local), "{stdout}{stderr}");
}

#[test]
#[ignore = "needs docker-registry and openssl (scripts/engines-up); run by scripts/test"]
fn a_tls_registry_with_logins_takes_the_users_credentials_and_names_what_is_wrong() {
    let work = tempfile::tempdir().unwrap();
    let secure = make_secure(work.path());
    let registry = start_registry(Some(&secure));
    let layout = synthetic_layout(work.path(), 3 << 20);
    let local = layout_digest(&layout, "latest");
    let store = work.path().join("store");
    let target = format!("127.0.0.1:{}/private/app:v1", registry.port);
    let layout = layout.to_str().unwrap();
    let ca = secure.ca.to_str().unwrap();

    // An unknown CA is a TLS error, not a fallback to plain HTTP.
    let (ok, _, stderr) = carbon(&store, &["push", layout, &target], None, &[]);
    assert!(
        !ok && stderr.contains("UnknownIssuer") && stderr.contains("--ca-file"),
        "{stderr}"
    );
    // No login: said so, with how to log in.
    let (ok, _, stderr) = carbon(
        &store,
        &["push", layout, &target, "--ca-file", ca],
        None,
        &[],
    );
    assert!(
        !ok && stderr.contains("none are configured") && stderr.contains("docker login"),
        "{stderr}"
    );
    // A wrong password: refused, and the secret appears nowhere.
    let wrong = "wrong-secret-4711";
    let push_as = |password: &str| {
        carbon(
            &store,
            &[
                "push",
                layout,
                &target,
                "--ca-file",
                ca,
                "--username",
                USER,
                "--password-stdin",
            ],
            Some(password),
            &[],
        )
    };
    let (ok, stdout, stderr) = push_as(wrong);
    assert!(
        !ok && stderr.contains("refused the credentials"),
        "{stderr}"
    );
    assert!(
        !stdout.contains(wrong) && !stderr.contains(wrong),
        "{stdout}{stderr}"
    );

    // The right password on stdin pushes.
    let (ok, stdout, stderr) = push_as(&format!("{PASSWORD}\n"));
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), format!("{target}@{local}"));
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));

    // docker's config.json (DOCKER_CONFIG) and podman's auth file (REGISTRY_AUTH_FILE).
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let docker_dir = work.path().join("docker-config");
    std::fs::create_dir_all(&docker_dir).unwrap();
    let config = format!(
        r#"{{"auths":{{"127.0.0.1:{}":{{"auth":"{auth}"}}}}}}"#,
        registry.port
    );
    std::fs::write(docker_dir.join("config.json"), &config).unwrap();
    let pulled = work.path().join("pulled");
    let (ok, stdout, stderr) = carbon(
        &store,
        &[
            "pull",
            &target,
            "--out",
            pulled.to_str().unwrap(),
            "--ca-file",
            ca,
        ],
        None,
        &[("DOCKER_CONFIG", &docker_dir)],
    );
    assert!(ok && stdout.contains(&local), "{stderr}");
    let auth_file = work.path().join("auth.json");
    std::fs::write(&auth_file, &config).unwrap();
    let (ok, _, stderr) = carbon(
        &store,
        &[
            "push",
            layout,
            &format!("127.0.0.1:{}/private/copy:v1", registry.port),
            "--ca-file",
            ca,
        ],
        None,
        &[("REGISTRY_AUTH_FILE", &auth_file)],
    );
    assert!(ok, "{stderr}");
}

#[test]
#[ignore = "needs docker-registry and openssl (scripts/engines-up); run by scripts/test"]
fn realize_push_logs_in_with_a_password_read_once_from_standard_input() {
    let work = tempfile::tempdir().unwrap();
    let secure = make_secure(work.path());
    let registry = start_registry(Some(&secure));
    let sb = common::Sandbox::new();
    let target = format!("127.0.0.1:{}/private/test:v1", registry.port);
    let mut c = sb.cmd(&[
        "realize",
        "test",
        "--push",
        &target,
        "--ca-file",
        secure.ca.to_str().unwrap(),
        "--username",
        USER,
        "--password-stdin",
    ]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let local = layout_digest(&sb.path("oci-out/test"), "latest");
    assert!(text.contains(&format!("{target}@{local}")), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
}

/// A TCP relay to a registry that holds back the second chunk of an upload: requests pass
/// until a second `PATCH` starts, whose bytes are kept (the registry then holds exactly the
/// first chunk) until `release`, after which held connections are closed and new ones
/// pass.
struct Relay {
    port: u16,
    holding: std::sync::Arc<std::sync::atomic::AtomicBool>,
    released: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    fn start(registry_port: u16) -> Relay {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let holding = Arc::new(AtomicBool::new(false));
        let released = Arc::new(AtomicBool::new(false));
        let patches = Arc::new(AtomicUsize::new(0));
        let (h, r) = (holding.clone(), released.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", registry_port)) else {
                    continue;
                };
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (h, r, patches) = (h.clone(), r.clone(), patches.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 1 << 20];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if buf.starts_with(b"PATCH ")
                            && !r.load(Ordering::SeqCst)
                            && patches.fetch_add(1, Ordering::SeqCst) == 1
                        {
                            h.store(true, Ordering::SeqCst);
                            while !r.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(10));
                            }
                            break;
                        }
                        if s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s_out.shutdown(std::net::Shutdown::Both);
                    let _ = c_in.shutdown(std::net::Shutdown::Both);
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                    let _ = c_out.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Relay {
            port,
            holding,
            released,
        }
    }
}

/// Bytes the registry holds of unfinished uploads.
fn uploading_bytes(storage: &Path) -> u64 {
    fn walk(dir: &Path, in_uploads: bool, total: &mut u64) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let uploads = in_uploads || e.file_name() == "_uploads";
            if path.is_dir() {
                walk(&path, uploads, total);
            } else if uploads && e.file_name() == "data" {
                *total += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    let mut total = 0;
    walk(storage, false, &mut total);
    total
}

#[test]
#[ignore = "needs docker-registry and skopeo (scripts/engines-up); run by scripts/test"]
fn a_push_killed_in_the_middle_of_a_blob_completes_on_the_next_run() {
    use std::sync::atomic::Ordering;
    let registry = start_registry(None);
    let work = tempfile::tempdir().unwrap();
    let layout = synthetic_layout(work.path(), 56 << 20);
    let local = layout_digest(&layout, "latest");
    let store = work.path().join("store");
    let relay = Relay::start(registry.port);
    let target = format!("127.0.0.1:{}/resume/app:v1", relay.port);
    let push = || {
        Command::new(env!("CARGO_BIN_EXE_carbon-store"))
            .arg("--store")
            .arg(&store)
            .args(["push", layout.to_str().unwrap(), &target])
            .env("HOME", &store)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    // Killed while its second chunk (of four) is on the way: the registry has the first.
    let mut first = push();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !relay.holding.load(Ordering::SeqCst) {
        assert!(
            first.try_wait().unwrap().is_none(),
            "the push ended before its second chunk"
        );
        assert!(Instant::now() < deadline, "the upload did not get going");
        std::thread::sleep(Duration::from_millis(10));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(uploading_bytes(&registry.storage), 16 << 20);
    relay.released.store(true, Ordering::SeqCst);

    // The next run continues that upload: 40 of the 56 MiB are sent.
    let out = push().wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 blobs uploaded (41.9 MB, 1 resumed)"),
        "{stderr}"
    );
    assert_eq!(stdout.trim(), format!("{target}@{local}"));
    assert_eq!(skopeo_digest(&target), local);
}

/// A second working copy of a sandbox: its recipes and lockfiles, an empty store, mirrors
/// that point nowhere unless `mirrors` (then the sandbox's own).
fn second_copy(sb: &common::Sandbox, mirrors: bool, args: &[&str]) -> (tempfile::TempDir, Command) {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["recipes", "lockfiles"] {
        run(Command::new("cp")
            .arg("-r")
            .arg(sb.path(sub))
            .arg(dir.path()));
    }
    let mut c = sb.cmd(args);
    c.current_dir(dir.path()).env("HOME", dir.path());
    if !mirrors {
        c.env("CARBON_MIRROR_DEBIAN", "http://127.0.0.1:9/debian")
            .env(
                "CARBON_MIRROR_DEBIAN_SECURITY",
                "http://127.0.0.1:9/debian-security",
            )
            .env("CARBON_MIRROR_PYPI", "http://127.0.0.1:9/pypi/simple");
    }
    (dir, c)
}

fn output(mut c: Command) -> (bool, String) {
    let out = c.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
#[ignore = "needs docker-registry (scripts/engines-up); run by scripts/test"]
fn a_registry_cache_feeds_an_empty_store_and_wrong_bytes_from_it_are_refused() {
    let registry = start_registry(None);
    let sb = common::Sandbox::new();
    sb.ok(&["realize", "test"]);
    let built = common::digests(&sb.path("oci-out"));
    let cache = format!("127.0.0.1:{}/ci/cache", registry.port);

    // Store A pushes its cache: one artifact per arch, tagged by image, arch and lock.
    let out = sb
        .cmd(&["cache", "push", "test", "--to", &cache])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{cache}:test-amd64-"))
            && stdout.contains(&format!("{cache}:test-arm64-")),
        "{stdout}"
    );

    // Store B, empty, every mirror unreachable: the same images from the cache alone.
    let (dir, c) = second_copy(&sb, false, &["realize", "test", "--cache", &cache]);
    let (ok, text) = output(c);
    assert!(ok, "{text}");
    assert_eq!(common::digests(&dir.path().join("oci-out")), built);
    assert!(text.contains("signed indexes from the cache"), "{text}");

    // The signed indexes came too: B locks again offline, against them, to the same lock.
    let lock_path = dir.path().join("lockfiles/test.lock");
    let locked = std::fs::read_to_string(&lock_path).unwrap();
    std::fs::remove_file(&lock_path).unwrap();
    let mut c = sb.cmd(&["--offline", "lock", "test"]);
    c.current_dir(dir.path()).env("HOME", dir.path());
    let (ok, text) = output(c);
    assert!(ok, "{text}");
    assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), locked);

    // A cache whose copy of one package holds other bytes: refused, taken from the mirror.
    let blobs = registry.storage.join("docker/registry/v2/blobs/sha256");
    let lock = std::fs::read_to_string(sb.path("lockfiles/test.lock")).unwrap();
    let sha = lock
        .split("path = \"pool/")
        .nth(1)
        .and_then(|rest| rest.split("sha256 = \"").nth(1))
        .map(|s| s[..64].to_string())
        .expect("the lock pins a package");
    let data = blobs.join(&sha[..2]).join(&sha).join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let (dir, c) = second_copy(&sb, true, &["realize", "test", "--cache", &cache]);
    let (ok, text) = output(c);
    assert!(ok, "{text}");
    assert!(
        text.contains("refused from the cache, taken from the mirror")
            && text.contains("other bytes"),
        "{text}"
    );
    assert_eq!(common::digests(&dir.path().join("oci-out")), built);
}

/// Every file name under `dir/blobs/sha256` (none when it does not exist).
fn blob_names(dir: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(dir.join("blobs/sha256"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[ignore = "needs docker-registry and skopeo (scripts/engines-up); run by scripts/test"]
fn realize_push_uploads_layers_as_built_and_with_format_none_keeps_none_on_disk() {
    let registry = start_registry(None);
    let sb = common::Sandbox::new();
    sb.ok(&["realize", "test"]);
    let layout = sb.path("oci-out/test");
    let local = layout_digest(&layout, "latest");

    // An empty store builds and pushes without writing an image: the registry gets the
    // index the layout holds, and the store keeps no layer once the registry has it.
    let target = format!("127.0.0.1:{}/carbon/test:v1", registry.port);
    let (dir, c) = second_copy(
        &sb,
        true,
        &["realize", "test", "--format", "none", "--push", &target],
    );
    let (ok, text) = output(c);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("{target}@{local}")), "{text}");
    assert_eq!(skopeo_digest(&target), local);
    assert!(!dir.path().join("oci-out").exists(), "an image was written");
    let kept = blob_names(&dir.path().join("store"));
    let layers = blob_names(&layout);
    assert!(
        kept.intersection(&layers).next().is_none(),
        "layers left in the store: {kept:?}"
    );

    // What the registry serves is the layout, blob for blob.
    let pulled = dir.path().join("pulled");
    let (ok, _, stderr) = carbon(
        &dir.path().join("store"),
        &["pull", &target, "--out", pulled.to_str().unwrap()],
        None,
        &[],
    );
    assert!(ok, "{stderr}");
    assert_eq!(blob_names(&pulled), layers);

    // The SBOMs and provenance went along as referrers (this registry has no referrers
    // API: under the fallback tag), came back with the pull, and an independent rebuild
    // from the registry's copy finds it identical.
    let (ok, spdx, stderr) = carbon(
        &dir.path().join("store"),
        &["sbom", pulled.to_str().unwrap(), "--arch", "amd64"],
        None,
        &[],
    );
    assert!(ok, "{stderr}");
    assert!(spdx.contains("\"spdxVersion\":\"SPDX-2.3\""), "{spdx}");
    let text = sb.ok(&["verify-image", &target]);
    assert!(text.contains("identical: test amd64 sha256:"), "{text}");
    assert!(text.contains("identical: test arm64 sha256:"), "{text}");

    // A realize whose outputs are intact builds nothing and pushes its layout.
    let again = format!("127.0.0.1:{}/carbon/test:v2", registry.port);
    let text = sb.ok(&["realize", "test", "--push", &again]);
    assert!(
        text.contains("unchanged") && text.contains(&format!("{again}@{local}")),
        "{text}"
    );

    // With only a docker archive to show for it, an intact realize builds again (from
    // its cached layers) and pushes what it built.
    let archive = format!("127.0.0.1:{}/carbon/test:v3", registry.port);
    sb.ok(&["realize", "test", "--format", "docker"]);
    let text = sb.ok(&["realize", "test", "--format", "docker", "--push", &archive]);
    assert!(text.contains(&format!("{archive}@{local}")), "{text}");

    // A registry that is not there is reported before anything is built.
    let dead = format!("127.0.0.1:{}/carbon/test:v1", free_port());
    let (dir, c) = second_copy(&sb, true, &["realize", "test", "--push", &dead]);
    let (ok, text) = output(c);
    assert!(!ok && text.contains("Connection refused"), "{text}");
    assert!(!dir.path().join("oci-out").exists(), "{text}");

    // Without --push, `none` would build for nothing.
    let text = sb.fails(&["realize", "test", "--format", "none"], 2);
    assert!(text.contains("--format none"), "{text}");
}

/// A token server for a registry with token auth: answers `GET /token` for `USER` and
/// `PASSWORD` (Basic) with a JWT signed by `key` (its certificate in `x5c`) granting the
/// scopes asked for; anonymous requests get a token granting nothing. Counts requests.
fn token_server(
    dir: &Path,
    service: &'static str,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use base64::Engine;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let pem = std::fs::read_to_string(dir.join("token.crt")).unwrap();
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let key = dir.join("token.key");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
            let expected = format!(
                "authorization: basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
            );
            let authorized = head
                .lines()
                .any(|l| l.trim().eq_ignore_ascii_case(&expected));
            let mut access = Vec::new();
            for (k, v) in url_pairs(query) {
                if k == "scope" && authorized {
                    let parts: Vec<&str> = v.split(':').collect();
                    if parts.len() == 3 {
                        access.push(serde_json::json!({
                            "type": parts[0], "name": parts[1],
                            "actions": parts[2].split(',').collect::<Vec<_>>(),
                        }));
                    }
                }
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [der]});
            let claims = serde_json::json!({
                "iss": "carbon-test-issuer", "sub": USER, "aud": service,
                "exp": now + 600, "nbf": now - 10, "iat": now - 10,
                "jti": format!("{now}-{}", access.len()), "access": access,
            });
            let signing_input = format!(
                "{}.{}",
                b64.encode(header.to_string()),
                b64.encode(claims.to_string())
            );
            let mut sign = Command::new("openssl")
                .args(["dgst", "-sha256", "-sign"])
                .arg(&key)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            sign.stdin
                .take()
                .unwrap()
                .write_all(signing_input.as_bytes())
                .unwrap();
            let signature = sign.wait_with_output().unwrap().stdout;
            let body = serde_json::json!({
                "token": format!("{signing_input}.{}", b64.encode(signature)),
                "expires_in": 600,
            })
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, count)
}

/// `k=v` pairs of a query string, percent-decoded.
fn url_pairs(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

#[test]
#[ignore = "needs docker-registry and openssl (scripts/engines-up); run by scripts/test"]
fn a_registry_with_token_auth_gets_a_bearer_token_for_the_scopes_of_the_push() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    run(Command::new("openssl").current_dir(dir).args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "token.key",
        "-out",
        "token.crt",
        "-days",
        "2",
        "-subj",
        "/CN=carbon-test token signer",
    ]));
    let (token_port, token_requests) = token_server(dir, "carbon-test");
    let port = free_port();
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: carbon-test\n    issuer: carbon-test-issuer\n    rootcertbundle: {}\n",
        dir.join("data").display(),
        dir.join("token.crt").display()
    );
    std::fs::write(dir.join("config.yml"), config).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _registry = Registry {
        child,
        port,
        storage: dir.join("data"),
        _dir: tempfile::tempdir().unwrap(),
    };
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let layout = synthetic_layout(dir, 1 << 20);
    let local = layout_digest(&layout, "latest");
    let store = dir.join("store");
    let target = format!("127.0.0.1:{port}/tok/app:v1");

    // Anonymous: the token grants nothing, and that is said.
    let (ok, _, stderr) = carbon(
        &store,
        &["push", layout.to_str().unwrap(), &target],
        None,
        &[],
    );
    assert!(!ok && stderr.contains("none are configured"), "{stderr}");
    // With a login: one token for the push's scope serves every request.
    let before = token_requests.load(std::sync::atomic::Ordering::SeqCst);
    let (ok, stdout, stderr) = carbon(
        &store,
        &[
            "push",
            layout.to_str().unwrap(),
            &target,
            "--username",
            USER,
            "--password-stdin",
        ],
        Some(PASSWORD),
        &[],
    );
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), format!("{target}@{local}"));
    let asked = token_requests.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert!(
        (1..=2).contains(&asked),
        "{asked} token requests for one push"
    );
    // Pulled back with a pull-scoped token.
    let pulled = dir.join("pulled");
    let (ok, stdout, stderr) = carbon(
        &store,
        &[
            "pull",
            &target,
            "--out",
            pulled.to_str().unwrap(),
            "--username",
            USER,
            "--password-stdin",
        ],
        Some(PASSWORD),
        &[],
    );
    assert!(ok && stdout.contains(&local), "{stderr}");
}

#[test]
#[ignore = "needs docker-registry (scripts/engines-up); run by scripts/test"]
fn a_registry_cache_carries_npm_tarballs_by_their_sha512() {
    let registry = start_registry(None);
    let sb = common::npm::sandbox();
    sb.ok(&["realize", "test"]);
    let built = common::digests(&sb.path("oci-out"));
    let cache = format!("127.0.0.1:{}/ci/cache", registry.port);
    sb.ok(&["cache", "push", "test", "--to", &cache]);

    // The registry holds each npm tarball under the sha512 the lock pins.
    let lock = sb.read("lockfiles/test.lock");
    let sri = lock
        .split("integrity = \"sha512-")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the lock pins an npm package");
    let hex: String = {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sri)
            .unwrap();
        raw.iter().map(|b| format!("{b:02x}")).collect()
    };
    let head = run(Command::new("curl").args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-I",
        &format!(
            "http://127.0.0.1:{}/v2/ci/cache/blobs/sha512:{hex}",
            registry.port
        ),
    ]));
    assert_eq!(head.trim(), "200");

    // An empty store with every mirror and the npm registry unreachable: the same images.
    let (dir, mut c) = second_copy(&sb, false, &["realize", "test", "--cache", &cache]);
    c.env("CARBON_MIRROR_NPM", "http://127.0.0.1:9/npm");
    let (ok, text) = output(c);
    assert!(ok, "{text}");
    assert_eq!(common::digests(&dir.path().join("oci-out")), built);
    assert!(text.contains("signed indexes from the cache"), "{text}");

    // Locking npm packages offline needs the registry's metadata, which no cache carries:
    // said so, with the offline exit code.
    std::fs::remove_file(dir.path().join("lockfiles/test.lock")).unwrap();
    let mut c = sb.cmd(&["--offline", "lock", "test"]);
    c.current_dir(dir.path()).env("HOME", dir.path());
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("no bundle or registry cache carries"),
        "{stderr}"
    );
}
