//! The client against a toy node over real loopback connections: batching,
//! retries, timeouts, credentials, TLS, banking idempotency and the event stream.
//!
//! Nothing here waits for time to pass in the hope that something happened: the
//! toy holds requests at a gate, and the tests wait for conditions (a request
//! arrived, the client's queue holds so many events) before going on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod toy;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use corebank_client::{
    BatchPolicy, Client, ClientConfig, ClientError, ErrorCode, RetryPolicy, TlsSettings, v1,
};
use corebank_ledger::{
    Account, AccountFilter, AccountFlags, CreateTransferResult, EventResult, Transfer,
    TransferFlags,
};
use corebank_proto::ApiError;
use corebank_security::certs::{DevCa, NodeCertRequest};
use corebank_security::{ClientSpec, Scope, ScopeSet};
use futures_util::StreamExt as _;
use toy::{Fault, ToyState};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BANK: u128 = 1;
const ALICE: u128 = 2;
const BOB: u128 = 3;

/// Fast retries, so that the tests do not wait on backoff.
fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        jitter: true,
    }
}

fn config(address: std::net::SocketAddr) -> ClientConfig {
    ClientConfig::new(format!("http://{address}")).with_retries(fast_retries())
}

async fn start(
    api_key: Option<&str>,
) -> Result<(Arc<ToyState>, ClientConfig), Box<dyn std::error::Error>> {
    let state = ToyState::new(api_key);
    let address = toy::serve(state.clone(), None).await?;
    Ok((state, config(address)))
}

fn account(id: u128, flags: AccountFlags) -> Account {
    Account {
        id,
        ledger: 978,
        code: 1,
        flags,
        ..Account::default()
    }
}

fn transfer(id: u128, debit: u128, credit: u128, amount: u128) -> Transfer {
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: 978,
        code: 1,
        ..Transfer::default()
    }
}

/// The bank (may go negative), Alice (may not be overdrawn) with `funds`, and Bob.
async fn open_accounts(client: &Client, funds: u128) -> TestResult {
    let results = client
        .create_accounts(&[
            account(BANK, AccountFlags::empty()),
            account(ALICE, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
            account(BOB, AccountFlags::empty()),
        ])
        .await?;
    assert_eq!(results, vec![]);
    let results = client
        .create_transfers(&[transfer(1, BANK, ALICE, funds)])
        .await?;
    assert_eq!(results, vec![]);
    Ok(())
}

/// Waits (bounded) until `condition` holds.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting until {what}");
}

// ------------------------------------------------------------------ batching

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_single_transfers_share_requests_and_get_their_own_results() -> TestResult {
    let (state, config) = start(None).await?;
    let client = Client::connect(config).await?;
    open_accounts(&client, 100).await?;
    let before = state.transfer_requests();

    // Hold every CreateTransfers request until all the calls are made.
    state.gate.send_replace(false);
    const CALLS: u128 = 60;
    let mut calls = Vec::new();
    for n in 0..CALLS {
        let client = client.clone();
        // Call 7 overdraws Alice (100 in all, 59 spent by the others); the rest
        // move 1 each.
        let amount = if n == 7 { 1_000 } else { 1 };
        calls.push(tokio::spawn(async move {
            client
                .create_transfer(transfer(100 + n, ALICE, BOB, amount))
                .await
        }));
    }
    // The first batch is in flight (held at the gate); every other call waits in
    // the client's queue for it to return.
    let mut arrivals = state.transfer_arrivals.subscribe();
    arrivals.wait_for(|count| *count > before).await?;
    let first_batch = *toy::lock(&state.transfer_batches).last().unwrap_or(&0);
    let expected_queued = usize::try_from(CALLS)? - first_batch;
    wait_until("every call is queued", || {
        client.stats().transfers.queued == expected_queued
    })
    .await;
    state.gate.send_replace(true);

    for (n, call) in calls.into_iter().enumerate() {
        let result = call.await??;
        let expected = (n == 7).then_some(CreateTransferResult::ExceedsCredits);
        assert_eq!(result, expected, "call {n}");
    }
    let requests = state.transfer_requests() - before;
    assert!(requests <= 2, "{requests} requests for {CALLS} calls");
    let stats = client.stats().transfers;
    assert_eq!(
        (stats.queued, stats.requests, stats.events),
        (0, u64::try_from(requests)?, 60)
    );
    let alice = state.ledger(|ledger| ledger.account(ALICE)).unwrap();
    assert_eq!(alice.debits_posted, 59);
    Ok(())
}

#[tokio::test]
async fn a_single_event_may_not_be_linked() -> TestResult {
    let (state, config) = start(None).await?;
    let client = Client::connect(config).await?;
    let mut linked = transfer(10, ALICE, BOB, 1);
    linked.flags = TransferFlags::LINKED;
    let error = client.create_transfer(linked).await.unwrap_err();
    assert_eq!(error.code(), "invalid_input");
    assert!(matches!(
        error,
        ClientError::InvalidInput { reason: "linked_not_allowed", ref field, .. } if field == "transfer.flags"
    ));
    assert_eq!(
        client
            .create_account(account(10, AccountFlags::LINKED))
            .await
            .unwrap_err()
            .code(),
        "invalid_input"
    );
    assert_eq!(state.requests(), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_busy_at_once() -> TestResult {
    let (state, config) = start(None).await?;
    let client = Client::connect(config.with_batch(BatchPolicy {
        queue_capacity: 2,
        ..BatchPolicy::default()
    }))
    .await?;
    open_accounts(&client, 100).await?;
    let before = state.transfer_requests();
    state.gate.send_replace(false);

    let first = {
        let client = client.clone();
        tokio::spawn(async move { client.create_transfer(transfer(10, ALICE, BOB, 1)).await })
    };
    state
        .transfer_arrivals
        .subscribe()
        .wait_for(|count| *count > before)
        .await?;
    let mut waiting = Vec::new();
    for id in [11, 12] {
        let client = client.clone();
        waiting.push(tokio::spawn(async move {
            client.create_transfer(transfer(id, ALICE, BOB, 1)).await
        }));
    }
    wait_until("two calls are queued", || {
        client.stats().transfers.queued == 2
    })
    .await;

    let error = client
        .create_transfer(transfer(13, ALICE, BOB, 1))
        .await
        .unwrap_err();
    assert_eq!(error, ClientError::Busy { capacity: 2 });
    assert_eq!(error.code(), "busy");

    state.gate.send_replace(true);
    assert_eq!(first.await??, None);
    for call in waiting {
        assert_eq!(call.await??, None);
    }
    assert_eq!(state.transfer_requests() - before, 2);
    Ok(())
}

// ------------------------------------------------------------------ retries

#[tokio::test]
async fn busy_retry_is_retried_transparently_and_applied_once() -> TestResult {
    let (state, config) = start(None).await?;
    let client = Client::connect(config).await?;
    open_accounts(&client, 100).await?;
    let (requests, transfer_requests) = (state.requests(), state.transfer_requests());

    state.fail_next([Fault::Busy, Fault::Busy]);
    assert_eq!(
        client.create_transfer(transfer(10, ALICE, BOB, 30)).await?,
        None
    );
    // Three attempts; the toy turned the first two away before applying anything.
    assert_eq!(state.requests() - requests, 3);
    assert_eq!(state.transfer_requests() - transfer_requests, 1);
    let alice = state.ledger(|ledger| ledger.account(ALICE)).unwrap();
    assert_eq!(alice.debits_posted, 30);

    // After answers that said "nothing was done", `exists` is reported as it is:
    // the transfer existed before this call.
    state.fail_next([Fault::Busy]);
    assert_eq!(
        client.create_transfer(transfer(10, ALICE, BOB, 30)).await?,
        Some(CreateTransferResult::Exists)
    );
    let alice = state.ledger(|ledger| ledger.account(ALICE)).unwrap();
    assert_eq!(alice.debits_posted, 30);
    Ok(())
}

#[tokio::test]
async fn a_lost_answer_is_retried_and_exists_counts_as_created() -> TestResult {
    let (state, config) = start(None).await?;
    let client = Client::connect(config).await?;
    open_accounts(&client, 100).await?;

    // The first attempt is applied, its answer lost; the retry answers `exists`.
    state.fail_next([Fault::ApplyThenLose]);
    assert_eq!(
        client.create_transfer(transfer(10, ALICE, BOB, 30)).await?,
        None
    );

    // A linked chain (payment and fee) and a plain transfer: the same.
    let mut payment = transfer(11, ALICE, BOB, 20);
    payment.flags = TransferFlags::LINKED;
    let fee = transfer(12, ALICE, BANK, 1);
    let overdraft = transfer(13, ALICE, BOB, 1_000);
    state.fail_next([Fault::ApplyThenLose]);
    let results = client
        .create_transfers(&[payment, fee, transfer(14, BANK, BOB, 5), overdraft])
        .await?;
    // The overdraft failed in the first attempt, which burnt its id.
    assert_eq!(
        results,
        vec![EventResult {
            index: 3,
            result: CreateTransferResult::IdAlreadyFailed
        }]
    );

    // Each transfer is in the ledger once.
    let alice = state.ledger(|ledger| ledger.account(ALICE)).unwrap();
    assert_eq!(alice.debits_posted, 30 + 20 + 1);
    let transfers = client
        .get_account_transfers(AccountFilter::new(ALICE, 100))
        .await?;
    let ids: Vec<u128> = transfers.iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![1, 10, 11, 12]);

    // Accounts too.
    state.fail_next([Fault::ApplyThenLose]);
    assert_eq!(
        client
            .create_account(account(20, AccountFlags::empty()))
            .await?,
        None
    );
    assert_eq!(client.lookup_accounts(&[20]).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn refusals_come_back_at_once_with_their_code() -> TestResult {
    let (state, config) = start(None).await?;
    let client = Client::connect(config).await?;

    state.fail_next([Fault::Refuse(
        ApiError::new(
            ErrorCode::InvalidArgument,
            "transfers[0].code: 70000 is out of range",
        )
        .with_field("transfers[0].code")
        .with_reason("value_out_of_range"),
    )]);
    let error = client
        .create_transfers(&[transfer(10, ALICE, BOB, 1)])
        .await
        .unwrap_err();
    assert_eq!(error.code(), "invalid_argument");
    let api = error.api_error().unwrap();
    assert_eq!(
        (api.field.as_str(), api.reason.as_str()),
        ("transfers[0].code", "value_out_of_range")
    );
    assert!(!error.outcome_unknown());
    assert_eq!(state.requests(), 1);

    state.fail_next([Fault::Refuse(ApiError::new(
        ErrorCode::PermissionDenied,
        "this call needs the admin scope",
    ))]);
    let error = client.lookup_accounts(&[1]).await.unwrap_err();
    assert_eq!(
        error,
        ClientError::PermissionDenied {
            message: "this call needs the admin scope".into()
        }
    );
    assert_eq!(state.requests(), 2);

    // `internal`: maybe applied, but not retried (a server bug would repeat).
    state.fail_next([Fault::Refuse(ApiError::from_code(ErrorCode::Internal))]);
    let error = client.lookup_accounts(&[1]).await.unwrap_err();
    assert_eq!(error.code(), "internal");
    assert!(error.outcome_unknown());
    assert_eq!(state.requests(), 3);

    // Refused by the client before anything is sent.
    let too_many = vec![1_u128; 8_191];
    let error = client.lookup_accounts(&too_many).await.unwrap_err();
    assert!(matches!(
        error,
        ClientError::InvalidInput {
            reason: "too_many_events",
            ..
        }
    ));
    assert_eq!(state.requests(), 3);
    Ok(())
}

#[tokio::test]
async fn retries_stop_at_max_attempts() -> TestResult {
    let (state, config) = start(None).await?;
    let client = Client::connect(config.with_retries(RetryPolicy {
        max_attempts: 3,
        ..fast_retries()
    }))
    .await?;
    state.fail_next([Fault::Busy, Fault::Busy, Fault::Busy, Fault::Busy]);
    let error = client.lookup_accounts(&[1]).await.unwrap_err();
    assert_eq!(error.code(), "busy_retry");
    assert_eq!(state.requests(), 3);
    Ok(())
}

#[tokio::test]
async fn an_election_is_waited_for_without_using_up_the_attempts() -> TestResult {
    let (state, config) = start(None).await?;
    let client = Client::connect(
        config
            .with_total_timeout(Duration::from_secs(20))
            .with_retries(RetryPolicy {
                max_attempts: 2,
                ..fast_retries()
            }),
    )
    .await?;
    // Six answers of a replica that knows no leader yet, then the branch leads
    // again: the call goes through, though it allows only two attempts.
    state.fail_next((0..6).map(|_| Fault::Refuse(ApiError::not_leader(None))));
    assert_eq!(client.lookup_accounts(&[1]).await?, vec![]);
    assert_eq!(state.requests(), 7);

    // An election that never ends runs into the total timeout, and the caller
    // learns that no leader is known.
    let client = Client::connect(
        ClientConfig::new(client.endpoint())
            .with_total_timeout(Duration::from_millis(300))
            .with_retries(fast_retries()),
    )
    .await?;
    state.fail_next((0..10_000).map(|_| Fault::Refuse(ApiError::not_leader(None))));
    let error = client.lookup_accounts(&[1]).await.unwrap_err();
    assert_eq!(error.code(), "not_leader");
    Ok(())
}

// ------------------------------------------------------------------ timeouts

#[tokio::test]
async fn a_request_that_gets_no_answer_times_out() -> TestResult {
    let (state, config) = start(None).await?;
    let client = Client::connect(
        config
            .with_request_timeout(Duration::from_millis(150))
            .with_retries(RetryPolicy {
                max_attempts: 2,
                ..fast_retries()
            }),
    )
    .await?;

    // A read is retried after a timeout, then the timeout is returned.
    state.fail_next([Fault::Hang, Fault::Hang]);
    let error = client.lookup_accounts(&[1]).await.unwrap_err();
    assert_eq!(
        error,
        ClientError::Timeout {
            after: Duration::from_millis(150)
        }
    );
    assert_eq!(error.code(), "timeout");
    assert!(error.outcome_unknown());
    assert_eq!(state.requests(), 2);

    // Opening an account is not idempotent: no retry after a timeout.
    state.fail_next([Fault::Hang]);
    let error = client
        .open_account("customer-1", "EUR", v1::Product::Current)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "timeout");
    assert_eq!(state.requests(), 3);

    // The connection is still good.
    assert_eq!(client.lookup_accounts(&[1]).await?, vec![]);
    Ok(())
}

#[tokio::test]
async fn the_total_timeout_bounds_the_retries() -> TestResult {
    let (state, config) = start(None).await?;
    let client = Client::connect(
        config
            .with_request_timeout(Duration::from_millis(100))
            .with_total_timeout(Duration::from_millis(250))
            .with_retries(RetryPolicy {
                max_attempts: 100,
                ..fast_retries()
            }),
    )
    .await?;
    state.fail_next((0..100).map(|_| Fault::Hang));
    let error = client.lookup_accounts(&[1]).await.unwrap_err();
    assert_eq!(error.code(), "timeout");
    // Two full attempts of 100 ms, and a third cut short: never 100.
    let attempts = state.requests();
    assert!((2..=4).contains(&attempts), "{attempts} attempts");
    Ok(())
}

// ------------------------------------------------------------------ credentials

#[tokio::test]
async fn the_api_key_is_sent_as_a_bearer_token() -> TestResult {
    let key = "cbk_0123456789ab_0000000000000000000000000000000000000000000000000000000000000000";
    let (state, config) = start(Some(key)).await?;

    let client = Client::connect(config.clone().with_api_key(key)).await?;
    assert_eq!(client.lookup_accounts(&[1]).await?, vec![]);
    assert_eq!(state.requests(), 1);

    for client_config in [
        config.clone(),
        config.with_api_key("cbk_0123456789ab_wrong"),
    ] {
        let client = Client::connect(client_config).await?;
        let error = client.lookup_accounts(&[1]).await.unwrap_err();
        assert!(
            matches!(error, ClientError::Unauthenticated { .. }),
            "{error:?}"
        );
        assert_eq!(error.code(), "unauthenticated");
    }
    // Refused once each: never retried.
    assert_eq!(
        state
            .refused_credentials
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    Ok(())
}

// ------------------------------------------------------------------ banking

#[tokio::test]
async fn banking_retries_reuse_the_idempotency_key() -> TestResult {
    let (state, config) = start(None).await?;
    let client = Client::connect(config).await?;

    // No key given: the client makes one and reuses it for the retry, so the
    // retry gets the first attempt's receipt.
    state.fail_next([Fault::ApplyThenLose]);
    let receipt = client
        .deposit("XC68CORE00010000001000", "250.00", None)
        .await?;
    assert!(receipt.replayed);
    assert_eq!(receipt.amount, "250.00");
    let keys = toy::lock(&state.deposit_keys).clone();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1]);
    assert_eq!(keys[0].len(), 36);

    // The caller's own key is used as it is.
    let receipt = client
        .deposit("XC68CORE00010000001000", "10.00", Some("salary-2026-11"))
        .await?;
    assert!(!receipt.replayed);
    let again = client
        .deposit("XC68CORE00010000001000", "10.00", Some("salary-2026-11"))
        .await?;
    assert!(again.replayed);
    assert_eq!(again.transfer_id, receipt.transfer_id);

    // Opening an account has no key: a lost answer is not retried.
    state.fail_next([Fault::ApplyThenLose]);
    let error = client
        .open_account("customer-1", "EUR", v1::Product::Current)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "transport");
    assert!(error.outcome_unknown());
    assert_eq!(state.opened.load(std::sync::atomic::Ordering::SeqCst), 1);
    // ... but a busy node did nothing, so that is retried.
    state.fail_next([Fault::Busy]);
    let opened = client
        .open_account("customer-2", "EUR", v1::Product::Savings)
        .await?;
    assert_eq!(opened.currency, "EUR");
    assert_eq!(opened.product, i32::from(v1::Product::Savings));
    Ok(())
}

// ------------------------------------------------------------------ events

#[tokio::test]
async fn the_event_stream_resumes_where_it_broke() -> TestResult {
    let (state, config) = start(None).await?;
    let client = Client::connect(config).await?;
    state
        .too_slow_once
        .store(true, std::sync::atomic::Ordering::SeqCst);

    let positions: Vec<u64> = client
        .subscribe(0)
        .take(5)
        .map(|event| event.map(|event| event.position))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    assert_eq!(positions, toy::EVENT_POSITIONS);
    // Subscribed from 0, then again after the last event delivered (2).
    assert_eq!(*toy::lock(&state.subscriptions), vec![0, 2]);

    // An error that retrying cannot fix ends the stream.
    state.fail_next([Fault::Refuse(ApiError::from_code(
        ErrorCode::PositionTooOld,
    ))]);
    let mut stream = client.subscribe(3);
    let error = stream.next().await.unwrap().unwrap_err();
    assert_eq!(error.code(), "position_too_old");
    assert!(stream.next().await.is_none());
    Ok(())
}

// ------------------------------------------------------------------ connection

#[tokio::test]
async fn an_unreachable_node_is_a_transport_error() -> TestResult {
    // Bind, then close: nothing listens on that port any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    drop(listener);
    let error = Client::connect(config(address)).await.unwrap_err();
    assert_eq!(error.code(), "transport");
    assert!(error.to_string().contains(&address.to_string()), "{error}");
    Ok(())
}

/// Development certificates in `dir`: CA, node (localhost, 127.0.0.1, ::1), and
/// a client `teller` with the transfer scope.
fn write_certs(dir: &Path, ca: &DevCa) -> TestResult {
    let node = ca.issue_node(&NodeCertRequest::default(), 1)?;
    let teller = ca.issue_client(
        &ClientSpec::new("teller", ScopeSet::only(Scope::Transfer))?,
        1,
    )?;
    std::fs::write(dir.join("ca.pem"), ca.cert_pem())?;
    std::fs::write(dir.join("node.pem"), &node.cert_pem)?;
    std::fs::write(dir.join("node-key.pem"), node.key_pem.expose())?;
    std::fs::write(dir.join("client.pem"), &teller.cert_pem)?;
    std::fs::write(dir.join("client-key.pem"), teller.key_pem.expose())?;
    Ok(())
}

async fn start_tls(
    dir: &Path,
) -> Result<(Arc<ToyState>, std::net::SocketAddr), Box<dyn std::error::Error>> {
    let server_config = corebank_security::tls::server_config_from_files(
        &dir.join("node.pem"),
        &dir.join("node-key.pem"),
        Some(&dir.join("ca.pem")),
    )?;
    let state = ToyState::new(None);
    let address = toy::serve(state.clone(), Some(server_config)).await?;
    Ok((state, address))
}

#[tokio::test]
async fn tls_with_the_ca_and_a_client_certificate() -> TestResult {
    let dir = tempfile::tempdir()?;
    write_certs(dir.path(), &DevCa::generate(1)?)?;
    let (state, address) = start_tls(dir.path()).await?;

    // Mutual TLS: the node sees the client certificate's name.
    let tls = TlsSettings::new(dir.path().join("ca.pem")).with_client_cert(
        dir.path().join("client.pem"),
        dir.path().join("client-key.pem"),
    );
    let client = Client::connect(
        ClientConfig::new(format!("https://{address}"))
            .with_tls(tls)
            .with_retries(fast_retries()),
    )
    .await?;
    assert_eq!(client.endpoint(), format!("https://{address}"));
    assert_eq!(
        client
            .create_account(account(7, AccountFlags::empty()))
            .await?,
        None
    );
    assert_eq!(client.lookup_accounts(&[7]).await?.len(), 1);
    assert_eq!(*toy::lock(&state.peer_names), vec!["teller", "teller"]);

    // The CA alone (a client that would authenticate with an API key), checking
    // the certificate against the name `localhost`.
    let tls = TlsSettings::new(dir.path().join("ca.pem")).with_server_name("localhost");
    let client = Client::connect(ClientConfig::new(format!("{address}")).with_tls(tls)).await?;
    assert!(client.endpoint().starts_with("https://"));
    assert_eq!(client.lookup_accounts(&[7]).await?.len(), 1);
    assert_eq!(toy::lock(&state.peer_names).len(), 2);
    Ok(())
}

#[tokio::test]
async fn tls_refuses_a_node_whose_certificate_is_not_trusted() -> TestResult {
    let dir = tempfile::tempdir()?;
    write_certs(dir.path(), &DevCa::generate(1)?)?;
    let (state, address) = start_tls(dir.path()).await?;

    // Another CA: the node's certificate is not signed by it.
    let other = tempfile::tempdir()?;
    write_certs(other.path(), &DevCa::generate(1)?)?;
    let error = Client::connect(
        ClientConfig::new(format!("https://{address}"))
            .with_tls(TlsSettings::new(other.path().join("ca.pem"))),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Tls {
                reason: "handshake_failed",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.code(), "tls");

    // A name the certificate does not hold.
    let error =
        Client::connect(ClientConfig::new(format!("https://{address}")).with_tls(
            TlsSettings::new(dir.path().join("ca.pem")).with_server_name("branch.example"),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Tls {
                reason: "handshake_failed",
                ..
            }
        ),
        "{error:?}"
    );

    // Plain HTTP/2 to a TLS port does not get through either.
    let error = Client::connect(
        ClientConfig::new(format!("http://{address}")).with_retries(RetryPolicy::none()),
    )
    .await
    .map(|client| async move { client.lookup_accounts(&[1]).await });
    let error = match error {
        Ok(call) => call.await.unwrap_err(),
        Err(error) => error,
    };
    assert_eq!(error.code(), "transport", "{error:?}");
    assert_eq!(state.requests(), 0);
    Ok(())
}

#[tokio::test]
async fn tls_configuration_problems_are_reported_before_connecting() -> TestResult {
    let dir = tempfile::tempdir()?;
    let missing = ClientConfig::new("https://127.0.0.1:1")
        .with_tls(TlsSettings::new(dir.path().join("no-such-ca.pem")));
    let error = Client::connect(missing).await.unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Tls {
                reason: "file_not_found",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("no-such-ca.pem"), "{error}");

    let error = Client::connect(ClientConfig::new("https://127.0.0.1:1"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "invalid_config");
    Ok(())
}
