//! corebank security: who may call a corebank server, and over what channel.
//!
//! - [`secret`]: [`Secret<T>`], a wrapper whose `Debug` and `Display` print
//!   `[redacted]`, for keys and other secrets that must never reach a log.
//! - [`certs`]: a development certificate authority (ECDSA P-256, made with
//!   `rcgen`), node certificates and client certificates that carry the client's
//!   scopes in a URI subject alternative name (`urn:corebank:scopes:read,transfer`).
//! - [`tls`]: loads PEM files with precise errors and builds TLS 1.3-only
//!   `rustls` server and client configurations (ALPN `h2`, optional client
//!   certificates verified against the CA); reads the caller's [`Identity`] out
//!   of a verified client certificate.
//! - [`auth`]: scopes (`read` ⊆ `transfer` ⊆ `admin`), identities, API keys
//!   (`cbk_<id>_<secret>`, stored only as SHA-256 hashes) and
//!   [`Authenticator::authenticate`], the one decision every call goes through.
//!
//! The crate does file I/O (PEM and key files) but no networking: servers hand it
//! the `authorization` header and the peer certificates that `rustls` verified.
//! Every error type has a stable snake_case `code()` and a human sentence.

pub mod auth;
pub mod certs;
mod fsutil;
mod names;
pub mod secret;
pub mod tls;

pub use auth::{
    ApiKeyFile, ApiKeyRecord, ApiKeyStore, AuthError, AuthMethod, AuthStatus, Authenticator,
    Identity, InvalidCredential, KeyStoreError, NewApiKey, Scope, ScopeError, ScopeSet,
};
pub use certs::{CertError, ClientSpec, DevCa, DevCertsReport, DevCertsRequest, IssuedCert};
pub use names::{NAME_BYTES_MAX, NameError, validate_name};
pub use secret::Secret;
pub use tls::TlsError;

/// Re-exported so that callers name the same `rustls` (and `pki_types`) as this crate.
pub use rustls;
