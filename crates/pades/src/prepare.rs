//! A PDF made ready for publication: the one place that decides what happens to an input that
//! is already signed. Such a PDF is never changed and never signed a second time: either every
//! signature verifies and its `cda.xml` is byte-identical to the CDA being published (then it
//! is published as it is), or it is refused with the reason, since replacing its `cda.xml`
//! would leave the published CDA outside its signer's signature.

use crate::attachment::{find_cda, inject_cda};
use crate::document::{find_from, SourcePdf};
use crate::error::{Error, Result};
use crate::identity::SignerIdentity;
use crate::signature::{sign, SignOptions};
use crate::verify::{hex_lower, signature_fields, verify, VerifyReport};

/// What [`prepare`] made of an input PDF.
#[derive(Debug, Clone)]
pub enum Prepared {
    /// The input was unsigned: the PDF with the CDA injected (or the input, when no CDA was
    /// given), still to be signed.
    ToSign(Vec<u8>),
    /// The input was signed already, every signature verifies and its `cda.xml` is the CDA:
    /// published as it is, with no second signature.
    AlreadySigned {
        /// The input, unchanged.
        pdf: Vec<u8>,
        /// Its verification.
        report: VerifyReport,
    },
}

impl Prepared {
    /// The PDF as it stands (unsigned, or already signed).
    pub fn pdf(&self) -> &[u8] {
        match self {
            Prepared::ToSign(b) | Prepared::AlreadySigned { pdf: b, .. } => b,
        }
    }

    /// Whether the input was already signed (and is kept as it is).
    pub fn is_already_signed(&self) -> bool {
        matches!(self, Prepared::AlreadySigned { .. })
    }

    /// The PDF to publish: signed now, or the already signed input unchanged.
    pub fn sign(self, id: &SignerIdentity, opts: &SignOptions) -> Result<Vec<u8>> {
        match self {
            Prepared::ToSign(b) => sign(b, id, opts),
            Prepared::AlreadySigned { pdf, .. } => Ok(pdf),
        }
    }
}

/// Whether the PDF carries a signature (a signature field with a value, or any signature
/// dictionary).
pub fn is_signed(pdf: &SourcePdf) -> bool {
    pdf.has_signature_dictionaries() || !signature_fields(pdf).is_empty()
}

/// Whether the raw bytes could hold a signature: a `/ByteRange` or `/Sig` in the clear, or
/// object streams (which could hide a signature field).
fn may_be_signed(bytes: &[u8]) -> bool {
    [&b"/ByteRange"[..], b"/Sig", b"/ObjStm"]
        .iter()
        .any(|n| find_from(bytes, n, 0).is_some())
}

/// Prepares `pdf_bytes` for publication with `cda_xml` (when given): an unsigned input gets
/// the CDA injected (a damaged one is rewritten once first) and is to be signed; a signed input
/// is kept as it is when its signatures verify and its `cda.xml` is byte-identical to
/// `cda_xml`, and refused otherwise ([`Error::Refused`], with the reason).
pub fn prepare(pdf_bytes: Vec<u8>, cda_xml: Option<&[u8]>) -> Result<Prepared> {
    if cda_xml.is_none() && !may_be_signed(&pdf_bytes) {
        // nothing to inject and no signature possible: [`sign`] reads it (the fast reader)
        return Ok(Prepared::ToSign(pdf_bytes));
    }
    let pdf = SourcePdf::parse(pdf_bytes)?;
    if !is_signed(&pdf) {
        let Some(cda) = cda_xml else {
            return Ok(Prepared::ToSign(pdf.bytes().to_vec()));
        };
        let pdf = match pdf.appendable() {
            Ok(()) => pdf,
            Err(_) => pdf.rewritten()?,
        };
        return Ok(Prepared::ToSign(inject_cda(&pdf, cda)?));
    }
    let report = verify(pdf.bytes());
    let signatures = report
        .signatures
        .iter()
        .map(|s| format!("{} by {}", s.field, s.signer.as_deref().unwrap_or("?")))
        .collect::<Vec<_>>()
        .join(", ");
    let refuse = |reason: String| {
        Error::Refused(format!(
            "the PDF is already signed ({}): {reason}",
            if signatures.is_empty() {
                "a signature dictionary outside the form fields"
            } else {
                &signatures
            }
        ))
    };
    if !report.valid {
        return Err(refuse(format!(
            "it does not verify ({}); it is not signed again: give the unsigned PDF",
            report.problems.join("; ")
        )));
    }
    if let Some(cda) = cda_xml {
        let found = find_cda(&pdf)?;
        if found.xml != cda {
            let sha = |b: &[u8]| {
                hex_lower(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b).as_ref())
            };
            return Err(refuse(format!(
                "its cda.xml ({} bytes, sha256 {}) is not the CDA to publish ({} bytes, sha256 \
                 {}); replacing it would leave the published CDA outside its signature: embed \
                 this CDA in the unsigned PDF before signing, or publish the CDA it carries \
                 (fse pdf extract)",
                found.xml.len(),
                sha(&found.xml),
                cda.len(),
                sha(cda)
            )));
        }
    }
    Ok(Prepared::AlreadySigned {
        pdf: pdf.bytes().to_vec(),
        report,
    })
}
