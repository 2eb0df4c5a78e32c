//! The replicas of a branch talking to each other: the Raft messages over gRPC (the
//! `RaftTransport` service and openraft's network, from `corebank-raft-net`, typed to
//! the branch's [`TypeConfig`]), and the `Cluster` service for membership and status.
//!
//! Peers authenticate like any caller and need the `admin` scope: under TLS with their
//! node certificates (mutual TLS), otherwise with an API key.

use std::sync::Arc;

use corebank_node::{MembershipError, Node, TypeConfig};
use corebank_proto::v1::{self, cluster_server};
use corebank_proto::{ApiError, ErrorCode};
use corebank_raft_net::valid_address;
use corebank_security::Scope;
use tonic::{Request, Response, Status};

use crate::auth::Gate;
use crate::errors;

pub use corebank_raft_net::{Isolation, PeerSettings, RAFT_MESSAGE_BYTES_MAX};

/// The network openraft uses to call the other replicas of the branch over gRPC.
pub type GrpcNetwork = corebank_raft_net::GrpcNetwork<TypeConfig>;
/// One peer of [`GrpcNetwork`].
pub type GrpcPeer = corebank_raft_net::GrpcPeer<TypeConfig>;

/// The `RaftTransport` service of a branch replica: peers' messages go to this
/// replica's Raft once `gate` has found the `admin` scope, unless `isolation` is on.
pub(crate) fn raft_transport(
    node: &Node,
    gate: Gate,
    isolation: Isolation,
) -> corebank_proto::v1::raft_transport_server::RaftTransportServer<
    corebank_raft_net::RaftTransportService<TypeConfig>,
> {
    let authorize: corebank_raft_net::AuthorizePeer =
        Arc::new(move |request| gate.check(request, Scope::Admin).map(|_| ()));
    corebank_raft_net::RaftTransportService::new(node.raft().clone(), authorize, isolation)
        .into_server()
}

/// The `Cluster` service: status and membership changes.
pub(crate) struct ClusterService {
    pub node: Arc<Node>,
    pub gate: Gate,
    pub branch: u16,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

impl ClusterService {
    fn status(&self) -> Result<v1::ClusterStatus, Status> {
        let view = self.node.cluster_view();
        let (_, digest) = self
            .node
            .state_digest()
            .map_err(|e| errors::status(errors::read(e)))?;
        let (leader_id, leader_address) = match view.leader {
            Some((id, address)) => (Some(id), address),
            None => (None, String::new()),
        };
        Ok(v1::ClusterStatus {
            branch: u32::from(self.branch),
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

fn membership_status(error: MembershipError) -> Status {
    let api = match &error {
        MembershipError::NotLeader { leader } => {
            ApiError::not_leader(leader.as_ref().map(|(_, address)| address.clone()))
        }
        MembershipError::Invalid(_) => {
            ApiError::new(ErrorCode::InvalidArgument, error.to_string()).with_reason(error.code())
        }
        MembershipError::Failed(_) => {
            ApiError::new(ErrorCode::Unavailable, error.to_string()).with_reason(error.code())
        }
    };
    errors::status(api)
}

#[tonic::async_trait]
impl cluster_server::Cluster for ClusterService {
    async fn status(
        &self,
        request: Request<v1::ClusterStatusRequest>,
    ) -> Result<Response<v1::ClusterStatus>, Status> {
        self.gate.check(&request, Scope::Read)?;
        Ok(Response::new(ClusterService::status(self)?))
    }

    async fn add_replica(
        &self,
        request: Request<v1::AddReplicaRequest>,
    ) -> Result<Response<v1::ClusterStatus>, Status> {
        let identity = self.gate.check(&request, Scope::Admin)?;
        let body = request.into_inner();
        if body.node_id == 0 {
            return Err(errors::status(
                ApiError::new(ErrorCode::InvalidArgument, "node ids start at 1")
                    .with_field("node_id"),
            ));
        }
        if !valid_address(&body.address) {
            return Err(errors::status(
                ApiError::new(
                    ErrorCode::InvalidArgument,
                    "the address must be host:port of the replica's gRPC port",
                )
                .with_field("address"),
            ));
        }
        tracing::info!(
            node_id = body.node_id,
            address = %body.address,
            by = %identity.name,
            "adding a replica"
        );
        self.node
            .add_replica(body.node_id, body.address)
            .await
            .map_err(membership_status)?;
        Ok(Response::new(ClusterService::status(self)?))
    }

    async fn remove_replica(
        &self,
        request: Request<v1::RemoveReplicaRequest>,
    ) -> Result<Response<v1::ClusterStatus>, Status> {
        let identity = self.gate.check(&request, Scope::Admin)?;
        let node_id = request.get_ref().node_id;
        tracing::info!(node_id, by = %identity.name, "removing a replica");
        self.node
            .remove_replica(node_id)
            .await
            .map_err(membership_status)?;
        Ok(Response::new(ClusterService::status(self)?))
    }
}
