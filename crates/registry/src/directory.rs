//! The directory: a pure, deterministic state machine of branches and their replicas.
//!
//! No clock, no I/O, no randomness: time comes inside the commands (the registry
//! leader stamps them), and every output is built from ordered maps and vectors.
//! The same commands from the same state give the same state, byte for byte
//! ([`Directory::to_snapshot_bytes`]).

use std::collections::BTreeMap;
use std::ops::Bound;

use corebank_account_number::{AccountNumber, BranchCode, split_account_id};
use serde::{Deserialize, Serialize};

use crate::error::{AddressProblem, CommandError, LookupError, TextProblem};

/// A Raft node id of a branch replica (openraft's `u64`).
pub type NodeId = u64;

/// The longest branch name or region, in bytes.
pub const NAME_BYTES_MAX: usize = 64;
/// The longest replica address, in bytes.
pub const ADDRESS_BYTES_MAX: usize = 256;
/// The most replicas a branch may have (Raft groups of 3 or 5, plus room to replace
/// members one at a time).
pub const REPLICAS_MAX: usize = 7;
/// The most branches: one per branch code, `0000` to `9999`.
pub const BRANCHES_MAX: usize = 10_000;

/// One replica of a branch as an operator names it: its Raft node id and the address
/// of its gRPC port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReplicaAddress {
    /// The replica's Raft node id, unique within its branch.
    pub node_id: NodeId,
    /// `host:port`, optionally after `http://` or `https://`.
    pub address: String,
}

impl ReplicaAddress {
    /// A replica address.
    pub fn new(node_id: NodeId, address: impl Into<String>) -> Self {
        Self {
            node_id,
            address: address.into(),
        }
    }
}

/// One replica of a branch as the directory knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replica {
    /// The replica's Raft node id.
    pub node_id: NodeId,
    /// The address of its gRPC port.
    pub address: String,
    /// The registry time of its last heartbeat; `None` before the first.
    pub last_heartbeat_unix_ms: Option<u64>,
    /// The Raft term it last reported.
    pub term: u64,
    /// The last applied log index it reported.
    pub applied_index: u64,
    /// Whether its last heartbeat said it leads.
    pub claims_leader: bool,
}

impl Replica {
    fn new(spec: &ReplicaAddress) -> Self {
        Self {
            node_id: spec.node_id,
            address: spec.address.clone(),
            last_heartbeat_unix_ms: None,
            term: 0,
            applied_index: 0,
            claims_leader: false,
        }
    }

    /// Its node id and address.
    pub fn address(&self) -> ReplicaAddress {
        ReplicaAddress::new(self.node_id, self.address.clone())
    }

    /// Its health at `now_unix_ms`, healthy while its last heartbeat is at most
    /// `window_ms` old (a heartbeat stamped after `now`, by a registry leader whose
    /// clock runs ahead, counts as fresh).
    pub fn health(&self, now_unix_ms: u64, window_ms: u64) -> Health {
        match self.last_heartbeat_unix_ms {
            None => Health::NoHeartbeat,
            Some(at) if now_unix_ms.saturating_sub(at) <= window_ms => Health::Healthy,
            Some(_) => Health::Stale,
        }
    }
}

/// How recently a replica was heard from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Health {
    /// Its last heartbeat is within the window.
    Healthy,
    /// Its last heartbeat is older than the window.
    Stale,
    /// It has never sent a heartbeat.
    NoHeartbeat,
}

impl Health {
    /// `healthy`, `stale` or `no_heartbeat`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Stale => "stale",
            Self::NoHeartbeat => "no_heartbeat",
        }
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The leader on record of a branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Leader {
    /// The leading replica.
    pub node_id: NodeId,
    /// The Raft term in which it said it leads.
    pub term: u64,
}

/// A branch: its code, name, region, replicas and leader on record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branch {
    /// The four-digit branch code of its account numbers.
    #[serde(with = "branch_code_serde")]
    pub code: BranchCode,
    /// Its name for people.
    pub name: String,
    /// The region it serves.
    pub region: String,
    /// Its replicas, ordered by node id (1 to [`REPLICAS_MAX`]).
    pub replicas: Vec<Replica>,
    /// The leader on record, when one is known.
    pub leader: Option<Leader>,
    /// When it was registered (registry time).
    pub registered_at_unix_ms: u64,
}

impl Branch {
    /// The replica with this node id.
    pub fn replica(&self, node_id: NodeId) -> Option<&Replica> {
        self.replicas
            .binary_search_by_key(&node_id, |r| r.node_id)
            .ok()
            .and_then(|index| self.replicas.get(index))
    }

    /// The leader on record, as a replica.
    pub fn leader_replica(&self) -> Option<&Replica> {
        self.leader.and_then(|leader| self.replica(leader.node_id))
    }

    /// The node ids and addresses of the replicas, ordered by node id.
    pub fn addresses(&self) -> Vec<ReplicaAddress> {
        self.replicas.iter().map(Replica::address).collect()
    }

    /// Where to send calls about the accounts of this branch.
    pub fn route(&self, account_id: u128) -> Route {
        Route {
            account_id,
            branch: self.code,
            leader: self.leader_replica().map(Replica::address),
            replicas: self.addresses(),
        }
    }
}

/// Where an account lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The ledger account id.
    pub account_id: u128,
    /// The branch that owns it.
    pub branch: BranchCode,
    /// The branch's leader on record, when one is known.
    pub leader: Option<ReplicaAddress>,
    /// Every replica of the branch, ordered by node id.
    pub replicas: Vec<ReplicaAddress>,
}

/// A replica's sign of life, stamped by the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReport {
    /// The branch.
    #[serde(with = "branch_code_serde")]
    pub code: BranchCode,
    /// The sending replica.
    pub node_id: NodeId,
    /// Its address, which must be the registered one.
    pub address: String,
    /// Whether it believes it leads.
    pub is_leader: bool,
    /// Its current Raft term (0 when not reported).
    pub term: u64,
    /// The last log index it applied.
    pub applied_index: u64,
    /// The registry time of the heartbeat.
    pub at_unix_ms: u64,
}

/// A change to the directory: what the registry's Raft log carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistryCommand {
    /// Registers a branch. Idempotent for identical settings; refused as
    /// `branch_exists` for other settings.
    RegisterBranch {
        /// The branch code.
        #[serde(with = "branch_code_serde")]
        code: BranchCode,
        /// Its name.
        name: String,
        /// Its region.
        region: String,
        /// Its replicas (in any order; kept ordered by node id).
        replicas: Vec<ReplicaAddress>,
        /// The registry time of the registration.
        at_unix_ms: u64,
    },
    /// Renames a branch or moves it to another region.
    UpdateBranch {
        /// The branch code.
        #[serde(with = "branch_code_serde")]
        code: BranchCode,
        /// The new name, if any.
        name: Option<String>,
        /// The new region, if any.
        region: Option<String>,
    },
    /// Adds a replica to a branch. Idempotent for the same node id and address.
    AddReplica {
        /// The branch code.
        #[serde(with = "branch_code_serde")]
        code: BranchCode,
        /// The new replica.
        replica: ReplicaAddress,
    },
    /// Removes a replica from a branch; the branch keeps at least one.
    RemoveReplica {
        /// The branch code.
        #[serde(with = "branch_code_serde")]
        code: BranchCode,
        /// The replica.
        node_id: NodeId,
    },
    /// A replica's heartbeat.
    Heartbeat(HeartbeatReport),
    /// A change to the users, sessions and API keys (`corebank-identity`):
    /// answered with [`Applied::Identity`], refused with
    /// [`CommandError::Identity`] (the identity error's own stable code).
    Identity(corebank_identity::IdentityCommand),
}

impl RegistryCommand {
    /// The checks that need no state: names, regions, addresses, replica counts and
    /// duplicates. [`Directory::apply`] makes them too; a server makes them before
    /// proposing, so that malformed commands never reach the log.
    pub fn validate(&self) -> Result<(), CommandError> {
        match self {
            Self::RegisterBranch {
                name,
                region,
                replicas,
                ..
            } => {
                validate_text(name).map_err(|problem| CommandError::InvalidName { problem })?;
                validate_text(region).map_err(|problem| CommandError::InvalidRegion { problem })?;
                validate_replicas(replicas)
            }
            Self::UpdateBranch { name, region, .. } => {
                if name.is_none() && region.is_none() {
                    return Err(CommandError::NothingToUpdate);
                }
                if let Some(name) = name {
                    validate_text(name).map_err(|problem| CommandError::InvalidName { problem })?;
                }
                if let Some(region) = region {
                    validate_text(region)
                        .map_err(|problem| CommandError::InvalidRegion { problem })?;
                }
                Ok(())
            }
            Self::AddReplica { replica, .. } => validate_address(&replica.address),
            Self::RemoveReplica { .. } => Ok(()),
            Self::Heartbeat(report) => validate_address(&report.address),
            Self::Identity(command) => command.validate().map_err(CommandError::Identity),
        }
    }
}

/// What an applied command did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// `RegisterBranch`: the branch as registered; `created` is false when it was
    /// already registered with the same settings.
    Registered {
        /// The branch after the command.
        branch: Branch,
        /// Whether this command created it.
        created: bool,
    },
    /// `UpdateBranch`, `AddReplica`, `RemoveReplica`: the branch after the command;
    /// `changed` is false when it already was so.
    Updated {
        /// The branch after the command.
        branch: Branch,
        /// Whether this command changed it.
        changed: bool,
    },
    /// `Heartbeat`: the branch's leader on record afterwards.
    Heartbeat {
        /// The leader on record, when one is known.
        leader: Option<Leader>,
        /// Its address.
        leader_address: Option<String>,
    },
    /// `Identity`: what the identity state did.
    Identity(corebank_identity::IdentityOutcome),
}

/// The outcome of a command: what it did, or why it was refused (then nothing
/// changed).
pub type RegistryResponse = Result<Applied, CommandError>;

/// The directory of branches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// Keyed by branch code.
    branches: BTreeMap<u16, Branch>,
    /// Customers and staff, sessions, API keys.
    identity: corebank_identity::IdentityState,
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// The users, sessions and API keys.
    pub fn identity(&self) -> &corebank_identity::IdentityState {
        &self.identity
    }

    /// A directory of the given branches and no users (snapshots of format 1).
    pub(crate) fn from_branches(branches: BTreeMap<u16, Branch>) -> Self {
        Self {
            branches,
            identity: corebank_identity::IdentityState::default(),
        }
    }

    /// Applies one command. A refused command changes nothing.
    pub fn apply(&mut self, command: &RegistryCommand) -> RegistryResponse {
        command.validate()?;
        let response = match command {
            RegistryCommand::RegisterBranch {
                code,
                name,
                region,
                replicas,
                at_unix_ms,
            } => self.register(*code, name, region, replicas, *at_unix_ms),
            RegistryCommand::UpdateBranch { code, name, region } => {
                self.update(*code, name.as_deref(), region.as_deref())
            }
            RegistryCommand::AddReplica { code, replica } => self.add_replica(*code, replica),
            RegistryCommand::RemoveReplica { code, node_id } => {
                self.remove_replica(*code, *node_id)
            }
            RegistryCommand::Heartbeat(report) => self.heartbeat(report),
            RegistryCommand::Identity(command) => self
                .identity
                .apply(command)
                .map(Applied::Identity)
                .map_err(CommandError::Identity),
        };
        debug_assert!(
            self.check_invariants().is_ok(),
            "a command broke the directory: {:?}",
            self.check_invariants()
        );
        response
    }

    fn register(
        &mut self,
        code: BranchCode,
        name: &str,
        region: &str,
        replicas: &[ReplicaAddress],
        at_unix_ms: u64,
    ) -> RegistryResponse {
        let mut wanted: Vec<ReplicaAddress> = replicas.to_vec();
        wanted.sort();
        if let Some(existing) = self.branches.get(&code.get()) {
            return if existing.name == name
                && existing.region == region
                && existing.addresses() == wanted
            {
                Ok(Applied::Registered {
                    branch: existing.clone(),
                    created: false,
                })
            } else {
                Err(CommandError::BranchExists { code: code.get() })
            };
        }
        for replica in &wanted {
            self.check_address_free(&replica.address)?;
        }
        let branch = Branch {
            code,
            name: name.to_owned(),
            region: region.to_owned(),
            replicas: wanted.iter().map(Replica::new).collect(),
            leader: None,
            registered_at_unix_ms: at_unix_ms,
        };
        self.branches.insert(code.get(), branch.clone());
        Ok(Applied::Registered {
            branch,
            created: true,
        })
    }

    fn update(
        &mut self,
        code: BranchCode,
        name: Option<&str>,
        region: Option<&str>,
    ) -> RegistryResponse {
        let branch = self.branch_mut(code)?;
        let mut changed = false;
        if let Some(name) = name
            && branch.name != name
        {
            name.clone_into(&mut branch.name);
            changed = true;
        }
        if let Some(region) = region
            && branch.region != region
        {
            region.clone_into(&mut branch.region);
            changed = true;
        }
        Ok(Applied::Updated {
            branch: branch.clone(),
            changed,
        })
    }

    fn add_replica(&mut self, code: BranchCode, spec: &ReplicaAddress) -> RegistryResponse {
        let branch = self
            .branch(code)
            .ok_or(CommandError::BranchNotFound { code: code.get() })?;
        if let Some(existing) = branch.replica(spec.node_id) {
            return if existing.address == spec.address {
                Ok(Applied::Updated {
                    branch: branch.clone(),
                    changed: false,
                })
            } else {
                Err(CommandError::NodeIdTaken {
                    code: code.get(),
                    node_id: spec.node_id,
                    address: existing.address.clone(),
                })
            };
        }
        if branch.replicas.len() >= REPLICAS_MAX {
            return Err(CommandError::ReplicasFull { code: code.get() });
        }
        self.check_address_free(&spec.address)?;
        let branch = self.branch_mut(code)?;
        let index = branch
            .replicas
            .partition_point(|replica| replica.node_id < spec.node_id);
        branch.replicas.insert(index, Replica::new(spec));
        Ok(Applied::Updated {
            branch: branch.clone(),
            changed: true,
        })
    }

    fn remove_replica(&mut self, code: BranchCode, node_id: NodeId) -> RegistryResponse {
        let branch = self.branch_mut(code)?;
        let index = branch
            .replicas
            .binary_search_by_key(&node_id, |replica| replica.node_id)
            .map_err(|_| CommandError::ReplicaNotFound {
                code: code.get(),
                node_id,
            })?;
        if branch.replicas.len() == 1 {
            return Err(CommandError::LastReplica {
                code: code.get(),
                node_id,
            });
        }
        branch.replicas.remove(index);
        if branch
            .leader
            .is_some_and(|leader| leader.node_id == node_id)
        {
            branch.leader = None;
        }
        Ok(Applied::Updated {
            branch: branch.clone(),
            changed: true,
        })
    }

    /// Records a heartbeat. A report older than the replica's last one (possible
    /// after a change of registry leader whose clock runs behind) is not recorded,
    /// but still answered with the leader on record.
    ///
    /// The leader rule: a replica that says it leads becomes the leader on record
    /// unless the leader on record has a higher term; the leader on record that says
    /// it no longer leads, in a term at least its own, stops being the leader.
    fn heartbeat(&mut self, report: &HeartbeatReport) -> RegistryResponse {
        let code = report.code;
        let branch = self.branch_mut(code)?;
        let index = branch
            .replicas
            .binary_search_by_key(&report.node_id, |replica| replica.node_id)
            .map_err(|_| CommandError::ReplicaNotFound {
                code: code.get(),
                node_id: report.node_id,
            })?;
        let replica = branch
            .replicas
            .get_mut(index)
            .ok_or(CommandError::ReplicaNotFound {
                code: code.get(),
                node_id: report.node_id,
            })?;
        if replica.address != report.address {
            return Err(CommandError::ReplicaAddressMismatch {
                code: code.get(),
                node_id: report.node_id,
                registered: replica.address.clone(),
                given: report.address.clone(),
            });
        }
        let in_order = replica
            .last_heartbeat_unix_ms
            .is_none_or(|last| last <= report.at_unix_ms);
        if in_order {
            replica.last_heartbeat_unix_ms = Some(report.at_unix_ms);
            replica.term = report.term;
            replica.applied_index = report.applied_index;
            replica.claims_leader = report.is_leader;
            let outranks = branch
                .leader
                .is_none_or(|leader| leader.term <= report.term);
            let same_node = branch
                .leader
                .is_some_and(|leader| leader.node_id == report.node_id);
            if report.is_leader && outranks {
                branch.leader = Some(Leader {
                    node_id: report.node_id,
                    term: report.term,
                });
            } else if !report.is_leader && same_node && outranks {
                // The leader on record says it no longer leads.
                branch.leader = None;
            }
        }
        let leader = branch.leader;
        let leader_address = branch.leader_replica().map(|r| r.address.clone());
        Ok(Applied::Heartbeat {
            leader,
            leader_address,
        })
    }

    fn branch_mut(&mut self, code: BranchCode) -> Result<&mut Branch, CommandError> {
        self.branches
            .get_mut(&code.get())
            .ok_or(CommandError::BranchNotFound { code: code.get() })
    }

    /// Refuses an address that a replica of any branch already has.
    fn check_address_free(&self, address: &str) -> Result<(), CommandError> {
        for branch in self.branches.values() {
            if let Some(replica) = branch.replicas.iter().find(|r| r.address == address) {
                return Err(CommandError::AddressTaken {
                    address: address.to_owned(),
                    code: branch.code.get(),
                    node_id: replica.node_id,
                });
            }
        }
        Ok(())
    }

    /// The branch with this code.
    pub fn branch(&self, code: BranchCode) -> Option<&Branch> {
        self.branches.get(&code.get())
    }

    /// Every branch, ordered by code.
    pub fn branches(&self) -> impl Iterator<Item = &Branch> {
        self.branches.values()
    }

    /// The branches after `start_after` (all when `None`), ordered by code.
    pub fn branches_after(&self, start_after: Option<BranchCode>) -> impl Iterator<Item = &Branch> {
        let lower = match start_after {
            Some(code) => Bound::Excluded(code.get()),
            None => Bound::Unbounded,
        };
        self.branches
            .range((lower, Bound::Unbounded))
            .map(|(_, branch)| branch)
    }

    /// How many branches are registered.
    pub fn len(&self) -> usize {
        self.branches.len()
    }

    /// Whether no branch is registered.
    pub fn is_empty(&self) -> bool {
        self.branches.is_empty()
    }

    /// The health of each replica of a branch at `now_unix_ms` (see
    /// [`Replica::health`]), ordered by node id.
    pub fn health(
        &self,
        code: BranchCode,
        now_unix_ms: u64,
        window_ms: u64,
    ) -> Result<Vec<(NodeId, Health)>, LookupError> {
        let branch = self
            .branch(code)
            .ok_or(LookupError::BranchNotFound { code })?;
        Ok(branch
            .replicas
            .iter()
            .map(|replica| (replica.node_id, replica.health(now_unix_ms, window_ms)))
            .collect())
    }

    /// Where an account lives: `account` is an account number (any bank prefix;
    /// spaces between groups of four accepted) or a ledger account id in decimal
    /// digits.
    pub fn resolve(&self, account: &str) -> Result<Route, LookupError> {
        let trimmed = account.trim();
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            let id = trimmed.parse::<u128>().map_err(|_| {
                corebank_account_number::AccountNumberError::AccountIdOutOfRange { id: u128::MAX }
            })?;
            return self.resolve_id(id);
        }
        self.resolve_number(&AccountNumber::parse(account)?)
    }

    /// Where the account with this number lives.
    pub fn resolve_number(&self, number: &AccountNumber) -> Result<Route, LookupError> {
        let branch = self
            .branch(number.branch())
            .ok_or(LookupError::BranchNotFound {
                code: number.branch(),
            })?;
        Ok(branch.route(number.account_id()))
    }

    /// Where the account with this ledger id lives (ids 1 to 10^14 - 1).
    pub fn resolve_id(&self, id: u128) -> Result<Route, LookupError> {
        use corebank_account_number::AccountNumberError as E;
        if id == 0 {
            return Err(E::AccountIdZero.into());
        }
        let (code, _) = split_account_id(id).ok_or(E::AccountIdOutOfRange { id })?;
        let branch = self
            .branch(code)
            .ok_or(LookupError::BranchNotFound { code })?;
        Ok(branch.route(id))
    }

    /// Checks every invariant of the directory; the first one broken is named.
    ///
    /// - each branch is filed under its own code;
    /// - names and regions are valid;
    /// - each branch has 1 to [`REPLICAS_MAX`] replicas, strictly ordered by node id;
    /// - every address is valid and belongs to one replica of one branch;
    /// - the leader on record, if any, is a replica of its branch.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.identity.check_invariants()?;
        if self.branches.len() > BRANCHES_MAX {
            return Err(format!("{} branches", self.branches.len()));
        }
        let mut addresses = std::collections::BTreeSet::new();
        for (key, branch) in &self.branches {
            let code = branch.code;
            if *key != code.get() {
                return Err(format!("branch {code} is filed under {key}"));
            }
            validate_text(&branch.name).map_err(|p| format!("branch {code}: name: {p}"))?;
            validate_text(&branch.region).map_err(|p| format!("branch {code}: region: {p}"))?;
            if branch.replicas.is_empty() || branch.replicas.len() > REPLICAS_MAX {
                return Err(format!(
                    "branch {code} has {} replicas",
                    branch.replicas.len()
                ));
            }
            if !branch
                .replicas
                .windows(2)
                .all(|pair| matches!(pair, [a, b] if a.node_id < b.node_id))
            {
                return Err(format!(
                    "branch {code}: replicas not strictly ordered by node id"
                ));
            }
            for replica in &branch.replicas {
                validate_address(&replica.address).map_err(|e| format!("branch {code}: {e}"))?;
                if !addresses.insert(replica.address.as_str()) {
                    return Err(format!(
                        "address {:?} belongs to two replicas",
                        replica.address
                    ));
                }
            }
            if let Some(leader) = branch.leader
                && branch.replica(leader.node_id).is_none()
            {
                return Err(format!(
                    "branch {code}: leader {} is not a replica",
                    leader.node_id
                ));
            }
        }
        Ok(())
    }
}

/// A name or region: 1 to [`NAME_BYTES_MAX`] bytes, no control characters, no
/// leading or trailing whitespace.
pub fn validate_text(text: &str) -> Result<(), TextProblem> {
    if text.is_empty() {
        return Err(TextProblem::Empty);
    }
    if text.len() > NAME_BYTES_MAX {
        return Err(TextProblem::TooLong { bytes: text.len() });
    }
    if text.chars().any(char::is_control) {
        return Err(TextProblem::ControlCharacter);
    }
    if text.trim() != text {
        return Err(TextProblem::SurroundingSpace);
    }
    Ok(())
}

/// A replica address: `host:port`, optionally after `http://` or `https://`, at
/// most [`ADDRESS_BYTES_MAX`] bytes of visible ASCII, a port from 1 to 65535.
pub fn validate_address(address: &str) -> Result<(), CommandError> {
    address_problem(address).map_err(|problem| CommandError::InvalidAddress {
        address: address.chars().take(64).collect(),
        problem,
    })
}

fn address_problem(address: &str) -> Result<(), AddressProblem> {
    if address.is_empty() {
        return Err(AddressProblem::Empty);
    }
    if address.len() > ADDRESS_BYTES_MAX {
        return Err(AddressProblem::TooLong {
            bytes: address.len(),
        });
    }
    if !address.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AddressProblem::BadCharacter);
    }
    let authority = match address.split_once("://") {
        Some(("http" | "https", rest)) => rest,
        Some(_) => return Err(AddressProblem::BadScheme),
        None => address,
    };
    if authority.contains('/') || authority.contains('@') {
        return Err(AddressProblem::BadScheme);
    }
    let (host, port) = authority.rsplit_once(':').ok_or(AddressProblem::BadPort)?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressProblem::BadPort);
    }
    match port.parse::<u16>() {
        Ok(1..) => {}
        _ => return Err(AddressProblem::BadPort),
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.is_empty() {
        return Err(AddressProblem::NoHost);
    }
    // An IPv6 address must be in brackets; anything else holds no colon.
    if bare == host && host.contains(':') {
        return Err(AddressProblem::BadPort);
    }
    Ok(())
}

fn validate_replicas(replicas: &[ReplicaAddress]) -> Result<(), CommandError> {
    if replicas.is_empty() {
        return Err(CommandError::NoReplicas);
    }
    if replicas.len() > REPLICAS_MAX {
        return Err(CommandError::TooManyReplicas {
            count: replicas.len(),
        });
    }
    for (index, replica) in replicas.iter().enumerate() {
        validate_address(&replica.address)?;
        let earlier = replicas.get(..index).unwrap_or_default();
        if earlier.iter().any(|r| r.node_id == replica.node_id) {
            return Err(CommandError::DuplicateNodeId {
                node_id: replica.node_id,
            });
        }
        if earlier.iter().any(|r| r.address == replica.address) {
            return Err(CommandError::DuplicateAddress {
                address: replica.address.clone(),
            });
        }
    }
    Ok(())
}

/// Branch codes as `u16` on the wire, checked (`0..=9999`) when read back.
pub(crate) mod branch_code_serde {
    use corebank_account_number::BranchCode;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(code: &BranchCode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(code.get())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BranchCode, D::Error> {
        let value = u16::deserialize(d)?;
        BranchCode::new(value).map_err(serde::de::Error::custom)
    }
}
