//! The session file, written as you work: once typing pauses, at least every few seconds while
//! changes keep coming, in the background, atomically; and at once on close or before another
//! folder opens.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::BatchPanel;
use super::session::Session;
use crate::app::Shared;
use crate::app::tasks::{self, Pending};

/// How long the session waits for typing to pause before it is written to disk.
pub const PERSIST_DEBOUNCE: Duration = Duration::from_millis(400);
/// ... and the longest it waits while changes keep coming.
pub const PERSIST_MAX_DELAY: Duration = Duration::from_secs(3);

/// The app's folder for batch session files.
pub fn session_dir(shared: &Shared) -> PathBuf {
    shared.paths.data_dir.join("batch-sessions")
}

/// The session file being written in the background.
pub struct Persist {
    /// Session generation last written (or being written).
    pub written: u64,
    /// The generation seen last frame, and when it first changed since the last write.
    seen: u64,
    changed_at: Option<Instant>,
    last_change: Option<Instant>,
    pending: Option<Pending<Result<(), String>>>,
}

impl Persist {
    /// For a session of this generation, as it is on disk.
    pub fn new(generation: u64) -> Persist {
        Persist {
            written: generation,
            seen: generation,
            changed_at: None,
            last_change: None,
            pending: None,
        }
    }

    /// Notes the session's generation at `now`: a new one is a change.
    fn note(&mut self, generation: u64, now: Instant) {
        if generation != self.seen {
            self.seen = generation;
            self.last_change = Some(now);
            self.changed_at.get_or_insert(now);
        }
    }

    /// Whether the changes noted so far are due to be written at `now`: typing paused, or the
    /// first unwritten change is old enough.
    fn due(&self, now: Instant) -> bool {
        let quiet = self
            .last_change
            .is_none_or(|t| now.duration_since(t) >= PERSIST_DEBOUNCE);
        let overdue = self
            .changed_at
            .is_some_and(|t| now.duration_since(t) >= PERSIST_MAX_DELAY);
        quiet || overdue
    }
}

impl BatchPanel {
    /// Whether the session file on disk holds every change.
    pub fn session_persisted(&self) -> bool {
        match (&self.session, &self.persist) {
            (None, _) => true,
            (Some(s), Some(p)) => p.written == s.generation() && p.pending.is_none(),
            (Some(_), None) => false,
        }
    }

    /// Writes the session file once typing pauses (or at least every few seconds).
    pub(super) fn persist_debounced(&mut self, shared: &mut Shared) {
        let (Some(s), Some(p)) = (&self.session, &mut self.persist) else {
            return;
        };
        match tasks::take_ready(&mut p.pending) {
            Some(Ok(Ok(()))) => {}
            Some(Ok(Err(e)) | Err(e)) => {
                shared.status.error(e);
                // Try again on the next change.
                p.written = u64::MAX;
            }
            None => {}
        }
        let generation = s.generation();
        let now = Instant::now();
        p.note(generation, now);
        if generation == p.written || p.pending.is_some() {
            return;
        }
        if !p.due(now) {
            shared.ctx.request_repaint_after(PERSIST_DEBOUNCE);
            return;
        }
        let bytes = match s.to_json() {
            Ok(b) => b,
            Err(e) => {
                shared
                    .status
                    .error(format!("cannot save the batch session: {e}"));
                p.written = generation;
                return;
            }
        };
        let file = Session::file_for(&session_dir(shared), &s.key);
        p.written = generation;
        p.changed_at = None;
        match Pending::spawn(&shared.ctx, "save-session", move || {
            crate::paths::write_atomic(&file, &bytes)
                .map_err(|e| format!("{}: cannot save the batch session: {e}", file.display()))
        }) {
            Ok(pending) => p.pending = Some(pending),
            Err(e) => shared.status.error(e),
        }
    }

    /// Writes the session file now (on close, before opening another folder).
    pub fn persist_now(&mut self, shared: &mut Shared) {
        let (Some(s), Some(p)) = (&self.session, &mut self.persist) else {
            return;
        };
        if let Some(pending) = p.pending.take() {
            // Let the background write finish first, so it cannot land after this one.
            while matches!(pending.poll(), tasks::Poll::Waiting) {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        if p.written == s.generation() {
            return;
        }
        let file = Session::file_for(&session_dir(shared), &s.key);
        let result = s
            .to_json()
            .map_err(|e| e.to_string())
            .and_then(|b| crate::paths::write_atomic(&file, &b).map_err(|e| e.to_string()));
        match result {
            Ok(()) => p.written = s.generation(),
            Err(e) => shared.status.error(format!(
                "{}: cannot save the batch session: {e}",
                file.display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_changed_is_nothing_to_wait_for() {
        let p = Persist::new(4);
        assert!(p.due(Instant::now()));
        assert_eq!((p.written, p.seen), (4, 4));
    }

    #[test]
    fn a_change_waits_for_typing_to_pause() {
        let t0 = Instant::now();
        let mut p = Persist::new(1);
        p.note(2, t0);
        assert!(!p.due(t0));
        assert!(!p.due(t0 + PERSIST_DEBOUNCE / 2));
        assert!(p.due(t0 + PERSIST_DEBOUNCE));
    }

    #[test]
    fn changes_that_keep_coming_are_written_after_the_longest_delay() {
        let t0 = Instant::now();
        let mut p = Persist::new(1);
        let step = PERSIST_DEBOUNCE / 2;
        let mut now = t0;
        let mut generation = 1;
        // A change every half debounce: never quiet.
        while now.duration_since(t0) < PERSIST_MAX_DELAY {
            generation += 1;
            p.note(generation, now);
            assert!(!p.due(now), "written after {:?}", now.duration_since(t0));
            now += step;
        }
        generation += 1;
        p.note(generation, now);
        assert!(p.due(now));
    }

    #[test]
    fn the_same_generation_is_no_change() {
        let t0 = Instant::now();
        let mut p = Persist::new(3);
        p.note(3, t0);
        assert_eq!(p.last_change, None);
        assert_eq!(p.changed_at, None);
    }
}
