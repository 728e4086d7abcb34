//! What a gateway call needs from the CDA it carries: its `identificativoDoc`, its LOINC
//! type (the token's `resource_hl7_type`) and its patient (the token's `person_id`, which the
//! gateway requires to be the document's patient).

/// What a call needs from a CDA header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `ClinicalDocument/id` as `root^extension`.
    pub id: String,
    /// `code/@code` (LOINC).
    pub loinc: String,
    /// The first `recordTarget/patientRole/id` as CX (`EXT^^^&ROOT&ISO`): the JWT's
    /// `person_id`, which the gateway requires to be the document's patient.
    pub person_id: Option<String>,
}

/// Parses a CDA (once per document: the header and the local validation read the tree).
pub fn parse_cda(cda: &[u8]) -> Result<fse_cda::xml::Document, String> {
    fse_cda::xml::parse(cda).map_err(|e| format!("CDA not readable: {e}"))
}

/// Reads the [`Header`] of a parsed CDA.
pub fn cda_header(doc: &fse_cda::xml::Document) -> Result<Header, String> {
    let root = doc
        .document_element()
        .filter(|&r| doc.local_name(r) == "ClinicalDocument")
        .ok_or("the root element is not ClinicalDocument")?;
    let child = |name: &str| {
        doc.child_elements(root)
            .find(|&c| doc.local_name(c) == name)
    };
    let id = child("id").ok_or("ClinicalDocument/id is missing")?;
    let id_root = doc.attribute(id, "root").unwrap_or_default();
    let id_ext = doc.attribute(id, "extension").unwrap_or_default();
    if id_root.is_empty() || id_ext.is_empty() {
        return Err("ClinicalDocument/id needs @root and @extension".into());
    }
    let code = child("code")
        .and_then(|c| doc.attribute(c, "code"))
        .filter(|c| !c.is_empty())
        .ok_or("ClinicalDocument/code/@code is missing")?;
    let person_id = child("recordTarget")
        .and_then(|rt| {
            doc.child_elements(rt)
                .find(|&c| doc.local_name(c) == "patientRole")
        })
        .and_then(|pr| doc.child_elements(pr).find(|&c| doc.local_name(c) == "id"))
        .and_then(|pid| {
            let ext = doc.attribute(pid, "extension").filter(|e| !e.is_empty())?;
            let root = doc.attribute(pid, "root").unwrap_or_default();
            Some(format!("{ext}^^^&{root}&ISO"))
        });
    Ok(Header {
        id: format!("{id_root}^{id_ext}"),
        loinc: code.to_owned(),
        person_id,
    })
}

/// The [`Header`] of CDA bytes.
pub fn read_cda_header(cda: &[u8]) -> Result<Header, String> {
    cda_header(&parse_cda(cda)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cda_header() {
        let cda_header = read_cda_header;
        let cda = br#"<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3">
            <id root="1.2.3" extension="X1"/><code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/>
            </ClinicalDocument>"#;
        assert_eq!(
            cda_header(cda).unwrap(),
            Header {
                id: "1.2.3^X1".to_owned(),
                loinc: "11502-2".to_owned(),
                person_id: None
            }
        );
        let with_patient = br#"<ClinicalDocument xmlns="urn:hl7-org:v3">
            <id root="1.2.3" extension="X1"/><code code="11502-2"/>
            <recordTarget><patientRole><id root="2.16.840.1.113883.2.9.4.3.2" extension="RSSMRA80A01D612X"/>
            </patientRole></recordTarget></ClinicalDocument>"#;
        assert_eq!(
            cda_header(with_patient).unwrap().person_id.as_deref(),
            Some("RSSMRA80A01D612X^^^&2.16.840.1.113883.2.9.4.3.2&ISO")
        );
        assert!(cda_header(b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>").is_err());
        assert!(cda_header(b"not xml").is_err());
    }
}
