//! Property tests: the sandbox's parsers of untrusted input (routes, headers, JWTs,
//! multipart, JSON bodies, PDFs) never panic and always answer a problem+json with a fresh
//! `X-CART-id`, recorded in the log.

use bytes::Bytes;
use fse_cart::api::{Operation, Problem};
use fse_cart::jwt::{unix_now, Signer, Verifier};
use fse_cart::sandbox::checks::{BasicPdfInspector, PdfInspector};
use fse_cart::sandbox::gateway::Request;
use fse_cart::sandbox::identities::{Authority, LeafKind};
use fse_cart::sandbox::{sandbox_profile, AcceptAllCda, Gateway, GatewayOptions, Store};
use fse_cart::tls::Identity;
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};

struct Fixture {
    _dir: tempfile::TempDir,
    gateway: Gateway,
    runtime: tokio::runtime::Runtime,
    authorization: String,
    signature: String,
}

const AUD: &str = "https://127.0.0.1:1/v1";

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::generate("prop CA").unwrap();
        let leaf = ca.issue(&LeafKind::Signer, "prop-signer").unwrap();
        let signer = Signer::new(
            &Identity::from_pem(leaf.cert_pem().as_bytes(), leaf.key_pem().as_bytes(), "t")
                .unwrap(),
        )
        .unwrap();
        let pair = signer
            .pair(
                &sandbox_profile(),
                Operation::Validation,
                AUD,
                Some("('11502-2^^2.16.840.1.113883.6.1')"),
                None,
                3600,
            )
            .unwrap();
        let verifier = Verifier::new(&[ca.cert_der.clone().into()], AUD).unwrap();
        let gateway = Gateway::new(
            GatewayOptions::default(),
            verifier,
            Store::open(dir.path()).unwrap(),
            Arc::new(AcceptAllCda),
            Arc::new(BasicPdfInspector),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Fixture {
            _dir: dir,
            gateway,
            runtime,
            authorization: pair.authorization,
            signature: pair.signature,
        }
    })
}

fn headers(pairs: &[(&str, String)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (k, v) in pairs {
        if let Ok(value) = http::HeaderValue::from_str(v) {
            map.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), value);
        }
    }
    map
}

fn assert_problem(status: u16, content_type: &str, body: &[u8]) {
    assert!(status >= 400, "status {status}");
    assert!(
        status < 500 || status == 503,
        "server error {status}: {}",
        String::from_utf8_lossy(body)
    );
    assert_eq!(content_type, "application/problem+json");
    let problem: Problem = serde_json::from_slice(body).expect("problem+json");
    assert_eq!(problem.status, status);
    assert!(problem.trace_id.is_some());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn verifier_never_panics(token in ".{0,300}", parts in proptest::collection::vec("[A-Za-z0-9_-]{0,120}", 0..5)) {
        let f = fixture();
        let _ = f.gateway.store();
        let verifier = Verifier::new(&[], AUD).unwrap();
        prop_assert!(verifier.verify(&token, "auth:", unix_now()).is_err());
        prop_assert!(verifier.verify(&parts.join("."), "integrity:", unix_now()).is_err());
    }

    #[test]
    fn any_path_and_method_gets_an_answer(method in "(GET|POST|PUT|DELETE|PATCH)", path in "/[a-zA-Z0-9/%._^-]{0,80}", body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let f = fixture();
        let req = Request { method, path: format!("/v1{path}"), headers: http::HeaderMap::new(), body: Bytes::from(body) };
        let reply = f.runtime.block_on(f.gateway.handle(req, false));
        if reply.status != 200 {
            assert_problem(reply.status, reply.content_type, &reply.body);
        }
        prop_assert_eq!(reply.x_cart_id.len(), 36);
    }

    #[test]
    fn authentic_validation_with_arbitrary_multipart(boundary in "[a-zA-Z0-9]{1,30}", body in proptest::collection::vec(any::<u8>(), 0..600), json in ".{0,80}", file in proptest::collection::vec(any::<u8>(), 0..300)) {
        let f = fixture();
        let h = headers(&[
            ("authorization", format!("Bearer {}", f.authorization)),
            ("fse-jwt-signature", f.signature.clone()),
            ("content-type", format!("multipart/form-data; boundary={boundary}")),
        ]);
        // Raw garbage as the body.
        let req = Request { method: "POST".into(), path: "/v1/documents/validation".into(), headers: h.clone(), body: Bytes::from(body) };
        let reply = f.runtime.block_on(f.gateway.handle(req, false));
        assert_problem(reply.status, reply.content_type, &reply.body);
        // Well-formed multipart: arbitrary JSON text, then a valid body with a garbage "PDF".
        let mut pdf = b"%PDF-1.7\n".to_vec();
        pdf.extend(file);
        for (text, expected) in [(json.as_str(), None), (r#"{"activity":"VERIFICA","mode":"ATTACHMENT"}"#, Some("/msg/cda-element"))] {
            let mut form = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"requestBody\"\r\n\r\n{text}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.pdf\"\r\n\r\n"
            )
            .into_bytes();
            form.extend(&pdf);
            form.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
            let req = Request { method: "POST".into(), path: "/v1/documents/validation".into(), headers: h.clone(), body: Bytes::from(form) };
            let reply = f.runtime.block_on(f.gateway.handle(req, false));
            assert_problem(reply.status, reply.content_type, &reply.body);
            if let Some(kind) = expected {
                let problem: Problem = serde_json::from_slice(&reply.body).unwrap();
                prop_assert_eq!(problem.problem_type.uri(), kind);
            }
        }
    }

    #[test]
    fn pdf_inspector_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Names << /EmbeddedFiles 2 0 R >> >> endobj\n".to_vec();
        pdf.extend(bytes);
        let inspector = BasicPdfInspector;
        let extract = std::panic::catch_unwind(|| inspector.extract_cda(&pdf, fse_cart::api::InjectionMode::Attachment));
        prop_assert!(matches!(extract, Ok(Err(_))), "garbage is refused, without panic");
        let verdict = std::panic::catch_unwind(|| inspector.verify_signature(&pdf));
        prop_assert!(verdict.is_ok(), "no panic");
    }
}

#[test]
fn every_answer_is_logged_with_a_unique_x_cart_id() {
    let f = fixture();
    let before = f.gateway.store().cart_log().unwrap().len();
    let mut ids = std::collections::BTreeSet::new();
    for path in [
        "/v1/status",
        "/v1/nothing",
        "/v1/documents",
        "/v1/status/abc",
    ] {
        let req = Request {
            method: "GET".into(),
            path: path.into(),
            headers: http::HeaderMap::new(),
            body: Bytes::new(),
        };
        let reply = f.runtime.block_on(f.gateway.handle(req, false));
        assert!(ids.insert(reply.x_cart_id));
    }
    let log = f.gateway.store().cart_log().unwrap();
    let logged: std::collections::BTreeSet<String> =
        log[before..].iter().map(|e| e.x_cart_id.clone()).collect();
    assert!(ids.is_subset(&logged));
}
