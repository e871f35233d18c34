//! Attention maps made visible: where an attention decoder looked for each word, smoothly
//! upsampled over the photo with a colour scale. Used by the Caption panel, the Batch panel's
//! preview and `captioner caption --attention DIR` (one PNG per word).
//!
//! The encoder sees the whole photo squashed to a square (no crop), so the map's cells cover
//! the whole photo, whatever its shape.

use std::path::{Path, PathBuf};

use crate::decoder::AttentionMaps;

/// How strongly the heat colours cover the photo where the attention is highest.
pub const OPACITY: f32 = 0.6;

/// The map of word `word` upsampled to `width` x `height` with bilinear interpolation between
/// cell centres, scaled so its largest cell is 1 (row-major). Empty when the word has no map.
pub fn upsample(maps: &AttentionMaps, word: usize, width: usize, height: usize) -> Vec<f32> {
    let Some(map) = maps.words.get(word) else {
        return Vec::new();
    };
    let (rows, cols) = (maps.rows, maps.cols);
    if rows == 0 || cols == 0 || map.len() != rows * cols || width == 0 || height == 0 {
        return Vec::new();
    }
    let max = map.iter().copied().fold(0.0f32, f32::max);
    let scale = if max > 0.0 { 1.0 / max } else { 0.0 };
    // For each output column (row): the two cells around it and the weight of the second.
    let axis = |n_out: usize, n_cells: usize| -> Vec<(usize, usize, f32)> {
        (0..n_out)
            .map(|i| {
                let pos = ((i as f32 + 0.5) / n_out as f32 * n_cells as f32 - 0.5)
                    .clamp(0.0, (n_cells - 1) as f32);
                let lo = pos.floor() as usize;
                let hi = (lo + 1).min(n_cells - 1);
                (lo, hi, pos - lo as f32)
            })
            .collect()
    };
    let xs = axis(width, cols);
    let ys = axis(height, rows);
    let mut out = Vec::with_capacity(width * height);
    for &(y0, y1, fy) in &ys {
        for &(x0, x1, fx) in &xs {
            let top = map[y0 * cols + x0] * (1.0 - fx) + map[y0 * cols + x1] * fx;
            let bottom = map[y1 * cols + x0] * (1.0 - fx) + map[y1 * cols + x1] * fx;
            out.push((top * (1.0 - fy) + bottom * fy) * scale);
        }
    }
    out
}

/// The colour scale, from dark blue (least attention) through magenta and orange to pale
/// yellow (most), like matplotlib's "inferno" but brighter at the low end.
pub fn color(t: f32) -> [u8; 3] {
    const STOPS: [(f32, [f32; 3]); 5] = [
        (0.0, [20.0, 11.0, 52.0]),
        (0.3, [120.0, 28.0, 109.0]),
        (0.55, [205.0, 60.0, 78.0]),
        (0.8, [250.0, 150.0, 30.0]),
        (1.0, [252.0, 255.0, 164.0]),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    for w in STOPS.windows(2) {
        let ((a, ca), (b, cb)) = (w[0], w[1]);
        if t <= b {
            let f = (t - a) / (b - a);
            return [0, 1, 2].map(|i| (ca[i] + (cb[i] - ca[i]) * f).round() as u8);
        }
    }
    [252, 255, 164]
}

/// The photo (`rgb`, `width` x `height`, 3 bytes a pixel) with word `word`'s map laid over it:
/// the heat colour blended in by how much attention each pixel got, so the looked-at parts
/// glow and the rest is dimmed. `None` when the word has no map or the sizes disagree.
pub fn overlay(
    rgb: &[u8],
    width: usize,
    height: usize,
    maps: &AttentionMaps,
    word: usize,
) -> Option<Vec<u8>> {
    if rgb.len() != width * height * 3 {
        return None;
    }
    let heat = upsample(maps, word, width, height);
    if heat.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(rgb.len());
    for (px, &h) in rgb.chunks_exact(3).zip(&heat) {
        let c = color(h);
        // Dim where the decoder did not look; colour where it did.
        let keep = 0.6 + 0.4 * h;
        let a = OPACITY * h;
        for i in 0..3 {
            let base = px[i] as f32 * keep;
            out.push(
                (base * (1.0 - a) + c[i] as f32 * a)
                    .round()
                    .clamp(0.0, 255.0) as u8,
            );
        }
    }
    Some(out)
}

/// The map alone as a small image (`side` x `side`, RGB), for a row of per-word thumbnails.
pub fn thumbnail(maps: &AttentionMaps, word: usize, side: usize) -> Option<Vec<u8>> {
    let heat = upsample(maps, word, side, side);
    (!heat.is_empty()).then(|| heat.iter().flat_map(|&h| color(h)).collect())
}

/// Writes one PNG per caption word into `dir` (made if missing): the photo with the word's
/// map laid over it, named `STEM-NN-WORD.png` (NN: the word's position from 01). Each file is
/// written atomically. Returns the files written.
pub fn write_word_pngs(
    dir: &Path,
    stem: &str,
    photo: &image::RgbImage,
    words: &[String],
    maps: &AttentionMaps,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    // At most 512 pixels on the longer side: enough to see, small to write.
    let (w, h) = photo.dimensions();
    let scale = (512.0 / w.max(h).max(1) as f32).min(1.0);
    let (pw, ph) = (
        ((w as f32 * scale).round() as u32).max(1),
        ((h as f32 * scale).round() as u32).max(1),
    );
    let small = if (pw, ph) == (w, h) {
        photo.clone()
    } else {
        image::imageops::resize(photo, pw, ph, image::imageops::FilterType::Triangle)
    };
    let mut written = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let Some(rgb) = overlay(small.as_raw(), pw as usize, ph as usize, maps, i) else {
            return Err(format!("no attention map for word {} ({word})", i + 1));
        };
        let Some(img) = image::RgbImage::from_raw(pw, ph, rgb) else {
            return Err(format!(
                "attention image of word {} has the wrong size",
                i + 1
            ));
        };
        let safe: String = word
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { '_' })
            .collect();
        let path = dir.join(format!("{stem}-{:02}-{safe}.png", i + 1));
        let mut bytes = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| format!("{}: cannot encode: {e}", path.display()))?;
        crate::files::write_atomic(&path, &bytes)
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps() -> AttentionMaps {
        // 2x2 cells: all attention on the top-left cell for word 0, uniform for word 1.
        AttentionMaps {
            rows: 2,
            cols: 2,
            words: vec![vec![1.0, 0.0, 0.0, 0.0], vec![0.25; 4]],
        }
    }

    #[test]
    fn upsampling_is_smooth_and_peaks_where_the_cell_is() {
        let m = maps();
        let up = upsample(&m, 0, 8, 8);
        assert_eq!(up.len(), 64);
        // The top-left corner is the peak; the bottom-right is zero; values fall in between.
        assert_eq!(up[0], 1.0);
        assert_eq!(up[63], 0.0);
        let row0: Vec<f32> = up[..8].to_vec();
        assert!(row0.windows(2).all(|w| w[0] >= w[1]), "{row0:?}");
        // A uniform map is uniform everywhere (scaled to 1).
        assert!(
            upsample(&m, 1, 5, 3)
                .iter()
                .all(|&v| (v - 1.0).abs() < 1e-6)
        );
        // No map for a word past the end, or for broken maps.
        assert!(upsample(&m, 2, 4, 4).is_empty());
        let broken = AttentionMaps {
            rows: 3,
            cols: 3,
            words: vec![vec![1.0; 4]],
        };
        assert!(upsample(&broken, 0, 4, 4).is_empty());
    }

    #[test]
    fn colour_scale_runs_dark_to_bright() {
        let lum = |c: [u8; 3]| c.iter().map(|&v| v as u32).sum::<u32>();
        let steps: Vec<u32> = (0..=10).map(|i| lum(color(i as f32 / 10.0))).collect();
        assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{steps:?}");
        assert_eq!(color(-1.0), color(0.0));
        assert_eq!(color(f32::NAN), color(0.0));
    }

    #[test]
    fn overlay_brightens_where_the_decoder_looked() {
        let m = maps();
        let grey = vec![128u8; 8 * 8 * 3];
        let out = overlay(&grey, 8, 8, &m, 0).unwrap();
        let lum = |i: usize| out[i * 3..i * 3 + 3].iter().map(|&v| v as u32).sum::<u32>();
        assert!(lum(0) > lum(63) + 100, "{} vs {}", lum(0), lum(63));
        assert!(overlay(&grey, 4, 4, &m, 0).is_none());
    }

    #[test]
    fn one_png_per_word() {
        let tmp = tempfile::tempdir().unwrap();
        let photo = image::RgbImage::from_pixel(30, 20, image::Rgb([90, 120, 60]));
        let words = vec!["a".to_string(), "dog's".to_string()];
        let files = write_word_pngs(tmp.path(), "p", &photo, &words, &maps()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["p-01-a.png", "p-02-dog_s.png"]);
        let img = image::open(&files[0]).unwrap();
        assert_eq!((img.width(), img.height()), (30, 20));
        // A caption longer than its maps is refused.
        let three = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert!(write_word_pngs(tmp.path(), "q", &photo, &three, &maps()).is_err());
    }
}
