//! Calls to the identity state in the registry, and its refusals as problems.

use axum::http::StatusCode;
use corebank_identity::{
    ApiKey, IdentityAnswer, IdentityCommand, IdentityError, IdentityOutcome, IdentityQuery,
    Session, User,
};
use corebank_registry::RegistryClient;

use crate::problem::Problem;

/// The HTTP status of an identity refusal; the code passes through.
pub fn problem_of(error: &IdentityError) -> Problem {
    let code = error.code();
    let status = match code {
        "user_not_found" | "api_key_not_found" | "session_not_found" => StatusCode::NOT_FOUND,
        "username_taken"
        | "api_key_exists"
        | "account_owned_by_another"
        | "totp_already_enrolled" => StatusCode::CONFLICT,
        "user_disabled" => StatusCode::FORBIDDEN,
        "user_locked" => StatusCode::LOCKED,
        "session_revoked"
        | "session_expired"
        | "refresh_token_invalid"
        | "totp_replayed"
        | "recovery_code_invalid" => StatusCode::UNAUTHORIZED,
        "too_many_accounts" | "limit_reached" | "totp_not_enrolled" => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        _ => StatusCode::BAD_REQUEST,
    };
    Problem::new(status, code, error.to_string())
}

fn transport(error: &corebank_client::ClientError) -> Problem {
    tracing::warn!(%error, "the registry refused or failed an identity call");
    Problem::unavailable("The identity service (registry) cannot be reached; retry shortly.")
}

pub async fn execute(
    registry: &RegistryClient,
    command: IdentityCommand,
) -> Result<IdentityOutcome, Problem> {
    match registry.identity_execute(&command).await {
        Ok(outcome) => Ok(outcome),
        Err(error) => match corebank_registry::identity_error(&error) {
            Some(refusal) => Err(problem_of(&refusal)),
            None => Err(transport(&error)),
        },
    }
}

pub async fn query(
    registry: &RegistryClient,
    query: IdentityQuery,
) -> Result<IdentityAnswer, Problem> {
    registry
        .identity_query(&query)
        .await
        .map_err(|error| transport(&error))
}

fn unexpected() -> Problem {
    Problem::internal("The identity service answered something unexpected.")
}

pub async fn user_by_id(registry: &RegistryClient, id: u64) -> Result<Option<User>, Problem> {
    match query(registry, IdentityQuery::UserById(id)).await? {
        IdentityAnswer::User(user) => Ok(user),
        _ => Err(unexpected()),
    }
}

pub async fn user_by_name(registry: &RegistryClient, name: &str) -> Result<Option<User>, Problem> {
    match query(registry, IdentityQuery::UserByUsername(name.to_owned())).await? {
        IdentityAnswer::User(user) => Ok(user),
        _ => Err(unexpected()),
    }
}

pub async fn session(
    registry: &RegistryClient,
    family: [u8; 16],
) -> Result<Option<Session>, Problem> {
    match query(registry, IdentityQuery::Session(family)).await? {
        IdentityAnswer::Session(session) => Ok(session),
        _ => Err(unexpected()),
    }
}

pub async fn api_key(registry: &RegistryClient, id: &str) -> Result<Option<ApiKey>, Problem> {
    match query(registry, IdentityQuery::ApiKey(id.to_owned())).await? {
        IdentityAnswer::ApiKey(key) => Ok(key),
        _ => Err(unexpected()),
    }
}
