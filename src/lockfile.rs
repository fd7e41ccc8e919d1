//! The lockfile's data model, at the bottom of the crate: what fetch, realize, the store's
//! gc and bundles, the registry cache and the resolvers read or produce, while only the
//! `lock` command (above them all) makes lockfiles. Plain types with validation on read.
//!
//! The lockfile: one per image, every artifact of every arch on its own sorted line, so
//! a version bump is a one-line diff. Written by hand (not by a TOML serializer) so the
//! layout is fixed; read back through the `toml` parser with strict checks.

use crate::digest::{Digest, Sha256Hex};
use crate::recipe::SUPPORTED_ARCHS;
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub const LOCK_VERSION: i64 = 1;

/// One signed index the lock was resolved against.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedIndex {
    pub ecosystem: String,
    pub suite: String,
    pub mirror: String,
    pub arch: String,
    pub date: String,
    pub inrelease: String,
    /// component → `sha256:<hex>` of its uncompressed Packages file.
    pub packages: BTreeMap<String, String>,
}

/// One Debian package pinned for one arch.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "DebianLine")]
pub struct DebianArtifact {
    pub name: String,
    pub version: String,
    pub component: String,
    pub suite: String,
    pub path: String,
    pub sha256: Sha256Hex,
    pub size: u64,
}

impl DebianArtifact {
    /// The file name part of `path`: how the artifact is named in the store.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// One wheel pinned for one arch, named by its file name (never a URL).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "PythonLine")]
pub struct PythonArtifact {
    pub name: String,
    pub version: String,
    pub component: String,
    pub file: String,
    pub sha256: Sha256Hex,
    pub size: u64,
    /// For a wheel built here from an sdist (`build-from-source`): what it is built from.
    /// The wheel itself is on no index; `fetch` rebuilds it and checks `sha256`.
    pub built_from: Option<SourceBuild>,
}

impl PythonArtifact {
    /// What a wheel built here is built from (its sdist and backend wheels); empty for a
    /// wheel from the index.
    pub fn build_sources(&self) -> Vec<&IndexPin> {
        self.built_from
            .iter()
            .flat_map(|b| std::iter::once(&b.sdist).chain(&b.requires))
            .collect()
    }
}

/// One npm package (or the Node.js runtime) pinned for one arch, at its place.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "NpmLine")]
pub struct NpmArtifact {
    /// The registry package (an `npm:` alias is installed under another directory name).
    pub name: String,
    pub version: String,
    pub component: String,
    /// Where it goes under the Node prefix's `lib`: `node_modules/a/node_modules/b`; `.`
    /// for the runtime, whose build is the prefix itself.
    pub at: String,
    /// Its sha512, from the registry's `integrity`.
    pub integrity: Digest,
    /// The tarball's path under the registry.
    pub path: String,
    pub size: u64,
}

impl NpmArtifact {
    /// The store name of its tarball: the last component of its registry path.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// An npm line as written, checked into an [`NpmArtifact`].
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NpmLine {
    name: String,
    version: String,
    component: String,
    at: String,
    integrity: String,
    path: String,
    size: u64,
}

impl TryFrom<NpmLine> for NpmArtifact {
    type Error = String;

    fn try_from(l: NpmLine) -> Result<Self, String> {
        let ctx = format!("npm {}@{}", l.name, l.version);
        crate::name::npm_package("npm package name", &l.name).map_err(|e| format!("{ctx}: {e}"))?;
        let integrity = Digest::from_sri(&l.integrity).map_err(|e| format!("{ctx}: {e}"))?;
        crate::name::relative_path("path", &l.path).map_err(|e| format!("{ctx}: {e}"))?;
        if l.at != "." {
            let mut rest = l.at.as_str();
            while !rest.is_empty() {
                let tail = rest
                    .strip_prefix("node_modules/")
                    .ok_or_else(|| format!("{ctx}: `at` {:?} is not a node_modules path", l.at))?;
                let (name, after) = match tail.find("/node_modules/") {
                    Some(i) => (&tail[..i], &tail[i + 1..]),
                    None => (tail, ""),
                };
                crate::name::npm_package("npm package name in `at`", name)
                    .map_err(|e| format!("{ctx}: {e}"))?;
                rest = after;
            }
        }
        Ok(NpmArtifact {
            name: l.name,
            version: l.version,
            component: l.component,
            at: l.at,
            integrity,
            path: l.path,
            size: l.size,
        })
    }
}

/// An sdist and the pinned wheels of its build backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceBuild {
    pub sdist: IndexPin,
    pub requires: Vec<IndexPin>,
}

/// A file of a package index, pinned by name and hash.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "PinLine")]
pub struct IndexPin {
    /// The project whose index page lists the file.
    pub project: String,
    pub file: String,
    pub sha256: Sha256Hex,
    pub size: u64,
}

fn pin_toml(p: &IndexPin) -> String {
    format!(
        "{{ project = {}, file = {}, sha256 = {}, size = {} }}",
        quote(&p.project),
        quote(&p.file),
        quote(&p.sha256),
        p.size
    )
}

/// Everything pinned for one arch.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchLock {
    #[serde(default)]
    pub debian: Vec<DebianArtifact>,
    #[serde(default)]
    pub python: Vec<PythonArtifact>,
    #[serde(default)]
    /// Sorted by `at`: the order npm lays them out.
    pub npm: Vec<NpmArtifact>,
}

/// Where a pinned file comes from: what fetching it needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin<'a> {
    /// A `.deb` at `path` under the mirror of `suite`.
    Debian { suite: &'a str, path: &'a str },
    /// A wheel or sdist listed on the Python indexes' page of `project`.
    PythonIndex { project: &'a str },
    /// A wheel on no index, built here from its pinned sources (which are listed too).
    BuiltHere,
    /// An npm tarball at `path` under the registry.
    Npm { path: &'a str },
}

/// One file a lock pins, whatever its ecosystem: how fetch, the store's gc, bundles and
/// `show` see a lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedFile<'a> {
    /// Its file name in the store (never a path).
    pub name: &'a str,
    pub digest: Digest,
    pub size: u64,
    pub origin: Origin<'a>,
}

impl ArchLock {
    /// Every file this arch pins: each `.deb`, each wheel (a wheel built here followed by
    /// the sdist and backend wheels it is built from), each npm tarball.
    pub fn files(&self) -> impl Iterator<Item = PinnedFile<'_>> {
        let debian = self.debian.iter().map(|d| PinnedFile {
            name: d.file_name(),
            digest: d.sha256.digest(),
            size: d.size,
            origin: Origin::Debian {
                suite: &d.suite,
                path: &d.path,
            },
        });
        let python = self.python.iter().flat_map(|w| {
            let origin = match w.built_from {
                None => Origin::PythonIndex { project: &w.name },
                Some(_) => Origin::BuiltHere,
            };
            let wheel = PinnedFile {
                name: &w.file,
                digest: w.sha256.digest(),
                size: w.size,
                origin,
            };
            let sources = w.build_sources().into_iter().map(|p| PinnedFile {
                name: &p.file,
                digest: p.sha256.digest(),
                size: p.size,
                origin: Origin::PythonIndex {
                    project: &p.project,
                },
            });
            std::iter::once(wheel).chain(sources)
        });
        let npm = self.npm.iter().map(|p| PinnedFile {
            name: p.file_name(),
            digest: p.integrity.clone(),
            size: p.size,
            origin: Origin::Npm { path: &p.path },
        });
        debian.chain(python).chain(npm)
    }
}

/// A whole lockfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lockfile {
    pub image: String,
    pub recipes: String,
    pub source_date_epoch: u64,
    pub index: Vec<LockedIndex>,
    /// Mirror names of the Python package indexes (empty without Python artifacts).
    pub python_indexes: Vec<String>,
    pub archs: BTreeMap<String, ArchLock>,
}

/// A lockfile that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LockParseError {
    #[error("not valid TOML: {0}")]
    Toml(String),
    #[error(
        "lock format version {0} is not supported by this carbon-store (expected {LOCK_VERSION}); upgrade carbon-store or re-run `carbon-store lock`"
    )]
    Version(i64),
    #[error("{0}")]
    Field(String),
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

impl Lockfile {
    /// The Debian indexes the lock was resolved against for `arch`.
    pub fn debian_indexes<'l>(&'l self, arch: &'l str) -> impl Iterator<Item = &'l LockedIndex> {
        self.index
            .iter()
            .filter(move |i| i.ecosystem == "debian" && i.arch == arch)
    }

    /// The canonical text. Artifacts are sorted by name and version.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        out.push_str("# Generated by `carbon-store lock`. Do not edit.\n");
        let _ = writeln!(out, "version = {LOCK_VERSION}");
        let _ = writeln!(out, "image = {}", quote(&self.image));
        let _ = writeln!(out, "recipes = {}", quote(&self.recipes));
        let _ = writeln!(out, "source-date-epoch = {}", self.source_date_epoch);
        if !self.python_indexes.is_empty() {
            let names: Vec<String> = self.python_indexes.iter().map(|n| quote(n)).collect();
            let _ = writeln!(out, "python-indexes = [{}]", names.join(", "));
        }
        let mut index = self.index.clone();
        index.sort_by(|a, b| {
            (&a.ecosystem, &a.arch, &a.suite).cmp(&(&b.ecosystem, &b.arch, &b.suite))
        });
        for i in &index {
            out.push_str("\n[[index]]\n");
            let _ = writeln!(out, "ecosystem = {}", quote(&i.ecosystem));
            let _ = writeln!(out, "suite = {}", quote(&i.suite));
            let _ = writeln!(out, "mirror = {}", quote(&i.mirror));
            let _ = writeln!(out, "arch = {}", quote(&i.arch));
            let _ = writeln!(out, "date = {}", quote(&i.date));
            let _ = writeln!(out, "inrelease = {}", quote(&i.inrelease));
            let packages: Vec<String> = i
                .packages
                .iter()
                .map(|(c, h)| format!("{} = {}", quote_key(c), quote(h)))
                .collect();
            let _ = writeln!(out, "packages = {{ {} }}", packages.join(", "));
        }
        for (arch, lock) in &self.archs {
            let _ = write!(out, "\n[{arch}]\ndebian = [\n");
            let mut debs = lock.debian.clone();
            debs.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
            for d in &debs {
                let _ = writeln!(
                    out,
                    "  {{ name = {}, version = {}, component = {}, suite = {}, path = {}, sha256 = {}, size = {} }},",
                    quote(&d.name),
                    quote(&d.version),
                    quote(&d.component),
                    quote(&d.suite),
                    quote(&d.path),
                    quote(&d.sha256),
                    d.size
                );
            }
            out.push_str("]\n");
            if !lock.python.is_empty() {
                out.push_str("python = [\n");
                let mut wheels = lock.python.clone();
                wheels.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
                for w in &wheels {
                    let built_from = w.built_from.as_ref().map_or(String::new(), |b| {
                        let requires: Vec<String> = b.requires.iter().map(pin_toml).collect();
                        format!(
                            ", sdist = {}, build-requires = [{}]",
                            pin_toml(&b.sdist),
                            requires.join(", ")
                        )
                    });
                    let _ = writeln!(
                        out,
                        "  {{ name = {}, version = {}, component = {}, file = {}, sha256 = {}, size = {}{built_from} }},",
                        quote(&w.name),
                        quote(&w.version),
                        quote(&w.component),
                        quote(&w.file),
                        quote(&w.sha256),
                        w.size
                    );
                }
                out.push_str("]\n");
            }
            if !lock.npm.is_empty() {
                out.push_str("npm = [\n");
                let mut packages = lock.npm.clone();
                packages.sort_by(|a, b| a.at.cmp(&b.at));
                for p in &packages {
                    let _ = writeln!(
                        out,
                        "  {{ name = {}, version = {}, component = {}, at = {}, integrity = {}, path = {}, size = {} }},",
                        quote(&p.name),
                        quote(&p.version),
                        quote(&p.component),
                        quote(&p.at),
                        quote(&p.integrity.sri()),
                        quote(&p.path),
                        p.size
                    );
                }
                out.push_str("]\n");
            }
        }
        out
    }

    /// Parses a lockfile, refusing unknown keys, wrong types and names or digests that
    /// fail their checks (the wire types below, each turned into its model by `TryFrom`).
    pub fn parse(text: &str) -> Result<Lockfile, LockParseError> {
        let table: toml::Table = toml::from_str(text)
            .map_err(|e| LockParseError::Toml(e.to_string().trim_end().to_string()))?;
        // The version first: another format's fields would only confuse the error.
        let version = table
            .get("version")
            .and_then(|v| v.as_integer())
            .ok_or_else(|| LockParseError::Field("missing integer `version`".into()))?;
        if version != LOCK_VERSION {
            return Err(LockParseError::Version(version));
        }
        let wire: LockWire = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| LockParseError::Field(e.message().to_string()))?;
        let mut archs = BTreeMap::new();
        for (arch, lock) in wire.archs {
            if !SUPPORTED_ARCHS.contains(&arch.as_str()) {
                return Err(LockParseError::Field(format!("unknown key `{arch}`")));
            }
            archs.insert(arch, lock);
        }
        Ok(Lockfile {
            image: wire.image,
            recipes: wire.recipes,
            source_date_epoch: wire.source_date_epoch,
            index: wire.index,
            python_indexes: wire.python_indexes,
            archs,
        })
    }

    /// The mirror name that serves a suite, from the `[[index]]` records.
    pub fn mirror_of_suite(&self, suite: &str) -> Option<&str> {
        self.index
            .iter()
            .find(|i| i.suite == suite)
            .map(|i| i.mirror.as_str())
    }
}

fn quote_key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        k.to_string()
    } else {
        quote(k)
    }
}

/// A lockfile as written: the top level. Arch tables are the remaining keys (checked
/// against the supported archs), so unknown top-level keys are refused there.
#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct LockWire {
    #[allow(dead_code)]
    version: i64,
    image: String,
    recipes: String,
    source_date_epoch: u64,
    #[serde(default)]
    python_indexes: Vec<String>,
    #[serde(default)]
    index: Vec<LockedIndex>,
    #[serde(flatten)]
    archs: BTreeMap<String, ArchLock>,
}

/// A Debian line as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DebianLine {
    name: String,
    version: String,
    component: String,
    suite: String,
    path: String,
    sha256: String,
    size: u64,
}

impl TryFrom<DebianLine> for DebianArtifact {
    type Error = String;

    fn try_from(l: DebianLine) -> Result<Self, String> {
        let ctx = format!("debian {} {}", l.name, l.version);
        let sha256 = Sha256Hex::parse(&l.sha256).map_err(|e| format!("{ctx}: {e}"))?;
        crate::name::relative_path("path", &l.path).map_err(|e| format!("{ctx}: {e}"))?;
        Ok(DebianArtifact {
            name: l.name,
            version: l.version,
            component: l.component,
            suite: l.suite,
            path: l.path,
            sha256,
            size: l.size,
        })
    }
}

/// A wheel line as written (with what it is built from, for a wheel built here).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PythonLine {
    name: String,
    version: String,
    component: String,
    file: String,
    sha256: String,
    size: u64,
    sdist: Option<IndexPin>,
    build_requires: Option<Vec<IndexPin>>,
}

impl TryFrom<PythonLine> for PythonArtifact {
    type Error = String;

    fn try_from(l: PythonLine) -> Result<Self, String> {
        let ctx = format!("python {} {}", l.name, l.version);
        let sha256 = Sha256Hex::parse(&l.sha256).map_err(|e| format!("{ctx}: {e}"))?;
        crate::name::file_name("file", &l.file).map_err(|e| format!("{ctx}: {e}"))?;
        let built_from = match (l.sdist, l.build_requires) {
            (None, None) => None,
            (Some(sdist), Some(requires)) => Some(SourceBuild { sdist, requires }),
            (Some(_), None) => {
                return Err(format!("{ctx}: an sdist needs a `build-requires` array"));
            }
            (None, Some(_)) => return Err(format!("{ctx}: `build-requires` without an `sdist`")),
        };
        Ok(PythonArtifact {
            name: l.name,
            version: l.version,
            component: l.component,
            file: l.file,
            sha256,
            size: l.size,
            built_from,
        })
    }
}

/// An index pin as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PinLine {
    project: String,
    file: String,
    sha256: String,
    size: u64,
}

impl TryFrom<PinLine> for IndexPin {
    type Error = String;

    fn try_from(l: PinLine) -> Result<Self, String> {
        let bad = |e: &dyn std::fmt::Display| format!("{} {}: {e}", l.project, l.file);
        let sha256 = Sha256Hex::parse(&l.sha256).map_err(|e| bad(&e))?;
        crate::name::file_name("file", &l.file).map_err(|e| bad(&e))?;
        Ok(IndexPin {
            project: l.project,
            file: l.file,
            sha256,
            size: l.size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lockfile {
        let mut archs = BTreeMap::new();
        archs.insert(
            "amd64".to_string(),
            ArchLock {
                debian: vec![
                    DebianArtifact {
                        name: "zlib1g".into(),
                        version: "1:1.3".into(),
                        component: "base".into(),
                        suite: "trixie".into(),
                        path: "pool/main/z/zlib/zlib1g_1.3_amd64.deb".into(),
                        sha256: Sha256Hex::parse(&"a".repeat(64)).unwrap(),
                        size: 10,
                    },
                    DebianArtifact {
                        name: "bash".into(),
                        version: "5.2".into(),
                        component: "base".into(),
                        suite: "trixie-security".into(),
                        path: "pool/updates/main/b/bash/bash_5.2_amd64.deb".into(),
                        sha256: Sha256Hex::parse(&"b".repeat(64)).unwrap(),
                        size: 20,
                    },
                ],
                python: vec![
                    PythonArtifact {
                        name: "numpy".into(),
                        version: "2.4.6".into(),
                        component: "py".into(),
                        file: "numpy-2.4.6-cp313-cp313-manylinux_2_27_x86_64.whl".into(),
                        sha256: Sha256Hex::parse(&"c".repeat(64)).unwrap(),
                        size: 30,
                        built_from: None,
                    },
                    PythonArtifact {
                        name: "pyspark".into(),
                        version: "4.0.1".into(),
                        component: "py".into(),
                        file: "pyspark-4.0.1-py2.py3-none-any.whl".into(),
                        sha256: Sha256Hex::parse(&"d".repeat(64)).unwrap(),
                        size: 40,
                        built_from: Some(SourceBuild {
                            sdist: IndexPin {
                                project: "pyspark".into(),
                                file: "pyspark-4.0.1.tar.gz".into(),
                                sha256: Sha256Hex::parse(&"e".repeat(64)).unwrap(),
                                size: 50,
                            },
                            requires: vec![IndexPin {
                                project: "setuptools".into(),
                                file: "setuptools-80.0.0-py3-none-any.whl".into(),
                                sha256: Sha256Hex::parse(&"f".repeat(64)).unwrap(),
                                size: 60,
                            }],
                        }),
                    },
                ],
                npm: vec![NpmArtifact {
                    name: "@openai/codex".into(),
                    version: "0.1.0-linux-x64".into(),
                    component: "ai".into(),
                    at: "node_modules/@openai/codex/node_modules/@openai/codex-linux-x64".into(),
                    integrity: Digest::Sha512("ab".repeat(64)),
                    path: "@openai/codex/-/codex-0.1.0-linux-x64.tgz".into(),
                    size: 70,
                }],
            },
        );
        Lockfile {
            image: "minimal".into(),
            recipes: "sha256:00".into(),
            source_date_epoch: 1_700_000_000,
            index: vec![LockedIndex {
                ecosystem: "debian".into(),
                suite: "trixie".into(),
                mirror: "debian".into(),
                arch: "amd64".into(),
                date: "Sat, 21 Nov 2026 09:15:44 UTC".into(),
                inrelease: "sha256:11".into(),
                packages: [("main".to_string(), "sha256:22".to_string())].into(),
            }],
            python_indexes: vec!["pypi".into()],
            archs,
        }
    }

    #[test]
    fn round_trips_and_sorts_one_artifact_per_line() {
        let lock = sample();
        let text = lock.to_toml();
        let bash_line = text
            .lines()
            .position(|l| l.contains("name = \"bash\""))
            .unwrap();
        let zlib_line = text
            .lines()
            .position(|l| l.contains("name = \"zlib1g\""))
            .unwrap();
        assert_eq!(
            zlib_line,
            bash_line + 1,
            "sorted by name, one per line:\n{text}"
        );
        let back = Lockfile::parse(&text).unwrap();
        assert_eq!(back.to_toml(), text);
        assert_eq!(back.archs["amd64"].debian.len(), 2);
        assert_eq!(back.mirror_of_suite("trixie"), Some("debian"));
    }

    #[test]
    fn every_committed_lock_reads_back_to_its_own_bytes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lockfiles");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let lock = Lockfile::parse(&text).unwrap();
            assert_eq!(lock.to_toml(), text, "{}", lock.image);
            seen += 1;
        }
        assert!(seen >= 5);
    }

    #[test]
    fn refuses_unknown_keys_bad_hashes_and_escaping_paths() {
        let text = sample().to_toml();
        let err = Lockfile::parse(&text.replace("image =", "imgae ="))
            .unwrap_err()
            .to_string();
        assert!(err.contains("image"), "{err}");
        let err =
            Lockfile::parse(&text.replace("suite = \"trixie\", path", "suit = \"trixie\", path"))
                .unwrap_err()
                .to_string();
        assert!(err.contains("suit"), "{err}");
        assert!(
            Lockfile::parse(&text.replace(&"a".repeat(64), "xyz"))
                .unwrap_err()
                .to_string()
                .contains("64 lowercase hex")
        );
        for hostile in ["../z", "/etc/z", "pool//z", "pool/ma in/z"] {
            let err = Lockfile::parse(&text.replace("pool/main/z", hostile)).unwrap_err();
            assert!(
                err.to_string().contains("is not allowed"),
                "{hostile}: {err}"
            );
        }
        assert!(
            Lockfile::parse(&text.replace("version = 1", "version = 9"))
                .unwrap_err()
                .to_string()
                .contains("upgrade")
        );
        assert!(Lockfile::parse("not toml [").is_err());
        for (from, to, why) in [
            (
                "at = \"node_modules/@openai/codex/",
                "at = \"node_modules/../../",
                "\"../..\" is not allowed",
            ),
            (
                "at = \"node_modules/@openai/codex/",
                "at = \"lib/",
                "not a node_modules path",
            ),
            (
                "integrity = \"sha512-",
                "integrity = \"sha1-",
                "not a sha512 integrity",
            ),
            (
                "path = \"@openai/codex/-/",
                "path = \"../",
                "is not allowed",
            ),
        ] {
            assert!(text.contains(from), "{from}");
            let err = Lockfile::parse(&text.replace(from, to))
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{to}: {err}");
        }
    }
}
