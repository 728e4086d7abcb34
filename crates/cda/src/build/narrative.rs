//! Section narrative (`section/text`, the CDA narrative block). Three forms:
//! - `{"paragraphs": ["...", "..."]}`: plain paragraphs, escaped as needed;
//! - `{"blocks": [...]}`: structured blocks, see [`Block`]: paragraphs, lists and tables whose
//!   text may hold `{"content": "...", "id": "..."}` runs that entries reference (`#id`);
//! - `{"xml": "<paragraph>...</paragraph><table>...</table>"}`: a fragment of the CDA
//!   narrative block (no namespace prefixes), parsed by quick-xml and re-emitted. A fragment
//!   that is not well-formed, or that uses an element or attribute outside the narrative block
//!   vocabulary, is an input error. Comments are dropped.

use super::node::{Child, Node};
use quick_xml::events::Event;
use quick_xml::Reader;
use serde::Deserialize;

/// Narrative block element names (CDA R2 `StrucDoc`).
const ELEMENTS: &[&str] = &[
    "content",
    "linkHtml",
    "sub",
    "sup",
    "br",
    "footnote",
    "footnoteRef",
    "renderMultiMedia",
    "paragraph",
    "list",
    "item",
    "table",
    "caption",
    "col",
    "colgroup",
    "thead",
    "tfoot",
    "tbody",
    "tr",
    "th",
    "td",
];

/// Narrative block attribute names.
const ATTRIBUTES: &[&str] = &[
    "ID",
    "IDREF",
    "language",
    "styleCode",
    "revised",
    "listType",
    "href",
    "name",
    "rel",
    "rev",
    "title",
    "referencedObject",
    "summary",
    "width",
    "border",
    "frame",
    "rules",
    "cellspacing",
    "cellpadding",
    "span",
    "align",
    "char",
    "charoff",
    "valign",
    "abbr",
    "axis",
    "headers",
    "scope",
    "rowspan",
    "colspan",
];

/// The narrative of a section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawNarrative")]
pub struct Narrative {
    /// The parsed content of `section/text`.
    pub content: Vec<Child>,
}

/// The JSON form of [`Narrative`]: exactly one of `paragraphs`, `blocks` and `xml`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNarrative {
    /// Plain paragraphs.
    #[serde(default)]
    paragraphs: Option<Vec<String>>,
    /// Structured blocks.
    #[serde(default)]
    blocks: Option<Vec<Block>>,
    /// A narrative-block XML fragment.
    #[serde(default)]
    xml: Option<String>,
}

impl TryFrom<RawNarrative> for Narrative {
    type Error = String;
    fn try_from(raw: RawNarrative) -> Result<Self, Self::Error> {
        match (raw.paragraphs, raw.blocks, raw.xml) {
            (None, Some(blocks), None) => Ok(Narrative {
                content: blocks.iter().map(Block::to_child).collect(),
            }),
            (Some(paragraphs), None, None) => Ok(Narrative {
                content: paragraphs
                    .into_iter()
                    .map(|p| {
                        Child::Element(Node {
                            name: "paragraph".into(),
                            attrs: Vec::new(),
                            children: vec![Child::Text(p)],
                        })
                    })
                    .collect(),
            }),
            (None, None, Some(xml)) => parse_fragment(&xml).map(|content| Narrative { content }),
            _ => Err("give exactly one of `paragraphs`, `blocks` or `xml`".into()),
        }
    }
}

/// A block of structured narrative.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Block {
    /// `{"paragraph": TEXT}`: a paragraph.
    Paragraph(Text),
    /// `{"list": {"ordered": false, "items": [TEXT...]}}`: a list.
    List(List),
    /// `{"table": {...}}`: a table.
    Table(Table),
}

/// A list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct List {
    /// Numbered list (`listType="ordered"`) when true.
    #[serde(default)]
    pub ordered: bool,
    /// The items.
    pub items: Vec<Text>,
}

/// A table: header cells and rows of cells.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// `ID` of the table.
    #[serde(default)]
    pub id: Option<String>,
    /// Caption.
    #[serde(default)]
    pub caption: Option<String>,
    /// Header cells (`thead/tr/th`).
    #[serde(default)]
    pub header: Vec<Text>,
    /// Rows of cells (`tbody/tr/td`).
    pub rows: Vec<Vec<Text>>,
}

/// Text of a paragraph, item or cell: a string, a run `{"content": "...", "id": "...",
/// "style_code": "..."}`, or a list of both.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "serde_json::Value")]
pub struct Text(pub Vec<Child>);

/// A `content` run of text.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Run {
    content: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    style_code: Option<String>,
}

impl Run {
    fn to_child(&self) -> Child {
        let mut attrs = Vec::new();
        if let Some(id) = &self.id {
            attrs.push(("ID".to_string(), id.clone()));
        }
        if let Some(style) = &self.style_code {
            attrs.push(("styleCode".to_string(), style.clone()));
        }
        Child::Element(Node {
            name: "content".into(),
            attrs,
            children: vec![Child::Text(self.content.clone())],
        })
    }
}

impl TryFrom<serde_json::Value> for Text {
    type Error = String;
    fn try_from(value: serde_json::Value) -> Result<Self, Self::Error> {
        use serde_json::Value;
        fn one(v: &Value) -> Result<Child, String> {
            match v {
                Value::String(s) => Ok(Child::Text(s.clone())),
                Value::Object(_) => serde_json::from_value::<Run>(v.clone())
                    .map(|r| r.to_child())
                    .map_err(|e| format!("bad text run: {e}")),
                _ => Err("text is a string, a {\"content\": ...} run or a list of them".into()),
            }
        }
        match &value {
            Value::Array(items) => items.iter().map(one).collect::<Result<_, _>>().map(Text),
            v => one(v).map(|c| Text(vec![c])),
        }
    }
}

fn element(name: &str, attrs: Vec<(String, String)>, children: Vec<Child>) -> Child {
    Child::Element(Node {
        name: name.into(),
        attrs,
        children,
    })
}

impl Block {
    fn to_child(&self) -> Child {
        match self {
            Block::Paragraph(t) => element("paragraph", Vec::new(), t.0.clone()),
            Block::List(l) => {
                let attrs = if l.ordered {
                    vec![("listType".to_string(), "ordered".to_string())]
                } else {
                    Vec::new()
                };
                let items = l
                    .items
                    .iter()
                    .map(|i| element("item", Vec::new(), i.0.clone()))
                    .collect();
                element("list", attrs, items)
            }
            Block::Table(t) => {
                let attrs =
                    t.id.iter()
                        .map(|id| ("ID".to_string(), id.clone()))
                        .collect();
                let mut parts = Vec::new();
                if let Some(c) = &t.caption {
                    parts.push(element("caption", Vec::new(), vec![Child::Text(c.clone())]));
                }
                let row = |cell: &str, cells: &[Text]| {
                    element(
                        "tr",
                        Vec::new(),
                        cells
                            .iter()
                            .map(|c| element(cell, Vec::new(), c.0.clone()))
                            .collect(),
                    )
                };
                if !t.header.is_empty() {
                    parts.push(element("thead", Vec::new(), vec![row("th", &t.header)]));
                }
                let rows = t.rows.iter().map(|r| row("td", r)).collect();
                parts.push(element("tbody", Vec::new(), rows));
                element("table", attrs, parts)
            }
        }
    }
}

/// Parses a narrative-block fragment into a tree.
pub fn parse_fragment(xml: &str) -> Result<Vec<Child>, String> {
    let wrapped = format!("<text>{xml}</text>");
    let mut reader = Reader::from_str(&wrapped);
    reader.config_mut().check_end_names = true;
    let bad = |reader: &Reader<&[u8]>, why: String| {
        let pos = reader.buffer_position().saturating_sub(6);
        format!("narrative XML is not valid at byte {pos}: {why}")
    };
    // Stack of open elements; the bottom one is the wrapper.
    let mut stack: Vec<Node> = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| bad(&reader, e.to_string()))?;
        match event {
            Event::Start(_) | Event::Empty(_) if stack.is_empty() => {
                // The wrapper element.
                stack.push(Node {
                    name: "text".into(),
                    attrs: Vec::new(),
                    children: Vec::new(),
                });
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if !ELEMENTS.contains(&name.as_str()) {
                    return Err(bad(
                        &reader,
                        format!("`{name}` is not a narrative block element"),
                    ));
                }
                let mut node = Node {
                    name,
                    attrs: Vec::new(),
                    children: Vec::new(),
                };
                for attr in e.attributes() {
                    let attr = attr.map_err(|err| bad(&reader, err.to_string()))?;
                    let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
                    if !ATTRIBUTES.contains(&key.as_str()) {
                        return Err(bad(
                            &reader,
                            format!("`{key}` is not a narrative block attribute"),
                        ));
                    }
                    let value = attr
                        .unescape_value()
                        .map_err(|err| bad(&reader, err.to_string()))?;
                    node.attrs.push((key, value.into_owned()));
                }
                if matches!(event, Event::Start(_)) {
                    stack.push(node);
                } else if let Some(top) = stack.last_mut() {
                    top.children.push(Child::Element(node));
                }
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(bad(&reader, "unbalanced end tag".into()));
                };
                match stack.last_mut() {
                    Some(top) => top.children.push(Child::Element(done)),
                    None => {
                        // The wrapper closed: nothing may follow.
                        match reader.read_event() {
                            Ok(Event::Eof) => return Ok(done.children),
                            _ => return Err(bad(&reader, "unbalanced end tag".into())),
                        }
                    }
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| bad(&reader, e.to_string()))?;
                if let Some(top) = stack.last_mut() {
                    top.children.push(Child::Text(text.into_owned()));
                }
            }
            Event::CData(c) => {
                let text = String::from_utf8(c.into_inner().into_owned())
                    .map_err(|e| bad(&reader, e.to_string()))?;
                if let Some(top) = stack.last_mut() {
                    top.children.push(Child::Text(text));
                }
            }
            Event::Comment(_) => {}
            Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {
                return Err(bad(
                    &reader,
                    "declarations and processing instructions are not allowed".into(),
                ))
            }
            Event::Eof => return Err(bad(&reader, "unclosed element".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_blocks() {
        let n: Narrative = serde_json::from_str(
            r#"{"blocks": [
                {"paragraph": ["Glucosio: ", {"content": "92 mg/dL", "id": "r1"}]},
                {"list": {"ordered": true, "items": ["a", "b"]}},
                {"table": {"id": "t1", "header": ["Esame"], "rows": [["Glucosio"]]}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(n.content.len(), 3);
        let Child::Element(p) = &n.content[0] else {
            panic!()
        };
        let Child::Element(run) = &p.children[1] else {
            panic!()
        };
        assert_eq!(run.attrs, vec![("ID".to_string(), "r1".to_string())]);
        assert!(serde_json::from_str::<Narrative>(r#"{"blocks": [{"paragraph": 3}]}"#).is_err());
        assert!(serde_json::from_str::<Narrative>(r#"{"blocks": [{"paragraf": "x"}]}"#).is_err());
        assert!(serde_json::from_str::<Narrative>(
            r#"{"blocks": [{"paragraph": {"content": "x", "idd": "y"}}]}"#
        )
        .is_err());
    }

    #[test]
    fn parses_well_formed_fragments() {
        let c = parse_fragment("<paragraph>a &amp; <content ID=\"x\">b</content></paragraph>x")
            .unwrap();
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn rejects_bad_fragments() {
        for bad in [
            "<paragraph>",
            "<paragraph></content>",
            "</paragraph>",
            "<script/>",
            "<paragraph onclick=\"x\"/>",
            "<?xml version=\"1.0\"?>",
            "&nbsp;",
            "<hl7:paragraph/>",
        ] {
            assert!(parse_fragment(bad).is_err(), "{bad}");
        }
    }
}
