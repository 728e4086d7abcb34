//! The XSD stage's verdicts on `pattern` facets are the independent oracle's (issue #19,
//! item 1: `xsd-schema` anchored `[0-9]{1,8}|(...)`, the `ts` pattern, as `^[0-9]{1,8}|...$`,
//! and so accepted `2026 dicembre`).
//!
//! Every `xs:pattern` of both official XSD sets (`../shared/conformance/cda/xsd/*`, read at
//! run time) is found with the simple type it constrains. For each such type the test knows
//! an attribute of that type in an official sample (`TPI CT1.xml`) and values that XSD
//! accepts and refuses; it writes the sample with each value substituted, once per set
//! (`typeId/@extension`), judges the folder once with `../shared/oracles/validate_cda.sh
//! --json` (lxml) and checks, per document, that the oracle's XSD verdict is the expected one
//! and that ours is the oracle's: the full engine walking our tree, the engine reading the
//! bytes again, the stage as run (fast verdict first), and the fast verdict after learning
//! from all of them (it may only say "valid" when the oracle does).
//!
//! A pattern-constrained type the test does not know fails it (with the type's name), so a
//! new pattern in the schemas cannot go unchecked.

mod common;

use common::{conformance, oracles};
use fse_cda::validate::RuleSet;
use fse_cda::xml::parse;
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;
use regex::Regex;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

const XS: &str = "http://www.w3.org/2001/XMLSchema";

/// The official sample the values are put in (valid under both sets).
const SAMPLE: &str =
    "cda/samples/it-fse-accreditamento-upstream/13- Casi OK Tessera Portatore Impianto/TPI CT1.xml";

/// Where a pattern-constrained type is met in the sample, and values for it.
struct Target {
    /// The attribute's element (its first start tag in the sample) and name.
    element: &'static str,
    attribute: &'static str,
    /// Values XSD accepts, and values it refuses.
    accepted: &'static [&'static str],
    refused: &'static [&'static str],
    /// Values XSD refuses, and the gateway's validator (the JDK's) with it, that the oracle
    /// (libxml2) accepts: ours must refuse them, whatever the oracle says.
    oracle_wrong: &'static [&'static str],
}

/// The target of each pattern-constrained type of the CDA schemas.
fn target(type_name: &str) -> Option<Target> {
    Some(match type_name {
        // ClinicalDocument/effectiveTime (TS).
        "ts" => Target {
            element: "effectiveTime",
            attribute: "value",
            accepted: &[
                "20261202",
                "20261202103000+0100",
                "2026",
                "20261202103000.123-0500",
                "202612021030",
            ],
            refused: &[
                "2026 dicembre",
                "2026-12-02",
                "20261202+0100",
                "x20261202",
                "20261202103000x",
                "",
            ],
            // libxml2 accepts 16 digits and more (not 15): its counted repeats inside the
            // alternation go wrong; the JDK refuses them as XSD says.
            oracle_wrong: &["1111111111111111", "202612021030000000"],
        },
        // ClinicalDocument/languageCode (CS): `[^\s]+` over an xs:token; XSD's `\s` is
        // space, tab, CR and LF only.
        "cs" => Target {
            element: "languageCode",
            attribute: "code",
            accepted: &["it-IT", " it-IT ", "it\u{A0}IT", "it\u{2003}IT"],
            refused: &["it IT", "it\tIT", "", " "],
            oracle_wrong: &[],
        },
        // Observation/@negationInd: `true|false` over xs:boolean.
        "bl" => Target {
            element: "observation",
            attribute: "negationInd",
            accepted: &["true", "false", " false "],
            refused: &["1", "0", "TRUE", "truefalse", "falsetrue"],
            oracle_wrong: &[],
        },
        // ClinicalDocument/id/@root: `uid`, the union of oid, uuid and ruid (a value
        // refused must be refused by all three).
        "oid" => Target {
            element: "id",
            attribute: "root",
            accepted: &["2.16.840.1.113883.2.9.2.120.4.4", "0", "1.0.12"],
            refused: &["1.02", "3.1", "2.16.", "2..1", "2.16 .1"],
            oracle_wrong: &[],
        },
        "uuid" => Target {
            element: "id",
            attribute: "root",
            accepted: &["0123abcd-0123-4567-89AB-0123456789ab"],
            refused: &[
                "0123abcd-0123-4567-89AB-0123456789a",
                "0123abcd-0123-4567-89AB-0123456789abc",
                "0123abcd_0123-4567-89AB-0123456789ab",
            ],
            oracle_wrong: &[],
        },
        "ruid" => Target {
            element: "id",
            attribute: "root",
            accepted: &["Ab-1", "x"],
            refused: &["a_b", "-ab", "a.b", "ab c"],
            oracle_wrong: &[],
        },
        _ => return None,
    })
}

/// (XSD set, simple type name) → its patterns, for every `xs:pattern` of every schema file.
fn pattern_types(xsd: &Path) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut sets: Vec<PathBuf> = std::fs::read_dir(xsd)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("CDA.xsd").is_file())
        .collect();
    sets.sort();
    assert_eq!(sets.len(), 2, "XSD sets in {}", xsd.display());
    for set in sets {
        let set_name = set.file_name().unwrap().to_string_lossy().into_owned();
        let mut files = vec![set.join("CDA.xsd")];
        for e in std::fs::read_dir(set.join("coreschemas")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "xsd") {
                files.push(p);
            }
        }
        for file in files {
            for (type_name, value) in patterns_of(&file) {
                out.entry((set_name.clone(), type_name))
                    .or_default()
                    .push(value);
            }
        }
    }
    out
}

/// (simple type name, pattern) of each `xs:pattern` in one schema file (read with
/// `quick-xml`, not with the reader under test).
fn patterns_of(file: &Path) -> Vec<(String, String)> {
    let bytes = std::fs::read(file).unwrap();
    let mut reader = NsReader::from_reader(&bytes[..]);
    let mut buf = Vec::new();
    // (local name, whether in the XSD namespace, @name) of the open elements.
    let mut open: Vec<(Vec<u8>, bool, Option<String>)> = Vec::new();
    let mut out = Vec::new();
    loop {
        let (ns, event) = reader
            .read_resolved_event_into(&mut buf)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let xs = matches!(ns, ResolveResult::Bound(Namespace(n)) if n == XS.as_bytes());
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = e.local_name().as_ref().to_vec();
                let attr = |name: &str| {
                    e.try_get_attribute(name)
                        .unwrap()
                        .map(|a| a.unescape_value().unwrap().into_owned())
                };
                if xs && local == b"pattern" {
                    let n = open.len();
                    let owner = (n >= 2
                        && open[n - 1].0 == b"restriction"
                        && open[n - 1].1
                        && open[n - 2].0 == b"simpleType"
                        && open[n - 2].1)
                        .then(|| open[n - 2].2.clone())
                        .flatten()
                        .unwrap_or_else(|| {
                            panic!("{}: a pattern not of a named simpleType", file.display())
                        });
                    out.push((owner, attr("value").unwrap()));
                }
                if matches!(event, Event::Start(_)) {
                    open.push((local, xs, attr("name")));
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    out
}

/// `text` with `attribute` of the first `<element` start tag set to `value` (added when
/// absent).
fn set_attribute(text: &str, element: &str, attribute: &str, value: &str) -> String {
    let tag = Regex::new(&format!(r"<{element}[\s/>]")).unwrap();
    let start = tag
        .find(text)
        .unwrap_or_else(|| panic!("no <{element}> in the sample"))
        .start();
    let end = start + text[start..].find('>').unwrap();
    let escaped = value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
        .replace('\t', "&#9;")
        .replace('\n', "&#10;")
        .replace('\r', "&#13;");
    let head = &text[start..end];
    let attr = Regex::new(&format!(r#"(\s{attribute}\s*=\s*)"[^"]*""#)).unwrap();
    let new_head = if attr.is_match(head) {
        attr.replace(head, |c: &regex::Captures| {
            format!("{}\"{escaped}\"", &c[1])
        })
        .into_owned()
    } else {
        let name_end = 1 + element.len();
        format!(
            "{} {attribute}=\"{escaped}\"{}",
            &head[..name_end],
            &head[name_end..]
        )
    };
    format!("{}{new_head}{}", &text[..start], &text[end..])
}

/// One generated document: its set, type, value, whether XSD accepts it, and whether the
/// oracle judges it as XSD does.
struct Case {
    set: String,
    type_name: String,
    value: String,
    accepted: bool,
    oracle_right: bool,
}

#[test]
fn pattern_verdicts_are_the_oracles_on_every_pattern_constrained_type() {
    let c = conformance();
    let types = pattern_types(&c.join("cda/xsd"));
    let unknown: Vec<_> = types.keys().filter(|(_, t)| target(t).is_none()).collect();
    assert!(
        unknown.is_empty(),
        "pattern-constrained types without values in this test: {unknown:?} ({types:?})"
    );
    // The issue's type, in both sets.
    for set in ["POCD_MT000040UV02", "POCD_HD000040"] {
        assert!(
            types.contains_key(&(set.to_owned(), "ts".to_owned())),
            "{types:?}"
        );
    }

    let sample = std::fs::read_to_string(c.join(SAMPLE)).unwrap();
    let dir = std::env::temp_dir().join(format!("fse-xsd-patterns-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cases: Vec<(PathBuf, Case)> = Vec::new();
    let sets: Vec<&String> = {
        let mut s: Vec<_> = types.keys().map(|(s, _)| s).collect();
        s.dedup();
        s
    };
    for set in sets {
        let base = set_attribute(&sample, "typeId", "extension", set);
        let file = dir.join(format!("{set}-base.xml"));
        std::fs::write(&file, &base).unwrap();
        cases.push((
            file,
            Case {
                set: set.clone(),
                type_name: "-".into(),
                value: "(the sample)".into(),
                accepted: true,
                oracle_right: true,
            },
        ));
        for (s, type_name) in types.keys().filter(|(s, _)| s == set) {
            let t = target(type_name).unwrap();
            let values = t
                .accepted
                .iter()
                .map(|v| (v, true, true))
                .chain(t.refused.iter().map(|v| (v, false, true)))
                .chain(t.oracle_wrong.iter().map(|v| (v, false, false)));
            for (k, (value, accepted, oracle_right)) in values.enumerate() {
                let text = set_attribute(&base, t.element, t.attribute, value);
                let file = dir.join(format!("{s}-{type_name}-{k}.xml"));
                std::fs::write(&file, text).unwrap();
                cases.push((
                    file,
                    Case {
                        set: s.clone(),
                        type_name: type_name.clone(),
                        value: (*value).to_owned(),
                        accepted,
                        oracle_right,
                    },
                ));
            }
        }
    }

    // The oracle, once over the folder.
    let out = Command::new(oracles().join("validate_cda.sh"))
        .arg("--json")
        .arg(&dir)
        .output()
        .expect("run validate_cda.sh");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let oracle: Value = serde_json::from_slice(&out.stdout).expect("oracle JSON");
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap();
    let by_file: HashMap<PathBuf, Value> = oracle["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| (canon(Path::new(r["file"].as_str().unwrap())), r.clone()))
        .collect();
    assert_eq!(by_file.len(), cases.len(), "documents judged by the oracle");

    let rules = RuleSet::load(&c.join("cda")).unwrap();
    let mut wrong = Vec::new();
    let mut parsed = Vec::new();
    for (file, case) in &cases {
        let r = &by_file[&canon(file)];
        assert_eq!(
            r["typeId_extension"],
            case.set.as_str(),
            "{}",
            file.display()
        );
        let oracle_ok = r["xsd_errors"].as_array().is_some_and(Vec::is_empty);
        let what = format!(
            "{} {} /{}/ {:?}",
            case.set,
            case.type_name,
            types
                .get(&(case.set.clone(), case.type_name.clone()))
                .map(|p| p.join("/ /"))
                .unwrap_or_default(),
            case.value
        );
        if case.oracle_right && oracle_ok != case.accepted {
            wrong.push(format!(
                "{what}: the oracle {} it: {}",
                if oracle_ok { "accepts" } else { "refuses" },
                r["xsd_errors"]
            ));
        }
        // What ours must say: the oracle's verdict, or XSD's where the oracle errs.
        let valid = if case.oracle_right {
            oracle_ok
        } else {
            case.accepted
        };
        let bytes = std::fs::read(file).unwrap();
        let doc = parse(&bytes).unwrap();
        let staged = rules.xsd_errors(&doc, &bytes, false).unwrap();
        let full = rules.xsd_errors_full(&doc, &bytes).unwrap();
        let reread = rules.xsd_errors(&doc, &bytes, true).unwrap();
        for (how, errors) in [("stage", &staged), ("walk", &full), ("reread", &reread)] {
            if errors.is_empty() != valid {
                wrong.push(format!(
                    "{what}: {how}: ours {errors:?}, the oracle's {}",
                    r["xsd_errors"]
                ));
            }
        }
        parsed.push((what, bytes, doc, valid));
    }
    // The fast verdict, after learning from every document above.
    let mut answered = 0;
    for (what, bytes, doc, valid) in &parsed {
        if rules.xsd_fast_verdict(doc, bytes).unwrap() == Some(true) {
            answered += 1;
            if !valid {
                wrong.push(format!("{what}: the fast verdict says valid"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // So that the check of the fast verdict bites: it answered for valid documents.
    assert!(answered > 0, "the fast verdict never answered");
}
