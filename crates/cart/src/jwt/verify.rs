//! Verification of a received token: RS256/384/512 signature by the `x5c` certificate, that
//! certificate chaining to the configured CA, `iss`/`aud`/`exp`, then the claims an operation
//! requires.

use super::b64url_decode;
use super::claims::SignatureClaims;
use crate::api::{enums::organization_name, Operation, SubjectRole};
use base64::Engine;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use serde_json::Value;
use webpki::aws_lc_rs as algs;

/// Why a token is not authentic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Header absent or empty.
    #[error("token missing")]
    Missing,
    /// Not three base64url parts of JSON.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `alg` other than RS256/RS384/RS512, or `typ` not JWT.
    #[error("unsupported header: {0}")]
    Header(String),
    /// `x5c` absent, unparsable, expired or not issued by the configured CA.
    #[error("signing certificate rejected: {0}")]
    Certificate(String),
    /// Signature does not verify with the `x5c` key.
    #[error("signature does not verify")]
    BadSignature,
    /// `exp` in the past.
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// Verification time.
        now: u64,
    },
    /// `aud` is not this gateway.
    #[error("aud {found:?} is not {expected:?}")]
    Audience {
        /// What the gateway expects.
        expected: String,
        /// What the token says.
        found: String,
    },
    /// `iss` is not the prefix + the certificate's CN.
    #[error("iss {found:?} is not {expected:?}")]
    Issuer {
        /// Prefix + CN.
        expected: String,
        /// What the token says.
        found: String,
    },
    /// A reserved claim is absent or of the wrong type.
    #[error("claim {0} missing or not of the right type")]
    Claim(&'static str),
}

/// Why the claims do not fit the operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// A mandatory claim is absent (gateway: `/msg/mandatory-element-token`).
    #[error("claim {0} missing")]
    Missing(String),
    /// A claim has a value the gateway refuses (gateway: `/msg/jwt-validation`).
    #[error("claim {claim}: {reason}")]
    Invalid {
        /// The claim.
        claim: String,
        /// Why.
        reason: String,
    },
}

/// A token that passed [`Verifier::verify`].
#[derive(Debug, Clone)]
pub struct Verified {
    /// The payload.
    pub claims: Value,
    /// CN of the signing certificate.
    pub signer_cn: String,
}

/// Checks tokens against a CA and an audience.
#[derive(Debug)]
pub struct Verifier {
    anchors: Vec<rustls_pki_types::TrustAnchor<'static>>,
    audience: String,
}

static CHAIN_ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
    algs::RSA_PKCS1_2048_8192_SHA256,
    algs::RSA_PKCS1_2048_8192_SHA384,
    algs::RSA_PKCS1_2048_8192_SHA512,
    algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    algs::ECDSA_P256_SHA256,
    algs::ECDSA_P384_SHA384,
    algs::ED25519,
];

impl Verifier {
    /// Trusts `ca` certificates; accepts tokens whose `aud` is `audience`.
    pub fn new(
        ca: &[CertificateDer<'_>],
        audience: impl Into<String>,
    ) -> Result<Verifier, JwtError> {
        let anchors = ca
            .iter()
            .map(|c| {
                webpki::anchor_from_trusted_cert(c)
                    .map(|a| a.to_owned())
                    .map_err(|e| JwtError::Certificate(format!("CA certificate: {e:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Verifier {
            anchors,
            audience: audience.into(),
        })
    }

    /// The accepted audience.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies `token`; `iss_prefix` is `auth:` or `integrity:`; `now` in seconds.
    pub fn verify(&self, token: &str, iss_prefix: &str, now: u64) -> Result<Verified, JwtError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(JwtError::Missing);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed("not three dot-separated parts".into()));
        };
        let header: Value = b64url_decode(h)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| JwtError::Malformed("header is not base64url JSON".into()))?;
        let claims: Value = b64url_decode(p)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| JwtError::Malformed("payload is not base64url JSON".into()))?;
        let sig = b64url_decode(s)
            .ok_or_else(|| JwtError::Malformed("signature is not base64url".into()))?;

        let alg: &dyn SignatureVerificationAlgorithm =
            match header.get("alg").and_then(Value::as_str) {
                Some("RS256") => algs::RSA_PKCS1_2048_8192_SHA256,
                Some("RS384") => algs::RSA_PKCS1_2048_8192_SHA384,
                Some("RS512") => algs::RSA_PKCS1_2048_8192_SHA512,
                other => return Err(JwtError::Header(format!("alg {other:?}"))),
            };
        match header.get("typ").and_then(Value::as_str) {
            Some("JWT") | None => {}
            Some(other) => return Err(JwtError::Header(format!("typ {other:?}"))),
        }
        // The spec shows x5c as an array (RFC 7515); the dispatcher's sample has a string.
        let x5c: Vec<&str> = match header.get("x5c") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let certs = x5c
            .iter()
            .map(|c| {
                base64::engine::general_purpose::STANDARD
                    .decode(c)
                    .map(CertificateDer::from)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| JwtError::Certificate("x5c is not base64 DER".into()))?;
        let Some(leaf) = certs.first() else {
            return Err(JwtError::Certificate("x5c missing".into()));
        };
        let ee = webpki::EndEntityCert::try_from(leaf)
            .map_err(|e| JwtError::Certificate(format!("x5c: {e:?}")))?;
        ee.verify_for_usage(
            CHAIN_ALGS,
            &self.anchors,
            &certs[1..],
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(now)),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(|e| JwtError::Certificate(format!("{e:?}")))?;
        let signed_len = h.len() + 1 + p.len();
        ee.verify_signature(alg, &token.as_bytes()[..signed_len], &sig)
            .map_err(|_| JwtError::BadSignature)?;

        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or(JwtError::Claim("exp"))?;
        claims
            .get("iat")
            .and_then(Value::as_u64)
            .ok_or(JwtError::Claim("iat"))?;
        if exp <= now {
            return Err(JwtError::Expired { exp, now });
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.audience,
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(&self.audience)),
            _ => return Err(JwtError::Claim("aud")),
        };
        if !aud_ok {
            return Err(JwtError::Audience {
                expected: self.audience.clone(),
                found: claims.get("aud").map(Value::to_string).unwrap_or_default(),
            });
        }
        let signer_cn = crate::tls::common_name(leaf)
            .ok_or_else(|| JwtError::Certificate("x5c certificate has no CN".into()))?;
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(JwtError::Claim("iss"))?;
        let expected = format!("{iss_prefix}{signer_cn}");
        if iss != expected {
            return Err(JwtError::Issuer {
                expected,
                found: iss.to_owned(),
            });
        }
        match claims.get("jti") {
            Some(Value::String(_)) | Some(Value::Number(_)) => {}
            _ => return Err(JwtError::Claim("jti")),
        }
        if claims.get("sub").and_then(Value::as_str).is_none() {
            return Err(JwtError::Claim("sub"));
        }
        Ok(Verified { claims, signer_cn })
    }
}

fn invalid(claim: &str, reason: impl Into<String>) -> ClaimError {
    ClaimError::Invalid {
        claim: claim.to_owned(),
        reason: reason.into(),
    }
}

/// Whether `locality` has the XON shape the gateway demands on create/replace/update/delete:
/// `NAME^^^^^&OID&ISO^^^^CODE`.
pub fn is_xon(value: &str) -> bool {
    let fields: Vec<&str> = value.split('^').collect();
    if fields.len() != 10 || fields[0].trim().is_empty() || fields[9].trim().is_empty() {
        return false;
    }
    let assigning: Vec<&str> = fields[5].split('&').collect();
    assigning.len() == 3 && assigning[0].is_empty() && is_oid(assigning[1]) && assigning[2] == "ISO"
}

fn is_oid(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether an id is CX-formatted with the fiscal-code OID (`&amp;` as in the Ministry's samples
/// is accepted too).
pub fn is_cx_fiscal_code(value: &str) -> bool {
    let v = value.replace("&amp;", "&");
    match v.split_once("^^^&") {
        Some((cf, rest)) => {
            !cf.is_empty()
                && cf.bytes().all(|b| b.is_ascii_alphanumeric())
                && rest.ends_with("&ISO")
                && is_oid(&rest[..rest.len() - 4])
        }
        None => false,
    }
}

/// Parses `('code^^2.16.840.1.113883.6.1')` into the LOINC code.
pub fn parse_resource_hl7_type(value: &str) -> Option<&str> {
    let inner = value.strip_prefix("('")?.strip_suffix("')")?;
    let (code, system) = inner.split_once("^^")?;
    (system == "2.16.840.1.113883.6.1" && !code.is_empty()).then_some(code)
}

/// Checks the signature token's claims for `operation` (after [`Verifier::verify`]).
pub fn check_operation_claims(
    claims: &Value,
    operation: Operation,
) -> Result<SignatureClaims, ClaimError> {
    let mut required = vec![
        "sub",
        "subject_role",
        "purpose_of_use",
        "iss",
        "locality",
        "subject_organization_id",
        "subject_organization",
        "aud",
        "patient_consent",
        "action_id",
        "person_id",
        "subject_application_id",
        "subject_application_vendor",
        "subject_application_version",
        "iat",
        "exp",
        "jti",
    ];
    if operation.needs_resource_type() {
        required.push("resource_hl7_type");
    }
    if operation.needs_attachment_hash() {
        required.push("attachment_hash");
    }
    for name in required {
        match claims.get(name) {
            None | Some(Value::Null) => return Err(ClaimError::Missing(name.to_owned())),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(ClaimError::Missing(name.to_owned()))
            }
            _ => {}
        }
    }
    let mut normalized = claims.clone();
    if let Some(Value::Number(n)) = normalized.get("jti").cloned() {
        normalized["jti"] = Value::String(n.to_string());
    }
    let parsed: SignatureClaims =
        serde_json::from_value(normalized).map_err(|e| invalid("payload", e.to_string()))?;
    let is_status = matches!(
        operation,
        Operation::StatusByWorkflow | Operation::StatusByTrace
    );
    if !is_status && parsed.action_id != operation.action_id() {
        return Err(invalid(
            "action_id",
            format!("{} not allowed for {operation}", parsed.action_id),
        ));
    }
    if !is_status && !operation.accepts_purpose(parsed.purpose_of_use) {
        return Err(invalid(
            "purpose_of_use",
            format!("{} not allowed for {operation}", parsed.purpose_of_use),
        ));
    }
    if parsed.subject_role.parse::<SubjectRole>().is_err() {
        return Err(invalid(
            "subject_role",
            format!("{:?} is not in the role table", parsed.subject_role),
        ));
    }
    if !is_cx_fiscal_code(&parsed.person_id) {
        return Err(invalid(
            "person_id",
            "not CF^^^&2.16.840.1.113883.2.9.4.3.2&ISO",
        ));
    }
    match organization_name(&parsed.subject_organization_id) {
        None => {
            return Err(invalid(
                "subject_organization_id",
                format!(
                    "{:?} is not in the organisation table",
                    parsed.subject_organization_id
                ),
            ))
        }
        Some(name) if name != parsed.subject_organization => {
            return Err(invalid(
                "subject_organization",
                format!(
                    "{:?} does not match {} ({name})",
                    parsed.subject_organization, parsed.subject_organization_id
                ),
            ))
        }
        Some(_) => {}
    }
    if operation.needs_xon_locality() && !is_xon(&parsed.locality) {
        return Err(invalid("locality", "not XON (NAME^^^^^&OID&ISO^^^^CODE)"));
    }
    if let Some(t) = &parsed.resource_hl7_type {
        if operation.needs_resource_type() && parse_resource_hl7_type(t).is_none() {
            return Err(invalid(
                "resource_hl7_type",
                "not ('code^^2.16.840.1.113883.6.1')",
            ));
        }
    }
    if let Some(h) = &parsed.attachment_hash {
        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("attachment_hash", "not a SHA-256 hex digest"));
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xon_and_cx_shapes() {
        assert!(is_xon(
            "LABORATORIO DI PROVA^^^^^&2.16.840.1.113883.2.9.4.1.3&ISO^^^^111101123456"
        ));
        assert!(!is_xon("201123456"));
        assert!(!is_xon("X^^^^^&2.16.840.1.113883.2.9.4.1.3&IS^^^^1"));
        assert!(is_cx_fiscal_code(
            "SSSMNN75B01F257L^^^&amp;2.16.840.1.113883.2.9.4.3.2&amp;ISO"
        ));
        assert!(is_cx_fiscal_code(
            "RSSMRA22A01A399Z^^^&2.16.840.1.113883.2.9.4.3.2&ISO"
        ));
        assert!(!is_cx_fiscal_code("BMTBTS01A01I526W"));
        assert_eq!(
            parse_resource_hl7_type("('11502-2^^2.16.840.1.113883.6.1')"),
            Some("11502-2")
        );
        assert_eq!(parse_resource_hl7_type("11502-2"), None);
    }
}
