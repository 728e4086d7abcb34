//! `fse cda validate`: judge CDA documents the way the national gateway does.
//!
//! Inputs are files or directories (walked for `*.xml`, in name order); documents are judged
//! in parallel (`--jobs`), results are printed in input order. Output formats:
//! - `human` (default): one headline per file with the gateway's verdict, then one line per
//!   finding `FILE:LINE:COLUMN: error[ID]: message` and its XPath location;
//! - `json`: `{"rules":"builtin"|DIR,"results":[{"file","http","outcome","problem","type_id_extension",
//!   "template_id_root","schematron","xsd_errors":[…],"failed_asserts":[{"id","text",
//!   "location","line","column","test"}],"reports":[…],"vocabulary_error","terminology",
//!   "not_checked":[…],"error"}],
//!   "summary":{"documents","accepted","refused","errors"}}` — stable: fields are only ever
//!   added;
//! - `junit`: one test case per file, a failure per refused document.
//!
//! Rules: `--rules DIR` (or `FSE_CDA_RULES`) loads the official rule files laid out as in the
//! Ministry's catalog and gives the gateway's verdict; without it the built-in rules of
//! `schemas/` (embedded in the binary) make a pre-flight check: our own header and
//! required-section checks per document type, a few HL7 code lists, no XSD (reported as not
//! checked). Human output says which rules were used on its first line, JSON in `"rules"`
//! (`"builtin"` or the folder).
//!
//! Exit: 0 every document accepted (201), 1 some refused, 2 usage, rules or I/O error.

use super::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use fse_cda::schematron::Finding;
use fse_cda::validate::{builtin_rules, RuleSet, Verdict};
use rayon::prelude::*;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Junit,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// CDA documents, or directories walked for `*.xml`.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Official rule folder laid out as the Ministry's catalog (`xsd/`, `schematron/*.sch`,
    /// `terminology/`, `gateway-db/schematron-index.json` or `doctypes.csv`), e.g.
    /// `../shared/conformance/cda`: the gateway's verdict. Without it, the built-in rules
    /// (a pre-flight check of header and required sections, no XSD) are used.
    #[arg(long, env = "FSE_CDA_RULES", value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Documents judged in parallel (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
}

#[derive(Debug, Serialize)]
struct JsonFinding<'a> {
    id: Option<&'a str>,
    text: &'a str,
    location: &'a str,
    line: u32,
    column: u32,
    test: &'a str,
}

impl<'a> From<&'a Finding> for JsonFinding<'a> {
    fn from(f: &'a Finding) -> Self {
        JsonFinding {
            id: f.id.as_deref(),
            text: &f.text,
            location: &f.location,
            line: f.line,
            column: f.column,
            test: &f.test,
        }
    }
}

#[derive(Debug, Serialize)]
struct JsonResult<'a> {
    file: String,
    http: Option<u16>,
    outcome: Option<&'static str>,
    problem: Option<&'static str>,
    type_id_extension: Option<&'a str>,
    template_id_root: Option<&'a str>,
    schematron: Option<&'a str>,
    xsd_errors: Vec<&'a str>,
    failed_asserts: Vec<JsonFinding<'a>>,
    reports: Vec<JsonFinding<'a>>,
    vocabulary_error: Option<&'a str>,
    terminology: Option<&'a fse_cda::terminology::TerminologyReport>,
    not_checked: Vec<&'static str>,
    error: Option<&'a str>,
}

type Judged = (PathBuf, Result<Verdict, String>);

/// First line of human output with the built-in rules.
const BUILTIN_NOTE: &str = "rules: builtin (fse's own pre-flight checks, no XSD; pass --rules DIR with the official rule files for the gateway's verdict)";

fn collect_inputs(args: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for arg in args {
        if arg.is_dir() {
            for entry in walkdir::WalkDir::new(arg).sort_by_file_name() {
                let entry = entry.with_context(|| format!("{}: cannot walk", arg.display()))?;
                let p = entry.path();
                if entry.file_type().is_file()
                    && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml"))
                {
                    files.push(p.to_path_buf());
                }
            }
        } else {
            files.push(arg.clone());
        }
    }
    Ok(files)
}

fn judge(rules: &RuleSet, file: &Path) -> Result<Verdict, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
    rules.validate(&bytes).map_err(|e| e.to_string())
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let (loaded, rules_name) = match &args.rules {
        Some(dir) => (RuleSet::load(dir), dir.display().to_string()),
        None => (builtin_rules(), "builtin".to_owned()),
    };
    let rules = match loaded {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fse cda validate: rules: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let files = collect_inputs(&args.inputs)?;
    if files.is_empty() {
        bail!("no *.xml document found in the given inputs");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .context("cannot start the worker threads")?;
    let results: Vec<Judged> = pool.install(|| {
        files
            .par_iter()
            .map(|f| (f.clone(), judge(&rules, f)))
            .collect()
    });

    // Stdout is line-buffered: the JSON report alone is tens of thousands of lines, one
    // write(2) each without this buffer.
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    match args.format {
        Format::Human => {
            if args.rules.is_some() {
                writeln!(out, "rules: {rules_name}")?;
            } else {
                writeln!(out, "{BUILTIN_NOTE}")?;
            }
            print_human(&mut out, &results, args.rules.is_none())?
        }
        Format::Json => print_json(&mut out, &results, &rules_name)?,
        Format::Junit => print_junit(&mut out, &results)?,
    }
    out.flush()?;
    let errors = results.iter().any(|(_, r)| r.is_err());
    let refused = results
        .iter()
        .any(|(_, r)| matches!(r, Ok(v) if !v.outcome.accepted()));
    Ok(ExitCode::from(if errors {
        EXIT_USAGE
    } else if refused {
        EXIT_INVALID
    } else {
        EXIT_OK
    }))
}

fn print_human(out: &mut impl Write, results: &[Judged], builtin: bool) -> anyhow::Result<()> {
    let (mut accepted, mut refused, mut errors) = (0, 0, 0);
    for (file, r) in results {
        let f = file.display();
        match r {
            Err(e) => {
                errors += 1;
                writeln!(out, "{f}: error: {e}")?;
            }
            Ok(v) => {
                if v.outcome.accepted() {
                    accepted += 1;
                } else {
                    refused += 1;
                }
                let problem = v.problem.map(|p| format!(" {p}")).unwrap_or_default();
                let sch = v
                    .schematron
                    .as_deref()
                    .map(|s| format!(", schematron {s}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{f}: {} (gateway would answer {}{problem}{sch})",
                    v.outcome.as_str(),
                    v.http
                )?;
                for e in &v.xsd_errors {
                    match split_position(e) {
                        Some((line, col, msg)) => writeln!(out, "{f}:{line}:{col}: syntax: {msg}")?,
                        None => writeln!(out, "{f}: syntax: {e}")?,
                    }
                }
                for (kind, list) in [("error", &v.failed_asserts), ("warning", &v.reports)] {
                    for a in list {
                        let id =
                            a.id.as_deref()
                                .map(|i| format!("[{i}]"))
                                .unwrap_or_default();
                        if a.line == 0 {
                            writeln!(out, "{f}: {kind}{id}: {}", a.text)?;
                        } else {
                            writeln!(out, "{f}:{}:{}: {kind}{id}: {}", a.line, a.column, a.text)?;
                        }
                        if !a.location.is_empty() {
                            writeln!(out, "    at {}", a.location)?;
                        }
                    }
                }
                if let Some(m) = &v.vocabulary_error {
                    writeln!(out, "{f}: terminology: {m}")?;
                }
                if builtin && v.schematron.is_none() && v.xsd_errors.is_empty() {
                    writeln!(
                        out,
                        "{f}: note: the built-in rules do not cover this document type; pass --rules DIR with the official rule files"
                    )?;
                }
                if !v.not_checked.is_empty() {
                    let by = if builtin {
                        "the built-in rules"
                    } else {
                        "this version"
                    };
                    writeln!(
                        out,
                        "{f}: note: not checked by {by}: {}",
                        v.not_checked.join(", ")
                    )?;
                }
            }
        }
    }
    writeln!(
        out,
        "{} document(s): {accepted} accepted, {refused} refused, {errors} not judged",
        results.len()
    )?;
    Ok(())
}

/// `"12,5 message"` → (12, 5, "message").
fn split_position(e: &str) -> Option<(u32, u32, &str)> {
    let (pos, msg) = e.split_once(' ')?;
    let (l, c) = pos.split_once(',')?;
    Some((l.parse().ok()?, c.parse().ok()?, msg))
}

fn print_json(out: &mut impl Write, results: &[Judged], rules: &str) -> anyhow::Result<()> {
    let mut list = Vec::new();
    let (mut accepted, mut refused, mut errors) = (0, 0, 0);
    for (file, r) in results {
        let file = file.display().to_string();
        list.push(match r {
            Err(e) => {
                errors += 1;
                JsonResult {
                    file,
                    http: None,
                    outcome: None,
                    problem: None,
                    type_id_extension: None,
                    template_id_root: None,
                    schematron: None,
                    xsd_errors: Vec::new(),
                    failed_asserts: Vec::new(),
                    reports: Vec::new(),
                    vocabulary_error: None,
                    terminology: None,
                    not_checked: Vec::new(),
                    error: Some(e),
                }
            }
            Ok(v) => {
                if v.outcome.accepted() {
                    accepted += 1;
                } else {
                    refused += 1;
                }
                JsonResult {
                    file,
                    http: Some(v.http),
                    outcome: Some(v.outcome.as_str()),
                    problem: v.problem,
                    type_id_extension: v.type_id_extension.as_deref(),
                    template_id_root: v.template_id_root.as_deref(),
                    schematron: v.schematron.as_deref(),
                    xsd_errors: v.xsd_errors.iter().map(String::as_str).collect(),
                    failed_asserts: v.failed_asserts.iter().map(JsonFinding::from).collect(),
                    reports: v.reports.iter().map(JsonFinding::from).collect(),
                    vocabulary_error: v.vocabulary_error.as_deref(),
                    terminology: v.terminology.as_ref(),
                    not_checked: v.not_checked.clone(),
                    error: None,
                }
            }
        });
    }
    #[derive(Serialize)]
    struct Summary {
        documents: usize,
        accepted: usize,
        refused: usize,
        errors: usize,
    }
    #[derive(Serialize)]
    struct Output<'a> {
        rules: &'a str,
        results: Vec<JsonResult<'a>>,
        summary: Summary,
    }
    let doc = Output {
        rules,
        results: list,
        summary: Summary {
            documents: results.len(),
            accepted,
            refused,
            errors,
        },
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)?;
    Ok(())
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => o.push(c),
        }
    }
    o
}

fn print_junit(out: &mut impl Write, results: &[Judged]) -> anyhow::Result<()> {
    let failures = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(v) if !v.outcome.accepted()))
        .count();
    let errors = results.iter().filter(|(_, r)| r.is_err()).count();
    writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(
        out,
        "<testsuites><testsuite name=\"fse cda validate\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">",
        results.len()
    )?;
    for (file, r) in results {
        let name = xml_escape(&file.display().to_string());
        write!(out, "<testcase classname=\"cda\" name=\"{name}\">")?;
        match r {
            Err(e) => write!(out, "<error message=\"{}\"/>", xml_escape(e))?,
            Ok(v) if !v.outcome.accepted() => {
                let mut body = String::new();
                for e in &v.xsd_errors {
                    body.push_str(&format!("syntax: {e}\n"));
                }
                if let Some(m) = &v.vocabulary_error {
                    body.push_str(&format!("terminology: {m}\n"));
                }
                for a in &v.failed_asserts {
                    body.push_str(&format!(
                        "{}:{}: {} at {}\n",
                        a.line, a.column, a.text, a.location
                    ));
                }
                write!(
                    out,
                    "<failure type=\"{}\" message=\"{} {}\">{}</failure>",
                    v.outcome.as_str(),
                    v.http,
                    v.outcome.as_str(),
                    xml_escape(&body)
                )?;
            }
            Ok(v) => {
                for a in &v.reports {
                    write!(
                        out,
                        "<system-out>{}</system-out>",
                        xml_escape(&format!("warning: {} at {}", a.text, a.location))
                    )?;
                }
            }
        }
        writeln!(out, "</testcase>")?;
    }
    writeln!(out, "</testsuite></testsuites>")?;
    Ok(())
}
