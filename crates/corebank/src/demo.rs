//! `corebank demo`: synthetic bank traffic against an in-memory ledger, with a live
//! progress line and a closing report that checks the books balance.
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use corebank_ledger::Ledger;
use corebank_node::{Node, NodeConfig, Request, RequestOutcome};
use corebank_workload::bank::{Currency, format_minor_units, group_digits};
use corebank_workload::measure::{format_duration, format_percent, per_second};
use corebank_workload::{EventKind, ResultTally, Workload, WorkloadConfig};

/// Options of `corebank demo`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Runs a simulated bank in memory: branches, customers in EUR, USD and GBP, and a stream of
deposits, salaries, withdrawals, payments (some with a linked fee), bill payments and card
holds (captured, released or left to expire), some failing on purpose (insufficient funds,
resent transfers). Progress goes to stderr once a second; at the end or on Ctrl-C a report
on stdout checks that debits equal credits in every currency. Exits non-zero if the books
do not balance. A second Ctrl-C quits at once.")]
pub struct DemoArgs {
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "N")]
    pub seconds: Option<u64>,
    /// Seed of the synthetic traffic: the same seed gives the same bank and the same
    /// stream of transfers.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of branches (branch codes 0001, 0002, ...).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=9_999))]
    pub branches: u16,
    /// Customers per branch; each has a current account, some also a savings account.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub customers: u32,
    /// Transfer events per batch handed to the ledger (1 to 8190).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u16).range(1..=8_190))]
    pub batch: u16,
    /// Aim for at most this many events per second (0: as fast as the ledger goes).
    #[arg(long, default_value_t = 0, value_name = "EVENTS")]
    pub rate: u64,
    /// Stop after this many events, to bound memory: the in-memory ledger keeps every
    /// transfer, about 250 bytes each (10 million: about 2.5 GB). Raise it, or use
    /// --rate, for long runs.
    #[arg(long, default_value_t = 10_000_000, value_name = "EVENTS")]
    pub max_events: u64,
    /// Print no progress lines, only the final report.
    #[arg(long, short)]
    pub quiet: bool,
    /// Keep the node's Raft log and snapshots here (default: a temporary directory,
    /// removed at the end). An existing directory continues where it stopped.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
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

/// Time since the traffic started (the node proposes the ledger's timestamps).
#[derive(Debug)]
struct Clock {
    start: Instant,
}

impl Clock {
    fn start() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// What the run counted.
#[derive(Debug, Default)]
struct Totals {
    tally: ResultTally,
    expired: u64,
    batches: u64,
}

impl Totals {
    /// Holds placed and not yet captured, released or expired.
    fn pending_holds(&self, workload: &Workload) -> u64 {
        let placed = workload.stats_of(EventKind::CardHold).succeeded();
        let resolved: u64 = [
            EventKind::HoldCapture,
            EventKind::HoldPartialCapture,
            EventKind::HoldRelease,
        ]
        .iter()
        .map(|kind| workload.stats_of(*kind).succeeded())
        .sum();
        placed.saturating_sub(resolved).saturating_sub(self.expired)
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

    let config = WorkloadConfig {
        seed: args.seed,
        branches: args.branches,
        customers_per_branch: args.customers,
        ..WorkloadConfig::default()
    };
    let mut workload = Workload::new(config).context("configuring the workload")?;
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
    // One durable node holds every branch for now (branches become separate Raft
    // groups with cross-branch sagas in a later step); snapshots every 5,000 entries.
    let node_config = NodeConfig {
        snapshot_every_entries: 5_000,
        ..NodeConfig::new(&data_dir)
    };
    let node = runtime
        .block_on(Node::start(node_config))
        .context("starting the branch node")?;
    let clock = Clock::start();

    let setup_started = Instant::now();
    for accounts in workload.setup_batches() {
        let results = match runtime.block_on(node.submit(Request::CreateAccounts(accounts)))? {
            RequestOutcome::Accounts { results, .. } => results,
            other => anyhow::bail!("unexpected answer {other:?}"),
        };
        // A data directory from an earlier run already holds the accounts.
        let results: Vec<_> = results
            .into_iter()
            .filter(|r| r.result != corebank_ledger::CreateAccountResult::Exists)
            .collect();
        if let Some(failure) = results.first() {
            anyhow::bail!(
                "creating the bank's accounts failed: {} ({} events)",
                failure.result,
                results.len()
            );
        }
    }
    let setup_time = setup_started.elapsed();
    let currencies: Vec<&str> = workload
        .config()
        .currencies
        .iter()
        .map(|c| c.alpha)
        .collect();
    if !args.quiet {
        eprintln!(
            "corebank demo: {} branches, {} customers, {} accounts in {} (opened in {}); {}",
            args.branches,
            group_digits(workload.customer_count() as u128),
            group_digits(node.read_local(|l| l.accounts().len()).unwrap_or(0) as u128),
            currencies.join(", "),
            format_duration(setup_time),
            match args.seconds {
                Some(s) => format!("running for {s} s"),
                None => "running until Ctrl-C".to_owned(),
            },
        );
        eprintln!(
            "{:>8}  {:>11}  {:>13}  {:>11}  {:>9}  {:>9}",
            "elapsed", "events/s", "created", "failed", "pending", "expired"
        );
    }

    let batch_size = usize::from(args.batch);
    let deadline = args.seconds.map(Duration::from_secs);
    let traffic_started = clock.elapsed();
    let mut totals = Totals::default();
    let mut last_report = (traffic_started, 0u64);
    let why = loop {
        let elapsed = clock.elapsed();
        if stop.load(Ordering::Relaxed) {
            break Stop::Interrupted;
        }
        if deadline.is_some_and(|limit| elapsed.saturating_sub(traffic_started) >= limit) {
            break Stop::TimeUp;
        }
        if totals.tally.events() >= args.max_events {
            break Stop::MaxEvents;
        }
        if args.rate > 0 {
            // Ahead of the target rate: wait a little (in short naps, to stay responsive).
            let due = Duration::from_nanos(
                u64::try_from(
                    u128::from(totals.tally.events()) * 1_000_000_000 / u128::from(args.rate),
                )
                .unwrap_or(u64::MAX),
            );
            let since = elapsed.saturating_sub(traffic_started);
            if let Some(ahead) = due.checked_sub(since).filter(|d| !d.is_zero()) {
                std::thread::sleep(ahead.min(Duration::from_millis(50)));
                continue;
            }
        }

        let room = usize::try_from(args.max_events - totals.tally.events()).unwrap_or(usize::MAX);
        let batch = workload.next_batch(batch_size.min(room));
        let count = batch.len();
        // The workload has counted these events as sent: a busy node gets the same batch
        // again (ids are idempotent), never a skipped one.
        let results = loop {
            match runtime.block_on(node.submit(Request::CreateTransfers(batch.clone()))) {
                Ok(RequestOutcome::Transfers { results, .. }) => break results,
                Ok(other) => anyhow::bail!("unexpected answer {other:?}"),
                Err(error) if error.code() == "busy_retry" => std::thread::yield_now(),
                Err(error) => return Err(error.into()),
            }
        };
        workload.observe(&results);
        totals.tally.record(count, &results);
        totals.batches += 1;

        let elapsed = clock.elapsed();
        let window = elapsed.saturating_sub(last_report.0);
        if !args.quiet && window >= Duration::from_secs(1) {
            let events = totals.tally.events();
            let rate = per_second(events - last_report.1, window);
            totals.expired = node
                .read_local(|l| l.stats().expired_transfers as u64)
                .unwrap_or(totals.expired);
            eprintln!(
                "{:>8}  {:>11}  {:>13}  {:>11}  {:>9}  {:>9}",
                {
                    let running = elapsed.saturating_sub(traffic_started);
                    format!("{}.{} s", running.as_secs(), running.subsec_millis() / 100)
                },
                group_digits(rate.into()),
                group_digits(totals.tally.created().into()),
                group_digits(totals.tally.failed().into()),
                group_digits(totals.pending_holds(&workload).into()),
                group_digits(totals.expired.into()),
            );
            last_report = (elapsed, events);
        }
    };
    let duration = clock.elapsed().saturating_sub(traffic_started);
    totals.expired = node
        .read_local(|l| l.stats().expired_transfers as u64)
        .unwrap_or(totals.expired);
    let (report, ok) = node
        .read_local(|ledger| report(&args, &workload, ledger, &totals, duration, why))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    print!("{report}");
    println!(
        "  storage     durable Raft log and snapshots in {}{}",
        data_dir.display(),
        if args.data_dir.is_none() {
            " (temporary, now removed)"
        } else {
            ""
        }
    );
    runtime.block_on(node.shutdown());
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The closing report, and whether the books balance.
fn report(
    args: &DemoArgs,
    workload: &Workload,
    ledger: &Ledger,
    totals: &Totals,
    duration: Duration,
    why: Stop,
) -> (String, bool) {
    let tally = &totals.tally;
    let stats = ledger.stats();
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let num = |n: u64| group_digits(n.into());

    line(String::new());
    line(format!(
        "corebank demo: {} after {}",
        why.describe(),
        format_duration(duration)
    ));
    line(format!(
        "  bank        {} branches, {} customers, {} accounts, seed {}",
        args.branches,
        num(workload.customer_count() as u64),
        num(stats.accounts as u64),
        args.seed
    ));
    line(format!(
        "  events      {} applied in {} batches of up to {}: {} per second",
        num(tally.events()),
        num(totals.batches),
        num(args.batch.into()),
        num(per_second(tally.events(), duration))
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
    let kind = |k: EventKind| workload.stats_of(k).succeeded();
    line(format!(
        "  card holds  {} placed, {} captured ({} in part), {} released, {} expired, {} still pending",
        num(kind(EventKind::CardHold)),
        num(kind(EventKind::HoldCapture) + kind(EventKind::HoldPartialCapture)),
        num(kind(EventKind::HoldPartialCapture)),
        num(kind(EventKind::HoldRelease)),
        num(totals.expired),
        num(stats.pending_transfers as u64),
    ));

    line(String::new());
    line(format!(
        "  {:<22} {:>12} {:>12} {:>10}",
        "traffic", "sent", "created", "failed"
    ));
    for (kind, stats) in workload.kind_stats() {
        line(format!(
            "  {:<22} {:>12} {:>12} {:>10}",
            kind.name(),
            num(stats.sent),
            num(stats.succeeded()),
            num(stats.failed)
        ));
    }

    line(String::new());
    line("  conservation per currency (sums over all accounts)".to_owned());
    let mut balanced = true;
    for (ledger_id, t) in ledger.totals_by_ledger() {
        let currency = Currency::from_numeric(ledger_id).ok();
        let name = currency.map_or_else(
            || format!("ledger {ledger_id}"),
            |c| format!("{} ({ledger_id})", c.alpha),
        );
        let exponent = currency.map_or(2, |c| u32::from(c.exponent));
        let amount = |v: u128| format_minor_units(v, exponent);
        let verdict = |a: u128, b: u128| if a == b { "ok" } else { "MISMATCH" };
        balanced &= t.is_conserved();
        let width = amount(t.debits_posted.max(t.credits_posted)).len();
        line(format!("    {name}, {} accounts", num(t.accounts)));
        line(format!(
            "      posted   debits {:>width$}   credits {:>width$}   {}",
            amount(t.debits_posted),
            amount(t.credits_posted),
            verdict(t.debits_posted, t.credits_posted),
        ));
        line(format!(
            "      pending  debits {:>width$}   credits {:>width$}   {}",
            amount(t.debits_pending),
            amount(t.credits_pending),
            verdict(t.debits_pending, t.credits_pending),
        ));
    }
    let checked = Instant::now();
    let invariants = ledger.check_invariants();
    let mut verdict = String::new();
    match &invariants {
        Ok(()) => {
            let _ = write!(
                verdict,
                "  invariants  ok: {} accounts and {} transfers checked in {}",
                num(stats.accounts as u64),
                num(stats.transfers as u64),
                format_duration(checked.elapsed())
            );
        }
        Err(violation) => {
            let _ = write!(verdict, "  invariants  BROKEN: {violation}");
        }
    }
    line(verdict);
    let ok = balanced && invariants.is_ok();
    line(if ok {
        "  result      OK: every currency balances, nothing lost, nothing made".to_owned()
    } else {
        "  result      FAILED: the books do not balance".to_owned()
    });
    (out, ok)
}
