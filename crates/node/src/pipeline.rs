//! The write path: many callers → one bounded queue → one batcher that forms one log
//! entry from many requests (group commit) → Raft → apply → a reply to each caller.
//!
//! The queue is bounded: when it is full a caller is told "busy, retry" at once rather
//! than waiting (backpressure, not timeouts). The batcher keeps one entry in flight and
//! forms the next from everything that queued meanwhile; it is also the only place timestamps are proposed, so they rise in log order.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use corebank_ledger::{BATCH_EVENTS_MAX, TIMESTAMP_MAX};
use openraft::error::ClientWriteError;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::command::{Command, Request, RequestOutcome};
use crate::screening::{Screening, ScreeningCounters, gather_candidates, screen_candidates};
use crate::state_machine::Shared;
use crate::types::Raft;

/// What the batcher needs to screen: the screener, the ledger to read accounts from,
/// and counters to report.
#[derive(Clone, Debug)]
pub struct BatchScreening {
    pub screening: Screening,
    pub shared: Arc<Shared>,
    pub counters: Arc<ScreeningCounters>,
}

impl BatchScreening {
    /// Screens `requests`, whose first event is to get about `timestamp`. Runs on the
    /// batcher's task. The state is read under its locks only while candidates are
    /// built: apply (which takes the ledger's write lock) never waits for the screener.
    fn screen(&self, timestamp: u64, requests: &mut [Request]) {
        if !requests.iter().any(|r| matches!(r, Request::Screened(_))) {
            return;
        }
        let (candidates, origin) = {
            let Ok(ledger) = self.shared.ledger.read() else {
                return;
            };
            let Ok(risk) = self.shared.risk.read() else {
                return;
            };
            gather_candidates(&ledger, &risk, timestamp, requests)
        };
        tokio::task::block_in_place(|| {
            screen_candidates(
                &self.screening,
                &self.counters,
                &candidates,
                origin,
                requests,
            );
        });
    }
}

/// Requests an entry may hold, beside the 8,190-event bound.
pub const ENTRY_REQUESTS_MAX: usize = 1_024;
/// Log entries proposed but not yet applied. One: while it commits, requests gather in
/// the queue and the next entry takes them all. openraft syncs each entry on its own, so
/// more entries in flight only means more, smaller syncs (measured with 64 concurrent
/// single-transfer clients: about 25,000 transfers/s with 1, 10,500 with 2, 3,300 with 16).
pub const IN_FLIGHT_ENTRIES_MAX: usize = 1;

/// Why a write was not carried out. Nothing was applied in any of these cases, except
/// `Unknown`, where the caller cannot know and must retry with the same ids (which is
/// safe: ids are idempotent).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("the node is busy (its queue of {capacity} requests is full); retry shortly")]
    Busy { capacity: usize },
    #[error("a request holds at most {max} events, this one has {count}", max = BATCH_EVENTS_MAX)]
    TooManyEvents { count: usize },
    #[error("this replica is not the branch's leader{}", leader.map(|l| format!(" (replica {l} is)")).unwrap_or_default())]
    NotLeader {
        leader: Option<u64>,
        /// Where the leader takes calls, when known.
        address: Option<String>,
    },
    /// The replica lost the lead while the entry was being committed: the new leader
    /// may or may not have committed it. Retry with the same ids on the leader.
    #[error(
        "this replica lost the lead before the request committed; retry with the same ids on the leader"
    )]
    LeadershipLost { address: Option<String> },
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error("the outcome is unknown ({0}); retry with the same ids")]
    Unknown(String),
}

impl SubmitError {
    /// The stable snake_case code of this error.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Busy { .. } => "busy_retry",
            Self::TooManyEvents { .. } => "too_many_events",
            Self::NotLeader { .. } => "not_leader",
            Self::LeadershipLost { .. } => "outcome_unknown",
            Self::ShuttingDown => "shutting_down",
            Self::Unknown(_) => "outcome_unknown",
        }
    }
}

enum Work {
    Request(
        Request,
        oneshot::Sender<Result<RequestOutcome, SubmitError>>,
    ),
    Expire(oneshot::Sender<Result<u64, SubmitError>>),
}

impl Work {
    fn events(&self) -> usize {
        match self {
            Self::Request(request, _) => request.events(),
            Self::Expire(_) => 0,
        }
    }
}

/// The handle callers write through; cheap to clone.
#[derive(Clone, Debug)]
pub struct Pipeline {
    queue: mpsc::Sender<Work>,
    capacity: usize,
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Request(request, _) => write!(f, "request of {} events", request.events()),
            Self::Expire(_) => f.write_str("expire"),
        }
    }
}

impl Pipeline {
    /// Starts the batcher. `last_timestamp` is the ledger's clock at start; with
    /// `screening`, new transfers are screened before each entry is proposed.
    pub fn spawn(
        raft: Raft,
        last_timestamp: u64,
        capacity: usize,
        screening: Option<BatchScreening>,
    ) -> (Self, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        let batcher = tokio::spawn(run_batcher(
            raft,
            receiver,
            Clock {
                last: last_timestamp,
            },
            screening,
        ));
        (Self { queue, capacity }, batcher)
    }

    /// Queues a request and waits for its outcome (after it is durably committed and
    /// applied).
    pub async fn submit(&self, request: Request) -> Result<RequestOutcome, SubmitError> {
        let count = request.events();
        if count > BATCH_EVENTS_MAX {
            return Err(SubmitError::TooManyEvents { count });
        }
        let (reply, outcome) = oneshot::channel();
        self.enqueue(Work::Request(request, reply))?;
        outcome.await.map_err(|_| SubmitError::ShuttingDown)?
    }

    /// Proposes an expiry sweep through the log; returns how many transfers expired.
    pub async fn expire(&self) -> Result<u64, SubmitError> {
        let (reply, outcome) = oneshot::channel();
        self.enqueue(Work::Expire(reply))?;
        outcome.await.map_err(|_| SubmitError::ShuttingDown)?
    }

    /// Requests waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.capacity - self.queue.capacity().min(self.capacity)
    }

    fn enqueue(&self, work: Work) -> Result<(), SubmitError> {
        self.queue.try_send(work).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => SubmitError::Busy {
                capacity: self.capacity,
            },
            mpsc::error::TrySendError::Closed(_) => SubmitError::ShuttingDown,
        })
    }
}

/// Proposes timestamps: wall-clock nanoseconds, but always past everything proposed.
struct Clock {
    last: u64,
}

impl Clock {
    /// The first timestamp for `events` events (which take the following ones).
    fn reserve(&mut self, events: usize) -> u64 {
        let first = self.peek();
        self.last = first + (events.max(1) as u64) - 1;
        first
    }

    /// The timestamp the next reservation would start at, were it made now (at
    /// least; the wall clock moves on).
    fn peek(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(TIMESTAMP_MAX));
        now.max(self.last + 1)
    }
}

async fn run_batcher(
    raft: Raft,
    mut queue: mpsc::Receiver<Work>,
    mut clock: Clock,
    screening: Option<BatchScreening>,
) {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT_ENTRIES_MAX));
    let mut carried: Option<Work> = None;
    loop {
        let first = match carried.take() {
            Some(work) => work,
            None => match queue.recv().await {
                Some(work) => work,
                None => break,
            },
        };
        // A follower refuses at once, before proposing anything: then the caller
        // knows that nothing was applied, and where the leader is.
        if let Some(refusal) = not_leader(&raft) {
            let drained = drain_compatible(first, &mut queue);
            for work in drained {
                work.refuse(refusal.clone());
            }
            continue;
        }
        match first {
            Work::Expire(reply) => {
                let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                    break;
                };
                let command = Command::Expire {
                    timestamp: clock.reserve(1),
                };
                match raft.client_write_ff(command).await {
                    Ok(receiver) => {
                        tokio::spawn(async move {
                            let outcome = receiver.await;
                            drop(permit);
                            let _ = reply.send(match outcome {
                                Ok(Ok(response)) => Ok(response.data.expired),
                                Ok(Err(error)) => Err(write_error(error)),
                                Err(_) => Err(SubmitError::ShuttingDown),
                            });
                        });
                    }
                    Err(fatal) => {
                        let _ = reply.send(Err(SubmitError::Unknown(fatal.to_string())));
                        break;
                    }
                }
            }
            Work::Request(request, reply) => {
                let mut batch = Batch {
                    events: request.events(),
                    requests: vec![request],
                    replies: vec![reply],
                };
                batch.gather(&mut queue, &mut carried);
                // Screening runs while the previous entry commits; what arrives while
                // this batch waits for its turn joins it and is screened then.
                let timestamp = clock.peek();
                if let Some(screening) = &screening {
                    screening.screen(timestamp, &mut batch.requests);
                }
                let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                    break;
                };
                let screened = batch.requests.len();
                batch.gather(&mut queue, &mut carried);
                if let Some(screening) = &screening
                    && batch.requests.len() > screened
                {
                    let events_before: usize =
                        batch.requests[..screened].iter().map(Request::events).sum();
                    screening.screen(
                        timestamp + events_before as u64,
                        &mut batch.requests[screened..],
                    );
                }
                let Batch {
                    events,
                    requests,
                    replies,
                } = batch;
                let command = Command::Apply {
                    timestamp: clock.reserve(events),
                    requests,
                };
                match raft.client_write_ff(command).await {
                    Ok(receiver) => {
                        tokio::spawn(async move {
                            let outcome = receiver.await;
                            drop(permit);
                            match outcome {
                                Ok(Ok(response)) => {
                                    let outcomes = response.data.outcomes;
                                    debug_assert_eq!(outcomes.len(), replies.len());
                                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                                        let _ = reply.send(Ok(outcome));
                                    }
                                }
                                Ok(Err(error)) => {
                                    let error = write_error(error);
                                    for reply in replies {
                                        let _ = reply.send(Err(error.clone()));
                                    }
                                }
                                Err(_) => {
                                    for reply in replies {
                                        let _ = reply.send(Err(SubmitError::ShuttingDown));
                                    }
                                }
                            }
                        });
                    }
                    Err(fatal) => {
                        for reply in replies {
                            let _ = reply.send(Err(SubmitError::Unknown(fatal.to_string())));
                        }
                        break;
                    }
                }
            }
        }
    }
}

/// The requests of the next log entry and where their outcomes go.
struct Batch {
    events: usize,
    requests: Vec<Request>,
    replies: Vec<oneshot::Sender<Result<RequestOutcome, SubmitError>>>,
}

impl Batch {
    /// Takes queued requests while they fit; the first that does not (or an expiry)
    /// is carried to the next entry.
    fn gather(&mut self, queue: &mut mpsc::Receiver<Work>, carried: &mut Option<Work>) {
        if carried.is_some() {
            return;
        }
        while self.requests.len() < ENTRY_REQUESTS_MAX {
            match queue.try_recv() {
                Ok(Work::Request(request, reply))
                    if self.events + request.events() <= BATCH_EVENTS_MAX =>
                {
                    self.events += request.events();
                    self.requests.push(request);
                    self.replies.push(reply);
                }
                Ok(other) => {
                    *carried = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        debug_assert!(carried.as_ref().is_none_or(
            |w| w.events() + self.events > BATCH_EVENTS_MAX || matches!(w, Work::Expire(_))
        ));
    }
}

/// The error of an entry already proposed.
fn write_error(error: ClientWriteError<u64, openraft::BasicNode>) -> SubmitError {
    match error {
        ClientWriteError::ForwardToLeader(forward) => SubmitError::LeadershipLost {
            address: forward.leader_node.map(|node| node.addr),
        },
        other => SubmitError::Unknown(other.to_string()),
    }
}

/// `Some(refusal)` when this replica does not lead its group.
fn not_leader(raft: &Raft) -> Option<SubmitError> {
    let metrics = raft.metrics();
    let metrics = metrics.borrow();
    if metrics.state == openraft::ServerState::Leader && metrics.current_leader == Some(metrics.id)
    {
        return None;
    }
    let leader = metrics.current_leader;
    let address = leader.and_then(|id| {
        metrics
            .membership_config
            .membership()
            .get_node(&id)
            .map(|node| node.addr.clone())
    });
    Some(SubmitError::NotLeader { leader, address })
}

/// `first` and everything queued behind it (refused together when not leading).
fn drain_compatible(first: Work, queue: &mut mpsc::Receiver<Work>) -> Vec<Work> {
    let mut all = vec![first];
    while all.len() < ENTRY_REQUESTS_MAX {
        match queue.try_recv() {
            Ok(work) => all.push(work),
            Err(_) => break,
        }
    }
    all
}

impl Work {
    fn refuse(self, error: SubmitError) {
        match self {
            Self::Request(_, reply) => {
                let _ = reply.send(Err(error));
            }
            Self::Expire(reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}
