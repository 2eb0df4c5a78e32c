//! The serving side: the `RaftTransport` service hands peers' messages to the local Raft.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use corebank_proto::v1::{self, raft_transport_server};
use corebank_proto::{ApiError, ErrorCode};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::{Request, Response, Status};

use crate::{RAFT_MESSAGE_BYTES_MAX, TransportTypeConfig};

/// Decides whether a caller may send Raft messages to this replica: `Ok(())`, or the
/// `unauthenticated` / `permission_denied` status to answer with. Peers need the
/// `admin` scope (a replica's node certificate under mutual TLS, or an admin API key).
pub type AuthorizePeer = Arc<dyn Fn(&Request<v1::RaftMessage>) -> Result<(), Status> + Send + Sync>;

/// An [`AuthorizePeer`] that lets every caller through: only for tests and for a group
/// whose callers are checked elsewhere.
pub fn allow_all() -> AuthorizePeer {
    Arc::new(|_| Ok(()))
}

/// A switch that cuts this replica off from its peers (both directions of Raft
/// traffic), for fault tests: what a network partition does to Raft. Clients still
/// reach the replica, which is how a test sees a minority refuse writes. Clones share
/// the switch.
#[derive(Clone, Debug, Default)]
pub struct Isolation(Arc<AtomicBool>);

impl Isolation {
    pub fn set(&self, isolated: bool) {
        self.0.store(isolated, Ordering::SeqCst);
    }

    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst)
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

/// A status for an [`ApiError`], counted by code (as every corebank server counts them).
fn status(error: ApiError) -> Status {
    metrics::counter!("corebank_rpc_errors_total", "code" => error.code.as_str()).increment(1);
    error.to_status()
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Status> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|error| Status::internal(format!("cannot encode a Raft message: {error}")))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Status> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(value, _)| value)
        .map_err(|error| {
            status(
                ApiError::new(
                    ErrorCode::InvalidArgument,
                    format!("the Raft message does not decode: {error}"),
                )
                .with_field("payload"),
            )
        })
}

/// The `RaftTransport` service of one replica.
pub struct RaftTransportService<C: TransportTypeConfig> {
    raft: openraft::Raft<C>,
    authorize: AuthorizePeer,
    isolation: Isolation,
}

impl<C: TransportTypeConfig> std::fmt::Debug for RaftTransportService<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftTransportService")
            .field("isolation", &self.isolation)
            .finish_non_exhaustive()
    }
}

impl<C: TransportTypeConfig> RaftTransportService<C> {
    /// Serves `raft` to callers that `authorize` accepts, unless `isolation` is on.
    pub fn new(raft: openraft::Raft<C>, authorize: AuthorizePeer, isolation: Isolation) -> Self {
        Self {
            raft,
            authorize,
            isolation,
        }
    }

    /// The tonic server, taking and sending messages up to
    /// [`RAFT_MESSAGE_BYTES_MAX`].
    pub fn into_server(self) -> raft_transport_server::RaftTransportServer<Self> {
        raft_transport_server::RaftTransportServer::new(self)
            .max_decoding_message_size(RAFT_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(RAFT_MESSAGE_BYTES_MAX)
    }

    fn admit(&self, request: &Request<v1::RaftMessage>) -> Result<(), Status> {
        self.isolation.refuse()?;
        (self.authorize)(request)
    }
}

#[tonic::async_trait]
impl<C: TransportTypeConfig> raft_transport_server::RaftTransport for RaftTransportService<C> {
    async fn append_entries(
        &self,
        request: Request<v1::RaftMessage>,
    ) -> Result<Response<v1::RaftMessage>, Status> {
        self.admit(&request)?;
        let rpc: AppendEntriesRequest<C> = decode(&request.get_ref().payload)?;
        let result = self.raft.append_entries(rpc).await;
        Ok(Response::new(v1::RaftMessage {
            payload: encode(&result)?,
        }))
    }

    async fn vote(
        &self,
        request: Request<v1::RaftMessage>,
    ) -> Result<Response<v1::RaftMessage>, Status> {
        self.admit(&request)?;
        let rpc: VoteRequest<u64> = decode(&request.get_ref().payload)?;
        let result = self.raft.vote(rpc).await;
        Ok(Response::new(v1::RaftMessage {
            payload: encode(&result)?,
        }))
    }

    async fn install_snapshot(
        &self,
        request: Request<v1::RaftMessage>,
    ) -> Result<Response<v1::RaftMessage>, Status> {
        self.admit(&request)?;
        let rpc: InstallSnapshotRequest<C> = decode(&request.get_ref().payload)?;
        let result = self.raft.install_snapshot(rpc).await;
        Ok(Response::new(v1::RaftMessage {
            payload: encode(&result)?,
        }))
    }
}
