//! PNG: a chunk walker (CRCs checked) and the XMP `iTXt` chunk (keyword `XML:com.adobe.xmp`).

use std::io::Read;

use super::{Described, xmp};

pub(crate) const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
const XMP_KEYWORD: &[u8] = b"XML:com.adobe.xmp";

/// One chunk as it is in the file.
pub(crate) struct Chunk<'a> {
    pub kind: [u8; 4],
    pub data: &'a [u8],
    /// The whole chunk (length, type, data, CRC).
    pub raw: &'a [u8],
}

/// Splits a PNG into chunks, checking the signature, each CRC, IHDR first and IEND last.
/// Bytes after IEND are returned as the second value and kept as they are.
pub(crate) fn parse(data: &[u8]) -> Result<(Vec<Chunk<'_>>, &[u8]), String> {
    if !data.starts_with(SIGNATURE) {
        return Err("no PNG signature".into());
    }
    let mut chunks = Vec::new();
    let mut pos = SIGNATURE.len();
    loop {
        let Some(head) = data.get(pos..pos + 8) else {
            return Err(format!("file ends at byte {pos}, before the IEND chunk"));
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = [head[4], head[5], head[6], head[7]];
        let end = pos
            .checked_add(12)
            .and_then(|p| p.checked_add(len))
            .filter(|&e| e <= data.len())
            .ok_or_else(|| {
                format!(
                    "chunk {} at byte {pos} runs past the end of the file",
                    String::from_utf8_lossy(&kind)
                )
            })?;
        let crc = u32::from_be_bytes([data[end - 4], data[end - 3], data[end - 2], data[end - 1]]);
        if crc32fast::hash(&data[pos + 4..end - 4]) != crc {
            return Err(format!(
                "chunk {} at byte {pos} has a wrong CRC",
                String::from_utf8_lossy(&kind)
            ));
        }
        if chunks.is_empty() && &kind != b"IHDR" {
            return Err("the first chunk is not IHDR".into());
        }
        chunks.push(Chunk {
            kind,
            data: &data[pos + 8..end - 4],
            raw: &data[pos..end],
        });
        pos = end;
        if &kind == b"IEND" {
            return Ok((chunks, &data[pos..]));
        }
    }
}

/// The text of an iTXt chunk if it is the XMP one (decompressed when it was compressed).
fn xmp_text(c: &Chunk) -> Result<Option<String>, String> {
    if &c.kind != b"iTXt" || !c.data.starts_with(XMP_KEYWORD) {
        return Ok(None);
    }
    let d = c.data;
    if d.get(XMP_KEYWORD.len()) != Some(&0) {
        return Ok(None);
    }
    let mut p = XMP_KEYWORD.len() + 1;
    let (Some(&flag), Some(&method)) = (d.get(p), d.get(p + 1)) else {
        return Err("the XMP iTXt chunk is cut off".into());
    };
    p += 2;
    // Language tag and translated keyword, each NUL-terminated.
    for _ in 0..2 {
        let n = d[p.min(d.len())..]
            .iter()
            .position(|&b| b == 0)
            .ok_or("the XMP iTXt chunk is cut off")?;
        p += n + 1;
    }
    let body = &d[p..];
    let bytes = match (flag, method) {
        (0, _) => body.to_vec(),
        (1, 0) => {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(body)
                .read_to_end(&mut out)
                .map_err(|e| format!("the XMP iTXt chunk cannot be decompressed: {e}"))?;
            out
        }
        _ => {
            return Err(format!(
                "the XMP iTXt chunk uses unknown compression {flag}/{method}"
            ));
        }
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|e| format!("the XMP iTXt chunk is not UTF-8: {e}"))
}

/// The XMP packet of a PNG, if it has one.
pub(crate) fn xmp(data: &[u8]) -> Result<Option<String>, String> {
    let (chunks, _) = parse(data)?;
    for c in &chunks {
        if let Some(t) = xmp_text(c)? {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

fn chunk_bytes(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 12);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    out.extend_from_slice(&h.finalize().to_be_bytes());
    out
}

/// The PNG with `d` in its XMP iTXt chunk: the existing chunk replaced where it is, or a new
/// (uncompressed) one added before the first IDAT. Every other chunk is copied unchanged.
pub(crate) fn embed(data: &[u8], d: &Described) -> Result<Vec<u8>, String> {
    let (chunks, trailer) = parse(data)?;
    let mut existing = None;
    for (i, c) in chunks.iter().enumerate() {
        if let Some(t) = xmp_text(c)? {
            existing = Some((i, t));
            break;
        }
    }
    let packet = match &existing {
        Some((_, old)) => xmp::update(old.trim_end_matches('\0'), d)
            .map_err(|e| format!("the XMP packet: {e}"))?,
        None => xmp::new_packet(d),
    };
    let mut body = XMP_KEYWORD.to_vec();
    body.extend_from_slice(&[0, 0, 0, 0, 0]); // NUL, uncompressed, method 0, no language, no translation
    body.extend_from_slice(packet.as_bytes());
    let new_chunk = chunk_bytes(b"iTXt", &body);
    let insert_at = match &existing {
        Some((i, _)) => *i,
        None => chunks
            .iter()
            .position(|c| &c.kind == b"IDAT")
            .ok_or("the PNG has no IDAT chunk")?,
    };
    let mut out = Vec::with_capacity(data.len() + new_chunk.len());
    out.extend_from_slice(SIGNATURE);
    for (i, c) in chunks.iter().enumerate() {
        if i == insert_at {
            out.extend_from_slice(&new_chunk);
            if existing.is_some() {
                continue;
            }
        }
        out.extend_from_slice(c.raw);
    }
    out.extend_from_slice(trailer);
    Ok(out)
}
