//! The admin endpoints: `/health` (the process answers), `/ready` (this replica leads
//! its branch and takes writes), `/metrics` (Prometheus text format).

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use corebank_node::Node;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide metrics recorder (installed on first use).
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests run several servers in
            // one process); the handle still renders this one's families.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(State(node): State<Arc<Node>>) -> (StatusCode, &'static str) {
    if node.is_leader() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: this replica does not lead its branch\n",
        )
    }
}

async fn render(State(node): State<Arc<Node>>) -> String {
    metrics::gauge!("corebank_applied_log_index").set(node.applied_index() as f64);
    metrics::gauge!("corebank_queue_depth").set(node.queue_depth() as f64);
    metrics::gauge!("corebank_raft_is_leader").set(if node.is_leader() { 1.0 } else { 0.0 });
    if let Ok(stats) = node.read_local(|ledger| ledger.stats()) {
        metrics::gauge!("corebank_ledger_accounts").set(stats.accounts as f64);
        metrics::gauge!("corebank_ledger_transfers").set(stats.transfers as f64);
        metrics::gauge!("corebank_ledger_pending_transfers").set(stats.pending_transfers as f64);
    }
    prometheus().render()
}

/// Serves the admin endpoints until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: Arc<Node>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(render))
        .with_state(node);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
