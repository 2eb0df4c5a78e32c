//! Reading a branch's saga records: paged scans of its transfers by code, and the
//! classification of the source side into reservations and their resolutions.

use std::collections::BTreeMap;

use corebank_account_number::BranchCode;
use corebank_banking::transfer_code;
use corebank_ledger::{Account, BATCH_EVENTS_MAX, QueryFilter, Transfer, TransferFlags};

use crate::port::{BranchPort, PortError};
use crate::saga::Saga;

/// Records asked for per query (the ledger's cap; a port may return fewer).
const PAGE_LIMIT: u32 = 8_190;
const _: () = assert!(PAGE_LIMIT as usize == BATCH_EVENTS_MAX);

/// Where a saga stands in its source's ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SagaState {
    /// Reserved, neither posted nor voided: the saga is open.
    Pending,
    Posted,
    Voided,
}

impl SagaState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Posted => "posted",
            Self::Voided => "voided",
        }
    }
}

/// A reservation found in the source's ledger, with its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReservationRecord {
    pub saga: Saga,
    /// When the source's ledger applied the reservation (ns).
    pub timestamp: u64,
    pub state: SagaState,
}

/// The transfers with `code` from `timestamp_min` on, oldest first, at most
/// `records_max` of them; the flag says whether the scan stopped at that bound.
pub(crate) async fn scan_transfers<P: BranchPort>(
    port: &P,
    code: u16,
    timestamp_min: u64,
    records_max: usize,
) -> Result<(Vec<Transfer>, bool), PortError> {
    let mut found: Vec<Transfer> = Vec::new();
    let mut cursor = timestamp_min;
    loop {
        if found.len() >= records_max {
            return Ok((found, true));
        }
        let filter = QueryFilter {
            code,
            timestamp_min: cursor,
            ..QueryFilter::new(PAGE_LIMIT)
        };
        let page = port.query_transfers(filter).await?;
        let Some(last) = page.last() else {
            return Ok((found, false));
        };
        // Timestamps strictly increase, and the ledger's last is below 2^63.
        cursor = last.timestamp.saturating_add(1);
        let room = records_max - found.len();
        let truncated = page.len() > room;
        found.extend(page.into_iter().take(room));
        if truncated {
            return Ok((found, true));
        }
    }
}

/// Every account of the branch, oldest first, at most `records_max`; the flag says
/// whether the scan stopped at that bound.
pub(crate) async fn scan_accounts<P: BranchPort>(
    port: &P,
    records_max: usize,
) -> Result<(Vec<Account>, bool), PortError> {
    let mut found: Vec<Account> = Vec::new();
    let mut cursor = 0;
    loop {
        if found.len() >= records_max {
            return Ok((found, true));
        }
        let filter = QueryFilter {
            timestamp_min: cursor,
            ..QueryFilter::new(PAGE_LIMIT)
        };
        let page = port.query_accounts(filter).await?;
        let Some(last) = page.last() else {
            return Ok((found, false));
        };
        cursor = last.timestamp.saturating_add(1);
        let room = records_max - found.len();
        let truncated = page.len() > room;
        found.extend(page.into_iter().take(room));
        if truncated {
            return Ok((found, true));
        }
    }
}

/// Splits the `CROSS_BRANCH_OUT` transfers of branch `source` (reservations, posts and
/// voids, oldest first) into reservations with their state, and malformed records:
/// open pending transfers with the code that are not reservations of this protocol.
/// Resolutions of reservations older than the scan are ignored.
pub(crate) fn classify_reservations(
    source: BranchCode,
    transfers: &[Transfer],
) -> (Vec<ReservationRecord>, Vec<Transfer>) {
    let mut resolved: BTreeMap<u128, SagaState> = BTreeMap::new();
    for transfer in transfers {
        if transfer
            .flags
            .contains(TransferFlags::POST_PENDING_TRANSFER)
        {
            resolved.insert(transfer.pending_id, SagaState::Posted);
        } else if transfer
            .flags
            .contains(TransferFlags::VOID_PENDING_TRANSFER)
        {
            resolved.insert(transfer.pending_id, SagaState::Voided);
        }
    }
    let mut records = Vec::new();
    let mut malformed = Vec::new();
    for transfer in transfers {
        if !transfer.flags.contains(TransferFlags::PENDING) {
            continue;
        }
        debug_assert_eq!(transfer.code, transfer_code::CROSS_BRANCH_OUT);
        match Saga::from_reservation(source, transfer) {
            Some(saga) => records.push(ReservationRecord {
                saga,
                timestamp: transfer.timestamp,
                state: resolved
                    .get(&transfer.id)
                    .copied()
                    .unwrap_or(SagaState::Pending),
            }),
            None if !resolved.contains_key(&transfer.id) => malformed.push(*transfer),
            None => {}
        }
    }
    (records, malformed)
}
