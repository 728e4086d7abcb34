//! The gateway's API as Rust types: request bodies with the OpenAPI's enums, success responses,
//! RFC 7807 problems with the gateway's `type` URIs, the operations with their HTTP method,
//! path, `action_id` and `purpose_of_use`, and the gateway's request checks that go beyond the
//! OpenAPI ([`correlation`]: `tipoDocumentoLivAlto` by document type, the `identificativoDoc`
//! form).
//!
//! Request bodies reject unknown fields (`deny_unknown_fields`), as the OpenAPI's
//! `additionalProperties: false` and the gateway's strict parser do.

pub mod correlation;
pub mod enums;
pub mod operation;
pub mod problem;
pub mod request;
pub mod response;

pub use enums::*;
pub use operation::Operation;
pub use problem::{Problem, ProblemType};
pub use request::{MetadataRequest, PublicationRequest, ReplaceRequest, ValidationRequest};
pub use response::{GatewayResponse, StatusEvent, TransactionInspection};

/// Path prefix of every endpoint, under the configurable base.
pub const API_VERSION_PATH: &str = "/v1";

/// Response header carrying CART's per-request identifier.
pub const X_CART_ID: &str = "X-CART-id";

/// Request header carrying the integrity JWT.
pub const FSE_JWT_SIGNATURE: &str = "FSE-JWT-Signature";
