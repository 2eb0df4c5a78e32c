//! A branch replica and the registry: the replica heartbeats (is it the leader, its
//! term, how far it has applied), and the branch finds the other branches through the
//! registry's directory when no static route names them.

use std::sync::Arc;
use std::time::Duration;

use corebank_account_number::BranchCode;
use corebank_client::ClientConfig;
use corebank_node::Node;
use corebank_registry::{
    HeartbeatTarget, RegistryClient, RegistryClientConfig, ReplicaAddress, ReplicaReport,
    heartbeat_loop,
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

/// Makes the registry's entry for this branch match the group's membership: registers
/// the branch if the registry does not know it, then adds the replicas it lacks and
/// removes those that left. Called by the leader when it takes office. Needs the
/// registry's `admin` scope (the node certificate has it).
pub async fn register_branch(
    registry: &RegistryClient,
    branch: BranchCode,
    node: &Node,
) -> Result<(), corebank_client::ClientError> {
    let view = node.cluster_view();
    let members: Vec<ReplicaAddress> = view
        .members
        .iter()
        .filter(|member| member.voter)
        .map(|member| ReplicaAddress::new(member.node_id, member.address.clone()))
        .collect();
    let known = match registry.get_branch(branch).await {
        Ok(known) => Some(known),
        Err(error)
            if error
                .api_error()
                .is_some_and(|api| api.code.as_str() == "account_not_found") =>
        {
            None
        }
        Err(error) => return Err(error),
    };
    let Some(known) = known else {
        registry
            .register_branch(branch, &format!("Branch {branch}"), "default", &members)
            .await?;
        tracing::info!(%branch, replicas = members.len(), "registered the branch with the registry");
        return Ok(());
    };
    for member in &members {
        if !known.replicas.iter().any(|r| r.node_id == member.node_id) {
            registry.add_replica(branch, member).await?;
            tracing::info!(%branch, node_id = member.node_id, "replica added to the registry");
        }
    }
    for replica in &known.replicas {
        if !members.iter().any(|m| m.node_id == replica.node_id) {
            registry.remove_replica(branch, replica.node_id).await?;
            tracing::info!(%branch, node_id = replica.node_id, "replica removed from the registry");
        }
    }
    registry.invalidate_branch(branch);
    Ok(())
}
