//! Load on the sandbox over real mutual TLS on loopback: requests per second for the
//! `VALIDATION` of the test-container LAB.pdf (multipart, JWT pair verification, CDA
//! extraction, JWT↔CDA coherence, the built-in rules, remembered validation and log written to
//! SQLite) from 1, 8 and 64 concurrent clients, each with its own connection pool.
//!
//! The sandbox is the `fse sandbox serve` binary in a child process, started as a user starts
//! it (built-in rules by default), so its memory is measured alone: after the run the bench
//! prints the server's peak resident set (`VmHWM`) and its resident set after each level, and
//! fails if any request got an error or a status other than 201.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fse_cart::api::{Activity, InjectionMode, ValidationRequest};
use fse_cart::client::config::ClientConfig;
use fse_cart::client::{Document, GatewayClient};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const FSE: &str = env!("CARGO_BIN_EXE_fse");
const LEVELS: [usize; 3] = [1, 8, 64];

struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    _tmp: tempfile::TempDir,
    config: ClientConfig,
}

impl Server {
    fn start() -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("sb");
        let init = Command::new(FSE)
            .args(["sandbox", "init"])
            .arg(&dir)
            .args(["--listen", "127.0.0.1:0"])
            .output()
            .expect("fse sandbox init");
        assert!(init.status.success(), "{init:?}");
        let mut child = Command::new(FSE)
            .args(["sandbox", "serve"])
            .arg(&dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("fse sandbox serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("serve prints its URL");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("https://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        let mut config = ClientConfig::load(&dir.join("fse.toml")).expect("fse.toml");
        config.gateway.audience = Some(format!("{url}/v1"));
        config.gateway.base_url = url;
        // No retry: an error must show, not be absorbed.
        config.gateway.max_attempts = 1;
        Server {
            child,
            stdout,
            _tmp: tmp,
            config,
        }
    }

    /// `VmHWM` and `VmRSS` of the server, in KiB.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("serve exits");
        let mut rest = String::new();
        let _ = self.stdout.read_to_string(&mut rest);
        assert!(status.success(), "serve did not stop cleanly: {status:?}");
    }
}

fn lab_pdf() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/conformance/accreditamento/test-container/tests/files/pdf/LAB.pdf");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn bench(c: &mut Criterion) {
    let server = Server::start();
    let pdf = lab_pdf();
    let doc = Document {
        pdf: &pdf,
        loinc: "11502-2",
    };
    let body = ValidationRequest {
        health_data_format: None,
        mode: Some(InjectionMode::Attachment),
        activity: Activity::Validation,
    };
    let clients: Vec<GatewayClient> = (0..LEVELS[LEVELS.len() - 1])
        .map(|_| GatewayClient::from_config(&server.config).expect("client"))
        .collect();
    let requests = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let send = |client: &GatewayClient| {
        requests.fetch_add(1, Ordering::Relaxed);
        match client.validate(doc, &body) {
            Ok(reply) if reply.status == 201 => {}
            Ok(reply) => {
                if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("first error: {reply:?}");
                }
            }
            Err(e) => {
                if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("first error: {e}");
                }
            }
        }
    };
    let mut rss_after = Vec::new();
    let mut group = c.benchmark_group("sandbox_validation_lab");
    for n in LEVELS {
        group.throughput(Throughput::Elements(n as u64));
        // One iteration: n clients each send one VALIDATION, all at once.
        group.bench_function(format!("{n}_clients"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    std::thread::scope(|s| {
                        for client in &clients[..n] {
                            s.spawn(|| send(client));
                        }
                    });
                }
                start.elapsed()
            })
        });
        rss_after.push((n, server.memory().1));
    }
    group.finish();
    let (peak, rss) = server.memory();
    let requests = requests.load(Ordering::Relaxed);
    let errors = errors.load(Ordering::Relaxed);
    eprintln!(
        "sandbox server: {requests} requests, {errors} errors; peak RSS {:.1} MiB; RSS now {:.1} MiB; after each level: {}",
        peak as f64 / 1024.0,
        rss as f64 / 1024.0,
        rss_after
            .iter()
            .map(|(n, r)| format!("{n} clients {:.1} MiB", *r as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    drop(clients);
    server.stop();
    assert_eq!(errors, 0, "{errors} of {requests} requests failed");
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
