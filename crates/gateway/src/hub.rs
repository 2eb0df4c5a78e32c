//! The live feed: every branch's committed transfers and risk journal, followed by
//! one task per branch, kept in bounded rings for resumption and fanned out to
//! the streams; plus the running figures of the operations dashboard.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use corebank_client::{ClientError, v1};
use corebank_ledger::TransferFlags;
use corebank_money::Currency;
use serde::Serialize;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::backend::{Backend, number_of};

/// Events kept for resumption (`Last-Event-ID`).
pub const EVENTS_KEPT: usize = 20_000;
/// Alerts kept.
pub const ALERTS_KEPT: usize = 5_000;
/// Seconds of throughput history.
pub const SERIES_SECONDS: usize = 180;
/// How far back a freshly started gateway begins each branch's stream.
const START_BACK: Duration = Duration::from_secs(120);

/// The events after a cursor are no longer all held (the client must reload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evicted;

/// A committed transfer as the hub keeps it: no allocation, numbers only; the
/// account numbers and decimal amounts are made when it is sent to a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEvent {
    pub branch: u16,
    /// Where it stands in its branch's stream (the ledger timestamp, ns).
    pub position: u64,
    pub at_ns: u64,
    pub transfer_id: u128,
    pub debit: u128,
    pub credit: u128,
    pub minor: u128,
    /// ISO 4217 numeric code (the ledger).
    pub ledger: u32,
    pub status: &'static str,
}

impl RawEvent {
    pub fn touches(&self, account_id: u128) -> bool {
        self.debit == account_id || self.credit == account_id
    }

    /// The view the streams send.
    pub fn view(&self) -> TransferEvent {
        let (amount, currency) = amount_text(self.ledger, self.minor);
        TransferEvent {
            position: self.position,
            transfer_id: self.transfer_id.to_string(),
            at: rfc3339(self.at_ns),
            branch: self.branch,
            debit_account: number_of(self.debit).unwrap_or_default(),
            credit_account: number_of(self.credit).unwrap_or_default(),
            amount,
            currency,
            status: self.status.to_owned(),
        }
    }
}

/// A committed transfer as the streams show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransferEvent {
    /// Where this event stands in its branch's stream (the ledger timestamp, ns).
    #[serde(skip)]
    pub position: u64,
    pub transfer_id: String,
    /// RFC 3339.
    pub at: String,
    pub branch: u16,
    /// Empty for the bank's internal accounts (cash, fees, clearing).
    pub debit_account: String,
    pub credit_account: String,
    pub amount: String,
    pub currency: String,
    /// `posted`, `pending`, `post_pending` (a reservation made final) or `voided`.
    pub status: String,
}

/// A risk alert.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Alert {
    /// `<branch>-<sequence>`, or `agent-<n>` for the agent's.
    pub id: String,
    pub at: String,
    /// `held`, `declined`, `frozen`, `unfrozen`, `released`, `rejected`, `mule_ring`.
    pub kind: String,
    pub branch: u16,
    pub account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<u32>,
    pub reasons: Vec<String>,
    pub amount: String,
    pub currency: String,
    pub detail: String,
    /// Arrival order in this gateway (for `Last-Event-ID`).
    #[serde(skip)]
    pub seq: u64,
}

/// Transfers and amounts per branch and currency since the gateway started.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Volume {
    pub branch: u16,
    pub currency: String,
    pub transfers: u64,
    pub amount: String,
}

#[derive(Debug, Default)]
struct Figures {
    /// (unix second, committed transfers in it), oldest first.
    per_second: VecDeque<(u64, u64)>,
    /// (branch, currency numeric) → (transfers, minor units).
    volumes: BTreeMap<(u16, u32), (u64, u128)>,
}

#[derive(Debug, Default)]
struct Rings {
    events: VecDeque<RawEvent>,
    /// Per branch: the first position still kept after eviction (events at or
    /// before it may have been lost to a resuming client).
    evicted_up_to: BTreeMap<u16, u64>,
    alerts: VecDeque<Arc<Alert>>,
    alerts_next: u64,
    /// Per branch: connected, last error.
    branch_status: BTreeMap<u16, (bool, Option<String>)>,
}

/// The live feed.
#[derive(Debug)]
pub struct Hub {
    rings: Mutex<Rings>,
    figures: Mutex<Figures>,
    events_tx: broadcast::Sender<RawEvent>,
    alerts_tx: broadcast::Sender<Arc<Alert>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 of a nanosecond timestamp.
pub fn rfc3339(ns: u64) -> String {
    let nanos = i128::from(ns);
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn u128_of(value: Option<v1::U128>) -> u128 {
    value.map_or(0, u128::from)
}

fn amount_text(numeric: u32, minor: u128) -> (String, String) {
    match Currency::from_numeric(numeric) {
        Ok(currency) => (currency.format_amount(minor), currency.alpha.to_owned()),
        Err(_) => (minor.to_string(), numeric.to_string()),
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        let (events_tx, _) = broadcast::channel(4096);
        let (alerts_tx, _) = broadcast::channel(1024);
        Self {
            rings: Mutex::new(Rings::default()),
            figures: Mutex::new(Figures::default()),
            events_tx,
            alerts_tx,
        }
    }

    pub fn subscribe_events(&self) -> broadcast::Receiver<RawEvent> {
        self.events_tx.subscribe()
    }

    pub fn subscribe_alerts(&self) -> broadcast::Receiver<Arc<Alert>> {
        self.alerts_tx.subscribe()
    }

    /// Events after the cursor (per branch: the last position seen) that pass
    /// `keep`, oldest first; `Err(Evicted)` when some may have been evicted already.
    pub fn events_after(
        &self,
        cursor: &BTreeMap<u16, u64>,
        keep: impl Fn(&RawEvent) -> bool,
    ) -> Result<Vec<RawEvent>, Evicted> {
        let rings = lock(&self.rings);
        for (branch, position) in cursor {
            if rings
                .evicted_up_to
                .get(branch)
                .is_some_and(|evicted| evicted > position)
            {
                return Err(Evicted);
            }
        }
        Ok(rings
            .events
            .iter()
            .filter(|event| {
                cursor
                    .get(&event.branch)
                    .is_none_or(|position| event.position > *position)
            })
            .filter(|event| keep(event))
            .copied()
            .collect())
    }

    /// Alerts after `seq` (oldest first), or the newest `limit` when `seq` is None.
    pub fn alerts_after(&self, seq: Option<u64>, limit: usize) -> Vec<Arc<Alert>> {
        let rings = lock(&self.rings);
        match seq {
            Some(seq) => rings
                .alerts
                .iter()
                .filter(|alert| alert.seq > seq)
                .take(limit)
                .cloned()
                .collect(),
            None => {
                let mut picked: Vec<_> = rings.alerts.iter().rev().take(limit).cloned().collect();
                picked.reverse();
                picked
            }
        }
    }

    /// Per-second committed transfers, oldest first, up to now (missing seconds 0).
    pub fn throughput_series(&self) -> Vec<(u64, u64)> {
        let now = now_ns() / 1_000_000_000;
        let figures = lock(&self.figures);
        let start = now.saturating_sub(u64::try_from(SERIES_SECONDS).unwrap_or(180));
        let mut series = Vec::with_capacity(SERIES_SECONDS);
        let mut recorded = figures.per_second.iter().peekable();
        for second in start..now {
            while recorded.peek().is_some_and(|(s, _)| *s < second) {
                recorded.next();
            }
            let count = match recorded.peek() {
                Some((s, count)) if *s == second => *count,
                _ => 0,
            };
            series.push((second, count));
        }
        series
    }

    pub fn volumes(&self) -> Vec<Volume> {
        lock(&self.figures)
            .volumes
            .iter()
            .map(|((branch, numeric), (transfers, minor))| {
                let (amount, currency) = amount_text(*numeric, *minor);
                Volume {
                    branch: *branch,
                    currency,
                    transfers: *transfers,
                    amount,
                }
            })
            .collect()
    }

    /// (branch, following its stream, last error).
    pub fn branch_status(&self) -> Vec<(u16, bool, Option<String>)> {
        lock(&self.rings)
            .branch_status
            .iter()
            .map(|(code, (up, error))| (*code, *up, error.clone()))
            .collect()
    }

    fn set_status(&self, branch: u16, up: bool, error: Option<String>) {
        lock(&self.rings).branch_status.insert(branch, (up, error));
    }

    fn push_event(&self, event: RawEvent, counts: bool) {
        if counts {
            let second = event.position / 1_000_000_000;
            let mut figures = lock(&self.figures);
            match figures.per_second.back_mut() {
                Some((s, count)) if *s == second => *count += 1,
                Some((s, _)) if *s > second => {
                    // A late event from a slower branch: add it where it belongs.
                    if let Some(slot) = figures.per_second.iter_mut().find(|(s, _)| *s == second) {
                        slot.1 += 1;
                    }
                }
                _ => figures.per_second.push_back((second, 1)),
            }
            while figures.per_second.len() > SERIES_SECONDS + 5 {
                figures.per_second.pop_front();
            }
            let volume = figures
                .volumes
                .entry((event.branch, event.ledger))
                .or_insert((0, 0));
            volume.0 += 1;
            volume.1 = volume.1.saturating_add(event.minor);
        }
        {
            let mut rings = lock(&self.rings);
            rings.events.push_back(event);
            while rings.events.len() > EVENTS_KEPT {
                if let Some(old) = rings.events.pop_front() {
                    rings.evicted_up_to.insert(old.branch, old.position);
                }
            }
        }
        // Nobody listening is fine.
        let _ = self.events_tx.send(event);
    }

    fn push_alert(&self, mut alert: Alert) {
        let alert = {
            let mut rings = lock(&self.rings);
            rings.alerts_next += 1;
            alert.seq = rings.alerts_next;
            let alert = Arc::new(alert);
            rings.alerts.push_back(alert.clone());
            while rings.alerts.len() > ALERTS_KEPT {
                rings.alerts.pop_front();
            }
            alert
        };
        let _ = self.alerts_tx.send(alert);
    }

    fn on_event(&self, branch: u16, event: v1::Event) {
        let Some(v1::event::Kind::Transfer(created)) = event.kind else {
            return;
        };
        let Some(transfer) = created.transfer else {
            return;
        };
        let flags = TransferFlags::from_bits(u16::try_from(transfer.flags).unwrap_or(0));
        let (status, minor, counts) = if flags.contains(TransferFlags::POST_PENDING_TRANSFER) {
            ("post_pending", u128_of(transfer.amount), false)
        } else if flags.contains(TransferFlags::VOID_PENDING_TRANSFER) {
            ("voided", u128_of(created.pending_amount), false)
        } else if flags.contains(TransferFlags::PENDING) {
            ("pending", u128_of(transfer.amount), true)
        } else {
            ("posted", u128_of(transfer.amount), true)
        };
        let at_ns = if transfer.timestamp != 0 {
            transfer.timestamp
        } else {
            event.position
        };
        self.push_event(
            RawEvent {
                branch,
                position: event.position,
                at_ns,
                transfer_id: u128_of(transfer.id),
                debit: u128_of(transfer.debit_account_id),
                credit: u128_of(transfer.credit_account_id),
                minor,
                ledger: transfer.ledger,
                status,
            },
            counts,
        );
    }

    fn on_risk_event(&self, branch: u16, event: &v1::RiskEvent) {
        let (amount, currency) = if event.ledger == 0 {
            (String::new(), String::new())
        } else {
            amount_text(event.ledger, u128_of(event.amount_minor))
        };
        let transfer_id = u128_of(event.transfer_id);
        let assessment = event.assessment.as_ref();
        self.push_alert(Alert {
            id: format!("{branch}-{}", event.sequence),
            at: rfc3339(event.timestamp_ns),
            kind: event.kind.clone(),
            branch,
            account: number_of(u128_of(event.account_id)).unwrap_or_default(),
            transfer_id: (transfer_id != 0).then(|| transfer_id.to_string()),
            score: assessment.map(|a| a.score),
            reasons: assessment
                .map(|a| a.reasons.iter().map(|r| r.name.clone()).collect())
                .unwrap_or_default(),
            amount,
            currency,
            detail: event.note.clone(),
            seq: 0,
        });
    }

    /// Records an alert from the risk agent.
    pub fn agent_alert(&self, alert: Alert) {
        self.push_alert(alert);
    }
}

/// Follows every branch the registry knows, starting new followers as branches
/// appear. Runs until the task is aborted.
pub async fn follow_all(hub: Arc<Hub>, backend: Backend) {
    let mut followed = BTreeMap::new();
    loop {
        if let Ok(views) = backend.branches().await {
            for view in views {
                let code = view.code.get();
                followed.entry(code).or_insert_with(|| {
                    let events = tokio::spawn(follow_events(hub.clone(), backend.clone(), code));
                    let risk = tokio::spawn(follow_risk(hub.clone(), backend.clone(), code));
                    (events, risk)
                });
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

async fn follow_events(hub: Arc<Hub>, backend: Backend, code: u16) {
    let mut position = now_ns().saturating_sub(u64::try_from(START_BACK.as_nanos()).unwrap_or(0));
    let mut backoff = BACKOFF_MIN;
    loop {
        let client = match backend.branch(code).await {
            Ok(client) => client,
            Err(problem) => {
                hub.set_status(code, false, Some(problem.detail));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let mut stream = client.subscribe(position);
        hub.set_status(code, true, None);
        let mut failure: Option<ClientError> = None;
        while let Some(item) = futures_util::StreamExt::next(&mut stream).await {
            match item {
                Ok(event) => {
                    backoff = BACKOFF_MIN;
                    position = position.max(event.position);
                    hub.on_event(code, event);
                }
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        if let Some(error) = &failure
            && error.code() == "position_too_old"
        {
            // The branch no longer holds what we missed: start from now.
            position = now_ns();
        }
        let detail = failure.map_or_else(|| "the event stream ended".to_owned(), |e| e.to_string());
        hub.set_status(code, false, Some(detail));
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn follow_risk(hub: Arc<Hub>, backend: Backend, code: u16) {
    let mut next: Option<u64> = None;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(client) = backend.branch(code).await else {
            continue;
        };
        let mut stub = client.risk_stub();
        let from = next.unwrap_or(1);
        let reply = match stub
            .list_events(v1::ListRiskEventsRequest {
                from_sequence: from,
                limit: 1000,
            })
            .await
        {
            Ok(reply) => reply.into_inner(),
            Err(_) => continue,
        };
        match next {
            // First read: only what happens from now on is news, but keep the
            // last few so that the queue is not empty after a restart.
            None => {
                let keep_from = reply.next_sequence.saturating_sub(50);
                if from < keep_from {
                    next = Some(keep_from);
                    continue;
                }
                for event in &reply.events {
                    hub.on_risk_event(code, event);
                }
                next = Some(reply.next_sequence.max(1));
            }
            Some(_) => {
                for event in &reply.events {
                    hub.on_risk_event(code, event);
                }
                next = Some(reply.next_sequence.max(from));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn event(branch: u16, position: u64, debit: u128) -> RawEvent {
        RawEvent {
            branch,
            position,
            at_ns: position,
            transfer_id: u128::from(position),
            debit,
            credit: 0,
            minor: 100,
            ledger: 978,
            status: "posted",
        }
    }

    #[test]
    fn resumption_gives_what_came_after_the_cursor_per_branch() {
        let hub = Hub::new();
        hub.push_event(event(1, 10, 7), true);
        hub.push_event(event(2, 11, 8), true);
        hub.push_event(event(1, 12, 7), true);
        let cursor = BTreeMap::from([(1, 10), (2, 11)]);
        let after = hub.events_after(&cursor, |_| true).unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].position, 12);
        let only_b = hub
            .events_after(&BTreeMap::new(), |e| e.touches(8))
            .unwrap();
        assert_eq!(only_b.len(), 1);
        let volumes = hub.volumes();
        assert_eq!(volumes.len(), 2);
        assert_eq!(volumes[0].amount, "2.00");
        assert_eq!(volumes[0].transfers, 2);
        let view = after[0].view();
        assert_eq!(view.amount, "1.00");
        assert_eq!(view.currency, "EUR");
        assert_eq!(
            view.debit_account, "",
            "internal or unknown accounts have no number"
        );
    }

    #[test]
    fn a_cursor_older_than_the_ring_is_refused() {
        let hub = Hub::new();
        for position in 1..=u64::try_from(EVENTS_KEPT).unwrap() + 10 {
            hub.push_event(event(1, position, 7), false);
        }
        assert!(
            hub.events_after(&BTreeMap::from([(1, 3)]), |_| true)
                .is_err()
        );
        assert!(
            hub.events_after(&BTreeMap::from([(1, 100)]), |_| true)
                .is_ok()
        );
    }

    #[test]
    fn alerts_are_numbered_and_resumable() {
        let hub = Hub::new();
        let alert = |kind: &str| Alert {
            id: String::new(),
            at: String::new(),
            kind: kind.into(),
            branch: 1,
            account: String::new(),
            transfer_id: None,
            score: None,
            reasons: vec![],
            amount: String::new(),
            currency: String::new(),
            detail: String::new(),
            seq: 0,
        };
        hub.push_alert(alert("held"));
        hub.push_alert(alert("declined"));
        let after = hub.alerts_after(Some(1), 10);
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].kind, "declined");
        assert_eq!(hub.alerts_after(None, 1)[0].kind, "declined");
    }
}
