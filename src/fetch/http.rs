//! Downloads with retries, mirror fallback and hash verification while streaming.
//!
//! Every byte that reaches the store is hashed on the way in and committed only when
//! size and sha256 match, so a truncated or corrupted transfer never leaves an object
//! under its final name. Transient failures (connection errors, 5xx, 429, short bodies)
//! are retried with backoff; a 404 moves straight on to the next mirror. A mirror that
//! several downloads in a row could not reach is not tried again in the run, and every
//! failed attempt is kept as data, so that a failure can be told per mirror and cause.

use crate::store::{Expected, Store, StoreError};
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a body did not become a store object.
#[derive(Debug)]
pub enum BodyError {
    /// Reading it failed after `received` bytes.
    Broken {
        received: u64,
        error: std::io::Error,
    },
    /// It ran past the expected size (given).
    TooLong(u64),
    /// Its size or sha256 differs from the expected one.
    Mismatch(StoreError),
    /// The store could not take it.
    Store(StoreError),
}

/// Streams a body into the store as `name`, published only if it matches `expected`;
/// reading stops as soon as it runs past the expected size. Shared by mirror downloads
/// and the registry cache.
pub fn body_into_store(
    reader: &mut dyn Read,
    store: &Store,
    name: &str,
    expected: &Expected,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PathBuf, BodyError> {
    let mut pending = store
        .begin_for(name, &expected.digest)
        .map_err(BodyError::Store)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => {
                return Err(BodyError::Broken {
                    received: pending.size(),
                    error,
                });
            }
        };
        pending.write_all(&buf[..n]).map_err(BodyError::Store)?;
        progress(n as u64);
        if let Some(size) = expected.size.filter(|&s| pending.size() > s) {
            return Err(BodyError::TooLong(size));
        }
    }
    match pending.commit(expected) {
        Ok(path) => Ok(path),
        Err(e @ (StoreError::SizeMismatch { .. } | StoreError::HashMismatch { .. })) => {
            Err(BodyError::Mismatch(e))
        }
        Err(e) => Err(BodyError::Store(e)),
    }
}

/// A download that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "offline mode: {what} is not in the store (run `carbon-store fetch` on a connected machine, or import a bundle)"
    )]
    Offline { what: String },
    #[error("could not download {name}:\n{attempts}")]
    Failed { name: String, attempts: Attempts },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One failed attempt: the URL, the mirror base it was made from, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptFailure {
    pub url: String,
    pub base: String,
    pub why: String,
    /// False when the mirror was not tried at all: `why` is then what made the run give
    /// up on it.
    pub tried: bool,
}

/// Every failed attempt of a download, in order; shown one per line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attempts(pub Vec<AttemptFailure>);

impl Attempts {
    /// One reason, not tied to a URL (a file the index no longer lists).
    pub fn only(why: impl Into<String>) -> Attempts {
        Attempts(vec![AttemptFailure {
            url: String::new(),
            base: String::new(),
            why: why.into(),
            tried: true,
        }])
    }

    fn push(&mut self, base: &str, url: &str, why: String) {
        self.0.push(AttemptFailure {
            url: url.to_string(),
            base: base.to_string(),
            why,
            tried: true,
        });
    }

    /// The last attempt: where and why the download finally failed.
    pub fn last(&self) -> Option<&AttemptFailure> {
        self.0.last()
    }
}

impl std::fmt::Display for Attempts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|a| match (a.url.is_empty(), a.tried) {
                (true, _) => format!("  {}", a.why),
                (false, true) => format!("  {}: {}", a.url, a.why),
                (false, false) => format!(
                    "  {}: not tried ({GIVE_UP_AFTER} downloads in a row found the mirror unreachable: {})",
                    a.url, a.why
                ),
            })
            .collect();
        f.write_str(&lines.join("\n"))
    }
}

/// One attempt's outcome, kept to explain a final failure.
enum Attempt {
    Retry(String),
    /// The server could not be reached at all (connection refused, timed out, no such
    /// host): retried, and counted against the mirror.
    Unreachable(String),
    NextMirror(String),
    Fatal(StoreError),
}

/// The HTTP client and policy shared by every download of a run.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::blocking::Client,
    offline: bool,
    attempts_per_mirror: u32,
    backoff: Duration,
    /// Per mirror base: how many downloads in a row found it unreachable. From
    /// [`GIVE_UP_AFTER`] on, it is not tried again in this run: a dead mirror costs a few
    /// downloads' retries, not every artifact's.
    unreachable: Arc<Mutex<HashMap<String, (u32, String)>>>,
}

/// Downloads in a row that must find a mirror unreachable before the run stops trying it.
pub const GIVE_UP_AFTER: u32 = 3;

impl Fetcher {
    pub fn new(offline: bool) -> Fetcher {
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("carbon-store/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(16)
            .build()
            .expect("the TLS backend is compiled in");
        Fetcher {
            client,
            offline,
            attempts_per_mirror: 4,
            backoff: Duration::from_millis(250),
            unreachable: Arc::default(),
        }
    }

    /// Shorter backoff, for tests that exercise retries.
    pub fn with_backoff(mut self, backoff: Duration) -> Fetcher {
        self.backoff = backoff;
        self
    }

    pub fn is_offline(&self) -> bool {
        self.offline
    }

    /// Downloads a small file whole (an `InRelease`), trying each base URL in turn.
    pub fn get_bytes(&self, bases: &[String], path: &str) -> Result<Vec<u8>, FetchError> {
        if self.offline {
            return Err(FetchError::Offline {
                what: path.to_string(),
            });
        }
        let mut log = Attempts::default();
        for base in bases {
            let url = join(base, path);
            for attempt in 0..self.attempts_per_mirror {
                if attempt > 0 {
                    std::thread::sleep(self.backoff * 2u32.pow(attempt - 1));
                }
                match self.open(&url) {
                    Ok(mut reader) => {
                        let mut bytes = Vec::new();
                        match reader.read_to_end(&mut bytes) {
                            Ok(_) => return Ok(bytes),
                            Err(e) => log.push(base, &url, e.to_string()),
                        }
                    }
                    Err(Attempt::NextMirror(why)) => {
                        log.push(base, &url, why);
                        break;
                    }
                    Err(Attempt::Retry(why) | Attempt::Unreachable(why)) => {
                        log.push(base, &url, why)
                    }
                    Err(Attempt::Fatal(e)) => return Err(e.into()),
                }
            }
        }
        Err(FetchError::Failed {
            name: path.to_string(),
            attempts: log,
        })
    }

    /// Downloads `path` from the first mirror that has it into the store as `name`,
    /// verifying `expected` while streaming. `progress` is told of every chunk received.
    pub fn fetch_into_store(
        &self,
        bases: &[String],
        path: &str,
        store: &Store,
        name: &str,
        expected: &Expected,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<PathBuf, FetchError> {
        if store.holds(&expected.digest, name, expected.size) {
            return Ok(store.object_path(&expected.digest, name));
        }
        if self.offline {
            return Err(FetchError::Offline {
                what: name.to_string(),
            });
        }
        let mut log = Attempts::default();
        for base in bases {
            let url = join(base, path);
            if let Some(why) = self.given_up(base) {
                log.0.push(AttemptFailure {
                    url,
                    base: base.clone(),
                    why,
                    tried: false,
                });
                continue;
            }
            let mut reached = false;
            let mut last_unreachable = String::new();
            for attempt in 0..self.attempts_per_mirror {
                if attempt > 0 {
                    std::thread::sleep(self.backoff * 2u32.pow(attempt - 1));
                }
                match self.try_once(&url, store, name, expected, progress) {
                    Ok(p) => {
                        self.note_reached(base);
                        return Ok(p);
                    }
                    Err(Attempt::Unreachable(why)) => {
                        last_unreachable = why.clone();
                        log.push(base, &url, why)
                    }
                    Err(Attempt::Retry(why)) => {
                        reached = true;
                        log.push(base, &url, why)
                    }
                    Err(Attempt::NextMirror(why)) => {
                        reached = true;
                        log.push(base, &url, why);
                        break;
                    }
                    Err(Attempt::Fatal(e)) => return Err(e.into()),
                }
            }
            if reached {
                self.note_reached(base);
            } else {
                self.note_unreachable(base, last_unreachable);
            }
        }
        Err(FetchError::Failed {
            name: name.to_string(),
            attempts: log,
        })
    }

    /// Why `base` was last unreachable, once enough downloads in a row found it so to
    /// stop trying it.
    fn given_up(&self, base: &str) -> Option<String> {
        let counts = self.unreachable.lock().expect("unreachable counts");
        counts
            .get(base)
            .filter(|(n, _)| *n >= GIVE_UP_AFTER)
            .map(|(_, why)| why.clone())
    }

    fn note_unreachable(&self, base: &str, why: String) {
        let mut counts = self.unreachable.lock().expect("unreachable counts");
        let entry = counts.entry(base.to_string()).or_default();
        *entry = (entry.0 + 1, why);
    }

    fn note_reached(&self, base: &str) {
        self.unreachable
            .lock()
            .expect("unreachable counts")
            .remove(base);
    }

    fn try_once(
        &self,
        url: &str,
        store: &Store,
        name: &str,
        expected: &Expected,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<PathBuf, Attempt> {
        let mut reader = self.open(url)?;
        body_into_store(&mut reader, store, name, expected, progress).map_err(|e| match e {
            BodyError::Broken { received, error } => Attempt::Retry(format!(
                "transfer broke off after {received} bytes: {error}"
            )),
            BodyError::TooLong(size) => Attempt::NextMirror(format!(
                "the mirror serves more than the expected {size} bytes"
            )),
            // A short or corrupted body may be a broken transfer: retry, then try the next mirror.
            BodyError::Mismatch(e) => Attempt::Retry(e.to_string()),
            BodyError::Store(e) => Attempt::Fatal(e),
        })
    }

    /// Downloads one URL whole (or a byte range of it), with retries; for index pages and
    /// wheel metadata. `accept` sets the Accept header. A server that ignores the range
    /// and sends the whole file is handled by slicing.
    pub fn get_url(
        &self,
        url: &str,
        accept: Option<&str>,
        range: Option<(u64, u64)>,
    ) -> Result<Vec<u8>, FetchError> {
        self.get(url, accept, range, false)
            .map(|got| got.expect("a missing file is an error"))
    }

    /// [`Fetcher::get_url`] of a whole file that may not exist: `None` when the server
    /// answers 404 or 410 (as the npm registry does for a package never published).
    pub fn get_url_if_present(
        &self,
        url: &str,
        accept: Option<&str>,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        self.get(url, accept, None, true)
    }

    fn get(
        &self,
        url: &str,
        accept: Option<&str>,
        range: Option<(u64, u64)>,
        missing_ok: bool,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        if self.offline {
            return Err(FetchError::Offline {
                what: url.to_string(),
            });
        }
        let slice = |bytes: Vec<u8>, whole: bool| -> Vec<u8> {
            match range {
                Some((start, end)) if whole => bytes
                    .get(start as usize..(end as usize + 1).min(bytes.len()))
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default(),
                _ => bytes,
            }
        };
        if let Some(path) = url.strip_prefix("file://") {
            return match std::fs::read(path) {
                Ok(b) => Ok(Some(slice(b, true))),
                Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(FetchError::Failed {
                    name: url.to_string(),
                    attempts: Attempts::only(e.to_string()),
                }),
            };
        }
        let request = || {
            let mut request = self.client.get(url);
            if let Some(a) = accept {
                request = request.header("Accept", a);
            }
            if let Some((start, end)) = range {
                request = request.header("Range", format!("bytes={start}-{end}"));
            }
            request
        };
        self.with_retries(url, request, missing_ok, |response| {
            let whole = response.status().as_u16() == 200;
            response
                .bytes()
                .map(|b| slice(b.to_vec(), whole))
                .map_err(|e| error_chain(&e))
        })
    }

    /// Sends a request (made afresh for each attempt) and reads its successful response,
    /// retrying transport errors, failed reads, server errors and 429 with backoff; a 404
    /// or 410 is `Ok(None)` when `missing_ok`, another status fails at once.
    fn with_retries<T>(
        &self,
        url: &str,
        request: impl Fn() -> reqwest::blocking::RequestBuilder,
        missing_ok: bool,
        read: impl Fn(reqwest::blocking::Response) -> Result<T, String>,
    ) -> Result<Option<T>, FetchError> {
        let mut log = Attempts::default();
        for attempt in 0..self.attempts_per_mirror {
            if attempt > 0 {
                std::thread::sleep(self.backoff * 2u32.pow(attempt - 1));
            }
            match request().send() {
                Ok(response) if response.status().is_success() => match read(response) {
                    Ok(got) => return Ok(Some(got)),
                    Err(why) => log.push("", url, why),
                },
                Ok(response) if missing_ok && matches!(response.status().as_u16(), 404 | 410) => {
                    return Ok(None);
                }
                Ok(response) => {
                    let status = response.status();
                    log.push("", url, format!("HTTP {status}"));
                    if !(status.is_server_error() || status.as_u16() == 429) {
                        break;
                    }
                }
                Err(e) => log.push("", url, error_chain(&e.without_url())),
            }
        }
        Err(FetchError::Failed {
            name: url.to_string(),
            attempts: log,
        })
    }

    /// The size of the file at `url` (a HEAD request's `Content-Length`), with retries.
    pub fn content_length(&self, url: &str) -> Result<u64, FetchError> {
        if self.offline {
            return Err(FetchError::Offline {
                what: url.to_string(),
            });
        }
        if let Some(path) = url.strip_prefix("file://") {
            return std::fs::metadata(path)
                .map(|m| m.len())
                .map_err(|e| FetchError::Failed {
                    name: url.to_string(),
                    attempts: Attempts::only(e.to_string()),
                });
        }
        let length = |response: reqwest::blocking::Response| {
            response
                .headers()
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| "no Content-Length".to_string())
        };
        self.with_retries(url, || self.client.head(url), false, length)
            .map(|got| got.expect("a missing file is an error"))
    }

    fn open(&self, url: &str) -> Result<Box<dyn Read>, Attempt> {
        if let Some(path) = url.strip_prefix("file://") {
            return match std::fs::File::open(path) {
                Ok(f) => Ok(Box::new(f)),
                Err(e) => Err(Attempt::NextMirror(e.to_string())),
            };
        }
        // The URL is on every line already: the error says only what happened.
        let response = self.client.get(url).send().map_err(|e| {
            let unreachable = e.is_connect() || e.is_timeout();
            let why = error_chain(&e.without_url());
            if unreachable {
                Attempt::Unreachable(why)
            } else {
                Attempt::Retry(why)
            }
        })?;
        let status = response.status();
        if status.is_success() {
            Ok(Box::new(response))
        } else if status.as_u16() == 429 || status.is_server_error() || status.as_u16() == 408 {
            Err(Attempt::Retry(format!("HTTP {status}")))
        } else {
            Err(Attempt::NextMirror(format!("HTTP {status}")))
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `base` + `/` + `path`, with exactly one slash between them.
pub fn join(base: &str, path: &str) -> String {
    if path.is_empty() {
        return base.to_string();
    }
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mirror_unreachable_for_some_downloads_in_a_row_is_not_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dead = vec![format!("http://127.0.0.1:{port}")];
        let fetcher = Fetcher::new(false).with_backoff(Duration::ZERO);
        let expected = Expected::sha256(&"0".repeat(64), Some(1));
        let attempts = |name: &str| match fetcher.fetch_into_store(
            &dead,
            name,
            &store,
            name,
            &expected,
            &|_| {},
        ) {
            Err(FetchError::Failed { attempts, .. }) => attempts.0,
            other => panic!("{other:?}"),
        };
        for i in 0..GIVE_UP_AFTER {
            let tried = attempts(&format!("f{i}"));
            assert_eq!(tried.len(), 4, "every attempt made: {tried:?}");
            assert!(tried.iter().all(|a| a.tried && a.base == dead[0]));
        }
        let skipped = attempts("next");
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(!skipped[0].tried && skipped[0].why.contains("Connection refused"));
    }
}
