//! What ca-certificates-java's `jks-keystore` hook does by running Java on first
//! configuration: `/etc/ssl/certs/java/cacerts`, the trust store of every JVM in the image,
//! holding the certificates `update-ca-certificates` enabled. Without it Java's TLS fails
//! ("the trustAnchors parameter must be non-empty"): Maven, Gradle, Spark, sbt.
//!
//! Written here as a JKS key store (Java reads JKS and PKCS#12 alike whatever the file's
//! name) with the store password `changeit` that Debian and every JDK use. The format, as
//! `sun.security.provider.JavaKeyStore` reads it: magic `FEEDFEED`, version 2, the entry
//! count, then per trusted certificate: tag 2, the alias (Java's `writeUTF`), the creation
//! time in milliseconds, the type `X.509` and the DER certificate; last a SHA-1 over the
//! password (UTF-16BE), the words "Mighty Aphrodite" and everything before. Aliases are
//! Debian's (`debian:<name>.pem`), in alias order; the creation time is the lock's
//! `SOURCE_DATE_EPOCH`, so the file is reproducible.

use super::certificates::{pem_name, pem_to_der, shipped};
use super::{FixupInput, put};
use crate::layer::tree::Tree;
use sha1::{Digest, Sha1};

const PATH: &str = "etc/ssl/certs/java/cacerts";
const PASSWORD: &str = "changeit";

pub fn build(input: &FixupInput, tree: &mut Tree) {
    if !input.has_package("ca-certificates-java") || !input.has_package("ca-certificates") {
        return;
    }
    let mut entries: Vec<(String, Vec<u8>)> = shipped(input)
        .into_iter()
        .filter_map(|(rel, pem)| Some((alias(rel), pem_to_der(pem)?)))
        .collect();
    entries.sort();
    entries.dedup_by(|a, b| a.0 == b.0);
    put(
        input,
        tree,
        PATH,
        input.file(
            key_store(&entries, input.source_date_epoch * 1000, PASSWORD),
            0o644,
        ),
    );
}

/// `debian:` and the certificate's `/etc/ssl/certs` link name, lower case.
fn alias(rel: &str) -> String {
    format!("debian:{}", pem_name(rel).to_lowercase())
}

/// Java's `DataOutput.writeUTF` for the ASCII and BMP characters aliases hold.
fn write_utf(out: &mut Vec<u8>, s: &str) {
    let mut encoded = Vec::new();
    for c in s.encode_utf16() {
        match c {
            0x0001..=0x007f => encoded.push(c as u8),
            0x0000 | 0x0080..=0x07ff => {
                encoded.push(0xc0 | (c >> 6) as u8);
                encoded.push(0x80 | (c & 0x3f) as u8);
            }
            _ => {
                encoded.push(0xe0 | (c >> 12) as u8);
                encoded.push(0x80 | ((c >> 6) & 0x3f) as u8);
                encoded.push(0x80 | (c & 0x3f) as u8);
            }
        }
    }
    out.extend_from_slice(&(encoded.len() as u16).to_be_bytes());
    out.extend_from_slice(&encoded);
}

/// A JKS key store of trusted certificates: (alias, DER) in the order given.
fn key_store(certs: &[(String, Vec<u8>)], created_ms: u64, password: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xfeed_feed_u32.to_be_bytes());
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&(certs.len() as u32).to_be_bytes());
    for (alias, der) in certs {
        out.extend_from_slice(&2u32.to_be_bytes());
        write_utf(&mut out, alias);
        out.extend_from_slice(&created_ms.to_be_bytes());
        write_utf(&mut out, "X.509");
        out.extend_from_slice(&(der.len() as u32).to_be_bytes());
        out.extend_from_slice(der);
    }
    let mut h = Sha1::new();
    for c in password.encode_utf16() {
        h.update(c.to_be_bytes());
    }
    h.update(b"Mighty Aphrodite");
    h.update(&out);
    out.extend_from_slice(&h.finalize());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_follow_debian() {
        assert_eq!(
            alias("mozilla/DigiCert_Global_Root_G2.crt"),
            "debian:digicert_global_root_g2.pem"
        );
        assert_eq!(
            alias("mozilla/Certigna Root CA (2).crt"),
            "debian:certigna_root_ca_=2=.pem"
        );
    }

    #[test]
    fn key_store_layout() {
        let store = key_store(&[("a".into(), vec![1, 2, 3])], 7, "changeit");
        let mut expected = vec![0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        expected.extend_from_slice(&[0, 1, b'a']);
        expected.extend_from_slice(&7u64.to_be_bytes());
        expected.extend_from_slice(&[0, 5, b'X', b'.', b'5', b'0', b'9', 0, 0, 0, 3, 1, 2, 3]);
        assert_eq!(&store[..store.len() - 20], &expected[..]);
        // The integrity check Java verifies with the store password.
        let mut h = Sha1::new();
        for c in "changeit".encode_utf16() {
            h.update(c.to_be_bytes());
        }
        h.update(b"Mighty Aphrodite");
        h.update(&expected);
        assert_eq!(&store[store.len() - 20..], &h.finalize()[..]);
    }
}
