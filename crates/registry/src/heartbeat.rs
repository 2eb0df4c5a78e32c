//! The heartbeat task of a branch replica: every interval, tell the registry that
//! this replica is alive, whether it leads, its term and its applied index.

use std::future::Future;
use std::time::Duration;

use corebank_account_number::BranchCode;
use tokio::time::MissedTickBehavior;

use crate::client::RegistryClient;
use crate::directory::NodeId;

/// The shortest interval between heartbeats.
pub const HEARTBEAT_INTERVAL_MIN: Duration = Duration::from_millis(10);

/// The replica that sends heartbeats, as registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatTarget {
    /// Its branch.
    pub branch: BranchCode,
    /// Its Raft node id.
    pub node_id: NodeId,
    /// Its address, exactly as registered.
    pub address: String,
}

/// What a replica reports in a heartbeat, read from its Raft state (e.g. one
/// reading of openraft's metrics, so that the three fields agree).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaReport {
    /// Whether it believes it leads.
    pub is_leader: bool,
    /// Its current Raft term (0 if not known).
    pub term: u64,
    /// The last log index it applied.
    pub applied_index: u64,
}

/// What a heartbeat loop did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeartbeatStats {
    /// Heartbeats the registry accepted.
    pub sent: u64,
    /// Heartbeats that failed (each is logged; the loop goes on).
    pub failed: u64,
}

/// Sends a heartbeat at once and then every `interval` (at least
/// [`HEARTBEAT_INTERVAL_MIN`]) until `shutdown` completes, reading the replica's
/// state from `report` each time. Failures are logged (a warning when the
/// heartbeats start failing, then at debug level until one succeeds again) and do
/// not stop the loop. Returns what it did.
///
/// ```no_run
/// # async fn example(client: corebank_registry::RegistryClient) {
/// use std::time::Duration;
/// use corebank_registry::{HeartbeatTarget, ReplicaReport, heartbeat_loop};
///
/// let target = HeartbeatTarget {
///     branch: corebank_account_number::BranchCode::new(2).unwrap(),
///     node_id: 1,
///     address: "10.0.0.2:8080".into(),
/// };
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let task = tokio::spawn(heartbeat_loop(
///     client,
///     target,
///     Duration::from_secs(1),
///     || ReplicaReport { is_leader: true, term: 1, applied_index: 42 },
///     async move { let _ = stopped.await; },
/// ));
/// # drop(stop); let _ = task.await;
/// # }
/// ```
pub async fn heartbeat_loop<R, F>(
    client: RegistryClient,
    target: HeartbeatTarget,
    interval: Duration,
    report: R,
    shutdown: F,
) -> HeartbeatStats
where
    R: Fn() -> ReplicaReport + Send,
    F: Future<Output = ()> + Send,
{
    let mut ticks = tokio::time::interval(interval.max(HEARTBEAT_INTERVAL_MIN));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stats = HeartbeatStats::default();
    let mut failing = false;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return stats,
            _ = ticks.tick() => {}
        }
        let beat = client.heartbeat(&target, report());
        let outcome = tokio::select! {
            () = &mut shutdown => return stats,
            outcome = beat => outcome,
        };
        match outcome {
            Ok(_) => {
                if failing {
                    tracing::info!(branch = %target.branch, node_id = target.node_id,
                        "registry heartbeats succeed again");
                }
                failing = false;
                stats.sent += 1;
            }
            Err(error) => {
                if failing {
                    tracing::debug!(branch = %target.branch, node_id = target.node_id,
                        code = error.code(), %error, "registry heartbeat failed");
                } else {
                    tracing::warn!(branch = %target.branch, node_id = target.node_id,
                        code = error.code(), %error, "registry heartbeat failed");
                }
                failing = true;
                stats.failed += 1;
            }
        }
    }
}
