//! A deliberately simple reference model of the ledger, written from `docs/ledger.md`
//! alone (not from `src/ledger.rs`), to be compared with the real ledger by the
//! model-based property tests in `tests/properties.rs`.
//!
//! Obviously-correct over fast: accounts in a `BTreeMap`, transfers in a `Vec` searched
//! linearly, every read recomputed from scratch, and a linked chain runs on the live
//! state after a full clone of the model, which is put back if the chain fails.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;

use corebank_ledger::{
    Account, AccountBalance, AccountFilter, AccountFlags, CreateAccountResult as AR,
    CreateTransferResult as TR, Direction, EventResult, FilterError, PendingStatus, QueryFilter,
    Transfer, TransferFlags,
};

/// At most this many events in a batch (and ids in a lookup).
pub const BATCH_MAX: usize = 8_190;
/// Timestamps live below 2^63.
pub const TIMESTAMP_MAX: u64 = (1 << 63) - 1;
/// Nanoseconds per second: timeouts are in seconds.
pub const NS: u64 = 1_000_000_000;

/// The defined account flag bits (bits 0..=4); others are reserved.
const ACCOUNT_DEFINED: u16 = 0b1_1111;
/// The defined transfer flag bits (bits 0..=7); others are reserved.
const TRANSFER_DEFINED: u16 = 0xff;

/// Why the model refused a whole batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelBatchError {
    Empty,
    TooManyEvents(usize),
    TimestampNotAdvancing { timestamp: u64, last: u64 },
}

/// One balance-history entry: the account's balances right after a change, and the
/// transfer record created by the change (the new transfer or the post/void record;
/// none for an expiry), by whose fields a selective filter picks entries.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
    pub account_id: u128,
    pub transfer: Option<Transfer>,
    pub balance: AccountBalance,
}

/// The whole state.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// By id. Creation order is timestamp order (see [`Model::accounts_in_order`]).
    pub accounts: BTreeMap<u128, Account>,
    /// In creation order, each with its pending status.
    pub transfers: Vec<(Transfer, PendingStatus)>,
    /// Transfer ids burnt by a transient failure, in the order they were burnt.
    pub burnt: Vec<u128>,
    /// Every history entry, in the order recorded.
    pub history: Vec<HistoryEntry>,
    pub last_timestamp: u64,
}

fn has(flags: TransferFlags, flag: TransferFlags) -> bool {
    flags.bits() & flag.bits() != 0
}

fn has_account(flags: AccountFlags, flag: AccountFlags) -> bool {
    flags.bits() & flag.bits() != 0
}

/// The transient results of `create_transfers` (docs/ledger.md, "Transient results").
pub fn is_transient(result: TR) -> bool {
    matches!(
        result,
        TR::DebitAccountNotFound
            | TR::CreditAccountNotFound
            | TR::PendingTransferNotFound
            | TR::ExceedsCredits
            | TR::ExceedsDebits
            | TR::DebitAccountAlreadyClosed
            | TR::CreditAccountAlreadyClosed
            | TR::OverflowsDebitsPending
            | TR::OverflowsCreditsPending
            | TR::OverflowsDebitsPosted
            | TR::OverflowsCreditsPosted
            | TR::OverflowsDebits
            | TR::OverflowsCredits
    )
}

/// `a + b + ...` without overflow, or `None`.
fn sum(values: &[u128]) -> Option<u128> {
    let mut total: u128 = 0;
    for v in values {
        total = total.checked_add(*v)?;
    }
    Some(total)
}

impl Model {
    pub fn new() -> Self {
        Self::default()
    }

    // ------------------------------------------------------------------ batches

    fn check_batch(&self, timestamp: u64, count: usize) -> Result<(), ModelBatchError> {
        if count == 0 {
            return Err(ModelBatchError::Empty);
        }
        if count > BATCH_MAX {
            return Err(ModelBatchError::TooManyEvents(count));
        }
        if timestamp <= self.last_timestamp {
            return Err(ModelBatchError::TimestampNotAdvancing {
                timestamp,
                last: self.last_timestamp,
            });
        }
        Ok(())
    }

    /// Runs a batch chain by chain. `apply` checks one event and applies it (or returns
    /// its failure without touching the model); `after_failure` runs on the restored
    /// model once a chain (or a lone event) has failed with the given event's result.
    #[allow(clippy::too_many_arguments)]
    fn run_batch<E, R: Copy>(
        &mut self,
        timestamp: u64,
        events: &[E],
        is_linked: impl Fn(&E) -> bool,
        apply: impl Fn(&mut Model, &E, u64) -> Result<(), R>,
        after_failure: impl Fn(&mut Model, &E, R),
        linked_event_failed: R,
        linked_event_chain_open: R,
    ) -> Vec<EventResult<R>> {
        let n = events.len();
        let mut results: Vec<Option<R>> = vec![None; n];
        let mut start = 0;
        while start < n {
            // The chain: linked events up to the first unlinked one (or the batch's end).
            let mut end = start;
            while end + 1 < n && is_linked(&events[end]) {
                end += 1;
            }
            let open = is_linked(&events[end]); // only possible when end == n - 1
            let saved = self.clone();
            let mut failure: Option<(usize, R)> = None;
            for (k, event) in events.iter().enumerate().take(end + 1).skip(start) {
                if k == end && open {
                    failure = Some((k, linked_event_chain_open));
                    break;
                }
                if let Err(result) = apply(self, event, timestamp + k as u64) {
                    failure = Some((k, result));
                    break;
                }
            }
            if let Some((failed, result)) = failure {
                *self = saved;
                after_failure(self, &events[failed], result);
                for slot in results.iter_mut().take(end + 1).skip(start) {
                    *slot = Some(linked_event_failed);
                }
                results[failed] = Some(result);
                if open {
                    results[end] = Some(linked_event_chain_open);
                }
            }
            start = end + 1;
        }
        self.last_timestamp = timestamp + n as u64 - 1;
        results
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.map(|result| EventResult {
                    index: u32::try_from(i).unwrap(),
                    result,
                })
            })
            .collect()
    }

    pub fn create_accounts(
        &mut self,
        timestamp: u64,
        events: &[Account],
    ) -> Result<Vec<EventResult<AR>>, ModelBatchError> {
        self.check_batch(timestamp, events.len())?;
        Ok(self.run_batch(
            timestamp,
            events,
            |a| has_account(a.flags, AccountFlags::LINKED),
            Model::create_account,
            |_, _, _| {},
            AR::LinkedEventFailed,
            AR::LinkedEventChainOpen,
        ))
    }

    pub fn create_transfers(
        &mut self,
        timestamp: u64,
        events: &[Transfer],
    ) -> Result<Vec<EventResult<TR>>, ModelBatchError> {
        self.check_batch(timestamp, events.len())?;
        Ok(self.run_batch(
            timestamp,
            events,
            |t| has(t.flags, TransferFlags::LINKED),
            Model::create_transfer,
            |model, t, result| {
                if is_transient(result) {
                    model.burnt.push(t.id);
                }
            },
            TR::LinkedEventFailed,
            TR::LinkedEventChainOpen,
        ))
    }

    // ------------------------------------------------------------------ accounts

    fn create_account(&mut self, a: &Account, timestamp: u64) -> Result<(), AR> {
        if a.timestamp != 0 {
            return Err(AR::TimestampMustBeZero);
        }
        if a.flags.bits() & !ACCOUNT_DEFINED != 0 {
            return Err(AR::ReservedFlag);
        }
        if a.id == 0 {
            return Err(AR::IdMustNotBeZero);
        }
        if a.id == u128::MAX {
            return Err(AR::IdMustNotBeIntMax);
        }
        if let Some(existing) = self.accounts.get(&a.id) {
            return Err(if a.flags != existing.flags {
                AR::ExistsWithDifferentFlags
            } else if a.user_data_128 != existing.user_data_128 {
                AR::ExistsWithDifferentUserData128
            } else if a.user_data_64 != existing.user_data_64 {
                AR::ExistsWithDifferentUserData64
            } else if a.user_data_32 != existing.user_data_32 {
                AR::ExistsWithDifferentUserData32
            } else if a.ledger != existing.ledger {
                AR::ExistsWithDifferentLedger
            } else if a.code != existing.code {
                AR::ExistsWithDifferentCode
            } else {
                AR::Exists
            });
        }
        if has_account(a.flags, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && has_account(a.flags, AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
        {
            return Err(AR::FlagsAreMutuallyExclusive);
        }
        if a.debits_pending != 0 {
            return Err(AR::DebitsPendingMustBeZero);
        }
        if a.debits_posted != 0 {
            return Err(AR::DebitsPostedMustBeZero);
        }
        if a.credits_pending != 0 {
            return Err(AR::CreditsPendingMustBeZero);
        }
        if a.credits_posted != 0 {
            return Err(AR::CreditsPostedMustBeZero);
        }
        if a.ledger == 0 {
            return Err(AR::LedgerMustNotBeZero);
        }
        if a.code == 0 {
            return Err(AR::CodeMustNotBeZero);
        }
        let mut created = *a;
        created.timestamp = timestamp;
        self.accounts.insert(a.id, created);
        Ok(())
    }

    // ------------------------------------------------------------------ transfers

    /// The created transfer with this id, with its position.
    pub fn find_transfer(&self, id: u128) -> Option<(usize, Transfer, PendingStatus)> {
        self.transfers
            .iter()
            .enumerate()
            .find(|(_, (t, _))| t.id == id)
            .map(|(i, (t, s))| (i, *t, *s))
    }

    fn create_transfer(&mut self, t: &Transfer, timestamp: u64) -> Result<(), TR> {
        // Rules 2-5.
        if t.timestamp != 0 {
            return Err(TR::TimestampMustBeZero);
        }
        if t.flags.bits() & !TRANSFER_DEFINED != 0 {
            return Err(TR::ReservedFlag);
        }
        if t.id == 0 {
            return Err(TR::IdMustNotBeZero);
        }
        if t.id == u128::MAX {
            return Err(TR::IdMustNotBeIntMax);
        }
        if let Some((_, stored, _)) = self.find_transfer(t.id) {
            return Err(self.transfer_exists(t, &stored));
        }
        if self.burnt.contains(&t.id) {
            return Err(TR::IdAlreadyFailed);
        }
        // Rule 6.
        let post = has(t.flags, TransferFlags::POST_PENDING_TRANSFER);
        let void = has(t.flags, TransferFlags::VOID_PENDING_TRANSFER);
        if post || void {
            return self.post_or_void(t, timestamp, post, void);
        }
        // Rules 7-12.
        if t.debit_account_id == 0 {
            return Err(TR::DebitAccountIdMustNotBeZero);
        }
        if t.debit_account_id == u128::MAX {
            return Err(TR::DebitAccountIdMustNotBeIntMax);
        }
        if t.credit_account_id == 0 {
            return Err(TR::CreditAccountIdMustNotBeZero);
        }
        if t.credit_account_id == u128::MAX {
            return Err(TR::CreditAccountIdMustNotBeIntMax);
        }
        if t.debit_account_id == t.credit_account_id {
            return Err(TR::AccountsMustBeDifferent);
        }
        if t.pending_id != 0 {
            return Err(TR::PendingIdMustBeZero);
        }
        let pending = has(t.flags, TransferFlags::PENDING);
        let closing_debit = has(t.flags, TransferFlags::CLOSING_DEBIT);
        let closing_credit = has(t.flags, TransferFlags::CLOSING_CREDIT);
        if !pending {
            if t.timeout != 0 {
                return Err(TR::TimeoutReservedForPendingTransfer);
            }
            if closing_debit || closing_credit {
                return Err(TR::ClosingTransferMustBePending);
            }
        }
        if t.amount == 0 {
            return Err(TR::AmountMustNotBeZero);
        }
        if t.ledger == 0 {
            return Err(TR::LedgerMustNotBeZero);
        }
        if t.code == 0 {
            return Err(TR::CodeMustNotBeZero);
        }
        // Rules 13-15.
        let Some(dr) = self.accounts.get(&t.debit_account_id).copied() else {
            return Err(TR::DebitAccountNotFound);
        };
        let Some(cr) = self.accounts.get(&t.credit_account_id).copied() else {
            return Err(TR::CreditAccountNotFound);
        };
        if dr.ledger != cr.ledger {
            return Err(TR::AccountsMustHaveTheSameLedger);
        }
        if t.ledger != dr.ledger {
            return Err(TR::TransferMustHaveTheSameLedgerAsAccounts);
        }
        if has_account(dr.flags, AccountFlags::CLOSED) {
            return Err(TR::DebitAccountAlreadyClosed);
        }
        if has_account(cr.flags, AccountFlags::CLOSED) {
            return Err(TR::CreditAccountAlreadyClosed);
        }
        // Rule 16: the actual amount.
        let mut amount = t.amount;
        if has(t.flags, TransferFlags::BALANCING_DEBIT) {
            let available = dr
                .credits_posted
                .saturating_sub(dr.debits_posted.saturating_add(dr.debits_pending));
            amount = amount.min(available);
        }
        if has(t.flags, TransferFlags::BALANCING_CREDIT) {
            let available = cr
                .debits_posted
                .saturating_sub(cr.credits_posted.saturating_add(cr.credits_pending));
            amount = amount.min(available);
        }
        // Rule 17: overflow.
        if pending {
            if sum(&[amount, dr.debits_pending]).is_none() {
                return Err(TR::OverflowsDebitsPending);
            }
            if sum(&[amount, cr.credits_pending]).is_none() {
                return Err(TR::OverflowsCreditsPending);
            }
        }
        if sum(&[amount, dr.debits_posted]).is_none() {
            return Err(TR::OverflowsDebitsPosted);
        }
        if sum(&[amount, cr.credits_posted]).is_none() {
            return Err(TR::OverflowsCreditsPosted);
        }
        if sum(&[amount, dr.debits_pending, dr.debits_posted]).is_none() {
            return Err(TR::OverflowsDebits);
        }
        if sum(&[amount, cr.credits_pending, cr.credits_posted]).is_none() {
            return Err(TR::OverflowsCredits);
        }
        if u128::from(timestamp) + u128::from(t.timeout) * u128::from(NS)
            > u128::from(TIMESTAMP_MAX)
        {
            return Err(TR::OverflowsTimeout);
        }
        // Rule 18: balance limits.
        if has_account(dr.flags, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && dr.debits_pending + dr.debits_posted + amount > dr.credits_posted
        {
            return Err(TR::ExceedsCredits);
        }
        if has_account(cr.flags, AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
            && cr.credits_pending + cr.credits_posted + amount > cr.debits_posted
        {
            return Err(TR::ExceedsDebits);
        }
        // Rule 19: create.
        let mut record = *t;
        record.amount = amount;
        record.timestamp = timestamp;
        {
            let dr = self.accounts.get_mut(&t.debit_account_id).unwrap();
            if pending {
                dr.debits_pending += amount;
            } else {
                dr.debits_posted += amount;
            }
            if closing_debit {
                dr.flags.insert(AccountFlags::CLOSED);
            }
        }
        {
            let cr = self.accounts.get_mut(&t.credit_account_id).unwrap();
            if pending {
                cr.credits_pending += amount;
            } else {
                cr.credits_posted += amount;
            }
            if closing_credit {
                cr.flags.insert(AccountFlags::CLOSED);
            }
        }
        let status = if pending {
            PendingStatus::Pending
        } else {
            PendingStatus::None
        };
        self.transfers.push((record, status));
        self.record_history(&record, Some(record), timestamp);
        Ok(())
    }

    /// Rule 6, P1-P9.
    fn post_or_void(
        &mut self,
        t: &Transfer,
        timestamp: u64,
        post: bool,
        void: bool,
    ) -> Result<(), TR> {
        // P1.
        let others = TransferFlags::PENDING.bits()
            | TransferFlags::BALANCING_DEBIT.bits()
            | TransferFlags::BALANCING_CREDIT.bits()
            | TransferFlags::CLOSING_DEBIT.bits()
            | TransferFlags::CLOSING_CREDIT.bits();
        if (post && void) || t.flags.bits() & others != 0 {
            return Err(TR::FlagsAreMutuallyExclusive);
        }
        // P2.
        if t.pending_id == 0 {
            return Err(TR::PendingIdMustNotBeZero);
        }
        if t.pending_id == u128::MAX {
            return Err(TR::PendingIdMustNotBeIntMax);
        }
        if t.pending_id == t.id {
            return Err(TR::PendingIdMustBeDifferent);
        }
        // P3.
        if t.timeout != 0 {
            return Err(TR::TimeoutReservedForPendingTransfer);
        }
        // P4.
        let Some((position, p, status)) = self.find_transfer(t.pending_id) else {
            return Err(TR::PendingTransferNotFound);
        };
        if !has(p.flags, TransferFlags::PENDING) {
            return Err(TR::PendingTransferNotPending);
        }
        // P5.
        if t.debit_account_id != 0 && t.debit_account_id != p.debit_account_id {
            return Err(TR::PendingTransferHasDifferentDebitAccountId);
        }
        if t.credit_account_id != 0 && t.credit_account_id != p.credit_account_id {
            return Err(TR::PendingTransferHasDifferentCreditAccountId);
        }
        if t.ledger != 0 && t.ledger != p.ledger {
            return Err(TR::PendingTransferHasDifferentLedger);
        }
        if t.code != 0 && t.code != p.code {
            return Err(TR::PendingTransferHasDifferentCode);
        }
        // P6.
        let amount = post_void_amount(t.amount, post, p.amount);
        if amount > p.amount {
            return Err(TR::ExceedsPendingTransferAmount);
        }
        if void && amount < p.amount {
            return Err(TR::PendingTransferHasDifferentAmount);
        }
        // P7.
        match status {
            PendingStatus::Posted => return Err(TR::PendingTransferAlreadyPosted),
            PendingStatus::Voided => return Err(TR::PendingTransferAlreadyVoided),
            PendingStatus::Expired => return Err(TR::PendingTransferExpired),
            PendingStatus::Pending | PendingStatus::None => {}
        }
        if p.timeout != 0 && p.timestamp + u64::from(p.timeout) * NS <= timestamp {
            return Err(TR::PendingTransferExpired);
        }
        // P8.
        let dr = self.accounts[&p.debit_account_id];
        let cr = self.accounts[&p.credit_account_id];
        if post {
            if has_account(dr.flags, AccountFlags::CLOSED) {
                return Err(TR::DebitAccountAlreadyClosed);
            }
            if has_account(cr.flags, AccountFlags::CLOSED) {
                return Err(TR::CreditAccountAlreadyClosed);
            }
        }
        // P9.
        let record = Transfer {
            id: t.id,
            debit_account_id: p.debit_account_id,
            credit_account_id: p.credit_account_id,
            amount,
            pending_id: t.pending_id,
            user_data_128: if t.user_data_128 != 0 {
                t.user_data_128
            } else {
                p.user_data_128
            },
            user_data_64: if t.user_data_64 != 0 {
                t.user_data_64
            } else {
                p.user_data_64
            },
            user_data_32: if t.user_data_32 != 0 {
                t.user_data_32
            } else {
                p.user_data_32
            },
            timeout: 0,
            ledger: p.ledger,
            code: p.code,
            flags: t.flags,
            timestamp,
        };
        {
            let dr = self.accounts.get_mut(&p.debit_account_id).unwrap();
            dr.debits_pending -= p.amount;
            if post {
                dr.debits_posted += amount;
            } else if has(p.flags, TransferFlags::CLOSING_DEBIT) {
                dr.flags.remove(AccountFlags::CLOSED);
            }
        }
        {
            let cr = self.accounts.get_mut(&p.credit_account_id).unwrap();
            cr.credits_pending -= p.amount;
            if post {
                cr.credits_posted += amount;
            } else if has(p.flags, TransferFlags::CLOSING_CREDIT) {
                cr.flags.remove(AccountFlags::CLOSED);
            }
        }
        self.transfers[position].1 = if post {
            PendingStatus::Posted
        } else {
            PendingStatus::Voided
        };
        self.transfers.push((record, PendingStatus::None));
        self.record_history(&record, Some(record), timestamp);
        Ok(())
    }

    /// The "exists" comparison of rule 5.
    fn transfer_exists(&self, e: &Transfer, s: &Transfer) -> TR {
        if e.flags != s.flags {
            return TR::ExistsWithDifferentFlags;
        }
        if e.pending_id != s.pending_id {
            return TR::ExistsWithDifferentPendingId;
        }
        if e.timeout != s.timeout {
            return TR::ExistsWithDifferentTimeout;
        }
        let post = has(e.flags, TransferFlags::POST_PENDING_TRANSFER);
        let void = has(e.flags, TransferFlags::VOID_PENDING_TRANSFER);
        if post || void {
            let (_, p, _) = self
                .find_transfer(s.pending_id)
                .expect("a post/void names a created transfer");
            if e.debit_account_id != 0 && e.debit_account_id != s.debit_account_id {
                return TR::ExistsWithDifferentDebitAccountId;
            }
            if e.credit_account_id != 0 && e.credit_account_id != s.credit_account_id {
                return TR::ExistsWithDifferentCreditAccountId;
            }
            if post_void_amount(e.amount, post, p.amount) != s.amount {
                return TR::ExistsWithDifferentAmount;
            }
            let ud128 = if e.user_data_128 != 0 {
                e.user_data_128
            } else {
                p.user_data_128
            };
            let ud64 = if e.user_data_64 != 0 {
                e.user_data_64
            } else {
                p.user_data_64
            };
            let ud32 = if e.user_data_32 != 0 {
                e.user_data_32
            } else {
                p.user_data_32
            };
            if ud128 != s.user_data_128 {
                return TR::ExistsWithDifferentUserData128;
            }
            if ud64 != s.user_data_64 {
                return TR::ExistsWithDifferentUserData64;
            }
            if ud32 != s.user_data_32 {
                return TR::ExistsWithDifferentUserData32;
            }
            if e.ledger != 0 && e.ledger != s.ledger {
                return TR::ExistsWithDifferentLedger;
            }
            if e.code != 0 && e.code != s.code {
                return TR::ExistsWithDifferentCode;
            }
            return TR::Exists;
        }
        if e.debit_account_id != s.debit_account_id {
            return TR::ExistsWithDifferentDebitAccountId;
        }
        if e.credit_account_id != s.credit_account_id {
            return TR::ExistsWithDifferentCreditAccountId;
        }
        let balancing = has(e.flags, TransferFlags::BALANCING_DEBIT)
            || has(e.flags, TransferFlags::BALANCING_CREDIT);
        let amount_differs = if balancing {
            e.amount < s.amount
        } else {
            e.amount != s.amount
        };
        if amount_differs {
            return TR::ExistsWithDifferentAmount;
        }
        if e.user_data_128 != s.user_data_128 {
            return TR::ExistsWithDifferentUserData128;
        }
        if e.user_data_64 != s.user_data_64 {
            return TR::ExistsWithDifferentUserData64;
        }
        if e.user_data_32 != s.user_data_32 {
            return TR::ExistsWithDifferentUserData32;
        }
        if e.ledger != s.ledger {
            return TR::ExistsWithDifferentLedger;
        }
        if e.code != s.code {
            return TR::ExistsWithDifferentCode;
        }
        TR::Exists
    }

    /// A history entry for each side of `moved` whose account has `history`; `record` is
    /// the transfer record the change created, if any.
    fn record_history(&mut self, moved: &Transfer, record: Option<Transfer>, timestamp: u64) {
        for account_id in [moved.debit_account_id, moved.credit_account_id] {
            let a = self.accounts[&account_id];
            if has_account(a.flags, AccountFlags::HISTORY) {
                self.history.push(HistoryEntry {
                    account_id,
                    transfer: record,
                    balance: AccountBalance {
                        timestamp,
                        debits_pending: a.debits_pending,
                        debits_posted: a.debits_posted,
                        credits_pending: a.credits_pending,
                        credits_posted: a.credits_posted,
                    },
                });
            }
        }
    }

    // ------------------------------------------------------------------ expiry

    /// Expires up to `limit` due pending transfers, earliest `(expires_at, timestamp)`
    /// first, the k-th at `timestamp + k`.
    pub fn expire_pending_transfers(
        &mut self,
        timestamp: u64,
        limit: usize,
    ) -> Result<usize, ModelBatchError> {
        if timestamp <= self.last_timestamp {
            return Err(ModelBatchError::TimestampNotAdvancing {
                timestamp,
                last: self.last_timestamp,
            });
        }
        let mut due: Vec<(u64, u64, usize)> = Vec::new();
        for (i, (t, status)) in self.transfers.iter().enumerate() {
            if *status == PendingStatus::Pending && t.timeout != 0 {
                let expires_at = t.timestamp + u64::from(t.timeout) * NS;
                if expires_at <= timestamp {
                    due.push((expires_at, t.timestamp, i));
                }
            }
        }
        due.sort();
        due.truncate(limit);
        for (k, (_, _, i)) in due.iter().enumerate() {
            let at = timestamp + k as u64;
            let p = self.transfers[*i].0;
            self.transfers[*i].1 = PendingStatus::Expired;
            {
                let dr = self.accounts.get_mut(&p.debit_account_id).unwrap();
                dr.debits_pending -= p.amount;
                if has(p.flags, TransferFlags::CLOSING_DEBIT) {
                    dr.flags.remove(AccountFlags::CLOSED);
                }
            }
            {
                let cr = self.accounts.get_mut(&p.credit_account_id).unwrap();
                cr.credits_pending -= p.amount;
                if has(p.flags, TransferFlags::CLOSING_CREDIT) {
                    cr.flags.remove(AccountFlags::CLOSED);
                }
            }
            self.record_history(&p, None, at);
        }
        let used = due.len().max(1) as u64;
        self.last_timestamp = timestamp + used - 1;
        Ok(due.len())
    }

    // ------------------------------------------------------------------ reads

    /// Every account in creation (= timestamp) order.
    pub fn accounts_in_order(&self) -> Vec<Account> {
        let mut all: Vec<Account> = self.accounts.values().copied().collect();
        all.sort_by_key(|a| a.timestamp);
        all
    }

    pub fn transfer_records(&self) -> Vec<Transfer> {
        self.transfers.iter().map(|(t, _)| *t).collect()
    }

    pub fn lookup_accounts(&self, ids: &[u128]) -> Result<Vec<Account>, ModelBatchError> {
        if ids.len() > BATCH_MAX {
            return Err(ModelBatchError::TooManyEvents(ids.len()));
        }
        Ok(ids
            .iter()
            .filter_map(|id| self.accounts.get(id).copied())
            .collect())
    }

    pub fn lookup_transfers(&self, ids: &[u128]) -> Result<Vec<Transfer>, ModelBatchError> {
        if ids.len() > BATCH_MAX {
            return Err(ModelBatchError::TooManyEvents(ids.len()));
        }
        Ok(ids
            .iter()
            .filter_map(|id| self.find_transfer(*id).map(|(_, t, _)| t))
            .collect())
    }

    /// The pending status of a pending transfer; `None` for an unknown id or a transfer
    /// that is not pending.
    pub fn pending_status(&self, id: u128) -> Option<PendingStatus> {
        let (_, t, status) = self.find_transfer(id)?;
        if has(t.flags, TransferFlags::PENDING) {
            Some(status)
        } else {
            None
        }
    }

    pub fn get_account_transfers(&self, f: &AccountFilter) -> Result<Vec<Transfer>, FilterError> {
        let (min, max, limit) = validate_account_filter(f)?;
        let mut found: Vec<Transfer> = self
            .transfers
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| on_side(f.direction, f.account_id, t))
            .filter(|t| min <= t.timestamp && t.timestamp <= max)
            .filter(|t| {
                transfer_fields_match(f.user_data_128, f.user_data_64, f.user_data_32, f.code, t)
            })
            .collect();
        found.sort_by_key(|t| t.timestamp);
        if f.reversed {
            found.reverse();
        }
        found.truncate(limit);
        Ok(found)
    }

    pub fn get_account_balances(
        &self,
        f: &AccountFilter,
    ) -> Result<Vec<AccountBalance>, FilterError> {
        let (min, max, limit) = validate_account_filter(f)?;
        // An unknown account has no history (an empty answer, as in TigerBeetle); the
        // spec only says that an account without the flag is refused.
        match self.accounts.get(&f.account_id) {
            None => return Ok(Vec::new()),
            Some(a) if !has_account(a.flags, AccountFlags::HISTORY) => {
                return Err(FilterError::HistoryNotEnabled);
            }
            Some(_) => {}
        }
        // Spec ambiguity: "same filter" selects changes by their transfer; an expiry has
        // no transfer record of its own, so (like TigerBeetle's "each balance has a
        // transfer with the same timestamp") it matches only a filter that selects
        // nothing: direction both, no code, no user data.
        let selective = f.direction != Direction::Both
            || f.code != 0
            || f.user_data_128 != 0
            || f.user_data_64 != 0
            || f.user_data_32 != 0;
        let mut found: Vec<AccountBalance> = self
            .history
            .iter()
            .filter(|h| h.account_id == f.account_id)
            .filter(|h| min <= h.balance.timestamp && h.balance.timestamp <= max)
            .filter(|h| match &h.transfer {
                None => !selective,
                Some(t) => {
                    on_side(f.direction, f.account_id, t)
                        && transfer_fields_match(
                            f.user_data_128,
                            f.user_data_64,
                            f.user_data_32,
                            f.code,
                            t,
                        )
                }
            })
            .map(|h| h.balance)
            .collect();
        found.sort_by_key(|b| b.timestamp);
        if f.reversed {
            found.reverse();
        }
        found.truncate(limit);
        Ok(found)
    }

    pub fn query_accounts(&self, f: &QueryFilter) -> Result<Vec<Account>, FilterError> {
        let (min, max, limit) = validate_range(f.timestamp_min, f.timestamp_max, f.limit)?;
        let mut found: Vec<Account> = self
            .accounts_in_order()
            .into_iter()
            .filter(|a| min <= a.timestamp && a.timestamp <= max)
            .filter(|a| f.user_data_128 == 0 || a.user_data_128 == f.user_data_128)
            .filter(|a| f.user_data_64 == 0 || a.user_data_64 == f.user_data_64)
            .filter(|a| f.user_data_32 == 0 || a.user_data_32 == f.user_data_32)
            .filter(|a| f.ledger == 0 || a.ledger == f.ledger)
            .filter(|a| f.code == 0 || a.code == f.code)
            .collect();
        if f.reversed {
            found.reverse();
        }
        found.truncate(limit);
        Ok(found)
    }

    pub fn query_transfers(&self, f: &QueryFilter) -> Result<Vec<Transfer>, FilterError> {
        let (min, max, limit) = validate_range(f.timestamp_min, f.timestamp_max, f.limit)?;
        let mut found: Vec<Transfer> = self
            .transfer_records()
            .into_iter()
            .filter(|t| min <= t.timestamp && t.timestamp <= max)
            .filter(|t| {
                transfer_fields_match(f.user_data_128, f.user_data_64, f.user_data_32, f.code, t)
            })
            .filter(|t| f.ledger == 0 || t.ledger == f.ledger)
            .collect();
        found.sort_by_key(|t| t.timestamp);
        if f.reversed {
            found.reverse();
        }
        found.truncate(limit);
        Ok(found)
    }

    /// When the next pending transfer expires, if any still pending one has a timeout.
    pub fn next_expiry(&self) -> Option<u64> {
        self.transfers
            .iter()
            .filter(|(t, s)| *s == PendingStatus::Pending && t.timeout != 0)
            .map(|(t, _)| t.timestamp + u64::from(t.timeout) * NS)
            .min()
    }
}

/// The amount a post (0 and 2^128-1 mean "all of it") or void (0 means "all of it")
/// stands for.
fn post_void_amount(amount: u128, post: bool, pending_amount: u128) -> u128 {
    if amount == 0 || (post && amount == u128::MAX) {
        pending_amount
    } else {
        amount
    }
}

fn on_side(direction: Direction, account_id: u128, t: &Transfer) -> bool {
    match direction {
        Direction::Debits => t.debit_account_id == account_id,
        Direction::Credits => t.credit_account_id == account_id,
        Direction::Both => t.debit_account_id == account_id || t.credit_account_id == account_id,
    }
}

fn transfer_fields_match(ud128: u128, ud64: u64, ud32: u32, code: u16, t: &Transfer) -> bool {
    (ud128 == 0 || t.user_data_128 == ud128)
        && (ud64 == 0 || t.user_data_64 == ud64)
        && (ud32 == 0 || t.user_data_32 == ud32)
        && (code == 0 || t.code == code)
}

fn validate_account_filter(f: &AccountFilter) -> Result<(u64, u64, usize), FilterError> {
    if f.account_id == 0 || f.account_id == u128::MAX {
        return Err(FilterError::AccountIdInvalid);
    }
    validate_range(f.timestamp_min, f.timestamp_max, f.limit)
}

/// (min, max, limit) with 0 bounds opened up and the limit capped at 8,190.
fn validate_range(min: u64, max: u64, limit: u32) -> Result<(u64, u64, usize), FilterError> {
    if limit == 0 {
        return Err(FilterError::LimitMustNotBeZero);
    }
    if min != 0 && max != 0 && min > max {
        return Err(FilterError::TimestampRangeInverted { min, max });
    }
    let max = if max == 0 { u64::MAX } else { max };
    Ok((min, max, (limit as usize).min(BATCH_MAX)))
}
