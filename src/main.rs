//! `fse`: the command-line program. A thin layer over the `fse-cda`, `fse-pades` and `fse-cart`
//! crates: it parses arguments, reads and writes files, prints, and maps outcomes to exit codes
//! (0 success, 1 something judged invalid or refused, 2 usage, input or I/O error).

mod cli;

/// mimalloc: the validator and the batch client allocate many small, short-lived objects
/// (XML trees, XPath sequences, JSON values) across threads, which glibc's allocator serves
/// with more work per call.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("fse: error: {err:#}");
            ExitCode::from(cli::EXIT_USAGE)
        }
    }
}
