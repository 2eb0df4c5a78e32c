//! # corebank-workload
//!
//! A seeded, deterministic generator of synthetic bank traffic for the corebank
//! ledger: a bank of branches, customers and internal accounts in several currencies,
//! and a stream of transfer batches with a realistic mix. Pure: no I/O, no clock, no
//! global randomness; the same [`WorkloadConfig`] (and the same results fed back
//! through [`Workload::observe`]) always gives the same batches.
//!
//! The traffic: deposits and salaries paid in from the branch's cash account, cash
//! withdrawals, person-to-person payments in one currency, bill payments, card holds
//! (pending transfers with a timeout) that are later captured in full or in part,
//! released, or left to expire, payments with a fee as a two-event linked chain, and
//! moves between a customer's current and savings accounts. Some events fail on
//! purpose: spending beyond the funds (`exceeds_credits`), and resending an earlier
//! transfer unchanged as a retrying client would (`exists`, `id_already_failed`).
//!
//! Amounts are integers of minor units, always.
//!
//! ```
//! use corebank_ledger::Ledger;
//! use corebank_workload::{ResultTally, Workload, WorkloadConfig};
//!
//! let mut workload = Workload::new(WorkloadConfig {
//!     seed: 7,
//!     branches: 2,
//!     customers_per_branch: 50,
//!     ..WorkloadConfig::default()
//! })
//! .unwrap();
//! let mut ledger = Ledger::new();
//! let mut now = 1;
//! for accounts in workload.setup_batches() {
//!     assert!(ledger.create_accounts(now, &accounts).unwrap().is_empty());
//!     now = ledger.last_timestamp() + 1;
//! }
//! let mut tally = ResultTally::new();
//! for _ in 0..20 {
//!     let batch = workload.next_batch(100);
//!     let results = ledger.create_transfers(ledger.last_timestamp() + 1, &batch).unwrap();
//!     workload.observe(&results);
//!     tally.record(batch.len(), &results);
//! }
//! assert!(tally.created() > tally.failed());
//! ledger.check_invariants().unwrap();
//! ```

pub mod bank;
mod flat;
mod generator;
pub mod measure;
mod rng;
mod stats;

pub use bank::{
    Currency, InternalAccount, account_code, account_id, split_account_id, transfer_code,
};
pub use flat::FlatBank;
pub use generator::{ConfigError, EventKind, HoldFates, KindStats, Mix, Workload, WorkloadConfig};
pub use measure::LatencySummary;
pub use rng::Rng;
pub use stats::ResultTally;
