//! The `Cluster` service (`cluster.proto`) over any Raft group of this transport: the
//! group's status with its state digest, and membership changes through
//! [`corebank_node::group`]. A branch's replicas and the registry's serve the same
//! implementation; what differs is in [`ClusterGroup`] and the [`Authorize`] policy.

use std::sync::Arc;

use corebank_node::MembershipError;
use corebank_node::group::{self, GroupNoun};
use corebank_proto::v1::{self, cluster_server};
use corebank_proto::{ApiError, ErrorCode};
use corebank_security::Scope;
use openraft::Raft;
use tonic::{Request, Response, Status};

use crate::TransportTypeConfig;
use crate::auth::Authorize;

/// The state digest of a group's replica and the log index it reflects, read together.
pub type StateDigest = Arc<dyn Fn() -> Result<(u64, [u8; 32]), Status> + Send + Sync>;

/// What tells one group's `Cluster` service from another's.
#[derive(Clone)]
pub struct ClusterGroup {
    /// `ClusterStatus.branch`: the branch code, 0 for the registry.
    pub branch: u32,
    /// What the group calls itself in membership errors (`"branch"`, `"registry"`).
    pub noun: GroupNoun,
    /// What its replicas are called in messages and logs (`"replica"`,
    /// `"registry replica"`).
    pub replica: &'static str,
    /// The replica's state digest.
    pub state_digest: StateDigest,
    /// The error for a membership change sent to a follower: the leader (id, address)
    /// if one is known.
    pub not_leader: fn(Option<(u64, String)>) -> ApiError,
    /// How an API error becomes the status answered (and, for a branch, counted).
    pub to_status: fn(ApiError) -> Status,
}

impl std::fmt::Debug for ClusterGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterGroup")
            .field("branch", &self.branch)
            .field("noun", &self.noun)
            .finish_non_exhaustive()
    }
}

/// The `Cluster` service over `raft`.
pub struct ClusterService<C: TransportTypeConfig, A> {
    raft: Raft<C>,
    authorize: A,
    group: ClusterGroup,
}

impl<C: TransportTypeConfig, A> std::fmt::Debug for ClusterService<C, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterService")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

impl<C, A> ClusterService<C, A>
where
    C: TransportTypeConfig<Responder = openraft::raft::responder::OneshotResponder<C>>,
    A: Authorize,
{
    pub fn new(raft: Raft<C>, authorize: A, group: ClusterGroup) -> Self {
        Self {
            raft,
            authorize,
            group,
        }
    }

    /// The service, ready for a tonic router.
    pub fn into_server(self) -> cluster_server::ClusterServer<Self> {
        cluster_server::ClusterServer::new(self)
    }

    fn membership_status(&self, error: MembershipError) -> Status {
        let api = match &error {
            MembershipError::NotLeader { leader } => (self.group.not_leader)(leader.clone()),
            MembershipError::Invalid(_) => {
                ApiError::new(ErrorCode::InvalidArgument, error.to_string())
                    .with_reason(error.code())
            }
            MembershipError::Failed(_) => {
                ApiError::new(ErrorCode::Unavailable, error.to_string()).with_reason(error.code())
            }
        };
        (self.group.to_status)(api)
    }

    fn status(&self) -> Result<v1::ClusterStatus, Status> {
        let (applied, digest) = (self.group.state_digest)()?;
        let view = group::cluster_view(&self.raft, applied);
        let (leader_id, leader_address) = match view.leader {
            Some((id, address)) => (Some(id), address),
            None => (None, String::new()),
        };
        Ok(v1::ClusterStatus {
            branch: self.group.branch,
            node_id: view.node_id,
            role: view.role.into(),
            term: view.term,
            leader_id,
            leader_address,
            last_log_index: view.last_log_index,
            last_applied_index: view.last_applied_index,
            members: view
                .members
                .into_iter()
                .map(|member| v1::ClusterMember {
                    node_id: member.node_id,
                    address: member.address,
                    voter: member.voter,
                    matched_index: member.matched_index,
                })
                .collect(),
            state_digest: hex(&digest),
        })
    }
}

#[tonic::async_trait]
impl<C, A> cluster_server::Cluster for ClusterService<C, A>
where
    C: TransportTypeConfig<Responder = openraft::raft::responder::OneshotResponder<C>>,
    A: Authorize,
{
    async fn status(
        &self,
        request: Request<v1::ClusterStatusRequest>,
    ) -> Result<Response<v1::ClusterStatus>, Status> {
        self.authorize.authorize(&request, Scope::Read)?;
        Ok(Response::new(ClusterService::status(self)?))
    }

    async fn add_replica(
        &self,
        request: Request<v1::AddReplicaRequest>,
    ) -> Result<Response<v1::ClusterStatus>, Status> {
        let identity = self.authorize.authorize(&request, Scope::Admin)?;
        let body = request.into_inner();
        if body.node_id == 0 {
            return Err((self.group.to_status)(
                ApiError::new(ErrorCode::InvalidArgument, "node ids start at 1")
                    .with_field("node_id"),
            ));
        }
        if !crate::valid_address(&body.address) {
            return Err((self.group.to_status)(
                ApiError::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "the address must be host:port of the {}'s gRPC port",
                        self.group.replica
                    ),
                )
                .with_field("address"),
            ));
        }
        tracing::info!(
            node_id = body.node_id,
            address = %body.address,
            by = %identity.name,
            "adding a {}",
            self.group.replica
        );
        group::add_member(&self.raft, body.node_id, body.address)
            .await
            .map_err(|error| self.membership_status(error))?;
        Ok(Response::new(ClusterService::status(self)?))
    }

    async fn remove_replica(
        &self,
        request: Request<v1::RemoveReplicaRequest>,
    ) -> Result<Response<v1::ClusterStatus>, Status> {
        let identity = self.authorize.authorize(&request, Scope::Admin)?;
        let node_id = request.get_ref().node_id;
        tracing::info!(node_id, by = %identity.name, "removing a {}", self.group.replica);
        group::remove_member(&self.raft, self.group.noun, node_id)
            .await
            .map_err(|error| self.membership_status(error))?;
        Ok(Response::new(ClusterService::status(self)?))
    }
}
