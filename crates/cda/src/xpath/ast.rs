//! The compiled form of an XPath expression: an immutable tree, `Send + Sync`, shared across
//! documents and threads.

use super::value::Atomic;
use regex::Regex;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Child,
    Descendant,
    DescendantOrSelf,
    Parent,
    Ancestor,
    AncestorOrSelf,
    FollowingSibling,
    PrecedingSibling,
    Following,
    Preceding,
    Attribute,
    SelfAxis,
    Namespace,
}

impl Axis {
    pub fn from_name(s: &str) -> Option<Axis> {
        Some(match s {
            "child" => Axis::Child,
            "descendant" => Axis::Descendant,
            "descendant-or-self" => Axis::DescendantOrSelf,
            "parent" => Axis::Parent,
            "ancestor" => Axis::Ancestor,
            "ancestor-or-self" => Axis::AncestorOrSelf,
            "following-sibling" => Axis::FollowingSibling,
            "preceding-sibling" => Axis::PrecedingSibling,
            "following" => Axis::Following,
            "preceding" => Axis::Preceding,
            "attribute" => Axis::Attribute,
            "self" => Axis::SelfAxis,
            "namespace" => Axis::Namespace,
            _ => return None,
        })
    }

    pub fn is_reverse(self) -> bool {
        matches!(
            self,
            Axis::Parent
                | Axis::Ancestor
                | Axis::AncestorOrSelf
                | Axis::PrecedingSibling
                | Axis::Preceding
        )
    }
}

#[derive(Clone, PartialEq, Eq)]
pub enum NodeTest {
    /// A name test; `None` parts are wildcards. The namespace is a URI ("" = no namespace).
    /// `id` is the process-wide id of the expanded name when both parts are given (see the
    /// `xpath::names` module), `u32::MAX` otherwise.
    Name {
        ns: Option<Arc<str>>,
        local: Option<Arc<str>>,
        id: u32,
    },
    AnyNode,
    Text,
    Comment,
    Pi(Option<Arc<str>>),
    /// `element()` / `element(*)` / `element(name)`.
    Element(Option<(Arc<str>, Arc<str>)>),
    /// `attribute()` / `attribute(*)` / `attribute(name)`.
    Attribute(Option<(Arc<str>, Arc<str>)>),
    DocumentNode,
}

/// The derived form, except that a name test with an interned name is written as its id:
/// ids and expanded names map one to one (below the saturated id), so the forms that name
/// steps and predicates (`xpath::names`) stay as distinct while skipping the escaping of
/// namespace URIs.
impl std::fmt::Debug for NodeTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeTest::Name {
                ns: Some(_),
                local: Some(_),
                id,
            } if *id < super::names::NO_NAME - 1 => write!(f, "Name#{id}"),
            NodeTest::Name { ns, local, id } => f
                .debug_struct("Name")
                .field("ns", ns)
                .field("local", local)
                .field("id", id)
                .finish(),
            NodeTest::AnyNode => f.write_str("AnyNode"),
            NodeTest::Text => f.write_str("Text"),
            NodeTest::Comment => f.write_str("Comment"),
            NodeTest::Pi(t) => f.debug_tuple("Pi").field(t).finish(),
            NodeTest::Element(n) => f.debug_tuple("Element").field(n).finish(),
            NodeTest::Attribute(n) => f.debug_tuple("Attribute").field(n).finish(),
            NodeTest::DocumentNode => f.write_str("DocumentNode"),
        }
    }
}

#[derive(Clone)]
pub enum Step {
    Axis {
        axis: Axis,
        test: NodeTest,
        preds: Vec<Ast>,
        /// Process-wide id of the step's form when its result depends on its input node
        /// alone (no variable anywhere in it), else [`NO_MEMO`]: equal steps share an id, so
        /// the results of path prefixes can be memoised per document (see `xpath::eval`).
        memo: u32,
    },
    Filter {
        expr: Box<Ast>,
        preds: Vec<Ast>,
    },
}

/// The memo id of a step that depends on more than its input node.
pub const NO_MEMO: u32 = u32::MAX;

/// The derived form, except that a memoisable axis step is written as its memo id: equal
/// ids mean equal forms, so the forms that name steps and predicates (`xpath::names`) stay
/// as distinct as the full ones while an enclosing step no longer spells its inner steps
/// out again (each form was read in full once, when its step was made).
impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Axis { memo, .. } if *memo != NO_MEMO => write!(f, "Step#{memo}"),
            Step::Axis {
                axis,
                test,
                preds,
                memo,
            } => f
                .debug_struct("Axis")
                .field("axis", axis)
                .field("test", test)
                .field("preds", preds)
                .field("memo", memo)
                .finish(),
            Step::Filter { expr, preds } => f
                .debug_struct("Filter")
                .field("expr", expr)
                .field("preds", preds)
                .finish(),
        }
    }
}

impl Step {
    /// An axis step, with its memo id.
    pub fn axis(axis: Axis, test: NodeTest, preds: Vec<Ast>) -> Step {
        let memo = super::names::step_memo_id(axis, &test, &preds);
        Step::Axis {
            axis,
            test,
            preds,
            memo,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStart {
    /// Relative to the context item.
    Context,
    /// `/…`: the root of the context node's tree.
    Root,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    IDiv,
    Mod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    Union,
    Intersect,
    Except,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeCmp {
    Is,
    Before,
    After,
}

/// Atomic types usable in casts and sequence types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomicType {
    String,
    UntypedAtomic,
    Integer,
    Decimal,
    Double,
    Boolean,
    Date,
    DateTime,
    AnyAtomic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occurrence {
    One,
    Optional,
    ZeroOrMore,
    OneOrMore,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemType {
    Atomic(AtomicType),
    Node(NodeTest),
    Item,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeqType {
    Empty,
    Of(ItemType, Occurrence),
}

/// Built-in functions, resolved at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Count,
    Not,
    True,
    False,
    Boolean,
    String,
    Data,
    Number,
    StringLength,
    NormalizeSpace,
    Contains,
    StartsWith,
    EndsWith,
    Substring,
    SubstringBefore,
    SubstringAfter,
    Concat,
    StringJoin,
    UpperCase,
    LowerCase,
    Translate,
    Matches,
    Replace,
    Tokenize,
    LocalName,
    Name,
    NamespaceUri,
    Exists,
    Empty,
    Sum,
    Avg,
    Min,
    Max,
    Round,
    Floor,
    Ceiling,
    Abs,
    Position,
    Last,
    DistinctValues,
    Root,
    Reverse,
    Doc,
    Cast(AtomicType),
}

#[derive(Debug, Clone)]
pub enum Ast {
    Literal(Atomic),
    Var(Arc<str>),
    ContextItem,
    Path {
        start: PathStart,
        steps: Vec<Step>,
    },
    Filter(Box<Ast>, Vec<Ast>),
    Sequence(Vec<Ast>),
    Or(Box<Ast>, Box<Ast>),
    And(Box<Ast>, Box<Ast>),
    General(CmpOp, Box<Ast>, Box<Ast>),
    Value(CmpOp, Box<Ast>, Box<Ast>),
    NodeCompare(NodeCmp, Box<Ast>, Box<Ast>),
    Range(Box<Ast>, Box<Ast>),
    Arith(ArithOp, Box<Ast>, Box<Ast>),
    Negate(Box<Ast>),
    Set(SetOp, Box<Ast>, Box<Ast>),
    If(Box<Ast>, Box<Ast>, Box<Ast>),
    For(Vec<(Arc<str>, Ast)>, Box<Ast>),
    Quantified {
        every: bool,
        bindings: Vec<(Arc<str>, Ast)>,
        test: Box<Ast>,
    },
    Call(Func, Vec<Ast>, Option<Arc<Regex>>),
    InstanceOf(Box<Ast>, SeqType),
    TreatAs(Box<Ast>, SeqType),
    CastAs(Box<Ast>, AtomicType, bool),
    CastableAs(Box<Ast>, AtomicType, bool),
    /// A predicate whose value depends on the context node's name alone (e.g.
    /// `contains(local-name(), 'Organization')`), marked at compile time so that it is
    /// evaluated once per distinct name of a document. The `u32` is the process-wide id of
    /// its form (equal expressions share it; see `xpath::names`).
    NameOnly(u32, Box<Ast>),
}
