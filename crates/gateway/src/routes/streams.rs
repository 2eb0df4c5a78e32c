//! Live streams as Server-Sent Events, resumable with `Last-Event-ID`.
//!
//! A transfer event's id is the stream's cursor: for each branch, the position
//! of the last event sent (`1:1763800000000000000,2:...`). Sent back, it resumes
//! the stream after exactly those events; when the gateway no longer holds them,
//! the stream says `reset` (reload, then follow on).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use corebank_identity::Role;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::auth::{Caller, Perm, Principal};
use crate::backend::parse_account;
use crate::extract::Query;
use crate::hub::RawEvent;
use crate::problem::{ApiResult, Problem, Problems};

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(account_stream))
        .routes(routes!(event_stream))
        .routes(routes!(alert_stream))
}

type SseStream =
    Sse<axum::response::sse::KeepAliveStream<ReceiverStream<Result<Event, Infallible>>>>;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Staff: the account to follow (customers follow all of theirs).
    pub account: Option<String>,
    /// Instead of the `Last-Event-ID` header (for clients that cannot set it).
    pub last_event_id: Option<String>,
    /// The bank-wide feed only: at most this many `transfer` events a second
    /// (default 50, for people watching); beyond it a `skipped` event counts what
    /// was left out, once a second. 0 = every event (for services).
    pub max_per_second: Option<u32>,
}

/// The bank-wide feed's default pace: a busy bank commits hundreds of thousands of
/// transfers a second, more than a browser can draw.
pub const FEED_PER_SECOND_DEFAULT: u32 = 50;

pub fn encode_cursor(cursor: &BTreeMap<u16, u64>) -> String {
    cursor
        .iter()
        .map(|(branch, position)| format!("{branch}:{position}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn decode_cursor(text: &str) -> Result<BTreeMap<u16, u64>, Problem> {
    let invalid = || {
        Problem::invalid(
            "Last-Event-ID",
            "Last-Event-ID is not an id this stream sent.",
        )
    };
    if text.len() > 4096 {
        return Err(invalid());
    }
    let mut cursor = BTreeMap::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let (branch, position) = part.split_once(':').ok_or_else(invalid)?;
        cursor.insert(
            branch.parse().map_err(|_| invalid())?,
            position.parse().map_err(|_| invalid())?,
        );
    }
    Ok(cursor)
}

fn last_event_id(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query.map(str::to_owned))
        .filter(|id| !id.is_empty())
}

fn sse(rx: mpsc::Receiver<Result<Event, Infallible>>) -> SseStream {
    Sse::new(ReceiverStream::new(rx)).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    )
}

fn json_event(kind: &str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(kind)
        .data(serde_json::to_string(data).unwrap_or_default())
}

/// Counts stream clients while the stream lives.
struct StreamGuard(Arc<App>);

impl StreamGuard {
    fn new(app: &Arc<App>) -> Self {
        app.metrics.stream_clients.fetch_add(1, Ordering::Relaxed);
        Self(app.clone())
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0
            .metrics
            .stream_clients
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug, serde::Serialize)]
struct BalanceEvent {
    account: String,
    currency: String,
    posted: String,
    available: String,
    pending_debits: String,
    pending_credits: String,
}

async fn balance_event(app: &App, account: &str) -> Option<Event> {
    let (_, client) = app.backend.for_account("account", account).await.ok()?;
    let reply = client.balance(account).await.ok()?;
    Some(json_event(
        "balance",
        &BalanceEvent {
            account: reply.account_number,
            currency: reply.currency,
            posted: reply.posted,
            available: reply.available,
            pending_debits: reply.pending_debits,
            pending_credits: reply.pending_credits,
        },
    ))
}

/// The accounts a stream follows: id → number, and the customer whose accounts
/// they are (new ones join while the stream lives).
type Followed = Option<(Option<u64>, BTreeMap<u128, String>)>;

fn followed(numbers: impl IntoIterator<Item = String>) -> BTreeMap<u128, String> {
    numbers
        .into_iter()
        .filter_map(|n| {
            parse_account("account", &n)
                .ok()
                .map(|a| (a.account_id(), n))
        })
        .collect()
}

/// Runs one transfer stream: the backlog after the cursor, then live events,
/// each filtered by the accounts followed (None = every transfer).
async fn pump_transfers(
    app: Arc<App>,
    tx: mpsc::Sender<Result<Event, Infallible>>,
    mut cursor: BTreeMap<u16, u64>,
    resume: bool,
    accounts: Followed,
    max_per_second: u32,
) {
    let _guard = StreamGuard::new(&app);
    let mut window = (tokio::time::Instant::now(), 0u32, 0u64);
    let mut live = app.hub.subscribe_events();
    let mut accounts = accounts;
    let touches = |accounts: &Followed, event: &RawEvent| match accounts {
        None => true,
        Some((_, ids)) => ids.contains_key(&event.debit) || ids.contains_key(&event.credit),
    };
    if let Some((_, ids)) = &accounts {
        for account in ids.values() {
            if let Some(event) = balance_event(&app, account).await
                && tx.send(Ok(event)).await.is_err()
            {
                return;
            }
        }
    }
    let mut backlog = if resume {
        match app.hub.events_after(&cursor, |e| touches(&accounts, e)) {
            Ok(events) => events,
            Err(crate::hub::Evicted) => {
                if tx
                    .send(Ok(Event::default().event("reset").data("{}")))
                    .await
                    .is_err()
                {
                    return;
                }
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let mut refreshed = tokio::time::Instant::now();
    loop {
        for event in backlog.drain(..) {
            if cursor
                .get(&event.branch)
                .is_some_and(|p| *p >= event.position)
            {
                continue;
            }
            cursor.insert(event.branch, event.position);
            if max_per_second > 0 {
                let (started, _, skipped) = &mut window;
                if started.elapsed() >= Duration::from_secs(1) {
                    if *skipped > 0 {
                        let note = json_event("skipped", &serde_json::json!({ "count": *skipped }))
                            .id(encode_cursor(&cursor));
                        if tx.send(Ok(note)).await.is_err() {
                            return;
                        }
                    }
                    window = (tokio::time::Instant::now(), 0, 0);
                }
                let (_, sent, skipped) = &mut window;
                if *sent >= max_per_second {
                    *skipped += 1;
                    continue;
                }
                *sent += 1;
            }
            let sse = json_event("transfer", &event.view()).id(encode_cursor(&cursor));
            if tx.send(Ok(sse)).await.is_err() {
                return;
            }
            if let Some((_, ids)) = &accounts {
                for id in [event.debit, event.credit] {
                    if let Some(number) = ids.get(&id)
                        && let Some(balance) = balance_event(&app, number).await
                        && tx.send(Ok(balance)).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
        // A customer who opens an account while watching sees it too.
        if let Some((Some(user_id), ids)) = &mut accounts
            && refreshed.elapsed() > Duration::from_secs(5)
        {
            refreshed = tokio::time::Instant::now();
            if let Ok(user) = app.user(*user_id).await {
                ids.extend(followed(user.accounts.iter().cloned()));
            }
        }
        match live.recv().await {
            Ok(event) => {
                if touches(&accounts, &event) {
                    backlog.push(event);
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                match app.hub.events_after(&cursor, |e| touches(&accounts, e)) {
                    Ok(events) => backlog = events,
                    Err(crate::hub::Evicted) => {
                        if tx
                            .send(Ok(Event::default().event("reset").data("{}")))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// A customer's transfers and balances, live (staff: one account with `?account=`).
#[utoipa::path(get, path = "/api/v1/streams/accounts", tag = "streams", params(StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event")),
    responses(
        (status = 200, description = "`transfer`, `balance` and `reset` events", content_type = "text/event-stream", body = String),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn account_stream(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> ApiResult<SseStream> {
    let resume_id = last_event_id(&headers, query.last_event_id.as_deref());
    let cursor = resume_id
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .unwrap_or_default();
    let accounts = match (&caller.principal, &query.account) {
        (
            Principal::User {
                id,
                role: Role::Customer,
                ..
            },
            None,
        ) => {
            app.audit(&caller, "stream.accounts", &format!("user:{id}"), Ok(""))
                .await;
            let user = app.user(*id).await?;
            (Some(*id), followed(user.accounts.iter().cloned()))
        }
        (_, Some(account)) => {
            let number = parse_account("account", account)?.to_string();
            app.allow_account(&caller, Perm::AccountsRead, "stream.accounts", &number)
                .await?;
            (None, followed([number]))
        }
        (_, None) => {
            return Err(Problem::invalid(
                "account",
                "Say which account to follow (?account=).",
            ));
        }
    };
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(pump_transfers(
        app.clone(),
        tx,
        cursor,
        resume_id.is_some(),
        Some(accounts),
        0,
    ));
    Ok(sse(rx))
}

/// Every committed transfer of every branch, live (staff).
#[utoipa::path(get, path = "/api/v1/streams/events", tag = "streams", params(StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event")),
    responses(
        (status = 200, description = "`transfer`, `skipped` and `reset` events", content_type = "text/event-stream", body = String),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn event_stream(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> ApiResult<SseStream> {
    app.allow(&caller, Perm::EventsRead, "stream.events", "events")
        .await?;
    let resume_id = last_event_id(&headers, query.last_event_id.as_deref());
    let cursor = resume_id
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .unwrap_or_default();
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(pump_transfers(
        app.clone(),
        tx,
        cursor,
        resume_id.is_some(),
        None,
        query.max_per_second.unwrap_or(FEED_PER_SECOND_DEFAULT),
    ));
    Ok(sse(rx))
}

/// Risk alerts, live (analysts).
#[utoipa::path(get, path = "/api/v1/streams/alerts", tag = "streams", params(StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event")),
    responses(
        (status = 200, description = "`alert` events", content_type = "text/event-stream", body = String),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn alert_stream(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> ApiResult<SseStream> {
    app.allow(&caller, Perm::RiskRead, "stream.alerts", "risk")
        .await?;
    let after = match last_event_id(&headers, query.last_event_id.as_deref()) {
        Some(id) => Some(id.parse::<u64>().map_err(|_| {
            Problem::invalid(
                "Last-Event-ID",
                "Last-Event-ID is not an id this stream sent.",
            )
        })?),
        None => None,
    };
    let (tx, rx) = mpsc::channel(64);
    let app = app.clone();
    tokio::spawn(async move {
        let _guard = StreamGuard::new(&app);
        let mut live = app.hub.subscribe_alerts();
        let mut last = after.unwrap_or(u64::MAX);
        if let Some(after) = after {
            for alert in app.hub.alerts_after(Some(after), 5_000) {
                last = alert.seq;
                if tx
                    .send(Ok(
                        json_event("alert", alert.as_ref()).id(alert.seq.to_string())
                    ))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        loop {
            match live.recv().await {
                Ok(alert) => {
                    if last != u64::MAX && alert.seq <= last {
                        continue;
                    }
                    last = alert.seq;
                    if tx
                        .send(Ok(
                            json_event("alert", alert.as_ref()).id(alert.seq.to_string())
                        ))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    for alert in app
                        .hub
                        .alerts_after(Some(if last == u64::MAX { 0 } else { last }), 5_000)
                    {
                        last = alert.seq;
                        if tx
                            .send(Ok(
                                json_event("alert", alert.as_ref()).id(alert.seq.to_string())
                            ))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Ok(sse(rx))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let cursor = BTreeMap::from([(1u16, 17u64), (3, 99)]);
        assert_eq!(encode_cursor(&cursor), "1:17,3:99");
        assert_eq!(decode_cursor("1:17,3:99").unwrap(), cursor);
        assert!(decode_cursor("1:x").is_err());
        assert!(decode_cursor("junk").is_err());
        assert!(decode_cursor("").unwrap().is_empty());
    }
}
