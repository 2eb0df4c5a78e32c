//! The directory replicated by the registry's own Raft group: [`RaftStore`], a
//! [`RegistryStore`] over openraft.
//!
//! - The log is `corebank-node`'s redb log store (every record BLAKE3-checked) in
//!   `DATA_DIR/raft.redb`; snapshots are `DATA_DIR/snapshot.bin` (format in
//!   `raft_state_machine.rs`).
//! - [`propose`](RegistryStore::propose) refuses at once on a replica that does not
//!   lead ([`StoreError::NotLeader`] with the leader's address: nothing was
//!   proposed); on the leader it answers once the command is committed by a quorum
//!   and applied. A leader that loses the lead with the command in flight answers
//!   [`StoreError::LeadershipLost`] (outcome unknown).
//! - [`read`](RegistryStore::read) confirms leadership first (openraft's
//!   `ensure_linearizable`) and then reads the applied directory.
//! - Membership: the founding members, or `join` and [`RaftStore::add_member`] on the
//!   leader, as for a branch's replicas.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use corebank_node::{ClusterView, LogStore, LogStoreError, MembershipError, group};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::network::RaftNetworkFactory;
use openraft::{BasicNode, ServerState};

use crate::directory::{Directory, RegistryCommand, RegistryResponse};
use crate::raft_state_machine::{Shared, StateMachine, StateMachineError};
use crate::store::{RegistryStore, StoreError};

openraft::declare_raft_types!(
    /// The registry's Raft group: log entries carry [`RegistryCommand`]s; an entry that
    /// carries no command (a blank or a membership change) answers `None`. Snapshots
    /// are held in memory: the directory is small.
    pub RegistryTypeConfig:
        D = RegistryCommand,
        R = Option<RegistryResponse>,
        NodeId = u64,
        Node = BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// The registry's Raft.
pub type RegistryRaft = openraft::Raft<RegistryTypeConfig>;
pub(crate) type LogId = openraft::LogId<u64>;
pub(crate) type Entry = openraft::Entry<RegistryTypeConfig>;
pub(crate) type StorageError = openraft::StorageError<u64>;
pub(crate) type StoredMembership = openraft::StoredMembership<u64, BasicNode>;
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<u64, BasicNode>;
pub(crate) type Snapshot = openraft::Snapshot<RegistryTypeConfig>;

/// The on-disk layout version, written to `DATA_VERSION` in the data directory.
pub const REGISTRY_DATA_VERSION: &str = "corebank-registry-data 1";

/// How a registry replica's Raft runs.
#[derive(Clone, Debug)]
pub struct RaftStoreConfig {
    /// Where the log and the snapshot live.
    pub data_dir: PathBuf,
    /// This replica's node id in the registry group (from 1, never reused).
    pub node_id: u64,
    /// Where peers and clients reach this replica (recorded in the membership).
    pub advertise_addr: String,
    /// The group's voters when it is first formed: node id → address, the same map on
    /// every founding replica. Empty: this replica alone.
    pub initial_members: BTreeMap<u64, String>,
    /// Start empty and wait to be added by the leader instead of forming a group.
    pub join: bool,
    /// Log entries between snapshots; the log is compacted behind each snapshot.
    pub snapshot_every_entries: u64,
    /// Log entries kept behind a snapshot for replicas catching up.
    pub log_entries_kept_after_snapshot: u64,
}

impl RaftStoreConfig {
    /// A registry of one replica (node id 1) in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            node_id: 1,
            advertise_addr: "127.0.0.1:9090".into(),
            initial_members: BTreeMap::new(),
            join: false,
            snapshot_every_entries: 1_000,
            log_entries_kept_after_snapshot: 1_000,
        }
    }
}

/// Why the registry's Raft could not start.
#[derive(Debug, thiserror::Error)]
pub enum RaftStoreError {
    /// The data directory cannot be used (foreign data, permissions).
    #[error("cannot use the registry data directory {path}: {reason}")]
    DataDir {
        /// The directory.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The log is damaged or cannot be opened.
    #[error(transparent)]
    Log(#[from] LogStoreError),
    /// The snapshot is damaged or cannot be read.
    #[error(transparent)]
    StateMachine(#[from] StateMachineError),
    /// openraft refused to start.
    #[error("the registry's Raft could not start: {0}")]
    Raft(String),
    /// The founding members do not include this replica.
    #[error("invalid registry members: {0}")]
    Members(String),
}

fn prepare_data_dir(dir: &std::path::Path) -> Result<(), RaftStoreError> {
    group::prepare_data_dir(dir, REGISTRY_DATA_VERSION).map_err(|reason| RaftStoreError::DataDir {
        path: dir.display().to_string(),
        reason,
    })
}

/// The directory in the registry's Raft group.
pub struct RaftStore {
    raft: RegistryRaft,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RaftStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftStore")
            .field("applied_index", &self.applied_index())
            .finish_non_exhaustive()
    }
}

impl RaftStore {
    /// Opens the data directory (verifying the log and the snapshot) and starts Raft
    /// with `network` to reach the other registry replicas. A replica alone in its
    /// group waits until it leads (at most 30 s); in a group of several, the election
    /// runs in the background.
    pub async fn open<N>(config: RaftStoreConfig, network: N) -> Result<Self, RaftStoreError>
    where
        N: RaftNetworkFactory<RegistryTypeConfig>,
    {
        if config.node_id == 0 {
            return Err(RaftStoreError::Members("node ids start at 1".into()));
        }
        let members = group::founding_members(
            config.node_id,
            &config.initial_members,
            &config.advertise_addr,
            config.join,
        )
        .map_err(RaftStoreError::Members)?;
        prepare_data_dir(&config.data_dir)?;
        let log_store = LogStore::<RegistryTypeConfig>::open(&config.data_dir.join("raft.redb"))?;
        let state_machine = StateMachine::open(&config.data_dir)?;
        let shared = state_machine.shared();
        let start = group::RaftStart {
            cluster_name: "corebank-registry",
            node_id: config.node_id,
            members: &members,
            join: config.join,
            snapshot_every_entries: config.snapshot_every_entries,
            log_entries_kept_after_snapshot: config.log_entries_kept_after_snapshot,
            max_payload_entries: None,
            alone_takes_lead: "the single registry replica takes the lead",
        };
        let raft: RegistryRaft = group::start_raft(start, network, log_store, state_machine)
            .await
            .map_err(RaftStoreError::Raft)?;
        Ok(Self { raft, shared })
    }

    /// The Raft, for the `RaftTransport` service.
    pub fn raft(&self) -> &RegistryRaft {
        &self.raft
    }

    /// Does this replica lead the registry group?
    pub fn is_leader(&self) -> bool {
        group::is_leader(&self.raft)
    }

    /// The leader this replica knows of: node id and address.
    pub fn leader(&self) -> Option<(u64, String)> {
        group::leader(&self.raft)
    }

    /// The index of the last log entry applied to the directory.
    pub fn applied_index(&self) -> u64 {
        self.shared.last_applied_index()
    }

    /// How many snapshots this process has built.
    pub fn snapshots_built(&self) -> u64 {
        self.shared.snapshots_built()
    }

    /// This replica's view of the group.
    pub fn cluster_view(&self) -> ClusterView {
        group::cluster_view(&self.raft, self.applied_index())
    }

    /// Adds a registry replica (learner, catch-up, voter). Leader only.
    pub async fn add_member(&self, node_id: u64, address: String) -> Result<(), MembershipError> {
        group::add_member(&self.raft, node_id, address).await
    }

    /// Removes a registry replica. Leader only; the group keeps one voter.
    pub async fn remove_member(&self, node_id: u64) -> Result<(), MembershipError> {
        group::remove_member(&self.raft, "registry", node_id).await
    }

    /// The directory as this replica has applied it (possibly stale on a follower),
    /// without a leadership check.
    pub fn read_local<T>(&self, f: impl FnOnce(&Directory) -> T) -> Result<T, StoreError> {
        self.shared
            .read(f)
            .map_err(|message| StoreError::Internal { message })
    }

    /// The applied index and the directory's digest, read together.
    pub fn state_digest(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let (index, digest) = self
            .shared
            .read_at(Directory::digest)
            .map_err(|message| StoreError::Internal { message })?;
        let digest = digest.map_err(|error| StoreError::Internal {
            message: error.to_string(),
        })?;
        Ok((index, digest))
    }

    /// Builds a snapshot now (it also happens every `snapshot_every_entries`).
    pub async fn snapshot(&self) -> Result<(), String> {
        let before = self.snapshots_built();
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.snapshots_built() == before {
            if tokio::time::Instant::now() > deadline {
                return Err("the snapshot did not finish within a minute".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Stops Raft; durable state stays on disk.
    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }

    /// `Some(refusal)` when this replica does not lead: then nothing is proposed.
    fn not_leader(&self) -> Option<StoreError> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        if metrics.state == ServerState::Leader && metrics.current_leader == Some(metrics.id) {
            return None;
        }
        let leader = metrics.current_leader.and_then(|id| {
            metrics
                .membership_config
                .membership()
                .get_node(&id)
                .map(|node| node.addr.clone())
        });
        Some(StoreError::NotLeader { leader })
    }

    async fn propose_command(
        &self,
        command: RegistryCommand,
    ) -> Result<RegistryResponse, StoreError> {
        if let Some(refusal) = self.not_leader() {
            return Err(refusal);
        }
        let receiver =
            self.raft
                .client_write_ff(command)
                .await
                .map_err(|fatal| StoreError::Unavailable {
                    message: format!("the registry's Raft has stopped: {fatal}"),
                })?;
        match receiver.await {
            Ok(Ok(response)) => response.data.ok_or_else(|| StoreError::Internal {
                message: "the log entry of the command produced no answer".to_owned(),
            }),
            Ok(Err(ClientWriteError::ForwardToLeader(forward))) => {
                Err(StoreError::LeadershipLost {
                    leader: forward.leader_node.map(|node| node.addr),
                })
            }
            Ok(Err(other)) => Err(StoreError::Internal {
                message: other.to_string(),
            }),
            Err(_) => Err(StoreError::Internal {
                message: "the registry's Raft stopped with the command in flight".to_owned(),
            }),
        }
    }

    async fn read_directory<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Directory) -> T + Send,
        T: Send,
    {
        self.raft
            .ensure_linearizable()
            .await
            .map_err(|error| match error {
                RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward)) => {
                    StoreError::NotLeader {
                        leader: forward.leader_node.map(|node| node.addr),
                    }
                }
                RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(error)) => {
                    StoreError::Unavailable {
                        message: error.to_string(),
                    }
                }
                RaftError::Fatal(fatal) => StoreError::Unavailable {
                    message: format!("the registry's Raft has stopped: {fatal}"),
                },
            })?;
        self.read_local(f)
    }
}

impl RegistryStore for RaftStore {
    fn propose(
        &self,
        command: RegistryCommand,
    ) -> impl Future<Output = Result<RegistryResponse, StoreError>> + Send {
        self.propose_command(command)
    }

    fn read<T, F>(&self, f: F) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        F: FnOnce(&Directory) -> T + Send,
        T: Send,
    {
        self.read_directory(f)
    }
}
