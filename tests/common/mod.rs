//! Shared helpers for the end-to-end tests: where the official conformance material and the
//! independent oracles live.
//!
//! `FSE_CONFORMANCE` overrides `../shared/conformance`; `FSE_ORACLES` overrides
//! `../shared/oracles` (both relative to the workspace root). Tests that need them fail with a
//! clear message when they are missing: they are part of CI, never silently skipped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (where the top-level Cargo.toml is).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shared_dir(var: &str, default: &str) -> PathBuf {
    let dir = match std::env::var_os(var) {
        Some(v) => PathBuf::from(v),
        None => workspace_root().join(default),
    };
    assert!(
        dir.is_dir(),
        "{} not found: place the shared material beside the clone or set {var}",
        dir.display()
    );
    dir
}

/// `../shared/conformance` (or `$FSE_CONFORMANCE`).
pub fn conformance_dir() -> PathBuf {
    shared_dir("FSE_CONFORMANCE", "../shared/conformance")
}

/// `../shared/oracles` (or `$FSE_ORACLES`).
pub fn oracles_dir() -> PathBuf {
    shared_dir("FSE_ORACLES", "../shared/oracles")
}

/// Path of the built `fse` binary under test.
pub fn fse_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fse"))
}

/// Runs `fse ARGS` in `cwd` and returns its output.
pub fn fse(cwd: &Path, args: &[&str]) -> Output {
    Command::new(fse_bin())
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("fse runs")
}

/// The JSON a command printed on stdout (panics with stdout and stderr when it is not JSON).
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
