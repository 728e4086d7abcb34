//! Unit tests of the XPath engine.

use super::*;
use crate::xml::parse;

const DOC: &str = r#"<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <realmCode code="IT"/>
  <templateId root="2.16.840.1.113883.2.9.10.1.1" extension="1.2"/>
  <code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/>
  <versionNumber value="2"/>
  <recordTarget><patientRole><id root="2.16.840.1.113883.2.9.4.3.2" extension="RSSMRA70A01H501S"/>
    <patient><name><given>Mario</given><family>Rossi</family></name></patient></patientRole></recordTarget>
  <component><structuredBody>
    <component><section><code code="18719-5"/><entry><act/></entry><entry><act/></entry></section></component>
    <component><section><code code="18723-7"/></section></component>
  </structuredBody></component>
</ClinicalDocument>"#;

fn ns() -> Namespaces {
    let mut m = Namespaces::new();
    m.insert("hl7".into(), "urn:hl7-org:v3".into());
    m.insert(
        "xsi".into(),
        "http://www.w3.org/2001/XMLSchema-instance".into(),
    );
    m
}

fn eval_str(expr: &str) -> String {
    let doc = parse(DOC.as_bytes()).unwrap();
    let x = XPath::compile(expr, &ns()).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let mut env = Env::new(&doc);
    let ctx = Focus::node(NodeRef::Node(doc.document_element().unwrap()));
    x.evaluate_string(&mut env, &ctx)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn eval_err(expr: &str) -> XPathError {
    let doc = parse(DOC.as_bytes()).unwrap();
    let x = XPath::compile(expr, &ns()).unwrap();
    let mut env = Env::new(&doc);
    let ctx = Focus::node(NodeRef::Node(doc.document_element().unwrap()));
    x.evaluate(&mut env, &ctx).unwrap_err()
}

#[test]
fn paths_and_counts() {
    assert_eq!(eval_str("count(hl7:realmCode)"), "1");
    assert_eq!(eval_str("count(hl7:realmCode[@code='IT'])= 1"), "true");
    assert_eq!(eval_str("count(//hl7:section)"), "2");
    assert_eq!(eval_str("count(//hl7:entry/hl7:act)"), "2");
    assert_eq!(
        eval_str("count(hl7:component/hl7:structuredBody/hl7:component[2]/hl7:section)"),
        "1"
    );
    assert_eq!(
        eval_str("hl7:component/hl7:structuredBody/hl7:component[1]/hl7:section/hl7:code/@code"),
        "18719-5"
    );
    assert_eq!(
        eval_str("//hl7:section[hl7:code/@code='18723-7']/hl7:code/@code"),
        "18723-7"
    );
    assert_eq!(eval_str("local-name((//hl7:act)[1]/..)"), "entry");
    assert_eq!(eval_str("count(//hl7:act/ancestor::hl7:section)"), "1");
    assert_eq!(eval_str("count(//hl7:act[1])"), "2");
    assert_eq!(eval_str("count((//hl7:act)[1])"), "1");
    assert_eq!(eval_str("count(//*[contains(local-name(), 'Role')])"), "1");
    assert_eq!(eval_str("count(//hl7:name[parent::hl7:patient])"), "1");
    assert_eq!(eval_str("name(/*)"), "ClinicalDocument");
    assert_eq!(
        eval_str("count(hl7:realmCode | hl7:code | hl7:realmCode)"),
        "2"
    );
    assert_eq!(eval_str("count(//hl7:entry[1]/following-sibling::*)"), "1");
    assert_eq!(
        eval_str("count(//hl7:entry[2]/preceding-sibling::hl7:*)"),
        "2"
    );
    assert_eq!(eval_str("//hl7:patient/hl7:name"), "MarioRossi");
    assert_eq!(
        eval_str("string-join(//hl7:name/*/local-name(), ',')"),
        "given,family"
    );
}

#[test]
fn comparisons_follow_xpath2() {
    assert_eq!(eval_str("hl7:versionNumber/@value = 2"), "true");
    assert_eq!(eval_str("hl7:versionNumber/@value = '2'"), "true");
    assert_eq!(eval_str("hl7:versionNumber/@value != '1'"), "true");
    assert_eq!(eval_str("hl7:versionNumber/@value > 1.5"), "true");
    assert_eq!(eval_str("//hl7:code/@code = '18723-7'"), "true");
    assert_eq!(eval_str("//hl7:code/@code != '18723-7'"), "true");
    assert_eq!(eval_str("hl7:nothing = hl7:nothing"), "false");
    assert_eq!(eval_str("string(number('abc')) = 'NaN'"), "true");
    assert_eq!(eval_str("string(number(hl7:versionNumber/@value))"), "2");
    assert_eq!(eval_str("1 eq 1.0"), "true");
    assert_eq!(eval_str("'a' lt 'b'"), "true");
    // untypedAtomic compared with a number is cast: a bad lexical form is a dynamic error
    assert!(
        matches!(eval_err("hl7:realmCode/@code = 1"), XPathError::Dynamic { code, .. } if code == "FORG0001")
    );
    assert!(matches!(eval_err("'a' = 1"), XPathError::Dynamic { code, .. } if code == "XPTY0004"));
    assert!(
        matches!(eval_err("substring-after(//hl7:code/@code, '1')"), XPathError::Dynamic { code, .. } if code == "XPTY0004")
    );
}

#[test]
fn functions_and_control_flow() {
    assert_eq!(eval_str("matches(//hl7:id/@extension, '[A-Z0-9]{16}') and string-length(//hl7:id/@extension)=16"), "true");
    assert_eq!(
        eval_str("matches('2.16.840.1.113883.2.9.4.3.2', '^\\d{1}\\.16\\.')"),
        "true"
    );
    assert_eq!(
        eval_str("substring-after('2.16.840.1.113883.2.9.2.90', '2.16.840.1.113883.2.9.2.')"),
        "90"
    );
    assert_eq!(eval_str("substring-before('a/b/c', '/')"), "a");
    assert_eq!(eval_str("substring('12345', 2, 3)"), "234");
    assert_eq!(eval_str("normalize-space('  a  b ')"), "a b");
    assert_eq!(eval_str("concat('a', 1, true())"), "a1true");
    assert_eq!(
        eval_str("if (count(//hl7:act) = 2) then 'two' else 'other'"),
        "two"
    );
    assert_eq!(
        eval_str("every $a in //hl7:act satisfies local-name($a/..) = 'entry'"),
        "true"
    );
    assert_eq!(
        eval_str("some $c in //hl7:code/@code satisfies $c = '11502-2'"),
        "true"
    );
    assert_eq!(eval_str("for $i in 1 to 3 return $i * 2"), "2 4 6");
    assert_eq!(
        eval_str("xs:date('2024-02-29') < xs:date('2024-03-01')"),
        "true"
    );
    assert_eq!(eval_str("'2024-02-30' castable as xs:date"), "false");
    assert_eq!(eval_str("xs:integer('42') + 1"), "43");
    assert_eq!(eval_str("7 div 2"), "3.5");
    assert_eq!(eval_str("7 idiv 2"), "3");
    assert_eq!(eval_str("-(3 mod 2)"), "-1");
    assert_eq!(eval_str("number('1e7')"), "1.0E7");
    assert_eq!(eval_str("translate('abc', 'ab', 'A')"), "Ac");
}

#[test]
fn syntax_errors_are_reported() {
    for bad in [
        "count(",
        "a[",
        "1 +",
        "foo:bar(1)",
        "unknown-fn(1)",
        "'open",
        "hl7:a/",
        "@",
        "'a' || 'b'",
    ] {
        assert!(
            XPath::compile(bad, &ns()).is_err(),
            "{bad} should not parse"
        );
    }
}

#[test]
fn long_chains_are_balanced_or_refused() {
    // 500 `or`s: balanced, evaluated left to right
    let chain = vec!["count(hl7:realmCode) = 0"; 500].join(" or ") + " or count(hl7:realmCode) = 1";
    assert_eq!(eval_str(&chain), "true");
    // a left-deep arithmetic chain deeper than the limit is refused, not overflowed
    let deep = "1".to_owned() + &" + 1".repeat(2000);
    assert!(XPath::compile(&deep, &ns()).is_err());
    assert_eq!(eval_str(&("1".to_owned() + &" + 1".repeat(50))), "51");
}

#[test]
fn compiled_expressions_are_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<XPath>();
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn arbitrary_expressions_never_panic(src in "[a-z:@/\\[\\]()$.,'\"=<>!*|+ 0-9-]{0,60}") {
            if let Ok(x) = XPath::compile(&src, &ns()) {
                let doc = parse(DOC.as_bytes()).unwrap();
                let mut env = Env::new(&doc);
                let ctx = Focus::node(NodeRef::Node(doc.document_element().unwrap()));
                let _ = x.evaluate(&mut env, &ctx);
            }
        }

        /// Any Unicode text (not only XPath's alphabet) compiles or is refused, never panics;
        /// a refusal is a syntax error with an offset inside the text.
        #[test]
        fn arbitrary_unicode_text_compiles_or_is_refused(src in any::<String>()) {
            match XPath::compile(&src, &ns()) {
                Ok(_) => {}
                Err(XPathError::Syntax { position, .. }) => prop_assert!(position <= src.len()),
                Err(e) => prop_assert!(false, "not a syntax error: {e}"),
            }
        }

        /// Sequences of real XPath tokens (the shapes the official schematrons use) compile or
        /// are refused, never panic.
        #[test]
        fn token_soup_compiles_or_is_refused(tokens in proptest::collection::vec(prop_oneof![
            Just("hl7:section"), Just("/"), Just("//"), Just("["), Just("]"), Just("("), Just(")"),
            Just("@code"), Just("="), Just("!="), Just("'x'"), Just("1"), Just("2.5"), Just(","),
            Just("count"), Just("and"), Just("or"), Just("not"), Just("$v"), Just("for"),
            Just("in"), Just("return"), Just("some"), Just("satisfies"), Just("if"),
            Just("then"), Just("else"), Just("."), Just(".."), Just("*"), Just("|"),
            Just("cast as"), Just("xs:integer"), Just("?"), Just("instance of"), Just("to"),
            Just("ancestor::"), Just("text()"), Just("node()"), Just("-"), Just("+"),
            Just("matches"), Just("string-length"), Just(" "),
        ], 0..40)) {
            let src = tokens.concat();
            let _ = XPath::compile(&src, &ns());
        }

        #[test]
        fn deep_nesting_is_refused_not_overflowed(depth in 150usize..600) {
            let src = "(".repeat(depth) + "1" + &")".repeat(depth);
            let _ = XPath::compile(&src, &ns());
        }
    }
}

#[test]
fn name_tests_by_id_match_every_prefix_and_subtree() {
    // The same expanded name under two prefixes, nested elements of one name, attributes:
    // name tests go through process-wide ids and the per-document element index.
    let doc = parse(
        br#"<a xmlns="urn:x" xmlns:p="urn:x" xmlns:q="urn:other"><b k="1"/><p:b k="2"/><q:b k="3"/><c><b k="4"><b k="5"/></b></c></a>"#,
    )
    .unwrap();
    let mut m = Namespaces::new();
    m.insert("x".into(), "urn:x".into());
    let run = |expr: &str| {
        let x = XPath::compile(expr, &m).unwrap();
        let mut env = Env::new(&doc);
        let ctx = Focus::node(NodeRef::Node(doc.document_element().unwrap()));
        x.evaluate_string(&mut env, &ctx).unwrap()
    };
    assert_eq!(run("count(//x:b)"), "4");
    assert_eq!(run("string-join(//x:b/@k, ',')"), "1,2,4,5");
    assert_eq!(run("string-join(x:b/@k, ',')"), "1,2");
    assert_eq!(run("string-join(x:c//x:b/@k, ',')"), "4,5");
    assert_eq!(run("string-join(x:c/x:b/x:b/@k, ',')"), "5");
    assert_eq!(run("count(//*:b)"), "5");
    assert_eq!(run("count(//x:b[@k = '2'])"), "1");
    assert_eq!(run("count(//x:nothing)"), "0");
    assert_eq!(
        run("string-join(//x:b[contains(local-name(), 'b')][2]/@k, ',')"),
        "2"
    );
}

/// Evaluates every expression in ONE environment (so memoised path prefixes are shared), from
/// several context nodes, and compares with a fresh environment per evaluation.
#[test]
fn memoised_prefixes_match_fresh_evaluation() {
    let doc = parse(DOC.as_bytes()).unwrap();
    let exprs = [
        "count(hl7:component/hl7:structuredBody/hl7:component/hl7:section)",
        "count(hl7:component/hl7:structuredBody/hl7:component/hl7:section[hl7:code[@code='18719-5']]/hl7:entry)",
        "count(hl7:component/hl7:structuredBody/hl7:component/hl7:section[hl7:code[@code='18723-7']]/hl7:entry)",
        "count(hl7:component/hl7:structuredBody/hl7:component[2]/hl7:section/hl7:code)",
        "count(hl7:component/hl7:structuredBody/hl7:component[last()]/hl7:section/hl7:code[@code='18723-7'])",
        "count(hl7:section[hl7:code[@code='18719-5']]/hl7:entry)",
        "count(hl7:section[hl7:code[@code='18719-5']]/hl7:entry[1])",
        "count(hl7:section[hl7:code[@code=$c]]/hl7:entry)",
        "count(hl7:recordTarget/hl7:patientRole/hl7:id[@root='2.16.840.1.113883.2.9.4.3.2'])",
        "hl7:recordTarget/hl7:patientRole/hl7:patient/hl7:name/hl7:given",
        "count(//hl7:entry/hl7:act)",
        "count(//hl7:section/hl7:entry)",
        "count(/hl7:ClinicalDocument/hl7:component/hl7:structuredBody/hl7:component)",
        "count(../hl7:component/hl7:section/hl7:entry)",
        "string-join(for $s in hl7:component/hl7:section return string(count($s/hl7:entry)), ',')",
        "exists(hl7:section/hl7:entry/hl7:act) and not(empty(hl7:section/hl7:code))",
        "some $e in hl7:section/hl7:entry satisfies exists($e/hl7:act)",
    ];
    let compiled: Vec<XPath> = exprs
        .iter()
        .map(|e| XPath::compile(e, &ns()).unwrap_or_else(|err| panic!("{e}: {err}")))
        .collect();
    let contexts: Vec<NodeRef> = (0..doc.node_count())
        .filter_map(|i| doc.node(i))
        .filter(|&n| doc.kind(n) == crate::xml::NodeKind::Element)
        .map(NodeRef::Node)
        .collect();
    let mut shared = Env::new(&doc);
    shared.bind(
        "c".into(),
        vec![Item::Atomic(Atomic::String("18719-5".into()))],
    );
    // Twice over, so that the second round reads memoised prefixes.
    for _ in 0..2 {
        for &ctx in &contexts {
            for (x, src) in compiled.iter().zip(exprs) {
                let mut fresh = Env::new(&doc);
                fresh.bind(
                    "c".into(),
                    vec![Item::Atomic(Atomic::String("18719-5".into()))],
                );
                let f = Focus::node(ctx);
                let want = x.evaluate_string(&mut fresh, &f).map_err(|e| e.to_string());
                let got = x
                    .evaluate_string(&mut shared, &f)
                    .map_err(|e| e.to_string());
                assert_eq!(got, want, "{src} at {ctx:?}");
                let want = x.evaluate_bool(&mut fresh, &f).map_err(|e| e.to_string());
                let got = x.evaluate_bool(&mut shared, &f).map_err(|e| e.to_string());
                assert_eq!(got, want, "{src} at {ctx:?} (boolean)");
            }
        }
    }
    // The memo made a difference to the results it should: sanity of two values.
    let root = Focus::node(NodeRef::Node(doc.document_element().unwrap()));
    assert_eq!(
        compiled[1].evaluate_string(&mut shared, &root).unwrap(),
        "2"
    );
    assert_eq!(
        compiled[2].evaluate_string(&mut shared, &root).unwrap(),
        "0"
    );
}

/// Memo ids name step forms, an inner step by its own id: steps that differ only inside an
/// inner step's predicate get different ids, equal steps compiled apart the same id.
#[test]
fn memo_ids_tell_steps_apart_by_their_inner_steps() {
    let first_memo = |src: &str| -> u32 {
        let x = XPath::compile(src, &ns()).unwrap_or_else(|e| panic!("{src}: {e}"));
        match x.ast() {
            ast::Ast::Path { steps, .. } => match steps.first() {
                Some(ast::Step::Axis { memo, .. }) => *memo,
                other => panic!("{src}: first step {other:?}"),
            },
            other => panic!("{src}: not a path: {other:?}"),
        }
    };
    let a = first_memo("hl7:section[hl7:code[@code='18719-5']]/hl7:entry");
    let b = first_memo("hl7:section[hl7:code[@code='18723-7']]/hl7:entry");
    let c = first_memo("hl7:section[hl7:code[@codeSystem='18719-5']]/hl7:entry");
    let d = first_memo("hl7:section[hl7:id[@code='18719-5']]/hl7:entry");
    let a2 = first_memo("hl7:section[hl7:code[@code = '18719-5']]/hl7:entry");
    assert_eq!(a, a2);
    for (x, y) in [(a, b), (a, c), (a, d), (b, c), (b, d), (c, d)] {
        assert_ne!(x, y);
    }
    assert!([a, b, c, d].iter().all(|&m| m != ast::NO_MEMO));
    assert_eq!(
        first_memo("hl7:section[hl7:code[@code=$c]]/hl7:entry"),
        ast::NO_MEMO
    );
}

/// A step that mentions a variable is never memoised: rebinding the variable changes the
/// result in the same environment.
#[test]
fn steps_with_variables_are_not_memoised() {
    let doc = parse(DOC.as_bytes()).unwrap();
    let x = XPath::compile(
        "count(hl7:component/hl7:structuredBody/hl7:component/hl7:section[hl7:code[@code=$c]]/hl7:entry)",
        &ns(),
    )
    .unwrap();
    let mut env = Env::new(&doc);
    let root = Focus::node(NodeRef::Node(doc.document_element().unwrap()));
    for (code, want) in [
        ("18719-5", "2"),
        ("18723-7", "0"),
        ("18719-5", "2"),
        ("x", "0"),
    ] {
        let d = env.depth();
        env.bind("c".into(), vec![Item::Atomic(Atomic::String(code.into()))]);
        assert_eq!(x.evaluate_string(&mut env, &root).unwrap(), want, "{code}");
        env.truncate(d);
    }
}

/// The boolean shortcut of `evaluate_bool` agrees with the effective boolean value of the
/// full evaluation, errors included.
#[test]
fn evaluate_bool_agrees_with_ebv() {
    let doc = parse(DOC.as_bytes()).unwrap();
    let ctx = Focus::node(NodeRef::Node(doc.document_element().unwrap()));
    for src in [
        "contains(hl7:code/@code, '502')",
        "starts-with(hl7:code/@code, '115')",
        "ends-with(hl7:code/@code, 'x')",
        "contains(//hl7:code/@code, '1')",
        "matches(hl7:code/@code, '^[0-9]+-[0-9]$')",
        "matches(//hl7:code/@code, '1')",
        "exists(hl7:code)",
        "exists(hl7:nothing)",
        "empty(hl7:nothing)",
        "empty((1, 2))",
        "exists(())",
        "contains(local-name(), 'Clinical')",
        "hl7:code/@code = '11502-2' or contains('abc', 'b')",
        "not(contains(hl7:code/@code, '9'))",
    ] {
        let x = XPath::compile(src, &ns()).unwrap_or_else(|e| panic!("{src}: {e}"));
        let mut env = Env::new(&doc);
        let fast = x.evaluate_bool(&mut env, &ctx).map_err(|e| e.to_string());
        let slow = x
            .evaluate(&mut env, &ctx)
            .and_then(|s| ebv(&s))
            .map_err(|e| e.to_string());
        assert_eq!(fast, slow, "{src}");
    }
}

/// Whether a predicate of the (first) step of `src` was marked name-only.
fn first_pred_is_name_only(src: &str) -> bool {
    let x = XPath::compile(src, &ns()).unwrap_or_else(|e| panic!("{src}: {e}"));
    let ast::Ast::Path { steps, .. } = x.ast() else {
        panic!("{src}: not a path");
    };
    steps.iter().any(|s| match s {
        ast::Step::Axis { preds, .. } | ast::Step::Filter { preds, .. } => {
            preds.iter().any(|p| matches!(p, ast::Ast::NameOnly(..)))
        }
    })
}

#[test]
fn name_only_predicates_are_marked_only_when_they_read_nothing_but_the_name() {
    for src in [
        "//*[contains(local-name(), 'Organization')]",
        "//*[local-name() = 'code' or name() = 'id']",
        "//*[starts-with(name(.), 'hl7') and namespace-uri() != '']",
        "//@*[not(ends-with(local-name(), 'Code'))]",
        "//*[upper-case(local-name()) eq 'CODE']",
    ] {
        assert!(first_pred_is_name_only(src), "{src}");
    }
    for src in [
        // A number is a position.
        "//*[string-length(local-name())]",
        // Reads more than the name.
        "//*[contains(., 'x')]",
        "//*[local-name(..) = 'entry']",
        "//*[local-name() = $v]",
        "//*[contains(local-name(), 'a') and @code]",
        "//*[string-length() > 3 and local-name() = 'code']",
        "//*[position() = 1 and local-name() = 'code']",
        // Nothing to memoise.
        "//*[true()]",
    ] {
        assert!(!first_pred_is_name_only(src), "{src}");
    }
}

#[test]
fn name_only_predicates_give_the_results_of_plain_evaluation() {
    let doc = parse(DOC.as_bytes()).unwrap();
    let ctx = Focus::node(NodeRef::Node(doc.document_element().unwrap()));
    // Each name-only predicate P against the same test made opaque to the marking by
    // `and (. or true())` (always true, reads the context node): same nodes, also when the
    // memo is reused by a second evaluation in the same environment and by an equal
    // expression compiled separately.
    for p in [
        "contains(local-name(), 'o')",
        "local-name() = 'code' or name() = 'id'",
        "starts-with(name(), 'x')",
        "namespace-uri() = 'urn:hl7-org:v3'",
        "local-name() = ''",
        "not(contains(local-name(), 'e'))",
        "ends-with(local-name(), 'ion')",
    ] {
        for axis in ["//*", "//node()", "//@*", "/descendant-or-self::node()"] {
            let marked = format!("{axis}[{p}]");
            let plain = format!("{axis}[({p}) and (. or true())]");
            assert!(first_pred_is_name_only(&marked), "{marked}");
            assert!(!first_pred_is_name_only(&plain), "{plain}");
            let x = XPath::compile(&marked, &ns()).unwrap();
            let again = XPath::compile(&marked, &ns()).unwrap();
            let y = XPath::compile(&plain, &ns()).unwrap();
            let mut env = Env::new(&doc);
            let want = y.evaluate(&mut env, &ctx).unwrap();
            let got = x.evaluate(&mut env, &ctx).unwrap();
            let got2 = x.evaluate(&mut env, &ctx).unwrap();
            let got3 = again.evaluate(&mut env, &ctx).unwrap();
            assert_eq!(got, want, "{marked}");
            assert_eq!(got2, want, "{marked} (memo)");
            assert_eq!(got3, want, "{marked} (compiled again)");
            // As a boolean, in a fresh environment.
            let mut env = Env::new(&doc);
            assert_eq!(
                x.evaluate_bool(&mut env, &ctx).unwrap(),
                !want.is_empty(),
                "{marked}"
            );
        }
    }
}

#[test]
fn variable_string_comparisons_match_the_general_comparison() {
    let doc = parse(DOC.as_bytes()).unwrap();
    let ctx = Focus::node(NodeRef::Node(doc.document_element().unwrap()));
    let codes = XPath::compile("//hl7:code/@code", &ns())
        .unwrap()
        .evaluate_on(&doc)
        .unwrap();
    let elements = XPath::compile("//hl7:given | //hl7:family", &ns())
        .unwrap()
        .evaluate_on(&doc)
        .unwrap();
    let values: Vec<(&str, Sequence)> = vec![
        ("empty", Vec::new()),
        ("attributes", codes),
        ("elements", elements),
        (
            "strings",
            vec![
                Item::Atomic(Atomic::String("a".into())),
                Item::Atomic(Atomic::Untyped("Rossi".into())),
            ],
        ),
        ("integer", vec![Item::Atomic(Atomic::Integer(1))]),
        (
            "string then integer",
            vec![
                Item::Atomic(Atomic::String("Rossi".into())),
                Item::Atomic(Atomic::Integer(1)),
            ],
        ),
    ];
    for (what, value) in &values {
        for lit in ["Rossi", "18723-7", "a", "", "zzz"] {
            for (fast, slow) in [
                (format!("$v = '{lit}'"), format!("$v = concat('{lit}', '')")),
                (format!("'{lit}' = $v"), format!("concat('{lit}', '') = $v")),
                (
                    format!("$v != '{lit}'"),
                    format!("$v != concat('{lit}', '')"),
                ),
                (
                    format!("'{lit}' != $v"),
                    format!("concat('{lit}', '') != $v"),
                ),
            ] {
                let run = |src: &str| {
                    let x = XPath::compile(src, &ns()).unwrap();
                    let mut env = Env::new(&doc);
                    env.bind("v".into(), value.clone());
                    let b = x.evaluate_bool(&mut env, &ctx).map_err(|e| e.to_string());
                    let s = x
                        .evaluate(&mut env, &ctx)
                        .and_then(|s| ebv(&s))
                        .map_err(|e| e.to_string());
                    assert_eq!(b, s, "{src} on {what}");
                    b
                };
                assert_eq!(run(&fast), run(&slow), "{fast} on {what}");
            }
        }
    }
    // An unbound variable or one whose evaluation failed: the same error either way.
    let x = XPath::compile("$nope = 'a'", &ns()).unwrap();
    let mut env = Env::new(&doc);
    assert!(x.evaluate_bool(&mut env, &ctx).is_err());
    env.bind_error(
        "bad".into(),
        XPathError::Dynamic {
            code: "FOER0000".into(),
            message: "x".into(),
        },
    );
    let x = XPath::compile("'a' = $bad", &ns()).unwrap();
    assert_eq!(
        x.evaluate_bool(&mut env, &ctx).unwrap_err(),
        XPathError::Dynamic {
            code: "FOER0000".into(),
            message: "x".into()
        }
    );
}
