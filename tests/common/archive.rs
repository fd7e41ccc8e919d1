//! A tiny Debian archive on disk: pool, Packages(.gz, .xz) with by-hash copies, Release and
//! an InRelease clear-signed with a test key — the layout a real mirror serves.

use super::deb::{DebSpec, gzip, xz};
use pgp::composed::{CleartextSignedMessage, Deserializable, SignedSecretKey};
use pgp::types::Password;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Which key signs InRelease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signer {
    /// The RSA archive key's signing subkey (like Debian's automatic keys).
    ArchiveSubkey,
    /// The Ed25519 release key's primary key (like Debian's stable release key).
    Release,
    Expired,
    Untrusted,
    Unsigned,
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn secret(name: &str) -> SignedSecretKey {
    let text = fs::read(fixtures().join(format!("keys/{name}.sec.asc"))).unwrap();
    SignedSecretKey::from_armor_single(text.as_slice())
        .unwrap()
        .0
}

pub fn sign(text: &str, signer: Signer) -> String {
    let rng = rand::thread_rng();
    let pw = Password::empty();
    let msg = match signer {
        Signer::Unsigned => return text.to_string(),
        Signer::ArchiveSubkey => {
            CleartextSignedMessage::sign(rng, text, &secret("archive").secret_subkeys[0].key, &pw)
        }
        Signer::Release => {
            CleartextSignedMessage::sign(rng, text, &secret("release").primary_key, &pw)
        }
        Signer::Expired => {
            CleartextSignedMessage::sign(rng, text, &secret("expired").primary_key, &pw)
        }
        Signer::Untrusted => {
            CleartextSignedMessage::sign(rng, text, &secret("untrusted").primary_key, &pw)
        }
    }
    .unwrap();
    msg.to_armored_string(Default::default()).unwrap()
}

/// A suite to publish.
pub struct Suite {
    pub name: String,
    pub codename: String,
    pub date: SystemTime,
    pub valid_until: Option<SystemTime>,
    pub signer: Signer,
    pub packages: BTreeMap<String, Vec<DebSpec>>,
    /// Packages.gz beside Packages.xz, as Debian's main suites offer; its security and
    /// updates suites offer only .xz.
    pub gzip_index: bool,
}

impl Suite {
    pub fn new(name: &str, date: SystemTime) -> Suite {
        Suite {
            name: name.into(),
            codename: name.into(),
            date,
            valid_until: None,
            signer: Signer::ArchiveSubkey,
            packages: BTreeMap::new(),
            gzip_index: true,
        }
    }

    /// Adds a package to every listed arch (an `all` package appears in each arch's index).
    pub fn add(&mut self, archs: &[&str], spec: DebSpec) {
        for a in archs {
            self.packages
                .entry(a.to_string())
                .or_default()
                .push(spec.clone());
        }
    }
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t).replace("GMT", "UTC")
}

pub fn days_ago(n: u64) -> SystemTime {
    SystemTime::now() - Duration::from_secs(n * 86_400)
}

/// Writes a suite under `root` (the mirror's base directory). Returns the .deb bytes by file name.
pub fn publish(root: &Path, suite: &Suite, pool_prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let mut debs = BTreeMap::new();
    let mut release_entries = Vec::new();
    for (arch, specs) in &suite.packages {
        let mut packages = String::new();
        for spec in specs {
            let bytes = spec.build();
            let file_name = format!(
                "{}_{}_{}.deb",
                spec.name,
                spec.version.replace(':', "%3a"),
                spec.arch
            );
            let first = spec.name.chars().next().unwrap();
            let rel = format!("{pool_prefix}/main/{first}/{}/{file_name}", spec.name);
            let path = root.join(&rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, &bytes).unwrap();
            let control = spec.control();
            let (head, desc) = control.split_at(control.find("Description:").unwrap());
            packages.push_str(head);
            packages.push_str(&format!(
                "Filename: {rel}\nSize: {}\nSHA256: {}\n{desc}\n",
                bytes.len(),
                sha(&bytes)
            ));
            debs.insert(file_name, bytes);
        }
        let dir = format!("main/binary-{arch}");
        let base = root.join("dists").join(&suite.name).join(&dir);
        fs::create_dir_all(base.join("by-hash/SHA256")).unwrap();
        release_entries.push((
            format!("{dir}/Packages"),
            sha(packages.as_bytes()),
            packages.len(),
        ));
        let mut forms = vec![("xz", xz(packages.as_bytes()))];
        if suite.gzip_index {
            forms.push(("gz", gzip(packages.as_bytes())));
        }
        for (extension, compressed) in forms {
            fs::write(base.join(format!("Packages.{extension}")), &compressed).unwrap();
            fs::write(
                base.join("by-hash/SHA256").join(sha(&compressed)),
                &compressed,
            )
            .unwrap();
            release_entries.push((
                format!("{dir}/Packages.{extension}"),
                sha(&compressed),
                compressed.len(),
            ));
        }
    }
    let mut release = format!(
        "Origin: Test\nLabel: Test\nSuite: {}\nCodename: {}\nDate: {}\n",
        suite.name,
        suite.codename,
        http_date(suite.date)
    );
    if let Some(v) = suite.valid_until {
        release.push_str(&format!("Valid-Until: {}\n", http_date(v)));
    }
    release.push_str(&format!(
        "Acquire-By-Hash: yes\nArchitectures: {}\nComponents: main\nSHA256:\n",
        suite.packages.keys().cloned().collect::<Vec<_>>().join(" ")
    ));
    for (p, h, s) in &release_entries {
        release.push_str(&format!(" {h} {s:>8} {p}\n"));
    }
    let dists = root.join("dists").join(&suite.name);
    fs::write(dists.join("Release"), &release).unwrap();
    fs::write(dists.join("InRelease"), sign(&release, suite.signer)).unwrap();
    debs
}
