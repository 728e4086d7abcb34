//! The single-pass scanner: the fast way in for the documents we actually meet.
//!
//! It reads the input once, byte by byte where it must and with `memchr` where it can, and
//! builds the [`Document`] directly (no event objects, no second scan of a tag for its
//! attributes or namespace declarations). It accepts only a strict, common subset of XML:
//! ASCII names (`prefix:local` at most), quoted attribute values separated by whitespace,
//! comments, CDATA sections, processing instructions and an XML declaration at the start.
//! Whenever it meets anything else (a DOCTYPE, a non-ASCII name, an odd comment, a reference
//! it cannot decode, a limit reached, any error at all) it gives up with [`Handover`] and the
//! quick-xml based reader of [`super::reader`] reads the whole input again: that reader is
//! the reference, and it alone produces every error message. So for any input the result is
//! exactly the reference reader's (a differential property test holds the two together); the
//! scanner only decides how fast the common case gets there.
//!
//! The tree it builds is identical field by field: same node and attribute order, same name
//! ids (interned in first-occurrence order, keyed by namespace and qualified name as
//! written), same text arena contents (line ends normalised, references decoded, attribute
//! values normalised by the same helper functions), same source offsets.

use super::reader::{
    append_node, check_version, extend_text, intern_uri, new_document, normalize_attr,
    pop_bindings, push_newlines_normalized, resolve_prefix, unescape, Binding, NS_NONE, XMLNS_NS,
};
use super::{AttrData, Document, Limits, Name, NodeData, NodeKind, NONE, XML_NS};

/// Interned name ids by (namespace id, qualified name as written): open addressing over a
/// power-of-two slot array, hashed a word at a time. Cheaper than a general map for the
/// short, repetitive names of a document (most lookups hit on the first probe).
struct NameTable<'i> {
    /// `id + 1` per slot, 0 when free.
    slots: Vec<u32>,
    /// Key of each id.
    keys: Vec<(u32, &'i str)>,
}

impl<'i> NameTable<'i> {
    fn new() -> Self {
        NameTable {
            slots: vec![0; 512],
            keys: Vec::with_capacity(128),
        }
    }

    #[inline]
    fn hash(ns: u32, key: &[u8]) -> usize {
        let mut h = (ns as u64) ^ ((key.len() as u64) << 32);
        let mut chunks = key.chunks_exact(8);
        for c in &mut chunks {
            let w = <[u8; 8]>::try_from(c).map_or(0, u64::from_le_bytes);
            h = (h.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // A byte loop: a variable-length copy would be a call to memcpy.
            let w = rest.iter().rev().fold(0u64, |w, &b| (w << 8) | b as u64);
            h = (h.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
        (h >> 29) as usize
    }

    #[inline]
    fn get(&self, ns: u32, key: &str) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = Self::hash(ns, key.as_bytes()) & mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                return None;
            }
            let (kns, k) = self.keys[slot as usize - 1];
            if kns == ns && same_bytes(k.as_bytes(), key.as_bytes()) {
                return Some(slot - 1);
            }
            i = (i + 1) & mask;
        }
    }

    /// Records `id` (the next one: `keys.len()`) for a key known to be absent.
    fn insert(&mut self, ns: u32, key: &'i str, id: u32) {
        debug_assert_eq!(id as usize, self.keys.len());
        self.keys.push((ns, key));
        if self.keys.len() * 2 > self.slots.len() {
            let mut slots = vec![0u32; self.slots.len() * 2];
            let mask = slots.len() - 1;
            for (n, &(kns, k)) in self.keys.iter().enumerate() {
                let mut i = Self::hash(kns, k.as_bytes()) & mask;
                while slots[i] != 0 {
                    i = (i + 1) & mask;
                }
                slots[i] = n as u32 + 1;
            }
            self.slots = slots;
            return;
        }
        let mask = self.slots.len() - 1;
        let mut i = Self::hash(ns, key.as_bytes()) & mask;
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = id + 1;
    }
}

/// The scanner met something outside its subset (or an error): the reference reader decides.
#[derive(Debug)]
pub(super) struct Handover;

type Step<T> = Result<T, Handover>;

/// Byte classes: bit 0 = may start a name part, bit 1 = may continue a name part.
const fn name_classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphabetic() || b == b'_' {
            t[c] = 3;
        } else if b.is_ascii_digit() || b == b'-' || b == b'.' {
            t[c] = 2;
        }
        c += 1;
    }
    t
}
static NAME: [u8; 256] = name_classes();

#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Byte equality of short strings without a call to `memcmp`.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// What a run of text holds besides plain characters.
#[derive(Clone, Copy, Default)]
struct TextMarks {
    amp: bool,
    cr: bool,
}

/// End of the text starting at `i` (the next `<`, or the end of input) and its marks. Most
/// texts of a document are short indentation runs: a plain loop finds their end before a
/// vectorised search would have started; longer texts go to `memchr3`.
#[inline]
fn text_end(b: &[u8], i: usize) -> (usize, TextMarks) {
    let mut marks = TextMarks::default();
    let short = b.len().min(i + 32);
    let mut j = i;
    while j < short {
        match b[j] {
            b'<' => return (j, marks),
            b'&' => marks.amp = true,
            b'\r' => marks.cr = true,
            _ => {}
        }
        j += 1;
    }
    while let Some(n) = memchr::memchr3(b'<', b'&', b'\r', &b[j..]) {
        j += n;
        match b[j] {
            b'<' => return (j, marks),
            b'&' => marks.amp = true,
            _ => marks.cr = true,
        }
        j += 1;
    }
    (b.len(), marks)
}

/// An in-scope namespace declaration.
/// An open element (or the document node at the bottom of the stack).
struct Open {
    node: u32,
    /// Last child so far, or `NONE`.
    last: u32,
    /// Qualified name as written, a byte range of the source (for the end tag).
    qname: (u32, u32),
}

/// One attribute of the tag being read: key range, colon offset in the key, value range.
#[derive(Clone, Copy)]
struct Span {
    key: (usize, usize),
    colon: Option<usize>,
    value: (usize, usize),
}

struct Scanner<'i> {
    src: &'i str,
    b: &'i [u8],
    limits: Limits,
    doc: Document,
    /// Interned name ids by (namespace id, qualified name as written).
    names: NameTable<'i>,
    /// (namespace id, local name) per interned id.
    meta: Vec<(u32, &'i str)>,
    ns_uris: Vec<&'i str>,
    bindings: Vec<Binding<'i>>,
    stack: Vec<Open>,
    seen_root: bool,
    spans: Vec<Span>,
}

/// Reads `src` (UTF-8, BOM already removed) if it is in the scanner's subset.
pub(super) fn read(src: &str, limits: Limits) -> Result<Document, Handover> {
    // A second BOM, or anything quick-xml might treat specially at the very start.
    if src.as_bytes().first() == Some(&0xEF) {
        return Err(Handover);
    }
    let mut s = Scanner {
        src,
        b: src.as_bytes(),
        limits,
        doc: new_document(src, limits),
        names: NameTable::new(),
        meta: Vec::with_capacity(128),
        ns_uris: vec!["", XML_NS, XMLNS_NS],
        bindings: Vec::new(),
        stack: Vec::with_capacity(32),
        seen_root: false,
        spans: Vec::with_capacity(16),
    };
    s.stack.push(Open {
        node: 0,
        last: NONE,
        qname: (0, 0),
    });
    s.run()?;
    Ok(s.doc)
}

impl<'i> Scanner<'i> {
    fn run(&mut self) -> Step<()> {
        let b = self.b;
        let len = b.len();
        let mut i = 0;
        while i < len {
            if b[i] != b'<' {
                let (end, marks) = text_end(b, i);
                self.text(i, end, marks)?;
                i = end;
                continue;
            }
            i = match b.get(i + 1) {
                Some(b'/') => self.end_tag(i)?,
                Some(b'!') => self.bang(i)?,
                Some(b'?') => self.pi(i)?,
                Some(_) => self.start_tag(i)?,
                None => return Err(Handover),
            };
        }
        if self.stack.len() > 1 || !self.seen_root {
            return Err(Handover);
        }
        let last = self.doc.nodes.len() as u32 - 1;
        self.doc.nodes[0].last_desc = last;
        Ok(())
    }

    /// A name (`local` or `prefix:local`, ASCII) starting at `i`: its end and colon offset.
    #[inline]
    fn name(&self, i: usize) -> Step<(usize, Option<usize>)> {
        let b = self.b;
        if NAME[*b.get(i).ok_or(Handover)? as usize] & 1 == 0 {
            return Err(Handover);
        }
        let mut j = i + 1;
        let mut colon = None;
        while let Some(&c) = b.get(j) {
            if NAME[c as usize] & 2 != 0 {
                j += 1;
            } else if c == b':' && colon.is_none() {
                // The local part must start like a name too.
                match b.get(j + 1) {
                    Some(&n) if NAME[n as usize] & 1 != 0 => {
                        colon = Some(j - i);
                        j += 2;
                    }
                    _ => return Err(Handover),
                }
            } else {
                break;
            }
        }
        Ok((j, colon))
    }

    fn check_count(&self) -> Step<()> {
        if self.doc.nodes.len() + self.doc.attrs.len() > self.limits.max_nodes {
            return Err(Handover);
        }
        Ok(())
    }

    fn push_node(&mut self, mut data: NodeData) -> Step<u32> {
        self.check_count()?;
        let idx = self.doc.nodes.len() as u32;
        let top = self.stack.last_mut().ok_or(Handover)?;
        data.parent = top.node;
        top.last = append_node(&mut self.doc, top.last, data);
        Ok(idx)
    }

    /// Character data `s` (decoded, line ends not yet normalised) found at `pos`; `cr`:
    /// `s` may contain a carriage return.
    fn push_text(&mut self, s: &str, pos: usize, cr: bool) -> Step<()> {
        if s.is_empty() {
            return Ok(());
        }
        let last = self.stack.last().map_or(NONE, |t| t.last);
        let start = self.doc.text.len() as u32;
        if cr {
            push_newlines_normalized(&mut self.doc.text, s);
        } else {
            self.doc.text.push_str(s);
        }
        let end = self.doc.text.len() as u32;
        if extend_text(&mut self.doc, last, end) {
            return Ok(());
        }
        let mut d = NodeData::blank(NodeKind::Text, pos);
        d.text_start = start;
        d.text_end = end;
        self.push_node(d)?;
        Ok(())
    }

    /// Text between markup, `src[i..end]`; `marks` tells whether it holds `&` and `\r`.
    fn text(&mut self, i: usize, end: usize, marks: TextMarks) -> Step<()> {
        let src: &'i str = self.src;
        let raw = src.get(i..end).ok_or(Handover)?;
        if self.stack.len() == 1 {
            // Outside the root element only plain whitespace is ours.
            return if raw.bytes().all(is_ws) {
                Ok(())
            } else {
                Err(Handover)
            };
        }
        if marks.amp {
            let s = unescape(raw).map_err(|_| Handover)?;
            self.push_text(&s, i, true)
        } else {
            self.push_text(raw, i, marks.cr)
        }
    }

    fn intern_ns(&mut self, uri: &'i str) -> u32 {
        intern_uri(&mut self.ns_uris, uri)
    }

    /// Namespace of a prefix (the default one for unprefixed element names).
    fn resolve(&self, prefix: Option<&[u8]>, use_default: bool) -> Step<u32> {
        resolve_prefix(&self.bindings, prefix, use_default).map_err(|()| Handover)
    }

    /// Interned id of (`ns`, `qname`); names reaching here are valid by construction.
    fn intern(&mut self, ns: u32, qname: &'i str, colon: Option<usize>) -> (u32, &'i str) {
        let (prefix, local) = match colon {
            Some(c) => (&qname[..c], &qname[c + 1..]),
            None => ("", qname),
        };
        if let Some(id) = self.names.get(ns, qname) {
            return (id, local);
        }
        (self.insert_name(ns, qname, local, prefix), local)
    }

    fn insert_name(&mut self, ns: u32, key: &'i str, local: &'i str, prefix: &'i str) -> u32 {
        let id = self.doc.names.len() as u32;
        self.doc.names.push(Name {
            ns: self.ns_uris[ns as usize].into(),
            local: local.into(),
            prefix: prefix.into(),
        });
        self.meta.push((ns, local));
        self.names.insert(ns, key, id);
        id
    }

    /// `<name attr="value" ...>` or `.../>` at `i`; returns the offset after it.
    fn start_tag(&mut self, i: usize) -> Step<usize> {
        let b = self.b;
        let src: &'i str = self.src;
        let (qe, colon) = self.name(i + 1)?;
        let mut spans = std::mem::take(&mut self.spans);
        spans.clear();
        let mut j = qe;
        let mut has_xmlns = false;
        let empty = loop {
            let ws_start = j;
            while j < b.len() && is_ws(b[j]) {
                j += 1;
            }
            match b.get(j) {
                Some(b'>') => {
                    j += 1;
                    break false;
                }
                Some(b'/') => {
                    if b.get(j + 1) != Some(&b'>') {
                        return Err(Handover);
                    }
                    j += 2;
                    break true;
                }
                Some(_) if j > ws_start => {
                    let ks = j;
                    let (ke, kcolon) = self.name(j)?;
                    j = ke;
                    while j < b.len() && is_ws(b[j]) {
                        j += 1;
                    }
                    if b.get(j) != Some(&b'=') {
                        return Err(Handover);
                    }
                    j += 1;
                    while j < b.len() && is_ws(b[j]) {
                        j += 1;
                    }
                    let quote = *b.get(j).ok_or(Handover)?;
                    if quote != b'"' && quote != b'\'' {
                        return Err(Handover);
                    }
                    let vs = j + 1;
                    let ve =
                        vs + memchr::memchr(quote, b.get(vs..).ok_or(Handover)?).ok_or(Handover)?;
                    let key = &b[ks..ke];
                    if spans.iter().any(|s: &Span| &b[s.key.0..s.key.1] == key) {
                        return Err(Handover);
                    }
                    has_xmlns |= key.starts_with(b"xmlns");
                    spans.push(Span {
                        key: (ks, ke),
                        colon: kcolon,
                        value: (vs, ve),
                    });
                    j = ve + 1;
                }
                _ => return Err(Handover),
            }
        };
        let depth = self.stack.len();
        if has_xmlns {
            self.push_bindings(&spans, depth)?;
        }
        if depth == 1 {
            if self.seen_root {
                return Err(Handover);
            }
            self.seen_root = true;
        }
        if depth > self.limits.max_depth {
            return Err(Handover);
        }
        let qs = i + 1;
        let ns = self.resolve(colon.map(|c| &b[qs..qs + c]), true)?;
        let qname = src.get(qs..qe).ok_or(Handover)?;
        let (name, _) = self.intern(ns, qname, colon);
        let attr_start = self.doc.attrs.len();
        let mut d = NodeData::blank(NodeKind::Element, i);
        d.name = name;
        let idx = self.push_node(d)?;
        for s in &spans {
            self.attribute(s, idx, attr_start)?;
        }
        self.spans = spans;
        let attr_end = self.doc.attrs.len() as u32;
        let node = &mut self.doc.nodes[idx as usize];
        node.attr_start = attr_start as u32;
        node.attr_end = attr_end;
        if empty {
            self.pop_bindings(depth);
        } else {
            self.stack.push(Open {
                node: idx,
                last: NONE,
                qname: (qs as u32, qe as u32),
            });
        }
        Ok(j)
    }

    /// The namespace declarations of a tag, in order.
    fn push_bindings(&mut self, spans: &[Span], depth: usize) -> Step<()> {
        let b = self.b;
        let src: &'i str = self.src;
        for s in spans {
            let key = &b[s.key.0..s.key.1];
            let prefix: &'i [u8] = if key == b"xmlns" {
                &[]
            } else if s.colon == Some(5) && key.starts_with(b"xmlns") {
                &b[s.key.0 + 6..s.key.1]
            } else {
                continue;
            };
            let value = src.get(s.value.0..s.value.1).ok_or(Handover)?;
            // Values needing any interpretation are left to the reference reader.
            if value.bytes().any(|c| matches!(c, b'&' | b'<')) {
                return Err(Handover);
            }
            if prefix == b"xml" {
                if value != XML_NS {
                    return Err(Handover);
                }
                continue;
            }
            if prefix == b"xmlns" || (!prefix.is_empty() && (value == XML_NS || value == XMLNS_NS))
            {
                return Err(Handover);
            }
            let ns = if value.is_empty() {
                NONE
            } else {
                self.intern_ns(value)
            };
            self.bindings.push(Binding { prefix, ns, depth });
        }
        Ok(())
    }

    fn pop_bindings(&mut self, depth: usize) {
        pop_bindings(&mut self.bindings, depth);
    }

    fn attribute(&mut self, s: &Span, idx: u32, attr_start: usize) -> Step<()> {
        let b = self.b;
        let src: &'i str = self.src;
        let key = &b[s.key.0..s.key.1];
        if key.starts_with(b"xmlns") && (key.len() == 5 || key[5] == b':') {
            return Ok(()); // a namespace declaration
        }
        let apos = s.key.0;
        let ans = self.resolve(s.colon.map(|c| &key[..c]), false)?;
        let akey = src.get(s.key.0..s.key.1).ok_or(Handover)?;
        let (aname, alocal) = self.intern(ans, akey, s.colon);
        let raw = src.get(s.value.0..s.value.1).ok_or(Handover)?;
        let special = raw
            .bytes()
            .any(|c| matches!(c, b'<' | b'&' | b'\r' | b'\n' | b'\t'));
        if special && raw.contains('<') {
            return Err(Handover);
        }
        let meta = &self.meta;
        let dup = self.doc.attrs[attr_start..].iter().any(|x| {
            x.name == aname || {
                let m = &meta[x.name as usize];
                m.0 == ans && m.1 == alocal
            }
        });
        if dup {
            return Err(Handover);
        }
        let vs = self.doc.text.len();
        if special {
            let normalized = normalize_attr(raw);
            let value = unescape(&normalized).map_err(|_| Handover)?;
            self.doc.text.push_str(&value);
        } else {
            self.doc.text.push_str(raw);
        }
        self.doc.attrs.push(AttrData {
            owner: idx,
            name: aname,
            value_start: vs as u32,
            value_end: self.doc.text.len() as u32,
            pos: apos as u32,
        });
        self.check_count()
    }

    /// `</name>` at `i`.
    fn end_tag(&mut self, i: usize) -> Step<usize> {
        if self.stack.len() <= 1 {
            return Err(Handover);
        }
        let b = self.b;
        let (qs, qe) = self.stack.last().map_or((0, 0), |o| o.qname);
        let (qs, qe) = (qs as usize, qe as usize);
        let mut j = i + 2;
        let n = qe - qs;
        if b.get(j..j + n) != Some(&b[qs..qe]) {
            return Err(Handover);
        }
        j += n;
        while j < b.len() && is_ws(b[j]) {
            j += 1;
        }
        if b.get(j) != Some(&b'>') {
            return Err(Handover);
        }
        let depth = self.stack.len() - 1;
        self.pop_bindings(depth);
        if let Some(open) = self.stack.pop() {
            self.doc.nodes[open.node as usize].last_desc = self.doc.nodes.len() as u32 - 1;
        }
        Ok(j + 1)
    }

    /// `<!--...-->` or `<![CDATA[...]]>` at `i` (anything else starting with `<!` is handed over).
    fn bang(&mut self, i: usize) -> Step<usize> {
        let b = self.b;
        let src: &'i str = self.src;
        let rest = &b[i..];
        if rest.starts_with(b"<!--") {
            let cs = i + 4;
            let ce = cs + memchr::memmem::find(&b[cs..], b"-->").ok_or(Handover)?;
            let content = &b[cs..ce];
            if content.is_empty()
                || matches!(content[0], b'-' | b'>')
                || content.ends_with(b"-")
                || memchr::memmem::find(content, b"--").is_some()
            {
                return Err(Handover);
            }
            let text = src.get(cs..ce).ok_or(Handover)?;
            let start = self.doc.text.len() as u32;
            self.doc.text.push_str(text);
            let mut d = NodeData::blank(NodeKind::Comment, i);
            d.text_start = start;
            d.text_end = self.doc.text.len() as u32;
            self.push_node(d)?;
            Ok(ce + 3)
        } else if rest.starts_with(b"<![CDATA[") {
            if self.stack.len() == 1 {
                return Err(Handover);
            }
            let cs = i + 9;
            let ce = cs + memchr::memmem::find(&b[cs..], b"]]>").ok_or(Handover)?;
            let text = src.get(cs..ce).ok_or(Handover)?;
            self.push_text(text, i, true)?;
            Ok(ce + 3)
        } else {
            Err(Handover)
        }
    }

    /// `<?target content?>` or the XML declaration at `i`.
    fn pi(&mut self, i: usize) -> Step<usize> {
        let b = self.b;
        let src: &'i str = self.src;
        let cs = i + 2;
        let ce = cs + memchr::memmem::find(b.get(cs..).ok_or(Handover)?, b"?>").ok_or(Handover)?;
        let content = &b[cs..ce];
        let tlen = content
            .iter()
            .position(|&c| is_ws(c))
            .unwrap_or(content.len());
        let target = &content[..tlen];
        if target.is_empty()
            || !target
                .iter()
                .all(|&c| NAME[c as usize] & 2 != 0 || c == b':')
        {
            return Err(Handover);
        }
        if target == b"xml" {
            // The declaration: only at the very start.
            if i != 0 {
                return Err(Handover);
            }
            self.declaration(cs + 3, ce)?;
            return Ok(ce + 2);
        }
        if target.eq_ignore_ascii_case(b"xml") {
            return Err(Handover);
        }
        let target = src.get(cs..cs + tlen).ok_or(Handover)?;
        let text = src.get(cs + tlen..ce).ok_or(Handover)?.trim_start();
        let name = match self.names.get(NS_NONE, target) {
            Some(id) => id,
            None => self.insert_name(NS_NONE, target, target, ""),
        };
        let start = self.doc.text.len() as u32;
        self.doc.text.push_str(text);
        let mut d = NodeData::blank(NodeKind::ProcessingInstruction, i);
        d.name = name;
        d.text_start = start;
        d.text_end = self.doc.text.len() as u32;
        self.push_node(d)?;
        Ok(ce + 2)
    }

    /// Pseudo-attributes of the declaration, `b[from..to]`: well-formed, distinct, the
    /// version first and accepted.
    fn declaration(&self, from: usize, to: usize) -> Step<()> {
        let b = &self.b[..to];
        let mut j = from;
        let mut keys: Vec<&[u8]> = Vec::new();
        loop {
            let ws_start = j;
            while j < b.len() && is_ws(b[j]) {
                j += 1;
            }
            if j == b.len() {
                // No pseudo-attribute at all (no version): the reader refuses it.
                return if keys.is_empty() {
                    Err(Handover)
                } else {
                    Ok(())
                };
            }
            if j == ws_start {
                return Err(Handover);
            }
            let ks = j;
            while j < b.len() && NAME[b[j] as usize] & 2 != 0 {
                j += 1;
            }
            let key = &b[ks..j];
            if key.is_empty() || keys.contains(&key) || b.get(j) != Some(&b'=') {
                return Err(Handover);
            }
            keys.push(key);
            let quote = *b.get(j + 1).ok_or(Handover)?;
            if quote != b'"' && quote != b'\'' {
                return Err(Handover);
            }
            let vs = j + 2;
            let ve = vs + memchr::memchr(quote, b.get(vs..).ok_or(Handover)?).ok_or(Handover)?;
            // The version comes first and is one the reader accepts; the encoding was
            // decided before reading.
            if keys.len() == 1 && (key != b"version" || check_version(&b[vs..ve]).is_err()) {
                return Err(Handover);
            }
            j = ve + 1;
        }
    }
}
