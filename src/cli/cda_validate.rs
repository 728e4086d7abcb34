//! `fse cda validate`: judge CDA documents the way the national gateway does.
//!
//! Inputs are files or directories (walked for `*.xml`, in name order); documents are judged
//! in parallel (`--jobs`), results are printed in input order. Output formats:
//! - `human` (default): one headline per file with the gateway's verdict, then one line per
//!   finding `FILE:LINE:COLUMN: error[ID]: message` and its XPath location, a note naming the
//!   code systems whose codes were not checked (no code list in the rules: LOINC, AIC), and
//!   the warnings beyond the gateway (`warning[CODE]`, never changing the verdict);
//! - `json`: `{"rules":"builtin"|DIR,"results":[{"file","http","outcome","problem","type_id_extension",
//!   "template_id_root","schematron","xsd_errors":[…],"failed_asserts":[{"id","text",
//!   "location","line","column","test"}],"reports":[…],"vocabulary_error","terminology",
//!   "not_checked":[…],"warnings":[{"code","message","location","line","column"}],"error"}],
//!   "summary":{"documents","accepted","refused","errors"}}` — stable: fields are only ever
//!   added. `warnings` are what the gateway does not check but is very likely wrong
//!   (`FISCAL_CODE_CHECK_CHARACTER`: a patient's, author's or legal authenticator's fiscal
//!   code with a wrong check character; `LOINC_VERSION_UNKNOWN`: a LOINC `codeSystemVersion`
//!   the rules' catalog does not know): they never change `http`, `outcome` or the exit code;
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
use fse_cda::validate::{builtin_rules, RuleSet, StageTimes, Verdict, Warning};
use rayon::prelude::*;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
    /// Print where the time went (phases, threads, stages, one-time loads) to stderr.
    #[arg(long, hide = true)]
    pub timings: bool,
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

#[derive(Debug, Default, Serialize)]
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
    warnings: &'a [Warning],
    error: Option<&'a str>,
}

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

/// Where one document's time went (`--timings`).
struct DocTime {
    thread: usize,
    /// When the document was started, since the judging began.
    start: Duration,
    read: Duration,
    stages: StageTimes,
    /// Rendering the report.
    render: Duration,
}

fn judge_timed(rules: &RuleSet, file: &Path, began: Instant) -> (Result<Verdict, String>, DocTime) {
    let start = Instant::now();
    let mut t = DocTime {
        thread: rayon::current_thread_index().unwrap_or(0),
        start: start - began,
        read: Duration::ZERO,
        stages: StageTimes::default(),
        render: Duration::ZERO,
    };
    let bytes = std::fs::read(file);
    t.read = start.elapsed();
    let r = match bytes {
        Ok(bytes) => rules
            .validate_timed(&bytes, &mut t.stages)
            .map_err(|e| e.to_string()),
        Err(e) => Err(format!("cannot read: {e}")),
    };
    (r, t)
}

/// Milliseconds, for the `--timings` report.
fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// The `--timings` report: phases of the run, then per thread the documents judged and the
/// time per stage, the first documents of each thread against the rest, and the one-time
/// loads of the rule set.
fn print_timings(
    phases: &[(&str, Duration)],
    times: &[DocTime],
    rules: &RuleSet,
) -> std::io::Result<()> {
    const FIRST: usize = 20;
    let mut e = std::io::stderr().lock();
    let line: Vec<String> = phases
        .iter()
        .map(|(p, d)| format!("{p} {}", ms(*d)))
        .collect();
    writeln!(e, "timings: {}", line.join(", "))?;
    let threads = times.iter().map(|t| t.thread + 1).max().unwrap_or(0);
    let total = |ts: &[&DocTime]| {
        let mut s = (Duration::ZERO, StageTimes::default(), Duration::ZERO);
        for t in ts {
            s.0 += t.read;
            s.2 += t.render;
            s.1.parse += t.stages.parse;
            s.1.xsd += t.stages.xsd;
            s.1.schematron += t.stages.schematron;
            s.1.terminology += t.stages.terminology;
        }
        s
    };
    let show = |label: &str, ts: &[&DocTime], e: &mut std::io::StderrLock<'_>| {
        let (read, st, render) = total(ts);
        let sum = read + st.parse + st.xsd + st.schematron + st.terminology + render;
        let per = |d: Duration| d.as_secs_f64() * 1e3 / ts.len().max(1) as f64;
        writeln!(
            e,
            "  {label}: {} docs, {} busy ({:.3} ms/doc: read {:.3}, parse {:.3}, xsd {:.3}, schematron {:.3}, terminology {:.3}, render {:.3})",
            ts.len(),
            ms(sum),
            per(sum),
            per(read),
            per(st.parse),
            per(st.xsd),
            per(st.schematron),
            per(st.terminology),
            per(render),
        )
    };
    for th in 0..threads {
        let mine: Vec<&DocTime> = times.iter().filter(|t| t.thread == th).collect();
        let first_at = mine.iter().map(|t| t.start).min().unwrap_or_default();
        let last_end = mine
            .iter()
            .map(|t| {
                t.start
                    + t.read
                    + t.stages.parse
                    + t.stages.xsd
                    + t.stages.schematron
                    + t.stages.terminology
                    + t.render
            })
            .max()
            .unwrap_or_default();
        writeln!(
            e,
            " thread {th}: first document at {}, last done at {}",
            ms(first_at),
            ms(last_end)
        )?;
        let mut sorted = mine.clone();
        sorted.sort_by_key(|t| t.start);
        show("all", &sorted, &mut e)?;
        let cut = sorted.len().min(FIRST);
        show(&format!("first {cut}"), &sorted[..cut], &mut e)?;
        show("rest", &sorted[cut..], &mut e)?;
    }
    for (what, took) in rules.load_times() {
        writeln!(e, " load: {what}: {}", ms(took))?;
    }
    let (fast, full) = rules.xsd_fast_counts();
    writeln!(
        e,
        " xsd: {fast} documents answered by the fast verdict, {full} by the full engine"
    )?;
    Ok(())
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let began = Instant::now();
    let mut phases: Vec<(&str, Duration)> = Vec::new();
    let mut lap = {
        let mut last = began;
        move |phase: &'static str, phases: &mut Vec<(&str, Duration)>| {
            let now = Instant::now();
            phases.push((phase, now - last));
            last = now;
        }
    };
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
    lap("rules", &mut phases);
    let files = collect_inputs(&args.inputs)?;
    if files.is_empty() {
        bail!("no *.xml document found in the given inputs");
    }
    lap("inputs", &mut phases);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .context("cannot start the worker threads")?;
    lap("pool", &mut phases);
    // The XSD sets take 35-65 ms each to compile, and the first documents wait for theirs:
    // with several threads and documents to share out, compile them side by side first.
    // A failure is not reported here: each document that needs the set reports it.
    let xsd_sets = rules.xsd_set_names();
    if pool.current_num_threads() > 1 && xsd_sets.len() > 1 && files.len() > xsd_sets.len() {
        pool.install(|| {
            xsd_sets.par_iter().for_each(|ext| {
                let _ = rules.prepare_xsd(ext);
            })
        });
    }
    lap("xsd", &mut phases);
    // Each worker renders the report of its document right away (in parallel, and the
    // verdict is dropped at once); what is left for the end is writing them out in order.
    let render = Render {
        format: args.format,
        builtin: args.rules.is_none(),
    };
    let mut times = Vec::new();
    let results: Vec<Rendered> = if args.timings {
        let judging = Instant::now();
        let timed: Vec<(Rendered, DocTime)> = pool.install(|| {
            files
                .par_iter()
                .with_max_len(MAX_RUN)
                .map(|f| {
                    let (r, mut t) = judge_timed(&rules, f, judging);
                    let rendering = Instant::now();
                    let rendered = render.entry(f, &r);
                    t.render = rendering.elapsed();
                    (rendered, t)
                })
                .collect()
        });
        timed
            .into_iter()
            .map(|(r, t)| {
                times.push(t);
                r
            })
            .collect()
    } else {
        pool.install(|| {
            files
                .par_iter()
                .with_max_len(MAX_RUN)
                .map(|f| render.entry(f, &judge(&rules, f)))
                .collect()
        })
    };
    lap("judging", &mut phases);

    let count = |s: Status| results.iter().filter(|r| r.status == s).count();
    let counts = Counts {
        documents: results.len(),
        accepted: count(Status::Accepted),
        refused: count(Status::Refused),
        errors: count(Status::Error),
    };
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
            for r in &results {
                out.write_all(&r.text)?;
            }
            writeln!(
                out,
                "{} document(s): {} accepted, {} refused, {} not judged",
                counts.documents, counts.accepted, counts.refused, counts.errors
            )?;
        }
        Format::Json => write_json(&mut out, &results, &rules_name, &counts)?,
        Format::Junit => {
            writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
            writeln!(
                out,
                "<testsuites><testsuite name=\"fse cda validate\" tests=\"{}\" failures=\"{}\" errors=\"{}\">",
                counts.documents, counts.refused, counts.errors
            )?;
            for r in &results {
                out.write_all(&r.text)?;
            }
            writeln!(out, "</testsuite></testsuites>")?;
        }
    }
    out.flush()?;
    if args.timings {
        lap("output", &mut phases);
        phases.push(("total", began.elapsed()));
        print_timings(&phases, &times, &rules)?;
    }
    // The process ends right after this report: the compiled rule set and the rendered
    // entries (hundreds of thousands of allocations) are left to the OS instead of being
    // freed one by one, which took about 13 ms of a 420 ms run on the official samples.
    std::mem::forget(rules);
    std::mem::forget(results);
    Ok(ExitCode::from(if counts.errors > 0 {
        EXIT_USAGE
    } else if counts.refused > 0 {
        EXIT_INVALID
    } else {
        EXIT_OK
    }))
}

/// Most documents a worker judges in a row without offering the rest to the other workers:
/// small, so that no worker is left idle at the end while another finishes a long run
/// (documents take ~0.5 ms; splitting the work costs far less).
const MAX_RUN: usize = 4;

/// How a document counts in the summary and the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Accepted,
    Refused,
    /// Not judged (unreadable file, rule error).
    Error,
}

/// One document's report, rendered in the output format by the worker that judged it.
struct Rendered {
    status: Status,
    text: Vec<u8>,
}

#[derive(Debug, Serialize)]
struct Counts {
    documents: usize,
    accepted: usize,
    refused: usize,
    errors: usize,
}

/// What every document's report is rendered with.
#[derive(Clone, Copy)]
struct Render {
    format: Format,
    builtin: bool,
}

impl Render {
    /// The report on one document in the output format: its lines (human), its object of the
    /// `results` array indented to its place (JSON), its test case (JUnit).
    fn entry(&self, file: &Path, r: &Result<Verdict, String>) -> Rendered {
        let status = match r {
            Err(_) => Status::Error,
            Ok(v) if v.outcome.accepted() => Status::Accepted,
            Ok(_) => Status::Refused,
        };
        let mut text = Vec::new();
        // Writing into a Vec cannot fail, and serialising these types cannot either.
        let _ = match self.format {
            Format::Human => human_entry(&mut text, file, r, self.builtin),
            Format::Json => json_entry(&mut text, file, r),
            Format::Junit => junit_entry(&mut text, file, r),
        };
        Rendered { status, text }
    }
}

fn human_entry(
    out: &mut Vec<u8>,
    file: &Path,
    r: &Result<Verdict, String>,
    builtin: bool,
) -> anyhow::Result<()> {
    let f = file.display();
    match r {
        Err(e) => {
            writeln!(out, "{f}: error: {e}")?;
        }
        Ok(v) => {
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
            if let Some(t) = v
                .terminology
                .as_ref()
                .filter(|t| !t.unchecked_systems.is_empty())
            {
                let systems: Vec<String> = t
                    .unchecked_systems
                    .iter()
                    .map(|s| match fse_cda::terminology::system_name(s) {
                        Some(name) => format!("{name} ({s})"),
                        None => s.clone(),
                    })
                    .collect();
                writeln!(
                    out,
                    "{f}: note: codes not checked, no code list in the rules for: {}",
                    systems.join(", ")
                )?;
            }
            for w in &v.warnings {
                writeln!(
                    out,
                    "{f}:{}:{}: warning[{}]: {} (never changes the verdict)",
                    w.line, w.column, w.code, w.message
                )?;
                writeln!(out, "    at {}", w.location)?;
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
    Ok(())
}

/// `"12,5 message"` → (12, 5, "message").
fn split_position(e: &str) -> Option<(u32, u32, &str)> {
    let (pos, msg) = e.split_once(' ')?;
    let (l, c) = pos.split_once(',')?;
    Some((l.parse().ok()?, c.parse().ok()?, msg))
}

/// Pretty JSON of `value` as it appears nested `depth` levels deep in a pretty-printed
/// document (two spaces a level): serde_json's own layout, with every line after the first
/// indented. JSON text has no raw line break inside a string, so every `\n` is a line end.
fn pretty_nested(out: &mut Vec<u8>, value: &impl Serialize, depth: usize) -> anyhow::Result<()> {
    let mut plain = Vec::new();
    serde_json::to_writer_pretty(&mut plain, value)?;
    out.reserve(plain.len() + plain.len() / 8);
    let mut rest = &plain[..];
    while let Some(i) = rest.iter().position(|&c| c == b'\n') {
        out.extend_from_slice(&rest[..=i]);
        out.extend(std::iter::repeat_n(b' ', 2 * depth));
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    Ok(())
}

/// One element of the JSON `results` array, indented to its place (see [`write_json`]).
fn json_entry(out: &mut Vec<u8>, file: &Path, r: &Result<Verdict, String>) -> anyhow::Result<()> {
    let file = file.display().to_string();
    let result = match r {
        // Not judged: every verdict field null or empty.
        Err(e) => JsonResult {
            file,
            error: Some(e),
            ..JsonResult::default()
        },
        Ok(v) => JsonResult {
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
            warnings: &v.warnings,
            error: None,
        },
    };
    pretty_nested(out, &result, 2)
}

/// The JSON report, laid out exactly as `serde_json::to_writer_pretty` lays out
/// `{"rules", "results": [...], "summary"}`, from the pre-rendered elements of `results`.
fn write_json(
    out: &mut impl Write,
    results: &[Rendered],
    rules: &str,
    counts: &Counts,
) -> anyhow::Result<()> {
    let mut head = Vec::new();
    head.extend_from_slice(b"{\n  \"rules\": ");
    serde_json::to_writer(&mut head, rules)?;
    head.extend_from_slice(b",\n  \"results\": [");
    out.write_all(&head)?;
    for (i, r) in results.iter().enumerate() {
        out.write_all(if i == 0 { b"\n    " } else { b",\n    " })?;
        out.write_all(&r.text)?;
    }
    out.write_all(if results.is_empty() {
        b"],\n"
    } else {
        b"\n  ],\n"
    })?;
    let mut tail = Vec::new();
    tail.extend_from_slice(b"  \"summary\": ");
    pretty_nested(&mut tail, counts, 1)?;
    tail.extend_from_slice(b"\n}\n");
    out.write_all(&tail)?;
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

/// One `<testcase>` line of the JUnit report.
fn junit_entry(out: &mut Vec<u8>, file: &Path, r: &Result<Verdict, String>) -> anyhow::Result<()> {
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
    if let Ok(v) = r {
        for w in &v.warnings {
            write!(
                out,
                "<system-out>{}</system-out>",
                xml_escape(&format!(
                    "warning[{}]: {} at {}",
                    w.code, w.message, w.location
                ))
            )?;
        }
    }
    writeln!(out, "</testcase>")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON report assembled from pre-rendered elements is byte for byte what
    /// serde_json lays out for the whole document (escapes, nesting, empty lists included).
    #[test]
    fn json_layout_matches_serde() {
        let elements = [
            serde_json::json!({"file": "a \"b\"\n.xml", "list": [], "nested": {"x": [1, {"y": null}], "z": {}}}),
            serde_json::json!({"file": "c.xml", "error": "line 1\nline 2\ttab \u{1}"}),
        ];
        for n in 0..=elements.len() {
            let results: Vec<Rendered> = elements[..n]
                .iter()
                .map(|e| {
                    let mut text = Vec::new();
                    pretty_nested(&mut text, e, 2).unwrap();
                    Rendered {
                        status: Status::Accepted,
                        text,
                    }
                })
                .collect();
            let counts = Counts {
                documents: n,
                accepted: n,
                refused: 0,
                errors: 0,
            };
            let mut ours = Vec::new();
            write_json(&mut ours, &results, "dir/\"rules\"", &counts).unwrap();
            #[derive(Serialize)]
            struct Whole<'a> {
                rules: &'a str,
                results: &'a [serde_json::Value],
                summary: &'a Counts,
            }
            let whole = Whole {
                rules: "dir/\"rules\"",
                results: &elements[..n],
                summary: &counts,
            };
            let mut theirs = serde_json::to_vec_pretty(&whole).unwrap();
            theirs.push(b'\n');
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
        }
    }
}
