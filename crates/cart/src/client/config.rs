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

/// Which gateway a configuration template is for (`fse config init --env`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// The test ("validazione") gateway, reached through CART's test endpoint.
    Staging,
    /// The production gateway, through CART's production endpoint.
    Production,
}

/// What a template leaves for the user to fill in; [`ClientConfig::problems`] reports every
/// value still holding it.
pub const PLACEHOLDER: &str = "CHANGE-ME";

/// A commented `fse.toml` for `env`: every key, what it is for and which certificate goes
/// where. It loads as it is; its placeholders (paths to the certificates, the caller's
/// identity, the CART URL) are what `fse config check` then reports.
pub fn template(env: Environment) -> String {
    let (name, national) = match env {
        Environment::Staging => (
            "staging (the gateway's test system)",
            "https://modipa-val.fse.salute.gov.it/govway/rest/in/FSE/gateway",
        ),
        Environment::Production => (
            "production",
            "https://modipa.fse.salute.gov.it/govway/rest/in/FSE/gateway",
        ),
    };
    let roles = crate::api::SubjectRole::ALL
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    TEMPLATE
        .replace("{ENV}", name)
        .replace("{NATIONAL}", national)
        .replace("{ROLES}", &roles)
        .replace("{P}", PLACEHOLDER)
}

const TEMPLATE: &str = r#"# fse client configuration: {ENV}.
# Written by `fse config init`. Fill in every {P}, then run `fse --config THIS_FILE config check`:
# it lists every problem it finds at once. Relative paths are read from this file's folder.
# Every key can be overridden by an environment variable FSE_<SECTION>_<KEY> (`fse config env`).

[gateway]
# The CART endpoint of the FSE gateway given to you by Regione Toscana (with its path prefix,
# without /v1). CART forwards to the national gateway, {NATIONAL}/v1.
base_url = "https://{P}.cart.example/fse/gateway"
# JWT `aud`: defaults to base_url + "/v1"; set it if CART tells you another audience.
# audience = "https://{P}/v1"
# PEM bundle of the CA roots trusted for the SERVER certificate of CART (nothing else is
# trusted). For a CART certificate from a public CA, the system bundle will do.
ca = "/etc/ssl/certs/ca-certificates.crt"
timeout_seconds = 120
connect_timeout_seconds = 10
# Attempts of the calls safe to repeat (validation, status); publications are sent once.
max_attempts = 3
# Lifetime of each JWT, seconds.
token_ttl_seconds = 300

[tls]
# The CART CLIENT certificate (mutual TLS): issued to your organisation for CART.
# Either a PEM certificate chain and its key...
cert = "{P}/cart-client.pem"
key = "{P}/cart-client.key"
# ...or a PKCS#12 file, its password in an environment variable (never in this file):
# p12 = "{P}/cart-client.p12"
# p12_password_env = "FSE_TLS_PASSWORD"

[signer]
# The certificate that signs the two JWTs of every call (the "S1" signature certificate
# registered for the gateway; RSA, RS256). Batches also sign the PDFs (PAdES) with it: if
# your document signer is another certificate, sign the PDFs with `fse pdf sign` first.
cert = "{P}/signer.pem"
key = "{P}/signer.key"
# or: p12 = "signer.p12" and p12_password_env = "FSE_SIGNER_PASSWORD"

[profile]
# The JWT claims of the caller (spec "INTERFACCE REST Gateway", table of the claims).
# sub: the user's fiscal code, CX: CF^^^&2.16.840.1.113883.2.9.4.3.2&ISO
subject = "{P}^^^&2.16.840.1.113883.2.9.4.3.2&ISO"
# Role table: {ROLES}
subject_role = "AAS"
# The patient's id, CX like `subject` (a batch uses each document's patient instead).
person_id = "{P}^^^&2.16.840.1.113883.2.9.4.3.2&ISO"
# The user's facility, XON: NAME^^^^^&OID&ISO^^^^CODE, e.g. a hospital of the HSP catalog:
# OSPEDALE DI PROVA^^^^^&2.16.840.1.113883.2.9.4.1.2&ISO^^^^090999
locality = "{P}^^^^^&2.16.840.1.113883.2.9.4.1.2&ISO^^^^{P}"
# Organisation table: the region code and its name, as the gateway spells them.
subject_organization_id = "090"
subject_organization = "Regione Toscana"
patient_consent = true
# The application as registered with the gateway.
subject_application_id = "{P}"
subject_application_vendor = "{P}"
subject_application_version = "{P}"

[publication]
# Defaults of the publication metadata (a NAME.meta.json beside a document overrides them).
tipologia_struttura = "Ospedale"
assetto_organizzativo = "AD_PSC001"
tipo_attivita_clinica = "PHR"
identificativo_rep = "2.16.840.1.113883.2.9.2.90.4.5.1"
# tipo_documento_liv_alto = "REF"   # by document type when absent
# atti_clinici_regole_accesso = ["P99"]

[batch]
# jobs = 4      # documents in parallel
# rate = 5.0    # most gateway calls per second (0: unbounded)

[rules]
# The Ministry's CDA rule files (xsd/, schematron/, terminology/) to validate before sending.
# dir = "{P}/rules"

[cart.apis]
# Other CART services reachable with the [tls] identity (`fse cart call NAME`):
# piano-terapeutico = "https://{P}/pt/v1"
"#;

/// One thing wrong with a configuration, found by [`ClientConfig::problems`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    /// `[section] key` (or `[section]`).
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
    /// A doubt rather than a certain refusal: a fiscal code's check character (the gateway's
    /// own check of it is not documented).
    pub warning: bool,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// The CA bundle of `[gateway] ca`, summarised in one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaSummary {
    /// The bundle's path.
    pub path: String,
    /// Certificates loaded.
    pub roots: usize,
    /// Of which expired.
    pub expired: usize,
    /// The certificate when the bundle holds exactly one.
    pub only: Option<CertificateInfo>,
}

impl std::fmt::Display for CaSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.only {
            Some(c) => write!(f, "{} ({}, expires {})", self.path, c.subject, c.not_after),
            None => write!(
                f,
                "{}: {} roots loaded{}",
                self.path,
                self.roots,
                if self.expired > 0 {
                    format!(" ({} expired)", self.expired)
                } else {
                    String::new()
                }
            ),
        }
    }
}

impl ClientConfig {
    /// The CA bundle of `[gateway] ca`, summarised.
    pub fn ca_summary(&self) -> Result<CaSummary, ConfigError> {
        let roots = self.describe_ca()?;
        let path = self.gateway.ca.as_deref().unwrap_or(Path::new(""));
        Ok(CaSummary {
            path: self.base_dir.join(path).display().to_string(),
            roots: roots.len(),
            expired: roots.iter().filter(|c| c.days_left < 0).count(),
            only: (roots.len() == 1).then(|| roots[0].clone()),
        })
    }

    /// Every problem of this configuration that can be found without the network: the CA
    /// bundle, both identities (files, password, key ↔ certificate, expiry, an RSA key for
    /// the JWTs) and the claims of `[profile]` against the gateway's tables (roles,
    /// organisation id ↔ name, XON locality, CX fiscal codes with their check character),
    /// plus any value still holding the template's [`PLACEHOLDER`].
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        let mut add = |key: &str, message: String| {
            out.push(ConfigProblem {
                key: key.to_owned(),
                message,
                warning: false,
            })
        };
        let g = &self.gateway;
        if g.base_url.contains(PLACEHOLDER) {
            add(
                "[gateway] base_url",
                format!(
                    "{:?}: still the template's placeholder: the CART URL of the gateway",
                    g.base_url
                ),
            );
        } else if !g.base_url.starts_with("https://") {
            add(
                "[gateway] base_url",
                format!("{:?} is not an https:// URL", g.base_url),
            );
        }
        match self.ca_summary() {
            Ok(ca) if ca.roots == ca.expired => add(
                "[gateway] ca",
                format!("{}: every certificate has expired", ca.path),
            ),
            Ok(_) => {}
            Err(e) => add("[gateway] ca", e.to_string()),
        }
        for what in ["tls", "signer"] {
            let key = format!("[{what}]");
            let section = if what == "tls" {
                &self.tls
            } else {
                &self.signer
            };
            let identity = match section.load(&self.base_dir, what) {
                Ok(identity) => identity,
                Err(e) => {
                    add(&key, e.to_string());
                    continue;
                }
            };
            let file = section.cert.as_ref().or(section.p12.as_ref());
            let file = file.map_or_else(|| key.clone(), |f| f.display().to_string());
            if let Err(e) = identity.check_key_matches(&file) {
                add(&key, e.to_string());
            }
            match CertificateInfo::of(identity.leaf()) {
                Ok(c) if c.days_left < 0 => add(
                    &key,
                    format!("the certificate {} expired on {}", c.subject, c.not_after),
                ),
                Ok(_) => {}
                Err(e) => add(&key, e.to_string()),
            }
            if what == "signer" {
                if let Err(e) = crate::jwt::Signer::new(&identity) {
                    add(&key, format!("cannot sign the JWTs (RS256): {e}"));
                }
            }
        }
        for (key, value, problem, warning) in self.profile_problems() {
            out.push(ConfigProblem {
                key: format!("[profile] {key}"),
                message: format!("{value:?}: {problem}"),
                warning,
            });
        }
        out
    }

    /// The claims of `[profile]` the gateway would refuse: (key, value, why, only a doubt).
    fn profile_problems(&self) -> Vec<(&'static str, String, String, bool)> {
        let p = &self.profile;
        let mut out: Vec<(&'static str, String, String, bool)> = Vec::new();
        let texts = [
            ("subject", &p.subject),
            ("subject_role", &p.subject_role),
            ("person_id", &p.person_id),
            ("locality", &p.locality),
            ("subject_organization_id", &p.subject_organization_id),
            ("subject_organization", &p.subject_organization),
            ("subject_application_id", &p.subject_application_id),
            ("subject_application_vendor", &p.subject_application_vendor),
            (
                "subject_application_version",
                &p.subject_application_version,
            ),
        ];
        for (key, value) in texts {
            if value.contains(PLACEHOLDER) {
                out.push((
                    key,
                    value.clone(),
                    "still the template's placeholder".into(),
                    false,
                ));
            } else if value.trim().is_empty() {
                out.push((key, value.clone(), "empty".into(), false));
            }
        }
        let unfilled: Vec<&str> = out.iter().map(|(k, _, _, _)| *k).collect();
        let filled = |key: &str| !unfilled.contains(&key);
        for (key, value) in [("subject", &p.subject), ("person_id", &p.person_id)] {
            if filled(key) {
                if !crate::jwt::is_cx_fiscal_code(value) {
                    let why = "not CF^^^&2.16.840.1.113883.2.9.4.3.2&ISO".to_owned();
                    out.push((key, value.clone(), why, false));
                } else if let Err(why) = check_fiscal_code(value) {
                    out.push((key, value.clone(), why, true));
                }
            }
        }
        if filled("subject_role") && p.subject_role.parse::<crate::api::SubjectRole>().is_err() {
            out.push((
                "subject_role",
                p.subject_role.clone(),
                "not in the gateway's role table (AAS, APR, ...: see `fse config init`)".into(),
                false,
            ));
        }
        if filled("subject_organization_id") {
            match crate::api::organization_name(&p.subject_organization_id) {
                None => out.push((
                    "subject_organization_id",
                    p.subject_organization_id.clone(),
                    "not in the gateway's organisation table (090 is Regione Toscana)".into(),
                    false,
                )),
                Some(name) if filled("subject_organization") && name != p.subject_organization => {
                    out.push((
                        "subject_organization",
                        p.subject_organization.clone(),
                        format!(
                            "the gateway's name of {} is {name:?}",
                            p.subject_organization_id
                        ),
                        false,
                    ))
                }
                Some(_) => {}
            }
        }
        if filled("locality") && !crate::jwt::is_xon(&p.locality) {
            out.push((
                "locality",
                p.locality.clone(),
                "not XON (NAME^^^^^&OID&ISO^^^^CODE): the gateway refuses create, replace, \
                 update and delete"
                    .into(),
                false,
            ));
        }
        out
    }
}

/// Whether the code of a CX id with the fiscal-code OID is a valid fiscal code (check
/// character included); 11-digit temporary codes are taken as they are.
fn check_fiscal_code(value: &str) -> Result<(), String> {
    let code = value.split('^').next().unwrap_or_default();
    if code.len() == 11 && code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    fse_cda::build::types::FiscalCode::try_from(code.to_owned()).map(drop)
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
