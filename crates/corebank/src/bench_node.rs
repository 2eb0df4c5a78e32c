//! `corebank bench node`: a branch node driven over gRPC by concurrent clients.

// Rates and durations are measured in floating point; no amount ever is.
#![allow(clippy::float_arithmetic)]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use corebank_ledger::{Account, AccountFlags, Transfer};
use corebank_proto::v1::{self, ledger_client::LedgerClient};
use corebank_workload::Rng;
use hdrhistogram::Histogram;
use tonic::transport::Channel;

const EUR: u32 = 978;
const VAULT_ID_OFFSET: u128 = 0;
/// Every account starts with 1,000,000,000.00 (as the PostgreSQL peer's wallets do).
const OPENING_BALANCE: u128 = 100_000_000_000;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Starts a node of its own on loopback in a temporary data directory (durable: every \
acknowledged batch is synced to disk), unless --server names a running one (started with --insecure). \
Creates and funds the accounts (not timed), then C clients each keep one request of B transfers in \
flight for S seconds. Latency is per request, from an HDR histogram.\n\n\
Compare with the conventional PostgreSQL design in the same sitting:\n  \
bash ../shared/bench/postgres-peer/run.sh ACCOUNTS=10000 CLIENTS=64 MODES=func DURATION=20 SKEW= BATCH="
)]
pub struct NodeBenchArgs {
    /// A running node's gRPC address (plain TCP, --insecure); default: start one.
    #[arg(long)]
    pub server: Option<String>,
    /// Accounts to create (each cannot be overdrawn and is funded first).
    #[arg(long, default_value_t = 10_000)]
    pub accounts: u32,
    /// Transfers per request (1 to 8190).
    #[arg(long, default_value_t = 8_190, value_parser = clap::value_parser!(u16).range(1..=8190))]
    pub batch: u16,
    /// Concurrent clients, each with its own connection and one request in flight.
    #[arg(long, default_value_t = 1)]
    pub clients: u16,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Percent of transfers that touch one hot account (contention).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub hot_percent: u8,
    /// Print one JSON object instead of the human report.
    #[arg(long)]
    pub json: bool,
    /// Where the node's temporary data directory goes (default: the system's temp dir).
    #[arg(long)]
    pub data_parent: Option<std::path::PathBuf>,
    /// The started node screens every transfer for fraud (on, as a branch does by
    /// default) or not (off), to measure what screening costs.
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = ["on", "off"])]
    pub risk: String,
    /// A model file for the started node's screen (`corebank risk train`).
    #[arg(long, value_name = "FILE")]
    pub risk_model: Option<std::path::PathBuf>,
}

struct ClientReport {
    histogram: Histogram<u64>,
    transfers: u64,
    failed: u64,
}

async fn connect(endpoint: &str) -> anyhow::Result<LedgerClient<Channel>> {
    let channel = Channel::from_shared(endpoint.to_string())?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {endpoint}"))?;
    Ok(LedgerClient::new(channel)
        .max_decoding_message_size(corebank_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(corebank_proto::MAX_MESSAGE_BYTES))
}

async fn setup(endpoint: &str, base: u128, accounts: u32) -> anyhow::Result<()> {
    let mut client = connect(endpoint).await?;
    let vault = Account {
        id: base + VAULT_ID_OFFSET,
        ledger: EUR,
        code: 1,
        ..Default::default()
    };
    let mut all = vec![vault];
    all.extend((1..=u128::from(accounts)).map(|i| Account {
        id: base + i,
        ledger: EUR,
        code: 10,
        flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
        ..Default::default()
    }));
    for chunk in all.chunks(8_190) {
        let request = v1::CreateAccountsRequest {
            accounts: chunk.iter().copied().map(Into::into).collect(),
            ..Default::default()
        };
        let response = client.create_accounts(request).await?.into_inner();
        anyhow::ensure!(
            response.results.is_empty(),
            "creating accounts failed: {:?}",
            response.results.first()
        );
    }
    let funding: Vec<Transfer> = (1..=u128::from(accounts))
        .map(|i| Transfer {
            id: base + i,
            debit_account_id: base,
            credit_account_id: base + i,
            amount: OPENING_BALANCE,
            ledger: EUR,
            code: 1,
            ..Default::default()
        })
        .collect();
    for chunk in funding.chunks(8_190) {
        // Funding is the bank's own movement: it does not go through the fraud screen.
        let request = v1::CreateTransfersRequest {
            transfers: chunk.iter().copied().map(Into::into).collect(),
            internal: true,
            ..Default::default()
        };
        let response = client.create_transfers(request).await?.into_inner();
        anyhow::ensure!(
            response.results.is_empty(),
            "funding failed: {:?}",
            response.results.first()
        );
    }
    Ok(())
}

/// Builds one request's transfers (random pairs; a share of them touch the hot account).
/// Packed into 128-byte records (docs/ledger.md), as a high-volume client would send.
fn make_batch(args: &NodeBenchArgs, base: u128, rng: &mut Rng, next_id: &mut u128) -> Vec<u8> {
    let accounts = u64::from(args.accounts);
    let mut packed = Vec::with_capacity(usize::from(args.batch) * corebank_ledger::RECORD_BYTES);
    for _ in 0..args.batch {
        {
            *next_id += 1;
            let debit = 1 + rng.below(accounts);
            let hot = args.hot_percent > 0 && rng.below(100) < u64::from(args.hot_percent);
            let mut credit = if hot { 1 } else { 1 + rng.below(accounts) };
            if credit == debit {
                credit = debit % accounts + 1;
            }
            let transfer = Transfer {
                id: *next_id,
                debit_account_id: base + u128::from(debit),
                credit_account_id: base + u128::from(credit),
                amount: 1 + u128::from(rng.below(10_000)),
                ledger: EUR,
                code: 3,
                ..Default::default()
            };
            packed.extend_from_slice(&transfer.to_bytes());
        }
    }
    packed
}

async fn run_client(
    endpoint: String,
    args: Arc<NodeBenchArgs>,
    base: u128,
    client: u16,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<ClientReport> {
    let mut ledger = connect(&endpoint).await?;
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut transfers, mut failed) = (0u64, 0u64);
    // The generator moves between this task and a blocking thread that builds the next
    // request while the current one is in flight (one request in flight at a time).
    let mut generator = (
        Rng::new(u64::from(client) + 1),
        base + (u128::from(client) + 1) * (1u128 << 48),
    );
    let mut current = make_batch(&args, base, &mut generator.0, &mut generator.1);
    while !stop.load(Ordering::Relaxed) {
        let builder_args = Arc::clone(&args);
        let next = tokio::task::spawn_blocking(move || {
            let mut generator = generator;
            let batch = make_batch(&builder_args, base, &mut generator.0, &mut generator.1);
            (batch, generator)
        });
        let started = Instant::now();
        let response = ledger
            .create_transfers(v1::CreateTransfersRequest {
                packed_transfers: current,
                ..Default::default()
            })
            .await;
        let elapsed = started.elapsed();
        match response {
            Ok(response) => {
                histogram.saturating_record(
                    u64::try_from(elapsed.as_micros())
                        .unwrap_or(u64::MAX)
                        .max(1),
                );
                failed += response.get_ref().results.len() as u64;
                transfers += u64::from(args.batch);
            }
            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                tokio::task::yield_now().await
            }
            Err(status) => anyhow::bail!("request failed: {status}"),
        }
        (current, generator) = next.await?;
    }
    Ok(ClientReport {
        histogram,
        transfers,
        failed,
    })
}

pub fn run(args: NodeBenchArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: NodeBenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.accounts >= 2, "--accounts must be at least 2");
    anyhow::ensure!(args.clients >= 1, "--clients must be at least 1");
    let say = |text: String| {
        if !args.json {
            eprintln!("{text}");
        }
    };
    let mut own_node = None;
    let mut data_dir = None;
    let endpoint = match &args.server {
        Some(address) => format!("http://{address}"),
        None => {
            let dir = match &args.data_parent {
                Some(parent) => tempfile::tempdir_in(parent)?,
                None => tempfile::tempdir()?,
            };
            let mut config =
                corebank_server::ServerConfig::insecure(1, dir.path(), "127.0.0.1:0".parse()?);
            config.risk.enabled = args.risk == "on";
            config.risk.model.clone_from(&args.risk_model);
            let server = corebank_server::start(config).await?;
            say(format!(
                "started a node on {} with its data in {}",
                server.grpc_addr(),
                dir.path().display()
            ));
            let endpoint = format!("http://{}", server.grpc_addr());
            own_node = Some(server);
            data_dir = Some(dir);
            endpoint
        }
    };
    // A base id per run, so that runs against a shared node never collide.
    let base = (u128::from(std::process::id()) << 96)
        | (u128::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs(),
        ) << 64);
    let setup_started = Instant::now();
    setup(&endpoint, base, args.accounts).await?;
    say(format!(
        "created and funded {} accounts in {:.1} s (not timed)",
        args.accounts,
        setup_started.elapsed().as_secs_f64()
    ));

    let args = Arc::new(args);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..args.clients {
        clients.push(tokio::spawn(run_client(
            endpoint.clone(),
            Arc::clone(&args),
            base,
            client,
            Arc::clone(&stop),
        )));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut transfers, mut failed) = (0u64, 0u64);
    for client in clients {
        let report = client.await??;
        histogram.add(&report.histogram)?;
        transfers += report.transfers;
        failed += report.failed;
    }
    let seconds = started.elapsed().as_secs_f64();
    let rate = transfers as f64 / seconds;
    // What the started node's screen did (counted on the leader, set-up included).
    let screening = own_node.as_ref().map(|server| {
        let counters = server.node().screening_counters();
        let screened = counters.screened.load(Ordering::Relaxed);
        (
            screened,
            counters.held.load(Ordering::Relaxed),
            counters.declined.load(Ordering::Relaxed),
            counters
                .screen_nanos
                .load(Ordering::Relaxed)
                .checked_div(screened)
                .unwrap_or(0),
        )
    });
    let (p50, p99, p999, max) = (
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max(),
    );
    if args.json {
        let report = serde_json::json!({
            "benchmark": "node",
            "accounts": args.accounts,
            "batch": args.batch,
            "clients": args.clients,
            "hot_percent": args.hot_percent,
            "seconds": seconds,
            "requests": histogram.len(),
            "transfers": transfers,
            "failed": failed,
            "transfers_per_second": rate.round(),
            "p50_us": p50, "p99_us": p99, "p999_us": p999, "max_us": max,
            "durable": true,
            "risk": args.risk,
            "screened": screening.map(|s| s.0),
            "held": screening.map(|s| s.1),
            "declined": screening.map(|s| s.2),
            "mean_screen_ns_per_transfer": screening.map(|s| s.3),
        });
        println!("{report}");
    } else {
        println!(
            "corebank bench node: {} clients x {} transfers per request, {} accounts, {}% hot, {:.1} s",
            args.clients, args.batch, args.accounts, args.hot_percent, seconds
        );
        println!(
            "  throughput   {:>12.0} transfers/s ({} requests, {} transfers, {} refused by the ledger)",
            rate,
            histogram.len(),
            transfers,
            failed
        );
        println!(
            "  latency      p50 {:.2} ms   p99 {:.2} ms   p99.9 {:.2} ms   max {:.2} ms (per request)",
            p50 as f64 / 1e3,
            p99 as f64 / 1e3,
            p999 as f64 / 1e3,
            max as f64 / 1e3
        );
        if let Some((screened, held, declined, mean)) = screening {
            println!(
                "  screening    {} ({screened} screened, {held} held, {declined} declined, {mean} ns per transfer on average)",
                args.risk
            );
        }
    }
    if let Some(server) = own_node {
        server.shutdown().await;
    }
    drop(data_dir);
    Ok(ExitCode::SUCCESS)
}
