//! First steps and CLI behaviour: a closed stdout ends `fse` quietly, shell completions and
//! man pages, the starter inputs (`fse cda build --template TYPE`), the model's JSON Schema
//! (`fse cda schema`) and JSON inputs starting with a byte order mark.

mod common;

use fse_cda::build::{template, DocType};
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `fse ARGS` with its stdout a pipe whose reader is already closed (as after
/// `fse … | head -1` once head is done); returns (exit code, stderr).
#[allow(clippy::incompatible_msrv)] // std::io::pipe: tests run on the current toolchain
fn with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(common::fse_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("fse runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_ends_quietly_with_the_sigpipe_status() {
    let lab = common::workspace_root().join("fixtures/build/LAB/esempio-glicemia.json");
    for args in [
        &["config", "env"][..],
        &["completions", "bash"],
        &["cda", "build", "--template", "RAP"],
        &["cda", "schema"],
        &["cda", "build", lab.to_str().unwrap()],
    ] {
        let (code, stderr) = with_closed_stdout(args);
        assert_eq!(code, Some(141), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

#[test]
fn completions_and_man_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let out = common::fse(tmp.path(), &["completions", "bash"]);
    assert!(out.status.success());
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        script.contains("_fse()") && script.contains("complete"),
        "{script}"
    );
    assert!(
        script.contains("--template"),
        "subcommand options are completed"
    );
    let out = common::fse(tmp.path(), &["completions", "zsh"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("#compdef fse"));

    let out = common::fse(tmp.path(), &["man"]);
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH fse 1"), "{page}");
    let out = common::fse(tmp.path(), &["man", "-o", "pages"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in ["fse.1", "fse-cda.1", "fse-cda-build.1", "fse-config-init.1"] {
        let text = std::fs::read_to_string(tmp.path().join("pages").join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
    }
}

fn build(dir: &Path, input: &Path) -> Vec<u8> {
    let out = common::fse(dir, &["cda", "build", input.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Every type's starter input builds, to the bytes of the fixture it stands for (whose
/// CDA the official XSD and schematron accept: fixtures/build/README.md).
#[test]
fn every_type_has_a_starter_input_that_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = common::workspace_root().join("fixtures/build");
    for doc_type in DocType::ALL {
        let t = doc_type.abbrev();
        let out = common::fse(tmp.path(), &["cda", "build", "--template", t]);
        assert!(out.status.success(), "{t}");
        let input = tmp.path().join(format!("{t}.json"));
        std::fs::write(&input, &out.stdout).unwrap();
        let name = template::fixture_name(doc_type);
        let expected = std::fs::read(fixtures.join(t).join(format!("{name}.xml"))).unwrap();
        assert!(build(tmp.path(), &input) == expected, "{t}");
    }
    let out = common::fse(tmp.path(), &["cda", "build", "--template", "XYZ"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LAB_TRASF"));
}

#[test]
fn a_byte_order_mark_is_read_past() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = common::workspace_root().join("fixtures/build/LAB/esempio-glicemia.json");
    let mut text = b"\xEF\xBB\xBF".to_vec();
    text.extend(std::fs::read(&plain).unwrap());
    let with_bom = tmp.path().join("bom.json");
    std::fs::write(&with_bom, text).unwrap();
    assert!(build(tmp.path(), &with_bom) == build(tmp.path(), &plain));
}

#[test]
fn the_model_has_a_json_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let out = common::fse(tmp.path(), &["cda", "schema"]);
    assert!(out.status.success());
    let schema = common::json(&out);
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], false);
    // Field names and enumerations an editor offers.
    let props = schema["properties"].as_object().unwrap();
    for field in [
        "model",
        "type",
        "patient",
        "authors",
        "sections",
        "custodian",
    ] {
        assert!(props.contains_key(field), "{field}");
    }
    let text = serde_json::to_string(&schema).unwrap();
    for word in [
        "LAB_TRASF",
        "CERT_VACC",
        "fiscal_code",
        "legal_authenticator",
    ] {
        assert!(text.contains(word), "{word}");
    }
}
