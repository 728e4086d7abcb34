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
