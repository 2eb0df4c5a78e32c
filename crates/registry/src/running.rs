//! A registry replica as a process part: [`start`] opens the Raft store in the data
//! directory and serves the `Registry`, `Cluster` and `RaftTransport` services on one
//! gRPC port (TLS 1.3, or plain TCP on loopback with `insecure`), plus `/health`,
//! `/ready` and `/metrics` on the admin port. `corebank registry` runs it; `corebank
//! demo` starts one in-process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use corebank_proto::v1::cluster_server::ClusterServer;
use corebank_raft_net::{
    AuthorizePeer, GrpcNetwork, Isolation, PeerSettings, RaftTransportService,
};
use corebank_security::{ApiKeyStore, Authenticator, Scope};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};

use crate::auth::{AuthGate, Authorize};
use crate::cluster::RegistryClusterService;
use crate::config::{RegistryConfig, RegistryConfigError};
use crate::raft_store::{RaftStore, RaftStoreConfig, RaftStoreError, RegistryTypeConfig};
use crate::service::RegistryService;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections whose TLS handshakes are in progress at once.
const HANDSHAKES_MAX: usize = 1_024;
/// Concurrent calls on one connection.
const CALLS_PER_CONNECTION_MAX: usize = 1_024;

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
    auth: AuthGate,
    isolation: Isolation,
    grpc_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningRegistry")
            .field("grpc_addr", &self.grpc_addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

impl RunningRegistry {
    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound admin address, when one was asked for.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The directory's store (Raft state, membership, local reads).
    pub fn store(&self) -> &Arc<RaftStore> {
        &self.store
    }

    /// Re-reads the API key file (revocations and new keys take effect); returns the
    /// number of keys, or `None` without a key file.
    pub fn reload_api_keys(&self) -> Option<Result<usize, corebank_security::KeyStoreError>> {
        self.auth
            .authenticator()
            .api_keys()
            .map(ApiKeyStore::reload)
    }

    /// Fault injection: cuts this replica off from its peers (or heals it).
    pub fn isolate(&self, isolated: bool) {
        self.isolation.set(isolated);
    }

    /// Stops taking calls, lets calls in progress finish, and stops Raft.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        self.store.shutdown().await;
    }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Starts a registry replica: binds its ports, opens (or creates) its data directory,
/// joins or forms its Raft group, and serves. A replica alone in its group leads
/// before this returns.
pub async fn start(config: RegistryConfig) -> Result<RunningRegistry, RegistryStartError> {
    config.validate()?;
    let api_keys = config
        .api_keys
        .as_deref()
        .map(ApiKeyStore::load)
        .transpose()?;
    let auth = if config.insecure && api_keys.is_none() {
        AuthGate::insecure_development()
    } else {
        AuthGate::new(Authenticator::new(api_keys))
    };
    let tls = if config.insecure {
        None
    } else {
        match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(corebank_security::tls::server_config_from_files(
                cert,
                key,
                config.tls_ca.as_deref(),
            )?),
            _ => return Err(RegistryConfigError::TlsMissing.into()),
        }
    };
    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| RegistryStartError::Bind {
                address: config.listen,
                source,
            })?;
    let grpc_addr = listener
        .local_addr()
        .map_err(|source| RegistryStartError::Bind {
            address: config.listen,
            source,
        })?;
    let admin_listener = match config.admin {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .map_err(|source| RegistryStartError::Bind { address, source })?,
        ),
        None => None,
    };
    let admin_addr = admin_listener
        .as_ref()
        .and_then(|listener| listener.local_addr().ok());

    let isolation = Isolation::default();
    let peers = PeerSettings {
        tls: match (&config.tls_ca, &config.tls_cert, &config.tls_key) {
            (Some(ca), Some(cert), Some(key)) if !config.insecure => {
                Some(corebank_client::TlsSettings::new(ca).with_client_cert(cert, key))
            }
            _ => None,
        },
        api_key: config.peer_api_key.clone(),
        isolation: isolation.clone(),
    };
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
    let authorize_peer: AuthorizePeer = Arc::new(move |request| {
        peer_gate
            .authorize(request, Scope::Admin)
            .map(|_identity| ())
    });
    let raft_transport =
        RaftTransportService::new(store.raft().clone(), authorize_peer, isolation.clone())
            .into_server();
    let cluster = ClusterServer::new(RegistryClusterService {
        store: Arc::clone(&store),
        authorize: auth.clone(),
    });
    let router = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(CALLS_PER_CONNECTION_MAX)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(registry)
        .add_service(cluster)
        .add_service(raft_transport);

    let (stop, stop_receiver) = watch::channel(false);
    let mut tasks = Vec::new();
    let shutdown = stopped(stop_receiver.clone());
    let server = match tls {
        None => tokio::spawn(async move {
            if let Err(error) = router
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
                .await
            {
                tracing::error!(%error, "the registry's gRPC server stopped");
            }
        }),
        Some(tls) => {
            let (incoming, acceptor) = tls_incoming(listener, tls, stop_receiver.clone());
            tasks.push(acceptor);
            tokio::spawn(async move {
                if let Err(error) = router
                    .serve_with_incoming_shutdown(ReceiverStream::new(incoming), shutdown)
                    .await
                {
                    tracing::error!(%error, "the registry's gRPC server stopped");
                }
            })
        }
    };
    tasks.push(server);
    if let Some(listener) = admin_listener {
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
        auth,
        isolation,
        grpc_addr,
        admin_addr,
        stop,
        tasks,
    })
}

type TlsStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// Accepts TCP connections and completes their TLS handshakes (bounded in number and
/// time) off the accept loop; finished connections come out of the receiver.
fn tls_incoming(
    listener: TcpListener,
    tls: corebank_security::rustls::ServerConfig,
    mut stop: watch::Receiver<bool>,
) -> (
    tokio::sync::mpsc::Receiver<Result<TlsStream, std::io::Error>>,
    JoinHandle<()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let (connections, incoming) = tokio::sync::mpsc::channel(HANDSHAKES_MAX);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_MAX));
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.changed() => return,
            };
            let Ok((tcp, peer)) = accepted else { continue };
            let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = connections.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                    }
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    (incoming, task)
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
