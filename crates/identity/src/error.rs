//! [`IdentityError`]: why the identity state refused a command.

use serde::{Deserialize, Serialize};

/// Why the identity state refused a command. A refused command changes nothing.
///
/// Every variant has a stable snake_case [`code`](Self::code) and a sentence for
/// people as `Display`. The variants carry at most one `String` detail, and the
/// `Display` sentence of such a variant is its fixed prefix, `": "` and the detail,
/// so that [`from_code`](Self::from_code) rebuilds the error exactly from its code
/// and its sentence (how it travels in a gRPC error).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum IdentityError {
    /// The command is malformed (a length, a time, a missing field).
    #[error("the command is invalid: {0}")]
    InvalidCommand(String),
    /// The username is not 3 to 64 characters of `a-z 0-9 . _ @ -`.
    #[error("the username is invalid: {0}")]
    InvalidUsername(String),
    /// The display name is empty, too long or holds control characters.
    #[error("the display name is invalid: {0}")]
    InvalidDisplayName(String),
    /// The password hash is not an argon2id PHC string.
    #[error("the password hash is invalid: {0}")]
    InvalidPasswordHash(String),
    /// The scopes of an API key are unusable.
    #[error("the scopes are invalid: {0}")]
    InvalidScopes(String),
    /// No user has this id.
    #[error("the user does not exist")]
    UserNotFound,
    /// Another user has this username.
    #[error("the username is already taken")]
    UsernameTaken,
    /// The user is disabled.
    #[error("the user is disabled")]
    UserDisabled,
    /// The user is locked after too many failed sign-ins.
    #[error("the user is locked after too many failed sign-ins; try again later")]
    UserLocked,
    /// The user has no (suitable) second-factor enrolment.
    #[error("the user has no authenticator enrolment for this step")]
    TotpNotEnrolled,
    /// The user already has a confirmed authenticator.
    #[error("the user already has a confirmed authenticator; reset it first")]
    TotpAlreadyEnrolled,
    /// The authenticator code (its 30-second step) was already used.
    #[error("this authenticator code was already used; wait for the next one")]
    TotpReplayed,
    /// The recovery code is unknown or already used.
    #[error("the recovery code is unknown or was already used")]
    RecoveryCodeInvalid,
    /// No session has this family.
    #[error("the session does not exist")]
    SessionNotFound,
    /// A session with this family exists already.
    #[error("a session with this id exists already")]
    SessionExists,
    /// The session was revoked.
    #[error("the session was revoked; sign in again")]
    SessionRevoked,
    /// The session expired.
    #[error("the session expired; sign in again")]
    SessionExpired,
    /// The refresh token does not match the session's current one.
    #[error("the refresh token is not valid for this session")]
    RefreshTokenInvalid,
    /// An API key with this id exists already.
    #[error("an API key with this id exists already")]
    ApiKeyExists,
    /// No API key has this id.
    #[error("the API key does not exist")]
    ApiKeyNotFound,
    /// The account belongs to another user.
    #[error("the account belongs to another user")]
    AccountOwnedByAnother,
    /// The user owns as many accounts as a user may.
    #[error("the user already owns the most accounts a user may (64)")]
    TooManyAccounts,
    /// A bound of the identity state is reached (users, API keys, sessions).
    #[error("a limit is reached: {0}")]
    LimitReached(String),
}

impl IdentityError {
    /// Every code, in declaration order.
    pub const CODES: &'static [&'static str] = &[
        "invalid_command",
        "invalid_username",
        "invalid_display_name",
        "invalid_password_hash",
        "invalid_scopes",
        "user_not_found",
        "username_taken",
        "user_disabled",
        "user_locked",
        "totp_not_enrolled",
        "totp_already_enrolled",
        "totp_replayed",
        "recovery_code_invalid",
        "session_not_found",
        "session_exists",
        "session_revoked",
        "session_expired",
        "refresh_token_invalid",
        "api_key_exists",
        "api_key_not_found",
        "account_owned_by_another",
        "too_many_accounts",
        "limit_reached",
    ];

    /// The stable snake_case code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::InvalidCommand(_) => "invalid_command",
            Self::InvalidUsername(_) => "invalid_username",
            Self::InvalidDisplayName(_) => "invalid_display_name",
            Self::InvalidPasswordHash(_) => "invalid_password_hash",
            Self::InvalidScopes(_) => "invalid_scopes",
            Self::UserNotFound => "user_not_found",
            Self::UsernameTaken => "username_taken",
            Self::UserDisabled => "user_disabled",
            Self::UserLocked => "user_locked",
            Self::TotpNotEnrolled => "totp_not_enrolled",
            Self::TotpAlreadyEnrolled => "totp_already_enrolled",
            Self::TotpReplayed => "totp_replayed",
            Self::RecoveryCodeInvalid => "recovery_code_invalid",
            Self::SessionNotFound => "session_not_found",
            Self::SessionExists => "session_exists",
            Self::SessionRevoked => "session_revoked",
            Self::SessionExpired => "session_expired",
            Self::RefreshTokenInvalid => "refresh_token_invalid",
            Self::ApiKeyExists => "api_key_exists",
            Self::ApiKeyNotFound => "api_key_not_found",
            Self::AccountOwnedByAnother => "account_owned_by_another",
            Self::TooManyAccounts => "too_many_accounts",
            Self::LimitReached(_) => "limit_reached",
        }
    }

    /// Whether the command was malformed (an `invalid_*` code), as opposed to
    /// refused by the state.
    pub const fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::InvalidCommand(_)
                | Self::InvalidUsername(_)
                | Self::InvalidDisplayName(_)
                | Self::InvalidPasswordHash(_)
                | Self::InvalidScopes(_)
        )
    }

    /// Rebuilds an error from its [`code`](Self::code) and its `Display` sentence
    /// (e.g. from a gRPC error's reason and message); `None` for an unknown code.
    /// `IdentityError::from_code(e.code(), &e.to_string()) == Some(e)` for every `e`.
    pub fn from_code(code: &str, message: &str) -> Option<Self> {
        let detail = |prefix: &str| {
            message
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix(": "))
                .unwrap_or(message)
                .to_owned()
        };
        Some(match code {
            "invalid_command" => Self::InvalidCommand(detail("the command is invalid")),
            "invalid_username" => Self::InvalidUsername(detail("the username is invalid")),
            "invalid_display_name" => {
                Self::InvalidDisplayName(detail("the display name is invalid"))
            }
            "invalid_password_hash" => {
                Self::InvalidPasswordHash(detail("the password hash is invalid"))
            }
            "invalid_scopes" => Self::InvalidScopes(detail("the scopes are invalid")),
            "user_not_found" => Self::UserNotFound,
            "username_taken" => Self::UsernameTaken,
            "user_disabled" => Self::UserDisabled,
            "user_locked" => Self::UserLocked,
            "totp_not_enrolled" => Self::TotpNotEnrolled,
            "totp_already_enrolled" => Self::TotpAlreadyEnrolled,
            "totp_replayed" => Self::TotpReplayed,
            "recovery_code_invalid" => Self::RecoveryCodeInvalid,
            "session_not_found" => Self::SessionNotFound,
            "session_exists" => Self::SessionExists,
            "session_revoked" => Self::SessionRevoked,
            "session_expired" => Self::SessionExpired,
            "refresh_token_invalid" => Self::RefreshTokenInvalid,
            "api_key_exists" => Self::ApiKeyExists,
            "api_key_not_found" => Self::ApiKeyNotFound,
            "account_owned_by_another" => Self::AccountOwnedByAnother,
            "too_many_accounts" => Self::TooManyAccounts,
            "limit_reached" => Self::LimitReached(detail("a limit is reached")),
            _ => return None,
        })
    }
}
