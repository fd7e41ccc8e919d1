//! End-to-end with the real engines users run: `minimal` realized from the live mirror for
//! amd64 and arm64, loaded by Docker 20.10 (Debian's docker.io) and run — arm64 under
//! qemu-user-static — and its OCI layout read by skopeo and unpacked by umoci.
//! Ignored by plain `cargo test`; `scripts/test` starts the engines (scripts/engines-up)
//! and runs it with DOCKER_HOST set.

mod common;

use common::engine::{assert_contains_all, assert_valid_sboms, docker, load, realize, run};
use common::repo;
use std::path::Path;
use std::process::Command;

#[test]
#[ignore = "needs dockerd, skopeo, umoci, qemu-user-static and the mirror; run by scripts/test"]
fn minimal_loads_and_runs_in_docker_and_reads_in_skopeo_and_umoci() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("oci-out");
    let report = run(&mut realize("minimal", &out));
    assert!(
        report.contains("minimal amd64: manifest sha256:")
            && report.contains("minimal arm64: manifest sha256:"),
        "{report}"
    );
    // A single-threaded build into another directory, in another time zone, writes the
    // same layout and the same docker archive (compared before loading deletes it).
    let out2 = work.path().join("oci-out-1thread");
    run(realize("minimal", &out2)
        .env("RAYON_NUM_THREADS", "1")
        .env("TZ", "Asia/Kolkata"));
    assert_eq!(
        std::fs::read(out.join("minimal/index.json")).unwrap(),
        std::fs::read(out2.join("minimal/index.json")).unwrap()
    );
    assert_eq!(
        std::fs::read(out.join("minimal-amd64.tar")).unwrap(),
        std::fs::read(out2.join("minimal-amd64.tar")).unwrap()
    );

    // Docker 20.10 loads the gzip docker-archive and the image is a working Debian.
    let _loaded = load(&out, "minimal", "amd64");
    let checks = "set -e
dpkg --audit > /tmp/audit; test ! -s /tmp/audit && echo audit-silent
apt-get check > /dev/null && echo apt-check-ok
awk 'BEGIN { print \"awk-ok\" }'
which which
getent passwd root
echo certs=$(grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt) mozilla=$(ls /usr/share/ca-certificates/mozilla | wc -l)
for l in /etc/ssl/certs/*.0; do [ \"$(openssl x509 -hash -noout -in \"$l\").0\" = \"$(basename \"$l\")\" ] || echo bad-hash-link $l; done
dpkg -S /usr/bin/ls
test \"$(readlink /bin)\" = usr/bin && echo merged-usr";
    let got = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "carbon/minimal:latest",
        "sh",
        "-c",
        checks,
    ]);
    assert_contains_all(
        &got,
        &[
            "audit-silent",
            "apt-check-ok",
            "awk-ok",
            "/usr/bin/which",
            "root:x:0:0:root:/root:/bin/bash",
            "coreutils: /usr/bin/ls",
            "merged-usr",
        ],
    );
    assert!(!got.contains("bad-hash-link"), "{got}");
    let certs = got.lines().find(|l| l.starts_with("certs=")).unwrap();
    let (c, m) = certs
        .trim_start_matches("certs=")
        .split_once(" mozilla=")
        .unwrap();
    assert_eq!(c, m, "the bundle holds every Mozilla root: {certs}");
    assert!(c.parse::<u32>().unwrap() > 100, "{certs}");

    // apt inside the image, as a user extending it does: its sources name the mirror the
    // build used (the host's apt sources here), and a package the image lacks installs
    // from it, signatures checked against the image's Debian keyring.
    let got = docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-e",
        "DEBIAN_FRONTEND=noninteractive",
        "carbon/minimal:latest",
        "sh",
        "-c",
        "set -e; grep -c '^Signed-By: /usr/share/keyrings/debian-archive-keyring' /etc/apt/sources.list.d/debian.sources; \
         apt-get update -qq && apt-get install -y -qq --no-install-recommends hello > /dev/null && hello && dpkg-query -W -f '${db:Status-Status}\n' hello",
    ]);
    assert!(got.starts_with("2\n"), "two stanzas, both signed:\n{got}");
    assert_contains_all(&got, &["Hello, world!", "installed"]);

    // arm64 runs under qemu-user-static.
    let _loaded = load(&out, "minimal", "arm64");
    let got = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--platform",
        "linux/arm64",
        "carbon/minimal:latest",
        "sh",
        "-c",
        "uname -m; dpkg --print-architecture; dpkg --audit",
    ]);
    assert_eq!(got.trim(), "aarch64\narm64", "{got}");

    // skopeo reads the multi-arch layout; umoci unpacks the amd64 manifest.
    let layout = out.join("minimal");
    let inspect =
        run(Command::new("skopeo").args(["inspect", &format!("oci:{}:latest", layout.display())]));
    assert!(inspect.contains("\"Architecture\": \"amd64\""), "{inspect}");
    let inspect = run(Command::new("skopeo").args([
        "inspect",
        "--override-arch",
        "arm64",
        &format!("oci:{}:latest", layout.display()),
    ]));
    assert!(inspect.contains("\"Architecture\": \"arm64\""), "{inspect}");
    let bundle = work.path().join("bundle");
    run(Command::new("umoci")
        .args([
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:latest-amd64", layout.display()),
        ])
        .arg(&bundle));
    assert!(bundle.join("rootfs/usr/bin/apt").exists());
    assert_eq!(
        std::fs::read_link(bundle.join("rootfs/bin")).unwrap(),
        Path::new("usr/bin")
    );

    // Its SBOMs, with the real packages' copyright files, pass SPDX's and CycloneDX's
    // own validators.
    assert_valid_sboms(&out, "minimal", &["amd64", "arm64"]);

    // Determinism with the real packages: a rebuild from the sources matches.
    run(realize("minimal", &out).arg("--check"));
}

#[test]
#[ignore = "needs dockerd, qemu-user-static and the mirrors; run by scripts/test"]
fn python_data_runs_numpy_pandas_scikit_learn_and_jupyter_with_its_extensions() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("oci-out");
    run(&mut realize("python-data", &out));
    let _loaded = load(&out, "python-data", "amd64");
    let script = "set -e
python -m pip check
python -c 'import numpy as np, pandas as pd
from sklearn.linear_model import LinearRegression
X = np.arange(20).reshape(-1, 1)
m = LinearRegression().fit(X, 3 * X.ravel() + 2)
print(\"fit\", round(float(m.coef_[0]), 6), round(float(m.intercept_), 6), int(pd.DataFrame({\"a\": [1, 2, 3]}).a.sum()))'
jupyter lab --version
test -d /opt/carbon/python/share/jupyter/lab && echo jupyter-data-in-prefix
test -f /opt/carbon/python/lib/python3.13/site-packages/pandas/__pycache__/__init__.cpython-313.pyc && echo byte-code-present
dpkg --audit";
    let got = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "carbon/python-data:latest",
        "sh",
        "-c",
        script,
    ]);
    assert_contains_all(
        &got,
        &[
            "No broken requirements found.",
            "fit 3.0 2.0 6",
            "jupyter-data-in-prefix",
        ],
    );
    // JupyterLab's extensions as the compute images' smoke tests check them: each listed
    // `enabled OK`, each server extension valid, each package importing, a server of its
    // own answering with the image's settings (tests/smoke/jupyter-checks.sh).
    let got = smoke_script("python-data", "linux/amd64", "jupyter-checks.sh", "none");
    assert_contains_all(
        &got,
        &[
            "ok: 23 lab extensions enabled OK",
            "ok: vim key bindings off by default",
            "ok: JupyterLab extensions",
        ],
    );
    // arm64 under qemu: the aarch64 wheels import and compute.
    let _loaded = load(&out, "python-data", "arm64");
    let got = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--platform",
        "linux/arm64",
        "carbon/python-data:latest",
        "python",
        "-c",
        "import platform, numpy; print(platform.machine(), int(numpy.arange(5).sum()))",
    ]);
    assert_eq!(got.trim(), "aarch64 10", "{got}");
    // Realizing again gives the same image. (`--check`, a rebuild of every layer from the
    // sources, is shown on minimal above; the fresh store below rebuilds every layer too.)
    let out2 = work.path().join("again");
    run(realize("python-data", &out2).args(["--format", "oci"]));
    assert_eq!(
        std::fs::read(out.join("python-data/index.json")).unwrap(),
        std::fs::read(out2.join("python-data/index.json")).unwrap()
    );
    // Byte-code compiled afresh in one process instead of one per thread gives the same
    // bytes: a store with the same sources and no byte-code cache, built on one thread.
    let fresh = work.path().join("fresh-store");
    run(Command::new("cp")
        .arg("-al")
        .arg(common::live_store())
        .arg(&fresh));
    for area in ["pyc-cache", "layers", "blobs", "realized"] {
        let _ = std::fs::remove_dir_all(fresh.join(area));
    }
    let out3 = work.path().join("fresh");
    run(Command::new(env!("CARGO_BIN_EXE_carbon-store"))
        .current_dir(repo())
        .arg("--store")
        .arg(&fresh)
        .args(["realize", "python-data", "--format", "oci", "--out"])
        .arg(&out3)
        .env("RAYON_NUM_THREADS", "1"));
    assert_eq!(
        std::fs::read(out.join("python-data/index.json")).unwrap(),
        std::fs::read(out3.join("python-data/index.json")).unwrap(),
        "byte-code depends on how the files were split between processes"
    );
}

#[test]
#[ignore = "needs dockerd, qemu-user-static and the mirrors; run by scripts/test"]
fn python_ml_computes_with_torch_tensorflow_transformers_and_pyspark() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("oci-out");
    run(&mut realize("python-ml", &out));
    let _loaded = load(&out, "python-ml", "amd64");
    let script = "set -e
python -m pip check
python -c 'import torch
x = torch.arange(6.0).reshape(2, 3)
print(\"torch\", (x @ x.T).tolist(), torch.cuda.is_available())
import torchvision, torchaudio
b = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
print(\"torchvision nms\", torchvision.ops.nms(b, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist())
w = torch.sin(torch.arange(1600.0) / 10).unsqueeze(0)
print(\"torchaudio mel\", tuple(torchaudio.transforms.MelSpectrogram(sample_rate=8000, n_fft=400, n_mels=16)(w).shape))
import tensorflow as tf
print(\"tf\", float(tf.reduce_sum(tf.constant([[1.0, 2.0], [3.0, 4.0]]) @ tf.constant([[1.0], [1.0]]))))
import transformers, tokenizers, safetensors, accelerate
print(\"transformers\", transformers.__version__)
from pyspark.sql import SparkSession
s = SparkSession.builder.master(\"local[1]\").getOrCreate()
print(\"spark\", s.range(10).selectExpr(\"sum(id)\").collect()[0][0])
s.stop()' 2>/dev/null";
    let got = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--hostname",
        "localhost",
        "carbon/python-ml:latest",
        "sh",
        "-c",
        script,
    ]);
    assert_contains_all(
        &got,
        &[
            "No broken requirements found.",
            "torch [[5.0, 14.0], [14.0, 50.0]] False",
            "torchvision nms [0, 2]",
            "torchaudio mel (1, 16, 9)",
            "tf 10.0",
            "transformers ",
            "spark 45",
        ],
    );
    // arm64 under qemu: Debian's torch computes there too.
    let _loaded = load(&out, "python-ml", "arm64");
    let got = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--platform",
        "linux/arm64",
        "carbon/python-ml:latest",
        "python",
        "-c",
        "import platform, torch; print(platform.machine(), int(torch.ones(3, 3).sum()))",
    ]);
    assert_eq!(got.trim(), "aarch64 9", "{got}");
}

/// Runs `tests/smoke/<image>.sh` inside the image with the services it checks started by
/// carbon-entrypoint; returns the output, which must end with "smoke <image>: passed".
fn smoke(image: &str, platform: &str) -> String {
    let script = format!("{image}.sh");
    let got = smoke_script(image, platform, &script, "postgres,redis,ssh,vnc,novnc,rdp");
    assert!(
        got.trim_end().ends_with(&format!("smoke {image}: passed")),
        "{got}"
    );
    got
}

/// Runs `tests/smoke/<script>` in a container of the image without a network, with
/// `services` (`CARBON_SERVICES`) started by the entrypoint where the image has one.
fn smoke_script(image: &str, platform: &str, script: &str, services: &str) -> String {
    let smoke_dir = repo().join("tests/smoke");
    docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--hostname",
        "localhost",
        "--platform",
        platform,
        "-e",
        &format!("CARBON_SERVICES={services}"),
        "-v",
        &format!("{}:/smoke:ro", smoke_dir.display()),
        &format!("carbon/{image}:latest"),
        "sh",
        &format!("/smoke/{script}"),
    ])
}

#[test]
#[ignore = "needs dockerd and the mirrors; run by scripts/test"]
fn base_passes_its_smoke_test_and_serves_by_default_on_amd64() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("oci-out");
    run(realize("base", &out).args(["--arch", "amd64"]));
    let _loaded = load(&out, "base", "amd64");
    let got = smoke("base", "linux/amd64");
    assert_contains_all(
        &got,
        &[
            "carbon-entrypoint: PostgreSQL on port 5432",
            "hello from C",
            "hello from Go",
            "hello from Rust",
            "hello from Java 21",
            "(Claude Code)",
            "codex-cli ",
            "hello from TypeScript",
            "hello from npm",
            "ok: node",
            "ok: postgresql pgvector postgis",
            "ok: redis",
            "ok: listening on 5901",
        ],
    );
    default_services_start_unless_told_otherwise();
    carbon_store_run_starts_the_desktop_and_says_where_it_is(&out);
    assert_valid_sboms(&out, "base", &["amd64"]);
}

/// `carbon-store run base`, as a user of the suite starts it: the image realize wrote,
/// the desktop by default, waited for until it answers and printed with its password; the
/// same name again is refused; `--replace` starts it afresh on the volumes it had, so the
/// VNC password made at first start is kept (and said to be). The test's engine has no
/// bridge, so the container shares the host's network.
fn carbon_store_run_starts_the_desktop_and_says_where_it_is(out: &Path) {
    let name = "carbon-run-test";
    struct Removed(&'static str);
    impl Drop for Removed {
        fn drop(&mut self) {
            let host = std::env::var("DOCKER_HOST").unwrap_or_default();
            let docker = |args: &[&str]| {
                let _ = Command::new("/usr/bin/docker")
                    .args(["-H", &host])
                    .args(args)
                    .output();
            };
            docker(&["rm", "--force", self.0]);
            for v in ["home", "postgres", "redis", "state"] {
                docker(&["volume", "rm", "--force", &format!("{}-{v}", self.0)]);
            }
        }
    }
    drop(Removed(name));
    let _removed = Removed(name);
    let carbon_run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_carbon-store"))
            .current_dir(repo())
            .args(["run", "base", "--host-network", "--name", name, "--out"])
            .arg(out)
            .args(extra)
            .output()
            .unwrap()
    };
    let said = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let first = carbon_run(&[]);
    let text = said(&first);
    assert!(first.status.success(), "{text}");
    assert_contains_all(
        &String::from_utf8_lossy(&first.stdout),
        &[
            "desktop in a browser (noVNC): http://127.0.0.1:6900/\n",
            "desktop over VNC: 127.0.0.1:5901\n",
            "VNC password: ",
        ],
    );
    // What it printed answers: the noVNC client.
    let page = run(Command::new("curl").args(["-fsS", "http://127.0.0.1:6900/vnc.html"]));
    assert!(page.contains("noVNC"), "{page}");

    let again = carbon_run(&[]);
    assert_eq!(again.status.code(), Some(2), "{}", said(&again));
    assert!(said(&again).contains("--replace"), "{}", said(&again));

    let replaced = carbon_run(&["--replace"]);
    let text = said(&replaced);
    assert!(replaced.status.success(), "{text}");
    assert!(!text.contains("VNC password: "), "{text}");
    assert!(text.contains("kept in its volumes"), "{text}");
}

/// What a user of the suite sees from `docker run carbon/base` (base has no JupyterLab):
/// the desktop starts by default; `CARBON_SERVICES=none` starts nothing; a misspelt name is
/// refused instead of starting nothing silently.
fn default_services_start_unless_told_otherwise() {
    let probe = "for p in 5901 6900 5432; do \
        if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo \"up $p\"; else echo \"down $p\"; fi; done; \
        if curl -fsS http://127.0.0.1:6900/vnc.html 2>/dev/null | grep -q noVNC; then echo 'novnc page'; else echo 'no novnc page'; fi";
    let run_with = |env: Option<&str>| {
        let mut args = vec![
            "run",
            "--rm",
            "--network",
            "none",
            "--hostname",
            "localhost",
        ];
        if let Some(env) = env {
            args.extend(["-e", env]);
        }
        args.extend(["carbon/base:latest", "bash", "-c", probe]);
        docker(&args)
    };
    let by_default = run_with(None);
    assert_contains_all(
        &by_default,
        &[
            "VNC on port 5901",
            "up 5901",
            "up 6900",
            "down 5432",
            "novnc page",
        ],
    );
    assert!(!by_default.contains("JupyterLab"), "{by_default}");
    let none = run_with(Some("CARBON_SERVICES=none"));
    assert_contains_all(&none, &["down 5901", "down 6900", "no novnc page"]);
    let host = std::env::var("DOCKER_HOST").unwrap();
    let misspelt = Command::new("/usr/bin/docker")
        .args(["-H", &host, "run", "--rm", "--network", "none"])
        .args([
            "-e",
            "CARBON_SERVICES=vnc,novcn",
            "carbon/base:latest",
            "true",
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&misspelt.stdout);
    assert_eq!(misspelt.status.code(), Some(2), "{said}");
    assert!(said.contains("unknown service 'novcn'"), "{said}");
}
