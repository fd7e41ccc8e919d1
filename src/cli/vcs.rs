//! What the recipes' version control says about a build, for the image's
//! `org.opencontainers.image.{revision,source,version}` annotations: the commit (with
//! `-dirty` when tracked files differ from it), the repository's address without
//! credentials, and `git describe --tags` where a tag exists. Read with `git` when the
//! recipes are in a work tree; nothing when they are not, or git is absent. A path on this
//! machine is never an image's source: it would tie the image's bytes to the host.

use carbon_store::oci::metadata::{REVISION, SOURCE, VERSION};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// `git -C dir ARGS`'s first line of output when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The annotations version control gives an image built from `recipes`.
pub fn annotations(recipes: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if git(recipes, &["rev-parse", "--is-inside-work-tree"]).as_deref() != Some("true") {
        return out;
    }
    let Some(commit) = git(recipes, &["rev-parse", "HEAD"]) else {
        return out; // a repository without a commit yet
    };
    let dirty = git(recipes, &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    let suffix = if dirty { "-dirty" } else { "" };
    out.insert(REVISION.to_string(), format!("{commit}{suffix}"));
    if let Some(source) = git(recipes, &["config", "--get", "remote.origin.url"])
        .as_deref()
        .and_then(public_address)
    {
        out.insert(SOURCE.to_string(), source);
    }
    if let Some(version) = git(recipes, &["describe", "--tags", "--dirty"]) {
        out.insert(VERSION.to_string(), version);
    }
    out
}

/// A remote's address as others can use it: credentials dropped; none for a local path.
fn public_address(remote: &str) -> Option<String> {
    if let Ok(mut url) = reqwest::Url::parse(remote) {
        if url.scheme() == "file" || !url.has_host() {
            return None;
        }
        url.set_username("").ok()?;
        url.set_password(None).ok()?;
        return Some(url.to_string());
    }
    // scp-like `user@host:path`: the user goes.
    let (host_part, path) = remote.split_once(':')?;
    let host = host_part.rsplit('@').next()?;
    (!host.is_empty() && !host.contains('/') && !path.is_empty()).then(|| format!("{host}:{path}"))
}

#[cfg(test)]
mod tests {
    use super::public_address;

    #[test]
    fn credentials_and_local_paths_never_reach_an_image() {
        assert_eq!(
            public_address("https://user:token@git.invalid/carbon.git").as_deref(),
            Some("https://git.invalid/carbon.git")
        );
        assert_eq!(
            public_address("git@git.invalid:team/carbon.git").as_deref(),
            Some("git.invalid:team/carbon.git")
        );
        assert_eq!(public_address("/home/me/carbon"), None);
        assert_eq!(public_address("file:///home/me/carbon"), None);
        assert_eq!(public_address("../carbon"), None);
    }
}
