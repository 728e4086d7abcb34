//! `fse cda …`: CDA documents.

use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum CdaCommand {
    /// Build CDA R2 documents from JSON report models (see `fixtures/build/` for examples).
    Build(super::cda_build::BuildArgs),
    /// Validate CDA documents like the national gateway (XSD, schematron, terminology):
    /// verdict 201/400/422 per file.
    Validate(super::cda_validate::ValidateArgs),
}

pub fn run(cmd: CdaCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CdaCommand::Build(args) => super::cda_build::run(args),
        CdaCommand::Validate(args) => super::cda_validate::run(args),
    }
}
