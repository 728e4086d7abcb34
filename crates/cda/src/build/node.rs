//! The generic clinical-statement tree of section entries, written in JSON as JsonML
//! (<http://www.jsonml.org>): an element is an array `[name, {attributes}?, children...]`,
//! a child is another element array or a text string. Names are CDA names in camelCase
//! (`observation`, `entryRelationship`, `value`...), attributes are the CDA ones (`classCode`,
//! `xsi:type`...). Only names of the CDA R2 clinical-statement vocabulary are accepted (plus
//! `sdtc:` and the IHE laboratory `lab:` extensions), so a typo is an error, and timestamps in
//! `effectiveTime`/`time`/`low`/`high` are checked like every other date.
//!
//! Example: `["observation", {"classCode": "OBS", "moodCode": "EVN"}, ["code", {"code":
//! "14957-5", "codeSystem": "2.16.840.1.113883.6.1"}], ["value", {"xsi:type": "PQ", "value":
//! "1.2", "unit": "mg/dL"}]]`.

use super::types::check_ts;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Maximum nesting depth of a statement tree.
const MAX_DEPTH: usize = 100;

/// Root elements an entry may hold.
pub const STATEMENTS: &[&str] = &[
    "observation",
    "act",
    "organizer",
    "substanceAdministration",
    "procedure",
    "encounter",
    "supply",
    "observationMedia",
    "regionOfInterest",
];

/// Element names accepted inside a statement tree (CDA R2 POCD_MT000040 clinical statements,
/// their participations and roles, and the parts of the HL7 data types).
const ELEMENTS: &[&str] = &[
    // statements
    "observation",
    "act",
    "organizer",
    "substanceAdministration",
    "procedure",
    "encounter",
    "supply",
    "observationMedia",
    "regionOfInterest",
    "externalAct",
    "externalObservation",
    "externalProcedure",
    "externalDocument",
    // infrastructure and attributes of acts
    "realmCode",
    "typeId",
    "templateId",
    "id",
    "code",
    "derivationExpr",
    "text",
    "statusCode",
    "effectiveTime",
    "priorityCode",
    "repeatNumber",
    "languageCode",
    "value",
    "interpretationCode",
    "methodCode",
    "targetSiteCode",
    "approachSiteCode",
    "routeCode",
    "doseQuantity",
    "rateQuantity",
    "maxDoseQuantity",
    "administrationUnitCode",
    "independentInd",
    "quantity",
    "expectedUseTime",
    "setId",
    "versionNumber",
    // act relationships and participations
    "subject",
    "specimen",
    "performer",
    "author",
    "informant",
    "participant",
    "entryRelationship",
    "reference",
    "precondition",
    "criterion",
    "referenceRange",
    "observationRange",
    "component",
    "sequenceNumber",
    "seperatableInd",
    "consumable",
    "product",
    "time",
    "signatureCode",
    "modeCode",
    "awarenessCode",
    "functionCode",
    // roles and entities
    "relatedSubject",
    "specimenRole",
    "specimenPlayingEntity",
    "assignedEntity",
    "assignedPerson",
    "representedOrganization",
    "assignedAuthor",
    "assignedAuthoringDevice",
    "relatedEntity",
    "relatedPerson",
    "participantRole",
    "playingEntity",
    "playingDevice",
    "scopingEntity",
    "manufacturedProduct",
    "manufacturedMaterial",
    "manufacturedLabeledDrug",
    "manufacturerOrganization",
    "lotNumberText",
    "asOrganizationPartOf",
    "wholeOrganization",
    "administrativeGenderCode",
    "birthTime",
    "manufacturerModelName",
    "softwareName",
    "desc",
    "standardIndustryClassCode",
    // data-type parts
    "addr",
    "telecom",
    "name",
    "family",
    "given",
    "prefix",
    "suffix",
    "delimiter",
    "country",
    "state",
    "county",
    "city",
    "censusTract",
    "postalCode",
    "streetAddressLine",
    "houseNumber",
    "streetName",
    "precinct",
    "additionalLocator",
    "unitID",
    "careOf",
    "useablePeriod",
    "validTime",
    "low",
    "high",
    "center",
    "width",
    "period",
    "phase",
    "numerator",
    "denominator",
    "translation",
    "originalText",
    "qualifier",
    "thumbnail",
    "comp",
    // extensions
    "sdtc:statusCode",
    "sdtc:id",
    "sdtc:birthTime",
    "sdtc:deceasedInd",
    "sdtc:deceasedTime",
    "lab:precondition",
    "lab:criterion",
    "lab:code",
    "lab:value",
];

/// Attribute names accepted on those elements, in the order they are written (whatever the
/// order of the JSON object).
const ATTRIBUTES: &[&str] = &[
    "xsi:type",
    "classCode",
    "moodCode",
    "typeCode",
    "contextControlCode",
    "contextConductionInd",
    "inversionInd",
    "negationInd",
    "determinerCode",
    "root",
    "extension",
    "assigningAuthorityName",
    "displayable",
    "code",
    "codeSystem",
    "codeSystemName",
    "codeSystemVersion",
    "displayName",
    "nullFlavor",
    "value",
    "unit",
    "use",
    "inclusive",
    "operator",
    "institutionSpecified",
    "alignment",
    "mediaType",
    "representation",
    "language",
    "compression",
    "integrityCheck",
    "integrityCheckAlgorithm",
    "ID",
    "IDREF",
    "partType",
    "qualifier",
    "isCriterionInd",
    "separatableInd",
    "independentInd",
];

/// An element of a statement tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// CDA element name, possibly prefixed (`sdtc:`, `lab:`).
    pub name: String,
    /// Attributes, in the canonical order of the accepted attribute list.
    pub attrs: Vec<(String, String)>,
    /// Children, in order.
    pub children: Vec<Child>,
}

/// A child of a [`Node`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Child {
    /// A nested element.
    Element(Node),
    /// Character data.
    Text(String),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let node = Node::from_json(&value, None, 0).map_err(|(at, msg)| {
            if at.is_empty() {
                serde::de::Error::custom(msg)
            } else {
                serde::de::Error::custom(format!("at {at}: {msg}"))
            }
        })?;
        if !STATEMENTS.contains(&node.name.as_str()) {
            return Err(serde::de::Error::custom(format!(
                "an entry holds a clinical statement ({}), not `{}`",
                STATEMENTS.join(", "),
                node.name
            )));
        }
        Ok(node)
    }
}

type NodeError = (String, String);

fn at(index: usize, (inner, msg): NodeError) -> NodeError {
    (format!("[{index}]{inner}"), msg)
}

impl Node {
    /// Reads a JsonML element. Errors carry the JsonML index path (`[3][1]`) and a message.
    fn from_json(value: &Value, parent: Option<&str>, depth: usize) -> Result<Node, NodeError> {
        if depth > MAX_DEPTH {
            return Err((
                String::new(),
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        let items = value.as_array().ok_or_else(|| {
            (
                String::new(),
                "expected an element array [name, {attributes}?, children...]".to_string(),
            )
        })?;
        let name = match items.first() {
            Some(Value::String(s)) => s.clone(),
            _ => {
                return Err((
                    String::new(),
                    "an element array starts with the element name".into(),
                ))
            }
        };
        if !ELEMENTS.contains(&name.as_str()) {
            return Err(("[0]".into(), format!("unknown CDA element `{name}`")));
        }
        let mut node = Node {
            name,
            attrs: Vec::new(),
            children: Vec::new(),
        };
        let mut rest = 1;
        if let Some(Value::Object(map)) = items.get(1) {
            rest = 2;
            for (key, val) in map {
                if !ATTRIBUTES.contains(&key.as_str()) {
                    return Err(("[1]".into(), format!("unknown CDA attribute `{key}`")));
                }
                let Value::String(text) = val else {
                    return Err(("[1]".into(), format!("attribute `{key}` must be a string")));
                };
                node.attrs.push((key.clone(), text.clone()));
            }
            node.attrs
                .sort_by_key(|(k, _)| ATTRIBUTES.iter().position(|a| a == k));
            node.check_time(parent)
                .map_err(|msg| ("[1]".to_string(), msg))?;
        }
        for (i, item) in items.iter().enumerate().skip(rest) {
            match item {
                Value::String(s) => node.children.push(Child::Text(s.clone())),
                Value::Array(_) => {
                    let child =
                        Node::from_json(item, Some(&node.name), depth + 1).map_err(|e| at(i, e))?;
                    node.children.push(Child::Element(child));
                }
                _ => {
                    return Err((
                        format!("[{i}]"),
                        "a child is an element array or a text string".into(),
                    ))
                }
            }
        }
        Ok(node)
    }

    /// The value of an attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Checks `@value` of time elements as an HL7 timestamp.
    fn check_time(&self, parent: Option<&str>) -> Result<(), String> {
        let is_time = match self.name.as_str() {
            "effectiveTime" | "time" | "birthTime" | "expectedUseTime" => {
                matches!(self.attr("xsi:type"), None | Some("TS" | "IVL_TS"))
            }
            "low" | "high" | "center" => {
                matches!(parent, Some("effectiveTime" | "time" | "expectedUseTime"))
            }
            _ => false,
        };
        match (is_time, self.attr("value")) {
            (true, Some(v)) => check_ts(v, 4)
                .map_err(|why| format!("invalid date {v:?} in `{}`: {why}", self.name)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Node, String> {
        serde_json::from_str::<Node>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_jsonml() {
        let n = parse(
            r#"["observation", {"moodCode": "EVN", "classCode": "OBS"},
                ["code", {"code": "1"}], ["text", "hello"]]"#,
        )
        .unwrap();
        assert_eq!(n.name, "observation");
        assert_eq!(n.attrs[0].0, "classCode");
        assert_eq!(n.children.len(), 2);
    }

    #[test]
    fn rejects_unknown_names_and_bad_dates() {
        let e = parse(r#"["observation", ["cod", {"code": "1"}]]"#).unwrap_err();
        assert!(e.contains("at [1][0]: unknown CDA element `cod`"), "{e}");
        let e = parse(r#"["observation", ["code", {"cod": "1"}]]"#).unwrap_err();
        assert!(e.contains("unknown CDA attribute `cod`"), "{e}");
        let e = parse(r#"["observation", ["effectiveTime", ["low", {"value": "2024-01-01"}]]]"#)
            .unwrap_err();
        assert!(e.contains("at [1][1][1]: invalid date"), "{e}");
        assert!(parse(r#"["value", {"value": "1"}]"#).is_err());
        assert!(parse(
            r#"["observation", ["value", {"xsi:type": "IVL_PQ"}, ["low", {"value": "1.5"}]]]"#
        )
        .is_ok());
    }
}
