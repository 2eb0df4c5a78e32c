//! The bank's numbering plan: account ids, the chart of accounts, transfer codes and
//! currencies, plus integer-only formatting of amounts.
//!
//! Account ids follow the scheme of `corebank-account-number`:
//! `id = branch_code * 10^10 + serial`, where serials `0..=999` of every branch are the
//! branch's internal accounts and customer accounts start at serial 1,000.

use corebank_account_number::BranchCode;
pub use corebank_account_number::{FIRST_CUSTOMER_SERIAL, SERIAL_MAX, SERIAL_RESERVED_MAX};

/// The largest four-digit branch code.
pub const BRANCH_CODE_MAX: u16 = BranchCode::MAX.get();

/// The ledger account id of `serial` at `branch`, or `None` when the branch code has
/// more than four digits, the serial more than ten, or the id would be 0.
pub fn account_id(branch: u16, serial: u64) -> Option<u128> {
    let branch = BranchCode::new(branch).ok()?;
    corebank_account_number::account_id(branch, serial)
        .ok()
        .filter(|id| *id != 0)
}

/// Splits a ledger account id into (branch code, serial); `None` for ids outside the
/// scheme (0 or at least 10^14).
pub fn split_account_id(id: u128) -> Option<(u16, u64)> {
    if id == 0 {
        return None;
    }
    corebank_account_number::split_account_id(id).map(|(branch, serial)| (branch.get(), serial))
}

/// The chart of accounts: `Account::code` values.
pub mod account_code {
    /// Cash in the vault: the bank's side of money entering or leaving the bank. It has
    /// no balance flags and goes "negative" (debits above credits) as deposits come in.
    pub const CASH: u16 = 1;
    /// Fee income of a branch.
    pub const FEE_INCOME: u16 = 2;
    /// Card settlement: where card authorisations are held and captured.
    pub const CARD_SETTLEMENT: u16 = 3;
    /// Bill payables: money owed to outside billers (utilities, telecoms, ...).
    pub const BILL_PAYABLES: u16 = 4;
    /// A customer's current (checking) account; cannot be overdrawn.
    pub const CURRENT: u16 = 10;
    /// A customer's savings account; cannot be overdrawn.
    pub const SAVINGS: u16 = 11;

    /// A short name for an account code (`"unknown"` for others).
    pub const fn name(code: u16) -> &'static str {
        match code {
            CASH => "cash",
            FEE_INCOME => "fee_income",
            CARD_SETTLEMENT => "card_settlement",
            BILL_PAYABLES => "bill_payables",
            CURRENT => "current",
            SAVINGS => "savings",
            _ => "unknown",
        }
    }
}

/// Why money moved: `Transfer::code` values.
pub mod transfer_code {
    /// Cash paid in at a branch or ATM.
    pub const DEPOSIT: u16 = 1;
    /// Cash taken out at a branch or ATM.
    pub const WITHDRAWAL: u16 = 2;
    /// A person-to-person payment.
    pub const PAYMENT: u16 = 3;
    /// A card authorisation hold (a pending transfer).
    pub const CARD_HOLD: u16 = 4;
    /// Capture of a hold. The ledger makes a post take the code of its pending transfer
    /// (a post or void may only carry 0 or the same code), so captured holds are stored
    /// with [`CARD_HOLD`] and told apart by their `post_pending_transfer` flag; this
    /// code is kept for edges (statements, reports) that name the step.
    pub const HOLD_CAPTURE: u16 = 5;
    /// Release of a hold (a void); stored with [`CARD_HOLD`] for the same reason.
    pub const HOLD_RELEASE: u16 = 6;
    /// A fee charged by the bank.
    pub const FEE: u16 = 7;
    /// A salary paid in.
    pub const SALARY: u16 = 8;
    /// A bill paid to an outside biller.
    pub const BILL_PAYMENT: u16 = 9;
    /// A transfer between a customer's own accounts (current and savings).
    pub const OWN_ACCOUNTS: u16 = 10;

    /// A short name for a transfer code (`"unknown"` for others).
    pub const fn name(code: u16) -> &'static str {
        match code {
            DEPOSIT => "deposit",
            WITHDRAWAL => "withdrawal",
            PAYMENT => "payment",
            CARD_HOLD => "card_hold",
            HOLD_CAPTURE => "hold_capture",
            HOLD_RELEASE => "hold_release",
            FEE => "fee",
            SALARY => "salary",
            BILL_PAYMENT => "bill_payment",
            OWN_ACCOUNTS => "own_accounts",
            _ => "unknown",
        }
    }
}

/// The internal accounts every branch keeps, one per currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InternalAccount {
    Cash,
    FeeIncome,
    CardSettlement,
    BillPayables,
}

impl InternalAccount {
    pub const ALL: [Self; 4] = [
        Self::Cash,
        Self::FeeIncome,
        Self::CardSettlement,
        Self::BillPayables,
    ];

    /// The most currencies a branch can keep internal accounts for.
    pub const CURRENCIES_MAX: usize = 100;

    /// The account's code in the chart of accounts.
    pub const fn code(self) -> u16 {
        match self {
            Self::Cash => account_code::CASH,
            Self::FeeIncome => account_code::FEE_INCOME,
            Self::CardSettlement => account_code::CARD_SETTLEMENT,
            Self::BillPayables => account_code::BILL_PAYABLES,
        }
    }

    /// The serial of this account in the currency with slot `currency_index`
    /// ([`Currency::slot`]): `code * 100 + slot` (cash in EUR, slot 0, is serial 100; fee
    /// income in USD, slot 1, is 201), always within the reserved serials, and the same
    /// serial corebank-banking gives the branch's own internal accounts.
    pub const fn serial(self, currency_index: usize) -> Option<u64> {
        if currency_index >= Self::CURRENCIES_MAX {
            return None;
        }
        Some(self.code() as u64 * 100 + currency_index as u64)
    }

    /// The ledger account id of this internal account at `branch`.
    pub fn id(self, branch: u16, currency_index: usize) -> Option<u128> {
        match self.serial(currency_index) {
            Some(serial) => account_id(branch, serial),
            None => None,
        }
    }
}

/// Currencies come from `corebank-money` (ISO 4217: the number is the ledger).
pub use corebank_money::Currency;

/// `amount` minor units of `currency` for people to read, with digit grouping:
/// `1,234.56`.
pub fn display_amount(currency: Currency, amount: u128) -> String {
    format_minor_units(amount, u32::from(currency.exponent))
}

/// Digits of `value` grouped by thousands: `1234567` → `"1,234,567"`.
pub fn group_digits(value: u128) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// An amount of minor units as a grouped decimal string with `exponent` decimals, by
/// integer arithmetic only: `format_minor_units(123_456, 2)` → `"1,234.56"`.
pub fn format_minor_units(amount: u128, exponent: u32) -> String {
    match 10u128.checked_pow(exponent) {
        Some(unit) if exponent > 0 => {
            let width = exponent as usize;
            format!("{}.{:0width$}", group_digits(amount / unit), amount % unit)
        }
        // 10^exponent beyond u128: every amount is below one major unit.
        None => format!("0.{amount:0width$}", width = exponent as usize),
        Some(_) => group_digits(amount),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_round_trip() {
        assert_eq!(account_id(42, 1_000), Some(420_000_001_000));
        assert_eq!(split_account_id(420_000_001_000), Some((42, 1_000)));
        assert_eq!(account_id(0, 0), None);
        assert_eq!(account_id(10_000, 1), None);
        assert_eq!(account_id(1, SERIAL_MAX + 1), None);
        assert_eq!(split_account_id(0), None);
        assert_eq!(split_account_id(100_000_000_000_000), None);
        assert_eq!(
            account_id(9_999, SERIAL_MAX).and_then(split_account_id),
            Some((9_999, SERIAL_MAX))
        );
    }

    #[test]
    fn internal_accounts_use_reserved_serials() {
        for kind in InternalAccount::ALL {
            for currency in [0, 1, 99] {
                let serial = kind.serial(currency).unwrap();
                assert!(serial <= SERIAL_RESERVED_MAX);
            }
            assert_eq!(kind.serial(100), None);
        }
        assert_eq!(InternalAccount::Cash.id(3, 1), Some(30_000_000_101));
        assert_eq!(InternalAccount::FeeIncome.serial(0), Some(200));
    }

    #[test]
    fn amounts_format_with_integers() {
        assert_eq!(format_minor_units(0, 2), "0.00");
        assert_eq!(format_minor_units(5, 2), "0.05");
        assert_eq!(format_minor_units(123_456, 2), "1,234.56");
        assert_eq!(format_minor_units(100_000_000, 2), "1,000,000.00");
        assert_eq!(format_minor_units(1_234, 0), "1,234");
        assert_eq!(format_minor_units(1_234, 3), "1.234");
        assert_eq!(display_amount(Currency::EUR, u128::MAX).len(), 52);
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1_000), "1,000");
        assert_eq!(format_minor_units(7, 40), format!("0.{:040}", 7));
    }

    #[test]
    fn currencies_by_code() {
        assert_eq!(Currency::from_numeric(978), Ok(Currency::EUR));
        assert_eq!(Currency::from_alpha("gbp"), Ok(Currency::GBP));
        assert!(Currency::from_alpha("XXX").is_err());
        assert_eq!(Currency::JPY.minor_per_major(), 1);
        assert_eq!(account_code::name(account_code::SAVINGS), "savings");
        assert_eq!(transfer_code::name(transfer_code::SALARY), "salary");
    }
}
