//! `corebank.v1.Registry`: the tonic service over any [`RegistryStore`].
//!
//! Every call is authorised first ([`RegistryRpc::scope`]); requests are checked
//! before anything is proposed, so that malformed commands never reach the log;
//! heartbeats and registrations are stamped with the registry's [`Clock`].

use std::sync::Arc;

use corebank_account_number::{AccountNumber, BankPrefix, BranchCode};
use corebank_proto::convert::u128_of;
use corebank_proto::v1::registry_server::{Registry, RegistryServer};
use corebank_proto::v1::{self, resolve_account_request};
use corebank_proto::{ApiError, ErrorCode};
use tonic::{Request, Response, Status};

use crate::auth::{Authorize, RegistryRpc};
use crate::catalog;
use crate::clock::{Clock, SystemClock};
use crate::directory::{Applied, Branch, HeartbeatReport, RegistryCommand, ReplicaAddress};
use crate::errors;
use crate::store::RegistryStore;
use crate::view::{AccountRoute, BranchView, product_to_proto};

/// The default health window: a replica is healthy while its last heartbeat is at
/// most 10 s old.
pub const HEARTBEAT_WINDOW_MS_DEFAULT: u64 = 10_000;
/// The most branches in one ListBranches page (and the default).
pub const LIST_BRANCHES_LIMIT_MAX: u32 = 1_000;
/// The largest request the registry decodes: its requests are small.
pub const REQUEST_BYTES_MAX: usize = 64 * 1024;

/// How the service behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The country and bank code of the bank's account numbers: ResolveAccount
    /// refuses numbers of another bank (`unexpected_prefix`) and writes ids out
    /// under it.
    pub bank_prefix: BankPrefix,
    /// A replica is healthy while its last heartbeat is at most this old.
    pub heartbeat_window_ms: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            bank_prefix: BankPrefix::COREBANK,
            heartbeat_window_ms: HEARTBEAT_WINDOW_MS_DEFAULT,
        }
    }
}

/// The Registry service.
pub struct RegistryService<S, A> {
    store: Arc<S>,
    authorize: A,
    clock: Arc<dyn Clock>,
    config: ServiceConfig,
}

impl<S, A> std::fmt::Debug for RegistryService<S, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: RegistryStore, A: Authorize> RegistryService<S, A> {
    /// A service over `store`, authorising calls with `authorize`, on the system
    /// clock, with the default configuration.
    pub fn new(store: Arc<S>, authorize: A) -> Self {
        Self {
            store,
            authorize,
            clock: Arc::new(SystemClock),
            config: ServiceConfig::default(),
        }
    }

    /// Uses `clock` for heartbeat times and health.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `config`.
    #[must_use]
    pub fn with_config(mut self, config: ServiceConfig) -> Self {
        self.config = config;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The tonic server, refusing requests above [`REQUEST_BYTES_MAX`].
    pub fn into_server(self) -> RegistryServer<Self> {
        RegistryServer::new(self).max_decoding_message_size(REQUEST_BYTES_MAX)
    }

    fn check<T>(&self, request: &Request<T>, rpc: RegistryRpc) -> Result<(), Status> {
        self.authorize.authorize(request, rpc.scope()).map(|_| ())
    }

    /// Validates, proposes, and turns every failure into an API error.
    async fn propose(&self, command: RegistryCommand) -> Result<Applied, Status> {
        command
            .validate()
            .map_err(|error| errors::command_error(&error))?;
        self.store
            .propose(command)
            .await
            .map_err(|error| errors::store_error(&error))?
            .map_err(|error| Status::from(errors::command_error(&error)))
    }

    async fn read<T: Send>(
        &self,
        f: impl FnOnce(&crate::Directory) -> T + Send,
    ) -> Result<T, Status> {
        self.store
            .read(f)
            .await
            .map_err(|error| errors::store_error(&error).into())
    }

    fn view(&self, branch: &Branch, now_unix_ms: u64) -> v1::BranchInfo {
        v1::BranchInfo::from(&BranchView::new(
            branch,
            now_unix_ms,
            self.config.heartbeat_window_ms,
        ))
    }

    fn updated(&self, applied: Applied) -> Result<Response<v1::BranchInfo>, Status> {
        match applied {
            Applied::Updated { branch, .. } => {
                Ok(Response::new(self.view(&branch, self.clock.now_unix_ms())))
            }
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(applied: &Applied) -> Status {
    ApiError::new(
        ErrorCode::Internal,
        format!("the directory answered with the wrong outcome: {applied:?}"),
    )
    .into()
}

fn replica_address(replica: &v1::ReplicaAddress) -> ReplicaAddress {
    ReplicaAddress::new(replica.node_id, replica.address.clone())
}

#[tonic::async_trait]
impl<S: RegistryStore, A: Authorize> Registry for RegistryService<S, A> {
    async fn register_branch(
        &self,
        request: Request<v1::RegisterBranchRequest>,
    ) -> Result<Response<v1::RegisterBranchResponse>, Status> {
        self.check(&request, RegistryRpc::RegisterBranch)?;
        let request = request.into_inner();
        let code = errors::branch_code(request.branch, "branch")?;
        let now = self.clock.now_unix_ms();
        let applied = self
            .propose(RegistryCommand::RegisterBranch {
                code,
                name: request.name,
                region: request.region,
                replicas: request.replicas.iter().map(replica_address).collect(),
                at_unix_ms: now,
            })
            .await?;
        match applied {
            Applied::Registered { branch, created } => {
                tracing::info!(branch = %code, created, "branch registered");
                Ok(Response::new(v1::RegisterBranchResponse {
                    branch: Some(self.view(&branch, now)),
                    created,
                }))
            }
            other => Err(unexpected(&other)),
        }
    }

    async fn update_branch(
        &self,
        request: Request<v1::UpdateBranchRequest>,
    ) -> Result<Response<v1::BranchInfo>, Status> {
        self.check(&request, RegistryRpc::UpdateBranch)?;
        let request = request.into_inner();
        let code = errors::branch_code(request.branch, "branch")?;
        let applied = self
            .propose(RegistryCommand::UpdateBranch {
                code,
                name: request.name,
                region: request.region,
            })
            .await?;
        self.updated(applied)
    }

    async fn add_branch_replica(
        &self,
        request: Request<v1::AddBranchReplicaRequest>,
    ) -> Result<Response<v1::BranchInfo>, Status> {
        self.check(&request, RegistryRpc::AddBranchReplica)?;
        let request = request.into_inner();
        let code = errors::branch_code(request.branch, "branch")?;
        let replica = request
            .replica
            .as_ref()
            .map(replica_address)
            .ok_or_else(|| errors::invalid_argument("replica", "missing", "give the replica"))?;
        let applied = self
            .propose(RegistryCommand::AddReplica { code, replica })
            .await?;
        self.updated(applied)
    }

    async fn remove_branch_replica(
        &self,
        request: Request<v1::RemoveBranchReplicaRequest>,
    ) -> Result<Response<v1::BranchInfo>, Status> {
        self.check(&request, RegistryRpc::RemoveBranchReplica)?;
        let request = request.into_inner();
        let code = errors::branch_code(request.branch, "branch")?;
        let applied = self
            .propose(RegistryCommand::RemoveReplica {
                code,
                node_id: request.node_id,
            })
            .await?;
        self.updated(applied)
    }

    async fn heartbeat(
        &self,
        request: Request<v1::BranchHeartbeatRequest>,
    ) -> Result<Response<v1::BranchHeartbeatResponse>, Status> {
        self.check(&request, RegistryRpc::Heartbeat)?;
        let request = request.into_inner();
        let code = errors::branch_code(request.branch, "branch")?;
        let at_unix_ms = self.clock.now_unix_ms();
        let applied = self
            .propose(RegistryCommand::Heartbeat(HeartbeatReport {
                code,
                node_id: request.node_id,
                address: request.address,
                is_leader: request.is_leader,
                term: request.term,
                applied_index: request.applied_index,
                at_unix_ms,
            }))
            .await?;
        match applied {
            Applied::Heartbeat {
                leader,
                leader_address,
            } => Ok(Response::new(v1::BranchHeartbeatResponse {
                leader_node_id: leader.map(|leader| leader.node_id),
                leader_address: leader_address.unwrap_or_default(),
                leader_term: leader.map_or(0, |leader| leader.term),
                at_unix_ms,
                heartbeat_window_ms: self.config.heartbeat_window_ms,
            })),
            other => Err(unexpected(&other)),
        }
    }

    async fn list_branches(
        &self,
        request: Request<v1::ListBranchesRequest>,
    ) -> Result<Response<v1::ListBranchesResponse>, Status> {
        self.check(&request, RegistryRpc::ListBranches)?;
        let request = request.into_inner();
        let limit = match request.limit {
            0 => LIST_BRANCHES_LIMIT_MAX,
            limit if limit <= LIST_BRANCHES_LIMIT_MAX => limit,
            limit => {
                return Err(errors::invalid_argument(
                    "limit",
                    "limit_too_large",
                    format!("limit {limit} is above {LIST_BRANCHES_LIMIT_MAX}"),
                )
                .into());
            }
        };
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let start_after: Option<BranchCode> = request
            .start_after
            .map(|code| errors::branch_code(code, "start_after"))
            .transpose()?;
        let region = request.region;
        let now = self.clock.now_unix_ms();
        let (page, more) = self
            .read(|directory| {
                let mut matching = directory
                    .branches_after(start_after)
                    .filter(|branch| region.is_empty() || branch.region == region);
                let page: Vec<Branch> = matching.by_ref().take(limit).cloned().collect();
                (page, matching.next().is_some())
            })
            .await?;
        let next_start_after = if more {
            page.last().map(|branch| u32::from(branch.code.get()))
        } else {
            None
        };
        Ok(Response::new(v1::ListBranchesResponse {
            branches: page.iter().map(|branch| self.view(branch, now)).collect(),
            next_start_after,
        }))
    }

    async fn get_branch(
        &self,
        request: Request<v1::GetBranchRequest>,
    ) -> Result<Response<v1::BranchInfo>, Status> {
        self.check(&request, RegistryRpc::GetBranch)?;
        let code = errors::branch_code(request.get_ref().branch, "branch")?;
        let now = self.clock.now_unix_ms();
        let branch = self
            .read(|directory| directory.branch(code).cloned())
            .await?
            .ok_or_else(|| errors::branch_not_found(code))?;
        Ok(Response::new(self.view(&branch, now)))
    }

    async fn resolve_account(
        &self,
        request: Request<v1::ResolveAccountRequest>,
    ) -> Result<Response<v1::AccountRoute>, Status> {
        self.check(&request, RegistryRpc::ResolveAccount)?;
        let prefix = self.config.bank_prefix;
        let (number, field) = match &request.get_ref().account {
            Some(resolve_account_request::Account::AccountNumber(text)) => (
                AccountNumber::parse_for(prefix, text)
                    .map_err(|error| errors::account_number_error(&error, "account_number"))?,
                "account_number",
            ),
            Some(resolve_account_request::Account::AccountId(id)) => (
                AccountNumber::from_account_id(prefix, u128_of(Some(id)))
                    .map_err(|error| errors::account_number_error(&error, "account_id"))?,
                "account_id",
            ),
            None => {
                return Err(errors::invalid_argument(
                    "account",
                    "missing",
                    "give an account number or a ledger account id",
                )
                .into());
            }
        };
        let now = self.clock.now_unix_ms();
        let branch = self
            .read(|directory| {
                directory
                    .resolve_number(&number)
                    .map(|route| directory.branch(route.branch).cloned())
            })
            .await?
            .map_err(|error| errors::lookup_error(&error, field))?
            .ok_or_else(|| errors::branch_not_found(number.branch()))?;
        let route = AccountRoute {
            account_number: number,
            account_id: number.account_id(),
            branch: BranchView::new(&branch, now, self.config.heartbeat_window_ms),
        };
        Ok(Response::new(v1::AccountRoute::from(&route)))
    }

    async fn list_currencies(
        &self,
        request: Request<v1::ListCurrenciesRequest>,
    ) -> Result<Response<v1::ListCurrenciesResponse>, Status> {
        self.check(&request, RegistryRpc::ListCurrencies)?;
        Ok(Response::new(v1::ListCurrenciesResponse {
            currencies: catalog::currencies()
                .iter()
                .map(|currency| v1::CurrencyInfo {
                    code: currency.alpha.to_owned(),
                    numeric: currency.numeric,
                    exponent: u32::from(currency.exponent),
                })
                .collect(),
        }))
    }

    async fn list_products(
        &self,
        request: Request<v1::ListProductsRequest>,
    ) -> Result<Response<v1::ListProductsResponse>, Status> {
        self.check(&request, RegistryRpc::ListProducts)?;
        Ok(Response::new(v1::ListProductsResponse {
            products: catalog::products()
                .iter()
                .map(|info| v1::ProductInfo {
                    product: product_to_proto(info.product) as i32,
                    name: info.name.to_owned(),
                    account_code: u32::from(info.account_code),
                    description: info.description.to_owned(),
                })
                .collect(),
        }))
    }
}
