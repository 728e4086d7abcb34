//! Tests of the builder library over the fixtures of `fixtures/build/`: determinism, the header
//! rules every FSE document must follow, and robustness against damaged input (never a panic,
//! always an error naming where).

use fse_cda::build::{build, BuildError, DocType};
use std::path::PathBuf;

fn fixtures() -> Vec<(PathBuf, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/build");
    let mut out = Vec::new();
    for t in DocType::ALL {
        let dir = root.join(t.abbrev());
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    assert!(out.len() >= 33, "fixtures missing: {}", out.len());
    out
}

#[test]
fn same_input_same_bytes() {
    for (path, input) in fixtures() {
        let a = build(&input).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let b = build(&input).unwrap();
        assert_eq!(a, b, "{}", path.display());
    }
}

#[test]
fn header_follows_the_fse_rules() {
    for (path, input) in fixtures() {
        let built = build(&input).unwrap();
        let xml = String::from_utf8(built.xml).unwrap();
        let profile = built.doc_type.profile();
        let p = path.display();
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            "{p}"
        );
        assert!(xml.contains("<realmCode code=\"IT\"/>"), "{p}");
        assert!(
            xml.contains(
                "<typeId root=\"2.16.840.1.113883.1.3\" extension=\"POCD_MT000040UV02\"/>"
            ),
            "{p}"
        );
        // The national templateId comes first: the gateway picks the schematron by it.
        let first = xml.find("<templateId ").unwrap();
        assert!(
            xml[first..].starts_with(&format!("<templateId root=\"{}\"", profile.template_root)),
            "{p}"
        );
        assert!(
            xml.contains(&format!(
                "<code code=\"{}\" codeSystem=\"2.16.840.1.113883.6.1\"",
                profile.loinc
            )),
            "{p}"
        );
        // Fiscal code root, never a code system version the input did not ask for.
        assert!(xml.contains("root=\"2.16.840.1.113883.2.9.4.3.2\""), "{p}");
        let input = String::from_utf8(input).unwrap();
        if !input.contains("code_system_version") && !input.contains("codeSystemVersion") {
            assert!(!xml.contains("codeSystemVersion"), "{p}");
        }
    }
}

#[test]
fn every_confidentiality_code_builds() {
    let (_, input) = &fixtures()[0];
    let text = String::from_utf8(input.clone()).unwrap();
    for code in ["N", "R", "V"] {
        let changed = text.replacen(
            "\"confidentiality\": \"N\"",
            &format!("\"confidentiality\": \"{code}\""),
            1,
        );
        let xml = String::from_utf8(build(changed.as_bytes()).unwrap().xml).unwrap();
        assert!(xml.contains(&format!("<confidentialityCode code=\"{code}\"")));
    }
}

#[test]
fn damaged_input_gives_an_error_never_a_panic() {
    let (_, input) = &fixtures()[0];
    // Every truncation is an error.
    for len in (0..input.len() - 2).step_by(97) {
        assert!(
            build(&input[..len]).is_err(),
            "prefix of {len} bytes accepted"
        );
    }
    // Byte substitutions: an error or a document, never a panic.
    let mut state = 0x2545_f491_u32;
    for _ in 0..400 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let mut damaged = input.clone();
        let pos = state as usize % damaged.len();
        damaged[pos] = (state >> 24) as u8;
        let _ = build(&damaged);
    }
}

#[test]
fn errors_name_the_field() {
    let (_, input) = &fixtures()[0];
    let mut v: serde_json::Value = serde_json::from_slice(input).unwrap();
    v["patient"]["fiscal_code"] = "RSSMRA80A01H501U".into();
    assert!(build(&serde_json::to_vec(&v).unwrap()).is_ok());
    v["patient"]["other_ids"] =
        serde_json::json!([{"root": "2.16.840.1.113883.2.9.4.3.2", "extension": "X"}]);
    let err = build(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(
        matches!(&err, BuildError::Field { path, .. } if path == "patient.other_ids[0]"),
        "{err}"
    );
    v["authors"] = serde_json::json!([]);
    v["patient"]["other_ids"] = serde_json::json!([]);
    let err = build(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert_eq!(err.to_string(), "authors: at least one author is required");
    let err = build(b"\xff{}").unwrap_err();
    assert_eq!(err, BuildError::NotUtf8 { offset: 0 });
}

#[test]
fn sections_get_the_default_template_of_their_type_unless_given() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/build");
    let input = std::fs::read(root.join("SING_VACC/esempio-minimo.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&input).unwrap();
    assert!(v["sections"][0].get("template_ids").is_none());
    let default = "<templateId root=\"2.16.840.1.113883.2.9.10.1.11.3.1\"/>";
    let xml = String::from_utf8(build(&input).unwrap().xml).unwrap();
    assert!(xml.contains(default));
    v["sections"][0]["template_ids"] = serde_json::json!([]);
    let xml = build(&serde_json::to_vec(&v).unwrap()).unwrap().xml;
    assert!(!String::from_utf8(xml).unwrap().contains(default));
    v["sections"][0]["template_ids"] = serde_json::json!([{"root": "1.2.3"}]);
    let xml = build(&serde_json::to_vec(&v).unwrap()).unwrap().xml;
    let xml = String::from_utf8(xml).unwrap();
    assert!(xml.contains("<templateId root=\"1.2.3\"/>") && !xml.contains(default));
}

#[test]
fn duplicate_xml_ids_are_refused() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/build");
    let input = std::fs::read(root.join("LAB/esempio-glicemia.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&input).unwrap();
    v["sections"][0]["xml_id"] = "glu-1".into();
    let err = build(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sections[0].sections[0]: duplicate XML ID \"glu-1\""
    );
}

/// The typed statements of `LAB/esempio-glicemia.json`, changed by `f`, give `expected`.
fn typed_error(f: impl FnOnce(&mut serde_json::Value), expected: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/build");
    let input = std::fs::read(root.join("LAB/esempio-glicemia.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&input).unwrap();
    f(&mut v["sections"][0]["sections"][0]["entries"][0]);
    let err = build(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert_eq!(err.to_string(), expected);
}

#[test]
fn typed_statements_are_checked() {
    let at = "sections[0].sections[0].entries[0]";
    typed_error(
        |e| e["act"]["values"] = serde_json::json!([{"st": "x"}]),
        &format!("{at}.act.values: not allowed on act"),
    );
    typed_error(
        |e| e["statement"] = serde_json::json!(["act"]),
        &format!("{at}: holds more than one statement"),
    );
    typed_error(
        |e| {
            e.as_object_mut().unwrap().remove("act");
        },
        &format!(
            "{at}: needs one statement: `observation`, `act`, `organizer`, \
             `substance_administration`, `procedure`, `encounter`, `supply` or `statement`"
        ),
    );
    typed_error(
        |e| {
            e["act"]["entry_relationships"][0]
                .as_object_mut()
                .unwrap()
                .remove("type_code");
        },
        &format!(
            "{at}.act.entry_relationships[0].type_code: an entry relationship needs a type_code"
        ),
    );
    typed_error(
        |e| {
            e["act"]["entry_relationships"][0]["observation"]["values"][0]["pq"]["value"] =
                "9,2".into()
        },
        &format!(
            "{at}.act.entry_relationships[0].observation.values[0].pq.value: invalid number \"9,2\""
        ),
    );
    typed_error(
        |e| {
            let obs = e["act"]["entry_relationships"][0]["observation"].take();
            e.as_object_mut().unwrap().remove("act");
            e["organizer"] = serde_json::json!({"components": [{"observation": obs}]});
        },
        &format!("{at}.organizer.class_code: an organizer needs a class_code (BATTERY or CLUSTER)"),
    );
    typed_error(
        |e| e["act"]["effective_time"] = serde_json::json!({"value": "2026-11-23"}),
        &format!("{at}.act.effective_time.value: invalid date \"2026-11-23\": no separators: digits only, then the zone (expected YYYYMMDD[HHMM[SS]][+ZZZZ])"),
    );
}

#[test]
fn typed_and_generic_statements_write_the_same_xml() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/build");
    let input = std::fs::read(root.join("LAB/esempio-glicemia.json")).unwrap();
    let typed = build(&input).unwrap().xml;
    let mut v: serde_json::Value = serde_json::from_slice(&input).unwrap();
    let loinc = |d: &str| {
        serde_json::json!(["code", {"code": "2345-7", "codeSystem": "2.16.840.1.113883.6.1",
            "codeSystemName": "LOINC", "displayName": d}])
    };
    let n = serde_json::json!(["interpretationCode", {"code": "N",
        "codeSystem": "2.16.840.1.113883.5.83", "codeSystemName": "HL7 ObservationInterpretation",
        "displayName": "Normale"}]);
    let name = "Glucosio [Massa/Volume] Siero/Plasma";
    v["sections"][0]["sections"][0]["entries"][0] = serde_json::json!({
        "type_code": "DRIV",
        "statement": ["act", {"classCode": "ACT", "moodCode": "EVN"}, loinc(name),
            ["statusCode", {"code": "completed"}],
            ["entryRelationship", {"typeCode": "COMP"},
                ["observation", {"classCode": "OBS", "moodCode": "EVN"}, loinc(name),
                    ["text", ["reference", {"value": "#glu-1"}]],
                    ["statusCode", {"code": "completed"}],
                    ["effectiveTime", {"value": "20261123083000+0100"}],
                    ["value", {"xsi:type": "PQ", "value": "92", "unit": "mg/dL"}],
                    n.clone(),
                    ["specimen", {"typeCode": "SPC"}, ["specimenRole", {"classCode": "SPEC"},
                        ["specimenPlayingEntity", ["code", {"code": "SER",
                            "codeSystem": "2.16.840.1.113883.5.129",
                            "codeSystemName": "SpecimenType", "displayName": "Siero"}]]]],
                    ["referenceRange", {"typeCode": "REFV"},
                        ["observationRange", {"classCode": "OBS", "moodCode": "EVN.CRT"},
                            ["value", {"xsi:type": "IVL_PQ"},
                                ["low", {"value": "70", "unit": "mg/dL"}],
                                ["high", {"value": "100", "unit": "mg/dL"}]],
                            n]]]]]
    });
    let generic = build(&serde_json::to_vec(&v).unwrap()).unwrap().xml;
    assert_eq!(
        String::from_utf8(typed).unwrap(),
        String::from_utf8(generic).unwrap()
    );
}

#[test]
fn patients_need_a_national_or_regional_id() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/build");
    let input = std::fs::read(root.join("RSA/esempio-stp.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&input).unwrap();
    assert!(build(&input).is_ok());
    let set = |v: &mut serde_json::Value, ids: serde_json::Value| {
        v["patient"]["other_ids"] = ids;
        build(&serde_json::to_vec(v).unwrap()).map(|_| ())
    };
    let err = set(
        &mut v,
        serde_json::json!([{"root": "1.2.3", "extension": "X"}]),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("patient: the patient needs a fiscal_code"),
        "{err}"
    );
    let err = set(
        &mut v,
        serde_json::json!([{"root": "2.16.840.1.113883.2.9.4.3.7", "extension": "8038000"}]),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("patient.other_ids: a TEAM card"),
        "{err}"
    );
    set(
        &mut v,
        serde_json::json!([
            {"root": "2.16.840.1.113883.2.9.4.3.7", "extension": "80380000123456789012"},
            {"root": "2.16.840.1.113883.2.9.4.3.3", "extension": "DE"}
        ]),
    )
    .unwrap();
    set(
        &mut v,
        serde_json::json!([{"root": "2.16.840.1.113883.2.9.2.90.4.1", "extension": "123"}]),
    )
    .unwrap();
}
