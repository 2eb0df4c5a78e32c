//! # corebank-ledger
//!
//! The ledger core every branch runs: a pure, deterministic double-entry state machine
//! of accounts and transfers. No I/O, no clock, no randomness that can reach an output,
//! no async: time comes in with every batch, and the same batches always yield the same
//! state (compare [`Ledger::digest`]).
//!
//! The exact semantics, rule by rule, are in `docs/ledger.md` at the repository root.
//!
//! ```
//! use corebank_ledger::{Account, AccountFlags, Ledger, Transfer};
//!
//! let mut ledger = Ledger::new();
//! let cash = Account { id: 1, ledger: 978, code: 1, ..Default::default() };
//! let alice = Account {
//!     id: 2, ledger: 978, code: 10,
//!     flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
//!     ..Default::default()
//! };
//! assert!(ledger.create_accounts(1, &[cash, alice]).unwrap().is_empty());
//! let deposit = Transfer {
//!     id: 100, debit_account_id: 1, credit_account_id: 2, amount: 5_000,
//!     ledger: 978, code: 1, ..Default::default()
//! };
//! assert!(ledger.create_transfers(3, &[deposit]).unwrap().is_empty());
//! assert_eq!(ledger.account(2).unwrap().credits_posted, 5_000);
//! ```

mod codec;
mod filter;
mod flags;
mod ledger;
mod record;
mod result;

pub use codec::{BALANCE_BYTES, RECORD_BYTES};
pub use filter::{AccountFilter, Direction, FilterError, QueryFilter};
pub use flags::{AccountFlags, TransferFlags};
pub use ledger::{
    BatchError, InvariantViolation, Ledger, LedgerStats, LedgerTotals, SnapshotError,
};
pub use record::{Account, AccountBalance, NS_PER_S, PendingStatus, Transfer};
pub use result::{
    CreateAccountResult, CreateAccountsResult, CreateTransferResult, CreateTransfersResult,
    EventResult,
};

/// The most events in one batch (and records in one read), as in TigerBeetle: what
/// fits one 1 MiB message of 128-byte events beside its header.
pub const BATCH_EVENTS_MAX: usize = 8_190;

/// Timestamps are nanoseconds below 2^63, so that a timestamp plus any timeout in
/// nanoseconds (at most (2^32-1) * 10^9 < 2^63) never overflows a u64.
pub const TIMESTAMP_MAX: u64 = (1 << 63) - 1;

const _: () = assert!((u32::MAX as u64) * NS_PER_S < TIMESTAMP_MAX);

#[cfg(test)]
mod tests;
