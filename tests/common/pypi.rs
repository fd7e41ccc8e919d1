//! A package index on disk: wheels built in the test (zip with dist-info, RECORD hashes),
//! PEP 691 JSON or PEP 503 HTML project pages, optional PEP 658 `.metadata` files.

use super::sha256_hex;
use std::io::Write;
use std::path::Path;

#[derive(Clone, Debug, Default)]
pub struct WheelSpec {
    pub name: String,
    pub version: String,
    pub tag: String,
    pub requires: Vec<String>,
    pub requires_python: Option<String>,
    /// (path inside the wheel, content)
    pub files: Vec<(String, Vec<u8>)>,
    pub entry_points: Option<String>,
    pub yanked: bool,
    pub pep658: bool,
    /// Corrupt the first file after computing RECORD.
    pub tamper: bool,
    /// The `Tag:` written into `.dist-info/WHEEL` when it is not the file name's.
    pub wheel_tag: Option<String>,
    /// Publish a source distribution (`name-version.tar.gz` holding `files` under
    /// `name-version/`) instead of a wheel.
    pub sdist: bool,
}

impl WheelSpec {
    pub fn new(name: &str, version: &str, tag: &str) -> WheelSpec {
        WheelSpec {
            name: name.into(),
            version: version.into(),
            tag: tag.into(),
            files: vec![(
                format!("{name}/__init__.py"),
                format!("VERSION = '{version}'\n").into_bytes(),
            )],
            ..Default::default()
        }
    }

    pub fn requires(mut self, r: &str) -> Self {
        self.requires.push(r.into());
        self
    }

    pub fn file(mut self, path: &str, data: &[u8]) -> Self {
        self.files.push((path.into(), data.to_vec()));
        self
    }

    pub fn filename(&self) -> String {
        if self.sdist {
            return format!("{}-{}.tar.gz", self.name, self.version);
        }
        format!("{}-{}-{}.whl", self.name, self.version, self.tag)
    }

    fn build_sdist(&self) -> Vec<u8> {
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        ));
        for (path, data) in &self.files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(1);
            header.set_cksum();
            tar.append_data(
                &mut header,
                format!("{}-{}/{path}", self.name, self.version),
                data.as_slice(),
            )
            .unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    pub fn metadata(&self) -> String {
        let mut m = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
            self.name, self.version
        );
        if let Some(rp) = &self.requires_python {
            m.push_str(&format!("Requires-Python: {rp}\n"));
        }
        for r in &self.requires {
            m.push_str(&format!("Requires-Dist: {r}\n"));
        }
        m
    }

    pub fn build(&self) -> Vec<u8> {
        if self.sdist {
            return self.build_sdist();
        }
        let dist = format!("{}-{}.dist-info", self.name, self.version);
        let mut members: Vec<(String, Vec<u8>)> = self.files.clone();
        members.push((format!("{dist}/METADATA"), self.metadata().into_bytes()));
        members.push((
            format!("{dist}/WHEEL"),
            format!(
                "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {}\n",
                self.wheel_tag.as_deref().unwrap_or(&self.tag)
            )
            .into_bytes(),
        ));
        if let Some(ep) = &self.entry_points {
            members.push((format!("{dist}/entry_points.txt"), ep.clone().into_bytes()));
        }
        let mut record = String::new();
        for (p, d) in &members {
            record.push_str(&format!(
                "{p},{},{}\n",
                carbon_store::python::install::record_hash(d),
                d.len()
            ));
        }
        record.push_str(&format!("{dist}/RECORD,,\n"));
        if self.tamper {
            members[0].1.push(b'#');
        }
        members.push((format!("{dist}/RECORD"), record.into_bytes()));
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (p, d) in &members {
            let mode = if p.contains(".data/scripts/") {
                0o755
            } else {
                0o644
            };
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .unix_permissions(mode);
            zip.start_file(p.as_str(), options).unwrap();
            zip.write_all(d).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }
}

/// Writes the wheels and project pages under `root` (`simple/<name>/index.html`, `files/`).
pub fn publish(root: &Path, wheels: &[WheelSpec], html: bool) {
    std::fs::create_dir_all(root.join("files")).unwrap();
    let mut projects: std::collections::BTreeMap<String, Vec<(WheelSpec, Vec<u8>)>> =
        Default::default();
    for w in wheels {
        let bytes = w.build();
        std::fs::write(root.join("files").join(w.filename()), &bytes).unwrap();
        if w.pep658 {
            std::fs::write(
                root.join("files")
                    .join(format!("{}.metadata", w.filename())),
                w.metadata(),
            )
            .unwrap();
        }
        projects
            .entry(w.name.replace('_', "-").to_lowercase())
            .or_default()
            .push((w.clone(), bytes));
    }
    for (name, files) in projects {
        let dir = root.join("simple").join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let page = if html {
            let mut p = String::from("<html><body>\n");
            for (w, b) in &files {
                let rp = w
                    .requires_python
                    .as_ref()
                    .map(|r| {
                        format!(
                            " data-requires-python=\"{}\"",
                            r.replace('<', "&lt;").replace('>', "&gt;")
                        )
                    })
                    .unwrap_or_default();
                let y = if w.yanked { " data-yanked=\"\"" } else { "" };
                let m = if w.pep658 {
                    " data-core-metadata=\"true\""
                } else {
                    ""
                };
                p.push_str(&format!(
                    "<a href=\"../../files/{}#sha256={}\"{rp}{y}{m}>{}</a>\n",
                    w.filename(),
                    sha256_hex(b),
                    w.filename()
                ));
            }
            p
        } else {
            let list: Vec<serde_json::Value> = files
                .iter()
                .map(|(w, b)| serde_json::json!({"filename": w.filename(), "url": format!("../../files/{}", w.filename()), "hashes": {"sha256": sha256_hex(b)}, "size": b.len(), "requires-python": w.requires_python, "yanked": w.yanked, "core-metadata": w.pep658}))
                .collect();
            serde_json::json!({"meta": {"api-version": "1.1"}, "name": name, "files": list})
                .to_string()
        };
        std::fs::write(dir.join("index.html"), page).unwrap();
    }
}
