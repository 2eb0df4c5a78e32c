//! The registry over a real loopback connection: the tonic service over a
//! `MemoryStore` (plain HTTP/2 on 127.0.0.1, port 0), driven by `RegistryClient`
//! and by the raw generated stub. Time is a `ManualClock`: health is checked at
//! explicit instants, nothing sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use corebank_account_number::{AccountNumber, BankPrefix, BranchCode};
use corebank_client::{ClientConfig, ClientError};
use corebank_proto::v1::registry_client::RegistryClient as Stub;
use corebank_proto::v1::{self, resolve_account_request::Account};
use corebank_proto::{ApiError, ErrorCode};
use corebank_registry::{
    AuthGate, Authorize, Directory, Health, HeartbeatTarget, ManualClock, MemoryStore,
    RegistryClient, RegistryClientConfig, RegistryCommand, RegistryResponse, RegistryService,
    RegistryStore, ReplicaAddress, ReplicaReport, StoreError, heartbeat_loop,
};
use corebank_security::{ApiKeyFile, ApiKeyStore, Authenticator, Scope, ScopeSet};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::codegen::tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Server};

const T0: u64 = 1_700_000_000_000;

/// A running registry; dropping it stops the server.
struct Running {
    address: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Running {
    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.address.port())
    }

    async fn stub(&self) -> Stub<Channel> {
        Stub::connect(format!("http://{}", self.address))
            .await
            .unwrap()
    }
}

async fn serve<S: RegistryStore, A: Authorize>(service: RegistryService<S, A>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        Server::builder()
            .add_service(service.into_server())
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        address,
        _stop: stop,
    }
}

async fn memory_registry(clock: Arc<ManualClock>) -> (Running, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let service =
        RegistryService::new(store.clone(), AuthGate::insecure_development()).with_clock(clock);
    (serve(service).await, store)
}

fn client_for(endpoints: &[String]) -> RegistryClient {
    let connection = ClientConfig::new("")
        .with_request_timeout(Duration::from_secs(5))
        .with_total_timeout(Duration::from_secs(20))
        .with_connect_timeout(Duration::from_secs(2));
    RegistryClient::new(RegistryClientConfig::new(endpoints.to_vec()).with_connection(connection))
        .unwrap()
}

fn code(n: u16) -> BranchCode {
    BranchCode::new(n).unwrap()
}

fn replicas(n: u16) -> Vec<ReplicaAddress> {
    (1..=3)
        .map(|id| ReplicaAddress::new(id, format!("10.0.{n}.{id}:8080")))
        .collect()
}

fn target(n: u16, node_id: u64) -> HeartbeatTarget {
    HeartbeatTarget {
        branch: code(n),
        node_id,
        address: format!("10.0.{n}.{node_id}:8080"),
    }
}

fn report(is_leader: bool, term: u64, applied_index: u64) -> ReplicaReport {
    ReplicaReport {
        is_leader,
        term,
        applied_index,
    }
}

fn number(branch: u16, serial: u64) -> AccountNumber {
    AccountNumber::new(BankPrefix::COREBANK, code(branch), serial).unwrap()
}

fn healths(branch: &corebank_registry::BranchView) -> Vec<Health> {
    branch.replicas.iter().map(|r| r.health).collect()
}

/// A closed port: connecting to it is refused at once.
async fn dead_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("127.0.0.1:{port}")
}

async fn register_three(client: &RegistryClient) {
    for (n, name) in [(1, "Lisboa"), (2, "Porto"), (3, "Faro")] {
        let (branch, created) = client
            .register_branch(code(n), name, "eu-south", &replicas(n))
            .await
            .unwrap();
        assert!(created);
        assert_eq!(branch.name, name);
        assert_eq!(branch.registered_at_unix_ms, T0);
        assert_eq!(healths(&branch), [Health::NoHeartbeat; 3]);
    }
}

#[tokio::test]
async fn a_bank_of_three_branches() {
    let clock = Arc::new(ManualClock::new(T0));
    let (registry, _store) = memory_registry(clock.clone()).await;
    let client = client_for(&[registry.endpoint()]);

    register_three(&client).await;
    // Registering again with the same settings is not an error.
    let (_, created) = client
        .register_branch(code(2), "Porto", "eu-south", &replicas(2))
        .await
        .unwrap();
    assert!(!created);

    // Branch 0002: replica 1 leads in term 4, replica 2 follows, replica 3 is silent.
    clock.set(T0 + 1_000);
    let ack = client
        .heartbeat(&target(2, 1), report(true, 4, 120))
        .await
        .unwrap();
    assert_eq!(ack.leader, Some(ReplicaAddress::new(1, "10.0.2.1:8080")));
    assert_eq!(ack.leader_term, 4);
    assert_eq!(ack.at_unix_ms, T0 + 1_000);
    assert_eq!(ack.heartbeat_window_ms, 10_000);
    let ack = client
        .heartbeat(&target(2, 2), report(false, 4, 118))
        .await
        .unwrap();
    assert_eq!(ack.leader.map(|l| l.node_id), Some(1));

    // An account of branch 0002, serial 1000, by number and by id.
    let account = number(2, 1_000);
    let route = client.resolve(&account.to_printed()).await.unwrap();
    assert_eq!(route.account_number, account);
    assert_eq!(route.account_id, 20_000_001_000);
    assert_eq!(route.branch.code, code(2));
    assert_eq!(route.branch.name, "Porto");
    assert_eq!(route.leader_address(), Some("10.0.2.1:8080"));
    assert_eq!(route.branch.leader, Some((1, 4)));
    assert_eq!(
        healths(&route.branch),
        [Health::Healthy, Health::Healthy, Health::NoHeartbeat]
    );
    assert_eq!(route.branch.replicas[0].applied_index, 120);
    assert_eq!(
        route.addresses_to_try(),
        ["10.0.2.1:8080", "10.0.2.2:8080", "10.0.2.3:8080"]
    );
    let by_id = client.resolve_id(20_000_001_000).await.unwrap();
    assert_eq!(by_id.account_number, account);
    assert_eq!(by_id.leader_address(), Some("10.0.2.1:8080"));
    // Branch 0001 has no leader yet: a route without one, every replica listed.
    let other = client.resolve(&number(1, 1_234).to_string()).await.unwrap();
    assert_eq!(other.leader_address(), None);
    assert_eq!(other.branch.replicas.len(), 3);

    // The directory, in code order, and the catalog.
    let branches = client.list_branches(None).await.unwrap();
    let names: Vec<&str> = branches.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["Lisboa", "Porto", "Faro"]);
    assert!(
        client
            .list_branches(Some("us-east"))
            .await
            .unwrap()
            .is_empty()
    );
    let currencies = client.currencies().await.unwrap();
    assert_eq!(currencies.len(), corebank_money::CURRENCIES.len());
    assert!(
        currencies
            .iter()
            .any(|c| c.code == "JPY" && c.exponent == 0 && c.numeric == 392)
    );
    let products = client.products().await.unwrap();
    let names: Vec<&str> = products.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["current", "savings"]);
    assert_eq!(products[1].product, v1::Product::Savings as i32);

    // Ten seconds later both are still healthy (the window is inclusive)...
    clock.set(T0 + 11_000);
    let branch = client.get_branch(code(2)).await.unwrap();
    assert_eq!(
        healths(&branch),
        [Health::Healthy, Health::Healthy, Health::NoHeartbeat]
    );
    assert_eq!(branch.as_of_unix_ms, T0 + 11_000);
    // ...one millisecond more and the heartbeats have stopped for too long.
    clock.set(T0 + 11_001);
    let branch = client.get_branch(code(2)).await.unwrap();
    assert_eq!(
        healths(&branch),
        [Health::Stale, Health::Stale, Health::NoHeartbeat]
    );
    // The leader on record stays (nobody else claimed it), marked stale.
    assert_eq!(branch.leader_address(), Some("10.0.2.1:8080"));

    // Replica 2 wins an election in term 5 and says so: it leads, and is healthy.
    clock.set(T0 + 12_000);
    let ack = client
        .heartbeat(&target(2, 2), report(true, 5, 130))
        .await
        .unwrap();
    assert_eq!(ack.leader, Some(ReplicaAddress::new(2, "10.0.2.2:8080")));
    let branch = client.get_branch(code(2)).await.unwrap();
    assert_eq!(
        healths(&branch),
        [Health::Stale, Health::Healthy, Health::NoHeartbeat]
    );
    assert_eq!(branch.leader, Some((2, 5)));
    // The old leader, back in term 4, does not take it back.
    client
        .heartbeat(&target(2, 1), report(true, 4, 121))
        .await
        .unwrap();
    assert_eq!(
        client.get_branch(code(2)).await.unwrap().leader,
        Some((2, 5))
    );

    // Operators rename a branch and replace a replica.
    let renamed = client
        .update_branch(code(3), Some("Faro Centro"), None)
        .await
        .unwrap();
    assert_eq!(renamed.name, "Faro Centro");
    let grown = client
        .add_replica(code(3), &ReplicaAddress::new(4, "10.0.3.4:8080"))
        .await
        .unwrap();
    assert_eq!(grown.replicas.len(), 4);
    let shrunk = client.remove_replica(code(3), 1).await.unwrap();
    let ids: Vec<u64> = shrunk.replicas.iter().map(|r| r.node_id).collect();
    assert_eq!(ids, [2, 3, 4]);
}

/// A store that counts the reads that reach it.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    reads: AtomicU64,
}

impl RegistryStore for Counting {
    async fn propose(&self, command: RegistryCommand) -> Result<RegistryResponse, StoreError> {
        self.inner.propose(command).await
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Directory) -> T + Send,
        T: Send,
    {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read(f).await
    }
}

#[tokio::test]
async fn resolved_routes_are_cached_until_invalidated() {
    let store = Arc::new(Counting::default());
    let clock = Arc::new(ManualClock::new(T0));
    let service =
        RegistryService::new(store.clone(), AuthGate::insecure_development()).with_clock(clock);
    let registry = serve(service).await;
    let reads = || store.reads.load(Ordering::SeqCst);
    let client = client_for(&[registry.endpoint()]);
    register_three(&client).await;
    client
        .heartbeat(&target(2, 3), report(true, 1, 1))
        .await
        .unwrap();
    let account = number(2, 1_000).to_string();
    let first = client.resolve(&account).await.unwrap();
    assert_eq!(first.leader_address(), Some("10.0.2.3:8080"));
    assert_eq!(reads(), 1);

    // Routes of branch 0002 now come from the cache, other accounts of the branch
    // and ledger ids included: the registry is not asked again.
    let cached = client.resolve(&account).await.unwrap();
    assert_eq!(cached, first);
    let neighbour = client
        .resolve(&number(2, 77_777).to_string())
        .await
        .unwrap();
    assert_eq!(neighbour.branch, first.branch);
    assert_eq!(neighbour.account_id, 20_000_077_777);
    let by_id = client.resolve_id(20_000_001_000).await.unwrap();
    assert_eq!(by_id, first);
    assert_eq!(reads(), 1);
    // Another branch is not in the cache yet.
    client.resolve(&number(3, 1_000).to_string()).await.unwrap();
    assert_eq!(reads(), 2);

    // A replica said the leader is now replica 1: the cache follows the hint.
    assert!(client.note_leader(code(2), "10.0.2.1:8080"));
    let hinted = client.resolve(&account).await.unwrap();
    assert_eq!(hinted.leader_address(), Some("10.0.2.1:8080"));
    assert_eq!(reads(), 2);

    // Invalidated, the route comes from the registry again (which still says 3).
    client.invalidate_branch(code(2));
    let fresh = client.resolve(&account).await.unwrap();
    assert_eq!(fresh.leader_address(), Some("10.0.2.3:8080"));
    assert_eq!(reads(), 3);
    client.invalidate_all();
    assert_eq!(client.cached_branches(), 0);

    // Without a cache every lookup asks.
    let uncached = RegistryClient::new(
        RegistryClientConfig::new(vec![registry.endpoint()]).with_cache_ttl(Duration::ZERO),
    )
    .unwrap();
    uncached.resolve(&account).await.unwrap();
    uncached.resolve(&account).await.unwrap();
    assert_eq!(reads(), 5);
}

/// The code, reason and field of a call the registry refused.
fn refused<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (ErrorCode, String, String) {
    let error = result.unwrap_err();
    let api = error
        .api_error()
        .cloned()
        .unwrap_or_else(|| panic!("{error:?}"));
    (api.code, api.reason, api.field)
}

/// The gRPC error of a call on the raw stub.
fn api_error<T: std::fmt::Debug>(result: Result<tonic::Response<T>, tonic::Status>) -> ApiError {
    let status = result.unwrap_err();
    ApiError::from_status(&status).unwrap_or_else(|| panic!("no corebank code: {status:?}"))
}

#[tokio::test]
async fn bad_input_is_refused_with_clear_errors() {
    let clock = Arc::new(ManualClock::new(T0));
    let (registry, store) = memory_registry(clock).await;
    let client = client_for(&[registry.endpoint()]);
    register_three(&client).await;
    let before = store.read_now(|d| d.to_snapshot_bytes().unwrap()).unwrap();
    let mut stub = registry.stub().await;

    // The client refuses a malformed number without a call.
    let mut typo = number(2, 1_000).to_string();
    typo.replace_range(21..22, "1");
    let error = client.resolve(&typo).await.unwrap_err();
    let ClientError::InvalidInput {
        field,
        reason,
        message,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(
        (field.as_str(), *reason),
        ("account_number", "bad_check_digits")
    );
    assert!(message.contains("check digits"), "{message}");
    assert_eq!(
        client.resolve_id(0).await.unwrap_err().code(),
        "invalid_input"
    );

    // The registry refuses it too, naming the field and the account-number code.
    let resolve = |account: Account| v1::ResolveAccountRequest {
        account: Some(account),
    };
    let error = api_error(
        stub.resolve_account(resolve(Account::AccountNumber(typo)))
            .await,
    );
    assert_eq!(error.code, ErrorCode::InvalidAccountNumber);
    assert_eq!(error.reason, "bad_check_digits");
    assert_eq!(error.field, "account_number");
    let error = api_error(
        stub.resolve_account(resolve(Account::AccountNumber("XC00".into())))
            .await,
    );
    assert_eq!(error.reason, "wrong_length");
    let foreign = AccountNumber::new(BankPrefix::new("XD", "BANK").unwrap(), code(2), 1_000)
        .unwrap()
        .to_string();
    let error = api_error(
        stub.resolve_account(resolve(Account::AccountNumber(foreign)))
            .await,
    );
    assert_eq!(error.reason, "unexpected_prefix");
    let error = api_error(
        stub.resolve_account(resolve(Account::AccountId(v1::U128 { lo: 0, hi: 1 })))
            .await,
    );
    assert_eq!(
        (error.code, error.reason.as_str(), error.field.as_str()),
        (
            ErrorCode::InvalidAccountNumber,
            "account_id_out_of_range",
            "account_id"
        )
    );
    let error = api_error(
        stub.resolve_account(v1::ResolveAccountRequest { account: None })
            .await,
    );
    assert_eq!(
        (error.code, error.field.as_str()),
        (ErrorCode::InvalidArgument, "account")
    );

    // An account of a branch nobody registered.
    let error = client
        .resolve(&number(4, 1_000).to_string())
        .await
        .unwrap_err();
    let api = error.api_error().unwrap();
    assert_eq!(api.code, ErrorCode::AccountNotFound);
    assert_eq!(api.reason, "branch_not_found");
    assert_eq!(api.message, "branch 0004 is not registered");
    assert_eq!(
        client
            .get_branch(code(9))
            .await
            .unwrap_err()
            .api_error()
            .unwrap()
            .reason,
        "branch_not_found"
    );

    // Registrations and heartbeats that cannot be right.
    let error = api_error(
        stub.register_branch(v1::RegisterBranchRequest {
            branch: 10_000,
            name: "Too far".into(),
            region: "x".into(),
            replicas: vec![v1::ReplicaAddress {
                node_id: 1,
                address: "h:1".into(),
            }],
        })
        .await,
    );
    assert_eq!(
        (error.code, error.reason.as_str(), error.field.as_str()),
        (ErrorCode::InvalidArgument, "invalid_branch_code", "branch")
    );
    assert_eq!(
        refused(
            client
                .register_branch(
                    code(5),
                    "Braga",
                    "eu-south",
                    &[ReplicaAddress::new(1, "10.0.5.1")]
                )
                .await
        ),
        (
            ErrorCode::InvalidArgument,
            "invalid_address".into(),
            "address".into()
        )
    );
    assert_eq!(
        refused(
            client
                .register_branch(code(5), "", "eu-south", &replicas(5))
                .await
        ),
        (
            ErrorCode::InvalidArgument,
            "invalid_name".into(),
            "name".into()
        )
    );
    assert_eq!(
        refused(
            client
                .register_branch(code(2), "Porto", "eu-north", &replicas(2))
                .await
        ),
        (
            ErrorCode::IdempotencyConflict,
            "branch_exists".into(),
            "branch".into()
        )
    );
    assert_eq!(
        refused(
            client
                .register_branch(code(5), "Braga", "eu-south", &replicas(1))
                .await
        ),
        (
            ErrorCode::IdempotencyConflict,
            "address_taken".into(),
            "address".into()
        )
    );
    assert_eq!(
        refused(client.heartbeat(&target(2, 9), report(true, 1, 1)).await),
        (
            ErrorCode::AccountNotFound,
            "replica_not_found".into(),
            "node_id".into()
        )
    );
    assert_eq!(
        refused(client.heartbeat(&target(7, 1), report(true, 1, 1)).await),
        (
            ErrorCode::AccountNotFound,
            "branch_not_found".into(),
            "branch".into()
        )
    );
    let impostor = HeartbeatTarget {
        address: "10.6.6.6:8080".into(),
        ..target(2, 1)
    };
    assert_eq!(
        refused(client.heartbeat(&impostor, report(true, 99, 1)).await),
        (
            ErrorCode::FailedPrecondition,
            "replica_address_mismatch".into(),
            "address".into()
        )
    );
    assert_eq!(
        refused(client.update_branch(code(2), None, None).await),
        (
            ErrorCode::InvalidArgument,
            "nothing_to_update".into(),
            String::new()
        )
    );
    let error = api_error(
        stub.list_branches(v1::ListBranchesRequest {
            limit: 5_000,
            ..Default::default()
        })
        .await,
    );
    assert_eq!(
        (error.code, error.field.as_str()),
        (ErrorCode::InvalidArgument, "limit")
    );

    // None of it changed the directory.
    let after = store.read_now(|d| d.to_snapshot_bytes().unwrap()).unwrap();
    assert_eq!(after, before);
}

#[tokio::test]
async fn branches_come_a_page_at_a_time() {
    let clock = Arc::new(ManualClock::new(T0));
    let (registry, store) = memory_registry(clock).await;
    for n in (0..30u16).rev() {
        let region = if n % 3 == 0 { "eu-north" } else { "eu-south" };
        let response: RegistryResponse = store
            .apply(&RegistryCommand::RegisterBranch {
                code: code(n),
                name: format!("Branch {n}"),
                region: region.into(),
                replicas: vec![ReplicaAddress::new(1, format!("10.1.0.{n}:8080"))],
                at_unix_ms: T0,
            })
            .unwrap();
        response.unwrap();
    }
    let mut stub = registry.stub().await;
    let page = stub
        .list_branches(v1::ListBranchesRequest {
            limit: 7,
            start_after: Some(20),
            region: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<u32> = page.branches.iter().map(|b| b.branch).collect();
    assert_eq!(codes, [21, 22, 23, 24, 25, 26, 27]);
    assert_eq!(page.next_start_after, Some(27));
    let last = stub
        .list_branches(v1::ListBranchesRequest {
            limit: 7,
            start_after: Some(27),
            region: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(last.branches.len(), 2);
    assert_eq!(last.next_start_after, None);

    let client = client_for(&[registry.endpoint()]);
    let all = client.list_branches(None).await.unwrap();
    assert_eq!(all.len(), 30);
    assert!(all.windows(2).all(|w| w[0].code < w[1].code));
    let north = client.list_branches(Some("eu-north")).await.unwrap();
    assert_eq!(north.len(), 10);
    assert_eq!(client.cached_branches(), 30);
}

/// A registry replica that is not the leader: every call answers `not_leader`.
struct Follower {
    leader: Option<String>,
}

impl RegistryStore for Follower {
    async fn propose(&self, _: RegistryCommand) -> Result<RegistryResponse, StoreError> {
        Err(StoreError::NotLeader {
            leader: self.leader.clone(),
        })
    }

    async fn read<T, F>(&self, _: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Directory) -> T + Send,
        T: Send,
    {
        Err(StoreError::NotLeader {
            leader: self.leader.clone(),
        })
    }
}

async fn follower(leader: Option<String>) -> Running {
    serve(RegistryService::new(
        Arc::new(Follower { leader }),
        AuthGate::insecure_development(),
    ))
    .await
}

#[tokio::test]
async fn the_client_fails_over_and_follows_the_leader() {
    let clock = Arc::new(ManualClock::new(T0));
    let (leader, _store) = memory_registry(clock).await;
    let knows = follower(Some(leader.endpoint())).await;
    let lost = follower(None).await;
    let dead = dead_endpoint().await;

    // A dead address, a follower in an election, a follower that names the leader
    // (an address the client was not given).
    let client = client_for(&[dead, lost.endpoint(), knows.endpoint()]);
    register_three(&client).await;
    assert_eq!(client.current_endpoint(), leader.endpoint());
    // Later calls go straight to the leader.
    let route = client.resolve(&number(3, 1_000).to_string()).await.unwrap();
    assert_eq!(route.branch.name, "Faro");

    // The raw error says where the leader is.
    let mut stub = knows.stub().await;
    let error = api_error(stub.get_branch(v1::GetBranchRequest { branch: 3 }).await);
    assert_eq!(error.code, ErrorCode::NotLeader);
    assert_eq!(error.leader, Some(leader.endpoint()));

    // A leader named without a scheme is the configured endpoint with one: the
    // client moves there instead of learning the same address twice.
    let named = follower(Some(leader.endpoint())).await;
    let client = client_for(&[named.endpoint(), format!("http://{}", leader.endpoint())]);
    assert_eq!(client.get_branch(code(2)).await.unwrap().name, "Porto");
    assert_eq!(
        client.current_endpoint(),
        format!("http://{}", leader.endpoint())
    );

    // With only followers that know no leader, the client gives up within its
    // attempts and says why.
    let nowhere =
        RegistryClient::new(RegistryClientConfig::new(vec![lost.endpoint()]).with_attempts_max(2))
            .unwrap();
    let error = nowhere.get_branch(code(1)).await.unwrap_err();
    assert_eq!(error.code(), "not_leader");
}

#[tokio::test]
async fn every_call_needs_its_scope() {
    let mut keys = ApiKeyFile::new();
    let reader = keys.create("app", ScopeSet::only(Scope::Read)).unwrap();
    let replica = keys
        .create("branch-0002-1", ScopeSet::only(Scope::Transfer))
        .unwrap();
    let admin = keys
        .create("operator", ScopeSet::only(Scope::Admin))
        .unwrap();
    let gate = AuthGate::new(Authenticator::new(Some(ApiKeyStore::from_file(&keys))));
    let clock = Arc::new(ManualClock::new(T0));
    let service = RegistryService::new(Arc::new(MemoryStore::new()), gate).with_clock(clock);
    let registry = serve(service).await;
    let with_key = |key: Option<&str>| {
        let mut connection = ClientConfig::new("");
        if let Some(key) = key {
            connection = connection.with_api_key(key);
        }
        RegistryClient::new(
            RegistryClientConfig::new(vec![registry.endpoint()]).with_connection(connection),
        )
        .unwrap()
    };
    let admin = with_key(Some(admin.key.expose()));
    let replica = with_key(Some(replica.key.expose()));
    let reader = with_key(Some(reader.key.expose()));
    let anonymous = with_key(None);

    // Registering needs admin.
    let register = |client: RegistryClient| async move {
        client
            .register_branch(code(2), "Porto", "eu-south", &replicas(2))
            .await
            .map(|_| ())
    };
    assert_eq!(
        register(reader.clone()).await.unwrap_err().code(),
        "permission_denied"
    );
    assert_eq!(
        register(replica.clone()).await.unwrap_err().code(),
        "permission_denied"
    );
    assert_eq!(
        register(anonymous.clone()).await.unwrap_err().code(),
        "unauthenticated"
    );
    register(admin.clone()).await.unwrap();

    // Heartbeats need transfer (admin includes it).
    let beat = |client: RegistryClient| async move {
        client
            .heartbeat(&target(2, 1), report(true, 1, 1))
            .await
            .map(|_| ())
    };
    assert_eq!(
        beat(reader.clone()).await.unwrap_err().code(),
        "permission_denied"
    );
    beat(replica.clone()).await.unwrap();
    beat(admin.clone()).await.unwrap();

    // Lookups need read.
    let account = number(2, 1_000).to_string();
    assert_eq!(reader.resolve(&account).await.unwrap().branch.name, "Porto");
    assert_eq!(reader.list_branches(None).await.unwrap().len(), 1);
    assert_eq!(
        anonymous.currencies().await.unwrap_err().code(),
        "unauthenticated"
    );
    let error = anonymous.resolve(&account).await.unwrap_err();
    assert!(
        matches!(error, ClientError::Unauthenticated { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_heartbeat_loop_keeps_a_replica_healthy() {
    let clock = Arc::new(ManualClock::new(T0));
    let (registry, store) = memory_registry(clock.clone()).await;
    let client = client_for(&[registry.endpoint()]);
    register_three(&client).await;

    // The report is read before each heartbeat, and each heartbeat is answered
    // before the next report: the fourth report means three heartbeats are done.
    let reports = Arc::new(AtomicU64::new(0));
    let (fourth, fourth_reached) = oneshot::channel::<()>();
    let fourth = std::sync::Mutex::new(Some(fourth));
    let counter = reports.clone();
    let read_state = move || {
        let count = counter.fetch_add(1, Ordering::SeqCst) + 1;
        if count == 4
            && let Some(signal) = fourth.lock().unwrap().take()
        {
            let _ = signal.send(());
        }
        report(true, 2, count)
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(heartbeat_loop(
        client.clone(),
        target(1, 2),
        Duration::from_millis(10),
        read_state,
        async move {
            let _ = stopped.await;
        },
    ));
    fourth_reached.await.unwrap();
    stop.send(()).unwrap();
    let stats = task.await.unwrap();
    assert!(stats.sent >= 3, "{stats:?}");
    assert_eq!(stats.failed, 0);

    let branch = store
        .read_now(|d| d.branch(code(1)).cloned())
        .unwrap()
        .unwrap();
    let replica = branch.replica(2).unwrap();
    assert_eq!(replica.last_heartbeat_unix_ms, Some(T0));
    assert!(replica.applied_index >= 3);
    assert_eq!(branch.leader.map(|l| (l.node_id, l.term)), Some((2, 2)));
    assert_eq!(
        store
            .read_now(|d| d.health(code(1), T0 + 5_000, 10_000))
            .unwrap()
            .unwrap(),
        [
            (1, Health::NoHeartbeat),
            (2, Health::Healthy),
            (3, Health::NoHeartbeat)
        ]
    );

    // Against a registry that cannot be reached, the loop counts failures and
    // goes on until it is stopped.
    let unreachable = RegistryClient::new(
        RegistryClientConfig::new(vec![dead_endpoint().await]).with_attempts_max(1),
    )
    .unwrap();
    let (third, third_reached) = oneshot::channel::<()>();
    let third = std::sync::Mutex::new(Some(third));
    let calls = AtomicU64::new(0);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(heartbeat_loop(
        unreachable,
        target(1, 2),
        Duration::from_millis(10),
        move || {
            if calls.fetch_add(1, Ordering::SeqCst) + 1 == 3
                && let Some(signal) = third.lock().unwrap().take()
            {
                let _ = signal.send(());
            }
            ReplicaReport::default()
        },
        async move {
            let _ = stopped.await;
        },
    ));
    third_reached.await.unwrap();
    stop.send(()).unwrap();
    let stats = task.await.unwrap();
    assert_eq!(stats.sent, 0);
    assert!(stats.failed >= 2, "{stats:?}");
}
