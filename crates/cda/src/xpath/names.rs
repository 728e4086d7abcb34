//! Process-wide ids of the expanded names that compiled expressions test for.
//!
//! A name test `hl7:code` is given, at compile time, the id of (`urn:hl7-org:v3`, `code`) in
//! a process-wide table. At evaluation time each document's own name table is mapped once to
//! these ids ([`DocNames`]), so a name test is an integer compare instead of two string
//! compares. Names a document uses but no expression tests for map to [`NO_NAME`].

use super::ast::{Ast, Axis, NodeTest, NO_MEMO};
use crate::xml::{Document, NameId, NodeId, NodeKind};
use rustc_hash::FxHashMap as HashMap;
use std::cell::OnceCell;
use std::sync::{Mutex, OnceLock, RwLock};

/// The memo id of an axis step (see [`super::ast::Step::Axis`]): equal steps get equal ids;
/// a step that mentions a variable gets [`NO_MEMO`] (its result depends on the binding).
pub fn step_memo_id(axis: Axis, test: &NodeTest, preds: &[Ast]) -> u32 {
    // `Debug` spells every part of the tree (names resolved to URIs and ids; inner memoisable
    // steps by their ids, see `Step`'s `Debug`), so equal strings mean equal steps. A literal
    // that merely contains "Var(" only disables the memo.
    let form = format!("{axis:?}|{test:?}|{preds:?}");
    if form.contains("Var(") {
        return NO_MEMO;
    }
    static T: OnceLock<Mutex<HashMap<String, u32>>> = OnceLock::new();
    let mut t = T
        .get_or_init(|| Mutex::new(HashMap::default()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let next = u32::try_from(t.len()).unwrap_or(NO_MEMO).min(NO_MEMO - 1);
    if next == NO_MEMO - 1 {
        return NO_MEMO;
    }
    *t.entry(form).or_insert(next)
}

/// The id of a name-only predicate (see [`super::ast::Ast::NameOnly`]): equal expressions
/// (same derived `Debug` form) get equal ids, so that their per-document results are shared.
pub fn name_only_id(inner: &Ast) -> u32 {
    let form = format!("{inner:?}");
    static T: OnceLock<Mutex<HashMap<String, u32>>> = OnceLock::new();
    let mut t = T
        .get_or_init(|| Mutex::new(HashMap::default()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // Past 2^32 - 1 forms (more than memory holds), new forms get NO_MEMO: not memoised.
    match u32::try_from(t.len()) {
        Ok(next) if next != NO_MEMO => *t.entry(form).or_insert(next),
        _ => t.get(&form).copied().unwrap_or(NO_MEMO),
    }
}

/// The id of no name: never equal to the id of a name test.
pub const NO_NAME: u32 = u32::MAX;

/// local part → (namespace URI, id) of every name interned.
type Table = HashMap<Box<str>, Vec<(Box<str>, u32)>>;

struct Interner {
    table: Table,
    count: u32,
}

fn interner() -> &'static RwLock<Interner> {
    static T: OnceLock<RwLock<Interner>> = OnceLock::new();
    T.get_or_init(|| {
        RwLock::new(Interner {
            table: HashMap::default(),
            count: 0,
        })
    })
}

fn find(t: &Table, ns: &str, local: &str) -> Option<u32> {
    t.get(local)?
        .iter()
        .find(|(n, _)| &**n == ns)
        .map(|&(_, id)| id)
}

/// The id of (`ns`, `local`), interning it when new.
pub fn intern(ns: &str, local: &str) -> u32 {
    let lock = interner();
    if let Some(id) = find(
        &lock.read().unwrap_or_else(|e| e.into_inner()).table,
        ns,
        local,
    ) {
        return id;
    }
    let mut w = lock.write().unwrap_or_else(|e| e.into_inner());
    if let Some(id) = find(&w.table, ns, local) {
        return id;
    }
    // 2^32 - 1 distinct names would need far more memory than any process has: ids never
    // reach NO_NAME in practice (and `min` keeps that so).
    let id = w.count.min(NO_NAME - 1);
    w.count = w.count.saturating_add(1);
    w.table
        .entry(local.into())
        .or_default()
        .push((ns.into(), id));
    id
}

/// The process-wide name id of each name of one document.
#[derive(Debug, Clone, Default)]
pub struct DocNames {
    ids: Vec<u32>,
    /// The elements of every name that has an id, by name. Built on first use.
    elements: OnceCell<ElementIndex>,
    /// The element children of every node. Built on first use.
    children: OnceCell<ChildIndex>,
}

/// The element children of every node with their name ids, contiguous: those of node `n`
/// are `kids[start[n]..start[n + 1]]` (name id, node index), in document order. A child step
/// with a name test then scans a few integers instead of every child node (text nodes
/// included) and its name.
#[derive(Debug, Clone, Default)]
struct ChildIndex {
    start: Vec<u32>,
    kids: Vec<(u32, u32)>,
}

impl ChildIndex {
    fn build(doc: &Document, names: &DocNames) -> ChildIndex {
        let count = doc.node_count();
        let parent_of = |i: usize| -> Option<(usize, u32)> {
            let n = NodeId(i as u32);
            if doc.kind(n) != NodeKind::Element {
                return None;
            }
            let p = doc.parent(n)?;
            let id = doc.name_id(n).map_or(NO_NAME, |r| names.id(r));
            Some((p.0 as usize, id))
        };
        let mut start = vec![0u32; count + 1];
        for i in 0..count {
            if let Some((p, _)) = parent_of(i) {
                if let Some(s) = start.get_mut(p + 1) {
                    *s += 1;
                }
            }
        }
        for k in 1..start.len() {
            start[k] += start[k - 1];
        }
        let mut fill = start.clone();
        let mut kids = vec![(NO_NAME, 0u32); start.last().copied().unwrap_or(0) as usize];
        // Nodes are numbered in document order: each parent's children arrive in order.
        for i in 0..count {
            if let Some((p, id)) = parent_of(i) {
                if let Some(f) = fill.get_mut(p) {
                    if let Some(slot) = kids.get_mut(*f as usize) {
                        *slot = (id, i as u32);
                        *f += 1;
                    }
                }
            }
        }
        ChildIndex { start, kids }
    }

    fn of(&self, n: NodeId) -> &[(u32, u32)] {
        let i = n.0 as usize;
        match (self.start.get(i), self.start.get(i + 1)) {
            (Some(&a), Some(&b)) => self.kids.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// Elements grouped by name id: `nodes[start[k]..start[k + 1]]` are the elements whose name
/// has the `k`-th id of `ids`, in document order.
#[derive(Debug, Clone, Default)]
struct ElementIndex {
    /// (name id, group) sorted by name id.
    ids: Vec<(u32, u32)>,
    start: Vec<u32>,
    nodes: Vec<u32>,
}

impl ElementIndex {
    fn build(doc: &Document, names: &DocNames) -> ElementIndex {
        // Group of each of the document's names (names with the same id share one).
        let mut ids: Vec<(u32, u32)> = Vec::new();
        let mut group_of: Vec<u32> = Vec::with_capacity(names.ids.len());
        let mut distinct: Vec<u32> = names.ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        distinct.retain(|&g| g != NO_NAME);
        for (k, &g) in distinct.iter().enumerate() {
            ids.push((g, k as u32));
        }
        for &g in &names.ids {
            group_of.push(match distinct.binary_search(&g) {
                Ok(k) => k as u32,
                Err(_) => u32::MAX,
            });
        }
        let group = |i: u32| -> Option<u32> {
            let n = NodeId(i);
            if doc.kind(n) != NodeKind::Element {
                return None;
            }
            let raw = doc.name_id(n)?;
            group_of
                .get(raw.index())
                .copied()
                .filter(|&k| k != u32::MAX)
        };
        // Counting sort by group, keeping document order within a group.
        let mut start = vec![0u32; distinct.len() + 1];
        let count = doc.node_count() as u32;
        for i in 0..count {
            if let Some(k) = group(i) {
                start[k as usize + 1] += 1;
            }
        }
        for k in 1..start.len() {
            start[k] += start[k - 1];
        }
        let mut fill = start.clone();
        let mut nodes = vec![0u32; start.last().copied().unwrap_or(0) as usize];
        for i in 0..count {
            if let Some(k) = group(i) {
                nodes[fill[k as usize] as usize] = i;
                fill[k as usize] += 1;
            }
        }
        ElementIndex { ids, start, nodes }
    }

    fn of(&self, id: u32) -> &[u32] {
        match self.ids.binary_search_by_key(&id, |&(g, _)| g) {
            Ok(i) => {
                let k = self.ids[i].1 as usize;
                &self.nodes[self.start[k] as usize..self.start[k + 1] as usize]
            }
            Err(_) => &[],
        }
    }
}

impl DocNames {
    /// Maps every name of `doc`.
    pub fn new(doc: &Document) -> DocNames {
        let lock = interner().read().unwrap_or_else(|e| e.into_inner());
        let ids = (0..doc.name_count())
            .map(|i| {
                let nm = doc.name(NameId(i as u32));
                find(&lock.table, &nm.ns, &nm.local).unwrap_or(NO_NAME)
            })
            .collect();
        DocNames {
            ids,
            elements: OnceCell::new(),
            children: OnceCell::new(),
        }
    }

    /// The process-wide id of the document's name `raw` (an index in its name table).
    #[inline]
    pub fn id(&self, raw: NameId) -> u32 {
        self.ids.get(raw.index()).copied().unwrap_or(NO_NAME)
    }

    /// The element children of `n` (name id, node index), in document order.
    pub fn child_elements(&self, doc: &Document, n: NodeId) -> &[(u32, u32)] {
        self.children
            .get_or_init(|| ChildIndex::build(doc, self))
            .of(n)
    }

    /// The indices of the elements named `id` among the nodes `from ..= to` of `doc`, in
    /// document order.
    pub fn elements_in(&self, doc: &Document, id: u32, from: u32, to: u32) -> &[u32] {
        let all = self
            .elements
            .get_or_init(|| ElementIndex::build(doc, self))
            .of(id);
        let lo = all.partition_point(|&n| n < from);
        let hi = all.partition_point(|&n| n <= to);
        &all[lo..hi.max(lo)]
    }
}
