//! The port: what the saga driver and the reconciliation need from one branch.
//!
//! One implementation wraps an in-memory [`corebank_ledger::Ledger`]
//! ([`MemoryBranch`](crate::MemoryBranch)); the server's wraps a gRPC client of the
//! branch. The calls and their answers are the ledger's own: `create_transfers` answers
//! the failed events only (by index), lookups skip unknown ids, queries return records
//! oldest first.

use std::future::Future;

use corebank_account_number::BranchCode;
use corebank_ledger::{Account, CreateTransfersResult, QueryFilter, Transfer};

/// One branch's ledger, as far as clearing needs it.
///
/// Contract, which the saga's safety rests on:
///
/// - `Ok` from `create_transfers` carries the **ledger's** answer for every event (the
///   failed ones listed, the others applied or `exists`). Nothing else may be reported
///   as a ledger result: a refusal that did not come from the ledger (authentication,
///   a risk block in front of the ledger, a full queue) is a [`PortError`].
/// - [`PortError::Unavailable`] means the outcome is unknown: the request may or may
///   not have been applied. The driver repeats it later with the same ids.
/// - Reads are linearizable (served by the leader after a read-index check), so a read
///   that follows an acknowledged write sees it.
pub trait BranchPort: Send + Sync {
    /// The branch this port talks to.
    fn branch(&self) -> BranchCode;

    /// Applies transfers in order as one request (at most
    /// [`BATCH_EVENTS_MAX`](corebank_ledger::BATCH_EVENTS_MAX)); returns the failed
    /// events only.
    fn create_transfers(
        &self,
        transfers: Vec<Transfer>,
    ) -> impl Future<Output = Result<Vec<CreateTransfersResult>, PortError>> + Send;

    /// The transfers found, in the order asked; unknown ids are skipped.
    fn lookup_transfers(
        &self,
        ids: Vec<u128>,
    ) -> impl Future<Output = Result<Vec<Transfer>, PortError>> + Send;

    /// The accounts found, in the order asked; unknown ids are skipped.
    fn lookup_accounts(
        &self,
        ids: Vec<u128>,
    ) -> impl Future<Output = Result<Vec<Account>, PortError>> + Send;

    /// Transfers matching the filter, by timestamp.
    fn query_transfers(
        &self,
        filter: QueryFilter,
    ) -> impl Future<Output = Result<Vec<Transfer>, PortError>> + Send;

    /// Accounts matching the filter, by timestamp.
    fn query_accounts(
        &self,
        filter: QueryFilter,
    ) -> impl Future<Output = Result<Vec<Account>, PortError>> + Send;
}

/// Why a call to a branch gave no ledger answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The branch could not be reached, was busy, was not the leader, or did not answer
    /// in time. A write may or may not have been applied: **the outcome is unknown**.
    #[error("branch unavailable, outcome unknown: {detail}")]
    Unavailable { detail: String },
    /// The branch refused the request as a whole (credential, scope, malformed or too
    /// large a request, a check in front of the ledger). Nothing was applied, but this
    /// is not the ledger's answer for any event, so it decides no saga.
    #[error("branch refused the request: {detail}")]
    Rejected { detail: String },
}

impl PortError {
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::Unavailable {
            detail: detail.into(),
        }
    }

    pub fn rejected(detail: impl Into<String>) -> Self {
        Self::Rejected {
            detail: detail.into(),
        }
    }

    /// The stable snake_case code of this error.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Unavailable { .. } => "unavailable",
            Self::Rejected { .. } => "rejected",
        }
    }

    /// Could a write have been applied? True for [`PortError::Unavailable`].
    pub const fn outcome_unknown(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}
