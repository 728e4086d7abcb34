//! A hardened XML reader into an immutable, arena-based document tree.
//!
//! The tree is what the XPath engine runs over, so it is laid out for fast navigation:
//! nodes live in one vector in document order (pre-order), every node knows its parent, its
//! previous/next sibling and its last descendant (so the descendants of a node are a contiguous
//! index range, and document order is index order); attributes live in a second vector as
//! contiguous ranges per element; names are interned once per document.
//!
//! Hostile input is refused with a typed [`XmlError`]: DOCTYPE (hence DTDs, external entities
//! and entity expansion) is never accepted, only the five predefined entities and character
//! references are decoded, characters outside XML 1.0's `Char` production are refused (literal
//! or by reference), the XML declaration's version must be 1.0 or 1.1, and depth and size are
//! bounded ([`Limits`]). Input in another encoding than UTF-8 is decoded first, as the
//! gateway's parser reads it (see `encoding`). Nothing here panics on any input.
//!
//! Two readers share the work: a single-pass scanner (`scanner`) builds the tree directly for
//! the common, strict subset of XML that real documents use, and hands anything else over to
//! the quick-xml based reference reader (`reader`), which decides on unusual input and produces
//! every error. Both build identical trees (a differential property test holds them together),
//! so which one ran is invisible to callers.

mod encoding;
mod reader;
mod scanner;

#[doc(hidden)]
pub use reader::parse_reference;
pub use reader::{parse, parse_keeping_text, parse_with_limits};

use rustc_hash::FxHashMap;
use std::sync::OnceLock;

/// Namespace URI of the `xml` prefix, always bound.
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Bounds applied while reading a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted element nesting.
    pub max_depth: usize,
    /// Most nodes (elements, texts, comments, PIs) plus attributes accepted.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 64 * 1024 * 1024,
            max_depth: 256,
            max_nodes: 8_000_000,
        }
    }
}

/// Why a document was refused. Every variant carries the 1-based line and column where the
/// problem was found, when one is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the input is {size} bytes, larger than the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("{line}:{column}: elements nested deeper than the limit of {limit}")]
    TooDeep {
        line: u32,
        column: u32,
        limit: usize,
    },
    #[error("the document has more than {limit} nodes")]
    TooManyNodes { limit: usize },
    #[error(
        "the input is not UTF-8 text (invalid byte at offset {offset}); a document in another \
         encoding must say so in its XML declaration, e.g. <?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"
    )]
    NotUtf8 { offset: usize },
    #[error(
        "the input is not {encoding} text, as it declares (byte 0x{byte:02X} at offset {offset})"
    )]
    NotInEncoding {
        encoding: String,
        byte: u8,
        offset: usize,
    },
    #[error("the input is not valid {encoding} text")]
    Undecodable { encoding: String },
    #[error(
        "unsupported encoding {0:?}: read are UTF-8, UTF-16 (with a byte-order mark or a declaration), \
         ISO-8859-1, US-ASCII and the other IANA charsets Java and libxml2 both read (windows-125x, ISO-8859-n, ...)"
    )]
    UnsupportedEncoding(String),
    #[error("{line}:{column}: DOCTYPE is not allowed (no DTD, no external or internal entities)")]
    DoctypeRefused { line: u32, column: u32 },
    #[error("{line}:{column}: {message}")]
    Malformed {
        line: u32,
        column: u32,
        message: String,
    },
    #[error("the input contains no root element")]
    NoRootElement,
}

/// Index of a node (document, element, text, comment or processing instruction) in a
/// [`Document`]. Index 0 is the document node; indices follow document order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub(crate) u32);

/// Index of an attribute in a [`Document`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttrId(pub(crate) u32);

/// Index of an interned expanded name in a [`Document`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NameId(pub(crate) u32);

impl NameId {
    /// Position of the name in its document's table: `0 .. Document::name_count()`, for
    /// callers that keep per-name data in a vector.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Document,
    Element,
    Text,
    Comment,
    ProcessingInstruction,
}

/// An interned name: namespace URI (empty when none), local part, and the prefix used in the
/// source (empty when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub ns: Box<str>,
    pub local: Box<str>,
    pub prefix: Box<str>,
}

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeData {
    pub(crate) kind: NodeKind,
    pub(crate) parent: u32,
    pub(crate) prev_sibling: u32,
    pub(crate) next_sibling: u32,
    pub(crate) last_desc: u32,
    /// Element or PI name (NONE otherwise).
    pub(crate) name: u32,
    pub(crate) attr_start: u32,
    pub(crate) attr_end: u32,
    /// Text, comment or PI data: byte range in `Document::text`.
    pub(crate) text_start: u32,
    pub(crate) text_end: u32,
    /// Byte offset in the source where the node starts.
    pub(crate) pos: u32,
}

impl NodeData {
    /// A node of `kind` starting at source offset `pos`, not yet linked into a tree.
    pub(crate) fn blank(kind: NodeKind, pos: usize) -> NodeData {
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttrData {
    pub(crate) owner: u32,
    pub(crate) name: u32,
    pub(crate) value_start: u32,
    pub(crate) value_end: u32,
    pub(crate) pos: u32,
}

/// local name → interned ids of every name with that local part, derived from a document's
/// name table the first time it is asked for (most documents never need it, and building it
/// while reading costs two allocations per name).
#[derive(Debug, Clone, Default)]
pub(crate) struct NameIndex(OnceLock<FxHashMap<Box<str>, Vec<u32>>>);

impl NameIndex {
    fn get(&self, names: &[Name]) -> &FxHashMap<Box<str>, Vec<u32>> {
        self.0.get_or_init(|| {
            let mut index: FxHashMap<Box<str>, Vec<u32>> = FxHashMap::default();
            for (id, n) in names.iter().enumerate() {
                match index.get_mut(&n.local) {
                    Some(ids) => ids.push(id as u32),
                    None => {
                        index.insert(n.local.clone(), vec![id as u32]);
                    }
                }
            }
            index
        })
    }
}

/// The index is a function of the name table, which `Document` compares anyway.
impl PartialEq for NameIndex {
    fn eq(&self, _: &NameIndex) -> bool {
        true
    }
}

impl Eq for NameIndex {}

/// An immutable, parsed XML document. Two documents are equal when their trees, names, texts
/// and source positions are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub(crate) nodes: Vec<NodeData>,
    pub(crate) attrs: Vec<AttrData>,
    pub(crate) names: Vec<Name>,
    /// local name → interned ids of every name with that local part (built on first use).
    pub(crate) name_index: NameIndex,
    pub(crate) text: String,
    pub(crate) line_starts: Vec<u32>,
}

impl Document {
    /// The document node.
    pub fn root(&self) -> NodeId {
        NodeId(0)
    }

    /// The outermost element.
    pub fn document_element(&self) -> Option<NodeId> {
        self.children(self.root())
            .find(|&c| self.kind(c) == NodeKind::Element)
    }

    /// Number of nodes (document node included), i.e. one past the largest [`NodeId`].
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of attributes.
    pub fn attr_count(&self) -> usize {
        self.attrs.len()
    }

    /// Node by index; `None` when out of range.
    pub fn node(&self, index: usize) -> Option<NodeId> {
        (index < self.nodes.len()).then_some(NodeId(index as u32))
    }

    fn data(&self, n: NodeId) -> &NodeData {
        &self.nodes[n.0 as usize]
    }

    pub fn kind(&self, n: NodeId) -> NodeKind {
        self.data(n).kind
    }

    pub fn parent(&self, n: NodeId) -> Option<NodeId> {
        let p = self.data(n).parent;
        (p != NONE).then_some(NodeId(p))
    }

    pub fn first_child(&self, n: NodeId) -> Option<NodeId> {
        let d = self.data(n);
        (d.last_desc > n.0).then_some(NodeId(n.0 + 1))
    }

    pub fn next_sibling(&self, n: NodeId) -> Option<NodeId> {
        let s = self.data(n).next_sibling;
        (s != NONE).then_some(NodeId(s))
    }

    pub fn prev_sibling(&self, n: NodeId) -> Option<NodeId> {
        let s = self.data(n).prev_sibling;
        (s != NONE).then_some(NodeId(s))
    }

    /// Index of the last descendant of `n` (`n` itself when it has none): the descendants of
    /// `n` are exactly the nodes with index in `n+1 ..= last_descendant(n)`.
    pub fn last_descendant(&self, n: NodeId) -> NodeId {
        NodeId(self.data(n).last_desc)
    }

    /// Children in document order.
    pub fn children(&self, n: NodeId) -> Children<'_> {
        Children {
            doc: self,
            next: self.first_child(n),
        }
    }

    /// Element children in document order.
    pub fn child_elements(&self, n: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.children(n)
            .filter(move |&c| self.kind(c) == NodeKind::Element)
    }

    /// Interned name of an element or processing instruction.
    pub fn name_id(&self, n: NodeId) -> Option<NameId> {
        let id = self.data(n).name;
        (id != NONE).then_some(NameId(id))
    }

    /// Number of interned names (element, attribute and PI names), i.e. one past the
    /// largest [`NameId::index`].
    pub fn name_count(&self) -> usize {
        self.names.len()
    }

    /// The name behind an interned id.
    pub fn name(&self, id: NameId) -> &Name {
        &self.names[id.0 as usize]
    }

    /// Local name of an element/PI (empty for other nodes).
    pub fn local_name(&self, n: NodeId) -> &str {
        self.name_id(n).map_or("", |id| &self.name(id).local)
    }

    /// Namespace URI of an element (empty when none).
    pub fn namespace(&self, n: NodeId) -> &str {
        self.name_id(n).map_or("", |id| &self.name(id).ns)
    }

    /// Every interned id whose expanded name is (`ns`, `local`) (one per prefix
    /// used in the document); no allocation.
    pub fn name_ids_of<'a>(&'a self, ns: &'a str, local: &str) -> impl Iterator<Item = u32> + 'a {
        self.name_index
            .get(&self.names)
            .get(local)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |&id| *self.names[id as usize].ns == *ns)
    }

    /// True when the element/PI `n` has the expanded name whose interned ids are `ids`.
    pub fn has_name_in(&self, n: NodeId, ids: &[u32]) -> bool {
        let id = self.data(n).name;
        id != NONE && ids.contains(&id)
    }

    /// Text of a text, comment or PI node (empty for other nodes).
    pub fn text(&self, n: NodeId) -> &str {
        let d = self.data(n);
        &self.text[d.text_start as usize..d.text_end as usize]
    }

    /// Attributes of an element.
    pub fn attributes(&self, n: NodeId) -> impl ExactSizeIterator<Item = AttrId> {
        let d = self.data(n);
        (d.attr_start..d.attr_end).map(AttrId)
    }

    /// Value of the attribute with no namespace and the given local name.
    pub fn attribute(&self, n: NodeId, local: &str) -> Option<&str> {
        self.attributes(n)
            .find(|&a| {
                let nm = self.attr_name(a);
                nm.ns.is_empty() && &*nm.local == local
            })
            .map(|a| self.attr_value(a))
    }

    pub fn attr_name(&self, a: AttrId) -> &Name {
        &self.names[self.attrs[a.0 as usize].name as usize]
    }

    pub fn attr_name_id(&self, a: AttrId) -> NameId {
        NameId(self.attrs[a.0 as usize].name)
    }

    pub fn attr_value(&self, a: AttrId) -> &str {
        let d = &self.attrs[a.0 as usize];
        &self.text[d.value_start as usize..d.value_end as usize]
    }

    pub fn attr_owner(&self, a: AttrId) -> NodeId {
        NodeId(self.attrs[a.0 as usize].owner)
    }

    /// String value of a node: its text, or the concatenated descendant text of an element
    /// or of the document.
    pub fn string_value(&self, n: NodeId) -> String {
        match self.kind(n) {
            NodeKind::Text | NodeKind::Comment | NodeKind::ProcessingInstruction => {
                self.text(n).to_owned()
            }
            NodeKind::Element | NodeKind::Document => {
                let mut s = String::new();
                for i in n.0 + 1..=self.data(n).last_desc {
                    if self.nodes[i as usize].kind == NodeKind::Text {
                        s.push_str(self.text(NodeId(i)));
                    }
                }
                s
            }
        }
    }

    /// 1-based line and column (in characters) where a node starts in the source.
    pub fn position(&self, n: NodeId) -> (u32, u32) {
        self.line_col(self.data(n).pos)
    }

    /// 1-based line and column where an attribute starts in the source.
    pub fn attr_position(&self, a: AttrId) -> (u32, u32) {
        self.line_col(self.attrs[a.0 as usize].pos)
    }

    /// 1-based line and column of a byte offset of the source (after a leading BOM).
    pub fn offset_position(&self, offset: usize) -> (u32, u32) {
        self.line_col(u32::try_from(offset).unwrap_or(u32::MAX))
    }

    fn line_col(&self, pos: u32) -> (u32, u32) {
        let line = match self.line_starts.binary_search(&pos) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        // Columns are counted in bytes of the line here; cheap and stable.
        (line as u32 + 1, pos.saturating_sub(start) + 1)
    }
}

/// Iterator over the children of a node.
pub struct Children<'a> {
    doc: &'a Document,
    next: Option<NodeId>,
}

impl Iterator for Children<'_> {
    type Item = NodeId;
    fn next(&mut self) -> Option<NodeId> {
        let n = self.next?;
        self.next = self.doc.next_sibling(n);
        Some(n)
    }
}

#[cfg(test)]
mod tests;
