//! End-to-end tests of `fse batch publish|resume` and `fse journal`: the whole pipeline
//! (build, inject, validate at the gateway, sign, publish) against the sandbox, the journal
//! checked against the sandbox's own log of every `X-CART-id` it sent, and exactly-once
//! publication across a SIGKILL and `fse batch resume`.

mod common;

use fse_cart::batch::discover;
use fse_cart::sandbox::{self, Sandbox, ServeOptions};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn fixtures() -> PathBuf {
    common::workspace_root().join("fixtures/build")
}

use common::{fse, json};

/// Starts a sandbox in `dir` and writes a client configuration for it; returns both.
fn sandbox_in(dir: &Path, latency: Duration) -> (Sandbox, PathBuf) {
    sandbox::init(dir, "127.0.0.1:0".parse().unwrap()).expect("init");
    let mut options = ServeOptions::new(dir);
    // Answers leave this long after the request was processed: a kill then finds answers in
    // flight.
    options.faults.latency = latency;
    let sb = Sandbox::start(options).expect("sandbox starts");
    let config = sandbox::client_config(sb.addr(), "", dir);
    let path = dir.join("client.toml");
    std::fs::write(&path, config.to_toml().unwrap()).unwrap();
    (sb, path)
}

/// A copy of some fixture folders (JSON + expected XML pairs) as a batch input.
fn input_with(types: &[&str], into: &Path) -> usize {
    for t in types {
        let from = fixtures().join(t);
        std::fs::create_dir_all(into.join(t)).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, into.join(t).join(p.file_name().unwrap())).unwrap();
        }
    }
    discover(into).unwrap().len()
}

fn export(cwd: &Path, journal: &Path) -> Vec<Value> {
    let out = fse(
        cwd,
        &[
            "journal",
            "export",
            "--format",
            "json",
            "--journal",
            journal.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out).as_array().unwrap().clone()
}

#[test]
fn publishes_every_fixture_with_the_embedded_sandbox() {
    let tmp = tempfile::tempdir().unwrap();
    let expected = discover(&fixtures()).unwrap().len();
    assert!(expected >= 40, "fixtures/build holds {expected} documents");
    let fixtures = fixtures();
    let out = fse(
        tmp.path(),
        &[
            "batch",
            "publish",
            fixtures.to_str().unwrap(),
            "--sandbox",
            "--jobs",
            "4",
            "--rate",
            "0",
            "--format",
            "json",
            "--output",
            "out",
        ],
    );
    let summary = json(&out);
    assert_eq!(
        summary["counts"]["published"],
        expected,
        "{summary:#}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary["failures"], Value::Array(vec![]));
    assert_eq!(out.status.code(), Some(0));
    // Plain progress lines when stderr is not a terminal.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("[{expected}/{expected}]")),
        "{stderr}"
    );

    // The journal (default location: the current directory).
    let journal = tmp.path().join("fse-journal.sqlite");
    let records = export(tmp.path(), &journal);
    assert_eq!(
        records.len(),
        2 * expected,
        "a validation and a create each"
    );
    for r in &records {
        for key in [
            "document",
            "operation",
            "http_status",
            "x_cart_id",
            "trace_id",
            "workflow_instance_id",
            "started_at",
            "finished_at",
        ] {
            assert!(!r[key].is_null(), "{key} missing in {r}");
        }
    }
    let csv = fse(
        tmp.path(),
        &[
            "journal",
            "export",
            "--format",
            "csv",
            "--journal",
            journal.to_str().unwrap(),
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&csv.stdout).lines().count(),
        2 * expected + 1
    );
    let data = fse(
        tmp.path(),
        &[
            "journal",
            "export",
            "--format",
            "data-json",
            "--journal",
            journal.to_str().unwrap(),
        ],
    );
    let data = json(&data);
    assert_eq!(data["results"].as_array().unwrap().len(), expected);
    assert_eq!(data["results"][0]["id"], 1);
    // Every file data.json lists is the signed PDF kept by --output, with the CDA inside.
    for result in data["results"].as_array().unwrap() {
        let file = result["files"][0].as_str().unwrap();
        let pdf = std::fs::read(tmp.path().join("out").join(file)).unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "{file}");
        let cda = fse_pades::extract_cda(&pdf).unwrap();
        assert!(cda.starts_with(b"<?xml"), "{file}");
    }
    let list = fse(
        tmp.path(),
        &["journal", "list", "--journal", journal.to_str().unwrap()],
    );
    assert!(String::from_utf8_lossy(&list.stdout).contains(&format!("published={expected}")));

    // The README's main job, run again: a throw-away sandbox is another gateway, so the
    // journal's earlier publications (to a gateway that no longer exists) do not block it.
    let again = fse(
        tmp.path(),
        &[
            "batch",
            "publish",
            fixtures.to_str().unwrap(),
            "--sandbox",
            "--rate",
            "0",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(json(&again)["counts"]["published"], expected);
}

#[test]
fn journal_x_cart_ids_equal_the_sandbox_log() {
    let tmp = tempfile::tempdir().unwrap();
    let sb_dir = tmp.path().join("sb");
    let (sb, config) = sandbox_in(&sb_dir, Duration::ZERO);
    let input = tmp.path().join("in");
    input_with(&["LAB", "RAD"], &input);
    // A ready CDA (no JSON) with its own PDF.
    let ready = input.join("READY");
    std::fs::create_dir_all(&ready).unwrap();
    let cda = std::fs::read(fixtures().join("LAB_TRASF/esempio-minimo.xml")).unwrap();
    std::fs::write(ready.join("trasf.xml"), &cda).unwrap();
    let report = fse_pades::render::render_cda(&cda).unwrap();
    std::fs::write(ready.join("trasf.pdf"), &report).unwrap();
    let n = discover(&input).unwrap().len();
    let journal = tmp.path().join("j.sqlite");
    let out = fse(
        tmp.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "batch",
            "publish",
            input.to_str().unwrap(),
            "--unique-ids",
            "--journal",
            journal.to_str().unwrap(),
            "--jobs",
            "3",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("published: {n}")));
    let mut journal_ids: Vec<String> = export(tmp.path(), &journal)
        .iter()
        .map(|r| {
            r["x_cart_id"]
                .as_str()
                .expect("every call answered")
                .to_owned()
        })
        .collect();
    let mut sandbox_ids: Vec<String> = sandbox::cart_log(&sb_dir)
        .unwrap()
        .into_iter()
        .map(|e| e.x_cart_id)
        .collect();
    journal_ids.sort();
    sandbox_ids.sort();
    assert_eq!(journal_ids.len(), 2 * n);
    assert_eq!(journal_ids, sandbox_ids, "one to one");
    let show = fse(
        tmp.path(),
        &["journal", "show", "--journal", journal.to_str().unwrap()],
    );
    let show = json(&show);
    let docs = show["documents"].as_array().unwrap();
    assert_eq!(docs.len(), n);
    let trasf = docs.iter().find(|d| d["name"] == "READY/trasf").unwrap();
    assert!(trasf["pdf"].as_str().unwrap().ends_with("trasf.pdf"));
    assert!(trasf["source"].as_str().unwrap().ends_with("trasf.xml"));
    assert_eq!(trasf["state"], "published");

    // Publishing the same directory again sends nothing: the journal knows they are
    // published, and reports them skipped (not failed).
    let again = fse(
        tmp.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "batch",
            "publish",
            input.to_str().unwrap(),
            "--unique-ids",
            "--journal",
            journal.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(again.status.code(), Some(0));
    let summary = json(&again);
    assert_eq!(summary["counts"]["skipped"], n, "{summary:#}");
    assert_eq!(summary["failures"], Value::Array(vec![]));
    assert!(summary["skipped"][0][1]
        .as_str()
        .unwrap()
        .contains("already published by batch 1"));
    assert_eq!(
        sandbox::cart_log(&sb_dir).unwrap().len(),
        2 * n,
        "no new call"
    );
    sb.stop();
}

#[cfg(unix)]
#[test]
fn sigkill_then_resume_publishes_each_document_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let sb_dir = tmp.path().join("sb");
    let (sb, config) = sandbox_in(&sb_dir, Duration::from_millis(150));
    let input = tmp.path().join("in");
    let n = input_with(&["LAB", "LDO", "RSA", "CERT_VACC"], &input);
    let journal = tmp.path().join("j.sqlite");
    let jobs = 3;
    let jobs_arg = jobs.to_string();
    let base = [
        "--config",
        config.to_str().unwrap(),
        "batch",
        "publish",
        input.to_str().unwrap(),
        "--unique-ids",
        "--journal",
        journal.to_str().unwrap(),
        "--jobs",
        &jobs_arg,
        "--rate",
        "12",
    ];
    let mut kills = 0;
    // Journal calls so far (0 before the journal exists).
    let calls_so_far = || {
        if !journal.exists() {
            return 0;
        }
        fse_cart::journal::Journal::open(&journal)
            .and_then(|j| j.calls(None))
            .map_or(0, |c| c.len())
    };
    for extra_ms in [0u64, 200, 450] {
        // First a publish, then resumes, each killed a little after it made progress.
        let before = calls_so_far();
        let mut cmd = Command::new(common::fse_bin());
        cmd.current_dir(tmp.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if kills == 0 {
            cmd.args(base);
        } else {
            cmd.args([
                "--config",
                config.to_str().unwrap(),
                "batch",
                "resume",
                "--journal",
                journal.to_str().unwrap(),
                "--jobs",
                &jobs_arg,
                "--rate",
                "12",
            ]);
        }
        let mut child = cmd.spawn().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while calls_so_far() < before + 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(extra_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    // The kills interrupted the batch (at most 12 calls/s, killed well before the end).
    let published_before = sandbox::cart_log(&sb_dir)
        .unwrap()
        .iter()
        .filter(|e| e.operation == "create" && e.status / 100 == 2)
        .count();
    assert!(
        published_before < n,
        "{published_before} of {n} published before resuming"
    );
    let out = fse(
        tmp.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "batch",
            "resume",
            "--journal",
            journal.to_str().unwrap(),
            "--format",
            "json",
            "--output",
            "out",
        ],
    );
    let summary = json(&out);
    assert_eq!(summary["counts"]["published"], n, "{summary:#}");
    assert_eq!(out.status.code(), Some(0));

    let log = sandbox::cart_log(&sb_dir).unwrap();
    // Exactly once: one accepted create per document at the gateway.
    let mut creates: BTreeMap<String, usize> = BTreeMap::new();
    for e in &log {
        if e.operation == "create" && (200..300).contains(&e.status) {
            *creates
                .entry(e.identificativo_doc.clone().unwrap_or_default())
                .or_default() += 1;
        }
    }
    assert_eq!(creates.len(), n, "{creates:?}");
    assert!(creates.values().all(|&c| c == 1), "{creates:?}");
    // Every X-CART-id reached the journal except answers in flight at a kill.
    let journal_ids: BTreeSet<String> = export(tmp.path(), &journal)
        .iter()
        .filter_map(|r| r["x_cart_id"].as_str().map(str::to_owned))
        .collect();
    let sandbox_ids: BTreeSet<String> = log.iter().map(|e| e.x_cart_id.clone()).collect();
    assert!(journal_ids.is_subset(&sandbox_ids));
    let lost = sandbox_ids.difference(&journal_ids).count();
    assert!(
        lost <= kills * jobs,
        "{lost} X-CART-ids missing from the journal"
    );
    sb.stop();
}

/// A batch to run with `fse --config CONFIG batch …ARGS --journal JOURNAL --format json`:
/// its exit code and summary.
fn batch_json(cwd: &Path, config: &Path, journal: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--config", config.to_str().unwrap(), "batch"];
    all.extend_from_slice(args);
    all.extend(["--journal", journal.to_str().unwrap(), "--format", "json"]);
    let out = fse(cwd, &all);
    (out.status.code().unwrap(), json(&out))
}

/// Publishing a folder again after fixing a document: the documents already published are
/// skipped (not failures), the fixed one is published, exit 0. `fse batch retry-failed` sends
/// a batch's failed documents again after a fix, within that batch, keeping their signed PDFs
/// in the batch's output folder.
#[test]
fn publishing_again_skips_the_published_and_retry_failed_sends_the_fixed() {
    let tmp = tempfile::tempdir().unwrap();
    let sb_dir = tmp.path().join("sb");
    let (sb, config) = sandbox_in(&sb_dir, Duration::ZERO);
    let journal = tmp.path().join("j.sqlite");
    let accepted_creates = || {
        sandbox::cart_log(&sb_dir)
            .unwrap()
            .iter()
            .filter(|e| e.operation == "create" && e.status / 100 == 2)
            .count()
    };
    // A sidecar that contradicts the document type (a laboratory report is REF, not VAC).
    let spoil = |input: &Path| {
        let first = discover(input).unwrap().remove(0);
        let sidecar = first.cda.with_extension("meta.json");
        std::fs::write(&sidecar, br#"{"tipo_documento_liv_alto": "VAC"}"#).unwrap();
        (first.name, sidecar)
    };

    let input = tmp.path().join("in");
    let n = input_with(&["LAB"], &input);
    let (bad, sidecar) = spoil(&input);
    let publish = ["publish", input.to_str().unwrap(), "--unique-ids"];
    let (code, summary) = batch_json(tmp.path(), &config, &journal, &publish);
    assert_eq!(code, 1, "{summary:#}");
    assert_eq!(summary["counts"]["published"], n - 1, "{summary:#}");
    assert_eq!(summary["failures"][0][0], bad.as_str());
    let reason = summary["failures"][0][1].as_str().unwrap();
    assert!(
        reason.contains("accepts only REF") && reason.contains("nothing sent"),
        "{reason}"
    );
    assert_eq!(accepted_creates(), n - 1);

    // Fixed, published again: the others skipped, the fixed one published, exit 0.
    std::fs::remove_file(&sidecar).unwrap();
    let (code, summary) = batch_json(tmp.path(), &config, &journal, &publish);
    assert_eq!(code, 0, "{summary:#}");
    assert_eq!(summary["counts"]["published"], 1, "{summary:#}");
    assert_eq!(summary["counts"]["skipped"], n - 1);
    assert_eq!(summary["failures"], Value::Array(vec![]));
    let skipped = summary["skipped"].as_array().unwrap();
    assert!(skipped.iter().all(|s| s[0] != bad.as_str()
        && s[1]
            .as_str()
            .unwrap()
            .contains("already published by batch 1")));
    assert_eq!(accepted_creates(), n, "each document published once");

    // retry-failed: another folder, its own output folder, one document failed then fixed.
    let input2 = tmp.path().join("in2");
    let n2 = input_with(&["RAD"], &input2);
    let (bad2, sidecar2) = spoil(&input2);
    let out2 = tmp.path().join("out2");
    let publish2 = [
        "publish",
        input2.to_str().unwrap(),
        "--unique-ids",
        "--output",
        out2.to_str().unwrap(),
    ];
    let (code, summary) = batch_json(tmp.path(), &config, &journal, &publish2);
    assert_eq!((code, &summary["counts"]["failed"]), (1, &Value::from(1)));
    let batch = summary["batch_id"].as_i64().unwrap();
    let bad_pdf = out2.join(format!("{bad2}.pdf"));
    assert!(!bad_pdf.exists());
    std::fs::remove_file(&sidecar2).unwrap();
    // From another directory, without --output: the batch's folder is used.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let (code, summary) = batch_json(&elsewhere, &config, &journal, &["retry-failed"]);
    assert_eq!(code, 0, "{summary:#}");
    assert_eq!(summary["batch_id"].as_i64(), Some(batch));
    assert_eq!(summary["counts"]["published"], n2, "{summary:#}");
    assert!(fse_pades::extract_cda(&std::fs::read(&bad_pdf).unwrap()).is_ok());
    assert_eq!(accepted_creates(), n + n2);
    // Nothing failed is left: a second retry sends nothing.
    let calls = sandbox::cart_log(&sb_dir).unwrap().len();
    let (code, _) = batch_json(&elsewhere, &config, &journal, &["retry-failed"]);
    assert_eq!(code, 0);
    assert_eq!(sandbox::cart_log(&sb_dir).unwrap().len(), calls);
    sb.stop();
}
