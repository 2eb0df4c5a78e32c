//! The registry as real `corebank registry` processes on loopback: a group of three
//! whose leader is killed with SIGKILL (the directory survives and the new leader takes
//! writes; the old leader, restarted, catches up), and a registry of one killed and
//! restarted on its data directory (the directory is intact).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use corebank_account_number::BranchCode;
use corebank_client::ClientConfig;
use support::{
    NodeProcess, Replica, free_ports, member_list, status_of, wait_for_convergence, wait_for_leader,
};

use corebank_registry::{
    BranchView, HeartbeatTarget, RegistryClient, RegistryClientConfig, ReplicaAddress,
    ReplicaReport,
};

/// Starts `corebank registry --data-dir DIR ARGS` and waits for its "ready" line.
fn start_registry(dir: &Path, args: &[String]) -> NodeProcess {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    NodeProcess::start_subcommand("registry", dir, &args).unwrap()
}

fn three_members(root: &Path) -> Vec<Replica> {
    let ports = free_ports(3);
    let members = member_list(&ports);
    ports
        .iter()
        .enumerate()
        .map(|(index, port)| {
            let id = index as u64 + 1;
            Replica {
                id,
                port: *port,
                dir: root.join(format!("registry-{id}")),
                subcommand: "registry",
                args: vec![
                    "--insecure".into(),
                    "--listen".into(),
                    format!("127.0.0.1:{port}"),
                    "--admin".into(),
                    "127.0.0.1:0".into(),
                    "--node-id".into(),
                    id.to_string(),
                    "--member".into(),
                    members.clone(),
                    // Small, so that snapshots are taken (and sent) during the test.
                    "--snapshot-every-entries".into(),
                    "20".into(),
                    "--log-entries-kept-after-snapshot".into(),
                    "5".into(),
                ],
                process: None,
            }
        })
        .collect()
}

fn client_of(addresses: &[String]) -> RegistryClient {
    let connection = ClientConfig::new(String::new())
        .with_connect_timeout(Duration::from_millis(500))
        .with_request_timeout(Duration::from_secs(3))
        .with_total_timeout(Duration::from_secs(20));
    RegistryClient::new(
        RegistryClientConfig::new(addresses.iter().map(|a| format!("http://{a}")))
            .with_connection(connection)
            // Bounded by the total timeout: enough to ride out an election.
            .with_attempts_max(1_000)
            .with_cache_ttl(Duration::ZERO),
    )
    .unwrap()
}

/// Waits until every running replica names the same leader, which says it leads;
/// its node id.
async fn wait_for_agreed_leader(members: &[Replica]) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut named = BTreeSet::new();
        let mut leading = BTreeSet::new();
        for member in members.iter().filter(|m| m.process.is_some()) {
            match status_of(&member.address()).await {
                Ok(status) => {
                    named.insert(status.leader_id);
                    if status.role == "leader" {
                        leading.insert(status.node_id);
                    }
                }
                Err(_) => {
                    named.insert(None);
                }
            }
        }
        if let (Some(Some(leader)), 1) = (named.first().copied(), named.len())
            && leading.contains(&leader)
        {
            return leader;
        }
        assert!(
            Instant::now() < deadline,
            "the registry replicas did not agree on a leader within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn code(n: u16) -> BranchCode {
    BranchCode::new(n).unwrap()
}

fn replicas_of(n: u16) -> Vec<ReplicaAddress> {
    (1..=3)
        .map(|id| ReplicaAddress::new(id, format!("10.0.{n}.{id}:8080")))
        .collect()
}

async fn register(client: &RegistryClient, n: u16) -> BranchView {
    let (branch, _created) = client
        .register_branch(code(n), &format!("Branch {n}"), "eu-south", &replicas_of(n))
        .await
        .unwrap_or_else(|error| panic!("registering branch {n}: {error}"));
    branch
}

/// A heartbeat from replica 1 of branch `n`, saying it leads in `term`.
async fn heartbeat(client: &RegistryClient, n: u16, term: u64) {
    let target = HeartbeatTarget {
        branch: code(n),
        node_id: 1,
        address: format!("10.0.{n}.1:8080"),
    };
    client
        .heartbeat(
            &target,
            ReplicaReport {
                is_leader: true,
                term,
                applied_index: 7,
            },
        )
        .await
        .unwrap_or_else(|error| panic!("heartbeat of branch {n}: {error}"));
}

fn codes(branches: &[BranchView]) -> Vec<u16> {
    branches.iter().map(|branch| branch.code.get()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_registries_survive_the_leader_killed_and_the_new_leader_takes_writes() {
    let root = tempfile::tempdir().unwrap();
    let mut members = three_members(root.path());
    for member in &mut members {
        member.start();
    }
    let addresses: Vec<String> = members.iter().map(Replica::address).collect();
    wait_for_leader(&members, &BTreeSet::new()).await;
    let client = client_of(&addresses);

    for n in 1..=30 {
        register(&client, n).await;
    }
    heartbeat(&client, 2, 4).await;
    assert_eq!(
        codes(&client.list_branches(None).await.unwrap()),
        (1..=30).collect::<Vec<_>>()
    );
    let (index_before, digest_before) = wait_for_convergence(&members, 31).await;

    // kill -9 the leader: no shutdown code runs.
    let leader = wait_for_agreed_leader(&members).await;
    let killed = members
        .iter_mut()
        .find(|m| m.id == leader)
        .expect("the leader is a member");
    killed.process.take().unwrap().kill();
    let new_leader = wait_for_leader(&members, &BTreeSet::from([leader])).await;
    assert_ne!(new_leader, leader);

    // The directory is all there, read through the new leader (the client moves on
    // from the dead address by itself).
    let branches = client.list_branches(None).await.unwrap();
    assert_eq!(codes(&branches), (1..=30).collect::<Vec<_>>());
    let porto = client.get_branch(code(2)).await.unwrap();
    assert_eq!(
        porto.leader,
        Some((1, 4)),
        "the heartbeat's leader survived"
    );
    assert_eq!(porto.replicas.len(), 3);

    // The new leader takes writes: new branches, a replica added, heartbeats.
    for n in 31..=40 {
        assert!(
            client
                .register_branch(code(n), &format!("Branch {n}"), "eu-north", &replicas_of(n))
                .await
                .unwrap()
                .1
        );
    }
    let added = client
        .add_replica(code(31), &ReplicaAddress::new(4, "10.0.31.4:8080"))
        .await
        .unwrap();
    assert_eq!(added.replicas.len(), 4);
    heartbeat(&client, 31, 1).await;
    assert_eq!(
        codes(&client.list_branches(Some("eu-north")).await.unwrap()),
        (31..=40).collect::<Vec<_>>()
    );

    // The two survivors agree; the old leader, restarted on its data directory,
    // catches up (from the log or a snapshot) to the same directory.
    let (index_two, digest_two) = wait_for_convergence(&members, index_before + 12).await;
    assert_ne!(digest_two, digest_before);
    let killed = members.iter_mut().find(|m| m.id == leader).unwrap();
    killed.start();
    let (index_three, digest_three) = wait_for_convergence(&members, index_two).await;
    assert!(index_three >= index_two);
    assert_eq!(
        digest_three, digest_two,
        "no write after the survivors agreed"
    );
    let restarted = status_of(&members.iter().find(|m| m.id == leader).unwrap().address())
        .await
        .unwrap();
    assert_eq!(restarted.members.len(), 3);

    for member in &mut members {
        if let Some(process) = member.process.take() {
            assert!(process.stop_with_status().success());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_killed_and_restarted_finds_its_directory_intact() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("registry");
    let port = free_ports(1)[0];
    let args: Vec<String> = [
        "--insecure",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--admin",
        "127.0.0.1:0",
        "--snapshot-every-entries",
        "10",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let process = start_registry(&dir, &args);
    assert_eq!(process.grpc.port(), port);
    assert!(process.admin.is_some());
    let client = client_of(&[format!("127.0.0.1:{port}")]);
    for n in 1..=25 {
        register(&client, n).await;
    }
    heartbeat(&client, 7, 3).await;
    client
        .update_branch(code(9), Some("Braga"), None)
        .await
        .unwrap();
    client.remove_replica(code(12), 3).await.unwrap();
    let before = client.list_branches(None).await.unwrap();
    let status_before = status_of(&format!("127.0.0.1:{port}")).await.unwrap();
    assert!(
        dir.join("snapshot.bin").exists(),
        "25+ entries with a snapshot every 10 leave a snapshot"
    );

    process.kill();
    let process = start_registry(&dir, &args);
    let after = client.list_branches(None).await.unwrap();
    let status_after = status_of(&format!("127.0.0.1:{port}")).await.unwrap();
    assert_eq!(codes(&after), (1..=25).collect::<Vec<_>>());
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old.code, new.code);
        assert_eq!(old.name, new.name);
        assert_eq!(old.region, new.region);
        assert_eq!(old.leader, new.leader);
        assert_eq!(old.registered_at_unix_ms, new.registered_at_unix_ms);
        let ids = |b: &BranchView| {
            b.replicas
                .iter()
                .map(|r| (r.node_id, r.address.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(old), ids(new));
    }
    assert_eq!(after[8].name, "Braga");
    assert_eq!(after[11].replicas.len(), 2);
    assert_eq!(after[6].leader, Some((1, 3)));
    assert_eq!(status_after.state_digest, status_before.state_digest);
    assert!(status_after.last_applied_index >= status_before.last_applied_index);

    // It takes writes again, and a clean stop (SIGTERM) exits with success.
    register(&client, 26).await;
    assert!(process.stop_with_status().success());
    let process = start_registry(&dir, &args);
    assert_eq!(client.list_branches(None).await.unwrap().len(), 26);
    assert!(process.stop_with_status().success());
}
