//! Where the integration tests of `fse-cda` find the shared official material and the
//! independent oracles: `../shared/conformance` and `../shared/oracles` beside the
//! workspace (or `$FSE_CONFORMANCE`, `$FSE_ORACLES`). A missing folder fails the test with
//! a clear message: they are part of CI, never silently skipped.
#![allow(dead_code)]

use std::path::PathBuf;

fn shared_dir(var: &str, default: &str, inside: &str) -> PathBuf {
    let dir = match std::env::var_os(var) {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(default),
    };
    assert!(
        dir.join(inside).exists(),
        "{} not found: place the shared material beside the clone or set {var}",
        dir.join(inside).display()
    );
    dir
}

/// `../shared/conformance` (or `$FSE_CONFORMANCE`).
pub fn conformance() -> PathBuf {
    shared_dir("FSE_CONFORMANCE", "../../../shared/conformance", "cda/xsd")
}

/// `../shared/oracles` (or `$FSE_ORACLES`).
pub fn oracles() -> PathBuf {
    shared_dir("FSE_ORACLES", "../../../shared/oracles", "validate_cda.sh")
}
