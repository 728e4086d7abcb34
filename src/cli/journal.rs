//! `fse journal list|show|export|gateway-calls|cart-calls`: reports of the journal (located by
//! `--journal`, else next to `--config`, else `./fse-journal.sqlite`).
//!
//! Exit codes: 0 ok, 2 usage/input/IO (missing journal, unknown batch).

use super::batch::journal_path;
use super::EXIT_OK;
use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use fse_cart::client::config::ClientConfig;
use fse_cart::journal::{data_json, export, to_csv, Journal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Batches with their document counts by state.
    List(ListArgs),
    /// One batch: its documents and every call with its identifiers.
    Show(ShowArgs),
    /// Every call record (or the accreditation data.json) as CSV or JSON.
    Export(ExportArgs),
    /// Single gateway calls (`fse gateway …`) as JSON.
    GatewayCalls(ListArgs),
    /// Calls to other CART services (`fse cart call`) as JSON.
    CartCalls(ListArgs),
}

#[derive(Debug, Args)]
pub struct Location {
    /// Journal database.
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    location: Location,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Batch id (default: the latest).
    batch: Option<i64>,
    #[command(flatten)]
    location: Location,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormat {
    /// One line per call.
    Csv,
    /// An array of call records.
    Json,
    /// The accreditation submission file (appVendor, appID, appVersion, results).
    DataJson,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
    format: ExportFormat,
    /// Only this batch (default: every batch).
    #[arg(long)]
    batch: Option<i64>,
    /// Write to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    location: Location,
}

fn open(location: &Location, config: Option<&Path>) -> anyhow::Result<Journal> {
    let path = journal_path(location.journal.as_deref(), config);
    if !path.exists() {
        bail!(
            "no journal at {} (use --journal or --config)",
            path.display()
        );
    }
    Ok(Journal::open(&path)?)
}

/// Runs `fse journal …`.
pub fn run(cmd: JournalCommand, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    match cmd {
        JournalCommand::List(args) => {
            let j = open(&args.location, config)?;
            for b in j.batches()? {
                let docs = j.documents(b.id)?;
                let mut counts = std::collections::BTreeMap::new();
                for d in &docs {
                    *counts.entry(d.state).or_insert(0usize) += 1;
                }
                let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{s}={n}")).collect();
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    b.id,
                    b.started_at,
                    b.finished_at.as_deref().unwrap_or("unfinished"),
                    b.input_dir,
                    counts.join(" ")
                );
            }
        }
        JournalCommand::GatewayCalls(args) => {
            let j = open(&args.location, config)?;
            println!("{}", serde_json::to_string_pretty(&j.gateway_calls()?)?);
        }
        JournalCommand::CartCalls(args) => {
            let j = open(&args.location, config)?;
            println!("{}", serde_json::to_string_pretty(&j.cart_calls()?)?);
        }
        JournalCommand::Show(args) => {
            let j = open(&args.location, config)?;
            let batch = match args.batch {
                Some(id) => j.batch(id)?,
                None => match j.last_batch()? {
                    Some(b) => b,
                    None => bail!("the journal holds no batch"),
                },
            };
            let documents = j.documents(batch.id)?;
            let calls = j.calls(Some(batch.id))?;
            let value = serde_json::json!({
                "batch": batch,
                "documents": documents,
                "calls": calls,
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        JournalCommand::Export(args) => {
            let j = open(&args.location, config)?;
            let records = j.calls(args.batch)?;
            let text = match args.format {
                ExportFormat::Csv => to_csv(&records),
                ExportFormat::Json => export::to_json(&records)?,
                ExportFormat::DataJson => {
                    let (vendor, id, version) = match config {
                        Some(c) => {
                            let p = ClientConfig::load_with_env(Some(c))?.profile;
                            (
                                p.subject_application_vendor,
                                p.subject_application_id,
                                p.subject_application_version,
                            )
                        }
                        None => (
                            "fse".to_owned(),
                            "fse".to_owned(),
                            env!("CARGO_PKG_VERSION").to_owned(),
                        ),
                    };
                    let data = data_json(&records, &j.output_dirs()?, &vendor, &id, &version);
                    for r in data.results.iter().filter(|r| r.files.is_empty()) {
                        eprintln!(
                            "fse: warning: data.json result {} (trace {}) lists no file: its \
                             signed PDF is not in the batch's output folder (publish with \
                             --output DIR to keep it)",
                            r.id, r.trace_id
                        );
                    }
                    export::to_json(&data)?
                }
            };
            match &args.output {
                Some(path) => std::fs::write(path, text.as_bytes())
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{text}{}", if text.ends_with('\n') { "" } else { "\n" }),
            }
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}
