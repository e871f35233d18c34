//! Metadata export/import: XMP sidecars, captions embedded in JPEG and PNG, alt-text exports.
//!
//! Test photos are generated here (the `image` crate encodes them; EXIF, XMP and other APP1
//! segments are crafted by hand). When `exiftool` is installed, what was written is also read
//! back with it.

use std::path::{Path, PathBuf};

use captioner::metadata::{
    self, Described, MetadataError, Source, alt_text, embed_description, read_description,
    read_description_with_source, write_sidecar,
};

const CAPTION: &str = "Un chien « é » court: 日本語 🐕 \"quoted\" <&> it's";

fn described(caption: &str, subjects: &[&str]) -> Described {
    Described {
        caption: caption.to_string(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
    }
}

fn unicode() -> Described {
    described(CAPTION, &["dog", "plage é", "日本", "a&b <c>"])
}

fn rgb_image() -> image::RgbImage {
    image::RgbImage::from_fn(24, 16, |x, y| {
        image::Rgb([(x * 10) as u8, (y * 15) as u8, ((x + y) * 5) as u8])
    })
}

fn jpeg_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&rgb_image())
        .unwrap();
    out
}

fn png_bytes() -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    rgb_image()
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// Header segments of a JPEG (marker, whole segment bytes) and the rest from SOS on. An
/// independent walker, so the tests do not trust the library's.
fn jpeg_split(b: &[u8]) -> (Vec<(u8, Vec<u8>)>, Vec<u8>) {
    assert_eq!(&b[..2], &[0xFF, 0xD8]);
    let mut segs = Vec::new();
    let mut p = 2;
    loop {
        assert_eq!(b[p], 0xFF);
        let m = b[p + 1];
        if m == 0xDA {
            return (segs, b[p..].to_vec());
        }
        let len = u16::from_be_bytes([b[p + 2], b[p + 3]]) as usize;
        segs.push((m, b[p..p + 2 + len].to_vec()));
        p += 2 + len;
    }
}

fn jpeg_join(segs: &[(u8, Vec<u8>)], scan: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    for (_, s) in segs {
        out.extend_from_slice(s);
    }
    out.extend_from_slice(scan);
    out
}

fn app_segment(marker: u8, payload: &[u8]) -> (u8, Vec<u8>) {
    let mut s = vec![0xFF, marker];
    s.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    s.extend_from_slice(payload);
    (marker, s)
}

/// Inserts segments right after the APP0 (JFIF) ones.
fn jpeg_with(extra: Vec<(u8, Vec<u8>)>) -> Vec<u8> {
    let (mut segs, scan) = jpeg_split(&jpeg_bytes());
    let at = segs.iter().take_while(|(m, _)| *m == 0xE0).count();
    for (i, s) in extra.into_iter().enumerate() {
        segs.insert(at + i, s);
    }
    jpeg_join(&segs, &scan)
}

/// PNG chunks: (type, data).
fn png_chunks(b: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    let mut out = Vec::new();
    let mut p = 8;
    while p < b.len() {
        let len = u32::from_be_bytes(b[p..p + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = b[p + 4..p + 8].try_into().unwrap();
        let data = b[p + 8..p + 8 + len].to_vec();
        let crc = u32::from_be_bytes(b[p + 8 + len..p + 12 + len].try_into().unwrap());
        let mut h = crc32fast::Hasher::new();
        h.update(&kind);
        h.update(&data);
        assert_eq!(
            h.finalize(),
            crc,
            "CRC of {}",
            String::from_utf8_lossy(&kind)
        );
        out.push((kind, data));
        p += 12 + len;
    }
    out
}

fn png_join(chunks: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in chunks {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut h = crc32fast::Hasher::new();
        h.update(kind);
        h.update(data);
        out.extend_from_slice(&h.finalize().to_be_bytes());
    }
    out
}

fn idat(b: &[u8]) -> Vec<u8> {
    png_chunks(b)
        .into_iter()
        .filter(|(k, _)| k == b"IDAT" || k == b"IHDR")
        .flat_map(|(_, d)| d)
        .collect()
}

/// A big-endian TIFF block: IFD0 {Make, Orientation, ExifIFD}, Exif IFD {DateTimeOriginal},
/// IFD1 {Compression}.
fn big_endian_tiff() -> Vec<u8> {
    let mut t = b"MM\0\x2a".to_vec();
    t.extend_from_slice(&8u32.to_be_bytes());
    // IFD0 at 8: 3 entries -> 2 + 36 + 4 = 42 bytes, ends at 50.
    let make = b"Acme Camera\0"; // at 50, 12 bytes, ends at 62
    let exif_ifd = 62u32; // 1 entry: 18 bytes, ends at 80
    let date = b"2024:01:02 03:04:05\0"; // at 80, 20 bytes, ends at 100
    let ifd1 = 100u32;
    t.extend_from_slice(&3u16.to_be_bytes());
    let entry = |tag: u16, typ: u16, count: u32, value: [u8; 4]| {
        let mut e = Vec::new();
        e.extend_from_slice(&tag.to_be_bytes());
        e.extend_from_slice(&typ.to_be_bytes());
        e.extend_from_slice(&count.to_be_bytes());
        e.extend_from_slice(&value);
        e
    };
    t.extend(entry(0x010F, 2, make.len() as u32, 50u32.to_be_bytes()));
    t.extend(entry(0x0112, 3, 1, [0, 6, 0, 0]));
    t.extend(entry(0x8769, 4, 1, exif_ifd.to_be_bytes()));
    t.extend_from_slice(&ifd1.to_be_bytes());
    assert_eq!(t.len(), 50);
    t.extend_from_slice(make);
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend(entry(0x9003, 2, date.len() as u32, 80u32.to_be_bytes()));
    t.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(t.len(), 80);
    t.extend_from_slice(date);
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend(entry(0x0103, 3, 1, [0, 6, 0, 0]));
    t.extend_from_slice(&0u32.to_be_bytes());
    t
}

fn exif_payload(tiff: &[u8]) -> Vec<u8> {
    let mut p = b"Exif\0\0".to_vec();
    p.extend_from_slice(tiff);
    p
}

const MULTI_LANG_XMP: &str = r#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmp:Rating="4">
   <dc:description>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">Old caption</rdf:li>
     <rdf:li xml:lang="fr-FR">Un vieux chien</rdf:li>
     <rdf:li xml:lang="de-DE">Ein alter Hund</rdf:li>
    </rdf:Alt>
   </dc:description>
   <dc:creator><rdf:Seq><rdf:li>Jane Doe</rdf:li></rdf:Seq></dc:creator>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"#;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `exiftool -j ...` on `path`, or `None` (with a note) when exiftool is not installed.
fn exiftool(path: &Path, tags: &[&str]) -> Option<serde_json::Value> {
    let out = match std::process::Command::new("exiftool")
        .arg("-j")
        .args(tags)
        .arg(path)
        .output()
    {
        Ok(o) => o,
        Err(_) => {
            eprintln!("exiftool not installed: skipping the exiftool read-back check");
            return None;
        }
    };
    assert!(out.status.success(), "exiftool failed: {out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(v[0].clone())
}

/// exiftool reads back exactly what was written.
fn check_with_exiftool(path: &Path, d: &Described, exif: bool) {
    let Some(v) = exiftool(
        path,
        &[
            "-XMP-dc:Description",
            "-EXIF:ImageDescription",
            "-XMP-dc:Subject",
        ],
    ) else {
        return;
    };
    assert_eq!(v["Description"], serde_json::json!(d.caption), "{v}");
    if exif {
        assert_eq!(v["ImageDescription"], serde_json::json!(d.caption), "{v}");
    }
    let subjects = match &v["Subject"] {
        serde_json::Value::Array(a) => a.clone(),
        serde_json::Value::Null => Vec::new(),
        other => vec![other.clone()],
    };
    assert_eq!(
        subjects,
        serde_json::json!(d.subjects).as_array().unwrap().clone()
    );
}

#[test]
fn sidecar_is_written_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let photo = write(dir.path(), "photo.jpg", &jpeg_bytes());
    let before = std::fs::read(&photo).unwrap();
    let d = unicode();
    let sidecar = write_sidecar(&photo, &d).unwrap();
    assert_eq!(sidecar, dir.path().join("photo.xmp"));
    assert_eq!(
        std::fs::read(&photo).unwrap(),
        before,
        "the photo is not touched"
    );
    let (got, source) = read_description_with_source(&photo).unwrap().unwrap();
    assert_eq!(got, d);
    assert_eq!(source, Source::Sidecar(sidecar.clone()));
    check_with_exiftool(&sidecar, &d, false);
    assert_eq!(dir_listing(dir.path()), vec!["photo.jpg", "photo.xmp"]);
}

#[test]
fn sidecar_update_keeps_other_languages_and_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let photo = write(dir.path(), "photo.jpg", &jpeg_bytes());
    let sidecar = write(dir.path(), "photo.xmp", MULTI_LANG_XMP.as_bytes());
    let d = described("A dog on the beach", &["dog", "beach"]);
    write_sidecar(&photo, &d).unwrap();
    let text = std::fs::read_to_string(&sidecar).unwrap();
    assert!(text.contains(r#"<rdf:li xml:lang="fr-FR">Un vieux chien</rdf:li>"#));
    assert!(text.contains(r#"<rdf:li xml:lang="de-DE">Ein alter Hund</rdf:li>"#));
    assert!(text.contains(r#"xmp:Rating="4""#));
    assert!(text.contains("<rdf:li>Jane Doe</rdf:li>"));
    assert!(!text.contains("Old caption"));
    assert_eq!(read_description(&photo).unwrap().unwrap(), d);
    if let Some(v) = exiftool(
        &sidecar,
        &[
            "-XMP-dc:Description",
            "-XMP-dc:Description-fr-FR",
            "-XMP-dc:Description-de-DE",
            "-XMP-xmp:Rating",
            "-XMP-dc:Creator",
        ],
    ) {
        assert_eq!(v["Description"], "A dog on the beach", "{v}");
        assert_eq!(v["Description-fr-FR"], "Un vieux chien", "{v}");
        assert_eq!(v["Description-de-DE"], "Ein alter Hund", "{v}");
        assert_eq!(v["Rating"], 4, "{v}");
        assert_eq!(v["Creator"], "Jane Doe", "{v}");
    }
}

#[test]
fn darktable_style_sidecar_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let photo = write(dir.path(), "photo.jpg", &jpeg_bytes());
    write(dir.path(), "photo.jpg.xmp", MULTI_LANG_XMP.as_bytes());
    let got = read_description(&photo).unwrap().unwrap();
    assert_eq!(got.caption, "Old caption");
}

#[test]
fn jpeg_embed_round_trips_and_keeps_scan_data() {
    let dir = tempfile::tempdir().unwrap();
    let original = jpeg_bytes();
    let photo = write(dir.path(), "photo.jpg", &original);
    let d = unicode();
    embed_description(&photo, &d).unwrap();
    let after = std::fs::read(&photo).unwrap();
    let (segs_before, scan_before) = jpeg_split(&original);
    let (segs_after, scan_after) = jpeg_split(&after);
    assert!(scan_before == scan_after, "scan data is byte-identical");
    // Every original segment is still there, in order.
    let kept: Vec<_> = segs_after
        .iter()
        .filter(|s| segs_before.contains(s))
        .cloned()
        .collect();
    assert_eq!(kept, segs_before);
    assert_eq!(
        segs_after.len(),
        segs_before.len() + 2,
        "EXIF and XMP added"
    );
    let (got, source) = read_description_with_source(&photo).unwrap().unwrap();
    assert_eq!(got, d);
    assert_eq!(source, Source::EmbeddedXmp);
    // The image still decodes to the same pixels.
    let a = image::load_from_memory(&original).unwrap().to_rgb8();
    let b = image::load_from_memory(&after).unwrap().to_rgb8();
    assert_eq!(a, b);
    check_with_exiftool(&photo, &d, true);
    if let Some(v) = exiftool(&photo, &["-validate", "-warning", "-a"]) {
        assert_eq!(
            v["Validate"], "OK",
            "exiftool finds nothing to warn about: {v}"
        );
    }
    // Embedding the same again changes nothing; a new caption replaces the old one.
    embed_description(&photo, &d).unwrap();
    assert!(
        std::fs::read(&photo).unwrap() == after,
        "a second embed changed the file"
    );
    let d2 = described("Second caption, longer than the first one was", &["x"]);
    embed_description(&photo, &d2).unwrap();
    assert_eq!(read_description(&photo).unwrap().unwrap(), d2);
    check_with_exiftool(&photo, &d2, true);
    assert_eq!(
        dir_listing(dir.path()),
        vec!["photo.jpg"],
        "no temp file left"
    );
}

#[test]
fn png_embed_round_trips_and_keeps_image_data() {
    let dir = tempfile::tempdir().unwrap();
    let original = png_bytes();
    let photo = write(dir.path(), "photo.png", &original);
    let d = unicode();
    embed_description(&photo, &d).unwrap();
    let after = std::fs::read(&photo).unwrap();
    assert_eq!(
        idat(&original),
        idat(&after),
        "IHDR and IDAT byte-identical"
    );
    let chunks = png_chunks(&after); // checks every CRC
    assert_eq!(chunks.iter().filter(|(k, _)| k == b"iTXt").count(), 1);
    let (got, source) = read_description_with_source(&photo).unwrap().unwrap();
    assert_eq!(got, d);
    assert_eq!(source, Source::EmbeddedXmp);
    let a = image::load_from_memory(&original).unwrap().to_rgb8();
    let b = image::load_from_memory(&after).unwrap().to_rgb8();
    assert_eq!(a, b);
    check_with_exiftool(&photo, &d, false);
    if let Some(v) = exiftool(&photo, &["-validate", "-warning", "-a"]) {
        assert_eq!(
            v["Validate"], "OK",
            "exiftool finds nothing to warn about: {v}"
        );
    }
}

#[test]
fn jpeg_big_endian_exif_keeps_every_other_tag() {
    let dir = tempfile::tempdir().unwrap();
    let tiff = big_endian_tiff();
    let original = jpeg_with(vec![app_segment(0xE1, &exif_payload(&tiff))]);
    let photo = write(dir.path(), "photo.jpg", &original);
    let d = described("Big-endian é 日本語", &[]);
    embed_description(&photo, &d).unwrap();
    let after = std::fs::read(&photo).unwrap();
    let (_, scan_before) = jpeg_split(&original);
    let (segs, scan_after) = jpeg_split(&after);
    assert!(scan_before == scan_after, "scan data is byte-identical");
    let exif = segs
        .iter()
        .find(|(m, s)| *m == 0xE1 && s[4..].starts_with(b"Exif\0\0"))
        .unwrap();
    let new_tiff = &exif.1[10..];
    // Nothing in the old block moved: it is a prefix of the new one, except the IFD0 offset.
    assert_eq!(&new_tiff[..4], &tiff[..4]);
    assert_eq!(&new_tiff[8..tiff.len()], &tiff[8..]);
    assert_eq!(read_description(&photo).unwrap().unwrap(), d);
    if let Some(v) = exiftool(
        &photo,
        &[
            "-EXIF:ImageDescription",
            "-EXIF:Make",
            "-EXIF:Orientation#",
            "-EXIF:DateTimeOriginal",
            "-EXIF:Compression#",
            "-XMP-dc:Description",
        ],
    ) {
        assert_eq!(v["ImageDescription"], d.caption.as_str(), "{v}");
        assert_eq!(v["Description"], d.caption.as_str(), "{v}");
        assert_eq!(v["Make"], "Acme Camera", "{v}");
        assert_eq!(v["Orientation"], 6, "{v}");
        assert_eq!(v["DateTimeOriginal"], "2024:01:02 03:04:05", "{v}");
        assert_eq!(v["Compression"], 6, "{v}");
    }
}

#[test]
fn exif_only_description_is_read_as_existing() {
    let dir = tempfile::tempdir().unwrap();
    // Write a description into big-endian EXIF only (no XMP), by embedding and then dropping
    // the XMP segment.
    let photo = write(
        dir.path(),
        "photo.jpg",
        &jpeg_with(vec![app_segment(0xE1, &exif_payload(&big_endian_tiff()))]),
    );
    embed_description(&photo, &described("From EXIF", &[])).unwrap();
    let (segs, scan) = jpeg_split(&std::fs::read(&photo).unwrap());
    let segs: Vec<_> = segs
        .into_iter()
        .filter(|(_, s)| !s[4..].starts_with(b"http://ns.adobe.com/xap/1.0/\0"))
        .collect();
    std::fs::write(&photo, jpeg_join(&segs, &scan)).unwrap();
    let (got, source) = read_description_with_source(&photo).unwrap().unwrap();
    assert_eq!(got.caption, "From EXIF");
    assert_eq!(source, Source::Exif);
    // A photo with no description at all reads as None.
    let bare = write(dir.path(), "bare.jpg", &jpeg_bytes());
    assert_eq!(read_description(&bare).unwrap(), None);
    let bare_png = write(dir.path(), "bare.png", &png_bytes());
    assert_eq!(read_description(&bare_png).unwrap(), None);
}

#[test]
fn jpeg_keeps_multilingual_xmp_and_foreign_app1() {
    let dir = tempfile::tempdir().unwrap();
    let mut xmp_payload = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp_payload.extend_from_slice(MULTI_LANG_XMP.as_bytes());
    let foreign = app_segment(0xE1, b"FOREIGN-APP1\0some vendor data \xFF\x00\x01");
    let extension = app_segment(0xE1, b"http://ns.adobe.com/xmp/extension/\0ABCDEF");
    let app13 = app_segment(0xED, b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\0");
    let original = jpeg_with(vec![
        foreign.clone(),
        app_segment(0xE1, &xmp_payload),
        extension.clone(),
        app13.clone(),
    ]);
    let photo = write(dir.path(), "photo.jpg", &original);
    let d = described("New <caption> & \"more\"", &["one", "two"]);
    embed_description(&photo, &d).unwrap();
    let after = std::fs::read(&photo).unwrap();
    let (segs_before, scan_before) = jpeg_split(&original);
    let (segs_after, scan_after) = jpeg_split(&after);
    assert!(scan_before == scan_after, "scan data is byte-identical");
    for s in [&foreign, &extension, &app13] {
        assert!(segs_after.contains(s), "segment kept byte for byte");
    }
    // Only the XMP segment changed among the old ones; one EXIF segment was added.
    let changed: Vec<_> = segs_before
        .iter()
        .filter(|s| !segs_after.contains(s))
        .collect();
    assert_eq!(changed.len(), 1);
    assert!(changed[0].1[4..].starts_with(b"http://ns.adobe.com/xap/1.0/\0"));
    assert_eq!(segs_after.len(), segs_before.len() + 1);
    let xmp = segs_after
        .iter()
        .find(|(_, s)| s[4..].starts_with(b"http://ns.adobe.com/xap/1.0/\0"))
        .unwrap();
    let text = String::from_utf8_lossy(&xmp.1[33..]);
    assert!(text.contains(r#"<rdf:li xml:lang="fr-FR">Un vieux chien</rdf:li>"#));
    assert!(text.contains(r#"xmp:Rating="4""#));
    assert_eq!(read_description(&photo).unwrap().unwrap(), d);
    check_with_exiftool(&photo, &d, true);
    if let Some(v) = exiftool(&photo, &["-XMP-dc:Description-de-DE", "-XMP-dc:Creator"]) {
        assert_eq!(v["Description-de-DE"], "Ein alter Hund", "{v}");
        assert_eq!(v["Creator"], "Jane Doe", "{v}");
    }
}

#[test]
fn png_replaces_existing_xmp_chunk_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut chunks = png_chunks(&png_bytes());
    let mut itxt = b"XML:com.adobe.xmp\0\0\0\0\0".to_vec();
    itxt.extend_from_slice(MULTI_LANG_XMP.as_bytes());
    let text_chunk = (*b"tEXt", b"Author\0Jane".to_vec());
    // Put the XMP after the image data, as some tools do, and a tEXt chunk before it.
    let iend = chunks.pop().unwrap();
    chunks.insert(1, text_chunk.clone());
    chunks.push((*b"iTXt", itxt));
    chunks.push(iend);
    let original = png_join(&chunks);
    let photo = write(dir.path(), "photo.png", &original);
    let d = unicode();
    embed_description(&photo, &d).unwrap();
    let after = std::fs::read(&photo).unwrap();
    assert_eq!(idat(&original), idat(&after));
    let new_chunks = png_chunks(&after);
    assert_eq!(new_chunks.len(), chunks.len(), "replaced, not added");
    assert_eq!(new_chunks[1], text_chunk);
    for (old, new) in chunks.iter().zip(&new_chunks) {
        if &old.0 != b"iTXt" {
            assert_eq!(old, new);
        }
    }
    let text = String::from_utf8_lossy(&new_chunks[new_chunks.len() - 2].1).into_owned();
    assert!(text.contains(r#"<rdf:li xml:lang="de-DE">Ein alter Hund</rdf:li>"#));
    assert_eq!(read_description(&photo).unwrap().unwrap(), d);
    check_with_exiftool(&photo, &d, false);
}

#[test]
fn interrupted_embed_leaves_the_photo_intact() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("photo.jpg", jpeg_bytes()), ("photo.png", png_bytes())] {
        let photo = write(dir.path(), name, &bytes);
        for fail_after in [0, 10, bytes.len() / 2] {
            let err =
                metadata::fault::embed_description_interrupted(&photo, &unicode(), fail_after)
                    .unwrap_err();
            assert!(matches!(err, MetadataError::Write { .. }), "{err}");
            assert_eq!(err.path(), photo);
            assert_eq!(std::fs::read(&photo).unwrap(), bytes, "{name} unchanged");
        }
    }
    assert_eq!(
        dir_listing(dir.path()),
        vec!["photo.jpg", "photo.png"],
        "no temporary file left"
    );
}

#[cfg(unix)]
#[test]
fn permissions_are_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let photo = write(dir.path(), "photo.jpg", &jpeg_bytes());
    std::fs::set_permissions(&photo, std::fs::Permissions::from_mode(0o640)).unwrap();
    embed_description(&photo, &unicode()).unwrap();
    let mode = std::fs::metadata(&photo).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

#[cfg(unix)]
#[test]
fn read_only_photo_and_folder_are_reported_and_left_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let bytes = jpeg_bytes();
    let photo = write(dir.path(), "photo.jpg", &bytes);
    std::fs::set_permissions(&photo, std::fs::Permissions::from_mode(0o444)).unwrap();
    let err = embed_description(&photo, &unicode()).unwrap_err();
    assert!(
        matches!(err, MetadataError::ReadOnly { folder: false, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("photo.jpg"), "{err}");
    assert_eq!(std::fs::read(&photo).unwrap(), bytes);

    let sub = dir.path().join("locked");
    std::fs::create_dir(&sub).unwrap();
    let photo2 = write(&sub, "photo.png", &png_bytes());
    let before = std::fs::read(&photo2).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o555)).unwrap();
    let err = embed_description(&photo2, &unicode()).unwrap_err();
    let sidecar_err = write_sidecar(&photo2, &unicode()).unwrap_err();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        matches!(err, MetadataError::ReadOnly { folder: true, .. }),
        "{err}"
    );
    assert!(
        matches!(sidecar_err, MetadataError::ReadOnly { .. }),
        "{sidecar_err}"
    );
    assert_eq!(std::fs::read(&photo2).unwrap(), before);
    assert_eq!(dir_listing(&sub), vec!["photo.png"]);
}

#[test]
fn other_formats_and_corrupt_files_are_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let img = image::DynamicImage::ImageRgb8(rgb_image());
    let mut gif = std::io::Cursor::new(Vec::new());
    img.write_to(&mut gif, image::ImageFormat::Gif).unwrap();
    let mut bmp = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bmp, image::ImageFormat::Bmp).unwrap();
    let jpeg = jpeg_bytes();
    let png = png_bytes();
    let mut bad_crc = png.clone();
    let last_idat = bad_crc.len() - 20;
    bad_crc[last_idat] ^= 0x55;
    let mut no_eoi = jpeg.clone();
    no_eoi.truncate(jpeg.len() - 2);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("anim.gif", gif.into_inner(), "unsupported"),
        ("picture.bmp", bmp.into_inner(), "unsupported"),
        ("truncated.jpg", jpeg[..100].to_vec(), "corrupt"),
        ("no-eoi.jpg", no_eoi, "corrupt"),
        (
            "garbage.jpg",
            b"this is not a photo at all".to_vec(),
            "corrupt",
        ),
        ("bad-crc.png", bad_crc, "corrupt"),
        ("truncated.png", png[..png.len() - 12].to_vec(), "corrupt"),
        ("notes.txt", b"hello".to_vec(), "unsupported"),
    ];
    for (name, bytes, kind) in cases {
        let photo = write(dir.path(), name, &bytes);
        let err = embed_description(&photo, &unicode()).unwrap_err();
        match kind {
            "unsupported" => assert!(
                matches!(err, MetadataError::Unsupported { .. }),
                "{name}: {err}"
            ),
            _ => assert!(
                matches!(err, MetadataError::Corrupt { .. }),
                "{name}: {err}"
            ),
        }
        assert_eq!(err.path(), photo);
        assert!(err.to_string().contains(name), "{err}");
        assert_eq!(std::fs::read(&photo).unwrap(), bytes, "{name} unchanged");
    }
    // Nothing but the inputs in the folder.
    assert_eq!(dir_listing(dir.path()).len(), 8);
}

#[test]
fn corrupt_sidecar_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let photo = write(dir.path(), "photo.jpg", &jpeg_bytes());
    let bad = b"<x:xmpmeta><rdf:RDF></x:xmpmeta>".to_vec();
    let sidecar = write(dir.path(), "photo.xmp", &bad);
    let err = write_sidecar(&photo, &unicode()).unwrap_err();
    assert!(matches!(err, MetadataError::Xmp { .. }), "{err}");
    assert_eq!(err.path(), sidecar);
    assert_eq!(std::fs::read(&sidecar).unwrap(), bad);
    assert!(read_description(&photo).is_err());
}

fn alt_rows(dir: &Path) -> Vec<alt_text::AltText> {
    vec![
        alt_text::AltText {
            file: dir.join("a b/photo \"1\".jpg"),
            alt: "A <dog> & a \"cat\" 'together' é".into(),
            confidence: Some(0.5),
            tags: vec!["dog".into(), "cat".into()],
        },
        alt_text::AltText {
            file: dir.join("日本.png"),
            alt: "Plain".into(),
            confidence: None,
            tags: vec![],
        },
    ]
}

#[test]
fn alt_text_html_escapes_and_relative_sources() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export");
    let html = alt_text::html_page(&alt_rows(dir.path()), &out, "Photos <&> \"mine\"");
    assert!(html.contains(
        r#"<img src="../a%20b/photo%20%221%22.jpg" alt="A &lt;dog&gt; &amp; a &quot;cat&quot; &#39;together&#39; é" loading="lazy">"#
    ), "{html}");
    assert!(
        html.contains(r#"<img src="../%E6%97%A5%E6%9C%AC.png" alt="Plain""#),
        "{html}"
    );
    assert!(html.contains("<title>Photos &lt;&amp;&gt; &quot;mine&quot;</title>"));
    assert_eq!(html.matches("<img ").count(), 2);
    assert_eq!(
        alt_text::relative_url(&dir.path().join("x.jpg"), dir.path()),
        "x.jpg"
    );
}

#[test]
fn alt_text_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let rows = alt_rows(dir.path());
    let csv = alt_text::csv(&rows, dir.path()).unwrap();
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        vec!["file", "alt_text", "confidence", "tags"]
    );
    let recs: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(&recs[0][0], "a b/photo \"1\".jpg");
    assert_eq!(&recs[0][1], "A <dog> & a \"cat\" 'together' é");
    assert_eq!(&recs[0][2], "0.5");
    assert_eq!(&recs[0][3], "dog; cat");
    assert_eq!(&recs[1][0], "日本.png");
    assert_eq!(&recs[1][2], "");
    let json: serde_json::Value =
        serde_json::from_str(&alt_text::json(&rows, dir.path()).unwrap()).unwrap();
    assert_eq!(json[0]["file"], "a b/photo \"1\".jpg");
    assert_eq!(json[0]["alt_text"], "A <dog> & a \"cat\" 'together' é");
    assert_eq!(json[0]["confidence"], 0.5);
    assert_eq!(json[0]["tags"], serde_json::json!(["dog", "cat"]));
    assert_eq!(json[1]["confidence"], serde_json::Value::Null);
}

#[test]
fn caption_too_large_for_a_jpeg_segment_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = jpeg_bytes();
    let photo = write(dir.path(), "photo.jpg", &bytes);
    let long = "é".repeat(40_000); // 80,000 bytes: more than one 64 KiB segment holds
    let err = embed_description(&photo, &described(&long, &[])).unwrap_err();
    assert!(matches!(err, MetadataError::TooLarge { .. }), "{err}");
    assert_eq!(std::fs::read(&photo).unwrap(), bytes);
    // A PNG chunk has room for it.
    let png = write(dir.path(), "photo.png", &png_bytes());
    embed_description(&png, &described(&long, &[])).unwrap();
    assert_eq!(read_description(&png).unwrap().unwrap().caption, long);
}

/// `a.jpg` and `a.png` in one folder would share `a.xmp`: each gets its own `a.jpg.xmp` /
/// `a.png.xmp`, reads back its own caption, and a shared `a.xmp` already there is left alone.
#[test]
fn photos_with_the_same_name_get_their_own_sidecars() {
    let dir = tempfile::tempdir().unwrap();
    let jpg = write(dir.path(), "a.jpg", &jpeg_bytes());
    let png = write(dir.path(), "a.png", &png_bytes());
    let shared_before = MULTI_LANG_XMP.as_bytes();
    write(dir.path(), "a.xmp", shared_before);
    // The shared a.xmp is nobody's: neither photo shows its description.
    assert_eq!(metadata::read_description(&jpg).unwrap(), None);
    assert_eq!(metadata::read_description(&png).unwrap(), None);
    let a = described("a dog on the grass", &["dog"]);
    let b = described("a cat on a sofa", &["cat"]);
    assert_eq!(
        metadata::write_sidecar(&jpg, &a).unwrap(),
        dir.path().join("a.jpg.xmp")
    );
    assert_eq!(
        metadata::write_sidecar(&png, &b).unwrap(),
        dir.path().join("a.png.xmp")
    );
    assert_eq!(metadata::read_description(&jpg).unwrap(), Some(a));
    assert_eq!(metadata::read_description(&png).unwrap(), Some(b));
    assert_eq!(
        std::fs::read(dir.path().join("a.xmp")).unwrap(),
        shared_before
    );
    // A photo alone keeps the usual photo.xmp.
    let c = write(dir.path(), "c.jpg", &jpeg_bytes());
    let d = described("a bird", &[]);
    assert_eq!(
        metadata::write_sidecar(&c, &d).unwrap(),
        dir.path().join("c.xmp")
    );
    assert_eq!(metadata::read_description(&c).unwrap(), Some(d));
}
