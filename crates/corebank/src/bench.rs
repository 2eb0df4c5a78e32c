//! `corebank bench ledger`: transfers per second through the ledger core alone, one
//! thread, in-memory; only `create_transfers` is timed.
use std::process::ExitCode;
use std::time::{Duration, Instant};

use corebank_ledger::{CreateTransferResult, Ledger};
use corebank_workload::bank::{Currency, group_digits};
use corebank_workload::measure::{LatencySummary, format_duration, per_second};
use corebank_workload::{FlatBank, ResultTally};

/// Largest payment of the benchmark, in minor units (100.00).
const MAX_AMOUNT: u128 = 10_000;

/// Options of `corebank bench ledger`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Creates the accounts and funds them, generates all the payments (none of this is timed),
then times only create_transfers, batch by batch, on one thread. Reports transfers per
second, total time, per-batch latency (p50, p99, p99.9, max), outcomes, and checks the
ledger's invariants afterwards (exit code non-zero if they are broken).")]
pub struct LedgerBenchArgs {
    /// Customer accounts to create (every other one cannot be overdrawn); each is
    /// funded before the clock starts so that the payments succeed.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(2..))]
    pub accounts: u32,
    /// Payments to apply (timed): uniformly random pairs of distinct accounts, same
    /// currency, amounts from 0.01 to 100.00.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=4_000_000_000))]
    pub transfers: u64,
    /// Events per `create_transfers` batch (1 to 8190).
    #[arg(long, default_value_t = 8_190, value_parser = clap::value_parser!(u16).range(1..=8_190))]
    pub batch: u16,
    /// Print exactly one JSON object on stdout instead of the human report.
    #[arg(long)]
    pub json: bool,
    /// Seed for the account pairs and amounts.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// What the timed part measured.
#[derive(Debug)]
struct Outcome {
    latency: LatencySummary,
    tally: ResultTally,
    invariants: Result<(), String>,
}

pub fn run_ledger(args: LedgerBenchArgs) -> anyhow::Result<ExitCode> {
    let transfers_count = usize::try_from(args.transfers)?;
    let batch = usize::from(args.batch);
    let say = |text: String| {
        if !args.json {
            eprintln!("{text}");
        }
    };

    let setup_started = Instant::now();
    let bank = FlatBank::new(args.accounts, Currency::EUR);
    let mut ledger = Ledger::with_capacity(
        args.accounts as usize + 1,
        transfers_count + args.accounts as usize + 1,
    );
    for chunk in bank.accounts().chunks(corebank_ledger::BATCH_EVENTS_MAX) {
        let results = ledger.create_accounts(ledger.last_timestamp() + 1, chunk)?;
        anyhow::ensure!(results.is_empty(), "creating accounts failed: {results:?}");
    }
    // Enough for each account to pay twice its expected share of payments at the
    // largest amount.
    let expected_debits = u128::from(args.transfers) / u128::from(args.accounts) + 1;
    let funding = bank.funding_transfers(2 * expected_debits * MAX_AMOUNT + 100 * MAX_AMOUNT, 1);
    for chunk in funding.chunks(corebank_ledger::BATCH_EVENTS_MAX) {
        let results = ledger.create_transfers(ledger.last_timestamp() + 1, chunk)?;
        anyhow::ensure!(results.is_empty(), "funding failed: {results:?}");
    }
    let first_id = funding.len() as u128 + 1;
    let transfers = bank.random_transfers(args.seed, transfers_count, first_id, MAX_AMOUNT);
    say(format!(
        "set up {} accounts, funded them, and generated {} payments in {} (not timed)",
        group_digits(args.accounts.into()),
        group_digits(args.transfers.into()),
        format_duration(setup_started.elapsed())
    ));

    let mut samples = Vec::with_capacity(transfers.len().div_ceil(batch));
    let mut tally = ResultTally::new();
    for chunk in transfers.chunks(batch) {
        let timestamp = ledger.last_timestamp() + 1;
        let started = Instant::now();
        let results = ledger.create_transfers(timestamp, chunk);
        let took = started.elapsed();
        let results = results?;
        samples.push(took);
        tally.record(chunk.len(), &results);
    }
    let outcome = Outcome {
        latency: LatencySummary::from_samples(&mut samples),
        tally,
        invariants: ledger.check_invariants().map_err(|e| e.to_string()),
    };
    let failed = outcome.invariants.is_err();
    if args.json {
        println!("{}", json_report(&args, &outcome));
    } else {
        print!("{}", human_report(&args, &outcome));
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn json_report(args: &LedgerBenchArgs, outcome: &Outcome) -> serde_json::Value {
    let latency = &outcome.latency;
    let failures: serde_json::Map<String, serde_json::Value> = outcome
        .tally
        .by_frequency()
        .into_iter()
        .map(|(result, count)| (result.as_str().to_owned(), count.into()))
        .collect();
    serde_json::json!({
        "benchmark": "ledger",
        "accounts": args.accounts,
        "transfers": args.transfers,
        "batch": args.batch,
        "batches": latency.count,
        "seed": args.seed,
        "seconds": latency.total.as_secs_f64(),
        "transfers_per_second": per_second(outcome.tally.events(), latency.total),
        "batch_latency_us": {
            "p50": micros(latency.p50),
            "p99": micros(latency.p99),
            "p999": micros(latency.p999),
            "max": micros(latency.max),
        },
        "batch_latency_ns": {
            "min": nanos(latency.min),
            "p50": nanos(latency.p50),
            "p99": nanos(latency.p99),
            "p999": nanos(latency.p999),
            "max": nanos(latency.max),
        },
        "created": outcome.tally.created(),
        "failed": outcome.tally.failed(),
        "failures": failures,
        "invariants_ok": outcome.invariants.is_ok(),
    })
}

fn human_report(args: &LedgerBenchArgs, outcome: &Outcome) -> String {
    let latency = &outcome.latency;
    let tally = &outcome.tally;
    let num = |n: u64| group_digits(n.into());
    let mut out = format!(
        "corebank bench ledger: {} payments between {} accounts, batches of {}, seed {}, one thread\n",
        num(args.transfers),
        num(args.accounts.into()),
        num(args.batch.into()),
        args.seed
    );
    out += &format!(
        "  throughput     {} transfers/s\n",
        num(per_second(tally.events(), latency.total))
    );
    out += &format!(
        "  time           {} in create_transfers ({} batches)\n",
        format_duration(latency.total),
        num(latency.count as u64)
    );
    out += &format!(
        "  batch latency  p50 {}   p99 {}   p99.9 {}   max {}\n",
        format_duration(latency.p50),
        format_duration(latency.p99),
        format_duration(latency.p999),
        format_duration(latency.max)
    );
    out += &format!("  created        {}\n", num(tally.created()));
    out += &format!("  failed         {}\n", num(tally.failed()));
    for (result, count) in tally.by_frequency() {
        out += &format!("    {:<32} {:>10}\n", result.as_str(), num(count));
    }
    if tally.count(CreateTransferResult::ExceedsCredits) > 0 {
        out += "    (some accounts ran dry: fund them more, or use more accounts)\n";
    }
    match &outcome.invariants {
        Ok(()) => out += "  invariants     ok (check_invariants after the run)\n",
        Err(violation) => out += &format!("  invariants     BROKEN: {violation}\n"),
    }
    out
}
