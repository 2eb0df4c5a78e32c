//! Sign-in, the second factor, refresh, sign-out, and the caller's own identity.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use corebank_identity::tokens::RefreshToken;
use corebank_identity::{IdentityCommand, IdentityOutcome, RevokeReason, User, password, totp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{App, AuditOutcome, now_ms, now_s};
use crate::auth::{Anonymous, Caller, Principal, RequestFacts};
use crate::extract::Body;
use crate::hub::rfc3339;
use crate::problem::{ApiResult, Problem, ProblemBody, Problems};
use crate::tokens::{Claims, ISSUER, family_hex, random_hex};

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(second_factor))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(totp_enrol))
        .routes(routes!(totp_confirm))
        .routes(routes!(totp_disable))
}

/// A user as the API shows it (never the password hash or second-factor secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: u64,
    pub username: String,
    pub display_name: String,
    /// `customer`, `teller`, `analyst`, `auditor` or `admin`.
    pub role: String,
    pub home_branch: u16,
    pub totp_enabled: bool,
    pub accounts: Vec<String>,
    pub created_at: String,
    pub disabled: bool,
    /// Set while sign-in is locked after failed attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<String>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            role: user.role.as_str().to_owned(),
            home_branch: user.home_branch,
            totp_enabled: user.totp.as_ref().is_some_and(|t| t.confirmed),
            accounts: user.accounts.clone(),
            created_at: rfc3339(user.created_at_ms.saturating_mul(1_000_000)),
            disabled: user.disabled,
            locked_until: user
                .locked_until_ms
                .filter(|until| *until > now_ms())
                .map(|until| rfc3339(until.saturating_mul(1_000_000))),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

/// The answer to a sign-in step: tokens, or the demand for a second factor.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignIn {
    /// `ok` (tokens below) or `mfa_required` (send a code to `/api/v1/auth/mfa`).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Seconds the access (or mfa) token is valid.
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserView>,
}

fn invalid_credentials() -> Problem {
    Problem::unauthenticated("invalid_credentials", "The username or password is wrong.")
}

fn locked(until_ms: u64) -> Problem {
    let wait = until_ms.saturating_sub(now_ms()).div_ceil(1000);
    Problem::new(
        StatusCode::LOCKED,
        "login_locked",
        format!("Too many failed sign-ins: this user is locked for {wait} more seconds."),
    )
    .with_retry_after(wait)
}

async fn audit_login(
    app: &App,
    facts: &RequestFacts,
    user: Option<&User>,
    username: &str,
    result: Result<&str, &Problem>,
) {
    let (actor, role) = match user {
        Some(user) => (format!("user:{}", user.id), user.role.as_str()),
        None => ("anonymous".to_owned(), ""),
    };
    let (outcome, code, detail) = match result {
        Ok(detail) => (AuditOutcome::Granted, "ok", detail.to_owned()),
        Err(problem) => (
            AuditOutcome::Denied,
            problem.code.as_str(),
            problem.detail.clone(),
        ),
    };
    let counter = if outcome == AuditOutcome::Granted {
        &app.metrics.logins_ok
    } else {
        &app.metrics.logins_refused
    };
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    app.audit_raw(
        &actor,
        role,
        "auth.login",
        &format!("username:{username}"),
        outcome,
        code,
        &detail,
        facts,
    )
    .await;
}

async fn record_failure(app: &App, user: &User) -> Problem {
    match app
        .identity_execute(IdentityCommand::RecordLoginFailure {
            user_id: user.id,
            at_ms: now_ms(),
        })
        .await
    {
        Ok(IdentityOutcome::UserUpdated(updated)) => {
            app.forget_user(user.id);
            match updated.locked_until_ms {
                Some(until) if until > now_ms() => locked(until),
                _ => invalid_credentials(),
            }
        }
        Ok(_) => invalid_credentials(),
        Err(problem) => problem,
    }
}

fn lock_of(user: &User) -> Option<Problem> {
    user.locked_until_ms
        .filter(|until| *until > now_ms())
        .map(locked)
}

/// Starts a session: a refresh-token family in the registry and an access token.
pub async fn start_session(app: &App, user: &User, mfa: bool) -> ApiResult<SignIn> {
    let family = corebank_identity::tokens::new_family();
    let refresh = RefreshToken::new(family, 0);
    let lifetimes = app.config.tokens;
    let at_ms = now_ms();
    let expires_at_ms =
        at_ms + u64::try_from(lifetimes.refresh.as_millis()).unwrap_or(u64::MAX / 4);
    app.identity_execute(IdentityCommand::StartSession {
        family,
        user_id: user.id,
        token_hash: refresh.hash(),
        mfa,
        at_ms,
        expires_at_ms,
    })
    .await?;
    app.identity_execute(IdentityCommand::RecordLoginSuccess {
        user_id: user.id,
        at_ms,
    })
    .await?;
    Ok(tokens_for(app, user, family, mfa, &refresh, expires_at_ms))
}

fn tokens_for(
    app: &App,
    user: &User,
    family: [u8; 16],
    mfa: bool,
    refresh: &RefreshToken,
    expires_at_ms: u64,
) -> SignIn {
    let now = now_s();
    let access = app.config.tokens.access.as_secs();
    let claims = Claims {
        iss: ISSUER.to_owned(),
        sub: user.id.to_string(),
        role: user.role.as_str().to_owned(),
        sid: family_hex(&family),
        mfa,
        typ: "access".to_owned(),
        iat: now,
        exp: now + access,
        jti: random_hex::<12>(),
    };
    SignIn {
        status: "ok".to_owned(),
        access_token: Some(app.keys.sign(&claims)),
        token_type: Some("Bearer".to_owned()),
        expires_in: access,
        refresh_token: Some(refresh.encode()),
        refresh_expires_in: Some(expires_at_ms.saturating_sub(now_ms()) / 1000),
        mfa_token: None,
        user: Some(UserView::from(user)),
    }
}

async fn verify_password(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => password::verify(&password, &hash),
        None => {
            password::dummy_verify(&password);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// Signs in with a username and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in, or a second factor is needed", body = SignIn),
        (status = "4XX", description = "Refused", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "A backend failed", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn login(
    State(app): State<Arc<App>>,
    anonymous: Anonymous,
    Body(body): Body<LoginBody>,
) -> ApiResult<Json<SignIn>> {
    let facts = &anonymous.facts;
    if body.username.len() > 128 || body.password.len() > 1024 {
        let problem = invalid_credentials();
        audit_login(&app, facts, None, "", Err(&problem)).await;
        return Err(problem);
    }
    let username = body.username.trim().to_ascii_lowercase();
    let user = crate::identity::user_by_name(&app.backend.registry, &username).await?;
    let Some(user) = user else {
        verify_password(body.password, None).await;
        let problem = invalid_credentials();
        audit_login(&app, facts, None, &username, Err(&problem)).await;
        return Err(problem);
    };
    if let Some(problem) = lock_of(&user) {
        audit_login(&app, facts, Some(&user), &username, Err(&problem)).await;
        return Err(problem);
    }
    if !verify_password(body.password, Some(user.password_hash.clone())).await {
        let problem = record_failure(&app, &user).await;
        audit_login(&app, facts, Some(&user), &username, Err(&problem)).await;
        return Err(problem);
    }
    if user.disabled {
        let problem = Problem::new(
            StatusCode::FORBIDDEN,
            "user_disabled",
            "This user is disabled; ask the bank.",
        );
        audit_login(&app, facts, Some(&user), &username, Err(&problem)).await;
        return Err(problem);
    }
    if user.totp.as_ref().is_some_and(|t| t.confirmed) {
        let now = now_s();
        let lifetime = app.config.tokens.mfa.as_secs();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            sub: user.id.to_string(),
            role: user.role.as_str().to_owned(),
            sid: String::new(),
            mfa: false,
            typ: "mfa".to_owned(),
            iat: now,
            exp: now + lifetime,
            jti: random_hex::<12>(),
        };
        audit_login(
            &app,
            facts,
            Some(&user),
            &username,
            Ok("password ok; second factor required"),
        )
        .await;
        return Ok(Json(SignIn {
            status: "mfa_required".to_owned(),
            access_token: None,
            token_type: None,
            expires_in: lifetime,
            refresh_token: None,
            refresh_expires_in: None,
            mfa_token: Some(app.keys.sign(&claims)),
            user: None,
        }));
    }
    let signed_in = start_session(&app, &user, false).await;
    audit_login(
        &app,
        facts,
        Some(&user),
        &username,
        signed_in.as_ref().map(|_| "signed in"),
    )
    .await;
    Ok(Json(signed_in?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaBody {
    pub mfa_token: String,
    /// The 6-digit code from the authenticator.
    #[serde(default)]
    pub code: Option<String>,
    /// Or one of the recovery codes (each works once).
    #[serde(default)]
    pub recovery_code: Option<String>,
}

/// Finishes sign-in with the second factor.
#[utoipa::path(post, path = "/api/v1/auth/mfa", tag = "auth", request_body = MfaBody,
    responses(
        (status = 200, description = "Signed in", body = SignIn),
        (status = "4XX", description = "Refused", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "A backend failed", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn second_factor(
    State(app): State<Arc<App>>,
    anonymous: Anonymous,
    Body(body): Body<MfaBody>,
) -> ApiResult<Json<SignIn>> {
    let facts = &anonymous.facts;
    let claims = match app.keys.verify(&body.mfa_token, "mfa") {
        Ok(claims) => claims,
        Err(error) => {
            let problem = Problem::unauthenticated(
                error.code(),
                "The sign-in step has expired or is not valid; sign in again.",
            );
            audit_login(&app, facts, None, "", Err(&problem)).await;
            return Err(problem);
        }
    };
    let id: u64 = claims.sub.parse().map_err(|_| invalid_credentials())?;
    app.forget_user(id);
    let user = app.user(id).await?;
    let user = user.as_ref();
    if let Some(problem) = lock_of(user) {
        audit_login(&app, facts, Some(user), &user.username, Err(&problem)).await;
        return Err(problem);
    }
    let Some(enrolment) = user.totp.as_ref().filter(|t| t.confirmed) else {
        return Err(Problem::bad_request(
            "totp_not_enrolled",
            "This user has no second factor.",
        ));
    };
    let checked = match (&body.code, &body.recovery_code) {
        (Some(code), None) => match totp::verify(&enrolment.secret, code, now_s()) {
            Some(step) => app
                .identity_execute(IdentityCommand::RecordTotpUse {
                    user_id: user.id,
                    step,
                })
                .await
                .map(|_| "second factor: authenticator code"),
            None => Err(Problem::unauthenticated(
                "totp_invalid",
                "The code is wrong or too old.",
            )),
        },
        (None, Some(recovery)) => app
            .identity_execute(IdentityCommand::UseRecoveryCode {
                user_id: user.id,
                code_hash: corebank_identity::tokens::hash_recovery_code(recovery),
            })
            .await
            .map(|_| "second factor: recovery code"),
        _ => Err(Problem::invalid(
            "code",
            "Send either `code` or `recovery_code`.",
        )),
    };
    match checked {
        Ok(how) => {
            if !app.spend_mfa_token(&claims.jti, claims.exp) {
                let problem = Problem::unauthenticated(
                    "token_invalid",
                    "This sign-in step was used already; sign in again.",
                );
                audit_login(&app, facts, Some(user), &user.username, Err(&problem)).await;
                return Err(problem);
            }
            let signed_in = start_session(&app, user, true).await;
            audit_login(
                &app,
                facts,
                Some(user),
                &user.username,
                signed_in.as_ref().map(|_| how),
            )
            .await;
            Ok(Json(signed_in?))
        }
        Err(problem) => {
            let problem = if problem.status == StatusCode::UNAUTHORIZED {
                let failure = record_failure(&app, user).await;
                if failure.code == "login_locked" {
                    failure
                } else {
                    problem
                }
            } else {
                problem
            };
            audit_login(&app, facts, Some(user), &user.username, Err(&problem)).await;
            Err(problem)
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    pub refresh_token: String,
}

/// Trades a refresh token for new tokens; the old refresh token is spent.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses(
        (status = 200, description = "New tokens", body = SignIn),
        (status = "4XX", description = "Refused; `refresh_token_reused` revoked the session", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "A backend failed", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn refresh(
    State(app): State<Arc<App>>,
    anonymous: Anonymous,
    Body(body): Body<RefreshBody>,
) -> ApiResult<Json<SignIn>> {
    let facts = &anonymous.facts;
    let audit = |actor: String, outcome: AuditOutcome, code: String, detail: String| {
        let app = app.clone();
        let facts = facts.clone();
        async move {
            app.audit_raw(
                &actor,
                "",
                "auth.refresh",
                "session",
                outcome,
                &code,
                &detail,
                &facts,
            )
            .await;
        }
    };
    let invalid = || {
        Problem::unauthenticated(
            "refresh_token_invalid",
            "The refresh token is not valid; sign in again.",
        )
    };
    let Ok(presented) = RefreshToken::decode(&body.refresh_token) else {
        let problem = invalid();
        audit(
            "anonymous".into(),
            AuditOutcome::Denied,
            problem.code.clone(),
            String::new(),
        )
        .await;
        return Err(problem);
    };
    let Some(session) = crate::identity::session(&app.backend.registry, presented.family).await?
    else {
        let problem = invalid();
        audit(
            "anonymous".into(),
            AuditOutcome::Denied,
            problem.code.clone(),
            String::new(),
        )
        .await;
        return Err(problem);
    };
    let actor = format!("user:{}", session.user_id);
    let next = RefreshToken::new(presented.family, presented.generation.saturating_add(1));
    let outcome = app
        .identity_execute(IdentityCommand::RotateSession {
            family: presented.family,
            generation: presented.generation,
            token_hash: presented.hash(),
            new_token_hash: next.hash(),
            at_ms: now_ms(),
            expires_at_ms: session.expires_at_ms,
        })
        .await;
    match outcome {
        Ok(IdentityOutcome::Rotated(rotated)) => {
            app.forget_user(session.user_id);
            let user = app.user(session.user_id).await?;
            if user.disabled {
                let problem = Problem::new(
                    StatusCode::FORBIDDEN,
                    "user_disabled",
                    "This user is disabled.",
                );
                audit(
                    actor,
                    AuditOutcome::Denied,
                    problem.code.clone(),
                    String::new(),
                )
                .await;
                return Err(problem);
            }
            audit(
                actor,
                AuditOutcome::Granted,
                "ok".into(),
                format!("generation {}", rotated.generation),
            )
            .await;
            Ok(Json(tokens_for(
                &app,
                &user,
                presented.family,
                rotated.mfa,
                &next,
                rotated.expires_at_ms,
            )))
        }
        Ok(IdentityOutcome::ReuseDetected { .. }) => {
            app.forget_session(presented.family);
            let problem = Problem::unauthenticated(
                "refresh_token_reused",
                "This refresh token was already used: the session is revoked for safety. Sign in again.",
            );
            audit(
                actor,
                AuditOutcome::Denied,
                problem.code.clone(),
                "reuse detected; session revoked".into(),
            )
            .await;
            Err(problem)
        }
        Ok(_) => Err(Problem::internal(
            "The identity service answered something unexpected.",
        )),
        Err(problem) => {
            audit(
                actor,
                AuditOutcome::Denied,
                problem.code.clone(),
                problem.detail.clone(),
            )
            .await;
            Err(problem)
        }
    }
}

/// Ends the session: its refresh token and access tokens stop working.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "Signed out"),
        Problems),
    security(("bearer" = [])))]
pub async fn logout(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<StatusCode> {
    let Principal::User { session, .. } = caller.principal else {
        return Err(Problem::bad_request(
            "not_a_session",
            "API keys have no session to end.",
        ));
    };
    let result = app
        .identity_execute(IdentityCommand::RevokeSession {
            family: session,
            reason: RevokeReason::Logout,
            at_ms: now_ms(),
        })
        .await;
    app.forget_session(session);
    app.audit(
        &caller,
        "auth.logout",
        "session",
        result.as_ref().map(|_| ""),
    )
    .await;
    result?;
    Ok(StatusCode::NO_CONTENT)
}

fn user_id(caller: &Caller) -> ApiResult<u64> {
    caller.principal.user_id().ok_or_else(|| {
        Problem::bad_request(
            "not_a_user",
            "This call is for signed-in people, not API keys.",
        )
    })
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses(
        (status = 200, description = "The user", body = UserView),
        Problems),
    security(("bearer" = [])))]
pub async fn me(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<UserView>> {
    let id = user_id(&caller)?;
    let user = app.user(id).await?;
    Ok(Json(UserView::from(user.as_ref())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    pub current_password: String,
    /// 10 to 128 characters.
    pub new_password: String,
}

/// Changes the caller's password; every session of the user ends (sign in again).
#[utoipa::path(post, path = "/api/v1/me/password", tag = "auth", request_body = PasswordBody,
    responses(
        (status = 204, description = "Changed"),
        Problems),
    security(("bearer" = [])))]
pub async fn change_password(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<PasswordBody>,
) -> ApiResult<StatusCode> {
    let id = user_id(&caller)?;
    app.forget_user(id);
    let user = app.user(id).await?;
    if body.current_password.len() > 1024
        || !verify_password(body.current_password, Some(user.password_hash.clone())).await
    {
        let problem = invalid_credentials();
        app.audit(
            &caller,
            "auth.password",
            &format!("user:{id}"),
            Err(&problem),
        )
        .await;
        return Err(problem);
    }
    let hash = hash_password(body.new_password).await?;
    let result = app
        .identity_execute(IdentityCommand::SetPassword {
            user_id: id,
            password_hash: hash,
            at_ms: now_ms(),
        })
        .await;
    app.forget_user(id);
    if let Principal::User { session, .. } = caller.principal {
        app.forget_session(session);
    }
    app.audit(
        &caller,
        "auth.password",
        &format!("user:{id}"),
        result.as_ref().map(|_| ""),
    )
    .await;
    result?;
    Ok(StatusCode::NO_CONTENT)
}

/// Hashes a new password (argon2id) off the async threads.
pub async fn hash_password(new_password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || password::hash(&new_password))
        .await
        .map_err(|_| Problem::internal("Hashing failed."))?
        .map_err(|error| Problem::invalid("password", error.to_string()))
}

/// The start of a second-factor enrolment.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolmentView {
    /// The shared secret, base32, for typing into an authenticator.
    pub secret: String,
    pub otpauth_uri: String,
    /// The same URI as a QR code (SVG).
    pub qr_svg: String,
}

/// Begins enrolling an authenticator app (TOTP); confirm with a code.
#[utoipa::path(post, path = "/api/v1/me/totp", tag = "auth",
    responses(
        (status = 200, description = "Scan the QR code, then confirm", body = TotpEnrolmentView),
        Problems),
    security(("bearer" = [])))]
pub async fn totp_enrol(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> ApiResult<Json<TotpEnrolmentView>> {
    let id = user_id(&caller)?;
    let user = app.user(id).await?;
    let secret = totp::new_secret();
    let result = app
        .identity_execute(IdentityCommand::BeginTotp {
            user_id: id,
            secret: secret.clone(),
        })
        .await;
    app.forget_user(id);
    app.audit(
        &caller,
        "auth.totp.enrol",
        &format!("user:{id}"),
        result.as_ref().map(|_| ""),
    )
    .await;
    result?;
    let uri = totp::otpauth_uri(&app.config.totp_issuer, &user.username, &secret);
    let qr_svg =
        totp::qr_svg(&uri).map_err(|_| Problem::internal("The QR code could not be drawn."))?;
    Ok(Json(TotpEnrolmentView {
        secret: totp::secret_base32(&secret),
        otpauth_uri: uri,
        qr_svg,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// A 6-digit code from the authenticator.
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Each works once instead of a code; shown only now.
    pub recovery_codes: Vec<String>,
}

/// Confirms the enrolment with a first code; answers the recovery codes.
#[utoipa::path(post, path = "/api/v1/me/totp/confirm", tag = "auth", request_body = CodeBody,
    responses(
        (status = 200, description = "The second factor is on", body = RecoveryCodes),
        Problems),
    security(("bearer" = [])))]
pub async fn totp_confirm(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<CodeBody>,
) -> ApiResult<Json<RecoveryCodes>> {
    let id = user_id(&caller)?;
    app.forget_user(id);
    let user = app.user(id).await?;
    let Some(enrolment) = user.totp.as_ref().filter(|t| !t.confirmed) else {
        return Err(Problem::bad_request(
            "totp_not_enrolled",
            "Begin an enrolment first (POST /api/v1/me/totp).",
        ));
    };
    let Some(step) = totp::verify(&enrolment.secret, &body.code, now_s()) else {
        let problem = Problem::unauthenticated("totp_invalid", "The code is wrong or too old.");
        app.audit(
            &caller,
            "auth.totp.confirm",
            &format!("user:{id}"),
            Err(&problem),
        )
        .await;
        return Err(problem);
    };
    let codes = corebank_identity::tokens::new_recovery_codes(10);
    let hashes = codes
        .iter()
        .map(|c| corebank_identity::tokens::hash_recovery_code(c))
        .collect();
    let result = app
        .identity_execute(IdentityCommand::ConfirmTotp {
            user_id: id,
            step,
            recovery_code_hashes: hashes,
            at_ms: now_ms(),
        })
        .await;
    app.forget_user(id);
    app.audit(
        &caller,
        "auth.totp.confirm",
        &format!("user:{id}"),
        result.as_ref().map(|_| ""),
    )
    .await;
    result?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Turns the second factor off (needs a current code).
#[utoipa::path(post, path = "/api/v1/me/totp/disable", tag = "auth", request_body = CodeBody,
    responses(
        (status = 204, description = "The second factor is off"),
        Problems),
    security(("bearer" = [])))]
pub async fn totp_disable(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<CodeBody>,
) -> ApiResult<Response> {
    let id = user_id(&caller)?;
    app.forget_user(id);
    let user = app.user(id).await?;
    let Some(enrolment) = user.totp.as_ref().filter(|t| t.confirmed) else {
        return Err(Problem::bad_request(
            "totp_not_enrolled",
            "This user has no second factor.",
        ));
    };
    let result = match totp::verify(&enrolment.secret, &body.code, now_s()) {
        Some(step) => match app
            .identity_execute(IdentityCommand::RecordTotpUse { user_id: id, step })
            .await
        {
            Ok(_) => app
                .identity_execute(IdentityCommand::ResetTotp { user_id: id })
                .await
                .map(|_| ()),
            Err(problem) => Err(problem),
        },
        None => Err(Problem::unauthenticated(
            "totp_invalid",
            "The code is wrong or too old.",
        )),
    };
    app.forget_user(id);
    app.audit(
        &caller,
        "auth.totp.disable",
        &format!("user:{id}"),
        result.as_ref().map(|_| ""),
    )
    .await;
    result?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
