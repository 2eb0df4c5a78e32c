//! `corebank.v1.Ledger`: the ledger core's operations in batches.

use std::sync::Arc;

use corebank_ledger::Ledger;
use corebank_node::{Node, Request, RequestOutcome};
use corebank_proto::v1::{self, ledger_server};
use corebank_proto::{ApiError, ErrorCode, convert};
use corebank_security::Scope;
use tonic::{Response, Status};

use crate::auth::Gate;
use crate::errors;

#[derive(Clone, Debug)]
pub struct LedgerService {
    pub node: Arc<Node>,
    pub gate: Gate,
}

/// Reads the ledger with the consistency the caller asked for.
pub async fn read<T>(
    node: &Node,
    consistency: i32,
    read: impl FnOnce(&Ledger) -> T,
) -> Result<T, Status> {
    let consistency =
        convert::consistency_from_request(consistency).map_err(|e| errors::status(e.into()))?;
    let outcome = match consistency {
        v1::ReadConsistency::Stale => node.read_local(read),
        v1::ReadConsistency::Linearizable => node.read(read).await,
    };
    outcome.map_err(|e| errors::status(errors::read(e)))
}

fn unexpected() -> Status {
    errors::status(ApiError::new(
        ErrorCode::Internal,
        "the node answered a request of another kind",
    ))
}

#[tonic::async_trait]
impl ledger_server::Ledger for LedgerService {
    async fn create_accounts(
        &self,
        request: tonic::Request<v1::CreateAccountsRequest>,
    ) -> Result<Response<v1::CreateAccountsResponse>, Status> {
        self.gate.check(&request, Scope::Admin)?;
        let accounts = convert::accounts_from_request(request.get_ref()).map_err(Status::from)?;
        match self.node.submit(Request::CreateAccounts(accounts)).await {
            Ok(RequestOutcome::Accounts { timestamp, results }) => Ok(Response::new(
                convert::create_accounts_response(timestamp, &results),
            )),
            Ok(RequestOutcome::Refused(error)) => Err(errors::status(error.into())),
            Ok(_) => Err(unexpected()),
            Err(error) => Err(errors::status(errors::submit(error))),
        }
    }

    async fn create_transfers(
        &self,
        request: tonic::Request<v1::CreateTransfersRequest>,
    ) -> Result<Response<v1::CreateTransfersResponse>, Status> {
        self.gate.check(
            &request,
            if request.get_ref().internal {
                Scope::Admin
            } else {
                Scope::Transfer
            },
        )?;
        let internal = request.get_ref().internal;
        let transfers = convert::transfers_from_request(request.get_ref()).map_err(Status::from)?;
        let count = transfers.len() as u64;
        // Screened like every customer transfer, except the deliveries of other
        // branches' payments (screened at the payer's branch).
        let context = transfers
            .iter()
            .map(|t| {
                if internal || t.code == corebank_banking::transfer_code::CROSS_BRANCH_IN {
                    corebank_screening::TransferContext::INTERNAL
                } else {
                    corebank_screening::TransferContext::default()
                }
            })
            .collect();
        match self
            .node
            .submit(Request::screened(transfers, context))
            .await
        {
            Ok(RequestOutcome::Screened {
                timestamp, results, ..
            }) => {
                metrics::counter!("corebank_transfer_events_total", "outcome" => "created")
                    .increment(count - results.len() as u64);
                metrics::counter!("corebank_transfer_events_total", "outcome" => "failed")
                    .increment(results.len() as u64);
                Ok(Response::new(convert::create_transfers_response(
                    timestamp, &results,
                )))
            }
            Ok(RequestOutcome::Refused(error)) => Err(errors::status(error.into())),
            Ok(_) => Err(unexpected()),
            Err(error) => Err(errors::status(errors::submit(error))),
        }
    }

    async fn lookup_accounts(
        &self,
        request: tonic::Request<v1::LookupAccountsRequest>,
    ) -> Result<Response<v1::LookupAccountsResponse>, Status> {
        self.gate.check(&request, Scope::Read)?;
        let ids = convert::ids_from_request(&request.get_ref().ids).map_err(Status::from)?;
        let accounts = read(&self.node, request.get_ref().consistency, |ledger| {
            ledger.lookup_accounts(&ids)
        })
        .await?;
        let accounts = accounts.map_err(|e| errors::status(e.into()))?;
        Ok(Response::new(v1::LookupAccountsResponse {
            accounts: accounts.into_iter().map(Into::into).collect(),
        }))
    }

    async fn lookup_transfers(
        &self,
        request: tonic::Request<v1::LookupTransfersRequest>,
    ) -> Result<Response<v1::LookupTransfersResponse>, Status> {
        self.gate.check(&request, Scope::Read)?;
        let ids = convert::ids_from_request(&request.get_ref().ids).map_err(Status::from)?;
        let transfers = read(&self.node, request.get_ref().consistency, |ledger| {
            ledger.lookup_transfers(&ids)
        })
        .await?;
        let transfers = transfers.map_err(|e| errors::status(e.into()))?;
        Ok(Response::new(v1::LookupTransfersResponse {
            transfers: transfers.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_account_transfers(
        &self,
        request: tonic::Request<v1::GetAccountTransfersRequest>,
    ) -> Result<Response<v1::GetAccountTransfersResponse>, Status> {
        self.gate.check(&request, Scope::Read)?;
        let filter = convert::account_filter_from_request(request.get_ref().filter.as_ref())
            .map_err(Status::from)?;
        let transfers = read(&self.node, request.get_ref().consistency, |l| {
            l.get_account_transfers(&filter)
        })
        .await?;
        let transfers = transfers.map_err(|e| errors::status(e.into()))?;
        Ok(Response::new(v1::GetAccountTransfersResponse {
            transfers: transfers.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_account_balances(
        &self,
        request: tonic::Request<v1::GetAccountBalancesRequest>,
    ) -> Result<Response<v1::GetAccountBalancesResponse>, Status> {
        self.gate.check(&request, Scope::Read)?;
        let filter = convert::account_filter_from_request(request.get_ref().filter.as_ref())
            .map_err(Status::from)?;
        let balances = read(&self.node, request.get_ref().consistency, |l| {
            l.get_account_balances(&filter)
        })
        .await?;
        let balances = balances.map_err(|e| errors::status(e.into()))?;
        Ok(Response::new(v1::GetAccountBalancesResponse {
            balances: balances.into_iter().map(Into::into).collect(),
        }))
    }

    async fn query_accounts(
        &self,
        request: tonic::Request<v1::QueryAccountsRequest>,
    ) -> Result<Response<v1::QueryAccountsResponse>, Status> {
        self.gate.check(&request, Scope::Read)?;
        let filter = convert::query_filter_from_request(request.get_ref().filter.as_ref())
            .map_err(Status::from)?;
        let accounts = read(&self.node, request.get_ref().consistency, |l| {
            l.query_accounts(&filter)
        })
        .await?;
        let accounts = accounts.map_err(|e| errors::status(e.into()))?;
        Ok(Response::new(v1::QueryAccountsResponse {
            accounts: accounts.into_iter().map(Into::into).collect(),
        }))
    }

    async fn query_transfers(
        &self,
        request: tonic::Request<v1::QueryTransfersRequest>,
    ) -> Result<Response<v1::QueryTransfersResponse>, Status> {
        self.gate.check(&request, Scope::Read)?;
        let filter = convert::query_filter_from_request(request.get_ref().filter.as_ref())
            .map_err(Status::from)?;
        let transfers = read(&self.node, request.get_ref().consistency, |l| {
            l.query_transfers(&filter)
        })
        .await?;
        let transfers = transfers.map_err(|e| errors::status(e.into()))?;
        Ok(Response::new(v1::QueryTransfersResponse {
            transfers: transfers.into_iter().map(Into::into).collect(),
        }))
    }
}
