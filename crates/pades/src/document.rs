//! A PDF as read from disk: its exact bytes (which an incremental update never changes), the
//! objects lopdf parsed from them, and the facts an incremental writer needs (where the last
//! cross-reference section is, whether it is a table or a stream, the next free object number).

use crate::error::{Error, Result};
use lopdf::{Dictionary, Document, LoadOptions, Object, ObjectId};

/// Most objects we accept in one PDF (FSE reports have a few hundred at most).
pub const MAX_OBJECTS: u32 = 2_000_000;
/// Largest stream we decompress (embedded CDA, content streams).
pub const MAX_DECOMPRESSED: usize = 256 * 1024 * 1024;

/// Kind of the last cross-reference section of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XrefKind {
    /// A classic `xref` table with a `trailer` dictionary.
    Table,
    /// A cross-reference stream (`/Type /XRef`, PDF 1.5+).
    Stream,
}

/// A parsed PDF together with its original bytes.
#[derive(Debug)]
pub struct SourcePdf {
    bytes: Vec<u8>,
    doc: Document,
    startxref: usize,
    xref_kind: XrefKind,
    sound: std::result::Result<(), String>,
}

impl SourcePdf {
    /// Parses `bytes`. Refuses encrypted files and files beyond [`MAX_OBJECTS`]; damaged files
    /// (recovered cross-reference data, wrong stream lengths) are parsed but flagged: see
    /// [`SourcePdf::appendable`].
    pub fn parse(bytes: Vec<u8>) -> Result<Self> {
        let head = &bytes[..bytes.len().min(1024)];
        if !head.windows(5).any(|w| w == b"%PDF-") {
            return Err(Error::Malformed("no %PDF- header".into()));
        }
        if find_last(&bytes, b"startxref").is_none() {
            return Err(Error::Malformed(
                "no startxref: the file is truncated or not a PDF".into(),
            ));
        }
        // a trailer with /Encrypt is refused before lopdf tries to decrypt anything
        let declared = declared_size(&bytes);
        if let Some(n) = declared {
            if n > MAX_OBJECTS as i64 {
                return Err(Error::TooLarge(format!(
                    "the trailer declares {n} objects (limit {MAX_OBJECTS})"
                )));
            }
        }
        // what makes readers see different documents is refused before any reader picks one
        let chain = crate::minimal::audit(&bytes)?;
        let opts = LoadOptions {
            max_decompressed_size: Some(MAX_DECOMPRESSED),
            ..LoadOptions::default()
        };
        let doc = Document::load_mem_with_options(&bytes, opts).map_err(|e| match e {
            lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword => Error::Encrypted,
            other => Error::Malformed(other.to_string()),
        })?;
        // lopdf opened an owner-password-only file with the empty user password: an update
        // would mix plain objects into an encrypted file (or drop /Encrypt), so refuse it
        if doc.was_encrypted() {
            return Err(Error::EncryptedOwnerPassword);
        }
        if doc.is_encrypted() || doc.trailer.has(b"Encrypt") || chain.encrypted {
            return Err(Error::Encrypted);
        }
        if doc.max_id > MAX_OBJECTS || doc.objects.len() > MAX_OBJECTS as usize {
            return Err(Error::TooLarge(format!(
                "{} objects (limit {MAX_OBJECTS})",
                doc.objects.len()
            )));
        }
        let startxref = doc.xref_start;
        let xref_kind = if bytes
            .get(startxref..)
            .map(|t| skip_ws(t).starts_with(b"xref"))
            .unwrap_or(false)
        {
            XrefKind::Table
        } else {
            XrefKind::Stream
        };
        let sound = soundness(&bytes, &doc);
        let pdf = SourcePdf {
            bytes,
            doc,
            startxref,
            xref_kind,
            sound,
        };
        pdf.catalog_id()?;
        Ok(pdf)
    }

    /// Reads and parses a file.
    pub fn open(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse(bytes)
    }

    /// The original bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The parsed objects.
    pub fn doc(&self) -> &Document {
        &self.doc
    }

    /// Offset of the last cross-reference section (the `startxref` value).
    pub fn startxref(&self) -> usize {
        self.startxref
    }

    /// Whether the last cross-reference section is a table or a stream.
    pub fn xref_kind(&self) -> XrefKind {
        self.xref_kind
    }

    /// `Ok` when an incremental update can be appended safely; otherwise why not (the file's
    /// cross-reference data had to be recovered, or a stream's `/Length` is wrong), in which
    /// case strict readers refuse the file and it must be rewritten once first.
    pub fn appendable(&self) -> std::result::Result<(), &str> {
        self.sound.as_ref().map(|_| ()).map_err(|s| s.as_str())
    }

    /// The latest trailer dictionary.
    pub fn trailer(&self) -> &Dictionary {
        &self.doc.trailer
    }

    /// Object id of the document catalog.
    pub fn catalog_id(&self) -> Result<ObjectId> {
        let id = self
            .doc
            .trailer
            .get(b"Root")
            .and_then(Object::as_reference)
            .map_err(|_| Error::Malformed("the trailer has no /Root reference".into()))?;
        match self.doc.get_object(id) {
            Ok(Object::Dictionary(_)) => Ok(id),
            _ => Err(Error::Malformed(format!(
                "the catalog {} {} R is missing or not a dictionary",
                id.0, id.1
            ))),
        }
    }

    /// The document catalog.
    pub fn catalog(&self) -> Result<&Dictionary> {
        let id = self.catalog_id()?;
        self.dict(id)
    }

    /// A dictionary object by id.
    pub fn dict(&self, id: ObjectId) -> Result<&Dictionary> {
        match self.doc.get_object(id) {
            Ok(Object::Dictionary(d)) => Ok(d),
            Ok(Object::Stream(s)) => Ok(&s.dict),
            _ => Err(Error::Malformed(format!(
                "object {} {} R is missing or not a dictionary",
                id.0, id.1
            ))),
        }
    }

    /// Follows references (a bounded number of times) to the direct object.
    pub fn resolve<'a>(&'a self, mut obj: &'a Object) -> Option<&'a Object> {
        for _ in 0..32 {
            match obj {
                Object::Reference(id) => obj = self.doc.objects.get(id)?,
                other => return Some(other),
            }
        }
        None
    }

    /// The first object number an update may use.
    pub fn next_object_number(&self) -> u32 {
        let size = declared_size_of(&self.doc.trailer).unwrap_or(0).max(0) as u32;
        size.max(self.doc.max_id.saturating_add(1))
            .max(self.doc.reference_table.max_id().saturating_add(1))
    }

    /// Rewrites the whole file with lopdf (new cross-reference table, correct stream lengths):
    /// the one-time repair of a damaged, unsigned input. Refuses a signed input, whose
    /// signatures a rewrite would break.
    pub fn rewritten(&self) -> Result<SourcePdf> {
        if self.has_signature_dictionaries() {
            return Err(Error::Refused(
                "the PDF is damaged and already signed: rewriting it would break its signatures"
                    .into(),
            ));
        }
        let mut doc = self.doc.clone();
        let mut out = Vec::with_capacity(self.bytes.len());
        doc.save_to(&mut out)
            .map_err(|e| Error::Malformed(format!("rewrite failed: {e}")))?;
        let again = SourcePdf::parse(out)?;
        if let Err(why) = again.appendable() {
            return Err(Error::Refused(format!(
                "the PDF is damaged and a rewrite did not repair it: {why}"
            )));
        }
        Ok(again)
    }

    /// Whether any object looks like a signature dictionary (has /ByteRange and /Contents).
    pub fn has_signature_dictionaries(&self) -> bool {
        self.doc.objects.values().any(|o| match o {
            Object::Dictionary(d) => d.has(b"ByteRange") && d.has(b"Contents"),
            _ => false,
        })
    }
}

impl crate::incremental::UpdateBase for SourcePdf {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn trailer(&self) -> &Dictionary {
        &self.doc.trailer
    }

    fn startxref(&self) -> usize {
        self.startxref
    }

    fn xref_kind(&self) -> XrefKind {
        self.xref_kind
    }

    fn next_object_number(&self) -> u32 {
        SourcePdf::next_object_number(self)
    }

    fn object(&self, id: ObjectId) -> Option<&Object> {
        self.doc.objects.get(&id)
    }

    fn first_page(&self) -> Option<ObjectId> {
        self.doc.page_iter().next()
    }
}

/// Finds the last occurrence of `needle`.
pub(crate) fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len())
        .rev()
        .find(|&i| &hay[i..i + needle.len()] == needle)
}

/// Finds the first occurrence of `needle` at or after `from`.
pub(crate) fn find_from(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() || needle.is_empty() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn skip_ws(t: &[u8]) -> &[u8] {
    let n = t
        .iter()
        .take_while(|b| b" \t\r\n\x0c\0".contains(b))
        .count();
    &t[n..]
}

fn declared_size_of(trailer: &Dictionary) -> Option<i64> {
    trailer.get(b"Size").ok()?.as_i64().ok()
}

/// The `/Size` of the last trailer, read from the raw tail (before lopdf allocates anything).
pub(crate) fn declared_size(bytes: &[u8]) -> Option<i64> {
    let tail_start = bytes.len().saturating_sub(4096);
    let tail = &bytes[tail_start..];
    let at = find_last(tail, b"/Size")?;
    let rest = skip_ws(&tail[at + 5..]);
    let digits: Vec<u8> = rest
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// Whether an update can be appended safely: lopdf read the cross-reference data as written
/// and every stream's `/Length` (when direct) matches the bytes up to `endstream`.
fn soundness(bytes: &[u8], doc: &Document) -> std::result::Result<(), String> {
    if let Some(rec) = &doc.xref_recovery {
        return Err(format!(
            "its cross-reference data is damaged (recovered: {rec:?})"
        ));
    }
    for (id, obj) in &doc.objects {
        if let Object::Stream(s) = obj {
            let Some(start) = s.start_position else {
                continue;
            };
            let Ok(len) = s
                .dict
                .get(b"Length")
                .and_then(|l| doc.dereference(l))
                .and_then(|(_, l)| l.as_i64())
            else {
                continue;
            };
            let Ok(len) = usize::try_from(len) else {
                return Err(format!("object {} {} R has a negative /Length", id.0, id.1));
            };
            let end = start.saturating_add(len);
            let ok = bytes
                .get(end..)
                .map(|t| skip_ws(t).starts_with(b"endstream"))
                .unwrap_or(false);
            if !ok {
                return Err(format!(
                    "object {} {} R: /Length {len} does not end at endstream",
                    id.0, id.1
                ));
            }
        }
    }
    Ok(())
}
