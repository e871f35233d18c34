//! Fuzz target: the app's saved state (eframe's `app.ron`), restored exactly as
//! `CaptionerApp::new` restores it (`eframe::get_value::<Panels>`). A damaged file gives the
//! default settings, never a panic.
#![no_main]

use captioner_app::Panels;
use libfuzzer_sys::fuzz_target;

struct Saved(String);

impl eframe::Storage for Saved {
    fn get_string(&self, _key: &str) -> Option<String> {
        Some(self.0.clone())
    }

    fn set_string(&mut self, _key: &str, _value: String) {}

    fn remove_string(&mut self, _key: &str) {}

    fn flush(&mut self) {}
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let saved = Saved(text.to_string());
    if let Some(panels) = eframe::get_value::<Panels>(&saved, eframe::APP_KEY) {
        // What was restored can be saved again.
        let mut out = Saved(String::new());
        eframe::set_value(&mut out, eframe::APP_KEY, &panels);
    }
});
