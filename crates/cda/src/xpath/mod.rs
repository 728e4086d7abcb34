//! An XPath 2.0 engine over the [`crate::xml`] tree.
//!
//! Expressions are parsed once into an immutable [`XPath`] (`Send + Sync`) and evaluated
//! against any number of documents, from any thread. The dialect is XPath 2.0 over untyped
//! documents: sequences of nodes and atomic values, general and value comparisons with the
//! untypedAtomic conversion rules, `for`/`some`/`every`/`if`, casts, and the functions the
//! official FSE schematrons use plus the common string/number/sequence ones (see
//! [`ast::Func`]). `doc()` is parsed but refuses to load anything.
//!
//! Dynamic errors (e.g. comparing `"abc"` with a number, a function given a sequence where a
//! single string is expected) are reported as [`XPathError::Dynamic`] with their W3C code,
//! exactly where an XSLT 2.0 processor would raise them.

pub mod ast;
mod eval;
pub(crate) mod names;
mod parser;

pub(crate) use parser::simplify;
pub mod value;

pub use eval::{atomize, ebv, Env, Focus};
pub use value::{Atomic, Item, NodeRef, Sequence};

use crate::xml::Document;
use std::collections::HashMap;
use std::sync::Arc;

/// An XPath problem: a static (syntax) error at compile time, or a dynamic error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XPathError {
    #[error("XPath syntax error at offset {position}: {message}")]
    Syntax { position: usize, message: String },
    #[error("XPath error {code}: {message}")]
    Dynamic { code: String, message: String },
}

/// In-scope namespace prefixes (prefix → URI) for compiling expressions.
pub type Namespaces = HashMap<String, String>;

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct XPath {
    source: Arc<str>,
    ast: Arc<ast::Ast>,
}

impl XPath {
    /// Parses `src` with the given namespace prefixes in scope.
    pub fn compile(src: &str, namespaces: &Namespaces) -> Result<XPath, XPathError> {
        let ast = parser::parse(src, namespaces)?;
        Ok(XPath {
            source: src.into(),
            ast: Arc::new(ast),
        })
    }

    /// Wraps an already built tree (used to turn schematron rule contexts into match
    /// expressions).
    pub(crate) fn from_ast(source: &str, ast: ast::Ast) -> XPath {
        XPath {
            source: source.into(),
            ast: Arc::new(ast),
        }
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The compiled tree.
    pub fn ast(&self) -> &ast::Ast {
        &self.ast
    }

    /// Evaluates with `focus` as context, in `env` (document and variables).
    pub fn evaluate(&self, env: &mut Env<'_>, focus: &Focus) -> Result<Sequence, XPathError> {
        env.eval(&self.ast, focus)
    }

    /// Evaluates to an effective boolean value.
    pub fn evaluate_bool(&self, env: &mut Env<'_>, focus: &Focus) -> Result<bool, XPathError> {
        env.eval_bool(&self.ast, focus)
    }

    /// Evaluates and joins the string values of the items with single spaces (what
    /// `xsl:value-of` produces).
    pub fn evaluate_string(&self, env: &mut Env<'_>, focus: &Focus) -> Result<String, XPathError> {
        let s = self.evaluate(env, focus)?;
        Ok(atomize(env.document(), &s)
            .iter()
            .map(Atomic::to_xpath_string)
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// Convenience: evaluates against a document with its document node as context.
    pub fn evaluate_on(&self, doc: &Document) -> Result<Sequence, XPathError> {
        let mut env = Env::new(doc);
        self.evaluate(&mut env, &Focus::node(NodeRef::Node(doc.root())))
    }
}

#[cfg(test)]
mod tests;
