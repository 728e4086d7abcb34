//! The minimal reader: what an incremental update of a clean PDF needs, read without parsing
//! the whole file into objects. It follows `startxref` through the chain of classic
//! cross-reference tables, checks that every listed object starts where the table says and
//! parses (streams are skipped by their `/Length`, which must end at `endstream`), and builds
//! lopdf objects only for the few the signer asks for (catalog, AcroForm, fields, page tree,
//! first page, annotations), on demand.
//!
//! It reads the object syntax exactly as lopdf does (same grammar, same values), so an update
//! built from it is byte-identical to one built from a full lopdf parse. Whatever it does not
//! understand or is not sure lopdf reads the same way — cross-reference streams, hybrid files,
//! encryption, object streams, repaired offsets, wrong stream lengths, any syntax error — makes
//! [`MinimalPdf::read`] return `None`, and the caller uses the full parse
//! ([`crate::SourcePdf`]) instead.

use crate::document::{declared_size, XrefKind, MAX_OBJECTS};
use crate::incremental::UpdateBase;
use lopdf::{Dictionary, Object, ObjectId, StringFormat};
use std::cell::{Cell, OnceCell};
use std::collections::BTreeMap;

/// lopdf's nesting limit for arrays and dictionaries.
const MAX_NESTING_DEPTH: usize = 100;
/// lopdf's nesting limit for parentheses inside literal strings.
const MAX_BRACKET: usize = 100;
/// Most cross-reference sections we follow (incremental updates) before falling back.
const MAX_SECTIONS: usize = 256;
/// lopdf's limit on references followed in a row.
const DEREF_LIMIT: usize = 128;
/// lopdf's limit on the depth of the page tree.
const PAGE_TREE_DEPTH_LIMIT: usize = 256;

/// One in-use object of the merged cross-reference table, and the object once built.
#[derive(Debug)]
struct Entry {
    offset: usize,
    generation: u16,
    built: OnceCell<Option<Object>>,
}

/// A clean PDF whose last cross-reference section is a table, read just enough to append an
/// incremental update.
#[derive(Debug)]
pub struct MinimalPdf<'a> {
    bytes: &'a [u8],
    startxref: usize,
    xref_kind: XrefKind,
    trailer: Dictionary,
    entries: BTreeMap<u32, Entry>,
    next: u32,
    /// Set when an object was asked for that exists but could not be built here (a stream):
    /// the caller must not trust an update built from this reader.
    missed: Cell<bool>,
}

impl<'a> MinimalPdf<'a> {
    /// Reads `bytes`, or `None` when the file is not one this reader is sure about.
    pub fn read(bytes: &'a [u8]) -> Option<Self> {
        let lx = Lexer { b: bytes };
        // lopdf reads from the first `%PDF-`; ours must be at 0 so offsets agree
        if !bytes.starts_with(b"%PDF-") || !bytes.iter().any(|&c| c == b'\n' || c == b'\r') {
            return None;
        }
        if declared_size(bytes).is_some_and(|n| n > MAX_OBJECTS as i64) {
            return None;
        }
        // an ambiguity is lopdf's path to refuse (it runs the same audit): never a silent pick
        if audit(bytes).ok()?.encrypted {
            return None;
        }
        let startxref = xref_start(bytes)?;
        let (xref_kind, newest, mut trailer) = lx.section(startxref)?;
        let mut merged = newest;
        let mut seen = vec![startxref];
        let mut prev = trailer.remove(b"Prev");
        if trailer.has(b"XRefStm") || trailer.has(b"Encrypt") {
            return None;
        }
        while let Some(p) = prev {
            let p = usize::try_from(p.as_i64().ok()?).ok()?;
            if p > bytes.len() || seen.contains(&p) || seen.len() >= MAX_SECTIONS {
                return None;
            }
            seen.push(p);
            let (_, older, mut older_trailer) = lx.section(p)?;
            if older_trailer.has(b"XRefStm") {
                return None;
            }
            for (id, e) in older {
                merged.entry(id).or_insert(e);
            }
            prev = older_trailer.remove(b"Prev");
        }
        let size = trailer.get(b"Size").ok()?.as_i64().ok()?;
        if !(0..=MAX_OBJECTS as i64).contains(&size) {
            return None;
        }
        let max_id = merged.keys().next_back().copied().unwrap_or(0);
        if max_id > MAX_OBJECTS {
            return None;
        }
        let entries: BTreeMap<u32, Entry> = merged
            .into_iter()
            .filter_map(|(id, e)| match e {
                XEntry::Normal { offset, generation } => Some((
                    id,
                    Entry {
                        offset,
                        generation,
                        built: OnceCell::new(),
                    },
                )),
                XEntry::Free => None,
            })
            .collect();
        let pdf = MinimalPdf {
            bytes,
            startxref,
            xref_kind,
            trailer,
            entries,
            next: (size as u32).max(max_id + 1),
            missed: Cell::new(false),
        };
        for (&num, e) in &pdf.entries {
            pdf.check_object(num, e)?;
        }
        // the catalog must be a dictionary (as SourcePdf::parse requires)
        let root = pdf.trailer.get(b"Root").ok()?.as_reference().ok()?;
        match deref(&pdf, root)? {
            Object::Dictionary(_) => {}
            _ => return None,
        }
        if pdf.missed.get() {
            return None;
        }
        Some(pdf)
    }

    /// Whether an object was asked for that this reader could not build (then an update built
    /// from it must be discarded).
    pub fn missed(&self) -> bool {
        self.missed.get()
    }

    /// Checks that object `num` starts where the table says and parses as lopdf parses it;
    /// a stream's `/Length` must end at `endstream` and it must not be an object stream.
    fn check_object(&self, num: u32, e: &Entry) -> Option<()> {
        let lx = Lexer { b: self.bytes };
        let p = lx.object_header(e.offset, (num, e.generation))?;
        if lx.b.get(p..)?.starts_with(b"<<") {
            let mut cap = Captures::default();
            let q = lx.skip_dict(p, MAX_NESTING_DEPTH, Some(&mut cap))?;
            if let Some(data) = lx.stream_keyword(q) {
                let len = match cap.length.and_then(|(s, _)| lx.value(s, 1, true)) {
                    Some((Object::Integer(n), _)) => n,
                    Some((Object::Reference(id), _)) => self.length_object(id)?,
                    _ => return None,
                };
                if let Some((s, _)) = cap.kind {
                    if let Some((Object::Name(n), _)) = lx.value(s, 1, true) {
                        if n == b"ObjStm" {
                            return None;
                        }
                    }
                }
                let end = data.checked_add(usize::try_from(len).ok()?)?;
                let mut r = lx.b.get(end..).map(|_| end)?;
                r = lx.eol(r).unwrap_or(r);
                lx.tag(r, b"endstream")?;
            }
        } else {
            lx.skip_value(p, MAX_NESTING_DEPTH)?;
        }
        Some(())
    }

    /// The integer value of an indirect `/Length` (as lopdf resolves it while parsing).
    fn length_object(&self, id: ObjectId) -> Option<i64> {
        let e = self.entries.get(&id.0)?;
        if e.generation != id.1 {
            return None;
        }
        let lx = Lexer { b: self.bytes };
        let p = lx.object_header(e.offset, id)?;
        if lx.b.get(p..)?.starts_with(b"<<") {
            return None;
        }
        match lx.value(p, MAX_NESTING_DEPTH, true)? {
            (Object::Integer(n), _) => Some(n),
            _ => None,
        }
    }

    /// Builds object `num` (a dictionary, array or scalar; a stream is not built).
    fn build(&self, num: u32, e: &Entry) -> Option<Object> {
        let lx = Lexer { b: self.bytes };
        let p = lx.object_header(e.offset, (num, e.generation))?;
        if lx.b.get(p..)?.starts_with(b"<<") {
            let (d, q) = lx.dict(p, MAX_NESTING_DEPTH, true, None)?;
            if lx.stream_keyword(q).is_some() {
                return None;
            }
            Some(Object::Dictionary(d))
        } else {
            lx.value(p, MAX_NESTING_DEPTH, true).map(|(o, _)| o)
        }
    }
}

impl UpdateBase for MinimalPdf<'_> {
    fn bytes(&self) -> &[u8] {
        self.bytes
    }

    fn trailer(&self) -> &Dictionary {
        &self.trailer
    }

    fn startxref(&self) -> usize {
        self.startxref
    }

    fn xref_kind(&self) -> XrefKind {
        self.xref_kind
    }

    fn next_object_number(&self) -> u32 {
        self.next
    }

    fn object(&self, id: ObjectId) -> Option<&Object> {
        let e = self.entries.get(&id.0)?;
        if e.generation != id.1 {
            return None;
        }
        let built = e.built.get_or_init(|| self.build(id.0, e)).as_ref();
        if built.is_none() {
            self.missed.set(true);
        }
        built
    }

    /// The first page as lopdf's page iterator finds it.
    fn first_page(&self) -> Option<ObjectId> {
        let dict = |id: ObjectId| match deref(self, id) {
            Some(Object::Dictionary(d)) => Some(d),
            _ => None,
        };
        let kids_of = |id: ObjectId| -> Option<&[Object]> {
            let node = dict(id)?;
            let mut k = node.get(b"Kids").ok()?;
            for _ in 0..=DEREF_LIMIT {
                match k {
                    Object::Reference(r) => k = self.object(*r)?,
                    Object::Array(a) => return Some(a.as_slice()),
                    _ => return None,
                }
            }
            None
        };
        let root = self.trailer.get(b"Root").ok()?.as_reference().ok()?;
        let pages = dict(root)?.get(b"Pages").ok()?.as_reference().ok()?;
        let mut kids = kids_of(pages);
        let mut stack: Vec<&[Object]> = Vec::new();
        let mut limit = self.entries.len();
        loop {
            while let Some((kid, rest)) = kids.and_then(|k| k.split_first()) {
                if limit == 0 {
                    return None;
                }
                limit -= 1;
                kids = Some(rest);
                let Ok(kid_id) = kid.as_reference() else {
                    continue;
                };
                let Some(d) = dict(kid_id) else {
                    // lopdf yields such a kid as a stand-in page; we leave it to lopdf
                    self.missed.set(true);
                    return None;
                };
                let ty = match d.get(b"Type").and_then(Object::as_name) {
                    Ok(t) => t,
                    Err(_) if d.has(b"Linearized") => b"Linearized",
                    Err(_) => {
                        self.missed.set(true);
                        return None;
                    }
                };
                match ty {
                    b"Page" => return Some(kid_id),
                    b"Pages" if stack.len() < PAGE_TREE_DEPTH_LIMIT => {
                        if !rest.is_empty() {
                            stack.push(rest);
                        }
                        kids = kids_of(kid_id);
                    }
                    _ => {}
                }
            }
            kids = Some(stack.pop()?);
        }
    }
}

/// An object by id with references followed, as lopdf's `Document::get_object` does.
pub(crate) fn deref(base: &dyn UpdateBase, id: ObjectId) -> Option<&Object> {
    let mut obj = base.object(id)?;
    let mut n = 0;
    while let Object::Reference(r) = obj {
        obj = base.object(*r)?;
        n += 1;
        if n > DEREF_LIMIT {
            return None;
        }
    }
    Some(obj)
}

/// An entry of a cross-reference table.
#[derive(Debug, Clone, Copy)]
enum XEntry {
    Normal { offset: usize, generation: u16 },
    Free,
}

/// Byte spans of the top-level `/Length` and `/Type` values of a dictionary (the last of each,
/// as a later key replaces an earlier one).
#[derive(Debug, Default)]
struct Captures {
    length: Option<(usize, usize)>,
    kind: Option<(usize, usize)>,
}

/// The value of `startxref`, found as lopdf finds it (the last `%%EOF` in the last 1024 bytes
/// before trailing white space, `startxref` just before it).
fn xref_start(b: &[u8]) -> Option<usize> {
    let end = b
        .iter()
        .rposition(|c| !b" \t\n\r\0\x0C".contains(c))
        .map_or(0, |p| p + 1);
    let seek = end - end.min(1024);
    let eof = rfind(&b[..end], b"%%EOF", seek)?;
    if eof <= 25 {
        return None;
    }
    let at = rfind(&b[..eof], b"startxref", eof - 25)?;
    let lx = Lexer { b };
    let mut p = lx.tag(at, b"startxref")?;
    if b.get(p) == Some(&b' ') {
        p += 1;
    }
    p = lx.eol(p)?;
    while b.get(p) == Some(&b' ') {
        p += 1;
    }
    let (v, q) = lx.integer(p)?;
    p = q;
    while b.get(p) == Some(&b' ') {
        p += 1;
    }
    p = lx.eol(p)?;
    lx.tag(p, b"%%EOF")?;
    let v = usize::try_from(v).ok()?;
    if v > b.len() {
        return None;
    }
    Some(v)
}

/// An array of integers (`/W`, `/Index`), or `None`.
fn ints(o: &Object) -> Option<Vec<i64>> {
    o.as_array()
        .ok()?
        .iter()
        .map(|v| v.as_i64().ok())
        .collect::<Option<Vec<i64>>>()
}

fn rfind(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .rposition(|w| w == needle)
        .map(|p| p + from)
}

/// Character classes of PDF syntax: white space and delimiters (a lookup, as these tests run
/// for every byte of every dictionary).
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let ws = b" \t\n\r\0\x0C";
    let mut i = 0;
    while i < ws.len() {
        t[ws[i] as usize] = WS;
        i += 1;
    }
    let delim = b"()<>[]{}/%";
    let mut i = 0;
    while i < delim.len() {
        t[delim[i] as usize] = DELIM;
        i += 1;
    }
    t
};
const WS: u8 = 1;
const DELIM: u8 = 2;

fn is_ws(c: u8) -> bool {
    CLASS[c as usize] == WS
}

fn is_regular(c: u8) -> bool {
    CLASS[c as usize] == 0
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|v| v as u8)
}

/// lopdf's object grammar over a byte slice; every function takes a position and returns the
/// position after what it read, or `None` where lopdf's parser fails. With `build == false`
/// values are checked but not built (`Object::Null` stands in).
struct Lexer<'a> {
    b: &'a [u8],
}

impl Lexer<'_> {
    fn at(&self, p: usize) -> Option<u8> {
        self.b.get(p).copied()
    }

    fn tag(&self, p: usize, t: &[u8]) -> Option<usize> {
        self.b.get(p..)?.starts_with(t).then_some(p + t.len())
    }

    fn eol(&self, p: usize) -> Option<usize> {
        match (self.at(p), self.at(p + 1)) {
            (Some(b'\r'), Some(b'\n')) => Some(p + 2),
            (Some(b'\n' | b'\r'), _) => Some(p + 1),
            _ => None,
        }
    }

    /// White space and comments (a comment counts only when an end of line closes it).
    fn space(&self, mut p: usize) -> usize {
        loop {
            while self.at(p).is_some_and(is_ws) {
                p += 1;
            }
            if self.at(p) == Some(b'%') {
                let mut q = p + 1;
                while self.at(q).is_some_and(|c| c != b'\r' && c != b'\n') {
                    q += 1;
                }
                match self.eol(q) {
                    Some(r) => p = r,
                    None => return p,
                }
            } else {
                return p;
            }
        }
    }

    fn digits(&self, p: usize) -> Option<(u64, usize)> {
        let mut q = p;
        let mut v: Option<u64> = Some(0);
        while let Some(c) = self.at(q).filter(u8::is_ascii_digit) {
            v = v
                .and_then(|v| v.checked_mul(10))
                .and_then(|v| v.checked_add(u64::from(c - b'0')));
            q += 1;
        }
        if q == p {
            return None;
        }
        Some((v?, q))
    }

    fn sign(&self, p: usize) -> (bool, usize) {
        match self.at(p) {
            Some(b'+') => (false, p + 1),
            Some(b'-') => (true, p + 1),
            _ => (false, p),
        }
    }

    fn integer(&self, p: usize) -> Option<(i64, usize)> {
        let (neg, q) = self.sign(p);
        let (m, q) = self.digits(q)?;
        let v = if neg {
            0i64.checked_sub_unsigned(m)?
        } else {
            i64::try_from(m).ok()?
        };
        Some((v, q))
    }

    fn real(&self, p: usize) -> Option<(f32, usize)> {
        let q = self.real_end(p)?;
        let text = &self.b[p..q];
        let v = if text.len() > 1 && text[1..].contains(&b'-') {
            let mut s = vec![text[0]];
            s.extend(text[1..].iter().filter(|&&c| c != b'-'));
            std::str::from_utf8(&s).ok()?.parse::<f32>().ok()?
        } else {
            std::str::from_utf8(text).ok()?.parse::<f32>().ok()?
        };
        Some((v, q))
    }

    /// Where a real's text ends (lopdf's grammar, including a stray `-` inside the fraction).
    fn real_end(&self, p: usize) -> Option<usize> {
        let (_, mut q) = self.sign(p);
        let d0 = q;
        while self.at(q).is_some_and(|c| c.is_ascii_digit()) {
            q += 1;
        }
        if q > d0 {
            q = self.tag(q, b".")?;
            while self.at(q).is_some_and(|c| c.is_ascii_digit()) {
                q += 1;
            }
        } else {
            q = self.tag(q, b".")?;
            let f0 = q;
            while self.at(q).is_some_and(|c| c.is_ascii_digit()) {
                q += 1;
            }
            if q == f0 {
                return None;
            }
        }
        while self.at(q).is_some_and(|c| c == b'-' || c.is_ascii_digit()) {
            q += 1;
        }
        Some(q)
    }

    fn reference(&self, p: usize) -> Option<(ObjectId, usize)> {
        let (n, q) = self.digits(p)?;
        let n = u32::try_from(n).ok()?;
        let q = self.space(q);
        let (g, q) = self.digits(q)?;
        let g = u16::try_from(g).ok()?;
        let q = self.space(q);
        let q = self.tag(q, b"R")?;
        Some(((n, g), q))
    }

    /// A name: its decoded bytes when `decode` (else empty), and the end.
    fn name(&self, p: usize, decode: bool) -> Option<(Vec<u8>, usize)> {
        let mut q = self.tag(p, b"/")?;
        let mut out = Vec::new();
        loop {
            let s = q;
            while let Some(&c) = self.b.get(q) {
                if c == b'#' || !is_regular(c) {
                    break;
                }
                q += 1;
            }
            if decode {
                out.extend_from_slice(&self.b[s..q]);
            }
            match (self.at(q), self.at(q + 1), self.at(q + 2)) {
                (Some(b'#'), Some(h), Some(l)) if hex_val(h).is_some() && hex_val(l).is_some() => {
                    if decode {
                        out.push((hex_val(h)? << 4) | hex_val(l)?);
                    }
                    q += 3;
                }
                _ => return Some((out, q)),
            }
        }
    }

    /// Whether the name at `p` (ending at `end`) decodes to `key`.
    fn name_is(&self, p: usize, end: usize, key: &[u8]) -> bool {
        let raw = &self.b[p + 1..end];
        if !raw.contains(&b'#') {
            return raw == key;
        }
        self.name(p, true).is_some_and(|(n, _)| n == key)
    }

    fn literal(&self, p: usize, build: bool) -> Option<(Vec<u8>, usize)> {
        let q = self.tag(p, b"(")?;
        let mut out = Vec::new();
        let q = self.literal_inner(q, MAX_BRACKET, build, &mut out)?;
        let q = self.tag(q, b")")?;
        Some((out, q))
    }

    fn literal_inner(
        &self,
        mut p: usize,
        depth: usize,
        build: bool,
        out: &mut Vec<u8>,
    ) -> Option<usize> {
        loop {
            match self.at(p) {
                None | Some(b')') => return Some(p),
                Some(b'\\') => {
                    let q = p + 1;
                    let c = self.at(q)?;
                    if (b'0'..=b'7').contains(&c) {
                        let mut r = q;
                        let mut v: u16 = 0;
                        while r < q + 3 && self.at(r).is_some_and(|c| (b'0'..=b'7').contains(&c)) {
                            v = v * 8 + u16::from(self.b[r] - b'0');
                            r += 1;
                        }
                        if build {
                            out.push(v as u8);
                        }
                        p = r;
                    } else if let Some(r) = self.eol(q) {
                        p = r;
                    } else {
                        let e = match c {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'f' => 0x0C,
                            other => other,
                        };
                        if build {
                            out.push(e);
                        }
                        p = q + 1;
                    }
                }
                Some(b'\r' | b'\n') => {
                    p = self.eol(p)?;
                    if build {
                        out.push(b'\n');
                    }
                }
                Some(b'(') => {
                    if depth == 0 {
                        // lopdf's inner loop stops here and the closing `)` is then missing
                        return Some(p);
                    }
                    if build {
                        out.push(b'(');
                    }
                    let q = self.literal_inner(p + 1, depth - 1, build, out)?;
                    match self.at(q) {
                        Some(b')') => {
                            if build {
                                out.push(b')');
                            }
                            p = q + 1;
                        }
                        // unclosed nested string: lopdf fails the whole string
                        _ => return None,
                    }
                }
                Some(_) => {
                    let s = p;
                    while self.at(p).is_some_and(|c| !b"()\\\r\n".contains(&c)) {
                        p += 1;
                    }
                    if build {
                        out.extend_from_slice(&self.b[s..p]);
                    }
                }
            }
        }
    }

    fn hex(&self, p: usize, build: bool) -> Option<(Vec<u8>, usize)> {
        let mut q = self.tag(p, b"<")?;
        let mut out = Vec::new();
        let mut half = false;
        loop {
            while self.at(q).is_some_and(is_ws) {
                q += 1;
            }
            match self.at(q).and_then(hex_val) {
                Some(v) => {
                    if build {
                        if half {
                            if let Some(last) = out.last_mut() {
                                *last |= v;
                            }
                        } else {
                            out.push(v << 4);
                        }
                    }
                    half = !half;
                    q += 1;
                }
                None => break,
            }
        }
        let q = self.tag(q, b">")?;
        Some((out, q))
    }

    /// `_direct_objects`: one object, no trailing space.
    fn value(&self, p: usize, depth: usize, build: bool) -> Option<(Object, usize)> {
        match self.at(p)? {
            b'n' => self.tag(p, b"null").map(|q| (Object::Null, q)),
            b't' => self.tag(p, b"true").map(|q| (Object::Boolean(true), q)),
            b'f' => self.tag(p, b"false").map(|q| (Object::Boolean(false), q)),
            b'0'..=b'9' => {
                if let Some((id, q)) = self.reference(p) {
                    return Some((Object::Reference(id), q));
                }
                self.number(p)
            }
            b'+' | b'-' | b'.' => self.number(p),
            b'/' => self
                .name(p, build)
                .map(|(n, q)| (if build { Object::Name(n) } else { Object::Null }, q)),
            b'(' => self.literal(p, build).map(|(s, q)| {
                let o = if build {
                    Object::String(s, StringFormat::Literal)
                } else {
                    Object::Null
                };
                (o, q)
            }),
            b'<' => {
                if let Some((s, q)) = self.hex(p, build) {
                    let o = if build {
                        Object::String(s, StringFormat::Hexadecimal)
                    } else {
                        Object::Null
                    };
                    return Some((o, q));
                }
                self.dict(p, depth, build, None).map(|(d, q)| {
                    (
                        if build {
                            Object::Dictionary(d)
                        } else {
                            Object::Null
                        },
                        q,
                    )
                })
            }
            b'[' => {
                let mut q = self.space(p + 1);
                let mut items = Vec::new();
                while let Some((o, r)) = self.direct(q, depth, build) {
                    if build {
                        items.push(o);
                    }
                    q = r;
                }
                let q = self.tag(q, b"]")?;
                Some((
                    if build {
                        Object::Array(items)
                    } else {
                        Object::Null
                    },
                    q,
                ))
            }
            _ => None,
        }
    }

    /// [`Lexer::value`] without building anything: where the object ends, allocation-free.
    /// (Same grammar; a test checks that both end at the same place on random input.)
    fn skip_value(&self, p: usize, depth: usize) -> Option<usize> {
        match self.at(p)? {
            b'n' => self.tag(p, b"null"),
            b't' => self.tag(p, b"true"),
            b'f' => self.tag(p, b"false"),
            b'0'..=b'9' => {
                if let Some((_, q)) = self.reference(p) {
                    return Some(q);
                }
                self.skip_number(p)
            }
            b'+' | b'-' | b'.' => self.skip_number(p),
            b'/' => self.name(p, false).map(|(_, q)| q),
            b'(' => self.literal(p, false).map(|(_, q)| q),
            b'<' => {
                if let Some((_, q)) = self.hex(p, false) {
                    return Some(q);
                }
                self.skip_dict(p, depth, None)
            }
            b'[' => {
                let mut q = self.space(p + 1);
                while let Some(r) = self.skip_direct(q, depth) {
                    q = r;
                }
                self.tag(q, b"]")
            }
            _ => None,
        }
    }

    /// A real (whose text always parses: the grammar admits nothing `f32` refuses) or else an
    /// integer, as [`Lexer::number`] reads it.
    fn skip_number(&self, p: usize) -> Option<usize> {
        if let Some(q) = self.real_end(p) {
            return Some(q);
        }
        self.integer(p).map(|(_, q)| q)
    }

    fn skip_direct(&self, p: usize, depth: usize) -> Option<usize> {
        if depth == 0 {
            return None;
        }
        let q = self.skip_value(p, depth - 1)?;
        Some(self.space(q))
    }

    /// Records the value span of key `q..k_end` when it is `/Length` or `/Type`.
    fn capture(&self, c: &mut Captures, q: usize, k_end: usize, value: (usize, usize)) {
        if self.name_is(q, k_end, b"Length") {
            c.length = Some(value);
        } else if self.name_is(q, k_end, b"Type") {
            c.kind = Some(value);
        }
    }

    /// [`Lexer::dict`] without building, recording the spans of `/Length` and `/Type`.
    fn skip_dict(&self, p: usize, depth: usize, mut cap: Option<&mut Captures>) -> Option<usize> {
        let mut q = self.space(self.tag(p, b"<<")?);
        while self.at(q) == Some(b'/') {
            let Some((_, k_end)) = self.name(q, false) else {
                break;
            };
            let r = self.space(k_end);
            let Some(s) = self.skip_direct(r, depth) else {
                break;
            };
            if let Some(c) = cap.as_deref_mut() {
                self.capture(c, q, k_end, (r, s));
            }
            q = s;
        }
        self.tag(q, b">>")
    }

    fn number(&self, p: usize) -> Option<(Object, usize)> {
        if let Some((v, q)) = self.real(p) {
            return Some((Object::Real(v), q));
        }
        self.integer(p).map(|(v, q)| (Object::Integer(v), q))
    }

    /// `_direct_object`: depth check, one object, then white space.
    fn direct(&self, p: usize, depth: usize, build: bool) -> Option<(Object, usize)> {
        if depth == 0 {
            return None;
        }
        let (o, q) = self.value(p, depth - 1, build)?;
        Some((o, self.space(q)))
    }

    fn dict(
        &self,
        p: usize,
        depth: usize,
        build: bool,
        mut cap: Option<&mut Captures>,
    ) -> Option<(Dictionary, usize)> {
        let mut q = self.space(self.tag(p, b"<<")?);
        let mut d = Dictionary::new();
        while self.at(q) == Some(b'/') {
            let Some((key, k_end)) = self.name(q, build) else {
                break;
            };
            let r = self.space(k_end);
            let Some((v, s)) = self.direct(r, depth, build) else {
                break;
            };
            if let Some(c) = cap.as_deref_mut() {
                self.capture(c, q, k_end, (r, s));
            }
            if build {
                d.set(key, v);
            }
            q = s;
        }
        let q = self.tag(q, b">>")?;
        Some((d, q))
    }

    /// After a stream's dictionary: the `stream` keyword and its end of line; returns where
    /// the data starts, or `None` when the object is not a stream.
    fn stream_keyword(&self, p: usize) -> Option<usize> {
        let mut q = self.tag(self.space(p), b"stream")?;
        while matches!(self.at(q), Some(b' ' | b'\t')) {
            q += 1;
        }
        self.eol(q)
    }

    /// `N G obj` at `offset` naming `id`; returns where the object's value starts.
    fn object_header(&self, offset: usize, id: ObjectId) -> Option<usize> {
        let p = self.space(offset);
        let (n, p) = self.digits(p)?;
        let p = self.space(p);
        let (g, p) = self.digits(p)?;
        let p = self.space(p);
        if n != u64::from(id.0) || g != u64::from(id.1) {
            return None;
        }
        let p = self.tag(p, b"obj")?;
        Some(self.space(p))
    }

    /// The cross-reference section at `p`, a table or a stream, as lopdf reads it without
    /// correcting the offset.
    fn section(&self, p: usize) -> Option<(XrefKind, BTreeMap<u32, XEntry>, Dictionary)> {
        if self.b.get(p..)?.starts_with(b"xref") {
            let (e, t) = self.xref_section(p)?;
            Some((XrefKind::Table, e, t))
        } else {
            let (e, t) = self.xref_stream(p)?;
            Some((XrefKind::Stream, e, t))
        }
    }

    /// lopdf's test that an offset starts an indirect object (no leading white space).
    fn strict_header(&self, p: usize) -> Option<usize> {
        let digits = |q: usize, cap: usize| -> Option<usize> {
            let n = self
                .b
                .get(q..)?
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            (0 < n && n <= cap).then_some(q + n)
        };
        let spaces = |q: usize| -> Option<usize> {
            let n = self
                .b
                .get(q..)?
                .iter()
                .take_while(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
                .count();
            (n > 0).then_some(q + n)
        };
        let q = digits(p, 10)?;
        std::str::from_utf8(&self.b[p..q])
            .ok()?
            .parse::<u32>()
            .ok()?;
        let r = spaces(q)?;
        let s = digits(r, 5)?;
        std::str::from_utf8(&self.b[r..s])
            .ok()?
            .parse::<u16>()
            .ok()?;
        let t = self.tag(spaces(s)?, b"obj")?;
        match self.at(t) {
            Some(c) if c.is_ascii_alphanumeric() => None,
            _ => Some(t),
        }
    }

    /// An uncompressed cross-reference stream at `p` (`N G obj <<.../Type/XRef...>> stream`)
    /// and its dictionary as the trailer (without `/Length`, `/W`, `/Index`, as lopdf keeps
    /// it). Compressed streams and compressed-object entries are left to lopdf.
    fn xref_stream(&self, p: usize) -> Option<(BTreeMap<u32, XEntry>, Dictionary)> {
        self.strict_header(p)?;
        let q = self.space(p);
        let (_, q) = self.digits(q)?;
        let (_, q) = self.digits(self.space(q))?;
        let q = self.space(self.tag(self.space(q), b"obj")?);
        let (mut dict, r) = self.dict(q, MAX_NESTING_DEPTH, true, None)?;
        let data = self.stream_keyword(r)?;
        let len = match dict.get(b"Length") {
            Ok(Object::Integer(n)) => usize::try_from(*n).ok()?,
            _ => return None,
        };
        let end = data.checked_add(len)?;
        let content = self.b.get(data..end)?;
        let after = self.eol(end).unwrap_or(end);
        self.tag(after, b"endstream")?;
        if dict.has(b"Filter") {
            return None;
        }
        let size = match dict.get(b"Size") {
            Ok(Object::Integer(n)) if *n >= 0 => *n,
            _ => return None,
        };
        let w = ints(dict.get(b"W").ok()?)?;
        if w.len() != 3 || w.iter().any(|&x| !(0..=4).contains(&x)) {
            return None;
        }
        let widths = [w[0] as usize, w[1] as usize, w[2] as usize];
        let entry_width: usize = widths.iter().sum();
        if entry_width == 0 {
            return None;
        }
        let index = match dict.get(b"Index") {
            Ok(o) => ints(o)?,
            Err(_) => vec![0, size],
        };
        if index.len() % 2 != 0 || index.iter().any(|&x| x < 0) {
            return None;
        }
        let total = index
            .chunks(2)
            .try_fold(0usize, |t, c| t.checked_add(usize::try_from(c[1]).ok()?))?;
        if total > content.len() / entry_width.max(3) {
            return None;
        }
        let mut at = 0usize;
        let mut field = |width: usize| -> Option<u32> {
            let bytes = content.get(at..at + width)?;
            at += width;
            Some(bytes.iter().fold(0u32, |v, &b| (v << 8) | u32::from(b)))
        };
        let mut entries = BTreeMap::new();
        for c in index.chunks(2) {
            for j in 0..c[1] {
                let kind = if widths[0] == 0 { 1 } else { field(widths[0])? };
                let f2 = field(widths[1])?;
                let f3 = if widths[2] == 0 && kind == 1 {
                    0
                } else {
                    field(widths[2])?
                };
                let e = match kind {
                    0 => XEntry::Free,
                    1 => XEntry::Normal {
                        offset: f2 as usize,
                        generation: u16::try_from(f3).ok()?,
                    },
                    // objects in object streams: lopdf's business
                    2 => return None,
                    _ => continue,
                };
                let id = u32::try_from(c[0].checked_add(j)?).ok()?;
                entries.insert(id, e);
            }
        }
        dict.remove(b"Length");
        dict.remove(b"W");
        dict.remove(b"Index");
        Some((entries, dict))
    }

    /// A classic cross-reference section at `p` (which must start with `xref`) and its
    /// trailer, read as lopdf reads them; `None` where lopdf would read something else or
    /// repair it.
    fn xref_section(&self, p: usize) -> Option<(BTreeMap<u32, XEntry>, Dictionary)> {
        let mut q = self.tag(p, b"xref")?;
        if self.at(q) == Some(b' ') {
            q += 1;
        }
        q = self.eol(q)?;
        let mut entries = BTreeMap::new();
        let mut sections = 0;
        while let Some((start, count, r)) = self.subsection_header(q) {
            let mut r = r;
            let mut n: u64 = 0;
            while let Some((e, s)) = self.xref_entry(r) {
                let id = u32::try_from(start.checked_add(n)?).ok()?;
                entries.insert(id, e);
                n += 1;
                r = s;
            }
            if n != count {
                return None;
            }
            sections += 1;
            q = r;
        }
        if sections == 0 {
            return None;
        }
        q = self.space(q);
        q = self.space(self.tag(q, b"trailer")?);
        let (trailer, _) = self.dict(q, MAX_NESTING_DEPTH, true, None)?;
        Some((entries, trailer))
    }

    fn subsection_header(&self, p: usize) -> Option<(u64, u64, usize)> {
        let (start, q) = self.digits(p)?;
        let q = self.tag(q, b" ")?;
        let (count, mut q) = self.digits(q)?;
        u32::try_from(count).ok()?;
        if self.at(q) == Some(b' ') {
            q += 1;
        }
        let q = self.eol(q)?;
        Some((start, count, q))
    }

    fn xref_entry(&self, p: usize) -> Option<(XEntry, usize)> {
        let (offset, q) = self.digits(p)?;
        let offset = u32::try_from(offset).ok()?;
        let q = self.tag(q, b" ")?;
        let (generation, q) = self.digits(q)?;
        let generation = u32::try_from(generation).ok()?;
        let q = self.tag(q, b" ")?;
        let kind = self.at(q)?;
        let q = q + 1;
        // lopdf's order: " \r", " \n", "\r\n", then a bare "\n" or "\r"
        let q = match (self.at(q), self.at(q + 1)) {
            (Some(b' '), Some(b'\r' | b'\n')) => q + 2,
            (Some(b'\r'), Some(b'\n')) => q + 2,
            (Some(b'\n' | b'\r'), _) => q + 1,
            _ => return None,
        };
        let e = match kind {
            b'n' => XEntry::Normal {
                offset: offset as usize,
                // lopdf skips an entry whose generation does not fit: we fall back instead
                generation: u16::try_from(generation).ok()?,
            },
            b'f' => XEntry::Free,
            _ => return None,
        };
        Some((e, q))
    }
}

/// Most cross-reference sections the audit follows; a longer chain is left to lopdf.
const MAX_AUDIT_SECTIONS: usize = 4096;

/// What the audit of the cross-reference chain found besides ambiguities.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ChainFacts {
    /// Some trailer of the chain names an `/Encrypt` dictionary.
    pub encrypted: bool,
}

/// One cross-reference section as the audit reads it: the `(number, generation)` of its in-use
/// entries (generation 0 for objects in object streams) and its trailer.
struct AuditSection {
    in_use: Vec<(u32, u64)>,
    trailer: Dictionary,
}

/// Checks the cross-reference chain from `startxref` for what makes readers see different
/// documents: trailers that disagree on `/Root`, a `/Root` no section holds, `/Prev` (or
/// `/XRefStm`) cycles, cross-reference stream fields that overflow (lopdf keeps the low 32 bits
/// of an offset and the low 16 of a generation; other readers keep them all), subsections whose
/// entry count differs from their header. Both readers run it ([`MinimalPdf::read`] and
/// [`crate::SourcePdf::parse`]), so an ambiguity either could meet is a refusal, never a pick.
/// A section it cannot read at all (a `startxref` or `/Prev` pointing elsewhere) ends the
/// audit: that damage is lopdf's to repair, by a rewrite readers then agree on.
pub(crate) fn audit(bytes: &[u8]) -> crate::Result<ChainFacts> {
    use crate::error::{Error, XrefProblem};
    let mut facts = ChainFacts::default();
    let Some(start) = xref_start(bytes) else {
        return Ok(facts);
    };
    let lx = Lexer { b: bytes };
    let mut seen: Vec<usize> = Vec::new();
    let mut in_use: std::collections::HashSet<(u32, u64)> = std::collections::HashSet::new();
    let mut root: Option<ObjectId> = None;
    let mut complete = true;
    let offset = |o: &Object| o.as_i64().ok().and_then(|v| usize::try_from(v).ok());
    let mut next = Some(start);
    while let Some(p) = next.take() {
        if seen.contains(&p) {
            return Err(Error::Ambiguous(XrefProblem::PrevCycle(p)));
        }
        if seen.len() >= MAX_AUDIT_SECTIONS {
            complete = false;
            break;
        }
        seen.push(p);
        let Some(section) = lx.audit_section(p)? else {
            complete = false;
            break;
        };
        in_use.extend(section.in_use);
        let trailer = section.trailer;
        facts.encrypted |= trailer.has(b"Encrypt");
        if let Ok(r) = trailer.get(b"Root").and_then(Object::as_reference) {
            match root {
                None => root = Some(r),
                Some(n) if n != r => {
                    return Err(Error::Ambiguous(XrefProblem::RootsDisagree {
                        newer: format!("{} {} R", n.0, n.1),
                        older: format!("{} {} R", r.0, r.1),
                    }))
                }
                Some(_) => {}
            }
        }
        if let Ok(x) = trailer.get(b"XRefStm") {
            match offset(x) {
                Some(x) if seen.contains(&x) => {
                    return Err(Error::Ambiguous(XrefProblem::PrevCycle(x)))
                }
                Some(x) => {
                    seen.push(x);
                    match lx.audit_section(x)? {
                        Some(s) => in_use.extend(s.in_use),
                        None => complete = false,
                    }
                }
                None => complete = false,
            }
        }
        if let Ok(prev) = trailer.get(b"Prev") {
            match offset(prev).filter(|&v| v <= bytes.len()) {
                Some(v) => next = Some(v),
                None => complete = false,
            }
        }
    }
    if let (true, Some(r)) = (complete, root) {
        if !in_use.contains(&(r.0, u64::from(r.1))) {
            return Err(Error::Ambiguous(XrefProblem::RootMissing(format!(
                "{} {} R",
                r.0, r.1
            ))));
        }
    }
    Ok(facts)
}

impl Lexer<'_> {
    /// The cross-reference section at `p` for [`audit`]: `Ok(None)` when there is none the
    /// audit can read (left to lopdf), an error when the section is ambiguous.
    fn audit_section(&self, p: usize) -> crate::Result<Option<AuditSection>> {
        if self.b.get(p..).is_some_and(|t| t.starts_with(b"xref")) {
            self.audit_table(p)
        } else if self.strict_header(p).is_some() {
            self.audit_stream(p)
        } else {
            Ok(None)
        }
    }

    /// One line of space-separated tokens at `p` and where the next line starts.
    fn line_tokens(&self, p: usize) -> (Vec<&[u8]>, usize) {
        let rest = self.b.get(p..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&c| c == b'\r' || c == b'\n')
            .unwrap_or(rest.len());
        let toks = rest[..len]
            .split(|&c| c == b' ' || c == b'\t' || c == b'\0' || c == b'\x0c')
            .filter(|t| !t.is_empty())
            .collect();
        (toks, self.eol(p + len).unwrap_or(p + len))
    }

    /// A classic table, read line by line and leniently (any spacing), to count each
    /// subsection's entries against its header.
    fn audit_table(&self, p: usize) -> crate::Result<Option<AuditSection>> {
        use crate::error::{Error, XrefProblem};
        let number = |t: &[u8]| -> Option<u64> {
            if t.is_empty() || !t.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(t).ok()?.parse().ok()
        };
        // (header offset, first, claimed, found)
        let mut current: Option<(usize, u64, u64, u64)> = None;
        let finish = |c: Option<(usize, u64, u64, u64)>| match c {
            Some((at, first, claimed, found)) if claimed != found => {
                Err(Error::Ambiguous(XrefProblem::SubsectionCount {
                    at,
                    first,
                    claimed,
                    found,
                }))
            }
            _ => Ok(()),
        };
        let mut in_use = Vec::new();
        let mut q = p + 4;
        loop {
            while self.at(q).is_some_and(is_ws) {
                q += 1;
            }
            if self.at(q).is_none() {
                return Ok(None);
            }
            if self.tag(q, b"trailer").is_some() {
                finish(current)?;
                break;
            }
            let (toks, next) = self.line_tokens(q);
            match toks.as_slice() {
                [a, b] => {
                    let (Some(first), Some(claimed)) = (number(a), number(b)) else {
                        return Ok(None);
                    };
                    finish(current.take())?;
                    current = Some((q, first, claimed, 0));
                }
                [off, gen, kind] if matches!(*kind, b"n" | b"f") => {
                    let (Some(_), Some(gen), Some(c)) =
                        (number(off), number(gen), current.as_mut())
                    else {
                        return Ok(None);
                    };
                    if *kind == b"n" {
                        if let Ok(num) = u32::try_from(c.1.saturating_add(c.3)) {
                            in_use.push((num, gen));
                        }
                    }
                    c.3 += 1;
                }
                _ => return Ok(None),
            }
            q = next;
        }
        let q = self.space(q + b"trailer".len());
        Ok(self
            .dict(q, MAX_NESTING_DEPTH, true, None)
            .map(|(trailer, _)| AuditSection { in_use, trailer }))
    }

    /// A cross-reference stream (compressed or not): its `/W` widths and every entry's fields
    /// must fit what all readers read alike, and `/Index` must not claim more entries than the
    /// data holds.
    fn audit_stream(&self, p: usize) -> crate::Result<Option<AuditSection>> {
        use crate::error::{Error, XrefProblem};
        let overflow = |what: String| Error::Ambiguous(XrefProblem::StreamOverflow { at: p, what });
        let Some(q) = self.strict_header(p) else {
            return Ok(None);
        };
        let Some((dict, r)) = self.dict(self.space(q), MAX_NESTING_DEPTH, true, None) else {
            return Ok(None);
        };
        if dict.get(b"Type").and_then(Object::as_name).ok() != Some(&b"XRef"[..]) {
            return Ok(None);
        }
        let Some(data) = self.stream_keyword(r) else {
            return Ok(None);
        };
        let Some(content) = dict
            .get(b"Length")
            .ok()
            .and_then(|l| usize::try_from(l.as_i64().ok()?).ok())
            .and_then(|len| self.b.get(data..data.checked_add(len)?))
        else {
            return Ok(None);
        };
        let decoded = if dict.has(b"Filter") {
            match lopdf::Stream::new(dict.clone(), content.to_vec())
                .decompressed_content_with_limit(crate::document::MAX_DECOMPRESSED)
            {
                Ok(d) => d,
                Err(_) => return Ok(None),
            }
        } else {
            content.to_vec()
        };
        let Some(w) = dict.get(b"W").ok().and_then(ints) else {
            return Ok(None);
        };
        if w.len() < 3 || w.iter().any(|&x| !(0..=8).contains(&x)) {
            return Err(overflow(format!(
                "/W {w:?} is not three field widths of 0 to 8 bytes"
            )));
        }
        let widths = [w[0] as usize, w[1] as usize, w[2] as usize];
        let entry_width: usize = widths.iter().sum();
        if entry_width == 0 {
            return Err(overflow("/W gives every field zero bytes".into()));
        }
        let size = dict.get(b"Size").ok().and_then(|s| s.as_i64().ok());
        let index = match dict.get(b"Index") {
            Ok(o) => {
                ints(o).ok_or_else(|| overflow("/Index is not an array of integers".into()))?
            }
            Err(_) => vec![0, size.ok_or_else(|| overflow("no /Size".into()))?],
        };
        if index.len() % 2 != 0 || index.iter().any(|&x| x < 0) {
            return Err(overflow(format!("/Index {index:?} is not pairs of counts")));
        }
        let mut total: u64 = 0;
        for c in index.chunks(2) {
            let (first, count) = (c[0] as u64, c[1] as u64);
            if first
                .checked_add(count)
                .is_none_or(|end| end > u64::from(u32::MAX) + 1)
            {
                return Err(overflow(format!(
                    "/Index subsection {first} {count} runs past the largest object number"
                )));
            }
            total = total.saturating_add(count);
        }
        let holds = (decoded.len() / entry_width) as u64;
        if total > holds {
            return Err(overflow(format!(
                "/Index claims {total} entries, the data holds {holds}"
            )));
        }
        let mut at = 0usize;
        let mut field = |width: usize| -> u64 {
            let v = decoded[at..at + width]
                .iter()
                .fold(0u64, |v, &b| (v << 8) | u64::from(b));
            at += width;
            v
        };
        let mut in_use = Vec::new();
        for c in index.chunks(2) {
            for j in 0..c[1] as u64 {
                let num = c[0] as u64 + j;
                let kind = if widths[0] == 0 { 1 } else { field(widths[0]) };
                let f2 = field(widths[1]);
                let f3 = field(widths[2]);
                match kind {
                    1 if f2 > self.b.len() as u64 => {
                        return Err(overflow(format!(
                        "the offset {f2} of object {num} is beyond the end of the file ({} bytes)",
                        self.b.len()
                    )))
                    }
                    1 if f3 > u64::from(u16::MAX) => {
                        return Err(overflow(format!(
                            "the generation {f3} of object {num} does not fit 16 bits"
                        )))
                    }
                    2 if f2 > u64::from(u32::MAX) || f3 > u64::from(u16::MAX) => {
                        return Err(overflow(format!(
                            "object {num} is placed in object stream {f2} at index {f3}, \
                             numbers that do not fit"
                        )))
                    }
                    1 => in_use.push((num as u32, f3)),
                    2 => in_use.push((num as u32, 0)),
                    _ => {}
                }
            }
        }
        Ok(Some(AuditSection {
            in_use,
            trailer: dict,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bytes drawn from PDF syntax, so that random strings are mostly near-valid objects.
    fn syntax() -> impl Strategy<Value = Vec<u8>> {
        let atoms = prop::sample::select(vec![
            &b"<<"[..],
            b">>",
            b"[",
            b"]",
            b"(",
            b")",
            b"<",
            b">",
            b"/",
            b"/Type",
            b"/Length",
            b"#41",
            b"#4",
            b"\\",
            b"\\n",
            b"\\053",
            b"\r",
            b"\n",
            b"\r\n",
            b" ",
            b"%c\n",
            b"%",
            b"0",
            b"12",
            b"-3",
            b"+",
            b"-",
            b".",
            b"4.5",
            b".5",
            b"6.",
            b"0.00-41",
            b"R",
            b" 0 R",
            b"1 0 R",
            b"99999999999",
            b"65536",
            b"true",
            b"fals",
            b"null",
            b"ab",
            b"FE",
            b"\t",
            b"\0",
            b"{",
        ]);
        prop::collection::vec(atoms, 0..24).prop_map(|v| v.concat())
    }

    /// Well-formed values (with the spellings lopdf reads specially) in random layouts.
    fn valid_value() -> impl Strategy<Value = Vec<u8>> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string().into_bytes()),
            (any::<i16>(), 0u32..1000).prop_map(|(a, b)| format!("{a}.{b}").into_bytes()),
            Just(b"-.5".to_vec()),
            Just(b"+7.".to_vec()),
            Just(b"0.00-4142502".to_vec()),
            (0u32..50, 0u16..3).prop_map(|(n, g)| format!("{n} {g} R").into_bytes()),
            "[A-Za-z0-9#]{0,6}".prop_map(|n| format!("/{n}").into_bytes()),
            "[ -~]{0,8}".prop_map(|t| {
                let t = t
                    .replace('\\', "\\\\")
                    .replace('(', "\\(")
                    .replace(')', "\\)");
                format!("({t}\\101\\n\r\n(x))").into_bytes()
            }),
            "[0-9a-fA-F \n]{0,9}".prop_map(|h| format!("<{h}>").into_bytes()),
            Just(b"true".to_vec()),
            Just(b"false".to_vec()),
            Just(b"null".to_vec()),
        ];
        let sep = prop::sample::select(vec![&b" "[..], b"", b"\n", b"%c\r\n", b"\t\0"]);
        leaf.prop_recursive(4, 32, 6, move |inner| {
            let sep = sep.clone();
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..5), sep.clone()).prop_map(|(v, s)| {
                    let mut out = b"[".to_vec();
                    for x in v {
                        out.extend_from_slice(&x);
                        out.extend_from_slice(s);
                        out.push(b' ');
                    }
                    out.push(b']');
                    out
                }),
                (
                    prop::collection::vec(("[A-Za-z]{1,4}", inner), 0..5),
                    sep.clone()
                )
                    .prop_map(|(v, s)| {
                        let mut out = b"<<".to_vec();
                        for (k, x) in v {
                            out.extend_from_slice(format!("/{k}").as_bytes());
                            out.extend_from_slice(s);
                            out.push(b' ');
                            out.extend_from_slice(&x);
                        }
                        out.extend_from_slice(b">>");
                        out
                    }),
            ]
        })
    }

    proptest! {
        /// The allocation-free scanner ends exactly where the building parser ends (or both
        /// fail), at every depth.
        #[test]
        fn skip_and_build_agree(input in prop_oneof![syntax(), valid_value()], depth in 1usize..6) {
            let lx = Lexer { b: &input };
            let built = lx.value(0, depth, true).map(|(_, q)| q);
            let unbuilt = lx.value(0, depth, false).map(|(_, q)| q);
            let skipped = lx.skip_value(0, depth);
            prop_assert_eq!(built, skipped);
            prop_assert_eq!(built, unbuilt);
            let mut cap = Captures::default();
            let d_built = lx.dict(0, depth, true, None).map(|(_, q)| q);
            prop_assert_eq!(d_built, lx.skip_dict(0, depth, Some(&mut cap)));
        }

        /// Wrapped in an indirect object, lopdf reads the same value as the building parser.
        #[test]
        fn values_match_lopdf(input in prop_oneof![syntax(), valid_value()]) {
            let lx = Lexer { b: &input };
            let Some((mine, end)) = lx.value(0, MAX_NESTING_DEPTH, true) else {
                return Ok(());
            };
            // lopdf only sees a whole object: require the rest to be blank
            if lx.space(end) != input.len() {
                return Ok(());
            }
            let mut pdf = b"%PDF-1.7\n1 0 obj\n<</Type/Catalog/Pages 2 0 R/V ".to_vec();
            pdf.extend_from_slice(&input);
            pdf.extend_from_slice(b"\n>>\nendobj\n2 0 obj\n<</Type/Pages/Kids[]/Count 0>>\nendobj\n");
            let xref = pdf.len();
            pdf.extend_from_slice(b"xref\n0 3\n0000000000 65535 f \n0000000009 00000 n \n");
            let two = pdf.windows(7).position(|w| w == b"2 0 obj").unwrap_or(0);
            pdf.extend_from_slice(format!("{two:010} 00000 n \n").as_bytes());
            pdf.extend_from_slice(format!("trailer\n<</Size 3/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n").as_bytes());
            let Ok(doc) = lopdf::Document::load_mem(&pdf) else {
                return Ok(());
            };
            let theirs = doc
                .get_dictionary((1, 0))
                .ok()
                .and_then(|d| d.get(b"V").ok())
                .cloned();
            prop_assert_eq!(Some(format!("{mine:?}")), theirs.map(|t| format!("{t:?}")));
        }
    }

    #[test]
    fn reads_lopdf_quirks_alike() {
        let lx = Lexer {
            b: b"0.00-4142502 ",
        };
        assert_eq!(
            lx.value(0, 4, true).map(|(o, _)| o),
            Some(Object::Real(0.004_142_502))
        );
        let lx = Lexer {
            b: b"(a\\\r\nb\\101\r)",
        };
        assert_eq!(
            lx.value(0, 4, true).map(|(o, _)| o),
            Some(Object::String(b"abA\n".to_vec(), StringFormat::Literal))
        );
        let lx = Lexer { b: b"/A#42#4" };
        assert_eq!(lx.name(0, true), Some((b"AB".to_vec(), 5)));
    }
}
