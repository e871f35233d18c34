//! The colour of a confidence or probability figure.

/// Green for confident captions, through yellow, to red.
pub fn confidence_color(p: f32) -> egui::Color32 {
    let p = p.clamp(0.0, 1.0);
    if p >= 0.5 {
        let t = (p - 0.5) * 2.0;
        egui::Color32::from_rgb(
            (220.0 * (1.0 - t) + 60.0 * t) as u8,
            (190.0 * (1.0 - t) + 180.0 * t) as u8,
            70,
        )
    } else {
        let t = p * 2.0;
        egui::Color32::from_rgb(225, (80.0 * (1.0 - t) + 190.0 * t) as u8, 70)
    }
}

/// The colour of a confidence figure: by its value, or grey when the model flagged the caption
/// for review (a photo unlike the training photos can get a high figure that the warning
/// overrules: a green 93% beside "review" would say the opposite of the warning).
pub fn confidence_shown_color(ui: &egui::Ui, p: f32, flagged: bool) -> egui::Color32 {
    if flagged {
        ui.visuals().weak_text_color()
    } else {
        confidence_color(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::Color32;

    #[test]
    fn confident_is_green_doubtful_is_red_and_the_middle_yellow() {
        assert_eq!(confidence_color(1.0), Color32::from_rgb(60, 180, 70));
        assert_eq!(confidence_color(0.5), Color32::from_rgb(220, 190, 70));
        assert_eq!(confidence_color(0.0), Color32::from_rgb(225, 80, 70));
    }

    #[test]
    fn figures_outside_zero_to_one_are_clamped() {
        assert_eq!(confidence_color(1.7), confidence_color(1.0));
        assert_eq!(confidence_color(-0.2), confidence_color(0.0));
    }

    #[test]
    fn more_confidence_is_never_redder() {
        let mut last = confidence_color(0.0);
        for k in 1..=20 {
            let c = confidence_color(k as f32 / 20.0);
            // Red falls (or stays) and green rises up to the middle, then red falls.
            assert!(c.r() <= last.r(), "{k}: {c:?} after {last:?}");
            last = c;
        }
    }
}
