//! # corebank-money
//!
//! Currencies and amounts at the edges of the bank. Inside, an amount is a `u128` of
//! minor units on a ledger (the ISO 4217 numeric code); people and apps write decimal
//! strings such as `"12.34"`. This crate converts between the two exactly: no float is
//! ever involved, too many decimals or a negative sign are errors, never rounding.

use std::fmt;

/// A currency from ISO 4217: its letters, its number (the ledger id) and how many
/// decimal places its minor unit has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Currency {
    pub alpha: &'static str,
    pub numeric: u32,
    pub exponent: u8,
    /// A stable slot (0..=99) used to number a branch's internal account for this
    /// currency; never reused or reordered.
    pub slot: u8,
}

macro_rules! currencies {
    ($( $alpha:ident $numeric:literal $exponent:literal $slot:literal ),* $(,)?) => {
        #[allow(missing_docs)]
        impl Currency {
            $( pub const $alpha: Currency = Currency { alpha: stringify!($alpha), numeric: $numeric, exponent: $exponent, slot: $slot }; )*
        }

        /// The currencies the bank supports.
        pub const CURRENCIES: &[Currency] = &[ $( Currency::$alpha, )* ];
    };
}

currencies! {
    EUR 978 2 0, USD 840 2 1, GBP 826 2 2, CHF 756 2 3, JPY 392 0 4,
    SEK 752 2 5, NOK 578 2 6, DKK 208 2 7, PLN 985 2 8, CZK 203 2 9,
    HUF 348 2 10, RON 946 2 11, CAD 124 2 12, AUD 36 2 13, NZD 554 2 14,
    SGD 702 2 15, HKD 344 2 16, CNY 156 2 17, INR 356 2 18, BRL 986 2 19,
    MXN 484 2 20, ZAR 710 2 21, TRY 949 2 22, KRW 410 0 23, ISK 352 0 24,
    KWD 414 3 25, BHD 48 3 26, OMR 512 3 27, JOD 400 3 28, AED 784 2 29,
}

impl Currency {
    /// Looks a currency up by its letters (case-insensitive, surrounding spaces ignored).
    pub fn from_alpha(alpha: &str) -> Result<Self, MoneyError> {
        let wanted = alpha.trim();
        CURRENCIES
            .iter()
            .find(|c| c.alpha.eq_ignore_ascii_case(wanted))
            .copied()
            .ok_or_else(|| MoneyError::UnknownCurrency {
                currency: truncated(wanted),
            })
    }

    /// Looks a currency up by its ISO 4217 number (the ledger id).
    pub fn from_numeric(numeric: u32) -> Result<Self, MoneyError> {
        CURRENCIES
            .iter()
            .find(|c| c.numeric == numeric)
            .copied()
            .ok_or(MoneyError::UnknownLedger { ledger: numeric })
    }

    /// Minor units in one major unit (100 for EUR, 1 for JPY, 1,000 for KWD).
    pub fn minor_per_major(self) -> u128 {
        10u128.pow(u32::from(self.exponent))
    }

    /// Parses a decimal amount: digits, optionally a point and at most `exponent`
    /// decimals (`"12"`, `"12.3"`, `"12.34"` for EUR). No sign, no exponent notation,
    /// no thousands separators; surrounding spaces are ignored.
    pub fn parse_amount(self, text: &str) -> Result<u128, MoneyError> {
        let text = text.trim();
        let invalid = |reason: &'static str| MoneyError::InvalidAmount {
            amount: truncated(text),
            reason,
        };
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if text.starts_with('-') {
            return Err(MoneyError::NegativeAmount {
                amount: truncated(text),
            });
        }
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text, None),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "it must be digits with an optional decimal point, like 12.34",
            ));
        }
        let fraction = fraction.unwrap_or("");
        if text.contains('.') && fraction.is_empty() {
            return Err(invalid("a decimal point must be followed by digits"));
        }
        if !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "it must be digits with an optional decimal point, like 12.34",
            ));
        }
        if fraction.len() > usize::from(self.exponent) {
            return Err(MoneyError::TooManyDecimals {
                amount: truncated(text),
                currency: self.alpha,
                exponent: self.exponent,
            });
        }
        let overflow = || MoneyError::AmountTooLarge {
            amount: truncated(text),
        };
        let whole: u128 = whole.parse().map_err(|_| overflow())?;
        let mut minor = whole
            .checked_mul(self.minor_per_major())
            .ok_or_else(overflow)?;
        if !fraction.is_empty() {
            // fraction.len() <= exponent <= 255 was checked above.
            let missing = usize::from(self.exponent) - fraction.len();
            let scale = 10u128.pow(u32::try_from(missing).unwrap_or(0));
            let fraction: u128 = fraction.parse().map_err(|_| overflow())?;
            minor = minor.checked_add(fraction * scale).ok_or_else(overflow)?;
        }
        Ok(minor)
    }

    /// Parses an amount that must be above zero (a payment, a deposit, a hold).
    pub fn parse_positive_amount(self, text: &str) -> Result<u128, MoneyError> {
        match self.parse_amount(text)? {
            0 => Err(MoneyError::ZeroAmount),
            amount => Ok(amount),
        }
    }

    /// Formats minor units as a decimal string with exactly `exponent` decimals.
    pub fn format_amount(self, minor: u128) -> String {
        let unit = self.minor_per_major();
        if self.exponent == 0 {
            return minor.to_string();
        }
        format!(
            "{}.{:0width$}",
            minor / unit,
            minor % unit,
            width = usize::from(self.exponent)
        )
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpha)
    }
}

/// Input errors are echoed back; keep the echo short.
fn truncated(text: &str) -> String {
    const ECHO_MAX: usize = 40;
    if text.chars().count() <= ECHO_MAX {
        text.to_string()
    } else {
        text.chars().take(ECHO_MAX).collect::<String>() + "…"
    }
}

/// Why a currency or amount was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency \"{currency}\" (use an ISO 4217 code such as EUR, USD or GBP)")]
    UnknownCurrency { currency: String },
    #[error("ledger {ledger} is not a supported currency")]
    UnknownLedger { ledger: u32 },
    #[error("\"{amount}\" is not an amount: {reason}")]
    InvalidAmount {
        amount: String,
        reason: &'static str,
    },
    #[error(
        "\"{amount}\" is negative; amounts are always positive (the operation says which way money moves)"
    )]
    NegativeAmount { amount: String },
    #[error("\"{amount}\" has more decimals than {currency} allows ({exponent})")]
    TooManyDecimals {
        amount: String,
        currency: &'static str,
        exponent: u8,
    },
    #[error("\"{amount}\" is too large")]
    AmountTooLarge { amount: String },
    #[error("the amount must be greater than zero")]
    ZeroAmount,
}

impl MoneyError {
    /// The stable snake_case code of this error.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::UnknownCurrency { .. } | Self::UnknownLedger { .. } => "unknown_currency",
            Self::InvalidAmount { .. }
            | Self::TooManyDecimals { .. }
            | Self::AmountTooLarge { .. }
            | Self::ZeroAmount => "invalid_amount",
            Self::NegativeAmount { .. } => "negative_amount",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn eur() -> Currency {
        Currency::from_alpha("EUR").unwrap()
    }

    #[test]
    fn table_is_consistent() {
        for (i, a) in CURRENCIES.iter().enumerate() {
            assert_eq!(a.alpha.len(), 3);
            assert!(a.slot < 100);
            for b in &CURRENCIES[i + 1..] {
                assert_ne!(a.alpha, b.alpha);
                assert_ne!(a.numeric, b.numeric);
                assert_ne!(a.slot, b.slot);
            }
        }
        assert_eq!(Currency::from_numeric(978).unwrap().alpha, "EUR");
        assert_eq!(Currency::from_alpha(" usd ").unwrap().numeric, 840);
    }

    #[test]
    fn parses_and_formats_exactly() {
        let eur = eur();
        assert_eq!(eur.parse_amount("12.34"), Ok(1_234));
        assert_eq!(eur.parse_amount("12.3"), Ok(1_230));
        assert_eq!(eur.parse_amount("12"), Ok(1_200));
        assert_eq!(eur.parse_amount("0.01"), Ok(1));
        assert_eq!(eur.parse_amount(" 7.00 "), Ok(700));
        assert_eq!(eur.format_amount(1_234), "12.34");
        assert_eq!(eur.format_amount(5), "0.05");
        let jpy = Currency::from_alpha("JPY").unwrap();
        assert_eq!(jpy.parse_amount("1500"), Ok(1_500));
        assert_eq!(jpy.format_amount(1_500), "1500");
        let kwd = Currency::from_alpha("KWD").unwrap();
        assert_eq!(kwd.parse_amount("1.234"), Ok(1_234));
        assert_eq!(kwd.format_amount(1_234), "1.234");
    }

    #[test]
    fn refuses_what_is_not_an_exact_positive_amount() {
        let eur = eur();
        let code = |text: &str| eur.parse_amount(text).unwrap_err().code();
        assert_eq!(code("-5"), "negative_amount");
        assert_eq!(code("-0.01"), "negative_amount");
        assert_eq!(code("1.234"), "invalid_amount");
        assert_eq!(code(""), "invalid_amount");
        assert_eq!(code("abc"), "invalid_amount");
        assert_eq!(code("1e3"), "invalid_amount");
        assert_eq!(code("1,000.00"), "invalid_amount");
        assert_eq!(code("12."), "invalid_amount");
        assert_eq!(code(".5"), "invalid_amount");
        assert_eq!(code("+5"), "invalid_amount");
        assert_eq!(code("1.2.3"), "invalid_amount");
        assert_eq!(
            code("99999999999999999999999999999999999999999"),
            "invalid_amount"
        );
        assert_eq!(
            Currency::from_alpha("JPY")
                .unwrap()
                .parse_amount("1.5")
                .unwrap_err()
                .code(),
            "invalid_amount"
        );
        assert_eq!(
            eur.parse_positive_amount("0.00"),
            Err(MoneyError::ZeroAmount)
        );
        assert_eq!(
            Currency::from_alpha("XXX").unwrap_err().code(),
            "unknown_currency"
        );
        let long = "9".repeat(500);
        assert!(
            eur.parse_amount(&long).unwrap_err().to_string().len() < 200,
            "errors echo a bounded part of the input"
        );
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(minor in any::<u64>(), slot in 0usize..CURRENCIES.len()) {
            let currency = CURRENCIES[slot];
            let text = currency.format_amount(u128::from(minor));
            prop_assert_eq!(currency.parse_amount(&text), Ok(u128::from(minor)));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,60}") {
            let _ = eur().parse_amount(&text);
        }
    }
}
