//! Thumbnails decoded off the UI thread, on a small pool, with a bounded cache of textures.
//!
//! Each frame the panels ask [`Thumbnails::get`] for the images they are about to draw. What is
//! not cached yet is queued at the end of the frame ([`Thumbnails::end_frame`]); the queue is
//! replaced each frame by what is visible now, so scrolling quickly through 10,000 photos never
//! leaves a backlog of thumbnails nobody will see. The pool's threads decode, shrink and send
//! the pixels back, and ask for a repaint; the UI thread only uploads small textures. The
//! cache keeps at most `capacity` textures and drops the least recently drawn ones.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crossbeam_channel::{Receiver, Sender};

/// Longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 160;

/// What [`Thumbnails::get`] has for one image.
pub enum Thumb<'a> {
    Ready(&'a egui::TextureHandle),
    Loading,
    Failed(&'a str),
}

enum Slot {
    /// Queued or being decoded.
    Pending,
    Ready {
        texture: egui::TextureHandle,
        last_used: u64,
    },
    Failed {
        message: String,
        last_used: u64,
    },
}

struct Queue {
    paths: Mutex<VecDeque<PathBuf>>,
    wake: Condvar,
    shutdown: AtomicBool,
}

type Decoded = (PathBuf, Result<egui::ColorImage, String>);

pub struct Thumbnails {
    queue: Arc<Queue>,
    results: Receiver<Decoded>,
    slots: HashMap<PathBuf, Slot>,
    /// Asked for this frame and not cached, in the order asked.
    wanted: Vec<PathBuf>,
    frame: u64,
    capacity: usize,
}

impl Thumbnails {
    /// Starts `threads` decoding threads; keeps at most `capacity` textures.
    pub fn new(ctx: &egui::Context, threads: usize, capacity: usize) -> Thumbnails {
        let queue = Arc::new(Queue {
            paths: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            let tx = tx.clone();
            let ctx = ctx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("thumbnails-{i}"))
                .spawn(move || decode_loop(&queue, &tx, &ctx));
            if let Err(e) = spawned {
                // Fewer threads only make thumbnails slower; with none, every request fails
                // below with this message rather than waiting forever.
                log_spawn_failure(&e);
            }
        }
        Thumbnails {
            queue,
            results: rx,
            slots: HashMap::new(),
            wanted: Vec::new(),
            frame: 0,
            capacity: capacity.max(16),
        }
    }

    /// The thumbnail of `path`, if decoded; otherwise it is requested for decoding.
    pub fn get(&mut self, path: &Path) -> Thumb<'_> {
        let frame = self.frame;
        match self.slots.get_mut(path) {
            None => {
                self.wanted.push(path.to_path_buf());
                Thumb::Loading
            }
            Some(Slot::Pending) => Thumb::Loading,
            Some(Slot::Ready { texture, last_used }) => {
                *last_used = frame;
                Thumb::Ready(texture)
            }
            Some(Slot::Failed { message, last_used }) => {
                *last_used = frame;
                Thumb::Failed(message)
            }
        }
    }

    /// Forgets every cached thumbnail (e.g. after files changed on disk).
    pub fn clear(&mut self) {
        self.slots.retain(|_, s| matches!(s, Slot::Pending));
    }

    /// Number of textures held.
    pub fn cached(&self) -> usize {
        self.slots
            .values()
            .filter(|s| matches!(s, Slot::Ready { .. }))
            .count()
    }

    /// Takes finished thumbnails, queues this frame's requests and trims the cache. Call once
    /// per frame, after the panels are drawn.
    pub fn end_frame(&mut self, ctx: &egui::Context) {
        let frame = self.frame;
        for (path, result) in self.results.try_iter() {
            let slot = match result {
                Ok(image) => {
                    let name = format!("thumb:{}", path.display());
                    Slot::Ready {
                        texture: ctx.load_texture(name, image, egui::TextureOptions::LINEAR),
                        last_used: frame,
                    }
                }
                Err(message) => Slot::Failed {
                    message,
                    last_used: frame,
                },
            };
            self.slots.insert(path, slot);
        }

        let wanted = std::mem::take(&mut self.wanted);
        {
            let mut queue = match self.queue.paths.lock() {
                Ok(q) => q,
                Err(poisoned) => poisoned.into_inner(),
            };
            // Requests from earlier frames that no thread has taken yet are dropped: if they
            // are still on screen they were asked for again this frame.
            for stale in queue.drain(..) {
                if matches!(self.slots.get(&stale), Some(Slot::Pending)) {
                    self.slots.remove(&stale);
                }
            }
            for path in wanted {
                if !self.slots.contains_key(&path) {
                    self.slots.insert(path.clone(), Slot::Pending);
                    queue.push_back(path);
                }
            }
        }
        self.queue.wake.notify_all();
        self.evict();
        self.frame += 1;
    }

    /// Drops the least recently drawn thumbnails beyond the capacity; never one drawn this
    /// frame.
    fn evict(&mut self) {
        let held = self
            .slots
            .values()
            .filter(|s| !matches!(s, Slot::Pending))
            .count();
        if held <= self.capacity {
            return;
        }
        let mut ages: Vec<(u64, PathBuf)> = self
            .slots
            .iter()
            .filter_map(|(p, s)| match s {
                Slot::Ready { last_used, .. } | Slot::Failed { last_used, .. } => {
                    Some((*last_used, p.clone()))
                }
                Slot::Pending => None,
            })
            .collect();
        ages.sort_unstable_by_key(|(age, _)| *age);
        // Trim to 90% so eviction does not run every frame once the cache is full.
        let target = self.capacity * 9 / 10;
        let excess = held.saturating_sub(target);
        for (age, path) in ages.into_iter().take(excess) {
            if age >= self.frame {
                break;
            }
            self.slots.remove(&path);
        }
    }
}

impl Drop for Thumbnails {
    fn drop(&mut self) {
        self.queue.shutdown.store(true, Ordering::Relaxed);
        self.queue.wake.notify_all();
    }
}

fn log_spawn_failure(e: &std::io::Error) {
    eprintln!("captioner: cannot start a thumbnail thread: {e}");
}

fn decode_loop(queue: &Queue, tx: &Sender<Decoded>, ctx: &egui::Context) {
    loop {
        let path = {
            let mut paths = match queue.paths.lock() {
                Ok(q) => q,
                Err(poisoned) => poisoned.into_inner(),
            };
            loop {
                if queue.shutdown.load(Ordering::Relaxed) {
                    return;
                }
                if let Some(p) = paths.pop_front() {
                    break p;
                }
                paths = match queue.wake.wait(paths) {
                    Ok(q) => q,
                    Err(poisoned) => poisoned.into_inner(),
                };
            }
        };
        let result = decode_thumbnail(&path, THUMBNAIL_SIDE);
        if tx.send((path, result)).is_err() {
            return;
        }
        ctx.request_repaint();
    }
}

/// Decodes an image file and shrinks it to fit in a `side` x `side` square, through the
/// encoder's loader ([`captioner::encoder::image_io::load_thumbnail`]): the same formats, EXIF
/// orientation, size limits (an oversized image is reported, not decoded) and messages as
/// captioning.
pub fn decode_thumbnail(path: &Path, side: u32) -> Result<egui::ColorImage, String> {
    use captioner::encoder::image_io::{DecodeLimits, load_thumbnail};
    let rgba = load_thumbnail(path, side, &DecodeLimits::default()).map_err(|e| e.to_string())?;
    let size = [rgba.width() as usize, rgba.height() as usize];
    Ok(egui::ColorImage::from_rgba_unmultiplied(
        size,
        rgba.as_raw(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/sidecar_mini")
            .join(name)
    }

    #[test]
    fn decodes_and_shrinks() {
        let img = decode_thumbnail(&fixture("dog.jpg"), 64).unwrap();
        assert!(img.size[0] <= 64 && img.size[1] <= 64);
        assert!(img.size[0] == 64 || img.size[1] == 64);
    }

    #[test]
    fn bad_file_is_an_error_not_a_panic() {
        let err = decode_thumbnail(&fixture("dog.txt"), 64).unwrap_err();
        assert!(err.contains("dog.txt is not an image"), "{err}");
        let err = decode_thumbnail(&fixture("no-such.jpg"), 64).unwrap_err();
        assert!(err.contains("not found"), "{err}");
    }

    #[test]
    fn pool_delivers_and_cache_stays_bounded() {
        let ctx = egui::Context::default();
        let mut thumbs = Thumbnails::new(&ctx, 2, 16);
        let dog = fixture("dog.jpg");
        assert!(matches!(thumbs.get(&dog), Thumb::Loading));
        thumbs.end_frame(&ctx);
        // A guard against a hang only: the loop waits for the thumbnail, however slow.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
        loop {
            thumbs.end_frame(&ctx);
            if matches!(thumbs.get(&dog), Thumb::Ready(_)) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "thumbnail never arrived"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // Many distinct failing paths: each ends as a cached failure, and the cache trims.
        for round in 0..4 {
            for i in 0..20 {
                let _ = thumbs.get(&PathBuf::from(format!("/nonexistent/{round}/{i}.jpg")));
            }
            thumbs.end_frame(&ctx);
            std::thread::sleep(std::time::Duration::from_millis(50));
            thumbs.end_frame(&ctx);
        }
        // Thumbnails that arrived in a frame count as used in it; the next frame trims them.
        thumbs.end_frame(&ctx);
        let held = thumbs
            .slots
            .values()
            .filter(|s| !matches!(s, Slot::Pending))
            .count();
        assert!(held <= 16, "cache holds {held}");
    }
}
