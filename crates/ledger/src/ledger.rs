//! The ledger state machine: applies batches of events, one thread, no I/O.
//!
//! Layout, chosen for the transfer hot path: accounts and transfers live in vectors in
//! creation (= timestamp) order, found by id through hash indexes that are never
//! iterated (so the hasher's seed cannot leak into any output). Every derived index
//! (an account's transfers, its balance history, the expiry queue) is kept in step on
//! each change, and undone in reverse order when a linked chain fails.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use foldhash::fast::RandomState;

mod snapshot;
pub use snapshot::SnapshotError;

use crate::filter::{AccountFilter, Direction, FilterError, QueryFilter, TimeRange};
use crate::flags::{AccountFlags, TransferFlags};
use crate::record::{Account, AccountBalance, PendingStatus, Transfer};
use crate::result::{
    CreateAccountResult, CreateAccountsResult, CreateTransferResult, CreateTransfersResult,
    EventResult,
};
use crate::{BATCH_EVENTS_MAX, TIMESTAMP_MAX};

type IdMap<V> = HashMap<u128, V, RandomState>;

/// A position in the account or transfer vector. u32 keeps the indexes compact; the
/// capacity check at the batch boundary keeps positions below `u32::MAX`.
type Position = u32;

/// The end of an account's list of transfers.
const NO_POSITION: Position = Position::MAX;

/// What a transfer id stands for.
#[derive(Clone, Copy, Debug)]
enum TransferSlot {
    Created(Position),
    /// The id failed with a transient result and is burnt.
    Failed,
}

/// One step to undo when a linked chain fails, recorded only inside chains.
#[derive(Clone, Copy, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "lives in one reused Vec during chains; boxing would allocate per event"
)]
enum Undo {
    AccountCreated,
    TransferCreated {
        debit_before: Account,
        credit_before: Account,
        debit_position: Position,
        credit_position: Position,
        /// For a post or void: the pending transfer it resolved.
        resolved_pending: Option<Position>,
    },
}

/// Why a whole batch was refused. Nothing is applied when a batch is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("a batch holds at most {max} events, this one has {count}", max = BATCH_EVENTS_MAX)]
    TooManyEvents { count: usize },
    #[error(
        "the batch timestamp {timestamp} does not advance past the ledger's last timestamp {last}"
    )]
    TimestampNotAdvancing { timestamp: u64, last: u64 },
    #[error("the batch's timestamps run beyond the ledger's time range (2^63-1 ns)")]
    TimestampOutOfRange,
    #[error("the ledger cannot hold more records (at most 2^32-1 accounts and 2^32-1 transfers)")]
    CapacityExceeded,
}

impl BatchError {
    /// The stable snake_case code of this error.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::TooManyEvents { .. } => "too_many_events",
            Self::TimestampNotAdvancing { .. } => "timestamp_not_advancing",
            Self::TimestampOutOfRange => "timestamp_out_of_range",
            Self::CapacityExceeded => "capacity_exceeded",
        }
    }
}

/// Posted and pending totals of one ledger (currency), summed over its accounts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerTotals {
    pub accounts: u64,
    pub debits_posted: u128,
    pub credits_posted: u128,
    pub debits_pending: u128,
    pub credits_pending: u128,
}

impl LedgerTotals {
    /// Money is neither made nor lost: debits equal credits, posted and pending.
    pub fn is_conserved(&self) -> bool {
        self.debits_posted == self.credits_posted && self.debits_pending == self.credits_pending
    }
}

/// Counts of what the ledger holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerStats {
    pub accounts: usize,
    pub transfers: usize,
    pub pending_transfers: usize,
    /// Pending transfers that expired (their funds were released).
    pub expired_transfers: usize,
    pub burnt_ids: usize,
    pub history_entries: usize,
}

/// A broken invariant, found by [`Ledger::check_invariants`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ledger invariant broken: {0}")]
pub struct InvariantViolation(pub String);

/// The double-entry ledger of one branch.
#[derive(Debug, Default)]
pub struct Ledger {
    accounts: Vec<Account>,
    account_positions: IdMap<Position>,
    /// Per account (same position): its newest transfer, the head of a list that runs
    /// back through `transfer_links` (an append writes no per-account memory but this).
    account_newest_transfer: Vec<Position>,
    /// Per account (same position): balances after each change; empty without `history`.
    account_history: Vec<Vec<AccountBalance>>,

    transfers: Vec<Transfer>,
    /// Per transfer (same position).
    pending_status: Vec<PendingStatus>,
    /// Per transfer (same position): the previous transfer of its debit account and of
    /// its credit account, or `NO_POSITION`.
    transfer_links: Vec<[Position; 2]>,
    transfer_slots: IdMap<TransferSlot>,
    /// Burnt ids in the order they were burnt (for the digest).
    burnt: Vec<(u128, CreateTransferResult)>,
    /// Pending transfers with a timeout that are still pending: (expires_at, position).
    expiry_queue: BTreeSet<(u64, Position)>,

    last_timestamp: u64,
    /// Non-empty only while a linked chain is being applied.
    undo_log: Vec<Undo>,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// A ledger with room for `accounts` accounts and `transfers` transfers before any
    /// index has to grow: growing a large hash index rehashes all of it at once, which
    /// shows as a latency spike on the batch that triggers it.
    pub fn with_capacity(accounts: usize, transfers: usize) -> Self {
        let mut ledger = Self::default();
        ledger.reserve(accounts, transfers);
        ledger
    }

    /// Makes room for at least `accounts` accounts and `transfers` transfers in all,
    /// so that no index grows (and rehashes) before then.
    pub fn reserve(&mut self, accounts: usize, transfers: usize) {
        let more_accounts = accounts.saturating_sub(self.accounts.len());
        let more_transfers = transfers.saturating_sub(self.transfers.len());
        self.accounts.reserve(more_accounts);
        self.account_positions.reserve(more_accounts);
        self.account_newest_transfer.reserve(more_accounts);
        self.account_history.reserve(more_accounts);
        self.transfers.reserve(more_transfers);
        self.pending_status.reserve(more_transfers);
        self.transfer_links.reserve(more_transfers);
        self.transfer_slots.reserve(more_transfers);
    }

    /// The last timestamp the ledger used; the next batch must start after it.
    pub fn last_timestamp(&self) -> u64 {
        self.last_timestamp
    }

    pub fn stats(&self) -> LedgerStats {
        let (mut pending_transfers, mut expired_transfers) = (0, 0);
        for status in &self.pending_status {
            match status {
                PendingStatus::Pending => pending_transfers += 1,
                PendingStatus::Expired => expired_transfers += 1,
                PendingStatus::None | PendingStatus::Posted | PendingStatus::Voided => {}
            }
        }
        LedgerStats {
            accounts: self.accounts.len(),
            transfers: self.transfers.len(),
            pending_transfers,
            expired_transfers,
            burnt_ids: self.burnt.len(),
            history_entries: self.account_history.iter().map(Vec::len).sum(),
        }
    }

    /// When the next pending transfer expires, if any does.
    pub fn next_expiry(&self) -> Option<u64> {
        self.expiry_queue.first().map(|(expires_at, _)| *expires_at)
    }

    // ---------------------------------------------------------------- batches

    fn check_batch(&self, timestamp: u64, count: usize, stored: usize) -> Result<(), BatchError> {
        if count > BATCH_EVENTS_MAX {
            return Err(BatchError::TooManyEvents { count });
        }
        if timestamp <= self.last_timestamp {
            return Err(BatchError::TimestampNotAdvancing {
                timestamp,
                last: self.last_timestamp,
            });
        }
        if timestamp.saturating_add(count as u64) > TIMESTAMP_MAX {
            return Err(BatchError::TimestampOutOfRange);
        }
        if stored + count >= Position::MAX as usize {
            return Err(BatchError::CapacityExceeded);
        }
        Ok(())
    }

    /// Applies a batch of account events; event `i` gets timestamp `timestamp + i`.
    /// Returns the failed events only.
    pub fn create_accounts(
        &mut self,
        timestamp: u64,
        events: &[Account],
    ) -> Result<Vec<CreateAccountsResult>, BatchError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.check_batch(timestamp, events.len(), self.accounts.len())?;
        let results = self.apply_chains(
            timestamp,
            events,
            |event| event.flags.contains(AccountFlags::LINKED),
            Self::create_account,
            |_, _, _| {},
            CreateAccountResult::LinkedEventFailed,
            CreateAccountResult::LinkedEventChainOpen,
        );
        self.last_timestamp = timestamp + events.len() as u64 - 1;
        Ok(results)
    }

    /// Applies a batch of transfer events; event `i` gets timestamp `timestamp + i`.
    /// Returns the failed events only.
    pub fn create_transfers(
        &mut self,
        timestamp: u64,
        events: &[Transfer],
    ) -> Result<Vec<CreateTransfersResult>, BatchError> {
        self.create_transfers_gated(timestamp, events, &|_, _| None)
    }

    /// [`Self::create_transfers`] with a gate: for each event whose id is new, after the
    /// basic checks of its id and flags, `gate(index, event)` may refuse it with a result
    /// (the risk screen's decisions, frozen accounts). A refusal fails the event like any
    /// other failure (its linked chain too), changes no balance and does not burn the id.
    pub fn create_transfers_gated(
        &mut self,
        timestamp: u64,
        events: &[Transfer],
        gate: &dyn Fn(usize, &Transfer) -> Option<CreateTransferResult>,
    ) -> Result<Vec<CreateTransfersResult>, BatchError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.check_batch(timestamp, events.len(), self.transfers.len())?;
        let results = self.apply_chains(
            timestamp,
            events,
            |event| event.flags.contains(TransferFlags::LINKED),
            |ledger, event, event_timestamp, in_chain| {
                let index = usize::try_from(event_timestamp - timestamp).unwrap_or(usize::MAX);
                ledger.create_transfer(event, event_timestamp, in_chain, &|event| {
                    gate(index, event)
                })
            },
            Self::burn_if_transient,
            CreateTransferResult::LinkedEventFailed,
            CreateTransferResult::LinkedEventChainOpen,
        );
        self.last_timestamp = timestamp + events.len() as u64 - 1;
        Ok(results)
    }

    /// The batch driver shared by accounts and transfers: linked chains apply
    /// all-or-nothing, with the undo log rolling back a broken chain.
    #[allow(clippy::too_many_arguments)]
    fn apply_chains<E, R: Copy + PartialEq>(
        &mut self,
        timestamp: u64,
        events: &[E],
        is_linked: impl Fn(&E) -> bool,
        apply: impl Fn(&mut Self, &E, u64, bool) -> Result<(), R>,
        on_failure: impl Fn(&mut Self, &E, R),
        linked_event_failed: R,
        linked_event_chain_open: R,
    ) -> Vec<EventResult<R>> {
        debug_assert!(self.undo_log.is_empty());
        let mut results = Vec::new();
        let mut chain_start: Option<usize> = None;
        let mut chain_broken = false;

        for (index, event) in events.iter().enumerate() {
            let event_timestamp = timestamp + index as u64;
            let linked = is_linked(event);
            if linked && chain_start.is_none() {
                chain_start = Some(index);
            }
            let outcome = if linked && index == events.len() - 1 {
                Err(linked_event_chain_open)
            } else if chain_broken {
                Err(linked_event_failed)
            } else {
                apply(self, event, event_timestamp, chain_start.is_some())
            };

            if let Err(result) = outcome {
                if let Some(start) = chain_start
                    && !chain_broken
                {
                    chain_broken = true;
                    self.rollback_chain();
                    for chain_index in start..index {
                        results.push(EventResult {
                            index: event_index(chain_index),
                            result: linked_event_failed,
                        });
                    }
                }
                if result != linked_event_failed && result != linked_event_chain_open {
                    on_failure(self, event, result);
                }
                results.push(EventResult {
                    index: event_index(index),
                    result,
                });
            }

            let chain_ends = !linked || index == events.len() - 1;
            if chain_start.is_some() && chain_ends {
                self.undo_log.clear();
                chain_start = None;
                chain_broken = false;
            }
        }
        debug_assert!(self.undo_log.is_empty());
        results
    }

    fn rollback_chain(&mut self) {
        while let Some(undo) = self.undo_log.pop() {
            match undo {
                Undo::AccountCreated => {
                    let account = self.accounts.pop();
                    debug_assert!(
                        account.is_some(),
                        "undo of an account that was never created"
                    );
                    if let Some(account) = account {
                        self.account_positions.remove(&account.id);
                    }
                    self.account_newest_transfer.pop();
                    self.account_history.pop();
                }
                Undo::TransferCreated {
                    debit_before,
                    credit_before,
                    debit_position,
                    credit_position,
                    resolved_pending,
                } => {
                    let Some(transfer) = self.transfers.pop() else {
                        debug_assert!(false, "undo of a transfer that was never created");
                        continue;
                    };
                    self.pending_status.pop();
                    let links = self.transfer_links.pop().unwrap_or([NO_POSITION; 2]);
                    self.transfer_slots.remove(&transfer.id);
                    let position = to_position(self.transfers.len());
                    if let Some(expires_at) = transfer.expires_at() {
                        self.expiry_queue.remove(&(expires_at, position));
                    }
                    for (account_position, before, previous) in [
                        (debit_position, debit_before, links[0]),
                        (credit_position, credit_before, links[1]),
                    ] {
                        let at = account_position as usize;
                        debug_assert_eq!(self.account_newest_transfer[at], position);
                        self.account_newest_transfer[at] = previous;
                        if self.accounts[at].flags.contains(AccountFlags::HISTORY) {
                            self.account_history[at].pop();
                        }
                        self.accounts[at] = before;
                    }
                    if let Some(pending_position) = resolved_pending {
                        let pending = self.transfers[pending_position as usize];
                        self.pending_status[pending_position as usize] = PendingStatus::Pending;
                        if let Some(expires_at) = pending.expires_at() {
                            self.expiry_queue.insert((expires_at, pending_position));
                        }
                    }
                }
            }
        }
    }

    fn burn_if_transient(&mut self, event: &Transfer, result: CreateTransferResult) {
        if result.is_transient() {
            let previous = self.transfer_slots.insert(event.id, TransferSlot::Failed);
            debug_assert!(
                previous.is_none(),
                "a transient failure for an id that is taken"
            );
            self.burnt.push((event.id, result));
        }
    }

    // ---------------------------------------------------------------- accounts

    fn create_account(
        &mut self,
        event: &Account,
        timestamp: u64,
        in_chain: bool,
    ) -> Result<(), CreateAccountResult> {
        use CreateAccountResult as R;
        if event.timestamp != 0 {
            return Err(R::TimestampMustBeZero);
        }
        if event.flags.has_reserved_bits() {
            return Err(R::ReservedFlag);
        }
        if event.id == 0 {
            return Err(R::IdMustNotBeZero);
        }
        if event.id == u128::MAX {
            return Err(R::IdMustNotBeIntMax);
        }
        if let Some(&position) = self.account_positions.get(&event.id) {
            return Err(account_exists(event, &self.accounts[position as usize]));
        }
        if event
            .flags
            .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && event
                .flags
                .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
        {
            return Err(R::FlagsAreMutuallyExclusive);
        }
        if event.debits_pending != 0 {
            return Err(R::DebitsPendingMustBeZero);
        }
        if event.debits_posted != 0 {
            return Err(R::DebitsPostedMustBeZero);
        }
        if event.credits_pending != 0 {
            return Err(R::CreditsPendingMustBeZero);
        }
        if event.credits_posted != 0 {
            return Err(R::CreditsPostedMustBeZero);
        }
        if event.ledger == 0 {
            return Err(R::LedgerMustNotBeZero);
        }
        if event.code == 0 {
            return Err(R::CodeMustNotBeZero);
        }

        let position = to_position(self.accounts.len());
        self.accounts.push(Account {
            timestamp,
            ..*event
        });
        self.account_positions.insert(event.id, position);
        self.account_newest_transfer.push(NO_POSITION);
        self.account_history.push(Vec::new());
        if in_chain {
            self.undo_log.push(Undo::AccountCreated);
        }
        Ok(())
    }

    // ---------------------------------------------------------------- transfers

    fn create_transfer(
        &mut self,
        event: &Transfer,
        timestamp: u64,
        in_chain: bool,
        gate: &dyn Fn(&Transfer) -> Option<CreateTransferResult>,
    ) -> Result<(), CreateTransferResult> {
        use CreateTransferResult as R;
        use TransferFlags as F;
        if event.timestamp != 0 {
            return Err(R::TimestampMustBeZero);
        }
        if event.flags.has_reserved_bits() {
            return Err(R::ReservedFlag);
        }
        if event.id == 0 {
            return Err(R::IdMustNotBeZero);
        }
        if event.id == u128::MAX {
            return Err(R::IdMustNotBeIntMax);
        }
        match self.transfer_slots.get(&event.id) {
            Some(TransferSlot::Created(position)) => {
                return Err(self.transfer_exists(event, &self.transfers[*position as usize]));
            }
            Some(TransferSlot::Failed) => return Err(R::IdAlreadyFailed),
            None => {}
        }
        if let Some(refusal) = gate(event) {
            return Err(refusal);
        }
        if event
            .flags
            .intersects(F::POST_PENDING_TRANSFER | F::VOID_PENDING_TRANSFER)
        {
            return self.post_or_void_pending_transfer(event, timestamp, in_chain);
        }

        if event.debit_account_id == 0 {
            return Err(R::DebitAccountIdMustNotBeZero);
        }
        if event.debit_account_id == u128::MAX {
            return Err(R::DebitAccountIdMustNotBeIntMax);
        }
        if event.credit_account_id == 0 {
            return Err(R::CreditAccountIdMustNotBeZero);
        }
        if event.credit_account_id == u128::MAX {
            return Err(R::CreditAccountIdMustNotBeIntMax);
        }
        if event.debit_account_id == event.credit_account_id {
            return Err(R::AccountsMustBeDifferent);
        }
        if event.pending_id != 0 {
            return Err(R::PendingIdMustBeZero);
        }
        let pending = event.flags.contains(F::PENDING);
        if !pending {
            if event.timeout != 0 {
                return Err(R::TimeoutReservedForPendingTransfer);
            }
            if event.flags.intersects(F::CLOSING_DEBIT | F::CLOSING_CREDIT) {
                return Err(R::ClosingTransferMustBePending);
            }
        }
        if event.amount == 0 {
            return Err(R::AmountMustNotBeZero);
        }
        if event.ledger == 0 {
            return Err(R::LedgerMustNotBeZero);
        }
        if event.code == 0 {
            return Err(R::CodeMustNotBeZero);
        }

        let debit_position = *self
            .account_positions
            .get(&event.debit_account_id)
            .ok_or(R::DebitAccountNotFound)?;
        let credit_position = *self
            .account_positions
            .get(&event.credit_account_id)
            .ok_or(R::CreditAccountNotFound)?;
        let debit = self.accounts[debit_position as usize];
        let credit = self.accounts[credit_position as usize];
        if debit.ledger != credit.ledger {
            return Err(R::AccountsMustHaveTheSameLedger);
        }
        if event.ledger != debit.ledger {
            return Err(R::TransferMustHaveTheSameLedgerAsAccounts);
        }
        if debit.flags.contains(AccountFlags::CLOSED) {
            return Err(R::DebitAccountAlreadyClosed);
        }
        if credit.flags.contains(AccountFlags::CLOSED) {
            return Err(R::CreditAccountAlreadyClosed);
        }

        let mut amount = event.amount;
        if event.flags.contains(F::BALANCING_DEBIT) {
            let debits = debit.debits_posted.saturating_add(debit.debits_pending);
            amount = amount.min(debit.credits_posted.saturating_sub(debits));
        }
        if event.flags.contains(F::BALANCING_CREDIT) {
            let credits = credit.credits_posted.saturating_add(credit.credits_pending);
            amount = amount.min(credit.debits_posted.saturating_sub(credits));
        }

        if pending {
            if amount.checked_add(debit.debits_pending).is_none() {
                return Err(R::OverflowsDebitsPending);
            }
            if amount.checked_add(credit.credits_pending).is_none() {
                return Err(R::OverflowsCreditsPending);
            }
        }
        if amount.checked_add(debit.debits_posted).is_none() {
            return Err(R::OverflowsDebitsPosted);
        }
        if amount.checked_add(credit.credits_posted).is_none() {
            return Err(R::OverflowsCreditsPosted);
        }
        if debit
            .debits_pending
            .checked_add(debit.debits_posted)
            .and_then(|d| d.checked_add(amount))
            .is_none()
        {
            return Err(R::OverflowsDebits);
        }
        if credit
            .credits_pending
            .checked_add(credit.credits_posted)
            .and_then(|c| c.checked_add(amount))
            .is_none()
        {
            return Err(R::OverflowsCredits);
        }
        // Both terms are below 2^63, so the sum cannot overflow u64.
        if timestamp + event.timeout as u64 * crate::record::NS_PER_S > TIMESTAMP_MAX {
            return Err(R::OverflowsTimeout);
        }
        if debit.debits_exceed_credits(amount) {
            return Err(R::ExceedsCredits);
        }
        if credit.credits_exceed_debits(amount) {
            return Err(R::ExceedsDebits);
        }

        let mut debit_after = debit;
        let mut credit_after = credit;
        if pending {
            debit_after.debits_pending += amount;
            credit_after.credits_pending += amount;
        } else {
            debit_after.debits_posted += amount;
            credit_after.credits_posted += amount;
        }
        if event.flags.contains(F::CLOSING_DEBIT) {
            debit_after.flags.insert(AccountFlags::CLOSED);
        }
        if event.flags.contains(F::CLOSING_CREDIT) {
            credit_after.flags.insert(AccountFlags::CLOSED);
        }
        debug_assert!(debit_after.balances_within_flags() && credit_after.balances_within_flags());

        let transfer = Transfer {
            amount,
            timestamp,
            ..*event
        };
        let status = if pending {
            PendingStatus::Pending
        } else {
            PendingStatus::None
        };
        self.insert_transfer(
            transfer,
            status,
            (debit_position, debit_after),
            (credit_position, credit_after),
        );
        if in_chain {
            self.undo_log.push(Undo::TransferCreated {
                debit_before: debit,
                credit_before: credit,
                debit_position,
                credit_position,
                resolved_pending: None,
            });
        }
        Ok(())
    }

    fn post_or_void_pending_transfer(
        &mut self,
        event: &Transfer,
        timestamp: u64,
        in_chain: bool,
    ) -> Result<(), CreateTransferResult> {
        use CreateTransferResult as R;
        use TransferFlags as F;
        let post = event.flags.contains(F::POST_PENDING_TRANSFER);
        let void = event.flags.contains(F::VOID_PENDING_TRANSFER);
        debug_assert!(post || void);
        if (post && void)
            || event.flags.intersects(
                F::PENDING
                    | F::BALANCING_DEBIT
                    | F::BALANCING_CREDIT
                    | F::CLOSING_DEBIT
                    | F::CLOSING_CREDIT,
            )
        {
            return Err(R::FlagsAreMutuallyExclusive);
        }
        if event.pending_id == 0 {
            return Err(R::PendingIdMustNotBeZero);
        }
        if event.pending_id == u128::MAX {
            return Err(R::PendingIdMustNotBeIntMax);
        }
        if event.pending_id == event.id {
            return Err(R::PendingIdMustBeDifferent);
        }
        if event.timeout != 0 {
            return Err(R::TimeoutReservedForPendingTransfer);
        }
        let pending_position = match self.transfer_slots.get(&event.pending_id) {
            Some(TransferSlot::Created(position)) => *position,
            Some(TransferSlot::Failed) | None => return Err(R::PendingTransferNotFound),
        };
        let pending = self.transfers[pending_position as usize];
        if !pending.flags.contains(F::PENDING) {
            return Err(R::PendingTransferNotPending);
        }
        if event.debit_account_id != 0 && event.debit_account_id != pending.debit_account_id {
            return Err(R::PendingTransferHasDifferentDebitAccountId);
        }
        if event.credit_account_id != 0 && event.credit_account_id != pending.credit_account_id {
            return Err(R::PendingTransferHasDifferentCreditAccountId);
        }
        if event.ledger != 0 && event.ledger != pending.ledger {
            return Err(R::PendingTransferHasDifferentLedger);
        }
        if event.code != 0 && event.code != pending.code {
            return Err(R::PendingTransferHasDifferentCode);
        }

        let amount = resolve_amount(event, pending.amount);
        if amount > pending.amount {
            return Err(R::ExceedsPendingTransferAmount);
        }
        if void && amount < pending.amount {
            return Err(R::PendingTransferHasDifferentAmount);
        }
        match self.pending_status[pending_position as usize] {
            PendingStatus::Pending => {}
            PendingStatus::Posted => return Err(R::PendingTransferAlreadyPosted),
            PendingStatus::Voided => return Err(R::PendingTransferAlreadyVoided),
            PendingStatus::Expired => return Err(R::PendingTransferExpired),
            PendingStatus::None => {
                debug_assert!(false, "a pending transfer without a pending status");
                return Err(R::PendingTransferNotPending);
            }
        }
        if pending
            .expires_at()
            .is_some_and(|expires_at| expires_at <= timestamp)
        {
            return Err(R::PendingTransferExpired);
        }

        let debit_position = self.account_position(pending.debit_account_id);
        let credit_position = self.account_position(pending.credit_account_id);
        let debit = self.accounts[debit_position as usize];
        let credit = self.accounts[credit_position as usize];
        if post && debit.flags.contains(AccountFlags::CLOSED) {
            return Err(R::DebitAccountAlreadyClosed);
        }
        if post && credit.flags.contains(AccountFlags::CLOSED) {
            return Err(R::CreditAccountAlreadyClosed);
        }

        let mut debit_after = debit;
        let mut credit_after = credit;
        debug_assert!(
            debit.debits_pending >= pending.amount && credit.credits_pending >= pending.amount
        );
        debit_after.debits_pending -= pending.amount;
        credit_after.credits_pending -= pending.amount;
        if post {
            // The pending amount was within every limit; posting at most that much keeps
            // the posted sums below the pending+posted sums that were checked then.
            debit_after.debits_posted += amount;
            credit_after.credits_posted += amount;
        } else {
            reopen_closed_by(&pending, &mut debit_after, &mut credit_after);
        }
        debug_assert!(debit_after.balances_within_flags() && credit_after.balances_within_flags());

        let transfer = Transfer {
            id: event.id,
            debit_account_id: pending.debit_account_id,
            credit_account_id: pending.credit_account_id,
            amount,
            pending_id: event.pending_id,
            user_data_128: nonzero_or(event.user_data_128, pending.user_data_128),
            user_data_64: nonzero_or(event.user_data_64, pending.user_data_64),
            user_data_32: nonzero_or(event.user_data_32, pending.user_data_32),
            timeout: 0,
            ledger: pending.ledger,
            code: pending.code,
            flags: event.flags,
            timestamp,
        };
        self.pending_status[pending_position as usize] = if post {
            PendingStatus::Posted
        } else {
            PendingStatus::Voided
        };
        if let Some(expires_at) = pending.expires_at() {
            let removed = self.expiry_queue.remove(&(expires_at, pending_position));
            debug_assert!(
                removed,
                "a pending transfer with a timeout missing from the expiry queue"
            );
        }
        self.insert_transfer(
            transfer,
            PendingStatus::None,
            (debit_position, debit_after),
            (credit_position, credit_after),
        );
        if in_chain {
            self.undo_log.push(Undo::TransferCreated {
                debit_before: debit,
                credit_before: credit,
                debit_position,
                credit_position,
                resolved_pending: Some(pending_position),
            });
        }
        Ok(())
    }

    /// Stores a validated transfer and the two updated accounts, with every index.
    fn insert_transfer(
        &mut self,
        transfer: Transfer,
        status: PendingStatus,
        (debit_position, debit_after): (Position, Account),
        (credit_position, credit_after): (Position, Account),
    ) {
        let position = to_position(self.transfers.len());
        debug_assert!(transfer.timestamp > self.transfers.last().map_or(0, |t| t.timestamp));
        if status == PendingStatus::Pending
            && let Some(expires_at) = transfer.expires_at()
        {
            self.expiry_queue.insert((expires_at, position));
        }
        self.transfer_slots
            .insert(transfer.id, TransferSlot::Created(position));
        self.transfers.push(transfer);
        self.pending_status.push(status);
        let (debit_at, credit_at) = (debit_position as usize, credit_position as usize);
        self.transfer_links.push([
            self.account_newest_transfer[debit_at],
            self.account_newest_transfer[credit_at],
        ]);
        self.account_newest_transfer[debit_at] = position;
        self.account_newest_transfer[credit_at] = position;
        for (at, after) in [(debit_at, debit_after), (credit_at, credit_after)] {
            self.accounts[at] = after;
            if after.flags.contains(AccountFlags::HISTORY) {
                self.account_history[at].push(AccountBalance::of(&after, transfer.timestamp));
            }
        }
    }

    fn account_position(&self, id: u128) -> Position {
        let position = self.account_positions.get(&id).copied();
        // A transfer's accounts exist: accounts are never deleted.
        debug_assert!(
            position.is_some(),
            "a stored transfer names an unknown account"
        );
        position.unwrap_or(0)
    }

    fn transfer_exists(&self, event: &Transfer, existing: &Transfer) -> CreateTransferResult {
        use CreateTransferResult as R;
        use TransferFlags as F;
        if event.flags != existing.flags {
            return R::ExistsWithDifferentFlags;
        }
        if event.pending_id != existing.pending_id {
            return R::ExistsWithDifferentPendingId;
        }
        if event.timeout != existing.timeout {
            return R::ExistsWithDifferentTimeout;
        }
        if event
            .flags
            .intersects(F::POST_PENDING_TRANSFER | F::VOID_PENDING_TRANSFER)
        {
            let pending = match self.transfer_slots.get(&event.pending_id) {
                Some(TransferSlot::Created(position)) => self.transfers[*position as usize],
                _ => {
                    debug_assert!(
                        false,
                        "a stored post/void names an unknown pending transfer"
                    );
                    return R::ExistsWithDifferentPendingId;
                }
            };
            if event.debit_account_id != 0 && event.debit_account_id != existing.debit_account_id {
                return R::ExistsWithDifferentDebitAccountId;
            }
            if event.credit_account_id != 0 && event.credit_account_id != existing.credit_account_id
            {
                return R::ExistsWithDifferentCreditAccountId;
            }
            if resolve_amount(event, pending.amount) != existing.amount {
                return R::ExistsWithDifferentAmount;
            }
            if nonzero_or(event.user_data_128, pending.user_data_128) != existing.user_data_128 {
                return R::ExistsWithDifferentUserData128;
            }
            if nonzero_or(event.user_data_64, pending.user_data_64) != existing.user_data_64 {
                return R::ExistsWithDifferentUserData64;
            }
            if nonzero_or(event.user_data_32, pending.user_data_32) != existing.user_data_32 {
                return R::ExistsWithDifferentUserData32;
            }
            if event.ledger != 0 && event.ledger != existing.ledger {
                return R::ExistsWithDifferentLedger;
            }
            if event.code != 0 && event.code != existing.code {
                return R::ExistsWithDifferentCode;
            }
            return R::Exists;
        }
        if event.debit_account_id != existing.debit_account_id {
            return R::ExistsWithDifferentDebitAccountId;
        }
        if event.credit_account_id != existing.credit_account_id {
            return R::ExistsWithDifferentCreditAccountId;
        }
        let balancing = event
            .flags
            .intersects(F::BALANCING_DEBIT | F::BALANCING_CREDIT);
        if (balancing && event.amount < existing.amount)
            || (!balancing && event.amount != existing.amount)
        {
            return R::ExistsWithDifferentAmount;
        }
        if event.user_data_128 != existing.user_data_128 {
            return R::ExistsWithDifferentUserData128;
        }
        if event.user_data_64 != existing.user_data_64 {
            return R::ExistsWithDifferentUserData64;
        }
        if event.user_data_32 != existing.user_data_32 {
            return R::ExistsWithDifferentUserData32;
        }
        if event.ledger != existing.ledger {
            return R::ExistsWithDifferentLedger;
        }
        if event.code != existing.code {
            return R::ExistsWithDifferentCode;
        }
        R::Exists
    }

    // ---------------------------------------------------------------- expiry

    /// Expires up to `limit` pending transfers whose deadline is at or before
    /// `timestamp`, earliest deadline first; the k-th is recorded at `timestamp + k`.
    /// Returns how many expired.
    pub fn expire_pending_transfers(
        &mut self,
        timestamp: u64,
        limit: usize,
    ) -> Result<usize, BatchError> {
        let limit = limit.min(BATCH_EVENTS_MAX);
        self.check_batch(timestamp, limit, 0)?;
        let mut expired = 0;
        while expired < limit {
            let Some(&(expires_at, position)) = self.expiry_queue.first() else {
                break;
            };
            if expires_at > timestamp {
                break;
            }
            self.expiry_queue.pop_first();
            let event_timestamp = timestamp + expired as u64;
            let pending = self.transfers[position as usize];
            debug_assert_eq!(
                self.pending_status[position as usize],
                PendingStatus::Pending
            );
            self.pending_status[position as usize] = PendingStatus::Expired;
            for (account_id, is_debit) in [
                (pending.debit_account_id, true),
                (pending.credit_account_id, false),
            ] {
                let at = self.account_position(account_id) as usize;
                let mut account = self.accounts[at];
                if is_debit {
                    debug_assert!(account.debits_pending >= pending.amount);
                    account.debits_pending -= pending.amount;
                    if pending.flags.contains(TransferFlags::CLOSING_DEBIT) {
                        account.flags.remove(AccountFlags::CLOSED);
                    }
                } else {
                    debug_assert!(account.credits_pending >= pending.amount);
                    account.credits_pending -= pending.amount;
                    if pending.flags.contains(TransferFlags::CLOSING_CREDIT) {
                        account.flags.remove(AccountFlags::CLOSED);
                    }
                }
                self.accounts[at] = account;
                if account.flags.contains(AccountFlags::HISTORY) {
                    self.account_history[at].push(AccountBalance::of(&account, event_timestamp));
                }
            }
            expired += 1;
        }
        self.last_timestamp = timestamp + expired.max(1) as u64 - 1;
        Ok(expired)
    }

    // ---------------------------------------------------------------- reads

    pub fn lookup_accounts(&self, ids: &[u128]) -> Result<Vec<Account>, BatchError> {
        if ids.len() > BATCH_EVENTS_MAX {
            return Err(BatchError::TooManyEvents { count: ids.len() });
        }
        Ok(ids.iter().filter_map(|id| self.account(*id)).collect())
    }

    pub fn lookup_transfers(&self, ids: &[u128]) -> Result<Vec<Transfer>, BatchError> {
        if ids.len() > BATCH_EVENTS_MAX {
            return Err(BatchError::TooManyEvents { count: ids.len() });
        }
        Ok(ids.iter().filter_map(|id| self.transfer(*id)).collect())
    }

    pub fn account(&self, id: u128) -> Option<Account> {
        self.account_positions
            .get(&id)
            .map(|position| self.accounts[*position as usize])
    }

    pub fn transfer(&self, id: u128) -> Option<Transfer> {
        match self.transfer_slots.get(&id) {
            Some(TransferSlot::Created(position)) => Some(self.transfers[*position as usize]),
            _ => None,
        }
    }

    /// The status of the pending transfer `id` (`None` when it is not a pending transfer
    /// or does not exist).
    pub fn pending_status(&self, id: u128) -> Option<PendingStatus> {
        match self.transfer_slots.get(&id) {
            Some(TransferSlot::Created(position)) => {
                match self.pending_status[*position as usize] {
                    PendingStatus::None => None,
                    status => Some(status),
                }
            }
            _ => None,
        }
    }

    /// The account's transfers (see docs/ledger.md). Newest-first reads stop after
    /// `limit` matches; oldest-first reads walk back to `timestamp_min` (or the account's
    /// first transfer), so their cost grows with the account's transfers in the range.
    pub fn get_account_transfers(
        &self,
        filter: &AccountFilter,
    ) -> Result<Vec<Transfer>, FilterError> {
        let range = filter.validate()?;
        let Some(&at) = self.account_positions.get(&filter.account_id) else {
            return Ok(Vec::new());
        };
        let newest_first = self
            .account_transfer_positions(at as usize)
            .map(|position| &self.transfers[position as usize])
            .skip_while(|transfer| transfer.timestamp > range.max)
            .take_while(|transfer| transfer.timestamp >= range.min)
            .filter(|transfer| filter.selects(transfer));
        Ok(if filter.reversed {
            newest_first.take(range.limit).copied().collect()
        } else {
            let matches: Vec<&Transfer> = newest_first.collect();
            matches
                .iter()
                .rev()
                .take(range.limit)
                .map(|transfer| **transfer)
                .collect()
        })
    }

    /// Positions of the account's transfers, newest first.
    fn account_transfer_positions(&self, at: usize) -> impl Iterator<Item = Position> + '_ {
        let account_id = self.accounts[at].id;
        let mut next = self.account_newest_transfer[at];
        std::iter::from_fn(move || {
            if next == NO_POSITION {
                return None;
            }
            let position = next;
            let [debit_previous, credit_previous] = self.transfer_links[position as usize];
            next = if self.transfers[position as usize].debit_account_id == account_id {
                debit_previous
            } else {
                credit_previous
            };
            Some(position)
        })
    }

    /// The balance history of an account with the `history` flag. The user-data and code
    /// fields of the filter select the transfers whose changes are listed.
    pub fn get_account_balances(
        &self,
        filter: &AccountFilter,
    ) -> Result<Vec<AccountBalance>, FilterError> {
        let range = filter.validate()?;
        let Some(&at) = self.account_positions.get(&filter.account_id) else {
            return Ok(Vec::new());
        };
        if !self.accounts[at as usize]
            .flags
            .contains(AccountFlags::HISTORY)
        {
            return Err(FilterError::HistoryNotEnabled);
        }
        let history = timestamp_window(&self.account_history[at as usize], range, |b| b.timestamp);
        let selective = filter.code != 0
            || filter.user_data_128 != 0
            || filter.user_data_64 != 0
            || filter.user_data_32 != 0
            || filter.direction != Direction::Both;
        let matches = |balance: &&AccountBalance| {
            // Expiries have no transfer of their own; they match only an unselective filter.
            !selective
                || self
                    .transfer_at_timestamp(balance.timestamp)
                    .is_some_and(|transfer| filter.selects(transfer))
        };
        Ok(if filter.reversed {
            history
                .iter()
                .rev()
                .filter(matches)
                .take(range.limit)
                .copied()
                .collect()
        } else {
            history
                .iter()
                .filter(matches)
                .take(range.limit)
                .copied()
                .collect()
        })
    }

    fn transfer_at_timestamp(&self, timestamp: u64) -> Option<&Transfer> {
        let at = self.transfers.partition_point(|t| t.timestamp < timestamp);
        self.transfers.get(at).filter(|t| t.timestamp == timestamp)
    }

    pub fn query_accounts(&self, filter: &QueryFilter) -> Result<Vec<Account>, FilterError> {
        let range = filter.validate()?;
        let window = timestamp_window(&self.accounts, range, |a| a.timestamp);
        let matches = |account: &&Account| {
            (filter.user_data_128 == 0 || account.user_data_128 == filter.user_data_128)
                && (filter.user_data_64 == 0 || account.user_data_64 == filter.user_data_64)
                && (filter.user_data_32 == 0 || account.user_data_32 == filter.user_data_32)
                && (filter.ledger == 0 || account.ledger == filter.ledger)
                && (filter.code == 0 || account.code == filter.code)
        };
        Ok(if filter.reversed {
            window
                .iter()
                .rev()
                .filter(matches)
                .take(range.limit)
                .copied()
                .collect()
        } else {
            window
                .iter()
                .filter(matches)
                .take(range.limit)
                .copied()
                .collect()
        })
    }

    pub fn query_transfers(&self, filter: &QueryFilter) -> Result<Vec<Transfer>, FilterError> {
        let range = filter.validate()?;
        let window = timestamp_window(&self.transfers, range, |t| t.timestamp);
        let matches = |transfer: &&Transfer| {
            (filter.user_data_128 == 0 || transfer.user_data_128 == filter.user_data_128)
                && (filter.user_data_64 == 0 || transfer.user_data_64 == filter.user_data_64)
                && (filter.user_data_32 == 0 || transfer.user_data_32 == filter.user_data_32)
                && (filter.ledger == 0 || transfer.ledger == filter.ledger)
                && (filter.code == 0 || transfer.code == filter.code)
        };
        Ok(if filter.reversed {
            window
                .iter()
                .rev()
                .filter(matches)
                .take(range.limit)
                .copied()
                .collect()
        } else {
            window
                .iter()
                .filter(matches)
                .take(range.limit)
                .copied()
                .collect()
        })
    }

    /// Every account, in creation order.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// Every transfer, in creation order.
    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers
    }

    // ---------------------------------------------------------------- checks

    /// Posted and pending totals per ledger, in ledger order.
    pub fn totals_by_ledger(&self) -> BTreeMap<u32, LedgerTotals> {
        let mut totals: BTreeMap<u32, LedgerTotals> = BTreeMap::new();
        for account in &self.accounts {
            let entry = totals.entry(account.ledger).or_default();
            entry.accounts += 1;
            // Sums of u128 balances can only overflow past 2^128 minor units, which the
            // per-account overflow checks make unreachable for any real ledger; saturate
            // so that a check never panics.
            entry.debits_posted = entry.debits_posted.saturating_add(account.debits_posted);
            entry.credits_posted = entry.credits_posted.saturating_add(account.credits_posted);
            entry.debits_pending = entry.debits_pending.saturating_add(account.debits_pending);
            entry.credits_pending = entry
                .credits_pending
                .saturating_add(account.credits_pending);
        }
        totals
    }

    /// Checks every invariant of the ledger over the whole state (O(size): for tests,
    /// simulations and the end of a demo, not the hot path).
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let fail = |message: String| Err(InvariantViolation(message));
        for (ledger, totals) in self.totals_by_ledger() {
            if !totals.is_conserved() {
                return fail(format!("ledger {ledger} is not balanced: {totals:?}"));
            }
        }
        let mut pending_debits = vec![0u128; self.accounts.len()];
        let mut pending_credits = vec![0u128; self.accounts.len()];
        let mut previous_timestamp = 0;
        for (position, transfer) in self.transfers.iter().enumerate() {
            if transfer.timestamp <= previous_timestamp {
                return fail(format!(
                    "transfer {} is out of timestamp order",
                    transfer.id
                ));
            }
            previous_timestamp = transfer.timestamp;
            if self.pending_status[position] == PendingStatus::Pending {
                let debit = self.account_position(transfer.debit_account_id) as usize;
                let credit = self.account_position(transfer.credit_account_id) as usize;
                pending_debits[debit] += transfer.amount;
                pending_credits[credit] += transfer.amount;
                let queued = transfer
                    .expires_at()
                    .is_none_or(|at| self.expiry_queue.contains(&(at, to_position(position))));
                if !queued {
                    return fail(format!(
                        "pending transfer {} is missing from the expiry queue",
                        transfer.id
                    ));
                }
            }
        }
        let mut previous_timestamp = 0;
        for (position, account) in self.accounts.iter().enumerate() {
            if account.timestamp <= previous_timestamp {
                return fail(format!("account {} is out of timestamp order", account.id));
            }
            previous_timestamp = account.timestamp;
            if !account.balances_within_flags() {
                return fail(format!(
                    "account {} violates its balance flags: {account:?}",
                    account.id
                ));
            }
            if account.debits_pending != pending_debits[position]
                || account.credits_pending != pending_credits[position]
            {
                return fail(format!(
                    "account {} pending balances differ from its pending transfers",
                    account.id
                ));
            }
        }
        if self.expiry_queue.len()
            > self
                .pending_status
                .iter()
                .filter(|s| **s == PendingStatus::Pending)
                .count()
        {
            return fail("the expiry queue holds transfers that are not pending".into());
        }
        Ok(())
    }

    /// A BLAKE3 hash of the whole state in a canonical order (see docs/ledger.md).
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"corebank-ledger-state-v1");
        hasher.update(&self.last_timestamp.to_le_bytes());
        hasher.update(&(self.accounts.len() as u64).to_le_bytes());
        for account in &self.accounts {
            hash_account(&mut hasher, account);
        }
        hasher.update(&(self.transfers.len() as u64).to_le_bytes());
        for (transfer, status) in self.transfers.iter().zip(&self.pending_status) {
            hash_transfer(&mut hasher, transfer);
            hasher.update(&[status.to_byte()]);
        }
        hasher.update(&(self.burnt.len() as u64).to_le_bytes());
        for (id, result) in &self.burnt {
            hasher.update(&id.to_le_bytes());
            hasher.update(&result.code().to_le_bytes());
        }
        for history in &self.account_history {
            hasher.update(&(history.len() as u64).to_le_bytes());
            for balance in history {
                hasher.update(&balance.timestamp.to_le_bytes());
                for value in [
                    balance.debits_pending,
                    balance.debits_posted,
                    balance.credits_pending,
                    balance.credits_posted,
                ] {
                    hasher.update(&value.to_le_bytes());
                }
            }
        }
        *hasher.finalize().as_bytes()
    }
}

/// A vector index as a position. `check_batch` refuses any batch that would take a
/// vector to `NO_POSITION` entries, so this never saturates.
fn to_position(index: usize) -> Position {
    debug_assert!(
        index < NO_POSITION as usize,
        "position beyond the checked capacity"
    );
    Position::try_from(index).unwrap_or(NO_POSITION)
}

/// An event's index in its batch (at most 8,190) as the u32 of a result.
fn event_index(index: usize) -> u32 {
    debug_assert!(index < BATCH_EVENTS_MAX);
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// The amount a post or void event means: for post, 0 and 2^128-1 stand for the full
/// pending amount; for void, 0 does.
fn resolve_amount(event: &Transfer, pending_amount: u128) -> u128 {
    let post = event.flags.contains(TransferFlags::POST_PENDING_TRANSFER);
    if event.amount == 0 || (post && event.amount == u128::MAX) {
        pending_amount
    } else {
        event.amount
    }
}

fn reopen_closed_by(pending: &Transfer, debit: &mut Account, credit: &mut Account) {
    if pending.flags.contains(TransferFlags::CLOSING_DEBIT) {
        debit.flags.remove(AccountFlags::CLOSED);
    }
    if pending.flags.contains(TransferFlags::CLOSING_CREDIT) {
        credit.flags.remove(AccountFlags::CLOSED);
    }
}

fn nonzero_or<T: PartialEq + Default + Copy>(value: T, fallback: T) -> T {
    if value == T::default() {
        fallback
    } else {
        value
    }
}

fn account_exists(event: &Account, existing: &Account) -> CreateAccountResult {
    use CreateAccountResult as R;
    if event.flags != existing.flags {
        return R::ExistsWithDifferentFlags;
    }
    if event.user_data_128 != existing.user_data_128 {
        return R::ExistsWithDifferentUserData128;
    }
    if event.user_data_64 != existing.user_data_64 {
        return R::ExistsWithDifferentUserData64;
    }
    if event.user_data_32 != existing.user_data_32 {
        return R::ExistsWithDifferentUserData32;
    }
    if event.ledger != existing.ledger {
        return R::ExistsWithDifferentLedger;
    }
    if event.code != existing.code {
        return R::ExistsWithDifferentCode;
    }
    R::Exists
}

/// The sub-slice of `items` (sorted by timestamp) inside the range.
fn timestamp_window<T>(items: &[T], range: TimeRange, timestamp: impl Fn(&T) -> u64) -> &[T] {
    let start = items.partition_point(|item| timestamp(item) < range.min);
    let end = items.partition_point(|item| timestamp(item) <= range.max);
    &items[start..end.max(start)]
}

fn hash_account(hasher: &mut blake3::Hasher, account: &Account) {
    for value in [
        account.id,
        account.debits_pending,
        account.debits_posted,
        account.credits_pending,
        account.credits_posted,
        account.user_data_128,
    ] {
        hasher.update(&value.to_le_bytes());
    }
    hasher.update(&account.user_data_64.to_le_bytes());
    hasher.update(&account.user_data_32.to_le_bytes());
    hasher.update(&account.ledger.to_le_bytes());
    hasher.update(&account.code.to_le_bytes());
    hasher.update(&account.flags.bits().to_le_bytes());
    hasher.update(&account.timestamp.to_le_bytes());
}

fn hash_transfer(hasher: &mut blake3::Hasher, transfer: &Transfer) {
    for value in [
        transfer.id,
        transfer.debit_account_id,
        transfer.credit_account_id,
        transfer.amount,
        transfer.pending_id,
        transfer.user_data_128,
    ] {
        hasher.update(&value.to_le_bytes());
    }
    hasher.update(&transfer.user_data_64.to_le_bytes());
    hasher.update(&transfer.user_data_32.to_le_bytes());
    hasher.update(&transfer.timeout.to_le_bytes());
    hasher.update(&transfer.ledger.to_le_bytes());
    hasher.update(&transfer.code.to_le_bytes());
    hasher.update(&transfer.flags.bits().to_le_bytes());
    hasher.update(&transfer.timestamp.to_le_bytes());
}
