//! Typed `requestBody` parts (the OpenAPI's `*ReqDTO` schemas).

use super::enums::*;
use serde::{Deserialize, Serialize};

/// `ValidationCDAReqDTO`: body of `POST /documents/validation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidationRequest {
    /// Always `CDA` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_data_format: Option<HealthDataFormat>,
    /// Where the CDA sits in the PDF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<InjectionMode>,
    /// `VERIFICA` or `VALIDATION`.
    pub activity: Activity,
}

macro_rules! publication_body {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $vis:vis $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            /// Facility type.
            pub tipologia_struttura: TipologiaStruttura,
            /// Access policy codes of the clinical acts.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub atti_clinici_regole_accesso: Option<Vec<String>>,
            /// High-level document class.
            pub tipo_documento_liv_alto: TipoDocumentoLivAlto,
            /// Practice setting.
            pub assetto_organizzativo: AssettoOrganizzativo,
            /// Service start date.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub data_inizio_prestazione: Option<String>,
            /// Service end date.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub data_fine_prestazione: Option<String>,
            /// Legal-archiving reference.
            #[serde(rename = "conservazioneANorma", default, skip_serializing_if = "Option::is_none")]
            pub conservazione_a_norma: Option<String>,
            /// Clinical activity type.
            pub tipo_attivita_clinica: TipoAttivitaClinica,
            /// Submission-set identifier.
            pub identificativo_sottomissione: String,
            /// Free descriptions (coded).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub descriptions: Option<Vec<String>>,
            /// Administrative regime.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub administrative_request: Option<Vec<AdministrativeRequest>>,
            $($(#[$fmeta])* $vis $field: $ty,)*
        }
    };
}

publication_body! {
    /// `PublicationCreationReqDTO`: body of `POST /documents`.
    PublicationRequest {
        /// Document unique id (`root^extension`).
        pub identificativo_doc: String,
        /// Repository id.
        pub identificativo_rep: String,
        /// Where the CDA sits in the PDF.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mode: Option<InjectionMode>,
        /// Always `CDA` when present.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub health_data_format: Option<HealthDataFormat>,
        /// Workflow instance id of the validation (optional: the gateway finds it by hash).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub workflow_instance_id: Option<String>,
        /// Priority lane.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub priorita: Option<bool>,
    }
}

publication_body! {
    /// `PublicationUpdateReqDTO`: body of `PUT /documents/{idDoc}`.
    ReplaceRequest {
        /// New document unique id.
        pub identificativo_doc: String,
        /// Repository id.
        pub identificativo_rep: String,
        /// Where the CDA sits in the PDF.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mode: Option<InjectionMode>,
        /// Always `CDA` when present.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub health_data_format: Option<HealthDataFormat>,
        /// Workflow instance id of the validation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub workflow_instance_id: Option<String>,
    }
}

publication_body! {
    /// `PublicationMetadataReqDTO`: body of `PUT /documents/{idDoc}/metadata-iti-57` (JSON, not
    /// multipart).
    MetadataRequest {}
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_CONTAINER_CREATE: &str = r#"{
      "tipologiaStruttura": "Ospedale",
      "attiCliniciRegoleAccesso": [ "PUBLICPOL" ],
      "tipoDocumentoLivAlto": "WOR",
      "assettoOrganizzativo": "AD_PSC001",
      "conservazioneANorma": "string",
      "tipoAttivitaClinica": "PHR",
      "identificativoSottomissione": "string",
      "healthDataFormat": "CDA",
      "mode": "ATTACHMENT",
      "identificativoDoc": "2.16.840.1.113883.2.9.2.110.4.4^12345",
      "identificativoRep": "2.16.840.1.113883.2.9.2.150.4.5.1",
      "priorita": true
    }"#;

    #[test]
    fn parses_the_test_container_create_body() {
        let body: PublicationRequest = serde_json::from_str(TEST_CONTAINER_CREATE).unwrap();
        assert_eq!(body.tipo_documento_liv_alto, TipoDocumentoLivAlto::Wor);
        assert_eq!(body.conservazione_a_norma.as_deref(), Some("string"));
        assert_eq!(body.priorita, Some(true));
        let again: PublicationRequest =
            serde_json::from_str(&serde_json::to_string(&body).unwrap()).unwrap();
        assert_eq!(again, body);
    }

    #[test]
    fn rejects_unknown_fields_and_values() {
        let extra = TEST_CONTAINER_CREATE.replace("\"priorita\"", "\"prioritaX\"");
        assert!(serde_json::from_str::<PublicationRequest>(&extra).is_err());
        let bad_enum = TEST_CONTAINER_CREATE.replace("\"WOR\"", "\"XXX\"");
        assert!(serde_json::from_str::<PublicationRequest>(&bad_enum).is_err());
        let missing = TEST_CONTAINER_CREATE.replace("\"identificativoRep\"", "\"descriptions\"");
        assert!(serde_json::from_str::<PublicationRequest>(&missing).is_err());
        assert!(serde_json::from_str::<ValidationRequest>(r#"{"mode":"ATTACHMENT"}"#).is_err());
        assert!(
            serde_json::from_str::<ValidationRequest>(r#"{"activity":"VERIFICA","x":1}"#).is_err()
        );
    }

    #[test]
    fn metadata_body_has_no_document_id() {
        let body = r#"{"tipologiaStruttura":"Ospedale","tipoDocumentoLivAlto":"WOR",
            "assettoOrganizzativo":"AD_PSC001","tipoAttivitaClinica":"PHR",
            "identificativoSottomissione":"s"}"#;
        assert!(serde_json::from_str::<MetadataRequest>(body).is_ok());
        let with_doc = body.replace("\"s\"}", "\"s\",\"identificativoDoc\":\"x\"}");
        assert!(serde_json::from_str::<MetadataRequest>(&with_doc).is_err());
    }
}
