//! Access and second-factor tokens: JWTs signed with HS256 by the gateway's key.
//! Refresh tokens are not JWTs: they are opaque, rotate, and live (hashed) in the
//! registry's replicated state (`corebank-identity`).

use std::io::Write as _;
use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub const ISSUER: &str = "corebank-gateway";
const KEY_BYTES: usize = 32;

/// What an access token says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    /// The user id.
    pub sub: String,
    pub role: String,
    /// The session (refresh-token family), hex.
    pub sid: String,
    /// Whether the second factor was given in this session.
    pub mfa: bool,
    /// `access` or `mfa` (the token between password and second factor).
    pub typ: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token has expired; sign in again or refresh it")]
    Expired,
    #[error("the token is not valid")]
    Invalid,
    #[error("this token cannot be used here")]
    WrongType,
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Expired => "token_expired",
            Self::Invalid => "token_invalid",
            Self::WrongType => "token_wrong_type",
        }
    }
}

/// A problem with the signing key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read or create the JWT key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the JWT key file {path} must hold at least {KEY_BYTES} bytes of hex")]
    Short { path: String },
    #[error("the system random generator failed")]
    Random,
}

/// The signing key.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys([redacted])")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

/// `n` random bytes from the system generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], KeyFileError> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| KeyFileError::Random)?;
    Ok(bytes)
}

/// Random hex, for token ids.
pub fn random_hex<const N: usize>() -> String {
    random_bytes::<N>().map(|b| hex(&b)).unwrap_or_default()
}

impl TokenKeys {
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Reads the key file, or makes one (owner-only permissions) when missing.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyFileError> {
        let io = |source| KeyFileError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let secret =
                    unhex(&text)
                        .filter(|s| s.len() >= KEY_BYTES)
                        .ok_or(KeyFileError::Short {
                            path: path.display().to_string(),
                        })?;
                Ok(Self::from_secret(&secret))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                let secret = random_bytes::<KEY_BYTES>()?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(path).map_err(io)?;
                file.write_all(hex(&secret).as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok(Self::from_secret(&secret))
            }
            Err(error) => Err(io(error)),
        }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .unwrap_or_default()
    }

    /// Checks signature, issuer, expiry and type.
    pub fn verify(&self, token: &str, typ: &str) -> Result<Claims, TokenError> {
        if token.len() > 4096 {
            return Err(TokenError::Invalid);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        if data.claims.typ != typ {
            return Err(TokenError::WrongType);
        }
        Ok(data.claims)
    }
}

pub fn family_hex(family: &[u8; 16]) -> String {
    hex(family)
}

pub fn family_from_hex(text: &str) -> Option<[u8; 16]> {
    unhex(text).and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn claims(exp: u64, typ: &str) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "7".into(),
            role: "customer".into(),
            sid: "00".repeat(16),
            mfa: true,
            typ: typ.into(),
            iat: 1,
            exp,
            jti: random_hex::<8>(),
        }
    }

    #[test]
    fn tokens_are_checked_for_signature_expiry_and_type() {
        let keys = TokenKeys::from_secret(&[7; 32]);
        let far = crate::hub::now_ns() / 1_000_000_000 + 600;
        let token = keys.sign(&claims(far, "access"));
        assert_eq!(keys.verify(&token, "access").unwrap().sub, "7");
        assert_eq!(keys.verify(&token, "mfa"), Err(TokenError::WrongType));
        let expired = keys.sign(&claims(10, "access"));
        assert_eq!(keys.verify(&expired, "access"), Err(TokenError::Expired));
        let other = TokenKeys::from_secret(&[8; 32]);
        assert_eq!(other.verify(&token, "access"), Err(TokenError::Invalid));
        let mut tampered = token.clone();
        tampered.push('x');
        assert_eq!(keys.verify(&tampered, "access"), Err(TokenError::Invalid));
        assert_eq!(keys.verify("", "access"), Err(TokenError::Invalid));
    }

    #[test]
    fn the_key_file_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.key");
        let first = TokenKeys::load_or_create(&path).unwrap();
        let far = crate::hub::now_ns() / 1_000_000_000 + 600;
        let token = first.sign(&claims(far, "access"));
        let second = TokenKeys::load_or_create(&path).unwrap();
        assert!(second.verify(&token, "access").is_ok());
        std::fs::write(&path, "abcd").unwrap();
        assert!(matches!(
            TokenKeys::load_or_create(&path),
            Err(KeyFileError::Short { .. })
        ));
        assert_eq!(family_from_hex(&family_hex(&[9; 16])), Some([9; 16]));
    }
}
