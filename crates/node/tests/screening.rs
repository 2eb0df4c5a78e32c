//! Screening in a real replica: the leader's verdicts travel in the log and the risk
//! state (held transfers, declines, freezes) is applied, kept across restarts and
//! snapshots, and reviewed through the log. A scripted screener decides by amount so
//! that each test knows the verdict in advance.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use corebank_ledger::{Account, AccountFlags, CreateTransferResult, Transfer, TransferFlags};
use corebank_node::{
    FailurePolicy, Node, NodeConfig, Request, RequestOutcome, RiskAction, RiskEventKind,
    RiskRefusal, Screening,
};
use corebank_screening::{
    Assessment, Candidate, ReasonCode, ScreenError, Screener, TransferContext, Verdict,
};

const EUR: u32 = 978;
const HOLD_AMOUNT: u128 = 7_000;
const DECLINE_AMOUNT: u128 = 9_000;
const FREEZE_AMOUNT: u128 = 6_666;

/// Holds 7,000, declines 9,000, freezes the payer on 6,666 (and declines it); fails
/// every batch while `broken` is set; counts what committed.
#[derive(Debug, Default)]
struct Scripted {
    broken: AtomicBool,
    committed: AtomicUsize,
    screened: AtomicUsize,
}

impl Screener for Scripted {
    fn screen(&self, batch: &[Candidate], out: &mut Vec<Assessment>) -> Result<(), ScreenError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(ScreenError::ModelMissing("scripted failure".into()));
        }
        self.screened.fetch_add(batch.len(), Ordering::SeqCst);
        for candidate in batch {
            let reasons = [
                ReasonCode::AMOUNT_UNUSUAL,
                ReasonCode::NONE,
                ReasonCode::NONE,
            ];
            out.push(match candidate.amount {
                HOLD_AMOUNT => Assessment {
                    verdict: Verdict::Hold,
                    score: 700,
                    reasons,
                    freeze_debit_account: false,
                },
                DECLINE_AMOUNT => Assessment {
                    verdict: Verdict::Decline,
                    score: 950,
                    reasons,
                    freeze_debit_account: false,
                },
                FREEZE_AMOUNT => Assessment {
                    verdict: Verdict::Decline,
                    score: 990,
                    reasons,
                    freeze_debit_account: true,
                },
                _ => Assessment::approve(),
            });
        }
        Ok(())
    }

    fn committed(&self, batch: &[Candidate]) {
        self.committed.fetch_add(batch.len(), Ordering::SeqCst);
    }
}

fn config(dir: &std::path::Path, screener: Arc<Scripted>, policy: FailurePolicy) -> NodeConfig {
    NodeConfig {
        sweep_interval: Duration::from_millis(20),
        snapshot_every_entries: 10_000,
        screening: Some(Screening {
            screener,
            on_failure: policy,
        }),
        ..NodeConfig::new(dir)
    }
}

fn transfer(id: u128, debit: u128, credit: u128, amount: u128) -> Transfer {
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: EUR,
        code: 1,
        ..Default::default()
    }
}

/// Cash (1) and customers 2..=4, each customer funded with 100,000.
async fn seeded(node: &Node) {
    let mut accounts = vec![Account {
        id: 1,
        ledger: EUR,
        code: 1,
        ..Default::default()
    }];
    for id in 2..=4 {
        accounts.push(Account {
            id,
            ledger: EUR,
            code: 10,
            flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
            ..Default::default()
        });
    }
    node.submit(Request::CreateAccounts(accounts))
        .await
        .unwrap();
    let deposits = (2..=4)
        .map(|id| transfer(100 + id, 1, id, 100_000))
        .collect();
    node.submit(Request::CreateTransfers(deposits))
        .await
        .unwrap();
}

async fn screened(
    node: &Node,
    events: Vec<Transfer>,
) -> (Vec<(u32, CreateTransferResult)>, Vec<(u32, Verdict)>) {
    match node
        .submit(Request::screened(events, Vec::new()))
        .await
        .unwrap()
    {
        RequestOutcome::Screened {
            results, decisions, ..
        } => (
            results.into_iter().map(|r| (r.index, r.result)).collect(),
            decisions
                .into_iter()
                .map(|d| (d.index, d.assessment.verdict))
                .collect(),
        ),
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn balance(node: &Node, id: u128) -> (u128, u128, u128) {
    node.read_local(|ledger| {
        let a = ledger.account(id).unwrap();
        (a.credits_posted, a.debits_posted, a.debits_pending)
    })
    .unwrap()
}

async fn review(
    node: &Node,
    id: u128,
    held: u128,
    post: bool,
) -> Result<Vec<(u32, CreateTransferResult)>, RiskRefusal> {
    let event = Transfer {
        id,
        pending_id: held,
        flags: if post {
            TransferFlags::POST_PENDING_TRANSFER
        } else {
            TransferFlags::VOID_PENDING_TRANSFER
        },
        ..Default::default()
    };
    match node
        .submit(Request::Risk(RiskAction::Review {
            event,
            note: "checked with the customer".into(),
        }))
        .await
        .unwrap()
    {
        RequestOutcome::Risk { outcome, .. } => {
            outcome.map(|r| r.into_iter().map(|r| (r.index, r.result)).collect())
        }
        other => panic!("unexpected outcome {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_transfer_waits_for_review_and_moves_money_once() {
    let dir = tempfile::tempdir().unwrap();
    let screener = Arc::new(Scripted::default());
    let node = Node::start(config(
        dir.path(),
        Arc::clone(&screener),
        FailurePolicy::Open,
    ))
    .await
    .unwrap();
    seeded(&node).await;

    let (results, decisions) = screened(&node, vec![transfer(1_000, 2, 3, HOLD_AMOUNT)]).await;
    assert!(
        results.is_empty(),
        "a held transfer is created: {results:?}"
    );
    assert_eq!(decisions, vec![(0, Verdict::Hold)]);
    // Reserved, not moved.
    assert_eq!(balance(&node, 2), (100_000, 0, HOLD_AMOUNT));
    assert_eq!(balance(&node, 3), (100_000, 0, 0));
    let held: Vec<u128> = node
        .read_risk(|_, risk| risk.held().map(|h| h.transfer_id).collect())
        .await
        .unwrap();
    assert_eq!(held, vec![1_000]);

    // A retry with the same id answers `exists`, and holds nothing twice.
    let (results, _) = screened(&node, vec![transfer(1_000, 2, 3, HOLD_AMOUNT)]).await;
    assert_eq!(results, vec![(0, CreateTransferResult::Exists)]);
    // The customer (or anyone outside a review) cannot post it.
    let mut post = transfer(1_001, 0, 0, 0);
    post.pending_id = 1_000;
    post.ledger = 0;
    post.code = 0;
    post.flags = TransferFlags::POST_PENDING_TRANSFER;
    let (results, _) = screened(&node, vec![post]).await;
    assert_eq!(
        results,
        vec![(0, CreateTransferResult::PendingTransferHeldForReview)]
    );
    assert_eq!(balance(&node, 3), (100_000, 0, 0));

    // The analyst releases it: the money moves exactly once.
    assert_eq!(review(&node, 1_002, 1_000, true).await, Ok(vec![]));
    assert_eq!(balance(&node, 2), (100_000, HOLD_AMOUNT, 0));
    assert_eq!(balance(&node, 3), (100_000 + HOLD_AMOUNT, 0, 0));
    assert_eq!(
        review(&node, 1_003, 1_000, true).await,
        Err(RiskRefusal::NotHeld)
    );
    assert_eq!(
        review(&node, 1_003, 1_000, false).await,
        Err(RiskRefusal::NotHeld)
    );
    assert_eq!(balance(&node, 3), (100_000 + HOLD_AMOUNT, 0, 0));

    // A second hold, rejected: the funds come back.
    screened(&node, vec![transfer(2_000, 2, 4, HOLD_AMOUNT)]).await;
    assert_eq!(review(&node, 2_001, 2_000, false).await, Ok(vec![]));
    assert_eq!(balance(&node, 2), (100_000, HOLD_AMOUNT, 0));
    assert_eq!(balance(&node, 4), (100_000, 0, 0));

    let kinds: Vec<RiskEventKind> = node
        .read_risk(|_, risk| {
            risk.events_from(1, 100)
                .into_iter()
                .map(|e| e.kind)
                .collect()
        })
        .await
        .unwrap();
    assert_eq!(
        kinds,
        vec![
            RiskEventKind::Held,
            RiskEventKind::Released,
            RiskEventKind::Held,
            RiskEventKind::Rejected
        ]
    );
    node.read_local(|ledger| ledger.check_invariants())
        .unwrap()
        .unwrap();

    // The risk state survives a restart from the log and from a snapshot.
    screened(&node, vec![transfer(3_000, 3, 4, HOLD_AMOUNT)]).await;
    let (_, digest_before) = node.state_digest().unwrap();
    node.snapshot().await.unwrap();
    screened(&node, vec![transfer(3_001, 3, 4, DECLINE_AMOUNT)]).await;
    let (_, digest_declined) = node.state_digest().unwrap();
    assert_ne!(
        digest_before, digest_declined,
        "the risk state is in the digest"
    );
    node.shutdown().await;
    let node = Node::start(config(
        dir.path(),
        Arc::new(Scripted::default()),
        FailurePolicy::Open,
    ))
    .await
    .unwrap();
    assert_eq!(node.state_digest().unwrap().1, digest_declined);
    let (held, declined) = node
        .read_risk(|_, risk| (risk.held().count(), risk.was_declined(3_001)))
        .await
        .unwrap();
    assert_eq!((held, declined), (1, true));
    assert_eq!(review(&node, 3_002, 3_000, true).await, Ok(vec![]));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_changes_nothing_and_stays_declined() {
    let dir = tempfile::tempdir().unwrap();
    let screener = Arc::new(Scripted::default());
    let node = Node::start(config(
        dir.path(),
        Arc::clone(&screener),
        FailurePolicy::Open,
    ))
    .await
    .unwrap();
    seeded(&node).await;
    let before = (balance(&node, 2), balance(&node, 3));
    let (results, decisions) = screened(
        &node,
        vec![transfer(10, 2, 3, DECLINE_AMOUNT), transfer(11, 2, 3, 10)],
    )
    .await;
    assert_eq!(results, vec![(0, CreateTransferResult::DeclinedByRisk)]);
    assert_eq!(decisions, vec![(0, Verdict::Decline)]);
    assert_eq!(balance(&node, 2), (100_000, 10, 0));
    assert_eq!(balance(&node, 3).0, before.1.0 + 10);
    // Declined again on retry, even if the screen would now approve it.
    let mut retry = transfer(10, 2, 3, DECLINE_AMOUNT);
    retry.user_data_64 = 0;
    screener.broken.store(true, Ordering::SeqCst);
    let (results, _) = screened(&node, vec![retry]).await;
    assert_eq!(results, vec![(0, CreateTransferResult::DeclinedByRisk)]);
    screener.broken.store(false, Ordering::SeqCst);
    // A declined transfer inside a linked chain fails the whole chain.
    let mut first = transfer(20, 2, 3, 50);
    first.flags = TransferFlags::LINKED;
    let (results, _) = screened(&node, vec![first, transfer(21, 2, 4, DECLINE_AMOUNT)]).await;
    assert_eq!(
        results,
        vec![
            (0, CreateTransferResult::LinkedEventFailed),
            (1, CreateTransferResult::DeclinedByRisk)
        ]
    );
    assert_eq!(balance(&node, 2), (100_000, 10, 0));
    node.read_local(|ledger| ledger.check_invariants())
        .unwrap()
        .unwrap();
    // Unscreened requests (the bank's own) are not screened.
    let seen = screener.screened.load(Ordering::SeqCst);
    node.submit(Request::CreateTransfers(vec![transfer(
        30,
        1,
        2,
        DECLINE_AMOUNT,
    )]))
    .await
    .unwrap();
    // Nor are transfers marked internal.
    let internal = TransferContext::INTERNAL;
    let outcome = node
        .submit(Request::screened(
            vec![transfer(31, 1, 2, DECLINE_AMOUNT)],
            vec![internal],
        ))
        .await
        .unwrap();
    assert!(
        matches!(outcome, RequestOutcome::Screened { ref results, .. } if results.is_empty()),
        "{outcome:?}"
    );
    assert_eq!(screener.screened.load(Ordering::SeqCst), seen);
    // What committed through screened requests reaches the screener's features (on
    // its own thread): 11 and 31; not the declined, not the failed chain.
    for _ in 0..200 {
        if screener.committed.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(screener.committed.load(Ordering::SeqCst), 2);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_account_refuses_debits_until_unfrozen() {
    let dir = tempfile::tempdir().unwrap();
    let screener = Arc::new(Scripted::default());
    let node = Node::start(config(
        dir.path(),
        Arc::clone(&screener),
        FailurePolicy::Open,
    ))
    .await
    .unwrap();
    seeded(&node).await;
    let (results, _) = screened(&node, vec![transfer(10, 2, 3, FREEZE_AMOUNT)]).await;
    assert_eq!(results, vec![(0, CreateTransferResult::DeclinedByRisk)]);
    assert!(node.read_risk(|_, risk| risk.is_frozen(2)).await.unwrap());
    // Debits refused, credits still arrive, other accounts unaffected.
    let (results, _) = screened(
        &node,
        vec![
            transfer(11, 2, 3, 5),
            transfer(12, 3, 2, 5),
            transfer(13, 4, 3, 5),
        ],
    )
    .await;
    assert_eq!(results, vec![(0, CreateTransferResult::DebitAccountFrozen)]);
    assert_eq!(balance(&node, 2), (100_005, 0, 0));
    // Unscreened requests are refused too: the freeze is in the state, not the screen.
    match node
        .submit(Request::CreateTransfers(vec![transfer(14, 2, 3, 5)]))
        .await
        .unwrap()
    {
        RequestOutcome::Transfers { results, .. } => assert!(results.is_empty()),
        other => panic!("{other:?}"),
    }
    // Manual actions: unfreeze, unfreeze again (refused), freeze an unknown account.
    let action = |action| Request::Risk(action);
    let outcome = node
        .submit(action(RiskAction::Unfreeze {
            account: 2,
            note: "customer verified".into(),
        }))
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        RequestOutcome::Risk { outcome: Ok(_), .. }
    ));
    let outcome = node
        .submit(action(RiskAction::Unfreeze {
            account: 2,
            note: String::new(),
        }))
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        RequestOutcome::Risk {
            outcome: Err(RiskRefusal::NotFrozen),
            ..
        }
    ));
    let outcome = node
        .submit(action(RiskAction::Freeze {
            account: 99,
            reason: ReasonCode::NONE,
            note: String::new(),
        }))
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        RequestOutcome::Risk {
            outcome: Err(RiskRefusal::AccountNotFound),
            ..
        }
    ));
    let (results, _) = screened(&node, vec![transfer(15, 2, 3, 5)]).await;
    assert!(results.is_empty());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_policy_decides_when_the_screen_fails() {
    for policy in [FailurePolicy::Open, FailurePolicy::Closed] {
        let dir = tempfile::tempdir().unwrap();
        let screener = Arc::new(Scripted::default());
        let node = Node::start(config(dir.path(), Arc::clone(&screener), policy))
            .await
            .unwrap();
        seeded(&node).await;
        screener.broken.store(true, Ordering::SeqCst);
        let (results, _) = screened(&node, vec![transfer(10, 2, 3, 100)]).await;
        match policy {
            FailurePolicy::Open => assert!(results.is_empty(), "{results:?}"),
            FailurePolicy::Closed => assert_eq!(
                results,
                vec![(0, CreateTransferResult::RiskCheckUnavailable)]
            ),
        }
        assert_eq!(node.screening_counters().failures.load(Ordering::SeqCst), 1);
        // Once the screen works again, the same id goes through (it was not burnt).
        screener.broken.store(false, Ordering::SeqCst);
        let (results, _) = screened(&node, vec![transfer(10, 2, 3, 100)]).await;
        match policy {
            FailurePolicy::Open => assert_eq!(results, vec![(0, CreateTransferResult::Exists)]),
            FailurePolicy::Closed => assert!(results.is_empty(), "{results:?}"),
        }
        assert_eq!(balance(&node, 2), (100_000, 100, 0));
        node.shutdown().await;
    }
}
