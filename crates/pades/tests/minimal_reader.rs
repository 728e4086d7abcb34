//! The minimal reader against the full lopdf parse: on every fixture where it accepts the file,
//! signing from it gives byte-for-byte the file signing from lopdf gives; it refuses what it
//! does not understand (cross-reference streams, the Ministry's damaged sample) and `sign` then
//! falls back; on mutated and truncated PDFs it never panics and either agrees or refuses.

use fse_pades::certs::{KeyKind, TestPki};
use fse_pades::minimal::MinimalPdf;
use fse_pades::{sign, sign_lopdf, sign_minimal, verify, SignOptions, SignerIdentity};
use std::path::PathBuf;
use std::sync::OnceLock;

fn identity() -> &'static SignerIdentity {
    static ID: OnceLock<SignerIdentity> = OnceLock::new();
    ID.get_or_init(|| {
        let p = TestPki::generate(KeyKind::Rsa2048).expect("test PKI");
        SignerIdentity::from_pem(
            p.signer.key_pem.as_bytes(),
            format!("{}{}", p.signer.cert_pem, p.ca.cert_pem).as_bytes(),
        )
        .expect("identity")
    })
}

/// Fixed signing time, so that two signatures of the same input are the same bytes (RSA
/// PKCS#1 v1.5 is deterministic); within the test signer's validity (from yesterday), which
/// verify checks `/M` against.
fn opts() -> SignOptions {
    static NOW: std::sync::OnceLock<time::OffsetDateTime> = std::sync::OnceLock::new();
    let now = *NOW.get_or_init(|| {
        let t = time::OffsetDateTime::now_utc();
        t.replace_nanosecond(0).unwrap_or(t)
    });
    SignOptions {
        time: Some(now),
        reason: Some("Referto àèì".into()),
        ..SignOptions::default()
    }
}

fn cda() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/pdf/referto.xml"
    ))
    .expect("fixtures/pdf/referto.xml")
}

/// The rendered PDF/A-3 with its `cda.xml` (what `fse pdf sign` usually gets).
fn rendered_with_cda() -> &'static Vec<u8> {
    static PDF: OnceLock<Vec<u8>> = OnceLock::new();
    PDF.get_or_init(|| {
        let plain = fse_pades::render::render_cda(&cda()).expect("render");
        fse_pades::inject(plain, &cda()).expect("inject")
    })
}

fn shared(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance");
    assert!(
        p.is_dir(),
        "{} is missing: these tests need the shared conformance material",
        p.display()
    );
    p.join(rel)
}

/// Signs with both readers; when the minimal one accepts the file, the outputs must be equal.
/// Returns whether it accepted.
fn agree(name: &str, bytes: &[u8]) -> bool {
    let minimal = sign_minimal(bytes, identity(), &opts());
    let full = sign_lopdf(bytes.to_vec(), identity(), &opts());
    let auto = sign(bytes.to_vec(), identity(), &opts());
    match (&minimal, &full) {
        (Some(m), Ok(f)) => assert!(m == f, "{name}: minimal and lopdf outputs differ"),
        (Some(_), Err(e)) => panic!("{name}: minimal reader signed, lopdf refused: {e}"),
        (None, _) => {}
    }
    match (&auto, &full) {
        (Ok(a), Ok(f)) => assert!(a == f, "{name}: sign() differs from lopdf"),
        (Err(a), Err(f)) => assert_eq!(a.to_string(), f.to_string(), "{name}"),
        (a, f) => panic!("{name}: sign() {:?} vs lopdf {:?}", a.is_ok(), f.is_ok()),
    }
    minimal.is_some()
}

#[test]
fn rendered_pdfa3_is_read_minimally_and_signs_identically() {
    let pdf = rendered_with_cda();
    assert!(
        MinimalPdf::read(pdf).is_some(),
        "the rendered PDF/A-3 must take the fast path"
    );
    assert!(agree("rendered+cda", pdf));
    let out = sign(pdf.clone(), identity(), &opts()).expect("sign");
    let r = verify(&out);
    assert!(r.valid, "{:?}", r.problems);
    // signing the signed file again (two updates, a field already there) agrees too
    assert!(agree("rendered+cda signed twice", &out));
    let twice = sign(out, identity(), &opts()).expect("sign again");
    let r = verify(&twice);
    assert_eq!(r.signatures.len(), 2);
    assert!(r.signatures.iter().all(|s| s.intact), "{:?}", r.problems);

    let plain = fse_pades::render::render_cda(&cda()).expect("render");
    assert!(agree("rendered", &plain));
}

#[test]
fn field_names_and_options_agree() {
    let pdf = rendered_with_cda();
    for name in ["Firma", "Signature1", "Firma àè"] {
        let o = SignOptions {
            field_name: Some(name.into()),
            location: Some("Firenze".into()),
            contact: Some("urp@example.org".into()),
            ..opts()
        };
        let m = sign_minimal(pdf, identity(), &o).expect("fast path");
        let f = sign_lopdf(pdf.clone(), identity(), &o).expect("lopdf path");
        assert!(m == f, "field {name}");
        // the name is now taken: both refuse, sign() reports lopdf's error
        assert!(sign_minimal(&m, identity(), &o).is_none());
        let e = sign(m, identity(), &o).expect_err("duplicate field");
        assert!(e.to_string().contains("already exists"), "{e}");
    }
}

#[test]
fn shared_samples_agree_or_fall_back() {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [
        "pdf/generated",
        "pdf/eu-dss",
        "gateway/it-fse-gtw-dispatcher/pdf",
    ] {
        for e in std::fs::read_dir(shared(dir)).expect("shared PDFs") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "pdf") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 24, "{} PDFs", files.len());
    let mut accepted = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).expect("read");
        if agree(&f.display().to_string(), &bytes) {
            accepted.push(f.file_name().map(|n| n.to_string_lossy().into_owned()));
        }
    }
    // classic-table files take the fast path; cross-reference-stream files fall back
    let accepted: Vec<String> = accepted.into_iter().flatten().collect();
    assert!(
        accepted.iter().any(|n| n == "pades-bes.pdf"),
        "{accepted:?}"
    );
    assert!(accepted.len() >= 5, "{accepted:?}");
    for xref_stream in ["unsigned_fse.pdf", "good_pades_bb.pdf"] {
        let b = std::fs::read(shared(&format!("pdf/generated/{xref_stream}"))).expect("read");
        assert!(
            MinimalPdf::read(&b).is_none(),
            "{xref_stream} has a compressed xref stream"
        );
    }
}

#[test]
fn damaged_ministry_sample_falls_back_to_the_rewrite() {
    let bytes = std::fs::read(shared("gateway/it-fse-gtw-tools/sample.pdf")).expect("sample");
    assert!(MinimalPdf::read(&bytes).is_none());
    assert!(!agree("ministry sample", &bytes));
    let out = sign(bytes.clone(), identity(), &opts()).expect("sign via rewrite");
    assert!(
        !out.starts_with(&bytes),
        "a damaged input is rewritten first"
    );
    let r = verify(&out);
    assert!(
        r.signatures.first().is_some_and(|s| s.intact),
        "{:?}",
        r.problems
    );
}

#[test]
fn encrypted_and_hybrid_inputs_fall_back() {
    let pdf = rendered_with_cda();
    // the last cross-reference stream's dictionary (after the offset startxref names)
    let at = pdf
        .windows(10)
        .rposition(|w| w == b"/Type/XRef")
        .expect("xref stream");
    for extra in [
        &b"/Encrypt 1 0 R"[..],
        b"/XRefStm 10",
        b"/Filter/FlateDecode",
    ] {
        let mut b = pdf[..at].to_vec();
        b.extend_from_slice(extra);
        b.extend_from_slice(&pdf[at..]);
        assert!(
            MinimalPdf::read(&b).is_none(),
            "{}",
            String::from_utf8_lossy(extra)
        );
        assert!(!agree(&String::from_utf8_lossy(extra), &b));
    }
    // and the untouched file is accepted (so the refusals above are the insertions' doing)
    assert!(MinimalPdf::read(pdf).is_some());
}

/// A one-page PDF with a classic cross-reference table, then `update` (objects from number
/// 4 on, with its own table) when given: `(objects, trailer entries, /Prev or None for the
/// base's table, -1 for the update's own table)`.
fn tiny(update: Option<(&[&str], &str, Option<i64>)>, claim: usize) -> Vec<u8> {
    let objs = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let table = |out: &mut Vec<u8>, first: usize, objs: &[&str], claim: usize| {
        let mut offs = Vec::new();
        for (i, o) in objs.iter().enumerate() {
            offs.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", first + i).as_bytes());
        }
        let xref = out.len();
        let start = if first == 1 { 0 } else { first };
        out.extend_from_slice(format!("xref\n{start} {claim}\n").as_bytes());
        if first == 1 {
            out.extend_from_slice(b"0000000000 65535 f\r\n");
        }
        for o in offs {
            out.extend_from_slice(format!("{o:010} 00000 n\r\n").as_bytes());
        }
        xref
    };
    let base = table(&mut out, 1, &objs, claim);
    out.extend_from_slice(
        format!("trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n{base}\n%%EOF\n").as_bytes(),
    );
    if let Some((objs, trailer, prev)) = update {
        let xref = table(&mut out, 4, objs, objs.len());
        let prev = match prev {
            None => base as i64,
            Some(-1) => xref as i64,
            Some(p) => p,
        };
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} {trailer} /Prev {prev} >>\nstartxref\n{xref}\n%%EOF\n",
                4 + objs.len()
            )
            .as_bytes(),
        );
    }
    out
}

/// What makes readers see different documents is refused by both readers: the minimal one
/// gives up, and the full parse (where `sign` then goes) names the problem.
#[test]
fn ambiguous_chains_are_refused_by_both_readers() {
    use fse_pades::error::XrefProblem;
    use fse_pades::{Error, SourcePdf};
    // the controls: the plain file and a harmless update take the fast path
    assert!(agree("tiny", &tiny(None, 4)));
    assert!(agree(
        "tiny + update",
        &tiny(Some((&["<< /Producer (x) >>"], "/Root 1 0 R", None)), 4)
    ));
    type Case = (&'static str, Vec<u8>, fn(&XrefProblem) -> bool);
    let cases: Vec<Case> = vec![
        (
            "roots disagree",
            tiny(
                Some((&["<< /Type /Catalog /Pages 2 0 R >>"], "/Root 4 0 R", None)),
                4,
            ),
            |p| matches!(p, XrefProblem::RootsDisagree { .. }),
        ),
        (
            "root points nowhere",
            tiny(Some((&["<< /Producer (x) >>"], "/Root 9 0 R", None)), 4),
            |p| {
                matches!(
                    p,
                    XrefProblem::RootsDisagree { .. } | XrefProblem::RootMissing(_)
                )
            },
        ),
        (
            "prev cycle",
            tiny(Some((&["<< /Producer (x) >>"], "/Root 1 0 R", Some(-1))), 4),
            |p| matches!(p, XrefProblem::PrevCycle(_)),
        ),
        ("more entries claimed", tiny(None, 5), |p| {
            matches!(
                p,
                XrefProblem::SubsectionCount {
                    claimed: 5,
                    found: 4,
                    ..
                }
            )
        }),
        ("fewer entries claimed", tiny(None, 3), |p| {
            matches!(
                p,
                XrefProblem::SubsectionCount {
                    claimed: 3,
                    found: 4,
                    ..
                }
            )
        }),
    ];
    for (name, bytes, expected) in cases {
        assert!(MinimalPdf::read(&bytes).is_none(), "{name}");
        match SourcePdf::parse(bytes.clone()) {
            Err(Error::Ambiguous(p)) => assert!(expected(&p), "{name}: {p}"),
            other => panic!("{name}: {other:?}"),
        }
        let e = sign(bytes, identity(), &opts()).expect_err(name);
        assert!(matches!(e, Error::Ambiguous(_)), "{name}: {e}");
    }
    // a /Root that no section holds, alone in its trailer
    let mut b = tiny(None, 4);
    let at = b
        .windows(11)
        .rposition(|w| w == b"/Root 1 0 R")
        .expect("root");
    b[at + 6] = b'7';
    assert!(MinimalPdf::read(&b).is_none());
    match SourcePdf::parse(b) {
        Err(Error::Ambiguous(XrefProblem::RootMissing(r))) => assert_eq!(r, "7 0 R"),
        other => panic!("{other:?}"),
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Mutation {
        Flip(usize, u8),
        Truncate(usize),
        Delete(usize, usize),
        Insert(usize, Vec<u8>),
    }

    fn apply(base: &[u8], m: &Mutation) -> Vec<u8> {
        let n = base.len();
        let mut b = base.to_vec();
        match m {
            Mutation::Flip(at, v) => {
                let at = at % n;
                b[at] = *v;
            }
            Mutation::Truncate(len) => b.truncate(len % n),
            Mutation::Delete(at, len) => {
                let at = at % n;
                let end = (at + len).min(n);
                b.drain(at..end);
            }
            Mutation::Insert(at, bytes) => {
                let at = at % n;
                b.splice(at..at, bytes.iter().copied());
            }
        }
        b
    }

    /// Positions: anywhere, or in the structure at the end (xref table, trailer), or in the
    /// catalog/page dictionaries near the start of the last update.
    fn position() -> impl Strategy<Value = usize> {
        let n = rendered_with_cda().len();
        prop_oneof![
            0..n,
            n.saturating_sub(1200)..n,
            n.saturating_sub(4000)..n.saturating_sub(1200),
        ]
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let structural =
            prop::sample::select(b"0123456789 /<>[]()R\nnobjendstreamxreftrailer%#".to_vec());
        prop_oneof![
            (position(), structural.clone()).prop_map(|(a, v)| Mutation::Flip(a, v)),
            (position(), any::<u8>()).prop_map(|(a, v)| Mutation::Flip(a, v)),
            position().prop_map(Mutation::Truncate),
            (position(), 1usize..40).prop_map(|(a, l)| Mutation::Delete(a, l)),
            (position(), prop::collection::vec(structural, 1..6))
                .prop_map(|(a, v)| Mutation::Insert(a, v)),
        ]
    }

    /// Mutated and truncated copies of the rendered PDF: the minimal reader never panics, and
    /// whenever it signs, lopdf signs too and to the same bytes. A good share of the cases
    /// must be accepted (mutations inside stream data), or the comparison would prove nothing.
    #[test]
    fn minimal_reader_never_panics_and_agrees_or_falls_back() {
        use proptest::test_runner::{Config, TestCaseError, TestRunner};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let cases: u32 = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        let accepted = AtomicUsize::new(0);
        let mut runner = TestRunner::new(Config {
            cases,
            ..Config::default()
        });
        let result = runner.run(&prop::collection::vec(mutation(), 1..4), |muts| {
            let mut b = rendered_with_cda().clone();
            for m in &muts {
                if b.is_empty() {
                    break;
                }
                b = apply(&b, m);
            }
            // an ambiguity the full parse finds is never signed on the fast path
            let ambiguous = matches!(
                fse_pades::SourcePdf::parse(b.clone()),
                Err(fse_pades::Error::Ambiguous(_))
            );
            if let Some(m) = sign_minimal(&b, identity(), &opts()) {
                if ambiguous {
                    return Err(TestCaseError::fail(format!(
                        "minimal signed an ambiguous file after {muts:?}"
                    )));
                }
                accepted.fetch_add(1, Ordering::Relaxed);
                match sign_lopdf(b.clone(), identity(), &opts()) {
                    Ok(f) if f == m => {}
                    Ok(_) => {
                        return Err(TestCaseError::fail(format!(
                            "outputs differ after {muts:?}"
                        )))
                    }
                    Err(e) => {
                        return Err(TestCaseError::fail(format!(
                            "minimal signed, lopdf refused ({e}) after {muts:?}"
                        )))
                    }
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        let accepted = accepted.into_inner();
        eprintln!("{accepted} of {cases} mutated files took the fast path");
        assert!(
            accepted * 10 >= cases as usize,
            "only {accepted} of {cases} mutated files took the fast path"
        );
    }
}

/// The RSA fast CMS (template with digest and signature patched in) is byte-for-byte the
/// `der`-crate encoding.
#[test]
fn cms_template_matches_the_der_encoding() {
    for seed in 0u8..8 {
        let digest: Vec<u8> = (0..32u8)
            .map(|i| i.wrapping_mul(seed).wrapping_add(seed))
            .collect();
        let fast = fse_pades::signature::build_cms(identity(), &digest).expect("template");
        let der = fse_pades::signature::build_cms_der(identity(), &digest).expect("der");
        assert!(fast == der, "digest seed {seed}");
    }
}
