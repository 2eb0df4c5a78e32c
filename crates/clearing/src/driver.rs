//! The saga driver: the three steps, one at a time or all together, the resumption of
//! every unfinished saga of a branch from its own ledger, and a saga's status.

use std::collections::BTreeMap;

use corebank_account_number::BranchCode;
use corebank_banking::transfer_code;
use corebank_ledger::{BATCH_EVENTS_MAX, CreateTransferResult, Transfer, TransferFlags};

use crate::port::{BranchPort, PortError};
use crate::saga::{POST_ATTEMPTS_MAX, Saga, post_id, void_id};
use crate::scan::{SagaState, classify_reservations, scan_transfers};

/// What the source's ledger answered to a reservation (step 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// Applied now.
    Reserved,
    /// Applied earlier (`exists`): a retry of the same saga.
    AlreadyReserved,
    /// Refused: nothing reserved, nothing to undo.
    Rejected(CreateTransferResult),
}

/// What the destination's ledger decided for a saga (step 2, or a fence). Final: the
/// destination's ledger gives the same answer for the same id forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The destination applied the delivery (now or earlier).
    Delivered,
    /// The destination's ledger refused the delivery, or a fence took the id first:
    /// the delivery can never be applied.
    Refused(CreateTransferResult),
}

/// Where a saga ended up after a call to the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SagaOutcome {
    /// The source refused the reservation (insufficient funds, payer account closed or
    /// missing, id used for something else, ...): nothing moved, nothing to undo.
    Rejected(CreateTransferResult),
    /// Whether the reservation was applied is unknown (the source was unavailable).
    /// Repeat [`start`] with the same saga; nothing else is needed.
    Unknown(PortError),
    /// Reserved but not finished: the destination's answer, or step 3, is outstanding
    /// because a branch was unavailable or refused the request itself. [`resume`]
    /// finishes it. Never voided on this.
    InFlight {
        delivery: Option<Delivery>,
        error: PortError,
    },
    /// Delivered and posted: the money moved.
    Posted,
    /// Refused by the destination and voided: the funds are back with the payer.
    /// `refusal` is the destination's answer when this call saw it.
    Voided {
        refusal: Option<CreateTransferResult>,
    },
    /// Decided, but the source's ledger refused step 3 (an account of the reservation
    /// was closed since, or the saga was resolved the other way by someone else). A
    /// person must look; [`resume`] retries (with the next post id where needed).
    Stuck {
        delivery: Delivery,
        result: CreateTransferResult,
    },
}

impl SagaOutcome {
    /// The stable snake_case name of the outcome.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Rejected(_) => "rejected",
            Self::Unknown(_) => "unknown",
            Self::InFlight { .. } => "in_flight",
            Self::Posted => "posted",
            Self::Voided { .. } => "voided",
            Self::Stuck { .. } => "stuck",
        }
    }

    /// True when the saga will never change again (rejected, posted or voided).
    pub const fn is_final(&self) -> bool {
        matches!(self, Self::Rejected(_) | Self::Posted | Self::Voided { .. })
    }
}

/// A saga as its source's ledger records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SagaStatus {
    /// No transfer with this id at the source: the saga never reserved (or its
    /// reservation was refused). A retry with the same id may start it.
    NotFound,
    /// The id belongs to a transfer at the source that is not a reservation.
    NotASaga,
    /// Reserved, neither posted nor voided yet.
    Pending(Saga),
    Posted(Saga),
    Voided(Saga),
}

impl SagaStatus {
    /// The stable snake_case name of the status.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::NotASaga => "not_a_saga",
            Self::Pending(_) => "pending",
            Self::Posted(_) => "posted",
            Self::Voided(_) => "voided",
        }
    }
}

/// Step 1 at the source: reserve the funds.
pub async fn reserve<P: BranchPort>(source: &P, saga: &Saga) -> Result<Reservation, PortError> {
    assert_eq!(
        source.branch(),
        saga.source(),
        "the port of the saga's source"
    );
    let results = source.create_transfers(vec![saga.reservation()]).await?;
    Ok(match first_result(&results) {
        None => Reservation::Reserved,
        Some(CreateTransferResult::Exists) => Reservation::AlreadyReserved,
        Some(result) => Reservation::Rejected(result),
    })
}

/// Step 2 at the destination: deliver. Call it only for a saga whose reservation the
/// source has acknowledged (and that nobody voided outside the protocol).
pub async fn deliver<P: BranchPort>(destination: &P, saga: &Saga) -> Result<Delivery, PortError> {
    assert_eq!(
        destination.branch(),
        saga.destination(),
        "the port of the saga's destination"
    );
    let results = destination.create_transfers(vec![saga.delivery()]).await?;
    Ok(delivery_of(first_result(&results)))
}

/// Instead of step 2, at the destination: decide the saga as refused unless it was
/// delivered already (see [`Saga::fence`]). For a saga that must not wait any longer
/// for its destination; then [`settle`] it as usual.
pub async fn fence<P: BranchPort>(destination: &P, saga: &Saga) -> Result<Delivery, PortError> {
    assert_eq!(
        destination.branch(),
        saga.destination(),
        "the port of the saga's destination"
    );
    let results = destination.create_transfers(vec![saga.fence()]).await?;
    fence_outcome(destination, saga, first_result(&results)).await
}

/// Step 3 at the source: post after a delivery, void after a refusal. Idempotent: an
/// earlier post or void of this saga counts as done.
pub async fn settle<P: BranchPort>(source: &P, saga: &Saga, delivery: Delivery) -> SagaOutcome {
    assert_eq!(
        source.branch(),
        saga.source(),
        "the port of the saga's source"
    );
    let mut outcomes = settle_all(source, &[(*saga, delivery)]).await;
    outcomes
        .pop()
        .unwrap_or_else(|| unreachable!("settle_all answers every saga"))
}

/// Runs a saga to its end as far as the branches let it: reserve at the source, deliver
/// at the destination, post or void at the source. Safe to repeat with the same saga
/// (a customer's retry): every step is idempotent, and a saga already finished answers
/// its final outcome without touching the destination again.
pub async fn start<P: BranchPort>(source: &P, destination: &P, saga: &Saga) -> SagaOutcome {
    match reserve(source, saga).await {
        Err(error) => return SagaOutcome::Unknown(error),
        Ok(Reservation::Rejected(result)) => return SagaOutcome::Rejected(result),
        Ok(Reservation::Reserved) => {}
        Ok(Reservation::AlreadyReserved) => match saga_status(source, saga.id()).await {
            Ok(SagaStatus::Pending(_)) => {}
            Ok(SagaStatus::Posted(_)) => return SagaOutcome::Posted,
            Ok(SagaStatus::Voided(_)) => return SagaOutcome::Voided { refusal: None },
            Ok(SagaStatus::NotFound | SagaStatus::NotASaga) => {
                // The port broke its contract (a read that misses an acknowledged
                // write); the reservation exists, so only resume may go on.
                return SagaOutcome::InFlight {
                    delivery: None,
                    error: PortError::unavailable(
                        "the source answered `exists` but a read does not show the reservation",
                    ),
                };
            }
            Err(error) => {
                return SagaOutcome::InFlight {
                    delivery: None,
                    error,
                };
            }
        },
    }
    let delivery = match deliver(destination, saga).await {
        Ok(delivery) => delivery,
        Err(error) => {
            return SagaOutcome::InFlight {
                delivery: None,
                error,
            };
        }
    };
    settle(source, saga, delivery).await
}

/// The status of saga `id` in its source's ledger: one lookup of the reservation and
/// of every id step 3 may have used.
pub async fn saga_status<P: BranchPort>(source: &P, id: u128) -> Result<SagaStatus, PortError> {
    let mut ids = vec![id, void_id(id)];
    ids.extend((0..POST_ATTEMPTS_MAX).map(|attempt| post_id(id, attempt)));
    let found = source.lookup_transfers(ids).await?;
    let Some(stored) = found.iter().find(|transfer| transfer.id == id) else {
        return Ok(SagaStatus::NotFound);
    };
    let Some(saga) = Saga::from_reservation(source.branch(), stored) else {
        return Ok(SagaStatus::NotASaga);
    };
    let resolution = found.iter().find(|transfer| {
        transfer.pending_id == id
            && transfer.flags.intersects(
                TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER,
            )
    });
    Ok(match resolution {
        None => SagaStatus::Pending(saga),
        Some(t) if t.flags.contains(TransferFlags::POST_PENDING_TRANSFER) => {
            SagaStatus::Posted(saga)
        }
        Some(_) => SagaStatus::Voided(saga),
    })
}

/// How [`resume`] scans and decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumeOptions {
    /// Scan the source's reservations from this timestamp on (0: from the beginning).
    /// Pass the last report's [`ResumeReport::next_timestamp_min`] to skip history that
    /// holds no open saga.
    pub timestamp_min: u64,
    /// The most `CROSS_BRANCH_OUT` records one call reads.
    pub records_max: usize,
    /// The coordinator's clock, in the ledgers' nanoseconds, for `fence_after_ns`.
    pub now_ns: u64,
    /// Fence instead of deliver once a reservation is this old: the saga is then
    /// decided by the destination's ledger at once, delivered if its delivery got there
    /// first and refused otherwise. `None`: always deliver.
    pub fence_after_ns: Option<u64>,
}

impl Default for ResumeOptions {
    fn default() -> Self {
        Self {
            timestamp_min: 0,
            records_max: 1_000_000,
            now_ns: 0,
            fence_after_ns: None,
        }
    }
}

/// What [`resume`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResumeReport {
    /// Every open saga found, with where it stands now.
    pub outcomes: Vec<(Saga, SagaOutcome)>,
    /// Open pending `CROSS_BRANCH_OUT` transfers that are not reservations of this
    /// protocol: left alone, to be looked at.
    pub malformed: Vec<u128>,
    /// The scan stopped at `records_max`; call again from `next_timestamp_min`.
    pub truncated: bool,
    /// Where the next call may start its scan: the oldest saga still unfinished, or
    /// just past the last record read. An unfinished saga holds the mark back; when
    /// scans are also truncated behind it, newer records wait until it finishes (fence
    /// it, or raise `records_max`).
    pub next_timestamp_min: u64,
}

impl ResumeReport {
    /// Sagas this call brought to a final outcome.
    pub fn finished(&self) -> usize {
        self.outcomes.iter().filter(|(_, o)| o.is_final()).count()
    }

    /// Sagas still open after this call.
    pub fn unfinished(&self) -> usize {
        self.outcomes.len() - self.finished()
    }
}

/// Finds every unfinished saga of `source` in its own ledger (reservations neither
/// posted nor voided) and drives each as far as it can: deliver (or fence, past
/// `fence_after_ns`) at its destination, found through `route`, then post or void.
/// Deliveries are sent in batches per destination, posts and voids in batches to the
/// source. Err only when the source cannot be scanned.
pub async fn resume<'p, P, F>(
    source: &P,
    route: F,
    options: &ResumeOptions,
) -> Result<ResumeReport, PortError>
where
    P: BranchPort + 'p,
    F: Fn(BranchCode) -> Option<&'p P>,
{
    let branch = source.branch();
    let (transfers, truncated) = scan_transfers(
        source,
        transfer_code::CROSS_BRANCH_OUT,
        options.timestamp_min,
        options.records_max,
    )
    .await?;
    let (records, malformed) = classify_reservations(branch, &transfers);
    let open: Vec<_> = records
        .iter()
        .filter(|record| record.state == SagaState::Pending)
        .collect();

    // Step 2 (or a fence), per destination, in batches.
    let mut by_destination: BTreeMap<BranchCode, Vec<usize>> = BTreeMap::new();
    for (index, record) in open.iter().enumerate() {
        by_destination
            .entry(record.saga.destination())
            .or_default()
            .push(index);
    }
    let mut decided: Vec<Option<Result<Delivery, PortError>>> = vec![None; open.len()];
    for (destination, indexes) in &by_destination {
        let Some(port) = route(*destination) else {
            for index in indexes {
                decided[*index] = Some(Err(PortError::unavailable(format!(
                    "no route to branch {destination}"
                ))));
            }
            continue;
        };
        let overdue = |index: &&usize| {
            options.fence_after_ns.is_some_and(|after| {
                options.now_ns.saturating_sub(open[**index].timestamp) >= after
            })
        };
        let (fenced, delivered): (Vec<usize>, Vec<usize>) = indexes.iter().partition(overdue);
        let sagas: Vec<Saga> = delivered.iter().map(|i| open[*i].saga).collect();
        for (index, answer) in delivered.iter().zip(deliver_all(port, &sagas).await) {
            decided[*index] = Some(answer);
        }
        for index in fenced {
            decided[index] = Some(fence(port, &open[index].saga).await);
        }
    }

    // Step 3 for every decided saga, in batches to the source.
    let mut outcomes: Vec<Option<SagaOutcome>> = vec![None; open.len()];
    let mut to_settle = Vec::new();
    let mut settle_index = Vec::new();
    for (index, answer) in decided.into_iter().enumerate() {
        match answer {
            Some(Ok(delivery)) => {
                to_settle.push((open[index].saga, delivery));
                settle_index.push(index);
            }
            Some(Err(error)) => {
                outcomes[index] = Some(SagaOutcome::InFlight {
                    delivery: None,
                    error,
                });
            }
            None => unreachable!("every open saga has a destination"),
        }
    }
    for (index, outcome) in settle_index
        .into_iter()
        .zip(settle_all(source, &to_settle).await)
    {
        outcomes[index] = Some(outcome);
    }

    let outcomes: Vec<(Saga, SagaOutcome)> = open
        .iter()
        .zip(outcomes)
        .map(|(record, outcome)| {
            let outcome = outcome.unwrap_or_else(|| unreachable!("every open saga has an outcome"));
            (record.saga, outcome)
        })
        .collect();
    for (saga, outcome) in &outcomes {
        match outcome {
            SagaOutcome::Stuck { delivery, result } => tracing::error!(
                saga = saga.id(),
                destination = %saga.destination(),
                ?delivery,
                result = result.as_str(),
                "cross-branch transfer stuck at step 3"
            ),
            SagaOutcome::InFlight { error, .. } => tracing::warn!(
                saga = saga.id(),
                destination = %saga.destination(),
                error = %error,
                "cross-branch transfer still in flight"
            ),
            _ => {}
        }
    }
    let oldest_unfinished = open
        .iter()
        .zip(&outcomes)
        .filter(|(_, (_, outcome))| !outcome.is_final())
        .map(|(record, _)| record.timestamp)
        .min();
    let next_timestamp_min = oldest_unfinished.unwrap_or_else(|| {
        transfers.last().map_or(options.timestamp_min, |last| {
            last.timestamp.saturating_add(1)
        })
    });
    tracing::info!(
        branch = %branch,
        open = outcomes.len(),
        finished = outcomes.iter().filter(|(_, o)| o.is_final()).count(),
        "resumed cross-branch transfers"
    );
    Ok(ResumeReport {
        outcomes,
        malformed: malformed.iter().map(|t| t.id).collect(),
        truncated,
        next_timestamp_min,
    })
}

// ------------------------------------------------------------------ internals

/// The result of a one-event request.
fn first_result(
    results: &[corebank_ledger::CreateTransfersResult],
) -> Option<CreateTransferResult> {
    results.first().map(|r| r.result)
}

/// The destination's answer to a delivery: applied or `exists` is a delivery; any other
/// ledger result is final for this id (validation results are pure functions of the
/// event, and the others burnt the id), so it is a refusal.
fn delivery_of(result: Option<CreateTransferResult>) -> Delivery {
    match result {
        None | Some(CreateTransferResult::Exists) => Delivery::Delivered,
        Some(result) => Delivery::Refused(result),
    }
}

/// The destination's answer to a fence.
async fn fence_outcome<P: BranchPort>(
    destination: &P,
    saga: &Saga,
    result: Option<CreateTransferResult>,
) -> Result<Delivery, PortError> {
    use CreateTransferResult as R;
    match result {
        // The fence burnt the id, now or earlier (or a refused delivery did).
        Some(result @ (R::PendingTransferNotFound | R::IdAlreadyFailed)) => {
            Ok(Delivery::Refused(result))
        }
        // Something holds the id: the delivery, or (never, short of a hash collision)
        // another transfer. Look.
        Some(result) => {
            let stored = destination.lookup_transfers(vec![saga.id()]).await?;
            Ok(match stored.first() {
                Some(transfer) if saga.is_delivery(transfer) => Delivery::Delivered,
                _ => Delivery::Refused(result),
            })
        }
        // The fence names a pending transfer no one else derives; if one existed and
        // was posted, the id is taken by the fence: the delivery can never apply.
        None => {
            tracing::error!(
                saga = saga.id(),
                "a fence was applied: its pending transfer existed at the destination"
            );
            Ok(Delivery::Refused(R::ExistsWithDifferentFlags))
        }
    }
}

/// Sends events to a branch in batches; one answer per event, in order.
async fn create_all<P: BranchPort>(
    port: &P,
    events: Vec<Transfer>,
) -> Vec<Result<Option<CreateTransferResult>, PortError>> {
    let mut answers = Vec::with_capacity(events.len());
    for chunk in events.chunks(BATCH_EVENTS_MAX) {
        match port.create_transfers(chunk.to_vec()).await {
            Ok(failed) => {
                let mut per_event = vec![None; chunk.len()];
                for failure in failed {
                    if let Some(slot) = usize::try_from(failure.index)
                        .ok()
                        .and_then(|i| per_event.get_mut(i))
                    {
                        *slot = Some(failure.result);
                    }
                }
                answers.extend(per_event.into_iter().map(Ok));
            }
            Err(error) => answers.extend(chunk.iter().map(|_| Err(error.clone()))),
        }
    }
    answers
}

/// Step 2 for many sagas of one destination.
async fn deliver_all<P: BranchPort>(
    destination: &P,
    sagas: &[Saga],
) -> Vec<Result<Delivery, PortError>> {
    let events = sagas.iter().map(Saga::delivery).collect();
    create_all(destination, events)
        .await
        .into_iter()
        .map(|answer| answer.map(delivery_of))
        .collect()
}

/// What one step-3 answer means.
enum Step3 {
    Done(SagaOutcome),
    /// This post id was burnt by an earlier attempt: use the next one.
    NextAttempt,
    Stuck(CreateTransferResult),
}

fn step3(delivery: Delivery, result: Option<CreateTransferResult>) -> Step3 {
    use CreateTransferResult as R;
    match (delivery, result) {
        (Delivery::Delivered, None | Some(R::Exists | R::PendingTransferAlreadyPosted)) => {
            Step3::Done(SagaOutcome::Posted)
        }
        (Delivery::Delivered, Some(R::IdAlreadyFailed)) => Step3::NextAttempt,
        (Delivery::Refused(refusal), None | Some(R::Exists | R::PendingTransferAlreadyVoided)) => {
            Step3::Done(SagaOutcome::Voided {
                refusal: Some(refusal),
            })
        }
        (_, Some(result)) => Step3::Stuck(result),
    }
}

/// Step 3 for many sagas of one source: posts and voids in batches; a post whose id was
/// burnt is retried at once with the next attempt's id.
async fn settle_all<P: BranchPort>(source: &P, items: &[(Saga, Delivery)]) -> Vec<SagaOutcome> {
    let mut outcomes: Vec<Option<SagaOutcome>> = vec![None; items.len()];
    let mut attempts = vec![0_u8; items.len()];
    let mut todo: Vec<usize> = (0..items.len()).collect();
    while !todo.is_empty() {
        let events = todo
            .iter()
            .map(|i| match items[*i] {
                (saga, Delivery::Delivered) => saga.post(attempts[*i]),
                (saga, Delivery::Refused(_)) => saga.void(),
            })
            .collect();
        let answers = create_all(source, events).await;
        let mut again = Vec::new();
        for (i, answer) in todo.iter().zip(answers) {
            let (_, delivery) = items[*i];
            outcomes[*i] = match answer.map(|result| step3(delivery, result)) {
                Err(error) => Some(SagaOutcome::InFlight {
                    delivery: Some(delivery),
                    error,
                }),
                Ok(Step3::Done(outcome)) => Some(outcome),
                Ok(Step3::Stuck(result)) => Some(SagaOutcome::Stuck { delivery, result }),
                Ok(Step3::NextAttempt) if attempts[*i] + 1 < POST_ATTEMPTS_MAX => {
                    attempts[*i] += 1;
                    again.push(*i);
                    None
                }
                Ok(Step3::NextAttempt) => Some(SagaOutcome::Stuck {
                    delivery,
                    result: CreateTransferResult::IdAlreadyFailed,
                }),
            };
        }
        // Each round raises an attempt counter bounded by POST_ATTEMPTS_MAX: this ends.
        todo = again;
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| unreachable!("every saga was settled or left")))
        .collect()
}
