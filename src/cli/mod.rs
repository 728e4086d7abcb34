//! Argument parsing and dispatch. Each subcommand family lives in its own module and exposes a
//! clap type plus a `run` function returning the process exit code.

pub mod batch;
pub mod cart;
pub mod cda;
pub mod cda_build;
pub mod cda_validate;
pub mod config;
pub mod dev;
pub mod gateway;
pub mod journal;
pub mod pdf;
pub mod sandbox;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit code: everything judged valid / accepted.
pub const EXIT_OK: u8 = 0;
/// Exit code: at least one input was judged invalid or refused.
pub const EXIT_INVALID: u8 = 1;
/// Exit code: usage, input or I/O error (clap uses 2 for usage errors too).
pub const EXIT_USAGE: u8 = 2;

/// Build, validate, sign and publish FSE 2.0 clinical documents (HL7 CDA R2 in PAdES-signed
/// PDF) through Regione Toscana's CART gateway.
#[derive(Debug, Parser)]
#[command(name = "fse", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Client configuration file (gateway URL, certificates, JWT profile) for `fse gateway`.
    #[arg(long, global = true, env = "FSE_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// CDA documents: build them from a JSON report model, validate them like the gateway.
    #[command(subcommand)]
    Cda(cda::CdaCommand),
    /// PDF: embed the CDA, sign PAdES B-B, verify, extract, render.
    #[command(subcommand)]
    Pdf(pdf::PdfCommand),
    /// Developer helpers (test identities).
    #[command(subcommand)]
    Dev(dev::DevCommand),
    /// Local sandbox gateway (CART + national gateway stand-in) for offline tests.
    #[command(subcommand)]
    Sandbox(sandbox::SandboxCommand),
    /// Gateway calls through CART (or the sandbox): validate, create, replace, metadata,
    /// delete, status. Needs --config.
    #[command(subcommand)]
    Gateway(gateway::GatewayCommand),
    /// Batch publication of a directory (journaled, parallel, resumable); --sandbox runs it
    /// against an in-process sandbox.
    #[command(subcommand)]
    Batch(batch::BatchCommand),
    /// Reports of the batch journal: list, show, export (CSV, JSON, accreditation data.json).
    #[command(subcommand)]
    Journal(journal::JournalCommand),
    /// Configuration: check the identities and reach the gateway; list the environment
    /// overrides.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Other CART services (mTLS, journaled with their X-CART-id): `fse cart call API`.
    #[command(subcommand)]
    Cart(cart::CartCommand),
}

impl Cli {
    /// Runs the chosen subcommand and returns the process exit code.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Cda(cmd) => cda::run(cmd),
            Command::Pdf(cmd) => pdf::run(cmd),
            Command::Dev(cmd) => dev::run(cmd),
            Command::Sandbox(cmd) => sandbox::run(cmd),
            Command::Gateway(cmd) => gateway::run(cmd, self.config.as_deref()),
            Command::Batch(cmd) => batch::run(cmd, self.config.as_deref()),
            Command::Journal(cmd) => journal::run(cmd, self.config.as_deref()),
            Command::Config(cmd) => config::run(cmd, self.config.as_deref()),
            Command::Cart(cmd) => cart::run(cmd, self.config.as_deref()),
        }
    }
}
