//! `fse gateway …`: one call to the gateway through CART (or the sandbox), configured by
//! `--config FILE` (see `fse sandbox init` for an example file). Prints one JSON object with
//! the outcome and its identifiers (`http_status`, `x_cart_id`, `trace_id`, `span_id`,
//! `workflow_instance_id`), success or refusal alike.
//!
//! The JWT's `person_id` is the patient of the CDA inside the PDF (as in `fse batch`), the
//! configuration's `[profile] person_id` only for calls without a document. Every call is
//! journaled (intent before, outcome with its `X-CART-id` after; one row per attempt) in the
//! `gateway_call` table of the journal next to `--config` (or `--journal FILE`).
//!
//! Before anything is sent, a request the gateway would refuse on its form is refused here
//! (exit 2, nothing sent): an `identificativoDoc` or path `idDoc` without `root^extension`, a
//! `tipoDocumentoLivAlto` that does not correlate with the document type (when the metadata
//! file leaves it out, it is derived from the document type).
//!
//! Exit codes: 0 accepted, 1 refused (problem+json), 2 usage, input, or no answer.

use super::batch::journal_path;
use super::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};
use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use fse_cart::api::correlation::{is_valid_document_id, resolve_high_level_type};
use fse_cart::api::{
    Activity, InjectionMode, MetadataRequest, Operation, PublicationRequest, ReplaceRequest,
    ValidationRequest,
};
use fse_cart::client::cda::read_cda_header;
use fse_cart::client::config::ClientConfig;
use fse_cart::client::{ClientError, Document, GatewayCall, GatewayClient, Journaled, Reply};
use fse_cart::journal::Journal;
use fse_cart::sandbox::checks::{BasicPdfInspector, PdfInspector};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// POST /documents/validation: VERIFICA (check only) or VALIDATION (check and enable the
    /// publication of this CDA for 5 days).
    Validate(ValidateArgs),
    /// POST /documents: publish a signed PDF (validated before with --activity validation).
    #[command(visible_alias = "publish")]
    Create(PublishArgs),
    /// PUT /documents/{idDoc}: replace a published document.
    Replace(ReplaceArgs),
    /// PUT /documents/{idDoc}/metadata-iti-57: update a published document's metadata.
    #[command(visible_alias = "update")]
    Metadata(MetadataArgs),
    /// DELETE /documents/{idDoc}.
    Delete(DeleteArgs),
    /// GET /status/{workflowInstanceId} or, with --trace, /status/search/{traceId}.
    Status(StatusArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ActivityArg {
    Verifica,
    Validation,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Attachment,
    Resource,
}

impl From<ModeArg> for InjectionMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Attachment => InjectionMode::Attachment,
            ModeArg::Resource => InjectionMode::Resource,
        }
    }
}

#[derive(Debug, Args)]
pub struct JournalArg {
    /// Journal database (default: fse-journal.sqlite next to --config).
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DocumentArgs {
    /// The signed PDF with the CDA inside.
    pdf: PathBuf,
    /// LOINC document type for the JWT's resource_hl7_type (default: read from the CDA).
    #[arg(long)]
    loinc: Option<String>,
    /// Where the CDA sits in the PDF.
    #[arg(long, value_enum, default_value_t = ModeArg::Attachment)]
    mode: ModeArg,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    journal: JournalArg,
    #[command(flatten)]
    document: DocumentArgs,
    /// VERIFICA (200) or VALIDATION (201, required before a publication).
    #[arg(long, value_enum, default_value_t = ActivityArg::Verifica)]
    activity: ActivityArg,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    journal: JournalArg,
    #[command(flatten)]
    document: DocumentArgs,
    /// JSON file with the request body (the OpenAPI's PublicationCreationReqDTO);
    /// tipoDocumentoLivAlto may be left out (derived from the document type).
    #[arg(long)]
    metadata: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReplaceArgs {
    #[command(flatten)]
    journal: JournalArg,
    /// identificativoDoc of the document to replace.
    id_doc: String,
    #[command(flatten)]
    document: DocumentArgs,
    /// JSON file with the request body (PublicationUpdateReqDTO); tipoDocumentoLivAlto may be
    /// left out (derived from the document type).
    #[arg(long)]
    metadata: PathBuf,
}

#[derive(Debug, Args)]
pub struct MetadataArgs {
    #[command(flatten)]
    journal: JournalArg,
    /// identificativoDoc of the document.
    id_doc: String,
    /// JSON file with the request body (PublicationMetadataReqDTO); tipoDocumentoLivAlto may
    /// be left out (derived from --loinc).
    #[arg(long)]
    metadata: PathBuf,
    /// LOINC document type for the JWT's resource_hl7_type.
    #[arg(long)]
    loinc: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    journal: JournalArg,
    /// identificativoDoc of the document.
    id_doc: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    journal: JournalArg,
    /// workflowInstanceId (or the traceID with --trace).
    id: String,
    /// Look up by traceID instead.
    #[arg(long)]
    trace: bool,
}

/// The printed outcome.
#[derive(Serialize)]
struct Printed<'a, T: Serialize> {
    operation: &'a str,
    /// The HTTP status (the README's name).
    http_status: u16,
    /// The same, under its earlier name.
    status: u16,
    accepted: bool,
    x_cart_id: Option<&'a str>,
    trace_id: Option<&'a str>,
    span_id: Option<&'a str>,
    workflow_instance_id: Option<&'a str>,
    attempts: u32,
    /// The journal's `gateway_call` row of this answer.
    journal_call_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<&'a fse_cart::api::Problem>,
}

fn print<T: Serialize>(reply: &Reply<T>, attempts: u32, row: Option<i64>) -> anyhow::Result<u8> {
    let printed = Printed {
        operation: reply.operation.name(),
        http_status: reply.status,
        status: reply.status,
        accepted: reply.body.is_ok(),
        x_cart_id: reply.x_cart_id.as_deref(),
        trace_id: reply.trace_id.as_deref(),
        span_id: reply.span_id.as_deref(),
        workflow_instance_id: reply.workflow_instance_id.as_deref(),
        attempts,
        journal_call_id: row,
        response: reply.body.as_ref().ok(),
        problem: reply.body.as_ref().err(),
    };
    println!("{}", serde_json::to_string_pretty(&printed)?);
    Ok(if reply.body.is_ok() {
        EXIT_OK
    } else {
        EXIT_INVALID
    })
}

/// The request body of `path`; a missing `tipoDocumentoLivAlto` is derived from `loinc`, one
/// given must correlate with it, and `identificativoDoc` (when the body has one) must be
/// `root^extension`: what the gateway would refuse is refused here.
fn read_body<T: serde::de::DeserializeOwned>(path: &Path, loinc: &str) -> anyhow::Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut value: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a valid request body", path.display()))?;
    if let Some(object) = value.as_object_mut() {
        let given = match object.get("tipoDocumentoLivAlto") {
            Some(v) => Some(
                serde_json::from_value(v.clone())
                    .with_context(|| format!("{}: not a valid request body", path.display()))?,
            ),
            None => None,
        };
        let class = resolve_high_level_type(loinc, given)
            .map_err(|e| anyhow!("{}: {e}; nothing sent", path.display()))?;
        object.insert("tipoDocumentoLivAlto".into(), class.as_str().into());
        if let Some(id) = object.get("identificativoDoc").and_then(|v| v.as_str()) {
            check_id(id).with_context(|| format!("{}: identificativoDoc", path.display()))?;
        }
    }
    serde_json::from_value(value)
        .with_context(|| format!("{}: not a valid request body", path.display()))
}

/// A document id the gateway accepts (`root^extension`), else the reason.
fn check_id(id: &str) -> anyhow::Result<()> {
    if !is_valid_document_id(id) {
        bail!(
            "{id:?} is not root^extension (the gateway answers 400 /msg/id-doc to an id without \
             `^` and a non-empty part after it); nothing sent"
        );
    }
    Ok(())
}

struct Loaded {
    pdf: Vec<u8>,
    loinc: String,
    /// The CDA's patient as CX, for the JWT's `person_id`.
    person_id: Option<String>,
    mode: InjectionMode,
    file: String,
}

impl Loaded {
    fn document(&self) -> Document<'_> {
        Document {
            pdf: &self.pdf,
            loinc: &self.loinc,
        }
    }
}

fn load_document(args: &DocumentArgs) -> anyhow::Result<Loaded> {
    let pdf =
        std::fs::read(&args.pdf).with_context(|| format!("reading {}", args.pdf.display()))?;
    let mode = InjectionMode::from(args.mode);
    let header = BasicPdfInspector
        .extract_cda(&pdf, mode)
        .and_then(|cda| read_cda_header(&cda));
    let (loinc, person_id) = match (header, &args.loinc) {
        (Ok(h), loinc) => (loinc.clone().unwrap_or(h.loinc), h.person_id),
        (Err(e), Some(loinc)) => {
            eprintln!(
                "fse: warning: {}: {e}; the token's person_id is the configuration's",
                args.pdf.display()
            );
            (loinc.clone(), None)
        }
        (Err(e), None) => bail!("{}: {e}; pass --loinc", args.pdf.display()),
    };
    Ok(Loaded {
        pdf,
        loinc,
        person_id,
        mode,
        file: args.pdf.display().to_string(),
    })
}

/// Sends one call journaled as `call` (see [`GatewayClient::journaled`]) and prints its
/// outcome; returns the exit code.
fn journaled<T: Serialize>(
    client: &GatewayClient,
    journal: &Journal,
    call: GatewayCall<'_>,
    send: impl Fn() -> Result<Reply<T>, ClientError>,
) -> anyhow::Result<u8> {
    let Journaled {
        result,
        rows,
        unrecorded,
    } = client.journaled(journal, &call, send)?;
    let attempts = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    if let Some(e) = &unrecorded {
        eprintln!("fse: error: the answer below could not be journaled: {e}");
    }
    let code = match result {
        Ok(reply) => print(&reply, attempts, rows.last().copied()),
        Err(ClientError::NoAnswer { message, .. }) => {
            eprintln!(
                "fse: error: no answer from the gateway after {attempts} attempt(s): {message}"
            );
            Ok(EXIT_USAGE)
        }
        Err(e) => Err(e.into()),
    }?;
    Ok(if unrecorded.is_some() {
        EXIT_USAGE
    } else {
        code
    })
}

pub fn run(cmd: GatewayCommand, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Some(config_path) = config else {
        eprintln!("fse: error: `fse gateway` needs --config FILE (or FSE_CONFIG); `fse sandbox init DIR` writes one");
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let config = ClientConfig::load_with_env(Some(config_path))?;
    let client = GatewayClient::from_config(&config).context("setting up the gateway client")?;
    let open = |arg: &JournalArg| -> anyhow::Result<Journal> {
        Ok(Journal::open(&journal_path(
            arg.journal.as_deref(),
            Some(config_path),
        ))?)
    };
    let code = match cmd {
        GatewayCommand::Validate(args) => {
            let d = load_document(&args.document)?;
            let activity = match args.activity {
                ActivityArg::Verifica => Activity::Verifica,
                ActivityArg::Validation => Activity::Validation,
            };
            let body = ValidationRequest {
                health_data_format: Some(fse_cart::api::HealthDataFormat::Cda),
                mode: Some(d.mode),
                activity,
            };
            let call = GatewayCall {
                operation: Operation::Validation,
                id_doc: None,
                file: Some(&d.file),
            };
            journaled(&client, &open(&args.journal)?, call, || {
                client.validate_once(d.document(), &body, d.person_id.as_deref())
            })?
        }
        GatewayCommand::Create(args) => {
            let d = load_document(&args.document)?;
            let body: PublicationRequest = read_body(&args.metadata, &d.loinc)?;
            let call = GatewayCall {
                operation: Operation::Create,
                id_doc: Some(&body.identificativo_doc),
                file: Some(&d.file),
            };
            journaled(&client, &open(&args.journal)?, call, || {
                client.create_for(d.document(), &body, d.person_id.as_deref())
            })?
        }
        GatewayCommand::Replace(args) => {
            check_id(&args.id_doc).context("idDoc")?;
            let d = load_document(&args.document)?;
            let body: ReplaceRequest = read_body(&args.metadata, &d.loinc)?;
            let call = GatewayCall {
                operation: Operation::Replace,
                id_doc: Some(&args.id_doc),
                file: Some(&d.file),
            };
            journaled(&client, &open(&args.journal)?, call, || {
                client.replace_for(&args.id_doc, d.document(), &body, d.person_id.as_deref())
            })?
        }
        GatewayCommand::Metadata(args) => {
            check_id(&args.id_doc).context("idDoc")?;
            let body: MetadataRequest = read_body(&args.metadata, &args.loinc)?;
            let call = GatewayCall {
                operation: Operation::UpdateMetadata,
                id_doc: Some(&args.id_doc),
                file: None,
            };
            journaled(&client, &open(&args.journal)?, call, || {
                client.update_metadata(&args.id_doc, &args.loinc, &body)
            })?
        }
        GatewayCommand::Delete(args) => {
            check_id(&args.id_doc).context("idDoc")?;
            let call = GatewayCall {
                operation: Operation::Delete,
                id_doc: Some(&args.id_doc),
                file: None,
            };
            journaled(&client, &open(&args.journal)?, call, || {
                client.delete(&args.id_doc)
            })?
        }
        GatewayCommand::Status(args) => {
            let operation = if args.trace {
                Operation::StatusByTrace
            } else {
                Operation::StatusByWorkflow
            };
            let call = GatewayCall {
                operation,
                id_doc: Some(&args.id),
                file: None,
            };
            journaled(&client, &open(&args.journal)?, call, || {
                if args.trace {
                    client.status_by_trace_once(&args.id)
                } else {
                    client.status_once(&args.id)
                }
            })?
        }
    };
    Ok(ExitCode::from(code))
}
