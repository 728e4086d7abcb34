//! `fse gateway …`: one call to the gateway through CART (or the sandbox), configured by
//! `--config FILE` (see `fse sandbox init` for an example file). Prints one JSON object with
//! the outcome and its identifiers (`x_cart_id`, `trace_id`, `span_id`,
//! `workflow_instance_id`), success or refusal alike.
//!
//! Exit codes: 0 accepted, 1 refused (problem+json), 2 usage, input, or no answer.

use super::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};
use anyhow::{anyhow, Context};
use clap::{Args, Subcommand, ValueEnum};
use fse_cart::api::{
    Activity, InjectionMode, MetadataRequest, PublicationRequest, ReplaceRequest, ValidationRequest,
};
use fse_cart::client::config::ClientConfig;
use fse_cart::client::{ClientError, Document, GatewayClient, Reply};
use fse_cart::sandbox::checks::{cda_type_code, BasicPdfInspector, PdfInspector};
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
    document: DocumentArgs,
    /// VERIFICA (200) or VALIDATION (201, required before a publication).
    #[arg(long, value_enum, default_value_t = ActivityArg::Verifica)]
    activity: ActivityArg,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    document: DocumentArgs,
    /// JSON file with the request body (the OpenAPI's PublicationCreationReqDTO).
    #[arg(long)]
    metadata: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReplaceArgs {
    /// identificativoDoc of the document to replace.
    id_doc: String,
    #[command(flatten)]
    document: DocumentArgs,
    /// JSON file with the request body (PublicationUpdateReqDTO).
    #[arg(long)]
    metadata: PathBuf,
}

#[derive(Debug, Args)]
pub struct MetadataArgs {
    /// identificativoDoc of the document.
    id_doc: String,
    /// JSON file with the request body (PublicationMetadataReqDTO).
    #[arg(long)]
    metadata: PathBuf,
    /// LOINC document type for the JWT's resource_hl7_type.
    #[arg(long)]
    loinc: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// identificativoDoc of the document.
    id_doc: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
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
    status: u16,
    accepted: bool,
    x_cart_id: Option<&'a str>,
    trace_id: Option<&'a str>,
    span_id: Option<&'a str>,
    workflow_instance_id: Option<&'a str>,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<&'a fse_cart::api::Problem>,
}

fn print<T: Serialize>(reply: &Reply<T>) -> anyhow::Result<ExitCode> {
    let printed = Printed {
        operation: reply.operation.name(),
        status: reply.status,
        accepted: reply.body.is_ok(),
        x_cart_id: reply.x_cart_id.as_deref(),
        trace_id: reply.trace_id.as_deref(),
        span_id: reply.span_id.as_deref(),
        workflow_instance_id: reply.workflow_instance_id.as_deref(),
        attempts: reply.attempts,
        response: reply.body.as_ref().ok(),
        problem: reply.body.as_ref().err(),
    };
    println!("{}", serde_json::to_string_pretty(&printed)?);
    Ok(ExitCode::from(if reply.body.is_ok() {
        EXIT_OK
    } else {
        EXIT_INVALID
    }))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a valid request body", path.display()))
}

struct Loaded {
    pdf: Vec<u8>,
    loinc: String,
    mode: InjectionMode,
}

fn load_document(args: &DocumentArgs) -> anyhow::Result<Loaded> {
    let pdf =
        std::fs::read(&args.pdf).with_context(|| format!("reading {}", args.pdf.display()))?;
    let mode = InjectionMode::from(args.mode);
    let loinc = match &args.loinc {
        Some(l) => l.clone(),
        None => {
            let cda = BasicPdfInspector
                .extract_cda(&pdf, mode)
                .map_err(|e| anyhow!("{}: {e}; pass --loinc", args.pdf.display()))?;
            cda_type_code(&cda).ok_or_else(|| {
                anyhow!(
                    "{}: no ClinicalDocument/code in the CDA; pass --loinc",
                    args.pdf.display()
                )
            })?
        }
    };
    Ok(Loaded { pdf, loinc, mode })
}

pub fn run(cmd: GatewayCommand, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Some(config_path) = config else {
        eprintln!("fse: error: `fse gateway` needs --config FILE (or FSE_CONFIG); `fse sandbox init DIR` writes one");
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let config = ClientConfig::load_with_env(Some(config_path))?;
    let client = GatewayClient::from_config(&config).context("setting up the gateway client")?;
    let outcome = match cmd {
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
            client
                .validate(
                    Document {
                        pdf: &d.pdf,
                        loinc: &d.loinc,
                    },
                    &body,
                )
                .map(|r| print(&r))
        }
        GatewayCommand::Create(args) => {
            let d = load_document(&args.document)?;
            let body: PublicationRequest = read_json(&args.metadata)?;
            client
                .create(
                    Document {
                        pdf: &d.pdf,
                        loinc: &d.loinc,
                    },
                    &body,
                )
                .map(|r| print(&r))
        }
        GatewayCommand::Replace(args) => {
            let d = load_document(&args.document)?;
            let body: ReplaceRequest = read_json(&args.metadata)?;
            client
                .replace(
                    &args.id_doc,
                    Document {
                        pdf: &d.pdf,
                        loinc: &d.loinc,
                    },
                    &body,
                )
                .map(|r| print(&r))
        }
        GatewayCommand::Metadata(args) => {
            let body: MetadataRequest = read_json(&args.metadata)?;
            client
                .update_metadata(&args.id_doc, &args.loinc, &body)
                .map(|r| print(&r))
        }
        GatewayCommand::Delete(args) => client.delete(&args.id_doc).map(|r| print(&r)),
        GatewayCommand::Status(args) => {
            if args.trace {
                client.status_by_trace(&args.id).map(|r| print(&r))
            } else {
                client.status(&args.id).map(|r| print(&r))
            }
        }
    };
    match outcome {
        Ok(printed) => printed,
        Err(ClientError::NoAnswer { message, attempts }) => {
            eprintln!(
                "fse: error: no answer from the gateway after {attempts} attempt(s): {message}"
            );
            Ok(ExitCode::from(EXIT_USAGE))
        }
        Err(e) => Err(e.into()),
    }
}
