//! Robustness: an official sample CDA with random ASCII damage (letters, digits, markup
//! characters: most damaged documents stay well-formed and reach the later stages) goes through the whole verdict
//! (XML reader, XSD, schematron, terminology) without a panic, and the verdict is always one
//! of the gateway's.

use fse_cda::validate::RuleSet;
use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::OnceLock;

fn catalog() -> PathBuf {
    let base = match std::env::var_os("FSE_CONFORMANCE") {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    let dir = base.join("cda");
    assert!(
        dir.is_dir(),
        "{} not found: set FSE_CONFORMANCE",
        dir.display()
    );
    dir
}

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| RuleSet::load(&catalog()).expect("rule set"))
}

fn sample() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        std::fs::read(catalog().join(
            "samples/it-fse-gtw-validator/schematronFSE/OK/Esempio CDA2_Referto Medicina di Laboratorio v6_OK.xml",
        ))
        .expect("sample")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn damaged_documents_get_a_verdict(edits in proptest::collection::vec((any::<prop::sample::Index>(), prop_oneof![b'a'..=b'z', b'0'..=b'9', Just(b'<'), Just(b'>'), Just(b'&'), Just(b'"'), Just(b' '), Just(b'/')]), 1..6)) {
        let mut bytes = sample().to_vec();
        for (i, b) in edits {
            let at = i.index(bytes.len());
            bytes[at] = b;
        }
        let v = rules().validate(&bytes).expect("the rule set itself is fine");
        prop_assert!(matches!(v.http, 201 | 400 | 422));
    }

    #[test]
    fn truncated_documents_are_syntax_errors(cut in 0usize..1_000_000) {
        let bytes = sample();
        // cut before the root's end tag (cutting trailing whitespace leaves a whole document)
        let end = bytes
            .windows(19)
            .rposition(|w| w == b"</ClinicalDocument>")
            .expect("end tag");
        let cut = cut % end;
        let v = rules().validate(&bytes[..cut]).expect("rule set");
        prop_assert_eq!(v.http, 400);
    }
}
