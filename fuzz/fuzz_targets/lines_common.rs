// Shared by the line-based targets (included with `#[path]`, not a module of its own crate).
#![allow(dead_code)]

/// Lines of `data` as the importers see them (BOM dropped, CR LF or LF), and how many are not
/// blank: each of those must give a caption (or listed name) or a problem, never vanish.
pub fn non_blank_lines(data: &[u8]) -> usize {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    data.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| match std::str::from_utf8(l) {
            Ok(s) => !s.trim().is_empty(),
            Err(_) => true,
        })
        .count()
}

pub fn check_captions(parsed: &captioner::dataset::ParsedCaptionFile, path: &std::path::Path) {
    for (image, caption) in &parsed.captions {
        assert!(!image.is_empty(), "empty image name");
        assert!(!caption.is_empty(), "empty caption");
        assert_eq!(caption.trim(), caption, "caption not trimmed");
    }
    for p in &parsed.problems {
        assert_eq!(p.file, path, "problem names another file");
        assert!(!p.message.is_empty());
    }
}
