//! The replicas of a branch talking to each other: the Raft messages over gRPC (both
//! ends: the `RaftTransport` service a replica serves, and the network openraft uses to
//! call its peers), and the `Cluster` service for membership and status.
//!
//! Raft messages travel as bincode-encoded openraft requests inside a protobuf
//! envelope: both ends run the same corebank version, and openraft's types already
//! carry serde. Peers authenticate like any caller and need the `admin` scope: under
//! TLS with their node certificates (mutual TLS), otherwise with an API key.

use std::sync::Arc;
use std::time::Duration;

use corebank_client::{AuthChannel, ClientConfig, TlsSettings};
use corebank_node::openraft::BasicNode;
use corebank_node::openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use corebank_node::openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use corebank_node::openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use corebank_node::{MembershipError, Node, TypeConfig};
use corebank_proto::v1::{
    self, cluster_server, raft_transport_client::RaftTransportClient, raft_transport_server,
};
use corebank_proto::{ApiError, ErrorCode};
use corebank_security::{Scope, Secret};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::{Request, Response, Status};

use crate::auth::Gate;
use crate::errors;

/// The largest Raft message: a few log entries of whole batches (about 1 MiB each), or
/// a snapshot chunk.
pub const RAFT_MESSAGE_BYTES_MAX: usize = 64 << 20;
/// How long connecting to a peer may take before the attempt counts as unreachable.
const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Status> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|error| Status::internal(format!("cannot encode a Raft message: {error}")))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Status> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(value, _)| value)
        .map_err(|error| {
            errors::status(
                ApiError::new(
                    ErrorCode::InvalidArgument,
                    format!("the Raft message does not decode: {error}"),
                )
                .with_field("payload"),
            )
        })
}

// ------------------------------------------------------------------ serving side

/// The `RaftTransport` service: hands peers' messages to this replica's Raft.
pub(crate) struct RaftTransportService {
    pub node: Arc<Node>,
    pub gate: Gate,
    pub isolation: Isolation,
}

/// A switch that cuts this replica off from its peers (both directions of Raft
/// traffic), for fault tests: what a network partition does to Raft. Clients still
/// reach the replica, which is how a test sees a minority refuse writes.
#[derive(Clone, Debug, Default)]
pub struct Isolation(Arc<std::sync::atomic::AtomicBool>);

impl Isolation {
    pub fn set(&self, isolated: bool) {
        self.0.store(isolated, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_on(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn refuse(&self) -> Result<(), Status> {
        if self.is_on() {
            return Err(Status::unavailable(
                "this replica is isolated (fault injection)",
            ));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl raft_transport_server::RaftTransport for RaftTransportService {
    async fn append_entries(
        &self,
        request: Request<v1::RaftMessage>,
    ) -> Result<Response<v1::RaftMessage>, Status> {
        self.isolation.refuse()?;
        self.gate.check(&request, Scope::Admin)?;
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&request.get_ref().payload)?;
        let result = self.node.raft().append_entries(rpc).await;
        Ok(Response::new(v1::RaftMessage {
            payload: encode(&result)?,
        }))
    }

    async fn vote(
        &self,
        request: Request<v1::RaftMessage>,
    ) -> Result<Response<v1::RaftMessage>, Status> {
        self.isolation.refuse()?;
        self.gate.check(&request, Scope::Admin)?;
        let rpc: VoteRequest<u64> = decode(&request.get_ref().payload)?;
        let result = self.node.raft().vote(rpc).await;
        Ok(Response::new(v1::RaftMessage {
            payload: encode(&result)?,
        }))
    }

    async fn install_snapshot(
        &self,
        request: Request<v1::RaftMessage>,
    ) -> Result<Response<v1::RaftMessage>, Status> {
        self.isolation.refuse()?;
        self.gate.check(&request, Scope::Admin)?;
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(&request.get_ref().payload)?;
        let result = self.node.raft().install_snapshot(rpc).await;
        Ok(Response::new(v1::RaftMessage {
            payload: encode(&result)?,
        }))
    }
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

/// `host:port`, bounded: what peers and clients dial.
fn valid_address(address: &str) -> bool {
    address.len() <= 256
        && address.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && !host.chars().any(|c| c.is_whitespace() || c == '/')
                && port.parse::<u16>().is_ok_and(|port| port > 0)
        })
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

// ------------------------------------------------------------------ calling side

/// How a replica reaches and authenticates to its peers.
#[derive(Clone, Debug, Default)]
pub struct PeerSettings {
    /// TLS to peers: the CA that signed their certificates, and this replica's own
    /// certificate and key as the client certificate (mutual TLS).
    pub tls: Option<TlsSettings>,
    /// An API key with the `admin` scope, for peers that take API keys.
    pub api_key: Option<Secret<String>>,
    /// Fault injection: while on, no Raft message leaves or enters.
    pub isolation: Isolation,
}

/// The network openraft uses to call the other replicas over gRPC.
#[derive(Clone, Debug)]
pub struct GrpcNetwork {
    settings: Arc<PeerSettings>,
}

impl GrpcNetwork {
    pub fn new(settings: PeerSettings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for GrpcNetwork {
    type Network = GrpcPeer;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> GrpcPeer {
        GrpcPeer {
            target,
            address: node.addr.clone(),
            settings: Arc::clone(&self.settings),
            channel: None,
        }
    }
}

/// One peer, connected on first use and again after a failure.
pub struct GrpcPeer {
    target: u64,
    address: String,
    settings: Arc<PeerSettings>,
    channel: Option<AuthChannel>,
}

impl std::fmt::Debug for GrpcPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcPeer")
            .field("target", &self.target)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// A failed call to a peer, before it is shaped into the error type of each method.
enum CallError {
    /// Not connected or no answer: openraft backs off before the next attempt.
    Unreachable(std::io::Error),
    /// The call reached the peer but failed in transport or decoding.
    Network(std::io::Error),
}

impl CallError {
    fn into_rpc<E: std::error::Error>(self) -> RPCError<u64, BasicNode, E> {
        match self {
            Self::Unreachable(error) => RPCError::Unreachable(Unreachable::new(&error)),
            Self::Network(error) => RPCError::Network(NetworkError::new(&error)),
        }
    }
}

impl GrpcPeer {
    async fn client(&mut self) -> Result<RaftTransportClient<AuthChannel>, CallError> {
        if self.channel.is_none() {
            let scheme = if self.settings.tls.is_some() {
                "https"
            } else {
                "http"
            };
            let mut config = ClientConfig::new(format!("{scheme}://{}", self.address))
                .with_connect_timeout(PEER_CONNECT_TIMEOUT);
            if let Some(tls) = &self.settings.tls {
                config = config.with_tls(tls.clone());
            }
            if let Some(key) = &self.settings.api_key {
                config = config.with_api_key(key.expose().clone());
            }
            let channel = corebank_client::connect_channel(&config)
                .await
                .map_err(|error| {
                    CallError::Unreachable(std::io::Error::other(format!(
                        "replica {} at {}: {error}",
                        self.target, self.address
                    )))
                })?;
            self.channel = Some(channel);
        }
        let Some(channel) = self.channel.clone() else {
            return Err(CallError::Unreachable(std::io::Error::other(
                "no connection",
            )));
        };
        Ok(RaftTransportClient::new(channel)
            .max_decoding_message_size(RAFT_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(RAFT_MESSAGE_BYTES_MAX))
    }

    /// Sends one message and decodes the peer's `Result<response, error>`.
    async fn call<Q, P, E>(
        &mut self,
        method: Method,
        rpc: &Q,
        option: &RPCOption,
    ) -> Result<Result<P, E>, CallError>
    where
        Q: Serialize,
        P: DeserializeOwned,
        E: DeserializeOwned,
    {
        if self.settings.isolation.is_on() {
            return Err(CallError::Unreachable(std::io::Error::other(
                "this replica is isolated (fault injection)",
            )));
        }
        let payload = bincode::serde::encode_to_vec(rpc, bincode::config::standard())
            .map_err(|error| CallError::Network(std::io::Error::other(error)))?;
        let mut client = self.client().await?;
        let mut request = Request::new(v1::RaftMessage { payload });
        request.set_timeout(option.hard_ttl());
        let call = async {
            match method {
                Method::AppendEntries => client.append_entries(request).await,
                Method::Vote => client.vote(request).await,
                Method::InstallSnapshot => client.install_snapshot(request).await,
            }
        };
        let response = match tokio::time::timeout(option.hard_ttl(), call).await {
            Ok(Ok(response)) => response,
            Ok(Err(status)) => {
                let error = std::io::Error::other(format!(
                    "replica {} at {}: {} ({:?})",
                    self.target,
                    self.address,
                    status.message(),
                    status.code()
                ));
                return Err(match status.code() {
                    tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                        // Reconnect next time: the peer may have restarted elsewhere.
                        self.channel = None;
                        CallError::Unreachable(error)
                    }
                    _ => CallError::Network(error),
                });
            }
            Err(_) => {
                return Err(CallError::Unreachable(std::io::Error::other(format!(
                    "replica {} at {} did not answer within {} ms",
                    self.target,
                    self.address,
                    option.hard_ttl().as_millis()
                ))));
            }
        };
        bincode::serde::decode_from_slice(&response.get_ref().payload, bincode::config::standard())
            .map(|(value, _)| value)
            .map_err(|error| CallError::Network(std::io::Error::other(error)))
    }
}

#[derive(Clone, Copy)]
enum Method {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

impl RaftNetwork<TypeConfig> for GrpcPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let target = self.target;
        match self.call(Method::AppendEntries, &rpc, &option).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(RPCError::RemoteError(RemoteError::new(target, error))),
            Err(error) => Err(error.into_rpc()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        let target = self.target;
        match self.call(Method::InstallSnapshot, &rpc, &option).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(RPCError::RemoteError(RemoteError::new(target, error))),
            Err(error) => Err(error.into_rpc()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let target = self.target;
        match self.call(Method::Vote, &rpc, &option).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(RPCError::RemoteError(RemoteError::new(target, error))),
            Err(error) => Err(error.into_rpc()),
        }
    }
}
