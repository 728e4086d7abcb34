//! Unit and property tests of the XML reader.

use super::*;
use proptest::prelude::*;

fn doc(s: &str) -> Document {
    match parse(s.as_bytes()) {
        Ok(d) => d,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

#[test]
fn tree_navigation_and_names() {
    let d = doc("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<r xmlns=\"urn:hl7-org:v3\" xmlns:x=\"urn:x\">\n  <a k=\"1\" x:k=\"2\">t&amp;u<![CDATA[<v>]]></a><!-- c --><x:b/>\n</r>");
    let r = d.document_element().unwrap();
    assert_eq!(d.local_name(r), "r");
    assert_eq!(d.namespace(r), "urn:hl7-org:v3");
    let kids: Vec<_> = d.child_elements(r).collect();
    assert_eq!(kids.len(), 2);
    let a = kids[0];
    assert_eq!(d.attribute(a, "k"), Some("1"));
    assert_eq!(d.attributes(a).len(), 2);
    let xk = d.attributes(a).nth(1).unwrap();
    assert_eq!(&*d.attr_name(xk).ns, "urn:x");
    assert_eq!(d.string_value(a), "t&u<v>");
    assert_eq!(d.namespace(kids[1]), "urn:x");
    assert_eq!(&*d.name(d.name_id(kids[1]).unwrap()).prefix, "x");
    assert_eq!(d.position(a), (3, 3));
    assert_eq!(d.parent(a), Some(r));
    assert_eq!(d.parent(r), Some(d.root()));
    assert_eq!(d.last_descendant(d.root()).0 as usize, d.node_count() - 1);
    assert_eq!(d.string_value(r), "\n  t&u<v>\n");
}

#[test]
fn doctype_and_entities_are_refused() {
    let xxe =
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><r>&e;</r>";
    assert!(matches!(
        parse(xxe.as_bytes()),
        Err(XmlError::DoctypeRefused { .. })
    ));
    let bomb = "<r>&lol;</r>";
    assert!(matches!(
        parse(bomb.as_bytes()),
        Err(XmlError::Malformed { .. })
    ));
    let d = doc("<r a=\"&#x41;&lt;\">&#65;&apos;&quot;&gt;</r>");
    let r = d.document_element().unwrap();
    assert_eq!(d.attribute(r, "a"), Some("A<"));
    assert_eq!(d.string_value(r), "A'\">");
}

#[test]
fn limits_are_typed_errors() {
    let deep = "<a>".repeat(50) + &"</a>".repeat(50);
    let lim = Limits {
        max_depth: 10,
        ..Limits::default()
    };
    assert!(matches!(
        parse_with_limits(deep.as_bytes(), lim),
        Err(XmlError::TooDeep { limit: 10, .. })
    ));
    let lim = Limits {
        max_bytes: 10,
        ..Limits::default()
    };
    assert!(matches!(
        parse_with_limits(deep.as_bytes(), lim),
        Err(XmlError::TooLarge { .. })
    ));
    let lim = Limits {
        max_nodes: 5,
        ..Limits::default()
    };
    assert!(matches!(
        parse_with_limits(deep.as_bytes(), lim),
        Err(XmlError::TooManyNodes { .. })
    ));
}

#[test]
fn malformed_inputs_are_reported() {
    for bad in [
        "",
        "plain text",
        "<a>",
        "<a></b>",
        "<a/><b/>",
        "<a x='1' x='2'/>",
        "<p:a/>",
        "<a>x</a>trailing",
        "<a x=\"<\"/>",
        "</a>",
    ] {
        assert!(parse(bad.as_bytes()).is_err(), "{bad:?} should be refused");
    }
    assert!(matches!(
        parse(b"<a>\xff</a>"),
        Err(XmlError::NotUtf8 { offset: 3 })
    ));
    assert!(matches!(
        parse(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>"),
        Err(XmlError::UnsupportedEncoding(_))
    ));
    assert!(parse(b"\xEF\xBB\xBF<a/>").is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn xmlish_text_never_panics(s in "[<>/a-c:=\"' &;#x0-9!\\[\\]?-]{0,200}") {
        if let Ok(d) = parse(s.as_bytes()) {
            // Invariants of the arena: parent links precede children, ranges nest.
            for i in 1..d.node_count() {
                let n = d.node(i).unwrap();
                let p = d.parent(n).unwrap();
                prop_assert!(p < n);
                prop_assert!(d.last_descendant(p) >= d.last_descendant(n));
                let _ = d.position(n);
                let _ = d.string_value(n);
            }
        }
    }
}
