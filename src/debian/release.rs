//! The `Release` part of an `InRelease` file: the suite's date, validity and the
//! sha256 and size of every index it lists.

use crate::deb822::Paragraphs;
use std::time::{Duration, SystemTime};

/// One index listed under `SHA256:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// The fields of a `Release` text that carbon-store relies on.
#[derive(Clone, Debug)]
pub struct Release {
    pub suite: Option<String>,
    pub codename: Option<String>,
    /// The `Date` field as written, and as seconds since the epoch.
    pub date_text: String,
    pub date: SystemTime,
    pub valid_until: Option<SystemTime>,
    pub acquire_by_hash: bool,
    pub sha256: Vec<IndexEntry>,
}

/// A Release text that is missing something or malformed.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("Release has no paragraph")]
    Empty,
    #[error("Release: {0}")]
    Control(#[from] crate::deb822::ControlError),
    #[error("Release has no {0} field")]
    Missing(&'static str),
    #[error("Release field {field}: cannot read date {text:?}")]
    BadDate { field: &'static str, text: String },
    #[error("Release SHA256 line {0:?} is not `hash size path`")]
    BadEntry(String),
}

impl Release {
    pub fn parse(text: &str) -> Result<Release, ReleaseError> {
        let paragraph = Paragraphs::new(text).next().ok_or(ReleaseError::Empty)??;
        let date_text = paragraph.get("Date").ok_or(ReleaseError::Missing("Date"))?;
        let date = parse_date("Date", date_text)?;
        let valid_until = paragraph
            .get("Valid-Until")
            .map(|t| parse_date("Valid-Until", t))
            .transpose()?;
        let mut sha256 = Vec::new();
        for line in paragraph
            .get("SHA256")
            .ok_or(ReleaseError::Missing("SHA256"))?
            .lines()
        {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(hash), Some(size), Some(path), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(ReleaseError::BadEntry(line.to_string()));
            };
            let size = size
                .parse()
                .map_err(|_| ReleaseError::BadEntry(line.to_string()))?;
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ReleaseError::BadEntry(line.to_string()));
            }
            sha256.push(IndexEntry {
                path: path.to_string(),
                sha256: hash.to_ascii_lowercase(),
                size,
            });
        }
        Ok(Release {
            suite: paragraph.get("Suite").map(str::to_string),
            codename: paragraph.get("Codename").map(str::to_string),
            date_text: date_text.to_string(),
            date,
            valid_until,
            acquire_by_hash: paragraph.get("Acquire-By-Hash") == Some("yes"),
            sha256,
        })
    }

    /// The entry for an index path such as `main/binary-amd64/Packages.xz`.
    pub fn entry(&self, path: &str) -> Option<&IndexEntry> {
        self.sha256.iter().find(|e| e.path == path)
    }

    /// `Date` as seconds since the Unix epoch: the lock's SOURCE_DATE_EPOCH candidate.
    pub fn date_epoch(&self) -> u64 {
        self.date
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// Release dates are RFC 2822 style, always UTC: `Sat, 21 Nov 2026 09:15:44 UTC`.
fn parse_date(field: &'static str, text: &str) -> Result<SystemTime, ReleaseError> {
    let bad = || ReleaseError::BadDate {
        field,
        text: text.to_string(),
    };
    let normalized = text
        .trim()
        .replace(" UTC", " GMT")
        .replace(" +0000", " GMT");
    if let Ok(t) = httpdate::parse_http_date(&normalized) {
        return Ok(t);
    }
    // Days without a leading zero (`Sat, 1 Nov 2026 ...`) are allowed in Release files.
    let parts: Vec<&str> = normalized.split_whitespace().collect();
    if parts.len() == 6 && parts[1].len() == 1 {
        let padded = format!(
            "{} 0{} {} {} {} {}",
            parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]
        );
        return httpdate::parse_http_date(&padded).map_err(|_| bad());
    }
    Err(bad())
}

/// A helper for tests and benches: a duration in whole days.
pub fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates_and_entries() {
        let text = "Origin: Debian\nSuite: stable\nCodename: trixie\nDate: Sat, 21 Nov 2026 09:15:44 UTC\nValid-Until: Sat, 28 Nov 2026 09:15:44 UTC\nAcquire-By-Hash: yes\nSHA256:\n 0123456789012345678901234567890123456789012345678901234567890123 10 main/binary-amd64/Packages.xz\n";
        let release = Release::parse(text).unwrap();
        assert_eq!(release.codename.as_deref(), Some("trixie"));
        assert_eq!(release.date_epoch(), 1_795_252_544);
        assert_eq!(release.valid_until.unwrap(), release.date + days(7));
        assert_eq!(
            release.entry("main/binary-amd64/Packages.xz").unwrap().size,
            10
        );
        assert!(release.acquire_by_hash);
    }

    #[test]
    fn bad_entries_and_dates_are_errors() {
        assert!(Release::parse("Date: yesterday\nSHA256:\n").is_err());
        assert!(
            Release::parse("Date: Sat, 21 Nov 2026 09:15:44 UTC\nSHA256:\n xyz 1 p\n").is_err()
        );
        assert!(Release::parse("SHA256:\n").is_err());
    }
}
