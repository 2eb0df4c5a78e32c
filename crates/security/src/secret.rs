//! [`Secret<T>`]: a value that must never be printed.

use std::fmt;

/// What `Debug` and `Display` print for any [`Secret`].
pub const REDACTED: &str = "[redacted]";

/// A secret value (an API key, a private key in PEM, a password).
///
/// `Debug` and `Display` print `[redacted]` whatever the content, so a secret
/// that ends up in a log line, an error message or a `dbg!` shows nothing. The
/// value is reachable only through [`expose`](Self::expose) or
/// [`into_inner`](Self::into_inner), which makes every use visible in review.
///
/// `Secret` deliberately implements neither `PartialEq` (comparisons of secrets
/// must be constant-time) nor `serde::Serialize` (secrets are written out only on
/// purpose, through `expose`).
#[derive(Clone, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret value itself. Never log or format what this returns.
    pub const fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the secret value. Never log or format what this returns.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_print_nothing_of_the_value() {
        let secret = Secret::new(String::from("cbk_0123456789ab_hunter2"));
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{secret:#?}"), "[redacted]");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Config {
            key: Secret<String>,
        }
        let config = Config {
            key: secret.clone(),
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(secret.expose(), "cbk_0123456789ab_hunter2");
        assert_eq!(secret.into_inner(), "cbk_0123456789ab_hunter2");
    }
}
