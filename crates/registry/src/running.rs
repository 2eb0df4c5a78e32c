//! A registry replica as a process part: [`start`] opens the Raft store in the data
//! directory and serves the `Registry`, `Identity`, `Cluster` and `RaftTransport`
//! services on one gRPC port (TLS 1.3, or plain TCP on loopback with `insecure`),
//! plus `/health`,
//! `/ready` and `/metrics` on the admin port. `corebank registry` runs it; `corebank
//! demo` starts one in-process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use corebank_raft_net::serving::{self, CALLS_PER_CONNECTION_MAX, ServeOptions, stopped};
use corebank_raft_net::{
    AuthorizePeer, BindError, GrpcNetwork, Isolation, RaftTransportService, ServerTlsError, Serving,
};
use corebank_security::Scope;
use tokio::sync::watch;

use crate::cluster::cluster_service;
use crate::config::{RegistryConfig, RegistryConfigError};
use crate::identity_service::IdentityService;
use crate::raft_store::{RaftStore, RaftStoreConfig, RaftStoreError, RegistryTypeConfig};
use crate::service::RegistryService;

/// Why a registry replica could not start.
#[derive(Debug, thiserror::Error)]
pub enum RegistryStartError {
    /// The settings cannot run.
    #[error(transparent)]
    Config(#[from] RegistryConfigError),
    /// The data directory, log, snapshot or Raft.
    #[error(transparent)]
    Raft(#[from] RaftStoreError),
    /// The TLS files.
    #[error("TLS: {0}")]
    Tls(#[from] corebank_security::TlsError),
    /// The API key file.
    #[error("API keys: {0}")]
    Keys(#[from] corebank_security::KeyStoreError),
    /// A port is taken or not allowed.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
}

/// A running registry replica; dropping it does not stop it,
/// [`RunningRegistry::shutdown`] does.
pub struct RunningRegistry {
    store: Arc<RaftStore>,
    serving: Serving,
}

impl std::fmt::Debug for RunningRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningRegistry")
            .field("grpc_addr", &self.serving.grpc_addr)
            .field("admin_addr", &self.serving.admin_addr)
            .finish_non_exhaustive()
    }
}

impl RunningRegistry {
    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.serving.grpc_addr
    }

    /// The bound admin address, when one was asked for.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.serving.admin_addr
    }

    /// The directory's store (Raft state, membership, local reads).
    pub fn store(&self) -> &Arc<RaftStore> {
        &self.store
    }

    /// Re-reads the API key file (revocations and new keys take effect); returns the
    /// number of keys, or `None` without a key file.
    pub fn reload_api_keys(&self) -> Option<Result<usize, corebank_security::KeyStoreError>> {
        self.serving.reload_api_keys()
    }

    /// Fault injection: cuts this replica off from its peers (or heals it).
    pub fn isolate(&self, isolated: bool) {
        self.serving.isolate(isolated);
    }

    /// Stops taking calls, lets calls in progress finish, and stops Raft.
    pub async fn shutdown(self) {
        self.serving.stop().await;
        self.store.shutdown().await;
    }
}

/// Starts a registry replica: binds its ports, opens (or creates) its data directory,
/// joins or forms its Raft group, and serves. A replica alone in its group leads
/// before this returns.
pub async fn start(config: RegistryConfig) -> Result<RunningRegistry, RegistryStartError> {
    config.validate()?;
    let transport = config.transport();
    let auth = transport.gate()?;
    let tls = transport.server_tls().map_err(|error| match error {
        ServerTlsError::Missing => RegistryStartError::Config(RegistryConfigError::TlsMissing),
        ServerTlsError::Tls(error) => RegistryStartError::Tls(error),
    })?;
    let listeners = transport
        .bind()
        .await
        .map_err(|BindError { address, source }| RegistryStartError::Bind { address, source })?;
    let grpc_addr = listeners.grpc_addr;
    let admin_addr = listeners.admin_addr;

    let isolation = Isolation::default();
    let peers = transport.peers(config.peer_api_key.clone(), isolation.clone());
    let store_config = RaftStoreConfig {
        data_dir: config.data_dir.clone(),
        node_id: config.node_id,
        advertise_addr: config
            .advertise
            .clone()
            .unwrap_or_else(|| grpc_addr.to_string()),
        initial_members: config.member_map()?,
        join: config.join,
        snapshot_every_entries: config.snapshot_every_entries,
        log_entries_kept_after_snapshot: config.log_entries_kept_after_snapshot,
    };
    let store = Arc::new(
        RaftStore::open(store_config, GrpcNetwork::<RegistryTypeConfig>::new(peers)).await?,
    );

    let registry = RegistryService::new(Arc::clone(&store), auth.clone())
        .with_config(config.service.clone())
        .into_server();
    let peer_gate = auth.clone();
    let authorize_peer: AuthorizePeer =
        Arc::new(move |request| peer_gate.check(request, Scope::Admin).map(|_identity| ()));
    let raft_transport =
        RaftTransportService::new(store.raft().clone(), authorize_peer, isolation.clone())
            .into_server();
    let cluster = cluster_service(&store, auth.clone());
    let identity = IdentityService::new(Arc::clone(&store), auth.clone()).into_server();
    let router = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(CALLS_PER_CONNECTION_MAX)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(registry)
        .add_service(identity)
        .add_service(cluster)
        .add_service(raft_transport);

    let (stop, stop_receiver) = watch::channel(false);
    let mut tasks = serving::serve(
        router,
        listeners.grpc,
        tls,
        stop_receiver.clone(),
        ServeOptions {
            stopped_message: "the registry's gRPC server stopped",
            count_handshake_failures: false,
        },
    );
    if let Some(listener) = listeners.admin {
        let store = Arc::clone(&store);
        let shutdown = stopped(stop_receiver);
        tasks.push(tokio::spawn(async move {
            let app = Router::new()
                .route("/health", get(health))
                .route("/ready", get(ready))
                .route("/metrics", get(metrics))
                .with_state(store);
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(%error, "the registry's admin server stopped");
            }
        }));
    }
    tracing::info!(
        grpc = %grpc_addr,
        node_id = config.node_id,
        leader = store.is_leader(),
        "registry replica started"
    );
    Ok(RunningRegistry {
        store,
        serving: Serving {
            gate: auth,
            isolation,
            grpc_addr,
            admin_addr,
            stop,
            tasks,
        },
    })
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(State(store): State<Arc<RaftStore>>) -> (StatusCode, &'static str) {
    if store.is_leader() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: this replica does not lead the registry\n",
        )
    }
}

/// Prometheus text: the registry's few gauges, rendered here (no process-wide
/// recorder, so that a registry can run inside another corebank process).
async fn metrics(State(store): State<Arc<RaftStore>>) -> String {
    let view = store.cluster_view();
    let branches = store.read_local(|directory| directory.len()).unwrap_or(0);
    let gauges: [(&str, &str, u64); 6] = [
        (
            "corebank_registry_applied_log_index",
            "Index of the last Raft log entry applied to the directory.",
            store.applied_index(),
        ),
        (
            "corebank_registry_last_log_index",
            "Index of the last entry in this replica's Raft log.",
            view.last_log_index,
        ),
        (
            "corebank_registry_raft_term",
            "The current Raft term.",
            view.term,
        ),
        (
            "corebank_registry_raft_is_leader",
            "1 when this replica leads the registry group.",
            u64::from(store.is_leader()),
        ),
        (
            "corebank_registry_members",
            "Members of the registry group (voters and learners).",
            u64::try_from(view.members.len()).unwrap_or(u64::MAX),
        ),
        (
            "corebank_registry_branches",
            "Branches in the directory.",
            u64::try_from(branches).unwrap_or(u64::MAX),
        ),
    ];
    let mut text = String::new();
    for (name, help, value) in gauges {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        ));
    }
    text
}
