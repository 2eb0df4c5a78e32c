//! The branch's risk state: what the screen decided that the ledger alone does not
//! record. It is part of the replicated state machine and of its snapshots, so every
//! replica holds the same: transfers held for review, frozen accounts, declined ids (a
//! retry of a declined transfer is declined again) and the journal of risk events that
//! analysts and the risk agent follow.
//!
//! Everything here is applied from the log, never decided here: the leader's screen put
//! its verdicts into the entry (see [`crate::command::ScreenedTransfers`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use corebank_ledger::{
    BatchError, CreateTransferResult, CreateTransfersResult, Ledger, Transfer, TransferFlags,
};
use corebank_screening::{Assessment, ReasonCode, Verdict};
use serde::{Deserialize, Serialize};

use crate::command::{Decision, RiskAction, ScreenedTransfers};

/// Risk events kept in memory (and in snapshots); older ones are dropped, their
/// sequence numbers are not reused.
pub const JOURNAL_EVENTS_MAX: usize = 200_000;
/// The longest analyst note kept, in bytes.
pub const NOTE_BYTES_MAX: usize = 500;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RiskEventKind {
    /// A transfer was created pending for review.
    Held,
    /// A transfer was declined by the screen.
    Declined,
    /// An account was frozen (repeated high risk, or by an analyst).
    Frozen,
    Unfrozen,
    /// An analyst released a held transfer (posted it).
    Released,
    /// An analyst rejected a held transfer (voided it).
    Rejected,
}

impl RiskEventKind {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Declined => "declined",
            Self::Frozen => "frozen",
            Self::Unfrozen => "unfrozen",
            Self::Released => "released",
            Self::Rejected => "rejected",
        }
    }
}

/// One entry of the risk journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskEvent {
    /// From 1, without gaps.
    pub sequence: u64,
    /// The ledger time of the log entry that caused it.
    pub timestamp: u64,
    pub kind: RiskEventKind,
    /// The transfer concerned; 0 for a freeze or unfreeze.
    pub transfer_id: u128,
    /// The debit account of the transfer, or the account frozen.
    pub account: u128,
    /// The credit account of the transfer (0 when none).
    pub counterparty: u128,
    pub amount: u128,
    pub ledger: u32,
    pub score: u16,
    pub reasons: [u16; 3],
    /// The analyst's comment (reviews, manual freezes).
    pub note: String,
}

/// A transfer waiting for an analyst.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldTransfer {
    pub transfer_id: u128,
    pub debit_account: u128,
    pub credit_account: u128,
    pub amount: u128,
    pub ledger: u32,
    pub timestamp: u64,
    pub score: u16,
    pub reasons: [u16; 3],
}

/// An account that cannot send money.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenAccount {
    pub account: u128,
    pub since: u64,
    pub reason: u16,
    pub note: String,
}

/// Why a risk action was refused; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RiskRefusal {
    #[error("the transfer is not held for review")]
    NotHeld,
    #[error("a review must post or void the held transfer it names")]
    NotAReview,
    #[error("the account does not exist")]
    AccountNotFound,
    #[error("the account is not frozen")]
    NotFrozen,
}

impl RiskRefusal {
    pub const fn code(self) -> &'static str {
        match self {
            Self::NotHeld => "not_held",
            Self::NotAReview => "not_a_review",
            Self::AccountNotFound => "account_not_found",
            Self::NotFrozen => "not_frozen",
        }
    }

    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::NotHeld),
            2 => Some(Self::NotAReview),
            3 => Some(Self::AccountNotFound),
            4 => Some(Self::NotFrozen),
            _ => None,
        }
    }
}

/// The replicated risk state of a branch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskState {
    held: BTreeMap<u128, HeldTransfer>,
    /// Every id ever held: a retry of a held transfer is applied as the pending
    /// transfer it became, so that the ledger answers `exists`.
    held_ever: BTreeSet<u128>,
    declined: BTreeSet<u128>,
    frozen: BTreeMap<u128, FrozenAccount>,
    journal: VecDeque<RiskEvent>,
    next_sequence: u64,
}

/// What applying a screened request answers beside the ledger's results.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ScreenedOutcome {
    pub results: Vec<CreateTransfersResult>,
    /// The decisions that took effect: holds of created transfers, declines, freezes.
    pub decisions: Vec<Decision>,
}

impl RiskState {
    pub fn held(&self) -> impl DoubleEndedIterator<Item = &HeldTransfer> {
        self.held.values()
    }

    pub fn held_transfer(&self, id: u128) -> Option<&HeldTransfer> {
        self.held.get(&id)
    }

    pub fn frozen(&self) -> impl DoubleEndedIterator<Item = &FrozenAccount> {
        self.frozen.values()
    }

    pub fn is_frozen(&self, account: u128) -> bool {
        self.frozen.contains_key(&account)
    }

    pub fn was_declined(&self, id: u128) -> bool {
        self.declined.contains(&id)
    }

    /// The sequence number the next event will get.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence.max(1)
    }

    /// Up to `limit` journal events with a sequence at or after `from`.
    pub fn events_from(&self, from: u64, limit: usize) -> Vec<RiskEvent> {
        let first = self.journal.front().map_or(0, |e| e.sequence);
        let skip = usize::try_from(from.saturating_sub(first)).unwrap_or(usize::MAX);
        self.journal
            .iter()
            .skip(skip)
            .take(limit)
            .cloned()
            .collect()
    }

    /// A digest of the whole state, to compare replicas.
    pub fn digest(&self) -> [u8; 32] {
        let bytes =
            bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default();
        *blake3::hash(&bytes).as_bytes()
    }

    fn record(&mut self, mut event: RiskEvent) {
        event.sequence = self.next_sequence();
        self.next_sequence = event.sequence + 1;
        if self.journal.len() == JOURNAL_EVENTS_MAX {
            self.journal.pop_front();
        }
        self.journal.push_back(event);
    }

    fn transfer_event(
        kind: RiskEventKind,
        timestamp: u64,
        transfer: &Transfer,
        assessment: &Assessment,
        note: String,
    ) -> RiskEvent {
        RiskEvent {
            sequence: 0,
            timestamp,
            kind,
            transfer_id: transfer.id,
            account: transfer.debit_account_id,
            counterparty: transfer.credit_account_id,
            amount: transfer.amount,
            ledger: transfer.ledger,
            score: assessment.score,
            reasons: assessment.reasons.map(|r| r.0),
            note,
        }
    }

    /// Applies screened transfers at `timestamp`: held ones are created pending (they
    /// never expire), declined ones and debits of frozen accounts are refused, a post
    /// or void of a held transfer outside a review is refused, freezes take effect.
    pub fn apply_screened(
        &mut self,
        ledger: &mut Ledger,
        timestamp: u64,
        request: &ScreenedTransfers,
    ) -> Result<ScreenedOutcome, BatchError> {
        let events = &request.events;
        // Per event (only when there are decisions): the verdict, and whether a decline
        // is the failure policy's (the screen could not run) rather than the screen's.
        let mut verdicts: Vec<(Verdict, bool)> = Vec::new();
        if !request.decisions.is_empty() {
            verdicts = vec![(Verdict::Approve, false); events.len()];
            for decision in &request.decisions {
                let index = decision.index as usize;
                if let (Some(slot), Some(event)) = (verdicts.get_mut(index), events.get(index)) {
                    *slot = (
                        effective_verdict(decision.assessment.verdict, event),
                        decision.assessment.reasons[0] == ReasonCode::SCREENING_UNAVAILABLE,
                    );
                }
            }
        }
        let verdict = |index: usize| verdicts.get(index).map_or_else(Verdict::default, |v| v.0);
        let screen_unavailable = |index: usize| verdicts.get(index).is_some_and(|v| v.1);
        // A retry of a held transfer is applied as the pending transfer it became; a
        // hold verdict on an id that already exists changes nothing (the ledger answers).
        let needs_hold = |event: &Transfer, index: usize| {
            (verdict(index) == Verdict::Hold && ledger.transfer(event.id).is_none())
                || (!self.held_ever.is_empty() && self.held_ever.contains(&event.id))
        };
        let applied: Cow<'_, [Transfer]> = if events
            .iter()
            .enumerate()
            .any(|(index, e)| needs_hold(e, index))
        {
            let mut held = events.clone();
            for (index, event) in held.iter_mut().enumerate() {
                if needs_hold(event, index) {
                    event.flags.insert(TransferFlags::PENDING);
                }
            }
            Cow::Owned(held)
        } else {
            Cow::Borrowed(events)
        };
        let results = {
            let state = &*self;
            ledger.create_transfers_gated(timestamp, &applied, &|index, event| {
                if is_post_or_void(event) {
                    return state
                        .held
                        .contains_key(&event.pending_id)
                        .then_some(CreateTransferResult::PendingTransferHeldForReview);
                }
                if !state.declined.is_empty() && state.declined.contains(&event.id) {
                    return Some(CreateTransferResult::DeclinedByRisk);
                }
                if verdict(index) == Verdict::Decline {
                    return Some(if screen_unavailable(index) {
                        CreateTransferResult::RiskCheckUnavailable
                    } else {
                        CreateTransferResult::DeclinedByRisk
                    });
                }
                if !state.frozen.is_empty() && state.frozen.contains_key(&event.debit_account_id) {
                    return Some(CreateTransferResult::DebitAccountFrozen);
                }
                None
            })?
        };
        let mut outcome = ScreenedOutcome {
            results,
            decisions: Vec::new(),
        };
        if request.decisions.is_empty() {
            return Ok(outcome);
        }
        let failure = |index: u32| {
            outcome
                .results
                .binary_search_by_key(&index, |r| r.index)
                .ok()
                .map(|at| outcome.results[at].result)
        };
        let mut effects = Vec::new();
        for decision in &request.decisions {
            let index = decision.index as usize;
            let Some(event) = events.get(index) else {
                continue;
            };
            let at = timestamp + decision.index as u64;
            let mut took_effect = false;
            match (verdict(index), failure(decision.index)) {
                (Verdict::Hold, None) if !self.held_ever.contains(&event.id) => {
                    self.held.insert(
                        event.id,
                        HeldTransfer {
                            transfer_id: event.id,
                            debit_account: event.debit_account_id,
                            credit_account: event.credit_account_id,
                            amount: event.amount,
                            ledger: event.ledger,
                            timestamp: at,
                            score: decision.assessment.score,
                            reasons: decision.assessment.reasons.map(|r| r.0),
                        },
                    );
                    self.held_ever.insert(event.id);
                    effects.push(Self::transfer_event(
                        RiskEventKind::Held,
                        at,
                        event,
                        &decision.assessment,
                        String::new(),
                    ));
                    took_effect = true;
                }
                (Verdict::Decline, Some(CreateTransferResult::DeclinedByRisk))
                    if self.declined.insert(event.id) =>
                {
                    effects.push(Self::transfer_event(
                        RiskEventKind::Declined,
                        at,
                        event,
                        &decision.assessment,
                        String::new(),
                    ));
                    took_effect = true;
                }
                _ => {}
            }
            // The screen freezes customers' deposit accounts (those that cannot be
            // overdrawn), never the bank's own (its cash, its clearing accounts),
            // which are the debit side of every deposit and every delivery.
            if decision.assessment.freeze_debit_account
                && ledger.account(event.debit_account_id).is_some_and(|a| {
                    a.flags
                        .contains(corebank_ledger::AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
                })
                && !self.frozen.contains_key(&event.debit_account_id)
            {
                self.frozen.insert(
                    event.debit_account_id,
                    FrozenAccount {
                        account: event.debit_account_id,
                        since: at,
                        reason: decision.assessment.reasons[0].0,
                        note: String::new(),
                    },
                );
                let mut frozen = Self::transfer_event(
                    RiskEventKind::Frozen,
                    at,
                    event,
                    &decision.assessment,
                    String::new(),
                );
                frozen.transfer_id = event.id;
                effects.push(frozen);
                took_effect = true;
            }
            if took_effect {
                outcome.decisions.push(Decision {
                    index: decision.index,
                    assessment: Assessment {
                        verdict: verdict(index),
                        ..decision.assessment
                    },
                });
            }
        }
        for event in effects {
            self.record(event);
        }
        Ok(outcome)
    }

    /// Applies an analyst's (or the agent's) action.
    pub fn apply_action(
        &mut self,
        ledger: &mut Ledger,
        timestamp: u64,
        action: &RiskAction,
    ) -> Result<Vec<CreateTransfersResult>, RiskRefusal> {
        match action {
            RiskAction::Freeze {
                account,
                reason,
                note,
            } => {
                if ledger.account(*account).is_none() {
                    return Err(RiskRefusal::AccountNotFound);
                }
                if !self.frozen.contains_key(account) {
                    self.frozen.insert(
                        *account,
                        FrozenAccount {
                            account: *account,
                            since: timestamp,
                            reason: reason.0,
                            note: note.clone(),
                        },
                    );
                    self.record(account_event(
                        RiskEventKind::Frozen,
                        timestamp,
                        *account,
                        *reason,
                        note,
                    ));
                }
                Ok(Vec::new())
            }
            RiskAction::Unfreeze { account, note } => {
                if self.frozen.remove(account).is_none() {
                    return Err(RiskRefusal::NotFrozen);
                }
                self.record(account_event(
                    RiskEventKind::Unfrozen,
                    timestamp,
                    *account,
                    ReasonCode::NONE,
                    note,
                ));
                Ok(Vec::new())
            }
            RiskAction::Review { event, note } => {
                if !is_post_or_void(event) {
                    return Err(RiskRefusal::NotAReview);
                }
                let Some(held) = self.held.get(&event.pending_id).cloned() else {
                    return Err(RiskRefusal::NotHeld);
                };
                let results = ledger
                    .create_transfers(timestamp, std::slice::from_ref(event))
                    .unwrap_or_else(|_| {
                        vec![CreateTransfersResult {
                            index: 0,
                            result: CreateTransferResult::TimestampMustBeZero,
                        }]
                    });
                if results.is_empty() {
                    self.held.remove(&event.pending_id);
                    let kind = if event.flags.contains(TransferFlags::POST_PENDING_TRANSFER) {
                        RiskEventKind::Released
                    } else {
                        RiskEventKind::Rejected
                    };
                    self.record(RiskEvent {
                        sequence: 0,
                        timestamp,
                        kind,
                        transfer_id: held.transfer_id,
                        account: held.debit_account,
                        counterparty: held.credit_account,
                        amount: held.amount,
                        ledger: held.ledger,
                        score: held.score,
                        reasons: held.reasons,
                        note: note.clone(),
                    });
                }
                Ok(results)
            }
        }
    }
}

fn account_event(
    kind: RiskEventKind,
    timestamp: u64,
    account: u128,
    reason: ReasonCode,
    note: &str,
) -> RiskEvent {
    RiskEvent {
        sequence: 0,
        timestamp,
        kind,
        transfer_id: 0,
        account,
        counterparty: 0,
        amount: 0,
        ledger: 0,
        score: 0,
        reasons: [reason.0, 0, 0],
        note: note.to_owned(),
    }
}

fn is_post_or_void(event: &Transfer) -> bool {
    event
        .flags
        .intersects(TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER)
}

/// A hold applies to a new, immediate transfer only: a reservation (pending) or a post
/// or void cannot be held, so a hold verdict on one declines it instead.
fn effective_verdict(verdict: Verdict, event: &Transfer) -> Verdict {
    match verdict {
        Verdict::Hold if event.flags.contains(TransferFlags::PENDING) || is_post_or_void(event) => {
            Verdict::Decline
        }
        other => other,
    }
}
