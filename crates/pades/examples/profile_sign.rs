//! Rough per-phase timing of signing (developer aid).
use fse_pades::certs::{KeyKind, TestPki};
use fse_pades::{SignOptions, SignerIdentity, SourcePdf};
use std::time::Instant;

fn main() {
    let pki = TestPki::generate(KeyKind::Rsa2048).expect("pki");
    let id = SignerIdentity::from_pem(
        pki.signer.key_pem.as_bytes(),
        format!("{}{}", pki.signer.cert_pem, pki.ca.cert_pem).as_bytes(),
    )
    .expect("id");
    let cda = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/pdf/referto.xml"
    ))
    .expect("cda");
    let pdf = fse_pades::inject(fse_pades::render::render_cda(&cda).expect("r"), &cda).expect("i");
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        let _ = SourcePdf::parse(pdf.clone()).expect("p");
    }
    println!("parse  {:?}", t.elapsed() / n);
    let src = SourcePdf::parse(pdf.clone()).expect("p");
    let opts = SignOptions::default();
    let t = Instant::now();
    for _ in 0..n {
        let _ = fse_pades::sign_pdf(&src, &id, &opts).expect("s");
    }
    println!("sign_pdf (no parse) {:?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        let _ = fse_pades::signature::build_cms(&id, &[0u8; 32]).expect("c");
    }
    println!("build_cms {:?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        let _ = id.key().sign(&[0u8; 200]).expect("k");
    }
    println!("raw sign {:?}", t.elapsed() / n);
    println!("pdf size {}", pdf.len());
}
