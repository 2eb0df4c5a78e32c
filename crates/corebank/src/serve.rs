//! What `corebank node` and `corebank registry` share around a serving replica: the
//! logging set-up, the insecure-mode banner, the machine-readable start-up lines, and
//! waiting for a stop signal (SIGHUP reloads the API keys, SIGUSR1/SIGUSR2 isolate and
//! heal under fault injection).

use std::net::SocketAddr;

use corebank_security::KeyStoreError;

/// A running replica, as the signal handling sees it.
pub(crate) trait Served {
    /// Re-reads the API key file; the number of keys, or `None` without a key file.
    fn reload_api_keys(&self) -> Option<Result<usize, KeyStoreError>>;
    /// Fault injection: cuts the replica off from its peers (or heals it).
    fn isolate(&self, isolated: bool);
}

impl Served for corebank_server::RunningServer {
    fn reload_api_keys(&self) -> Option<Result<usize, KeyStoreError>> {
        corebank_server::RunningServer::reload_api_keys(self)
    }

    fn isolate(&self, isolated: bool) {
        corebank_server::RunningServer::isolate(self, isolated);
    }
}

impl Served for corebank_registry::RunningRegistry {
    fn reload_api_keys(&self) -> Option<Result<usize, KeyStoreError>> {
        corebank_registry::RunningRegistry::reload_api_keys(self)
    }

    fn isolate(&self, isolated: bool) {
        corebank_registry::RunningRegistry::isolate(self, isolated);
    }
}

/// JSON logs on stderr, `info` (Raft's own at `warn`) unless `RUST_LOG` says otherwise.
pub(crate) fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .init();
}

/// The multi-threaded runtime a replica runs on.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

const BANNER_BORDER: &str =
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!";

/// The warning on stderr of a replica in insecure development mode: `no_credentials`
/// (what anyone can do without credentials) when there is no API key file; `what` is
/// the kind of replica ("branch", "registry").
pub(crate) fn insecure_banner(what: &str, no_credentials: Option<&[&str]>) {
    eprintln!("{BANNER_BORDER}");
    eprintln!("!! INSECURE DEVELOPMENT MODE: plain TCP, no encryption,");
    for line in no_credentials.unwrap_or_default() {
        eprintln!("!! {line}");
    }
    eprintln!("!! Listening on loopback only. Never run a real {what} like this.");
    eprintln!("{BANNER_BORDER}");
}

/// The machine-readable start-up lines after the first (tests and scripts read the
/// bound ports here), ending with `ready`.
pub(crate) fn announce(grpc: SocketAddr, tls: bool, admin: Option<SocketAddr>) {
    println!(
        "listening grpc {grpc} ({})",
        if tls { "TLS 1.3" } else { "plain TCP" }
    );
    if let Some(admin) = admin {
        println!("listening admin {admin}");
    }
    println!("ready");
}

/// The warning on stderr when fault injection is on.
pub(crate) fn fault_injection_banner() {
    eprintln!("!! FAULT INJECTION enabled: SIGUSR1 isolates this replica, SIGUSR2 heals it.");
}

/// Waits for Ctrl-C or SIGTERM; SIGHUP reloads the API key file meanwhile, and with
/// `fault_injection` SIGUSR1 / SIGUSR2 isolate the replica from `peers` ("the other
/// replicas") and reconnect it.
pub(crate) async fn serve_until_stopped(served: &impl Served, fault_injection: bool, peers: &str) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut terminate), Ok(mut hangup), Ok(mut isolate), Ok(mut heal)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
            signal(SignalKind::user_defined1()),
            signal(SignalKind::user_defined2()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        loop {
            tokio::select! {
                _ = isolate.recv() => if fault_injection {
                    tracing::warn!("fault injection: isolated from {peers}");
                    served.isolate(true);
                },
                _ = heal.recv() => if fault_injection {
                    tracing::warn!("fault injection: reconnected to {peers}");
                    served.isolate(false);
                },
                _ = tokio::signal::ctrl_c() => return,
                _ = terminate.recv() => return,
                _ = hangup.recv() => match served.reload_api_keys() {
                    Some(Ok(keys)) => tracing::info!(keys, "API keys reloaded"),
                    Some(Err(error)) => tracing::error!(%error, "API keys not reloaded; the previous keys stay in force"),
                    None => tracing::info!("SIGHUP: no API key file to reload"),
                },
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (served, fault_injection, peers);
        let _ = tokio::signal::ctrl_c().await;
    }
}
