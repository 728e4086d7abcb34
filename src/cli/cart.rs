//! `fse cart call API --method M --path P [--json FILE]`: one call to any CART service
//! reachable with the configured mTLS identity (the Regione Toscana therapeutic-plan APIs
//! among them). API is a name of the configuration's `[cart.apis]` table or a base URL.
//! The call is journaled (operation `cart-call`, intent before, outcome with its
//! `X-CART-id` after) in the journal next to `--config` (or `--journal FILE`); the outcome is
//! printed as JSON like `fse gateway`.
//!
//! Exit codes: 0 a 2xx answer, 1 another answer, 2 usage, input, or no answer.

use super::batch::journal_path;
use super::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};
use anyhow::{anyhow, Context};
use clap::{Args, Subcommand};
use fse_cart::client::config::ClientConfig;
use fse_cart::client::{ClientError, GatewayClient};
use fse_cart::journal::{Journal, Outcome};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum CartCommand {
    /// Call another CART service: METHOD on the API's base URL + PATH.
    Call(CallArgs),
}

#[derive(Debug, Args)]
pub struct CallArgs {
    /// A name of `[cart.apis]` in the configuration, or a base URL (https://…).
    api: String,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// Path under the API's base URL.
    #[arg(long)]
    path: String,
    /// JSON request body.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Journal database (default: fse-journal.sqlite next to --config).
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
}

#[derive(Serialize)]
struct Printed<'a> {
    operation: &'static str,
    api: &'a str,
    method: &'a str,
    path: &'a str,
    status: u16,
    accepted: bool,
    x_cart_id: Option<&'a str>,
    trace_id: Option<&'a str>,
    span_id: Option<&'a str>,
    workflow_instance_id: Option<&'a str>,
    journal_call_id: i64,
    response: &'a serde_json::Value,
}

pub fn run(cmd: CartCommand, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let CartCommand::Call(args) = cmd;
    let Some(config_path) = config else {
        eprintln!("fse: error: `fse cart call` needs --config FILE (or FSE_CONFIG)");
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let cfg = ClientConfig::load_with_env(Some(config_path))?;
    let base_url = match cfg.cart.apis.get(&args.api) {
        Some(url) => url.clone(),
        None if args.api.starts_with("https://") => args.api.clone(),
        None => {
            return Err(anyhow!(
                "unknown API {:?}: name one of [cart.apis] in {} ({}) or give a https:// base URL",
                args.api,
                config_path.display(),
                cfg.cart.apis.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        }
    };
    let body: Option<serde_json::Value> = match &args.json {
        Some(f) => {
            let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
            Some(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{}: not JSON", f.display()))?,
            )
        }
        None => None,
    };
    let client = GatewayClient::from_config(&cfg).context("setting up the mTLS client")?;
    let journal = Journal::open(&journal_path(args.journal.as_deref(), Some(config_path)))?;
    let method = args.method.to_ascii_uppercase();
    let call_id = journal.cart_intent(&args.api, &method, &args.path)?;
    let result = client.call_raw(&base_url, &method, &args.path, body.as_ref());
    let outcome = match &result {
        Ok(r) => Outcome {
            http_status: Some(r.status),
            x_cart_id: r.x_cart_id.clone(),
            trace_id: r.trace_id.clone(),
            span_id: r.span_id.clone(),
            workflow_instance_id: r.workflow_instance_id.clone(),
            problem_type: r.problem_type.clone(),
            error: None,
        },
        Err(e) => Outcome {
            error: Some(e.to_string()),
            ..Outcome::default()
        },
    };
    journal.cart_outcome(call_id, &outcome)?;
    match result {
        Ok(r) => {
            let accepted = (200..300).contains(&r.status);
            let printed = Printed {
                operation: "cart-call",
                api: &args.api,
                method: &method,
                path: &args.path,
                status: r.status,
                accepted,
                x_cart_id: r.x_cart_id.as_deref(),
                trace_id: r.trace_id.as_deref(),
                span_id: r.span_id.as_deref(),
                workflow_instance_id: r.workflow_instance_id.as_deref(),
                journal_call_id: call_id,
                response: &r.body,
            };
            println!("{}", serde_json::to_string_pretty(&printed)?);
            Ok(ExitCode::from(if accepted {
                EXIT_OK
            } else {
                EXIT_INVALID
            }))
        }
        Err(ClientError::NoAnswer { message, .. }) => {
            eprintln!("fse: error: no answer from {base_url}: {message}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
        Err(e) => Err(e.into()),
    }
}
