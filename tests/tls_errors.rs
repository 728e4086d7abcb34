//! TLS failures against the sandbox, said in the user's terms: whose certificate (the
//! gateway's server certificate or our [tls] client certificate), what is wrong, what to check.

mod common;

use fse_cart::client::config::ClientConfig;
use fse_cart::client::{ClientError, GatewayClient};
use fse_cart::sandbox::identities::{load_authority, Authority, LeafKind};
use fse_cart::sandbox::{self, Sandbox, ServeOptions};
use fse_cart::tls::pem;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    _sandbox: Sandbox,
    config: ClientConfig,
}

/// A sandbox whose server certificate is `server` (issued by the sandbox CA) when given.
fn env(server: Option<(Vec<String>, OffsetDateTime, OffsetDateTime)>) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sb");
    sandbox::init(&dir, "127.0.0.1:0".parse().unwrap()).unwrap();
    if let Some((names, from, to)) = server {
        let ca = load_authority(&dir).unwrap();
        let leaf = ca
            .issue_with_validity(&LeafKind::Server(names), "test gateway", from, to)
            .unwrap();
        std::fs::write(dir.join("server.pem"), leaf.cert_pem()).unwrap();
        std::fs::write(dir.join("server.key"), leaf.key_pem()).unwrap();
    }
    let sb = Sandbox::start(ServeOptions::new(&dir)).unwrap();
    let mut config = ClientConfig::load(&dir.join("fse.toml")).unwrap();
    config.gateway.base_url = sb.base_url().to_owned();
    config.gateway.audience = Some(sb.audience());
    config.gateway.max_attempts = 1;
    Env {
        _tmp: tmp,
        dir,
        _sandbox: sb,
        config,
    }
}

fn failure(config: &ClientConfig) -> String {
    let client = GatewayClient::from_config(config).expect("client");
    match client.status("fse-tls-test") {
        Err(ClientError::NoAnswer { message, .. }) => message,
        other => panic!("expected no answer, got {other:?}"),
    }
}

fn write_other_ca(dir: &Path) -> Authority {
    let other = Authority::generate("some other CA").unwrap();
    std::fs::write(
        dir.join("other-ca.pem"),
        pem("CERTIFICATE", &other.cert_der),
    )
    .unwrap();
    other
}

#[test]
fn a_server_certificate_from_another_ca_names_the_ca_key() {
    let mut env = env(None);
    write_other_ca(&env.dir);
    env.config.gateway.ca = Some("other-ca.pem".into());
    let message = failure(&env.config);
    assert_eq!(
        message,
        "the gateway's server certificate is not issued by a CA of [gateway] ca: check that \
         `ca` is the bundle of the CA that issued the gateway's certificate, and that \
         [gateway] base_url names the intended host"
    );
    // The CLI prints it as it is, on one line, exit 2.
    let path = env.dir.join("other.toml");
    std::fs::write(&path, env.config.to_toml().unwrap()).unwrap();
    let out = std::process::Command::new(common::fse_bin())
        .arg("--config")
        .arg(&path)
        .args(["gateway", "status", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&message), "{stderr}");
    assert!(
        !stderr.contains("docs.rs") && !stderr.contains("http"),
        "{stderr}"
    );
}

#[test]
fn a_client_certificate_from_another_ca_is_said_to_be_ours() {
    let mut env = env(None);
    let other = write_other_ca(&env.dir);
    let client = other
        .issue(&LeafKind::Client, "not from the sandbox")
        .unwrap();
    std::fs::write(env.dir.join("stranger.pem"), client.cert_pem()).unwrap();
    std::fs::write(env.dir.join("stranger.key"), client.key_pem()).unwrap();
    env.config.tls.cert = Some("stranger.pem".into());
    env.config.tls.key = Some("stranger.key".into());
    let message = failure(&env.config);
    assert!(
        message.starts_with(
            "the gateway refused our client certificate of [tls] (not issued by a CA it \
             trusts: TLS alert UnknownCA): check that [tls] holds the CART client certificate"
        ),
        "{message}"
    );
}

#[test]
fn a_server_certificate_for_another_host_names_the_host() {
    let now = OffsetDateTime::now_utc();
    let env = env(Some((
        vec!["gateway.example".into()],
        now - Duration::days(1),
        now + Duration::days(30),
    )));
    let message = failure(&env.config);
    assert!(
        message.starts_with("the gateway's server certificate is not valid for 127.0.0.1")
            && message.contains("gateway.example")
            && message.ends_with("check the host of [gateway] base_url"),
        "{message}"
    );
}

#[test]
fn an_expired_server_certificate_says_when_and_to_check_the_clock() {
    let now = OffsetDateTime::now_utc();
    let env = env(Some((
        vec!["127.0.0.1".into()],
        now - Duration::days(60),
        now - Duration::days(2),
    )));
    let message = failure(&env.config);
    assert!(
        message.starts_with("the gateway's server certificate expired (")
            && message.contains("check this machine's clock"),
        "{message}"
    );
}
