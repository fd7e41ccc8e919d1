//! Which archive the apt inside an image reads. Realize writes the image's
//! `/etc/apt/sources.list.d/debian.sources` from configuration, never from the repository
//! (no host name lives there): each Debian mirror a lock reads (`debian`,
//! `debian-security`) is looked up as `image-NAME` first (`none` leaves it out), and
//! otherwise is the mirror the build itself uses. Only http(s) URLs without credentials go
//! into an image: a `file://` tree is not there inside a container, and a password in a
//! layer is readable by everyone who pulls the image.

use super::mirrors::{MirrorError, MirrorSettings};
use std::collections::{BTreeMap, BTreeSet};

/// The value of `image-NAME` that writes no sources for NAME.
pub const NONE: &str = "none";

/// Mirror name → the URLs apt in the image reads, for the mirrors that go into images.
pub type ImageMirrors = BTreeMap<String, Vec<String>>;

#[derive(Debug, thiserror::Error)]
pub enum ImageMirrorError {
    #[error("mirror `{name}` from {origin}: {url:?} cannot go into an image: {reason}")]
    Unusable {
        name: String,
        origin: String,
        url: String,
        reason: &'static str,
    },
    #[error(transparent)]
    Mirror(#[from] MirrorError),
}

/// The setting that names the mirror images read instead of the build's `name`.
pub fn setting_name(name: &str) -> String {
    format!("image-{name}")
}

/// `url` as an error may print it: without its password.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// Why `url` cannot be written into an image, if it cannot.
fn unusable(url: &str) -> Option<&'static str> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Some("it is not a URL");
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return Some("apt in a container reaches only http(s) mirrors, not a local tree");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Some(
            "it carries credentials, which everyone who pulls the image could read; give the mirror without them and put them in /etc/apt/auth.conf.d of a derived image",
        );
    }
    if parsed.query().is_some() || parsed.fragment().is_some() || url.contains(char::is_whitespace)
    {
        return Some("apt sources take a plain URL, without query, fragment or spaces");
    }
    None
}

/// The image mirrors for the Debian mirrors `names` a lock reads, and a note for each one
/// left out by default (its build mirror is a local tree or carries credentials, or none
/// is configured). An `image-NAME` setting that cannot go into an image is an error.
pub fn resolve(
    settings: &MirrorSettings,
    names: &BTreeSet<String>,
) -> Result<(ImageMirrors, Vec<String>), ImageMirrorError> {
    let mut mirrors = ImageMirrors::new();
    let mut notes = Vec::new();
    for name in names {
        let setting = setting_name(name);
        if let Some((urls, origin)) = settings.lookup(&setting) {
            if urls.len() == 1 && urls[0] == NONE {
                continue;
            }
            for url in &urls {
                if let Some(reason) = unusable(url) {
                    return Err(ImageMirrorError::Unusable {
                        name: setting,
                        origin,
                        url: redacted(url),
                        reason,
                    });
                }
            }
            mirrors.insert(name.clone(), urls);
            continue;
        }
        let build = match settings.mirror(name) {
            Ok(build) => build,
            Err(MirrorError::NotConfigured { .. }) => {
                notes.push(format!(
                    "images get no apt sources for `{name}`: no mirror is configured for it (set `{setting}`, docs/mirrors.md)"
                ));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let usable: Vec<String> = build
            .urls
            .into_iter()
            .filter(|url| unusable(url).is_none())
            .collect();
        if usable.is_empty() {
            notes.push(format!(
                "images get no apt sources for `{name}`: its mirror (from {}) is a local tree or carries credentials (set `{setting}` to the URL containers should use, docs/mirrors.md)",
                build.origin
            ));
            continue;
        }
        mirrors.insert(name.clone(), usable);
    }
    Ok((mirrors, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(env: &[(&str, &str)]) -> MirrorSettings {
        let apt = tempfile::tempdir().unwrap();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        MirrorSettings::load(&[], env, None, apt.path()).unwrap()
    }

    fn names() -> BTreeSet<String> {
        ["debian".to_string(), "debian-security".to_string()].into()
    }

    #[test]
    fn the_build_mirror_is_the_default_and_an_image_setting_wins() {
        let s = settings(&[
            (
                "CARBON_MIRROR_DEBIAN",
                "http://build.example/debian file:///srv/debian",
            ),
            (
                "CARBON_MIRROR_DEBIAN_SECURITY",
                "http://build.example/security",
            ),
            (
                "CARBON_MIRROR_IMAGE_DEBIAN_SECURITY",
                "https://images.example/security",
            ),
        ]);
        let (mirrors, notes) = resolve(&s, &names()).unwrap();
        assert_eq!(mirrors["debian"], ["http://build.example/debian"]);
        assert_eq!(
            mirrors["debian-security"],
            ["https://images.example/security"]
        );
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn none_a_local_tree_and_credentials_leave_a_mirror_out() {
        let s = settings(&[
            ("CARBON_MIRROR_DEBIAN", "file:///srv/debian"),
            (
                "CARBON_MIRROR_DEBIAN_SECURITY",
                "http://build.example/security",
            ),
            ("CARBON_MIRROR_IMAGE_DEBIAN_SECURITY", "none"),
        ]);
        let (mirrors, notes) = resolve(&s, &names()).unwrap();
        assert!(mirrors.is_empty(), "{mirrors:?}");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("image-debian"), "{notes:?}");

        let s = settings(&[(
            "CARBON_MIRROR_DEBIAN",
            "http://user:secret@build.example/debian",
        )]);
        let (mirrors, _) = resolve(&s, &["debian".to_string()].into()).unwrap();
        assert!(
            mirrors.is_empty(),
            "a password went into the image: {mirrors:?}"
        );
    }

    #[test]
    fn an_image_setting_that_cannot_work_in_a_container_is_refused() {
        for bad in [
            "file:///srv/debian",
            "http://user:secret@images.example/debian",
            "ftp://x/debian",
        ] {
            let s = settings(&[("CARBON_MIRROR_IMAGE_DEBIAN", bad)]);
            let err = resolve(&s, &["debian".to_string()].into()).unwrap_err();
            let said = err.to_string();
            assert!(
                said.contains("image-debian") && said.contains("cannot go into an image"),
                "{said}"
            );
            assert!(!said.contains("secret"), "a password in an error: {said}");
        }
    }
}
