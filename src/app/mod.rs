//! The desktop app (eframe/egui).

/// Opens the desktop window and runs until it is closed.
pub fn run() -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("captioner")
            .with_inner_size([1100.0, 760.0]),
        ..Default::default()
    };
    eframe::run_native(
        "captioner",
        options,
        Box::new(|_cc| Ok(Box::new(CaptionerApp::default()))),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}

#[derive(Default)]
pub struct CaptionerApp {}

impl eframe::App for CaptionerApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading("captioner");
            ui.label("Captions for your photos, written on your machine.");
        });
    }
}
