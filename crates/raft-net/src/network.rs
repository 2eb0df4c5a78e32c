//! The calling side: openraft's network over the peers' `RaftTransport` services.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use corebank_client::{AuthChannel, ClientConfig, TlsSettings};
use corebank_proto::v1::{self, raft_transport_client::RaftTransportClient};
use corebank_security::Secret;
use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::Request;

use crate::{Isolation, RAFT_MESSAGE_BYTES_MAX, TransportTypeConfig};

/// How long connecting to a peer may take before the attempt counts as unreachable.
const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

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

/// The network openraft uses to call the other replicas of a group of type
/// configuration `C` over gRPC.
pub struct GrpcNetwork<C> {
    settings: Arc<PeerSettings>,
    config: PhantomData<fn() -> C>,
}

impl<C> Clone for GrpcNetwork<C> {
    fn clone(&self) -> Self {
        Self {
            settings: Arc::clone(&self.settings),
            config: PhantomData,
        }
    }
}

impl<C> std::fmt::Debug for GrpcNetwork<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcNetwork")
            .field("settings", &self.settings)
            .finish()
    }
}

impl<C> GrpcNetwork<C> {
    pub fn new(settings: PeerSettings) -> Self {
        Self {
            settings: Arc::new(settings),
            config: PhantomData,
        }
    }
}

impl<C: TransportTypeConfig> RaftNetworkFactory<C> for GrpcNetwork<C> {
    type Network = GrpcPeer<C>;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> GrpcPeer<C> {
        GrpcPeer {
            target,
            address: node.addr.clone(),
            settings: Arc::clone(&self.settings),
            channel: None,
            config: PhantomData,
        }
    }
}

/// One peer, connected on first use and again after a failure.
pub struct GrpcPeer<C> {
    target: u64,
    address: String,
    settings: Arc<PeerSettings>,
    channel: Option<AuthChannel>,
    config: PhantomData<fn() -> C>,
}

impl<C> std::fmt::Debug for GrpcPeer<C> {
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

impl<C> GrpcPeer<C> {
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

impl<C: TransportTypeConfig> RaftNetwork<C> for GrpcPeer<C> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
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
        rpc: InstallSnapshotRequest<C>,
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
