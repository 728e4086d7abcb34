//! Test PKI of the sandbox: a CA, the server identity (localhost / 127.0.0.1), the client
//! mTLS identity and the JWT/document signing identity, written as PEM and PKCS#12.
//!
//! Everything here is for offline tests only: keys are written unencrypted next to the
//! certificates.

use crate::tls::pem;
use p12_keystore::{Certificate as P12Cert, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};
use std::path::Path;
use time::{Duration, OffsetDateTime};

/// Errors generating or writing identities.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Key or certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// PKCS#12 encoding failed.
    #[error("PKCS#12: {0}")]
    Pkcs12(String),
    /// Writing or reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Password of the PKCS#12 files `init` writes (they protect test keys only).
pub const P12_PASSWORD: &str = "sandbox";

/// Common name of the sandbox CA.
pub const CA_CN: &str = "fse sandbox test CA";
/// Common name of the client mTLS certificate.
pub const CLIENT_CN: &str = "fse-sandbox-client";
/// Common name of the JWT / document signing certificate (the `iss` suffix).
pub const SIGNER_CN: &str = "fse-sandbox-signer";

/// What a leaf certificate is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafKind {
    /// TLS server for these DNS names / IP addresses (ECDSA P-256).
    Server(Vec<String>),
    /// TLS client (ECDSA P-256).
    Client,
    /// JWT and PAdES signer (RSA 2048, as the gateway wants RS256).
    Signer,
}

/// A generated certificate and its key, both as DER and PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Certificate, DER.
    pub cert_der: Vec<u8>,
    /// Private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl Issued {
    /// Certificate PEM.
    pub fn cert_pem(&self) -> String {
        pem("CERTIFICATE", &self.cert_der)
    }

    /// Key PEM (PKCS#8).
    pub fn key_pem(&self) -> String {
        pem("PRIVATE KEY", &self.key_der)
    }

    /// PKCS#12 with the key, this certificate and `ca_der`.
    pub fn pkcs12(
        &self,
        alias: &str,
        ca_der: &[u8],
        password: &str,
    ) -> Result<Vec<u8>, IdentityError> {
        let err = |e: p12_keystore::error::Error| IdentityError::Pkcs12(e.to_string());
        let key = PrivateKey::from_der(&self.key_der).map_err(err)?;
        let certs = [
            P12Cert::from_der(&self.cert_der).map_err(err)?,
            P12Cert::from_der(ca_der).map_err(err)?,
        ];
        let chain = PrivateKeyChain::new(alias.as_bytes(), key, certs);
        let mut store = KeyStore::new();
        store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(chain));
        store.writer(password).write().map_err(err)
    }
}

/// A certificate authority able to issue leaves.
pub struct Authority {
    cn: String,
    key: KeyPair,
    /// The CA certificate, DER.
    pub cert_der: Vec<u8>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("cn", &self.cn)
            .finish_non_exhaustive()
    }
}

fn ca_params(cn: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "fse sandbox");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(3650);
    Ok(params)
}

impl Authority {
    /// A new self-signed CA.
    pub fn generate(cn: &str) -> Result<Authority, IdentityError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = ca_params(cn)?.self_signed(&key)?;
        Ok(Authority {
            cn: cn.to_owned(),
            key,
            cert_der: cert.der().to_vec(),
        })
    }

    /// Reloads a CA written by [`init`] (its certificate DER and PKCS#8 key PEM).
    pub fn load(cn: &str, cert_der: Vec<u8>, key_pem: &str) -> Result<Authority, IdentityError> {
        Ok(Authority {
            cn: cn.to_owned(),
            key: KeyPair::from_pem(key_pem)?,
            cert_der,
        })
    }

    /// The CA key, PKCS#8 DER.
    pub fn key_der(&self) -> Vec<u8> {
        self.key.serialize_der()
    }

    /// Issues a leaf valid from `not_before` to `not_after`.
    pub fn issue_with_validity(
        &self,
        kind: &LeafKind,
        cn: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Issued, IdentityError> {
        let names = match kind {
            LeafKind::Server(names) => names.clone(),
            _ => Vec::new(),
        };
        let mut params = CertificateParams::new(names)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn.push(DnType::OrganizationName, "fse sandbox");
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.not_before = not_before;
        params.not_after = not_after;
        let key = match kind {
            LeafKind::Signer => {
                params.key_usages = vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::ContentCommitment,
                ];
                KeyPair::generate_for(&PKCS_RSA_SHA256)?
            }
            LeafKind::Client => {
                params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?
            }
            LeafKind::Server(_) => {
                params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?
            }
        };
        let issuer = Issuer::new(ca_params(&self.cn)?, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued {
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        })
    }

    /// Issues a leaf valid from yesterday for two years.
    pub fn issue(&self, kind: &LeafKind, cn: &str) -> Result<Issued, IdentityError> {
        let now = OffsetDateTime::now_utc();
        self.issue_with_validity(kind, cn, now - Duration::days(1), now + Duration::days(730))
    }
}

fn write(path: &Path, data: &[u8]) -> Result<(), IdentityError> {
    let err = |source| IdentityError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::write(path, data).map_err(err)?;
    // Private keys and PKCS#12 files: owner only, even for test keys.
    #[cfg(unix)]
    if matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("key" | "p12")
    ) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    Ok(())
}

/// Writes `ca.pem`/`ca.key`, `server.pem`/`server.key`, `client.{pem,key,p12}` and
/// `signer.{pem,key,p12}` into `dir` (which must exist).
pub fn write_identities(dir: &Path) -> Result<(), IdentityError> {
    let ca = Authority::generate(CA_CN)?;
    write(
        &dir.join("ca.pem"),
        pem("CERTIFICATE", &ca.cert_der).as_bytes(),
    )?;
    write(
        &dir.join("ca.key"),
        pem("PRIVATE KEY", &ca.key_der()).as_bytes(),
    )?;
    let server = ca.issue(
        &LeafKind::Server(vec!["localhost".into(), "127.0.0.1".into()]),
        "fse sandbox gateway",
    )?;
    write(
        &dir.join("server.pem"),
        (server.cert_pem() + &pem("CERTIFICATE", &ca.cert_der)).as_bytes(),
    )?;
    write(&dir.join("server.key"), server.key_pem().as_bytes())?;
    for (name, kind, cn) in [
        ("client", LeafKind::Client, CLIENT_CN),
        ("signer", LeafKind::Signer, SIGNER_CN),
    ] {
        let leaf = ca.issue(&kind, cn)?;
        write(&dir.join(format!("{name}.pem")), leaf.cert_pem().as_bytes())?;
        write(&dir.join(format!("{name}.key")), leaf.key_pem().as_bytes())?;
        write(
            &dir.join(format!("{name}.p12")),
            &leaf.pkcs12(name, &ca.cert_der, P12_PASSWORD)?,
        )?;
    }
    Ok(())
}

/// Reloads the CA of a sandbox directory (to issue more test identities).
pub fn load_authority(dir: &Path) -> Result<Authority, IdentityError> {
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|source| IdentityError::Io {
            path: dir.join(name).display().to_string(),
            source,
        })
    };
    let cert_pem = read("ca.pem")?;
    let key_pem = String::from_utf8_lossy(&read("ca.key")?).into_owned();
    let cert_der = crate::tls::certs_from_pem(&cert_pem, "ca.pem")
        .map_err(|e| IdentityError::Pkcs12(e.to_string()))?
        .remove(0)
        .to_vec();
    Authority::load(CA_CN, cert_der, &key_pem)
}
