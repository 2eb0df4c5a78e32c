//! [`AccountNumber`]: parsing, formatting and the ledger id mapping.

use std::fmt;
use std::str::FromStr;

use crate::branch::{SERIAL_MAX, raw_account_id, split_account_id};
use crate::mod97::{self, Mod97};
use crate::{AccountNumberError, BankPrefix, BranchCode};

/// Length of the electronic form: 2 country + 2 check + 4 bank + 4 branch +
/// 10 serial characters.
pub const ELECTRONIC_LENGTH: usize = 22;

/// A human-facing account number: `CC kk BBBB DDDD SSSSSSSSSS`.
///
/// Invariants, enforced by every constructor:
/// - the prefix is two + four uppercase letters ([`BankPrefix`]);
/// - the branch is `0000..=9999` ([`BranchCode`]);
/// - the serial is `0..=9_999_999_999`;
/// - the ledger account id is not 0 (branch `0000` serial `0` is rejected).
///
/// The check digits are not stored: they are a function of the other parts
/// ([`check_digits`](Self::check_digits)), so an `AccountNumber` can never
/// hold wrong ones. Ordering is by prefix, then branch, then serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountNumber {
    prefix: BankPrefix,
    branch: BranchCode,
    serial: u64,
}

impl AccountNumber {
    /// # Errors
    ///
    /// - [`AccountNumberError::BadSerial`] if `serial > 9_999_999_999`;
    /// - [`AccountNumberError::AccountIdZero`] for branch `0000` serial `0`.
    pub fn new(
        prefix: BankPrefix,
        branch: BranchCode,
        serial: u64,
    ) -> Result<Self, AccountNumberError> {
        if serial > SERIAL_MAX {
            return Err(AccountNumberError::BadSerial {
                found: serial.to_string(),
            });
        }
        if branch.get() == 0 && serial == 0 {
            return Err(AccountNumberError::AccountIdZero);
        }
        Ok(Self {
            prefix,
            branch,
            serial,
        })
    }

    /// The account number of ledger account id `id` under `prefix`
    /// (`branch = id / 10^10`, `serial = id % 10^10`).
    ///
    /// # Errors
    ///
    /// - [`AccountNumberError::AccountIdOutOfRange`] if `id >= 10^14`
    ///   (including the ledger's invalid id `u128::MAX`);
    /// - [`AccountNumberError::AccountIdZero`] if `id == 0`.
    pub fn from_account_id(prefix: BankPrefix, id: u128) -> Result<Self, AccountNumberError> {
        let (branch, serial) =
            split_account_id(id).ok_or(AccountNumberError::AccountIdOutOfRange { id })?;
        Self::new(prefix, branch, serial)
    }

    /// Parses the electronic form (`XC68CORE00010000001000`) or the printed
    /// form in groups of four (`XC68 CORE 0001 0000 0010 00`).
    ///
    /// Leading and trailing whitespace is trimmed; lowercase letters are
    /// accepted and normalised to uppercase. Inside the number, a space is
    /// allowed only as a single space right after a group of four letters or
    /// digits (so every space sits where the printed form puts one); any other
    /// character is rejected.
    ///
    /// The check digits are accepted only if they equal the ones computed
    /// from the rest of the number. That is the IBAN rule "the rearranged
    /// number mod 97 is 1" restricted to the canonical check digits `02..=98`
    /// (it also rejects the aliases `00`, `01`, `99` of `97`, `98`, `02`).
    ///
    /// # Errors
    ///
    /// Checked in this order, the first failure is returned:
    /// [`Empty`](AccountNumberError::Empty),
    /// [`BadCharacter`](AccountNumberError::BadCharacter),
    /// [`WrongLength`](AccountNumberError::WrongLength),
    /// [`BadCountryCode`](AccountNumberError::BadCountryCode),
    /// [`CheckDigitsNotNumeric`](AccountNumberError::CheckDigitsNotNumeric),
    /// [`BadBankCode`](AccountNumberError::BadBankCode),
    /// [`BadBranchCode`](AccountNumberError::BadBranchCode),
    /// [`BadSerial`](AccountNumberError::BadSerial),
    /// [`BadCheckDigits`](AccountNumberError::BadCheckDigits),
    /// [`AccountIdZero`](AccountNumberError::AccountIdZero).
    pub fn parse(s: &str) -> Result<Self, AccountNumberError> {
        let compact = normalise(s)?;
        let [c0, c1, k0, k1, b0, b1, b2, b3, d0, d1, d2, d3, serial @ ..] = compact;
        let country = [c0, c1];
        let check = [k0, k1];
        let bank = [b0, b1, b2, b3];
        let branch = [d0, d1, d2, d3];

        if !country.iter().all(u8::is_ascii_uppercase) {
            return Err(AccountNumberError::BadCountryCode {
                found: ascii(&country),
            });
        }
        let found_check = decimal(&check)
            .and_then(|v| u8::try_from(v).ok())
            .ok_or_else(|| AccountNumberError::CheckDigitsNotNumeric {
                found: ascii(&check),
            })?;
        if !bank.iter().all(u8::is_ascii_uppercase) {
            return Err(AccountNumberError::BadBankCode {
                found: ascii(&bank),
            });
        }
        let branch = decimal(&branch)
            .and_then(|v| u16::try_from(v).ok())
            .and_then(|v| BranchCode::new(v).ok())
            .ok_or_else(|| AccountNumberError::BadBranchCode {
                found: ascii(&branch),
            })?;
        let serial = decimal(&serial).ok_or_else(|| AccountNumberError::BadSerial {
            found: ascii(&serial),
        })?;

        let number = Self {
            prefix: BankPrefix::from_validated(country, bank),
            branch,
            serial,
        };
        let expected_check = number.check_digits();
        if found_check != expected_check {
            return Err(AccountNumberError::BadCheckDigits {
                expected: expected_check,
                found: found_check,
            });
        }
        debug_assert!(mod97::is_valid(&compact));
        // Re-validate through the one constructor (serial range, id 0).
        Self::new(number.prefix, number.branch, number.serial)
    }

    /// [`parse`](Self::parse), then require the number to carry `prefix`
    /// (this bank's own country and bank code).
    ///
    /// # Errors
    ///
    /// Any error of [`parse`](Self::parse), then
    /// [`AccountNumberError::UnexpectedPrefix`].
    pub fn parse_for(prefix: BankPrefix, s: &str) -> Result<Self, AccountNumberError> {
        let number = Self::parse(s)?;
        if number.prefix != prefix {
            return Err(AccountNumberError::UnexpectedPrefix {
                expected: prefix,
                found: number.prefix,
            });
        }
        Ok(number)
    }

    /// The country/bank prefix.
    #[must_use]
    pub const fn prefix(&self) -> BankPrefix {
        self.prefix
    }

    /// The branch that owns the account.
    #[must_use]
    pub const fn branch(&self) -> BranchCode {
        self.branch
    }

    /// The account serial within the branch, `0..=9_999_999_999`.
    #[must_use]
    pub const fn serial(&self) -> u64 {
        self.serial
    }

    /// Whether the serial is in the range reserved for the branch's own
    /// internal accounts (`0..=SERIAL_RESERVED_MAX`).
    #[must_use]
    pub const fn is_branch_internal(&self) -> bool {
        self.serial <= crate::SERIAL_RESERVED_MAX
    }

    /// The ledger account id, `branch * 10^10 + serial`; never 0 and always
    /// below `10^14`.
    #[must_use]
    pub fn account_id(&self) -> u128 {
        raw_account_id(self.branch, self.serial)
    }

    /// The two check digits (ISO 7064 MOD 97-10, as IBAN), `2..=98`.
    #[must_use]
    pub fn check_digits(&self) -> u8 {
        // The prefix holds only A-Z by construction, so the pushes of letters
        // cannot fail; 0 (never valid check digits) is an unreachable fallback.
        Mod97::ZERO
            .push_all(self.prefix.bank_bytes())
            .map(|r| r.push_decimal(u64::from(self.branch.get()), 4))
            .map(|r| r.push_decimal(self.serial, 10))
            .and_then(|r| r.push_all(self.prefix.country_bytes()))
            .map_or(0, Mod97::check_digits)
    }

    /// The printed form: groups of four separated by single spaces,
    /// e.g. `XC68 CORE 0001 0000 0010 00`.
    #[must_use]
    pub fn to_printed(&self) -> String {
        let electronic = self.to_string();
        let mut printed = String::with_capacity(ELECTRONIC_LENGTH + ELECTRONIC_LENGTH / 4);
        for (i, c) in electronic.chars().enumerate() {
            if i > 0 && i.is_multiple_of(4) {
                printed.push(' ');
            }
            printed.push(c);
        }
        printed
    }
}

impl fmt::Display for AccountNumber {
    /// The electronic form, 22 characters without spaces:
    /// `XC68CORE00010000001000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{:02}{}{}{:010}",
            self.prefix.country(),
            self.check_digits(),
            self.prefix.bank(),
            self.branch,
            self.serial
        )
    }
}

impl FromStr for AccountNumber {
    type Err = AccountNumberError;

    /// Same as [`AccountNumber::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Trims `s`, checks every character, drops the group-separating spaces and
/// uppercases letters, giving the electronic form (not yet checked field by
/// field).
fn normalise(s: &str) -> Result<[u8; ELECTRONIC_LENGTH], AccountNumberError> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err(AccountNumberError::Empty);
    }
    let mut compact = [0_u8; ELECTRONIC_LENGTH];
    // Letters and digits seen so far (may exceed ELECTRONIC_LENGTH; only the
    // count matters then).
    let mut count = 0_usize;
    let mut previous_was_space = false;
    for (index, character) in trimmed.chars().enumerate() {
        match u8::try_from(character) {
            Ok(byte) if byte.is_ascii_alphanumeric() => {
                if let Some(slot) = compact.get_mut(count) {
                    *slot = byte.to_ascii_uppercase();
                }
                count += 1;
                previous_was_space = false;
            }
            // A single space right after a complete group of four. The input
            // is trimmed, so a space is never first or last.
            Ok(b' ') if !previous_was_space && count > 0 && count.is_multiple_of(4) => {
                previous_was_space = true;
            }
            _ => {
                return Err(AccountNumberError::BadCharacter {
                    position: index + 1,
                    character,
                });
            }
        }
    }
    if count != ELECTRONIC_LENGTH {
        return Err(AccountNumberError::WrongLength {
            expected: ELECTRONIC_LENGTH,
            found: count,
        });
    }
    Ok(compact)
}

/// The value of ASCII decimal digits, or `None` if any byte is not `0-9` or
/// the value overflows `u64`.
pub(crate) fn decimal(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0_u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Bytes already known to be ASCII, as a `String` for error details.
fn ascii(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Independent reference for check digits: expand the rearranged string
    /// to a decimal string (letters via base 36, A = 10 ... Z = 35), parse it
    /// as a `u128` (at most 28 digits here) and reduce once.
    fn reference_check_digits(country: &str, bban: &str) -> u8 {
        let digits: String = format!("{bban}{country}00")
            .chars()
            .map(|c| c.to_digit(36).unwrap().to_string())
            .collect();
        let n: u128 = digits.parse().unwrap();
        u8::try_from(98 - n % 97).unwrap()
    }

    fn number(branch: u16, serial: u64) -> AccountNumber {
        AccountNumber::new(
            BankPrefix::COREBANK,
            BranchCode::new(branch).unwrap(),
            serial,
        )
        .unwrap()
    }

    fn parse_err(s: &str) -> AccountNumberError {
        AccountNumber::parse(s).unwrap_err()
    }

    /// Vectors computed outside this crate (Python big integers) and checked
    /// again against the `u128` reference above.
    const VECTORS: [(&str, u16, u64, &str); 5] = [
        ("XC", 1, 1_000, "XC68CORE00010000001000"),
        ("XC", 0, 1, "XC40CORE00000000000001"),
        ("XC", 9_999, 9_999_999_999, "XC21CORE99999999999999"),
        ("XC", 42, 1_234_567_890, "XC28CORE00421234567890"),
        ("XC", 0, 999, "XC60CORE00000000000999"),
    ];

    #[test]
    fn known_vectors_format_and_parse() {
        for (country, branch, serial, electronic) in VECTORS {
            let n = number(branch, serial);
            assert_eq!(n.prefix().country(), country);
            assert_eq!(n.to_string(), electronic);
            assert_eq!(
                n.check_digits(),
                reference_check_digits(country, &electronic[4..])
            );
            assert_eq!(electronic[2..4].parse::<u8>().unwrap(), n.check_digits());
            assert!(mod97::is_valid(electronic.as_bytes()));
            assert_eq!(AccountNumber::parse(electronic).unwrap(), n);
            assert_eq!(AccountNumber::parse(&n.to_printed()).unwrap(), n);
            assert_eq!(electronic.parse::<AccountNumber>().unwrap(), n);
        }
    }

    #[test]
    fn other_prefixes() {
        let abcd = BankPrefix::new("XC", "ABCD").unwrap();
        let n = AccountNumber::new(abcd, BranchCode::new(7).unwrap(), 0).unwrap();
        assert_eq!(n.to_string(), "XC51ABCD00070000000000");

        // The official IBAN example has exactly our layout: GB / WEST /
        // 1234 / 5698765432.
        let west = BankPrefix::new("GB", "WEST").unwrap();
        let gb = AccountNumber::new(west, BranchCode::new(1234).unwrap(), 5_698_765_432).unwrap();
        assert_eq!(gb.to_string(), "GB82WEST12345698765432");
        assert_eq!(gb.to_printed(), "GB82 WEST 1234 5698 7654 32");
        assert_eq!(gb.check_digits(), 82);
        assert_eq!(
            AccountNumber::parse("GB82 WEST 1234 5698 7654 32").unwrap(),
            gb
        );
        assert_eq!(
            AccountNumber::parse("GB87WEST00010000000002").unwrap(),
            AccountNumber::new(west, BranchCode::new(1).unwrap(), 2).unwrap()
        );
    }

    #[test]
    fn printed_form() {
        let n = number(1, 1_000);
        assert_eq!(n.to_printed(), "XC68 CORE 0001 0000 0010 00");
        assert_eq!(
            number(9_999, 9_999_999_999).to_printed(),
            "XC21 CORE 9999 9999 9999 99"
        );
    }

    #[test]
    fn parse_normalises() {
        let n = number(1, 1_000);
        for s in [
            "XC68CORE00010000001000",
            "XC68 CORE 0001 0000 0010 00",
            "xc68core00010000001000",
            "xC68 cOrE 0001 0000 0010 00",
            "  XC68 CORE 0001 0000 0010 00\n",
            "\tXC68CORE00010000001000 ",
            // Every space is at a group boundary: partially grouped input is
            // accepted.
            "XC68CORE 0001 0000001000",
        ] {
            assert_eq!(AccountNumber::parse(s), Ok(n), "{s:?}");
        }
    }

    #[test]
    fn accessors_and_mapping() {
        let n = number(42, 1_234_567_890);
        assert_eq!(n.prefix(), BankPrefix::COREBANK);
        assert_eq!(n.branch().get(), 42);
        assert_eq!(n.serial(), 1_234_567_890);
        assert_eq!(n.account_id(), 421_234_567_890);
        assert!(!n.is_branch_internal());
        assert!(number(3, 999).is_branch_internal());
        assert!(!number(3, 1_000).is_branch_internal());
        assert_eq!(
            AccountNumber::from_account_id(BankPrefix::COREBANK, 421_234_567_890),
            Ok(n)
        );
        assert_eq!(
            crate::branch_of_account_id(n.account_id()),
            Some(n.branch())
        );
        assert_eq!(number(0, 1).account_id(), 1);
        assert_eq!(
            number(9_999, SERIAL_MAX).account_id(),
            crate::ACCOUNT_ID_LIMIT - 1
        );
    }

    /// Asserts `err` has `code` and that its message mentions every detail.
    fn assert_error(err: &AccountNumberError, code: &str, details: &[&str]) {
        assert_eq!(err.code(), code, "{err:?}");
        let message = err.to_string();
        for detail in details {
            assert!(message.contains(detail), "{message:?} lacks {detail:?}");
        }
    }

    #[test]
    fn rejects_empty() {
        for s in ["", " ", "\t\n  "] {
            let err = parse_err(s);
            assert_eq!(err, AccountNumberError::Empty);
            assert_error(&err, "empty", &["empty"]);
        }
    }

    #[test]
    fn rejects_bad_characters_with_position() {
        for (s, position, character) in [
            ("XC68-CORE00010000001000", 5, '-'),
            ("XC68 CORE  0001 0000 0010 00", 11, ' '),
            ("XC6 8CORE00010000001000", 4, ' '),
            ("XC68CORE0001000000100É", 22, 'É'),
            ("  ÉC68CORE00010000001000", 1, 'É'),
            ("XC68\tCORE00010000001000", 5, '\t'),
            ("XC68CORE00010000001000.", 23, '.'),
            // 22 characters do not end a group: no space may follow them.
            ("XC68 CORE 0001 0000 0010 00 -", 28, ' '),
            ("XC68 CORE 0001 0000 0010 0000 -", 31, '-'),
            ("XC68CORE0001000000١000", 19, '١'),
        ] {
            let err = parse_err(s);
            assert_eq!(
                err,
                AccountNumberError::BadCharacter {
                    position,
                    character
                },
                "{s:?}"
            );
            assert_error(
                &err,
                "bad_character",
                &[&format!("{character:?}"), &format!("position {position}")],
            );
        }
    }

    #[test]
    fn rejects_wrong_length() {
        for (s, found) in [
            ("XC68CORE0001000000100", 21),
            ("XC68CORE000100000010000", 23),
            ("XC68 CORE 0001 0000 0010 0", 21),
            ("XC68 CORE 0001 0000 0010 0000", 24),
            ("X", 1),
        ] {
            let err = parse_err(s);
            assert_eq!(
                err,
                AccountNumberError::WrongLength {
                    expected: 22,
                    found
                },
                "{s:?}"
            );
            assert_error(&err, "wrong_length", &["22", &found.to_string()]);
        }
    }

    #[test]
    fn rejects_bad_country_code() {
        let err = parse_err("1C68CORE00010000001000");
        assert_eq!(
            err,
            AccountNumberError::BadCountryCode { found: "1C".into() }
        );
        assert_error(&err, "bad_country_code", &["\"1C\""]);
    }

    #[test]
    fn rejects_non_numeric_check_digits() {
        let err = parse_err("xcA8CORE00010000001000");
        assert_eq!(
            err,
            AccountNumberError::CheckDigitsNotNumeric { found: "A8".into() }
        );
        assert_error(&err, "check_digits_not_numeric", &["\"A8\""]);
    }

    #[test]
    fn rejects_bad_bank_code() {
        let err = parse_err("XC68C0RE00010000001000");
        assert_eq!(
            err,
            AccountNumberError::BadBankCode {
                found: "C0RE".into()
            }
        );
        assert_error(&err, "bad_bank_code", &["\"C0RE\""]);
    }

    #[test]
    fn rejects_bad_branch_code() {
        let err = parse_err("XC68CORE000A0000001000");
        assert_eq!(
            err,
            AccountNumberError::BadBranchCode {
                found: "000A".into()
            }
        );
        assert_error(&err, "bad_branch_code", &["\"000A\""]);
    }

    #[test]
    fn rejects_bad_serial() {
        let err = parse_err("XC68 CORE 0001 0000 0O10 00");
        assert_eq!(
            err,
            AccountNumberError::BadSerial {
                found: "00000O1000".into()
            }
        );
        assert_error(&err, "bad_serial", &["\"00000O1000\""]);

        let err = AccountNumber::new(
            BankPrefix::COREBANK,
            BranchCode::new(1).unwrap(),
            SERIAL_MAX + 1,
        )
        .unwrap_err();
        assert_eq!(
            err,
            AccountNumberError::BadSerial {
                found: "10000000000".into()
            }
        );
        assert_error(&err, "bad_serial", &["10000000000"]);
    }

    #[test]
    fn rejects_bad_check_digits() {
        let err = parse_err("XC69CORE00010000001000");
        assert_eq!(
            err,
            AccountNumberError::BadCheckDigits {
                expected: 68,
                found: 69
            }
        );
        assert_error(&err, "bad_check_digits", &["69", "68"]);

        // A mistyped serial: the check digits as given are kept, the expected
        // ones are those of the mistyped number.
        let err = parse_err("XC68 CORE 0001 0000 0010 01");
        assert_eq!(err.code(), "bad_check_digits");
        assert!(matches!(
            err,
            AccountNumberError::BadCheckDigits { found: 68, .. }
        ));

        // Single-digit check digits are zero-padded in the message.
        let err = parse_err("XC05CORE00010000001000");
        assert_error(&err, "bad_check_digits", &["05", "68"]);
    }

    #[test]
    fn rejects_non_canonical_check_digit_aliases() {
        // 99 = 2 (mod 97), 00 = 97, 01 = 98: the rearranged number passes the
        // bare "mod 97 == 1" test, but IBAN check digits are 02..=98 only.
        // Find a number with check digits 02, 97 or 98 and try its alias.
        let mut tried = 0;
        for serial in 1..2_000 {
            let n = number(0, serial);
            let aliased = match n.check_digits() {
                2 => "99",
                97 => "00",
                98 => "01",
                _ => continue,
            };
            let s = format!("XC{aliased}{}", &n.to_string()[4..]);
            assert!(mod97::is_valid(s.as_bytes()), "{s} should pass bare mod 97");
            let err = parse_err(&s);
            assert_eq!(err.code(), "bad_check_digits", "{s}");
            tried += 1;
        }
        assert!(tried > 0);
    }

    #[test]
    fn rejects_account_id_zero() {
        let err =
            AccountNumber::new(BankPrefix::COREBANK, BranchCode::new(0).unwrap(), 0).unwrap_err();
        assert_eq!(err, AccountNumberError::AccountIdZero);
        assert_error(&err, "account_id_zero", &["0000", "0000000000", "id 0"]);
        assert_eq!(
            parse_err("XC67CORE00000000000000"),
            AccountNumberError::AccountIdZero
        );
        assert_eq!(
            AccountNumber::from_account_id(BankPrefix::COREBANK, 0),
            Err(AccountNumberError::AccountIdZero)
        );
    }

    #[test]
    fn rejects_account_id_out_of_range() {
        for id in [
            crate::ACCOUNT_ID_LIMIT,
            crate::ACCOUNT_ID_LIMIT + 1,
            u128::MAX,
        ] {
            let err = AccountNumber::from_account_id(BankPrefix::COREBANK, id).unwrap_err();
            assert_eq!(err, AccountNumberError::AccountIdOutOfRange { id });
            assert_error(&err, "account_id_out_of_range", &[&id.to_string()]);
        }
    }

    #[test]
    fn parse_for_checks_prefix() {
        let own = BankPrefix::COREBANK;
        assert_eq!(
            AccountNumber::parse_for(own, "XC68 CORE 0001 0000 0010 00"),
            Ok(number(1, 1_000))
        );
        let err = AccountNumber::parse_for(own, "GB82 WEST 1234 5698 7654 32").unwrap_err();
        assert_eq!(
            err,
            AccountNumberError::UnexpectedPrefix {
                expected: own,
                found: BankPrefix::new("GB", "WEST").unwrap()
            }
        );
        assert_error(&err, "unexpected_prefix", &["GB", "WEST", "XC", "CORE"]);
        // Parse errors come first.
        assert_eq!(
            AccountNumber::parse_for(own, "GB83WEST12345698765432")
                .unwrap_err()
                .code(),
            "bad_check_digits"
        );
    }

    #[test]
    fn check_order() {
        // Several faults at once: the first in the documented order wins.
        assert_eq!(parse_err("X-").code(), "bad_character");
        assert_eq!(parse_err("1C6").code(), "wrong_length");
        assert_eq!(
            parse_err("1CA8C0RE000A00000O1000").code(),
            "bad_country_code"
        );
        assert_eq!(
            parse_err("XCA8C0RE000A00000O1000").code(),
            "check_digits_not_numeric"
        );
        assert_eq!(parse_err("XC68C0RE000A00000O1000").code(), "bad_bank_code");
        assert_eq!(
            parse_err("XC68CORE000A00000O1000").code(),
            "bad_branch_code"
        );
        assert_eq!(parse_err("XC00CORE000000000O1000").code(), "bad_serial");
        assert_eq!(
            parse_err("XC00CORE00000000000000").code(),
            "bad_check_digits"
        );
    }

    #[test]
    fn all_codes_are_distinct_snake_case() {
        let prefix = BankPrefix::COREBANK;
        let errors = [
            AccountNumberError::Empty,
            AccountNumberError::WrongLength {
                expected: 22,
                found: 1,
            },
            AccountNumberError::BadCharacter {
                position: 1,
                character: '-',
            },
            AccountNumberError::BadCountryCode {
                found: String::new(),
            },
            AccountNumberError::CheckDigitsNotNumeric {
                found: String::new(),
            },
            AccountNumberError::BadBankCode {
                found: String::new(),
            },
            AccountNumberError::BadBranchCode {
                found: String::new(),
            },
            AccountNumberError::BadSerial {
                found: String::new(),
            },
            AccountNumberError::BadCheckDigits {
                expected: 2,
                found: 3,
            },
            AccountNumberError::AccountIdOutOfRange { id: 0 },
            AccountNumberError::AccountIdZero,
            AccountNumberError::UnexpectedPrefix {
                expected: prefix,
                found: prefix,
            },
        ];
        let mut codes: Vec<&str> = errors.iter().map(AccountNumberError::code).collect();
        for code in &codes {
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
    }

    /// Exhaustive version of the error-detection properties on fixed numbers:
    /// every single same-class substitution and every adjacent transposition
    /// of two different characters is rejected. See `tests/properties.rs` for
    /// why MOD 97-10 guarantees this.
    #[test]
    fn detects_every_substitution_and_adjacent_transposition() {
        const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        const DIGITS: &[u8] = b"0123456789";
        for (_, _, _, electronic) in VECTORS {
            let original = electronic.as_bytes();
            for i in 0..original.len() {
                let class = if original[i].is_ascii_digit() {
                    DIGITS
                } else {
                    LETTERS
                };
                for &replacement in class {
                    if replacement == original[i] {
                        continue;
                    }
                    let mut changed = original.to_vec();
                    changed[i] = replacement;
                    let s = String::from_utf8(changed).unwrap();
                    assert_eq!(parse_err(&s).code(), "bad_check_digits", "{s}");
                }
            }
            for i in 0..original.len() - 1 {
                if original[i] == original[i + 1] {
                    continue;
                }
                let mut swapped = original.to_vec();
                swapped.swap(i, i + 1);
                let s = String::from_utf8(swapped).unwrap();
                assert!(AccountNumber::parse(&s).is_err(), "{s}");
            }
        }
    }
}
