//! Installing wheels into the image's virtual environment without pip and without running
//! Python: each wheel's members are checked against its `RECORD` while read from the zip,
//! placed by the wheel spec (purelib/platlib → site-packages, `.data/scripts` → `bin/` with
//! `#!python` rewritten, `.data/headers`, `.data/data` → the prefix), console and GUI
//! scripts are generated from `entry_points.txt`, and `RECORD`, `INSTALLER` and
//! `REQUESTED` are rewritten as an installer must.

use crate::layer::content::{Content, Spill};
use crate::layer::tar::EntryKind;
use crate::layer::tree::{Node, Tree};
use crate::lockfile::PythonArtifact;
use crate::sandbox::Sandbox;
use crate::store::{ScratchDir, Store, StoreError};
use crate::unpack::beneath::Beneath;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Installed files' mtime: the zip format's epoch (1980-01-01), the same in every image.
pub const WHEEL_MTIME: u64 = 315_532_800;

#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("byte-code: {0}")]
    Sandbox(#[from] crate::sandbox::SandboxError),
    #[error("{wheel}: {reason}")]
    Bad { wheel: String, reason: String },
    /// A spill file could not be made (the store's temp area is full or read-only).
    #[error("creating a spill file in the store's temp area: {0}")]
    SpillFile(#[from] std::io::Error),
}

/// A directory made for the environment or for byte-code (root-owned, 0755, the wheel
/// mtime).
pub(crate) fn wheel_dir() -> Node {
    Node {
        kind: EntryKind::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: WHEEL_MTIME,
        content: Content::default(),
        package: None,
    }
}

/// The upstream version (`3.13.5`) of the `python3` package among an arch's locked Debian
/// packages, without epoch or Debian revision (empty without one).
pub fn python_version(debian: &[crate::lockfile::DebianArtifact]) -> String {
    debian
        .iter()
        .find(|a| a.name == "python3")
        .map(|a| {
            let no_revision = a.version.split('-').next().unwrap_or("");
            no_revision.rsplit(':').next().unwrap_or("").to_string()
        })
        .unwrap_or_default()
}

/// `3.13` of `3.13.5`.
pub fn minor_of(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// The `3.X` of the image's `python3` package in a lock (empty without one).
pub fn python_minor(lock: &crate::lockfile::Lockfile) -> String {
    lock.archs
        .values()
        .map(|a| python_version(&a.debian))
        .find(|v| !v.is_empty())
        .map(|v| minor_of(&v))
        .unwrap_or_default()
}

/// Where the environment is and which interpreter it uses.
pub struct Venv {
    /// e.g. `opt/carbon/python` (no leading slash).
    pub prefix: String,
    /// e.g. `3.13`.
    pub python_minor: String,
    pub python_full: String,
    /// `include-system-site-packages` in `pyvenv.cfg`.
    pub system_site_packages: bool,
}

impl Venv {
    pub fn site_packages(&self) -> String {
        format!(
            "{}/lib/python{}/site-packages",
            self.prefix, self.python_minor
        )
    }

    fn abs(&self, rel: &str) -> String {
        format!("/{}/{rel}", self.prefix)
    }

    /// `pyvenv.cfg` and the `bin/python*` links to the Debian interpreter.
    pub fn skeleton(&self, tree: &mut Tree) {
        let node = |kind: EntryKind, mode: u32, data: Vec<u8>| Node {
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: WHEEL_MTIME,
            content: data.into(),
            package: None,
        };
        let cfg = format!(
            "home = /usr/bin\ninclude-system-site-packages = {}\nversion = {}\nexecutable = /usr/bin/python{}\ncommand = /usr/bin/python3 -m venv {}/{}\n",
            self.system_site_packages,
            self.python_full,
            self.python_minor,
            if self.system_site_packages {
                "--system-site-packages "
            } else {
                ""
            },
            self.prefix
        );
        let mut dirs = vec![
            self.prefix.clone(),
            format!("{}/bin", self.prefix),
            format!("{}/lib", self.prefix),
            format!("{}/lib/python{}", self.prefix, self.python_minor),
            self.site_packages(),
            format!("{}/include", self.prefix),
        ];
        let mut p = String::new();
        for part in self
            .prefix
            .split('/')
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            if !p.is_empty() {
                p.push('/');
            }
            p.push_str(part);
            dirs.push(p.clone());
        }
        for d in dirs {
            tree.put(&d, node(EntryKind::Dir, 0o755, Vec::new()));
        }
        tree.put(
            &format!("{}/pyvenv.cfg", self.prefix),
            node(EntryKind::File, 0o644, cfg.into_bytes()),
        );
        tree.put(
            &format!("{}/bin/python", self.prefix),
            node(
                EntryKind::Symlink(format!("/usr/bin/python{}", self.python_minor)),
                0o777,
                Vec::new(),
            ),
        );
        tree.put(
            &format!("{}/bin/python3", self.prefix),
            node(EntryKind::Symlink("python".into()), 0o777, Vec::new()),
        );
        tree.put(
            &format!("{}/bin/python{}", self.prefix, self.python_minor),
            node(EntryKind::Symlink("python".into()), 0o777, Vec::new()),
        );
        tree.put(
            &format!("{}/lib64", self.prefix),
            node(EntryKind::Symlink("lib".into()), 0o777, Vec::new()),
        );
    }
}

fn b64_nopad(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        for i in 0..chunk.len() + 1 {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// `sha256=<urlsafe base64, no padding>` as RECORD writes it.
pub fn record_hash(data: &[u8]) -> String {
    record_hash_of(&Sha256::digest(data).into())
}

/// [`record_hash`] from a sha256 already computed.
fn record_hash_of(sha256: &[u8; 32]) -> String {
    format!("sha256={}", b64_nopad(sha256))
}

fn script_for(venv: &Venv, spec: &str) -> Option<String> {
    let spec = spec.split('[').next()?.trim();
    let (module, attr) = spec.split_once(':')?;
    let (module, attr) = (module.trim(), attr.trim());
    let import = attr.split('.').next()?;
    Some(format!(
        "#!{}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom {module} import {import}\nif __name__ == \"__main__\":\n    sys.argv[0] = re.sub(r\"(-script\\.pyw|\\.exe)?$\", \"\", sys.argv[0])\n    sys.exit({attr}())\n",
        venv.abs("bin/python")
    ))
}

/// How one wheel is installed.
#[derive(Clone, Copy, Debug)]
pub struct InstallOptions<'a> {
    /// A top-level requirement: gets `REQUESTED`.
    pub requested: bool,
    /// Refuse a member whose content differs from the wheel's `RECORD`.
    pub check_record: bool,
    /// Write `.dist-info/WHEEL`'s `Tag:` lines from the file name when the two disagree.
    pub tags_from_file_name: bool,
    /// Members (names as in the wheel) left out, and so out of the installed `RECORD`;
    /// each must be in the wheel.
    pub omit: &'a [String],
}

/// The tags a wheel's file name states (`py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64`
/// expanded to one per combination).
fn file_name_tags(file: &str) -> Vec<String> {
    let stem = file.trim_end_matches(".whl");
    let parts: Vec<&str> = stem.rsplitn(4, '-').collect();
    let [plat, abi, py, ..] = parts[..] else {
        return Vec::new();
    };
    let mut tags = Vec::new();
    for p in py.split('.') {
        for a in abi.split('.') {
            for l in plat.split('.') {
                tags.push(format!("{p}-{a}-{l}"));
            }
        }
    }
    tags
}

/// `WHEEL` with its `Tag:` lines replaced by the file name's tags, when none of them agree.
fn wheel_file_with_tags(data: &[u8], file: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(data);
    let tags = file_name_tags(file);
    let declared: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("Tag:").map(str::trim))
        .collect();
    if tags.is_empty() || declared.iter().any(|t| tags.iter().any(|f| f == t)) {
        return data.to_vec();
    }
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.starts_with("Tag:")) {
        out.push_str(line);
        out.push('\n');
        if line.starts_with("Root-Is-Purelib:") {
            for t in &tags {
                out.push_str(&format!("Tag: {t}\n"));
            }
        }
    }
    if !out.contains("\nTag: ") {
        for t in &tags {
            out.push_str(&format!("Tag: {t}\n"));
        }
    }
    out.into_bytes()
}

/// Installs one wheel from the store into `tree`.
pub fn install(
    store: &Store,
    wheel: &PythonArtifact,
    venv: &Venv,
    options: InstallOptions,
    tree: &mut Tree,
    spill: &Spill,
) -> Result<(), WheelError> {
    let InstallOptions {
        requested,
        check_record,
        tags_from_file_name,
        omit,
    } = options;
    let bad = |reason: String| WheelError::Bad {
        wheel: wheel.file.clone(),
        reason,
    };
    let file = store.open_verified(&wheel.sha256, &wheel.file)?;
    let mut zip =
        zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
    // (name, uncompressed size, compressed size) as the central directory declares them.
    let members: Vec<(String, u64, u64)> = (0..zip.len())
        .map(|i| {
            let f = zip.by_index_raw(i).map_err(|e| bad(e.to_string()))?;
            let name = f.name().map_err(|e| bad(e.to_string()))?.to_string();
            Ok((name, f.size(), f.compressed_size()))
        })
        .collect::<Result<_, WheelError>>()?;
    crate::unpack::zip_member::check_expansion(
        members.iter().map(|(n, s, c)| (n.as_str(), *s, *c)),
    )
    .map_err(|e| bad(e.to_string()))?;
    let names: Vec<String> = members.into_iter().map(|(n, ..)| n).collect();
    let dist_info = names
        .iter()
        .filter_map(|n| {
            n.split_once(".dist-info/")
                .map(|(d, _)| format!("{d}.dist-info"))
        })
        .find(|d| !d.contains('/'))
        .ok_or_else(|| bad("no .dist-info directory".into()))?;
    let data_dir = dist_info.replace(".dist-info", ".data");
    type Zip = zip::ZipArchive<std::io::BufReader<std::fs::File>>;
    // Members that are parsed or rewritten are read into memory, the rest into the spill.
    let read = |zip: &mut Zip, name: &str| -> Result<(Vec<u8>, u32), WheelError> {
        let f = zip.by_name(name).map_err(|e| bad(format!("{name}: {e}")))?;
        let mode = f.unix_mode().unwrap_or(0o644);
        let declared = f.size();
        let out = crate::unpack::zip_member::read_capped(name, f, declared)
            .map_err(|e| bad(e.to_string()))?;
        Ok((out, mode))
    };
    let read_member = |zip: &mut Zip, name: &str, rewritten: bool| {
        if rewritten {
            let (data, mode) = read(zip, name)?;
            let sha: [u8; 32] = Sha256::digest(&data).into();
            return Ok((Content::Inline(data), sha, mode));
        }
        let f = zip.by_name(name).map_err(|e| bad(format!("{name}: {e}")))?;
        let mode = f.unix_mode().unwrap_or(0o644);
        let declared = f.size();
        let (content, sha) = spill.with_writer(|w| -> Result<_, WheelError> {
            crate::unpack::zip_member::spill_capped(name, f, declared, w)
                .map_err(|e| bad(e.to_string()))
        })?;
        Ok::<_, WheelError>((content, sha, mode))
    };
    let record_text =
        String::from_utf8_lossy(&read(&mut zip, &format!("{dist_info}/RECORD"))?.0).into_owned();
    // path → (hash, size) as RECORD lists them.
    let mut record: BTreeMap<String, (String, String)> = BTreeMap::new();
    for line in record_text.lines() {
        let mut parts = line.rsplitn(3, ',');
        let (size, hash, path) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        if !path.is_empty() {
            record.insert(
                path.trim_matches('"').to_string(),
                (hash.to_string(), size.trim().to_string()),
            );
        }
    }
    let site = venv.site_packages();
    let mut installed: Vec<(String, String, usize)> = Vec::new();
    let node = |content: Content, mode: u32| Node {
        kind: EntryKind::File,
        mode,
        uid: 0,
        gid: 0,
        mtime: WHEEL_MTIME,
        content,
        package: Some(wheel.name.clone()),
    };
    let inline = |bytes: Vec<u8>| {
        let sha: [u8; 32] = Sha256::digest(&bytes).into();
        (Content::Inline(bytes), sha)
    };
    let put_file = |tree: &mut Tree,
                    path: String,
                    (content, sha): (Content, [u8; 32]),
                    mode: u32,
                    installed: &mut Vec<(String, String, usize)>| {
        let mut parent = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            if !tree.nodes.contains_key(&parent) {
                tree.put(&parent, wheel_dir());
            }
        }
        installed.push((path.clone(), record_hash_of(&sha), content.len() as usize));
        tree.put(&path, node(content, mode));
    };
    if let Some(missing) = omit.iter().find(|m| !names.contains(m)) {
        return Err(bad(format!(
            "{missing} is not a member of this wheel; remove it from [python.omit-members] {} of the component",
            wheel.name
        )));
    }
    for name in &names {
        if name.ends_with('/')
            || omit.contains(name)
            || name == &format!("{dist_info}/RECORD")
            || name.ends_with(".jws")
            || name.ends_with(".p7s")
        {
            continue;
        }
        if name.starts_with('/') || name.split('/').any(|p| p == "..") {
            return Err(bad(format!("member {name:?} escapes the environment")));
        }
        let scripts = format!("{data_dir}/scripts/");
        let wheel_file = format!("{dist_info}/WHEEL");
        let rewritten = name.starts_with(&scripts) || (tags_from_file_name && *name == wheel_file);
        let (data, sha, zip_mode) = read_member(&mut zip, name, rewritten)?;
        match record.get(name) {
            Some((h, _)) if check_record && !h.is_empty() && *h != record_hash_of(&sha) => {
                return Err(bad(format!(
                    "{name} does not match its RECORD hash. The wheel matches its sha256 in the lock; if its publisher's RECORD is wrong, list {} in the component's [python] ignore-record-hashes",
                    wheel.name
                )));
            }
            Some((_, size))
                if check_record && !size.is_empty() && *size != data.len().to_string() =>
            {
                return Err(bad(format!(
                    "{name} is {} bytes, but RECORD says {size}",
                    data.len()
                )));
            }
            None => return Err(bad(format!("{name} is not listed in RECORD"))),
            _ => {}
        }
        let executable = zip_mode & 0o111 != 0;
        let in_memory = |content: Content| match content {
            Content::Inline(bytes) => bytes,
            Content::Spilled { .. } => unreachable!("rewritten members are read into memory"),
        };
        let data = (data, sha);
        let (dest, mode, data) = if let Some(rest) = name.strip_prefix(&format!("{data_dir}/")) {
            let (kind, rel) = rest
                .split_once('/')
                .ok_or_else(|| bad(format!("bad data path {name}")))?;
            match kind {
                "purelib" | "platlib" => (
                    format!("{site}/{rel}"),
                    if executable { 0o755 } else { 0o644 },
                    data,
                ),
                "scripts" => {
                    let bytes = in_memory(data.0);
                    let bytes = match bytes.strip_prefix(b"#!python") {
                        Some(rest) => [
                            format!("#!{}", venv.abs("bin/python")).into_bytes(),
                            rest.to_vec(),
                        ]
                        .concat(),
                        None => bytes,
                    };
                    (format!("{}/bin/{rel}", venv.prefix), 0o755, inline(bytes))
                }
                "headers" => (
                    format!(
                        "{}/include/site/python{}/{}/{rel}",
                        venv.prefix, venv.python_minor, wheel.name
                    ),
                    0o644,
                    data,
                ),
                "data" => (
                    format!("{}/{rel}", venv.prefix),
                    if executable { 0o755 } else { 0o644 },
                    data,
                ),
                other => return Err(bad(format!("unknown data directory {other}"))),
            }
        } else {
            let data = if tags_from_file_name && *name == wheel_file {
                inline(wheel_file_with_tags(&in_memory(data.0), &wheel.file))
            } else {
                data
            };
            (
                format!("{site}/{name}"),
                if executable { 0o755 } else { 0o644 },
                data,
            )
        };
        if dest.split('/').any(|p| p == "..") {
            return Err(bad(format!("member {name:?} escapes the environment")));
        }
        put_file(tree, dest, data, mode, &mut installed);
    }
    // Entry points.
    if let Some(ep) = tree
        .nodes
        .get(&format!("{site}/{dist_info}/entry_points.txt"))
        .map(|n| {
            n.content
                .to_vec()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        })
        .transpose()
        .map_err(|e| bad(format!("entry_points.txt: {e}")))?
    {
        let mut section = String::new();
        for line in ep.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line.trim_matches(['[', ']']).to_string();
                continue;
            }
            if section != "console_scripts" && section != "gui_scripts" {
                continue;
            }
            let Some((name, spec)) = line.split_once('=') else {
                continue;
            };
            if let Some(script) = script_for(venv, spec) {
                put_file(
                    tree,
                    format!("{}/bin/{}", venv.prefix, name.trim()),
                    inline(script.into_bytes()),
                    0o755,
                    &mut installed,
                );
            }
        }
    }
    put_file(
        tree,
        format!("{site}/{dist_info}/INSTALLER"),
        inline(b"carbon-store\n".to_vec()),
        0o644,
        &mut installed,
    );
    if requested {
        put_file(
            tree,
            format!("{site}/{dist_info}/REQUESTED"),
            inline(Vec::new()),
            0o644,
            &mut installed,
        );
    }
    // RECORD: paths relative to site-packages, itself listed without hash.
    let mut record_out = String::new();
    let depth = site.split('/').count();
    installed.sort();
    for (path, hash, size) in &installed {
        let rel = match path.strip_prefix(&format!("{site}/")) {
            Some(r) => r.to_string(),
            None => format!(
                "{}{}",
                "../".repeat(depth - venv.prefix.split('/').count()),
                path.strip_prefix(&format!("{}/", venv.prefix))
                    .unwrap_or(path)
            ),
        };
        let rel = if rel.contains(',') {
            format!("\"{rel}\"")
        } else {
            rel
        };
        record_out.push_str(&format!("{rel},{hash},{size}\n"));
    }
    record_out.push_str(&format!("{dist_info}/RECORD,,\n"));
    tree.put(
        &format!("{site}/{dist_info}/RECORD"),
        node(Content::Inline(record_out.into_bytes()), 0o644),
    );
    Ok(())
}

/// Byte-code compilation with the image's own interpreter, run on this host through the
/// image's dynamic loader (so the host's Python and libc play no part), confined to a
/// sandbox ([`crate::sandbox`]): `.pyc` files with in-image paths, identical for every
/// build. The files do not depend on the arch, so the interpreter of the host's arch
/// compiles for every image arch.
pub struct Compiler {
    /// One compilation at a time (each already uses every core), so that an arch built
    /// second finds the byte-code of files it shares with the first in the cache.
    turn: std::sync::Mutex<()>,
    root: ScratchDir,
    /// In-root paths of the loader and the interpreter, and the loader's library path.
    loader: String,
    library_path: String,
    python: String,
}

/// Debian packages the interpreter needs to compile byte-code (`py_compile`).
const INTERPRETER_PACKAGES: &[&str] = &[
    "libc6",
    "zlib1g",
    "libexpat1",
    "libffi8",
    "libmpdec4",
    "libbz2-1.0",
    "liblzma5",
    "libzstd1",
    "libcrypt1",
    "libuuid1",
];

/// base-files' merged-/usr links, which the interpreter's own links (`/lib64/ld-linux…`)
/// resolve through inside the sandbox.
const MERGED_USR_LINKS: &[(&str, &str)] = &[
    ("bin", "usr/bin"),
    ("lib", "usr/lib"),
    ("lib64", "usr/lib64"),
    ("sbin", "usr/sbin"),
];

impl Compiler {
    /// The host arch's Debian section name, its triplet and its loader's file name.
    fn host() -> Option<(&'static str, &'static str, &'static str)> {
        match std::env::consts::ARCH {
            "x86_64" => Some(("amd64", "x86_64-linux-gnu", "ld-linux-x86-64.so.2")),
            "aarch64" => Some(("arm64", "aarch64-linux-gnu", "ld-linux-aarch64.so.1")),
            _ => None,
        }
    }

    /// The locked Debian packages the interpreter needs (host arch), to fetch with the rest.
    pub fn packages(
        lock: &crate::lockfile::Lockfile,
        minor: &str,
    ) -> Vec<crate::lockfile::DebianArtifact> {
        let Some((arch, ..)) = Self::host() else {
            return Vec::new();
        };
        let wanted = |name: &str| {
            INTERPRETER_PACKAGES.contains(&name)
                || name == format!("python{minor}-minimal")
                || name == format!("libpython{minor}-minimal")
                || name == format!("libpython{minor}-stdlib")
        };
        lock.archs
            .get(arch)
            .map(|s| {
                s.debian
                    .iter()
                    .filter(|a| wanted(&a.name))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Unpacks the interpreter of the host's arch from the lock into a scratch directory of
    /// the store, every entry written beneath it and never through a link the packages
    /// made ([`Beneath`]). `None` when the lock has no interpreter for the host's arch.
    pub fn prepare(
        store: &Store,
        lock: &crate::lockfile::Lockfile,
        minor: &str,
    ) -> Result<Option<Compiler>, WheelError> {
        let Some((_, triplet, loader)) = Self::host() else {
            return Ok(None);
        };
        let packages = Self::packages(lock, minor);
        if !packages
            .iter()
            .any(|p| p.name == format!("python{minor}-minimal"))
        {
            return Ok(None);
        }
        let root = store
            .scratch_dir(&format!("python-{}-{}", std::process::id(), minor))
            .map_err(|e| WheelError::Bad {
                wheel: format!("python{minor} interpreter"),
                reason: e.to_string(),
            })?;
        let beneath = Beneath::create(root.path()).map_err(|e| interpreter_error(minor, e))?;
        // Dropped on any error below: nothing of a refused interpreter stays.
        let compiler = Compiler {
            turn: std::sync::Mutex::new(()),
            root,
            loader: format!("/usr/lib/{triplet}/{loader}"),
            library_path: format!("/usr/lib/{triplet}:/usr/lib"),
            python: format!("/usr/bin/python{minor}"),
        };
        for (link, target) in MERGED_USR_LINKS {
            beneath
                .symlink(link, target)
                .map_err(|e| interpreter_error(minor, e))?;
        }
        for artifact in &packages {
            let deb = store.open_verified(&artifact.sha256, artifact.file_name())?;
            let contents = crate::unpack::deb::read_deb(
                std::io::BufReader::new(deb),
                &artifact.name,
                crate::unpack::deb::Sink::Memory,
            )
            .map_err(|e| WheelError::Bad {
                wheel: artifact.name.clone(),
                reason: e.to_string(),
            })?;
            for e in contents.entries {
                let path = crate::layer::tree::merged_usr(&e.path, &e.node.kind);
                let written = match &e.node.kind {
                    EntryKind::Dir => beneath.create_dir_all(&path),
                    EntryKind::File | EntryKind::Hardlink(_) => {
                        beneath.replace_file(&path, e.node.content.reader(), 0o755)
                    }
                    EntryKind::Symlink(target) => beneath.replace_symlink(&path, target),
                    _ => Ok(()),
                };
                written.map_err(|error| WheelError::Bad {
                    wheel: format!("{} (python{minor} interpreter)", artifact.name),
                    reason: error.to_string(),
                })?;
            }
        }
        if !compiler
            .root
            .path()
            .join(compiler.python.trim_start_matches('/'))
            .exists()
        {
            return Ok(None);
        }
        Ok(Some(compiler))
    }

    /// The interpreter's tag (`313` for `python3.13`).
    fn tag(&self) -> String {
        self.python
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .trim_start_matches("python")
            .replace('.', "")
    }

    /// Compiles `sources` (in-image path, content) and returns each one's `.pyc` (files
    /// the interpreter cannot compile, such as Python 2 leftovers in some wheels, have none).
    fn run(
        &self,
        sources: &[(&str, &Content)],
        stage_name: &str,
        mode: Invalidation,
        spill: &Spill,
    ) -> Result<BTreeMap<String, Content>, WheelError> {
        let bad = |reason: String| WheelError::Bad {
            wheel: "byte-code".into(),
            reason,
        };
        let root = self.root.path();
        let _turn = self.turn.lock().expect("compile lock");
        let stage_dir = ScratchDir::at(root.with_file_name(format!(
            "{}-stage-{stage_name}",
            root.file_name().unwrap_or_default().to_string_lossy()
        )));
        let stage_path = stage_dir.path();
        let stage = Beneath::create(stage_path).map_err(|e| bad(e.to_string()))?;
        for (path, content) in sources {
            stage
                .write_file(path, content.reader(), 0o644)
                .map_err(|e| bad(e.to_string()))?;
        }
        let sandbox = Sandbox::new(root, stage_path)?;
        // The files are split into one list per core, each list compiled by its own process
        // (started through the image's loader), each file in a fork of it.
        // Lists of about equal source bytes, not runs of sorted paths: those put one
        // package's big modules in one list, which then compiled alone for a fifth of
        // `tools`' compile. Each file compiles in its own fork, so the bytes do not depend
        // on the split.
        let sizes: Vec<u64> = sources.iter().map(|(_, c)| c.len()).collect();
        let workers = rayon::current_num_threads();
        let mut commands = Vec::new();
        for (n, list) in balanced_lists(&sizes, workers).iter().enumerate() {
            let paths: String = list
                .iter()
                .map(|&i| format!("{}\n", sandbox.stage_inside(sources[i].0).display()))
                .collect();
            let list_name = format!(".files-{n}");
            stage
                .write_file(&list_name, paths.as_bytes(), 0o644)
                .map_err(|e| bad(e.to_string()))?;
            commands.push(self.command(&sandbox, &list_name, mode)?);
        }
        std::thread::scope(|scope| -> Result<(), WheelError> {
            let handles: Vec<_> = commands
                .into_iter()
                .map(|mut command| scope.spawn(move || command.status()))
                .collect();
            for h in handles {
                // A file that does not compile is left without byte-code (as compileall
                // would); the rest is used. Not starting at all is an error.
                h.join()
                    .expect("compile thread")
                    .map_err(|e| sandbox.spawn_error(e))?;
            }
            Ok(())
        })?;
        let tag = self.tag();
        let mut out = BTreeMap::new();
        spill.with_writer(|w| -> Result<(), WheelError> {
            for (path, _) in sources {
                if let Ok(mut pyc) = std::fs::File::open(stage_path.join(pyc_path(path, &tag))) {
                    let content = w.copy(&mut pyc).map_err(|e| bad(format!("{path}: {e}")))?;
                    out.insert(path.to_string(), content);
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// One compiling process over the list `list_name` in the stage.
    fn command(
        &self,
        sandbox: &Sandbox,
        list_name: &str,
        mode: Invalidation,
    ) -> Result<std::process::Command, WheelError> {
        let mut command = sandbox.command(&self.loader)?;
        let library_path: Vec<String> = self
            .library_path
            .split(':')
            .map(|p| sandbox.inside(p).display().to_string())
            .collect();
        command
            .arg("--library-path")
            .arg(library_path.join(":"))
            .arg(sandbox.inside(&self.python))
            .args(["-s", "-c", COMPILE_EACH_IN_A_FORK, mode.py_compile_name()])
            .arg(sandbox.stage_dir())
            .arg(sandbox.stage_inside(list_name))
            .env_clear()
            .env("PYTHONHOME", sandbox.inside("/usr"))
            .env("PYTHONHASHSEED", "0")
            .env("LC_ALL", "C.UTF-8")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        Ok(command)
    }
}

/// What compiling one file costs besides its source, in source bytes: the fork, the
/// reads and the `.pyc` write. Measured roughly; it keeps lists of many tiny files from
/// looking free.
const COMPILE_OVERHEAD_BYTES: u64 = 4096;

/// Splits files of `sizes` into at most `workers` non-empty lists of about equal cost:
/// largest first, each to the list that costs least so far (the lower-numbered on a tie).
/// Each list holds indexes into `sizes` in ascending order. Deterministic.
fn balanced_lists(sizes: &[u64], workers: usize) -> Vec<Vec<usize>> {
    let workers = workers.clamp(1, sizes.len().max(1));
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(sizes[i]), i));
    let mut lists = vec![Vec::new(); workers];
    let mut costs = vec![0u64; workers];
    for i in order {
        let least = (0..workers)
            .min_by_key(|&w| (costs[w], w))
            .expect("at least one list");
        costs[least] += sizes[i] + COMPILE_OVERHEAD_BYTES;
        lists[least].push(i);
    }
    lists.retain(|l| !l.is_empty());
    for list in &mut lists {
        list.sort_unstable();
    }
    lists
}

fn interpreter_error(minor: &str, e: crate::unpack::beneath::BeneathError) -> WheelError {
    WheelError::Bad {
        wheel: format!("python{minor} interpreter"),
        reason: e.to_string(),
    }
}

/// `dir/__pycache__/stem.cpython-TAG.pyc` for `dir/stem.py`.
fn pyc_path(py: &str, tag: &str) -> String {
    let (dir, file) = py.rsplit_once('/').unwrap_or(("", py));
    let stem = file.trim_end_matches(".py");
    format!("{dir}/__pycache__/{stem}.cpython-{tag}.pyc")
}

/// How a `.pyc` is checked against its source at import (PEP 552).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// Never checked: files that only change with the layer (the venv's wheels).
    UncheckedHash,
    /// The source's hash is checked at import: Debian's modules, which `apt` may replace
    /// inside a container.
    CheckedHash,
}

impl Invalidation {
    /// The name `compileall --invalidation-mode` takes (and the byte-code cache keys).
    fn name(self) -> &'static str {
        match self {
            Invalidation::UncheckedHash => "unchecked-hash",
            Invalidation::CheckedHash => "checked-hash",
        }
    }

    /// The member of `py_compile.PycInvalidationMode`.
    fn py_compile_name(self) -> &'static str {
        match self {
            Invalidation::UncheckedHash => "UNCHECKED_HASH",
            Invalidation::CheckedHash => "CHECKED_HASH",
        }
    }
}

/// The compiling process: `python -c THIS MODE STAGE LIST`. Each file is compiled in a
/// child forked from the same state, because marshal's output depends on what the
/// compiling process compiled before (it flags objects by reference count; CPython
/// gh-129724): compiling lists of files in one process made a `.pyc` depend on which other
/// files shared its list — on the number of cores and on what the byte-code cache held.
/// Files are named in the `.pyc` as compileall's `-s STAGE -p /` names them.
const COMPILE_EACH_IN_A_FORK: &str = r#"
import importlib.util, os, py_compile, sys
mode = py_compile.PycInvalidationMode[sys.argv[1]]
stage = sys.argv[2]
with open(sys.argv[3], encoding="utf-8") as f:
    files = f.read().splitlines()
for path in files:
    pid = os.fork()
    if pid == 0:
        try:
            py_compile.compile(path, cfile=importlib.util.cache_from_source(path),
                               dfile="/" + os.path.relpath(path, stage), doraise=True,
                               invalidation_mode=mode)
            status = 0
        except BaseException:
            status = 1
        os._exit(status)
    os.waitpid(pid, 0)
"#;

/// Part of every byte-code cache key: bump when the same source compiles to other bytes.
const BYTECODE_FORMAT: &str = "byte-code 2: each file compiled in its own fork";

/// Where byte-code comes from and goes: the store's byte-code cache, the name of this
/// compilation's stage, and the spill its `.pyc` files are read into.
pub struct PycPlaces<'a> {
    pub cache: std::path::PathBuf,
    pub stage_name: &'a str,
    pub spill: &'a Spill,
}

impl<'a> PycPlaces<'a> {
    pub fn new(store: &Store, stage_name: &'a str, spill: &'a Spill) -> PycPlaces<'a> {
        PycPlaces {
            cache: store.area(crate::store::Area::PycCache),
            stage_name,
            spill,
        }
    }
}

/// Adds `__pycache__/*.pyc` for every `.py` file of the tree whose path `wanted` accepts:
/// from the byte-code cache (keyed by interpreter, mode, in-image path and source) where
/// it has them, the rest compiled by the interpreter `compiler` gives, which is prepared
/// only then. Returns how many were added.
pub fn compile_tree<'c>(
    tree: &mut Tree,
    wanted: &(dyn Fn(&str) -> bool + Sync),
    minor: &str,
    mode: Invalidation,
    places: &PycPlaces,
    compiler: impl FnOnce() -> Result<Option<&'c Compiler>, WheelError>,
) -> Result<usize, WheelError> {
    let PycPlaces {
        cache,
        stage_name,
        spill,
    } = places;
    let (cache, spill) = (cache.as_path(), *spill);
    let tag = minor.replace('.', "");
    let key = |path: &str, content: &Content| -> std::io::Result<String> {
        let mut h = Sha256::new();
        h.update(BYTECODE_FORMAT.as_bytes());
        h.update([0]);
        h.update(tag.as_bytes());
        h.update([0]);
        h.update(mode.name().as_bytes());
        h.update([0]);
        h.update(path.as_bytes());
        h.update([0]);
        std::io::copy(&mut content.reader(), &mut h)?;
        Ok(hex::encode(h.finalize()))
    };
    // (source path, owner, cache key, cached byte-code)
    type Source<'t> = (&'t String, &'t Node, String, Option<Content>);
    let sources: Vec<Source> = tree
        .nodes
        .par_iter()
        .filter(|(path, node)| {
            node.kind == EntryKind::File && path.ends_with(".py") && wanted(path)
        })
        .map(|(path, node)| -> Result<Source, WheelError> {
            let k = key(path, &node.content)?;
            let cached = match std::fs::File::open(cache.join(&k)) {
                Ok(mut file) => Some(spill.with_writer(|w| w.copy(&mut file))?),
                Err(_) => None,
            };
            Ok((path, node, k, cached))
        })
        .collect::<Result<_, _>>()?;
    if sources.is_empty() {
        return Ok(0);
    }
    let missing: Vec<(&str, &Content)> = sources
        .iter()
        .filter(|s| s.3.is_none())
        .map(|s| (s.0.as_str(), &s.1.content))
        .collect();
    let mut compiled = BTreeMap::new();
    if !missing.is_empty()
        && let Some(c) = compiler()?
    {
        compiled = c.run(&missing, stage_name, mode, spill)?;
    }
    let mut pycs = Vec::new();
    for (path, node, k, cached) in sources {
        let content = match cached {
            Some(content) => content,
            None => match compiled.remove(path.as_str()) {
                Some(content) => {
                    // A cache entry: renamed into place whole, not synced (it can be rebuilt).
                    let entry = cache.join(&k);
                    let tmp = entry.with_extension(format!("{}.tmp", std::process::id()));
                    let written = std::fs::create_dir_all(cache).is_ok()
                        && std::fs::File::create(&tmp)
                            .and_then(|mut f| std::io::copy(&mut content.reader(), &mut f))
                            .is_ok();
                    if written {
                        let _ = std::fs::rename(&tmp, &entry);
                    }
                    content
                }
                None => continue,
            },
        };
        pycs.push((pyc_path(path, &tag), node.package.clone(), content));
    }
    let added = pycs.len();
    for (pyc, owner, data) in pycs {
        let dir = pyc.rsplit_once('/').expect("pyc path has a directory").0;
        if !tree.nodes.contains_key(dir) {
            tree.put(dir, wheel_dir());
        }
        tree.put(
            &pyc,
            Node {
                kind: EntryKind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: WHEEL_MTIME,
                content: data,
                package: owner,
            },
        );
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_code_lists_share_the_source_bytes_not_the_file_count() {
        // One package's two big modules sort next to each other, as in a real site-packages.
        let sizes = [900_000, 800_000, 2_000, 3_000, 1_000, 5_000, 4_000, 2_500];
        let lists = balanced_lists(&sizes, 2);
        assert_eq!(lists.len(), 2);
        let mut all: Vec<usize> = lists.concat();
        all.sort_unstable();
        assert_eq!(all, (0..sizes.len()).collect::<Vec<_>>(), "each file once");
        let cost =
            |l: &Vec<usize>| -> u64 { l.iter().map(|&i| sizes[i] + COMPILE_OVERHEAD_BYTES).sum() };
        assert!(lists[0].contains(&0) && lists[1].contains(&1), "{lists:?}");
        let (a, b) = (cost(&lists[0]), cost(&lists[1]));
        assert!(
            a.abs_diff(b) < 100_000 + COMPILE_OVERHEAD_BYTES,
            "{a} vs {b}"
        );
        assert!(lists.iter().all(|l| l.is_sorted()));
        assert_eq!(lists, balanced_lists(&sizes, 2));
        // Fewer files than workers: no empty list; none at all: no list.
        assert_eq!(balanced_lists(&[7], 4), vec![vec![0]]);
        assert!(balanced_lists(&[], 2).is_empty());
    }

    #[test]
    fn wheel_tags_are_taken_from_the_file_name_only_when_none_agree() {
        let file = "nvidia_x-0.8.1-py3-none-manylinux2014_aarch64.manylinux_2_17_aarch64.whl";
        assert_eq!(
            file_name_tags(file),
            vec![
                "py3-none-manylinux2014_aarch64",
                "py3-none-manylinux_2_17_aarch64"
            ]
        );
        let wrong =
            b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-manylinux2014_sbsa\n";
        assert_eq!(
            String::from_utf8(wheel_file_with_tags(wrong, file)).unwrap(),
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-manylinux2014_aarch64\nTag: py3-none-manylinux_2_17_aarch64\n"
        );
        let partial = b"Wheel-Version: 1.0\nTag: py3-none-manylinux2014_aarch64\n";
        assert_eq!(wheel_file_with_tags(partial, file), partial.to_vec());
    }

    #[test]
    fn record_hashes_are_urlsafe_base64_without_padding() {
        // RECORD of any wheel: sha256 of the empty file.
        assert_eq!(
            record_hash(b""),
            "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }
}
