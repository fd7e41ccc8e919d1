//! Debian version ordering checked against dpkg itself on ~3,000 real version strings
//! sampled from trixie's Packages files (tests/fixtures/debian-versions.txt).

use carbon_store::debian::version::Version;
use std::cmp::Ordering;
use std::process::Command;

fn dpkg_says(a: &str, op: &str, b: &str) -> bool {
    Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .status()
        .expect("dpkg runs")
        .success()
}

fn dpkg_cmp(a: &str, b: &str) -> Ordering {
    if dpkg_says(a, "lt", b) {
        Ordering::Less
    } else if dpkg_says(a, "eq", b) {
        Ordering::Equal
    } else {
        Ordering::Greater
    }
}

#[test]
fn ordering_matches_dpkg_on_real_versions() {
    if Command::new("dpkg").arg("--version").output().is_err() {
        panic!("dpkg is needed for this test (it is on every Debian machine)");
    }
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/debian-versions.txt"
    ))
    .unwrap();
    let mut versions: Vec<Version> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| Version::parse(l).unwrap())
        .collect();
    assert!(versions.len() > 2500);
    versions.sort();
    // Every adjacent pair of our sorted order, plus pseudo-random far pairs.
    let mut pairs: Vec<(String, String)> = versions
        .windows(2)
        .map(|w| (w[0].to_string(), w[1].to_string()))
        .collect();
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for _ in 0..1500 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x % versions.len() as u64) as usize;
        let j = ((x >> 32) % versions.len() as u64) as usize;
        pairs.push((versions[i].to_string(), versions[j].to_string()));
    }
    let chunks: Vec<Vec<(String, String)>> = pairs
        .chunks(pairs.len() / 4 + 1)
        .map(|c| c.to_vec())
        .collect();
    let mismatches: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|(a, b)| {
                            let ours = Version::parse(a).unwrap().cmp(&Version::parse(b).unwrap());
                            let theirs = dpkg_cmp(a, b);
                            (ours != theirs)
                                .then(|| format!("{a} vs {b}: ours {ours:?}, dpkg {theirs:?}"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
