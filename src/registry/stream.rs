//! Pushing an image while it is built (`realize --push`): each blob goes to the registry
//! as soon as it is written, on background threads, so uploads overlap the compression of
//! the next layers, and a blob nothing else needs can leave the disk once the registry has
//! it (what lets a large image build on a runner with less free disk than its layers).
//!
//! The order stays that of any push: every blob, then the manifests, then the tag, so the
//! tag never points at an image with a layer missing.

use super::client::{Registry, RegistryError};
use super::documents::Descriptor;
use super::push::{BlobBytes, BlobCounts, PushProgress, PushReport, Uploader, put_manifest};
use super::reference::ImageRef;
use super::sessions::Sessions;
use crate::oci::BuiltImage;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Mutex, mpsc};

/// Runs once the registry holds a queued blob (for example, to remove its file).
pub type AfterUpload<'a> = Box<dyn FnOnce() + Send + 'a>;

struct Job<'a> {
    path: PathBuf,
    descriptor: Descriptor,
    after: Option<AfterUpload<'a>>,
}

/// An upload failed earlier: the queue takes nothing more (the error itself is returned by
/// [`stream`]).
#[derive(Debug, thiserror::Error)]
#[error("an upload to the registry failed")]
pub struct UploadFailed;

/// Blobs waiting for the upload threads.
pub struct BlobQueue<'a> {
    sender: Mutex<Option<mpsc::Sender<Job<'a>>>>,
    /// Digests queued so far (each blob is uploaded once), with their total size.
    queued: Mutex<(BTreeSet<String>, u64)>,
    /// Digests the registry holds by now.
    uploaded: Mutex<BTreeSet<String>>,
    failure: Mutex<Option<RegistryError>>,
    progress: &'a dyn PushProgress,
}

impl<'a> BlobQueue<'a> {
    /// Queues the blob in `path` (once per digest). A blob queued before is not uploaded
    /// again: its `after` runs now if the registry holds it already, and otherwise is left
    /// to the first upload's, which acts on the same path (a layer two archs share, written
    /// again by the second after the first upload removed it, is removed again). Refused
    /// once an upload has failed, so the build can stop.
    pub fn push(
        &self,
        path: PathBuf,
        descriptor: Descriptor,
        after: Option<AfterUpload<'a>>,
    ) -> Result<(), UploadFailed> {
        if self.failure.lock().expect("not poisoned").is_some() {
            return Err(UploadFailed);
        }
        {
            let mut queued = self.queued.lock().expect("not poisoned");
            if !queued.0.insert(descriptor.digest.clone()) {
                let done = self
                    .uploaded
                    .lock()
                    .expect("not poisoned")
                    .contains(&descriptor.digest);
                if let (true, Some(after)) = (done, after) {
                    after();
                }
                return Ok(());
            }
            queued.1 += descriptor.size;
            self.progress.start(queued.0.len(), queued.1);
        }
        let job = Job {
            path,
            descriptor,
            after,
        };
        match self.sender.lock().expect("not poisoned").as_ref() {
            Some(sender) => sender.send(job).map_err(|_| UploadFailed),
            None => Err(UploadFailed),
        }
    }

    fn fail(&self, error: RegistryError) {
        self.failure
            .lock()
            .expect("not poisoned")
            .get_or_insert(error);
    }
}

/// Closes the queue when dropped.
struct CloseOnDrop<'q, 'a>(&'q BlobQueue<'a>);

impl Drop for CloseOnDrop<'_, '_> {
    fn drop(&mut self) {
        let mut sender = self.0.sender.lock().unwrap_or_else(|p| p.into_inner());
        sender.take();
    }
}

/// Asks the registry for a blob with the rights a push needs, so that a wrong address or
/// login is reported before a build of many minutes rather than after it.
pub fn check_access(registry: &Registry, repo: &str) -> Result<(), RegistryError> {
    let what = format!("pushing to {repo}");
    let probe = crate::oci::digest_of(b"");
    let response = registry.send(
        reqwest::Method::HEAD,
        registry.url(&format!("{repo}/blobs/{probe}")),
        &[],
        super::client::Payload::Empty,
        &[super::client::push_scope(repo)],
        &what,
    )?;
    let status = response.status();
    if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
        Ok(())
    } else {
        Err(registry.status_error(&what, status, ""))
    }
}

/// Runs `body` with a queue whose blobs `jobs` threads upload into `repo` meanwhile; returns
/// what `body` returned and, once every queued blob is uploaded, the counts (or the first
/// upload error).
pub fn stream<'a, T>(
    registry: &'a Registry,
    repo: &'a str,
    sessions: &'a Sessions,
    jobs: usize,
    progress: &'a dyn PushProgress,
    body: impl FnOnce(&BlobQueue<'a>) -> T,
) -> (T, Result<BlobCounts, RegistryError>) {
    let mounts = Uploader::mount_sources(registry, repo, sessions);
    let uploader = Uploader::new(registry, repo, sessions, &mounts, progress);
    let (sender, receiver) = mpsc::channel::<Job<'a>>();
    let receiver = Mutex::new(receiver);
    let queue = BlobQueue {
        sender: Mutex::new(Some(sender)),
        queued: Mutex::new((BTreeSet::new(), 0)),
        uploaded: Mutex::new(BTreeSet::new()),
        failure: Mutex::new(None),
        progress,
    };
    let (value, counts) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut counts = BlobCounts::default();
                    loop {
                        let next = receiver.lock().expect("not poisoned").recv();
                        let Ok(job) = next else { break };
                        if queue.failure.lock().expect("not poisoned").is_some() {
                            continue;
                        }
                        let uploaded = uploader.blob(BlobBytes::File(&job.path), &job.descriptor);
                        match uploaded {
                            Ok(outcome) => {
                                progress.blob_done(&job.descriptor.digest, &outcome);
                                counts.add(job.descriptor.size, &outcome);
                                queue
                                    .uploaded
                                    .lock()
                                    .expect("not poisoned")
                                    .insert(job.descriptor.digest.clone());
                                if let Some(after) = job.after {
                                    after();
                                }
                            }
                            Err(e) => queue.fail(e),
                        }
                    }
                    counts
                })
            })
            .collect();
        let value = {
            // No more blobs once `body` returns, or panics (the threads would otherwise
            // wait for more and the scope for them): they finish what is queued and stop.
            let _close = CloseOnDrop(&queue);
            body(&queue)
        };
        let mut counts = BlobCounts::default();
        for worker in workers {
            counts.merge(&worker.join().expect("an upload thread panicked"));
        }
        (value, counts)
    });
    let result = match queue.failure.into_inner().expect("not poisoned") {
        Some(error) => Err(error),
        None => {
            sessions.add_repository(&registry.name, repo);
            Ok(counts)
        }
    };
    (value, result)
}

/// After [`stream`] uploaded the layers of `images`: their configs, each arch's manifest,
/// then the multi-arch index under the tag (the same index document the OCI layout holds,
/// so the pushed digest equals the local one).
pub fn finish_images(
    images: &[BuiltImage],
    created: u64,
    target: &ImageRef,
    registry: &Registry,
    sessions: &Sessions,
    progress: &dyn PushProgress,
    layers: BlobCounts,
) -> Result<PushReport, RegistryError> {
    let repo = &target.repository;
    let mounts = Uploader::mount_sources(registry, repo, sessions);
    let uploader = Uploader::new(registry, repo, sessions, &mounts, progress);
    let mut report = PushReport {
        blobs: layers,
        ..PushReport::default()
    };
    for image in images {
        let config = Descriptor {
            media_type: crate::registry::documents::OCI_CONFIG.into(),
            digest: image.config_digest.clone(),
            size: image.config.len() as u64,
        };
        let outcome = uploader.blob(BlobBytes::Memory(&image.config), &config)?;
        report.blobs.add(config.size, &outcome);
        put_manifest(
            registry,
            repo,
            &image.manifest_digest,
            &image.manifest,
            crate::registry::documents::OCI_MANIFEST,
            &image.manifest_digest,
        )?;
        report.manifests += 1;
    }
    let referrers: Vec<(String, super::referrers::Artifact)> = images
        .iter()
        .flat_map(|image| {
            let subject = (image.manifest_digest.as_str(), image.manifest.len() as u64);
            image.attachments.iter().map(move |a| {
                (
                    image.manifest_digest.clone(),
                    super::referrers::Artifact::of(a, subject),
                )
            })
        })
        .collect();
    super::push::push_referrers(&uploader, registry, repo, &referrers, &mut report)?;
    let index = crate::oci::layout::image_index(images, created);
    let index_digest = crate::oci::digest_of(&index);
    let reference = target.tag.clone().unwrap_or_else(|| index_digest.clone());
    report.digest = put_manifest(
        registry,
        repo,
        &reference,
        &index,
        crate::registry::documents::OCI_INDEX,
        &index_digest,
    )?;
    report.manifests += 1;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ConnectOptions;
    use crate::registry::push::BlobOutcome;

    struct Quiet;
    impl PushProgress for Quiet {
        fn start(&self, _: usize, _: u64) {}
        fn bytes(&self, _: u64) {}
        fn blob_done(&self, _: &str, _: &BlobOutcome) {}
    }

    fn unreachable_registry() -> Registry {
        let reference = ImageRef::parse("127.0.0.1:9/carbon/test:v1").unwrap();
        let opts = ConnectOptions {
            plain_http: true,
            credential: Some(crate::registry::auth::Credential::Basic {
                username: "u".into(),
                password: "p".into(),
            }),
            backoff: Some(std::time::Duration::from_millis(1)),
            ..ConnectOptions::default()
        };
        Registry::new(&reference, &opts).unwrap()
    }

    #[test]
    fn a_build_that_panics_does_not_leave_the_upload_threads_waiting() {
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let dir = tempfile::tempdir().unwrap();
            let store = crate::store::Store::open(dir.path().join("store")).unwrap();
            let sessions = Sessions::new(&store);
            let registry = unreachable_registry();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                stream(&registry, "carbon/test", &sessions, 2, &Quiet, |_| -> () {
                    panic!("the build failed")
                })
            }));
            done.send(outcome.is_err()).unwrap();
        });
        let panicked = finished.recv_timeout(std::time::Duration::from_secs(60));
        assert_eq!(
            panicked,
            Ok(true),
            "stream did not return after the build panicked"
        );
    }

    #[test]
    fn a_failed_upload_refuses_further_blobs_and_is_returned() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path().join("store")).unwrap();
        let sessions = Sessions::new(&store);
        let registry = unreachable_registry();
        let blob = dir.path().join("blob");
        std::fs::write(&blob, b"layer").unwrap();
        let descriptor = |n: u8| Descriptor {
            media_type: "application/octet-stream".into(),
            digest: format!("sha256:{}", hex::encode([n; 32])),
            size: 5,
        };
        let (refused, result) = stream(&registry, "carbon/test", &sessions, 1, &Quiet, |queue| {
            queue.push(blob.clone(), descriptor(1), None).unwrap();
            // The first upload fails (nothing listens); later blobs are refused.
            (0..200).any(|_| {
                std::thread::sleep(std::time::Duration::from_millis(50));
                queue.push(blob.clone(), descriptor(2), None).is_err()
            })
        });
        assert!(refused, "the queue kept taking blobs after a failed upload");
        assert!(
            matches!(result, Err(RegistryError::Connect { .. })),
            "{result:?}"
        );
    }
}
