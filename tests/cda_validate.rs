//! End-to-end tests of `fse cda validate`: verdicts compared with the independent oracle
//! (`../shared/oracles/validate_cda.sh --json`, Saxon + lxml over the official catalog), exit
//! codes, output formats and hostile input.
//!
//! What is compared: for every document where the oracle ran the schematron, the failed
//! asserts and reports (id, text and location) must be identical; the HTTP verdict must be
//! identical (outcome and HTTP status) for every document, and so must the XSD stage's verdict
//! (valid or not; the messages of the two XSD engines differ).

mod common;

use common::{conformance_dir, fse_bin, oracles_dir};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rules_dir() -> PathBuf {
    conformance_dir().join("cda")
}

/// Sample folders judged in the oracle comparison: every official sample CDA (the gateway
/// validator's corpus of all document types, the one-change mutations, the newer types) and
/// every CDA of the accreditation material.
fn sample_dirs() -> Vec<PathBuf> {
    let c = conformance_dir();
    vec![c.join("cda/samples"), c.join("accreditamento")]
}

fn fse(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(fse_bin())
        .args(args)
        .output()
        .expect("run the fse binary")
}

fn canon(p: &str) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p))
}

fn by_file(v: &Value) -> HashMap<PathBuf, Value> {
    v["results"]
        .as_array()
        .expect("results array")
        .iter()
        .map(|r| (canon(r["file"].as_str().expect("file")), r.clone()))
        .collect()
}

/// (id, text, location) of each finding; the oracle's id is the text before the first `|`.
fn findings(list: &Value) -> Vec<(String, String, String)> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    let text = f["text"].as_str().unwrap_or_default().to_owned();
                    let id = match f.get("id").and_then(Value::as_str) {
                        Some(i) => i.to_owned(),
                        None => text
                            .split_once('|')
                            .map(|(h, _)| h.trim().to_owned())
                            .unwrap_or_default(),
                    };
                    (
                        id,
                        text,
                        f["location"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn verdicts_agree_with_the_oracle() {
    let dirs = sample_dirs();
    // The oracle (one call for every document) and fse run at the same time.
    let oracle_child = Command::new(oracles_dir().join("validate_cda.sh"))
        .arg("--json")
        .arg("--all")
        .args(&dirs)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run validate_cda.sh");

    let mut args: Vec<&std::ffi::OsStr> = vec![
        "cda".as_ref(),
        "validate".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
    ];
    let rules = rules_dir();
    args.push("--rules".as_ref());
    args.push(rules.as_os_str());
    for d in &dirs {
        args.push(d.as_os_str());
    }
    let ours_out = fse(&args);
    let oracle_out = oracle_child.wait_with_output().expect("oracle output");
    assert!(
        matches!(oracle_out.status.code(), Some(0 | 1)),
        "oracle failed: {}",
        String::from_utf8_lossy(&oracle_out.stderr)
    );
    let oracle: Value = serde_json::from_slice(&oracle_out.stdout).expect("oracle JSON");
    assert!(
        matches!(ours_out.status.code(), Some(0 | 1)),
        "fse failed: {}",
        String::from_utf8_lossy(&ours_out.stderr)
    );
    let ours: Value = serde_json::from_slice(&ours_out.stdout).expect("fse JSON");

    let o = by_file(&oracle);
    let u = by_file(&ours);
    assert_eq!(o.len(), u.len(), "both judge the same documents");
    assert!(o.len() >= 1186, "only {} documents found", o.len());

    let (mut sch_compared, mut http_compared, mut xsd_refused) = (0, 0, 0);
    let mut mismatches = Vec::new();
    for (file, ov) in &o {
        let Some(uv) = u.get(file) else {
            mismatches.push(format!("{}: missing from fse output", file.display()));
            continue;
        };
        if ov["schematron"].is_string() && uv["schematron"].is_null() {
            // fse stops at the first failing stage; the oracle (--all) goes on. That is only
            // right when both refused the document at the syntax stage.
            if !(uv["outcome"] == "SYNTAX_ERROR" && ov["outcome"] == "SYNTAX_ERROR") {
                mismatches.push(format!(
                    "{}: fse did not run the schematron: {}",
                    file.display(),
                    uv["xsd_errors"]
                ));
            }
        } else if ov["schematron"].is_string() {
            sch_compared += 1;
            if findings(&ov["failed_asserts"]) != findings(&uv["failed_asserts"])
                || findings(&ov["reports"]) != findings(&uv["reports"])
            {
                mismatches.push(format!(
                    "{}: schematron findings differ\n  oracle: {:?}\n  fse:    {:?}",
                    file.display(),
                    findings(&ov["failed_asserts"]),
                    findings(&uv["failed_asserts"])
                ));
            }
        }
        http_compared += 1;
        if ov["http"] != uv["http"] || ov["outcome"] != uv["outcome"] {
            mismatches.push(format!(
                "{}: oracle {} {} fse {} {}",
                file.display(),
                ov["http"],
                ov["outcome"],
                uv["http"],
                uv["outcome"]
            ));
        }
        let o_xsd_ok = ov["xsd_errors"].as_array().is_some_and(Vec::is_empty);
        let u_xsd_ok = uv["xsd_errors"].as_array().is_some_and(Vec::is_empty);
        if !o_xsd_ok {
            xsd_refused += 1;
        }
        if o_xsd_ok != u_xsd_ok {
            mismatches.push(format!(
                "{}: XSD oracle {} fse {}",
                file.display(),
                ov["xsd_errors"],
                uv["xsd_errors"]
            ));
        }
    }
    eprintln!(
        "oracle comparison: {} documents, schematron findings compared on {sch_compared}, \
         http compared on {http_compared}, {xsd_refused} refused at the syntax stage by both, \
         {} mismatches",
        o.len(),
        mismatches.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(
        sch_compared >= 1100 && http_compared >= 100,
        "too few comparisons"
    );
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write temp file");
    p
}

#[test]
fn exit_codes_and_formats() {
    let rules = rules_dir();
    let ok = conformance_dir().join("cda/samples/it-fse-accreditamento-upstream/13- Casi OK Tessera Portatore Impianto/TPI CT1.xml");
    let out = fse(&[
        "cda".as_ref(),
        "validate".as_ref(),
        "--rules".as_ref(),
        rules.as_os_str(),
        ok.as_os_str(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("OK (gateway would answer 201"), "{text}");

    let tmp = tempfile::tempdir().expect("tempdir");
    let mut ko = std::fs::read_to_string(&ok).expect("read sample");
    ko = ko.replacen("<realmCode code=\"IT\"/>", "<realmCode code=\"XX\"/>", 1);
    let ko = write(tmp.path(), "ko.xml", ko.as_bytes());
    let out = fse(&[
        "cda".as_ref(),
        "validate".as_ref(),
        "--rules".as_ref(),
        rules.as_os_str(),
        ko.as_os_str(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("SEMANTIC_ERROR (gateway would answer 422 /msg/semantic"),
        "{text}"
    );
    assert!(text.contains("error[ERRORE-2]"), "{text}");

    let out = fse(&[
        "cda".as_ref(),
        "validate".as_ref(),
        "--format".as_ref(),
        "junit".as_ref(),
        "--jobs".as_ref(),
        "2".as_ref(),
        "--rules".as_ref(),
        rules.as_os_str(),
        ok.as_os_str(),
        ko.as_os_str(),
    ]);
    let junit = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        junit.contains("tests=\"2\" failures=\"1\" errors=\"0\""),
        "{junit}"
    );
    assert!(
        fse_cda::xml::parse(junit.as_bytes()).is_ok(),
        "JUnit output is well-formed XML"
    );

    // usage / IO errors → 2
    let missing = tmp.path().join("missing.xml");
    let out = fse(&[
        "cda".as_ref(),
        "validate".as_ref(),
        "--rules".as_ref(),
        rules.as_os_str(),
        missing.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(fse_bin())
        .args(["cda", "validate"])
        .arg(&ok)
        .env_remove("FSE_CDA_RULES")
        .output()
        .expect("run fse");
    // Without --rules: the built-in rules, which do not cover TPI → refused (1) with a hint.
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--rules"));
}

#[test]
fn hostile_input_is_a_syntax_error_not_a_crash() {
    let rules = rules_dir();
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "xxe.xml",
            b"<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><ClinicalDocument xmlns=\"urn:hl7-org:v3\">&e;</ClinicalDocument>".to_vec(),
            "DOCTYPE",
        ),
        ("entity.xml", b"<ClinicalDocument>&lol;</ClinicalDocument>".to_vec(), "entit"),
        ("latin1.xml", b"<a>\xe0</a>".to_vec(), "UTF-8"),
        ("text.xml", b"this is not xml".to_vec(), "FATAL"),
        ("deep.xml", "<a>".repeat(5000).into_bytes(), "deeper"),
    ];
    let mut paths = Vec::new();
    for (name, bytes, _) in &cases {
        paths.push(write(tmp.path(), name, bytes));
    }
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "cda".as_ref(),
        "validate".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        "--rules".as_ref(),
        rules.as_os_str(),
    ];
    for p in &paths {
        args.push(p.as_os_str());
    }
    let out = fse(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let results = v["results"].as_array().expect("results");
    assert_eq!(results.len(), cases.len());
    for (r, (name, _, needle)) in results.iter().zip(&cases) {
        assert_eq!(r["http"], 400, "{name}: {r}");
        assert_eq!(r["outcome"], "SYNTAX_ERROR", "{name}");
        let err = r["xsd_errors"][0].as_str().unwrap_or_default();
        assert!(err.contains(needle), "{name}: {err}");
    }
}
