//! The session file, written as you work: once typing pauses, at least every few seconds while
//! changes keep coming, in the background, atomically; and at once on close or before another
//! folder opens. A write that fails (a full disk) is retried after a growing delay, not on
//! every frame; the failure is logged once and shown under the toolbar until a write succeeds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::BatchPanel;
use super::session::Session;
use crate::Shared;
use crate::tasks::{self, Pending};

/// How long the session waits for typing to pause before it is written to disk.
pub const PERSIST_DEBOUNCE: Duration = Duration::from_millis(400);
/// ... and the longest it waits while changes keep coming.
pub const PERSIST_MAX_DELAY: Duration = Duration::from_secs(3);

/// How long the first retry of a failed session write waits; each further failure doubles it.
pub const PERSIST_RETRY_FIRST: Duration = Duration::from_secs(2);
/// ... up to this.
pub const PERSIST_RETRY_MAX: Duration = Duration::from_secs(60);

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
    /// Failed writes in a row, the last one's message, and when the next try is allowed.
    failures: u32,
    failure: Option<String>,
    retry_at: Option<Instant>,
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
            failures: 0,
            failure: None,
            retry_at: None,
        }
    }

    /// Notes a failed write at `now`: the next try waits (longer after each failure in a row).
    /// Returns whether the failure is to be logged: the first of a run of failures only.
    fn failed(&mut self, error: String, now: Instant) -> bool {
        self.failures = self.failures.saturating_add(1);
        let delay = PERSIST_RETRY_FIRST
            .saturating_mul(1 << (self.failures - 1).min(16))
            .min(PERSIST_RETRY_MAX);
        self.retry_at = Some(now + delay);
        // Written again (with the latest changes) once the delay is over.
        self.written = u64::MAX;
        self.changed_at.get_or_insert(now);
        let first = self.failure.is_none();
        self.failure = Some(error);
        first
    }

    /// Notes a write that worked. Returns whether it ends a run of failures.
    fn succeeded(&mut self) -> bool {
        self.failures = 0;
        self.retry_at = None;
        self.failure.take().is_some()
    }

    /// How long until a retry after a failure is allowed (`None`: not waiting for one).
    fn retry_in(&self, now: Instant) -> Option<Duration> {
        self.retry_at
            .map(|t| t.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Whether a write is to start at `now` for the session at `generation` (noting it first).
    fn should_write(&mut self, generation: u64, now: Instant) -> bool {
        self.note(generation, now);
        generation != self.written
            && self.pending.is_none()
            && self.retry_in(now).is_none()
            && self.due(now)
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

    /// Why the session file could not be written, while it cannot.
    pub fn session_save_failure(&self) -> Option<&str> {
        self.persist.as_ref()?.failure.as_deref()
    }

    /// Writes the session file once typing pauses (or at least every few seconds).
    pub(super) fn persist_debounced(&mut self, shared: &mut Shared) {
        let (Some(s), Some(p)) = (&self.session, &mut self.persist) else {
            return;
        };
        let now = Instant::now();
        // Said once per run of failures, and once when writing works again.
        let said = match tasks::take_ready(&mut p.pending) {
            Some(Ok(Ok(()))) => p
                .succeeded()
                .then(|| Ok("The batch session is saved again.".to_string())),
            Some(Ok(Err(e)) | Err(e)) => p.failed(e.clone(), now).then(|| {
                Err(format!(
                    "{e} (retried every {} s at most; captions are kept in memory)",
                    PERSIST_RETRY_MAX.as_secs()
                ))
            }),
            None => None,
        };
        match said {
            Some(Ok(info)) => shared.status.info(info),
            Some(Err(error)) => shared.status.error(error),
            None => {}
        }
        let generation = s.generation();
        if !p.should_write(generation, now) {
            if generation != p.written && p.pending.is_none() {
                let wait = p.retry_in(now).unwrap_or(PERSIST_DEBOUNCE);
                shared.ctx.request_repaint_after(wait);
            }
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
            captioner::paths::write_atomic(&file, &bytes)
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
            .and_then(|b| captioner::paths::write_atomic(&file, &b).map_err(|e| e.to_string()));
        match result {
            Ok(()) => {
                p.written = s.generation();
                p.succeeded();
            }
            Err(e) => {
                let e = format!("{}: cannot save the batch session: {e}", file.display());
                shared.status.error(e.clone());
                p.failed(e, Instant::now());
            }
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

    /// Frames at 60 per second for `seconds`, one change at the start, every write failing:
    /// how many writes start and how many failures are logged.
    fn failing_frames(seconds: u64) -> (usize, usize) {
        let t0 = Instant::now();
        let mut p = Persist::new(1);
        let frame = Duration::from_micros(16_667);
        let (mut attempts, mut logged) = (0, 0);
        let mut now = t0;
        while now.duration_since(t0) < Duration::from_secs(seconds) {
            if p.should_write(2, now) {
                attempts += 1;
                p.written = 2;
                // The write fails at once.
                if p.failed("disk full".into(), now) {
                    logged += 1;
                }
            }
            now += frame;
        }
        (attempts, logged)
    }

    #[test]
    fn a_failing_write_is_retried_after_a_growing_delay_and_logged_once() {
        // 2 + 4 + 8 + 16 + 32 s of back-off, then once a minute: 7 writes in 2 minutes
        // (counting the first), not one a frame.
        let (attempts, logged) = failing_frames(120);
        assert!((5..=8).contains(&attempts), "{attempts} writes");
        assert_eq!(logged, 1);
    }

    #[test]
    fn a_write_that_works_ends_the_back_off() {
        let t0 = Instant::now();
        let mut p = Persist::new(1);
        p.note(2, t0 - PERSIST_DEBOUNCE);
        assert!(p.should_write(2, t0));
        assert!(p.failed("disk full".into(), t0));
        assert!(!p.should_write(2, t0 + Duration::from_secs(1)));
        assert_eq!(p.failure.as_deref(), Some("disk full"));
        let later = t0 + PERSIST_RETRY_FIRST;
        assert!(p.should_write(2, later));
        p.written = 2;
        assert!(p.succeeded());
        assert_eq!(p.failure, None);
        // The next failure is logged again, and waits the first delay only.
        assert!(p.should_write(3, later + PERSIST_MAX_DELAY));
        assert!(p.failed("disk full".into(), later + PERSIST_MAX_DELAY));
        assert_eq!(
            p.retry_in(later + PERSIST_MAX_DELAY),
            Some(PERSIST_RETRY_FIRST)
        );
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
