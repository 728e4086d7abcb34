//! Building and RS256-signing the pair.

use super::claims::{AuthClaims, RequestProfile, SignatureClaims};
use super::{b64url, unix_now};
use crate::api::Operation;
use crate::tls::{Identity, TlsError};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use base64::Engine;
use rustls_pki_types::PrivateKeyDer;
use serde::Serialize;

/// The two tokens of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    /// Value for `Authorization: Bearer …`.
    pub authorization: String,
    /// Value for `FSE-JWT-Signature`.
    pub signature: String,
}

/// Signs JWTs with the "signature" certificate's RSA key.
pub struct Signer {
    key: RsaKeyPair,
    /// The base64url JOSE header (`alg`, `typ`, `x5c`): the same for every token, encoded once.
    header: String,
    common_name: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("common_name", &self.common_name)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    x5c: &'a [String],
}

impl Signer {
    /// From an identity whose key is RSA.
    pub fn new(identity: &Identity) -> Result<Signer, TlsError> {
        let key = match &identity.key {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => return Err(TlsError::Malformed("JWT signing key must be RSA".into())),
        }
        .map_err(|e| TlsError::Malformed(format!("JWT signing key rejected: {e}")))?;
        let x5c: Vec<String> = identity
            .chain
            .iter()
            .map(|c| base64::engine::general_purpose::STANDARD.encode(c))
            .collect();
        let header = serde_json::to_vec(&Header {
            alg: "RS256",
            typ: "JWT",
            x5c: &x5c,
        })
        .map_err(|e| TlsError::Malformed(e.to_string()))?;
        Ok(Signer {
            key,
            header: b64url(&header),
            common_name: identity.common_name()?,
            rng: SystemRandom::new(),
        })
    }

    /// CN of the signing certificate (the `iss` suffix).
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// Signs any claim set as a compact JWS (RS256, `typ` JWT, `x5c` = chain).
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, TlsError> {
        let payload = serde_json::to_vec(claims).map_err(|e| TlsError::Malformed(e.to_string()))?;
        let mut input = String::with_capacity(self.header.len() + payload.len() * 4 / 3 + 350);
        input.push_str(&self.header);
        input.push('.');
        input.push_str(&b64url(&payload));
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, input.as_bytes(), &mut sig)
            .map_err(|e| TlsError::Malformed(format!("RSA signing failed: {e}")))?;
        input.push('.');
        input.push_str(&b64url(&sig));
        Ok(input)
    }

    /// Builds and signs the pair for one call. `resource_hl7_type` is the CDA's type code in
    /// the gateway's `('code^^2.16.840.1.113883.6.1')` form; `attachment_hash` the SHA-256 of
    /// the PDF, sent only on create and replace.
    pub fn pair(
        &self,
        profile: &RequestProfile,
        operation: Operation,
        audience: &str,
        resource_hl7_type: Option<&str>,
        attachment_hash: Option<&[u8; 32]>,
        ttl_seconds: u64,
    ) -> Result<TokenPair, TlsError> {
        let iat = unix_now();
        let exp = iat + ttl_seconds;
        let auth = AuthClaims {
            iss: format!("auth:{}", self.common_name),
            sub: profile.subject.clone(),
            aud: audience.to_owned(),
            iat,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let claims = SignatureClaims {
            iss: format!("integrity:{}", self.common_name),
            sub: profile.subject.clone(),
            aud: audience.to_owned(),
            iat,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
            subject_role: profile.subject_role.clone(),
            person_id: profile.person_id.clone(),
            locality: profile.locality.clone(),
            subject_organization_id: profile.subject_organization_id.clone(),
            subject_organization: profile.subject_organization.clone(),
            patient_consent: profile.patient_consent,
            purpose_of_use: operation.purpose_of_use(),
            action_id: operation.action_id(),
            resource_hl7_type: if operation == Operation::Delete {
                None
            } else {
                resource_hl7_type.map(str::to_owned)
            },
            attachment_hash: if operation.needs_attachment_hash() {
                attachment_hash.map(hex::encode)
            } else {
                None
            },
            subject_application_id: profile.subject_application_id.clone(),
            subject_application_vendor: profile.subject_application_vendor.clone(),
            subject_application_version: profile.subject_application_version.clone(),
            use_subject_as_author: None,
        };
        Ok(TokenPair {
            authorization: self.sign(&auth)?,
            signature: self.sign(&claims)?,
        })
    }
}

/// `resource_hl7_type` for a LOINC document type code.
pub fn resource_hl7_type(loinc: &str) -> String {
    format!("('{loinc}^^2.16.840.1.113883.6.1')")
}
