//! Validation speed: XML reading, schematron run and the whole verdict on official samples.
//!
//! Reads the rules and samples from `../shared/conformance/cda` (or `$FSE_CONFORMANCE/cda`).
//! Target (issue 3): ≥ 500 documents per second per core for the whole verdict.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fse_cda::validate::RuleSet;
use std::hint::black_box;
use std::path::PathBuf;

fn catalog() -> PathBuf {
    let base = match std::env::var_os("FSE_CONFORMANCE") {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    base.join("cda")
}

fn bench(c: &mut Criterion) {
    let cat = catalog();
    let rules = RuleSet::load(&cat).expect("rule set");
    rules.compile_all().expect("schematrons compile");
    let samples = [
        ("LAB", "samples/it-fse-gtw-validator/schematronFSE/OK/Esempio CDA2_Referto Medicina di Laboratorio v6_OK.xml"),
        ("LDO", "samples/it-fse-gtw-validator/schematronLDO/OK/CDA2_Lettera_Dimissione_Ospedaliera_v2.2.xml"),
    ];
    let mut g = c.benchmark_group("cda");
    g.throughput(Throughput::Elements(1));
    for (name, rel) in samples {
        let bytes = std::fs::read(cat.join(rel)).expect("sample");
        g.bench_function(format!("xml_parse/{name}"), |b| {
            b.iter(|| fse_cda::xml::parse(black_box(&bytes)).expect("parse"))
        });
        g.bench_function(format!("validate/{name}"), |b| {
            b.iter(|| rules.validate(black_box(&bytes)).expect("verdict"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
