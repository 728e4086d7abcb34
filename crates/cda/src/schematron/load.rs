//! Reading ISO Schematron files into raw (uncompiled) structures: includes resolved, abstract
//! patterns and rules kept by id for expansion.

use super::SchematronError;
use crate::xml::{Document, NodeId, NodeKind};
use std::path::{Path, PathBuf};

pub const SCH_NS: &str = "http://purl.oclc.org/dsdl/schematron";
pub const XSL_NS: &str = "http://www.w3.org/1999/XSL/Transform";
const MAX_INCLUDE_DEPTH: usize = 16;

#[derive(Debug, Clone)]
pub enum RawMsg {
    Text(String),
    Name(Option<String>),
    ValueOf(String),
}

#[derive(Debug, Clone)]
pub enum RawTpl {
    Text(String),
    ValueOf(String),
    ForEach(String, Vec<RawTpl>),
}

#[derive(Debug, Clone)]
pub struct RawLet {
    pub name: String,
    pub value: Option<String>,
    pub template: Vec<RawTpl>,
}

#[derive(Debug, Clone)]
pub struct RawCheck {
    pub is_assert: bool,
    pub id: Option<String>,
    pub role: Option<String>,
    pub test: String,
    pub message: Vec<RawMsg>,
    pub diagnostics: Vec<String>,
    pub line: u32,
}

#[derive(Debug, Clone)]
pub enum RawItem {
    Let(RawLet),
    Check(RawCheck),
    Extends(String),
}

#[derive(Debug, Clone)]
pub struct RawRule {
    pub id: Option<String>,
    pub is_abstract: bool,
    pub context: Option<String>,
    pub items: Vec<RawItem>,
    pub line: u32,
}

#[derive(Debug, Clone)]
pub struct RawPattern {
    pub id: Option<String>,
    pub is_abstract: bool,
    pub is_a: Option<String>,
    pub params: Vec<(String, String)>,
    pub lets: Vec<RawLet>,
    pub rules: Vec<RawRule>,
}

#[derive(Debug, Clone)]
pub struct RawDiagnostic {
    pub id: String,
    pub message: Vec<RawMsg>,
}

#[derive(Debug, Default, Clone)]
pub struct RawSchema {
    pub title: String,
    pub namespaces: Vec<(String, String)>,
    pub lets: Vec<RawLet>,
    pub patterns: Vec<RawPattern>,
    pub abstract_rules: Vec<RawRule>,
    pub diagnostics: Vec<RawDiagnostic>,
}

/// A node of some loaded file (the main schema or an included one).
struct At<'d> {
    doc: &'d Document,
    node: NodeId,
    file: &'d Path,
}

pub fn load_raw(bytes: &[u8], path: &Path) -> Result<RawSchema, SchematronError> {
    let doc = crate::xml::parse(bytes).map_err(|e| SchematronError::Xml(path.to_path_buf(), e))?;
    let root = doc
        .document_element()
        .ok_or_else(|| SchematronError::Invalid(path.to_path_buf(), "no root element".into()))?;
    if doc.namespace(root) != SCH_NS || doc.local_name(root) != "schema" {
        return Err(SchematronError::Invalid(
            path.to_path_buf(),
            "the root element is not an ISO schematron <schema>".into(),
        ));
    }
    let mut raw = RawSchema::default();
    let at = At {
        doc: &doc,
        node: root,
        file: path,
    };
    walk_schema(&at, &mut raw, 0)?;
    Ok(raw)
}

fn read(path: &Path) -> Result<Document, SchematronError> {
    let bytes =
        std::fs::read(path).map_err(|e| SchematronError::Io(path.to_path_buf(), e.to_string()))?;
    crate::xml::parse(&bytes).map_err(|e| SchematronError::Xml(path.to_path_buf(), e))
}

fn is_sch(doc: &Document, n: NodeId, local: &str) -> bool {
    doc.kind(n) == NodeKind::Element && doc.namespace(n) == SCH_NS && doc.local_name(n) == local
}

fn attr(at: &At<'_>, name: &str) -> Option<String> {
    at.doc.attribute(at.node, name).map(str::to_owned)
}

fn invalid(at: &At<'_>, msg: &str) -> SchematronError {
    let (line, col) = at.doc.position(at.node);
    SchematronError::Invalid(at.file.to_path_buf(), format!("{line}:{col}: {msg}"))
}

/// Calls `f` on every element child of `at`, replacing `sch:include` by the root of the
/// included file.
fn for_children(
    at: &At<'_>,
    depth: usize,
    f: &mut dyn FnMut(&At<'_>, usize) -> Result<(), SchematronError>,
) -> Result<(), SchematronError> {
    for c in at.doc.child_elements(at.node) {
        if is_sch(at.doc, c, "include") {
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(invalid(at, "includes nested too deeply"));
            }
            let child = At {
                doc: at.doc,
                node: c,
                file: at.file,
            };
            let href =
                attr(&child, "href").ok_or_else(|| invalid(&child, "include without href"))?;
            let target: PathBuf = at.file.parent().unwrap_or(Path::new(".")).join(href);
            let doc = read(&target)?;
            let root = doc.document_element().ok_or_else(|| {
                SchematronError::Invalid(target.clone(), "no root element".into())
            })?;
            let inc = At {
                doc: &doc,
                node: root,
                file: &target,
            };
            f(&inc, depth + 1)?;
        } else {
            f(
                &At {
                    doc: at.doc,
                    node: c,
                    file: at.file,
                },
                depth,
            )?;
        }
    }
    Ok(())
}

fn walk_schema(at: &At<'_>, raw: &mut RawSchema, depth: usize) -> Result<(), SchematronError> {
    for_children(at, depth, &mut |c, d| {
        let doc = c.doc;
        if doc.namespace(c.node) != SCH_NS {
            return Ok(());
        }
        match doc.local_name(c.node) {
            "title" => {
                raw.title = doc
                    .string_value(c.node)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            "ns" => {
                let p = attr(c, "prefix").ok_or_else(|| invalid(c, "ns without prefix"))?;
                let u = attr(c, "uri").ok_or_else(|| invalid(c, "ns without uri"))?;
                raw.namespaces.push((p, u));
            }
            "let" => raw.lets.push(read_let(c)?),
            "pattern" => {
                let p = read_pattern(c, raw, d)?;
                raw.patterns.push(p);
            }
            "rules" => {
                for_children(c, d, &mut |r, _| {
                    if is_sch(r.doc, r.node, "rule") {
                        let rule = read_rule(r, d)?;
                        raw.abstract_rules.push(rule);
                    }
                    Ok(())
                })?;
            }
            "diagnostics" => {
                for_children(c, d, &mut |x, _| {
                    if is_sch(x.doc, x.node, "diagnostic") {
                        let id =
                            attr(x, "id").ok_or_else(|| invalid(x, "diagnostic without id"))?;
                        raw.diagnostics.push(RawDiagnostic {
                            id,
                            message: read_message(x),
                        });
                    }
                    Ok(())
                })?;
            }
            "schema" => walk_schema(c, raw, d)?,
            _ => {}
        }
        Ok(())
    })
}

fn read_pattern(
    at: &At<'_>,
    raw: &mut RawSchema,
    depth: usize,
) -> Result<RawPattern, SchematronError> {
    let mut p = RawPattern {
        id: attr(at, "id"),
        is_abstract: attr(at, "abstract").as_deref() == Some("true"),
        is_a: attr(at, "is-a"),
        params: Vec::new(),
        lets: Vec::new(),
        rules: Vec::new(),
    };
    for_children(at, depth, &mut |c, d| {
        let doc = c.doc;
        if doc.namespace(c.node) != SCH_NS {
            return Ok(());
        }
        match doc.local_name(c.node) {
            "let" => p.lets.push(read_let(c)?),
            "param" => {
                let n = attr(c, "name").ok_or_else(|| invalid(c, "param without name"))?;
                let v = attr(c, "value").ok_or_else(|| invalid(c, "param without value"))?;
                p.params.push((n, v));
            }
            "rule" => {
                let r = read_rule(c, d)?;
                if r.is_abstract {
                    raw.abstract_rules.push(r);
                } else {
                    p.rules.push(r);
                }
            }
            "pattern" => {
                // An included file whose root is a pattern lands here when included inside a
                // pattern: take its rules.
                let inner = read_pattern(c, raw, d)?;
                p.rules.extend(inner.rules);
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(p)
}

fn read_rule(at: &At<'_>, depth: usize) -> Result<RawRule, SchematronError> {
    let mut r = RawRule {
        id: attr(at, "id"),
        is_abstract: attr(at, "abstract").as_deref() == Some("true"),
        context: attr(at, "context"),
        items: Vec::new(),
        line: at.doc.position(at.node).0,
    };
    if !r.is_abstract && r.context.is_none() {
        return Err(invalid(at, "rule without context"));
    }
    for_children(at, depth, &mut |c, _| {
        let doc = c.doc;
        if doc.namespace(c.node) != SCH_NS {
            return Ok(());
        }
        match doc.local_name(c.node) {
            "let" => r.items.push(RawItem::Let(read_let(c)?)),
            "extends" => {
                let id = attr(c, "rule").ok_or_else(|| invalid(c, "extends without rule"))?;
                r.items.push(RawItem::Extends(id));
            }
            k @ ("assert" | "report") => {
                let test =
                    attr(c, "test").ok_or_else(|| invalid(c, "assert/report without test"))?;
                r.items.push(RawItem::Check(RawCheck {
                    is_assert: k == "assert",
                    id: attr(c, "id"),
                    role: attr(c, "role"),
                    test,
                    message: read_message(c),
                    diagnostics: attr(c, "diagnostics")
                        .map(|d| d.split_whitespace().map(str::to_owned).collect())
                        .unwrap_or_default(),
                    line: c.doc.position(c.node).0,
                }));
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(r)
}

fn read_let(at: &At<'_>) -> Result<RawLet, SchematronError> {
    let name = attr(at, "name").ok_or_else(|| invalid(at, "let without name"))?;
    let value = attr(at, "value");
    let template = if value.is_none() {
        read_template(at.doc, at.node)
    } else {
        Vec::new()
    };
    Ok(RawLet {
        name,
        value,
        template,
    })
}

/// The content of a `let` without `value`: literal text and the XSLT instructions used in the
/// official files (`xsl:value-of`, `xsl:for-each`). Whitespace-only text is dropped, as an
/// XSLT processor does in a stylesheet.
fn read_template(doc: &Document, n: NodeId) -> Vec<RawTpl> {
    let mut out = Vec::new();
    for c in doc.children(n) {
        match doc.kind(c) {
            NodeKind::Text => {
                let t = doc.text(c);
                if !t.trim().is_empty() {
                    out.push(RawTpl::Text(t.to_owned()));
                }
            }
            NodeKind::Element => {
                let ns = doc.namespace(c);
                let l = doc.local_name(c);
                if (ns == XSL_NS || ns == SCH_NS) && l == "value-of" {
                    if let Some(s) = doc.attribute(c, "select") {
                        out.push(RawTpl::ValueOf(s.to_owned()));
                    }
                } else if ns == XSL_NS && l == "for-each" {
                    if let Some(s) = doc.attribute(c, "select") {
                        out.push(RawTpl::ForEach(s.to_owned(), read_template(doc, c)));
                    }
                } else if ns == XSL_NS && l == "text" {
                    out.push(RawTpl::Text(doc.string_value(c)));
                }
            }
            _ => {}
        }
    }
    out
}

/// The content of an assert, report or diagnostic.
fn read_message(at: &At<'_>) -> Vec<RawMsg> {
    let doc = at.doc;
    let mut out = Vec::new();
    for c in doc.children(at.node) {
        match doc.kind(c) {
            NodeKind::Text => out.push(RawMsg::Text(doc.text(c).to_owned())),
            NodeKind::Element if doc.namespace(c) == SCH_NS => match doc.local_name(c) {
                "name" => out.push(RawMsg::Name(doc.attribute(c, "path").map(str::to_owned))),
                "value-of" => {
                    if let Some(s) = doc.attribute(c, "select") {
                        out.push(RawMsg::ValueOf(s.to_owned()));
                    }
                }
                "emph" | "dir" | "span" => out.push(RawMsg::Text(doc.string_value(c))),
                _ => {}
            },
            _ => {}
        }
    }
    out
}

/// Replaces `$name` of abstract-pattern parameters by their values (longest names first, and
/// only where the name is not the prefix of a longer name).
pub fn substitute(text: &str, params: &[(String, String)]) -> String {
    if params.is_empty() || !text.contains('$') {
        return text.to_owned();
    }
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let hit = sorted.iter().find(|(n, _)| {
            after.starts_with(n.as_str())
                && !after[n.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        });
        match hit {
            Some((n, v)) => {
                out.push_str(v);
                rest = &after[n.len()..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}
