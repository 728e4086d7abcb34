//! Signer identities: a private key (RSA or ECDSA P-256) and its certificate chain, loaded from
//! PEM files or a PKCS#12 bundle. Signing uses aws-lc-rs.

use crate::error::{Error, Result};
use crate::signature::CmsTemplate;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, RSA_PKCS1_SHA256,
};
use der::Decode;
use std::path::Path;
use std::sync::OnceLock;
use x509_cert::Certificate;

/// The private key of a signer.
pub enum SigningKey {
    /// RSA, signing PKCS#1 v1.5 with SHA-256.
    Rsa(RsaKeyPair),
    /// ECDSA on P-256 with SHA-256.
    EcdsaP256(EcdsaKeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SigningKey::Rsa(k) => write!(f, "SigningKey::Rsa({} bits)", k.public_modulus_len() * 8),
            SigningKey::EcdsaP256(_) => write!(f, "SigningKey::EcdsaP256"),
        }
    }
}

impl SigningKey {
    /// Parses a DER private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub fn from_der(der: &[u8]) -> Result<Self> {
        if let Ok(k) = RsaKeyPair::from_pkcs8(der) {
            return Ok(SigningKey::Rsa(k));
        }
        if let Ok(k) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der) {
            return Ok(SigningKey::EcdsaP256(k));
        }
        if let Ok(k) = RsaKeyPair::from_der(der) {
            return Ok(SigningKey::Rsa(k));
        }
        if let Ok(k) = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, der) {
            return Ok(SigningKey::EcdsaP256(k));
        }
        Err(Error::Identity(
            "unsupported private key: need RSA (2048-8192 bits) or ECDSA P-256, \
             in PKCS#8, PKCS#1 or SEC1 form"
                .into(),
        ))
    }

    /// The public key as it appears in a certificate's subjectPublicKey bit string.
    pub fn public_key_bytes(&self) -> &[u8] {
        match self {
            SigningKey::Rsa(k) => k.public_key().as_ref(),
            SigningKey::EcdsaP256(k) => k.public_key().as_ref(),
        }
    }

    /// Signs `msg` (SHA-256 is applied inside); returns the raw signature (DER for ECDSA).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let rng = SystemRandom::new();
        match self {
            SigningKey::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .map_err(|_| Error::Crypto("RSA signing failed".into()))?;
                Ok(sig)
            }
            SigningKey::EcdsaP256(k) => k
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Crypto("ECDSA signing failed".into())),
        }
    }

    /// Largest signature this key can produce.
    pub fn max_signature_len(&self) -> usize {
        match self {
            SigningKey::Rsa(k) => k.public_modulus_len(),
            SigningKey::EcdsaP256(_) => 72,
        }
    }
}

/// A signer: private key, its certificate and the rest of the chain (issuers), all DER.
#[derive(Debug)]
pub struct SignerIdentity {
    key: SigningKey,
    cert_der: Vec<u8>,
    cert: Certificate,
    chain_der: Vec<Vec<u8>>,
    /// The CMS of this identity with the digest and signature left to fill in, made on first
    /// use (see [`crate::signature::build_cms`]).
    cms_template: OnceLock<Option<CmsTemplate>>,
}

impl SignerIdentity {
    /// Builds an identity from a key and certificates (DER); the certificate whose public key
    /// matches the key is the signer's, the others are its chain.
    pub fn from_parts(key: SigningKey, certs_der: Vec<Vec<u8>>) -> Result<Self> {
        if certs_der.is_empty() {
            return Err(Error::Identity("no certificate given".into()));
        }
        let mut signer = None;
        let mut chain = Vec::new();
        for der in certs_der {
            let cert = Certificate::from_der(&der)
                .map_err(|e| Error::Identity(format!("unreadable certificate: {e}")))?;
            let pk = cert
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes();
            if signer.is_none() && pk == key.public_key_bytes() {
                signer = Some((der, cert));
            } else {
                chain.push(der);
            }
        }
        let (cert_der, cert) = signer
            .ok_or_else(|| Error::Identity("no certificate matches the private key".into()))?;
        Ok(SignerIdentity {
            key,
            cert_der,
            cert,
            chain_der: chain,
            cms_template: OnceLock::new(),
        })
    }

    /// Loads a PEM private key file and a PEM certificate file (signer certificate, optionally
    /// followed by its chain).
    pub fn from_pem_files(key_path: &Path, cert_path: &Path) -> Result<Self> {
        let key_pem = std::fs::read(key_path).map_err(|e| Error::io(key_path, e))?;
        let cert_pem = std::fs::read(cert_path).map_err(|e| Error::io(cert_path, e))?;
        Self::from_pem(&key_pem, &cert_pem)
    }

    /// Parses a PEM private key and PEM certificates.
    pub fn from_pem(key_pem: &[u8], cert_pem: &[u8]) -> Result<Self> {
        let keys = pem::parse_many(key_pem)
            .map_err(|e| Error::Identity(format!("unreadable key PEM: {e}")))?;
        let key = keys
            .iter()
            .find(|p| p.tag().ends_with("PRIVATE KEY"))
            .ok_or_else(|| {
                if keys.iter().any(|p| p.tag() == "ENCRYPTED PRIVATE KEY") {
                    Error::Identity("encrypted PEM keys are not supported: use PKCS#12".into())
                } else {
                    Error::Identity("no PRIVATE KEY block in the key file".into())
                }
            })?;
        if key.tag() == "ENCRYPTED PRIVATE KEY" {
            return Err(Error::Identity(
                "encrypted PEM keys are not supported: use PKCS#12".into(),
            ));
        }
        let key = SigningKey::from_der(key.contents())?;
        let certs: Vec<Vec<u8>> = pem::parse_many(cert_pem)
            .map_err(|e| Error::Identity(format!("unreadable certificate PEM: {e}")))?
            .into_iter()
            .filter(|p| p.tag() == "CERTIFICATE")
            .map(|p| p.into_contents())
            .collect();
        if certs.is_empty() {
            return Err(Error::Identity(
                "no CERTIFICATE block in the certificate file".into(),
            ));
        }
        Self::from_parts(key, certs)
    }

    /// Parses a PKCS#12 bundle with its password.
    pub fn from_pkcs12(data: &[u8], password: &str) -> Result<Self> {
        use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
        let store =
            KeyStore::from_pkcs12(data, password, Pkcs12ImportPolicy::Relaxed).map_err(|e| {
                let msg = e.to_string();
                if msg.to_lowercase().contains("mac") || msg.to_lowercase().contains("password") {
                    Error::Identity(format!("PKCS#12: wrong password ({msg})"))
                } else {
                    Error::Identity(format!("PKCS#12 unreadable or wrong password: {msg}"))
                }
            })?;
        let (_, chain) = store
            .private_key_chain()
            .ok_or_else(|| Error::Identity("the PKCS#12 file contains no private key".into()))?;
        let key = SigningKey::from_der(chain.key().as_der())?;
        let mut certs: Vec<Vec<u8>> = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
        if certs.is_empty() {
            // certificates stored apart from the key bag
            for (_, entry) in store.entries() {
                if let p12_keystore::KeyStoreEntry::Certificate(c) = entry {
                    certs.push(c.as_der().to_vec());
                }
            }
        }
        if certs.is_empty() {
            return Err(Error::Identity(
                "the PKCS#12 file contains no certificate".into(),
            ));
        }
        Self::from_parts(key, certs)
    }

    /// Reads a PKCS#12 file.
    pub fn from_pkcs12_file(path: &Path, password: &str) -> Result<Self> {
        let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_pkcs12(&data, password)
    }

    /// The private key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The signer certificate (DER).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The signer certificate.
    pub fn cert(&self) -> &Certificate {
        &self.cert
    }

    /// The issuers' certificates (DER), as given.
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    /// The CMS template of this identity (RSA keys only), made once.
    pub(crate) fn cms_template(&self) -> Option<&CmsTemplate> {
        self.cms_template
            .get_or_init(|| CmsTemplate::new(self))
            .as_ref()
    }

    /// The subject of the signer certificate, RFC 4514 style.
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    /// [`SignerIdentity::check_valid_at`] now.
    pub fn check_valid_now(&self) -> Result<()> {
        self.check_valid_at(time::OffsetDateTime::now_utc())
    }

    /// Refuses a signer certificate that is not valid at `at` (before its notBefore or after
    /// its notAfter): [`Error::CertificateTime`] names the subject and the dates.
    pub fn check_valid_at(&self, at: time::OffsetDateTime) -> Result<()> {
        let (not_before, not_after) = validity(&self.cert);
        match cert_time(&self.cert, at) {
            CertTime::Valid => Ok(()),
            state => Err(Error::CertificateTime {
                subject: self.subject(),
                state,
                not_before: rfc3339(not_before),
                not_after: rfc3339(not_after),
                at: rfc3339(at),
            }),
        }
    }
}

/// Where a moment lies in a certificate's validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CertTime {
    /// Within notBefore..=notAfter.
    Valid,
    /// After notAfter.
    Expired,
    /// Before notBefore.
    NotYetValid,
}

impl std::fmt::Display for CertTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CertTime::Valid => "valid",
            CertTime::Expired => "expired",
            CertTime::NotYetValid => "not yet valid",
        })
    }
}

/// A certificate's notBefore and notAfter.
pub fn validity(cert: &Certificate) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let at = |t: x509_cert::time::Time| {
        let secs = i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    let v = &cert.tbs_certificate.validity;
    (at(v.not_before), at(v.not_after))
}

/// Whether `cert` is valid, expired or not yet valid at `at`.
pub fn cert_time(cert: &Certificate, at: time::OffsetDateTime) -> CertTime {
    let (not_before, not_after) = validity(cert);
    if at < not_before {
        CertTime::NotYetValid
    } else if at > not_after {
        CertTime::Expired
    } else {
        CertTime::Valid
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
