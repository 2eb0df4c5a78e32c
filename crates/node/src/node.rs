//! A branch replica: storage, Raft, the write pipeline and the expiry sweeper, wired.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use corebank_ledger::Ledger;
use openraft::network::RaftNetworkFactory;

use tokio::task::JoinHandle;

use crate::command::{Request, RequestOutcome};
use crate::group;
use crate::log_store::{LogStore, LogStoreError};
use crate::network::SingleMemberNetwork;
use crate::pipeline::{BatchScreening, Pipeline, SubmitError};
use crate::risk_state::RiskState;
use crate::screening::{Screening, ScreeningCounters};
use crate::state_machine::{Shared, StateMachine, StateMachineError};
use crate::types::{Raft, TypeConfig};

/// The on-disk layout version, written to `DATA_VERSION` in the data directory.
const DATA_VERSION: &str = "corebank-branch-data 1";

/// How a replica runs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub node_id: u64,
    /// Where peers and clients reach this replica (recorded in the membership).
    pub advertise_addr: String,
    /// The group's voters when it is first formed: node id → address. Empty: this
    /// replica alone. Every founding replica is given the same map (it is written as
    /// the first log entry on each; Raft's vote then picks one leader).
    pub initial_members: BTreeMap<u64, String>,
    /// Start empty and wait to be added by the leader (`add_replica`) instead of
    /// forming a group.
    pub join: bool,
    /// Log entries kept behind a snapshot, so that a replica that was briefly away
    /// catches up from the log rather than receiving a whole snapshot.
    pub log_entries_kept_after_snapshot: u64,
    /// Requests the write queue holds before callers are told to retry.
    pub queue_requests_max: usize,
    /// Log entries between snapshots; the log is compacted behind each snapshot.
    pub snapshot_every_entries: u64,
    /// How often the sweeper looks for pending transfers past their deadline.
    pub sweep_interval: Duration,
    /// Accounts and transfers the ledger makes room for at start (memory is reserved,
    /// not touched): growing a large index later rehashes it at once, a latency spike.
    pub ledger_capacity: (usize, usize),
    /// Screen new transfers before they are proposed (none: every transfer approved).
    pub screening: Option<Screening>,
}

impl NodeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            node_id: 1,
            advertise_addr: "127.0.0.1:8080".into(),
            initial_members: BTreeMap::new(),
            join: false,
            log_entries_kept_after_snapshot: 0,
            queue_requests_max: 8_192,
            snapshot_every_entries: 1_000,
            sweep_interval: Duration::from_millis(100),
            ledger_capacity: (100_000, 1_000_000),
            screening: None,
        }
    }
}

/// Why a replica could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot use the data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error(transparent)]
    Log(#[from] LogStoreError),
    #[error(transparent)]
    StateMachine(#[from] StateMachineError),
    #[error("Raft could not start: {0}")]
    Raft(String),
    #[error("invalid replica configuration: {0}")]
    Members(String),
}

/// Why a membership change was not made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("this replica is not the branch's leader{}", leader.as_ref().map(|(id, address)| format!(" (replica {id} at {address} is)")).unwrap_or_default())]
    NotLeader { leader: Option<(u64, String)> },
    #[error("{0}")]
    Invalid(String),
    #[error("the membership change did not complete: {0}")]
    Failed(String),
}

impl MembershipError {
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NotLeader { .. } => "not_leader",
            Self::Invalid(_) => "invalid_membership",
            Self::Failed(_) => "unavailable",
        }
    }
}

/// A member of the group as this replica sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub node_id: u64,
    pub address: String,
    pub voter: bool,
    /// The leader's view of how far this member has stored the log.
    pub matched_index: Option<u64>,
}

/// This replica's view of its Raft group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterView {
    pub node_id: u64,
    pub role: &'static str,
    pub term: u64,
    pub leader: Option<(u64, String)>,
    pub last_log_index: u64,
    pub last_applied_index: u64,
    pub members: Vec<Member>,
}

/// Why a read was not served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("this replica is not the branch's leader and cannot serve a linearizable read")]
    NotLeader {
        leader: Option<u64>,
        /// Where the leader takes calls, when known.
        address: Option<String>,
    },
    #[error("the ledger is unavailable: {0}")]
    Unavailable(String),
}

impl ReadError {
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NotLeader { .. } => "not_leader",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

/// A running branch replica.
pub struct Node {
    raft: Raft,
    shared: Arc<Shared>,
    counters: Arc<ScreeningCounters>,
    screening: Option<Screening>,
    pipeline: Pipeline,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("applied_index", &self.applied_index())
            .finish_non_exhaustive()
    }
}

fn prepare_data_dir(config: &NodeConfig) -> Result<(), NodeError> {
    group::prepare_data_dir(&config.data_dir, DATA_VERSION).map_err(|reason| NodeError::DataDir {
        path: config.data_dir.display().to_string(),
        reason,
    })
}

impl Node {
    /// Opens the data directory (verifying the log and the snapshot), starts Raft as a
    /// single-member group, and waits until this replica leads it.
    pub async fn start(config: NodeConfig) -> Result<Self, NodeError> {
        if config.join
            || config
                .initial_members
                .keys()
                .any(|id| *id != config.node_id)
        {
            return Err(NodeError::Members(
                "a group of several replicas needs a network between them (start_with_network)"
                    .into(),
            ));
        }
        Self::start_with_network(config, SingleMemberNetwork).await
    }

    /// Opens the data directory and starts Raft with `network` to reach the other
    /// replicas. A replica alone in its group waits until it leads; in a group of
    /// several, the election runs in the background (see [`Node::leader`]).
    pub async fn start_with_network<N>(config: NodeConfig, network: N) -> Result<Self, NodeError>
    where
        N: RaftNetworkFactory<TypeConfig>,
    {
        let members = group::founding_members(
            config.node_id,
            &config.initial_members,
            &config.advertise_addr,
            config.join,
        )
        .map_err(NodeError::Members)?;
        prepare_data_dir(&config)?;
        let log_store = LogStore::<TypeConfig>::open(&config.data_dir.join("raft.redb"))?;
        let state_machine =
            StateMachine::open(&config.data_dir.join("snapshots"), config.ledger_capacity)?;
        let shared = state_machine.shared();
        // Set before Raft starts, so that entries replayed from the log warm the
        // screen's features too.
        if let Some(screening) = &config.screening {
            shared
                .observe_commits(Arc::clone(&screening.screener))
                .map_err(|e| NodeError::DataDir {
                    path: config.data_dir.display().to_string(),
                    reason: format!("cannot start the screen's feature thread: {e}"),
                })?;
        }
        let counters = Arc::new(ScreeningCounters::default());

        let start = group::RaftStart {
            cluster_name: "corebank-branch",
            node_id: config.node_id,
            members: &members,
            join: config.join,
            snapshot_every_entries: config.snapshot_every_entries,
            log_entries_kept_after_snapshot: config.log_entries_kept_after_snapshot,
            // An entry holds up to a whole batch (about 1 MiB): a few per message.
            max_payload_entries: Some(16),
            alone_takes_lead: "the single replica takes the lead",
        };
        let raft: Raft = group::start_raft(start, network, log_store, state_machine)
            .await
            .map_err(NodeError::Raft)?;
        // Entries replayed from the log at start are applied before leadership is
        // usable; the clock starts after everything applied so far (and the state
        // machine moves any later proposal past the ledger's clock).
        let last_timestamp = shared
            .ledger
            .read()
            .map_or(0, |ledger| ledger.last_timestamp());
        let (pipeline, batcher) = Pipeline::spawn(
            raft.clone(),
            last_timestamp,
            config.queue_requests_max,
            config.screening.clone().map(|screening| BatchScreening {
                screening,
                shared: Arc::clone(&shared),
                counters: Arc::clone(&counters),
            }),
        );
        let sweeper = tokio::spawn(run_sweeper(
            Arc::clone(&shared),
            pipeline.clone(),
            config.sweep_interval,
        ));
        Ok(Self {
            raft,
            shared,
            counters,
            screening: config.screening.clone(),
            pipeline,
            tasks: vec![batcher, sweeper],
        })
    }

    /// Writes a request through the log; answers after it is durably committed and applied.
    pub async fn submit(&self, request: Request) -> Result<RequestOutcome, SubmitError> {
        self.pipeline.submit(request).await
    }

    /// Reads the ledger after confirming leadership (a linearizable read).
    pub async fn read<T>(&self, read: impl FnOnce(&Ledger) -> T) -> Result<T, ReadError> {
        self.raft
            .ensure_linearizable()
            .await
            .map_err(|error| match error {
                openraft::error::RaftError::APIError(
                    openraft::error::CheckIsLeaderError::ForwardToLeader(forward),
                ) => ReadError::NotLeader {
                    leader: forward.leader_id,
                    address: forward.leader_node.map(|node| node.addr),
                },
                other => ReadError::Unavailable(other.to_string()),
            })?;
        self.read_local(read)
    }

    /// Reads the ledger and the risk state after confirming leadership.
    pub async fn read_risk<T>(
        &self,
        read: impl FnOnce(&Ledger, &RiskState) -> T,
    ) -> Result<T, ReadError> {
        self.read(|_| ()).await?;
        self.read_risk_local(read)
    }

    /// Reads this replica's ledger and risk state as they stand.
    pub fn read_risk_local<T>(
        &self,
        read: impl FnOnce(&Ledger, &RiskState) -> T,
    ) -> Result<T, ReadError> {
        let ledger = self
            .shared
            .ledger
            .read()
            .map_err(|e| ReadError::Unavailable(e.to_string()))?;
        let risk = self
            .shared
            .risk
            .read()
            .map_err(|e| ReadError::Unavailable(e.to_string()))?;
        Ok(read(&ledger, &risk))
    }

    /// The screening set-up, when the branch screens.
    pub fn screening(&self) -> Option<&Screening> {
        self.screening.as_ref()
    }

    /// What this replica's screening has done since it started.
    pub fn screening_counters(&self) -> &ScreeningCounters {
        &self.counters
    }

    /// Committed batches the screen's feature thread missed (it fell behind).
    pub fn screening_feature_batches_dropped(&self) -> u64 {
        self.shared.observer_dropped()
    }

    /// Reads this replica's ledger as it stands (possibly stale on a follower).
    pub fn read_local<T>(&self, read: impl FnOnce(&Ledger) -> T) -> Result<T, ReadError> {
        let ledger = self
            .shared
            .ledger
            .read()
            .map_err(|e| ReadError::Unavailable(e.to_string()))?;
        Ok(read(&ledger))
    }

    /// Wakes on every applied log entry with the ledger's clock after it, for
    /// subscribers that tail the ledger.
    pub fn subscribe_commits(&self) -> tokio::sync::broadcast::Receiver<u64> {
        self.shared.committed.subscribe()
    }

    /// Does this replica lead its branch (and so take writes)?
    pub fn is_leader(&self) -> bool {
        group::is_leader(&self.raft)
    }

    /// Index of the last applied log entry.
    pub fn applied_index(&self) -> u64 {
        self.shared.last_applied_index()
    }

    pub fn snapshots_built(&self) -> u64 {
        self.shared.snapshots_built()
    }

    pub fn queue_depth(&self) -> usize {
        self.pipeline.queue_depth()
    }

    /// Builds a snapshot now (it also happens every `snapshot_every_entries` entries).
    pub async fn snapshot(&self) -> Result<(), String> {
        let before = self.shared.snapshots_built();
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        while self.shared.snapshots_built() == before {
            if tokio::time::Instant::now() > deadline {
                return Err("the snapshot did not finish within 10 minutes".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// The leader this replica knows of: node id and address.
    pub fn leader(&self) -> Option<(u64, String)> {
        group::leader(&self.raft)
    }

    /// The address of a member of the group, from the membership.
    pub fn member_address(&self, node_id: u64) -> Option<String> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics
            .membership_config
            .membership()
            .get_node(&node_id)
            .map(|node| node.addr.clone())
    }

    /// This replica's view of its group.
    pub fn cluster_view(&self) -> ClusterView {
        group::cluster_view(&self.raft, self.applied_index())
    }

    /// Adds a replica: it joins as a learner, catches up (log or snapshot), then becomes
    /// a voter. Returns once the new membership is committed. Leader only.
    pub async fn add_replica(&self, node_id: u64, address: String) -> Result<(), MembershipError> {
        group::add_member(&self.raft, node_id, address).await
    }

    /// Removes a replica from the group (voter or learner). Leader only; the group
    /// keeps at least one voter.
    pub async fn remove_replica(&self, node_id: u64) -> Result<(), MembershipError> {
        group::remove_member(&self.raft, "branch", node_id).await
    }

    /// The BLAKE3 digest of this replica's ledger and the log index it reflects.
    pub fn state_digest(&self) -> Result<(u64, [u8; 32]), ReadError> {
        // Read under the ledger lock: apply records the index before releasing it.
        // The risk state joins the digest once it holds anything, so that digests of
        // branches that never screened stay those of their ledgers.
        self.read_risk_local(|ledger, risk| {
            let digest = if *risk == RiskState::default() {
                ledger.digest()
            } else {
                let mut hasher = blake3::Hasher::new();
                hasher.update(&ledger.digest());
                hasher.update(&risk.digest());
                *hasher.finalize().as_bytes()
            };
            (self.applied_index(), digest)
        })
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Stops Raft and the background tasks; durable state stays on disk.
    pub async fn shutdown(self) {
        for task in &self.tasks {
            task.abort();
        }
        let _ = self.raft.shutdown().await;
    }
}

/// Proposes an expiry through the log whenever a pending transfer's deadline passes, so
/// every replica expires the same transfers at the same point of the log.
async fn run_sweeper(shared: Arc<Shared>, pipeline: Pipeline, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let next = shared
            .ledger
            .read()
            .ok()
            .and_then(|ledger| ledger.next_expiry());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        if next.is_some_and(|deadline| deadline <= now) {
            // Busy or not leader: the next tick tries again.
            let _ = pipeline.expire().await;
        }
    }
}
