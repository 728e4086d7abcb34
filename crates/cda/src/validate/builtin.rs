//! The rule material shipped inside the binary (the workspace's `schemas/` folder), so that
//! documents can be checked without the Ministry's catalog at hand.
//!
//! The built-in rules are our own: one schematron per document type we build
//! (`schemas/schematron/fse-<TYPE>.sch`, sharing the header checks of `fse-common.sch`), an
//! index `schemas/doctypes.csv` mapping templateId roots to them, and short code lists of a
//! few stable HL7 code systems (`schemas/terminology/<OID>.csv`, declared in
//! `schemas/gateway-db/dictionary.json`). There is no XSD (the CDA schema is HL7's): the XSD
//! stage is reported in [`super::Verdict::not_checked`].
//!
//! They are a pre-flight check, not the gateway's verdict: the official rules (a folder laid
//! out as the Ministry's catalog, loaded with [`RuleSet::load`]) check much more.
//!
//! [`RuleSet`] reads a folder, so [`builtin_rules`] writes the embedded files into a fresh
//! temporary folder, loads everything from it (schematrons compiled, code lists read) and
//! removes it before returning: the rule set then lives in memory only.

use super::{RuleSet, RulesError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The embedded files: (path relative to `schemas/`, content).
pub const FILES: &[(&str, &str)] = &[
    (
        "doctypes.csv",
        include_str!("../../../../schemas/doctypes.csv"),
    ),
    (
        "gateway-db/dictionary.json",
        include_str!("../../../../schemas/gateway-db/dictionary.json"),
    ),
    (
        "terminology/2.16.840.1.113883.5.1.csv",
        include_str!("../../../../schemas/terminology/2.16.840.1.113883.5.1.csv"),
    ),
    (
        "terminology/2.16.840.1.113883.5.25.csv",
        include_str!("../../../../schemas/terminology/2.16.840.1.113883.5.25.csv"),
    ),
    (
        "schematron/fse-common.sch",
        include_str!("../../../../schemas/schematron/fse-common.sch"),
    ),
    (
        "schematron/fse-LAB.sch",
        include_str!("../../../../schemas/schematron/fse-LAB.sch"),
    ),
    (
        "schematron/fse-LDO.sch",
        include_str!("../../../../schemas/schematron/fse-LDO.sch"),
    ),
    (
        "schematron/fse-RAD.sch",
        include_str!("../../../../schemas/schematron/fse-RAD.sch"),
    ),
    (
        "schematron/fse-RSA.sch",
        include_str!("../../../../schemas/schematron/fse-RSA.sch"),
    ),
    (
        "schematron/fse-VPS.sch",
        include_str!("../../../../schemas/schematron/fse-VPS.sch"),
    ),
    (
        "schematron/fse-PSS.sch",
        include_str!("../../../../schemas/schematron/fse-PSS.sch"),
    ),
    (
        "schematron/fse-RAP.sch",
        include_str!("../../../../schemas/schematron/fse-RAP.sch"),
    ),
    (
        "schematron/fse-SING_VACC.sch",
        include_str!("../../../../schemas/schematron/fse-SING_VACC.sch"),
    ),
    (
        "schematron/fse-CERT_VACC.sch",
        include_str!("../../../../schemas/schematron/fse-CERT_VACC.sch"),
    ),
];

/// What [`builtin_rules`] returns: a plain [`RuleSet`], held in memory.
pub type BuiltinRules = RuleSet;

/// Loads the built-in rules, ready to use: every schematron compiled and every code list read,
/// so the temporary folder they were written to is already removed when this returns.
pub fn builtin_rules() -> Result<BuiltinRules, RulesError> {
    let dir = fresh_dir()?;
    // The guard removes the folder on every exit path.
    let _guard = Cleanup(Some(dir.clone()));
    for (rel, text) in FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
    }
    let rules = RuleSet::load(&dir)?;
    rules.compile_all()?;
    // Code lists are read the first time a document uses them: use each one now.
    if let Some(t) = &rules.terminology {
        let mut xml = String::from("<warmup>");
        for (rel, _) in FILES {
            if let Some(oid) = rel
                .strip_prefix("terminology/")
                .and_then(|f| f.strip_suffix(".csv"))
            {
                xml.push_str(&format!("<c code=\"-\" codeSystem=\"{oid}\"/>"));
            }
        }
        xml.push_str("</warmup>");
        let doc = crate::xml::parse(xml.as_bytes())
            .map_err(|e| RulesError::Index(dir.clone(), e.to_string()))?;
        t.check(&doc)?;
    }
    Ok(rules)
}

struct Cleanup(Option<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn io(p: &Path, e: std::io::Error) -> RulesError {
    RulesError::Io(p.to_path_buf(), e.to_string())
}

/// A new folder under the system's temporary directory, created by us (`create_dir` fails if
/// the name exists, so a folder planted by someone else is never used).
fn fresh_dir() -> Result<PathBuf, RulesError> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut last = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!(
            "fse-builtin-rules-{}-{nanos:09}-{n}",
            std::process::id()
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(io(&dir, e)),
        }
    }
    Err(io(
        &base,
        last.unwrap_or_else(|| std::io::Error::other("no free folder name")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_compiles_and_cleans_up() {
        let rules = builtin_rules().unwrap();
        let roots: Vec<&str> = rules.schematrons().iter().map(|(r, _)| *r).collect();
        assert_eq!(roots.len(), 9, "{roots:?}");
        assert!(roots.contains(&"2.16.840.1.113883.2.9.10.1.5"));
        // Everything is in memory: the folder is gone, and documents are still judged.
        assert!(!rules.dir().exists());
        let doc = br#"<ClinicalDocument xmlns="urn:hl7-org:v3"><templateId root="2.16.840.1.113883.2.9.10.1.5"/></ClinicalDocument>"#;
        let v = rules.validate(doc).unwrap();
        assert_eq!(v.outcome, super::super::Outcome::SemanticError);
        assert_eq!(v.not_checked, vec!["xsd"]);
        assert!(v
            .failed_asserts
            .iter()
            .any(|f| f.id.as_deref() == Some("FSE-HDR-001")));
    }

    #[test]
    fn every_schemas_file_is_embedded() {
        // The list above must follow the folder: a file added to `schemas/` and forgotten
        // here would silently not ship.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        let mut on_disk = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.file_name().is_some_and(|n| n != "README.md") {
                    on_disk.push(
                        p.strip_prefix(&root)
                            .unwrap()
                            .to_string_lossy()
                            .replace('\\', "/"),
                    );
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(p, _)| (*p).to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }
}
