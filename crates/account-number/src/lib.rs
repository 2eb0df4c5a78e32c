//! Human-facing account numbers for corebank: IBAN-style strings and their
//! mapping to the ledger's `u128` account ids.
//!
//! # Format
//!
//! The electronic form has 22 characters, the printed form groups them by
//! four (`XC68 CORE 0001 0000 0010 00`):
//!
//! ```text
//! CC kk BBBB DDDD SSSSSSSSSS
//! CC          country code, two letters A-Z (default XC, a user-assigned
//!             ISO 3166 code: corebank never pretends to be a real IBAN registry)
//! kk          check digits, ISO 7064 MOD 97-10 exactly as IBAN (ISO 13616)
//! BBBB        bank code, four letters A-Z (default CORE)
//! DDDD        branch code, four digits 0000-9999
//! SSSSSSSSSS  account serial within the branch, ten digits
//! ```
//!
//! Check digits: move the first four characters to the end, replace letters by
//! numbers (`A` = 10 ... `Z` = 35); the number must be 1 modulo 97. They are
//! computed as `98 - (BBAN ‖ CC ‖ "00") mod 97`, two digits zero-padded. All
//! arithmetic is done digit by digit on `u64`, without big integers.
//!
//! # Mapping to ledger account ids
//!
//! `account_id = branch * 10^10 + serial`, so the owning branch is readable
//! from the id alone ([`branch_of_account_id`]): this is how any process
//! routes an account to its branch. Ids `>= 10^14` ([`ACCOUNT_ID_LIMIT`]) have
//! no account number.
//!
//! # Invariants
//!
//! - The ledger treats ids 0 and `u128::MAX` as invalid. `u128::MAX` is out of
//!   range; branch `0000` serial `0` would be id 0, so [`AccountNumber`]
//!   rejects it ([`AccountNumberError::AccountIdZero`]). Branch `0000` is
//!   otherwise a valid branch.
//! - Serials `0..=999` ([`SERIAL_RESERVED_MAX`]) are reserved for each
//!   branch's internal accounts (cash, fees, clearing); customer accounts
//!   start at [`FIRST_CUSTOMER_SERIAL`].
//! - Every failure has its own [`AccountNumberError`] variant with a stable
//!   snake_case [`code`](AccountNumberError::code).
//!
//! # Example
//!
//! ```
//! use corebank_account_number::{AccountNumber, BankPrefix, BranchCode};
//!
//! let branch = BranchCode::new(1)?;
//! let number = AccountNumber::new(BankPrefix::default(), branch, 1_000)?;
//! assert_eq!(number.to_string(), "XC68CORE00010000001000");
//! assert_eq!(number.to_printed(), "XC68 CORE 0001 0000 0010 00");
//! assert_eq!(number.account_id(), 10_000_001_000);
//!
//! let parsed = AccountNumber::parse("xc68 core 0001 0000 0010 00")?;
//! assert_eq!(parsed, number);
//! assert_eq!(
//!     corebank_account_number::branch_of_account_id(parsed.account_id()),
//!     Some(branch)
//! );
//!
//! let typo = AccountNumber::parse("XC68 CORE 0001 0000 0010 01").unwrap_err();
//! assert_eq!(typo.code(), "bad_check_digits");
//! # Ok::<(), corebank_account_number::AccountNumberError>(())
//! ```

mod branch;
mod error;
mod mod97;
mod number;
mod prefix;

pub use branch::{
    ACCOUNT_ID_LIMIT, BranchCode, FIRST_CUSTOMER_SERIAL, SERIAL_MAX, SERIAL_RESERVED_MAX,
    SERIALS_PER_BRANCH, account_id, branch_of_account_id, split_account_id,
};
pub use error::AccountNumberError;
pub use number::{AccountNumber, ELECTRONIC_LENGTH};
pub use prefix::BankPrefix;
