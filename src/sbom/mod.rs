//! What an image is made of, said in the formats supply-chain tools read: an SPDX 2.3 and a
//! CycloneDX 1.6 document per arch (`spdx.rs`, `cyclonedx.rs`) and a SLSA provenance
//! statement (`provenance.rs`), all from one [`Inventory`].
//!
//! Why from the lock and the unpacked control data, not by scanning the image: the lock
//! already names every artifact by hash, and the Debian side knows each package's source,
//! dependencies and license names; a scanner would guess what is known. Every document is
//! deterministic — the same lock and image give the same bytes: identifiers and serial
//! numbers are derived from the image's manifest digest, times from `source-date-epoch`.
//! No crate writes CycloneDX 1.6 and SPDX's Rust model is unmaintained, so the documents
//! are serde values checked in CI by each format's own validator (docs/sbom.md).

pub mod cyclonedx;
pub mod provenance;
pub mod spdx;

use crate::deb822::Paragraphs;
use crate::debian::copyright::{self, Licensing};
use crate::debian::relation;
use crate::digest::Digest;
use crate::fixup::InstalledPackage;
use crate::lockfile::ArchLock;
use std::collections::BTreeMap;

/// An ecosystem's name in identifiers and properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ecosystem {
    Debian,
    Python,
    Npm,
}

impl Ecosystem {
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Debian => "deb",
            Ecosystem::Python => "pypi",
            Ecosystem::Npm => "npm",
        }
    }
}

/// One package of the image, as its lock line and control data describe it.
#[derive(Clone, Debug)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    pub purl: String,
    /// The recipe component whose layer holds it.
    pub component: String,
    /// The file it was installed from: a `.deb`, a wheel, a tarball.
    pub file: String,
    pub digest: Digest,
    /// A Debian package's source package and its version.
    pub source: Option<(String, String)>,
    /// An SPDX expression of its declared licenses; `None`: nothing a machine can read.
    pub license: Option<String>,
    /// `LicenseRef-` identifiers the expression uses, with the name they stand for.
    pub license_refs: Vec<(String, String)>,
    /// What it depends on, as indexes into the inventory's packages.
    pub depends: Vec<usize>,
    /// Where it is installed, for an npm package (`node_modules/a/node_modules/b`).
    pub at: Option<String>,
}

/// The image an SBOM describes.
#[derive(Clone, Debug)]
pub struct Subject {
    pub image: String,
    pub arch: String,
    /// `sha256:…` of the arch's image manifest.
    pub manifest_digest: String,
    /// The lock's `source-date-epoch`: every document's time.
    pub source_date_epoch: u64,
    /// The Debian release, as the purl's `distro` (`debian-13`).
    pub distro: String,
}

/// Every package of one arch's image.
#[derive(Clone, Debug)]
pub struct Inventory {
    pub subject: Subject,
    pub packages: Vec<Package>,
}

/// Debian releases by code name, for the purls' `distro` qualifier.
const RELEASES: &[(&str, &str)] = &[
    ("bookworm", "12"),
    ("trixie", "13"),
    ("forky", "14"),
    ("duke", "15"),
];

/// `debian-13` for a lock resolved against trixie (its first Debian suite without a `-`).
pub fn distro(lock: &ArchLock) -> String {
    let suite = lock
        .debian
        .iter()
        .map(|d| d.suite.split('-').next().unwrap_or(&d.suite))
        .next()
        .unwrap_or("unknown");
    match RELEASES.iter().find(|(name, _)| *name == suite) {
        Some((_, number)) => format!("debian-{number}"),
        None => format!("debian-{suite}"),
    }
}

fn purl(
    ty: &str,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    arch: Option<(&str, &str)>,
) -> String {
    let mut purl = packageurl::PackageUrl::new(ty, name).expect("valid purl type");
    if let Some(ns) = namespace {
        purl.with_namespace(ns).expect("valid purl namespace");
    }
    purl.with_version(version).expect("valid purl version");
    if let Some((arch, distro)) = arch {
        purl.add_qualifier("arch", arch).expect("valid qualifier");
        purl.add_qualifier("distro", distro)
            .expect("valid qualifier");
    }
    purl.to_string()
}

/// A Debian package's control fields that an SBOM reads.
struct Control {
    architecture: String,
    source: Option<(String, String)>,
    provides: Vec<String>,
    depends: Vec<Vec<String>>,
}

fn control(info: &InstalledPackage, version: &str) -> Control {
    let text = info.member_text("control").unwrap_or_default();
    let paragraph = Paragraphs::new(&text).next().and_then(Result::ok);
    let get = |name: &str| paragraph.as_ref().and_then(|p| p.get(name)).unwrap_or("");
    let groups = |field: &str| -> Vec<Vec<String>> {
        relation::parse_field(get(field))
            .unwrap_or_default()
            .into_iter()
            .map(|group| group.into_iter().map(|r| r.name).collect())
            .collect()
    };
    // `Source: name (version)` when the source version differs from the binary's.
    let source = Some(get("Source"))
        .filter(|s| !s.is_empty())
        .map(|s| match s.split_once(' ') {
            Some((name, v)) => (
                name.to_string(),
                v.trim_matches(|c| c == '(' || c == ')' || c == ' ')
                    .to_string(),
            ),
            None => (s.to_string(), version.to_string()),
        })
        .or_else(|| Some((info.name.clone(), version.to_string())));
    let mut depends = groups("Pre-Depends");
    depends.extend(groups("Depends"));
    Control {
        architecture: get("Architecture").to_string(),
        source,
        provides: groups("Provides").into_iter().flatten().collect(),
        depends,
    }
}

/// The declared licenses of a package, following a documentation link to the package
/// whose copyright file it shares.
fn licenses<'a>(
    name: &str,
    by_name: &BTreeMap<&str, &'a InstalledPackage>,
) -> Option<&'a [String]> {
    let mut current = *by_name.get(name)?;
    for _ in 0..4 {
        match &current.licenses {
            Licensing::Declared(names) => return Some(names),
            Licensing::SameAs(other) => current = by_name.get(other.as_str())?,
            Licensing::Unknown => return None,
        }
    }
    None
}

/// An arch's Debian packages in lock order, with their dependencies: each `Pre-Depends` and
/// `Depends` group satisfied by its first alternative the image has (by name or
/// `Provides`).
fn debian_packages(
    subject: &Subject,
    lock: &ArchLock,
    debian: &[InstalledPackage],
) -> Vec<Package> {
    let by_name: BTreeMap<&str, &InstalledPackage> =
        debian.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut packages = Vec::new();
    let mut provided: BTreeMap<String, usize> = BTreeMap::new();
    let mut wanted: Vec<Vec<Vec<String>>> = Vec::new();
    for (i, a) in lock.debian.iter().enumerate() {
        let c = by_name
            .get(a.name.as_str())
            .map(|info| control(info, &a.version));
        let arch = c
            .as_ref()
            .map(|c| c.architecture.clone())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| subject.arch.clone());
        let (license, license_refs) = match licenses(&a.name, &by_name) {
            Some(names) if !names.is_empty() => {
                let (expr, refs) = copyright::spdx_expression(names);
                (Some(expr), refs)
            }
            _ => (None, Vec::new()),
        };
        provided.insert(a.name.clone(), i);
        for p in c.iter().flat_map(|c| &c.provides) {
            provided.entry(p.clone()).or_insert(i);
        }
        wanted.push(c.as_ref().map(|c| c.depends.clone()).unwrap_or_default());
        packages.push(Package {
            ecosystem: Ecosystem::Debian,
            name: a.name.clone(),
            version: a.version.clone(),
            purl: purl(
                "deb",
                Some("debian"),
                &a.name,
                &a.version,
                Some((&arch, &subject.distro)),
            ),
            component: a.component.clone(),
            file: a.file_name().to_string(),
            digest: a.sha256.digest(),
            source: c.and_then(|c| c.source),
            license,
            license_refs,
            depends: Vec::new(),
            at: None,
        });
    }
    for (i, groups) in wanted.iter().enumerate() {
        let mut depends: Vec<usize> = groups
            .iter()
            .filter_map(|group| group.iter().find_map(|name| provided.get(name).copied()))
            .filter(|&d| d != i)
            .collect();
        depends.sort_unstable();
        depends.dedup();
        packages[i].depends = depends;
    }
    packages
}

/// What a lock line says of where a package comes from.
struct LockLine<'a> {
    component: &'a str,
    file: &'a str,
    digest: Digest,
}

/// A package known only by its lock line (a wheel, an npm package).
fn locked(
    ecosystem: Ecosystem,
    name: &str,
    version: &str,
    purl: String,
    line: LockLine,
) -> Package {
    let LockLine {
        component,
        file,
        digest,
    } = line;
    Package {
        ecosystem,
        name: name.to_string(),
        version: version.to_string(),
        purl,
        component: component.to_string(),
        file: file.to_string(),
        digest,
        source: None,
        license: None,
        license_refs: Vec::new(),
        depends: Vec::new(),
        at: None,
    }
}

impl Inventory {
    /// The inventory of one arch: its Debian packages (with `debian`, their control data,
    /// in any order), then its wheels, then its npm packages, each in lock order.
    pub fn of(subject: Subject, lock: &ArchLock, debian: &[InstalledPackage]) -> Inventory {
        let mut packages = debian_packages(&subject, lock, debian);
        packages.extend(lock.python.iter().map(|w| {
            let normalized = w.name.to_ascii_lowercase().replace('_', "-");
            let purl = purl("pypi", None, &normalized, &w.version, None);
            let line = LockLine {
                component: &w.component,
                file: &w.file,
                digest: w.sha256.digest(),
            };
            locked(Ecosystem::Python, &w.name, &w.version, purl, line)
        }));
        packages.extend(lock.npm.iter().map(|n| {
            let (namespace, name) = match n.name.split_once('/') {
                Some((scope, name)) => (Some(scope), name),
                None => (None, n.name.as_str()),
            };
            let purl = purl("npm", namespace, name, &n.version, None);
            let line = LockLine {
                component: &n.component,
                file: n.file_name(),
                digest: n.integrity.clone(),
            };
            Package {
                at: Some(n.at.clone()),
                ..locked(Ecosystem::Npm, &n.name, &n.version, purl, line)
            }
        }));
        Inventory { subject, packages }
    }

    /// A package's identifier inside a document: unique, of the characters SPDX allows,
    /// and the same for the same lock.
    pub fn id(&self, i: usize) -> String {
        let p = &self.packages[i];
        let name = copyright::spdx_idstring(&p.name);
        format!("SPDXRef-{}-{i}-{name}", p.ecosystem.as_str())
    }

    /// The image's purl: `pkg:oci/NAME@sha256%3A…?arch=amd64`.
    pub fn subject_purl(&self) -> String {
        let s = &self.subject;
        let mut purl = packageurl::PackageUrl::new("oci", s.image.as_str()).expect("valid purl");
        purl.with_version(s.manifest_digest.as_str())
            .expect("valid version");
        purl.add_qualifier("arch", s.arch.as_str())
            .expect("valid qualifier");
        purl.to_string()
    }

    /// A UUID derived from the subject and a purpose: the same image, the same UUID.
    pub fn uuid(&self, purpose: &str) -> String {
        use sha2::Digest as _;
        let hash = sha2::Sha256::digest(
            format!(
                "{purpose}\n{}\n{}",
                self.subject.arch, self.subject.manifest_digest
            )
            .as_bytes(),
        );
        let mut b = [0u8; 16];
        b.copy_from_slice(&hash[..16]);
        b[6] = (b[6] & 0x0f) | 0x50; // version 5: name-based, SHA
        b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
        let h = hex::encode(b);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_follow_the_spec_examples() {
        assert_eq!(
            purl(
                "deb",
                Some("debian"),
                "libc6",
                "2.41-12",
                Some(("amd64", "debian-13"))
            ),
            "pkg:deb/debian/libc6@2.41-12?arch=amd64&distro=debian-13"
        );
        assert_eq!(
            purl(
                "deb",
                Some("debian"),
                "ruby3.3",
                "1:3.3.8+ds",
                Some(("all", "debian-13"))
            ),
            "pkg:deb/debian/ruby3.3@1:3.3.8%2Bds?arch=all&distro=debian-13"
        );
        assert_eq!(
            purl("npm", Some("@anthropic-ai"), "claude-code", "2.1.0", None),
            "pkg:npm/%40anthropic-ai/claude-code@2.1.0"
        );
        assert_eq!(
            purl("pypi", None, "scikit-learn", "1.7.2", None),
            "pkg:pypi/scikit-learn@1.7.2"
        );
    }
}
