//! Download progress: a bar with bytes, rate and ETA on a terminal, plain lines otherwise.

use super::Output;
use carbon_store::download::FetchProgress;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

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
