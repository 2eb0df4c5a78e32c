//! Names of API keys and clients: short, printable, and safe in a file name.

/// The longest name accepted for an API key or a client certificate, in bytes.
pub const NAME_BYTES_MAX: usize = 64;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("the name is empty")]
    Empty,
    /// The name is longer than [`NAME_BYTES_MAX`].
    #[error("the name is {bytes} bytes long, the limit is {NAME_BYTES_MAX}")]
    TooLong {
        /// Length of the name given.
        bytes: usize,
    },
    /// The name contains something other than `A-Z a-z 0-9 . _ -`, or starts
    /// with `.` or `-`.
    #[error(
        "the name may contain only letters A-Z and a-z, digits, '.', '_' and '-', \
         and may not start with '.' or '-'"
    )]
    BadCharacter,
}

impl NameError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "name_empty",
            Self::TooLong { .. } => "name_too_long",
            Self::BadCharacter => "name_bad_character",
        }
    }
}

/// Checks the name of an API key or a client certificate: 1 to
/// [`NAME_BYTES_MAX`] bytes of `A-Z a-z 0-9 . _ -`, not starting with `.` or
/// `-`. Such a name can be printed, logged and used in a file name
/// (`client-NAME.pem`) as it is.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > NAME_BYTES_MAX {
        return Err(NameError::TooLong { bytes: name.len() });
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if name.starts_with(['.', '-']) || !name.bytes().all(allowed) {
        return Err(NameError::BadCharacter);
    }
    Ok(())
}

/// The first `chars_max` characters of untrusted text, for an error message.
pub(crate) fn excerpt(text: &str, chars_max: usize) -> String {
    let mut out: String = text.chars().take(chars_max).collect();
    if text.chars().nth(chars_max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate_name("teller-app_2.prod"), Ok(()));
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(validate_name(&"a".repeat(64)), Ok(()));
        assert_eq!(
            validate_name(&"a".repeat(65)),
            Err(NameError::TooLong { bytes: 65 })
        );
        for bad in ["../etc", "-x", ".hidden", "a b", "a/b", "é", "a:b", "a\n"] {
            assert_eq!(validate_name(bad), Err(NameError::BadCharacter), "{bad:?}");
        }
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("abc", 3), "abc");
    }
}
