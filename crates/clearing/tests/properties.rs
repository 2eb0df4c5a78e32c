//! Random interleavings of saga steps, lost messages, partitions, customer retries and
//! resumes across three branches. After healing and a final resume: every saga is
//! posted or voided (or never reserved), the one its destination called for;
//! reconciliation is clean; money is conserved per currency; every customer's balance
//! equals the model's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use corebank_clearing::{
    Delivery, Fault, Reservation, Saga, SagaOutcome, SagaStatus, deliver, reserve, resume,
    saga_status, settle, start,
};
use corebank_ledger::AccountFlags;
use corebank_money::Currency;
use proptest::prelude::*;
use support::{Bank, S};

const BRANCHES: [u16; 3] = [1, 2, 3];
/// Per branch: (serial, currency, opening balance); serial 2000 is never opened.
const CUSTOMERS: [(u64, Currency, u128); 3] = [
    (1_000, Currency::EUR, 10_000),
    (1_001, Currency::EUR, 10_000),
    (1_002, Currency::JPY, 5_000),
];
const GHOST_SERIAL: u64 = 2_000;

#[derive(Clone, Copy, Debug)]
struct Spec {
    from_branch: usize,
    from_customer: usize,
    /// 1 or 2: the destination is `from_branch + offset` (mod 3).
    to_offset: usize,
    /// 0..=2 a customer, 3 the ghost.
    to_customer: usize,
    amount: u128,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    /// The whole saga (or a customer's retry of it).
    Start(usize),
    /// Step 1 only; the driver stops.
    Reserve(usize),
    /// Step 2 only, for a saga whose reservation was acknowledged.
    Deliver(usize),
    /// Step 3 only, for a saga whose destination answered.
    Settle(usize),
    Resume(usize),
    /// After `skip` good calls, one call of the branch fails.
    Fail {
        branch: usize,
        skip: u8,
        fault: Fault,
    },
    Down(usize, Fault),
    Heal(usize),
    Tick,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::Unavailable),
        Just(Fault::ReplyLost),
        Just(Fault::Rejected)
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..3_usize,
        0..3_usize,
        1..3_usize,
        0..4_usize,
        1..=4_000_u128,
    )
        .prop_map(
            |(from_branch, from_customer, to_offset, to_customer, amount)| Spec {
                from_branch,
                from_customer,
                to_offset,
                to_customer,
                amount,
            },
        )
}

fn op(sagas: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..sagas).prop_map(Op::Start),
        3 => (0..sagas).prop_map(Op::Reserve),
        3 => (0..sagas).prop_map(Op::Deliver),
        3 => (0..sagas).prop_map(Op::Settle),
        2 => (0..3_usize).prop_map(Op::Resume),
        3 => (0..3_usize, 0..4_u8, fault()).prop_map(|(branch, skip, fault)| Op::Fail { branch, skip, fault }),
        1 => (0..3_usize, fault()).prop_map(|(branch, fault)| Op::Down(branch, fault)),
        2 => (0..3_usize).prop_map(Op::Heal),
        1 => Just(Op::Tick),
    ]
}

fn case() -> impl Strategy<Value = (Vec<Spec>, Vec<Op>)> {
    prop::collection::vec(spec(), 1..10).prop_flat_map(|specs| {
        let n = specs.len();
        (Just(specs), prop::collection::vec(op(n), 1..60))
    })
}

struct World {
    bank: Bank,
    sagas: Vec<Saga>,
    /// Does the destination accept the saga (beneficiary exists, same currency)?
    acceptable: Vec<bool>,
    /// Customer account id → (currency, opening balance).
    customers: BTreeMap<u128, (Currency, u128)>,
}

impl World {
    fn new(specs: &[Spec]) -> Self {
        let bank = Bank::new(&BRANCHES);
        let mut customers = BTreeMap::new();
        for branch in BRANCHES {
            for (serial, currency, opening) in CUSTOMERS {
                let id = bank.open(branch, serial, currency, opening);
                customers.insert(id, (currency, opening));
            }
        }
        let mut sagas = Vec::new();
        let mut acceptable = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            let from_branch = BRANCHES[spec.from_branch];
            let to_branch = BRANCHES[(spec.from_branch + spec.to_offset) % 3];
            let (from_serial, currency, _) = CUSTOMERS[spec.from_customer];
            let (to_serial, accepts) = match CUSTOMERS.get(spec.to_customer) {
                Some((serial, to_currency, _)) => (*serial, *to_currency == currency),
                None => (GHOST_SERIAL, false),
            };
            let saga = Saga::new(
                1_000 + index as u128,
                bank.customer_id(from_branch, from_serial),
                bank.customer_id(to_branch, to_serial),
                spec.amount,
                currency,
            )
            .unwrap();
            sagas.push(saga);
            acceptable.push(accepts);
        }
        Self {
            bank,
            sagas,
            acceptable,
            customers,
        }
    }
}

async fn run((specs, ops): (Vec<Spec>, Vec<Op>)) -> Result<(), TestCaseError> {
    let world = World::new(&specs);
    let bank = &world.bank;
    let port = |branch: corebank_account_number::BranchCode| bank.port(branch.get());
    // What the driver learnt along the way.
    let mut reserved: BTreeSet<usize> = BTreeSet::new();
    let mut deliveries: BTreeMap<usize, Delivery> = BTreeMap::new();
    let mut finals: BTreeMap<usize, SagaOutcome> = BTreeMap::new();
    let mut note = |index: usize,
                    outcome: &SagaOutcome,
                    reserved: &mut BTreeSet<usize>,
                    deliveries: &mut BTreeMap<usize, Delivery>| {
        match outcome {
            SagaOutcome::InFlight { delivery, .. } => {
                reserved.insert(index);
                if let Some(delivery) = delivery {
                    deliveries.insert(index, *delivery);
                }
            }
            SagaOutcome::Stuck { delivery, .. } => {
                reserved.insert(index);
                deliveries.insert(index, *delivery);
            }
            SagaOutcome::Posted | SagaOutcome::Voided { .. } => {
                reserved.insert(index);
                finals.insert(index, outcome.clone());
            }
            SagaOutcome::Rejected(_) => {
                finals.insert(index, outcome.clone());
            }
            SagaOutcome::Unknown(_) => {}
        }
    };

    for op in ops {
        match op {
            Op::Start(index) => {
                let saga = world.sagas[index];
                let outcome = start(port(saga.source()), port(saga.destination()), &saga).await;
                note(index, &outcome, &mut reserved, &mut deliveries);
            }
            Op::Reserve(index) => {
                let saga = world.sagas[index];
                if let Ok(Reservation::Reserved | Reservation::AlreadyReserved) =
                    reserve(port(saga.source()), &saga).await
                {
                    reserved.insert(index);
                }
            }
            Op::Deliver(index) => {
                if !reserved.contains(&index) {
                    continue;
                }
                let saga = world.sagas[index];
                if let Ok(delivery) = deliver(port(saga.destination()), &saga).await
                    && let Some(earlier) = deliveries.insert(index, delivery)
                {
                    // The destination's answer never changes for an id, except that a
                    // refused id answers `id_already_failed` from then on.
                    let same = earlier == delivery
                        || matches!(
                            (earlier, delivery),
                            (Delivery::Refused(_), Delivery::Refused(_))
                        );
                    prop_assert!(same, "saga {index}: {earlier:?} then {delivery:?}");
                }
            }
            Op::Settle(index) => {
                let Some(delivery) = deliveries.get(&index).copied() else {
                    continue;
                };
                let saga = world.sagas[index];
                let outcome = settle(port(saga.source()), &saga, delivery).await;
                note(index, &outcome, &mut reserved, &mut deliveries);
            }
            Op::Resume(branch) => {
                let source = bank.port(BRANCHES[branch]);
                if let Ok(report) = resume(source, bank.route(), &Default::default()).await {
                    for (saga, outcome) in &report.outcomes {
                        let index = world.sagas.iter().position(|s| s == saga).unwrap();
                        note(index, outcome, &mut reserved, &mut deliveries);
                    }
                }
            }
            Op::Fail {
                branch,
                skip,
                fault,
            } => {
                let mut plan = vec![None; usize::from(skip)];
                plan.push(Some(fault));
                bank.port(BRANCHES[branch]).schedule(plan);
            }
            Op::Down(branch, fault) => bank.port(BRANCHES[branch]).take_down(fault),
            Op::Heal(branch) => bank.port(BRANCHES[branch]).heal(),
            Op::Tick => bank.clock.advance_ns(S),
        }
    }

    // Heal, and let every branch resume until nothing is open.
    bank.heal();
    for round in 0.. {
        let reports = bank.resume_all().await;
        for report in &reports {
            prop_assert!(report.malformed.is_empty());
            for (saga, outcome) in &report.outcomes {
                let index = world.sagas.iter().position(|s| s == saga).unwrap();
                note(index, outcome, &mut reserved, &mut deliveries);
            }
        }
        if reports.iter().all(|r| r.unfinished() == 0) {
            break;
        }
        prop_assert!(
            round < 2,
            "sagas still open after {round} resumes: {reports:?}"
        );
    }

    // Every saga ended as its destination called for, and as the driver reported.
    let mut expected: BTreeMap<u128, u128> = world
        .customers
        .iter()
        .map(|(id, (_, opening))| (*id, *opening))
        .collect();
    for (index, saga) in world.sagas.iter().enumerate() {
        let status = saga_status(port(saga.source()), saga.id()).await.unwrap();
        match status {
            SagaStatus::Posted(found) => {
                prop_assert_eq!(found, *saga);
                prop_assert!(world.acceptable[index], "saga {} posted: {:?}", index, saga);
                *expected.get_mut(&saga.debit_account_id()).unwrap() -= saga.amount();
                *expected.get_mut(&saga.credit_account_id()).unwrap() += saga.amount();
            }
            SagaStatus::Voided(_) => {
                prop_assert!(
                    !world.acceptable[index],
                    "saga {} voided: {:?}",
                    index,
                    saga
                );
            }
            SagaStatus::NotFound => {
                prop_assert!(
                    !reserved.contains(&index),
                    "saga {} reserved, then lost",
                    index
                );
            }
            other => prop_assert!(false, "saga {} ends {:?}", index, other),
        }
        if let Some(reported) = finals.get(&index) {
            let agrees = matches!(
                (reported, status),
                (SagaOutcome::Posted, SagaStatus::Posted(_))
                    | (SagaOutcome::Voided { .. }, SagaStatus::Voided(_))
                    | (SagaOutcome::Rejected(_), SagaStatus::NotFound)
            );
            prop_assert!(
                agrees,
                "saga {}: reported {:?}, ends {:?}",
                index,
                reported,
                status
            );
        }
    }

    // Balances: as the model says, nothing left pending.
    for (id, want) in &expected {
        let account = bank.account(*id);
        prop_assert_eq!(account.credits_posted - account.debits_posted, *want);
        prop_assert_eq!((account.debits_pending, account.credits_pending), (0, 0));
    }
    // Conservation per currency: customers hold what was paid in; the clearing
    // accounts net out across the bank.
    for currency in [Currency::EUR, Currency::JPY] {
        let held: u128 = world
            .customers
            .iter()
            .filter(|(_, (c, _))| *c == currency)
            .map(|(id, _)| expected[id])
            .sum();
        let opened: u128 = world
            .customers
            .values()
            .filter(|(c, _)| *c == currency)
            .map(|(_, opening)| opening)
            .sum();
        prop_assert_eq!(held, opened);
        let (mut credits, mut debits) = (0_u128, 0_u128);
        for branch in &bank.branches {
            branch.with_ledger(|ledger| {
                for account in ledger.accounts() {
                    if account.code == corebank_banking::account_code::CLEARING
                        && account.ledger == currency.numeric
                    {
                        assert_eq!(account.flags, AccountFlags::HISTORY);
                        credits += account.credits_posted;
                        debits += account.debits_posted;
                    }
                }
            });
        }
        prop_assert_eq!(
            credits,
            debits,
            "{} clearing does not net out",
            currency.alpha
        );
    }
    let report = bank.reconcile().await;
    prop_assert!(report.is_clean(), "{}", report);
    bank.check_ledgers();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sagas_end_posted_or_voided_and_the_bank_reconciles(case in case()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(run(case))?;
    }
}
