#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use corebank_account_number::{AccountNumber, BankPrefix, BranchCode};
use corebank_proto::{ApiError, ErrorCode, v1};
use corebank_security::Scope;
use serde::Serialize;

use super::*;

fn code(n: u16) -> BranchCode {
    BranchCode::new(n).unwrap()
}

fn register(n: u16, replicas: &[(u64, &str)], at: u64) -> RegistryCommand {
    RegistryCommand::RegisterBranch {
        code: code(n),
        name: format!("Branch {n}"),
        region: "eu-south".into(),
        replicas: replicas
            .iter()
            .map(|(id, address)| ReplicaAddress::new(*id, *address))
            .collect(),
        at_unix_ms: at,
    }
}

fn beat(
    n: u16,
    node_id: u64,
    address: &str,
    is_leader: bool,
    term: u64,
    at: u64,
) -> RegistryCommand {
    RegistryCommand::Heartbeat(HeartbeatReport {
        code: code(n),
        node_id,
        address: address.into(),
        is_leader,
        term,
        applied_index: at / 10,
        at_unix_ms: at,
    })
}

fn addresses(n: u16) -> Vec<(u64, String)> {
    (1..=3)
        .map(|id| (id, format!("10.0.{n}.{id}:8080")))
        .collect()
}

fn register3(n: u16, at: u64) -> RegistryCommand {
    let owned = addresses(n);
    let borrowed: Vec<(u64, &str)> = owned.iter().map(|(id, a)| (*id, a.as_str())).collect();
    register(n, &borrowed, at)
}

fn three_branches() -> Directory {
    let mut directory = Directory::new();
    for n in [1, 2, 3] {
        assert!(directory.apply(&register3(n, 1_000)).is_ok());
    }
    directory
}

fn bytes(directory: &Directory) -> Vec<u8> {
    directory.to_snapshot_bytes().unwrap()
}

#[test]
fn registering_is_idempotent_for_the_same_settings_only() {
    let mut directory = Directory::new();
    let first = directory.apply(&register3(2, 1_000)).unwrap();
    let Applied::Registered { branch, created } = first else {
        panic!("{first:?}")
    };
    assert!(created);
    assert_eq!(branch.code, code(2));
    assert_eq!(branch.registered_at_unix_ms, 1_000);
    assert_eq!(branch.replicas.len(), 3);
    assert_eq!(branch.leader, None);

    // Again, later, replicas in another order: the same registration.
    let owned = addresses(2);
    let reversed: Vec<(u64, &str)> = owned.iter().rev().map(|(i, a)| (*i, a.as_str())).collect();
    let again = directory.apply(&register(2, &reversed, 5_000)).unwrap();
    assert_eq!(
        again,
        Applied::Registered {
            branch: branch.clone(),
            created: false
        }
    );

    // Other settings: refused, nothing changed.
    let before = bytes(&directory);
    let other = directory.apply(&register(2, &[(1, "10.9.9.9:8080")], 6_000));
    assert_eq!(other, Err(CommandError::BranchExists { code: 2 }));
    assert_eq!(bytes(&directory), before);
}

/// One scenario per refusal code; a code without one fails the test. Every refusal
/// leaves the directory exactly as it was.
#[test]
fn every_command_error_has_a_scenario_and_changes_nothing() {
    let long = "x".repeat(NAME_BYTES_MAX + 1);
    let rename = |name: Option<&str>, region: Option<&str>| RegistryCommand::UpdateBranch {
        code: code(1),
        name: name.map(str::to_owned),
        region: region.map(str::to_owned),
    };
    let add = |n: u16, id: u64, address: &str| RegistryCommand::AddReplica {
        code: code(n),
        replica: ReplicaAddress::new(id, address),
    };
    let remove = |n: u16, id: u64| RegistryCommand::RemoveReplica {
        code: code(n),
        node_id: id,
    };
    let mut full = three_branches();
    for id in 4..=7 {
        full.apply(&add(1, id, &format!("10.0.1.{id}:8080")))
            .unwrap();
    }
    let mut single = Directory::new();
    single
        .apply(&register(9, &[(1, "10.0.9.1:8080")], 1))
        .unwrap();

    let scenarios: Vec<(Directory, RegistryCommand, &str)> = vec![
        (three_branches(), rename(Some(""), None), "invalid_name"),
        (three_branches(), rename(Some(&long), None), "invalid_name"),
        (
            three_branches(),
            rename(None, Some(" eu")),
            "invalid_region",
        ),
        (
            three_branches(),
            rename(None, Some("eu\n")),
            "invalid_region",
        ),
        (three_branches(), add(1, 9, "10.0.1.9"), "invalid_address"),
        (three_branches(), add(1, 9, "ftp://h:1"), "invalid_address"),
        (three_branches(), register(5, &[], 1), "no_replicas"),
        (
            three_branches(),
            register(
                5,
                &[
                    (1, "a:1"),
                    (2, "a:2"),
                    (3, "a:3"),
                    (4, "a:4"),
                    (5, "a:5"),
                    (6, "a:6"),
                    (7, "a:7"),
                    (8, "a:8"),
                ],
                1,
            ),
            "too_many_replicas",
        ),
        (
            three_branches(),
            register(5, &[(1, "a:1"), (1, "a:2")], 1),
            "duplicate_node_id",
        ),
        (
            three_branches(),
            register(5, &[(1, "a:1"), (2, "a:1")], 1),
            "duplicate_address",
        ),
        (three_branches(), rename(None, None), "nothing_to_update"),
        (
            three_branches(),
            register(1, &[(1, "10.0.1.1:8080")], 1),
            "branch_exists",
        ),
        (
            three_branches(),
            beat(4, 1, "10.0.4.1:8080", true, 1, 1),
            "branch_not_found",
        ),
        (three_branches(), remove(1, 42), "replica_not_found"),
        (
            three_branches(),
            beat(1, 42, "10.0.1.42:8080", true, 1, 1),
            "replica_not_found",
        ),
        (
            three_branches(),
            add(1, 2, "10.0.1.99:8080"),
            "node_id_taken",
        ),
        (
            three_branches(),
            add(1, 4, "10.0.2.1:8080"),
            "address_taken",
        ),
        (
            three_branches(),
            register(5, &[(1, "10.0.3.3:8080")], 1),
            "address_taken",
        ),
        (
            three_branches(),
            beat(1, 1, "10.0.1.2:8080", true, 1, 1),
            "replica_address_mismatch",
        ),
        (single, remove(9, 1), "last_replica"),
        (full, add(1, 8, "10.0.1.8:8080"), "replicas_full"),
    ];
    let mut seen = BTreeSet::new();
    for (mut directory, command, expected) in scenarios {
        let before = bytes(&directory);
        let error = directory.apply(&command).expect_err(expected);
        assert_eq!(error.code(), expected, "{command:?}: {error}");
        assert_eq!(
            bytes(&directory),
            before,
            "{expected} changed the directory"
        );
        assert!(!error.to_string().is_empty());
        let api = errors::command_error(&error);
        assert_eq!(api.reason, expected);
        seen.insert(expected);
    }
    let all: BTreeSet<&str> = CommandError::CODES.iter().copied().collect();
    assert_eq!(seen, all, "every code needs a scenario");
}

#[test]
fn leadership_follows_heartbeats_and_terms() {
    let mut directory = three_branches();
    let a = "10.0.2.1:8080";
    let b = "10.0.2.2:8080";
    let leader_of = |d: &Directory| d.branch(code(2)).unwrap().leader;

    // Follower heartbeats name no leader.
    directory.apply(&beat(2, 2, b, false, 1, 10_000)).unwrap();
    assert_eq!(leader_of(&directory), None);

    // Replica 1 leads in term 1.
    let applied = directory.apply(&beat(2, 1, a, true, 1, 10_010)).unwrap();
    assert_eq!(
        applied,
        Applied::Heartbeat {
            leader: Some(Leader {
                node_id: 1,
                term: 1
            }),
            leader_address: Some(a.into())
        }
    );

    // Replica 2 is elected in term 2 while 1 still believes it leads (term 1):
    // the higher term wins, the stale claim does not take it back.
    directory.apply(&beat(2, 2, b, true, 2, 10_020)).unwrap();
    directory.apply(&beat(2, 1, a, true, 1, 10_030)).unwrap();
    assert_eq!(
        leader_of(&directory),
        Some(Leader {
            node_id: 2,
            term: 2
        })
    );
    let route = directory.resolve_id(20_000_001_000).unwrap();
    assert_eq!(route.leader, Some(ReplicaAddress::new(2, b)));

    // A follower of term 2 saying it does not lead changes nothing.
    directory.apply(&beat(2, 1, a, false, 2, 10_040)).unwrap();
    assert_eq!(
        leader_of(&directory),
        Some(Leader {
            node_id: 2,
            term: 2
        })
    );

    // The leader stepping down clears the record.
    directory.apply(&beat(2, 2, b, false, 3, 10_050)).unwrap();
    assert_eq!(leader_of(&directory), None);
    assert_eq!(directory.resolve_id(20_000_001_000).unwrap().leader, None);

    // The replica records what it reported last.
    let replica = directory
        .branch(code(2))
        .unwrap()
        .replica(2)
        .unwrap()
        .clone();
    assert_eq!(replica.last_heartbeat_unix_ms, Some(10_050));
    assert_eq!(replica.term, 3);
    assert_eq!(replica.applied_index, 1_005);
    assert!(!replica.claims_leader);
}

#[test]
fn an_older_heartbeat_is_not_recorded() {
    let mut directory = three_branches();
    let a = "10.0.1.1:8080";
    directory.apply(&beat(1, 1, a, true, 4, 20_000)).unwrap();
    let before = bytes(&directory);
    // Stamped earlier (a registry leader whose clock runs behind): answered, not kept.
    let applied = directory.apply(&beat(1, 1, a, false, 5, 19_000)).unwrap();
    assert_eq!(
        applied,
        Applied::Heartbeat {
            leader: Some(Leader {
                node_id: 1,
                term: 4
            }),
            leader_address: Some(a.into())
        }
    );
    assert_eq!(bytes(&directory), before);
}

#[test]
fn replicas_are_added_in_order_and_removed_with_their_leadership() {
    let mut directory = three_branches();
    let add = RegistryCommand::AddReplica {
        code: code(3),
        replica: ReplicaAddress::new(0, "10.0.3.0:8080"),
    };
    let Applied::Updated { branch, changed } = directory.apply(&add).unwrap() else {
        panic!()
    };
    assert!(changed);
    let ids: Vec<u64> = branch.replicas.iter().map(|r| r.node_id).collect();
    assert_eq!(ids, [0, 1, 2, 3]);
    // Again: nothing new.
    assert!(matches!(
        directory.apply(&add).unwrap(),
        Applied::Updated { changed: false, .. }
    ));

    directory
        .apply(&beat(3, 2, "10.0.3.2:8080", true, 7, 1))
        .unwrap();
    let remove = RegistryCommand::RemoveReplica {
        code: code(3),
        node_id: 2,
    };
    let Applied::Updated { branch, .. } = directory.apply(&remove).unwrap() else {
        panic!()
    };
    assert_eq!(branch.leader, None);
    assert!(branch.replica(2).is_none());
    // Its address is free again.
    let back = RegistryCommand::AddReplica {
        code: code(1),
        replica: ReplicaAddress::new(9, "10.0.3.2:8080"),
    };
    assert!(directory.apply(&back).is_ok());
}

#[test]
fn renaming_reports_whether_anything_changed() {
    let mut directory = three_branches();
    let rename = |name: &str| RegistryCommand::UpdateBranch {
        code: code(1),
        name: Some(name.into()),
        region: None,
    };
    let Applied::Updated { branch, changed } = directory.apply(&rename("Lisboa")).unwrap() else {
        panic!()
    };
    assert!(changed);
    assert_eq!(branch.name, "Lisboa");
    assert_eq!(branch.region, "eu-south");
    assert!(matches!(
        directory.apply(&rename("Lisboa")).unwrap(),
        Applied::Updated { changed: false, .. }
    ));
}

#[test]
fn accounts_resolve_by_number_and_by_id() {
    let mut directory = three_branches();
    directory
        .apply(&beat(2, 3, "10.0.2.3:8080", true, 1, 5))
        .unwrap();
    let number = AccountNumber::new(BankPrefix::COREBANK, code(2), 1_000).unwrap();
    assert_eq!(number.to_string(), "XC06CORE00020000001000");

    let by_number = directory.resolve(&number.to_string()).unwrap();
    let printed = directory.resolve(&number.to_printed()).unwrap();
    let by_id = directory.resolve_id(number.account_id()).unwrap();
    let by_digits = directory.resolve("20000001000").unwrap();
    assert_eq!(by_number, printed);
    assert_eq!(by_number, by_id);
    assert_eq!(by_number, by_digits);
    assert_eq!(by_number.account_id, 20_000_001_000);
    assert_eq!(by_number.branch, code(2));
    assert_eq!(
        by_number.leader,
        Some(ReplicaAddress::new(3, "10.0.2.3:8080"))
    );
    assert_eq!(
        by_number
            .replicas
            .iter()
            .map(|r| r.node_id)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Another bank's prefix is a valid number: the directory routes it (the service
    // checks the prefix).
    let foreign = AccountNumber::new(BankPrefix::new("XD", "BANK").unwrap(), code(2), 5).unwrap();
    assert_eq!(directory.resolve_number(&foreign).unwrap().branch, code(2));
}

#[test]
fn bad_accounts_and_unknown_branches_are_named() {
    let directory = three_branches();
    let code_of = |account: &str| directory.resolve(account).unwrap_err().code();
    assert_eq!(code_of("XC14CORE00020000001001"), "bad_check_digits");
    assert_eq!(code_of("XC14CORE0002"), "wrong_length");
    assert_eq!(code_of(""), "empty");
    assert_eq!(code_of("XC14-CORE"), "bad_character");
    assert_eq!(code_of("0"), "account_id_zero");
    assert_eq!(code_of("100000000000000"), "account_id_out_of_range");
    assert_eq!(
        code_of("99999999999999999999999999999999999999999"),
        "account_id_out_of_range"
    );

    let unknown = AccountNumber::new(BankPrefix::COREBANK, code(4), 1_000).unwrap();
    let error = directory.resolve(&unknown.to_string()).unwrap_err();
    assert_eq!(error, LookupError::BranchNotFound { code: code(4) });
    assert_eq!(error.to_string(), "branch 0004 is not registered");
    assert_eq!(
        directory.resolve_id(40_000_001_000).unwrap_err().code(),
        "branch_not_found"
    );
    let api = errors::lookup_error(&error, "account_number");
    assert_eq!(api.code, ErrorCode::AccountNotFound);
    assert_eq!(api.reason, "branch_not_found");
    let invalid = errors::lookup_error(&directory.resolve("XC00").unwrap_err(), "account_number");
    assert_eq!(invalid.code, ErrorCode::InvalidAccountNumber);
    assert_eq!(invalid.field, "account_number");
}

#[test]
fn health_is_the_age_of_the_last_heartbeat() {
    let mut directory = three_branches();
    directory
        .apply(&beat(1, 1, "10.0.1.1:8080", true, 1, 100_000))
        .unwrap();
    directory
        .apply(&beat(1, 2, "10.0.1.2:8080", false, 1, 95_000))
        .unwrap();
    let health = |now| directory.health(code(1), now, 10_000).unwrap();
    assert_eq!(
        health(100_000),
        [
            (1, Health::Healthy),
            (2, Health::Healthy),
            (3, Health::NoHeartbeat)
        ]
    );
    assert_eq!(
        health(105_001),
        [
            (1, Health::Healthy),
            (2, Health::Stale),
            (3, Health::NoHeartbeat)
        ]
    );
    assert_eq!(
        health(110_000)[0],
        (1, Health::Healthy),
        "exactly the window"
    );
    assert_eq!(health(110_001)[0], (1, Health::Stale));
    assert_eq!(health(50_000)[0], (1, Health::Healthy), "a clock behind");
    assert_eq!(
        directory.health(code(7), 0, 1).unwrap_err().code(),
        "branch_not_found"
    );
}

#[test]
fn snapshots_round_trip_and_are_deterministic() {
    let commands: Vec<RegistryCommand> = vec![
        register3(3, 1),
        register3(1, 2),
        beat(1, 2, "10.0.1.2:8080", true, 1, 3),
        register3(2, 4),
        RegistryCommand::UpdateBranch {
            code: code(2),
            name: Some("Faro".into()),
            region: Some("eu-south-2".into()),
        },
        beat(3, 1, "10.0.3.1:8080", false, 0, 5),
    ];
    let mut a = Directory::new();
    let mut b = Directory::new();
    for command in &commands {
        let ra = a.apply(command);
        let rb = b.apply(command);
        assert_eq!(ra, rb);
    }
    assert_eq!(a, b);
    assert_eq!(bytes(&a), bytes(&b));
    assert_eq!(a.digest().unwrap(), b.digest().unwrap());
    let restored = Directory::from_snapshot_bytes(&bytes(&a)).unwrap();
    assert_eq!(restored, a);
    assert_eq!(
        a.branches().map(|b| b.code.get()).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        Directory::from_snapshot_bytes(&bytes(&Directory::new())).unwrap(),
        Directory::new()
    );
}

#[test]
fn damaged_snapshots_are_refused() {
    let good = bytes(&three_branches());
    // Every single flipped bit is caught.
    for index in 0..good.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[index] ^= bit;
            assert!(
                Directory::from_snapshot_bytes(&bad).is_err(),
                "byte {index} bit {bit:#x}"
            );
        }
    }
    for length in [0, 10, 51, 52, good.len() - 1] {
        assert!(
            Directory::from_snapshot_bytes(&good[..length]).is_err(),
            "{length}"
        );
    }
    let code_of = |bytes: &[u8]| Directory::from_snapshot_bytes(bytes).unwrap_err().code();
    assert_eq!(code_of(&good[..10]), "too_short");
    let mut wrong_magic = good.clone();
    wrong_magic[0] = b'X';
    assert_eq!(code_of(&wrong_magic), "bad_magic");
    let mut future = good.clone();
    future[8..12].copy_from_slice(&(SNAPSHOT_VERSION + 1).to_le_bytes());
    assert_eq!(code_of(&future), "unsupported_version");
    let mut huge = good.clone();
    huge[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(code_of(&huge), "too_large");
    let mut longer = good.clone();
    longer.push(0);
    assert_eq!(code_of(&longer), "length_mismatch");
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert_eq!(code_of(&flipped), "checksum_mismatch");

    // A payload with a valid checksum but trailing bytes, or breaking an invariant.
    let payload = &good[52..];
    let mut trailing = payload.to_vec();
    trailing.push(7);
    assert_eq!(code_of(&frame(&trailing)), "decode");
    assert_eq!(code_of(&frame(&[0xff; 9])), "decode");

    #[derive(Serialize)]
    struct Mirror {
        branches: BTreeMap<u16, Branch>,
        identity: corebank_identity::IdentityState,
    }
    let mut branch = three_branches().branch(code(1)).unwrap().clone();
    let misfiled = Mirror {
        branches: BTreeMap::from([(5, branch.clone())]),
        identity: corebank_identity::IdentityState::new(),
    };
    let encode =
        |m: &Mirror| bincode::serde::encode_to_vec(m, bincode::config::standard()).unwrap();
    assert_eq!(code_of(&frame(&encode(&misfiled))), "invariant");
    branch.leader = Some(Leader {
        node_id: 99,
        term: 1,
    });
    let ghost_leader = Mirror {
        branches: BTreeMap::from([(1, branch)]),
        identity: corebank_identity::IdentityState::new(),
    };
    let error = Directory::from_snapshot_bytes(&frame(&encode(&ghost_leader))).unwrap_err();
    assert!(error.to_string().contains("leader 99"), "{error}");
}

/// A snapshot around any payload, with a correct header and checksum.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut bytes = SNAPSHOT_MAGIC.to_vec();
    bytes.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(blake3::hash(payload).as_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn addresses_and_names() {
    for good in [
        "10.0.0.1:8080",
        "localhost:1",
        "https://branch-0001.bank.example:8080",
        "http://[::1]:9090",
        "[fe80::1]:65535",
    ] {
        assert_eq!(validate_address(good), Ok(()), "{good}");
    }
    let problem = |address: &str| match validate_address(address) {
        Err(CommandError::InvalidAddress { problem, .. }) => problem,
        other => panic!("{address}: {other:?}"),
    };
    assert_eq!(problem(""), AddressProblem::Empty);
    assert_eq!(
        problem(&"a".repeat(300)),
        AddressProblem::TooLong { bytes: 300 }
    );
    assert_eq!(problem("host name:80"), AddressProblem::BadCharacter);
    assert_eq!(problem("hôte:80"), AddressProblem::BadCharacter);
    assert_eq!(problem("grpc://h:80"), AddressProblem::BadScheme);
    assert_eq!(problem("h:80/path"), AddressProblem::BadScheme);
    assert_eq!(problem("user@h:80"), AddressProblem::BadScheme);
    assert_eq!(problem(":80"), AddressProblem::NoHost);
    assert_eq!(problem("[]:80"), AddressProblem::NoHost);
    assert_eq!(problem("h"), AddressProblem::BadPort);
    assert_eq!(problem("h:0"), AddressProblem::BadPort);
    assert_eq!(problem("h:65536"), AddressProblem::BadPort);
    assert_eq!(problem("h:+80"), AddressProblem::BadPort);
    assert_eq!(problem("::1:80"), AddressProblem::BadPort);

    assert_eq!(validate_text("Lisboa Baixa – 1"), Ok(()));
    assert_eq!(validate_text(""), Err(TextProblem::Empty));
    assert_eq!(validate_text("a\tb"), Err(TextProblem::ControlCharacter));
    assert_eq!(validate_text("a "), Err(TextProblem::SurroundingSpace));
    assert_eq!(
        validate_text(&"é".repeat(33)),
        Err(TextProblem::TooLong { bytes: 66 })
    );
}

#[test]
fn the_catalog_is_the_banks_tables() {
    assert_eq!(currencies(), corebank_money::CURRENCIES);
    assert!(
        currencies()
            .iter()
            .any(|c| c.alpha == "EUR" && c.numeric == 978)
    );
    let products = products();
    assert_eq!(
        products.map(|p| (p.name, p.account_code)),
        [("current", 10), ("savings", 11)]
    );
    assert!(products.iter().all(|p| !p.description.is_empty()));
    assert_eq!(product_to_proto(products[1].product), v1::Product::Savings);
}

#[test]
fn views_survive_the_wire() {
    let mut directory = three_branches();
    directory
        .apply(&beat(2, 2, "10.0.2.2:8080", true, 3, 1_000))
        .unwrap();
    directory
        .apply(&beat(2, 1, "10.0.2.1:8080", false, 3, 500))
        .unwrap();
    let branch = directory.branch(code(2)).unwrap();
    let view = BranchView::new(branch, 5_500, 4_700);
    assert_eq!(
        view.replicas.iter().map(|r| r.health).collect::<Vec<_>>(),
        [Health::Stale, Health::Healthy, Health::NoHeartbeat]
    );
    assert_eq!(view.leader_address(), Some("10.0.2.2:8080"));
    let info = v1::BranchInfo::from(&view);
    assert_eq!(info.leader_node_id, Some(2));
    assert_eq!(info.replicas[2].last_heartbeat_unix_ms, 0);
    assert_eq!(BranchView::try_from(&info).unwrap(), view);

    let number = AccountNumber::new(BankPrefix::COREBANK, code(2), 1_000).unwrap();
    let route = AccountRoute {
        account_number: number,
        account_id: number.account_id(),
        branch: view.clone(),
    };
    assert_eq!(
        route.addresses_to_try(),
        ["10.0.2.2:8080", "10.0.2.1:8080", "10.0.2.3:8080"]
    );
    let message = v1::AccountRoute::from(&route);
    assert_eq!(AccountRoute::try_from(&message).unwrap(), route);

    // Inconsistent answers are refused.
    let mut two_leaders = info.clone();
    two_leaders.replicas[0].leader = true;
    assert!(BranchView::try_from(&two_leaders).is_err());
    let mut bad_code = info.clone();
    bad_code.branch = 10_000;
    assert!(BranchView::try_from(&bad_code).is_err());
    let mut no_health = info;
    no_health.replicas[0].health = 0;
    assert!(BranchView::try_from(&no_health).is_err());
    let mut elsewhere = message.clone();
    elsewhere.branch.as_mut().unwrap().branch = 3;
    assert!(AccountRoute::try_from(&elsewhere).is_err());
    let mut wrong_id = message;
    wrong_id.account_id = corebank_proto::convert::u128_field(5);
    assert!(AccountRoute::try_from(&wrong_id).is_err());
}

#[test]
fn store_errors_keep_the_leader_for_the_client() {
    let status = errors::store_error(&StoreError::NotLeader {
        leader: Some("10.1.0.2:9090".into()),
    })
    .to_status();
    let back = ApiError::from_status(&status).unwrap();
    assert_eq!(back.code, ErrorCode::NotLeader);
    assert_eq!(back.leader.as_deref(), Some("10.1.0.2:9090"));
    assert!(back.message.contains("registry"), "{}", back.message);
    let unknown = errors::store_error(&StoreError::NotLeader { leader: None });
    assert_eq!(unknown.leader, None);
    assert_eq!(
        errors::store_error(&StoreError::Unavailable {
            message: "no quorum".into()
        })
        .code,
        ErrorCode::Unavailable
    );
}

#[test]
fn scopes_per_rpc() {
    let admin: Vec<&str> = RegistryRpc::ALL
        .iter()
        .filter(|rpc| rpc.scope() == Scope::Admin)
        .map(|rpc| rpc.name())
        .collect();
    assert_eq!(
        admin,
        [
            "RegisterBranch",
            "UpdateBranch",
            "AddBranchReplica",
            "RemoveBranchReplica"
        ]
    );
    assert_eq!(RegistryRpc::Heartbeat.scope(), Scope::Transfer);
    assert_eq!(RegistryRpc::ResolveAccount.scope(), Scope::Read);
    // Every RPC of the proto file is in the table, in order.
    let proto = include_str!("../../proto/proto/corebank/v1/registry.proto");
    let names: Vec<&str> = proto
        .lines()
        .filter_map(|line| line.trim().strip_prefix("rpc "))
        .filter_map(|rest| rest.split('(').next())
        .collect();
    let table: Vec<&str> = RegistryRpc::ALL.iter().map(|rpc| rpc.name()).collect();
    assert_eq!(names, table);
}

#[test]
fn the_memory_store_applies_and_reads() {
    let store = MemoryStore::new();
    let response = store.apply(&register3(1, 1)).unwrap();
    assert!(response.is_ok());
    assert_eq!(store.read_now(Directory::len).unwrap(), 1);
    let refused = store.apply(&register(1, &[(1, "x:1")], 1)).unwrap();
    assert_eq!(refused.unwrap_err().code(), "branch_exists");
    let copy = MemoryStore::with_directory(store.read_now(Clone::clone).unwrap());
    assert_eq!(
        copy.read_now(|d| d.branch(code(1)).cloned())
            .unwrap()
            .unwrap()
            .name,
        "Branch 1"
    );
}

#[test]
fn commands_survive_the_log_encoding() {
    let commands = [
        register3(7, 1),
        beat(7, 1, "10.0.7.1:8080", true, 2, 3),
        RegistryCommand::RemoveReplica {
            code: code(7),
            node_id: 3,
        },
    ];
    for command in &commands {
        let bytes = bincode::serde::encode_to_vec(command, bincode::config::standard()).unwrap();
        let (back, _): (RegistryCommand, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(&back, command);
    }
    // A branch code above 9999 does not decode.
    let mut bytes =
        bincode::serde::encode_to_vec(&commands[2], bincode::config::standard()).unwrap();
    // Variant 3 (RemoveReplica), then the code as a varint u16: 251 = u16 follows.
    assert_eq!(bytes[0], 3);
    bytes.splice(1..2, [251, 0x10, 0x27]); // 10_000
    let decoded: Result<(RegistryCommand, usize), _> =
        bincode::serde::decode_from_slice(&bytes, bincode::config::standard());
    assert!(decoded.is_err());
    let response: RegistryResponse = Err(CommandError::LastReplica {
        code: 7,
        node_id: 3,
    });
    let bytes = bincode::serde::encode_to_vec(&response, bincode::config::standard()).unwrap();
    let (back, _): (RegistryResponse, usize) =
        bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
    assert_eq!(back, response);
}
