//! `fse config check`: loads the configuration (`--config FILE` and the `FSE_<SECTION>_<KEY>`
//! environment overrides), shows the identities it names (subject, issuer, expiry; never a
//! key or password) and makes one status call to the gateway to report reachability and the
//! `X-CART-id` of the answer.
//!
//! Exit codes: 0 identities load and the gateway answered, 1 an identity is expired or the
//! gateway did not answer, 2 the configuration itself is unusable.

use super::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};
use clap::{Args, Subcommand, ValueEnum};
use fse_cart::client::config::{env_var_names, CertificateInfo, ClientConfig};
use fse_cart::client::{ClientError, GatewayClient};
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Test the identities and reach the gateway (a status query; nothing is published).
    Check(CheckArgs),
    /// List the environment variables that override the configuration's keys.
    Env,
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
    ca: Result<Vec<CertificateInfo>, String>,
    tls: Result<CertificateInfo, String>,
    signer: Result<CertificateInfo, String>,
    reachable: bool,
    status: Option<u16>,
    x_cart_id: Option<String>,
    error: Option<String>,
}

pub fn run(cmd: ConfigCommand, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Env => {
            for name in env_var_names() {
                println!("{name}");
            }
            Ok(ExitCode::from(EXIT_OK))
        }
        ConfigCommand::Check(args) => check(args, config),
    }
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
        ca: cfg.describe_ca().map_err(|e| e.to_string()),
        tls: cfg.describe_identity("tls").map_err(|e| e.to_string()),
        signer: cfg.describe_identity("signer").map_err(|e| e.to_string()),
        reachable: false,
        status: None,
        x_cart_id: None,
        error: None,
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
    let expired = |c: &Result<CertificateInfo, String>| c.as_ref().is_ok_and(|c| c.days_left < 0);
    let ok = report.reachable
        && report.tls.is_ok()
        && report.signer.is_ok()
        && report.ca.is_ok()
        && !expired(&report.tls)
        && !expired(&report.signer);
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print_text(&report),
    }
    Ok(ExitCode::from(if ok { EXIT_OK } else { EXIT_INVALID }))
}

fn print_text(r: &Check) {
    println!("configuration: {}", r.config);
    if !r.overridden_by_env.is_empty() {
        println!("overridden by: {}", r.overridden_by_env.join(", "));
    }
    println!("gateway:       {}", r.gateway);
    let cert = |label: &str, c: &Result<CertificateInfo, String>| match c {
        Ok(c) => println!(
            "{label}{} (issuer {}), expires {} ({} days{})",
            c.subject,
            c.issuer,
            c.not_after,
            c.days_left,
            if c.days_left < 0 { ", EXPIRED" } else { "" }
        ),
        Err(e) => println!("{label}ERROR {e}"),
    };
    match &r.ca {
        Ok(roots) => {
            for c in roots {
                cert("CA:            ", &Ok(c.clone()));
            }
        }
        Err(e) => println!("CA:            ERROR {e}"),
    }
    cert("mTLS client:   ", &r.tls);
    cert("JWT signer:    ", &r.signer);
    match (r.reachable, &r.error) {
        (true, _) => println!(
            "reachable:     yes (HTTP {}, X-CART-id {})",
            r.status.map(|s| s.to_string()).unwrap_or_default(),
            r.x_cart_id.as_deref().unwrap_or("none")
        ),
        (false, Some(e)) => println!("reachable:     NO ({e})"),
        (false, None) => println!("reachable:     NO"),
    }
}
