//! [`RegistryClient`]: the registry from a branch, a gateway or an app.
//!
//! - **Several addresses.** The registry is a Raft group: the client tries its
//!   addresses in turn, moves on from one that cannot be reached, is unavailable or
//!   does not know the leader, and follows a `not_leader` answer to the leader it
//!   names. The last address that answered is tried first next time.
//! - **Retries.** Every call is bounded by [`ClientConfig::total_timeout`] and
//!   [`RegistryClientConfig::attempts_max`]; each attempt by
//!   [`ClientConfig::request_timeout`]. All calls but RemoveBranchReplica are
//!   repeated after an unknown outcome (a timeout, a broken connection): they are
//!   idempotent (registering, updating or adding the same thing again changes
//!   nothing; a heartbeat again only refreshes the time). RemoveBranchReplica is
//!   repeated only when the registry did nothing.
//! - **Route cache.** [`resolve`](RegistryClient::resolve) caches the route of each
//!   branch for [`RegistryClientConfig::cache_ttl`]; a caller that finds the route
//!   wrong (a branch replica answers `not_leader`) calls
//!   [`note_leader`](RegistryClient::note_leader) or
//!   [`invalidate_branch`](RegistryClient::invalidate_branch).
//!
//! Errors are [`ClientError`]s, as for the branch client.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use corebank_account_number::{ACCOUNT_ID_LIMIT, AccountNumber, BranchCode};
use corebank_client::{AuthChannel, ClientConfig, ClientError, connect_channel};
use corebank_identity::{
    IdentityAnswer, IdentityCommand, IdentityError, IdentityOutcome, IdentityQuery,
};
use corebank_proto::convert::u128_field;
use corebank_proto::v1::identity_client::IdentityClient as GrpcIdentityClient;
use corebank_proto::v1::registry_client::RegistryClient as GrpcRegistryClient;
use corebank_proto::v1::{self, resolve_account_request};
use corebank_proto::{ApiError, ErrorCode};
use tonic::{Code, Response, Status};

use crate::cache::RouteCache;
use crate::directory::{NodeId, ReplicaAddress};
use crate::error::IDENTITY_FIELD;
use crate::heartbeat::{HeartbeatTarget, ReplicaReport};
use crate::identity_service;
use crate::view::{AccountRoute, BranchView, InvalidView};

/// The most registry addresses configured.
pub const REGISTRY_ENDPOINTS_MAX: usize = 8;
/// The most addresses learned from `not_leader` answers, beyond the configured ones.
pub const LEARNED_ENDPOINTS_MAX: usize = 8;
/// The default time to live of a cached route.
pub const CACHE_TTL_DEFAULT: Duration = Duration::from_secs(30);
/// The default most attempts of one call, redirections included.
pub const ATTEMPTS_MAX_DEFAULT: u32 = 6;
/// The most pages ListBranches may take to list every branch (10,000 branches in
/// pages of 1,000, and room to spare).
const LIST_PAGES_MAX: usize = 20;
/// The largest answer the client decodes (a page of 1,000 branches is ~2.5 MB).
const RESPONSE_BYTES_MAX: usize = 8 << 20;
/// The pause after every address has failed once, doubled each round.
const ROUND_PAUSE_MIN: Duration = Duration::from_millis(50);
const ROUND_PAUSE_MAX: Duration = Duration::from_secs(1);

/// The identity state's refusal inside an error of
/// [`RegistryClient::identity_execute`]: `Some` only for an API error marked as the
/// identity state's (field `identity`, reason an identity code), rebuilt with its
/// code and sentence; `None` for any other failure (transport, `not_leader`
/// after every attempt, credentials...).
pub fn identity_error(error: &ClientError) -> Option<IdentityError> {
    match error {
        ClientError::Api(api) if api.field == IDENTITY_FIELD => {
            IdentityError::from_code(&api.reason, &api.message)
        }
        _ => None,
    }
}

/// How to reach the registry.
#[derive(Clone, Debug)]
pub struct RegistryClientConfig {
    /// The registry replicas' addresses (1 to [`REGISTRY_ENDPOINTS_MAX`]), as for
    /// [`ClientConfig::endpoint`].
    pub endpoints: Vec<String>,
    /// TLS, API key and timeouts, shared by every address (its `endpoint` is
    /// ignored; its batching and read-consistency settings do not apply).
    pub connection: ClientConfig,
    /// How long a resolved route is used without asking again. Zero disables the
    /// cache.
    pub cache_ttl: Duration,
    /// The most attempts of one call, redirections included (at least 1).
    pub attempts_max: u32,
}

impl RegistryClientConfig {
    /// The registry at `endpoints`, plain text, no API key, default timeouts.
    pub fn new<I: IntoIterator<Item = E>, E: Into<String>>(endpoints: I) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            connection: ClientConfig::new(String::new()),
            cache_ttl: CACHE_TTL_DEFAULT,
            attempts_max: ATTEMPTS_MAX_DEFAULT,
        }
    }

    /// Sets TLS, API key and timeouts.
    #[must_use]
    pub fn with_connection(mut self, connection: ClientConfig) -> Self {
        self.connection = connection;
        self
    }

    /// Sets the cache's time to live.
    #[must_use]
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Sets the most attempts of one call.
    #[must_use]
    pub fn with_attempts_max(mut self, attempts_max: u32) -> Self {
        self.attempts_max = attempts_max;
        self
    }
}

/// The registry's answer to a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatAck {
    /// The branch's leader on record afterwards, when one is known.
    pub leader: Option<ReplicaAddress>,
    /// Its term.
    pub leader_term: u64,
    /// The registry time recorded for the heartbeat.
    pub at_unix_ms: u64,
    /// The registry's health window.
    pub heartbeat_window_ms: u64,
}

/// Whether a call may be repeated after an attempt whose outcome is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Repeat {
    /// Idempotent: always.
    Always,
    /// Only when the registry said it did nothing.
    IfNothingApplied,
}

/// What a failed attempt means for the next.
enum Next {
    /// Another replica leads: go there.
    Redirect(String, ClientError),
    /// Try another address; `unknown` when the attempt may have been applied,
    /// `broken` when the connection should be dropped.
    Another {
        error: ClientError,
        unknown: bool,
        broken: bool,
    },
    /// Give up with this error.
    Stop(ClientError),
}

#[derive(Debug)]
struct Endpoint {
    address: String,
    channel: Option<AuthChannel>,
}

#[derive(Debug)]
struct Endpoints {
    list: Vec<Endpoint>,
    /// How many of `list` were configured (the rest were learned).
    configured: usize,
    /// The index to try first.
    current: usize,
}

#[derive(Debug)]
struct Inner {
    config: RegistryClientConfig,
    endpoints: Mutex<Endpoints>,
    cache: Mutex<RouteCache>,
}

/// A client of the registry. Cheap to clone; clones share connections and cache.
#[derive(Clone, Debug)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing in these critical sections can panic halfway through a change.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `host:port` of an endpoint, without its scheme or a trailing slash.
fn bare_address(endpoint: &str) -> &str {
    endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .unwrap_or(endpoint)
        .trim_end_matches('/')
}

fn same_address(a: &str, b: &str) -> bool {
    bare_address(a) == bare_address(b)
}

fn invalid_response(error: InvalidView) -> ClientError {
    ClientError::InvalidResponse { message: error.0 }
}

fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Classifies a failed attempt.
fn classify(status: &Status, endpoint: &str) -> Next {
    if let Some(error) = ApiError::from_status(status) {
        return match (error.code, error.leader.clone()) {
            // The registry leader stepped down with the call in flight: it may have
            // been applied, so only idempotent calls go on (to another replica).
            (ErrorCode::NotLeader, _) if error.reason == "outcome_unknown" => Next::Another {
                error: ClientError::Api(error),
                unknown: true,
                broken: false,
            },
            (ErrorCode::NotLeader, Some(leader)) => Next::Redirect(leader, ClientError::Api(error)),
            (ErrorCode::NotLeader | ErrorCode::Unavailable | ErrorCode::BusyRetry, _) => {
                Next::Another {
                    error: ClientError::Api(error),
                    unknown: false,
                    broken: false,
                }
            }
            (ErrorCode::Unauthenticated, _) => Next::Stop(ClientError::Unauthenticated {
                message: error.message,
            }),
            (ErrorCode::PermissionDenied, _) => Next::Stop(ClientError::PermissionDenied {
                message: error.message,
            }),
            _ => Next::Stop(ClientError::Api(error)),
        };
    }
    let message = status.message().to_owned();
    match status.code() {
        Code::Unavailable | Code::Cancelled | Code::Unknown => Next::Another {
            error: ClientError::Transport {
                endpoint: endpoint.to_owned(),
                detail: if message.is_empty() {
                    format!("{:?}", status.code())
                } else {
                    message
                },
            },
            unknown: true,
            broken: true,
        },
        Code::DeadlineExceeded => Next::Another {
            error: ClientError::Timeout {
                after: Duration::ZERO,
            },
            unknown: true,
            broken: false,
        },
        Code::ResourceExhausted => Next::Another {
            error: ClientError::Rpc {
                code: status.code(),
                message,
            },
            unknown: false,
            broken: false,
        },
        Code::Unauthenticated => Next::Stop(ClientError::Unauthenticated { message }),
        Code::PermissionDenied => Next::Stop(ClientError::PermissionDenied { message }),
        code => Next::Stop(ClientError::Rpc { code, message }),
    }
}

impl RegistryClient {
    /// A client of the registry at `config.endpoints`. Connects lazily, on the
    /// first call. Fails only for an unusable configuration.
    pub fn new(config: RegistryClientConfig) -> Result<Self, ClientError> {
        if config.endpoints.is_empty() || config.endpoints.len() > REGISTRY_ENDPOINTS_MAX {
            return Err(ClientError::Config {
                field: "endpoints",
                message: format!(
                    "give 1 to {REGISTRY_ENDPOINTS_MAX} registry addresses, not {}",
                    config.endpoints.len()
                ),
            });
        }
        if let Some(blank) = config.endpoints.iter().find(|e| e.trim().is_empty()) {
            return Err(ClientError::Config {
                field: "endpoints",
                message: format!("{blank:?} is not an address"),
            });
        }
        if config.attempts_max == 0 {
            return Err(ClientError::Config {
                field: "attempts_max",
                message: "at least one attempt".to_owned(),
            });
        }
        let list: Vec<Endpoint> = config
            .endpoints
            .iter()
            .map(|address| Endpoint {
                address: address.trim().to_owned(),
                channel: None,
            })
            .collect();
        let configured = list.len();
        Ok(Self {
            inner: Arc::new(Inner {
                endpoints: Mutex::new(Endpoints {
                    list,
                    configured,
                    current: 0,
                }),
                cache: Mutex::new(RouteCache::new(config.cache_ttl)),
                config,
            }),
        })
    }

    /// [`new`](Self::new), then connects to the first registry address that
    /// answers (a ListCurrencies call), so that a wrong configuration shows at once.
    pub async fn connect(config: RegistryClientConfig) -> Result<Self, ClientError> {
        let client = Self::new(config)?;
        client.currencies().await?;
        Ok(client)
    }

    /// The address the next call tries first.
    pub fn current_endpoint(&self) -> String {
        let endpoints = lock(&self.inner.endpoints);
        endpoints
            .list
            .get(endpoints.current)
            .map(|e| e.address.clone())
            .unwrap_or_default()
    }

    fn current(&self) -> (usize, String) {
        let endpoints = lock(&self.inner.endpoints);
        let index = endpoints.current;
        let address = endpoints
            .list
            .get(index)
            .map(|e| e.address.clone())
            .unwrap_or_default();
        (index, address)
    }

    fn endpoint_count(&self) -> usize {
        lock(&self.inner.endpoints).list.len()
    }

    /// Moves on from `index` (if it is still the current one).
    fn advance(&self, index: usize, drop_channel: bool) {
        let mut endpoints = lock(&self.inner.endpoints);
        if drop_channel && let Some(endpoint) = endpoints.list.get_mut(index) {
            endpoint.channel = None;
        }
        if endpoints.current == index {
            endpoints.current = (index + 1) % endpoints.list.len().max(1);
        }
    }

    /// Makes `leader` the current address, learning it when it is new (a replica
    /// names the leader as `host:port`; the same address configured with a scheme is
    /// the same endpoint).
    fn redirect(&self, leader: &str) {
        let mut endpoints = lock(&self.inner.endpoints);
        if let Some(index) = endpoints
            .list
            .iter()
            .position(|e| same_address(&e.address, leader))
        {
            endpoints.current = index;
            return;
        }
        let endpoint = Endpoint {
            address: leader.to_owned(),
            channel: None,
        };
        let learned = endpoints.list.len() - endpoints.configured;
        let index = if learned < LEARNED_ENDPOINTS_MAX {
            endpoints.list.push(endpoint);
            endpoints.list.len() - 1
        } else {
            // Full: the newest learned address replaces the last one learned.
            let last = endpoints.list.len() - 1;
            if let Some(slot) = endpoints.list.get_mut(last) {
                *slot = endpoint;
            }
            last
        };
        endpoints.current = index;
    }

    async fn channel(&self, index: usize, address: &str) -> Result<AuthChannel, ClientError> {
        if let Some(channel) = lock(&self.inner.endpoints)
            .list
            .get(index)
            .and_then(|e| e.channel.clone())
        {
            return Ok(channel);
        }
        let mut config = self.inner.config.connection.clone();
        address.clone_into(&mut config.endpoint);
        let channel = connect_channel(&config).await?;
        let mut endpoints = lock(&self.inner.endpoints);
        if let Some(endpoint) = endpoints.list.get_mut(index)
            && endpoint.address == address
        {
            endpoint.channel = Some(channel.clone());
        }
        Ok(channel)
    }

    /// One call of the Registry service (see [`Self::call_channel`]).
    async fn call<T, F, Fut>(&self, repeat: Repeat, f: F) -> Result<T, ClientError>
    where
        F: Fn(GrpcRegistryClient<AuthChannel>, Duration) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        self.call_channel(repeat, |channel, timeout| {
            f(
                GrpcRegistryClient::new(channel).max_decoding_message_size(RESPONSE_BYTES_MAX),
                timeout,
            )
        })
        .await
    }

    /// Applies an identity command through the registry's Raft log (with the same
    /// failover and `not_leader` redirection as every call) and returns what the
    /// identity state did. A refusal by the identity state (nothing changed) is a
    /// [`ClientError::Api`] from which [`identity_error`] rebuilds the
    /// [`IdentityError`]. Not repeated after an unknown outcome: repeating a
    /// rotation would look like the reuse of a refresh token.
    pub async fn identity_execute(
        &self,
        command: &IdentityCommand,
    ) -> Result<IdentityOutcome, ClientError> {
        let bytes =
            identity_service::encode(command).map_err(|message| ClientError::InvalidInput {
                field: "command".to_owned(),
                reason: "unencodable",
                message,
            })?;
        let reply = self
            .call_channel(Repeat::IfNothingApplied, |channel, timeout| {
                let message = v1::IdentityExecuteRequest {
                    command: bytes.clone(),
                };
                async move {
                    GrpcIdentityClient::new(channel)
                        .max_decoding_message_size(RESPONSE_BYTES_MAX)
                        .execute(request(message, timeout))
                        .await
                }
            })
            .await?;
        identity_service::decode(&reply.outcome).map_err(|message| ClientError::InvalidResponse {
            message: format!("an identity outcome that does not decode: {message}"),
        })
    }

    /// Reads the identity state (as the registry's other reads: on the leader).
    pub async fn identity_query(
        &self,
        query: &IdentityQuery,
    ) -> Result<IdentityAnswer, ClientError> {
        let bytes =
            identity_service::encode(query).map_err(|message| ClientError::InvalidInput {
                field: "query".to_owned(),
                reason: "unencodable",
                message,
            })?;
        let reply = self
            .call_channel(Repeat::Always, |channel, timeout| {
                let message = v1::IdentityQueryRequest {
                    query: bytes.clone(),
                };
                async move {
                    GrpcIdentityClient::new(channel)
                        .max_decoding_message_size(RESPONSE_BYTES_MAX)
                        .query(request(message, timeout))
                        .await
                }
            })
            .await?;
        identity_service::decode(&reply.answer).map_err(|message| ClientError::InvalidResponse {
            message: format!("an identity answer that does not decode: {message}"),
        })
    }

    /// One call, with failover, redirection and retries (see the module docs).
    async fn call_channel<T, F, Fut>(&self, repeat: Repeat, f: F) -> Result<T, ClientError>
    where
        F: Fn(AuthChannel, Duration) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let connection = &self.inner.config.connection;
        let started = Instant::now();
        let mut last_error = None;
        let mut failures_in_round = 0usize;
        let mut redirects = 0usize;
        let mut pause = ROUND_PAUSE_MIN;
        for _ in 0..self.inner.config.attempts_max {
            let remaining = connection.total_timeout.saturating_sub(started.elapsed());
            if remaining.is_zero() {
                break;
            }
            let (index, address) = self.current();
            let attempt = async {
                let channel = self
                    .channel(index, &address)
                    .await
                    .map_err(|error| match error {
                        // The same everywhere: no use trying another address.
                        ClientError::Config { .. } => Next::Stop(error),
                        // Nothing was sent: any call may go elsewhere.
                        error => Next::Another {
                            error,
                            unknown: false,
                            broken: true,
                        },
                    })?;
                let timeout = connection.request_timeout.min(remaining);
                f(channel, timeout)
                    .await
                    .map_err(|status| classify(&status, &address))
            };
            let timeout = connection.request_timeout.min(remaining);
            let next = match tokio::time::timeout(timeout, attempt).await {
                Ok(Ok(response)) => return Ok(response.into_inner()),
                Ok(Err(next)) => next,
                Err(_) => Next::Another {
                    error: ClientError::Timeout { after: timeout },
                    unknown: true,
                    broken: true,
                },
            };
            match next {
                Next::Stop(error) => return Err(error),
                Next::Redirect(leader, error) => {
                    tracing::debug!(from = %address, to = %leader, "registry redirect");
                    self.redirect(&leader);
                    last_error = Some(error);
                    // During an election replicas may name a leader that no longer
                    // leads: beyond one redirection per address, redirections count
                    // as failures, so that such a chain pauses like any round.
                    redirects += 1;
                    if redirects <= self.endpoint_count() {
                        continue;
                    }
                }
                Next::Another {
                    error,
                    unknown,
                    broken,
                } => {
                    if unknown && repeat == Repeat::IfNothingApplied {
                        return Err(error);
                    }
                    tracing::debug!(endpoint = %address, %error, "registry attempt failed");
                    self.advance(index, broken);
                    last_error = Some(error);
                }
            }
            failures_in_round += 1;
            if failures_in_round >= self.endpoint_count() {
                failures_in_round = 0;
                let remaining = connection.total_timeout.saturating_sub(started.elapsed());
                tokio::time::sleep(pause.min(remaining)).await;
                pause = (pause * 2).min(ROUND_PAUSE_MAX);
            }
        }
        Err(last_error.unwrap_or(ClientError::Timeout {
            after: connection.total_timeout,
        }))
    }

    fn remember(&self, branch: &BranchView) {
        lock(&self.inner.cache).put(branch.clone(), Instant::now());
    }

    /// Registers a branch (see RegisterBranch); `true` when this call created it.
    pub async fn register_branch(
        &self,
        code: BranchCode,
        name: &str,
        region: &str,
        replicas: &[ReplicaAddress],
    ) -> Result<(BranchView, bool), ClientError> {
        let message = v1::RegisterBranchRequest {
            branch: u32::from(code.get()),
            name: name.to_owned(),
            region: region.to_owned(),
            replicas: replicas
                .iter()
                .map(|replica| v1::ReplicaAddress {
                    node_id: replica.node_id,
                    address: replica.address.clone(),
                })
                .collect(),
        };
        let reply = self
            .call(Repeat::Always, |mut stub, timeout| {
                let message = message.clone();
                async move { stub.register_branch(request(message, timeout)).await }
            })
            .await?;
        let branch = self.branch_of(reply.branch.as_ref())?;
        Ok((branch, reply.created))
    }

    /// Renames a branch or moves it to another region.
    pub async fn update_branch(
        &self,
        code: BranchCode,
        name: Option<&str>,
        region: Option<&str>,
    ) -> Result<BranchView, ClientError> {
        let message = v1::UpdateBranchRequest {
            branch: u32::from(code.get()),
            name: name.map(str::to_owned),
            region: region.map(str::to_owned),
        };
        let reply = self
            .call(Repeat::Always, |mut stub, timeout| {
                let message = message.clone();
                async move { stub.update_branch(request(message, timeout)).await }
            })
            .await?;
        self.branch_of(Some(&reply))
    }

    /// Adds a replica to a branch.
    pub async fn add_replica(
        &self,
        code: BranchCode,
        replica: &ReplicaAddress,
    ) -> Result<BranchView, ClientError> {
        let message = v1::AddBranchReplicaRequest {
            branch: u32::from(code.get()),
            replica: Some(v1::ReplicaAddress {
                node_id: replica.node_id,
                address: replica.address.clone(),
            }),
        };
        let reply = self
            .call(Repeat::Always, |mut stub, timeout| {
                let message = message.clone();
                async move { stub.add_branch_replica(request(message, timeout)).await }
            })
            .await?;
        self.branch_of(Some(&reply))
    }

    /// Removes a replica from a branch. Not repeated after an unknown outcome (a
    /// repeat would answer `replica_not_found`).
    pub async fn remove_replica(
        &self,
        code: BranchCode,
        node_id: NodeId,
    ) -> Result<BranchView, ClientError> {
        let message = v1::RemoveBranchReplicaRequest {
            branch: u32::from(code.get()),
            node_id,
        };
        let reply = self
            .call(Repeat::IfNothingApplied, |mut stub, timeout| async move {
                stub.remove_branch_replica(request(message, timeout)).await
            })
            .await?;
        self.branch_of(Some(&reply))
    }

    /// Sends one heartbeat for a replica.
    pub async fn heartbeat(
        &self,
        target: &HeartbeatTarget,
        report: ReplicaReport,
    ) -> Result<HeartbeatAck, ClientError> {
        let message = v1::BranchHeartbeatRequest {
            branch: u32::from(target.branch.get()),
            node_id: target.node_id,
            address: target.address.clone(),
            is_leader: report.is_leader,
            term: report.term,
            applied_index: report.applied_index,
        };
        let reply = self
            .call(Repeat::Always, |mut stub, timeout| {
                let message = message.clone();
                async move { stub.heartbeat(request(message, timeout)).await }
            })
            .await?;
        let leader = match (reply.leader_node_id, reply.leader_address.is_empty()) {
            (Some(node_id), false) => Some(ReplicaAddress::new(node_id, reply.leader_address)),
            (None, true) => None,
            _ => {
                return Err(ClientError::InvalidResponse {
                    message: "a heartbeat answer with half a leader".to_owned(),
                });
            }
        };
        Ok(HeartbeatAck {
            leader,
            leader_term: reply.leader_term,
            at_unix_ms: reply.at_unix_ms,
            heartbeat_window_ms: reply.heartbeat_window_ms,
        })
    }

    /// Every branch, ordered by code (all pages), or those of one region.
    pub async fn list_branches(
        &self,
        region: Option<&str>,
    ) -> Result<Vec<BranchView>, ClientError> {
        let mut branches = Vec::new();
        let mut start_after = None;
        for _ in 0..LIST_PAGES_MAX {
            let message = v1::ListBranchesRequest {
                limit: 0,
                start_after,
                region: region.unwrap_or_default().to_owned(),
            };
            let reply = self
                .call(Repeat::Always, |mut stub, timeout| {
                    let message = message.clone();
                    async move { stub.list_branches(request(message, timeout)).await }
                })
                .await?;
            for info in &reply.branches {
                let branch = BranchView::try_from(info).map_err(invalid_response)?;
                if start_after.is_some_and(|after| u32::from(branch.code.get()) <= after)
                    || branches
                        .last()
                        .is_some_and(|last: &BranchView| last.code >= branch.code)
                {
                    return Err(ClientError::InvalidResponse {
                        message: "ListBranches pages are not in code order".to_owned(),
                    });
                }
                self.remember(&branch);
                branches.push(branch);
            }
            match reply.next_start_after {
                None => return Ok(branches),
                Some(next) if start_after.is_none_or(|after| next > after) => {
                    start_after = Some(next);
                }
                Some(_) => {
                    return Err(ClientError::InvalidResponse {
                        message: "ListBranches does not move forward".to_owned(),
                    });
                }
            }
        }
        Err(ClientError::InvalidResponse {
            message: format!("ListBranches took more than {LIST_PAGES_MAX} pages"),
        })
    }

    /// One branch (fresh from the registry; it refreshes the cache).
    pub async fn get_branch(&self, code: BranchCode) -> Result<BranchView, ClientError> {
        let message = v1::GetBranchRequest {
            branch: u32::from(code.get()),
        };
        let reply = self
            .call(Repeat::Always, |mut stub, timeout| async move {
                stub.get_branch(request(message, timeout)).await
            })
            .await?;
        self.branch_of(Some(&reply))
    }

    fn branch_of(&self, info: Option<&v1::BranchInfo>) -> Result<BranchView, ClientError> {
        let info = info.ok_or_else(|| ClientError::InvalidResponse {
            message: "the answer holds no branch".to_owned(),
        })?;
        let branch = BranchView::try_from(info).map_err(invalid_response)?;
        self.remember(&branch);
        Ok(branch)
    }

    /// Where the account with this number lives: from the cache when its branch
    /// was resolved within the time to live, otherwise from the registry. A
    /// malformed number is refused here, without a call
    /// ([`ClientError::InvalidInput`] with the account-number code as reason).
    pub async fn resolve(&self, account_number: &str) -> Result<AccountRoute, ClientError> {
        let number =
            AccountNumber::parse(account_number).map_err(|error| ClientError::InvalidInput {
                field: "account_number".to_owned(),
                reason: error.code(),
                message: error.to_string(),
            })?;
        {
            let mut cache = lock(&self.inner.cache);
            if cache.prefix() == Some(number.prefix())
                && let Some(branch) = cache.get(number.branch(), Instant::now())
            {
                return Ok(AccountRoute {
                    account_number: number,
                    account_id: number.account_id(),
                    branch,
                });
            }
        }
        self.resolve_remote(resolve_account_request::Account::AccountNumber(
            number.to_string(),
        ))
        .await
    }

    /// Where the account with this ledger id lives (1 to 10^14 - 1), from the cache
    /// when possible.
    pub async fn resolve_id(&self, account_id: u128) -> Result<AccountRoute, ClientError> {
        if account_id == 0 || account_id >= ACCOUNT_ID_LIMIT {
            let error = if account_id == 0 {
                corebank_account_number::AccountNumberError::AccountIdZero
            } else {
                corebank_account_number::AccountNumberError::AccountIdOutOfRange { id: account_id }
            };
            return Err(ClientError::InvalidInput {
                field: "account_id".to_owned(),
                reason: error.code(),
                message: error.to_string(),
            });
        }
        {
            let mut cache = lock(&self.inner.cache);
            if let Some(prefix) = cache.prefix()
                && let Ok(number) = AccountNumber::from_account_id(prefix, account_id)
                && let Some(branch) = cache.get(number.branch(), Instant::now())
            {
                return Ok(AccountRoute {
                    account_number: number,
                    account_id,
                    branch,
                });
            }
        }
        self.resolve_remote(resolve_account_request::Account::AccountId(
            u128_field(account_id).unwrap_or_default(),
        ))
        .await
    }

    async fn resolve_remote(
        &self,
        account: resolve_account_request::Account,
    ) -> Result<AccountRoute, ClientError> {
        let message = v1::ResolveAccountRequest {
            account: Some(account),
        };
        let reply = self
            .call(Repeat::Always, |mut stub, timeout| {
                let message = message.clone();
                async move { stub.resolve_account(request(message, timeout)).await }
            })
            .await?;
        let route = AccountRoute::try_from(&reply).map_err(invalid_response)?;
        let mut cache = lock(&self.inner.cache);
        cache.learn_prefix(route.account_number.prefix());
        cache.put(route.branch.clone(), Instant::now());
        Ok(route)
    }

    /// The currencies the bank holds.
    pub async fn currencies(&self) -> Result<Vec<v1::CurrencyInfo>, ClientError> {
        let reply = self
            .call(Repeat::Always, |mut stub, timeout| async move {
                stub.list_currencies(request(v1::ListCurrenciesRequest {}, timeout))
                    .await
            })
            .await?;
        Ok(reply.currencies)
    }

    /// The kinds of customer account the bank offers.
    pub async fn products(&self) -> Result<Vec<v1::ProductInfo>, ClientError> {
        let reply = self
            .call(Repeat::Always, |mut stub, timeout| async move {
                stub.list_products(request(v1::ListProductsRequest {}, timeout))
                    .await
            })
            .await?;
        Ok(reply.products)
    }

    /// Forgets the cached route of a branch: the next lookup asks the registry.
    pub fn invalidate_branch(&self, code: BranchCode) {
        lock(&self.inner.cache).invalidate(code);
    }

    /// Forgets every cached route.
    pub fn invalidate_all(&self) {
        lock(&self.inner.cache).clear();
    }

    /// Records that a replica of `code` said the leader is at `address` (in a
    /// `not_leader` answer). When the cache knows that address as a replica of the
    /// branch it becomes the leader there; otherwise the branch's cached route is
    /// dropped. Returns whether the cache was updated.
    pub fn note_leader(&self, code: BranchCode, address: &str) -> bool {
        lock(&self.inner.cache).note_leader(code, address)
    }

    /// How many branches the cache holds now.
    pub fn cached_branches(&self) -> usize {
        lock(&self.inner.cache).len()
    }
}
