//! Property tests of the directory: random command sequences over a small world of
//! branches, node ids and addresses, so that successes and every kind of refusal
//! both happen often.
//!
//! - determinism: two directories fed the same commands answer alike and encode to
//!   the same bytes;
//! - invariants hold after every command, and a refused command changes nothing;
//! - a plain model (branch → node id → address) agrees with the directory;
//! - snapshots round-trip; arbitrary bytes never decode into a broken directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use corebank_account_number::BranchCode;
use corebank_registry::{Applied, Directory, HeartbeatReport, RegistryCommand, ReplicaAddress};
use proptest::prelude::*;

const ADDRESSES: [&str; 9] = [
    "10.0.0.1:8080",
    "10.0.0.2:8080",
    "10.0.0.3:8080",
    "10.0.0.4:8080",
    "https://b5.bank.example:8080",
    "[::1]:8081",
    "h7:1",
    "h8:2",
    "no-port", // invalid
];
const NAMES: [&str; 4] = ["Porto", "Lisboa", "Faro", " bad"];

fn code() -> impl Strategy<Value = BranchCode> {
    (0u16..4).prop_map(|n| BranchCode::new(n).unwrap())
}

fn address() -> impl Strategy<Value = String> {
    prop::sample::select(&ADDRESSES[..]).prop_map(str::to_owned)
}

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(&NAMES[..]).prop_map(str::to_owned)
}

fn replica() -> impl Strategy<Value = ReplicaAddress> {
    (0u64..5, address()).prop_map(|(node_id, address)| ReplicaAddress { node_id, address })
}

fn command() -> impl Strategy<Value = RegistryCommand> {
    prop_oneof![
        3 => (code(), name(), name(), prop::collection::vec(replica(), 0..5), 0u64..1_000)
            .prop_map(|(code, name, region, replicas, at_unix_ms)| {
                RegistryCommand::RegisterBranch { code, name, region, replicas, at_unix_ms }
            }),
        1 => (code(), prop::option::of(name()), prop::option::of(name()))
            .prop_map(|(code, name, region)| RegistryCommand::UpdateBranch { code, name, region }),
        2 => (code(), replica())
            .prop_map(|(code, replica)| RegistryCommand::AddReplica { code, replica }),
        1 => (code(), 0u64..5)
            .prop_map(|(code, node_id)| RegistryCommand::RemoveReplica { code, node_id }),
        5 => (code(), 0u64..5, address(), any::<bool>(), 0u64..4, 0u64..50, 0u64..1_000)
            .prop_map(|(code, node_id, address, is_leader, term, applied_index, at_unix_ms)| {
                RegistryCommand::Heartbeat(HeartbeatReport {
                    code, node_id, address, is_leader, term, applied_index, at_unix_ms,
                })
            }),
    ]
}

/// The model: which replica addresses each branch has.
type Model = BTreeMap<u16, BTreeMap<u64, String>>;

fn model_of(directory: &Directory) -> Model {
    directory
        .branches()
        .map(|branch| {
            let replicas = branch
                .replicas
                .iter()
                .map(|r| (r.node_id, r.address.clone()))
                .collect();
            (branch.code.get(), replicas)
        })
        .collect()
}

/// What a successful command does to the model.
fn step(model: &mut Model, command: &RegistryCommand) {
    match command {
        RegistryCommand::RegisterBranch { code, replicas, .. } => {
            model.entry(code.get()).or_insert_with(|| {
                replicas
                    .iter()
                    .map(|r| (r.node_id, r.address.clone()))
                    .collect()
            });
        }
        RegistryCommand::AddReplica { code, replica } => {
            if let Some(replicas) = model.get_mut(&code.get()) {
                replicas
                    .entry(replica.node_id)
                    .or_insert_with(|| replica.address.clone());
            }
        }
        RegistryCommand::RemoveReplica { code, node_id } => {
            if let Some(replicas) = model.get_mut(&code.get()) {
                replicas.remove(node_id);
            }
        }
        RegistryCommand::UpdateBranch { .. }
        | RegistryCommand::Heartbeat(_)
        | RegistryCommand::Identity(_) => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_directory_is_deterministic_and_keeps_its_invariants(
        commands in prop::collection::vec(command(), 1..60)
    ) {
        let mut directory = Directory::new();
        let mut twin = Directory::new();
        let mut model = Model::new();
        for command in &commands {
            let before = directory.to_snapshot_bytes().unwrap();
            let response = directory.apply(command);
            prop_assert_eq!(&response, &twin.apply(command));
            prop_assert!(directory.check_invariants().is_ok(), "{:?}", directory.check_invariants());
            match &response {
                Ok(outcome) => {
                    step(&mut model, command);
                    if let Applied::Heartbeat { leader, leader_address } = outcome {
                        prop_assert_eq!(leader.is_some(), leader_address.is_some());
                    }
                }
                Err(_) => prop_assert_eq!(directory.to_snapshot_bytes().unwrap(), before),
            }
            prop_assert_eq!(model_of(&directory), model.clone());
        }
        let bytes = directory.to_snapshot_bytes().unwrap();
        prop_assert_eq!(&bytes, &twin.to_snapshot_bytes().unwrap());
        let restored = Directory::from_snapshot_bytes(&bytes).unwrap();
        prop_assert_eq!(&restored, &directory);
        prop_assert_eq!(restored.digest().unwrap(), directory.digest().unwrap());
    }

    #[test]
    fn arbitrary_bytes_never_decode_into_a_broken_directory(
        bytes in prop::collection::vec(any::<u8>(), 0..200)
    ) {
        if let Ok(directory) = Directory::from_snapshot_bytes(&bytes) {
            prop_assert!(directory.check_invariants().is_ok());
        }
    }

    #[test]
    fn arbitrary_payloads_with_a_valid_frame_are_checked(
        payload in prop::collection::vec(any::<u8>(), 0..200)
    ) {
        let mut bytes = corebank_registry::SNAPSHOT_MAGIC.to_vec();
        bytes.extend_from_slice(&corebank_registry::SNAPSHOT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(blake3::hash(&payload).as_bytes());
        bytes.extend_from_slice(&payload);
        if let Ok(directory) = Directory::from_snapshot_bytes(&bytes) {
            prop_assert!(directory.check_invariants().is_ok());
        }
    }
}
