#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use prost::Message as _;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

/// A service that implements nothing, to show that the generated traits and servers
/// fit together.
struct Nothing;

#[tonic::async_trait]
impl v1::ledger_server::Ledger for Nothing {
    async fn create_accounts(
        &self,
        _: Request<v1::CreateAccountsRequest>,
    ) -> Result<Response<v1::CreateAccountsResponse>, Status> {
        Err(Status::unimplemented("no"))
    }
    async fn create_transfers(
        &self,
        _: Request<v1::CreateTransfersRequest>,
    ) -> Result<Response<v1::CreateTransfersResponse>, Status> {
        Err(Status::unimplemented("no"))
    }
    async fn lookup_accounts(
        &self,
        _: Request<v1::LookupAccountsRequest>,
    ) -> Result<Response<v1::LookupAccountsResponse>, Status> {
        Err(Status::unimplemented("no"))
    }
    async fn lookup_transfers(
        &self,
        _: Request<v1::LookupTransfersRequest>,
    ) -> Result<Response<v1::LookupTransfersResponse>, Status> {
        Err(Status::unimplemented("no"))
    }
    async fn get_account_transfers(
        &self,
        _: Request<v1::GetAccountTransfersRequest>,
    ) -> Result<Response<v1::GetAccountTransfersResponse>, Status> {
        Err(Status::unimplemented("no"))
    }
    async fn get_account_balances(
        &self,
        _: Request<v1::GetAccountBalancesRequest>,
    ) -> Result<Response<v1::GetAccountBalancesResponse>, Status> {
        Err(Status::unimplemented("no"))
    }
    async fn query_accounts(
        &self,
        _: Request<v1::QueryAccountsRequest>,
    ) -> Result<Response<v1::QueryAccountsResponse>, Status> {
        Err(Status::unimplemented("no"))
    }
    async fn query_transfers(
        &self,
        _: Request<v1::QueryTransfersRequest>,
    ) -> Result<Response<v1::QueryTransfersResponse>, Status> {
        Err(Status::unimplemented("no"))
    }
}

#[tonic::async_trait]
impl v1::events_server::Events for Nothing {
    type SubscribeStream = tonic::codegen::tokio_stream::Empty<Result<v1::Event, Status>>;

    async fn subscribe(
        &self,
        _: Request<v1::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        Ok(Response::new(tonic::codegen::tokio_stream::empty()))
    }
}

fn named<S: NamedService>(_: &S) -> &'static str {
    S::NAME
}

#[test]
fn generated_servers_and_clients_exist() {
    let ledger =
        v1::ledger_server::LedgerServer::new(Nothing).max_decoding_message_size(MAX_MESSAGE_BYTES);
    assert_eq!(named(&ledger), SERVICE_NAMES[0]);
    assert_eq!(
        <v1::banking_server::BankingServer<Nothing> as NamedService>::NAME,
        SERVICE_NAMES[1]
    );
    assert_eq!(
        named(&v1::events_server::EventsServer::new(Nothing)),
        SERVICE_NAMES[2]
    );
    // The clients over a tonic channel type-check.
    let _ledger: fn(tonic::transport::Channel) -> v1::ledger_client::LedgerClient<_> =
        v1::ledger_client::LedgerClient::new;
    let _banking: fn(tonic::transport::Channel) -> v1::banking_client::BankingClient<_> =
        v1::banking_client::BankingClient::new;
    let _events: fn(tonic::transport::Channel) -> v1::events_client::EventsClient<_> =
        v1::events_client::EventsClient::new;
}

/// The worst case: every field at its largest. A full batch still fits one message.
#[test]
fn a_full_batch_of_the_largest_events_fits_one_message() {
    let transfer = corebank_ledger::Transfer {
        id: u128::MAX - 1,
        debit_account_id: u128::MAX - 2,
        credit_account_id: u128::MAX - 3,
        amount: u128::MAX,
        pending_id: u128::MAX - 4,
        user_data_128: u128::MAX,
        user_data_64: u64::MAX,
        user_data_32: u32::MAX,
        timeout: u32::MAX,
        ledger: u32::MAX,
        code: u16::MAX,
        flags: corebank_ledger::TransferFlags::from_bits(u16::MAX),
        timestamp: u64::MAX,
    };
    let request = v1::CreateTransfersRequest {
        transfers: vec![transfer.into(); BATCH_EVENTS_MAX],
        ..Default::default()
    };
    let transfers = request.encoded_len();
    assert!(transfers < MAX_MESSAGE_BYTES / 2, "{transfers} bytes");

    let account = corebank_ledger::Account {
        id: u128::MAX,
        debits_pending: u128::MAX,
        debits_posted: u128::MAX,
        credits_pending: u128::MAX,
        credits_posted: u128::MAX,
        user_data_128: u128::MAX,
        user_data_64: u64::MAX,
        user_data_32: u32::MAX,
        ledger: u32::MAX,
        code: u16::MAX,
        flags: corebank_ledger::AccountFlags::from_bits(u16::MAX),
        timestamp: u64::MAX,
    };
    let response = v1::LookupAccountsResponse {
        accounts: vec![account.into(); BATCH_EVENTS_MAX],
    };
    assert!(response.encoded_len() < MAX_MESSAGE_BYTES / 2);

    // A batch in which every event fails, with names and sentences.
    let results: Vec<_> = (0..8_190)
        .map(|index| corebank_ledger::EventResult {
            index,
            result: corebank_ledger::CreateTransferResult::TransferMustHaveTheSameLedgerAsAccounts,
        })
        .collect();
    let response = convert::create_transfers_response(1, &results);
    assert!(response.encoded_len() < MAX_MESSAGE_BYTES);
}

/// A typical transfer stays small on the wire: fixed-size id halves, no strings.
#[test]
fn a_typical_transfer_is_compact() {
    let transfer = corebank_ledger::Transfer {
        id: 0x1234_5678_9abc_def0_1234_5678_9abc_def0,
        debit_account_id: 10_000_001_000,
        credit_account_id: 10_000_001_001,
        amount: 12_34,
        ledger: 978,
        code: 1,
        ..Default::default()
    };
    let message = v1::Transfer::from(transfer);
    assert!(message.encoded_len() <= 96, "{}", message.encoded_len());
}

#[test]
fn the_descriptor_set_describes_every_service() {
    let set = FILE_DESCRIPTOR_SET;
    assert!(!set.is_empty());
    for name in ["Ledger", "Banking", "Events", "ErrorDetail", "U128"] {
        assert!(
            set.windows(name.len()).any(|w| w == name.as_bytes()),
            "{name} missing"
        );
    }
    // The comments travel with it (for reflection-based tools).
    let comment = b"little-endian order of the two halves";
    assert!(set.windows(comment.len()).any(|w| w == comment));
}

/// Every RPC of the three services is documented in docs/api.md.
#[test]
fn docs_name_every_rpc() {
    let api = include_str!("../../../docs/api.md");
    for file in [
        include_str!("../proto/corebank/v1/ledger.proto"),
        include_str!("../proto/corebank/v1/banking.proto"),
        include_str!("../proto/corebank/v1/events.proto"),
    ] {
        for line in file.lines() {
            if let Some(rest) = line.trim().strip_prefix("rpc ") {
                let name = rest.split('(').next().unwrap_or_default();
                assert!(
                    api.contains(&format!("`{name}`")),
                    "{name} is not in docs/api.md"
                );
            }
        }
    }
}

/// The result-code tables of docs/api.md list every code of the ledger, with its
/// number and name, in order.
#[test]
fn docs_list_every_result_code() {
    let api = include_str!("../../../docs/api.md");
    let section = |title: &str| -> Vec<(u32, String)> {
        let start = api.find(title).unwrap_or(api.len());
        api[start..]
            .lines()
            .skip(1)
            .take_while(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let code = cells.get(1)?.parse().ok()?;
                Some((code, cells.get(2)?.trim_matches('`').to_owned()))
            })
            .collect()
    };
    let accounts: Vec<(u32, String)> = corebank_ledger::CreateAccountResult::ALL
        .iter()
        .map(|r| (r.code(), r.as_str().to_owned()))
        .collect();
    assert_eq!(section("#### Account results"), accounts);
    let transfers: Vec<(u32, String)> = corebank_ledger::CreateTransferResult::ALL
        .iter()
        .map(|r| (r.code(), r.as_str().to_owned()))
        .collect();
    assert_eq!(section("#### Transfer results"), transfers);
}
