//! Typed success bodies (`ValidationResDTO`, `PublicationResDTO`, `ResponseWifDTO`,
//! `TransactionInspectResDTO`).
//!
//! Parsing tolerates unknown fields: a client must never mistake an accepted publication for
//! a malformed answer because the gateway added a field.

use serde::{Deserialize, Serialize};

/// Body of every accepted validation / publication / replace / metadata / delete: the three
/// DTOs of the OpenAPI have the same four fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayResponse {
    /// Trace id of the gateway's processing.
    #[serde(rename = "traceID", default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Span id.
    #[serde(rename = "spanID", default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// Workflow instance id to query the transaction's status.
    #[serde(
        rename = "workflowInstanceId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workflow_instance_id: Option<String>,
    /// Non-blocking warning (e.g. schematron warnings, missing `mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// One event of a transaction (`StatusCheckDTO`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusEvent {
    /// e.g. `VALIDATION`, `PUBLICATION`, `SEND_TO_INI`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// ISO-8601 timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_date: Option<String>,
    /// `SUCCESS`, `BLOCKING_ERROR`, `NON_BLOCKING_ERROR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_status: Option<String>,
    /// Free message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Document id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identificativo_documento: Option<String>,
    /// JWT `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// JWT `subject_role`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_role: Option<String>,
    /// Clinical activity type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tipo_attivita: Option<String>,
    /// JWT `subject_organization_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizzazione: Option<String>,
    /// Workflow instance id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_instance_id: Option<String>,
    /// Trace id of the call that produced the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// JWT `iss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// When the event is purged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiring_date: Option<String>,
    /// Extra data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

/// Body of the two status endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionInspection {
    /// Trace id of the status call.
    #[serde(rename = "traceID", default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Span id.
    #[serde(rename = "spanID", default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// Events, oldest first.
    #[serde(rename = "transactionData", default)]
    pub transaction_data: Vec<StatusEvent>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_examples() {
        let ok = r#"{"traceID":"96c6883856f9f887","spanID":"96c6883856f9f887",
          "workflowInstanceId":"2.16.840.1.113883.2.9.2.120.4.4.847c.bcf54e7cb9^^^^urn:ihe:iti:xdw:2013:workflowInstanceId",
          "warning":"Attenzione, non è stata selezionata la modalità di estrazione del CDA"}"#;
        let r: GatewayResponse = serde_json::from_str(ok).unwrap();
        assert_eq!(r.trace_id.as_deref(), Some("96c6883856f9f887"));
        assert!(r.warning.unwrap().starts_with("Attenzione"));
        let status = r#"{"traceID":"a","spanID":"b","transactionData":[{"eventType":"VALIDATION",
          "eventDate":"2024-10-23T12:26:06.971+02:00","eventStatus":"SUCCESS","organizzazione":"120",
          "traceId":"13dfc4b489d37ca3","issuer":"integrity:S1#110201234567XX"}]}"#;
        let s: TransactionInspection = serde_json::from_str(status).unwrap();
        assert_eq!(
            s.transaction_data[0].trace_id.as_deref(),
            Some("13dfc4b489d37ca3")
        );
    }

    #[test]
    fn tolerates_fields_the_gateway_may_add() {
        let r: GatewayResponse =
            serde_json::from_str(r#"{"traceID":"t","workflowInstanceId":"w","newField":1}"#)
                .unwrap();
        assert_eq!(r.workflow_instance_id.as_deref(), Some("w"));
    }
}
