//! # fse-pades
//!
//! The PDF side of FSE 2.0 documents: embed the CDA as the `cda.xml` attachment, sign with a
//! PAdES baseline B-B signature by incremental update, and verify signed PDFs the way the
//! gateway and independent verifiers do.
//!
//! - [`inject_cda`] / [`extract_cda`]: the attachment, where the gateway looks for it;
//! - [`SignerIdentity`]: key + certificates from PEM or PKCS#12;
//! - [`sign`]: PAdES B-B by incremental update (original bytes untouched); the signer
//!   certificate must be valid now;
//! - [`prepare`]: the one decision on an input that is already signed (kept as it is when it
//!   verifies and carries the same `cda.xml`, refused otherwise: never signed twice);
//! - [`verify()`]: CMS, byte range, `/M`, PAdES B-B rules, `cda.xml`, changes after signing;
//! - [`render`]: a PDF/A-3b of a CDA's header and narrative (embedded DejaVu Sans, sRGB
//!   output intent, XMP), for sources without a PDF;
//! - [`certs`]: throw-away test identities (CA, signer, client, server).
//!
//! ```
//! use fse_pades::certs::{KeyKind, TestPki};
//! use fse_pades::{SignOptions, SignerIdentity};
//!
//! let pki = TestPki::generate(KeyKind::EcdsaP256)?;
//! let id = SignerIdentity::from_pem(pki.signer.key_pem.as_bytes(), pki.signer.cert_pem.as_bytes())?;
//! let cda = br#"<ClinicalDocument xmlns="urn:hl7-org:v3"><title>Referto</title></ClinicalDocument>"#;
//! let pdf = fse_pades::render::render_cda(cda)?;
//! let signed = fse_pades::inject_and_sign(pdf, cda, &id, &SignOptions::default())?;
//! let report = fse_pades::verify(&signed);
//! assert!(report.valid, "{:?}", report.problems);
//! assert_eq!(fse_pades::extract_cda(&signed)?, cda);
//! // report.sha256 is the gateway's attachment_hash
//! # Ok::<(), fse_pades::Error>(())
//! ```

pub mod attachment;
pub mod ber;
pub mod certs;
pub mod cms_asn1;
pub mod document;
pub mod error;
mod flate;
pub mod identity;
pub mod incremental;
pub mod minimal;
pub mod prepare;
pub mod render;
pub mod signature;
pub mod verify;

pub use attachment::{extract_cda, find_cda, inject_cda};
pub use document::SourcePdf;
pub use error::{Error, Result};
pub use identity::{SignerIdentity, SigningKey};
/// The PDF object library used throughout (re-exported for callers and tests).
pub use lopdf;
pub use prepare::{prepare, Prepared};
pub use signature::{sign, sign_lopdf, sign_minimal, sign_pdf, SignOptions};
pub use verify::{verify, PadesLevel, SignatureReport, VerifyReport};

/// Injects `cda_xml` into the PDF `pdf_bytes` (replacing an existing `cda.xml`); a damaged
/// unsigned input is rewritten once first. Returns the new file. A signed input is returned
/// unchanged when it verifies and already carries this `cda.xml`, and refused otherwise (see
/// [`prepare`]).
pub fn inject(pdf_bytes: Vec<u8>, cda_xml: &[u8]) -> Result<Vec<u8>> {
    match prepare(pdf_bytes, Some(cda_xml))? {
        Prepared::ToSign(b) | Prepared::AlreadySigned { pdf: b, .. } => Ok(b),
    }
}

/// Injects the CDA and signs in one go (two incremental updates); a signed input follows
/// [`prepare`] (kept as it is, or refused).
pub fn inject_and_sign(
    pdf_bytes: Vec<u8>,
    cda_xml: &[u8],
    id: &SignerIdentity,
    opts: &SignOptions,
) -> Result<Vec<u8>> {
    prepare(pdf_bytes, Some(cda_xml))?.sign(id, opts)
}
