//! A real replica on a real data directory: writes survive restarts (log replay and
//! snapshot + replay), expiry goes through the log, damage is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use corebank_ledger::{Account, AccountFlags, CreateTransferResult, Transfer, TransferFlags};
use corebank_node::{Node, NodeConfig, NodeError, Request, RequestOutcome};

const EUR: u32 = 978;

fn config(dir: &std::path::Path) -> NodeConfig {
    NodeConfig {
        sweep_interval: Duration::from_millis(20),
        ..NodeConfig::new(dir)
    }
}

fn accounts() -> Vec<Account> {
    let mut accounts = vec![Account {
        id: 1,
        ledger: EUR,
        code: 1,
        ..Default::default()
    }];
    for id in 2..=11 {
        accounts.push(Account {
            id,
            ledger: EUR,
            code: 10,
            flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
            ..Default::default()
        });
    }
    accounts
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

async fn transfers(node: &Node, events: Vec<Transfer>) -> Vec<(u32, CreateTransferResult)> {
    match node.submit(Request::CreateTransfers(events)).await.unwrap() {
        RequestOutcome::Transfers { results, .. } => {
            results.into_iter().map(|r| (r.index, r.result)).collect()
        }
        other => panic!("unexpected outcome {other:?}"),
    }
}

async fn seeded(node: &Node) {
    match node
        .submit(Request::CreateAccounts(accounts()))
        .await
        .unwrap()
    {
        RequestOutcome::Accounts { results, .. } => assert!(results.is_empty(), "{results:?}"),
        other => panic!("unexpected outcome {other:?}"),
    }
    let deposits = (2..=11)
        .map(|id| transfer(100 + id, 1, id, 1_000))
        .collect();
    assert_eq!(transfers(node, deposits).await, vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_restart_by_log_replay() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path())).await.unwrap();
    seeded(&node).await;
    assert_eq!(
        transfers(&node, vec![transfer(500, 2, 3, 1_001)]).await,
        vec![(0, CreateTransferResult::ExceedsCredits)]
    );
    let digest = node.read(|ledger| ledger.digest()).await.unwrap();
    node.shutdown().await;

    let node = Node::start(config(dir.path())).await.unwrap();
    assert_eq!(node.read(|ledger| ledger.digest()).await.unwrap(), digest);
    // The burnt id is still burnt: a retry returns the first outcome.
    assert_eq!(
        transfers(&node, vec![transfer(500, 2, 3, 1)]).await,
        vec![(0, CreateTransferResult::IdAlreadyFailed)]
    );
    node.read(|ledger| ledger.check_invariants())
        .await
        .unwrap()
        .unwrap();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_group_committed_and_each_gets_its_own_results() {
    let dir = tempfile::tempdir().unwrap();
    let node = std::sync::Arc::new(Node::start(config(dir.path())).await.unwrap());
    seeded(&node).await;
    let applied_before = node.applied_index();
    let mut tasks = Vec::new();
    for client in 0..64u128 {
        let node = std::sync::Arc::clone(&node);
        tasks.push(tokio::spawn(async move {
            let debit = 2 + client % 10;
            let credit = 2 + (client + 1) % 10;
            // Client 0 overdraws (its request fails alone); the rest pay 1.
            let amount = if client == 0 { 1_000_000 } else { 1 };
            transfers(
                &node,
                vec![transfer(10_000 + client, debit, credit, amount)],
            )
            .await
        }));
    }
    for (client, task) in tasks.into_iter().enumerate() {
        let results = task.await.unwrap();
        if client == 0 {
            assert_eq!(results, vec![(0, CreateTransferResult::ExceedsCredits)]);
        } else {
            assert_eq!(results, vec![], "client {client}");
        }
    }
    let entries = node.applied_index() - applied_before;
    assert!(
        entries < 64,
        "64 concurrent requests took {entries} log entries: no group commit"
    );
    let node = std::sync::Arc::into_inner(node).unwrap();
    node.read(|ledger| ledger.check_invariants())
        .await
        .unwrap()
        .unwrap();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_compacts_the_log_and_restart_is_snapshot_plus_replay() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path())).await.unwrap();
    seeded(&node).await;
    for round in 0..5u128 {
        assert_eq!(
            transfers(&node, vec![transfer(1_000 + round, 2, 3, 10)]).await,
            vec![]
        );
    }
    node.snapshot().await.unwrap();
    assert!(dir.path().join("snapshots/snapshot.bin").exists());
    // Written after the snapshot: recovered by replaying the log on top of it.
    assert_eq!(
        transfers(&node, vec![transfer(2_000, 3, 4, 7)]).await,
        vec![]
    );
    let digest = node.read(|ledger| ledger.digest()).await.unwrap();
    node.shutdown().await;

    let node = Node::start(config(dir.path())).await.unwrap();
    assert_eq!(node.read(|ledger| ledger.digest()).await.unwrap(), digest);
    assert_eq!(
        node.read(|ledger| ledger.account(4).unwrap().credits_posted)
            .await
            .unwrap(),
        1_007
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_transfers_expire_through_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path())).await.unwrap();
    seeded(&node).await;
    let hold = Transfer {
        flags: TransferFlags::PENDING,
        timeout: 1,
        ..transfer(700, 2, 3, 400)
    };
    assert_eq!(transfers(&node, vec![hold]).await, vec![]);
    assert_eq!(
        node.read(|l| l.account(2).unwrap().debits_pending)
            .await
            .unwrap(),
        400
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while node
        .read(|l| l.account(2).unwrap().debits_pending)
        .await
        .unwrap()
        != 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hold never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let post = Transfer {
        id: 701,
        pending_id: 700,
        flags: TransferFlags::POST_PENDING_TRANSFER,
        ..Default::default()
    };
    assert_eq!(
        transfers(&node, vec![post]).await,
        vec![(0, CreateTransferResult::PendingTransferExpired)]
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_log_record_stops_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path())).await.unwrap();
    seeded(&node).await;
    // A transfer whose bytes are easy to find in the file.
    let marker: u128 = 0x5eed_5eed_5eed_5eed_5eed_5eed_5eed_5eed;
    let marked = Transfer {
        user_data_128: marker,
        ..transfer(900, 2, 3, 5)
    };
    assert_eq!(transfers(&node, vec![marked]).await, vec![]);
    node.shutdown().await;

    let path = dir.path().join("raft.redb");
    let mut bytes = std::fs::read(&path).unwrap();
    let needle = marker.to_le_bytes();
    let at = bytes
        .windows(16)
        .position(|w| w == needle)
        .expect("the marked transfer is in the log file");
    bytes[at] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    let error = Node::start(config(dir.path())).await.unwrap_err();
    let message = error.to_string();
    eprintln!("start refused: {message}");
    assert!(matches!(error, NodeError::Log(_)), "{message}");
    assert!(
        message.contains("damaged") || message.contains("cannot open"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path())).await.unwrap();
    seeded(&node).await;
    node.snapshot().await.unwrap();
    node.shutdown().await;
    let path = dir.path().join("snapshots/snapshot.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let error = Node::start(config(dir.path())).await.unwrap_err();
    assert!(matches!(error, NodeError::StateMachine(_)), "{error}");
    assert!(error.to_string().contains("refusing to start"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("something.txt"), "not ours").unwrap();
    let error = Node::start(config(dir.path())).await.unwrap_err();
    assert!(
        error.to_string().contains("refusing to mix data"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_refused_before_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path())).await.unwrap();
    let too_many = vec![transfer(1, 2, 3, 1); 8_191];
    let error = node
        .submit(Request::CreateTransfers(too_many))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "too_many_events");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_in_the_middle_of_the_log_is_found_too() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path())).await.unwrap();
    seeded(&node).await;
    let marker: u128 = 0x0bad_0bad_0bad_0bad_0bad_0bad_0bad_0bad;
    let marked = Transfer {
        user_data_128: marker,
        ..transfer(900, 2, 3, 5)
    };
    assert_eq!(transfers(&node, vec![marked]).await, vec![]);
    // Many entries after it: the damaged record sits in the middle of the log.
    for round in 0..20u128 {
        assert_eq!(
            transfers(&node, vec![transfer(1_000 + round, 3, 4, 1)]).await,
            vec![]
        );
    }
    node.shutdown().await;

    let path = dir.path().join("raft.redb");
    let mut bytes = std::fs::read(&path).unwrap();
    let needle = marker.to_le_bytes();
    let at = bytes
        .windows(16)
        .position(|w| w == needle)
        .expect("the marked transfer is in the log file");
    bytes[at + 3] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let error = Node::start(config(dir.path())).await.unwrap_err();
    assert!(matches!(error, NodeError::Log(_)), "{error}");
    assert!(error.to_string().contains("refusing to start"), "{error}");
}
