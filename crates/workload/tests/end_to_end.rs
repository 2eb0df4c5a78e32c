//! Drives a real ledger with the workload: invariants hold, money is conserved per
//! currency, most events succeed, and holds are captured, released and expired.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use corebank_ledger::{CreateTransferResult, Ledger, NS_PER_S, PendingStatus, TransferFlags};
use corebank_workload::{EventKind, ResultTally, Workload, WorkloadConfig};

struct Run {
    ledger: Ledger,
    workload: Workload,
    tally: ResultTally,
    expired: usize,
}

/// Applies `batches` batches of `size` events, with the ledger's clock advancing
/// `step_ns` per batch and due holds expired after every batch.
fn run(config: WorkloadConfig, batches: usize, size: usize, step_ns: u64) -> Run {
    let mut workload = Workload::new(config).unwrap();
    let mut ledger = Ledger::new();
    let mut clock = NS_PER_S;
    for accounts in workload.setup_batches() {
        let results = ledger.create_accounts(clock, &accounts).unwrap();
        assert!(results.is_empty(), "{results:?}");
        clock = ledger.last_timestamp() + 1;
    }
    let mut tally = ResultTally::new();
    let mut expired = 0;
    for i in 0..batches {
        clock += step_ns;
        let batch = workload.next_batch(size);
        let now = clock.max(ledger.last_timestamp() + 1);
        let results = ledger.create_transfers(now, &batch).unwrap();
        workload.observe(&results);
        tally.record(batch.len(), &results);
        let now = clock.max(ledger.last_timestamp() + 1);
        if ledger.next_expiry().is_some_and(|at| at <= now) {
            expired += ledger.expire_pending_transfers(now, 8_190).unwrap();
        }
        if i % 50 == 0 {
            ledger.check_invariants().unwrap();
        }
    }
    Run {
        ledger,
        workload,
        tally,
        expired,
    }
}

#[test]
fn a_few_hundred_batches_keep_the_books_balanced() {
    let config = WorkloadConfig {
        seed: 2024,
        branches: 3,
        customers_per_branch: 200,
        ..WorkloadConfig::default()
    };
    let Run {
        ledger,
        workload,
        tally,
        expired,
    } = run(config, 400, 500, NS_PER_S / 20);

    ledger.check_invariants().unwrap();
    let totals = ledger.totals_by_ledger();
    assert_eq!(
        totals.keys().copied().collect::<Vec<_>>(),
        vec![826, 840, 978]
    );
    for (ledger_id, t) in &totals {
        assert_eq!(t.debits_posted, t.credits_posted, "ledger {ledger_id}");
        assert_eq!(t.debits_pending, t.credits_pending, "ledger {ledger_id}");
        assert!(t.debits_posted > 0);
    }

    // Most events succeed; the failures are the deliberate kinds.
    assert_eq!(tally.events(), 200_000);
    assert!(tally.created() * 100 > tally.events() * 80, "{tally:?}");
    assert!(tally.count(CreateTransferResult::ExceedsCredits) > 0);
    assert!(tally.count(CreateTransferResult::Exists) > 0);
    assert!(tally.count(CreateTransferResult::IdAlreadyFailed) > 0);
    assert!(tally.count(CreateTransferResult::LinkedEventFailed) > 0);
    let deliberate = [
        CreateTransferResult::ExceedsCredits,
        CreateTransferResult::Exists,
        CreateTransferResult::IdAlreadyFailed,
        CreateTransferResult::LinkedEventFailed,
    ];
    let accidental: u64 = tally
        .by_frequency()
        .iter()
        .filter(|(r, _)| !deliberate.contains(r))
        .map(|(_, n)| n)
        .sum();
    assert!(accidental * 1_000 < tally.events(), "{:?}", tally.by_name());

    // Every kind happened and mostly succeeded (resubmissions fail by design).
    for (kind, stats) in workload.kind_stats() {
        assert!(stats.sent > 0, "{kind:?}");
        if kind != EventKind::Resubmission {
            assert!(
                stats.succeeded() * 10 > stats.sent * 8,
                "{kind:?} {stats:?}"
            );
        }
    }
    let failed_by_kind: u64 = workload.kind_stats().map(|(_, s)| s.failed).sum();
    assert_eq!(failed_by_kind, tally.failed());

    // Holds: posted in full and in part, voided, expired.
    let mut posted_full = 0u64;
    let mut posted_partial = 0u64;
    let mut voided = 0u64;
    for transfer in ledger.transfers() {
        if transfer
            .flags
            .contains(TransferFlags::POST_PENDING_TRANSFER)
        {
            let pending = ledger.transfer(transfer.pending_id).unwrap();
            if transfer.amount == pending.amount {
                posted_full += 1;
            } else {
                assert!(transfer.amount < pending.amount);
                posted_partial += 1;
            }
        }
        if transfer
            .flags
            .contains(TransferFlags::VOID_PENDING_TRANSFER)
        {
            voided += 1;
        }
    }
    let expired_status = ledger
        .transfers()
        .iter()
        .filter(|t| ledger.pending_status(t.id) == Some(PendingStatus::Expired))
        .count();
    assert!(
        posted_full > 100 && posted_partial > 10 && voided > 10,
        "{posted_full} {posted_partial} {voided}"
    );
    assert!(expired > 10);
    assert_eq!(expired, expired_status);

    // The generator's own counts agree with the ledger.
    let ok = |kind| workload.stats_of(kind).succeeded();
    assert_eq!(ok(EventKind::HoldCapture), posted_full);
    assert_eq!(ok(EventKind::HoldPartialCapture), posted_partial);
    assert_eq!(ok(EventKind::HoldRelease), voided);
    let resolved = posted_full + posted_partial + voided + expired as u64;
    assert_eq!(
        ok(EventKind::CardHold) - resolved,
        ledger.stats().pending_transfers as u64
    );

    // The generator never believes a customer has more than the ledger says.
    for account in ledger.accounts() {
        if let Some(expected) = workload.expected_available(account.id) {
            assert!(
                expected <= account.available_credit_balance(),
                "{account:?} expected {expected}"
            );
        }
    }
}

#[test]
fn same_seed_same_ledger_state() {
    let config = WorkloadConfig {
        seed: 99,
        branches: 2,
        customers_per_branch: 100,
        ..WorkloadConfig::default()
    };
    let a = run(config.clone(), 60, 400, NS_PER_S / 10);
    let b = run(config, 60, 400, NS_PER_S / 10);
    assert_eq!(a.ledger.digest(), b.ledger.digest());
    assert_eq!(a.tally, b.tally);
}

#[test]
fn large_batches_and_many_branches() {
    let config = WorkloadConfig {
        seed: 5,
        branches: 12,
        customers_per_branch: 1_000,
        ..WorkloadConfig::default()
    };
    let Run { ledger, tally, .. } = run(config, 30, 8_190, NS_PER_S);
    ledger.check_invariants().unwrap();
    assert!(tally.created() * 2 > tally.events());
    assert!(ledger.totals_by_ledger().values().all(|t| t.is_conserved()));
}
