//! Nix store path names: `<32-char nix base32 hash>-<name>`.
//!
//! A source is stored under the path `nix-store --add-fixed sha256 FILE` would print for
//! it (a flat, fixed-output path with `/nix/store` as the store directory in the
//! fingerprint), so the store can be compared with, or imported into, a real Nix store.

use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// The store directory that goes into every fingerprint, whatever directory the store is in.
pub const NIX_STORE_DIR: &str = "/nix/store";

/// Nix's base-32 encoding (least significant 5-bit group last, no padding).
pub fn nix_base32(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    let len = (bytes.len() * 8 - 1) / 5 + 1;
    let mut out = String::with_capacity(len);
    for n in (0..len).rev() {
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let low = bytes[i] as u16 >> j;
        let high = if i + 1 < bytes.len() {
            (bytes[i + 1] as u16) << (8 - j)
        } else {
            0
        };
        out.push(ALPHABET[((low | high) & 0x1f) as usize] as char);
    }
    out
}

/// Folds a hash to `size` bytes by XOR, as Nix's `compressHash`.
fn compress(hash: &[u8], size: usize) -> Vec<u8> {
    let mut out = vec![0u8; size];
    for (i, b) in hash.iter().enumerate() {
        out[i % size] ^= b;
    }
    out
}

/// Makes a name acceptable to Nix: characters outside `[A-Za-z0-9+-._?=]` become `_`,
/// a leading `.` becomes `_`, and the name is cut to 211 bytes.
/// Debian file names with `~` (pre-releases) are the usual case this changes.
pub fn sanitize_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+-._?=".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with('.') {
        out.replace_range(0..1, "_");
    }
    out.truncate(211);
    out
}

/// Nix's `makeStorePath(type, hash, name)`: the 32-character hash part.
fn store_path_hash(path_type: &str, inner_sha256_hex: &str, name: &str) -> String {
    let fingerprint = format!("{path_type}:sha256:{inner_sha256_hex}:{NIX_STORE_DIR}:{name}");
    nix_base32(&compress(&Sha256::digest(fingerprint.as_bytes()), 20))
}

/// The store path name of a flat file with this sha256 (lowercase hex) and name:
/// what `nix-store --add-fixed sha256 FILE` prints, without the `/nix/store/` prefix.
pub fn fixed_output_name(sha256_hex: &str, name: &str) -> String {
    fixed_output_name_of(&crate::digest::Digest::Sha256(sha256_hex.to_string()), name)
}

/// [`fixed_output_name`] for a digest of any algorithm: Nix's `--add-fixed sha512 FILE`
/// for an npm tarball pinned by its integrity.
pub fn fixed_output_name_of(digest: &crate::digest::Digest, name: &str) -> String {
    let name = sanitize_name(name);
    let inner = format!("fixed:out:{}:{}:", digest.algorithm(), digest.hex());
    let inner_hex = hex::encode(Sha256::digest(inner.as_bytes()));
    format!(
        "{}-{}",
        store_path_hash("output:out", &inner_hex, &name),
        name
    )
}

/// The store path name of something addressed by its inputs (a realized component,
/// parsed metadata): `fingerprint` is any canonical description of those inputs.
pub fn input_addressed_name(fingerprint: &[u8], name: &str) -> String {
    let name = sanitize_name(name);
    let inner_hex = hex::encode(Sha256::digest(fingerprint));
    format!(
        "{}-{}",
        store_path_hash("carbon:out", &inner_hex, &name),
        name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_of_empty_sha256_matches_nix() {
        // nix-hash --type sha256 --to-base32 of sha256("")
        assert_eq!(
            nix_base32(&Sha256::digest(b"")),
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
    }

    #[test]
    fn names_are_made_nix_safe() {
        assert_eq!(
            sanitize_name("foo_1.0~rc1_amd64.deb"),
            "foo_1.0_rc1_amd64.deb"
        );
        assert_eq!(sanitize_name(".hidden"), "_hidden");
        assert_eq!(sanitize_name(&"a".repeat(300)).len(), 211);
    }

    #[test]
    fn fixed_output_name_has_a_32_char_hash() {
        // Printed by `nix-store --add-fixed sha256 hello.txt` for a file holding "hello\n".
        let n = fixed_output_name(&hex::encode(Sha256::digest(b"hello\n")), "hello.txt");
        assert_eq!(n, "gy454w1cxaq731grqwylhzf4pp9r5izh-hello.txt");
    }
}
