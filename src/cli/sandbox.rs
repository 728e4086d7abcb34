//! `fse sandbox …`: the local stand-in for CART + the national gateway.

use super::{EXIT_OK, EXIT_USAGE};
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use fse_cart::sandbox::{self, Faults, ServeOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Create DIR with a test CA, server/client/signer identities and the client config
    /// DIR/fse.toml (use it with `fse --config DIR/fse.toml`).
    Init(InitArgs),
    /// Run the sandbox gateway over mutual TLS until Ctrl-C.
    Serve(ServeArgs),
    /// List every X-CART-id the sandbox sent, with operation, status and identifiers.
    Log(LogArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Sandbox directory (created if missing).
    dir: PathBuf,
    /// Address `serve` will listen on; written into DIR/fse.toml.
    #[arg(long, default_value = sandbox::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Path prefix before /v1 (e.g. /govway/rest/in/FSE/gateway, like the real base URL).
    #[arg(long, default_value = "")]
    prefix: String,
    /// Overwrite an existing sandbox directory's identities and configuration.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Sandbox directory made by `fse sandbox init`.
    dir: PathBuf,
    /// Listen address (default: the one in DIR/fse.toml). Clients must then use this
    /// address in their base URL and JWT `aud`.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Fault injection: milliseconds added before every answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fault injection: share (0..1) of requests answered 503.
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    unavailable_share: f64,
    /// Fault injection: share (0..1) of requests whose connection is dropped unanswered.
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    drop_share: f64,
    /// Delay in milliseconds before the 504 of an identificativoDoc starting CRASH_TIMEOUT_.
    #[arg(long, default_value_t = 2000)]
    crash_timeout_ms: u64,
    /// Validate CDA with the official rule files in DIR (laid out as the Ministry's catalog:
    /// xsd/, schematron/, terminology/), as `fse cda validate --rules` does. Without it the
    /// sandbox validates with the rules built into fse (our own schematron per document type,
    /// no XSD): a pre-flight check, weaker than the gateway's.
    #[arg(
        long,
        env = "FSE_CDA_RULES",
        value_name = "DIR",
        conflicts_with = "accept_any_cda"
    )]
    rules: Option<PathBuf>,
    /// Skip CDA validation: every extracted CDA is judged valid (JWT↔CDA coherence and the
    /// PDF checks still apply). Wins over --rules and FSE_CDA_RULES.
    #[arg(long)]
    accept_any_cda: bool,
}

fn share(text: &str) -> Result<f64, String> {
    let v: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be between 0 and 1".into())
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Sandbox directory.
    dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    format: LogFormat,
}

pub fn run(cmd: SandboxCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SandboxCommand::Init(args) => {
            if args.dir.join(sandbox::CONFIG_FILE).exists() && !args.force {
                eprintln!(
                    "fse: error: {} already holds a sandbox (use --force to regenerate its identities)",
                    args.dir.display()
                );
                return Ok(ExitCode::from(EXIT_USAGE));
            }
            sandbox::init_with_prefix(&args.dir, args.listen, &args.prefix)
                .with_context(|| format!("initialising {}", args.dir.display()))?;
            println!("sandbox initialised in {}", args.dir.display());
            println!("start it:   fse sandbox serve {}", args.dir.display());
            println!(
                "client use: fse --config {}",
                args.dir.join(sandbox::CONFIG_FILE).display()
            );
            Ok(ExitCode::from(EXIT_OK))
        }
        SandboxCommand::Serve(args) => {
            let mut options = ServeOptions::new(&args.dir);
            options.listen = args.listen;
            options.faults = Faults {
                latency: Duration::from_millis(args.latency_ms),
                unavailable_share: args.unavailable_share,
                drop_share: args.drop_share,
            };
            options.crash_timeout_delay = Duration::from_millis(args.crash_timeout_ms);
            options.jwt_cda_coherence = true;
            options.validator = match (&args.rules, args.accept_any_cda) {
                (_, true) => std::sync::Arc::new(sandbox::AcceptAllCda),
                (Some(rules), false) => std::sync::Arc::new(
                    sandbox::RulesValidator::load(rules)
                        .with_context(|| format!("loading CDA rules from {}", rules.display()))?,
                ),
                (None, false) => std::sync::Arc::new(
                    sandbox::RulesValidator::builtin().context("loading the built-in CDA rules")?,
                ),
            };
            sandbox::serve_until_ctrl_c(options, |url| {
                println!("fse sandbox listening on {url} (API under {url}/v1); Ctrl-C stops it");
            })
            .with_context(|| format!("serving {}", args.dir.display()))?;
            // stdout may be gone by now (a closed pipe): not worth failing a clean stop for.
            let _ = writeln!(std::io::stdout(), "fse sandbox stopped");
            Ok(ExitCode::from(EXIT_OK))
        }
        SandboxCommand::Log(args) => {
            if !args.dir.join(fse_cart::sandbox::store::DB_FILE).exists() {
                eprintln!(
                    "fse: error: {} is not a sandbox directory",
                    args.dir.display()
                );
                return Ok(ExitCode::from(EXIT_USAGE));
            }
            let entries = sandbox::cart_log(&args.dir)
                .with_context(|| format!("reading {}", args.dir.display()))?;
            match args.format {
                LogFormat::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
                LogFormat::Text => {
                    for e in &entries {
                        println!(
                            "{}  {}  {:<13} {}  {}  doc={}  trace={}  wii={}",
                            e.at,
                            e.x_cart_id,
                            e.operation,
                            e.status,
                            e.problem_type.as_deref().unwrap_or("-"),
                            e.identificativo_doc.as_deref().unwrap_or("-"),
                            e.trace_id.as_deref().unwrap_or("-"),
                            e.workflow_instance_id.as_deref().unwrap_or("-"),
                        );
                    }
                }
            }
            Ok(ExitCode::from(EXIT_OK))
        }
    }
}
