//! The reference reading loop: quick-xml events into a [`Document`], with the hardening rules
//! of the module applied on the way.
//!
//! [`parse`] first tries the single-pass [`super::scanner`], which handles the common subset
//! of XML and hands anything else over to this reader; this reader alone decides on unusual
//! input and produces every error (so errors and trees are the same whichever path ran).
//!
//! Speed notes. The whole input is checked to be UTF-8 once, up front; quick-xml only ever
//! splits it at ASCII delimiters, so every name, value and text it hands back is a slice of
//! that `&str` and is recovered by offset (no further UTF-8 validation, no copy). Namespace
//! scopes are resolved here rather than by quick-xml's `NsReader` (which parses the attributes
//! of every start tag a second time): a tag is scanned for declarations only when it contains
//! `xmlns`, with the same rules and errors as `NsReader`. Names are interned once per document
//! through an Fx-hashed table keyed by (namespace, qualified name) slices of the input; text
//! and attribute values are appended to the document's single text arena, unescaped only when
//! they contain `&`. Attributes of a start tag are split by [`scan_attributes`] when the tag has
//! the ordinary well-formed shape, by quick-xml's iterator (and its errors) otherwise.

use super::{AttrData, Document, Limits, Name, NodeData, NodeKind, XmlError, NONE, XML_NS};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{NamespaceError, PrefixDeclaration, QName};
use quick_xml::Reader;
use rustc_hash::FxHashMap;
use std::borrow::Cow;

/// Namespace URI of the `xmlns` prefix, always bound.
pub(super) const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";
/// Interned namespace ids: no namespace, `xml`, `xmlns`.
pub(super) const NS_NONE: u32 = 0;
pub(super) const NS_XML: u32 = 1;
pub(super) const NS_XMLNS: u32 = 2;

/// Reads a document with the default [`Limits`].
pub fn parse(input: &[u8]) -> Result<Document, XmlError> {
    parse_with_limits(input, Limits::default())
}

/// Reads a document with explicit limits.
pub fn parse_with_limits(input: &[u8], limits: Limits) -> Result<Document, XmlError> {
    parse_keeping_text(input, limits).map(|(doc, _)| doc)
}

/// Reads a document with explicit limits, and returns with it the UTF-8 text it was read
/// from (the input itself, byte-order mark removed, when it is UTF-8; the decoded text
/// otherwise): the offsets of the document's nodes are offsets in that text.
pub fn parse_keeping_text(
    input: &[u8],
    limits: Limits,
) -> Result<(Document, Cow<'_, str>), XmlError> {
    let text = checked_text(input, limits)?;
    let doc = match super::scanner::read(&text, limits) {
        Ok(doc) => doc,
        Err(super::scanner::Handover) => Builder::new(&text, limits).run()?,
    };
    Ok((doc, text))
}

/// Reads a document with the reference (quick-xml based) reader alone, never the scanner:
/// for differential tests and benchmarks. Same result as [`parse_with_limits`].
#[doc(hidden)]
pub fn parse_reference(input: &[u8], limits: Limits) -> Result<Document, XmlError> {
    let text = checked_text(input, limits)?;
    Builder::new(&text, limits).run()
}

/// The input as UTF-8 text: size limit, encoding decoded (leading BOM removed), every
/// character within XML 1.0's `Char` production.
pub(super) fn checked_text(input: &[u8], limits: Limits) -> Result<Cow<'_, str>, XmlError> {
    if input.len() > limits.max_bytes {
        return Err(XmlError::TooLarge {
            size: input.len(),
            limit: limits.max_bytes,
        });
    }
    let text = super::encoding::to_text(input)?;
    if let Some((offset, c)) = super::encoding::first_non_char(&text) {
        return Err(super::encoding::non_char_error(&text, offset, c));
    }
    Ok(text)
}

/// Offsets where lines start: 0 and one past every LF. Eight bytes at a time (lines are short,
/// so a search call per line would cost more than the scan).
pub(super) fn line_starts(bytes: &[u8]) -> Vec<u32> {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const LF: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    let mut out = Vec::with_capacity(bytes.len() / 32 + 1);
    out.push(0u32);
    let mut chunks = bytes.chunks_exact(8);
    let mut base = 0u32;
    for c in &mut chunks {
        let w = <[u8; 8]>::try_from(c).map_or(0, u64::from_le_bytes);
        let x = w ^ LF;
        // High bit of each byte set exactly when that byte of `x` is zero (no carries cross
        // bytes: (y & 0x7f) + 0x7f <= 0xfe).
        let mut zero = !(((x & LOW7) + LOW7) | x) & !LOW7;
        while zero != 0 {
            out.push(base + zero.trailing_zeros() / 8 + 1);
            zero &= zero - 1;
        }
        base += 8;
    }
    for (k, &b) in chunks.remainder().iter().enumerate() {
        if b == b'\n' {
            out.push(base + k as u32 + 1);
        }
    }
    out
}

/// Resolves a prefix in the open `bindings` (innermost last) like quick-xml's
/// `NamespaceResolver::resolve_prefix`: `Ok(ns id)` (`NS_NONE` when unbound), or `Err(())`
/// for an unknown or undeclared prefix. `use_default`: an element name (takes the default
/// namespace), not an attribute name.
pub(super) fn resolve_prefix(
    bindings: &[Binding<'_>],
    prefix: Option<&[u8]>,
    use_default: bool,
) -> Result<u32, ()> {
    match prefix {
        None if !use_default => Ok(NS_NONE),
        None => Ok(bindings
            .iter()
            .rev()
            .find(|b| b.prefix.is_empty())
            .map_or(NS_NONE, |b| if b.ns == NONE { NS_NONE } else { b.ns })),
        Some(p) => {
            let found = bindings
                .iter()
                .rev()
                .find(|b| !b.prefix.is_empty() && b.prefix == p)
                .map(|b| b.ns);
            match found {
                Some(ns) if ns != NONE => Ok(ns),
                Some(_) => Err(()),
                None if p == b"xml" => Ok(NS_XML),
                None if p == b"xmlns" => Ok(NS_XMLNS),
                None => Err(()),
            }
        }
    }
}

/// Drops the bindings declared at `depth` or deeper (the element closing there).
pub(super) fn pop_bindings(bindings: &mut Vec<Binding<'_>>, depth: usize) {
    while bindings.last().is_some_and(|b| b.depth >= depth) {
        bindings.pop();
    }
}

/// Extends the text node `last` (a parent's last child, `NONE` for none) to `end` when it is
/// one; `false` when a new text node is needed.
pub(super) fn extend_text(doc: &mut Document, last: u32, end: u32) -> bool {
    match doc.nodes.get_mut(last as usize) {
        Some(n) if n.kind == NodeKind::Text => {
            n.text_end = end;
            true
        }
        _ => false,
    }
}

/// Id of `uri` in a document's short list of namespace URIs, added when new.
pub(super) fn intern_uri<'i>(uris: &mut Vec<&'i str>, uri: &'i str) -> u32 {
    match uris.iter().position(|u| *u == uri) {
        Some(i) => i as u32,
        None => {
            uris.push(uri);
            uris.len() as u32 - 1
        }
    }
}

/// Appends `data` (its `parent` already set) as the next sibling of `last` (`NONE` for a
/// first child); returns its index, the parent's new last child.
pub(super) fn append_node(doc: &mut Document, last: u32, mut data: NodeData) -> u32 {
    let idx = doc.nodes.len() as u32;
    data.prev_sibling = last;
    if last != NONE {
        doc.nodes[last as usize].next_sibling = idx;
    }
    data.last_desc = idx;
    doc.nodes.push(data);
    idx
}

/// An empty document for `src`: the document node, line starts, capacity hints.
pub(super) fn new_document(src: &str, limits: Limits) -> Document {
    let bytes = src.as_bytes();
    let line_starts = line_starts(bytes);
    // Capacity hints from the density of CDA documents (per KB: ~43 nodes, ~17 attributes,
    // ~300 bytes of text and attribute values); the vectors grow past them if needed.
    let cap = |per_kb: usize| (bytes.len() / 1024 + 1) * per_kb;
    let mut nodes = Vec::with_capacity(cap(48).min(limits.max_nodes.saturating_add(1)));
    nodes.push(NodeData {
        kind: NodeKind::Document,
        parent: NONE,
        prev_sibling: NONE,
        next_sibling: NONE,
        last_desc: 0,
        name: NONE,
        attr_start: 0,
        attr_end: 0,
        text_start: 0,
        text_end: 0,
        pos: 0,
    });
    Document {
        nodes,
        attrs: Vec::with_capacity(cap(20).min(limits.max_nodes)),
        names: Vec::with_capacity(128),
        name_index: super::NameIndex::default(),
        text: String::with_capacity(cap(400)),
        line_starts,
    }
}

/// An in-scope namespace declaration (as quick-xml's `NamespaceResolver` keeps them).
pub(super) struct Binding<'i> {
    /// Declared prefix; empty for a default-namespace declaration (`xmlns`, and `xmlns:`).
    pub(super) prefix: &'i [u8],
    /// Interned namespace, or `NONE` when the declaration undeclares (`xmlns=""`).
    pub(super) ns: u32,
    /// Depth of the element that declared it (stack length once it is open).
    pub(super) depth: usize,
}

/// Per interned name: what the reader needs to intern, check and compare it cheaply.
struct NameMeta<'i> {
    ns: u32,
    local: &'i str,
    /// `check_name` already passed for `local`.
    checked: bool,
}

struct Builder<'i> {
    src: &'i str,
    limits: Limits,
    doc: Document,
    /// Interned name ids by (namespace id, qualified name as written).
    names: FxHashMap<(u32, &'i str), u32>,
    meta: Vec<NameMeta<'i>>,
    /// Interned namespace URIs, raw as written in the declarations.
    ns_uris: Vec<&'i str>,
    bindings: Vec<Binding<'i>>,
    xmlns_finder: memchr::memmem::Finder<'static>,
    /// Open nodes: (node index, index of its last child so far or NONE).
    stack: Vec<(u32, u32)>,
    seen_root: bool,
    /// Scratch: (key start, key end, value start, value end) in the current tag.
    attr_spans: Vec<(usize, usize, usize, usize)>,
}

impl<'i> Builder<'i> {
    fn new(src: &'i str, limits: Limits) -> Self {
        let doc = new_document(src, limits);
        Builder {
            src,
            limits,
            doc,
            names: FxHashMap::with_capacity_and_hasher(256, Default::default()),
            meta: Vec::with_capacity(128),
            ns_uris: vec!["", XML_NS, XMLNS_NS],
            bindings: Vec::new(),
            xmlns_finder: memchr::memmem::Finder::new(b"xmlns"),
            stack: vec![(0, NONE)],
            seen_root: false,
            attr_spans: Vec::new(),
        }
    }

    fn malformed(&self, pos: usize, message: impl Into<String>) -> XmlError {
        let (line, column) = self.doc.line_col(pos as u32);
        XmlError::Malformed {
            line,
            column,
            message: message.into(),
        }
    }

    /// Offset in the source of a slice handed back by the reader, if it is one.
    fn offset_in_src(&self, slice: &[u8]) -> Option<usize> {
        let base = self.src.as_ptr() as usize;
        let off = (slice.as_ptr() as usize).checked_sub(base)?;
        (off <= self.src.len() && slice.len() <= self.src.len() - off).then_some(off)
    }

    /// The source `&str` a slice handed back by the reader covers. The reader borrows every
    /// event from the source and splits it only at ASCII delimiters, so this always succeeds
    /// (a slice that is not part of the source is refused rather than trusted).
    fn src_str(&self, slice: &[u8], pos: usize) -> Result<&'i str, XmlError> {
        let src: &'i str = self.src;
        self.offset_in_src(slice)
            .and_then(|off| src.get(off..off + slice.len()))
            .ok_or_else(|| self.malformed(pos, "internal: markup outside the input"))
    }

    fn offset_of(&self, slice: &[u8], fallback: usize) -> usize {
        self.offset_in_src(slice).unwrap_or(fallback)
    }

    fn intern_ns(&mut self, uri: &'i str) -> u32 {
        intern_uri(&mut self.ns_uris, uri)
    }

    /// Resolves a prefix like quick-xml's `NamespaceResolver::resolve_prefix`: `Ok(ns id)`
    /// (`NS_NONE` when unbound), or `Err(())` for an unknown prefix.
    fn resolve(&self, prefix: Option<&[u8]>, use_default: bool) -> Result<u32, ()> {
        resolve_prefix(&self.bindings, prefix, use_default)
    }

    /// Opens the namespace scope of a start tag, as `NsReader` does before handing it out:
    /// declarations are read up to the first malformed attribute, duplicates not checked.
    fn push_bindings(&mut self, e: &BytesStart<'_>, depth: usize) -> Result<(), NamespaceError> {
        for a in e.attributes().with_checks(false) {
            let Ok(a) = a else { break };
            let Some(decl) = a.key.as_namespace_binding() else {
                continue;
            };
            let src: &'i str = self.src;
            let value_str: Option<&'i str> = self
                .offset_in_src(&a.value)
                .and_then(|off| src.get(off..off + a.value.len()));
            let (prefix, value): (&[u8], &[u8]) = match decl {
                PrefixDeclaration::Default => (b"", &a.value),
                PrefixDeclaration::Named(b"xml") => {
                    if *a.value != *XML_NS.as_bytes() {
                        return Err(NamespaceError::InvalidXmlPrefixBind(a.value.to_vec()));
                    }
                    continue;
                }
                PrefixDeclaration::Named(b"xmlns") => {
                    return Err(NamespaceError::InvalidXmlnsPrefixBind(a.value.to_vec()));
                }
                PrefixDeclaration::Named(p) => {
                    if *a.value == *XML_NS.as_bytes() {
                        return Err(NamespaceError::InvalidPrefixForXml(p.to_vec()));
                    } else if *a.value == *XMLNS_NS.as_bytes() {
                        return Err(NamespaceError::InvalidPrefixForXmlns(p.to_vec()));
                    }
                    (p, &a.value)
                }
            };
            // Prefixes are slices of the tag, which is a slice of the input.
            let prefix: &'i [u8] = if prefix.is_empty() {
                &[]
            } else {
                match self.offset_in_src(prefix) {
                    Some(off) => &src.as_bytes()[off..off + prefix.len()],
                    None => continue,
                }
            };
            let ns = if value.is_empty() {
                NONE
            } else {
                match value_str {
                    Some(v) => self.intern_ns(v),
                    None => continue,
                }
            };
            self.bindings.push(Binding { prefix, ns, depth });
        }
        Ok(())
    }

    fn pop_bindings(&mut self, depth: usize) {
        pop_bindings(&mut self.bindings, depth);
    }

    /// Interned id of (`ns`, `qname`), checking the local name the first time it is met as an
    /// element or attribute name.
    fn intern_checked(
        &mut self,
        ns: u32,
        qname: &'i str,
        colon: Option<usize>,
        pos: usize,
    ) -> Result<(u32, &'i str), XmlError> {
        let (prefix, local) = match colon {
            Some(i) => (&qname[..i], &qname[i + 1..]),
            None => ("", qname),
        };
        if let Some(&id) = self.names.get(&(ns, qname)) {
            if !self.meta[id as usize].checked {
                check_name(local).map_err(|msg| self.malformed(pos, msg))?;
                self.meta[id as usize].checked = true;
            }
            return Ok((id, local));
        }
        check_name(local).map_err(|msg| self.malformed(pos, msg))?;
        Ok((self.insert_name(ns, qname, local, prefix, true), local))
    }

    fn insert_name(
        &mut self,
        ns: u32,
        key: &'i str,
        local: &'i str,
        prefix: &'i str,
        checked: bool,
    ) -> u32 {
        let id = self.doc.names.len() as u32;
        self.doc.names.push(Name {
            ns: self.ns_uris[ns as usize].into(),
            local: local.into(),
            prefix: prefix.into(),
        });
        self.meta.push(NameMeta { ns, local, checked });
        self.names.insert((ns, key), id);
        id
    }

    fn check_count(&self) -> Result<(), XmlError> {
        if self.doc.nodes.len() + self.doc.attrs.len() > self.limits.max_nodes {
            return Err(XmlError::TooManyNodes {
                limit: self.limits.max_nodes,
            });
        }
        Ok(())
    }

    /// Appends a node as the last child of the innermost open node and returns its index.
    fn push_node(&mut self, mut data: NodeData) -> Result<u32, XmlError> {
        self.check_count()?;
        let idx = self.doc.nodes.len() as u32;
        let Some(top) = self.stack.last_mut() else {
            return Err(XmlError::NoRootElement);
        };
        data.parent = top.0;
        top.1 = append_node(&mut self.doc, top.1, data);
        Ok(idx)
    }

    /// Appends character data (already unescaped, line ends not yet normalised) to the text
    /// node that is the current last child, or to a new one.
    fn push_text(&mut self, s: &str, pos: usize) -> Result<(), XmlError> {
        if s.is_empty() {
            return Ok(());
        }
        if self.stack.len() == 1 {
            if s.bytes().all(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n')) {
                return Ok(());
            }
            return Err(self.malformed(pos, "text is not allowed outside the root element"));
        }
        let last = self.stack.last().map_or(NONE, |t| t.1);
        let start = self.doc.text.len() as u32;
        push_newlines_normalized(&mut self.doc.text, s);
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

    fn start_element(
        &mut self,
        reader: &Reader<&'i [u8]>,
        e: &BytesStart<'_>,
        pos: usize,
        empty: bool,
    ) -> Result<(), XmlError> {
        let depth = self.stack.len();
        // `NsReader` opens the namespace scope before anything else sees the tag.
        if self.xmlns_finder.find(e.as_ref()).is_some() {
            if let Err(err) = self.push_bindings(e, depth) {
                let at = reader.error_position() as usize;
                return Err(self.malformed(at, quick_xml::Error::Namespace(err).to_string()));
            }
        }
        if depth == 1 {
            if self.seen_root {
                return Err(self.malformed(pos, "more than one root element"));
            }
            self.seen_root = true;
        }
        if depth > self.limits.max_depth {
            let (line, column) = self.doc.line_col(pos as u32);
            return Err(XmlError::TooDeep {
                line,
                column,
                limit: self.limits.max_depth,
            });
        }
        let qn = e.name();
        let colon = qn.as_ref().iter().position(|&b| b == b':');
        let ns = self
            .resolve(colon.map(|i| &qn.as_ref()[..i]), true)
            .map_err(|()| unbound_prefix(self, qn, pos))?;
        let qname = self.src_str(qn.into_inner(), pos)?;
        let (name, _) = self.intern_checked(ns, qname, colon, pos)?;
        let attr_start = self.doc.attrs.len();
        let mut d = NodeData::blank(NodeKind::Element, pos);
        d.name = name;
        let idx = self.push_node(d)?;
        // Attributes: our own scan of the common well-formed shape, or quick-xml's iterator
        // (whose errors are the ones reported) as soon as anything is unusual.
        let tag: &[u8] = e.as_ref();
        let mut spans = std::mem::take(&mut self.attr_spans);
        spans.clear();
        let result = if scan_attributes(tag, qn.as_ref().len(), &mut spans) {
            spans.iter().try_for_each(|&(ks, ke, vs, ve)| {
                self.attribute(&tag[ks..ke], &tag[vs..ve], idx, attr_start, pos)
            })
        } else {
            e.attributes().try_for_each(|a| {
                let a = a.map_err(|err| self.malformed(pos, err.to_string()))?;
                self.attribute(a.key.as_ref(), &a.value, idx, attr_start, pos)
            })
        };
        self.attr_spans = spans;
        result?;
        let attr_end = self.doc.attrs.len() as u32;
        let node = &mut self.doc.nodes[idx as usize];
        node.attr_start = attr_start as u32;
        node.attr_end = attr_end;
        if empty {
            self.pop_bindings(depth);
        } else {
            self.stack.push((idx, NONE));
        }
        Ok(())
    }

    /// One attribute `key="value"` (raw slices of the tag) of the element `idx`.
    fn attribute(
        &mut self,
        key: &[u8],
        value: &[u8],
        idx: u32,
        attr_start: usize,
        pos: usize,
    ) -> Result<(), XmlError> {
        if key.starts_with(b"xmlns") && (key.len() == 5 || key[5] == b':') {
            return Ok(()); // a namespace declaration, handled by `push_bindings`
        }
        let apos = self.offset_of(key, pos);
        let colon = key.iter().position(|&b| b == b':');
        let ans = self
            .resolve(colon.map(|i| &key[..i]), false)
            .map_err(|()| unbound_prefix(self, QName(key), apos))?;
        let akey = self.src_str(key, apos)?;
        let (aname, alocal) = self.intern_checked(ans, akey, colon, apos)?;
        let raw = self.src_str(value, apos)?;
        // Values are short: one scalar pass beats several memchr calls.
        let special = raw
            .bytes()
            .any(|b| matches!(b, b'<' | b'&' | b'\r' | b'\n' | b'\t'));
        if special && raw.contains('<') {
            return Err(self.malformed(apos, "'<' is not allowed in an attribute value"));
        }
        let dup = self.doc.attrs[attr_start..].iter().any(|x| {
            let m = &self.meta[x.name as usize];
            m.ns == ans && m.local == alocal
        });
        let vs = self.doc.text.len();
        if special {
            let normalized = normalize_attr(raw);
            let value = unescape(&normalized).map_err(|m| self.malformed(apos, m))?;
            self.doc.text.push_str(&value);
        } else {
            self.doc.text.push_str(raw);
        }
        if dup {
            self.doc.text.truncate(vs);
            return Err(self.malformed(apos, format!("duplicate attribute {alocal:?}")));
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

    fn run(mut self) -> Result<Document, XmlError> {
        let mut reader = Reader::from_str(self.src);
        {
            let cfg = reader.config_mut();
            cfg.check_end_names = true;
            cfg.check_comments = true;
            cfg.expand_empty_elements = false;
            cfg.trim_text(false);
        }
        loop {
            let pos = reader.buffer_position() as usize;
            let event = match reader.read_event() {
                Ok(ev) => ev,
                Err(e) => {
                    let at = reader.error_position() as usize;
                    return Err(self.malformed(at, e.to_string()));
                }
            };
            match event {
                Event::Decl(d) => {
                    if pos != 0 {
                        return Err(self.malformed(pos, "XML declaration not at the start"));
                    }
                    // The encoding was decided before reading (`super::encoding`).
                    let version = d
                        .version()
                        .map_err(|_| self.malformed(pos, "the XML declaration has no version"))?;
                    check_version(&version).map_err(|m| self.malformed(pos, m))?;
                }
                Event::DocType(_) => {
                    let (line, column) = self.doc.line_col(pos as u32);
                    return Err(XmlError::DoctypeRefused { line, column });
                }
                Event::Start(e) => self.start_element(&reader, &e, pos, false)?,
                Event::Empty(e) => self.start_element(&reader, &e, pos, true)?,
                Event::End(_) => {
                    if self.stack.len() <= 1 {
                        return Err(self.malformed(pos, "end tag without start tag"));
                    }
                    let depth = self.stack.len() - 1;
                    self.pop_bindings(depth);
                    if let Some((idx, _)) = self.stack.pop() {
                        self.doc.nodes[idx as usize].last_desc = self.doc.nodes.len() as u32 - 1;
                    }
                }
                Event::Text(t) => {
                    let raw = self.src_str(&t, pos)?;
                    if raw.contains('&') {
                        let s = unescape(raw).map_err(|m| self.malformed(pos, m))?;
                        self.push_text(&s, pos)?;
                    } else {
                        self.push_text(raw, pos)?;
                    }
                }
                Event::CData(t) => {
                    if self.stack.len() == 1 {
                        return Err(
                            self.malformed(pos, "CDATA is not allowed outside the root element")
                        );
                    }
                    let s = self.src_str(&t, pos)?;
                    self.push_text(s, pos)?;
                }
                Event::Comment(t) => {
                    let s = self.src_str(&t, pos)?;
                    let start = self.doc.text.len() as u32;
                    self.doc.text.push_str(s);
                    let mut d = NodeData::blank(NodeKind::Comment, pos);
                    d.text_start = start;
                    d.text_end = self.doc.text.len() as u32;
                    self.push_node(d)?;
                }
                Event::PI(p) => {
                    let target = self.src_str(p.target(), pos)?;
                    if target.eq_ignore_ascii_case("xml") {
                        return Err(self.malformed(pos, "XML declaration not at the start"));
                    }
                    let content = self.src_str(p.content(), pos)?.trim_start();
                    let name = match self.names.get(&(NS_NONE, target)) {
                        Some(&id) => id,
                        None => self.insert_name(NS_NONE, target, target, "", false),
                    };
                    let start = self.doc.text.len() as u32;
                    self.doc.text.push_str(content);
                    let mut d = NodeData::blank(NodeKind::ProcessingInstruction, pos);
                    d.name = name;
                    d.text_start = start;
                    d.text_end = self.doc.text.len() as u32;
                    self.push_node(d)?;
                }
                Event::Eof => break,
            }
        }
        if self.stack.len() > 1 {
            let open = self.stack.last().map_or(0, |t| t.0);
            let pos = self.doc.nodes[open as usize].pos as usize;
            return Err(self.malformed(pos, "element not closed at end of input"));
        }
        if !self.seen_root {
            return Err(XmlError::NoRootElement);
        }
        let last = self.doc.nodes.len() as u32 - 1;
        self.doc.nodes[0].last_desc = last;
        Ok(self.doc)
    }
}

/// Splits the attributes of a start tag (`tag[from..]`, after the name) into raw key and value
/// ranges exactly as quick-xml's attribute iterator does for well-formed input. Returns false,
/// leaving the job (and the error) to quick-xml, on anything else: a key without `=`, an
/// unquoted or unclosed value, a duplicated key.
pub(super) fn scan_attributes(
    tag: &[u8],
    from: usize,
    out: &mut Vec<(usize, usize, usize, usize)>,
) -> bool {
    let ws = |b: u8| matches!(b, b' ' | b'\r' | b'\n' | b'\t');
    let len = tag.len();
    let mut i = from;
    loop {
        while i < len && ws(tag[i]) {
            i += 1;
        }
        if i >= len {
            return true;
        }
        let ks = i;
        // The first byte is part of the key whatever it is (as in quick-xml).
        i += 1;
        while i < len && tag[i] != b'=' && !ws(tag[i]) {
            i += 1;
        }
        let ke = i;
        while i < len && ws(tag[i]) {
            i += 1;
        }
        if i >= len || tag[i] != b'=' {
            return false;
        }
        i += 1;
        while i < len && ws(tag[i]) {
            i += 1;
        }
        let Some(&quote) = tag.get(i) else {
            return false;
        };
        if quote != b'"' && quote != b'\'' {
            return false;
        }
        let vs = i + 1;
        let Some(n) = tag
            .get(vs..)
            .and_then(|v| v.iter().position(|&b| b == quote))
        else {
            return false;
        };
        let ve = vs + n;
        let key = &tag[ks..ke];
        if out.iter().any(|&(a, b, _, _)| &tag[a..b] == key) {
            return false;
        }
        out.push((ks, ke, vs, ve));
        i = ve + 1;
    }
}

fn unbound_prefix(b: &Builder<'_>, qn: QName<'_>, pos: usize) -> XmlError {
    let p = qn.prefix().map(|p| p.into_inner()).unwrap_or_default();
    b.malformed(
        pos,
        format!("unbound namespace prefix {:?}", String::from_utf8_lossy(p)),
    )
}

fn check_name(local: &str) -> Result<(), String> {
    let mut chars = local.chars();
    let ok = match chars.next() {
        Some(c) => {
            (c.is_alphabetic() || c == '_' || (!c.is_ascii() && !c.is_whitespace()))
                && chars.all(|c| {
                    c.is_alphanumeric()
                        || matches!(c, '_' | '-' | '.' | '\u{B7}')
                        || (!c.is_ascii() && !c.is_whitespace())
                })
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("invalid name {local:?}"))
    }
}

/// Appends character data with line ends normalised (CR LF and lone CR become LF).
pub(super) fn push_newlines_normalized(out: &mut String, s: &str) {
    if !s.contains('\r') {
        out.push_str(s);
        return;
    }
    let mut rest = s;
    while let Some(i) = memchr::memchr(b'\r', rest.as_bytes()) {
        out.push_str(&rest[..i]);
        out.push('\n');
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('\n') {
            rest = r;
        }
    }
    out.push_str(rest);
}

/// Attribute-value normalisation of literal whitespace (before reference decoding).
pub(super) fn normalize_attr(s: &str) -> Cow<'_, str> {
    if s.contains(['\r', '\n', '\t']) {
        Cow::Owned(s.replace("\r\n", " ").replace(['\r', '\n', '\t'], " "))
    } else {
        Cow::Borrowed(s)
    }
}

/// Decodes the five predefined entities and character references; anything else is refused,
/// and so is a reference to a character outside XML 1.0's `Char` production (`&#x1;`,
/// `&#xFFFE;`).
pub(super) fn unescape(s: &str) -> Result<Cow<'_, str>, String> {
    let out = quick_xml::escape::unescape(s).map_err(|e| {
        format!("{e} (only the predefined entities and character references are allowed)")
    })?;
    if let Cow::Owned(decoded) = &out {
        if let Some((_, c)) = super::encoding::first_non_char(decoded) {
            return Err(format!(
                "a character reference to U+{:04X}, which is not allowed in XML",
                c as u32
            ));
        }
    }
    Ok(out)
}

/// The XML declaration's version: 1.0, or 1.1 (read by the gateway's parser and the judge
/// alike; characters are still held to XML 1.0's rules, as the judge does).
pub(super) fn check_version(version: &[u8]) -> Result<(), String> {
    if version == b"1.0" || version == b"1.1" {
        Ok(())
    } else {
        Err(format!(
            "unsupported XML version {:?} (1.0 and 1.1 are read)",
            String::from_utf8_lossy(version)
        ))
    }
}
