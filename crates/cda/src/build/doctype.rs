//! Per-type knowledge, as data: for each FSE document type of the national accreditation set,
//! its national templateId, LOINC document code, implementation-guide version and the sections
//! its official schematron requires. Figures come from the HL7 Italia guides and the official
//! schematron of each type.

use serde::Deserialize;

/// LOINC, the code system of document and section codes.
pub const LOINC: &str = "2.16.840.1.113883.6.1";

/// A document type the builder knows (the `type` field of the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, schemars::JsonSchema)]
pub enum DocType {
    /// Referto di Medicina di Laboratorio.
    #[serde(rename = "LAB")]
    Lab,
    /// Referto di Medicina di Laboratorio, transfusion variant (section "Blood bank studies").
    #[serde(rename = "LAB_TRASF")]
    LabTrasf,
    /// Lettera di Dimissione Ospedaliera.
    #[serde(rename = "LDO")]
    Ldo,
    /// Referto di Radiologia.
    #[serde(rename = "RAD")]
    Rad,
    /// Referto di Specialistica Ambulatoriale.
    #[serde(rename = "RSA")]
    Rsa,
    /// Verbale di Pronto Soccorso.
    #[serde(rename = "VPS")]
    Vps,
    /// Profilo Sanitario Sintetico (patient summary).
    #[serde(rename = "PSS")]
    Pss,
    /// Referto di Anatomia Patologica.
    #[serde(rename = "RAP")]
    Rap,
    /// Scheda della singola Vaccinazione.
    #[serde(rename = "SING_VACC")]
    SingVacc,
    /// Certificato Vaccinale.
    #[serde(rename = "CERT_VACC")]
    CertVacc,
}

/// What the builder knows about one document type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// The short name used for fixture folders and `--out-dir` sub-folders.
    pub abbrev: &'static str,
    /// LOINC code of the document (`ClinicalDocument/code/@code`).
    pub loinc: &'static str,
    /// Default `displayName` of the document code.
    pub display_name: &'static str,
    /// The national templateId root: written first, the gateway picks the schematron by it.
    pub template_root: &'static str,
    /// Default `templateId/@extension` (the implementation-guide version).
    pub template_version: &'static str,
    /// Top-level sections the schematron requires: (LOINC code, Italian name).
    pub required_sections: &'static [(&'static str, &'static str)],
    /// When true, the body must hold at least one top-level section.
    pub needs_a_section: bool,
    /// Default section templateIds: (parent section code, `""` at top level; section code;
    /// templateId root), used when a section of the input gives no `template_ids`.
    pub section_templates: &'static [(&'static str, &'static str, &'static str)],
}

impl Profile {
    /// The default templateId root of a section, by its parent's code (`None` at top level)
    /// and its own code.
    pub fn section_template(&self, parent: Option<&str>, code: &str) -> Option<&'static str> {
        let parent = parent.unwrap_or("");
        self.section_templates
            .iter()
            .find(|(p, c, _)| *p == parent && *c == code)
            .map(|(_, _, root)| *root)
    }
}

impl DocType {
    /// Every type, in the order of the accreditation checklist.
    pub const ALL: [DocType; 10] = [
        DocType::Lab,
        DocType::LabTrasf,
        DocType::Ldo,
        DocType::Rad,
        DocType::Rsa,
        DocType::Vps,
        DocType::Pss,
        DocType::Rap,
        DocType::SingVacc,
        DocType::CertVacc,
    ];

    /// The profile of this type.
    pub fn profile(self) -> &'static Profile {
        match self {
            DocType::Lab => &LAB,
            DocType::LabTrasf => &LAB_TRASF,
            DocType::Ldo => &LDO,
            DocType::Rad => &RAD,
            DocType::Rsa => &RSA,
            DocType::Vps => &VPS,
            DocType::Pss => &PSS,
            DocType::Rap => &RAP,
            DocType::SingVacc => &SING_VACC,
            DocType::CertVacc => &CERT_VACC,
        }
    }

    /// The short name (`LAB`, `LAB_TRASF`, ...).
    pub fn abbrev(self) -> &'static str {
        self.profile().abbrev
    }
}

static LAB: Profile = Profile {
    abbrev: "LAB",
    loinc: "11502-2",
    display_name: "Referto di laboratorio",
    template_root: "2.16.840.1.113883.2.9.10.1.1",
    template_version: "1.3",
    required_sections: &[],
    needs_a_section: true,
    section_templates: &[],
};

static LAB_TRASF: Profile = Profile {
    abbrev: "LAB_TRASF",
    required_sections: &[("18717-9", "Medicina trasfusionale (Blood bank studies)")],
    ..LAB
};

static LDO: Profile = Profile {
    abbrev: "LDO",
    loinc: "34105-7",
    display_name: "Lettera di dimissione ospedaliera",
    template_root: "2.16.840.1.113883.2.9.10.1.5",
    template_version: "1.2",
    required_sections: &[
        ("46241-6", "Motivo del ricovero"),
        ("8648-8", "Decorso ospedaliero"),
        (
            "11535-2",
            "Condizioni del paziente e diagnosi alla dimissione",
        ),
    ],
    needs_a_section: true,
    section_templates: &[],
};

static RAD: Profile = Profile {
    abbrev: "RAD",
    loinc: "68604-8",
    display_name: "Referto radiologico",
    template_root: "2.16.840.1.113883.2.9.10.1.7.1",
    template_version: "1.1",
    required_sections: &[("55111-9", "Esame eseguito"), ("18782-3", "Referto")],
    needs_a_section: true,
    section_templates: &[],
};

static RSA: Profile = Profile {
    abbrev: "RSA",
    loinc: "11488-4",
    display_name: "Referto specialistico",
    template_root: "2.16.840.1.113883.2.9.10.1.9.1",
    template_version: "1.1",
    required_sections: &[("62387-6", "Prestazioni"), ("47045-0", "Referto")],
    needs_a_section: true,
    section_templates: &[],
};

static VPS: Profile = Profile {
    abbrev: "VPS",
    loinc: "59258-4",
    display_name: "Verbale di pronto soccorso",
    template_root: "2.16.840.1.113883.2.9.10.1.6.1",
    template_version: "1.1",
    required_sections: &[
        ("11459-5", "Modalita' di trasporto"),
        ("46239-0", "Motivo della visita"),
        ("54094-8", "Triage"),
        ("28574-2", "Dimissione"),
    ],
    needs_a_section: true,
    section_templates: &[
        ("", "11459-5", "2.16.840.1.113883.2.9.10.1.6.20"),
        ("", "18776-5", "2.16.840.1.113883.2.9.10.1.6.34"),
        ("", "28574-2", "2.16.840.1.113883.2.9.10.1.6.24"),
        ("", "29549-3", "2.16.840.1.113883.2.9.10.1.6.29"),
        ("", "30954-2", "2.16.840.1.113883.2.9.10.1.6.27"),
        ("", "46239-0", "2.16.840.1.113883.2.9.10.1.6.42"),
        ("", "46240-8", "2.16.840.1.113883.2.9.10.1.6.50"),
        ("", "54094-8", "2.16.840.1.113883.2.9.10.1.6.21"),
        ("", "62387-6", "2.16.840.1.113883.2.9.10.1.6.26"),
        ("", "75311-1", "2.16.840.1.113883.2.9.10.1.6.74"),
        ("", "78337-3", "2.16.840.1.113883.2.9.10.1.6.56"),
        ("", "8648-8", "2.16.840.1.113883.2.9.10.1.6.23"),
        ("", "8716-3", "2.16.840.1.113883.2.9.10.1.6.28"),
        ("78337-3", "11329-0", "2.16.840.1.113883.2.9.10.1.6.55"),
        ("78337-3", "11450-4", "2.16.840.1.113883.2.9.10.1.6.59"),
        ("78337-3", "29545-1", "2.16.840.1.113883.2.9.10.1.6.58"),
        ("78337-3", "42346-7", "2.16.840.1.113883.2.9.10.1.6.57"),
        ("78337-3", "48765-2", "2.16.840.1.113883.2.9.10.1.6.33"),
    ],
};

static PSS: Profile = Profile {
    abbrev: "PSS",
    loinc: "60591-5",
    display_name: "Profilo sanitario sintetico",
    template_root: "2.16.840.1.113883.2.9.10.1.4.1.1",
    template_version: "1.4",
    required_sections: &[
        ("48765-2", "Allergie e intolleranze"),
        ("10160-0", "Terapie farmacologiche"),
        ("11450-4", "Lista dei problemi"),
        ("10157-6", "Anamnesi familiare"),
    ],
    needs_a_section: true,
    section_templates: &[
        ("", "10157-6", "2.16.840.1.113883.2.9.10.1.4.2.16"),
        ("", "10160-0", "2.16.840.1.113883.2.9.10.1.4.2.2"),
        ("", "10162-6", "2.16.840.1.113883.2.9.10.1.4.2.7"),
        ("", "11369-6", "2.16.840.1.113883.2.9.10.1.4.2.3"),
        ("", "11450-4", "2.16.840.1.113883.2.9.10.1.4.2.4"),
        ("", "18776-5", "2.16.840.1.113883.2.9.10.1.4.2.10"),
        ("", "29762-2", "2.16.840.1.113883.2.9.10.1.4.2.6"),
        ("", "30954-2", "2.16.840.1.113883.2.9.10.1.4.2.14"),
        ("", "42348-3", "2.16.840.1.113883.2.9.10.1.4.2.15"),
        ("", "46240-8", "2.16.840.1.113883.2.9.10.1.4.2.12"),
        ("", "46264-8", "2.16.840.1.113883.2.9.10.1.4.2.9"),
        ("", "47420-5", "2.16.840.1.113883.2.9.10.1.4.2.13"),
        ("", "47519-4", "2.16.840.1.113883.2.9.10.1.4.2.11"),
        ("", "48765-2", "2.16.840.1.113883.2.9.10.1.4.2.1"),
        ("", "57827-8", "2.16.840.1.113883.2.9.10.1.4.2.17"),
        ("", "8716-3", "2.16.840.1.113883.2.9.10.1.4.2.8"),
        ("", "PSSIT99", "2.16.840.1.113883.2.9.10.1.4.2.18"),
    ],
};

static RAP: Profile = Profile {
    abbrev: "RAP",
    loinc: "11526-1",
    display_name: "Referto di anatomia patologica",
    template_root: "2.16.840.1.113883.2.9.10.1.8.1",
    template_version: "1.3",
    required_sections: &[("29300-1", "Procedura"), ("22637-3", "Diagnosi")],
    needs_a_section: true,
    section_templates: &[
        ("", "22634-0", "2.16.840.1.113883.3.1937.777.63.10.149"),
        ("", "22635-7", "2.16.840.1.113883.3.1937.777.63.10.193"),
        ("", "22636-5", "2.16.840.1.113883.3.1937.777.63.10.132"),
        ("", "22637-3", "2.16.840.1.113883.3.1937.777.63.10.176"),
        ("", "22639-9", "2.16.840.1.113883.3.1937.777.63.10.197"),
        ("", "29300-1", "2.16.840.1.113883.3.1937.777.63.10.142"),
        ("", "33755-0", "2.16.840.1.113883.3.1937.777.63.10.190"),
        ("", "62385-0", "2.16.840.1.113883.3.1937.777.63.10.220"),
        ("", "85691-4", "2.16.840.1.113883.3.1937.777.63.10.211"),
        (
            "22636-5",
            "103567-4",
            "2.16.840.1.113883.3.1937.777.63.10.175",
        ),
        (
            "22636-5",
            "11329-0",
            "2.16.840.1.113883.3.1937.777.63.10.282",
        ),
        (
            "22636-5",
            "42349-1",
            "2.16.840.1.113883.3.1937.777.63.10.130",
        ),
        (
            "22636-5",
            "47519-4",
            "2.16.840.1.113883.3.1937.777.63.10.180",
        ),
        (
            "22636-5",
            "48765-2",
            "2.16.840.1.113883.3.1937.777.63.10.155",
        ),
        (
            "22636-5",
            "55114-3",
            "2.16.840.1.113883.3.1937.777.63.10.184",
        ),
        (
            "22636-5",
            "67803-7",
            "2.16.840.1.113883.3.1937.777.63.10.167",
        ),
        (
            "22636-5",
            "8677-7",
            "2.16.840.1.113883.3.1937.777.63.10.169",
        ),
    ],
};

static SING_VACC: Profile = Profile {
    abbrev: "SING_VACC",
    loinc: "87273-9",
    display_name: "Scheda della singola vaccinazione",
    template_root: "2.16.840.1.113883.2.9.10.1.11.1.1",
    template_version: "1.1",
    required_sections: &[("11369-6", "Vaccinazioni")],
    needs_a_section: true,
    section_templates: &[("", "11369-6", "2.16.840.1.113883.2.9.10.1.11.3.1")],
};

static CERT_VACC: Profile = Profile {
    abbrev: "CERT_VACC",
    loinc: "82593-5",
    display_name: "Certificato vaccinale",
    template_root: "2.16.840.1.113883.2.9.10.1.11.1.2",
    template_version: "1.1",
    required_sections: &[("11369-6", "Vaccinazioni")],
    needs_a_section: true,
    section_templates: &[("", "11369-6", "2.16.840.1.113883.2.9.10.1.11.3.2")],
};
