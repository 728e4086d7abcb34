//! `fse`: the command-line program. A thin layer over the `fse-cda`, `fse-pades` and `fse-cart`
//! crates: it parses arguments, reads and writes files, prints, and maps outcomes to exit codes
//! (0 success, 1 something judged invalid or refused, 2 usage, input or I/O error; 141 when
//! the reader of stdout went away, as a Unix tool ended by SIGPIPE).

mod cli;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc: the validator and the batch client allocate many small, short-lived objects
/// (XML trees, XPath sequences, JSON values) across threads, which glibc's allocator serves
/// with more work per call.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Transparent huge pages: the kernel clears each 2 MiB page whole on first touch; with
    // THP `always`, a validation run of under a second spent up to a quarter of it in the
    // kernel clearing pages. Best effort.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    cli::quiet_on_closed_stdout();
    let cli = cli::Cli::parse();
    match cli.run() {
        Ok(code) => code,
        // `fse … | head -1`: the reader has what it wanted; end quietly, as Unix tools do.
        Err(err) if cli::is_stdout_closed(&err) => ExitCode::from(cli::EXIT_STDOUT_CLOSED),
        Err(err) => {
            eprintln!("fse: error: {err:#}");
            ExitCode::from(cli::EXIT_USAGE)
        }
    }
}
