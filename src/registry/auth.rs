//! Registry credentials where users already keep them, and the challenges registries send.
//!
//! Why here: `docker login` and `podman login` have already stored the user's credentials
//! (inline, in a credential store or per-registry helpers); asking again would be worse and
//! storing them ourselves would be a risk. Search order: `--username` with
//! `--password-stdin`, `REGISTRY_AUTH_FILE`, podman's `$XDG_RUNTIME_DIR/containers/auth.json`,
//! then docker's `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. The files and the
//! `docker-credential-*` protocol are read by the `docker_credential` crate. A credential
//! is never printed: its `Debug` hides the secret.

use std::path::PathBuf;

/// What a user authenticates with.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: String,
    },
    /// A refresh token from `docker login` to a token server (`identitytoken`).
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <hidden>)"),
            Credential::IdentityToken(_) => write!(f, "IdentityToken(<hidden>)"),
        }
    }
}

/// Where a credential came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    CommandLine,
    File(PathBuf),
}

impl std::fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialSource::CommandLine => write!(f, "--username"),
            CredentialSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading credentials for {registry} from {file}: {reason}")]
    Config {
        registry: String,
        file: PathBuf,
        reason: String,
    },
}

/// The auth files to search, in order.
fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(f));
    }
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(run).join("containers/auth.json"));
    }
    let docker_dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
    if let Some(dir) = docker_dir {
        files.push(dir.join("config.json"));
    }
    files
}

/// The first credential configured for `registry` (`host[:port]`), if any.
pub fn find(registry: &str) -> Result<Option<(Credential, CredentialSource)>, AuthError> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    for file in auth_files() {
        let Ok(f) = std::fs::File::open(&file) else {
            continue;
        };
        let found =
            docker_credential::get_credential_from_reader(std::io::BufReader::new(f), registry);
        let credential = match found {
            Ok(DockerCredential::UsernamePassword(username, password)) => {
                Credential::Basic { username, password }
            }
            Ok(DockerCredential::IdentityToken(token)) => Credential::IdentityToken(token),
            Err(E::NoCredentialConfigured) => continue,
            Err(e) => {
                // A helper's own output is not repeated: it may hold more than an error.
                let reason = match e {
                    E::HelperFailure { helper, .. } => format!("{helper} failed"),
                    other => other.to_string(),
                };
                return Err(AuthError::Config {
                    registry: registry.into(),
                    file,
                    reason,
                });
            }
        };
        return Ok(Some((credential, CredentialSource::File(file))));
    }
    Ok(None)
}

/// How a registry asks to be authenticated (`WWW-Authenticate`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// A token from `realm`, for `service` and `scope`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

/// The first challenge of a scheme carbon-store speaks.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let challenges = http_auth::parse_challenges(header).ok()?;
    challenges.iter().find_map(|c| {
        let param = |name: &str| {
            c.params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_unescaped())
        };
        if c.scheme.eq_ignore_ascii_case("bearer") {
            Some(Challenge::Bearer {
                realm: param("realm")?,
                service: param("service"),
                scope: param("scope"),
            })
        } else if c.scheme.eq_ignore_ascii_case("basic") {
            Some(Challenge::Basic)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_challenges() {
        let h = r#"Bearer realm="https://auth.test/token",service="registry.test",scope="repository:team/app:pull,push""#;
        assert_eq!(
            parse_challenge(h),
            Some(Challenge::Bearer {
                realm: "https://auth.test/token".into(),
                service: Some("registry.test".into()),
                scope: Some("repository:team/app:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let c = Credential::Basic {
            username: "ci".into(),
            password: "s3cret-value".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(!format!("{:?}", Credential::IdentityToken("tok-123".into())).contains("tok-123"));
    }
}
