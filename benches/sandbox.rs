//! Load on the sandbox over real mutual TLS on loopback: requests per second for a
//! `VERIFICA` of the test-container LAB.pdf (multipart, JWT pair verification, CDA
//! extraction, SQLite log write), sequential and from 8 client threads at once, and for a
//! status query.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fse_cart::api::{Activity, InjectionMode, ValidationRequest};
use fse_cart::client::config::ClientConfig;
use fse_cart::client::{Document, GatewayClient};
use fse_cart::sandbox::{self, Sandbox, ServeOptions};

fn setup() -> (tempfile::TempDir, Sandbox, GatewayClient, Vec<u8>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("sb");
    sandbox::init(&dir, "127.0.0.1:0".parse().expect("addr")).expect("init");
    let sb = Sandbox::start(ServeOptions::new(&dir)).expect("start");
    let mut config = ClientConfig::load(&dir.join(sandbox::CONFIG_FILE)).expect("config");
    config.gateway.base_url = sb.base_url().to_owned();
    config.gateway.audience = Some(sb.audience());
    let client = GatewayClient::from_config(&config).expect("client");
    let pdf = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/conformance/accreditamento/test-container/tests/files/pdf/LAB.pdf"
    ))
    .expect("../shared/conformance/.../LAB.pdf");
    (tmp, sb, client, pdf)
}

fn bench(c: &mut Criterion) {
    let (_tmp, _sb, client, pdf) = setup();
    let body = ValidationRequest {
        health_data_format: None,
        mode: Some(InjectionMode::Attachment),
        activity: Activity::Verifica,
    };
    let doc = Document {
        pdf: &pdf,
        loinc: "11502-2",
    };
    let mut group = c.benchmark_group("sandbox");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verifica_lab_pdf", |b| {
        b.iter(|| {
            let reply = client.validate(doc, &body).expect("answer");
            assert_eq!(reply.status, 200);
        })
    });
    group.bench_function("status_not_found", |b| {
        b.iter(|| {
            let reply = client.status("none").expect("answer");
            assert_eq!(reply.status, 404);
        })
    });
    const THREADS: u64 = 8;
    group.throughput(Throughput::Elements(THREADS));
    group.bench_function("verifica_lab_pdf_8_parallel", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for _ in 0..THREADS {
                    s.spawn(|| {
                        let reply = client.validate(doc, &body).expect("answer");
                        assert_eq!(reply.status, 200);
                    });
                }
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
