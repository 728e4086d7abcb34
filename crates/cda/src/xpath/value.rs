//! Values of the XPath 2.0 data model used here: sequences of nodes and atomic values.

use crate::xml::{AttrId, Document, NodeId};

/// A node of a [`Document`]: a tree node or an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeRef {
    Node(NodeId),
    Attr(AttrId),
}

impl NodeRef {
    /// A key whose order is document order (attributes right after their element).
    pub fn order_key(self, doc: &Document) -> u64 {
        match self {
            NodeRef::Node(n) => u64::from(n.0) << 32,
            NodeRef::Attr(a) => (u64::from(doc.attr_owner(a).0) << 32) | (u64::from(a.0) + 1),
        }
    }

    pub fn string_value(self, doc: &Document) -> String {
        match self {
            NodeRef::Node(n) => doc.string_value(n),
            NodeRef::Attr(a) => doc.attr_value(a).to_owned(),
        }
    }
}

/// An atomic value. Decimals are carried as `f64` (enough for the rule files in use).
#[derive(Debug, Clone, PartialEq)]
pub enum Atomic {
    String(String),
    Untyped(String),
    Integer(i64),
    Decimal(f64),
    Double(f64),
    Boolean(bool),
    /// `xs:date`, kept in its canonical lexical form (`YYYY-MM-DD` plus optional zone).
    Date(String),
}

impl Atomic {
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            Atomic::Integer(_) | Atomic::Decimal(_) | Atomic::Double(_)
        )
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Atomic::Integer(i) => Some(*i as f64),
            Atomic::Decimal(d) | Atomic::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// The value's string form (`fn:string` on an atomic value).
    pub fn to_xpath_string(&self) -> String {
        match self {
            Atomic::String(s) | Atomic::Untyped(s) | Atomic::Date(s) => s.clone(),
            Atomic::Integer(i) => i.to_string(),
            Atomic::Decimal(d) => decimal_to_string(*d),
            Atomic::Double(d) => double_to_string(*d),
            Atomic::Boolean(b) => b.to_string(),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Atomic::String(_) => "xs:string",
            Atomic::Untyped(_) => "xs:untypedAtomic",
            Atomic::Integer(_) => "xs:integer",
            Atomic::Decimal(_) => "xs:decimal",
            Atomic::Double(_) => "xs:double",
            Atomic::Boolean(_) => "xs:boolean",
            Atomic::Date(_) => "xs:date",
        }
    }
}

/// An item of a sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Node(NodeRef),
    Atomic(Atomic),
}

/// A sequence of items.
pub type Sequence = Vec<Item>;

/// XPath 2.0 canonical string of an `xs:double`.
pub fn double_to_string(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "INF".into() } else { "-INF".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let a = d.abs();
    if (1e-6..1e6).contains(&a) {
        decimal_to_string(d)
    } else {
        let s = format!("{d:E}");
        // Rust prints "1E7" / "1.5E-7"; XPath wants a mantissa with a fraction digit.
        match s.split_once('E') {
            Some((m, e)) if !m.contains('.') => format!("{m}.0E{e}"),
            _ => s,
        }
    }
}

/// Canonical string of an `xs:decimal` (no exponent, no trailing zeros).
pub fn decimal_to_string(d: f64) -> String {
    if d.fract() == 0.0 && d.abs() < 1e18 {
        format!("{}", d as i64)
    } else {
        let s = format!("{d}");
        if s.contains('e') {
            format!("{d:.20}").trim_end_matches('0').to_owned()
        } else {
            s
        }
    }
}

/// Parses an `xs:double` lexical form (after whitespace trimming); `None` when invalid.
pub fn parse_double(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
    match t {
        "INF" | "+INF" => return Some(f64::INFINITY),
        "-INF" => return Some(f64::NEG_INFINITY),
        "NaN" => return Some(f64::NAN),
        _ => {}
    }
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        || !t.bytes().any(|b| b.is_ascii_digit())
    {
        return None;
    }
    t.parse::<f64>().ok()
}

/// Parses an `xs:decimal` lexical form.
pub fn parse_decimal(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    if body.is_empty()
        || !body.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        || body.bytes().filter(|&b| b == b'.').count() > 1
        || !body.bytes().any(|b| b.is_ascii_digit())
    {
        return None;
    }
    t.parse::<f64>().ok()
}

/// Parses an `xs:integer` lexical form.
pub fn parse_integer(s: &str) -> Option<i64> {
    let t = s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<i64>().ok()
}

/// Checks an `xs:date` lexical form (`-?YYYY-MM-DD` with optional `Z` or `±hh:mm`).
pub fn parse_date(s: &str) -> Option<String> {
    let t = s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
    let b = t.as_bytes();
    if b.len() < 10 {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|x| x.iter().all(u8::is_ascii_digit))
    };
    if !(digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10)) {
        return None;
    }
    let month: u32 = t[5..7].parse().ok()?;
    let day: u32 = t[8..10].parse().ok()?;
    let year: i32 = t[0..4].parse().ok()?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let max = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > max {
        return None;
    }
    let zone = &t[10..];
    let zb = zone.as_bytes();
    let zone_ok = zone.is_empty()
        || zone == "Z"
        || (zb.len() == 6
            && matches!(zb[0], b'+' | b'-')
            && zb[1..3].iter().all(u8::is_ascii_digit)
            && zb[3] == b':'
            && zb[4..6].iter().all(u8::is_ascii_digit));
    zone_ok.then(|| t.to_owned())
}
