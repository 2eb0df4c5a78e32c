//! A branch of three replicas as real `corebank node` processes on loopback: leader
//! killed under load, a follower brought back, a partitioned replica, a replica added
//! and removed. After each fault: no acknowledged transfer lost, none applied twice,
//! every replica at the same state digest, money conserved.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corebank_client::{Client, ClientConfig, ClientError, RetryPolicy, v1};
use support::{Replica, free_ports, member_list, wait_for_convergence, wait_for_leader};

const DEPOSIT: &str = "1000000.00";
const DEPOSIT_MINOR: u128 = 100_000_000;

fn replica_args(id: u64, port: u16, extra: &[String]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--branch",
        "0001",
        "--insecure",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--node-id",
        &id.to_string(),
        "--fault-injection",
        // The load below (bursts of tiny transfers between few accounts) is card
        // testing to the fraud screen; these tests are about replication.
        "--risk",
        "off",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend_from_slice(extra);
    args
}

/// Three founding replicas of branch 0001.
fn three_replicas(root: &Path, extra: &[&str]) -> Vec<Replica> {
    let ports = free_ports(3);
    let members = member_list(&ports);
    let mut replicas: Vec<Replica> = ports
        .iter()
        .enumerate()
        .map(|(index, port)| {
            let id = index as u64 + 1;
            let mut extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
            extra.push("--member".into());
            extra.push(members.clone());
            Replica {
                id,
                port: *port,
                dir: root.join(format!("replica-{id}")),
                subcommand: "node",
                args: replica_args(id, *port, &extra),
                process: None,
            }
        })
        .collect();
    for replica in &mut replicas {
        replica.start();
    }
    replicas
}

fn config_for(addresses: &[String]) -> ClientConfig {
    let endpoints = addresses
        .iter()
        .map(|address| format!("http://{address}"))
        .collect::<Vec<_>>()
        .join(",");
    ClientConfig::new(endpoints)
        .with_request_timeout(Duration::from_secs(2))
        .with_total_timeout(Duration::from_secs(20))
        .with_connect_timeout(Duration::from_secs(1))
        .with_retries(RetryPolicy {
            max_attempts: 40,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            jitter: true,
        })
}

async fn client_for(replicas: &[Replica]) -> Client {
    let addresses: Vec<String> = replicas
        .iter()
        .filter(|r| r.process.is_some())
        .map(Replica::address)
        .collect();
    Client::connect(config_for(&addresses)).await.unwrap()
}

/// Opens two accounts and funds the first; retries while the leader takes office.
async fn open_funded_pair(client: &Client) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = async {
            let a = client
                .open_account("replication-a", "EUR", v1::Product::Current)
                .await?;
            let b = client
                .open_account("replication-b", "EUR", v1::Product::Current)
                .await?;
            client
                .deposit(&a.account_number, DEPOSIT, Some("funding"))
                .await?;
            Ok::<_, ClientError>((a.account_number, b.account_number))
        };
        match attempt.await {
            Ok(pair) => return pair,
            Err(error) if Instant::now() < deadline => {
                eprintln!("setting up accounts: {error}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("cannot set up accounts: {error}"),
        }
    }
}

/// What the load saw: keys acknowledged (with their transfer ids) and keys whose
/// outcome is unknown or that failed.
#[derive(Default)]
struct LoadLog {
    acknowledged: BTreeMap<String, u128>,
    attempted: BTreeSet<String>,
    acknowledged_at: Vec<Instant>,
}

fn transfer_id(receipt: &v1::TransferReceipt) -> u128 {
    corebank_proto::convert::u128_of(receipt.transfer_id.as_ref())
}

/// Transfers of 1.00 from `from` to `to`, `tasks` at a time, until `stop`.
fn start_load(
    client: &Client,
    from: &str,
    to: &str,
    tasks: usize,
    stop: &Arc<AtomicBool>,
    log: &Arc<Mutex<LoadLog>>,
    prefix: &str,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..tasks)
        .map(|task| {
            let client = client.clone();
            let (from, to) = (from.to_owned(), to.to_owned());
            let stop = Arc::clone(stop);
            let log = Arc::clone(log);
            let prefix = prefix.to_owned();
            tokio::spawn(async move {
                let mut sequence = 0;
                while !stop.load(Ordering::SeqCst) {
                    sequence += 1;
                    let key = format!("{prefix}-{task}-{sequence}");
                    log.lock().unwrap().attempted.insert(key.clone());
                    if let Ok(receipt) = client.transfer(&from, &to, "1.00", Some(&key), "").await {
                        let mut log = log.lock().unwrap();
                        log.acknowledged.insert(key, transfer_id(&receipt));
                        log.acknowledged_at.push(Instant::now());
                    }
                }
            })
        })
        .collect()
}

/// Every attempted key resubmitted: each answers with the transfer it made (or makes it
/// now); acknowledged ones must answer with the same transfer id, as a replay. Then the
/// payer's balance must show each key exactly once.
async fn check_exactly_once(client: &Client, from: &str, to: &str, log: &LoadLog) {
    let mut applied = 0_u128;
    for key in &log.attempted {
        let receipt = client
            .transfer(from, to, "1.00", Some(key), "")
            .await
            .unwrap_or_else(|error| panic!("resubmitting {key}: {error}"));
        if let Some(id) = log.acknowledged.get(key) {
            assert_eq!(
                transfer_id(&receipt),
                *id,
                "acknowledged key {key} now names another transfer"
            );
            assert!(receipt.replayed, "acknowledged key {key} was applied again");
        }
        applied += 100;
    }
    let balance = client.balance(from).await.unwrap();
    let posted = corebank_proto::convert::u128_of(balance.posted_minor.as_ref());
    assert_eq!(
        posted,
        DEPOSIT_MINOR - applied,
        "the payer's balance must show every key exactly once ({} keys)",
        log.attempted.len()
    );
    let payee = client.balance(to).await.unwrap();
    let received = corebank_proto::convert::u128_of(payee.posted_minor.as_ref());
    assert_eq!(received, applied, "money moved must arrive: conservation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_under_load_fails_over_without_losing_or_repeating_transfers() {
    let root = tempfile::tempdir().unwrap();
    let mut replicas = three_replicas(root.path(), &["--snapshot-every-entries", "200"]);
    let leader = wait_for_leader(&replicas, &BTreeSet::new()).await;
    let client = client_for(&replicas).await;
    let (from, to) = open_funded_pair(&client).await;

    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(LoadLog::default()));
    let load = start_load(&client, &from, &to, 8, &stop, &log, "kill");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before_kill = log.lock().unwrap().acknowledged.len();
    assert!(before_kill > 0, "no transfer went through before the kill");

    let killed_at = Instant::now();
    let index = replicas.iter().position(|r| r.id == leader).unwrap();
    replicas[index].kill();
    let new_leader = wait_for_leader(&replicas, &BTreeSet::from([leader])).await;
    assert_ne!(new_leader, leader);
    // Failover: from the kill to the first write acknowledged afterwards.
    let deadline = Instant::now() + Duration::from_secs(30);
    let failover = loop {
        let first_after = log
            .lock()
            .unwrap()
            .acknowledged_at
            .iter()
            .copied()
            .filter(|at| *at > killed_at)
            .min();
        if let Some(at) = first_after {
            break at - killed_at;
        }
        assert!(
            Instant::now() < deadline,
            "no write succeeded within 30 s of the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!(
        "failover: {} ms from kill -9 of the leader (replica {leader}) to the first acknowledged write (new leader {new_leader})",
        failover.as_millis()
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;

    // The old leader comes back as a follower and catches up while writes go on.
    replicas[index].start();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    // Then a follower dies under load, and comes back while writes go on.
    let follower = replicas
        .iter()
        .position(|r| r.id != new_leader && r.process.is_some())
        .unwrap();
    let acknowledged_before = log.lock().unwrap().acknowledged.len();
    replicas[follower].kill();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        log.lock().unwrap().acknowledged.len() > acknowledged_before,
        "writes stopped while one follower of three was down"
    );
    replicas[follower].start();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    let log = std::mem::take(&mut *log.lock().unwrap());
    eprintln!(
        "load: {} transfers acknowledged of {} attempted",
        log.acknowledged.len(),
        log.attempted.len()
    );
    check_exactly_once(&client, &from, &to, &log).await;
    let (index, digest) = wait_for_convergence(&replicas, 1).await;
    eprintln!("all three replicas at index {index}, digest {digest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_commits_nothing_the_majority_goes_on_and_all_agree_after_healing() {
    let root = tempfile::tempdir().unwrap();
    let replicas = three_replicas(root.path(), &[]);
    let leader = wait_for_leader(&replicas, &BTreeSet::new()).await;
    let client = client_for(&replicas).await;
    let (from, to) = open_funded_pair(&client).await;

    let cut = replicas.iter().position(|r| r.id == leader).unwrap();
    replicas[cut].signal("USR1");
    let new_leader = wait_for_leader(&replicas, &BTreeSet::from([leader])).await;
    eprintln!("replica {leader} isolated; the majority elected replica {new_leader}");

    // The isolated replica still believes it leads, but cannot commit anything. It
    // is asked directly, with one attempt: a client would rightly follow a leader
    // that it names (as when an election moved the lead just before the cut), and
    // the write would then be the majority's.
    let mut minority =
        v1::banking_client::BankingClient::connect(format!("http://{}", replicas[cut].address()))
            .await
            .unwrap();
    let mut request = tonic::Request::new(v1::TransferRequest {
        from_account: from.clone(),
        to_account: to.clone(),
        amount: "5.00".to_owned(),
        idempotency_key: "minority-write".to_owned(),
        ..Default::default()
    });
    request.set_timeout(Duration::from_secs(3));
    let refused = tokio::time::timeout(Duration::from_secs(5), minority.transfer(request)).await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "an isolated replica acknowledged a write: {refused:?}"
    );

    // The majority takes writes meanwhile.
    let majority: Vec<String> = replicas
        .iter()
        .filter(|r| r.id != leader)
        .map(Replica::address)
        .collect();
    let majority = Client::connect(config_for(&majority)).await.unwrap();
    for sequence in 0..20 {
        majority
            .transfer(
                &from,
                &to,
                "1.00",
                Some(&format!("majority-{sequence}")),
                "",
            )
            .await
            .unwrap_or_else(|error| panic!("majority write {sequence}: {error}"));
    }

    replicas[cut].signal("USR2");
    let (index, digest) = wait_for_convergence(&replicas, 1).await;
    eprintln!("healed: all three replicas at index {index}, digest {digest}");

    // The minority's write was never committed: its key is still free.
    let receipt = majority
        .transfer(&from, &to, "5.00", Some("minority-write"), "")
        .await
        .unwrap();
    assert!(
        !receipt.replayed,
        "the isolated replica's write was committed"
    );
    let balance = majority.balance(&from).await.unwrap();
    assert_eq!(
        corebank_proto::convert::u128_of(balance.posted_minor.as_ref()),
        DEPOSIT_MINOR - 20 * 100 - 500
    );
    let payee = majority.balance(&to).await.unwrap();
    assert_eq!(
        corebank_proto::convert::u128_of(payee.posted_minor.as_ref()),
        20 * 100 + 500
    );
    wait_for_convergence(&replicas, 1).await;
}

/// `corebank client --json ...` against `address`: exit code and the JSON printed.
fn cli(address: &str, args: &[&str]) -> (i32, serde_json::Value) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_corebank"))
        .args(["client", "--server", address, "--insecure", "--json"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|error| {
        panic!(
            "not one JSON object ({error}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_added_later_catches_up_from_a_snapshot_and_can_be_removed() {
    let root = tempfile::tempdir().unwrap();
    let ports = free_ports(2);
    let mut first = Replica {
        id: 1,
        port: ports[0],
        dir: root.path().join("replica-1"),
        subcommand: "node",
        args: replica_args(
            1,
            ports[0],
            &[
                "--snapshot-every-entries".into(),
                "20".into(),
                "--log-entries-kept-after-snapshot".into(),
                "0".into(),
            ],
        ),
        process: None,
    };
    first.start();
    let client = Client::connect(config_for(&[first.address()]))
        .await
        .unwrap();
    let (from, to) = open_funded_pair(&client).await;
    for sequence in 0..60 {
        client
            .transfer(&from, &to, "1.00", Some(&format!("before-{sequence}")), "")
            .await
            .unwrap();
    }

    // The log behind the snapshots is gone: the newcomer needs the snapshot.
    let mut second = Replica {
        id: 2,
        port: ports[1],
        dir: root.path().join("replica-2"),
        subcommand: "node",
        args: replica_args(2, ports[1], &["--join".into()]),
        process: None,
    };
    second.start();
    let (code, added) = cli(
        &first.address(),
        &[
            "add-replica",
            "--node-id",
            "2",
            "--address",
            &second.address(),
        ],
    );
    assert_eq!(code, 0, "{added}");
    let voters = added["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["voter"] == true)
        .count();
    assert_eq!(voters, 2, "{added}");
    let pair = [first, second];
    wait_for_convergence(&pair, 1).await;
    assert!(
        pair[1].dir.join("snapshots/snapshot.bin").exists(),
        "the newcomer caught up without the snapshot"
    );

    // Both vote now: writes need both, and both apply them.
    for sequence in 0..10 {
        client
            .transfer(&from, &to, "1.00", Some(&format!("after-{sequence}")), "")
            .await
            .unwrap();
    }
    wait_for_convergence(&pair, 1).await;
    let [first, second] = pair;

    // Asking the newcomer to change membership is answered by the leader.
    let (code, removed) = cli(&second.address(), &["remove-replica", "--node-id", "2"]);
    assert_eq!(code, 0, "{removed}");
    assert_eq!(removed["members"].as_array().unwrap().len(), 1, "{removed}");
    let (code, refused) = cli(&first.address(), &["remove-replica", "--node-id", "1"]);
    assert_eq!(code, 1, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_argument", "{refused}");
    let (code, refused) = cli(
        &first.address(),
        &["add-replica", "--node-id", "0", "--address", "127.0.0.1:1"],
    );
    assert_eq!(code, 1, "{refused}");

    client
        .transfer(&from, &to, "1.00", Some("alone-again"), "")
        .await
        .unwrap();
    let balance = client.balance(&from).await.unwrap();
    assert_eq!(
        corebank_proto::convert::u128_of(balance.posted_minor.as_ref()),
        DEPOSIT_MINOR - 71 * 100
    );
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_replicate_over_mutual_tls_with_their_node_certificates() {
    let root = tempfile::tempdir().unwrap();
    let certs = root.path().join("certs");
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_corebank"))
        .args(["certs", "--out"])
        .arg(&certs)
        .args(["--client", "ops:admin"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let path = |name: &str| certs.join(name).display().to_string();
    let ports = free_ports(3);
    let members = member_list(&ports);
    let mut replicas: Vec<Replica> = ports
        .iter()
        .enumerate()
        .map(|(index, port)| {
            let id = index as u64 + 1;
            let args = [
                "--branch",
                "0001",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--node-id",
                &id.to_string(),
                "--member",
                &members,
                "--tls-cert",
                &path("node.pem"),
                "--tls-key",
                &path("node-key.pem"),
                "--tls-ca",
                &path("ca.pem"),
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            Replica {
                id,
                port: *port,
                dir: root.path().join(format!("replica-{id}")),
                subcommand: "node",
                args,
                process: None,
            }
        })
        .collect();
    for replica in &mut replicas {
        replica.start();
    }
    let servers = replicas
        .iter()
        .map(Replica::address)
        .collect::<Vec<_>>()
        .join(",");
    let tls_cli = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_corebank"))
            .args(["client", "--server", &servers, "--json"])
            .args(["--tls-ca", &path("ca.pem")])
            .args(["--tls-cert", &path("client-ops.pem")])
            .args(["--tls-key", &path("client-ops-key.pem")])
            .args(args)
            .output()
            .unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
        (output.status.code().unwrap_or(-1), json)
    };
    // A leader is elected over mutual TLS, then takes a write that all three apply.
    let deadline = Instant::now() + Duration::from_secs(30);
    let account = loop {
        let (code, opened) = tls_cli(&["open-account", "--customer", "tls", "--currency", "EUR"]);
        if code == 0 {
            break opened["account"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no write over TLS: {opened}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (code, deposit) = tls_cli(&["deposit", &account, "10.00"]);
    assert_eq!(code, 0, "{deposit}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut seen = BTreeSet::new();
        for replica in &replicas {
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_corebank"))
                .args(["client", "--server", &replica.address(), "--json"])
                .args(["--tls-ca", &path("ca.pem")])
                .args(["--tls-cert", &path("client-ops.pem")])
                .args(["--tls-key", &path("client-ops-key.pem")])
                .arg("cluster-status")
                .output()
                .unwrap();
            let status: serde_json::Value =
                serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
            seen.insert((
                status["last_applied_index"].as_u64().unwrap_or(0),
                status["state_digest"].as_str().unwrap_or("").to_owned(),
            ));
        }
        if seen.len() == 1 && seen.iter().all(|(index, _)| *index > 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replicas differ over TLS: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
