//! Every failure the server can answer, mapped to the API's error model in one place.

use corebank_banking::BankingError;
use corebank_node::{ReadError, SubmitError};
use corebank_proto::{ApiError, ErrorCode};

pub fn submit(error: SubmitError) -> ApiError {
    let code = match &error {
        SubmitError::Busy { .. } => ErrorCode::BusyRetry,
        SubmitError::TooManyEvents { .. } => ErrorCode::TooManyEvents,
        SubmitError::NotLeader { address, .. } => return ApiError::not_leader(address.clone()),
        SubmitError::LeadershipLost { address } => {
            return ApiError::not_leader(address.clone()).with_reason(error.code());
        }
        SubmitError::ShuttingDown => ErrorCode::Unavailable,
        SubmitError::Unknown(_) => ErrorCode::Internal,
    };
    ApiError::new(code, error.to_string()).with_reason(error.code())
}

pub fn read(error: ReadError) -> ApiError {
    match error {
        ReadError::NotLeader { address, .. } => ApiError::not_leader(address),
        ReadError::Unavailable(message) => ApiError::new(ErrorCode::Unavailable, message),
    }
}

pub fn banking(error: &BankingError) -> ApiError {
    use BankingError as B;
    let code = match error {
        B::AccountNumber(_) => ErrorCode::InvalidAccountNumber,
        B::Money(money) => match money.code() {
            "unknown_currency" => ErrorCode::UnknownCurrency,
            _ => ErrorCode::InvalidAmount,
        },
        B::UnknownProduct { .. }
        | B::InvalidIdempotencyKey
        | B::InvalidCustomerId
        | B::SameAccount => ErrorCode::InvalidArgument,
        B::OtherBranch { .. } | B::AccountNotFound { .. } | B::NotACustomerAccount { .. } => {
            ErrorCode::AccountNotFound
        }
        B::AccountClosed { .. } => ErrorCode::AccountClosed,
        B::InsufficientFunds { .. } => ErrorCode::InsufficientFunds,
        B::CurrencyMismatch { .. } => ErrorCode::CurrencyMismatch,
        B::IdempotencyKeyReused | B::IdempotencyKeyFailedBefore => ErrorCode::IdempotencyConflict,
        B::HoldAlreadyCaptured | B::HoldAlreadyReleased | B::HoldExpired => {
            ErrorCode::HoldNotActive
        }
        B::HoldNotFound => ErrorCode::HoldNotFound,
        B::ExceedsHold => ErrorCode::InvalidAmount,
        B::Refused(_) => ErrorCode::FailedPrecondition,
        B::DeclinedByRisk { .. } => ErrorCode::DeclinedByRisk,
        B::AccountFrozen { .. } => ErrorCode::AccountFrozen,
        B::HeldForReview => ErrorCode::HeldForReview,
        B::RiskCheckUnavailable => ErrorCode::RiskCheckUnavailable,
    };
    ApiError::new(code, error.to_string()).with_reason(error.code())
}

/// A status for an [`ApiError`], counted by code.
pub fn status(error: ApiError) -> tonic::Status {
    metrics::counter!("corebank_rpc_errors_total", "code" => error.code.as_str()).increment(1);
    error.to_status()
}
