#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use crate::tokens::{self, RefreshToken};
use crate::*;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
const T0: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;

fn create(state: &mut IdentityState, name: &str, role: Role) -> User {
    match state
        .apply(&IdentityCommand::CreateUser {
            username: name.into(),
            display_name: format!("The {name}"),
            role,
            password_hash: HASH.into(),
            home_branch: 1,
            at_ms: T0,
        })
        .unwrap()
    {
        IdentityOutcome::UserCreated(user) => user,
        other => panic!("{other:?}"),
    }
}

/// Applies a command that must be refused with `code`, and checks that nothing
/// changed.
fn refused(state: &mut IdentityState, command: IdentityCommand, code: &str) {
    let before = state.clone();
    let error = state.apply(&command).unwrap_err();
    assert_eq!(error.code(), code, "{command:?}: {error}");
    assert_eq!(*state, before, "a refused command changed the state");
}

fn start(state: &mut IdentityState, user: u64, family: u8, at_ms: u64) -> Session {
    match state
        .apply(&IdentityCommand::StartSession {
            family: [family; 16],
            user_id: user,
            token_hash: [family; 32],
            mfa: false,
            at_ms,
            expires_at_ms: at_ms + 24 * HOUR,
        })
        .unwrap()
    {
        IdentityOutcome::SessionStarted(session) => session,
        other => panic!("{other:?}"),
    }
}

fn user(state: &IdentityState, id: u64) -> User {
    state.user_by_id(id).cloned().unwrap()
}

#[test]
fn users_are_created_with_increasing_ids_and_unique_names() {
    let mut state = IdentityState::new();
    let a = create(&mut state, "ana", Role::Customer);
    let b = create(&mut state, "bruno", Role::Teller);
    assert_eq!((a.id, b.id), (1, 2));
    assert_eq!(state.user_by_username(" ANA ").unwrap().id, 1);
    let mut command = IdentityCommand::CreateUser {
        username: "ana".into(),
        display_name: "Other".into(),
        role: Role::Admin,
        password_hash: HASH.into(),
        home_branch: 1,
        at_ms: T0,
    };
    refused(&mut state, command.clone(), "username_taken");
    if let IdentityCommand::CreateUser { username, .. } = &mut command {
        *username = "Ana".into();
    }
    refused(&mut state, command.clone(), "invalid_username");
    if let IdentityCommand::CreateUser { username, .. } = &mut command {
        *username = "ab".into();
    }
    refused(&mut state, command.clone(), "invalid_username");
    if let IdentityCommand::CreateUser {
        username,
        display_name,
        ..
    } = &mut command
    {
        *username = "carla".into();
        *display_name = "x\n".into();
    }
    refused(&mut state, command.clone(), "invalid_display_name");
    if let IdentityCommand::CreateUser {
        display_name,
        password_hash,
        ..
    } = &mut command
    {
        *display_name = "Carla".into();
        *password_hash = "$argon2i$v=19$...".into();
    }
    refused(&mut state, command, "invalid_password_hash");
    assert_eq!(state.next_user_id(), 3);
}

#[test]
fn role_names_round_trip() {
    for role in Role::ALL {
        assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
    }
    assert!("root".parse::<Role>().is_err());
    assert!(!Role::Customer.is_staff());
    assert!(Role::Auditor.is_staff());
}

#[test]
fn every_error_rebuilds_from_code_and_message() {
    let errors = [
        IdentityError::InvalidCommand("x: y".into()),
        IdentityError::InvalidUsername("u".into()),
        IdentityError::InvalidDisplayName("d".into()),
        IdentityError::InvalidPasswordHash("p".into()),
        IdentityError::InvalidScopes("s".into()),
        IdentityError::UserNotFound,
        IdentityError::UsernameTaken,
        IdentityError::UserDisabled,
        IdentityError::UserLocked,
        IdentityError::TotpNotEnrolled,
        IdentityError::TotpAlreadyEnrolled,
        IdentityError::TotpReplayed,
        IdentityError::RecoveryCodeInvalid,
        IdentityError::SessionNotFound,
        IdentityError::SessionExists,
        IdentityError::SessionRevoked,
        IdentityError::SessionExpired,
        IdentityError::RefreshTokenInvalid,
        IdentityError::ApiKeyExists,
        IdentityError::ApiKeyNotFound,
        IdentityError::AccountOwnedByAnother,
        IdentityError::TooManyAccounts,
        IdentityError::LimitReached("l".into()),
    ];
    assert_eq!(errors.len(), IdentityError::CODES.len());
    for (error, code) in errors.iter().zip(IdentityError::CODES) {
        assert_eq!(error.code(), *code);
        assert_eq!(
            IdentityError::from_code(error.code(), &error.to_string()).as_ref(),
            Some(error)
        );
    }
    assert_eq!(IdentityError::from_code("nope", "x"), None);
}

#[test]
fn user_changes_and_their_refusals() {
    let mut state = IdentityState::new();
    let ana = create(&mut state, "ana", Role::Customer);
    let other_hash = format!("{HASH}x");
    start(&mut state, ana.id, 1, T0);
    let out = state
        .apply(&IdentityCommand::SetPassword {
            user_id: ana.id,
            password_hash: other_hash.clone(),
            at_ms: T0 + 1,
        })
        .unwrap();
    assert!(matches!(out, IdentityOutcome::UserUpdated(u) if u.password_hash == other_hash));
    assert_eq!(
        state.session(&[1; 16]).unwrap().revoked,
        Some(RevokeReason::PasswordChanged)
    );
    refused(
        &mut state,
        IdentityCommand::SetPassword {
            user_id: 9,
            password_hash: HASH.into(),
            at_ms: T0,
        },
        "user_not_found",
    );
    refused(
        &mut state,
        IdentityCommand::SetPassword {
            user_id: ana.id,
            password_hash: "plain".into(),
            at_ms: T0,
        },
        "invalid_password_hash",
    );
    state
        .apply(&IdentityCommand::SetRole {
            user_id: ana.id,
            role: Role::Analyst,
        })
        .unwrap();
    assert_eq!(user(&state, ana.id).role, Role::Analyst);
    refused(
        &mut state,
        IdentityCommand::SetRole {
            user_id: 9,
            role: Role::Admin,
        },
        "user_not_found",
    );

    // Disabling revokes sessions and refuses new ones.
    start(&mut state, ana.id, 2, T0 + 2);
    state
        .apply(&IdentityCommand::SetDisabled {
            user_id: ana.id,
            disabled: true,
            at_ms: T0 + 3,
        })
        .unwrap();
    assert_eq!(
        state.session(&[2; 16]).unwrap().revoked,
        Some(RevokeReason::Disabled)
    );
    refused(
        &mut state,
        IdentityCommand::StartSession {
            family: [3; 16],
            user_id: ana.id,
            token_hash: [3; 32],
            mfa: false,
            at_ms: T0 + 4,
            expires_at_ms: T0 + HOUR,
        },
        "user_disabled",
    );
    refused(
        &mut state,
        IdentityCommand::RecordLoginSuccess {
            user_id: ana.id,
            at_ms: T0 + 4,
        },
        "user_disabled",
    );
    refused(
        &mut state,
        IdentityCommand::SetDisabled {
            user_id: 9,
            disabled: true,
            at_ms: T0,
        },
        "user_not_found",
    );
    state
        .apply(&IdentityCommand::SetDisabled {
            user_id: ana.id,
            disabled: false,
            at_ms: T0 + 5,
        })
        .unwrap();
    start(&mut state, ana.id, 3, T0 + 6);
    refused(
        &mut state,
        IdentityCommand::Unlock { user_id: 9 },
        "user_not_found",
    );
}

#[test]
fn five_failures_lock_for_fifteen_minutes() {
    let mut state = IdentityState::new();
    let ana = create(&mut state, "ana", Role::Customer);
    let fail = |state: &mut IdentityState, at_ms| {
        state
            .apply(&IdentityCommand::RecordLoginFailure {
                user_id: ana.id,
                at_ms,
            })
            .unwrap()
    };
    // Failures spread over more than the window do not lock.
    for i in 0..4 {
        fail(&mut state, T0 + i * 1000);
    }
    fail(&mut state, T0 + LOCKOUT_WINDOW_MS + 1);
    assert_eq!(user(&state, ana.id).locked_until_ms, None);
    assert_eq!(user(&state, ana.id).failed_logins, 1);
    // Five within the window do.
    let base = T0 + LOCKOUT_WINDOW_MS + 1;
    for i in 1..LOCKOUT_FAILURES {
        fail(&mut state, base + u64::from(i));
    }
    let locked_at = base + u64::from(LOCKOUT_FAILURES - 1);
    let locked = user(&state, ana.id);
    assert_eq!(locked.locked_until_ms, Some(locked_at + LOCKOUT_MS));
    assert!(locked.is_locked(locked_at + LOCKOUT_MS - 1));
    refused(
        &mut state,
        IdentityCommand::StartSession {
            family: [1; 16],
            user_id: ana.id,
            token_hash: [1; 32],
            mfa: false,
            at_ms: locked_at + 10,
            expires_at_ms: locked_at + HOUR,
        },
        "user_locked",
    );
    refused(
        &mut state,
        IdentityCommand::RecordLoginSuccess {
            user_id: ana.id,
            at_ms: locked_at + 10,
        },
        "user_locked",
    );
    // The lock expires.
    let later = locked_at + LOCKOUT_MS;
    start(&mut state, ana.id, 1, later);
    state
        .apply(&IdentityCommand::RecordLoginSuccess {
            user_id: ana.id,
            at_ms: later,
        })
        .unwrap();
    let ok = user(&state, ana.id);
    assert_eq!(
        (ok.failed_logins, ok.locked_until_ms, ok.last_login_ms),
        (0, None, Some(later))
    );
    // Unlock lifts a lock at once.
    for i in 0..5 {
        fail(&mut state, later + i);
    }
    assert!(user(&state, ana.id).is_locked(later + 10));
    state
        .apply(&IdentityCommand::Unlock { user_id: ana.id })
        .unwrap();
    assert!(!user(&state, ana.id).is_locked(later + 10));
    refused(
        &mut state,
        IdentityCommand::RecordLoginFailure {
            user_id: 9,
            at_ms: T0,
        },
        "user_not_found",
    );
}

#[test]
fn totp_enrolment_replay_and_recovery_codes() {
    let mut state = IdentityState::new();
    let ana = create(&mut state, "ana", Role::Customer);
    let id = ana.id;
    refused(
        &mut state,
        IdentityCommand::ConfirmTotp {
            user_id: id,
            step: 10,
            recovery_code_hashes: vec![],
            at_ms: T0,
        },
        "totp_not_enrolled",
    );
    refused(
        &mut state,
        IdentityCommand::RecordTotpUse {
            user_id: id,
            step: 10,
        },
        "totp_not_enrolled",
    );
    refused(
        &mut state,
        IdentityCommand::ResetTotp { user_id: id },
        "totp_not_enrolled",
    );
    refused(
        &mut state,
        IdentityCommand::BeginTotp {
            user_id: id,
            secret: vec![1; 5],
        },
        "invalid_command",
    );
    state
        .apply(&IdentityCommand::BeginTotp {
            user_id: id,
            secret: vec![1; 20],
        })
        .unwrap();
    // An unconfirmed enrolment is replaced; it is not usable yet.
    state
        .apply(&IdentityCommand::BeginTotp {
            user_id: id,
            secret: vec![2; 20],
        })
        .unwrap();
    refused(
        &mut state,
        IdentityCommand::RecordTotpUse {
            user_id: id,
            step: 10,
        },
        "totp_not_enrolled",
    );
    let codes = tokens::new_recovery_codes(3);
    let hashes: Vec<[u8; 32]> = codes
        .iter()
        .map(|c| tokens::hash_recovery_code(c))
        .collect();
    refused(
        &mut state,
        IdentityCommand::ConfirmTotp {
            user_id: id,
            step: 10,
            recovery_code_hashes: vec![hashes[0], hashes[0]],
            at_ms: T0,
        },
        "invalid_command",
    );
    state
        .apply(&IdentityCommand::ConfirmTotp {
            user_id: id,
            step: 10,
            recovery_code_hashes: hashes.clone(),
            at_ms: T0,
        })
        .unwrap();
    assert!(user(&state, id).has_totp());
    assert_eq!(user(&state, id).totp.unwrap().secret, vec![2; 20]);
    refused(
        &mut state,
        IdentityCommand::ConfirmTotp {
            user_id: id,
            step: 11,
            recovery_code_hashes: vec![],
            at_ms: T0,
        },
        "totp_already_enrolled",
    );
    refused(
        &mut state,
        IdentityCommand::BeginTotp {
            user_id: id,
            secret: vec![3; 20],
        },
        "totp_already_enrolled",
    );
    // The confirming step is used; so is any earlier one.
    for step in [9, 10] {
        refused(
            &mut state,
            IdentityCommand::RecordTotpUse { user_id: id, step },
            "totp_replayed",
        );
    }
    state
        .apply(&IdentityCommand::RecordTotpUse {
            user_id: id,
            step: 11,
        })
        .unwrap();
    refused(
        &mut state,
        IdentityCommand::RecordTotpUse {
            user_id: id,
            step: 11,
        },
        "totp_replayed",
    );
    // A recovery code works once, in any spelling.
    let spelled = codes[1].to_uppercase().replace('-', " ");
    state
        .apply(&IdentityCommand::UseRecoveryCode {
            user_id: id,
            code_hash: tokens::hash_recovery_code(&spelled),
        })
        .unwrap();
    refused(
        &mut state,
        IdentityCommand::UseRecoveryCode {
            user_id: id,
            code_hash: hashes[1],
        },
        "recovery_code_invalid",
    );
    assert_eq!(user(&state, id).totp.unwrap().recovery_code_hashes.len(), 2);
    state
        .apply(&IdentityCommand::ResetTotp { user_id: id })
        .unwrap();
    assert!(user(&state, id).totp.is_none());
    refused(
        &mut state,
        IdentityCommand::UseRecoveryCode {
            user_id: id,
            code_hash: hashes[0],
        },
        "totp_not_enrolled",
    );
}

#[test]
fn refresh_rotation_and_reuse_detection() {
    let mut state = IdentityState::new();
    let ana = create(&mut state, "ana", Role::Customer);
    let first = RefreshToken::new(tokens::new_family(), 0);
    let family = first.family;
    state
        .apply(&IdentityCommand::StartSession {
            family,
            user_id: ana.id,
            token_hash: first.hash(),
            mfa: true,
            at_ms: T0,
            expires_at_ms: T0 + 24 * HOUR,
        })
        .unwrap();
    refused(
        &mut state,
        IdentityCommand::StartSession {
            family,
            user_id: ana.id,
            token_hash: first.hash(),
            mfa: true,
            at_ms: T0,
            expires_at_ms: T0 + 24 * HOUR,
        },
        "session_exists",
    );
    let rotate =
        |presented: &RefreshToken, next: &RefreshToken, at_ms| IdentityCommand::RotateSession {
            family,
            generation: presented.generation,
            token_hash: presented.hash(),
            new_token_hash: next.hash(),
            at_ms,
            expires_at_ms: T0 + 24 * HOUR,
        };
    let second = RefreshToken::new(family, 1);
    let out = state.apply(&rotate(&first, &second, T0 + 1)).unwrap();
    assert!(matches!(out, IdentityOutcome::Rotated(ref s) if s.generation == 1 && s.mfa));
    // The right generation with a wrong secret, or a future generation: invalid.
    let forged = RefreshToken::new(family, 1);
    refused(
        &mut state,
        rotate(&forged, &RefreshToken::new(family, 2), T0 + 2),
        "refresh_token_invalid",
    );
    refused(
        &mut state,
        rotate(
            &RefreshToken::new(family, 7),
            &RefreshToken::new(family, 8),
            T0 + 2,
        ),
        "refresh_token_invalid",
    );
    refused(
        &mut state,
        rotate(&second, &RefreshToken::new(family, 2), T0 + 24 * HOUR),
        "session_expired",
    );
    refused(
        &mut state,
        IdentityCommand::RotateSession {
            family: [9; 16],
            generation: 0,
            token_hash: [0; 32],
            new_token_hash: [0; 32],
            at_ms: T0,
            expires_at_ms: T0 + 1,
        },
        "session_not_found",
    );
    let third = RefreshToken::new(family, 2);
    state.apply(&rotate(&second, &third, T0 + 3)).unwrap();
    // The first token again: reuse, the family is revoked.
    let out = state
        .apply(&rotate(&first, &RefreshToken::new(family, 1), T0 + 4))
        .unwrap();
    assert_eq!(
        out,
        IdentityOutcome::ReuseDetected {
            family,
            user_id: ana.id
        }
    );
    assert_eq!(
        state.session(&family).unwrap().revoked,
        Some(RevokeReason::Reuse)
    );
    // Even the newest token is refused now.
    refused(
        &mut state,
        rotate(&third, &RefreshToken::new(family, 3), T0 + 5),
        "session_revoked",
    );
}

#[test]
fn revoking_sessions() {
    let mut state = IdentityState::new();
    let ana = create(&mut state, "ana", Role::Customer);
    start(&mut state, ana.id, 1, T0);
    start(&mut state, ana.id, 2, T0);
    let out = state
        .apply(&IdentityCommand::RevokeSession {
            family: [1; 16],
            reason: RevokeReason::Logout,
            at_ms: T0 + 1,
        })
        .unwrap();
    assert!(
        matches!(out, IdentityOutcome::SessionRevoked(s) if s.revoked == Some(RevokeReason::Logout))
    );
    // Idempotent: the first reason stays.
    state
        .apply(&IdentityCommand::RevokeSession {
            family: [1; 16],
            reason: RevokeReason::Admin,
            at_ms: T0 + 2,
        })
        .unwrap();
    assert_eq!(
        state.session(&[1; 16]).unwrap().revoked,
        Some(RevokeReason::Logout)
    );
    refused(
        &mut state,
        IdentityCommand::RevokeSession {
            family: [7; 16],
            reason: RevokeReason::Logout,
            at_ms: T0,
        },
        "session_not_found",
    );
    let out = state
        .apply(&IdentityCommand::RevokeUserSessions {
            user_id: ana.id,
            reason: RevokeReason::Admin,
            at_ms: T0 + 3,
        })
        .unwrap();
    assert_eq!(
        out,
        IdentityOutcome::SessionsRevoked {
            user_id: ana.id,
            count: 1
        }
    );
    refused(
        &mut state,
        IdentityCommand::RevokeUserSessions {
            user_id: 9,
            reason: RevokeReason::Admin,
            at_ms: T0,
        },
        "user_not_found",
    );
    refused(
        &mut state,
        IdentityCommand::StartSession {
            family: [5; 16],
            user_id: 9,
            token_hash: [5; 32],
            mfa: false,
            at_ms: T0,
            expires_at_ms: T0 + 1,
        },
        "user_not_found",
    );
    refused(
        &mut state,
        IdentityCommand::StartSession {
            family: [5; 16],
            user_id: ana.id,
            token_hash: [5; 32],
            mfa: false,
            at_ms: T0,
            expires_at_ms: T0,
        },
        "invalid_command",
    );
}

#[test]
fn the_seventeenth_session_revokes_the_oldest() {
    let mut state = IdentityState::new();
    let ana = create(&mut state, "ana", Role::Customer);
    let n = u8::try_from(SESSIONS_PER_USER_MAX).unwrap();
    for i in 0..n {
        start(&mut state, ana.id, i + 1, T0 + u64::from(i));
    }
    assert!(state.sessions().all(|s| s.revoked.is_none()));
    start(&mut state, ana.id, n + 1, T0 + 100);
    assert_eq!(
        state.session(&[1; 16]).unwrap().revoked,
        Some(RevokeReason::Limit)
    );
    let live = state.sessions().filter(|s| s.is_live(T0 + 100)).count();
    assert_eq!(live, SESSIONS_PER_USER_MAX);
}

#[test]
fn housekeeping_drops_sessions_ended_a_week_ago() {
    let mut state = IdentityState::new();
    let ana = create(&mut state, "ana", Role::Customer);
    start(&mut state, ana.id, 1, T0); // expires T0 + 24h
    start(&mut state, ana.id, 2, T0);
    state
        .apply(&IdentityCommand::RevokeSession {
            family: [2; 16],
            reason: RevokeReason::Logout,
            at_ms: T0 + HOUR,
        })
        .unwrap();
    let late = T0 + 2 * HOUR + SESSION_RETENTION_MS;
    start(&mut state, ana.id, 3, late);
    // Ended 1 h after T0 (revoked) is gone; expired at T0 + 24 h is kept for now.
    assert!(state.session(&[2; 16]).is_none());
    assert!(state.session(&[1; 16]).is_some());
    start(&mut state, ana.id, 4, T0 + 25 * HOUR + SESSION_RETENTION_MS);
    assert!(state.session(&[1; 16]).is_none());
    assert!(state.session(&[3; 16]).is_some());
    state.check_invariants().unwrap();
}

#[test]
fn api_keys_and_accounts() {
    let mut state = IdentityState::new();
    let admin = create(&mut state, "admin", Role::Admin);
    let ana = create(&mut state, "ana", Role::Customer);
    let (id, key, hash) = tokens::ApiKeySecret::generate();
    let create_key = |id: &str, scopes: Vec<String>| IdentityCommand::CreateApiKey {
        id: id.into(),
        name: "reports".into(),
        owner_user_id: admin.id,
        scopes,
        secret_hash: hash,
        at_ms: T0,
    };
    let out = state
        .apply(&create_key(&id, vec!["accounts:read".into()]))
        .unwrap();
    assert!(matches!(out, IdentityOutcome::ApiKeyCreated(ref k) if k.id == id));
    let (parsed_id, secret) = tokens::parse_api_key(&key).unwrap();
    assert_eq!(parsed_id, id);
    assert!(tokens::constant_time_eq(
        &tokens::hash_api_secret(&secret),
        &state.api_key(&id).unwrap().secret_hash
    ));
    refused(
        &mut state,
        create_key(&id, vec!["accounts:read".into()]),
        "api_key_exists",
    );
    refused(&mut state, create_key("other", vec![]), "invalid_scopes");
    refused(
        &mut state,
        create_key("other", vec!["Accounts".into()]),
        "invalid_scopes",
    );
    refused(
        &mut state,
        create_key("other", vec!["a:b".into(), "a:b".into()]),
        "invalid_scopes",
    );
    refused(
        &mut state,
        create_key("other", (0..33).map(|_| "x".to_owned()).collect()),
        "invalid_scopes",
    );
    refused(
        &mut state,
        create_key("Bad-Id", vec!["a".into()]),
        "invalid_command",
    );
    refused(
        &mut state,
        IdentityCommand::CreateApiKey {
            id: "other".into(),
            name: "x".into(),
            owner_user_id: 99,
            scopes: vec!["a".into()],
            secret_hash: hash,
            at_ms: T0,
        },
        "user_not_found",
    );
    state
        .apply(&IdentityCommand::RevokeApiKey {
            id: id.clone(),
            at_ms: T0 + 5,
        })
        .unwrap();
    state
        .apply(&IdentityCommand::RevokeApiKey {
            id: id.clone(),
            at_ms: T0 + 6,
        })
        .unwrap();
    assert_eq!(state.api_key(&id).unwrap().revoked_at_ms, Some(T0 + 5));
    refused(
        &mut state,
        IdentityCommand::RevokeApiKey {
            id: "nothere".into(),
            at_ms: T0,
        },
        "api_key_not_found",
    );

    let link = |user_id, number: &str| IdentityCommand::LinkAccount {
        user_id,
        account_number: number.into(),
        at_ms: T0,
    };
    let out = state.apply(&link(ana.id, "CB0001000000001")).unwrap();
    assert!(matches!(
        out,
        IdentityOutcome::AccountLinked { created: true, .. }
    ));
    let out = state.apply(&link(ana.id, "CB0001000000001")).unwrap();
    assert!(matches!(
        out,
        IdentityOutcome::AccountLinked { created: false, .. }
    ));
    refused(
        &mut state,
        link(admin.id, "CB0001000000001"),
        "account_owned_by_another",
    );
    refused(&mut state, link(99, "CB0001000000002"), "user_not_found");
    refused(&mut state, link(ana.id, " CB1"), "invalid_command");
    for i in 1..ACCOUNTS_PER_USER_MAX {
        state.apply(&link(ana.id, &format!("CB{i:04}"))).unwrap();
    }
    refused(&mut state, link(ana.id, "CB9999"), "too_many_accounts");
    assert_eq!(
        state.query(&IdentityQuery::AccountOwner("CB0001000000001".into())),
        IdentityAnswer::AccountOwner(Some(ana.id))
    );
    assert_eq!(user(&state, ana.id).accounts.len(), ACCOUNTS_PER_USER_MAX);
}

#[test]
fn queries() {
    let mut state = IdentityState::new();
    for i in 0..7 {
        let role = if i % 2 == 0 {
            Role::Customer
        } else {
            Role::Teller
        };
        create(&mut state, &format!("user{i}"), role);
    }
    let IdentityAnswer::Users {
        users,
        next_after_id,
    } = state.query(&IdentityQuery::ListUsers {
        role: Some(Role::Customer),
        after_id: None,
        limit: 2,
    })
    else {
        panic!()
    };
    assert_eq!(users.iter().map(|u| u.id).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(next_after_id, Some(3));
    let IdentityAnswer::Users {
        users,
        next_after_id,
    } = state.query(&IdentityQuery::ListUsers {
        role: Some(Role::Customer),
        after_id: Some(3),
        limit: 2,
    })
    else {
        panic!()
    };
    assert_eq!(users.iter().map(|u| u.id).collect::<Vec<_>>(), vec![5, 7]);
    assert_eq!(next_after_id, None);
    assert!(matches!(
        state.query(&IdentityQuery::UserByUsername("USER3".into())),
        IdentityAnswer::User(Some(u)) if u.id == 4
    ));
    assert_eq!(
        state.query(&IdentityQuery::UserById(99)),
        IdentityAnswer::User(None)
    );
    assert_eq!(
        state.query(&IdentityQuery::Session([0; 16])),
        IdentityAnswer::Session(None)
    );
    assert_eq!(
        state.query(&IdentityQuery::ListApiKeys),
        IdentityAnswer::ApiKeys(vec![])
    );
    let IdentityAnswer::Stats(stats) = state.query(&IdentityQuery::Stats) else {
        panic!()
    };
    assert_eq!((stats.users, stats.next_user_id), (7, 8));
}

#[test]
fn totp_rfc6238_vectors() {
    let secret = b"12345678901234567890";
    assert_eq!(totp::hotp(secret, 59 / 30, 8), "94287082");
    assert_eq!(totp::code_at(secret, 59), "287082");
    assert_eq!(totp::hotp(secret, 1_111_111_109 / 30, 8), "07081804");
    assert_eq!(totp::hotp(secret, 1_234_567_890 / 30, 8), "89005924");
    // Current step and one either side; nothing else; digits only.
    let now = 1_700_000_000u64;
    let step = totp::step_of(now);
    assert_eq!(
        totp::verify(secret, &totp::code_at(secret, now), now),
        Some(step)
    );
    assert_eq!(
        totp::verify(secret, &totp::code_at(secret, now - 30), now),
        Some(step - 1)
    );
    assert_eq!(
        totp::verify(secret, &totp::code_at(secret, now + 30), now),
        Some(step + 1)
    );
    let old = totp::code_at(secret, now - 90);
    if old != totp::code_at(secret, now)
        && old != totp::code_at(secret, now - 30)
        && old != totp::code_at(secret, now + 30)
    {
        assert_eq!(totp::verify(secret, &old, now), None);
    }
    assert_eq!(totp::verify(secret, "12345", now), None);
    assert_eq!(totp::verify(secret, "12a456", now), None);
    assert_eq!(totp::verify(secret, "1234567", now), None);
}

#[test]
fn totp_uri_and_qr_code() {
    assert_eq!(
        totp::secret_base32(b"12345678901234567890"),
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    );
    assert_eq!(totp::secret_base32(b"f"), "MY");
    let secret = totp::new_secret();
    assert_eq!(secret.len(), 20);
    let uri = totp::otpauth_uri("Core Bank", "ana@example", &secret);
    assert!(uri.starts_with("otpauth://totp/Core%20Bank:ana%40example?secret="));
    assert!(uri.ends_with("&issuer=Core%20Bank&algorithm=SHA1&digits=6&period=30"));
    let svg = totp::qr_svg(&uri).unwrap();
    assert!(svg.contains("<svg"));
}

#[test]
fn refresh_tokens_encode_and_decode() {
    let token = RefreshToken::new_session();
    let text = token.encode();
    assert!(text.starts_with("cbrt_"));
    assert_eq!(RefreshToken::decode(&text).unwrap(), token);
    assert_eq!(token.hash(), tokens::sha256(text.as_bytes()));
    assert!(RefreshToken::decode("cbrt_abc").is_err());
    assert!(RefreshToken::decode(&text.replacen("cbrt_", "cbrx_", 1)).is_err());
    assert!(RefreshToken::decode(&format!("{text}A")).is_err());
    assert_ne!(tokens::new_family(), tokens::new_family());
    assert!(!format!("{token:?}").contains(&tokens::hex(&token.secret)));
}

#[test]
fn api_keys_and_recovery_codes_parse() {
    let (id, key, hash) = tokens::generate_api_key().unwrap();
    assert_eq!(id.len(), 12);
    let (parsed, secret) = tokens::parse_api_key(&key).unwrap();
    assert_eq!(parsed, id);
    assert_eq!(tokens::hash_api_secret(&secret), hash);
    assert!(tokens::parse_api_key("cbk_abc_def").is_none());
    assert!(tokens::parse_api_key(&key.to_uppercase()).is_none());
    let codes = tokens::new_recovery_codes(10);
    assert_eq!(codes.len(), 10);
    for code in &codes {
        assert_eq!(code.len(), 14);
        assert_eq!(code.matches('-').count(), 2);
    }
    assert_eq!(
        tokens::hash_recovery_code("ABCD EFGH-ijkl"),
        tokens::hash_recovery_code("abcd-efgh-ijkl")
    );
    assert!(tokens::constant_time_eq(b"abc", b"abc"));
    assert!(!tokens::constant_time_eq(b"abc", b"abd"));
    assert!(!tokens::constant_time_eq(b"abc", b"ab"));
}

#[test]
fn passwords_hash_and_verify() {
    assert_eq!(
        password::hash("short"),
        Err(password::PasswordError::TooShort { min: 10 })
    );
    assert_eq!(
        password::hash(&"x".repeat(129)),
        Err(password::PasswordError::TooLong { max: 128 })
    );
    let phc = password::hash("correct horse battery").unwrap();
    assert!(phc.starts_with("$argon2id$"));
    validate_password_hash(&phc).unwrap();
    assert!(password::verify("correct horse battery", &phc));
    assert!(!password::verify("wrong horse battery", &phc));
    assert!(!password::verify("correct horse battery", "not a hash"));
    assert!(!password::verify("correct horse battery", ""));
    password::dummy_verify("anything");
}

// ------------------------------------------------------------------ properties

fn command_strategy() -> impl Strategy<Value = IdentityCommand> {
    let user = 0u64..6;
    let family = (0u8..6).prop_map(|b| [b; 16]);
    let at = (0u64..40).prop_map(|i| T0 + i * LOCKOUT_WINDOW_MS / 4);
    let hash = (0u8..3).prop_map(|b| [b; 32]);
    let name = prop::sample::select(vec!["ana", "bruno", "carla", "dora", "Bad", "ed"]);
    let account = prop::sample::select(vec!["CB1", "CB2", "CB3", "CB4"]);
    let role = prop::sample::select(Role::ALL.to_vec());
    let reason = prop::sample::select(vec![
        RevokeReason::Logout,
        RevokeReason::Admin,
        RevokeReason::Reuse,
    ]);
    prop_oneof![
        (name, role, at.clone()).prop_map(|(name, role, at_ms)| IdentityCommand::CreateUser {
            username: name.into(),
            display_name: "Someone".into(),
            role,
            password_hash: HASH.into(),
            home_branch: 1,
            at_ms,
        }),
        (user.clone(), any::<bool>(), at.clone()).prop_map(|(user_id, disabled, at_ms)| {
            IdentityCommand::SetDisabled {
                user_id,
                disabled,
                at_ms,
            }
        }),
        (user.clone(), at.clone())
            .prop_map(|(user_id, at_ms)| IdentityCommand::RecordLoginFailure { user_id, at_ms }),
        (user.clone(), at.clone())
            .prop_map(|(user_id, at_ms)| IdentityCommand::RecordLoginSuccess { user_id, at_ms }),
        (user.clone(), at.clone()).prop_map(|(user_id, at_ms)| IdentityCommand::SetPassword {
            user_id,
            password_hash: HASH.into(),
            at_ms
        }),
        user.clone()
            .prop_map(|user_id| IdentityCommand::Unlock { user_id }),
        user.clone().prop_map(|user_id| IdentityCommand::BeginTotp {
            user_id,
            secret: vec![7; 20]
        }),
        (user.clone(), 0u64..5, at.clone()).prop_map(|(user_id, step, at_ms)| {
            IdentityCommand::ConfirmTotp {
                user_id,
                step,
                recovery_code_hashes: vec![[1; 32], [2; 32]],
                at_ms,
            }
        }),
        (user.clone(), 0u64..8)
            .prop_map(|(user_id, step)| IdentityCommand::RecordTotpUse { user_id, step }),
        (user.clone(), hash.clone()).prop_map(|(user_id, code_hash)| {
            IdentityCommand::UseRecoveryCode { user_id, code_hash }
        }),
        (family.clone(), user.clone(), hash.clone(), at.clone()).prop_map(
            |(family, user_id, token_hash, at_ms)| IdentityCommand::StartSession {
                family,
                user_id,
                token_hash,
                mfa: false,
                at_ms,
                expires_at_ms: at_ms + 2 * HOUR,
            }
        ),
        (family.clone(), 0u32..3, hash.clone(), hash, at.clone()).prop_map(
            |(family, generation, token_hash, new_token_hash, at_ms)| {
                IdentityCommand::RotateSession {
                    family,
                    generation,
                    token_hash,
                    new_token_hash,
                    at_ms,
                    expires_at_ms: at_ms + 2 * HOUR,
                }
            }
        ),
        (family, reason, at.clone()).prop_map(|(family, reason, at_ms)| {
            IdentityCommand::RevokeSession {
                family,
                reason,
                at_ms,
            }
        }),
        (user.clone(), at.clone()).prop_map(|(user_id, at_ms)| {
            IdentityCommand::RevokeUserSessions {
                user_id,
                reason: RevokeReason::Admin,
                at_ms,
            }
        }),
        (user.clone(), 0u8..3, at.clone()).prop_map(|(owner_user_id, k, at_ms)| {
            IdentityCommand::CreateApiKey {
                id: format!("key{k}"),
                name: "k".into(),
                owner_user_id,
                scopes: vec!["accounts:read".into()],
                secret_hash: [k; 32],
                at_ms,
            }
        }),
        (0u8..3, at.clone()).prop_map(|(k, at_ms)| IdentityCommand::RevokeApiKey {
            id: format!("key{k}"),
            at_ms
        }),
        (user, account, at).prop_map(|(user_id, account, at_ms)| IdentityCommand::LinkAccount {
            user_id,
            account_number: account.into(),
            at_ms,
        }),
    ]
}

fn encode(state: &IdentityState) -> Vec<u8> {
    bincode::serde::encode_to_vec(state, bincode::config::standard()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_commands_keep_invariants_and_are_deterministic(
        commands in prop::collection::vec(command_strategy(), 1..80)
    ) {
        let mut a = IdentityState::new();
        let mut b = IdentityState::new();
        let mut last_id = 0;
        for command in &commands {
            let before = a.clone();
            let result = a.apply(command);
            prop_assert_eq!(&result, &b.apply(command));
            match &result {
                Err(_) => prop_assert_eq!(&a, &before),
                Ok(IdentityOutcome::UserCreated(user)) => {
                    prop_assert!(user.id > last_id);
                    last_id = user.id;
                }
                Ok(_) => {}
            }
            if let Err(message) = a.check_invariants() {
                prop_assert!(false, "{}", message);
            }
        }
        prop_assert_eq!(encode(&a), encode(&b));
        let (decoded, _): (IdentityState, usize) =
            bincode::serde::decode_from_slice(&encode(&a), bincode::config::standard()).unwrap();
        prop_assert_eq!(decoded, a);
    }
}
