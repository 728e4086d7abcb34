//! The JSON Schema of the input model (`fse cda schema`), for editors: completion and
//! checking of field names, types and enumerations while writing a report. It is derived
//! from the model's types; the checks the builder makes beyond the schema (fiscal-code check
//! character, calendar dates, the sections a type requires…) are reported by `fse cda build`.

use super::narrative::{Narrative, RawNarrative, Text};
use super::node::Node;
use super::types::{FiscalCode, ModelVersion, Ts, MODEL_VERSION};
use super::Report;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use std::borrow::Cow;

/// The JSON Schema (draft 2020-12) of a [`Report`].
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Report);
    schema.insert(
        "title".into(),
        format!("fse report model ({MODEL_VERSION})").into(),
    );
    schema.to_value()
}

impl JsonSchema for ModelVersion {
    fn schema_name() -> Cow<'static, str> {
        "ModelVersion".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "const": MODEL_VERSION })
    }
}

/// A string schema with its description and pattern.
fn string(description: &str, pattern: &str) -> Schema {
    json_schema!({ "type": "string", "description": description, "pattern": pattern })
}

impl JsonSchema for Ts {
    fn schema_name() -> Cow<'static, str> {
        "Ts".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string(
            "HL7 point in time: YYYYMMDD[HH[MM[SS[.F]]]][+ZZZZ|-ZZZZ]",
            r"^[0-9]{8}([0-9]{2}([0-9]{2}([0-9]{2}(\.[0-9]+)?)?)?)?([+-][0-9]{4})?$",
        )
    }
}

impl JsonSchema for FiscalCode {
    fn schema_name() -> Cow<'static, str> {
        "FiscalCode".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string(
            "Italian fiscal code (codice fiscale), 16 characters",
            "^[A-Za-z0-9]{16}$",
        )
    }
}

impl JsonSchema for Narrative {
    fn schema_name() -> Cow<'static, str> {
        "Narrative".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = RawNarrative::json_schema(generator);
        schema.insert(
            "description".into(),
            "Section text: exactly one of `paragraphs`, `blocks` or `xml`".into(),
        );
        schema.insert("minProperties".into(), 1.into());
        schema.insert("maxProperties".into(), 1.into());
        schema
    }
}

impl JsonSchema for Text {
    fn schema_name() -> Cow<'static, str> {
        "Text".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let run = json_schema!({
            "type": "object",
            "properties": {
                "content": { "type": "string" },
                "id": { "type": "string" },
                "style_code": { "type": "string" }
            },
            "required": ["content"],
            "additionalProperties": false
        });
        json_schema!({
            "description": "A string, a run {\"content\", \"id\", \"style_code\"}, or a list of both",
            "anyOf": [
                { "type": "string" },
                run.clone(),
                { "type": "array", "items": { "anyOf": [ { "type": "string" }, run ] } }
            ]
        })
    }
}

impl JsonSchema for Node {
    fn schema_name() -> Cow<'static, str> {
        "Node".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A CDA element as JsonML: [\"name\", {attributes}?, children…], \
                            children being elements or text",
            "type": "array",
            "prefixItems": [ { "type": "string" } ],
            "minItems": 1
        })
    }
}
