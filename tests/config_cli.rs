//! `fse config init` (a commented template that loads) and `fse config check` (every
//! problem at once, the claims against the gateway's tables, the CA bundle in one line).

mod common;

use fse_cart::client::config::{ClientConfig, PLACEHOLDER};
use fse_cart::sandbox::identities::{Authority, LeafKind};
use fse_cart::sandbox::{self, Sandbox, ServeOptions};
use fse_cart::tls::pem;
use std::path::Path;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn init_writes_a_template_that_loads_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    for env in ["staging", "production"] {
        let file = format!("{env}.toml");
        let out = common::fse(tmp.path(), &["config", "init", "--env", env, "-o", &file]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let path = tmp.path().join(&file);
        let written = std::fs::read_to_string(&path).unwrap();
        // Which certificate goes where.
        for words in [
            "CART CLIENT certificate",
            "\"S1\"",
            "PAdES",
            "Role table: AAS",
        ] {
            assert!(written.contains(words), "{env}: {words}");
        }
        let config = ClientConfig::load(&path).expect("the template loads");
        assert_eq!(config.profile.subject_organization_id, "090");
        // Every problem check finds is a placeholder to fill in.
        let problems = config.problems();
        assert!(problems.len() >= 5, "{problems:?}");
        let system_bundle = Path::new("/etc/ssl/certs/ca-certificates.crt").is_file();
        for p in &problems {
            let ca_absent = !system_bundle && p.key == "[gateway] ca";
            assert!(
                p.to_string().contains(PLACEHOLDER) || ca_absent,
                "{env}: {p}"
            );
        }
        let out = common::fse(tmp.path(), &["--config", &file, "config", "check"]);
        assert_eq!(out.status.code(), Some(1));
        let report = text(&out.stdout);
        assert!(
            report.contains("[tls]") && report.contains("[signer]"),
            "{report}"
        );

        // Not overwritten without --force.
        std::fs::write(&path, "mine").unwrap();
        let out = common::fse(tmp.path(), &["config", "init", "--env", env, "-o", &file]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).contains("--force"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
        let out = common::fse(
            tmp.path(),
            &["config", "init", "--env", env, "-o", &file, "--force"],
        );
        assert!(out.status.success());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), written);
    }
    let staging = std::fs::read_to_string(tmp.path().join("staging.toml")).unwrap();
    assert!(staging.contains("modipa-val.fse.salute.gov.it"));
}

fn check(config: &Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(common::fse_bin())
        .arg("--config")
        .arg(config)
        .args(["config", "check"])
        .output()
        .unwrap();
    (out.status.code(), text(&out.stdout))
}

/// Several problems in one configuration: all reported in one run, the CA bundle in one line.
#[test]
fn check_reports_every_problem_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sb");
    sandbox::init(&dir, "127.0.0.1:0".parse().unwrap()).unwrap();
    let sb = Sandbox::start(ServeOptions::new(&dir)).unwrap();
    let mut config = ClientConfig::load(&dir.join("fse.toml")).unwrap();
    config.gateway.base_url = sb.base_url().to_owned();
    config.gateway.audience = Some(sb.audience());
    // A bundle of three CAs (the sandbox's first): one line, not three.
    let mut bundle = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    for n in 0..2 {
        let other = Authority::generate(&format!("other CA {n}")).unwrap();
        bundle.push_str(&pem("CERTIFICATE", &other.cert_der));
    }
    std::fs::write(dir.join("bundle.pem"), bundle).unwrap();
    config.gateway.ca = Some("bundle.pem".into());
    let good = dir.join("good.toml");
    std::fs::write(&good, config.to_toml().unwrap()).unwrap();
    let (code, report) = check(&good);
    assert_eq!(code, Some(0), "{report}");
    let ca_lines: Vec<&str> = report.lines().filter(|l| l.starts_with("CA:")).collect();
    assert_eq!(ca_lines.len(), 1, "{report}");
    assert!(
        ca_lines[0].ends_with("bundle.pem: 3 roots loaded"),
        "{report}"
    );
    assert!(report.contains("problems:      none"), "{report}");
    // The sandbox's doctor has a fiscal code with a wrong check character: a doubt, said.
    assert!(
        report.contains("warnings:      1\n  [profile] subject: \"RSSMRA80A01D612X"),
        "{report}"
    );

    // Now five things wrong at once.
    config.tls.key = Some("signer.key".into()); // not the key of client.pem
    let now = time::OffsetDateTime::now_utc();
    let old = sandbox::identities::load_authority(&dir)
        .unwrap()
        .issue_with_validity(
            &LeafKind::Signer,
            "expired signer",
            now - time::Duration::days(400),
            now - time::Duration::days(30),
        )
        .unwrap();
    std::fs::write(dir.join("old-signer.pem"), old.cert_pem()).unwrap();
    std::fs::write(dir.join("old-signer.key"), old.key_pem()).unwrap();
    config.signer.cert = Some("old-signer.pem".into());
    config.signer.key = Some("old-signer.key".into());
    config.profile.subject_role = "DOC".into();
    config.profile.subject_organization = "Regione Lazio".into();
    config.profile.locality = "OSPEDALE DI PROVA".into();
    config.profile.subject = "RSSMRA80A01H501X^^^&2.16.840.1.113883.2.9.4.3.2&ISO".into();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, config.to_toml().unwrap()).unwrap();
    let (code, report) = check(&bad);
    assert_eq!(code, Some(1), "{report}");
    for expected in [
        "problems:      5",
        "[tls]: client.pem: the private key does not belong to the certificate",
        "[signer]: the certificate CN=expired signer",
        "[profile] subject_role: \"DOC\": not in the gateway's role table",
        "[profile] subject_organization: \"Regione Lazio\": the gateway's name of 090 is \"Regione Toscana\"",
        "[profile] locality: \"OSPEDALE DI PROVA\": not XON",
        "warnings:      1\n  [profile] subject: \"RSSMRA80A01H501X^^^&2.16.840.1.113883.2.9.4.3.2&ISO\": invalid fiscal code",
    ] {
        assert!(report.contains(expected), "{expected}\n{report}");
    }
}
