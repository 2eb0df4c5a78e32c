//! A Raft group's view and membership changes, for any type configuration whose nodes
//! are `u64` ids with [`BasicNode`] addresses: a branch's replicas ([`crate::Node`]) and
//! the registry's use the same code.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{
    BasicNode, ChangeMembers, Config, Raft, RaftTypeConfig, ServerState, SnapshotPolicy,
};

use crate::node::{ClusterView, Member, MembershipError};

/// What [`remove_member`] calls the group in its messages
/// (`"branch"`, `"registry"`).
pub type GroupNoun = &'static str;

/// The leader `raft` knows of: node id and address.
pub fn leader<C>(raft: &Raft<C>) -> Option<(u64, String)>
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
{
    let metrics = raft.metrics();
    let metrics = metrics.borrow();
    let leader = metrics.current_leader?;
    let address = metrics
        .membership_config
        .membership()
        .get_node(&leader)
        .map(|node| node.addr.clone())
        .unwrap_or_default();
    Some((leader, address))
}

/// Does `raft` lead its group?
pub fn is_leader<C>(raft: &Raft<C>) -> bool
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
{
    let metrics = raft.metrics();
    let metrics = metrics.borrow();
    metrics.current_leader == Some(metrics.id)
}

/// The group as `raft` sees it; `last_applied_index` is the state machine's.
pub fn cluster_view<C>(raft: &Raft<C>, last_applied_index: u64) -> ClusterView
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
{
    let metrics = raft.metrics();
    let metrics = metrics.borrow();
    let membership = metrics.membership_config.membership();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let members = membership
        .nodes()
        .map(|(id, node)| Member {
            node_id: *id,
            address: node.addr.clone(),
            voter: voters.contains(id),
            matched_index: metrics
                .replication
                .as_ref()
                .and_then(|replication| replication.get(id))
                .and_then(|matched| matched.map(|log_id| log_id.index)),
        })
        .collect();
    let leader = metrics.current_leader.map(|id| {
        let address = membership
            .get_node(&id)
            .map(|node| node.addr.clone())
            .unwrap_or_default();
        (id, address)
    });
    ClusterView {
        node_id: metrics.id,
        role: match metrics.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        },
        term: metrics.current_term,
        leader,
        last_log_index: metrics.last_log_index.unwrap_or(0),
        last_applied_index,
        members,
    }
}

fn not_leader<C>(raft: &Raft<C>) -> MembershipError
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
{
    MembershipError::NotLeader {
        leader: leader(raft),
    }
}

fn membership_error<C>(
    raft: &Raft<C>,
    error: RaftError<u64, ClientWriteError<u64, BasicNode>>,
) -> MembershipError
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
{
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => not_leader(raft),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(error)) => {
            MembershipError::Invalid(error.to_string())
        }
        other => MembershipError::Failed(other.to_string()),
    }
}

/// Adds a member: it joins as a learner, catches up (log or snapshot), then becomes a
/// voter. Returns once the new membership is committed. Leader only; adding a voter
/// again at the same address changes nothing.
pub async fn add_member<C>(
    raft: &Raft<C>,
    node_id: u64,
    address: String,
) -> Result<(), MembershipError>
where
    C: RaftTypeConfig<
            NodeId = u64,
            Node = BasicNode,
            Responder = openraft::raft::responder::OneshotResponder<C>,
        >,
{
    if address.trim().is_empty() {
        return Err(MembershipError::Invalid(
            "the new replica's address is empty".into(),
        ));
    }
    if !is_leader(raft) {
        return Err(not_leader(raft));
    }
    let view = cluster_view(raft, 0);
    if let Some(existing) = view.members.iter().find(|m| m.node_id == node_id) {
        if existing.address != address {
            return Err(MembershipError::Invalid(format!(
                "replica {node_id} is already a member at {}; node ids are never reused",
                existing.address
            )));
        }
        if existing.voter {
            return Ok(());
        }
    }
    raft.add_learner(node_id, BasicNode::new(address), true)
        .await
        .map_err(|error| membership_error(raft, error))?;
    raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), false)
        .await
        .map_err(|error| membership_error(raft, error))?;
    Ok(())
}

/// Removes a member (voter or learner). Leader only; the group keeps at least one
/// voter.
pub async fn remove_member<C>(
    raft: &Raft<C>,
    noun: GroupNoun,
    node_id: u64,
) -> Result<(), MembershipError>
where
    C: RaftTypeConfig<
            NodeId = u64,
            Node = BasicNode,
            Responder = openraft::raft::responder::OneshotResponder<C>,
        >,
{
    if !is_leader(raft) {
        return Err(not_leader(raft));
    }
    let view = cluster_view(raft, 0);
    let Some(member) = view.members.iter().find(|m| m.node_id == node_id) else {
        return Err(MembershipError::Invalid(format!(
            "replica {node_id} is not a member of this {noun}"
        )));
    };
    let ids = BTreeSet::from([node_id]);
    if member.voter {
        if view.members.iter().filter(|m| m.voter).count() <= 1 {
            return Err(MembershipError::Invalid(format!(
                "the last voter of a {noun} cannot be removed"
            )));
        }
        raft.change_membership(ChangeMembers::RemoveVoters(ids.clone()), false)
            .await
            .map_err(|error| membership_error(raft, error))?;
    }
    raft.change_membership(ChangeMembers::RemoveNodes(ids), false)
        .await
        .map_err(|error| membership_error(raft, error))?;
    Ok(())
}

/// The founding members of a group as a replica starts: `initial` (the replica alone
/// at `advertise` when empty), which must include `node_id` unless it joins later.
pub fn founding_members(
    node_id: u64,
    initial: &BTreeMap<u64, String>,
    advertise: &str,
    join: bool,
) -> Result<BTreeMap<u64, String>, String> {
    let mut members = initial.clone();
    if members.is_empty() {
        members.insert(node_id, advertise.to_owned());
    }
    if !join && !members.contains_key(&node_id) {
        return Err(format!(
            "replica {node_id} is not one of the initial members {:?}; use join to add it later",
            members.keys().collect::<Vec<_>>()
        ));
    }
    Ok(members)
}

/// How a group's Raft starts ([`start_raft`]).
#[derive(Clone, Copy, Debug)]
pub struct RaftStart<'a> {
    /// openraft's cluster name (`corebank-branch`, `corebank-registry`).
    pub cluster_name: &'static str,
    pub node_id: u64,
    /// The founding members ([`founding_members`]).
    pub members: &'a BTreeMap<u64, String>,
    /// The replica joins a running group later instead of founding one.
    pub join: bool,
    pub snapshot_every_entries: u64,
    pub log_entries_kept_after_snapshot: u64,
    /// Log entries per replication message, when not openraft's default.
    pub max_payload_entries: Option<u64>,
    /// What the wait of a replica alone in its group for the lead is called.
    pub alone_takes_lead: &'static str,
}

impl RaftStart<'_> {
    /// Founding a group of one: it leads at once.
    pub fn alone(&self) -> bool {
        !self.join && self.members.len() == 1
    }
}

/// Starts Raft over `log_store` and `state_machine` with `network` to the peers,
/// forms the group with the founding members the first time (unless joining), and,
/// for a replica alone in its group, waits (at most 30 s) until it leads.
pub async fn start_raft<C, N, LS, SM>(
    start: RaftStart<'_>,
    network: N,
    log_store: LS,
    state_machine: SM,
) -> Result<Raft<C>, String>
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
    N: openraft::network::RaftNetworkFactory<C>,
    LS: openraft::storage::RaftLogStorage<C>,
    SM: openraft::storage::RaftStateMachine<C>,
{
    let alone = start.alone();
    let defaults = Config::default();
    let raft_config = Config {
        cluster_name: start.cluster_name.into(),
        heartbeat_interval: 100,
        election_timeout_min: if alone { 300 } else { 600 },
        election_timeout_max: if alone { 600 } else { 1_200 },
        max_payload_entries: start
            .max_payload_entries
            .unwrap_or(defaults.max_payload_entries),
        snapshot_policy: SnapshotPolicy::LogsSinceLast(start.snapshot_every_entries.max(1)),
        max_in_snapshot_log_to_keep: start.log_entries_kept_after_snapshot,
        ..defaults
    }
    .validate()
    .map_err(|e| e.to_string())?;
    let raft = Raft::new(
        start.node_id,
        Arc::new(raft_config),
        network,
        log_store,
        state_machine,
    )
    .await
    .map_err(|e| e.to_string())?;
    let initialized = raft.is_initialized().await.map_err(|e| e.to_string())?;
    if !initialized && !start.join {
        let members: BTreeMap<u64, BasicNode> = start
            .members
            .iter()
            .map(|(id, address)| (*id, BasicNode::new(address.clone())))
            .collect();
        raft.initialize(members).await.map_err(|e| e.to_string())?;
    }
    if alone {
        raft.wait(Some(Duration::from_secs(30)))
            .state(ServerState::Leader, start.alone_takes_lead)
            .await
            .map_err(|e| format!("this replica did not become leader: {e}"))?;
    }
    Ok(raft)
}

/// Prepares a replica's data directory for data of format `version`: creates it, and
/// writes the `DATA_VERSION` file into it when it is new (refusing a directory that
/// holds other files); an existing directory must hold the same version. The reason
/// when it cannot be used.
pub fn prepare_data_dir(dir: &std::path::Path, version: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let version_file = dir.join("DATA_VERSION");
    match std::fs::read_to_string(&version_file) {
        Ok(found) if found.trim() == version => Ok(()),
        Ok(found) => Err(format!(
            "it holds data of another format ({:?}, expected {version:?})",
            found.trim()
        )),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let occupied = std::fs::read_dir(dir)
                .map_err(|e| e.to_string())?
                .next()
                .is_some();
            if occupied {
                return Err(
                    "it is not empty and holds no DATA_VERSION file; refusing to mix data".into(),
                );
            }
            std::fs::write(&version_file, format!("{version}\n")).map_err(|e| e.to_string())?;
            std::fs::File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(|e| e.to_string())
        }
        Err(error) => Err(error.to_string()),
    }
}

/// The metadata of the snapshot a state machine builds at `last_applied`, its
/// `built`-th since it started: the id is `TERM-INDEX-BUILT` (`empty-BUILT` before any
/// entry).
pub fn snapshot_meta(
    last_applied: Option<openraft::LogId<u64>>,
    membership: openraft::StoredMembership<u64, BasicNode>,
    built: u64,
) -> openraft::SnapshotMeta<u64, BasicNode> {
    let snapshot_id = match last_applied {
        Some(id) => format!("{}-{}-{built}", id.leader_id.term, id.index),
        None => format!("empty-{built}"),
    };
    openraft::SnapshotMeta {
        last_log_id: last_applied,
        last_membership: membership,
        snapshot_id,
    }
}
