//! `.txt` caption sidecars beside photos (`dog.jpg` + `dog.txt`), read and written by the Batch
//! panel and `captioner batch`.
//!
//! A sidecar's first non-empty line is its caption; any further lines are kept as they are and
//! written back after the caption, so a tool that stores more than one caption per photo never
//! loses any. Reading tolerates a UTF-8 byte-order mark, CRLF line endings and trailing spaces;
//! text that is not valid UTF-8 is an error naming the file and the line, and such a file is
//! never overwritten unless the caller asks for it. Every write is atomic (temporary file in the
//! same folder, then rename).

use std::path::{Path, PathBuf};

use crate::files::write_atomic;

/// What a sidecar holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sidecar {
    /// The first non-empty line, without trailing spaces.
    pub caption: String,
    /// The lines after the caption, kept verbatim (without line endings; trailing empty lines
    /// dropped).
    pub extra: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}, line {line}: not UTF-8 text (byte {byte} of the file); the file was left as it is", path.display())]
    NotUtf8 {
        path: PathBuf,
        line: usize,
        byte: usize,
    },
    /// The sidecar's mode bits allow no writing: it is left as it is (as read-only photos are).
    #[error("{}: {}", path.display(), crate::files::READ_ONLY)]
    ReadOnly { path: PathBuf },
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What to do when a sidecar exists already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Leave an existing sidecar alone.
    Skip,
    /// Replace it (its extra lines are kept by [`replace_caption`]).
    Overwrite,
}

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// The sidecar existed and [`WriteMode::Skip`] was asked.
    SkippedExisting,
    /// The file already held exactly these bytes; nothing was written.
    Unchanged,
}

/// The sidecar of an image: same path, `.txt` extension.
pub fn sidecar_path(image: &Path) -> PathBuf {
    image.with_extension("txt")
}

/// Makes a caption one line: line breaks (and tabs) become single spaces; the ends are trimmed.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if matches!(c, '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}') {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            if !out.ends_with(' ') && c != ' ' {
                out.push(' ');
            }
            pending_space = false;
        }
        out.push(c);
    }
    out.trim().to_string()
}

/// Parses a sidecar's bytes; `path` is only used in the error.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Sidecar, SidecarError> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let bom = bytes.len() - body.len();
    let text = std::str::from_utf8(body).map_err(|e| {
        let at = e.valid_up_to();
        SidecarError::NotUtf8 {
            path: path.to_path_buf(),
            line: body[..at].iter().filter(|&&b| b == b'\n').count() + 1,
            byte: at + bom,
        }
    })?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let mut caption = String::new();
    for line in lines.by_ref() {
        let t = line.trim();
        if !t.is_empty() {
            caption = t.to_string();
            break;
        }
    }
    let mut extra: Vec<String> = lines.map(|l| l.trim_end().to_string()).collect();
    while extra.last().is_some_and(|l| l.is_empty()) {
        extra.pop();
    }
    Ok(Sidecar { caption, extra })
}

/// Reads the sidecar at `path` (a `.txt` file); `Ok(None)` when there is none.
pub fn read(path: &Path) -> Result<Option<Sidecar>, SidecarError> {
    match std::fs::read(path) {
        Ok(bytes) => parse(path, &bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SidecarError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The bytes of a sidecar: the caption on one line, then the extra lines, each ending in `\n`.
pub fn render(sidecar: &Sidecar) -> String {
    let mut s = one_line(&sidecar.caption);
    s.push('\n');
    for line in &sidecar.extra {
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// Writes `sidecar` to `path` atomically. An existing file is left alone with
/// [`WriteMode::Skip`]; a file that already holds these bytes is not touched; a read-only one
/// is not replaced ([`SidecarError::ReadOnly`]).
pub fn write(
    path: &Path,
    sidecar: &Sidecar,
    mode: WriteMode,
) -> Result<WriteOutcome, SidecarError> {
    let text = render(sidecar);
    match std::fs::read(path) {
        Ok(old) => {
            if mode == WriteMode::Skip {
                return Ok(WriteOutcome::SkippedExisting);
            }
            if old == text.as_bytes() {
                return Ok(WriteOutcome::Unchanged);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if mode == WriteMode::Skip => {
            return Err(SidecarError::Read {
                path: path.to_path_buf(),
                source: e,
            });
        }
        // Overwrite a file that cannot be read (e.g. a broken one): the rename replaces it.
        Err(_) => {}
    }
    if crate::files::is_read_only(path) {
        return Err(SidecarError::ReadOnly {
            path: path.to_path_buf(),
        });
    }
    write_atomic(path, text.as_bytes()).map_err(|source| SidecarError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(WriteOutcome::Written)
}

/// Sets the caption of the sidecar at `path`, keeping the lines after the first of an existing
/// one (a file that is not UTF-8 text is replaced whole, and only with [`WriteMode::Overwrite`]).
pub fn replace_caption(
    path: &Path,
    caption: &str,
    mode: WriteMode,
) -> Result<WriteOutcome, SidecarError> {
    let extra = match read(path) {
        Ok(Some(old)) => old.extra,
        Ok(None) => Vec::new(),
        Err(e) if mode == WriteMode::Skip => {
            return match e {
                SidecarError::NotUtf8 { .. } => Ok(WriteOutcome::SkippedExisting),
                other => Err(other),
            };
        }
        Err(_) => Vec::new(),
    };
    write(
        path,
        &Sidecar {
            caption: caption.to_string(),
            extra,
        },
        mode,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> PathBuf {
        PathBuf::from("x.txt")
    }

    #[test]
    fn bom_crlf_trailing_spaces_and_extra_lines() {
        let s = parse(&p(), b"\xEF\xBB\xBFa dog runs  \r\nsecond line\r\n\r\n").unwrap();
        assert_eq!(s.caption, "a dog runs");
        assert_eq!(s.extra, vec!["second line".to_string()]);
        assert_eq!(render(&s), "a dog runs\nsecond line\n");
        let s = parse(&p(), b"\n\n  only \n").unwrap();
        assert_eq!(s.caption, "only");
        assert!(s.extra.is_empty());
        assert_eq!(parse(&p(), b"").unwrap(), Sidecar::default());
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let e = parse(&p(), b"fine\nbad \xff here\n").unwrap_err();
        match &e {
            SidecarError::NotUtf8 { line, byte, .. } => assert_eq!((*line, *byte), (2, 9)),
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("x.txt, line 2"), "{e}");
    }

    #[test]
    fn one_line_joins_pasted_lines() {
        assert_eq!(one_line("a dog\r\nruns\n\nfast "), "a dog runs fast");
        assert_eq!(one_line("a \nb"), "a b");
        assert_eq!(one_line("\n\tx"), "x");
    }

    #[test]
    fn write_skip_overwrite_and_keep_extra_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.txt");
        let s = |c: &str| Sidecar {
            caption: c.into(),
            extra: vec![],
        };
        assert_eq!(
            write(&path, &s("one"), WriteMode::Skip).unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(
            write(&path, &s("two"), WriteMode::Skip).unwrap(),
            WriteOutcome::SkippedExisting
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");
        assert_eq!(
            write(&path, &s("one"), WriteMode::Overwrite).unwrap(),
            WriteOutcome::Unchanged
        );
        std::fs::write(&path, "old\r\nkept 1\nkept 2\n").unwrap();
        assert_eq!(
            replace_caption(&path, "new\ncaption", WriteMode::Overwrite).unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "new caption\nkept 1\nkept 2\n"
        );
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }

    #[test]
    fn not_utf8_is_left_alone_unless_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.txt");
        std::fs::write(&path, b"caf\xe9\n").unwrap();
        assert!(matches!(read(&path), Err(SidecarError::NotUtf8 { .. })));
        assert_eq!(
            replace_caption(&path, "x", WriteMode::Skip).unwrap(),
            WriteOutcome::SkippedExisting
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"caf\xe9\n");
        replace_caption(&path, "x", WriteMode::Overwrite).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x\n");
    }

    #[cfg(unix)]
    #[test]
    fn a_read_only_sidecar_is_left_as_it_is() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.txt");
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        let e = replace_caption(&path, "new", WriteMode::Overwrite).unwrap_err();
        assert!(matches!(e, SidecarError::ReadOnly { .. }), "{e}");
        assert!(
            e.to_string()
                .ends_with("a.txt: the file is read-only; left unchanged"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o444);
        // Skip still skips, and the same text is no write at all.
        assert_eq!(
            replace_caption(&path, "new", WriteMode::Skip).unwrap(),
            WriteOutcome::SkippedExisting
        );
        assert_eq!(
            replace_caption(&path, "old", WriteMode::Overwrite).unwrap(),
            WriteOutcome::Unchanged
        );
    }

    #[test]
    fn unreadable_and_unwritable() {
        let tmp = tempfile::tempdir().unwrap();
        // A folder where the sidecar should be: it can be neither read nor replaced.
        let path = tmp.path().join("a.txt");
        std::fs::create_dir(&path).unwrap();
        let e = read(&path).unwrap_err();
        assert!(matches!(e, SidecarError::Read { .. }), "{e}");
        assert!(e.to_string().contains("a.txt"));
        let e = write(
            &path,
            &Sidecar {
                caption: "x".into(),
                extra: vec![],
            },
            WriteMode::Overwrite,
        )
        .unwrap_err();
        assert!(matches!(e, SidecarError::Write { .. }), "{e}");
        assert!(read(&tmp.path().join("missing.txt")).unwrap().is_none());
    }
}
