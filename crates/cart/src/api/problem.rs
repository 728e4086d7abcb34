//! RFC 7807 `application/problem+json` bodies with the gateway's `type` URIs (spec §14,
//! error catalogue).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The gateway's problem `type` values (spec §14.1.1 plus the few the dispatcher also emits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProblemType {
    /// `/msg/cda-element`: no CDA could be extracted from the PDF (400).
    CdaElement,
    /// `/msg/syntax`: XSD error (400).
    Syntax,
    /// `/msg/semantic`: schematron error (422).
    Semantic,
    /// `/msg/vocabulary`: terminology error (400).
    Vocabulary,
    /// `/msg/cda-match`: publication of a CDA that was not validated (400).
    CdaMatch,
    /// `/msg/empty-file`: empty `file` part (400).
    EmptyFile,
    /// `/msg/document-type`: `file` is not a PDF (415).
    DocumentType,
    /// `/msg/document-hash`: `attachment_hash` differs from the PDF's SHA-256 (400).
    DocumentHash,
    /// `/msg/sign-error`: the PDF is unsigned, or its last signature does not verify or has no
    /// signing time `/M` (400).
    SignError,
    /// `/msg/mandatory-element`: a required request field is missing or invalid (400).
    MandatoryElement,
    /// `/msg/invalid-format`: a request field has a wrong format (400).
    InvalidFormat,
    /// `/msg/mandatory-element-token`: JWT invalid or missing a claim (403).
    MandatoryElementToken,
    /// `/msg/jwt-validation`: a JWT claim has a wrong value (403).
    JwtValidation,
    /// `/msg/fhir-mapping-type` (400).
    FhirMappingType,
    /// `/msg/generic-timeout` (504).
    GenericTimeout,
    /// `/msg/workflow-id-error-extraction` (400).
    WorkflowIdErrorExtraction,
    /// `msg/record-not-found` (404; the gateway spells it without the leading slash).
    RecordNotFound,
    /// `/msg/ini-error` (status from INI).
    IniError,
    /// `/msg/generic-error` (500).
    GenericError,
    /// `/msg/missing-token` (403).
    MissingToken,
    /// `/msg/eds-error` (404).
    EdsError,
    /// `/msg/max-day-limit-exceed` (400).
    MaxDayLimitExceed,
    /// `/msg/validator`: a request check of the dispatcher failed, e.g. `tipoDocumentoLivAlto`
    /// not correlated with the document type (400).
    Validator,
    /// `/msg/id-doc`: `identificativoDoc` (or the path `idDoc`) without `^` and a non-empty
    /// part after it (400).
    IdDoc,
    /// Any other `type` (e.g. from GovWay, the front-end proxy).
    Other(String),
}

const TABLE: &[(ProblemType, &str, &str, u16)] = &[
    (
        ProblemType::CdaElement,
        "/msg/cda-element",
        "Errore in fase di estrazione del CDA.",
        400,
    ),
    (
        ProblemType::Syntax,
        "/msg/syntax",
        "Errore di sintassi.",
        400,
    ),
    (
        ProblemType::Semantic,
        "/msg/semantic",
        "Errore semantico.",
        422,
    ),
    (
        ProblemType::Vocabulary,
        "/msg/vocabulary",
        "Errore vocabolario.",
        400,
    ),
    (
        ProblemType::CdaMatch,
        "/msg/cda-match",
        "Errore in fase di recupero dell'esito della verifica.",
        400,
    ),
    (
        ProblemType::EmptyFile,
        "/msg/empty-file",
        "File vuoto.",
        400,
    ),
    (
        ProblemType::DocumentType,
        "/msg/document-type",
        "Il documento non è pdf.",
        415,
    ),
    (
        ProblemType::DocumentHash,
        "/msg/document-hash",
        "Verifica hash fallita.",
        400,
    ),
    (
        ProblemType::SignError,
        "/msg/sign-error",
        "Errore nella verifica della firma del documento.",
        400,
    ),
    (
        ProblemType::MandatoryElement,
        "/msg/mandatory-element",
        "Campo obbligatorio non presente.",
        400,
    ),
    (
        ProblemType::InvalidFormat,
        "/msg/invalid-format",
        "Formato campo non valido.",
        400,
    ),
    (
        ProblemType::MandatoryElementToken,
        "/msg/mandatory-element-token",
        "Token JWT non valido.",
        403,
    ),
    (
        ProblemType::JwtValidation,
        "/msg/jwt-validation",
        "Campo token JWT non valido.",
        403,
    ),
    (
        ProblemType::FhirMappingType,
        "/msg/fhir-mapping-type",
        "Mapping fhir fallito.",
        400,
    ),
    (
        ProblemType::GenericTimeout,
        "/msg/generic-timeout",
        "Generic timeout.",
        504,
    ),
    (
        ProblemType::WorkflowIdErrorExtraction,
        "/msg/workflow-id-error-extraction",
        "Errore in fase di estrazione del workflow id.",
        400,
    ),
    (
        ProblemType::RecordNotFound,
        "msg/record-not-found",
        "Record non trovato.",
        404,
    ),
    (ProblemType::IniError, "/msg/ini-error", "Ini error.", 502),
    (
        ProblemType::GenericError,
        "/msg/generic-error",
        "Errore generico.",
        500,
    ),
    (
        ProblemType::MissingToken,
        "/msg/missing-token",
        "Token non fornito.",
        403,
    ),
    (ProblemType::EdsError, "/msg/eds-error", "Eds error.", 404),
    (
        ProblemType::MaxDayLimitExceed,
        "/msg/max-day-limit-exceed",
        "Error: document exceeded the maximum period to be published.",
        400,
    ),
    (
        ProblemType::Validator,
        "/msg/validator",
        "Errore di validazione",
        400,
    ),
    (
        ProblemType::IdDoc,
        "/msg/id-doc",
        "Campo id documento non valido",
        400,
    ),
];

impl ProblemType {
    fn row(&self) -> Option<&'static (ProblemType, &'static str, &'static str, u16)> {
        TABLE.iter().find(|row| row.0 == *self)
    }

    /// The `type` URI.
    pub fn uri(&self) -> &str {
        match self {
            ProblemType::Other(s) => s,
            known => known.row().map(|r| r.1).unwrap_or_default(),
        }
    }

    /// The catalogue's `title`.
    pub fn title(&self) -> &str {
        self.row().map(|r| r.2).unwrap_or("")
    }

    /// The catalogue's HTTP status (INI errors carry INI's own status; 502 stands in).
    pub fn status(&self) -> u16 {
        self.row().map(|r| r.3).unwrap_or(500)
    }

    /// Parses a `type` value (tolerating the leading-slash variants).
    pub fn from_uri(uri: &str) -> ProblemType {
        let bare = uri.trim_start_matches('/');
        TABLE
            .iter()
            .find(|row| row.1.trim_start_matches('/') == bare)
            .map(|row| row.0.clone())
            .unwrap_or_else(|| ProblemType::Other(uri.to_owned()))
    }
}

impl fmt::Display for ProblemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uri())
    }
}

impl Serialize for ProblemType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.uri())
    }
}

impl<'de> Deserialize<'de> for ProblemType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as Deserialize>::deserialize(d)?;
        Ok(ProblemType::from_uri(&s))
    }
}

/// An `ErrorResponseDTO` / `ValidationErrorResponseDTO`. Unknown fields are kept out of the way
/// (GovWay adds `govway_id`), so parsing never fails on them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Trace id.
    #[serde(rename = "traceID", default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Span id.
    #[serde(rename = "spanID", default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// Problem type.
    #[serde(rename = "type")]
    pub problem_type: ProblemType,
    /// Short title.
    #[serde(default)]
    pub title: String,
    /// Detail (may contain the validator's messages).
    #[serde(default)]
    pub detail: String,
    /// HTTP status.
    pub status: u16,
    /// Occurrence URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Workflow instance id (validation errors carry it).
    #[serde(
        rename = "workflowInstanceId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workflow_instance_id: Option<String>,
}

impl Problem {
    /// A problem with the catalogue's title and status.
    pub fn new(problem_type: ProblemType, detail: impl Into<String>) -> Problem {
        Problem {
            trace_id: None,
            span_id: None,
            title: problem_type.title().to_owned(),
            status: problem_type.status(),
            problem_type,
            detail: detail.into(),
            instance: None,
            workflow_instance_id: None,
        }
    }

    /// Overrides the HTTP status (e.g. 400 vs 415 for `/msg/document-type`).
    pub fn with_status(mut self, status: u16) -> Problem {
        self.status = status;
        self
    }

    /// Sets the `instance` URI.
    pub fn with_instance(mut self, instance: impl Into<String>) -> Problem {
        self.instance = Some(instance.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({}): {}",
            self.status, self.problem_type, self.title, self.detail
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_round_trip() {
        for (t, uri, _, _) in TABLE {
            assert_eq!(ProblemType::from_uri(uri), *t);
            assert_eq!(t.uri(), *uri);
        }
        assert_eq!(
            ProblemType::from_uri("/msg/record-not-found"),
            ProblemType::RecordNotFound
        );
        assert_eq!(ProblemType::Semantic.status(), 422);
        assert_eq!(ProblemType::DocumentType.status(), 415);
    }

    #[test]
    fn parses_spec_examples() {
        let ko = r#"{"traceID":"7fee3f3e2fc75b30","spanID":"7fee3f3e2fc75b30","type":"/msg/cda-element",
          "title":"Errore in fase di estrazione del CDA.","detail":"Errore in fase di estrazione del CDA.",
          "status":400,"instance":"/msg/cda-extraction"}"#;
        let p: Problem = serde_json::from_str(ko).unwrap();
        assert_eq!(p.problem_type, ProblemType::CdaElement);
        let govway = r#"{"type":"https://govway.org/handling-errors/401/TokenAuthenticationFailed",
          "title":"TokenAuthenticationFailed","status":401,"detail":"x","govway_id":"1"}"#;
        let p: Problem = serde_json::from_str(govway).unwrap();
        assert!(matches!(p.problem_type, ProblemType::Other(_)));
    }
}
