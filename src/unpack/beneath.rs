//! Writing files from untrusted archives to disk, beneath one directory and never through
//! a symlink.
//!
//! Why: most of carbon-store never unpacks to disk (layers are built in memory and written
//! as tar), but three things must: the interpreter that compiles byte-code, the sources it
//! compiles, and an sdist's build directory. Ordinary `std::fs` calls follow symlinks, so a
//! package that ships `usr/lib/x -> /somewhere` and then `usr/lib/x/file` would write on the
//! host. Every path here is resolved by the kernel with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)` from a descriptor of the root: no component may be a symlink or
//! `..` out of it, whatever the archive did before. Symlinks are created as entries (they
//! may point anywhere; nothing here follows them) and files are created exclusively, so an
//! existing link at the final name is refused rather than written through.

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Why a write beneath the root was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BeneathError {
    #[error("{path:?} is not a relative path inside {root}")]
    NotRelative { root: PathBuf, path: String },
    #[error("{path:?} in {root}: {action}: {source}")]
    Io {
        root: PathBuf,
        path: String,
        action: &'static str,
        source: std::io::Error,
    },
}

/// A directory that untrusted entries are written into.
pub struct Beneath {
    root: PathBuf,
    fd: OwnedFd,
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_SYMLINKS);

impl Beneath {
    /// Creates `root` (its parents may exist; `root` itself must not) and opens it.
    pub fn create(root: &Path) -> Result<Beneath, BeneathError> {
        let io = |action, source| BeneathError::Io {
            root: root.to_path_buf(),
            path: String::new(),
            action,
            source,
        };
        if let Some(parent) = root.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io("creating its parent", e))?;
        }
        std::fs::create_dir(root).map_err(|e| io("creating", e))?;
        Self::open(root)
    }

    /// Opens an existing directory (itself not through a symlink).
    pub fn open(root: &Path) -> Result<Beneath, BeneathError> {
        let fd = rustix::fs::open(
            root,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY,
            Mode::empty(),
        )
        .map_err(|e| BeneathError::Io {
            root: root.to_path_buf(),
            path: String::new(),
            action: "opening",
            source: e.into(),
        })?;
        Ok(Beneath {
            root: root.to_path_buf(),
            fd,
        })
    }

    fn err(&self, path: &str, action: &'static str, e: impl Into<std::io::Error>) -> BeneathError {
        BeneathError::Io {
            root: self.root.clone(),
            path: path.to_string(),
            action,
            source: e.into(),
        }
    }

    /// Splits `path` into its parent (relative, maybe empty) and its last component.
    fn split<'p>(&self, path: &'p str) -> Result<(&'p str, &'p str), BeneathError> {
        let bad = path.is_empty()
            || path.starts_with('/')
            || path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'));
        if bad {
            return Err(BeneathError::NotRelative {
                root: self.root.clone(),
                path: path.to_string(),
            });
        }
        Ok(path.rsplit_once('/').unwrap_or(("", path)))
    }

    /// The directory `dir` (relative; empty for the root), created with its parents, each
    /// resolved beneath the root with no symlink on the way.
    fn dir(&self, dir: &str) -> Result<OwnedFd, BeneathError> {
        let mut current = rustix::io::dup(&self.fd).map_err(|e| self.err(dir, "opening", e))?;
        if dir.is_empty() {
            return Ok(current);
        }
        for name in dir.split('/') {
            match rustix::fs::mkdirat(&current, name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(self.err(dir, "creating a directory", e)),
            }
            current = rustix::fs::openat2(
                &current,
                name,
                OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::RDONLY,
                Mode::empty(),
                RESOLVE,
            )
            .map_err(|e| {
                self.err(
                    dir,
                    "opening a directory (a symlink or not a directory?)",
                    e,
                )
            })?;
        }
        Ok(current)
    }

    /// Creates a directory and its parents.
    pub fn create_dir_all(&self, path: &str) -> Result<(), BeneathError> {
        self.split(path)?;
        self.dir(path).map(drop)
    }

    /// Writes a new file; an existing entry of that name (a link above all) is an error.
    pub fn write_file(
        &self,
        path: &str,
        mut data: impl std::io::Read,
        mode: u32,
    ) -> Result<(), BeneathError> {
        let (dir, name) = self.split(path)?;
        let parent = self.dir(dir)?;
        let fd = rustix::fs::openat2(
            &parent,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode & 0o7777),
            RESOLVE,
        )
        .map_err(|e| self.err(path, "creating a file", e))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o777))
            .map_err(|e| self.err(path, "setting the mode", e))?;
        let mut file = std::fs::File::from(fd);
        std::io::copy(&mut data, &mut file)
            .map(drop)
            .map_err(|e| self.err(path, "writing", e))
    }

    /// Writes a file, first removing an entry of that name that a previous package made
    /// (the entry itself, never what a link points to).
    pub fn replace_file(
        &self,
        path: &str,
        data: impl std::io::Read,
        mode: u32,
    ) -> Result<(), BeneathError> {
        self.remove_entry(path)?;
        self.write_file(path, data, mode)
    }

    /// Creates a symlink, first removing an entry of that name (as
    /// [`Beneath::replace_file`]).
    pub fn replace_symlink(&self, path: &str, target: &str) -> Result<(), BeneathError> {
        self.remove_entry(path)?;
        self.symlink(path, target)
    }

    /// Removes a non-directory entry if there is one.
    fn remove_entry(&self, path: &str) -> Result<(), BeneathError> {
        let (dir, name) = self.split(path)?;
        let parent = self.dir(dir)?;
        match rustix::fs::unlinkat(&parent, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(self.err(path, "removing the previous entry", e)),
        }
    }

    /// Creates a symlink entry (its target is not followed or checked here).
    pub fn symlink(&self, path: &str, target: &str) -> Result<(), BeneathError> {
        let (dir, name) = self.split(path)?;
        let parent = self.dir(dir)?;
        rustix::fs::symlinkat(target, &parent, name)
            .map_err(|e| self.err(path, "creating a symlink", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_written_through_a_symlink_or_above_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let root = Beneath::create(&dir.path().join("root")).unwrap();
        root.symlink("usr/lib/x", outside.to_str().unwrap())
            .unwrap();
        root.symlink("up", "..").unwrap();
        root.symlink("usr/bin/python3", "/etc/passwd").unwrap();
        for path in ["usr/lib/x/file", "up/file", "usr/lib/x"] {
            assert!(
                root.write_file(path, &b"pwned"[..], 0o644).is_err(),
                "{path}"
            );
        }
        assert!(root.create_dir_all("usr/lib/x/sub").is_err());
        assert!(root.write_file("../file", &b"pwned"[..], 0o644).is_err());
        assert!(root.write_file("/tmp/file", &b"pwned"[..], 0o644).is_err());
        // Writing to the link's name does not write through it either.
        assert!(
            root.write_file("usr/bin/python3", &b"pwned"[..], 0o644)
                .is_err()
        );
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert!(!dir.path().join("file").exists());
        // Ordinary entries work.
        root.write_file("usr/bin/tool", &b"ok"[..], 0o755).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("root/usr/bin/tool")).unwrap(),
            b"ok"
        );
    }
}
