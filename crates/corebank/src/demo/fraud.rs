//! The demo's customer traffic: a month of a fraud simulator's customers (salaries,
//! rent, card payments, transfers, cash, and labelled fraud typologies) replayed into a
//! branch through its fraud screen, each transfer with its channel, device, place and
//! time. The simulator knows which transfers are fraud, so the demo can say what the
//! screen caught and what it held by mistake, and play the analyst: release the
//! legitimate held transfers, reject the fraudulent ones (the screen learns from both).

use std::collections::{BTreeMap, HashMap};

use corebank_account_number::BranchCode;
use corebank_banking::{Branch, InternalAccount, Product, transfer_code};
use corebank_fraud_sim::{EventKind, SimConfig, Simulator, Typology};
use corebank_ledger::{CreateTransferResult, Transfer, TransferFlags};
use corebank_money::Currency;
use corebank_node::{Request, RequestOutcome, RiskAction};
use corebank_screening::{Channel, GeoPoint, TransferContext, Verdict};

use super::{BranchRun, submit_to_branch};

/// Simulated customers' serials start here, far above the workload's.
const SERIAL_OFFSET: u64 = 5_000_000;
/// Transfers per request.
const BATCH: usize = 256;

/// What the screen did with one kind of traffic.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Outcomes {
    pub transfers: u64,
    pub approved: u64,
    pub held: u64,
    pub declined: u64,
    /// Refused because the payer's account was frozen.
    pub frozen_refused: u64,
    /// Refused by the ledger for other reasons (mostly funds a declined or held
    /// transfer did not bring).
    pub other_refused: u64,
}

impl Outcomes {
    /// Held or declined, or stopped by a freeze.
    pub fn stopped(&self) -> u64 {
        self.held + self.declined + self.frozen_refused
    }
}

/// The screen's results on one branch's replay, by typology (`Typology::None` for
/// legitimate traffic).
#[derive(Clone, Debug, Default)]
pub(super) struct FraudReplay {
    pub by_typology: BTreeMap<Typology, Outcomes>,
    pub released: u64,
    pub rejected: u64,
    pub customers: u32,
    pub days: u32,
}

impl FraudReplay {
    pub fn merge(&mut self, other: &FraudReplay) {
        for (typology, outcome) in &other.by_typology {
            let mine = self.by_typology.entry(*typology).or_default();
            mine.transfers += outcome.transfers;
            mine.approved += outcome.approved;
            mine.held += outcome.held;
            mine.declined += outcome.declined;
            mine.frozen_refused += outcome.frozen_refused;
            mine.other_refused += outcome.other_refused;
        }
        self.released += other.released;
        self.rejected += other.rejected;
        self.customers += other.customers;
        self.days = self.days.max(other.days);
    }
}

fn channel(channel: corebank_fraud_sim::Channel) -> Channel {
    Channel::from_name(channel.name()).unwrap_or_default()
}

fn micro(value: i64) -> i32 {
    i32::try_from(value.clamp(-180_000_000, 180_000_000)).unwrap_or(0)
}

/// Replays `days` of `customers` simulated customers into `run`'s branch; the
/// simulation's day 0 starts at `start_ns`.
pub(super) async fn replay(
    run: &BranchRun,
    seed: u64,
    customers: u32,
    days: u32,
    start_ns: u64,
) -> anyhow::Result<FraudReplay> {
    let code: BranchCode = run.code;
    let branch = Branch::new(code);
    let currency = Currency::EUR;
    let simulator = Simulator::new(SimConfig {
        seed,
        branches: 1,
        customers,
        days,
        currency,
        ..SimConfig::default()
    });
    // The simulator's accounts become the branch's customer accounts, opened with the
    // simulator's starting balances; its outside parties are the branch's cash.
    let cash = branch.internal_account_id(InternalAccount::Cash, currency);
    let mut accounts = HashMap::new();
    let mut opening = Vec::new();
    let mut new_accounts = Vec::new();
    for (index, customer) in simulator.customers().iter().enumerate() {
        let serial = SERIAL_OFFSET + index as u64;
        let tag = corebank_banking::customer_tag(&format!("sim-{code}-{index}"))?;
        let account = branch.customer_account(serial, tag, currency, Product::Current)?;
        accounts.insert(customer.account, account.id);
        let balance = simulator.balance(index).unwrap_or(0);
        if balance > 0 {
            opening.push(Transfer {
                id: id_of(code, 0xFFFF_0000 + index as u64),
                debit_account_id: cash,
                credit_account_id: account.id,
                amount: balance,
                ledger: currency.numeric,
                code: transfer_code::DEPOSIT,
                ..Default::default()
            });
        }
        new_accounts.push(account);
    }
    for chunk in new_accounts.chunks(BATCH) {
        submit_to_branch(run, Request::CreateAccounts(chunk.to_vec())).await?;
    }
    for chunk in opening.chunks(BATCH) {
        submit_to_branch(run, Request::CreateTransfers(chunk.to_vec())).await?;
    }

    let mut replay = FraudReplay {
        customers,
        days,
        ..FraudReplay::default()
    };
    let mut labels: HashMap<u128, Typology> = HashMap::new();
    let mut held = Vec::new();
    let mut events = Vec::with_capacity(BATCH);
    let mut contexts = Vec::with_capacity(BATCH);
    let mut typologies = Vec::with_capacity(BATCH);
    let mut simulator = simulator.peekable();
    while simulator.peek().is_some() {
        events.clear();
        contexts.clear();
        typologies.clear();
        for event in simulator.by_ref().take(BATCH) {
            let side = |id: u128| accounts.get(&id).copied().unwrap_or(cash);
            let (debit, credit) = (side(event.debit), side(event.credit));
            if debit == credit {
                continue;
            }
            let code = match event.kind {
                EventKind::Salary | EventKind::CashDeposit => transfer_code::DEPOSIT,
                EventKind::CashWithdrawal => transfer_code::WITHDRAWAL,
                _ if credit == cash && event.kind == EventKind::External => {
                    transfer_code::WITHDRAWAL
                }
                _ if debit == cash => transfer_code::DEPOSIT,
                _ => transfer_code::PAYMENT,
            };
            let id = id_of(run.code, event.id);
            events.push(Transfer {
                id,
                debit_account_id: debit,
                credit_account_id: credit,
                amount: event.amount,
                ledger: currency.numeric,
                code,
                ..Default::default()
            });
            contexts.push(TransferContext {
                channel: channel(event.channel),
                merchant_category: event.merchant_category,
                device: event.device,
                location: (event.lat != 0 || event.lon != 0).then(|| GeoPoint {
                    lat_micro: micro(event.lat),
                    lon_micro: micro(event.lon),
                }),
                occurred_at_ns: start_ns
                    .saturating_add(event.timestamp.saturating_mul(1_000_000_000))
                    .saturating_add(event.id % 1_000_000),
            });
            typologies.push(event.typology);
            labels.insert(id, event.typology);
        }
        if events.is_empty() {
            continue;
        }
        let outcome =
            submit_to_branch(run, Request::screened(events.clone(), contexts.clone())).await?;
        let RequestOutcome::Screened {
            results, decisions, ..
        } = outcome
        else {
            anyhow::bail!("unexpected answer {outcome:?}");
        };
        let failures: HashMap<u32, CreateTransferResult> =
            results.iter().map(|r| (r.index, r.result)).collect();
        let holds: HashMap<u32, Verdict> = decisions
            .iter()
            .map(|d| (d.index, d.assessment.verdict))
            .collect();
        for (index, typology) in typologies.iter().enumerate() {
            let index_u32 = u32::try_from(index).unwrap_or(u32::MAX);
            let tally = replay.by_typology.entry(*typology).or_default();
            tally.transfers += 1;
            match failures.get(&index_u32) {
                None | Some(CreateTransferResult::Exists) => {
                    if holds.get(&index_u32) == Some(&Verdict::Hold) {
                        tally.held += 1;
                        held.push(events[index].id);
                    } else {
                        tally.approved += 1;
                    }
                }
                Some(CreateTransferResult::DeclinedByRisk) => tally.declined += 1,
                Some(CreateTransferResult::DebitAccountFrozen) => tally.frozen_refused += 1,
                Some(_) => tally.other_refused += 1,
            }
        }
    }

    // The analyst's queue: the simulator's labels play the analyst.
    for (n, held_id) in held.into_iter().enumerate() {
        let fraud = labels.get(&held_id).is_some_and(|t| *t != Typology::None);
        let event = Transfer {
            id: id_of(run.code, 0xFFFE_0000_0000 + n as u64),
            pending_id: held_id,
            flags: if fraud {
                TransferFlags::VOID_PENDING_TRANSFER
            } else {
                TransferFlags::POST_PENDING_TRANSFER
            },
            ..Default::default()
        };
        let note = if fraud {
            "demo analyst: confirmed fraud"
        } else {
            "demo analyst: customer confirmed the payment"
        };
        let outcome = submit_to_branch(
            run,
            Request::Risk(RiskAction::Review {
                event,
                note: note.into(),
            }),
        )
        .await?;
        if matches!(outcome, RequestOutcome::Risk { outcome: Ok(ref r), .. } if r.is_empty()) {
            if fraud {
                replay.rejected += 1;
            } else {
                replay.released += 1;
            }
            if let Some(engine) = run.leader().and_then(|l| l.risk_engine()) {
                engine.feedback(held_id, fraud);
            }
        }
    }
    Ok(replay)
}

/// Trains the screen's supervised model on a simulated month of other customers
/// (another seed) and puts it in service on every replica of every branch. Returns a
/// line for the operator.
pub(super) fn train_screen(
    branches: &[BranchRun],
    seed: u64,
    customers: u32,
    days: u32,
) -> anyhow::Result<String> {
    let started = std::time::Instant::now();
    let config = SimConfig {
        seed: seed.wrapping_add(77_777),
        branches: 1,
        customers: customers.saturating_mul(2).max(100),
        days,
        ..SimConfig::default()
    };
    let params = corebank_risk::Params {
        trees: 100,
        max_depth: 6,
        learning_rate: 0.1,
        ..corebank_risk::Params::default()
    };
    let trained = corebank_risk_engine::sim::train_on_simulation(&config, &params, |_, _| {});
    let mut version = String::new();
    for branch in branches {
        for server in &branch.servers {
            if let Some(engine) = server.risk_engine() {
                version = engine.set_model(trained.model.clone())?;
            }
        }
    }
    Ok(format!(
        "trained the fraud screen's model {version} on {} simulated transfers ({} fraudulent) in {:.1} s; every branch screens with it",
        trained.rows,
        trained.positives,
        started.elapsed().as_secs_f64()
    ))
}

/// Starts the risk agent beside the branches (port 7070, or a free one), following
/// every replica of every branch.
pub(super) async fn start_agent(
    branches: &[BranchRun],
    data_dir: &std::path::Path,
) -> anyhow::Result<corebank_agent::RunningAgent> {
    let targets = branches
        .iter()
        .map(|branch| corebank_agent::BranchTarget {
            code: branch.code.get(),
            endpoints: branch
                .servers
                .iter()
                .map(|s| s.grpc_addr().to_string())
                .collect::<Vec<_>>()
                .join(","),
        })
        .collect();
    let mut client = corebank_client::ClientConfig::new(String::new());
    client.keep_alive_interval = Some(std::time::Duration::from_secs(10));
    let config = corebank_agent::AgentConfig::new(targets, client, data_dir.join("agent-models"));
    let port = super::pick_ports(7070, 1).first().copied().unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    Ok(corebank_agent::service::start(config, listener).await?)
}

/// Waits until the agent has read what the branches recorded (its alert count stops
/// growing), then describes its alerts.
pub(super) async fn settle_alerts(agent: &corebank_agent::RunningAgent) -> String {
    let mut last = None;
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let total: u64 = agent.alert_counts().iter().map(|(_, n)| n).sum();
        if last == Some(total) {
            break;
        }
        last = Some(total);
    }
    let counts = agent.alert_counts();
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let mut out = format!(
        "  risk agent  http://{}: {total} alerts ({})\n",
        agent.addr(),
        counts
            .iter()
            .map(|(kind, n)| format!("{} {n}", kind.name()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let alerts = agent.alerts(0, usize::MAX);
    for alert in alerts.iter().rev().take(5) {
        out.push_str(&format!(
            "    #{:<6} {:<9} {:<6} {}\n",
            alert.id,
            alert.alert.kind.name(),
            alert.alert.severity.name(),
            alert.alert.summary
        ));
    }
    out
}

/// Transfer ids of the replay: their own range, apart from the workload's.
fn id_of(code: BranchCode, n: u64) -> u128 {
    (0xF0_u128 << 120) | (u128::from(code.get()) << 64) | u128::from(n)
}

/// The report's section on the screen.
pub(super) fn report(replay: &FraudReplay, alerts: Option<&str>) -> String {
    let mut out = format!(
        "Fraud screening (customer traffic: {} simulated customers, {} days replayed through the screen)\n",
        replay.customers, replay.days
    );
    out.push_str(&format!(
        "  {:<22} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9}\n",
        "traffic", "transfers", "held", "declined", "frozen", "refused", "stopped"
    ));
    for (typology, o) in &replay.by_typology {
        let permille = o.stopped() * 1_000 / o.transfers.max(1);
        let name = if *typology == Typology::None {
            "legitimate".to_owned()
        } else {
            typology.name().to_owned()
        };
        out.push_str(&format!(
            "  {:<22} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7}.{}%\n",
            name,
            o.transfers,
            o.held,
            o.declined,
            o.frozen_refused,
            o.other_refused,
            permille / 10,
            permille % 10
        ));
    }
    out.push_str(&format!(
        "  review queue: {} held transfers released, {} rejected by the demo's analyst (the screen learns from each)\n",
        replay.released, replay.rejected
    ));
    if let Some(alerts) = alerts {
        out.push_str(alerts);
    }
    out
}
