//! Soundness of the XSD stage's fast verdict: whenever it says "valid", the full XSD engine
//! (reading the bytes again with its own reader, `RuleSet::xsd_errors(.., true)`) reports
//! no error.
//!
//! Reads the official material under `../shared/conformance` (or `$FSE_CONFORMANCE`) and
//! the repository's `fixtures/build`; fails when the material is missing.
//!
//! - `fast_verdict_agrees_on_every_official_document`: after one learning pass over the
//!   corpus, every document's fast verdict is checked against the full engine's, and the
//!   fast path must answer for nearly every valid document (so that the check bites);
//! - `facts_learnt_on_one_thread_serve_the_others`: the engine and the learnt facts are
//!   shared: a thread that never ran the full engine answers as the one that learnt, and
//!   two threads learning at once give the verdicts of one thread alone;
//! - `fixed_values_of_required_attributes_are_not_taken_on_trust`: a wrong `fixed` value
//!   of a required attribute is never accepted by the fast verdict;
//! - `fast_verdict_is_sound_on_mutated_documents`: a proptest that damages valid samples
//!   (renames, drops, duplicates, swaps elements, changes/removes/adds attributes, swaps
//!   `xsi:type`, adds text, duplicates `ID`s) and checks `fast valid => full valid`, and that
//!   the stage as a whole (fast verdict, then the full engine) reports exactly what the full
//!   engine reports.

mod common;

use common::conformance;
use fse_cda::validate::RuleSet;
use fse_cda::xml::parse;
use proptest::prelude::*;
use regex::Regex;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn collect(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            collect(&e, out);
        }
    } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")) {
        out.push(p.to_path_buf());
    }
}

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let c = conformance();
    let mut files = Vec::new();
    collect(&c.join("cda/samples"), &mut files);
    collect(&c.join("accreditamento"), &mut files);
    collect(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/build"),
        &mut files,
    );
    assert!(files.len() > 1000, "only {} documents found", files.len());
    files
        .into_iter()
        .map(|f| {
            let b = std::fs::read(&f).unwrap();
            (f, b)
        })
        .collect()
}

/// `Some(errors of the full engine)` when the fast verdict said valid, checking it;
/// `None` when it was not sure. Panics when the fast verdict says valid and the full
/// engine does not.
fn check(rules: &RuleSet, name: &str, bytes: &[u8]) -> Option<bool> {
    let doc = parse(bytes).ok()?;
    let fast = rules.xsd_fast_verdict(&doc, bytes).unwrap();
    let full = rules.xsd_errors(&doc, bytes, true).unwrap();
    if fast == Some(true) {
        assert!(
            full.is_empty(),
            "{name}: the fast verdict says valid, the full engine reports {full:?}"
        );
    }
    // The stage as run (fast verdict, then the full engine walk, learning) reports
    // exactly what the full engine reports.
    let staged = rules.xsd_errors(&doc, bytes, false).unwrap();
    assert_eq!(staged, full, "{name}");
    Some(full.is_empty())
}

#[test]
fn fast_verdict_agrees_on_every_official_document() {
    let rules = RuleSet::load(&conformance().join("cda")).unwrap();
    let docs = corpus();
    // Learning pass.
    for (_, b) in &docs {
        if let Ok(d) = parse(b) {
            let _ = rules.xsd_errors(&d, b, false);
        }
    }
    let (mut valid, mut answered, mut invalid) = (0, 0, 0);
    for (f, b) in &docs {
        let Ok(d) = parse(b) else { continue };
        let fast = rules.xsd_fast_verdict(&d, b).unwrap();
        let full = rules.xsd_errors(&d, b, true).unwrap();
        if full.is_empty() {
            valid += 1;
            answered += usize::from(fast == Some(true));
        } else {
            invalid += 1;
            assert_eq!(
                fast,
                None,
                "{}: fast says valid, full engine: {full:?}",
                f.display()
            );
        }
    }
    assert!(invalid > 0, "the corpus has XSD-invalid documents");
    assert!(
        answered * 100 >= valid * 95,
        "the fast verdict answered only {answered} of {valid} valid documents"
    );
}

/// The XSD engine and what the fast verdict learns from it are shared by every thread: once
/// one thread has taken documents through the stage, another thread that never ran the
/// full engine answers them as the first thread would on a second pass (the same
/// documents, valid and answered, and only the ones the fast verdict cannot answer handed
/// to the engine), and the verdicts stay the full engine's.
#[test]
fn facts_learnt_on_one_thread_serve_the_others() {
    let rules = RuleSet::load(&conformance().join("cda")).unwrap();
    let docs: Vec<_> = corpus().into_iter().step_by(3).collect();
    let pass = |rules: &RuleSet| {
        let before = rules.xsd_fast_counts();
        let mut answered = Vec::new();
        for (f, b) in &docs {
            let Ok(d) = parse(b) else { continue };
            if rules.xsd_fast_verdict(&d, b).unwrap() == Some(true) {
                answered.push(f.clone());
            }
            let _ = rules.xsd_errors(&d, b, false).unwrap();
        }
        let after = rules.xsd_fast_counts();
        (answered, (after.0 - before.0, after.1 - before.1))
    };
    let (first, second) =
        std::thread::scope(|s| s.spawn(|| (pass(&rules), pass(&rules))).join().unwrap());
    // The first pass learnt: some documents went to the full engine.
    assert!(
        first.1 .1 > second.1 .1,
        "{:?} then {:?}",
        first.1,
        second.1
    );
    let other = std::thread::scope(|s| s.spawn(|| pass(&rules)).join().unwrap());
    assert_eq!(
        other.1, second.1,
        "(answered, to the full engine) on the other thread"
    );
    assert_eq!(other.0, second.0, "documents the fast verdict answered");
    assert!(other.0.len() * 2 > docs.len(), "{} answered", other.0.len());
    // Two threads at once on a fresh rule set: the same verdicts as one thread alone.
    let fresh = RuleSet::load(&conformance().join("cda")).unwrap();
    let alone: Vec<_> = docs
        .iter()
        .map(|(_, b)| {
            parse(b)
                .ok()
                .map(|d| rules.xsd_errors(&d, b, true).unwrap())
        })
        .collect();
    std::thread::scope(|s| {
        for k in 0..2 {
            let (fresh, docs, alone) = (&fresh, &docs, &alone);
            s.spawn(move || {
                for ((f, b), expected) in docs.iter().zip(alone).skip(k).step_by(2) {
                    let Ok(d) = parse(b) else { continue };
                    let got = fresh.xsd_errors(&d, b, false).unwrap();
                    assert_eq!(Some(&got), expected.as_ref(), "{}", f.display());
                }
            });
        }
    });
}

/// A required attribute with a `fixed` value (`typeId/@root`) given another valid OID: the
/// fast verdict must leave the document to the full engine, which refuses it.
#[test]
fn fixed_values_of_required_attributes_are_not_taken_on_trust() {
    let f = fixture();
    let (name, text) = f
        .docs
        .iter()
        .find(|(_, t)| t.contains("root=\"2.16.840.1.113883.1.3\""))
        .expect("a valid sample with typeId");
    let bad = text.replacen(
        "root=\"2.16.840.1.113883.1.3\"",
        "root=\"2.16.840.1.113883.1.4\"",
        1,
    );
    // Twice: the second time after the engine has seen the bad value refused.
    for _ in 0..2 {
        assert_eq!(check(&f.rules, name, bad.as_bytes()), Some(false), "{name}");
        let doc = parse(bad.as_bytes()).unwrap();
        assert_eq!(
            f.rules.xsd_fast_verdict(&doc, bad.as_bytes()).unwrap(),
            None
        );
    }
    // The original is answered by the fast verdict.
    let doc = parse(text.as_bytes()).unwrap();
    assert_eq!(
        f.rules.xsd_fast_verdict(&doc, text.as_bytes()).unwrap(),
        Some(true),
        "{name}"
    );
}

/// Valid documents to mutate, with the fast model of `RULES` warm on them.
struct Fixture {
    rules: RuleSet,
    docs: Vec<(String, String)>,
    xsi_types: Vec<String>,
    names: Vec<String>,
}

/// The fixture, with the fast model warm on its documents (warmed once per calling thread,
/// as when the models were per thread: harmless now that they are shared).
fn fixture() -> &'static Fixture {
    thread_local! {
        static WARM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    let f = shared_fixture();
    if !WARM.with(|w| w.replace(true)) {
        for (_, text) in &f.docs {
            if let Ok(d) = parse(text.as_bytes()) {
                let _ = f.rules.xsd_errors(&d, text.as_bytes(), false);
            }
        }
    }
    f
}

fn shared_fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rules = RuleSet::load(&conformance().join("cda")).unwrap();
        let mut docs = Vec::new();
        let xsi = Regex::new(r#"xsi:type="([^"]*)""#).unwrap();
        let tag = Regex::new(r"<([A-Za-z][A-Za-z0-9_.-]*)[\s/>]").unwrap();
        let mut xsi_types = vec![
            "CD".to_owned(),
            "hl7:CD".to_owned(),
            "nope:CD".to_owned(),
            "NOPE".to_owned(),
            " CD".to_owned(),
            "ANY".to_owned(),
            "xs:string".to_owned(),
        ];
        let mut names = vec!["unknown".to_owned()];
        for (f, b) in corpus() {
            let Ok(text) = String::from_utf8(b) else {
                continue;
            };
            let Ok(d) = parse(text.as_bytes()) else {
                continue;
            };
            if rules
                .xsd_errors(&d, text.as_bytes(), false)
                .unwrap()
                .is_empty()
            {
                for c in xsi.captures_iter(&text) {
                    xsi_types.push(c[1].to_owned());
                }
                for c in tag.captures_iter(&text) {
                    names.push(c[1].to_owned());
                }
                docs.push((f.display().to_string(), text));
            }
        }
        xsi_types.sort();
        xsi_types.dedup();
        names.sort();
        names.dedup();
        Fixture {
            rules,
            docs,
            xsi_types,
            names,
        }
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Rename(usize, usize),
    Drop(usize),
    Duplicate(usize),
    Swap(usize, usize),
    AttrValue(usize, String),
    AttrDrop(usize),
    AttrAdd(usize, usize, String),
    XsiType(usize, usize),
    Text(usize, String),
    DuplicateId(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let i = || 0usize..100_000;
    let value = || proptest::string::string_regex("[a-zA-Z0-9 .:_-]{0,12}").unwrap();
    prop_oneof![
        (i(), i()).prop_map(|(a, b)| Mutation::Rename(a, b)),
        i().prop_map(Mutation::Drop),
        i().prop_map(Mutation::Duplicate),
        (i(), i()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (i(), value()).prop_map(|(a, v)| Mutation::AttrValue(a, v)),
        i().prop_map(Mutation::AttrDrop),
        (i(), i(), value()).prop_map(|(a, b, v)| Mutation::AttrAdd(a, b, v)),
        (i(), i()).prop_map(|(a, b)| Mutation::XsiType(a, b)),
        (i(), value()).prop_map(|(a, v)| Mutation::Text(a, v)),
        (i(), i()).prop_map(|(a, b)| Mutation::DuplicateId(a, b)),
    ]
}

const ATTRS: &[&str] = &[
    "nullFlavor",
    "code",
    "codeSystem",
    "root",
    "extension",
    "value",
    "unit",
    "classCode",
    "moodCode",
    "typeCode",
    "ID",
    "use",
    "inversionInd",
    "foo",
];

/// Applies `m` to `text`; `None` when it does not apply.
fn apply(f: &Fixture, text: &str, m: &Mutation) -> Option<String> {
    static RE: OnceLock<(Regex, Regex, Regex, Regex)> = OnceLock::new();
    let (empty, attr, start, xsi) = RE.get_or_init(|| {
        (
            // A self-closing element.
            Regex::new(r"<([A-Za-z][A-Za-z0-9_.:-]*)(\s[^<>]*)?/>").unwrap(),
            // An attribute (not a namespace declaration).
            Regex::new(r#"\s([A-Za-z][A-Za-z0-9_.:-]*)="([^"<>]*)""#).unwrap(),
            // The end of a start tag's name.
            Regex::new(r"<[A-Za-z][A-Za-z0-9_.:-]*").unwrap(),
            Regex::new(r#"xsi:type="([^"]*)""#).unwrap(),
        )
    });
    let nth = |re: &Regex, k: usize| {
        let all: Vec<_> = re.find_iter(text).collect();
        (!all.is_empty()).then(|| all[k % all.len()])
    };
    let splice = |r: std::ops::Range<usize>, with: &str| {
        let mut s = text.to_owned();
        s.replace_range(r, with);
        s
    };
    Some(match m {
        Mutation::Rename(a, b) => {
            let e = nth(empty, *a)?;
            let c = empty.captures(e.as_str())?;
            let name = &f.names[b % f.names.len()];
            let renamed = format!("<{name}{}/>", c.get(2).map_or("", |g| g.as_str()));
            splice(e.range(), &renamed)
        }
        Mutation::Drop(a) => splice(nth(empty, *a)?.range(), ""),
        Mutation::Duplicate(a) => {
            let e = nth(empty, *a)?;
            splice(e.range(), &format!("{0}{0}", e.as_str()))
        }
        Mutation::Swap(a, b) => {
            let x = nth(empty, *a)?;
            let y = nth(empty, *b)?;
            if x.start() == y.start() {
                return None;
            }
            let (x, y) = if x.start() < y.start() {
                (x, y)
            } else {
                (y, x)
            };
            format!(
                "{}{}{}{}{}",
                &text[..x.start()],
                y.as_str(),
                &text[x.end()..y.start()],
                x.as_str(),
                &text[y.end()..]
            )
        }
        Mutation::AttrValue(a, v) => {
            let e = nth(attr, *a)?;
            let c = attr.captures(e.as_str())?;
            if c[1].starts_with("xmlns") {
                return None;
            }
            splice(e.range(), &format!(" {}=\"{v}\"", &c[1]))
        }
        Mutation::AttrDrop(a) => {
            let e = nth(attr, *a)?;
            if e.as_str().trim_start().starts_with("xmlns") {
                return None;
            }
            splice(e.range(), "")
        }
        Mutation::AttrAdd(a, b, v) => {
            let e = nth(start, *a)?;
            let name = ATTRS[b % ATTRS.len()];
            splice(e.end()..e.end(), &format!(" {name}=\"{v}\""))
        }
        Mutation::XsiType(a, b) => {
            let e = nth(xsi, *a)?;
            let t = &f.xsi_types[b % f.xsi_types.len()];
            splice(e.range(), &format!("xsi:type=\"{t}\""))
        }
        Mutation::Text(a, v) => {
            let e = nth(empty, *a)?;
            let c = empty.captures(e.as_str())?;
            let with = format!(
                "<{0}{1}>{v}</{0}>",
                &c[1],
                c.get(2).map_or("", |g| g.as_str())
            );
            splice(e.range(), &with)
        }
        Mutation::DuplicateId(a, b) => {
            let x = nth(start, *a)?.end();
            let y = nth(start, *b)?.end();
            if x == y {
                return None;
            }
            let (lo, hi) = (x.min(y), x.max(y));
            let mut s = text.to_owned();
            s.insert_str(hi, " ID=\"dup\"");
            s.insert_str(lo, " ID=\"dup\"");
            s
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]
    #[test]
    fn fast_verdict_is_sound_on_mutated_documents(
        d in 0usize..100_000,
        ms in proptest::collection::vec(mutation(), 1..4),
    ) {
        let f = fixture();
        prop_assume!(!f.docs.is_empty());
        let (name, text) = &f.docs[d % f.docs.len()];
        let mut text = text.clone();
        for m in &ms {
            if let Some(t) = apply(f, &text, m) {
                text = t;
            }
        }
        check(&f.rules, &format!("{name} {ms:?}"), text.as_bytes());
    }
}

/// `prepare_xsd` compiles a set once, side by side with another thread's, and documents
/// then use it without compiling again; an unknown typeId extension is an error.
#[test]
fn xsd_sets_prepared_in_parallel_are_compiled_once() {
    let rules = RuleSet::load(&conformance().join("cda")).expect("official rules");
    let names = rules.xsd_set_names();
    assert!(
        names.len() >= 2,
        "the official rules have two XSD sets: {names:?}"
    );
    std::thread::scope(|s| {
        for &ext in &names {
            let rules = &rules;
            s.spawn(move || rules.prepare_xsd(ext).expect("compiles"));
        }
    });
    assert!(rules.prepare_xsd("POCD_XX_NO_SUCH_SET").is_err());
    for (path, bytes) in corpus().iter().take(20) {
        let doc = parse(bytes).expect("official sample parses");
        rules
            .xsd_errors(&doc, bytes, false)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let compiles: Vec<String> = rules
        .load_times()
        .into_iter()
        .map(|(what, _)| what)
        .filter(|what| what.starts_with("xsd "))
        .collect();
    let mut expected: Vec<String> = names.iter().map(|n| format!("xsd {n} compile")).collect();
    let mut got = compiles.clone();
    expected.sort();
    got.sort();
    assert_eq!(
        got, expected,
        "each set compiled exactly once: {compiles:?}"
    );
}
