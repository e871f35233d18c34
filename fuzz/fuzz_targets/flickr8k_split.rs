//! Fuzz target: `Flickr_8k.trainImages.txt` parsed as import parses it. Every non-blank line ends as a
//! listed entry or as one problem naming the file and line; nothing panics.
#![no_main]

use std::path::Path;

use captioner::dataset::{CaptionFileKind, parse_caption_file};
use libfuzzer_sys::fuzz_target;

#[path = "lines_common.rs"]
mod lines_common;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("Flickr_8k.trainImages.txt");
    let parsed = parse_caption_file(CaptionFileKind::Flickr8kSplit, path, data)
        .expect("a line-based file is never unusable as a whole");
    lines_common::check_captions(&parsed, path);
    for p in &parsed.problems {
        assert!(p.line.is_some(), "problem without a line: {p}");
    }
    assert_eq!(
        parsed.listed.len() + parsed.problems.len(),
        lines_common::non_blank_lines(data),
        "a line vanished"
    );
});
