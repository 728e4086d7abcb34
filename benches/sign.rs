//! Signing throughput: signed documents per second on one core and on all cores (rayon),
//! against the raw aws-lc-rs RSA-2048 PKCS#1 v1.5 sign rate on the same machine.
//! `benches/sign_vs_pyhanko.sh` compares the same work with pyHanko.
//!
//! Besides criterion's per-function figures, each group ends with the RATIO the target is set
//! in ("signed documents per second ≥ 80 % of raw RSA-2048 signs per second"), measured in the
//! same run by interleaving raw signs and document signs (so machine load hits both alike):
//! `ratio one_core: sign_pdf = NN.N% of raw_rsa2048_sign`. On Linux a second line gives the
//! same ratio in CPU time of the measuring thread (from `/proc/thread-self/schedstat`), which
//! other processes on a shared machine do not disturb: time the thread spends waiting for a
//! core counts against neither side.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fse_pades::certs::{KeyKind, TestPki};
use fse_pades::{SignOptions, SignerIdentity};
use rayon::prelude::*;
use std::time::{Duration, Instant};

/// Interleaves `rounds` of `raw` and `full`, returns `raw time / full time` (= full's rate as a
/// fraction of raw's rate).
fn interleaved_ratio(rounds: u32, mut raw: impl FnMut(), mut full: impl FnMut()) -> f64 {
    let (mut t_raw, mut t_full) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let t = Instant::now();
        raw();
        t_raw += t.elapsed();
        let t = Instant::now();
        full();
        t_full += t.elapsed();
    }
    t_raw.as_secs_f64() / t_full.as_secs_f64()
}

/// CPU time of the calling thread in nanoseconds (Linux), `None` elsewhere.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// As [`interleaved_ratio`] but in thread CPU time, alternating blocks of `per_block` calls
/// (so that reading the clock costs little against the work measured).
fn interleaved_cpu_ratio(
    blocks: u32,
    per_block: u32,
    mut raw: impl FnMut(),
    mut full: impl FnMut(),
) -> Option<f64> {
    let (mut t_raw, mut t_full) = (0u64, 0u64);
    for _ in 0..blocks {
        let t = thread_cpu_ns()?;
        for _ in 0..per_block {
            raw();
        }
        let m = thread_cpu_ns()?;
        for _ in 0..per_block {
            full();
        }
        let e = thread_cpu_ns()?;
        t_raw += m - t;
        t_full += e - m;
    }
    Some(t_raw as f64 / t_full as f64)
}

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
    let mut sig = vec![0u8; key.public_modulus_len()];
    let r = interleaved_ratio(
        2000,
        || {
            key.sign(&RSA_PKCS1_SHA256, &rng, &msg, &mut sig)
                .expect("sign");
        },
        || {
            fse_pades::sign(pdf.clone(), &id, &opts).expect("sign");
        },
    );
    println!(
        "ratio one_core: sign_pdf = {:.1}% of raw_rsa2048_sign (target >= 80%; input {} bytes)",
        100.0 * r,
        pdf.len()
    );
    let cpu = interleaved_cpu_ratio(
        200,
        10,
        || {
            key.sign(&RSA_PKCS1_SHA256, &rng, &msg, &mut sig)
                .expect("sign");
        },
        || {
            fse_pades::sign(pdf.clone(), &id, &opts).expect("sign");
        },
    );
    if let Some(r) = cpu {
        println!(
            "ratio one_core (thread CPU time): sign_pdf = {:.1}% of raw_rsa2048_sign",
            100.0 * r
        );
    }

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
    let r = interleaved_ratio(
        40,
        || {
            (0..n).into_par_iter().for_each(|_| {
                let mut sig = vec![0u8; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &msg, &mut sig)
                    .expect("sign");
            })
        },
        || {
            (0..n).into_par_iter().for_each(|_| {
                fse_pades::sign(pdf.clone(), &id, &opts).expect("sign");
            })
        },
    );
    println!(
        "ratio all_cores ({} threads): sign_pdf_x64 = {:.1}% of raw_rsa2048_sign_x64",
        rayon::current_num_threads(),
        100.0 * r
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
