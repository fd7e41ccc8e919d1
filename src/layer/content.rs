//! Where the bytes of a layer's file are: in memory for the small files carbon-store
//! generates (fixups, the dpkg database, trigger caches), or at an offset of a spill file
//! for everything read out of a package or a wheel.
//!
//! Why: an image's files together are gigabytes (compute's are tens of gigabytes), more
//! than the machines that build it have. Unpacking a package streams each member into a
//! spill file; the layer writer streams it back out into the tar. Memory then holds only
//! paths and metadata, whatever the size of the image.
//!
//! Spill files live in the store's temp area and are unlinked as soon as they are created:
//! they vanish when the last content pointing into them is dropped, or when the process
//! dies, and are never visible under a name another process could open.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A file's bytes.
#[derive(Clone)]
pub enum Content {
    /// Held in memory (generated files and small members).
    Inline(Vec<u8>),
    /// `len` bytes at `offset` of a spill file.
    Spilled {
        file: Arc<SpillFile>,
        offset: u64,
        len: u64,
    },
}

impl Default for Content {
    fn default() -> Self {
        Content::Inline(Vec::new())
    }
}

impl From<Vec<u8>> for Content {
    fn from(bytes: Vec<u8>) -> Self {
        Content::Inline(bytes)
    }
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Inline(b) => write!(f, "Inline({} bytes)", b.len()),
            Content::Spilled { offset, len, .. } => write!(f, "Spilled({len} bytes at {offset})"),
        }
    }
}

/// Two contents are equal when they are the same bytes in memory or the same span of the
/// same spill file; [`Content::same_bytes`] compares what they hold.
impl PartialEq for Content {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Content::Inline(a), Content::Inline(b)) => a == b,
            (
                Content::Spilled {
                    file: a,
                    offset: oa,
                    len: la,
                },
                Content::Spilled {
                    file: b,
                    offset: ob,
                    len: lb,
                },
            ) => Arc::ptr_eq(a, b) && oa == ob && la == lb,
            _ => false,
        }
    }
}

impl Eq for Content {}

impl Content {
    pub fn len(&self) -> u64 {
        match self {
            Content::Inline(b) => b.len() as u64,
            Content::Spilled { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A reader of exactly [`Content::len`] bytes.
    pub fn reader(&self) -> ContentReader<'_> {
        ContentReader {
            content: self,
            pos: 0,
        }
    }

    /// The whole content in memory: for the small files that are parsed or rewritten
    /// (RECORD, entry points, conffiles, the files fixups copy).
    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        match self {
            Content::Inline(b) => Ok(b.clone()),
            Content::Spilled { .. } => {
                let mut out = Vec::with_capacity(self.len() as usize);
                self.reader().read_to_end(&mut out)?;
                Ok(out)
            }
        }
    }

    /// Whether it holds exactly `bytes`.
    pub fn equals(&self, bytes: &[u8]) -> io::Result<bool> {
        Ok(self.len() == bytes.len() as u64 && same_stream(self.reader(), bytes)?)
    }

    /// Whether the two hold the same bytes (read in pieces, never whole).
    pub fn same_bytes(&self, other: &Content) -> io::Result<bool> {
        if self.len() != other.len() {
            return Ok(false);
        }
        Ok(self == other || same_stream(self.reader(), other.reader())?)
    }
}

/// Whether two readers of the same length give the same bytes, compared piece by piece.
fn same_stream(mut a: impl Read, mut b: impl Read) -> io::Result<bool> {
    let (mut x, mut y) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let n = a.read(&mut x)?;
        if n == 0 {
            return Ok(true);
        }
        b.read_exact(&mut y[..n])?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
    }
}

/// Reads a [`Content`] from its start.
pub struct ContentReader<'c> {
    content: &'c Content,
    pos: u64,
}

impl Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.content.len();
        let want = (len - self.pos).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = match self.content {
            Content::Inline(b) => {
                let start = self.pos as usize;
                buf[..want].copy_from_slice(&b[start..start + want]);
                want
            }
            Content::Spilled { file, offset, .. } => {
                let n = file.file.read_at(&mut buf[..want], offset + self.pos)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "a spill file is shorter than what was written to it",
                    ));
                }
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

/// One unlinked temp file that contents point into.
pub struct SpillFile {
    file: File,
}

/// Appends contents to one spill file. Nothing is buffered between calls, so a content is
/// readable as soon as [`SpillWriter::copy`] returns it.
pub struct SpillWriter {
    file: Arc<SpillFile>,
    out: File,
    end: u64,
    /// The copy buffer, reused for every content.
    buf: Vec<u8>,
}

/// The copy buffer: big enough that a large member costs few system calls.
const COPY_BUFFER: usize = 256 << 10;

impl SpillWriter {
    /// Copies `reader` to its end into the spill file; returns where it went.
    pub fn copy(&mut self, reader: &mut impl Read) -> io::Result<Content> {
        let offset = self.end;
        let buf = &mut self.buf;
        loop {
            let n = match reader.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.out.write_all(&buf[..n])?;
            self.end += n as u64;
        }
        let len = self.end - offset;
        if len == 0 {
            return Ok(Content::default());
        }
        Ok(Content::Spilled {
            file: self.file.clone(),
            offset,
            len,
        })
    }
}

/// Where a realize's unpacked files go: a pool of spill files in the store's temp area,
/// one per thread that writes at a time.
pub struct Spill {
    dir: PathBuf,
    free: Mutex<Vec<SpillWriter>>,
}

static SPILL_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Spill {
    /// Spill files will be created in `dir` (which must exist).
    pub fn new(dir: PathBuf) -> Spill {
        Spill {
            dir,
            free: Mutex::new(Vec::new()),
        }
    }

    fn new_writer(&self) -> io::Result<SpillWriter> {
        let n = SPILL_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("spill-{}-{n}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        // Unlinked at once: the space is freed when the last handle closes, even after kill -9.
        std::fs::remove_file(&path)?;
        let out = file.try_clone()?;
        Ok(SpillWriter {
            file: Arc::new(SpillFile { file }),
            out,
            end: 0,
            buf: vec![0u8; COPY_BUFFER],
        })
    }

    /// Runs `f` with a writer of the pool (a new spill file when none is free).
    pub fn with_writer<T, E: From<io::Error>>(
        &self,
        f: impl FnOnce(&mut SpillWriter) -> Result<T, E>,
    ) -> Result<T, E> {
        let taken = self.free.lock().expect("spill pool").pop();
        let mut writer = match taken {
            Some(w) => w,
            None => self.new_writer()?,
        };
        let result = f(&mut writer);
        self.free.lock().expect("spill pool").push(writer);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_contents_read_back_and_compare_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::new(dir.path().to_path_buf());
        let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let (a, b, empty) = spill
            .with_writer(|w| -> io::Result<_> {
                Ok((
                    w.copy(&mut big.as_slice())?,
                    w.copy(&mut big.as_slice())?,
                    w.copy(&mut io::empty())?,
                ))
            })
            .unwrap();
        assert_eq!(a.to_vec().unwrap(), big);
        assert_eq!(a.len(), big.len() as u64);
        assert!(empty.is_empty());
        assert_ne!(a, b, "two spans are two contents");
        assert!(a.same_bytes(&b).unwrap());
        assert!(a.same_bytes(&Content::Inline(big.clone())).unwrap());
        let mut other = big.clone();
        other[999_999] ^= 1;
        assert!(!a.same_bytes(&Content::Inline(other)).unwrap());
        // Nothing is left under a name in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
