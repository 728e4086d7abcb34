//! The transport: TCP + rustls (client certificate required, from the sandbox CA) + HTTP/1.1
//! (hyper), with fault injection (latency, a share of 503s, a share of dropped connections).

use super::gateway::{Gateway, Request, MAX_BODY};
use crate::api::{Problem, ProblemType};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Fault injection for client tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Added to every answer, after the request has been processed.
    pub latency: Duration,
    /// Share (0..=1) of requests answered 503.
    pub unavailable_share: f64,
    /// Share (0..=1) of requests whose connection is closed without an answer.
    pub drop_share: f64,
}

fn chance(share: f64) -> bool {
    share > 0.0 && (uuid::Uuid::new_v4().as_u128() >> 64) as f64 / u64::MAX as f64 <= share
}

/// TLS server configuration requiring a client certificate issued by `ca`.
pub fn tls_config(
    ca: &[CertificateDer<'static>],
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for c in ca {
        roots.add(c.clone())?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

async fn respond(
    gateway: Arc<Gateway>,
    faults: Faults,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::io::Error> {
    if chance(faults.drop_share) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "fault injection: dropped",
        ));
    }
    let (parts, body) = req.into_parts();
    let mut request = Request {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body: Bytes::new(),
    };
    let reply = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => {
            request.body = b.to_bytes();
            gateway
                .handle(request, chance(faults.unavailable_share))
                .await
        }
        Err(_) => {
            let problem = Problem::new(
                ProblemType::GenericError,
                format!("Payload too large (over {MAX_BODY} bytes) or unreadable"),
            )
            .with_status(413);
            gateway.refuse(request, problem).await
        }
    };
    // After the work is done: a client that gives up meanwhile has lost an answer to a
    // request that took effect (the case a create must resolve by a status query).
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    hyper::Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type)
        .header(crate::api::X_CART_ID, &reply.x_cart_id)
        .body(Full::new(Bytes::from(reply.body)))
        .map_err(std::io::Error::other)
}

/// Serves until `shutdown` resolves, then waits (up to 5 s) for open connections to finish.
pub async fn run(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    gateway: Arc<Gateway>,
    faults: Faults,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let active = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let acceptor = acceptor.clone();
        let gateway = gateway.clone();
        let faults = faults.clone();
        let active = active.clone();
        let mut stop = stop_rx.clone();
        active.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            // A refused handshake (no or untrusted client certificate) ends here.
            if let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(30), acceptor.accept(stream)).await
            {
                let service = service_fn(move |req| respond(gateway.clone(), faults.clone(), req));
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = stop.changed() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            }
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while active.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
