//! Automatic batching: single-event calls made concurrently by many tasks leave
//! together, as one `CreateTransfers` (or `CreateAccounts`) request.
//!
//! Each call puts its event and a reply slot into a bounded queue (full: the call
//! fails at once with [`ClientError::Busy`]). One background task per kind takes
//! the first waiting event, waits for a free request slot (`max_in_flight`,
//! default 1), keeps the batch open for `max_delay` (default 0), then takes every
//! other waiting event up to `max_events` and sends the lot. While a batch is in
//! flight, new calls wait in the queue and go together in the next one. The
//! answer lists only failed events, by index; each caller gets the result at its
//! own index (`None`: applied).
//!
//! Events of different callers are never linked to each other: a single-event
//! call with the `linked` flag is refused before it is queued (chains go through
//! [`Client::create_transfers`](crate::Client::create_transfers) as one batch).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use corebank_ledger::{
    Account, AccountFlags, CreateAccountResult, CreateTransferResult, EventResult, Transfer,
    TransferFlags,
};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::client::Core;
use crate::config::BatchPolicy;
use crate::error::ClientError;

type Reply<R> = oneshot::Sender<Result<Option<R>, ClientError>>;

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// An event kind of the ledger: accounts or transfers.
pub(crate) trait LedgerEvent: Copy + Send + Sync + 'static {
    /// The per-event result code.
    type Result: Copy + PartialEq + Send + fmt::Debug + 'static;
    /// `exists`: the same event was already applied.
    const EXISTS: Self::Result;
    /// `linked_event_failed`.
    const LINKED_EVENT_FAILED: Self::Result;
    /// The name of the event in error messages (`transfer`, `account`).
    const NAME: &'static str;
    /// Whether the event links to the next one.
    fn is_linked(&self) -> bool;
    /// Sends a batch (with retries) and returns its failed events.
    fn submit(
        core: Arc<Core>,
        events: Vec<Self>,
    ) -> BoxFuture<Result<Vec<EventResult<Self::Result>>, ClientError>>;
}

impl LedgerEvent for Transfer {
    type Result = CreateTransferResult;
    const EXISTS: CreateTransferResult = CreateTransferResult::Exists;
    const LINKED_EVENT_FAILED: CreateTransferResult = CreateTransferResult::LinkedEventFailed;
    const NAME: &'static str = "transfer";

    fn is_linked(&self) -> bool {
        self.flags.contains(TransferFlags::LINKED)
    }

    fn submit(
        core: Arc<Core>,
        events: Vec<Self>,
    ) -> BoxFuture<Result<Vec<EventResult<CreateTransferResult>>, ClientError>> {
        Box::pin(async move { core.create_transfers(&events).await })
    }
}

impl LedgerEvent for Account {
    type Result = CreateAccountResult;
    const EXISTS: CreateAccountResult = CreateAccountResult::Exists;
    const LINKED_EVENT_FAILED: CreateAccountResult = CreateAccountResult::LinkedEventFailed;
    const NAME: &'static str = "account";

    fn is_linked(&self) -> bool {
        self.flags.contains(AccountFlags::LINKED)
    }

    fn submit(
        core: Arc<Core>,
        events: Vec<Self>,
    ) -> BoxFuture<Result<Vec<EventResult<CreateAccountResult>>, ClientError>> {
        Box::pin(async move { core.create_accounts(&events).await })
    }
}

/// After a retry that followed an attempt of unknown outcome: the answers that
/// mean "already applied, by that attempt" become successes. That is `exists`
/// for an event on its own, and for a linked chain its first event answering
/// `exists` with every later one `linked_event_failed` (the chain was applied as
/// a whole; the ledger stops evaluating a chain at its first failure).
pub(crate) fn forgive_exists<E: LedgerEvent>(
    events: &[E],
    results: Vec<EventResult<E::Result>>,
) -> Vec<EventResult<E::Result>> {
    let mut outcome: Vec<Option<E::Result>> = vec![None; events.len()];
    for result in &results {
        if let Some(slot) = usize::try_from(result.index)
            .ok()
            .and_then(|index| outcome.get_mut(index))
        {
            *slot = Some(result.result);
        }
    }
    let mut applied = vec![false; events.len()];
    let mut start = 0;
    while start < events.len() {
        let mut end = start;
        while end + 1 < events.len() && events[end].is_linked() {
            end += 1;
        }
        let closed = !events[end].is_linked();
        let first_exists = outcome[start] == Some(E::EXISTS);
        let rest_not_evaluated = outcome[start + 1..=end]
            .iter()
            .all(|result| *result == Some(E::LINKED_EVENT_FAILED));
        if closed && first_exists && rest_not_evaluated {
            applied[start..=end].fill(true);
        }
        start = end + 1;
    }
    results
        .into_iter()
        .filter(|result| {
            !usize::try_from(result.index)
                .ok()
                .and_then(|index| applied.get(index).copied())
                .unwrap_or(false)
        })
        .collect()
}

/// Counters of one batcher.
#[derive(Debug, Default)]
struct Counters {
    queued: AtomicUsize,
    requests: AtomicU64,
    events: AtomicU64,
}

/// What a batcher has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Events accepted and not yet sent (waiting in the queue or for a request slot).
    pub queued: usize,
    /// Batch requests sent (each counted once, however many attempts it took).
    pub requests: u64,
    /// Events sent in those requests.
    pub events: u64,
}

/// The front of one batcher: the queue into its background task.
pub(crate) struct Batcher<E: LedgerEvent> {
    sender: mpsc::Sender<(E, Reply<E::Result>)>,
    capacity: usize,
    counters: Arc<Counters>,
}

impl<E: LedgerEvent> fmt::Debug for Batcher<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batcher")
            .field("kind", &E::NAME)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<E: LedgerEvent> Batcher<E> {
    /// Starts the background task (on the current Tokio runtime).
    pub(crate) fn start(core: Arc<Core>, policy: BatchPolicy) -> Self {
        let capacity = policy.queue_capacity.max(1);
        let (sender, receiver) = mpsc::channel(capacity);
        let counters = Arc::new(Counters::default());
        tokio::spawn(run(core, receiver, policy, counters.clone()));
        Self {
            sender,
            capacity,
            counters,
        }
    }

    pub(crate) fn stats(&self) -> BatchStats {
        BatchStats {
            queued: self.counters.queued.load(Ordering::Acquire),
            requests: self.counters.requests.load(Ordering::Relaxed),
            events: self.counters.events.load(Ordering::Relaxed),
        }
    }

    /// Queues one event and waits for its result (`None`: applied).
    pub(crate) async fn submit(&self, event: E) -> Result<Option<E::Result>, ClientError> {
        if event.is_linked() {
            return Err(ClientError::invalid_input(
                format!("{}.flags", E::NAME),
                "linked_not_allowed",
                format!(
                    "a single {} cannot carry the linked flag: it would be linked to another \
                     caller's event of the same batch; send a linked chain as one batch with \
                     create_{}s",
                    E::NAME,
                    E::NAME
                ),
            ));
        }
        let (reply, answer) = oneshot::channel();
        // The count of accepted events not yet sent is the queue's bound (the
        // background task holds some of them outside the channel while it waits
        // for a request slot). Counted before the event can be taken out, so that
        // it never goes below 0.
        let capacity = self.capacity;
        if self
            .counters
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued < capacity).then_some(queued + 1)
            })
            .is_err()
        {
            return Err(ClientError::Busy { capacity });
        }
        if let Err(error) = self.sender.try_send((event, reply)) {
            self.counters.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(match error {
                mpsc::error::TrySendError::Full(_) => ClientError::Busy {
                    capacity: self.capacity,
                },
                mpsc::error::TrySendError::Closed(_) => ClientError::Closed,
            });
        }
        answer.await.unwrap_or(Err(ClientError::Closed))
    }
}

/// The background task: forms batches and sends them, `max_in_flight` at a time.
async fn run<E: LedgerEvent>(
    core: Arc<Core>,
    mut receiver: mpsc::Receiver<(E, Reply<E::Result>)>,
    policy: BatchPolicy,
    counters: Arc<Counters>,
) {
    let max_events = policy.max_events.clamp(1, corebank_proto::BATCH_EVENTS_MAX);
    let slots = Arc::new(Semaphore::new(policy.max_in_flight.max(1)));
    while let Some(first) = receiver.recv().await {
        let mut batch = Vec::with_capacity(max_events.min(64));
        batch.push(first);
        // Whatever arrives while every slot is busy waits in the queue.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        if !policy.max_delay.is_zero() {
            let until = tokio::time::Instant::now() + policy.max_delay;
            while batch.len() < max_events {
                match tokio::time::timeout_at(until, receiver.recv()).await {
                    Ok(Some(item)) => batch.push(item),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        while batch.len() < max_events {
            match receiver.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        counters.queued.fetch_sub(batch.len(), Ordering::AcqRel);
        counters.requests.fetch_add(1, Ordering::Relaxed);
        counters.events.fetch_add(
            u64::try_from(batch.len()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let core = core.clone();
        tokio::spawn(async move {
            deliver(core, batch).await;
            drop(slot);
        });
    }
}

/// Sends one batch and hands each caller its own result.
async fn deliver<E: LedgerEvent>(core: Arc<Core>, batch: Vec<(E, Reply<E::Result>)>) {
    let (events, replies): (Vec<E>, Vec<Reply<E::Result>>) = batch.into_iter().unzip();
    let count = events.len();
    match E::submit(core, events).await {
        Ok(results) => {
            let mut outcome: Vec<Option<E::Result>> = vec![None; count];
            for result in results {
                // `create_*s` checked that every index is in range.
                if let Some(slot) = usize::try_from(result.index)
                    .ok()
                    .and_then(|index| outcome.get_mut(index))
                {
                    *slot = Some(result.result);
                }
            }
            for (reply, result) in replies.into_iter().zip(outcome) {
                // A caller that stopped waiting no longer needs its answer.
                let _ = reply.send(Ok(result));
            }
        }
        Err(error) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CreateTransferResult as R;

    fn transfer(id: u128, linked: bool) -> Transfer {
        Transfer {
            id,
            flags: if linked {
                TransferFlags::LINKED
            } else {
                TransferFlags::empty()
            },
            ..Transfer::default()
        }
    }

    fn failed(index: u32, result: R) -> EventResult<R> {
        EventResult { index, result }
    }

    #[test]
    fn exists_alone_is_forgiven() {
        let events = [transfer(1, false), transfer(2, false), transfer(3, false)];
        let results = vec![failed(0, R::Exists), failed(1, R::ExceedsCredits)];
        assert_eq!(
            forgive_exists(&events, results),
            vec![failed(1, R::ExceedsCredits)]
        );
    }

    #[test]
    fn an_applied_chain_is_forgiven_a_failed_one_is_not() {
        // Chain 0-1-2 applied by the first attempt; chain 3-4 fails on its second
        // event; 5 exists.
        let events = [
            transfer(1, true),
            transfer(2, true),
            transfer(3, false),
            transfer(4, true),
            transfer(5, false),
            transfer(6, false),
        ];
        let results = vec![
            failed(0, R::Exists),
            failed(1, R::LinkedEventFailed),
            failed(2, R::LinkedEventFailed),
            failed(3, R::LinkedEventFailed),
            failed(4, R::ExceedsCredits),
            failed(5, R::Exists),
        ];
        assert_eq!(
            forgive_exists(&events, results),
            vec![
                failed(3, R::LinkedEventFailed),
                failed(4, R::ExceedsCredits)
            ]
        );
    }

    #[test]
    fn a_chain_whose_second_event_exists_is_not_forgiven() {
        let events = [transfer(1, true), transfer(2, false)];
        let results = vec![failed(0, R::LinkedEventFailed), failed(1, R::Exists)];
        assert_eq!(forgive_exists(&events, results.clone()), results);
        // An open chain (the batch ends linked) was never applied.
        let events = [transfer(1, true), transfer(2, true)];
        let results = vec![failed(0, R::Exists), failed(1, R::LinkedEventChainOpen)];
        assert_eq!(forgive_exists(&events, results.clone()), results);
    }
}
