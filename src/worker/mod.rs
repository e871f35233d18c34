//! The desktop app's worker: one background thread that owns the caption model and the compute
//! device, and runs the same library jobs ([`crate::jobs`]) as the command line.
//!
//! The UI thread never touches tensors. It sends [`Command`]s and receives [`Event`]s over
//! crossbeam channels; after each event the worker calls `ctx.request_repaint()`, so the UI
//! wakes only when there is news. Long jobs carry a [`CancelToken`] that the UI holds and the
//! job checks between batches, so Stop reaches a busy worker without queueing behind it.
//! Jobs that need no model (dataset import) run on a short-lived thread of their own, so they
//! never wait behind a training run.
//!
//! - `messages.rs`: [`Command`] and [`Event`];
//! - `thread.rs`: the thread, its queue, and the state it owns.

mod messages;
mod thread;

use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

pub use crate::jobs::{CancelToken, Job, JobError, ModelChoice, ModelEntry, TrainSettings};
pub use messages::{Alternative, CaptionOutput, Command, Event, ImageInput, WordScore};

/// Where the worker finds and keeps files.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Feature caches.
    pub cache_dir: PathBuf,
    /// Trained models, one folder each.
    pub models_dir: PathBuf,
}

/// The UI's handle on the worker thread.
pub struct Worker {
    commands: Sender<Command>,
    events: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
    /// Set when the app closes: running jobs stop at their next batch (training leaves a
    /// resumable checkpoint) so that closing never waits for a long job.
    abort: CancelToken,
}

impl Worker {
    /// Starts the worker thread.
    pub fn spawn(ctx: &egui::Context, config: WorkerConfig) -> std::io::Result<Worker> {
        let (command_tx, command_rx) = crossbeam_channel::unbounded();
        let (event_tx, event_rx) = crossbeam_channel::unbounded();
        let outbox = thread::Outbox {
            tx: event_tx,
            ctx: ctx.clone(),
        };
        let abort = CancelToken::new();
        let worker_abort = abort.clone();
        let thread = std::thread::Builder::new()
            .name("captioner-worker".into())
            .spawn(move || thread::run(command_rx, outbox, config, worker_abort))?;
        Ok(Worker {
            commands: command_tx,
            events: event_rx,
            thread: Some(thread),
            abort,
        })
    }

    /// Queues a command. Returns false when the worker thread is gone.
    pub fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }

    /// Events that arrived since the last call.
    pub fn poll(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.abort.cancel();
        let _ = self.commands.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::ImportOptions;
    use std::time::{Duration, Instant};

    fn worker(dir: &std::path::Path) -> (egui::Context, Worker) {
        let ctx = egui::Context::default();
        let w = Worker::spawn(
            &ctx,
            WorkerConfig {
                cache_dir: dir.join("cache"),
                models_dir: dir.join("models"),
            },
        )
        .unwrap();
        (ctx, w)
    }

    /// Waits for a matching event. The deadline only turns a hang into a failure: it is far
    /// beyond what the awaited work takes on any machine.
    fn wait_for(w: &Worker, mut pred: impl FnMut(&Event) -> bool) -> Event {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            for e in w.poll() {
                if pred(&e) {
                    return e;
                }
            }
            assert!(Instant::now() < deadline, "no matching event");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn imports_a_dataset() {
        let tmp = tempfile::tempdir().unwrap();
        let (_ctx, w) = worker(tmp.path());
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flickr8k_mini");
        assert!(w.send(Command::ImportDataset {
            dir,
            options: ImportOptions::default()
        }));
        let e = wait_for(&w, |e| {
            matches!(e, Event::DatasetImported { .. } | Event::Failed { .. })
        });
        match e {
            Event::DatasetImported { summary, .. } => assert!(summary.images > 0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn import_failure_keeps_its_cause() {
        let tmp = tempfile::tempdir().unwrap();
        let (_ctx, w) = worker(tmp.path());
        let missing = tmp.path().join("nope");
        assert!(w.send(Command::ImportDataset {
            dir: missing.clone(),
            options: ImportOptions::default()
        }));
        let e = wait_for(&w, |e| {
            matches!(e, Event::DatasetImported { .. } | Event::Failed { .. })
        });
        match e {
            Event::Failed { job, error } => {
                assert_eq!(job, Job::Import);
                let chain = error.chain();
                assert!(chain.len() >= 2, "{chain:?}");
                assert!(
                    chain[0].contains(&missing.display().to_string()),
                    "{chain:?}"
                );
                assert!(
                    error.report().contains("no such file"),
                    "{}",
                    error.report()
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
