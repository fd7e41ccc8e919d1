//! Image references as users type them: `HOST[:PORT]/REPOSITORY[:TAG][@DIGEST]`.
//!
//! Why a host is required: carbon-store names no registry of its own (mirrors and
//! registries come from the user), so a reference without one is refused instead of being
//! sent to some default registry. The grammar itself is oci-spec's (the distribution
//! project's reference regular expression).

use oci_spec::distribution::Reference;

/// A parsed reference to a repository in a registry, at a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// `host` or `host:port`.
    pub registry: String,
    /// `team/image`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RefError {
    #[error("{input:?} names no registry: write it as HOST[:PORT]/REPOSITORY[:TAG]")]
    NoRegistry { input: String },
    #[error("{input:?} is not an image reference: {reason}")]
    Invalid { input: String, reason: String },
}

/// The registry host of `input`: its first component when docker would take it for one
/// (it has a dot or a port, or is `localhost`, and a path follows). The grammar alone would
/// also take `team` in `team/x` for a host.
fn registry_host(input: &str) -> Option<&str> {
    let (first, _) = input.split_once('/')?;
    (first.contains(['.', ':']) || first == "localhost").then_some(first)
}

/// Whether `input` names a tag itself (with a digest and no tag, the grammar supplies none).
fn has_explicit_tag(input: &str) -> bool {
    input
        .rsplit('/')
        .next()
        .is_some_and(|last| last.split('@').next().unwrap_or("").contains(':'))
}

/// `NAME[:TAG]` as `docker tag` takes it, as `NAME:TAG` (`latest` when no tag is given),
/// or why `docker load` would refuse it (after the whole build): the distribution
/// project's grammar — a lowercase repository path, a tag of word characters, dots and
/// dashes — and no digest. Unlike an [`ImageRef`], it needs no registry: it names the
/// image a docker archive is loaded as.
pub fn repo_tag(input: &str) -> Result<String, String> {
    let parsed: Reference = input
        .parse()
        .map_err(|e: oci_spec::distribution::ParseError| format!("{input:?}: {e}"))?;
    if parsed.digest().is_some() {
        return Err(format!(
            "{input:?}: a tag names an image to build, not a digest"
        ));
    }
    // The grammar lets any first component pass as a host; docker wants everything that
    // is not a host lowercase.
    let path = match registry_host(input) {
        Some(host) => &input[host.len() + 1..],
        None => input,
    };
    let repository = path.split(':').next().unwrap_or_default();
    if repository.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("{input:?}: the repository name must be lowercase"));
    }
    if has_explicit_tag(input) {
        Ok(input.to_string())
    } else {
        Ok(format!("{input}:latest"))
    }
}

impl ImageRef {
    pub fn parse(input: &str) -> Result<ImageRef, RefError> {
        let Some(first) = registry_host(input) else {
            return Err(RefError::NoRegistry {
                input: input.into(),
            });
        };
        let parsed: Reference =
            input
                .parse()
                .map_err(|e: oci_spec::distribution::ParseError| RefError::Invalid {
                    input: input.into(),
                    reason: e.to_string(),
                })?;
        let explicit_tag = has_explicit_tag(input);
        Ok(ImageRef {
            registry: first.to_string(),
            repository: parsed.repository().to_string(),
            tag: if parsed.digest().is_some() && !explicit_tag {
                None
            } else {
                parsed.tag().map(str::to_string)
            },
            digest: parsed.digest().map(str::to_string),
        })
    }

    /// What goes after `/manifests/`: the digest if there is one, else the tag.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The same repository at another reference (a digest or a tag).
    pub fn at(&self, reference: &str) -> ImageRef {
        let mut r = self.clone();
        if reference.starts_with("sha256:") {
            r.digest = Some(reference.into());
        } else {
            r.tag = Some(reference.into());
            r.digest = None;
        }
        r
    }

    /// Whether the registry is this machine (plain HTTP is allowed there only).
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => self.registry.as_str(),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_tags_follow_dockers_grammar() {
        assert_eq!(repo_tag("carbon/base:v1").unwrap(), "carbon/base:v1");
        assert_eq!(repo_tag("notag").unwrap(), "notag:latest");
        assert_eq!(
            repo_tag("127.0.0.1:5000/team/base").unwrap(),
            "127.0.0.1:5000/team/base:latest"
        );
        for bad in [
            "UPPER/x:1",
            "carbon/base:bad tag",
            "carbon//base:1",
            "x:-1",
            "x@sha256:00",
        ] {
            assert!(repo_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_port_repository_and_tag() {
        let r = ImageRef::parse("127.0.0.1:5000/team/minimal:v1").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/minimal");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.reference(), "v1");
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/minimal:v1");
    }

    #[test]
    fn default_tag_and_digest_references() {
        let r = ImageRef::parse("10.1.2.3:5000/minimal").unwrap();
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert!(!r.is_loopback());
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("localhost:5000/minimal@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.reference(), d);
        assert!(r.is_loopback());
    }

    #[test]
    fn refuses_references_without_a_registry_or_with_bad_names() {
        for input in ["minimal", "minimal:latest", "team/minimal:v1"] {
            assert!(matches!(
                ImageRef::parse(input),
                Err(RefError::NoRegistry { .. })
            ));
        }
        for input in [
            "127.0.0.1:5000/UPPER:v1",
            "127.0.0.1:5000/x:bad tag",
            "127.0.0.1:5000/",
        ] {
            assert!(
                matches!(ImageRef::parse(input), Err(RefError::Invalid { .. })),
                "{input}"
            );
        }
    }
}
