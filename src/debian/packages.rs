//! The binary package index of one architecture: every suite's `Packages` merged,
//! keeping apt's candidate (the newest version) of each package.

use super::version::{Version, VersionError};
use crate::deb822::{ControlError, Paragraphs};
use crate::digest::Sha256Hex;
use std::collections::HashMap;

/// What the resolver and the lock need of one `Packages` stanza.
#[derive(Clone, Debug)]
pub struct BinaryPackage {
    pub name: String,
    pub version: Version,
    pub architecture: String,
    pub multi_arch: MultiArch,
    pub essential: bool,
    pub priority: Priority,
    pub depends: String,
    pub pre_depends: String,
    pub recommends: String,
    pub provides: String,
    pub conflicts: String,
    pub breaks: String,
    pub filename: String,
    pub size: u64,
    pub sha256: Sha256Hex,
    /// Index of the suite (in the order given to [`PackageIndex::build`]) it came from.
    pub suite: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultiArch {
    No,
    Same,
    Foreign,
    Allowed,
}

/// Debian priorities, most important first so that sorting prefers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Required,
    Important,
    Standard,
    Optional,
    Extra,
    Unknown,
}

impl Priority {
    fn parse(text: &str) -> Priority {
        match text {
            "required" => Priority::Required,
            "important" => Priority::Important,
            "standard" => Priority::Standard,
            "optional" => Priority::Optional,
            "extra" => Priority::Extra,
            _ => Priority::Unknown,
        }
    }
}

/// A `Packages` stanza that lacks what every stanza must have.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{source_name}, line {line}: {error}")]
    BadName {
        source_name: String,
        line: usize,
        error: crate::name::NameError,
    },
    #[error("{source_name}: {error}")]
    Control {
        source_name: String,
        error: ControlError,
    },
    #[error("{source_name}, line {line}: stanza has no {field} field")]
    MissingField {
        source_name: String,
        line: usize,
        field: &'static str,
    },
    #[error("{source_name}, line {line}: {error}")]
    BadVersion {
        source_name: String,
        line: usize,
        error: VersionError,
    },
    #[error("{source_name}, line {line}: SHA256: {error}")]
    BadHash {
        source_name: String,
        line: usize,
        error: crate::digest::DigestError,
    },
    #[error("{source_name}, line {line}: Size {text:?} is not a number")]
    BadSize {
        source_name: String,
        line: usize,
        text: String,
    },
}

/// Parses one `Packages` text into records. `source_name` names it in errors.
pub fn parse_packages(
    text: &str,
    source_name: &str,
    suite: usize,
) -> Result<Vec<BinaryPackage>, IndexError> {
    let mut out = Vec::with_capacity(text.len() / 1200);
    for paragraph in Paragraphs::new(text) {
        let paragraph = paragraph.map_err(|error| IndexError::Control {
            source_name: source_name.to_string(),
            error,
        })?;
        let line = paragraph.line;
        let required = |field: &'static str| {
            paragraph
                .get(field)
                .ok_or_else(|| IndexError::MissingField {
                    source_name: source_name.to_string(),
                    line,
                    field,
                })
        };
        let name = required("Package")?;
        let version =
            Version::parse(required("Version")?).map_err(|error| IndexError::BadVersion {
                source_name: source_name.to_string(),
                line,
                error,
            })?;
        let size_text = required("Size")?;
        let size = size_text.parse().map_err(|_| IndexError::BadSize {
            source_name: source_name.to_string(),
            line,
            text: size_text.to_string(),
        })?;
        let text_of = |field: &str| paragraph.get(field).unwrap_or("").to_string();
        out.push(BinaryPackage {
            name: name.to_string(),
            version,
            architecture: required("Architecture")?.to_string(),
            multi_arch: match paragraph.get("Multi-Arch") {
                Some("same") => MultiArch::Same,
                Some("foreign") => MultiArch::Foreign,
                Some("allowed") => MultiArch::Allowed,
                _ => MultiArch::No,
            },
            essential: paragraph.get("Essential") == Some("yes"),
            priority: Priority::parse(paragraph.get("Priority").unwrap_or("")),
            depends: text_of("Depends"),
            pre_depends: text_of("Pre-Depends"),
            recommends: text_of("Recommends"),
            provides: text_of("Provides"),
            conflicts: text_of("Conflicts"),
            breaks: text_of("Breaks"),
            filename: crate::name::relative_path("Filename", required("Filename")?)
                .map_err(|error| IndexError::BadName {
                    source_name: source_name.to_string(),
                    line,
                    error,
                })?
                .to_string(),
            size,
            sha256: Sha256Hex::parse(required("SHA256")?).map_err(|error| IndexError::BadHash {
                source_name: source_name.to_string(),
                line,
                error,
            })?,
            suite,
        });
    }
    Ok(out)
}

/// The candidates of one architecture: the newest version of each name across suites.
#[derive(Clone, Debug, Default)]
pub struct PackageIndex {
    candidates: HashMap<String, BinaryPackage>,
    /// For pinned names (`lock --update NAME`): the newest version the pin displaced, used
    /// only when the pinned one cannot satisfy a dependency.
    displaced: HashMap<String, BinaryPackage>,
}

impl PackageIndex {
    /// Merges the parsed suites; on equal versions the earlier suite wins.
    pub fn build(suites: Vec<Vec<BinaryPackage>>) -> PackageIndex {
        let most = suites.iter().map(Vec::len).max().unwrap_or(0);
        let mut candidates: HashMap<String, BinaryPackage> = HashMap::with_capacity(most);
        for package in suites.into_iter().flatten() {
            match candidates.get(&package.name) {
                Some(existing) if existing.version >= package.version => {}
                _ => {
                    candidates.insert(package.name.clone(), package);
                }
            }
        }
        PackageIndex {
            candidates,
            displaced: HashMap::new(),
        }
    }

    /// Makes `package` the candidate of its name (keeping the newest as a fallback).
    pub fn pin(&mut self, package: BinaryPackage) {
        if let Some(newest) = self.candidates.insert(package.name.clone(), package) {
            let pinned = &self.candidates[&newest.name];
            if newest.version != pinned.version {
                self.displaced.insert(newest.name.clone(), newest);
            }
        }
    }

    /// The newest version a pin displaced, if any.
    pub fn displaced(&self, name: &str) -> Option<&BinaryPackage> {
        self.displaced.get(name)
    }

    pub fn candidate(&self, name: &str) -> Option<&BinaryPackage> {
        self.candidates.get(name)
    }

    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// All candidates, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &BinaryPackage> {
        self.candidates.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANZA: &str = "Package: hello\nVersion: 2.10-3\nArchitecture: amd64\nPriority: optional\nDepends: libc6 (>= 2.34)\nFilename: pool/main/h/hello/hello_2.10-3_amd64.deb\nSize: 100\nSHA256: 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n\n";

    #[test]
    fn newest_version_across_suites_is_the_candidate() {
        let main = parse_packages(STANZA, "main", 0).unwrap();
        let security =
            parse_packages(&STANZA.replace("2.10-3", "2.10-3+deb13u1"), "security", 1).unwrap();
        let index = PackageIndex::build(vec![main, security]);
        let hello = index.candidate("hello").unwrap();
        assert_eq!(hello.version.as_str(), "2.10-3+deb13u1");
        assert_eq!(hello.suite, 1);
    }

    #[test]
    fn missing_fields_are_named() {
        let err = parse_packages(
            "Package: x\nVersion: 1\nArchitecture: all\nSize: 1\nSHA256: a\n",
            "t",
            0,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no Filename field"), "{err}");
        let hostile = STANZA.replace("pool/main/h/hello/", "../../../");
        let err = parse_packages(&hostile, "P", 0).unwrap_err();
        assert!(
            err.to_string().contains("Filename \"../../../hello"),
            "{err}"
        );
    }

    #[test]
    fn a_sha256_that_could_climb_out_of_the_store_is_refused() {
        let sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        for bad in ["../../../../etc/passwd", &sha.to_uppercase(), &sha[1..]] {
            let err = parse_packages(&STANZA.replace(sha, bad), "P", 0).unwrap_err();
            assert!(err.to_string().contains("P, line 1: SHA256: "), "{err}");
        }
    }
}
