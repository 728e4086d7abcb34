//! Done-when tests of issue 6 at scale and under faults, against the sandbox over real mTLS on
//! loopback:
//! - 1,000 fixture-built documents published, every X-CART-id the sandbox sent in the journal,
//!   one to one;
//! - 20 SIGKILLs at random points of one batch, then `fse batch resume`: every document
//!   published exactly once (by the sandbox's own log), no X-CART-id missing from the journal
//!   except answers in flight at a kill (at most one per worker per kill);
//! - sandbox faults (503s, dropped connections, latency): bounded retries, a clear state per
//!   document, no duplicate publication;
//! - local validation: a document the rules refuse ends `failed` and makes no gateway call.

mod common;

use fse_cart::journal::{DocState, Journal};
use fse_cart::sandbox::{self, Sandbox, ServeOptions};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fse, json};

/// A sandbox in `dir` with `faults`, and a client configuration for it.
fn sandbox_in(dir: &Path, faults: sandbox::Faults) -> (Sandbox, PathBuf) {
    sandbox::init(dir, "127.0.0.1:0".parse().unwrap()).expect("init");
    let mut options = ServeOptions::new(dir);
    options.faults = faults;
    let sb = Sandbox::start(options).expect("sandbox starts");
    let config = sandbox::client_config(sb.addr(), "", dir);
    let path = dir.join("client.toml");
    std::fs::write(&path, config.to_toml().unwrap()).unwrap();
    (sb, path)
}

/// `n` builder inputs made from the LAB fixtures, each with its own ClinicalDocument/id.
fn generated_input(into: &Path, n: usize) -> Vec<String> {
    let from = common::workspace_root().join("fixtures/build/LAB");
    let mut models: Vec<Value> = std::fs::read_dir(&from)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    models.sort_by_key(|m| m["id"]["extension"].as_str().unwrap_or_default().to_owned());
    assert!(!models.is_empty());
    std::fs::create_dir_all(into).unwrap();
    let mut names = Vec::new();
    for i in 0..n {
        let mut m = models[i % models.len()].clone();
        let ext = format!("GEN.{i:05}");
        m["id"]["extension"] = Value::from(ext.clone());
        if m.get("set_id").is_some_and(|s| s.is_object()) {
            m["set_id"]["extension"] = Value::from(ext);
        }
        let name = format!("doc{i:05}");
        std::fs::write(
            into.join(format!("{name}.json")),
            serde_json::to_vec(&m).unwrap(),
        )
        .unwrap();
        names.push(name);
    }
    names
}

fn journal_calls(journal: &Path) -> Vec<fse_cart::journal::CallRecord> {
    Journal::open(journal).unwrap().calls(None).unwrap()
}

/// Accepted creates at the sandbox, by identificativoDoc.
fn accepted_creates(sb_dir: &Path) -> BTreeMap<String, usize> {
    let mut creates = BTreeMap::new();
    for e in sandbox::cart_log(sb_dir).unwrap() {
        if e.operation == "create" && (200..300).contains(&e.status) {
            *creates
                .entry(e.identificativo_doc.clone().unwrap_or_default())
                .or_default() += 1;
        }
    }
    creates
}

#[test]
fn a_thousand_documents_publish_with_every_x_cart_id_journaled() {
    let tmp = tempfile::tempdir().unwrap();
    let sb_dir = tmp.path().join("sb");
    let (sb, config) = sandbox_in(&sb_dir, sandbox::Faults::default());
    let input = tmp.path().join("in");
    let n = generated_input(&input, 1000).len();
    let journal = tmp.path().join("j.sqlite");
    let started = Instant::now();
    let out = fse(
        tmp.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "batch",
            "publish",
            input.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
            "--jobs",
            "4",
            "--rate",
            "0",
            "--format",
            "json",
        ],
    );
    let summary = json(&out);
    assert_eq!(summary["counts"]["published"], n, "{summary:#}");
    assert_eq!(out.status.code(), Some(0));
    eprintln!("{n} documents published in {:?}", started.elapsed());
    let calls = journal_calls(&journal);
    assert_eq!(calls.len(), 2 * n, "a validation and a create each");
    let mut journal_ids: Vec<String> = calls
        .iter()
        .map(|c| c.x_cart_id.clone().expect("every call answered"))
        .collect();
    let mut sandbox_ids: Vec<String> = sandbox::cart_log(&sb_dir)
        .unwrap()
        .into_iter()
        .map(|e| e.x_cart_id)
        .collect();
    journal_ids.sort();
    sandbox_ids.sort();
    assert_eq!(
        journal_ids, sandbox_ids,
        "journal and sandbox agree one to one"
    );
    let creates = accepted_creates(&sb_dir);
    assert_eq!(creates.len(), n);
    assert!(creates.values().all(|&c| c == 1));
    sb.stop();
}

/// A tiny deterministic generator (no `rand` dependency for one test).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[cfg(unix)]
#[test]
fn twenty_sigkills_then_resume_publish_each_document_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let sb_dir = tmp.path().join("sb");
    let faults = sandbox::Faults {
        latency: Duration::from_millis(60),
        ..sandbox::Faults::default()
    };
    let (sb, config) = sandbox_in(&sb_dir, faults);
    let input = tmp.path().join("in");
    let n = generated_input(&input, 80).len();
    let journal = tmp.path().join("j.sqlite");
    let jobs = 3usize;
    let jobs_arg = jobs.to_string();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill delays seed {seed}");
    let mut rng = Lcg(seed);
    let mut kills = 0;
    for round in 0..20 {
        let mut cmd = Command::new(common::fse_bin());
        cmd.current_dir(tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .args(["--config", config.to_str().unwrap(), "batch"]);
        if round == 0 {
            cmd.args(["publish", input.to_str().unwrap()]);
        } else {
            cmd.arg("resume");
        }
        cmd.args([
            "--journal",
            journal.to_str().unwrap(),
            "--jobs",
            &jobs_arg,
            "--rate",
            "25",
        ]);
        let mut child = cmd.spawn().unwrap();
        // The first run must get as far as creating its batch in the journal.
        if round == 0 {
            let deadline = Instant::now() + Duration::from_secs(30);
            while journal_calls_count(&journal) == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        std::thread::sleep(Duration::from_millis(50 + rng.next(400)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(
        kills >= 10,
        "only {kills} runs were still going when killed"
    );
    let published_before: usize = accepted_creates(&sb_dir).values().sum();
    let out = fse(
        tmp.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "batch",
            "resume",
            "--journal",
            journal.to_str().unwrap(),
            "--rate",
            "0",
            "--format",
            "json",
        ],
    );
    let summary = json(&out);
    assert_eq!(summary["counts"]["published"], n, "{summary:#}");
    assert_eq!(out.status.code(), Some(0));
    eprintln!("{kills} kills; {published_before} of {n} published before the last resume");

    // Exactly once, by the sandbox's own log.
    let creates = accepted_creates(&sb_dir);
    assert_eq!(creates.len(), n, "{creates:?}");
    assert!(creates.values().all(|&c| c == 1), "{creates:?}");
    // Every X-CART-id in the journal except answers in flight at a kill.
    let journal_ids: BTreeSet<String> = journal_calls(&journal)
        .into_iter()
        .filter_map(|c| c.x_cart_id)
        .collect();
    let sandbox_ids: BTreeSet<String> = sandbox::cart_log(&sb_dir)
        .unwrap()
        .into_iter()
        .map(|e| e.x_cart_id)
        .collect();
    assert!(journal_ids.is_subset(&sandbox_ids));
    let lost = sandbox_ids.difference(&journal_ids).count();
    assert!(
        lost <= kills * jobs,
        "{lost} X-CART-ids missing from the journal after {kills} kills"
    );
    // Each intent without outcome was a kill's call in flight: at most one per worker per kill.
    let open = journal_calls(&journal)
        .iter()
        .filter(|c| c.finished_at.is_none())
        .count();
    assert!(open <= kills * jobs, "{open} open intents");
    sb.stop();
}

fn journal_calls_count(journal: &Path) -> usize {
    if !journal.exists() {
        return 0;
    }
    Journal::open(journal)
        .and_then(|j| j.calls(None))
        .map_or(0, |c| c.len())
}

#[test]
fn sandbox_faults_end_in_clear_states_without_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let sb_dir = tmp.path().join("sb");
    let faults = sandbox::Faults {
        latency: Duration::from_millis(20),
        unavailable_share: 0.25,
        drop_share: 0.1,
    };
    let (sb, config) = sandbox_in(&sb_dir, faults);
    let input = tmp.path().join("in");
    let n = generated_input(&input, 40).len();
    let journal = tmp.path().join("j.sqlite");
    let args = |cmd: &'static str| {
        let mut v = vec![
            "--config".to_owned(),
            config.to_str().unwrap().to_owned(),
            "batch".into(),
            cmd.into(),
        ];
        if cmd == "publish" {
            v.push(input.to_str().unwrap().to_owned());
        }
        v.extend(
            [
                "--journal",
                journal.to_str().unwrap(),
                "--rate",
                "0",
                "--format",
                "json",
            ]
            .map(str::to_owned),
        );
        v
    };
    let run = |cmd: &'static str| {
        let a = args(cmd);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        fse(tmp.path(), &a)
    };
    let first = run("publish");
    let summary = json(&first);
    // Every document has a clear state: published, or resumable with a reason.
    let j = Journal::open(&journal).unwrap();
    for d in j.documents(1).unwrap() {
        assert!(
            d.state == DocState::Published || d.reason.is_some(),
            "{} in {} without a reason",
            d.name,
            d.state
        );
        assert_ne!(d.state, DocState::Failed, "{}: {:?}", d.name, d.reason);
    }
    // Bounded retries: no document made more than 3 validation attempts, 3 creates.
    for (op, max) in [("validation", 3), ("create", 3)] {
        let mut per_doc: BTreeMap<String, usize> = BTreeMap::new();
        for c in j.calls(None).unwrap() {
            if c.operation == op {
                *per_doc.entry(c.document.clone()).or_default() += 1;
            }
        }
        assert!(
            per_doc.values().all(|&k| k <= max),
            "{op} attempts: {per_doc:?}"
        );
    }
    // Resumes finish the batch.
    let mut last = summary;
    for _ in 0..10 {
        if last["counts"]["published"] == n {
            break;
        }
        last = json(&run("resume"));
    }
    assert_eq!(last["counts"]["published"], n, "{last:#}");
    let creates = accepted_creates(&sb_dir);
    assert_eq!(creates.len(), n);
    assert!(creates.values().all(|&c| c == 1), "{creates:?}");
    // Answers that arrived are journaled: every journal X-CART-id is the sandbox's.
    let journal_ids: BTreeSet<String> = j
        .calls(None)
        .unwrap()
        .into_iter()
        .filter_map(|c| c.x_cart_id)
        .collect();
    let sandbox_ids: BTreeSet<String> = sandbox::cart_log(&sb_dir)
        .unwrap()
        .into_iter()
        .map(|e| e.x_cart_id)
        .collect();
    assert!(journal_ids.is_subset(&sandbox_ids));
    sb.stop();
}

#[test]
fn a_document_refused_by_the_local_rules_is_never_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let sb_dir = tmp.path().join("sb");
    let (sb, config) = sandbox_in(&sb_dir, sandbox::Faults::default());
    let input = tmp.path().join("in");
    generated_input(&input, 1);
    // A CDA without typeId: SYNTAX_ERROR for the gateway's rules.
    let good = std::fs::read_to_string(
        common::workspace_root().join("fixtures/build/LAB/accreditamento-ct1.xml"),
    )
    .unwrap();
    let start = good.find("<typeId").unwrap();
    let end = start + good[start..].find("/>").unwrap() + 2;
    let bad = format!("{}{}", &good[..start], &good[end..]);
    std::fs::write(input.join("broken.xml"), bad).unwrap();
    // Sidecar metadata is read (and is not a document itself).
    std::fs::write(
        input.join("broken.meta.json"),
        br#"{"tipo_attivita_clinica": "CON"}"#,
    )
    .unwrap();
    let journal = tmp.path().join("j.sqlite");
    let rules = common::conformance_dir().join("cda");
    let out = fse(
        tmp.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "batch",
            "publish",
            input.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
            "--rules",
            rules.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let summary = json(&out);
    assert_eq!(summary["counts"]["failed"], 1, "{summary:#}");
    let failures = summary["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{summary:#}");
    assert_eq!(failures[0][0], "broken");
    let reason = failures[0][1].as_str().unwrap();
    assert!(
        reason.starts_with("local validation: SYNTAX_ERROR (400)"),
        "{reason}"
    );
    let j = Journal::open(&journal).unwrap();
    assert!(
        j.calls(None)
            .unwrap()
            .iter()
            .all(|c| c.document != "broken"),
        "no gateway call for the refused document"
    );
    sb.stop();
}

/// The accreditation kit's `CRASH_TIMEOUT_` document: every create answered 504 after the
/// request was processed. Each 504 is settled by a status query (the gateway may have
/// published before timing out); only a 504 confirmed unpublished is resent, at most 3 creates;
/// the document then stays resumable with the reason, never published twice.
#[test]
fn gateway_timeouts_are_settled_by_status_and_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let sb_dir = tmp.path().join("sb");
    sandbox::init(&sb_dir, "127.0.0.1:0".parse().unwrap()).expect("init");
    let mut options = ServeOptions::new(&sb_dir);
    options.crash_timeout_delay = Duration::from_millis(50);
    let sb = Sandbox::start(options).expect("sandbox starts");
    let config = sandbox::client_config(sb.addr(), "", &sb_dir);
    let config_path = sb_dir.join("client.toml");
    std::fs::write(&config_path, config.to_toml().unwrap()).unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let cda = std::fs::read_to_string(
        common::workspace_root().join("fixtures/build/LAB/accreditamento-ct1.xml"),
    )
    .unwrap();
    // identificativoDoc = ClinicalDocument/id root^extension: make it start CRASH_TIMEOUT_.
    let start = cda.find("<id ").unwrap();
    let end = start + cda[start..].find("/>").unwrap() + 2;
    let cda = format!(
        "{}<id root=\"CRASH_TIMEOUT_1\" extension=\"T1\"/>{}",
        &cda[..start],
        &cda[end..]
    );
    std::fs::write(input.join("timeout.xml"), cda).unwrap();
    let journal = tmp.path().join("j.sqlite");
    let out = fse(
        tmp.path(),
        &[
            "--config",
            config_path.to_str().unwrap(),
            "batch",
            "publish",
            input.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let summary = json(&out);
    assert_eq!(out.status.code(), Some(1), "{summary:#}");
    let reason = summary["failures"][0][1].as_str().unwrap();
    assert!(
        reason.contains("504") && reason.contains("resume resends it"),
        "{reason}"
    );
    let j = Journal::open(&journal).unwrap();
    let doc = &j.documents(1).unwrap()[0];
    assert_eq!(doc.state, DocState::Signed, "resumable, not failed");
    let ops: Vec<String> = j
        .calls(None)
        .unwrap()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert_eq!(
        ops,
        [
            "validation",
            "create",
            "status",
            "create",
            "status",
            "create",
            "status"
        ],
        "three creates, each settled by a status query"
    );
    assert!(accepted_creates(&sb_dir).is_empty());
    sb.stop();
}
