//! JPEG: a segment walker, the XMP and EXIF APP1 segments, and EXIF IFD0 `ImageDescription`.
//!
//! Only the header segments before the first SOS are rewritten; from SOS to the end of the file
//! (scan data, EOI and anything after it) the bytes are copied unchanged.

use super::{Described, xmp};

pub(crate) const XMP_SIG: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const EXIF_SIG: &[u8] = b"Exif\0";
const APP0: u8 = 0xE0;
const APP1: u8 = 0xE1;
const SOS: u8 = 0xDA;
const TAG_IMAGE_DESCRIPTION: u16 = 0x010E;
/// The largest payload of one segment (its 16-bit length counts itself).
const MAX_PAYLOAD: usize = 0xFFFF - 2;

/// One header segment: its marker and its payload (after the length field).
#[derive(Clone, Debug)]
pub(crate) struct Segment<'a> {
    pub marker: u8,
    /// The whole segment as it is in the file (marker, length, payload), or `None` for a
    /// segment built here.
    pub raw: Option<&'a [u8]>,
    pub payload: std::borrow::Cow<'a, [u8]>,
}

impl Segment<'_> {
    fn is_exif(&self) -> bool {
        self.marker == APP1 && self.payload.len() >= 6 && self.payload.starts_with(EXIF_SIG)
    }
    fn is_xmp(&self) -> bool {
        self.marker == APP1 && self.payload.starts_with(XMP_SIG)
    }
}

/// A parsed JPEG: header segments, and the rest of the file from SOS on.
pub(crate) struct Jpeg<'a> {
    pub segments: Vec<Segment<'a>>,
    pub scan: &'a [u8],
}

/// Splits a JPEG into header segments and the scan (from the first SOS to the end).
pub(crate) fn parse(data: &[u8]) -> Result<Jpeg<'_>, String> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return Err("no JPEG start-of-image marker".into());
    }
    let mut segments = Vec::new();
    let mut pos = 2;
    loop {
        if pos >= data.len() {
            return Err("file ends before the image data (no SOS marker)".into());
        }
        if data[pos] != 0xFF {
            return Err(format!("expected a marker at byte {pos}"));
        }
        let start = pos;
        while pos < data.len() && data[pos] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = data.get(pos) else {
            return Err("file ends inside a marker".into());
        };
        pos += 1;
        match marker {
            SOS => {
                let scan = &data[start..];
                // The scan must end somewhere: an EOI marker after it.
                if !scan.windows(2).any(|w| w == [0xFF, 0xD9]) {
                    return Err("image data has no end-of-image marker (truncated?)".into());
                }
                return Ok(Jpeg { segments, scan });
            }
            0xD8 | 0xD9 => return Err(format!("unexpected marker FF{marker:02X} at byte {start}")),
            0x01 | 0xD0..=0xD7 => segments.push(Segment {
                marker,
                raw: Some(&data[start..pos]),
                payload: std::borrow::Cow::Borrowed(&[]),
            }),
            _ => {
                if pos + 2 > data.len() {
                    return Err(format!("segment FF{marker:02X} at byte {start} is cut off"));
                }
                let len = u16::from_be_bytes([data[pos], data[pos + 1]]) as usize;
                if len < 2 || pos + len > data.len() {
                    return Err(format!(
                        "segment FF{marker:02X} at byte {start} runs past the end of the file"
                    ));
                }
                segments.push(Segment {
                    marker,
                    raw: Some(&data[start..pos + len]),
                    payload: std::borrow::Cow::Borrowed(&data[pos + 2..pos + len]),
                });
                pos += len;
            }
        }
    }
}

impl Jpeg<'_> {
    pub fn xmp(&self) -> Option<&[u8]> {
        self.segments
            .iter()
            .find(|s| s.is_xmp())
            .map(|s| &s.payload[XMP_SIG.len()..])
    }

    /// The TIFF block of the EXIF segment.
    pub fn exif_tiff(&self) -> Option<&[u8]> {
        self.segments
            .iter()
            .find(|s| s.is_exif())
            .map(|s| &s.payload[6..])
    }

    fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let mut out = vec![0xFF, 0xD8];
        for s in &self.segments {
            match s.raw {
                Some(raw) => out.extend_from_slice(raw),
                None => {
                    if s.payload.len() > MAX_PAYLOAD {
                        return Err(format!(
                            "a JPEG segment holds at most {MAX_PAYLOAD} bytes; this one needs {}",
                            s.payload.len()
                        ));
                    }
                    out.extend_from_slice(&[0xFF, s.marker]);
                    out.extend_from_slice(&((s.payload.len() + 2) as u16).to_be_bytes());
                    out.extend_from_slice(&s.payload);
                }
            }
        }
        out.extend_from_slice(self.scan);
        Ok(out)
    }
}

/// Why embedding failed: the file is malformed, or the new metadata does not fit a segment.
#[derive(Debug)]
pub(crate) enum EmbedError {
    Corrupt(String),
    TooLarge(String),
}

/// The JPEG with `d` written into its XMP and EXIF segments (created when missing).
pub(crate) fn embed(data: &[u8], d: &Described) -> Result<Vec<u8>, EmbedError> {
    let mut jpeg = parse(data).map_err(EmbedError::Corrupt)?;

    // EXIF: update IFD0 of the existing segment, or add a segment after the APP0 (JFIF) ones.
    let exif_at = jpeg.segments.iter().position(|s| s.is_exif());
    let tiff = match exif_at.map(|i| &jpeg.segments[i].payload[6..]) {
        Some(tiff) => set_image_description(tiff, &d.caption).map_err(EmbedError::Corrupt)?,
        None => new_tiff(&d.caption),
    };
    let mut payload = jpeg
        .segments
        .get(exif_at.unwrap_or(usize::MAX))
        .map(|s| s.payload[..6].to_vec())
        .unwrap_or_else(|| b"Exif\0\0".to_vec());
    payload.extend_from_slice(&tiff);
    if payload.len() > MAX_PAYLOAD {
        return Err(EmbedError::TooLarge(format!(
            "the EXIF segment would be {} bytes (at most {MAX_PAYLOAD})",
            payload.len()
        )));
    }
    let seg = Segment {
        marker: APP1,
        raw: None,
        payload: payload.into(),
    };
    let exif_at = match exif_at {
        Some(i) => {
            jpeg.segments[i] = seg;
            i
        }
        None => {
            let i = jpeg
                .segments
                .iter()
                .take_while(|s| s.marker == APP0)
                .count();
            jpeg.segments.insert(i, seg);
            i
        }
    };

    // XMP: update the existing packet, or add one right after the EXIF segment.
    let xmp_at = jpeg.segments.iter().position(|s| s.is_xmp());
    let packet = match xmp_at {
        Some(i) => {
            let old = std::str::from_utf8(&jpeg.segments[i].payload[XMP_SIG.len()..])
                .map_err(|e| EmbedError::Corrupt(format!("the XMP packet is not UTF-8: {e}")))?;
            let old = old.trim_end_matches('\0');
            xmp::update(old, d).map_err(|e| EmbedError::Corrupt(format!("the XMP packet: {e}")))?
        }
        None => xmp::new_packet(d),
    };
    let mut payload = XMP_SIG.to_vec();
    payload.extend_from_slice(packet.as_bytes());
    if payload.len() > MAX_PAYLOAD {
        return Err(EmbedError::TooLarge(format!(
            "the XMP packet would be {} bytes (a JPEG segment holds at most {MAX_PAYLOAD})",
            payload.len()
        )));
    }
    let seg = Segment {
        marker: APP1,
        raw: None,
        payload: payload.into(),
    };
    match xmp_at {
        Some(i) => jpeg.segments[i] = seg,
        None => jpeg.segments.insert(exif_at + 1, seg),
    }
    jpeg.to_bytes().map_err(EmbedError::TooLarge)
}

// ---- TIFF / EXIF ----

#[derive(Clone, Copy)]
struct Endian(bool); // true = big-endian ("MM")

impl Endian {
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.0 {
            u16::from_be_bytes(s)
        } else {
            u16::from_le_bytes(s)
        })
    }
    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.0 {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        })
    }
    fn put16(self, v: u16) -> [u8; 2] {
        if self.0 {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn put32(self, v: u32) -> [u8; 4] {
        if self.0 {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
}

fn endian(tiff: &[u8]) -> Result<Endian, String> {
    match tiff.get(..4) {
        Some([b'I', b'I', 42, 0]) => Ok(Endian(false)),
        Some([b'M', b'M', 0, 42]) => Ok(Endian(true)),
        _ => Err("the EXIF block has no TIFF header".into()),
    }
}

/// IFD0: its offset and entry count, checked to lie inside the block.
fn ifd0(tiff: &[u8], e: Endian) -> Result<(usize, usize), String> {
    let off = e.u32(tiff, 4).ok_or("EXIF block is cut off")? as usize;
    let n = e
        .u16(tiff, off)
        .ok_or_else(|| format!("EXIF IFD0 offset {off} lies outside the block"))?
        as usize;
    if off + 2 + 12 * n + 4 > tiff.len() {
        return Err(format!(
            "EXIF IFD0 ({n} entries) runs past the end of the block"
        ));
    }
    Ok((off, n))
}

/// The EXIF string bytes for `text`: NUL characters dropped, NUL-terminated.
fn ascii_value(text: &str) -> Vec<u8> {
    let mut v: Vec<u8> = text.bytes().filter(|&b| b != 0).collect();
    v.push(0);
    v
}

/// A new little-endian TIFF block whose IFD0 holds `ImageDescription` and the tags EXIF requires
/// in IFD0 of a JPEG, set to the values the EXIF standard gives as their defaults (what readers
/// assume when they are absent): 72 x 72 pixels per inch, chroma samples centred.
pub(crate) fn new_tiff(text: &str) -> Vec<u8> {
    let e = Endian(false);
    let value = ascii_value(text);
    const N: usize = 5;
    let ifd_end = 8 + 2 + 12 * N + 4;
    let (x_res_at, y_res_at, text_at) = (ifd_end, ifd_end + 8, ifd_end + 16);
    let mut t = b"II*\0".to_vec();
    t.extend_from_slice(&e.put32(8));
    t.extend_from_slice(&e.put16(N as u16));
    t.extend_from_slice(&entry(e, TAG_IMAGE_DESCRIPTION, &value, text_at));
    let mut numeric = |tag: u16, typ: u16, value: [u8; 4]| {
        t.extend_from_slice(&e.put16(tag));
        t.extend_from_slice(&e.put16(typ));
        t.extend_from_slice(&e.put32(1));
        t.extend_from_slice(&value);
    };
    const RATIONAL: u16 = 5;
    const SHORT: u16 = 3;
    numeric(0x011A, RATIONAL, e.put32(x_res_at as u32)); // XResolution
    numeric(0x011B, RATIONAL, e.put32(y_res_at as u32)); // YResolution
    let short = |v: u16| {
        let mut b = [0u8; 4];
        b[..2].copy_from_slice(&e.put16(v));
        b
    };
    numeric(0x0128, SHORT, short(2)); // ResolutionUnit: inches
    numeric(0x0213, SHORT, short(1)); // YCbCrPositioning: centred
    t.extend_from_slice(&e.put32(0));
    for _ in 0..2 {
        t.extend_from_slice(&e.put32(72));
        t.extend_from_slice(&e.put32(1));
    }
    if value.len() > 4 {
        t.extend_from_slice(&value);
    }
    t
}

/// A 12-byte ASCII entry: inline when the value fits 4 bytes, else pointing at `value_offset`.
fn entry(e: Endian, tag: u16, value: &[u8], value_offset: usize) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[0..2].copy_from_slice(&e.put16(tag));
    out[2..4].copy_from_slice(&e.put16(2));
    out[4..8].copy_from_slice(&e.put32(value.len() as u32));
    if value.len() <= 4 {
        out[8..8 + value.len()].copy_from_slice(value);
    } else {
        out[8..12].copy_from_slice(&e.put32(value_offset as u32));
    }
    out
}

/// The TIFF block with IFD0's `ImageDescription` set to `text`. Nothing already in the block
/// moves: a value that needs room is appended at the end; when the tag is new, IFD0 is copied to
/// the end with the entry added and the header pointed at the copy.
pub(crate) fn set_image_description(tiff: &[u8], text: &str) -> Result<Vec<u8>, String> {
    let e = endian(tiff)?;
    let (off, n) = ifd0(tiff, e)?;
    let value = ascii_value(text);
    let mut t = tiff.to_vec();
    let entries = off + 2;
    let found = (0..n).find(|&i| e.u16(tiff, entries + 12 * i) == Some(TAG_IMAGE_DESCRIPTION));
    if let Some(i) = found {
        let at = entries + 12 * i;
        // A value this function appended earlier sits at the very end: reclaim its room.
        let old_count = e.u32(tiff, at + 4).unwrap_or(0) as usize;
        let old_off = e.u32(tiff, at + 8).unwrap_or(0) as usize;
        if old_count > 4 && old_off > off && old_off + old_count == t.len() {
            t.truncate(old_off);
        }
        if t.len() % 2 == 1 {
            t.push(0);
        }
        let value_offset = t.len();
        t[at..at + 12].copy_from_slice(&entry(e, TAG_IMAGE_DESCRIPTION, &value, value_offset));
        if value.len() > 4 {
            t.extend_from_slice(&value);
        }
        return Ok(t);
    }
    // Copy IFD0 to the end with the new entry in tag order.
    if t.len() % 2 == 1 {
        t.push(0);
    }
    let new_off = t.len();
    let new_n = n + 1;
    let value_offset = new_off + 2 + 12 * new_n + 4;
    let new_entry = entry(e, TAG_IMAGE_DESCRIPTION, &value, value_offset);
    let mut ifd = Vec::with_capacity(2 + 12 * new_n + 4);
    ifd.extend_from_slice(&e.put16(new_n as u16));
    let mut inserted = false;
    for i in 0..n {
        let at = entries + 12 * i;
        let tag = e.u16(tiff, at).unwrap_or(0);
        if !inserted && tag > TAG_IMAGE_DESCRIPTION {
            ifd.extend_from_slice(&new_entry);
            inserted = true;
        }
        ifd.extend_from_slice(&tiff[at..at + 12]);
    }
    if !inserted {
        ifd.extend_from_slice(&new_entry);
    }
    ifd.extend_from_slice(&tiff[entries + 12 * n..entries + 12 * n + 4]); // next-IFD pointer
    if n >= u16::MAX as usize {
        return Err("EXIF IFD0 is full".into());
    }
    t.extend_from_slice(&ifd);
    if value.len() > 4 {
        t.extend_from_slice(&value);
    }
    t[4..8].copy_from_slice(&e.put32(new_off as u32));
    Ok(t)
}

/// IFD0's `ImageDescription`, if present and not empty.
pub(crate) fn image_description(tiff: &[u8]) -> Result<Option<String>, String> {
    let e = endian(tiff)?;
    let (off, n) = ifd0(tiff, e)?;
    for i in 0..n {
        let at = off + 2 + 12 * i;
        if e.u16(tiff, at) != Some(TAG_IMAGE_DESCRIPTION) {
            continue;
        }
        let count = e.u32(tiff, at + 4).unwrap_or(0) as usize;
        let bytes = if count <= 4 {
            &tiff[at + 8..at + 8 + count]
        } else {
            let o = e.u32(tiff, at + 8).unwrap_or(0) as usize;
            tiff.get(o..o.saturating_add(count))
                .ok_or("EXIF ImageDescription lies outside the block")?
        };
        let bytes = bytes.split(|&b| b == 0).next().unwrap_or(&[]);
        let text = match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            // Older cameras and tools wrote Latin-1.
            Err(_) => bytes.iter().map(|&b| b as char).collect(),
        };
        let text = text.trim();
        return Ok((!text.is_empty()).then(|| text.to_string()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tiff_reads_back() {
        for text in ["", "abc", "a longer caption é"] {
            let t = new_tiff(text);
            let got = image_description(&t).unwrap();
            assert_eq!(got.as_deref(), (!text.is_empty()).then_some(text));
        }
    }

    #[test]
    fn set_twice_does_not_grow() {
        let t = new_tiff("first caption here");
        let a = set_image_description(&t, "second caption here").unwrap();
        let b = set_image_description(&a, "second caption here").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            image_description(&b).unwrap().as_deref(),
            Some("second caption here")
        );
    }
}
