//! Widgets more than one panel uses: a photo thumbnail from the shared pool, the colour of a
//! confidence figure, and an attention map painted over a photo.
//!
//! Panels import these from here, never from each other.

mod attention;
mod confidence;
mod thumbnail;

pub use attention::paint_attention;
pub use confidence::{confidence_color, confidence_shown_color};
pub use thumbnail::thumbnail_ui;
