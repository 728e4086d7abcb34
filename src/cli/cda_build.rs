//! `fse cda build`.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// JSON report model(s), or directories walked for `*.json`.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output file (one input only); stdout when neither -o nor --out-dir is given.
    #[arg(short, long, conflicts_with = "out_dir")]
    pub output: Option<PathBuf>,
    /// Output directory: each INPUT.json becomes DIR/INPUT.xml.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

pub fn run(_args: BuildArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
