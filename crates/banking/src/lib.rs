//! # corebank-banking
//!
//! Banking operations in the words of a bank (account numbers, currencies, decimal
//! amounts, idempotency keys) translated into ledger events, and ledger results
//! translated back into errors a person understands. Pure: no I/O, no clock, no
//! randomness; the server supplies ids for calls without an idempotency key.
//!
//! The chart of accounts of a branch (docs/banking.md):
//!
//! | serial | account | code |
//! |---|---|---|
//! | 100 + slot | cash (vault) in the currency with that slot | 1 |
//! | 200 + slot | fee income | 2 |
//! | 300 + slot | holds in settlement (credit side of card-style holds) | 3 |
//! | 1000 to 8 999 999 999 | customer accounts (current: code 10, savings: code 11) | 10, 11 |
//! | 9 000 000 000 + other branch * 100 + slot | clearing account for the other branch | 20 |
//!
//! where `slot` is the currency's fixed slot in [`corebank_money::CURRENCIES`].
//!
//! Customer serials stop below [`CLEARING_SERIAL_BASE`]: [`Branch::customer_account`]
//! refuses any serial outside [`FIRST_CUSTOMER_SERIAL`]`..=`[`CUSTOMER_SERIAL_MAX`], so
//! whatever allocates customer serials runs out (`customer_serials_exhausted`) before
//! it can reach a clearing account.
//!
//! ## Clearing accounts
//!
//! A branch keeps, per other branch and currency, one clearing account: the branch's
//! position towards the other branch in that currency. A cross-branch transfer
//! (crate `corebank-clearing`) credits the source branch's clearing account for the
//! destination ([`transfer_code::CROSS_BRANCH_OUT`], pending, then posted) and debits
//! the destination branch's clearing account for the source
//! ([`transfer_code::CROSS_BRANCH_IN`]). So `clearing_A(B).credits_posted` is what A
//! sent to B and `clearing_A(B).debits_posted` is what A received from B; the two
//! accounts of a pair mirror each other. Clearing accounts have no balance-limit flags
//! (a position may go either way) and keep their balance history. Their serial
//! `9_000_000_000 + other * 100 + slot` is a valid account number of the owning branch,
//! so the id routes like any other; [`clearing_counterparty`] reads the other branch and
//! the currency back from an id.

use corebank_account_number::{
    AccountNumber, AccountNumberError, BankPrefix, BranchCode, FIRST_CUSTOMER_SERIAL,
};
use corebank_ledger::{Account, AccountFlags, CreateTransferResult, Transfer, TransferFlags};
use corebank_money::{Currency, MoneyError};

/// Account codes: an account's type in the chart of accounts.
pub mod account_code {
    pub const CASH: u16 = 1;
    pub const FEE_INCOME: u16 = 2;
    pub const HOLDS_IN_SETTLEMENT: u16 = 3;
    pub const CURRENT: u16 = 10;
    pub const SAVINGS: u16 = 11;
    /// A clearing account: the branch's position towards another branch in one
    /// currency (see [`clearing_account`](super::clearing_account)).
    pub const CLEARING: u16 = 20;
}

/// Transfer codes: why money moved.
pub mod transfer_code {
    pub const DEPOSIT: u16 = 1;
    pub const WITHDRAWAL: u16 = 2;
    pub const PAYMENT: u16 = 3;
    pub const HOLD: u16 = 4;
    pub const FEE: u16 = 7;
    /// The source leg of a cross-branch transfer: a pending transfer from the customer
    /// to the source branch's clearing account for the destination branch. Its post and
    /// its void are sent with code 0 and so are stored with this code too (the ledger
    /// gives a post or void the code of its pending transfer); they are told apart by
    /// their `post_pending_transfer` / `void_pending_transfer` flag.
    pub const CROSS_BRANCH_OUT: u16 = 20;
    /// The destination leg of a cross-branch transfer: posted, from the destination
    /// branch's clearing account for the source branch to the beneficiary.
    pub const CROSS_BRANCH_IN: u16 = 21;

    /// A short description of a transfer code, for statements.
    pub const fn describe(code: u16) -> &'static str {
        match code {
            DEPOSIT => "cash deposit",
            WITHDRAWAL => "cash withdrawal",
            PAYMENT => "payment",
            HOLD => "hold",
            FEE => "fee",
            CROSS_BRANCH_OUT => "payment to another branch",
            CROSS_BRANCH_IN => "payment from another branch",
            _ => "transfer",
        }
    }
}

/// The first serial of the clearing accounts: `9_000_000_000`. Customer serials stay
/// below it (at most [`CUSTOMER_SERIAL_MAX`]).
pub const CLEARING_SERIAL_BASE: u64 = 9_000_000_000;

/// The largest serial a customer account may have.
pub const CUSTOMER_SERIAL_MAX: u64 = CLEARING_SERIAL_BASE - 1;

// The clearing range fits the ten-digit serials and lies above every customer serial.
const _: () = assert!(
    CLEARING_SERIAL_BASE + BranchCode::MAX.get() as u64 * 100 + 99
        <= corebank_account_number::SERIAL_MAX
);
const _: () = assert!(FIRST_CUSTOMER_SERIAL < CUSTOMER_SERIAL_MAX);

/// The currency with this slot, if one has it.
fn currency_of_slot(slot: u64) -> Option<Currency> {
    corebank_money::CURRENCIES
        .iter()
        .find(|currency| u64::from(currency.slot) == slot)
        .copied()
}

/// The serial of `own`'s clearing account for `other` in `currency`:
/// `9_000_000_000 + other * 100 + slot`.
pub fn clearing_serial(other: BranchCode, currency: Currency) -> u64 {
    CLEARING_SERIAL_BASE + u64::from(other.get()) * 100 + u64::from(currency.slot)
}

/// The ledger id of `own`'s clearing account for `other` in `currency`.
///
/// `own == other` gives an id too, but no such account is ever created: transfers
/// inside one branch do not go through clearing.
pub fn clearing_account_id(own: BranchCode, other: BranchCode, currency: Currency) -> u128 {
    // The serial is at most 9_000_999_999 (asserted above): always a valid serial.
    corebank_account_number::account_id(own, clearing_serial(other, currency)).unwrap_or(0)
}

/// The account to create at `own` for its position towards `other` in `currency`:
/// code [`account_code::CLEARING`], no balance-limit flags, balance history on,
/// `user_data_32` = the other branch's code (for queries).
pub fn clearing_account(own: BranchCode, other: BranchCode, currency: Currency) -> Account {
    Account {
        id: clearing_account_id(own, other, currency),
        user_data_32: u32::from(other.get()),
        ledger: currency.numeric,
        code: account_code::CLEARING,
        flags: AccountFlags::HISTORY,
        ..Default::default()
    }
}

/// The other branch and the currency of a clearing account id (its owner is
/// [`corebank_account_number::branch_of_account_id`]); `None` when `id` is not a
/// clearing account id.
pub fn clearing_counterparty(id: u128) -> Option<(BranchCode, Currency)> {
    let (_, serial) = corebank_account_number::split_account_id(id)?;
    let offset = serial.checked_sub(CLEARING_SERIAL_BASE)?;
    let other = u16::try_from(offset / 100).ok()?;
    let other = BranchCode::new(other).ok()?;
    let currency = currency_of_slot(offset % 100)?;
    Some((other, currency))
}

/// Is `serial` one a customer account may have?
pub const fn is_customer_serial(serial: u64) -> bool {
    FIRST_CUSTOMER_SERIAL <= serial && serial <= CUSTOMER_SERIAL_MAX
}

/// The branch's internal accounts, one of each per currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InternalAccount {
    Cash,
    FeeIncome,
    HoldsInSettlement,
}

impl InternalAccount {
    pub const ALL: [Self; 3] = [Self::Cash, Self::FeeIncome, Self::HoldsInSettlement];

    pub const fn code(self) -> u16 {
        match self {
            Self::Cash => account_code::CASH,
            Self::FeeIncome => account_code::FEE_INCOME,
            Self::HoldsInSettlement => account_code::HOLDS_IN_SETTLEMENT,
        }
    }

    /// Its serial within the branch: `code * 100 + currency slot`.
    pub fn serial(self, currency: Currency) -> u64 {
        u64::from(self.code()) * 100 + u64::from(currency.slot)
    }
}

/// A customer account product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Product {
    Current,
    Savings,
}

impl Product {
    pub const fn code(self) -> u16 {
        match self {
            Self::Current => account_code::CURRENT,
            Self::Savings => account_code::SAVINGS,
        }
    }

    pub const fn from_code(code: u16) -> Option<Self> {
        match code {
            account_code::CURRENT => Some(Self::Current),
            account_code::SAVINGS => Some(Self::Savings),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Savings => "savings",
        }
    }

    pub fn parse(name: &str) -> Result<Self, BankingError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "current" => Ok(Self::Current),
            "savings" => Ok(Self::Savings),
            _ => Err(BankingError::UnknownProduct {
                product: name.chars().take(40).collect(),
            }),
        }
    }
}

/// Why a banking operation was refused. Each has a stable code and a sentence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BankingError {
    #[error(transparent)]
    AccountNumber(#[from] AccountNumberError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("unknown product \"{product}\" (current or savings)")]
    UnknownProduct { product: String },
    #[error(
        "account {account} belongs to branch {branch}, not to this branch ({this_branch}); transfers across branches are not available yet"
    )]
    OtherBranch {
        account: String,
        branch: String,
        this_branch: String,
    },
    #[error("account {account} does not exist")]
    AccountNotFound { account: String },
    #[error("account {account} is not a customer account")]
    NotACustomerAccount { account: String },
    #[error("account {account} is closed")]
    AccountClosed { account: String },
    #[error("insufficient funds in account {account}")]
    InsufficientFunds { account: String },
    #[error(
        "the accounts hold different currencies ({from} and {to}); money cannot move between them directly"
    )]
    CurrencyMismatch { from: String, to: String },
    #[error("the two accounts are the same")]
    SameAccount,
    #[error("this idempotency key was already used for a different request")]
    IdempotencyKeyReused,
    #[error(
        "a request with this idempotency key failed earlier (it is burnt); send a new key to try again"
    )]
    IdempotencyKeyFailedBefore,
    #[error("the idempotency key must be 1 to 128 visible characters")]
    InvalidIdempotencyKey,
    #[error("the customer id must be 1 to 128 visible characters")]
    InvalidCustomerId,
    #[error("the hold was already captured")]
    HoldAlreadyCaptured,
    #[error("the hold was already released")]
    HoldAlreadyReleased,
    #[error("the hold expired; its funds were released")]
    HoldExpired,
    #[error("no such hold")]
    HoldNotFound,
    #[error("the amount is larger than the hold")]
    ExceedsHold,
    #[error(
        "the bank's fraud checks declined this transfer from account {account}; nothing was moved"
    )]
    DeclinedByRisk { account: String },
    #[error("account {account} is frozen for a fraud review and cannot send money")]
    AccountFrozen { account: String },
    #[error(
        "the transfer is held for a fraud review; only an analyst's decision releases or rejects it"
    )]
    HeldForReview,
    #[error(
        "the fraud checks could not run and this branch refuses transfers without them; retry later with the same key"
    )]
    RiskCheckUnavailable,
    #[error("the ledger refused the operation: {0}")]
    Refused(&'static str),
}

impl BankingError {
    /// The stable snake_case code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AccountNumber(_) => "invalid_account_number",
            Self::Money(error) => error.code(),
            Self::UnknownProduct { .. } => "unknown_product",
            Self::OtherBranch { .. } => "other_branch",
            Self::AccountNotFound { .. } => "account_not_found",
            Self::NotACustomerAccount { .. } => "not_a_customer_account",
            Self::AccountClosed { .. } => "account_closed",
            Self::InsufficientFunds { .. } => "insufficient_funds",
            Self::CurrencyMismatch { .. } => "currency_mismatch",
            Self::SameAccount => "same_account",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::IdempotencyKeyFailedBefore => "idempotency_key_failed_before",
            Self::InvalidIdempotencyKey => "invalid_idempotency_key",
            Self::InvalidCustomerId => "invalid_customer_id",
            Self::HoldAlreadyCaptured => "hold_already_captured",
            Self::HoldAlreadyReleased => "hold_already_released",
            Self::HoldExpired => "hold_expired",
            Self::HoldNotFound => "hold_not_found",
            Self::DeclinedByRisk { .. } => "declined_by_risk",
            Self::AccountFrozen { .. } => "account_frozen",
            Self::HeldForReview => "held_for_review",
            Self::RiskCheckUnavailable => "risk_check_unavailable",
            Self::ExceedsHold => "exceeds_hold",
            Self::Refused(code) => code,
        }
    }
}

/// What an operation does with money, for deriving its transfer id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Deposit,
    Withdraw,
    Transfer,
    TransferFee,
    PlaceHold,
    CaptureHold,
    ReleaseHold,
    /// An analyst's release or rejection of a transfer held by the fraud screen.
    Review,
}

impl Operation {
    const fn tag(self) -> &'static [u8] {
        match self {
            Self::Deposit => b"deposit",
            Self::Withdraw => b"withdraw",
            Self::Transfer => b"transfer",
            Self::TransferFee => b"transfer-fee",
            Self::PlaceHold => b"place-hold",
            Self::CaptureHold => b"capture-hold",
            Self::ReleaseHold => b"release-hold",
            Self::Review => b"review",
        }
    }
}

/// Checks an idempotency key: 1 to 128 visible ASCII characters.
pub fn validate_key(key: &str) -> Result<(), BankingError> {
    let ok = !key.is_empty() && key.len() <= 128 && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(BankingError::InvalidIdempotencyKey)
    }
}

/// The transfer id of an operation with an idempotency key: the same key for the same
/// operation at the same branch always gives the same id, so a retry is the same
/// transfer and the ledger answers it once.
pub fn transfer_id(branch: BranchCode, operation: Operation, key: &str) -> u128 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"corebank/transfer-id/v1\0");
    hasher.update(&branch.get().to_le_bytes());
    hasher.update(operation.tag());
    hasher.update(b"\0");
    hasher.update(key.as_bytes());
    usable_id(hasher.finalize().as_bytes())
}

/// The `user_data_128` that tags a customer's accounts (a hash of the customer id), so
/// `query_accounts` finds them all.
pub fn customer_tag(customer_id: &str) -> Result<u128, BankingError> {
    let ok = !customer_id.is_empty()
        && customer_id.len() <= 128
        && customer_id.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(BankingError::InvalidCustomerId);
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"corebank/customer/v1\0");
    hasher.update(customer_id.as_bytes());
    Ok(usable_id(hasher.finalize().as_bytes()))
}

/// 0 and 2^128-1 are not valid ids; a hash lands there with probability 2^-127.
fn usable_id(hash: &[u8; 32]) -> u128 {
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&hash[..16]);
    match u128::from_le_bytes(bytes) {
        0 => 1,
        u128::MAX => u128::MAX - 1,
        id => id,
    }
}

/// One branch's view of the bank: its code and the bank's number prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Branch {
    pub code: BranchCode,
    pub prefix: BankPrefix,
}

impl Branch {
    pub fn new(code: BranchCode) -> Self {
        Self {
            code,
            prefix: BankPrefix::default(),
        }
    }

    /// Parses an account number and checks that it belongs to this branch.
    pub fn parse_account(&self, text: &str) -> Result<AccountNumber, BankingError> {
        let number = AccountNumber::parse_for(self.prefix, text)?;
        if number.branch() != self.code {
            return Err(BankingError::OtherBranch {
                account: number.to_string(),
                branch: number.branch().to_string(),
                this_branch: self.code.to_string(),
            });
        }
        Ok(number)
    }

    /// The account number of a ledger id of this bank.
    pub fn account_number(&self, id: u128) -> Result<AccountNumber, BankingError> {
        Ok(AccountNumber::from_account_id(self.prefix, id)?)
    }

    /// The ledger id of an internal account.
    pub fn internal_account_id(&self, account: InternalAccount, currency: Currency) -> u128 {
        // serial <= 300 + 99: always a valid serial.
        corebank_account_number::account_id(self.code, account.serial(currency)).unwrap_or(0)
    }

    /// The clearing accounts of this branch towards each of `others` (this branch
    /// itself skipped), for every supported currency.
    pub fn clearing_accounts(&self, others: &[BranchCode]) -> Vec<Account> {
        let mut accounts = Vec::new();
        for other in others.iter().filter(|other| **other != self.code) {
            for currency in corebank_money::CURRENCIES {
                accounts.push(clearing_account(self.code, *other, *currency));
            }
        }
        accounts
    }

    /// Every internal account of the branch, for every supported currency.
    pub fn internal_accounts(&self) -> Vec<Account> {
        let mut accounts = Vec::new();
        for currency in corebank_money::CURRENCIES {
            for kind in InternalAccount::ALL {
                accounts.push(Account {
                    id: self.internal_account_id(kind, *currency),
                    ledger: currency.numeric,
                    code: kind.code(),
                    ..Default::default()
                });
            }
        }
        accounts
    }

    /// A new customer account: it can never be overdrawn and keeps its balance history
    /// (for statements with running balances).
    ///
    /// The serial must lie in `FIRST_CUSTOMER_SERIAL..=CUSTOMER_SERIAL_MAX`; below are
    /// the internal accounts and above the clearing accounts, so a serial outside is
    /// refused (`customer_serials_exhausted`) rather than ever colliding with them.
    pub fn customer_account(
        &self,
        serial: u64,
        customer_tag: u128,
        currency: Currency,
        product: Product,
    ) -> Result<Account, BankingError> {
        if !is_customer_serial(serial) {
            return Err(BankingError::Refused("customer_serials_exhausted"));
        }
        let id = corebank_account_number::account_id(self.code, serial)?;
        Ok(Account {
            id,
            user_data_128: customer_tag,
            ledger: currency.numeric,
            code: product.code(),
            flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::HISTORY,
            ..Default::default()
        })
    }

    /// Cash paid in at the counter: the vault pays the customer.
    pub fn deposit(&self, id: u128, account: &Account, amount: u128) -> Transfer {
        let currency_cash = self.cash_of(account);
        money_move(
            id,
            currency_cash,
            account.id,
            amount,
            account.ledger,
            transfer_code::DEPOSIT,
        )
    }

    /// Cash paid out at the counter.
    pub fn withdraw(&self, id: u128, account: &Account, amount: u128) -> Transfer {
        let currency_cash = self.cash_of(account);
        money_move(
            id,
            account.id,
            currency_cash,
            amount,
            account.ledger,
            transfer_code::WITHDRAWAL,
        )
    }

    /// A payment between two accounts of the branch; with a fee, the payment and the
    /// fee are one linked chain: both happen or neither.
    pub fn transfer(
        &self,
        ids: (u128, u128),
        from: &Account,
        to: &Account,
        amount: u128,
        fee: u128,
    ) -> Result<Vec<Transfer>, BankingError> {
        if from.id == to.id {
            return Err(BankingError::SameAccount);
        }
        let payment = money_move(
            ids.0,
            from.id,
            to.id,
            amount,
            from.ledger,
            transfer_code::PAYMENT,
        );
        if fee == 0 {
            return Ok(vec![payment]);
        }
        let fee_income =
            self.internal_account_id(InternalAccount::FeeIncome, self.currency_of(from)?);
        let fee = money_move(
            ids.1,
            from.id,
            fee_income,
            fee,
            from.ledger,
            transfer_code::FEE,
        );
        Ok(vec![
            Transfer {
                flags: TransferFlags::LINKED,
                ..payment
            },
            fee,
        ])
    }

    /// Reserves funds: a pending transfer towards the holds-in-settlement account.
    pub fn place_hold(
        &self,
        id: u128,
        account: &Account,
        amount: u128,
        timeout_seconds: u32,
    ) -> Result<Transfer, BankingError> {
        let holds = self.internal_account_id(
            InternalAccount::HoldsInSettlement,
            self.currency_of(account)?,
        );
        Ok(Transfer {
            flags: TransferFlags::PENDING,
            timeout: timeout_seconds,
            ..money_move(
                id,
                account.id,
                holds,
                amount,
                account.ledger,
                transfer_code::HOLD,
            )
        })
    }

    /// Captures a hold (all of it when `amount` is `None`).
    pub fn capture_hold(&self, id: u128, hold_id: u128, amount: Option<u128>) -> Transfer {
        Transfer {
            id,
            pending_id: hold_id,
            amount: amount.unwrap_or(0),
            flags: TransferFlags::POST_PENDING_TRANSFER,
            ..Default::default()
        }
    }

    /// Releases a hold.
    pub fn release_hold(&self, id: u128, hold_id: u128) -> Transfer {
        Transfer {
            id,
            pending_id: hold_id,
            flags: TransferFlags::VOID_PENDING_TRANSFER,
            ..Default::default()
        }
    }

    fn cash_of(&self, account: &Account) -> u128 {
        Currency::from_numeric(account.ledger).map_or(0, |currency| {
            self.internal_account_id(InternalAccount::Cash, currency)
        })
    }

    fn currency_of(&self, account: &Account) -> Result<Currency, BankingError> {
        Ok(Currency::from_numeric(account.ledger)?)
    }
}

fn money_move(
    id: u128,
    debit: u128,
    credit: u128,
    amount: u128,
    ledger: u32,
    code: u16,
) -> Transfer {
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger,
        code,
        ..Default::default()
    }
}

/// The balances of a customer account, as the customer sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CustomerBalance {
    /// Credits minus debits that are final.
    pub posted: u128,
    /// Funds on hold (pending debits).
    pub held: u128,
    /// Incoming funds not yet final (pending credits).
    pub incoming: u128,
    /// What the customer can spend: posted minus held.
    pub available: u128,
}

impl CustomerBalance {
    pub fn of(account: &Account) -> Self {
        let posted = account.credits_posted.saturating_sub(account.debits_posted);
        Self {
            posted,
            held: account.debits_pending,
            incoming: account.credits_pending,
            available: posted.saturating_sub(account.debits_pending),
        }
    }
}

/// What an operation's ledger result means for the customer. `Ok(())` for success and
/// for `exists` (the retry of a request that already succeeded).
pub fn interpret(
    result: Option<CreateTransferResult>,
    debit: &str,
    credit: &str,
) -> Result<(), BankingError> {
    use CreateTransferResult as R;
    let Some(result) = result else { return Ok(()) };
    Err(match result {
        R::Exists => return Ok(()),
        R::ExceedsCredits => BankingError::InsufficientFunds {
            account: debit.into(),
        },
        R::DebitAccountNotFound => BankingError::AccountNotFound {
            account: debit.into(),
        },
        R::CreditAccountNotFound => BankingError::AccountNotFound {
            account: credit.into(),
        },
        R::DebitAccountAlreadyClosed => BankingError::AccountClosed {
            account: debit.into(),
        },
        R::CreditAccountAlreadyClosed => BankingError::AccountClosed {
            account: credit.into(),
        },
        R::AccountsMustHaveTheSameLedger => BankingError::CurrencyMismatch {
            from: debit.into(),
            to: credit.into(),
        },
        R::AccountsMustBeDifferent => BankingError::SameAccount,
        R::IdAlreadyFailed => BankingError::IdempotencyKeyFailedBefore,
        R::ExistsWithDifferentFlags
        | R::ExistsWithDifferentDebitAccountId
        | R::ExistsWithDifferentCreditAccountId
        | R::ExistsWithDifferentAmount
        | R::ExistsWithDifferentPendingId
        | R::ExistsWithDifferentUserData128
        | R::ExistsWithDifferentUserData64
        | R::ExistsWithDifferentUserData32
        | R::ExistsWithDifferentTimeout
        | R::ExistsWithDifferentLedger
        | R::ExistsWithDifferentCode => BankingError::IdempotencyKeyReused,
        R::PendingTransferNotFound => BankingError::HoldNotFound,
        R::PendingTransferAlreadyPosted => BankingError::HoldAlreadyCaptured,
        R::PendingTransferAlreadyVoided => BankingError::HoldAlreadyReleased,
        R::PendingTransferExpired => BankingError::HoldExpired,
        R::ExceedsPendingTransferAmount => BankingError::ExceedsHold,
        R::DeclinedByRisk => BankingError::DeclinedByRisk {
            account: debit.into(),
        },
        R::DebitAccountFrozen => BankingError::AccountFrozen {
            account: debit.into(),
        },
        R::PendingTransferHeldForReview => BankingError::HeldForReview,
        R::RiskCheckUnavailable => BankingError::RiskCheckUnavailable,
        other => BankingError::Refused(other.as_str()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use corebank_ledger::Ledger;

    fn branch() -> Branch {
        Branch::new(BranchCode::new(1).unwrap())
    }

    fn eur() -> Currency {
        Currency::from_alpha("EUR").unwrap()
    }

    /// A ledger with the branch's internal accounts and two EUR customers.
    fn bank() -> (Ledger, Account, Account) {
        let branch = branch();
        let mut ledger = Ledger::new();
        assert_eq!(
            ledger
                .create_accounts(1, &branch.internal_accounts())
                .unwrap(),
            vec![]
        );
        let tag = customer_tag("alice").unwrap();
        let alice = branch
            .customer_account(1_000, tag, eur(), Product::Current)
            .unwrap();
        let bob = branch
            .customer_account(1_001, customer_tag("bob").unwrap(), eur(), Product::Savings)
            .unwrap();
        assert_eq!(
            ledger.create_accounts(1_000, &[alice, bob]).unwrap(),
            vec![]
        );
        (ledger, alice, bob)
    }

    fn apply(ledger: &mut Ledger, transfers: &[Transfer]) -> Option<CreateTransferResult> {
        let results = ledger
            .create_transfers(ledger.last_timestamp() + 1, transfers)
            .unwrap();
        results
            .iter()
            .find(|r| r.result != CreateTransferResult::LinkedEventFailed)
            .or(results.first())
            .map(|r| r.result)
    }

    #[test]
    fn deposit_transfer_with_fee_and_withdraw_move_money_as_a_bank_would() {
        let branch = branch();
        let (mut ledger, alice, bob) = bank();
        let key = |k: &str, op| transfer_id(branch.code, op, k);
        let deposit = branch.deposit(
            key("d1", Operation::Deposit),
            &alice,
            eur().parse_amount("100.00").unwrap(),
        );
        assert_eq!(apply(&mut ledger, &[deposit]), None);
        let payment = branch
            .transfer(
                (
                    key("p1", Operation::Transfer),
                    key("p1", Operation::TransferFee),
                ),
                &alice,
                &bob,
                9_000,
                50,
            )
            .unwrap();
        assert_eq!(apply(&mut ledger, &payment), None);
        let alice_now = ledger.account(alice.id).unwrap();
        assert_eq!(
            CustomerBalance::of(&alice_now).available,
            10_000 - 9_000 - 50
        );
        // Too much: the payment and its fee are refused together.
        let again = branch
            .transfer(
                (
                    key("p2", Operation::Transfer),
                    key("p2", Operation::TransferFee),
                ),
                &alice,
                &bob,
                901,
                50,
            )
            .unwrap();
        let result = apply(&mut ledger, &again);
        assert_eq!(
            interpret(result, "alice", "bob").unwrap_err().code(),
            "insufficient_funds"
        );
        assert_eq!(ledger.account(alice.id).unwrap(), alice_now);
        // A retry with the same key is the same transfer: no double payment.
        assert_eq!(
            interpret(apply(&mut ledger, &payment), "alice", "bob"),
            Ok(())
        );
        assert_eq!(ledger.account(alice.id).unwrap(), alice_now);
        let withdraw = branch.withdraw(key("w1", Operation::Withdraw), &alice, 950);
        assert_eq!(apply(&mut ledger, &[withdraw]), None);
        assert_eq!(
            CustomerBalance::of(&ledger.account(alice.id).unwrap()).posted,
            0
        );
        for totals in ledger.totals_by_ledger().values() {
            assert!(totals.is_conserved());
        }
    }

    #[test]
    fn holds_reduce_available_and_capture_or_release_once() {
        let branch = branch();
        let (mut ledger, alice, _) = bank();
        assert_eq!(
            apply(&mut ledger, &[branch.deposit(1, &alice, 10_000)]),
            None
        );
        let hold = branch.place_hold(2, &alice, 3_000, 60).unwrap();
        assert_eq!(apply(&mut ledger, &[hold]), None);
        let balance = CustomerBalance::of(&ledger.account(alice.id).unwrap());
        assert_eq!(
            (balance.posted, balance.held, balance.available),
            (10_000, 3_000, 7_000)
        );
        assert_eq!(
            apply(&mut ledger, &[branch.capture_hold(3, 2, Some(1_000))]),
            None
        );
        let result = apply(&mut ledger, &[branch.release_hold(4, 2)]);
        assert_eq!(
            interpret(result, "", "").unwrap_err().code(),
            "hold_already_captured"
        );
        assert_eq!(
            CustomerBalance::of(&ledger.account(alice.id).unwrap()).available,
            9_000
        );
    }

    #[test]
    fn account_numbers_of_other_branches_and_bad_inputs_are_refused_clearly() {
        let branch = branch();
        let other = Branch::new(BranchCode::new(2).unwrap());
        let number = other
            .account_number(corebank_account_number::account_id(other.code, 1_000).unwrap())
            .unwrap();
        assert_eq!(
            branch
                .parse_account(&number.to_string())
                .unwrap_err()
                .code(),
            "other_branch"
        );
        assert_eq!(
            branch
                .parse_account("XC00 CORE 0001 0000 0010 00")
                .unwrap_err()
                .code(),
            "invalid_account_number"
        );
        assert_eq!(
            Product::parse("gold").unwrap_err().code(),
            "unknown_product"
        );
        assert_eq!(validate_key(""), Err(BankingError::InvalidIdempotencyKey));
        assert_eq!(
            validate_key(&"k".repeat(129)),
            Err(BankingError::InvalidIdempotencyKey)
        );
        assert_eq!(
            customer_tag("bad id").unwrap_err().code(),
            "invalid_customer_id"
        );
    }

    #[test]
    fn transfer_ids_are_stable_per_branch_operation_and_key() {
        let one = BranchCode::new(1).unwrap();
        let two = BranchCode::new(2).unwrap();
        assert_eq!(
            transfer_id(one, Operation::Deposit, "k"),
            transfer_id(one, Operation::Deposit, "k")
        );
        assert_ne!(
            transfer_id(one, Operation::Deposit, "k"),
            transfer_id(one, Operation::Withdraw, "k")
        );
        assert_ne!(
            transfer_id(one, Operation::Deposit, "k"),
            transfer_id(two, Operation::Deposit, "k")
        );
        assert_ne!(
            transfer_id(one, Operation::Deposit, "k"),
            transfer_id(one, Operation::Deposit, "k2")
        );
    }

    #[test]
    fn internal_accounts_are_distinct_and_below_customer_serials() {
        let accounts = branch().internal_accounts();
        let mut ids: Vec<_> = accounts.iter().map(|a| a.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), accounts.len());
        let (_, serial) = corebank_account_number::split_account_id(*ids.last().unwrap()).unwrap();
        assert!(serial < FIRST_CUSTOMER_SERIAL);
    }

    #[test]
    fn clearing_ids_are_account_numbers_of_the_owner_and_parse_back() {
        let one = BranchCode::new(1).unwrap();
        let far = BranchCode::new(9_999).unwrap();
        for currency in corebank_money::CURRENCIES {
            for (own, other) in [(one, far), (far, one), (BranchCode::new(0).unwrap(), one)] {
                let id = clearing_account_id(own, other, *currency);
                let (branch, serial) = corebank_account_number::split_account_id(id).unwrap();
                assert_eq!(branch, own);
                assert!(serial >= CLEARING_SERIAL_BASE && !is_customer_serial(serial));
                assert_eq!(clearing_counterparty(id), Some((other, *currency)));
                // A valid, printable account number of the owning branch.
                let number = Branch::new(own).account_number(id).unwrap();
                assert_eq!(number.branch(), own);
                assert_eq!(number.account_id(), id);
            }
        }
        assert_eq!(
            clearing_account_id(one, BranchCode::new(2).unwrap(), eur()),
            10_000_000_000 + 9_000_000_200
        );
        // Not clearing ids: internal and customer accounts, and unused slots.
        let branch = branch();
        for account in branch.internal_accounts() {
            assert_eq!(clearing_counterparty(account.id), None);
        }
        let last_customer = corebank_account_number::account_id(one, CUSTOMER_SERIAL_MAX).unwrap();
        assert_eq!(clearing_counterparty(last_customer), None);
        let unused_slot =
            corebank_account_number::account_id(one, CLEARING_SERIAL_BASE + 99).unwrap();
        assert_eq!(clearing_counterparty(unused_slot), None);
        let beyond = corebank_account_number::account_id(one, 9_999_999_999).unwrap();
        assert_eq!(clearing_counterparty(beyond), None);
        assert_eq!(clearing_counterparty(u128::MAX), None);
    }

    #[test]
    fn clearing_accounts_have_no_limits_keep_history_and_take_cross_branch_legs() {
        let one = BranchCode::new(1).unwrap();
        let two = BranchCode::new(2).unwrap();
        let account = clearing_account(one, two, eur());
        assert_eq!(account.code, account_code::CLEARING);
        assert_eq!(account.ledger, eur().numeric);
        assert_eq!(account.flags, AccountFlags::HISTORY);
        assert_eq!(account.user_data_32, 2);
        let accounts = Branch::new(one).clearing_accounts(&[one, two]);
        assert_eq!(accounts.len(), corebank_money::CURRENCIES.len());
        assert!(
            accounts
                .iter()
                .all(|a| clearing_counterparty(a.id).unwrap().0 == two)
        );
        // Distinct from each other and from the internal accounts.
        let mut ids: Vec<u128> = accounts.iter().map(|a| a.id).collect();
        ids.extend(Branch::new(one).internal_accounts().iter().map(|a| a.id));
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count);
        // The position may go either way: a clearing account can be debited from zero.
        let (mut ledger, alice, _) = bank();
        assert_eq!(ledger.create_accounts(2_000, &[account]).unwrap(), vec![]);
        let incoming = money_move(
            7,
            account.id,
            alice.id,
            500,
            eur().numeric,
            transfer_code::CROSS_BRANCH_IN,
        );
        assert_eq!(apply(&mut ledger, &[incoming]), None);
        assert_eq!(ledger.account(account.id).unwrap().debits_posted, 500);
        assert_eq!(
            transfer_code::describe(transfer_code::CROSS_BRANCH_IN),
            "payment from another branch"
        );
    }

    #[test]
    fn customer_serials_never_reach_the_clearing_range() {
        let branch = branch();
        let tag = customer_tag("alice").unwrap();
        assert!(
            branch
                .customer_account(CUSTOMER_SERIAL_MAX, tag, eur(), Product::Current)
                .is_ok()
        );
        for serial in [
            0,
            999,
            CLEARING_SERIAL_BASE,
            CLEARING_SERIAL_BASE + 200,
            9_999_999_999,
        ] {
            let error = branch
                .customer_account(serial, tag, eur(), Product::Current)
                .unwrap_err();
            assert_eq!(
                error.code(),
                "customer_serials_exhausted",
                "serial {serial}"
            );
        }
    }
}
