//! The replicas of a branch talking to each other: the Raft messages over gRPC (the
//! `RaftTransport` service and openraft's network, from `corebank-raft-net`, typed to
//! the branch's [`TypeConfig`]), and the `Cluster` service for membership and status.
//!
//! Peers authenticate like any caller and need the `admin` scope: under TLS with their
//! node certificates (mutual TLS), otherwise with an API key.

use std::sync::Arc;

use corebank_node::{Node, TypeConfig};
use corebank_proto::ApiError;
use corebank_proto::v1::cluster_server;
use corebank_raft_net::{ClusterGroup, ClusterService};
use corebank_security::Scope;

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

/// The `Cluster` service: status (with the ledger's state digest) and membership
/// changes.
pub(crate) fn cluster_service(
    node: &Arc<Node>,
    gate: Gate,
    branch: u16,
) -> cluster_server::ClusterServer<ClusterService<TypeConfig, Gate>> {
    let digest_node = Arc::clone(node);
    let group = ClusterGroup {
        branch: u32::from(branch),
        noun: "branch",
        replica: "replica",
        state_digest: Arc::new(move || {
            digest_node
                .state_digest()
                .map_err(|e| errors::status(errors::read(e)))
        }),
        not_leader: |leader| ApiError::not_leader(leader.map(|(_, address)| address)),
        to_status: errors::status,
    };
    ClusterService::new(node.raft().clone(), gate, group).into_server()
}
