//! Scenarios of the saga over in-memory branches: the happy path, refusals, a crash or
//! a lost message at every point, duplicates, both directions, fences, stuck posts, and
//! what reconciliation finds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use corebank_banking::{clearing_account_id, transfer_code};
use corebank_clearing::{
    BranchPort, BreakCode, Delivery, Fault, POST_ATTEMPTS_MAX, PortError, Reservation,
    ResumeOptions, Saga, SagaOutcome, SagaStatus, deliver, fence, post_id, reserve, resume,
    saga_status, settle, start,
};
use corebank_ledger::{CreateTransferResult as R, Transfer, TransferFlags};
use corebank_money::Currency;
use support::{Bank, S, TIMEOUT_NS, code};

const EUR: Currency = Currency::EUR;

/// Branches 1 and 2; alice at 1 with 1,000.00 EUR, bob at 2 with nothing.
fn two_branches() -> (Bank, u128, u128) {
    let bank = Bank::new(&[1, 2]);
    let alice = bank.open(1, 1_000, EUR, 100_000);
    let bob = bank.open(2, 1_000, EUR, 0);
    (bank, alice, bob)
}

fn saga(id: u128, from: u128, to: u128, amount: u128) -> Saga {
    Saga::new(id, from, to, amount, EUR).unwrap()
}

async fn status(bank: &Bank, branch: u16, id: u128) -> &'static str {
    saga_status(bank.port(branch), id).await.unwrap().as_str()
}

#[tokio::test]
async fn happy_path_moves_money_through_the_clearing_accounts() {
    let (bank, alice, bob) = two_branches();
    let transfer = saga(7, alice, bob, 12_345);
    let outcome = start(bank.port(1), bank.port(2), &transfer).await;
    assert_eq!(outcome, SagaOutcome::Posted);
    assert_eq!(bank.balance(alice), 100_000 - 12_345);
    assert_eq!(bank.balance(bob), 12_345);
    let ours = bank.account(clearing_account_id(code(1), code(2), EUR));
    let theirs = bank.account(clearing_account_id(code(2), code(1), EUR));
    assert_eq!((ours.credits_posted, ours.credits_pending), (12_345, 0));
    assert_eq!(theirs.debits_posted, 12_345);
    assert_eq!(bank.account(alice).debits_pending, 0);
    // The legs are where the protocol says, with the same id in both ledgers.
    let out = bank.transfer(1, 7).unwrap();
    let into = bank.transfer(2, 7).unwrap();
    assert_eq!(
        (out.code, out.user_data_128),
        (transfer_code::CROSS_BRANCH_OUT, bob)
    );
    assert_eq!(
        (into.code, into.user_data_128),
        (transfer_code::CROSS_BRANCH_IN, alice)
    );
    assert_eq!(bank.transfer(1, post_id(7, 0)).unwrap().pending_id, 7);
    assert_eq!(status(&bank, 1, 7).await, "posted");

    // The customer retries: one transfer, one outcome, and B is not asked again.
    let calls = bank.port(2).calls();
    assert_eq!(
        start(bank.port(1), bank.port(2), &transfer).await,
        SagaOutcome::Posted
    );
    assert_eq!(bank.port(2).calls(), calls);
    assert_eq!(bank.balance(bob), 12_345);

    let report = bank.reconcile().await;
    assert!(report.is_clean(), "{report}");
    bank.check_ledgers();
}

#[tokio::test]
async fn a_missing_beneficiary_voids_the_reservation_and_the_funds_come_back() {
    let (bank, alice, _) = two_branches();
    let nobody = bank.customer_id(2, 4_242);
    let transfer = saga(8, alice, nobody, 5_000);
    assert_eq!(
        start(bank.port(1), bank.port(2), &transfer).await,
        SagaOutcome::Voided {
            refusal: Some(R::CreditAccountNotFound)
        }
    );
    assert_eq!(bank.balance(alice), 100_000);
    assert_eq!(bank.account(alice).debits_pending, 0);
    assert_eq!(status(&bank, 1, 8).await, "voided");
    // A retry answers the same final outcome.
    assert!(matches!(
        start(bank.port(1), bank.port(2), &transfer).await,
        SagaOutcome::Voided { .. }
    ));
    let report = bank.reconcile().await;
    assert!(report.is_clean(), "{report}");
}

#[tokio::test]
async fn a_refused_reservation_moves_nothing() {
    let (bank, alice, bob) = two_branches();
    let transfer = saga(9, alice, bob, 100_001);
    assert_eq!(
        start(bank.port(1), bank.port(2), &transfer).await,
        SagaOutcome::Rejected(R::ExceedsCredits)
    );
    assert_eq!(status(&bank, 1, 9).await, "not_found");
    assert_eq!(bank.port(2).calls(), 0, "the destination is never asked");
    // The id is burnt: the same id cannot be tried again (a new key is needed).
    assert_eq!(
        start(bank.port(1), bank.port(2), &transfer).await,
        SagaOutcome::Rejected(R::IdAlreadyFailed)
    );
    assert!(bank.reconcile().await.is_clean());
}

/// Where the driver stops (a crash, or a lost message) before `resume` takes over.
#[derive(Clone, Copy, Debug)]
enum Stop {
    ReservationLost,
    ReservationReplyLost,
    AfterReservation,
    DeliveryLost,
    DeliveryReplyLost,
    AfterDelivery,
    SettlementLost,
    SettlementReplyLost,
}

const STOPS: [Stop; 8] = [
    Stop::ReservationLost,
    Stop::ReservationReplyLost,
    Stop::AfterReservation,
    Stop::DeliveryLost,
    Stop::DeliveryReplyLost,
    Stop::AfterDelivery,
    Stop::SettlementLost,
    Stop::SettlementReplyLost,
];

/// Runs the saga with the driver stopping at `stop`; returns the outcome the driver saw.
async fn run_until(bank: &Bank, transfer: &Saga, stop: Stop) -> SagaOutcome {
    let (source, destination) = (bank.port(1), bank.port(2));
    match stop {
        Stop::ReservationLost => source.fail_next(Fault::Unavailable),
        Stop::ReservationReplyLost => source.fail_next(Fault::ReplyLost),
        Stop::DeliveryLost => destination.fail_next(Fault::Unavailable),
        Stop::DeliveryReplyLost => destination.fail_next(Fault::ReplyLost),
        Stop::SettlementLost => source.schedule([None, Some(Fault::Unavailable)]),
        Stop::SettlementReplyLost => source.schedule([None, Some(Fault::ReplyLost)]),
        Stop::AfterReservation => {
            assert_eq!(
                reserve(source, transfer).await.unwrap(),
                Reservation::Reserved
            );
            return SagaOutcome::InFlight {
                delivery: None,
                error: PortError::unavailable("the driver stopped"),
            };
        }
        Stop::AfterDelivery => {
            assert_eq!(
                reserve(source, transfer).await.unwrap(),
                Reservation::Reserved
            );
            let delivery = deliver(destination, transfer).await.unwrap();
            return SagaOutcome::InFlight {
                delivery: Some(delivery),
                error: PortError::unavailable("the driver stopped"),
            };
        }
    }
    start(source, destination, transfer).await
}

#[tokio::test]
async fn a_crash_or_a_lost_message_at_any_point_is_finished_by_resume() {
    for refused in [false, true] {
        for stop in STOPS {
            let (bank, alice, bob) = two_branches();
            let to = if refused {
                bank.customer_id(2, 4_242)
            } else {
                bob
            };
            let transfer = saga(11, alice, to, 2_500);
            let seen = run_until(&bank, &transfer, stop).await;
            assert!(!seen.is_final(), "{stop:?}: {seen:?}");
            bank.heal();
            bank.resume_all().await;
            if matches!(stop, Stop::ReservationLost) {
                // Nothing was reserved: the saga does not exist; the customer's retry
                // starts it.
                assert_eq!(status(&bank, 1, 11).await, "not_found", "{stop:?}");
                let retry = start(bank.port(1), bank.port(2), &transfer).await;
                assert!(retry.is_final(), "{stop:?}: {retry:?}");
            }
            let expected = if refused { "voided" } else { "posted" };
            assert_eq!(status(&bank, 1, 11).await, expected, "{stop:?}");
            assert_eq!(
                bank.balance(alice),
                if refused { 100_000 } else { 97_500 },
                "{stop:?}"
            );
            if !refused {
                assert_eq!(bank.balance(bob), 2_500, "{stop:?}");
            }
            // Resuming again, or the customer retrying, changes nothing.
            let again = bank.resume_all().await;
            assert!(again.iter().all(|r| r.outcomes.is_empty()), "{stop:?}");
            assert!(
                start(bank.port(1), bank.port(2), &transfer)
                    .await
                    .is_final()
            );
            assert_eq!(status(&bank, 1, 11).await, expected, "{stop:?}");
            let report = bank.reconcile().await;
            assert!(report.is_clean(), "{stop:?}\n{report}");
            bank.check_ledgers();
        }
    }
}

#[tokio::test]
async fn duplicate_deliveries_and_settlements_apply_once() {
    let (bank, alice, bob) = two_branches();
    let transfer = saga(12, alice, bob, 1_000);
    assert_eq!(
        reserve(bank.port(1), &transfer).await.unwrap(),
        Reservation::Reserved
    );
    assert_eq!(
        reserve(bank.port(1), &transfer).await.unwrap(),
        Reservation::AlreadyReserved
    );
    for _ in 0..3 {
        assert_eq!(
            deliver(bank.port(2), &transfer).await.unwrap(),
            Delivery::Delivered
        );
    }
    assert_eq!(bank.balance(bob), 1_000);
    for _ in 0..2 {
        assert_eq!(
            settle(bank.port(1), &transfer, Delivery::Delivered).await,
            SagaOutcome::Posted
        );
    }
    // A stale delivery arriving after the end is still `exists`.
    assert_eq!(
        deliver(bank.port(2), &transfer).await.unwrap(),
        Delivery::Delivered
    );
    assert_eq!(bank.balance(bob), 1_000);
    assert_eq!(bank.balance(alice), 99_000);
    assert!(bank.reconcile().await.is_clean());
}

/// The known window: a delayed copy of step 2 reaches B after A voided. B's ledger
/// decided the id when it refused, so the late copy cannot credit anyone.
#[tokio::test]
async fn a_delayed_delivery_after_a_void_is_refused_by_the_burnt_id() {
    let (bank, alice, _) = two_branches();
    let carol = bank.customer_id(2, 1_001);
    let transfer = saga(13, alice, carol, 4_000);
    assert!(matches!(
        start(bank.port(1), bank.port(2), &transfer).await,
        SagaOutcome::Voided {
            refusal: Some(R::CreditAccountNotFound)
        }
    ));
    // Carol opens her account; then the delayed copy arrives.
    let carol = bank.open(2, 1_001, EUR, 0);
    assert_eq!(carol, transfer.credit_account_id());
    assert_eq!(
        deliver(bank.port(2), &transfer).await.unwrap(),
        Delivery::Refused(R::IdAlreadyFailed)
    );
    assert_eq!(bank.balance(carol), 0);
    assert_eq!(bank.balance(alice), 100_000);
    assert!(bank.reconcile().await.is_clean());
}

#[tokio::test]
async fn transfers_in_both_directions_net_out_in_the_clearing_accounts() {
    let bank = Bank::new(&[1, 2]);
    let alice = bank.open(1, 1_000, EUR, 50_000);
    let bob = bank.open(2, 1_000, EUR, 50_000);
    let there = saga(21, alice, bob, 7_000);
    let back = saga(22, bob, alice, 3_000);
    // Both in flight at once: each destination is down for the other's delivery.
    bank.port(2).fail_next(Fault::Unavailable);
    assert!(matches!(
        start(bank.port(1), bank.port(2), &there).await,
        SagaOutcome::InFlight { .. }
    ));
    bank.port(1).fail_next(Fault::Unavailable);
    assert!(matches!(
        start(bank.port(2), bank.port(1), &back).await,
        SagaOutcome::InFlight { .. }
    ));
    let mid = bank.reconcile().await;
    assert!(mid.is_clean(), "{mid}");
    assert_eq!(mid.open_sagas.len(), 2);
    bank.resume_all().await;
    assert_eq!(bank.balance(alice), 50_000 - 7_000 + 3_000);
    assert_eq!(bank.balance(bob), 50_000 + 7_000 - 3_000);
    let ours = bank.account(clearing_account_id(code(1), code(2), EUR));
    let theirs = bank.account(clearing_account_id(code(2), code(1), EUR));
    assert_eq!((ours.credits_posted, ours.debits_posted), (7_000, 3_000));
    assert_eq!(
        (theirs.credits_posted, theirs.debits_posted),
        (3_000, 7_000)
    );
    let report = bank.reconcile().await;
    assert!(report.is_clean(), "{report}");
    let flows: Vec<_> = report.flows.iter().filter(|f| f.sent > 0).collect();
    assert_eq!(flows.len(), 2);
    assert!(flows.iter().all(|f| f.ok && f.sent == f.received));
}

#[tokio::test]
async fn money_is_conserved_per_currency_across_the_bank() {
    let bank = Bank::new(&[1, 2, 3]);
    let mut customers = Vec::new();
    for branch in [1, 2, 3] {
        customers.push((bank.open(branch, 1_000, EUR, 10_000), EUR));
        customers.push((
            bank.open(branch, 1_001, Currency::JPY, 5_000),
            Currency::JPY,
        ));
    }
    let mut id = 100;
    for (from, from_currency) in &customers {
        for (to, to_currency) in &customers {
            let (f, t) = (
                corebank_account_number::branch_of_account_id(*from).unwrap(),
                corebank_account_number::branch_of_account_id(*to).unwrap(),
            );
            if f == t || from_currency != to_currency {
                continue;
            }
            id += 1;
            let transfer = Saga::new(id, *from, *to, 700, *from_currency).unwrap();
            let (source, destination) = (bank.port(f.get()), bank.port(t.get()));
            assert_eq!(
                start(source, destination, &transfer).await,
                SagaOutcome::Posted
            );
        }
    }
    // A JPY saga into a EUR account is refused by the destination and voided.
    let mismatch = Saga::new(999, customers[1].0, customers[2].0, 100, Currency::JPY).unwrap();
    assert!(matches!(
        start(bank.port(1), bank.port(2), &mismatch).await,
        SagaOutcome::Voided {
            refusal: Some(R::AccountsMustHaveTheSameLedger)
        }
    ));
    for currency in [EUR, Currency::JPY] {
        let total: u128 = customers
            .iter()
            .filter(|(_, c)| *c == currency)
            .map(|(id, _)| bank.balance(*id))
            .sum();
        let initial = if currency == EUR { 30_000 } else { 15_000 };
        assert_eq!(total, initial, "{}", currency.alpha);
    }
    let report = bank.reconcile().await;
    assert!(report.is_clean(), "{report}");
    assert!(report.currencies.iter().all(|c| c.ok));
    bank.check_ledgers();
}

#[tokio::test]
async fn reconciliation_finds_a_delivery_without_its_reservation() {
    let (bank, alice, bob) = two_branches();
    assert_eq!(
        start(bank.port(1), bank.port(2), &saga(30, alice, bob, 1_000)).await,
        SagaOutcome::Posted
    );
    // Someone posts a delivery at B that A never reserved.
    let forged = saga(31, alice, bob, 2_000);
    assert!(bank.port(2).apply(&[forged.delivery()]).is_empty());
    let report = bank.reconcile().await;
    assert!(!report.is_clean());
    let codes: Vec<BreakCode> = report.breaks.iter().map(|b| b.code).collect();
    assert_eq!(
        codes,
        [
            BreakCode::ClearingMirrorMismatch,
            BreakCode::DeliveryWithoutReservation
        ],
        "{report}"
    );
    let mirror = report
        .breaks_of(BreakCode::ClearingMirrorMismatch)
        .next()
        .unwrap();
    assert_eq!(mirror.branch.as_deref(), Some("0001"));
    assert_eq!(mirror.counterparty.as_deref(), Some("0002"));
    assert!(mirror.message.contains("+20.00 EUR"), "{}", mirror.message);
    let forged_break = report
        .breaks_of(BreakCode::DeliveryWithoutReservation)
        .next()
        .unwrap();
    assert_eq!(forged_break.saga_id, Some(31));
    let text = report.to_string();
    assert!(
        text.contains("BREAK") && text.contains("delivery_without_reservation"),
        "{text}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["breaks"][1]["code"], "delivery_without_reservation");
    assert_eq!(json["breaks"][1]["saga_id"], "31");
    assert_eq!(json["flows"][0]["sent"], "1000");
}

#[tokio::test]
async fn reconciliation_finds_a_plain_transfer_that_breaks_the_mirror() {
    let (bank, _, bob) = two_branches();
    // Money moved out of B's clearing account for A by an ordinary payment.
    let clearing = clearing_account_id(code(2), code(1), EUR);
    let payment = Transfer {
        id: 77,
        debit_account_id: clearing,
        credit_account_id: bob,
        amount: 500,
        ledger: EUR.numeric,
        code: transfer_code::PAYMENT,
        ..Transfer::default()
    };
    assert!(bank.port(2).apply(&[payment]).is_empty());
    let report = bank.reconcile().await;
    let codes: Vec<BreakCode> = report.breaks.iter().map(|b| b.code).collect();
    assert_eq!(codes, [BreakCode::ClearingMirrorMismatch], "{report}");
}

#[tokio::test]
async fn reconciliation_finds_a_stuck_saga_and_counts_delivered_ones_exactly() {
    let (bank, alice, bob) = two_branches();
    // One saga delivered but not posted (the driver stopped after step 2).
    let delivered = saga(40, alice, bob, 1_500);
    reserve(bank.port(1), &delivered).await.unwrap();
    deliver(bank.port(2), &delivered).await.unwrap();
    // One saga whose destination is unreachable.
    bank.port(2).take_down(Fault::Unavailable);
    let waiting = saga(41, alice, bob, 2_500);
    let outcome = start(bank.port(1), bank.port(2), &waiting).await;
    assert!(matches!(
        outcome,
        SagaOutcome::InFlight { delivery: None, .. }
    ));
    bank.heal();

    let young = bank.reconcile().await;
    assert!(young.is_clean(), "{young}");
    let flow = young
        .flows
        .iter()
        .find(|f| f.from == "0001" && f.currency == "EUR")
        .unwrap();
    assert_eq!(
        (
            flow.sent,
            flow.in_flight,
            flow.delivered_in_flight,
            flow.received
        ),
        (0, 4_000, 1_500, 1_500)
    );

    bank.clock.advance_ns(TIMEOUT_NS + S);
    let old = bank.reconcile().await;
    let stuck: Vec<u128> = old
        .breaks_of(BreakCode::SagaStuck)
        .map(|b| b.saga_id.unwrap())
        .collect();
    assert_eq!(stuck, [40, 41], "{old}");
    assert_eq!(old.breaks.len(), 2, "{old}");
    assert!(old.open_sagas.iter().all(|s| s.overdue));
    assert!(old.to_string().contains("OVERDUE"));

    bank.heal();
    bank.resume_all().await;
    assert!(bank.reconcile().await.is_clean());
    assert_eq!(bank.balance(bob), 4_000);
}

#[tokio::test]
async fn a_fence_decides_a_saga_the_destination_will_not_answer() {
    let (bank, alice, bob) = two_branches();
    let transfer = saga(50, alice, bob, 3_000);
    // B's front refuses the delivery without its ledger deciding (say, a risk hold).
    bank.port(2).fail_next(Fault::Rejected);
    let outcome = start(bank.port(1), bank.port(2), &transfer).await;
    assert!(
        matches!(
            outcome,
            SagaOutcome::InFlight {
                error: PortError::Rejected { .. },
                ..
            }
        ),
        "{outcome:?}"
    );
    // Not overdue yet: resume only delivers (and B now refuses again).
    let options = ResumeOptions {
        now_ns: bank.clock.now_ns(),
        fence_after_ns: Some(TIMEOUT_NS),
        ..ResumeOptions::default()
    };
    bank.port(2).fail_next(Fault::Rejected);
    let report = resume(bank.port(1), bank.route(), &options).await.unwrap();
    assert_eq!(report.unfinished(), 1);
    // Overdue: the fence burns the id at B and A voids.
    bank.clock.advance_ns(TIMEOUT_NS + S);
    let options = ResumeOptions {
        now_ns: bank.clock.now_ns(),
        ..options
    };
    let report = resume(bank.port(1), bank.route(), &options).await.unwrap();
    assert_eq!(
        report.outcomes[0].1,
        SagaOutcome::Voided {
            refusal: Some(R::PendingTransferNotFound)
        }
    );
    assert_eq!(bank.balance(alice), 100_000);
    // The delivery can never land afterwards.
    assert_eq!(
        deliver(bank.port(2), &transfer).await.unwrap(),
        Delivery::Refused(R::IdAlreadyFailed)
    );
    assert_eq!(bank.balance(bob), 0);
    assert!(bank.reconcile().await.is_clean());

    // A fence that comes after the delivery finds it, and the saga is posted.
    let late = saga(51, alice, bob, 1_000);
    reserve(bank.port(1), &late).await.unwrap();
    deliver(bank.port(2), &late).await.unwrap();
    assert_eq!(
        fence(bank.port(2), &late).await.unwrap(),
        Delivery::Delivered
    );
    assert_eq!(
        fence(bank.port(2), &late).await.unwrap(),
        Delivery::Delivered
    );
    assert_eq!(
        settle(bank.port(1), &late, Delivery::Delivered).await,
        SagaOutcome::Posted
    );
    assert_eq!(bank.balance(bob), 1_000);
    assert!(bank.reconcile().await.is_clean());
}

#[tokio::test]
async fn a_post_refused_because_the_payer_closed_is_retried_under_the_next_id() {
    let (bank, alice, bob) = two_branches();
    let transfer = saga(60, alice, bob, 1_000);
    reserve(bank.port(1), &transfer).await.unwrap();
    assert_eq!(
        deliver(bank.port(2), &transfer).await.unwrap(),
        Delivery::Delivered
    );
    // Alice's account is closed (a pending closing transfer) before step 3.
    let closing = Transfer {
        id: 61,
        debit_account_id: alice,
        credit_account_id: bank.cash_id(1, EUR),
        amount: 1,
        ledger: EUR.numeric,
        code: transfer_code::WITHDRAWAL,
        flags: TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT,
        ..Transfer::default()
    };
    assert!(bank.port(1).apply(&[closing]).is_empty());
    assert_eq!(
        settle(bank.port(1), &transfer, Delivery::Delivered).await,
        SagaOutcome::Stuck {
            delivery: Delivery::Delivered,
            result: R::DebitAccountAlreadyClosed
        }
    );
    // Still closed: resume burns the next id too, and says so.
    let report = bank.resume_all().await;
    assert!(matches!(report[0].outcomes[0].1, SagaOutcome::Stuck { .. }));
    assert_eq!(status(&bank, 1, 60).await, "pending");
    // Reopened: the next attempt posts.
    let reopen = Transfer {
        id: 62,
        pending_id: 61,
        flags: TransferFlags::VOID_PENDING_TRANSFER,
        ..Transfer::default()
    };
    assert!(bank.port(1).apply(&[reopen]).is_empty());
    let report = bank.resume_all().await;
    assert_eq!(report[0].outcomes[0].1, SagaOutcome::Posted);
    assert!(bank.transfer(1, post_id(60, 2)).is_some());
    const { assert!(POST_ATTEMPTS_MAX > 2) };
    assert_eq!(status(&bank, 1, 60).await, "posted");
    assert_eq!(bank.balance(alice), 99_000);
    assert!(bank.reconcile().await.is_clean());
}

#[tokio::test]
async fn resume_reports_where_the_next_scan_may_start() {
    let (bank, alice, bob) = two_branches();
    assert_eq!(
        start(bank.port(1), bank.port(2), &saga(70, alice, bob, 100)).await,
        SagaOutcome::Posted
    );
    bank.port(2).take_down(Fault::Unavailable);
    start(bank.port(1), bank.port(2), &saga(71, alice, bob, 100)).await;
    let pending_at = bank.transfer(1, 71).unwrap().timestamp;
    let first = resume(bank.port(1), bank.route(), &ResumeOptions::default())
        .await
        .unwrap();
    assert_eq!((first.finished(), first.unfinished()), (0, 1));
    assert_eq!(first.next_timestamp_min, pending_at);
    bank.heal();
    let options = ResumeOptions {
        timestamp_min: first.next_timestamp_min,
        ..ResumeOptions::default()
    };
    let second = resume(bank.port(1), bank.route(), &options).await.unwrap();
    assert_eq!((second.finished(), second.unfinished()), (1, 0));
    assert!(second.next_timestamp_min > pending_at);
    let options = ResumeOptions {
        timestamp_min: second.next_timestamp_min,
        ..ResumeOptions::default()
    };
    let third = resume(bank.port(1), bank.route(), &options).await.unwrap();
    assert!(third.outcomes.is_empty());
    // An unreachable source is an error, not an empty report.
    bank.port(1).take_down(Fault::Unavailable);
    assert!(resume(bank.port(1), bank.route(), &options).await.is_err());
}

#[tokio::test]
async fn resume_leaves_foreign_pending_transfers_alone_and_reconciliation_names_them() {
    let (bank, alice, bob) = two_branches();
    let mut odd = saga(80, alice, bob, 100).reservation();
    odd.user_data_64 = 0;
    assert!(bank.port(1).apply(&[odd]).is_empty());
    let report = resume(bank.port(1), bank.route(), &ResumeOptions::default())
        .await
        .unwrap();
    assert_eq!(report.malformed, [80]);
    assert!(report.outcomes.is_empty());
    assert_eq!(status(&bank, 1, 80).await, "not_a_saga");
    assert_eq!(bank.port(2).calls(), 0);
    let reconciliation = bank.reconcile().await;
    let codes: Vec<BreakCode> = reconciliation.breaks.iter().map(|b| b.code).collect();
    // The foreign transfer also leaves A's pending credits unexplained by sagas.
    assert_eq!(
        codes,
        [
            BreakCode::MalformedReservation,
            BreakCode::ClearingPendingMismatch
        ],
        "{reconciliation}"
    );
}

#[tokio::test]
async fn a_status_read_through_an_unavailable_source_is_an_error() {
    let (bank, _, _) = two_branches();
    bank.port(1).fail_next(Fault::Unavailable);
    assert!(saga_status(bank.port(1), 5).await.is_err());
    assert_eq!(
        saga_status(bank.port(1), 5).await.unwrap(),
        SagaStatus::NotFound
    );
    assert_eq!(bank.port(1).branch(), code(1));
}

/// The driver's futures can be spawned on a multi-threaded runtime.
#[test]
fn the_driver_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let (bank, alice, bob) = two_branches();
    let transfer = saga(90, alice, bob, 1);
    let (a, b) = (bank.port(1), bank.port(2));
    send(&start(a, b, &transfer));
    send(&saga_status(a, 90));
    let route = |code: corebank_account_number::BranchCode| (code == b.branch()).then_some(b);
    send(&resume(a, route, &ResumeOptions::default()));
    let ports = [a, b];
    let options = corebank_clearing::GatherOptions::at(0);
    send(&corebank_clearing::gather(&ports, &options));
}
