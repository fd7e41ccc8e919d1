//! Builds real `.deb` files in memory: ar with debian-binary, control.tar.gz, data.tar.xz.

use std::io::{Read, Write};

#[derive(Clone, Debug)]
pub enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        data: Vec<u8>,
        mode: u32,
    },
    Symlink {
        path: String,
        target: String,
    },
    Hardlink {
        path: String,
        target: String,
    },
    /// A character device (major, minor).
    CharDevice {
        path: String,
        major: u32,
        minor: u32,
    },
    /// A file of `size` copies of `byte`, streamed into the package (never in memory).
    Filled {
        path: String,
        byte: u8,
        size: u64,
    },
}

#[derive(Clone, Debug)]
pub struct DebSpec {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// Extra control fields in order (Depends, Priority, Essential, Provides, ...).
    pub fields: Vec<(String, String)>,
    pub entries: Vec<Entry>,
    /// Extra control members (postinst, conffiles, triggers, ...).
    pub members: Vec<(String, Vec<u8>)>,
}

impl DebSpec {
    pub fn new(name: &str, version: &str, arch: &str) -> DebSpec {
        DebSpec {
            name: name.into(),
            version: version.into(),
            arch: arch.into(),
            fields: vec![],
            members: vec![],
            entries: vec![
                Entry::Dir {
                    path: "./usr/".into(),
                    mode: 0o755,
                },
                Entry::Dir {
                    path: format!("./usr/share/doc/{name}/"),
                    mode: 0o755,
                },
            ],
        }
    }

    pub fn field(mut self, name: &str, value: &str) -> DebSpec {
        self.fields.push((name.into(), value.into()));
        self
    }

    pub fn file(mut self, path: &str, data: &[u8], mode: u32) -> DebSpec {
        self.entries.push(Entry::File {
            path: path.into(),
            data: data.to_vec(),
            mode,
        });
        self
    }

    pub fn entry(mut self, entry: Entry) -> DebSpec {
        self.entries.push(entry);
        self
    }

    pub fn member(mut self, name: &str, data: &str) -> DebSpec {
        self.members.push((name.into(), data.as_bytes().to_vec()));
        self
    }

    pub fn control(&self) -> String {
        let mut c = format!(
            "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: Test <test@test.invalid>\n",
            self.name, self.version, self.arch
        );
        for (k, v) in &self.fields {
            c.push_str(&format!("{k}: {v}\n"));
        }
        c.push_str(&format!("Description: test package {}\n", self.name));
        c
    }

    pub fn build(&self) -> Vec<u8> {
        let mut control = vec![Entry::File {
            path: "./control".into(),
            data: self.control().into_bytes(),
            mode: 0o644,
        }];
        for (name, data) in &self.members {
            let mode = if name.ends_with("inst") || name.ends_with("rm") {
                0o755
            } else {
                0o644
            };
            control.push(Entry::File {
                path: format!("./{name}"),
                data: data.clone(),
                mode,
            });
        }
        let control_tar = tar_gz(&control);
        let data_tar = tar_xz(&self.entries);
        let mut out = Vec::new();
        {
            let mut builder = ar::Builder::new(&mut out);
            for (name, data) in [
                ("debian-binary", b"2.0\n".to_vec()),
                ("control.tar.gz", control_tar),
                ("data.tar.xz", data_tar),
            ] {
                let mut header = ar::Header::new(name.as_bytes().to_vec(), data.len() as u64);
                header.set_mode(0o100644);
                builder.append(&header, data.as_slice()).unwrap();
            }
        }
        out
    }
}

/// Writes the entries with carbon-store's own tar writer, which (unlike the tar crate's
/// builder) writes any path as given, so tests can also build malicious archives.
fn write_tar<W: Write>(entries: &[Entry], out: W) -> W {
    use carbon_store::layer::tar::{EntryKind, Header, TarWriter};
    let mut w = TarWriter::new(out);
    for e in entries {
        if let Entry::Filled { path, byte, size } = e {
            let header = Header {
                path: path.clone(),
                kind: EntryKind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: *size,
                mtime: 1_700_000_000,
            };
            w.append_reader(&header, std::io::repeat(*byte).take(*size))
                .unwrap();
            continue;
        }
        let (path, kind, mode, data): (&str, EntryKind, u32, &[u8]) = match e {
            Entry::Dir { path, mode } => (path, EntryKind::Dir, *mode, &[]),
            Entry::File { path, data, mode } => (path, EntryKind::File, *mode, data),
            Entry::Symlink { path, target } => {
                (path, EntryKind::Symlink(target.clone()), 0o777, &[])
            }
            Entry::Hardlink { path, target } => {
                (path, EntryKind::Hardlink(target.clone()), 0o755, &[])
            }
            Entry::CharDevice { path, major, minor } => {
                (path, EntryKind::CharDevice(*major, *minor), 0o660, &[])
            }
            Entry::Filled { .. } => unreachable!("written above"),
        };
        let header = Header {
            path: path.trim_end_matches('/').to_string(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            size: data.len() as u64,
            mtime: 1_700_000_000,
        };
        w.append(&header, data).unwrap();
    }
    w.finish().unwrap()
}

fn tar_gz(entries: &[Entry]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    write_tar(entries, gz).finish().unwrap()
}

fn tar_xz(entries: &[Entry]) -> Vec<u8> {
    // Streamed: a package with a `Filled` gigabyte is never whole in the test's memory,
    // and compressed at the fastest level (it is built once per arch).
    let filled = entries.iter().any(|e| matches!(e, Entry::Filled { .. }));
    let xz = liblzma::write::XzEncoder::new(Vec::new(), if filled { 0 } else { 6 });
    write_tar(entries, xz).finish().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 6);
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}
