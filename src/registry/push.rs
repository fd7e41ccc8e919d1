//! Pushing an image from an OCI layout: every blob (layers and configs) that the registry
//! lacks, then each arch's manifest, then the index under the tag.
//!
//! Why in this order and this way (go-containerregistry's `remote.Write` does the same): a
//! registry accepts a manifest only once its blobs are there, and a tag should never point
//! at something half-pushed. A blob the registry has (HEAD) is skipped; one that another
//! repository of the registry holds, as far as this store knows, is mounted; small blobs go
//! in one request, large ones in chunks whose upload URL is kept in the store after each
//! one, so a push killed in the middle of a blob continues where the registry stands.

use super::client::{Payload, Registry, RegistryError, pull_scope, push_scope};
use super::documents::{self, Descriptor, Parsed};
use super::reference::ImageRef;
use super::sessions::Sessions;
use reqwest::{Method, StatusCode, Url};
use std::path::{Path, PathBuf};

/// Blobs up to this size go in one request; larger ones in chunks of this size.
pub const CHUNK_BYTES: u64 = 16 << 20;

/// What happened to one blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobOutcome {
    /// The registry had it.
    Present,
    /// Mounted from another repository of the registry.
    Mounted,
    /// Uploaded; `resumed_at` when an earlier interrupted upload was continued.
    Uploaded { resumed_at: Option<u64> },
}

/// Where a blob's bytes are: a file (layers), or memory (configs, written by the build).
#[derive(Clone, Copy, Debug)]
pub enum BlobBytes<'a> {
    File(&'a Path),
    Memory(&'a [u8]),
}

/// Told about a push as it goes.
pub trait PushProgress: Sync {
    fn start(&self, blobs: usize, bytes: u64);
    fn bytes(&self, n: u64);
    fn blob_done(&self, digest: &str, outcome: &BlobOutcome);
}

/// A push's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushReport {
    /// The digest the tag points at (the image index for a multi-arch image).
    pub digest: String,
    pub blobs: BlobCounts,
    pub manifests: usize,
}

/// An image in a layout: its top document (the tag's), its manifests and their blobs.
pub struct LayoutImage {
    pub layout: PathBuf,
    pub top: Descriptor,
    /// Manifest documents below the top one (an index's), in index order.
    pub manifests: Vec<Descriptor>,
    /// Configs and layers, each once.
    pub blobs: Vec<Descriptor>,
    /// The attachments (SBOMs, provenance) the layout holds about these manifests, by
    /// subject digest.
    pub referrers: Vec<(String, super::referrers::Artifact)>,
}

fn layout_error(layout: &Path, reason: String) -> RegistryError {
    RegistryError::Layout {
        path: layout.to_path_buf(),
        reason,
    }
}

pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn read_blob(layout: &Path, d: &Descriptor) -> Result<Vec<u8>, RegistryError> {
    let path = blob_path(layout, &d.digest);
    let bytes = std::fs::read(&path).map_err(|e| RegistryError::io("reading", &path, e))?;
    let got = crate::oci::digest_of(&bytes);
    if got != d.digest {
        return Err(layout_error(
            layout,
            format!("blob {} has digest {got}", d.digest),
        ));
    }
    Ok(bytes)
}

/// Finds the image under `ref_name` in a layout's `index.json` (or its only image index, or
/// its only entry), and what it is made of.
pub fn read_layout(layout: &Path, ref_name: Option<&str>) -> Result<LayoutImage, RegistryError> {
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(flatten)]
        descriptor: Descriptor,
        #[serde(default)]
        annotations: std::collections::BTreeMap<String, String>,
    }
    #[derive(serde::Deserialize)]
    struct Index {
        manifests: Vec<Entry>,
    }
    let index_path = layout.join("index.json");
    let text =
        std::fs::read(&index_path).map_err(|e| RegistryError::io("reading", &index_path, e))?;
    let index: Index = serde_json::from_slice(&text)
        .map_err(|e| layout_error(layout, format!("index.json: {e}")))?;
    let name_of = |e: &Entry| {
        e.annotations
            .get(crate::oci::layout::REF_NAME)
            .cloned()
            .unwrap_or_default()
    };
    let chosen: Vec<&Entry> = match ref_name {
        Some(name) => index
            .manifests
            .iter()
            .filter(|e| name_of(e) == name)
            .collect(),
        None => {
            let indexes: Vec<&Entry> = index
                .manifests
                .iter()
                .filter(|e| {
                    e.descriptor.media_type == documents::OCI_INDEX
                        || e.descriptor.media_type == documents::DOCKER_LIST
                })
                .collect();
            if indexes.len() == 1 || index.manifests.len() != 1 {
                indexes
            } else {
                index.manifests.iter().collect()
            }
        }
    };
    let [entry] = chosen.as_slice() else {
        let names: Vec<String> = index.manifests.iter().map(name_of).collect();
        return Err(layout_error(
            layout,
            format!(
                "{} image(s) match {}; it names {}",
                chosen.len(),
                ref_name.map_or("no tag given".to_string(), |n| format!("{n:?}")),
                names.join(", ")
            ),
        ));
    };
    let top = entry.descriptor.clone();
    if !documents::is_sha256_digest(&top.digest) {
        return Err(layout_error(layout, format!("digest {:?}", top.digest)));
    }
    let mut image = LayoutImage {
        layout: layout.to_path_buf(),
        top: top.clone(),
        manifests: Vec::new(),
        blobs: Vec::new(),
        referrers: Vec::new(),
    };
    let add_manifest = |image: &mut LayoutImage, d: &Descriptor| -> Result<(), RegistryError> {
        let bytes = read_blob(layout, d)?;
        match documents::parse(&bytes, &d.digest)
            .map_err(|e| layout_error(layout, e.to_string()))?
        {
            Parsed::Manifest { blobs, .. } => {
                for b in blobs {
                    if !image.blobs.iter().any(|x| x.digest == b.digest) {
                        image.blobs.push(b);
                    }
                }
                Ok(())
            }
            Parsed::Index { .. } => Err(layout_error(
                layout,
                format!("{} is a nested index", d.digest),
            )),
        }
    };
    match documents::parse(&read_blob(layout, &top)?, &top.digest)
        .map_err(|e| layout_error(layout, e.to_string()))?
    {
        Parsed::Index { manifests, .. } => {
            for m in &manifests {
                add_manifest(&mut image, m)?;
            }
            image.manifests = manifests;
        }
        Parsed::Manifest { .. } => add_manifest(&mut image, &top)?,
    }
    image.referrers = layout_referrers(layout, &image)?;
    Ok(image)
}

/// The referrers a layout lists about the image's manifests.
fn layout_referrers(
    layout: &Path,
    image: &LayoutImage,
) -> Result<Vec<(String, super::referrers::Artifact)>, RegistryError> {
    use crate::oci::referrer;
    let subjects: Vec<&str> = if image.manifests.is_empty() {
        vec![image.top.digest.as_str()]
    } else {
        image.manifests.iter().map(|m| m.digest.as_str()).collect()
    };
    let malformed = |e: referrer::ReferrerError| layout_error(layout, e.to_string());
    let mut found = Vec::new();
    for r in referrer::in_layout(layout).map_err(malformed)? {
        if !subjects.contains(&r.subject.as_str()) {
            continue;
        }
        found.push((
            r.subject.clone(),
            super::referrers::Artifact {
                artifact_type: r.artifact_type.clone(),
                manifest: referrer::read_blob(layout, &r.digest).map_err(malformed)?,
                document: referrer::read_blob(layout, &r.document).map_err(malformed)?,
                annotations: r.annotations.clone(),
            },
        ));
    }
    Ok(found)
}

/// Pushes the referrers, each after its subject.
pub(super) fn push_referrers(
    uploader: &Uploader,
    registry: &Registry,
    repo: &str,
    referrers: &[(String, super::referrers::Artifact)],
    report: &mut PushReport,
) -> Result<(), RegistryError> {
    let artifacts: Vec<(String, &super::referrers::Artifact)> =
        referrers.iter().map(|(s, a)| (s.clone(), a)).collect();
    let counts = super::referrers::push(uploader, registry, repo, &artifacts)?;
    report.blobs.merge(&counts);
    report.manifests += artifacts.len();
    Ok(())
}

/// What blob pushes came to.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BlobCounts {
    pub uploaded: usize,
    pub uploaded_bytes: u64,
    pub resumed: usize,
    pub mounted: usize,
    pub present: usize,
}

/// Pushes blobs (each a file and its descriptor) into `repo`, `jobs` at a time.
pub fn push_blobs(
    registry: &Registry,
    repo: &str,
    blobs: &[(PathBuf, Descriptor)],
    sessions: &Sessions,
    jobs: usize,
    progress: &dyn PushProgress,
) -> Result<BlobCounts, RegistryError> {
    use rayon::prelude::*;
    let mounts = Uploader::mount_sources(registry, repo, sessions);
    progress.start(blobs.len(), blobs.iter().map(|(_, b)| b.size).sum());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .expect("a thread pool");
    let uploader = Uploader::new(registry, repo, sessions, &mounts, progress);
    let outcomes: Vec<Result<(u64, BlobOutcome), RegistryError>> = pool.install(|| {
        blobs
            .par_iter()
            .map(|(path, b)| {
                let outcome = uploader.blob(BlobBytes::File(path), b)?;
                progress.blob_done(&b.digest, &outcome);
                Ok((b.size, outcome))
            })
            .collect()
    });
    let mut counts = BlobCounts::default();
    for outcome in outcomes {
        let (size, outcome) = outcome?;
        counts.add(size, &outcome);
    }
    sessions.add_repository(&registry.name, repo);
    Ok(counts)
}

impl BlobCounts {
    /// Counts one blob of `size` bytes.
    pub fn add(&mut self, size: u64, outcome: &BlobOutcome) {
        match outcome {
            BlobOutcome::Present => self.present += 1,
            BlobOutcome::Mounted => self.mounted += 1,
            BlobOutcome::Uploaded { resumed_at } => {
                self.uploaded += 1;
                self.uploaded_bytes += size - resumed_at.unwrap_or(0);
                self.resumed += resumed_at.is_some() as usize;
            }
        }
    }

    /// Adds another push's counts.
    pub fn merge(&mut self, other: &BlobCounts) {
        self.uploaded += other.uploaded;
        self.uploaded_bytes += other.uploaded_bytes;
        self.resumed += other.resumed;
        self.mounted += other.mounted;
        self.present += other.present;
    }
}

/// Pushes `image` to `target` (its tag, or its digest when it names only one).
pub fn push(
    image: &LayoutImage,
    target: &ImageRef,
    registry: &Registry,
    sessions: &Sessions,
    jobs: usize,
    progress: &dyn PushProgress,
) -> Result<PushReport, RegistryError> {
    let repo = &target.repository;
    let blobs: Vec<(PathBuf, Descriptor)> = image
        .blobs
        .iter()
        .map(|b| (blob_path(&image.layout, &b.digest), b.clone()))
        .collect();
    let mut report = PushReport {
        blobs: push_blobs(registry, repo, &blobs, sessions, jobs, progress)?,
        ..PushReport::default()
    };
    for m in &image.manifests {
        let bytes = read_blob(&image.layout, m)?;
        put_manifest(registry, repo, &m.digest, &bytes, &m.media_type, &m.digest)?;
        report.manifests += 1;
    }
    let reference = target
        .tag
        .clone()
        .unwrap_or_else(|| image.top.digest.clone());
    let top = read_blob(&image.layout, &image.top)?;
    report.digest = put_manifest(
        registry,
        repo,
        &reference,
        &top,
        &image.top.media_type,
        &image.top.digest,
    )?;
    report.manifests += 1;
    let mounts = Uploader::mount_sources(registry, repo, sessions);
    let uploader = Uploader::new(registry, repo, sessions, &mounts, progress);
    push_referrers(&uploader, registry, repo, &image.referrers, &mut report)?;
    Ok(report)
}

/// PUTs a manifest or index; returns its digest, checked against what the registry says.
pub fn put_manifest(
    registry: &Registry,
    repo: &str,
    reference: &str,
    bytes: &[u8],
    media_type: &str,
    digest: &str,
) -> Result<String, RegistryError> {
    let what = format!("storing manifest {reference} in {repo}");
    let response = send_manifest(registry, repo, reference, bytes, media_type, &what)?;
    if let Some(got) = response
        .headers()
        .get("Docker-Content-Digest")
        .and_then(|v| v.to_str().ok())
        && got != digest
    {
        return Err(RegistryError::DigestMismatch {
            what,
            expected: digest.into(),
            got: got.into(),
        });
    }
    Ok(digest.to_string())
}

/// PUTs a manifest or index; the registry's answer, once it accepted it.
pub(super) fn send_manifest(
    registry: &Registry,
    repo: &str,
    reference: &str,
    bytes: &[u8],
    media_type: &str,
    what: &str,
) -> Result<reqwest::blocking::Response, RegistryError> {
    let response = registry.send(
        Method::PUT,
        registry.url(&format!("{repo}/manifests/{reference}")),
        &[("Content-Type", media_type.to_string())],
        Payload::Bytes(bytes),
        &[push_scope(repo)],
        what,
    )?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().unwrap_or_default();
        return Err(registry.status_error(what, status, &excerpt(&body)));
    }
    Ok(response)
}

/// The first line of an error body, short.
pub fn excerpt(body: &str) -> String {
    body.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

/// Uploads blobs into one repository: HEAD, resume, mount, or upload.
pub(super) struct Uploader<'a> {
    registry: &'a Registry,
    repo: &'a str,
    sessions: &'a Sessions,
    mounts: &'a [String],
    progress: &'a dyn PushProgress,
}

impl<'a> Uploader<'a> {
    pub(super) fn new(
        registry: &'a Registry,
        repo: &'a str,
        sessions: &'a Sessions,
        mounts: &'a [String],
        progress: &'a dyn PushProgress,
    ) -> Self {
        Uploader {
            registry,
            repo,
            sessions,
            mounts,
            progress,
        }
    }

    /// The repositories of `registry` other than `repo` that this store pushed to: where a
    /// blob may be mounted from.
    pub(super) fn mount_sources(
        registry: &Registry,
        repo: &str,
        sessions: &Sessions,
    ) -> Vec<String> {
        sessions
            .repositories(&registry.name)
            .into_iter()
            .filter(|r| r != repo)
            .collect()
    }

    fn scopes(&self) -> Vec<String> {
        let mut s = vec![push_scope(self.repo)];
        s.extend(self.mounts.iter().map(|r| pull_scope(r)));
        s
    }

    fn send(
        &self,
        method: Method,
        url: Url,
        headers: &[(&str, String)],
        payload: Payload,
        what: &str,
    ) -> Result<reqwest::blocking::Response, RegistryError> {
        self.registry
            .send(method, url, headers, payload, &self.scopes(), what)
    }

    pub(super) fn blob(
        &self,
        bytes: BlobBytes,
        blob: &Descriptor,
    ) -> Result<BlobOutcome, RegistryError> {
        let digest = &blob.digest;
        let what = format!("blob {digest}");
        let head = self.send(
            Method::HEAD,
            self.registry.url(&format!("{}/blobs/{digest}", self.repo)),
            &[],
            Payload::Empty,
            &what,
        )?;
        if head.status().is_success() {
            return Ok(BlobOutcome::Present);
        }
        let (size, path) = match bytes {
            BlobBytes::File(path) => (
                std::fs::metadata(path)
                    .map_err(|e| RegistryError::io("reading", path, e))?
                    .len(),
                Some(path),
            ),
            BlobBytes::Memory(b) => (b.len() as u64, None),
        };
        if size != blob.size {
            return Err(RegistryError::DigestMismatch {
                what: format!("size of the bytes of {digest}"),
                expected: blob.size.to_string(),
                got: size.to_string(),
            });
        }
        // An interrupted upload of this blob, where the registry still has it. A registry
        // may refuse to go on with a session whose last chunk was cut off (distribution
        // does): the blob then starts over.
        if let Some(path) = path
            && let Some(location) = self
                .sessions
                .session(&self.registry.name, self.repo, digest)
        {
            let resumable = match Url::parse(&location) {
                Ok(url) => self.status(url)?,
                Err(_) => None,
            };
            if let Some((url, offset)) = resumable {
                self.progress.bytes(offset);
                self.chunks(path, blob, url, offset)?;
                return Ok(BlobOutcome::Uploaded {
                    resumed_at: Some(offset),
                });
            }
            self.sessions.forget(&self.registry.name, self.repo, digest);
        }
        let mut session = None;
        for from in self.mounts {
            let mut url = self.registry.url(&format!("{}/blobs/uploads/", self.repo));
            url.query_pairs_mut()
                .append_pair("mount", digest)
                .append_pair("from", from);
            let r = self.send(Method::POST, url, &[], Payload::Empty, &what)?;
            match r.status() {
                StatusCode::CREATED => {
                    self.progress.bytes(size);
                    return Ok(BlobOutcome::Mounted);
                }
                StatusCode::ACCEPTED => {
                    session = Some(self.registry.location(&r, &what)?);
                    break;
                }
                _ => continue,
            }
        }
        let url = match session {
            Some(url) => url,
            None => {
                let r = self.send(
                    Method::POST,
                    self.registry.url(&format!("{}/blobs/uploads/", self.repo)),
                    &[],
                    Payload::Empty,
                    &what,
                )?;
                if r.status() != StatusCode::ACCEPTED {
                    let status = r.status();
                    return Err(self.registry.status_error(
                        &format!("starting the upload of {what}"),
                        status,
                        &excerpt(&r.text().unwrap_or_default()),
                    ));
                }
                self.registry.location(&r, &what)?
            }
        };
        match bytes {
            BlobBytes::File(path) if size > CHUNK_BYTES => self.chunks(path, blob, url, 0)?,
            BlobBytes::File(path) => {
                let whole = Payload::File {
                    path,
                    offset: 0,
                    len: size,
                };
                self.finish(url, digest, whole)?;
                self.progress.bytes(size);
            }
            BlobBytes::Memory(bytes) => {
                self.finish(url, digest, Payload::Bytes(bytes))?;
                self.progress.bytes(size);
            }
        }
        Ok(BlobOutcome::Uploaded { resumed_at: None })
    }

    /// How far an upload session got: its current URL and the next byte it expects, or
    /// `None` when the registry no longer knows it.
    fn status(&self, url: Url) -> Result<Option<(Url, u64)>, RegistryError> {
        let r = self.send(
            Method::GET,
            url,
            &[],
            Payload::Empty,
            "an unfinished upload",
        )?;
        if r.status() != StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let next = r
            .headers()
            .get(reqwest::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit_once('-'))
            .and_then(|(_, end)| end.parse::<u64>().ok())
            .map_or(0, |end| end + 1);
        Ok(Some((
            self.registry.location(&r, "an unfinished upload")?,
            next,
        )))
    }

    /// Sends the blob from `offset` in chunks, recording the session after each, then
    /// closes the upload with its digest.
    fn chunks(
        &self,
        path: &Path,
        blob: &Descriptor,
        mut url: Url,
        mut offset: u64,
    ) -> Result<(), RegistryError> {
        let digest = &blob.digest;
        let what = format!("uploading blob {digest}");
        let mut setbacks = 0;
        while offset < blob.size {
            self.sessions
                .save(&self.registry.name, self.repo, digest, url.as_str());
            let len = CHUNK_BYTES.min(blob.size - offset);
            let r = self.send(
                Method::PATCH,
                url.clone(),
                &[
                    ("Content-Type", "application/octet-stream".into()),
                    ("Content-Range", format!("{offset}-{}", offset + len - 1)),
                ],
                Payload::File { path, offset, len },
                &what,
            );
            match r {
                Ok(r) if r.status() == StatusCode::ACCEPTED => {
                    url = self.registry.location(&r, &what)?;
                    offset += len;
                    self.progress.bytes(len);
                }
                // The registry and this side disagree on the offset (a retried chunk that
                // had arrived): ask where it stands and go on from there.
                other => {
                    setbacks += 1;
                    let Some((at_url, at)) = self.status(url.clone())? else {
                        return Err(match other {
                            Ok(r) => self.registry.status_error(
                                &what,
                                r.status(),
                                "the upload session is gone",
                            ),
                            Err(e) => e,
                        });
                    };
                    if setbacks > 4 {
                        return Err(match other {
                            Ok(r) => self.registry.status_error(&what, r.status(), ""),
                            Err(e) => e,
                        });
                    }
                    url = at_url;
                    offset = at;
                }
            }
        }
        self.finish(url, digest, Payload::Empty)?;
        self.sessions.forget(&self.registry.name, self.repo, digest);
        Ok(())
    }

    /// Closes an upload (`PUT …?digest=`), with the whole blob or the rest of it.
    fn finish(&self, mut url: Url, digest: &str, payload: Payload) -> Result<(), RegistryError> {
        url.query_pairs_mut().append_pair("digest", digest);
        let what = format!("finishing the upload of {digest}");
        let r = self.send(
            Method::PUT,
            url,
            &[("Content-Type", "application/octet-stream".into())],
            payload,
            &what,
        )?;
        if r.status() != StatusCode::CREATED {
            let status = r.status();
            return Err(self.registry.status_error(
                &what,
                status,
                &excerpt(&r.text().unwrap_or_default()),
            ));
        }
        Ok(())
    }
}
