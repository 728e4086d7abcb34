//! `fse --config FILE gateway …` against the in-process sandbox over mutual TLS: one JSON
//! outcome per call with X-CART-id and the gateway's identifiers; exit 0 accepted, 1 refused,
//! 2 no answer.

mod common;

use fse_cart::client::config::ClientConfig;
use fse_cart::sandbox::{self, Sandbox, ServeOptions};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn pdf(doc: &str) -> PathBuf {
    common::conformance_dir().join(format!(
        "accreditamento/test-container/tests/files/pdf/{doc}.pdf"
    ))
}

fn fse(config: &Path, args: &[&str]) -> (i32, Value) {
    let out = Command::new(common::fse_bin())
        .arg("--config")
        .arg(config)
        .arg("gateway")
        .args(args)
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    assert!(
        code == 2 || !value.is_null(),
        "stdout {stdout} stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code, value)
}

#[test]
fn validate_create_status_and_refusals_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sb");
    sandbox::init(&dir, "127.0.0.1:0".parse().unwrap()).unwrap();
    let sb = Sandbox::start(ServeOptions::new(&dir)).unwrap();
    let mut config = ClientConfig::load(&dir.join("fse.toml")).unwrap();
    config.gateway.base_url = sb.base_url().to_owned();
    config.gateway.audience = Some(sb.audience());
    let config_path = dir.join("live.toml");
    std::fs::write(&config_path, config.to_toml().unwrap()).unwrap();
    let lab = pdf("LAB");
    let lab = lab.to_str().unwrap();

    // The LOINC code for the JWT comes from the CDA inside the PDF (the sandbox checks it).
    let (code, v) = fse(&config_path, &["validate", lab, "--activity", "validation"]);
    assert_eq!((code, v["status"].as_u64()), (0, Some(201)), "{v}");
    for field in ["x_cart_id", "trace_id", "span_id", "workflow_instance_id"] {
        assert!(v[field].is_string(), "{field}: {v}");
    }
    let wii = v["workflow_instance_id"].as_str().unwrap().to_owned();

    let metadata = dir.join("create.json");
    let body = json!({
        "tipologiaStruttura": "Ospedale", "attiCliniciRegoleAccesso": ["P99"], "tipoDocumentoLivAlto": "REF",
        "assettoOrganizzativo": "AD_PSC001", "tipoAttivitaClinica": "CON", "identificativoSottomissione": "2.16.840.1.113883.2.9.2.90.4.3^1",
        "identificativoDoc": "2.16.840.1.113883.2.9.2.90.4.4^CLI1", "identificativoRep": "2.16.840.1.113883.2.9.2.90.4.5.1",
        "mode": "ATTACHMENT", "healthDataFormat": "CDA"
    });
    std::fs::write(&metadata, body.to_string()).unwrap();
    let (code, v) = fse(
        &config_path,
        &["create", lab, "--metadata", metadata.to_str().unwrap()],
    );
    assert_eq!((code, v["status"].as_u64()), (0, Some(202)), "{v}");
    assert_eq!(v["workflow_instance_id"].as_str(), Some(wii.as_str()));

    let (code, v) = fse(&config_path, &["status", &wii]);
    assert_eq!(code, 0, "{v}");
    let events: Vec<&str> = v["response"]["transactionData"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(events[..2], ["VALIDATION", "PUBLICATION"]);

    // Refused: LDO was never validated → exit 1 with the problem and its identifiers (its
    // metadata with the class of a discharge letter, which the gateway requires).
    let mut ldo_body = body.clone();
    ldo_body["tipoDocumentoLivAlto"] = json!("LDO");
    std::fs::write(&metadata, ldo_body.to_string()).unwrap();
    let ldo = pdf("LDO");
    let (code, v) = fse(
        &config_path,
        &[
            "create",
            ldo.to_str().unwrap(),
            "--metadata",
            metadata.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["problem"]["type"], "/msg/cda-match");
    assert!(v["x_cart_id"].is_string());

    // A bad request body file is a usage error, caught before any call (`publish` is the
    // issue's name for `create`).
    std::fs::write(&metadata, r#"{"tipologiaStruttura":"Clinica"}"#).unwrap();
    let (code, _) = fse(
        &config_path,
        &["publish", lab, "--metadata", metadata.to_str().unwrap()],
    );
    assert_eq!(code, 2);

    // No answer once the sandbox is gone.
    sb.stop();
    let (code, _) = fse(&config_path, &["status", &wii]);
    assert_eq!(code, 2);
}

#[test]
fn gateway_without_config_is_a_usage_error() {
    let out = Command::new(common::fse_bin())
        .args(["gateway", "delete", "x"])
        .env_remove("FSE_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
}

/// `fse config check` and `fse cart call` against the sandbox: identities shown without any
/// secret, reachability with the answer's X-CART-id, environment overrides, and a journaled
/// call to another CART service whose X-CART-id is the one the sandbox logged.
#[test]
fn config_check_and_cart_call() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sb");
    sandbox::init(&dir, "127.0.0.1:0".parse().unwrap()).unwrap();
    let sb = Sandbox::start(ServeOptions::new(&dir)).unwrap();
    let mut config = ClientConfig::load(&dir.join("fse.toml")).unwrap();
    config.gateway.base_url = sb.base_url().to_owned();
    config.gateway.audience = Some(sb.audience());
    // A PKCS#12 client identity whose password must never be printed.
    config.tls = fse_cart::client::config::IdentitySection {
        p12: Some("client.p12".into()),
        p12_password_env: Some("FSE_TEST_P12_PASSWORD".into()),
        ..Default::default()
    };
    config.cart.apis.insert(
        "piano-terapeutico".into(),
        format!("{}/pt/v1", sb.base_url()),
    );
    let config_path = dir.join("live.toml");
    std::fs::write(&config_path, config.to_toml().unwrap()).unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(common::fse_bin());
        cmd.arg("--config").arg(&config_path).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let password = fse_cart::sandbox::identities::P12_PASSWORD.to_owned();
    let env = [("FSE_TEST_P12_PASSWORD", password.as_str())];
    let out = run(&["config", "check", "--format", "json"], &env);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["reachable"], true, "{v}");
    assert!(v["x_cart_id"].is_string(), "{v}");
    assert!(v["tls"]["Ok"]["subject"]
        .as_str()
        .unwrap()
        .contains("fse-sandbox-client"));
    assert!(v["signer"]["Ok"]["days_left"].as_i64().unwrap() > 0);
    // (The sandbox's password is also a word of its certificates' names: look for it as a
    // value.)
    assert!(!stdout.contains(&format!("\"{password}\"")), "{stdout}");
    let logged: Vec<String> = sandbox::cart_log(&dir)
        .unwrap()
        .into_iter()
        .map(|e| e.x_cart_id)
        .collect();
    assert!(logged.contains(&v["x_cart_id"].as_str().unwrap().to_owned()));

    // An environment override wins over the file: an unreachable gateway is reported, exit 1.
    let mut env2 = env.to_vec();
    env2.push(("FSE_GATEWAY_BASE_URL", "https://127.0.0.1:9"));
    env2.push(("FSE_GATEWAY_CONNECT_TIMEOUT_SECONDS", "2"));
    let out = run(&["config", "check"], &env2);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("reachable:     NO"), "{text}");
    assert!(text.contains("FSE_GATEWAY_BASE_URL"), "{text}");

    // fse cart call: journaled with the X-CART-id the sandbox sent.
    let body = dir.join("body.json");
    std::fs::write(&body, br#"{"idPiano": "PT-1"}"#).unwrap();
    let out = run(
        &[
            "cart",
            "call",
            "piano-terapeutico",
            "--method",
            "post",
            "--path",
            "/piani",
            "--json",
            body.to_str().unwrap(),
        ],
        &env,
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(v["operation"], "cart-call");
    assert_eq!(v["method"], "POST");
    // The sandbox serves only the gateway: a 404 problem, exit 1, still journaled.
    assert_eq!(
        (out.status.code(), v["status"].as_u64()),
        (Some(1), Some(404))
    );
    let x_cart_id = v["x_cart_id"].as_str().unwrap().to_owned();
    let journal = fse_cart::journal::Journal::open(&dir.join("fse-journal.sqlite")).unwrap();
    let calls = journal.cart_calls().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].x_cart_id.as_deref(), Some(x_cart_id.as_str()));
    assert_eq!(calls[0].api, "piano-terapeutico");
    assert_eq!(calls[0].http_status, Some(404));
    assert!(sandbox::cart_log(&dir)
        .unwrap()
        .iter()
        .any(|e| e.x_cart_id == x_cart_id));
    sb.stop();
}

/// `fse gateway` puts the CDA's patient in the JWT (not the configuration's fixed
/// `person_id`), journals every call with the X-CART-id the sandbox sent, prints
/// `http_status`, derives `tipoDocumentoLivAlto` from the document type and refuses, before
/// sending, one that contradicts it or a document id that is not `root^extension`.
#[test]
fn single_calls_use_the_cda_patient_are_journaled_and_checked_before_sending() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sb");
    sandbox::init(&dir, "127.0.0.1:0".parse().unwrap()).unwrap();
    let mut options = ServeOptions::new(&dir);
    // As `fse sandbox serve`: person_id must be the CDA's patient.
    options.jwt_cda_coherence = true;
    let sb = Sandbox::start(options).unwrap();
    let mut config = ClientConfig::load(&dir.join("fse.toml")).unwrap();
    config.gateway.base_url = sb.base_url().to_owned();
    config.gateway.audience = Some(sb.audience());
    // Another patient than the documents': every real patient differs from a fixed one.
    config.profile.person_id = "RSSMRA80A01H501U^^^&2.16.840.1.113883.2.9.4.3.2&ISO".into();
    let config_path = dir.join("live.toml");
    std::fs::write(&config_path, config.to_toml().unwrap()).unwrap();
    let sent = || sandbox::cart_log(&dir).unwrap().len();

    let vacc = pdf("CERT_VACC");
    let vacc = vacc.to_str().unwrap();
    let (code, v) = fse(
        &config_path,
        &["validate", vacc, "--activity", "validation"],
    );
    assert_eq!((code, v["http_status"].as_u64()), (0, Some(201)), "{v}");
    assert_eq!(v["status"], v["http_status"]);
    let validation_cart_id = v["x_cart_id"].as_str().unwrap().to_owned();

    // A body without tipoDocumentoLivAlto: derived (Certificato vaccinale 82593-5 → VAC).
    let metadata = dir.join("create.json");
    let mut body = json!({
        "tipologiaStruttura": "Ospedale", "assettoOrganizzativo": "AD_PSC001",
        "tipoAttivitaClinica": "CON", "identificativoSottomissione": "2.16.840.1.113883.2.9.2.90.4.3^1",
        "identificativoDoc": "2.16.840.1.113883.2.9.2.90.4.4^VACC1",
        "identificativoRep": "2.16.840.1.113883.2.9.2.90.4.5.1",
        "mode": "ATTACHMENT", "healthDataFormat": "CDA"
    });
    // First the contradicting value fse used to send (CER), and an id without `^`: refused
    // here, exit 2, nothing sent.
    let before = sent();
    for (key, value) in [
        ("tipoDocumentoLivAlto", "CER"),
        ("identificativoDoc", "VACC1"),
    ] {
        let mut bad = body.clone();
        bad[key] = json!(value);
        std::fs::write(&metadata, bad.to_string()).unwrap();
        let out = Command::new(common::fse_bin())
            .arg("--config")
            .arg(&config_path)
            .args(["gateway", "create", vacc, "--metadata"])
            .arg(&metadata)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}: {stderr}");
        assert!(stderr.contains("nothing sent"), "{stderr}");
        if key == "tipoDocumentoLivAlto" {
            assert!(stderr.contains("accepts only VAC"), "{stderr}");
        }
    }
    assert_eq!(sent(), before, "nothing sent");
    std::fs::write(&metadata, body.to_string()).unwrap();
    let (code, v) = fse(
        &config_path,
        &["create", vacc, "--metadata", metadata.to_str().unwrap()],
    );
    assert_eq!((code, v["http_status"].as_u64()), (0, Some(202)), "{v}");
    let create_cart_id = v["x_cart_id"].as_str().unwrap().to_owned();
    body["tipoDocumentoLivAlto"] = json!("VAC");

    // Journaled: each call with the X-CART-id the sandbox logged, the printed row id.
    let journal = fse_cart::journal::Journal::open(&dir.join("fse-journal.sqlite")).unwrap();
    let calls = journal.gateway_calls().unwrap();
    let logged: Vec<String> = sandbox::cart_log(&dir)
        .unwrap()
        .into_iter()
        .map(|e| e.x_cart_id)
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        (calls[0].operation.as_str(), calls[0].x_cart_id.as_deref()),
        ("validation", Some(validation_cart_id.as_str()))
    );
    assert_eq!(
        (calls[1].operation.as_str(), calls[1].x_cart_id.as_deref()),
        ("create", Some(create_cart_id.as_str()))
    );
    assert_eq!(v["journal_call_id"].as_i64(), Some(calls[1].id));
    assert_eq!(
        calls[1].id_doc.as_deref(),
        Some("2.16.840.1.113883.2.9.2.90.4.4^VACC1")
    );
    assert_eq!(calls[1].http_status, Some(202));
    assert!(calls[1].trace_id.is_some() && calls[1].workflow_instance_id.is_some());
    assert!(logged.contains(&validation_cart_id) && logged.contains(&create_cart_id));
    // `fse journal gateway-calls` shows them.
    let out = Command::new(common::fse_bin())
        .arg("--config")
        .arg(&config_path)
        .args(["journal", "gateway-calls"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        listed[1]["x_cart_id"].as_str(),
        Some(create_cart_id.as_str())
    );

    // A path id without `^`: refused before sending.
    let before = sent();
    let out = Command::new(common::fse_bin())
        .arg("--config")
        .arg(&config_path)
        .args(["gateway", "delete", "VACC1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(sent(), before);
    sb.stop();
}
