//! Argument parsing and dispatch. Each subcommand family lives in its own module and exposes a
//! clap type plus a `run` function returning the process exit code.

pub mod cda;
pub mod cda_build;

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// CDA documents: build them from a JSON report model.
    #[command(subcommand)]
    Cda(cda::CdaCommand),
}

impl Cli {
    /// Runs the chosen subcommand and returns the process exit code.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Cda(cmd) => cda::run(cmd),
        }
    }
}
