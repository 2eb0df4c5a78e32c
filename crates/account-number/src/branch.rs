//! Branch codes and the mapping between (branch, serial) and ledger account
//! ids.

use std::fmt;
use std::str::FromStr;

use crate::AccountNumberError;

/// Number of account serials per branch: `10^10`.
///
/// `account_id = branch * SERIALS_PER_BRANCH + serial`.
pub const SERIALS_PER_BRANCH: u128 = 10_000_000_000;

/// The largest account serial, `9_999_999_999` (ten digits).
pub const SERIAL_MAX: u64 = 9_999_999_999;

/// Serials `0..=999` of every branch are reserved for the branch's own
/// internal accounts (cash, fees, clearing, ...); customer accounts start at
/// [`FIRST_CUSTOMER_SERIAL`].
///
/// The mapping itself accepts reserved serials (internal accounts have
/// account numbers too); this constant is the convention account-opening code
/// must follow when it allocates serials.
pub const SERIAL_RESERVED_MAX: u64 = 999;

/// The first serial available to customer accounts (`SERIAL_RESERVED_MAX + 1`).
pub const FIRST_CUSTOMER_SERIAL: u64 = SERIAL_RESERVED_MAX + 1;

/// Exclusive upper bound of ledger account ids that have an account number:
/// `10^14` (`10_000 branches * 10^10 serials`). Larger ids are not customer
/// account ids.
pub const ACCOUNT_ID_LIMIT: u128 = 100_000_000_000_000;

/// A four-digit branch code, `0000` to `9999`.
///
/// `0000` is a valid branch code; note only that branch `0000` serial `0` maps
/// to ledger account id 0, which is never a valid account (see
/// [`AccountNumberError::AccountIdZero`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BranchCode(u16);

impl BranchCode {
    /// The largest branch code, `9999`.
    pub const MAX: Self = Self(9_999);

    /// # Errors
    ///
    /// [`AccountNumberError::BadBranchCode`] if `code > 9999`.
    pub fn new(code: u16) -> Result<Self, AccountNumberError> {
        if code <= Self::MAX.0 {
            Ok(Self(code))
        } else {
            Err(AccountNumberError::BadBranchCode {
                found: code.to_string(),
            })
        }
    }

    /// The code as a number, `0..=9999`.
    #[must_use]
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl From<BranchCode> for u16 {
    fn from(code: BranchCode) -> Self {
        code.0
    }
}

impl fmt::Display for BranchCode {
    /// Four digits, zero-padded: `0042`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

impl FromStr for BranchCode {
    type Err = AccountNumberError;

    /// Exactly four ASCII digits (`"0042"`), the same form `Display` writes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || AccountNumberError::BadBranchCode {
            found: s.to_owned(),
        };
        let digits: &[u8; 4] = s.as_bytes().try_into().map_err(|_| bad())?;
        let value = crate::number::decimal(digits).ok_or_else(bad)?;
        u16::try_from(value)
            .ok()
            .and_then(|v| Self::new(v).ok())
            .ok_or_else(bad)
    }
}

/// The ledger account id of `serial` at `branch`:
/// `branch * 10^10 + serial`.
///
/// This is the raw mapping: it accepts branch `0000` serial `0`, which gives
/// id 0, never a valid ledger account. [`AccountNumber::new`] rejects that
/// combination.
///
/// [`AccountNumber::new`]: crate::AccountNumber::new
///
/// # Errors
///
/// [`AccountNumberError::BadSerial`] if `serial > SERIAL_MAX`.
pub fn account_id(branch: BranchCode, serial: u64) -> Result<u128, AccountNumberError> {
    if serial > SERIAL_MAX {
        return Err(AccountNumberError::BadSerial {
            found: serial.to_string(),
        });
    }
    Ok(raw_account_id(branch, serial))
}

/// `branch * 10^10 + serial`, for a serial already known to be in range.
pub(crate) fn raw_account_id(branch: BranchCode, serial: u64) -> u128 {
    u128::from(branch.0) * SERIALS_PER_BRANCH + u128::from(serial)
}

/// The branch that owns ledger account id `id` (`id / 10^10`), or `None` if
/// `id >= 10^14` (not a customer account id).
///
/// Id 0 yields `Some(branch 0000)`; callers that route ledger ids must already
/// have rejected 0 and `u128::MAX` as invalid.
#[must_use]
pub fn branch_of_account_id(id: u128) -> Option<BranchCode> {
    split_account_id(id).map(|(branch, _)| branch)
}

/// Splits ledger account id `id` into its branch (`id / 10^10`) and serial
/// (`id % 10^10`), or `None` if `id >= 10^14`.
#[must_use]
pub fn split_account_id(id: u128) -> Option<(BranchCode, u64)> {
    if id >= ACCOUNT_ID_LIMIT {
        return None;
    }
    let branch = u16::try_from(id / SERIALS_PER_BRANCH).ok()?;
    let serial = u64::try_from(id % SERIALS_PER_BRANCH).ok()?;
    Some((BranchCode(branch), serial))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn b(code: u16) -> BranchCode {
        BranchCode::new(code).unwrap()
    }

    #[test]
    fn constants_are_consistent() {
        assert_eq!(u128::from(SERIAL_MAX) + 1, SERIALS_PER_BRANCH);
        assert_eq!(
            ACCOUNT_ID_LIMIT,
            (u128::from(BranchCode::MAX.get()) + 1) * SERIALS_PER_BRANCH
        );
        assert_eq!(FIRST_CUSTOMER_SERIAL, 1000);
    }

    #[test]
    fn branch_code_range() {
        assert_eq!(b(0).get(), 0);
        assert_eq!(b(9999), BranchCode::MAX);
        let err = BranchCode::new(10_000).unwrap_err();
        assert_eq!(err.code(), "bad_branch_code");
        assert!(err.to_string().contains("\"10000\""), "{err}");
        assert!(BranchCode::new(u16::MAX).is_err());
    }

    #[test]
    fn branch_code_display_and_parse() {
        assert_eq!(b(0).to_string(), "0000");
        assert_eq!(b(42).to_string(), "0042");
        assert_eq!(b(9999).to_string(), "9999");
        assert_eq!("0042".parse::<BranchCode>().unwrap(), b(42));
        assert_eq!("9999".parse::<BranchCode>().unwrap(), b(9999));
        for bad in ["", "42", "12345", "00a1", "+042", " 042", "٠٠٠١"] {
            let err = bad.parse::<BranchCode>().unwrap_err();
            assert_eq!(
                err,
                AccountNumberError::BadBranchCode { found: bad.into() },
                "{bad:?}"
            );
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn mapping_examples() {
        assert_eq!(account_id(b(0), 1).unwrap(), 1);
        assert_eq!(account_id(b(1), 1000).unwrap(), 10_000_001_000);
        assert_eq!(
            account_id(b(9999), SERIAL_MAX).unwrap(),
            ACCOUNT_ID_LIMIT - 1
        );
        assert_eq!(account_id(b(0), 0).unwrap(), 0, "raw mapping allows id 0");
        let err = account_id(b(1), SERIAL_MAX + 1).unwrap_err();
        assert_eq!(err.code(), "bad_serial");
        assert!(err.to_string().contains("10000000000"), "{err}");
    }

    #[test]
    fn branch_of_ids() {
        assert_eq!(branch_of_account_id(1), Some(b(0)));
        assert_eq!(branch_of_account_id(SERIALS_PER_BRANCH - 1), Some(b(0)));
        assert_eq!(branch_of_account_id(SERIALS_PER_BRANCH), Some(b(1)));
        assert_eq!(branch_of_account_id(10_000_001_000), Some(b(1)));
        assert_eq!(branch_of_account_id(ACCOUNT_ID_LIMIT - 1), Some(b(9999)));
        assert_eq!(branch_of_account_id(ACCOUNT_ID_LIMIT), None);
        assert_eq!(branch_of_account_id(u128::MAX), None);
        assert_eq!(split_account_id(4_200_000_001_234), Some((b(420), 1_234)));
    }
}
