//! Judging a CDA document the way the national gateway does, offline.
//!
//! A [`RuleSet`] is a folder laid out like the Ministry's catalog (`xsd/<typeId extension>/`,
//! `schematron/*.sch`, `terminology/*.csv`, with the gateway's index
//! `gateway-db/schematron-index.json` or a `doctypes.csv` telling which schematron serves
//! which templateId root). It is loaded once; each schematron is compiled the first time a
//! document needs it and then shared by every thread. [`builtin_rules`] gives our own rules,
//! embedded in the binary (a pre-flight check; no XSD, so that stage is listed in
//! [`Verdict::not_checked`]).
//!
//! [`RuleSet::validate`] follows the gateway's order and stop rules:
//! 1. XML reading (DOCTYPE refused) → `SYNTAX_ERROR` (400 `/msg/syntax`);
//! 2. the XSD set chosen by the first `typeId/@extension` ([`xsd`], pure Rust): an unknown
//!    extension or an invalid document → `SYNTAX_ERROR`;
//! 3. the schematron chosen by the first `templateId/@root` (highest version): a failed assert
//!    → `SEMANTIC_ERROR` (422 `/msg/semantic`), reports only → `SEMANTIC_WARNING` (201);
//! 4. terminology ([`crate::terminology`]) → `VOCABULARY_ERROR` (400 `/msg/vocabulary`).

mod builtin;
mod xsd;

pub use builtin::{builtin_rules, BuiltinRules};

use crate::schematron::{Finding, Schema, SchematronError};
use crate::terminology::{Terminology, TerminologyError, TerminologyReport};
use crate::xml::{Document, NodeId, NodeKind};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The gateway's outcome names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Ok,
    SemanticWarning,
    SemanticError,
    SyntaxError,
    VocabularyError,
}

impl Outcome {
    /// The HTTP status the gateway answers with.
    pub fn http(self) -> u16 {
        match self {
            Outcome::Ok | Outcome::SemanticWarning => 201,
            Outcome::SemanticError => 422,
            Outcome::SyntaxError | Outcome::VocabularyError => 400,
        }
    }

    /// The problem type of the gateway's error body, if any.
    pub fn problem(self) -> Option<&'static str> {
        match self {
            Outcome::Ok | Outcome::SemanticWarning => None,
            Outcome::SemanticError => Some("/msg/semantic"),
            Outcome::SyntaxError => Some("/msg/syntax"),
            Outcome::VocabularyError => Some("/msg/vocabulary"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "OK",
            Outcome::SemanticWarning => "SEMANTIC_WARNING",
            Outcome::SemanticError => "SEMANTIC_ERROR",
            Outcome::SyntaxError => "SYNTAX_ERROR",
            Outcome::VocabularyError => "VOCABULARY_ERROR",
        }
    }

    /// Accepted by the gateway (201).
    pub fn accepted(self) -> bool {
        self.http() == 201
    }
}

/// The verdict on one document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    pub outcome: Outcome,
    pub http: u16,
    pub problem: Option<&'static str>,
    pub type_id_extension: Option<String>,
    pub template_id_root: Option<String>,
    /// File name and version of the schematron applied.
    pub schematron: Option<String>,
    /// Syntax problems (XML reading, XSD set); `line:column message` when a position is known.
    pub xsd_errors: Vec<String>,
    pub failed_asserts: Vec<Finding>,
    pub reports: Vec<Finding>,
    /// The terminology stage, when it ran.
    pub terminology: Option<TerminologyReport>,
    /// The gateway's message when the terminology refused the document.
    pub vocabulary_error: Option<String>,
    /// Stages the gateway runs that this version does not check yet.
    pub not_checked: Vec<&'static str>,
    /// What the gateway does not check but is very likely wrong ([`Warning`]); never changes
    /// the outcome.
    pub warnings: Vec<Warning>,
}

/// Something beyond the gateway's checks that is very likely wrong in a document: reported
/// alongside the verdict, never changing it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// Stable id: [`Warning::FISCAL_CODE`] or [`Warning::LOINC_VERSION`].
    pub code: &'static str,
    pub message: String,
    /// Location of the element, as the schematron findings give it.
    pub location: String,
    pub line: u32,
    pub column: u32,
}

impl Warning {
    /// A fiscal code (patient, author, legal authenticator) with a wrong check character.
    pub const FISCAL_CODE: &'static str = "FISCAL_CODE_CHECK_CHARACTER";
    /// A LOINC `codeSystemVersion` the rule set's catalog does not know.
    pub const LOINC_VERSION: &'static str = "LOINC_VERSION_UNKNOWN";

    fn at(doc: &Document, n: NodeId, code: &'static str, message: String) -> Warning {
        let (line, column) = doc.position(n);
        Warning {
            code,
            message,
            location: crate::schematron::location(doc, n),
            line,
            column,
        }
    }
}

/// The ids with the fiscal-code root of the patient (`recordTarget/patientRole`), the authors
/// (`author/assignedAuthor`) and the legal authenticator (`legalAuthenticator/assignedEntity`),
/// with whose ids they are.
fn fiscal_code_ids(doc: &Document) -> Vec<(NodeId, &'static str)> {
    const HOLDERS: [(&str, &str, &str); 3] = [
        ("recordTarget", "patientRole", "patient"),
        ("author", "assignedAuthor", "author"),
        (
            "legalAuthenticator",
            "assignedEntity",
            "legal authenticator",
        ),
    ];
    let Some(root) = doc.document_element() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in doc.child_elements(root) {
        for (outer, inner, who) in HOLDERS {
            if doc.local_name(c) != outer {
                continue;
            }
            for role in doc
                .child_elements(c)
                .filter(|&r| doc.local_name(r) == inner)
            {
                for id in doc.child_elements(role).filter(|&i| {
                    doc.local_name(i) == "id"
                        && doc.attribute(i, "root")
                            == Some(crate::build::document::FISCAL_CODE_ROOT)
                }) {
                    out.push((id, who));
                }
            }
        }
    }
    out
}

impl Verdict {
    fn new(outcome: Outcome) -> Verdict {
        Verdict {
            outcome,
            http: outcome.http(),
            problem: outcome.problem(),
            type_id_extension: None,
            template_id_root: None,
            schematron: None,
            xsd_errors: Vec::new(),
            failed_asserts: Vec::new(),
            reports: Vec::new(),
            terminology: None,
            vocabulary_error: None,
            not_checked: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn set(&mut self, outcome: Outcome) {
        self.outcome = outcome;
        self.http = outcome.http();
        self.problem = outcome.problem();
    }
}

/// Time one document spent in each stage, measured by [`RuleSet::validate_timed`] (for the
/// CLI's hidden `--timings` report). A stage includes the one-time work it triggers: the XSD
/// set compiled on first use (once, shared by every thread), a schematron compiled on first
/// use.
#[doc(hidden)]
#[derive(Debug, Default, Clone, Copy)]
pub struct StageTimes {
    pub parse: Duration,
    pub xsd: Duration,
    pub schematron: Duration,
    pub terminology: Duration,
}

/// Stopwatch over the stages of one document; does nothing when not asked for.
struct Lap<'a>(Option<(&'a mut StageTimes, Instant)>);

impl Lap<'_> {
    /// Adds the time since the previous lap to the field `f` picks.
    fn lap(&mut self, f: fn(&mut StageTimes) -> &mut Duration) {
        if let Some((t, last)) = &mut self.0 {
            let now = Instant::now();
            *f(t) += now - *last;
            *last = now;
        }
    }
}

/// Problems with the rule set itself (not with a document).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RulesError {
    #[error("{0}: {1}")]
    Io(PathBuf, String),
    #[error("{0}: {1}")]
    Index(PathBuf, String),
    #[error(transparent)]
    Schematron(#[from] SchematronError),
    #[error(transparent)]
    Terminology(#[from] TerminologyError),
}

#[derive(Debug)]
struct SchematronEntry {
    root: String,
    version: String,
    path: PathBuf,
    compiled: OnceLock<Result<Arc<Schema>, SchematronError>>,
}

/// An XSD set once loaded, or why it could not be.
type XsdLoad = Result<Arc<xsd::XsdSet>, String>;

/// Rule material laid out as in the Ministry's catalog.
#[derive(Debug)]
pub struct RuleSet {
    dir: PathBuf,
    /// typeId extension → its `CDA.xsd`, compiled on first use.
    xsd_sets: HashMap<String, (PathBuf, OnceLock<XsdLoad>)>,
    /// templateId root → index in `entries` of the schematron the gateway would pick.
    by_root: HashMap<String, usize>,
    entries: Vec<SchematronEntry>,
    terminology: Option<Terminology>,
    /// One-time loads and compilations (what, how long), for [`RuleSet::load_times`].
    load_times: Mutex<Vec<(String, Duration)>>,
}

impl RuleSet {
    /// Reads the layout of `dir` (schematrons are compiled lazily, see
    /// [`RuleSet::compile_all`]).
    pub fn load(dir: &Path) -> Result<RuleSet, RulesError> {
        let io = |p: &Path, e: std::io::Error| RulesError::Io(p.to_path_buf(), e.to_string());
        let xsd_dir = dir.join("xsd");
        let mut xsd_sets = HashMap::new();
        if xsd_dir.is_dir() {
            for e in std::fs::read_dir(&xsd_dir).map_err(|e| io(&xsd_dir, e))? {
                let e = e.map_err(|e| io(&xsd_dir, e))?;
                let main = e.path().join("CDA.xsd");
                if main.is_file() {
                    xsd_sets.insert(
                        e.file_name().to_string_lossy().into_owned(),
                        (main, OnceLock::new()),
                    );
                }
            }
        }
        let sch_dir = dir.join("schematron");
        let mut entries = Vec::new();
        for (root, file, version) in read_index(dir)? {
            let path = sch_dir.join(&file);
            if path.is_file() {
                entries.push(SchematronEntry {
                    root,
                    version,
                    path,
                    compiled: OnceLock::new(),
                });
            }
        }
        if entries.is_empty() {
            return Err(RulesError::Index(
                dir.to_path_buf(),
                "no schematron found (expected schematron/*.sch and gateway-db/schematron-index.json or doctypes.csv)"
                    .into(),
            ));
        }
        // Like the gateway: per root, the highest version (string order).
        let mut by_root: HashMap<String, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            match by_root.get(&e.root) {
                Some(&j) if entries[j].version >= e.version => {}
                _ => {
                    by_root.insert(e.root.clone(), i);
                }
            }
        }
        let started = Instant::now();
        let terminology = Terminology::load(dir)?;
        let load_times = Mutex::new(vec![("terminology load".to_owned(), started.elapsed())]);
        Ok(RuleSet {
            dir: dir.to_path_buf(),
            xsd_sets,
            by_root,
            entries,
            terminology,
            load_times,
        })
    }

    /// The folder the rules come from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// templateId roots served, with the schematron file chosen for each.
    pub fn schematrons(&self) -> Vec<(&str, &Path)> {
        let mut v: Vec<(&str, &Path)> = self
            .by_root
            .iter()
            .map(|(r, &i)| (r.as_str(), self.entries[i].path.as_path()))
            .collect();
        v.sort();
        v
    }

    /// Compiles every schematron the rule set would use now (otherwise done on first use);
    /// returns the first compilation error.
    pub fn compile_all(&self) -> Result<(), RulesError> {
        for &i in self.by_root.values() {
            self.schema(i)?;
        }
        for ext in self.xsd_sets.keys() {
            self.xsd(ext)?;
        }
        Ok(())
    }

    /// The typeId extensions that have an XSD set, sorted.
    pub fn xsd_set_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.xsd_sets.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Compiles the XSD set of typeId extension `ext` now (otherwise done by the first
    /// document that needs it). Each set is compiled once; every thread then shares it. A
    /// run on several threads can compile its sets side by side before its documents, rather
    /// than one after the other as documents first meet them.
    pub fn prepare_xsd(&self, ext: &str) -> Result<(), RulesError> {
        self.xsd(ext).map(|_| ())
    }

    /// One-time work done so far, in order: (what, how long): each XSD set's compilation
    /// (once, shared by every thread) and each schematron's.
    #[doc(hidden)]
    pub fn load_times(&self) -> Vec<(String, Duration)> {
        self.load_times
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    fn record_load(&self, what: impl FnOnce() -> String, started: Instant) {
        let took = started.elapsed();
        if let Ok(mut t) = self.load_times.lock() {
            t.push((what(), took));
        }
    }

    /// A problem with the XSD material (compiling a set, or the engine failing on it).
    fn xsd_error(&self, message: String) -> RulesError {
        RulesError::Index(self.dir.join("xsd"), message)
    }

    fn xsd(&self, ext: &str) -> Result<Arc<xsd::XsdSet>, RulesError> {
        let Some((path, cell)) = self.xsd_sets.get(ext) else {
            return Err(self.xsd_error(format!("no XSD set {ext}")));
        };
        cell.get_or_init(|| {
            let started = Instant::now();
            let set = xsd::XsdSet::load(path).map(Arc::new);
            self.record_load(|| format!("xsd {ext} compile"), started);
            set
        })
        .clone()
        .map_err(|e| self.xsd_error(e))
    }

    fn schema(&self, i: usize) -> Result<Arc<Schema>, SchematronError> {
        let e = &self.entries[i];
        e.compiled
            .get_or_init(|| {
                let started = Instant::now();
                let schema = Schema::load(&e.path).map(Arc::new);
                self.record_load(
                    || {
                        let file = e.path.file_name().unwrap_or_default();
                        format!("schematron {} compile", file.to_string_lossy())
                    },
                    started,
                );
                schema
            })
            .clone()
    }

    /// Judges a document given as bytes.
    pub fn validate(&self, bytes: &[u8]) -> Result<Verdict, RulesError> {
        self.validate_laps(bytes, Lap(None))
    }

    /// [`RuleSet::validate`], adding the time spent in each stage to `times`.
    #[doc(hidden)]
    pub fn validate_timed(
        &self,
        bytes: &[u8],
        times: &mut StageTimes,
    ) -> Result<Verdict, RulesError> {
        self.validate_laps(bytes, Lap(Some((times, Instant::now()))))
    }

    fn validate_laps(&self, bytes: &[u8], mut lap: Lap<'_>) -> Result<Verdict, RulesError> {
        let parsed = crate::xml::parse_keeping_text(bytes, crate::xml::Limits::default());
        lap.lap(|t| &mut t.parse);
        let (doc, text) = match parsed {
            Ok(d) => d,
            Err(e) => {
                let mut v = Verdict::new(Outcome::SyntaxError);
                v.xsd_errors.push(format!("FATAL: {e}"));
                return Ok(v);
            }
        };
        // The XSD stage reads the text the document was parsed from (decoded to UTF-8).
        self.judge(&doc, Some(text.as_bytes()), lap)
    }

    /// Judges a parsed document whose source bytes are no longer at hand: the XSD stage is
    /// skipped (and listed in [`Verdict::not_checked`]).
    pub fn validate_document(&self, doc: &Document) -> Result<Verdict, RulesError> {
        self.judge(doc, None, Lap(None))
    }

    /// The XSD stage alone, for benchmarks and cross-checks: the errors (`line,column message`,
    /// empty when valid) of `doc`, read from `bytes`, against the set of its first
    /// `typeId/@extension` (an unknown extension is an error). `reparse` makes the XSD
    /// engine read `bytes` again with its own reader instead of walking `doc`.
    #[doc(hidden)]
    pub fn xsd_errors(
        &self,
        doc: &Document,
        bytes: &[u8],
        reparse: bool,
    ) -> Result<Vec<String>, RulesError> {
        let ext = first_attr(doc, "typeid", "extension").unwrap_or_default();
        if !self.xsd_sets.contains_key(&ext) {
            return Ok(vec![format!(
                "Schema with version {ext} not found on database."
            )]);
        }
        self.xsd_stage(&ext, doc, bytes, reparse)
    }

    /// The XSD stage's fast verdict alone, for tests: `Some(true)` when it finds `doc`
    /// valid, `None` when it is not sure (then the full engine decides); see
    /// [`RuleSet::xsd_errors`] for the arguments.
    #[doc(hidden)]
    pub fn xsd_fast_verdict(
        &self,
        doc: &Document,
        bytes: &[u8],
    ) -> Result<Option<bool>, RulesError> {
        let ext = first_attr(doc, "typeid", "extension").unwrap_or_default();
        if !self.xsd_sets.contains_key(&ext) {
            return Ok(None);
        }
        let set = self.xsd(&ext)?;
        set.fast_verdict(doc, bytes).map_err(|e| self.xsd_error(e))
    }

    /// The XSD stage with the full engine only (no fast verdict), for benchmarks and
    /// cross-checks; see [`RuleSet::xsd_errors`].
    #[doc(hidden)]
    pub fn xsd_errors_full(&self, doc: &Document, bytes: &[u8]) -> Result<Vec<String>, RulesError> {
        let ext = first_attr(doc, "typeid", "extension").unwrap_or_default();
        if !self.xsd_sets.contains_key(&ext) {
            return self.xsd_errors(doc, bytes, false);
        }
        let set = self.xsd(&ext)?;
        set.validate_full(doc, bytes).map_err(|e| self.xsd_error(e))
    }

    /// (documents the XSD fast verdict answered, documents it handed to the full engine)
    /// on every thread, over the XSD sets loaded so far.
    #[doc(hidden)]
    pub fn xsd_fast_counts(&self) -> (u64, u64) {
        let mut total = (0, 0);
        for (_, cell) in self.xsd_sets.values() {
            if let Some(Ok(set)) = cell.get() {
                if let Ok((a, u)) = set.fast_counts() {
                    total.0 += a;
                    total.1 += u;
                }
            }
        }
        total
    }

    fn xsd_stage(
        &self,
        ext: &str,
        doc: &Document,
        bytes: &[u8],
        reparse: bool,
    ) -> Result<Vec<String>, RulesError> {
        let set = self.xsd(ext)?;
        let errors = if reparse {
            set.validate_reparsed(doc, bytes)
        } else {
            set.validate(doc, bytes)
        };
        errors.map_err(|e| self.xsd_error(e))
    }

    fn judge(
        &self,
        doc: &Document,
        bytes: Option<&[u8]>,
        mut lap: Lap<'_>,
    ) -> Result<Verdict, RulesError> {
        let mut v = Verdict::new(Outcome::Ok);
        v.warnings = self.warnings(doc);
        v.type_id_extension = first_attr(doc, "typeid", "extension");
        v.template_id_root = first_attr(doc, "templateid", "root");
        // 2. XSD set
        let ext = v.type_id_extension.clone().unwrap_or_default();
        // A rule set without any XSD (e.g. the built-in rules): the stage is not checked.
        let has_xsd = !self.xsd_sets.is_empty();
        if has_xsd && !self.xsd_sets.contains_key(&ext) {
            v.set(Outcome::SyntaxError);
            v.xsd_errors.push(format!(
                "Schema with version {} not found on database.",
                v.type_id_extension.as_deref().unwrap_or("None")
            ));
            return Ok(v);
        }
        match bytes.filter(|_| has_xsd) {
            Some(bytes) => {
                v.xsd_errors = self.xsd_stage(&ext, doc, bytes, false)?;
                lap.lap(|t| &mut t.xsd);
                if !v.xsd_errors.is_empty() {
                    v.set(Outcome::SyntaxError);
                    return Ok(v);
                }
            }
            None => v.not_checked.push("xsd"),
        }
        // 3. schematron
        let root = v.template_id_root.clone().unwrap_or_default();
        let Some(&i) = self.by_root.get(&root) else {
            v.set(Outcome::SemanticError);
            v.failed_asserts.push(Finding {
                id: None,
                text: format!(
                    "Schematron with template id root {} not found on database.",
                    v.template_id_root.as_deref().unwrap_or("None")
                ),
                test: String::new(),
                location: String::new(),
                line: 0,
                column: 0,
                role: None,
                pattern: None,
                diagnostics: Vec::new(),
            });
            return Ok(v);
        };
        let entry = &self.entries[i];
        let schema = self.schema(i)?;
        v.schematron = Some(format!(
            "{} (v{})",
            entry
                .path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            entry.version
        ));
        match schema.validate(doc) {
            Ok(report) => {
                v.failed_asserts = report.failed_asserts;
                v.reports = report.successful_reports;
            }
            Err(e) => {
                // The XSLT transformation fails as a whole: the gateway answers with a syntax error.
                v.set(Outcome::SyntaxError);
                v.xsd_errors.push(format!("FATAL (schematron): {e}"));
                return Ok(v);
            }
        }
        lap.lap(|t| &mut t.schematron);
        if !v.failed_asserts.is_empty() {
            v.set(Outcome::SemanticError);
            return Ok(v);
        }
        if !v.reports.is_empty() {
            v.set(Outcome::SemanticWarning);
        }
        // 4. terminology
        match &self.terminology {
            None => v.not_checked.push("terminology"),
            Some(t) => {
                let report = t.check(doc)?;
                if let Some(r) = &report.refusal {
                    v.set(Outcome::VocabularyError);
                    v.vocabulary_error = Some(r.message());
                }
                v.terminology = Some(report);
                lap.lap(|t| &mut t.terminology);
            }
        }
        Ok(v)
    }
}

impl RuleSet {
    /// What is very likely wrong beyond the gateway's checks ([`Warning`]).
    fn warnings(&self, doc: &Document) -> Vec<Warning> {
        let mut out = Vec::new();
        for (id, who) in fiscal_code_ids(doc) {
            let Some(code) = doc.attribute(id, "extension") else {
                continue;
            };
            let upper = code.trim().to_ascii_uppercase();
            if let Some((found, expected)) = crate::build::types::fiscal_code_check_mismatch(&upper)
            {
                out.push(Warning::at(
                    doc,
                    id,
                    Warning::FISCAL_CODE,
                    format!(
                        "the {who}'s fiscal code {code} has the check character {found}, \
                         {expected} expected (the gateway does not check it)"
                    ),
                ));
            }
        }
        if let Some(t) = &self.terminology {
            let known = t.versions(crate::terminology::LOINC);
            let known: Vec<&str> = known.iter().map(|v| v.unwrap_or("(none)")).collect();
            for (n, version) in t.unknown_loinc_versions(doc) {
                out.push(Warning::at(
                    doc,
                    n,
                    Warning::LOINC_VERSION,
                    format!(
                        "LOINC codeSystemVersion {version:?} is not one the catalog knows ({})",
                        known.join(", ")
                    ),
                ));
            }
        }
        out
    }
}

/// Attribute of the first unprefixed element (in document order) whose local name is `local`
/// ignoring case, as the gateway looks for typeId and templateId.
fn first_attr(doc: &Document, local_lower: &str, attr: &str) -> Option<String> {
    (0..doc.node_count())
        .filter_map(|i| doc.node(i))
        .find_map(|n| {
            if doc.kind(n) != NodeKind::Element {
                return None;
            }
            let id = doc.name_id(n)?;
            let nm = doc.name(id);
            if !nm.prefix.is_empty() || !nm.local.eq_ignore_ascii_case(local_lower) {
                return None;
            }
            Some(doc.attribute(n, attr).map(str::to_owned))
        })?
}

/// (templateId root, schematron file, version) rows of the catalog's index.
fn read_index(dir: &Path) -> Result<Vec<(String, String, String)>, RulesError> {
    let json = dir.join("gateway-db").join("schematron-index.json");
    if json.is_file() {
        let text = std::fs::read_to_string(&json)
            .map_err(|e| RulesError::Io(json.clone(), e.to_string()))?;
        let rows: Vec<serde_json::Value> = serde_json::from_str(&text)
            .map_err(|e| RulesError::Index(json.clone(), e.to_string()))?;
        let mut out = Vec::new();
        for r in rows {
            if r.get("deleted").and_then(|d| d.as_bool()) == Some(true) {
                continue;
            }
            if r.get("system").is_some_and(|s| !s.is_null()) {
                continue; // system-specific (e.g. TS) schematrons are not the default ones
            }
            let field = |k: &str| r.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            if let (Some(root), Some(file), Some(version)) = (
                field("template_id_root"),
                field("name_schematron"),
                field("version"),
            ) {
                out.push((root, file, version));
            }
        }
        return Ok(out);
    }
    let csv = dir.join("doctypes.csv");
    if csv.is_file() {
        let text = std::fs::read_to_string(&csv)
            .map_err(|e| RulesError::Io(csv.clone(), e.to_string()))?;
        let mut records = crate::csv::Records::new(&text);
        let mut header = Vec::new();
        records.next_into(&mut header);
        let col = |name: &str| header.iter().position(|h| h.trim() == name);
        let (Some(r), Some(f), Some(v)) = (
            col("template_id_root"),
            col("schematron_file"),
            col("schematron_version"),
        ) else {
            return Err(RulesError::Index(
                csv,
                "missing template_id_root/schematron_file/schematron_version columns".into(),
            ));
        };
        let mut out = Vec::new();
        let mut row = Vec::new();
        while records.next_into(&mut row) {
            let cell = |i: usize| row.get(i).map(|c| c.trim().to_owned());
            if let (Some(root), Some(file), Some(version)) = (cell(r), cell(f), cell(v)) {
                if !root.is_empty() && !file.is_empty() {
                    out.push((root, file, version));
                }
            }
        }
        return Ok(out);
    }
    Err(RulesError::Index(
        dir.to_path_buf(),
        "no index: expected gateway-db/schematron-index.json or doctypes.csv".into(),
    ))
}

/// A disagreement between the JWT's claims and the document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "claim", rename_all = "snake_case")]
pub enum JwtMismatch {
    /// The fiscal code of `person_id` is not the extension of any `patientRole/id`.
    PersonId {
        fiscal_code: String,
        patient_ids: Vec<String>,
    },
    /// `resource_hl7_type` is not `('CODE^^CODESYSTEM')` of the document's first `code`.
    ResourceHl7Type {
        value: String,
        expected: Option<String>,
    },
}

/// Checks the coherence of the gateway JWT's claims with the document: the fiscal code of
/// `person_id` (the part before `^^^`, e.g. `RSSMRA70A01H501S^^^&2.16.840.1.113883.2.9.4.3.2&ISO`)
/// must be a `recordTarget/patientRole/id/@extension`, and `resource_hl7_type` must equal
/// `('CODE^^CODESYSTEM')` built from the first `code` child of `ClinicalDocument`. Returns the
/// mismatches (empty when coherent).
pub fn check_jwt_coherence(
    doc: &Document,
    person_id: &str,
    resource_hl7_type: &str,
) -> Vec<JwtMismatch> {
    let mut out = Vec::new();
    let Some(root) = doc.document_element() else {
        return out;
    };
    let fiscal_code = person_id
        .split('^')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let patient_ids: Vec<String> = doc
        .child_elements(root)
        .filter(|&c| doc.local_name(c) == "recordTarget")
        .flat_map(|rt| {
            doc.child_elements(rt)
                .filter(|&c| doc.local_name(c) == "patientRole")
        })
        .flat_map(|pr| {
            doc.child_elements(pr)
                .filter(|&c| doc.local_name(c) == "id")
        })
        .filter_map(|id| doc.attribute(id, "extension").map(str::to_owned))
        .collect();
    if fiscal_code.is_empty() || !patient_ids.contains(&fiscal_code) {
        out.push(JwtMismatch::PersonId {
            fiscal_code,
            patient_ids,
        });
    }
    let expected = doc
        .child_elements(root)
        .find(|&c| doc.local_name(c) == "code")
        .map(|c| {
            format!(
                "('{}^^{}')",
                doc.attribute(c, "code").unwrap_or_default(),
                doc.attribute(c, "codeSystem").unwrap_or_default()
            )
        });
    if expected.as_deref() != Some(resource_hl7_type.trim()) {
        out.push(JwtMismatch::ResourceHl7Type {
            value: resource_hl7_type.to_owned(),
            expected,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `read_index` of a scratch folder holding `doctypes.csv` alone (removed after reading).
    fn index_of(name: &str, doctypes: &str) -> Result<Vec<(String, String, String)>, RulesError> {
        let dir = std::env::temp_dir().join(format!("fse-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::write(dir.join("doctypes.csv"), doctypes).expect("scratch file");
        let got = read_index(&dir);
        std::fs::remove_dir_all(&dir).ok();
        got
    }

    #[test]
    fn an_index_without_its_columns_is_refused_by_name() {
        let got = index_of(
            "index",
            "template_id_root,\"schematron_file,schematron_version\"\n1.2.3,a.sch,1\n",
        );
        match got {
            Err(RulesError::Index(path, msg)) => {
                assert!(path.ends_with("doctypes.csv"));
                assert!(msg.starts_with("missing template_id_root"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn index_rows_without_a_root_or_a_file_are_skipped() {
        let got = index_of(
            "index-rows",
            "type,template_id_root,schematron_file,schematron_version\r\n\
             LAB, 2.16.840.1.113883.2.9.10.1.1 ,lab.sch,2.1\r\n\
             RAD,,rad.sch,1\r\n\
             VPS,1.2.3,,1\r\n\
             short\r\n\
             \"P,SS\",1.2.4,\"p,ss.sch\",4\r\n",
        );
        assert_eq!(
            got.expect("an index"),
            [
                (
                    "2.16.840.1.113883.2.9.10.1.1".into(),
                    "lab.sch".into(),
                    "2.1".into()
                ),
                ("1.2.4".into(), "p,ss.sch".into(), "4".into()),
            ]
        );
    }

    #[test]
    fn jwt_coherence() {
        let doc = crate::xml::parse(
            br#"<ClinicalDocument xmlns="urn:hl7-org:v3"><code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/>
            <recordTarget><patientRole><id root="2.16.840.1.113883.2.9.4.3.2" extension="RSSMRA70A01H501S"/></patientRole></recordTarget>
            <component><section><code code="x" codeSystem="y"/></section></component></ClinicalDocument>"#,
        )
        .unwrap();
        let pid = "RSSMRA70A01H501S^^^&2.16.840.1.113883.2.9.4.3.2&ISO";
        assert!(check_jwt_coherence(&doc, pid, "('11502-2^^2.16.840.1.113883.6.1')").is_empty());
        assert!(check_jwt_coherence(
            &doc,
            "RSSMRA70A01H501S",
            "('11502-2^^2.16.840.1.113883.6.1')"
        )
        .is_empty());
        let bad = check_jwt_coherence(
            &doc,
            "BNCLRA80A41H501X^^^&2.16.840.1.113883.2.9.4.3.2&ISO",
            "('x^^y')",
        );
        assert_eq!(bad.len(), 2);
        assert!(
            matches!(&bad[0], JwtMismatch::PersonId { fiscal_code, .. } if fiscal_code == "BNCLRA80A41H501X")
        );
        assert!(
            matches!(&bad[1], JwtMismatch::ResourceHl7Type { expected: Some(e), .. } if e == "('11502-2^^2.16.840.1.113883.6.1')")
        );
    }
}
