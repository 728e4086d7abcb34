//! The XSD stage: a document checked against the schema set chosen by its `typeId/@extension`
//! (`xsd/<extension>/CDA.xsd` of the rule folder), with the pure-Rust validator of the
//! `xsd-schema` crate. That crate's compiled sets are not `Sync`: each set is compiled once
//! (with its validator, i.e. the content models; about 0.1 s) into an engine that the
//! threads share behind a mutex, taken only for the few documents the fast verdict leaves
//! to it and for attribute values a thread meets for the first time. The `pattern` facets of
//! a compiled set are recompiled from our own translation of XSD regular expressions
//! ([`pattern`]): the crate's own, as we build it, misreads them (`a|b` as `^a|b$`).
//!
//! The document is not read a second time: [`XsdSet::validate`] walks the tree our reader
//! ([`crate::xml`]) already built and pushes its events into the validator's runtime, with
//! every distinct name of the document interned in the schema's name table once, and each
//! error placed at the line and column of the element it is about. The namespace
//! declarations, which the tree does not keep, are read from the start tags of the source
//! (only up to the last `xmlns` in it). [`XsdSet::validate_reparsed`] is the crate's own
//! reader over the bytes (a second, independent parse): the fallback, and the reference the
//! tests compare the walk with.
//!
//! Before either, [`XsdSet::validate`] asks the fast verdict ([`model`]): a compact model of
//! the schema (deterministic content models, attribute uses, types learnt from the engine's
//! own runs) that answers "valid" for the common case, and hands every other document to
//! the walk, whose report is then the one given. What the model learns from any thread's
//! run is published to every thread (an `Arc` snapshot, replaced after each run that
//! taught it something), so that two threads do not each pay for the same lessons.

mod model;
mod pattern;

use crate::xml::{Document, NodeId, NodeKind};
use rustc_hash::{FxHashMap, FxHashSet};
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use xsd_schema::namespace::XML_NAMESPACE;
use xsd_schema::namespace::{NamespaceContextSnapshot, XSI_NAMESPACE};
use xsd_schema::types::value::{XmlValue, XmlValueKind};
use xsd_schema::validation::{
    drive_quick_xml_with, validate_simple_type, ContentProcessing, DriveWithError, SchemaValidator,
    SchemaValidity, ValidationError, ValidationEventHandler, ValidationFlags, ValidationRuntime,
    ValidationSink, ValidationWarning,
};
use xsd_schema::{NameId as XsdName, SchemaSet, SchemaSetBuilder, TypeKey, XmlTypeCode};

type Validator<'a> = SchemaValidator<'a>;

self_cell::self_cell!(
    /// A compiled set and the validator prepared over it (content models built once).
    struct Prepared {
        owner: SchemaSet,
        #[not_covariant]
        dependent: Validator,
    }
);

/// The full engine of a schema set: the compiled set and its validator, the walk's
/// attribute memo ([`Memo`]) and the fast model's learner ([`model::Learner`]), whose keys
/// all belong to this one compiled set. Used by one thread at a time (behind a mutex).
struct Engine {
    prepared: Prepared,
    memo: Memo,
    learner: model::Learner,
}

// SAFETY: `Engine` is `!Send` only because the validator borrows the `SchemaSet`, which is
// `!Sync` (its name table interns through `RefCell`/`Cell`). Both live in the same
// self-referential cell and every borrow of the set is inside it: moving the whole engine
// to another thread moves the set together with every reference to it, so no two threads
// can ever reach the set at once. The engine is only reached through `Shared::engine`,
// a `Mutex`, which orders each use after the previous one. Nothing in it is tied to the
// thread that built it (the crate's thread-locals are scratch buffers, cleared per call).
unsafe impl Send for Engine {}

// What the claim above rests on, checked by the compiler: every part of the engine is `Send`
// on its own (the set, the memo, the learner); only the borrow between them is not.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<SchemaSet>();
    send::<Memo>();
    send::<model::Learner>();
};

/// One XSD set, shared by every thread: its engine, compiled once, and the fast model's
/// published facts.
struct Shared {
    /// Distinguishes this set's per-thread state ([`LOCALS`]) from other sets'.
    id: u64,
    main: PathBuf,
    engine: Mutex<Engine>,
    /// The facts last published by the learner, and their version.
    facts: RwLock<Arc<model::Facts>>,
    version: AtomicU64,
    /// Documents the fast verdict answered, and documents handed to the full engine.
    answered: AtomicU64,
    unsure: AtomicU64,
}

/// What a thread keeps of a shared set: its copy of the facts and its memo of value
/// verdicts.
struct Local {
    facts: Arc<model::Facts>,
    version: u64,
    values: model::Values,
}

thread_local! {
    static LOCALS: RefCell<FxHashMap<u64, Local>> = RefCell::new(FxHashMap::default());
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl Shared {
    fn engine(&self) -> MutexGuard<'_, Engine> {
        // A panic inside a run leaves nothing half-learnt that could make a verdict wrong
        // (facts are published whole, memo entries are inserted whole).
        self.engine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes the learner's facts when they changed.
    fn publish(&self, engine: &mut Engine) {
        let Engine {
            prepared, learner, ..
        } = engine;
        if let Some(f) = learner.snapshot(prepared.borrow_owner()) {
            let mut w = self.facts.write().unwrap_or_else(PoisonError::into_inner);
            *w = Arc::new(f);
            self.version.fetch_add(1, Ordering::Release);
        }
    }

    /// Runs `f` with this thread's state for the set, its facts brought up to date.
    fn with_local<R>(&self, f: impl FnOnce(&mut Local) -> R) -> R {
        LOCALS.with(|l| {
            let mut l = l.borrow_mut();
            let version = self.version.load(Ordering::Acquire);
            let local = l.entry(self.id).or_insert_with(|| Local {
                facts: Arc::default(),
                version: u64::MAX,
                values: model::Values::default(),
            });
            if local.version != version {
                local.facts = self
                    .facts
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                local.version = version;
            }
            f(local)
        })
    }

    /// The fast verdict on this thread, judging values it has not met with the engine.
    fn fast(&self, doc: &Document, decls: &[Declaration]) -> bool {
        self.with_local(|local| {
            let mut classify = |t: TypeKey, value: &str| {
                let engine = self.engine();
                model::classify(engine.prepared.borrow_owner(), t, value)
            };
            model::valid(&local.facts, &mut local.values, doc, decls, &mut classify)
        })
    }
}

/// Only the verdict and the errors are used: no warnings, no PSVI values kept (the runtime
/// still computes every value a check needs, so validity is the same).
fn flags() -> ValidationFlags {
    ValidationFlags::empty()
}

/// An XSD set, named by its main file (`Send + Sync`; compiled once, shared by every
/// thread).
#[derive(Clone)]
pub struct XsdSet {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for XsdSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XsdSet")
            .field("main", &self.shared.main)
            .finish()
    }
}

fn compile(cda_xsd: &Path) -> Result<SchemaSet, String> {
    let location = cda_xsd.to_string_lossy();
    let compiled = SchemaSetBuilder::new()
        .add("urn:hl7-org:v3", location.as_ref())
        .and_then(|b| b.compile())
        .map_err(|e| format!("{}: {e}", cda_xsd.display()))?;
    if let Some(f) = compiled.directive_failures().first() {
        return Err(format!(
            "{}: cannot read {:?} referenced by the schema",
            cda_xsd.display(),
            f.schema_location()
        ));
    }
    let mut set = compiled.into_schema_set();
    pattern::correct(&mut set).map_err(|e| format!("{}: {e}", cda_xsd.display()))?;
    Ok(set)
}

impl XsdSet {
    /// Compiles the schema rooted at `cda_xsd` (target namespace `urn:hl7-org:v3`),
    /// checking that it loads; every included or imported file must be readable.
    pub fn load(cda_xsd: &Path) -> Result<XsdSet, String> {
        let set = compile(cda_xsd)?;
        let learner = model::Learner::new(&set);
        let mut engine = Engine {
            prepared: Prepared::new(set, |s| SchemaValidator::new(s, flags())),
            memo: Memo::default(),
            learner,
        };
        let facts = engine
            .learner
            .snapshot(engine.prepared.borrow_owner())
            .unwrap_or_default();
        let shared = Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            main: cda_xsd.to_path_buf(),
            engine: Mutex::new(engine),
            facts: RwLock::new(Arc::new(facts)),
            version: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            unsure: AtomicU64::new(0),
        };
        Ok(XsdSet {
            shared: Arc::new(shared),
        })
    }

    /// Validates a parsed document: first the fast verdict ([`model`]), which answers for
    /// the common valid case; when it is not sure, the full engine walks the tree (and the
    /// fast model learns from the run). `bytes` is the source the document was read from
    /// (namespace declarations are taken from its start tags). Returns the errors as
    /// `line,column message` (empty when valid).
    pub fn validate(&self, doc: &Document, bytes: &[u8]) -> Result<Vec<String>, String> {
        self.validate_with(doc, bytes, true)
    }

    /// [`XsdSet::validate`] without the fast verdict (and without learning): the full
    /// engine's walk alone, for benchmarks and cross-checks.
    pub fn validate_full(&self, doc: &Document, bytes: &[u8]) -> Result<Vec<String>, String> {
        self.validate_with(doc, bytes, false)
    }

    /// The fast verdict alone: `Some(true)` when it finds the document valid, `None` when
    /// not sure (it never says invalid). For tests.
    pub fn fast_verdict(&self, doc: &Document, bytes: &[u8]) -> Result<Option<bool>, String> {
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let Some(decls) = namespace_declarations(body, doc) else {
            return Ok(None);
        };
        Ok(self.shared.fast(doc, &decls).then_some(true))
    }

    /// (documents the fast verdict answered, documents it handed to the full engine) for
    /// this set, over every thread.
    pub fn fast_counts(&self) -> Result<(u64, u64), String> {
        let s = &self.shared;
        Ok((
            s.answered.load(Ordering::Relaxed),
            s.unsure.load(Ordering::Relaxed),
        ))
    }

    fn validate_with(
        &self,
        doc: &Document,
        bytes: &[u8],
        fast_path: bool,
    ) -> Result<Vec<String>, String> {
        let shared = &*self.shared;
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let Some(decls) = namespace_declarations(body, doc) else {
            return self.validate_reparsed(doc, bytes);
        };
        if !fast_path {
            let mut engine = shared.engine();
            let Engine { prepared, memo, .. } = &mut *engine;
            return Ok(prepared
                .with_dependent(|set, validator| walk(set, validator, doc, &decls, memo, None)));
        }
        let seen = shared.version.load(Ordering::Acquire);
        if shared.fast(doc, &decls) {
            shared.answered.fetch_add(1, Ordering::Relaxed);
            return Ok(Vec::new());
        }
        let mut guard = shared.engine();
        let engine = &mut *guard;
        // Another thread may have learnt what this document needed meanwhile.
        if shared.version.load(Ordering::Acquire) != seen {
            let set = engine.prepared.borrow_owner();
            let mut classify = |t: TypeKey, value: &str| model::classify(set, t, value);
            let sure = shared.with_local(|local| {
                model::valid(&local.facts, &mut local.values, doc, &decls, &mut classify)
            });
            if sure {
                shared.answered.fetch_add(1, Ordering::Relaxed);
                return Ok(Vec::new());
            }
        }
        shared.unsure.fetch_add(1, Ordering::Relaxed);
        let Engine {
            prepared,
            memo,
            learner,
        } = engine;
        let out = prepared.with_dependent(|set, validator| {
            let mut record = model::Record::default();
            let out = walk(
                set,
                validator,
                doc,
                &decls,
                memo,
                Some((&mut *learner, &mut record)),
            );
            if out.is_empty() {
                learner.learn_valid(set, doc, record);
            }
            out
        });
        shared.publish(engine);
        Ok(out)
    }

    /// Validates a document by reading `bytes` again with the crate's own reader (which also
    /// checks well-formedness); `doc`, the same document as parsed by [`crate::xml`], only
    /// places the errors.
    pub fn validate_reparsed(&self, doc: &Document, bytes: &[u8]) -> Result<Vec<String>, String> {
        let bom = if bytes.starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        let position = |offset: usize| doc.offset_position(offset.saturating_sub(bom));
        let engine = self.shared.engine();
        Ok(engine
            .prepared
            .with_dependent(|set, validator| run(set, validator, bytes, &position)))
    }
}

fn run(
    set: &SchemaSet,
    validator: &SchemaValidator<'_>,
    bytes: &[u8],
    position: &dyn Fn(usize) -> (u32, u32),
) -> Vec<String> {
    let open: Rc<RefCell<Vec<usize>>> = Rc::default();
    let found: Rc<RefCell<Vec<Located>>> = Rc::default();
    let sink = Sink {
        open: open.clone(),
        found: found.clone(),
    };
    let mut tracker = Tracker { open };
    let mut runtime = validator.start_run(sink);
    let outcome = drive_quick_xml_with(bytes, &mut runtime, set, &mut tracker);
    let end = match outcome {
        Ok(_) => runtime
            .end_validation()
            .err()
            .map(|e| format!("FATAL: {e}")),
        Err(DriveWithError::Hook(never)) => match never {},
        Err(DriveWithError::Io(e)) => Some(format!("FATAL: {e}")),
        Err(DriveWithError::NotWellFormed(e)) => Some(format!("FATAL: {e}")),
        Err(DriveWithError::LimitExceeded(e)) => Some(format!("FATAL: {e}")),
        Err(_) => Some("FATAL: the XSD validator stopped".to_owned()),
    };
    drop(runtime);
    let mut out: Vec<String> = found
        .borrow()
        .iter()
        .map(|(at, msg)| match at {
            Some(p) => {
                let (l, c) = position(*p);
                format!("{l},{c} {msg}")
            }
            None => msg.clone(),
        })
        .collect();
    out.extend(end);
    out
}

/// Keeps the byte offsets of the open elements, so that each error can be placed.
struct Tracker {
    open: Rc<RefCell<Vec<usize>>>,
}

impl ValidationEventHandler for Tracker {
    type Error = std::convert::Infallible;

    fn on_element_start_offset(&mut self, byte_pos: usize) -> Result<(), Self::Error> {
        self.open.borrow_mut().push(byte_pos);
        Ok(())
    }

    fn on_element_end_offset(&mut self, _byte_pos: usize) -> Result<(), Self::Error> {
        self.open.borrow_mut().pop();
        Ok(())
    }
}

/// An error message and the byte offset of the element it is about.
type Located = (Option<usize>, String);

/// Collects errors with the offset of the element being validated.
struct Sink {
    open: Rc<RefCell<Vec<usize>>>,
    found: Rc<RefCell<Vec<Located>>>,
}

impl ValidationSink for Sink {
    fn on_error(&mut self, error: ValidationError) {
        let at = self.open.borrow().last().copied();
        let msg = format!("[{}] {}", error.constraint, error.message);
        self.found.borrow_mut().push((at, msg));
    }

    fn on_warning(&mut self, _warning: ValidationWarning) {}
}

// ── The tree walk ─────────────────────────────────────────────────────────

/// A document name as the validator knows it: its local part and namespace in the schema's
/// name table, and whether it is `xsi:type` or `xsi:nil`.
#[derive(Clone, Copy)]
struct Mapped {
    local: XsdName,
    ns: Option<XsdName>,
    xsi: Xsi,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Xsi {
    /// Any attribute outside the `xsi` and `xml` namespaces.
    No,
    Type,
    Nil,
    /// Another attribute in the `xsi` or `xml` namespace.
    Reserved,
}

/// What an attribute of namespace `ns` and local name `local` is to the validator.
fn xsi_of(ns: &str, local: &str) -> Xsi {
    match (ns == XSI_NAMESPACE, local) {
        (true, "type") => Xsi::Type,
        (true, "nil") => Xsi::Nil,
        (true, _) => Xsi::Reserved,
        _ if ns == XML_NAMESPACE => Xsi::Reserved,
        _ => Xsi::No,
    }
}

/// The names of one document, each interned in the schema's name table the first time the
/// walk meets it.
struct Names<'d, 's> {
    doc: &'d Document,
    set: &'s SchemaSet,
    mapped: Vec<Option<Mapped>>,
}

impl Names<'_, '_> {
    fn get(&mut self, id: crate::xml::NameId) -> Mapped {
        if let Some(Some(m)) = self.mapped.get(id.index()) {
            return *m;
        }
        let name = self.doc.name(id);
        let table = &self.set.name_table;
        let m = Mapped {
            local: table.add(&name.local),
            ns: (!name.ns.is_empty()).then(|| table.add(&name.ns)),
            xsi: xsi_of(&name.ns, &name.local),
        };
        if let Some(slot) = self.mapped.get_mut(id.index()) {
            *slot = Some(m);
        }
        m
    }
}

/// Collects errors with the element being validated (`at`, kept current by the walk), and
/// counts them (`count`, which the walk reads between events).
struct TreeSink<'b> {
    at: &'b Cell<Option<NodeId>>,
    count: &'b Cell<usize>,
    found: &'b mut Vec<(Option<NodeId>, String)>,
}

impl ValidationSink for TreeSink<'_> {
    fn on_error(&mut self, error: ValidationError) {
        let msg = format!("[{}] {}", error.constraint, error.message);
        self.found.push((self.at.get(), msg));
        self.count.set(self.count.get() + 1);
    }

    fn on_warning(&mut self, _warning: ValidationWarning) {}
}

/// Pushes the document's events into a fresh run, in document order, the way the crate's
/// own drivers do: each element's start (with its in-scope namespaces and `xsi:type` /
/// `xsi:nil`), its attributes, the end of its attributes, its text (white space apart),
/// its children in place, its end.
fn walk(
    set: &SchemaSet,
    validator: &SchemaValidator<'_>,
    doc: &Document,
    decls: &[Declaration],
    memo: &mut Memo,
    mut learn: Option<Learn<'_>>,
) -> Vec<String> {
    let at = Cell::new(None);
    let count = Cell::new(0);
    let mut found = Vec::new();
    // Skipping attributes is sound only where no identity constraint can see them.
    let mut memo = set.arenas.identity_constraints.is_empty().then_some(memo);
    let end = {
        let mut runtime = validator.start_run(TreeSink {
            at: &at,
            count: &count,
            found: &mut found,
        });
        let mut names = Names {
            doc,
            set,
            mapped: vec![None; doc.name_count()],
        };
        let mut scopes = vec![NamespaceContextSnapshot::default()];
        // Open elements: (the element, its last descendant, its namespace scope).
        let mut open: Vec<(NodeId, NodeId, usize)> = Vec::new();
        let mut decls = decls.iter().peekable();
        let mut element_index = 0usize;
        for i in 1..doc.node_count() {
            let Some(n) = doc.node(i) else { break };
            close_done(&mut runtime, &mut open, &at, Some(n));
            match doc.kind(n) {
                NodeKind::Element => {
                    let parent = open.last().map_or(0, |o| o.2);
                    let scope = element_scope(&mut scopes, parent, &mut decls, element_index, set);
                    element_index += 1;
                    at.set(Some(n));
                    let memo = memo.as_deref_mut();
                    let cx = Open {
                        doc,
                        n,
                        scope: &scopes[scope],
                        errors: &count,
                        root: open.is_empty(),
                    };
                    let learn = learn.as_mut().map(|(f, r)| (&mut **f, &mut **r));
                    open_element(&mut runtime, &mut names, cx, memo, learn);
                    open.push((n, doc.last_descendant(n), scope));
                }
                NodeKind::Text if !open.is_empty() => {
                    let text = doc.text(n);
                    if text.chars().all(char::is_whitespace) {
                        runtime.validate_whitespace(text);
                    } else {
                        runtime.validate_text(text);
                    }
                }
                _ => {}
            }
        }
        close_done(&mut runtime, &mut open, &at, None);
        runtime
            .end_validation()
            .err()
            .map(|e| format!("FATAL: {e}"))
    };
    let mut out: Vec<String> = found
        .into_iter()
        .map(|(n, msg)| match n {
            Some(n) => {
                let (l, c) = doc.position(n);
                format!("{l},{c} {msg}")
            }
            None => msg,
        })
        .collect();
    out.extend(end);
    out
}

/// An element about to be opened, and what its events need.
struct Open<'a> {
    doc: &'a Document,
    n: NodeId,
    scope: &'a NamespaceContextSnapshot,
    /// Errors reported so far in the run.
    errors: &'a Cell<usize>,
    /// Whether it is the document element.
    root: bool,
}

/// The fast model learning from a run of the full engine, and the run's record.
type Learn<'a> = (&'a mut model::Learner, &'a mut model::Record);

/// The start of element `n`, its attributes and the end of its attributes. An attribute
/// whose value the memo knows valid for the element's governing type is not passed on
/// (unless the fast model is learning from the run: then every attribute is).
fn open_element<S: ValidationSink>(
    runtime: &mut ValidationRuntime<'_, S>,
    names: &mut Names<'_, '_>,
    cx: Open<'_>,
    mut memo: Option<&mut Memo>,
    mut learn: Option<Learn<'_>>,
) {
    let Open {
        doc,
        n,
        scope,
        errors,
        root,
    } = cx;
    let mut xsi_type = None;
    let mut xsi_nil = None;
    for a in doc.attributes(n) {
        match names.get(doc.attr_name_id(a)).xsi {
            Xsi::Type => xsi_type = Some(doc.attr_value(a)),
            Xsi::Nil => xsi_nil = Some(doc.attr_value(a)),
            Xsi::No | Xsi::Reserved => {}
        }
    }
    let (local, ns) = match doc.name_id(n) {
        Some(id) => {
            let m = names.get(id);
            (m.local, m.ns)
        }
        // Every element has a name; the empty one (id 0 in every table) keeps this total.
        None => (XsdName(0), None),
    };
    let mut learnt_type = None;
    let governing = if learn.is_some() || (memo.is_some() && doc.attributes(n).len() > 0) {
        let info = runtime.validate_element_by_id(local, ns, xsi_type, xsi_nil, scope);
        let strict = runtime.content_processing() == ContentProcessing::Strict;
        if let Some((fast, record)) = learn.as_mut() {
            let gov = match (info.schema_type, info.content_type) {
                (Some(t), Some(c)) if strict => Some((t, c)),
                _ => None,
            };
            let set = names.set;
            record
                .elements
                .push(model::Learner::seen(set, doc, n, names, scope, gov));
            if let Some(TypeKey::Complex(ct)) = info.schema_type.filter(|_| strict) {
                if !fast.knows_uses(ct) {
                    fast.learn_uses(
                        ct,
                        runtime
                            .get_expected_attributes()
                            .into_iter()
                            .map(|u| (u.local_name, u.namespace, u.required)),
                        runtime
                            .get_default_attributes()
                            .into_iter()
                            .map(|d| (d.local_name, d.namespace)),
                    );
                }
                learnt_type = Some(ct);
            }
        }
        match info.schema_type {
            Some(t @ TypeKey::Complex(_)) if strict => {
                if let Some(memo) = memo.as_deref_mut() {
                    let set = names.set;
                    memo.learn_type(t, || attribute_uses(runtime, set));
                }
                Some(t)
            }
            _ => None,
        }
    } else {
        runtime.validate_element_by_id_novalue(local, ns, xsi_type, xsi_nil, scope);
        None
    };
    for a in doc.attributes(n) {
        let m = names.get(doc.attr_name_id(a));
        let value = doc.attr_value(a);
        if let Some((fast, record)) = learn.as_mut() {
            let before = errors.get();
            let info = runtime.validate_attribute_by_id(m.local, m.ns, value);
            let accepted = errors.get() == before && info.validity == SchemaValidity::Valid;
            match (m.xsi, learnt_type, info.schema_type) {
                (Xsi::No, Some(ct), Some(t @ TypeKey::Simple(_))) if accepted => {
                    let plain = info.typed_value.as_ref().is_none_or(plain_value);
                    fast.learn_attribute(ct, m.local, m.ns, t, value, plain);
                }
                (Xsi::Reserved, _, _) if accepted => {
                    let ns = m.ns.map_or(u32::MAX, |n| n.0);
                    record.reserved.push((root, m.local.0, ns, value.into()));
                }
                _ => {}
            }
            continue;
        }
        let memo = match (governing, memo.as_deref_mut()) {
            (Some(t), Some(memo)) if m.xsi == Xsi::No => Some((t, memo)),
            _ => None,
        };
        let Some((t, memo)) = memo else {
            let _ = runtime.validate_attribute_by_id(m.local, m.ns, value);
            continue;
        };
        let key = (t, m.local, m.ns);
        if memo.known_valid(&key, value) {
            continue;
        }
        let before = errors.get();
        let info = runtime.validate_attribute_by_id(m.local, m.ns, value);
        if errors.get() == before
            && info.validity == SchemaValidity::Valid
            && matches!(info.schema_type, Some(TypeKey::Simple(_)))
            && info.typed_value.as_ref().is_none_or(plain_value)
        {
            memo.remember(key, value);
        }
    }
    runtime.validate_end_of_attributes_novalue();
}

/// The attribute uses of the element just started (its governing type's), each with
/// whether leaving it out of the run is harmless once its value is known valid: not when it
/// is required, nor when it has a default or fixed value that the runtime would then put in
/// its place and that is not a [`plain_value`].
fn attribute_uses<S: ValidationSink>(
    runtime: &ValidationRuntime<'_, S>,
    set: &SchemaSet,
) -> FxHashMap<(XsdName, Option<XsdName>), bool> {
    let mut uses: FxHashMap<_, _> = runtime
        .get_expected_attributes()
        .into_iter()
        .map(|u| ((u.local_name, u.namespace), !u.required))
        .collect();
    for d in runtime.get_default_attributes() {
        let plain = d.type_key.is_none_or(|t| {
            validate_simple_type(&d.value, t, set).is_ok_and(|r| plain_value(&r.typed_value))
        });
        if !plain {
            uses.insert((d.local_name, d.namespace), false);
        }
    }
    uses
}

/// Whether the runtime remembers values of type `c` across the document (ID, IDREF, ENTITY
/// and their lists, QName, NOTATION).
fn remembered_type(c: XmlTypeCode) -> bool {
    matches!(
        c,
        XmlTypeCode::Id
            | XmlTypeCode::IdRef
            | XmlTypeCode::IdRefs
            | XmlTypeCode::Entity
            | XmlTypeCode::Entities
            | XmlTypeCode::QName
            | XmlTypeCode::Notation
    )
}

/// Whether a typed value is a single value of no type the runtime remembers values of (ID,
/// IDREF, ENTITY and their lists, QName, NOTATION).
fn plain_value(v: &XmlValue) -> bool {
    !remembered_type(v.type_code)
        && match &v.value {
            XmlValueKind::Atomic(_) => true,
            XmlValueKind::Union(member) => plain_value(member),
            XmlValueKind::List { .. } | XmlValueKind::UntypedAtomic(_) => false,
        }
}

/// Attribute values the validator has already found valid on elements of a governing
/// complex type, per thread and schema set, so that the same attribute with the same value
/// on an element of the same type is not validated again.
///
/// Leaving such an attribute out of the run changes no report:
/// - its value was found valid for that attribute use (the declaration, its type and any
///   `fixed` value depend on the governing type only);
/// - the use is declared (not a wildcard's) and optional, so its absence is no error, and
///   any default the runtime puts in its place is no `ID`, `IDREF`, `ENTITY`, `QName` or
///   `NOTATION` value ([`attribute_uses`]);
/// - it is nothing the runtime remembers across attributes or elements: no `xsi:` or `xml:`
///   attribute, its value no `ID`, `IDREF`, `ENTITY`, `QName` or `NOTATION` value
///   ([`plain_value`]; when the runtime built no typed value the type can hold none, as it
///   keeps one for those whatever the flags), and the schema has no identity constraint.
///
/// Elements under lax or skip processing are not concerned.
#[derive(Default)]
struct Memo {
    /// Governing type → its attribute uses, with whether each may be left out once its
    /// value is known valid (see [`attribute_uses`]).
    types: FxHashMap<TypeKey, FxHashMap<(XsdName, Option<XsdName>), bool>>,
    /// (type, attribute local name, attribute namespace) → values found valid.
    valid: FxHashMap<MemoKey, FxHashSet<Box<str>>>,
    /// Values held, bounded by [`Memo::LIMIT`].
    size: usize,
}

type MemoKey = (TypeKey, XsdName, Option<XsdName>);

impl Memo {
    /// Most values kept (per thread and schema set); past it nothing new is learnt.
    const LIMIT: usize = 200_000;
    /// Values longer than this are not kept (identifiers and free text rarely repeat).
    const MAX_VALUE: usize = 256;

    fn learn_type(
        &mut self,
        t: TypeKey,
        uses: impl FnOnce() -> FxHashMap<(XsdName, Option<XsdName>), bool>,
    ) {
        self.types.entry(t).or_insert_with(uses);
    }

    fn known_valid(&self, key: &MemoKey, value: &str) -> bool {
        self.valid.get(key).is_some_and(|v| v.contains(value))
    }

    fn remember(&mut self, key: MemoKey, value: &str) {
        if self.size >= Self::LIMIT || value.len() > Self::MAX_VALUE {
            return;
        }
        let skippable = self
            .types
            .get(&key.0)
            .and_then(|uses| uses.get(&(key.1, key.2)))
            .is_some_and(|&skippable| skippable);
        if skippable && self.valid.entry(key).or_default().insert(value.into()) {
            self.size += 1;
        }
    }
}

/// Ends the open elements whose content is over before `next` (all of them when `None`).
fn close_done<S: ValidationSink>(
    runtime: &mut ValidationRuntime<'_, S>,
    open: &mut Vec<(NodeId, NodeId, usize)>,
    at: &Cell<Option<NodeId>>,
    next: Option<NodeId>,
) {
    while let Some(&(_, last, _)) = open.last() {
        if next.is_some_and(|n| n <= last) {
            break;
        }
        let _ = runtime.validate_end_element_novalue();
        open.pop();
        at.set(open.last().map(|o| o.0));
    }
}

/// The namespace scope of the `element_index`-th element, whose parent's scope is
/// `parent`: a new scope in `scopes` when the element declares namespaces (taken from
/// `decls`, in document order), else the parent's.
fn element_scope<'d>(
    scopes: &mut Vec<NamespaceContextSnapshot>,
    parent: usize,
    decls: &mut std::iter::Peekable<std::slice::Iter<'d, Declaration>>,
    element_index: usize,
    set: &SchemaSet,
) -> usize {
    if decls.peek().is_none_or(|d| d.element != element_index) {
        return parent;
    }
    let mut snapshot = scopes[parent].clone();
    while let Some(d) = decls.next_if(|d| d.element == element_index) {
        declare(&mut snapshot, set, &d.prefix, &d.uri);
    }
    scopes.push(snapshot);
    scopes.len() - 1
}

/// Applies one namespace declaration to a scope, as the crate's drivers build theirs: the
/// `xml` and `xmlns` prefixes are implicit, an empty URI undeclares.
fn declare(snapshot: &mut NamespaceContextSnapshot, set: &SchemaSet, prefix: &str, uri: &str) {
    let table = &set.name_table;
    if prefix.is_empty() {
        snapshot.default_ns = (!uri.is_empty()).then(|| table.add(uri));
        return;
    }
    if prefix == "xml" || prefix == "xmlns" {
        return;
    }
    let p = table.add(prefix);
    snapshot.bindings.retain(|&(q, _)| q != p);
    if !uri.is_empty() {
        snapshot.bindings.push((p, table.add(uri)));
    }
}

// ── Namespace declarations from the source ────────────────────────────────

/// `xmlns` or `xmlns:prefix` on the `element`-th start tag of the document (0-based, in
/// document order, i.e. the order of the element nodes of the tree).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Declaration {
    element: usize,
    prefix: String,
    uri: String,
}

/// The namespace declarations of `src` (the source without its BOM), read from its start
/// tags up to the last occurrence of `xmlns`. `None` when the markup is not what a
/// well-formed document read by [`crate::xml`] has (then the caller reads the bytes again).
/// `doc`, the same source already parsed, confirms each declaring tag by its position.
fn namespace_declarations(src: &[u8], doc: &Document) -> Option<Vec<Declaration>> {
    let mut out = Vec::new();
    // Tags are read while an `xmlns` lies at or after the reading position. Found forward
    // (the declarations are near the top, a backward search reads the whole document).
    let xmlns = memchr::memmem::Finder::new(b"xmlns");
    let Some(mut next) = xmlns.find(src) else {
        return Some(out);
    };
    let mut elements = (0..doc.node_count())
        .filter_map(|i| doc.node(i))
        .filter(|&n| doc.kind(n) == NodeKind::Element);
    let mut i = 0;
    let mut element = 0;
    loop {
        if next < i {
            match xmlns.find(&src[i..]) {
                Some(d) => next = i + d,
                None => break,
            }
        }
        let Some(lt) = memchr::memchr(b'<', &src[i..]).map(|d| i + d) else {
            break;
        };
        let rest = &src[lt..];
        if rest.starts_with(b"<!--") {
            i = lt + 4 + memchr::memmem::find(&rest[4..], b"-->")? + 3;
        } else if rest.starts_with(b"<![CDATA[") {
            i = lt + 9 + memchr::memmem::find(&rest[9..], b"]]>")? + 3;
        } else if rest.starts_with(b"<?") {
            i = lt + 2 + memchr::memmem::find(&rest[2..], b"?>")? + 2;
        } else if rest.starts_with(b"</") {
            i = lt + 2 + memchr::memchr(b'>', &rest[2..])? + 1;
        } else if rest.starts_with(b"<!") {
            return None;
        } else {
            let before = out.len();
            i = lt + start_tag(rest, element, &mut out)?;
            let node = elements.next()?;
            if out.len() > before && doc.position(node) != doc.offset_position(lt) {
                return None;
            }
            element += 1;
        }
    }
    Some(out)
}

/// Reads the start tag at the beginning of `tag`, pushing its namespace declarations;
/// returns its length.
fn start_tag(tag: &[u8], element: usize, out: &mut Vec<Declaration>) -> Option<usize> {
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let mut j = 1;
    while j < tag.len() && !is_space(tag[j]) && tag[j] != b'>' && tag[j] != b'/' {
        j += 1;
    }
    loop {
        while j < tag.len() && is_space(tag[j]) {
            j += 1;
        }
        match tag.get(j)? {
            b'>' => return Some(j + 1),
            b'/' => return (tag.get(j + 1) == Some(&b'>')).then_some(j + 2),
            _ => {}
        }
        let name_start = j;
        while j < tag.len() && !is_space(tag[j]) && tag[j] != b'=' {
            j += 1;
        }
        let name = &tag[name_start..j];
        while j < tag.len() && is_space(tag[j]) {
            j += 1;
        }
        if tag.get(j) != Some(&b'=') {
            return None;
        }
        j += 1;
        while j < tag.len() && is_space(tag[j]) {
            j += 1;
        }
        let quote = *tag.get(j)?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let value_start = j + 1;
        let value_end = value_start + memchr::memchr(quote, &tag[value_start..])?;
        j = value_end + 1;
        let prefix = if name == b"xmlns" {
            Some(&b""[..])
        } else {
            name.strip_prefix(b"xmlns:")
        };
        if let Some(prefix) = prefix {
            let prefix = std::str::from_utf8(prefix).ok()?;
            let raw = std::str::from_utf8(&tag[value_start..value_end]).ok()?;
            let uri = if raw.contains(['&', '\t', '\r', '\n']) {
                let spaced = raw.replace("\r\n", " ").replace(['\r', '\n', '\t'], " ");
                quick_xml::escape::unescape(&spaced).ok()?.into_owned()
            } else {
                raw.to_owned()
            };
            out.push(Declaration {
                element,
                prefix: prefix.to_owned(),
                uri,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XSD: &str = r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns="urn:hl7-org:v3" targetNamespace="urn:hl7-org:v3" elementFormDefault="qualified">
  <xs:simpleType name="cs">
    <xs:restriction base="xs:token"><xs:pattern value="[^\s]+"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="uid">
    <xs:union memberTypes="oid uuid"/>
  </xs:simpleType>
  <xs:simpleType name="oid">
    <xs:restriction base="xs:string"><xs:pattern value="[0-2](\.(0|[1-9][0-9]*))*"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="uuid">
    <xs:restriction base="xs:string"><xs:pattern value="[0-9a-zA-Z]{8}-[0-9a-zA-Z]{4}"/></xs:restriction>
  </xs:simpleType>
  <xs:complexType name="ANY">
    <xs:attribute name="nullFlavor" type="cs"/>
  </xs:complexType>
  <xs:complexType name="CD">
    <xs:complexContent>
      <xs:extension base="ANY">
        <xs:attribute name="code" type="cs"/>
        <xs:attribute name="codeSystem" type="uid" use="required"/>
      </xs:extension>
    </xs:complexContent>
  </xs:complexType>
  <xs:complexType name="Item">
    <xs:attribute name="ID" type="xs:ID"/>
    <xs:attribute name="ref" type="xs:IDREF"/>
    <xs:attribute name="kind" type="cs" fixed="x"/>
  </xs:complexType>
  <xs:complexType name="Doc">
    <xs:sequence>
      <xs:element name="value" type="ANY" maxOccurs="unbounded"/>
      <xs:element name="item" type="Item" minOccurs="0" maxOccurs="unbounded"/>
    </xs:sequence>
  </xs:complexType>
  <xs:element name="doc" type="Doc"/>
</xs:schema>"#;

    const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- <doc xmlns:h="urn:elsewhere"> -->
<doc xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#;

    /// (document body after HEAD, whether it is valid)
    const CASES: &[(&str, bool)] = &[
        (
            r#"<value xsi:type="CD" code="A" codeSystem="1.2.3"/></doc>"#,
            true,
        ),
        // A prefix declared on the element itself, used by its xsi:type.
        (
            r#"<value xmlns:h="urn:hl7-org:v3" xsi:type="h:CD" codeSystem="1.2"/></doc>"#,
            true,
        ),
        // The prefix bound elsewhere only in a comment and inside a value.
        (
            r#"<value xsi:type="h:CD" code="xmlns:h" codeSystem="1.2"/></doc>"#,
            false,
        ),
        // Redeclared to another namespace on a child scope.
        (
            r#"<value xmlns:h="urn:hl7-org:v3" xsi:type="h:CD" codeSystem="1"/><value xmlns:h="urn:x" xsi:type="h:CD" codeSystem="1"/></doc>"#,
            false,
        ),
        // The same valid attribute twice, then the required one missing.
        (
            r#"<value xsi:type="CD" code="A" codeSystem="1.2"/><value xsi:type="CD" code="A"/></doc>"#,
            false,
        ),
        // A valid value, then an invalid one for the same attribute.
        (
            r#"<value xsi:type="CD" code="A" codeSystem="1.2"/><value xsi:type="CD" code="A B" codeSystem="1.2"/></doc>"#,
            false,
        ),
        (
            r#"<value xsi:type="CD" codeSystem="1.2"/><value xsi:type="CD" codeSystem="zz"/></doc>"#,
            false,
        ),
        // IDs stay checked however often they repeat.
        (
            r#"<value/><item ID="a" kind="x"/><item ID="b" ref="a" kind="x"/></doc>"#,
            true,
        ),
        (r#"<value/><item ID="a"/><item ID="a"/></doc>"#, false),
        (r#"<value/><item ref="nowhere"/></doc>"#, false),
        (r#"<value/><item kind="y"/></doc>"#, false),
        (r#"<value nullFlavor="NI"/><other/></doc>"#, false),
        (r#"<value>text</value></doc>"#, false),
        (r#"<value undeclared="1"/></doc>"#, false),
        (
            r#"<value xsi:type="CD" codeSystem="1.2"><![CDATA[x]]></value></doc>"#,
            false,
        ),
    ];

    fn set() -> XsdSet {
        let dir = std::env::temp_dir().join(format!("fse-xsd-walk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("CDA.xsd");
        std::fs::write(&path, XSD).unwrap();
        XsdSet::load(&path).unwrap()
    }

    #[test]
    fn the_walk_reports_what_a_second_read_reports() {
        let set = set();
        // Twice over, so that the second round meets every attribute already remembered
        // (and the fast verdict has learnt from the first).
        let mut answered = 0;
        for round in 0..2 {
            for (body, valid) in CASES {
                let text = format!("{HEAD}\n{body}");
                let doc = crate::xml::parse(text.as_bytes()).unwrap();
                let fast = set.fast_verdict(&doc, text.as_bytes()).unwrap();
                let walked = set.validate(&doc, text.as_bytes()).unwrap();
                let reread = set.validate_reparsed(&doc, text.as_bytes()).unwrap();
                if fast.is_some() {
                    answered += 1;
                    assert!(reread.is_empty(), "round {round}: {body}: fast says valid");
                }
                assert_eq!(walked, reread, "round {round}: {body}");
                assert_eq!(
                    walked.is_empty(),
                    *valid,
                    "round {round}: {body}: {walked:?}"
                );
            }
        }
        // The valid cases without IDREF (which the fast verdict leaves to the engine) are
        // answered in the second round.
        assert!(answered >= 2, "the fast verdict answered {answered} times");
    }

    #[test]
    fn errors_name_the_line_and_column_of_their_element() {
        let set = set();
        let text = format!("{HEAD}\n<value/>\n  <other/></doc>");
        let doc = crate::xml::parse(text.as_bytes()).unwrap();
        let errors = set.validate(&doc, text.as_bytes()).unwrap();
        assert!(
            errors.first().is_some_and(|e| e.starts_with("5,3 [")),
            "{errors:?}"
        );
    }

    #[test]
    fn namespace_declarations_come_from_start_tags_only() {
        let text = concat!(
            "\u{FEFF}<?xml version=\"1.0\"?><?pi xmlns:p='no'?><!-- <a xmlns:c='no'> -->",
            "<a xmlns='urn:a' b=\"xmlns:q='no'\"><![CDATA[<x xmlns:d='no'>]]>",
            "<b xmlns:e = 'urn:&amp;e' xmlns:f=\"urn:f\"/><c/><d xmlns=''/></a>"
        );
        let doc = crate::xml::parse(text.as_bytes()).unwrap();
        let body = &text.as_bytes()[3..];
        let decls = namespace_declarations(body, &doc).unwrap();
        let got: Vec<(usize, &str, &str)> = decls
            .iter()
            .map(|d| (d.element, d.prefix.as_str(), d.uri.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (0, "", "urn:a"),
                (1, "e", "urn:&e"),
                (1, "f", "urn:f"),
                (3, "", "")
            ]
        );
    }
}
