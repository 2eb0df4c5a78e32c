//! `corebank registry`: one replica of the registry (the branch directory), alone or in
//! a Raft group of three.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use corebank_registry::{REGISTRY_LISTEN_DEFAULT, RegistryConfig};

use crate::serve;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    corebank registry --data-dir ./data/registry --listen 127.0.0.1:9090 --admin 127.0.0.1:9190 --insecure\n  \
    corebank registry --data-dir /var/lib/corebank/registry --listen 0.0.0.0:9090 \\\n      \
    --tls-cert certs/registry.pem --tls-key certs/registry-key.pem --tls-ca certs/ca.pem --api-keys keys.json\n\n\
    A registry of three replicas (run one line on each machine; the same --member list on all):\n  \
    corebank registry --data-dir /var/lib/corebank/registry --listen 0.0.0.0:9090 \\\n      \
    --advertise 10.0.9.1:9090 --node-id 1 --member 1=10.0.9.1:9090,2=10.0.9.2:9090,3=10.0.9.3:9090 \\\n      \
    --tls-cert certs/registry1.pem --tls-key certs/registry1-key.pem --tls-ca certs/ca.pem\n\
    Replicas authenticate each other with their certificates (mutual TLS, admin scope), or with\n\
    the API key in COREBANK_PEER_API_KEY. Membership: `corebank client --server REGISTRY\n\
    cluster-status | add-replica | remove-replica`. Runbook: docs/operations.md, \"The registry\".\n\
    Logs are JSON lines on stderr (RUST_LOG sets the level).")]
pub struct RegistryArgs {
    /// Where the registry's Raft log and snapshot live.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// gRPC address (Registry, Cluster and RaftTransport services) [default: 127.0.0.1:9090].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Address of /metrics, /health and /ready (plain HTTP).
    #[arg(long)]
    pub admin: Option<SocketAddr>,
    /// The replica's TLS certificate chain (PEM).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// The replica's TLS private key (PEM).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// The CA whose client certificates are accepted (mutual TLS).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Development mode: plain TCP, loopback only, no credentials unless --api-keys.
    #[arg(long)]
    pub insecure: bool,
    /// The API key file (see `corebank keys`).
    #[arg(long)]
    pub api_keys: Option<PathBuf>,
    /// This replica's node id in the registry group (from 1; unique, never reused) [default: 1].
    #[arg(long, value_name = "ID")]
    pub node_id: Option<u64>,
    /// The founding replicas of the registry, ID=HOST:PORT each (this one included), the same
    /// list on each of them; repeat the flag or separate with commas. Without it the registry
    /// has this one replica.
    #[arg(long = "member", value_name = "ID=HOST:PORT", value_delimiter = ',')]
    pub members: Vec<String>,
    /// Reconcile the bank every N seconds while this replica leads the registry: the
    /// clearing accounts of every pair of branches, stuck cross-branch transfers, and
    /// posted debits = posted credits per currency (0: never). Breaks are logged as
    /// errors and counted in /metrics (corebank_reconciliation_breaks).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub reconcile_every: u64,
    /// Start empty and wait to be added by the registry's leader
    /// (`corebank client --server REGISTRY add-replica --node-id ID --address HOST:PORT`).
    #[arg(long)]
    pub join: bool,
    /// The address other replicas and clients dial for this one [default: --listen].
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// Log entries between snapshots [default: 1000].
    #[arg(long, value_name = "N")]
    pub snapshot_every_entries: Option<u64>,
    /// Log entries kept behind each snapshot for replicas catching up [default: 1000].
    #[arg(long, value_name = "N")]
    pub log_entries_kept_after_snapshot: Option<u64>,
    /// Fault tests only: SIGUSR1 cuts this replica off from its peers (a network
    /// partition, both directions), SIGUSR2 heals it.
    #[arg(long)]
    pub fault_injection: bool,
}

fn config(args: &RegistryArgs) -> anyhow::Result<RegistryConfig> {
    let mut config = RegistryConfig::insecure(
        args.data_dir.clone(),
        args.listen.unwrap_or(REGISTRY_LISTEN_DEFAULT),
    );
    config.insecure = args.insecure;
    config.admin = args.admin;
    config.tls_cert.clone_from(&args.tls_cert);
    config.tls_key.clone_from(&args.tls_key);
    config.tls_ca.clone_from(&args.tls_ca);
    config.api_keys.clone_from(&args.api_keys);
    if let Some(id) = args.node_id {
        config.node_id = id;
    }
    config.members.clone_from(&args.members);
    config.join = args.join;
    config.advertise.clone_from(&args.advertise);
    if let Some(every) = args.snapshot_every_entries {
        config.snapshot_every_entries = every;
    }
    if let Some(kept) = args.log_entries_kept_after_snapshot {
        config.log_entries_kept_after_snapshot = kept;
    }
    // Peers that take API keys: the key this replica presents (never from a file or a flag,
    // so that it shows neither in `ps` nor in a configuration committed somewhere).
    if let Ok(key) = std::env::var("COREBANK_PEER_API_KEY")
        && !key.is_empty()
    {
        config.peer_api_key = Some(corebank_security::Secret::new(key));
    }
    config
        .validate()
        .context("the registry's settings cannot run")?;
    Ok(config)
}

pub fn run(args: RegistryArgs) -> anyhow::Result<ExitCode> {
    let config = config(&args)?;
    let args_reconcile_every = args.reconcile_every;
    // How the registry reaches the branches: its own certificate (admin scope) or the
    // peer API key.
    let mut reconcile_template = corebank_client::ClientConfig::new(String::new())
        .with_total_timeout(std::time::Duration::from_secs(30));
    if let (false, Some(ca)) = (config.insecure, &config.tls_ca) {
        let mut tls = corebank_client::TlsSettings::new(ca);
        if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
            tls = tls.with_client_cert(cert, key);
        }
        reconcile_template = reconcile_template.with_tls(tls);
    }
    reconcile_template.api_key = config.peer_api_key.clone();
    let fault_injection = args.fault_injection;
    serve::init_logging();
    let runtime = serve::runtime()?;
    runtime.block_on(async move {
        if config.insecure {
            serve::insecure_banner(
                "registry",
                config.api_keys.is_none().then_some(&[
                    "and NO CREDENTIALS: any local process can rewrite the directory",
                    "and send every branch's traffic wherever it likes.",
                ]),
            );
        }
        let node_id = config.node_id;
        let data_dir = config.data_dir.display().to_string();
        let tls = !config.insecure;
        let registry = corebank_registry::start(config).await?;
        // Machine-readable start-up lines (tests and scripts read the bound ports here).
        println!("corebank registry: data {data_dir} node-id {node_id}");
        serve::announce(registry.grpc_addr(), tls, registry.admin_addr());
        tracing::info!(grpc = %registry.grpc_addr(), node_id, "registry replica ready");
        if fault_injection {
            serve::fault_injection_banner();
        }
        let reconciliation = (args_reconcile_every > 0).then(|| {
            tokio::spawn(periodic_reconciliation(
                std::sync::Arc::clone(registry.store()),
                reconcile_template.clone(),
                std::time::Duration::from_secs(args_reconcile_every),
            ))
        });
        serve::serve_until_stopped(&registry, fault_injection, "the other registry replicas").await;
        if let Some(task) = reconciliation {
            task.abort();
        }
        tracing::info!("stopping");
        registry.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// While this replica leads the registry, reconciles every branch in the directory
/// every `interval`.
async fn periodic_reconciliation(
    store: std::sync::Arc<corebank_registry::RaftStore>,
    template: corebank_client::ClientConfig,
    interval: std::time::Duration,
) {
    use corebank_registry::RegistryStore as _;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        // A linearizable read: only the leader gets the directory (and so reconciles).
        let Ok(routes) = store
            .read(|directory| {
                directory
                    .branches()
                    .map(|branch| {
                        let addresses: Vec<String> = branch
                            .replicas
                            .iter()
                            .map(|replica| replica.address.clone())
                            .collect();
                        (branch.code, addresses)
                    })
                    .collect::<std::collections::BTreeMap<_, _>>()
            })
            .await
        else {
            continue;
        };
        if routes.len() < 2 {
            continue;
        }
        match crate::reconcile::reconcile_bank(&routes, &template, 10 * 60 * 1_000_000_000).await {
            Ok(report) => {
                metrics::gauge!("corebank_reconciliation_breaks").set(report.breaks.len() as f64);
                metrics::counter!("corebank_reconciliation_runs_total").increment(1);
                if report.is_clean() {
                    tracing::info!(
                        branches = routes.len(),
                        open_sagas = report.open_sagas.len(),
                        "reconciliation clean"
                    );
                } else {
                    tracing::error!(
                        breaks = report.breaks.len(),
                        report = %serde_json::to_string(&report).unwrap_or_default(),
                        "reconciliation found breaks"
                    );
                }
            }
            Err(error) => {
                metrics::counter!("corebank_reconciliation_failures_total").increment(1);
                tracing::warn!(%error, "reconciliation could not read every branch");
            }
        }
    }
}
