//! Who may call a replica: [`AuthGate`] checks every call's credential (client
//! certificate under mutual TLS, or an API key) and scope through an
//! [`Authenticator`]; in development without credentials every call acts as
//! [`development_identity`]. Branch servers and registry replicas use the same gate;
//! what they do with a refusal (count it, log it) is theirs ([`Refusal`]).

use std::sync::Arc;

use corebank_proto::{ApiError, ErrorCode};
use corebank_security::{
    AuthError, AuthMethod, AuthStatus, Authenticator, Identity, Scope, ScopeSet,
};

/// Decides whether a call may proceed.
pub trait Authorize: Send + Sync + 'static {
    /// The caller's identity if it holds `needed` (or a larger scope); otherwise
    /// the `unauthenticated` or `permission_denied` status to answer with.
    fn authorize<T>(
        &self,
        request: &tonic::Request<T>,
        needed: Scope,
    ) -> Result<Identity, tonic::Status>;
}

impl<A: Authorize> Authorize for Arc<A> {
    fn authorize<T>(
        &self,
        request: &tonic::Request<T>,
        needed: Scope,
    ) -> Result<Identity, tonic::Status> {
        A::authorize(self, request, needed)
    }
}

/// The identity every call acts as when credentials are off (development on
/// loopback only).
pub fn development_identity() -> Identity {
    Identity {
        name: "insecure-development".into(),
        scopes: ScopeSet::only(Scope::Admin),
        method: AuthMethod::ApiKey,
        credential_id: "none".into(),
    }
}

/// The API error for a refused credential.
pub fn auth_error(error: &AuthError) -> ApiError {
    let code = match error.status() {
        AuthStatus::Unauthenticated => ErrorCode::Unauthenticated,
        AuthStatus::PermissionDenied => ErrorCode::PermissionDenied,
    };
    ApiError::new(code, error.to_string()).with_reason(error.code())
}

/// What a gate answers a refused call with (and what else it does about it: count it,
/// log it): the credential's error and the scope the call needed.
pub type Refusal = fn(&AuthError, Scope) -> tonic::Status;

/// A refusal that is logged at debug level and answered with [`auth_error`].
fn logged_refusal(error: &AuthError, needed: Scope) -> tonic::Status {
    tracing::debug!(code = error.code(), %needed, "registry call refused");
    auth_error(error).to_status()
}

/// The authentication policy of a replica: client certificates and API keys through
/// [`Authenticator`], or, in development without credentials, everyone acting as
/// [`development_identity`].
#[derive(Clone)]
pub struct AuthGate {
    authenticator: Arc<Authenticator>,
    /// Development mode without credentials (plain TCP on loopback, no key file):
    /// every call acts as an all-scopes development identity.
    anonymous_development: bool,
    refusal: Refusal,
}

impl std::fmt::Debug for AuthGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthGate")
            .field("anonymous_development", &self.anonymous_development)
            .finish_non_exhaustive()
    }
}

impl AuthGate {
    /// Checks every call's credential with `authenticator`.
    pub fn new(authenticator: Authenticator) -> Self {
        Self {
            authenticator: Arc::new(authenticator),
            anonymous_development: false,
            refusal: logged_refusal,
        }
    }

    /// Lets every call through as [`development_identity`]: only for a replica that
    /// listens on loopback without TLS.
    pub fn insecure_development() -> Self {
        Self {
            authenticator: Arc::new(Authenticator::new(None)),
            anonymous_development: true,
            refusal: logged_refusal,
        }
    }

    /// The same gate, answering refusals through `refusal` (by default: logged at
    /// debug level, answered with [`auth_error`]).
    #[must_use]
    pub fn with_refusal(mut self, refusal: Refusal) -> Self {
        self.refusal = refusal;
        self
    }

    /// The authenticator, e.g. to reload its API keys.
    pub fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }

    /// Authenticates the call and checks that it holds `needed`.
    pub fn check<T>(
        &self,
        request: &tonic::Request<T>,
        needed: Scope,
    ) -> Result<Identity, tonic::Status> {
        let identity = if self.anonymous_development {
            Ok(development_identity())
        } else {
            let header = request
                .metadata()
                .get("authorization")
                .and_then(|value| value.to_str().ok());
            let certificates = request.peer_certs();
            self.authenticator
                .authenticate(header, certificates.as_deref().map(Vec::as_slice))
        };
        identity
            .and_then(|identity| identity.require(needed).map(|()| identity))
            .map_err(|error| (self.refusal)(&error, needed))
    }
}

impl Authorize for AuthGate {
    fn authorize<T>(
        &self,
        request: &tonic::Request<T>,
        needed: Scope,
    ) -> Result<Identity, tonic::Status> {
        self.check(request, needed)
    }
}
