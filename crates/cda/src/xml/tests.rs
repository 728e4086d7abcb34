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
        parse(b"<?xml version=\"1.0\" encoding=\"EBCDIC-nonsense\"?><a/>"),
        Err(XmlError::UnsupportedEncoding(_))
    ));
    assert!(parse(b"\xEF\xBB\xBF<a/>").is_ok());
}

/// The text of the root element of `input`, or the error, by both readers (which must agree).
fn root_text(input: &[u8]) -> Result<String, XmlError> {
    let d = parse(input);
    assert_eq!(d, parse_reference(input, Limits::default()), "{input:?}");
    let d = d?;
    Ok(d.string_value(d.document_element().expect("a root")))
}

#[test]
fn declared_encodings_are_decoded() {
    let e = "\u{e9}\u{20ac}";
    assert_eq!(
        root_text(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<a>\xe9\x80</a>"),
        Ok("\u{e9}\u{80}".into())
    );
    assert_eq!(
        root_text(b"<?xml version='1.0' encoding='windows-1252'?><a>\xe9\x80</a>"),
        Ok(e.into())
    );
    assert_eq!(
        root_text(b"<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?><a>\xe9\xa4</a>"),
        Ok(e.into())
    );
    assert_eq!(
        root_text(b"<?xml version=\"1.0\" encoding=\"US-ASCII\"?><a>&#233;</a>"),
        Ok("\u{e9}".into())
    );
    assert!(matches!(
        root_text(b"<?xml version=\"1.0\" encoding=\"US-ASCII\"?><a>\xe9</a>"),
        Err(XmlError::NotInEncoding {
            byte: 0xE9,
            offset: 44,
            ..
        })
    ));
    for (bom, big) in [(true, false), (true, true), (false, false), (false, true)] {
        let text = format!(
            "{}<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n<a>{e}</a>",
            if bom { "\u{feff}" } else { "" }
        );
        let bytes: Vec<u8> = text
            .encode_utf16()
            .flat_map(|u| {
                if big {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                }
            })
            .collect();
        assert_eq!(
            root_text(&bytes),
            Ok(e.into()),
            "bom {bom} big-endian {big}"
        );
        // Positions are those of the decoded text.
        let d = parse(&bytes).unwrap();
        assert_eq!(d.position(d.document_element().unwrap()), (2, 1));
    }
    // A lone surrogate in UTF-16, UTF-16 declared over 8-bit bytes, UTF-32.
    assert!(matches!(
        root_text(b"\xff\xfe<\x00a\x00>\x00\x00\xd8<\x00/\x00a\x00>\x00"),
        Err(XmlError::Undecodable { .. })
    ));
    assert!(matches!(
        root_text(b"<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>"),
        Err(XmlError::Undecodable { .. })
    ));
    assert!(matches!(
        root_text(b"\xff\xfe\x00\x00<\x00\x00\x00"),
        Err(XmlError::UnsupportedEncoding(_))
    ));
    // WHATWG reads ISO-8859-9 as windows-1254: refused rather than misread.
    assert!(matches!(
        root_text(b"<?xml version=\"1.0\" encoding=\"ISO-8859-9\"?><a/>"),
        Err(XmlError::UnsupportedEncoding(_))
    ));
    // A byte-order mark wins over the declaration.
    assert_eq!(
        root_text(
            "\u{feff}<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\u{e9}</a>".as_bytes()
        ),
        Ok("\u{e9}".into())
    );
}

#[test]
fn characters_outside_char_are_refused_literal_or_by_reference() {
    for bad in [
        "<a>\u{0}</a>",
        "<a>x\u{1}</a>",
        "<a b='\u{1f}'/>",
        "<a>\u{fffe}</a>",
        "<a><![CDATA[\u{ffff}]]></a>",
        "<a><!-- \u{b} --></a>",
        "<a/><?p \u{c}?>",
        "<a>&#x1;</a>",
        "<a>&#0;</a>",
        "<a>&#xFFFE;</a>",
        "<a>&#65535;</a>",
        "<a>&#xD800;</a>",
        "<a>&#x110000;</a>",
        "<a b='&#x8;'/>",
    ] {
        match root_text(bad.as_bytes()) {
            Err(XmlError::Malformed { .. }) => {}
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert_eq!(
        parse("<a>\n  x\u{1}</a>".as_bytes())
            .unwrap_err()
            .to_string(),
        "2:4: character U+0001 is not allowed in XML"
    );
    for good in [
        "<a>\t\r\n\u{85}\u{7f}\u{fffd}\u{10000}\u{ef}\u{fff0}</a>",
        "<a b='&#x9;&#xA;&#xD;&#x85;&#xFFFD;&#x10FFFF;'>&#x20;</a>",
    ] {
        assert!(root_text(good.as_bytes()).is_ok(), "{good:?}");
    }
}

#[test]
fn the_declared_version_is_1_0_or_1_1() {
    for good in [
        "<?xml version='1.0'?><a/>",
        "<?xml version=\"1.1\" encoding='UTF-8'?><a/>",
    ] {
        assert!(root_text(good.as_bytes()).is_ok(), "{good}");
    }
    for bad in [
        "<?xml version='1.9'?><a/>",
        "<?xml version='2.0'?><a/>",
        "<?xml encoding='UTF-8'?><a/>",
        "<?xml ?><a/>",
        "<?xml encoding='UTF-8' version='1.0'?><a/>",
    ] {
        assert!(
            matches!(root_text(bad.as_bytes()), Err(XmlError::Malformed { .. })),
            "{bad}"
        );
    }
}

/// XML 1.0's `Char` production, one character at a time.
fn plain_non_char(s: &str) -> Option<(usize, char)> {
    s.char_indices().find(|&(_, c)| {
        !matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn non_char_scan_matches_a_plain_scan(v in proptest::collection::vec(
        proptest::sample::select(vec!['a', ' ', '\t', '\n', '\r', '\u{0}', '\u{1}', '\u{8}', '\u{b}', '\u{1f}', '\u{7f}',
            '\u{ef}', '\u{fffd}', '\u{fffe}', '\u{ffff}', '\u{fff0}', '\u{efbf}', '\u{10000}', '<']), 0..40)) {
        let s: String = v.into_iter().collect();
        prop_assert_eq!(encoding::first_non_char(&s), plain_non_char(&s));
    }
}

/// A small CDA-shaped document touching every path of the reader: declaration, namespaces
/// (default, prefixed, redeclared, undeclared), `xml:` attributes, entities and character
/// references in text and attributes, CR LF line ends, CDATA, comments, PIs.
const SAMPLE: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<?xml-stylesheet type=\"text/xsl\" href=\"cda.xsl\"?>\r\n<ClinicalDocument xmlns=\"urn:hl7-org:v3\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:sdtc=\"urn:hl7-org:sdtc\">\r\n  <typeId root=\"2.16.840.1.113883.1.3\" extension=\"POCD_MT000040UV02\"/>\r\n  <title xml:lang=\"it-IT\">Referto &amp; lettera &#x2013; &#232;</title>\r\n  <!-- a comment -->\r\n  <component><section><text>riga 1\r\nriga 2<![CDATA[<b>&amp;</b>]]><br/>fine</text>\r\n  <entry><observation classCode=\"OBS\" moodCode='EVN'><value xsi:type=\"PQ\" value=\"1.5\" unit=\"mg&#9;/dL\"/>\r\n  <sdtc:raceCode code=\"x\"/><x:ext xmlns:x=\"urn:x\" xmlns=\"\" a=\"1\"><plain/></x:ext></observation></entry></section></component>\r\n</ClinicalDocument>\r\n";

#[test]
fn sample_document_tree_is_exact() {
    let d = doc(SAMPLE);
    let r = d.document_element().unwrap();
    assert_eq!(
        (d.namespace(r), d.local_name(r)),
        ("urn:hl7-org:v3", "ClinicalDocument")
    );
    assert_eq!(d.position(r), (3, 1));
    let pi = d.children(d.root()).next().unwrap();
    assert_eq!(d.kind(pi), NodeKind::ProcessingInstruction);
    assert_eq!(d.local_name(pi), "xml-stylesheet");
    assert_eq!(d.text(pi), "type=\"text/xsl\" href=\"cda.xsl\"");
    let els: Vec<NodeId> = (0..d.node_count())
        .filter_map(|i| d.node(i))
        .filter(|&n| d.kind(n) == NodeKind::Element)
        .collect();
    let names: Vec<String> = els
        .iter()
        .map(|&n| {
            let nm = d.name(d.name_id(n).unwrap());
            format!("{}|{}|{}", nm.ns, nm.prefix, nm.local)
        })
        .collect();
    assert_eq!(
        names,
        [
            "urn:hl7-org:v3||ClinicalDocument",
            "urn:hl7-org:v3||typeId",
            "urn:hl7-org:v3||title",
            "urn:hl7-org:v3||component",
            "urn:hl7-org:v3||section",
            "urn:hl7-org:v3||text",
            "urn:hl7-org:v3||br",
            "urn:hl7-org:v3||entry",
            "urn:hl7-org:v3||observation",
            "urn:hl7-org:v3||value",
            "urn:hl7-org:sdtc|sdtc|raceCode",
            "urn:x|x|ext",
            "||plain",
        ]
    );
    let title = els[2];
    let lang = d.attributes(title).next().unwrap();
    assert_eq!(&*d.attr_name(lang).ns, XML_NS);
    assert_eq!(d.attr_value(lang), "it-IT");
    assert_eq!(d.string_value(title), "Referto & lettera \u{2013} \u{e8}");
    assert_eq!(d.position(title), (5, 3));
    assert_eq!(d.attr_position(lang), (5, 10));
    assert_eq!(d.string_value(els[5]), "riga 1\nriga 2<b>&amp;</b>fine");
    let value = els[9];
    let attrs: Vec<(String, &str)> = d
        .attributes(value)
        .map(|a| {
            let nm = d.attr_name(a);
            (format!("{}|{}", nm.ns, nm.local), d.attr_value(a))
        })
        .collect();
    assert_eq!(
        attrs,
        [
            (
                "http://www.w3.org/2001/XMLSchema-instance|type".to_owned(),
                "PQ"
            ),
            ("|value".to_owned(), "1.5"),
            ("|unit".to_owned(), "mg\t/dL"),
        ]
    );
    assert_eq!(d.attribute(els[8], "moodCode"), Some("EVN"));
    // Namespace declarations are not attributes; the ids of one expanded name are found.
    assert_eq!(d.attributes(r).len(), 0);
    assert_eq!(d.attributes(els[11]).len(), 1);
    let ids: Vec<u32> = d.name_ids_of("urn:hl7-org:v3", "value").collect();
    assert!(d.has_name_in(value, &ids));
    assert_eq!(d.name_ids_of("urn:hl7-org:v3", "nothing").count(), 0);
    // Comments keep their text as written.
    let comment = (0..d.node_count())
        .filter_map(|i| d.node(i))
        .find(|&n| d.kind(n) == NodeKind::Comment)
        .unwrap();
    assert_eq!(d.text(comment), " a comment ");
}

#[test]
fn namespace_errors_are_reported() {
    for bad in [
        "<a xmlns:xml='urn:other'/>",
        "<a xmlns:xmlns='urn:x'/>",
        "<a xmlns:p='http://www.w3.org/XML/1998/namespace'/>",
        "<a xmlns:p='http://www.w3.org/2000/xmlns/'/>",
        "<p:a xmlns:p=''/>",
        "<a><p:b xmlns:p='u'/><p:c/></a>",
        "<a p:x='1'/>",
        "<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>",
        "<a x='1' x='2'/>",
        "<a x='1'x/>",
        "<a x=1/>",
        "<a x='1/>",
        "<1a/>",
        "<a 1x='1'/>",
    ] {
        assert!(
            matches!(parse(bad.as_bytes()), Err(XmlError::Malformed { .. })),
            "{bad:?} should be refused"
        );
    }
    let d = doc("<a xmlns:xml='http://www.w3.org/XML/1998/namespace' xmlns:p='u'><p:b xmlns:p='v'/><p:c/></a>");
    let kids: Vec<_> = d.child_elements(d.document_element().unwrap()).collect();
    assert_eq!(d.namespace(kids[0]), "v");
    assert_eq!(d.namespace(kids[1]), "u");
}

/// Start-tag tails made of attribute-like pieces, well-formed or not.
fn attribute_soup() -> impl Strategy<Value = String> {
    let pieces = vec![
        " ", "\t", "\r\n", "a", "b", "p:c", "xmlns", "xmlns:p", "=", " = ", "\"v\"", "'w'", "\"",
        "'", "\"x y\"", "'a\"b'", "\"a'b\"", "<", "&amp;", "/", "a='1'", " a='2'",
    ];
    proptest::collection::vec(proptest::sample::select(pieces), 0..12).prop_map(|v| v.concat())
}

/// Mutations of a real-shaped document: byte flips, insertions of markup, deletions.
fn mutation() -> impl Strategy<Value = (usize, u8, usize)> {
    (0..SAMPLE.len() + 1, any::<u8>(), 0usize..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn mutated_cda_never_panics(muts in proptest::collection::vec(mutation(), 1..4)) {
        let mut b = SAMPLE.as_bytes().to_vec();
        for (at, byte, kind) in muts {
            let at = at.min(b.len());
            match kind {
                0 => b.truncate(at),
                1 => if at < b.len() { b[at] = byte },
                2 => b.insert(at, b"<>&;:=\"'/!?-[]x \r"[byte as usize % 16]),
                _ => { b.drain(at..(at + byte as usize % 8).min(b.len())); }
            }
        }
        if let Ok(d) = parse(&b) {
            for i in 1..d.node_count() {
                let n = d.node(i).unwrap();
                let p = d.parent(n).unwrap();
                prop_assert!(p < n);
                prop_assert!(d.last_descendant(p) >= d.last_descendant(n));
                for a in d.attributes(n) {
                    prop_assert_eq!(d.attr_owner(a), n);
                    let _ = (d.attr_value(a), d.attr_position(a));
                }
            }
        }
    }

    /// The reader's own scan of a tag's attributes must give exactly what quick-xml's
    /// iterator gives whenever it accepts the tag (it hands everything else to quick-xml).
    #[test]
    fn attribute_scan_agrees_with_quick_xml(s in attribute_soup()) {
        let tag = format!("e{s}");
        let mut spans = Vec::new();
        if reader::scan_attributes(tag.as_bytes(), 1, &mut spans) {
            let start = quick_xml::events::BytesStart::from_content(tag.as_str(), 1);
            let theirs: Vec<(Vec<u8>, Vec<u8>)> = start
                .attributes()
                .map(|a| a.map(|a| (a.key.as_ref().to_vec(), a.value.to_vec())))
                .collect::<Result<_, _>>()
                .map_err(|e| TestCaseError::fail(format!("quick-xml refuses {tag:?}: {e}")))?;
            let ours: Vec<(Vec<u8>, Vec<u8>)> = spans
                .iter()
                .map(|&(ks, ke, vs, ve)| (tag.as_bytes()[ks..ke].to_vec(), tag.as_bytes()[vs..ve].to_vec()))
                .collect();
            prop_assert_eq!(ours, theirs);
        }
    }
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

/// What the scanner makes of `input` (after the checks `parse` applies first), compared with
/// the reference reader: whenever the scanner accepts, the trees must be identical and the
/// reference must accept too. Returns whether the scanner handled the input itself.
fn scanner_matches_reference(input: &[u8]) -> Result<bool, String> {
    let reference = parse_reference(input, Limits::default());
    let Ok(text) = reader::checked_text(input, Limits::default()) else {
        return Ok(false);
    };
    match scanner::read(&text, Limits::default()) {
        Err(scanner::Handover) => Ok(false),
        Ok(d) => match reference {
            Ok(r) if r == d => Ok(true),
            Ok(_) => Err(format!(
                "trees differ for {:?}",
                String::from_utf8_lossy(input)
            )),
            Err(e) => Err(format!(
                "scanner accepts what the reference refuses ({e}): {:?}",
                String::from_utf8_lossy(input)
            )),
        },
    }
}

fn conformance_dir() -> std::path::PathBuf {
    let dir = match std::env::var_os("FSE_CONFORMANCE") {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        }
    };
    assert!(
        dir.is_dir(),
        "{} not found: place the shared material beside the clone or set FSE_CONFORMANCE",
        dir.display()
    );
    dir
}

fn xml_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            xml_files(&p, out);
        } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("xml")) {
            out.push(p);
        }
    }
}

#[test]
fn scanner_agrees_with_reference_on_official_documents() {
    let c = conformance_dir();
    let mut files = Vec::new();
    xml_files(&c.join("cda/samples"), &mut files);
    xml_files(&c.join("accreditamento"), &mut files);
    xml_files(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures"),
        &mut files,
    );
    assert!(files.len() > 1000, "only {} documents found", files.len());
    let (mut handled, mut accepted) = (0, 0);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        match scanner_matches_reference(&bytes) {
            Ok(true) => handled += 1,
            Ok(false) => {}
            Err(e) => panic!("{}: {}", f.display(), &e[..e.len().min(300)]),
        }
        if parse_reference(&bytes, Limits::default()).is_ok() {
            accepted += 1;
        }
        // Whatever path ran, `parse` gives the reference's answer, errors included.
        assert_eq!(
            parse(&bytes),
            parse_reference(&bytes, Limits::default()),
            "{}",
            f.display()
        );
    }
    // The fast path must actually be the common path.
    assert!(
        handled * 100 >= accepted * 95,
        "the scanner handled only {handled} of {accepted} well-formed documents"
    );
}

#[test]
fn scanner_handles_the_sample_and_hands_over_the_rest() {
    assert_eq!(scanner_matches_reference(SAMPLE.as_bytes()), Ok(true));
    for (input, handled) in [
        ("<a/>", true),
        ("<a b='1'  c = \"2\"/>", true),
        ("<a><!-- x - y --><?pi  data ?></a>", true),
        ("<?xml version='1.0'?><a>&#x41;&lt;</a>", true),
        // Decoded before reading: the scanner reads the UTF-8 text.
        ("<?xml version='1.0' encoding='latin1'?><a>\u{e9}</a>", true),
        ("<?xml version='1.1'?><a/>", true),
        ("<?xml version='1.9'?><a/>", false),
        ("<?xml encoding='UTF-8' version='1.0'?><a/>", false),
        ("<a>&#x1;</a>", false),
        ("<!DOCTYPE a><a/>", false),
        ("<a><!----></a>", false),
        ("<a><!-- x -- y --></a>", false),
        ("<é/>", false),
        ("<a b='1'c='2'/>", false),
        ("<a>&unknown;</a>", false),
        ("<a></a >", true),
        ("<a></b>", false),
        ("\u{feff}<a/>", true),
        ("\u{feff}\u{feff}<a/>", false),
        ("<a/><b/>", false),
        ("<a/>x", false),
        ("<?XML version='1.0'?><a/>", false),
    ] {
        assert_eq!(
            scanner_matches_reference(input.as_bytes()),
            Ok(handled),
            "{input:?}"
        );
    }
}

/// Pieces of markup, well-formed or not, to assemble into documents.
fn markup_soup() -> impl Strategy<Value = String> {
    let pieces = vec![
        "<a>",
        "</a>",
        "<b:c xmlns:b='u'>",
        "</b:c>",
        "<a/>",
        "<d x='1' y=\"&amp;\"/>",
        "<e\txmlns='v'>",
        "</e>",
        "<e>",
        "text",
        " ",
        "\r\n",
        "&lt;",
        "&#65;",
        "&bad;",
        "<!-- c -->",
        "<!--",
        "-->",
        "<![CDATA[x]]>",
        "<?p q?>",
        "<?xml version='1.0'?>",
        "<!DOCTYPE a>",
        "<",
        ">",
        "/",
        "'",
        "\"",
        "=",
        ":",
        "xmlns",
        "xmlns:p='w'",
        "<p:f/>",
        "<a xml:lang='it'>",
        " k='v'",
        "]]>",
        "\u{e8}",
        "<\u{e8}/>",
        "&",
        "?>",
        "<?",
        "<!",
        "<a b='1'b='2'>",
        "<a xmlns=''>",
        "<?xml version='1.1'?>",
        "<?xml version=\"1.9\" encoding='UTF-8'?>",
        "<?xml encoding='UTF-8'?>",
        "&#x1;",
        "&#xFFFE;",
        "\u{1}",
        "\u{fffe}",
        "\u{0}",
    ];
    proptest::collection::vec(proptest::sample::select(pieces), 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]
    #[test]
    fn scanner_matches_reference_on_markup_soup(s in markup_soup()) {
        prop_assert_eq!(scanner_matches_reference(s.as_bytes()).map(|_| ()), Ok(()));
        prop_assert_eq!(parse(s.as_bytes()), parse_reference(s.as_bytes(), Limits::default()));
    }

    #[test]
    fn scanner_matches_reference_on_mutated_cda(muts in proptest::collection::vec(mutation(), 1..4)) {
        let mut b = SAMPLE.as_bytes().to_vec();
        for (at, byte, kind) in muts {
            let at = at.min(b.len());
            match kind {
                0 => b.truncate(at),
                1 => if at < b.len() { b[at] = byte },
                2 => b.insert(at, b"<>&;:=\"'/!?-[]x \r"[byte as usize % 16]),
                _ => { b.drain(at..(at + byte as usize % 8).min(b.len())); }
            }
        }
        prop_assert_eq!(scanner_matches_reference(&b).map(|_| ()), Ok(()));
        prop_assert_eq!(parse(&b), parse_reference(&b, Limits::default()));
    }

    #[test]
    fn scanner_matches_reference_on_start_tags(s in attribute_soup()) {
        for doc in [format!("<r{s}/>"), format!("<r{s}>t</r>"), format!("<r xmlns:p='u'><e{s}/></r>")] {
            prop_assert_eq!(scanner_matches_reference(doc.as_bytes()).map(|_| ()), Ok(()));
        }
    }

    #[test]
    fn scanner_matches_reference_on_xmlish_text(s in "[<>/a-c:=\"' &;#x0-9!\\[\\]?-]{0,200}") {
        prop_assert_eq!(scanner_matches_reference(s.as_bytes()).map(|_| ()), Ok(()));
    }
}

#[test]
fn line_starts_match_a_plain_scan() {
    for s in [
        "",
        "\n",
        "a\nb",
        "\n\n\n\n\n\n\n\n\n",
        "0123456\n89abcdef\n\u{b}\n\u{8a}\n",
        SAMPLE,
    ] {
        let plain: Vec<u32> = std::iter::once(0)
            .chain(
                s.bytes()
                    .enumerate()
                    .filter(|&(_, b)| b == b'\n')
                    .map(|(i, _)| i as u32 + 1),
            )
            .collect();
        assert_eq!(reader::line_starts(s.as_bytes()), plain, "{s:?}");
    }
}

proptest! {
    #[test]
    fn line_starts_match_a_plain_scan_on_any_bytes(b in proptest::collection::vec(
        proptest::sample::select(vec![b'\n', b'\r', 0x0b, 0x8a, 0x0a ^ 0x80, 0, b'a', 0xff]), 0..100)) {
        let plain: Vec<u32> = std::iter::once(0)
            .chain(b.iter().enumerate().filter(|&(_, &c)| c == b'\n').map(|(i, _)| i as u32 + 1))
            .collect();
        prop_assert_eq!(reader::line_starts(&b), plain);
    }
}
