//! The document checks the sandbox delegates: CDA validation and PDF inspection (CDA
//! extraction, PAdES verification), each behind a trait.
//!
//! The sandbox's default [`PdfInspector`] is [`PadesInspector`]: `cda.xml` is extracted and the
//! signature verified by `fse-pades`, judged as leniently as the gateway judges it (the last
//! signature must be intact, embed its signer and carry `/M`; changes appended later are not
//! refused). CDA validation is [`RulesValidator`] (the `fse-cda` validator over a rule set laid
//! out as the Ministry's catalog) when the sandbox is given rules, or over the rules built into
//! `fse-cda` ([`RulesValidator::builtin`], what `fse sandbox serve` uses by default);
//! [`AcceptAllCda`] (the library default of [`super::ServeOptions`], and `serve
//! --accept-any-cda`) judges every CDA valid.

use crate::api::InjectionMode;
use lopdf::{Document, Object};
use sha2::{Digest, Sha256};

/// Outcome of a CDA validation, in the gateway's order of checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CdaVerdict {
    /// Valid, possibly with non-blocking warnings.
    Valid {
        /// Schematron warnings and the like.
        warnings: Vec<String>,
    },
    /// XSD error (`/msg/syntax`, 400).
    Syntax(String),
    /// Schematron error (`/msg/semantic`, 422).
    Semantic(String),
    /// Terminology error (`/msg/vocabulary`, 400).
    Vocabulary(String),
}

/// Validates a CDA the way the gateway does.
pub trait CdaValidator: Send + Sync {
    /// Judges the CDA bytes.
    fn validate(&self, cda: &[u8]) -> CdaVerdict;
}

/// Placeholder validator: every CDA is valid. Replace with the `fse-cda` validator.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAllCda;

impl CdaValidator for AcceptAllCda {
    fn validate(&self, _cda: &[u8]) -> CdaVerdict {
        CdaVerdict::Valid {
            warnings: Vec::new(),
        }
    }
}

/// The `fse-cda` validator: XSD, the schematron of the first templateId root, terminology.
#[derive(Debug)]
pub struct RulesValidator {
    rules: Rules,
}

#[derive(Debug)]
enum Rules {
    Dir(fse_cda::validate::RuleSet),
    Builtin(fse_cda::validate::BuiltinRules),
}

impl RulesValidator {
    /// Loads the rule set at `dir` (`xsd/`, `schematron/`, `terminology/`, the index).
    pub fn load(dir: &std::path::Path) -> Result<RulesValidator, fse_cda::validate::RulesError> {
        Ok(RulesValidator {
            rules: Rules::Dir(fse_cda::validate::RuleSet::load(dir)?),
        })
    }

    /// The rules built into `fse-cda` ([`fse_cda::validate::builtin_rules`]): our own
    /// schematron per document type and a few code lists, no XSD. A pre-flight check, weaker
    /// than the official rules of [`RulesValidator::load`].
    pub fn builtin() -> Result<RulesValidator, fse_cda::validate::RulesError> {
        Ok(RulesValidator {
            rules: Rules::Builtin(fse_cda::validate::builtin_rules()?),
        })
    }

    fn rule_set(&self) -> &fse_cda::validate::RuleSet {
        match &self.rules {
            Rules::Dir(r) => r,
            Rules::Builtin(r) => r,
        }
    }
}

impl CdaValidator for RulesValidator {
    fn validate(&self, cda: &[u8]) -> CdaVerdict {
        use fse_cda::validate::Outcome;
        let verdict = match self.rule_set().validate(cda) {
            Ok(v) => v,
            // A rule set that cannot judge this document (e.g. no schematron for its
            // templateId) leaves the gateway unable to validate it: a syntax refusal.
            Err(e) => return CdaVerdict::Syntax(e.to_string()),
        };
        let texts = |findings: &[fse_cda::schematron::Finding]| {
            findings.iter().map(|f| f.text.clone()).collect::<Vec<_>>()
        };
        match verdict.outcome {
            Outcome::Ok => CdaVerdict::Valid {
                warnings: Vec::new(),
            },
            Outcome::SemanticWarning => CdaVerdict::Valid {
                warnings: texts(&verdict.reports),
            },
            Outcome::SemanticError => {
                CdaVerdict::Semantic(texts(&verdict.failed_asserts).join(" ; "))
            }
            Outcome::SyntaxError => CdaVerdict::Syntax(verdict.xsd_errors.join(" ; ")),
            Outcome::VocabularyError => CdaVerdict::Vocabulary(
                verdict
                    .vocabulary_error
                    .unwrap_or_else(|| "codice non presente nel dizionario".into()),
            ),
        }
    }
}

/// Outcome of the PAdES check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureVerdict {
    /// A valid signature with a signing time `/M`.
    Valid,
    /// No signature at all.
    Unsigned,
    /// A signature that does not satisfy the gateway.
    Invalid(String),
}

/// Reads the PDF side of a request.
pub trait PdfInspector: Send + Sync {
    /// The embedded CDA (`cda.xml` in ATTACHMENT mode, XFA `datasets` in RESOURCE mode).
    fn extract_cda(&self, pdf: &[u8], mode: InjectionMode) -> Result<Vec<u8>, String>;
    /// The PAdES verdict.
    fn verify_signature(&self, pdf: &[u8]) -> SignatureVerdict;
}

/// Structural inspector: extracts `cda.xml` with lopdf and accepts any signature dictionary
/// that has `/ByteRange`, `/Contents` and `/M` without checking the CMS. [`PadesInspector`]
/// uses it for the XFA (`RESOURCE`) mode only.
#[derive(Debug, Clone, Copy, Default)]
pub struct BasicPdfInspector;

/// The gateway's PDF checks on `fse-pades`: `cda.xml` found where the gateway looks, and the
/// last signature verified over its ByteRange (digest, CMS signature, embedded signer, `/M`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PadesInspector;

impl PdfInspector for PadesInspector {
    fn extract_cda(&self, pdf: &[u8], mode: InjectionMode) -> Result<Vec<u8>, String> {
        match mode {
            InjectionMode::Attachment => fse_pades::extract_cda(pdf).map_err(|e| e.to_string()),
            InjectionMode::Resource => BasicPdfInspector.extract_cda(pdf, mode),
        }
    }

    fn verify_signature(&self, pdf: &[u8]) -> SignatureVerdict {
        let report = fse_pades::verify(pdf);
        // The last signature field decides, as in the gateway.
        let Some(last) = report.signatures.last() else {
            return SignatureVerdict::Unsigned;
        };
        if last.doc_timestamp {
            return SignatureVerdict::Invalid("the last signature is a document timestamp".into());
        }
        if last.signing_time.is_none() {
            return SignatureVerdict::Invalid("signature without signing time /M".into());
        }
        if last.signer.is_none() {
            return SignatureVerdict::Invalid("signer certificate not embedded".into());
        }
        if !last.intact {
            return SignatureVerdict::Invalid(format!(
                "signature does not verify: {}",
                last.problems.join("; ")
            ));
        }
        SignatureVerdict::Valid
    }
}

fn deref<'a>(doc: &'a Document, obj: &'a Object) -> Option<&'a Object> {
    doc.dereference(obj).ok().map(|(_, o)| o)
}

fn name_tree_values<'a>(
    doc: &'a Document,
    node: &'a Object,
    depth: u8,
    out: &mut Vec<(Vec<u8>, &'a Object)>,
) {
    if depth > 16 {
        return;
    }
    let Some(dict) = deref(doc, node).and_then(|o| o.as_dict().ok()) else {
        return;
    };
    if let Ok(names) = dict.get(b"Names").and_then(|n| n.as_array()) {
        for pair in names.chunks(2) {
            if let [key, value] = pair {
                let key = deref(doc, key)
                    .and_then(|k| k.as_str().ok())
                    .unwrap_or_default()
                    .to_vec();
                out.push((key, value));
            }
        }
    }
    if let Ok(kids) = dict.get(b"Kids").and_then(|k| k.as_array()) {
        for kid in kids {
            name_tree_values(doc, kid, depth + 1, out);
        }
    }
}

fn stream_bytes(doc: &Document, obj: &Object) -> Option<Vec<u8>> {
    let stream = deref(doc, obj)?.as_stream().ok()?;
    stream
        .decompressed_content()
        .ok()
        .or_else(|| Some(stream.content.clone()))
}

impl PdfInspector for BasicPdfInspector {
    fn extract_cda(&self, pdf: &[u8], mode: InjectionMode) -> Result<Vec<u8>, String> {
        let doc = Document::load_mem(pdf).map_err(|e| format!("PDF not readable: {e}"))?;
        let catalog = doc
            .catalog()
            .map_err(|e| format!("PDF without catalog: {e}"))?;
        match mode {
            InjectionMode::Attachment => {
                let tree = catalog
                    .get(b"Names")
                    .ok()
                    .and_then(|n| deref(&doc, n))
                    .and_then(|n| n.as_dict().ok())
                    .and_then(|n| n.get(b"EmbeddedFiles").ok())
                    .ok_or("no embedded files")?;
                let mut entries = Vec::new();
                name_tree_values(&doc, tree, 0, &mut entries);
                for (key, spec) in entries {
                    let Some(spec) = deref(&doc, spec).and_then(|s| s.as_dict().ok()) else {
                        continue;
                    };
                    let file_name = [b"UF".as_slice(), b"F"]
                        .iter()
                        .find_map(|k| spec.get(k).ok().and_then(|v| v.as_str().ok()))
                        .unwrap_or(&key);
                    if file_name != b"cda.xml" && key != b"cda.xml" {
                        continue;
                    }
                    let ef = spec
                        .get(b"EF")
                        .ok()
                        .and_then(|e| deref(&doc, e))
                        .and_then(|e| e.as_dict().ok());
                    if let Some(bytes) = ef
                        .and_then(|e| e.get(b"F").ok())
                        .and_then(|f| stream_bytes(&doc, f))
                    {
                        return Ok(bytes);
                    }
                }
                Err("no embedded file named cda.xml".into())
            }
            InjectionMode::Resource => {
                let xfa = catalog
                    .get(b"AcroForm")
                    .ok()
                    .and_then(|a| deref(&doc, a))
                    .and_then(|a| a.as_dict().ok())
                    .and_then(|a| a.get(b"XFA").ok())
                    .and_then(|x| deref(&doc, x))
                    .ok_or("no XFA resources")?;
                let parts = xfa
                    .as_array()
                    .map_err(|_| "XFA is not an array of packets")?;
                for pair in parts.chunks(2) {
                    if let [name, stream] = pair {
                        if deref(&doc, name).and_then(|n| n.as_str().ok())
                            == Some(b"datasets".as_slice())
                        {
                            return stream_bytes(&doc, stream)
                                .ok_or_else(|| "unreadable datasets".into());
                        }
                    }
                }
                Err("no XFA datasets packet".into())
            }
        }
    }

    fn verify_signature(&self, pdf: &[u8]) -> SignatureVerdict {
        let Ok(doc) = Document::load_mem(pdf) else {
            return SignatureVerdict::Invalid("PDF not readable".into());
        };
        let mut seen = false;
        for obj in doc.objects.values() {
            let Ok(dict) = obj.as_dict() else { continue };
            if dict.get(b"ByteRange").is_err() {
                continue;
            }
            seen = true;
            if dict.get(b"Contents").is_ok() && dict.get(b"M").is_ok() {
                return SignatureVerdict::Valid;
            }
        }
        if seen {
            SignatureVerdict::Invalid("signature without signing time /M".into())
        } else {
            SignatureVerdict::Unsigned
        }
    }
}

/// The CDA with its `legalAuthenticator` element blanked out, as the gateway hashes it.
pub fn blank_legal_authenticator(cda: &[u8]) -> Vec<u8> {
    let Some(start) = find(cda, b"<legalAuthenticator") else {
        return cda.to_vec();
    };
    let close = b"</legalAuthenticator>";
    match find(&cda[start..], close) {
        Some(rel) => [&cda[..start], &cda[start + rel + close.len()..]].concat(),
        None => cda.to_vec(),
    }
}

/// SHA-256 hex of the CDA with `legalAuthenticator` blanked: the key under which a
/// `VALIDATION` is remembered.
pub fn cda_hash(cda: &[u8]) -> String {
    hex::encode(Sha256::digest(blank_legal_authenticator(cda)))
}

/// The LOINC code of the document (`ClinicalDocument/code/@code`), by a plain scan.
pub fn cda_type_code(cda: &[u8]) -> Option<String> {
    let root = find(cda, b"ClinicalDocument")?;
    let rest = &cda[root..];
    let mut pos = 0;
    while let Some(rel) = find(&rest[pos..], b"<code") {
        let at = pos + rel + 5;
        if matches!(rest.get(at), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            let end = find(&rest[at..], b">")? + at;
            let tag = &rest[at..end];
            let attr = find(tag, b"code=")? + 5;
            let quote = *tag.get(attr)?;
            let value = &tag[attr + 1..];
            let close = value.iter().position(|&b| b == quote)?;
            return String::from_utf8(value[..close].to_vec()).ok();
        }
        pos = at;
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_legal_authenticator() {
        let a = b"<ClinicalDocument><code code=\"11502-2\"/><legalAuthenticator><time value=\"1\"/></legalAuthenticator><x/></ClinicalDocument>";
        let b = b"<ClinicalDocument><code code=\"11502-2\"/><legalAuthenticator><time value=\"2\"/></legalAuthenticator><x/></ClinicalDocument>";
        assert_eq!(cda_hash(a), cda_hash(b));
        assert_ne!(cda_hash(a), cda_hash(b"<ClinicalDocument/>"));
        assert_eq!(cda_type_code(a).as_deref(), Some("11502-2"));
    }

    #[test]
    fn type_code_skips_longer_tag_names() {
        let cda = b"<ClinicalDocument><codeX code='1'/><code codeSystem='2.16.840.1.113883.6.1' code='34105-7'/>";
        assert_eq!(cda_type_code(cda).as_deref(), Some("34105-7"));
    }
}
