//! The generated server and client over a real loopback connection, with a toy
//! ledger service: results, the error model (trailers and details survive the
//! wire), and requests that are refused without harming the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use corebank_ledger::Ledger;
use corebank_proto::convert::{self, u128_field};
use corebank_proto::v1::ledger_client::LedgerClient;
use corebank_proto::v1::ledger_server::{self, LedgerServer};
use corebank_proto::{ApiError, ErrorCode, MAX_MESSAGE_BYTES, v1};
use tonic::codegen::tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status};

/// A single-process stand-in for a branch: a ledger behind a lock, a clock that
/// ticks once per batch.
struct Toy {
    state: Mutex<(Ledger, u64)>,
}

impl Toy {
    fn with<T>(&self, f: impl FnOnce(&mut Ledger, &mut u64) -> T) -> Result<T, Status> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| Status::from(ApiError::from_code(ErrorCode::Internal)))?;
        let (ledger, clock) = &mut *state;
        Ok(f(ledger, clock))
    }
}

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not in the toy"))
}

#[tonic::async_trait]
impl ledger_server::Ledger for Toy {
    async fn create_accounts(
        &self,
        request: Request<v1::CreateAccountsRequest>,
    ) -> Result<Response<v1::CreateAccountsResponse>, Status> {
        let accounts = convert::accounts_from_request(request.get_ref())?;
        self.with(|ledger, clock| {
            *clock += 1_000_000;
            let results = ledger
                .create_accounts(*clock, &accounts)
                .map_err(ApiError::from)?;
            Ok(Response::new(convert::create_accounts_response(
                *clock, &results,
            )))
        })?
    }

    async fn create_transfers(
        &self,
        request: Request<v1::CreateTransfersRequest>,
    ) -> Result<Response<v1::CreateTransfersResponse>, Status> {
        let transfers = convert::transfers_from_request(request.get_ref())?;
        if transfers.first().is_some_and(|t| t.user_data_32 == 503) {
            return Err(ApiError::from_code(ErrorCode::BusyRetry).into());
        }
        self.with(|ledger, clock| {
            *clock += 1_000_000;
            let results = ledger
                .create_transfers(*clock, &transfers)
                .map_err(ApiError::from)?;
            Ok(Response::new(convert::create_transfers_response(
                *clock, &results,
            )))
        })?
    }

    async fn lookup_accounts(
        &self,
        request: Request<v1::LookupAccountsRequest>,
    ) -> Result<Response<v1::LookupAccountsResponse>, Status> {
        let ids = convert::ids_from_request(&request.get_ref().ids)?;
        self.with(|ledger, _| {
            let accounts = ledger.lookup_accounts(&ids).map_err(ApiError::from)?;
            Ok(Response::new(v1::LookupAccountsResponse {
                accounts: accounts.into_iter().map(Into::into).collect(),
            }))
        })?
    }

    async fn lookup_transfers(
        &self,
        _: Request<v1::LookupTransfersRequest>,
    ) -> Result<Response<v1::LookupTransfersResponse>, Status> {
        unimplemented()
    }

    async fn get_account_transfers(
        &self,
        request: Request<v1::GetAccountTransfersRequest>,
    ) -> Result<Response<v1::GetAccountTransfersResponse>, Status> {
        let filter = convert::account_filter_from_request(request.get_ref().filter.as_ref())?;
        self.with(|ledger, _| {
            let transfers = ledger
                .get_account_transfers(&filter)
                .map_err(ApiError::from)?;
            Ok(Response::new(v1::GetAccountTransfersResponse {
                transfers: transfers.into_iter().map(Into::into).collect(),
            }))
        })?
    }

    async fn get_account_balances(
        &self,
        request: Request<v1::GetAccountBalancesRequest>,
    ) -> Result<Response<v1::GetAccountBalancesResponse>, Status> {
        let filter = convert::account_filter_from_request(request.get_ref().filter.as_ref())?;
        self.with(|ledger, _| {
            let balances = ledger
                .get_account_balances(&filter)
                .map_err(ApiError::from)?;
            Ok(Response::new(v1::GetAccountBalancesResponse {
                balances: balances.into_iter().map(Into::into).collect(),
            }))
        })?
    }

    async fn query_accounts(
        &self,
        _: Request<v1::QueryAccountsRequest>,
    ) -> Result<Response<v1::QueryAccountsResponse>, Status> {
        unimplemented()
    }

    async fn query_transfers(
        &self,
        _: Request<v1::QueryTransfersRequest>,
    ) -> Result<Response<v1::QueryTransfersResponse>, Status> {
        unimplemented()
    }
}

async fn serve() -> Result<Channel, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let service = LedgerServer::new(Toy {
        state: Mutex::new((Ledger::new(), 0)),
    })
    .max_decoding_message_size(MAX_MESSAGE_BYTES);
    tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    Ok(Channel::from_shared(format!("http://{address}"))?
        .connect()
        .await?)
}

fn account(id: u128, flags: u32) -> v1::Account {
    v1::Account {
        id: u128_field(id),
        ledger: 978,
        code: 1,
        flags,
        ..Default::default()
    }
}

fn transfer(id: u128, debit: u128, credit: u128, amount: u128) -> v1::Transfer {
    v1::Transfer {
        id: u128_field(id),
        debit_account_id: u128_field(debit),
        credit_account_id: u128_field(credit),
        amount: u128_field(amount),
        ledger: 978,
        code: 1,
        ..Default::default()
    }
}

/// A message that is not a CreateTransfersRequest: field 1 holds bytes that do not
/// decode as a Transfer.
#[derive(Clone, PartialEq, prost::Message)]
struct Garbage {
    #[prost(bytes = "vec", tag = "1")]
    junk: Vec<u8>,
}

#[tokio::test]
async fn batches_results_and_errors_over_the_wire() -> Result<(), Box<dyn std::error::Error>> {
    let channel = serve().await?;
    let mut client = LedgerClient::new(channel.clone());

    // Two accounts; the customer's may not be overdrawn.
    let response = client
        .create_accounts(v1::CreateAccountsRequest {
            accounts: vec![account(1, 0), account(2, 2)],
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(response.results.is_empty());
    assert!(response.timestamp > 0);

    // A deposit, then a withdrawal of more than the balance: one failure, by index.
    let response = client
        .create_transfers(v1::CreateTransfersRequest {
            transfers: vec![transfer(10, 1, 2, 5_000), transfer(11, 2, 1, 9_000)],
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(response.results.len(), 1);
    let failed = &response.results[0];
    assert_eq!(
        (failed.index, failed.code, failed.name.as_str()),
        (1, 54, "exceeds_credits")
    );
    assert!(!failed.description.is_empty());

    let accounts = client
        .lookup_accounts(v1::LookupAccountsRequest {
            ids: vec![2u128.into(), 99u128.into()],
            consistency: 0,
        })
        .await?
        .into_inner()
        .accounts;
    assert_eq!(accounts.len(), 1);
    assert_eq!(convert::u128_of(accounts[0].credits_posted.as_ref()), 5_000);

    // A code that does not fit: the whole request is refused, naming the field.
    let mut bad = transfer(12, 1, 2, 1);
    bad.code = 70_000;
    let status = client
        .create_transfers(v1::CreateTransfersRequest {
            transfers: vec![transfer(13, 1, 2, 1), bad],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let error = ApiError::from_status(&status).ok_or("no corebank error code")?;
    assert_eq!(error.code, ErrorCode::InvalidArgument);
    assert_eq!(error.field, "transfers[1].code");
    assert_eq!(error.reason, "value_out_of_range");

    // A busy branch says so, with its own code.
    let mut busy = transfer(14, 1, 2, 1);
    busy.user_data_32 = 503;
    let status = client
        .create_transfers(v1::CreateTransfersRequest {
            transfers: vec![busy],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        ApiError::from_status(&status).map(|e| e.code),
        Some(ErrorCode::BusyRetry)
    );

    // A filter error from the ledger.
    let status = client
        .get_account_balances(v1::GetAccountBalancesRequest {
            filter: Some(v1::AccountFilter {
                account_id: u128_field(2),
                limit: 10,
                ..Default::default()
            }),
            consistency: 0,
        })
        .await
        .unwrap_err();
    let error = ApiError::from_status(&status).ok_or("no corebank error code")?;
    assert_eq!(
        (error.code, error.reason.as_str()),
        (ErrorCode::FailedPrecondition, "history_not_enabled")
    );

    // Too many ids.
    let status = client
        .lookup_accounts(v1::LookupAccountsRequest {
            ids: vec![1u128.into(); 8_191],
            consistency: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(
        ApiError::from_status(&status).map(|e| e.code),
        Some(ErrorCode::TooManyEvents)
    );

    // A message over 4 MiB is refused by the gRPC layer.
    let status = client
        .lookup_accounts(v1::LookupAccountsRequest {
            ids: vec![u128::MAX.into(); 250_000],
            consistency: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange);
    assert_eq!(ApiError::from_status(&status), None);

    // Bytes that do not decode as the request.
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await?;
    let status = grpc
        .unary(
            Request::new(Garbage {
                junk: vec![0xff; 12],
            }),
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/corebank.v1.Ledger/CreateTransfers",
            ),
            tonic_prost::ProstCodec::<Garbage, v1::CreateTransfersResponse>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal);

    // The server is unharmed and its state unchanged by all of the above.
    let accounts = client
        .lookup_accounts(v1::LookupAccountsRequest {
            ids: vec![1u128.into(), 2u128.into()],
            consistency: 0,
        })
        .await?
        .into_inner()
        .accounts;
    assert_eq!(convert::u128_of(accounts[0].debits_posted.as_ref()), 5_000);
    assert_eq!(convert::u128_of(accounts[1].credits_posted.as_ref()), 5_000);
    assert_eq!(convert::u128_of(accounts[1].debits_posted.as_ref()), 0);
    Ok(())
}
