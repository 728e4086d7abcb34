//! The gateway's JWT pair (spec §2.3, §15.1): an `Authorization: Bearer` token (`iss` =
//! `auth:` + signer CN) and an `FSE-JWT-Signature` token (`iss` = `integrity:` + signer CN) with
//! the custom claims. Both are RS256-signed with the "signature" certificate, which travels in
//! the header's `x5c`.
//!
//! [`Signer`] builds and signs a pair per call; [`Verifier`] checks signature, certificate
//! chain, `iss`/`aud`/`exp` and the claims each [`Operation`](crate::api::Operation) requires.

mod claims;
mod sign;
mod verify;

pub use claims::{AuthClaims, RequestProfile, SignatureClaims};
pub use sign::{resource_hl7_type, Signer, TokenPair};
pub use verify::{
    check_operation_claims, is_cx_fiscal_code, is_xon, parse_resource_hl7_type, ClaimError,
    JwtError, Verified, Verifier,
};

use base64::Engine;

pub(crate) fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
