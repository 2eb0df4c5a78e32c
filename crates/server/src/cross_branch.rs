//! Transfers to customers of other branches: this branch coordinates the sagas it
//! starts (corebank-clearing, docs/clearing.md). The payer's branch reserves, the
//! payee's branch delivers, the payer's branch posts or voids; the reservation in this
//! branch's ledger is the saga's durable record, and a background task on the leader
//! resumes every unfinished saga from it (after a crash, a failover, an unreachable
//! destination).
//!
//! Other branches are reached over gRPC with the replica's peer credentials (node
//! certificate or peer API key), at the addresses of the branch routes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use corebank_account_number::BranchCode;
use corebank_banking::{Branch, clearing_account};
use corebank_clearing::{BranchPort, PortError, ResumeOptions, Saga, SagaOutcome};
use corebank_client::{Client, ClientConfig, ClientError};
use corebank_ledger::{Account, CreateAccountResult, CreateTransfersResult, QueryFilter, Transfer};
use corebank_money::Currency;
use corebank_node::{Node, ReadError, Request, RequestOutcome, SubmitError};
use tokio::sync::{Mutex, RwLock, watch};

use crate::replication::PeerSettings;

/// How often the leader looks for unfinished sagas.
const RESUME_INTERVAL: Duration = Duration::from_millis(500);
/// The per-call deadline towards another branch.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(5);

/// One branch's ledger for the saga driver: this replica's node, or another branch
/// over gRPC.
#[derive(Clone, Debug)]
pub enum LedgerPort {
    Local { node: Arc<Node>, branch: BranchCode },
    Remote { client: Client, branch: BranchCode },
}

fn read_error(error: ReadError) -> PortError {
    PortError::unavailable(error.to_string())
}

fn submit_error(error: SubmitError) -> PortError {
    match error {
        SubmitError::TooManyEvents { .. } => PortError::rejected(error.to_string()),
        other => PortError::unavailable(other.to_string()),
    }
}

fn client_error(error: ClientError) -> PortError {
    match &error {
        ClientError::Transport { .. }
        | ClientError::Timeout { .. }
        | ClientError::Busy { .. }
        | ClientError::Closed => PortError::unavailable(error.to_string()),
        ClientError::Api(api) if error.outcome_unknown() || api.code.as_str() == "busy_retry" => {
            PortError::unavailable(error.to_string())
        }
        ClientError::Api(api)
            if matches!(api.code.as_str(), "not_leader" | "unavailable" | "internal") =>
        {
            PortError::unavailable(error.to_string())
        }
        _ => PortError::rejected(error.to_string()),
    }
}

impl BranchPort for LedgerPort {
    fn branch(&self) -> BranchCode {
        match self {
            Self::Local { branch, .. } | Self::Remote { branch, .. } => *branch,
        }
    }

    async fn create_transfers(
        &self,
        transfers: Vec<Transfer>,
    ) -> Result<Vec<CreateTransfersResult>, PortError> {
        match self {
            Self::Local { node, .. } => {
                // The reservation is the customer's payment and is screened; the
                // saga's other legs are the bank's own.
                let context = transfers
                    .iter()
                    .map(|t| {
                        if t.flags.contains(corebank_ledger::TransferFlags::PENDING) {
                            corebank_screening::TransferContext::default()
                        } else {
                            corebank_screening::TransferContext::INTERNAL
                        }
                    })
                    .collect();
                match node.submit(Request::screened(transfers, context)).await {
                    Ok(RequestOutcome::Screened { results, .. }) => Ok(results),
                    Ok(RequestOutcome::Refused(error)) => {
                        Err(PortError::rejected(error.to_string()))
                    }
                    Ok(other) => Err(PortError::unavailable(format!(
                        "unexpected outcome {other:?}"
                    ))),
                    Err(error) => Err(submit_error(error)),
                }
            }
            Self::Remote { client, .. } => client
                .create_transfers(&transfers)
                .await
                .map_err(client_error),
        }
    }

    async fn lookup_transfers(&self, ids: Vec<u128>) -> Result<Vec<Transfer>, PortError> {
        match self {
            Self::Local { node, .. } => node
                .read(|ledger| ledger.lookup_transfers(&ids))
                .await
                .map_err(read_error)?
                .map_err(|e| PortError::rejected(e.to_string())),
            Self::Remote { client, .. } => {
                client.lookup_transfers(&ids).await.map_err(client_error)
            }
        }
    }

    async fn lookup_accounts(&self, ids: Vec<u128>) -> Result<Vec<Account>, PortError> {
        match self {
            Self::Local { node, .. } => node
                .read(|ledger| ledger.lookup_accounts(&ids))
                .await
                .map_err(read_error)?
                .map_err(|e| PortError::rejected(e.to_string())),
            Self::Remote { client, .. } => client.lookup_accounts(&ids).await.map_err(client_error),
        }
    }

    async fn query_transfers(&self, filter: QueryFilter) -> Result<Vec<Transfer>, PortError> {
        match self {
            Self::Local { node, .. } => node
                .read(|ledger| ledger.query_transfers(&filter))
                .await
                .map_err(read_error)?
                .map_err(|e| PortError::rejected(e.to_string())),
            Self::Remote { client, .. } => {
                client.query_transfers(filter).await.map_err(client_error)
            }
        }
    }

    async fn query_accounts(&self, filter: QueryFilter) -> Result<Vec<Account>, PortError> {
        match self {
            Self::Local { node, .. } => node
                .read(|ledger| ledger.query_accounts(&filter))
                .await
                .map_err(read_error)?
                .map_err(|e| PortError::rejected(e.to_string())),
            Self::Remote { client, .. } => {
                client.query_accounts(filter).await.map_err(client_error)
            }
        }
    }
}

/// Where the other branches are: branch code → replica addresses (`host:port`).
pub type BranchRoutes = BTreeMap<BranchCode, Vec<String>>;

/// The coordinator of this branch's outgoing sagas.
#[derive(Debug)]
pub struct CrossBranch {
    node: Arc<Node>,
    local: LedgerPort,
    branch: Branch,
    routes: RwLock<BranchRoutes>,
    remotes: Mutex<BTreeMap<BranchCode, LedgerPort>>,
    peers: PeerSettings,
    /// Where branches without a static route are looked up.
    registry: Option<corebank_registry::RegistryClient>,
    last_listed: Mutex<Option<tokio::time::Instant>>,
    /// Clearing account pairs known to exist: (other branch, currency numeric code).
    ensured: Mutex<BTreeSet<(u16, u32)>>,
}

impl CrossBranch {
    pub fn new(
        node: Arc<Node>,
        branch: Branch,
        routes: BranchRoutes,
        peers: PeerSettings,
        registry: Option<corebank_registry::RegistryClient>,
    ) -> Self {
        Self {
            local: LedgerPort::Local {
                node: Arc::clone(&node),
                branch: branch.code,
            },
            node,
            branch,
            routes: RwLock::new(routes),
            remotes: Mutex::new(BTreeMap::new()),
            peers,
            registry,
            last_listed: Mutex::new(None),
            ensured: Mutex::new(BTreeSet::new()),
        }
    }

    /// Replaces the routes (from the registry, or a reloaded configuration).
    pub async fn set_routes(&self, routes: BranchRoutes) {
        *self.routes.write().await = routes;
        self.remotes.lock().await.clear();
    }

    /// Can this branch reach `branch` (a static route, or the registry knows it)?
    pub async fn knows(&self, branch: BranchCode) -> bool {
        self.addresses(branch).await.is_some()
    }

    /// The replica addresses of `branch`: its static route, else the registry's entry
    /// (remembered until the routes are replaced).
    async fn addresses(&self, branch: BranchCode) -> Option<Vec<String>> {
        if let Some(addresses) = self.routes.read().await.get(&branch) {
            return Some(addresses.clone());
        }
        let registry = self.registry.as_ref()?;
        let addresses = crate::registry_link::branch_addresses(registry, branch).await?;
        self.routes.write().await.insert(branch, addresses.clone());
        Some(addresses)
    }

    /// Every branch the registry knows gets a route (at most every 10 s), so that the
    /// sagas found after a restart can reach their destinations.
    async fn learn_branches(&self) {
        let Some(registry) = &self.registry else {
            return;
        };
        if self
            .last_listed
            .lock()
            .await
            .is_some_and(|at| at.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        let branches = match registry.list_branches(None).await {
            Ok(branches) => branches,
            Err(error) => {
                // Tried again at the next pass.
                tracing::debug!(%error, "listing the branches at the registry");
                return;
            }
        };
        *self.last_listed.lock().await = Some(tokio::time::Instant::now());
        let mut routes = self.routes.write().await;
        for view in branches {
            if view.code == self.branch.code || view.replicas.is_empty() {
                continue;
            }
            routes
                .entry(view.code)
                .or_insert_with(|| view.replicas.iter().map(|r| r.address.clone()).collect());
        }
    }

    /// The port of another branch, connected on first use.
    async fn remote(&self, branch: BranchCode) -> Result<LedgerPort, PortError> {
        if let Some(port) = self.remotes.lock().await.get(&branch) {
            return Ok(port.clone());
        }
        let addresses = self.addresses(branch).await.ok_or_else(|| {
            PortError::unavailable(format!("branch {branch} cannot be found now"))
        })?;
        let scheme = if self.peers.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let endpoints = addresses
            .iter()
            .map(|address| format!("{scheme}://{address}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut config = ClientConfig::new(endpoints)
            .with_request_timeout(REMOTE_TIMEOUT)
            .with_total_timeout(REMOTE_TIMEOUT * 3)
            .with_connect_timeout(Duration::from_secs(2));
        if let Some(tls) = &self.peers.tls {
            config = config.with_tls(tls.clone());
        }
        if let Some(key) = &self.peers.api_key {
            config = config.with_api_key(key.expose().clone());
        }
        let client = Client::connect(config).await.map_err(client_error)?;
        let port = LedgerPort::Remote { client, branch };
        self.remotes.lock().await.insert(branch, port.clone());
        Ok(port)
    }

    /// Both clearing accounts of the pair exist (created once per process; creating an
    /// existing account answers `exists`).
    async fn ensure_clearing(
        &self,
        other: &LedgerPort,
        currency: Currency,
    ) -> Result<(), PortError> {
        let other_code = other.branch();
        let key = (other_code.get(), currency.numeric);
        if self.ensured.lock().await.contains(&key) {
            return Ok(());
        }
        let ours = clearing_account(self.branch.code, other_code, currency);
        let theirs = clearing_account(other_code, self.branch.code, currency);
        let accepted = |results: &[corebank_ledger::CreateAccountsResult]| {
            results
                .iter()
                .all(|r| r.result == CreateAccountResult::Exists)
        };
        match self.node.submit(Request::CreateAccounts(vec![ours])).await {
            Ok(RequestOutcome::Accounts { results, .. }) if accepted(&results) => {}
            Ok(other) => {
                return Err(PortError::rejected(format!(
                    "cannot create the clearing account for branch {other_code}: {other:?}"
                )));
            }
            Err(error) => return Err(submit_error(error)),
        }
        if let LedgerPort::Remote { client, .. } = other {
            let results = client
                .create_accounts(&[theirs])
                .await
                .map_err(client_error)?;
            if !accepted(&results) {
                return Err(PortError::rejected(format!(
                    "branch {other_code} refused its clearing account for this branch: {results:?}"
                )));
            }
        }
        self.ensured.lock().await.insert(key);
        Ok(())
    }

    /// Runs a saga now: reserve here, deliver there, post or void here. An outcome that
    /// is not final is finished later by the resume task.
    pub async fn transfer(&self, saga: &Saga) -> SagaOutcome {
        let destination = saga.destination();
        let remote = match self.remote(destination).await {
            Ok(port) => port,
            Err(error) => return SagaOutcome::Unknown(error),
        };
        if let Err(error) = self.ensure_clearing(&remote, saga.currency()).await {
            return SagaOutcome::Unknown(error);
        }
        corebank_clearing::start(&self.local, &remote, saga).await
    }

    /// The saga's state as this branch's ledger records it.
    pub async fn status(&self, id: u128) -> Result<corebank_clearing::SagaStatus, PortError> {
        corebank_clearing::saga_status(&self.local, id).await
    }

    /// One pass over the unfinished sagas of this branch.
    pub async fn resume_once(&self, options: &ResumeOptions) -> Result<usize, PortError> {
        self.learn_branches().await;
        let codes: Vec<BranchCode> = self.routes.read().await.keys().copied().collect();
        let mut ports = BTreeMap::new();
        for code in codes {
            if let Ok(port) = self.remote(code).await {
                ports.insert(code, port);
            }
        }
        let report =
            corebank_clearing::resume(&self.local, |code| ports.get(&code), options).await?;
        Ok(report.unfinished())
    }

    /// While this replica leads, finishes unfinished sagas every `RESUME_INTERVAL`.
    pub async fn run_resume(self: Arc<Self>, node: Arc<Node>, mut stop: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(RESUME_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => return,
            }
            if !node.is_leader() {
                continue;
            }
            match self.resume_once(&ResumeOptions::default()).await {
                Ok(0) => {}
                Ok(open) => tracing::info!(open, "cross-branch transfers still unfinished"),
                Err(error) => tracing::debug!(%error, "resuming cross-branch transfers"),
            }
        }
    }
}
