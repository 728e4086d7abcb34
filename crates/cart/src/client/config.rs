//! The client configuration file (`fse.toml`): gateway URL and audience, CA roots, the mTLS
//! identity, the JWT signing identity, the caller's claim profile, and the defaults of batch
//! publication (`[publication]`, `[batch]`, `[rules]`). Relative paths are resolved against
//! the file's directory.
//!
//! Every key can be overridden by an environment variable named `FSE_<SECTION>_<KEY>` in
//! upper case ([`env_var_name`]): `FSE_GATEWAY_BASE_URL`, `FSE_TLS_P12_PASSWORD`,
//! `FSE_PROFILE_SUBJECT_ROLE`, `FSE_PUBLICATION_IDENTIFICATIVO_REP`, `FSE_BATCH_RATE`,
//! `FSE_RULES_DIR`… (`FSE_GATEWAY_URL` is accepted as an alias of `FSE_GATEWAY_BASE_URL`).
//! Booleans read `true`/`false`, lists are comma-separated, relative paths given by a variable
//! are resolved against the current directory. [`ClientConfig::load_with_env`] applies them;
//! [`ClientConfig::load`] reads the file alone.
//!
//! Secrets (the PKCS#12 password) never appear in `Debug` output or error messages.

use crate::api::{
    AssettoOrganizzativo, TipoAttivitaClinica, TipoDocumentoLivAlto, TipologiaStruttura,
};
use crate::jwt::RequestProfile;
use crate::tls::{Identity, TlsError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Errors reading a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable file.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Bad TOML or unknown keys.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A section is incomplete.
    #[error("{0}")]
    Invalid(String),
    /// A certificate or key failed to load.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// `[gateway]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// Base URL without `/v1`, e.g. `https://127.0.0.1:8443` or the CART URL with its prefix.
    pub base_url: String,
    /// JWT `aud`; defaults to `base_url` + `/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// PEM bundle of private CA roots to trust (the public web roots are never used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Whole-request timeout.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Connect timeout.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
    /// Attempts for operations safe to retry (validation, status).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Lifetime of each JWT (`exp` - `iat`), seconds.
    #[serde(default = "default_ttl")]
    pub token_ttl_seconds: u64,
}

fn default_timeout() -> u64 {
    120
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_attempts() -> u32 {
    3
}
fn default_ttl() -> u64 {
    300
}

impl Default for GatewaySection {
    fn default() -> Self {
        GatewaySection {
            base_url: String::new(),
            audience: None,
            ca: None,
            timeout_seconds: default_timeout(),
            connect_timeout_seconds: default_connect_timeout(),
            max_attempts: default_attempts(),
            token_ttl_seconds: default_ttl(),
        }
    }
}

/// An identity given as PEM pair or PKCS#12 (`[tls]`, `[signer]`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    /// Certificate chain PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Private key PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// PKCS#12 archive (instead of cert + key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p12: Option<PathBuf>,
    /// PKCS#12 password (prefer `p12_password_env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p12_password: Option<String>,
    /// Environment variable holding the PKCS#12 password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p12_password_env: Option<String>,
}

impl std::fmt::Debug for IdentitySection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentitySection")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("p12", &self.p12)
            .field(
                "p12_password",
                &self.p12_password.as_ref().map(|_| "<redacted>"),
            )
            .field("p12_password_env", &self.p12_password_env)
            .finish()
    }
}

/// `[publication]`: the `PublicationCreationReqDTO` fields the CDA does not carry, applied to
/// every document of a batch (a `NAME.meta.json` next to a document overrides them for it).
/// `tipo_documento_liv_alto` defaults from the document type (the gateway's table,
/// [`crate::api::correlation`]); a value given here or in a sidecar that the table does not
/// give for a document's type fails that document before any call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublicationDefaults {
    /// `tipologiaStruttura`.
    pub tipologia_struttura: TipologiaStruttura,
    /// `assettoOrganizzativo`.
    pub assetto_organizzativo: AssettoOrganizzativo,
    /// `tipoAttivitaClinica`.
    pub tipo_attivita_clinica: TipoAttivitaClinica,
    /// `identificativoRep`.
    pub identificativo_rep: String,
    /// `tipoDocumentoLivAlto`; by document type when absent (and must agree with it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tipo_documento_liv_alto: Option<TipoDocumentoLivAlto>,
    /// `attiCliniciRegoleAccesso`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub atti_clinici_regole_accesso: Option<Vec<String>>,
}

impl Default for PublicationDefaults {
    fn default() -> Self {
        PublicationDefaults {
            tipologia_struttura: TipologiaStruttura::Ospedale,
            assetto_organizzativo: AssettoOrganizzativo::Psc001,
            tipo_attivita_clinica: TipoAttivitaClinica::Phr,
            identificativo_rep: "2.16.840.1.113883.2.9.2.90.4.5.1".into(),
            tipo_documento_liv_alto: None,
            atti_clinici_regole_accesso: None,
        }
    }
}

/// `[batch]`: defaults of `fse batch publish|resume` (command-line options win).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchSection {
    /// Documents processed in parallel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<usize>,
    /// Most gateway calls per second, all workers together (0: unbounded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
}

/// `[rules]`: the official CDA rule material used to validate locally before sending.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesSection {
    /// A folder laid out like the Ministry's catalog (`fse cda validate --rules`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

/// `[cart]`: other CART services reachable with the same mTLS identity (`fse cart call`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CartSection {
    /// API name → base URL (e.g. `piano-terapeutico = "https://cart.example/pt/v1"`).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub apis: std::collections::BTreeMap<String, String>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Where and how to connect.
    pub gateway: GatewaySection,
    /// Client certificate for mutual TLS.
    pub tls: IdentitySection,
    /// Certificate signing the JWTs.
    pub signer: IdentitySection,
    /// Caller and patient claims.
    pub profile: RequestProfile,
    /// Publication metadata defaults.
    #[serde(default)]
    pub publication: PublicationDefaults,
    /// Batch defaults.
    #[serde(default, skip_serializing_if = "is_default")]
    pub batch: BatchSection,
    /// Local validation rules.
    #[serde(default, skip_serializing_if = "is_default")]
    pub rules: RulesSection,
    /// Other CART services.
    #[serde(default, skip_serializing_if = "is_default")]
    pub cart: CartSection,
    /// Directory relative paths are resolved against (not serialised).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl Default for ClientConfig {
    /// An empty configuration (no gateway URL, no identities): a base for struct literals.
    fn default() -> Self {
        ClientConfig {
            gateway: GatewaySection::default(),
            tls: IdentitySection::default(),
            signer: IdentitySection::default(),
            profile: RequestProfile {
                subject: String::new(),
                subject_role: String::new(),
                person_id: String::new(),
                locality: String::new(),
                subject_organization_id: String::new(),
                subject_organization: String::new(),
                patient_consent: false,
                subject_application_id: String::new(),
                subject_application_vendor: String::new(),
                subject_application_version: String::new(),
            },
            publication: PublicationDefaults::default(),
            batch: BatchSection::default(),
            rules: RulesSection::default(),
            cart: CartSection::default(),
            base_dir: PathBuf::new(),
        }
    }
}

/// How an environment value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    /// A secret: never echoed in errors.
    Secret,
    Path,
    Integer,
    Float,
    Bool,
    List,
}

/// Every key of the file, with its type: the environment overrides.
const KEYS: &[(&str, &str, Kind)] = &[
    ("gateway", "base_url", Kind::Text),
    ("gateway", "audience", Kind::Text),
    ("gateway", "ca", Kind::Path),
    ("gateway", "timeout_seconds", Kind::Integer),
    ("gateway", "connect_timeout_seconds", Kind::Integer),
    ("gateway", "max_attempts", Kind::Integer),
    ("gateway", "token_ttl_seconds", Kind::Integer),
    ("tls", "cert", Kind::Path),
    ("tls", "key", Kind::Path),
    ("tls", "p12", Kind::Path),
    ("tls", "p12_password", Kind::Secret),
    ("tls", "p12_password_env", Kind::Text),
    ("signer", "cert", Kind::Path),
    ("signer", "key", Kind::Path),
    ("signer", "p12", Kind::Path),
    ("signer", "p12_password", Kind::Secret),
    ("signer", "p12_password_env", Kind::Text),
    ("profile", "subject", Kind::Text),
    ("profile", "subject_role", Kind::Text),
    ("profile", "person_id", Kind::Text),
    ("profile", "locality", Kind::Text),
    ("profile", "subject_organization_id", Kind::Text),
    ("profile", "subject_organization", Kind::Text),
    ("profile", "patient_consent", Kind::Bool),
    ("profile", "subject_application_id", Kind::Text),
    ("profile", "subject_application_vendor", Kind::Text),
    ("profile", "subject_application_version", Kind::Text),
    ("publication", "tipologia_struttura", Kind::Text),
    ("publication", "assetto_organizzativo", Kind::Text),
    ("publication", "tipo_attivita_clinica", Kind::Text),
    ("publication", "identificativo_rep", Kind::Text),
    ("publication", "tipo_documento_liv_alto", Kind::Text),
    ("publication", "atti_clinici_regole_accesso", Kind::List),
    ("batch", "jobs", Kind::Integer),
    ("batch", "rate", Kind::Float),
    ("rules", "dir", Kind::Path),
];

/// The environment variable overriding `[section] key`: `FSE_<SECTION>_<KEY>`, upper case.
pub fn env_var_name(section: &str, key: &str) -> String {
    format!("FSE_{}_{}", section, key).to_ascii_uppercase()
}

/// Every environment variable [`ClientConfig::load_with_env`] reads, in file order.
pub fn env_var_names() -> Vec<String> {
    let mut v: Vec<String> = KEYS.iter().map(|(s, k, _)| env_var_name(s, k)).collect();
    v.push("FSE_GATEWAY_URL".into());
    v
}

fn apply_env(
    table: &mut toml::Table,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ConfigError> {
    let mut applied = Vec::new();
    for &(section, key, kind) in KEYS {
        let mut name = env_var_name(section, key);
        let mut value = lookup(&name);
        if value.is_none() && section == "gateway" && key == "base_url" {
            name = "FSE_GATEWAY_URL".into();
            value = lookup(&name);
        }
        let Some(raw) = value else { continue };
        let bad = |what: &str| {
            let shown = if kind == Kind::Secret {
                String::new()
            } else {
                format!(" {raw:?}")
            };
            ConfigError::Invalid(format!("environment {name}:{shown} is not {what}"))
        };
        let parsed = match kind {
            Kind::Text | Kind::Secret => toml::Value::String(raw.clone()),
            Kind::Path => {
                let p = PathBuf::from(&raw);
                let p = if p.is_relative() {
                    std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
                } else {
                    p
                };
                toml::Value::String(p.to_string_lossy().into_owned())
            }
            Kind::Integer => {
                toml::Value::Integer(raw.trim().parse::<i64>().map_err(|_| bad("an integer"))?)
            }
            Kind::Float => {
                toml::Value::Float(raw.trim().parse::<f64>().map_err(|_| bad("a number"))?)
            }
            Kind::Bool => match raw.trim() {
                "true" | "1" | "yes" => toml::Value::Boolean(true),
                "false" | "0" | "no" => toml::Value::Boolean(false),
                _ => return Err(bad("true or false")),
            },
            Kind::List => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_owned()))
                    .collect(),
            ),
        };
        let entry = table
            .entry(section.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(sub) = entry.as_table_mut() else {
            return Err(ConfigError::Invalid(format!("[{section}] is not a table")));
        };
        sub.insert(key.to_owned(), parsed);
        applied.push(name);
    }
    Ok(applied)
}

impl IdentitySection {
    /// Loads the identity, resolving paths against `base`.
    pub fn load(&self, base: &Path, what: &str) -> Result<Identity, ConfigError> {
        if let Some(p12) = &self.p12 {
            let password = match (&self.p12_password_env, &self.p12_password) {
                (Some(var), _) => std::env::var(var).map_err(|_| {
                    ConfigError::Invalid(format!(
                        "[{what}] p12_password_env: variable {var} is not set"
                    ))
                })?,
                (None, Some(p)) => p.clone(),
                (None, None) => String::new(),
            };
            return Ok(Identity::from_pkcs12_file(&base.join(p12), &password)?);
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                Ok(Identity::from_pem_files(&base.join(cert), &base.join(key))?)
            }
            _ => Err(ConfigError::Invalid(format!(
                "[{what}] needs either p12, or cert and key"
            ))),
        }
    }
}

impl ClientConfig {
    /// Reads and parses `path` (no environment overrides).
    pub fn load(path: &Path) -> Result<ClientConfig, ConfigError> {
        ClientConfig::load_with(Some(path), &|_| None)
    }

    /// Reads `path` (if any) and applies the `FSE_<SECTION>_<KEY>` environment overrides of
    /// this process. Without a file, the environment alone must give the required keys;
    /// relative paths are then resolved against the current directory.
    pub fn load_with_env(path: Option<&Path>) -> Result<ClientConfig, ConfigError> {
        ClientConfig::load_with(path, &|name| std::env::var(name).ok())
    }

    /// Like [`ClientConfig::load_with_env`] with `lookup` standing for the environment.
    pub fn load_with(
        path: Option<&Path>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ClientConfig, ConfigError> {
        let shown = path.map_or_else(|| PathBuf::from("(environment)"), Path::to_owned);
        let syntax = |message: String| ConfigError::Syntax {
            path: shown.clone(),
            message,
        };
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                path: path.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        let mut table = text
            .parse::<toml::Table>()
            .map_err(|e| syntax(e.to_string()))?;
        let applied = apply_env(&mut table, lookup)?;
        let mut config: ClientConfig = if applied.is_empty() {
            // The file alone: its own text gives the errors their line numbers.
            toml::from_str(&text).map_err(|e| syntax(e.to_string()))?
        } else {
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| syntax(e.to_string()))?
        };
        config.base_dir = match path {
            Some(p) => p.parent().map(Path::to_owned).unwrap_or_default(),
            None => std::env::current_dir().unwrap_or_default(),
        };
        Ok(config)
    }

    /// TOML text of this configuration.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// The JWT audience.
    pub fn audience(&self) -> String {
        self.gateway
            .audience
            .clone()
            .unwrap_or_else(|| format!("{}/v1", self.gateway.base_url.trim_end_matches('/')))
    }
}

/// What `fse config check` shows of a certificate (never a key or password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateInfo {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Not valid after, RFC 3339.
    pub not_after: String,
    /// Whole days left (negative when expired).
    pub days_left: i64,
}

impl CertificateInfo {
    /// Reads a DER certificate.
    pub fn of(der: &[u8]) -> Result<CertificateInfo, ConfigError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| ConfigError::Invalid(format!("certificate not readable: {e}")))?;
        let not_after = cert.validity().not_after.to_datetime();
        let now = time::OffsetDateTime::now_utc();
        Ok(CertificateInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_after: not_after
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            days_left: (not_after - now).whole_days(),
        })
    }
}

impl ClientConfig {
    /// The leaf certificate of `[tls]` (or `[signer]`, `what = "signer"`), loaded and described.
    pub fn describe_identity(&self, what: &str) -> Result<CertificateInfo, ConfigError> {
        let section = if what == "signer" {
            &self.signer
        } else {
            &self.tls
        };
        let identity = section.load(&self.base_dir, what)?;
        CertificateInfo::of(identity.leaf())
    }

    /// The CA roots of `[gateway] ca`, described.
    pub fn describe_ca(&self) -> Result<Vec<CertificateInfo>, ConfigError> {
        let ca = self.gateway.ca.as_ref().ok_or_else(|| {
            ConfigError::Invalid("[gateway] ca: the CA bundle to trust is required".into())
        })?;
        crate::tls::load_certs(&self.base_dir.join(ca))?
            .iter()
            .map(|c| CertificateInfo::of(c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const FILE: &str = r#"
[gateway]
base_url = "https://127.0.0.1:8443"
ca = "ca.pem"

[tls]
p12 = "client.p12"
p12_password = "s3cret-pass"

[signer]
cert = "signer.pem"
key = "signer.key"

[profile]
subject = "RSSMRA80A01D612X^^^&2.16.840.1.113883.2.9.4.3.2&ISO"
subject_role = "AAS"
person_id = "X"
locality = "L"
subject_organization_id = "090"
subject_organization = "Regione Toscana"
patient_consent = true
subject_application_id = "fse"
subject_application_vendor = "fse"
subject_application_version = "0.1.0"

[publication]
identificativo_rep = "1.2.3"
"#;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("fse.toml");
        std::fs::write(&path, text).unwrap();
        (tmp, path)
    }

    #[test]
    fn new_sections_default_and_env_overrides_every_kind() {
        let (_tmp, path) = write(FILE);
        let plain = ClientConfig::load(&path).unwrap();
        assert_eq!(plain.publication.identificativo_rep, "1.2.3");
        assert_eq!(
            plain.publication.tipologia_struttura,
            TipologiaStruttura::Ospedale
        );
        assert_eq!(plain.batch, BatchSection::default());
        assert_eq!(plain.rules.dir, None);
        let env: HashMap<&str, &str> = [
            ("FSE_GATEWAY_URL", "https://cart.example/fse"),
            ("FSE_GATEWAY_MAX_ATTEMPTS", "5"),
            ("FSE_PROFILE_SUBJECT_ROLE", "APR"),
            ("FSE_PROFILE_SUBJECT_ORGANIZATION_ID", "090"),
            ("FSE_PROFILE_PATIENT_CONSENT", "false"),
            ("FSE_PUBLICATION_IDENTIFICATIVO_REP", "9.9.9"),
            ("FSE_PUBLICATION_TIPO_ATTIVITA_CLINICA", "CON"),
            (
                "FSE_PUBLICATION_ATTI_CLINICI_REGOLE_ACCESSO",
                "P99, J07BX03",
            ),
            ("FSE_BATCH_RATE", "7.5"),
            ("FSE_BATCH_JOBS", "3"),
            ("FSE_RULES_DIR", "/rules"),
            ("FSE_TLS_P12_PASSWORD", "from-env"),
        ]
        .into_iter()
        .collect();
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        let c = ClientConfig::load_with(Some(&path), &lookup).unwrap();
        assert_eq!(c.gateway.base_url, "https://cart.example/fse");
        assert_eq!(c.gateway.max_attempts, 5);
        assert_eq!(c.profile.subject_role, "APR");
        assert_eq!(c.profile.subject_organization_id, "090", "kept as text");
        assert!(!c.profile.patient_consent);
        assert_eq!(c.publication.identificativo_rep, "9.9.9");
        assert_eq!(
            c.publication.tipo_attivita_clinica,
            TipoAttivitaClinica::Con
        );
        assert_eq!(
            c.publication.atti_clinici_regole_accesso,
            Some(vec!["P99".to_owned(), "J07BX03".to_owned()])
        );
        assert_eq!(c.batch.rate, Some(7.5));
        assert_eq!(c.batch.jobs, Some(3));
        assert_eq!(c.rules.dir, Some(PathBuf::from("/rules")));
        assert_eq!(c.tls.p12_password.as_deref(), Some("from-env"));
        // Every key has its variable, named by the rule.
        assert_eq!(
            env_var_name("publication", "identificativo_rep"),
            "FSE_PUBLICATION_IDENTIFICATIVO_REP"
        );
        assert!(env_var_names().len() >= 36);
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let (_tmp, path) = write(FILE);
        let c = ClientConfig::load(&path).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret-pass"), "{debug}");
        assert!(debug.contains("<redacted>"));
        let lookup = |k: &str| (k == "FSE_GATEWAY_TIMEOUT_SECONDS").then(|| "soon".to_owned());
        let e = ClientConfig::load_with(Some(&path), &lookup).unwrap_err();
        assert!(e.to_string().contains("FSE_GATEWAY_TIMEOUT_SECONDS"), "{e}");
        // An unknown key in the file keeps its line number; env alone can make a config.
        let (_t2, bad) = write(&FILE.replace("[publication]", "[publication]\ncolour = 1"));
        let e = ClientConfig::load(&bad).unwrap_err().to_string();
        assert!(e.contains("colour") && e.contains("line"), "{e}");
        let e = ClientConfig::load_with(None, &|_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("gateway"), "{e}");
    }

    #[test]
    fn sandbox_style_literal_round_trips_through_toml() {
        let c = ClientConfig {
            gateway: GatewaySection {
                base_url: "https://x".into(),
                ..GatewaySection::default()
            },
            ..ClientConfig::default()
        };
        let text = c.to_toml().unwrap();
        assert!(
            !text.contains("[batch]") && !text.contains("[rules]"),
            "{text}"
        );
        let (_tmp, path) = write(&text);
        let back = ClientConfig::load(&path).unwrap();
        assert_eq!(back.gateway, c.gateway);
        assert_eq!(back.publication, c.publication);
    }
}
