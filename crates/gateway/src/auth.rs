//! Who is calling, and what they may do.
//!
//! Every handler takes a [`Caller`] (or [`Anonymous`]): the extractor checks the
//! bearer token (signature, expiry, type, and that its session is still live in
//! the registry) or the API key, applies the per-client rate limit, and writes a
//! denial to the audit trail. Handlers then ask [`App::allow`] or
//! [`App::allow_account`], which audit the grant or the denial.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use corebank_identity::Role;

use crate::app::{App, AuditOutcome};
use crate::problem::Problem;

/// What a caller may do beyond their own money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Perm {
    /// Read any customer's accounts, balances and statements.
    AccountsRead,
    /// Move any customer's money (transfers, deposits, withdrawals).
    PaymentsWrite,
    /// Place, capture and release holds.
    HoldsWrite,
    /// Create customers and open accounts for them.
    CustomersManage,
    /// Create staff, change roles, unlock, disable; API keys.
    UsersManage,
    RiskRead,
    /// Review held transfers; freeze and unfreeze accounts.
    RiskWrite,
    /// The bank-wide event stream.
    EventsRead,
    AuditRead,
    MetricsRead,
    /// The operations dashboard.
    OpsRead,
}

impl Perm {
    pub const fn name(self) -> &'static str {
        match self {
            Self::AccountsRead => "accounts:read",
            Self::PaymentsWrite => "payments:write",
            Self::HoldsWrite => "holds:write",
            Self::CustomersManage => "customers:manage",
            Self::UsersManage => "users:manage",
            Self::RiskRead => "risk:read",
            Self::RiskWrite => "risk:write",
            Self::EventsRead => "events:read",
            Self::AuditRead => "audit:read",
            Self::MetricsRead => "metrics:read",
            Self::OpsRead => "ops:read",
        }
    }

    /// The scopes an API key may carry (managing people is for people only).
    pub const API_KEY_SCOPES: [Perm; 8] = [
        Perm::AccountsRead,
        Perm::PaymentsWrite,
        Perm::HoldsWrite,
        Perm::RiskRead,
        Perm::RiskWrite,
        Perm::EventsRead,
        Perm::AuditRead,
        Perm::MetricsRead,
    ];

    pub fn from_scope(scope: &str) -> Option<Self> {
        Self::API_KEY_SCOPES
            .iter()
            .copied()
            .find(|perm| perm.name() == scope)
    }
}

/// What each role may do (customers: only their own money, checked by ownership).
pub fn role_perms(role: Role) -> &'static [Perm] {
    use Perm::*;
    match role {
        Role::Customer => &[],
        Role::Teller => &[AccountsRead, PaymentsWrite, HoldsWrite, CustomersManage],
        Role::Analyst => &[AccountsRead, RiskRead, RiskWrite, EventsRead, OpsRead],
        Role::Auditor => &[AuditRead, EventsRead, OpsRead],
        Role::Admin => &[
            AccountsRead,
            CustomersManage,
            UsersManage,
            RiskRead,
            EventsRead,
            AuditRead,
            MetricsRead,
            OpsRead,
        ],
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    User {
        id: u64,
        role: Role,
        /// The session (refresh-token family).
        session: [u8; 16],
        mfa: bool,
    },
    Service {
        key_id: String,
        scopes: BTreeSet<Perm>,
    },
}

impl Principal {
    pub fn has(&self, perm: Perm) -> bool {
        match self {
            Self::User { role, .. } => role_perms(*role).contains(&perm),
            Self::Service { scopes, .. } => scopes.contains(&perm),
        }
    }

    pub fn actor(&self) -> String {
        match self {
            Self::User { id, .. } => format!("user:{id}"),
            Self::Service { key_id, .. } => format!("apikey:{key_id}"),
        }
    }

    pub fn role_name(&self) -> &'static str {
        match self {
            Self::User { role, .. } => role.as_str(),
            Self::Service { .. } => "service",
        }
    }

    pub fn user_id(&self) -> Option<u64> {
        match self {
            Self::User { id, .. } => Some(*id),
            Self::Service { .. } => None,
        }
    }

    pub fn is_customer(&self) -> bool {
        matches!(
            self,
            Self::User {
                role: Role::Customer,
                ..
            }
        )
    }
}

/// Request facts the audit trail and the limits need.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    pub client: String,
    pub request_id: String,
    pub path: String,
}

pub fn request_facts(parts: &Parts) -> RequestFacts {
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_default();
    let request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    RequestFacts {
        client,
        request_id,
        path: parts.uri.path().to_owned(),
    }
}

/// An authenticated request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub facts: RequestFacts,
}

/// A request that needs no credential (sign-in); rate-limited per address.
#[derive(Debug, Clone)]
pub struct Anonymous {
    pub facts: RequestFacts,
}

pub fn credential(headers: &HeaderMap) -> Option<(&'static str, String)> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let value = value.trim();
        if let Some(token) = value.strip_prefix("Bearer ") {
            return Some(("bearer", token.trim().to_owned()));
        }
        if let Some(key) = value.strip_prefix("ApiKey ") {
            return Some(("apikey", key.trim().to_owned()));
        }
        return Some(("unknown", String::new()));
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|key| ("apikey", key.trim().to_owned()))
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Problem> {
        Self::authenticate(app, credential(&parts.headers), request_facts(parts)).await
    }
}

/// The request facts alone, for handlers that authenticate later (a WebSocket's
/// first message).
#[derive(Debug, Clone)]
pub struct Facts(pub RequestFacts);

impl FromRequestParts<Arc<App>> for Facts {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &Arc<App>) -> Result<Self, Problem> {
        Ok(Self(request_facts(parts)))
    }
}

impl Caller {
    /// Authenticates a credential (`bearer` token or `apikey`), auditing a refusal,
    /// and applies the per-client limit: what every authenticated request goes
    /// through, whether the credential came in a header or in a WebSocket message.
    pub async fn authenticate(
        app: &Arc<App>,
        credential: Option<(&'static str, String)>,
        facts: RequestFacts,
    ) -> Result<Self, Problem> {
        let principal = match credential {
            None => Err(Problem::unauthenticated(
                "unauthenticated",
                "Sign in first: send `Authorization: Bearer <access token>` or an API key.",
            )),
            Some(("bearer", token)) => app.principal_from_token(&token).await,
            Some(("apikey", key)) => app.principal_from_api_key(&key).await,
            Some(_) => Err(Problem::unauthenticated(
                "unauthenticated",
                "The Authorization header must be `Bearer <token>` or `ApiKey <key>`.",
            )),
        };
        let principal = match principal {
            Ok(principal) => principal,
            Err(problem) => {
                app.audit_raw(
                    "anonymous",
                    "",
                    "auth.authenticate",
                    &facts.path,
                    AuditOutcome::Denied,
                    &problem.code,
                    &problem.detail,
                    &facts,
                )
                .await;
                return Err(problem);
            }
        };
        if let Err(problem) = app.limiters.client(&principal.actor()) {
            app.audit_raw(
                &principal.actor(),
                principal.role_name(),
                "limit.client",
                &facts.path,
                AuditOutcome::Denied,
                &problem.code,
                "",
                &facts,
            )
            .await;
            return Err(problem);
        }
        Ok(Self { principal, facts })
    }
}

impl FromRequestParts<Arc<App>> for Anonymous {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Problem> {
        let facts = request_facts(parts);
        if let Err(problem) = app.limiters.login(&format!("ip:{}", facts.client)) {
            app.audit_raw(
                "anonymous",
                "",
                "limit.login",
                &facts.path,
                AuditOutcome::Denied,
                &problem.code,
                "",
                &facts,
            )
            .await;
            return Err(problem);
        }
        Ok(Self { facts })
    }
}

/// A refusal for lack of a permission.
pub fn forbidden(perm: Perm) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "Your role or key does not allow this ({} is needed).",
            perm.name()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_separate_duties() {
        let admin = role_perms(Role::Admin);
        assert!(admin.contains(&Perm::UsersManage));
        assert!(
            !admin.contains(&Perm::PaymentsWrite),
            "admins do not move customers' money"
        );
        assert!(!admin.contains(&Perm::RiskWrite));
        assert!(role_perms(Role::Customer).is_empty());
        assert!(!role_perms(Role::Auditor).contains(&Perm::RiskWrite));
        assert!(role_perms(Role::Analyst).contains(&Perm::RiskWrite));
        assert!(role_perms(Role::Teller).contains(&Perm::PaymentsWrite));
        assert_eq!(Perm::from_scope("risk:read"), Some(Perm::RiskRead));
        assert_eq!(Perm::from_scope("users:manage"), None);
    }
}
