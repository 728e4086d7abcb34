//! The reading loop: quick-xml events into a [`Document`], with the hardening rules of the
//! module applied on the way.

use super::{AttrData, Document, Limits, Name, NodeData, NodeKind, XmlError, NONE, XML_NS};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use std::collections::HashMap;

/// Reads a document with the default [`Limits`].
pub fn parse(input: &[u8]) -> Result<Document, XmlError> {
    parse_with_limits(input, Limits::default())
}

/// Reads a document with explicit limits.
pub fn parse_with_limits(input: &[u8], limits: Limits) -> Result<Document, XmlError> {
    if input.len() > limits.max_bytes {
        return Err(XmlError::TooLarge {
            size: input.len(),
            limit: limits.max_bytes,
        });
    }
    let body = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text = std::str::from_utf8(body).map_err(|e| XmlError::NotUtf8 {
        offset: e.valid_up_to() + (input.len() - body.len()),
    })?;
    Builder::new(text, limits).run()
}

/// (namespace, local name, prefix)
type NameKey = (Box<str>, Box<str>, Box<str>);

struct Builder<'i> {
    src: &'i str,
    limits: Limits,
    doc: Document,
    /// Interned ids by "ns NUL local NUL prefix NUL".
    names: HashMap<String, u32>,
    key_buf: String,
    /// Open nodes: (node index, index of its last child so far or NONE).
    stack: Vec<(u32, u32)>,
    seen_root: bool,
}

impl<'i> Builder<'i> {
    fn new(src: &'i str, limits: Limits) -> Self {
        let mut line_starts = vec![0u32];
        for (i, b) in src.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i as u32 + 1);
            }
        }
        let doc = Document {
            nodes: vec![NodeData {
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
            }],
            attrs: Vec::new(),
            names: Vec::new(),
            name_index: HashMap::new(),
            text: String::new(),
            line_starts,
        };
        Builder {
            src,
            limits,
            doc,
            names: HashMap::new(),
            key_buf: String::new(),
            stack: vec![(0, NONE)],
            seen_root: false,
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

    fn intern(&mut self, ns: &str, local: &str, prefix: &str) -> u32 {
        self.key_buf.clear();
        for part in [ns, local, prefix] {
            self.key_buf.push_str(part);
            self.key_buf.push('\u{0}');
        }
        if let Some(&id) = self.names.get(self.key_buf.as_str()) {
            return id;
        }
        let key: NameKey = (ns.into(), local.into(), prefix.into());
        let id = self.doc.names.len() as u32;
        self.doc.names.push(Name {
            ns: key.0.clone(),
            local: key.1.clone(),
            prefix: key.2.clone(),
        });
        self.doc
            .name_index
            .entry(key.1.clone())
            .or_default()
            .push((key.0.clone(), id));
        self.names.insert(self.key_buf.clone(), id);
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
        data.prev_sibling = top.1;
        if top.1 != NONE {
            self.doc.nodes[top.1 as usize].next_sibling = idx;
        }
        top.1 = idx;
        data.last_desc = idx;
        self.doc.nodes.push(data);
        Ok(idx)
    }

    fn blank(kind: NodeKind, pos: usize) -> NodeData {
        NodeData {
            kind,
            parent: NONE,
            prev_sibling: NONE,
            next_sibling: NONE,
            last_desc: NONE,
            name: NONE,
            attr_start: 0,
            attr_end: 0,
            text_start: 0,
            text_end: 0,
            pos: pos as u32,
        }
    }

    fn offset_of(&self, slice: &[u8], fallback: usize) -> usize {
        let base = self.src.as_ptr() as usize;
        let p = slice.as_ptr() as usize;
        if p >= base && p <= base + self.src.len() {
            p - base
        } else {
            fallback
        }
    }

    /// Appends character data to the text node that is the current last child, or to a new one.
    fn push_text(&mut self, s: &str, pos: usize) -> Result<(), XmlError> {
        if s.is_empty() {
            return Ok(());
        }
        if self.stack.len() == 1 {
            if s.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n')) {
                return Ok(());
            }
            return Err(self.malformed(pos, "text is not allowed outside the root element"));
        }
        let last = self.stack.last().map_or(NONE, |t| t.1);
        let normalized = normalize_newlines(s);
        if last != NONE && self.doc.nodes[last as usize].kind == NodeKind::Text {
            self.doc.text.push_str(&normalized);
            self.doc.nodes[last as usize].text_end = self.doc.text.len() as u32;
            return Ok(());
        }
        let start = self.doc.text.len() as u32;
        self.doc.text.push_str(&normalized);
        let mut d = Self::blank(NodeKind::Text, pos);
        d.text_start = start;
        d.text_end = self.doc.text.len() as u32;
        self.push_node(d)?;
        Ok(())
    }

    fn run(mut self) -> Result<Document, XmlError> {
        let mut reader = NsReader::from_str(self.src);
        {
            let cfg = reader.config_mut();
            cfg.check_end_names = true;
            cfg.check_comments = true;
            cfg.expand_empty_elements = false;
            cfg.trim_text(false);
        }
        loop {
            let pos = reader.buffer_position() as usize;
            let event = match reader.read_resolved_event() {
                Ok(ev) => ev,
                Err(e) => {
                    let at = reader.error_position() as usize;
                    return Err(self.malformed(at, e.to_string()));
                }
            };
            match event {
                (_, Event::Decl(d)) => {
                    if pos != 0 {
                        return Err(self.malformed(pos, "XML declaration not at the start"));
                    }
                    if let Some(enc) = d.encoding() {
                        let enc = enc.map_err(|e| self.malformed(pos, e.to_string()))?;
                        let enc = String::from_utf8_lossy(&enc).to_ascii_lowercase();
                        if enc != "utf-8" && enc != "utf8" {
                            return Err(XmlError::UnsupportedEncoding(enc));
                        }
                    }
                }
                (_, Event::DocType(_)) => {
                    let (line, column) = self.doc.line_col(pos as u32);
                    return Err(XmlError::DoctypeRefused { line, column });
                }
                (res, ev @ (Event::Start(_) | Event::Empty(_))) => {
                    let empty = matches!(ev, Event::Empty(_));
                    let (Event::Start(e) | Event::Empty(e)) = ev else {
                        continue;
                    };
                    if self.stack.len() == 1 {
                        if self.seen_root {
                            return Err(self.malformed(pos, "more than one root element"));
                        }
                        self.seen_root = true;
                    }
                    if self.stack.len() > self.limits.max_depth {
                        let (line, column) = self.doc.line_col(pos as u32);
                        return Err(XmlError::TooDeep {
                            line,
                            column,
                            limit: self.limits.max_depth,
                        });
                    }
                    let qn = e.name();
                    let ns = match res {
                        ResolveResult::Bound(ns) => {
                            String::from_utf8_lossy(ns.as_ref()).into_owned()
                        }
                        ResolveResult::Unbound => String::new(),
                        ResolveResult::Unknown(p) => {
                            return Err(self.malformed(
                                pos,
                                format!(
                                    "unbound namespace prefix {:?}",
                                    String::from_utf8_lossy(&p)
                                ),
                            ))
                        }
                    };
                    let local = String::from_utf8_lossy(qn.local_name().as_ref()).into_owned();
                    let prefix = qn
                        .prefix()
                        .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
                        .unwrap_or_default();
                    check_name(&local).map_err(|m| self.malformed(pos, m))?;
                    let name = self.intern(&ns, &local, &prefix);
                    let attr_start = self.doc.attrs.len() as u32;
                    let mut d = Self::blank(NodeKind::Element, pos);
                    d.name = name;
                    let idx = self.push_node(d)?;
                    for a in e.attributes() {
                        let a = a.map_err(|err| self.malformed(pos, err.to_string()))?;
                        if a.key.as_namespace_binding().is_some() {
                            continue;
                        }
                        let apos = self.offset_of(a.key.as_ref(), pos);
                        let (ares, alocal) = reader.resolve_attribute(a.key);
                        let ans = match ares {
                            ResolveResult::Bound(ns) => {
                                String::from_utf8_lossy(ns.as_ref()).into_owned()
                            }
                            ResolveResult::Unbound => {
                                if a.key.prefix().is_some_and(|p| p.as_ref() == b"xml") {
                                    XML_NS.to_owned()
                                } else {
                                    String::new()
                                }
                            }
                            ResolveResult::Unknown(p) => {
                                return Err(self.malformed(
                                    apos,
                                    format!(
                                        "unbound namespace prefix {:?}",
                                        String::from_utf8_lossy(&p)
                                    ),
                                ))
                            }
                        };
                        let alocal = String::from_utf8_lossy(alocal.as_ref()).into_owned();
                        check_name(&alocal).map_err(|m| self.malformed(apos, m))?;
                        let aprefix = a
                            .key
                            .prefix()
                            .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
                            .unwrap_or_default();
                        let raw = std::str::from_utf8(&a.value)
                            .map_err(|_| self.malformed(apos, "attribute value is not UTF-8"))?;
                        if raw.contains('<') {
                            return Err(
                                self.malformed(apos, "'<' is not allowed in an attribute value")
                            );
                        }
                        let value =
                            unescape(&normalize_attr(raw)).map_err(|m| self.malformed(apos, m))?;
                        let aname = self.intern(&ans, &alocal, &aprefix);
                        let dup = self.doc.attrs[attr_start as usize..].iter().any(|x| {
                            let n = &self.doc.names[x.name as usize];
                            *n.ns == *ans && *n.local == *alocal
                        });
                        if dup {
                            return Err(
                                self.malformed(apos, format!("duplicate attribute {alocal:?}"))
                            );
                        }
                        let vs = self.doc.text.len() as u32;
                        self.doc.text.push_str(&value);
                        self.doc.attrs.push(AttrData {
                            owner: idx,
                            name: aname,
                            value_start: vs,
                            value_end: self.doc.text.len() as u32,
                            pos: apos as u32,
                        });
                        self.check_count()?;
                    }
                    let attr_end = self.doc.attrs.len() as u32;
                    let node = &mut self.doc.nodes[idx as usize];
                    node.attr_start = attr_start;
                    node.attr_end = attr_end;
                    if !empty {
                        self.stack.push((idx, NONE));
                    }
                }
                (_, Event::End(_)) => {
                    if self.stack.len() <= 1 {
                        return Err(self.malformed(pos, "end tag without start tag"));
                    }
                    if let Some((idx, _)) = self.stack.pop() {
                        self.doc.nodes[idx as usize].last_desc = self.doc.nodes.len() as u32 - 1;
                    }
                }
                (_, Event::Text(t)) => {
                    let raw = std::str::from_utf8(&t)
                        .map_err(|_| self.malformed(pos, "text is not UTF-8"))?;
                    let s = unescape(raw).map_err(|m| self.malformed(pos, m))?;
                    self.push_text(&s, pos)?;
                }
                (_, Event::CData(t)) => {
                    if self.stack.len() == 1 {
                        return Err(
                            self.malformed(pos, "CDATA is not allowed outside the root element")
                        );
                    }
                    let s = std::str::from_utf8(&t)
                        .map_err(|_| self.malformed(pos, "CDATA is not UTF-8"))?
                        .to_owned();
                    self.push_text(&s, pos)?;
                }
                (_, Event::Comment(t)) => {
                    let s = std::str::from_utf8(&t)
                        .map_err(|_| self.malformed(pos, "comment is not UTF-8"))?;
                    let start = self.doc.text.len() as u32;
                    self.doc.text.push_str(s);
                    let mut d = Self::blank(NodeKind::Comment, pos);
                    d.text_start = start;
                    d.text_end = self.doc.text.len() as u32;
                    self.push_node(d)?;
                }
                (_, Event::PI(p)) => {
                    let target = String::from_utf8_lossy(p.target()).into_owned();
                    if target.eq_ignore_ascii_case("xml") {
                        return Err(self.malformed(pos, "XML declaration not at the start"));
                    }
                    let content = String::from_utf8_lossy(p.content()).trim_start().to_owned();
                    let name = self.intern("", &target, "");
                    let start = self.doc.text.len() as u32;
                    self.doc.text.push_str(&content);
                    let mut d = Self::blank(NodeKind::ProcessingInstruction, pos);
                    d.name = name;
                    d.text_start = start;
                    d.text_end = self.doc.text.len() as u32;
                    self.push_node(d)?;
                }
                (_, Event::Eof) => break,
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

/// Line-end normalisation of character data (CR LF and lone CR become LF).
fn normalize_newlines(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\r') {
        std::borrow::Cow::Owned(s.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Attribute-value normalisation of literal whitespace (before reference decoding).
fn normalize_attr(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\r', '\n', '\t']) {
        std::borrow::Cow::Owned(s.replace("\r\n", " ").replace(['\r', '\n', '\t'], " "))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Decodes the five predefined entities and character references; anything else is refused.
fn unescape(s: &str) -> Result<String, String> {
    quick_xml::escape::unescape(s)
        .map(|c| c.into_owned())
        .map_err(|e| {
            format!("{e} (only the predefined entities and character references are allowed)")
        })
}
