//! # corebank-identity
//!
//! The bank's customers and staff: users with roles, argon2id password hashes,
//! sign-in lockout, TOTP second factors with recovery codes, sessions with rotating
//! refresh tokens (reuse detection), API keys and the owners of accounts.
//!
//! - [`IdentityState`]: a pure, deterministic state machine, replicated by the
//!   registry's Raft group (`corebank-registry`). [`IdentityState::apply`] answers
//!   an [`IdentityCommand`] with an [`IdentityOutcome`] or refuses it with an
//!   [`IdentityError`] (then nothing changed); [`IdentityState::query`] answers an
//!   [`IdentityQuery`] with an [`IdentityAnswer`]. Time arrives inside commands;
//!   random values (secrets, token hashes, session ids) are made by the caller.
//! - Crypto helpers, used by the gateway around the state (never inside `apply`):
//!   [`password`] (argon2id), [`totp`] (RFC 6238, `otpauth://` URI, QR code as
//!   SVG), [`tokens`] (refresh tokens, API keys, recovery codes, SHA-256,
//!   constant-time comparison).
//!
//! ```
//! use corebank_identity::{IdentityCommand, IdentityOutcome, IdentityState, Role};
//!
//! let mut state = IdentityState::new();
//! let created = state.apply(&IdentityCommand::CreateUser {
//!     username: "ana".into(),
//!     display_name: "Ana Lima".into(),
//!     role: Role::Customer,
//!     password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
//!     home_branch: 1,
//!     at_ms: 1_700_000_000_000,
//! });
//! assert!(matches!(created, Ok(IdentityOutcome::UserCreated(user)) if user.id == 1));
//! ```

mod error;
mod model;
pub mod password;
mod state;
pub mod tokens;
pub mod totp;

pub use error::IdentityError;
pub use model::{
    ACCOUNT_NUMBER_BYTES_MAX, ACCOUNTS_PER_USER_MAX, API_KEY_ID_BYTES_MAX, API_KEY_NAME_BYTES_MAX,
    API_KEYS_MAX, ApiKey, DISPLAY_NAME_BYTES_MAX, HOUSEKEEPING_PER_COMMAND, IdentityAnswer,
    IdentityCommand, IdentityOutcome, IdentityQuery, IdentityStats, LIST_USERS_LIMIT_MAX,
    LOCKOUT_FAILURES, LOCKOUT_MS, LOCKOUT_WINDOW_MS, PASSWORD_HASH_BYTES_MAX, RECOVERY_CODES_MAX,
    RevokeReason, Role, SCOPE_BYTES_MAX, SCOPES_MAX, SESSION_RETENTION_MS, SESSIONS_MAX,
    SESSIONS_PER_USER_MAX, Session, SessionFamily, TOTP_SECRET_BYTES_MAX, TOTP_SECRET_BYTES_MIN,
    TotpEnrolment, USERNAME_MAX, USERNAME_MIN, USERS_MAX, UnknownRole, User, UserId,
    normalize_username, validate_account_number, validate_api_key_id, validate_display_name,
    validate_password_hash, validate_scopes, validate_username,
};
pub use state::IdentityState;

#[cfg(test)]
mod tests;
