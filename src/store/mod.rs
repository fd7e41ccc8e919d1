//! The content-addressed store: every source under its Nix fixed-output path, written
//! atomically and verified by hash, safe for several processes at once.
//!
//! Writers stream into `.tmp/` inside the store (same file system), hash as they go,
//! fsync, then rename to the final name: a reader never sees a partial object, and a
//! killed process leaves only a temp file. Processes take a shared lock on `.lock`;
//! garbage collection takes it exclusively.

pub mod bundle;
pub mod gc;
pub mod path;

use crate::digest::{Digest, Hasher, Sha256Hex};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A store failure; each names the object or path involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{name}: {algorithm} mismatch: expected {expected}, got {actual}")]
    HashMismatch {
        name: String,
        algorithm: &'static str,
        expected: String,
        actual: String,
    },
    #[error("{name}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        name: String,
        expected: u64,
        actual: u64,
    },
    #[error("{name} ({sha256}) is not in the store")]
    Missing { name: String, sha256: String },
    #[error(transparent)]
    Name(#[from] crate::name::NameError),
}

impl StoreError {
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> StoreError {
        StoreError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the failure is the disk being full, which deserves its own advice.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Io { source, .. } if source.raw_os_error() == Some(28))
    }
}

/// What an object must hash to before it may enter the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub digest: Digest,
    pub size: Option<u64>,
}

impl Expected {
    /// An object of this sha256 (hex), of `size` bytes when known.
    pub fn sha256(hex: &str, size: Option<u64>) -> Expected {
        Expected {
            digest: Digest::Sha256(hex.to_string()),
            size,
        }
    }
}

/// The directories of a store besides its objects. Each is named here only; the module in
/// its comment writes it, and `gc` ([`gc::gc`]) has one rule per area for what is live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    /// Temp files of inserts and scratch directories (this module, `realize`, `sdist`):
    /// nothing in it is live once no process holds the store.
    Tmp,
    /// Small mutable pointers such as the newest InRelease of a suite (`debian`).
    Refs,
    /// Layer and image blobs by sha256 (`realize`): live while an output or a cached
    /// layer needs them.
    Blobs,
    /// Layer cache entries and input records (`realize/layers`, `realize/input_cache`).
    Layers,
    /// Records of finished realizes (`realize`): live while their outputs exist.
    Realized,
    /// Extra lockfiles the user asks gc to keep (read by the CLI).
    GcRoots,
    /// Compiled byte-code by interpreter, path and source (`realize/python`): a pure
    /// accelerator, emptied by gc.
    PycCache,
    /// Wheel core metadata by wheel sha256 (`python`): live while a root lock pins
    /// that wheel.
    PypiMetadata,
    /// Which wheel an sdist build made (`sdist`): live while that wheel is kept.
    PypiBuilds,
    /// npm packuments by URL, with when they were fetched (`npm`): an accelerator that
    /// lets a re-lock within minutes, or an offline one, skip the registry; emptied by gc.
    NpmMetadata,
    /// Unfinished registry uploads and the repositories pushed to (`registry`): only an
    /// accelerator, emptied by gc.
    Uploads,
}

impl Area {
    pub const ALL: [Area; 11] = [
        Area::Tmp,
        Area::Refs,
        Area::Blobs,
        Area::Layers,
        Area::Realized,
        Area::GcRoots,
        Area::PycCache,
        Area::PypiMetadata,
        Area::PypiBuilds,
        Area::NpmMetadata,
        Area::Uploads,
    ];

    /// The directory's name under the store.
    pub fn dir_name(self) -> &'static str {
        match self {
            Area::Tmp => ".tmp",
            Area::Refs => "refs",
            Area::Blobs => "blobs",
            Area::Layers => "layers",
            Area::Realized => "realized",
            Area::GcRoots => "gcroots",
            Area::PycCache => "pyc-cache",
            Area::NpmMetadata => "npm-metadata",
            Area::PypiMetadata => "pypi-metadata",
            Area::PypiBuilds => "pypi-builds",
            Area::Uploads => "uploads",
        }
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A store directory.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// A held store lock; released on drop.
pub struct StoreLock {
    _file: Option<File>,
}

/// Whether an error says the file system or its permissions forbid writing.
fn is_read_only(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(30) // EROFS
}

impl Store {
    /// Opens (creating if needed) a store directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let root = root.into();
        let areas = [Area::Tmp, Area::Refs].map(|a| root.join(a.dir_name()));
        for dir in std::iter::once(root.clone()).chain(areas) {
            match fs::create_dir_all(&dir) {
                Ok(()) => {}
                // A read-only store can still be read; writing to it fails where it is tried.
                Err(e) if is_read_only(&e) && root.is_dir() => {}
                Err(e) => return Err(StoreError::io("creating", &dir, e)),
            }
        }
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of one area of the store (which may not exist yet).
    pub fn area(&self, area: Area) -> PathBuf {
        self.root.join(area.dir_name())
    }

    /// A scratch directory `name` under `.tmp`, its path absolute (programs run in it are
    /// given paths inside it).
    pub fn scratch_dir(&self, name: &str) -> io::Result<ScratchDir> {
        Ok(ScratchDir::at(
            std::path::absolute(self.area(Area::Tmp))?.join(name),
        ))
    }

    /// The store's lock file, opened (created if missing). A store this process may not
    /// write (a shared cache mounted read-only) is locked through a read-only descriptor,
    /// which `flock` accepts; `None` when the lock file is missing there too, since then no
    /// process can write that store through this mount either.
    fn lock_file(&self) -> Result<Option<(File, PathBuf)>, StoreError> {
        let path = self.root.join(".lock");
        let writable = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path);
        match writable {
            Ok(file) => Ok(Some((file, path))),
            Err(e) if is_read_only(&e) => match File::open(&path) {
                Ok(file) => Ok(Some((file, path))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(StoreError::io("opening", &path, e)),
            },
            Err(e) => Err(StoreError::io("opening", &path, e)),
        }
    }

    fn lock(&self, exclusive: bool) -> Result<StoreLock, StoreError> {
        let Some((file, path)) = self.lock_file()? else {
            return Ok(StoreLock { _file: None });
        };
        let result = if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        };
        result.map_err(|e| StoreError::io("locking", &path, e))?;
        Ok(StoreLock { _file: Some(file) })
    }

    /// A lock held by every process that reads or adds objects.
    pub fn lock_shared(&self) -> Result<StoreLock, StoreError> {
        self.lock(false)
    }

    /// The exclusive lock if it is free right now (to tell the user when gc must wait).
    pub fn lock_exclusive_nowait(&self) -> Result<StoreLock, StoreError> {
        let Some((file, path)) = self.lock_file()? else {
            return Ok(StoreLock { _file: None });
        };
        file.try_lock()
            .map_err(|e| StoreError::io("locking", &path, std::io::Error::other(e.to_string())))?;
        Ok(StoreLock { _file: Some(file) })
    }

    /// A lock that excludes every other process (for removing objects).
    pub fn lock_exclusive(&self) -> Result<StoreLock, StoreError> {
        self.lock(true)
    }

    /// Where a source with this hash and file name lives.
    pub fn source_path(&self, sha256: &str, name: &str) -> PathBuf {
        self.root.join(path::fixed_output_name(sha256, name))
    }

    /// Where an object pinned by `digest` (of any algorithm) lives.
    pub fn object_path(&self, digest: &Digest, name: &str) -> PathBuf {
        self.root.join(path::fixed_output_name_of(digest, name))
    }

    /// Whether the store holds the object (by name; its size is checked when known).
    /// The name embeds the hash and only verified objects get a final name, so this is a
    /// cheap check; [`Store::read_verified`] re-hashes before use.
    pub fn contains(&self, sha256: &str, name: &str, size: Option<u64>) -> bool {
        self.holds(&Digest::Sha256(sha256.to_string()), name, size)
    }

    /// [`Store::contains`] for a digest of any algorithm.
    pub fn holds(&self, digest: &Digest, name: &str, size: Option<u64>) -> bool {
        match fs::metadata(self.object_path(digest, name)) {
            Ok(meta) => size.is_none_or(|s| meta.len() == s),
            Err(_) => false,
        }
    }

    /// Starts writing an object; nothing is visible under its final name until `commit`.
    pub fn begin(&self, name: &str) -> Result<PendingObject, StoreError> {
        self.begin_hashing(name, Hasher::default())
    }

    /// [`Store::begin`] for an object that will be checked against `expected`'s algorithm.
    pub fn begin_for(&self, name: &str, expected: &Digest) -> Result<PendingObject, StoreError> {
        self.begin_hashing(name, expected.hasher())
    }

    fn begin_hashing(&self, name: &str, hasher: Hasher) -> Result<PendingObject, StoreError> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self.area(Area::Tmp).join(format!(
            "{}-{}-{}",
            std::process::id(),
            n,
            path::sanitize_name(name)
        ));
        let file = File::create(&tmp).map_err(|e| StoreError::io("creating", &tmp, e))?;
        Ok(PendingObject {
            store: self.clone(),
            name: name.to_string(),
            tmp,
            writer: Some(BufWriter::with_capacity(256 * 1024, file)),
            hasher,
            size: 0,
        })
    }

    /// Adds bytes whose hash is whatever they hash to (e.g. a freshly downloaded `InRelease`).
    pub fn insert_bytes(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<(Sha256Hex, PathBuf), StoreError> {
        let sha256 = Sha256Hex::of(bytes);
        let mut pending = self.begin(name)?;
        pending.write_all(bytes)?;
        let path = pending.commit(&Expected::sha256(&sha256, Some(bytes.len() as u64)))?;
        Ok((sha256, path))
    }

    /// Opens an object of the store; a missing one is [`StoreError::Missing`].
    fn open_object(&self, digest: &Digest, name: &str) -> Result<(File, PathBuf), StoreError> {
        let path = self.object_path(digest, name);
        match File::open(&path) {
            Ok(f) => Ok((f, path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::Missing {
                name: name.to_string(),
                sha256: digest.to_string(),
            }),
            Err(e) => Err(StoreError::io("opening", &path, e)),
        }
    }

    /// Opens an object after checking its hash (read as a stream), positioned at its start:
    /// for objects too large to hold in memory. Objects are never rewritten in place, so
    /// the open file keeps the bytes that were checked.
    pub fn open_verified(&self, sha256: &str, name: &str) -> Result<File, StoreError> {
        self.open_verified_digest(&Digest::Sha256(sha256.to_string()), name)
    }

    /// [`Store::open_verified`] for a digest of any algorithm.
    pub fn open_verified_digest(&self, digest: &Digest, name: &str) -> Result<File, StoreError> {
        let (mut file, path) = self.open_object(digest, name)?;
        let mut hasher = digest.hasher();
        io::copy(&mut file, &mut hasher).map_err(|e| StoreError::io("reading", &path, e))?;
        check_hash(&path, digest, hasher)?;
        io::Seek::rewind(&mut file).map_err(|e| StoreError::io("reading", &path, e))?;
        Ok(file)
    }

    /// Takes an object of another store into this one, re-hashed as it is copied: a store
    /// that must not trust another (`verify-image`'s clean store) still avoids a download.
    /// `false` when the other store lacks it; an object that fails its hash is not taken.
    pub fn adopt(&self, from: &Store, expected: &Expected, name: &str) -> Result<bool, StoreError> {
        if self.holds(&expected.digest, name, expected.size) {
            return Ok(true);
        }
        let (mut file, path) = match from.open_object(&expected.digest, name) {
            Ok(found) => found,
            Err(StoreError::Missing { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let mut pending = self.begin_for(name, &expected.digest)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| StoreError::io("reading", &path, e))?;
            if n == 0 {
                break;
            }
            pending.write_all(&buf[..n])?;
        }
        match pending.commit(expected) {
            Ok(_) => Ok(true),
            Err(StoreError::HashMismatch { .. } | StoreError::SizeMismatch { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Reads a whole object and checks its hash.
    pub fn read_verified(&self, sha256: &str, name: &str) -> Result<Vec<u8>, StoreError> {
        let digest = Digest::Sha256(sha256.to_string());
        let (mut file, path) = self.open_object(&digest, name)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| StoreError::io("reading", &path, e))?;
        let mut hasher = digest.hasher();
        hasher.update(&bytes);
        check_hash(&path, &digest, hasher)?;
        Ok(bytes)
    }

    /// Reads a named reference (a small mutable pointer such as "newest InRelease of trixie").
    /// A name that is not a valid ref name names no ref.
    pub fn get_ref(&self, name: &str) -> Option<String> {
        let name = crate::name::ref_name("store ref", name).ok()?;
        fs::read_to_string(self.area(Area::Refs).join(name))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Replaces a named reference atomically; the name must be a ref name
    /// ([`crate::name::ref_name`]), so a ref never lands outside `refs/`.
    pub fn set_ref(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let name = crate::name::ref_name("store ref", name)?;
        if let Some(c) = value.chars().find(|c| ['\n', '\0'].contains(c)) {
            return Err(crate::name::NameError {
                what: "store ref value",
                shown: format!("{value:?}"),
                reason: crate::name::Reason::Character(c),
            }
            .into());
        }
        let path = self.area(Area::Refs).join(name);
        write_atomic(&path, format!("{value}\n").as_bytes())
    }
}

/// A scratch directory path under the store's `.tmp`, removed (with what it holds) when
/// dropped; gc removes what a killed process leaves. The directory itself is not created,
/// so a caller can create it as it must (`unpack::beneath::Beneath::create` insists on a
/// new one).
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// Reserves `path`, removing whatever an earlier process of the same name left there.
    pub fn at(path: PathBuf) -> ScratchDir {
        let _ = fs::remove_dir_all(&path);
        ScratchDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Whether what `hasher` saw is the object `expected`.
fn check_hash(path: &Path, expected: &Digest, hasher: Hasher) -> Result<(), StoreError> {
    let actual = hasher.finalize();
    if &actual == expected {
        return Ok(());
    }
    Err(StoreError::HashMismatch {
        name: path.display().to_string(),
        algorithm: expected.algorithm(),
        expected: expected.hex().to_string(),
        actual: actual.hex().to_string(),
    })
}

/// Writes a file atomically: temp file beside it, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| StoreError::io("creating", dir, e))?;
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}-{n}.tmp", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io("writing", path, e));
    }
    Ok(())
}

/// An object being written. Dropping it without `commit` removes the temp file.
pub struct PendingObject {
    store: Store,
    name: String,
    tmp: PathBuf,
    writer: Option<BufWriter<File>>,
    hasher: Hasher,
    size: u64,
}

impl PendingObject {
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        let writer = self.writer.as_mut().expect("writer present until commit");
        writer
            .write_all(bytes)
            .map_err(|e| StoreError::io("writing", &self.tmp, e))
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Verifies size and hash, syncs, and moves the object to its final name.
    pub fn commit(self, expected: &Expected) -> Result<PathBuf, StoreError> {
        self.verify(expected)?.publish()
    }

    /// Verifies size and hash and syncs the data, without publishing it yet: a caller that
    /// must take several objects or none (a bundle import) publishes them all at the end.
    pub fn verify(mut self, expected: &Expected) -> Result<VerifiedObject, StoreError> {
        if let Some(size) = expected.size
            && size != self.size
        {
            return Err(StoreError::SizeMismatch {
                name: self.name.clone(),
                expected: size,
                actual: self.size,
            });
        }
        let actual = std::mem::take(&mut self.hasher).finalize();
        if actual != expected.digest {
            return Err(StoreError::HashMismatch {
                name: self.name.clone(),
                algorithm: expected.digest.algorithm(),
                expected: expected.digest.hex().to_string(),
                actual: actual.hex().to_string(),
            });
        }
        let writer = self.writer.take().expect("writer present until verify");
        let file = writer
            .into_inner()
            .map_err(|e| StoreError::io("writing", &self.tmp, e.into_error()))?;
        file.sync_all()
            .map_err(|e| StoreError::io("syncing", &self.tmp, e))?;
        let final_path = self.store.object_path(&expected.digest, &self.name);
        let tmp = std::mem::take(&mut self.tmp);
        Ok(VerifiedObject {
            root: self.store.root.clone(),
            tmp,
            final_path,
        })
    }
}

/// A verified object under its temp name; dropped unpublished, it is removed.
pub struct VerifiedObject {
    root: PathBuf,
    tmp: PathBuf,
    final_path: PathBuf,
}

impl VerifiedObject {
    /// Moves the object to its final name.
    pub fn publish(mut self) -> Result<PathBuf, StoreError> {
        fs::rename(&self.tmp, &self.final_path)
            .map_err(|e| StoreError::io("renaming into", &self.final_path, e))?;
        self.tmp = PathBuf::new();
        if let Ok(dir) = File::open(&self.root) {
            let _ = dir.sync_all();
        }
        Ok(self.final_path.clone())
    }
}

impl Drop for VerifiedObject {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Drop for PendingObject {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() && self.tmp.exists() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
