//! Loading an arch's locked packages from the store: each `.deb` re-hashed, then read as a
//! stream into entries, with what the fixups need about it (control members, file list,
//! conffile checksums, the few files whose content they copy).

use crate::deb822::Paragraphs;
use crate::debian::copyright::{self, Licensing};
use crate::debian::relation::{self, Relation};
use crate::debian::version::Version;
use crate::fixup::{InstalledPackage, RETAINED_PREFIXES};
use crate::layer::content::Spill;
use crate::layer::tar::EntryKind;
use crate::layer::tree::Entry;
use crate::layer::tree::merged_usr;
use crate::lockfile::DebianArtifact;
use crate::store::{Store, StoreError};
use crate::unpack::deb::{Sink, UnpackError, read_deb};
use md5::{Digest, Md5};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// One unpacked package.
pub struct LoadedPackage {
    pub artifact: DebianArtifact,
    pub info: InstalledPackage,
    pub entries: Vec<Entry>,
    /// Uncompressed size of its files (decides whether it gets a layer of its own).
    pub data_size: u64,
    pub retained: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error("{package}: reading back its unpacked files: {source}")]
    Spill {
        package: String,
        source: std::io::Error,
    },
    /// A spill file could not be made (the store's temp area is full or read-only).
    #[error("creating a spill file in the store's temp area: {0}")]
    SpillFile(#[from] std::io::Error),
}

fn load_one(
    store: &Store,
    artifact: &DebianArtifact,
    spill: &Spill,
) -> Result<LoadedPackage, LoadError> {
    let deb = store.open_verified(&artifact.sha256, artifact.file_name())?;
    let label = format!("{} {}", artifact.name, artifact.version);
    let contents = spill.with_writer(|w| {
        read_deb(std::io::BufReader::new(deb), &label, Sink::Spill(w)).map_err(LoadError::from)
    })?;
    let read_back = |e: &Entry| {
        e.node.content.to_vec().map_err(|source| LoadError::Spill {
            package: label.clone(),
            source,
        })
    };
    let control_text = String::from_utf8_lossy(
        contents
            .control
            .get("control")
            .map(Vec::as_slice)
            .unwrap_or_default(),
    )
    .into_owned();
    let paragraph = Paragraphs::new(&control_text).next().and_then(Result::ok);
    let field = |name: &str| {
        paragraph
            .as_ref()
            .and_then(|p| p.get(name))
            .unwrap_or("")
            .to_string()
    };
    let mut list = vec!["/.".to_string()];
    list.extend(contents.entries.iter().map(|e| format!("/{}", e.path)));
    let conffiles = contents
        .control
        .get("conffiles")
        .map(|c| {
            String::from_utf8_lossy(c)
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with('/'))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .filter_map(|path| {
            let entry = contents
                .entries
                .iter()
                .find(|e| e.path == path.trim_start_matches('/'))?;
            Some(read_back(entry).map(|data| (path, hex::encode(Md5::digest(data)))))
        })
        .collect::<Result<_, _>>()?;
    let mut retained = BTreeMap::new();
    let mut data_size = 0;
    for e in &contents.entries {
        data_size += e.node.content.len();
        let mapped = merged_usr(&e.path, &e.node.kind);
        if e.node.kind == EntryKind::File && RETAINED_PREFIXES.iter().any(|p| mapped.starts_with(p))
        {
            retained.insert(mapped, read_back(e)?);
        }
    }
    let licenses = licensing(&field("Package"), &contents.entries, read_back)?;
    let info = InstalledPackage {
        name: field("Package"),
        architecture: field("Architecture"),
        multi_arch_same: field("Multi-Arch") == "same",
        control: contents.control,
        list,
        conffiles,
        licenses,
    };
    Ok(LoadedPackage {
        artifact: artifact.clone(),
        info,
        entries: contents.entries,
        data_size,
        retained,
    })
}

/// The license names of `usr/share/doc/NAME/copyright`, or the package whose
/// documentation directory NAME's links to.
fn licensing(
    name: &str,
    entries: &[Entry],
    read_back: impl Fn(&Entry) -> Result<Vec<u8>, LoadError>,
) -> Result<Licensing, LoadError> {
    let doc = format!("usr/share/doc/{name}");
    let copyright = format!("{doc}/copyright");
    for e in entries {
        match &e.node.kind {
            EntryKind::File if e.path == copyright => {
                let text = read_back(e)?;
                return Ok(
                    copyright::declared_licenses(&String::from_utf8_lossy(&text))
                        .map_or(Licensing::Unknown, Licensing::Declared),
                );
            }
            EntryKind::Symlink(target) if e.path == doc && !target.contains('/') => {
                return Ok(Licensing::SameAs(target.clone()));
            }
            _ => {}
        }
    }
    Ok(Licensing::Unknown)
}

/// Loads every package in parallel, its files' bytes into `spill`; errors are reported in
/// lock order.
pub fn load_all(
    store: &Store,
    artifacts: &[DebianArtifact],
    spill: &Spill,
) -> Result<Vec<LoadedPackage>, LoadError> {
    artifacts
        .par_iter()
        .map(|a| load_one(store, a, spill))
        .collect::<Vec<_>>()
        .into_iter()
        .collect()
}

/// `Replaces` as a decision: may package `new` overwrite a file of package `old`?
pub struct ReplacesTable {
    replaces: BTreeMap<String, Vec<Relation>>,
    versions: BTreeMap<String, Version>,
}

impl ReplacesTable {
    /// From each package's lock entry and its control file.
    pub fn new<'p>(
        packages: impl IntoIterator<Item = (&'p DebianArtifact, &'p InstalledPackage)>,
    ) -> ReplacesTable {
        let mut table = ReplacesTable {
            replaces: BTreeMap::new(),
            versions: BTreeMap::new(),
        };
        for (artifact, info) in packages {
            let control = info.member_text("control").unwrap_or_default();
            let replaces = Paragraphs::new(&control)
                .next()
                .and_then(Result::ok)
                .and_then(|p| p.get("Replaces").map(str::to_string))
                .and_then(|field| relation::parse_field(&field).ok())
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .collect();
            table.replaces.insert(artifact.name.clone(), replaces);
            if let Ok(v) = Version::parse(&artifact.version) {
                table.versions.insert(artifact.name.clone(), v);
            }
        }
        table
    }

    pub fn allows(&self, new: &str, old: &str) -> bool {
        self.replaces.get(new).is_some_and(|rels| {
            rels.iter()
                .any(|r| r.name == old && r.version_matches(self.versions.get(old)))
        })
    }
}
