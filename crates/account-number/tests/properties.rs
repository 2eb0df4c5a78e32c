//! Property tests for `corebank-account-number`.
//!
//! # Why MOD 97-10 catches every single substitution and adjacent swap
//!
//! The check works on the rearranged string `R = BBAN ‖ CC ‖ kk`, read as the
//! decimal number `N = Σ v_j · 10^e_j`, where a digit has value `0..=9` and
//! width 1 and a letter has value `10..=35` and width 2; the string is valid
//! iff `N ≡ 1 (mod 97)` (and this crate additionally requires the canonical
//! check digits `02..=98`, which only rejects more). 97 is prime, so it
//! divides a product only if it divides a factor, and it never divides
//! `10^e`.
//!
//! - Substituting one character by another *of the same class* keeps every
//!   width, so `N` changes by `(v' - v) · 10^e` with `0 < |v' - v| <= 25`:
//!   not a multiple of 97, always detected. (A character of the other class
//!   puts a letter in a digit field or vice versa: a format error.)
//! - Swapping two adjacent characters `a`, `b` of the same class, of width
//!   `w`, changes `N` by `(a - b) · (10^w - 1) · 10^e`, and `10^1 - 1 = 9`,
//!   `10^2 - 1 = 99 ≡ 2 (mod 97)`: never a multiple of 97 when `a != b`.
//!   Same-class neighbours in the 22-character string (the two country
//!   letters, the two check digits, neighbours inside the BBAN) are still
//!   neighbours in `R`, because the first four characters move as blocks of
//!   two. The only adjacent pairs that mix classes are positions 2-3 (country/check), 4-5
//!   (check/bank) and 8-9 (bank/branch); swapping those moves a letter into a
//!   digit field, so it is a format error before the checksum is consulted.
//!
//! So no restriction of the transposition property is needed for this
//! alphabet mapping; the properties below assert the exact error code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use corebank_account_number::{
    ACCOUNT_ID_LIMIT, AccountNumber, AccountNumberError, BankPrefix, BranchCode, SERIAL_MAX,
    branch_of_account_id, split_account_id,
};
use proptest::prelude::*;

fn prefix() -> impl Strategy<Value = BankPrefix> {
    (
        proptest::array::uniform2(b'A'..=b'Z'),
        proptest::array::uniform4(b'A'..=b'Z'),
    )
        .prop_map(|(country, bank)| {
            BankPrefix::new(
                std::str::from_utf8(&country).unwrap(),
                std::str::from_utf8(&bank).unwrap(),
            )
            .unwrap()
        })
}

fn branch() -> impl Strategy<Value = BranchCode> {
    (0_u16..=9_999).prop_map(|b| BranchCode::new(b).unwrap())
}

/// Serials biased towards the edges (0, reserved range, max) as well as
/// uniformly spread.
fn serial() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..=SERIAL_MAX,
        0_u64..=1_100,
        (SERIAL_MAX - 100)..=SERIAL_MAX,
    ]
}

fn account_number() -> impl Strategy<Value = AccountNumber> {
    (prefix(), branch(), serial())
        .prop_filter("account id 0 is invalid", |(_, b, s)| {
            !(b.get() == 0 && *s == 0)
        })
        .prop_map(|(p, b, s)| AccountNumber::new(p, b, s).unwrap())
}

/// Independent check-digit reference: big decimal string -> u128 (at most 28
/// digits for 22 characters with 6 letters).
fn reference_check_digits(electronic: &str) -> u8 {
    let rearranged = format!("{}{}00", &electronic[4..], &electronic[..2]);
    let digits: String = rearranged
        .chars()
        .map(|c| c.to_digit(36).unwrap().to_string())
        .collect();
    u8::try_from(98 - digits.parse::<u128>().unwrap() % 97).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn format_parse_round_trip(n in account_number()) {
        let electronic = n.to_string();
        prop_assert_eq!(electronic.len(), 22);
        prop_assert_eq!(AccountNumber::parse(&electronic), Ok(n));
        prop_assert_eq!(AccountNumber::parse(&n.to_printed()), Ok(n));
        prop_assert_eq!(AccountNumber::parse(&electronic.to_lowercase()), Ok(n));
        prop_assert_eq!(AccountNumber::parse(&format!(" \t{}\n", n.to_printed().to_lowercase())), Ok(n));
        prop_assert_eq!(electronic.parse::<AccountNumber>(), Ok(n));
        prop_assert_eq!(AccountNumber::parse_for(n.prefix(), &electronic), Ok(n));
        prop_assert_eq!(n.to_printed().replace(' ', ""), electronic);
    }

    #[test]
    fn check_digits_match_reference(n in account_number()) {
        let electronic = n.to_string();
        prop_assert_eq!(n.check_digits(), reference_check_digits(&electronic));
        prop_assert!((2..=98).contains(&n.check_digits()));
    }

    #[test]
    fn account_id_round_trip(n in account_number()) {
        let id = n.account_id();
        prop_assert!(id != 0 && id < ACCOUNT_ID_LIMIT);
        prop_assert_eq!(id, u128::from(n.branch().get()) * 10_000_000_000 + u128::from(n.serial()));
        prop_assert_eq!(AccountNumber::from_account_id(n.prefix(), id), Ok(n));
        prop_assert_eq!(branch_of_account_id(id), Some(n.branch()));
        prop_assert_eq!(split_account_id(id), Some((n.branch(), n.serial())));
        prop_assert_eq!(corebank_account_number::account_id(n.branch(), n.serial()), Ok(id));
    }

    #[test]
    fn every_valid_id_has_a_number(id in 1_u128..ACCOUNT_ID_LIMIT, p in prefix()) {
        let n = AccountNumber::from_account_id(p, id).unwrap();
        prop_assert_eq!(n.account_id(), id);
        prop_assert_eq!(Some(n.branch()), branch_of_account_id(id));
    }

    #[test]
    fn out_of_range_ids_are_rejected(id in ACCOUNT_ID_LIMIT..=u128::MAX, p in prefix()) {
        prop_assert_eq!(
            AccountNumber::from_account_id(p, id),
            Err(AccountNumberError::AccountIdOutOfRange { id })
        );
        prop_assert_eq!(branch_of_account_id(id), None);
    }

    /// Any single same-class substitution is caught by the checksum.
    #[test]
    fn single_substitution_is_rejected(
        n in account_number(),
        position in 0_usize..22,
        letter in b'A'..=b'Z',
        digit in b'0'..=b'9',
    ) {
        let mut bytes = n.to_string().into_bytes();
        let replacement = if bytes[position].is_ascii_digit() { digit } else { letter };
        prop_assume!(replacement != bytes[position]);
        bytes[position] = replacement;
        let changed = String::from_utf8(bytes).unwrap();
        let err = AccountNumber::parse(&changed).unwrap_err();
        prop_assert_eq!(err.code(), "bad_check_digits", "{}", changed);
    }

    /// A substitution by the other class is a format error.
    #[test]
    fn cross_class_substitution_is_rejected(
        n in account_number(),
        position in 0_usize..22,
        letter in b'A'..=b'Z',
        digit in b'0'..=b'9',
    ) {
        let mut bytes = n.to_string().into_bytes();
        bytes[position] = if bytes[position].is_ascii_digit() { letter } else { digit };
        let changed = String::from_utf8(bytes).unwrap();
        let code = AccountNumber::parse(&changed).unwrap_err().code();
        let expected = match position {
            0..=1 => "bad_country_code",
            2..=3 => "check_digits_not_numeric",
            4..=7 => "bad_bank_code",
            8..=11 => "bad_branch_code",
            _ => "bad_serial",
        };
        prop_assert_eq!(code, expected, "{}", changed);
    }

    /// Any swap of two adjacent different characters is rejected: by the
    /// checksum when both are of the same class, as a format error otherwise.
    #[test]
    fn adjacent_transposition_is_rejected(n in account_number(), position in 0_usize..21) {
        let mut bytes = n.to_string().into_bytes();
        prop_assume!(bytes[position] != bytes[position + 1]);
        let same_class = bytes[position].is_ascii_digit() == bytes[position + 1].is_ascii_digit();
        bytes.swap(position, position + 1);
        let changed = String::from_utf8(bytes).unwrap();
        let code = AccountNumber::parse(&changed).unwrap_err().code();
        if same_class {
            prop_assert_eq!(code, "bad_check_digits", "{}", changed);
        } else {
            prop_assert!(
                matches!(code, "bad_country_code" | "check_digits_not_numeric" | "bad_bank_code"),
                "{} gave {}", changed, code
            );
        }
    }

    /// Arbitrary input never panics, and whatever parses re-formats to an
    /// equivalent string.
    #[test]
    fn parse_is_total(s in "\\PC{0,40}") {
        if let Ok(n) = AccountNumber::parse(&s) {
            let normalised: String = s.trim().chars().filter(|c| *c != ' ').collect();
            prop_assert_eq!(normalised.to_uppercase(), n.to_string());
        }
    }

    /// Near-valid input (valid characters, spaces anywhere) never panics and
    /// each error's code and message are non-empty.
    #[test]
    fn near_valid_input_errors_are_well_formed(s in "[A-Za-z0-9 ]{0,30}") {
        if let Err(err) = AccountNumber::parse(&s) {
            prop_assert!(!err.code().is_empty());
            prop_assert!(!err.to_string().is_empty());
        }
    }
}
