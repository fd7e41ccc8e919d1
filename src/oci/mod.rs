//! OCI output: image config and manifest built with oci-spec and serialized canonically,
//! the OCI image layout with a multi-arch index, and docker-archive tarballs.
//!
//! oci-spec keeps annotations and labels in hash maps, so every document is serialized
//! through `serde_json::Value` (whose maps are sorted) to get the same bytes every time.

pub mod docker_archive;
pub mod image;
pub mod layout;
pub mod metadata;
pub mod referrer;

pub use image::{Attachment, BuiltImage, BuiltLayer, ConfigSettings};

use sha2::{Digest, Sha256};

/// Canonical JSON bytes of any serializable document (sorted keys, no whitespace).
pub fn canonical_json<T: serde::Serialize>(doc: &T) -> Vec<u8> {
    let value = serde_json::to_value(doc).expect("OCI documents serialize");
    serde_json::to_vec(&value).expect("values serialize")
}

/// `sha256:<hex>` of bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// RFC 3339 UTC time of a Unix timestamp (`2026-11-24T00:34:34Z`).
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_252_544), "2026-11-21T09:15:44Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
