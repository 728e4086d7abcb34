//! Blocking mTLS client for every gateway endpoint.
//!
//! Each call signs a fresh JWT pair, sends the typed request, and returns a [`Reply`] that
//! carries `X-CART-id`, `traceID`, `spanID` and `workflowInstanceId` whether the gateway
//! accepted or refused, with the typed body or the typed [`Problem`].
//!
//! Retries (with exponential backoff) happen only where a resend cannot duplicate a state
//! change: validation and status queries, on network errors and 5xx. Create, replace,
//! metadata and delete are sent once; when a create's answer is lost, the caller resolves it
//! with [`GatewayClient::resolve_lost_create`] (a status query on the validation's workflow
//! instance id), never with a blind resend.

pub mod cda;
pub mod config;
pub mod tls_error;

use crate::api::{
    GatewayResponse, MetadataRequest, Operation, Problem, PublicationRequest, ReplaceRequest,
    TransactionInspection, ValidationRequest, FSE_JWT_SIGNATURE, X_CART_ID,
};
use crate::journal::{Journal, JournalError, Outcome};
use crate::jwt::{resource_hl7_type, RequestProfile, Signer};
use crate::tls::{load_certs, Identity, TlsError};
use config::{ClientConfig, ConfigError};
use rustls_pki_types::CertificateDer;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Errors where no usable gateway answer exists.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Certificates and keys.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Building the HTTP client or request.
    #[error("HTTP client: {0}")]
    Setup(String),
    /// No answer: connection refused, TLS refused, timeout, connection dropped. For create,
    /// replace, metadata and delete the request may or may not have been processed.
    #[error("no answer from the gateway after {attempts} attempt(s): {message}")]
    NoAnswer {
        /// What failed.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// An answer that is neither the documented success body nor a problem+json.
    #[error("unexpected answer {status} (X-CART-id {x_cart_id:?}): {body}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// `X-CART-id`, if sent.
        x_cart_id: Option<String>,
        /// Body, truncated.
        body: String,
    },
}

/// A gateway answer, success or refusal, with its identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<T> {
    /// The operation.
    pub operation: Operation,
    /// HTTP status.
    pub status: u16,
    /// CART's `X-CART-id` header.
    pub x_cart_id: Option<String>,
    /// `traceID`.
    pub trace_id: Option<String>,
    /// `spanID`.
    pub span_id: Option<String>,
    /// `workflowInstanceId`.
    pub workflow_instance_id: Option<String>,
    /// Attempts made (more than 1 only for retried operations).
    pub attempts: u32,
    /// The typed body or the typed problem.
    pub body: Result<T, Problem>,
}

impl<T> Reply<T> {
    /// Whether the gateway accepted.
    pub fn is_success(&self) -> bool {
        self.body.is_ok()
    }

    /// The journal's record of this answer.
    pub fn outcome(&self) -> Outcome {
        let (problem_type, error) = match &self.body {
            Ok(_) => (None, None),
            Err(p) => (Some(p.problem_type.uri().to_owned()), Some(p.to_string())),
        };
        Outcome {
            http_status: Some(self.status),
            x_cart_id: self.x_cart_id.clone(),
            trace_id: self.trace_id.clone(),
            span_id: self.span_id.clone(),
            workflow_instance_id: self.workflow_instance_id.clone(),
            problem_type,
            error,
        }
    }
}

impl ClientError {
    /// The journal's record of a call that got no usable answer (the status and `X-CART-id`
    /// of an unexpected answer are kept).
    pub fn outcome(&self) -> Outcome {
        let (http_status, x_cart_id) = match self {
            ClientError::Unexpected {
                status, x_cart_id, ..
            } => (Some(*status), x_cart_id.clone()),
            _ => (None, None),
        };
        Outcome {
            http_status,
            x_cart_id,
            error: Some(self.to_string()),
            ..Outcome::default()
        }
    }
}

/// Whether a call's result is worth another attempt when the operation is safe to resend: a
/// 5xx, or no answer.
pub fn is_retryable<T>(result: &Result<Reply<T>, ClientError>) -> bool {
    match result {
        Ok(reply) => reply.status >= 500,
        Err(ClientError::NoAnswer { .. }) => true,
        Err(ClientError::Unexpected { status, .. }) => *status >= 500,
        Err(_) => false,
    }
}

/// The wait before attempt `attempt + 1` of a resend: 200 ms, 400 ms, 800 ms… (at most
/// 6.4 s).
pub fn backoff_delay(attempt: u32) -> Duration {
    Duration::from_millis(200u64 << attempt.saturating_sub(1).min(5))
}

/// What the journal records of a single call besides its outcome.
#[derive(Debug, Clone, Copy)]
pub struct GatewayCall<'a> {
    /// The operation.
    pub operation: Operation,
    /// The `identificativoDoc` of the body, else the path's `idDoc`, else the queried id.
    pub id_doc: Option<&'a str>,
    /// The PDF file sent.
    pub file: Option<&'a str>,
}

/// The end of [`GatewayClient::journaled`].
#[derive(Debug)]
pub struct Journaled<T> {
    /// The last attempt's result.
    pub result: Result<Reply<T>, ClientError>,
    /// The journal's `gateway_call` rows, one per attempt.
    pub rows: Vec<i64>,
    /// Why the last attempt's outcome could not be journaled (its intent was).
    pub unrecorded: Option<JournalError>,
}

/// What a status query says about a create whose answer was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostCreate {
    /// The gateway recorded the publication of this document: do not resend.
    Published,
    /// The workflow shows no publication of it: resending is safe.
    NotPublished,
}

/// The document a call is about: the signed PDF and its CDA's LOINC type code.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    /// Signed PDF bytes.
    pub pdf: &'a [u8],
    /// `ClinicalDocument/code/@code` (LOINC), for `resource_hl7_type`.
    pub loinc: &'a str,
}

/// The client.
pub struct GatewayClient {
    http: Http,
    base_url: String,
    audience: String,
    signer: Signer,
    profile: RequestProfile,
    ttl: u64,
    max_attempts: u32,
}

impl std::fmt::Debug for GatewayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayClient")
            .field("base_url", &self.base_url)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// rustls client configuration: only `roots` trusted, `identity` presented.
pub fn tls_config(
    roots: &[CertificateDer<'static>],
    identity: Identity,
) -> Result<rustls::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store
            .add(root.clone())
            .map_err(|e| ClientError::Setup(format!("CA certificate: {e}")))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Setup(e.to_string()))?
        .with_root_certificates(store)
        .with_client_auth_cert(identity.chain, identity.key)
        .map_err(|e| ClientError::Setup(format!("client certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl GatewayClient {
    /// From a loaded configuration file.
    pub fn from_config(config: &ClientConfig) -> Result<GatewayClient, ClientError> {
        let base = &config.base_dir;
        let roots = match &config.gateway.ca {
            Some(ca) => load_certs(&base.join(ca))?,
            None => {
                return Err(ConfigError::Invalid(
                    "[gateway] ca: the CA bundle to trust is required".into(),
                )
                .into())
            }
        };
        let tls_identity = config.tls.load(base, "tls")?;
        let signer = Signer::new(&config.signer.load(base, "signer")?)?;
        GatewayClient::new(
            &config.gateway.base_url,
            &config.audience(),
            tls_config(&roots, tls_identity)?,
            signer,
            config.profile.clone(),
            Duration::from_secs(config.gateway.timeout_seconds),
            Duration::from_secs(config.gateway.connect_timeout_seconds),
        )
        .map(|c| {
            c.with_token_ttl(config.gateway.token_ttl_seconds)
                .with_max_attempts(config.gateway.max_attempts)
        })
    }

    /// From parts.
    pub fn new(
        base_url: &str,
        audience: &str,
        tls: rustls::ClientConfig,
        signer: Signer,
        profile: RequestProfile,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<GatewayClient, ClientError> {
        let http = Http::new(tls, timeout, connect_timeout)?;
        Ok(GatewayClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            signer,
            profile,
            ttl: 300,
            max_attempts: 3,
        })
    }

    /// JWT lifetime in seconds.
    pub fn with_token_ttl(mut self, seconds: u64) -> Self {
        self.ttl = seconds.max(1);
        self
    }

    /// Attempts for retried operations (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Overrides the JWT audience (tests of wrong `aud`).
    pub fn with_audience(mut self, audience: &str) -> Self {
        self.audience = audience.to_owned();
        self
    }

    fn url(&self, operation: Operation, id: Option<&str>) -> String {
        let mut path = operation.path_template().to_owned();
        if let Some(id) = id {
            let encoded =
                percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            for placeholder in ["{idDoc}", "{workflowInstanceId}", "{traceId}"] {
                path = path.replace(placeholder, &encoded);
            }
        }
        format!("{}/v1{}", self.base_url, path)
    }

    /// Attempts made for operations safe to retry (validation, status).
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The base URL (without `/v1`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn send<T: DeserializeOwned>(
        &self,
        operation: Operation,
        id: Option<&str>,
        document: Option<Document<'_>>,
        body: Body,
    ) -> Result<Reply<T>, ClientError> {
        let attempts = if operation.is_idempotent() {
            self.max_attempts
        } else {
            1
        };
        self.send_attempts(operation, id, document, body, attempts, None)
    }

    fn send_attempts<T: DeserializeOwned>(
        &self,
        operation: Operation,
        id: Option<&str>,
        document: Option<Document<'_>>,
        body: Body,
        attempts_allowed: u32,
        person_id: Option<&str>,
    ) -> Result<Reply<T>, ClientError> {
        let patient_profile;
        let profile = match person_id {
            Some(p) => {
                let mut copy = self.profile.clone();
                copy.person_id = p.to_owned();
                patient_profile = copy;
                &patient_profile
            }
            None => &self.profile,
        };
        // Hashed only where the JWT carries it (create, replace).
        let hash: Option<[u8; 32]> = document
            .filter(|_| operation.needs_attachment_hash())
            .map(|d| Sha256::digest(d.pdf).into());
        let resource_type = document.map(|d| resource_hl7_type(d.loinc));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tokens = self.signer.pair(
                profile,
                operation,
                &self.audience,
                resource_type.as_deref(),
                hash.as_ref(),
                self.ttl,
            )?;
            let method = reqwest::Method::from_bytes(operation.method().as_bytes())
                .map_err(|e| ClientError::Setup(e.to_string()))?;
            let url = self.url(operation, id);
            let (content_type, payload) = match &body {
                Body::None => (None, None),
                Body::Json(json) => (
                    Some("application/json".to_owned()),
                    Some(json.clone().into()),
                ),
                Body::Multipart(json) => {
                    let (content_type, encoded) =
                        multipart_body(json, document.map_or(&[][..], |d| d.pdf));
                    (Some(content_type), Some(encoded.into()))
                }
            };
            let exchanged = self.http.exchange(
                |http| {
                    let mut request = http
                        .request(method, url)
                        .bearer_auth(&tokens.authorization)
                        .header(FSE_JWT_SIGNATURE, &tokens.signature)
                        .header(
                            reqwest::header::ACCEPT,
                            "application/json, application/problem+json",
                        );
                    if let Some(content_type) = content_type {
                        request = request.header(reqwest::header::CONTENT_TYPE, content_type);
                    }
                    match payload {
                        Some(payload) => request.body::<reqwest::Body>(payload),
                        None => request,
                    }
                },
                |status, x_cart_id, bytes| {
                    decode_body::<T>(operation, status, x_cart_id, bytes, attempt)
                },
            )?;
            let retry = match exchanged {
                Ok(Ok(reply)) => {
                    let reply = reply?;
                    if reply.status >= 500 && attempt < attempts_allowed {
                        true
                    } else {
                        return Ok(reply);
                    }
                }
                // The answer's body could not be read.
                Ok(Err(e)) => {
                    return Err(ClientError::NoAnswer {
                        message: error_chain(&e),
                        attempts: attempt,
                    });
                }
                // Network error on an operation safe to resend: try again.
                Err(_) if attempt < attempts_allowed => true,
                Err(e) => {
                    return Err(ClientError::NoAnswer {
                        message: error_chain(&e),
                        attempts: attempt,
                    });
                }
            };
            if retry {
                std::thread::sleep(backoff_delay(attempt));
            }
        }
    }

    /// `POST /documents/validation`.
    pub fn validate(
        &self,
        document: Document<'_>,
        body: &ValidationRequest,
    ) -> Result<Reply<GatewayResponse>, ClientError> {
        self.send(
            Operation::Validation,
            None,
            Some(document),
            Body::multipart(body)?,
        )
    }

    /// `POST /documents/validation`, one attempt (the caller retries, journaling each
    /// attempt's `X-CART-id`), the JWT's `person_id` set to `person_id` (the CDA's patient,
    /// CX-formatted) when given.
    pub fn validate_once(
        &self,
        document: Document<'_>,
        body: &ValidationRequest,
        person_id: Option<&str>,
    ) -> Result<Reply<GatewayResponse>, ClientError> {
        self.send_attempts(
            Operation::Validation,
            None,
            Some(document),
            Body::multipart(body)?,
            1,
            person_id,
        )
    }

    /// `POST /documents` with the JWT's `person_id` set to `person_id` (the CDA's patient).
    pub fn create_for(
        &self,
        document: Document<'_>,
        body: &PublicationRequest,
        person_id: Option<&str>,
    ) -> Result<Reply<GatewayResponse>, ClientError> {
        self.send_attempts(
            Operation::Create,
            None,
            Some(document),
            Body::multipart(body)?,
            1,
            person_id,
        )
    }

    /// `PUT /documents/{idDoc}` with the JWT's `person_id` set to `person_id` (the CDA's
    /// patient).
    pub fn replace_for(
        &self,
        id_doc: &str,
        document: Document<'_>,
        body: &ReplaceRequest,
        person_id: Option<&str>,
    ) -> Result<Reply<GatewayResponse>, ClientError> {
        self.send_attempts(
            Operation::Replace,
            Some(id_doc),
            Some(document),
            Body::multipart(body)?,
            1,
            person_id,
        )
    }

    /// `GET /status/search/{traceId}`, one attempt.
    pub fn status_by_trace_once(
        &self,
        trace_id: &str,
    ) -> Result<Reply<TransactionInspection>, ClientError> {
        self.send_attempts(
            Operation::StatusByTrace,
            Some(trace_id),
            None,
            Body::None,
            1,
            None,
        )
    }

    /// One call journaled in `journal`'s `gateway_call` table as `call` says (its intent
    /// before, its outcome after), `send` making one attempt; an operation safe to resend
    /// (validation, status) is sent again on a 5xx or no answer, at most
    /// [`GatewayClient::max_attempts`] times, each attempt its own row. Returns the last
    /// attempt's result and the rows written; an intent that cannot be written stops before
    /// the call is sent.
    pub fn journaled<T>(
        &self,
        journal: &Journal,
        call: &GatewayCall<'_>,
        send: impl Fn() -> Result<Reply<T>, ClientError>,
    ) -> Result<Journaled<T>, JournalError> {
        let allowed = if call.operation.is_idempotent() {
            self.max_attempts
        } else {
            1
        };
        let mut rows = Vec::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let row = journal.gateway_intent(call.operation.name(), call.id_doc, call.file)?;
            rows.push(row);
            let result = send();
            let outcome = match &result {
                Ok(reply) => reply.outcome(),
                Err(e) => e.outcome(),
            };
            // The answer is not dropped for want of its record: the caller still shows it.
            let unrecorded = journal.gateway_outcome(row, &outcome).err();
            if unrecorded.is_none() && is_retryable(&result) && attempt < allowed {
                std::thread::sleep(backoff_delay(attempt));
                continue;
            }
            return Ok(Journaled {
                result,
                rows,
                unrecorded,
            });
        }
    }

    /// `GET /status/{workflowInstanceId}`, one attempt.
    pub fn status_once(
        &self,
        workflow_instance_id: &str,
    ) -> Result<Reply<TransactionInspection>, ClientError> {
        self.send_attempts(
            Operation::StatusByWorkflow,
            Some(workflow_instance_id),
            None,
            Body::None,
            1,
            None,
        )
    }

    /// `POST /documents`.
    pub fn create(
        &self,
        document: Document<'_>,
        body: &PublicationRequest,
    ) -> Result<Reply<GatewayResponse>, ClientError> {
        self.send(
            Operation::Create,
            None,
            Some(document),
            Body::multipart(body)?,
        )
    }

    /// `PUT /documents/{idDoc}`.
    pub fn replace(
        &self,
        id_doc: &str,
        document: Document<'_>,
        body: &ReplaceRequest,
    ) -> Result<Reply<GatewayResponse>, ClientError> {
        self.send(
            Operation::Replace,
            Some(id_doc),
            Some(document),
            Body::multipart(body)?,
        )
    }

    /// `PUT /documents/{idDoc}/metadata-iti-57`; `loinc` is the document's type code.
    pub fn update_metadata(
        &self,
        id_doc: &str,
        loinc: &str,
        body: &MetadataRequest,
    ) -> Result<Reply<GatewayResponse>, ClientError> {
        let document = Document { pdf: &[], loinc };
        let json = serde_json::to_string(body).map_err(|e| ClientError::Setup(e.to_string()))?;
        self.send(
            Operation::UpdateMetadata,
            Some(id_doc),
            Some(document),
            Body::Json(json),
        )
    }

    /// `DELETE /documents/{idDoc}`.
    pub fn delete(&self, id_doc: &str) -> Result<Reply<GatewayResponse>, ClientError> {
        self.send(Operation::Delete, Some(id_doc), None, Body::None)
    }

    /// `GET /status/{workflowInstanceId}`.
    pub fn status(
        &self,
        workflow_instance_id: &str,
    ) -> Result<Reply<TransactionInspection>, ClientError> {
        self.send(
            Operation::StatusByWorkflow,
            Some(workflow_instance_id),
            None,
            Body::None,
        )
    }

    /// `GET /status/search/{traceId}`.
    pub fn status_by_trace(
        &self,
        trace_id: &str,
    ) -> Result<Reply<TransactionInspection>, ClientError> {
        self.send(Operation::StatusByTrace, Some(trace_id), None, Body::None)
    }

    /// After a create without answer: asks the status of the validation's workflow instance
    /// whether `id_doc` was published. A 404 (no events) means not published.
    pub fn resolve_lost_create(
        &self,
        validation_workflow_instance_id: &str,
        id_doc: &str,
    ) -> Result<LostCreate, ClientError> {
        let reply = self.status(validation_workflow_instance_id)?;
        let events = match reply.body {
            Ok(inspection) => inspection.transaction_data,
            Err(p) if p.status == 404 => Vec::new(),
            Err(p) => {
                return Err(ClientError::Unexpected {
                    status: p.status,
                    x_cart_id: reply.x_cart_id,
                    body: p.to_string(),
                })
            }
        };
        let published = events.iter().any(|e| {
            e.event_type.as_deref() == Some("PUBLICATION")
                && e.event_status.as_deref() == Some("SUCCESS")
                && e.identificativo_documento.as_deref() == Some(id_doc)
        });
        Ok(if published {
            LostCreate::Published
        } else {
            LostCreate::NotPublished
        })
    }
}

/// The answer of another CART service ([`GatewayClient::call_raw`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RawReply {
    /// HTTP status.
    pub status: u16,
    /// CART's `X-CART-id` header.
    pub x_cart_id: Option<String>,
    /// `traceID` of a JSON body, if any.
    pub trace_id: Option<String>,
    /// `spanID` of a JSON body, if any.
    pub span_id: Option<String>,
    /// `workflowInstanceId` of a JSON body, if any.
    pub workflow_instance_id: Option<String>,
    /// problem+json `type`, if the body is one.
    pub problem_type: Option<String>,
    /// The body: JSON when it parses, else text (truncated to 64 KiB).
    pub body: serde_json::Value,
}

impl GatewayClient {
    /// One call to any CART service reachable with this client's mTLS identity (no JWT):
    /// `method` on `base_url` + `path`, with an optional JSON body. Sent once.
    pub fn call_raw(
        &self,
        base_url: &str,
        method: &str,
        path: &str,
        json: Option<&serde_json::Value>,
    ) -> Result<RawReply, ClientError> {
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|e| ClientError::Setup(format!("method {method}: {e}")))?;
        let url = format!(
            "{}/{}",
            base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        let no_answer = |e: reqwest::Error| ClientError::NoAnswer {
            message: error_chain(&e),
            attempts: 1,
        };
        let (status, x_cart_id, body) = self
            .http
            .exchange(
                |http| {
                    let request = http
                        .request(method, url)
                        .header(reqwest::header::ACCEPT, "application/json, */*");
                    match json {
                        Some(json) => request
                            .header(reqwest::header::CONTENT_TYPE, "application/json")
                            .body(json.to_string()),
                        None => request,
                    }
                },
                |status, x_cart_id, bytes| {
                    let body =
                        serde_json::from_slice::<serde_json::Value>(bytes).unwrap_or_else(|_| {
                            serde_json::Value::String(
                                String::from_utf8_lossy(&bytes[..bytes.len().min(65536)])
                                    .into_owned(),
                            )
                        });
                    (status, x_cart_id, body)
                },
            )?
            .map_err(no_answer)?
            .map_err(no_answer)?;
        let text = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        Ok(RawReply {
            status,
            x_cart_id,
            trace_id: text("traceID"),
            span_id: text("spanID"),
            workflow_instance_id: text("workflowInstanceId"),
            problem_type: (status >= 400).then(|| text("type")).flatten(),
            body,
        })
    }
}

enum Body {
    None,
    Json(String),
    Multipart(String),
}

impl Body {
    fn multipart<T: serde::Serialize>(body: &T) -> Result<Body, ClientError> {
        serde_json::to_string(body)
            .map(Body::Multipart)
            .map_err(|e| ClientError::Setup(e.to_string()))
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    // A refused certificate: say whose and what to check, not rustls' wording.
    if let Some(failure) = tls_error::TlsFailure::find(e) {
        return failure.to_string();
    }
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[derive(serde::Deserialize)]
struct Ids {
    #[serde(rename = "traceID")]
    trace_id: Option<String>,
    #[serde(rename = "spanID")]
    span_id: Option<String>,
    #[serde(rename = "workflowInstanceId")]
    workflow_instance_id: Option<String>,
}

/// HTTP exchanges on the calling thread. `reqwest`'s blocking client hands every request to
/// one shared I/O thread and waits for its answer (two thread switches per call, and every
/// worker's traffic through one thread); here each exchange is driven by the caller itself,
/// on a *lane*: a single-threaded tokio runtime with its own async client (its own
/// connection pool: a connection belongs to the runtime that opened it). Lanes are taken
/// from a stack and given back after the exchange, so there are as many as callers at once
/// (a batch's workers), each keeping its connection alive from call to call.
///
/// A lane's runtime runs only during its exchanges, so a connection the server closed while
/// the lane was idle is noticed at the next use: lanes drop connections idle for more than
/// [`LANE_IDLE`] (shorter than the servers' usual keep-alive), so that a call does not go
/// out on a connection the server has long closed.
struct Http {
    tls: rustls::ClientConfig,
    timeout: Duration,
    connect_timeout: Duration,
    idle: std::sync::Mutex<Vec<Lane>>,
}

/// Longest idle time after which a lane's connection is not reused.
const LANE_IDLE: Duration = Duration::from_secs(4);

/// One runtime and the client whose connections live on it.
struct Lane {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

/// An answer's body could not be read (`Ok(Err)`), or no answer came (`Err`).
type Exchanged<R> = Result<Result<R, reqwest::Error>, reqwest::Error>;

impl Http {
    fn new(
        tls: rustls::ClientConfig,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Http, ClientError> {
        let http = Http {
            tls,
            timeout,
            connect_timeout,
            idle: std::sync::Mutex::new(Vec::new()),
        };
        // One lane now: configuration errors show at construction, as before.
        let lane = http.lane()?;
        http.give_back(lane);
        Ok(http)
    }

    fn lane(&self) -> Result<Lane, ClientError> {
        let idle = match self.idle.lock() {
            Ok(mut idle) => idle.pop(),
            Err(poisoned) => poisoned.into_inner().pop(),
        };
        if let Some(lane) = idle {
            return Ok(lane);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Setup(format!("HTTP runtime: {e}")))?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(self.tls.clone())
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(LANE_IDLE)
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Lane { runtime, client })
    }

    fn give_back(&self, lane: Lane) {
        match self.idle.lock() {
            Ok(mut idle) => idle.push(lane),
            Err(poisoned) => poisoned.into_inner().push(lane),
        }
    }

    /// Sends the request `build` makes and reads the whole answer, which `finish` turns into
    /// the result from its status, `X-CART-id` and body.
    fn exchange<R>(
        &self,
        build: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder,
        finish: impl FnOnce(u16, Option<String>, &[u8]) -> R,
    ) -> Result<Exchanged<R>, ClientError> {
        let lane = self.lane()?;
        let request = build(&lane.client);
        let exchanged = lane.runtime.block_on(async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let x_cart_id = response
                .headers()
                .get(X_CART_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            Ok(match response.bytes().await {
                Ok(bytes) => Ok(finish(status, x_cart_id, &bytes)),
                Err(e) => Err(e),
            })
        });
        self.give_back(lane);
        Ok(exchanged)
    }
}

/// A `multipart/form-data` body of the gateway's two parts, `requestBody` (the JSON) and
/// `file` (the PDF), encoded in one buffer (one copy of the PDF; sent as one sized body),
/// with its `Content-Type`. The boundary is random (128 bits): it cannot occur in the parts.
fn multipart_body(json: &str, pdf: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("fse-{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::with_capacity(pdf.len() + json.len() + 4 * boundary.len() + 256);
    for (head, content) in [
        (
            "Content-Disposition: form-data; name=\"requestBody\"\r\n\
             Content-Type: application/json",
            json.as_bytes(),
        ),
        (
            "Content-Disposition: form-data; name=\"file\"; filename=\"document.pdf\"\r\n\
             Content-Type: application/pdf",
            pdf,
        ),
    ] {
        body.extend_from_slice(b"--");
        body.extend_from_slice(boundary.as_bytes());
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--");
    body.extend_from_slice(boundary.as_bytes());
    body.extend_from_slice(b"--\r\n");
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Turns an answer's status, `X-CART-id` and body (untrusted bytes) into a reply: the typed
/// body on a 2xx, the problem+json otherwise; anything else is [`ClientError::Unexpected`],
/// which still carries the `X-CART-id`.
fn decode_body<T: DeserializeOwned>(
    operation: Operation,
    status: u16,
    x_cart_id: Option<String>,
    bytes: &[u8],
    attempts: u32,
) -> Result<Reply<T>, ClientError> {
    let unexpected = || ClientError::Unexpected {
        status,
        x_cart_id: x_cart_id.clone(),
        body: String::from_utf8_lossy(&bytes[..bytes.len().min(2000)]).into_owned(),
    };
    let ids: Ids = serde_json::from_slice(bytes).unwrap_or(Ids {
        trace_id: None,
        span_id: None,
        workflow_instance_id: None,
    });
    let body = if (200..300).contains(&status) {
        Ok(serde_json::from_slice::<T>(bytes).map_err(|_| unexpected())?)
    } else {
        Err(serde_json::from_slice::<Problem>(bytes).map_err(|_| unexpected())?)
    };
    Ok(Reply {
        operation,
        status,
        x_cart_id,
        trace_id: ids.trace_id,
        span_id: ids.span_id,
        workflow_instance_id: ids.workflow_instance_id,
        attempts,
        body,
    })
}

#[cfg(test)]
mod tests {
    //! The answer decoder on untrusted bodies: a typed reply or `Unexpected`, never a panic,
    //! and the `X-CART-id` is kept either way.
    use super::*;
    use proptest::prelude::*;

    fn decoded(status: u16, body: &[u8]) -> Result<Reply<GatewayResponse>, ClientError> {
        decode_body(
            Operation::Validation,
            status,
            Some("cart-1".to_owned()),
            body,
            1,
        )
    }

    #[test]
    fn garbage_or_truncated_bodies_are_unexpected_and_keep_the_x_cart_id() {
        for (status, body) in [
            (201, &b"<html>proxy error</html>"[..]),
            (201, b"{\"traceID\":\"t1\",\"workflowInstanceId\":"),
            (400, b"not json"),
            (400, b"{\"title\":\"no type\"}"),
            (502, b""),
            (200, b"\xff\xfe\x00"),
        ] {
            match decoded(status, body) {
                Err(ClientError::Unexpected {
                    status: s,
                    x_cart_id,
                    body: excerpt,
                }) => {
                    assert_eq!(s, status);
                    assert_eq!(x_cart_id.as_deref(), Some("cart-1"));
                    assert_eq!(excerpt, String::from_utf8_lossy(body));
                }
                other => panic!("{status} {body:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_problem_is_typed_with_its_ids() {
        let body = br#"{"traceID":"t1","spanID":"s1","type":"/msg/syntax","title":"t","detail":"d","status":400}"#;
        let reply = decoded(400, body).unwrap();
        assert_eq!(reply.x_cart_id.as_deref(), Some("cart-1"));
        assert_eq!(reply.trace_id.as_deref(), Some("t1"));
        assert_eq!(reply.span_id.as_deref(), Some("s1"));
        let problem = reply.body.unwrap_err();
        assert_eq!(problem.title, "t");
    }

    /// The parts of a body as the gateway's multipart parser (`multer`, as the sandbox)
    /// reads them: `(name, file name, content type, bytes)`.
    fn parts_of(
        content_type: &str,
        body: Vec<u8>,
    ) -> Vec<(String, Option<String>, String, Vec<u8>)> {
        let boundary = multer::parse_boundary(content_type).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let stream = futures_util::stream::once(async move {
                Ok::<bytes::Bytes, std::convert::Infallible>(body.into())
            });
            let mut form = multer::Multipart::new(stream, boundary);
            let mut parts = Vec::new();
            while let Some(field) = form.next_field().await.unwrap() {
                let name = field.name().unwrap_or_default().to_owned();
                let file_name = field.file_name().map(str::to_owned);
                let mime = field
                    .content_type()
                    .map(|m| m.to_string())
                    .unwrap_or_default();
                parts.push((name, file_name, mime, field.bytes().await.unwrap().to_vec()));
            }
            parts
        })
    }

    #[test]
    fn the_multipart_body_reads_back_as_its_two_parts() {
        let json = r#"{"healthDataFormat":"CDA","mode":"ATTACHMENT"}"#;
        // a PDF with what a boundary line looks like, CRLFs and every byte value
        let mut pdf = b"%PDF-1.7\r\n--\r\n--fse-\r\n\r\n".to_vec();
        pdf.extend((0..=255u8).cycle().take(70_000));
        for pdf in [pdf, Vec::new()] {
            let (content_type, body) = multipart_body(json, &pdf);
            assert!(content_type.starts_with("multipart/form-data; boundary=fse-"));
            assert_eq!(
                parts_of(&content_type, body),
                vec![
                    (
                        "requestBody".to_owned(),
                        None,
                        "application/json".to_owned(),
                        json.as_bytes().to_vec()
                    ),
                    (
                        "file".to_owned(),
                        Some("document.pdf".to_owned()),
                        "application/pdf".to_owned(),
                        pdf
                    ),
                ]
            );
        }
        // a fresh boundary per body
        assert_ne!(multipart_body(json, b"x").0, multipart_body(json, b"x").0);
    }

    proptest! {
        #[test]
        fn any_answer_decodes_or_is_unexpected(
            status in 100u16..600,
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            match decoded(status, &body) {
                Ok(reply) => {
                    prop_assert_eq!(reply.status, status);
                    prop_assert_eq!(reply.x_cart_id.as_deref(), Some("cart-1"));
                    prop_assert_eq!(reply.body.is_ok(), (200..300).contains(&status));
                }
                Err(ClientError::Unexpected { x_cart_id, .. }) => {
                    prop_assert_eq!(x_cart_id.as_deref(), Some("cart-1"));
                }
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }
    }
}
