//! `corebank node`: one branch replica.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use corebank_server::ServerConfig;

use crate::serve;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    corebank node --branch 0001 --data-dir ./data/0001 --listen 127.0.0.1:8080 --admin 127.0.0.1:9180 --insecure\n  \
    corebank node --branch 0001 --data-dir /var/lib/corebank/0001 --listen 0.0.0.0:8080 \\\n      \
    --tls-cert certs/node.pem --tls-key certs/node-key.pem --tls-ca certs/ca.pem --api-keys keys.json\n\n\
    A branch of three replicas (run one line on each machine; the same --member list on all):\n  \
    corebank node --branch 0001 --data-dir /var/lib/corebank/0001 --listen 0.0.0.0:8080 \\\n      \
    --advertise 10.0.0.1:8080 --node-id 1 --member 1=10.0.0.1:8080,2=10.0.0.2:8080,3=10.0.0.3:8080 \\\n      \
    --tls-cert certs/node1.pem --tls-key certs/node1-key.pem --tls-ca certs/ca.pem\n\
    Replicas authenticate each other with their node certificates (mutual TLS, admin scope),\n\
    or with the API key in COREBANK_PEER_API_KEY. Runbook: docs/operations.md.\n\n\
    Settings may also come from a TOML file (--config); flags override it. Keys: branch, data_dir,\n\
    listen, admin, tls_cert, tls_key, tls_ca, insecure, api_keys, queue_requests_max,\n\
    snapshot_every_entries, node_id, members (list of \"ID=HOST:PORT\"), join, advertise,\n\
    log_entries_kept_after_snapshot, routes (list of \"BRANCH=HOST:PORT\"), registry (list of\n\
    \"HOST:PORT\"), and a [risk] table (enabled, rules, model, require_model, failure_policy,\n\
    hold_threshold, decline_threshold, freeze_after, daily_review_budget). Logs are JSON lines\n\
    on stderr (RUST_LOG sets the level).")]
pub struct NodeArgs {
    /// A TOML configuration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The four-digit branch code, e.g. 0001.
    #[arg(long)]
    pub branch: Option<String>,
    /// Where the Raft log and snapshots live.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// gRPC address [default: 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Address of /metrics, /health and /ready (plain HTTP).
    #[arg(long)]
    pub admin: Option<SocketAddr>,
    /// The node's TLS certificate chain (PEM).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// The node's TLS private key (PEM).
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
    /// Requests the write queue holds before callers are told to retry.
    #[arg(long)]
    pub queue_requests_max: Option<usize>,
    /// Log entries between snapshots.
    #[arg(long)]
    pub snapshot_every_entries: Option<u64>,
    /// This replica's node id within the branch (from 1; unique, never reused) [default: 1].
    #[arg(long, value_name = "ID")]
    pub node_id: Option<u64>,
    /// The founding replicas of the branch, ID=HOST:PORT each (this one included), the same
    /// list on each of them; repeat the flag or separate with commas. Without it the branch
    /// has this one replica (more can be added later with `corebank client add-replica`).
    #[arg(long = "member", value_name = "ID=HOST:PORT", value_delimiter = ',')]
    pub members: Vec<String>,
    /// Start empty and wait to be added to a running branch by its leader
    /// (`corebank client add-replica --node-id ID --address HOST:PORT`).
    #[arg(long)]
    pub join: bool,
    /// The address other replicas and clients dial for this one [default: --listen].
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// Log entries kept behind each snapshot for replicas catching up [default: 1000].
    #[arg(long, value_name = "N")]
    pub log_entries_kept_after_snapshot: Option<u64>,
    /// Where another branch is, for transfers to its customers: BRANCH=HOST:PORT, one per
    /// replica of that branch; repeat the flag or separate with commas.
    #[arg(long = "route", value_name = "BRANCH=HOST:PORT", value_delimiter = ',')]
    pub routes: Vec<String>,
    /// The registry's replicas, HOST:PORT each (repeat or separate with commas): this
    /// replica heartbeats to it, and branches without a --route are looked up there.
    #[arg(long = "registry", value_name = "HOST:PORT", value_delimiter = ',')]
    pub registry: Vec<String>,
    /// Fault tests only: SIGUSR1 cuts this replica off from its peers (a network
    /// partition, both directions), SIGUSR2 heals it.
    #[arg(long)]
    pub fault_injection: bool,
    #[command(flatten)]
    pub risk: RiskArgs,
}

/// The fraud screen of new customer transfers (docs/risk.md).
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Fraud screening")]
pub struct RiskArgs {
    /// Screen new customer transfers: on (the default) or off.
    #[arg(long = "risk", value_name = "on|off", value_parser = ["on", "off"])]
    pub risk: Option<String>,
    /// A rules file (TOML; docs/risk.md); reloaded when it changes [default: the
    /// built-in rules].
    #[arg(long, value_name = "FILE")]
    pub risk_rules: Option<PathBuf>,
    /// A model file from `corebank risk train` [default: none: rules and anomaly only].
    #[arg(long, value_name = "FILE")]
    pub risk_model: Option<PathBuf>,
    /// Without a usable model the screen fails and --risk-failure-policy decides.
    #[arg(long)]
    pub risk_require_model: bool,
    /// When the screen fails: open (approve) or closed (refuse with
    /// risk_check_unavailable) [default: open].
    #[arg(long, value_name = "open|closed", value_parser = ["open", "closed"])]
    pub risk_failure_policy: Option<String>,
    /// Hold for review at or above this score, 0 to 1000 [default: 600].
    #[arg(long, value_name = "SCORE")]
    pub risk_hold_threshold: Option<u16>,
    /// Decline at or above this score, 0 to 1000 [default: 900].
    #[arg(long, value_name = "SCORE")]
    pub risk_decline_threshold: Option<u16>,
    /// Freeze an account after this many high-risk transfers within an hour; 0 never
    /// [default: 3].
    #[arg(long, value_name = "N")]
    pub risk_freeze_after: Option<u32>,
    /// Adapt the hold threshold to hold about N transfers a day for review.
    #[arg(long, value_name = "N")]
    pub risk_daily_review_budget: Option<u32>,
}

impl RiskArgs {
    /// Applies the flags over `config`.
    pub fn apply(&self, config: &mut corebank_server::RiskConfig) {
        if let Some(risk) = &self.risk {
            config.enabled = risk == "on";
        }
        if let Some(rules) = &self.risk_rules {
            config.rules = Some(rules.clone());
        }
        if let Some(model) = &self.risk_model {
            config.model = Some(model.clone());
        }
        config.require_model |= self.risk_require_model;
        if let Some(policy) = &self.risk_failure_policy {
            config.failure_policy.clone_from(policy);
        }
        if let Some(threshold) = self.risk_hold_threshold {
            config.hold_threshold = threshold;
        }
        if let Some(threshold) = self.risk_decline_threshold {
            config.decline_threshold = threshold;
        }
        if let Some(n) = self.risk_freeze_after {
            config.freeze_after = n;
        }
        if let Some(n) = self.risk_daily_review_budget {
            config.daily_review_budget = Some(n);
        }
    }
}

fn parse_branch(text: &str) -> anyhow::Result<u16> {
    let valid = text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit());
    anyhow::ensure!(
        valid,
        "the branch code must be four digits like 0001, not {text:?}"
    );
    Ok(text.parse()?)
}

fn config(args: &NodeArgs) -> anyhow::Result<ServerConfig> {
    let mut config = match &args.config {
        Some(path) => ServerConfig::from_toml_file(path)?,
        None => {
            let branch = args
                .branch
                .as_deref()
                .context("--branch is required (or a --config file with `branch`)")?;
            let data_dir = args
                .data_dir
                .clone()
                .context("--data-dir is required (or a --config file with `data_dir`)")?;
            let listen = args
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
            let mut config = ServerConfig::insecure(parse_branch(branch)?, data_dir, listen);
            config.insecure = false;
            config
        }
    };
    if let Some(branch) = &args.branch {
        config.branch = parse_branch(branch)?;
    }
    if let Some(dir) = args.data_dir.clone() {
        config.data_dir = dir;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    config.admin = args.admin.or(config.admin);
    config.tls_cert = args.tls_cert.clone().or(config.tls_cert);
    config.tls_key = args.tls_key.clone().or(config.tls_key);
    config.tls_ca = args.tls_ca.clone().or(config.tls_ca);
    config.insecure |= args.insecure;
    config.api_keys = args.api_keys.clone().or(config.api_keys);
    if let Some(queue) = args.queue_requests_max {
        config.queue_requests_max = queue;
    }
    if let Some(every) = args.snapshot_every_entries {
        config.snapshot_every_entries = every;
    }
    if let Some(id) = args.node_id {
        config.node_id = id;
    }
    if !args.members.is_empty() {
        config.members.clone_from(&args.members);
    }
    config.join |= args.join;
    if !args.routes.is_empty() {
        config.routes.clone_from(&args.routes);
    }
    if !args.registry.is_empty() {
        config.registry.clone_from(&args.registry);
    }
    if let Some(kept) = args.log_entries_kept_after_snapshot {
        config.log_entries_kept_after_snapshot = kept;
    }
    config.advertise = args.advertise.clone().or(config.advertise);
    args.risk.apply(&mut config.risk);
    // Peers that take API keys: the key this replica presents (never from a file or a flag,
    // so that it shows neither in `ps` nor in a configuration committed somewhere).
    if let Ok(key) = std::env::var("COREBANK_PEER_API_KEY")
        && !key.is_empty()
    {
        config.peer_api_key = Some(corebank_security::Secret::new(key));
    }
    config.validate()?;
    Ok(config)
}

pub fn run(args: NodeArgs) -> anyhow::Result<ExitCode> {
    let config = config(&args)?;
    let fault_injection = args.fault_injection;
    serve::init_logging();
    let runtime = serve::runtime()?;
    runtime.block_on(async move {
        if config.insecure {
            serve::insecure_banner(
                "branch",
                config
                    .api_keys
                    .is_none()
                    .then_some(&["and NO CREDENTIALS: any local process can move money."]),
            );
        }
        let branch = config.branch;
        let node_id = config.node_id;
        let data_dir = config.data_dir.display().to_string();
        let tls = !config.insecure;
        let server = corebank_server::start(config).await?;
        // Machine-readable start-up lines (tests and scripts read the bound ports here).
        println!("corebank node: branch {branch:04} data {data_dir} node-id {node_id}");
        serve::announce(server.grpc_addr(), tls, server.admin_addr());
        tracing::info!(branch, grpc = %server.grpc_addr(), "branch node ready");
        if fault_injection {
            serve::fault_injection_banner();
        }
        serve::serve_until_stopped(&server, fault_injection, "the other replicas").await;
        tracing::info!("stopping");
        server.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
