//! Builds real `.deb` files in memory: ar with debian-binary, control.tar.gz, data.tar.xz.

use std::io::Write;

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
}

#[derive(Clone, Debug)]
pub struct DebSpec {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// Extra control fields in order (Depends, Priority, Essential, Provides, ...).
    pub fields: Vec<(String, String)>,
    pub entries: Vec<Entry>,
}

impl DebSpec {
    pub fn new(name: &str, version: &str, arch: &str) -> DebSpec {
        DebSpec {
            name: name.into(),
            version: version.into(),
            arch: arch.into(),
            fields: vec![],
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
        let control_tar = tar_gz(&[Entry::File {
            path: "./control".into(),
            data: self.control().into_bytes(),
            mode: 0o644,
        }]);
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

fn tar_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::Dir { path, mode } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                builder.append_data(&mut h, path, std::io::empty()).unwrap();
            }
            Entry::File { path, data, mode } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                builder.append_data(&mut h, path, data.as_slice()).unwrap();
            }
            Entry::Symlink { path, target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                builder.append_link(&mut h, path, target).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

fn tar_gz(entries: &[Entry]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&tar_bytes(entries)).unwrap();
    gz.finish().unwrap()
}

fn tar_xz(entries: &[Entry]) -> Vec<u8> {
    xz(&tar_bytes(entries))
}

pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 6);
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}
