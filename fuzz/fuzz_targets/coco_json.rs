//! Fuzz target: a COCO `captions_*.json` parsed as import parses it: a broken file is one
//! problem, each bad image or annotation entry another; every caption kept is non-empty.
#![no_main]

use std::path::Path;

use captioner::dataset::{CaptionFileKind, parse_caption_file};
use libfuzzer_sys::fuzz_target;

#[path = "lines_common.rs"]
mod lines_common;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("captions_train2017.json");
    let parsed = parse_caption_file(CaptionFileKind::CocoJson, path, data)
        .expect("a COCO file is reported as a problem, never an error");
    lines_common::check_captions(&parsed, path);
});
