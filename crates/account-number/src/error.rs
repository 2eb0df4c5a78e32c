//! The single error type of this crate.

use crate::BankPrefix;

/// Why an account number, one of its parts, or a ledger account id was
/// rejected.
///
/// Every variant has a stable snake_case [`code`](Self::code) for machines
/// (logs, API responses, metrics) and a `Display` sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountNumberError {
    /// Nothing but whitespace was given.
    #[error("the account number is empty")]
    Empty,

    /// The number of letters and digits (spaces not counted) is wrong.
    #[error(
        "an account number has {expected} letters and digits (spaces not counted), \
         but {found} were given"
    )]
    WrongLength {
        /// Always [`ELECTRONIC_LENGTH`](crate::ELECTRONIC_LENGTH) (22).
        expected: usize,
        /// Letters and digits actually found.
        found: usize,
    },

    /// A character that may not appear where it does: anything other than
    /// `A-Z`, `a-z`, `0-9`, or a space that is not a single space between two
    /// groups of four.
    #[error(
        "character {character:?} at position {position} is not allowed: an account number \
         contains only letters A-Z, digits 0-9 and single spaces between groups of four"
    )]
    BadCharacter {
        /// 1-based, counted in characters of the input after leading and
        /// trailing whitespace is trimmed.
        position: usize,
        /// The offending character.
        character: char,
    },

    /// The country code is not two letters `A-Z`.
    #[error("country code {found:?} is invalid: it must be two letters A-Z")]
    BadCountryCode {
        /// The country code as given.
        found: String,
    },

    /// Positions 3 and 4 (the check digits) are not two digits.
    #[error("check digits {found:?} are invalid: characters 3 and 4 must be two digits 0-9")]
    CheckDigitsNotNumeric {
        /// The two characters found in place of the check digits.
        found: String,
    },

    /// The bank code is not four letters `A-Z`.
    #[error("bank code {found:?} is invalid: it must be four letters A-Z")]
    BadBankCode {
        /// The bank code as given.
        found: String,
    },

    /// The branch code is not four digits (`0000`-`9999`).
    #[error("branch code {found:?} is invalid: it must be four digits, 0000 to 9999")]
    BadBranchCode {
        /// The branch code as given.
        found: String,
    },

    /// The account serial is not ten digits (`0000000000`-`9999999999`).
    #[error("account serial {found:?} is invalid: it must be ten digits, 0000000000 to 9999999999")]
    BadSerial {
        /// The serial as given.
        found: String,
    },

    /// The ISO 7064 MOD 97-10 check failed: the check digits do not match the
    /// rest of the number, typically a mistyped or swapped character.
    #[error(
        "check digits {found:02} do not match the rest of the account number, which requires \
         {expected:02}: a character is probably mistyped or two characters are swapped"
    )]
    BadCheckDigits {
        /// The check digits the rest of the number (as given) requires.
        expected: u8,
        /// The check digits found in the number.
        found: u8,
    },

    /// A ledger account id that no account number maps to (`>= 10^14`).
    #[error(
        "ledger account id {id} has no account number: customer account ids are below \
         100000000000000 (10^14, branch 0000-9999 times 10^10 plus a ten-digit serial)"
    )]
    AccountIdOutOfRange {
        /// The rejected id.
        id: u128,
    },

    /// Branch `0000` with serial `0000000000` would be ledger account id 0,
    /// which the ledger reserves as invalid.
    #[error(
        "branch 0000 with serial 0000000000 would be ledger account id 0, \
         which is never a valid account"
    )]
    AccountIdZero,

    /// The number is well formed but belongs to another country/bank prefix.
    #[error(
        "the account number belongs to country {} bank {}, not to this bank \
         (country {} bank {})",
        found.country(), found.bank(), expected.country(), expected.bank()
    )]
    UnexpectedPrefix {
        /// The prefix that was required.
        expected: BankPrefix,
        /// The prefix the number actually has.
        found: BankPrefix,
    },
}

impl AccountNumberError {
    /// A stable snake_case identifier for this kind of failure.
    ///
    /// These strings are part of the public contract: they never change for
    /// an existing variant.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::WrongLength { .. } => "wrong_length",
            Self::BadCharacter { .. } => "bad_character",
            Self::BadCountryCode { .. } => "bad_country_code",
            Self::CheckDigitsNotNumeric { .. } => "check_digits_not_numeric",
            Self::BadBankCode { .. } => "bad_bank_code",
            Self::BadBranchCode { .. } => "bad_branch_code",
            Self::BadSerial { .. } => "bad_serial",
            Self::BadCheckDigits { .. } => "bad_check_digits",
            Self::AccountIdOutOfRange { .. } => "account_id_out_of_range",
            Self::AccountIdZero => "account_id_zero",
            Self::UnexpectedPrefix { .. } => "unexpected_prefix",
        }
    }
}
