//! Alt-text exports: an HTML page with one `<img src alt>` per photo, and CSV / JSON rows with
//! the columns accessibility tools take (`file`, `alt_text`, `confidence`, plus `tags`).
//!
//! Paths are written relative to the folder the export will be saved in (`out_dir`), with `/`
//! separators; in the HTML `src` each segment is percent-encoded and the attribute HTML-escaped.

use std::path::{Component, Path, PathBuf};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

/// One photo of an export.
#[derive(Clone, Debug, PartialEq)]
pub struct AltText {
    pub file: PathBuf,
    pub alt: String,
    /// The caption's confidence in 0..=1, when a model wrote it.
    pub confidence: Option<f32>,
    pub tags: Vec<String>,
}

/// Everything but the URL-unreserved characters is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Escapes text for HTML content and (double- or single-quoted) attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `path` relative to `base` as `/`-separated segments (`..` where it lies outside `base`), or
/// `None` when there is no relative path (another drive on Windows).
fn relative_segments(path: &Path, base: &Path) -> Option<Vec<String>> {
    let path = std::path::absolute(path).ok()?;
    let base = std::path::absolute(base).ok()?;
    fn normal(p: &Path) -> Vec<Component<'_>> {
        p.components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect()
    }
    let (p, b) = (normal(&path), normal(&base));
    if p.first() != b.first() {
        return None;
    }
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out: Vec<String> = b[common..].iter().map(|_| "..".to_string()).collect();
    out.extend(
        p[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    Some(out)
}

/// `file` relative to `out_dir`, `/`-separated (the absolute path when there is none).
pub fn relative_path(file: &Path, out_dir: &Path) -> String {
    match relative_segments(file, out_dir) {
        Some(s) => s.join("/"),
        None => file.to_string_lossy().into_owned(),
    }
}

/// The URL of `file` from a page in `out_dir`: relative, each segment percent-encoded.
pub fn relative_url(file: &Path, out_dir: &Path) -> String {
    match relative_segments(file, out_dir) {
        Some(s) => s
            .iter()
            .map(|seg| utf8_percent_encode(seg, SEGMENT).to_string())
            .collect::<Vec<_>>()
            .join("/"),
        None => {
            let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
            let segs: Vec<String> = abs
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => {
                        Some(utf8_percent_encode(&s.to_string_lossy(), SEGMENT).to_string())
                    }
                    Component::Prefix(p) => Some(p.as_os_str().to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect();
            format!("file:///{}", segs.join("/"))
        }
    }
}

/// An HTML page with one `<img src="..." alt="...">` per photo, for a page saved in `out_dir`.
pub fn html_page(rows: &[AltText], out_dir: &Path, title: &str) -> String {
    let mut s = String::new();
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str(&format!("<title>{}</title>\n", html_escape(title)));
    s.push_str(
        "<style>body{font-family:sans-serif}ul{list-style:none;padding:0;display:flex;\
         flex-wrap:wrap;gap:1em}img{max-width:320px;max-height:320px}</style>\n",
    );
    s.push_str(&format!(
        "</head>\n<body>\n<h1>{}</h1>\n<ul>\n",
        html_escape(title)
    ));
    for r in rows {
        s.push_str(&format!(
            "<li><img src=\"{}\" alt=\"{}\" loading=\"lazy\"></li>\n",
            html_escape(&relative_url(&r.file, out_dir)),
            html_escape(r.alt.trim())
        ));
    }
    s.push_str("</ul>\n</body>\n</html>\n");
    s
}

#[derive(Serialize)]
struct Row<'a> {
    file: String,
    alt_text: &'a str,
    confidence: Option<f32>,
    tags: String,
}

fn rows<'a>(rows: &'a [AltText], out_dir: &Path) -> impl Iterator<Item = Row<'a>> {
    rows.iter().map(move |r| Row {
        file: relative_path(&r.file, out_dir),
        alt_text: r.alt.trim(),
        confidence: r.confidence,
        tags: r.tags.join("; "),
    })
}

/// CSV with a header: `file,alt_text,confidence,tags` (confidence empty when unknown, tags
/// joined with `; `).
pub fn csv(list: &[AltText], out_dir: &Path) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows(list, out_dir) {
        w.serialize(row)?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A JSON array of `{"file", "alt_text", "confidence", "tags"}` objects (`confidence` null
/// when unknown; `tags` an array).
pub fn json(list: &[AltText], out_dir: &Path) -> Result<String, serde_json::Error> {
    let v: Vec<serde_json::Value> = list
        .iter()
        .zip(rows(list, out_dir))
        .map(|(r, row)| {
            serde_json::json!({
                "file": row.file,
                "alt_text": row.alt_text,
                "confidence": r.confidence,
                "tags": r.tags,
            })
        })
        .collect();
    serde_json::to_string_pretty(&v)
}
