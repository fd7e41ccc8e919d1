//! Debian version numbers and dpkg's ordering of them.
//!
//! The resolver must pick exactly the versions apt would, so comparison follows
//! dpkg's `verrevcmp` algorithm to the letter (`~` sorts before everything, even
//! the end of a part; letters before non-letters; digit runs compare numerically).

use std::cmp::Ordering;
use std::fmt;

/// A parsed `[epoch:]upstream[-revision]` version, borrowing from the index text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    text: String,
    epoch: u64,
    upstream_end: usize,
    upstream_start: usize,
}

/// A version string that dpkg would refuse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid Debian version {text:?}: {reason}")]
pub struct VersionError {
    pub text: String,
    pub reason: &'static str,
}

impl Version {
    /// Parses a version as dpkg does (lenient about characters, strict about structure).
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let err = |reason| VersionError {
            text: text.to_string(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(err("empty version"));
        }
        if trimmed.contains(char::is_whitespace) {
            return Err(err("version contains whitespace"));
        }
        let (epoch, upstream_start) = match trimmed.find(':') {
            Some(colon) => {
                let epoch_text = &trimmed[..colon];
                let epoch = epoch_text
                    .parse::<u64>()
                    .map_err(|_| err("epoch is not a number"))?;
                (epoch, colon + 1)
            }
            None => (0, 0),
        };
        let upstream_end = trimmed
            .rfind('-')
            .filter(|&d| d >= upstream_start)
            .unwrap_or(trimmed.len());
        if upstream_end == upstream_start {
            return Err(err("empty upstream version"));
        }
        if !trimmed.as_bytes()[upstream_start].is_ascii_digit() {
            // dpkg only warns about this; real archives contain none, but accept it as dpkg does.
        }
        Ok(Version {
            text: trimmed.to_string(),
            epoch,
            upstream_start,
            upstream_end,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn upstream(&self) -> &str {
        &self.text[self.upstream_start..self.upstream_end]
    }

    /// The Debian revision; empty when the version has none (dpkg treats that as "0"-equivalent).
    pub fn revision(&self) -> &str {
        if self.upstream_end < self.text.len() {
            &self.text[self.upstream_end + 1..]
        } else {
            ""
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream(), other.upstream()))
            .then_with(|| verrevcmp(self.revision(), other.revision()))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two version strings as `dpkg --compare-versions` does.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(Version::parse(a)?.cmp(&Version::parse(b)?))
}

/// dpkg's character weight: `~` lowest, then end of string / digits, then letters, then the rest.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(b'~') => -1,
        Some(c) => c as i32 + 256,
    }
}

/// dpkg's `verrevcmp`: alternate non-digit and digit runs.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    while i < a.len() || j < b.len() {
        let mut first_diff = 0i32;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied());
            let bc = order(b.get(j).copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == 0 {
                first_diff = a[i] as i32 - b[j] as i32;
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap()
    }

    #[test]
    fn tilde_sorts_before_everything() {
        assert_eq!(cmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(cmp("1.0~~", "1.0~"), Ordering::Less);
        assert_eq!(cmp("1.0~", "1.0"), Ordering::Less);
        assert_eq!(cmp("1.0", "1.0+b1"), Ordering::Less);
    }

    #[test]
    fn epoch_and_revision() {
        assert_eq!(cmp("1:0.1", "2.0"), Ordering::Greater);
        assert_eq!(cmp("2.41-12", "2.41-9"), Ordering::Greater);
        assert_eq!(cmp("1.0-1", "1.0"), Ordering::Greater);
        assert_eq!(cmp("1.0", "1.0-0"), Ordering::Equal);
        assert_eq!(cmp("0:1.0", "1.0"), Ordering::Equal);
        assert_eq!(
            cmp("1.0-1-2", "1.0-1-10"),
            Ordering::Less,
            "only the last hyphen splits"
        );
    }

    #[test]
    fn letters_before_non_letters_and_numeric_runs() {
        assert_eq!(cmp("1.0a", "1.0+"), Ordering::Less);
        assert_eq!(cmp("1.10", "1.9"), Ordering::Greater);
        assert_eq!(cmp("1.001", "1.1"), Ordering::Equal);
        assert_eq!(cmp("1.0.0", "1.0"), Ordering::Greater);
    }

    #[test]
    fn parse_rejects_malformed() {
        assert!(Version::parse("").is_err());
        assert!(Version::parse("a:1").is_err());
        assert!(Version::parse("1 2").is_err());
        assert!(Version::parse("1:-1").is_err());
        let v = Version::parse("3:4.5-6.7-8").unwrap();
        assert_eq!((v.epoch(), v.upstream(), v.revision()), (3, "4.5-6.7", "8"));
    }
}
