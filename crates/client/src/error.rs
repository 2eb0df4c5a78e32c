//! [`ClientError`]: why a call failed, and whether it may be tried again.

use std::time::Duration;

use corebank_proto::{ApiError, ErrorCode};
use tonic::Code;

/// Why a call failed.
///
/// Match on [`code`](Self::code) (stable snake_case) or on the variants; the
/// `Display` text is a sentence for people and may be reworded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The node could not be reached, or the connection broke during the call.
    /// For a call that changes something, it may or may not have been applied:
    /// repeat it unchanged (same ids, same idempotency key) to find out.
    #[error("could not talk to {endpoint}: {detail}")]
    Transport {
        /// The endpoint the client was configured with.
        endpoint: String,
        /// What went wrong, as the transport reported it.
        detail: String,
    },
    /// The node did not answer in time. As with `Transport`, a call that changes
    /// something may or may not have been applied.
    #[error("no answer within {} ms", .after.as_millis())]
    Timeout {
        /// The deadline of the last attempt.
        after: Duration,
    },
    /// The client's own queue of events waiting for a batch is full; nothing was
    /// sent. Slow down, or retry after a pause.
    #[error("the client already has {capacity} events waiting to be sent; retry after a pause")]
    Busy {
        /// The queue's capacity ([`BatchPolicy::queue_capacity`](crate::BatchPolicy)).
        capacity: usize,
    },
    /// The server refused the call with a corebank error (its stable code, the
    /// sentence, the field at fault). Nothing was applied, except after `internal`.
    #[error("the server refused the call: {} ({})", .0.message, .0.code)]
    Api(ApiError),
    /// The call carries no valid credential (no API key or client certificate, or
    /// an unknown, expired or revoked one).
    #[error("the server did not accept the credential: {message}")]
    Unauthenticated {
        /// The server's sentence.
        message: String,
    },
    /// The credential lacks the scope this call needs.
    #[error("the credential is not allowed to make this call: {message}")]
    PermissionDenied {
        /// The server's sentence (it names the scope needed).
        message: String,
    },
    /// The input was refused by the client before anything was sent.
    #[error("invalid input in {field}: {message}")]
    InvalidInput {
        /// The field at fault (`transfer.flags`, `ids`, ...).
        field: String,
        /// A stable snake_case reason (`linked_not_allowed`, `too_many_events`).
        reason: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The client configuration is unusable (an endpoint that does not parse, an
    /// `https` endpoint without TLS settings, an API key that cannot be a header).
    #[error("invalid client configuration ({field}): {message}")]
    Config {
        /// The configuration field at fault.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A TLS problem: the CA or client certificate files (missing, not PEM, key
    /// not matching), or a failed handshake (e.g. the node's certificate is not
    /// signed by the CA trusted).
    #[error("TLS: {message}")]
    Tls {
        /// A stable snake_case reason: the code of
        /// [`TlsError`](corebank_security::TlsError) (`file_not_found`,
        /// `not_pem`, `key_mismatch`, ...), `invalid_server_name` or
        /// `handshake_failed`.
        reason: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A gRPC status without a corebank error code (e.g. `UNIMPLEMENTED` from a
    /// server that does not serve this service, or a message too large).
    #[error("the call failed with gRPC status {code:?}: {message}")]
    Rpc {
        /// The gRPC status code.
        code: Code,
        /// The status message.
        message: String,
    },
    /// The server's answer does not make sense (an unknown result code, a result
    /// for an event that was not sent).
    #[error("the server's answer is invalid: {message}")]
    InvalidResponse {
        /// What is wrong with it.
        message: String,
    },
    /// The client's background batching task has stopped (the Tokio runtime is
    /// shutting down).
    #[error("the client has shut down")]
    Closed,
}

impl ClientError {
    /// A stable snake_case code: the corebank code for [`Api`](Self::Api) errors
    /// (`insufficient_funds`, `busy_retry`, ...), otherwise one per variant:
    /// `transport`, `timeout`, `busy`, `unauthenticated`, `permission_denied`,
    /// `invalid_input`, `invalid_config`, `tls`, `rpc`, `invalid_response`,
    /// `closed`.
    pub fn code(&self) -> &str {
        match self {
            Self::Transport { .. } => "transport",
            Self::Timeout { .. } => "timeout",
            Self::Busy { .. } => "busy",
            Self::Api(error) => error.code.as_str(),
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::PermissionDenied { .. } => "permission_denied",
            Self::InvalidInput { .. } => "invalid_input",
            Self::Config { .. } => "invalid_config",
            Self::Tls { .. } => "tls",
            Self::Rpc { .. } => "rpc",
            Self::InvalidResponse { .. } => "invalid_response",
            Self::Closed => "closed",
        }
    }

    /// The corebank error, for [`Api`](Self::Api) errors.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Self::Api(error) => Some(error),
            _ => None,
        }
    }

    /// Whether the outcome of the call is unknown: it may or may not have been
    /// applied (a transport error, a timeout, or the server's `internal`).
    /// Repeating it unchanged is safe: the ledger's ids and the banking
    /// idempotency keys make sure nothing is applied twice.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::Api(error) => error.code == ErrorCode::Internal,
            _ => false,
        }
    }

    pub(crate) fn invalid_input(
        field: impl Into<String>,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::InvalidInput {
            field: field.into(),
            reason,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_response(message: impl Into<String>) -> Self {
        Self::InvalidResponse {
            message: message.into(),
        }
    }
}

/// What a failed attempt says about trying again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Retrying cannot help, or is not known to be safe.
    Final,
    /// The server did nothing (it said so): any call may be tried again.
    NothingApplied,
    /// Nobody knows whether the attempt was applied: only calls whose repetition
    /// cannot apply anything twice may be tried again.
    OutcomeUnknown,
}

/// Turns a failed attempt's status into an error, and says whether retrying is safe.
pub(crate) fn classify(status: &tonic::Status, endpoint: &str) -> (ClientError, Failure) {
    if let Some(error) = ApiError::from_status(status) {
        let failure = match error.code {
            ErrorCode::BusyRetry | ErrorCode::Unavailable => Failure::NothingApplied,
            // The replica lost the lead while the request was being committed: the
            // new leader may or may not have committed it.
            ErrorCode::NotLeader if error.reason == "outcome_unknown" => Failure::OutcomeUnknown,
            // Refused before anything was proposed: retry (on the leader it names,
            // or on this replica once an election has made one).
            ErrorCode::NotLeader => Failure::NothingApplied,
            _ => Failure::Final,
        };
        let error = match error.code {
            ErrorCode::Unauthenticated => ClientError::Unauthenticated {
                message: error.message,
            },
            ErrorCode::PermissionDenied => ClientError::PermissionDenied {
                message: error.message,
            },
            _ => ClientError::Api(error),
        };
        return (error, failure);
    }
    let message = status.message().to_owned();
    let transport = || ClientError::Transport {
        endpoint: endpoint.to_owned(),
        detail: if message.is_empty() {
            format!("{:?}", status.code())
        } else {
            message.clone()
        },
    };
    match status.code() {
        // Connection refused or broken, a stream reset, a local transport error:
        // the request may or may not have reached the node.
        Code::Unavailable | Code::Cancelled | Code::Unknown => {
            (transport(), Failure::OutcomeUnknown)
        }
        Code::DeadlineExceeded => (
            ClientError::Timeout {
                after: Duration::ZERO,
            },
            Failure::OutcomeUnknown,
        ),
        // A proxy or the HTTP/2 layer pushing back: nothing was processed.
        Code::ResourceExhausted => (
            ClientError::Rpc {
                code: status.code(),
                message,
            },
            Failure::NothingApplied,
        ),
        Code::Unauthenticated => (ClientError::Unauthenticated { message }, Failure::Final),
        Code::PermissionDenied => (ClientError::PermissionDenied { message }, Failure::Final),
        code => (ClientError::Rpc { code, message }, Failure::Final),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corebank_codes_are_read_from_the_trailer() {
        let status = ApiError::new(ErrorCode::InsufficientFunds, "12.00 EUR available")
            .with_reason("exceeds_credits")
            .to_status();
        let (error, failure) = classify(&status, "http://x");
        assert_eq!(failure, Failure::Final);
        assert_eq!(error.code(), "insufficient_funds");
        assert_eq!(
            error.to_string(),
            "the server refused the call: 12.00 EUR available (insufficient_funds)"
        );
        assert_eq!(
            error.api_error().map(|e| e.reason.as_str()),
            Some("exceeds_credits")
        );
    }

    #[test]
    fn retry_classes() {
        let busy = ApiError::from_code(ErrorCode::BusyRetry).to_status();
        assert_eq!(classify(&busy, "e").1, Failure::NothingApplied);
        let unknown_leader = ApiError::not_leader(None).to_status();
        assert_eq!(classify(&unknown_leader, "e").1, Failure::NothingApplied);
        let known_leader = ApiError::not_leader(Some("10.0.0.2:8080".into())).to_status();
        assert_eq!(classify(&known_leader, "e").1, Failure::NothingApplied);
        let lost_lead = ApiError::not_leader(Some("10.0.0.2:8080".into()))
            .with_reason("outcome_unknown")
            .to_status();
        assert_eq!(classify(&lost_lead, "e").1, Failure::OutcomeUnknown);
        let internal = ApiError::from_code(ErrorCode::Internal).to_status();
        let (error, failure) = classify(&internal, "e");
        assert_eq!(failure, Failure::Final);
        assert!(error.outcome_unknown());
        let reset = tonic::Status::unavailable("connection reset");
        let (error, failure) = classify(&reset, "https://node:8080");
        assert_eq!(failure, Failure::OutcomeUnknown);
        assert_eq!(error.code(), "transport");
        assert_eq!(
            error.to_string(),
            "could not talk to https://node:8080: connection reset"
        );
        let (error, failure) = classify(&tonic::Status::deadline_exceeded(""), "e");
        assert_eq!(
            (error.code(), failure),
            ("timeout", Failure::OutcomeUnknown)
        );
        let (error, failure) = classify(&tonic::Status::unimplemented("no"), "e");
        assert_eq!((error.code(), failure), ("rpc", Failure::Final));
        for status in [
            ApiError::from_code(ErrorCode::Unauthenticated).to_status(),
            tonic::Status::unauthenticated("who?"),
        ] {
            let (error, failure) = classify(&status, "e");
            assert_eq!((error.code(), failure), ("unauthenticated", Failure::Final));
        }
        let denied = ApiError::new(ErrorCode::PermissionDenied, "needs admin").to_status();
        assert_eq!(
            classify(&denied, "e").0,
            ClientError::PermissionDenied {
                message: "needs admin".into()
            }
        );
    }
}
