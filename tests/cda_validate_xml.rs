//! `fse cda validate` on what surrounds the verdict: documents in other encodings and with
//! characters XML does not allow (judged as the independent oracle judges them), code systems
//! whose codes could not be checked, and the warnings beyond the gateway's checks.
//!
//! Every document is made at run time from an official OK sample (never copied into the
//! project).

mod common;

use common::{conformance_dir, fse_bin, oracles_dir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rules_dir() -> PathBuf {
    conformance_dir().join("cda")
}

/// An official OK case (TPI): UTF-8 without a declaration, with `à` and `è` in its text.
fn sample() -> String {
    let p = conformance_dir().join(
        "cda/samples/it-fse-accreditamento-upstream/13- Casi OK Tessera Portatore Impianto/TPI CT1.xml",
    );
    std::fs::read_to_string(p).expect("read the TPI sample")
}

fn fse_validate(format: &str, files: &[PathBuf]) -> Output {
    Command::new(fse_bin())
        .args(["cda", "validate", "--format", format, "--rules"])
        .arg(rules_dir())
        .args(files)
        .output()
        .expect("run the fse binary")
}

fn json_results(out: &Output) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("fse JSON: {e}\n{}", String::from_utf8_lossy(&out.stderr)));
    v["results"].as_array().expect("results").clone()
}

/// Accepted (201), refused as a syntax error (400 `/msg/syntax`), or refused otherwise.
fn class(r: &Value) -> &'static str {
    match (r["http"].as_u64(), r["outcome"].as_str()) {
        (Some(201), _) => "accepted",
        (Some(400), Some("SYNTAX_ERROR")) => "syntax",
        _ => "other",
    }
}

fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("a Latin-1 character"))
        .collect()
}

fn utf16(s: &str, big_endian: bool) -> Vec<u8> {
    s.encode_utf16()
        .flat_map(|u| {
            if big_endian {
                u.to_be_bytes()
            } else {
                u.to_le_bytes()
            }
        })
        .collect()
}

fn decl(version: &str, encoding: &str) -> String {
    format!("<?xml version=\"{version}\" encoding=\"{encoding}\"?>\n")
}

/// The sample with `s` inserted at the start of its first `<title>`'s text.
fn in_title(doc: &str, s: &str) -> String {
    doc.replacen("<title>", &format!("<title>{s}"), 1)
}

/// (file name, bytes, expected class) of every variant.
fn variants() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let doc = sample();
    assert!(doc.contains('à') && !doc.starts_with("<?xml"));
    let ascii: String = doc
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("&#{};", u32::from(c))
            }
        })
        .collect();
    vec![
        (
            "latin1.xml",
            latin1(&(decl("1.0", "ISO-8859-1") + &doc)),
            "accepted",
        ),
        (
            "windows-1252.xml",
            latin1(&(decl("1.0", "windows-1252") + &doc)),
            "accepted",
        ),
        (
            "utf16le-bom.xml",
            utf16(&format!("\u{FEFF}{}{doc}", decl("1.0", "UTF-16")), false),
            "accepted",
        ),
        (
            "utf16be-bom.xml",
            utf16(&format!("\u{FEFF}{}{doc}", decl("1.0", "UTF-16")), true),
            "accepted",
        ),
        (
            "utf16le-no-bom.xml",
            utf16(&(decl("1.0", "UTF-16") + &doc), false),
            "accepted",
        ),
        (
            "us-ascii.xml",
            (decl("1.0", "US-ASCII") + &ascii).into_bytes(),
            "accepted",
        ),
        (
            "version-1.1.xml",
            (decl("1.1", "UTF-8") + &doc).into_bytes(),
            "accepted",
        ),
        // Latin-1 bytes in a document that does not declare them.
        ("latin1-undeclared.xml", latin1(&doc), "syntax"),
        (
            "latin1-declared-utf8.xml",
            latin1(&(decl("1.0", "UTF-8") + &doc)),
            "syntax",
        ),
        // Bytes above 0x7F in a document declared US-ASCII.
        (
            "us-ascii-8bit.xml",
            latin1(&(decl("1.0", "US-ASCII") + &doc)),
            "syntax",
        ),
        ("nul.xml", in_title(&doc, "\u{0}").into_bytes(), "syntax"),
        (
            "control.xml",
            in_title(&doc, "\u{1}").into_bytes(),
            "syntax",
        ),
        (
            "fffe-literal.xml",
            in_title(&doc, "\u{FFFE}").into_bytes(),
            "syntax",
        ),
        (
            "fffe-reference.xml",
            in_title(&doc, "&#xFFFE;").into_bytes(),
            "syntax",
        ),
        (
            "x1-reference.xml",
            in_title(&doc, "&#x1;").into_bytes(),
            "syntax",
        ),
        (
            "x1-reference-attribute.xml",
            doc.replacen("<title>", "<title xml:lang=\"it&#x1;\">", 1)
                .into_bytes(),
            "syntax",
        ),
        (
            "version-1.9.xml",
            (decl("1.9", "UTF-8") + &doc).into_bytes(),
            "syntax",
        ),
        (
            "version-2.0.xml",
            (decl("2.0", "UTF-8") + &doc).into_bytes(),
            "syntax",
        ),
        (
            "no-version.xml",
            ("<?xml encoding=\"UTF-8\"?>\n".to_owned() + &doc).into_bytes(),
            "syntax",
        ),
        (
            "unknown-encoding.xml",
            (decl("1.0", "bogus") + &doc).into_bytes(),
            "syntax",
        ),
    ]
}

#[test]
fn encodings_and_characters_are_judged_as_the_oracle_judges_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases = variants();
    let mut files = Vec::new();
    for (name, bytes, _) in &cases {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).expect("write a variant");
        files.push(p);
    }
    let oracle = Command::new(oracles_dir().join("validate_cda.sh"))
        .arg("--json")
        .arg(tmp.path())
        .output()
        .expect("run the oracle");
    assert!(
        matches!(oracle.status.code(), Some(0 | 1)),
        "oracle failed: {}",
        String::from_utf8_lossy(&oracle.stderr)
    );
    let oracle = json_results(&oracle);
    let ours = json_results(&fse_validate("json", &files));
    let name_of = |r: &Value| {
        Path::new(r["file"].as_str().expect("file"))
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut wrong = Vec::new();
    for (name, _, expected) in &cases {
        let o = oracle
            .iter()
            .find(|r| name_of(r) == *name)
            .unwrap_or_else(|| panic!("oracle has no result for {name}"));
        let f = ours
            .iter()
            .find(|r| name_of(r) == *name)
            .unwrap_or_else(|| panic!("fse has no result for {name}"));
        if class(o) != *expected || class(f) != class(o) {
            wrong.push(format!(
                "{name}: expected {expected}, oracle {} ({}), fse {} ({} {})",
                class(o),
                o["xsd_errors"][0],
                class(f),
                f["outcome"],
                f["xsd_errors"][0]
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn refused_characters_and_encodings_are_named_with_their_place() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let doc = sample();
    let cases = [
        (
            "nul.xml",
            in_title(&doc, "\u{0}").into_bytes(),
            "character U+0000 is not allowed in XML",
        ),
        (
            "ref.xml",
            in_title(&doc, "&#xFFFE;").into_bytes(),
            "a character reference to U+FFFE, which is not allowed in XML",
        ),
        (
            "ascii.xml",
            latin1(&(decl("1.0", "US-ASCII") + &doc)),
            "the input is not US-ASCII text, as it declares",
        ),
        (
            "undeclared.xml",
            latin1(&doc),
            "encoding=\\\"ISO-8859-1\\\"",
        ),
    ];
    let mut files = Vec::new();
    for (name, bytes, _) in &cases {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).expect("write");
        files.push(p);
    }
    let out = fse_validate("json", &files);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    for (name, _, needle) in &cases {
        assert!(text.contains(needle), "{name}: {needle} not in\n{text}");
    }
    // The NUL is placed on its line (the title's) and column.
    let line = doc
        .lines()
        .position(|l| l.contains("<title>"))
        .expect("a title")
        + 1;
    let column = doc
        .lines()
        .nth(line - 1)
        .and_then(|l| l.find("<title>"))
        .expect("title")
        + 8;
    let human = String::from_utf8_lossy(&fse_validate("human", &files[..1]).stdout).into_owned();
    assert!(
        human.contains(&format!(
            "nul.xml: syntax: FATAL: {line}:{column}: character U+0000 is not allowed in XML"
        )),
        "{human}"
    );
}

#[test]
fn unchecked_code_systems_are_named_on_every_document() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = tmp.path().join("a.xml");
    let b = tmp.path().join("b.xml");
    std::fs::write(&a, sample()).expect("write");
    std::fs::write(&b, sample()).expect("write");
    let out = fse_validate("human", &[a, b]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for f in ["a.xml", "b.xml"] {
        assert!(
            text.contains(&format!(
                "{f}: note: codes not checked, no code list in the rules for: LOINC (2.16.840.1.113883.6.1)"
            )),
            "{text}"
        );
    }
}

#[test]
fn warnings_beyond_the_gateway_never_change_the_verdict() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let doc = sample();
    // The sample's patient code has a wrong check character (Z; M is right).
    assert!(doc.contains("extension=\"ESMPLA60A49A399Z\""));
    let fixed = doc.replace("ESMPLA60A49A399Z", "ESMPLA60A49A399M");
    let loinc = fixed.replacen(
        "codeSystem=\"2.16.840.1.113883.6.1\" codeSystemName=\"LOINC\" displayName=\"dispositivo\"",
        "codeSystem=\"2.16.840.1.113883.6.1\" codeSystemVersion=\"2.19\" codeSystemName=\"LOINC\" displayName=\"dispositivo\"",
        1,
    );
    assert_ne!(loinc, fixed);
    let files: Vec<PathBuf> = [
        ("wrong-cf.xml", &doc),
        ("right-cf.xml", &fixed),
        ("loinc.xml", &loinc),
    ]
    .iter()
    .map(|(name, text)| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    })
    .collect();
    let results = json_results(&fse_validate("json", &files));
    let codes = |r: &Value| -> Vec<String> {
        r["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .map(|w| w["code"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(results[0]["http"], 201);
    assert_eq!(codes(&results[0]), ["FISCAL_CODE_CHECK_CHARACTER"]);
    let w = &results[0]["warnings"][0];
    assert_eq!(
        w["message"],
        "the patient's fiscal code ESMPLA60A49A399Z has the check character Z, M expected (the gateway does not check it)"
    );
    assert_eq!(w["location"], "/*:ClinicalDocument[namespace-uri()='urn:hl7-org:v3'][1]/*:recordTarget[namespace-uri()='urn:hl7-org:v3'][1]/*:patientRole[namespace-uri()='urn:hl7-org:v3'][1]/*:id[namespace-uri()='urn:hl7-org:v3'][1]");
    assert_eq!(results[1]["http"], 201);
    assert!(codes(&results[1]).is_empty(), "{}", results[1]);
    // The catalog knows LOINC 2.82 only: the gateway refuses 2.19 (400 /msg/vocabulary) and
    // the warning says why whatever stage stopped.
    assert_eq!(codes(&results[2]), ["LOINC_VERSION_UNKNOWN"]);
    assert_eq!(
        results[2]["warnings"][0]["message"],
        "LOINC codeSystemVersion \"2.19\" is not one the catalog knows (2.82)"
    );
    let oracle = Command::new(oracles_dir().join("validate_cda.sh"))
        .arg("--json")
        .args(&files)
        .output()
        .expect("run the oracle");
    let oracle = json_results(&oracle);
    for (o, f) in oracle.iter().zip(&results) {
        assert_eq!(
            (&o["http"], &o["outcome"]),
            (&f["http"], &f["outcome"]),
            "{}",
            f["file"]
        );
    }
    // Human output and exit code: warned, still accepted.
    let out = fse_validate("human", &files[..1]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("warning[FISCAL_CODE_CHECK_CHARACTER]: the patient's fiscal code"),
        "{text}"
    );
}
