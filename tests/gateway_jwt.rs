//! The gateway's JWT pair: our signer and verifier against the Ministry's sample payloads
//! (test-container `jwt-payload-samples.decoded.json`, dispatcher `jwt/header.json` and
//! `jwt/payload.json`).

mod common;

use base64::Engine;
use fse_cart::api::{ActionId, Operation, PurposeOfUse};
use fse_cart::jwt::{
    check_operation_claims, unix_now, ClaimError, JwtError, SignatureClaims, Signer, Verifier,
};
use fse_cart::sandbox::identities::{Authority, LeafKind};
use fse_cart::sandbox::sandbox_profile;
use fse_cart::tls::Identity;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

const AUD: &str = "https://127.0.0.1:8443/v1";
const XON: &str = "LABORATORIO DI PROVA^^^^^&2.16.840.1.113883.2.9.4.1.3&ISO^^^^120101123456";

struct Pki {
    ca: Authority,
    signer: Signer,
    verifier: Verifier,
}

fn pki() -> Pki {
    let ca = Authority::generate("jwt test CA").unwrap();
    let leaf = ca.issue(&LeafKind::Signer, "S1#120201234567XX").unwrap();
    let signer = Signer::new(&identity(&leaf)).unwrap();
    let verifier = Verifier::new(&[ca.cert_der.clone().into()], AUD).unwrap();
    Pki {
        ca,
        signer,
        verifier,
    }
}

fn identity(issued: &fse_cart::sandbox::identities::Issued) -> Identity {
    Identity::from_pem(
        issued.cert_pem().as_bytes(),
        issued.key_pem().as_bytes(),
        "test",
    )
    .unwrap()
}

fn samples() -> serde_json::Map<String, Value> {
    let path = common::conformance_dir()
        .join("accreditamento/test-container/tests/jwt-payload-samples.decoded.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn resign(pki: &Pki, payload: &Value, overrides: Value) -> String {
    let now = unix_now();
    let mut claims = payload.clone();
    claims["iss"] = json!(format!("integrity:{}", pki.signer.common_name()));
    claims["aud"] = json!(AUD);
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 60);
    for (k, v) in overrides.as_object().unwrap() {
        claims[k] = v.clone();
    }
    pki.signer.sign(&claims).unwrap()
}

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn every_test_container_payload_parses_resigns_and_verifies() {
    let pki = pki();
    let samples = samples();
    assert_eq!(samples.len(), 16);
    for (name, payload) in &samples {
        let typed: SignatureClaims =
            serde_json::from_value(payload.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(typed.action_id, ActionId::Create, "{name}");
        assert_eq!(typed.purpose_of_use, PurposeOfUse::Treatment, "{name}");
        let token = resign(&pki, payload, json!({}));
        let verified = pki
            .verifier
            .verify(&token, "integrity:", unix_now())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.signer_cn, "S1#120201234567XX");
        // Validation accepts every sample; create needs the hash and (spec v2.22) an XON locality.
        check_operation_claims(&verified.claims, Operation::Validation)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let create = check_operation_claims(&verified.claims, Operation::Create);
        if name.ends_with("_WITH_HASH_PAYLOAD") {
            assert!(
                matches!(&create, Err(ClaimError::Invalid { claim, .. }) if claim == "locality"),
                "{name}: {create:?}"
            );
            let with_xon = resign(&pki, payload, json!({ "locality": XON }));
            let claims = pki
                .verifier
                .verify(&with_xon, "integrity:", unix_now())
                .unwrap()
                .claims;
            let parsed = check_operation_claims(&claims, Operation::Create).unwrap();
            assert_eq!(parsed.attachment_hash.as_deref().map(str::len), Some(64));
            // The same token is no good for a replace (action and purpose differ).
            assert!(check_operation_claims(&claims, Operation::Replace).is_err());
        } else {
            assert_eq!(
                create,
                Err(ClaimError::Missing("attachment_hash".into())),
                "{name}"
            );
        }
    }
}

#[test]
fn the_dispatcher_sample_payload_is_outdated_and_refused() {
    let pki = pki();
    let dir = common::conformance_dir().join("gateway/it-fse-gtw-dispatcher/jwt");
    let payload: Value =
        serde_json::from_slice(&std::fs::read(dir.join("payload.json")).unwrap()).unwrap();
    // Its aud is "fse-gateway": refused as is.
    let token = pki
        .signer
        .sign(&{
            let mut p = payload.clone();
            p["iss"] = json!(format!("integrity:{}", pki.signer.common_name()));
            p["exp"] = json!(unix_now() + 60);
            p
        })
        .unwrap();
    assert!(matches!(
        pki.verifier.verify(&token, "integrity:", unix_now()),
        Err(JwtError::Audience { .. })
    ));
    // With our aud it is authentic, but lacks claims the gateway now requires.
    let token = resign(&pki, &payload, json!({}));
    let claims = pki
        .verifier
        .verify(&token, "integrity:", unix_now())
        .unwrap()
        .claims;
    assert_eq!(
        check_operation_claims(&claims, Operation::Create),
        Err(ClaimError::Missing("subject_application_id".into()))
    );
    // Its header has x5c as a placeholder string, not a certificate.
    let header: Value =
        serde_json::from_slice(&std::fs::read(dir.join("header.json")).unwrap()).unwrap();
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let forged = format!("{}.{}.c2ln", b64(&header), token.split('.').nth(1).unwrap());
    assert!(matches!(
        pki.verifier.verify(&forged, "integrity:", unix_now()),
        Err(JwtError::Certificate(_))
    ));
}

#[test]
fn signer_builds_the_pair_per_operation() {
    let pki = pki();
    let profile = sandbox_profile();
    let hash = [7u8; 32];
    let expected = [
        (Operation::Validation, "CREATE", "TREATMENT", false),
        (Operation::Create, "CREATE", "TREATMENT", true),
        (Operation::Replace, "UPDATE", "UPDATE", true),
        (Operation::UpdateMetadata, "UPDATE", "UPDATE", false),
        (Operation::Delete, "DELETE", "UPDATE", false),
    ];
    let mut jtis = std::collections::BTreeSet::new();
    for (op, action, purpose, with_hash) in expected {
        let pair = pki
            .signer
            .pair(
                &profile,
                op,
                AUD,
                Some("('11502-2^^2.16.840.1.113883.6.1')"),
                Some(&hash),
                300,
            )
            .unwrap();
        let header = decode_part(&pair.signature, 0);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "JWT");
        let x5c = base64::engine::general_purpose::STANDARD
            .decode(header["x5c"][0].as_str().unwrap())
            .unwrap();
        assert_eq!(
            fse_cart::tls::common_name(&x5c).as_deref(),
            Some("S1#120201234567XX")
        );
        let auth = pki
            .verifier
            .verify(&pair.authorization, "auth:", unix_now())
            .unwrap();
        assert_eq!(auth.claims["iss"], "auth:S1#120201234567XX");
        let sig = pki
            .verifier
            .verify(&pair.signature, "integrity:", unix_now())
            .unwrap();
        let c = &sig.claims;
        assert_eq!(
            (c["action_id"].as_str(), c["purpose_of_use"].as_str()),
            (Some(action), Some(purpose)),
            "{op}"
        );
        assert_eq!(c["attachment_hash"].is_string(), with_hash, "{op}");
        assert_eq!(
            c["resource_hl7_type"].is_string(),
            op != Operation::Delete,
            "{op}"
        );
        assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 300);
        assert!(
            c["iat"].as_u64().unwrap() < 10_000_000_000,
            "seconds, not milliseconds"
        );
        check_operation_claims(c, op).unwrap_or_else(|e| panic!("{op}: {e}"));
        assert!(jtis.insert(c["jti"].as_str().unwrap().to_owned()));
        assert!(jtis.insert(auth.claims["jti"].as_str().unwrap().to_owned()));
    }
}

#[test]
fn verifier_refuses_what_the_gateway_refuses() {
    let pki = pki();
    let payload = &samples()["JWT_LAB_PAYLOAD"];
    let now = unix_now();
    let expired = resign(&pki, payload, json!({ "iat": now - 120, "exp": now - 60 }));
    assert!(matches!(
        pki.verifier.verify(&expired, "integrity:", now),
        Err(JwtError::Expired { .. })
    ));
    let wrong_aud = resign(
        &pki,
        payload,
        json!({ "aud": "https://modipa-val.fse.salute.gov.it/govway/rest/in/FSE/gateway/v1" }),
    );
    assert!(matches!(
        pki.verifier.verify(&wrong_aud, "integrity:", now),
        Err(JwtError::Audience { .. })
    ));
    let token = resign(&pki, payload, json!({}));
    assert!(matches!(
        pki.verifier.verify(&token, "auth:", now),
        Err(JwtError::Issuer { .. })
    ));
    assert_eq!(
        pki.verifier.verify("", "auth:", now).unwrap_err(),
        JwtError::Missing
    );
    assert!(matches!(
        pki.verifier.verify("a.b", "auth:", now),
        Err(JwtError::Malformed(_))
    ));
    // Flip one signature byte.
    let (head, sig) = token.rsplit_once('.').unwrap();
    let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap();
    raw[10] ^= 1;
    let flipped = format!(
        "{head}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    assert_eq!(
        pki.verifier
            .verify(&flipped, "integrity:", now)
            .unwrap_err(),
        JwtError::BadSignature
    );
    // A signer certificate that expired yesterday, or from another CA.
    let old = pki
        .ca
        .issue_with_validity(
            &LeafKind::Signer,
            "old",
            OffsetDateTime::now_utc() - Duration::days(30),
            OffsetDateTime::now_utc() - Duration::days(1),
        )
        .unwrap();
    let old_signer = Signer::new(&identity(&old)).unwrap();
    let token = old_signer.sign(&json!({"iss": "integrity:old", "aud": AUD, "iat": now, "exp": now + 60, "jti": "1", "sub": "x"})).unwrap();
    assert!(matches!(
        pki.verifier.verify(&token, "integrity:", now),
        Err(JwtError::Certificate(_))
    ));
    let stranger = Authority::generate("other")
        .unwrap()
        .issue(&LeafKind::Signer, "other")
        .unwrap();
    let token = Signer::new(&identity(&stranger)).unwrap().sign(&json!({"iss": "integrity:other", "aud": AUD, "iat": now, "exp": now + 60, "jti": "1", "sub": "x"})).unwrap();
    assert!(matches!(
        pki.verifier.verify(&token, "integrity:", now),
        Err(JwtError::Certificate(_))
    ));
}
