//! `fse cda validate` with the built-in rules (`schemas/`, embedded in the binary): every
//! builder fixture passes, broken variants fail with the expected rule, unknown types get a
//! clear verdict, and no document the official rules accept is refused by them.

mod common;

use common::{conformance_dir, fse_bin, workspace_root};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `fse cda validate ARGS` with no rule folder in the environment.
fn validate(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(fse_bin())
        .args(["cda", "validate"])
        .args(args)
        .env_remove("FSE_CDA_RULES")
        .output()
        .expect("run fse")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn fixtures_dir() -> PathBuf {
    workspace_root().join("fixtures/build")
}

fn fixture_xmls() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for t in std::fs::read_dir(fixtures_dir()).expect("fixtures/build") {
        let t = t.expect("entry").path();
        if !t.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&t).expect("type folder") {
            let f = f.expect("entry").path();
            if f.extension().is_some_and(|e| e == "xml") {
                v.push(f);
            }
        }
    }
    v.sort();
    v
}

/// `file → accepted (http 201)` from a JSON run.
fn accepted_by_file(v: &Value) -> HashMap<String, bool> {
    v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap_or_default().to_owned(),
                r["http"].as_u64() == Some(201),
            )
        })
        .collect()
}

#[test]
fn every_fixture_passes_the_builtin_rules() {
    let files = fixture_xmls();
    assert!(files.len() >= 40, "only {} fixtures", files.len());
    let mut args: Vec<&std::ffi::OsStr> = vec!["--format".as_ref(), "json".as_ref()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    let out = validate(&args);
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["rules"], "builtin");
    assert_eq!(v["summary"]["accepted"], files.len());
    for r in v["results"].as_array().expect("results") {
        assert_eq!(r["outcome"], "OK", "{r:#}");
        let sch = r["schematron"].as_str().unwrap_or_default();
        assert!(sch.starts_with("fse-") && sch.ends_with("(v1.0)"), "{r:#}");
        assert_eq!(r["not_checked"], serde_json::json!(["xsd"]), "{r:#}");
        // the terminology stage ran on the built-in code lists
        assert!(
            r["terminology"]["checked_codes"].as_u64() >= Some(2),
            "{r:#}"
        );
    }

    // Human output: one line naming the rules, then the verdicts.
    let one = fixtures_dir().join("LDO/esempio-minimo.xml");
    let out = validate(&[one.as_os_str()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let first = text.lines().next().unwrap_or_default();
    assert!(first.starts_with("rules: builtin"), "{text}");
    assert!(
        text.contains("OK (gateway would answer 201, schematron fse-LDO.sch (v1.0))"),
        "{text}"
    );
    assert!(
        text.contains("note: not checked by the built-in rules: xsd"),
        "{text}"
    );
}

/// Writes `name` = the LDO fixture with `edit` applied (which must change it) and judges it.
fn judge_variant(dir: &Path, name: &str, edit: impl Fn(&str) -> String) -> (Output, Value) {
    let base = std::fs::read_to_string(fixtures_dir().join("LDO/esempio-minimo.xml"))
        .expect("read LDO fixture");
    let changed = edit(&base);
    assert!(changed != base, "{name}: the edit changed nothing");
    let path = dir.join(name);
    std::fs::write(&path, changed).expect("write variant");
    let out = validate(&["--format".as_ref(), "json".as_ref(), path.as_os_str()]);
    let v = json_of(&out);
    (out, v["results"][0].clone())
}

fn assert_ids(name: &str, r: &Value, expected: &[&str]) {
    let ids: Vec<&str> = r["failed_asserts"]
        .as_array()
        .expect("failed_asserts")
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids, expected, "{name}: {r:#}");
}

/// An edit of the LDO fixture.
type Edit = Box<dyn Fn(&str) -> String>;

#[test]
fn broken_documents_fail_with_the_expected_rule() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        (
            "no-realm.xml",
            Box::new(|s| s.replacen(r#"<realmCode code="IT"/>"#, r#"<realmCode code="FR"/>"#, 1)),
            vec!["FSE-HDR-001"],
        ),
        (
            "missing-patient-cf.xml",
            Box::new(|s| {
                s.replacen(
                    r#"<id root="2.16.840.1.113883.2.9.4.3.2" extension="RSSMRA80A01H501U" assigningAuthorityName="MEF"/>"#,
                    "",
                    1,
                )
            }),
            vec!["FSE-HDR-013"],
        ),
        (
            "lowercase-cf.xml",
            Box::new(|s| s.replacen("RSSMRA80A01H501U", "rssmra80a01h501u", 1)),
            vec!["FSE-HDR-014"],
        ),
        (
            "bad-effective-time.xml",
            Box::new(|s| {
                s.replacen(
                    r#"<effectiveTime value="20261123101500+0100"/>"#,
                    r#"<effectiveTime value="2026-11-23T10:15:00"/>"#,
                    1,
                )
            }),
            vec!["FSE-HDR-007"],
        ),
        (
            "confidentiality-x.xml",
            Box::new(|s| {
                s.replacen(
                    r#"<confidentialityCode code="N""#,
                    r#"<confidentialityCode code="X""#,
                    1,
                )
            }),
            vec!["FSE-HDR-008"],
        ),
        (
            "no-hospital-course.xml",
            Box::new(|s| s.replace(r#"code="8648-8""#, r#"code="8647-0""#)),
            vec!["FSE-LDO-002"],
        ),
        (
            "no-legal-authenticator.xml",
            Box::new(|s| {
                let (a, b) = (
                    s.find("<legalAuthenticator>"),
                    s.find("</legalAuthenticator>"),
                );
                match (a, b) {
                    (Some(a), Some(b)) => {
                        format!("{}{}", &s[..a], &s[b + "</legalAuthenticator>".len()..])
                    }
                    _ => s.to_owned(),
                }
            }),
            vec!["FSE-HDR-020"],
        ),
        (
            // An LDO document that announces itself as a radiology report: the gateway picks
            // the rules by the first templateId, so the RAD rules judge it.
            "ldo-as-rad.xml",
            Box::new(|s| {
                s.replacen(
                    r#"<templateId root="2.16.840.1.113883.2.9.10.1.5" extension="1.2"/>"#,
                    r#"<templateId root="2.16.840.1.113883.2.9.10.1.7.1" extension="1.1"/>"#,
                    1,
                )
            }),
            vec!["FSE-HDR-006", "FSE-RAD-001", "FSE-RAD-002"],
        ),
    ];
    for (name, edit, expected) in &cases {
        let (out, r) = judge_variant(tmp.path(), name, edit);
        assert_eq!(out.status.code(), Some(1), "{name}: {r:#}");
        assert_eq!(r["outcome"], "SEMANTIC_ERROR", "{name}: {r:#}");
        assert_ids(name, &r, expected);
    }

    // A placeholder fiscal code (16 capitals/digits, not a person's layout): accepted with a
    // warning, as the official rules accept it.
    let (out, r) = judge_variant(tmp.path(), "placeholder-cf.xml", |s| {
        s.replacen("RSSMRA80A01H501U", "PROVAX00X00X000Y", 1)
    });
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    assert_eq!(r["outcome"], "SEMANTIC_WARNING", "{r:#}");
    assert_eq!(r["reports"][0]["id"], "FSE-HDR-W01", "{r:#}");

    // The terminology stage: a Confidentiality code outside N/R/V deeper in the document
    // (where no schematron rule looks) is refused by the built-in code list.
    let (out, r) = judge_variant(tmp.path(), "section-confidentiality.xml", |s| {
        s.replacen(
            r#"<section ID="Decorso_Ospedaliero">"#,
            r#"<section ID="Decorso_Ospedaliero"><confidentialityCode code="Q" codeSystem="2.16.840.1.113883.5.25"/>"#,
            1,
        )
    });
    assert_eq!(out.status.code(), Some(1), "{r:#}");
    assert_eq!(r["outcome"], "VOCABULARY_ERROR", "{r:#}");
    let msg = r["vocabulary_error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("2.16.840.1.113883.5.25") && msg.contains('Q'),
        "{r:#}"
    );
}

#[test]
fn unknown_document_type_gets_a_clear_verdict() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A pharmaceutical prescription root: a real FSE type the built-in rules do not cover.
    let (out, r) = judge_variant(tmp.path(), "prescription.xml", |s| {
        s.replacen(
            r#"<templateId root="2.16.840.1.113883.2.9.10.1.5""#,
            r#"<templateId root="2.16.840.1.113883.2.9.10.1.2.1""#,
            1,
        )
    });
    assert_eq!(out.status.code(), Some(1), "{r:#}");
    assert_eq!(r["outcome"], "SEMANTIC_ERROR", "{r:#}");
    assert!(r["schematron"].is_null(), "{r:#}");
    let text = r["failed_asserts"][0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("2.16.840.1.113883.2.9.10.1.2.1") && text.contains("not found"),
        "{r:#}"
    );
    // Human output explains what to do.
    let path = tmp.path().join("prescription.xml");
    let out = validate(&[path.as_os_str()]);
    let human = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{human}");
    assert!(
        human.contains("the built-in rules do not cover this document type"),
        "{human}"
    );
    assert!(human.contains("--rules"), "{human}");
}

#[test]
fn official_rules_still_work() {
    let rules = conformance_dir().join("cda");
    let one = fixtures_dir().join("LDO/esempio-minimo.xml");
    let out = validate(&[
        "--format".as_ref(),
        "json".as_ref(),
        "--rules".as_ref(),
        rules.as_os_str(),
        one.as_os_str(),
    ]);
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["rules"], rules.display().to_string());
    let r = &v["results"][0];
    assert_eq!(
        r["schematron"], "schematronFSE_LDO_v5.5.sch (v5.5)",
        "{r:#}"
    );
    assert_eq!(r["not_checked"], serde_json::json!([]), "{r:#}");

    // Through the environment too.
    let out = Command::new(fse_bin())
        .args(["cda", "validate"])
        .arg(&one)
        .env("FSE_CDA_RULES", &rules)
        .output()
        .expect("run fse");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.starts_with(&format!("rules: {}", rules.display())),
        "{text}"
    );
    assert!(text.contains("schematronFSE_LDO_v5.5.sch"), "{text}");
}

/// templateId roots served by the built-in rules, from `schemas/doctypes.csv`.
fn builtin_roots() -> Vec<String> {
    let text = std::fs::read_to_string(workspace_root().join("schemas/doctypes.csv"))
        .expect("schemas/doctypes.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "template_id_root")
        .expect("template_id_root column");
    lines
        .filter_map(|l| l.split(',').nth(col).map(str::to_owned))
        .collect()
}

#[test]
fn builtin_rules_never_refuse_what_the_official_rules_accept() {
    let conformance = conformance_dir();
    let roots = builtin_roots();
    assert_eq!(roots.len(), 9, "{roots:?}");

    // 1. Official samples the oracle accepts (manifest), of the types the built-in rules cover.
    let manifest = std::fs::read_to_string(conformance.join("cda/samples/manifest.csv"))
        .expect("manifest.csv");
    let mut rows = csv_rows(&manifest);
    let header = rows.remove(0);
    let col = |n: &str| header.iter().position(|h| h == n).expect(n);
    let (p, root, outcome) = (
        col("path"),
        col("templateId_root"),
        col("oracle_outcome_latest_rules"),
    );
    let accepted: Vec<PathBuf> = rows
        .iter()
        .filter(|r| matches!(r[outcome].as_str(), "OK" | "SEMANTIC_WARNING"))
        .filter(|r| roots.contains(&r[root]))
        .map(|r| conformance.join(&r[p]))
        .collect();
    let ok_folder = "Documenti XML Casi OK";
    let from_ok_folder = accepted
        .iter()
        .filter(|p| p.to_string_lossy().contains(ok_folder))
        .count();
    // 27 of the 33 samples of the accreditation's OK folder pass the latest official rules.
    assert!(
        from_ok_folder >= 27,
        "only {from_ok_folder} samples from {ok_folder}"
    );
    let mut args: Vec<&std::ffi::OsStr> = vec!["--format".as_ref(), "json".as_ref()];
    args.extend(accepted.iter().map(|f| f.as_os_str()));
    let out = validate(&args);
    let v = json_of(&out);
    let refused: Vec<&Value> = v["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["http"] != 201)
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
    assert_eq!(v["summary"]["accepted"], accepted.len());
    assert_eq!(out.status.code(), Some(0));

    // The whole OK folder passes the built-in rules (some with a warning on placeholder
    // fiscal codes), including the samples older than the latest official rules.
    let folder = conformance
        .join("accreditamento/gavesani-snapshot/Test Case/Validazione")
        .join(ok_folder);
    let out = validate(&["--format".as_ref(), "json".as_ref(), folder.as_os_str()]);
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["summary"]["documents"], 33, "{v:#}");

    // 2. Builder fixtures the official rules accept.
    let files = fixture_xmls();
    let mut args: Vec<&std::ffi::OsStr> = vec!["--format".as_ref(), "json".as_ref()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    let official = {
        let rules = conformance.join("cda");
        let mut a = args.clone();
        a.extend(["--rules".as_ref(), rules.as_os_str()]);
        accepted_by_file(&json_of(&validate(&a)))
    };
    let builtin = accepted_by_file(&json_of(&validate(&args)));
    let mut compared = 0;
    for (file, ok) in &official {
        if *ok {
            compared += 1;
            assert_eq!(builtin.get(file), Some(&true), "{file}");
        }
    }
    assert_eq!(
        compared,
        files.len(),
        "the official rules accept every fixture"
    );
}

/// RFC 4180 rows (quoted fields may hold commas and quotes; no embedded newlines here).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut out = Vec::new();
            let mut cur = String::new();
            let mut quoted = false;
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '"' if quoted && chars.peek() == Some(&'"') => {
                        cur.push('"');
                        chars.next();
                    }
                    '"' => quoted = !quoted,
                    ',' if !quoted => out.push(std::mem::take(&mut cur)),
                    o => cur.push(o),
                }
            }
            out.push(cur);
            out
        })
        .collect()
}

/// A file that cannot be read is reported, not judged: in JSON an entry whose verdict fields
/// are all null or empty and whose `error` says why, counted under `errors`, exit 2; the
/// other documents are judged as usual.
#[test]
fn an_unreadable_file_is_reported_not_judged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gone = dir.path().join("gone.xml");
    std::os::unix::fs::symlink(dir.path().join("no-such-target"), &gone).expect("symlink");
    let good = fixture_xmls().into_iter().next().expect("a fixture");
    let out = validate(&[
        "--format".as_ref(),
        "json".as_ref(),
        gone.as_os_str(),
        good.as_os_str(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    let results = v["results"].as_array().expect("results");
    let entry = results
        .iter()
        .find(|r| r["file"] == gone.display().to_string())
        .expect("an entry for the unreadable file");
    assert!(
        entry["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("cannot read: ")),
        "{entry}"
    );
    for key in [
        "http",
        "outcome",
        "problem",
        "type_id_extension",
        "template_id_root",
        "schematron",
        "vocabulary_error",
        "terminology",
    ] {
        assert!(entry[key].is_null(), "{key}: {entry}");
    }
    for key in ["xsd_errors", "failed_asserts", "reports", "not_checked"] {
        assert_eq!(entry[key], serde_json::json!([]), "{key}: {entry}");
    }
    assert_eq!(v["summary"]["errors"], 1, "{}", v["summary"]);
    assert_eq!(v["summary"]["accepted"], 1, "{}", v["summary"]);
}
