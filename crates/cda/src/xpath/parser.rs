//! Lexer and recursive-descent parser of XPath 2.0 (the grammar of the W3C recommendation,
//! without schema-import features), producing the [`Ast`].

use super::ast::*;
use super::names;
use super::value::Atomic;
use super::XPathError;
use regex::Regex;
use std::collections::HashMap;
use std::sync::Arc;

const XS: &str = "http://www.w3.org/2001/XMLSchema";
const FN: &str = "http://www.w3.org/2005/xpath-functions";

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i64),
    Dec(f64),
    Dbl(f64),
    Str(String),
    /// A QName or NCName as written (`p:l` or `l`).
    Name(String),
    /// `p:*`
    PrefixStar(String),
    /// `*:l`
    StarLocal(String),
    /// `axis::`
    Axis(String),
    Dollar,
    Sym(&'static str),
    Eof,
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || (!c.is_ascii() && !c.is_whitespace())
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == '-' || c == '.' || c == '\u{B7}'
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, XPathError> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let mut out = Vec::new();
    let mut i = 0;
    let err = |pos: usize, msg: &str| XPathError::Syntax {
        position: pos,
        message: msg.to_owned(),
    };
    while i < chars.len() {
        let (pos, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        // comments (: ... :), nested
        if c == '(' && at(i + 1) == Some(':') {
            let mut depth = 0usize;
            loop {
                match (at(i), at(i + 1)) {
                    (Some('('), Some(':')) => {
                        depth += 1;
                        i += 2;
                    }
                    (Some(':'), Some(')')) => {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    }
                    (Some(_), _) => i += 1,
                    (None, _) => return Err(err(pos, "unterminated comment")),
                }
            }
            continue;
        }
        if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match at(i) {
                    None => return Err(err(pos, "unterminated string literal")),
                    Some(q) if q == c => {
                        if at(i + 1) == Some(c) {
                            s.push(c);
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(o) => {
                        s.push(o);
                        i += 1;
                    }
                }
            }
            out.push((Tok::Str(s), pos));
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && at(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            while at(i).is_some_and(|d| d.is_ascii_digit()) {
                i += 1;
            }
            let mut kind = 0; // 0 int, 1 dec, 2 dbl
            if at(i) == Some('.') {
                kind = 1;
                i += 1;
                while at(i).is_some_and(|d| d.is_ascii_digit()) {
                    i += 1;
                }
            }
            if matches!(at(i), Some('e' | 'E')) {
                let save = i;
                i += 1;
                if matches!(at(i), Some('+' | '-')) {
                    i += 1;
                }
                if at(i).is_some_and(|d| d.is_ascii_digit()) {
                    kind = 2;
                    while at(i).is_some_and(|d| d.is_ascii_digit()) {
                        i += 1;
                    }
                } else {
                    i = save;
                }
            }
            let text: String = chars[start..i].iter().map(|&(_, c)| c).collect();
            if at(i).is_some_and(is_name_start) {
                return Err(err(pos, "a number must not be followed by a name"));
            }
            let tok = match kind {
                0 => match text.parse::<i64>() {
                    Ok(v) => Tok::Int(v),
                    Err(_) => Tok::Dec(text.parse().map_err(|_| err(pos, "bad number"))?),
                },
                1 => Tok::Dec(text.parse().map_err(|_| err(pos, "bad number"))?),
                _ => Tok::Dbl(text.parse().map_err(|_| err(pos, "bad number"))?),
            };
            out.push((tok, pos));
            continue;
        }
        if is_name_start(c) {
            let start = i;
            while at(i).is_some_and(is_name_char) {
                i += 1;
            }
            let mut name: String = chars[start..i].iter().map(|&(_, c)| c).collect();
            if at(i) == Some(':') && at(i + 1) == Some(':') {
                i += 2;
                out.push((Tok::Axis(name), pos));
                continue;
            }
            if at(i) == Some(':') && at(i + 1) == Some('*') {
                i += 2;
                out.push((Tok::PrefixStar(name), pos));
                continue;
            }
            if at(i) == Some(':') && at(i + 1).is_some_and(is_name_start) {
                i += 1;
                name.push(':');
                while at(i).is_some_and(is_name_char) {
                    name.push(chars[i].1);
                    i += 1;
                }
            }
            // allow whitespace between an axis name and "::"
            let mut j = i;
            while at(j).is_some_and(char::is_whitespace) {
                j += 1;
            }
            if at(j) == Some(':') && at(j + 1) == Some(':') && Axis::from_name(&name).is_some() {
                i = j + 2;
                out.push((Tok::Axis(name), pos));
                continue;
            }
            out.push((Tok::Name(name), pos));
            continue;
        }
        if c == '*' && at(i + 1) == Some(':') && at(i + 2).is_some_and(is_name_start) {
            i += 2;
            let start = i;
            while at(i).is_some_and(is_name_char) {
                i += 1;
            }
            let name: String = chars[start..i].iter().map(|&(_, c)| c).collect();
            out.push((Tok::StarLocal(name), pos));
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)]
            .iter()
            .map(|&(_, c)| c)
            .collect();
        let sym: &'static str = match two.as_str() {
            "//" => "//",
            "!=" => "!=",
            "<=" => "<=",
            ">=" => ">=",
            "<<" => "<<",
            ">>" => ">>",
            ".." => "..",
            "::" => "::",
            _ => match c {
                '/' => "/",
                '(' => "(",
                ')' => ")",
                '[' => "[",
                ']' => "]",
                ',' => ",",
                '@' => "@",
                '.' => ".",
                '|' => "|",
                '=' => "=",
                '<' => "<",
                '>' => ">",
                '+' => "+",
                '-' => "-",
                '*' => "*",
                '?' => "?",
                '$' => "$",
                _ => return Err(err(pos, &format!("unexpected character {c:?}"))),
            },
        };
        i += sym.chars().count();
        if sym == "$" {
            out.push((Tok::Dollar, pos));
        } else {
            out.push((Tok::Sym(sym), pos));
        }
    }
    out.push((Tok::Eof, src.len()));
    Ok(out)
}

/// Parses an expression with the given in-scope namespace prefixes.
pub fn parse(src: &str, namespaces: &HashMap<String, String>) -> Result<Ast, XPathError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        i: 0,
        ns: namespaces,
        depth: 0,
    };
    let e = p.expr()?;
    if p.peek() != &Tok::Eof {
        return Err(p.error("unexpected token after the end of the expression"));
    }
    if ast_depth(&e) > MAX_AST_DEPTH {
        return Err(XPathError::Syntax {
            position: 0,
            message: format!("expression nested deeper than {MAX_AST_DEPTH} levels"),
        });
    }
    let mut e = e;
    mark_name_only(&mut e);
    Ok(e)
}

/// Wraps every predicate whose value depends on the context node's name alone in
/// [`Ast::NameOnly`] (see [`name_only`]).
fn mark_name_only(a: &mut Ast) {
    let preds = |preds: &mut Vec<Ast>| {
        for p in preds.iter_mut() {
            if name_only(p) {
                let inner = std::mem::replace(p, Ast::ContextItem);
                let id = super::names::name_only_id(&inner);
                *p = Ast::NameOnly(id, Box::new(inner));
            } else {
                mark_name_only(p);
            }
        }
    };
    match a {
        Ast::Literal(_) | Ast::Var(_) | Ast::ContextItem | Ast::NameOnly(..) => {}
        Ast::Path { steps, .. } => {
            for s in steps {
                match s {
                    Step::Axis { preds: p, .. } => preds(p),
                    Step::Filter { expr, preds: p } => {
                        mark_name_only(expr);
                        preds(p);
                    }
                }
            }
        }
        Ast::Filter(e, p) => {
            mark_name_only(e);
            preds(p);
        }
        Ast::Sequence(v) | Ast::Call(_, v, _) => v.iter_mut().for_each(mark_name_only),
        Ast::Or(l, r)
        | Ast::And(l, r)
        | Ast::General(_, l, r)
        | Ast::Value(_, l, r)
        | Ast::NodeCompare(_, l, r)
        | Ast::Range(l, r)
        | Ast::Arith(_, l, r)
        | Ast::Set(_, l, r) => {
            mark_name_only(l);
            mark_name_only(r);
        }
        Ast::Negate(e)
        | Ast::InstanceOf(e, _)
        | Ast::TreatAs(e, _)
        | Ast::CastAs(e, ..)
        | Ast::CastableAs(e, ..) => mark_name_only(e),
        Ast::If(c, t, e) => {
            mark_name_only(c);
            mark_name_only(t);
            mark_name_only(e);
        }
        Ast::For(b, body) => {
            b.iter_mut().for_each(|(_, e)| mark_name_only(e));
            mark_name_only(body);
        }
        Ast::Quantified { bindings, test, .. } => {
            bindings.iter_mut().for_each(|(_, e)| mark_name_only(e));
            mark_name_only(test);
        }
    }
}

/// True when `p`, as a predicate, is a boolean whose value depends on the context node's
/// name alone: built from `local-name()`, `name()`, `namespace-uri()` of the context node,
/// literals, comparisons, `and`/`or` and pure string functions (never a number, which would
/// be a position).
pub(crate) fn name_only(p: &Ast) -> bool {
    let boolean_top = matches!(
        p,
        Ast::And(..) | Ast::Or(..) | Ast::General(..) | Ast::Value(..)
    ) || matches!(
        p,
        Ast::Call(
            Func::Not | Func::Boolean | Func::Contains | Func::StartsWith | Func::EndsWith,
            ..
        )
    );
    boolean_top && uses_name(p) && name_pure(p)
}

/// Any call of a name function on the context node.
fn uses_name(a: &Ast) -> bool {
    match a {
        Ast::Call(Func::LocalName | Func::Name | Func::NamespaceUri, args, _) => {
            matches!(args.as_slice(), [] | [Ast::ContextItem])
        }
        Ast::Call(_, args, _) => args.iter().any(uses_name),
        Ast::Or(l, r) | Ast::And(l, r) | Ast::General(_, l, r) | Ast::Value(_, l, r) => {
            uses_name(l) || uses_name(r)
        }
        _ => false,
    }
}

/// Built only from what [`name_only`] allows.
fn name_pure(a: &Ast) -> bool {
    match a {
        Ast::Literal(_) => true,
        Ast::Call(Func::LocalName | Func::Name | Func::NamespaceUri, args, _) => {
            matches!(args.as_slice(), [] | [Ast::ContextItem])
        }
        // Functions of their arguments only (with arguments: without, some read the context).
        Ast::Call(
            Func::Contains
            | Func::StartsWith
            | Func::EndsWith
            | Func::Not
            | Func::Boolean
            | Func::Concat
            | Func::UpperCase
            | Func::LowerCase
            | Func::Substring
            | Func::SubstringBefore
            | Func::SubstringAfter
            | Func::StringLength
            | Func::NormalizeSpace
            | Func::Translate,
            args,
            _,
        ) => !args.is_empty() && args.iter().all(name_pure),
        Ast::Call(Func::True | Func::False, args, _) => args.is_empty(),
        Ast::Or(l, r) | Ast::And(l, r) | Ast::General(_, l, r) | Ast::Value(_, l, r) => {
            name_pure(l) && name_pure(r)
        }
        _ => false,
    }
}

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    i: usize,
    ns: &'a HashMap<String, String>,
    depth: usize,
}

/// Deepest nesting of parenthesised/predicate/argument expressions accepted by the parser.
const MAX_DEPTH: usize = 48;
/// Deepest expression tree accepted (evaluation recurses along it).
pub const MAX_AST_DEPTH: usize = 96;

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].0
    }
    fn peek_at(&self, k: usize) -> &Tok {
        &self.toks[(self.i + k).min(self.toks.len() - 1)].0
    }
    fn pos(&self) -> usize {
        self.toks[self.i.min(self.toks.len() - 1)].1
    }
    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }
    fn error(&self, msg: &str) -> XPathError {
        XPathError::Syntax {
            position: self.pos(),
            message: format!("{msg} (found {:?})", self.peek()),
        }
    }
    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Sym(x) if *x == s)
    }
    fn is_kw(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Name(x) if x == s)
    }
    fn expect_sym(&mut self, s: &str) -> Result<(), XPathError> {
        if self.is_sym(s) {
            self.next();
            Ok(())
        } else {
            Err(self.error(&format!("expected {s:?}")))
        }
    }
    fn expect_kw(&mut self, s: &str) -> Result<(), XPathError> {
        if self.is_kw(s) {
            self.next();
            Ok(())
        } else {
            Err(self.error(&format!("expected {s:?}")))
        }
    }

    fn resolve(&self, qname: &str, default_ns: &str) -> Result<(Arc<str>, Arc<str>), XPathError> {
        match qname.split_once(':') {
            Some((p, l)) => {
                let uri =
                    match p {
                        "xs" | "xsd" if !self.ns.contains_key(p) => XS,
                        "fn" if !self.ns.contains_key(p) => FN,
                        "xml" => crate::xml::XML_NS,
                        _ => self.ns.get(p).map(String::as_str).ok_or_else(|| {
                            XPathError::Syntax {
                                position: self.pos(),
                                message: format!("undeclared namespace prefix {p:?}"),
                            }
                        })?,
                    };
                Ok((uri.into(), l.into()))
            }
            None => Ok((default_ns.into(), qname.into())),
        }
    }

    fn expr(&mut self) -> Result<Ast, XPathError> {
        let first = self.expr_single()?;
        if !self.is_sym(",") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.is_sym(",") {
            self.next();
            items.push(self.expr_single()?);
        }
        Ok(Ast::Sequence(items))
    }

    fn expr_single(&mut self) -> Result<Ast, XPathError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("expression nested too deeply"));
        }
        let r = self.expr_single_inner();
        self.depth -= 1;
        r
    }

    fn bindings(&mut self, sep: &str) -> Result<Vec<(Arc<str>, Ast)>, XPathError> {
        let mut out = Vec::new();
        loop {
            if self.next() != Tok::Dollar {
                return Err(self.error("expected a variable"));
            }
            let Tok::Name(n) = self.next() else {
                return Err(self.error("expected a variable name"));
            };
            self.expect_kw(sep)?;
            let e = self.expr_single()?;
            out.push((Arc::from(n.as_str()), e));
            if self.is_sym(",") {
                self.next();
            } else {
                return Ok(out);
            }
        }
    }

    fn expr_single_inner(&mut self) -> Result<Ast, XPathError> {
        if self.is_kw("for") && self.peek_at(1) == &Tok::Dollar {
            self.next();
            let b = self.bindings("in")?;
            self.expect_kw("return")?;
            let body = self.expr_single()?;
            return Ok(Ast::For(b, Box::new(body)));
        }
        if (self.is_kw("some") || self.is_kw("every")) && self.peek_at(1) == &Tok::Dollar {
            let every = self.is_kw("every");
            self.next();
            let b = self.bindings("in")?;
            self.expect_kw("satisfies")?;
            let test = self.expr_single()?;
            return Ok(Ast::Quantified {
                every,
                bindings: b,
                test: Box::new(test),
            });
        }
        if self.is_kw("if") && self.peek_at(1) == &Tok::Sym("(") {
            self.next();
            self.next();
            let c = self.expr()?;
            self.expect_sym(")")?;
            self.expect_kw("then")?;
            let t = self.expr_single()?;
            self.expect_kw("else")?;
            let e = self.expr_single()?;
            return Ok(Ast::If(Box::new(c), Box::new(t), Box::new(e)));
        }
        self.or_expr()
    }

    fn or_expr(&mut self) -> Result<Ast, XPathError> {
        let mut items = vec![self.and_expr()?];
        while self.is_kw("or") {
            self.next();
            items.push(self.and_expr()?);
        }
        Ok(balanced(items, &|l, r| Ast::Or(Box::new(l), Box::new(r))))
    }

    fn and_expr(&mut self) -> Result<Ast, XPathError> {
        let mut items = vec![self.comparison()?];
        while self.is_kw("and") {
            self.next();
            items.push(self.comparison()?);
        }
        Ok(balanced(items, &|l, r| Ast::And(Box::new(l), Box::new(r))))
    }

    fn comparison(&mut self) -> Result<Ast, XPathError> {
        let l = self.range()?;
        let general = match self.peek() {
            Tok::Sym("=") => Some(CmpOp::Eq),
            Tok::Sym("!=") => Some(CmpOp::Ne),
            Tok::Sym("<") => Some(CmpOp::Lt),
            Tok::Sym("<=") => Some(CmpOp::Le),
            Tok::Sym(">") => Some(CmpOp::Gt),
            Tok::Sym(">=") => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = general {
            self.next();
            let r = self.range()?;
            return Ok(Ast::General(op, Box::new(l), Box::new(r)));
        }
        let value = match self.peek() {
            Tok::Name(n) => match n.as_str() {
                "eq" => Some(CmpOp::Eq),
                "ne" => Some(CmpOp::Ne),
                "lt" => Some(CmpOp::Lt),
                "le" => Some(CmpOp::Le),
                "gt" => Some(CmpOp::Gt),
                "ge" => Some(CmpOp::Ge),
                _ => None,
            },
            _ => None,
        };
        if let Some(op) = value {
            self.next();
            let r = self.range()?;
            return Ok(Ast::Value(op, Box::new(l), Box::new(r)));
        }
        let node = match self.peek() {
            Tok::Name(n) if n == "is" => Some(NodeCmp::Is),
            Tok::Sym("<<") => Some(NodeCmp::Before),
            Tok::Sym(">>") => Some(NodeCmp::After),
            _ => None,
        };
        if let Some(op) = node {
            self.next();
            let r = self.range()?;
            return Ok(Ast::NodeCompare(op, Box::new(l), Box::new(r)));
        }
        Ok(l)
    }

    fn range(&mut self) -> Result<Ast, XPathError> {
        let l = self.additive()?;
        if self.is_kw("to") {
            self.next();
            let r = self.additive()?;
            return Ok(Ast::Range(Box::new(l), Box::new(r)));
        }
        Ok(l)
    }

    fn additive(&mut self) -> Result<Ast, XPathError> {
        let mut l = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Tok::Sym("+") => ArithOp::Add,
                Tok::Sym("-") => ArithOp::Sub,
                _ => return Ok(l),
            };
            self.next();
            let r = self.multiplicative()?;
            l = Ast::Arith(op, Box::new(l), Box::new(r));
        }
    }

    fn multiplicative(&mut self) -> Result<Ast, XPathError> {
        let mut l = self.union()?;
        loop {
            let op = match self.peek() {
                Tok::Sym("*") => ArithOp::Mul,
                Tok::Name(n) if n == "div" => ArithOp::Div,
                Tok::Name(n) if n == "idiv" => ArithOp::IDiv,
                Tok::Name(n) if n == "mod" => ArithOp::Mod,
                _ => return Ok(l),
            };
            self.next();
            let r = self.union()?;
            l = Ast::Arith(op, Box::new(l), Box::new(r));
        }
    }

    fn union(&mut self) -> Result<Ast, XPathError> {
        let mut items = vec![self.intersect()?];
        while self.is_sym("|") || self.is_kw("union") {
            self.next();
            items.push(self.intersect()?);
        }
        Ok(balanced(items, &|l, r| {
            Ast::Set(SetOp::Union, Box::new(l), Box::new(r))
        }))
    }

    fn intersect(&mut self) -> Result<Ast, XPathError> {
        let mut l = self.instance_of()?;
        loop {
            let op = if self.is_kw("intersect") {
                SetOp::Intersect
            } else if self.is_kw("except") {
                SetOp::Except
            } else {
                return Ok(l);
            };
            self.next();
            let r = self.instance_of()?;
            l = Ast::Set(op, Box::new(l), Box::new(r));
        }
    }

    fn instance_of(&mut self) -> Result<Ast, XPathError> {
        let l = self.treat()?;
        if self.is_kw("instance") && matches!(self.peek_at(1), Tok::Name(n) if n == "of") {
            self.next();
            self.next();
            let t = self.sequence_type()?;
            return Ok(Ast::InstanceOf(Box::new(l), t));
        }
        Ok(l)
    }

    fn treat(&mut self) -> Result<Ast, XPathError> {
        let l = self.castable()?;
        if self.is_kw("treat") && matches!(self.peek_at(1), Tok::Name(n) if n == "as") {
            self.next();
            self.next();
            let t = self.sequence_type()?;
            return Ok(Ast::TreatAs(Box::new(l), t));
        }
        Ok(l)
    }

    fn castable(&mut self) -> Result<Ast, XPathError> {
        let l = self.cast()?;
        if self.is_kw("castable") && matches!(self.peek_at(1), Tok::Name(n) if n == "as") {
            self.next();
            self.next();
            let (t, opt) = self.single_type()?;
            return Ok(Ast::CastableAs(Box::new(l), t, opt));
        }
        Ok(l)
    }

    fn cast(&mut self) -> Result<Ast, XPathError> {
        let l = self.unary()?;
        if self.is_kw("cast") && matches!(self.peek_at(1), Tok::Name(n) if n == "as") {
            self.next();
            self.next();
            let (t, opt) = self.single_type()?;
            return Ok(Ast::CastAs(Box::new(l), t, opt));
        }
        Ok(l)
    }

    fn atomic_type(&mut self) -> Result<AtomicType, XPathError> {
        let Tok::Name(n) = self.next() else {
            return Err(self.error("expected a type name"));
        };
        let (ns, local) = self.resolve(&n, XS)?;
        if &*ns != XS {
            return Err(self.error(&format!("unknown type {n}")));
        }
        atomic_type_named(&local).ok_or_else(|| self.error(&format!("unsupported type {n}")))
    }

    fn single_type(&mut self) -> Result<(AtomicType, bool), XPathError> {
        let t = self.atomic_type()?;
        let opt = if self.is_sym("?") {
            self.next();
            true
        } else {
            false
        };
        Ok((t, opt))
    }

    fn sequence_type(&mut self) -> Result<SeqType, XPathError> {
        if self.is_kw("empty-sequence") && self.peek_at(1) == &Tok::Sym("(") {
            self.next();
            self.next();
            self.expect_sym(")")?;
            return Ok(SeqType::Empty);
        }
        let item = if self.is_kw("item") && self.peek_at(1) == &Tok::Sym("(") {
            self.next();
            self.next();
            self.expect_sym(")")?;
            ItemType::Item
        } else if let Some(kt) = self.kind_test()? {
            ItemType::Node(kt)
        } else {
            ItemType::Atomic(self.atomic_type()?)
        };
        let occ = match self.peek() {
            Tok::Sym("?") => Occurrence::Optional,
            Tok::Sym("*") => Occurrence::ZeroOrMore,
            Tok::Sym("+") => Occurrence::OneOrMore,
            _ => Occurrence::One,
        };
        if occ != Occurrence::One {
            self.next();
        }
        Ok(SeqType::Of(item, occ))
    }

    fn unary(&mut self) -> Result<Ast, XPathError> {
        let mut neg = false;
        let mut any = false;
        loop {
            if self.is_sym("-") {
                neg = !neg;
                any = true;
                self.next();
            } else if self.is_sym("+") {
                any = true;
                self.next();
            } else {
                break;
            }
        }
        let e = self.path()?;
        Ok(if neg {
            Ast::Negate(Box::new(e))
        } else if any {
            Ast::Arith(
                ArithOp::Add,
                Box::new(Ast::Literal(Atomic::Integer(0))),
                Box::new(e),
            )
        } else {
            e
        })
    }

    fn can_start_step(&self) -> bool {
        match self.peek() {
            Tok::Name(_) | Tok::PrefixStar(_) | Tok::StarLocal(_) | Tok::Axis(_) => true,
            Tok::Int(_) | Tok::Dec(_) | Tok::Dbl(_) | Tok::Str(_) | Tok::Dollar => true,
            Tok::Sym(s) => matches!(*s, "@" | "." | ".." | "*" | "("),
            _ => false,
        }
    }

    fn path(&mut self) -> Result<Ast, XPathError> {
        if self.is_sym("/") {
            self.next();
            if !self.can_start_step() {
                return Ok(Ast::Path {
                    start: PathStart::Root,
                    steps: Vec::new(),
                });
            }
            let mut steps = Vec::new();
            self.relative(&mut steps)?;
            return Ok(Ast::Path {
                start: PathStart::Root,
                steps,
            });
        }
        if self.is_sym("//") {
            self.next();
            let mut steps = vec![desc_or_self()];
            self.relative(&mut steps)?;
            return Ok(simplify(Ast::Path {
                start: PathStart::Root,
                steps,
            }));
        }
        let mut steps = Vec::new();
        self.relative(&mut steps)?;
        if steps.len() == 1 {
            if let Step::Filter { .. } = &steps[0] {
                if let Some(Step::Filter { expr, preds }) = steps.pop() {
                    return Ok(if preds.is_empty() {
                        *expr
                    } else {
                        Ast::Filter(expr, preds)
                    });
                }
            }
        }
        Ok(simplify(Ast::Path {
            start: PathStart::Context,
            steps,
        }))
    }

    fn relative(&mut self, steps: &mut Vec<Step>) -> Result<(), XPathError> {
        steps.push(self.step()?);
        loop {
            if self.is_sym("/") {
                self.next();
            } else if self.is_sym("//") {
                self.next();
                steps.push(desc_or_self());
            } else {
                return Ok(());
            }
            steps.push(self.step()?);
        }
    }

    fn predicates(&mut self) -> Result<Vec<Ast>, XPathError> {
        let mut preds = Vec::new();
        while self.is_sym("[") {
            self.next();
            preds.push(self.expr()?);
            self.expect_sym("]")?;
        }
        Ok(preds)
    }

    fn step(&mut self) -> Result<Step, XPathError> {
        if self.is_sym("..") {
            self.next();
            let preds = self.predicates()?;
            return Ok(Step::axis(Axis::Parent, NodeTest::AnyNode, preds));
        }
        if self.is_sym("@") {
            self.next();
            let test = self.node_test(Axis::Attribute)?;
            let preds = self.predicates()?;
            return Ok(Step::axis(Axis::Attribute, test, preds));
        }
        if let Tok::Axis(a) = self.peek().clone() {
            self.next();
            let axis =
                Axis::from_name(&a).ok_or_else(|| self.error(&format!("unknown axis {a}")))?;
            if axis == Axis::Namespace {
                return Err(self.error("the namespace axis is not supported"));
            }
            let test = self.node_test(axis)?;
            let preds = self.predicates()?;
            return Ok(Step::axis(axis, test, preds));
        }
        let is_name_step = match self.peek() {
            Tok::Sym("*") | Tok::PrefixStar(_) | Tok::StarLocal(_) => true,
            Tok::Name(n) => self.peek_at(1) != &Tok::Sym("(") || is_kind_test_name(n),
            _ => false,
        };
        if is_name_step {
            let is_attr_kind = self.is_kw("attribute");
            let axis = if is_attr_kind {
                Axis::Attribute
            } else {
                Axis::Child
            };
            let test = self.node_test(axis)?;
            let preds = self.predicates()?;
            return Ok(Step::axis(axis, test, preds));
        }
        let e = self.primary()?;
        let preds = self.predicates()?;
        Ok(Step::Filter {
            expr: Box::new(e),
            preds,
        })
    }

    fn kind_test(&mut self) -> Result<Option<NodeTest>, XPathError> {
        let Tok::Name(n) = self.peek().clone() else {
            return Ok(None);
        };
        if !is_kind_test_name(&n) || self.peek_at(1) != &Tok::Sym("(") {
            return Ok(None);
        }
        self.next();
        self.next();
        let t = match n.as_str() {
            "node" => NodeTest::AnyNode,
            "text" => NodeTest::Text,
            "comment" => NodeTest::Comment,
            "document-node" => {
                if !self.is_sym(")") {
                    // document-node(element(...)): accept and ignore the inner test
                    self.kind_test()?;
                }
                NodeTest::DocumentNode
            }
            "processing-instruction" => match self.peek().clone() {
                Tok::Name(t) | Tok::Str(t) => {
                    self.next();
                    NodeTest::Pi(Some(t.into()))
                }
                _ => NodeTest::Pi(None),
            },
            "element" | "attribute" | "schema-element" | "schema-attribute" => {
                let name = match self.peek().clone() {
                    Tok::Sym("*") => {
                        self.next();
                        None
                    }
                    Tok::Name(q) => {
                        self.next();
                        let default = "";
                        Some(self.resolve(&q, default)?)
                    }
                    _ => None,
                };
                if self.is_sym(",") {
                    self.next();
                    self.next(); // type name, ignored (untyped documents)
                    if self.is_sym("?") {
                        self.next();
                    }
                }
                if n.starts_with("schema-") {
                    return Err(self.error("schema-aware tests are not supported"));
                }
                if n == "element" {
                    NodeTest::Element(name)
                } else {
                    NodeTest::Attribute(name)
                }
            }
            _ => return Err(self.error("unknown kind test")),
        };
        self.expect_sym(")")?;
        Ok(Some(t))
    }

    fn node_test(&mut self, axis: Axis) -> Result<NodeTest, XPathError> {
        if let Some(k) = self.kind_test()? {
            return Ok(k);
        }
        match self.next() {
            Tok::Sym("*") => Ok(NodeTest::Name {
                ns: None,
                local: None,
                id: names::NO_NAME,
            }),
            Tok::PrefixStar(p) => {
                let (ns, _) = self.resolve(&format!("{p}:x"), "")?;
                Ok(NodeTest::Name {
                    ns: Some(ns),
                    local: None,
                    id: names::NO_NAME,
                })
            }
            Tok::StarLocal(l) => Ok(NodeTest::Name {
                ns: None,
                local: Some(l.into()),
                id: names::NO_NAME,
            }),
            Tok::Name(q) => {
                let _ = axis;
                let (ns, local) = self.resolve(&q, "")?;
                let id = names::intern(&ns, &local);
                Ok(NodeTest::Name {
                    ns: Some(ns),
                    local: Some(local),
                    id,
                })
            }
            _ => Err(self.error("expected a node test")),
        }
    }

    fn primary(&mut self) -> Result<Ast, XPathError> {
        match self.next() {
            Tok::Int(v) => Ok(Ast::Literal(Atomic::Integer(v))),
            Tok::Dec(v) => Ok(Ast::Literal(Atomic::Decimal(v))),
            Tok::Dbl(v) => Ok(Ast::Literal(Atomic::Double(v))),
            Tok::Str(s) => Ok(Ast::Literal(Atomic::String(s))),
            Tok::Dollar => match self.next() {
                Tok::Name(n) => Ok(Ast::Var(n.as_str().into())),
                _ => Err(self.error("expected a variable name")),
            },
            Tok::Sym("(") => {
                if self.is_sym(")") {
                    self.next();
                    return Ok(Ast::Sequence(Vec::new()));
                }
                let e = self.expr()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Tok::Sym(".") => Ok(Ast::ContextItem),
            Tok::Name(n) if self.is_sym("(") => {
                self.next();
                let mut args = Vec::new();
                if !self.is_sym(")") {
                    loop {
                        args.push(self.expr_single()?);
                        if self.is_sym(",") {
                            self.next();
                        } else {
                            break;
                        }
                    }
                }
                self.expect_sym(")")?;
                self.function(&n, args)
            }
            _ => {
                self.i = self.i.saturating_sub(1);
                Err(self.error("expected an expression"))
            }
        }
    }

    fn function(&self, name: &str, args: Vec<Ast>) -> Result<Ast, XPathError> {
        let (ns, local) = self.resolve(name, FN)?;
        let n = args.len();
        if &*ns == XS {
            let t = atomic_type_named(&local)
                .ok_or_else(|| self.error(&format!("unknown constructor function {name}")))?;
            if n != 1 {
                return Err(self.error(&format!("{name}() takes one argument")));
            }
            return Ok(Ast::Call(Func::Cast(t), args, None));
        }
        if &*ns != FN {
            return Err(self.error(&format!("unknown function {name}")));
        }
        use Func::*;
        let (f, min, max) = match &*local {
            "count" => (Count, 1, 1),
            "not" => (Not, 1, 1),
            "true" => (True, 0, 0),
            "false" => (False, 0, 0),
            "boolean" => (Boolean, 1, 1),
            "string" => (String, 0, 1),
            "data" => (Data, 1, 1),
            "number" => (Number, 0, 1),
            "string-length" => (StringLength, 0, 1),
            "normalize-space" => (NormalizeSpace, 0, 1),
            "contains" => (Contains, 2, 3),
            "starts-with" => (StartsWith, 2, 3),
            "ends-with" => (EndsWith, 2, 3),
            "substring" => (Substring, 2, 3),
            "substring-before" => (SubstringBefore, 2, 3),
            "substring-after" => (SubstringAfter, 2, 3),
            "concat" => (Concat, 2, usize::MAX),
            "string-join" => (StringJoin, 2, 2),
            "upper-case" => (UpperCase, 1, 1),
            "lower-case" => (LowerCase, 1, 1),
            "translate" => (Translate, 3, 3),
            "matches" => (Matches, 2, 3),
            "replace" => (Replace, 3, 4),
            "tokenize" => (Tokenize, 2, 3),
            "local-name" => (LocalName, 0, 1),
            "name" => (Name, 0, 1),
            "namespace-uri" => (NamespaceUri, 0, 1),
            "exists" => (Exists, 1, 1),
            "empty" => (Empty, 1, 1),
            "sum" => (Sum, 1, 2),
            "avg" => (Avg, 1, 1),
            "min" => (Min, 1, 2),
            "max" => (Max, 1, 2),
            "round" => (Round, 1, 1),
            "floor" => (Floor, 1, 1),
            "ceiling" => (Ceiling, 1, 1),
            "abs" => (Abs, 1, 1),
            "position" => (Position, 0, 0),
            "last" => (Last, 0, 0),
            "distinct-values" => (DistinctValues, 1, 2),
            "root" => (Root, 0, 1),
            "reverse" => (Reverse, 1, 1),
            "doc" => (Doc, 1, 1),
            _ => return Err(self.error(&format!("unknown function {name}()"))),
        };
        if n < min || n > max {
            return Err(self.error(&format!("wrong number of arguments ({n}) for {name}()")));
        }
        // Precompile a literal regular expression once.
        let mut re = None;
        if matches!(f, Matches | Replace | Tokenize) {
            let flags = match args.get(if f == Matches || f == Tokenize { 2 } else { 3 }) {
                Some(Ast::Literal(Atomic::String(fl))) => Some(fl.clone()),
                None => Some(std::string::String::new()),
                _ => None,
            };
            if let (Some(Ast::Literal(Atomic::String(p))), Some(fl)) = (args.get(1), flags) {
                re = Some(Arc::new(compile_regex(p, &fl).map_err(|m| self.error(&m))?));
            }
        }
        Ok(Ast::Call(f, args, re))
    }
}

/// Builds a balanced tree of an associative operator (`or`, `and`, union): evaluation stays
/// left to right, and the tree's depth grows with the logarithm of the chain's length.
fn balanced(mut items: Vec<Ast>, join: &dyn Fn(Ast, Ast) -> Ast) -> Ast {
    if items.len() == 1 {
        if let Some(one) = items.pop() {
            return one;
        }
    }
    let right = items.split_off(items.len() / 2);
    join(balanced(items, join), balanced(right, join))
}

/// Depth of an expression tree.
pub fn ast_depth(a: &Ast) -> usize {
    let max = |v: &mut dyn Iterator<Item = usize>| v.max().unwrap_or(0);
    1 + match a {
        Ast::Literal(_) | Ast::Var(_) | Ast::ContextItem => 0,
        Ast::Path { steps, .. } => {
            max(&mut steps.iter().map(|s| match s {
                Step::Axis { preds, .. } => max(&mut preds.iter().map(ast_depth)),
                Step::Filter { expr, preds } => {
                    ast_depth(expr).max(max(&mut preds.iter().map(ast_depth)))
                }
            })) + 1
        }
        Ast::Filter(e, preds) => ast_depth(e).max(max(&mut preds.iter().map(ast_depth))),
        Ast::Sequence(v) => max(&mut v.iter().map(ast_depth)),
        Ast::Call(_, args, _) => max(&mut args.iter().map(ast_depth)),
        Ast::Or(l, r)
        | Ast::And(l, r)
        | Ast::General(_, l, r)
        | Ast::Value(_, l, r)
        | Ast::NodeCompare(_, l, r)
        | Ast::Range(l, r)
        | Ast::Arith(_, l, r)
        | Ast::Set(_, l, r) => ast_depth(l).max(ast_depth(r)),
        Ast::Negate(e)
        | Ast::InstanceOf(e, _)
        | Ast::TreatAs(e, _)
        | Ast::CastAs(e, ..)
        | Ast::CastableAs(e, ..)
        | Ast::NameOnly(_, e) => ast_depth(e),
        Ast::If(c, t, e) => ast_depth(c).max(ast_depth(t)).max(ast_depth(e)),
        Ast::For(b, body) => max(&mut b.iter().map(|(_, e)| ast_depth(e))).max(ast_depth(body)),
        Ast::Quantified { bindings, test, .. } => {
            max(&mut bindings.iter().map(|(_, e)| ast_depth(e))).max(ast_depth(test))
        }
    }
}

fn is_kind_test_name(n: &str) -> bool {
    matches!(
        n,
        "node"
            | "text"
            | "comment"
            | "processing-instruction"
            | "element"
            | "attribute"
            | "document-node"
            | "schema-element"
            | "schema-attribute"
    )
}

fn atomic_type_named(local: &str) -> Option<AtomicType> {
    Some(match local {
        "string" | "normalizedString" | "token" | "anyURI" | "NCName" | "QName" => {
            AtomicType::String
        }
        "untypedAtomic" => AtomicType::UntypedAtomic,
        "integer" | "int" | "long" | "short" | "nonNegativeInteger" | "positiveInteger" => {
            AtomicType::Integer
        }
        "decimal" => AtomicType::Decimal,
        "double" | "float" => AtomicType::Double,
        "boolean" => AtomicType::Boolean,
        "date" => AtomicType::Date,
        "dateTime" => AtomicType::DateTime,
        "anyAtomicType" => AtomicType::AnyAtomic,
        _ => return None,
    })
}

fn desc_or_self() -> Step {
    Step::axis(Axis::DescendantOrSelf, NodeTest::AnyNode, Vec::new())
}

/// True when a predicate's value cannot be a number and does not use the context position or
/// size: then `child::x[p]` under every node selects the same nodes as `descendant::x[p]`.
fn position_free(p: &Ast) -> bool {
    let boolean_top = match p {
        Ast::And(..) | Ast::Or(..) | Ast::General(..) | Ast::Value(..) | Ast::NodeCompare(..) => {
            true
        }
        Ast::Quantified { .. } | Ast::InstanceOf(..) | Ast::CastableAs(..) | Ast::NameOnly(..) => {
            true
        }
        Ast::Call(f, ..) => matches!(
            f,
            Func::Not
                | Func::True
                | Func::False
                | Func::Boolean
                | Func::Contains
                | Func::StartsWith
                | Func::EndsWith
                | Func::Matches
                | Func::Exists
                | Func::Empty
        ),
        Ast::Path { steps, .. } => matches!(steps.last(), Some(Step::Axis { .. })),
        _ => false,
    };
    boolean_top && !uses_focus_size(p)
}

/// Conservative: any call of position() or last() anywhere.
fn uses_focus_size(a: &Ast) -> bool {
    match a {
        Ast::Call(Func::Position | Func::Last, ..) => true,
        Ast::Call(_, args, _) => args.iter().any(uses_focus_size),
        Ast::Literal(_) | Ast::Var(_) | Ast::ContextItem => false,
        Ast::Path { steps, .. } => steps.iter().any(|s| match s {
            Step::Axis { preds, .. } => preds.iter().any(uses_focus_size),
            Step::Filter { expr, preds } => {
                uses_focus_size(expr) || preds.iter().any(uses_focus_size)
            }
        }),
        Ast::Filter(e, preds) => uses_focus_size(e) || preds.iter().any(uses_focus_size),
        Ast::Sequence(v) => v.iter().any(uses_focus_size),
        Ast::Or(l, r)
        | Ast::And(l, r)
        | Ast::General(_, l, r)
        | Ast::Value(_, l, r)
        | Ast::NodeCompare(_, l, r)
        | Ast::Range(l, r)
        | Ast::Arith(_, l, r)
        | Ast::Set(_, l, r) => uses_focus_size(l) || uses_focus_size(r),
        Ast::Negate(e)
        | Ast::InstanceOf(e, _)
        | Ast::TreatAs(e, _)
        | Ast::CastAs(e, ..)
        | Ast::CastableAs(e, ..)
        | Ast::NameOnly(_, e) => uses_focus_size(e),
        Ast::If(c, t, e) => uses_focus_size(c) || uses_focus_size(t) || uses_focus_size(e),
        Ast::For(b, body) => b.iter().any(|(_, e)| uses_focus_size(e)) || uses_focus_size(body),
        Ast::Quantified { bindings, test, .. } => {
            bindings.iter().any(|(_, e)| uses_focus_size(e)) || uses_focus_size(test)
        }
    }
}

/// `descendant-or-self::node()/child::x[p]` is `descendant::x[p]` when every `p` is
/// position-free (see [`position_free`]).
pub(crate) fn simplify(ast: Ast) -> Ast {
    let Ast::Path { start, steps } = ast else {
        return ast;
    };
    let mut out: Vec<Step> = Vec::with_capacity(steps.len());
    for s in steps {
        if let Step::Axis {
            axis: Axis::Child,
            preds,
            test,
            ..
        } = &s
        {
            if preds.iter().all(position_free) {
                if let Some(Step::Axis {
                    axis: Axis::DescendantOrSelf,
                    test: NodeTest::AnyNode,
                    preds: p2,
                    ..
                }) = out.last()
                {
                    if p2.is_empty() {
                        let (test, preds) = (test.clone(), preds.clone());
                        out.pop();
                        out.push(Step::axis(Axis::Descendant, test, preds));
                        continue;
                    }
                }
            }
        }
        out.push(s);
    }
    Ast::Path { start, steps: out }
}

/// Translates an XML Schema / XPath regular expression (with flags) for the `regex` crate.
pub fn compile_regex(pattern: &str, flags: &str) -> Result<Regex, String> {
    let mut b = regex::RegexBuilder::new(&translate_regex(pattern));
    for f in flags.chars() {
        match f {
            'i' => {
                b.case_insensitive(true);
            }
            's' => {
                b.dot_matches_new_line(true);
            }
            'm' => {
                b.multi_line(true);
            }
            'x' => {
                b.ignore_whitespace(true);
            }
            _ => return Err(format!("invalid regular expression flag {f:?}")),
        }
    }
    b.size_limit(1 << 22)
        .build()
        .map_err(|e| format!("invalid regular expression {pattern:?}: {e}"))
}

fn translate_regex(p: &str) -> String {
    // XSD character-class escapes \i \c (name chars) have no `regex` equivalent.
    p.replace("\\i", "[\\p{L}_:]")
        .replace("\\I", "[^\\p{L}_:]")
        .replace("\\c", "[\\p{L}\\p{Nd}._:\\-]")
        .replace("\\C", "[^\\p{L}\\p{Nd}._:\\-]")
}
