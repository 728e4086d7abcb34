//! `fse batch publish|resume|retry-failed`: journaled parallel publication of a directory of
//! documents
//! (see `fse_cart::batch`). Progress goes to stderr (a bar on a terminal, plain lines
//! otherwise); the summary to stdout (text or `--format json`).
//!
//! Defaults come from the configuration (`[batch] jobs, rate`, `[publication]`, `[rules] dir`,
//! each overridable by `FSE_<SECTION>_<KEY>`); command-line options win. A `NAME.meta.json`
//! next to a document overrides `[publication]` keys for that document.
//!
//! Exit codes: 0 every document published (or skipped: published by an earlier batch), 1 some
//! failed or unfinished, 2 usage/input/IO.

use super::{EXIT_INVALID, EXIT_OK};
use anyhow::{anyhow, Context};
use clap::{Args, Subcommand, ValueEnum};
use fse_cart::batch::{self, BatchOptions, IdPolicy, Progress, PublicationDefaults, Summary};
use fse_cart::client::config::ClientConfig;
use fse_cart::client::GatewayClient;
use fse_cart::journal::{DocState, Journal, JOURNAL_FILE};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Build/read, inject, validate at the gateway, sign and publish every document of DIR.
    Publish(PublishArgs),
    /// Continue an interrupted batch from the journal (unanswered publications are settled by
    /// a status query, never resent blindly); signed PDFs go to the batch's --output folder.
    Resume(ResumeArgs),
    /// Send the failed documents of a batch again, from their files as they are now (after a
    /// fix); published and skipped ones are left alone.
    RetryFailed(ResumeArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Journal database (default: fse-journal.sqlite next to --config, else in the current
    /// directory).
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// Run against an in-process sandbox with throw-away identities (no --config needed).
    #[arg(long)]
    sandbox: bool,
    /// Keep the sandbox's state in DIR (created if missing; needed to resume a sandbox batch).
    #[arg(long, value_name = "DIR", requires = "sandbox")]
    sandbox_dir: Option<PathBuf>,
    /// Documents processed in parallel (default: `[batch] jobs`, else 4).
    #[arg(long)]
    jobs: Option<usize>,
    /// Most gateway calls per second, all workers together, 0 = unbounded (default:
    /// `[batch] rate`, else 20).
    #[arg(long)]
    rate: Option<f64>,
    /// Validate every CDA locally with the official rule folder DIR before sending (default:
    /// `[rules] dir`, else fse's built-in rules); a document refused here is not sent.
    #[arg(long, env = "FSE_CDA_RULES", value_name = "DIR")]
    rules: Option<PathBuf>,
    /// Skip the local validation (the gateway still validates).
    #[arg(long, conflicts_with = "rules")]
    no_local_validation: bool,
    /// Keep every signed PDF as DIR/NAME.pdf (the files `fse journal export --format
    /// data-json` lists); resume and retry-failed use the batch's folder unless given one.
    #[arg(long, short, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Summary format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Input directory: NAME.json (builder input) or NAME.xml (CDA), optional NAME.pdf.
    dir: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
    /// Publication metadata defaults (JSON: tipologia_struttura, assetto_organizzativo,
    /// tipo_attivita_clinica, identificativo_rep, [tipo_documento_liv_alto,
    /// atti_clinici_regole_accesso]).
    #[arg(long, value_name = "FILE")]
    publication: Option<PathBuf>,
    /// identificativoDoc = ClinicalDocument/id plus 8 hex of the CDA hash (for test corpora
    /// sharing one id; default with --sandbox).
    #[arg(long)]
    unique_ids: bool,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Batch id (default: the latest in the journal).
    #[arg(long)]
    batch: Option<i64>,
    #[command(flatten)]
    common: CommonArgs,
}

/// The journal path from `--journal`, `--config`, or the current directory.
pub fn journal_path(explicit: Option<&Path>, config: Option<&Path>) -> PathBuf {
    match (explicit, config) {
        (Some(p), _) => p.to_owned(),
        (None, Some(c)) => c
            .parent()
            .map(|d| d.join(JOURNAL_FILE))
            .unwrap_or_else(|| PathBuf::from(JOURNAL_FILE)),
        (None, None) => PathBuf::from(JOURNAL_FILE),
    }
}

/// A sandbox directory removed on drop unless the user named it.
struct SandboxDir {
    path: PathBuf,
    remove: bool,
}

impl Drop for SandboxDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

struct Setup {
    config: ClientConfig,
    /// The gateway's identity for exactly-once across batches (see `BatchOptions::gateway`).
    gateway: String,
    client: GatewayClient,
    signer: fse_pades::SignerIdentity,
    journal: Journal,
    // Order matters: the sandbox stops before its directory is removed.
    _sandbox: Option<fse_cart::sandbox::Sandbox>,
    _dir: Option<SandboxDir>,
}

fn setup(common: &CommonArgs, config: Option<&Path>) -> anyhow::Result<Setup> {
    let journal_file = journal_path(common.journal.as_deref(), config);
    let journal = Journal::open(&journal_file)?;
    if common.sandbox {
        let dir = match &common.sandbox_dir {
            Some(d) => SandboxDir {
                path: d.clone(),
                remove: false,
            },
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                SandboxDir {
                    path: std::env::temp_dir()
                        .join(format!("fse-sandbox-{}-{nanos}", std::process::id())),
                    remove: true,
                }
            }
        };
        let (sandbox, cfg) = batch::start_sandbox(&dir.path)
            .with_context(|| format!("starting the sandbox in {}", dir.path.display()))?;
        let client = GatewayClient::from_config(&cfg)?;
        let signer = batch::pades_signer(&cfg)?;
        return Ok(Setup {
            gateway: format!("sandbox:{}", dir.path.display()),
            config: cfg,
            client,
            signer,
            journal,
            _sandbox: Some(sandbox),
            _dir: Some(dir),
        });
    }
    let config = config.ok_or_else(|| anyhow!("--config FILE is required (or use --sandbox)"))?;
    let cfg = ClientConfig::load_with_env(Some(config))?;
    Ok(Setup {
        gateway: cfg.gateway.base_url.clone(),
        client: GatewayClient::from_config(&cfg)?,
        signer: batch::pades_signer(&cfg)?,
        config: cfg,
        journal,
        _sandbox: None,
        _dir: None,
    })
}

/// Options from the command line over the configuration's `[batch]`, `[publication]` and
/// `[rules]`.
fn options(common: &CommonArgs, config: &ClientConfig) -> anyhow::Result<BatchOptions> {
    let rules_dir = match &common.rules {
        Some(d) => Some(d.clone()),
        None => config.rules.dir.as_ref().map(|d| config.base_dir.join(d)),
    };
    let local_validator = match (rules_dir, common.no_local_validation) {
        (_, true) => None,
        (Some(dir), false) => {
            Some(Arc::new(batch::RulesValidator::load(&dir)?) as Arc<dyn batch::LocalValidator>)
        }
        (None, false) => {
            Some(Arc::new(batch::RulesValidator::builtin()?) as Arc<dyn batch::LocalValidator>)
        }
    };
    Ok(BatchOptions {
        jobs: common.jobs.or(config.batch.jobs).unwrap_or(4).max(1),
        max_calls_per_second: common.rate.or(config.batch.rate).unwrap_or(20.0).max(0.0),
        output_dir: common.output.clone(),
        defaults: config.publication.clone(),
        local_validator,
        ..BatchOptions::default()
    })
}

/// Runs `fse batch …`.
pub fn run(cmd: BatchCommand, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (common, summary) = match cmd {
        BatchCommand::Publish(args) => {
            let s = setup(&args.common, config)?;
            let mut opts = options(&args.common, &s.config)?;
            opts.gateway = s.gateway.clone();
            if args.unique_ids || args.common.sandbox {
                opts.id_policy = IdPolicy::CdaIdWithHash;
            }
            if let Some(file) = &args.publication {
                let text =
                    std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
                opts.defaults = serde_json::from_slice::<PublicationDefaults>(&text)
                    .with_context(|| format!("{}", file.display()))?;
            }
            let reporter = Reporter::new();
            let summary =
                batch::publish(&s.journal, &s.client, &s.signer, &args.dir, &opts, &|p| {
                    reporter.report(p)
                })?;
            reporter.finish();
            (args.common, summary)
        }
        BatchCommand::Resume(args) => continue_batch(batch::resume, args, config)?,
        BatchCommand::RetryFailed(args) => continue_batch(batch::retry_failed, args, config)?,
    };
    print_summary(&summary, common.format)?;
    let all_published = summary.failures.is_empty();
    Ok(ExitCode::from(if all_published {
        EXIT_OK
    } else {
        EXIT_INVALID
    }))
}

/// `batch::resume` or `batch::retry_failed`.
type ContinueBatch = fn(
    &Journal,
    &GatewayClient,
    &fse_pades::SignerIdentity,
    Option<i64>,
    &BatchOptions,
    &(dyn Fn(Progress) + Sync),
) -> Result<Summary, batch::BatchError>;

/// Runs `resume` or `retry-failed` on the batch `args` names.
fn continue_batch(
    run: ContinueBatch,
    args: ResumeArgs,
    config: Option<&Path>,
) -> anyhow::Result<(CommonArgs, Summary)> {
    let s = setup(&args.common, config)?;
    let mut opts = options(&args.common, &s.config)?;
    opts.gateway = s.gateway.clone();
    let reporter = Reporter::new();
    let summary = run(&s.journal, &s.client, &s.signer, args.batch, &opts, &|p| {
        reporter.report(p)
    })?;
    reporter.finish();
    Ok((args.common, summary))
}

fn print_summary(summary: &Summary, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(summary)?),
        Format::Text => {
            println!("batch {}", summary.batch_id);
            for state in DocState::ALL {
                let n = summary.count(state);
                if n > 0 {
                    println!("{state}: {n}");
                }
            }
            for (name, reason) in &summary.failures {
                println!("  {name}: {reason}");
            }
            for (name, reason) in &summary.skipped {
                println!("  {name} (skipped): {reason}");
            }
        }
    }
    Ok(())
}

/// Progress on stderr: an indicatif bar on a terminal, plain lines otherwise.
struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    plain: Mutex<(usize, usize)>,
}

impl Reporter {
    fn new() -> Reporter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} {elapsed_precise} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Reporter {
            bar,
            plain: Mutex::new((0, 0)),
        }
    }

    fn report(&self, p: Progress) {
        match (&self.bar, p) {
            (Some(bar), Progress::Planned(n)) => bar.set_length(n as u64),
            (Some(bar), Progress::Done { name, state, .. }) => {
                bar.set_message(format!("{name}: {state}"));
                bar.inc(1);
            }
            (None, Progress::Planned(n)) => {
                if let Ok(mut g) = self.plain.lock() {
                    g.1 = n;
                }
                eprintln!("{n} document(s)");
            }
            (
                None,
                Progress::Done {
                    name,
                    state,
                    reason,
                },
            ) => {
                let (done, total) = match self.plain.lock() {
                    Ok(mut g) => {
                        g.0 += 1;
                        (g.0, g.1)
                    }
                    Err(_) => (0, 0),
                };
                match reason {
                    Some(r) => eprintln!("[{done}/{total}] {name}: {state} ({r})"),
                    None => eprintln!("[{done}/{total}] {name}: {state}"),
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
