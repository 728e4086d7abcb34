//! A plain, readable PDF of a CDA document, for sources that have no PDF of their own: the
//! header (title, patient, author, custodian, date) and each section's title and narrative
//! text, in Helvetica on A4 pages. The standard font is not embedded, so the output does not
//! claim PDF/A conformance.

use crate::error::{Error, Result};
use lopdf::{dictionary, Document, Object, Stream};
use quick_xml::events::Event;

/// What the renderer shows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CdaSummary {
    /// `ClinicalDocument/title`.
    pub title: String,
    /// Header lines (`label: value`).
    pub header: Vec<String>,
    /// `(section title, narrative paragraphs)`.
    pub sections: Vec<(String, Vec<String>)>,
}

/// Reads the header and narrative of a CDA.
pub fn summarize(xml: &[u8]) -> Result<CdaSummary> {
    crate::attachment::check_cda_root(xml)?;
    let mut r = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut s = CdaSummary::default();
    let mut patient = (String::new(), String::new());
    let mut author = String::new();
    let mut custodian = String::new();
    let mut date = String::new();
    let mut in_text = 0usize;
    let mut para = String::new();
    loop {
        let ev = r
            .read_event_into(&mut buf)
            .map_err(|e| Error::Attachment(format!("CDA not readable: {e}")))?;
        match ev {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if name == "effectiveTime" && path.len() == 1 {
                    date = attr(&e, b"value");
                }
                if name == "section" {
                    s.sections.push((String::new(), Vec::new()));
                }
                if name == "text" && path.last().map(String::as_str) == Some("section") {
                    in_text += 1;
                } else if in_text > 0 {
                    in_text += 1;
                    if matches!(name.as_str(), "paragraph" | "tr" | "item" | "caption") {
                        flush(&mut para, &mut s);
                    }
                }
                path.push(name);
            }
            Event::Empty(e) => {
                let name = e.local_name();
                if name.as_ref() == b"effectiveTime" && path.len() == 1 {
                    date = attr(&e, b"value");
                }
                if in_text > 0 && name.as_ref() == b"br" {
                    flush(&mut para, &mut s);
                }
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                if in_text > 0 {
                    in_text -= 1;
                    if in_text == 0 || matches!(name.as_str(), "paragraph" | "tr" | "item") {
                        flush(&mut para, &mut s);
                    } else if name == "td" || name == "th" {
                        para.push_str(" | ");
                    }
                }
            }
            Event::Text(t) => {
                let txt = t
                    .unescape()
                    .map(|c| c.into_owned())
                    .unwrap_or_else(|_| String::from_utf8_lossy(&t).into_owned());
                let txt = txt.split_whitespace().collect::<Vec<_>>().join(" ");
                if txt.is_empty() {
                    // nothing
                } else if in_text > 0 {
                    if !para.is_empty() && !para.ends_with(' ') {
                        para.push(' ');
                    }
                    para.push_str(&txt);
                } else {
                    let p: Vec<&str> = path.iter().map(String::as_str).collect();
                    match p.as_slice() {
                        [_, "title"] => s.title = txt,
                        [.., "section", "title"] => {
                            if let Some(sec) = s.sections.last_mut() {
                                sec.0 = txt;
                            }
                        }
                        [_, "recordTarget", .., "patient", "name", "given"] => {
                            patient.0 = join(&patient.0, &txt)
                        }
                        [_, "recordTarget", .., "patient", "name", "family"] => {
                            patient.1 = join(&patient.1, &txt)
                        }
                        [_, "author", .., "name", _] => author = join(&author, &txt),
                        [_, "custodian", .., "name"] => custodian = join(&custodian, &txt),
                        _ => {}
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let name = join(&patient.0, &patient.1);
    for (label, v) in [
        ("Paziente", name),
        ("Autore", author),
        ("Custode", custodian),
        ("Data", pretty_date(&date)),
    ] {
        if !v.is_empty() {
            s.header.push(format!("{label}: {v}"));
        }
    }
    s.sections.retain(|(t, p)| !t.is_empty() || !p.is_empty());
    Ok(s)
}

fn flush(para: &mut String, s: &mut CdaSummary) {
    let t = para.trim().trim_end_matches('|').trim().to_string();
    if !t.is_empty() {
        if let Some(sec) = s.sections.last_mut() {
            sec.1.push(t);
        }
    }
    para.clear();
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a} {b}"),
    }
}

fn attr(e: &quick_xml::events::BytesStart<'_>, key: &[u8]) -> String {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == key)
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
        .unwrap_or_default()
}

fn pretty_date(v: &str) -> String {
    if v.len() >= 8 && v[..8].bytes().all(|b| b.is_ascii_digit()) {
        format!("{}/{}/{}", &v[6..8], &v[4..6], &v[..4])
    } else {
        v.to_string()
    }
}

/// Windows-1252 bytes for Helvetica's WinAnsiEncoding ('?' for what it cannot show).
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c as u32 {
            0x20..=0x7e | 0xa0..=0xff => c as u8,
            0x20ac => 0x80,
            0x2019 | 0x2018 => b'\'',
            0x201c | 0x201d => b'"',
            0x2013 | 0x2014 => b'-',
            _ => b'?',
        })
        .collect()
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for w in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + w.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Renders the CDA to a PDF.
pub fn render_cda(xml: &[u8]) -> Result<Vec<u8>> {
    let s = summarize(xml)?;
    // (font size, text) lines
    let mut lines: Vec<(u8, String)> = Vec::new();
    lines.push((
        16,
        if s.title.is_empty() {
            "Documento clinico".into()
        } else {
            s.title.clone()
        },
    ));
    lines.push((10, String::new()));
    for h in &s.header {
        for l in wrap(h, 95) {
            lines.push((10, l));
        }
    }
    for (title, paras) in &s.sections {
        lines.push((10, String::new()));
        for l in wrap(title, 75) {
            lines.push((12, l));
        }
        for p in paras {
            for l in wrap(p, 95) {
                lines.push((10, l));
            }
        }
    }
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let bold_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica-Bold",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources = dictionary! { "Font" => dictionary! { "F1" => font_id, "F2" => bold_id } };
    let mut kids = Vec::new();
    let top = 800.0f32;
    let bottom = 50.0f32;
    let mut chunks: Vec<Vec<(u8, String)>> = vec![Vec::new()];
    let mut y = top;
    for l in lines {
        let h = l.0 as f32 * 1.4;
        if y - h < bottom {
            chunks.push(Vec::new());
            y = top;
        }
        y -= h;
        if let Some(c) = chunks.last_mut() {
            c.push(l);
        }
    }
    let n = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut content = Vec::new();
        let mut y = top;
        for (size, text) in chunk {
            y -= size as f32 * 1.4;
            if text.is_empty() {
                continue;
            }
            let font = if size > 10 { "F2" } else { "F1" };
            content.extend_from_slice(format!("BT /{font} {size} Tf 50 {y:.1} Td (").as_bytes());
            content.extend(escape(&win_ansi(&text)));
            content.extend_from_slice(b") Tj ET\n");
        }
        let footer = format!("BT /F1 8 Tf 50 30 Td (Pagina {} di {n}) Tj ET\n", i + 1);
        content.extend_from_slice(footer.as_bytes());
        let mut stream = Stream::new(dictionary! {}, content);
        stream
            .compress()
            .map_err(|e| Error::Malformed(format!("compression: {e}")))?;
        let content_id = doc.add_object(stream);
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            "Resources" => resources.clone(),
        });
        kids.push(Object::Reference(page_id));
    }
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Count" => n as i64, "Kids" => kids }),
    );
    let info_id = doc.add_object(dictionary! {
        "Title" => Object::string_literal(win_ansi(&s.title)),
        "Producer" => Object::string_literal("fse"),
    });
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    doc.trailer.set("Info", info_id);
    let mut out = Vec::new();
    doc.save_to(&mut out)
        .map_err(|e| Error::Malformed(format!("cannot write the PDF: {e}")))?;
    Ok(out)
}

fn escape(b: &[u8]) -> Vec<u8> {
    let mut o = Vec::with_capacity(b.len());
    for &c in b {
        if matches!(c, b'(' | b')' | b'\\') {
            o.push(b'\\');
        }
        o.push(c);
    }
    o
}
