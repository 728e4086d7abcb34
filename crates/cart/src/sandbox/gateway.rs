//! Request handling of the sandbox: routing, the JWT pair, multipart parsing, the gateway's
//! order of checks, state changes and the problem+json answers. Transport-free, so it is
//! testable without sockets; [`super::server`] puts it behind rustls.
//!
//! Order of checks of a validation (the gateway's): JWT pair and claims → `activity` → PDF
//! part → `cda.xml` extracted (`/msg/cda-element`) → JWT↔CDA coherence (403
//! `/msg/jwt-validation`, instance `/jwt-person-id` or `/jwt-document-type`, the instances of
//! the gateway's `PERSON_ID_MISMATCH` / `DOCUMENT_TYPE_MISMATCH`) → XSD (400 `/msg/syntax`) →
//! schematron (422 `/msg/semantic`) → terminology (400 `/msg/vocabulary`). A publication adds
//! the `identificativoDoc` form (after the body, 400 `/msg/id-doc`), `attachment_hash` (before
//! extraction), then the PAdES signature, the correlation of `tipoDocumentoLivAlto` with the
//! token's `resource_hl7_type` (400 `/msg/validator`) and the remembered `VALIDATION` (after the
//! CDA checks). A replace, delete or metadata update checks its path id's form before the
//! tokens (400 `/msg/id-doc`); a metadata update checks the correlation after its body. The
//! form and the table are [`crate::api::correlation`]'s (the dispatcher's `release` branch,
//! 2026).
//!
//! Statuses, against spec v2.22, its OpenAPI (`swagger_gtw.yaml`) and error catalogue:
//! - an invalid JWT (signature, expiry, `aud`, missing claim) is 403
//!   `/msg/mandatory-element-token`: the spec's table gives 403 for "token jwt mancante o non
//!   valido"; 401 is listed only as a generic "Unauthorized" (the front proxy's);
//! - create/replace answer 202, and so do delete and metadata update (spec v2.17: "§8.2,
//!   §9.2 aggiunto status code 202"; the OpenAPI lists 200 and 202, the sandbox sends 202);
//! - choices where the spec is silent: an unsigned PDF, or one whose last signature fails, on
//!   publication is 400 `/msg/sign-error` (the catalogue has no signature entry; the spec only
//!   requires a PAdES-signed PDF); a second create of a published `identificativoDoc` is 409
//!   `/msg/generic-error` (the OpenAPI lists 409 "Conflict" without a type); an unknown route is
//!   404 `msg/record-not-found`, a known route with another method 405.

// A refusal *is* the answer on this path (one per request), not an exceptional error: it is
// returned by value, as the gateway builds its problem+json.
#![allow(clippy::result_large_err)]

use super::checks::{cda_hash, CdaValidator, CdaVerdict, PdfInspector, SignatureVerdict};
use super::store::{CartLogEntry, DocumentRecord, Store};
use crate::api::{
    correlation, Activity, GatewayResponse, InjectionMode, MetadataRequest, Operation, Problem,
    ProblemType, PublicationRequest, ReplaceRequest, StatusEvent, TransactionInspection,
    ValidationRequest, FSE_JWT_SIGNATURE,
};
use crate::jwt::{
    check_operation_claims, unix_now, ClaimError, JwtError, SignatureClaims, Verifier,
};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Largest request body accepted (bytes).
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// Magic `identificativoDoc` prefixes of the accreditation kit.
pub mod magic {
    /// Publish without a previous `VALIDATION`.
    pub const SKIP_VALIDATION: &str = "SKIP_VALIDATION_";
    /// Answer 504 `/msg/generic-timeout` after a delay.
    pub const CRASH_TIMEOUT: &str = "CRASH_TIMEOUT_";
    /// Accept, then fail the transaction at INI.
    pub const CRASH_INI: &str = "CRASH_INI_";
    /// Accept, then fail the transaction at EDS.
    pub const CRASH_EDS: &str = "CRASH_EDS_";
    /// Accept, then fail the EDS workflow step.
    pub const CRASH_WF_EDS: &str = "CRASH_WF_EDS_";
}

/// A request as the transport received it.
#[derive(Debug, Clone)]
pub struct Request {
    /// HTTP method.
    pub method: String,
    /// Path, still percent-encoded, without the query.
    pub path: String,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Whole body.
    pub body: Bytes,
}

/// The answer to send.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `application/json` or `application/problem+json`.
    pub content_type: &'static str,
    /// JSON body.
    pub body: Vec<u8>,
    /// Fresh `X-CART-id`.
    pub x_cart_id: String,
}

/// Tunables of the gateway logic.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// Path prefix before `/v1` (empty, or e.g. `/govway/rest/in/FSE/gateway`).
    pub prefix: String,
    /// Delay before the 504 of `CRASH_TIMEOUT_`.
    pub crash_timeout_delay: Duration,
    /// How long a `VALIDATION` stays usable for a publication (default: the gateway's 5 days,
    /// [`super::store::VALIDATION_TTL_SECONDS`]).
    pub validation_ttl: Duration,
    /// Check the JWT↔CDA coherence (`person_id`, `resource_hl7_type`) as the gateway does.
    pub jwt_cda_coherence: bool,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            prefix: String::new(),
            crash_timeout_delay: Duration::from_secs(2),
            validation_ttl: Duration::from_secs(super::store::VALIDATION_TTL_SECONDS as u64),
            jwt_cda_coherence: true,
        }
    }
}

/// The sandbox gateway.
pub struct Gateway {
    options: GatewayOptions,
    verifier: Verifier,
    store: Store,
    validator: Arc<dyn CdaValidator>,
    inspector: Arc<dyn PdfInspector>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

struct Ctx {
    x_cart_id: String,
    trace_id: String,
    operation: Option<Operation>,
    id_doc: Option<String>,
    wii: Option<String>,
}

enum Success {
    Accepted(u16, GatewayResponse),
    Inspection(TransactionInspection),
    Health,
}

type Outcome = Result<Success, Problem>;

fn hex16() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn expiring_rfc3339(days: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(days))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn mandatory(field: &str) -> Problem {
    Problem::new(
        ProblemType::MandatoryElement,
        format!("Il campo {field} deve essere valorizzato"),
    )
    .with_instance("/request-missing-field")
}

fn jwt_problem(header: &str, e: JwtError) -> Problem {
    match e {
        JwtError::Missing => Problem::new(
            ProblemType::MissingToken,
            format!("Attenzione il jwt fornito risulta essere vuoto ({header})"),
        )
        .with_instance("/missing-jwt"),
        JwtError::Claim(name) => Problem::new(
            ProblemType::MandatoryElementToken,
            format!("{header}: claim {name} mancante"),
        )
        .with_instance("/jwt-mandatory-field-missing"),
        other => Problem::new(
            ProblemType::MandatoryElementToken,
            format!("{header}: {other}"),
        )
        .with_instance("/jwt-mandatory-field-malformed"),
    }
}

fn claim_problem(e: ClaimError) -> Problem {
    match e {
        ClaimError::Missing(name) => Problem::new(
            ProblemType::MandatoryElementToken,
            format!("FSE-JWT-Signature: claim {name} mancante"),
        )
        .with_instance("/jwt-mandatory-field-missing"),
        ClaimError::Invalid { claim, reason } => {
            let instance = if claim == "person_id" {
                "/jwt-person-id"
            } else {
                "/jwt-mandatory-field-malformed"
            };
            Problem::new(
                ProblemType::JwtValidation,
                format!("FSE-JWT-Signature: {claim}: {reason}"),
            )
            .with_instance(instance)
        }
    }
}

fn strict_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| {
        Problem::new(
            ProblemType::MandatoryElement,
            format!("requestBody non valido: {e}"),
        )
        .with_instance("/request-missing-field")
    })
}

/// `2.16.840.1.113883.2.9.2.{org}.4.4.{hash}.{10 hex}^^^^urn:ihe:iti:xdw:2013:workflowInstanceId`.
pub fn mint_workflow_instance_id(organization_id: &str, hash_hex: &str) -> String {
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..10];
    format!("2.16.840.1.113883.2.9.2.{organization_id}.4.4.{hash_hex}.{suffix}^^^^urn:ihe:iti:xdw:2013:workflowInstanceId")
}

struct Parts {
    request_body: Option<Bytes>,
    file: Option<Bytes>,
}

async fn multipart(req: &Request) -> Result<Parts, Problem> {
    let content_type = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type).map_err(|_| mandatory("requestBody"))?;
    let body = req.body.clone();
    let stream =
        futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut parts = Parts {
        request_body: None,
        file: None,
    };
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                return Err(Problem::new(
                    ProblemType::MandatoryElement,
                    format!("multipart non valido: {e}"),
                )
                .with_instance("/request-missing-field"))
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        let data = field.bytes().await.map_err(|e| {
            Problem::new(
                ProblemType::MandatoryElement,
                format!("multipart non valido: {e}"),
            )
            .with_instance("/request-missing-field")
        })?;
        match name.as_str() {
            "requestBody" => parts.request_body = Some(data),
            "file" => parts.file = Some(data),
            _ => {}
        }
    }
    Ok(parts)
}

fn check_pdf(file: Option<Bytes>) -> Result<Bytes, Problem> {
    let file = file.ok_or_else(|| mandatory("file"))?;
    if file.is_empty() {
        return Err(Problem::new(ProblemType::EmptyFile, "File vuoto")
            .with_instance("/empty-multipart-file"));
    }
    if !file.starts_with(b"%PDF") {
        return Err(
            Problem::new(ProblemType::DocumentType, "Il documento non è pdf.")
                .with_instance("/multipart-file"),
        );
    }
    Ok(file)
}

fn percent_decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// Runs a PDF parser on untrusted bytes; a panic inside it becomes an error, not a dropped
/// connection.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("PDF parser failed on this input".to_owned()))
}

/// The gateway's JWT↔CDA coherence check, after extraction and before the XSD: the fiscal code
/// of `person_id` must be a `patientRole/id/@extension` (else 403 `/msg/jwt-validation`,
/// instance `/jwt-person-id`) and `resource_hl7_type` must be `('CODE^^CODESYSTEM')` of the
/// document's first `code` (else the same type with instance `/jwt-document-type`), the
/// instances of the gateway's `PERSON_ID_MISMATCH` and `DOCUMENT_TYPE_MISMATCH`. A CDA that is
/// not well-formed XML cannot be checked: the XSD stage's `/msg/syntax` (400).
fn coherence(claims: &SignatureClaims, cda: &[u8]) -> Result<(), Problem> {
    use fse_cda::validate::{check_jwt_coherence, JwtMismatch};
    let doc = fse_cda::xml::parse(cda).map_err(|e| {
        Problem::new(ProblemType::Syntax, format!("CDA non ben formato: {e}"))
            .with_instance("/validation/error")
    })?;
    let hl7_type = claims.resource_hl7_type.as_deref();
    let mismatch = check_jwt_coherence(&doc, &claims.person_id, hl7_type.unwrap_or_default())
        .into_iter()
        // An operation whose token need not carry resource_hl7_type is not checked on it.
        .find(|m| hl7_type.is_some() || !matches!(m, JwtMismatch::ResourceHl7Type { .. }));
    match mismatch {
        None => Ok(()),
        Some(JwtMismatch::PersonId {
            fiscal_code,
            patient_ids,
        }) => Err(Problem::new(
            ProblemType::JwtValidation,
            format!(
                "person_id {fiscal_code:?} diverso dal paziente del CDA ({})",
                patient_ids.join(", ")
            ),
        )
        .with_instance("/jwt-person-id")),
        Some(JwtMismatch::ResourceHl7Type { value, expected }) => Err(Problem::new(
            ProblemType::JwtValidation,
            format!(
                "resource_hl7_type {value} diverso dal tipo documento del CDA {}",
                expected.as_deref().unwrap_or("(assente)")
            ),
        )
        .with_instance("/jwt-document-type")),
    }
}

/// The dispatcher's check of a path `idDoc` (replace, delete, metadata update), made before
/// the tokens': `root^extension` (400 `/msg/id-doc`; a replace's instance
/// `/invalid-req-id`, the others' `/invalid-id`).
fn path_id_check(op: Operation, id: &str) -> Result<(), Problem> {
    if correlation::is_valid_document_id(id) {
        return Ok(());
    }
    let (detail, instance) = if op == Operation::Replace {
        (correlation::INVALID_REQUEST_ID_DOC, "/invalid-req-id")
    } else {
        (correlation::INVALID_ID_DOC, "/invalid-id")
    };
    Err(Problem::new(ProblemType::IdDoc, detail).with_instance(instance))
}

/// The dispatcher's `CorrelationDocumentTypeValidator`: `tipoDocumentoLivAlto` must be the
/// class the table gives for the LOINC code of the token's `resource_hl7_type` (400
/// `/msg/validator`, instance `/msg/validator`).
fn correlation_check(
    claims: &SignatureClaims,
    class: crate::api::TipoDocumentoLivAlto,
) -> Result<(), Problem> {
    let loinc = claims
        .resource_hl7_type
        .as_deref()
        .and_then(crate::jwt::parse_resource_hl7_type)
        .unwrap_or_default();
    if correlation::correlates(loinc, class) {
        return Ok(());
    }
    Err(
        Problem::new(ProblemType::Validator, correlation::NO_CORRELATION)
            .with_instance("/msg/validator"),
    )
}

/// The route of a path under `/v1`.
enum Route {
    Op(Operation, Option<String>),
    Health,
    NotFound,
    MethodNotAllowed,
}

impl Gateway {
    /// A gateway over `store`, trusting JWTs the `verifier` accepts.
    pub fn new(
        options: GatewayOptions,
        verifier: Verifier,
        store: Store,
        validator: Arc<dyn CdaValidator>,
        inspector: Arc<dyn PdfInspector>,
    ) -> Gateway {
        Gateway {
            options,
            verifier,
            store,
            validator,
            inspector,
        }
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn route(&self, method: &str, path: &str) -> Route {
        let Some(rest) = path
            .strip_prefix(self.options.prefix.as_str())
            .and_then(|p| p.strip_prefix("/v1"))
        else {
            return Route::NotFound;
        };
        let segs: Vec<&str> = rest.split('/').skip(1).collect();
        let (op, id) = match segs.as_slice() {
            ["status"] => {
                return if method == "GET" {
                    Route::Health
                } else {
                    Route::MethodNotAllowed
                }
            }
            ["documents", "validation"] if method == "POST" => (Operation::Validation, None),
            ["documents"] => (Operation::Create, None),
            ["documents", id] if method == "PUT" => (Operation::Replace, Some(*id)),
            ["documents", id] if method == "DELETE" => (Operation::Delete, Some(*id)),
            ["documents", id, "metadata-iti-57"] => (Operation::UpdateMetadata, Some(*id)),
            ["status", "search", id] => (Operation::StatusByTrace, Some(*id)),
            ["status", id] => (Operation::StatusByWorkflow, Some(*id)),
            ["documents", _] => return Route::MethodNotAllowed,
            _ => return Route::NotFound,
        };
        if op.method() != method {
            return Route::MethodNotAllowed;
        }
        let id = id.map(percent_decode);
        if matches!(&id, Some(s) if s.is_empty()) {
            return Route::NotFound;
        }
        Route::Op(op, id)
    }

    /// Handles one request; `unavailable` forces the fault-injected 503.
    pub async fn handle(&self, req: Request, unavailable: bool) -> Reply {
        let forced = unavailable.then(|| {
            Problem::new(
                ProblemType::GenericError,
                "Servizio non disponibile (fault injection)",
            )
            .with_status(503)
        });
        self.answer(req, forced).await
    }

    /// Answers `problem` without looking at the request (e.g. a body over [`MAX_BODY`]),
    /// still with a fresh, logged `X-CART-id`.
    pub async fn refuse(&self, req: Request, problem: Problem) -> Reply {
        self.answer(req, Some(problem)).await
    }

    async fn answer(&self, req: Request, forced: Option<Problem>) -> Reply {
        let mut ctx = Ctx {
            x_cart_id: uuid::Uuid::new_v4().to_string(),
            trace_id: hex16(),
            operation: None,
            id_doc: None,
            wii: None,
        };
        let outcome = match forced {
            Some(problem) => Err(problem),
            None => self.dispatch(&req, &mut ctx).await,
        };
        let (status, content_type, body, problem_type) = match outcome {
            Ok(Success::Accepted(status, mut r)) => {
                r.trace_id = Some(ctx.trace_id.clone());
                r.span_id = Some(ctx.trace_id.clone());
                r.workflow_instance_id = r.workflow_instance_id.or_else(|| ctx.wii.clone());
                (
                    status,
                    "application/json",
                    serde_json::to_vec(&r).unwrap_or_default(),
                    None,
                )
            }
            Ok(Success::Inspection(mut r)) => {
                r.trace_id = Some(ctx.trace_id.clone());
                r.span_id = Some(ctx.trace_id.clone());
                (
                    200,
                    "application/json",
                    serde_json::to_vec(&r).unwrap_or_default(),
                    None,
                )
            }
            // The OpenAPI documents the health check as application/problem+json.
            Ok(Success::Health) => (
                200,
                "application/problem+json",
                b"{\"status\":\"UP\"}".to_vec(),
                None,
            ),
            Err(mut p) => {
                p.trace_id = Some(ctx.trace_id.clone());
                p.span_id = Some(ctx.trace_id.clone());
                // Only the validation's error schema (ValidationErrorResponseDTO) has the field.
                p.workflow_instance_id = match ctx.operation {
                    Some(Operation::Validation) => {
                        p.workflow_instance_id.or_else(|| ctx.wii.clone())
                    }
                    _ => None,
                };
                let t = p.problem_type.uri().to_owned();
                (
                    p.status,
                    "application/problem+json",
                    serde_json::to_vec(&p).unwrap_or_default(),
                    Some(t),
                )
            }
        };
        let entry = CartLogEntry {
            x_cart_id: ctx.x_cart_id.clone(),
            at: now_rfc3339(),
            operation: ctx
                .operation
                .map(|o| o.name().to_owned())
                .unwrap_or_else(|| "unknown".into()),
            method: req.method.clone(),
            path: req.path.clone(),
            status,
            problem_type,
            identificativo_doc: ctx.id_doc.clone(),
            trace_id: Some(ctx.trace_id.clone()),
            workflow_instance_id: ctx.wii.clone(),
        };
        // A failed log write must not hide the answer; the log then lacks this entry.
        let _ = self.store.log_response(&entry);
        Reply {
            status,
            content_type,
            body,
            x_cart_id: ctx.x_cart_id,
        }
    }

    async fn dispatch(&self, req: &Request, ctx: &mut Ctx) -> Outcome {
        let (op, id) = match self.route(&req.method, &req.path) {
            Route::Op(op, id) => (op, id),
            Route::Health => return Ok(Success::Health),
            Route::NotFound => {
                return Err(Problem::new(
                    ProblemType::RecordNotFound,
                    format!("Nessuna risorsa {}", req.path),
                ))
            }
            Route::MethodNotAllowed => {
                return Err(Problem::new(
                    ProblemType::GenericError,
                    format!("Metodo {} non ammesso", req.method),
                )
                .with_status(405))
            }
        };
        ctx.operation = Some(op);
        if matches!(
            op,
            Operation::Replace | Operation::UpdateMetadata | Operation::Delete
        ) {
            ctx.id_doc = id.clone();
            // The dispatcher checks the path id before the tokens.
            if let Some(id) = &id {
                path_id_check(op, id)?;
            }
        }
        let claims = self.authenticate(req, op)?;
        let store_err =
            |e: super::store::StoreError| Problem::new(ProblemType::GenericError, e.to_string());
        match op {
            Operation::Validation => {
                self.validation(
                    req,
                    ctx,
                    claims.ok_or_else(|| mandatory("FSE-JWT-Signature"))?,
                )
                .await
            }
            Operation::Create | Operation::Replace => {
                self.publication(
                    req,
                    ctx,
                    op,
                    id,
                    claims.ok_or_else(|| mandatory("FSE-JWT-Signature"))?,
                )
                .await
            }
            Operation::UpdateMetadata | Operation::Delete => {
                let claims = claims.ok_or_else(|| mandatory("FSE-JWT-Signature"))?;
                let id = id.unwrap_or_default();
                if op == Operation::UpdateMetadata {
                    let body: MetadataRequest = strict_json(&req.body)?;
                    correlation_check(&claims, body.tipo_documento_liv_alto)?;
                }
                let doc = self.store.document(&id).map_err(store_err)?;
                let Some(mut doc) = doc.filter(|d| d.state == "PUBLISHED") else {
                    return Err(Problem::new(
                        ProblemType::RecordNotFound,
                        format!("Documento {id} non trovato"),
                    ));
                };
                let wii = mint_workflow_instance_id(
                    &claims.subject_organization_id,
                    &hex::encode(Sha256::digest(id.as_bytes())),
                );
                ctx.wii = Some(wii.clone());
                let event_type = if op == Operation::Delete {
                    doc.state = "DELETED".into();
                    self.store
                        .put_document(&doc, unix_now() as i64)
                        .map_err(store_err)?;
                    "DELETE"
                } else {
                    "UPDATE"
                };
                self.event(ctx, &claims, event_type, "SUCCESS", Some(&id), None);
                Ok(Success::Accepted(202, GatewayResponse::default()))
            }
            Operation::StatusByWorkflow | Operation::StatusByTrace => {
                let key = id.unwrap_or_default();
                let events = if op == Operation::StatusByWorkflow {
                    self.store.events_by_workflow(&key)
                } else {
                    self.store.events_by_trace(&key)
                }
                .map_err(store_err)?;
                if events.is_empty() {
                    return Err(Problem::new(ProblemType::RecordNotFound, "No Record Found")
                        .with_instance(""));
                }
                Ok(Success::Inspection(TransactionInspection {
                    trace_id: None,
                    span_id: None,
                    transaction_data: events,
                }))
            }
        }
    }

    /// Verifies the JWT pair; returns the signature claims checked for `op` (`None` for the
    /// status queries, which need authentic tokens only).
    fn authenticate(
        &self,
        req: &Request,
        op: Operation,
    ) -> Result<Option<SignatureClaims>, Problem> {
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        let authorization = header("authorization");
        let bearer = authorization
            .strip_prefix("Bearer ")
            .or_else(|| authorization.strip_prefix("bearer "))
            .unwrap_or_default();
        let now = unix_now();
        let auth = self
            .verifier
            .verify(bearer, "auth:", now)
            .map_err(|e| jwt_problem("Authorization", e))?;
        let signature = self
            .verifier
            .verify(&header(FSE_JWT_SIGNATURE), "integrity:", now)
            .map_err(|e| jwt_problem(FSE_JWT_SIGNATURE, e))?;
        if auth.claims.get("sub") != signature.claims.get("sub") {
            return Err(Problem::new(
                ProblemType::JwtValidation,
                "sub diverso tra Authorization e FSE-JWT-Signature",
            )
            .with_instance("/jwt-mandatory-field-malformed"));
        }
        if matches!(op, Operation::StatusByWorkflow | Operation::StatusByTrace) {
            return Ok(None);
        }
        check_operation_claims(&signature.claims, op)
            .map(Some)
            .map_err(claim_problem)
    }

    fn event(
        &self,
        ctx: &Ctx,
        claims: &SignatureClaims,
        event_type: &str,
        status: &str,
        id_doc: Option<&str>,
        message: Option<String>,
    ) {
        let event = StatusEvent {
            event_type: Some(event_type.to_owned()),
            event_date: Some(now_rfc3339()),
            event_status: Some(status.to_owned()),
            message,
            identificativo_documento: id_doc.map(str::to_owned),
            subject: Some(claims.sub.clone()),
            subject_role: Some(claims.subject_role.clone()),
            tipo_attivita: None,
            organizzazione: Some(claims.subject_organization_id.clone()),
            workflow_instance_id: ctx.wii.clone(),
            trace_id: Some(ctx.trace_id.clone()),
            issuer: Some(claims.iss.clone()),
            expiring_date: Some(expiring_rfc3339(5)),
            extra: None,
        };
        let _ = self.store.add_event(&event);
    }

    /// Extract → JWT↔CDA coherence → validator; returns the CDA hash.
    fn check_cda(
        &self,
        ctx: &mut Ctx,
        claims: &SignatureClaims,
        pdf: &[u8],
        mode: InjectionMode,
    ) -> Result<(String, Vec<String>), Problem> {
        let cda = guarded(|| self.inspector.extract_cda(pdf, mode)).map_err(|e| {
            Problem::new(
                ProblemType::CdaElement,
                format!("Errore in fase di estrazione del CDA. {e}"),
            )
            .with_instance("/cda-extraction")
        })?;
        let hash = cda_hash(&cda);
        ctx.wii = Some(mint_workflow_instance_id(
            &claims.subject_organization_id,
            &hash,
        ));
        if self.options.jwt_cda_coherence {
            coherence(claims, &cda)?;
        }
        let fail = |t: ProblemType, d: String, instance: &str| {
            Err(Problem::new(t, d).with_instance(instance))
        };
        match self.validator.validate(&cda) {
            CdaVerdict::Valid { warnings } => Ok((hash, warnings)),
            CdaVerdict::Syntax(d) => fail(ProblemType::Syntax, d, "/validation/error"),
            CdaVerdict::Semantic(d) => {
                fail(ProblemType::Semantic, d, "/schematron-malformed/error")
            }
            CdaVerdict::Vocabulary(d) => fail(ProblemType::Vocabulary, d, "/validation/error"),
        }
    }

    async fn validation(&self, req: &Request, ctx: &mut Ctx, claims: SignatureClaims) -> Outcome {
        let parts = multipart(req).await?;
        let body: ValidationRequest =
            strict_json(&parts.request_body.ok_or_else(|| mandatory("requestBody"))?)?;
        let pdf = check_pdf(parts.file)?;
        let mut warnings = Vec::new();
        if body.mode.is_none() {
            warnings.push(
                "Attenzione, non è stata selezionata la modalità di estrazione del CDA".to_owned(),
            );
        }
        let result = self.check_cda(
            ctx,
            &claims,
            &pdf,
            body.mode.unwrap_or(InjectionMode::Attachment),
        );
        let (hash, more) = match result {
            Ok(ok) => ok,
            Err(p) => {
                if ctx.wii.is_some() {
                    self.event(
                        ctx,
                        &claims,
                        "VALIDATION",
                        "BLOCKING_ERROR",
                        None,
                        Some(p.detail.clone()),
                    );
                }
                return Err(p);
            }
        };
        warnings.extend(more);
        self.event(ctx, &claims, "VALIDATION", "SUCCESS", None, None);
        let status = match body.activity {
            Activity::Validation => {
                let wii = ctx.wii.clone().unwrap_or_default();
                self.store
                    .remember_validation(
                        &hash,
                        &wii,
                        unix_now() as i64,
                        i64::try_from(self.options.validation_ttl.as_secs()).unwrap_or(i64::MAX),
                    )
                    .map_err(|e| Problem::new(ProblemType::GenericError, e.to_string()))?;
                201
            }
            Activity::Verifica => 200,
        };
        let warning = (!warnings.is_empty()).then(|| warnings.join("; "));
        Ok(Success::Accepted(
            status,
            GatewayResponse {
                warning,
                ..GatewayResponse::default()
            },
        ))
    }

    async fn publication(
        &self,
        req: &Request,
        ctx: &mut Ctx,
        op: Operation,
        path_id: Option<String>,
        claims: SignatureClaims,
    ) -> Outcome {
        let store_err =
            |e: super::store::StoreError| Problem::new(ProblemType::GenericError, e.to_string());
        let parts = multipart(req).await?;
        let raw = parts.request_body.ok_or_else(|| mandatory("requestBody"))?;
        let (id_doc, mode, body_wii, class) = if op == Operation::Create {
            let b: PublicationRequest = strict_json(&raw)?;
            let class = b.tipo_documento_liv_alto;
            (b.identificativo_doc, b.mode, b.workflow_instance_id, class)
        } else {
            let b: ReplaceRequest = strict_json(&raw)?;
            let class = b.tipo_documento_liv_alto;
            (b.identificativo_doc, b.mode, b.workflow_instance_id, class)
        };
        if id_doc.trim().is_empty() {
            return Err(mandatory("identificativoDoc"));
        }
        if !correlation::is_valid_document_id(&id_doc) {
            return Err(
                Problem::new(ProblemType::IdDoc, correlation::INVALID_ID_DOC)
                    .with_instance("/invalid-id"),
            );
        }
        if op == Operation::Create {
            ctx.id_doc = Some(id_doc.clone());
        }
        if id_doc.starts_with(magic::CRASH_TIMEOUT) {
            tokio::time::sleep(self.options.crash_timeout_delay).await;
            return Err(Problem::new(
                ProblemType::GenericTimeout,
                "Timeout (CRASH_TIMEOUT_)",
            ));
        }
        let old = match (&path_id, op) {
            (Some(id), Operation::Replace) => {
                let doc = self.store.document(id).map_err(store_err)?;
                match doc.filter(|d| d.state == "PUBLISHED") {
                    Some(d) => Some(d),
                    None => {
                        return Err(Problem::new(
                            ProblemType::RecordNotFound,
                            format!("Documento {id} non trovato"),
                        ))
                    }
                }
            }
            _ => None,
        };
        let pdf = check_pdf(parts.file)?;
        let pdf_hash = hex::encode(Sha256::digest(&pdf));
        if claims
            .attachment_hash
            .as_deref()
            .map(str::to_ascii_lowercase)
            != Some(pdf_hash)
        {
            return Err(
                Problem::new(ProblemType::DocumentHash, "Verifica hash fallita.")
                    .with_instance("/jwt-hash-match"),
            );
        }
        let (hash, _warnings) = self.check_cda(
            ctx,
            &claims,
            &pdf,
            mode.unwrap_or(InjectionMode::Attachment),
        )?;
        match guarded(|| Ok(self.inspector.verify_signature(&pdf)))
            .unwrap_or_else(SignatureVerdict::Invalid)
        {
            SignatureVerdict::Valid => {}
            SignatureVerdict::Unsigned => {
                return Err(Problem::new(
                    ProblemType::SignError,
                    "Il documento non risulta firmato PAdES",
                )
                .with_status(400))
            }
            SignatureVerdict::Invalid(why) => {
                return Err(Problem::new(
                    ProblemType::SignError,
                    format!("Firma PAdES non valida: {why}"),
                )
                .with_status(400))
            }
        }
        correlation_check(&claims, class)?;
        let now = unix_now() as i64;
        if !id_doc.starts_with(magic::SKIP_VALIDATION) {
            match self.store.validation(&hash, now).map_err(store_err)? {
                Some(wii) => ctx.wii = Some(wii),
                None => {
                    return Err(
                        Problem::new(ProblemType::CdaMatch, "Il CDA non risulta validato")
                            .with_instance("/cda-validation"),
                    )
                }
            }
        } else if let Some(wii) = body_wii.filter(|w| !w.is_empty()) {
            ctx.wii = Some(wii);
        }
        if let Some(existing) = self.store.document(&id_doc).map_err(store_err)? {
            if existing.state == "PUBLISHED" && op == Operation::Create {
                return Err(Problem::new(
                    ProblemType::GenericError,
                    format!("Documento {id_doc} già pubblicato"),
                )
                .with_status(409));
            }
        }
        let wii = ctx.wii.clone().unwrap_or_default();
        if let Some(mut old) = old {
            old.state = "REPLACED".into();
            self.store.put_document(&old, now).map_err(store_err)?;
        }
        let record = DocumentRecord {
            id_doc: id_doc.clone(),
            cda_hash: Some(hash),
            workflow_instance_id: wii,
            state: "PUBLISHED".into(),
        };
        self.store.put_document(&record, now).map_err(store_err)?;
        let kind = if op == Operation::Create {
            "PUBLICATION"
        } else {
            "REPLACE"
        };
        self.event(ctx, &claims, kind, "SUCCESS", Some(&id_doc), None);
        let (ini, eds, wf) = if id_doc.starts_with(magic::CRASH_INI) {
            ("BLOCKING_ERROR", None, None)
        } else if id_doc.starts_with(magic::CRASH_EDS) {
            ("SUCCESS", Some("BLOCKING_ERROR"), None)
        } else if id_doc.starts_with(magic::CRASH_WF_EDS) {
            ("SUCCESS", Some("SUCCESS"), Some("BLOCKING_ERROR"))
        } else {
            ("SUCCESS", Some("SUCCESS"), None)
        };
        self.event(ctx, &claims, "SEND_TO_INI", ini, Some(&id_doc), None);
        if let Some(eds) = eds {
            self.event(ctx, &claims, "SEND_TO_EDS", eds, Some(&id_doc), None);
        }
        if let Some(wf) = wf {
            self.event(
                ctx,
                &claims,
                "EDS_WORKFLOW",
                wf,
                Some(&id_doc),
                Some("Errore simulato (CRASH_WF_EDS_)".into()),
            );
        }
        Ok(Success::Accepted(202, GatewayResponse::default()))
    }
}
