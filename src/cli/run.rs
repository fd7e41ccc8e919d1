//! `carbon-store run IMAGE`: the counterpart of the original suite's start script. It drives
//! the container engine the user has (docker or podman): loads the image realize wrote when
//! the engine lacks it or holds an older build, starts it with the image's services (or
//! those asked for), their ports published and their state in named volumes, adds the GPUs
//! where the engine has NVIDIA's runtime and the image has CUDA, waits until every service
//! answers, and prints where each one is and the secrets the image made at first start.
//!
//! Why the engine's own CLI rather than its API: users have docker or podman installed and
//! configured (contexts, rootless sockets, `DOCKER_HOST`); their CLIs honour all of it.

use super::error::CliError;
use super::{Cli, Output, exit};
use carbon_store::lockfile::Lockfile;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Every service carbon-entrypoint starts, with the port it listens on.
const SERVICES: [(&str, u16); 7] = [
    ("jupyter", 8888),
    ("postgres", 5432),
    ("redis", 6379),
    ("ssh", 2222),
    ("vnc", 5901),
    ("novnc", 6900),
    ("rdp", 3389),
];

/// Where a service's state lives in the container: one named volume each, kept when the
/// container is removed.
const VOLUMES: [(&str, &str); 4] = [
    ("home", "/home/carbon"),
    ("postgres", "/var/lib/postgresql"),
    ("redis", "/var/lib/redis"),
    ("state", "/var/lib/carbon"),
];

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gpus {
    /// All GPUs where the engine has NVIDIA's runtime and the image has CUDA
    Auto,
    /// All GPUs (fails where the engine has no NVIDIA runtime)
    All,
    /// No GPU
    None,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    fn program(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The image, as the recipes name it (base, compute, …)
    image: String,
    /// Services to start, comma-separated: jupyter, postgres, redis, ssh, vnc, novnc, rdp,
    /// or none (default: the image's own: the desktop, and JupyterLab where it has it)
    #[arg(long, value_delimiter = ',')]
    services: Vec<String>,
    /// GPUs for the container
    #[arg(long, value_enum, default_value = "auto")]
    gpus: Gpus,
    /// The container's name (default: carbon-IMAGE); its volumes are NAME-home,
    /// NAME-postgres, NAME-redis and NAME-state
    #[arg(long)]
    name: Option<String>,
    /// The container engine (default: docker where installed, else podman)
    #[arg(long, value_enum)]
    engine: Option<Engine>,
    /// The arch to run (default: this machine's; another runs under qemu-user)
    #[arg(long, value_parser = carbon_store::recipe::arch_named)]
    arch: Option<String>,
    /// The image's NAME:TAG in the engine (default: carbon/IMAGE:latest, as realize tags it)
    #[arg(long)]
    tag: Option<String>,
    /// Where realize wrote the image: its docker archive is loaded from there when the
    /// engine lacks the image or holds another build of it
    #[arg(long, default_value = "oci-out", value_name = "DIR")]
    out: PathBuf,
    /// The address ports are published on (0.0.0.0 serves other machines too)
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    listen: String,
    /// Share the host's network instead of publishing ports (engines without a bridge)
    #[arg(long)]
    host_network: bool,
    /// Environment for the container, e.g. CARBON_PASSWORD=…; repeatable
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Remove a container of the same name first (its volumes are kept)
    #[arg(long)]
    replace: bool,
    /// How long to wait for the services to answer, in seconds
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    timeout: u64,
}

/// The engine's CLI, run and read.
struct EngineCli(Engine);

impl EngineCli {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.0.program());
        c.args(args);
        c
    }

    /// Runs; standard output on success, `Err` with what it said otherwise.
    fn output(&self, args: &[&str]) -> Result<String, String> {
        let got = self
            .command(args)
            .output()
            .map_err(|e| format!("{} {}: {e}", self.0.program(), args[0]))?;
        if got.status.success() {
            Ok(String::from_utf8_lossy(&got.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&got.stderr).trim().to_string())
        }
    }

    fn fail(&self, what: &str, said: String) -> CliError {
        CliError::new(format!("{} {what}: {said}", self.0.program()))
    }
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn pick_engine(asked: Option<Engine>) -> Result<EngineCli, CliError> {
    let engine = match asked {
        Some(engine) if installed(engine.program()) => engine,
        Some(engine) => {
            return Err(
                CliError::new(format!("{} is not installed", engine.program()))
                    .hint("install it, or pick the other with --engine"),
            );
        }
        None if installed("docker") => Engine::Docker,
        None if installed("podman") => Engine::Podman,
        None => {
            return Err(CliError::new("neither docker nor podman is installed")
                .hint("install one (Debian: apt-get install docker.io, or podman), or load the image elsewhere: realize wrote a docker archive"));
        }
    };
    Ok(EngineCli(engine))
}

/// A container name the engines accept.
fn valid_container_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 128
}

/// `sha256:…` of the config and of the manifest realize wrote for `arch`, if it did.
fn built_digests(out: &Path, image: &str, arch: &str) -> Option<(String, String)> {
    let layout = out.join(image);
    let manifest = carbon_store::oci::referrer::arch_manifests(&layout)
        .ok()?
        .remove(arch)?;
    let bytes = carbon_store::oci::referrer::read_blob(&layout, &manifest).ok()?;
    let parsed: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let config = parsed["config"]["digest"].as_str()?.to_string();
    Some((config, manifest))
}

/// The image as the engine holds it under `tag`: its id, or `None`.
fn engine_image(engine: &EngineCli, tag: &str) -> Option<String> {
    let id = engine
        .output(&["image", "inspect", "--format", "{{.Id}}", tag])
        .ok()?;
    let id = id.trim();
    // podman prints the bare hex.
    Some(if id.contains(':') {
        id.to_string()
    } else {
        format!("sha256:{id}")
    })
}

/// Makes sure the engine holds the build realize wrote (loading its docker archive when
/// the engine lacks the image or holds another build), or at least some build of it.
fn ensure_image(
    engine: &EngineCli,
    args: &RunArgs,
    tag: &str,
    arch: &str,
    out: &Output,
) -> Result<(), CliError> {
    let held = engine_image(engine, tag);
    let built = built_digests(&args.out, &args.image, arch);
    let current = match (&held, &built) {
        // Docker's classic store names an image by its config, its containerd store by
        // its manifest.
        (Some(id), Some((config, manifest))) => id == config || id == manifest,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if current {
        return Ok(());
    }
    let archive = args.out.join(format!("{}-{arch}.tar", args.image));
    if !archive.is_file() {
        return Err(CliError::new(format!(
            "{} has no image {tag} and {} does not exist",
            engine.0.program(),
            archive.display()
        ))
        .hint(format!(
            "build it first: carbon-store realize {} --arch {arch} (or pass --out where realize wrote it)",
            args.image
        )));
    }
    out.info(format!(
        "loading {} into {}",
        archive.display(),
        engine.0.program()
    ));
    let path = archive.to_string_lossy();
    engine
        .output(&["load", "-i", &path])
        .map_err(|said| engine.fail("load", said))?;
    if engine_image(engine, tag).is_none() {
        return Err(CliError::new(format!(
            "{} holds no {tag} after loading {}",
            engine.0.program(),
            archive.display()
        ))
        .hint("the archive was realized under another tag: pass it with --tag"));
    }
    Ok(())
}

/// The services the container will start: those asked for, or the image's defaults as
/// carbon-entrypoint chooses them (the desktop; JupyterLab where the image has it, which
/// its lock says).
fn services(args: &RunArgs, lock: Option<&Lockfile>, arch: &str) -> Result<Vec<String>, CliError> {
    if args.services.iter().any(|s| s == "none") {
        return Ok(Vec::new());
    }
    if args.services.is_empty() {
        let mut defaults = vec!["vnc".to_string(), "novnc".to_string()];
        let has_jupyter = lock
            .and_then(|l| l.archs.get(arch))
            .is_some_and(|a| a.python.iter().any(|p| p.name == "jupyterlab"));
        if has_jupyter {
            defaults.push("jupyter".into());
        }
        return Ok(defaults);
    }
    for s in &args.services {
        if !SERVICES.iter().any(|(name, _)| name == s) {
            let known: Vec<&str> = SERVICES.iter().map(|(n, _)| *n).collect();
            return Err(CliError::new(format!("unknown service {s:?}"))
                .hint(format!("use {} or none", known.join(", ")))
                .code(exit::USAGE));
        }
    }
    Ok(args.services.clone())
}

fn port_of(service: &str) -> u16 {
    SERVICES
        .iter()
        .find(|(name, _)| *name == service)
        .map(|(_, port)| *port)
        .expect("a known service")
}

/// Whether to give the container the GPUs, and how the engine is told.
fn gpu_flags(engine: &EngineCli, gpus: Gpus, lock: Option<&Lockfile>, arch: &str) -> Vec<String> {
    let has_cuda = || {
        lock.and_then(|l| l.archs.get(arch)).is_some_and(|a| {
            a.python
                .iter()
                .any(|p| p.name.starts_with("nvidia-cuda-runtime"))
        })
    };
    let has_runtime = || match engine.0 {
        Engine::Docker => engine
            .output(&["info", "--format", "{{json .Runtimes}}"])
            .is_ok_and(|runtimes| runtimes.contains("\"nvidia\"")),
        // podman reaches GPUs through a CDI specification, which NVIDIA's toolkit writes.
        Engine::Podman => ["/etc/cdi/nvidia.yaml", "/var/run/cdi/nvidia.yaml"]
            .iter()
            .any(|p| Path::new(p).exists()),
    };
    let wanted = match gpus {
        Gpus::None => false,
        Gpus::All => true,
        Gpus::Auto => has_cuda() && has_runtime(),
    };
    if !wanted {
        return Vec::new();
    }
    match engine.0 {
        Engine::Docker => vec!["--gpus".into(), "all".into()],
        Engine::Podman => vec!["--device".into(), "nvidia.com/gpu=all".into()],
    }
}

/// The `run -d` arguments.
fn run_arguments(
    args: &RunArgs,
    name: &str,
    tag: &str,
    arch: &str,
    services: &[String],
    gpus: Vec<String>,
) -> Vec<String> {
    let mut a: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name.into()];
    a.extend(["--platform".into(), format!("linux/{arch}")]);
    // Without --services carbon-entrypoint chooses the image's defaults itself.
    if !args.services.is_empty() {
        let named = if services.is_empty() {
            "none".to_string()
        } else {
            services.join(",")
        };
        a.extend(["-e".into(), format!("CARBON_SERVICES={named}")]);
    }
    for env in &args.env {
        a.extend(["-e".into(), env.clone()]);
    }
    if args.host_network {
        a.extend(["--network".into(), "host".into()]);
    } else {
        for s in services {
            let port = port_of(s);
            a.extend(["-p".into(), format!("{}:{port}:{port}", args.listen)]);
        }
    }
    for (suffix, path) in VOLUMES {
        a.extend(["-v".into(), format!("{name}-{suffix}:{path}")]);
    }
    a.extend(gpus);
    a.push(tag.into());
    a
}

/// Where a client on this machine reaches the published ports.
fn client_host(args: &RunArgs) -> String {
    if args.host_network || args.listen == "0.0.0.0" || args.listen == "::" {
        "127.0.0.1".to_string()
    } else {
        args.listen.clone()
    }
}

/// Waits until carbon-entrypoint says it is ready and every service's port accepts a
/// connection; returns the entrypoint's lines. A container that stops is an error with
/// the end of its log.
fn wait_until_ready(
    engine: &EngineCli,
    name: &str,
    host: &str,
    services: &[String],
    timeout: Duration,
    out: &Output,
) -> Result<Vec<String>, CliError> {
    let started = Instant::now();
    let logs = || {
        let got = engine.command(&["logs", name]).output();
        got.map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default()
    };
    let too_late = |what: &str, log: &str| {
        CliError::new(format!(
            "{name}: {what} after {} s; the end of its log:\n{}",
            timeout.as_secs(),
            tail(log, 15)
        ))
        .hint(format!(
            "see `{} logs {name}`; a slower machine (or another arch under qemu) may need --timeout",
            engine.0.program()
        ))
    };
    out.info(format!(
        "{name}: waiting for {}",
        if services.is_empty() {
            "the container".to_string()
        } else {
            services.join(", ")
        }
    ));
    let log = loop {
        let log = logs();
        if log.contains("carbon-entrypoint: ready") {
            break log;
        }
        let running = engine
            .output(&["inspect", "--format", "{{.State.Running}}", name])
            .is_ok_and(|r| r.trim() == "true");
        if !running {
            return Err(CliError::new(format!(
                "{name} stopped before its services were ready; the end of its log:\n{}",
                tail(&log, 15)
            )));
        }
        if started.elapsed() > timeout {
            return Err(too_late("not ready", &log));
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    for service in services {
        let address: Option<SocketAddr> = (host, port_of(service))
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next());
        let Some(address) = address else {
            return Err(CliError::new(format!(
                "{host}: not an address to connect to"
            )));
        };
        while TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err() {
            if started.elapsed() > timeout {
                return Err(too_late(
                    &format!("{service} does not answer on {address}"),
                    &logs(),
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    Ok(log
        .lines()
        .filter_map(|l| l.strip_prefix("carbon-entrypoint: "))
        .map(str::to_string)
        .collect())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a user reads once the services answer: where each is, then the secrets the
/// entrypoint made (printed by it at first start only; kept in the volumes after).
fn summary(name: &str, host: &str, services: &[String], entrypoint: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    for service in services {
        let port = port_of(service);
        lines.push(match service.as_str() {
            "novnc" => format!("desktop in a browser (noVNC): http://{host}:{port}/"),
            "vnc" => format!("desktop over VNC: {host}:{port}"),
            "rdp" => format!("desktop over RDP: {host}:{port} (user carbon)"),
            "ssh" => format!("SSH: ssh -p {port} carbon@{host}"),
            "postgres" => format!("PostgreSQL: psql -h {host} -p {port} -U postgres"),
            "redis" => format!("Redis: redis-cli -h {host} -p {port}"),
            "jupyter" => {
                let url = entrypoint
                    .iter()
                    .find_map(|l| l.strip_prefix("JupyterLab on "))
                    .map(|u| u.replace("localhost", host))
                    .unwrap_or_else(|| format!("http://{host}:{port}/lab"));
                format!("JupyterLab: {url}")
            }
            other => format!("{other}: {host}:{port}"),
        });
    }
    let secrets: Vec<&String> = entrypoint
        .iter()
        .filter(|l| l.contains("password") && l.contains(": "))
        .collect();
    if secrets.is_empty() && !services.is_empty() {
        lines.push(format!(
            "passwords: made at the first start of {name} and kept in its volumes, not printed again (to set them: --replace -e CARBON_VNC_PASSWORD=… -e CARBON_PASSWORD=…, with its home volume removed for VNC's)"
        ));
    }
    lines.extend(secrets.into_iter().cloned());
    lines
}

pub fn run(cli: &Cli, args: &RunArgs, out: &Output) -> Result<(), CliError> {
    let recipes = cli.load_recipes()?;
    let image = cli
        .images(&recipes, std::slice::from_ref(&args.image))?
        .remove(0);
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("carbon-{image}"));
    if !valid_container_name(&name) {
        return Err(
            CliError::new(format!("--name {name:?} is not a container name"))
                .hint("letters, digits, '_', '.' and '-', starting with a letter or digit")
                .code(exit::USAGE),
        );
    }
    for env in &args.env {
        if !env.contains('=') {
            return Err(
                CliError::new(format!("--env {env:?}: expected KEY=VALUE")).code(exit::USAGE)
            );
        }
    }
    let arch = match &args.arch {
        Some(arch) => arch.clone(),
        None => carbon_store::recipe::arch_named(std::env::consts::ARCH)
            .map_err(|e| CliError::new(format!("this machine's arch: {e}")).hint("pass --arch"))?,
    };
    let lock = carbon_store::lock::read(&cli.lockfiles, &image).ok();
    let services = services(args, lock.as_ref(), &arch)?;
    let engine = pick_engine(args.engine)?;
    let tag = args
        .tag
        .clone()
        .unwrap_or_else(|| format!("carbon/{image}:latest"));
    ensure_image(&engine, args, &tag, &arch, out)?;
    if engine.output(&["container", "inspect", &name]).is_ok() {
        if !args.replace {
            return Err(CliError::new(format!("a container named {name} exists"))
                .hint(format!(
                    "pass --replace to remove it first (its volumes are kept), --name for another, or `{} start {name}` to start it again",
                    engine.0.program()
                ))
                .code(exit::USAGE));
        }
        engine
            .output(&["rm", "--force", &name])
            .map_err(|said| engine.fail("rm", said))?;
    }
    let gpus = gpu_flags(&engine, args.gpus, lock.as_ref(), &arch);
    let with_gpus = !gpus.is_empty();
    let run_args = run_arguments(args, &name, &tag, &arch, &services, gpus);
    let run_refs: Vec<&str> = run_args.iter().map(String::as_str).collect();
    engine
        .output(&run_refs)
        .map_err(|said| engine.fail("run", said).hint("a port in use on this machine shows here: stop what holds it, or pass --host-network / --services"))?;
    let host = client_host(args);
    let entrypoint = wait_until_ready(
        &engine,
        &name,
        &host,
        &services,
        Duration::from_secs(args.timeout),
        out,
    )?;
    out.info(format!(
        "{name}: {tag} ({arch}) running in {}{}",
        engine.0.program(),
        if with_gpus { " with all GPUs" } else { "" }
    ));
    for line in summary(&name, &host, &services, &entrypoint) {
        println!("{line}");
    }
    let volumes: Vec<String> = VOLUMES.iter().map(|(s, _)| format!("{name}-{s}")).collect();
    out.info(format!(
        "stop it with `{} stop {name}`; its state stays in the volumes {}",
        engine.0.program(),
        volumes.join(", ")
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_each_service_and_relays_the_secrets() {
        let entrypoint = vec![
            "VNC password: abc123".to_string(),
            "VNC on port 5901 (display :1, Cinnamon)".to_string(),
            "JupyterLab on http://localhost:8888/lab?token=t0k".to_string(),
            "ready; services: vnc,novnc,jupyter".to_string(),
        ];
        let services: Vec<String> = ["vnc", "novnc", "jupyter"].map(String::from).to_vec();
        let lines = summary("carbon-compute", "127.0.0.1", &services, &entrypoint);
        assert_eq!(
            lines,
            [
                "desktop over VNC: 127.0.0.1:5901",
                "desktop in a browser (noVNC): http://127.0.0.1:6900/",
                "JupyterLab: http://127.0.0.1:8888/lab?token=t0k",
                "VNC password: abc123",
            ]
        );
    }

    #[test]
    fn container_names_are_checked_before_the_engine_sees_them() {
        assert!(valid_container_name("carbon-base"));
        assert!(valid_container_name("a.b_c-1"));
        for bad in ["", "-x", "a b", "a/b", "a;rm"] {
            assert!(!valid_container_name(bad), "{bad:?}");
        }
    }
}
