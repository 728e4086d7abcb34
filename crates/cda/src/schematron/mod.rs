//! An ISO Schematron interpreter over the [`crate::xpath`] engine.
//!
//! A [`Schema`] is loaded and compiled once (includes resolved, abstract patterns and rules
//! expanded, every XPath parsed) and then run on any number of documents from any thread
//! (`Send + Sync`). Semantics follow the ISO skeleton for XSLT 2 as the gateway runs it:
//! - patterns are run one after the other; in each, the document node and every element are
//!   visited in document order, and each fires only the **first** rule of the pattern whose
//!   context matches it;
//! - schema- and pattern-level `let`s are global variables (context: the document node); a
//!   rule's `let`s are evaluated in its context, in order; a `let` that fails only raises its
//!   error where it is used;
//! - a false `assert` and a true `report` produce a [`Finding`] whose text is the message with
//!   `name` and `value-of` evaluated and whitespace normalised, with the SVRL location path
//!   (`/*:ClinicalDocument[namespace-uri()='urn:hl7-org:v3'][1]/…`) and diagnostics;
//! - a dynamic XPath error stops the run, as it stops the XSLT transformation.

mod load;

use crate::xml::{Document, NodeId, NodeKind, XmlError};
use crate::xpath::ast::{Ast, Axis, NodeTest, PathStart, SetOp, Step};
use crate::xpath::{Atomic, Env, Focus, Item, Namespaces, NodeRef, XPath, XPathError};
use load::{RawCheck, RawItem, RawLet, RawMsg, RawRule, RawSchema, RawTpl};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Problems loading, compiling or running a schema.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SchematronError {
    #[error("{0}: {1}")]
    Io(PathBuf, String),
    #[error("{0}: not well-formed XML: {1}")]
    Xml(PathBuf, XmlError),
    #[error("{0}: {1}")]
    Invalid(PathBuf, String),
    #[error("{file}:{line}: cannot compile {what} {expr:?}: {error}")]
    Compile {
        file: PathBuf,
        line: u32,
        what: &'static str,
        expr: String,
        error: XPathError,
    },
    #[error("evaluation failed in rule {context:?} at {location}: {error}")]
    Evaluation {
        context: String,
        location: String,
        error: XPathError,
    },
}

/// A failed assert or a successful report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The assert's `@id`, else the text before the first `|` of its message (e.g.
    /// `ERRORE-11a`), when there is one.
    pub id: Option<String>,
    /// The message, evaluated and whitespace-normalised.
    pub text: String,
    /// The test, whitespace-normalised.
    pub test: String,
    /// SVRL location path of the context node.
    pub location: String,
    /// 1-based line and column of the context node in the document.
    pub line: u32,
    pub column: u32,
    pub role: Option<String>,
    pub pattern: Option<String>,
    pub diagnostics: Vec<String>,
}

/// The outcome of running a schema on a document.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SchematronReport {
    pub failed_asserts: Vec<Finding>,
    pub successful_reports: Vec<Finding>,
}

#[derive(Debug, Clone)]
enum MsgPart {
    Text(String),
    Name(Option<XPath>),
    ValueOf(XPath),
}

#[derive(Debug, Clone)]
enum TplPart {
    Text(String),
    ValueOf(XPath),
    ForEach(XPath, Vec<TplPart>),
}

#[derive(Debug, Clone)]
enum LetValue {
    Expr(XPath),
    Template(Vec<TplPart>),
}

#[derive(Debug, Clone)]
struct Let {
    name: Arc<str>,
    value: LetValue,
}

#[derive(Debug, Clone)]
struct Check {
    is_assert: bool,
    id: Option<String>,
    role: Option<String>,
    test: XPath,
    test_text: String,
    message: Vec<MsgPart>,
    diagnostics: Vec<Vec<MsgPart>>,
}

#[derive(Debug, Clone)]
enum RuleItem {
    Let(Let),
    Check(Check),
}

#[derive(Debug, Clone)]
struct Rule {
    context_text: String,
    matcher: XPath,
    items: Vec<RuleItem>,
}

#[derive(Debug, Clone)]
struct Pattern {
    id: Option<String>,
    rules: Vec<Rule>,
}

/// A compiled schema.
#[derive(Debug, Clone)]
pub struct Schema {
    title: String,
    globals: Vec<Let>,
    patterns: Vec<Pattern>,
    expressions: usize,
}

struct Compiler<'a> {
    file: &'a Path,
    ns: Namespaces,
    raw: &'a RawSchema,
    count: usize,
}

impl Compiler<'_> {
    fn xpath(
        &mut self,
        src: &str,
        line: u32,
        what: &'static str,
    ) -> Result<XPath, SchematronError> {
        self.count += 1;
        XPath::compile(src, &self.ns).map_err(|error| SchematronError::Compile {
            file: self.file.to_path_buf(),
            line,
            what,
            expr: src.to_owned(),
            error,
        })
    }

    fn message(
        &mut self,
        m: &[RawMsg],
        params: &[(String, String)],
        line: u32,
    ) -> Result<Vec<MsgPart>, SchematronError> {
        m.iter()
            .map(|p| {
                Ok(match p {
                    RawMsg::Text(t) => MsgPart::Text(t.clone()),
                    RawMsg::Name(None) => MsgPart::Name(None),
                    RawMsg::Name(Some(path)) => MsgPart::Name(Some(self.xpath(
                        &load::substitute(path, params),
                        line,
                        "name/@path",
                    )?)),
                    RawMsg::ValueOf(s) => MsgPart::ValueOf(self.xpath(
                        &load::substitute(s, params),
                        line,
                        "value-of",
                    )?),
                })
            })
            .collect()
    }

    fn template(
        &mut self,
        t: &[RawTpl],
        params: &[(String, String)],
        line: u32,
    ) -> Result<Vec<TplPart>, SchematronError> {
        t.iter()
            .map(|p| {
                Ok(match p {
                    RawTpl::Text(s) => TplPart::Text(s.clone()),
                    RawTpl::ValueOf(s) => TplPart::ValueOf(self.xpath(
                        &load::substitute(s, params),
                        line,
                        "value-of",
                    )?),
                    RawTpl::ForEach(s, body) => TplPart::ForEach(
                        self.xpath(&load::substitute(s, params), line, "for-each")?,
                        self.template(body, params, line)?,
                    ),
                })
            })
            .collect()
    }

    fn let_(
        &mut self,
        l: &RawLet,
        params: &[(String, String)],
        line: u32,
    ) -> Result<Let, SchematronError> {
        let value = match &l.value {
            Some(v) => LetValue::Expr(self.xpath(&load::substitute(v, params), line, "let")?),
            None => LetValue::Template(self.template(&l.template, params, line)?),
        };
        Ok(Let {
            name: l.name.as_str().into(),
            value,
        })
    }

    fn check(
        &mut self,
        c: &RawCheck,
        params: &[(String, String)],
    ) -> Result<Check, SchematronError> {
        let test_src = load::substitute(&c.test, params);
        let test = self.xpath(
            &test_src,
            c.line,
            if c.is_assert { "assert" } else { "report" },
        )?;
        let mut diagnostics = Vec::new();
        for d in &c.diagnostics {
            let Some(raw) = self.raw.diagnostics.iter().find(|x| &x.id == d) else {
                return Err(SchematronError::Invalid(
                    self.file.to_path_buf(),
                    format!("line {}: unknown diagnostic {d:?}", c.line),
                ));
            };
            let m = raw.message.clone();
            diagnostics.push(self.message(&m, params, c.line)?);
        }
        Ok(Check {
            is_assert: c.is_assert,
            id: c.id.clone(),
            role: c.role.clone(),
            test,
            test_text: test_src.split_whitespace().collect::<Vec<_>>().join(" "),
            message: self.message(&c.message, params, c.line)?,
            diagnostics,
        })
    }

    fn rule_items(
        &mut self,
        items: &[RawItem],
        params: &[(String, String)],
        line: u32,
        depth: usize,
        out: &mut Vec<RuleItem>,
    ) -> Result<(), SchematronError> {
        for it in items {
            match it {
                RawItem::Let(l) => out.push(RuleItem::Let(self.let_(l, params, line)?)),
                RawItem::Check(c) => out.push(RuleItem::Check(self.check(c, params)?)),
                RawItem::Extends(id) => {
                    if depth > 16 {
                        return Err(SchematronError::Invalid(
                            self.file.to_path_buf(),
                            "extends nested too deeply".into(),
                        ));
                    }
                    let raw = self.raw;
                    let Some(ab) = raw
                        .abstract_rules
                        .iter()
                        .find(|r| r.id.as_deref() == Some(id))
                    else {
                        return Err(SchematronError::Invalid(
                            self.file.to_path_buf(),
                            format!("line {line}: extends an unknown abstract rule {id:?}"),
                        ));
                    };
                    self.rule_items(&ab.items, params, ab.line, depth + 1, out)?;
                }
            }
        }
        Ok(())
    }

    fn rule(&mut self, r: &RawRule, params: &[(String, String)]) -> Result<Rule, SchematronError> {
        let ctx = load::substitute(r.context.as_deref().unwrap_or(""), params);
        let parsed = self.xpath(&ctx, r.line, "rule context")?;
        let matcher = XPath::from_ast(&ctx, to_matcher(parsed.ast().clone()));
        let mut items = Vec::new();
        self.rule_items(&r.items, params, r.line, 0, &mut items)?;
        Ok(Rule {
            context_text: ctx,
            matcher,
            items,
        })
    }
}

/// Turns a match pattern into an expression selecting, from the document node, every node
/// the pattern matches: relative paths are searched at any depth.
fn to_matcher(ast: Ast) -> Ast {
    match ast {
        Ast::Set(SetOp::Union, a, b) => Ast::Set(
            SetOp::Union,
            Box::new(to_matcher(*a)),
            Box::new(to_matcher(*b)),
        ),
        Ast::Path {
            start: PathStart::Context,
            steps,
        } => {
            let mut all = vec![Step::axis(
                Axis::DescendantOrSelf,
                NodeTest::AnyNode,
                Vec::new(),
            )];
            all.extend(steps);
            crate::xpath::simplify(Ast::Path {
                start: PathStart::Root,
                steps: all,
            })
        }
        other => other,
    }
}

impl Schema {
    /// Loads and compiles a schematron file (and the files it includes).
    pub fn load(path: &Path) -> Result<Schema, SchematronError> {
        let bytes = std::fs::read(path)
            .map_err(|e| SchematronError::Io(path.to_path_buf(), e.to_string()))?;
        Self::from_bytes(&bytes, path)
    }

    /// Compiles a schematron held in memory; `path` names it in errors and anchors relative
    /// `include` references.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Schema, SchematronError> {
        let raw = load::load_raw(bytes, path)?;
        Self::compile(&raw, path)
    }

    fn compile(raw: &RawSchema, file: &Path) -> Result<Schema, SchematronError> {
        let mut ns: Namespaces = HashMap::new();
        ns.insert("xs".into(), "http://www.w3.org/2001/XMLSchema".into());
        ns.insert("xsd".into(), "http://www.w3.org/2001/XMLSchema".into());
        ns.insert(
            "xsi".into(),
            "http://www.w3.org/2001/XMLSchema-instance".into(),
        );
        for (p, u) in &raw.namespaces {
            ns.insert(p.clone(), u.clone());
        }
        let mut c = Compiler {
            file,
            ns,
            raw,
            count: 0,
        };
        let mut globals = Vec::new();
        for l in &raw.lets {
            globals.push(c.let_(l, &[], 0)?);
        }
        let mut patterns = Vec::new();
        for p in raw.patterns.iter().filter(|p| !p.is_abstract) {
            let (source, params) = match &p.is_a {
                Some(base) => {
                    let Some(b) = raw
                        .patterns
                        .iter()
                        .find(|x| x.is_abstract && x.id.as_deref() == Some(base))
                    else {
                        return Err(SchematronError::Invalid(
                            file.to_path_buf(),
                            format!("pattern is-a unknown abstract pattern {base:?}"),
                        ));
                    };
                    (b, p.params.as_slice())
                }
                None => (p, &[][..]),
            };
            for l in source.lets.iter().chain(if p.is_a.is_some() {
                p.lets.iter()
            } else {
                [].iter()
            }) {
                globals.push(c.let_(l, params, 0)?);
            }
            let mut rules = Vec::new();
            for r in &source.rules {
                rules.push(c.rule(r, params)?);
            }
            patterns.push(Pattern {
                id: p.id.clone(),
                rules,
            });
        }
        Ok(Schema {
            title: raw.title.clone(),
            globals,
            patterns,
            expressions: c.count,
        })
    }

    /// The schema's title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Number of XPath expressions compiled.
    pub fn expression_count(&self) -> usize {
        self.expressions
    }

    /// Number of (concrete) rules.
    pub fn rule_count(&self) -> usize {
        self.patterns.iter().map(|p| p.rules.len()).sum()
    }

    /// Runs the schema on a document.
    pub fn validate(&self, doc: &Document) -> Result<SchematronReport, SchematronError> {
        let mut env = Env::new(doc);
        let root = Focus::node(NodeRef::Node(doc.root()));
        for g in &self.globals {
            bind_let(&mut env, g, &root);
        }
        let mut report = SchematronReport::default();
        // Index + 1 of the last pattern that gave each node a rule (0: none yet), and the
        // (node, rule) pairs of the current pattern.
        let mut claimed: Vec<u32> = vec![0; doc.node_count()];
        let mut fired: Vec<(u32, u32)> = Vec::new();
        for (pi, pattern) in self.patterns.iter().enumerate() {
            let stamp = pi as u32 + 1;
            fired.clear();
            for (ri, rule) in pattern.rules.iter().enumerate() {
                let matched = rule.matcher.evaluate(&mut env, &root).map_err(|error| {
                    SchematronError::Evaluation {
                        context: rule.context_text.clone(),
                        location: "/".into(),
                        error,
                    }
                })?;
                for item in matched {
                    if let Item::Node(NodeRef::Node(n)) = item {
                        if let Some(c) = claimed.get_mut(n.0 as usize) {
                            if *c != stamp {
                                *c = stamp;
                                fired.push((n.0, ri as u32));
                            }
                        }
                    }
                }
            }
            // Document order is node order.
            fired.sort_unstable();
            for &(i, o) in &fired {
                let Some(n) = doc.node(i as usize) else {
                    continue;
                };
                if !matches!(doc.kind(n), NodeKind::Element | NodeKind::Document) {
                    continue;
                }
                let rule = &pattern.rules[o as usize];
                self.fire(&mut env, doc, n, rule, pattern, &mut report)?;
            }
        }
        Ok(report)
    }

    fn fire(
        &self,
        env: &mut Env<'_>,
        doc: &Document,
        n: NodeId,
        rule: &Rule,
        pattern: &Pattern,
        report: &mut SchematronReport,
    ) -> Result<(), SchematronError> {
        let focus = Focus::node(NodeRef::Node(n));
        let depth = env.depth();
        let eval_err = |error: XPathError| SchematronError::Evaluation {
            context: rule.context_text.clone(),
            location: location(doc, n),
            error,
        };
        let mut result = Ok(());
        for item in &rule.items {
            match item {
                RuleItem::Let(l) => bind_let(env, l, &focus),
                RuleItem::Check(c) => {
                    let v = match c.test.evaluate_bool(env, &focus) {
                        Ok(v) => v,
                        Err(e) => {
                            result = Err(eval_err(e));
                            break;
                        }
                    };
                    if v == c.is_assert {
                        continue;
                    }
                    let text = match render(env, doc, &c.message, &focus) {
                        Ok(t) => t,
                        Err(e) => {
                            result = Err(eval_err(e));
                            break;
                        }
                    };
                    let diagnostics = match c
                        .diagnostics
                        .iter()
                        .map(|d| render(env, doc, d, &focus))
                        .collect::<Result<Vec<_>, _>>()
                    {
                        Ok(d) => d,
                        Err(e) => {
                            result = Err(eval_err(e));
                            break;
                        }
                    };
                    let (line, column) = doc.position(n);
                    let f = Finding {
                        id: c.id.clone().or_else(|| message_id(&text)),
                        text,
                        test: c.test_text.clone(),
                        location: location(doc, n),
                        line,
                        column,
                        role: c.role.clone(),
                        pattern: pattern.id.clone(),
                        diagnostics,
                    };
                    if c.is_assert {
                        report.failed_asserts.push(f);
                    } else {
                        report.successful_reports.push(f);
                    }
                }
            }
        }
        env.truncate(depth);
        result
    }
}

/// The text before the first `|` of a message, when it looks like an identifier.
fn message_id(text: &str) -> Option<String> {
    let (head, _) = text.split_once('|')?;
    let head = head.trim();
    (!head.is_empty() && head.len() <= 40).then(|| head.to_owned())
}

fn bind_let(env: &mut Env<'_>, l: &Let, focus: &Focus) {
    let value = match &l.value {
        LetValue::Expr(x) => x.evaluate(env, focus),
        LetValue::Template(t) => {
            let mut s = String::new();
            run_template(env, t, focus, &mut s).map(|()| vec![Item::Atomic(Atomic::Untyped(s))])
        }
    };
    match value {
        Ok(v) => env.bind(l.name.clone(), v),
        Err(e) => env.bind_error(l.name.clone(), e),
    }
}

fn run_template(
    env: &mut Env<'_>,
    t: &[TplPart],
    focus: &Focus,
    out: &mut String,
) -> Result<(), XPathError> {
    for p in t {
        match p {
            TplPart::Text(s) => out.push_str(s),
            TplPart::ValueOf(x) => out.push_str(&x.evaluate_string(env, focus)?),
            TplPart::ForEach(x, body) => {
                let items = x.evaluate(env, focus)?;
                let size = items.len();
                for (i, item) in items.into_iter().enumerate() {
                    let f = Focus {
                        item: Some(item),
                        pos: i + 1,
                        size,
                    };
                    run_template(env, body, &f, out)?;
                }
            }
        }
    }
    Ok(())
}

fn render(
    env: &mut Env<'_>,
    doc: &Document,
    parts: &[MsgPart],
    focus: &Focus,
) -> Result<String, XPathError> {
    let mut s = String::new();
    for p in parts {
        match p {
            MsgPart::Text(t) => s.push_str(t),
            MsgPart::Name(None) => {
                if let Some(Item::Node(NodeRef::Node(n))) = &focus.item {
                    if let Some(id) = doc.name_id(*n) {
                        let nm = doc.name(id);
                        if !nm.prefix.is_empty() {
                            s.push_str(&nm.prefix);
                            s.push(':');
                        }
                        s.push_str(&nm.local);
                    }
                }
            }
            MsgPart::Name(Some(x)) => {
                let v = x.evaluate(env, focus)?;
                if let Some(Item::Node(n)) = v.first() {
                    let nm = match n {
                        NodeRef::Node(id) => doc.name_id(*id).map(|i| doc.name(i)),
                        NodeRef::Attr(a) => Some(doc.attr_name(*a)),
                    };
                    if let Some(nm) = nm {
                        if !nm.prefix.is_empty() {
                            s.push_str(&nm.prefix);
                            s.push(':');
                        }
                        s.push_str(&nm.local);
                    }
                }
            }
            MsgPart::ValueOf(x) => s.push_str(&x.evaluate_string(env, focus)?),
        }
    }
    Ok(s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// SVRL location of an element, as the ISO skeleton writes it.
pub fn location(doc: &Document, n: NodeId) -> String {
    let mut chain = Vec::new();
    let mut cur = Some(n);
    while let Some(x) = cur {
        if doc.kind(x) == NodeKind::Element {
            chain.push(x);
        }
        cur = doc.parent(x);
    }
    let mut s = String::new();
    for &e in chain.iter().rev() {
        let ns = doc.namespace(e);
        let local = doc.local_name(e);
        let mut k = 1;
        let mut p = doc.prev_sibling(e);
        while let Some(q) = p {
            if doc.kind(q) == NodeKind::Element {
                let same = if ns.is_empty() {
                    lexical(doc, q) == lexical(doc, e)
                } else {
                    doc.local_name(q) == local && doc.namespace(q) == ns
                };
                if same {
                    k += 1;
                }
            }
            p = doc.prev_sibling(q);
        }
        if ns.is_empty() {
            s.push_str(&format!("/{}[{k}]", lexical(doc, e)));
        } else {
            s.push_str(&format!("/*:{local}[namespace-uri()='{ns}'][{k}]"));
        }
    }
    s
}

fn lexical(doc: &Document, n: NodeId) -> String {
    match doc.name_id(n) {
        Some(id) => {
            let nm = doc.name(id);
            if nm.prefix.is_empty() {
                nm.local.to_string()
            } else {
                format!("{}:{}", nm.prefix, nm.local)
            }
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
