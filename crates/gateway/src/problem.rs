//! Errors as RFC 9457 `application/problem+json`, each with a stable `code`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use corebank_client::ClientError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemBody {
    /// `https://corebank.dev/problems/<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short title for the code.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// The stable snake_case code clients branch on.
    pub code: String,
    /// A sentence for people; may be reworded.
    pub detail: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The error answers every operation documents: a refusal (`4XX`) or a backend
/// failure (`5XX`), both problem+json.
#[derive(Debug, utoipa::IntoResponses)]
pub enum Problems {
    /// Refused: see `code`.
    #[response(status = "4XX", content_type = "application/problem+json")]
    Refused(#[to_schema] ProblemBody),
    /// A backend (branch, registry) failed or is unavailable.
    #[response(status = "5XX", content_type = "application/problem+json")]
    Failed(#[to_schema] ProblemBody),
}

/// An error answer: a status, a stable code and a sentence.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub code: String,
    pub detail: String,
    pub field: Option<String>,
    /// Seconds, for `429`/`423`/`503` answers.
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            detail: detail.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_argument", detail).with_field(field)
    }

    pub fn unauthenticated(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail).with_retry_after(1)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    pub fn body(&self) -> ProblemBody {
        ProblemBody {
            kind: format!("https://corebank.dev/problems/{}", self.code),
            title: title_of(&self.code),
            status: self.status.as_u16(),
            code: self.code.clone(),
            detail: self.detail.clone(),
            field: self.field.clone(),
        }
    }
}

fn title_of(code: &str) -> String {
    let mut title = code.replace('_', " ");
    if let Some(first) = title.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    title
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.detail, self.code)
    }
}

impl std::error::Error for Problem {}

/// A branch's or the registry's refusal, as the gateway answers it. The branch's
/// stable code passes through unchanged; only the HTTP status is chosen here.
impl From<ClientError> for Problem {
    fn from(error: ClientError) -> Self {
        use corebank_proto::ErrorCode as C;
        match &error {
            ClientError::Api(api) => {
                let status = match api.code {
                    C::InvalidArgument
                    | C::InvalidAccountNumber
                    | C::InvalidAmount
                    | C::UnknownCurrency
                    | C::TooManyEvents => StatusCode::BAD_REQUEST,
                    C::AccountNotFound | C::HoldNotFound => StatusCode::NOT_FOUND,
                    C::IdempotencyConflict => StatusCode::CONFLICT,
                    C::InsufficientFunds
                    | C::AccountClosed
                    | C::CurrencyMismatch
                    | C::HoldNotActive
                    | C::DeclinedByRisk
                    | C::AccountFrozen
                    | C::HeldForReview
                    | C::FailedPrecondition => StatusCode::UNPROCESSABLE_ENTITY,
                    C::BusyRetry | C::SubscriberTooSlow => StatusCode::SERVICE_UNAVAILABLE,
                    C::Unauthenticated | C::PermissionDenied => StatusCode::BAD_GATEWAY,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                };
                let mut problem = Problem::new(status, api.code.as_str(), api.message.clone());
                if !api.field.is_empty() {
                    problem.field = Some(api.field.clone());
                }
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    problem.retry_after = Some(1);
                }
                problem
            }
            ClientError::InvalidInput { field, message, .. } => {
                Problem::invalid(field, message.clone())
            }
            ClientError::Timeout { .. } | ClientError::Transport { .. } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "branch_unavailable",
                "The branch did not answer; the request may or may not have been applied. Retry with the same Idempotency-Key.",
            )
            .with_retry_after(1),
            ClientError::Busy { .. } => Problem::unavailable("The gateway is busy; retry shortly."),
            _ => {
                tracing::warn!(%error, "a backend call failed");
                Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "backend_error",
                    "A backend service refused the gateway's call.",
                )
            }
        }
    }
}

pub type ApiResult<T> = Result<T, Problem>;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn branch_codes_keep_their_code_and_get_a_status() {
        let api = corebank_proto::ApiError::new(
            corebank_proto::ErrorCode::InsufficientFunds,
            "not enough money",
        );
        let problem = Problem::from(ClientError::Api(api));
        assert_eq!(problem.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem.code, "insufficient_funds");
        let body = problem.body();
        assert_eq!(
            body.kind,
            "https://corebank.dev/problems/insufficient_funds"
        );
        assert_eq!(body.title, "Insufficient funds");
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        let problem =
            Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow").with_retry_after(0);
        let response = problem.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
