//! XMP packets: reading `dc:description` / `dc:subject`, writing a new packet, and updating an
//! existing one in place.
//!
//! Updating splices bytes: everything outside the two replaced properties is kept exactly as it
//! was (other namespaces, comments, padding, formatting). Inside `dc:description`, the
//! `rdf:li` entries of other languages are kept byte for byte; only `x-default` is replaced.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::Described;

pub(crate) const NS_DC: &[u8] = b"http://purl.org/dc/elements/1.1/";
pub(crate) const NS_RDF: &[u8] = b"http://www.w3.org/1999/02/22-rdf-syntax-ns#";
const NS_DC_STR: &str = "http://purl.org/dc/elements/1.1/";
const NS_RDF_STR: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";

/// Drops characters XML 1.0 cannot carry (C0 controls other than tab, newline and carriage
/// return; U+FFFE and U+FFFF).
pub(crate) fn xml_safe(s: &str) -> String {
    s.chars()
        .filter(|&c| {
            !((c < '\u{20}' && c != '\t' && c != '\n' && c != '\r')
                || c == '\u{FFFE}'
                || c == '\u{FFFF}')
        })
        .collect()
}

fn esc(s: &str) -> String {
    quick_xml::escape::escape(xml_safe(s).as_str()).into_owned()
}

/// The `<rdf:li>` items of a bag of subjects, with `rdf` as the prefix (`"rdf:"` or `""`).
fn subject_items(rdf: &str, subjects: &[String]) -> String {
    subjects
        .iter()
        .map(|s| format!("<{rdf}li>{}</{rdf}li>", esc(s)))
        .collect()
}

/// A fresh XMP packet holding `dc:description` (x-default) and, when there are any, `dc:subject`.
pub(crate) fn new_packet(d: &Described) -> String {
    format!(
        "<?xpacket begin=\"\u{FEFF}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\" x:xmptk=\"captioner\">\n\
         <rdf:RDF xmlns:rdf=\"{NS_RDF_STR}\">\n{}</rdf:RDF>\n</x:xmpmeta>\n\
         <?xpacket end=\"w\"?>",
        new_description_block(d)
    )
}

/// A whole `rdf:Description` holding the two properties, declaring the namespaces it uses.
fn new_description_block(d: &Described) -> String {
    let mut s = format!(
        "<rdf:Description xmlns:rdf=\"{NS_RDF_STR}\" xmlns:dc=\"{NS_DC_STR}\" rdf:about=\"\">\n"
    );
    s.push_str(&format!(
        "<dc:description><rdf:Alt><rdf:li xml:lang=\"x-default\">{}</rdf:li></rdf:Alt></dc:description>\n",
        esc(&d.caption)
    ));
    if !d.subjects.is_empty() {
        s.push_str(&format!(
            "<dc:subject><rdf:Bag>{}</rdf:Bag></dc:subject>\n",
            subject_items("rdf:", &d.subjects)
        ));
    }
    s.push_str("</rdf:Description>\n");
    s
}

fn is_ns(r: &ResolveResult, ns: &[u8]) -> bool {
    matches!(r, ResolveResult::Bound(n) if n.as_ref() == ns)
}

fn qname(e: &BytesStart) -> String {
    String::from_utf8_lossy(e.name().as_ref()).into_owned()
}

/// The prefix part of a qualified name including the colon (`"rdf:"`), or `""`.
fn prefix_of(qname: &str) -> String {
    match qname.find(':') {
        Some(i) => qname[..=i].to_string(),
        None => String::new(),
    }
}

fn lang_of(e: &BytesStart) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        (a.key.as_ref() == b"xml:lang")
            .then(|| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .ok()
                    .map(|v| v.into_owned())
            })
            .flatten()
    })
}

fn err_at(reader: &NsReader<&[u8]>, e: impl std::fmt::Display) -> String {
    format!("{e} (at byte {})", reader.error_position())
}

fn pos(reader: &NsReader<&[u8]>) -> usize {
    reader.buffer_position() as usize
}

/// Text of a run of Text / CData / entity-reference events.
fn push_text(out: &mut String, ev: &Event) -> Result<(), String> {
    match ev {
        Event::Text(t) => out.push_str(&t.xml10_content().map_err(|e| e.to_string())?),
        Event::CData(t) => out.push_str(&t.xml10_content().map_err(|e| e.to_string())?),
        Event::GeneralRef(r) => {
            if let Some(c) = r.resolve_char_ref().map_err(|e| e.to_string())? {
                out.push(c);
            } else {
                let name = r.decode().map_err(|e| e.to_string())?;
                match quick_xml::escape::resolve_predefined_entity(&name) {
                    Some(v) => out.push_str(v),
                    None => return Err(format!("unknown entity &{name};")),
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// What [`parse`] finds in a packet.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// `(language, text)` of each `dc:description` item, in order.
    pub descriptions: Vec<(Option<String>, String)>,
    pub subjects: Vec<String>,
}

impl Parsed {
    /// The x-default description, else the first one.
    pub fn caption(&self) -> Option<String> {
        self.descriptions
            .iter()
            .find(|(l, _)| {
                l.as_deref()
                    .is_some_and(|l| l.eq_ignore_ascii_case("x-default"))
            })
            .or_else(|| self.descriptions.first())
            .map(|(_, t)| t.trim().to_string())
            .filter(|t| !t.is_empty())
    }
}

/// Reads `dc:description` and `dc:subject` from an XMP packet (or sidecar).
pub(crate) fn parse(xml: &str) -> Result<Parsed, String> {
    let mut reader = NsReader::from_str(xml);
    let mut out = Parsed::default();
    // Which property we are inside (0 = none, 1 = description, 2 = subject), its depth, and
    // the current li's language and text.
    let mut depth = 0usize;
    let mut prop: u8 = 0;
    let mut prop_depth = 0usize;
    let mut li: Option<(Option<String>, String)> = None;
    let mut simple = String::new();
    loop {
        let (ns, ev) = reader
            .read_resolved_event()
            .map_err(|e| format!("{e}"))
            .map(|(n, e)| (n.into_owned_static(), e))?;
        match &ev {
            Event::Start(e) | Event::Empty(e) => {
                let empty = matches!(ev, Event::Empty(_));
                let local = e.local_name();
                if prop == 0 {
                    if is_ns(&ns, NS_DC) && matches!(local.as_ref(), b"description" | b"subject") {
                        if !empty {
                            prop = if local.as_ref() == b"description" {
                                1
                            } else {
                                2
                            };
                            prop_depth = depth + 1;
                            simple.clear();
                        }
                    } else if is_ns(&ns, NS_RDF) && local.as_ref() == b"Description" {
                        // Attribute form: <rdf:Description dc:description="...">.
                        for a in e.attributes().flatten() {
                            let (ans, alocal) = reader.resolver().resolve_attribute(a.key);
                            if is_ns(&ans, NS_DC) {
                                let v = a
                                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                    .map_err(|x| x.to_string())?;
                                match alocal.as_ref() {
                                    b"description" => out.descriptions.push((None, v.into_owned())),
                                    b"subject" => out.subjects.push(v.into_owned()),
                                    _ => {}
                                }
                            }
                        }
                    }
                } else if is_ns(&ns, NS_RDF) && local.as_ref() == b"li" && !empty {
                    li = Some((lang_of(e), String::new()));
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::End(_) => {
                if prop != 0 && depth == prop_depth {
                    let s = simple.trim();
                    if !s.is_empty() {
                        if prop == 1 {
                            out.descriptions.push((None, s.to_string()));
                        } else {
                            out.subjects.push(s.to_string());
                        }
                    }
                    prop = 0;
                } else if let Some((lang, text)) = li.take() {
                    if prop == 1 {
                        out.descriptions.push((lang, text));
                    } else if prop == 2 {
                        out.subjects.push(text);
                    }
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                if let Some((_, text)) = li.as_mut() {
                    push_text(text, &ev)?;
                } else if prop != 0 && depth == prop_depth {
                    push_text(&mut simple, &ev)?;
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

trait IntoOwnedStatic {
    fn into_owned_static(self) -> ResolveResult<'static>;
}

impl IntoOwnedStatic for ResolveResult<'_> {
    fn into_owned_static(self) -> ResolveResult<'static> {
        match self {
            ResolveResult::Unbound => ResolveResult::Unbound,
            ResolveResult::Bound(n) => {
                // Only the two namespaces we compare against matter; map the rest to Unknown.
                if n.as_ref() == NS_DC {
                    ResolveResult::Bound(quick_xml::name::Namespace(NS_DC))
                } else if n.as_ref() == NS_RDF {
                    ResolveResult::Bound(quick_xml::name::Namespace(NS_RDF))
                } else {
                    ResolveResult::Unknown(n.as_ref().to_vec())
                }
            }
            ResolveResult::Unknown(p) => ResolveResult::Unknown(p),
        }
    }
}

/// Replaces `dc:description` (x-default; other languages kept) and, when `d.subjects` is not
/// empty, `dc:subject` in an existing packet; adds them when absent. Everything else is kept
/// byte for byte.
pub(crate) fn update(xml: &str, d: &Described) -> Result<String, String> {
    let mut reader = NsReader::from_str(xml);
    // (start, end, replacement) splices, in order.
    let mut splices: Vec<(usize, usize, String)> = Vec::new();
    let mut have_desc = false;
    let mut have_subj = false;
    let mut rdf_end: Option<usize> = None;
    let mut depth = 0usize;
    let mut rdf_depth: Option<usize> = None;
    loop {
        let before = pos(&reader);
        let (ns, ev) = reader
            .read_resolved_event()
            .map_err(|e| e.to_string())
            .map(|(n, e)| (n.into_owned_static(), e))?;
        match ev {
            Event::Start(e) => {
                let local = e.local_name();
                depth += 1;
                if is_ns(&ns, NS_RDF) && local.as_ref() == b"RDF" && rdf_depth.is_none() {
                    rdf_depth = Some(depth);
                } else if is_ns(&ns, NS_DC) && local.as_ref() == b"description" && !have_desc {
                    have_desc = true;
                    let start_tag = xml[before..pos(&reader)].to_string();
                    let (end, replacement) = replace_container(
                        &mut reader,
                        xml,
                        &e,
                        &start_tag,
                        Items::Caption(&d.caption),
                    )?;
                    depth -= 1;
                    splices.push((before, end, replacement));
                } else if is_ns(&ns, NS_DC) && local.as_ref() == b"subject" && !have_subj {
                    have_subj = true;
                    let start_tag = xml[before..pos(&reader)].to_string();
                    let (end, replacement) = replace_container(
                        &mut reader,
                        xml,
                        &e,
                        &start_tag,
                        Items::Subjects(&d.subjects),
                    )?;
                    depth -= 1;
                    if !d.subjects.is_empty() {
                        splices.push((before, end, replacement));
                    }
                }
            }
            Event::Empty(e) => {
                let local = e.local_name();
                if is_ns(&ns, NS_DC) && local.as_ref() == b"description" && !have_desc {
                    have_desc = true;
                    let q = qname(&e);
                    let rdf = "rdf:";
                    let replacement = format!(
                        "<{q} xmlns:{}=\"{NS_DC_STR}\"><{rdf}Alt xmlns:rdf=\"{NS_RDF_STR}\"><{rdf}li xml:lang=\"x-default\">{}</{rdf}li></{rdf}Alt></{q}>",
                        prefix_of(&q).trim_end_matches(':'),
                        esc(&d.caption)
                    );
                    let replacement = if prefix_of(&q).is_empty() {
                        replacement.replacen(" xmlns:=", " xmlns=", 1)
                    } else {
                        replacement
                    };
                    splices.push((before, pos(&reader), replacement));
                } else if is_ns(&ns, NS_DC) && local.as_ref() == b"subject" && !have_subj {
                    have_subj = true;
                    if !d.subjects.is_empty() {
                        let q = qname(&e);
                        let p = prefix_of(&q);
                        let decl = if p.is_empty() {
                            format!("xmlns=\"{NS_DC_STR}\"")
                        } else {
                            format!("xmlns:{}=\"{NS_DC_STR}\"", p.trim_end_matches(':'))
                        };
                        splices.push((
                            before,
                            pos(&reader),
                            format!(
                                "<{q} {decl}><rdf:Bag xmlns:rdf=\"{NS_RDF_STR}\">{}</rdf:Bag></{q}>",
                                subject_items("rdf:", &d.subjects)
                            ),
                        ));
                    }
                }
            }
            Event::End(_) => {
                if rdf_depth == Some(depth) && rdf_end.is_none() {
                    rdf_end = Some(before);
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let Some(rdf_end) = rdf_end else {
        return Err("no rdf:RDF element".to_string());
    };
    if !have_desc || (!have_subj && !d.subjects.is_empty()) {
        let missing = Described {
            caption: d.caption.clone(),
            subjects: if have_subj {
                Vec::new()
            } else {
                d.subjects.clone()
            },
        };
        let mut block = new_description_block(&missing);
        if have_desc {
            // Only dc:subject is missing.
            block = format!(
                "<rdf:Description xmlns:rdf=\"{NS_RDF_STR}\" xmlns:dc=\"{NS_DC_STR}\" rdf:about=\"\">\n\
                 <dc:subject><rdf:Bag>{}</rdf:Bag></dc:subject>\n</rdf:Description>\n",
                subject_items("rdf:", &d.subjects)
            );
        }
        splices.push((rdf_end, rdf_end, block));
    }
    splices.sort_by_key(|s| s.0);
    let mut out = String::with_capacity(xml.len() + 256);
    let mut at = 0;
    for (start, end, text) in splices {
        out.push_str(&xml[at..start]);
        out.push_str(&text);
        at = end;
    }
    out.push_str(&xml[at..]);
    Ok(out)
}

/// The new items of a property: a caption (x-default) or subjects.
enum Items<'a> {
    Caption(&'a str),
    Subjects(&'a [String]),
}

/// Reads through a `dc:description` or `dc:subject` element (its start tag already read) and
/// returns where it ends and its replacement: the same start tag, the same container
/// (`rdf:Alt`, `rdf:Bag`) start tag when there is one, the new items, and for a description the
/// other languages' items byte for byte.
fn replace_container(
    reader: &mut NsReader<&[u8]>,
    xml: &str,
    desc: &BytesStart,
    desc_start_tag: &str,
    items: Items,
) -> Result<(usize, String), String> {
    let keep_languages = matches!(items, Items::Caption(_));
    let desc_q = qname(desc);
    let mut alt: Option<(String, String)> = None; // (start tag, qname)
    let mut kept = String::new();
    let mut depth = 1usize;
    loop {
        let before = pos(reader);
        let (ns, ev) = reader
            .read_resolved_event()
            .map_err(|e| e.to_string())
            .map(|(n, e)| (n.into_owned_static(), e))?;
        match ev {
            Event::Start(e) => {
                depth += 1;
                if depth == 2 && is_ns(&ns, NS_RDF) && alt.is_none() {
                    alt = Some((xml[before..pos(reader)].to_string(), qname(&e)));
                } else if depth == 3 && is_ns(&ns, NS_RDF) && e.local_name().as_ref() == b"li" {
                    let lang = lang_of(&e);
                    let name = e.name().as_ref().to_vec();
                    reader
                        .read_to_end(quick_xml::name::QName(&name))
                        .map_err(|x| err_at(reader, x))?;
                    depth -= 1;
                    let is_default = lang
                        .as_deref()
                        .is_none_or(|l| l.eq_ignore_ascii_case("x-default"));
                    if keep_languages && !is_default {
                        kept.push_str(&xml[before..pos(reader)]);
                    }
                }
            }
            Event::Empty(e)
                if keep_languages
                    && depth == 2
                    && is_ns(&ns, NS_RDF)
                    && e.local_name().as_ref() == b"li"
                    && lang_of(&e)
                        .as_deref()
                        .is_some_and(|l| !l.eq_ignore_ascii_case("x-default")) =>
            {
                kept.push_str(&xml[before..pos(reader)]);
            }
            Event::End(_) => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Event::Eof => return Err("dc:description is not closed".to_string()),
            _ => {}
        }
    }
    let end = pos(reader);
    let item = |rdf: &str| match items {
        Items::Caption(caption) => {
            format!("<{rdf}li xml:lang=\"x-default\">{}</{rdf}li>", esc(caption))
        }
        Items::Subjects(subjects) => subject_items(rdf, subjects),
    };
    let container = if keep_languages { "Alt" } else { "Bag" };
    let replacement = match alt {
        Some((alt_tag, alt_q)) => {
            let rdf = prefix_of(&alt_q);
            format!(
                "{desc_start_tag}{alt_tag}{}{kept}</{alt_q}></{desc_q}>",
                item(&rdf)
            )
        }
        None => format!(
            "{desc_start_tag}<rdf:{container} xmlns:rdf=\"{NS_RDF_STR}\">{}{kept}</rdf:{container}></{desc_q}>",
            item("rdf:")
        ),
    };
    Ok((end, replacement))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: &str, s: &[&str]) -> Described {
        Described {
            caption: c.into(),
            subjects: s.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn new_packet_round_trips() {
        let p = new_packet(&d("a <b> & \"c\" é 日本語 🐕", &["dog", "x&y"]));
        let parsed = parse(&p).unwrap();
        assert_eq!(parsed.caption().unwrap(), "a <b> & \"c\" é 日本語 🐕");
        assert_eq!(parsed.subjects, vec!["dog", "x&y"]);
    }

    #[test]
    fn update_keeps_other_languages_and_namespaces() {
        let xml = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="3">
<dc:description><rdf:Alt><rdf:li xml:lang="x-default">old</rdf:li><rdf:li xml:lang="fr-FR">un chien</rdf:li></rdf:Alt></dc:description>
<dc:subject><rdf:Bag><rdf:li>old tag</rdf:li></rdf:Bag></dc:subject>
</rdf:Description></rdf:RDF></x:xmpmeta>"#;
        let out = update(xml, &d("new", &["a", "b"])).unwrap();
        assert!(out.contains("xmp:Rating=\"3\""));
        assert!(out.contains("<rdf:li xml:lang=\"fr-FR\">un chien</rdf:li>"));
        let p = parse(&out).unwrap();
        assert_eq!(p.caption().unwrap(), "new");
        assert_eq!(p.subjects, vec!["a", "b"]);
        assert_eq!(p.descriptions.len(), 2);
        // Empty subjects leave dc:subject as it was.
        let out2 = update(&out, &d("newer", &[])).unwrap();
        assert_eq!(parse(&out2).unwrap().subjects, vec!["a", "b"]);
    }

    #[test]
    fn update_adds_missing_properties() {
        let xml = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Make="Acme"/></rdf:RDF></x:xmpmeta>"#;
        let out = update(xml, &d("hello", &["t"])).unwrap();
        assert!(out.contains("tiff:Make=\"Acme\""));
        let p = parse(&out).unwrap();
        assert_eq!(p.caption().unwrap(), "hello");
        assert_eq!(p.subjects, vec!["t"]);
    }

    #[test]
    fn other_prefixes_and_first_language() {
        let xml = r#"<r:RDF xmlns:r="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><r:Description xmlns:e="http://purl.org/dc/elements/1.1/"><e:description><r:Alt><r:li xml:lang="de">Hund</r:li></r:Alt></e:description></r:Description></r:RDF>"#;
        assert_eq!(parse(xml).unwrap().caption().unwrap(), "Hund");
        let out = update(xml, &d("dog", &[])).unwrap();
        let p = parse(&out).unwrap();
        assert_eq!(p.caption().unwrap(), "dog");
        assert!(out.contains("<r:li xml:lang=\"de\">Hund</r:li>"));
    }

    #[test]
    fn update_is_idempotent() {
        let d = d("same <caption>", &["a", "b"]);
        let once = update(&new_packet(&d), &d).unwrap();
        assert_eq!(once, new_packet(&d));
        assert_eq!(update(&once, &d).unwrap(), once);
    }

    #[test]
    fn malformed_is_an_error() {
        assert!(update("<a><b></a>", &d("x", &[])).is_err());
        assert!(update("<a/>", &d("x", &[])).is_err());
    }
}
