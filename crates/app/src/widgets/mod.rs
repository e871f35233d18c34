//! Widgets more than one panel uses: a photo thumbnail from the shared pool, the colour of a
//! confidence figure, an attention map painted over a photo, the mark of a caption word the
//! photo shows little sign of, and the typed-path prompt where no file dialog can open.
//!
//! Panels import these from here, never from each other.

mod attention;
mod confidence;
mod grounding;
mod thumbnail;
mod typed_path;

pub use attention::paint_attention;
pub use confidence::{confidence_color, confidence_shown_color};
pub use grounding::{DOUBT_LEGEND, grounding_hover, grounding_of, paint_doubt};
pub use thumbnail::thumbnail_ui;
pub use typed_path::TypedPathPrompt;
