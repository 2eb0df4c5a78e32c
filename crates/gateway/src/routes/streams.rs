//! Live streams as Server-Sent Events, resumable with `Last-Event-ID`, and the same
//! streams over a WebSocket (`/api/v1/streams/ws`).
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
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use corebank_identity::Role;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::auth::{Caller, Facts, Perm, Principal};
use crate::backend::parse_account;
use crate::extract::Query;
use crate::hub::RawEvent;
use crate::problem::{ApiResult, Problem, Problems};

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(account_stream))
        .routes(routes!(event_stream))
        .routes(routes!(alert_stream))
        .routes(routes!(websocket))
}

type SseItems = futures_util::stream::Map<ReceiverStream<StreamItem>, fn(StreamItem) -> SseResult>;
type SseResult = Result<Event, Infallible>;
type SseStream = Sse<axum::response::sse::KeepAliveStream<SseItems>>;

/// One message of a stream, before it is framed as a Server-Sent Event or as a
/// WebSocket text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamItem {
    /// `transfer`, `balance`, `reset`, `skipped`, `alert`.
    pub kind: &'static str,
    /// The position to resume after (`Last-Event-ID`), when the item has one.
    pub id: Option<String>,
    /// The JSON payload.
    pub data: String,
}

impl StreamItem {
    fn with_id(mut self, id: String) -> Self {
        self.id = Some(id);
        self
    }

    fn into_sse(self) -> SseResult {
        let event = Event::default().event(self.kind).data(self.data);
        Ok(match self.id {
            Some(id) => event.id(id),
            None => event,
        })
    }

    /// `{"event": kind, "id": id, "data": payload}`: the SSE fields as one JSON
    /// object per WebSocket message.
    pub fn into_ws_text(self) -> String {
        let id = match &self.id {
            Some(id) => serde_json::to_string(id).unwrap_or_else(|_| "null".to_owned()),
            None => "null".to_owned(),
        };
        format!(
            "{{\"event\":\"{}\",\"id\":{id},\"data\":{}}}",
            self.kind, self.data
        )
    }
}

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

fn sse(rx: mpsc::Receiver<StreamItem>) -> SseStream {
    let into_sse: fn(StreamItem) -> SseResult = StreamItem::into_sse;
    Sse::new(futures_util::StreamExt::map(
        ReceiverStream::new(rx),
        into_sse,
    ))
    .keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    )
}

fn json_event(kind: &'static str, data: &impl serde::Serialize) -> StreamItem {
    StreamItem {
        kind,
        id: None,
        data: serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned()),
    }
}

fn reset_event() -> StreamItem {
    StreamItem {
        kind: "reset",
        id: None,
        data: "{}".to_owned(),
    }
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

async fn balance_event(app: &App, account: &str) -> Option<StreamItem> {
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
    tx: mpsc::Sender<StreamItem>,
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
                && tx.send(event).await.is_err()
            {
                return;
            }
        }
    }
    let mut backlog = if resume {
        match app.hub.events_after(&cursor, |e| touches(&accounts, e)) {
            Ok(events) => events,
            Err(crate::hub::Evicted) => {
                if tx.send(reset_event()).await.is_err() {
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
                            .with_id(encode_cursor(&cursor));
                        if tx.send(note).await.is_err() {
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
            let sse = json_event("transfer", &event.view()).with_id(encode_cursor(&cursor));
            if tx.send(sse).await.is_err() {
                return;
            }
            if let Some((_, ids)) = &accounts {
                for id in [event.debit, event.credit] {
                    if let Some(number) = ids.get(&id)
                        && let Some(balance) = balance_event(&app, number).await
                        && tx.send(balance).await.is_err()
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
                        if tx.send(reset_event()).await.is_err() {
                            return;
                        }
                    }
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Opens a customer's account stream (staff: one account).
async fn open_accounts(
    app: &Arc<App>,
    caller: &Caller,
    account: Option<&str>,
    resume_id: Option<String>,
) -> Result<mpsc::Receiver<StreamItem>, Problem> {
    let cursor = resume_id
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .unwrap_or_default();
    let accounts = match (&caller.principal, account) {
        (
            Principal::User {
                id,
                role: Role::Customer,
                ..
            },
            None,
        ) => {
            app.audit(caller, "stream.accounts", &format!("user:{id}"), Ok(""))
                .await;
            let user = app.user(*id).await?;
            (Some(*id), followed(user.accounts.iter().cloned()))
        }
        (_, Some(account)) => {
            let number = parse_account("account", account)?.to_string();
            app.allow_account(caller, Perm::AccountsRead, "stream.accounts", &number)
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
    Ok(rx)
}

/// Opens the bank-wide transfer feed (staff).
async fn open_events(
    app: &Arc<App>,
    caller: &Caller,
    resume_id: Option<String>,
    max_per_second: Option<u32>,
) -> Result<mpsc::Receiver<StreamItem>, Problem> {
    app.allow(caller, Perm::EventsRead, "stream.events", "events")
        .await?;
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
        max_per_second.unwrap_or(FEED_PER_SECOND_DEFAULT),
    ));
    Ok(rx)
}

/// Opens the risk alert stream (analysts).
async fn open_alerts(
    app: &Arc<App>,
    caller: &Caller,
    resume_id: Option<String>,
) -> Result<mpsc::Receiver<StreamItem>, Problem> {
    app.allow(caller, Perm::RiskRead, "stream.alerts", "risk")
        .await?;
    let after = match resume_id {
        Some(id) => Some(id.parse::<u64>().map_err(|_| {
            Problem::invalid(
                "Last-Event-ID",
                "Last-Event-ID is not an id this stream sent.",
            )
        })?),
        None => None,
    };
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(pump_alerts(app.clone(), tx, after));
    Ok(rx)
}

async fn pump_alerts(app: Arc<App>, tx: mpsc::Sender<StreamItem>, after: Option<u64>) {
    let _guard = StreamGuard::new(&app);
    let mut live = app.hub.subscribe_alerts();
    let mut last = after;
    if let Some(after) = after {
        for alert in app.hub.alerts_after(Some(after), 5_000) {
            last = Some(alert.seq);
            if tx
                .send(json_event("alert", alert.as_ref()).with_id(alert.seq.to_string()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
    loop {
        let alerts = match live.recv().await {
            Ok(alert) => vec![alert],
            Err(broadcast::error::RecvError::Lagged(_)) => {
                app.hub.alerts_after(Some(last.unwrap_or(0)), 5_000)
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        for alert in alerts {
            if last.is_some_and(|last| alert.seq <= last) {
                continue;
            }
            last = Some(alert.seq);
            if tx
                .send(json_event("alert", alert.as_ref()).with_id(alert.seq.to_string()))
                .await
                .is_err()
            {
                return;
            }
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
    let rx = open_accounts(&app, &caller, query.account.as_deref(), resume_id).await?;
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
    let resume_id = last_event_id(&headers, query.last_event_id.as_deref());
    let rx = open_events(&app, &caller, resume_id, query.max_per_second).await?;
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
    let resume_id = last_event_id(&headers, query.last_event_id.as_deref());
    let rx = open_alerts(&app, &caller, resume_id).await?;
    Ok(sse(rx))
}

/// What a WebSocket client asks for in its first message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WsSubscribe {
    /// `accounts`, `events` or `alerts`: the same streams as over SSE.
    pub stream: String,
    /// The access token, when the upgrade request had no `Authorization` header
    /// (browsers cannot set headers on a WebSocket).
    pub access_token: Option<String>,
    /// Or an API key.
    pub api_key: Option<String>,
    /// `accounts`, staff: the account to follow.
    pub account: Option<String>,
    /// Resume after this event (an `id` this stream sent).
    pub last_event_id: Option<String>,
    /// `events` only: the pace, as for SSE (default 50 a second, 0 = all).
    pub max_per_second: Option<u32>,
}

/// The longest first message, and how long the gateway waits for it.
const WS_SUBSCRIBE_BYTES_MAX: usize = 8 * 1024;
const WS_SUBSCRIBE_WAIT: Duration = Duration::from_secs(10);
/// A ping this often keeps proxies from closing a quiet socket.
const WS_PING_EVERY: Duration = Duration::from_secs(15);

/// A WebSocket upgrade, refused as problem+json when the request is not one.
pub struct Upgrade(WebSocketUpgrade);

impl axum::extract::FromRequestParts<Arc<App>> for Upgrade {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &Arc<App>,
    ) -> Result<Self, Problem> {
        WebSocketUpgrade::from_request_parts(parts, app)
            .await
            .map(Self)
            .map_err(|rejection| {
                Problem::new(
                    StatusCode::UPGRADE_REQUIRED,
                    "websocket_required",
                    format!("This address speaks WebSocket only: {rejection}."),
                )
            })
    }
}

/// The streams over a WebSocket, for clients that prefer one to SSE.
///
/// After the upgrade the client sends one JSON message, `WsSubscribe` (with the
/// access token in it unless the upgrade carried `Authorization`), within 10 s.
/// The gateway answers `{"event":"ready",...}` and then every event as
/// `{"event": kind, "id": resume id or null, "data": payload}`, the same kinds
/// and payloads as the SSE stream. A refusal is `{"event":"error","data":problem}`
/// followed by a close frame with code 4000 + the HTTP status (4401, 4403, 4400).
#[utoipa::path(get, path = "/api/v1/streams/ws", tag = "streams",
    responses(
        (status = 101, description = "Switching to WebSocket"),
        Problems),
    security((), ("bearer" = []), ("api_key" = [])))]
pub async fn websocket(
    State(app): State<Arc<App>>,
    Facts(facts): Facts,
    headers: HeaderMap,
    Upgrade(upgrade): Upgrade,
) -> Response {
    let header_credential = crate::auth::credential(&headers);
    upgrade
        .max_message_size(WS_SUBSCRIBE_BYTES_MAX)
        .max_frame_size(WS_SUBSCRIBE_BYTES_MAX)
        .on_upgrade(move |socket| serve_websocket(app, facts, header_credential, socket))
}

async fn serve_websocket(
    app: Arc<App>,
    facts: crate::auth::RequestFacts,
    header_credential: Option<(&'static str, String)>,
    mut socket: WebSocket,
) {
    let rx = match subscribe(&app, facts, header_credential, &mut socket).await {
        Ok(rx) => rx,
        Err(problem) => {
            let body = serde_json::to_string(&problem.body()).unwrap_or_else(|_| "{}".to_owned());
            let _ = socket
                .send(Message::Text(
                    format!("{{\"event\":\"error\",\"id\":null,\"data\":{body}}}").into(),
                ))
                .await;
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code: 4000 + problem.status.as_u16(),
                    reason: problem.code.clone().into(),
                })))
                .await;
            return;
        }
    };
    forward(rx, socket).await;
}

/// Reads the first message and opens the stream it asks for.
async fn subscribe(
    app: &Arc<App>,
    facts: crate::auth::RequestFacts,
    header_credential: Option<(&'static str, String)>,
    socket: &mut WebSocket,
) -> Result<mpsc::Receiver<StreamItem>, Problem> {
    let first = tokio::time::timeout(WS_SUBSCRIBE_WAIT, async {
        loop {
            match socket.recv().await {
                Some(Ok(Message::Text(text))) => return Some(text.to_string()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                _ => return None,
            }
        }
    })
    .await;
    let text = match first {
        Ok(Some(text)) => text,
        Ok(None) => {
            return Err(Problem::bad_request(
                "websocket_subscribe_missing",
                "Send the subscription as the first (text) message.",
            ));
        }
        Err(_) => {
            return Err(Problem::bad_request(
                "websocket_subscribe_missing",
                "No subscription arrived within 10 seconds of the upgrade.",
            ));
        }
    };
    let request: WsSubscribe = serde_json::from_str(&text).map_err(|error| {
        Problem::bad_request(
            "invalid_subscription",
            format!("The subscription is not understood: {error}."),
        )
    })?;
    let credential = match (&request.access_token, &request.api_key, header_credential) {
        (Some(token), None, _) => Some(("bearer", token.clone())),
        (None, Some(key), _) => Some(("apikey", key.clone())),
        (None, None, from_headers) => from_headers,
        (Some(_), Some(_), _) => {
            return Err(Problem::bad_request(
                "invalid_subscription",
                "Give an access token or an API key, not both.",
            ));
        }
    };
    let caller = Caller::authenticate(app, credential, facts).await?;
    let rx = match request.stream.as_str() {
        "accounts" => {
            open_accounts(
                app,
                &caller,
                request.account.as_deref(),
                request.last_event_id,
            )
            .await?
        }
        "events" => {
            open_events(app, &caller, request.last_event_id, request.max_per_second).await?
        }
        "alerts" => open_alerts(app, &caller, request.last_event_id).await?,
        _ => {
            return Err(Problem::invalid(
                "stream",
                "stream must be `accounts`, `events` or `alerts`.",
            ));
        }
    };
    let ready = json_event("ready", &serde_json::json!({ "stream": request.stream }));
    socket
        .send(Message::Text(ready.into_ws_text().into()))
        .await
        .map_err(|_| Problem::bad_request("websocket_closed", "The client went away."))?;
    Ok(rx)
}

/// Sends the stream's items until either side ends; answers the client's close.
async fn forward(mut rx: mpsc::Receiver<StreamItem>, mut socket: WebSocket) {
    let mut ping = tokio::time::interval(WS_PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            item = rx.recv() => {
                let Some(item) = item else { break };
                if socket.send(Message::Text(item.into_ws_text().into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = socket.send(Message::Close(None)).await;
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
