//! Terminology checks, as the gateway makes them after the schematron.
//!
//! Every element carrying a `codeSystem` attribute is considered:
//! - systems on the allow-list are skipped;
//! - a system OID with an arc `999` or `9999` is blocked (the whole document is refused);
//! - systems the gateway does not manage are ignored;
//! - a `codeSystemVersion` that is not one of the managed versions of the system is refused
//!   (no version means the current one);
//! - the code must be in the system's code list (of that version), when a list is shipped;
//!   systems without a list are reported as unchecked.
//!
//! Before that, like the gateway, the `value`s inside an `observation` whose `code` is one of
//! a few known LOINC codes are taken to belong to a fixed code system ([`VALUE_SYSTEMS`]).
//!
//! Data: `DIR/gateway-db/dictionary.json` (managed systems, versions, allow-list, release
//! dates) and `DIR/terminology/<OID>.csv` (`version,code,description,release_date`), each list
//! read the first time a document needs it. Larger lists (e.g. full LOINC) are added by
//! dropping `<OID>.csv` files in that folder.

use crate::xml::{Document, NodeId, NodeKind};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Observation code → code system the observation's `value`s are checked against.
pub const VALUE_SYSTEMS: [(&str, &str); 6] = [
    ("89261-2", "2.16.840.1.113883.2.9.10.1.4.3.4.5"),
    ("33999-4", "2.16.840.1.113883.2.9.77.22.11.7"),
    ("75246-9", "2.16.840.1.113883.2.9.77.22.11.15"),
    ("72166-2", "1.3.6.1.4.1.12009.10.1.1356"),
    ("74204-9", "1.3.6.1.4.1.12009.10.1.1694"),
    ("45404-1", "1.3.6.1.4.1.12009.10.1.3342"),
];

/// OID of LOINC.
pub const LOINC: &str = "2.16.840.1.113883.6.1";

/// The usual name of a code system the reports name by OID (those whose code list the public
/// catalog does not ship: LOINC and AIC), if it has one here.
pub fn system_name(oid: &str) -> Option<&'static str> {
    match oid {
        LOINC => Some("LOINC"),
        "2.16.840.1.113883.2.9.6.1.5" => Some("AIC"),
        _ => None,
    }
}

/// Problems with the terminology data.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TerminologyError {
    #[error("{0}: {1}")]
    Io(PathBuf, String),
    #[error("{0}: {1}")]
    Format(PathBuf, String),
}

/// Why a document's terminology is refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    /// Systems with a blocked OID arc.
    Blocked { systems: Vec<String> },
    /// (system, version) pairs the gateway does not manage.
    UnmanagedVersion {
        pairs: Vec<(String, Option<String>)>,
    },
    /// Codes absent from their list, per (system, version).
    UnknownCodes {
        codes: Vec<(String, Option<String>, Vec<String>)>,
    },
}

impl Refusal {
    /// The gateway's message (Italian).
    pub fn message(&self) -> String {
        let sv = |s: &str, v: &Option<String>| match v {
            Some(v) => format!("{s} v{v}"),
            None => s.to_owned(),
        };
        match self {
            Refusal::Blocked { systems } => format!(
                "È stato trovato almeno un dizionario presente in Blocklist: [{}]",
                systems
                    .iter()
                    .map(|s| format!("'{s}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Refusal::UnmanagedVersion { pairs } => format!(
                "È stata trovata almeno una versione non gestita di un dizionario: [{}]",
                pairs
                    .iter()
                    .map(|(s, v)| sv(s, v))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Refusal::UnknownCodes { codes } => format!(
                "Almeno uno dei seguenti vocaboli non è censito: {}",
                codes
                    .iter()
                    .map(|(s, v, c)| format!("[CodeSystem: {}, Codes: {}]", sv(s, v), c.join(", ")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The outcome of the terminology stage for one document.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TerminologyReport {
    pub refusal: Option<Refusal>,
    /// Managed systems whose code list is not shipped (codes not checked).
    pub unchecked_systems: Vec<String>,
    /// Systems not managed by the gateway (ignored).
    pub unknown_systems: Vec<String>,
    /// Number of codes checked against a list.
    pub checked_codes: usize,
}

#[derive(Debug, Default)]
struct CodeList {
    by_version: FxHashMap<String, FxHashSet<String>>,
    any: FxHashSet<String>,
}

/// Terminology data, loaded once and shared across threads.
#[derive(Debug)]
pub struct Terminology {
    allow: HashSet<String>,
    managed: HashSet<String>,
    pairs: HashSet<(String, Option<String>)>,
    current: HashMap<String, Option<String>>,
    lists: HashMap<String, (PathBuf, OnceLock<Result<CodeList, TerminologyError>>)>,
}

fn date_of(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key)?.get("$date")?.as_str().map(str::to_owned)
}

impl Terminology {
    /// Loads `dir/gateway-db/dictionary.json` and indexes `dir/terminology/*.csv`; `None` when
    /// the rule folder has no dictionary.
    pub fn load(dir: &Path) -> Result<Option<Terminology>, TerminologyError> {
        let dict = dir.join("gateway-db").join("dictionary.json");
        if !dict.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&dict)
            .map_err(|e| TerminologyError::Io(dict.clone(), e.to_string()))?;
        let rows: Vec<serde_json::Value> = serde_json::from_str(&text)
            .map_err(|e| TerminologyError::Format(dict.clone(), e.to_string()))?;
        let rows: Vec<&serde_json::Value> = rows
            .iter()
            .filter(|r| r.get("deleted").and_then(serde_json::Value::as_bool) != Some(true))
            .collect();
        let system = |r: &serde_json::Value| {
            r.get("system")
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let version =
            |r: &serde_json::Value| r.get("version").and_then(|s| s.as_str()).map(str::to_owned);
        let mut t = Terminology {
            allow: HashSet::new(),
            managed: HashSet::new(),
            pairs: HashSet::new(),
            current: HashMap::new(),
            lists: HashMap::new(),
        };
        let mut per_system: BTreeMap<String, Vec<&serde_json::Value>> = BTreeMap::new();
        for r in &rows {
            let s = system(r);
            if r.get("whitelist").and_then(serde_json::Value::as_bool) == Some(true) {
                t.allow.insert(s.clone());
            }
            t.managed.insert(s.clone());
            t.pairs.insert((s.clone(), version(r)));
            per_system.entry(s).or_default().push(r);
        }
        // Current version: latest release date, else latest creation date, else the last entry.
        for (s, mut entries) in per_system {
            let key = if date_of(entries[0], "release_date").is_some() {
                Some("release_date")
            } else if date_of(entries[0], "creation_date").is_some() {
                Some("creation_date")
            } else {
                None
            };
            let chosen = match key {
                Some(k) => {
                    // stable sort, descending: the first of equal dates wins
                    entries.sort_by(|a, b| {
                        date_of(b, k)
                            .unwrap_or_default()
                            .cmp(&date_of(a, k).unwrap_or_default())
                    });
                    entries.first().copied()
                }
                None => entries.last().copied(),
            };
            t.current.insert(s, chosen.and_then(version));
        }
        let tdir = dir.join("terminology");
        if tdir.is_dir() {
            let entries = std::fs::read_dir(&tdir)
                .map_err(|e| TerminologyError::Io(tdir.clone(), e.to_string()))?;
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "csv") {
                    if let Some(stem) = p.file_stem().map(|s| s.to_string_lossy().into_owned()) {
                        t.lists.insert(stem, (p, OnceLock::new()));
                    }
                }
            }
        }
        Ok(Some(t))
    }

    /// The versions of `system` the catalog knows (sorted; empty when it does not manage it;
    /// `None` stands for an entry without a version).
    pub fn versions(&self, system: &str) -> Vec<Option<&str>> {
        let mut v: Vec<Option<&str>> = self
            .pairs
            .iter()
            .filter(|(s, _)| s == system)
            .map(|(_, v)| v.as_deref())
            .collect();
        v.sort_unstable();
        v
    }

    /// Elements of `doc` whose `codeSystem` is LOINC with a `codeSystemVersion` that the
    /// catalog does not know for LOINC, with that version (none when the catalog does not
    /// manage LOINC).
    pub fn unknown_loinc_versions<'d>(&self, doc: &'d Document) -> Vec<(NodeId, &'d str)> {
        if !self.managed.contains(LOINC) {
            return Vec::new();
        }
        (0..doc.node_count())
            .filter_map(|i| doc.node(i))
            .filter(|&n| doc.kind(n) == NodeKind::Element)
            .filter(|&n| doc.attribute(n, "codeSystem") == Some(LOINC))
            .filter_map(|n| Some((n, doc.attribute(n, "codeSystemVersion")?)))
            .filter(|&(_, v)| {
                !v.is_empty() && !self.pairs.contains(&(LOINC.to_owned(), Some(v.to_owned())))
            })
            .collect()
    }

    fn list(&self, system: &str) -> Option<Result<&CodeList, TerminologyError>> {
        let (path, cell) = self.lists.get(system)?;
        Some(
            cell.get_or_init(|| read_list(path))
                .as_ref()
                .map_err(Clone::clone),
        )
    }

    /// Checks a document.
    pub fn check(&self, doc: &Document) -> Result<TerminologyReport, TerminologyError> {
        let overrides = value_overrides(doc);
        let mut codes: Vec<(Option<String>, Option<String>, Option<String>)> = Vec::new();
        for i in 0..doc.node_count() {
            let Some(n) = doc.node(i) else { continue };
            if doc.kind(n) != NodeKind::Element {
                continue;
            }
            let cs = match overrides.get(&n) {
                Some(s) => Some((*s).to_owned()),
                None => doc
                    .attributes(n)
                    .find(|&a| doc.attr_name(a).local.eq_ignore_ascii_case("codesystem"))
                    .map(|a| doc.attr_value(a).to_owned()),
            };
            let Some(cs) = cs else { continue };
            let non_empty = |s: Option<&str>| s.filter(|x| !x.is_empty()).map(str::to_owned);
            codes.push((
                non_empty(doc.attribute(n, "code")),
                non_empty(Some(&cs)),
                non_empty(doc.attribute(n, "codeSystemVersion")),
            ));
        }
        let mut report = TerminologyReport::default();
        codes.retain(|c| !c.1.as_ref().is_some_and(|s| self.allow.contains(s)));
        let mut blocked: Vec<String> = codes
            .iter()
            .filter_map(|c| c.1.clone())
            .filter(|s| s.split('.').any(|arc| arc == "999" || arc == "9999"))
            .collect();
        blocked.sort();
        blocked.dedup();
        if !blocked.is_empty() {
            report.refusal = Some(Refusal::Blocked { systems: blocked });
            return Ok(report);
        }
        let mut unknown: Vec<String> = codes
            .iter()
            .filter(|c| !c.1.as_ref().is_some_and(|s| self.managed.contains(s)))
            .map(|c| c.1.clone().unwrap_or_else(|| "None".into()))
            .collect();
        unknown.sort();
        unknown.dedup();
        report.unknown_systems = unknown;
        let managed: Vec<(Option<String>, String, Option<String>)> = codes
            .into_iter()
            .filter_map(|(code, sys, ver)| {
                let sys = sys.filter(|s| self.managed.contains(s))?;
                let ver = ver.or_else(|| self.current.get(&sys).cloned().flatten());
                Some((code, sys, ver))
            })
            .collect();
        let mut bad_pairs: Vec<(String, Option<String>)> = managed
            .iter()
            .map(|(_, s, v)| (s.clone(), v.clone()))
            .filter(|p| !self.pairs.contains(p))
            .collect();
        bad_pairs.sort();
        bad_pairs.dedup();
        if !bad_pairs.is_empty() {
            report.refusal = Some(Refusal::UnmanagedVersion { pairs: bad_pairs });
            return Ok(report);
        }
        let mut missing: Vec<(String, Option<String>, Vec<String>)> = Vec::new();
        for (code, sys, ver) in &managed {
            let list = match self.list(sys) {
                None => {
                    if !report.unchecked_systems.contains(sys) {
                        report.unchecked_systems.push(sys.clone());
                    }
                    continue;
                }
                Some(l) => l?,
            };
            report.checked_codes += 1;
            let known = match (ver, code) {
                (_, None) => false,
                (Some(v), Some(c)) => list.by_version.get(v).is_some_and(|s| s.contains(c)),
                (None, Some(c)) => list.any.contains(c),
            };
            if !known {
                let c = code.clone().unwrap_or_else(|| "None".into());
                match missing.iter_mut().find(|(s, v, _)| s == sys && v == ver) {
                    Some((_, _, list)) => {
                        if !list.contains(&c) {
                            list.push(c);
                        }
                    }
                    None => missing.push((sys.clone(), ver.clone(), vec![c])),
                }
            }
        }
        if !missing.is_empty() {
            report.refusal = Some(Refusal::UnknownCodes { codes: missing });
        }
        Ok(report)
    }
}

/// `value` elements inside an `observation` whose direct `code` child has one of the codes of
/// [`VALUE_SYSTEMS`]: their code system is the mapped one.
fn value_overrides(doc: &Document) -> HashMap<NodeId, &'static str> {
    let mut out = HashMap::new();
    for i in 0..doc.node_count() {
        let Some(n) = doc.node(i) else { continue };
        if doc.kind(n) != NodeKind::Element
            || !doc.local_name(n).eq_ignore_ascii_case("observation")
        {
            continue;
        }
        for c in doc.child_elements(n) {
            if !doc.local_name(c).eq_ignore_ascii_case("code") {
                continue;
            }
            let Some(code) = doc.attribute(c, "code") else {
                continue;
            };
            for (k, system) in VALUE_SYSTEMS {
                if code == k {
                    for j in n.0..=doc.last_descendant(n).0 {
                        if let Some(v) = doc.node(j as usize) {
                            if doc.kind(v) == NodeKind::Element
                                && doc.local_name(v).eq_ignore_ascii_case("value")
                            {
                                out.insert(v, system);
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

fn read_list(path: &Path) -> Result<CodeList, TerminologyError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TerminologyError::Io(path.to_path_buf(), e.to_string()))?;
    let mut records = crate::csv::Records::new(&text);
    let mut row = Vec::new();
    records.next_into(&mut row);
    let col = |n: &str| row.iter().position(|h| h.trim() == n);
    let (Some(vc), Some(cc)) = (col("version"), col("code")) else {
        return Err(TerminologyError::Format(
            path.to_path_buf(),
            "expected columns version,code".into(),
        ));
    };
    let mut list = CodeList::default();
    while records.next_into(&mut row) {
        let (Some(v), Some(c)) = (row.get(vc), row.get(cc)) else {
            continue;
        };
        let codes = match list.by_version.get_mut(v.as_ref()) {
            Some(codes) => codes,
            None => list.by_version.entry(v.to_string()).or_default(),
        };
        codes.insert(c.to_string());
        list.any.insert(c.to_string());
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A code list in a scratch file of its own (removed after reading).
    fn read_text(name: &str, text: &str) -> Result<CodeList, TerminologyError> {
        let path = std::env::temp_dir().join(format!("fse-{}-{name}.csv", std::process::id()));
        std::fs::write(&path, text).expect("scratch file");
        let list = read_list(&path);
        let _ = std::fs::remove_file(&path);
        list
    }

    #[test]
    fn a_code_list_without_its_columns_is_refused_by_name() {
        for (name, text) in [
            ("empty", ""),
            ("no-code", "version,description\n1,x\n"),
            ("quoted-header", "\"version,code\"\n1,X\n"),
        ] {
            match read_text(name, text) {
                Err(TerminologyError::Format(path, msg)) => {
                    assert!(path.ends_with(format!("fse-{}-{name}.csv", std::process::id())));
                    assert_eq!(msg, "expected columns version,code", "{name}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn short_rows_of_a_code_list_are_skipped() {
        let list = read_text(
            "short",
            "description,version,code\r\nx,1,A\r\nonly\r\n,,\r\ny,\"2\",\"B,C\"\r\n",
        )
        .expect("a list");
        assert_eq!(list.any.len(), 3, "{list:?}");
        assert!(list.any.contains("A") && list.any.contains("B,C") && list.any.contains(""));
        assert!(list.by_version["1"].contains("A"));
        assert!(list.by_version["2"].contains("B,C"));
        assert!(list.by_version[""].contains(""));
    }

    fn terminology() -> Terminology {
        let mut t = Terminology {
            allow: ["2.16.840.1.113883.6.1".to_owned()].into(),
            managed: ["2.16.840.1.113883.6.1", "2.16.840.1.113883.5.25", "1.2.3"]
                .map(str::to_owned)
                .into(),
            pairs: [
                (
                    "2.16.840.1.113883.5.25".to_owned(),
                    Some("2.2.0".to_owned()),
                ),
                ("1.2.3".to_owned(), None),
            ]
            .into(),
            current: [(
                "2.16.840.1.113883.5.25".to_owned(),
                Some("2.2.0".to_owned()),
            )]
            .into(),
            lists: HashMap::new(),
        };
        let mut list = CodeList::default();
        list.by_version
            .entry("2.2.0".into())
            .or_default()
            .insert("N".into());
        list.any.insert("N".into());
        let cell = OnceLock::new();
        let _ = cell.set(Ok(list));
        t.lists.insert(
            "2.16.840.1.113883.5.25".into(),
            (PathBuf::from("x.csv"), cell),
        );
        t
    }

    fn check(xml: &str) -> TerminologyReport {
        let doc = crate::xml::parse(xml.as_bytes()).unwrap();
        terminology().check(&doc).unwrap()
    }

    #[test]
    fn the_gateway_rules() {
        let ok = check(
            r#"<r><c code="11502-2" codeSystem="2.16.840.1.113883.6.1"/><c code="N" codeSystem="2.16.840.1.113883.5.25"/><c code="z" codeSystem="9.9"/><c code="q" codeSystem="1.2.3"/></r>"#,
        );
        assert_eq!(ok.refusal, None);
        assert_eq!(ok.unknown_systems, ["9.9"]);
        assert_eq!(ok.unchecked_systems, ["1.2.3"]);
        assert_eq!(ok.checked_codes, 1);
        let blocked = check(r#"<r><c code="x" codeSystem="2.16.840.1.113883.9.999"/></r>"#);
        assert_eq!(
            blocked.refusal,
            Some(Refusal::Blocked {
                systems: vec!["2.16.840.1.113883.9.999".into()]
            })
        );
        let version = check(
            r#"<r><c code="N" codeSystem="2.16.840.1.113883.5.25" codeSystemVersion="9"/></r>"#,
        );
        assert!(matches!(
            version.refusal,
            Some(Refusal::UnmanagedVersion { .. })
        ));
        let unknown = check(r#"<r><c code="Q" codeSystem="2.16.840.1.113883.5.25"/></r>"#);
        let r = unknown.refusal.unwrap();
        assert_eq!(r.message(), "Almeno uno dei seguenti vocaboli non è censito: [CodeSystem: 2.16.840.1.113883.5.25 v2.2.0, Codes: Q]");
    }
}
