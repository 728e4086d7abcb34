//! End-to-end tests of `fse sandbox` over real mutual TLS on loopback: our client (and a raw
//! HTTP client for malformed requests) against the in-process sandbox server, plus the
//! `fse sandbox init|log` commands.
//!
//! The Ministry's test-container samples (PDFs, request bodies, JWT payloads) are read from
//! `../shared/conformance/accreditamento/test-container/` and re-signed with the sandbox
//! identities.

mod common;

use fse_cart::api::{
    correlation, Activity, GatewayResponse, InjectionMode, Problem, ProblemType,
    PublicationRequest, TipoDocumentoLivAlto, ValidationRequest,
};
use fse_cart::client::config::ClientConfig;
use fse_cart::client::{tls_config, ClientError, Document, GatewayClient, LostCreate};
use fse_cart::jwt::{unix_now, Signer};
use fse_cart::sandbox::identities::{load_authority, Authority, LeafKind};
use fse_cart::sandbox::{self, Sandbox, ServeOptions};
use fse_cart::tls::Identity;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn test_container() -> PathBuf {
    common::conformance_dir().join("accreditamento/test-container/tests")
}

fn sample_pdf(doc: &str) -> Vec<u8> {
    let path = test_container().join(format!("files/pdf/{doc}.pdf"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sample_payloads() -> Value {
    let path = test_container().join("jwt-payload-samples.decoded.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// The JSON `requestBody` part of the request named `name` (`# @name …`) of a
/// test-container `.http` file.
fn http_request_body(path: &Path, name: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let section = text
        .find(&format!("# @name {name}"))
        .unwrap_or_else(|| panic!("{}: no request {name}", path.display()));
    let start = section
        + text[section..]
            .find("name=\"requestBody\"")
            .expect("requestBody part");
    let rest = &text[start..];
    let open = rest.find('{').unwrap();
    let close = rest.find("\n}").unwrap() + 2;
    serde_json::from_str(&rest[open..close]).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    sandbox: Sandbox,
    config: ClientConfig,
}

fn start_in(dir: &Path, options: impl FnOnce(&mut ServeOptions)) -> (Sandbox, ClientConfig) {
    let mut opts = ServeOptions::new(dir);
    opts.crash_timeout_delay = Duration::from_millis(200);
    // As `fse sandbox serve`: the gateway's JWT↔CDA coherence check.
    opts.jwt_cda_coherence = true;
    options(&mut opts);
    let sandbox = Sandbox::start(opts).expect("sandbox starts");
    let mut config = ClientConfig::load(&dir.join(sandbox::CONFIG_FILE)).expect("fse.toml");
    config.gateway.base_url = sandbox.base_url().to_owned();
    config.gateway.audience = Some(sandbox.audience());
    config.gateway.max_attempts = 1;
    (sandbox, config)
}

fn env_with(options: impl FnOnce(&mut ServeOptions)) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sb");
    sandbox::init(&dir, "127.0.0.1:0".parse().unwrap()).expect("init");
    let (sandbox, config) = start_in(&dir, options);
    Env {
        _tmp: tmp,
        dir,
        sandbox,
        config,
    }
}

fn env() -> Env {
    env_with(|_| {})
}

impl Env {
    fn client(&self) -> GatewayClient {
        GatewayClient::from_config(&self.config).expect("client")
    }

    fn signer(&self) -> Signer {
        Signer::new(
            &Identity::from_pem_files(&self.dir.join("signer.pem"), &self.dir.join("signer.key"))
                .unwrap(),
        )
        .unwrap()
    }

    /// A raw reqwest client with the sandbox client certificate (or `identity`).
    fn raw(&self, identity: Option<Identity>) -> reqwest::blocking::Client {
        let id = identity.unwrap_or_else(|| {
            Identity::from_pem_files(&self.dir.join("client.pem"), &self.dir.join("client.key"))
                .unwrap()
        });
        Env::raw_with(&self.dir, id)
    }

    fn raw_with(dir: &Path, id: Identity) -> reqwest::blocking::Client {
        let ca = fse_cart::tls::load_certs(&dir.join("ca.pem")).unwrap();
        reqwest::blocking::Client::builder()
            .use_preconfigured_tls(tls_config(&ca, id).unwrap())
            .build()
            .unwrap()
    }

    /// Re-signs a sample payload with the sandbox signer: `iss`, `aud`, `iat`, `exp`, `jti`
    /// replaced, every other claim kept.
    fn resign(&self, payload: &Value, overrides: Value) -> (String, String) {
        let signer = self.signer();
        let now = unix_now();
        let mut claims = payload.clone();
        claims["iss"] = json!(format!("integrity:{}", signer.common_name()));
        claims["aud"] = json!(self.sandbox.audience());
        claims["iat"] = json!(now);
        claims["exp"] = json!(now + 300);
        claims["jti"] = json!(uuid_like());
        for (k, v) in overrides.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let auth = json!({
            "iss": format!("auth:{}", signer.common_name()), "sub": claims["sub"], "aud": claims["aud"],
            "iat": claims["iat"], "exp": claims["exp"], "jti": uuid_like(),
        });
        (signer.sign(&auth).unwrap(), signer.sign(&claims).unwrap())
    }
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

struct RawReply {
    status: u16,
    x_cart_id: Option<String>,
    body: Value,
}

fn send_multipart(
    client: &reqwest::blocking::Client,
    url: &str,
    tokens: Option<(&str, &str)>,
    request_body: &str,
    file: Option<Vec<u8>>,
) -> Result<RawReply, reqwest::Error> {
    let mut form = reqwest::blocking::multipart::Form::new().part(
        "requestBody",
        reqwest::blocking::multipart::Part::text(request_body.to_owned()),
    );
    if let Some(file) = file {
        form = form.part(
            "file",
            reqwest::blocking::multipart::Part::bytes(file).file_name("file.pdf"),
        );
    }
    let mut req = client.post(url).multipart(form);
    if let Some((auth, sig)) = tokens {
        req = req.bearer_auth(auth).header("FSE-JWT-Signature", sig);
    }
    let resp = req.send()?;
    let status = resp.status().as_u16();
    let x_cart_id = resp
        .headers()
        .get("X-CART-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.json().unwrap_or(Value::Null);
    Ok(RawReply {
        status,
        x_cart_id,
        body,
    })
}

fn lab() -> (Vec<u8>, &'static str) {
    (sample_pdf("LAB"), "11502-2")
}

fn validation(activity: Activity) -> ValidationRequest {
    ValidationRequest {
        health_data_format: Some(fse_cart::api::HealthDataFormat::Cda),
        mode: Some(InjectionMode::Attachment),
        activity,
    }
}

fn publication(id_doc: &str) -> PublicationRequest {
    let mut body: PublicationRequest = serde_json::from_value(
        http_request_body(
            &test_container().join("t2-create/t2.1-create-lab.http"),
            "creation",
        )
        .as_object()
        .map(|o| {
            let mut o = o.clone();
            o.insert("identificativoDoc".into(), json!(id_doc));
            Value::Object(o)
        })
        .unwrap(),
    )
    .unwrap();
    body.identificativo_doc = id_doc.to_owned();
    // The container's body (2023) says WOR; since January 2026 the gateway accepts only the
    // class its table correlates with the document type (LAB, 11502-2: REF).
    body.tipo_documento_liv_alto = TipoDocumentoLivAlto::Ref;
    body
}

fn problem<T: std::fmt::Debug>(reply: &fse_cart::client::Reply<T>) -> &Problem {
    reply
        .body
        .as_ref()
        .err()
        .unwrap_or_else(|| panic!("expected a problem, got {reply:?}"))
}

#[test]
fn verifica_and_validation_of_the_test_container_lab_pdf() {
    let env = env();
    let client = env.client();
    let (pdf, loinc) = lab();
    let doc = Document { pdf: &pdf, loinc };
    let verifica = client
        .validate(doc, &validation(Activity::Verifica))
        .unwrap();
    assert_eq!(verifica.status, 200, "{verifica:?}");
    assert!(verifica.x_cart_id.is_some());
    assert!(verifica.trace_id.is_some() && verifica.span_id.is_some());
    let wii = verifica.workflow_instance_id.clone().unwrap();
    assert!(
        wii.starts_with("2.16.840.1.113883.2.9.2.090.4.4.")
            && wii.ends_with("^^^^urn:ihe:iti:xdw:2013:workflowInstanceId"),
        "{wii}"
    );
    let validation = client
        .validate(doc, &validation(Activity::Validation))
        .unwrap();
    assert_eq!(validation.status, 201);
    assert_ne!(
        validation.x_cart_id, verifica.x_cart_id,
        "X-CART-id is fresh per response"
    );
    // The status of the validation's workflow instance lists its VALIDATION event.
    let status = client
        .status(validation.workflow_instance_id.as_deref().unwrap())
        .unwrap();
    assert_eq!(status.status, 200);
    let events = status.body.unwrap().transaction_data;
    assert_eq!(events[0].event_type.as_deref(), Some("VALIDATION"));
    assert_eq!(events[0].trace_id, validation.trace_id);
    let by_trace = client
        .status_by_trace(validation.trace_id.as_deref().unwrap())
        .unwrap();
    assert_eq!(by_trace.status, 200);
}

#[test]
fn official_validation_samples_resigned_get_the_documented_status() {
    let env = env();
    let raw = env.raw(None);
    let payloads = sample_payloads();
    let url = format!("{}/v1/documents/validation", env.sandbox.base_url());
    let mut seen = 0;
    for entry in std::fs::read_dir(test_container().join("t1-validate")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let var = text
            .split("FSE-JWT-Signature: FAKE_HEADER.{{$dotenv ")
            .nth(1)
            .and_then(|s| s.split("}}").next())
            .unwrap();
        let pdf_name = text
            .split("< ./../files/pdf/")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap();
        let body = http_request_body(&path, "validation");
        let (auth, sig) = env.resign(&payloads[var], json!({}));
        let pdf = std::fs::read(test_container().join("files/pdf").join(pdf_name)).unwrap();
        let reply = send_multipart(
            &raw,
            &url,
            Some((&auth, &sig)),
            &body.to_string(),
            Some(pdf),
        )
        .unwrap();
        let expected = if body["activity"] == "VALIDATION" {
            201
        } else {
            200
        };
        assert_eq!(reply.status, expected, "{}: {}", path.display(), reply.body);
        assert!(reply.x_cart_id.is_some());
        seen += 1;
    }
    assert_eq!(seen, 8);
}

#[test]
fn official_create_samples_resigned() {
    let env = env();
    let raw = env.raw(None);
    let payloads = sample_payloads();
    let base = env.sandbox.base_url().to_owned();
    let xon = "OSPEDALE DI PROVA^^^^^&2.16.840.1.113883.2.9.4.1.2&ISO^^^^120999";
    let mut seen = 0;
    for entry in std::fs::read_dir(test_container().join("t2-create")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let create = &text[text.find("# @name creation").unwrap()..];
        let doc = create
            .split("FSE-JWT-Signature: FAKE_HEADER.{{$dotenv JWT_")
            .nth(1)
            .and_then(|s| s.split("_WITH_HASH_PAYLOAD}}").next())
            .unwrap()
            .to_owned();
        let pdf_name = create
            .split("< ./../files/pdf/")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap();
        assert_eq!(pdf_name, format!("{doc}.pdf"));
        let pdf = sample_pdf(&doc);
        let mut body = http_request_body(&path, "creation");
        seen += 1;
        body["identificativoDoc"] = json!(format!(
            "2.16.840.1.113883.2.9.2.120.4.4^SANDBOX_{doc}_{}",
            uuid_like()
        ));
        let with_hash = &payloads[format!("JWT_{doc}_WITH_HASH_PAYLOAD")];
        // The container's tipoDocumentoLivAlto (2023) predates the gateway's correlation check:
        // send the one its table gives for the document type.
        let loinc = with_hash["resource_hl7_type"]
            .as_str()
            .and_then(fse_cart::jwt::parse_resource_hl7_type)
            .unwrap();
        let class = correlation::high_level_type(loinc).unwrap();
        body["tipoDocumentoLivAlto"] = json!(class.as_str());
        // As published (2023), the samples' locality is not XON: spec v2.22 refuses it on create.
        let (auth, sig) = env.resign(with_hash, json!({}));
        let reply = send_multipart(
            &raw,
            &format!("{base}/v1/documents"),
            Some((&auth, &sig)),
            &body.to_string(),
            Some(pdf.clone()),
        )
        .unwrap();
        assert_eq!(reply.status, 403, "{doc}: {}", reply.body);
        assert_eq!(reply.body["type"], "/msg/jwt-validation");
        // With an XON locality but no previous VALIDATION: /msg/cda-match.
        let (auth, sig) = env.resign(with_hash, json!({ "locality": xon }));
        let reply = send_multipart(
            &raw,
            &format!("{base}/v1/documents"),
            Some((&auth, &sig)),
            &body.to_string(),
            Some(pdf.clone()),
        )
        .unwrap();
        assert_eq!(
            (reply.status, reply.body["type"].as_str()),
            (400, Some("/msg/cda-match")),
            "{doc}: {}",
            reply.body
        );
        // VALIDATION (sample payload), then the create is accepted (202).
        let (auth, sig) = env.resign(&payloads[format!("JWT_{doc}_PAYLOAD")], json!({}));
        let v = json!({"healthDataFormat": "CDA", "mode": "ATTACHMENT", "activity": "VALIDATION"});
        let reply = send_multipart(
            &raw,
            &format!("{base}/v1/documents/validation"),
            Some((&auth, &sig)),
            &v.to_string(),
            Some(pdf.clone()),
        )
        .unwrap();
        assert_eq!(reply.status, 201, "{doc}: {}", reply.body);
        let (auth, sig) = env.resign(with_hash, json!({ "locality": xon }));
        let reply = send_multipart(
            &raw,
            &format!("{base}/v1/documents"),
            Some((&auth, &sig)),
            &body.to_string(),
            Some(pdf.clone()),
        )
        .unwrap();
        assert_eq!(reply.status, 202, "{doc}: {}", reply.body);
        assert!(reply.body["workflowInstanceId"]
            .as_str()
            .unwrap()
            .contains("^^^^urn:ihe:iti:xdw:2013:workflowInstanceId"));
        // The hash claim must be the PDF's SHA-256.
        let (auth, sig) = env.resign(
            with_hash,
            json!({ "locality": xon, "attachment_hash": "00".repeat(32) }),
        );
        let reply = send_multipart(
            &raw,
            &format!("{base}/v1/documents"),
            Some((&auth, &sig)),
            &body.to_string(),
            Some(pdf),
        )
        .unwrap();
        assert_eq!(
            (reply.status, reply.body["type"].as_str()),
            (400, Some("/msg/document-hash")),
            "{doc}"
        );
    }
    assert_eq!(seen, 8);
}

#[test]
fn publication_flow_replace_delete_and_status() {
    let env = env();
    let client = env.client();
    let (pdf, loinc) = lab();
    let doc = Document { pdf: &pdf, loinc };
    let id = format!("2.16.840.1.113883.2.9.2.90.4.4^FLOW{}", uuid_like());
    let refused = client.create(doc, &publication(&id)).unwrap();
    assert_eq!(problem(&refused).problem_type, ProblemType::CdaMatch);
    assert!(refused.x_cart_id.is_some() && refused.trace_id.is_some());
    let validated = client
        .validate(doc, &validation(Activity::Validation))
        .unwrap();
    assert_eq!(validated.status, 201);
    let created = client.create(doc, &publication(&id)).unwrap();
    assert_eq!(created.status, 202, "{created:?}");
    assert_eq!(
        created.workflow_instance_id, validated.workflow_instance_id,
        "publication joins the validation's workflow"
    );
    assert_eq!(
        client
            .resolve_lost_create(validated.workflow_instance_id.as_deref().unwrap(), &id)
            .unwrap(),
        LostCreate::Published
    );
    assert_eq!(
        client
            .resolve_lost_create(validated.workflow_instance_id.as_deref().unwrap(), "other")
            .unwrap(),
        LostCreate::NotPublished
    );
    let again = client.create(doc, &publication(&id)).unwrap();
    assert_eq!(again.status, 409);
    // Replace: unknown id → 404; known id → 202.
    let new_id = format!("{id}.2");
    let mut replace: fse_cart::api::ReplaceRequest = serde_json::from_value(
        serde_json::to_value(publication(&new_id))
            .unwrap()
            .as_object()
            .map(|o| {
                let mut o = o.clone();
                o.remove("priorita");
                Value::Object(o)
            })
            .unwrap(),
    )
    .unwrap();
    replace.identificativo_doc = new_id.clone();
    let missing = client
        .replace("2.16.840.1.113883.2.9.2.90.4.4^NOPE", doc, &replace)
        .unwrap();
    assert_eq!(
        (missing.status, &problem(&missing).problem_type),
        (404, &ProblemType::RecordNotFound)
    );
    let replaced = client.replace(&id, doc, &replace).unwrap();
    assert_eq!(replaced.status, 202, "{replaced:?}");
    let deleted_old = client.delete(&id).unwrap();
    assert_eq!(
        deleted_old.status, 404,
        "the replaced version is no longer current"
    );
    let deleted = client.delete(&new_id).unwrap();
    assert_eq!(deleted.status, 202);
    let events = client
        .status(deleted.workflow_instance_id.as_deref().unwrap())
        .unwrap()
        .body
        .unwrap()
        .transaction_data;
    assert_eq!(events[0].event_type.as_deref(), Some("DELETE"));
}

#[test]
fn magic_prefixes_of_the_accreditation_kit() {
    let env = env();
    let client = env.client();
    let (pdf, loinc) = lab();
    let doc = Document { pdf: &pdf, loinc };
    let skip = client
        .create(
            doc,
            &publication(&format!(
                "SKIP_VALIDATION_2.16.840.1.113883.2.9.2.90.4.4^{}",
                uuid_like()
            )),
        )
        .unwrap();
    assert_eq!(skip.status, 202, "{skip:?}");
    let timeout = client
        .create(
            doc,
            &publication(&format!(
                "CRASH_TIMEOUT_2.16.840.1.113883.2.9.2.90.4.4^{}",
                uuid_like()
            )),
        )
        .unwrap();
    assert_eq!(
        (timeout.status, &problem(&timeout).problem_type),
        (504, &ProblemType::GenericTimeout)
    );
    assert!(client
        .validate(doc, &validation(Activity::Validation))
        .unwrap()
        .is_success());
    let ini = client
        .create(
            doc,
            &publication(&format!(
                "CRASH_INI_2.16.840.1.113883.2.9.2.90.4.4^{}",
                uuid_like()
            )),
        )
        .unwrap();
    assert_eq!(ini.status, 202);
    let events = client
        .status_by_trace(ini.trace_id.as_deref().unwrap())
        .unwrap()
        .body
        .unwrap()
        .transaction_data;
    let ini_event = events
        .iter()
        .find(|e| e.event_type.as_deref() == Some("SEND_TO_INI"))
        .unwrap();
    assert_eq!(ini_event.event_status.as_deref(), Some("BLOCKING_ERROR"));
}

#[test]
fn request_without_client_certificate_is_refused() {
    let env = env();
    let ca = fse_cart::tls::load_certs(&env.dir.join("ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca[0].clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let raw = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let err = raw
        .get(format!("{}/v1/status", env.sandbox.base_url()))
        .send()
        .expect_err("no client cert, no answer");
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    // Same server, with the client certificate: answered.
    assert_eq!(
        env.raw(None)
            .get(format!("{}/v1/status", env.sandbox.base_url()))
            .send()
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn untrusted_client_certificate_is_refused() {
    let env = env();
    let other_ca = Authority::generate("some other CA").unwrap();
    let leaf = other_ca.issue(&LeafKind::Client, "intruder").unwrap();
    let id = Identity::from_pem(
        leaf.cert_pem().as_bytes(),
        leaf.key_pem().as_bytes(),
        "intruder",
    )
    .unwrap();
    let err = env
        .raw(Some(id))
        .get(format!("{}/v1/status", env.sandbox.base_url()))
        .send()
        .expect_err("untrusted cert");
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    // Our client refuses the server when it trusts another CA.
    let mut config = env.config.clone();
    std::fs::write(
        env.dir.join("other-ca.pem"),
        fse_cart::tls::pem("CERTIFICATE", &other_ca.cert_der),
    )
    .unwrap();
    config.gateway.ca = Some("other-ca.pem".into());
    let client = GatewayClient::from_config(&config).unwrap();
    assert!(matches!(
        client.status("x"),
        Err(ClientError::NoAnswer { .. })
    ));
}

fn jwt_refusal(env: &Env, auth: &str, sig: &str) -> RawReply {
    let (pdf, _) = lab();
    let body = r#"{"healthDataFormat":"CDA","mode":"ATTACHMENT","activity":"VERIFICA"}"#;
    let url = format!("{}/v1/documents/validation", env.sandbox.base_url());
    send_multipart(&env.raw(None), &url, Some((auth, sig)), body, Some(pdf)).unwrap()
}

#[test]
fn expired_jwt_is_refused() {
    let env = env();
    let payload = &sample_payloads()["JWT_LAB_PAYLOAD"];
    let now = unix_now();
    let (auth, sig) = env.resign(payload, json!({ "iat": now - 600, "exp": now - 300 }));
    let reply = jwt_refusal(&env, &auth, &sig);
    assert_eq!(
        (reply.status, reply.body["type"].as_str()),
        (403, Some("/msg/mandatory-element-token")),
        "{}",
        reply.body
    );
    assert!(reply.body["detail"].as_str().unwrap().contains("expired"));
    assert!(reply.x_cart_id.is_some());
}

#[test]
fn wrongly_signed_jwt_is_refused() {
    let env = env();
    let payload = &sample_payloads()["JWT_LAB_PAYLOAD"];
    let (auth, sig) = env.resign(payload, json!({}));
    // Signature of another key (a signer from another CA, same claims).
    let other_ca = Authority::generate("rogue CA").unwrap();
    let rogue = other_ca
        .issue(&LeafKind::Signer, fse_cart::sandbox::identities::SIGNER_CN)
        .unwrap();
    let rogue = Signer::new(
        &Identity::from_pem(
            rogue.cert_pem().as_bytes(),
            rogue.key_pem().as_bytes(),
            "rogue",
        )
        .unwrap(),
    )
    .unwrap();
    let claims: Value =
        serde_json::from_slice(&base64_url(sig.split('.').nth(1).unwrap())).unwrap();
    let rogue_sig = rogue.sign(&claims).unwrap();
    let reply = jwt_refusal(&env, &auth, &rogue_sig);
    assert_eq!(
        (reply.status, reply.body["type"].as_str()),
        (403, Some("/msg/mandatory-element-token")),
        "{}",
        reply.body
    );
    // Our certificate in x5c, but a tampered payload: the signature no longer verifies.
    let mut parts: Vec<String> = sig.split('.').map(str::to_owned).collect();
    let mut tampered = claims.clone();
    tampered["person_id"] = json!("XXXXXX00X00X000X^^^&2.16.840.1.113883.2.9.4.3.2&ISO");
    parts[1] = base64_url_encode(&serde_json::to_vec(&tampered).unwrap());
    let reply = jwt_refusal(&env, &auth, &parts.join("."));
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("signature does not verify"),
        "{}",
        reply.body
    );
}

#[test]
fn wrong_audience_is_refused() {
    let env = env();
    let client = env
        .client()
        .with_audience("https://modipa-val.fse.salute.gov.it/govway/rest/in/FSE/gateway/v1");
    let (pdf, loinc) = lab();
    let reply = client
        .validate(
            Document { pdf: &pdf, loinc },
            &validation(Activity::Verifica),
        )
        .unwrap();
    assert_eq!(reply.status, 403);
    assert_eq!(
        problem(&reply).problem_type,
        ProblemType::MandatoryElementToken
    );
    assert!(problem(&reply).detail.contains("aud"));
    assert!(reply.x_cart_id.is_some() && reply.trace_id.is_some());
}

#[test]
fn missing_jwt_and_bad_claims_are_refused() {
    let env = env();
    let (pdf, _) = lab();
    let url = format!("{}/v1/documents/validation", env.sandbox.base_url());
    let body = r#"{"activity":"VERIFICA"}"#;
    let reply = send_multipart(&env.raw(None), &url, None, body, Some(pdf)).unwrap();
    assert_eq!(
        (reply.status, reply.body["type"].as_str()),
        (403, Some("/msg/missing-token"))
    );
    let payload = &sample_payloads()["JWT_LAB_PAYLOAD"];
    for (overrides, expected) in [
        (
            json!({ "subject_organization_id": "090" }),
            "/msg/jwt-validation",
        ),
        (json!({ "action_id": "DELETE" }), "/msg/jwt-validation"),
        (json!({ "purpose_of_use": "UPDATE" }), "/msg/jwt-validation"),
        (json!({ "subject_role": "XXX" }), "/msg/jwt-validation"),
        (
            json!({ "resource_hl7_type": "('34105-7^^2.16.840.1.113883.6.1')" }),
            "/msg/jwt-validation",
        ),
        (json!({ "person_id": null }), "/msg/mandatory-element-token"),
    ] {
        let (auth, sig) = env.resign(payload, overrides.clone());
        let reply = jwt_refusal(&env, &auth, &sig);
        assert_eq!(
            (reply.status, reply.body["type"].as_str()),
            (403, Some(expected)),
            "{overrides}: {}",
            reply.body
        );
    }
}

#[test]
fn multipart_and_request_body_are_parsed_strictly() {
    let env = env();
    let raw = env.raw(None);
    let url = format!("{}/v1/documents/validation", env.sandbox.base_url());
    let (auth, sig) = env.resign(&sample_payloads()["JWT_LAB_PAYLOAD"], json!({}));
    let (pdf, _) = lab();
    let cases: [(&str, Option<Vec<u8>>, u16, &str); 6] = [
        (
            r#"{"activity":"VERIFICA","extra":1}"#,
            Some(pdf.clone()),
            400,
            "/msg/mandatory-element",
        ),
        (
            r#"{"activity":"VERIFICA""#,
            Some(pdf.clone()),
            400,
            "/msg/mandatory-element",
        ),
        (
            r#"{"activity":"verifica"}"#,
            Some(pdf.clone()),
            400,
            "/msg/mandatory-element",
        ),
        (
            r#"{"activity":"VERIFICA"}"#,
            Some(b"<ClinicalDocument/>".to_vec()),
            415,
            "/msg/document-type",
        ),
        (
            r#"{"activity":"VERIFICA"}"#,
            Some(Vec::new()),
            400,
            "/msg/empty-file",
        ),
        (
            r#"{"activity":"VERIFICA"}"#,
            None,
            400,
            "/msg/mandatory-element",
        ),
    ];
    for (body, file, status, kind) in cases {
        let reply = send_multipart(&raw, &url, Some((&auth, &sig)), body, file).unwrap();
        assert_eq!(
            (reply.status, reply.body["type"].as_str()),
            (status, Some(kind)),
            "{body}: {}",
            reply.body
        );
        assert!(reply.x_cart_id.is_some());
        assert!(reply.body["traceID"].is_string());
    }
    // No mode: accepted with the gateway's warning.
    let reply = send_multipart(
        &raw,
        &url,
        Some((&auth, &sig)),
        r#"{"activity":"VERIFICA"}"#,
        Some(pdf.clone()),
    )
    .unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.body["warning"]
        .as_str()
        .unwrap()
        .contains("modalità di estrazione"));
    // A PDF without cda.xml (LAB_OK's sibling CDA_OK_SIGNED carries cda1.xml): /msg/cda-element.
    let no_cda = std::fs::read(
        common::conformance_dir().join("gateway/it-fse-gtw-dispatcher/pdf/CDA_OK_SIGNED.pdf"),
    )
    .unwrap();
    let reply = send_multipart(
        &raw,
        &url,
        Some((&auth, &sig)),
        r#"{"activity":"VERIFICA","mode":"ATTACHMENT"}"#,
        Some(no_cda),
    )
    .unwrap();
    assert_eq!(
        (reply.status, reply.body["type"].as_str()),
        (400, Some("/msg/cda-element")),
        "{}",
        reply.body
    );
}

#[test]
fn every_x_cart_id_is_recorded_and_listed_by_sandbox_log() {
    let env = env();
    let client = env.client();
    let (pdf, loinc) = lab();
    let doc = Document { pdf: &pdf, loinc };
    let mut sent = BTreeSet::new();
    let v = client
        .validate(doc, &validation(Activity::Verifica))
        .unwrap();
    sent.insert(v.x_cart_id.clone().unwrap());
    let refused = client
        .create(doc, &publication("2.16.840.1.113883.2.9.2.90.4.4^LOG1"))
        .unwrap();
    sent.insert(refused.x_cart_id.clone().unwrap());
    let missing = client.status("no-such-workflow").unwrap();
    assert_eq!(missing.status, 404);
    sent.insert(missing.x_cart_id.clone().unwrap());
    let output = std::process::Command::new(common::fse_bin())
        .args(["sandbox", "log"])
        .arg(&env.dir)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let log: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let listed: BTreeSet<String> = log
        .iter()
        .map(|e| e["x_cart_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, sent);
    let create = log.iter().find(|e| e["operation"] == "create").unwrap();
    assert_eq!(create["status"], 400);
    assert_eq!(create["problem_type"], "/msg/cda-match");
    assert_eq!(
        create["identificativo_doc"],
        "2.16.840.1.113883.2.9.2.90.4.4^LOG1"
    );
    assert_eq!(create["trace_id"].as_str(), refused.trace_id.as_deref());
    let verifica = log.iter().find(|e| e["operation"] == "validation").unwrap();
    assert_eq!(
        verifica["workflow_instance_id"].as_str(),
        v.workflow_instance_id.as_deref()
    );
}

#[test]
fn state_survives_a_restart() {
    let env = env();
    let (pdf, loinc) = lab();
    let doc = Document { pdf: &pdf, loinc };
    let validated = env
        .client()
        .validate(doc, &validation(Activity::Validation))
        .unwrap();
    assert_eq!(validated.status, 201);
    let Env {
        _tmp, dir, sandbox, ..
    } = env;
    sandbox.stop();
    let (_sandbox, config) = start_in(&dir, |_| {});
    let client = GatewayClient::from_config(&config).unwrap();
    let created = client
        .create(
            doc,
            &publication(&format!("2.16.840.1.113883.2.9.2.90.4.4^R{}", uuid_like())),
        )
        .unwrap();
    assert_eq!(created.status, 202, "{created:?}");
    assert_eq!(created.workflow_instance_id, validated.workflow_instance_id);
}

#[test]
fn fault_injection_503_and_retry_on_validation_only() {
    let env = env_with(|o| o.faults.unavailable_share = 1.0);
    let mut config = env.config.clone();
    config.gateway.max_attempts = 3;
    let client = GatewayClient::from_config(&config).unwrap();
    let (pdf, loinc) = lab();
    let doc = Document { pdf: &pdf, loinc };
    let v = client
        .validate(doc, &validation(Activity::Verifica))
        .unwrap();
    assert_eq!((v.status, v.attempts), (503, 3));
    let c = client.create(doc, &publication("X")).unwrap();
    assert_eq!(
        (c.status, c.attempts),
        (503, 1),
        "a create is never resent blindly"
    );
    let log = sandbox::cart_log(&env.dir).unwrap();
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|e| e.status == 503));
}

#[test]
fn dropped_connections_give_no_answer() {
    let env = env_with(|o| o.faults.drop_share = 1.0);
    let client = env.client();
    let (pdf, loinc) = lab();
    let err = client
        .create(Document { pdf: &pdf, loinc }, &publication("X"))
        .unwrap_err();
    assert!(
        matches!(err, ClientError::NoAnswer { attempts: 1, .. }),
        "{err:?}"
    );
    assert!(
        sandbox::cart_log(&env.dir).unwrap().is_empty(),
        "no answer, no X-CART-id"
    );
}

#[test]
fn init_writes_the_pki_and_a_usable_config() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kit");
    let out = std::process::Command::new(common::fse_bin())
        .args(["sandbox", "init"])
        .arg(&dir)
        .args(["--listen", "127.0.0.1:18443"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "ca.pem",
        "client.pem",
        "client.key",
        "client.p12",
        "signer.pem",
        "signer.key",
        "signer.p12",
        "server.pem",
        "fse.toml",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let config = ClientConfig::load(&dir.join("fse.toml")).unwrap();
    assert_eq!(config.gateway.base_url, "https://127.0.0.1:18443");
    assert_eq!(config.audience(), "https://127.0.0.1:18443/v1");
    // PKCS#12 identities load and match their PEM twins.
    let p12 =
        Identity::from_pkcs12_file(&dir.join("client.p12"), sandbox::identities::P12_PASSWORD)
            .unwrap();
    let pem = Identity::from_pem_files(&dir.join("client.pem"), &dir.join("client.key")).unwrap();
    assert_eq!(p12.leaf(), pem.leaf());
    let signer =
        Identity::from_pkcs12_file(&dir.join("signer.p12"), sandbox::identities::P12_PASSWORD)
            .unwrap();
    assert_eq!(
        signer.common_name().unwrap(),
        sandbox::identities::SIGNER_CN
    );
    // A second init refuses to overwrite.
    let again = std::process::Command::new(common::fse_bin())
        .args(["sandbox", "init"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    // The CA reloads and can issue more identities.
    let ca: Authority = load_authority(&dir).unwrap();
    assert!(ca.issue(&LeafKind::Client, "second client").is_ok());
}

/// Starts `fse sandbox serve DIR ARGS…`; returns the child, its stdout and the URL it printed.
fn spawn_serve(
    dir: &Path,
    args: &[&str],
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
    String,
) {
    let mut child = std::process::Command::new(common::fse_bin())
        .args(["sandbox", "serve"])
        .arg(dir)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    (child, stdout, url)
}

/// Ctrl-C (SIGINT) stops a `serve` cleanly: exit status 0 and a last line.
fn interrupt(
    mut child: std::process::Child,
    mut stdout: std::io::BufReader<std::process::ChildStdout>,
) {
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(rest.contains("fse sandbox stopped"), "{rest}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn serve_command_listens_at_the_configured_address_and_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("srv");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let init = std::process::Command::new(common::fse_bin())
        .args(["sandbox", "init"])
        .arg(&dir)
        .args(["--listen", &listen])
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    // init writes the address into fse.toml, with the JWT audience = base URL + /v1.
    let config = ClientConfig::load(&dir.join("fse.toml")).unwrap();
    assert_eq!(config.gateway.base_url, format!("https://{listen}"));
    assert_eq!(
        config.gateway.audience.as_deref(),
        Some(format!("https://{listen}/v1").as_str())
    );
    // serve listens there and prints the URL; fse.toml works against it unchanged.
    let (child, stdout, url) = spawn_serve(&dir, &[]);
    assert_eq!(url, format!("https://{listen}"));
    let client = GatewayClient::from_config(&config).unwrap();
    let (pdf, loinc) = lab();
    let reply = client
        .validate(
            Document { pdf: &pdf, loinc },
            &validation(Activity::Verifica),
        )
        .unwrap();
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(matches!(reply.body, Ok(GatewayResponse { .. })));
    // By default the CDA is judged by the built-in rules: a LAB whose code is another type's
    // (coherent with its JWT) is refused by their schematron.
    let cda = std::fs::read(
        common::conformance_dir().join("cda/samples/mutations/LAB_semantic_wrong_doc_code.xml"),
    )
    .unwrap();
    let pdf = pdf_with_cda(&cda);
    let mut wrong = config.clone();
    wrong.profile.person_id = format!("{}^^^&2.16.840.1.113883.2.9.4.3.2&ISO", patient_of(&cda));
    let reply = GatewayClient::from_config(&wrong)
        .unwrap()
        .validate(
            Document {
                pdf: &pdf,
                loinc: "11488-4",
            },
            &validation(Activity::Verifica),
        )
        .unwrap();
    assert_eq!(reply.status, 422, "{reply:?}");
    assert_eq!(problem(&reply).problem_type, ProblemType::Semantic);
    interrupt(child, stdout);
    // --listen overrides the configured address; --accept-any-cda skips CDA validation.
    let (child, stdout, url) = spawn_serve(&dir, &["--listen", "127.0.0.1:0", "--accept-any-cda"]);
    assert_ne!(url, format!("https://{listen}"));
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    wrong.gateway.base_url = url.clone();
    wrong.gateway.audience = Some(format!("{url}/v1"));
    let reply = GatewayClient::from_config(&wrong)
        .unwrap()
        .validate(
            Document {
                pdf: &pdf,
                loinc: "11488-4",
            },
            &validation(Activity::Verifica),
        )
        .unwrap();
    assert_eq!(reply.status, 200, "{reply:?}");
    interrupt(child, stdout);
}

fn base64_url(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn base64_url_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[test]
fn prefix_and_pkcs12_identities() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pfx");
    let prefix = "/govway/rest/in/FSE/gateway";
    sandbox::init_with_prefix(&dir, "127.0.0.1:0".parse().unwrap(), prefix).unwrap();
    let (sb, mut config) = start_in(&dir, |_| {});
    assert!(sb.base_url().ends_with(prefix), "{}", sb.base_url());
    // Both identities from their PKCS#12 files, the password from the environment.
    std::env::set_var("FSE_TEST_P12_PASSWORD", sandbox::identities::P12_PASSWORD);
    for section in [&mut config.tls, &mut config.signer] {
        let name = if section.cert.as_deref() == Some(Path::new("client.pem")) {
            "client.p12"
        } else {
            "signer.p12"
        };
        *section = fse_cart::client::config::IdentitySection {
            p12: Some(name.into()),
            p12_password_env: Some("FSE_TEST_P12_PASSWORD".into()),
            ..Default::default()
        };
    }
    let client = GatewayClient::from_config(&config).unwrap();
    let (pdf, loinc) = lab();
    let reply = client
        .validate(
            Document { pdf: &pdf, loinc },
            &validation(Activity::Verifica),
        )
        .unwrap();
    assert_eq!(reply.status, 200, "{reply:?}");
    // Outside the prefix: 404.
    let raw = std::fs::read(dir.join("client.p12")).unwrap();
    let id = Identity::from_pkcs12(&raw, sandbox::identities::P12_PASSWORD, "client.p12").unwrap();
    let outside = format!("https://{}/v1/status", sb.addr());
    assert_eq!(
        Env::raw_with(&dir, id)
            .get(outside)
            .send()
            .unwrap()
            .status(),
        404
    );
    // A wrong PKCS#12 password is an error, not a panic.
    assert!(Identity::from_pkcs12(&raw, "wrong", "client.p12").is_err());
}

#[test]
fn a_create_whose_answer_is_lost_is_resolved_by_status_not_resent() {
    let env = env_with(|o| o.faults.latency = Duration::from_millis(1500));
    let mut impatient = env.config.clone();
    impatient.gateway.timeout_seconds = 1;
    let impatient = GatewayClient::from_config(&impatient).unwrap();
    let patient = env.client();
    let (pdf, loinc) = lab();
    let doc = Document { pdf: &pdf, loinc };
    let validated = patient
        .validate(doc, &validation(Activity::Validation))
        .unwrap();
    assert_eq!(validated.status, 201);
    let wii = validated.workflow_instance_id.unwrap();
    let id = format!("2.16.840.1.113883.2.9.2.90.4.4^LOST{}", uuid_like());
    let err = impatient.create(doc, &publication(&id)).unwrap_err();
    assert!(
        matches!(err, ClientError::NoAnswer { attempts: 1, .. }),
        "{err:?}"
    );
    // The gateway did publish it: the status query says so, so the caller must not resend.
    assert_eq!(
        patient.resolve_lost_create(&wii, &id).unwrap(),
        LostCreate::Published
    );
    // The answer the client never saw still had its X-CART-id, in the sandbox's log.
    let log = sandbox::cart_log(&env.dir).unwrap();
    let create = log.iter().find(|e| e.operation == "create").unwrap();
    assert_eq!(
        (create.status, create.identificativo_doc.as_deref()),
        (202, Some(id.as_str()))
    );
}

#[test]
fn publication_with_a_broken_signature_is_refused_with_sign_error() {
    let env = env();
    let client = env.client();
    let (pdf, loinc) = lab();
    let validated = client
        .validate(
            Document { pdf: &pdf, loinc },
            &validation(Activity::Validation),
        )
        .unwrap();
    assert_eq!(validated.status, 201, "{validated:?}");
    // One byte of the binary comment on line 2: inside the signed range, the CDA untouched.
    let mut tampered = pdf.clone();
    tampered[11] ^= 0x01;
    let id = format!("2.16.840.1.113883.2.9.2.90.4.4^TAMPER{}", uuid_like());
    let refused = client
        .create(
            Document {
                pdf: &tampered,
                loinc,
            },
            &publication(&id),
        )
        .unwrap();
    assert_eq!(
        (refused.status, &problem(&refused).problem_type),
        (400, &ProblemType::SignError),
        "{refused:?}"
    );
    assert!(
        refused.x_cart_id.is_some(),
        "refusals carry an X-CART-id too"
    );
    // The untouched PDF still publishes.
    let created = client
        .create(Document { pdf: &pdf, loinc }, &publication(&id))
        .unwrap();
    assert_eq!(created.status, 202, "{created:?}");
}

/// A PDF carrying `cda` as `cda.xml` (rendered from the CDA itself; unsigned, as validation
/// does not look at the signature).
fn pdf_with_cda(cda: &[u8]) -> Vec<u8> {
    let rendered = fse_pades::render::render_cda(cda).expect("render");
    fse_pades::inject(rendered, cda).expect("inject")
}

/// The `extension` of the first `patientRole/id` of a CDA (a plain scan, for test inputs).
fn patient_of(cda: &[u8]) -> String {
    let text = String::from_utf8_lossy(cda);
    let role = text.find("<patientRole").expect("patientRole");
    let id = role + text[role..].find("<id ").expect("patientRole/id");
    let end = id + text[id..].find('>').expect("end of id");
    let ext = id + text[id..end].find("extension=\"").expect("extension") + 11;
    text[ext..ext + text[ext..].find('"').expect("quote")].to_owned()
}

#[test]
fn with_official_rules_the_sandbox_answers_the_validators_verdict() {
    let rules = common::conformance_dir().join("cda");
    let validator = std::sync::Arc::new(sandbox::RulesValidator::load(&rules).expect("rules"));
    let env = env_with(move |o| o.validator = validator);
    let mutations = common::conformance_dir().join("cda/samples/mutations");
    let cases: [(PathBuf, &str, u16, Option<ProblemType>); 4] = [
        (
            common::workspace_root().join("fixtures/build/LAB/esempio-glicemia.xml"),
            "11502-2",
            201,
            None,
        ),
        (
            mutations.join("LDO_semantic_lowercase_cf.xml"),
            "34105-7",
            422,
            Some(ProblemType::Semantic),
        ),
        (
            mutations.join("LDO_vocab_bad_gender_code.xml"),
            "34105-7",
            400,
            Some(ProblemType::Vocabulary),
        ),
        (
            mutations.join("LAB_syntax_no_order_id.xml"),
            "11502-2",
            400,
            Some(ProblemType::Syntax),
        ),
    ];
    for (file, loinc, status, problem_type) in cases {
        let cda = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let pdf = pdf_with_cda(&cda);
        // The JWT names the document's patient, or the coherence check refuses it first.
        let mut config = env.config.clone();
        config.profile.person_id =
            format!("{}^^^&2.16.840.1.113883.2.9.4.3.2&ISO", patient_of(&cda));
        let client = GatewayClient::from_config(&config).unwrap();
        let reply = client
            .validate(
                Document { pdf: &pdf, loinc },
                &validation(Activity::Verifica),
            )
            .unwrap();
        let expected = if status == 201 { 200 } else { status };
        assert_eq!(reply.status, expected, "{}: {reply:?}", file.display());
        if let Some(t) = problem_type {
            assert_eq!(problem(&reply).problem_type, t, "{}", file.display());
        }
        assert!(reply.x_cart_id.is_some());
    }
}

#[test]
fn jwt_and_cda_must_agree_on_patient_and_document_type() {
    let env = env();
    let payload = &sample_payloads()["JWT_LAB_PAYLOAD"];
    let refusal = |overrides: Value| {
        let (auth, sig) = env.resign(payload, overrides);
        let reply = jwt_refusal(&env, &auth, &sig);
        (
            reply.status,
            reply.body["type"].as_str().map(str::to_owned),
            reply.body["instance"].as_str().map(str::to_owned),
            reply.body["detail"].as_str().unwrap_or_default().to_owned(),
        )
    };
    // The kit's own claims agree with its LAB.pdf.
    assert_eq!(refusal(json!({})).0, 200);
    // The JWT names another patient than the CDA's patientRole/id.
    let (status, t, instance, detail) =
        refusal(json!({ "person_id": "RSSMRA80A01H501U^^^&2.16.840.1.113883.2.9.4.3.2&ISO" }));
    assert_eq!(
        (status, t.as_deref(), instance.as_deref()),
        (403, Some("/msg/jwt-validation"), Some("/jwt-person-id")),
        "{detail}"
    );
    assert!(
        detail.contains("RSSMRA80A01H501U") && detail.contains("GTWGWY82B42G920M"),
        "{detail}"
    );
    // The JWT announces another document type than the CDA's code (LDO for a LAB report).
    let (status, t, instance, detail) =
        refusal(json!({ "resource_hl7_type": "('34105-7^^2.16.840.1.113883.6.1')" }));
    assert_eq!(
        (status, t.as_deref(), instance.as_deref()),
        (403, Some("/msg/jwt-validation"), Some("/jwt-document-type")),
        "{detail}"
    );
    assert!(
        detail.contains("('11502-2^^2.16.840.1.113883.6.1')"),
        "{detail}"
    );
    // The same refusal on a publication, through the client, before the PDF signature and the
    // remembered validation are looked at.
    let mut config = env.config.clone();
    config.profile.person_id = "RSSMRA80A01H501U^^^&2.16.840.1.113883.2.9.4.3.2&ISO".into();
    let client = GatewayClient::from_config(&config).unwrap();
    let (pdf, loinc) = lab();
    let id = format!("2.16.840.1.113883.2.9.2.90.4.4^COH{}", uuid_like());
    let refused = client
        .create(Document { pdf: &pdf, loinc }, &publication(&id))
        .unwrap();
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(problem(&refused).problem_type, ProblemType::JwtValidation);
    assert_eq!(
        problem(&refused).instance.as_deref(),
        Some("/jwt-person-id")
    );
}

#[test]
fn a_remembered_validation_expires() {
    let env = env_with(|o| o.validation_ttl = Duration::from_secs(1));
    let client = env.client();
    let (pdf, loinc) = lab();
    let doc = Document { pdf: &pdf, loinc };
    let validated = client
        .validate(doc, &validation(Activity::Validation))
        .unwrap();
    assert_eq!(validated.status, 201, "{validated:?}");
    // Expiry is checked at whole seconds: two seconds later the validation is gone.
    std::thread::sleep(Duration::from_millis(2100));
    let id = format!("2.16.840.1.113883.2.9.2.90.4.4^TTL{}", uuid_like());
    let refused = client.create(doc, &publication(&id)).unwrap();
    assert_eq!(refused.status, 400, "{refused:?}");
    assert_eq!(problem(&refused).problem_type, ProblemType::CdaMatch);
    // A fresh VALIDATION makes the same document publishable again.
    let again = client
        .validate(doc, &validation(Activity::Validation))
        .unwrap();
    assert_eq!(again.status, 201);
    let created = client.create(doc, &publication(&id)).unwrap();
    assert_eq!(created.status, 202, "{created:?}");
}

/// The dispatcher's checks of 2026 (`release` branch): `tipoDocumentoLivAlto` must be the class
/// its table correlates with the document type (400 `/msg/validator`), and every document id
/// must be `root^extension` with a non-empty part after the last `^` (400 `/msg/id-doc`; a
/// replace's path id with instance `/invalid-req-id`), refused before anything is stored.
#[test]
fn correlation_of_the_document_class_and_the_id_form_are_enforced() {
    let env = env();
    let client = env.client();
    let (pdf, loinc) = lab();
    let doc = Document { pdf: &pdf, loinc };
    assert!(client
        .validate(doc, &validation(Activity::Validation))
        .unwrap()
        .is_success());
    let id = format!("2.16.840.1.113883.2.9.2.90.4.4^CORR{}", uuid_like());
    // A laboratory report (11502-2) as a vaccination document: refused.
    let mut wrong = publication(&id);
    wrong.tipo_documento_liv_alto = TipoDocumentoLivAlto::Vac;
    let refused = client.create(doc, &wrong).unwrap();
    let p = problem(&refused);
    assert_eq!(
        (refused.status, &p.problem_type, p.title.as_str()),
        (400, &ProblemType::Validator, "Errore di validazione")
    );
    assert_eq!(
        p.detail,
        "Non c'è correlazione tra tipo documento e tipo documento livello alto"
    );
    assert_eq!(p.instance.as_deref(), Some("/msg/validator"));
    // Ids without `^` and a non-empty part after it: refused.
    for bad in [
        format!("CORR{}", uuid_like()),
        format!("2.16.840.1.113883.2.9.2.90.4.4^CORR{}^", uuid_like()),
        format!("SKIP_VALIDATION_{}", uuid_like()),
    ] {
        let refused = client.create(doc, &publication(&bad)).unwrap();
        let p = problem(&refused);
        assert_eq!(
            (refused.status, &p.problem_type, p.instance.as_deref()),
            (400, &ProblemType::IdDoc, Some("/invalid-id")),
            "{bad}"
        );
        assert_eq!(p.detail, "L'identificativo documento non è valido");
        assert_eq!(p.title, "Campo id documento non valido");
    }
    // Nothing of the refusals was stored: the right class publishes the document once.
    let created = client.create(doc, &publication(&id)).unwrap();
    assert_eq!(created.status, 202, "{created:?}");
    // Path ids: a replace's is checked first (its own instance), a delete's too.
    let mut replace: fse_cart::api::ReplaceRequest = serde_json::from_value(json!({
        "tipologiaStruttura": "Ospedale", "tipoDocumentoLivAlto": "REF",
        "assettoOrganizzativo": "AD_PSC001", "tipoAttivitaClinica": "PHR",
        "identificativoSottomissione": "1", "identificativoDoc": format!("{id}.2"),
        "identificativoRep": "2.16.840.1.113883.2.9.2.90.4.5.1", "mode": "ATTACHMENT"
    }))
    .unwrap();
    let refused = client.replace("NOTFOUND", doc, &replace).unwrap();
    let p = problem(&refused);
    assert_eq!(
        (refused.status, &p.problem_type, p.instance.as_deref()),
        (400, &ProblemType::IdDoc, Some("/invalid-req-id"))
    );
    assert_eq!(
        p.detail,
        "L'identificativo documento fornito in richiesta non è valido"
    );
    let refused = client.delete("NOTFOUND").unwrap();
    assert_eq!(
        (refused.status, problem(&refused).instance.as_deref()),
        (400, Some("/invalid-id"))
    );
    // A replace with a class that does not correlate: refused, the document stays current.
    replace.tipo_documento_liv_alto = TipoDocumentoLivAlto::Cer;
    let refused = client.replace(&id, doc, &replace).unwrap();
    assert_eq!(
        (refused.status, &problem(&refused).problem_type),
        (400, &ProblemType::Validator)
    );
    assert_eq!(client.delete(&id).unwrap().status, 202);
}
