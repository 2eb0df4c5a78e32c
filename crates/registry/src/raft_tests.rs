//! The registry's Raft store on a real data directory: the snapshot file round trip
//! and its damage checks, commands through the log, restarts (log replay, snapshot +
//! replay), refusals on a replica that does not lead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use corebank_account_number::BranchCode;
use corebank_raft_net::{GrpcNetwork, PeerSettings};

use crate::raft_state_machine::{SNAPSHOT_FILE, decode_snapshot_file, encode_snapshot_file};
use crate::raft_store::{LogId, SnapshotMeta, StoredMembership};
use crate::{
    Applied, Directory, RaftStore, RaftStoreConfig, RaftStoreError, RegistryCommand, RegistryStore,
    RegistryTypeConfig, ReplicaAddress, StateMachineError, StoreError,
};

fn register(n: u16) -> RegistryCommand {
    RegistryCommand::RegisterBranch {
        code: BranchCode::new(n).unwrap(),
        name: format!("Branch {n}"),
        region: "eu-south".into(),
        replicas: (1..=3)
            .map(|id| ReplicaAddress::new(id, format!("10.0.{n}.{id}:8080")))
            .collect(),
        at_unix_ms: 1_700_000_000_000,
    }
}

fn directory_of(branches: u16) -> Directory {
    let mut directory = Directory::new();
    for n in 1..=branches {
        directory.apply(&register(n)).unwrap();
    }
    directory
}

fn meta() -> SnapshotMeta {
    let membership = openraft::Membership::new(
        vec![std::collections::BTreeSet::from([1, 2, 3])],
        BTreeMap::from([
            (1, openraft::BasicNode::new("127.0.0.1:9090")),
            (2, openraft::BasicNode::new("127.0.0.1:9091")),
            (3, openraft::BasicNode::new("127.0.0.1:9092")),
        ]),
    );
    let log_id = LogId::new(openraft::CommittedLeaderId::new(3, 1), 42);
    SnapshotMeta {
        last_log_id: Some(log_id),
        last_membership: StoredMembership::new(
            Some(LogId::new(openraft::CommittedLeaderId::new(1, 1), 1)),
            membership,
        ),
        snapshot_id: "3-42-0".into(),
    }
}

#[test]
fn the_snapshot_file_round_trips() {
    let directory = directory_of(5);
    let bytes = directory.to_snapshot_bytes().unwrap();
    let file = encode_snapshot_file(&meta(), &bytes).unwrap();
    let (read_meta, read_directory, read_bytes) = decode_snapshot_file(&file).unwrap();
    assert_eq!(read_meta, meta());
    assert_eq!(read_directory, directory);
    assert_eq!(read_bytes, bytes);
    // Equal directories, equal bytes: the file is deterministic.
    assert_eq!(encode_snapshot_file(&meta(), &bytes).unwrap(), file);
}

#[test]
fn a_damaged_snapshot_file_is_never_read() {
    let bytes = directory_of(3).to_snapshot_bytes().unwrap();
    let file = encode_snapshot_file(&meta(), &bytes).unwrap();
    // Every single flipped byte is caught.
    for position in 0..file.len() {
        let mut damaged = file.clone();
        damaged[position] ^= 0x20;
        assert!(
            decode_snapshot_file(&damaged).is_err(),
            "a flipped byte at {position} went unnoticed"
        );
    }
    // Every truncation too.
    for length in 0..file.len() {
        assert!(decode_snapshot_file(&file[..length]).is_err(), "{length}");
    }
    let mut longer = file.clone();
    longer.push(0);
    assert!(decode_snapshot_file(&longer).is_err());
    assert!(decode_snapshot_file(&[]).is_err());
}

fn network() -> GrpcNetwork<RegistryTypeConfig> {
    GrpcNetwork::new(PeerSettings::default())
}

fn config(dir: &std::path::Path) -> RaftStoreConfig {
    RaftStoreConfig::new(dir)
}

async fn registered(store: &RaftStore, n: u16) -> bool {
    match store.propose(register(n)).await.unwrap().unwrap() {
        Applied::Registered { created, .. } => created,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_go_through_the_log_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = RaftStore::open(config(dir.path()), network())
        .await
        .unwrap();
    assert!(store.is_leader());
    assert!(registered(&store, 1).await);
    assert!(!registered(&store, 1).await, "idempotent");
    assert!(registered(&store, 2).await);
    // A refusal by the directory is an answer, not a store failure.
    let refused = store
        .propose(RegistryCommand::RemoveReplica {
            code: BranchCode::new(9).unwrap(),
            node_id: 1,
        })
        .await
        .unwrap();
    assert!(refused.is_err());
    assert_eq!(store.read(Directory::len).await.unwrap(), 2);
    let (index, digest) = store.state_digest().unwrap();
    assert!(index >= 4, "{index}");
    store.shutdown().await;
    drop(store);

    let store = RaftStore::open(config(dir.path()), network())
        .await
        .unwrap();
    assert_eq!(store.read(Directory::len).await.unwrap(), 2);
    assert_eq!(store.state_digest().unwrap().1, digest);
    assert!(registered(&store, 3).await);
    store.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_compacts_the_log_and_restart_is_snapshot_plus_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = RaftStore::open(
        RaftStoreConfig {
            log_entries_kept_after_snapshot: 0,
            ..config(dir.path())
        },
        network(),
    )
    .await
    .unwrap();
    for n in 1..=5 {
        assert!(registered(&store, n).await);
    }
    store.snapshot().await.unwrap();
    assert!(dir.path().join(SNAPSHOT_FILE).exists());
    for n in 6..=7 {
        assert!(registered(&store, n).await);
    }
    let expected = store.read(Directory::clone).await.unwrap();
    store.shutdown().await;
    drop(store);

    let store = RaftStore::open(config(dir.path()), network())
        .await
        .unwrap();
    assert_eq!(store.read(Directory::clone).await.unwrap(), expected);
    assert_eq!(store.read(Directory::len).await.unwrap(), 7);
    store.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = RaftStore::open(config(dir.path()), network())
        .await
        .unwrap();
    assert!(registered(&store, 1).await);
    store.snapshot().await.unwrap();
    store.shutdown().await;
    drop(store);

    let path = dir.path().join(SNAPSHOT_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let error = RaftStore::open(config(dir.path()), network())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            RaftStoreError::StateMachine(StateMachineError::DamagedSnapshot { .. })
        ),
        "{error}"
    );
    assert!(error.to_string().contains("refusing to start"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("something.txt"), "not a registry").unwrap();
    let error = RaftStore::open(config(dir.path()), network())
        .await
        .unwrap_err();
    assert!(matches!(error, RaftStoreError::DataDir { .. }), "{error}");

    let branch = tempfile::tempdir().unwrap();
    std::fs::write(
        branch.path().join("DATA_VERSION"),
        "corebank-branch-data 1\n",
    )
    .unwrap();
    let error = RaftStore::open(config(branch.path()), network())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("another format"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_waiting_to_join_refuses_without_proposing() {
    let dir = tempfile::tempdir().unwrap();
    let store = RaftStore::open(
        RaftStoreConfig {
            node_id: 4,
            join: true,
            ..config(dir.path())
        },
        network(),
    )
    .await
    .unwrap();
    assert!(!store.is_leader());
    assert_eq!(
        store.propose(register(1)).await,
        Err(StoreError::NotLeader { leader: None })
    );
    assert!(matches!(
        store.read(Directory::len).await,
        Err(StoreError::NotLeader { leader: None })
    ));
    assert_eq!(store.applied_index(), 0);
    store.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn founding_members_must_include_this_replica() {
    let dir = tempfile::tempdir().unwrap();
    let error = RaftStore::open(
        RaftStoreConfig {
            node_id: 4,
            initial_members: BTreeMap::from([(1, "127.0.0.1:1".to_owned())]),
            ..config(dir.path())
        },
        network(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, RaftStoreError::Members(_)), "{error}");
}
