//! ISO 7064 MOD 97-10 as used by IBAN (ISO 13616), computed digit by digit on
//! `u32` so no big integers are needed.
//!
//! Letters count as two-digit numbers (`A` = 10 ... `Z` = 35), digits as
//! themselves. The running remainder is always below 97, so the largest
//! intermediate value is `96 * 100 + 35`, far inside `u32`.

/// A running remainder modulo 97 of a number read left to right.
///
/// The remainder stays below 97, so the largest intermediate value is
/// `96 * 100 + 35`: no big integers are needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mod97(u64);

impl Mod97 {
    /// The remainder of the empty number.
    pub(crate) const ZERO: Self = Self(0);

    /// Appends one character: a digit `0-9` as one decimal digit, a letter
    /// `A-Z` as the two digits `10..=35`. `None` for any other byte
    /// (lowercase included: callers normalise first).
    pub(crate) const fn push_alnum(self, byte: u8) -> Option<Self> {
        match byte {
            b'0'..=b'9' => Some(Self((self.0 * 10 + (byte - b'0') as u64) % 97)),
            b'A'..=b'Z' => Some(Self((self.0 * 100 + (byte - b'A') as u64 + 10) % 97)),
            _ => None,
        }
    }

    /// Appends every byte of `bytes` with [`push_alnum`](Self::push_alnum).
    pub(crate) fn push_all(self, bytes: &[u8]) -> Option<Self> {
        bytes.iter().try_fold(self, |acc, &b| acc.push_alnum(b))
    }

    /// Appends `value` written with exactly `width` decimal digits
    /// (zero-padded), one digit at a time, most significant first.
    /// Digits of `value` beyond `width` are ignored.
    pub(crate) const fn push_decimal(self, value: u64, width: u32) -> Self {
        let mut r = self.0;
        let mut i = width;
        while i > 0 {
            i -= 1;
            let digit = match 10_u64.checked_pow(i) {
                Some(scale) => (value / scale) % 10,
                None => 0,
            };
            r = (r * 10 + digit) % 97;
        }
        Self(r)
    }

    /// The remainder, `0..=96`.
    pub(crate) const fn get(self) -> u64 {
        self.0
    }

    /// Check digits for a number whose BBAN and country code have been pushed
    /// (in that order): pushes `"00"` and returns `98 - remainder`, which is
    /// always in `2..=98`.
    pub(crate) fn check_digits(self) -> u8 {
        let r = self.push_decimal(0, 2).get();
        // r <= 96, so 98 - r is in 2..=98: the conversion cannot fail.
        u8::try_from(98 - r).unwrap_or(0)
    }
}

/// Check digits for `country` + `bban` given as uppercase ASCII:
/// `98 - (BBAN ‖ country ‖ "00") mod 97`, always in `2..=98`.
/// `None` if a byte is not `0-9`/`A-Z`.
#[cfg(test)]
pub(crate) fn check_digits(country: &[u8], bban: &[u8]) -> Option<u8> {
    Some(
        Mod97::ZERO
            .push_all(bban)?
            .push_all(country)?
            .check_digits(),
    )
}

/// The generic IBAN test: move the first four characters to the end; the
/// resulting number modulo 97 must be 1. `s` is the electronic form (no
/// spaces, uppercase). Strings shorter than five characters are invalid.
pub(crate) fn is_valid(s: &[u8]) -> bool {
    if s.len() < 5 {
        return false;
    }
    let (head, tail) = s.split_at(4);
    Mod97::ZERO
        .push_all(tail)
        .and_then(|r| r.push_all(head))
        .is_some_and(|r| r.get() == 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Independent reference: expand to a decimal string, parse as `u128`
    /// (IBANs up to 34 characters with letters can exceed u128, but the test
    /// inputs here are at most 28 digits once expanded) and reduce once.
    fn reference_mod97(s: &str) -> u128 {
        let rearranged = format!("{}{}", &s[4..], &s[..4]);
        let digits: String = rearranged
            .chars()
            .map(|c| c.to_digit(36).map(|v| v.to_string()).unwrap_or_default())
            .collect();
        assert!(digits.len() <= 38, "too long for the u128 reference");
        digits.parse::<u128>().map(|n| n % 97).unwrap_or(u128::MAX)
    }

    #[test]
    fn official_examples_pass() {
        for iban in ["GB82WEST12345698765432", "DE89370400440532013000"] {
            assert!(is_valid(iban.as_bytes()), "{iban}");
            assert_eq!(reference_mod97(iban), 1, "{iban}");
        }
        assert_eq!(check_digits(b"GB", b"WEST12345698765432"), Some(82));
        assert_eq!(check_digits(b"DE", b"370400440532013000"), Some(89));
    }

    #[test]
    fn corrupted_examples_fail() {
        assert!(!is_valid(b"GB83WEST12345698765432"));
        assert!(!is_valid(b"DE89370400440532013001"));
        assert!(!is_valid(b"GB82"));
        assert!(!is_valid(b"gb82WEST12345698765432"));
        assert!(!is_valid(b"GB82WEST1234569876543-"));
    }

    #[test]
    fn matches_reference_on_corebank_vectors() {
        for s in [
            "XC68CORE00010000001000",
            "XC40CORE00000000000001",
            "XC21CORE99999999999999",
            "XC28CORE00421234567890",
            "XC51ABCD00070000000000",
        ] {
            assert!(is_valid(s.as_bytes()), "{s}");
            assert_eq!(reference_mod97(s), 1, "{s}");
            let expected: u8 = s[2..4].parse().unwrap_or(0);
            assert_eq!(
                check_digits(&s.as_bytes()[..2], &s.as_bytes()[4..]),
                Some(expected)
            );
        }
    }

    #[test]
    fn push_decimal_matches_pushing_digits() {
        for (value, width, text) in [
            (0_u64, 2_u32, "00"),
            (42, 4, "0042"),
            (9_999_999_999, 10, "9999999999"),
            (1_234_567_890, 10, "1234567890"),
            (7, 1, "7"),
        ] {
            let start = Mod97::ZERO.push_all(b"XC").unwrap();
            assert_eq!(
                start.push_decimal(value, width),
                start.push_all(text.as_bytes()).unwrap(),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_non_alphanumeric() {
        assert_eq!(check_digits(b"X?", b"CORE"), None);
        assert_eq!(check_digits(b"XC", b"core"), None);
    }
}
