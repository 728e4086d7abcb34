//! Checks a [`Report`] against the rules the JSON schema cannot express, then writes it as a
//! CDA R2 `ClinicalDocument` in the element order of the CDA schema (POCD_MT000040UV02).

use super::doctype::{Profile, LOINC};
use super::model::*;
use super::writer::Xml;
use super::BuildError;

/// Root of the Italian fiscal code (MEF) as an instance identifier.
pub const FISCAL_CODE_ROOT: &str = "2.16.840.1.113883.2.9.4.3.2";

fn err(path: impl Into<String>, message: impl Into<String>) -> BuildError {
    BuildError::Field {
        path: path.into(),
        message: message.into(),
    }
}

fn check_ii(path: &str, ii: &Ii) -> Result<(), BuildError> {
    if ii.root.is_none() && ii.null_flavor.is_none() {
        return Err(err(path, "an id needs a `root` (or a `null_flavor`)"));
    }
    Ok(())
}

/// Checks what deserialisation cannot.
pub fn check(report: &Report) -> Result<(), BuildError> {
    let profile = report.doc_type.profile();
    check_ii("id", &report.id)?;
    check_ii("set_id", &report.set_id)?;
    if report.version_number == 0 {
        return Err(err("version_number", "versions start at 1"));
    }
    if let Some(code) = &report.code {
        if code.code.as_deref() != Some(profile.loinc) || code.code_system.as_deref() != Some(LOINC)
        {
            return Err(err(
                "code",
                format!(
                    "a {} document has LOINC code {} (code_system {LOINC})",
                    profile.abbrev, profile.loinc
                ),
            ));
        }
    }
    let p = &report.patient;
    if p.fiscal_code.is_none() && p.other_ids.is_empty() {
        return Err(err(
            "patient",
            "the patient needs an id: `fiscal_code` or `other_ids`",
        ));
    }
    for (i, id) in p.other_ids.iter().enumerate() {
        let path = format!("patient.other_ids[{i}]");
        check_ii(&path, id)?;
        if id.root.as_deref() == Some(FISCAL_CODE_ROOT) {
            return Err(err(
                path,
                "a fiscal code goes in `patient.fiscal_code`, where it is checked",
            ));
        }
    }
    check_patient_ids(p)?;
    if report.authors.is_empty() {
        return Err(err("authors", "at least one author is required"));
    }
    if report.custodian.telecoms.len() > 1 {
        return Err(err(
            "custodian.telecoms",
            "the custodian has at most one telecom",
        ));
    }
    if report.custodian.addresses.len() > 1 {
        return Err(err(
            "custodian.addresses",
            "the custodian has at most one address",
        ));
    }
    if report.custodian.ids.is_empty() {
        return Err(err("custodian.ids", "the custodian needs an id"));
    }
    for (i, o) in report.orders.iter().enumerate() {
        if o.ids.is_empty() {
            return Err(err(format!("orders[{i}].ids"), "an order needs an id"));
        }
    }
    for (i, r) in report.related_documents.iter().enumerate() {
        if r.ids.is_empty() {
            return Err(err(
                format!("related_documents[{i}].ids"),
                "the parent document needs an id",
            ));
        }
    }
    check_sections(profile, &report.sections)
}

/// Roots of the national patient ids besides the fiscal code: TEAM (card number and
/// institution, always together), ENI, STP, and the two others the schematron lists.
const NATIONAL_PATIENT_ROOTS: [&str; 6] = [
    "2.16.840.1.113883.2.9.4.3.7",
    "2.16.840.1.113883.2.9.4.3.3",
    "2.16.840.1.113883.2.9.4.3.18",
    "2.16.840.1.113883.2.9.4.3.17",
    "2.16.840.1.113883.2.9.4.3.15",
    "2.16.840.1.113883.2.9.4.3.16",
];

/// ISTAT codes of the regions and autonomous provinces in regional patient-id roots
/// (`2.16.840.1.113883.2.9.2.<region>.4.1[.1]`).
const REGIONS: [&str; 21] = [
    "10", "20", "30", "41", "42", "50", "60", "70", "80", "90", "100", "110", "120", "130", "140",
    "150", "160", "170", "180", "190", "200",
];

fn is_regional_patient_root(root: &str) -> bool {
    let Some(rest) = root.strip_prefix("2.16.840.1.113883.2.9.2.") else {
        return false;
    };
    let Some((region, tail)) = rest.split_once('.') else {
        return false;
    };
    REGIONS.contains(&region) && (tail == "4.1" || tail == "4.1.1")
}

/// The schematron wants one id of a national or regional kind; TEAM ids come in pairs.
fn check_patient_ids(p: &Patient) -> Result<(), BuildError> {
    let roots: Vec<&str> = p
        .other_ids
        .iter()
        .filter_map(|i| i.root.as_deref())
        .collect();
    let known = p.fiscal_code.is_some()
        || roots
            .iter()
            .any(|r| NATIONAL_PATIENT_ROOTS.contains(r) || is_regional_patient_root(r));
    if !known {
        return Err(err(
            "patient",
            "the patient needs a fiscal_code, or in other_ids a TEAM (2.16.840.1.113883.2.9.4.3.7 \
             with .3.3), ENI (.3.18), STP (.3.17) or regional (2.16.840.1.113883.2.9.2.<region>.4.1) id",
        ));
    }
    let team_card = roots.contains(&NATIONAL_PATIENT_ROOTS[0]);
    let team_institution = roots.contains(&NATIONAL_PATIENT_ROOTS[1]);
    if team_card != team_institution {
        return Err(err(
            "patient.other_ids",
            "a TEAM card needs both ids: 2.16.840.1.113883.2.9.4.3.7 and 2.16.840.1.113883.2.9.4.3.3",
        ));
    }
    Ok(())
}

fn check_sections(profile: &Profile, sections: &[Section]) -> Result<(), BuildError> {
    if profile.needs_a_section && sections.is_empty() {
        return Err(err(
            "sections",
            format!("a {} document needs at least one section", profile.abbrev),
        ));
    }
    for (code, name) in profile.required_sections {
        if !sections
            .iter()
            .any(|s| s.code.code.as_deref() == Some(code))
        {
            return Err(err(
                "sections",
                format!(
                    "a {} document needs the section {code} ({name})",
                    profile.abbrev
                ),
            ));
        }
    }
    fn walk(path: &str, sections: &[Section]) -> Result<(), BuildError> {
        for (i, s) in sections.iter().enumerate() {
            let here = format!("{path}[{i}]");
            if s.code.code.is_none() && s.code.null_flavor.is_none() {
                return Err(err(format!("{here}.code"), "a section needs a code"));
            }
            if let Some(id) = &s.id {
                check_ii(&format!("{here}.id"), id)?;
            }
            for (j, e) in s.entries.iter().enumerate() {
                super::statement::check_entry(&format!("{here}.entries[{j}]"), e, false)?;
            }
            walk(&format!("{here}.sections"), &s.sections)?;
        }
        Ok(())
    }
    walk("sections", sections)?;
    check_unique_ids(sections)
}

/// XML `ID`s (section `xml_id`, narrative `ID`s, statement `ID`s) must be unique in the
/// document: the XSD refuses duplicates and references would be ambiguous.
fn check_unique_ids(sections: &[Section]) -> Result<(), BuildError> {
    use super::node::{Child, Node};
    use std::collections::HashSet;
    fn nodes<'a>(children: &'a [Child], out: &mut Vec<&'a str>) {
        for c in children {
            if let Child::Element(n) = c {
                node(n, out);
            }
        }
    }
    fn node<'a>(n: &'a Node, out: &mut Vec<&'a str>) {
        if let Some(id) = n.attr("ID") {
            out.push(id);
        }
        nodes(&n.children, out);
    }
    fn entry<'a>(e: &'a Entry, out: &mut Vec<&'a str>) {
        use super::statement::Chosen;
        match e.chosen() {
            Ok(Chosen::Tree(n)) => node(n, out),
            Ok(Chosen::Typed(_, st)) => {
                for c in st.entry_relationships.iter().chain(&st.components) {
                    entry(c, out);
                }
            }
            Err(_) => {}
        }
    }
    fn walk<'a>(
        path: &str,
        sections: &'a [Section],
        seen: &mut HashSet<&'a str>,
    ) -> Result<(), BuildError> {
        for (i, s) in sections.iter().enumerate() {
            let here = format!("{path}[{i}]");
            let mut ids = Vec::new();
            if let Some(id) = &s.xml_id {
                ids.push(id.as_str());
            }
            if let Some(t) = &s.text {
                nodes(&t.content, &mut ids);
            }
            for e in &s.entries {
                entry(e, &mut ids);
            }
            for id in ids {
                if !seen.insert(id) {
                    return Err(err(here, format!("duplicate XML ID {id:?}")));
                }
            }
            walk(&format!("{here}.sections"), &s.sections, seen)?;
        }
        Ok(())
    }
    walk("sections", sections, &mut HashSet::new())
}

/// Writes a generic statement tree.
pub(super) fn write_tree(x: &mut Xml, node: &super::node::Node) {
    x.node(node);
}

/// Writes the document. `report` must have passed [`check`].
pub fn write(report: &Report) -> Vec<u8> {
    let profile = report.doc_type.profile();
    let mut x = Xml::new();
    x.open(
        "ClinicalDocument",
        &[
            ("xmlns", Some("urn:hl7-org:v3")),
            (
                "xmlns:xsi",
                Some("http://www.w3.org/2001/XMLSchema-instance"),
            ),
            ("xmlns:sdtc", Some("urn:hl7-org:sdtc")),
            ("xmlns:lab", Some("urn:oid:1.3.6.1.4.1.19376.1.3.2")),
        ],
    );
    x.empty("realmCode", &[("code", Some("IT"))]);
    x.empty(
        "typeId",
        &[
            ("root", Some("2.16.840.1.113883.1.3")),
            ("extension", Some("POCD_MT000040UV02")),
        ],
    );
    x.empty(
        "templateId",
        &[
            ("root", Some(profile.template_root)),
            (
                "extension",
                Some(
                    report
                        .template_version
                        .as_deref()
                        .unwrap_or(profile.template_version),
                ),
            ),
        ],
    );
    x.ii("id", &report.id);
    match &report.code {
        Some(code) => x.cd("code", code),
        None => x.cd(
            "code",
            &Cd {
                code: Some(profile.loinc.into()),
                code_system: Some(LOINC.into()),
                code_system_name: Some("LOINC".into()),
                display_name: Some(profile.display_name.into()),
                ..Cd::default()
            },
        ),
    }
    x.opt_text("title", report.title.as_deref());
    if let Some(status) = &report.status_code {
        x.empty("sdtc:statusCode", &[("code", Some(status))]);
    }
    x.ts("effectiveTime", report.effective_time.as_str());
    let (conf, conf_name) = match report.confidentiality {
        Confidentiality::N => ("N", "Normal"),
        Confidentiality::R => ("R", "Restricted"),
        Confidentiality::V => ("V", "Very Restricted"),
    };
    x.empty(
        "confidentialityCode",
        &[
            ("code", Some(conf)),
            ("codeSystem", Some("2.16.840.1.113883.5.25")),
            ("codeSystemName", Some("HL7 Confidentiality")),
            ("displayName", Some(conf_name)),
        ],
    );
    x.empty(
        "languageCode",
        &[("code", Some(report.language.as_deref().unwrap_or("it-IT")))],
    );
    x.ii("setId", &report.set_id);
    let version = report.version_number.to_string();
    x.empty("versionNumber", &[("value", Some(&version))]);
    patient(&mut x, &report.patient);
    for a in &report.authors {
        author(&mut x, a);
    }
    if let Some(d) = &report.data_enterer {
        x.open("dataEnterer", &[]);
        if let Some(t) = &d.time {
            x.ts("time", t.as_str());
        }
        assigned(&mut x, "assignedEntity", &d.assigned_entity);
        x.close("dataEnterer");
    }
    for i in &report.informants {
        x.open("informant", &[]);
        match i {
            Informant::AssignedEntity(a) => assigned(&mut x, "assignedEntity", a),
            Informant::RelatedEntity(r) => {
                x.open("relatedEntity", &[("classCode", Some(&r.class_code))]);
                x.opt_cd("code", r.code.as_ref());
                x.addrs(&r.addresses);
                x.telecoms(&r.telecoms);
                if let Some(n) = &r.person {
                    x.open("relatedPerson", &[]);
                    x.name(n);
                    x.close("relatedPerson");
                }
                x.close("relatedEntity");
            }
        }
        x.close("informant");
    }
    x.open("custodian", &[]);
    x.open("assignedCustodian", &[]);
    x.open("representedCustodianOrganization", &[]);
    let c = &report.custodian;
    x.iis("id", &c.ids);
    x.opt_text("name", c.name.as_deref());
    x.telecoms(&c.telecoms);
    x.addrs(&c.addresses);
    x.close("representedCustodianOrganization");
    x.close("assignedCustodian");
    x.close("custodian");
    for r in &report.information_recipients {
        x.open("informationRecipient", &[]);
        x.open("intendedRecipient", &[]);
        x.iis("id", &r.ids);
        x.addrs(&r.addresses);
        x.telecoms(&r.telecoms);
        if let Some(n) = &r.person {
            x.open("informationRecipient", &[]);
            x.name(n);
            x.close("informationRecipient");
        }
        if let Some(o) = &r.organization {
            organization(&mut x, "receivedOrganization", o);
        }
        x.close("intendedRecipient");
        x.close("informationRecipient");
    }
    signer(&mut x, "legalAuthenticator", &report.legal_authenticator);
    for a in &report.authenticators {
        signer(&mut x, "authenticator", a);
    }
    for p in &report.participants {
        x.open("participant", &[("typeCode", Some(&p.type_code))]);
        x.opt_cd("functionCode", p.function_code.as_ref());
        if let Some(t) = &p.time {
            x.ts("time", t.as_str());
        }
        let e = &p.associated_entity;
        x.open("associatedEntity", &[("classCode", Some(&e.class_code))]);
        x.iis("id", &e.ids);
        x.opt_cd("code", e.code.as_ref());
        x.addrs(&e.addresses);
        x.telecoms(&e.telecoms);
        if let Some(n) = &e.person {
            x.open("associatedPerson", &[]);
            x.name(n);
            x.close("associatedPerson");
        }
        if let Some(o) = &e.organization {
            organization(&mut x, "scopingOrganization", o);
        }
        x.close("associatedEntity");
        x.close("participant");
    }
    for o in &report.orders {
        x.open("inFulfillmentOf", &[]);
        x.open(
            "order",
            &[("classCode", Some("ACT")), ("moodCode", Some("RQO"))],
        );
        x.iis("id", &o.ids);
        x.opt_cd("priorityCode", o.priority_code.as_ref());
        x.close("order");
        x.close("inFulfillmentOf");
    }
    for s in &report.documentation_of {
        x.open("documentationOf", &[]);
        x.open("serviceEvent", &[]);
        x.iis("id", &s.ids);
        x.opt_cd("code", s.code.as_ref());
        if let Some(st) = &s.status_code {
            x.empty("statusCode", &[("code", Some(st))]);
        }
        if let Some(t) = &s.effective_time {
            x.interval("effectiveTime", t);
        }
        for p in &s.performers {
            performer(&mut x, "performer", p);
        }
        x.close("serviceEvent");
        x.close("documentationOf");
    }
    for r in &report.related_documents {
        x.open("relatedDocument", &[("typeCode", Some(&r.type_code))]);
        x.open("parentDocument", &[]);
        x.iis("id", &r.ids);
        if let Some(s) = &r.set_id {
            x.ii("setId", s);
        }
        if let Some(v) = r.version_number {
            let v = v.to_string();
            x.empty("versionNumber", &[("value", Some(&v))]);
        }
        x.close("parentDocument");
        x.close("relatedDocument");
    }
    if let Some(e) = &report.encounter {
        encounter(&mut x, e);
    }
    x.open("component", &[]);
    x.open("structuredBody", &[]);
    for s in &report.sections {
        section(&mut x, profile, None, s);
    }
    x.close("structuredBody");
    x.close("component");
    x.close("ClinicalDocument");
    x.finish()
}

fn patient(x: &mut Xml, p: &Patient) {
    x.open("recordTarget", &[]);
    x.open("patientRole", &[]);
    if let Some(cf) = &p.fiscal_code {
        x.ii(
            "id",
            &Ii {
                root: Some(FISCAL_CODE_ROOT.into()),
                extension: Some(cf.as_str().into()),
                assigning_authority_name: Some("MEF".into()),
                null_flavor: None,
            },
        );
    }
    x.iis("id", &p.other_ids);
    x.addrs(&p.addresses);
    x.telecoms(&p.telecoms);
    x.open("patient", &[]);
    x.name(&p.name);
    let (g, g_name) = match p.gender {
        Gender::M => ("M", "Maschio"),
        Gender::F => ("F", "Femmina"),
        Gender::UN => ("UN", "Non definito"),
    };
    x.empty(
        "administrativeGenderCode",
        &[
            ("code", Some(g)),
            ("codeSystem", Some("2.16.840.1.113883.5.1")),
            ("codeSystemName", Some("HL7 AdministrativeGender")),
            ("displayName", Some(g_name)),
        ],
    );
    x.ts("birthTime", p.birth_time.as_str());
    if let Some(place) = &p.birthplace {
        x.open("birthplace", &[]);
        x.open("place", &[]);
        x.addr("addr", place);
        x.close("place");
        x.close("birthplace");
    }
    x.close("patient");
    x.close("patientRole");
    x.close("recordTarget");
}

/// Writes an organisation.
pub(super) fn organization(x: &mut Xml, name: &str, o: &Organization) {
    x.open(name, &[]);
    x.iis("id", &o.ids);
    x.opt_text("name", o.name.as_deref());
    x.telecoms(&o.telecoms);
    x.addrs(&o.addresses);
    if !o.part_of_ids.is_empty() {
        x.open("asOrganizationPartOf", &[]);
        x.iis("id", &o.part_of_ids);
        x.close("asOrganizationPartOf");
    }
    x.close(name);
}

fn assigned(x: &mut Xml, name: &str, a: &Assigned) {
    x.open(name, &[]);
    x.iis("id", &a.ids);
    x.opt_cd("code", a.code.as_ref());
    x.addrs(&a.addresses);
    x.telecoms(&a.telecoms);
    if let Some(n) = &a.person {
        x.open("assignedPerson", &[]);
        x.name(n);
        x.close("assignedPerson");
    }
    if let Some(o) = &a.organization {
        organization(x, "representedOrganization", o);
    }
    x.close(name);
}

/// Writes an author.
pub(super) fn author(x: &mut Xml, a: &Author) {
    x.open("author", &[]);
    x.ts("time", a.time.as_str());
    assigned(x, "assignedAuthor", &a.assigned_author);
    x.close("author");
}

fn signer(x: &mut Xml, name: &str, s: &Signer) {
    x.open(name, &[]);
    x.ts("time", s.time.as_str());
    x.empty(
        "signatureCode",
        &[("code", Some(s.signature_code.as_deref().unwrap_or("S")))],
    );
    assigned(x, "assignedEntity", &s.assigned_entity);
    x.close(name);
}

/// Writes a performer.
pub(super) fn performer(x: &mut Xml, name: &str, p: &Performer) {
    x.open(name, &[("typeCode", Some(&p.type_code))]);
    if let Some(t) = &p.time {
        x.interval("time", t);
    }
    assigned(x, "assignedEntity", &p.assigned_entity);
    x.close(name);
}

fn encounter(x: &mut Xml, e: &Encounter) {
    x.open("componentOf", &[]);
    x.open("encompassingEncounter", &[]);
    x.iis("id", &e.ids);
    x.opt_cd("code", e.code.as_ref());
    x.interval("effectiveTime", &e.effective_time);
    if let Some(r) = &e.responsible_party {
        x.open("responsibleParty", &[]);
        assigned(x, "assignedEntity", r);
        x.close("responsibleParty");
    }
    for p in &e.participants {
        performer(x, "encounterParticipant", p);
    }
    if let Some(f) = &e.facility {
        x.open("location", &[]);
        x.open("healthCareFacility", &[]);
        x.iis("id", &f.ids);
        x.opt_cd("code", f.code.as_ref());
        if f.location_name.is_some() || f.location_address.is_some() {
            x.open("location", &[]);
            x.opt_text("name", f.location_name.as_deref());
            if let Some(a) = &f.location_address {
                x.addr("addr", a);
            }
            x.close("location");
        }
        if let Some(o) = &f.service_provider {
            organization(x, "serviceProviderOrganization", o);
        }
        x.close("healthCareFacility");
        x.close("location");
    }
    x.close("encompassingEncounter");
    x.close("componentOf");
}

fn section(x: &mut Xml, profile: &Profile, parent: Option<&str>, s: &Section) {
    x.open("component", &[]);
    x.open("section", &[("ID", s.xml_id.as_deref())]);
    match &s.template_ids {
        Some(ids) => x.iis("templateId", ids),
        None => {
            let default = s
                .code
                .code
                .as_deref()
                .and_then(|code| profile.section_template(parent, code));
            if let Some(root) = default {
                x.empty("templateId", &[("root", Some(root))]);
            }
        }
    }
    if let Some(id) = &s.id {
        x.ii("id", id);
    }
    x.cd("code", &s.code);
    x.opt_text("title", s.title.as_deref());
    if let Some(t) = &s.text {
        if t.content.is_empty() {
            x.empty("text", &[]);
        } else {
            x.open("text", &[]);
            x.children(&t.content);
            x.close("text");
        }
    }
    for a in &s.authors {
        author(x, a);
    }
    for e in &s.entries {
        x.open("entry", &[("typeCode", e.type_code.as_deref())]);
        super::statement::write_chosen(x, e);
        x.close("entry");
    }
    for sub in &s.sections {
        section(x, profile, s.code.code.as_deref(), sub);
    }
    x.close("section");
    x.close("component");
}
