//! What callers see of the directory at one instant: branches with the health of
//! their replicas ([`BranchView`]) and account routes ([`AccountRoute`]), and their
//! protobuf form (both directions: the service writes it, the client reads it back
//! and checks it).

use corebank_account_number::{AccountNumber, BranchCode};
use corebank_proto::convert::{u128_field, u128_of};
use corebank_proto::v1;

use crate::directory::{Branch, Health, NodeId, ReplicaAddress};

/// One replica at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaView {
    /// Its Raft node id.
    pub node_id: NodeId,
    /// The address of its gRPC port.
    pub address: String,
    /// Its health at [`BranchView::as_of_unix_ms`].
    pub health: Health,
    /// The registry time of its last heartbeat, if any.
    pub last_heartbeat_unix_ms: Option<u64>,
    /// The last applied index it reported.
    pub applied_index: u64,
    /// The term it last reported.
    pub term: u64,
    /// Whether it is the branch's leader on record.
    pub leader: bool,
}

/// A branch at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchView {
    /// The branch code.
    pub code: BranchCode,
    /// Its name.
    pub name: String,
    /// Its region.
    pub region: String,
    /// Its replicas, ordered by node id.
    pub replicas: Vec<ReplicaView>,
    /// The leader on record and its term, when one is known.
    pub leader: Option<(NodeId, u64)>,
    /// When it was registered.
    pub registered_at_unix_ms: u64,
    /// The registry time the health was computed at.
    pub as_of_unix_ms: u64,
}

impl BranchView {
    /// The branch as seen at `now_unix_ms`, with replicas healthy when their last
    /// heartbeat is at most `window_ms` old.
    pub fn new(branch: &Branch, now_unix_ms: u64, window_ms: u64) -> Self {
        let leader = branch.leader.map(|leader| leader.node_id);
        Self {
            code: branch.code,
            name: branch.name.clone(),
            region: branch.region.clone(),
            replicas: branch
                .replicas
                .iter()
                .map(|replica| ReplicaView {
                    node_id: replica.node_id,
                    address: replica.address.clone(),
                    health: replica.health(now_unix_ms, window_ms),
                    last_heartbeat_unix_ms: replica.last_heartbeat_unix_ms,
                    applied_index: replica.applied_index,
                    term: replica.term,
                    leader: leader == Some(replica.node_id),
                })
                .collect(),
            leader: branch.leader.map(|leader| (leader.node_id, leader.term)),
            registered_at_unix_ms: branch.registered_at_unix_ms,
            as_of_unix_ms: now_unix_ms,
        }
    }

    /// The leader on record, as a replica.
    pub fn leader_replica(&self) -> Option<&ReplicaView> {
        self.replicas.iter().find(|replica| replica.leader)
    }

    /// The leader's address, when one is known.
    pub fn leader_address(&self) -> Option<&str> {
        self.leader_replica()
            .map(|replica| replica.address.as_str())
    }

    /// Every replica's node id and address.
    pub fn addresses(&self) -> Vec<ReplicaAddress> {
        self.replicas
            .iter()
            .map(|replica| ReplicaAddress::new(replica.node_id, replica.address.clone()))
            .collect()
    }

    /// Marks `address` as the leader, when it is one of the replicas (e.g. after a
    /// replica named it in a `not_leader` answer); returns whether it is.
    pub fn set_leader_address(&mut self, address: &str) -> bool {
        if !self
            .replicas
            .iter()
            .any(|replica| replica.address == address)
        {
            return false;
        }
        let term = self.leader.map_or(0, |(_, term)| term);
        self.leader = None;
        for replica in &mut self.replicas {
            replica.leader = replica.address == address;
            if replica.leader {
                self.leader = Some((replica.node_id, term.max(replica.term)));
            }
        }
        true
    }
}

/// Where an account lives, at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRoute {
    /// The account number.
    pub account_number: AccountNumber,
    /// The ledger account id.
    pub account_id: u128,
    /// The branch that owns it.
    pub branch: BranchView,
}

impl AccountRoute {
    /// The address of the branch's leader on record, when one is known.
    pub fn leader_address(&self) -> Option<&str> {
        self.branch.leader_address()
    }

    /// The addresses of the branch's replicas: the leader's first (when known),
    /// then the healthy ones, then the rest, each group by node id. The order in
    /// which to try them.
    pub fn addresses_to_try(&self) -> Vec<&str> {
        let mut replicas: Vec<&ReplicaView> = self.branch.replicas.iter().collect();
        replicas.sort_by_key(|replica| (!replica.leader, replica.health != Health::Healthy));
        replicas
            .into_iter()
            .map(|replica| replica.address.as_str())
            .collect()
    }
}

/// Why a registry answer could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the registry's answer is invalid: {0}")]
pub struct InvalidView(pub String);

/// The protobuf form of a product.
pub const fn product_to_proto(product: corebank_banking::Product) -> v1::Product {
    match product {
        corebank_banking::Product::Current => v1::Product::Current,
        corebank_banking::Product::Savings => v1::Product::Savings,
    }
}

const fn health_to_proto(health: Health) -> v1::ReplicaHealth {
    match health {
        Health::Healthy => v1::ReplicaHealth::Healthy,
        Health::Stale => v1::ReplicaHealth::Stale,
        Health::NoHeartbeat => v1::ReplicaHealth::NoHeartbeat,
    }
}

impl From<&BranchView> for v1::BranchInfo {
    fn from(view: &BranchView) -> Self {
        let leader_address = view.leader_address().unwrap_or_default().to_owned();
        Self {
            branch: u32::from(view.code.get()),
            name: view.name.clone(),
            region: view.region.clone(),
            replicas: view
                .replicas
                .iter()
                .map(|replica| v1::BranchReplica {
                    node_id: replica.node_id,
                    address: replica.address.clone(),
                    health: health_to_proto(replica.health) as i32,
                    last_heartbeat_unix_ms: replica.last_heartbeat_unix_ms.unwrap_or(0),
                    applied_index: replica.applied_index,
                    term: replica.term,
                    leader: replica.leader,
                })
                .collect(),
            leader_node_id: view.leader.map(|(node_id, _)| node_id),
            leader_address,
            leader_term: view.leader.map_or(0, |(_, term)| term),
            registered_at_unix_ms: view.registered_at_unix_ms,
            as_of_unix_ms: view.as_of_unix_ms,
        }
    }
}

impl TryFrom<&v1::BranchInfo> for BranchView {
    type Error = InvalidView;

    fn try_from(info: &v1::BranchInfo) -> Result<Self, InvalidView> {
        let code = u16::try_from(info.branch)
            .ok()
            .and_then(|code| BranchCode::new(code).ok())
            .ok_or_else(|| InvalidView(format!("branch code {} is above 9999", info.branch)))?;
        let mut replicas = Vec::with_capacity(info.replicas.len());
        for replica in &info.replicas {
            let health = match v1::ReplicaHealth::try_from(replica.health) {
                Ok(v1::ReplicaHealth::Healthy) => Health::Healthy,
                Ok(v1::ReplicaHealth::Stale) => Health::Stale,
                Ok(v1::ReplicaHealth::NoHeartbeat) => Health::NoHeartbeat,
                _ => {
                    return Err(InvalidView(format!(
                        "replica {} of branch {code} has health {}",
                        replica.node_id, replica.health
                    )));
                }
            };
            replicas.push(ReplicaView {
                node_id: replica.node_id,
                address: replica.address.clone(),
                health,
                last_heartbeat_unix_ms: Some(replica.last_heartbeat_unix_ms).filter(|&at| at != 0),
                applied_index: replica.applied_index,
                term: replica.term,
                leader: replica.leader,
            });
        }
        let leader = info
            .leader_node_id
            .map(|node_id| (node_id, info.leader_term));
        let leaders: Vec<NodeId> = replicas
            .iter()
            .filter(|r| r.leader)
            .map(|r| r.node_id)
            .collect();
        if leaders
            != leader
                .map(|(node_id, _)| node_id)
                .into_iter()
                .collect::<Vec<_>>()
        {
            return Err(InvalidView(format!(
                "branch {code}: leader {:?} but replicas marked leader {leaders:?}",
                info.leader_node_id
            )));
        }
        Ok(Self {
            code,
            name: info.name.clone(),
            region: info.region.clone(),
            replicas,
            leader,
            registered_at_unix_ms: info.registered_at_unix_ms,
            as_of_unix_ms: info.as_of_unix_ms,
        })
    }
}

impl From<&AccountRoute> for v1::AccountRoute {
    fn from(route: &AccountRoute) -> Self {
        Self {
            account_number: route.account_number.to_string(),
            account_id: u128_field(route.account_id),
            branch: Some(v1::BranchInfo::from(&route.branch)),
        }
    }
}

impl TryFrom<&v1::AccountRoute> for AccountRoute {
    type Error = InvalidView;

    fn try_from(route: &v1::AccountRoute) -> Result<Self, InvalidView> {
        let account_number = AccountNumber::parse(&route.account_number)
            .map_err(|error| InvalidView(format!("account number: {error}")))?;
        let account_id = u128_of(route.account_id.as_ref());
        if account_id != account_number.account_id() {
            return Err(InvalidView(format!(
                "account id {account_id} is not the id of {account_number}"
            )));
        }
        let branch = route
            .branch
            .as_ref()
            .ok_or_else(|| InvalidView("the route names no branch".to_owned()))
            .and_then(BranchView::try_from)?;
        if branch.code != account_number.branch() {
            return Err(InvalidView(format!(
                "account {account_number} is routed to branch {}",
                branch.code
            )));
        }
        Ok(Self {
            account_number,
            account_id,
            branch,
        })
    }
}
