//! [`Client`]: the connection, and the typed Ledger calls.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use corebank_ledger::{
    Account, AccountBalance, AccountFilter, CreateAccountResult, CreateAccountsResult,
    CreateTransferResult, CreateTransfersResult, EventResult, QueryFilter, Transfer,
};
use corebank_proto::convert::ConvertError;
use corebank_proto::v1::banking_client::BankingClient;
use corebank_proto::v1::cluster_client::ClusterClient;
use corebank_proto::v1::events_client::EventsClient;
use corebank_proto::v1::ledger_client::LedgerClient;
use corebank_proto::{BATCH_EVENTS_MAX, MAX_MESSAGE_BYTES, v1};
use tonic::service::interceptor::InterceptedService;

use crate::batch::{BatchStats, Batcher, forgive_exists};
use crate::config::ClientConfig;
use crate::connect::Auth;
use crate::error::ClientError;
use crate::retry::{self, Repeat, Success, Timing};
use crate::route::{Route, RoutedChannel};

/// The channel every call goes over: HTTP/2 (over TLS 1.3 for `https`) to the
/// replica in use, with the API key added to each call.
pub type AuthChannel = InterceptedService<RoutedChannel, Auth>;

/// What the client shares with its background tasks.
pub(crate) struct Core {
    pub(crate) route: Arc<Route>,
    pub(crate) channel: AuthChannel,
    pub(crate) timing: Timing,
    pub(crate) consistency: v1::ReadConsistency,
}

/// A client of one corebank branch node. Cheap to clone (all clones share the
/// connection and the batching queues); use it from many tasks at once.
///
/// The connection reconnects by itself after a failure. Dropping the last clone
/// stops the background batching tasks once the batches already accepted have
/// been answered.
#[derive(Clone)]
pub struct Client {
    core: Arc<Core>,
    transfers: Arc<Batcher<Transfer>>,
    accounts: Arc<Batcher<Account>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.core.route.endpoint())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What the client's batchers have done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// [`Client::create_transfer`] calls.
    pub transfers: BatchStats,
    /// [`Client::create_account`] calls.
    pub accounts: BatchStats,
}

/// Connects a raw channel as [`Client::connect`] does (TLS 1.3 when configured, the
/// API key on every call), for other services on the same node or on the registry
/// (their generated stubs over this channel). No batching, retries or timeouts.
pub async fn connect_channel(config: &ClientConfig) -> Result<AuthChannel, ClientError> {
    let auth = Auth::new(config)?;
    let route = Route::connect(config).await?;
    Ok(InterceptedService::new(route.routed(), auth))
}

impl Client {
    /// Connects to the node (TCP, TLS 1.3 when configured, HTTP/2) within the
    /// connect timeout, and starts the batching tasks on the current Tokio runtime.
    ///
    /// Fails with [`ClientError::Config`] for an unusable configuration,
    /// [`ClientError::Tls`] for unusable certificate files or a failed handshake
    /// (e.g. the node's certificate is not signed by the CA trusted), and
    /// [`ClientError::Transport`] when the node cannot be reached.
    pub async fn connect(config: ClientConfig) -> Result<Self, ClientError> {
        let auth = Auth::new(&config)?;
        let route = Route::connect(&config).await?;
        let core = Arc::new(Core {
            channel: InterceptedService::new(route.routed(), auth),
            route,
            timing: Timing {
                request_timeout: config.request_timeout,
                total_timeout: config.total_timeout,
                retries: config.retries,
            },
            consistency: config.read_consistency,
        });
        tracing::debug!(endpoint = %core.route.endpoint(), tls = config.tls.is_some(), "connected");
        Ok(Self {
            transfers: Arc::new(Batcher::start(core.clone(), config.batch)),
            accounts: Arc::new(Batcher::start(core.clone(), config.batch)),
            core,
        })
    }

    /// The endpoint in use (with its scheme): the replica the client last moved to.
    pub fn endpoint(&self) -> String {
        self.core.route.endpoint()
    }

    /// What the batchers have done so far.
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            transfers: self.transfers.stats(),
            accounts: self.accounts.stats(),
        }
    }

    /// The generated Ledger client over this connection (API key included), for
    /// what the typed calls do not cover. No retries, no timeouts.
    pub fn ledger_stub(&self) -> LedgerClient<AuthChannel> {
        self.core.ledger()
    }

    /// The generated Banking client over this connection (API key included).
    pub fn banking_stub(&self) -> BankingClient<AuthChannel> {
        self.core.banking()
    }

    /// The generated Events client over this connection (API key included).
    pub fn events_stub(&self) -> EventsClient<AuthChannel> {
        self.core.events()
    }

    /// The generated Cluster client (replica status and membership) over this
    /// connection (API key included). No retries, no timeouts.
    pub fn cluster_stub(&self) -> ClusterClient<AuthChannel> {
        ClusterClient::new(self.core.channel.clone())
    }

    /// The generated Risk client (held transfers, reviews, freezes, the risk journal,
    /// the screen's model) over this connection (API key included). No retries.
    pub fn risk_stub(&self) -> corebank_proto::v1::risk_client::RiskClient<AuthChannel> {
        corebank_proto::v1::risk_client::RiskClient::new(self.core.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.core
    }

    // -------------------------------------------------------------- batched

    /// Creates one transfer, batched with the concurrent `create_transfer` calls
    /// of every task using this client. `Ok(None)`: applied; `Ok(Some(result))`:
    /// the ledger refused it (e.g. `ExceedsCredits`).
    ///
    /// The transfer must not carry the `linked` flag
    /// ([`ClientError::InvalidInput`], reason `linked_not_allowed`): send chains
    /// with [`create_transfers`](Self::create_transfers). When the queue is full
    /// the call fails at once with [`ClientError::Busy`]. A call whose future is
    /// dropped after it was queued is still sent.
    ///
    /// Retries and `exists` work as for [`create_transfers`](Self::create_transfers).
    pub async fn create_transfer(
        &self,
        transfer: Transfer,
    ) -> Result<Option<CreateTransferResult>, ClientError> {
        self.transfers.submit(transfer).await
    }

    /// Creates one account, batched like [`create_transfer`](Self::create_transfer).
    pub async fn create_account(
        &self,
        account: Account,
    ) -> Result<Option<CreateAccountResult>, ClientError> {
        self.accounts.submit(account).await
    }

    // -------------------------------------------------------------- ledger

    /// Creates a batch of transfers (at most 8,190), in order, as one request;
    /// linked chains apply all or nothing. Returns the failed events only, by
    /// index (an event not listed was applied).
    ///
    /// Retried after transport errors, timeouts, `busy_retry` and `unavailable`:
    /// the ids make that safe. When an earlier attempt's outcome was unknown (it
    /// may have been applied), `exists` is read as that attempt's success and not
    /// listed (for a chain: its first event `exists`, the others
    /// `linked_event_failed`); an event that failed transiently in that attempt
    /// answers `id_already_failed`.
    pub async fn create_transfers(
        &self,
        transfers: &[Transfer],
    ) -> Result<Vec<CreateTransfersResult>, ClientError> {
        self.core.create_transfers(transfers).await
    }

    /// Creates a batch of accounts (at most 8,190; needs the `admin` scope), with
    /// the same retries and `exists` handling as
    /// [`create_transfers`](Self::create_transfers).
    pub async fn create_accounts(
        &self,
        accounts: &[Account],
    ) -> Result<Vec<CreateAccountsResult>, ClientError> {
        self.core.create_accounts(accounts).await
    }

    /// The accounts found, in the order asked; unknown ids are skipped.
    pub async fn lookup_accounts(&self, ids: &[u128]) -> Result<Vec<Account>, ClientError> {
        check_len("ids", ids.len())?;
        let request = v1::LookupAccountsRequest {
            ids: ids.iter().map(|&id| id.into()).collect(),
            consistency: self.core.consistency.into(),
        };
        let response = self
            .core
            .unary(
                "LookupAccounts",
                Repeat::Safe,
                &request,
                self.core.ledger(),
                |mut c, r| async move { c.lookup_accounts(r).await },
            )
            .await?;
        records(&response.value.accounts, "accounts")
    }

    /// The transfers found, in the order asked; unknown ids are skipped.
    pub async fn lookup_transfers(&self, ids: &[u128]) -> Result<Vec<Transfer>, ClientError> {
        check_len("ids", ids.len())?;
        let request = v1::LookupTransfersRequest {
            ids: ids.iter().map(|&id| id.into()).collect(),
            consistency: self.core.consistency.into(),
        };
        let response = self
            .core
            .unary(
                "LookupTransfers",
                Repeat::Safe,
                &request,
                self.core.ledger(),
                |mut c, r| async move { c.lookup_transfers(r).await },
            )
            .await?;
        records(&response.value.transfers, "transfers")
    }

    /// An account's transfers, by side, time, code and user data.
    pub async fn get_account_transfers(
        &self,
        filter: AccountFilter,
    ) -> Result<Vec<Transfer>, ClientError> {
        let request = v1::GetAccountTransfersRequest {
            filter: Some(filter.into()),
            consistency: self.core.consistency.into(),
        };
        let response = self
            .core
            .unary(
                "GetAccountTransfers",
                Repeat::Safe,
                &request,
                self.core.ledger(),
                |mut c, r| async move { c.get_account_transfers(r).await },
            )
            .await?;
        records(&response.value.transfers, "transfers")
    }

    /// An account's balances after each change (accounts with the `history` flag).
    pub async fn get_account_balances(
        &self,
        filter: AccountFilter,
    ) -> Result<Vec<AccountBalance>, ClientError> {
        let request = v1::GetAccountBalancesRequest {
            filter: Some(filter.into()),
            consistency: self.core.consistency.into(),
        };
        let response = self
            .core
            .unary(
                "GetAccountBalances",
                Repeat::Safe,
                &request,
                self.core.ledger(),
                |mut c, r| async move { c.get_account_balances(r).await },
            )
            .await?;
        Ok(response
            .value
            .balances
            .iter()
            .map(AccountBalance::from)
            .collect())
    }

    /// Accounts by user data, ledger, code and time.
    pub async fn query_accounts(&self, filter: QueryFilter) -> Result<Vec<Account>, ClientError> {
        let request = v1::QueryAccountsRequest {
            filter: Some(filter.into()),
            consistency: self.core.consistency.into(),
        };
        let response = self
            .core
            .unary(
                "QueryAccounts",
                Repeat::Safe,
                &request,
                self.core.ledger(),
                |mut c, r| async move { c.query_accounts(r).await },
            )
            .await?;
        records(&response.value.accounts, "accounts")
    }

    /// Transfers by user data, ledger, code and time.
    pub async fn query_transfers(&self, filter: QueryFilter) -> Result<Vec<Transfer>, ClientError> {
        let request = v1::QueryTransfersRequest {
            filter: Some(filter.into()),
            consistency: self.core.consistency.into(),
        };
        let response = self
            .core
            .unary(
                "QueryTransfers",
                Repeat::Safe,
                &request,
                self.core.ledger(),
                |mut c, r| async move { c.query_transfers(r).await },
            )
            .await?;
        records(&response.value.transfers, "transfers")
    }
}

impl Core {
    pub(crate) fn ledger(&self) -> LedgerClient<AuthChannel> {
        LedgerClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub(crate) fn banking(&self) -> BankingClient<AuthChannel> {
        BankingClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub(crate) fn events(&self) -> EventsClient<AuthChannel> {
        EventsClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// One unary call with retries: each attempt sends a copy of `message` with
    /// the attempt's deadline as `grpc-timeout`.
    pub(crate) async fn unary<Q, S, C, F, Fut>(
        &self,
        what: &'static str,
        repeat: Repeat,
        message: &Q,
        stub: C,
        call: F,
    ) -> Result<Success<S>, ClientError>
    where
        Q: Clone,
        C: Clone,
        F: Fn(C, tonic::Request<Q>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<S>, tonic::Status>>,
    {
        retry::run(what, &self.route, self.timing, repeat, |timeout| {
            let mut request = tonic::Request::new(message.clone());
            request.set_timeout(timeout);
            call(stub.clone(), request)
        })
        .await
    }

    pub(crate) async fn create_transfers(
        &self,
        transfers: &[Transfer],
    ) -> Result<Vec<CreateTransfersResult>, ClientError> {
        check_len("transfers", transfers.len())?;
        if transfers.is_empty() {
            return Ok(Vec::new());
        }
        // Packed 128-byte records: a fraction of the cost of nested messages.
        let request = v1::CreateTransfersRequest {
            packed_transfers: transfers.iter().flat_map(Transfer::to_bytes).collect(),
            ..Default::default()
        };
        let response = self
            .unary(
                "CreateTransfers",
                Repeat::Safe,
                &request,
                self.ledger(),
                |mut c, r| async move { c.create_transfers(r).await },
            )
            .await?;
        let results = event_results(transfers.len(), &response.value.results)?;
        Ok(if response.after_unknown_outcome {
            forgive_exists(transfers, results)
        } else {
            results
        })
    }

    pub(crate) async fn create_accounts(
        &self,
        accounts: &[Account],
    ) -> Result<Vec<CreateAccountsResult>, ClientError> {
        check_len("accounts", accounts.len())?;
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let request = v1::CreateAccountsRequest {
            packed_accounts: accounts.iter().flat_map(Account::to_bytes).collect(),
            ..Default::default()
        };
        let response = self
            .unary(
                "CreateAccounts",
                Repeat::Safe,
                &request,
                self.ledger(),
                |mut c, r| async move { c.create_accounts(r).await },
            )
            .await?;
        let results = event_results(accounts.len(), &response.value.results)?;
        Ok(if response.after_unknown_outcome {
            forgive_exists(accounts, results)
        } else {
            results
        })
    }
}

/// Refuses more than [`BATCH_EVENTS_MAX`] entries before anything is sent.
fn check_len(field: &str, count: usize) -> Result<(), ClientError> {
    if count > BATCH_EVENTS_MAX {
        return Err(ClientError::invalid_input(
            field,
            "too_many_events",
            format!("{count} entries are too many for one request (at most {BATCH_EVENTS_MAX})"),
        ));
    }
    Ok(())
}

/// The per-event results of a create call, checked against the batch size.
fn event_results<M, R>(count: usize, results: &[M]) -> Result<Vec<EventResult<R>>, ClientError>
where
    for<'a> EventResult<R>: TryFrom<&'a M, Error = ConvertError>,
{
    results
        .iter()
        .enumerate()
        .map(|(position, message)| {
            let result = EventResult::<R>::try_from(message).map_err(|error| {
                ClientError::invalid_response(format!("results[{position}]: {error}"))
            })?;
            if usize::try_from(result.index).map_or(true, |index| index >= count) {
                return Err(ClientError::invalid_response(format!(
                    "results[{position}] is about event {} of a batch of {count}",
                    result.index
                )));
            }
            Ok(result)
        })
        .collect()
}

/// Records of a read response, converted to the ledger's types.
fn records<M, T>(messages: &[M], field: &str) -> Result<Vec<T>, ClientError>
where
    for<'a> T: TryFrom<&'a M, Error = ConvertError>,
{
    messages
        .iter()
        .enumerate()
        .map(|(index, message)| {
            T::try_from(message)
                .map_err(|error| ClientError::invalid_response(error.at(field, index).to_string()))
        })
        .collect()
}
