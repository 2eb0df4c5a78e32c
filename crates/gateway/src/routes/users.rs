//! People (customers and staff) and services' API keys.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use corebank_identity::{
    IdentityAnswer, IdentityCommand, IdentityOutcome, IdentityQuery, RevokeReason, Role,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{App, now_ms};
use crate::auth::{Caller, Perm, forbidden};
use crate::extract::{Body, Path, Query, text};
use crate::hub::rfc3339;
use crate::problem::{ApiResult, Problem, Problems};
use crate::routes::auth::{UserView, hash_password};

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(get_user))
        .routes(routes!(unlock_user))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
        .routes(routes!(revoke_user_sessions))
        .routes(routes!(reset_user_totp))
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 3 to 64 characters: lowercase letters, digits, `.`, `_`, `-`, `@`.
    pub username: String,
    /// 10 to 128 characters.
    pub password: String,
    pub display_name: String,
    /// `customer`, `teller`, `analyst`, `auditor` or `admin`.
    pub role: String,
    /// The branch that opens the customer's accounts (default: the first branch).
    #[serde(default)]
    pub home_branch: Option<u16>,
}

async fn default_branch(app: &App) -> ApiResult<u16> {
    let branches = app.backend.branches().await?;
    branches
        .first()
        .map(|b| b.code.get())
        .ok_or_else(|| Problem::unavailable("No branch is registered yet."))
}

/// Creates a user. Admins create anyone; tellers create customers.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = UserView),
        Problems),
    security(("bearer" = [])))]
pub async fn create_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<NewUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let role: Role = body.role.parse().map_err(|_| {
        Problem::invalid(
            "role",
            "role must be customer, teller, analyst, auditor or admin.",
        )
    })?;
    let perm = if role == Role::Customer {
        Perm::CustomersManage
    } else {
        Perm::UsersManage
    };
    let resource = format!(
        "username:{}",
        body.username.chars().take(64).collect::<String>()
    );
    if !caller.principal.has(perm) {
        let problem = forbidden(perm);
        app.audit(&caller, "user.create", &resource, Err(&problem))
            .await;
        return Err(problem);
    }
    text("display_name", &body.display_name, 128)?;
    let home_branch = match body.home_branch {
        Some(code) => {
            if !app
                .backend
                .branches()
                .await?
                .iter()
                .any(|b| b.code.get() == code)
            {
                return Err(Problem::invalid(
                    "home_branch",
                    format!("No branch {code:04} exists."),
                ));
            }
            code
        }
        None => default_branch(&app).await?,
    };
    let password_hash = hash_password(body.password).await?;
    let result = app
        .identity_execute(IdentityCommand::CreateUser {
            username: body.username.trim().to_ascii_lowercase(),
            display_name: body.display_name,
            role,
            password_hash,
            home_branch,
            at_ms: now_ms(),
        })
        .await;
    let user = match result {
        Ok(IdentityOutcome::UserCreated(user)) => user,
        Ok(_) => {
            return Err(Problem::internal(
                "The identity service answered something unexpected.",
            ));
        }
        Err(problem) => {
            app.audit(&caller, "user.create", &resource, Err(&problem))
                .await;
            return Err(problem);
        }
    };
    app.audit(
        &caller,
        "user.create",
        &format!("user:{}", user.id),
        Ok(role.as_str()),
    )
    .await;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Only this role.
    pub role: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 500 (default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    pub next_cursor: Option<String>,
}

/// Lists users (tellers see customers only).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserListQuery),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        Problems),
    security(("bearer" = [])))]
pub async fn list_users(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(query): Query<UserListQuery>,
) -> ApiResult<Json<UserPage>> {
    let mut role: Option<Role> = match &query.role {
        Some(text) => Some(
            text.parse()
                .map_err(|_| Problem::invalid("role", "Unknown role."))?,
        ),
        None => None,
    };
    if !caller.principal.has(Perm::UsersManage) {
        if caller.principal.has(Perm::CustomersManage) && role.is_none_or(|r| r == Role::Customer) {
            role = Some(Role::Customer);
        } else {
            let problem = forbidden(Perm::UsersManage);
            app.audit(&caller, "user.list", "users", Err(&problem))
                .await;
            return Err(problem);
        }
    }
    app.audit(&caller, "user.list", "users", Ok("")).await;
    let after_id = match &query.cursor {
        Some(cursor) => Some(
            cursor
                .parse::<u64>()
                .map_err(|_| Problem::invalid("cursor", "Invalid cursor."))?,
        ),
        None => None,
    };
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    match app
        .identity_query(IdentityQuery::ListUsers {
            role,
            after_id,
            limit,
        })
        .await?
    {
        IdentityAnswer::Users {
            users,
            next_after_id,
        } => Ok(Json(UserPage {
            items: users.iter().map(UserView::from).collect(),
            next_cursor: next_after_id.map(|id| id.to_string()),
        })),
        _ => Err(Problem::internal(
            "The identity service answered something unexpected.",
        )),
    }
}

/// A user's record: admins any; tellers customers; anyone themselves.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = u64, Path, description = "The user id")),
    responses(
        (status = 200, description = "The user", body = UserView),
        Problems),
    security(("bearer" = [])))]
pub async fn get_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<u64>,
) -> ApiResult<Json<UserView>> {
    let resource = format!("user:{id}");
    if caller.principal.user_id() == Some(id) {
        let user = app.user(id).await?;
        return Ok(Json(UserView::from(user.as_ref())));
    }
    if caller.principal.has(Perm::UsersManage) {
        app.audit(&caller, "user.read", &resource, Ok("")).await;
        app.forget_user(id);
        let user = app.user(id).await?;
        return Ok(Json(UserView::from(user.as_ref())));
    }
    if caller.principal.has(Perm::CustomersManage) {
        app.forget_user(id);
        let user = app.user(id).await?;
        if user.role == Role::Customer {
            app.audit(&caller, "user.read", &resource, Ok("")).await;
            return Ok(Json(UserView::from(user.as_ref())));
        }
    }
    let problem = forbidden(Perm::UsersManage);
    app.audit(&caller, "user.read", &resource, Err(&problem))
        .await;
    Err(problem)
}

async fn admin_change(
    app: &App,
    caller: &Caller,
    id: u64,
    action: &str,
    command: IdentityCommand,
) -> ApiResult<Option<UserView>> {
    let resource = format!("user:{id}");
    app.allow(caller, Perm::UsersManage, action, &resource)
        .await?;
    let result = app.identity_execute(command).await;
    app.forget_user(id);
    if let Err(problem) = &result {
        app.audit(caller, action, &resource, Err(problem)).await;
    }
    Ok(match result? {
        IdentityOutcome::UserUpdated(user) | IdentityOutcome::UserCreated(user) => {
            Some(UserView::from(&user))
        }
        _ => None,
    })
}

async fn user_view_after(app: &App, id: u64, view: Option<UserView>) -> ApiResult<Json<UserView>> {
    match view {
        Some(view) => Ok(Json(view)),
        None => Ok(Json(UserView::from(app.user(id).await?.as_ref()))),
    }
}

/// Lifts a sign-in lock.
#[utoipa::path(post, path = "/api/v1/users/{id}/unlock", tag = "users", params(("id" = u64, Path, description = "The user id")),
    responses(
        (status = 200, description = "Unlocked", body = UserView),
        Problems),
    security(("bearer" = [])))]
pub async fn unlock_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<u64>,
) -> ApiResult<Json<UserView>> {
    let view = admin_change(
        &app,
        &caller,
        id,
        "user.unlock",
        IdentityCommand::Unlock { user_id: id },
    )
    .await?;
    user_view_after(&app, id, view).await
}

/// Disables a user (their sessions end).
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "users", params(("id" = u64, Path, description = "The user id")),
    responses(
        (status = 200, description = "Disabled", body = UserView),
        Problems),
    security(("bearer" = [])))]
pub async fn disable_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<u64>,
) -> ApiResult<Json<UserView>> {
    if caller.principal.user_id() == Some(id) {
        return Err(Problem::bad_request(
            "cannot_disable_self",
            "You cannot disable yourself.",
        ));
    }
    let view = admin_change(
        &app,
        &caller,
        id,
        "user.disable",
        IdentityCommand::SetDisabled {
            user_id: id,
            disabled: true,
            at_ms: now_ms(),
        },
    )
    .await?;
    user_view_after(&app, id, view).await
}

/// Enables a disabled user.
#[utoipa::path(post, path = "/api/v1/users/{id}/enable", tag = "users", params(("id" = u64, Path, description = "The user id")),
    responses(
        (status = 200, description = "Enabled", body = UserView),
        Problems),
    security(("bearer" = [])))]
pub async fn enable_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<u64>,
) -> ApiResult<Json<UserView>> {
    let view = admin_change(
        &app,
        &caller,
        id,
        "user.enable",
        IdentityCommand::SetDisabled {
            user_id: id,
            disabled: false,
            at_ms: now_ms(),
        },
    )
    .await?;
    user_view_after(&app, id, view).await
}

/// Ends every session of a user.
#[utoipa::path(post, path = "/api/v1/users/{id}/revoke-sessions", tag = "users", params(("id" = u64, Path, description = "The user id")),
    responses(
        (status = 204, description = "Revoked"),
        Problems),
    security(("bearer" = [])))]
pub async fn revoke_user_sessions(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<u64>,
) -> ApiResult<StatusCode> {
    admin_change(
        &app,
        &caller,
        id,
        "user.revoke_sessions",
        IdentityCommand::RevokeUserSessions {
            user_id: id,
            reason: RevokeReason::Admin,
            at_ms: now_ms(),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a user's second factor (e.g. a lost phone); they enrol again.
#[utoipa::path(post, path = "/api/v1/users/{id}/reset-totp", tag = "users", params(("id" = u64, Path, description = "The user id")),
    responses(
        (status = 204, description = "Reset"),
        Problems),
    security(("bearer" = [])))]
pub async fn reset_user_totp(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<u64>,
) -> ApiResult<StatusCode> {
    admin_change(
        &app,
        &caller,
        id,
        "user.reset_totp",
        IdentityCommand::ResetTotp { user_id: id },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
    /// Any of `accounts:read`, `payments:write`, `holds:write`, `risk:read`,
    /// `risk:write`, `events:read`, `audit:read`, `metrics:read`.
    pub scopes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// The key itself: shown once, at creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

fn key_view(key: &corebank_identity::ApiKey, secret: Option<String>) -> ApiKeyView {
    ApiKeyView {
        id: key.id.clone(),
        name: key.name.clone(),
        scopes: key.scopes.clone(),
        created_at: rfc3339(key.created_at_ms.saturating_mul(1_000_000)),
        revoked_at: key
            .revoked_at_ms
            .map(|ms| rfc3339(ms.saturating_mul(1_000_000))),
        key: secret,
    }
}

/// Creates an API key for a service.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "users", request_body = NewApiKey,
    responses(
        (status = 201, description = "Created; `key` is shown only now", body = ApiKeyView),
        Problems),
    security(("bearer" = [])))]
pub async fn create_api_key(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<NewApiKey>,
) -> ApiResult<(StatusCode, Json<ApiKeyView>)> {
    app.allow(&caller, Perm::UsersManage, "apikey.create", "apikeys")
        .await?;
    let owner = caller
        .principal
        .user_id()
        .ok_or_else(|| Problem::bad_request("not_a_user", "API keys are made by people."))?;
    text("name", &body.name, 64)?;
    if body.name.trim().is_empty() {
        return Err(Problem::invalid("name", "Give the key a name."));
    }
    if body.scopes.is_empty() || body.scopes.len() > 8 {
        return Err(Problem::invalid("scopes", "Give 1 to 8 scopes."));
    }
    for scope in &body.scopes {
        if Perm::from_scope(scope).is_none() {
            return Err(Problem::invalid(
                "scopes",
                format!("Unknown scope {scope:?}."),
            ));
        }
    }
    let (id, key, secret_hash) = corebank_identity::tokens::generate_api_key()
        .map_err(|_| Problem::internal("The random generator failed."))?;
    let outcome = app
        .identity_execute(IdentityCommand::CreateApiKey {
            id: id.clone(),
            name: body.name,
            owner_user_id: owner,
            scopes: body.scopes,
            secret_hash,
            at_ms: now_ms(),
        })
        .await;
    app.audit(
        &caller,
        "apikey.create",
        &format!("apikey:{id}"),
        outcome.as_ref().map(|_| ""),
    )
    .await;
    match outcome? {
        IdentityOutcome::ApiKeyCreated(record) => {
            Ok((StatusCode::CREATED, Json(key_view(&record, Some(key)))))
        }
        _ => Err(Problem::internal(
            "The identity service answered something unexpected.",
        )),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
}

/// Lists API keys (never their secrets).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "users",
    responses(
        (status = 200, description = "The keys", body = ApiKeyList),
        Problems),
    security(("bearer" = [])))]
pub async fn list_api_keys(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> ApiResult<Json<ApiKeyList>> {
    app.allow(&caller, Perm::UsersManage, "apikey.list", "apikeys")
        .await?;
    match app.identity_query(IdentityQuery::ListApiKeys).await? {
        IdentityAnswer::ApiKeys(keys) => Ok(Json(ApiKeyList {
            items: keys.iter().map(|k| key_view(k, None)).collect(),
        })),
        _ => Err(Problem::internal(
            "The identity service answered something unexpected.",
        )),
    }
}

/// Revokes an API key.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "users", params(("id" = String, Path, description = "The key id")),
    responses(
        (status = 204, description = "Revoked"),
        Problems),
    security(("bearer" = [])))]
pub async fn revoke_api_key(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let resource = format!("apikey:{}", id.chars().take(32).collect::<String>());
    app.allow(&caller, Perm::UsersManage, "apikey.revoke", &resource)
        .await?;
    let outcome = app
        .identity_execute(IdentityCommand::RevokeApiKey {
            id,
            at_ms: now_ms(),
        })
        .await;
    if let Err(problem) = &outcome {
        app.audit(&caller, "apikey.revoke", &resource, Err(problem))
            .await;
    }
    outcome?;
    Ok(StatusCode::NO_CONTENT)
}
