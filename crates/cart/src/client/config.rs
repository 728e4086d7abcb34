//! The client configuration file (`fse.toml`): gateway URL and audience, CA roots, the mTLS
//! identity, the JWT signing identity and the caller's claim profile. Relative paths are
//! resolved against the file's directory.

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

/// An identity given as PEM pair or PKCS#12 (`[tls]`, `[signer]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Directory relative paths are resolved against (not serialised).
    #[serde(skip)]
    pub base_dir: PathBuf,
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
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<ClientConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut config: ClientConfig = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.base_dir = path.parent().map(Path::to_owned).unwrap_or_default();
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
