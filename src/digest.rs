//! Content digests of artifacts. Debian's indexes, PyPI and OCI name sha256; the npm
//! registry names only sha512 (its `integrity`, a Subresource Integrity string). The store
//! addresses a fixed-output object by whichever digest the lock pins, as Nix does
//! (`fixed:out:<algo>:<hex>:`), so that an npm tarball need not be downloaded at lock time
//! just to learn another hash of it.

use base64::Engine as _;
use sha2::{Digest as _, Sha256, Sha512};
use std::fmt;

/// A digest: its algorithm and lowercase hex, validated on construction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Digest {
    Sha256(String),
    Sha512(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("{0:?} is not a sha512 integrity string (`sha512-<base64>`)")]
    NotSri(String),
    #[error("{what}: {value:?} is not {len} lowercase hex digits")]
    Hex {
        what: &'static str,
        value: String,
        len: usize,
    },
}

fn check_hex(what: &'static str, value: &str, len: usize) -> Result<(), DigestError> {
    if value.len() == len
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(DigestError::Hex {
            what,
            value: value.to_string(),
            len,
        })
    }
}

impl Digest {
    /// A sha256 from its hex (64 lowercase digits).
    pub fn sha256(hex: &str) -> Result<Digest, DigestError> {
        check_hex("sha256", hex, 64)?;
        Ok(Digest::Sha256(hex.to_string()))
    }

    /// A sha512 from its hex (128 lowercase digits).
    pub fn sha512(hex: &str) -> Result<Digest, DigestError> {
        check_hex("sha512", hex, 128)?;
        Ok(Digest::Sha512(hex.to_string()))
    }

    /// A digest in OCI's form, `sha256:<hex>` or `sha512:<hex>`.
    pub fn parse_oci(text: &str) -> Result<Digest, DigestError> {
        match text.split_once(':') {
            Some(("sha256", hex)) => Digest::sha256(hex),
            Some(("sha512", hex)) => Digest::sha512(hex),
            _ => Err(DigestError::Hex {
                what: "digest (sha256:HEX or sha512:HEX)",
                value: text.to_string(),
                len: 64,
            }),
        }
    }

    /// A digest from an SRI string. Only sha512 is accepted: npm's weaker `sha1-` is
    /// refused, and a string listing several hashes takes its sha512 one.
    pub fn from_sri(sri: &str) -> Result<Digest, DigestError> {
        let bad = || DigestError::NotSri(sri.to_string());
        let b64 = sri
            .split_whitespace()
            .find_map(|h| h.strip_prefix("sha512-"))
            .ok_or_else(bad)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| bad())?;
        if bytes.len() != 64 {
            return Err(bad());
        }
        Ok(Digest::Sha512(hex::encode(bytes)))
    }

    /// The SRI form (`sha512-<base64>`, `sha256-<base64>`).
    pub fn sri(&self) -> String {
        let bytes = hex::decode(self.hex()).expect("validated hex");
        format!(
            "{}-{}",
            self.algorithm(),
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    pub fn algorithm(&self) -> &'static str {
        match self {
            Digest::Sha256(_) => "sha256",
            Digest::Sha512(_) => "sha512",
        }
    }

    pub fn hex(&self) -> &str {
        match self {
            Digest::Sha256(h) | Digest::Sha512(h) => h,
        }
    }

    /// A hasher of the same algorithm.
    pub fn hasher(&self) -> Hasher {
        match self {
            Digest::Sha256(_) => Hasher::Sha256(Sha256::new()),
            Digest::Sha512(_) => Hasher::Sha512(Box::new(Sha512::new())),
        }
    }
}

/// `sha256:<hex>`: the form OCI descriptors and the lock's index records use.
impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm(), self.hex())
    }
}

/// A sha256 as Debian's indexes, PyPI and the lock write it: 64 lowercase hex digits, made
/// only by checking, so a value from an index or a lock can go into a store path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn parse(hex: &str) -> Result<Sha256Hex, DigestError> {
        check_hex("sha256", hex, 64)?;
        Ok(Sha256Hex(hex.to_string()))
    }

    /// The sha256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256Hex {
        Sha256Hex(hex::encode(Sha256::digest(bytes)))
    }

    /// As a [`Digest`], for the store and fetch, which take either algorithm.
    pub fn digest(&self) -> Digest {
        Digest::Sha256(self.0.clone())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Sha256Hex {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A running hash of one algorithm.
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Box<Sha512>),
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher::Sha256(Sha256::new())
    }
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finalize(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest::Sha256(hex::encode(h.finalize())),
            Hasher::Sha512(h) => Digest::Sha512(hex::encode(h.finalize())),
        }
    }
}

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sri_round_trips_and_refuses_sha1_and_short_hashes() {
        let mut h = Digest::Sha512(String::new()).hasher();
        h.update(b"abc");
        let d = h.finalize();
        assert!(d.hex().starts_with("ddaf35a193617aba"), "{d}");
        assert_eq!(Digest::from_sri(&d.sri()).unwrap(), d);
        assert_eq!(
            Digest::from_sri(&format!("sha1-qZk+NkcGgWq6PiVxeFDCbJzQ2J0= {}", d.sri())).unwrap(),
            d
        );
        assert!(Digest::from_sri("sha1-qZk+NkcGgWq6PiVxeFDCbJzQ2J0=").is_err());
        assert!(Digest::from_sri("sha512-qZk+NkcGgWq6PiVxeFDCbJzQ2J0=").is_err());
        assert!(Digest::sha256("ABC").is_err());
        assert_eq!(
            Digest::sha256(&"a".repeat(64)).unwrap().to_string(),
            format!("sha256:{}", "a".repeat(64))
        );
    }
}
