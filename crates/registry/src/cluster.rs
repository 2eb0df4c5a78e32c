//! The `Cluster` service of a registry replica: the registry group's status and its
//! membership changes, the same RPCs as a branch's (`cluster.proto`), so that
//! `corebank client --server REGISTRY cluster-status | add-replica | remove-replica`
//! work on the registry too. `ClusterStatus.branch` is 0 and `state_digest` is the
//! BLAKE3 digest of the directory ([`crate::Directory::digest`]).

use std::sync::Arc;

use corebank_node::MembershipError;
use corebank_proto::v1::{self, cluster_server};
use corebank_proto::{ApiError, ErrorCode};
use corebank_security::Scope;
use tonic::{Request, Response, Status};

use crate::auth::Authorize;
use crate::raft_store::RaftStore;

/// The Cluster service over the registry's Raft store.
pub(crate) struct RegistryClusterService<A> {
    pub store: Arc<RaftStore>,
    pub authorize: A,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

fn membership_status(error: MembershipError) -> Status {
    let api = match &error {
        MembershipError::NotLeader { leader } => ApiError {
            leader: leader.as_ref().map(|(_, address)| address.clone()),
            ..ApiError::new(
                ErrorCode::NotLeader,
                match leader {
                    Some((id, address)) => format!(
                        "this registry replica is not the leader; replica {id} at {address} is"
                    ),
                    None => "this registry replica is not the leader, and no leader is known yet"
                        .to_owned(),
                },
            )
        },
        MembershipError::Invalid(_) => {
            ApiError::new(ErrorCode::InvalidArgument, error.to_string()).with_reason(error.code())
        }
        MembershipError::Failed(_) => {
            ApiError::new(ErrorCode::Unavailable, error.to_string()).with_reason(error.code())
        }
    };
    api.to_status()
}

impl<A: Authorize> RegistryClusterService<A> {
    fn status(&self) -> Result<v1::ClusterStatus, Status> {
        let view = self.store.cluster_view();
        let (applied, digest) = self
            .store
            .state_digest()
            .map_err(|error| crate::errors::store_error(&error).to_status())?;
        let (leader_id, leader_address) = match view.leader {
            Some((id, address)) => (Some(id), address),
            None => (None, String::new()),
        };
        Ok(v1::ClusterStatus {
            branch: 0,
            node_id: view.node_id,
            role: view.role.into(),
            term: view.term,
            leader_id,
            leader_address,
            last_log_index: view.last_log_index,
            last_applied_index: applied,
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
impl<A: Authorize> cluster_server::Cluster for RegistryClusterService<A> {
    async fn status(
        &self,
        request: Request<v1::ClusterStatusRequest>,
    ) -> Result<Response<v1::ClusterStatus>, Status> {
        self.authorize.authorize(&request, Scope::Read)?;
        Ok(Response::new(RegistryClusterService::status(self)?))
    }

    async fn add_replica(
        &self,
        request: Request<v1::AddReplicaRequest>,
    ) -> Result<Response<v1::ClusterStatus>, Status> {
        let identity = self.authorize.authorize(&request, Scope::Admin)?;
        let body = request.into_inner();
        if body.node_id == 0 {
            return Err(
                ApiError::new(ErrorCode::InvalidArgument, "node ids start at 1")
                    .with_field("node_id")
                    .to_status(),
            );
        }
        if !corebank_raft_net::valid_address(&body.address) {
            return Err(ApiError::new(
                ErrorCode::InvalidArgument,
                "the address must be host:port of the registry replica's gRPC port",
            )
            .with_field("address")
            .to_status());
        }
        tracing::info!(
            node_id = body.node_id,
            address = %body.address,
            by = %identity.name,
            "adding a registry replica"
        );
        self.store
            .add_member(body.node_id, body.address)
            .await
            .map_err(membership_status)?;
        Ok(Response::new(RegistryClusterService::status(self)?))
    }

    async fn remove_replica(
        &self,
        request: Request<v1::RemoveReplicaRequest>,
    ) -> Result<Response<v1::ClusterStatus>, Status> {
        let identity = self.authorize.authorize(&request, Scope::Admin)?;
        let node_id = request.get_ref().node_id;
        tracing::info!(node_id, by = %identity.name, "removing a registry replica");
        self.store
            .remove_member(node_id)
            .await
            .map_err(membership_status)?;
        Ok(Response::new(RegistryClusterService::status(self)?))
    }
}
