//! Streaming `.deb` reader: the ar container, `control.tar.*` and `data.tar.*` (xz, zstd,
//! gzip or plain) read as streams into entries — nothing is unpacked to disk and no
//! privilege is needed. Owners, modes (setuid, setgid, sticky), hard links, symlinks and
//! device nodes are kept exactly as the package ships them; paths that try to leave the
//! root are refused with the package and path named.

use crate::layer::content::{Content, SpillWriter};
use crate::layer::tar::EntryKind;
use crate::layer::tree::{Entry, Node};
use std::collections::BTreeMap;
use std::io::Read;

/// Where the bytes of a package's files go.
pub enum Sink<'s> {
    /// Into memory: for small packages read whole (tests, the interpreter's packages).
    Memory,
    /// Into a spill file, so that memory holds none of them.
    Spill(&'s mut SpillWriter),
}

/// A package's control members and data entries (in archive order).
#[derive(Clone, Debug, Default)]
pub struct DebContents {
    /// `control`, `md5sums`, `conffiles`, `postinst`, `triggers`, … by member name.
    pub control: BTreeMap<String, Vec<u8>>,
    /// Members of the data archive, paths normalized (`usr/bin/ls`, no `./`, no trailing
    /// `/`), owned by no package yet.
    pub entries: Vec<Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("{package}: {reason}")]
    Malformed { package: String, reason: String },
    #[error("{package}: entry {path:?} escapes the image root")]
    Escape { package: String, path: String },
    /// Its files could not be written to the spill file (the store's disk is full).
    #[error("{package}: writing its files to the store's temp area: {source}")]
    Write {
        package: String,
        source: std::io::Error,
    },
}

/// Normalizes an archive path; `None` for the root itself. Absolute paths and `..` are errors.
pub fn normalize(package: &str, raw: &str) -> Result<Option<String>, UnpackError> {
    if raw.starts_with('/') {
        return Err(UnpackError::Escape {
            package: package.into(),
            path: raw.into(),
        });
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(UnpackError::Escape {
                    package: package.into(),
                    path: raw.into(),
                });
            }
            p => parts.push(p),
        }
    }
    Ok(if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    })
}

/// The most memory the xz decoder of one member may use.
const XZ_MEMORY_LIMIT: u64 = 256 << 20;

/// An xz member this big (compressed) is decoded by several threads. Smaller ones are
/// unpacked while every core is busy with other packages, where the threaded decoder's
/// extra CPU only costs time (base's unpacking: 41 s at this bound, 50 s at 8 MiB).
const XZ_THREADED_BYTES: u64 = 64 << 20;

/// A reader of the uncompressed bytes of member `name`, `size` bytes long in the archive.
fn decompressor<'a>(
    name: &str,
    size: u64,
    data: impl Read + 'a,
    package: &str,
) -> Result<Box<dyn Read + 'a>, UnpackError> {
    let bad = |reason: String| UnpackError::Malformed {
        package: package.into(),
        reason,
    };
    Ok(match name.rsplit_once('.').map(|(_, e)| e) {
        // xz headers choose the dictionary size; one that asks for more than any real
        // package uses (Debian compresses with 8 MiB, `xz -9e` with 64 MiB) is refused
        // rather than allocated. The `.deb` passed its locked sha256 before it is read
        // (see `read_deb`): xz's CRC would check the same bytes again, so the one-thread
        // decoder skips it.
        Some("xz") if size >= XZ_THREADED_BYTES => {
            let threads = rayon::current_num_threads().try_into().unwrap_or(u32::MAX);
            super::verified_xz_threaded(data, XZ_MEMORY_LIMIT, threads)
                .map_err(|e| bad(e.to_string()))?
        }
        Some("xz") => super::verified_xz(data, XZ_MEMORY_LIMIT).map_err(|e| bad(e.to_string()))?,
        Some("zst") => {
            Box::new(zstd::stream::read::Decoder::new(data).map_err(|e| bad(e.to_string()))?)
        }
        Some("gz") => Box::new(flate2::read::GzDecoder::new(data)),
        Some("tar") => Box::new(data),
        _ => return Err(bad(format!("unsupported member {name}"))),
    })
}

/// The tar inside ar member `name` of a `.deb`, read through its decompressor.
fn member_tar<'a, R: Read + 'a>(
    name: &str,
    member: &'a mut ar::Entry<'_, R>,
    package: &str,
) -> Result<tar::Archive<Box<dyn Read + 'a>>, UnpackError> {
    let size = member.header().size();
    Ok(tar::Archive::new(decompressor(
        name, size, member, package,
    )?))
}

/// Reads a `.deb` as a stream, each file's bytes into `sink`. `package` names it in errors.
/// Callers check the `.deb`'s sha256 first: the compressors' own checksums are not
/// checked again, and a damaged archive is only refused where its structure breaks.
pub fn read_deb(deb: impl Read, package: &str, mut sink: Sink) -> Result<DebContents, UnpackError> {
    let bad = |reason: String| UnpackError::Malformed {
        package: package.into(),
        reason,
    };
    let mut archive = ar::Archive::new(deb);
    let mut contents = DebContents::default();
    let mut saw_version = false;
    let mut saw_data = false;
    while let Some(member) = archive.next_entry() {
        let mut member = member.map_err(|e| bad(format!("not an ar archive: {e}")))?;
        let name = String::from_utf8_lossy(member.header().identifier())
            .trim_end_matches('/')
            .to_string();
        if name == "debian-binary" {
            let mut raw = Vec::new();
            (&mut member)
                .take(64)
                .read_to_end(&mut raw)
                .map_err(|e| bad(format!("reading {name}: {e}")))?;
            if !raw.starts_with(b"2.") {
                return Err(bad(format!(
                    "unsupported format version {:?}",
                    String::from_utf8_lossy(&raw).trim()
                )));
            }
            saw_version = true;
        } else if name.starts_with("control.tar") {
            let mut tar = member_tar(&name, &mut member, package)?;
            for entry in tar.entries().map_err(|e| bad(format!("{name}: {e}")))? {
                let mut entry = entry.map_err(|e| bad(format!("{name}: {e}")))?;
                if entry.header().entry_type() != tar::EntryType::Regular {
                    continue;
                }
                let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let Some(member_name) = normalize(package, &path)? else {
                    continue;
                };
                let mut data = Vec::new();
                entry
                    .read_to_end(&mut data)
                    .map_err(|e| bad(format!("{name}: {e}")))?;
                contents.control.insert(member_name, data);
            }
        } else if name.starts_with("data.tar") {
            saw_data = true;
            let mut tar = member_tar(&name, &mut member, package)?;
            for entry in tar.entries().map_err(|e| bad(format!("{name}: {e}")))? {
                let mut entry = entry.map_err(|e| bad(format!("{name}: {e}")))?;
                let raw_path = String::from_utf8(entry.path_bytes().into_owned())
                    .map_err(|_| bad("a path is not UTF-8".into()))?;
                let Some(path) = normalize(package, &raw_path)? else {
                    continue;
                };
                let header = entry.header();
                let mode = header.mode().map_err(|e| bad(e.to_string()))? & 0o7777;
                let uid = header.uid().map_err(|e| bad(e.to_string()))?;
                let gid = header.gid().map_err(|e| bad(e.to_string()))?;
                let mtime = header.mtime().unwrap_or(0);
                let link = || -> Result<String, UnpackError> {
                    entry
                        .link_name_bytes()
                        .map(|l| String::from_utf8_lossy(&l).into_owned())
                        .ok_or_else(|| bad(format!("{raw_path}: link without a target")))
                };
                let kind = match header.entry_type() {
                    tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
                    tar::EntryType::Directory => EntryKind::Dir,
                    tar::EntryType::Symlink => EntryKind::Symlink(link()?),
                    tar::EntryType::Link => {
                        let target = normalize(package, &link()?)?
                            .ok_or_else(|| bad(format!("{raw_path}: hard link to the root")))?;
                        EntryKind::Hardlink(target)
                    }
                    tar::EntryType::Char => EntryKind::CharDevice(
                        header.device_major().ok().flatten().unwrap_or(0),
                        header.device_minor().ok().flatten().unwrap_or(0),
                    ),
                    tar::EntryType::Block => EntryKind::BlockDevice(
                        header.device_major().ok().flatten().unwrap_or(0),
                        header.device_minor().ok().flatten().unwrap_or(0),
                    ),
                    tar::EntryType::Fifo => EntryKind::Fifo,
                    other => {
                        return Err(bad(format!(
                            "{raw_path}: unsupported tar entry type {other:?}"
                        )));
                    }
                };
                let content = if kind != EntryKind::File {
                    Content::default()
                } else {
                    match &mut sink {
                        Sink::Memory => {
                            let mut data = Vec::new();
                            entry.read_to_end(&mut data).map(|_| Content::Inline(data))
                        }
                        Sink::Spill(spill) => spill.copy(&mut entry),
                    }
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::StorageFull => UnpackError::Write {
                            package: package.into(),
                            source: e,
                        },
                        _ => bad(format!("{raw_path}: {e}")),
                    })?
                };
                contents.entries.push(Entry {
                    path,
                    node: Node {
                        kind,
                        mode,
                        uid,
                        gid,
                        mtime,
                        content,
                        package: None,
                    },
                });
            }
        }
    }
    if !saw_version || !saw_data || !contents.control.contains_key("control") {
        return Err(bad(
            "not a Debian binary package (debian-binary, control or data.tar missing)".into(),
        ));
    }
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_dots_and_refuses_escapes() {
        assert_eq!(
            normalize("p", "./usr/bin/").unwrap(),
            Some("usr/bin".to_string())
        );
        assert_eq!(normalize("p", "./").unwrap(), None);
        assert!(matches!(
            normalize("p", "./usr/../../etc/passwd"),
            Err(UnpackError::Escape { .. })
        ));
        assert!(matches!(
            normalize("p", "/etc/passwd"),
            Err(UnpackError::Escape { .. })
        ));
    }
}
