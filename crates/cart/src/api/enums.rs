//! The closed value sets of the gateway's OpenAPI (`swagger_gtw.yaml` 2.6.3), one Rust enum each.
//!
//! Every enum serialises to, and parses from, exactly the spelling the OpenAPI lists; any other
//! spelling is a deserialisation error, which the sandbox turns into `/msg/mandatory-element`.

use std::fmt;
use std::str::FromStr;

/// Error for a string outside an enum's value set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {kind}")]
pub struct UnknownValue {
    /// The enum's name.
    pub kind: &'static str,
    /// The offending text.
    pub value: String,
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in the OpenAPI's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { kind: stringify!($name), value: s.to_owned() }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_enum! {
    /// `activity` of a validation: plain check, or check that enables a later publication.
    Activity {
        /// Check only (HTTP 200).
        Verifica = "VERIFICA",
        /// Check and remember the CDA hash for a publication (HTTP 201).
        Validation = "VALIDATION",
    }
}

string_enum! {
    /// `mode`: where the CDA sits inside the PDF.
    InjectionMode {
        /// Embedded file `cda.xml`.
        Attachment = "ATTACHMENT",
        /// XFA resource.
        Resource = "RESOURCE",
    }
}

string_enum! {
    /// `healthDataFormat`.
    HealthDataFormat {
        /// HL7 CDA R2.
        Cda = "CDA",
    }
}

string_enum! {
    /// `tipologiaStruttura`: healthcare facility type.
    TipologiaStruttura {
        /// Hospital.
        Ospedale = "Ospedale",
        /// Prevention.
        Prevenzione = "Prevenzione",
        /// Territorial care.
        Territorio = "Territorio",
        /// Sistema TS.
        SistemaTs = "SistemaTS",
        /// Citizen.
        Cittadino = "Cittadino",
        /// Ministry, digital green certificate.
        MdsPnDgc = "MdsPN_DGC",
    }
}

string_enum! {
    /// `tipoDocumentoLivAlto`: high-level document class.
    TipoDocumentoLivAlto {
        /// Referto.
        Wor = "WOR", Ref = "REF", Ldo = "LDO", Ric = "RIC", Sum = "SUM", Tac = "TAC",
        Prs = "PRS", Pre = "PRE", Ese = "ESE", Pdc = "PDC", Vac = "VAC", Cer = "CER",
        Vrb = "VRB", Con = "CON", Cnt = "CNT", Crt = "CRT", Let = "LET", Pro = "PRO",
        Col = "COL",
    }
}

string_enum! {
    /// `tipoAttivitaClinica`.
    TipoAttivitaClinica {
        /// Personal health record.
        Phr = "PHR", Con = "CON", Dis = "DIS", Erp = "ERP", SistemaTs = "Sistema_TS",
        Ini = "INI", PnDgc = "PN_DGC", Obs = "OBS",
    }
}

string_enum! {
    /// `administrativeRequest` items.
    AdministrativeRequest {
        /// Servizio sanitario nazionale.
        Ssn = "SSN", Inpatient = "INPATIENT", Nossn = "NOSSN", Ssr = "SSR", Donor = "DONOR",
        Auto = "AUTO",
    }
}

string_enum! {
    /// `assettoOrganizzativo`: practice setting code.
    AssettoOrganizzativo {
        /// AD_PSC001.
        Psc001 = "AD_PSC001", Psc002 = "AD_PSC002", Psc003 = "AD_PSC003", Psc004 = "AD_PSC004",
        Psc005 = "AD_PSC005", Psc006 = "AD_PSC006", Psc007 = "AD_PSC007", Psc008 = "AD_PSC008",
        Psc009 = "AD_PSC009", Psc010 = "AD_PSC010", Psc011 = "AD_PSC011", Psc012 = "AD_PSC012",
        Psc013 = "AD_PSC013", Psc014 = "AD_PSC014", Psc015 = "AD_PSC015", Psc018 = "AD_PSC018",
        Psc019 = "AD_PSC019", Psc020 = "AD_PSC020", Psc021 = "AD_PSC021", Psc024 = "AD_PSC024",
        Psc025 = "AD_PSC025", Psc026 = "AD_PSC026", Psc027 = "AD_PSC027", Psc028 = "AD_PSC028",
        Psc029 = "AD_PSC029", Psc030 = "AD_PSC030", Psc031 = "AD_PSC031", Psc032 = "AD_PSC032",
        Psc033 = "AD_PSC033", Psc034 = "AD_PSC034", Psc035 = "AD_PSC035", Psc036 = "AD_PSC036",
        Psc037 = "AD_PSC037", Psc038 = "AD_PSC038", Psc039 = "AD_PSC039", Psc040 = "AD_PSC040",
        Psc041 = "AD_PSC041", Psc042 = "AD_PSC042", Psc043 = "AD_PSC043", Psc046 = "AD_PSC046",
        Psc047 = "AD_PSC047", Psc048 = "AD_PSC048", Psc049 = "AD_PSC049", Psc050 = "AD_PSC050",
        Psc051 = "AD_PSC051", Psc052 = "AD_PSC052", Psc054 = "AD_PSC054", Psc055 = "AD_PSC055",
        Psc056 = "AD_PSC056", Psc057 = "AD_PSC057", Psc058 = "AD_PSC058", Psc060 = "AD_PSC060",
        Psc061 = "AD_PSC061", Psc062 = "AD_PSC062", Psc064 = "AD_PSC064", Psc065 = "AD_PSC065",
        Psc066 = "AD_PSC066", Psc067 = "AD_PSC067", Psc068 = "AD_PSC068", Psc069 = "AD_PSC069",
        Psc070 = "AD_PSC070", Psc071 = "AD_PSC071", Psc072 = "AD_PSC072", Psc073 = "AD_PSC073",
        Psc074 = "AD_PSC074", Psc075 = "AD_PSC075", Psc076 = "AD_PSC076", Psc077 = "AD_PSC077",
        Psc078 = "AD_PSC078", Psc094 = "AD_PSC094", Psc096 = "AD_PSC096", Psc097 = "AD_PSC097",
        Psc098 = "AD_PSC098", Psc099 = "AD_PSC099", Psc100 = "AD_PSC100", Psc101 = "AD_PSC101",
        Psc102 = "AD_PSC102", Psc103 = "AD_PSC103", Psc104 = "AD_PSC104", Psc107 = "AD_PSC107",
        Psc109 = "AD_PSC109", Psc121 = "AD_PSC121", Psc122 = "AD_PSC122", Psc126 = "AD_PSC126",
        Psc129 = "AD_PSC129", Psc130 = "AD_PSC130", Psc131 = "AD_PSC131", Psc199 = "AD_PSC199",
        Psc999 = "AD_PSC999",
    }
}

string_enum! {
    /// JWT claim `action_id` (XACML action-id).
    ActionId {
        /// Validation and creation.
        Create = "CREATE",
        /// Replace and metadata update.
        Update = "UPDATE",
        /// Deletion.
        Delete = "DELETE",
        /// Read (status queries).
        Read = "READ",
    }
}

string_enum! {
    /// JWT claim `purpose_of_use` (XSPA purpose of use).
    PurposeOfUse {
        /// Ordinary care: validation, creation.
        Treatment = "TREATMENT",
        /// Invalidate / update: delete, metadata, replace.
        Update = "UPDATE",
        /// Update with P99 blackout policy (metadata only).
        AccessUpdate = "ACCESS UPDATE",
    }
}

string_enum! {
    /// JWT claim `subject_role` (Affinity Domain Italia 2.6 value set).
    SubjectRole {
        /// High-specialisation care staff.
        Aas = "AAS", Apr = "APR", Pss = "PSS", Inf = "INF", Far = "FAR", Dsa = "DSA",
        Dam = "DAM", Oam = "OAM", Ass = "ASS", Tut = "TUT", Ing = "ING", Gen = "GEN",
        Nor = "NOR", Drs = "DRS", Rsa = "RSA", Mrp = "MRP", Ini = "INI", Ogc = "OGC",
        Opi = "OPI", Mds = "MDS", Gtw = "GTW", Dap = "DAP",
    }
}

/// The organisation table (`subject_organization_id` ↔ `subject_organization`), spec table 48.
pub const ORGANIZATIONS: &[(&str, &str)] = &[
    ("010", "Regione Piemonte"),
    ("020", "Regione Valle d'Aosta"),
    ("030", "Regione Lombardia"),
    ("041", "P.A. Bolzano"),
    ("042", "P.A. Trento"),
    ("050", "Regione Veneto"),
    ("060", "Regione Friuli Venezia Giulia"),
    ("070", "Regione Liguria"),
    ("080", "Regione Emilia-Romagna"),
    ("090", "Regione Toscana"),
    ("100", "Regione Umbria"),
    ("110", "Regione Marche"),
    ("120", "Regione Lazio"),
    ("130", "Regione Abruzzo"),
    ("140", "Regione Molise"),
    ("150", "Regione Campania"),
    ("160", "Regione Puglia"),
    ("170", "Regione Basilicata"),
    ("180", "Regione Calabria"),
    ("190", "Regione Sicilia"),
    ("200", "Regione Sardegna"),
    ("000", "INI"),
    ("970", "Sistema TS"),
    ("001", "SASN"),
    ("999", "GTW"),
    ("950", "MDS"),
];

/// The organisation name for a `subject_organization_id`, if the table has it.
pub fn organization_name(id: &str) -> Option<&'static str> {
    ORGANIZATIONS
        .iter()
        .find(|(code, _)| *code == id)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_spelling() {
        for v in AssettoOrganizzativo::ALL {
            let json = serde_json::to_string(v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.as_str()));
            let back: AssettoOrganizzativo = serde_json::from_str(&json).unwrap();
            assert_eq!(back, *v);
        }
        assert_eq!(AssettoOrganizzativo::ALL.len(), 89);
        assert_eq!(TipoDocumentoLivAlto::ALL.len(), 19);
    }

    #[test]
    fn rejects_other_spellings() {
        assert!(serde_json::from_str::<Activity>("\"verifica\"").is_err());
        assert!("Sistema TS".parse::<TipoAttivitaClinica>().is_err());
        assert_eq!("ACCESS UPDATE".parse(), Ok(PurposeOfUse::AccessUpdate));
    }

    #[test]
    fn tuscany_is_090() {
        assert_eq!(organization_name("090"), Some("Regione Toscana"));
        assert_eq!(organization_name("091"), None);
    }
}
