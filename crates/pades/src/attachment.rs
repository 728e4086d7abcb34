//! The `cda.xml` attachment: where the gateway looks for it, how to read it, and how to put
//! it into a PDF (replacing an existing `cda.xml`, refusing an ambiguous one).
//!
//! The gateway has two extractors: one reads only the root `/Names /EmbeddedFiles` array and
//! matches a filespec's `/F` written as the plain ASCII string `cda.xml`; the other reads `/UF`
//! first and one level of `/Kids`. We write the key, `/F` and `/UF` as plain `cda.xml` in the
//! root array, which both find, plus `/AF` and `/AFRelationship /Alternative` as PDF/A-3 wants.

use crate::document::{SourcePdf, MAX_DECOMPRESSED};
use crate::error::{Error, Result};
use crate::incremental::IncrementalUpdate;
use lopdf::{Dictionary, Object, ObjectId, Stream, StringFormat};

/// The attachment name the gateway looks for (case-sensitive).
pub const CDA_NAME: &[u8] = b"cda.xml";

/// Where the CDA was found in a PDF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCda {
    /// Index of the entry in the root `/EmbeddedFiles /Names` array (pair index).
    pub index: usize,
    /// The filespec object, when indirect.
    pub filespec: Option<ObjectId>,
    /// The decoded XML bytes.
    pub xml: Vec<u8>,
}

/// Decodes a PDF text string (UTF-16BE with BOM, or PDFDocEncoding/ASCII) for comparisons.
fn text(obj: &Object) -> Option<String> {
    let bytes = obj.as_str().ok()?;
    if bytes.starts_with(&[0xFE, 0xFF]) {
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).ok()
    } else {
        Some(bytes.iter().map(|&b| b as char).collect())
    }
}

fn is_cda_any(o: Option<&Object>) -> bool {
    o.and_then(text).as_deref() == Some("cda.xml")
}

fn raw_is_cda(o: Option<&Object>) -> bool {
    o.and_then(|o| o.as_str().ok()) == Some(CDA_NAME)
}

/// The root `/EmbeddedFiles` name-tree node, resolved, with its object id when indirect.
fn embedded_files(pdf: &SourcePdf) -> Result<Option<(Option<ObjectId>, &Dictionary)>> {
    let cat = pdf.catalog()?;
    let Some(names) = cat.get(b"Names").ok().and_then(|o| pdf.resolve(o)) else {
        return Ok(None);
    };
    let Ok(names) = names.as_dict() else {
        return Ok(None);
    };
    let Ok(ef) = names.get(b"EmbeddedFiles") else {
        return Ok(None);
    };
    let id = ef.as_reference().ok();
    match pdf.resolve(ef) {
        Some(Object::Dictionary(d)) => Ok(Some((id, d))),
        _ => Ok(None),
    }
}

/// Counts `cda.xml` entries the gateway's extractors might read (root array by key, `/F` or
/// `/UF` in any string encoding, and one level of `/Kids`).
fn cda_candidates(pdf: &SourcePdf, ef: &Dictionary) -> (Vec<usize>, usize) {
    let mut root_hits = Vec::new();
    if let Some(Object::Array(arr)) = ef.get(b"Names").ok().and_then(|o| pdf.resolve(o)) {
        for (i, pair) in arr.chunks(2).enumerate() {
            if pair.len() < 2 {
                break;
            }
            let spec = pdf.resolve(&pair[1]).and_then(|s| s.as_dict().ok());
            if is_cda_any(Some(&pair[0]))
                || spec
                    .is_some_and(|s| is_cda_any(s.get(b"F").ok()) || is_cda_any(s.get(b"UF").ok()))
            {
                root_hits.push(i);
            }
        }
    }
    let mut kid_hits = 0;
    if let Some(Object::Array(kids)) = ef.get(b"Kids").ok().and_then(|o| pdf.resolve(o)) {
        for kid in kids {
            let Some(kid) = pdf.resolve(kid).and_then(|k| k.as_dict().ok()) else {
                continue;
            };
            if let Some(Object::Array(arr)) = kid.get(b"Names").ok().and_then(|o| pdf.resolve(o)) {
                for pair in arr.chunks(2) {
                    if pair.len() < 2 {
                        break;
                    }
                    let spec = pdf.resolve(&pair[1]).and_then(|s| s.as_dict().ok());
                    if is_cda_any(Some(&pair[0]))
                        || spec.is_some_and(|s| {
                            is_cda_any(s.get(b"F").ok()) || is_cda_any(s.get(b"UF").ok())
                        })
                    {
                        kid_hits += 1;
                    }
                }
            }
        }
    }
    (root_hits, kid_hits)
}

/// Finds `cda.xml` the way the gateway's stricter extractor does: in the root
/// `/EmbeddedFiles /Names` array, a filespec whose `/F` is the plain string `cda.xml` (or whose
/// key is); refuses when the two extractors could read different entries.
pub fn find_cda(pdf: &SourcePdf) -> Result<FoundCda> {
    let Some((_, ef)) = embedded_files(pdf)? else {
        return Err(Error::Attachment(
            "no /Names /EmbeddedFiles in the catalog: the PDF has no attachments".into(),
        ));
    };
    let Some(Object::Array(arr)) = ef.get(b"Names").ok().and_then(|o| pdf.resolve(o)) else {
        return Err(Error::Attachment(
            "the /EmbeddedFiles root node has no /Names array (attachments only under /Kids \
             are missed by the gateway)"
                .into(),
        ));
    };
    let mut hit = None;
    for (i, pair) in arr.chunks(2).enumerate() {
        if pair.len() < 2 {
            break;
        }
        let spec_obj = &pair[1];
        let spec = pdf.resolve(spec_obj).and_then(|s| s.as_dict().ok());
        if raw_is_cda(Some(&pair[0])) || spec.is_some_and(|s| raw_is_cda(s.get(b"F").ok())) {
            if hit.is_some() {
                return Err(Error::Attachment(
                    "more than one cda.xml entry in /EmbeddedFiles".into(),
                ));
            }
            hit = Some((i, spec_obj.as_reference().ok(), spec));
        }
    }
    let (root_hits, kid_hits) = cda_candidates(pdf, ef);
    let Some((index, filespec, spec)) = hit else {
        return Err(Error::Attachment(
            if root_hits.is_empty() && kid_hits == 0 {
                "no attachment named cda.xml (the name is case-sensitive)".into()
            } else {
                "cda.xml is present but not as the plain string /F (cda.xml) in the root \
             /EmbeddedFiles /Names array where the gateway looks"
                    .into()
            },
        ));
    };
    if root_hits.len() + kid_hits > 1 {
        return Err(Error::Attachment(format!(
            "{} cda.xml entries: the gateway's two extractors may read different ones",
            root_hits.len() + kid_hits
        )));
    }
    let spec =
        spec.ok_or_else(|| Error::Attachment("the cda.xml filespec is not a dictionary".into()))?;
    let xml = embedded_stream(pdf, spec)?;
    if xml.is_empty() {
        return Err(Error::Attachment("the cda.xml attachment is empty".into()));
    }
    Ok(FoundCda {
        index,
        filespec,
        xml,
    })
}

fn embedded_stream(pdf: &SourcePdf, spec: &Dictionary) -> Result<Vec<u8>> {
    let ef = spec
        .get(b"EF")
        .ok()
        .and_then(|o| pdf.resolve(o))
        .and_then(|o| o.as_dict().ok())
        .ok_or_else(|| Error::Attachment("the cda.xml filespec has no /EF dictionary".into()))?;
    let stream = ef
        .get(b"F")
        .ok()
        .and_then(|o| pdf.resolve(o))
        .and_then(|o| o.as_stream().ok())
        .ok_or_else(|| Error::Attachment("the cda.xml filespec has no /EF /F stream".into()))?;
    if stream.filters().map(|f| f.is_empty()).unwrap_or(true) {
        return Ok(stream.content.clone());
    }
    stream
        .decompressed_content_with_limit(MAX_DECOMPRESSED)
        .map_err(|e| Error::Attachment(format!("cannot decode the cda.xml stream: {e}")))
}

/// Most nodes of an `/EmbeddedFiles` name tree we flatten, and its deepest level.
const MAX_TREE_NODES: usize = 4096;
const MAX_TREE_DEPTH: usize = 32;

/// The key/filespec pairs of the leaves under the `/Kids` of name-tree node `node`, in tree
/// order; a cycle, a too deep or too large tree, or a node that is not a dictionary is refused.
fn kids_entries(pdf: &SourcePdf, node: &Dictionary) -> Result<Vec<Object>> {
    let refuse = |why: &str| Error::Refused(format!("the /EmbeddedFiles name tree {why}"));
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // (kids still to visit at this level, depth)
    let mut stack: Vec<(std::vec::IntoIter<Object>, usize)> = Vec::new();
    let kids = |d: &Dictionary| -> Vec<Object> {
        match d.get(b"Kids").ok().and_then(|k| pdf.resolve(k)) {
            Some(Object::Array(a)) => a.clone(),
            _ => Vec::new(),
        }
    };
    stack.push((kids(node).into_iter(), 1));
    while let Some((iter, depth)) = stack.last_mut() {
        let depth = *depth;
        let Some(kid) = iter.next() else {
            stack.pop();
            continue;
        };
        if let Ok(id) = kid.as_reference() {
            if !seen.insert(id) {
                return Err(refuse("has a cycle in its /Kids"));
            }
        }
        if seen.len() > MAX_TREE_NODES || depth > MAX_TREE_DEPTH {
            return Err(refuse("is too large or too deep"));
        }
        let Some(Object::Dictionary(d)) = pdf.resolve(&kid) else {
            return Err(refuse("has a kid that is not a dictionary"));
        };
        if let Some(Object::Array(names)) = d.get(b"Names").ok().and_then(|o| pdf.resolve(o)) {
            out.extend(names.iter().take(names.len() - names.len() % 2).cloned());
        }
        if d.has(b"Kids") {
            stack.push((kids(d).into_iter(), depth + 1));
        }
    }
    Ok(out)
}

/// Sorts the key/value pairs of a name-tree `/Names` array by key bytes (stable).
fn sort_pairs(arr: &mut Vec<Object>) {
    let mut pairs: Vec<(Object, Object)> = Vec::with_capacity(arr.len() / 2);
    let mut it = std::mem::take(arr).into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        pairs.push((k, v));
    }
    pairs.sort_by(|a, b| {
        let key = |o: &Object| o.as_str().map(<[u8]>::to_vec).unwrap_or_default();
        key(&a.0).cmp(&key(&b.0))
    });
    for (k, v) in pairs {
        arr.push(k);
        arr.push(v);
    }
}

/// Extracts the CDA bytes from a PDF (see [`find_cda`]).
pub fn extract_cda(pdf_bytes: &[u8]) -> Result<Vec<u8>> {
    let pdf = SourcePdf::parse(pdf_bytes.to_vec())?;
    Ok(find_cda(&pdf)?.xml)
}

/// Checks that `xml` is an HL7 v3 `ClinicalDocument` (root element and namespace only).
pub fn check_cda_root(xml: &[u8]) -> Result<()> {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    let mut reader = quick_xml::NsReader::from_reader(xml);
    let mut buf = Vec::new();
    loop {
        match reader.read_resolved_event_into(&mut buf) {
            Ok((ns, Event::Start(e))) | Ok((ns, Event::Empty(e))) => {
                let ok_ns =
                    matches!(ns, ResolveResult::Bound(n) if n.as_ref() == b"urn:hl7-org:v3");
                if e.local_name().as_ref() == b"ClinicalDocument" && ok_ns {
                    return Ok(());
                }
                return Err(Error::Attachment(format!(
                    "the XML root element is <{}>, not an HL7 v3 ClinicalDocument",
                    String::from_utf8_lossy(e.name().as_ref())
                )));
            }
            Ok((_, Event::Eof)) => {
                return Err(Error::Attachment("the XML has no root element".into()))
            }
            Ok(_) => {}
            Err(e) => {
                return Err(Error::Attachment(format!(
                    "the CDA is not well-formed XML (byte {}): {e}",
                    reader.buffer_position()
                )))
            }
        }
        buf.clear();
    }
}

fn pdf_date_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

fn lit(s: &[u8]) -> Object {
    Object::String(s.to_vec(), StringFormat::Literal)
}

/// The `/EmbeddedFile` stream of `cda_xml` (deflated, with its size and date).
pub(crate) fn embedded_file(cda_xml: &[u8]) -> Result<Stream> {
    let mut params = Dictionary::new();
    params.set("Size", cda_xml.len() as i64);
    params.set("ModDate", lit(pdf_date_now().as_bytes()));
    let mut sd = Dictionary::new();
    sd.set("Type", Object::Name(b"EmbeddedFile".to_vec()));
    sd.set("Subtype", Object::Name(b"application/xml".to_vec()));
    sd.set("Params", params);
    crate::flate::stream(sd, cda_xml.to_vec(), crate::flate::Level::Fast)
        .map_err(|e| Error::Malformed(format!("cannot compress the CDA: {e}")))
}

/// The filespec of `cda.xml` whose embedded file is `file_id`: `/F` and `/UF` the plain
/// string `cda.xml` (what both gateway extractors read), `/AFRelationship /Alternative`.
pub(crate) fn filespec(file_id: ObjectId) -> Dictionary {
    let mut efd = Dictionary::new();
    efd.set("F", Object::Reference(file_id));
    efd.set("UF", Object::Reference(file_id));
    let mut spec = Dictionary::new();
    spec.set("Type", Object::Name(b"Filespec".to_vec()));
    spec.set("F", lit(CDA_NAME));
    spec.set("UF", lit(CDA_NAME));
    spec.set("Desc", lit(b"HL7 CDA R2"));
    spec.set("AFRelationship", Object::Name(b"Alternative".to_vec()));
    spec.set("EF", efd);
    spec
}

/// Embeds `cda_xml` as `cda.xml` in an incremental update of `pdf` and returns the new file.
/// An existing `cda.xml` (in the root array, any spelling of the name) is replaced; more than
/// one, or one under `/Kids`, is refused as ambiguous. A name tree with `/Kids` is flattened
/// into the root `/Names` array (kept sorted), where both gateway extractors read.
pub fn inject_cda(pdf: &SourcePdf, cda_xml: &[u8]) -> Result<Vec<u8>> {
    check_cda_root(cda_xml)?;
    let mut up = IncrementalUpdate::new(pdf);
    let cat_id = pdf.catalog_id()?;
    let mut catalog = pdf.catalog()?.clone();

    // the names dictionary and the EmbeddedFiles node as they are now
    let names_ref = catalog
        .get(b"Names")
        .ok()
        .and_then(|o| o.as_reference().ok());
    let mut names: Dictionary = catalog
        .get(b"Names")
        .ok()
        .and_then(|o| pdf.resolve(o))
        .and_then(|o| o.as_dict().ok())
        .cloned()
        .unwrap_or_default();
    let (ef_ref, mut ef) = match embedded_files(pdf)? {
        Some((id, d)) => (id, d.clone()),
        None => (None, Dictionary::new()),
    };
    let mut arr: Vec<Object> = match ef.get(b"Names").ok().and_then(|o| pdf.resolve(o)) {
        Some(Object::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    if ef.has(b"Kids") {
        // one extractor reads only the root /Names array, the other the root's /Names or else
        // one level of /Kids: the tree is flattened into the root array, which both read
        let leaves = kids_entries(pdf, &ef)?;
        if leaves.chunks(2).any(|pair| {
            let spec = pair
                .get(1)
                .and_then(|s| pdf.resolve(s))
                .and_then(|s| s.as_dict().ok());
            is_cda_any(pair.first())
                || spec
                    .is_some_and(|s| is_cda_any(s.get(b"F").ok()) || is_cda_any(s.get(b"UF").ok()))
        }) {
            return Err(Error::Refused(
                "cda.xml is under /EmbeddedFiles /Kids: ambiguous for the gateway's extractors; \
                 remove it first"
                    .into(),
            ));
        }
        arr.extend(leaves);
        sort_pairs(&mut arr);
        ef.remove(b"Kids");
        ef.set("Names", Object::Array(arr.clone()));
    }
    let (hits, _) = cda_candidates(pdf, &ef);
    if hits.len() > 1 {
        return Err(Error::Refused(format!(
            "{} attachments are named cda.xml: ambiguous, refusing to guess which to replace",
            hits.len()
        )));
    }
    let mut old_spec: Option<ObjectId> = None;
    if let Some(&i) = hits.first() {
        old_spec = arr.get(2 * i + 1).and_then(|o| o.as_reference().ok());
        arr.drain(2 * i..(2 * i + 2).min(arr.len()));
    }

    // the embedded file stream and its filespec
    let file_id = up.add(Object::Stream(embedded_file(cda_xml)?));
    let spec_id = up.add(filespec(file_id));

    // insert in key order (name-tree keys are sorted bytewise)
    let pos = arr
        .chunks(2)
        .position(|p| p[0].as_str().map(|k| k > CDA_NAME).unwrap_or(false))
        .map(|p| 2 * p)
        .unwrap_or(arr.len() - arr.len() % 2);
    arr.insert(pos, Object::Reference(spec_id));
    arr.insert(pos, lit(CDA_NAME));
    ef.set("Names", Object::Array(arr));
    ef.remove(b"Limits");
    match ef_ref {
        Some(id) => up.set(id, ef),
        None => {
            names.set("EmbeddedFiles", ef);
        }
    }
    if ef_ref.is_none() {
        match names_ref {
            Some(id) => up.set(id, names),
            None => catalog.set("Names", names),
        }
    }

    // catalog /AF: drop the old filespec, add the new one
    let af_ref = catalog.get(b"AF").ok().and_then(|o| o.as_reference().ok());
    let mut af: Vec<Object> = match catalog.get(b"AF").ok().and_then(|o| pdf.resolve(o)) {
        Some(Object::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    if let Some(old) = old_spec {
        af.retain(|o| o.as_reference().ok() != Some(old));
    }
    af.push(Object::Reference(spec_id));
    match af_ref {
        Some(id) => up.set(id, Object::Array(af)),
        None => catalog.set("AF", Object::Array(af)),
    }
    up.set(cat_id, catalog);
    Ok(up.write()?.bytes)
}
