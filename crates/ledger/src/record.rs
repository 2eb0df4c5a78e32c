//! The two record kinds: fixed-size, cheap to copy, no heap.

use crate::flags::{AccountFlags, TransferFlags};

/// An account: four balances in minor units of its ledger's asset.
///
/// As an input to `create_accounts`, the balances and `timestamp` must be zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Account {
    pub id: u128,
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    pub ledger: u32,
    pub code: u16,
    pub flags: AccountFlags,
    pub timestamp: u64,
}

impl Account {
    /// Would debiting `amount` more break the `debits_must_not_exceed_credits` flag?
    pub fn debits_exceed_credits(&self, amount: u128) -> bool {
        self.flags
            .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && self
                .debits_pending
                .checked_add(self.debits_posted)
                .and_then(|debits| debits.checked_add(amount))
                .is_none_or(|debits| debits > self.credits_posted)
    }

    /// Would crediting `amount` more break the `credits_must_not_exceed_debits` flag?
    pub fn credits_exceed_debits(&self, amount: u128) -> bool {
        self.flags
            .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
            && self
                .credits_pending
                .checked_add(self.credits_posted)
                .and_then(|credits| credits.checked_add(amount))
                .is_none_or(|credits| credits > self.debits_posted)
    }

    /// The balance a customer may spend on a deposit account: credits posted minus all
    /// debits, pending holds included (saturating at zero).
    pub fn available_credit_balance(&self) -> u128 {
        self.credits_posted
            .saturating_sub(self.debits_posted.saturating_add(self.debits_pending))
    }

    /// True when no balance flag is violated.
    pub fn balances_within_flags(&self) -> bool {
        !self.debits_exceed_credits(0) && !self.credits_exceed_debits(0)
    }
}

/// A movement of `amount` from the debit account to the credit account, or a
/// reservation (`pending`), or the second phase of one (`post_pending_transfer`,
/// `void_pending_transfer`).
///
/// As an input to `create_transfers`, `timestamp` must be zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Transfer {
    pub id: u128,
    pub debit_account_id: u128,
    pub credit_account_id: u128,
    pub amount: u128,
    pub pending_id: u128,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    /// Seconds after which a pending transfer expires; 0 = never.
    pub timeout: u32,
    pub ledger: u32,
    pub code: u16,
    pub flags: TransferFlags,
    pub timestamp: u64,
}

impl Transfer {
    pub const fn timeout_ns(&self) -> u64 {
        self.timeout as u64 * NS_PER_S
    }

    /// When a pending transfer with a timeout expires (`None` when it never does).
    pub const fn expires_at(&self) -> Option<u64> {
        if self.timeout == 0 {
            None
        } else {
            Some(self.timestamp + self.timeout_ns())
        }
    }
}

pub const NS_PER_S: u64 = 1_000_000_000;

/// Where a pending transfer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PendingStatus {
    /// Not a pending transfer.
    None,
    Pending,
    Posted,
    Voided,
    Expired,
}

impl PendingStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Pending => "pending",
            Self::Posted => "posted",
            Self::Voided => "voided",
            Self::Expired => "expired",
        }
    }

    pub(crate) const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::None),
            1 => Some(Self::Pending),
            2 => Some(Self::Posted),
            3 => Some(Self::Voided),
            4 => Some(Self::Expired),
            _ => None,
        }
    }

    pub(crate) const fn to_byte(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Pending => 1,
            Self::Posted => 2,
            Self::Voided => 3,
            Self::Expired => 4,
        }
    }
}

/// An account's four balances right after a change, for accounts with the `history` flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AccountBalance {
    pub timestamp: u64,
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
}

impl AccountBalance {
    pub(crate) fn of(account: &Account, timestamp: u64) -> Self {
        Self {
            timestamp,
            debits_pending: account.debits_pending,
            debits_posted: account.debits_posted,
            credits_pending: account.credits_pending,
            credits_posted: account.credits_posted,
        }
    }
}
