//! Developer aid: the cost of signing a small FSE PDF against the raw RSA-2048 sign it
//! contains, measured interleaved in one loop so that machine load affects both alike.
//! `cargo run --release -p fse-pades --example profile_sign [iterations]`.

use fse_pades::certs::{KeyKind, TestPki};
use fse_pades::minimal::MinimalPdf;
use fse_pades::{SignOptions, SignerIdentity};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let pki = TestPki::generate(KeyKind::Rsa2048)?;
    let chain = format!("{}{}", pki.signer.cert_pem, pki.ca.cert_pem);
    let id = SignerIdentity::from_pem(pki.signer.key_pem.as_bytes(), chain.as_bytes())?;
    let cda = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/pdf/referto.xml"
    ))?;
    let pdf = fse_pades::inject(fse_pades::render::render_cda(&cda)?, &cda)?;
    let opts = SignOptions::default();
    let msg = [0x5au8; 200];
    let (mut raw, mut full, mut parse) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..n {
        let t = Instant::now();
        id.key().sign(&msg)?;
        raw += t.elapsed();
        let t = Instant::now();
        fse_pades::sign(pdf.clone(), &id, &opts)?;
        full += t.elapsed();
        let t = Instant::now();
        std::hint::black_box(MinimalPdf::read(&pdf).ok_or("not read minimally")?);
        parse += t.elapsed();
    }
    println!("input PDF: {} bytes, {n} iterations", pdf.len());
    println!("raw RSA-2048 sign : {:?}/op", raw / n);
    println!(
        "sign PDF (all in) : {:?}/op (of which reading {:?})",
        full / n,
        parse / n
    );
    println!(
        "signed documents/s per core = {:.0}% of the raw sign rate",
        100.0 * raw.as_secs_f64() / full.as_secs_f64()
    );
    Ok(())
}
