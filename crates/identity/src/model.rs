//! The records, commands, outcomes, queries and answers of the identity state, and
//! the stateless checks of commands.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::IdentityError;

/// A user's id: 1, 2, 3 ... in creation order.
pub type UserId = u64;
/// A session's id: the family of its refresh tokens (random, 16 bytes).
pub type SessionFamily = [u8; 16];

/// The most users.
pub const USERS_MAX: usize = 1_000_000;
/// The most API keys (revoked ones included).
pub const API_KEYS_MAX: usize = 100_000;
/// The most sessions kept (live, or ended less than [`SESSION_RETENTION_MS`] ago).
pub const SESSIONS_MAX: usize = 2_000_000;
/// The most live sessions of one user: a new one revokes the oldest (`Limit`).
pub const SESSIONS_PER_USER_MAX: usize = 16;
/// The most accounts one user owns.
pub const ACCOUNTS_PER_USER_MAX: usize = 64;
/// Failed sign-ins within [`LOCKOUT_WINDOW_MS`] that lock a user.
pub const LOCKOUT_FAILURES: u32 = 5;
/// The window in which [`LOCKOUT_FAILURES`] failures lock a user (15 minutes).
pub const LOCKOUT_WINDOW_MS: u64 = 15 * 60 * 1_000;
/// How long a lock lasts (15 minutes).
pub const LOCKOUT_MS: u64 = 15 * 60 * 1_000;
/// Sessions expired or revoked longer ago than this (7 days) are dropped.
pub const SESSION_RETENTION_MS: u64 = 7 * 24 * 60 * 60 * 1_000;
/// The most sessions housekeeping looks at per command.
pub const HOUSEKEEPING_PER_COMMAND: usize = 32;
/// Usernames are 3 to 64 characters.
pub const USERNAME_MIN: usize = 3;
/// Usernames are 3 to 64 characters.
pub const USERNAME_MAX: usize = 64;
/// The longest display name, in bytes.
pub const DISPLAY_NAME_BYTES_MAX: usize = 128;
/// The longest password hash (PHC string), in bytes.
pub const PASSWORD_HASH_BYTES_MAX: usize = 512;
/// The most scopes of an API key.
pub const SCOPES_MAX: usize = 32;
/// The longest scope.
pub const SCOPE_BYTES_MAX: usize = 64;
/// The longest API key name, in bytes.
pub const API_KEY_NAME_BYTES_MAX: usize = 128;
/// The longest API key id (lowercase letters and digits).
pub const API_KEY_ID_BYTES_MAX: usize = 32;
/// The most recovery codes of an enrolment.
pub const RECOVERY_CODES_MAX: usize = 100;
/// The shortest and longest TOTP secret, in bytes.
pub const TOTP_SECRET_BYTES_MIN: usize = 16;
/// The longest TOTP secret, in bytes.
pub const TOTP_SECRET_BYTES_MAX: usize = 64;
/// The longest account number, in bytes.
pub const ACCOUNT_NUMBER_BYTES_MAX: usize = 64;
/// The most users in one ListUsers answer (and the default for limit 0).
pub const LIST_USERS_LIMIT_MAX: u32 = 500;

/// What a user may do at the bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// A customer: their own accounts only.
    Customer,
    /// Branch staff serving customers.
    Teller,
    /// Risk and fraud analysis.
    Analyst,
    /// Reads the audit trail.
    Auditor,
    /// Manages users and the bank.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Self; 5] = [
        Self::Customer,
        Self::Teller,
        Self::Analyst,
        Self::Auditor,
        Self::Admin,
    ];

    /// `customer`, `teller`, `analyst`, `auditor` or `admin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Teller => "teller",
            Self::Analyst => "analyst",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
        }
    }

    /// Whether the role is the bank's staff (not a customer).
    pub const fn is_staff(self) -> bool {
        !matches!(self, Self::Customer)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown role name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a role: customer, teller, analyst, auditor or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownRole(s.chars().take(32).collect()))
    }
}

/// A user's authenticator (TOTP, RFC 6238: SHA-1, 6 digits, 30 s).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpEnrolment {
    /// The shared secret (20 bytes).
    pub secret: Vec<u8>,
    /// Whether the user proved the authenticator works (a first code).
    pub confirmed: bool,
    /// The last 30-second step used: a code is accepted once.
    pub last_used_step: u64,
    /// SHA-256 hashes of the unused recovery codes.
    pub recovery_code_hashes: Vec<[u8; 32]>,
}

/// A customer or a member of staff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Assigned by the state: 1, 2, 3 ...
    pub id: UserId,
    /// Lowercase, 3 to 64 characters of `a-z 0-9 . _ @ -`; unique.
    pub username: String,
    /// The name shown to people (1 to 128 bytes).
    pub display_name: String,
    /// What the user may do.
    pub role: Role,
    /// The argon2id PHC string of the password.
    pub password_hash: String,
    /// The branch code where the user's accounts are opened.
    pub home_branch: u16,
    /// When the user was created.
    pub created_at_ms: u64,
    /// A disabled user cannot sign in; their sessions are revoked.
    pub disabled: bool,
    /// Failed sign-ins in the current window.
    pub failed_logins: u32,
    /// When the current window of failures began.
    pub failed_window_start_ms: u64,
    /// Locked until then (after [`LOCKOUT_FAILURES`] failures).
    pub locked_until_ms: Option<u64>,
    /// The last successful sign-in.
    pub last_login_ms: Option<u64>,
    /// The authenticator, when enrolled (confirmed or not).
    pub totp: Option<TotpEnrolment>,
    /// The account numbers the user owns (at most [`ACCOUNTS_PER_USER_MAX`]).
    pub accounts: Vec<String>,
}

impl User {
    /// Whether the user is locked at `now_ms`.
    pub fn is_locked(&self, now_ms: u64) -> bool {
        self.locked_until_ms.is_some_and(|until| now_ms < until)
    }

    /// Whether the user has a confirmed authenticator.
    pub fn has_totp(&self) -> bool {
        self.totp.as_ref().is_some_and(|totp| totp.confirmed)
    }
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RevokeReason {
    /// The user signed out.
    Logout,
    /// An older refresh token was presented again (theft suspected).
    Reuse,
    /// An administrator ended it.
    Admin,
    /// The password changed.
    PasswordChanged,
    /// The user started more than [`SESSIONS_PER_USER_MAX`] sessions.
    Limit,
    /// The user was disabled.
    Disabled,
}

impl RevokeReason {
    /// `logout`, `reuse`, `admin`, `password_changed`, `limit` or `disabled`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Reuse => "reuse",
            Self::Admin => "admin",
            Self::PasswordChanged => "password_changed",
            Self::Limit => "limit",
            Self::Disabled => "disabled",
        }
    }
}

/// A signed-in session: a family of rotating refresh tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Its id (random).
    pub family: SessionFamily,
    /// Whose it is.
    pub user_id: UserId,
    /// How many times its refresh token was rotated.
    pub generation: u32,
    /// SHA-256 of the current refresh token.
    pub token_hash: [u8; 32],
    /// Whether the sign-in passed a second factor.
    pub mfa: bool,
    /// When it began.
    pub created_at_ms: u64,
    /// When its token was last rotated (or it began).
    pub last_used_ms: u64,
    /// When it expires.
    pub expires_at_ms: u64,
    /// Why it ended, when it did.
    pub revoked: Option<RevokeReason>,
    /// When it was revoked.
    pub revoked_at_ms: Option<u64>,
}

impl Session {
    /// Whether the session is usable at `now_ms`: not revoked, not expired.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.revoked.is_none() && now_ms < self.expires_at_ms
    }

    /// When the session ended (revoked or expired), as of `now_ms`.
    pub fn ended_at(&self, now_ms: u64) -> Option<u64> {
        match self.revoked_at_ms {
            Some(at) => Some(at.min(self.expires_at_ms)),
            None if now_ms >= self.expires_at_ms => Some(self.expires_at_ms),
            None => None,
        }
    }
}

/// An API key of a service (the secret is never stored, only its hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The public id (e.g. 12 lowercase hex digits).
    pub id: String,
    /// A name for people.
    pub name: String,
    /// The user who created it.
    pub owner_user_id: UserId,
    /// What it may do (`accounts:read`, ...).
    pub scopes: Vec<String>,
    /// SHA-256 of its secret.
    pub secret_hash: [u8; 32],
    /// When it was created.
    pub created_at_ms: u64,
    /// When it was revoked.
    pub revoked_at_ms: Option<u64>,
}

/// A change to the identity state: what the registry's Raft log carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdentityCommand {
    /// Creates a user (id assigned by the state).
    CreateUser {
        username: String,
        display_name: String,
        role: Role,
        password_hash: String,
        home_branch: u16,
        at_ms: u64,
    },
    /// Replaces the password hash and revokes every session of the user.
    SetPassword {
        user_id: UserId,
        password_hash: String,
        at_ms: u64,
    },
    /// Disables (revoking every session) or enables a user.
    SetDisabled {
        user_id: UserId,
        disabled: bool,
        at_ms: u64,
    },
    /// Changes a user's role.
    SetRole { user_id: UserId, role: Role },
    /// Lifts a lock and clears the failures.
    Unlock { user_id: UserId },
    /// A failed sign-in; [`LOCKOUT_FAILURES`] within [`LOCKOUT_WINDOW_MS`] lock the
    /// user for [`LOCKOUT_MS`].
    RecordLoginFailure { user_id: UserId, at_ms: u64 },
    /// A successful sign-in: clears the failures.
    RecordLoginSuccess { user_id: UserId, at_ms: u64 },
    /// Begins (or restarts) an authenticator enrolment.
    BeginTotp { user_id: UserId, secret: Vec<u8> },
    /// Confirms the enrolment with the step of a first valid code.
    ConfirmTotp {
        user_id: UserId,
        step: u64,
        recovery_code_hashes: Vec<[u8; 32]>,
        at_ms: u64,
    },
    /// Records the use of the code of `step` (each step is accepted once).
    RecordTotpUse { user_id: UserId, step: u64 },
    /// Consumes a recovery code.
    UseRecoveryCode {
        user_id: UserId,
        code_hash: [u8; 32],
    },
    /// Removes the authenticator.
    ResetTotp { user_id: UserId },
    /// Starts a session.
    StartSession {
        family: SessionFamily,
        user_id: UserId,
        token_hash: [u8; 32],
        mfa: bool,
        at_ms: u64,
        expires_at_ms: u64,
    },
    /// Rotates the refresh token of a session (see [`IdentityOutcome::ReuseDetected`]).
    RotateSession {
        family: SessionFamily,
        generation: u32,
        token_hash: [u8; 32],
        new_token_hash: [u8; 32],
        at_ms: u64,
        expires_at_ms: u64,
    },
    /// Ends a session (idempotent).
    RevokeSession {
        family: SessionFamily,
        reason: RevokeReason,
        at_ms: u64,
    },
    /// Ends every live session of a user.
    RevokeUserSessions {
        user_id: UserId,
        reason: RevokeReason,
        at_ms: u64,
    },
    /// Creates an API key.
    CreateApiKey {
        id: String,
        name: String,
        owner_user_id: UserId,
        scopes: Vec<String>,
        secret_hash: [u8; 32],
        at_ms: u64,
    },
    /// Revokes an API key (idempotent).
    RevokeApiKey { id: String, at_ms: u64 },
    /// Records that a user owns an account (idempotent for the same owner).
    LinkAccount {
        user_id: UserId,
        account_number: String,
        at_ms: u64,
    },
}

impl IdentityCommand {
    /// The command's time, when it carries one.
    pub const fn at_ms(&self) -> Option<u64> {
        match self {
            Self::CreateUser { at_ms, .. }
            | Self::SetPassword { at_ms, .. }
            | Self::SetDisabled { at_ms, .. }
            | Self::RecordLoginFailure { at_ms, .. }
            | Self::RecordLoginSuccess { at_ms, .. }
            | Self::ConfirmTotp { at_ms, .. }
            | Self::StartSession { at_ms, .. }
            | Self::RotateSession { at_ms, .. }
            | Self::RevokeSession { at_ms, .. }
            | Self::RevokeUserSessions { at_ms, .. }
            | Self::CreateApiKey { at_ms, .. }
            | Self::RevokeApiKey { at_ms, .. }
            | Self::LinkAccount { at_ms, .. } => Some(*at_ms),
            Self::SetRole { .. }
            | Self::Unlock { .. }
            | Self::BeginTotp { .. }
            | Self::RecordTotpUse { .. }
            | Self::UseRecoveryCode { .. }
            | Self::ResetTotp { .. } => None,
        }
    }

    /// A short name of the command (`create_user`, ...), for logs.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::CreateUser { .. } => "create_user",
            Self::SetPassword { .. } => "set_password",
            Self::SetDisabled { .. } => "set_disabled",
            Self::SetRole { .. } => "set_role",
            Self::Unlock { .. } => "unlock",
            Self::RecordLoginFailure { .. } => "record_login_failure",
            Self::RecordLoginSuccess { .. } => "record_login_success",
            Self::BeginTotp { .. } => "begin_totp",
            Self::ConfirmTotp { .. } => "confirm_totp",
            Self::RecordTotpUse { .. } => "record_totp_use",
            Self::UseRecoveryCode { .. } => "use_recovery_code",
            Self::ResetTotp { .. } => "reset_totp",
            Self::StartSession { .. } => "start_session",
            Self::RotateSession { .. } => "rotate_session",
            Self::RevokeSession { .. } => "revoke_session",
            Self::RevokeUserSessions { .. } => "revoke_user_sessions",
            Self::CreateApiKey { .. } => "create_api_key",
            Self::RevokeApiKey { .. } => "revoke_api_key",
            Self::LinkAccount { .. } => "link_account",
        }
    }

    /// The checks that need no state: lengths, character sets, the hash prefix,
    /// scopes, counts. [`IdentityState::apply`](crate::IdentityState::apply) makes
    /// them too.
    pub fn validate(&self) -> Result<(), IdentityError> {
        match self {
            Self::CreateUser {
                username,
                display_name,
                password_hash,
                ..
            } => {
                validate_username(username)?;
                validate_display_name(display_name)?;
                validate_password_hash(password_hash)
            }
            Self::SetPassword { password_hash, .. } => validate_password_hash(password_hash),
            Self::BeginTotp { secret, .. } => {
                if (TOTP_SECRET_BYTES_MIN..=TOTP_SECRET_BYTES_MAX).contains(&secret.len()) {
                    Ok(())
                } else {
                    Err(invalid(format!(
                        "a TOTP secret is {TOTP_SECRET_BYTES_MIN} to {TOTP_SECRET_BYTES_MAX} bytes, not {}",
                        secret.len()
                    )))
                }
            }
            Self::ConfirmTotp {
                recovery_code_hashes,
                ..
            } => {
                if recovery_code_hashes.len() > RECOVERY_CODES_MAX {
                    return Err(invalid(format!(
                        "at most {RECOVERY_CODES_MAX} recovery codes, not {}",
                        recovery_code_hashes.len()
                    )));
                }
                let mut sorted = recovery_code_hashes.clone();
                sorted.sort_unstable();
                sorted.dedup();
                if sorted.len() != recovery_code_hashes.len() {
                    return Err(invalid("a recovery code is given twice".to_owned()));
                }
                Ok(())
            }
            Self::StartSession {
                at_ms,
                expires_at_ms,
                ..
            } => {
                if expires_at_ms <= at_ms {
                    Err(invalid(
                        "the session must expire after the command's time".to_owned(),
                    ))
                } else {
                    Ok(())
                }
            }
            Self::CreateApiKey {
                id, name, scopes, ..
            } => {
                validate_api_key_id(id)?;
                validate_text(name, API_KEY_NAME_BYTES_MAX)
                    .map_err(|problem| invalid(format!("the API key name {problem}")))?;
                validate_scopes(scopes)
            }
            Self::RevokeApiKey { id, .. } => validate_api_key_id(id),
            Self::LinkAccount { account_number, .. } => validate_account_number(account_number),
            Self::SetDisabled { .. }
            | Self::SetRole { .. }
            | Self::Unlock { .. }
            | Self::RecordLoginFailure { .. }
            | Self::RecordLoginSuccess { .. }
            | Self::RecordTotpUse { .. }
            | Self::UseRecoveryCode { .. }
            | Self::ResetTotp { .. }
            | Self::RotateSession { .. }
            | Self::RevokeSession { .. }
            | Self::RevokeUserSessions { .. } => Ok(()),
        }
    }
}

fn invalid(message: String) -> IdentityError {
    IdentityError::InvalidCommand(message)
}

/// The username as stored: trimmed and lowercase (it may still be invalid).
pub fn normalize_username(username: &str) -> String {
    username.trim().to_ascii_lowercase()
}

/// A username: 3 to 64 characters of `a-z 0-9 . _ @ -` (already lowercase).
pub fn validate_username(username: &str) -> Result<(), IdentityError> {
    let length = username.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&length) {
        return Err(IdentityError::InvalidUsername(format!(
            "it is {length} characters long; usernames are {USERNAME_MIN} to {USERNAME_MAX}"
        )));
    }
    if !username
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._@-".contains(&b))
    {
        return Err(IdentityError::InvalidUsername(
            "use only lowercase letters a-z, digits and . _ @ -".to_owned(),
        ));
    }
    Ok(())
}

/// A display name: 1 to 128 bytes, no control characters, no surrounding spaces.
pub fn validate_display_name(name: &str) -> Result<(), IdentityError> {
    validate_text(name, DISPLAY_NAME_BYTES_MAX).map_err(IdentityError::InvalidDisplayName)
}

fn validate_text(text: &str, max: usize) -> Result<(), String> {
    if text.is_empty() {
        return Err("is empty".to_owned());
    }
    if text.len() > max {
        return Err(format!("is {} bytes long, the limit is {max}", text.len()));
    }
    if text.chars().any(char::is_control) {
        return Err("contains a control character".to_owned());
    }
    if text.trim() != text {
        return Err("starts or ends with a space".to_owned());
    }
    Ok(())
}

/// An argon2id PHC string (`$argon2id$...`), at most 512 bytes of visible ASCII.
pub fn validate_password_hash(hash: &str) -> Result<(), IdentityError> {
    if !hash.starts_with("$argon2id$") {
        return Err(IdentityError::InvalidPasswordHash(
            "it must be an argon2id PHC string ($argon2id$...)".to_owned(),
        ));
    }
    if hash.len() > PASSWORD_HASH_BYTES_MAX || !hash.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(IdentityError::InvalidPasswordHash(format!(
            "it must be at most {PASSWORD_HASH_BYTES_MAX} bytes of visible ASCII"
        )));
    }
    Ok(())
}

/// API key scopes: 1 to 32 of them, each 1 to 64 characters of `a-z : _`, no
/// duplicates.
pub fn validate_scopes(scopes: &[String]) -> Result<(), IdentityError> {
    if scopes.is_empty() {
        return Err(IdentityError::InvalidScopes(
            "give at least one scope".to_owned(),
        ));
    }
    if scopes.len() > SCOPES_MAX {
        return Err(IdentityError::InvalidScopes(format!(
            "at most {SCOPES_MAX} scopes, not {}",
            scopes.len()
        )));
    }
    for (index, scope) in scopes.iter().enumerate() {
        if scope.is_empty()
            || scope.len() > SCOPE_BYTES_MAX
            || !scope
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b':' || b == b'_')
        {
            return Err(IdentityError::InvalidScopes(format!(
                "scope {:?} must be 1 to {SCOPE_BYTES_MAX} characters of a-z, : and _",
                scope.chars().take(SCOPE_BYTES_MAX).collect::<String>()
            )));
        }
        if scopes.get(..index).unwrap_or_default().contains(scope) {
            return Err(IdentityError::InvalidScopes(format!(
                "scope {scope:?} is given twice"
            )));
        }
    }
    Ok(())
}

/// An API key id: 1 to 32 characters of lowercase letters and digits.
pub fn validate_api_key_id(id: &str) -> Result<(), IdentityError> {
    if id.is_empty()
        || id.len() > API_KEY_ID_BYTES_MAX
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(invalid(format!(
            "an API key id is 1 to {API_KEY_ID_BYTES_MAX} lowercase letters and digits"
        )));
    }
    Ok(())
}

/// An account number as linked: 1 to 64 bytes of ASCII letters, digits and single
/// inner spaces.
pub fn validate_account_number(number: &str) -> Result<(), IdentityError> {
    let ok = !number.is_empty()
        && number.len() <= ACCOUNT_NUMBER_BYTES_MAX
        && number
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && number.trim() == number
        && !number.contains("  ");
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "an account number is 1 to {ACCOUNT_NUMBER_BYTES_MAX} ASCII letters and digits (single spaces between groups)"
        )))
    }
}

/// What an applied command did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdentityOutcome {
    /// `CreateUser`: the new user.
    UserCreated(User),
    /// A command that changed (or confirmed) a user: the user afterwards.
    UserUpdated(User),
    /// `StartSession`: the new session.
    SessionStarted(Session),
    /// `RotateSession`: the session with its new token hash and generation.
    Rotated(Session),
    /// `RotateSession` with an older refresh token: the session is now revoked
    /// (reason `Reuse`). The new token is refused; sign in again.
    ReuseDetected {
        family: SessionFamily,
        user_id: UserId,
    },
    /// `RevokeSession`: the session afterwards.
    SessionRevoked(Session),
    /// `RevokeUserSessions`: how many live sessions ended.
    SessionsRevoked { user_id: UserId, count: u32 },
    /// `CreateApiKey`: the key.
    ApiKeyCreated(ApiKey),
    /// `RevokeApiKey`: the key afterwards.
    ApiKeyRevoked(ApiKey),
    /// `LinkAccount`: `created` is false when the user owned the account already.
    AccountLinked {
        user_id: UserId,
        account_number: String,
        created: bool,
    },
}

/// A read of the identity state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdentityQuery {
    /// The user with this id: [`IdentityAnswer::User`].
    UserById(UserId),
    /// The user with this username (trimmed, lowercased): [`IdentityAnswer::User`].
    UserByUsername(String),
    /// Users in id order after `after_id`, optionally of one role:
    /// [`IdentityAnswer::Users`]. `limit` 0 means [`LIST_USERS_LIMIT_MAX`]; more is
    /// capped to it.
    ListUsers {
        role: Option<Role>,
        after_id: Option<UserId>,
        limit: u32,
    },
    /// A session: [`IdentityAnswer::Session`].
    Session(SessionFamily),
    /// An API key: [`IdentityAnswer::ApiKey`].
    ApiKey(String),
    /// Every API key, by id: [`IdentityAnswer::ApiKeys`].
    ListApiKeys,
    /// The owner of an account: [`IdentityAnswer::AccountOwner`].
    AccountOwner(String),
    /// Counts: [`IdentityAnswer::Stats`].
    Stats,
}

/// Counts of the identity state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityStats {
    /// Users.
    pub users: u64,
    /// Users per role, in [`Role::ALL`] order.
    pub users_by_role: Vec<(Role, u64)>,
    /// Disabled users.
    pub disabled_users: u64,
    /// Users with a confirmed authenticator.
    pub totp_users: u64,
    /// Sessions kept (live or recently ended).
    pub sessions: u64,
    /// Sessions not revoked (some may have expired).
    pub sessions_not_revoked: u64,
    /// API keys.
    pub api_keys: u64,
    /// Revoked API keys.
    pub api_keys_revoked: u64,
    /// Accounts linked to an owner.
    pub linked_accounts: u64,
    /// The id the next user gets.
    pub next_user_id: u64,
}

/// The answer to an [`IdentityQuery`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdentityAnswer {
    /// A user, when found.
    User(Option<User>),
    /// A page of users; `next_after_id` when more follow.
    Users {
        users: Vec<User>,
        next_after_id: Option<UserId>,
    },
    /// A session, when found.
    Session(Option<Session>),
    /// An API key, when found.
    ApiKey(Option<ApiKey>),
    /// Every API key.
    ApiKeys(Vec<ApiKey>),
    /// The owner's id, when the account is linked.
    AccountOwner(Option<UserId>),
    /// Counts.
    Stats(IdentityStats),
}
