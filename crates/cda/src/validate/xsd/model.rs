//! The fast verdict of the XSD stage: a compact model of the schema that says "valid" for the
//! common case without driving the `xsd-schema` runtime, and "not sure" for everything else
//! (then the caller runs the full engine, whose report is the one given).
//!
//! The model has two sources:
//! - **compiled from the schema**: per complex type, a deterministic automaton over element
//!   names built (subset construction) from the very content-model automaton the runtime
//!   executes (`xsd_schema::compile_content_model_matcher`); a model with counters,
//!   wildcards or an ambiguous step is "unsupported";
//! - **learnt from the full engine**, per thread, as facts that depend on nothing but their
//!   key: which type governs an element matched by a given particle (or at the root) with a
//!   given `xsi:type` (resolution, derivation and blocking are the runtime's), its content
//!   type, the attribute uses of a complex type (which are required, which carry a value
//!   constraint), the simple type of each use, the values of constrained uses and of
//!   `xsi:` attributes that the runtime accepted. Facts about elements are taken from
//!   documents the runtime found entirely valid; facts about attribute uses from attributes
//!   it accepted without any error.
//!
//! Attribute values are checked with `xsd_schema::validation::validate_simple_type` (memoized
//! per type and value); a value that is not plain (see [`super::plain_value`]) other than a
//! single `ID` makes the path unsure, and `ID`s are checked unique.
//!
//! Anything the model does not know or support (an unknown particle, `xsi:type` or
//! attribute, `xsi:nil`, simple or simple-content types, text in element-only or empty
//! content, a schema with identity constraints, substitution groups or element value
//! constraints) makes the verdict "not sure". "Valid" must be given only when the full
//! engine reports no error; the tests in `super::tests` and `crates/cda/tests/xsd_fast.rs`
//! check that on every official sample and on mutated ones.

use super::{element_scope, plain_value, remembered_type, Declaration, Mapped, Names, Xsi};
use crate::xml::{Document, NodeId, NodeKind};
use rustc_hash::{FxHashMap, FxHashSet};
use std::rc::Rc;
use xsd_schema::compiler::{
    build_substitution_group_map, compile_content_model_matcher, ContentModelMatcher,
};
use xsd_schema::namespace::NamespaceContextSnapshot;
use xsd_schema::types::value::{XmlValue, XmlValueKind};
use xsd_schema::validation::{validate_simple_type, ContentType};
use xsd_schema::{
    ComplexTypeKey, ElementKey, NameId as XsdName, NfaTable, NfaTerm, SchemaSet, TransitionKind,
    TypeKey, XmlTypeCode,
};

/// Most DFA states built for one content model; beyond, the type is unsupported.
const MAX_DFA_STATES: usize = 4096;
/// Most attribute values remembered (per thread and schema set).
const MAX_VALUES: usize = 200_000;
/// Longest attribute value remembered.
const MAX_VALUE_LEN: usize = 256;

/// An element particle: (local name, namespace or `u32::MAX`, declaration, local type).
type Term = (u32, u32, Option<ElementKey>, Option<TypeKey>);

/// An element's `xsi:type` as the model keys it (see [`xsi_key`]).
type XsiKey = Result<Option<(Option<XsdName>, Box<str>)>, ()>;

/// A deterministic automaton over the child element names of a complex type.
struct Dfa {
    start: u32,
    accept: Vec<bool>,
    /// (state, local name, namespace or `u32::MAX`) → (next state, particle id).
    step: FxHashMap<(u32, u32, u32), (u32, u32)>,
}

/// Where an element was matched: at the root (by its name) or by a particle (interned id).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Ctx {
    Root(u32, u32),
    Particle(u32),
}

/// What the runtime decided for an element: its governing type and content type.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Governing {
    ty: TypeKey,
    content: ContentType,
}

/// One attribute use of a complex type, as learnt from the runtime.
#[derive(Default, Clone)]
struct Use {
    /// Bit in the element's "required seen" mask, for required uses.
    required_bit: Option<u32>,
    /// Whether the use is required or has a value constraint (`default` or `fixed`): its
    /// values are then accepted only when the runtime accepted them before.
    constrained: bool,
    /// The use's simple type, once the runtime has validated a value against it.
    ty: Option<TypeKey>,
    /// Values the runtime accepted (constrained uses only).
    accepted: FxHashSet<Box<str>>,
}

/// The attribute uses of a complex type.
#[derive(Default)]
struct Uses {
    by_name: FxHashMap<(u32, u32), Use>,
    required: u32,
    /// More than 64 required uses: not supported.
    too_many: bool,
}

/// How an attribute value stands against a simple type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Valid, nothing the runtime remembers.
    Plain,
    /// Valid, a single `ID` (to be unique in the document).
    Id,
    /// Invalid, or a value the fast path does not handle.
    Unsure,
}

/// What the full engine saw of one element during a run (for learning).
#[derive(Clone)]
pub(super) struct Seen {
    pub(super) node: NodeId,
    /// Governing type and content type, when processed strictly.
    gov: Option<Governing>,
    /// The element's `xsi:type` key, `Err(())` when it has something the model does not
    /// key (then nothing is learnt for it).
    xsi: XsiKey,
}

/// Record of a full-engine run, filled by the walk.
#[derive(Default)]
pub(super) struct Record {
    pub(super) elements: Vec<Seen>,
    /// `xsi:`/`xml:` attributes accepted: (on the root, local, namespace, value).
    pub(super) reserved: Vec<(bool, u32, u32, Box<str>)>,
}

fn ns_raw(ns: Option<XsdName>) -> u32 {
    ns.map_or(u32::MAX, |n| n.0)
}

/// The per-thread fast model of one schema set.
pub(super) struct FastModel {
    enabled: bool,
    particles: FxHashMap<Term, u32>,
    dfas: FxHashMap<ComplexTypeKey, Option<Rc<Dfa>>>,
    /// Element without `xsi:type`.
    plain: FxHashMap<Ctx, Governing>,
    /// Element with `xsi:type`: (context, namespace of its prefix) → raw value → governing.
    typed: FxHashMap<(Ctx, u32), FxHashMap<Box<str>, Governing>>,
    uses: FxHashMap<ComplexTypeKey, Uses>,
    values: FxHashMap<TypeKey, FxHashMap<Box<str>, Class>>,
    value_count: usize,
    reserved: FxHashSet<(bool, u32, u32, Box<str>)>,
    /// Documents answered, and documents handed to the full engine.
    pub(super) answered: u64,
    pub(super) unsure: u64,
}

impl FastModel {
    pub(super) fn new(set: &SchemaSet) -> FastModel {
        let arenas = &set.arenas;
        let enabled = arenas.identity_constraints.is_empty()
            && build_substitution_group_map(set).is_empty()
            && arenas.elements.values().all(|e| {
                e.default_value.is_none()
                    && e.fixed_value.is_none()
                    && e.block.is_empty()
                    && !e.is_abstract
                    && !e.nillable
                    && e.alternatives.is_empty()
            });
        FastModel {
            enabled,
            particles: FxHashMap::default(),
            dfas: FxHashMap::default(),
            plain: FxHashMap::default(),
            typed: FxHashMap::default(),
            uses: FxHashMap::default(),
            values: FxHashMap::default(),
            value_count: 0,
            reserved: FxHashSet::default(),
            answered: 0,
            unsure: 0,
        }
    }

    // ── The verdict ───────────────────────────────────────────────────────

    /// `true` only when the document is valid (the full engine would report nothing);
    /// `false` when not sure.
    pub(super) fn valid(&mut self, set: &SchemaSet, doc: &Document, decls: &[Declaration]) -> bool {
        let sure = self.enabled && self.check(set, doc, decls).is_some();
        if sure {
            self.answered += 1;
        } else {
            self.unsure += 1;
        }
        sure
    }

    fn check(&mut self, set: &SchemaSet, doc: &Document, decls: &[Declaration]) -> Option<()> {
        struct Frame {
            last: NodeId,
            scope: usize,
            content: ContentType,
            dfa: Option<Rc<Dfa>>,
            state: u32,
        }
        let done = |f: &Frame| match &f.dfa {
            Some(d) => d.accept.get(f.state as usize).copied().unwrap_or(false),
            None => f.content == ContentType::Empty,
        };
        let mut names = Names {
            doc,
            set,
            mapped: vec![None; doc.name_count()],
        };
        let mut scopes = vec![NamespaceContextSnapshot::default()];
        let mut stack: Vec<Frame> = Vec::new();
        let mut ids: FxHashSet<&str> = FxHashSet::default();
        let mut decls = decls.iter().peekable();
        let mut element_index = 0usize;
        for i in 1..doc.node_count() {
            let n = doc.node(i)?;
            while let Some(f) = stack.last() {
                if n <= f.last {
                    break;
                }
                if !done(f) {
                    return why("end of content");
                }
                stack.pop();
            }
            match doc.kind(n) {
                NodeKind::Element => {
                    let parent = stack.last().map_or(0, |f| f.scope);
                    let scope = element_scope(&mut scopes, parent, &mut decls, element_index, set);
                    element_index += 1;
                    let m = names.get(doc.name_id(n)?);
                    let ctx = match stack.last_mut() {
                        None => Ctx::Root(m.local.0, ns_raw(m.ns)),
                        Some(f) => {
                            let dfa = f.dfa.as_ref().or_else(|| why("no automaton"))?;
                            let &(next, particle) = dfa
                                .step
                                .get(&(f.state, m.local.0, ns_raw(m.ns)))
                                .or_else(|| why("no step"))?;
                            f.state = next;
                            Ctx::Particle(particle)
                        }
                    };
                    let gov = self
                        .governing(set, doc, n, &mut names, &scopes[scope], ctx)
                        .or_else(|| why("governing"))?;
                    let TypeKey::Complex(ct) = gov.ty else {
                        return why("simple type");
                    };
                    let root = stack.is_empty();
                    self.attributes(set, doc, n, &mut names, ct, root, &mut ids)?;
                    let dfa = match gov.content {
                        ContentType::ElementOnly | ContentType::Mixed => Some(self.dfa(set, ct)?),
                        ContentType::Empty => None,
                        _ => return why("content type"),
                    };
                    let state = dfa.as_ref().map_or(0, |d| d.start);
                    stack.push(Frame {
                        last: doc.last_descendant(n),
                        scope,
                        content: gov.content,
                        dfa,
                        state,
                    });
                }
                NodeKind::Text => match stack.last().map(|f| f.content) {
                    None | Some(ContentType::Mixed) => {}
                    Some(ContentType::ElementOnly)
                        if doc
                            .text(n)
                            .bytes()
                            .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) => {}
                    Some(_) => return why("text"),
                },
                _ => {}
            }
        }
        while let Some(f) = stack.pop() {
            if !done(&f) {
                return why("end of content (last)");
            }
        }
        Some(())
    }

    /// The governing type of element `n` matched in `ctx`, as learnt.
    fn governing(
        &self,
        set: &SchemaSet,
        doc: &Document,
        n: NodeId,
        names: &mut Names<'_, '_>,
        scope: &NamespaceContextSnapshot,
        ctx: Ctx,
    ) -> Option<Governing> {
        match xsi_key(set, doc, n, names, scope).ok()? {
            None => self.plain.get(&ctx).copied(),
            Some((ns, raw)) => self.typed.get(&(ctx, ns_raw(ns)))?.get(&*raw).copied(),
        }
    }

    /// Checks the attributes of element `n` of complex type `ct`.
    #[allow(clippy::too_many_arguments)]
    fn attributes<'d>(
        &mut self,
        set: &SchemaSet,
        doc: &'d Document,
        n: NodeId,
        names: &mut Names<'_, '_>,
        ct: ComplexTypeKey,
        root: bool,
        ids: &mut FxHashSet<&'d str>,
    ) -> Option<()> {
        let mut required: u64 = 0;
        let mut id_count = 0;
        for a in doc.attributes(n) {
            let m: Mapped = names.get(doc.attr_name_id(a));
            let value = doc.attr_value(a);
            match m.xsi {
                Xsi::Type => continue,
                Xsi::Nil => return why("nil"),
                Xsi::Reserved => {
                    let key = (root, m.local.0, ns_raw(m.ns), Box::<str>::from(value));
                    if !self.reserved.contains(&key) {
                        return why("reserved");
                    }
                    continue;
                }
                Xsi::No => {}
            }
            let uses = self.uses.get(&ct).or_else(|| why("uses"))?;
            if uses.too_many {
                return why("too many");
            }
            let u = uses
                .by_name
                .get(&(m.local.0, ns_raw(m.ns)))
                .or_else(|| why("no use"))?;
            if let Some(bit) = u.required_bit {
                required |= 1 << bit;
            }
            if u.constrained {
                if !u.accepted.contains(value) {
                    return why("constrained value");
                }
                continue;
            }
            let t = u.ty.or_else(|| why("use type"))?;
            match self.class(set, t, value) {
                Class::Plain => {}
                Class::Id => {
                    id_count += 1;
                    if !ids.insert(value.trim_matches([' ', '\t', '\r', '\n'])) {
                        return why("duplicate id");
                    }
                }
                Class::Unsure => return why("value"),
            }
        }
        let uses = self.uses.get(&ct)?;
        if required.count_ones() != uses.required {
            return why("required");
        }
        (id_count <= 1 && !uses.too_many && required.count_ones() == uses.required).then_some(())
    }

    fn class(&mut self, set: &SchemaSet, t: TypeKey, value: &str) -> Class {
        if let Some(c) = self.values.get(&t).and_then(|v| v.get(value)) {
            return *c;
        }
        let c = match validate_simple_type(value, t, set) {
            Ok(r) if plain_value(&r.typed_value) || plain_list(&r.typed_value) => Class::Plain,
            Ok(r)
                if r.typed_value.type_code == XmlTypeCode::Id
                    && matches!(r.typed_value.value, XmlValueKind::Atomic(_)) =>
            {
                Class::Id
            }
            _ => Class::Unsure,
        };
        if self.value_count < MAX_VALUES && value.len() <= MAX_VALUE_LEN {
            self.values.entry(t).or_default().insert(value.into(), c);
            self.value_count += 1;
        }
        c
    }

    /// The automaton of `ct`'s content model (`None` when unsupported).
    fn dfa(&mut self, set: &SchemaSet, ct: ComplexTypeKey) -> Option<Rc<Dfa>> {
        if let Some(d) = self.dfas.get(&ct) {
            return d.clone();
        }
        let d = set
            .arenas
            .complex_types
            .get(ct)
            .and_then(|data| compile_content_model_matcher(set, data).ok())
            .and_then(|m| match m {
                ContentModelMatcher::Nfa(nfa) => determinize(&nfa, &mut self.particles),
                _ => why("dfa: matcher"),
            })
            .map(Rc::new);
        self.dfas.insert(ct, d.clone());
        d
    }

    // ── Learning ──────────────────────────────────────────────────────────

    /// Whether the uses of `ct` are known.
    pub(super) fn knows_uses(&self, ct: ComplexTypeKey) -> bool {
        self.uses.contains_key(&ct)
    }

    /// Records the attribute uses of `ct`: (local, namespace, required) and the names of
    /// those with a value constraint.
    pub(super) fn learn_uses(
        &mut self,
        ct: ComplexTypeKey,
        uses: impl IntoIterator<Item = (XsdName, Option<XsdName>, bool)>,
        constrained: impl IntoIterator<Item = (XsdName, Option<XsdName>)>,
    ) {
        let mut out = Uses::default();
        for (local, ns, required) in uses {
            // A required use may carry a `fixed` value that the runtime's list of defaulted
            // attributes does not show: its values are accepted only once seen accepted.
            let mut u = Use {
                constrained: required,
                ..Use::default()
            };
            if required {
                if out.required >= 64 {
                    out.too_many = true;
                } else {
                    u.required_bit = Some(out.required);
                    out.required += 1;
                }
            }
            out.by_name.insert((local.0, ns_raw(ns)), u);
        }
        for (local, ns) in constrained {
            if let Some(u) = out.by_name.get_mut(&(local.0, ns_raw(ns))) {
                u.constrained = true;
            }
        }
        self.uses.insert(ct, out);
    }

    /// Records that the runtime accepted `value` for the use `(local, ns)` of `ct`, of
    /// simple type `t`, without any error; `plain` tells whether the value is plain.
    pub(super) fn learn_attribute(
        &mut self,
        ct: ComplexTypeKey,
        local: XsdName,
        ns: Option<XsdName>,
        t: TypeKey,
        value: &str,
        plain: bool,
    ) {
        let Some(u) = self
            .uses
            .get_mut(&ct)
            .and_then(|u| u.by_name.get_mut(&(local.0, ns_raw(ns))))
        else {
            return;
        };
        match u.ty {
            None => u.ty = Some(t),
            // Never seen: a use has one type. Then trust nothing about it.
            Some(known) if known != t => {
                u.constrained = true;
                u.accepted.clear();
                return;
            }
            Some(_) => {}
        }
        if u.constrained
            && plain
            && value.len() <= MAX_VALUE_LEN
            && self.value_count < MAX_VALUES
            && u.accepted.insert(value.into())
        {
            self.value_count += 1;
        }
    }

    /// What the walk records of element `n`: its governing type and content type (when
    /// processed strictly) and its `xsi:type` key.
    pub(super) fn seen(
        set: &SchemaSet,
        doc: &Document,
        n: NodeId,
        names: &mut Names<'_, '_>,
        scope: &NamespaceContextSnapshot,
        gov: Option<(TypeKey, ContentType)>,
    ) -> Seen {
        Seen {
            node: n,
            gov: gov.map(|(ty, content)| Governing { ty, content }),
            xsi: xsi_key(set, doc, n, names, scope),
        }
    }

    /// Learns from a run the full engine found entirely valid.
    pub(super) fn learn_valid(&mut self, set: &SchemaSet, doc: &Document, record: Record) {
        if !self.enabled {
            return;
        }
        let mut names = Names {
            doc,
            set,
            mapped: vec![None; doc.name_count()],
        };
        for r in record.reserved {
            self.reserved.insert(r);
        }
        let mut index: FxHashMap<NodeId, usize> = FxHashMap::default();
        for (i, s) in record.elements.iter().enumerate() {
            index.insert(s.node, i);
        }
        for s in &record.elements {
            let Some(gov) = s.gov else { continue };
            let m = match doc.name_id(s.node) {
                Some(id) => names.get(id),
                None => continue,
            };
            let ctx = match doc
                .parent(s.node)
                .filter(|&p| doc.kind(p) == NodeKind::Element)
            {
                None => Some(Ctx::Root(m.local.0, ns_raw(m.ns))),
                Some(_) => None,
            };
            if let Some(ctx) = ctx {
                self.learn_governing(ctx, &s.xsi, gov);
            }
            // The children, matched through this element's automaton.
            let TypeKey::Complex(ct) = gov.ty else {
                continue;
            };
            if !matches!(gov.content, ContentType::ElementOnly | ContentType::Mixed) {
                continue;
            }
            let Some(dfa) = self.dfa(set, ct) else {
                continue;
            };
            let mut state = dfa.start;
            for c in doc.child_elements(s.node) {
                let Some(cm) = doc.name_id(c).map(|id| names.get(id)) else {
                    break;
                };
                let Some(&(next, particle)) = dfa.step.get(&(state, cm.local.0, ns_raw(cm.ns)))
                else {
                    break;
                };
                state = next;
                let Some(child) = index.get(&c).map(|&i| &record.elements[i]) else {
                    break;
                };
                if let Some(g) = child.gov {
                    self.learn_governing(Ctx::Particle(particle), &child.xsi, g);
                }
            }
        }
    }

    fn learn_governing(&mut self, ctx: Ctx, xsi: &XsiKey, gov: Governing) {
        match xsi {
            Ok(None) => {
                self.plain.entry(ctx).or_insert(gov);
            }
            Ok(Some((ns, raw))) => {
                self.typed
                    .entry((ctx, ns_raw(*ns)))
                    .or_default()
                    .entry(raw.clone())
                    .or_insert(gov);
            }
            Err(()) => {}
        }
    }
}

/// Whether a typed value is a list of values the runtime remembers nothing of: neither the
/// list's type nor any member's is an `ID`, `IDREF`, `ENTITY`, `QName` or `NOTATION` type
/// (or a list of those), and every member is atomic.
fn plain_list(v: &XmlValue) -> bool {
    let XmlValueKind::List { item_type, items } = &v.value else {
        return false;
    };
    let plain_code = |c: XmlTypeCode| !remembered_type(c);
    plain_code(v.type_code)
        && plain_code(*item_type)
        && items
            .iter()
            .all(|i| plain_code(i.type_code) && matches!(i.value, XmlValueKind::Atomic(_)))
}

/// The `xsi:type` of element `n` as the model keys it: `Ok(None)` without one,
/// `Ok(Some((namespace of its prefix, raw value)))` for a plain `prefix:local` or `local`
/// whose prefix is bound, `Err(())` for anything else (and for `xsi:nil`).
fn xsi_key(
    set: &SchemaSet,
    doc: &Document,
    n: NodeId,
    names: &mut Names<'_, '_>,
    scope: &NamespaceContextSnapshot,
) -> XsiKey {
    let mut found = None;
    for a in doc.attributes(n) {
        match names.get(doc.attr_name_id(a)).xsi {
            Xsi::Type => found = Some(doc.attr_value(a)),
            Xsi::Nil => return Err(()),
            _ => {}
        }
    }
    let Some(raw) = found else { return Ok(None) };
    let ok_char = |c: char| !c.is_whitespace() && c != ':';
    let (prefix, local) = match raw.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, raw),
    };
    if local.is_empty()
        || !local.chars().all(ok_char)
        || prefix.is_some_and(|p| p.is_empty() || !p.chars().all(ok_char))
    {
        return Err(());
    }
    let ns = match prefix {
        None => scope.default_ns,
        Some(p) => {
            let p = set.name_table.add(p);
            let bound = scope.bindings.iter().rev().find(|(q, _)| *q == p);
            Some(bound.ok_or(())?.1)
        }
    };
    Ok(Some((ns, raw.into())))
}

thread_local! {
    static WHY: std::cell::Cell<&'static str> = const { std::cell::Cell::new("") };
}

fn why<T>(reason: &'static str) -> Option<T> {
    WHY.with(|w| w.set(reason));
    None
}

/// Why the last check was not sure (diagnostics).
#[allow(dead_code)]
pub(super) fn last_reason() -> &'static str {
    WHY.with(|w| w.get())
}

/// Subset construction over a counter-free, wildcard-free content-model automaton.
fn determinize(nfa: &NfaTable, particles: &mut FxHashMap<Term, u32>) -> Option<Dfa> {
    if !nfa.counter_defs.is_empty() {
        return why("dfa: counters");
    }
    let states = &nfa.states;
    if states.iter().enumerate().any(|(i, s)| s.id as usize != i) {
        return why("dfa: ids");
    }
    let state = |id: usize| states.get(id);
    // The element term entered by each state (None for epsilon states).
    let mut terms: Vec<Option<Term>> = Vec::new();
    for s in states {
        terms.push(match &s.term {
            None => None,
            Some(NfaTerm::Element {
                name,
                namespace,
                element_key,
                resolved_type,
            }) => Some((name.0, ns_raw(*namespace), *element_key, *resolved_type)),
            Some(_) => return why("dfa: wildcard"),
        });
    }
    let closure = |seed: Vec<usize>| -> Option<Vec<usize>> {
        let mut seen = vec![false; states.len()];
        let mut todo = seed;
        let mut out = Vec::new();
        while let Some(s) = todo.pop() {
            if *seen.get(s)? {
                continue;
            }
            seen[s] = true;
            out.push(s);
            for t in &state(s)?.transitions {
                match t.kind {
                    TransitionKind::Epsilon => todo.push(t.target as usize),
                    TransitionKind::Consume => {}
                    _ => return why("dfa: counter step"),
                }
            }
        }
        out.sort_unstable();
        Some(out)
    };
    let mut alphabet: Vec<(u32, u32)> = terms.iter().flatten().map(|t| (t.0, t.1)).collect();
    alphabet.sort_unstable();
    alphabet.dedup();
    let accept_state = nfa.accept_state as usize;
    let start = closure(vec![nfa.start_state as usize])?;
    let mut ids: FxHashMap<Vec<usize>, u32> = FxHashMap::default();
    let mut sets: Vec<Vec<usize>> = vec![start.clone()];
    ids.insert(start, 0);
    let mut step = FxHashMap::default();
    let mut i = 0;
    while i < sets.len() {
        let current = sets[i].clone();
        for &(local, ns) in &alphabet {
            let mut targets = Vec::new();
            let mut term = None;
            for &s in &current {
                let Some(tt) = terms.get(s)?.as_ref() else {
                    continue;
                };
                if (tt.0, tt.1) != (local, ns) {
                    continue;
                }
                match term {
                    None => term = Some(*tt),
                    Some(known) if known != *tt => return why("dfa: ambiguous"),
                    Some(_) => {}
                }
                for t in &state(s)?.transitions {
                    if t.kind == TransitionKind::Consume {
                        targets.push(t.target as usize);
                    }
                }
            }
            let Some(term) = term else { continue };
            let next_set = closure(targets)?;
            let next = match ids.get(&next_set) {
                Some(&id) => id,
                None => {
                    if sets.len() >= MAX_DFA_STATES {
                        return None;
                    }
                    let id = sets.len() as u32;
                    ids.insert(next_set.clone(), id);
                    sets.push(next_set);
                    id
                }
            };
            let n = particles.len() as u32;
            let particle = *particles.entry(term).or_insert(n);
            step.insert((i as u32, local, ns), (next, particle));
        }
        i += 1;
    }
    let accept = sets.iter().map(|s| s.contains(&accept_state)).collect();
    Some(Dfa {
        start: 0,
        accept,
        step,
    })
}
