//! Loading X.509 identities (PEM or PKCS#12) and CA roots, shared by the client, the JWT signer
//! and the sandbox.

use base64::Engine;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};

/// Errors loading certificates and keys.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A PEM file held no certificate.
    #[error("{0}: no certificate found")]
    NoCertificate(String),
    /// A PEM file held no private key.
    #[error("{0}: no private key found")]
    NoKey(String),
    /// Malformed PEM / DER / PKCS#12.
    #[error("{0}")]
    Malformed(String),
}

/// A certificate chain (leaf first) and its private key.
#[derive(Debug)]
pub struct Identity {
    /// Leaf first, then intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Parses every certificate of a PEM text.
pub fn certs_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Malformed(format!("{what}: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(what.to_owned()));
    }
    Ok(certs)
}

/// Reads every certificate of a PEM file (e.g. a CA bundle).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certs_from_pem(&read(path)?, &path.display().to_string())
}

impl Identity {
    /// From PEM texts: the certificate chain and the private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8], what: &str) -> Result<Identity, TlsError> {
        let chain = certs_from_pem(cert_pem, what)?;
        let key = rustls_pemfile::private_key(&mut &key_pem[..])
            .map_err(|e| TlsError::Malformed(format!("{what}: {e}")))?
            .ok_or_else(|| TlsError::NoKey(what.to_owned()))?;
        Ok(Identity { chain, key })
    }

    /// From a certificate PEM file and a key PEM file.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        Identity::from_pem(&read(cert)?, &read(key)?, &cert.display().to_string())
    }

    /// From a PKCS#12 archive.
    pub fn from_pkcs12(der: &[u8], password: &str, what: &str) -> Result<Identity, TlsError> {
        let store = p12_keystore::KeyStore::from_pkcs12(
            der,
            password,
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .map_err(|e| TlsError::Malformed(format!("{what}: PKCS#12: {e}")))?;
        let (_, chain) = store
            .private_key_chain()
            .ok_or_else(|| TlsError::NoKey(what.to_owned()))?;
        if chain.certs().is_empty() {
            return Err(TlsError::NoCertificate(what.to_owned()));
        }
        Ok(Identity {
            chain: chain
                .certs()
                .iter()
                .map(|c| CertificateDer::from(c.as_der().to_vec()))
                .collect(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec())),
        })
    }

    /// From a PKCS#12 file.
    pub fn from_pkcs12_file(path: &Path, password: &str) -> Result<Identity, TlsError> {
        Identity::from_pkcs12(&read(path)?, password, &path.display().to_string())
    }

    /// Checks that the private key is the one of the leaf certificate (and that rustls can
    /// use it).
    pub fn check_key_matches(&self, what: &str) -> Result<(), TlsError> {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        rustls::sign::CertifiedKey::from_der(self.chain.clone(), self.key.clone_key(), &provider)
            .map(drop)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => TlsError::Malformed(format!(
                    "{what}: the private key does not belong to the certificate"
                )),
                e => TlsError::Malformed(format!("{what}: unusable private key: {e}")),
            })
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The leaf's subject common name.
    pub fn common_name(&self) -> Result<String, TlsError> {
        common_name(self.leaf()).ok_or_else(|| TlsError::Malformed("certificate has no CN".into()))
    }

    /// Chain and key as one PEM text (what `reqwest::Identity::from_pem` takes).
    pub fn to_pem(&self) -> String {
        let mut out = String::new();
        for cert in &self.chain {
            out.push_str(&pem("CERTIFICATE", cert));
        }
        let label = match &self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        out.push_str(&pem(label, self.key.secret_der()));
        out
    }
}

/// PEM-encodes one DER blob.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The subject CN of a DER certificate.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    Some(cn)
}
