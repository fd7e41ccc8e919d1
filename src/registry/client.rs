//! A small client of the OCI distribution API over the project's HTTP stack (reqwest,
//! blocking, rustls with the system's roots).
//!
//! Why not a registry crate: the maintained ones (`oci-client`) are async and upload blobs
//! from memory; layers here are files of up to gigabytes that must stream from the store,
//! in chunks that survive an interruption (docs/architecture.md, "Registry client"). Each
//! request is retried on connection errors, 5xx and 429 with backoff; a 401 is answered
//! once with the registry's challenge (a Bearer token for the scopes asked, or Basic).

use super::auth::{Challenge, Credential, CredentialSource, parse_challenge};
use super::reference::ImageRef;
use reqwest::blocking::{Body, Client, RequestBuilder, Response};
use reqwest::{Method, StatusCode, Url};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Reference(#[from] super::reference::RefError),
    #[error(transparent)]
    Auth(#[from] super::auth::AuthError),
    #[error("{registry}: {what}: {reason}")]
    Connect {
        registry: String,
        what: String,
        reason: String,
    },
    #[error("{registry} refused the credentials from {source_name}")]
    BadCredentials {
        registry: String,
        source_name: String,
    },
    #[error("{registry} asks for credentials and none are configured for it")]
    NoCredentials { registry: String },
    #[error("{registry}: access to {repository} denied ({what})")]
    Denied {
        registry: String,
        repository: String,
        what: String,
    },
    #[error("{registry}: {what}: HTTP {status}{detail}")]
    Status {
        registry: String,
        what: String,
        status: u16,
        detail: String,
    },
    #[error("{what}: expected {expected}, the registry gave {got}")]
    DigestMismatch {
        what: String,
        expected: String,
        got: String,
    },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the OCI layout {}: {reason}", path.display())]
    Layout { path: PathBuf, reason: String },
    #[error("the CA file {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
}

impl RegistryError {
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> RegistryError {
        RegistryError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How to reach a registry.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// Plain HTTP; loopback registries get it without asking.
    pub plain_http: bool,
    /// Extra CA certificates (PEM) trusted beside the system's.
    pub ca_file: Option<PathBuf>,
    /// A credential given on the command line, before any auth file.
    pub credential: Option<Credential>,
    /// Backoff before the first retry (doubles each time).
    pub backoff: Option<Duration>,
}

/// One registry, as one user: its base URL, the HTTP client and the tokens obtained.
pub struct Registry {
    pub name: String,
    base: Url,
    client: Client,
    credential: Option<(Credential, CredentialSource)>,
    /// Authorization header values by scope set (`Basic …` is stored under "").
    tokens: Mutex<HashMap<String, String>>,
    attempts: u32,
    backoff: Duration,
}

/// What a request needs of a token: `repository:NAME:pull[,push]`, one or more.
pub type Scopes = Vec<String>;

pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// A request body that can be made again for each attempt: a span of a file, or bytes.
#[derive(Clone)]
pub enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
    },
}

impl Payload<'_> {
    fn body(&self) -> Result<Body, RegistryError> {
        Ok(match self {
            Payload::Empty => Body::from(Vec::new()),
            Payload::Bytes(b) => Body::from(b.to_vec()),
            Payload::File { path, offset, len } => {
                let mut f =
                    std::fs::File::open(path).map_err(|e| RegistryError::io("opening", path, e))?;
                f.seek(SeekFrom::Start(*offset))
                    .map_err(|e| RegistryError::io("reading", path, e))?;
                Body::sized(f.take(*len), *len)
            }
        })
    }

    fn len(&self) -> u64 {
        match self {
            Payload::Empty => 0,
            Payload::Bytes(b) => b.len() as u64,
            Payload::File { len, .. } => *len,
        }
    }
}

fn is_transient(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

impl Registry {
    /// Connects to `reference`'s registry (no request is made yet).
    pub fn new(reference: &ImageRef, opts: &ConnectOptions) -> Result<Registry, RegistryError> {
        let scheme = if opts.plain_http { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{}/", reference.registry)).map_err(|e| {
            RegistryError::Connect {
                registry: reference.registry.clone(),
                what: "its address".into(),
                reason: e.to_string(),
            }
        })?;
        let mut builder = Client::builder()
            .user_agent(concat!("carbon-store/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(600))
            .pool_max_idle_per_host(16);
        if let Some(path) = &opts.ca_file {
            let pem = std::fs::read(path).map_err(|e| RegistryError::CaFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| RegistryError::CaFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(RegistryError::CaFile {
                    path: path.clone(),
                    reason: "no PEM certificate in it".into(),
                });
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(|e| RegistryError::CaFile {
            path: opts.ca_file.clone().unwrap_or_default(),
            reason: e.to_string(),
        })?;
        let credential = match &opts.credential {
            Some(c) => Some((c.clone(), CredentialSource::CommandLine)),
            None => super::auth::find(&reference.registry)?,
        };
        let mut registry = Registry {
            name: reference.registry.clone(),
            base,
            client,
            credential,
            tokens: Mutex::new(HashMap::new()),
            attempts: 4,
            backoff: opts.backoff.unwrap_or(Duration::from_millis(500)),
        };
        // A registry on this machine may speak plain HTTP (as Docker allows): HTTPS is
        // tried first. Anywhere else plain HTTP needs --plain-http.
        // A registry that answers neither way keeps HTTPS, so that its TLS error is the
        // one reported.
        if !opts.plain_http && reference.is_loopback() {
            let https = registry.client.get(registry.url("")).send();
            if https.is_err() {
                let mut plain = registry.base.clone();
                plain.set_scheme("http").expect("http is a valid scheme");
                let answers = registry
                    .client
                    .get(plain.join("v2/").expect("a valid path"))
                    .send()
                    .is_ok_and(|r| matches!(r.status(), StatusCode::OK | StatusCode::UNAUTHORIZED));
                if answers {
                    registry.base = plain;
                }
            }
        }
        Ok(registry)
    }

    /// `/v2/<path>` on this registry.
    pub fn url(&self, path: &str) -> Url {
        self.base
            .join(&format!("v2/{path}"))
            .expect("registry paths are valid URLs")
    }

    /// A `Location` header resolved against the registry (it may be relative).
    pub fn location(&self, response: &Response, what: &str) -> Result<Url, RegistryError> {
        let value = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.status_error(what, response.status(), "no Location header"))?;
        self.base
            .join(value)
            .map_err(|e| self.status_error(what, response.status(), &e.to_string()))
    }

    pub fn status_error(&self, what: &str, status: StatusCode, detail: &str) -> RegistryError {
        RegistryError::Status {
            registry: self.name.clone(),
            what: what.into(),
            status: status.as_u16(),
            detail: if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            },
        }
    }

    /// Sends a request, retrying transient failures and answering one auth challenge.
    /// `what` names the action in errors; 401 and 403 become typed errors.
    pub fn send(
        &self,
        method: Method,
        url: Url,
        headers: &[(&str, String)],
        payload: Payload,
        scopes: &[String],
        what: &str,
    ) -> Result<Response, RegistryError> {
        let scope_key = scopes.join(" ");
        let mut answered = false;
        let mut attempt = 0;
        loop {
            let mut request: RequestBuilder = self.client.request(method.clone(), url.clone());
            for (k, v) in headers {
                request = request.header(*k, v);
            }
            // A sized body (empty included) makes the client send its Content-Length.
            if payload.len() > 0 || matches!(method, Method::PUT | Method::PATCH | Method::POST) {
                request = request.body(payload.body()?);
            }
            if let Some(value) = self.authorization(&scope_key) {
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            let outcome = request.send();
            attempt += 1;
            let response = match outcome {
                Ok(r) => r,
                Err(_) if attempt < self.attempts => {
                    self.pause(attempt);
                    continue;
                }
                Err(e) => {
                    return Err(RegistryError::Connect {
                        registry: self.name.clone(),
                        what: what.into(),
                        reason: error_chain(&e),
                    });
                }
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !answered {
                answered = true;
                let challenge = response
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                if let Some(challenge) = challenge {
                    self.authenticate(&challenge, scopes, &scope_key)?;
                    continue;
                }
            }
            if status == StatusCode::UNAUTHORIZED {
                return Err(self.unauthorized());
            }
            if status == StatusCode::FORBIDDEN {
                return Err(RegistryError::Denied {
                    registry: self.name.clone(),
                    repository: scopes.first().cloned().unwrap_or_default(),
                    what: what.into(),
                });
            }
            if is_transient(status) && attempt < self.attempts {
                self.pause(attempt);
                continue;
            }
            return Ok(response);
        }
    }

    fn pause(&self, attempt: u32) {
        std::thread::sleep(self.backoff * 2u32.pow(attempt.saturating_sub(1)));
    }

    fn unauthorized(&self) -> RegistryError {
        match &self.credential {
            Some((_, source)) => RegistryError::BadCredentials {
                registry: self.name.clone(),
                source_name: source.to_string(),
            },
            None => RegistryError::NoCredentials {
                registry: self.name.clone(),
            },
        }
    }

    fn authorization(&self, scope_key: &str) -> Option<String> {
        let tokens = self.tokens.lock().expect("token map");
        tokens.get(scope_key).or_else(|| tokens.get("")).cloned()
    }

    /// Answers a challenge: Basic with the credential, or a Bearer token for `scopes`.
    fn authenticate(
        &self,
        challenge: &Challenge,
        scopes: &[String],
        scope_key: &str,
    ) -> Result<(), RegistryError> {
        let value = match challenge {
            Challenge::Basic => match &self.credential {
                Some((Credential::Basic { username, password }, _)) => basic(username, password),
                _ => return Err(self.unauthorized()),
            },
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut wanted: Vec<String> = scopes.to_vec();
                if let Some(s) = scope
                    && !wanted.contains(s)
                {
                    wanted.push(s.clone());
                }
                format!("Bearer {}", self.token(realm, service.as_deref(), &wanted)?)
            }
        };
        let key = if matches!(challenge, Challenge::Basic) {
            ""
        } else {
            scope_key
        };
        self.tokens
            .lock()
            .expect("token map")
            .insert(key.to_string(), value);
        Ok(())
    }

    /// A token from the realm (anonymous, with Basic credentials, or by refresh token).
    fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<String, RegistryError> {
        let connect = |reason: String| RegistryError::Connect {
            registry: self.name.clone(),
            what: "getting a token".into(),
            reason,
        };
        let mut url = Url::parse(realm).map_err(|e| connect(e.to_string()))?;
        let request = match &self.credential {
            Some((Credential::IdentityToken(refresh), _)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("refresh_token", refresh.clone()),
                    ("client_id", "carbon-store".to_string()),
                ];
                if let Some(s) = service {
                    form.push(("service", s.to_string()));
                }
                form.push(("scope", scopes.join(" ")));
                let body = form
                    .iter()
                    .map(|(k, v)| format!("{k}={}", url_form(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                self.client
                    .post(url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body)
            }
            other => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in scopes {
                        q.append_pair("scope", s);
                    }
                }
                let request = self.client.get(url);
                match other {
                    Some((Credential::Basic { username, password }, _)) => {
                        request.header(reqwest::header::AUTHORIZATION, basic(username, password))
                    }
                    _ => request,
                }
            }
        };
        let response = request.send().map_err(|e| connect(error_chain(&e)))?;
        match response.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Err(self.unauthorized()),
            s => return Err(self.status_error("getting a token", s, "")),
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = response
            .bytes()
            .map_err(|e| connect(format!("the token server's answer: {e}")))?;
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| connect(format!("the token server's answer: {e}")))?;
        parsed
            .token
            .or(parsed.access_token)
            .ok_or_else(|| connect("the token server's answer holds no token".into()))
    }
}

fn basic(username: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

/// `application/x-www-form-urlencoded` value encoding.
fn url_form(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An error and its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
