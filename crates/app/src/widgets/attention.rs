//! An attention map painted over a photo.

/// Paints word `word`'s attention map over `rect` (where the photo is drawn): a mesh through
/// the cell centres, coloured by the colour scale with the GPU interpolating between them, so
/// the map is smooth at any size. Low attention dims the photo, high attention glows.
pub fn paint_attention(
    painter: &egui::Painter,
    rect: egui::Rect,
    maps: &captioner::decoder::AttentionMaps,
    word: usize,
) {
    let (rows, cols) = (maps.rows, maps.cols);
    let Some(map) = maps
        .words
        .get(word)
        .filter(|m| m.len() == rows * cols && rows * cols > 0)
    else {
        return;
    };
    let max = map.iter().copied().fold(0.0f32, f32::max).max(1e-12);
    // Vertex lines: the photo's edges and the cell centres between them.
    let xs: Vec<f32> = std::iter::once(0.0)
        .chain((0..cols).map(|c| (c as f32 + 0.5) / cols as f32))
        .chain(std::iter::once(1.0))
        .collect();
    let ys: Vec<f32> = std::iter::once(0.0)
        .chain((0..rows).map(|r| (r as f32 + 0.5) / rows as f32))
        .chain(std::iter::once(1.0))
        .collect();
    let value = |vy: usize, vx: usize| {
        let r = vy.saturating_sub(1).min(rows - 1);
        let c = vx.saturating_sub(1).min(cols - 1);
        map[r * cols + c] / max
    };
    let mut mesh = egui::Mesh::default();
    for (vy, fy) in ys.iter().enumerate() {
        for (vx, fx) in xs.iter().enumerate() {
            let t = value(vy, vx);
            let c = captioner::attention_view::color(t);
            let a = captioner::attention_view::OPACITY * (0.15 + 0.85 * t);
            let colour =
                egui::Color32::from_rgba_unmultiplied(c[0], c[1], c[2], (a * 255.0).round() as u8);
            mesh.colored_vertex(
                egui::pos2(
                    rect.left() + rect.width() * fx,
                    rect.top() + rect.height() * fy,
                ),
                colour,
            );
        }
    }
    let w = xs.len() as u32;
    for vy in 0..ys.len() as u32 - 1 {
        for vx in 0..w - 1 {
            let i = vy * w + vx;
            mesh.add_triangle(i, i + 1, i + w);
            mesh.add_triangle(i + 1, i + w + 1, i + w);
        }
    }
    painter.add(egui::Shape::mesh(mesh));
}
