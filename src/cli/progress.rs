//! Progress of long work: downloads (a bar with bytes, rate and ETA) and builds (per arch,
//! the stage and the layers written with bytes and rate), drawn on a terminal, as plain
//! lines otherwise, and not at all with `-q`.

use super::{Output, human};
use carbon_store::download::FetchProgress;
use carbon_store::oci::BuiltLayer;
use carbon_store::realize::BuildProgress;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

pub struct Progress {
    bar: Option<ProgressBar>,
    /// One line per finished artifact (no terminal, `-v`).
    lines: bool,
    quiet: bool,
}

impl Progress {
    pub fn new(out: &Output) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        Progress {
            bar: if terminal && !out.quiet {
                Some(ProgressBar::hidden())
            } else {
                None
            },
            lines: !terminal && out.verbose > 0,
            quiet: out.quiet,
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl FetchProgress for Progress {
    fn start(&self, count: usize, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_length(bytes);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .expect("template is valid")
                .progress_chars("=> "),
            );
            bar.set_message(format!("fetching {count} artifacts"));
        } else if !self.quiet {
            eprintln!("fetching {count} artifacts ({:.1} MB)", bytes as f64 / 1e6);
        }
    }

    fn bytes(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn finished(&self, name: &str, size: u64) {
        if self.lines {
            eprintln!("  fetched {name} ({size} bytes)");
        }
    }
}

/// A realize's progress: on a terminal one spinner line (`amd64: writing the Debian
/// layers · 12 layers, 1.2 GB at 85 MB/s`); otherwise a line per stage, a line per arch
/// when its layers are done, and with `-v` a line per layer.
pub struct BuildDisplay {
    image: String,
    bar: Option<ProgressBar>,
    lines: bool,
    verbose: bool,
    tally: Mutex<Tally>,
}

/// The layers of the arch being built.
struct Tally {
    arch: String,
    stage: String,
    started: Instant,
    written: usize,
    reused: usize,
    /// Uncompressed bytes of the layers written (not reused).
    bytes: u64,
}

impl Tally {
    fn new(arch: &str) -> Tally {
        Tally {
            arch: arch.to_string(),
            stage: String::new(),
            started: Instant::now(),
            written: 0,
            reused: 0,
            bytes: 0,
        }
    }

    fn summary(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        format!(
            "{} layer{} written ({} at {}/s){}",
            self.written,
            if self.written == 1 { "" } else { "s" },
            human(self.bytes),
            human((self.bytes as f64 / secs) as u64),
            match self.reused {
                0 => String::new(),
                n => format!(", {n} reused"),
            }
        )
    }
}

impl BuildDisplay {
    pub fn new(out: &Output, image: &str) -> BuildDisplay {
        let terminal = std::io::stderr().is_terminal();
        let bar = (terminal && !out.quiet).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .expect("template is valid"),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        BuildDisplay {
            image: image.to_string(),
            bar,
            lines: !terminal && !out.quiet,
            verbose: out.verbose > 0,
            tally: Mutex::new(Tally::new("")),
        }
    }

    /// Ends the display; off a terminal, says what the last arch wrote.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let tally = self.tally.lock().expect("progress lock");
        if self.lines && !tally.arch.is_empty() {
            eprintln!("{} {}: {}", self.image, tally.arch, tally.summary());
        }
    }

    fn redraw(&self, tally: &Tally) {
        if let Some(bar) = &self.bar {
            let layers = match tally.written + tally.reused {
                0 => String::new(),
                _ => format!(" · {}", tally.summary()),
            };
            bar.set_message(format!(
                "{}: {}{layers}",
                self.who(&tally.arch),
                tally.stage
            ));
        }
    }

    /// "IMAGE ARCH", or "IMAGE" for a stage of the whole image (no arch).
    fn who(&self, arch: &str) -> String {
        match arch {
            "" => self.image.clone(),
            arch => format!("{} {arch}", self.image),
        }
    }

    /// A stage begins: for another arch (or the whole image, arch ""), the previous arch's
    /// layers are summed up first.
    fn begin(&self, arch: &str, what: &str) {
        let mut tally = self.tally.lock().expect("progress lock");
        if tally.arch != arch {
            if self.lines && !tally.arch.is_empty() {
                eprintln!("{} {}: {}", self.image, tally.arch, tally.summary());
            }
            *tally = Tally::new(arch);
        }
        tally.stage = what.to_string();
        if self.lines {
            eprintln!("{}: {what}", self.who(arch));
        }
        self.redraw(&tally);
    }
}

impl BuildProgress for BuildDisplay {
    fn stage(&self, arch: &str, what: &str) {
        self.begin(arch, what);
    }

    fn image_stage(&self, what: &str) {
        self.begin("", what);
    }

    fn layer(&self, arch: &str, layer: &BuiltLayer, reused: bool, seconds: f64) {
        let mut tally = self.tally.lock().expect("progress lock");
        if reused {
            tally.reused += 1;
        } else {
            tally.written += 1;
            tally.bytes += layer.tar_size;
        }
        if self.lines && self.verbose {
            eprintln!(
                "{} {arch}: layer {} ({}, {}) {}",
                self.image,
                &layer.digest[..19.min(layer.digest.len())],
                human(layer.tar_size),
                if reused {
                    "reused".to_string()
                } else {
                    format!("written in {seconds:.1}s")
                },
                layer.comment
            );
        }
        self.redraw(&tally);
    }
}
