//! Every XPath expression of every official schematron compiles.
//!
//! Reads `../shared/conformance/cda/schematron/*.sch` (or `$FSE_CONFORMANCE/cda/...`); fails
//! when the material is missing.

use fse_cda::schematron::Schema;
use fse_cda::xml::{parse, NodeKind};
use std::path::PathBuf;

fn schematron_dir() -> PathBuf {
    let base = match std::env::var_os("FSE_CONFORMANCE") {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    let dir = base.join("cda/schematron");
    assert!(
        dir.is_dir(),
        "{} not found: place the shared material beside the clone or set FSE_CONFORMANCE",
        dir.display()
    );
    dir
}

/// Independent count of the XPath-bearing attributes (`test`, `context`, `select`, `value`)
/// of a schematron file.
fn count_expressions(bytes: &[u8]) -> usize {
    let doc = parse(bytes).expect("schematron is well-formed");
    (0..doc.node_count())
        .filter_map(|i| doc.node(i))
        .filter(|&n| doc.kind(n) == NodeKind::Element)
        .map(|n| {
            doc.attributes(n)
                .filter(|&a| {
                    let nm = doc.attr_name(a);
                    nm.ns.is_empty()
                        && matches!(&*nm.local, "test" | "context" | "select" | "value")
                })
                .count()
        })
        .sum()
}

#[test]
fn all_official_schematrons_compile() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(schematron_dir())
        .expect("read schematron dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sch"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 22, "the catalog holds 22 schematrons");
    let mut total = 0;
    for f in &files {
        let schema = Schema::load(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let bytes = std::fs::read(f).expect("read");
        let expected = count_expressions(&bytes);
        assert_eq!(
            schema.expression_count(),
            expected,
            "{}: every expression compiled",
            f.display()
        );
        assert!(schema.rule_count() > 10, "{}", f.display());
        total += expected;
    }
    eprintln!(
        "{} schematrons, {total} XPath expressions compiled",
        files.len()
    );
    assert!(total >= 4700, "{total}");
}
