//! The error model of the API (documented in `proto/corebank/v1/errors.proto` and
//! `docs/api.md`): a gRPC status code, a stable corebank code in the
//! `corebank-error-code` trailer, a human sentence in the status message, and a
//! [`v1::ErrorDetail`] in the status details.
//!
//! Servers build an [`ApiError`] and turn it into a [`tonic::Status`]; clients read
//! one back with [`ApiError::from_status`].

use corebank_ledger::{BatchError, CreateTransferResult, FilterError};
use prost::Message as _;
use tonic::metadata::{MetadataMap, MetadataValue};

use crate::convert::ConvertError;
use crate::v1;

/// The trailer (metadata key) that carries the corebank error code.
pub const ERROR_CODE_KEY: &str = "corebank-error-code";

/// The trailer that carries the leader's address with a `not_leader` error.
pub const LEADER_KEY: &str = "corebank-leader";

/// The type URL of a packed [`v1::ErrorDetail`] in the status details.
pub const ERROR_DETAIL_TYPE_URL: &str = "type.googleapis.com/corebank.v1.ErrorDetail";

macro_rules! error_codes {
    ( $( $(#[$meta:meta])* $variant:ident = $name:literal, $grpc:ident, $sentence:literal; )* ) => {
        /// The stable codes of failed calls. Each maps to one gRPC status code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$meta])* #[doc = $sentence] $variant, )*
        }

        impl ErrorCode {
            /// Every code, in the order of the table in `errors.proto`.
            pub const ALL: &'static [Self] = &[ $( Self::$variant, )* ];

            /// The stable snake_case name sent in the `corebank-error-code` trailer.
            pub const fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $name, )* }
            }

            /// The gRPC status code that goes with it.
            pub const fn grpc_code(self) -> tonic::Code {
                match self { $( Self::$variant => tonic::Code::$grpc, )* }
            }

            /// A generic sentence, for when there is nothing more precise to say.
            pub const fn description(self) -> &'static str {
                match self { $( Self::$variant => $sentence, )* }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name { $( $name => Some(Self::$variant), )* _ => None }
            }
        }
    };
}

error_codes! {
    Unauthenticated = "unauthenticated", Unauthenticated,
        "The call carries no credential, or an unknown, expired or revoked one.";
    PermissionDenied = "permission_denied", PermissionDenied,
        "The credential lacks the scope this call needs.";
    BusyRetry = "busy_retry", ResourceExhausted,
        "The branch is busy and did nothing; retry after a short pause.";
    TooManyEvents = "too_many_events", InvalidArgument,
        "The request carries more than 8,190 events or ids.";
    InvalidArgument = "invalid_argument", InvalidArgument,
        "A field of the request is malformed or out of range.";
    InvalidAccountNumber = "invalid_account_number", InvalidArgument,
        "An account number is malformed or fails its check digits.";
    InvalidAmount = "invalid_amount", InvalidArgument,
        "An amount is not a positive decimal with at most the currency's decimals.";
    UnknownCurrency = "unknown_currency", InvalidArgument,
        "The currency is not one the bank holds.";
    AccountNotFound = "account_not_found", NotFound,
        "The account does not exist at this branch.";
    HoldNotFound = "hold_not_found", NotFound,
        "The hold does not exist.";
    IdempotencyConflict = "idempotency_conflict", AlreadyExists,
        "The idempotency key or id was already used for a different request.";
    InsufficientFunds = "insufficient_funds", FailedPrecondition,
        "The available balance is smaller than the amount.";
    AccountClosed = "account_closed", FailedPrecondition,
        "The account is closed.";
    CurrencyMismatch = "currency_mismatch", FailedPrecondition,
        "The accounts hold different currencies.";
    HoldNotActive = "hold_not_active", FailedPrecondition,
        "The hold was already captured, released or expired.";
    DeclinedByRisk = "declined_by_risk", FailedPrecondition,
        "The bank's fraud checks declined the transfer; nothing was moved.";
    AccountFrozen = "account_frozen", FailedPrecondition,
        "The account is frozen for a fraud review and cannot send money.";
    HeldForReview = "held_for_review", FailedPrecondition,
        "The transfer is held for a fraud review; only an analyst's decision posts or voids it.";
    RiskCheckUnavailable = "risk_check_unavailable", Unavailable,
        "The fraud checks could not run and the branch refuses transfers without them; retry later.";
    FailedPrecondition = "failed_precondition", FailedPrecondition,
        "The ledger's rules refuse the request in the account's present state.";
    PositionTooOld = "position_too_old", OutOfRange,
        "The event stream can no longer start at that position.";
    SubscriberTooSlow = "subscriber_too_slow", ResourceExhausted,
        "The subscriber fell too far behind; subscribe again from the last position.";
    NotLeader = "not_leader", Unavailable,
        "This replica is not the branch's leader.";
    Unavailable = "unavailable", Unavailable,
        "The branch cannot commit now; retry later.";
    Internal = "internal", Internal,
        "An internal error; the request may or may not have been applied.";
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorCode {
    /// The code a banking operation reports when its ledger transfer fails with
    /// `result` (the ledger's result name goes into the reason).
    pub const fn for_transfer_result(result: CreateTransferResult) -> Self {
        use CreateTransferResult as R;
        match result {
            R::ExceedsCredits => Self::InsufficientFunds,
            R::DebitAccountNotFound | R::CreditAccountNotFound => Self::AccountNotFound,
            R::DebitAccountAlreadyClosed | R::CreditAccountAlreadyClosed => Self::AccountClosed,
            R::AccountsMustHaveTheSameLedger | R::TransferMustHaveTheSameLedgerAsAccounts => {
                Self::CurrencyMismatch
            }
            R::PendingTransferNotFound => Self::HoldNotFound,
            R::PendingTransferAlreadyPosted
            | R::PendingTransferAlreadyVoided
            | R::PendingTransferExpired => Self::HoldNotActive,
            R::DeclinedByRisk => Self::DeclinedByRisk,
            R::DebitAccountFrozen => Self::AccountFrozen,
            R::PendingTransferHeldForReview => Self::HeldForReview,
            R::RiskCheckUnavailable => Self::RiskCheckUnavailable,
            R::ExistsWithDifferentFlags
            | R::ExistsWithDifferentDebitAccountId
            | R::ExistsWithDifferentCreditAccountId
            | R::ExistsWithDifferentAmount
            | R::ExistsWithDifferentPendingId
            | R::ExistsWithDifferentUserData128
            | R::ExistsWithDifferentUserData64
            | R::ExistsWithDifferentUserData32
            | R::ExistsWithDifferentTimeout
            | R::ExistsWithDifferentCode
            | R::ExistsWithDifferentLedger => Self::IdempotencyConflict,
            _ => Self::FailedPrecondition,
        }
    }
}

/// A failed call, as a server builds it and a client reads it back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    /// The human sentence (the gRPC status message).
    pub message: String,
    /// The request field at fault, as a path; empty when none.
    pub field: String,
    /// A finer stable snake_case reason within the code; empty when none.
    pub reason: String,
    /// With `not_leader`: the leader's address, when known.
    pub leader: Option<String>,
}

impl ApiError {
    /// An error with the code's generic sentence.
    pub fn from_code(code: ErrorCode) -> Self {
        Self::new(code, code.description())
    }

    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: String::new(),
            reason: String::new(),
            leader: None,
        }
    }

    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }

    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// A `not_leader` error naming the leader's address when it is known.
    pub fn not_leader(leader: Option<String>) -> Self {
        let message = match &leader {
            Some(address) => {
                format!("this replica is not the branch's leader; the leader is {address}")
            }
            None => {
                "this replica is not the branch's leader, and no leader is known yet".to_owned()
            }
        };
        Self {
            leader,
            ..Self::new(ErrorCode::NotLeader, message)
        }
    }

    /// The detail message carried in the status details.
    pub fn detail(&self) -> v1::ErrorDetail {
        v1::ErrorDetail {
            code: self.code.as_str().to_owned(),
            message: self.message.clone(),
            field: self.field.clone(),
            reason: self.reason.clone(),
        }
    }

    /// The gRPC status: code, sentence, `corebank-error-code` (and `corebank-leader`)
    /// trailers, and the detail packed in a `google.rpc.Status`.
    pub fn to_status(&self) -> tonic::Status {
        let mut metadata = MetadataMap::new();
        metadata.insert(
            ERROR_CODE_KEY,
            MetadataValue::from_static(self.code.as_str()),
        );
        if let Some(leader) = self.leader.as_deref()
            && let Ok(value) = MetadataValue::try_from(leader)
        {
            metadata.insert(LEADER_KEY, value);
        }
        let status = RpcStatus {
            code: self.code.grpc_code() as i32,
            message: self.message.clone(),
            details: vec![RpcAny {
                type_url: ERROR_DETAIL_TYPE_URL.to_owned(),
                value: self.detail().encode_to_vec(),
            }],
        };
        tonic::Status::with_details_and_metadata(
            self.code.grpc_code(),
            self.message.clone(),
            status.encode_to_vec().into(),
            metadata,
        )
    }

    /// Reads a corebank error back from a status; `None` when the status carries no
    /// known `corebank-error-code` (e.g. a transport error, or an oversized message
    /// refused by the gRPC layer).
    pub fn from_status(status: &tonic::Status) -> Option<Self> {
        let code = status
            .metadata()
            .get(ERROR_CODE_KEY)
            .and_then(|value| value.to_str().ok())
            .and_then(ErrorCode::from_name)?;
        let detail = RpcStatus::decode(status.details())
            .ok()
            .and_then(|rpc| {
                rpc.details
                    .into_iter()
                    .find(|any| any.type_url == ERROR_DETAIL_TYPE_URL)
            })
            .and_then(|any| v1::ErrorDetail::decode(any.value.as_slice()).ok())
            .unwrap_or_default();
        let leader = status
            .metadata()
            .get(LEADER_KEY)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Some(Self {
            code,
            message: status.message().to_owned(),
            field: detail.field,
            reason: detail.reason,
            leader,
        })
    }
}

impl From<ApiError> for tonic::Status {
    fn from(error: ApiError) -> Self {
        error.to_status()
    }
}

impl From<&ApiError> for tonic::Status {
    fn from(error: &ApiError) -> Self {
        error.to_status()
    }
}

impl From<ConvertError> for ApiError {
    fn from(error: ConvertError) -> Self {
        Self::new(error.code(), error.to_string())
            .with_reason(error.reason())
            .with_field(error.field)
    }
}

impl From<ConvertError> for tonic::Status {
    fn from(error: ConvertError) -> Self {
        ApiError::from(error).to_status()
    }
}

impl From<FilterError> for ApiError {
    /// `history_not_enabled` is `failed_precondition`; the rest are `invalid_argument`
    /// naming the filter field.
    fn from(error: FilterError) -> Self {
        let (code, field) = match error {
            FilterError::HistoryNotEnabled => (ErrorCode::FailedPrecondition, "filter.account_id"),
            FilterError::AccountIdInvalid => (ErrorCode::InvalidArgument, "filter.account_id"),
            FilterError::LimitMustNotBeZero => (ErrorCode::InvalidArgument, "filter.limit"),
            FilterError::TimestampRangeInverted { .. } => {
                (ErrorCode::InvalidArgument, "filter.timestamp_min")
            }
        };
        Self::new(code, error.to_string())
            .with_reason(error.code())
            .with_field(field)
    }
}

impl From<BatchError> for ApiError {
    /// `too_many_events` is the client's; every other batch error is the server's
    /// (its clock or its capacity), hence `internal`.
    fn from(error: BatchError) -> Self {
        let code = match error {
            BatchError::TooManyEvents { .. } => ErrorCode::TooManyEvents,
            _ => ErrorCode::Internal,
        };
        Self::new(code, error.to_string()).with_reason(error.code())
    }
}

/// Wire-compatible with `google.rpc.Status`, so that any gRPC client library can
/// decode the details.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<RpcAny>,
}

/// Wire-compatible with `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[cfg(test)]
mod tests;
