//! Test identities: a throw-away certification authority and the signer, client (mTLS) and
//! server (sandbox gateway) certificates it issues, as PEM and PKCS#12. For tests, examples and
//! the local sandbox only: keys are generated fresh and are not protected.

use crate::error::{Error, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, RsaKeySize, SanType, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};
use std::path::{Path, PathBuf};

/// Password of the PKCS#12 files [`TestPki::write_to`] writes unless told otherwise. Test use
/// only.
pub const TEST_P12_PASSWORD: &str = "fse-test-only";

/// One issued identity (DER and PEM of the certificate, PKCS#8 key).
#[derive(Clone)]
pub struct Issued {
    /// Certificate, DER.
    pub cert_der: Vec<u8>,
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// Private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("cert_der_len", &self.cert_der.len())
            .finish_non_exhaustive()
    }
}

/// Kind of key for a generated signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyKind {
    /// RSA-2048 (PKCS#1 v1.5 signatures).
    #[default]
    Rsa2048,
    /// ECDSA P-256.
    EcdsaP256,
}

/// A test CA and the identities it issued.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The self-signed CA (trust anchor for verifiers).
    pub ca: Issued,
    /// Document signer (digitalSignature + nonRepudiation).
    pub signer: Issued,
    /// TLS client (clientAuth), for mutual TLS towards the gateway.
    pub client: Issued,
    /// TLS server (serverAuth) for `localhost` / `127.0.0.1` / `::1`.
    pub server: Issued,
}

fn cerr(e: rcgen::Error) -> Error {
    Error::Certs(e.to_string())
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CountryName, "IT");
    d.push(
        DnType::OrganizationName,
        "fse test PKI (not for production)",
    );
    d.push(DnType::CommonName, cn);
    d
}

fn key(kind: KeyKind) -> Result<KeyPair> {
    match kind {
        KeyKind::Rsa2048 => {
            KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).map_err(cerr)
        }
        KeyKind::EcdsaP256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(cerr),
    }
}

/// The validity of generated certificates: from yesterday, for three years.
fn default_validity() -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc();
    (
        now - time::Duration::days(1),
        now + time::Duration::days(3 * 365),
    )
}

fn validity(p: &mut CertificateParams) {
    (p.not_before, p.not_after) = default_validity();
}

impl TestPki {
    /// Generates a CA (ECDSA P-256) and its signer (of `signer_kind`), client and server
    /// identities.
    pub fn generate(signer_kind: KeyKind) -> Result<Self> {
        Self::generate_with_signer_validity(signer_kind, default_validity())
    }

    /// [`TestPki::generate`] with the signer certificate valid from `.0` to `.1` (e.g. already
    /// expired, to test that signing refuses it).
    pub fn generate_with_signer_validity(
        signer_kind: KeyKind,
        signer_validity: (time::OffsetDateTime, time::OffsetDateTime),
    ) -> Result<Self> {
        let ca_key = key(KeyKind::EcdsaP256)?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = dn("fse test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut ca_params);
        let ca_cert = ca_params.self_signed(&ca_key).map_err(cerr)?;
        let ca = Issued {
            cert_der: ca_cert.der().to_vec(),
            cert_pem: ca_cert.pem(),
            key_der: ca_key.serialize_der(),
            key_pem: ca_key.serialize_pem(),
        };
        let issuer = Issuer::new(ca_params, ca_key);

        let issue = |cn: &str,
                     kind: KeyKind,
                     ku: Vec<KeyUsagePurpose>,
                     eku: Vec<ExtendedKeyUsagePurpose>,
                     sans: Vec<SanType>,
                     valid: (time::OffsetDateTime, time::OffsetDateTime)|
         -> Result<Issued> {
            let k = key(kind)?;
            let mut p = CertificateParams::default();
            p.distinguished_name = dn(cn);
            p.key_usages = ku;
            p.extended_key_usages = eku;
            p.subject_alt_names = sans;
            p.use_authority_key_identifier_extension = true;
            (p.not_before, p.not_after) = valid;
            let c = p.signed_by(&k, &issuer).map_err(cerr)?;
            Ok(Issued {
                cert_der: c.der().to_vec(),
                cert_pem: c.pem(),
                key_der: k.serialize_der(),
                key_pem: k.serialize_pem(),
            })
        };
        let signer = issue(
            "fse test signer",
            signer_kind,
            vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::ContentCommitment,
            ],
            vec![],
            vec![],
            signer_validity,
        )?;
        let client = issue(
            "fse test client",
            KeyKind::EcdsaP256,
            vec![KeyUsagePurpose::DigitalSignature],
            vec![ExtendedKeyUsagePurpose::ClientAuth],
            vec![],
            default_validity(),
        )?;
        let localhost = rcgen::string::Ia5String::try_from("localhost").map_err(cerr)?;
        let server = issue(
            "localhost",
            KeyKind::EcdsaP256,
            vec![KeyUsagePurpose::DigitalSignature],
            vec![ExtendedKeyUsagePurpose::ServerAuth],
            vec![
                SanType::DnsName(localhost),
                SanType::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
                SanType::IpAddress(std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
            ],
            default_validity(),
        )?;
        Ok(TestPki {
            ca,
            signer,
            client,
            server,
        })
    }

    /// Writes `ca.pem`, `ca-key.pem` and, for `signer`, `client`, `server`: `NAME.pem` (the
    /// certificate), `NAME-key.pem`, `NAME-chain.pem` (certificate + CA) and `NAME.p12`
    /// (key + certificate + CA, protected by `p12_password`). Returns the written paths.
    pub fn write_to(&self, dir: &Path, p12_password: &str) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut written = Vec::new();
        let mut put = |name: &str, data: &[u8]| -> Result<()> {
            let p = dir.join(name);
            std::fs::write(&p, data).map_err(|e| Error::io(&p, e))?;
            written.push(p);
            Ok(())
        };
        put("ca.pem", self.ca.cert_pem.as_bytes())?;
        put("ca-key.pem", self.ca.key_pem.as_bytes())?;
        for (name, id) in [
            ("signer", &self.signer),
            ("client", &self.client),
            ("server", &self.server),
        ] {
            put(&format!("{name}.pem"), id.cert_pem.as_bytes())?;
            put(&format!("{name}-key.pem"), id.key_pem.as_bytes())?;
            put(
                &format!("{name}-chain.pem"),
                format!("{}{}", id.cert_pem, self.ca.cert_pem).as_bytes(),
            )?;
            let p12 = pkcs12(
                &id.key_der,
                &[id.cert_der.clone(), self.ca.cert_der.clone()],
                p12_password,
                name,
            )?;
            put(&format!("{name}.p12"), &p12)?;
        }
        Ok(written)
    }
}

/// Builds a PKCS#12 bundle (PBES2/AES-256, HMAC-SHA-256 MAC) from a PKCS#8 key and its chain
/// (leaf first).
pub fn pkcs12(
    key_der: &[u8],
    chain_der: &[Vec<u8>],
    password: &str,
    alias: &str,
) -> Result<Vec<u8>> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let key = PrivateKey::from_der(key_der).map_err(|e| Error::Certs(e.to_string()))?;
    let certs = chain_der
        .iter()
        .map(|d| Certificate::from_der(d).map_err(|e| Error::Certs(e.to_string())))
        .collect::<Result<Vec<_>>>()?;
    let mut store = KeyStore::new();
    store.add_entry(
        alias,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(alias.as_bytes(), key, certs)),
    );
    store
        .writer(password)
        .write()
        .map_err(|e| Error::Certs(e.to_string()))
}
