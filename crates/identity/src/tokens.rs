//! Refresh tokens, API keys, recovery codes: their encodings, random generation and
//! hashes (SHA-256). Only hashes are stored in the identity state.
//!
//! | secret | format |
//! |---|---|
//! | refresh token | `cbrt_` + base64url (no padding) of family (16 bytes) ‖ generation (u32 BE) ‖ secret (32 bytes) |
//! | API key | `cbk_<id>_<secret>`: id 12 lowercase hex digits, secret 64 lowercase hex digits |
//! | recovery code | `abcd-efgh-ijkl`: 12 base32 characters (60 bits), lowercase |

use aws_lc_rs::{constant_time, digest, rand};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::model::SessionFamily;

/// The prefix of refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "cbrt_";
/// The prefix of API keys.
pub const API_KEY_PREFIX: &str = "cbk_";
/// The length of an API key id (hex digits).
pub const API_KEY_ID_HEX: usize = 12;
/// The length of an API key secret (hex digits).
pub const API_KEY_SECRET_HEX: usize = 64;

const REFRESH_BYTES: usize = 16 + 4 + 32;

/// Why a token could not be read (or made).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of this kind: wrong prefix, length or characters.
    #[error("the token is malformed")]
    Malformed,
    /// The system's random generator failed.
    #[error("the system random generator failed")]
    Random,
}

/// `N` random bytes from the operating system's generator. The generator of
/// AWS-LC does not fail in practice; if it ever did, the process aborts rather than
/// hand out a predictable secret.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if rand::fill(&mut bytes).is_err() {
        std::process::abort();
    }
    bytes
}

/// SHA-256.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// A new random session family.
pub fn new_family() -> SessionFamily {
    random()
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// A refresh token: its session (family), its generation and a random secret.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// The session.
    pub family: SessionFamily,
    /// How many rotations came before it (0 for the first token of a session).
    pub generation: u32,
    /// Random.
    pub secret: [u8; 32],
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshToken")
            .field("family", &hex(&self.family))
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl RefreshToken {
    /// A token of `family` and `generation` with a fresh random secret.
    pub fn new(family: SessionFamily, generation: u32) -> Self {
        Self {
            family,
            generation,
            secret: random(),
        }
    }

    /// The first token of a new session (random family, generation 0).
    pub fn new_session() -> Self {
        Self::new(new_family(), 0)
    }

    /// `cbrt_` + base64url without padding (75 characters).
    pub fn encode(&self) -> String {
        let mut bytes = [0u8; REFRESH_BYTES];
        bytes[..16].copy_from_slice(&self.family);
        bytes[16..20].copy_from_slice(&self.generation.to_be_bytes());
        bytes[20..].copy_from_slice(&self.secret);
        format!("{REFRESH_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Reads an encoded token.
    pub fn decode(text: &str) -> Result<Self, TokenError> {
        let body = text
            .strip_prefix(REFRESH_TOKEN_PREFIX)
            .ok_or(TokenError::Malformed)?;
        if body.len() > 80 {
            return Err(TokenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Malformed)?;
        let bytes: [u8; REFRESH_BYTES] = bytes.try_into().map_err(|_| TokenError::Malformed)?;
        let mut family = [0u8; 16];
        family.copy_from_slice(&bytes[..16]);
        let mut generation = [0u8; 4];
        generation.copy_from_slice(&bytes[16..20]);
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&bytes[20..]);
        let token = Self {
            family,
            generation: u32::from_be_bytes(generation),
            secret,
        };
        // One spelling per token (no alternative trailing bits).
        if token.encode() != text {
            return Err(TokenError::Malformed);
        }
        Ok(token)
    }

    /// SHA-256 of the encoded token: what the session stores.
    pub fn hash(&self) -> [u8; 32] {
        sha256(self.encode().as_bytes())
    }
}

/// Makes API keys.
#[derive(Clone, Copy, Debug)]
pub struct ApiKeySecret;

impl ApiKeySecret {
    /// A new key: `(id, full key "cbk_<id>_<secret>", SHA-256 of the secret)`. Show
    /// the full key once; store the id and the hash.
    pub fn generate() -> (String, String, [u8; 32]) {
        let id = hex(&random::<6>());
        let secret = hex(&random::<32>());
        let key = format!("{API_KEY_PREFIX}{id}_{secret}");
        let hash = hash_api_secret(&secret);
        (id, key, hash)
    }
}

/// [`ApiKeySecret::generate`], as a fallible call.
pub fn generate_api_key() -> Result<(String, String, [u8; 32]), TokenError> {
    Ok(ApiKeySecret::generate())
}

/// Splits `cbk_<id>_<secret>` into id and secret; `None` when malformed.
pub fn parse_api_key(key: &str) -> Option<(String, String)> {
    let rest = key.trim().strip_prefix(API_KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let lower_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    (lower_hex(id, API_KEY_ID_HEX) && lower_hex(secret, API_KEY_SECRET_HEX))
        .then(|| (id.to_owned(), secret.to_owned()))
}

/// SHA-256 of an API key's secret part.
pub fn hash_api_secret(secret: &str) -> [u8; 32] {
    sha256(secret.as_bytes())
}

const BASE32_LOWER: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// `n` new recovery codes (at most 100), `xxxx-xxxx-xxxx` of lowercase base32: 60
/// random bits each.
pub fn new_recovery_codes(n: usize) -> Vec<String> {
    (0..n.min(crate::model::RECOVERY_CODES_MAX))
        .map(|_| {
            let bytes = random::<12>();
            let mut code = String::with_capacity(14);
            for (index, byte) in bytes.iter().enumerate() {
                if index > 0 && index % 4 == 0 {
                    code.push('-');
                }
                code.push(char::from(BASE32_LOWER[usize::from(byte & 31)]));
            }
            code
        })
        .collect()
}

/// SHA-256 of a recovery code after normalising it (lowercase, without spaces or
/// dashes), so that `ABCD EFGH IJKL` matches `abcd-efgh-ijkl`.
pub fn hash_recovery_code(code: &str) -> [u8; 32] {
    let normal: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    sha256(normal.as_bytes())
}
