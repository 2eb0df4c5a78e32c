//! `corebank reconcile`: checks the clearing accounts of every pair of branches, the
//! open cross-branch transfers, and that posted debits equal posted credits per
//! currency across the bank (docs/clearing.md). Exit status 0 when clean, 1 on any
//! break, 2 when a branch could not be read.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use corebank_account_number::BranchCode;
use corebank_clearing::{GatherOptions, ReconcileConfig};
use corebank_client::{Client, ClientConfig, TlsSettings};
use corebank_server::cross_branch::LedgerPort;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    corebank reconcile --insecure --branch 0001=127.0.0.1:8080 --branch 0002=127.0.0.1:8081\n  \
    corebank reconcile --tls-ca ca.pem --tls-cert ops.pem --tls-key ops-key.pem \\\n      \
    --branch 0001=10.0.0.1:8080,0001=10.0.0.2:8080 --branch 0002=10.0.1.1:8080 --json\n\n\
    Reads each branch through its leader (linearizable reads), one branch after another: a\n\
    transfer that moves between two reads can show as a break, so confirm a break with a\n\
    second run. Exit status: 0 clean, 1 breaks found, 2 a branch could not be read.")]
pub struct ReconcileArgs {
    /// A branch and one of its replicas, BRANCH=HOST:PORT; repeat for every replica of
    /// every branch (or separate with commas).
    #[arg(
        long = "branch",
        value_name = "BRANCH=HOST:PORT",
        value_delimiter = ',',
        required = true
    )]
    pub branches: Vec<String>,
    /// Plain TCP to development nodes.
    #[arg(long, conflicts_with_all = ["tls_ca"])]
    pub insecure: bool,
    /// The CA of the nodes' certificates.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// A client certificate (mutual TLS) with the read scope.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// An API key with the read scope (or COREBANK_API_KEY).
    #[arg(long, env = "COREBANK_API_KEY", hide_env_values = true)]
    pub api_key: Option<corebank_security::Secret<String>>,
    /// An open cross-branch transfer older than this is a break (seconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub saga_timeout: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Branch code → its replica addresses, from `BRANCH=HOST:PORT` items.
fn routes(items: &[String]) -> anyhow::Result<BTreeMap<BranchCode, Vec<String>>> {
    let mut routes = BTreeMap::<BranchCode, Vec<String>>::new();
    for item in items {
        let (code, address) = corebank_server::parse_route(item).with_context(|| {
            format!("{item:?}: write BRANCH=HOST:PORT, e.g. 0001=127.0.0.1:8080")
        })?;
        routes.entry(code).or_default().push(address);
    }
    Ok(routes)
}

/// Reads every branch (each through one of its replicas' leader) and reconciles.
/// `template` carries TLS and credentials; its endpoint is replaced per branch.
pub async fn reconcile_bank(
    routes: &BTreeMap<BranchCode, Vec<String>>,
    template: &ClientConfig,
    saga_timeout_ns: u64,
) -> Result<corebank_clearing::ReconciliationReport, String> {
    let scheme = if template.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut ports = Vec::new();
    for (code, addresses) in routes {
        let endpoints = addresses
            .iter()
            .map(|address| format!("{scheme}://{address}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut config = template.clone();
        config.endpoint = endpoints;
        let client = Client::connect(config)
            .await
            .map_err(|error| format!("cannot reach branch {code}: {error}"))?;
        ports.push(LedgerPort::Remote {
            client,
            branch: *code,
        });
    }
    let refs: Vec<&LedgerPort> = ports.iter().collect();
    let input = corebank_clearing::gather(&refs, &GatherOptions::at(now_ns()))
        .await
        .map_err(|error| format!("cannot read the branches: {error}"))?;
    Ok(corebank_clearing::reconcile(
        &input,
        &ReconcileConfig { saga_timeout_ns },
    ))
}

pub fn run(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let routes = routes(&args.branches)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut template =
            ClientConfig::new(String::new()).with_total_timeout(Duration::from_secs(30));
        if !args.insecure {
            let ca = args
                .tls_ca
                .as_ref()
                .context("TLS needs --tls-ca (or --insecure for development nodes)")?;
            let mut tls = TlsSettings::new(ca);
            if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
                tls = tls.with_client_cert(cert, key);
            }
            template = template.with_tls(tls);
        }
        template.api_key = args.api_key.clone();
        let report = match reconcile_bank(
            &routes,
            &template,
            args.saga_timeout.saturating_mul(1_000_000_000),
        )
        .await
        {
            Ok(report) => report,
            Err(error) => {
                eprintln!("error: {error}");
                return Ok(ExitCode::from(2));
            }
        };
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print!("{report}");
        }
        Ok(if report.is_clean() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
