//! The crate's error type: every way reading, injecting, signing or verifying can fail, each
//! with a message that says what was wrong and, where there is one, what to do.

use std::path::PathBuf;

/// Errors of the PDF side of FSE.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a PDF we can read.
    #[error("not a readable PDF: {0}")]
    Malformed(String),
    /// The PDF is encrypted; FSE documents must not be.
    #[error("the PDF is encrypted: FSE documents must be unencrypted (remove the password first)")]
    Encrypted,
    /// The PDF is beyond the limits we accept (object count, size).
    #[error("PDF too large or too complex: {0}")]
    TooLarge(String),
    /// The PDF cannot be updated the way it is (structure we refuse to touch).
    #[error("refused: {0}")]
    Refused(String),
    /// The embedded `cda.xml` is missing or ambiguous.
    #[error("cda.xml: {0}")]
    Attachment(String),
    /// The signer identity could not be loaded.
    #[error("signer identity: {0}")]
    Identity(String),
    /// A cryptographic operation failed.
    #[error("crypto: {0}")]
    Crypto(String),
    /// The reserved signature space is too small for the CMS.
    #[error("the CMS signature ({needed} bytes) does not fit the reserved {reserved} bytes")]
    ContentsTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes reserved.
        reserved: usize,
    },
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Certs(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The signer certificate is not valid now (expired or not yet valid).
    #[error(
        "the signer certificate {subject} is {state} (valid from {not_before} to {not_after}, \
         now {at}): refusing to sign with it"
    )]
    CertificateTime {
        /// The certificate's subject.
        subject: String,
        /// Expired or not yet valid.
        state: crate::identity::CertTime,
        /// notBefore (RFC 3339).
        not_before: String,
        /// notAfter (RFC 3339).
        not_after: String,
        /// The moment checked (RFC 3339).
        at: String,
    },
    /// The PDF is encrypted with an owner password only: readers open it without a password,
    /// but an incremental update would mix encrypted and plain objects.
    #[error(
        "input PDF is encrypted (owner password): decrypt it first, e.g. \
         `qpdf --decrypt in.pdf out.pdf`"
    )]
    EncryptedOwnerPassword,
    /// The cross-reference data is ambiguous or broken: readers may show different documents.
    #[error(
        "ambiguous PDF structure: {0}; readers may show different documents, so it is not \
         updated (rebuild it, e.g. `qpdf in.pdf out.pdf`, and check that it shows what you expect)"
    )]
    Ambiguous(XrefProblem),
}

/// What makes a PDF's cross-reference data ambiguous (a reader-dependent document, the "shadow
/// attack" family) or broken beyond a faithful repair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XrefProblem {
    /// Two trailers of the `/Prev` chain name different catalogs.
    #[error("the trailers disagree on /Root ({newer} in the newest, {older} in an older one)")]
    RootsDisagree {
        /// `/Root` of the newest trailer, as `N G R`.
        newer: String,
        /// `/Root` of an older trailer.
        older: String,
    },
    /// The trailer's `/Root` names an object that no cross-reference section holds.
    #[error("the trailer's /Root {0} points to no object in the cross-reference data")]
    RootMissing(String),
    /// A `/Prev` (or `/XRefStm`) leads back to a section already read.
    #[error("the /Prev chain loops back to the cross-reference section at byte {0}")]
    PrevCycle(usize),
    /// A cross-reference stream field does not fit (width, offset, generation, object number).
    #[error("cross-reference stream at byte {at}: {what}")]
    StreamOverflow {
        /// Offset of the stream object.
        at: usize,
        /// Which field overflows.
        what: String,
    },
    /// A cross-reference subsection holds a different number of entries than its header says.
    #[error("cross-reference subsection `{first} {claimed}` at byte {at} holds {found} entries")]
    SubsectionCount {
        /// Offset of the subsection header.
        at: usize,
        /// First object number.
        first: u64,
        /// Entries the header claims.
        claimed: u64,
        /// Entries present.
        found: u64,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<lopdf::Error> for Error {
    fn from(e: lopdf::Error) -> Self {
        Error::Malformed(e.to_string())
    }
}
