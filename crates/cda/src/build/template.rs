//! Starter inputs: one valid report model per document type (`fse cda build --template
//! TYPE`), a synthetic patient and author with the sections the type's schematron requires.
//! Each builds as it is, to the bytes of the builder fixture it was taken from
//! (`tests/cli_ux.rs`); edit the header and the sections' content to make a real report.

use super::DocType;

/// The starter input of `doc_type`, JSON text of the `fse-cda-build/1` model.
pub fn template(doc_type: DocType) -> &'static str {
    match doc_type {
        DocType::Lab => include_str!("../../templates/LAB.json"),
        DocType::LabTrasf => include_str!("../../templates/LAB_TRASF.json"),
        DocType::Ldo => include_str!("../../templates/LDO.json"),
        DocType::Rad => include_str!("../../templates/RAD.json"),
        DocType::Rsa => include_str!("../../templates/RSA.json"),
        DocType::Vps => include_str!("../../templates/VPS.json"),
        DocType::Pss => include_str!("../../templates/PSS.json"),
        DocType::Rap => include_str!("../../templates/RAP.json"),
        DocType::SingVacc => include_str!("../../templates/SING_VACC.json"),
        DocType::CertVacc => include_str!("../../templates/CERT_VACC.json"),
    }
}

/// The fixture each template was taken from, `fixtures/build/<TYPE>/<name>.json` (for tests).
pub fn fixture_name(doc_type: DocType) -> &'static str {
    match doc_type {
        DocType::Lab => "esempio-glicemia",
        _ => "esempio-minimo",
    }
}

/// The document type named `abbrev` (`LAB`, `LAB_TRASF`…), as in the input's `type` field.
pub fn doc_type_named(abbrev: &str) -> Option<DocType> {
    DocType::ALL.into_iter().find(|t| t.abbrev() == abbrev)
}
