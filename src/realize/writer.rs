//! Layers written in the background while the build goes on to the next layer.
//!
//! Why: writing a layer (tar, two sha256, compression) is most of a realize, and the
//! stages that make the trees between writes (unpacking wheels and npm packages, the
//! fixups) leave cores idle. Each tree is handed to two writer threads as soon as it is
//! reconciled (each writer's compressor uses every core), and the build goes on to the
//! next tree. A writer takes the largest waiting tree first, so that a build does not end
//! with one big layer compressing alone. What comes back is in the order the trees were
//! handed in: the image never depends on which write finished first.
//!
//! Memory stays bounded: a tree made in turn (a Python or npm layer) is
//! made only while at most [`WAITING_IN_TURN`] others wait for a writer, and a layer's
//! input record is saved by its writer as soon as it is written, not kept until the arch's
//! last layer is.

use super::{FinishLayer, RealizeError};
use crate::layer::tree::Tree;
use crate::oci::BuiltLayer;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{Scope, ScopedJoinHandle};

/// Layers written at once: each one's compressor already uses every core, so a second
/// writer only fills the gaps at a layer's start and end.
const WRITERS: usize = 2;

/// Trees made in turn that may wait for a writer before the build waits to make the next:
/// one keeps a writer's next tree ready; more only held their metadata in memory while
/// the compressors were behind (`compute` arm64 peaked at 588 MiB that way).
const WAITING_IN_TURN: usize = 1;

/// Work a writer does once its layer is written, on its own thread: saving the layer's
/// input record, which names the diff id the write gave.
pub type AfterWrite = Box<dyn FnOnce(&BuiltLayer) -> Result<(), RealizeError> + Send>;

/// Which handed-in layer a result belongs to.
#[derive(Clone, Copy, Debug)]
pub struct Ticket(usize);

struct Job {
    ticket: usize,
    bytes: u64,
    tree: Tree,
    prebuilt: Option<String>,
    comment: String,
    /// Made in turn, one after another (not one of the trees one unpack made together).
    in_turn: bool,
    after: Option<AfterWrite>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Job>,
    /// Every tree has been handed in: writers leave once `waiting` is empty.
    closed: bool,
    /// The build stopped (an error, here or in the caller): writers take no more work.
    stopped: bool,
    results: Vec<Option<Result<BuiltLayer, RealizeError>>>,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A writer that panicked is reported by `join`; the queue itself stays consistent.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The writer threads of one arch's build, living in `scope`.
pub struct Writers<'scope> {
    shared: Arc<Shared>,
    threads: Vec<ScopedJoinHandle<'scope, ()>>,
}

/// The layers written, in the order they were handed in.
pub struct Written(Vec<BuiltLayer>);

impl Written {
    pub fn get(&self, ticket: Ticket) -> &BuiltLayer {
        &self.0[ticket.0]
    }

    pub fn into_layers(self) -> Vec<BuiltLayer> {
        self.0
    }
}

impl<'scope> Writers<'scope> {
    /// Starts the writers; each writes a tree with `finish`.
    pub fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        finish: &'env FinishLayer<'env>,
    ) -> Writers<'scope> {
        let shared = Arc::new(Shared::default());
        let threads = (0..WRITERS)
            .map(|_| {
                let shared = Arc::clone(&shared);
                scope.spawn(move || write_until_done(&shared, finish))
            })
            .collect();
        Writers { shared, threads }
    }

    /// Hands a reconciled tree (or a `prebuilt` layer's skeleton) over to be written, one
    /// of the trees made together (the Debian side's and what derives from them). `after`
    /// runs on the writer once the layer is written, and its error is the build's. Fails
    /// with the error of a write that already failed, so that the build stops early.
    pub fn submit(
        &self,
        tree: Tree,
        prebuilt: Option<String>,
        comment: &str,
        after: Option<AfterWrite>,
    ) -> Result<Ticket, RealizeError> {
        self.hand_in(tree, prebuilt, comment, false, after)
    }

    /// Hands over a tree made in turn, as [`Writers::submit`] does; call
    /// [`Writers::wait_for_room`] before making it.
    pub fn submit_in_turn(
        &self,
        tree: Tree,
        prebuilt: Option<String>,
        comment: &str,
        after: Option<AfterWrite>,
    ) -> Result<Ticket, RealizeError> {
        self.hand_in(tree, prebuilt, comment, true, after)
    }

    fn hand_in(
        &self,
        tree: Tree,
        prebuilt: Option<String>,
        comment: &str,
        in_turn: bool,
        after: Option<AfterWrite>,
    ) -> Result<Ticket, RealizeError> {
        let mut queue = self.shared.lock();
        if let Some(error) = take_error(&mut queue) {
            return Err(error);
        }
        let ticket = queue.results.len();
        queue.results.push(None);
        let bytes = tree.nodes.values().map(|n| n.content.len()).sum();
        queue.waiting.push(Job {
            ticket,
            bytes,
            tree,
            prebuilt,
            comment: comment.to_string(),
            in_turn,
            after,
        });
        self.shared.changed.notify_all();
        Ok(Ticket(ticket))
    }

    /// Waits until at most [`WAITING_IN_TURN`] trees made in turn wait for a writer. Fails
    /// with the error of a write that failed meanwhile.
    pub fn wait_for_room(&self) -> Result<(), RealizeError> {
        let mut queue = self.shared.lock();
        loop {
            if let Some(error) = take_error(&mut queue) {
                return Err(error);
            }
            let waiting = queue.waiting.iter().filter(|job| job.in_turn).count();
            // Stopped without an error: a writer panicked, which `wait` passes on.
            if waiting <= WAITING_IN_TURN || queue.stopped {
                return Ok(());
            }
            queue = self
                .shared
                .changed
                .wait(queue)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Whether trees handed in are still being written.
    pub fn busy(&self) -> bool {
        self.shared.lock().results.iter().any(Option::is_none)
    }

    /// Waits for every write; the first failure in hand-in order is the error. Not for a
    /// build that [`Writers::submit`] already handed an error to: that build is over.
    pub fn wait(mut self) -> Result<Written, RealizeError> {
        {
            let mut queue = self.shared.lock();
            queue.closed = true;
            self.shared.changed.notify_all();
        }
        for thread in self.threads.drain(..) {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        let results = std::mem::take(&mut self.shared.lock().results);
        let handed_in = results.len();
        let mut layers = Vec::with_capacity(handed_in);
        // A tree left unwritten means a write failed: its error comes later in order.
        for result in results.into_iter().flatten() {
            layers.push(result?);
        }
        assert!(
            layers.len() == handed_in,
            "waited for after a hand-in returned the build's error"
        );
        Ok(Written(layers))
    }
}

/// A build that leaves without waiting (its own error) stops the writers after the
/// layers they are writing; the scope then joins them.
impl Drop for Writers<'_> {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.changed.notify_all();
    }
}

/// The first error a writer recorded, taken out of the results (the build is stopping).
fn take_error(queue: &mut Queue) -> Option<RealizeError> {
    let failed = queue
        .results
        .iter()
        .position(|r| matches!(r, Some(Err(_))))?;
    queue.stopped = true;
    match queue.results[failed].take() {
        Some(Err(error)) => Some(error),
        _ => unreachable!("the position holds an error"),
    }
}

/// Marks the build stopped when its writer panics, so that a build waiting for room or
/// for work wakes up (the panic reaches the build through `join`).
struct StopOnPanic<'a>(&'a Shared);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().stopped = true;
            self.0.changed.notify_all();
        }
    }
}

fn write_until_done(shared: &Shared, finish: &FinishLayer) {
    let _stop_on_panic = StopOnPanic(shared);
    while let Some(job) = next_job(shared) {
        let mut result = finish(&job.tree, job.prebuilt.as_deref(), &job.comment);
        drop(job.tree);
        if let (Ok(layer), Some(after)) = (&result, job.after)
            && let Err(error) = after(layer)
        {
            result = Err(error);
        }
        let mut queue = shared.lock();
        if result.is_err() {
            queue.stopped = true;
            shared.changed.notify_all();
        }
        queue.results[job.ticket] = Some(result);
    }
}

/// The largest waiting job, or `None` once the build stopped or every tree was written.
fn next_job(shared: &Shared) -> Option<Job> {
    let mut queue = shared.lock();
    loop {
        if queue.stopped {
            return None;
        }
        let largest = (0..queue.waiting.len()).max_by_key(|&i| {
            let job = &queue.waiting[i];
            (job.bytes, std::cmp::Reverse(job.ticket))
        });
        if let Some(i) = largest {
            // A build waiting for room may go on.
            shared.changed.notify_all();
            return Some(queue.waiting.swap_remove(i));
        }
        if queue.closed {
            return None;
        }
        queue = shared
            .changed
            .wait(queue)
            .unwrap_or_else(|e| e.into_inner());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tar::EntryKind;
    use crate::layer::tree::Node;

    /// A tree of one file of `len` bytes.
    fn tree_of(len: usize) -> Tree {
        let mut tree = Tree::default();
        tree.put(
            "f",
            Node {
                kind: EntryKind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
                content: vec![0u8; len].into(),
                package: None,
            },
        );
        tree
    }

    /// Stands in for `layers::finish`: the comment is the layer; "bad" fails.
    fn fake_finish(
        _tree: &Tree,
        prebuilt: Option<&str>,
        comment: &str,
    ) -> Result<BuiltLayer, RealizeError> {
        if comment == "bad" {
            return Err(RealizeError::Deliver {
                arch: "amd64".into(),
                error: "the registry refused the blob".into(),
            });
        }
        Ok(BuiltLayer {
            diff_id: prebuilt.unwrap_or("sha256:new").to_string(),
            digest: String::new(),
            size: 0,
            media_type: String::new(),
            comment: comment.to_string(),
            tar_size: 0,
        })
    }

    #[test]
    fn layers_come_back_in_the_order_they_were_handed_in() {
        let sizes = [10, 5000, 0, 300, 70000, 1];
        let written = std::thread::scope(|scope| {
            let writers = Writers::start(scope, &fake_finish);
            let tickets: Vec<Ticket> = sizes
                .iter()
                .enumerate()
                .map(|(i, &len)| {
                    let prebuilt = (len == 0).then(|| "sha256:old".to_string());
                    writers.submit(tree_of(len), prebuilt, &format!("layer {i}"), None)
                })
                .collect::<Result<_, _>>()
                .unwrap();
            let written = writers.wait().unwrap();
            assert_eq!(written.get(tickets[2]).diff_id, "sha256:old");
            written.into_layers()
        });
        let comments: Vec<&str> = written.iter().map(|l| l.comment.as_str()).collect();
        assert_eq!(
            comments,
            [
                "layer 0", "layer 1", "layer 2", "layer 3", "layer 4", "layer 5"
            ]
        );
    }

    #[test]
    fn the_largest_waiting_tree_is_written_first() {
        let shared = Shared::default();
        for (ticket, bytes) in [(0, 10), (1, 900), (2, 900), (3, 50)] {
            shared.lock().waiting.push(Job {
                ticket,
                bytes,
                tree: Tree::default(),
                prebuilt: None,
                comment: String::new(),
                in_turn: false,
                after: None,
            });
        }
        shared.lock().closed = true;
        let order: Vec<usize> = std::iter::from_fn(|| next_job(&shared))
            .map(|j| j.ticket)
            .collect();
        // Equal sizes go in hand-in order.
        assert_eq!(order, [1, 2, 3, 0]);
    }

    #[test]
    fn a_failed_write_is_what_waiting_returns() {
        let result = std::thread::scope(|scope| {
            let writers = Writers::start(scope, &fake_finish);
            writers.submit(tree_of(1), None, "good", None).unwrap();
            writers.submit(tree_of(1), None, "bad", None).unwrap();
            writers.wait().map(Written::into_layers)
        });
        let error = result.expect_err("the failed write is the error");
        assert!(error.to_string().contains("refused the blob"), "{error}");
    }

    #[test]
    fn a_hand_in_after_a_failed_write_gets_its_error_and_the_writers_leave() {
        std::thread::scope(|scope| {
            let writers = Writers::start(scope, &fake_finish);
            writers.submit(tree_of(1), None, "bad", None).unwrap();
            while !writers.shared.lock().stopped {
                std::thread::yield_now();
            }
            let late = writers.submit(tree_of(1), None, "late", None);
            assert!(late.is_err_and(|e| e.to_string().contains("refused the blob")));
            // Dropped without waiting, as a build that returns its error does: the scope
            // ends only if the writers leave.
        });
    }

    #[test]
    fn a_build_waits_for_room_while_trees_made_in_turn_wait() {
        let open = std::sync::atomic::AtomicBool::new(false);
        let gated = |tree: &Tree, prebuilt: Option<&str>, comment: &str| {
            while !open.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            fake_finish(tree, prebuilt, comment)
        };
        std::thread::scope(|scope| {
            let writers = Writers::start(scope, &gated);
            for i in 0..4 {
                writers
                    .submit_in_turn(tree_of(1), None, &format!("layer {i}"), None)
                    .unwrap();
            }
            // Two trees are being written (or about to be) and two wait: no room.
            let found_room = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|inner| {
                inner.spawn(|| {
                    writers.wait_for_room().unwrap();
                    found_room.store(true, std::sync::atomic::Ordering::SeqCst);
                });
                std::thread::sleep(std::time::Duration::from_millis(200));
                let too_early = found_room.load(std::sync::atomic::Ordering::SeqCst);
                // Opened before asserting: a failing test must not leave writers waiting.
                open.store(true, std::sync::atomic::Ordering::SeqCst);
                assert!(!too_early, "the build found room while two trees waited");
            });
            assert!(found_room.load(std::sync::atomic::Ordering::SeqCst));
            assert_eq!(writers.wait().unwrap().into_layers().len(), 4);
        });
    }

    #[test]
    fn what_runs_after_a_write_gets_its_layer_and_its_failure_is_the_builds() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = |fail: bool| -> AfterWrite {
            let seen = Arc::clone(&seen);
            Box::new(move |layer: &BuiltLayer| {
                if fail {
                    return Err(RealizeError::Deliver {
                        arch: "amd64".into(),
                        error: "the record could not be saved".into(),
                    });
                }
                seen.lock().unwrap().push(layer.diff_id.clone());
                Ok(())
            })
        };
        std::thread::scope(|scope| {
            let writers = Writers::start(scope, &fake_finish);
            let old = Some("sha256:old".to_string());
            writers
                .submit_in_turn(tree_of(1), old, "a", Some(record(false)))
                .unwrap();
            writers.wait().unwrap();
        });
        assert_eq!(*seen.lock().unwrap(), ["sha256:old"]);
        let result = std::thread::scope(|scope| {
            let writers = Writers::start(scope, &fake_finish);
            writers
                .submit_in_turn(tree_of(1), None, "a", Some(record(true)))
                .unwrap();
            writers.wait().map(Written::into_layers)
        });
        let error = result.expect_err("the failed record is the build's error");
        assert!(error.to_string().contains("could not be saved"), "{error}");
    }

    #[test]
    fn a_writer_that_panics_wakes_a_build_waiting_for_room_and_the_panic_reaches_it() {
        let panicking = |_: &Tree, _: Option<&str>, _: &str| -> Result<BuiltLayer, RealizeError> {
            panic!("a writer's bug")
        };
        let outcome = std::panic::catch_unwind(|| {
            std::thread::scope(|scope| {
                let writers = Writers::start(scope, &panicking);
                for i in 0..4 {
                    writers
                        .submit_in_turn(tree_of(1), None, &format!("layer {i}"), None)
                        .unwrap();
                }
                // Each writer dies on its first tree and two stay waiting: without the
                // writers marking the build stopped, this would wait for ever.
                writers.wait_for_room().unwrap();
                let _ = writers.wait();
            })
        });
        let panic = outcome.expect_err("the writer's panic reaches the build");
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"a writer's bug"));
    }
}
