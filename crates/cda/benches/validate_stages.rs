//! Documents per second of each validation stage over a corpus, on one core.
//!
//! A plain benchmark binary (`harness = false`, no criterion): `benches/validate_vs_oracle.sh`
//! runs it as `cargo bench -p fse-cda --bench validate_stages -- RULES_DIR FILE_OR_DIR...`.
//! All documents are read into memory first, then each stage runs over the whole corpus
//! (one warm-up pass, then the timed pass) and prints `stage <name> <docs> <seconds> <docs/s>`:
//!
//! - `parse`: the hardened XML reader alone; `parse_reference` the same with its quick-xml
//!   based reference reader only (no single-pass scanner), for A/B;
//! - `full`: the whole verdict (`RuleSet::validate`: parse, XSD, schematron, terminology);
//! - `schematron`: `RuleSet::validate_document` on a parsed tree (schematron + terminology,
//!   the XSD stage skipped);
//! - `xsd` (derived): `full − parse − schematron` per document, i.e. the XSD stage's share;
//! - `xsd_only`: the XSD stage alone on a parsed tree (`RuleSet::xsd_errors`), and
//!   `xsd_reparsed` the same with the XSD engine reading the bytes again (the former path),
//!   followed by how many documents' XSD verdicts and messages differ between the two;
//!   `xsd_full` the XSD stage without its fast verdict (the full engine's walk for every
//!   document). `xsd_fast cold|warm` lines count the documents the fast verdict answered
//!   and those it handed to the full engine: in a first pass over the corpus (cold, while
//!   it learns) and in the timed `xsd_only` pass.
//!
//! Documents refused at the XSD stage do not reach the schematron in `full`; the derived XSD
//! figure is therefore a slight underestimate of the XSD cost on such corpora.

use fse_cda::validate::RuleSet;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn collect(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        let Ok(rd) = std::fs::read_dir(p) else { return };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for e in entries {
            collect(&e, out);
        }
    } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")) {
        out.push(p.to_path_buf());
    }
}

fn timed(name: &str, docs: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up: compiles schematrons, fills caches
    let t0 = Instant::now();
    f();
    let s = t0.elapsed().as_secs_f64();
    println!("stage {name} {docs} {s:.4} {:.1}", docs as f64 / s);
    s
}

fn main() {
    // cargo passes `--bench` to bench targets; ignore flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some((rules_dir, inputs)) = args.split_first() else {
        eprintln!("usage: validate_stages RULES_DIR FILE_OR_DIR...");
        std::process::exit(2);
    };
    let rules = match RuleSet::load(Path::new(rules_dir)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rules: {e}");
            std::process::exit(2);
        }
    };
    let mut files = Vec::new();
    for i in inputs {
        collect(Path::new(i), &mut files);
    }
    let corpus: Vec<Vec<u8>> = files.iter().filter_map(|f| std::fs::read(f).ok()).collect();
    let n = corpus.len();
    if n == 0 {
        eprintln!("no documents");
        std::process::exit(2);
    }
    let parse = timed("parse", n, || {
        for b in &corpus {
            let _ = black_box(fse_cda::xml::parse(black_box(b)));
        }
    });
    // A/B: the quick-xml based reference reader alone (what `parse` falls back to).
    timed("parse_reference", n, || {
        for b in &corpus {
            let _ = black_box(fse_cda::xml::parse_reference(
                black_box(b),
                fse_cda::xml::Limits::default(),
            ));
        }
    });
    let parsed: Vec<_> = corpus
        .iter()
        .filter_map(|b| fse_cda::xml::parse(b).ok())
        .collect();
    let counts = |rules: &RuleSet| rules.xsd_fast_counts();
    let before = counts(&rules);
    for b in &corpus {
        let _ = black_box(rules.validate(black_box(b)));
    }
    let after = counts(&rules);
    println!(
        "xsd_fast cold: {} answered, {} to the full engine",
        after.0 - before.0,
        after.1 - before.1
    );
    let full = timed("full", n, || {
        for b in &corpus {
            let _ = black_box(rules.validate(black_box(b)));
        }
    });
    let sch = timed("schematron", parsed.len(), || {
        for d in &parsed {
            let _ = black_box(rules.validate_document(black_box(d)));
        }
    });
    let xsd = (full - parse - sch * n as f64 / parsed.len().max(1) as f64).max(1e-9);
    println!("stage xsd {n} {xsd:.4} {:.1}", n as f64 / xsd);
    // The XSD stage alone on parsed documents, A/B: walking the parsed tree (what `full`
    // does) and the XSD engine reading the bytes again with its own reader.
    let pairs: Vec<_> = corpus
        .iter()
        .filter_map(|b| fse_cda::xml::parse(b).ok().map(|d| (d, b)))
        .collect();
    for (name, reparse) in [("xsd_only", false), ("xsd_reparsed", true)] {
        let before = counts(&rules);
        timed(name, pairs.len(), || {
            for (d, b) in &pairs {
                let _ = black_box(rules.xsd_errors(black_box(d), black_box(b), reparse));
            }
        });
        if !reparse {
            let after = counts(&rules);
            println!(
                "xsd_fast warm: {} answered, {} to the full engine (over 2 passes)",
                after.0 - before.0,
                after.1 - before.1
            );
        }
    }
    // The XSD stage cold, on 1 and on 2 fresh threads sharing a fresh rule set (as
    // `fse cda validate --jobs N` does): documents the fast verdict handed to the full
    // engine while it learns (the XSD engine and the facts it learns are shared by the
    // threads).
    for threads in [1usize, 2] {
        let Ok(fresh) = RuleSet::load(Path::new(rules_dir)) else {
            continue;
        };
        let t0 = Instant::now();
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|k| {
                    let (fresh, pairs) = (&fresh, &pairs);
                    s.spawn(move || {
                        for (d, b) in pairs.iter().skip(k).step_by(threads) {
                            let _ = black_box(fresh.xsd_errors(d, b, false));
                        }
                    })
                })
                .collect();
            for w in workers {
                let _ = w.join();
            }
        });
        let s = t0.elapsed().as_secs_f64();
        let (answered, unsure) = fresh.xsd_fast_counts();
        println!(
            "xsd_cold threads={threads}: {s:.4} s wall, {answered} answered, {unsure} to the full engine"
        );
    }
    timed("xsd_full", pairs.len(), || {
        for (d, b) in &pairs {
            let _ = black_box(rules.xsd_errors_full(black_box(d), black_box(b)));
        }
    });
    let (mut verdicts, mut messages) = (0, 0);
    for (d, b) in &pairs {
        let walk = rules.xsd_errors(d, b, false).map_err(|e| e.to_string());
        let reread = rules.xsd_errors(d, b, true).map_err(|e| e.to_string());
        match (&walk, &reread) {
            (Ok(w), Ok(r)) if w == r => {}
            (Ok(w), Ok(r)) if w.is_empty() == r.is_empty() => messages += 1,
            _ => verdicts += 1,
        }
    }
    println!("xsd_only vs xsd_reparsed: {verdicts} verdicts and {messages} messages differ");
}
