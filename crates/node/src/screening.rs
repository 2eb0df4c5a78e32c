//! Screening in the write path: the leader asks the branch's [`Screener`] about every
//! new transfer of a batch before it proposes the entry, and writes the verdicts into
//! it. Replicas apply what the entry says; nothing here runs inside apply.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use corebank_ledger::{Ledger, Transfer, TransferFlags};
use corebank_screening::{Assessment, Candidate, ReasonCode, Screener, TransferContext, Verdict};

use crate::command::{Decision, Request};
use crate::risk_state::RiskState;

/// What the branch does with transfers when its screener cannot assess them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Approve them (and count it): availability over fraud control.
    #[default]
    Open,
    /// Refuse them with `risk_check_unavailable`: nothing moves unscreened.
    Closed,
}

impl FailurePolicy {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// A branch's screening set-up.
#[derive(Clone, Debug)]
pub struct Screening {
    pub screener: Arc<dyn Screener>,
    pub on_failure: FailurePolicy,
}

/// What the leader's screening has done since start.
#[derive(Debug, Default)]
pub struct ScreeningCounters {
    pub screened: AtomicU64,
    pub held: AtomicU64,
    pub declined: AtomicU64,
    pub freezes: AtomicU64,
    /// Batches the screener could not assess.
    pub failures: AtomicU64,
    /// Transfers decided by the failure policy.
    pub failure_policy_applied: AtomicU64,
    /// Nanoseconds spent in the screener.
    pub screen_nanos: AtomicU64,
}

/// A new transfer (not a post or void of a pending one): the kind that is screened.
pub fn is_new_transfer(event: &Transfer) -> bool {
    !event
        .flags
        .intersects(TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER)
}

/// The screen's view of `event`, to be applied (or applied) at `timestamp`.
pub fn candidate(
    ledger: &Ledger,
    event: &Transfer,
    timestamp: u64,
    context: TransferContext,
) -> Candidate {
    let debit = ledger.account(event.debit_account_id);
    let credit = ledger.account(event.credit_account_id);
    Candidate {
        id: event.id,
        debit_account: event.debit_account_id,
        credit_account: event.credit_account_id,
        amount: event.amount,
        ledger: event.ledger,
        code: event.code,
        pending: event.flags.contains(TransferFlags::PENDING),
        timestamp_ns: if context.occurred_at_ns == 0 {
            timestamp
        } else {
            context.occurred_at_ns
        },
        debit_account_created_ns: debit.map_or(0, |a| a.timestamp),
        credit_account_created_ns: credit.map_or(0, |a| a.timestamp),
        debit_available: debit.map_or(0, |a| {
            a.credits_posted
                .saturating_sub(a.debits_posted)
                .saturating_sub(a.debits_pending)
        }),
        context,
    }
}

/// The new transfers to screen in `requests` (whose events will get timestamps from
/// `timestamp` on), each with its (request index, event index). Reads the state: the
/// caller holds its locks for this step only, never while the screener runs.
pub(crate) fn gather_candidates(
    ledger: &Ledger,
    risk: &RiskState,
    timestamp: u64,
    requests: &[Request],
) -> (Vec<Candidate>, Vec<(usize, usize)>) {
    let mut candidates = Vec::new();
    let mut origin = Vec::new();
    let mut at = timestamp;
    for (request_index, request) in requests.iter().enumerate() {
        if let Request::Screened(screened) = request {
            for (index, event) in screened.events.iter().enumerate() {
                let context = screened.context_of(index);
                // A retry of a transfer that exists, or was declined, is answered from
                // the state: screening it again would count its risk twice.
                if is_new_transfer(event)
                    && context.channel != corebank_screening::Channel::Internal
                    && ledger.transfer(event.id).is_none()
                    && !risk.was_declined(event.id)
                {
                    candidates.push(candidate(ledger, event, at + index as u64, context));
                    origin.push((request_index, index));
                }
            }
        }
        at += request.events() as u64;
    }
    (candidates, origin)
}

/// Screens `candidates` (from [`gather_candidates`]) and writes the decisions into
/// their requests; the failure policy decides when the screener fails.
pub(crate) fn screen_candidates(
    screening: &Screening,
    counters: &ScreeningCounters,
    candidates: &[Candidate],
    origin: Vec<(usize, usize)>,
    requests: &mut [Request],
) {
    if candidates.is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    let mut assessments = Vec::with_capacity(candidates.len());
    let outcome = screening.screener.screen(candidates, &mut assessments);
    counters.screen_nanos.fetch_add(
        u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    counters
        .screened
        .fetch_add(candidates.len() as u64, Ordering::Relaxed);
    let failed = match outcome {
        Ok(()) if assessments.len() == candidates.len() => None,
        Ok(()) => Some(format!(
            "the screener answered {} assessments for {} transfers",
            assessments.len(),
            candidates.len()
        )),
        Err(error) => Some(error.to_string()),
    };
    if let Some(reason) = failed {
        counters.failures.fetch_add(1, Ordering::Relaxed);
        counters
            .failure_policy_applied
            .fetch_add(candidates.len() as u64, Ordering::Relaxed);
        tracing::warn!(
            policy = screening.on_failure.name(),
            transfers = candidates.len(),
            "screening failed: {reason}"
        );
        assessments.clear();
        let verdict = match screening.on_failure {
            FailurePolicy::Open => return,
            FailurePolicy::Closed => Verdict::Decline,
        };
        assessments.resize(
            candidates.len(),
            Assessment {
                verdict,
                score: 0,
                reasons: [
                    ReasonCode::SCREENING_UNAVAILABLE,
                    ReasonCode::NONE,
                    ReasonCode::NONE,
                ],
                freeze_debit_account: false,
            },
        );
    }
    for ((request_index, index), assessment) in origin.into_iter().zip(assessments) {
        if assessment.verdict == Verdict::Approve && !assessment.freeze_debit_account {
            continue;
        }
        match assessment.verdict {
            Verdict::Hold => counters.held.fetch_add(1, Ordering::Relaxed),
            Verdict::Decline => counters.declined.fetch_add(1, Ordering::Relaxed),
            Verdict::Approve => 0,
        };
        if assessment.freeze_debit_account {
            counters.freezes.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(Request::Screened(screened)) = requests.get_mut(request_index) {
            screened.decisions.push(Decision {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                assessment,
            });
        }
    }
}
