//! Building CDA R2 documents from the JSON report model (`fse-cda-build/1`).
//!
//! [`build`] reads the UTF-8 JSON of a [`model::Report`], checks it (unknown fields, dates,
//! fiscal code, required sections of the document type...) and writes the CDA document
//! following the HL7 Italia implementation guide of its type: realmCode `IT`, typeId
//! `POCD_MT000040UV02`, the national templateId first, LOINC document code, and the header
//! and body described by the input. Output is deterministic: every id and time comes from the
//! input, so the same input always gives the same bytes.
//!
//! Modules: [`model`] (the input types, which document it), [`types`] (validated scalars:
//! timestamps, fiscal code), [`doctype`] (per-type data), [`template`] (a starter input per
//! type), [`narrative`] (section text),
//! [`statement`] (typed clinical statements), [`node`] (the generic statement tree),
//! [`document`] (checks and the CDA writer).
//!
//! Errors name the JSON path of the bad field, e.g.
//! `patient.fiscal_code: invalid fiscal code "XYZ": must be 16 characters, found 3`.

pub mod doctype;
pub mod document;
pub mod model;
pub mod narrative;
pub mod node;
pub mod schema;
pub mod statement;
pub mod template;
pub mod types;
mod writer;

pub use doctype::{DocType, Profile};
pub use model::Report;
pub use types::MODEL_VERSION;

/// Why an input could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The input is not UTF-8.
    #[error("input is not UTF-8 (invalid byte sequence at byte {offset})")]
    NotUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The input is not JSON at all.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A field is missing, unknown or invalid.
    #[error("{path}: {message}")]
    Field {
        /// JSON path of the field (`patient.fiscal_code`, `sections[2].entries[0]...`).
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// A built document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// Its type.
    pub doc_type: DocType,
    /// The CDA XML (UTF-8, with XML declaration, final newline).
    pub xml: Vec<u8>,
}

/// Reads and checks a report model without writing it.
pub fn parse(input: &[u8]) -> Result<Report, BuildError> {
    let text = std::str::from_utf8(input).map_err(|e| BuildError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    // A byte order mark (Windows editors write one) is not JSON: read past it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Fast path: a valid model needs no path tracking (which costs about as much as the
    // parse itself). Only a model that fails is read again, with the JSON path of the
    // failure recorded for the message.
    if let Ok(report) = serde_json::from_str::<Report>(text) {
        document::check(&report)?;
        return Ok(report);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let report: Report = match serde_path_to_error::deserialize(&mut de) {
        Ok(r) => r,
        Err(e) => return Err(field_error(e)),
    };
    if let Err(e) = de.end() {
        return Err(BuildError::Syntax {
            line: e.line(),
            column: e.column(),
            message: "trailing characters after the JSON value".into(),
        });
    }
    document::check(&report)?;
    Ok(report)
}

/// Builds the CDA document described by a JSON report model.
pub fn build(input: &[u8]) -> Result<Built, BuildError> {
    let report = parse(input)?;
    Ok(Built {
        doc_type: report.doc_type,
        xml: document::write(&report),
    })
}

/// Builds the CDA document of an already parsed report (which must have passed [`parse`]).
pub fn write(report: &Report) -> Vec<u8> {
    document::write(report)
}

fn field_error(e: serde_path_to_error::Error<serde_json::Error>) -> BuildError {
    let mut path = e.path().to_string();
    let inner = e.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        return BuildError::Syntax {
            line: inner.line(),
            column: inner.column(),
            message: strip_position(&inner.to_string()),
        };
    }
    let mut message = strip_position(&inner.to_string());
    // Errors from inside a statement tree carry their JsonML index path: `at [3][1]: ...`.
    if let Some(rest) = message.strip_prefix("at [") {
        if let Some((index, msg)) = rest.split_once(": ") {
            path = format!("{path}[{index}");
            message = msg.to_string();
        }
    }
    if path == "." {
        path = "(top level)".into();
    }
    BuildError::Field { path, message }
}

/// serde_json appends " at line L column C"; the JSON path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(pos) => message[..pos].to_string(),
        None => message.to_string(),
    }
}
