//! Extractors whose refusals are problem+json like every other error.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// A JSON body.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

fn json_problem(rejection: &JsonRejection) -> Problem {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as JSON with `Content-Type: application/json`.",
        ),
        JsonRejection::BytesRejection(_) => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "The request body is too large or could not be read.",
        ),
        JsonRejection::JsonSyntaxError(_) => {
            Problem::bad_request("invalid_json", "The body is not valid JSON.")
        }
        JsonRejection::JsonDataError(error) => Problem::bad_request(
            "invalid_argument",
            format!(
                "The body does not have the expected fields: {}",
                error.body_text()
            ),
        ),
        _ => Problem::bad_request("invalid_json", "The body could not be read as JSON."),
    }
}

/// Query parameters.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(error)) => {
                Err(Problem::bad_request(
                    "invalid_argument",
                    format!("Invalid query parameters: {}", error.body_text()),
                ))
            }
            Err(_) => Err(Problem::bad_request(
                "invalid_argument",
                "Invalid query parameters.",
            )),
        }
    }
}

/// Path parameters.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => Err(Problem::bad_request(
                "invalid_argument",
                format!("Invalid path: {}", error.body_text()),
            )),
            Err(_) => Err(Problem::bad_request("invalid_argument", "Invalid path.")),
        }
    }
}

/// The `Idempotency-Key` header: 1 to 128 printable ASCII characters.
pub fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<String, Problem> {
    let missing = || {
        Problem::bad_request(
            "idempotency_key_required",
            "Money movements need an Idempotency-Key header (1 to 128 printable ASCII characters, e.g. a UUID).",
        )
        .with_field("Idempotency-Key")
    };
    let key = headers
        .get("idempotency-key")
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(missing());
    }
    Ok(key.to_owned())
}

/// Bounded text from a body: at most `max` bytes, no control characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), Problem> {
    if value.len() > max {
        return Err(Problem::invalid(
            field,
            format!("{field} is longer than {max} bytes."),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Problem::invalid(
            field,
            format!("{field} has control characters."),
        ));
    }
    Ok(())
}
