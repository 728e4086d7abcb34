//! `fse dev …`: developer helpers (test identities).

use super::EXIT_OK;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use fse_pades::certs::{KeyKind, TestPki, TEST_P12_PASSWORD};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Create a throw-away test PKI: CA, signer, client and server identities as PEM and
    /// PKCS#12 (for tests and the sandbox only; never for production).
    Certs(CertsArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SignerKey {
    Rsa,
    Ecdsa,
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write into (created if missing; existing files are overwritten).
    dir: PathBuf,
    /// Key type of the document signer.
    #[arg(long, value_enum, default_value = "rsa")]
    signer_key: SignerKey,
    /// Environment variable holding the password for the .p12 files (default: the test-only
    /// password `fse-test-only`).
    #[arg(long)]
    p12_password_env: Option<String>,
}

pub fn run(cmd: DevCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DevCommand::Certs(a) => {
            let kind = match a.signer_key {
                SignerKey::Rsa => KeyKind::Rsa2048,
                SignerKey::Ecdsa => KeyKind::EcdsaP256,
            };
            let password = match &a.p12_password_env {
                Some(var) => std::env::var(var).with_context(|| format!("${var} is not set"))?,
                None => TEST_P12_PASSWORD.to_string(),
            };
            let pki = TestPki::generate(kind)?;
            let files = pki.write_to(&a.dir, &password)?;
            for f in files {
                println!("{}", f.display());
            }
            Ok(ExitCode::from(EXIT_OK))
        }
    }
}
