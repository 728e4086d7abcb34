//! Signing throughput: signed documents per second on one core and on all cores (rayon),
//! against the raw aws-lc-rs RSA-2048 PKCS#1 v1.5 sign rate on the same machine.
//! `benches/sign_vs_pyhanko.sh` compares the same work with pyHanko.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fse_pades::certs::{KeyKind, TestPki};
use fse_pades::{SignOptions, SignerIdentity};
use rayon::prelude::*;

fn setup() -> (TestPki, SignerIdentity, Vec<u8>) {
    let pki = TestPki::generate(KeyKind::Rsa2048).expect("test PKI");
    let id = SignerIdentity::from_pem(
        pki.signer.key_pem.as_bytes(),
        format!("{}{}", pki.signer.cert_pem, pki.ca.cert_pem).as_bytes(),
    )
    .expect("identity");
    let cda = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/pdf/referto.xml"
    ))
    .expect("fixtures/pdf/referto.xml");
    let plain = fse_pades::render::render_cda(&cda).expect("render");
    let with_cda = fse_pades::inject(plain, &cda).expect("inject");
    (pki, id, with_cda)
}

fn bench(c: &mut Criterion) {
    let (pki, id, pdf) = setup();
    let key = RsaKeyPair::from_pkcs8(&pki.signer.key_der).expect("rsa key");
    let rng = SystemRandom::new();
    let msg = [0x5au8; 200]; // about the size of the signed attributes
    let opts = SignOptions::default();

    let mut g = c.benchmark_group("one_core");
    g.throughput(Throughput::Elements(1));
    g.bench_function("raw_rsa2048_sign", |b| {
        let mut sig = vec![0u8; key.public_modulus_len()];
        b.iter(|| {
            key.sign(&RSA_PKCS1_SHA256, &rng, &msg, &mut sig)
                .expect("sign")
        })
    });
    g.bench_function("sign_pdf", |b| {
        b.iter(|| fse_pades::sign(pdf.clone(), &id, &opts).expect("sign"))
    });
    g.finish();

    let n = 64usize;
    let mut g = c.benchmark_group("all_cores");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(20);
    g.bench_function("raw_rsa2048_sign_x64", |b| {
        b.iter(|| {
            (0..n).into_par_iter().for_each(|_| {
                let mut sig = vec![0u8; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &msg, &mut sig)
                    .expect("sign");
            })
        })
    });
    g.bench_function("sign_pdf_x64", |b| {
        b.iter(|| {
            (0..n).into_par_iter().for_each(|_| {
                fse_pades::sign(pdf.clone(), &id, &opts).expect("sign");
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
