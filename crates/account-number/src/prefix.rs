//! The country/bank prefix shared by all account numbers of one bank.

use std::fmt;

use crate::AccountNumberError;

/// The country code and bank code at the front of every account number of a
/// bank, e.g. `XC` / `CORE` in `XC68 CORE 0001 0000 0010 00`.
///
/// Both parts are stored as uppercase ASCII letters; that invariant is
/// enforced by [`BankPrefix::new`], the only way to build one besides the
/// [`BankPrefix::COREBANK`] constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BankPrefix {
    country: [u8; 2],
    bank: [u8; 4],
}

impl BankPrefix {
    /// The default prefix, `XC` / `CORE`.
    ///
    /// `XC` is a user-assigned ISO 3166-1 alpha-2 code, so corebank numbers
    /// never pretend to belong to a real country's IBAN registry.
    pub const COREBANK: Self = Self {
        country: *b"XC",
        bank: *b"CORE",
    };

    /// Builds a prefix from a two-letter country code and a four-letter bank
    /// code. Lowercase letters are accepted and normalised to uppercase; any
    /// other character, or a wrong length, is rejected.
    ///
    /// # Errors
    ///
    /// [`AccountNumberError::BadCountryCode`] or
    /// [`AccountNumberError::BadBankCode`], carrying the text as given.
    pub fn new(country: &str, bank: &str) -> Result<Self, AccountNumberError> {
        let country = letters::<2>(country).ok_or_else(|| AccountNumberError::BadCountryCode {
            found: country.to_owned(),
        })?;
        let bank = letters::<4>(bank).ok_or_else(|| AccountNumberError::BadBankCode {
            found: bank.to_owned(),
        })?;
        Ok(Self { country, bank })
    }

    /// Builds a prefix from bytes already known to be uppercase `A-Z`.
    pub(crate) const fn from_validated(country: [u8; 2], bank: [u8; 4]) -> Self {
        Self { country, bank }
    }

    /// The two-letter country code, e.g. `"XC"`.
    #[must_use]
    pub fn country(&self) -> &str {
        // Always uppercase ASCII by construction, so this never falls back.
        std::str::from_utf8(&self.country).unwrap_or_default()
    }

    /// The four-letter bank code, e.g. `"CORE"`.
    #[must_use]
    pub fn bank(&self) -> &str {
        // Always uppercase ASCII by construction, so this never falls back.
        std::str::from_utf8(&self.bank).unwrap_or_default()
    }

    pub(crate) const fn country_bytes(&self) -> &[u8; 2] {
        &self.country
    }

    pub(crate) const fn bank_bytes(&self) -> &[u8; 4] {
        &self.bank
    }
}

impl Default for BankPrefix {
    /// [`BankPrefix::COREBANK`] (`XC` / `CORE`).
    fn default() -> Self {
        Self::COREBANK
    }
}

impl fmt::Display for BankPrefix {
    /// Country and bank separated by a slash, e.g. `XC/CORE`. This is a label
    /// for messages and logs, not part of the account number format.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.country(), self.bank())
    }
}

/// Exactly `N` ASCII letters, uppercased; `None` otherwise.
fn letters<const N: usize>(s: &str) -> Option<[u8; N]> {
    let bytes: [u8; N] = s.as_bytes().try_into().ok()?;
    if bytes.iter().all(u8::is_ascii_alphabetic) {
        Some(bytes.map(|b| b.to_ascii_uppercase()))
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn default_is_xc_core() {
        let p = BankPrefix::default();
        assert_eq!(p, BankPrefix::COREBANK);
        assert_eq!(p.country(), "XC");
        assert_eq!(p.bank(), "CORE");
        assert_eq!(p.to_string(), "XC/CORE");
    }

    #[test]
    fn new_normalises_case() {
        let p = BankPrefix::new("gb", "West").unwrap();
        assert_eq!((p.country(), p.bank()), ("GB", "WEST"));
        assert_eq!(BankPrefix::new("XC", "CORE").unwrap(), BankPrefix::COREBANK);
    }

    #[test]
    fn new_rejects_bad_country() {
        for bad in ["", "X", "XCC", "X1", "É1", "X ", "ÉÉ"] {
            let err = BankPrefix::new(bad, "CORE").unwrap_err();
            assert_eq!(err.code(), "bad_country_code", "{bad:?}");
            assert_eq!(
                err,
                AccountNumberError::BadCountryCode { found: bad.into() }
            );
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn new_rejects_bad_bank() {
        for bad in ["", "COR", "CORES", "C0RE", "CO E", "CÖRE"] {
            let err = BankPrefix::new("XC", bad).unwrap_err();
            assert_eq!(err.code(), "bad_bank_code", "{bad:?}");
            assert_eq!(err, AccountNumberError::BadBankCode { found: bad.into() });
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }
}
