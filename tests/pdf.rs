//! End-to-end tests of `fse pdf …` and `fse dev certs`: what we sign passes the independent
//! verifiers (qpdf, poppler pdfsig, pyHanko, the gateway's own checks) in ONE call of
//! `../shared/oracles/check_pdf.sh`; our verifier agrees with the oracle's verdicts on the
//! shared samples; the CLI's exit codes and error messages.

mod common;

use common::{conformance_dir, fse_bin, oracles_dir, workspace_root};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fse(args: &[&str]) -> std::process::Output {
    Command::new(fse_bin())
        .args(args)
        .env_remove("FSE_P12_PASSWORD")
        .output()
        .expect("run fse")
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `fse pdf inject --pdf PDF --cda CDA -o OUT`.
fn inject(pdf: &Path, cda: &Path, out: &Path) -> std::process::Output {
    fse(&[
        "pdf",
        "inject",
        "--pdf",
        p(pdf),
        "--cda",
        p(cda),
        "-o",
        p(out),
    ])
}

fn cda_fixture() -> PathBuf {
    workspace_root().join("fixtures/pdf/referto.xml")
}

/// A PDF that declares PDF/A-3B in its XMP metadata (made from our rendered PDF).
fn make_pdfa3(plain: &Path, out: &Path) {
    let mut doc = fse_pades::lopdf::Document::load(plain).expect("load rendered PDF");
    let xmp = br#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"><pdfaid:part>3</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance></rdf:Description>
</rdf:RDF></x:xmpmeta><?xpacket end="w"?>"#;
    let mut d = fse_pades::lopdf::Dictionary::new();
    d.set("Type", fse_pades::lopdf::Object::Name(b"Metadata".to_vec()));
    d.set("Subtype", fse_pades::lopdf::Object::Name(b"XML".to_vec()));
    let id = doc.add_object(fse_pades::lopdf::Stream::new(d, xmp.to_vec()).with_compression(false));
    doc.catalog_mut().expect("catalog").set("Metadata", id);
    doc.save(out).expect("save PDF/A-3 input");
}

/// A PDF whose objects live in compressed object streams, indexed by a cross-reference stream.
fn make_xref_stream(plain: &Path, out: &Path) {
    let mut doc = fse_pades::lopdf::Document::load(plain).expect("load rendered PDF");
    let mut f = std::fs::File::create(out).expect("create");
    doc.save_modern(&mut f).expect("save with xref stream");
    let bytes = std::fs::read(out).expect("read back");
    assert!(
        bytes
            .windows(9)
            .any(|w| w == b"/Type/XRef" || w == b"/XRef/W[1")
            || String::from_utf8_lossy(&bytes).contains("/XRef"),
        "lopdf did not write a cross-reference stream"
    );
}

struct Oracle {
    blocks: Vec<(String, String)>,
}

fn check_pdf(trust: &[&Path], files: &[PathBuf]) -> Oracle {
    let mut cmd = Command::new(oracles_dir().join("check_pdf.sh"));
    for t in trust {
        cmd.arg("--trust").arg(t);
    }
    let out = cmd.args(files).output().expect("run check_pdf.sh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut blocks = Vec::new();
    for block in text.split("== ").skip(1) {
        let name = block.lines().next().unwrap_or_default().trim().to_string();
        blocks.push((name, block.to_string()));
    }
    assert_eq!(
        blocks.len(),
        files.len(),
        "check_pdf.sh judged {} of {} files:\n{text}\n{}",
        blocks.len(),
        files.len(),
        String::from_utf8_lossy(&out.stderr)
    );
    Oracle { blocks }
}

#[test]
fn signed_outputs_pass_the_independent_verifiers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let pki = dir.join("pki");
    let pki_ec = dir.join("pki-ec");
    let out = fse(&["dev", "certs", p(&pki)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = fse(&["dev", "certs", p(&pki_ec), "--signer-key", "ecdsa"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // inputs
    let plain = dir.join("plain.pdf");
    let out = fse(&["pdf", "render", p(&cda_fixture()), "-o", p(&plain)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pdfa3 = dir.join("pdfa3.pdf");
    make_pdfa3(&plain, &pdfa3);
    let xrefstm = dir.join("xrefstream.pdf");
    make_xref_stream(&plain, &xrefstm);
    let ministry = conformance_dir().join("gateway/it-fse-gtw-tools/sample.pdf");
    let with_cda = conformance_dir().join("pdf/generated/unsigned_fse_af_data.pdf");

    // inject separately, then sign many at once with PEM, in parallel
    let injected = dir.join("in");
    std::fs::create_dir_all(&injected).expect("mkdir");
    let mut inputs = Vec::new();
    for (name, src) in [
        ("plain.pdf", &plain),
        ("pdfa3.pdf", &pdfa3),
        ("xrefstream.pdf", &xrefstm),
        ("ministry-sample.pdf", &ministry),
        ("replace-existing-cda.pdf", &with_cda),
    ] {
        let dst = injected.join(name);
        let out = inject(src, &cda_fixture(), &dst);
        assert!(
            out.status.success(),
            "inject {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // the Ministry's sample has wrong stream lengths and no usable xref: rewritten once
        let noted = String::from_utf8_lossy(&out.stderr).contains("rewritten once");
        assert_eq!(
            noted,
            name == "ministry-sample.pdf",
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        inputs.push(dst);
    }
    let signed = dir.join("signed");
    let mut args = vec!["pdf", "sign"];
    args.extend(inputs.iter().map(|i| p(i)));
    let key = pki.join("signer-key.pem");
    let chain = pki.join("signer-chain.pem");
    args.extend([
        "--out-dir",
        p(&signed),
        "--jobs",
        "2",
        "--key",
        p(&key),
        "--cert",
        p(&chain),
        "--reason",
        "Referto firmato",
        "--location",
        "Firenze",
    ]);
    let out = fse(&args);
    assert!(
        out.status.success(),
        "sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains(&format!(
            "fse: signed 5 of 5 PDF(s) into {}",
            signed.display()
        )) && summary.contains("2 jobs"),
        "no batch summary line: {summary}"
    );

    // PKCS#12 (password from a file) with injection in the same call, and an ECDSA signer
    let pwfile = dir.join("pw.txt");
    std::fs::write(&pwfile, "fse-test-only\n").expect("write");
    let p12_out = signed.join("p12-plain.pdf");
    let out = fse(&[
        "pdf",
        "sign",
        p(&plain),
        "-o",
        p(&p12_out),
        "--cda",
        p(&cda_fixture()),
        "--p12",
        p(&pki.join("signer.p12")),
        "--p12-password-file",
        p(&pwfile),
    ]);
    assert!(
        out.status.success(),
        "p12 sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ec_out = signed.join("ecdsa-xrefstream.pdf");
    let out = fse(&[
        "pdf",
        "sign",
        p(&xrefstm),
        "-o",
        p(&ec_out),
        "--cda",
        p(&cda_fixture()),
        "--key",
        p(&pki_ec.join("signer-key.pem")),
        "--cert",
        p(&pki_ec.join("signer.pem")),
    ]);
    assert!(
        out.status.success(),
        "ecdsa sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut outputs: Vec<PathBuf> = inputs
        .iter()
        .map(|i| signed.join(i.file_name().expect("name")))
        .collect();
    outputs.push(p12_out);
    outputs.push(ec_out);

    // original bytes untouched (inputs that could be appended to)
    for (i, o) in inputs.iter().zip(&outputs) {
        let a = std::fs::read(i).expect("read");
        let b = std::fs::read(o).expect("read");
        assert!(
            b.starts_with(&a),
            "{} does not start with its input's bytes",
            o.display()
        );
    }
    let original_plain = std::fs::read(&plain).expect("read");
    let injected_plain = std::fs::read(&inputs[0]).expect("read");
    assert!(
        injected_plain.starts_with(&original_plain),
        "inject rewrote the input"
    );

    // our verifier: valid, B-B, CDA round trip
    let cda = std::fs::read(cda_fixture()).expect("read");
    for o in &outputs {
        let bytes = std::fs::read(o).expect("read");
        let r = fse_pades::verify(&bytes);
        assert!(r.valid, "{}: {:?}", o.display(), r.problems);
        assert_eq!(r.signatures.len(), 1);
        assert_eq!(r.signatures[0].level, fse_pades::PadesLevel::BB);
        assert_eq!(fse_pades::extract_cda(&bytes).expect("extract"), cda);
    }

    // the independent verifiers, once over all outputs
    let oracle = check_pdf(&[&pki.join("ca.pem"), &pki_ec.join("ca.pem")], &outputs);
    for (name, block) in &oracle.blocks {
        assert!(block.contains("VERDICT: PASS"), "{name}:\n{block}");
        assert!(block.contains("gateway : ACCEPT"), "{name}:\n{block}");
        assert!(block.contains("level=B-B"), "{name}:\n{block}");
        assert!(block.contains("pdfsig  : OK"), "{name}:\n{block}");
        assert!(block.contains("qpdf    : OK"), "{name}:\n{block}");
    }
    let pdfa = oracle
        .blocks
        .iter()
        .find(|(n, _)| n.ends_with("pdfa3.pdf"))
        .expect("pdfa3 judged");
    assert!(
        pdfa.1.contains("XMP claims PDF/A-3"),
        "PDF/A-3 declaration lost:\n{}",
        pdfa.1
    );
}

/// The oracle's verdicts (`expected.tsv`) on the generated samples and the EU DSS files.
#[test]
fn verifier_agrees_with_the_oracle_on_the_shared_samples() {
    let dir = conformance_dir().join("pdf");
    let tsv = std::fs::read_to_string(dir.join("expected.tsv")).expect("expected.tsv");
    let mut n = 0;
    for line in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, verdict) = (cols[0], cols[cols.len() - 1]);
        let bytes = std::fs::read(dir.join(file)).expect("sample");
        let r = fse_pades::verify(&bytes);
        let want = verdict.starts_with("PASS");
        assert_eq!(
            r.valid, want,
            "{file}: oracle {verdict}; ours {:?}",
            r.problems
        );
        // attacks and tampering must be caught by the signature checks themselves
        if file.contains("tampered") || file.contains("byterange-overlap") {
            assert!(
                r.signatures.iter().any(|s| !s.intact),
                "{file}: {:?}",
                r.signatures
            );
        }
        if file.contains("update_after_signing") || file.contains("added-page") {
            assert!(
                r.signatures.last().is_some_and(|s| s.bytes_after > 0),
                "{file}"
            );
        }
        n += 1;
    }
    assert_eq!(n, 24, "expected.tsv rows");
}

/// The Ministry's negative samples: the CDA under another name.
#[test]
fn verifier_rejects_the_official_negative_samples() {
    let dir = conformance_dir().join("gateway/it-fse-gtw-dispatcher/pdf");
    for f in [
        "CDA_OK_SIGNED.pdf",
        "pdf_msg_SATR_LAB_Rapporto_di_Medicina_di_Laboratorio.pdf",
    ] {
        let bytes = std::fs::read(dir.join(f)).expect("sample");
        let r = fse_pades::verify(&bytes);
        assert!(!r.valid, "{f}");
        assert!(
            r.problems.iter().any(|p| p.contains("cda.xml")),
            "{f}: {:?}",
            r.problems
        );
        assert!(fse_pades::extract_cda(&bytes).is_err(), "{f}");
    }
}

fn snapshot_line(rel: &str, bytes: &[u8]) -> String {
    let r = fse_pades::verify(bytes);
    let levels: Vec<String> = r.signatures.iter().map(|s| s.level.to_string()).collect();
    format!(
        "{rel}\t{}\t{}",
        if r.valid { "VALID" } else { "INVALID" },
        if levels.is_empty() {
            "-".to_string()
        } else {
            levels.join(",")
        }
    )
}

/// A verdict per Ministry, test-kit and vendor PDF, kept in `fixtures/pdf/verdicts.tsv`
/// (regenerate with `FSE_UPDATE_SNAPSHOTS=1`).
#[test]
fn verdicts_on_real_world_pdfs_match_the_snapshot() {
    let root = conformance_dir();
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [
        "gateway/it-fse-gtw-dispatcher/pdf",
        "gateway/it-fse-gtw-test-container/files",
        "gateway/it-fse-gtw-tools",
        "accreditamento/vendor-signed-pdf-sample",
        "accreditamento/pubblicazione-2024-07-16/PDF_PER_PUBBLICAZIONE",
        "accreditamento/test-container/tests/files/pdf",
    ] {
        let mut v: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .expect(dir)
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("pdf")))
            .collect();
        v.sort();
        files.extend(v);
    }
    assert!(files.len() >= 80, "only {} PDFs found", files.len());
    let mut got = String::new();
    for f in &files {
        let bytes = std::fs::read(f).expect("read");
        let rel = f.strip_prefix(&root).expect("under root").to_string_lossy();
        got.push_str(&snapshot_line(&rel, &bytes));
        got.push('\n');
    }
    let snap = workspace_root().join("fixtures/pdf/verdicts.tsv");
    if std::env::var_os("FSE_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snap, &got).expect("write snapshot");
    }
    let want = std::fs::read_to_string(&snap).expect("fixtures/pdf/verdicts.tsv");
    assert_eq!(
        got, want,
        "verdicts changed (FSE_UPDATE_SNAPSHOTS=1 to accept)"
    );
}

#[test]
fn cli_exit_codes_and_messages() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // invalid → 1
    let bad = conformance_dir().join("pdf/generated/bad_tampered.pdf");
    let out = fse(&["pdf", "verify", p(&bad), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[0]["report"]["valid"], false);
    // valid → 0
    let good = conformance_dir().join("pdf/generated/good_pades_bb.pdf");
    let out = fse(&["pdf", "verify", p(&good)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("VALID"));
    // missing file → 2
    let out = fse(&["pdf", "verify", p(&dir.join("nope.pdf"))]);
    assert_eq!(out.status.code(), Some(2));
    // extract
    let xml = dir.join("cda.xml");
    let out = fse(&["pdf", "extract", p(&good), "-o", p(&xml)]);
    assert_eq!(out.status.code(), Some(0));
    assert!(std::fs::read_to_string(&xml)
        .expect("xml")
        .contains("ClinicalDocument"));
    let neg = conformance_dir().join("pdf/generated/bad_no_cda_name.pdf");
    let out = fse(&["pdf", "extract", p(&neg), "-o", p(&xml)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no attachment named cda.xml"));

    // PKCS#12: wrong password, no password, not a PKCS#12
    let pki = dir.join("pki");
    assert!(fse(&["dev", "certs", p(&pki)]).status.success());
    let plain = dir.join("plain.pdf");
    assert!(fse(&["pdf", "render", p(&cda_fixture()), "-o", p(&plain)])
        .status
        .success());
    let signed = dir.join("s.pdf");
    let out = Command::new(fse_bin())
        .args([
            "pdf",
            "sign",
            p(&plain),
            "-o",
            p(&signed),
            "--p12",
            p(&pki.join("signer.p12")),
        ])
        .env("FSE_P12_PASSWORD", "wrong")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("password"), "{err}");
    assert!(
        !err.contains("wrong\n") && !err.contains("'wrong'"),
        "password echoed: {err}"
    );
    let out = fse(&[
        "pdf",
        "sign",
        p(&plain),
        "-o",
        p(&signed),
        "--p12",
        p(&pki.join("signer.p12")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no PKCS#12 password"));
    // refused: CDA that is not a ClinicalDocument
    let notcda = dir.join("x.xml");
    std::fs::write(&notcda, "<note/>").expect("write");
    let out = inject(&plain, &notcda, &signed);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ClinicalDocument"));
    // sign with PEM, then tamper with one byte: verify says 1
    let out = fse(&[
        "pdf",
        "sign",
        p(&plain),
        "-o",
        p(&signed),
        "--cda",
        p(&cda_fixture()),
        "--key",
        p(&pki.join("signer-key.pem")),
        "--cert",
        p(&pki.join("signer.pem")),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fse(&["pdf", "verify", p(&signed)]).status.code(), Some(0));
    let mut b = std::fs::read(&signed).expect("read");
    b[200] ^= 0x01;
    std::fs::write(&signed, &b).expect("write");
    assert_eq!(fse(&["pdf", "verify", p(&signed)]).status.code(), Some(1));
}

/// `fse pdf render` writes a PDF/A-3b: judged by poppler (every font embedded, subset, with a
/// ToUnicode map; the accented Italian narrative extracts as written; XMP claims PDF/A-3B)
/// and by qpdf (no syntax or stream errors).
#[test]
fn rendered_pdf_is_pdfa3b_with_embedded_fonts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pdf = tmp.path().join("r.pdf");
    let out = fse(&["pdf", "render", p(&cda_fixture()), "-o", p(&pdf)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = |cmd: &str, args: &[&str]| {
        let o = Command::new(cmd)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{cmd} (poppler-utils/qpdf) not runnable: {e}"));
        assert!(
            o.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let fonts = run("pdffonts", &[p(&pdf)]);
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert_eq!(rows.len(), 2, "{fonts}");
    for row in rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        // name type… encoding emb sub uni id gen
        let n = cols.len();
        assert_eq!(&cols[n - 5..n - 2], &["yes", "yes", "yes"], "{fonts}");
        assert!(row.contains("CID TrueType"), "{fonts}");
    }
    let text = run("pdftotext", &[p(&pdf), "-"]);
    assert!(text.contains("Esame | Risultato | Unità"), "{text}");
    assert!(text.contains("non è un referto reale"), "{text}");
    let xmp = run("pdfinfo", &["-meta", p(&pdf)]);
    assert!(xmp.contains("<pdfaid:part>3</pdfaid:part>"), "{xmp}");
    assert!(
        xmp.contains("<pdfaid:conformance>B</pdfaid:conformance>"),
        "{xmp}"
    );
    let check = run("qpdf", &["--check", p(&pdf)]);
    assert!(
        check.contains("No syntax or stream encoding errors"),
        "{check}"
    );
}

/// Issue #19, rules 6 and 8 at the command line: a signed input is kept as it is or refused
/// (never a second signature, never a replaced `cda.xml`); an expired signer certificate is
/// refused unless `--allow-invalid-cert-time`, and `pdf verify` reports it.
#[test]
fn signed_inputs_and_expired_certificates_at_the_command_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let pki = dir.join("pki");
    assert!(fse(&["dev", "certs", p(&pki)]).status.success());
    let (key, cert) = (pki.join("signer-key.pem"), pki.join("signer.pem"));
    let plain = dir.join("plain.pdf");
    assert!(fse(&["pdf", "render", p(&cda_fixture()), "-o", p(&plain)])
        .status
        .success());
    let signed = dir.join("signed.pdf");
    let sign = |input: &Path, cda: &Path, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "pdf",
            "sign",
            p(input),
            "-o",
            p(out),
            "--cda",
            p(cda),
            "--key",
            p(&key),
            "--cert",
            p(&cert),
        ];
        args.extend_from_slice(extra);
        fse(&args)
    };
    let out = sign(&plain, &cda_fixture(), &signed, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed_bytes = std::fs::read(&signed).expect("signed");

    // another CDA: refused with the reason, nothing written
    let other = dir.join("other.xml");
    let mut x = std::fs::read(cda_fixture()).expect("cda");
    x.extend_from_slice(b"\n<!-- another version -->\n");
    std::fs::write(&other, &x).expect("write");
    let refused = dir.join("refused.pdf");
    for out in [
        sign(&signed, &other, &refused, &[]),
        inject(&signed, &other, &refused),
    ] {
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("already signed (Signature1 by ")
                && err.contains("is not the CDA to publish"),
            "{err}"
        );
        assert!(!refused.exists(), "output written for a refused input");
    }
    // the same CDA: kept as it is, said so
    let kept = dir.join("kept.pdf");
    for out in [
        sign(&signed, &cda_fixture(), &kept, &[]),
        inject(&signed, &cda_fixture(), &kept),
    ] {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("kept as it is"));
        assert!(
            std::fs::read(&kept).expect("kept") == signed_bytes,
            "changed"
        );
    }

    // an expired signer certificate: exit 2 naming it and its dates, nothing written
    let now = time::OffsetDateTime::now_utc();
    let old = fse_pades::certs::TestPki::generate_with_signer_validity(
        fse_pades::certs::KeyKind::Rsa2048,
        (
            now - time::Duration::days(800),
            now - time::Duration::days(30),
        ),
    )
    .expect("pki");
    let old_dir = dir.join("old");
    old.write_to(&old_dir, fse_pades::certs::TEST_P12_PASSWORD)
        .expect("write pki");
    let expired = dir.join("expired.pdf");
    let (cda, old_key, old_cert) = (
        cda_fixture(),
        old_dir.join("signer-key.pem"),
        old_dir.join("signer.pem"),
    );
    let with_old = |extra: &[&str]| {
        let mut args = vec![
            "pdf",
            "sign",
            p(&plain),
            "-o",
            p(&expired),
            "--cda",
            p(&cda),
            "--key",
            p(&old_key),
            "--cert",
            p(&old_cert),
        ];
        args.extend_from_slice(extra);
        fse(&args)
    };
    let out = with_old(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let not_after = fse_pades::identity::rfc3339(now - time::Duration::days(30));
    assert!(
        err.contains("fse test signer") && err.contains("is expired") && err.contains(&not_after),
        "{err}"
    );
    assert!(!expired.exists());
    // allowed for tests: signed, and verify reports it expired (invalid)
    let out = with_old(&["--allow-invalid-cert-time"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = fse(&["pdf", "verify", p(&expired), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let s = &v[0]["report"]["signatures"][0];
    assert_eq!(s["cert_at_signing"], "expired", "{v:#}");
    assert_eq!(s["cert_now"], "expired");
    assert_eq!(s["cert_not_after"], not_after.as_str());
    assert_eq!(s["revision"], 3);
    assert_eq!(v[0]["report"]["revisions"], 3);
}
