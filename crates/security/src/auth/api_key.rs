//! API keys: made once, shown once, stored only as a hash.
//!
//! # Key format
//!
//! `cbk_<id>_<secret>`, 81 ASCII characters: `cbk_`, the key's public id (6
//! random bytes as 12 lower-case hex digits), `_`, and the secret (32 random
//! bytes from the operating system's generator as 64 lower-case hex digits).
//! The id is not secret: it names the key in listings, logs and revocations.
//!
//! # Key file format
//!
//! JSON, mode 0600, rewritten atomically (temporary file + rename):
//!
//! ```json
//! {
//!   "format": "corebank-api-keys/1",
//!   "keys": [
//!     {
//!       "id": "3f9a0c1b2d4e",
//!       "name": "teller-app",
//!       "scopes": ["read", "transfer"],
//!       "sha256": "<64 hex digits: SHA-256 of the whole key string>",
//!       "created_at": "2026-11-22T10:00:00Z",
//!       "revoked": false,
//!       "revoked_at": null
//!     }
//!   ]
//! }
//! ```
//!
//! Unknown fields are refused (a mistyped `"revokd": true` must not leave a key
//! active). The plaintext key is never stored. A plain SHA-256 (not a slow
//! password hash) is enough because the key has 256 random bits: there is
//! nothing to guess. Names need not be unique (two keys with one name is how a
//! key is rotated).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use aws_lc_rs::{constant_time, digest, rand};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{AuthError, AuthMethod, Identity, InvalidCredential, Scope, ScopeSet};
use crate::fsutil::{self, Access, ReadError};
use crate::names::{NameError, excerpt, validate_name};
use crate::secret::Secret;

/// Every API key starts with this.
pub const API_KEY_PREFIX: &str = "cbk_";
/// Random bytes in a key's public id (12 hex digits).
const ID_BYTES: usize = 6;
/// Random bytes in a key's secret (64 hex digits).
const SECRET_BYTES: usize = 32;
/// Length of a whole API key in bytes: `cbk_` + 12 + `_` + 64.
pub const API_KEY_BYTES: usize = API_KEY_PREFIX.len() + ID_BYTES * 2 + 1 + SECRET_BYTES * 2;
/// The `format` value of a key file.
pub const KEY_FILE_FORMAT: &str = "corebank-api-keys/1";
/// The most keys one file may hold (revoked ones included).
pub const KEYS_MAX: usize = 10_000;
/// The largest key file read, in bytes (10,000 keys take about 3 MiB).
pub const KEY_FILE_BYTES_MAX: usize = 8 << 20;
/// Attempts at drawing a fresh id before giving up (a collision among 2^48
/// ids is already unlikely once).
const ID_ATTEMPTS_MAX: usize = 16;

/// Why a key file could not be read, changed or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// The key file does not exist.
    #[error("the key file {} does not exist", .path.display())]
    NotFound {
        /// The path looked at.
        path: PathBuf,
    },
    /// The key file could not be read.
    #[error("cannot read the key file {}: {error}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// The key file is larger than [`KEY_FILE_BYTES_MAX`].
    #[error("the key file {} is {bytes} bytes, the limit is {KEY_FILE_BYTES_MAX}", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// The key file is not a JSON document of the expected shape.
    #[error("the key file is malformed: {detail}")]
    Malformed {
        /// What the parser found wrong.
        detail: String,
    },
    /// One key in the file breaks a rule.
    #[error("key number {position} in the key file is invalid: {reason}")]
    InvalidRecord {
        /// 1-based position of the key in the file.
        position: usize,
        /// The rule broken.
        reason: String,
    },
    /// Two keys in the file share an id.
    #[error("the key file holds key id {id} more than once")]
    DuplicateId {
        /// The repeated id.
        id: String,
    },
    /// The file already holds [`KEYS_MAX`] keys.
    #[error("the key file holds {KEYS_MAX} keys, the limit: delete revoked keys first")]
    TooManyKeys,
    /// A key name is invalid.
    #[error("invalid key name: {0}")]
    InvalidName(NameError),
    /// A key was requested with no scope.
    #[error("a key needs at least one scope (read, transfer, admin)")]
    NoScopes,
    /// No key has this id.
    #[error("no key has id {id:?}")]
    UnknownKeyId {
        /// The id given (at most 32 characters of it).
        id: String,
    },
    /// The operating system's random generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
    /// The key file could not be written.
    #[error("cannot write the key file {}: {error}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// `reload` on a store that was not loaded from a file.
    #[error("this key store was not loaded from a file, so it cannot be reloaded")]
    NotFileBacked,
}

impl KeyStoreError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "key_file_not_found",
            Self::Read { .. } => "key_file_read_failed",
            Self::TooLarge { .. } => "key_file_too_large",
            Self::Malformed { .. } => "key_file_malformed",
            Self::InvalidRecord { .. } => "invalid_key_record",
            Self::DuplicateId { .. } => "duplicate_key_id",
            Self::TooManyKeys => "too_many_keys",
            Self::InvalidName(_) => "invalid_key_name",
            Self::NoScopes => "no_scopes",
            Self::UnknownKeyId { .. } => "unknown_key_id",
            Self::Random => "random_failed",
            Self::Write { .. } => "key_file_write_failed",
            Self::NotFileBacked => "not_file_backed",
        }
    }
}

/// One key as stored: everything but the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    id: String,
    name: String,
    scopes: ScopeSet,
    sha256: [u8; 32],
    created_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
    revoked: bool,
}

impl ApiKeyRecord {
    /// The public id (12 lower-case hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The name given at creation.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scopes granted.
    pub fn scopes(&self) -> ScopeSet {
        self.scopes
    }

    /// When the key was made (UTC, whole seconds).
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// When the key was made, as RFC 3339 (`2026-11-22T10:00:00Z`).
    pub fn created_at_rfc3339(&self) -> String {
        rfc3339(self.created_at)
    }

    /// Whether the key has been revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked
    }

    /// When the key was revoked, if it was and the time is known.
    pub fn revoked_at(&self) -> Option<OffsetDateTime> {
        self.revoked_at
    }

    /// When the key was revoked, as RFC 3339.
    pub fn revoked_at_rfc3339(&self) -> Option<String> {
        self.revoked_at.map(rfc3339)
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| format!("@{}", at.unix_timestamp()))
}

fn now_seconds() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// A key just made: its record, and the key itself, which exists nowhere else
/// and must be handed to its user now.
#[derive(Debug)]
pub struct NewApiKey {
    /// What the key file keeps about it.
    pub record: ApiKeyRecord,
    /// The key, `cbk_<id>_<secret>`.
    pub key: Secret<String>,
}

/// The contents of a key file, for the commands that change it (`corebank
/// keys create|list|revoke`). Servers verify keys with [`ApiKeyStore`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiKeyFile {
    keys: Vec<ApiKeyRecord>,
}

mod document {
    //! The JSON shape of a key file.
    use super::{OffsetDateTime, Scope};

    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct File {
        pub format: String,
        pub keys: Vec<Record>,
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Record {
        pub id: String,
        pub name: String,
        pub scopes: Vec<Scope>,
        pub sha256: String,
        #[serde(with = "time::serde::rfc3339")]
        pub created_at: OffsetDateTime,
        pub revoked: bool,
        #[serde(with = "time::serde::rfc3339::option", default)]
        pub revoked_at: Option<OffsetDateTime>,
    }
}

impl ApiKeyFile {
    /// An empty key file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and checks a key file.
    pub fn load(path: &Path) -> Result<Self, KeyStoreError> {
        let bytes =
            fsutil::read_bounded(path, KEY_FILE_BYTES_MAX).map_err(|error| match error {
                ReadError::NotFound => KeyStoreError::NotFound {
                    path: path.to_owned(),
                },
                ReadError::TooLarge { bytes } => KeyStoreError::TooLarge {
                    path: path.to_owned(),
                    bytes,
                },
                ReadError::Io(error) => KeyStoreError::Read {
                    path: path.to_owned(),
                    error,
                },
            })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| KeyStoreError::Malformed {
            detail: "the file is not UTF-8 text".into(),
        })?;
        Self::from_json(text)
    }

    /// Like [`load`](Self::load), but a missing file is an empty key file.
    pub fn load_or_new(path: &Path) -> Result<Self, KeyStoreError> {
        match Self::load(path) {
            Err(KeyStoreError::NotFound { .. }) => Ok(Self::new()),
            other => other,
        }
    }

    /// Parses and checks the JSON text of a key file.
    pub fn from_json(text: &str) -> Result<Self, KeyStoreError> {
        if text.len() > KEY_FILE_BYTES_MAX {
            return Err(KeyStoreError::Malformed {
                detail: format!("the text is longer than {KEY_FILE_BYTES_MAX} bytes"),
            });
        }
        let document: document::File =
            serde_json::from_str(text).map_err(|error| KeyStoreError::Malformed {
                detail: error.to_string(),
            })?;
        if document.format != KEY_FILE_FORMAT {
            return Err(KeyStoreError::Malformed {
                detail: format!(
                    "the format is {:?}, expected {KEY_FILE_FORMAT:?}",
                    excerpt(&document.format, 64)
                ),
            });
        }
        if document.keys.len() > KEYS_MAX {
            return Err(KeyStoreError::TooManyKeys);
        }
        let mut keys = Vec::with_capacity(document.keys.len());
        let mut ids = std::collections::HashSet::with_capacity(document.keys.len());
        for (index, record) in document.keys.into_iter().enumerate() {
            let invalid = |reason: String| KeyStoreError::InvalidRecord {
                position: index.saturating_add(1),
                reason,
            };
            if record.id.len() != ID_BYTES * 2 || !fsutil::is_lower_hex(&record.id) {
                return Err(invalid(format!(
                    "id {:?} is not {} lower-case hex digits",
                    excerpt(&record.id, 32),
                    ID_BYTES * 2
                )));
            }
            validate_name(&record.name).map_err(|error| invalid(format!("name: {error}")))?;
            let scopes: ScopeSet = record.scopes.iter().copied().collect();
            if scopes.is_empty() {
                return Err(invalid("the key has no scope".into()));
            }
            let sha256 = fsutil::unhex::<32>(&record.sha256)
                .ok_or_else(|| invalid("sha256 is not 64 lower-case hex digits".into()))?;
            if record.revoked_at.is_some() && !record.revoked {
                return Err(invalid("revoked_at is set but revoked is false".into()));
            }
            if !ids.insert(record.id.clone()) {
                return Err(KeyStoreError::DuplicateId { id: record.id });
            }
            keys.push(ApiKeyRecord {
                id: record.id,
                name: record.name,
                scopes,
                sha256,
                created_at: record.created_at,
                revoked_at: record.revoked_at,
                revoked: record.revoked,
            });
        }
        Ok(Self { keys })
    }

    /// The JSON text of this key file (pretty-printed, ending in a newline).
    pub fn to_json(&self) -> String {
        let document = document::File {
            format: KEY_FILE_FORMAT.into(),
            keys: self
                .keys
                .iter()
                .map(|key| document::Record {
                    id: key.id.clone(),
                    name: key.name.clone(),
                    scopes: key.scopes.iter().collect(),
                    sha256: fsutil::hex(&key.sha256),
                    created_at: key.created_at,
                    revoked: key.revoked,
                    revoked_at: key.revoked_at,
                })
                .collect(),
        };
        // Serialising plain structs of strings, booleans and well-formed dates
        // into a String cannot fail; fall back to an empty document rather than
        // panic if it ever did.
        let mut text = serde_json::to_string_pretty(&document)
            .unwrap_or_else(|_| format!("{{\"format\":\"{KEY_FILE_FORMAT}\",\"keys\":[]}}"));
        text.push('\n');
        text
    }

    /// Writes the key file atomically (temporary file and rename), mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), KeyStoreError> {
        fsutil::write_file(path, self.to_json().as_bytes(), Access::Private, true).map_err(
            |error| KeyStoreError::Write {
                path: path.to_owned(),
                error,
            },
        )
    }

    /// The keys, in the order they were made.
    pub fn records(&self) -> &[ApiKeyRecord] {
        &self.keys
    }

    /// Makes a new key named `name` with `scopes`, adds its record, and returns
    /// the key. Call [`save`](Self::save) afterwards.
    pub fn create(&mut self, name: &str, scopes: ScopeSet) -> Result<NewApiKey, KeyStoreError> {
        validate_name(name).map_err(KeyStoreError::InvalidName)?;
        if scopes.is_empty() {
            return Err(KeyStoreError::NoScopes);
        }
        if self.keys.len() >= KEYS_MAX {
            return Err(KeyStoreError::TooManyKeys);
        }
        let id = (0..ID_ATTEMPTS_MAX)
            .map(|_| random_hex::<ID_BYTES>())
            .find(|id| match id {
                Ok(id) => self.keys.iter().all(|key| key.id != *id),
                Err(_) => true,
            })
            .ok_or(KeyStoreError::Random)??;
        let secret = Secret::new(random_hex::<SECRET_BYTES>()?);
        let key = Secret::new(format!("{API_KEY_PREFIX}{id}_{}", secret.expose()));
        let record = ApiKeyRecord {
            id,
            name: name.to_owned(),
            scopes,
            sha256: sha256(key.expose().as_bytes()),
            created_at: now_seconds(),
            revoked_at: None,
            revoked: false,
        };
        self.keys.push(record.clone());
        Ok(NewApiKey { record, key })
    }

    /// Revokes the key with public id `id`. Returns `false` if it was already
    /// revoked (nothing changes then). Call [`save`](Self::save) afterwards.
    pub fn revoke(&mut self, id: &str) -> Result<bool, KeyStoreError> {
        let key = self
            .keys
            .iter_mut()
            .find(|key| key.id == id)
            .ok_or_else(|| KeyStoreError::UnknownKeyId {
                id: excerpt(id, 32),
            })?;
        if key.revoked {
            return Ok(false);
        }
        key.revoked = true;
        key.revoked_at = Some(now_seconds());
        Ok(true)
    }

    /// The record of the key with public id `id`.
    pub fn get(&self, id: &str) -> Option<&ApiKeyRecord> {
        self.keys.iter().find(|key| key.id == id)
    }
}

fn random_hex<const N: usize>() -> Result<String, KeyStoreError> {
    let mut bytes = [0u8; N];
    rand::fill(&mut bytes).map_err(|_| KeyStoreError::Random)?;
    Ok(fsutil::hex(&bytes))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The public id of a well-shaped key `cbk_<12 hex>_<64 hex>`.
fn key_id(key: &str) -> Option<&str> {
    if key.len() != API_KEY_BYTES {
        return None;
    }
    let rest = key.strip_prefix(API_KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let well_shaped = id.len() == ID_BYTES * 2
        && secret.len() == SECRET_BYTES * 2
        && fsutil::is_lower_hex(id)
        && fsutil::is_lower_hex(secret);
    well_shaped.then_some(id)
}

/// What verification needs to know about one key.
struct IndexedKey {
    name: String,
    scopes: ScopeSet,
    sha256: [u8; 32],
    revoked: bool,
}

fn index(file: &ApiKeyFile) -> HashMap<String, IndexedKey> {
    file.keys
        .iter()
        .map(|key| {
            let indexed = IndexedKey {
                name: key.name.clone(),
                scopes: key.scopes,
                sha256: key.sha256,
                revoked: key.revoked,
            };
            (key.id.clone(), indexed)
        })
        .collect()
}

/// The API keys a server accepts: loaded at start, replaced by
/// [`reload`](Self::reload), shared between threads (`&self` everywhere).
pub struct ApiKeyStore {
    path: Option<PathBuf>,
    keys: RwLock<HashMap<String, IndexedKey>>,
}

impl std::fmt::Debug for ApiKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyStore")
            .field("path", &self.path)
            .field("keys", &self.len())
            .finish()
    }
}

impl ApiKeyStore {
    /// Loads the key file at `path`; [`reload`](Self::reload) reads it again.
    pub fn load(path: &Path) -> Result<Self, KeyStoreError> {
        let file = ApiKeyFile::load(path)?;
        Ok(Self {
            path: Some(path.to_owned()),
            keys: RwLock::new(index(&file)),
        })
    }

    /// A store holding the keys of `file`, not tied to any path.
    pub fn from_file(file: &ApiKeyFile) -> Self {
        Self {
            path: None,
            keys: RwLock::new(index(file)),
        }
    }

    /// Reads the key file again and, if it is valid, replaces the keys in one
    /// step (calls in flight see the old or the new set, never a mix). If it is
    /// not valid, the keys in use stay as they were and the error says why.
    /// Returns the number of keys now loaded.
    pub fn reload(&self) -> Result<usize, KeyStoreError> {
        let path = self.path.as_deref().ok_or(KeyStoreError::NotFileBacked)?;
        let fresh = index(&ApiKeyFile::load(path)?);
        let count = fresh.len();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(count)
    }

    /// The file this store was loaded from.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Number of keys loaded (revoked ones included).
    pub fn len(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no key is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks an API key: its shape, then its id, then its hash (compared in
    /// constant time), then whether it was revoked. An unknown id and a wrong
    /// secret give the same error; `revoked` is only said to a caller who
    /// knows the whole key.
    pub fn verify(&self, key: &str) -> Result<Identity, AuthError> {
        let id = key_id(key).ok_or(AuthError::invalid(InvalidCredential::MalformedApiKey))?;
        let unknown = AuthError::invalid(InvalidCredential::UnknownApiKey);
        let presented = sha256(key.as_bytes());
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let stored = keys.get(id).ok_or_else(|| unknown.clone())?;
        constant_time::verify_slices_are_equal(&presented, &stored.sha256).map_err(|_| unknown)?;
        if stored.revoked {
            return Err(AuthError::Revoked {
                key_id: id.to_owned(),
            });
        }
        Ok(Identity {
            name: stored.name.clone(),
            scopes: stored.scopes,
            method: AuthMethod::ApiKey,
            credential_id: id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Authenticator;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn scopes(text: &str) -> ScopeSet {
        ScopeSet::parse_list(text).unwrap_or_default()
    }

    fn bearer(key: &NewApiKey) -> String {
        format!("Bearer {}", key.key.expose())
    }

    #[test]
    fn create_then_authenticate_with_the_right_scopes() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("keys.json");
        let mut file = ApiKeyFile::load_or_new(&path)?;
        let teller = file.create("teller-app", scopes("read,transfer"))?;
        let auditor = file.create("auditor", scopes("read"))?;
        file.save(&path)?;

        let key = teller.key.expose();
        assert_eq!(key.len(), API_KEY_BYTES);
        assert!(key.starts_with(&format!("cbk_{}_", teller.record.id())));
        assert_ne!(teller.record.id(), auditor.record.id());

        let authenticator = Authenticator::new(Some(ApiKeyStore::load(&path)?));
        let identity = authenticator.authenticate(Some(&bearer(&teller)), None)?;
        assert_eq!(identity.name, "teller-app");
        assert_eq!(identity.method, AuthMethod::ApiKey);
        assert_eq!(identity.credential_id, teller.record.id());
        assert_eq!(identity.require(Scope::Transfer), Ok(()));
        let denied = identity.require(Scope::Admin);
        assert!(matches!(&denied, Err(error) if error.code() == "permission_denied"));

        let auditor_identity = authenticator.authenticate(Some(&bearer(&auditor)), None)?;
        assert_eq!(auditor_identity.require(Scope::Read), Ok(()));
        assert!(matches!(
            auditor_identity.require(Scope::Transfer),
            Err(AuthError::PermissionDenied {
                needed: Scope::Transfer,
                ..
            })
        ));
        Ok(())
    }

    #[test]
    fn the_file_never_holds_the_key() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("keys.json");
        let mut file = ApiKeyFile::new();
        let new = file.create("teller-app", scopes("transfer"))?;
        file.save(&path)?;
        let text = std::fs::read_to_string(&path)?;
        let key = new.key.expose();
        let secret = key.rsplit('_').next().unwrap_or(key);
        assert!(!text.contains(key.as_str()));
        assert!(!text.contains(secret));
        assert!(text.contains(&fsutil::hex(&sha256(key.as_bytes()))));
        assert!(text.contains(KEY_FILE_FORMAT));
        assert!(!format!("{new:?}").contains(secret), "Debug leaks the key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path)?.permissions().mode() & 0o777,
                0o600
            );
        }
        // The file reads back to the same records.
        assert_eq!(ApiKeyFile::load(&path)?, file);
        Ok(())
    }

    #[test]
    fn wrong_secret_unknown_id_and_malformed_keys_are_invalid() -> TestResult {
        let mut file = ApiKeyFile::new();
        let new = file.create("teller-app", scopes("transfer"))?;
        let authenticator = Authenticator::new(Some(ApiKeyStore::from_file(&file)));
        let key = new.key.expose().clone();

        let invalid = |reason| Err(AuthError::InvalidCredential { reason });
        let unknown = invalid(InvalidCredential::UnknownApiKey);
        let malformed = invalid(InvalidCredential::MalformedApiKey);

        // Wrong secret: flip the last hex digit.
        let mut wrong = key.clone();
        let last = if wrong.ends_with('0') { "1" } else { "0" };
        wrong.replace_range(API_KEY_BYTES - 1.., last);
        assert_eq!(
            authenticator.authenticate(Some(&format!("Bearer {wrong}")), None),
            unknown
        );

        // Unknown id, valid shape.
        let other_id = if new.record.id() == "000000000000" {
            "111111111111"
        } else {
            "000000000000"
        };
        let unknown_id = key.replacen(new.record.id(), other_id, 1);
        assert_eq!(
            authenticator.authenticate(Some(&format!("Bearer {unknown_id}")), None),
            unknown
        );

        // Malformed keys and headers, oversized input: refused, no panic.
        for token in [
            "cbk_",
            "cbk__",
            "nope",
            &key.to_uppercase(),
            &key[..API_KEY_BYTES - 1],
            &format!("{key}0"),
            &key.replacen("cbk_", "cbx_", 1),
            &format!("cbk_{}", "_".repeat(API_KEY_BYTES - 4)),
            &"é".repeat(40),
        ] {
            assert_eq!(
                authenticator.authenticate(Some(&format!("Bearer {token}")), None),
                malformed,
                "{token:?}"
            );
        }
        let huge = format!("Bearer {}", "a".repeat(1 << 20));
        assert_eq!(
            authenticator.authenticate(Some(&huge), None),
            invalid(InvalidCredential::HeaderTooLong)
        );
        assert_eq!(
            authenticator.authenticate(Some(&key), None),
            invalid(InvalidCredential::MalformedHeader)
        );
        assert_eq!(
            authenticator.authenticate(None, None).map_err(|e| e.code()),
            Err("unauthenticated")
        );
        Ok(())
    }

    #[test]
    fn revoked_keys_are_refused_after_reload() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("keys.json");
        let mut file = ApiKeyFile::new();
        let new = file.create("teller-app", scopes("admin"))?;
        file.save(&path)?;
        let store = ApiKeyStore::load(&path)?;
        assert!(
            store
                .verify(new.key.expose())?
                .require(Scope::Admin)
                .is_ok()
        );

        let mut file = ApiKeyFile::load(&path)?;
        assert!(file.revoke(new.record.id())?);
        assert!(!file.revoke(new.record.id())?);
        assert!(matches!(
            file.revoke("nope"),
            Err(KeyStoreError::UnknownKeyId { .. })
        ));
        file.save(&path)?;
        // Still accepted until the server reloads.
        assert!(store.verify(new.key.expose()).is_ok());
        assert_eq!(store.reload()?, 1);
        let refused = store.verify(new.key.expose());
        assert_eq!(
            refused,
            Err(AuthError::Revoked {
                key_id: new.record.id().to_owned()
            })
        );
        assert!(matches!(&refused, Err(error) if error.code() == "revoked"));

        // A broken file on reload keeps the keys in use.
        std::fs::write(&path, "{ not json")?;
        let error = store.reload().err();
        assert_eq!(error.map(|e| e.code()), Some("key_file_malformed"));
        assert_eq!(store.len(), 1);
        Ok(())
    }

    #[test]
    fn create_checks_its_inputs() {
        let mut file = ApiKeyFile::new();
        assert!(matches!(
            file.create("bad name", scopes("read")),
            Err(KeyStoreError::InvalidName(NameError::BadCharacter))
        ));
        assert!(matches!(
            file.create(&"n".repeat(300), scopes("read")),
            Err(KeyStoreError::InvalidName(NameError::TooLong {
                bytes: 300
            }))
        ));
        assert!(matches!(
            file.create("ok", ScopeSet::EMPTY),
            Err(KeyStoreError::NoScopes)
        ));
        assert!(file.records().is_empty());
    }

    #[test]
    fn load_refuses_bad_files() -> TestResult {
        let dir = tempfile::tempdir()?;
        let absent = dir.path().join("absent.json");
        assert_eq!(
            ApiKeyStore::load(&absent).err().map(|e| e.code()),
            Some("key_file_not_found")
        );
        assert_eq!(ApiKeyFile::load_or_new(&absent)?, ApiKeyFile::new());

        let one = |extra: &str| {
            format!(
                r#"{{"id":"0123456789ab","name":"a","scopes":["read"],"sha256":"{}",
                "created_at":"2026-11-22T10:00:00Z","revoked":false{extra}}}"#,
                "0".repeat(64)
            )
        };
        let file = |records: &[String]| {
            format!(
                r#"{{"format":"{KEY_FILE_FORMAT}","keys":[{}]}}"#,
                records.join(",")
            )
        };
        let record = |extra: &str| file(&[one(extra)]);
        assert_eq!(ApiKeyFile::from_json(&record(""))?.records().len(), 1);
        let code = |text: &str| ApiKeyFile::from_json(text).err().map(|e| e.code());
        assert_eq!(
            code(&record(r#","revokd":true"#)),
            Some("key_file_malformed")
        );
        let revoked_at = r#","revoked_at":"2026-11-23T00:00:00Z""#;
        assert_eq!(code(&record(revoked_at)), Some("invalid_key_record"));
        let revoked = record(revoked_at).replace(r#""revoked":false"#, r#""revoked":true"#);
        assert!(ApiKeyFile::from_json(&revoked)?.records()[0].is_revoked());
        let upper_id = record("").replace("0123456789ab", "0123456789AB");
        assert_eq!(code(&upper_id), Some("invalid_key_record"));
        let bad_scope = record("").replace(r#""read""#, r#""root""#);
        assert_eq!(code(&bad_scope), Some("key_file_malformed"));
        assert_eq!(
            code(&record("").replace(r#"["read"]"#, "[]")),
            Some("invalid_key_record")
        );
        assert_eq!(
            code(&record("").replace(r#""a""#, r#""a b""#)),
            Some("invalid_key_record")
        );
        let short_hash = record("").replace(&"0".repeat(64), "00");
        assert_eq!(code(&short_hash), Some("invalid_key_record"));
        let other_format = record("").replace("corebank-api-keys/1", "x");
        assert_eq!(code(&other_format), Some("key_file_malformed"));
        assert_eq!(code("[]"), Some("key_file_malformed"));
        assert_eq!(code(&file(&[one(""), one("")])), Some("duplicate_key_id"));

        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; KEY_FILE_BYTES_MAX + 1])?;
        assert_eq!(
            ApiKeyFile::load(&big).err().map(|e| e.code()),
            Some("key_file_too_large")
        );
        Ok(())
    }
}
