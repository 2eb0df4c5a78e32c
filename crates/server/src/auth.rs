//! Who is calling, and may they: every RPC starts with `Gate::check(&request, scope)`.

use std::sync::Arc;

use corebank_security::{AuthMethod, Authenticator, Identity, Scope, ScopeSet};

use crate::errors;

/// The authentication policy of a server.
#[derive(Clone)]
pub struct Gate {
    authenticator: Arc<Authenticator>,
    /// Development mode without credentials (plain TCP on loopback, no key file):
    /// every call acts as an all-scopes development identity.
    anonymous_development: bool,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("anonymous_development", &self.anonymous_development)
            .finish_non_exhaustive()
    }
}

impl Gate {
    pub fn new(authenticator: Authenticator, anonymous_development: bool) -> Self {
        Self {
            authenticator: Arc::new(authenticator),
            anonymous_development,
        }
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }

    /// Authenticates the call and checks that it holds `needed`; refusals are counted.
    pub fn check<T>(
        &self,
        request: &tonic::Request<T>,
        needed: Scope,
    ) -> Result<Identity, tonic::Status> {
        let identity = if self.anonymous_development {
            Ok(Identity {
                name: "insecure-development".into(),
                scopes: ScopeSet::only(Scope::Admin),
                method: AuthMethod::ApiKey,
                credential_id: "none".into(),
            })
        } else {
            let header = request
                .metadata()
                .get("authorization")
                .and_then(|value| value.to_str().ok());
            let certificates = request.peer_certs();
            self.authenticator
                .authenticate(header, certificates.as_deref().map(Vec::as_slice))
        };
        let outcome = identity.and_then(|identity| identity.require(needed).map(|()| identity));
        outcome.map_err(|error| {
            metrics::counter!("corebank_auth_refusals_total", "code" => error.code()).increment(1);
            errors::status(errors::auth(&error))
        })
    }
}
