//! Logging in, clicking and looking, as a user of the images does: `base` started with its
//! remote access services, then reached from this host with real clients — OpenSSH with a
//! key, TigerVNC's viewer, noVNC in Chromium, FreeRDP — each client in an X server of the
//! test's own (Xvfb) whose screen is captured and checked for a desktop: mostly not
//! black, and a panel with icons along its bottom edge; a click on the panel's menu button
//! opens the menu. JupyterLab (`python-data`) is opened in Chromium the same way. The screenshots are kept in target/screenshots
//! (docs/images.md shows copies of them).
//!
//! Ignored by plain `cargo test`; scripts/test starts the engines and installs the clients
//! (scripts/engines-up) and runs it. The containers use the host's network (dockerd runs
//! without a bridge here) and listen on 127.0.0.1's fixed ports: 2222, 3389, 5901, 6900
//! and 8888.

mod common;

use common::engine::{docker, load, realize, run};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VNC_PASSWORD: &str = "carbon-vnc-test";
const USER_PASSWORD: &str = "carbon-rdp-test";

/// A container started for a test, removed when dropped (also when the test fails).
struct Container(String);

impl Container {
    fn start(name: &str, args: &[&str]) -> Container {
        let _ = docker_quiet(&["rm", "--force", name]);
        let mut all = vec!["run", "--detach", "--name", name, "--network", "host"];
        all.extend_from_slice(args);
        docker(&all);
        Container(name.to_string())
    }

    fn logs(&self) -> String {
        docker(&["logs", &self.0])
    }

    /// Waits until the container's log has `line`; fails with the log otherwise.
    fn wait_for_log(&self, line: &str, timeout: Duration) {
        wait_until(timeout, || self.logs().contains(line))
            .unwrap_or_else(|| panic!("no {line:?} within {timeout:?}:\n{}", self.logs()));
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker_quiet(&["rm", "--force", &self.0]);
    }
}

fn docker_quiet(args: &[&str]) -> std::io::Result<std::process::Output> {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    Command::new("/usr/bin/docker")
        .args(["-H", &host])
        .args(args)
        .output()
}

/// Polls `f` every second until it holds or `timeout` passes.
fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<()> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(());
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// An X server of the test's own, 1600×900, stopped with its clients when dropped.
struct Display {
    server: Child,
    name: String,
    clients: Vec<Child>,
}

impl Display {
    fn start() -> Display {
        let mut server = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1600x900x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (Debian package xvfb; scripts/engines-up installs it)");
        let mut number = String::new();
        BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut number)
            .unwrap();
        Display {
            server,
            name: format!(":{}", number.trim()),
            clients: Vec::new(),
        }
    }

    /// Starts a client program on this display; it is stopped when the next one starts.
    fn show(&mut self, program: &str, args: &[&str]) {
        self.stop_clients();
        let child = Command::new(program)
            .args(args)
            .env("DISPLAY", &self.name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        self.clients.push(child);
    }

    /// A left click at (`x`, `y`) on this display (xdotool).
    fn click(&self, x: u32, y: u32) {
        run(Command::new("xdotool")
            .args(["mousemove", &x.to_string(), &y.to_string(), "click", "1"])
            .env("DISPLAY", &self.name));
    }

    fn stop_clients(&mut self) {
        for mut c in self.clients.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The whole screen, as `xwd` captures it; an error when it captured nothing (a
    /// client in the middle of taking over the screen can make it fail).
    fn screenshot(&self) -> Result<Screen, String> {
        let xwd = Command::new("xwd")
            .args(["-root", "-silent", "-display", &self.name])
            .output()
            .expect("xwd (Debian package x11-apps)");
        if !xwd.status.success() || xwd.stdout.is_empty() {
            return Err(format!(
                "xwd captured nothing: {}",
                String::from_utf8_lossy(&xwd.stderr).trim()
            ));
        }
        Ok(Screen::from_ppm(&filter("xwdtopnm", xwd.stdout)))
    }

    /// Waits until the screen passes `check`; saves the last screenshot as `name`.png in
    /// target/screenshots either way, and fails with `check`'s reason if it never passed.
    fn expect(&self, name: &str, timeout: Duration, check: impl Fn(&Screen) -> Result<(), String>) {
        let mut last = (None, String::new());
        let passed = wait_until(timeout, || match self.screenshot() {
            Ok(screen) => {
                let verdict = check(&screen);
                last = (Some(screen), verdict.clone().err().unwrap_or_default());
                verdict.is_ok()
            }
            Err(reason) => {
                last.1 = reason;
                false
            }
        });
        let path = screenshot_dir().join(format!("{name}.png"));
        if let (Some(screen), _) = &last {
            screen.save_png(&path);
        }
        assert!(
            passed.is_some(),
            "{name}: {} (screenshot: {})",
            last.1,
            path.display()
        );
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.stop_clients();
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// What netpbm's `program` makes of `input` (fed from another thread, so that neither
/// side waits on a full pipe).
fn filter(program: &str, input: Vec<u8>) -> Vec<u8> {
    let mut child = Command::new(program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} (Debian package netpbm): {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap().stdout;
    writer.join().unwrap();
    out
}

fn screenshot_dir() -> PathBuf {
    let dir = common::repo().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A screenshot: 8-bit RGB pixels, row by row.
struct Screen {
    width: usize,
    height: usize,
    ppm: Vec<u8>,
    pixels: Vec<[u8; 3]>,
}

impl Screen {
    /// Parses a binary PPM (P6, maxval 255) as netpbm writes it.
    fn from_ppm(ppm: &[u8]) -> Screen {
        let mut fields = Vec::new();
        let mut at = 0;
        while fields.len() < 4 {
            while ppm[at].is_ascii_whitespace() {
                at += 1;
            }
            let start = at;
            while !ppm[at].is_ascii_whitespace() {
                at += 1;
            }
            fields.push(String::from_utf8_lossy(&ppm[start..at]).into_owned());
        }
        assert_eq!(fields[0], "P6", "not a binary PPM");
        assert_eq!(fields[3], "255", "not 8-bit");
        let width: usize = fields[1].parse().unwrap();
        let height: usize = fields[2].parse().unwrap();
        let data = &ppm[at + 1..];
        assert_eq!(data.len(), width * height * 3, "truncated PPM");
        Screen {
            width,
            height,
            ppm: ppm.to_vec(),
            pixels: data.chunks(3).map(|p| [p[0], p[1], p[2]]).collect(),
        }
    }

    /// The share of pixels of the Carbon desktop's background: blue, as the image's
    /// GSettings override makes it (a black screen, or noVNC's grey connect page, has none).
    fn desktop_background_share(&self) -> f64 {
        let blue = self
            .pixels
            .iter()
            .filter(|[r, _, b]| *b > 40 && *b as u32 > *r as u32 + 20)
            .count();
        blue as f64 / self.pixels.len() as f64
    }

    /// The share of pixels that are not (nearly) black.
    fn non_black_share(&self) -> f64 {
        let lit = self
            .pixels
            .iter()
            .filter(|p| p.iter().map(|&c| c as u32).sum::<u32>() > 30)
            .count();
        lit as f64 / self.pixels.len() as f64
    }

    /// The rows `from`..`to` (fractions of the height) and columns `left`..`right`
    /// (fractions of the width) of the screen.
    fn region(&self, from: f64, to: f64, left: f64, right: f64) -> (Range<usize>, Range<usize>) {
        let rows = (self.height as f64 * from) as usize..(self.height as f64 * to) as usize;
        let columns = (self.width as f64 * left) as usize..(self.width as f64 * right) as usize;
        (rows, columns)
    }

    /// The most distinct colours in one row of the band `from`..`to` (fractions of the
    /// height): a row across a panel's icons and clock has many, a plain background one.
    fn busiest_row(&self, from: f64, to: f64) -> usize {
        self.busiest_row_between(from, to, 0.0, 1.0)
    }

    /// As [`Screen::busiest_row`], counting only the columns `left`..`right` (fractions of
    /// the width).
    fn busiest_row_between(&self, from: f64, to: f64, left: f64, right: f64) -> usize {
        let (rows, columns) = self.region(from, to, left, right);
        rows.map(|y| {
            let row = &self.pixels[y * self.width..(y + 1) * self.width];
            row[columns.clone()].iter().collect::<HashSet<_>>().len()
        })
        .max()
        .unwrap_or(0)
    }

    /// The share of (nearly) white pixels in the region `from`..`to` of the height and
    /// `left`..`right` of the width: a page's own background, which a dialog's grey
    /// backdrop covers.
    fn white_share_between(&self, from: f64, to: f64, left: f64, right: f64) -> f64 {
        let (rows, columns) = self.region(from, to, left, right);
        let area = rows.len() * columns.len();
        let white = rows
            .flat_map(|y| columns.clone().map(move |x| y * self.width + x))
            .filter(|&i| self.pixels[i].iter().all(|&c| c > 240))
            .count();
        white as f64 / area.max(1) as f64
    }

    fn save_png(&self, path: &Path) {
        let out = filter("pnmtopng", self.ppm.clone());
        std::fs::write(path, out).unwrap();
    }
}

/// What the Cinnamon desktop looks like from any client: its background covers most of
/// the screen (a black one is the failure this guards against), and the panel along the
/// bottom edge shows its icons and clock.
fn cinnamon_desktop(screen: &Screen) -> Result<(), String> {
    let background = screen.desktop_background_share();
    if background < 0.6 {
        return Err(format!(
            "the desktop's background covers only {:.0}% of the screen",
            background * 100.0
        ));
    }
    let panel = screen.busiest_row(0.94, 1.0);
    if panel < 16 {
        return Err(format!(
            "no panel: the bottom rows have at most {panel} colours each"
        ));
    }
    Ok(())
}

/// `xfreerdp3` (FreeRDP 3, Debian 13) or `xfreerdp` (FreeRDP 2, Debian 12).
fn freerdp() -> &'static str {
    let has = |p: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if has("xfreerdp3") {
        "xfreerdp3"
    } else {
        "xfreerdp"
    }
}

/// Chromium as a window filling the display (not headless: noVNC and JupyterLab render
/// over WebSockets and timers, which headless virtual time does not wait for), with the
/// options this machine's closed network needs.
fn chromium(display: &mut Display, profile: &Path, url: &str) {
    display.show(
        "chromium",
        &[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
            "--window-position=0,0",
            "--window-size=1600,900",
            "--kiosk",
            url,
        ],
    );
}

/// The image and arch the desktop test logs into: `base` on amd64 unless
/// CARBON_DESKTOP_IMAGE and CARBON_DESKTOP_ARCH say otherwise (scripts/smoke-all.sh runs
/// it for every desktop image and arch).
fn desktop_target() -> (String, String) {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    (
        var("CARBON_DESKTOP_IMAGE", "base"),
        var("CARBON_DESKTOP_ARCH", "amd64"),
    )
}

/// How long a desktop may take to draw: a session under qemu-user (an arch other than the
/// host's) runs several times slower; a second Cinnamon session over RDP there took more
/// than 90 s.
fn desktop_patience(arch: &str) -> Duration {
    let native = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    Duration::from_secs(if arch == native { 90 } else { 360 })
}

#[test]
#[ignore = "needs dockerd, Xvfb and the desktop clients; run by scripts/test"]
fn desktop_over_ssh_vnc_novnc_and_rdp_shows_cinnamon() {
    let (image, arch) = desktop_target();
    let patience = desktop_patience(&arch);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("oci-out");
    run(realize(&image, &out).args(["--arch", &arch, "--format", "docker"]));
    let _loaded = load(&out, &image, &arch);
    let key = work.path().join("id_ed25519");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key));
    let public_key = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let container = Container::start(
        "carbon-desktop-test",
        &[
            "--hostname",
            "localhost",
            "-e",
            "CARBON_SERVICES=ssh,vnc,novnc,rdp",
            "-e",
            &format!("CARBON_VNC_PASSWORD={VNC_PASSWORD}"),
            "-e",
            &format!("CARBON_PASSWORD={USER_PASSWORD}"),
            "-e",
            &format!("CARBON_SSH_AUTHORIZED_KEYS={}", public_key.trim()),
            "--platform",
            &format!("linux/{arch}"),
            &format!("carbon/{image}:latest"),
        ],
    );
    container.wait_for_log("carbon-entrypoint: ready", Duration::from_secs(300));

    // SSH with a key: a command and a login shell both get the image's environment.
    let ssh = |command: &str| {
        run(Command::new("ssh").arg("-i").arg(&key).args([
            "-p",
            "2222",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "carbon@127.0.0.1",
            command,
        ]))
    };
    let got = ssh("id -un; command -v python3; echo \"$LANG\"");
    assert_eq!(
        got.trim(),
        "carbon\n/opt/carbon/python/bin/python3\nC.UTF-8",
        "{got}"
    );
    let got = ssh("bash -lc 'command -v python3; python3 -c \"import sys; print(sys.prefix)\"'");
    assert_eq!(
        got.trim(),
        "/opt/carbon/python/bin/python3\n/opt/carbon/python",
        "{got}"
    );

    let mut display = Display::start();
    // VNC with TigerVNC's viewer and the password file the entrypoint made.
    let password_file = work.path().join("vnc-passwd");
    std::fs::write(
        &password_file,
        docker_quiet(&["exec", &container.0, "cat", "/home/carbon/.vnc/passwd"])
            .unwrap()
            .stdout,
    )
    .unwrap();
    display.show(
        "xtigervncviewer",
        &[
            "-passwd",
            password_file.to_str().unwrap(),
            "-FullScreen",
            "127.0.0.1::5901",
        ],
    );
    display.expect("desktop-vnc", patience, cinnamon_desktop);
    // A click on the panel's menu button opens Cinnamon's menu above it.
    display.click(20, 880);
    display.expect("desktop-vnc-menu", Duration::from_secs(30), |screen| {
        let menu = screen.busiest_row_between(0.5, 0.9, 0.0, 0.3);
        if menu >= 24 {
            Ok(())
        } else {
            Err(format!(
                "no menu: the area above the menu button has at most {menu} colours per row"
            ))
        }
    });
    // The panel's terminal launcher (after the file manager's) opens a terminal.
    run(Command::new("xdotool")
        .args(["key", "Escape"])
        .env("DISPLAY", &display.name));
    display.click(120, 880);
    display.expect("desktop-vnc-terminal", Duration::from_secs(30), |screen| {
        let running =
            docker_quiet(&["exec", &container.0, "pgrep", "-f", "gnome-terminal-server"])
                .is_ok_and(|o| o.status.success());
        // The terminal runs the user's shell (bash, with its prompt), not /bin/sh.
        let shell = docker_quiet(&[
            "exec",
            &container.0,
            "sh",
            "-c",
            "pgrep -x bash -P \"$(pgrep -f gnome-terminal-server | head -n 1)\"",
        ])
        .is_ok_and(|o| o.status.success());
        // The background is a vertical gradient (one colour per row): a window's title
        // and text make a row of many.
        let window = screen.busiest_row_between(0.1, 0.8, 0.0, 1.0);
        if running && shell && window >= 24 {
            Ok(())
        } else {
            Err(format!(
                "the panel's terminal launcher opened no terminal running bash (terminal: {running}, bash: {shell}, busiest row: {window} colours)"
            ))
        }
    });

    // noVNC: its connect page at the site's root, then the desktop in the browser.
    let root = run(Command::new("curl").args(["-fsS", "http://127.0.0.1:6900/"]));
    assert!(
        root.contains("noVNC"),
        "noVNC's / is not its client:\n{root}"
    );
    chromium(
        &mut display,
        &work.path().join("chromium"),
        &format!("http://127.0.0.1:6900/?autoconnect=1&resize=scale&password={VNC_PASSWORD}"),
    );
    display.expect("desktop-novnc", patience, cinnamon_desktop);

    // RDP with FreeRDP over TLS, xrdp's default (Xorg) session.
    display.show(
        freerdp(),
        &[
            "/v:127.0.0.1:3389",
            "/u:carbon",
            &format!("/p:{USER_PASSWORD}"),
            "/cert:ignore",
            "/sec:tls",
            "/size:1600x900",
            "/f",
        ],
    );
    display.expect("desktop-rdp", patience, cinnamon_desktop);
}

#[test]
#[ignore = "needs dockerd, Xvfb and Chromium; run by scripts/test"]
fn jupyterlab_of_python_data_renders_its_launcher_in_chromium() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("oci-out");
    run(realize("python-data", &out).args(["--arch", "amd64", "--format", "docker"]));
    let _loaded = load(&out, "python-data", "amd64");
    let token = "carbon-jupyter-test";
    let container = Container::start(
        "carbon-jupyter-test",
        &[
            "carbon/python-data:latest",
            "jupyter",
            "lab",
            "--allow-root",
            "--no-browser",
            "--ip=127.0.0.1",
            "--port=8888",
            &format!("--IdentityProvider.token={token}"),
        ],
    );
    let status = || {
        Command::new("curl")
            .args([
                "-fsS",
                &format!("http://127.0.0.1:8888/api/status?token={token}"),
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    wait_until(Duration::from_secs(90), status)
        .unwrap_or_else(|| panic!("JupyterLab did not answer:\n{}", container.logs()));
    let mut display = Display::start();
    chromium(
        &mut display,
        &work.path().join("chromium"),
        &format!("http://127.0.0.1:8888/lab?token={token}"),
    );
    // The launcher, not the splash screen, an empty work area nor a dialog (an extension
    // that failed to load says so in one): a light page whose menu bar along the top
    // carries text, and whose main area (right of the file browser) is the launcher's
    // white page with its tiles' icons and labels, not greyed by a dialog's backdrop.
    display.expect("jupyterlab", Duration::from_secs(120), |screen| {
        let lit = screen.non_black_share();
        let menu = screen.busiest_row(0.0, 0.04);
        let tiles = screen.busiest_row_between(0.1, 0.6, 0.25, 0.95);
        let page = screen.white_share_between(0.1, 0.9, 0.25, 0.95);
        if lit > 0.8 && menu >= 12 && tiles >= 24 && page > 0.6 {
            Ok(())
        } else {
            Err(format!(
                "{:.0}% not black, menu bar rows up to {menu} colours, tile rows up to {tiles}, \
                 {:.0}% of the main area white: not the launcher",
                lit * 100.0,
                page * 100.0
            ))
        }
    });
}
