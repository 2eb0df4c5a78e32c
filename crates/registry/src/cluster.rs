//! The `Cluster` service of a registry replica: the registry group's status and its
//! membership changes, the same RPCs as a branch's (`cluster.proto`, served by
//! [`corebank_raft_net::ClusterService`]), so that
//! `corebank client --server REGISTRY cluster-status | add-replica | remove-replica`
//! work on the registry too. `ClusterStatus.branch` is 0 and `state_digest` is the
//! BLAKE3 digest of the directory ([`crate::Directory::digest`]).

use std::sync::Arc;

use corebank_proto::v1::cluster_server::ClusterServer;
use corebank_proto::{ApiError, ErrorCode};
use corebank_raft_net::{Authorize, ClusterGroup, ClusterService};

use crate::raft_store::{RaftStore, RegistryTypeConfig};

/// A membership change sent to a follower.
fn not_leader(leader: Option<(u64, String)>) -> ApiError {
    ApiError {
        leader: leader.as_ref().map(|(_, address)| address.clone()),
        ..ApiError::new(
            ErrorCode::NotLeader,
            match &leader {
                Some((id, address)) => {
                    format!("this registry replica is not the leader; replica {id} at {address} is")
                }
                None => {
                    "this registry replica is not the leader, and no leader is known yet".to_owned()
                }
            },
        )
    }
}

/// The Cluster service over the registry's Raft store.
pub(crate) fn cluster_service<A: Authorize>(
    store: &Arc<RaftStore>,
    authorize: A,
) -> ClusterServer<ClusterService<RegistryTypeConfig, A>> {
    let digest_store = Arc::clone(store);
    let group = ClusterGroup {
        branch: 0,
        noun: "registry",
        replica: "registry replica",
        state_digest: Arc::new(move || {
            digest_store
                .state_digest()
                .map_err(|error| crate::errors::store_error(&error).to_status())
        }),
        not_leader,
        to_status: |error| error.to_status(),
    };
    ClusterService::new(store.raft().clone(), authorize, group).into_server()
}
