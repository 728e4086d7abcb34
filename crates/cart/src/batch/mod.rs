//! Batch publication: every document of an input directory goes through
//! build (from JSON) or read (a ready CDA) → local validation → inject into the PDF →
//! validation at the gateway → PAdES signature → publication, in parallel (rayon) with a
//! bounded call rate, each step persisted in the [`Journal`] as the document's state
//! (`pending → built → injected → validated_remote → signed → published`, or `failed`).
//!
//! Inputs ([`discover`]): the directory tree holds `NAME.json` (builder input) or `NAME.xml`
//! (a ready CDA), each with an optional `NAME.pdf` (without one the PDF is rendered from the
//! CDA's narrative). When `NAME.json` and `NAME.xml` both exist the JSON is the source (the XML
//! is its expected build): one document.
//!
//! Exactly-once publication: every call has its intent journaled before it is sent and its
//! outcome after. [`resume`] settles a create with intent but no outcome (or without answer)
//! by a status query on the validation's workflow instance, never by a blind resend. A
//! document an earlier batch published to the same gateway is not sent again: it ends
//! `skipped` (not a failure). [`retry_failed`] sends a batch's failed documents again after a
//! fix. The output folder is stored with the batch, so `resume` and `retry_failed` keep their
//! signed PDFs there.
//!
//! Local validation ([`LocalValidator`]) runs before anything is sent: [`RulesValidator`]
//! judges the CDA with a `fse_cda::validate::RuleSet` (the official rule folder named by
//! `[rules] dir`, `--rules` or `FSE_CDA_RULES`, else `fse_cda`'s built-in rules); a document
//! it refuses ends `failed` with the verdict as its reason and makes no gateway call.
//!
//! Publication metadata: [`BatchOptions::defaults`] (the configuration's `[publication]`),
//! overridden per document by a sidecar `NAME.meta.json` holding any of the same keys
//! (`{"tipo_attivita_clinica": "CON", "identificativo_rep": "…"}`); unknown keys are refused.
//! `tipoDocumentoLivAlto` is the gateway's class for the document type
//! ([`crate::api::correlation`]); a default or sidecar that contradicts it fails the document
//! before any call.

use crate::api::{
    correlation, Activity, HealthDataFormat, InjectionMode, Problem, PublicationRequest,
    ValidationRequest,
};
use crate::client::cda::{cda_header, parse_cda, Header};
use crate::client::config::ClientConfig;
use crate::client::{ClientError, Document, GatewayClient, LostCreate, Reply};
use crate::journal::{
    CallRecord, DocState, DocumentRow, Journal, JournalError, SETTLED_NOT_PUBLISHED,
    SETTLED_PUBLISHED,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Errors that stop a whole batch (a single document's failure does not).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The journal could not be written: stop, durability is lost.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The input directory.
    #[error("{path}: {message}")]
    Input {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Client or signer setup.
    #[error("{0}")]
    Setup(String),
}

/// Judges a CDA locally before anything is sent (hook for `fse_cda::validate`).
pub trait LocalValidator: Send + Sync {
    /// `Err(reason)` when the CDA is invalid.
    fn validate(&self, cda: &[u8]) -> Result<(), String>;

    /// [`LocalValidator::validate`] of `cda`, of which `doc` is the parsed tree (the batch
    /// has already parsed it): a validator that can judge the tree need not parse again.
    fn validate_parsed(&self, doc: &fse_cda::xml::Document, cda: &[u8]) -> Result<(), String> {
        let _ = doc;
        self.validate(cda)
    }
}

/// [`LocalValidator`] over a rule set: refuses what the gateway would refuse
/// (`SYNTAX_ERROR`, `SEMANTIC_ERROR`, `VOCABULARY_ERROR`); warnings pass.
#[derive(Debug)]
pub struct RulesValidator {
    rules: Rules,
}

#[derive(Debug)]
enum Rules {
    /// An official rule folder.
    Dir(fse_cda::validate::RuleSet),
    /// `fse_cda`'s built-in pre-flight rules (no XSD).
    Builtin(fse_cda::validate::BuiltinRules),
}

impl RulesValidator {
    /// Loads the rule folder (each schematron is compiled when a document first needs it).
    pub fn load(dir: &Path) -> Result<RulesValidator, BatchError> {
        let rules = fse_cda::validate::RuleSet::load(dir)
            .map_err(|e| BatchError::Setup(format!("rules {}: {e}", dir.display())))?;
        Ok(RulesValidator {
            rules: Rules::Dir(rules),
        })
    }

    /// The rules built into `fse` (a pre-flight check; the official folder checks more).
    pub fn builtin() -> Result<RulesValidator, BatchError> {
        let rules = fse_cda::validate::builtin_rules()
            .map_err(|e| BatchError::Setup(format!("built-in rules: {e}")))?;
        Ok(RulesValidator {
            rules: Rules::Builtin(rules),
        })
    }

    fn rule_set(&self) -> &fse_cda::validate::RuleSet {
        match &self.rules {
            Rules::Dir(r) => r,
            Rules::Builtin(r) => r,
        }
    }
}

/// One line for a refusal: outcome, then the first findings with their positions.
pub fn verdict_reason(v: &fse_cda::validate::Verdict) -> String {
    let mut parts: Vec<String> = Vec::new();
    parts.extend(v.xsd_errors.iter().take(3).cloned());
    parts.extend(v.failed_asserts.iter().take(3).map(|f| {
        format!(
            "{}line {}: {}",
            f.id.as_deref().map(|i| format!("{i} ")).unwrap_or_default(),
            f.line,
            f.text
        )
    }));
    if let Some(e) = &v.vocabulary_error {
        parts.push(e.clone());
    }
    let more = v.xsd_errors.len().saturating_sub(3) + v.failed_asserts.len().saturating_sub(3);
    if more > 0 {
        parts.push(format!("{more} more"));
    }
    format!("{} ({}): {}", v.outcome.as_str(), v.http, parts.join("; "))
}

/// `Ok` for an accepted verdict, else the refusal's reason.
fn accepted(verdict: &fse_cda::validate::Verdict) -> Result<(), String> {
    if verdict.outcome.accepted() {
        Ok(())
    } else {
        Err(verdict_reason(verdict))
    }
}

impl LocalValidator for RulesValidator {
    fn validate(&self, cda: &[u8]) -> Result<(), String> {
        accepted(&self.rule_set().validate(cda).map_err(|e| e.to_string())?)
    }

    /// The built-in rules have no XSD stage, which alone needs the bytes: their verdict on
    /// the tree is their verdict on the bytes (without a second parse). A rule folder's XSD
    /// stage reads the bytes.
    fn validate_parsed(&self, doc: &fse_cda::xml::Document, cda: &[u8]) -> Result<(), String> {
        match &self.rules {
            Rules::Builtin(rules) => {
                accepted(&rules.validate_document(doc).map_err(|e| e.to_string())?)
            }
            Rules::Dir(_) => self.validate(cda),
        }
    }
}

/// Reads the sidecar `NAME.meta.json` of a source (if present) over `defaults`.
pub fn document_defaults(
    source: &Path,
    defaults: &PublicationDefaults,
) -> Result<PublicationDefaults, String> {
    let sidecar = source.with_extension("meta.json");
    let bytes = match std::fs::read(&sidecar) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(defaults.clone()),
        Err(e) => return Err(format!("{}: {e}", sidecar.display())),
    };
    let bad = |e: serde_json::Error| format!("{}: {e}", sidecar.display());
    let overrides: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(bad)?;
    let mut merged = match serde_json::to_value(defaults).map_err(bad)? {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    merged.extend(overrides);
    serde_json::from_value(serde_json::Value::Object(merged)).map_err(bad)
}

/// How `identificativoDoc` is derived from the CDA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdPolicy {
    /// `ClinicalDocument/id` as `root^extension`.
    CdaId,
    /// `root^extension.HASH8` (first 8 hex of the CDA's SHA-256): for test corpora whose
    /// documents share one id (the sandbox demo).
    CdaIdWithHash,
}

pub use crate::client::config::PublicationDefaults;

/// Batch options.
#[derive(Clone)]
pub struct BatchOptions {
    /// Parallel documents (at least 1).
    pub jobs: usize,
    /// Most gateway calls per second (all workers together); 0 = unbounded.
    pub max_calls_per_second: f64,
    /// identificativoDoc derivation.
    pub id_policy: IdPolicy,
    /// Publication metadata.
    pub defaults: PublicationDefaults,
    /// Local validation; `None` = skipped.
    pub local_validator: Option<Arc<dyn LocalValidator>>,
    /// Where to keep each signed PDF as `NAME.pdf` (subfolders kept); `None` = not kept.
    pub output_dir: Option<PathBuf>,
    /// The gateway this batch publishes to (its base URL; a throw-away sandbox's directory).
    /// Exactly-once across batches is judged among batches that published to the same
    /// gateway: a document published to a sandbox that no longer exists is not published.
    pub gateway: String,
}

impl std::fmt::Debug for BatchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchOptions")
            .field("jobs", &self.jobs)
            .field("max_calls_per_second", &self.max_calls_per_second)
            .field("id_policy", &self.id_policy)
            .field("local_validator", &self.local_validator.is_some())
            .field("output_dir", &self.output_dir)
            .finish_non_exhaustive()
    }
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            jobs: 4,
            max_calls_per_second: 20.0,
            id_policy: IdPolicy::CdaId,
            defaults: PublicationDefaults::default(),
            local_validator: None,
            output_dir: None,
            gateway: String::new(),
        }
    }
}

/// What the batch reports while it runs (the CLI draws the progress bar from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Documents to process.
    Planned(usize),
    /// One document reached a terminal (or resumable) state.
    Done {
        /// Its name.
        name: String,
        /// Its state.
        state: DocState,
        /// Failure reason.
        reason: Option<String>,
    },
}

/// The end of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    /// Batch id in the journal.
    pub batch_id: i64,
    /// Documents by state.
    pub counts: BTreeMap<DocState, usize>,
    /// `(name, reason)` of every failed or unfinished document.
    pub failures: Vec<(String, String)>,
    /// `(name, reason)` of every document not sent because an earlier batch published it.
    pub skipped: Vec<(String, String)>,
}

impl Summary {
    /// Documents in `state`.
    pub fn count(&self, state: DocState) -> usize {
        self.counts.get(&state).copied().unwrap_or(0)
    }
}

/// One input document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Path under the input directory without extension (`LAB/ct1`).
    pub name: String,
    /// `NAME.json` or `NAME.xml`.
    pub cda: PathBuf,
    /// `NAME.pdf`, if present.
    pub pdf: Option<PathBuf>,
}

/// Finds the documents of `dir` (recursively; hidden entries skipped), sorted by name.
pub fn discover(dir: &Path) -> Result<Vec<Source>, BatchError> {
    #[derive(Default)]
    struct Files {
        json: Option<PathBuf>,
        xml: Option<PathBuf>,
        pdf: Option<PathBuf>,
    }
    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut BTreeMap<String, Files>,
        depth: u32,
    ) -> Result<(), BatchError> {
        let input = |e: std::io::Error| BatchError::Input {
            path: dir.to_owned(),
            message: e.to_string(),
        };
        if depth > 32 {
            return Ok(());
        }
        for entry in std::fs::read_dir(dir).map_err(input)? {
            let entry = entry.map_err(input)?;
            let path = entry.path();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.starts_with('.') {
                continue;
            }
            let kind = entry.file_type().map_err(input)?;
            if kind.is_dir() {
                walk(root, &path, out, depth + 1)?;
                continue;
            }
            let (Some(stem), Some(ext)) = (path.file_stem(), path.extension()) else {
                continue;
            };
            // `NAME.meta.json`: publication metadata of NAME, not a document.
            if file_name.to_ascii_lowercase().ends_with(".meta.json") {
                continue;
            }
            let rel_dir = path
                .parent()
                .and_then(|p| p.strip_prefix(root).ok())
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            let name = if rel_dir.is_empty() {
                stem.to_string_lossy().into_owned()
            } else {
                format!("{rel_dir}/{}", stem.to_string_lossy())
            };
            let files = out.entry(name).or_default();
            match ext.to_string_lossy().to_ascii_lowercase().as_str() {
                "json" => files.json = Some(path),
                "xml" => files.xml = Some(path),
                "pdf" => files.pdf = Some(path),
                _ => {}
            }
        }
        Ok(())
    }
    if !dir.is_dir() {
        return Err(BatchError::Input {
            path: dir.to_owned(),
            message: "not a directory".into(),
        });
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files, 0)?;
    Ok(files
        .into_iter()
        .filter_map(|(name, f)| {
            let cda = f.json.or(f.xml)?;
            Some(Source {
                name,
                cda,
                pdf: f.pdf,
            })
        })
        .collect())
}

/// Spaces gateway calls at least `1 / rate` seconds apart across all workers.
#[derive(Debug)]
struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    fn new(per_second: f64) -> RateLimiter {
        let interval = if per_second > 0.0 && per_second.is_finite() {
            Duration::from_secs_f64(1.0 / per_second)
        } else {
            Duration::ZERO
        };
        RateLimiter {
            interval,
            next: Mutex::new(Instant::now()),
        }
    }

    fn wait(&self) {
        if self.interval.is_zero() {
            return;
        }
        let slot = {
            let mut next = match self.next.lock() {
                Ok(n) => n,
                Err(p) => p.into_inner(),
            };
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        let now = Instant::now();
        if slot > now {
            std::thread::sleep(slot - now);
        }
    }
}

/// The PAdES signer named by the `[signer]` section of a client configuration.
pub fn pades_signer(config: &ClientConfig) -> Result<fse_pades::SignerIdentity, BatchError> {
    let base = &config.base_dir;
    let s = &config.signer;
    let setup = |e: fse_pades::Error| BatchError::Setup(format!("[signer] for PAdES: {e}"));
    // a signer certificate that is not valid now is refused before any document
    let valid_now =
        |id: fse_pades::SignerIdentity| id.check_valid_now().map(|()| id).map_err(setup);
    if let Some(p12) = &s.p12 {
        let password = match (&s.p12_password_env, &s.p12_password) {
            (Some(var), _) => std::env::var(var).map_err(|_| {
                BatchError::Setup(format!("[signer] p12_password_env: {var} is not set"))
            })?,
            (None, Some(p)) => p.clone(),
            (None, None) => String::new(),
        };
        return fse_pades::SignerIdentity::from_pkcs12_file(&base.join(p12), &password)
            .map_err(setup)
            .and_then(valid_now);
    }
    match (&s.cert, &s.key) {
        (Some(cert), Some(key)) => {
            fse_pades::SignerIdentity::from_pem_files(&base.join(key), &base.join(cert))
                .map_err(setup)
                .and_then(valid_now)
        }
        _ => Err(BatchError::Setup(
            "[signer] needs either p12, or cert and key".into(),
        )),
    }
}

/// Waits before attempt `attempt + 1`.
fn backoff(attempt: u32) {
    std::thread::sleep(crate::client::backoff_delay(attempt));
}

/// Everything a worker needs.
struct Context<'a> {
    journal: &'a Journal,
    client: &'a GatewayClient,
    signer: &'a fse_pades::SignerIdentity,
    options: &'a BatchOptions,
    rate: RateLimiter,
    batch_id: i64,
}

/// The document states a journaled call moves between, written with its intent and outcome.
#[derive(Debug, Clone, Copy, Default)]
struct Steps {
    /// State recorded with the intent (the step the call starts from).
    from: Option<DocState>,
    /// State recorded with the outcome when the gateway accepted.
    accepted: Option<DocState>,
}

/// Why a document stopped.
enum Stop {
    /// Not sent: an earlier batch published it (journaled as `skipped`).
    Skipped(String),
    /// Terminal failure (journaled as `failed`).
    Failed(String),
    /// Not finished, can be resumed (state kept).
    Unsettled(String),
    /// The journal failed: stop the batch.
    Journal(JournalError),
}

impl From<JournalError> for Stop {
    fn from(e: JournalError) -> Self {
        Stop::Journal(e)
    }
}

fn problem_text(p: &Problem) -> String {
    p.to_string()
}

impl Context<'_> {
    /// One journaled call: intent (with the document's move to `steps.from`, in the same
    /// durable write), send (rate-limited), outcome (with the move to `steps.accepted` when
    /// the gateway accepted, in the same durable write).
    fn call<T>(
        &self,
        document_id: i64,
        operation: &str,
        steps: Steps,
        send: impl FnOnce() -> Result<Reply<T>, ClientError>,
    ) -> Result<Result<Reply<T>, ClientError>, JournalError> {
        self.rate.wait();
        let call = self
            .journal
            .intent_in_state(document_id, operation, steps.from)?;
        let result = send();
        let (outcome, reached) = match &result {
            Ok(reply) => (
                reply.outcome(),
                steps.accepted.filter(|_| reply.is_success()),
            ),
            Err(e) => (e.outcome(), None),
        };
        self.journal
            .outcome_in_state(call, &outcome, reached.map(|s| (document_id, s)))?;
        Ok(result)
    }

    fn run(&self, doc: &DocumentRow, source: &Path, pdf: Option<&Path>) -> Result<(), Stop> {
        let j = self.journal;
        let read =
            |p: &Path| std::fs::read(p).map_err(|e| Stop::Failed(format!("{}: {e}", p.display())));
        // Build or read.
        let raw = read(source)?;
        let is_json = source
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let cda = if is_json {
            fse_cda::build::build(&raw)
                .map_err(|e| Stop::Failed(format!("build {}: {e}", source.display())))?
                .xml
        } else {
            raw
        };
        let tree = parse_cda(&cda).map_err(Stop::Failed)?;
        let Header {
            id: cda_id,
            loinc,
            person_id,
        } = cda_header(&tree).map_err(Stop::Failed)?;
        let person_id = person_id.as_deref();
        let id_doc = match self.options.id_policy {
            IdPolicy::CdaId => cda_id,
            IdPolicy::CdaIdWithHash => {
                let hash = hex::encode(Sha256::digest(&cda));
                format!("{cda_id}.{}", &hash[..8])
            }
        };
        // Deferred: durable with the validation's intent (or the failure's state), before
        // any call; a crash before that leaves the document pending, built again on resume.
        j.identify_deferred(doc.id, &id_doc, DocState::Built)?;
        // Exactly once across batches too: never publish again what an earlier batch
        // published or may have published.
        match j.published_elsewhere(&id_doc, self.batch_id)? {
            Some((batch, name, DocState::Published)) => {
                return Err(Stop::Skipped(format!(
                    "{id_doc} already published by batch {batch} as {name}: not sent again"
                )))
            }
            Some((batch, name, state)) => {
                let settle = if state == DocState::Failed {
                    "retry-failed"
                } else {
                    "resume"
                };
                return Err(Stop::Failed(format!(
                    "{id_doc} possibly published by batch {batch} as {name} (its create has no \
                     answer, or a 5xx): not sent again; settle it with `fse batch {settle} \
                     --batch {batch}`, then publish again"
                )));
            }
            None => {}
        }
        // Publication metadata (sidecar over the defaults): checked before any call.
        let d = document_defaults(source, &self.options.defaults).map_err(Stop::Failed)?;
        // tipoDocumentoLivAlto: the gateway's one class for the document type; a sidecar or
        // default that contradicts it is refused here, before any call.
        let class = correlation::resolve_high_level_type(&loinc, d.tipo_documento_liv_alto)
            .map_err(|e| Stop::Failed(format!("{}: {e}; nothing sent", doc.name)))?;
        // Local validation (skipped when no rules are configured): no call for a refusal.
        if let Some(v) = &self.options.local_validator {
            v.validate_parsed(&tree, &cda)
                .map_err(|e| Stop::Failed(format!("local validation: {e}")))?;
        }
        drop(tree);
        // Inject (a rendered PDF is written with the CDA already attached). A signed NAME.pdf
        // is kept as it is when it verifies and carries this very CDA, and refused here,
        // before any call, otherwise: never signed twice (see `fse_pades::prepare`).
        let injected = match pdf {
            Some(p) => fse_pades::prepare(read(p)?, Some(&cda))
                .map_err(|e| Stop::Failed(format!("inject: {e}")))?,
            None => fse_pades::render::render_cda_with_attachment(&cda)
                .map(fse_pades::Prepared::ToSign)
                .map_err(|e| Stop::Failed(format!("render PDF: {e}")))?,
        };
        // `injected` is journaled with the validation's intent, `validated_remote` with its
        // accepting outcome.
        // Validate at the gateway.
        let validation = ValidationRequest {
            health_data_format: Some(HealthDataFormat::Cda),
            mode: Some(InjectionMode::Attachment),
            activity: Activity::Validation,
        };
        let document = Document {
            pdf: injected.pdf(),
            loinc: &loinc,
        };
        let steps = Steps {
            from: Some(DocState::Injected),
            accepted: Some(DocState::ValidatedRemote),
        };
        let reply = match self.call_retrying(doc.id, "validation", steps, || {
            self.client.validate_once(document, &validation, person_id)
        })? {
            Ok(r) => r,
            Err(e) => return Err(Stop::Unsettled(format!("validation: {e}"))),
        };
        if let Err(p) = &reply.body {
            let text = format!("gateway validation: {}", problem_text(p));
            // A 5xx after every attempt: the gateway is unavailable, resume tries again.
            return Err(if reply.status >= 500 {
                Stop::Unsettled(text)
            } else {
                Stop::Failed(text)
            });
        }
        let wii = reply.workflow_instance_id.clone();
        // Sign.
        let signed = injected
            .sign(self.signer, &fse_pades::SignOptions::default())
            .map_err(|e| Stop::Failed(format!("sign: {e}")))?;
        if let Some(out) = &self.options.output_dir {
            let path = out.join(format!("{}.pdf", doc.name));
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, &signed));
            written.map_err(|e| Stop::Failed(format!("{}: {e}", path.display())))?;
        }
        // `signed` is journaled with the create's intent, `published` with its accepting
        // outcome.
        let steps = Steps {
            from: Some(DocState::Signed),
            accepted: Some(DocState::Published),
        };
        // Publish.
        let request = PublicationRequest {
            tipologia_struttura: d.tipologia_struttura,
            atti_clinici_regole_accesso: d.atti_clinici_regole_accesso.clone(),
            tipo_documento_liv_alto: class,
            assetto_organizzativo: d.assetto_organizzativo,
            data_inizio_prestazione: None,
            data_fine_prestazione: None,
            conservazione_a_norma: None,
            tipo_attivita_clinica: d.tipo_attivita_clinica,
            identificativo_sottomissione: format!("{}.{}", self.batch_id, doc.id),
            descriptions: None,
            administrative_request: None,
            identificativo_doc: id_doc.clone(),
            identificativo_rep: d.identificativo_rep.clone(),
            mode: Some(InjectionMode::Attachment),
            health_data_format: Some(HealthDataFormat::Cda),
            workflow_instance_id: wii.clone(),
            priorita: None,
        };
        let document = Document {
            pdf: &signed,
            loinc: &loinc,
        };
        // Publish: sent once per attempt; an answer lost or a 5xx is settled by a status
        // query, and only a 5xx the gateway confirms unpublished is sent again (bounded).
        let max = self.client.max_attempts();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.call(doc.id, "create", steps, || {
                self.client.create_for(document, &request, person_id)
            })?;
            let (why, answered) = match &result {
                Ok(reply) => match &reply.body {
                    Ok(_) => return Ok(()),
                    Err(p) if reply.status >= 500 => (
                        format!("answer {}: {}", reply.status, problem_text(p)),
                        true,
                    ),
                    Err(p) => {
                        return Err(Stop::Failed(format!("publication: {}", problem_text(p))))
                    }
                },
                Err(e @ ClientError::Unexpected { status, .. }) if *status >= 500 => {
                    (e.to_string(), true)
                }
                Err(e) => (e.to_string(), false),
            };
            let Some(wii) = &wii else {
                return Err(Stop::Unsettled(format!("publication: {why}")));
            };
            match self.settle_query(doc.id, wii, &id_doc)? {
                Ok(LostCreate::Published) => return Ok(()),
                Ok(LostCreate::NotPublished) if answered && attempt < max => {
                    backoff(attempt);
                }
                Ok(LostCreate::NotPublished) => {
                    return Err(Stop::Unsettled(format!(
                        "publication not answered ({why}); the gateway shows it unpublished: \
                         resume resends it"
                    )))
                }
                Err(e) => {
                    return Err(Stop::Unsettled(format!(
                        "publication not answered ({why}); status query failed: {e}"
                    )))
                }
            }
        }
    }

    /// One journaled call per attempt, retried (bounded, with backoff) on a 5xx or no answer:
    /// only for operations safe to resend (validation, status).
    fn call_retrying<T>(
        &self,
        document_id: i64,
        operation: &str,
        steps: Steps,
        send: impl Fn() -> Result<Reply<T>, ClientError>,
    ) -> Result<Result<Reply<T>, ClientError>, JournalError> {
        let max = self.client.max_attempts();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.call(document_id, operation, steps, &send)?;
            let retryable = crate::client::is_retryable(&result);
            if retryable && attempt < max {
                backoff(attempt);
                continue;
            }
            return Ok(result);
        }
    }

    /// Asks the status of the validation's workflow whether `id_doc` was published; each
    /// query journaled as operation `status` (its `error` reading `settled: …` once known).
    /// When it was, the same durable write moves the document to `published` and gives its
    /// create the publication's identifiers (see [`Journal::settled_published`]).
    fn settle_query(
        &self,
        document_id: i64,
        wii: &str,
        id_doc: &str,
    ) -> Result<Result<LostCreate, String>, JournalError> {
        let max = self.client.max_attempts();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.rate.wait();
            let call = self.journal.intent(document_id, "status")?;
            let result = self.client.status_once(wii);
            // The publication's event, when the gateway shows one.
            let mut event = None;
            let verdict: Result<LostCreate, String> = match &result {
                Ok(reply) => match &reply.body {
                    Ok(inspection) => {
                        event = inspection.transaction_data.iter().find(|e| {
                            e.event_type.as_deref() == Some("PUBLICATION")
                                && e.event_status.as_deref() == Some("SUCCESS")
                                && e.identificativo_documento.as_deref() == Some(id_doc)
                        });
                        Ok(if event.is_some() {
                            LostCreate::Published
                        } else {
                            LostCreate::NotPublished
                        })
                    }
                    // No events for this workflow: nothing was published.
                    Err(p) if p.status == 404 => Ok(LostCreate::NotPublished),
                    Err(p) => Err(problem_text(p)),
                },
                Err(e) => Err(e.to_string()),
            };
            let mut outcome = match &result {
                Ok(reply) => reply.outcome(),
                Err(e) => e.outcome(),
            };
            match (&verdict, event) {
                (Ok(LostCreate::Published), Some(e)) => {
                    outcome.error = Some(SETTLED_PUBLISHED.to_owned());
                    self.journal.settled_published(
                        call,
                        &outcome,
                        document_id,
                        e.trace_id.as_deref(),
                        e.workflow_instance_id.as_deref().or(Some(wii)),
                    )?;
                }
                (Ok(_), _) => {
                    outcome.error = Some(SETTLED_NOT_PUBLISHED.to_owned());
                    self.journal.outcome(call, &outcome)?;
                }
                (Err(_), _) => self.journal.outcome(call, &outcome)?,
            }
            let retryable = crate::client::is_retryable(&result);
            if verdict.is_err() && retryable && attempt < max {
                backoff(attempt);
                continue;
            }
            return Ok(verdict);
        }
    }

    /// Settles a create whose answer is unknown with a journaled status query.
    fn settle(&self, document_id: i64, wii: &str, id_doc: &str, why: &str) -> Result<(), Stop> {
        match self.settle_query(document_id, wii, id_doc)? {
            Ok(LostCreate::Published) => Ok(()),
            Ok(LostCreate::NotPublished) => Err(Stop::Unsettled(format!(
                "publication not answered ({why}); the gateway shows it unpublished: resume resends it"
            ))),
            Err(e) => Err(Stop::Unsettled(format!(
                "publication not answered ({why}); status query failed: {e}"
            ))),
        }
    }

    /// Resume one unfinished document: settle an open create, then run what remains.
    fn resume_one(&self, doc: &DocumentRow, calls: &[CallRecord]) -> Result<(), Stop> {
        let accepted_create = calls.iter().any(|c| {
            c.operation == "create" && c.http_status.is_some_and(|s| (200..300).contains(&s))
        });
        if accepted_create {
            self.journal.set_state(doc.id, DocState::Published, None)?;
            return Ok(());
        }
        // Without an answer, or with a 5xx (the gateway may have published before failing).
        let open_create = calls
            .iter()
            .rev()
            .find(|c| c.operation == "create")
            .filter(|c| c.http_status.is_none_or(|s| s >= 500));
        if let Some(create) = open_create {
            let wii = calls
                .iter()
                .rev()
                .filter(|c| c.operation == "validation" && c.call_id < create.call_id)
                .find_map(|c| c.workflow_instance_id.clone());
            let (Some(wii), Some(id_doc)) = (wii, doc.id_doc.clone()) else {
                return Err(Stop::Unsettled(
                    "open create without validation workflow id: settle by hand".into(),
                ));
            };
            match self.settle(doc.id, &wii, &id_doc, "interrupted") {
                Ok(()) => return Ok(()),
                Err(Stop::Unsettled(_)) => {
                    // Confirmed unpublished (or unknown: the status error is journaled and we
                    // stop rather than resend).
                    let last = self.journal.document_calls(doc.id)?;
                    let confirmed = last
                        .last()
                        .is_some_and(|c| c.error.as_deref() == Some(SETTLED_NOT_PUBLISHED));
                    if !confirmed {
                        return Err(Stop::Unsettled(
                            "status query failed: resume again later".into(),
                        ));
                    }
                }
                Err(other) => return Err(other),
            }
        }
        let source = PathBuf::from(&doc.source);
        let pdf = doc.pdf.as_ref().map(PathBuf::from);
        self.run(doc, &source, pdf.as_deref())
    }
}

fn finish(
    ctx: &Context<'_>,
    doc: &DocumentRow,
    result: Result<(), Stop>,
) -> Result<Progress, JournalError> {
    let (state, reason) = match result {
        Ok(()) => (DocState::Published, None),
        Err(Stop::Skipped(reason)) => {
            ctx.journal
                .set_state(doc.id, DocState::Skipped, Some(&reason))?;
            (DocState::Skipped, Some(reason))
        }
        Err(Stop::Failed(reason)) => {
            ctx.journal
                .set_state(doc.id, DocState::Failed, Some(&reason))?;
            (DocState::Failed, Some(reason))
        }
        Err(Stop::Unsettled(reason)) => {
            let current = ctx.journal.state(doc.id)?;
            ctx.journal.set_state(doc.id, current, Some(&reason))?;
            (current, Some(reason))
        }
        Err(Stop::Journal(e)) => return Err(e),
    };
    Ok(Progress::Done {
        name: doc.name.clone(),
        state,
        reason,
    })
}

fn execute(
    ctx: &Context<'_>,
    docs: Vec<DocumentRow>,
    resume: bool,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Summary, BatchError> {
    progress(Progress::Planned(docs.len()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(ctx.options.jobs.max(1))
        .build()
        .map_err(|e| BatchError::Setup(e.to_string()))?;
    let errors: Vec<JournalError> = pool.install(|| {
        docs.par_iter()
            .filter_map(|doc| {
                let result = if resume {
                    match ctx.journal.document_calls(doc.id) {
                        Ok(calls) => ctx.resume_one(doc, &calls),
                        Err(e) => Err(Stop::Journal(e)),
                    }
                } else {
                    let source = PathBuf::from(&doc.source);
                    let pdf = doc.pdf.as_ref().map(PathBuf::from);
                    ctx.run(doc, &source, pdf.as_deref())
                };
                match finish(ctx, doc, result) {
                    Ok(p) => {
                        progress(p);
                        None
                    }
                    Err(e) => Some(e),
                }
            })
            .collect()
    });
    if let Some(e) = errors.into_iter().next() {
        return Err(e.into());
    }
    let summary = summarize(ctx.journal, ctx.batch_id)?;
    if summary
        .counts
        .iter()
        .all(|(state, n)| state.is_terminal() || *n == 0)
    {
        ctx.journal.finish_batch(ctx.batch_id)?;
    }
    Ok(summary)
}

/// Counts and failures of a batch, from the journal.
pub fn summarize(journal: &Journal, batch_id: i64) -> Result<Summary, BatchError> {
    let mut summary = Summary {
        batch_id,
        ..Summary::default()
    };
    for d in journal.documents(batch_id)? {
        *summary.counts.entry(d.state).or_default() += 1;
        let reason = || {
            d.reason
                .clone()
                .unwrap_or_else(|| format!("stopped at {}", d.state))
        };
        match d.state {
            DocState::Published => {}
            DocState::Skipped => summary.skipped.push((d.name.clone(), reason())),
            _ => summary.failures.push((d.name.clone(), reason())),
        }
    }
    Ok(summary)
}

#[derive(Serialize)]
struct StoredOptions<'a> {
    id_policy: IdPolicy,
    defaults: &'a PublicationDefaults,
    gateway: &'a str,
    /// Absolute, so that `resume` and `journal export` find it from any directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dir: Option<PathBuf>,
}

/// Publishes every document of `input_dir` as a new batch.
pub fn publish(
    journal: &Journal,
    client: &GatewayClient,
    signer: &fse_pades::SignerIdentity,
    input_dir: &Path,
    options: &BatchOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Summary, BatchError> {
    let sources = discover(input_dir)?;
    let output_dir = match &options.output_dir {
        Some(dir) => Some(std::path::absolute(dir).map_err(|e| BatchError::Input {
            path: dir.clone(),
            message: e.to_string(),
        })?),
        None => None,
    };
    let stored = serde_json::to_string(&StoredOptions {
        id_policy: options.id_policy,
        defaults: &options.defaults,
        gateway: &options.gateway,
        output_dir,
    })
    .map_err(|e| BatchError::Setup(e.to_string()))?;
    let batch_id = journal.start_batch(&input_dir.to_string_lossy(), &stored)?;
    // Registered in one durable write.
    let paths: Vec<(String, Option<String>)> = sources
        .iter()
        .map(|s| {
            (
                s.cda.to_string_lossy().into_owned(),
                s.pdf.as_ref().map(|p| p.to_string_lossy().into_owned()),
            )
        })
        .collect();
    let rows: Vec<(&str, &str, Option<&str>)> = sources
        .iter()
        .zip(&paths)
        .map(|(s, (cda, pdf))| (s.name.as_str(), cda.as_str(), pdf.as_deref()))
        .collect();
    journal.add_documents(batch_id, &rows)?;
    let docs = journal.documents(batch_id)?;
    let ctx = Context {
        journal,
        client,
        signer,
        options,
        rate: RateLimiter::new(options.max_calls_per_second),
        batch_id,
    };
    execute(&ctx, docs, false, progress)
}

/// Batch `batch_id` (default: the latest) with its options: the id policy, publication
/// defaults and output folder stored with the batch win over `options` (an output folder
/// given now wins over the stored one).
fn stored_batch(
    journal: &Journal,
    batch_id: Option<i64>,
    options: &BatchOptions,
) -> Result<(crate::journal::BatchRow, BatchOptions), BatchError> {
    let batch = match batch_id {
        Some(id) => journal.batch(id)?,
        None => journal
            .last_batch()?
            .ok_or_else(|| JournalError::NotFound("the journal holds no batch".into()))?,
    };
    let mut options = options.clone();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&batch.options) {
        let stored = |key: &str| v.get(key).cloned();
        if let Some(p) = stored("id_policy").and_then(|p| serde_json::from_value(p).ok()) {
            options.id_policy = p;
        }
        if let Some(d) = stored("defaults").and_then(|d| serde_json::from_value(d).ok()) {
            options.defaults = d;
        }
        if options.output_dir.is_none() {
            options.output_dir = stored("output_dir").and_then(|o| serde_json::from_value(o).ok());
        }
    }
    Ok((batch, options))
}

/// Continues batch `batch_id` (default: the latest): documents not yet published or failed
/// are settled (status query for an unanswered create) and finished, their signed PDFs kept
/// in the batch's output folder (see [`stored_batch`]).
pub fn resume(
    journal: &Journal,
    client: &GatewayClient,
    signer: &fse_pades::SignerIdentity,
    batch_id: Option<i64>,
    options: &BatchOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Summary, BatchError> {
    let unfinished = |s: DocState| !s.is_terminal();
    continue_batch(
        journal, client, signer, batch_id, options, progress, unfinished,
    )
}

/// Sends the failed documents of batch `batch_id` (default: the latest) again, from their
/// source files as they are now (after a fix), within the same batch: each is settled first
/// like in [`resume`] (a create that may have published is never resent blindly), then
/// built, validated, signed and published. Documents published or skipped are left alone.
pub fn retry_failed(
    journal: &Journal,
    client: &GatewayClient,
    signer: &fse_pades::SignerIdentity,
    batch_id: Option<i64>,
    options: &BatchOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Summary, BatchError> {
    let failed = |s: DocState| s == DocState::Failed;
    continue_batch(journal, client, signer, batch_id, options, progress, failed)
}

/// Runs the documents of a stored batch whose state `pick` selects as in [`resume`] (an
/// open create settled first); a batch that finished is marked unfinished until they end.
fn continue_batch(
    journal: &Journal,
    client: &GatewayClient,
    signer: &fse_pades::SignerIdentity,
    batch_id: Option<i64>,
    options: &BatchOptions,
    progress: &(dyn Fn(Progress) + Sync),
    pick: impl Fn(DocState) -> bool,
) -> Result<Summary, BatchError> {
    let (batch, options) = stored_batch(journal, batch_id, options)?;
    let docs: Vec<DocumentRow> = journal
        .documents(batch.id)?
        .into_iter()
        .filter(|d| pick(d.state))
        .collect();
    if batch.finished_at.is_some() && !docs.is_empty() {
        journal.reopen_batch(batch.id)?;
    }
    let ctx = Context {
        journal,
        client,
        signer,
        options: &options,
        rate: RateLimiter::new(options.max_calls_per_second),
        batch_id: batch.id,
    };
    execute(&ctx, docs, true, progress)
}

/// A throw-away sandbox for `--sandbox`: initialised in `dir` if needed (fresh test PKI),
/// started on an ephemeral loopback port; returns it with the matching client configuration.
pub fn start_sandbox(
    dir: &Path,
) -> Result<(crate::sandbox::Sandbox, ClientConfig), crate::sandbox::SandboxError> {
    use crate::sandbox::{self, Sandbox, ServeOptions};
    let config_path = dir.join(sandbox::CONFIG_FILE);
    if !config_path.exists() {
        sandbox::init(dir, std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?;
    }
    let mut options = ServeOptions::new(dir);
    options.listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let running = Sandbox::start(options)?;
    let mut config = ClientConfig::load(&config_path)?;
    config.gateway.base_url = running.base_url().to_owned();
    config.gateway.audience = Some(running.audience());
    Ok((running, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_pairs_json_and_xml_as_one_document() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("LAB")).unwrap();
        for f in [
            "LAB/a.json",
            "LAB/a.xml",
            "LAB/b.xml",
            "LAB/b.pdf",
            "c.pdf",
            ".h.xml",
            "x.txt",
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        let found = discover(d).unwrap();
        assert_eq!(
            found,
            vec![
                Source {
                    name: "LAB/a".into(),
                    cda: d.join("LAB/a.json"),
                    pdf: None
                },
                Source {
                    name: "LAB/b".into(),
                    cda: d.join("LAB/b.xml"),
                    pdf: Some(d.join("LAB/b.pdf"))
                },
            ]
        );
        assert!(discover(&d.join("missing")).is_err());
    }

    /// The built-in rules judge the parsed tree exactly as they judge the bytes, on valid
    /// documents and on documents their schematron refuses.
    #[test]
    fn builtin_rules_judge_the_tree_as_the_bytes() {
        let rules = RulesValidator::builtin().unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/build");
        let mut judged = 0;
        let mut refused = 0;
        for kind in std::fs::read_dir(&dir).unwrap() {
            let kind = kind.unwrap().path();
            if !kind.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&kind).unwrap() {
                let file = file.unwrap().path();
                if file.extension().and_then(|e| e.to_str()) != Some("xml") {
                    continue;
                }
                let xml = std::fs::read_to_string(&file).unwrap();
                // the document, and copies missing a header element or with a wrong code
                let variants = [
                    xml.clone(),
                    xml.replacen("<title", "<titolo", 1)
                        .replacen("</title>", "</titolo>", 1),
                    xml.replacen(
                        "codeSystem=\"2.16.840.1.113883.6.1\"",
                        "codeSystem=\"9.9\"",
                        1,
                    ),
                    xml.replacen("<effectiveTime", "<effectiveTimeX", 1),
                ];
                for v in variants {
                    let tree = parse_cda(v.as_bytes());
                    let Ok(tree) = tree else { continue };
                    let by_bytes = rules.validate(v.as_bytes());
                    assert_eq!(
                        rules.validate_parsed(&tree, v.as_bytes()),
                        by_bytes,
                        "{}",
                        file.display()
                    );
                    judged += 1;
                    refused += usize::from(by_bytes.is_err());
                }
            }
        }
        assert!(
            judged >= 40 && refused >= 10,
            "{judged} judged, {refused} refused"
        );
    }

    /// A copy of the LAB fixtures as a batch input.
    fn lab_input(into: &Path) -> usize {
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/build/LAB");
        std::fs::create_dir_all(into).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, into.join(p.file_name().unwrap())).unwrap();
        }
        discover(into).unwrap().len()
    }

    fn creates_at_gateway(sb_dir: &Path) -> usize {
        crate::sandbox::cart_log(sb_dir)
            .unwrap()
            .iter()
            .filter(|e| e.operation == "create")
            .count()
    }

    /// A sandbox in `dir/sb`, its client and signer, and the LAB fixtures in `dir/in`.
    struct Bench {
        sb: crate::sandbox::Sandbox,
        sb_dir: PathBuf,
        client: GatewayClient,
        signer: fse_pades::SignerIdentity,
        input: PathBuf,
        n: usize,
    }

    fn bench(dir: &Path) -> Bench {
        let sb_dir = dir.join("sb");
        let (sb, config) = start_sandbox(&sb_dir).unwrap();
        let input = dir.join("in");
        Bench {
            sb,
            client: GatewayClient::from_config(&config).unwrap(),
            signer: pades_signer(&config).unwrap(),
            n: lab_input(&input),
            sb_dir,
            input,
        }
    }

    #[test]
    fn resume_settles_unanswered_creates_by_status_query() {
        let tmp = tempfile::tempdir().unwrap();
        let Bench {
            sb,
            sb_dir,
            client,
            signer,
            input,
            n,
        } = bench(tmp.path());
        assert!(n >= 3);
        let journal = Journal::open(&tmp.path().join("j.sqlite")).unwrap();
        let options = BatchOptions {
            id_policy: IdPolicy::CdaIdWithHash,
            max_calls_per_second: 0.0,
            ..BatchOptions::default()
        };
        let summary = publish(&journal, &client, &signer, &input, &options, &|_| {}).unwrap();
        assert_eq!(summary.count(DocState::Published), n);
        assert_eq!(creates_at_gateway(&sb_dir), n);
        // As after a SIGKILL while the creates' answers were in flight: the gateway published,
        // the journal holds intents without outcome.
        journal
            .with(|c| {
                c.execute_batch(
                    "UPDATE call SET finished_at = NULL, http_status = NULL, x_cart_id = NULL,
                       trace_id = NULL, span_id = NULL, workflow_instance_id = NULL
                     WHERE operation = 'create';
                     UPDATE document SET state = 'signed';
                     UPDATE batch SET finished_at = NULL;",
                )
            })
            .unwrap();
        let summary = resume(&journal, &client, &signer, None, &options, &|_| {}).unwrap();
        assert_eq!(summary.count(DocState::Published), n, "{summary:?}");
        // No create was resent: each was settled by one status query.
        assert_eq!(creates_at_gateway(&sb_dir), n);
        let calls = journal.calls(None).unwrap();
        let status: Vec<_> = calls.iter().filter(|c| c.operation == "status").collect();
        assert_eq!(status.len(), n);
        assert!(status
            .iter()
            .all(|c| c.error.as_deref() == Some("settled: Published")
                && c.http_status == Some(200)
                && c.x_cart_id.is_some()));
        assert!(journal
            .batch(summary.batch_id)
            .unwrap()
            .finished_at
            .is_some());
        sb.stop();
    }

    /// `resume` without an output folder keeps the signed PDFs in the batch's folder, a
    /// create settled by a status query is a publication of `data.json` with the
    /// publication's identifiers, and `data.json` lists only files that exist. A sidecar
    /// that contradicts the document type fails its document before any call.
    #[test]
    fn resume_keeps_the_batch_s_output_folder_and_data_json_lists_what_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let Bench {
            sb,
            sb_dir,
            client,
            signer,
            input,
            n,
        } = bench(tmp.path());
        let sources = discover(&input).unwrap();
        // The first document: a sidecar saying VAC for a laboratory report (REF).
        let sidecar = sources[0].cda.with_extension("meta.json");
        std::fs::write(&sidecar, br#"{"tipo_documento_liv_alto": "VAC"}"#).unwrap();
        let journal = Journal::open(&tmp.path().join("j.sqlite")).unwrap();
        let out = tmp.path().join("out");
        let options = BatchOptions {
            id_policy: IdPolicy::CdaIdWithHash,
            max_calls_per_second: 0.0,
            output_dir: Some(out.clone()),
            ..BatchOptions::default()
        };
        let summary = publish(&journal, &client, &signer, &input, &options, &|_| {}).unwrap();
        assert_eq!(summary.count(DocState::Published), n - 1, "{summary:?}");
        assert!(summary.failures[0].1.contains("accepts only REF"));
        let docs = journal.documents(summary.batch_id).unwrap();
        let (bad, lost) = (&docs[0], &docs[1]);
        assert!(
            journal.document_calls(bad.id).unwrap().is_empty(),
            "nothing sent"
        );
        // As after a kill: the bad document (now fixed) not yet run, the answer of another
        // document's create lost.
        std::fs::remove_file(&sidecar).unwrap();
        journal
            .with(|c| {
                c.execute(
                    "UPDATE document SET state = 'pending', reason = NULL WHERE id = ?1",
                    [bad.id],
                )?;
                c.execute(
                    "UPDATE call SET finished_at = NULL, http_status = NULL, x_cart_id = NULL,
                       trace_id = NULL, span_id = NULL, workflow_instance_id = NULL
                     WHERE operation = 'create' AND document_id = ?1",
                    [lost.id],
                )?;
                c.execute(
                    "UPDATE document SET state = 'signed' WHERE id = ?1",
                    [lost.id],
                )?;
                c.execute_batch("UPDATE batch SET finished_at = NULL")
            })
            .unwrap();
        let without_output = BatchOptions {
            output_dir: None,
            ..options.clone()
        };
        let summary = resume(&journal, &client, &signer, None, &without_output, &|_| {}).unwrap();
        assert_eq!(summary.count(DocState::Published), n, "{summary:?}");
        for d in &docs {
            assert!(out.join(format!("{}.pdf", d.name)).is_file(), "{}", d.name);
        }
        // The settled create carries the publication's trace id, as the gateway logged it.
        let lost_create = journal
            .document_calls(lost.id)
            .unwrap()
            .into_iter()
            .find(|c| c.operation == "create")
            .unwrap();
        assert_eq!(lost_create.http_status, None, "no answer came");
        let logged_trace = crate::sandbox::cart_log(&sb_dir)
            .unwrap()
            .into_iter()
            .find(|e| e.operation == "create" && e.identificativo_doc == lost.id_doc)
            .and_then(|e| e.trace_id);
        assert!(logged_trace.is_some());
        assert_eq!(lost_create.trace_id, logged_trace);
        // data.json: every publication, files only where the PDF exists.
        std::fs::remove_file(out.join(format!("{}.pdf", docs[2].name))).unwrap();
        let calls = journal.calls(None).unwrap();
        let data =
            crate::journal::data_json(&calls, &journal.output_dirs().unwrap(), "v", "i", "1");
        assert_eq!(data.results.len(), n);
        let lost_result = data
            .results
            .iter()
            .find(|r| Some(&r.trace_id) == logged_trace.as_ref())
            .expect("the settled publication is listed");
        assert_eq!(lost_result.files, vec![format!("{}.pdf", lost.name)]);
        let listed: Vec<&String> = data.results.iter().flat_map(|r| &r.files).collect();
        assert_eq!(listed.len(), n - 1, "{listed:?}");
        assert!(listed.iter().all(|f| out.join(f).is_file()));
        sb.stop();
    }

    #[test]
    fn rate_limiter_spaces_calls() {
        let r = RateLimiter::new(50.0);
        let start = Instant::now();
        for _ in 0..6 {
            r.wait();
        }
        // 6 calls at 50/s: the 6th no earlier than 5 intervals (100 ms) after the first.
        assert!(start.elapsed() >= Duration::from_millis(95));
    }
}
