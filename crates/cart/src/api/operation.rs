//! The gateway operations this toolkit drives, with their HTTP method, path and the JWT
//! `action_id` / `purpose_of_use` each requires (spec §15.1 and §15.3.6).

use super::enums::{ActionId, PurposeOfUse};
use std::fmt;

/// One gateway endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /documents/validation`.
    Validation,
    /// `POST /documents`.
    Create,
    /// `PUT /documents/{idDoc}`.
    Replace,
    /// `PUT /documents/{idDoc}/metadata-iti-57`.
    UpdateMetadata,
    /// `DELETE /documents/{idDoc}`.
    Delete,
    /// `GET /status/{workflowInstanceId}`.
    StatusByWorkflow,
    /// `GET /status/search/{traceId}`.
    StatusByTrace,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 7] = [
        Operation::Validation,
        Operation::Create,
        Operation::Replace,
        Operation::UpdateMetadata,
        Operation::Delete,
        Operation::StatusByWorkflow,
        Operation::StatusByTrace,
    ];

    /// HTTP method.
    pub fn method(self) -> &'static str {
        match self {
            Operation::Validation | Operation::Create => "POST",
            Operation::Replace | Operation::UpdateMetadata => "PUT",
            Operation::Delete => "DELETE",
            Operation::StatusByWorkflow | Operation::StatusByTrace => "GET",
        }
    }

    /// Path template under `/v1`.
    pub fn path_template(self) -> &'static str {
        match self {
            Operation::Validation => "/documents/validation",
            Operation::Create => "/documents",
            Operation::Replace => "/documents/{idDoc}",
            Operation::UpdateMetadata => "/documents/{idDoc}/metadata-iti-57",
            Operation::Delete => "/documents/{idDoc}",
            Operation::StatusByWorkflow => "/status/{workflowInstanceId}",
            Operation::StatusByTrace => "/status/search/{traceId}",
        }
    }

    /// Stable name used in logs and journals.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Validation => "validation",
            Operation::Create => "create",
            Operation::Replace => "replace",
            Operation::UpdateMetadata => "metadata",
            Operation::Delete => "delete",
            Operation::StatusByWorkflow => "status",
            Operation::StatusByTrace => "status-search",
        }
    }

    /// The `action_id` claim this operation requires (status queries carry `READ`).
    pub fn action_id(self) -> ActionId {
        match self {
            Operation::Validation | Operation::Create => ActionId::Create,
            Operation::Replace | Operation::UpdateMetadata => ActionId::Update,
            Operation::Delete => ActionId::Delete,
            Operation::StatusByWorkflow | Operation::StatusByTrace => ActionId::Read,
        }
    }

    /// The `purpose_of_use` this toolkit sends.
    pub fn purpose_of_use(self) -> PurposeOfUse {
        match self {
            Operation::Validation
            | Operation::Create
            | Operation::StatusByWorkflow
            | Operation::StatusByTrace => PurposeOfUse::Treatment,
            Operation::Replace | Operation::UpdateMetadata | Operation::Delete => {
                PurposeOfUse::Update
            }
        }
    }

    /// Whether the gateway accepts `purpose` for this operation (metadata also takes
    /// `ACCESS UPDATE`).
    pub fn accepts_purpose(self, purpose: PurposeOfUse) -> bool {
        purpose == self.purpose_of_use()
            || (self == Operation::UpdateMetadata && purpose == PurposeOfUse::AccessUpdate)
    }

    /// Whether the signature JWT must carry `attachment_hash`.
    pub fn needs_attachment_hash(self) -> bool {
        matches!(self, Operation::Create | Operation::Replace)
    }

    /// Whether the signature JWT must carry `resource_hl7_type`.
    pub fn needs_resource_type(self) -> bool {
        matches!(
            self,
            Operation::Validation
                | Operation::Create
                | Operation::Replace
                | Operation::UpdateMetadata
        )
    }

    /// Whether `locality` must be XON-formatted.
    pub fn needs_xon_locality(self) -> bool {
        matches!(
            self,
            Operation::Create | Operation::Replace | Operation::UpdateMetadata | Operation::Delete
        )
    }

    /// Whether the request carries a multipart body with the signed PDF.
    pub fn has_file(self) -> bool {
        matches!(
            self,
            Operation::Validation | Operation::Create | Operation::Replace
        )
    }

    /// Whether a client may resend it blindly after a lost answer (it changes no state).
    pub fn is_idempotent(self) -> bool {
        matches!(
            self,
            Operation::Validation | Operation::StatusByWorkflow | Operation::StatusByTrace
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_per_operation_match_the_brief() {
        use ActionId as A;
        use PurposeOfUse as P;
        let expected = [
            (Operation::Validation, A::Create, P::Treatment),
            (Operation::Create, A::Create, P::Treatment),
            (Operation::Replace, A::Update, P::Update),
            (Operation::UpdateMetadata, A::Update, P::Update),
            (Operation::Delete, A::Delete, P::Update),
        ];
        for (op, a, p) in expected {
            assert_eq!((op.action_id(), op.purpose_of_use()), (a, p), "{op}");
        }
        assert!(Operation::UpdateMetadata.accepts_purpose(P::AccessUpdate));
        assert!(!Operation::Delete.accepts_purpose(P::Treatment));
    }
}
