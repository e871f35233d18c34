//! A photo's thumbnail from the shared pool ([`Thumbnails`]).

use std::path::Path;

use crate::thumbnails::{Thumb, Thumbnails};

/// A thumbnail in a square of side `side`, or a placeholder while it loads. Returns where the
/// image was painted, once it is loaded.
pub fn thumbnail_ui(
    ui: &mut egui::Ui,
    thumbs: &mut Thumbnails,
    path: &Path,
    side: f32,
) -> Option<egui::Rect> {
    let size = egui::vec2(side, side);
    match thumbs.get(path) {
        Thumb::Ready(texture) => {
            let tex_size = texture.size_vec2();
            let scale = (side / tex_size.x).min(side / tex_size.y);
            let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
            let image_rect = egui::Rect::from_center_size(rect.center(), tex_size * scale);
            egui::Image::new(texture).paint_at(ui, image_rect);
            return Some(image_rect);
        }
        Thumb::Loading => {
            let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
            ui.painter()
                .rect_filled(rect, 4.0, ui.visuals().faint_bg_color);
        }
        Thumb::Failed(message) => {
            let message = message.to_string();
            let (rect, response) = ui.allocate_exact_size(size, egui::Sense::hover());
            ui.painter()
                .rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
            ui.painter().text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "unreadable",
                egui::FontId::proportional(12.0),
                ui.visuals().error_fg_color,
            );
            response.on_hover_text(message);
        }
    }
    None
}
