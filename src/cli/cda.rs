//! `fse cda …`: CDA documents.

use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum CdaCommand {
    /// Build CDA R2 documents from JSON report models (see `fixtures/build/` for examples).
    Build(super::cda_build::BuildArgs),
}

pub fn run(cmd: CdaCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CdaCommand::Build(args) => super::cda_build::run(args),
    }
}
