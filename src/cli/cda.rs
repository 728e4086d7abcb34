//! `fse cda …`: CDA documents.

use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum CdaCommand {
    /// Build CDA R2 documents from JSON report models (`--template TYPE` prints a starter
    /// input; see `crates/cda/MODEL.md`).
    Build(super::cda_build::BuildArgs),
    /// Validate CDA documents like the national gateway (XSD, schematron, terminology):
    /// verdict 201/400/422 per file.
    Validate(super::cda_validate::ValidateArgs),
    /// Print the JSON Schema of the report model, for editors (map it to your report files
    /// in the editor's JSON schema settings).
    Schema,
}

pub fn run(cmd: CdaCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CdaCommand::Build(args) => super::cda_build::run(args),
        CdaCommand::Validate(args) => super::cda_validate::run(args),
        CdaCommand::Schema => {
            let schema = fse_cda::build::schema::json_schema();
            crate::outln!("{}", serde_json::to_string_pretty(&schema)?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
