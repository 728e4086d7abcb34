//! `fse config check`: loads the configuration (`--config FILE` and the `FSE_<SECTION>_<KEY>`
//! environment overrides), shows the identities it names (subject, issuer, expiry; never a
//! key or password) and the CA bundle in one line, lists every problem it finds at once
//! (files, keys, expiry, the `[profile]` claims against the gateway's tables) and makes one
//! status call to the gateway to report reachability and the `X-CART-id` of the answer.
//!
//! Exit codes: 0 no problem and the gateway answered, 1 a problem or no answer, 2 the
//! configuration itself cannot be read.
//!
//! `fse config init --env staging|production [-o FILE]` writes a commented template.

use super::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};
use crate::outln;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use fse_cart::client::config::{
    env_var_names, template, CaSummary, CertificateInfo, ClientConfig, ConfigProblem, Environment,
};
use fse_cart::client::{ClientError, GatewayClient};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Test the identities and claims and reach the gateway (a status query; nothing is
    /// published). Every problem found is listed.
    Check(CheckArgs),
    /// List the environment variables that override the configuration's keys.
    Env,
    /// Write a commented configuration template (every key; which certificate goes where).
    Init(InitArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Env {
    /// The gateway's test system.
    Staging,
    /// Production.
    Production,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Which gateway the template is for.
    #[arg(long, value_enum)]
    env: Env,
    /// The file to write.
    #[arg(short, long, value_name = "FILE", default_value = "fse.toml")]
    output: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Serialize)]
struct Check {
    config: String,
    gateway: String,
    overridden_by_env: Vec<String>,
    ca: Result<CaSummary, String>,
    tls: Result<CertificateInfo, String>,
    signer: Result<CertificateInfo, String>,
    reachable: bool,
    status: Option<u16>,
    x_cart_id: Option<String>,
    error: Option<String>,
    problems: Vec<ConfigProblem>,
}

pub fn run(cmd: ConfigCommand, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Env => {
            for name in env_var_names() {
                outln!("{name}")?;
            }
            Ok(ExitCode::from(EXIT_OK))
        }
        ConfigCommand::Check(args) => check(args, config),
        ConfigCommand::Init(args) => init(args),
    }
}

fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let env = match args.env {
        Env::Staging => Environment::Staging,
        Env::Production => Environment::Production,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let shown = args.output.display();
    let mut file = match options.open(&args.output) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!("fse: error: {shown} already exists (use --force to overwrite it)");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        Err(e) => return Err(e).with_context(|| format!("{shown}: cannot create")),
    };
    file.write_all(template(env).as_bytes())
        .with_context(|| format!("{shown}: cannot write"))?;
    eprintln!(
        "fse: wrote {shown}: fill in every {}, then run `fse --config {shown} config check`",
        fse_cart::client::config::PLACEHOLDER
    );
    Ok(ExitCode::from(EXIT_OK))
}

fn check(args: CheckArgs, path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let cfg = match ClientConfig::load_with_env(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fse: error: configuration: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    // Names only: the values may be secrets.
    let overridden_by_env: Vec<String> = env_var_names()
        .into_iter()
        .filter(|n| std::env::var_os(n).is_some())
        .collect();
    let mut report = Check {
        config: path.map_or_else(|| "(environment)".into(), |p| p.display().to_string()),
        gateway: cfg.gateway.base_url.clone(),
        overridden_by_env,
        ca: cfg.ca_summary().map_err(|e| e.to_string()),
        tls: cfg.describe_identity("tls").map_err(|e| e.to_string()),
        signer: cfg.describe_identity("signer").map_err(|e| e.to_string()),
        reachable: false,
        status: None,
        x_cart_id: None,
        error: None,
        problems: cfg.problems(),
    };
    match GatewayClient::from_config(&cfg) {
        Ok(client) => {
            let client = client.with_max_attempts(1);
            // A workflow id that cannot exist: any HTTP answer (404 expected) proves the
            // TLS handshake, the JWTs' acceptance by CART and the route.
            match client.status("fse-config-check") {
                Ok(reply) => {
                    report.reachable = true;
                    report.status = Some(reply.status);
                    report.x_cart_id = reply.x_cart_id.clone();
                }
                Err(ClientError::Unexpected {
                    status, x_cart_id, ..
                }) => {
                    report.reachable = true;
                    report.status = Some(status);
                    report.x_cart_id = x_cart_id;
                }
                Err(e) => report.error = Some(e.to_string()),
            }
        }
        Err(e) => report.error = Some(e.to_string()),
    }
    let ok = report.reachable && report.problems.iter().all(|p| p.warning);
    match args.format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&report)?)?,
        Format::Text => super::write_stdout(text(&report).as_bytes())?,
    }
    Ok(ExitCode::from(if ok { EXIT_OK } else { EXIT_INVALID }))
}

fn text(r: &Check) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("configuration: {}", r.config));
    if !r.overridden_by_env.is_empty() {
        line(format!("overridden by: {}", r.overridden_by_env.join(", ")));
    }
    line(format!("gateway:       {}", r.gateway));
    line(match &r.ca {
        Ok(ca) => format!("CA:            {ca}"),
        Err(e) => format!("CA:            ERROR {e}"),
    });
    let cert = |label: &str, c: &Result<CertificateInfo, String>| match c {
        Ok(c) => format!(
            "{label}{} (issuer {}), expires {} ({} days{})",
            c.subject,
            c.issuer,
            c.not_after,
            c.days_left,
            if c.days_left < 0 { ", EXPIRED" } else { "" }
        ),
        Err(e) => format!("{label}ERROR {e}"),
    };
    line(cert("mTLS client:   ", &r.tls));
    line(cert("JWT signer:    ", &r.signer));
    line(match (r.reachable, &r.error) {
        (true, _) => format!(
            "reachable:     yes (HTTP {}, X-CART-id {})",
            r.status.map(|s| s.to_string()).unwrap_or_default(),
            r.x_cart_id.as_deref().unwrap_or("none")
        ),
        (false, Some(e)) => format!("reachable:     NO ({e})"),
        (false, None) => "reachable:     NO".to_owned(),
    });
    for (label, warning) in [("problems:      ", false), ("warnings:      ", true)] {
        let listed: Vec<&ConfigProblem> =
            r.problems.iter().filter(|p| p.warning == warning).collect();
        match listed.len() {
            0 if warning => {}
            0 => line(format!("{label}none")),
            n => {
                line(format!("{label}{n}"));
                for p in listed {
                    line(format!("  {p}"));
                }
            }
        }
    }
    out
}
