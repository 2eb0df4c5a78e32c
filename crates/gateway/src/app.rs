//! The gateway's shared state and the checks every handler goes through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use corebank_audit::{AuditEntry, AuditTrail, Outcome};
use corebank_identity::{IdentityAnswer, IdentityCommand, IdentityOutcome, IdentityQuery, User};

use crate::auth::{Caller, Perm, Principal, RequestFacts, forbidden};
use crate::backend::Backend;
use crate::config::GatewayConfig;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::problem::Problem;
use crate::protect::Limiters;
use crate::tokens::{TokenError, TokenKeys, family_from_hex};

/// How long a session's state (live or revoked) is trusted before the registry
/// is asked again: a revocation made through another gateway takes effect
/// within this time; through this one, at once.
const SESSION_TTL: Duration = Duration::from_secs(2);
/// The same for a user's record (role, accounts owned).
const USER_TTL: Duration = Duration::from_secs(2);

pub use corebank_audit::Outcome as AuditOutcome;

/// Everything the handlers share.
#[derive(Debug)]
pub struct App {
    pub config: GatewayConfig,
    pub backend: Backend,
    pub keys: TokenKeys,
    pub audit: AuditTrail,
    pub limiters: Limiters,
    pub metrics: Metrics,
    pub hub: Arc<Hub>,
    sessions: Mutex<HashMap<[u8; 16], (Instant, bool)>>,
    users: Mutex<HashMap<u64, (Instant, Arc<User>)>>,
    /// Second-factor tokens already spent (jti → expiry), so that one is used once.
    spent_mfa: Mutex<HashMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn now_ms() -> u64 {
    crate::hub::now_ns() / 1_000_000
}

pub fn now_s() -> u64 {
    crate::hub::now_ns() / 1_000_000_000
}

impl App {
    pub fn new(
        config: GatewayConfig,
        backend: Backend,
        keys: TokenKeys,
        audit: AuditTrail,
        hub: Arc<Hub>,
    ) -> Self {
        let limiters = Limiters::new(config.limits);
        Self {
            config,
            backend,
            keys,
            audit,
            limiters,
            metrics: Metrics::new(),
            hub,
            sessions: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            spent_mfa: Mutex::new(HashMap::new()),
        }
    }

    // ------------------------------------------------------------ identity calls

    /// A write to the identity state (through the registry's Raft log).
    pub async fn identity_execute(
        &self,
        command: IdentityCommand,
    ) -> Result<IdentityOutcome, Problem> {
        crate::identity::execute(&self.backend.registry, command).await
    }

    pub async fn identity_query(&self, query: IdentityQuery) -> Result<IdentityAnswer, Problem> {
        crate::identity::query(&self.backend.registry, query).await
    }

    /// A user, from a short-lived cache.
    pub async fn user(&self, id: u64) -> Result<Arc<User>, Problem> {
        if let Some((at, user)) = lock(&self.users).get(&id)
            && at.elapsed() < USER_TTL
        {
            return Ok(user.clone());
        }
        let user = crate::identity::user_by_id(&self.backend.registry, id)
            .await?
            .ok_or_else(|| Problem::not_found("user_not_found", format!("No user {id}.")))?;
        let user = Arc::new(user);
        lock(&self.users).insert(id, (Instant::now(), user.clone()));
        Ok(user)
    }

    /// Forgets the cached user (after a change through this gateway).
    pub fn forget_user(&self, id: u64) {
        lock(&self.users).remove(&id);
    }

    pub fn remember_user(&self, user: &User) {
        lock(&self.users).insert(user.id, (Instant::now(), Arc::new(user.clone())));
    }

    /// Marks a session revoked at once in this gateway.
    pub fn forget_session(&self, family: [u8; 16]) {
        lock(&self.sessions).insert(family, (Instant::now(), false));
    }

    async fn session_live(&self, family: [u8; 16]) -> Result<bool, Problem> {
        if let Some((at, live)) = lock(&self.sessions).get(&family)
            && at.elapsed() < SESSION_TTL
        {
            return Ok(*live);
        }
        let live = crate::identity::session(&self.backend.registry, family)
            .await?
            .is_some_and(|session| session.revoked.is_none() && session.expires_at_ms > now_ms());
        let mut sessions = lock(&self.sessions);
        if sessions.len() > 100_000 {
            sessions.retain(|_, (at, _)| at.elapsed() < SESSION_TTL);
        }
        sessions.insert(family, (Instant::now(), live));
        Ok(live)
    }

    pub async fn principal_from_token(&self, token: &str) -> Result<Principal, Problem> {
        let claims = self
            .keys
            .verify(token, "access")
            .map_err(|error| Problem::unauthenticated(error.code(), error.to_string()))?;
        let invalid = || {
            Problem::unauthenticated(TokenError::Invalid.code(), TokenError::Invalid.to_string())
        };
        let id: u64 = claims.sub.parse().map_err(|_| invalid())?;
        let role = claims.role.parse().map_err(|_| invalid())?;
        let session = family_from_hex(&claims.sid).ok_or_else(invalid)?;
        if !self.session_live(session).await? {
            return Err(Problem::unauthenticated(
                "session_revoked",
                "This session has ended (signed out or revoked); sign in again.",
            ));
        }
        Ok(Principal::User {
            id,
            role,
            session,
            mfa: claims.mfa,
        })
    }

    pub async fn principal_from_api_key(&self, key: &str) -> Result<Principal, Problem> {
        let refused =
            || Problem::unauthenticated("api_key_invalid", "The API key is unknown or revoked.");
        let (id, secret) = corebank_identity::tokens::parse_api_key(key).ok_or_else(refused)?;
        let record = crate::identity::api_key(&self.backend.registry, &id)
            .await?
            .ok_or_else(refused)?;
        let presented = corebank_identity::tokens::hash_api_secret(&secret);
        if record.revoked_at_ms.is_some()
            || !corebank_identity::tokens::constant_time_eq(&presented, &record.secret_hash)
        {
            return Err(refused());
        }
        Ok(Principal::Service {
            key_id: record.id.clone(),
            scopes: record
                .scopes
                .iter()
                .filter_map(|scope| Perm::from_scope(scope))
                .collect(),
        })
    }

    /// Spends a second-factor token; false when it was spent already.
    pub fn spend_mfa_token(&self, jti: &str, exp: u64) -> bool {
        let mut spent = lock(&self.spent_mfa);
        let now = now_s();
        spent.retain(|_, expiry| *expiry > now);
        spent.insert(jti.to_owned(), exp).is_none()
    }

    // ------------------------------------------------------------ authorisation

    /// Records an audit entry. A trail that cannot write is logged loudly; the
    /// request still answers (the trail reports itself unhealthy on `/ready`).
    #[allow(clippy::too_many_arguments)]
    pub async fn audit_raw(
        &self,
        actor: &str,
        role: &str,
        action: &str,
        resource: &str,
        outcome: Outcome,
        code: &str,
        detail: &str,
        facts: &RequestFacts,
    ) {
        if outcome == Outcome::Denied {
            self.metrics
                .denials
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.metrics
            .audit_records
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let entry = AuditEntry {
            at_ms: now_ms(),
            actor: actor.to_owned(),
            role: role.to_owned(),
            action: action.to_owned(),
            resource: resource.to_owned(),
            outcome,
            code: code.to_owned(),
            detail: detail.to_owned(),
            client: facts.client.clone(),
            request_id: facts.request_id.clone(),
        };
        if let Err(error) = self.audit.record(entry).await {
            tracing::error!(%error, action, "the audit trail cannot record");
        }
    }

    /// Audits what a caller did (or failed to do).
    pub async fn audit(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        result: Result<&str, &Problem>,
    ) {
        let (outcome, code, detail) = match result {
            Ok(detail) => (Outcome::Granted, "ok", detail.to_owned()),
            Err(problem) if problem.status.is_server_error() => (
                Outcome::Failed,
                problem.code.as_str(),
                problem.detail.clone(),
            ),
            Err(problem)
                if problem.status == axum::http::StatusCode::FORBIDDEN
                    || problem.status == axum::http::StatusCode::UNAUTHORIZED =>
            {
                (
                    Outcome::Denied,
                    problem.code.as_str(),
                    problem.detail.clone(),
                )
            }
            Err(problem) => (
                Outcome::Failed,
                problem.code.as_str(),
                problem.detail.clone(),
            ),
        };
        self.audit_raw(
            &caller.principal.actor(),
            caller.principal.role_name(),
            action,
            resource,
            outcome,
            code,
            &detail,
            &caller.facts,
        )
        .await;
    }

    /// Grants `action` when the caller holds `perm`; audits either way.
    pub async fn allow(
        &self,
        caller: &Caller,
        perm: Perm,
        action: &str,
        resource: &str,
    ) -> Result<(), Problem> {
        if caller.principal.has(perm) {
            self.audit(caller, action, resource, Ok("")).await;
            Ok(())
        } else {
            let problem = forbidden(perm);
            self.audit(caller, action, resource, Err(&problem)).await;
            Err(problem)
        }
    }

    /// Grants `action` on `account` to its owner, or to a caller holding `perm`.
    /// Another customer's account is answered like a missing one (`404`), so that
    /// account numbers cannot be probed.
    pub async fn allow_account(
        &self,
        caller: &Caller,
        perm: Perm,
        action: &str,
        account: &str,
    ) -> Result<(), Problem> {
        let resource = format!("account:{account}");
        if caller.principal.has(perm) {
            self.audit(caller, action, &resource, Ok("")).await;
            return Ok(());
        }
        if let Principal::User {
            id,
            role: corebank_identity::Role::Customer,
            ..
        } = &caller.principal
        {
            let user = self.user(*id).await?;
            if user.accounts.iter().any(|owned| owned == account) {
                self.audit(caller, action, &resource, Ok("owner")).await;
                return Ok(());
            }
            let problem =
                Problem::not_found("account_not_found", "No account with this number is yours.");
            self.audit_raw(
                &caller.principal.actor(),
                caller.principal.role_name(),
                action,
                &resource,
                Outcome::Denied,
                "not_owner",
                "another customer's account",
                &caller.facts,
            )
            .await;
            return Err(problem);
        }
        let problem = forbidden(perm);
        self.audit(caller, action, &resource, Err(&problem)).await;
        Err(problem)
    }
}
