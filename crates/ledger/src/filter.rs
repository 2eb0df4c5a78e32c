//! Filters for the read operations, and the typed errors of an invalid filter.

use crate::BATCH_EVENTS_MAX;
use crate::record::Transfer;

/// Which side of an account's transfers to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    Debits,
    Credits,
    #[default]
    Both,
}

/// Selects an account's transfers (`get_account_transfers`) or balance history
/// (`get_account_balances`). Zero in a field means "any".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountFilter {
    pub account_id: u128,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    pub code: u16,
    /// Inclusive; 0 = from the beginning.
    pub timestamp_min: u64,
    /// Inclusive; 0 = to the end.
    pub timestamp_max: u64,
    /// 1..=8,190 (larger values are capped at 8,190).
    pub limit: u32,
    pub direction: Direction,
    /// Newest first.
    pub reversed: bool,
}

impl AccountFilter {
    /// A filter for everything of `account_id`, oldest first, up to `limit` records.
    pub fn new(account_id: u128, limit: u32) -> Self {
        Self {
            account_id,
            user_data_128: 0,
            user_data_64: 0,
            user_data_32: 0,
            code: 0,
            timestamp_min: 0,
            timestamp_max: 0,
            limit,
            direction: Direction::Both,
            reversed: false,
        }
    }

    /// Does `transfer` (one of the account's) pass the side, code and user-data fields?
    pub(crate) fn selects(&self, transfer: &Transfer) -> bool {
        let side = match self.direction {
            Direction::Debits => transfer.debit_account_id == self.account_id,
            Direction::Credits => transfer.credit_account_id == self.account_id,
            Direction::Both => true,
        };
        side && (self.code == 0 || transfer.code == self.code)
            && (self.user_data_128 == 0 || transfer.user_data_128 == self.user_data_128)
            && (self.user_data_64 == 0 || transfer.user_data_64 == self.user_data_64)
            && (self.user_data_32 == 0 || transfer.user_data_32 == self.user_data_32)
    }

    pub(crate) fn validate(&self) -> Result<TimeRange, FilterError> {
        if self.account_id == 0 || self.account_id == u128::MAX {
            return Err(FilterError::AccountIdInvalid);
        }
        TimeRange::new(self.timestamp_min, self.timestamp_max, self.limit)
    }
}

/// Selects accounts (`query_accounts`) or transfers (`query_transfers`) by their
/// indexed fields. Zero in a field means "any".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryFilter {
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    pub ledger: u32,
    pub code: u16,
    pub timestamp_min: u64,
    pub timestamp_max: u64,
    pub limit: u32,
    pub reversed: bool,
}

impl QueryFilter {
    /// A filter that matches everything, oldest first, up to `limit` records.
    pub fn new(limit: u32) -> Self {
        Self {
            user_data_128: 0,
            user_data_64: 0,
            user_data_32: 0,
            ledger: 0,
            code: 0,
            timestamp_min: 0,
            timestamp_max: 0,
            limit,
            reversed: false,
        }
    }

    pub(crate) fn validate(&self) -> Result<TimeRange, FilterError> {
        TimeRange::new(self.timestamp_min, self.timestamp_max, self.limit)
    }
}

/// A validated, inclusive time range and a result limit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimeRange {
    pub min: u64,
    pub max: u64,
    pub limit: usize,
}

impl TimeRange {
    fn new(min: u64, max: u64, limit: u32) -> Result<Self, FilterError> {
        if limit == 0 {
            return Err(FilterError::LimitMustNotBeZero);
        }
        if min != 0 && max != 0 && min > max {
            return Err(FilterError::TimestampRangeInverted { min, max });
        }
        let limit = (limit as usize).min(BATCH_EVENTS_MAX);
        Ok(Self {
            min,
            max: if max == 0 { u64::MAX } else { max },
            limit,
        })
    }
}

/// Why a read filter was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("the limit must be at least 1")]
    LimitMustNotBeZero,
    #[error("the account id must not be 0 or 2^128-1")]
    AccountIdInvalid,
    #[error("timestamp_min ({min}) is after timestamp_max ({max})")]
    TimestampRangeInverted { min: u64, max: u64 },
    #[error("the account does not keep balance history (create it with the history flag)")]
    HistoryNotEnabled,
}

impl FilterError {
    /// The stable snake_case code of this error.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::LimitMustNotBeZero => "limit_must_not_be_zero",
            Self::AccountIdInvalid => "account_id_invalid",
            Self::TimestampRangeInverted { .. } => "timestamp_range_inverted",
            Self::HistoryNotEnabled => "history_not_enabled",
        }
    }
}
