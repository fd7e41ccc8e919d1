//! Names that come from outside — bundle manifests, lockfiles, package indexes, store refs —
//! checked against one allow-list before any of them becomes part of a path.
//!
//! Why one module: a name is dangerous only where it meets the file system, and those
//! places are many (the store, its refs, the pool paths of a mirror, wheel and sdist file
//! names). Each of them calls the check for its kind of name here, so "what may a name
//! hold" is answered once. A hostile name is refused, never cleaned up into a legal one:
//! a name that needed cleaning came from someone who meant something by it.

use std::fmt;

/// The longest file name Linux file systems take.
const MAX_COMPONENT: usize = 255;
/// The longest relative path accepted (PATH_MAX less room for the store's root).
const MAX_PATH: usize = 3072;

/// Why a name was refused; `what` says which kind of name it was meant to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {shown} is not allowed: {reason}")]
pub struct NameError {
    pub what: &'static str,
    /// The name, quoted and cut to a readable length.
    pub shown: String,
    pub reason: Reason,
}

/// The rule a refused name broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Empty,
    TooLong(usize),
    Character(char),
    DotComponent,
    Absolute,
    NotHex,
    /// A reference to something that is not there (a bundle ref to an index it lacks).
    Dangling,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Empty => write!(f, "it is empty (or has an empty component)"),
            Reason::TooLong(max) => write!(f, "it is longer than {max} bytes"),
            Reason::Character(c) => write!(f, "it contains {c:?}"),
            Reason::DotComponent => write!(f, "it has a `.` or `..` component"),
            Reason::Absolute => write!(f, "it is an absolute path"),
            Reason::NotHex => write!(f, "it is not 64 lowercase hex digits"),
            Reason::Dangling => write!(f, "it does not point at anything the input carries"),
        }
    }
}

fn refuse(what: &'static str, name: &str, reason: Reason) -> NameError {
    let mut shown: String = name.chars().take(120).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    NameError {
        what,
        shown: format!("{shown:?}"),
        reason,
    }
}

/// Characters a file name from outside may hold: what Debian pool files (`+ . ~ :`),
/// wheel and sdist files (`! + _ -`) and store names (`= ?`) use, and nothing that a shell,
/// a URL or a path gives meaning to beyond that.
fn file_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+-._~:=@!,".contains(c)
}

/// One path component: a file name with no `/`, not `.` or `..`, at most 255 bytes.
pub fn file_name<'a>(what: &'static str, name: &'a str) -> Result<&'a str, NameError> {
    if name.is_empty() {
        return Err(refuse(what, name, Reason::Empty));
    }
    if name.len() > MAX_COMPONENT {
        return Err(refuse(what, name, Reason::TooLong(MAX_COMPONENT)));
    }
    if let Some(c) = name.chars().find(|c| !file_char(*c)) {
        return Err(refuse(what, name, Reason::Character(c)));
    }
    if name == "." || name == ".." {
        return Err(refuse(what, name, Reason::DotComponent));
    }
    Ok(name)
}

/// An npm package name: `name` or `@scope/name`, each part letters, digits, `-`, `.`,
/// `_` or `~`, not starting with `.` or `_`, at most 214 bytes in all (npm's own rules, of
/// which the ones that matter here: a name is a directory, or two, under `node_modules`).
pub fn npm_package<'a>(what: &'static str, name: &'a str) -> Result<&'a str, NameError> {
    if name.len() > 214 {
        return Err(refuse(what, name, Reason::TooLong(214)));
    }
    let parts: Vec<&str> = match name.strip_prefix('@') {
        Some(scoped) => match scoped.split_once('/') {
            Some((scope, rest)) => vec![scope, rest],
            None => return Err(refuse(what, name, Reason::Character('@'))),
        },
        None => vec![name],
    };
    for part in parts {
        if part.is_empty() {
            return Err(refuse(what, name, Reason::Empty));
        }
        if part.starts_with('.') || part.starts_with('_') {
            return Err(refuse(what, name, Reason::DotComponent));
        }
        if let Some(c) = part
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
        {
            return Err(refuse(what, name, Reason::Character(c)));
        }
    }
    Ok(name)
}

/// A relative path of file names joined by `/` (a mirror's pool path): no leading `/`, no
/// empty, `.` or `..` component.
pub fn relative_path<'a>(what: &'static str, path: &'a str) -> Result<&'a str, NameError> {
    if path.starts_with('/') {
        return Err(refuse(what, path, Reason::Absolute));
    }
    if path.len() > MAX_PATH {
        return Err(refuse(what, path, Reason::TooLong(MAX_PATH)));
    }
    for component in path.split('/') {
        file_name(what, component).map_err(|e| NameError {
            shown: refuse(what, path, e.reason).shown,
            ..e
        })?;
    }
    Ok(path)
}

/// A store ref: ASCII letters, digits, `.`, `_` and `-`, starting with a letter or digit,
/// at most 128 bytes.
pub fn ref_name<'a>(what: &'static str, name: &'a str) -> Result<&'a str, NameError> {
    restricted(what, name, |c| {
        c.is_ascii_alphanumeric() || "._-".contains(c)
    })
}

/// An image name (a recipe's file stem, an output directory): as a ref, but lowercase.
pub fn image_name<'a>(what: &'static str, name: &'a str) -> Result<&'a str, NameError> {
    restricted(what, name, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c)
    })
}

fn restricted<'a>(
    what: &'static str,
    name: &'a str,
    allowed: impl Fn(char) -> bool,
) -> Result<&'a str, NameError> {
    if name.is_empty() {
        return Err(refuse(what, name, Reason::Empty));
    }
    if name.len() > 128 {
        return Err(refuse(what, name, Reason::TooLong(128)));
    }
    if let Some(c) = name.chars().find(|c| !allowed(*c)) {
        return Err(refuse(what, name, Reason::Character(c)));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(refuse(
            what,
            name,
            Reason::Character(name.chars().next().unwrap_or('.')),
        ));
    }
    Ok(name)
}

/// A sha256 in lowercase hex, as the store names objects by it.
pub fn sha256_hex<'a>(what: &'static str, hex: &'a str) -> Result<&'a str, NameError> {
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(refuse(what, hex, Reason::NotHex));
    }
    Ok(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_file_names_pass() {
        for name in [
            "libc6_2.41-12_amd64.deb",
            "gcc-14_14.2.0-19~exp1_arm64.deb",
            "numpy-2.3.1-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
            "foo-1!2.0+local.1-py3-none-any.whl",
            "trixie-security_InRelease",
            "epoch_1:2.0_all.deb",
        ] {
            assert_eq!(file_name("file", name), Ok(name));
        }
        assert!(relative_path("path", "pool/main/g/gcc-14/gcc-14_14.2.0_amd64.deb").is_ok());
    }

    #[test]
    fn hostile_names_are_refused_not_cleaned() {
        for (name, reason) in [
            ("", Reason::Empty),
            ("..", Reason::DotComponent),
            (".", Reason::DotComponent),
            ("a/b", Reason::Character('/')),
            ("a\0b", Reason::Character('\0')),
            ("a b", Reason::Character(' ')),
            ("a\\b", Reason::Character('\\')),
            ("é", Reason::Character('é')),
        ] {
            assert_eq!(
                file_name("file", name).unwrap_err().reason,
                reason,
                "{name:?}"
            );
        }
        assert_eq!(
            file_name("file", &"a".repeat(256)).unwrap_err().reason,
            Reason::TooLong(255)
        );
        for (path, reason) in [
            ("/etc/passwd", Reason::Absolute),
            ("pool/../../x", Reason::DotComponent),
            ("pool//x", Reason::Empty),
            ("pool/x/", Reason::Empty),
            ("./x", Reason::DotComponent),
        ] {
            assert_eq!(
                relative_path("path", path).unwrap_err().reason,
                reason,
                "{path:?}"
            );
        }
        for name in ["../x", "/abs", "-x", "a/b", "", ".."] {
            assert!(ref_name("ref", name).is_err(), "{name:?}");
        }
        assert!(ref_name("ref", "debian-trixie-security-InRelease").is_ok());
        assert!(image_name("image", "Base").is_err());
        assert!(image_name("image", "compute-macos").is_ok());
        assert!(sha256_hex("sha256", &"A".repeat(64)).is_err());
        assert!(sha256_hex("sha256", &"a".repeat(63)).is_err());
        assert!(sha256_hex("sha256", &"a".repeat(64)).is_ok());
    }

    #[test]
    fn errors_name_the_kind_and_quote_the_name() {
        let e = relative_path("bundle ref", "../../etc/cron.d/x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bundle ref \"../../etc/cron.d/x\" is not allowed: it has a `.` or `..` component"
        );
    }
}
