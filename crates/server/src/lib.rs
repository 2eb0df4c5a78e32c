//! # corebank-server
//!
//! The network front of a branch replica: the `Ledger`, `Banking` and `Events` gRPC
//! services (docs/api.md) over a [`corebank_node::Node`], every call authenticated
//! (client certificate under mutual TLS, or an API key with scopes), TLS 1.3 through
//! rustls, and the admin endpoints. `--insecure` serves plain TCP on loopback only.

mod admin;
mod auth;
mod banking_service;
mod config;
pub mod cross_branch;
mod errors;
mod events_service;
mod ledger_service;
pub mod registry_link;
pub mod replication;
pub mod risk_service;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use corebank_account_number::{BranchCode, FIRST_CUSTOMER_SERIAL, split_account_id};
use corebank_banking::{Branch, Product};
use corebank_node::{Node, NodeConfig, Request, RequestOutcome};
use corebank_proto::v1::{
    banking_server::BankingServer, events_server::EventsServer, ledger_server::LedgerServer,
    risk_server::RiskServer,
};
use corebank_raft_net::serving::{self, CALLS_PER_CONNECTION_MAX, ServeOptions, stopped};
use corebank_raft_net::{BindError, ServerTlsError, Serving};
use tokio::sync::watch;

pub use admin::prometheus;
pub use auth::Gate;
pub use config::{ConfigError, RiskConfig, ServerConfig, parse_route};

const STREAM_WINDOW_BYTES: u32 = 8 << 20;
const CONNECTION_WINDOW_BYTES: u32 = 32 << 20;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Node(#[from] corebank_node::NodeError),
    #[error("TLS: {0}")]
    Tls(#[from] corebank_security::TlsError),
    #[error("API keys: {0}")]
    Keys(#[from] corebank_security::KeyStoreError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create the branch's internal accounts: {0}")]
    Setup(String),
    #[error("the risk screen cannot start: {0}")]
    Risk(String),
}

/// A running server; dropping it does not stop it, [`RunningServer::shutdown`] does.
pub struct RunningServer {
    cross_branch: Arc<cross_branch::CrossBranch>,
    engine: Option<Arc<corebank_risk_engine::Engine>>,
    node: Arc<Node>,
    serving: Serving,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("grpc_addr", &self.serving.grpc_addr)
            .field("admin_addr", &self.serving.admin_addr)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    pub fn grpc_addr(&self) -> SocketAddr {
        self.serving.grpc_addr
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.serving.admin_addr
    }

    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The branch's fraud screen, when it screens.
    pub fn risk_engine(&self) -> Option<&Arc<corebank_risk_engine::Engine>> {
        self.engine.as_ref()
    }

    /// The coordinator of this branch's transfers to other branches.
    pub fn cross_branch(&self) -> &Arc<cross_branch::CrossBranch> {
        &self.cross_branch
    }

    /// Re-reads the API key file (revocations and new keys take effect); returns the
    /// number of keys, or `None` without a key file.
    pub fn reload_api_keys(&self) -> Option<Result<usize, corebank_security::KeyStoreError>> {
        self.serving.reload_api_keys()
    }

    /// Fault injection: cuts this replica off from its peers (or heals it), as a
    /// network partition would.
    pub fn isolate(&self, isolated: bool) {
        self.serving.isolate(isolated);
    }

    /// Stops taking calls, lets calls in progress finish, and stops the replica.
    pub async fn shutdown(self) {
        self.serving.stop().await;
        if let Some(node) = Arc::into_inner(self.node) {
            node.shutdown().await;
        }
    }
}

/// The branch's internal accounts exist before any customer operation needs them.
async fn create_internal_accounts(node: &Node, branch: &Branch) -> Result<(), ServerError> {
    let accounts = branch.internal_accounts();
    match node.submit(Request::CreateAccounts(accounts)).await {
        Ok(RequestOutcome::Accounts { results, .. }) => {
            let unexpected: Vec<_> = results
                .iter()
                .filter(|r| r.result != corebank_ledger::CreateAccountResult::Exists)
                .collect();
            if unexpected.is_empty() {
                Ok(())
            } else {
                Err(ServerError::Setup(format!("{unexpected:?}")))
            }
        }
        Ok(other) => Err(ServerError::Setup(format!("{other:?}"))),
        Err(error) => Err(ServerError::Setup(error.to_string())),
    }
}

/// The next free customer serial of the branch.
fn next_customer_serial(node: &Node, branch: BranchCode) -> u64 {
    node.read_local(|ledger| {
        ledger
            .accounts()
            .iter()
            .filter(|account| Product::from_code(account.code).is_some())
            .filter_map(|account| split_account_id(account.id))
            .filter(|(code, _)| *code == branch)
            .map(|(_, serial)| serial + 1)
            .max()
            .unwrap_or(FIRST_CUSTOMER_SERIAL)
            .max(FIRST_CUSTOMER_SERIAL)
    })
    .unwrap_or(FIRST_CUSTOMER_SERIAL)
}

/// What a replica does when it becomes its branch's leader: catch up with everything
/// committed (a linearizable read waits for it), make sure the internal accounts exist,
/// and move the customer serial past every account opened under earlier leaders.
async fn take_office(
    node: &Node,
    branch: &Branch,
    next_serial: &AtomicU64,
) -> Result<(), ServerError> {
    node.read(|_| ())
        .await
        .map_err(|error| ServerError::Setup(error.to_string()))?;
    create_internal_accounts(node, branch).await?;
    next_serial.fetch_max(next_customer_serial(node, branch.code), Ordering::SeqCst);
    Ok(())
}

/// Registers the branch with the registry (retrying while it cannot be reached), for as
/// long as this replica leads in `term`.
async fn keep_registered(
    registry: corebank_registry::RegistryClient,
    branch: BranchCode,
    node: Arc<Node>,
    term: u64,
) {
    let mut pause = Duration::from_millis(200);
    loop {
        let still_leading = {
            let metrics = node.raft().metrics();
            let metrics = metrics.borrow();
            metrics.current_term == term && metrics.current_leader == Some(metrics.id)
        };
        if !still_leading {
            return;
        }
        match registry_link::register_branch(&registry, branch, &node).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "registering the branch with the registry; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Watches the Raft state and takes office once per term in which this replica leads.
async fn leader_duties(
    node: Arc<Node>,
    branch: Branch,
    next_serial: Arc<AtomicU64>,
    registry: Option<corebank_registry::RegistryClient>,
    mut stop: watch::Receiver<bool>,
) {
    let mut metrics = node.raft().metrics();
    let mut served_term = None;
    loop {
        let (leading, term) = {
            let current = metrics.borrow_and_update();
            (
                current.current_leader == Some(current.id)
                    && current.state == corebank_node::openraft::ServerState::Leader,
                current.current_term,
            )
        };
        if leading && served_term != Some(term) {
            match take_office(&node, &branch, &next_serial).await {
                Ok(()) => {
                    served_term = Some(term);
                    tracing::info!(term, "this replica leads the branch");
                    if let Some(registry) = registry.clone() {
                        tokio::spawn(keep_registered(
                            registry,
                            branch.code,
                            Arc::clone(&node),
                            term,
                        ));
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "taking office as leader failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                        _ = stop.changed() => return,
                    }
                }
            }
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}

/// Reloads the rules file when it changes (a broken file is logged and the rules in
/// force stay).
async fn watch_rules(engine: Arc<corebank_risk_engine::Engine>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
        match engine.reload_rules_if_changed() {
            Ok(true) => tracing::info!("the risk rules file changed; the new rules are in force"),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "the risk rules file changed but is refused; the rules in force stay");
            }
        }
    }
}

/// Starts the replica and its services.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    config.validate()?;
    let _ = prometheus();
    let branch_code =
        BranchCode::new(config.branch).map_err(|_| ConfigError::Branch(config.branch))?;
    let branch = Branch::new(branch_code);

    let transport = config.transport();
    let gate = auth::counted(transport.gate()?);
    let tls = transport.server_tls().map_err(|error| match error {
        ServerTlsError::Missing => ServerError::Config(ConfigError::TlsMissing),
        ServerTlsError::Tls(error) => ServerError::Tls(error),
    })?;
    let listeners = transport
        .bind()
        .await
        .map_err(|BindError { address, source }| ServerError::Bind { address, source })?;
    let grpc_addr = listeners.grpc_addr;
    let admin_addr = listeners.admin_addr;

    let members = config.member_map()?;
    let engine = if config.risk.enabled {
        let engine = corebank_risk_engine::Engine::new(config.risk.engine()?)
            .map_err(|error| ServerError::Risk(error.to_string()))?;
        if let Some(problem) = engine.model_problem()
            && config.risk.model.is_some()
        {
            tracing::warn!(
                problem,
                policy = config.risk.failure_policy,
                "the risk model could not be loaded"
            );
        }
        Some(Arc::new(engine))
    } else {
        None
    };
    let screening = match &engine {
        Some(engine) => Some(corebank_node::Screening {
            screener: Arc::clone(engine) as Arc<dyn corebank_screening::Screener>,
            on_failure: config.risk.policy()?,
        }),
        None => None,
    };
    let node_config = NodeConfig {
        screening,
        node_id: config.node_id,
        advertise_addr: config
            .advertise
            .clone()
            .unwrap_or_else(|| grpc_addr.to_string()),
        initial_members: members,
        join: config.join,
        log_entries_kept_after_snapshot: config.log_entries_kept_after_snapshot,
        queue_requests_max: config.queue_requests_max,
        snapshot_every_entries: config.snapshot_every_entries,
        ..NodeConfig::new(&config.data_dir)
    };
    let isolation = replication::Isolation::default();
    let peers = transport.peers(config.peer_api_key.clone(), isolation.clone());
    let node = Arc::new(
        Node::start_with_network(node_config, replication::GrpcNetwork::new(peers.clone())).await?,
    );
    let next_serial = Arc::new(AtomicU64::new(FIRST_CUSTOMER_SERIAL));
    let view = node.cluster_view();
    let alone = view.members.len() == 1 && view.members.iter().all(|m| m.node_id == view.node_id);
    if alone && node.is_leader() {
        // A branch of one replica leads at once: its accounts exist before it serves.
        // (With several, the leader, once elected, takes office in the background.)
        take_office(&node, &branch, &next_serial).await?;
    }

    let (stop, stop_receiver) = watch::channel(false);
    let limit = corebank_proto::MAX_MESSAGE_BYTES;
    let ledger = LedgerServer::new(ledger_service::LedgerService {
        node: Arc::clone(&node),
        gate: gate.clone(),
    })
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    let registry = if config.registry.is_empty() {
        None
    } else {
        Some(
            registry_link::registry_client(&config.registry, &peers)
                .map_err(|error| ServerError::Setup(format!("the registry: {error}")))?,
        )
    };
    let cross_branch = Arc::new(cross_branch::CrossBranch::new(
        Arc::clone(&node),
        branch,
        config.route_map()?,
        peers.clone(),
        registry.clone(),
    ));
    let banking = BankingServer::new(banking_service::BankingService {
        node: Arc::clone(&node),
        gate: gate.clone(),
        branch,
        next_serial: Arc::clone(&next_serial),
        cross_branch: Arc::clone(&cross_branch),
        engine: engine.clone(),
    })
    .max_decoding_message_size(limit);
    let risk = RiskServer::new(risk_service::RiskService {
        node: Arc::clone(&node),
        gate: gate.clone(),
        branch,
        engine: engine.clone(),
    })
    .max_decoding_message_size(limit);
    let events = EventsServer::new(events_service::EventsService {
        node: Arc::clone(&node),
        gate: gate.clone(),
        branch: config.branch,
    });
    let raft_transport = replication::raft_transport(&node, gate.clone(), isolation.clone());
    let cluster = replication::cluster_service(&node, gate.clone(), config.branch);
    let router = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(CALLS_PER_CONNECTION_MAX)
        // Windows that hold a whole batch: with HTTP/2's 64 KiB default a 1 MiB
        // request crawls through dozens of window updates.
        .initial_stream_window_size(Some(STREAM_WINDOW_BYTES))
        .initial_connection_window_size(Some(CONNECTION_WINDOW_BYTES))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(ledger)
        .add_service(banking)
        .add_service(events)
        .add_service(risk)
        .add_service(raft_transport)
        .add_service(cluster);

    let mut tasks = vec![
        tokio::spawn(leader_duties(
            Arc::clone(&node),
            branch,
            next_serial,
            registry.clone(),
            stop_receiver.clone(),
        )),
        tokio::spawn(
            Arc::clone(&cross_branch).run_resume(Arc::clone(&node), stop_receiver.clone()),
        ),
    ];
    if let Some(registry) = registry {
        let target = corebank_registry::HeartbeatTarget {
            branch: branch.code,
            node_id: config.node_id,
            address: config
                .advertise
                .clone()
                .unwrap_or_else(|| grpc_addr.to_string()),
        };
        tasks.push(tokio::spawn(registry_link::run_heartbeats(
            registry,
            target,
            Arc::clone(&node),
            stop_receiver.clone(),
        )));
    }
    tasks.extend(serving::serve(
        router,
        listeners.grpc,
        tls,
        stop_receiver.clone(),
        ServeOptions {
            stopped_message: "the gRPC server stopped",
            count_handshake_failures: true,
        },
    ));
    if let Some(engine) = engine.clone() {
        tasks.push(tokio::spawn(watch_rules(engine, stop_receiver.clone())));
    }
    if let Some(listener) = listeners.admin {
        let node = Arc::clone(&node);
        let shutdown = stopped(stop_receiver);
        tasks.push(tokio::spawn(async move {
            if let Err(error) = admin::serve(listener, node, shutdown).await {
                tracing::error!(%error, "the admin server stopped");
            }
        }));
    }
    Ok(RunningServer {
        cross_branch,
        engine,
        node,
        serving: Serving {
            gate,
            isolation,
            grpc_addr,
            admin_addr,
            stop,
            tasks,
        },
    })
}
