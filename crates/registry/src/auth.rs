//! Who may call the registry: every RPC names the [`Scope`] it needs
//! ([`RegistryRpc::scope`]) and asks an [`Authorize`] implementation first.
//!
//! | RPC | scope |
//! |---|---|
//! | RegisterBranch, UpdateBranch, AddBranchReplica, RemoveBranchReplica | `admin` |
//! | Heartbeat | `transfer` (a branch replica's credential; `admin` includes it) |
//! | ListBranches, GetBranch, ResolveAccount, ListCurrencies, ListProducts | `read` |
//!
//! Heartbeats need `transfer`, not `admin`, so that a replica does not have to hold
//! the bank's admin credential to say it is alive. What such a credential can do to
//! the directory is narrow: report liveness, term and applied index for a replica
//! that an admin registered, from that replica's registered address. It cannot add,
//! move or remove anything.
//!
//! The server's `Gate` (crates/server/src/auth.rs) plugs in with one impl:
//!
//! ```ignore
//! impl corebank_registry::Authorize for Gate {
//!     fn authorize<T>(&self, request: &tonic::Request<T>, needed: Scope)
//!         -> Result<Identity, tonic::Status> {
//!         self.check(request, needed)
//!     }
//! }
//! ```
//!
//! [`AuthGate`] is the same policy for a registry that runs without the server crate.

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

/// The RPCs of the registry, and the scope each needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegistryRpc {
    RegisterBranch,
    UpdateBranch,
    AddBranchReplica,
    RemoveBranchReplica,
    Heartbeat,
    ListBranches,
    GetBranch,
    ResolveAccount,
    ListCurrencies,
    ListProducts,
}

impl RegistryRpc {
    /// Every RPC, in the order of `registry.proto`.
    pub const ALL: [Self; 10] = [
        Self::RegisterBranch,
        Self::UpdateBranch,
        Self::AddBranchReplica,
        Self::RemoveBranchReplica,
        Self::Heartbeat,
        Self::ListBranches,
        Self::GetBranch,
        Self::ResolveAccount,
        Self::ListCurrencies,
        Self::ListProducts,
    ];

    /// The RPC's name in `registry.proto`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RegisterBranch => "RegisterBranch",
            Self::UpdateBranch => "UpdateBranch",
            Self::AddBranchReplica => "AddBranchReplica",
            Self::RemoveBranchReplica => "RemoveBranchReplica",
            Self::Heartbeat => "Heartbeat",
            Self::ListBranches => "ListBranches",
            Self::GetBranch => "GetBranch",
            Self::ResolveAccount => "ResolveAccount",
            Self::ListCurrencies => "ListCurrencies",
            Self::ListProducts => "ListProducts",
        }
    }

    /// The scope the RPC needs.
    pub const fn scope(self) -> Scope {
        match self {
            Self::RegisterBranch
            | Self::UpdateBranch
            | Self::AddBranchReplica
            | Self::RemoveBranchReplica => Scope::Admin,
            Self::Heartbeat => Scope::Transfer,
            Self::ListBranches
            | Self::GetBranch
            | Self::ResolveAccount
            | Self::ListCurrencies
            | Self::ListProducts => Scope::Read,
        }
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

/// The API error for a refused credential (the same mapping as the branch server's).
pub fn auth_error(error: &AuthError) -> ApiError {
    let code = match error.status() {
        AuthStatus::Unauthenticated => ErrorCode::Unauthenticated,
        AuthStatus::PermissionDenied => ErrorCode::PermissionDenied,
    };
    ApiError::new(code, error.to_string()).with_reason(error.code())
}

/// The authentication policy of a registry: client certificates and API keys
/// through [`Authenticator`], or, in development without credentials, everyone
/// acting as [`development_identity`].
#[derive(Clone)]
pub struct AuthGate {
    authenticator: Arc<Authenticator>,
    anonymous_development: bool,
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
        }
    }

    /// Lets every call through as [`development_identity`]: only for a registry
    /// that listens on loopback without TLS.
    pub fn insecure_development() -> Self {
        Self {
            authenticator: Arc::new(Authenticator::new(None)),
            anonymous_development: true,
        }
    }

    /// The authenticator, e.g. to reload its API keys.
    pub fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }
}

impl Authorize for AuthGate {
    fn authorize<T>(
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
            .map_err(|error| {
                tracing::debug!(code = error.code(), %needed, "registry call refused");
                auth_error(&error).to_status()
            })
    }
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
