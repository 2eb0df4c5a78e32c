#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use corebank_account_number::BranchCode;
use corebank_client::{ClientConfig, ClientError};
use corebank_identity::tokens::RefreshToken;
use corebank_identity::{
    IdentityAnswer, IdentityCommand, IdentityError, IdentityOutcome, IdentityQuery, RevokeReason,
    Role,
};
use corebank_proto::ErrorCode;
use corebank_security::{ApiKeyFile, Scope, ScopeSet};

use crate::*;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
const T0: u64 = 1_700_000_000_000;
const DAY: u64 = 24 * 3_600_000;

fn create_user(name: &str) -> IdentityCommand {
    IdentityCommand::CreateUser {
        username: name.into(),
        display_name: format!("User {name}"),
        role: Role::Customer,
        password_hash: HASH.into(),
        home_branch: 1,
        at_ms: T0,
    }
}

fn start_session(family: [u8; 16], user_id: u64, token: &RefreshToken) -> IdentityCommand {
    IdentityCommand::StartSession {
        family,
        user_id,
        token_hash: token.hash(),
        mfa: false,
        at_ms: T0,
        expires_at_ms: T0 + DAY,
    }
}

fn rotate(presented: &RefreshToken, next: &RefreshToken, at_ms: u64) -> IdentityCommand {
    IdentityCommand::RotateSession {
        family: presented.family,
        generation: presented.generation,
        token_hash: presented.hash(),
        new_token_hash: next.hash(),
        at_ms,
        expires_at_ms: T0 + DAY,
    }
}

fn with_users() -> Directory {
    let mut directory = Directory::new();
    directory
        .apply(&RegistryCommand::RegisterBranch {
            code: BranchCode::new(1).unwrap(),
            name: "Lisboa".into(),
            region: "eu-south".into(),
            replicas: vec![ReplicaAddress::new(1, "10.0.1.1:8080")],
            at_unix_ms: T0,
        })
        .unwrap();
    for name in ["ana", "bruno"] {
        directory
            .apply(&RegistryCommand::Identity(create_user(name)))
            .unwrap();
    }
    let token = RefreshToken::new([7; 16], 0);
    directory
        .apply(&RegistryCommand::Identity(start_session(
            [7; 16], 1, &token,
        )))
        .unwrap();
    directory
}

#[test]
fn the_directory_applies_identity_commands() {
    let mut directory = with_users();
    assert_eq!(
        directory.identity().user_by_username("bruno").unwrap().id,
        2
    );
    let applied = directory
        .apply(&RegistryCommand::Identity(IdentityCommand::SetRole {
            user_id: 2,
            role: Role::Teller,
        }))
        .unwrap();
    assert!(
        matches!(applied, Applied::Identity(IdentityOutcome::UserUpdated(u)) if u.role == Role::Teller)
    );

    // A refusal is a CommandError with the identity code; nothing changed.
    let before = directory.clone();
    let error = directory
        .apply(&RegistryCommand::Identity(create_user("ana")))
        .unwrap_err();
    assert_eq!(error, CommandError::Identity(IdentityError::UsernameTaken));
    assert_eq!(error.code(), "username_taken");
    assert_eq!(directory, before);
    let api = errors::command_error(&error);
    assert_eq!(
        (api.code, api.reason.as_str(), api.field.as_str()),
        (
            ErrorCode::IdempotencyConflict,
            "username_taken",
            IDENTITY_FIELD
        )
    );
    // Malformed commands are refused by validate, before any log.
    let error = RegistryCommand::Identity(create_user("A"))
        .validate()
        .unwrap_err();
    assert_eq!(error.code(), "invalid_username");
    assert_eq!(
        errors::command_error(&error).code,
        ErrorCode::InvalidArgument
    );
    let error = directory
        .apply(&RegistryCommand::Identity(IdentityCommand::Unlock {
            user_id: 99,
        }))
        .unwrap_err();
    assert_eq!(
        errors::command_error(&error).code,
        ErrorCode::FailedPrecondition
    );
}

#[test]
fn snapshots_carry_the_identity_state() {
    let directory = with_users();
    let bytes = directory.to_snapshot_bytes().unwrap();
    assert_eq!(bytes[8..12], SNAPSHOT_VERSION.to_le_bytes());
    let read = Directory::from_snapshot_bytes(&bytes).unwrap();
    assert_eq!(read, directory);
    assert_eq!(read.identity().session(&[7; 16]).unwrap().user_id, 1);
    assert_eq!(read.digest().unwrap(), directory.digest().unwrap());

    // The digest covers the identity state.
    let mut changed = directory.clone();
    changed
        .apply(&RegistryCommand::Identity(create_user("carla")))
        .unwrap();
    assert_ne!(changed.digest().unwrap(), directory.digest().unwrap());
}

#[test]
fn format_1_snapshots_are_still_read_without_users() {
    #[derive(serde::Serialize)]
    struct V1 {
        branches: BTreeMap<u16, Branch>,
    }
    let directory = with_users();
    let v1 = V1 {
        branches: directory
            .branches()
            .map(|b| (b.code.get(), b.clone()))
            .collect(),
    };
    let payload = bincode::serde::encode_to_vec(&v1, bincode::config::standard()).unwrap();
    let mut bytes = SNAPSHOT_MAGIC.to_vec();
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&u64::try_from(payload.len()).unwrap().to_le_bytes());
    bytes.extend_from_slice(blake3::hash(&payload).as_bytes());
    bytes.extend_from_slice(&payload);
    let read = Directory::from_snapshot_bytes(&bytes).unwrap();
    assert_eq!(read.len(), 1);
    assert!(read.identity().is_empty());
    assert_eq!(read.identity().next_user_id(), 1);
}

#[test]
fn payloads_round_trip_and_refuse_garbage() {
    let command = create_user("ana");
    let bytes = encode_identity_payload(&command).unwrap();
    assert_eq!(
        decode_identity_payload::<IdentityCommand>(&bytes).unwrap(),
        command
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(decode_identity_payload::<IdentityCommand>(&longer).is_err());
    assert!(decode_identity_payload::<IdentityCommand>(&[255, 255, 255]).is_err());
}

async fn wait_for_leader(client: &RegistryClient) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.identity_query(&IdentityQuery::Stats).await {
            Ok(_) => return,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("the registry does not answer: {error}"),
        }
    }
}

fn client(registry: &RunningRegistry, key: &str) -> RegistryClient {
    RegistryClient::new(
        RegistryClientConfig::new(vec![format!("http://{}", registry.grpc_addr())])
            .with_connection(ClientConfig::new(String::new()).with_api_key(key.to_owned())),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_service_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let mut keys = ApiKeyFile::new();
    let admin = keys
        .create("gateway", ScopeSet::only(Scope::Admin))
        .unwrap()
        .key
        .expose()
        .clone();
    let reader = keys
        .create("reader", ScopeSet::only(Scope::Read))
        .unwrap()
        .key
        .expose()
        .clone();
    let key_file = dir.path().join("keys.json");
    keys.save(&key_file).unwrap();
    let mut config = RegistryConfig::insecure(
        dir.path().join("registry"),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    );
    config.api_keys = Some(key_file);
    let registry = start(config).await.unwrap();
    let gateway = client(&registry, &admin);
    wait_for_leader(&gateway).await;

    // Create a user and read it back.
    let created = gateway.identity_execute(&create_user("ana")).await.unwrap();
    let IdentityOutcome::UserCreated(ana) = created else {
        panic!("{created:?}")
    };
    let answer = gateway
        .identity_query(&IdentityQuery::UserByUsername("ana".into()))
        .await
        .unwrap();
    assert_eq!(answer, IdentityAnswer::User(Some(ana.clone())));

    // A refusal comes back typed.
    let error = gateway
        .identity_execute(&create_user("ana"))
        .await
        .unwrap_err();
    assert_eq!(
        identity_error(&error),
        Some(IdentityError::UsernameTaken),
        "{error:?}"
    );
    let error = gateway
        .identity_execute(&create_user("NOT VALID"))
        .await
        .unwrap_err();
    assert_eq!(identity_error(&error).unwrap().code(), "invalid_username");

    // A session: rotate, then present the first token again.
    let first = RefreshToken::new([3; 16], 0);
    gateway
        .identity_execute(&start_session([3; 16], ana.id, &first))
        .await
        .unwrap();
    let second = RefreshToken::new([3; 16], 1);
    let rotated = gateway
        .identity_execute(&rotate(&first, &second, T0 + 1))
        .await
        .unwrap();
    assert!(matches!(rotated, IdentityOutcome::Rotated(ref s) if s.generation == 1));
    let reuse = gateway
        .identity_execute(&rotate(&first, &RefreshToken::new([3; 16], 1), T0 + 2))
        .await
        .unwrap();
    assert_eq!(
        reuse,
        IdentityOutcome::ReuseDetected {
            family: [3; 16],
            user_id: ana.id
        }
    );
    let error = gateway
        .identity_execute(&rotate(&second, &RefreshToken::new([3; 16], 2), T0 + 3))
        .await
        .unwrap_err();
    assert_eq!(identity_error(&error), Some(IdentityError::SessionRevoked));
    let session = gateway
        .identity_query(&IdentityQuery::Session([3; 16]))
        .await
        .unwrap();
    assert!(
        matches!(session, IdentityAnswer::Session(Some(ref s)) if s.revoked == Some(RevokeReason::Reuse))
    );

    // Without the admin scope: refused, for writes and reads.
    let outsider = client(&registry, &reader);
    let error = outsider
        .identity_query(&IdentityQuery::Stats)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::PermissionDenied { .. }),
        "{error:?}"
    );
    assert_eq!(identity_error(&error), None);
    let error = outsider
        .identity_execute(&create_user("eve"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::PermissionDenied { .. }),
        "{error:?}"
    );

    // Undecodable bytes: invalid_argument with a clear message.
    let mut raw = corebank_proto::v1::identity_client::IdentityClient::connect(format!(
        "http://{}",
        registry.grpc_addr()
    ))
    .await
    .unwrap();
    let mut request = tonic::Request::new(corebank_proto::v1::IdentityExecuteRequest {
        command: vec![200, 1, 2, 3],
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {admin}").parse().unwrap());
    let status = raw.execute(request).await.unwrap_err();
    let api = corebank_proto::ApiError::from_status(&status).unwrap();
    assert_eq!(api.code, ErrorCode::InvalidArgument, "{api:?}");
    assert_eq!(api.reason, "undecodable_payload");
    assert!(api.message.contains("bincode"), "{}", api.message);

    registry.shutdown().await;
}
