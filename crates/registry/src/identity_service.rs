//! `corebank.v1.Identity`: the gateway's door to the users, sessions, API keys and
//! account owners in the registry's replicated state ([`Directory::identity`]).
//!
//! An internal API: the payloads are bincode ([`encode`], [`decode`]) of the
//! `corebank-identity` commands, outcomes, queries and answers. Both calls need the
//! `admin` scope. Writes go through the store (the Raft log on the leader), reads
//! are served like the registry's other reads.
//!
//! [`Directory::identity`]: crate::Directory::identity

use std::sync::Arc;

use corebank_identity::{IdentityCommand, IdentityQuery};
use corebank_proto::v1::identity_server::{Identity, IdentityServer};
use corebank_proto::v1::{
    IdentityExecuteRequest, IdentityExecuteResponse, IdentityQueryRequest, IdentityQueryResponse,
};
use corebank_proto::{ApiError, ErrorCode};
use corebank_security::Scope;
use tonic::{Request, Response, Status};

use crate::auth::Authorize;
use crate::directory::{Applied, RegistryCommand};
use crate::error::CommandError;
use crate::errors;
use crate::store::RegistryStore;

/// The largest identity request: a command holds at most a password hash, 100
/// recovery-code hashes or 32 scopes.
pub const IDENTITY_REQUEST_BYTES_MAX: usize = 64 * 1024;
/// The largest payload decoded (answers included: a page of users, every API key).
pub const IDENTITY_PAYLOAD_BYTES_MAX: usize = 64 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<IDENTITY_PAYLOAD_BYTES_MAX>()
}

/// A payload: bincode 2, standard configuration (as the registry's snapshots).
pub fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| e.to_string())
}

/// Reads a payload written by [`encode`]; trailing bytes are refused.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, read): (T, usize) =
        bincode::serde::decode_from_slice(bytes, config()).map_err(|e| e.to_string())?;
    if read != bytes.len() {
        return Err(format!("{} bytes follow the payload", bytes.len() - read));
    }
    Ok(value)
}

/// The Identity service over any [`RegistryStore`].
pub struct IdentityService<S, A> {
    store: Arc<S>,
    authorize: A,
}

impl<S, A> std::fmt::Debug for IdentityService<S, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService").finish_non_exhaustive()
    }
}

impl<S: RegistryStore, A: Authorize> IdentityService<S, A> {
    /// The service over `store`, authorising calls with `authorize` (`admin`).
    pub fn new(store: Arc<S>, authorize: A) -> Self {
        Self { store, authorize }
    }

    /// The tonic server, refusing requests above [`IDENTITY_REQUEST_BYTES_MAX`].
    pub fn into_server(self) -> IdentityServer<Self> {
        IdentityServer::new(self).max_decoding_message_size(IDENTITY_REQUEST_BYTES_MAX)
    }
}

fn undecodable(what: &str, detail: &str) -> Status {
    errors::invalid_argument(
        what,
        "undecodable_payload",
        format!(
            "the {what} bytes are not a bincode-encoded identity {what} of this version: {detail}"
        ),
    )
    .into()
}

fn internal(message: String) -> Status {
    ApiError::new(ErrorCode::Internal, message).into()
}

#[tonic::async_trait]
impl<S: RegistryStore, A: Authorize> Identity for IdentityService<S, A> {
    async fn execute(
        &self,
        request: Request<IdentityExecuteRequest>,
    ) -> Result<Response<IdentityExecuteResponse>, Status> {
        self.authorize.authorize(&request, Scope::Admin)?;
        let command: IdentityCommand =
            decode(&request.get_ref().command).map_err(|detail| undecodable("command", &detail))?;
        // Malformed commands never reach the log.
        command
            .validate()
            .map_err(|error| errors::command_error(&CommandError::Identity(error)))?;
        let name = command.name();
        let applied = self
            .store
            .propose(RegistryCommand::Identity(command))
            .await
            .map_err(|error| Status::from(errors::store_error(&error)))?
            .map_err(|error| {
                tracing::debug!(
                    command = name,
                    code = error.code(),
                    "identity command refused"
                );
                Status::from(errors::command_error(&error))
            })?;
        match applied {
            Applied::Identity(outcome) => {
                let outcome = encode(&outcome)
                    .map_err(|detail| internal(format!("encoding the outcome: {detail}")))?;
                Ok(Response::new(IdentityExecuteResponse { outcome }))
            }
            other => Err(internal(format!(
                "the directory answered an identity command with {other:?}"
            ))),
        }
    }

    async fn query(
        &self,
        request: Request<IdentityQueryRequest>,
    ) -> Result<Response<IdentityQueryResponse>, Status> {
        self.authorize.authorize(&request, Scope::Admin)?;
        let query: IdentityQuery =
            decode(&request.get_ref().query).map_err(|detail| undecodable("query", &detail))?;
        let answer = self
            .store
            .read(move |directory| directory.identity().query(&query))
            .await
            .map_err(|error| Status::from(errors::store_error(&error)))?;
        let answer =
            encode(&answer).map_err(|detail| internal(format!("encoding the answer: {detail}")))?;
        Ok(Response::new(IdentityQueryResponse { answer }))
    }
}
