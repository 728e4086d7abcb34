//! `fse cda build`: JSON report models → CDA R2 documents.
//!
//! One input: the CDA goes to stdout, or to `-o FILE`. Several inputs (files, or directories
//! walked for `*.json`): `--out-dir DIR` writes `DIR/<folder>/<name>.xml`, where `<folder>` is
//! the name of the input's parent folder (the type folder of `fixtures/build/<TYPE>/`).
//! Every bad input is reported on one line naming the file and the JSON path of the bad field;
//! the exit code is then 2. A UTF-8 byte order mark before the JSON is read past.
//!
//! `--template TYPE` prints a starter input of that document type instead (it builds as is).

use super::{write_stdout, EXIT_USAGE};
use anyhow::{bail, Context};
use clap::builder::PossibleValuesParser;
use clap::Args;
use fse_cda::build::template;
use fse_cda::build::DocType;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// JSON report model(s) (`fse-cda-build/1`), or directories walked for `*.json`.
    #[arg(required_unless_present = "template")]
    pub inputs: Vec<PathBuf>,
    /// Print a starter input of this document type (a valid model that builds; edit it),
    /// e.g. `fse cda build --template LAB > report.json`.
    #[arg(
        long,
        value_name = "TYPE",
        conflicts_with_all = ["inputs", "output", "out_dir"],
        value_parser = PossibleValuesParser::new(DocType::ALL.map(DocType::abbrev)),
    )]
    pub template: Option<String>,
    /// Output file (one input only); stdout when neither -o nor --out-dir is given.
    #[arg(short, long, conflicts_with = "out_dir")]
    pub output: Option<PathBuf>,
    /// Output directory: each `<folder>/<name>.json` becomes `DIR/<folder>/<name>.xml`.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

/// The `*.json` files named by the arguments, directories walked in a stable order.
fn collect_inputs(args: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for arg in args {
        if arg.is_dir() {
            let mut found: Vec<PathBuf> = Vec::new();
            for entry in walkdir::WalkDir::new(arg).sort_by_file_name() {
                let entry = entry.with_context(|| format!("{}: cannot walk", arg.display()))?;
                let path = entry.path();
                if entry.file_type().is_file()
                    && path
                        .extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
                {
                    found.push(path.to_path_buf());
                }
            }
            if found.is_empty() {
                bail!("{}: no *.json file in this directory", arg.display());
            }
            files.extend(found);
        } else {
            files.push(arg.clone());
        }
    }
    Ok(files)
}

/// Reads and builds one input; the error is one line naming the file.
fn build_one(input: &Path) -> Result<fse_cda::build::Built, String> {
    let bytes =
        std::fs::read(input).map_err(|e| format!("{}: cannot read: {e}", input.display()))?;
    fse_cda::build::build(&bytes).map_err(|e| format!("{}: {e}", input.display()))
}

fn out_path(dir: &Path, input: &Path, built: &fse_cda::build::Built) -> PathBuf {
    let folder = input
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| built.doc_type.abbrev().to_string());
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "document".into());
    dir.join(folder).join(format!("{stem}.xml"))
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot create directory", parent.display()))?;
        }
    }
    std::fs::write(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
}

pub fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    if let Some(name) = &args.template {
        let doc_type = template::doc_type_named(name)
            .with_context(|| format!("unknown document type {name:?}"))?;
        write_stdout(template::template(doc_type).as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let inputs = collect_inputs(&args.inputs)?;
    if args.out_dir.is_none() && inputs.len() > 1 {
        bail!(
            "{} inputs: use --out-dir DIR to build several documents",
            inputs.len()
        );
    }
    let Some(dir) = &args.out_dir else {
        // Exactly one input: to -o or stdout.
        let input = &inputs[0];
        let built = match build_one(input) {
            Ok(b) => b,
            Err(line) => {
                eprintln!("fse: error: {line}");
                return Ok(ExitCode::from(EXIT_USAGE));
            }
        };
        match &args.output {
            Some(out) => write_file(out, &built.xml)?,
            None => write_stdout(&built.xml)?,
        }
        return Ok(ExitCode::SUCCESS);
    };
    let mut failed = 0usize;
    for input in &inputs {
        match build_one(input) {
            Ok(built) => write_file(&out_path(dir, input, &built), &built.xml)?,
            Err(line) => {
                failed += 1;
                eprintln!("fse: error: {line}");
            }
        }
    }
    eprintln!(
        "fse: built {} of {} documents into {}",
        inputs.len() - failed,
        inputs.len(),
        dir.display()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_USAGE)
    })
}
