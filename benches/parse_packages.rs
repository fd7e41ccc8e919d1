//! Time and peak memory to parse one full `Packages` file and build the candidate index.
//!
//! Usage: `cargo bench --bench parse_packages -- PATH [RUNS]` (PATH: an uncompressed
//! Packages file, e.g. from the store after `carbon-store lock`). Prints the median and
//! the peak resident memory of the process.

use carbon_store::debian::packages::{PackageIndex, parse_packages};
use std::time::Instant;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(path) = args.first() else {
        eprintln!("usage: cargo bench --bench parse_packages -- PATH [RUNS]");
        std::process::exit(2);
    };
    let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(7);
    let mut times = Vec::new();
    let mut stanzas = 0;
    let mut size = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let bytes = std::fs::read(path).expect("read the Packages file");
        size = bytes.len();
        let text = String::from_utf8_lossy(&bytes);
        let parsed = parse_packages(&text, path, 0).expect("parse");
        stanzas = parsed.len();
        let index = PackageIndex::build(vec![parsed]);
        std::hint::black_box(&index);
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "parse Packages: {:.1} MB, {} stanzas: median {:.3} s (min {:.3}, max {:.3}, {} runs), peak RSS {:.0} MB",
        size as f64 / 1e6,
        stanzas,
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        runs,
        peak_rss_mb()
    );
}
