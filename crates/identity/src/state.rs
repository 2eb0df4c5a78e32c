//! [`IdentityState`]: the deterministic state machine of users, sessions, API keys
//! and account owners.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use crate::error::IdentityError;
use crate::model::{
    ACCOUNTS_PER_USER_MAX, API_KEYS_MAX, ApiKey, HOUSEKEEPING_PER_COMMAND, IdentityAnswer,
    IdentityCommand, IdentityOutcome, IdentityQuery, IdentityStats, LIST_USERS_LIMIT_MAX,
    LOCKOUT_FAILURES, LOCKOUT_MS, LOCKOUT_WINDOW_MS, RevokeReason, Role, SESSION_RETENTION_MS,
    SESSIONS_MAX, SESSIONS_PER_USER_MAX, Session, SessionFamily, TotpEnrolment, USERS_MAX, User,
    UserId, normalize_username, validate_account_number, validate_api_key_id,
    validate_display_name, validate_password_hash, validate_scopes, validate_username,
};
use crate::tokens::constant_time_eq;

/// Users, sessions, API keys and account owners. Pure and deterministic: no clock,
/// no randomness (time and random values arrive inside the commands); ordered maps
/// only, so that equal states serialize to equal bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityState {
    users: BTreeMap<UserId, User>,
    usernames: BTreeMap<String, UserId>,
    sessions: BTreeMap<SessionFamily, Session>,
    user_sessions: BTreeMap<UserId, BTreeSet<SessionFamily>>,
    api_keys: BTreeMap<String, ApiKey>,
    account_owners: BTreeMap<String, UserId>,
    next_user_id: UserId,
    /// Where housekeeping goes on (the last session family it looked at).
    sweep_after: Option<SessionFamily>,
}

type Applied = Result<IdentityOutcome, IdentityError>;

impl Default for IdentityState {
    fn default() -> Self {
        Self::new()
    }
}

impl IdentityState {
    /// An empty state; the first user gets id 1.
    pub fn new() -> Self {
        Self {
            users: BTreeMap::new(),
            usernames: BTreeMap::new(),
            sessions: BTreeMap::new(),
            user_sessions: BTreeMap::new(),
            api_keys: BTreeMap::new(),
            account_owners: BTreeMap::new(),
            next_user_id: 1,
            sweep_after: None,
        }
    }

    /// Applies one command. On `Err` nothing changed. After a command that carries
    /// a time and succeeded, housekeeping drops up to [`HOUSEKEEPING_PER_COMMAND`]
    /// sessions examined that ended more than [`SESSION_RETENTION_MS`] before it.
    pub fn apply(&mut self, command: &IdentityCommand) -> Applied {
        command.validate()?;
        let outcome = self.apply_checked(command)?;
        if let Some(at_ms) = command.at_ms() {
            self.housekeeping(at_ms);
        }
        debug_assert!(
            self.check_invariants().is_ok(),
            "an identity command broke the state: {:?}",
            self.check_invariants()
        );
        Ok(outcome)
    }

    fn apply_checked(&mut self, command: &IdentityCommand) -> Applied {
        use IdentityCommand as C;
        match command {
            C::CreateUser {
                username,
                display_name,
                role,
                password_hash,
                home_branch,
                at_ms,
            } => self.create_user(
                username,
                display_name,
                *role,
                password_hash,
                *home_branch,
                *at_ms,
            ),
            C::SetPassword {
                user_id,
                password_hash,
                at_ms,
            } => {
                self.user(*user_id)?;
                self.revoke_all(*user_id, RevokeReason::PasswordChanged, *at_ms);
                self.update_user(*user_id, |user| {
                    password_hash.clone_into(&mut user.password_hash);
                    Ok(())
                })
            }
            C::SetDisabled {
                user_id,
                disabled,
                at_ms,
            } => {
                self.user(*user_id)?;
                if *disabled {
                    self.revoke_all(*user_id, RevokeReason::Disabled, *at_ms);
                }
                self.update_user(*user_id, |user| {
                    user.disabled = *disabled;
                    Ok(())
                })
            }
            C::SetRole { user_id, role } => self.update_user(*user_id, |user| {
                user.role = *role;
                Ok(())
            }),
            C::Unlock { user_id } => self.update_user(*user_id, |user| {
                user.locked_until_ms = None;
                user.failed_logins = 0;
                user.failed_window_start_ms = 0;
                Ok(())
            }),
            C::RecordLoginFailure { user_id, at_ms } => self.update_user(*user_id, |user| {
                let at_ms = *at_ms;
                let window_over =
                    at_ms.saturating_sub(user.failed_window_start_ms) >= LOCKOUT_WINDOW_MS;
                if user.failed_logins == 0 || window_over {
                    user.failed_logins = 1;
                    user.failed_window_start_ms = at_ms;
                } else {
                    user.failed_logins = user.failed_logins.saturating_add(1);
                }
                if user.failed_logins >= LOCKOUT_FAILURES {
                    user.locked_until_ms = Some(at_ms.saturating_add(LOCKOUT_MS));
                    user.failed_logins = 0;
                    user.failed_window_start_ms = 0;
                }
                Ok(())
            }),
            C::RecordLoginSuccess { user_id, at_ms } => self.update_user(*user_id, |user| {
                usable(user, *at_ms)?;
                user.failed_logins = 0;
                user.failed_window_start_ms = 0;
                user.locked_until_ms = None;
                user.last_login_ms = Some(*at_ms);
                Ok(())
            }),
            C::BeginTotp { user_id, secret } => self.update_user(*user_id, |user| {
                if user.has_totp() {
                    return Err(IdentityError::TotpAlreadyEnrolled);
                }
                user.totp = Some(TotpEnrolment {
                    secret: secret.clone(),
                    confirmed: false,
                    last_used_step: 0,
                    recovery_code_hashes: Vec::new(),
                });
                Ok(())
            }),
            C::ConfirmTotp {
                user_id,
                step,
                recovery_code_hashes,
                ..
            } => self.update_user(*user_id, |user| {
                let totp = user.totp.as_mut().ok_or(IdentityError::TotpNotEnrolled)?;
                if totp.confirmed {
                    return Err(IdentityError::TotpAlreadyEnrolled);
                }
                totp.confirmed = true;
                totp.last_used_step = *step;
                totp.recovery_code_hashes.clone_from(recovery_code_hashes);
                Ok(())
            }),
            C::RecordTotpUse { user_id, step } => self.update_user(*user_id, |user| {
                let totp = confirmed_totp(user)?;
                if *step <= totp.last_used_step {
                    return Err(IdentityError::TotpReplayed);
                }
                totp.last_used_step = *step;
                Ok(())
            }),
            C::UseRecoveryCode { user_id, code_hash } => self.update_user(*user_id, |user| {
                let totp = confirmed_totp(user)?;
                // Compare with every code (no early exit), in constant time each.
                let mut found = None;
                for (index, stored) in totp.recovery_code_hashes.iter().enumerate() {
                    if constant_time_eq(stored, code_hash) {
                        found = Some(index);
                    }
                }
                let index = found.ok_or(IdentityError::RecoveryCodeInvalid)?;
                totp.recovery_code_hashes.remove(index);
                Ok(())
            }),
            C::ResetTotp { user_id } => self.update_user(*user_id, |user| {
                if user.totp.take().is_none() {
                    return Err(IdentityError::TotpNotEnrolled);
                }
                Ok(())
            }),
            C::StartSession {
                family,
                user_id,
                token_hash,
                mfa,
                at_ms,
                expires_at_ms,
            } => self.start_session(*family, *user_id, *token_hash, *mfa, *at_ms, *expires_at_ms),
            C::RotateSession {
                family,
                generation,
                token_hash,
                new_token_hash,
                at_ms,
                expires_at_ms,
            } => self.rotate_session(
                *family,
                *generation,
                token_hash,
                *new_token_hash,
                *at_ms,
                *expires_at_ms,
            ),
            C::RevokeSession {
                family,
                reason,
                at_ms,
            } => {
                let session = self
                    .sessions
                    .get_mut(family)
                    .ok_or(IdentityError::SessionNotFound)?;
                if session.revoked.is_none() {
                    session.revoked = Some(*reason);
                    session.revoked_at_ms = Some(*at_ms);
                }
                Ok(IdentityOutcome::SessionRevoked(session.clone()))
            }
            C::RevokeUserSessions {
                user_id,
                reason,
                at_ms,
            } => {
                self.user(*user_id)?;
                let count = self.revoke_all(*user_id, *reason, *at_ms);
                Ok(IdentityOutcome::SessionsRevoked {
                    user_id: *user_id,
                    count,
                })
            }
            C::CreateApiKey {
                id,
                name,
                owner_user_id,
                scopes,
                secret_hash,
                at_ms,
            } => {
                self.user(*owner_user_id)?;
                if self.api_keys.contains_key(id) {
                    return Err(IdentityError::ApiKeyExists);
                }
                if self.api_keys.len() >= API_KEYS_MAX {
                    return Err(IdentityError::LimitReached(format!(
                        "the bank has {API_KEYS_MAX} API keys, the most it may have"
                    )));
                }
                let key = ApiKey {
                    id: id.clone(),
                    name: name.clone(),
                    owner_user_id: *owner_user_id,
                    scopes: scopes.clone(),
                    secret_hash: *secret_hash,
                    created_at_ms: *at_ms,
                    revoked_at_ms: None,
                };
                self.api_keys.insert(id.clone(), key.clone());
                Ok(IdentityOutcome::ApiKeyCreated(key))
            }
            C::RevokeApiKey { id, at_ms } => {
                let key = self
                    .api_keys
                    .get_mut(id)
                    .ok_or(IdentityError::ApiKeyNotFound)?;
                if key.revoked_at_ms.is_none() {
                    key.revoked_at_ms = Some(*at_ms);
                }
                Ok(IdentityOutcome::ApiKeyRevoked(key.clone()))
            }
            C::LinkAccount {
                user_id,
                account_number,
                ..
            } => {
                let user = self.user(*user_id)?;
                match self.account_owners.get(account_number) {
                    Some(owner) if owner == user_id => {
                        return Ok(IdentityOutcome::AccountLinked {
                            user_id: *user_id,
                            account_number: account_number.clone(),
                            created: false,
                        });
                    }
                    Some(_) => return Err(IdentityError::AccountOwnedByAnother),
                    None => {}
                }
                if user.accounts.len() >= ACCOUNTS_PER_USER_MAX {
                    return Err(IdentityError::TooManyAccounts);
                }
                self.update_user(*user_id, |user| {
                    user.accounts.push(account_number.clone());
                    Ok(())
                })?;
                self.account_owners.insert(account_number.clone(), *user_id);
                Ok(IdentityOutcome::AccountLinked {
                    user_id: *user_id,
                    account_number: account_number.clone(),
                    created: true,
                })
            }
        }
    }

    fn create_user(
        &mut self,
        username: &str,
        display_name: &str,
        role: Role,
        password_hash: &str,
        home_branch: u16,
        at_ms: u64,
    ) -> Applied {
        if self.usernames.contains_key(username) {
            return Err(IdentityError::UsernameTaken);
        }
        if self.users.len() >= USERS_MAX {
            return Err(IdentityError::LimitReached(format!(
                "the bank has {USERS_MAX} users, the most it may have"
            )));
        }
        let id = self.next_user_id.max(1);
        let next = id
            .checked_add(1)
            .ok_or_else(|| IdentityError::LimitReached("user ids are exhausted".to_owned()))?;
        let user = User {
            id,
            username: username.to_owned(),
            display_name: display_name.to_owned(),
            role,
            password_hash: password_hash.to_owned(),
            home_branch,
            created_at_ms: at_ms,
            disabled: false,
            failed_logins: 0,
            failed_window_start_ms: 0,
            locked_until_ms: None,
            last_login_ms: None,
            totp: None,
            accounts: Vec::new(),
        };
        self.next_user_id = next;
        self.usernames.insert(username.to_owned(), id);
        self.users.insert(id, user.clone());
        Ok(IdentityOutcome::UserCreated(user))
    }

    fn start_session(
        &mut self,
        family: SessionFamily,
        user_id: UserId,
        token_hash: [u8; 32],
        mfa: bool,
        at_ms: u64,
        expires_at_ms: u64,
    ) -> Applied {
        let user = self.user(user_id)?;
        usable(user, at_ms)?;
        if self.sessions.contains_key(&family) {
            return Err(IdentityError::SessionExists);
        }
        let live: Vec<(u64, SessionFamily)> = self
            .user_sessions
            .get(&user_id)
            .into_iter()
            .flatten()
            .filter_map(|f| self.sessions.get(f))
            .filter(|s| s.is_live(at_ms))
            .map(|s| (s.created_at_ms, s.family))
            .collect();
        let oldest = if live.len() >= SESSIONS_PER_USER_MAX {
            live.iter().min().map(|(_, f)| *f)
        } else {
            None
        };
        if oldest.is_none() && self.sessions.len() >= SESSIONS_MAX {
            return Err(IdentityError::LimitReached(format!(
                "the bank keeps {SESSIONS_MAX} sessions, the most it may"
            )));
        }
        if let Some(oldest) = oldest
            && let Some(session) = self.sessions.get_mut(&oldest)
        {
            session.revoked = Some(RevokeReason::Limit);
            session.revoked_at_ms = Some(at_ms);
        }
        let session = Session {
            family,
            user_id,
            generation: 0,
            token_hash,
            mfa,
            created_at_ms: at_ms,
            last_used_ms: at_ms,
            expires_at_ms,
            revoked: None,
            revoked_at_ms: None,
        };
        self.sessions.insert(family, session.clone());
        self.user_sessions
            .entry(user_id)
            .or_default()
            .insert(family);
        Ok(IdentityOutcome::SessionStarted(session))
    }

    fn rotate_session(
        &mut self,
        family: SessionFamily,
        generation: u32,
        token_hash: &[u8; 32],
        new_token_hash: [u8; 32],
        at_ms: u64,
        expires_at_ms: u64,
    ) -> Applied {
        let session = self
            .sessions
            .get_mut(&family)
            .ok_or(IdentityError::SessionNotFound)?;
        if session.revoked.is_some() {
            return Err(IdentityError::SessionRevoked);
        }
        if at_ms >= session.expires_at_ms {
            return Err(IdentityError::SessionExpired);
        }
        if expires_at_ms <= at_ms {
            return Err(IdentityError::InvalidCommand(
                "the session must expire after the command's time".to_owned(),
            ));
        }
        if generation < session.generation {
            session.revoked = Some(RevokeReason::Reuse);
            session.revoked_at_ms = Some(at_ms);
            return Ok(IdentityOutcome::ReuseDetected {
                family,
                user_id: session.user_id,
            });
        }
        if generation != session.generation || !constant_time_eq(token_hash, &session.token_hash) {
            return Err(IdentityError::RefreshTokenInvalid);
        }
        let next = session
            .generation
            .checked_add(1)
            .ok_or(IdentityError::RefreshTokenInvalid)?;
        session.generation = next;
        session.token_hash = new_token_hash;
        session.last_used_ms = at_ms;
        session.expires_at_ms = expires_at_ms;
        Ok(IdentityOutcome::Rotated(session.clone()))
    }

    /// Revokes every live session of a user; how many.
    fn revoke_all(&mut self, user_id: UserId, reason: RevokeReason, at_ms: u64) -> u32 {
        let mut count = 0u32;
        let Some(families) = self.user_sessions.get(&user_id) else {
            return 0;
        };
        for family in families {
            if let Some(session) = self.sessions.get_mut(family)
                && session.revoked.is_none()
            {
                let was_live = session.is_live(at_ms);
                session.revoked = Some(reason);
                session.revoked_at_ms = Some(at_ms);
                if was_live {
                    count = count.saturating_add(1);
                }
            }
        }
        count
    }

    /// Changes a user through `f`, on a copy: a refusal by `f` changes nothing.
    fn update_user(
        &mut self,
        user_id: UserId,
        f: impl FnOnce(&mut User) -> Result<(), IdentityError>,
    ) -> Applied {
        let mut user = self.user(user_id)?.clone();
        f(&mut user)?;
        if let Some(slot) = self.users.get_mut(&user_id) {
            slot.clone_from(&user);
        }
        Ok(IdentityOutcome::UserUpdated(user))
    }

    fn user(&self, user_id: UserId) -> Result<&User, IdentityError> {
        self.users.get(&user_id).ok_or(IdentityError::UserNotFound)
    }

    /// Drops sessions that ended more than [`SESSION_RETENTION_MS`] before `at_ms`,
    /// looking at [`HOUSEKEEPING_PER_COMMAND`] sessions from where the last sweep
    /// stopped (wrapping around).
    fn housekeeping(&mut self, at_ms: u64) {
        if self.sessions.is_empty() {
            self.sweep_after = None;
            return;
        }
        let lower = match self.sweep_after {
            Some(after) => Bound::Excluded(after),
            None => Bound::Unbounded,
        };
        let mut examined: Vec<SessionFamily> = self
            .sessions
            .range((lower, Bound::Unbounded))
            .take(HOUSEKEEPING_PER_COMMAND)
            .map(|(family, _)| *family)
            .collect();
        let wrapped = examined.len() < HOUSEKEEPING_PER_COMMAND;
        if wrapped {
            let more = HOUSEKEEPING_PER_COMMAND - examined.len();
            let first = examined.first().copied();
            examined.extend(
                self.sessions
                    .keys()
                    .take_while(|family| Some(**family) != first)
                    .take(more)
                    .copied(),
            );
        }
        let mut last = None;
        for family in examined {
            last = Some(family);
            let old = self.sessions.get(&family).is_some_and(|session| {
                session
                    .ended_at(at_ms)
                    .is_some_and(|ended| at_ms.saturating_sub(ended) > SESSION_RETENTION_MS)
            });
            if old
                && let Some(session) = self.sessions.remove(&family)
                && let Some(families) = self.user_sessions.get_mut(&session.user_id)
            {
                families.remove(&family);
                if families.is_empty() {
                    self.user_sessions.remove(&session.user_id);
                }
            }
        }
        self.sweep_after = if self.sessions.is_empty() { None } else { last };
    }

    /// Answers a query.
    pub fn query(&self, query: &IdentityQuery) -> IdentityAnswer {
        match query {
            IdentityQuery::UserById(id) => IdentityAnswer::User(self.users.get(id).cloned()),
            IdentityQuery::UserByUsername(name) => {
                IdentityAnswer::User(self.user_by_username(name).cloned())
            }
            IdentityQuery::ListUsers {
                role,
                after_id,
                limit,
            } => {
                let limit = match *limit {
                    0 => LIST_USERS_LIMIT_MAX,
                    limit => limit.min(LIST_USERS_LIMIT_MAX),
                };
                let limit = usize::try_from(limit).unwrap_or(usize::MAX);
                let lower = match after_id {
                    Some(id) => Bound::Excluded(*id),
                    None => Bound::Unbounded,
                };
                let mut matching = self
                    .users
                    .range((lower, Bound::Unbounded))
                    .map(|(_, user)| user)
                    .filter(|user| role.is_none_or(|role| user.role == role));
                let users: Vec<User> = matching.by_ref().take(limit).cloned().collect();
                let next_after_id = if matching.next().is_some() {
                    users.last().map(|user| user.id)
                } else {
                    None
                };
                IdentityAnswer::Users {
                    users,
                    next_after_id,
                }
            }
            IdentityQuery::Session(family) => {
                IdentityAnswer::Session(self.sessions.get(family).cloned())
            }
            IdentityQuery::ApiKey(id) => IdentityAnswer::ApiKey(self.api_keys.get(id).cloned()),
            IdentityQuery::ListApiKeys => {
                IdentityAnswer::ApiKeys(self.api_keys.values().cloned().collect())
            }
            IdentityQuery::AccountOwner(number) => {
                IdentityAnswer::AccountOwner(self.account_owners.get(number.trim()).copied())
            }
            IdentityQuery::Stats => IdentityAnswer::Stats(self.stats()),
        }
    }

    /// The user with this id.
    pub fn user_by_id(&self, id: UserId) -> Option<&User> {
        self.users.get(&id)
    }

    /// The user with this username (trimmed and lowercased first).
    pub fn user_by_username(&self, username: &str) -> Option<&User> {
        self.usernames
            .get(&normalize_username(username))
            .and_then(|id| self.users.get(id))
    }

    /// Every user, by id.
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// The session of this family.
    pub fn session(&self, family: &SessionFamily) -> Option<&Session> {
        self.sessions.get(family)
    }

    /// Every session kept, by family.
    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    /// The API key with this id.
    pub fn api_key(&self, id: &str) -> Option<&ApiKey> {
        self.api_keys.get(id)
    }

    /// The owner of an account.
    pub fn account_owner(&self, account_number: &str) -> Option<UserId> {
        self.account_owners.get(account_number).copied()
    }

    /// The id the next user gets.
    pub fn next_user_id(&self) -> UserId {
        self.next_user_id.max(1)
    }

    /// Whether the state holds nothing.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.sessions.is_empty() && self.api_keys.is_empty()
    }

    /// Counts.
    pub fn stats(&self) -> IdentityStats {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        IdentityStats {
            users: count(self.users.len()),
            users_by_role: Role::ALL
                .into_iter()
                .map(|role| {
                    (
                        role,
                        count(self.users.values().filter(|u| u.role == role).count()),
                    )
                })
                .collect(),
            disabled_users: count(self.users.values().filter(|u| u.disabled).count()),
            totp_users: count(self.users.values().filter(|u| u.has_totp()).count()),
            sessions: count(self.sessions.len()),
            sessions_not_revoked: count(
                self.sessions
                    .values()
                    .filter(|s| s.revoked.is_none())
                    .count(),
            ),
            api_keys: count(self.api_keys.len()),
            api_keys_revoked: count(
                self.api_keys
                    .values()
                    .filter(|k| k.revoked_at_ms.is_some())
                    .count(),
            ),
            linked_accounts: count(self.account_owners.len()),
            next_user_id: self.next_user_id(),
        }
    }

    /// Checks every invariant; the first one broken is named.
    ///
    /// - every user is filed under its id, below the next id, with a valid
    ///   username, display name and password hash, at most 64 accounts;
    /// - the username index maps exactly the users' usernames to their ids;
    /// - every session belongs to an existing user and is in that user's index,
    ///   and the index holds only existing sessions;
    /// - every account owner is a user who lists the account, and every listed
    ///   account has that owner;
    /// - every API key is filed under its id, is owned by an existing user and has
    ///   valid scopes;
    /// - the bounds hold.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.users.len() > USERS_MAX
            || self.api_keys.len() > API_KEYS_MAX
            || self.sessions.len() > SESSIONS_MAX
        {
            return Err("a bound of the identity state is exceeded".to_owned());
        }
        if self.usernames.len() != self.users.len() {
            return Err(format!(
                "{} usernames indexed for {} users",
                self.usernames.len(),
                self.users.len()
            ));
        }
        let mut accounts = 0usize;
        for (id, user) in &self.users {
            if *id != user.id || *id == 0 || *id >= self.next_user_id() {
                return Err(format!("user {} is filed under {id}", user.id));
            }
            validate_username(&user.username).map_err(|e| format!("user {id}: {e}"))?;
            validate_display_name(&user.display_name).map_err(|e| format!("user {id}: {e}"))?;
            validate_password_hash(&user.password_hash).map_err(|e| format!("user {id}: {e}"))?;
            if self.usernames.get(&user.username) != Some(id) {
                return Err(format!("username {:?} is not indexed", user.username));
            }
            if user.accounts.len() > ACCOUNTS_PER_USER_MAX {
                return Err(format!("user {id} owns {} accounts", user.accounts.len()));
            }
            for account in &user.accounts {
                validate_account_number(account).map_err(|e| format!("user {id}: {e}"))?;
                if self.account_owners.get(account) != Some(id) {
                    return Err(format!("user {id} lists account {account} it does not own"));
                }
            }
            accounts += user.accounts.len();
        }
        if accounts != self.account_owners.len() {
            return Err(format!(
                "{} owned accounts but {} listed by users",
                self.account_owners.len(),
                accounts
            ));
        }
        let mut indexed = 0usize;
        for (user_id, families) in &self.user_sessions {
            if families.is_empty() || !self.users.contains_key(user_id) {
                return Err(format!("session index of user {user_id} is stale"));
            }
            for family in families {
                if self.sessions.get(family).map(|s| s.user_id) != Some(*user_id) {
                    return Err(format!("session index of user {user_id} is wrong"));
                }
            }
            indexed += families.len();
        }
        if indexed != self.sessions.len() {
            return Err("the session index does not hold every session".to_owned());
        }
        for (family, session) in &self.sessions {
            if *family != session.family {
                return Err("a session is filed under another family".to_owned());
            }
        }
        for (id, key) in &self.api_keys {
            if *id != key.id {
                return Err(format!("API key {} is filed under {id}", key.id));
            }
            validate_api_key_id(id).map_err(|e| format!("API key {id}: {e}"))?;
            validate_scopes(&key.scopes).map_err(|e| format!("API key {id}: {e}"))?;
            if !self.users.contains_key(&key.owner_user_id) {
                return Err(format!("API key {id} has no owner"));
            }
        }
        Ok(())
    }
}

/// Refuses a disabled or locked user.
fn usable(user: &User, at_ms: u64) -> Result<(), IdentityError> {
    if user.disabled {
        return Err(IdentityError::UserDisabled);
    }
    if user.is_locked(at_ms) {
        return Err(IdentityError::UserLocked);
    }
    Ok(())
}

fn confirmed_totp(user: &mut User) -> Result<&mut TotpEnrolment, IdentityError> {
    user.totp
        .as_mut()
        .filter(|totp| totp.confirmed)
        .ok_or(IdentityError::TotpNotEnrolled)
}
