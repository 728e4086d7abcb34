//! Argument parsing and dispatch. Each subcommand family lives in its own module and exposes a
//! clap type plus a `run` function returning the process exit code.

pub mod batch;
pub mod cart;
pub mod cda;
pub mod cda_build;
pub mod cda_validate;
pub mod config;
pub mod dev;
pub mod gateway;
pub mod journal;
pub mod pdf;
pub mod sandbox;

use clap::{Args, CommandFactory, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code: everything judged valid / accepted.
pub const EXIT_OK: u8 = 0;
/// Exit code: at least one input was judged invalid or refused.
pub const EXIT_INVALID: u8 = 1;
/// Exit code: usage, input or I/O error (clap uses 2 for usage errors too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the reader of standard output went away (`fse … | head -1`): 141, what a
/// shell reports for a Unix tool ended by SIGPIPE (128 + 13). The output is incomplete, so
/// the run does not claim success; nothing is printed.
pub const EXIT_STDOUT_CLOSED: u8 = 141;

/// Standard output was closed by its reader: the command ends quietly with
/// [`EXIT_STDOUT_CLOSED`].
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes `bytes` to standard output and flushes. Unlike `print!`, which panics, a closed
/// pipe becomes a [`StdoutClosed`] error.
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => anyhow::Error::new(StdoutClosed),
            _ => anyhow::Error::new(e).context("cannot write to standard output"),
        })
}

/// `println!` through [`write_stdout`]: returns an `anyhow::Result` instead of panicking.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format!("{}\n", format_args!($($arg)*)).as_bytes())
    };
}

/// Whether `err` comes from writing to a closed pipe (a [`StdoutClosed`], or an I/O error
/// of kind `BrokenPipe` that a subcommand's own writer returned).
pub fn is_stdout_closed(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<StdoutClosed>()
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Makes the `println!`s of the subcommands end the process quietly with
/// [`EXIT_STDOUT_CLOSED`] when the reader closed standard output, instead of the panic
/// ("failed printing to stdout: Broken pipe", exit 101). Other panics keep the default
/// report.
pub fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        // std's wording: "failed printing to {stdout|stderr}: {io error}".
        if message.starts_with("failed printing to std")
            && (message.contains("Broken pipe") || message.contains("os error 32"))
        {
            std::process::exit(i32::from(EXIT_STDOUT_CLOSED));
        }
        default(info)
    }));
}

/// Build, validate, sign and publish FSE 2.0 clinical documents (HL7 CDA R2 in PAdES-signed
/// PDF) through Regione Toscana's CART gateway.
#[derive(Debug, Parser)]
#[command(name = "fse", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Client configuration file (gateway URL, certificates, JWT profile) for `fse gateway`.
    #[arg(long, global = true, env = "FSE_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// CDA documents: build them from a JSON report model, validate them like the gateway.
    #[command(subcommand)]
    Cda(cda::CdaCommand),
    /// PDF: embed the CDA, sign PAdES B-B, verify, extract, render.
    #[command(subcommand)]
    Pdf(pdf::PdfCommand),
    /// Developer helpers (test identities).
    #[command(subcommand)]
    Dev(dev::DevCommand),
    /// Local sandbox gateway (CART + national gateway stand-in) for offline tests.
    #[command(subcommand)]
    Sandbox(sandbox::SandboxCommand),
    /// Gateway calls through CART (or the sandbox): validate, create, replace, metadata,
    /// delete, status. Needs --config.
    #[command(subcommand)]
    Gateway(gateway::GatewayCommand),
    /// Batch publication of a directory (journaled, parallel, resumable); --sandbox runs it
    /// against an in-process sandbox.
    #[command(subcommand)]
    Batch(batch::BatchCommand),
    /// Reports of the batch journal: list, show, export (CSV, JSON, accreditation data.json).
    #[command(subcommand)]
    Journal(journal::JournalCommand),
    /// Configuration: check the identities and reach the gateway; list the environment
    /// overrides.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Other CART services (mTLS, journaled with their X-CART-id): `fse cart call API`.
    #[command(subcommand)]
    Cart(cart::CartCommand),
    /// Print the shell completion script for SHELL (e.g. `fse completions bash >
    /// ~/.local/share/bash-completion/completions/fse`).
    Completions(CompletionsArgs),
    /// Manual pages: `fse.1` on stdout (`fse man | man -l -`), or with -o DIR one page per
    /// command (fse.1, fse-cda.1, fse-cda-build.1…).
    Man(ManArgs),
}

#[derive(Debug, Args)]
struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
struct ManArgs {
    /// Write every page into this directory (created if missing) instead of `fse.1` to
    /// stdout.
    #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    // Into a buffer: clap_complete panics on a failed write.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "fse", &mut script);
    write_stdout(&script)?;
    Ok(ExitCode::from(EXIT_OK))
}

fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    let command = Cli::command();
    match args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("{}: cannot create directory: {e}", dir.display()))?;
            clap_mangen::generate_to(command, &dir)
                .map_err(|e| anyhow::anyhow!("{}: cannot write the pages: {e}", dir.display()))?;
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page)?;
            write_stdout(&page)?;
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}

impl Cli {
    /// Runs the chosen subcommand and returns the process exit code.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Cda(cmd) => cda::run(cmd),
            Command::Pdf(cmd) => pdf::run(cmd),
            Command::Dev(cmd) => dev::run(cmd),
            Command::Sandbox(cmd) => sandbox::run(cmd),
            Command::Gateway(cmd) => gateway::run(cmd, self.config.as_deref()),
            Command::Batch(cmd) => batch::run(cmd, self.config.as_deref()),
            Command::Journal(cmd) => journal::run(cmd, self.config.as_deref()),
            Command::Config(cmd) => config::run(cmd, self.config.as_deref()),
            Command::Cart(cmd) => cart::run(cmd, self.config.as_deref()),
            Command::Completions(args) => completions(args),
            Command::Man(args) => man(args),
        }
    }
}
