//! `corebank.v1.Events`: committed transfers and account openings, in ledger order,
//! from a position (a ledger timestamp) onwards, then live.
//!
//! The stream tails the ledger itself (its records are kept in timestamp order), so a
//! subscriber that falls behind is never dropped: it reads on from where it is. A
//! heartbeat every few seconds of silence tells the subscriber the stream is alive.
//! Expiries are not yet sent as events (they create no ledger record); the pending
//! transfer's expiry shows in its account's balances.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use corebank_ledger::QueryFilter;
use corebank_node::Node;
use corebank_proto::v1::{self, events_server};
use corebank_security::Scope;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status};

use crate::auth::Gate;
use crate::errors;

/// Records read per step while catching up.
const CATCH_UP_STEP: u32 = 1_024;
const HEARTBEAT_AFTER: Duration = Duration::from_secs(5);
/// Events buffered per subscriber before the tail waits for it.
const SUBSCRIBER_BUFFER: usize = 256;

#[derive(Clone)]
pub struct EventsService {
    pub node: Arc<Node>,
    pub gate: Gate,
    pub branch: u16,
}

impl std::fmt::Debug for EventsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsService")
            .field("branch", &self.branch)
            .finish_non_exhaustive()
    }
}

/// The events after `position`, at most about `CATCH_UP_STEP` of each kind, merged in
/// ledger order.
fn events_after(ledger: &corebank_ledger::Ledger, position: u64, branch: u16) -> Vec<v1::Event> {
    let filter = QueryFilter {
        timestamp_min: position.saturating_add(1),
        ..QueryFilter::new(CATCH_UP_STEP)
    };
    let transfers = ledger.query_transfers(&filter).unwrap_or_default();
    let accounts = ledger.query_accounts(&filter).unwrap_or_default();
    // Both lists are sorted; stop at the earlier of their last timestamps so that no
    // record of the other kind is skipped.
    let bound = match (
        transfers.len() == CATCH_UP_STEP as usize,
        accounts.len() == CATCH_UP_STEP as usize,
    ) {
        (true, true) => transfers
            .last()
            .map(|t| t.timestamp)
            .min(accounts.last().map(|a| a.timestamp)),
        (true, false) => transfers.last().map(|t| t.timestamp),
        (false, true) => accounts.last().map(|a| a.timestamp),
        (false, false) => None,
    }
    .unwrap_or(u64::MAX);
    let mut events: Vec<v1::Event> = transfers
        .into_iter()
        .filter(|t| t.timestamp <= bound)
        .map(|t| v1::Event {
            position: t.timestamp,
            branch: u32::from(branch),
            kind: Some(v1::event::Kind::Transfer(v1::TransferCreated {
                transfer: Some(t.into()),
                ..Default::default()
            })),
        })
        .chain(
            accounts
                .into_iter()
                .filter(|a| a.timestamp <= bound)
                .map(|a| v1::Event {
                    position: a.timestamp,
                    branch: u32::from(branch),
                    kind: Some(v1::event::Kind::AccountCreated(v1::AccountCreated {
                        account: Some(a.into()),
                    })),
                }),
        )
        .collect();
    events.sort_by_key(|e| e.position);
    events
}

async fn tail(
    node: Arc<Node>,
    mut position: u64,
    branch: u16,
    mut committed: broadcast::Receiver<u64>,
    out: mpsc::Sender<Result<v1::Event, Status>>,
) {
    loop {
        let events = match node.read_local(|ledger| events_after(ledger, position, branch)) {
            Ok(events) => events,
            Err(error) => {
                let _ = out.send(Err(errors::status(errors::read(error)))).await;
                return;
            }
        };
        if events.is_empty() {
            match tokio::time::timeout(HEARTBEAT_AFTER, committed.recv()).await {
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(broadcast::error::RecvError::Closed)) => return,
                Err(_) => {
                    let heartbeat = v1::Event {
                        position,
                        branch: u32::from(branch),
                        kind: Some(v1::event::Kind::Heartbeat(v1::Heartbeat {})),
                    };
                    if out.send(Ok(heartbeat)).await.is_err() {
                        return;
                    }
                    continue;
                }
            }
        }
        for event in events {
            position = event.position;
            if out.send(Ok(event)).await.is_err() {
                return;
            }
        }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<v1::Event, Status>> + Send>>;

#[tonic::async_trait]
impl events_server::Events for EventsService {
    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: tonic::Request<v1::SubscribeRequest>,
    ) -> Result<Response<EventStream>, Status> {
        self.gate.check(&request, Scope::Read)?;
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_BUFFER);
        tokio::spawn(tail(
            Arc::clone(&self.node),
            request.get_ref().from_position,
            self.branch,
            self.node.subscribe_commits(),
            sender,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}
