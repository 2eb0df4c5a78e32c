//! # corebank-raft-net
//!
//! Raft between the replicas of a group over gRPC, for any openraft type
//! configuration whose node ids are `u64` and whose nodes are [`BasicNode`]
//! addresses: a branch's replicas and the registry's use the same transport.
//!
//! - [`RaftTransportService`]: the `corebank.v1.RaftTransport` service
//!   (`crates/proto/proto/corebank/v1/cluster.proto`) over an [`openraft::Raft`]: it
//!   hands peers' messages to the local Raft, after the [`AuthorizePeer`] hook has
//!   accepted the caller (peers need the `admin` scope).
//! - [`GrpcNetwork`]: openraft's network (`RaftNetworkFactory`) calling the peers'
//!   `RaftTransport` services: one lazily connected channel per peer, through
//!   [`corebank_client::connect_channel`] (TLS with the replica's own certificate as
//!   client certificate, or an API key), `Unreachable` on connection failures so that
//!   openraft backs off.
//! - [`ClusterService`]: the `corebank.v1.Cluster` service (status, add and remove a
//!   replica) over the group's Raft, through [`corebank_node::group`].
//! - [`AuthGate`] / [`Authorize`]: every call's credential and scope.
//! - [`serving::serve`]: a tonic router over plain TCP or a rustls acceptor (bounded,
//!   timed handshakes) until a stop signal; [`member_map`]: `ID=HOST:PORT` lists;
//!   [`Transport`]: a replica's ports, TLS and keys, and [`Serving`], what runs on
//!   them until stopped.
//! - [`Isolation`]: a fault-injection switch that cuts a replica off from its peers in
//!   both directions (what a network partition does to Raft).
//!
//! Raft messages travel as bincode-encoded openraft requests inside a protobuf
//! envelope ([`corebank_proto::v1::RaftMessage`]): both ends run the same corebank version, and
//! openraft's types already carry serde. A reply is the bincode encoding of the
//! local Raft's `Result<response, RaftError>`.
//!
//! [`BasicNode`]: openraft::BasicNode

mod auth;
mod cluster;
mod members;
mod network;
mod service;
pub mod serving;
mod transport;

pub use auth::{AuthGate, Authorize, Refusal, auth_error, development_identity};
pub use cluster::{ClusterGroup, ClusterService, StateDigest};
pub use members::{MemberError, member_map};
pub use network::{GrpcNetwork, GrpcPeer, PeerSettings};
pub use service::{AuthorizePeer, Isolation, RaftTransportService, allow_all};
pub use transport::{BindError, Listeners, ServerTlsError, Serving, Transport, TransportError};

/// The largest Raft message: a few log entries of whole batches (about 1 MiB each), or
/// a snapshot chunk.
pub const RAFT_MESSAGE_BYTES_MAX: usize = 64 << 20;

/// The Raft type configurations this transport carries: `u64` node ids and
/// [`openraft::BasicNode`] addresses (openraft's `serde` feature makes every message
/// serde-encodable).
pub trait TransportTypeConfig:
    openraft::RaftTypeConfig<NodeId = u64, Node = openraft::BasicNode>
{
}

impl<C> TransportTypeConfig for C where
    C: openraft::RaftTypeConfig<NodeId = u64, Node = openraft::BasicNode>
{
}

/// Is `address` a `host:port` that peers and clients can dial (bounded, a port from 1)?
pub fn valid_address(address: &str) -> bool {
    address.len() <= 256
        && address.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && !host.chars().any(|c| c.is_whitespace() || c == '/')
                && port.parse::<u16>().is_ok_and(|port| port > 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_host_and_port() {
        for good in ["127.0.0.1:9090", "registry-a.bank.internal:9090", "[::1]:1"] {
            assert!(valid_address(good), "{good}");
        }
        for bad in [
            "",
            "host",
            ":9090",
            "host:0",
            "host:x",
            "a b:1",
            "http://x:1",
        ] {
            assert!(!valid_address(bad), "{bad}");
        }
        assert!(!valid_address(&format!("{}:1", "h".repeat(300))));
    }
}
