//! A branch replica and the registry: the replica heartbeats (is it the leader, its
//! term, how far it has applied), and the branch finds the other branches through the
//! registry's directory when no static route names them.

use std::sync::Arc;
use std::time::Duration;

use corebank_account_number::BranchCode;
use corebank_client::ClientConfig;
use corebank_node::Node;
use corebank_registry::{
    HeartbeatTarget, RegistryClient, RegistryClientConfig, ReplicaReport, heartbeat_loop,
};
use tokio::sync::watch;

use crate::replication::PeerSettings;

/// How often a replica reports to the registry.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// How long a branch's addresses from the registry are used before asking again.
const ROUTE_CACHE_TTL: Duration = Duration::from_secs(30);

/// A client of the registry at `endpoints` (`host:port` each), with this replica's
/// peer credentials (node certificate or peer API key).
pub fn registry_client(
    endpoints: &[String],
    peers: &PeerSettings,
) -> Result<RegistryClient, corebank_client::ClientError> {
    let scheme = if peers.tls.is_some() { "https" } else { "http" };
    let endpoints: Vec<String> = endpoints
        .iter()
        .map(|address| {
            if address.contains("://") {
                address.clone()
            } else {
                format!("{scheme}://{address}")
            }
        })
        .collect();
    let mut connection = ClientConfig::new(String::new())
        .with_request_timeout(Duration::from_secs(3))
        .with_total_timeout(Duration::from_secs(10))
        .with_connect_timeout(Duration::from_secs(2));
    if let Some(tls) = &peers.tls {
        connection = connection.with_tls(tls.clone());
    }
    if let Some(key) = &peers.api_key {
        connection = connection.with_api_key(key.expose().clone());
    }
    RegistryClient::new(
        RegistryClientConfig::new(endpoints)
            .with_connection(connection)
            .with_cache_ttl(ROUTE_CACHE_TTL),
    )
}

/// The addresses of `branch`'s replicas, from the registry.
pub async fn branch_addresses(
    registry: &RegistryClient,
    branch: BranchCode,
) -> Option<Vec<String>> {
    match registry.get_branch(branch).await {
        Ok(view) if !view.replicas.is_empty() => {
            // The leader on record first: the client starts there.
            let mut replicas = view.replicas;
            if let Some((leader, _)) = view.leader {
                replicas.sort_by_key(|replica| replica.node_id != leader);
            }
            Some(
                replicas
                    .into_iter()
                    .map(|replica| replica.address)
                    .collect(),
            )
        }
        Ok(_) => None,
        Err(error) => {
            tracing::debug!(%branch, %error, "the registry did not resolve a branch");
            None
        }
    }
}

/// Heartbeats until `stop`: one report per interval, read from this replica's Raft
/// metrics in one go so that leadership, term and applied index agree.
pub async fn run_heartbeats(
    registry: RegistryClient,
    target: HeartbeatTarget,
    node: Arc<Node>,
    mut stop: watch::Receiver<bool>,
) {
    let report = move || {
        let metrics = node.raft().metrics();
        let metrics = metrics.borrow();
        ReplicaReport {
            is_leader: metrics.current_leader == Some(metrics.id),
            term: metrics.current_term,
            applied_index: metrics.last_applied.map_or(0, |log_id| log_id.index),
        }
    };
    let shutdown = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                return;
            }
        }
    };
    let stats = heartbeat_loop(registry, target, HEARTBEAT_INTERVAL, report, shutdown).await;
    tracing::info!(
        sent = stats.sent,
        failed = stats.failed,
        "registry heartbeats stopped"
    );
}
