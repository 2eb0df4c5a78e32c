//! The operations dashboard, its charts, the audit explorer, metrics and health.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use corebank_audit::{AuditQuery, Outcome};
use corebank_client::v1;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{App, now_ms};
use crate::auth::{Caller, Perm};
use crate::extract::{Path, Query, text};
use crate::hub::{Volume, rfc3339};
use crate::metrics::{Percentiles, ms_text};
use crate::problem::{ApiResult, Problem, ProblemBody, Problems};

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(overview))
        .routes(routes!(chart))
        .routes(routes!(search_audit))
        .routes(routes!(verify_audit))
        .routes(routes!(metrics))
        .routes(routes!(health))
        .routes(routes!(ready))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplicaHealth {
    pub node_id: u64,
    pub address: String,
    pub healthy: bool,
    pub leader: bool,
    /// Milliseconds since its last heartbeat reached the registry.
    pub last_heartbeat_ms_ago: Option<u64>,
    pub applied_index: u64,
    pub term: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BranchHealth {
    pub code: u16,
    pub name: String,
    pub region: String,
    /// The leader's node id, when one is known.
    pub leader: Option<u64>,
    /// Whether the gateway follows its event stream now.
    pub streaming: bool,
    pub replicas: Vec<ReplicaHealth>,
    /// Transfers waiting for the screen's review on this branch.
    pub held_for_review: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesPoint {
    pub at: String,
    pub transfers: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    pub at: String,
    /// Committed transfers per second, bank-wide, over the last 10 seconds.
    pub transfers_per_second: u64,
    /// Payments through this gateway over the last minute (milliseconds).
    pub latency_ms: Percentiles,
    /// Per second, the last three minutes.
    pub series: Vec<SeriesPoint>,
    pub volumes: Vec<Volume>,
    /// Requests being served by the gateway now.
    pub queue_depth: u64,
    pub branches: Vec<BranchHealth>,
    pub stream_clients: i64,
}

/// The bank at a glance, for the dashboard (polled every 2 s).
#[utoipa::path(get, path = "/api/v1/ops/overview", tag = "operations",
    responses(
        (status = 200, description = "The figures", body = Overview),
        Problems),
    security(("bearer" = [])))]
pub async fn overview(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<Overview>> {
    app.allow(&caller, Perm::OpsRead, "ops.overview", "ops")
        .await?;
    let series = app.hub.throughput_series();
    let recent: u64 = series.iter().rev().skip(1).take(10).map(|(_, c)| *c).sum();
    let streaming = app.hub.branch_status();
    let now = now_ms();
    let mut branches = Vec::new();
    for view in app.backend.branches().await? {
        let code = view.code.get();
        let held = match app.backend.branch(code).await {
            Ok(client) => client
                .risk_stub()
                .status(v1::RiskStatusRequest {})
                .await
                .map(|r| r.into_inner().held_open)
                .unwrap_or(0),
            Err(_) => 0,
        };
        branches.push(BranchHealth {
            code,
            name: view.name.clone(),
            region: view.region.clone(),
            leader: view.leader.map(|(node, _)| node),
            streaming: streaming.iter().any(|(c, up, _)| *c == code && *up),
            replicas: view
                .replicas
                .iter()
                .map(|r| ReplicaHealth {
                    node_id: r.node_id,
                    address: r.address.clone(),
                    healthy: matches!(r.health, corebank_registry::Health::Healthy),
                    leader: r.leader,
                    last_heartbeat_ms_ago: r
                        .last_heartbeat_unix_ms
                        .map(|at| now.saturating_sub(at)),
                    applied_index: r.applied_index,
                    term: r.term,
                })
                .collect(),
            held_for_review: held,
        });
    }
    Ok(Json(Overview {
        at: rfc3339(now.saturating_mul(1_000_000)),
        transfers_per_second: recent / 10,
        latency_ms: app.metrics.money_percentiles(Duration::from_secs(60)),
        series: series
            .iter()
            .map(|(second, count)| SeriesPoint {
                at: rfc3339(second.saturating_mul(1_000_000_000)),
                transfers: *count,
            })
            .collect(),
        volumes: app.hub.volumes(),
        queue_depth: app.metrics.in_flight(),
        branches,
        stream_clients: app
            .metrics
            .stream_clients
            .load(std::sync::atomic::Ordering::Relaxed),
    }))
}

/// A dashboard chart as SVG: `throughput`, `latency` or `volumes`.
#[utoipa::path(get, path = "/api/v1/ops/charts/{name}", tag = "operations",
    params(("name" = String, Path, description = "`throughput.svg`, `latency.svg` or `volumes.svg`")),
    responses(
        (status = 200, description = "The chart", content_type = "image/svg+xml", body = String),
        Problems),
    security(("bearer" = [])))]
pub async fn chart(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    app.allow(&caller, Perm::OpsRead, "ops.chart", "ops")
        .await?;
    let drawn = match name.as_str() {
        "throughput.svg" => crate::charts::throughput(&app.hub.throughput_series()),
        "latency.svg" => crate::charts::latency(&app.metrics.money_series()),
        "volumes.svg" => crate::charts::volumes(&app.hub.volumes()),
        _ => {
            return Err(Problem::not_found(
                "chart_not_found",
                "Charts: throughput.svg, latency.svg, volumes.svg.",
            ));
        }
    };
    let svg = drawn.map_err(|error| Problem::internal(error.to_string()))?;
    let mut response = svg.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditSearch {
    /// `user:7`, `apikey:ab12`, `anonymous`.
    pub actor: Option<String>,
    /// An action or its prefix: `auth.`, `transfer.`, `risk.review`.
    pub action: Option<String>,
    /// `granted`, `denied` or `failed`.
    pub outcome: Option<String>,
    /// Part of the resource, e.g. an account number.
    pub resource: Option<String>,
    /// Free text over actor, action, resource, code and detail.
    pub q: Option<String>,
    /// RFC 3339 or milliseconds since the epoch.
    pub since: Option<String>,
    pub until: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 500 (default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecordView {
    pub seq: u64,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub resource: String,
    pub outcome: String,
    pub code: String,
    pub detail: String,
    pub client: String,
    pub request_id: String,
    pub hash: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPageView {
    pub items: Vec<AuditRecordView>,
    pub next_cursor: Option<String>,
}

fn time_ms(field: &str, text: &str) -> ApiResult<u64> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
        .ok_or_else(|| {
            Problem::invalid(
                field,
                format!("{field} must be RFC 3339 or milliseconds since the epoch."),
            )
        })
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Granted => "granted",
        Outcome::Denied => "denied",
        Outcome::Failed => "failed",
    }
}

/// Searches the audit trail, newest first (read-only).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditSearch),
    responses(
        (status = 200, description = "A page of records", body = AuditPageView),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn search_audit(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(search): Query<AuditSearch>,
) -> ApiResult<Json<AuditPageView>> {
    app.allow(&caller, Perm::AuditRead, "audit.search", "audit")
        .await?;
    for (field, value) in [
        ("actor", &search.actor),
        ("action", &search.action),
        ("resource", &search.resource),
        ("q", &search.q),
    ] {
        if let Some(value) = value {
            text(field, value, 256)?;
        }
    }
    let outcome = match search.outcome.as_deref() {
        None | Some("") => None,
        Some("granted") => Some(Outcome::Granted),
        Some("denied") => Some(Outcome::Denied),
        Some("failed") => Some(Outcome::Failed),
        Some(_) => {
            return Err(Problem::invalid(
                "outcome",
                "outcome must be granted, denied or failed.",
            ));
        }
    };
    let since_ms = search
        .since
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| time_ms("since", s))
        .transpose()?;
    let until_ms = search
        .until
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| time_ms("until", s))
        .transpose()?;
    let before_seq = match search.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(cursor) => Some(
            cursor
                .parse::<u64>()
                .map_err(|_| Problem::invalid("cursor", "Invalid cursor."))?,
        ),
        None => None,
    };
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let page = app
        .audit
        .query(AuditQuery {
            actor: nonempty(search.actor),
            action: nonempty(search.action),
            outcome,
            resource: nonempty(search.resource),
            text: nonempty(search.q),
            since_ms,
            until_ms,
            before_seq,
            limit: search.limit.unwrap_or(50).clamp(1, 500),
        })
        .await
        .map_err(|error| Problem::internal(format!("The audit trail cannot be read: {error}")))?;
    Ok(Json(AuditPageView {
        items: page
            .items
            .into_iter()
            .map(|r| AuditRecordView {
                seq: r.seq,
                at: rfc3339(r.entry.at_ms.saturating_mul(1_000_000)),
                actor: r.entry.actor,
                role: r.entry.role,
                action: r.entry.action,
                resource: r.entry.resource,
                outcome: outcome_name(r.entry.outcome).to_owned(),
                code: r.entry.code,
                detail: r.entry.detail,
                client: r.entry.client,
                request_id: r.entry.request_id,
                hash: r.hash,
            })
            .collect(),
        next_cursor: page.next_before_seq.map(|seq| seq.to_string()),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditVerification {
    /// Every record links to the one before it and its hash is right.
    pub ok: bool,
    pub records: u64,
    pub head_seq: u64,
    pub head_hash: String,
    /// The first broken link, when there is one.
    pub first_broken: Option<String>,
}

/// Verifies the audit trail's hash chain end to end.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses(
        (status = 200, description = "The verification", body = AuditVerification),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn verify_audit(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> ApiResult<Json<AuditVerification>> {
    app.allow(&caller, Perm::AuditRead, "audit.verify", "audit")
        .await?;
    let report =
        app.audit.verify().await.map_err(|error| {
            Problem::internal(format!("The audit trail cannot be read: {error}"))
        })?;
    Ok(Json(AuditVerification {
        ok: report.first_broken.is_none(),
        records: report.records,
        head_seq: report.head_seq,
        head_hash: report.head_hash.clone(),
        first_broken: report.first_broken.as_ref().map(|b| {
            format!(
                "record {} ({} line {}): {}",
                b.seq, b.segment, b.line, b.reason
            )
        }),
    }))
}

/// Prometheus metrics of the gateway.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text", content_type = "text/plain", body = String),
        (status = "4XX", description = "Refused", body = ProblemBody, content_type = "application/problem+json")),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn metrics(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Response> {
    app.allow(&caller, Perm::MetricsRead, "ops.metrics", "metrics")
        .await?;
    let series = app.hub.throughput_series();
    let recent: u64 = series.iter().rev().skip(1).take(10).map(|(_, c)| *c).sum();
    let text = app.metrics.render(&[(
        "corebank_gateway_bank_transfers_per_second".to_owned(),
        recent / 10,
    )]);
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    Ok(response)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// Liveness: the gateway process answers.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub registry: bool,
    pub audit_trail: bool,
    pub branches_streaming: u64,
    pub p99_ms: String,
}

/// Readiness: the registry answers and the audit trail writes.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready", body = Readiness)))]
pub async fn ready(State(app): State<Arc<App>>) -> (StatusCode, Json<Readiness>) {
    let registry = app.backend.branches().await.is_ok();
    let audit_trail = app.audit.is_healthy();
    let streaming = app
        .hub
        .branch_status()
        .iter()
        .filter(|(_, up, _)| *up)
        .count();
    let ready = registry && audit_trail;
    let p99 = app.metrics.money_percentiles(Duration::from_secs(60)).p99;
    (
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(Readiness {
            ready,
            registry,
            audit_trail,
            branches_streaming: u64::try_from(streaming).unwrap_or(0),
            p99_ms: if p99.is_empty() { ms_text(0) } else { p99 },
        }),
    )
}
