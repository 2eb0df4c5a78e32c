//! Scopes: what a caller may do.
//!
//! Three scopes, each including the ones before it: `read` ⊆ `transfer` ⊆
//! `admin`. A call names the one scope it needs; a caller holding that scope or
//! a larger one may make it. Granted scopes are kept as given (a key made with
//! `admin` lists `admin`, not all three), and the inclusion is applied when a
//! scope is checked ([`ScopeSet::allows`]).

use std::fmt;
use std::str::FromStr;

use crate::names::excerpt;

/// One permission.
///
/// The order is the inclusion order: a scope allows itself and every scope
/// that compares less than it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Look up accounts, transfers, balances and history.
    Read,
    /// Move money (create accounts and transfers); includes `read`.
    Transfer,
    /// Operate the bank (keys, freezes, configuration); includes `transfer`
    /// and `read`.
    Admin,
}

impl Scope {
    /// Every scope, smallest first.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Transfer, Scope::Admin];

    /// The scope's name: `read`, `transfer` or `admin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Transfer => "transfer",
            Self::Admin => "admin",
        }
    }

    /// Whether holding `self` allows a call that needs `needed`.
    pub fn implies(self, needed: Scope) -> bool {
        self >= needed
    }

    const fn bit(self) -> u8 {
        match self {
            Self::Read => 1,
            Self::Transfer => 2,
            Self::Admin => 4,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest scope list accepted as text (`read,transfer,admin` is 19 bytes).
pub const SCOPE_LIST_BYTES_MAX: usize = 64;

/// Why a scope or a scope list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// A name other than `read`, `transfer` or `admin`.
    #[error("unknown scope {found:?}: the scopes are read, transfer and admin")]
    Unknown {
        /// The name given (at most 32 characters of it).
        found: String,
    },
    /// The list names no scope.
    #[error("no scope given: name at least one of read, transfer, admin")]
    Empty,
    /// The list is longer than [`SCOPE_LIST_BYTES_MAX`].
    #[error("the scope list is {bytes} bytes long, the limit is {SCOPE_LIST_BYTES_MAX}")]
    TooLong {
        /// Length of the list given.
        bytes: usize,
    },
}

impl ScopeError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unknown { .. } => "unknown_scope",
            Self::Empty => "no_scope",
            Self::TooLong { .. } => "scope_list_too_long",
        }
    }
}

impl FromStr for Scope {
    type Err = ScopeError;

    /// Parses `read`, `transfer` or `admin` (exactly, lower case).
    fn from_str(text: &str) -> Result<Self, ScopeError> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == text)
            .ok_or_else(|| ScopeError::Unknown {
                found: excerpt(text, 32),
            })
    }
}

/// The scopes granted to a caller.
///
/// Text form: the granted scopes joined by commas, smallest first
/// (`read,transfer`); the empty set prints as the empty string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet(u8);

impl ScopeSet {
    /// No scope: such a caller is known but may do nothing.
    pub const EMPTY: ScopeSet = ScopeSet(0);

    /// The set holding only `scope`.
    pub const fn only(scope: Scope) -> Self {
        Self(scope.bit())
    }

    /// Adds a granted scope.
    pub fn insert(&mut self, scope: Scope) {
        self.0 |= scope.bit();
    }

    /// Whether `scope` was granted as such (no inclusion applied).
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether a call that needs `needed` is allowed: some granted scope is
    /// `needed` or includes it (`admin` ⊇ `transfer` ⊇ `read`).
    pub fn allows(self, needed: Scope) -> bool {
        self.iter().any(|granted| granted.implies(needed))
    }

    /// Whether nothing was granted.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The granted scopes, smallest first.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |scope| self.contains(*scope))
    }

    /// Parses a comma-separated list such as `read,transfer` (spaces around
    /// names allowed, repeats ignored). The list must name at least one scope.
    pub fn parse_list(text: &str) -> Result<Self, ScopeError> {
        if text.len() > SCOPE_LIST_BYTES_MAX {
            return Err(ScopeError::TooLong { bytes: text.len() });
        }
        if text.trim().is_empty() {
            return Err(ScopeError::Empty);
        }
        let mut set = ScopeSet::EMPTY;
        for name in text.split(',') {
            set.insert(name.trim().parse()?);
        }
        Ok(set)
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(scopes: I) -> Self {
        let mut set = ScopeSet::EMPTY;
        for scope in scopes {
            set.insert(scope);
        }
        set
    }
}

impl FromStr for ScopeSet {
    type Err = ScopeError;

    fn from_str(text: &str) -> Result<Self, ScopeError> {
        Self::parse_list(text)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, scope) in self.iter().enumerate() {
            if position > 0 {
                f.write_str(",")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        assert_eq!("read".parse(), Ok(Scope::Read));
        assert_eq!("transfer".parse(), Ok(Scope::Transfer));
        assert_eq!("admin".parse(), Ok(Scope::Admin));
        assert!(matches!(
            "Admin".parse::<Scope>(),
            Err(ScopeError::Unknown { .. })
        ));
        let set = ScopeSet::parse_list("transfer, read,read");
        assert_eq!(set.map(|s| s.to_string()), Ok("read,transfer".to_string()));
        assert_eq!(ScopeSet::parse_list(" "), Err(ScopeError::Empty));
        assert_eq!(
            ScopeSet::parse_list("read,"),
            Err(ScopeError::Unknown {
                found: String::new()
            })
        );
        assert_eq!(
            ScopeSet::parse_list(&"read,".repeat(20)),
            Err(ScopeError::TooLong { bytes: 100 })
        );
        assert_eq!(ScopeSet::EMPTY.to_string(), "");
        assert_eq!(format!("{:?}", ScopeSet::only(Scope::Admin)), "{Admin}");
    }

    #[test]
    fn admin_includes_transfer_includes_read() {
        let read = ScopeSet::only(Scope::Read);
        let transfer = ScopeSet::only(Scope::Transfer);
        let admin = ScopeSet::only(Scope::Admin);
        assert!(read.allows(Scope::Read));
        assert!(!read.allows(Scope::Transfer));
        assert!(!read.allows(Scope::Admin));
        assert!(transfer.allows(Scope::Read));
        assert!(transfer.allows(Scope::Transfer));
        assert!(!transfer.allows(Scope::Admin));
        assert!(Scope::ALL.into_iter().all(|scope| admin.allows(scope)));
        assert!(
            Scope::ALL
                .into_iter()
                .all(|scope| !ScopeSet::EMPTY.allows(scope))
        );
    }

    #[test]
    fn serde_uses_names() -> Result<(), serde_json::Error> {
        let scopes: Vec<Scope> = serde_json::from_str(r#"["read","admin"]"#)?;
        assert_eq!(scopes, [Scope::Read, Scope::Admin]);
        assert!(serde_json::from_str::<Scope>(r#""root""#).is_err());
        assert_eq!(serde_json::to_string(&Scope::Transfer)?, r#""transfer""#);
        Ok(())
    }
}
