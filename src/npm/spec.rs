//! npm package names and the specs that name versions of them. A name becomes a directory
//! under `node_modules`, so it is checked here against npm's own rules (and more strictly:
//! no name that could climb out of its directory) before anything uses it.

use nodejs_semver::Range;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("{0:?} is not a valid npm package name")]
    Name(String),
    #[error(
        "{name}: {spec:?} is not a version range, a dist-tag or an `npm:` alias of the registry (git, file and URL specs are not supported)"
    )]
    Unsupported { name: String, spec: String },
}

/// Which versions of a package a spec allows.
#[derive(Clone, Debug)]
pub enum Wanted {
    Range(Range),
    Tag(String),
}

/// A dependency on a package: the name it is installed under, the registry package it
/// really is (differs for `npm:` aliases) and the versions allowed.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub package: String,
    pub wanted: Wanted,
    /// The spec as written, for messages.
    pub raw: String,
}

/// Checks an npm package name (see [`crate::name::npm_package`]).
pub fn check_name(name: &str) -> Result<(), SpecError> {
    crate::name::npm_package("npm package name", name)
        .map(|_| ())
        .map_err(|_| SpecError::Name(name.to_string()))
}

/// What a version spec (`^1.2`, `latest`, `npm:other@^2`) allows, for a dependency `name`.
pub fn parse_dependency(name: &str, spec: &str) -> Result<Spec, SpecError> {
    check_name(name)?;
    let unsupported = || SpecError::Unsupported {
        name: name.to_string(),
        spec: spec.to_string(),
    };
    let (package, version) = match spec.strip_prefix("npm:") {
        Some(alias) => {
            let (package, version) = split_at_version(alias);
            check_name(package).map_err(|_| unsupported())?;
            (package.to_string(), version.unwrap_or(""))
        }
        None => (name.to_string(), spec),
    };
    Ok(Spec {
        name: name.to_string(),
        package,
        wanted: parse_wanted(version).ok_or_else(unsupported)?,
        raw: spec.to_string(),
    })
}

/// A recipe's request: `name`, `name@range`, `@scope/name@tag`.
pub fn parse_request(request: &str) -> Result<Spec, SpecError> {
    let (name, version) = split_at_version(request);
    parse_dependency(name, version.unwrap_or(""))
}

/// `name@version` → (`name`, `version`); the `@` of a scope is not a separator.
fn split_at_version(s: &str) -> (&str, Option<&str>) {
    let search_from = usize::from(s.starts_with('@'));
    match s[search_from..].find('@') {
        Some(i) => (&s[..search_from + i], Some(&s[search_from + i + 1..])),
        None => (s, None),
    }
}

fn parse_wanted(version: &str) -> Option<Wanted> {
    let version = version.trim();
    if version.is_empty() || version == "latest" {
        return Some(Wanted::Tag("latest".into()));
    }
    if let Ok(range) = Range::parse(version) {
        return Some(Wanted::Range(range));
    }
    // A dist-tag: what `npm dist-tag` accepts (no range characters, not a URL or path).
    let tag_ok = version
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && !version.starts_with(['.', '-']);
    tag_ok.then(|| Wanted::Tag(version.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_ranges_tags_and_aliases() {
        let s = parse_request("@google/gemini-cli@next").unwrap();
        assert_eq!(s.name, "@google/gemini-cli");
        assert!(matches!(s.wanted, Wanted::Tag(ref t) if t == "next"));
        let s = parse_request("typescript").unwrap();
        assert!(matches!(s.wanted, Wanted::Tag(ref t) if t == "latest"));
        let s = parse_request("npm@^11.4").unwrap();
        assert!(matches!(s.wanted, Wanted::Range(_)));
        let s = parse_dependency(
            "@openai/codex-linux-x64",
            "npm:@openai/codex@0.1.0-linux-x64",
        )
        .unwrap();
        assert_eq!(s.package, "@openai/codex");
        assert!(matches!(s.wanted, Wanted::Range(_)));
    }

    #[test]
    fn names_that_could_leave_node_modules_are_refused() {
        for bad in [
            "../x", "@a/../b", "a/b", "@a", ".bin", "_x", "a b", "@scope/", "",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        for good in ["a", "@scope/name", "lodash.merge", "Upper-Old_name~"] {
            check_name(good).unwrap();
        }
        assert!(parse_dependency("x", "git+ssh://host/repo.git").is_err());
        assert!(parse_dependency("x", "file:../x").is_err());
    }
}
