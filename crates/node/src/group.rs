//! A Raft group's view and membership changes, for any type configuration whose nodes
//! are `u64` ids with [`BasicNode`] addresses: a branch's replicas ([`crate::Node`]) and
//! the registry's use the same code.

use std::collections::BTreeSet;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, Raft, RaftTypeConfig, ServerState};

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
