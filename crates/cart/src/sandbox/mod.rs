//! `fse sandbox`: a local stand-in for CART + the national FSE gateway, for offline
//! development and for this project's client tests.
//!
//! - [`init`] writes a test PKI ([`identities`]) and a client `fse.toml` into a directory;
//! - [`Sandbox::start`] / [`serve`] run the gateway over rustls, requiring a client
//!   certificate from the sandbox CA and the JWT pair signed by a certificate of the same CA;
//! - state (remembered validations, documents, transaction events, every `X-CART-id` sent)
//!   lives in SQLite in the directory ([`store`]), so restarts keep it.
//!
//! The gateway's checks ([`gateway`] lists their order and the statuses): both JWTs, the
//! JWT↔CDA coherence, PAdES verification through `fse-pades` ([`PadesInspector`]) and CDA
//! validation behind the [`checks`] traits: `fse sandbox serve` validates with the rules
//! built into `fse-cda` ([`RulesValidator::builtin`]), or the official ones with `--rules DIR`
//! ([`RulesValidator::load`]), or not at all with `--accept-any-cda` ([`AcceptAllCda`], also
//! the library default of [`ServeOptions::new`]). A `VALIDATION` is remembered by the hash of
//! its CDA with `legalAuthenticator` blanked for [`ServeOptions::validation_ttl`] (5 days).

pub mod checks;
pub mod gateway;
pub mod identities;
pub mod server;
pub mod store;

pub use checks::{
    AcceptAllCda, BasicPdfInspector, CdaValidator, CdaVerdict, PadesInspector, PdfInspector,
    RulesValidator, SignatureVerdict,
};
pub use gateway::{Gateway, GatewayOptions};
pub use server::Faults;
pub use store::{CartLogEntry, Store};

use crate::client::config::{ClientConfig, GatewaySection, IdentitySection};
use crate::jwt::{RequestProfile, Verifier};
use crate::tls::{load_certs, Identity};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Client configuration file `init` writes.
pub const CONFIG_FILE: &str = "fse.toml";

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

/// Errors of the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// File system.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Generating the PKI.
    #[error(transparent)]
    Identity(#[from] identities::IdentityError),
    /// Loading the PKI.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// TLS configuration.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// The configuration file.
    #[error(transparent)]
    Config(#[from] crate::client::config::ConfigError),
    /// The database.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// JWT verifier setup.
    #[error(transparent)]
    Jwt(#[from] crate::jwt::JwtError),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The claim profile `init` writes: a fictitious doctor of a fictitious Tuscan hospital.
pub fn sandbox_profile() -> RequestProfile {
    RequestProfile {
        subject: "RSSMRA80A01D612X^^^&2.16.840.1.113883.2.9.4.3.2&ISO".into(),
        subject_role: "AAS".into(),
        // The patient of the accreditation kit's sample documents, so that they pass the
        // gateway's JWT↔CDA coherence check out of the box.
        person_id: "GTWGWY82B42G920M^^^&2.16.840.1.113883.2.9.4.3.2&ISO".into(),
        locality: "OSPEDALE DI PROVA^^^^^&2.16.840.1.113883.2.9.4.1.2&ISO^^^^090999".into(),
        subject_organization_id: "090".into(),
        subject_organization: "Regione Toscana".into(),
        patient_consent: true,
        subject_application_id: "fse".into(),
        subject_application_vendor: "fse".into(),
        subject_application_version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// The client configuration for a sandbox listening on `addr` with path `prefix`.
pub fn client_config(addr: SocketAddr, prefix: &str, dir: &Path) -> ClientConfig {
    let base_url = format!("https://{addr}{prefix}");
    ClientConfig {
        gateway: GatewaySection {
            audience: Some(format!("{base_url}/v1")),
            base_url,
            ca: Some("ca.pem".into()),
            timeout_seconds: 120,
            connect_timeout_seconds: 10,
            max_attempts: 3,
            token_ttl_seconds: 300,
        },
        tls: IdentitySection {
            cert: Some("client.pem".into()),
            key: Some("client.key".into()),
            ..Default::default()
        },
        signer: IdentitySection {
            cert: Some("signer.pem".into()),
            key: Some("signer.key".into()),
            ..Default::default()
        },
        profile: sandbox_profile(),
        base_dir: dir.to_owned(),
        ..ClientConfig::default()
    }
}

/// Creates `dir` (if needed) with the test PKI, `fse.toml` for `listen` and an empty database.
pub fn init(dir: &Path, listen: SocketAddr) -> Result<(), SandboxError> {
    init_with_prefix(dir, listen, "")
}

/// As [`init`], with the API under `prefix` (e.g. `/govway/rest/in/FSE/gateway`, as the real
/// base URL has): the sandbox then serves `https://ADDR{prefix}/v1/…` and 404s elsewhere.
pub fn init_with_prefix(dir: &Path, listen: SocketAddr, prefix: &str) -> Result<(), SandboxError> {
    let prefix = prefix.trim_end_matches('/');
    if !prefix.is_empty() && (!prefix.starts_with('/') || prefix.contains(['?', '#', ' '])) {
        return Err(SandboxError::Other(format!(
            "prefix {prefix:?} must be a path starting with /"
        )));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    identities::write_identities(dir)?;
    let config = client_config(listen, prefix, dir);
    let path = dir.join(CONFIG_FILE);
    let header = "# Client configuration for `fse --config` against the local sandbox (fse sandbox serve).\n\
                  # Test identities only: never use these files with the real gateway.\n\n";
    std::fs::write(&path, format!("{header}{}", config.to_toml()?)).map_err(io(&path))?;
    Store::open(dir)?;
    Ok(())
}

/// How to run a sandbox.
#[derive(Clone)]
pub struct ServeOptions {
    /// The directory `init` prepared.
    pub dir: PathBuf,
    /// Listen address; default: the one in `DIR/fse.toml`.
    pub listen: Option<SocketAddr>,
    /// Fault injection.
    pub faults: Faults,
    /// Delay of `CRASH_TIMEOUT_`.
    pub crash_timeout_delay: Duration,
    /// How long a `VALIDATION` is remembered (default 5 days, as the gateway).
    pub validation_ttl: Duration,
    /// Refuse a JWT whose `person_id` / `resource_hl7_type` disagree with the CDA, as the
    /// gateway does (403 `/msg/jwt-validation`). `fse sandbox serve` always checks it; the
    /// library default is off for now because [`crate::client::GatewayClient`] signs every
    /// document with the one `person_id` of its profile, so batches of several patients
    /// would be refused.
    pub jwt_cda_coherence: bool,
    /// CDA validator (default [`AcceptAllCda`]; the CLI uses the built-in rules).
    pub validator: Arc<dyn CdaValidator>,
    /// PDF inspector (placeholder default).
    pub inspector: Arc<dyn PdfInspector>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("dir", &self.dir)
            .field("listen", &self.listen)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl ServeOptions {
    /// Defaults for `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> ServeOptions {
        ServeOptions {
            dir: dir.into(),
            listen: None,
            faults: Faults::default(),
            crash_timeout_delay: Duration::from_secs(2),
            validation_ttl: Duration::from_secs(store::VALIDATION_TTL_SECONDS as u64),
            jwt_cda_coherence: false,
            validator: Arc::new(AcceptAllCda),
            inspector: Arc::new(PadesInspector),
        }
    }
}

/// A sandbox ready to accept connections.
struct Prepared {
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    gateway: Arc<Gateway>,
    addr: SocketAddr,
    base_url: String,
}

async fn prepare(options: &ServeOptions) -> Result<Prepared, SandboxError> {
    let dir = &options.dir;
    let config = ClientConfig::load(&dir.join(CONFIG_FILE))?;
    let url = reqwest::Url::parse(&config.gateway.base_url)
        .map_err(|e| SandboxError::Other(format!("{CONFIG_FILE}: base_url: {e}")))?;
    let prefix = url.path().trim_end_matches('/').to_owned();
    let listen = match options.listen {
        Some(addr) => addr,
        None => {
            let host = url.host_str().unwrap_or("127.0.0.1");
            let port = url.port().unwrap_or(443);
            (host, port)
                .to_socket_addrs()
                .map_err(io(dir))?
                .next()
                .ok_or_else(|| {
                    SandboxError::Other(format!("{CONFIG_FILE}: cannot resolve {host}"))
                })?
        }
    };
    let ca = load_certs(&dir.join("ca.pem"))?;
    let server = Identity::from_pem_files(&dir.join("server.pem"), &dir.join("server.key"))?;
    let tls = Arc::new(server::tls_config(&ca, server.chain, server.key)?);
    let listener = server::bind(listen).await.map_err(io(dir))?;
    let addr = listener.local_addr().map_err(io(dir))?;
    let base_url = format!("https://{addr}{prefix}");
    let verifier = Verifier::new(&ca, format!("{base_url}/v1"))?;
    let store = Store::open(dir)?;
    let gateway = Gateway::new(
        GatewayOptions {
            prefix,
            crash_timeout_delay: options.crash_timeout_delay,
            validation_ttl: options.validation_ttl,
            jwt_cda_coherence: options.jwt_cda_coherence,
        },
        verifier,
        store,
        options.validator.clone(),
        options.inspector.clone(),
    );
    Ok(Prepared {
        listener,
        tls,
        gateway: Arc::new(gateway),
        addr,
        base_url,
    })
}

/// Runs the sandbox until `shutdown` resolves; `ready` gets the base URL once listening.
pub async fn serve(
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()>,
    ready: impl FnOnce(&str),
) -> Result<(), SandboxError> {
    let p = prepare(&options).await?;
    ready(&p.base_url);
    server::run(p.listener, p.tls, p.gateway, options.faults, shutdown).await;
    Ok(())
}

/// A sandbox running on its own thread (for tests and benchmarks); stops on drop.
pub struct Sandbox {
    addr: SocketAddr,
    base_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Starts a sandbox and returns once it listens.
    pub fn start(options: ServeOptions) -> Result<Sandbox, SandboxError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(io(&options.dir))?;
        let prepared = runtime.block_on(prepare(&options))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let addr = prepared.addr;
        let base_url = prepared.base_url.clone();
        let faults = options.faults.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(server::run(
                prepared.listener,
                prepared.tls,
                prepared.gateway,
                faults,
                async {
                    let _ = stopped.await;
                },
            ));
        });
        Ok(Sandbox {
            addr,
            base_url,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://ADDR` + prefix (without `/v1`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The JWT audience it accepts.
    pub fn audience(&self) -> String {
        format!("{}/v1", self.base_url)
    }

    /// Stops and waits for the server thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Every `X-CART-id` the sandbox of `dir` has sent, oldest first.
pub fn cart_log(dir: &Path) -> Result<Vec<CartLogEntry>, SandboxError> {
    Ok(Store::open(dir)?.cart_log()?)
}

/// Runs the sandbox on a fresh runtime until Ctrl-C (for the CLI).
pub fn serve_until_ctrl_c(
    options: ServeOptions,
    ready: impl FnOnce(&str),
) -> Result<(), SandboxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io(&options.dir))?;
    runtime.block_on(serve(
        options,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
        ready,
    ))
}
