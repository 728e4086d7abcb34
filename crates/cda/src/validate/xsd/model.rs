//! The fast verdict of the XSD stage: a compact model of the schema that says "valid" for the
//! common case without driving the `xsd-schema` runtime, and "not sure" for everything else
//! (then the caller runs the full engine, whose report is the one given).
//!
//! The model has two sources:
//! - **compiled from the schema**: per complex type, a deterministic automaton over element
//!   names built (subset construction) from the very content-model automaton the runtime
//!   executes (`xsd_schema::compile_content_model_matcher`); a model with counters,
//!   wildcards or an ambiguous step is "unsupported";
//! - **learnt from the full engine** (one engine per schema set, shared by the threads, and
//!   its facts published to all of them as an immutable snapshot, [`Facts`]; the fast
//!   verdict itself never touches the engine but to judge an attribute value its thread
//!   has not met), as facts that depend on nothing but their
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

use super::{plain_value, remembered_type, xsi_of, Declaration, Names, Xsi};
use crate::xml::{Document, NameId, NodeId, NodeKind};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;
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
/// Most attribute values remembered (per thread, and in the facts, per schema set).
const MAX_VALUES: usize = 200_000;
/// Longest attribute value remembered.
const MAX_VALUE_LEN: usize = 256;
/// The id of a name the schema's name table does not hold (matches no fact).
const UNKNOWN: u32 = u32::MAX - 1;

/// An element particle: (local name, namespace or `u32::MAX`, declaration, local type).
type Term = (u32, u32, Option<ElementKey>, Option<TypeKey>);

/// An element's `xsi:type` as the model keys it (see [`xsi_key`]).
type XsiKey = Result<Option<(Option<XsdName>, Box<str>)>, ()>;

/// A deterministic automaton over the child element names of a complex type.
struct Dfa {
    start: u32,
    accept: Vec<bool>,
    /// Per state, its few transitions: (local name, namespace or `u32::MAX`, next state,
    /// particle id), scanned in order (no hashing on the hot path).
    steps: Vec<Vec<[u32; 4]>>,
}

impl Dfa {
    /// (next state, particle id) from `state` on the name (`local`, `ns`).
    fn step(&self, state: u32, local: u32, ns: u32) -> Option<(u32, u32)> {
        let edges = self.steps.get(state as usize)?;
        let e = edges.iter().find(|e| e[0] == local && e[1] == ns)?;
        Some((e[2], e[3]))
    }
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
#[derive(Default, Clone)]
struct Uses {
    by_name: FxHashMap<(u32, u32), Use>,
    required: u32,
    /// More than 64 required uses: not supported.
    too_many: bool,
}

/// How an attribute value stands against a simple type.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
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

/// What the model knows of one schema set: immutable once published, shared by every
/// thread (an `Arc` snapshot of the [`Learner`]'s copy). Every key is an id of the one
/// compiled set the learner works with (names of its name table, its type keys).
#[derive(Clone, Default)]
pub(super) struct Facts {
    enabled: bool,
    dfas: FxHashMap<ComplexTypeKey, Option<Arc<Dfa>>>,
    /// Element without `xsi:type`.
    plain: FxHashMap<Ctx, Governing>,
    /// The same for the particle contexts, indexed by particle id (no hashing).
    by_particle: Vec<Option<Governing>>,
    /// Element with `xsi:type`: (context, namespace of its prefix) → raw value → governing.
    typed: FxHashMap<(Ctx, u32), FxHashMap<Box<str>, Governing>>,
    uses: FxHashMap<ComplexTypeKey, Uses>,
    /// Accepted `xsi:`/`xml:` attributes: (on the root, local, namespace) → values.
    reserved: FxHashMap<(bool, u32, u32), FxHashSet<Box<str>>>,
    /// The schema's name table as of the snapshot: text → id.
    names: FxHashMap<Box<str>, u32>,
    /// Accepted values held (bounded by [`MAX_VALUES`]).
    value_count: usize,
}

/// Simple-type verdicts of attribute values, per thread: (type, value) → class.
#[derive(Default)]
pub(super) struct Values {
    classes: FxHashMap<TypeKey, FxHashMap<Box<str>, Class>>,
    count: usize,
}

/// How a value stands against simple type `t` of `set` (the full engine's simple-type
/// validation; for the fast verdict's misses).
pub(super) fn classify(set: &SchemaSet, t: TypeKey, value: &str) -> Class {
    match validate_simple_type(value, t, set) {
        Ok(r) if plain_value(&r.typed_value) || plain_list(&r.typed_value) => Class::Plain,
        Ok(r)
            if r.typed_value.type_code == XmlTypeCode::Id
                && matches!(r.typed_value.value, XmlValueKind::Atomic(_)) =>
        {
            Class::Id
        }
        _ => Class::Unsure,
    }
}

// ── The verdict ───────────────────────────────────────────────────────────

/// A document name as the facts key it: ids in the schema's name table ([`UNKNOWN`] when
/// the table does not hold the text), and whether it is `xsi:type` or `xsi:nil`.
#[derive(Clone, Copy)]
struct Key {
    local: u32,
    ns: u32,
    xsi: Xsi,
}

/// The names of one document, looked up in the facts' copy of the name table.
struct Keys<'d, 'f> {
    doc: &'d Document,
    facts: &'f Facts,
    mapped: Vec<Option<Key>>,
}

impl Keys<'_, '_> {
    fn id(&self, text: &str) -> u32 {
        self.facts.names.get(text).copied().unwrap_or(UNKNOWN)
    }

    fn get(&mut self, id: NameId) -> Key {
        if let Some(Some(k)) = self.mapped.get(id.index()) {
            return *k;
        }
        let name = self.doc.name(id);
        let k = Key {
            local: self.id(&name.local),
            ns: if name.ns.is_empty() {
                u32::MAX
            } else {
                self.id(&name.ns)
            },
            xsi: xsi_of(&name.ns, &name.local),
        };
        if let Some(slot) = self.mapped.get_mut(id.index()) {
            *slot = Some(k);
        }
        k
    }
}

/// The in-scope namespaces of an element, as the fast verdict needs them (to resolve the
/// prefix of an `xsi:type`): the same bindings as the walk's [`NamespaceContextSnapshot`].
#[derive(Clone, Default)]
struct Scope<'a> {
    default_ns: Option<u32>,
    bindings: Vec<(&'a str, u32)>,
}

/// Mirrors [`super::element_scope`] and [`super::declare`] over [`Scope`]s.
fn fast_scope<'a>(
    scopes: &mut Vec<Scope<'a>>,
    parent: usize,
    decls: &mut std::iter::Peekable<std::slice::Iter<'a, Declaration>>,
    element_index: usize,
    keys: &Keys<'_, '_>,
) -> usize {
    if decls.peek().is_none_or(|d| d.element != element_index) {
        return parent;
    }
    let mut scope = scopes[parent].clone();
    while let Some(d) = decls.next_if(|d| d.element == element_index) {
        let (prefix, uri) = (d.prefix.as_str(), d.uri.as_str());
        if prefix.is_empty() {
            scope.default_ns = (!uri.is_empty()).then(|| keys.id(uri));
            continue;
        }
        if prefix == "xml" || prefix == "xmlns" {
            continue;
        }
        scope.bindings.retain(|&(q, _)| q != prefix);
        if !uri.is_empty() {
            scope.bindings.push((prefix, keys.id(uri)));
        }
    }
    scopes.push(scope);
    scopes.len() - 1
}

/// `true` only when the document is valid (the full engine would report nothing); `false`
/// when not sure. `classify` judges a value the thread's memo (`values`) does not hold.
pub(super) fn valid(
    facts: &Facts,
    values: &mut Values,
    doc: &Document,
    decls: &[Declaration],
    classify: &mut dyn FnMut(TypeKey, &str) -> Class,
) -> bool {
    facts.enabled && check(facts, values, doc, decls, classify).is_some()
}

fn check(
    facts: &Facts,
    values: &mut Values,
    doc: &Document,
    decls: &[Declaration],
    classify: &mut dyn FnMut(TypeKey, &str) -> Class,
) -> Option<()> {
    struct Frame<'f> {
        last: NodeId,
        scope: usize,
        content: ContentType,
        dfa: Option<&'f Dfa>,
        state: u32,
    }
    let done = |f: &Frame| match f.dfa {
        Some(d) => d.accept.get(f.state as usize).copied().unwrap_or(false),
        None => f.content == ContentType::Empty,
    };
    let mut keys = Keys {
        doc,
        facts,
        mapped: vec![None; doc.name_count()],
    };
    let mut scopes = vec![Scope::default()];
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
                let scope = fast_scope(&mut scopes, parent, &mut decls, element_index, &keys);
                element_index += 1;
                let k = keys.get(doc.name_id(n)?);
                let ctx = match stack.last_mut() {
                    None => Ctx::Root(k.local, k.ns),
                    Some(f) => {
                        let dfa = f.dfa.or_else(|| why("no automaton"))?;
                        let (next, particle) = dfa
                            .step(f.state, k.local, k.ns)
                            .or_else(|| why("no step"))?;
                        f.state = next;
                        Ctx::Particle(particle)
                    }
                };
                let gov = match fast_xsi_key(doc, n, &mut keys, &scopes[scope]).ok()? {
                    None => match ctx {
                        Ctx::Particle(p) => facts.by_particle.get(p as usize).copied().flatten(),
                        Ctx::Root(..) => facts.plain.get(&ctx).copied(),
                    },
                    Some((ns, raw)) => facts.typed.get(&(ctx, ns))?.get(raw).copied(),
                }
                .or_else(|| why("governing"))?;
                let TypeKey::Complex(ct) = gov.ty else {
                    return why("simple type");
                };
                let root = stack.is_empty();
                let cx = Attrs {
                    facts,
                    doc,
                    n,
                    ct,
                    root,
                };
                attributes(cx, values, &mut keys, &mut ids, classify)?;
                let dfa = match gov.content {
                    ContentType::ElementOnly | ContentType::Mixed => {
                        let d = facts.dfas.get(&ct).or_else(|| why("dfa unknown"))?;
                        Some(d.as_deref().or_else(|| why("dfa unsupported"))?)
                    }
                    ContentType::Empty => None,
                    _ => return why("content type"),
                };
                let state = dfa.map_or(0, |d| d.start);
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

/// An element whose attributes are checked: of complex type `ct`, `root` when it is the
/// document element.
struct Attrs<'f, 'd> {
    facts: &'f Facts,
    doc: &'d Document,
    n: NodeId,
    ct: ComplexTypeKey,
    root: bool,
}

/// Checks the attributes of an element.
fn attributes<'d>(
    cx: Attrs<'_, 'd>,
    values: &mut Values,
    keys: &mut Keys<'_, '_>,
    ids: &mut FxHashSet<&'d str>,
    classify: &mut dyn FnMut(TypeKey, &str) -> Class,
) -> Option<()> {
    let Attrs {
        facts,
        doc,
        n,
        ct,
        root,
    } = cx;
    let uses = facts.uses.get(&ct);
    let mut required: u64 = 0;
    let mut id_count = 0;
    for a in doc.attributes(n) {
        let k = keys.get(doc.attr_name_id(a));
        let value = doc.attr_value(a);
        match k.xsi {
            Xsi::Type => continue,
            Xsi::Nil => return why("nil"),
            Xsi::Reserved => {
                let known = facts
                    .reserved
                    .get(&(root, k.local, k.ns))
                    .is_some_and(|v| v.contains(value));
                if !known {
                    return why("reserved");
                }
                continue;
            }
            Xsi::No => {}
        }
        let uses = uses.or_else(|| why("uses"))?;
        if uses.too_many {
            return why("too many");
        }
        let u = uses
            .by_name
            .get(&(k.local, k.ns))
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
        match class(values, t, value, classify) {
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
    let uses = uses.or_else(|| why("uses"))?;
    if required.count_ones() != uses.required {
        return why("required");
    }
    (id_count <= 1 && !uses.too_many && required.count_ones() == uses.required).then_some(())
}

fn class(
    values: &mut Values,
    t: TypeKey,
    value: &str,
    classify: &mut dyn FnMut(TypeKey, &str) -> Class,
) -> Class {
    if let Some(c) = values.classes.get(&t).and_then(|v| v.get(value)) {
        return *c;
    }
    let c = classify(t, value);
    if values.count < MAX_VALUES && value.len() <= MAX_VALUE_LEN {
        values.classes.entry(t).or_default().insert(value.into(), c);
        values.count += 1;
    }
    c
}

/// [`xsi_key`] over [`Keys`] and a [`Scope`]: `Ok(None)` without `xsi:type`,
/// `Ok(Some((namespace id or u32::MAX, raw value)))`, `Err(())` for anything else.
fn fast_xsi_key<'d>(
    doc: &'d Document,
    n: NodeId,
    keys: &mut Keys<'_, '_>,
    scope: &Scope<'_>,
) -> Result<Option<(u32, &'d str)>, ()> {
    let mut found = None;
    for a in doc.attributes(n) {
        match keys.get(doc.attr_name_id(a)).xsi {
            Xsi::Type => found = Some(doc.attr_value(a)),
            Xsi::Nil => return Err(()),
            _ => {}
        }
    }
    let Some(raw) = found else { return Ok(None) };
    let ns = match split_qname(raw)?.0 {
        None => scope.default_ns.unwrap_or(u32::MAX),
        Some(p) => {
            let bound = scope.bindings.iter().rev().find(|(q, _)| *q == p);
            bound.ok_or(())?.1
        }
    };
    Ok(Some((ns, raw)))
}

/// The prefix and local part of a plain `prefix:local` or `local` (`Err` otherwise).
fn split_qname(raw: &str) -> Result<(Option<&str>, &str), ()> {
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
    Ok((prefix, local))
}

// ── Learning ──────────────────────────────────────────────────────────────

/// The model's master copy of the [`Facts`] of one schema set, learning from the runs of
/// the full engine (owned with that engine: one thread at a time).
pub(super) struct Learner {
    facts: Facts,
    particles: FxHashMap<Term, u32>,
    /// Entries of the name table already copied into `facts.names`.
    names_len: usize,
    /// Whether the facts changed since the last [`Learner::snapshot`].
    changed: bool,
}

impl Learner {
    pub(super) fn new(set: &SchemaSet) -> Learner {
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
        Learner {
            facts: Facts {
                enabled,
                ..Facts::default()
            },
            particles: FxHashMap::default(),
            names_len: 0,
            changed: true,
        }
    }

    /// A copy of the facts to publish, when they changed since the last one (with the name
    /// table as it is now).
    pub(super) fn snapshot(&mut self, set: &SchemaSet) -> Option<Facts> {
        let table = &set.name_table;
        while self.names_len < table.len() {
            if let Some(text) = table.try_resolve(XsdName(self.names_len as u32)) {
                self.facts
                    .names
                    .entry(text.into())
                    .or_insert(self.names_len as u32);
                self.changed = true;
            }
            self.names_len += 1;
        }
        if !std::mem::take(&mut self.changed) {
            return None;
        }
        Some(self.facts.clone())
    }

    /// The automaton of `ct`'s content model (`None` when unsupported).
    fn dfa(&mut self, set: &SchemaSet, ct: ComplexTypeKey) -> Option<Arc<Dfa>> {
        if let Some(d) = self.facts.dfas.get(&ct) {
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
            .map(Arc::new);
        self.facts.dfas.insert(ct, d.clone());
        self.changed = true;
        d
    }

    /// Whether the uses of `ct` are known.
    pub(super) fn knows_uses(&self, ct: ComplexTypeKey) -> bool {
        self.facts.uses.contains_key(&ct)
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
        self.facts.uses.insert(ct, out);
        self.changed = true;
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
        let facts = &mut self.facts;
        let Some(u) = facts
            .uses
            .get_mut(&ct)
            .and_then(|u| u.by_name.get_mut(&(local.0, ns_raw(ns))))
        else {
            return;
        };
        match u.ty {
            None => {
                u.ty = Some(t);
                self.changed = true;
            }
            // Never seen: a use has one type. Then trust nothing about it.
            Some(known) if known != t => {
                u.constrained = true;
                u.accepted.clear();
                self.changed = true;
                return;
            }
            Some(_) => {}
        }
        if u.constrained
            && plain
            && value.len() <= MAX_VALUE_LEN
            && facts.value_count < MAX_VALUES
            && u.accepted.insert(value.into())
        {
            facts.value_count += 1;
            self.changed = true;
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
        if !self.facts.enabled {
            return;
        }
        let mut names = Names {
            doc,
            set,
            mapped: vec![None; doc.name_count()],
        };
        for (root, local, ns, value) in record.reserved {
            if self
                .facts
                .reserved
                .entry((root, local, ns))
                .or_default()
                .insert(value)
            {
                self.changed = true;
            }
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
                let Some((next, particle)) = dfa.step(state, cm.local.0, ns_raw(cm.ns)) else {
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
        let facts = &mut self.facts;
        let new = match xsi {
            Ok(None) => match facts.plain.entry(ctx) {
                std::collections::hash_map::Entry::Occupied(_) => false,
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(gov);
                    if let Ctx::Particle(p) = ctx {
                        let p = p as usize;
                        if facts.by_particle.len() <= p {
                            facts.by_particle.resize(p + 1, None);
                        }
                        facts.by_particle[p] = Some(gov);
                    }
                    true
                }
            },
            Ok(Some((ns, raw))) => {
                let by_raw = facts.typed.entry((ctx, ns_raw(*ns))).or_default();
                match by_raw.entry(raw.clone()) {
                    std::collections::hash_map::Entry::Occupied(_) => false,
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(gov);
                        true
                    }
                }
            }
            Err(()) => false,
        };
        self.changed |= new;
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
    let (prefix, _) = split_qname(raw)?;
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
    let mut steps: Vec<Vec<[u32; 4]>> = Vec::new();
    let mut i = 0;
    while i < sets.len() {
        let mut edges = Vec::new();
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
            edges.push([local, ns, next, particle]);
        }
        steps.push(edges);
        i += 1;
    }
    let accept = sets.iter().map(|s| s.contains(&accept_state)).collect();
    Some(Dfa {
        start: 0,
        accept,
        steps,
    })
}
