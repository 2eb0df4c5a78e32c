//! Real `corebank node` processes on loopback, driven over gRPC: banking operations,
//! bad input, kill -9 under load, restart, and access control.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::io::Write;

use corebank_proto::convert::u128_field;
use corebank_proto::v1::banking_client::BankingClient;
use corebank_proto::v1::ledger_client::LedgerClient;
use corebank_proto::v1::{self};
use corebank_proto::{ApiError, ErrorCode};
use support::NodeProcess;
use tonic::transport::Channel;

async fn channel(endpoint: String) -> Channel {
    Channel::from_shared(endpoint)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn code(status: &tonic::Status) -> ErrorCode {
    ApiError::from_status(status)
        .map(|e| e.code)
        .unwrap_or_else(|| panic!("no corebank error code in {status:?}"))
}

async fn open(banking: &mut BankingClient<Channel>, customer: &str, currency: &str) -> String {
    let request = v1::OpenAccountRequest {
        customer_id: customer.into(),
        currency: currency.into(),
        product: 0,
    };
    banking
        .open_account(request)
        .await
        .unwrap()
        .into_inner()
        .account_number
}

async fn balance(banking: &mut BankingClient<Channel>, account: &str) -> v1::GetBalanceResponse {
    let request = v1::GetBalanceRequest {
        account_number: account.into(),
        consistency: 0,
    };
    banking.get_balance(request).await.unwrap().into_inner()
}

fn deposit(account: &str, amount: &str, key: &str) -> v1::DepositRequest {
    v1::DepositRequest {
        account_number: account.into(),
        amount: amount.into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

fn transfer(from: &str, to: &str, amount: &str, key: &str) -> v1::TransferRequest {
    v1::TransferRequest {
        from_account: from.into(),
        to_account: to.into(),
        amount: amount.into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banking_operations_over_grpc_move_money_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::insecure(dir.path());
    let mut banking = BankingClient::new(channel(node.endpoint()).await);
    let alice = open(&mut banking, "alice", "EUR").await;
    let bob = open(&mut banking, "bob", "EUR").await;
    assert!(
        alice.starts_with("XC") && alice.contains("CORE0001"),
        "{alice}"
    );
    assert_ne!(alice, bob);

    banking
        .deposit(deposit(&alice, "100.00", "dep-1"))
        .await
        .unwrap();
    // The retry of the same deposit is answered, not applied again.
    let replay = banking
        .deposit(deposit(&alice, "100.00", "dep-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(replay.replayed);
    let receipt = banking
        .transfer(transfer(&alice, &bob, "30.25", "pay-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (receipt.amount.as_str(), receipt.currency.as_str()),
        ("30.25", "EUR")
    );
    banking
        .transfer(transfer(&alice, &bob, "30.25", "pay-1"))
        .await
        .unwrap();

    let a = balance(&mut banking, &alice).await;
    assert_eq!(
        (a.posted.as_str(), a.available.as_str()),
        ("69.75", "69.75")
    );
    assert_eq!(balance(&mut banking, &bob).await.posted, "30.25");

    let hold = v1::PlaceHoldRequest {
        account_number: alice.clone(),
        amount: "60.00".into(),
        idempotency_key: "hold-1".into(),
        timeout_seconds: 3600,
        ..Default::default()
    };
    let hold = banking.place_hold(hold).await.unwrap().into_inner();
    let a = balance(&mut banking, &alice).await;
    assert_eq!(
        (
            a.posted.as_str(),
            a.pending_debits.as_str(),
            a.available.as_str()
        ),
        ("69.75", "60.00", "9.75")
    );
    let too_much = banking
        .withdraw(v1::WithdrawRequest {
            account_number: alice.clone(),
            amount: "9.76".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(&too_much), ErrorCode::InsufficientFunds);
    banking
        .release_hold(v1::ReleaseHoldRequest {
            hold_id: hold.hold_id,
        })
        .await
        .unwrap();
    assert_eq!(balance(&mut banking, &alice).await.available, "69.75");

    let statement = banking
        .get_statement(v1::GetStatementRequest {
            account_number: alice.clone(),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let amounts: Vec<_> = statement
        .entries
        .iter()
        .map(|e| (e.amount.as_str(), e.balance_after.as_str()))
        .collect();
    assert_eq!(amounts[..2], [("100.00", "100.00"), ("30.25", "69.75")]);
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_precise_errors_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::insecure(dir.path());
    let mut banking = BankingClient::new(channel(node.endpoint()).await);
    let mut ledger = LedgerClient::new(channel(node.endpoint()).await);
    let alice = open(&mut banking, "alice", "EUR").await;

    let cases: Vec<(v1::DepositRequest, ErrorCode)> = vec![
        (
            deposit("XC00 CORE 0001 0000 0010 00", "1.00", ""),
            ErrorCode::InvalidAccountNumber,
        ),
        (
            deposit("not an account", "1.00", ""),
            ErrorCode::InvalidAccountNumber,
        ),
        (deposit(&alice, "-5.00", ""), ErrorCode::InvalidAmount),
        (deposit(&alice, "1.001", ""), ErrorCode::InvalidAmount),
        (deposit(&alice, "abc", ""), ErrorCode::InvalidAmount),
        (deposit(&alice, "0", ""), ErrorCode::InvalidAmount),
        (
            deposit(&alice, "1.00", "key with spaces"),
            ErrorCode::InvalidArgument,
        ),
    ];
    for (request, expected) in cases {
        let status = banking.deposit(request.clone()).await.unwrap_err();
        assert_eq!(code(&status), expected, "{request:?}: {status:?}");
        assert!(!status.message().is_empty());
    }
    // The branch's EUR cash account (serial 100) is not a customer account.
    let cash = "XC21CORE00010000000100";
    assert_eq!(
        code(
            &banking
                .deposit(deposit(cash, "1.00", ""))
                .await
                .unwrap_err()
        ),
        ErrorCode::AccountNotFound
    );
    banking
        .deposit(deposit(&alice, "10.00", "funds"))
        .await
        .unwrap();
    let to_self = banking
        .transfer(transfer(&alice, &alice, "1.00", "self"))
        .await
        .unwrap_err();
    assert_eq!(code(&to_self), ErrorCode::InvalidArgument);
    let dollars = open(&mut banking, "bob", "USD").await;
    let across = banking
        .transfer(transfer(&alice, &dollars, "1.00", "fx"))
        .await
        .unwrap_err();
    assert_eq!(code(&across), ErrorCode::CurrencyMismatch);
    let unknown = v1::OpenAccountRequest {
        customer_id: "c".into(),
        currency: "XYZ".into(),
        product: 0,
    };
    assert_eq!(
        code(&banking.open_account(unknown).await.unwrap_err()),
        ErrorCode::UnknownCurrency
    );

    let oversized = v1::CreateTransfersRequest {
        transfers: vec![v1::Transfer::default(); 8_191],
        ..Default::default()
    };
    assert_eq!(
        code(&ledger.create_transfers(oversized).await.unwrap_err()),
        ErrorCode::TooManyEvents
    );

    // Garbage bytes on the gRPC port: the connection dies, the server does not.
    for garbage in [
        &b"\x00\x01\x02 hello this is not http/2"[..],
        &[0xff; 4096][..],
    ] {
        let mut socket = std::net::TcpStream::connect(node.grpc).unwrap();
        let _ = socket.write_all(garbage);
        drop(socket);
    }
    assert_eq!(
        balance(&mut banking, &alice).await.posted,
        "10.00",
        "refused calls changed nothing"
    );
    node.stop();
}

/// Sends single-transfer requests until told to stop; returns the ids acknowledged.
async fn load(
    endpoint: String,
    from: u128,
    to: u128,
    first_id: u128,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<u128> {
    let Ok(channel) = Channel::from_shared(endpoint).unwrap().connect().await else {
        return vec![];
    };
    let mut ledger = LedgerClient::new(channel);
    let mut acknowledged = Vec::new();
    let mut id = first_id;
    while !*stop.borrow() {
        let transfer = corebank_ledger::Transfer {
            id,
            debit_account_id: from,
            credit_account_id: to,
            amount: 1,
            ledger: 978,
            code: 3,
            ..Default::default()
        };
        let request = v1::CreateTransfersRequest {
            transfers: vec![transfer.into()],
            ..Default::default()
        };
        match ledger.create_transfers(request).await {
            Ok(response) if response.get_ref().results.is_empty() => acknowledged.push(id),
            Ok(response) => panic!("transfer {id} failed: {:?}", response.get_ref().results),
            Err(_) => break, // the node died
        }
        id += 1;
    }
    acknowledged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_transfer_and_retries_apply_once() {
    let dir = tempfile::tempdir().unwrap();
    // Thousands of one-unit transfers a second from one account is card testing to the
    // fraud screen; this test is about durability, screening has its own.
    let node = NodeProcess::insecure_with(dir.path(), &["--risk", "off"]);
    let mut ledger = LedgerClient::new(channel(node.endpoint()).await);
    // A funded source and eight sinks, on the raw ledger API.
    let accounts: Vec<v1::Account> = (1..=9u128)
        .map(|id| {
            corebank_ledger::Account {
                id: 5_000_000 + id,
                ledger: 978,
                code: 20,
                ..Default::default()
            }
            .into()
        })
        .collect();
    assert!(
        ledger
            .create_accounts(v1::CreateAccountsRequest {
                accounts,
                ..Default::default()
            })
            .await
            .unwrap()
            .get_ref()
            .results
            .is_empty()
    );

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut clients = Vec::new();
    for client in 0..8u128 {
        let endpoint = node.endpoint();
        clients.push(tokio::spawn(load(
            endpoint,
            5_000_001,
            5_000_002 + client,
            (client + 1) << 40,
            stopped.clone(),
        )));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    node.kill();
    let _ = stop.send(true);
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.extend(client.await.unwrap());
    }
    assert!(
        acknowledged.len() > 100,
        "too little load before the kill: {}",
        acknowledged.len()
    );

    let node = NodeProcess::insecure_with(dir.path(), &["--risk", "off"]);
    let mut ledger = LedgerClient::new(channel(node.endpoint()).await);
    for chunk in acknowledged.chunks(8_190) {
        let ids = chunk.iter().map(|id| u128_field(*id).unwrap()).collect();
        let found = ledger
            .lookup_transfers(v1::LookupTransfersRequest {
                ids,
                consistency: 0,
            })
            .await
            .unwrap();
        assert_eq!(
            found.get_ref().transfers.len(),
            chunk.len(),
            "acknowledged transfers are missing after kill -9"
        );
    }
    // Clients retry everything they sent: nothing is applied twice.
    let before = accounts_by_id(&mut ledger).await;
    for chunk in acknowledged.chunks(8_190) {
        let transfers = chunk
            .iter()
            .map(|id| {
                let client = (id >> 40) - 1;
                corebank_ledger::Transfer {
                    id: *id,
                    debit_account_id: 5_000_001,
                    credit_account_id: 5_000_002 + client,
                    amount: 1,
                    ledger: 978,
                    code: 3,
                    ..Default::default()
                }
                .into()
            })
            .collect();
        let response = ledger
            .create_transfers(v1::CreateTransfersRequest {
                transfers,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            response
                .get_ref()
                .results
                .iter()
                .all(|r| r.name == "exists"),
            "a retry was applied again"
        );
    }
    assert_eq!(accounts_by_id(&mut ledger).await, before);
    // Money is conserved: the source paid exactly what the sinks received.
    let after = accounts_by_id(&mut ledger).await;
    let paid = after[&5_000_001].0;
    let received: u128 = (2..=9).map(|i| after[&(5_000_000 + i)].1).sum();
    assert_eq!(paid, received);
    // In-flight transfers at the kill may or may not have been applied; acknowledged ones were.
    assert!(
        paid as usize >= acknowledged.len(),
        "paid {paid} < {} acknowledged",
        acknowledged.len()
    );
    node.stop();
}

/// (debits_posted, credits_posted) of the test accounts.
async fn accounts_by_id(ledger: &mut LedgerClient<Channel>) -> BTreeMap<u128, (u128, u128)> {
    let ids = (1..=9u128)
        .map(|i| u128_field(5_000_000 + i).unwrap())
        .collect();
    let accounts = ledger
        .lookup_accounts(v1::LookupAccountsRequest {
            ids,
            consistency: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .accounts;
    accounts
        .into_iter()
        .map(|a| {
            let a = corebank_ledger::Account::try_from(a).unwrap();
            (a.id, (a.debits_posted, a.credits_posted))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_every_commit_in_order_from_any_position() {
    use corebank_proto::v1::event::Kind;
    use corebank_proto::v1::events_client::EventsClient;
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::insecure(dir.path());
    let mut banking = BankingClient::new(channel(node.endpoint()).await);
    let alice = open(&mut banking, "alice", "EUR").await;
    let bob = open(&mut banking, "bob", "EUR").await;
    let mut events = EventsClient::new(channel(node.endpoint()).await);
    let mut stream = events
        .subscribe(v1::SubscribeRequest { from_position: 0 })
        .await
        .unwrap()
        .into_inner();

    // Everything so far: the branch's internal accounts, then alice's and bob's.
    let mut positions = Vec::new();
    let mut opened = Vec::new();
    while opened.len() < 2 {
        let event = stream.message().await.unwrap().unwrap();
        positions.push(event.position);
        if let Some(Kind::AccountCreated(created)) = event.kind {
            let account = corebank_ledger::Account::try_from(created.account.unwrap()).unwrap();
            if account.code == 10 {
                opened.push(account.id);
            }
        }
    }
    // Then live: a transfer committed after the subscription arrives on the stream.
    banking
        .deposit(deposit(&alice, "5.00", "live-1"))
        .await
        .unwrap();
    banking
        .transfer(transfer(&alice, &bob, "1.00", "live-2"))
        .await
        .unwrap();
    let mut live = Vec::new();
    while live.len() < 2 {
        let event = stream.message().await.unwrap().unwrap();
        if let Some(Kind::Transfer(created)) = event.kind {
            positions.push(event.position);
            live.push(
                corebank_ledger::Transfer::try_from(created.transfer.unwrap())
                    .unwrap()
                    .amount,
            );
        }
    }
    assert_eq!(live, vec![500, 100]);
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "positions must rise: {positions:?}"
    );

    // A subscriber resuming from a position sees only what came after it.
    let resume_at = positions[positions.len() - 2];
    let mut resumed = events
        .subscribe(v1::SubscribeRequest {
            from_position: resume_at,
        })
        .await
        .unwrap()
        .into_inner();
    let first = resumed.message().await.unwrap().unwrap();
    assert_eq!(first.position, *positions.last().unwrap());
    node.stop();
}

#[test]
fn admin_endpoints_answer_health_readiness_and_metrics() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::insecure(dir.path());
    let admin = node.admin.unwrap();
    let get = |path: &str| {
        let mut socket = std::net::TcpStream::connect(admin).unwrap();
        write!(
            socket,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(get("/health").starts_with("HTTP/1.1 200"));
    assert!(get("/ready").starts_with("HTTP/1.1 200"));
    let metrics = get("/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    for family in [
        "corebank_applied_log_index",
        "corebank_raft_is_leader",
        "corebank_ledger_accounts",
    ] {
        assert!(
            metrics.contains(family),
            "{family} missing from:\n{metrics}"
        );
    }
    assert!(get("/nonsense").starts_with("HTTP/1.1 404"));
    node.stop();
}
