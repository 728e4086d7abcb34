//! Claim sets of the two tokens.

use crate::api::{ActionId, PurposeOfUse};
use serde::{Deserialize, Serialize};

/// Claims of the `Authorization: Bearer` token (spec table 54).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthClaims {
    /// `auth:` + CN of the signing certificate.
    pub iss: String,
    /// Fiscal code of the user (CX format).
    pub sub: String,
    /// Gateway base URL including `/v1`.
    pub aud: String,
    /// Issued at (seconds).
    pub iat: u64,
    /// Expiry (seconds).
    pub exp: u64,
    /// Unique token id.
    pub jti: String,
}

/// Claims of the `FSE-JWT-Signature` token (spec table 55). Unknown claims are tolerated on
/// parse (the gateway ignores them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureClaims {
    /// `integrity:` + CN of the signing certificate.
    pub iss: String,
    /// Fiscal code of the user (CX format).
    pub sub: String,
    /// Gateway base URL including `/v1`.
    pub aud: String,
    /// Issued at (seconds).
    pub iat: u64,
    /// Expiry (seconds).
    pub exp: u64,
    /// Unique token id.
    pub jti: String,
    /// User's role.
    pub subject_role: String,
    /// Patient id (CX).
    pub person_id: String,
    /// Facility (XON for create/replace/update/delete).
    pub locality: String,
    /// Region code (table 48).
    pub subject_organization_id: String,
    /// Region name (table 48).
    pub subject_organization: String,
    /// Patient consent.
    pub patient_consent: bool,
    /// Purpose of use.
    pub purpose_of_use: PurposeOfUse,
    /// Action id.
    pub action_id: ActionId,
    /// `('LOINC^^2.16.840.1.113883.6.1')` (absent on delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_hl7_type: Option<String>,
    /// SHA-256 hex of the PDF (create, replace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_hash: Option<String>,
    /// Application id.
    pub subject_application_id: String,
    /// Application vendor.
    pub subject_application_vendor: String,
    /// Application version.
    pub subject_application_version: String,
    /// ITI-18 author slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_subject_as_author: Option<bool>,
}

/// Who is calling, about whom: the per-user/per-patient part of the claims, which the caller
/// supplies; the rest (iss, aud, times, jti, action, purpose, hashes) is derived per call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestProfile {
    /// User's fiscal code, CX-formatted (`CF^^^&2.16.840.1.113883.2.9.4.3.2&ISO`).
    pub subject: String,
    /// User's role (e.g. `AAS`).
    pub subject_role: String,
    /// Patient's id, CX-formatted.
    pub person_id: String,
    /// Facility, XON-formatted.
    pub locality: String,
    /// Region code, e.g. `090`.
    pub subject_organization_id: String,
    /// Region name, e.g. `Regione Toscana`.
    pub subject_organization: String,
    /// Patient consent.
    pub patient_consent: bool,
    /// Application id.
    pub subject_application_id: String,
    /// Application vendor.
    pub subject_application_vendor: String,
    /// Application version.
    pub subject_application_version: String,
}
