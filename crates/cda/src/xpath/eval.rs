//! Evaluation of compiled expressions over a [`Document`].

use super::ast::*;
use super::names::{DocNames, NO_NAME};
use super::parser::compile_regex;
use super::value::*;
use super::XPathError;
use crate::xml::{Document, NodeId, NodeKind};
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

type R<T> = Result<T, XPathError>;

/// A variable's value, or the error its evaluation raised.
type Binding = Result<Rc<Sequence>, XPathError>;

/// Dynamic context of one evaluation: the document and the variables in scope.
pub struct Env<'a> {
    doc: &'a Document,
    /// Process-wide id of each of the document's names (for name tests).
    names: DocNames,
    vars: Vec<(Arc<str>, Binding)>,
    /// Spare node vectors for path evaluation.
    bufs: Vec<Vec<NodeRef>>,
    /// Memoised results of plain path steps (see [`StepKey`]): the document does not
    /// change during an evaluation, so a step's result depends on its input alone.
    prefixes: FxHashMap<StepKey, u32>,
    /// The memoised node-sets: `prefix_sets[k]` is the range of `prefix_nodes` holding the
    /// `k`-th set.
    prefix_sets: Vec<(u32, u32)>,
    /// The memoised node-sets' nodes, one set after the other.
    prefix_nodes: Vec<NodeRef>,
    /// Results of name-only predicates ([`Ast::NameOnly`]) by their id, per name of the
    /// document: `table[raw name index]` (the last slot: nodes without a name) is 0 when not
    /// computed yet, else 1 + the boolean.
    name_memo: FxHashMap<u32, Vec<u8>>,
}

/// The input and the memo id (see [`Step::Axis`]) of one plain axis step of a path. The input
/// is a start node (its index) or, at or past the document's node count, an earlier memoised
/// node-set (`node count + its index in the set list`): so the result of a path prefix of
/// any length is found one step after the other, and every path sharing that prefix
/// (`hl7:component/hl7:section[hl7:code[@code='…']]/hl7:entry/…` in dozens of rule
/// contexts and asserts, `count(hl7:recordTarget/hl7:patientRole/hl7:id[@root='…'])` for
/// dozens of roots) reuses it. Only paths worth a lookup are memoised: two plain leading
/// steps or more, or one with predicates.
type StepKey = (u32, u32);

/// Number of leading plain axis steps of `steps` (memoisable), when the path is worth
/// memoising.
fn plain_prefix(steps: &[Step]) -> Option<usize> {
    let mut len = 0;
    let mut filtered = false;
    for step in steps {
        let Step::Axis { memo, preds, .. } = step else {
            break;
        };
        if *memo == NO_MEMO {
            break;
        }
        filtered |= !preds.is_empty();
        len += 1;
    }
    (len >= 2 || (len == 1 && filtered)).then_some(len)
}

/// The focus: context item, position and size.
#[derive(Clone)]
pub struct Focus {
    pub item: Option<Item>,
    pub pos: usize,
    pub size: usize,
}

impl Focus {
    pub fn node(n: NodeRef) -> Focus {
        Focus {
            item: Some(Item::Node(n)),
            pos: 1,
            size: 1,
        }
    }
}

fn dyn_err(code: &str, msg: impl Into<String>) -> XPathError {
    XPathError::Dynamic {
        code: code.to_owned(),
        message: msg.into(),
    }
}

impl<'a> Env<'a> {
    pub fn new(doc: &'a Document) -> Env<'a> {
        Env {
            doc,
            names: DocNames::new(doc),
            vars: Vec::new(),
            bufs: Vec::new(),
            prefixes: FxHashMap::with_capacity_and_hasher(1024, Default::default()),
            prefix_sets: Vec::new(),
            prefix_nodes: Vec::new(),
            name_memo: FxHashMap::default(),
        }
    }

    /// Binds a variable (shadowing any earlier binding of the same name).
    pub fn bind(&mut self, name: Arc<str>, value: Sequence) {
        self.vars.push((name, Ok(Rc::new(value))));
    }

    /// Binds a variable whose evaluation failed: the error is raised only if the variable is
    /// used (like the lazy variables of an XSLT processor).
    pub fn bind_error(&mut self, name: Arc<str>, error: XPathError) {
        self.vars.push((name, Err(error)));
    }

    /// The document evaluated.
    pub fn document(&self) -> &'a Document {
        self.doc
    }

    /// Number of bindings, to restore a scope with [`Env::truncate`].
    pub fn depth(&self) -> usize {
        self.vars.len()
    }

    pub fn truncate(&mut self, depth: usize) {
        self.vars.truncate(depth);
    }

    fn var(&self, name: &str) -> R<Sequence> {
        self.var_ref(name).map(|v| (**v).clone())
    }

    /// A variable's value, shared.
    fn var_ref(&self, name: &str) -> R<&Rc<Sequence>> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| &**n == name)
            .ok_or_else(|| dyn_err("XPST0008", format!("variable ${name} is not defined")))
            .and_then(|(_, v)| match v {
                Ok(v) => Ok(v),
                Err(e) => Err(e.clone()),
            })
    }

    fn context_node(&self, f: &Focus) -> R<NodeRef> {
        match &f.item {
            Some(Item::Node(n)) => Ok(*n),
            Some(Item::Atomic(_)) => Err(dyn_err("XPTY0020", "the context item is not a node")),
            None => Err(dyn_err("XPDY0002", "the context item is undefined")),
        }
    }

    pub fn eval(&mut self, ast: &Ast, f: &Focus) -> R<Sequence> {
        match ast {
            Ast::Literal(a) => Ok(vec![Item::Atomic(a.clone())]),
            Ast::Var(n) => self.var(n),
            Ast::ContextItem => f
                .item
                .clone()
                .map(|i| vec![i])
                .ok_or_else(|| dyn_err("XPDY0002", "the context item is undefined")),
            Ast::Path { start, steps } => self.path(*start, steps, f),
            Ast::Filter(e, preds) => {
                let mut s = self.eval(e, f)?;
                for p in preds {
                    s = self.apply_predicate(s, p)?;
                }
                Ok(s)
            }
            Ast::Sequence(items) => {
                let mut out = Vec::new();
                for i in items {
                    out.extend(self.eval(i, f)?);
                }
                Ok(out)
            }
            Ast::Or(l, r) => {
                let b = self.ebv_of(l, f)? || self.ebv_of(r, f)?;
                Ok(vec![Item::Atomic(Atomic::Boolean(b))])
            }
            Ast::And(l, r) => {
                let b = self.ebv_of(l, f)? && self.ebv_of(r, f)?;
                Ok(vec![Item::Atomic(Atomic::Boolean(b))])
            }
            Ast::General(op, l, r) => Ok(bool_seq(self.general(*op, l, r, f)?)),
            Ast::Value(op, l, r) => {
                let a = self.atomize_expr(l, f)?;
                let b = self.atomize_expr(r, f)?;
                match (a.as_slice(), b.as_slice()) {
                    ([], _) | (_, []) => Ok(Vec::new()),
                    ([x], [y]) => {
                        let x = untyped_to_string(x.clone());
                        let y = untyped_to_string(y.clone());
                        Ok(bool_seq(compare_atomic(*op, &x, &y)?))
                    }
                    _ => Err(dyn_err("XPTY0004", "a value comparison needs single items")),
                }
            }
            Ast::NodeCompare(op, l, r) => {
                let a = self.eval(l, f)?;
                let b = self.eval(r, f)?;
                match (a.as_slice(), b.as_slice()) {
                    ([], _) | (_, []) => Ok(Vec::new()),
                    ([Item::Node(x)], [Item::Node(y)]) => {
                        let (kx, ky) = (x.order_key(self.doc), y.order_key(self.doc));
                        Ok(bool_seq(match op {
                            NodeCmp::Is => kx == ky,
                            NodeCmp::Before => kx < ky,
                            NodeCmp::After => kx > ky,
                        }))
                    }
                    _ => Err(dyn_err("XPTY0004", "a node comparison needs single nodes")),
                }
            }
            Ast::Range(l, r) => {
                let a = self.optional_number(l, f)?;
                let b = self.optional_number(r, f)?;
                match (a, b) {
                    (Some(Atomic::Integer(a)), Some(Atomic::Integer(b))) => {
                        if b.saturating_sub(a) > 10_000_000 {
                            return Err(dyn_err("FOAR0002", "range too large"));
                        }
                        Ok((a..=b).map(|i| Item::Atomic(Atomic::Integer(i))).collect())
                    }
                    (None, _) | (_, None) => Ok(Vec::new()),
                    _ => Err(dyn_err("XPTY0004", "range bounds must be integers")),
                }
            }
            Ast::Arith(op, l, r) => {
                let a = self.optional_number(l, f)?;
                let b = self.optional_number(r, f)?;
                match (a, b) {
                    (Some(a), Some(b)) => Ok(vec![Item::Atomic(arith(*op, &a, &b)?)]),
                    _ => Ok(Vec::new()),
                }
            }
            Ast::Negate(e) => match self.optional_number(e, f)? {
                None => Ok(Vec::new()),
                Some(Atomic::Integer(i)) => Ok(vec![Item::Atomic(Atomic::Integer(-i))]),
                Some(Atomic::Decimal(d)) => Ok(vec![Item::Atomic(Atomic::Decimal(-d))]),
                Some(Atomic::Double(d)) => Ok(vec![Item::Atomic(Atomic::Double(-d))]),
                Some(_) => Err(dyn_err("XPTY0004", "cannot negate a non-number")),
            },
            Ast::Set(op, l, r) => {
                let a = self.nodes_of(l, f)?;
                let b = self.nodes_of(r, f)?;
                let doc = self.doc;
                let mut out: Vec<NodeRef> = match op {
                    SetOp::Union => a.into_iter().chain(b).collect(),
                    SetOp::Intersect => a.into_iter().filter(|x| b.contains(x)).collect(),
                    SetOp::Except => a.into_iter().filter(|x| !b.contains(x)).collect(),
                };
                sort_nodes(doc, &mut out);
                Ok(out.into_iter().map(Item::Node).collect())
            }
            Ast::If(c, t, e) => {
                if self.ebv_of(c, f)? {
                    self.eval(t, f)
                } else {
                    self.eval(e, f)
                }
            }
            Ast::For(bindings, body) => {
                let mut out = Vec::new();
                self.for_each(bindings, f, &mut |env, f| {
                    out.extend(env.eval(body, f)?);
                    Ok(true)
                })?;
                Ok(out)
            }
            Ast::Quantified {
                every,
                bindings,
                test,
            } => {
                let every = *every;
                let mut result = every;
                self.for_each(bindings, f, &mut |env, f| {
                    let b = env.ebv_of(test, f)?;
                    if every && !b {
                        result = false;
                        return Ok(false);
                    }
                    if !every && b {
                        result = true;
                        return Ok(false);
                    }
                    Ok(true)
                })?;
                Ok(bool_seq(result))
            }
            Ast::Call(func, args, re) => self.call(*func, args, re.as_deref(), f),
            Ast::NameOnly(..) => Ok(bool_seq(self.eval_bool(ast, f)?)),
            Ast::InstanceOf(e, t) => {
                let s = self.eval(e, f)?;
                Ok(bool_seq(self.instance_of(&s, t)))
            }
            Ast::TreatAs(e, t) => {
                let s = self.eval(e, f)?;
                if self.instance_of(&s, t) {
                    Ok(s)
                } else {
                    Err(dyn_err(
                        "XPDY0050",
                        "treat as: the value does not match the type",
                    ))
                }
            }
            Ast::CastAs(e, t, opt) => {
                let s = self.atomize_expr(e, f)?;
                match s.as_slice() {
                    [] if *opt => Ok(Vec::new()),
                    [a] => Ok(vec![Item::Atomic(cast(a, *t)?)]),
                    _ => Err(dyn_err("XPTY0004", "cast needs exactly one item")),
                }
            }
            Ast::CastableAs(e, t, opt) => {
                let s = self.atomize_expr(e, f)?;
                Ok(bool_seq(match s.as_slice() {
                    [] => *opt,
                    [a] => cast(a, *t).is_ok(),
                    _ => false,
                }))
            }
        }
    }

    /// A general comparison.
    fn general(&mut self, op: CmpOp, l: &Ast, r: &Ast, f: &Focus) -> R<bool> {
        if let Some(b) = self.fast_string_compare(op, l, r, f)? {
            return Ok(b);
        }
        let a = self.atoms(l, f)?;
        let b = self.atoms(r, f)?;
        for x in a.as_slice() {
            for y in b.as_slice() {
                if general_compare(op, x, y)? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// `nodes = 'literal'` / `nodes != 'literal'` without allocating the nodes' strings
    /// (untypedAtomic against xs:string compares as strings).
    fn fast_string_compare(&mut self, op: CmpOp, l: &Ast, r: &Ast, f: &Focus) -> R<Option<bool>> {
        if let Some(b) = self.var_string_compare(op, l, r)? {
            return Ok(Some(b));
        }
        let (nodes, lit) = match (l, r) {
            (e, Ast::Literal(Atomic::String(s))) | (Ast::Literal(Atomic::String(s)), e)
                if matches!(op, CmpOp::Eq | CmpOp::Ne) && matches!(e, Ast::Path { .. }) =>
            {
                (e, s)
            }
            _ => return Ok(None),
        };
        let eq = op == CmpOp::Eq;
        // `@name = 'literal'` on an element: look at the attribute directly.
        if let (
            Ast::Path {
                start: PathStart::Context,
                steps,
            },
            Some(Item::Node(NodeRef::Node(n))),
        ) = (nodes, &f.item)
        {
            if let [Step::Axis {
                axis: Axis::Attribute,
                test: NodeTest::Name { id, .. },
                preds,
                ..
            }] = steps.as_slice()
            {
                if *id != NO_NAME && preds.is_empty() {
                    let doc = self.doc;
                    if doc.kind(*n) != NodeKind::Element {
                        return Ok(Some(false));
                    }
                    let names = &self.names;
                    return Ok(Some(doc.attributes(*n).any(|a| {
                        names.id(doc.attr_name_id(a)) == *id
                            && (doc.attr_value(a) == lit.as_str()) == eq
                    })));
                }
            }
        }
        match self.eval_path_out(nodes, f)? {
            PathOut::Nodes(v) => {
                let doc = self.doc;
                let b = v
                    .iter()
                    .any(|n| (node_string(doc, *n) == lit.as_str()) == eq);
                self.recycle(v);
                Ok(Some(b))
            }
            PathOut::Items(seq) => {
                for item in &seq {
                    let hit = match item {
                        Item::Node(n) => (node_string(self.doc, *n) == lit.as_str()) == eq,
                        Item::Atomic(a) => general_compare(op, a, &Atomic::String(lit.clone()))?,
                    };
                    if hit {
                        return Ok(Some(true));
                    }
                }
                Ok(Some(false))
            }
        }
    }

    /// `$var = 'literal'` / `$var != 'literal'` (either side) on the variable's value in
    /// place: no copy of the sequence, no string allocated for its nodes. Same results and
    /// errors, in the same order, as the general comparison of the atomized operands.
    fn var_string_compare(&self, op: CmpOp, l: &Ast, r: &Ast) -> R<Option<bool>> {
        if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
            return Ok(None);
        }
        let (name, lit, lit_left) = match (l, r) {
            (Ast::Var(n), Ast::Literal(Atomic::String(s))) => (n, s, false),
            (Ast::Literal(Atomic::String(s)), Ast::Var(n)) => (n, s, true),
            _ => return Ok(None),
        };
        let eq = op == CmpOp::Eq;
        let value = Rc::clone(self.var_ref(name)?);
        let doc = self.doc;
        for item in value.iter() {
            let hit = match item {
                Item::Node(n) => (node_string(doc, *n) == lit.as_str()) == eq,
                Item::Atomic(Atomic::String(x) | Atomic::Untyped(x)) => (x == lit) == eq,
                Item::Atomic(a) => {
                    let lit = Atomic::String(lit.clone());
                    if lit_left {
                        general_compare(op, &lit, a)?
                    } else {
                        general_compare(op, a, &lit)?
                    }
                }
            };
            if hit {
                return Ok(Some(true));
            }
        }
        Ok(Some(false))
    }

    fn for_each(
        &mut self,
        bindings: &[(Arc<str>, Ast)],
        f: &Focus,
        body: &mut dyn FnMut(&mut Env<'a>, &Focus) -> R<bool>,
    ) -> R<bool> {
        let Some(((name, expr), rest)) = bindings.split_first() else {
            return body(self, f);
        };
        let seq = self.eval(expr, f)?;
        for item in seq {
            let d = self.depth();
            self.bind(name.clone(), vec![item]);
            let go_on = self.for_each(rest, f, body);
            self.truncate(d);
            if !go_on? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn instance_of(&self, s: &Sequence, t: &SeqType) -> bool {
        match t {
            SeqType::Empty => s.is_empty(),
            SeqType::Of(it, occ) => {
                let n_ok = match occ {
                    Occurrence::One => s.len() == 1,
                    Occurrence::Optional => s.len() <= 1,
                    Occurrence::ZeroOrMore => true,
                    Occurrence::OneOrMore => !s.is_empty(),
                };
                n_ok && s.iter().all(|i| match (it, i) {
                    (ItemType::Item, _) => true,
                    (ItemType::Node(t), Item::Node(n)) => {
                        node_matches(self.doc, &self.names, *n, t, Axis::Child)
                    }
                    (ItemType::Atomic(t), Item::Atomic(a)) => atomic_is(a, *t),
                    _ => false,
                })
            }
        }
    }

    fn ebv_of(&mut self, e: &Ast, f: &Focus) -> R<bool> {
        self.eval_bool(e, f)
    }

    fn atomize_expr(&mut self, e: &Ast, f: &Focus) -> R<Vec<Atomic>> {
        let s = self.eval(e, f)?;
        Ok(atomize(self.doc, &s))
    }

    /// Like [`Env::atomize_expr`], without allocating a vector for the single values of
    /// literals and `count()`.
    fn atoms(&mut self, e: &Ast, f: &Focus) -> R<Atoms> {
        Ok(match e {
            Ast::Literal(a) => Atoms::One(a.clone()),
            Ast::Call(Func::Count, args, _) => {
                Atoms::One(Atomic::Integer(self.count(&args[0], f)?))
            }
            Ast::Path { start, steps } => match self.path_inner(*start, steps, f)? {
                PathOut::Nodes(v) => {
                    let doc = self.doc;
                    let a = match v.as_slice() {
                        [n] => Atoms::One(Atomic::Untyped(node_string(doc, *n).into_owned())),
                        _ => Atoms::Many(
                            v.iter()
                                .map(|n| Atomic::Untyped(node_string(doc, *n).into_owned()))
                                .collect(),
                        ),
                    };
                    self.recycle(v);
                    a
                }
                PathOut::Items(s) => Atoms::Many(atomize(self.doc, &s)),
            },
            _ => Atoms::Many(self.atomize_expr(e, f)?),
        })
    }

    /// The number of element children named by a path of one unfiltered child step with a
    /// name test (`hl7:code`) from an element (or document) context, counted without building
    /// a node vector; `None` for any other path or context.
    fn child_count(&self, start: PathStart, steps: &[Step], f: &Focus) -> Option<usize> {
        let (
            PathStart::Context,
            [Step::Axis {
                axis: Axis::Child,
                test: NodeTest::Name { id, .. },
                preds,
                ..
            }],
            Some(Item::Node(NodeRef::Node(n))),
        ) = (start, steps, &f.item)
        else {
            return None;
        };
        if *id == NO_NAME || !preds.is_empty() {
            return None;
        }
        Some(
            self.names
                .child_elements(self.doc, *n)
                .iter()
                .filter(|&&(k, _)| k == *id)
                .count(),
        )
    }

    /// `count(e)`, without building the sequence of a path or copying a variable.
    fn count(&mut self, e: &Ast, f: &Focus) -> R<i64> {
        Ok(match e {
            Ast::Var(n) => self.var_ref(n)?.len() as i64,
            Ast::Path { start, steps } => match self.child_count(*start, steps, f) {
                Some(c) => c as i64,
                None => match self.path_inner(*start, steps, f)? {
                    PathOut::Nodes(v) => {
                        let n = v.len() as i64;
                        self.recycle(v);
                        n
                    }
                    PathOut::Items(s) => s.len() as i64,
                },
            },
            _ => self.eval(e, f)?.len() as i64,
        })
    }

    /// A node vector for a path step (reused across steps and paths).
    fn take_buf(&mut self) -> Vec<NodeRef> {
        self.bufs.pop().unwrap_or_else(|| Vec::with_capacity(16))
    }

    /// Gives a node vector back for reuse.
    fn recycle(&mut self, mut v: Vec<NodeRef>) {
        if self.bufs.len() < 32 && v.capacity() <= 4096 {
            v.clear();
            self.bufs.push(v);
        }
    }

    fn optional_number(&mut self, e: &Ast, f: &Focus) -> R<Option<Atomic>> {
        let a = self.atomize_expr(e, f)?;
        match a.as_slice() {
            [] => Ok(None),
            [x] => match x {
                Atomic::Untyped(s) => {
                    Ok(Some(Atomic::Double(parse_double(s).ok_or_else(|| {
                        dyn_err("FORG0001", format!("cannot cast {s:?} to xs:double"))
                    })?)))
                }
                x if x.is_numeric() => Ok(Some(x.clone())),
                x => Err(dyn_err(
                    "XPTY0004",
                    format!("arithmetic on {}", x.type_name()),
                )),
            },
            _ => Err(dyn_err("XPTY0004", "arithmetic needs single items")),
        }
    }

    fn nodes_of(&mut self, e: &Ast, f: &Focus) -> R<Vec<NodeRef>> {
        self.eval(e, f)?
            .into_iter()
            .map(|i| match i {
                Item::Node(n) => Ok(n),
                Item::Atomic(_) => Err(dyn_err("XPTY0004", "a node sequence was expected")),
            })
            .collect()
    }

    fn path(&mut self, start: PathStart, steps: &[Step], f: &Focus) -> R<Sequence> {
        Ok(match self.path_inner(start, steps, f)? {
            PathOut::Nodes(v) => {
                let s = v.iter().copied().map(Item::Node).collect();
                self.recycle(v);
                s
            }
            PathOut::Items(s) => s,
        })
    }

    /// Evaluates a path; node results are kept as plain [`NodeRef`]s (in document order).
    fn path_inner(&mut self, start: PathStart, steps: &[Step], f: &Focus) -> R<PathOut> {
        let first = match start {
            PathStart::Root => {
                self.context_node(f)?;
                NodeRef::Node(self.doc.root())
            }
            PathStart::Context => match &f.item {
                Some(Item::Node(n)) => *n,
                Some(i @ Item::Atomic(_)) => {
                    if steps.is_empty() {
                        return Ok(PathOut::Items(vec![i.clone()]));
                    }
                    return Err(dyn_err(
                        "XPTY0019",
                        "a path step was applied to an atomic value",
                    ));
                }
                None => return Err(dyn_err("XPDY0002", "the context item is undefined")),
            },
        };
        let mut current = self.take_buf();
        let mut rest = steps;
        let plain = match first {
            NodeRef::Node(n) => plain_prefix(steps).map(|k| (n, k)),
            NodeRef::Attr(_) => None,
        };
        match plain {
            Some((n, k)) => {
                let base = self.doc.node_count() as u32;
                // Follow the memoised steps as far as they go.
                let mut input = n.0;
                let mut set = None;
                let mut done = 0;
                for step in &steps[..k] {
                    let Step::Axis { memo, .. } = step else {
                        break;
                    };
                    match self.prefixes.get(&(input, *memo)) {
                        Some(&si) => {
                            set = Some(si);
                            input = base.saturating_add(si);
                            done += 1;
                        }
                        None => break,
                    }
                }
                match set {
                    Some(si) => {
                        let (from, to) = self.prefix_sets[si as usize];
                        current.extend_from_slice(&self.prefix_nodes[from as usize..to as usize]);
                    }
                    None => current.push(first),
                }
                // Then compute (and memoise) the others one at a time.
                while done < k && !current.is_empty() {
                    let Step::Axis { memo, .. } = &steps[done] else {
                        break;
                    };
                    let memo = *memo;
                    // Plain axis steps only ever give nodes.
                    current = match self.run_steps(current, &steps[done..done + 1])? {
                        PathOut::Nodes(v) => v,
                        items @ PathOut::Items(_) => return Ok(items),
                    };
                    done += 1;
                    let from = self.prefix_nodes.len();
                    self.prefix_nodes.extend_from_slice(&current);
                    // Ranges and set tokens are kept as u32: past that size, stop memoising.
                    let si = self.prefix_sets.len();
                    match (
                        u32::try_from(from),
                        u32::try_from(self.prefix_nodes.len()),
                        u32::try_from(si)
                            .ok()
                            .filter(|&si| base.checked_add(si).is_some_and(|t| t != u32::MAX)),
                    ) {
                        (Ok(from), Ok(to), Some(si)) if input != u32::MAX => {
                            self.prefix_sets.push((from, to));
                            self.prefixes.insert((input, memo), si);
                            input = base + si;
                        }
                        _ => input = u32::MAX,
                    }
                }
                rest = &steps[done..];
            }
            None => current.push(first),
        }
        if current.is_empty() {
            return Ok(PathOut::Nodes(current));
        }
        self.run_steps(current, rest)
    }

    /// Applies the last `steps` of a path to the nodes `current` (in document order).
    fn run_steps(&mut self, mut current: Vec<NodeRef>, steps: &[Step]) -> R<PathOut> {
        for (si, step) in steps.iter().enumerate() {
            let last = si + 1 == steps.len();
            let single_input = current.len() == 1;
            let size = current.len();
            let mut out: Vec<NodeRef> = self.take_buf();
            match step {
                Step::Axis {
                    axis, test, preds, ..
                } => {
                    for &ctx in &current {
                        let s0 = out.len();
                        axis_nodes(self.doc, &self.names, ctx, *axis, test, &mut out);
                        for p in preds {
                            self.filter_tail(&mut out, s0, p)?;
                        }
                        if axis.is_reverse() {
                            out[s0..].reverse();
                        }
                    }
                    if !single_input && out.len() > 1 {
                        sort_nodes(self.doc, &mut out);
                    }
                }
                Step::Filter { expr, preds } => {
                    let mut items: Sequence = Vec::new();
                    let mut atomics = false;
                    for (ci, &ctx) in current.iter().enumerate() {
                        let focus = Focus {
                            item: Some(Item::Node(ctx)),
                            pos: ci + 1,
                            size,
                        };
                        let mut seq = self.eval(expr, &focus)?;
                        for p in preds {
                            seq = self.apply_predicate(seq, p)?;
                        }
                        for i in &seq {
                            if matches!(i, Item::Atomic(_)) {
                                atomics = true;
                            }
                        }
                        items.extend(seq);
                    }
                    if atomics {
                        if !last {
                            return Err(dyn_err(
                                "XPTY0019",
                                "a path step was applied to an atomic value",
                            ));
                        }
                        if items.iter().any(|i| matches!(i, Item::Node(_))) {
                            return Err(dyn_err(
                                "XPTY0018",
                                "a path mixes nodes and atomic values",
                            ));
                        }
                        return Ok(PathOut::Items(items));
                    }
                    out.extend(items.into_iter().filter_map(|i| match i {
                        Item::Node(n) => Some(n),
                        Item::Atomic(_) => None,
                    }));
                    if out.len() > 1 {
                        sort_nodes(self.doc, &mut out);
                    }
                }
            }
            let done = std::mem::replace(&mut current, out);
            self.recycle(done);
            if current.is_empty() {
                break;
            }
        }
        Ok(PathOut::Nodes(current))
    }

    /// [`Env::filter_tail`] for a name-only predicate: one memo table for the whole list.
    fn filter_by_name(&mut self, v: &mut Vec<NodeRef>, s0: usize, id: u32, inner: &Ast) -> R<()> {
        let size = v.len() - s0;
        let mut table = self.name_memo.remove(&id).unwrap_or_default();
        let mut w = s0;
        let mut result = Ok(());
        for i in 0..size {
            let n = v[s0 + i];
            let focus = Focus {
                item: Some(Item::Node(n)),
                pos: i + 1,
                size,
            };
            let keep = match self.name_slot(&focus) {
                Some(slot) => self.name_only(&mut table, slot, inner, &focus),
                None => self.eval_bool(inner, &focus),
            };
            match keep {
                Ok(true) => {
                    v[w] = n;
                    w += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.name_memo.insert(id, table);
        result?;
        v.truncate(w);
        Ok(())
    }

    /// Applies a predicate to `v[s0..]` (one context node's step result, in axis order), in
    /// place.
    fn filter_tail(&mut self, v: &mut Vec<NodeRef>, s0: usize, pred: &Ast) -> R<()> {
        let size = v.len() - s0;
        if size == 0 {
            return Ok(());
        }
        if let Ast::Literal(Atomic::Integer(k)) = pred {
            let k = *k;
            if k >= 1 && (k as usize) <= size {
                let x = v[s0 + (k - 1) as usize];
                v.truncate(s0);
                v.push(x);
            } else {
                v.truncate(s0);
            }
            return Ok(());
        }
        if let Ast::NameOnly(id, inner) = pred {
            if *id != NO_MEMO {
                return self.filter_by_name(v, s0, *id, inner);
            }
        }
        let boolean = is_boolean(pred);
        let mut w = s0;
        for i in 0..size {
            let n = v[s0 + i];
            let focus = Focus {
                item: Some(Item::Node(n)),
                pos: i + 1,
                size,
            };
            let keep = if boolean {
                self.eval_bool(pred, &focus)?
            } else {
                let r = self.eval(pred, &focus)?;
                match r.as_slice() {
                    [Item::Atomic(a)] if a.is_numeric() => a.as_f64() == Some((i + 1) as f64),
                    _ => ebv(&r)?,
                }
            };
            if keep {
                v[w] = n;
                w += 1;
            }
        }
        v.truncate(w);
        Ok(())
    }

    /// The effective boolean value of an expression, without building sequences for the
    /// common boolean shapes.
    pub fn eval_bool(&mut self, e: &Ast, f: &Focus) -> R<bool> {
        match e {
            Ast::Or(l, r) => Ok(self.eval_bool(l, f)? || self.eval_bool(r, f)?),
            Ast::And(l, r) => Ok(self.eval_bool(l, f)? && self.eval_bool(r, f)?),
            Ast::General(op, l, r) => self.general(*op, l, r, f),
            Ast::Path { start, steps } => {
                if let Some(c) = self.child_count(*start, steps, f) {
                    return Ok(c > 0);
                }
                Ok(match self.path_inner(*start, steps, f)? {
                    PathOut::Nodes(v) => {
                        let b = !v.is_empty();
                        self.recycle(v);
                        b
                    }
                    PathOut::Items(s) => ebv(&s)?,
                })
            }
            Ast::Call(Func::Not, args, _) => Ok(!self.eval_bool(&args[0], f)?),
            Ast::NameOnly(id, inner) => {
                let Some(slot) = self.name_slot(f).filter(|_| *id != NO_MEMO) else {
                    return self.eval_bool(inner, f);
                };
                let mut table = self.name_memo.remove(id).unwrap_or_default();
                let r = self.name_only(&mut table, slot, inner, f);
                self.name_memo.insert(*id, table);
                r
            }
            Ast::Call(Func::Boolean, args, _) => self.eval_bool(&args[0], f),
            Ast::Call(Func::True, ..) => Ok(true),
            Ast::Call(Func::False, ..) => Ok(false),
            // The string predicates, on borrowed strings (same evaluation as `call`).
            Ast::Call(func @ (Func::Contains | Func::StartsWith | Func::EndsWith), args, _) => {
                let a = self.string_arg(args, 0, f)?;
                let c = self.string_arg(args, 1, f)?;
                Ok(match func {
                    Func::Contains => a.contains(&*c),
                    Func::StartsWith => a.starts_with(&*c),
                    _ => a.ends_with(&*c),
                })
            }
            Ast::Call(Func::Matches, args, re) => {
                let a = self.string_arg(args, 0, f)?;
                let r = self.regex_arg(args, 1, 2, re.as_deref(), f)?;
                Ok(r.is_match(&a))
            }
            Ast::Call(func @ (Func::Exists | Func::Empty), args, _) => {
                let any = match self.eval_path_out(&args[0], f)? {
                    PathOut::Nodes(v) => {
                        let b = !v.is_empty();
                        self.recycle(v);
                        b
                    }
                    PathOut::Items(s) => !s.is_empty(),
                };
                Ok(any == (*func == Func::Exists))
            }
            _ => {
                let s = self.eval(e, f)?;
                ebv(&s)
            }
        }
    }

    /// The memo slot of the context node's name for a name-only predicate: its name's index
    /// in the document's name table, or the table's length for a node without a name;
    /// `None` when the context item is not a node.
    fn name_slot(&self, f: &Focus) -> Option<usize> {
        let raw = match &f.item {
            Some(Item::Node(NodeRef::Node(n))) => self.doc.name_id(*n),
            Some(Item::Node(NodeRef::Attr(a))) => Some(self.doc.attr_name_id(*a)),
            _ => return None,
        };
        Some(raw.map_or(self.doc.name_count(), |r| r.index()))
    }

    /// A name-only predicate's value for the name in `slot`, from `table` (the predicate's
    /// memo, see `name_memo`) or evaluated and recorded there.
    fn name_only(&mut self, table: &mut Vec<u8>, slot: usize, inner: &Ast, f: &Focus) -> R<bool> {
        if let Some(&v) = table.get(slot).filter(|&&v| v != 0) {
            return Ok(v == 2);
        }
        let b = self.eval_bool(inner, f)?;
        if table.len() <= slot {
            table.resize(self.doc.name_count() + 1, 0);
        }
        if let Some(v) = table.get_mut(slot) {
            *v = 1 + u8::from(b);
        }
        Ok(b)
    }

    /// Evaluates `e`, keeping the nodes of a path as plain [`NodeRef`]s.
    fn eval_path_out(&mut self, e: &Ast, f: &Focus) -> R<PathOut> {
        match e {
            Ast::Path { start, steps } => self.path_inner(*start, steps, f),
            _ => Ok(PathOut::Items(self.eval(e, f)?)),
        }
    }

    fn apply_predicate(&mut self, seq: Sequence, pred: &Ast) -> R<Sequence> {
        if seq.is_empty() {
            return Ok(seq);
        }
        if let Ast::Literal(Atomic::Integer(k)) = pred {
            let k = *k;
            return Ok(if k >= 1 && (k as usize) <= seq.len() {
                vec![seq[(k - 1) as usize].clone()]
            } else {
                Vec::new()
            });
        }
        let size = seq.len();
        let mut out = Vec::new();
        for (i, item) in seq.into_iter().enumerate() {
            let focus = Focus {
                item: Some(item),
                pos: i + 1,
                size,
            };
            let v = self.eval(pred, &focus)?;
            let keep = match v.as_slice() {
                [Item::Atomic(a)] if a.is_numeric() => a.as_f64() == Some((i + 1) as f64),
                _ => ebv(&v)?,
            };
            if keep {
                if let Some(it) = focus.item {
                    out.push(it);
                }
            }
        }
        Ok(out)
    }

    /// The string of argument `i` (empty when absent), borrowed from the expression or the
    /// document when possible.
    fn string_arg<'s>(&mut self, args: &'s [Ast], i: usize, f: &Focus) -> R<Cow<'s, str>>
    where
        'a: 's,
    {
        let Some(e) = args.get(i) else {
            return Ok(Cow::Borrowed(""));
        };
        let doc: &'a Document = self.doc;
        match e {
            Ast::Literal(Atomic::String(s)) => return Ok(Cow::Borrowed(s)),
            Ast::Call(Func::LocalName, a, _) if a.is_empty() => {
                if let Some(Item::Node(n)) = &f.item {
                    let nm = match n {
                        NodeRef::Node(id) => doc.name_id(*id).map(|i| doc.name(i)),
                        NodeRef::Attr(a) => Some(doc.attr_name(*a)),
                    };
                    return Ok(Cow::Borrowed(nm.map_or("", |nm| &nm.local)));
                }
            }
            Ast::Path { start, steps } => {
                return match self.path_inner(*start, steps, f)? {
                    PathOut::Nodes(v) => {
                        let r = match v.as_slice() {
                            [] => Ok(Cow::Borrowed("")),
                            [n] => Ok(node_string(doc, *n)),
                            _ => Err(one_string_error(v.len())),
                        };
                        self.recycle(v);
                        r
                    }
                    PathOut::Items(seq) => one_string(doc, &seq).map(Cow::Owned),
                };
            }
            _ => {}
        }
        let seq = self.eval(e, f)?;
        one_string(doc, &seq).map(Cow::Owned)
    }

    /// The string of the argument, or of the context item when the argument is absent.
    fn string_or_context<'s>(&mut self, args: &'s [Ast], f: &Focus) -> R<Cow<'s, str>>
    where
        'a: 's,
    {
        if args.is_empty() {
            match &f.item {
                Some(Item::Node(n)) => Ok(node_string(self.doc, *n)),
                Some(Item::Atomic(a)) => Ok(Cow::Owned(a.to_xpath_string())),
                None => Err(dyn_err("XPDY0002", "the context item is undefined")),
            }
        } else {
            self.string_arg(args, 0, f)
        }
    }

    fn optional_node(&mut self, args: &[Ast], f: &Focus) -> R<Option<NodeRef>> {
        if args.is_empty() {
            return self.context_node(f).map(Some);
        }
        let s = self.eval(&args[0], f)?;
        match s.as_slice() {
            [] => Ok(None),
            [Item::Node(n)] => Ok(Some(*n)),
            [Item::Atomic(_)] => Err(dyn_err("XPTY0004", "a node was expected")),
            _ => Err(dyn_err("XPTY0004", "a single node was expected")),
        }
    }

    /// The regex of a call: the one compiled with the expression (borrowed, so that its
    /// lazy DFA cache is kept across calls), else compiled now.
    fn regex_arg<'r>(
        &mut self,
        args: &[Ast],
        pat: usize,
        flags: usize,
        pre: Option<&'r regex::Regex>,
        f: &Focus,
    ) -> R<Cow<'r, regex::Regex>> {
        if let Some(r) = pre {
            return Ok(Cow::Borrowed(r));
        }
        let p = self.string_arg(args, pat, f)?;
        let fl = self.string_arg(args, flags, f)?;
        compile_regex(&p, &fl)
            .map(Cow::Owned)
            .map_err(|m| dyn_err("FORX0002", m))
    }

    fn call(
        &mut self,
        func: Func,
        args: &[Ast],
        re: Option<&regex::Regex>,
        f: &Focus,
    ) -> R<Sequence> {
        let s = |v: String| Ok(vec![Item::Atomic(Atomic::String(v))]);
        let b = |v: bool| Ok(bool_seq(v));
        let int = |v: i64| Ok(vec![Item::Atomic(Atomic::Integer(v))]);
        match func {
            Func::Count => {
                let n = self.count(&args[0], f)?;
                int(n)
            }
            Func::Not => {
                let v = self.ebv_of(&args[0], f)?;
                b(!v)
            }
            Func::True => b(true),
            Func::False => b(false),
            Func::Boolean => {
                let v = self.ebv_of(&args[0], f)?;
                b(v)
            }
            Func::String => {
                if args.is_empty() {
                    return s(self.string_or_context(args, f)?.into_owned());
                }
                let v = self.eval(&args[0], f)?;
                match v.as_slice() {
                    [] => s(String::new()),
                    [Item::Node(n)] => s(n.string_value(self.doc)),
                    [Item::Atomic(a)] => s(a.to_xpath_string()),
                    _ => Err(dyn_err("XPTY0004", "string() of more than one item")),
                }
            }
            Func::Data => {
                let v = self.atomize_expr(&args[0], f)?;
                Ok(v.into_iter().map(Item::Atomic).collect())
            }
            Func::Number => {
                let a = if args.is_empty() {
                    match &f.item {
                        Some(Item::Node(n)) => vec![Atomic::Untyped(n.string_value(self.doc))],
                        Some(Item::Atomic(a)) => vec![a.clone()],
                        None => return Err(dyn_err("XPDY0002", "the context item is undefined")),
                    }
                } else {
                    self.atomize_expr(&args[0], f)?
                };
                let d = match a.as_slice() {
                    [] => f64::NAN,
                    [x] => to_number(x),
                    _ => return Err(dyn_err("XPTY0004", "number() of more than one item")),
                };
                Ok(vec![Item::Atomic(Atomic::Double(d))])
            }
            Func::StringLength => {
                let v = self.string_or_context(args, f)?;
                int(v.chars().count() as i64)
            }
            Func::NormalizeSpace => {
                let v = self.string_or_context(args, f)?;
                s(v.split([' ', '\t', '\r', '\n'])
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
                    .join(" "))
            }
            Func::Contains
            | Func::StartsWith
            | Func::EndsWith
            | Func::SubstringBefore
            | Func::SubstringAfter => {
                let a = self.string_arg(args, 0, f)?;
                let c = self.string_arg(args, 1, f)?;
                let (a, c) = (&*a, &*c);
                match func {
                    Func::Contains => b(a.contains(c)),
                    Func::StartsWith => b(a.starts_with(c)),
                    Func::EndsWith => b(a.ends_with(c)),
                    Func::SubstringBefore => s(a.find(c).map_or(String::new(), |i| {
                        if c.is_empty() {
                            String::new()
                        } else {
                            a[..i].to_owned()
                        }
                    })),
                    _ => s(a
                        .find(c)
                        .map_or(String::new(), |i| a[i + c.len()..].to_owned())),
                }
            }
            Func::Substring => {
                let a = self.string_arg(args, 0, f)?;
                let start = self.number_arg(&args[1], f)?;
                let len = match args.get(2) {
                    Some(e) => Some(self.number_arg(e, f)?),
                    None => None,
                };
                s(substring(&a, start, len))
            }
            Func::Concat => {
                let mut out = String::new();
                for i in 0..args.len() {
                    out.push_str(&self.string_arg(args, i, f)?);
                }
                s(out)
            }
            Func::StringJoin => {
                let parts = self.atomize_expr(&args[0], f)?;
                let sep = self.string_arg(args, 1, f)?.into_owned();
                s(parts
                    .iter()
                    .map(Atomic::to_xpath_string)
                    .collect::<Vec<_>>()
                    .join(&sep))
            }
            Func::UpperCase => s(self.string_arg(args, 0, f)?.to_uppercase()),
            Func::LowerCase => s(self.string_arg(args, 0, f)?.to_lowercase()),
            Func::Translate => {
                let a = self.string_arg(args, 0, f)?;
                let from: Vec<char> = self.string_arg(args, 1, f)?.chars().collect();
                let to: Vec<char> = self.string_arg(args, 2, f)?.chars().collect();
                s(a.chars()
                    .filter_map(|c| match from.iter().position(|&x| x == c) {
                        Some(i) => to.get(i).copied(),
                        None => Some(c),
                    })
                    .collect())
            }
            Func::Matches => {
                let a = self.string_arg(args, 0, f)?;
                let r = self.regex_arg(args, 1, 2, re, f)?;
                b(r.is_match(&a))
            }
            Func::Replace => {
                let a = self.string_arg(args, 0, f)?;
                let r = self.regex_arg(args, 1, 3, re, f)?;
                let rep = self.string_arg(args, 2, f)?;
                if r.is_match("") {
                    return Err(dyn_err("FORX0003", "the pattern matches the empty string"));
                }
                let rep = xpath_replacement(&rep);
                s(r.replace_all(&a, rep.as_str()).into_owned())
            }
            Func::Tokenize => {
                let a = self.string_arg(args, 0, f)?;
                let r = self.regex_arg(args, 1, 2, re, f)?;
                if a.is_empty() {
                    return Ok(Vec::new());
                }
                Ok(r.split(&a)
                    .map(|p| Item::Atomic(Atomic::String(p.to_owned())))
                    .collect())
            }
            Func::LocalName | Func::Name | Func::NamespaceUri => {
                let Some(n) = self.optional_node(args, f)? else {
                    return s(String::new());
                };
                let nm = match n {
                    NodeRef::Node(id) => self.doc.name_id(id).map(|i| self.doc.name(i)),
                    NodeRef::Attr(a) => Some(self.doc.attr_name(a)),
                };
                let Some(nm) = nm else {
                    return s(String::new());
                };
                s(match func {
                    Func::LocalName => nm.local.to_string(),
                    Func::NamespaceUri => nm.ns.to_string(),
                    _ => lexical_name(nm),
                })
            }
            Func::Exists => {
                let v = self.eval(&args[0], f)?;
                b(!v.is_empty())
            }
            Func::Empty => {
                let v = self.eval(&args[0], f)?;
                b(v.is_empty())
            }
            Func::Sum | Func::Avg | Func::Min | Func::Max => {
                let vals = self.atomize_expr(&args[0], f)?;
                if vals.is_empty() {
                    return match (func, args.get(1)) {
                        (Func::Sum, Some(z)) => self.eval(z, f),
                        (Func::Sum, None) => int(0),
                        _ => Ok(Vec::new()),
                    };
                }
                let nums: Vec<Atomic> = vals
                    .into_iter()
                    .map(|a| match a {
                        Atomic::Untyped(s) => {
                            parse_double(&s).map(Atomic::Double).ok_or_else(|| {
                                dyn_err("FORG0001", format!("cannot cast {s:?} to xs:double"))
                            })
                        }
                        a => Ok(a),
                    })
                    .collect::<R<_>>()?;
                if matches!(func, Func::Min | Func::Max) && nums.iter().all(|a| !a.is_numeric()) {
                    let mut strs: Vec<String> = nums.iter().map(Atomic::to_xpath_string).collect();
                    strs.sort();
                    let v = if func == Func::Min {
                        strs.first()
                    } else {
                        strs.last()
                    };
                    return s(v.cloned().unwrap_or_default());
                }
                let mut acc = nums[0].clone();
                for x in &nums[1..] {
                    acc = match func {
                        Func::Min => {
                            if compare_atomic(CmpOp::Lt, x, &acc)? {
                                x.clone()
                            } else {
                                acc
                            }
                        }
                        Func::Max => {
                            if compare_atomic(CmpOp::Gt, x, &acc)? {
                                x.clone()
                            } else {
                                acc
                            }
                        }
                        _ => arith(ArithOp::Add, &acc, x)?,
                    };
                }
                if func == Func::Avg {
                    acc = arith(ArithOp::Div, &acc, &Atomic::Integer(nums.len() as i64))?;
                }
                Ok(vec![Item::Atomic(acc)])
            }
            Func::Round | Func::Floor | Func::Ceiling | Func::Abs => {
                let Some(x) = self.optional_number(&args[0], f)? else {
                    return Ok(Vec::new());
                };
                let op = |d: f64| match func {
                    Func::Round => (d + 0.5).floor(),
                    Func::Floor => d.floor(),
                    Func::Ceiling => d.ceil(),
                    _ => d.abs(),
                };
                Ok(vec![Item::Atomic(match x {
                    Atomic::Integer(i) => {
                        Atomic::Integer(if func == Func::Abs { i.abs() } else { i })
                    }
                    Atomic::Decimal(d) => Atomic::Decimal(op(d)),
                    Atomic::Double(d) => Atomic::Double(op(d)),
                    o => o,
                })])
            }
            Func::Position => int(f.pos as i64),
            Func::Last => int(f.size as i64),
            Func::DistinctValues => {
                let vals = self.atomize_expr(&args[0], f)?;
                let mut out: Vec<Atomic> = Vec::new();
                for v in vals {
                    let v = untyped_to_string(v);
                    let dup = out
                        .iter()
                        .any(|o| compare_atomic(CmpOp::Eq, o, &v).unwrap_or(false));
                    if !dup {
                        out.push(v);
                    }
                }
                Ok(out.into_iter().map(Item::Atomic).collect())
            }
            Func::Root => match self.optional_node(args, f)? {
                Some(_) => Ok(vec![Item::Node(NodeRef::Node(self.doc.root()))]),
                None => Ok(Vec::new()),
            },
            Func::Reverse => {
                let mut v = self.eval(&args[0], f)?;
                v.reverse();
                Ok(v)
            }
            Func::Doc => Err(dyn_err(
                "FODC0002",
                "doc() is not available: external documents are not loaded",
            )),
            Func::Cast(t) => {
                let v = self.atomize_expr(&args[0], f)?;
                match v.as_slice() {
                    [] => Ok(Vec::new()),
                    [a] => Ok(vec![Item::Atomic(cast(a, t)?)]),
                    _ => Err(dyn_err("XPTY0004", "a constructor function needs one item")),
                }
            }
        }
    }

    fn number_arg(&mut self, e: &Ast, f: &Focus) -> R<f64> {
        Ok(match self.optional_number(e, f)? {
            Some(a) => a.as_f64().unwrap_or(f64::NAN),
            None => f64::NAN,
        })
    }
}

fn xpath_replacement(rep: &str) -> String {
    // XPath uses $1 and \$ / \\; the regex crate uses ${1} and $$.
    let mut out = String::new();
    let mut chars = rep.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    if n == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(n);
                    }
                }
            }
            '$' => {
                let mut d = String::new();
                while let Some(x) = chars.peek().copied().filter(char::is_ascii_digit) {
                    d.push(x);
                    chars.next();
                }
                out.push_str(&format!("${{{d}}}"));
            }
            o => out.push(o),
        }
    }
    out
}

fn lexical_name(nm: &crate::xml::Name) -> String {
    if nm.prefix.is_empty() {
        nm.local.to_string()
    } else {
        format!("{}:{}", nm.prefix, nm.local)
    }
}

/// Atomic values: one (no allocation) or many.
enum Atoms {
    One(Atomic),
    Many(Vec<Atomic>),
}

impl Atoms {
    fn as_slice(&self) -> &[Atomic] {
        match self {
            Atoms::One(a) => std::slice::from_ref(a),
            Atoms::Many(v) => v,
        }
    }
}

/// The result of a path: nodes (in document order), or the atomic values of a last step.
enum PathOut {
    Nodes(Vec<NodeRef>),
    Items(Sequence),
}

/// True when the value of `e` is a boolean or a node sequence, so that as a predicate it
/// means its effective boolean value (never a position).
fn is_boolean(e: &Ast) -> bool {
    match e {
        Ast::Or(..) | Ast::And(..) | Ast::General(..) | Ast::NameOnly(..) => true,
        Ast::Path { steps, .. } => matches!(steps.last(), Some(Step::Axis { .. })),
        Ast::Call(func, ..) => matches!(
            func,
            Func::Not
                | Func::Boolean
                | Func::True
                | Func::False
                | Func::Exists
                | Func::Empty
                | Func::Contains
                | Func::StartsWith
                | Func::EndsWith
                | Func::Matches
        ),
        _ => false,
    }
}

/// String value of a node, borrowed from the document when it is one piece of text.
fn node_string(doc: &Document, n: NodeRef) -> Cow<'_, str> {
    match n {
        NodeRef::Attr(a) => Cow::Borrowed(doc.attr_value(a)),
        NodeRef::Node(id) => match doc.kind(id) {
            NodeKind::Text | NodeKind::Comment | NodeKind::ProcessingInstruction => {
                Cow::Borrowed(doc.text(id))
            }
            NodeKind::Element | NodeKind::Document => {
                let mut one: Option<&str> = None;
                let mut acc: Option<String> = None;
                for i in id.0 + 1..=doc.last_descendant(id).0 {
                    let Some(t) = doc.node(i as usize) else { break };
                    if doc.kind(t) != NodeKind::Text {
                        continue;
                    }
                    let s = doc.text(t);
                    match (&mut acc, one) {
                        (Some(a), _) => a.push_str(s),
                        (None, None) => one = Some(s),
                        (None, Some(first)) => {
                            let mut a = String::with_capacity(first.len() + s.len());
                            a.push_str(first);
                            a.push_str(s);
                            acc = Some(a);
                        }
                    }
                }
                match acc {
                    Some(a) => Cow::Owned(a),
                    None => Cow::Borrowed(one.unwrap_or("")),
                }
            }
        },
    }
}

/// The string of a sequence of at most one item (`""` when empty).
fn one_string(doc: &Document, seq: &[Item]) -> R<String> {
    match seq {
        [] => Ok(String::new()),
        [Item::Node(n)] => Ok(n.string_value(doc)),
        [Item::Atomic(a)] => Ok(a.to_xpath_string()),
        _ => Err(one_string_error(seq.len())),
    }
}

fn one_string_error(len: usize) -> XPathError {
    dyn_err(
        "XPTY0004",
        format!("a sequence of {len} items where one string was expected"),
    )
}

fn bool_seq(b: bool) -> Sequence {
    vec![Item::Atomic(Atomic::Boolean(b))]
}

fn sort_nodes(doc: &Document, nodes: &mut Vec<NodeRef>) {
    nodes.sort_by_key(|n| n.order_key(doc));
    nodes.dedup();
}

/// Atomizes a sequence (nodes become `xs:untypedAtomic`: documents are untyped).
pub fn atomize(doc: &Document, s: &[Item]) -> Vec<Atomic> {
    s.iter()
        .map(|i| match i {
            Item::Node(n) => Atomic::Untyped(n.string_value(doc)),
            Item::Atomic(a) => a.clone(),
        })
        .collect()
}

/// Effective boolean value.
pub fn ebv(s: &[Item]) -> R<bool> {
    match s {
        [] => Ok(false),
        [Item::Node(_), ..] => Ok(true),
        [Item::Atomic(a)] => Ok(match a {
            Atomic::Boolean(b) => *b,
            Atomic::String(s) | Atomic::Untyped(s) => !s.is_empty(),
            Atomic::Integer(i) => *i != 0,
            Atomic::Decimal(d) | Atomic::Double(d) => *d != 0.0 && !d.is_nan(),
            Atomic::Date(_) => {
                return Err(dyn_err(
                    "FORG0006",
                    "no effective boolean value for xs:date",
                ))
            }
        }),
        _ => Err(dyn_err(
            "FORG0006",
            "effective boolean value of a sequence of two or more atomic values",
        )),
    }
}

fn untyped_to_string(a: Atomic) -> Atomic {
    match a {
        Atomic::Untyped(s) => Atomic::String(s),
        o => o,
    }
}

fn to_number(a: &Atomic) -> f64 {
    match a {
        Atomic::String(s) | Atomic::Untyped(s) => parse_double(s).unwrap_or(f64::NAN),
        Atomic::Boolean(b) => f64::from(u8::from(*b)),
        Atomic::Date(_) => f64::NAN,
        o => o.as_f64().unwrap_or(f64::NAN),
    }
}

fn general_compare(op: CmpOp, a: &Atomic, b: &Atomic) -> R<bool> {
    // The common cases, without copying strings: two strings (untypedAtomic compares as a
    // string against a string or untypedAtomic), two numbers, untypedAtomic and a number.
    match (a, b) {
        (Atomic::String(x) | Atomic::Untyped(x), Atomic::String(y) | Atomic::Untyped(y)) => {
            return Ok(ordering_holds(op, Some(x.as_str().cmp(y.as_str()))));
        }
        (x, y) if x.is_numeric() && y.is_numeric() => return compare_atomic(op, x, y),
        (Atomic::Untyped(u), y) if y.is_numeric() => {
            let x = untyped_double(u)?;
            return Ok(ordering_holds(
                op,
                x.partial_cmp(&y.as_f64().unwrap_or(f64::NAN)),
            ));
        }
        (x, Atomic::Untyped(u)) if x.is_numeric() => {
            let y = untyped_double(u)?;
            return Ok(ordering_holds(
                op,
                x.as_f64().unwrap_or(f64::NAN).partial_cmp(&y),
            ));
        }
        _ => {}
    }
    let conv =
        |u: &str, other: &Atomic| -> R<Atomic> {
            Ok(match other {
                Atomic::Untyped(_) | Atomic::String(_) => Atomic::String(u.to_owned()),
                o if o.is_numeric() => Atomic::Double(parse_double(u).ok_or_else(|| {
                    dyn_err("FORG0001", format!("cannot cast {u:?} to xs:double"))
                })?),
                Atomic::Boolean(_) => cast(&Atomic::Untyped(u.to_owned()), AtomicType::Boolean)?,
                Atomic::Date(_) => cast(&Atomic::Untyped(u.to_owned()), AtomicType::Date)?,
                _ => Atomic::String(u.to_owned()),
            })
        };
    let a2 = match a {
        Atomic::Untyped(u) => conv(u, b)?,
        o => o.clone(),
    };
    let b2 = match b {
        Atomic::Untyped(u) => conv(u, a)?,
        o => o.clone(),
    };
    compare_atomic(op, &a2, &b2)
}

fn untyped_double(u: &str) -> R<f64> {
    parse_double(u).ok_or_else(|| dyn_err("FORG0001", format!("cannot cast {u:?} to xs:double")))
}

/// Whether an ordering satisfies `op`; `None` (NaN) satisfies only `!=`.
fn ordering_holds(op: CmpOp, o: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering;
    let Some(o) = o else {
        return op == CmpOp::Ne;
    };
    match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
    }
}

fn compare_atomic(op: CmpOp, a: &Atomic, b: &Atomic) -> R<bool> {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (a, b) {
        (x, y) if x.is_numeric() && y.is_numeric() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x.partial_cmp(&y)
        }
        (Atomic::String(x) | Atomic::Untyped(x), Atomic::String(y) | Atomic::Untyped(y)) => {
            Some(x.cmp(y))
        }
        (Atomic::Boolean(x), Atomic::Boolean(y)) => Some(x.cmp(y)),
        (Atomic::Date(x), Atomic::Date(y)) => Some(x.cmp(y)),
        _ => {
            return Err(dyn_err(
                "XPTY0004",
                format!("cannot compare {} with {}", a.type_name(), b.type_name()),
            ))
        }
    };
    Ok(ordering_holds(op, ord))
}

fn arith(op: ArithOp, a: &Atomic, b: &Atomic) -> R<Atomic> {
    let overflow = || dyn_err("FOAR0002", "integer overflow");
    match (a, b) {
        (Atomic::Integer(x), Atomic::Integer(y)) => {
            let (x, y) = (*x, *y);
            Ok(match op {
                ArithOp::Add => Atomic::Integer(x.checked_add(y).ok_or_else(overflow)?),
                ArithOp::Sub => Atomic::Integer(x.checked_sub(y).ok_or_else(overflow)?),
                ArithOp::Mul => Atomic::Integer(x.checked_mul(y).ok_or_else(overflow)?),
                ArithOp::Div => {
                    if y == 0 {
                        return Err(dyn_err("FOAR0001", "division by zero"));
                    }
                    Atomic::Decimal(x as f64 / y as f64)
                }
                ArithOp::IDiv => {
                    if y == 0 {
                        return Err(dyn_err("FOAR0001", "division by zero"));
                    }
                    Atomic::Integer(x.checked_div(y).ok_or_else(overflow)?)
                }
                ArithOp::Mod => {
                    if y == 0 {
                        return Err(dyn_err("FOAR0001", "division by zero"));
                    }
                    Atomic::Integer(x.checked_rem(y).ok_or_else(overflow)?)
                }
            })
        }
        (x, y) if x.is_numeric() && y.is_numeric() => {
            let dbl = matches!(x, Atomic::Double(_)) || matches!(y, Atomic::Double(_));
            let (p, q) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            let v = match op {
                ArithOp::Add => p + q,
                ArithOp::Sub => p - q,
                ArithOp::Mul => p * q,
                ArithOp::Div => {
                    if !dbl && q == 0.0 {
                        return Err(dyn_err("FOAR0001", "division by zero"));
                    }
                    p / q
                }
                ArithOp::IDiv => {
                    if q == 0.0 || p.is_nan() || q.is_nan() || p.is_infinite() {
                        return Err(dyn_err("FOAR0001", "invalid idiv"));
                    }
                    return Ok(Atomic::Integer((p / q).trunc() as i64));
                }
                ArithOp::Mod => p % q,
            };
            Ok(if dbl {
                Atomic::Double(v)
            } else {
                Atomic::Decimal(v)
            })
        }
        _ => Err(dyn_err(
            "XPTY0004",
            format!("arithmetic on {} and {}", a.type_name(), b.type_name()),
        )),
    }
}

fn atomic_is(a: &Atomic, t: AtomicType) -> bool {
    matches!(
        (a, t),
        (_, AtomicType::AnyAtomic)
            | (Atomic::String(_), AtomicType::String)
            | (Atomic::Untyped(_), AtomicType::UntypedAtomic)
            | (
                Atomic::Integer(_),
                AtomicType::Integer | AtomicType::Decimal
            )
            | (Atomic::Decimal(_), AtomicType::Decimal)
            | (Atomic::Double(_), AtomicType::Double)
            | (Atomic::Boolean(_), AtomicType::Boolean)
            | (Atomic::Date(_), AtomicType::Date)
    )
}

fn cast(a: &Atomic, t: AtomicType) -> R<Atomic> {
    let fail = || {
        dyn_err(
            "FORG0001",
            format!(
                "cannot cast {:?} ({}) to {t:?}",
                a.to_xpath_string(),
                a.type_name()
            ),
        )
    };
    let s = a.to_xpath_string();
    Ok(match t {
        AtomicType::String => Atomic::String(s),
        AtomicType::UntypedAtomic => Atomic::Untyped(s),
        AtomicType::AnyAtomic => a.clone(),
        AtomicType::Integer => match a {
            Atomic::Integer(i) => Atomic::Integer(*i),
            Atomic::Decimal(d) | Atomic::Double(d) if d.is_finite() => {
                Atomic::Integer(d.trunc() as i64)
            }
            Atomic::Boolean(b) => Atomic::Integer(i64::from(*b)),
            Atomic::String(x) | Atomic::Untyped(x) => {
                Atomic::Integer(parse_integer(x).ok_or_else(fail)?)
            }
            _ => return Err(fail()),
        },
        AtomicType::Decimal => match a {
            Atomic::Integer(i) => Atomic::Decimal(*i as f64),
            Atomic::Decimal(d) | Atomic::Double(d) if d.is_finite() => Atomic::Decimal(*d),
            Atomic::Boolean(b) => Atomic::Decimal(f64::from(u8::from(*b))),
            Atomic::String(x) | Atomic::Untyped(x) => {
                Atomic::Decimal(parse_decimal(x).ok_or_else(fail)?)
            }
            _ => return Err(fail()),
        },
        AtomicType::Double => match a {
            Atomic::Boolean(b) => Atomic::Double(f64::from(u8::from(*b))),
            Atomic::String(x) | Atomic::Untyped(x) => {
                Atomic::Double(parse_double(x).ok_or_else(fail)?)
            }
            o if o.is_numeric() => Atomic::Double(o.as_f64().unwrap_or(f64::NAN)),
            _ => return Err(fail()),
        },
        AtomicType::Boolean => match a {
            Atomic::Boolean(b) => Atomic::Boolean(*b),
            o if o.is_numeric() => {
                let d = o.as_f64().unwrap_or(f64::NAN);
                Atomic::Boolean(d != 0.0 && !d.is_nan())
            }
            Atomic::String(x) | Atomic::Untyped(x) => match x.trim() {
                "true" | "1" => Atomic::Boolean(true),
                "false" | "0" => Atomic::Boolean(false),
                _ => return Err(fail()),
            },
            _ => return Err(fail()),
        },
        AtomicType::Date => match a {
            Atomic::Date(d) => Atomic::Date(d.clone()),
            Atomic::String(x) | Atomic::Untyped(x) => Atomic::Date(parse_date(x).ok_or_else(fail)?),
            _ => return Err(fail()),
        },
        AtomicType::DateTime => return Err(dyn_err("XPST0051", "xs:dateTime is not supported")),
    })
}

fn substring(s: &str, start: f64, len: Option<f64>) -> String {
    let round = |d: f64| (d + 0.5).floor();
    let first = round(start);
    let end = match len {
        Some(l) => first + round(l),
        None => f64::INFINITY,
    };
    s.chars()
        .enumerate()
        .filter(|(i, _)| {
            let p = (*i + 1) as f64;
            p >= first && p < end
        })
        .map(|(_, c)| c)
        .collect()
}

/// A name test against the document's name `raw`: by id when the test names both parts,
/// else by strings (wildcards).
fn name_matches(
    doc: &Document,
    names: &DocNames,
    raw: crate::xml::NameId,
    ns: &Option<Arc<str>>,
    local: &Option<Arc<str>>,
    id: u32,
) -> bool {
    if id != NO_NAME {
        return names.id(raw) == id;
    }
    let nm = doc.name(raw);
    local.as_ref().is_none_or(|l| **l == *nm.local) && ns.as_ref().is_none_or(|n| **n == *nm.ns)
}

fn node_matches(doc: &Document, names: &DocNames, n: NodeRef, test: &NodeTest, axis: Axis) -> bool {
    match n {
        NodeRef::Attr(a) => match test {
            NodeTest::AnyNode => true,
            NodeTest::Attribute(None) => true,
            NodeTest::Attribute(Some((ns, l))) => {
                let nm = doc.attr_name(a);
                **ns == *nm.ns && **l == *nm.local
            }
            NodeTest::Name { ns, local, id } => {
                axis == Axis::Attribute
                    && name_matches(doc, names, doc.attr_name_id(a), ns, local, *id)
            }
            _ => false,
        },
        NodeRef::Node(id) => {
            let kind = doc.kind(id);
            match test {
                NodeTest::AnyNode => true,
                NodeTest::Text => kind == NodeKind::Text,
                NodeTest::Comment => kind == NodeKind::Comment,
                NodeTest::DocumentNode => kind == NodeKind::Document,
                NodeTest::Pi(None) => kind == NodeKind::ProcessingInstruction,
                NodeTest::Pi(Some(t)) => {
                    kind == NodeKind::ProcessingInstruction && doc.local_name(id) == &**t
                }
                NodeTest::Element(None) => kind == NodeKind::Element,
                NodeTest::Element(Some((ns, l))) => {
                    kind == NodeKind::Element
                        && doc.namespace(id) == &**ns
                        && doc.local_name(id) == &**l
                }
                NodeTest::Attribute(_) => false,
                NodeTest::Name { ns, local, id: nid } => {
                    kind == NodeKind::Element
                        && axis != Axis::Attribute
                        && doc
                            .name_id(id)
                            .is_some_and(|i| name_matches(doc, names, i, ns, local, *nid))
                }
            }
        }
    }
}

/// Nodes on `axis` from `ctx` that pass `test`, in axis order (reverse axes: nearest first).
fn axis_nodes(
    doc: &Document,
    names: &DocNames,
    ctx: NodeRef,
    axis: Axis,
    test: &NodeTest,
    out: &mut Vec<NodeRef>,
) {
    let mut push = |n: NodeRef| {
        if node_matches(doc, names, n, test, axis) {
            out.push(n);
        }
    };
    let node = match ctx {
        NodeRef::Node(n) => n,
        NodeRef::Attr(a) => {
            let owner = doc.attr_owner(a);
            match axis {
                Axis::SelfAxis => push(ctx),
                Axis::Parent => push(NodeRef::Node(owner)),
                Axis::Ancestor | Axis::AncestorOrSelf => {
                    if axis == Axis::AncestorOrSelf {
                        push(ctx);
                    }
                    let mut p = Some(owner);
                    while let Some(x) = p {
                        push(NodeRef::Node(x));
                        p = doc.parent(x);
                    }
                }
                Axis::DescendantOrSelf => push(ctx),
                Axis::Following => {
                    for i in owner.0 as usize + 1..doc.node_count() {
                        if let Some(n) = doc.node(i) {
                            push(NodeRef::Node(n));
                        }
                    }
                }
                Axis::Preceding => {
                    let anc: Vec<NodeId> =
                        std::iter::successors(Some(owner), |&x| doc.parent(x)).collect();
                    for i in (1..owner.0 as usize).rev() {
                        if let Some(n) = doc.node(i) {
                            if !anc.contains(&n) {
                                push(NodeRef::Node(n));
                            }
                        }
                    }
                }
                _ => {}
            }
            return;
        }
    };
    match axis {
        Axis::Child => {
            if let NodeTest::Name { id, .. } = test {
                if *id != NO_NAME {
                    // Fast path: compare process-wide name ids of the element children.
                    out.extend(
                        names
                            .child_elements(doc, node)
                            .iter()
                            .filter(|&&(k, _)| k == *id)
                            .map(|&(_, c)| NodeRef::Node(NodeId(c))),
                    );
                    return;
                }
            }
            for c in doc.children(node) {
                push(NodeRef::Node(c));
            }
        }
        Axis::Descendant | Axis::DescendantOrSelf => {
            if axis == Axis::DescendantOrSelf {
                push(ctx);
            }
            let range = node.0 + 1..=doc.last_descendant(node).0;
            if let NodeTest::Name { id, .. } = test {
                if *id != NO_NAME {
                    let found = names.elements_in(doc, *id, *range.start(), *range.end());
                    out.extend(found.iter().map(|&i| NodeRef::Node(NodeId(i))));
                    return;
                }
            }
            if let NodeTest::Name {
                ns: None,
                local: None,
                ..
            } = test
            {
                // `*`: every element.
                for i in range {
                    if let Some(n) = doc.node(i as usize) {
                        if doc.kind(n) == NodeKind::Element && doc.name_id(n).is_some() {
                            out.push(NodeRef::Node(n));
                        }
                    }
                }
                return;
            }
            for i in range {
                if let Some(n) = doc.node(i as usize) {
                    push(NodeRef::Node(n));
                }
            }
        }
        Axis::Parent => {
            if let Some(p) = doc.parent(node) {
                push(NodeRef::Node(p));
            }
        }
        Axis::Ancestor | Axis::AncestorOrSelf => {
            let mut p = if axis == Axis::AncestorOrSelf {
                Some(node)
            } else {
                doc.parent(node)
            };
            while let Some(x) = p {
                push(NodeRef::Node(x));
                p = doc.parent(x);
            }
        }
        Axis::FollowingSibling => {
            let mut s = doc.next_sibling(node);
            while let Some(x) = s {
                push(NodeRef::Node(x));
                s = doc.next_sibling(x);
            }
        }
        Axis::PrecedingSibling => {
            let mut s = doc.prev_sibling(node);
            while let Some(x) = s {
                push(NodeRef::Node(x));
                s = doc.prev_sibling(x);
            }
        }
        Axis::Following => {
            for i in doc.last_descendant(node).0 as usize + 1..doc.node_count() {
                if let Some(n) = doc.node(i) {
                    push(NodeRef::Node(n));
                }
            }
        }
        Axis::Preceding => {
            let anc: Vec<NodeId> =
                std::iter::successors(doc.parent(node), |&x| doc.parent(x)).collect();
            for i in (1..node.0 as usize).rev() {
                if let Some(n) = doc.node(i) {
                    if !anc.contains(&n) {
                        push(NodeRef::Node(n));
                    }
                }
            }
        }
        Axis::Attribute => {
            if doc.kind(node) == NodeKind::Element {
                for a in doc.attributes(node) {
                    push(NodeRef::Attr(a));
                }
            }
        }
        Axis::SelfAxis => push(ctx),
        Axis::Namespace => {}
    }
}
