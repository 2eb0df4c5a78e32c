//! The running agent: one follower per branch (its committed-event stream and its
//! risk journal), the mule detector, the alert store, retraining and promotion, and
//! the HTTP API.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /health` | `ok` |
//! | `GET /status` | branches followed (position, lag, counts), alerts, detector, models |
//! | `GET /alerts?after=ID&limit=N` | alerts with an id above `after`, oldest first (JSON) |
//! | `GET /alerts/stream?after=ID` | the same as server-sent events, then live |
//! | `GET /metrics` | Prometheus text |
//! | `GET /models` | every model version with its figures |
//! | `POST /retrain` | trains, evaluates and (if better) promotes a new version |
//! | `POST /models/{version}/promote` | pushes a version to every branch |

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use corebank_client::{Client, ClientConfig, ClientError, v1};
use futures_util::StreamExt as _;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::alerts::{Alert, AlertKind, AlertStore, NewAlert, Severity};
use crate::error::AgentError;
use crate::graph::{CommittedTransfer, Detection, DetectorConfig, MuleDetector};
use crate::registry::{ModelRegistry, VersionEntry, VersionRecord, version_name};
use crate::training::{TrainConfig, beats, train_candidate};

/// A branch to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchTarget {
    /// The branch code (0 to 9999).
    pub code: u16,
    /// Its replicas' addresses, comma-separated (`host:port,host:port`).
    pub endpoints: String,
}

/// What the agent runs with.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub branches: Vec<BranchTarget>,
    /// The connection settings (TLS, API key, timeouts); the endpoint is each branch's.
    pub client: ClientConfig,
    /// The model registry directory.
    pub models_dir: PathBuf,
    pub train: TrainConfig,
    /// A candidate is promoted only if its AUPRC beats the version in service by more
    /// than this (0: strictly better).
    pub min_improvement: f64,
    /// Retrain on this schedule (none: only on demand).
    pub retrain_every: Option<Duration>,
    /// Alerts kept in memory.
    pub alert_capacity: usize,
    pub detector: DetectorConfig,
    /// How often the risk journal of each branch is read.
    pub poll_interval: Duration,
}

impl AgentConfig {
    /// Defaults around the branches to follow and the registry directory.
    pub fn new(branches: Vec<BranchTarget>, client: ClientConfig, models_dir: PathBuf) -> Self {
        Self {
            branches,
            client,
            models_dir,
            train: TrainConfig::default(),
            min_improvement: 0.0,
            retrain_every: None,
            alert_capacity: 10_000,
            detector: DetectorConfig::default(),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// A branch as the agent follows it.
#[derive(Debug, Clone, Default, Serialize)]
struct BranchStatus {
    connected: bool,
    /// The position of the last committed event (or heartbeat) processed.
    position: u64,
    events: u64,
    transfers: u64,
    heartbeats: u64,
    /// The next risk-journal sequence number wanted.
    risk_next_sequence: u64,
    risk_events: u64,
    reconnects: u64,
    last_error: Option<String>,
}

#[derive(Debug)]
struct BranchState {
    target: BranchTarget,
    client: Mutex<Option<Client>>,
    status: Mutex<BranchStatus>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl BranchState {
    fn client(&self) -> Option<Client> {
        lock(&self.client).clone()
    }

    fn update(&self, f: impl FnOnce(&mut BranchStatus)) {
        f(&mut lock(&self.status));
    }
}

#[derive(Debug)]
struct Shared {
    config: AgentConfig,
    alerts: Mutex<AlertStore>,
    detector: Mutex<MuleDetector>,
    branches: Vec<BranchState>,
    registry: ModelRegistry,
    training: tokio::sync::Mutex<()>,
    retraining: AtomicBool,
    live: broadcast::Sender<Alert>,
    retrains: AtomicU64,
    retrain_failures: AtomicU64,
    promotions: AtomicU64,
    started: Instant,
}

impl Shared {
    fn raise(&self, alert: NewAlert) -> Alert {
        let alert = lock(&self.alerts).push(alert);
        tracing::info!(
            id = alert.id,
            kind = alert.alert.kind.name(),
            summary = %alert.alert.summary,
            "alert"
        );
        // No subscriber is fine.
        let _ = self.live.send(alert.clone());
        alert
    }
}

/// The agent, running.
#[derive(Debug)]
pub struct RunningAgent {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    http: JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RunningAgent {
    /// The HTTP address bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The model registry directory.
    pub fn models_dir(&self) -> &std::path::Path {
        self.shared.registry.dir()
    }

    /// Up to `limit` alerts after id `after`, oldest first (what `GET /alerts` serves).
    pub fn alerts(&self, after: u64, limit: usize) -> Vec<Alert> {
        lock(&self.shared.alerts).after(after, limit)
    }

    /// Alerts raised so far, by kind.
    pub fn alert_counts(&self) -> Vec<(AlertKind, u64)> {
        lock(&self.shared.alerts).counts()
    }

    /// Stops the followers and the HTTP server (open event streams get `grace`).
    pub async fn shutdown(mut self, grace: Duration) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(grace, &mut self.http).await.is_err() {
            self.http.abort();
        }
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Starts the agent on `listener` (on the current Tokio runtime).
pub async fn start(
    config: AgentConfig,
    listener: tokio::net::TcpListener,
) -> Result<RunningAgent, AgentError> {
    let registry = ModelRegistry::open(&config.models_dir)?;
    // A corrupt figures file is reported now, not only at /models.
    for entry in registry.list()? {
        if let VersionEntry::Broken { error, .. } = entry {
            tracing::warn!(%error, "model registry");
        }
    }
    let addr = listener.local_addr().map_err(|source| AgentError::Io {
        path: PathBuf::from("<listener>"),
        source,
    })?;
    let (live, _) = broadcast::channel(1_024);
    let shared = Arc::new(Shared {
        alerts: Mutex::new(AlertStore::new(config.alert_capacity)),
        detector: Mutex::new(MuleDetector::new(config.detector.clone())),
        branches: config
            .branches
            .iter()
            .map(|target| BranchState {
                target: target.clone(),
                client: Mutex::new(None),
                status: Mutex::new(BranchStatus {
                    risk_next_sequence: 1,
                    ..BranchStatus::default()
                }),
            })
            .collect(),
        registry,
        training: tokio::sync::Mutex::new(()),
        retraining: AtomicBool::new(false),
        live,
        retrains: AtomicU64::new(0),
        retrain_failures: AtomicU64::new(0),
        promotions: AtomicU64::new(0),
        started: Instant::now(),
        config,
    });
    let mut tasks = Vec::new();
    for index in 0..shared.branches.len() {
        tasks.push(tokio::spawn(follow_events(Arc::clone(&shared), index)));
        tasks.push(tokio::spawn(poll_risk(Arc::clone(&shared), index)));
    }
    if let Some(every) = shared.config.retrain_every {
        tasks.push(tokio::spawn(scheduled_retraining(
            Arc::clone(&shared),
            every,
        )));
    }
    let app = Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/alerts", get(alerts))
        .route("/alerts/stream", get(alert_stream))
        .route("/metrics", get(metrics))
        .route("/models", get(models))
        .route("/retrain", post(retrain_now))
        .route("/models/{version}/promote", post(promote_now))
        .with_state(Arc::clone(&shared));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the agent's HTTP server stopped");
        }
    });
    Ok(RunningAgent {
        addr,
        shared,
        tasks,
        http,
        stop: Some(stop),
    })
}

// ------------------------------------------------------------------ followers

const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

fn client_config(shared: &Shared, target: &BranchTarget) -> ClientConfig {
    let mut config = shared.config.client.clone();
    config.endpoint.clone_from(&target.endpoints);
    config
}

/// Follows a branch's committed events from position 0, resuming from the last
/// position after a broken stream, with backoff.
async fn follow_events(shared: Arc<Shared>, index: usize) {
    let Some(branch) = shared.branches.get(index) else {
        return;
    };
    let code = branch.target.code;
    let mut backoff = BACKOFF_MIN;
    loop {
        let client = match branch.client() {
            Some(client) => client,
            None => match Client::connect(client_config(&shared, &branch.target)).await {
                Ok(client) => {
                    tracing::info!(branch = code, endpoint = %client.endpoint(), "connected to the branch");
                    *lock(&branch.client) = Some(client.clone());
                    ensure_model(&shared, branch, &client).await;
                    client
                }
                Err(error) => {
                    branch.update(|s| {
                        s.connected = false;
                        s.last_error = Some(error.to_string());
                    });
                    tracing::warn!(branch = code, %error, "cannot reach the branch; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            },
        };
        let from = lock(&branch.status).position;
        let mut stream = client.subscribe(from);
        branch.update(|s| s.connected = true);
        let mut error: Option<ClientError> = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    backoff = BACKOFF_MIN;
                    handle_event(&shared, branch, event);
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let detail = error.map_or_else(|| "the event stream ended".to_string(), |e| e.to_string());
        tracing::warn!(branch = code, error = %detail, "event stream broken; resuming");
        branch.update(|s| {
            s.connected = false;
            s.reconnects += 1;
            s.last_error = Some(detail);
        });
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

fn u128_of(value: Option<v1::U128>) -> u128 {
    value.map_or(0, u128::from)
}

fn handle_event(shared: &Shared, branch: &BranchState, event: v1::Event) {
    let position = event.position;
    let mut detections = Vec::new();
    let mut transfer = false;
    let mut heartbeat = false;
    match event.kind {
        Some(v1::event::Kind::Transfer(created)) => {
            transfer = true;
            if let Some(t) = created.transfer {
                let committed = CommittedTransfer {
                    branch: branch.target.code,
                    timestamp_ns: if t.timestamp != 0 {
                        t.timestamp
                    } else {
                        position
                    },
                    id: u128_of(t.id),
                    debit: u128_of(t.debit_account_id),
                    credit: u128_of(t.credit_account_id),
                    amount: u128_of(t.amount),
                    ledger: t.ledger,
                    code: u16::try_from(t.code).unwrap_or(0),
                    flags: t.flags,
                    user_data_128: u128_of(t.user_data_128),
                    user_data_32: t.user_data_32,
                };
                detections = lock(&shared.detector).observe(&committed);
            }
        }
        Some(v1::event::Kind::Heartbeat(_)) => heartbeat = true,
        _ => {}
    }
    branch.update(|s| {
        s.position = s.position.max(position);
        if heartbeat {
            s.heartbeats += 1;
        } else {
            s.events += 1;
        }
        if transfer {
            s.transfers += 1;
        }
        s.last_error = None;
    });
    for detection in detections {
        shared.raise(mule_alert(&detection));
    }
}

fn mule_alert(d: &Detection) -> NewAlert {
    let ring = d.kind == "mule_ring";
    let mut branches = d.branches.clone();
    branches.sort_unstable();
    branches.dedup();
    let across = if branches.len() > 1 {
        " across branches"
    } else {
        ""
    };
    let list = |ids: &[u128]| ids.iter().map(u128::to_string).collect::<Vec<_>>();
    let summary = if ring {
        format!(
            "mule ring of {} accounts{across}: {}",
            d.accounts.len(),
            list(&d.accounts).join(" -> ")
        )
    } else {
        format!(
            "mule account {}: {} distinct payers from {} branches paid {} (minor units) within the \
             window, {} sent onward",
            d.accounts.first().copied().unwrap_or(0),
            d.features.distinct_payers,
            d.features.distinct_payer_branches,
            d.features.money_in,
            d.features.money_out
        )
    };
    let mut reasons = vec![d.kind.to_string(), "fan_in".into(), "fast_fan_out".into()];
    if d.features.distinct_payer_branches > 1 || branches.len() > 1 {
        reasons.push("cross_branch".into());
    }
    NewAlert {
        kind: AlertKind::MuleRing,
        severity: if ring {
            Severity::High
        } else {
            Severity::Medium
        },
        branch: (branches.len() == 1)
            .then(|| branches.first().copied())
            .flatten(),
        timestamp_ns: d.timestamp_ns,
        transfer_id: None,
        account_id: d.accounts.first().map(u128::to_string),
        counterparty_id: None,
        amount_minor: Some(d.features.money_in.to_string()),
        score: None,
        reasons,
        accounts: list(&d.accounts),
        branches,
        summary,
        sequence: None,
    }
}

/// Reads a branch's risk journal from its next sequence number, every poll interval.
async fn poll_risk(shared: Arc<Shared>, index: usize) {
    let Some(branch) = shared.branches.get(index) else {
        return;
    };
    let mut ticker = tokio::time::interval(shared.config.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(client) = branch.client() else {
            continue;
        };
        loop {
            let from = lock(&branch.status).risk_next_sequence.max(1);
            let request = v1::ListRiskEventsRequest {
                from_sequence: from,
                limit: 1_000,
            };
            let response = tokio::time::timeout(
                Duration::from_secs(10),
                client.risk_stub().list_events(request),
            )
            .await;
            let response = match response {
                Ok(Ok(response)) => response.into_inner(),
                Ok(Err(status)) => {
                    tracing::debug!(branch = branch.target.code, %status, "risk journal not read");
                    break;
                }
                Err(_) => break,
            };
            let full = response.events.len() >= 1_000;
            let mut next = from;
            for event in response.events {
                next = next.max(event.sequence.saturating_add(1));
                if let Some(alert) = risk_alert(branch.target.code, &event) {
                    shared.raise(alert);
                }
                branch.update(|s| s.risk_events += 1);
            }
            if response.next_sequence > next && !full {
                next = response.next_sequence;
            }
            branch.update(|s| s.risk_next_sequence = next);
            if !full {
                break;
            }
        }
    }
}

fn risk_alert(branch: u16, event: &v1::RiskEvent) -> Option<NewAlert> {
    let kind = AlertKind::of_risk_event(&event.kind)?;
    let assessment = event.assessment.as_ref();
    let score = assessment.map_or(0, |a| a.score);
    let reasons: Vec<String> = assessment
        .map(|a| a.reasons.iter().map(|r| r.name.clone()).collect())
        .unwrap_or_default();
    let severity = if kind == AlertKind::Frozen {
        Severity::High
    } else {
        Severity::of_score(score)
    };
    let transfer = u128_of(event.transfer_id);
    let account = u128_of(event.account_id);
    let counterparty = u128_of(event.counterparty_id);
    let amount = u128_of(event.amount_minor);
    let branch = if event.branch != 0 {
        u16::try_from(event.branch).unwrap_or(branch)
    } else {
        branch
    };
    let subject = if transfer != 0 {
        format!("transfer {transfer}")
    } else {
        format!("account {account}")
    };
    let why = if reasons.is_empty() {
        String::new()
    } else {
        format!(": {}", reasons.join(", "))
    };
    Some(NewAlert {
        kind,
        severity,
        branch: Some(branch),
        timestamp_ns: event.timestamp_ns,
        transfer_id: (transfer != 0).then(|| transfer.to_string()),
        account_id: (account != 0).then(|| account.to_string()),
        counterparty_id: (counterparty != 0).then(|| counterparty.to_string()),
        amount_minor: (amount != 0).then(|| amount.to_string()),
        score: assessment.map(|a| a.score),
        reasons,
        accounts: Vec::new(),
        branches: vec![branch],
        summary: format!(
            "branch {branch:04} {} {subject} (score {score}{why})",
            event.kind
        ),
        sequence: Some(event.sequence),
    })
}

// ------------------------------------------------------------------ models

/// Pushes the version in service to a branch that does not run it (a branch that
/// restarted, or was down when it was promoted).
async fn ensure_model(shared: &Shared, branch: &BranchState, client: &Client) {
    let Ok(Some(current)) = shared.registry.current() else {
        return;
    };
    let status = tokio::time::timeout(
        Duration::from_secs(10),
        client.risk_stub().status(v1::RiskStatusRequest {}),
    )
    .await;
    let Ok(Ok(status)) = status else {
        return;
    };
    let status = status.into_inner();
    if !status.screening || status.engine.contains(&current.figures.engine_version) {
        return;
    }
    match load_model(shared, client, current.version).await {
        Ok(()) => tracing::info!(
            branch = branch.target.code,
            version = %current.name,
            "model in service pushed to the branch"
        ),
        Err(error) => tracing::warn!(branch = branch.target.code, %error, "model not pushed"),
    }
}

async fn load_model(shared: &Shared, client: &Client, version: u32) -> Result<(), String> {
    let bytes = shared
        .registry
        .model_bytes(version)
        .map_err(|e| e.to_string())?;
    let mut stub = client.risk_stub();
    let call = stub.load_model(v1::LoadModelRequest { model: bytes });
    match tokio::time::timeout(Duration::from_secs(30), call).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) => Err(status.message().to_string()),
        Err(_) => Err("no answer within 30 s".into()),
    }
}

/// Pushes a version to every branch and records it as promoted.
async fn promote(
    shared: &Shared,
    version: u32,
    decision: &str,
) -> Result<VersionRecord, AgentError> {
    let bytes = shared.registry.model_bytes(version)?;
    corebank_risk::Model::from_bytes(&bytes).map_err(|e| AgentError::BadModel {
        version,
        detail: e.to_string(),
    })?;
    let mut figures = shared.registry.figures(version)?;
    let mut errors = Vec::new();
    for branch in &shared.branches {
        let code = branch.target.code;
        let result = match branch.client() {
            Some(client) => load_model(shared, &client, version).await,
            None => Err("not connected (the model is pushed when it connects)".into()),
        };
        if let Err(error) = result {
            tracing::warn!(branch = code, %error, version = %version_name(version), "promotion refused");
            errors.push(format!("{code:04}: {error}"));
        }
    }
    figures.promoted = true;
    figures.promoted_unix = Some(now_unix());
    decision.clone_into(&mut figures.decision);
    figures.promotion_errors = errors;
    shared.registry.write_figures(version, &figures)?;
    shared.promotions.fetch_add(1, Ordering::Relaxed);
    tracing::info!(version = %version_name(version), engine_version = %figures.engine_version, "model promoted");
    Ok(VersionRecord {
        version,
        name: version_name(version),
        figures,
    })
}

/// Why a retraining did not produce a version.
#[derive(Debug, thiserror::Error)]
enum RetrainError {
    #[error("a retraining is already running")]
    Busy,
    #[error(transparent)]
    Agent(#[from] AgentError),
}

struct Retraining<'a>(&'a AtomicBool);

impl Drop for Retraining<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// Trains a candidate, records it, and promotes it if it beats the version in service.
async fn retrain(shared: &Arc<Shared>) -> Result<VersionRecord, RetrainError> {
    let Ok(_guard) = shared.training.try_lock() else {
        return Err(RetrainError::Busy);
    };
    shared.retraining.store(true, Ordering::Relaxed);
    let _flag = Retraining(&shared.retraining);
    let result = retrain_locked(shared).await;
    match &result {
        Ok(_) => shared.retrains.fetch_add(1, Ordering::Relaxed),
        Err(_) => shared.retrain_failures.fetch_add(1, Ordering::Relaxed),
    };
    result.map_err(RetrainError::Agent)
}

async fn retrain_locked(shared: &Arc<Shared>) -> Result<VersionRecord, AgentError> {
    let version = shared.registry.next_version()?;
    let config = shared.config.train.clone();
    let created = now_unix();
    let candidate = tokio::task::spawn_blocking(move || train_candidate(&config, version, created))
        .await
        .map_err(|e| AgentError::Training(format!("the training task failed: {e}")))??;
    let current = shared.registry.current()?;
    let current_auprc = current.as_ref().map(|c| c.figures.auprc);
    let better = beats(
        candidate.figures.auprc,
        current_auprc,
        shared.config.min_improvement,
    );
    let mut figures = candidate.figures;
    figures.decision = match &current {
        None => "promoted: no version in service".into(),
        Some(c) if better => format!(
            "promoted: AUPRC {:.4} beats {} ({:.4}) by more than {}",
            figures.auprc, c.name, c.figures.auprc, shared.config.min_improvement
        ),
        Some(c) => format!(
            "kept {}: AUPRC {:.4} does not beat {:.4} by more than {}",
            c.name, figures.auprc, c.figures.auprc, shared.config.min_improvement
        ),
    };
    let version = shared.registry.add(&candidate.bytes, &figures)?;
    tracing::info!(
        version = %version_name(version),
        auprc = figures.auprc,
        seconds = figures.training_seconds,
        decision = %figures.decision,
        "model trained"
    );
    if better {
        let decision = figures.decision.clone();
        return promote(shared, version, &decision).await;
    }
    Ok(VersionRecord {
        version,
        name: version_name(version),
        figures,
    })
}

async fn scheduled_retraining(shared: Arc<Shared>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if let Err(error) = retrain(&shared).await {
            tracing::warn!(%error, "scheduled retraining failed");
        }
    }
}

// ------------------------------------------------------------------ HTTP

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(mut body) => {
            body.push('\n');
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    json(status, &serde_json::json!({ "error": message.to_string() }))
}

/// `key=value` pairs of a query string (no percent-decoding needed for numbers).
fn query_value<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn query_number(query: Option<&str>, key: &str) -> Result<Option<u64>, Box<Response>> {
    match query_value(query, key) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                format!("{key} must be a whole number, not {v:?}"),
            ))
        }),
    }
}

async fn health() -> &'static str {
    "ok\n"
}

async fn alerts(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let q = query.as_deref();
    let (after, limit) = match (query_number(q, "after"), query_number(q, "limit")) {
        (Ok(after), Ok(limit)) => (after.unwrap_or(0), limit.unwrap_or(100)),
        (Err(r), _) | (_, Err(r)) => return *r,
    };
    let limit = usize::try_from(limit.clamp(1, 1_000)).unwrap_or(1_000);
    let store = lock(&shared.alerts);
    let alerts = store.after(after, limit);
    let body = serde_json::json!({
        "alerts": alerts,
        "last_id": store.last_id(),
    });
    drop(store);
    json(StatusCode::OK, &body)
}

struct StreamState {
    shared: Arc<Shared>,
    last_id: u64,
    pending: VecDeque<Alert>,
    live: broadcast::Receiver<Alert>,
}

async fn alert_stream(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let from_header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let after = match query_number(query.as_deref(), "after") {
        Ok(after) => after.or(from_header).unwrap_or(0),
        Err(r) => return *r,
    };
    let live = shared.live.subscribe();
    let pending: VecDeque<Alert> = lock(&shared.alerts).after(after, 10_000).into();
    let state = StreamState {
        shared,
        last_id: after,
        pending,
        live,
    };
    // A first comment, so that the client sees the stream open at once.
    let hello = futures_util::stream::once(async {
        Ok::<_, Infallible>(SseEvent::default().comment("corebank agent alerts"))
    });
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(alert) = state.pending.pop_front() {
                if alert.id <= state.last_id {
                    continue;
                }
                state.last_id = alert.id;
                let data = serde_json::to_string(&alert).unwrap_or_default();
                let event = SseEvent::default()
                    .id(alert.id.to_string())
                    .event(alert.alert.kind.name())
                    .data(data);
                return Some((Ok::<_, Infallible>(event), state));
            }
            match state.live.recv().await {
                Ok(alert) => state.pending.push_back(alert),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    state.pending = lock(&state.shared.alerts)
                        .after(state.last_id, 10_000)
                        .into();
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(hello.chain(stream))
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[derive(Serialize)]
struct BranchView {
    branch: u16,
    endpoints: String,
    #[serde(flatten)]
    status: BranchStatus,
    /// Wall clock minus the last position (ms): how far behind the agent is, give or
    /// take the clocks' difference.
    lag_ms: Option<u64>,
}

fn branch_views(shared: &Shared) -> Vec<BranchView> {
    let now = now_ns();
    shared
        .branches
        .iter()
        .map(|b| {
            let status = lock(&b.status).clone();
            BranchView {
                branch: b.target.code,
                endpoints: b.target.endpoints.clone(),
                lag_ms: (status.position > 0)
                    .then(|| now.saturating_sub(status.position) / 1_000_000),
                status,
            }
        })
        .collect()
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    let (last_id, held, capacity, dropped, by_kind) = {
        let store = lock(&shared.alerts);
        let by_kind: serde_json::Map<String, serde_json::Value> = store
            .counts()
            .into_iter()
            .map(|(k, n)| (k.name().to_string(), n.into()))
            .collect();
        (
            store.last_id(),
            store.len(),
            store.capacity(),
            store.dropped(),
            by_kind,
        )
    };
    let (tracked, movements, flagged) = {
        let detector = lock(&shared.detector);
        (
            detector.tracked_accounts(),
            detector.movements(),
            detector.flagged_accounts(),
        )
    };
    let versions = shared.registry.versions().map(|v| v.len()).unwrap_or(0);
    let current = shared.registry.current().ok().flatten();
    let body = serde_json::json!({
        "branches": branch_views(&shared),
        "alerts": {
            "raised": last_id,
            "kept": held,
            "capacity": capacity,
            "dropped": dropped,
            "by_kind": by_kind,
        },
        "detector": {
            "tracked_accounts": tracked,
            "movements": movements,
            "flagged_accounts": flagged,
        },
        "models": {
            "directory": shared.registry.dir().display().to_string(),
            "versions": versions,
            "current": current.as_ref().map(|c| c.name.clone()),
            "current_engine_version": current.as_ref().map(|c| c.figures.engine_version.clone()),
            "retraining": shared.retraining.load(Ordering::Relaxed),
            "retrains": shared.retrains.load(Ordering::Relaxed),
            "retrain_failures": shared.retrain_failures.load(Ordering::Relaxed),
            "promotions": shared.promotions.load(Ordering::Relaxed),
        },
        "uptime_seconds": shared.started.elapsed().as_secs(),
    });
    json(StatusCode::OK, &body)
}

/// A per-branch metric family: name, type, help, value.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&BranchView) -> u64,
);

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let mut out = String::new();
    let counts = lock(&shared.alerts).counts();
    let _ = writeln!(
        out,
        "# HELP corebank_agent_alerts_total Alerts raised, by kind."
    );
    let _ = writeln!(out, "# TYPE corebank_agent_alerts_total counter");
    for (kind, n) in counts {
        let _ = writeln!(
            out,
            "corebank_agent_alerts_total{{kind=\"{}\"}} {n}",
            kind.name()
        );
    }
    let views = branch_views(&shared);
    let families: [Family; 7] = [
        (
            "corebank_agent_events_total",
            "counter",
            "Committed events followed, per branch.",
            |v| v.status.events,
        ),
        (
            "corebank_agent_transfers_total",
            "counter",
            "Committed transfers followed, per branch.",
            |v| v.status.transfers,
        ),
        (
            "corebank_agent_risk_events_total",
            "counter",
            "Risk-journal events read, per branch.",
            |v| v.status.risk_events,
        ),
        (
            "corebank_agent_branch_position",
            "gauge",
            "Position of the last event processed, per branch.",
            |v| v.status.position,
        ),
        (
            "corebank_agent_branch_lag_milliseconds",
            "gauge",
            "Wall clock minus the last position, per branch.",
            |v| v.lag_ms.unwrap_or(0),
        ),
        (
            "corebank_agent_branch_connected",
            "gauge",
            "1 while the branch's event stream is open.",
            |v| u64::from(v.status.connected),
        ),
        (
            "corebank_agent_branch_reconnects_total",
            "counter",
            "Event streams resumed, per branch.",
            |v| v.status.reconnects,
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for view in &views {
            let _ = writeln!(
                out,
                "{name}{{branch=\"{:04}\"}} {}",
                view.branch,
                value(view)
            );
        }
    }
    let (tracked, flagged) = {
        let detector = lock(&shared.detector);
        (detector.tracked_accounts(), detector.flagged_accounts())
    };
    let _ = writeln!(out, "# TYPE corebank_agent_tracked_accounts gauge");
    let _ = writeln!(out, "corebank_agent_tracked_accounts {tracked}");
    let _ = writeln!(out, "# TYPE corebank_agent_mule_accounts_flagged gauge");
    let _ = writeln!(out, "corebank_agent_mule_accounts_flagged {flagged}");
    let entries = shared.registry.list().unwrap_or_default();
    let current = shared.registry.current().ok().flatten();
    let _ = writeln!(
        out,
        "# HELP corebank_agent_model_versions Model versions in the registry."
    );
    let _ = writeln!(out, "# TYPE corebank_agent_model_versions gauge");
    let _ = writeln!(out, "corebank_agent_model_versions {}", entries.len());
    let _ = writeln!(
        out,
        "# HELP corebank_agent_model_current_version The version in service (0: none)."
    );
    let _ = writeln!(out, "# TYPE corebank_agent_model_current_version gauge");
    let _ = writeln!(
        out,
        "corebank_agent_model_current_version {}",
        current.as_ref().map_or(0, |c| c.version)
    );
    let _ = writeln!(
        out,
        "# HELP corebank_agent_model_auprc Held-out AUPRC of each version."
    );
    let _ = writeln!(out, "# TYPE corebank_agent_model_auprc gauge");
    for entry in &entries {
        if let VersionEntry::Ok(r) = entry {
            let _ = writeln!(
                out,
                "corebank_agent_model_auprc{{version=\"{}\",promoted=\"{}\"}} {}",
                r.name, r.figures.promoted, r.figures.auprc
            );
        }
    }
    for (name, value) in [
        ("corebank_agent_retrains_total", &shared.retrains),
        (
            "corebank_agent_retrain_failures_total",
            &shared.retrain_failures,
        ),
        ("corebank_agent_promotions_total", &shared.promotions),
    ] {
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        out,
    )
        .into_response()
}

async fn models(State(shared): State<Arc<Shared>>) -> Response {
    match (shared.registry.list(), shared.registry.current()) {
        (Ok(versions), Ok(current)) => json(
            StatusCode::OK,
            &serde_json::json!({
                "directory": shared.registry.dir().display().to_string(),
                "current": current.map(|c| c.name),
                "versions": versions,
            }),
        ),
        (Err(e), _) | (_, Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn retrain_now(State(shared): State<Arc<Shared>>) -> Response {
    match retrain(&shared).await {
        Ok(record) => json(StatusCode::OK, &record),
        Err(RetrainError::Busy) => error(StatusCode::CONFLICT, RetrainError::Busy),
        Err(RetrainError::Agent(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn promote_now(State(shared): State<Arc<Shared>>, Path(version): Path<String>) -> Response {
    let Some(number) = version
        .strip_prefix('v')
        .unwrap_or(&version)
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{version:?} is not a version (e.g. v0003 or 3)"),
        );
    };
    let Ok(_guard) = shared.training.try_lock() else {
        return error(StatusCode::CONFLICT, RetrainError::Busy);
    };
    match promote(&shared, number, "promoted by request").await {
        Ok(record) => json(StatusCode::OK, &record),
        Err(AgentError::UnknownVersion(v)) => {
            error(StatusCode::NOT_FOUND, AgentError::UnknownVersion(v))
        }
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
    }
}
