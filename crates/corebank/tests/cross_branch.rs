//! Transfers between customers of two branches, each a real `corebank node` process:
//! posted, refused and voided, replayed, and finished after the coordinating branch or
//! the destination branch is killed with kill -9 mid-saga. After each scenario
//! `corebank reconcile` must find the clearing accounts mirrored and money conserved.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corebank_account_number::{AccountNumber, BankPrefix, BranchCode};
use corebank_client::{Client, ClientConfig, RetryPolicy, v1};
use corebank_proto::convert::u128_of;
use support::{NodeProcess, free_ports};

struct TwoBranches {
    ports: [u16; 2],
    nodes: [Option<NodeProcess>; 2],
    root: tempfile::TempDir,
}

impl TwoBranches {
    fn start() -> Self {
        let ports = free_ports(2);
        let mut branches = Self {
            ports: [ports[0], ports[1]],
            nodes: [None, None],
            root: tempfile::tempdir().unwrap(),
        };
        branches.start_branch(0);
        branches.start_branch(1);
        branches
    }

    fn address(&self, index: usize) -> String {
        format!("127.0.0.1:{}", self.ports[index])
    }

    fn start_branch(&mut self, index: usize) {
        let other = 1 - index;
        let code = format!("{:04}", index + 1);
        let route = format!("{:04}={}", other + 1, self.address(other));
        let listen = self.address(index);
        let dir = self.root.path().join(&code);
        // Hundreds of 1.00 payments a minute between two accounts is card testing to
        // the fraud screen; these tests are about sagas, screening has its own.
        let node = NodeProcess::start(
            &dir,
            &[
                "--branch",
                &code,
                "--insecure",
                "--listen",
                &listen,
                "--route",
                &route,
                "--risk",
                "off",
            ],
        )
        .unwrap_or_else(|error| panic!("branch {code} did not start: {error}"));
        self.nodes[index] = Some(node);
    }

    fn kill(&mut self, index: usize) {
        if let Some(node) = self.nodes[index].take() {
            node.kill();
        }
    }

    async fn client(&self, index: usize) -> Client {
        let config = ClientConfig::new(format!("http://{}", self.address(index)))
            .with_request_timeout(Duration::from_secs(5))
            .with_total_timeout(Duration::from_secs(30))
            .with_retries(RetryPolicy {
                max_attempts: 50,
                initial_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(500),
                jitter: true,
            });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match Client::connect(config.clone()).await {
                Ok(client) => return client,
                Err(error) if Instant::now() < deadline => {
                    eprintln!("connecting: {error}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("cannot connect: {error}"),
            }
        }
    }

    /// `corebank reconcile` over both branches: exit code and JSON report.
    fn reconcile(&self) -> (i32, serde_json::Value) {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_corebank"))
            .args(["reconcile", "--insecure", "--json", "--saga-timeout", "600"])
            .args(["--branch", &format!("0001={}", self.address(0))])
            .args(["--branch", &format!("0002={}", self.address(1))])
            .output()
            .unwrap();
        let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
            serde_json::json!({
                "unparsed_stdout": String::from_utf8_lossy(&output.stdout),
                "stderr": String::from_utf8_lossy(&output.stderr),
            })
        });
        (output.status.code().unwrap_or(-1), report)
    }

    /// Waits until reconciliation is clean with no open saga left.
    async fn wait_until_settled(&self) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (code, report) = self.reconcile();
            let open = report["open_sagas"].as_array().map_or(usize::MAX, Vec::len);
            if code == 0 && open == 0 {
                return report;
            }
            assert!(
                Instant::now() < deadline,
                "not settled within 90 s (exit {code}): {report}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

async fn open(client: &Client, customer: &str, deposit: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = async {
            let account = client
                .open_account(customer, "EUR", v1::Product::Current)
                .await?;
            client
                .deposit(
                    &account.account_number,
                    deposit,
                    Some(&format!("fund-{customer}")),
                )
                .await?;
            Ok::<_, corebank_client::ClientError>(account.account_number)
        };
        match attempt.await {
            Ok(number) => return number,
            Err(error) if Instant::now() < deadline => {
                eprintln!("opening {customer}: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("opening {customer}: {error}"),
        }
    }
}

async fn posted(client: &Client, account: &str) -> u128 {
    u128_of(client.balance(account).await.unwrap().posted_minor.as_ref())
}

fn unknown_account_of_branch(branch: u16) -> String {
    AccountNumber::new(
        BankPrefix::default(),
        BranchCode::new(branch).unwrap(),
        7_777,
    )
    .unwrap()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_between_branches_post_void_replay_and_reconcile() {
    let branches = TwoBranches::start();
    let (first, second) = (branches.client(0).await, branches.client(1).await);
    let alice = open(&first, "alice", "1000.00").await;
    let bob = open(&second, "bob", "500.00").await;

    let sent = first
        .transfer(&alice, &bob, "100.00", Some("alice-to-bob"), "rent")
        .await
        .unwrap();
    assert_eq!(sent.status, v1::TransferStatus::Posted as i32, "{sent:?}");
    assert!(!sent.replayed);
    let back = second
        .transfer(&bob, &alice, "50.00", Some("bob-to-alice"), "")
        .await
        .unwrap();
    assert_eq!(back.status, v1::TransferStatus::Posted as i32);
    assert_eq!(posted(&first, &alice).await, 95_000);
    assert_eq!(posted(&second, &bob).await, 55_000);

    // The same key again: the same transfer, nothing moves twice.
    let again = first
        .transfer(&alice, &bob, "100.00", Some("alice-to-bob"), "rent")
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        u128_of(again.transfer_id.as_ref()),
        u128_of(sent.transfer_id.as_ref())
    );
    assert_eq!(posted(&first, &alice).await, 95_000);
    // The same key for another amount is refused, and moves nothing.
    let reused = first
        .transfer(&alice, &bob, "99.00", Some("alice-to-bob"), "rent")
        .await
        .unwrap_err();
    assert_eq!(reused.code(), "idempotency_conflict", "{reused}");
    // A fee on a transfer to another branch is refused up front.
    let with_fee = first
        .transfer_with(v1::TransferRequest {
            from_account: alice.clone(),
            to_account: bob.clone(),
            amount: "1.00".into(),
            idempotency_key: "with-fee".into(),
            fee: "0.10".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(with_fee.code(), "invalid_argument", "{with_fee}");
    assert_eq!(posted(&first, &alice).await, 95_000);

    // To an account the other branch does not have: refused there, voided here.
    let nobody = unknown_account_of_branch(2);
    let refused = first
        .transfer(&alice, &nobody, "10.00", Some("to-nobody"), "")
        .await
        .unwrap_err();
    let api = refused.api_error().expect("an API error");
    assert_eq!(api.code.as_str(), "account_not_found", "{refused}");
    assert_eq!(api.reason, "cross_branch_refused", "{refused}");
    let balance = first.balance(&alice).await.unwrap();
    assert_eq!(u128_of(balance.posted_minor.as_ref()), 95_000);
    assert_eq!(u128_of(balance.pending_debits_minor.as_ref()), 0);

    // More than the payer has: refused at the source, nothing reserved.
    let short = first
        .transfer(&alice, &bob, "5000.00", Some("too-much"), "")
        .await
        .unwrap_err();
    assert_eq!(short.code(), "insufficient_funds", "{short}");
    // A branch nobody configured a route to.
    let elsewhere = unknown_account_of_branch(3);
    let unrouted = first
        .transfer(&alice, &elsewhere, "1.00", None, "")
        .await
        .unwrap_err();
    assert_eq!(
        unrouted.api_error().map(|e| e.reason.as_str()),
        Some("unknown_branch"),
        "{unrouted}"
    );

    let (code, report) = branches.reconcile();
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        report["open_sagas"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    assert!(!report["flows"].as_array().unwrap().is_empty(), "{report}");
}

/// Cross-branch transfers of 1.00 from `from` (at branch `client`) to `to`, `tasks`
/// at a time, until `stop`; every key tried is logged.
fn start_load(
    client: &Client,
    from: &str,
    to: &str,
    tasks: usize,
    stop: &Arc<AtomicBool>,
    keys: &Arc<Mutex<BTreeSet<String>>>,
    prefix: &str,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..tasks)
        .map(|task| {
            let (client, from, to) = (client.clone(), from.to_owned(), to.to_owned());
            let (stop, keys, prefix) = (Arc::clone(stop), Arc::clone(keys), prefix.to_owned());
            tokio::spawn(async move {
                let mut sequence = 0;
                while !stop.load(Ordering::SeqCst) {
                    sequence += 1;
                    let key = format!("{prefix}-{task}-{sequence}");
                    keys.lock().unwrap().insert(key.clone());
                    let _ = client.transfer(&from, &to, "1.00", Some(&key), "").await;
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sagas_finish_after_the_coordinator_or_the_destination_is_killed_mid_flight() {
    let mut branches = TwoBranches::start();
    let first = branches.client(0).await;
    let second = branches.client(1).await;
    let alice = open(&first, "alice", "100000.00").await;
    let bob = open(&second, "bob", "0.01").await;
    let path = Path::new(env!("CARGO_BIN_EXE_corebank"));
    assert!(path.exists());

    let keys = Arc::new(Mutex::new(BTreeSet::new()));
    for (round, victim) in [(0, 0_usize), (1, 1_usize)] {
        let stop = Arc::new(AtomicBool::new(false));
        let load = start_load(
            &first,
            &alice,
            &bob,
            4,
            &stop,
            &keys,
            &format!("round{round}"),
        );
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        // kill -9 in the middle of sagas: the coordinator (0) or the destination (1).
        branches.kill(victim);
        tokio::time::sleep(Duration::from_millis(500)).await;
        branches.start_branch(victim);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        stop.store(true, Ordering::SeqCst);
        for task in load {
            task.await.unwrap();
        }
    }
    let report = branches.wait_until_settled().await;
    eprintln!("settled: {report}");

    // Every key tried once more: each is a saga that ended posted (a replay now) or was
    // never reserved (applied now); none is in flight and none moves money twice.
    let keys = std::mem::take(&mut *keys.lock().unwrap());
    let first = branches.client(0).await;
    let second = branches.client(1).await;
    let mut replayed = 0_usize;
    for key in &keys {
        let receipt = first
            .transfer(&alice, &bob, "1.00", Some(key), "")
            .await
            .unwrap_or_else(|error| panic!("resubmitting {key}: {error}"));
        assert_eq!(receipt.status, v1::TransferStatus::Posted as i32, "{key}");
        replayed += usize::from(receipt.replayed);
    }
    eprintln!(
        "{} keys: {replayed} had already been posted, {} were applied on resubmission",
        keys.len(),
        keys.len() - replayed
    );
    let moved = keys.len() as u128 * 100;
    assert_eq!(posted(&first, &alice).await, 10_000_000 - moved);
    assert_eq!(posted(&second, &bob).await, 1 + moved);
    let balance = first.balance(&alice).await.unwrap();
    assert_eq!(u128_of(balance.pending_debits_minor.as_ref()), 0);
    let (code, report) = branches.reconcile();
    assert_eq!(code, 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branches_register_heartbeat_and_find_each_other_through_the_registry() {
    let root = tempfile::tempdir().unwrap();
    let registry = NodeProcess::start_subcommand(
        "registry",
        &root.path().join("registry"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--insecure",
            "--reconcile-every",
            "1",
        ],
    )
    .unwrap();
    let registry_address = registry.grpc.to_string();
    // No --route: each branch registers itself and looks the other up.
    let start = |code: &str| {
        NodeProcess::start(
            &root.path().join(code),
            &[
                "--branch",
                code,
                "--insecure",
                "--listen",
                "127.0.0.1:0",
                "--registry",
                &registry_address,
            ],
        )
        .unwrap()
    };
    let (first_node, second_node) = (start("0001"), start("0002"));
    let connect = |address: std::net::SocketAddr| {
        Client::connect(
            ClientConfig::new(format!("http://{address}"))
                .with_total_timeout(Duration::from_secs(20)),
        )
    };
    let first = connect(first_node.grpc).await.unwrap();
    let second = connect(second_node.grpc).await.unwrap();
    let alice = open(&first, "alice", "100.00").await;
    let bob = open(&second, "bob", "0.01").await;

    // The payee's branch becomes known once it has registered.
    let deadline = Instant::now() + Duration::from_secs(30);
    let receipt = loop {
        match first
            .transfer(&alice, &bob, "40.00", Some("via-registry"), "")
            .await
        {
            Ok(receipt) => break receipt,
            Err(error) if Instant::now() < deadline => {
                eprintln!("waiting for the registry to know branch 0002: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("{error}"),
        }
    };
    assert_eq!(receipt.status, v1::TransferStatus::Posted as i32);
    assert_eq!(posted(&second, &bob).await, 4_001);

    // Both branches registered and heartbeat: the registry sees them healthy.
    let client =
        corebank_registry::RegistryClient::new(corebank_registry::RegistryClientConfig::new(vec![
            format!("http://{registry_address}"),
        ]))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let branches = client.list_branches(None).await.unwrap();
        let healthy = branches
            .iter()
            .filter(|b| {
                b.leader.is_some()
                    && b.replicas
                        .iter()
                        .all(|r| r.health == corebank_registry::Health::Healthy)
            })
            .count();
        if branches.len() == 2 && healthy == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{branches:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let route = client.resolve(&bob).await.unwrap();
    assert_eq!(route.branch.code.get(), 2);
    drop((first_node, second_node, registry));
}
