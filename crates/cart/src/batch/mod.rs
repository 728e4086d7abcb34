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
//! by a status query on the validation's workflow instance, never by a blind resend.
//!
//! Local validation ([`LocalValidator`]) runs before anything is sent: [`RulesValidator`]
//! judges the CDA with a `fse_cda::validate::RuleSet` (the official rule folder named by
//! `[rules] dir`, `--rules` or `FSE_CDA_RULES`, else `fse_cda`'s built-in rules); a document
//! it refuses ends `failed` with the verdict as its reason and makes no gateway call.
//!
//! Publication metadata: [`BatchOptions::defaults`] (the configuration's `[publication]`),
//! overridden per document by a sidecar `NAME.meta.json` holding any of the same keys
//! (`{"tipo_attivita_clinica": "CON", "identificativo_rep": "…"}`); unknown keys are refused.

use crate::api::{
    Activity, HealthDataFormat, InjectionMode, Problem, PublicationRequest, TipoDocumentoLivAlto,
    ValidationRequest,
};
use crate::client::config::ClientConfig;
use crate::client::{ClientError, Document, GatewayClient, LostCreate, Reply};
use crate::journal::{CallRecord, DocState, DocumentRow, Journal, JournalError, Outcome};
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

/// What the pipeline reads from a CDA header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    /// `ClinicalDocument/id` as `root^extension`.
    id: String,
    /// `code/@code` (LOINC).
    loinc: String,
    /// The first `recordTarget/patientRole/id` as CX (`EXT^^^&ROOT&ISO`): the JWT's
    /// `person_id`, which the gateway requires to be the document's patient.
    person_id: Option<String>,
}

/// Parses a CDA (once per document: the header and the local validation read the tree).
fn parse_cda(cda: &[u8]) -> Result<fse_cda::xml::Document, String> {
    fse_cda::xml::parse(cda).map_err(|e| format!("CDA not readable: {e}"))
}

/// Reads the [`Header`] of a parsed CDA.
fn cda_header(doc: &fse_cda::xml::Document) -> Result<Header, String> {
    let root = doc
        .document_element()
        .filter(|&r| doc.local_name(r) == "ClinicalDocument")
        .ok_or("the root element is not ClinicalDocument")?;
    let child = |name: &str| {
        doc.child_elements(root)
            .find(|&c| doc.local_name(c) == name)
    };
    let id = child("id").ok_or("ClinicalDocument/id is missing")?;
    let id_root = doc.attribute(id, "root").unwrap_or_default();
    let id_ext = doc.attribute(id, "extension").unwrap_or_default();
    if id_root.is_empty() || id_ext.is_empty() {
        return Err("ClinicalDocument/id needs @root and @extension".into());
    }
    let code = child("code")
        .and_then(|c| doc.attribute(c, "code"))
        .filter(|c| !c.is_empty())
        .ok_or("ClinicalDocument/code/@code is missing")?;
    let person_id = child("recordTarget")
        .and_then(|rt| {
            doc.child_elements(rt)
                .find(|&c| doc.local_name(c) == "patientRole")
        })
        .and_then(|pr| doc.child_elements(pr).find(|&c| doc.local_name(c) == "id"))
        .and_then(|pid| {
            let ext = doc.attribute(pid, "extension").filter(|e| !e.is_empty())?;
            let root = doc.attribute(pid, "root").unwrap_or_default();
            Some(format!("{ext}^^^&{root}&ISO"))
        });
    Ok(Header {
        id: format!("{id_root}^{id_ext}"),
        loinc: code.to_owned(),
        person_id,
    })
}

/// `tipoDocumentoLivAlto` by LOINC document code.
fn high_level_type(loinc: &str) -> TipoDocumentoLivAlto {
    match loinc {
        "34105-7" => TipoDocumentoLivAlto::Ldo,
        "60591-5" => TipoDocumentoLivAlto::Sum,
        "59258-4" => TipoDocumentoLivAlto::Vrb,
        "87273-9" => TipoDocumentoLivAlto::Vac,
        "82593-5" => TipoDocumentoLivAlto::Cer,
        _ => TipoDocumentoLivAlto::Ref,
    }
}

/// Waits before attempt `attempt + 1`: 200 ms, 400 ms, 800 ms… (at most 6.4 s).
fn backoff(attempt: u32) {
    std::thread::sleep(Duration::from_millis(
        200u64 << attempt.saturating_sub(1).min(5),
    ));
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

fn outcome_of<T>(reply: &Reply<T>) -> Outcome {
    let (problem_type, error) = match &reply.body {
        Ok(_) => (None, None),
        Err(p) => (Some(p.problem_type.uri().to_owned()), Some(problem_text(p))),
    };
    Outcome {
        http_status: Some(reply.status),
        x_cart_id: reply.x_cart_id.clone(),
        trace_id: reply.trace_id.clone(),
        span_id: reply.span_id.clone(),
        workflow_instance_id: reply.workflow_instance_id.clone(),
        problem_type,
        error,
    }
}

fn outcome_of_error(e: &ClientError) -> Outcome {
    let (http_status, x_cart_id) = match e {
        ClientError::Unexpected {
            status, x_cart_id, ..
        } => (Some(*status), x_cart_id.clone()),
        _ => (None, None),
    };
    Outcome {
        http_status,
        x_cart_id,
        error: Some(e.to_string()),
        ..Outcome::default()
    }
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
                outcome_of(reply),
                steps.accepted.filter(|_| reply.is_success()),
            ),
            Err(e) => (outcome_of_error(e), None),
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
        if let Some((batch, name)) = j.published_elsewhere(&id_doc, self.batch_id)? {
            return Err(Stop::Failed(format!(
                "{id_doc} already published (or possibly published) by batch {batch} as {name}: \
                 not sent again (settle that batch with `fse batch resume --batch {batch}`)"
            )));
        }
        // Publication metadata (sidecar over the defaults): checked before any call.
        let d = document_defaults(source, &self.options.defaults).map_err(Stop::Failed)?;
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
            tipo_documento_liv_alto: d
                .tipo_documento_liv_alto
                .unwrap_or_else(|| high_level_type(&loinc)),
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
                Ok(LostCreate::Published) => {
                    j.set_state(doc.id, DocState::Published, None)?;
                    return Ok(());
                }
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
            let retryable = match &result {
                Ok(reply) => reply.status >= 500,
                Err(ClientError::NoAnswer { .. }) => true,
                Err(ClientError::Unexpected { status, .. }) => *status >= 500,
                Err(_) => false,
            };
            if retryable && attempt < max {
                backoff(attempt);
                continue;
            }
            return Ok(result);
        }
    }

    /// Asks the status of the validation's workflow whether `id_doc` was published; each
    /// query journaled as operation `status` (its `error` reading `settled: …` once known).
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
            let verdict: Result<LostCreate, String> = match &result {
                Ok(reply) => match &reply.body {
                    Ok(inspection) => {
                        let published = inspection.transaction_data.iter().any(|e| {
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
                    // No events for this workflow: nothing was published.
                    Err(p) if p.status == 404 => Ok(LostCreate::NotPublished),
                    Err(p) => Err(problem_text(p)),
                },
                Err(e) => Err(e.to_string()),
            };
            let mut outcome = match &result {
                Ok(reply) => outcome_of(reply),
                Err(e) => outcome_of_error(e),
            };
            if let Ok(v) = &verdict {
                outcome.error = Some(format!("settled: {v:?}"));
            }
            self.journal.outcome(call, &outcome)?;
            let retryable = match &result {
                Ok(reply) => reply.status >= 500,
                Err(ClientError::NoAnswer { .. }) => true,
                Err(ClientError::Unexpected { status, .. }) => *status >= 500,
                Err(_) => false,
            };
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
            Ok(LostCreate::Published) => {
                self.journal
                    .set_state(document_id, DocState::Published, None)?;
                Ok(())
            }
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
                        .is_some_and(|c| c.error.as_deref() == Some("settled: NotPublished"));
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
        if d.state != DocState::Published {
            summary.failures.push((
                d.name.clone(),
                d.reason
                    .clone()
                    .unwrap_or_else(|| format!("stopped at {}", d.state)),
            ));
        }
    }
    Ok(summary)
}

#[derive(Serialize)]
struct StoredOptions<'a> {
    id_policy: IdPolicy,
    defaults: &'a PublicationDefaults,
    gateway: &'a str,
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
    let stored = serde_json::to_string(&StoredOptions {
        id_policy: options.id_policy,
        defaults: &options.defaults,
        gateway: &options.gateway,
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

/// Continues batch `batch_id` (default: the latest): documents not yet published or failed
/// are settled (status query for an unanswered create) and finished. The id policy and
/// publication defaults stored with the batch win over `options`.
pub fn resume(
    journal: &Journal,
    client: &GatewayClient,
    signer: &fse_pades::SignerIdentity,
    batch_id: Option<i64>,
    options: &BatchOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Summary, BatchError> {
    let batch = match batch_id {
        Some(id) => journal.batch(id)?,
        None => journal
            .last_batch()?
            .ok_or_else(|| JournalError::NotFound("the journal holds no batch".into()))?,
    };
    let mut options = options.clone();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&batch.options) {
        if let Some(p) = v
            .get("id_policy")
            .and_then(|p| serde_json::from_value(p.clone()).ok())
        {
            options.id_policy = p;
        }
        if let Some(d) = v
            .get("defaults")
            .and_then(|d| serde_json::from_value(d.clone()).ok())
        {
            options.defaults = d;
        }
    }
    let docs: Vec<DocumentRow> = journal
        .documents(batch.id)?
        .into_iter()
        .filter(|d| !d.state.is_terminal())
        .collect();
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

    #[test]
    fn reads_the_cda_header() {
        let cda_header = |cda: &[u8]| parse_cda(cda).and_then(|doc| cda_header(&doc));
        let cda = br#"<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3">
            <id root="1.2.3" extension="X1"/><code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/>
            </ClinicalDocument>"#;
        assert_eq!(
            cda_header(cda).unwrap(),
            Header {
                id: "1.2.3^X1".to_owned(),
                loinc: "11502-2".to_owned(),
                person_id: None
            }
        );
        let with_patient = br#"<ClinicalDocument xmlns="urn:hl7-org:v3">
            <id root="1.2.3" extension="X1"/><code code="11502-2"/>
            <recordTarget><patientRole><id root="2.16.840.1.113883.2.9.4.3.2" extension="RSSMRA80A01D612X"/>
            </patientRole></recordTarget></ClinicalDocument>"#;
        assert_eq!(
            cda_header(with_patient).unwrap().person_id.as_deref(),
            Some("RSSMRA80A01D612X^^^&2.16.840.1.113883.2.9.4.3.2&ISO")
        );
        assert!(cda_header(b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>").is_err());
        assert!(cda_header(b"not xml").is_err());
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

    #[test]
    fn resume_settles_unanswered_creates_by_status_query() {
        let tmp = tempfile::tempdir().unwrap();
        let sb_dir = tmp.path().join("sb");
        let (sb, config) = start_sandbox(&sb_dir).unwrap();
        let client = GatewayClient::from_config(&config).unwrap();
        let signer = pades_signer(&config).unwrap();
        let input = tmp.path().join("in");
        let n = lab_input(&input);
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
