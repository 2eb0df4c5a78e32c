//! Who is calling, and may they do this?
//!
//! Every call to a corebank server carries one credential:
//!
//! - a **client certificate** presented during the mutual-TLS handshake and
//!   verified by `rustls` against the bank's CA: the caller's name is the
//!   certificate's subject common name, its scopes are in the URI subject
//!   alternative name `urn:corebank:scopes:<list>` (see [`crate::certs`]);
//! - or an **API key** in the `authorization` header (gRPC metadata or HTTP):
//!   `authorization: Bearer cbk_<id>_<secret>` (see [`ApiKeyStore`]).
//!
//! [`Authenticator::authenticate`] turns that into an [`Identity`] or an
//! [`AuthError`]; [`Identity::require`] then checks the one [`Scope`] the call
//! needs. The rule when both are present: **the client certificate wins** and
//! the header is not looked at. A certificate is bound to the TLS connection,
//! a header is not, so the stronger credential decides; a client that wants to
//! act under an API key connects without a certificate.

mod api_key;
mod scope;

use std::fmt;

use rustls::pki_types::CertificateDer;

pub use api_key::{
    API_KEY_BYTES, API_KEY_PREFIX, ApiKeyFile, ApiKeyRecord, ApiKeyStore, KEY_FILE_BYTES_MAX,
    KEY_FILE_FORMAT, KEYS_MAX, KeyStoreError, NewApiKey,
};
pub use scope::{SCOPE_LIST_BYTES_MAX, Scope, ScopeError, ScopeSet};

/// The longest `authorization` header looked at, in bytes; a longer one is
/// refused before any other work (an API key header is 88 bytes).
pub const AUTHORIZATION_BYTES_MAX: usize = 256;

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// An API key in the `authorization: Bearer` header.
    ApiKey,
    /// A client certificate verified during the mutual-TLS handshake.
    ClientCertificate,
}

impl AuthMethod {
    /// `api_key` or `client_certificate`, for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::ClientCertificate => "client_certificate",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The API key's name, or the client certificate's common name. Always
    /// passes [`crate::validate_name`], so it is safe to log.
    pub name: String,
    /// What the caller may do.
    pub scopes: ScopeSet,
    /// How the caller proved it.
    pub method: AuthMethod,
    /// Which credential was used, for the audit log: the API key's public id,
    /// or the certificate's serial number in lower-case hex. Never a secret.
    pub credential_id: String,
}

impl Identity {
    /// Allows the call if the caller holds `needed` or a scope that includes it
    /// (`admin` ⊇ `transfer` ⊇ `read`); otherwise `permission_denied`.
    pub fn require(&self, needed: Scope) -> Result<(), AuthError> {
        if self.scopes.allows(needed) {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied {
                name: self.name.clone(),
                needed,
                granted: self.scopes,
            })
        }
    }
}

/// What kind of refusal an [`AuthError`] is, i.e. which gRPC status (or HTTP
/// status) it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthStatus {
    /// gRPC `UNAUTHENTICATED`, HTTP 401: no acceptable credential.
    Unauthenticated,
    /// gRPC `PERMISSION_DENIED`, HTTP 403: known caller, missing scope.
    PermissionDenied,
}

/// Why a credential was not accepted. Says what was wrong with its shape,
/// never anything about stored keys beyond "not recognised".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidCredential {
    /// The header is longer than [`AUTHORIZATION_BYTES_MAX`].
    HeaderTooLong,
    /// The header is not `Bearer <api key>`.
    MalformedHeader,
    /// The bearer token is not shaped `cbk_<12 hex>_<64 hex>`.
    MalformedApiKey,
    /// No such key, or the secret part is wrong (the two are not told apart).
    UnknownApiKey,
    /// This server accepts no API keys (none are configured).
    ApiKeysDisabled,
    /// The client certificate could not be parsed.
    CertificateUnreadable,
    /// The client certificate has no usable common name (none, several, or one
    /// that is not a valid name).
    CertificateName,
    /// The client certificate's scopes SAN is malformed, names an unknown
    /// scope, or appears more than once.
    CertificateScopes,
}

impl fmt::Display for InvalidCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::HeaderTooLong => "the authorization header is too long",
            Self::MalformedHeader => "the authorization header is not 'Bearer <api key>'",
            Self::MalformedApiKey => "the API key is not shaped cbk_<id>_<secret>",
            Self::UnknownApiKey => "the API key is not recognised",
            Self::ApiKeysDisabled => "this server accepts no API keys",
            Self::CertificateUnreadable => "the client certificate cannot be parsed",
            Self::CertificateName => {
                "the client certificate does not have exactly one valid common name"
            }
            Self::CertificateScopes => {
                "the client certificate's scopes (URI SAN urn:corebank:scopes:...) are malformed"
            }
        })
    }
}

/// A refused call.
///
/// Every variant has a stable snake_case [`code`](Self::code) (for responses,
/// logs and the refusal counter) and a sentence for people; none contains a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No credential at all.
    #[error(
        "no credential was presented: connect with a client certificate or send the header \
         'authorization: Bearer <api key>'"
    )]
    Unauthenticated,
    /// A credential that is malformed or unknown.
    #[error("the credential was refused: {reason}")]
    InvalidCredential {
        /// What was wrong with it.
        reason: InvalidCredential,
    },
    /// A valid API key that has been revoked.
    #[error("API key {key_id} has been revoked")]
    Revoked {
        /// The key's public id.
        key_id: String,
    },
    /// An authenticated caller without the scope the call needs.
    #[error(
        "{name} may not do this: the call needs the {needed} scope, granted scopes are [{granted}]"
    )]
    PermissionDenied {
        /// The caller's name.
        name: String,
        /// The scope the call needs.
        needed: Scope,
        /// The scopes the caller holds.
        granted: ScopeSet,
    },
}

impl AuthError {
    /// Stable snake_case code: `unauthenticated`, `invalid_credential`,
    /// `revoked` or `permission_denied`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidCredential { .. } => "invalid_credential",
            Self::Revoked { .. } => "revoked",
            Self::PermissionDenied { .. } => "permission_denied",
        }
    }

    /// The status to answer with: everything but `permission_denied` is
    /// `UNAUTHENTICATED`.
    pub fn status(&self) -> AuthStatus {
        match self {
            Self::PermissionDenied { .. } => AuthStatus::PermissionDenied,
            Self::Unauthenticated | Self::InvalidCredential { .. } | Self::Revoked { .. } => {
                AuthStatus::Unauthenticated
            }
        }
    }

    pub(crate) fn invalid(reason: InvalidCredential) -> Self {
        Self::InvalidCredential { reason }
    }
}

/// Decides who a caller is. Holds the API key store (if API keys are enabled);
/// client certificates need no state here because `rustls` verified them
/// against the CA during the handshake.
#[derive(Debug)]
pub struct Authenticator {
    api_keys: Option<ApiKeyStore>,
}

impl Authenticator {
    /// An authenticator accepting client certificates, and API keys from
    /// `api_keys` when given (without a store every API key is refused with
    /// `invalid_credential`).
    pub fn new(api_keys: Option<ApiKeyStore>) -> Self {
        Self { api_keys }
    }

    /// The API key store, e.g. to [`reload`](ApiKeyStore::reload) it.
    pub fn api_keys(&self) -> Option<&ApiKeyStore> {
        self.api_keys.as_ref()
    }

    /// Authenticates one call.
    ///
    /// - `authorization`: the value of the `authorization` header or metadata
    ///   entry, if any.
    /// - `peer_certificates`: the client's certificate chain **as verified by
    ///   rustls** for this connection (`ServerConnection::peer_certificates()`),
    ///   end-entity first; `None` or empty when the client sent none. Never pass
    ///   certificates taken from anywhere else: they are not verified here.
    ///
    /// The rule: a client certificate, when present, is the credential and the
    /// header is ignored; otherwise the header must be `Bearer <api key>`;
    /// with neither the call is `unauthenticated`.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        peer_certificates: Option<&[CertificateDer<'_>]>,
    ) -> Result<Identity, AuthError> {
        if let Some(end_entity) = peer_certificates.and_then(|chain| chain.first()) {
            return crate::tls::peer_identity_from_certificate(end_entity);
        }
        let Some(header) = authorization else {
            return Err(AuthError::Unauthenticated);
        };
        let key = bearer_token(header)?;
        match &self.api_keys {
            Some(store) => store.verify(key),
            None => Err(AuthError::invalid(InvalidCredential::ApiKeysDisabled)),
        }
    }
}

/// The token of an `authorization: Bearer <token>` header (the scheme is
/// case-insensitive; spaces around the token are allowed).
pub fn bearer_token(header: &str) -> Result<&str, AuthError> {
    if header.len() > AUTHORIZATION_BYTES_MAX {
        return Err(AuthError::invalid(InvalidCredential::HeaderTooLong));
    }
    let malformed = || AuthError::invalid(InvalidCredential::MalformedHeader);
    let (scheme, token) = header.trim().split_once(' ').ok_or_else(malformed)?;
    let token = token.trim_start_matches(' ');
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(malformed());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Ok("abc"));
        assert_eq!(bearer_token("bearer   abc "), Ok("abc"));
        let malformed = Err(AuthError::invalid(InvalidCredential::MalformedHeader));
        for header in [
            "",
            "Bearer",
            "Bearer ",
            "Basic abc",
            "Bearer a b",
            "abc",
            "Bearerabc",
        ] {
            assert_eq!(bearer_token(header), malformed, "{header:?}");
        }
        let long = format!("Bearer {}", "a".repeat(AUTHORIZATION_BYTES_MAX));
        assert_eq!(
            bearer_token(&long),
            Err(AuthError::invalid(InvalidCredential::HeaderTooLong))
        );
    }

    #[test]
    fn require_checks_inclusion() {
        let identity = Identity {
            name: "teller".into(),
            scopes: ScopeSet::only(Scope::Transfer),
            method: AuthMethod::ApiKey,
            credential_id: "0123456789ab".into(),
        };
        assert_eq!(identity.require(Scope::Read), Ok(()));
        assert_eq!(identity.require(Scope::Transfer), Ok(()));
        let denied = identity.require(Scope::Admin);
        assert!(matches!(
            &denied,
            Err(AuthError::PermissionDenied {
                needed: Scope::Admin,
                ..
            })
        ));
        if let Err(error) = denied {
            assert_eq!(error.code(), "permission_denied");
            assert_eq!(error.status(), AuthStatus::PermissionDenied);
            assert_eq!(
                error.to_string(),
                "teller may not do this: the call needs the admin scope, granted scopes are [transfer]"
            );
        }
    }

    #[test]
    fn no_credential_is_unauthenticated() {
        let authenticator = Authenticator::new(None);
        assert_eq!(
            authenticator.authenticate(None, None),
            Err(AuthError::Unauthenticated)
        );
        assert_eq!(
            authenticator.authenticate(None, Some(&[])),
            Err(AuthError::Unauthenticated)
        );
        let error = AuthError::Unauthenticated;
        assert_eq!(
            (error.code(), error.status()),
            ("unauthenticated", AuthStatus::Unauthenticated)
        );
        assert_eq!(
            authenticator.authenticate(Some("Bearer cbk_0123456789ab_00"), None),
            Err(AuthError::invalid(InvalidCredential::ApiKeysDisabled))
        );
    }
}
