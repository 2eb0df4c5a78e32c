//! `corebank agent`: the risk agent. Follows the committed-event stream and the risk
//! journal of every branch, detects mule rings across branches, raises alerts,
//! retrains models and promotes the better ones to the branches (crate
//! `corebank-agent`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use corebank_agent::service::{AgentConfig, BranchTarget, start};
use corebank_agent::{DetectorConfig, TrainConfig};
use corebank_client::{ClientConfig, TlsSettings};
use corebank_security::Secret;

use crate::serve;

/// Where the agent listens unless told otherwise.
const AGENT_LISTEN_DEFAULT: &str = "127.0.0.1:7070";

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    corebank agent --branch 0001=127.0.0.1:8080 --branch 0002=127.0.0.1:8081 --insecure --data-dir ./data/agent\n  \
    corebank agent --branch 0001=10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 --tls-ca certs/ca.pem \\\n      \
    --tls-cert certs/agent.pem --tls-key certs/agent-key.pem --data-dir /var/lib/corebank/agent --retrain-every 6h\n\n\
    HTTP API (plain HTTP, no authentication: keep it on loopback or behind the gateway):\n  \
    GET  /alerts?after=ID&limit=N    alerts after an id, oldest first (JSON)\n  \
    GET  /alerts/stream              the same as server-sent events, then live\n  \
    GET  /status                     branches followed (position, lag), alerts, detector, models\n  \
    GET  /models                     every model version with its figures\n  \
    POST /retrain                    train, evaluate, record; promote if better\n  \
    POST /models/v0003/promote       push a version to every branch\n  \
    GET  /metrics, GET /health\n\n  \
    curl -s localhost:7070/alerts?after=0 | jq .\n  \
    curl -s -X POST localhost:7070/retrain | jq '{name, auprc, promoted, decision}'\n\n\
    The agent needs the `read` scope on every branch, and `admin` to promote models. Logs are\n\
    JSON lines on stderr (RUST_LOG sets the level).")]
pub struct AgentArgs {
    /// A branch to follow, BRANCH=HOST:PORT; several replicas of one branch separated by
    /// commas (BRANCH=HOST:PORT,HOST:PORT,...). Repeat the flag for every branch.
    #[arg(long = "branch", value_name = "BRANCH=HOST:PORT")]
    pub branches: Vec<String>,
    /// HTTP address of the agent's API [default: 127.0.0.1:7070].
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// The agent's directory (the model registry is its `models` subdirectory).
    #[arg(long, value_name = "DIR", default_value = "data/agent")]
    pub data_dir: PathBuf,
    /// The model registry directory [default: DATA_DIR/models].
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Plain TCP to branch nodes started with --insecure.
    #[arg(long, conflicts_with_all = ["tls_ca", "tls_cert", "tls_key", "server_name"])]
    pub insecure: bool,
    /// The CA (PEM) to trust for the nodes' certificates; required unless --insecure.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// A client certificate chain (PEM) for mutual TLS; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The name to verify the nodes' certificates against [default: the host, or
    /// localhost for an IP address].
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// An API key (cbk_...) sent to every branch. Never printed.
    #[arg(
        long,
        value_name = "KEY",
        env = "COREBANK_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<Secret<String>>,
    /// Retrain on this schedule (e.g. 30m, 1h, 1d); without it only on demand
    /// (POST /retrain).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub retrain_every: Option<Duration>,
    /// A candidate is promoted only when its held-out AUPRC beats the version in
    /// service by more than this (0: strictly better; equal is not better).
    #[arg(long, value_name = "AUPRC", default_value_t = 0.0)]
    pub min_improvement: f64,
    /// Simulated customers in the synthetic training traffic (and held-out traffic).
    #[arg(long, value_name = "N", default_value_t = 300)]
    pub train_customers: u32,
    /// Simulated days of the synthetic traffic.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub train_days: u32,
    /// Boosting rounds of the model.
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub train_trees: usize,
    /// Version N trains on traffic of seed SEED + N (the held-out traffic has its own).
    #[arg(long, value_name = "SEED", default_value_t = 1_000)]
    pub train_seed: u64,
    /// Alerts kept in memory (the oldest are dropped first).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub alerts_kept: usize,
    /// Mule detection: distinct payers (any branch) within 24 h that make a fan-in.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub mule_payers: usize,
    /// Mule detection: how soon the money must leave again (e.g. 6h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "6h")]
    pub mule_onward_within: Duration,
    /// How often each branch's risk journal is read (milliseconds).
    #[arg(long, value_name = "MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub poll_ms: u64,
}

/// `90s`, `30m`, `1h`, `2d` (a bare number is seconds).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 30m, 1h or 1d"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3_600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    if seconds == 0 {
        return Err("the duration must be above zero".into());
    }
    Ok(Duration::from_secs(seconds))
}

fn branch_target(text: &str) -> anyhow::Result<BranchTarget> {
    let (code, endpoints) = text
        .split_once('=')
        .with_context(|| format!("--branch {text:?}: expected BRANCH=HOST:PORT"))?;
    let code: u16 = code
        .trim()
        .parse()
        .ok()
        .filter(|c| *c <= 9_999)
        .with_context(|| format!("--branch {text:?}: the branch code must be 0000 to 9999"))?;
    let endpoints: Vec<&str> = endpoints
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if endpoints.is_empty() {
        anyhow::bail!("--branch {text:?}: no address after '='");
    }
    Ok(BranchTarget {
        code,
        endpoints: endpoints.join(","),
    })
}

fn client_template(args: &AgentArgs) -> anyhow::Result<ClientConfig> {
    let mut config = if args.insecure || args.branches.is_empty() {
        ClientConfig::new(String::new())
    } else {
        let ca = args.tls_ca.as_ref().context(
            "TLS needs a CA to trust: pass --tls-ca FILE, or --insecure for development nodes \
             started with --insecure",
        )?;
        let mut tls = TlsSettings::new(ca);
        if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
            tls = tls.with_client_cert(cert, key);
        }
        let all_ip = args.branches.iter().all(|b| {
            b.split_once('=').is_some_and(|(_, list)| {
                list.split(',').all(|a| {
                    let host = a.trim().rsplit_once(':').map_or(a, |(h, _)| h);
                    host.trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok()
                })
            })
        });
        match &args.server_name {
            Some(name) => tls = tls.with_server_name(name),
            None if all_ip => tls = tls.with_server_name("localhost"),
            None => {}
        }
        ClientConfig::new(String::new()).with_tls(tls)
    };
    config.api_key = args.api_key.clone();
    // The event stream has no deadline; keep-alive notices a dead branch.
    config.keep_alive_interval = Some(Duration::from_secs(10));
    Ok(config)
}

fn config(args: &AgentArgs) -> anyhow::Result<AgentConfig> {
    let mut branches = Vec::new();
    for text in &args.branches {
        let target = branch_target(text)?;
        if branches
            .iter()
            .any(|b: &BranchTarget| b.code == target.code)
        {
            anyhow::bail!("--branch {:04} is given twice", target.code);
        }
        branches.push(target);
    }
    if !args.min_improvement.is_finite() || args.min_improvement < 0.0 {
        anyhow::bail!("--min-improvement must be 0 or more");
    }
    let models = args
        .models
        .clone()
        .unwrap_or_else(|| args.data_dir.join("models"));
    let mut config = AgentConfig::new(branches, client_template(args)?, models);
    config.train = TrainConfig {
        customers: args.train_customers,
        days: args.train_days,
        trees: args.train_trees,
        seed: args.train_seed,
        ..TrainConfig::default()
    };
    config.min_improvement = args.min_improvement;
    config.retrain_every = args.retrain_every;
    config.alert_capacity = args.alerts_kept.max(1);
    config.detector = DetectorConfig {
        min_payers: args.mule_payers.max(1),
        onward_ns: u64::try_from(args.mule_onward_within.as_nanos()).unwrap_or(u64::MAX),
        ..DetectorConfig::default()
    };
    config.poll_interval = Duration::from_millis(args.poll_ms);
    Ok(config)
}

/// The agent as the signal handling sees it (no API key file, no peers).
struct AgentServed;

impl serve::Served for AgentServed {
    fn reload_api_keys(&self) -> Option<Result<usize, corebank_security::KeyStoreError>> {
        None
    }

    fn isolate(&self, _isolated: bool) {}
}

pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let config = config(&args)?;
    let listen: SocketAddr = match args.listen {
        Some(listen) => listen,
        None => AGENT_LISTEN_DEFAULT
            .parse()
            .context("the default listen address")?,
    };
    if config.branches.is_empty() {
        eprintln!(
            "corebank agent: no --branch given: alerts and features stay empty until restarted with some"
        );
    }
    serve::init_logging();
    let runtime = serve::runtime()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        if !listen.ip().is_loopback() {
            eprintln!(
                "!! corebank agent: the HTTP API on {listen} has no authentication; \
                 expose it only behind the gateway"
            );
        }
        let branches = config.branches.len();
        let agent = start(config, listener)
            .await
            .context("the agent cannot start")?;
        // Machine-readable start-up lines (tests and scripts read the bound port here).
        println!(
            "corebank agent: models {} following {branches} branches",
            agent.models_dir().display()
        );
        println!("listening http {}", agent.addr());
        println!("ready");
        tracing::info!(http = %agent.addr(), branches, "agent ready");
        serve::serve_until_stopped(&AgentServed, false, "").await;
        tracing::info!("stopping");
        agent.shutdown(Duration::from_secs(2)).await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn durations_and_branches_parse() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3_600));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert!(parse_duration("1w").is_err() && parse_duration("0s").is_err());
        let t = branch_target("0002=10.0.0.1:8080, 10.0.0.2:8080").unwrap();
        assert_eq!(
            (t.code, t.endpoints.as_str()),
            (2, "10.0.0.1:8080,10.0.0.2:8080")
        );
        assert!(branch_target("12345=a:1").is_err());
        assert!(branch_target("0001").is_err());
        assert!(branch_target("0001=").is_err());
    }
}
