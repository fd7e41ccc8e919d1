//! Reading one member of a zip (a wheel) into memory or a spill file, never past the size
//! its zip entry declares.
//!
//! Why: a wheel is small on the wire, but a deflated member can inflate a thousandfold. The
//! central directory says how large each member is; a member that inflates past that is a
//! bomb or a broken archive, and is refused as soon as the first byte too many arrives,
//! so memory never exceeds what the archive declared. And a declaration that is honest but
//! absurd — gigabytes from a few kilobytes, which no real wheel does (the largest, CUDA
//! libraries, expand about 2:1) — is refused before any byte is inflated.

use crate::layer::content::{Content, SpillWriter};
use sha2::{Digest, Sha256};
use std::io::Read;

/// Why a member could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("{name}: inflates past the {declared} bytes its zip entry declares")]
    TooLarge { name: String, declared: u64 },
    #[error("{name}: inflates to {actual} bytes, not the {declared} its zip entry declares")]
    TooShort {
        name: String,
        declared: u64,
        actual: u64,
    },
    #[error(
        "{name}: declares {declared} bytes from {compressed} compressed, an expansion no real package has: refused as a decompression bomb"
    )]
    Bomb {
        name: String,
        declared: u64,
        compressed: u64,
    },
    #[error("{name}: {source}")]
    Read {
        name: String,
        source: std::io::Error,
    },
}

/// Above this many uncompressed bytes, an expansion over [`MAX_RATIO`] is a bomb.
pub const BOMB_FLOOR: u64 = 256 << 20;
/// The largest expansion (uncompressed : compressed) accepted above [`BOMB_FLOOR`].
pub const MAX_RATIO: u64 = 200;

/// Refuses a zip whose members declare an expansion no real package has: any member, or
/// all of them together, over [`BOMB_FLOOR`] bytes at more than [`MAX_RATIO`]:1.
/// `members` gives each member's name, uncompressed and compressed size.
pub fn check_expansion<'a>(
    members: impl IntoIterator<Item = (&'a str, u64, u64)>,
) -> Result<(), MemberError> {
    let bomb = |declared: u64, compressed: u64| {
        declared > BOMB_FLOOR && declared / compressed.max(1) > MAX_RATIO
    };
    let (mut declared, mut compressed) = (0u64, 0u64);
    for (name, size, packed) in members {
        if bomb(size, packed) {
            return Err(MemberError::Bomb {
                name: name.into(),
                declared: size,
                compressed: packed,
            });
        }
        declared = declared.saturating_add(size);
        compressed = compressed.saturating_add(packed);
    }
    if bomb(declared, compressed) {
        return Err(MemberError::Bomb {
            name: "its members together".into(),
            declared,
            compressed,
        });
    }
    Ok(())
}

/// Reads `member` whole; `declared` is its uncompressed size from the central directory.
pub fn read_capped(name: &str, member: impl Read, declared: u64) -> Result<Vec<u8>, MemberError> {
    // Reserve at most 64 MiB up front: a declared size is only a claim until the bytes come.
    let mut out = Vec::with_capacity(declared.min(64 << 20) as usize);
    member
        .take(declared.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|source| MemberError::Read {
            name: name.into(),
            source,
        })?;
    check_length(name, declared, out.len() as u64)?;
    Ok(out)
}

/// A member read up to one byte past its declaration must have exactly what it declared.
fn check_length(name: &str, declared: u64, actual: u64) -> Result<(), MemberError> {
    if actual > declared {
        return Err(MemberError::TooLarge {
            name: name.into(),
            declared,
        });
    }
    if actual < declared {
        return Err(MemberError::TooShort {
            name: name.into(),
            declared,
            actual,
        });
    }
    Ok(())
}

/// A reader that hashes what it reads.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Streams `member` into a spill file, as [`read_capped`] reads it into memory: never past
/// `declared` bytes. Returns where it went and the sha256 of its bytes.
pub fn spill_capped(
    name: &str,
    member: impl Read,
    declared: u64,
    spill: &mut SpillWriter,
) -> Result<(Content, [u8; 32]), MemberError> {
    let mut reader = HashingReader {
        inner: member.take(declared.saturating_add(1)),
        hasher: Sha256::new(),
    };
    let content = spill
        .copy(&mut reader)
        .map_err(|source| MemberError::Read {
            name: name.into(),
            source,
        })?;
    check_length(name, declared, content.len())?;
    Ok((content, reader.hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_is_read_only_up_to_its_declared_size() {
        let endless = std::io::repeat(0);
        let err = read_capped("bomb", endless, 1000).unwrap_err();
        assert!(matches!(err, MemberError::TooLarge { declared: 1000, .. }));
        assert!(matches!(
            read_capped("short", &b"abc"[..], 4).unwrap_err(),
            MemberError::TooShort { actual: 3, .. }
        ));
        assert_eq!(read_capped("ok", &b"abcd"[..], 4).unwrap(), b"abcd");
    }

    #[test]
    fn a_spilled_member_is_capped_and_hashed_the_same_way() {
        let dir = tempfile::tempdir().unwrap();
        let spill = crate::layer::content::Spill::new(dir.path().to_path_buf());
        spill
            .with_writer(|w| -> Result<(), std::io::Error> {
                let err = spill_capped("bomb", std::io::repeat(0), 1 << 20, w).unwrap_err();
                assert!(matches!(err, MemberError::TooLarge { .. }));
                let (content, sha) = spill_capped("ok", &b"abcd"[..], 4, w).unwrap();
                assert_eq!(content.to_vec()?, b"abcd");
                assert_eq!(sha, <[u8; 32]>::from(Sha256::digest(b"abcd")));
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn absurd_expansions_are_bombs_and_real_wheels_are_not() {
        // torch 2.x's largest member: about 1.9 GB from 0.9 GB.
        assert!(check_expansion([("libtorch_cuda.so", 1_900 << 20, 900 << 20)]).is_ok());
        // Small files may compress as well as they like.
        assert!(check_expansion([("zeros.txt", 1 << 20, 1_100)]).is_ok());
        assert!(matches!(
            check_expansion([("bomb", 1 << 30, 1 << 20)]),
            Err(MemberError::Bomb { .. })
        ));
        // Many members, each under the floor, together over it.
        let many: Vec<(&str, u64, u64)> = (0..64).map(|_| ("part", 8 << 20, 8 << 10)).collect();
        assert!(matches!(
            check_expansion(many),
            Err(MemberError::Bomb { name, .. }) if name == "its members together"
        ));
    }
}
