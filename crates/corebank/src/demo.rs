//! `corebank demo`: the whole bank in one process. A registry, branches as real
//! branch servers (Raft groups of one or three replicas, gRPC on loopback), synthetic
//! traffic inside each branch, and transfers between customers of different branches
//! as sagas through the clearing accounts. Live progress once a second; at the end a
//! report that checks every branch's books and reconciles the clearing accounts.

mod fraud;
mod gateway;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use corebank_account_number::BranchCode;
use corebank_banking::account_code;
use corebank_clearing::{GatherOptions, ReconcileConfig, ReconciliationReport, Saga, SagaOutcome};
use corebank_node::{Request, RequestOutcome};
use corebank_server::cross_branch::LedgerPort;
use corebank_server::{RunningServer, ServerConfig};
use corebank_workload::bank::{Currency, format_minor_units, group_digits};
use corebank_workload::measure::{format_duration, format_percent, per_second};
use corebank_workload::{EventKind, KindStats, ResultTally, Rng, Workload, WorkloadConfig};

/// Options of `corebank demo`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Runs a simulated bank in one process: a registry (port 9090) and branch servers (ports 8080,
8081, ...; other free ports if those are taken), each branch a Raft group with its log on
disk. Inside each branch: deposits, salaries, withdrawals, payments (some with a linked fee),
bill payments and card holds (captured, released or left to expire), some failing on purpose
(insufficient funds, resent transfers). Between branches: payments from a customer of one
branch to a customer of another, each a saga through the clearing accounts (reserve at the
payer's branch, credit at the payee's, post or void). Progress goes to stderr once a second;
at the end or on Ctrl-C a report on stdout checks every branch's books and reconciles the
clearing accounts. Exits non-zero if the books do not balance or reconciliation finds a
break. A second Ctrl-C quits at once.")]
pub struct DemoArgs {
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "N")]
    pub seconds: Option<u64>,
    /// Seed of the synthetic traffic: the same seed gives the same bank and the same
    /// stream of transfers inside each branch.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of branches (branch codes 0001, 0002, ...).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub branches: u16,
    /// Replicas per branch: 1, or 3 for a Raft group that survives the loss of one.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=5))]
    pub replicas: u16,
    /// Customers per branch; each has a current account, some also a savings account.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub customers: u32,
    /// Transfer events per batch handed to each branch (1 to 8190).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u16).range(1..=8_190))]
    pub batch: u16,
    /// Cross-branch transfers kept in flight at once (0: none).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(0..=1_024))]
    pub cross_branch_concurrency: u16,
    /// Aim for at most this many events per second inside the branches (0: as fast as
    /// they go).
    #[arg(long, default_value_t = 0, value_name = "EVENTS")]
    pub rate: u64,
    /// Stop after this many events, to bound memory: each branch keeps every transfer
    /// in memory, about 250 bytes each (10 million: about 2.5 GB).
    #[arg(long, default_value_t = 10_000_000, value_name = "EVENTS")]
    pub max_events: u64,
    /// Print no progress lines, only the final report.
    #[arg(long, short)]
    pub quiet: bool,
    /// Keep the registry's and the branches' data here (default: a temporary directory,
    /// removed at the end). An existing directory continues where it stopped.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Simulated customers per branch whose month of payments (with labelled fraud)
    /// is replayed through the fraud screen (0: none).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub fraud_customers: u32,
    /// The gateway's port (REST API and web console); another free port if taken.
    #[arg(long, default_value_t = 8443)]
    pub gateway_port: u16,
    /// Days of the simulated customers' activity to replay.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=90))]
    pub fraud_days: u32,
}

/// Why the run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    TimeUp,
    Interrupted,
    MaxEvents,
}

impl Stop {
    const fn describe(self) -> &'static str {
        match self {
            Self::TimeUp => "time limit reached",
            Self::Interrupted => "interrupted",
            Self::MaxEvents => "--max-events reached",
        }
    }
}

/// One branch: its replicas and its customers' current accounts by currency.
struct BranchRun {
    code: BranchCode,
    servers: Vec<RunningServer>,
    customers: BTreeMap<u32, Vec<u128>>,
}

impl BranchRun {
    fn leader(&self) -> Option<&RunningServer> {
        self.servers.iter().find(|s| s.node().is_leader())
    }
}

/// What the cross-branch traffic did.
#[derive(Debug, Default)]
struct CrossCounters {
    started: AtomicU64,
    posted: AtomicU64,
    voided: AtomicU64,
    refused_at_source: AtomicU64,
    unfinished: AtomicU64,
}

/// Consecutive loopback ports from `base` when all are free, otherwise free ports
/// chosen by the system.
fn pick_ports(base: u16, count: usize) -> Vec<u16> {
    let wanted: Vec<u16> = (0..count)
        .filter_map(|i| u16::try_from(i).ok().and_then(|i| base.checked_add(i)))
        .collect();
    let free = wanted.len() == count
        && wanted
            .iter()
            .all(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok());
    if free {
        return wanted;
    }
    let listeners: Vec<TcpListener> = (0..count)
        .filter_map(|_| TcpListener::bind("127.0.0.1:0").ok())
        .collect();
    listeners
        .iter()
        .filter_map(|l| l.local_addr().ok().map(|a| a.port()))
        .collect()
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Starts the registry (a Raft group of one, its log and snapshots under `data_dir`)
/// and registers the branches.
async fn start_registry(
    port: u16,
    data_dir: &Path,
    branches: &[(BranchCode, Vec<(u64, String)>)],
) -> anyhow::Result<corebank_registry::RunningRegistry> {
    use corebank_registry::{RegistryConfig, ReplicaAddress};
    let mut config = RegistryConfig::insecure(
        data_dir.join("registry"),
        SocketAddr::from(([127, 0, 0, 1], port)),
    );
    config.snapshot_every_entries = 1_000;
    let registry = corebank_registry::start(config)
        .await
        .context("starting the registry")?;
    let client =
        corebank_registry::RegistryClient::new(corebank_registry::RegistryClientConfig::new(
            vec![format!("http://{}", registry.grpc_addr())],
        ))?;
    for (code, replicas) in branches {
        let replicas: Vec<ReplicaAddress> = replicas
            .iter()
            .map(|(id, address)| ReplicaAddress::new(*id, address.clone()))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match client
                .register_branch(*code, &format!("Branch {code}"), "demo", &replicas)
                .await
            {
                Ok(_) => break,
                // The registry's single replica may still be taking the lead.
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => {
                    return Err(anyhow::anyhow!("registering branch {code}: {error}"));
                }
            }
        }
    }
    Ok(registry)
}

/// Starts every replica of every branch; they find each other through the registry.
async fn start_branches(
    args: &DemoArgs,
    data_dir: &Path,
    ports: &[u16],
    registry: SocketAddr,
) -> anyhow::Result<Vec<(BranchCode, Vec<RunningServer>)>> {
    let replicas = usize::from(args.replicas);
    let address = |branch: usize, replica: usize| -> String {
        format!("127.0.0.1:{}", ports[branch * replicas + replica])
    };
    let mut started = Vec::new();
    for branch in 0..usize::from(args.branches) {
        let code_number = u16::try_from(branch + 1)?;
        let code = BranchCode::new(code_number).map_err(|e| anyhow::anyhow!("{e}"))?;
        let members: Vec<String> = (0..replicas)
            .map(|r| format!("{}={}", r + 1, address(branch, r)))
            .collect();
        let mut servers = Vec::new();
        for replica in 0..replicas {
            let listen: SocketAddr = address(branch, replica).parse()?;
            let mut config = ServerConfig::insecure(
                code_number,
                data_dir
                    .join(format!("branch-{code}"))
                    .join(format!("replica-{}", replica + 1)),
                listen,
            );
            config.node_id = u64::try_from(replica + 1)?;
            if replicas > 1 {
                config.members.clone_from(&members);
            }
            config.registry = vec![registry.to_string()];
            config.snapshot_every_entries = 5_000;
            let server = corebank_server::start(config)
                .await
                .with_context(|| format!("starting branch {code} replica {}", replica + 1))?;
            servers.push(server);
        }
        started.push((code, servers));
    }
    Ok(started)
}

/// Waits until each branch has a leader that has taken office (its internal accounts
/// exist).
async fn wait_for_leaders(branches: &[BranchRun]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for branch in branches {
        let cash = corebank_banking::Branch::new(branch.code)
            .internal_account_id(corebank_banking::InternalAccount::Cash, Currency::EUR);
        loop {
            let ready = branch.leader().is_some_and(|leader| {
                leader
                    .node()
                    .read_local(|ledger| ledger.account(cash).is_some())
                    .unwrap_or(false)
            });
            if ready {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "branch {} elected no leader within 60 s",
                branch.code
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// Submits to the branch's leader, again while it is busy or changing leader.
async fn submit_to_branch(branch: &BranchRun, request: Request) -> anyhow::Result<RequestOutcome> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(leader) = branch.leader() {
            match leader.node().submit(request.clone()).await {
                Ok(outcome) => return Ok(outcome),
                Err(error)
                    if matches!(
                        error.code(),
                        "busy_retry" | "not_leader" | "outcome_unknown"
                    ) => {}
                Err(error) => return Err(error.into()),
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "branch {} took no request for 60 s",
            branch.code
        );
        tokio::task::yield_now().await;
    }
}

/// Cross-branch payments, `concurrency` at a time, until `stop`.
async fn cross_branch_traffic(
    branches: Arc<Vec<BranchRun>>,
    worker: u64,
    seed: u64,
    counters: Arc<CrossCounters>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = Rng::with_stream(seed, 1_000 + worker);
    let mut sequence = 0_u64;
    while !stop.load(Ordering::Relaxed) {
        sequence += 1;
        let from = rng.index(branches.len());
        let to = (from + 1 + rng.index(branches.len() - 1)) % branches.len();
        let (source, destination) = (&branches[from], &branches[to]);
        // A currency both branches have customers in.
        let shared: Vec<u32> = source
            .customers
            .keys()
            .filter(|ledger| destination.customers.contains_key(ledger))
            .copied()
            .collect();
        if shared.is_empty() {
            return;
        }
        let ledger = shared[rng.index(shared.len())];
        let payers = &source.customers[&ledger];
        let payees = &destination.customers[&ledger];
        let (Some(payer), Some(payee)) = (
            payers.get(rng.index(payers.len())),
            payees.get(rng.index(payees.len())),
        ) else {
            continue;
        };
        let Ok(currency) = Currency::from_numeric(ledger) else {
            continue;
        };
        // Ids of their own, far from the workload's (which count up from small numbers).
        let id = (1_u128 << 120) | (u128::from(worker) << 64) | u128::from(sequence);
        let amount = rng.amount_between(100, 20_000);
        let Ok(saga) = Saga::new(id, *payer, *payee, amount, currency) else {
            continue;
        };
        let Some(leader) = source.leader() else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        counters.started.fetch_add(1, Ordering::Relaxed);
        let outcome = leader.cross_branch().transfer(&saga).await;
        let counter = match outcome {
            SagaOutcome::Posted => &counters.posted,
            SagaOutcome::Voided { .. } => &counters.voided,
            SagaOutcome::Rejected(_) => &counters.refused_at_source,
            SagaOutcome::Unknown(_) | SagaOutcome::InFlight { .. } | SagaOutcome::Stuck { .. } => {
                &counters.unfinished
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads every branch (through its leader) and reconciles; waits up to `patience` for
/// sagas still in flight to finish.
async fn reconcile(
    branches: &[BranchRun],
    patience: Duration,
) -> anyhow::Result<ReconciliationReport> {
    let deadline = Instant::now() + patience;
    loop {
        let ports: Vec<LedgerPort> = branches
            .iter()
            .filter_map(|b| {
                b.leader().map(|leader| LedgerPort::Local {
                    node: Arc::clone(leader.node()),
                    branch: b.code,
                })
            })
            .collect();
        anyhow::ensure!(ports.len() == branches.len(), "a branch has no leader");
        let refs: Vec<&LedgerPort> = ports.iter().collect();
        let input = corebank_clearing::gather(&refs, &GatherOptions::at(now_ns()))
            .await
            .map_err(|e| anyhow::anyhow!("reading the branches: {e}"))?;
        let report = corebank_clearing::reconcile(
            &input,
            &ReconcileConfig {
                saga_timeout_ns: 60_000_000_000,
            },
        );
        if (report.open_sagas.is_empty() && report.is_clean()) || Instant::now() > deadline {
            return Ok(report);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second Ctrl-C ends the process at once; the first asks for the report.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
            .context("installing the Ctrl-C handler")?;
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the Ctrl-C handler")?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (_temporary, data_dir) = match &args.data_dir {
        Some(dir) => (None, dir.clone()),
        None => {
            let dir = tempfile::tempdir().context("creating a temporary data directory")?;
            let path = dir.path().to_path_buf();
            (Some(dir), path)
        }
    };
    let setup_started = Instant::now();
    let replicas = usize::from(args.replicas);
    let ports = pick_ports(8080, usize::from(args.branches) * replicas);
    anyhow::ensure!(
        ports.len() == usize::from(args.branches) * replicas,
        "no free loopback ports for the branches"
    );
    let registry_port = pick_ports(9090, 1).first().copied().unwrap_or(0);
    // The registry knows every branch before the branches start: they find each other
    // through it, and report to it.
    let mut directory: Vec<(BranchCode, Vec<(u64, String)>)> = Vec::new();
    for branch in 0..usize::from(args.branches) {
        let code =
            BranchCode::new(u16::try_from(branch + 1)?).map_err(|e| anyhow::anyhow!("{e}"))?;
        let replicas = (0..replicas)
            .map(|r| {
                (
                    r as u64 + 1,
                    format!("127.0.0.1:{}", ports[branch * replicas + r]),
                )
            })
            .collect();
        directory.push((code, replicas));
    }
    let running_registry =
        runtime.block_on(start_registry(registry_port, &data_dir, &directory))?;
    let registry = running_registry.grpc_addr();
    let started = runtime.block_on(start_branches(&args, &data_dir, &ports, registry))?;

    let mut branches = Vec::new();
    let mut workloads = Vec::new();
    for (index, (code, servers)) in started.into_iter().enumerate() {
        let workload = Workload::new(WorkloadConfig {
            seed: args.seed.wrapping_add(index as u64),
            first_branch: code.get(),
            branches: 1,
            customers_per_branch: args.customers,
            currencies: vec![Currency::EUR, Currency::USD, Currency::GBP],
            ..WorkloadConfig::default()
        })
        .context("configuring the workload")?;
        branches.push(BranchRun {
            code,
            servers,
            customers: BTreeMap::new(),
        });
        workloads.push(workload);
    }
    runtime.block_on(wait_for_leaders(&branches))?;
    for (branch, workload) in branches.iter_mut().zip(&workloads) {
        for accounts in workload.setup_batches() {
            let results = match runtime
                .block_on(submit_to_branch(branch, Request::CreateAccounts(accounts)))?
            {
                RequestOutcome::Accounts { results, .. } => results,
                other => anyhow::bail!("unexpected answer {other:?}"),
            };
            // A data directory from an earlier run already holds the accounts.
            if let Some(failure) = results
                .iter()
                .find(|r| r.result != corebank_ledger::CreateAccountResult::Exists)
            {
                anyhow::bail!(
                    "creating the accounts of branch {} failed: {}",
                    branch.code,
                    failure.result
                );
            }
        }
        let leader = branch.leader().context("a branch lost its leader")?;
        branch.customers = leader
            .node()
            .read_local(|ledger| {
                let mut by_currency: BTreeMap<u32, Vec<u128>> = BTreeMap::new();
                for account in ledger.accounts() {
                    if account.code == account_code::CURRENT {
                        by_currency
                            .entry(account.ledger)
                            .or_default()
                            .push(account.id);
                    }
                }
                by_currency
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let setup_time = setup_started.elapsed();
    let customer_total: usize = workloads.iter().map(Workload::customer_count).sum();
    if !args.quiet {
        eprintln!(
            "corebank demo: registry {registry}, {} branches x {} replica(s), {} customers (set up in {}); {}",
            args.branches,
            args.replicas,
            group_digits(customer_total as u128),
            format_duration(setup_time),
            match args.seconds {
                Some(s) => format!("running for {s} s"),
                None => "running until Ctrl-C".to_owned(),
            },
        );
        for branch in &branches {
            let addresses: Vec<String> = branch
                .servers
                .iter()
                .map(|s| s.grpc_addr().to_string())
                .collect();
            eprintln!("  branch {}  gRPC {}", branch.code, addresses.join(", "));
        }
        eprintln!(
            "{:>8}  {:>11}  {:>13}  {:>11}  {:>13}  {:>9}",
            "elapsed", "events/s", "created", "failed", "cross-branch", "posted/s"
        );
    }

    // Cross-branch payments run beside the traffic inside the branches.
    let branches = Arc::new(branches);
    // The risk agent follows every branch's events and risk journal and raises alerts.
    let agent = if args.fraud_customers > 0 {
        let agent = runtime.block_on(fraud::start_agent(&branches, &data_dir))?;
        if !args.quiet {
            eprintln!(
                "risk agent on http://{} (GET /alerts, /alerts/stream, /status, /models)",
                agent.addr()
            );
        }
        Some(agent)
    } else {
        None
    };
    // The front door: the gateway with the console, and a demo user per role.
    let gateway_port = pick_ports(args.gateway_port, 1)
        .first()
        .copied()
        .unwrap_or(0);
    let front = runtime.block_on(gateway::start(registry, gateway_port, &data_dir))?;
    let demo_users = runtime.block_on(gateway::demo_users(&front, &branches))?;
    print!("{}", gateway::announce(&front, &demo_users));
    // The agent's cross-branch mule-ring alerts join the analysts' feed (held,
    // declined and frozen come from the branches' risk journals already).
    let agent = agent.map(Arc::new);
    let bridge = agent.as_ref().map(|agent| {
        runtime.spawn(gateway::bridge_agent_alerts(
            Arc::clone(agent),
            Arc::clone(&front.app().hub),
        ))
    });
    // So does the customers' traffic through the fraud screen, one replay per branch.
    let fraud_tasks: Vec<_> = if args.fraud_customers > 0 {
        let trained =
            fraud::train_screen(&branches, args.seed, args.fraud_customers, args.fraud_days)?;
        if !args.quiet {
            eprintln!("{trained}");
        }
        // The simulated customers are established ones: their month starts 400 days
        // after their accounts were opened (the transfers carry these times).
        let start_ns = now_ns().saturating_add(400 * 86_400 * 1_000_000_000);
        (0..branches.len())
            .map(|index| {
                let branches = Arc::clone(&branches);
                let (customers, days) = (args.fraud_customers, args.fraud_days);
                let seed = args.seed.wrapping_add(1_000 + index as u64);
                runtime.spawn(async move {
                    fraud::replay(&branches[index], seed, customers, days, start_ns).await
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let counters = Arc::new(CrossCounters::default());
    let cross_stop = Arc::new(AtomicBool::new(false));
    let cross_tasks: Vec<_> = if branches.len() > 1 {
        (0..u64::from(args.cross_branch_concurrency))
            .map(|worker| {
                runtime.spawn(cross_branch_traffic(
                    Arc::clone(&branches),
                    worker,
                    args.seed,
                    Arc::clone(&counters),
                    Arc::clone(&cross_stop),
                ))
            })
            .collect()
    } else {
        Vec::new()
    };
    let batch_size = usize::from(args.batch);
    let deadline = args.seconds.map(Duration::from_secs);
    let started_at = Instant::now();
    let mut tally = ResultTally::new();
    let mut batches = 0_u64;
    let mut last_report = (Instant::now(), 0_u64, 0_u64);
    let why = loop {
        let elapsed = started_at.elapsed();
        if stop.load(Ordering::Relaxed) {
            break Stop::Interrupted;
        }
        if deadline.is_some_and(|limit| elapsed >= limit) {
            break Stop::TimeUp;
        }
        if tally.events() >= args.max_events {
            break Stop::MaxEvents;
        }
        if args.rate > 0 {
            let due = Duration::from_nanos(
                u64::try_from(u128::from(tally.events()) * 1_000_000_000 / u128::from(args.rate))
                    .unwrap_or(u64::MAX),
            );
            if let Some(ahead) = due.checked_sub(elapsed).filter(|d| !d.is_zero()) {
                std::thread::sleep(ahead.min(Duration::from_millis(50)));
                continue;
            }
        }
        // One batch to every branch at once: the branches commit in parallel.
        let room = usize::try_from(args.max_events - tally.events()).unwrap_or(usize::MAX);
        let per_branch = batch_size.min(room / branches.len().max(1)).max(1);
        let round: Vec<Vec<corebank_ledger::Transfer>> = workloads
            .iter_mut()
            .map(|workload| workload.next_batch(per_branch))
            .collect();
        let submitted = runtime.block_on(async {
            let tasks: Vec<_> = round
                .iter()
                .enumerate()
                .map(|(index, batch)| {
                    let branches = Arc::clone(&branches);
                    let request = Request::CreateTransfers(batch.clone());
                    tokio::spawn(async move { submit_to_branch(&branches[index], request).await })
                })
                .collect();
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.map_err(anyhow::Error::from).and_then(|r| r));
            }
            outcomes
        });
        for ((workload, batch), outcome) in workloads.iter_mut().zip(&round).zip(submitted) {
            let results = match outcome? {
                RequestOutcome::Transfers { results, .. } => results,
                other => anyhow::bail!("unexpected answer {other:?}"),
            };
            workload.observe(&results);
            tally.record(batch.len(), &results);
            batches += 1;
        }

        let window = last_report.0.elapsed();
        if !args.quiet && window >= Duration::from_secs(1) {
            let events = tally.events();
            let posted = counters.posted.load(Ordering::Relaxed);
            let running = started_at.elapsed();
            eprintln!(
                "{:>8}  {:>11}  {:>13}  {:>11}  {:>13}  {:>9}",
                format!("{}.{} s", running.as_secs(), running.subsec_millis() / 100),
                group_digits(per_second(events - last_report.1, window).into()),
                group_digits(tally.created().into()),
                group_digits(tally.failed().into()),
                group_digits(counters.started.load(Ordering::Relaxed).into()),
                group_digits(per_second(posted - last_report.2, window).into()),
            );
            last_report = (Instant::now(), events, posted);
        }
    };
    let duration = started_at.elapsed();
    cross_stop.store(true, Ordering::Relaxed);
    for task in cross_tasks {
        let _ = runtime.block_on(task);
    }
    // The replays are short (seconds); the report waits for them.
    let mut screening = fraud::FraudReplay::default();
    for task in fraud_tasks {
        match runtime.block_on(task) {
            Ok(Ok(replay)) => screening.merge(&replay),
            Ok(Err(error)) => eprintln!("the fraud replay stopped: {error:#}"),
            Err(error) => eprintln!("the fraud replay stopped: {error}"),
        }
    }
    let reconciliation = runtime.block_on(reconcile(&branches, Duration::from_secs(20)))?;
    // What the registry learnt from the replicas' heartbeats.
    let directory_view = runtime.block_on(async {
        let client = corebank_registry::RegistryClient::new(
            corebank_registry::RegistryClientConfig::new(vec![format!("http://{registry}")]),
        )
        .ok()?;
        client.list_branches(None).await.ok()
    });
    let (report, ok) = report(
        &args,
        &branches,
        &workloads,
        &Totals {
            tally,
            batches,
            duration,
            why,
            registry,
            cross: &counters,
        },
        &reconciliation,
        directory_view.as_deref(),
    );
    print!("{report}");
    if let Some(task) = bridge {
        task.abort();
        let _ = runtime.block_on(task);
    }
    if let Some(agent) = agent.and_then(Arc::into_inner) {
        let alerts = runtime.block_on(fraud::settle_alerts(&agent));
        print!("{}", fraud::report(&screening, Some(&alerts)));
        runtime.block_on(agent.shutdown(Duration::from_secs(1)));
    }
    println!(
        "  storage     Raft logs and snapshots in {}{}",
        data_dir.display(),
        if args.data_dir.is_none() {
            " (temporary, now removed)"
        } else {
            ""
        }
    );
    runtime.block_on(front.shutdown());
    let branches = Arc::into_inner(branches).unwrap_or_default();
    runtime.block_on(async {
        for branch in branches {
            for server in branch.servers {
                server.shutdown().await;
            }
        }
        running_registry.shutdown().await;
    });
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What the run counted.
struct Totals<'a> {
    tally: ResultTally,
    batches: u64,
    duration: Duration,
    why: Stop,
    registry: SocketAddr,
    cross: &'a CrossCounters,
}

/// The closing report, and whether the books balance and the branches reconcile.
fn report(
    args: &DemoArgs,
    branches: &[BranchRun],
    workloads: &[Workload],
    totals: &Totals<'_>,
    reconciliation: &ReconciliationReport,
    directory: Option<&[corebank_registry::BranchView]>,
) -> (String, bool) {
    let tally = &totals.tally;
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let num = |n: u64| group_digits(n.into());
    let customers: usize = workloads.iter().map(Workload::customer_count).sum();

    line(String::new());
    line(format!(
        "corebank demo: {} after {}",
        totals.why.describe(),
        format_duration(totals.duration)
    ));
    line(format!(
        "  bank        {} branches x {} replica(s), {} customers, seed {}; registry at {}",
        args.branches,
        args.replicas,
        num(customers as u64),
        args.seed,
        totals.registry
    ));
    line(format!(
        "  events      {} applied inside the branches in {} batches of up to {}: {} per second",
        num(tally.events()),
        num(totals.batches),
        num(args.batch.into()),
        num(per_second(tally.events(), totals.duration))
    ));
    line(format!(
        "  created     {} transfers ({})",
        num(tally.created()),
        format_percent(tally.created(), tally.events())
    ));
    line(format!(
        "  failed      {} ({})",
        num(tally.failed()),
        format_percent(tally.failed(), tally.events())
    ));
    for (result, count) in tally.by_frequency() {
        line(format!(
            "    {:<34} {:>12}  {}",
            result.as_str(),
            num(count),
            result.description()
        ));
    }
    let cross = totals.cross;
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let posted = load(&cross.posted);
    line(format!(
        "  cross-branch {} started: {} posted ({} per second), {} refused by the payee's branch and voided, {} refused at the payer's branch, {} finished in the background",
        num(load(&cross.started)),
        num(posted),
        num(per_second(posted, totals.duration)),
        num(load(&cross.voided)),
        num(load(&cross.refused_at_source)),
        num(load(&cross.unfinished)),
    ));

    line(String::new());
    line(format!(
        "  {:<22} {:>12} {:>12} {:>10}",
        "traffic", "sent", "created", "failed"
    ));
    let mut kinds: Vec<(EventKind, KindStats)> = Vec::new();
    for workload in workloads {
        for (kind, stats) in workload.kind_stats() {
            match kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, sum)) => {
                    sum.sent += stats.sent;
                    sum.failed += stats.failed;
                }
                None => kinds.push((kind, stats)),
            }
        }
    }
    for (kind, stats) in &kinds {
        line(format!(
            "  {:<22} {:>12} {:>12} {:>10}",
            kind.name(),
            num(stats.sent),
            num(stats.succeeded()),
            num(stats.failed)
        ));
    }

    line(String::new());
    line("  branches (each checked on its leader)".to_owned());
    let mut books = true;
    for branch in branches {
        let Some(leader) = branch.leader() else {
            books = false;
            line(format!("    {}  NO LEADER", branch.code));
            continue;
        };
        let checked = leader.node().read_local(|ledger| {
            let stats = ledger.stats();
            let conserved = ledger
                .totals_by_ledger()
                .iter()
                .all(|(_, totals)| totals.is_conserved());
            (stats, conserved, ledger.check_invariants())
        });
        match checked {
            Ok((stats, conserved, invariants)) => {
                books &= conserved && invariants.is_ok();
                line(format!(
                    "    {}  {:>9} accounts {:>12} transfers {:>8} pending  debits = credits: {}  invariants: {}",
                    branch.code,
                    num(stats.accounts as u64),
                    num(stats.transfers as u64),
                    num(stats.pending_transfers as u64),
                    if conserved { "ok" } else { "MISMATCH" },
                    match &invariants {
                        Ok(()) => "ok".to_owned(),
                        Err(violation) => format!("BROKEN ({violation})"),
                    }
                ));
            }
            Err(error) => {
                books = false;
                line(format!("    {}  unreadable: {error}", branch.code));
            }
        }
    }

    line(String::new());
    match directory {
        Some(views) => {
            line("  registry (from the replicas' heartbeats)".to_owned());
            for view in views {
                let replicas: Vec<String> = view
                    .replicas
                    .iter()
                    .map(|r| {
                        format!(
                            "replica {} at {} {} (applied {})",
                            r.node_id, r.address, r.health, r.applied_index
                        )
                    })
                    .collect();
                line(format!(
                    "    {}  leader {}; {}",
                    view.code,
                    view.leader.map_or_else(
                        || "unknown".to_owned(),
                        |(id, term)| format!("{id} (term {term})")
                    ),
                    replicas.join(", ")
                ));
            }
        }
        None => line("  registry    unreadable at the end of the run".to_owned()),
    }

    line(String::new());
    line(
        "  bank-wide, per currency (posted debits = posted credits across all branches)".to_owned(),
    );
    for check in &reconciliation.currencies {
        if check.debits_posted == 0 && check.credits_posted == 0 && check.ok {
            continue;
        }
        let exponent = Currency::from_alpha(&check.currency).map_or(2, |c| u32::from(c.exponent));
        let amount = |v: u128| format_minor_units(v, exponent);
        line(format!(
            "    {}  debits {:>22}  credits {:>22}  {}",
            check.currency,
            amount(check.debits_posted),
            amount(check.credits_posted),
            if check.ok { "ok" } else { "MISMATCH" }
        ));
    }
    line(String::new());
    for text in reconciliation.to_string().lines() {
        line(format!("  {text}"));
    }
    let ok = books && reconciliation.is_clean();
    let mut verdict = String::new();
    let _ = write!(
        verdict,
        "  result      {}",
        if ok {
            "OK: every branch balances, the clearing accounts mirror each other, nothing lost, nothing made"
        } else {
            "FAILED: the books do not balance or the branches do not reconcile"
        }
    );
    line(verdict);
    (out, ok)
}
