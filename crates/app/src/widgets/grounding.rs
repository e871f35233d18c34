//! Per-word grounding on a caption: a word the photo shows little sign of gets a dotted
//! underline, and pointing at it says why ("little sign of a person in this photo").

use captioner::trust::grounding::WordGrounding;

/// The grounding of the caption's word at `position`, if the caption has one for it.
pub fn grounding_of(grounding: &[WordGrounding], position: usize) -> Option<&WordGrounding> {
    grounding.iter().find(|g| g.position == position)
}

/// What pointing at a word says about its support in the photo.
pub fn grounding_hover(g: &WordGrounding) -> String {
    let support = (g.support * 100.0).round();
    if g.weak {
        let note = g.note.clone().unwrap_or_else(|| {
            format!("little sign of \"{}\" in this photo", g.word.to_lowercase())
        });
        format!("{note} (support {support:.0}%): doubt this word")
    } else {
        format!("the photo supports this word (support {support:.0}%)")
    }
}

/// Paints a dotted underline under a word's rectangle: the mark of a word to doubt.
pub fn paint_doubt(painter: &egui::Painter, rect: egui::Rect, color: egui::Color32) {
    let y = rect.bottom() - 1.0;
    let mut x = rect.left() + 1.5;
    while x <= rect.right() - 1.0 {
        painter.circle_filled(egui::pos2(x, y), 1.3, color);
        x += 4.5;
    }
}

/// The one-line explanation of the mark, for under a caption that has weak words.
pub const DOUBT_LEGEND: &str =
    "Dotted underline: the photo shows little sign of this word; point at it to see why.";

#[cfg(test)]
mod tests {
    use super::*;

    fn word(position: usize, word: &str, support: f32, weak: bool) -> WordGrounding {
        WordGrounding {
            position,
            word: word.to_string(),
            support,
            weak,
            note: weak.then(|| format!("little sign of a {word} in this photo")),
        }
    }

    #[test]
    fn finds_a_word_by_its_position() {
        let g = vec![word(1, "man", 0.03, true), word(4, "grass", 0.9, false)];
        assert_eq!(grounding_of(&g, 4).map(|g| g.word.as_str()), Some("grass"));
        assert!(grounding_of(&g, 0).is_none());
    }

    #[test]
    fn weak_words_say_why_and_supported_ones_say_so() {
        assert_eq!(
            grounding_hover(&word(1, "dog", 0.031, true)),
            "little sign of a dog in this photo (support 3%): doubt this word"
        );
        assert_eq!(
            grounding_hover(&word(4, "grass", 0.9, false)),
            "the photo supports this word (support 90%)"
        );
        let mut no_note = word(2, "Kite", 0.01, true);
        no_note.note = None;
        assert_eq!(
            grounding_hover(&no_note),
            "little sign of \"kite\" in this photo (support 1%): doubt this word"
        );
    }
}
