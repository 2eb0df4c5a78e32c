//! Password hashes: argon2id with the default parameters (19 MiB, 2 passes, 1
//! lane), PHC strings.
//!
//! Hashing takes tens of milliseconds on purpose: call these from a blocking task
//! (`tokio::task::spawn_blocking`), never on an async executor thread.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};

/// The shortest password, in characters.
pub const PASSWORD_CHARS_MIN: usize = 10;
/// The longest password, in bytes.
pub const PASSWORD_BYTES_MAX: usize = 128;

/// Why a password could not be hashed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than [`PASSWORD_CHARS_MIN`] characters.
    #[error("the password is too short: use at least {min} characters")]
    TooShort {
        /// The minimum.
        min: usize,
    },
    /// More than [`PASSWORD_BYTES_MAX`] bytes.
    #[error("the password is too long: use at most {max} bytes")]
    TooLong {
        /// The maximum.
        max: usize,
    },
    /// The hash function failed.
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

impl PasswordError {
    /// `password_too_short`, `password_too_long` or `password_hash_failed`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "password_too_short",
            Self::TooLong { .. } => "password_too_long",
            Self::Hash(_) => "password_hash_failed",
        }
    }
}

/// Checks the length rules only.
pub fn check_length(password: &str) -> Result<(), PasswordError> {
    if password.len() > PASSWORD_BYTES_MAX {
        return Err(PasswordError::TooLong {
            max: PASSWORD_BYTES_MAX,
        });
    }
    if password.chars().count() < PASSWORD_CHARS_MIN {
        return Err(PasswordError::TooShort {
            min: PASSWORD_CHARS_MIN,
        });
    }
    Ok(())
}

/// The argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`) of a password,
/// with a random 16-byte salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    check_length(password)?;
    let salt = crate::tokens::random::<16>();
    hash_with_salt(password, &salt)
}

fn hash_with_salt(password: &str, salt: &[u8]) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), salt)
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hash(error.to_string()))
}

/// Whether `password` matches the PHC string `phc`; false for a malformed hash or
/// an over-long password. Never panics.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > PASSWORD_BYTES_MAX * 8 || phc.len() > 512 {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// Spends the time of a [`verify`] against a fixed hash and returns nothing: for an
/// unknown username, so that sign-in takes as long as for a known one.
pub fn dummy_verify(password: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    let dummy = DUMMY
        .get_or_init(|| hash_with_salt("corebank-dummy-password", b"corebank-dummy-salt").ok());
    if let Some(phc) = dummy {
        let _ = verify(password, phc);
    }
}
