//! The one place where the registry's errors become API errors (the table at the
//! top of `registry.proto`). The finer `reason` is always the error's own stable
//! code.
//!
//! The API has no `branch_not_found` code yet: an unknown branch or replica is
//! `account_not_found` with reason `branch_not_found` / `replica_not_found` (for
//! ResolveAccount that is also the plain truth: no branch holds the account).

use corebank_account_number::{AccountNumberError, BranchCode};
use corebank_proto::{ApiError, ErrorCode};

use crate::error::{CommandError, LookupError};
use crate::store::StoreError;

/// The code for an unknown branch or replica.
const NOT_FOUND: ErrorCode = ErrorCode::AccountNotFound;

/// A refused command.
pub fn command_error(error: &CommandError) -> ApiError {
    use CommandError as E;
    let code = match error {
        E::InvalidName { .. }
        | E::InvalidRegion { .. }
        | E::InvalidAddress { .. }
        | E::NoReplicas
        | E::TooManyReplicas { .. }
        | E::DuplicateNodeId { .. }
        | E::DuplicateAddress { .. }
        | E::NothingToUpdate => ErrorCode::InvalidArgument,
        E::BranchExists { .. } | E::NodeIdTaken { .. } | E::AddressTaken { .. } => {
            ErrorCode::IdempotencyConflict
        }
        E::BranchNotFound { .. } | E::ReplicaNotFound { .. } => NOT_FOUND,
        E::ReplicaAddressMismatch { .. } | E::LastReplica { .. } | E::ReplicasFull { .. } => {
            ErrorCode::FailedPrecondition
        }
        E::Identity(inner) => identity_code(inner),
    };
    ApiError::new(code, error.to_string())
        .with_reason(error.code())
        .with_field(error.field())
}

/// The API code of an identity refusal: `invalid_argument` for a malformed command,
/// `idempotency_conflict` for a name or id taken, `failed_precondition` otherwise.
/// Never `unauthenticated`, `permission_denied` or `not_leader`: those mean
/// something else to clients (the `reason` carries the identity code).
fn identity_code(error: &corebank_identity::IdentityError) -> ErrorCode {
    use corebank_identity::IdentityError as I;
    match error {
        _ if error.is_invalid_input() => ErrorCode::InvalidArgument,
        I::UsernameTaken | I::ApiKeyExists | I::SessionExists | I::AccountOwnedByAnother => {
            ErrorCode::IdempotencyConflict
        }
        _ => ErrorCode::FailedPrecondition,
    }
}

/// A failed lookup; `field` names the request field that held the account or code.
pub fn lookup_error(error: &LookupError, field: &str) -> ApiError {
    match error {
        LookupError::InvalidAccountNumber(inner) => account_number_error(inner, field),
        LookupError::BranchNotFound { .. } => ApiError::new(NOT_FOUND, error.to_string())
            .with_reason(error.code())
            .with_field(field),
    }
}

/// A malformed account number or id.
pub fn account_number_error(error: &AccountNumberError, field: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidAccountNumber, error.to_string())
        .with_reason(error.code())
        .with_field(field)
}

/// An unknown branch, for GetBranch.
pub fn branch_not_found(code: BranchCode) -> ApiError {
    lookup_error(&LookupError::BranchNotFound { code }, "branch")
}

/// A failure of the store: `not_leader` carries the leader's address in the
/// `corebank-leader` trailer, so that clients follow it.
pub fn store_error(error: &StoreError) -> ApiError {
    match error {
        StoreError::NotLeader { leader } => ApiError {
            leader: leader.clone(),
            ..ApiError::new(ErrorCode::NotLeader, error.to_string())
        },
        // As a branch answers a write whose leader stepped down: `not_leader` with
        // reason `outcome_unknown`, so that clients know the command may have applied.
        StoreError::LeadershipLost { leader } => ApiError {
            leader: leader.clone(),
            ..ApiError::new(ErrorCode::NotLeader, error.to_string())
        }
        .with_reason(error.code()),
        StoreError::Unavailable { .. } => ApiError::new(ErrorCode::Unavailable, error.to_string()),
        StoreError::Internal { .. } => ApiError::new(ErrorCode::Internal, error.to_string()),
    }
}

/// A branch code of a request: 0 to 9999.
pub fn branch_code(value: u32, field: &str) -> Result<BranchCode, ApiError> {
    u16::try_from(value)
        .ok()
        .and_then(|code| BranchCode::new(code).ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidArgument,
                format!("branch code {value} is invalid: it must be 0 to 9999"),
            )
            .with_reason("invalid_branch_code")
            .with_field(field)
        })
}

/// A malformed request field.
pub fn invalid_argument(field: &str, reason: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
        .with_reason(reason)
        .with_field(field)
}
