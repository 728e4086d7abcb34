//! A batch whose NAME.pdf is already signed (issue #19, rule 6): published as it is when it
//! verifies and carries the very CDA being published (no second signature), refused locally,
//! before any call to the gateway, when its `cda.xml` is another one.

mod common;

use common::{fse, json};
use fse_cart::sandbox::{self, Sandbox, ServeOptions};
use std::path::PathBuf;

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(common::workspace_root().join("fixtures/build").join(rel)).expect(rel)
}

#[test]
fn signed_input_pdfs_are_published_as_they_are_or_refused_locally() {
    let tmp = tempfile::tempdir().unwrap();
    let sb_dir = tmp.path().join("sb");
    sandbox::init(&sb_dir, "127.0.0.1:0".parse().unwrap()).expect("init");
    let sb = Sandbox::start(ServeOptions::new(&sb_dir)).expect("sandbox starts");
    let config = sandbox::client_config(sb.addr(), "", &sb_dir);
    let config_path = sb_dir.join("client.toml");
    std::fs::write(&config_path, config.to_toml().unwrap()).unwrap();
    let signer = fse_cart::batch::pades_signer(&config).expect("the sandbox's signer");
    let opts = fse_pades::SignOptions::default();

    let input = tmp.path().join("in");
    let signed_with = |dir: &str, cda: &[u8], carried: &[u8]| -> PathBuf {
        let d = input.join(dir);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("doc.xml"), cda).unwrap();
        let pdf = fse_pades::render::render_cda(carried).unwrap();
        let signed = fse_pades::inject_and_sign(pdf, carried, &signer, &opts).unwrap();
        std::fs::write(d.join("doc.pdf"), &signed).unwrap();
        d.join("doc.pdf")
    };
    // signed over the CDA it is published with
    let cda = fixture("RAD/esempio-minimo.xml");
    let same = signed_with("SAME", &cda, &cda);
    // signed over another CDA than the one it is published with
    let other_cda = fixture("RAD/accreditamento-ct1.xml");
    signed_with(
        "OTHER",
        &fixture("LAB_TRASF/esempio-minimo.xml"),
        &other_cda,
    );

    let out_dir = tmp.path().join("out");
    let journal = tmp.path().join("j.sqlite");
    let out = fse(
        tmp.path(),
        &[
            "--config",
            config_path.to_str().unwrap(),
            "batch",
            "publish",
            input.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
            "--output",
            out_dir.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let summary = json(&out);
    assert_eq!(out.status.code(), Some(1), "{summary:#}");
    assert_eq!(summary["counts"]["published"], 1, "{summary:#}");
    assert_eq!(summary["counts"]["failed"], 1, "{summary:#}");
    let failures = summary["failures"].to_string();
    assert!(
        failures.contains("OTHER/doc") && failures.contains("already signed"),
        "{summary:#}"
    );
    assert!(
        failures.contains("is not the CDA to publish"),
        "{summary:#}"
    );
    // the refused document was never sent: one validation and one creation, for SAME only
    assert_eq!(
        sandbox::cart_log(&sb_dir).unwrap().len(),
        2,
        "{:#?}",
        sandbox::cart_log(&sb_dir).unwrap()
    );
    // published as it was given: no second signature
    let published = std::fs::read(out_dir.join("SAME/doc.pdf")).expect("kept PDF");
    assert!(
        published == std::fs::read(&same).unwrap(),
        "the signed input was changed"
    );
    assert_eq!(fse_pades::verify(&published).signatures.len(), 1);
    assert!(!out_dir.join("OTHER/doc.pdf").exists());
    sb.stop();
}
