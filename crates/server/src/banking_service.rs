//! `corebank.v1.Banking`: banking operations in account numbers and decimal amounts,
//! each made of ledger transfers (linked where there are several legs).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use corebank_account_number::AccountNumber;
use corebank_banking::{
    BankingError, Branch, CustomerBalance, InternalAccount, Operation, Product, customer_tag,
    interpret, transfer_code, transfer_id, validate_key,
};
use corebank_ledger::{
    Account, AccountFilter, AccountFlags, CreateTransferResult, PendingStatus, Transfer,
    TransferFlags,
};
use corebank_money::Currency;
use corebank_node::{Node, Request, RequestOutcome};
use corebank_proto::convert::u128_field;
use corebank_proto::v1::{self, banking_server};
use corebank_proto::{ApiError, ErrorCode};
use corebank_screening::{Channel, GeoPoint, TransferContext, Verdict};
use corebank_security::Scope;
use tonic::{Response, Status};

use crate::auth::Gate;
use crate::cross_branch::CrossBranch;
use crate::errors;
use crate::ledger_service::read;

/// Statement pages hold 1 to 1,000 entries (100 when not given).
const STATEMENT_LIMIT_DEFAULT: u32 = 100;
const STATEMENT_LIMIT_MAX: u32 = 1_000;
const REFERENCE_BYTES_MAX: usize = 140;

#[derive(Clone, Debug)]
pub struct BankingService {
    pub node: Arc<Node>,
    pub gate: Gate,
    pub branch: Branch,
    /// The next customer serial to hand out (the leader is the only writer).
    pub next_serial: Arc<AtomicU64>,
    /// Transfers to other branches' customers.
    pub cross_branch: Arc<CrossBranch>,
    /// The fraud screen (to name its reasons in receipts).
    pub engine: Option<Arc<corebank_risk_engine::Engine>>,
}

/// What a submitted request answered: the timestamp of its first event, the failure
/// that explains it (if any), and the screen's assessment when it held the transfer.
#[derive(Clone, Copy, Debug)]
struct Submitted {
    timestamp: u64,
    failure: Option<CreateTransferResult>,
    held: Option<corebank_screening::Assessment>,
}

/// How far back a payment message may date the customer's action.
const OCCURRED_BEFORE_MAX_NS: u64 = 90 * 24 * 3_600 * 1_000_000_000;
/// How far ahead (clock skew between the bank's systems).
const OCCURRED_AHEAD_MAX_NS: u64 = 5 * 60 * 1_000_000_000;

/// The longest device identifier taken.
const DEVICE_ID_BYTES_MAX: usize = 128;

/// The screen's context of a request, checked.
fn context_of(context: Option<&v1::TransferContext>) -> Result<TransferContext, Status> {
    let Some(context) = context else {
        return Ok(TransferContext::default());
    };
    let channel = match context.channel.as_str() {
        "" => Channel::Unknown,
        name => Channel::from_name(name)
            .filter(|c| *c != Channel::Internal && *c != Channel::Unknown)
            .ok_or_else(|| {
                invalid(
                    "context.channel",
                    format!("unknown channel {name:?}: card, online, mobile, branch or atm"),
                )
            })?,
    };
    let merchant_category = u16::try_from(context.merchant_category)
        .ok()
        .filter(|mcc| *mcc <= 9_999)
        .ok_or_else(|| {
            invalid(
                "context.merchant_category",
                "a merchant category code has four digits",
            )
        })?;
    if context.device_id.len() > DEVICE_ID_BYTES_MAX {
        return Err(invalid(
            "context.device_id",
            format!("a device id holds at most {DEVICE_ID_BYTES_MAX} bytes"),
        ));
    }
    let device = if context.device_id.is_empty() {
        0
    } else {
        let hash = blake3::hash(context.device_id.as_bytes());
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&hash.as_bytes()[..8]);
        u64::from_le_bytes(bytes).max(1)
    };
    let location = if context.has_location {
        if !(-90_000_000..=90_000_000).contains(&context.latitude_micro)
            || !(-180_000_000..=180_000_000).contains(&context.longitude_micro)
        {
            return Err(invalid(
                "context",
                "latitude is -90e6..90e6 and longitude -180e6..180e6 micro-degrees",
            ));
        }
        Some(GeoPoint {
            lat_micro: context.latitude_micro,
            lon_micro: context.longitude_micro,
        })
    } else {
        None
    };
    if context.occurred_at_ns != 0 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let earliest = now.saturating_sub(OCCURRED_BEFORE_MAX_NS);
        let latest = now.saturating_add(OCCURRED_AHEAD_MAX_NS);
        if !(earliest..=latest).contains(&context.occurred_at_ns) {
            return Err(invalid(
                "context.occurred_at_ns",
                "the time the customer acted must lie within the last 90 days and at most 5 minutes ahead",
            ));
        }
    }
    Ok(TransferContext {
        channel,
        merchant_category,
        device,
        location,
        occurred_at_ns: context.occurred_at_ns,
    })
}

fn bank_error(error: BankingError) -> Status {
    errors::status(errors::banking(&error))
}

fn invalid(field: &str, message: impl Into<String>) -> Status {
    errors::status(ApiError::new(ErrorCode::InvalidArgument, message).with_field(field))
}

/// A fresh random transfer id for a call without an idempotency key.
fn random_id() -> Result<u128, Status> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        errors::status(ApiError::new(
            ErrorCode::Internal,
            format!("no randomness: {e}"),
        ))
    })?;
    Ok(match u128::from_le_bytes(bytes) {
        0 | u128::MAX => 1,
        id => id,
    })
}

fn check_reference(reference: &str) -> Result<(), Status> {
    if reference.len() > REFERENCE_BYTES_MAX {
        return Err(invalid(
            "reference",
            format!("the reference holds at most {REFERENCE_BYTES_MAX} bytes"),
        ));
    }
    Ok(())
}

/// The first failure that explains a request (a chain's `linked_event_failed` is only
/// the echo of another event's failure).
fn explaining_failure(
    results: &[corebank_ledger::CreateTransfersResult],
) -> Option<CreateTransferResult> {
    results
        .iter()
        .find(|r| r.result != CreateTransferResult::LinkedEventFailed)
        .or(results.first())
        .map(|r| r.result)
}

impl BankingService {
    fn id_for(&self, operation: Operation, key: &str) -> Result<u128, Status> {
        if key.is_empty() {
            return random_id();
        }
        validate_key(key).map_err(bank_error)?;
        Ok(transfer_id(self.branch.code, operation, key))
    }

    /// A customer account of this branch, by number.
    async fn customer(
        &self,
        field: &str,
        text: &str,
    ) -> Result<(AccountNumber, Account, Currency), Status> {
        let number = self.branch.parse_account(text).map_err(|e| {
            let api = errors::banking(&e).with_field(field);
            errors::status(api)
        })?;
        let id = number.account_id();
        let account = read(&self.node, 0, |ledger| ledger.account(id)).await?;
        let not_found = || {
            bank_error(BankingError::AccountNotFound {
                account: number.to_string(),
            })
        };
        let account = account.ok_or_else(not_found)?;
        if Product::from_code(account.code).is_none() {
            return Err(bank_error(BankingError::NotACustomerAccount {
                account: number.to_string(),
            }));
        }
        let currency = Currency::from_numeric(account.ledger).map_err(|e| bank_error(e.into()))?;
        Ok((number, account, currency))
    }

    fn label(&self, id: u128) -> String {
        self.branch
            .account_number(id)
            .map_or_else(|_| id.to_string(), |n| n.to_string())
    }

    /// Submits transfers for screening (with one context per transfer, or none).
    async fn submit(
        &self,
        transfers: Vec<Transfer>,
        context: Vec<TransferContext>,
    ) -> Result<Submitted, Status> {
        match self
            .node
            .submit(Request::screened(transfers, context))
            .await
        {
            Ok(RequestOutcome::Screened {
                timestamp,
                results,
                decisions,
            }) => Ok(Submitted {
                timestamp,
                failure: explaining_failure(&results),
                held: decisions
                    .iter()
                    .find(|d| d.index == 0 && d.assessment.verdict == Verdict::Hold)
                    .map(|d| d.assessment),
            }),
            Ok(RequestOutcome::Refused(error)) => Err(errors::status(error.into())),
            Ok(_) => Err(errors::status(ApiError::new(
                ErrorCode::Internal,
                "unexpected outcome",
            ))),
            Err(error) => Err(errors::status(errors::submit(error))),
        }
    }

    /// The stored transfer (for receipts of replayed requests).
    async fn stored(&self, id: u128) -> Result<Option<Transfer>, Status> {
        read(&self.node, 0, |ledger| ledger.transfer(id)).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn receipt(
        &self,
        transfer: &Transfer,
        outcome: Submitted,
        currency: Currency,
        fee: u128,
        reference: &str,
        labels: (&str, &str),
    ) -> Result<v1::TransferReceipt, Status> {
        interpret(outcome.failure, labels.0, labels.1).map_err(bank_error)?;
        let replayed = outcome.failure == Some(CreateTransferResult::Exists);
        let mut held = outcome.held.map(|assessment| {
            crate::risk_service::decision_assessment(self.engine.as_deref(), &assessment)
        });
        let (timestamp, status) = if replayed {
            // A retry reports where the first attempt stands now (a held transfer may
            // have been released or rejected since).
            let id = transfer.id;
            let (stored, pending, was_held) = self
                .node
                .read_risk(|ledger, risk| {
                    (
                        ledger.transfer(id),
                        ledger.pending_status(id),
                        risk.held_transfer(id).map(|h| (h.score, h.reasons)),
                    )
                })
                .await
                .map_err(|e| errors::status(errors::read(e)))?;
            if let Some((score, reasons)) = was_held {
                held = Some(crate::risk_service::assessment(
                    self.engine.as_deref(),
                    Verdict::Hold,
                    score,
                    &reasons,
                ));
            }
            let status = match (stored, pending) {
                (Some(t), _) if !t.flags.contains(TransferFlags::PENDING) => {
                    v1::TransferStatus::Posted
                }
                (_, Some(PendingStatus::Posted)) => v1::TransferStatus::Posted,
                (_, Some(PendingStatus::Voided)) => v1::TransferStatus::Voided,
                (_, Some(PendingStatus::Expired)) => v1::TransferStatus::Expired,
                _ => v1::TransferStatus::Pending,
            };
            (stored.map_or(0, |t| t.timestamp), status)
        } else if transfer.flags.contains(TransferFlags::PENDING) || held.is_some() {
            (outcome.timestamp, v1::TransferStatus::Pending)
        } else {
            (outcome.timestamp, v1::TransferStatus::Posted)
        };
        Ok(v1::TransferReceipt {
            transfer_id: u128_field(transfer.id),
            debit_account: labels.0.to_string(),
            credit_account: labels.1.to_string(),
            amount: currency.format_amount(transfer.amount),
            currency: currency.alpha.to_string(),
            timestamp_ns: timestamp,
            status: status as i32,
            fee: if fee == 0 {
                String::new()
            } else {
                currency.format_amount(fee)
            },
            reference: reference.to_string(),
            replayed,
            held_for_review: held.is_some(),
            risk: held,
        })
    }

    /// A transfer to a customer of another branch: a saga coordinated by this branch
    /// (docs/clearing.md). The customer sees one transfer with one id: posted, refused
    /// (and voided), or pending while the other branch has not answered yet (it is then
    /// finished in the background; repeat the call with the same key to see where it
    /// stands).
    async fn cross_branch_transfer(
        &self,
        body: &v1::TransferRequest,
        to_number: AccountNumber,
    ) -> Result<v1::TransferReceipt, Status> {
        use corebank_clearing::{Saga, SagaOutcome, SagaStatus};
        if !body.fee.trim().is_empty() {
            return Err(invalid(
                "fee",
                "fees on transfers to other branches are not supported yet",
            ));
        }
        let (from_number, from, currency) =
            self.customer("from_account", &body.from_account).await?;
        let destination = to_number.branch();
        if !self.cross_branch.knows(destination).await {
            return Err(errors::status(
                ApiError::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "branch {destination} is not reachable from branch {}: no route to it is configured",
                        self.branch.code
                    ),
                )
                .with_field("to_account")
                .with_reason("unknown_branch"),
            ));
        }
        let amount = currency
            .parse_positive_amount(&body.amount)
            .map_err(|e| errors::status(errors::banking(&e.into()).with_field("amount")))?;
        let id = self.id_for(Operation::Transfer, &body.idempotency_key)?;
        let saga = Saga::new(id, from.id, to_number.account_id(), amount, currency)
            .map_err(|e| invalid("to_account", e.to_string()))?;
        let labels = (from_number.to_string(), to_number.to_string());
        // A repeated call finds its saga in this branch's ledger: a finished one is
        // answered from there; anything else (new, pending, or the key reused with other
        // fields, which the reservation refuses) goes through the saga.
        let before = self.cross_branch.status(id).await;
        let replayed = matches!(
            before,
            Ok(SagaStatus::Posted(_) | SagaStatus::Voided(_) | SagaStatus::Pending(_))
        );
        let outcome = match before {
            Ok(SagaStatus::Posted(stored)) if stored == saga => SagaOutcome::Posted,
            Ok(SagaStatus::Voided(stored)) if stored == saga => {
                SagaOutcome::Voided { refusal: None }
            }
            _ => self.cross_branch.transfer(&saga).await,
        };
        metrics::counter!("corebank_cross_branch_transfers_total", "outcome" => outcome.code())
            .increment(1);
        let status = match outcome {
            SagaOutcome::Posted => v1::TransferStatus::Posted,
            SagaOutcome::InFlight { .. } | SagaOutcome::Stuck { .. } => v1::TransferStatus::Pending,
            SagaOutcome::Rejected(result) => {
                interpret(Some(result), &labels.0, &labels.1).map_err(bank_error)?;
                return Err(errors::status(ApiError::new(
                    ErrorCode::Internal,
                    "the transfer was refused for a reason without a description",
                )));
            }
            SagaOutcome::Voided { refusal } => {
                let error = match refusal {
                    Some(result) => interpret(Some(result), &labels.0, &labels.1)
                        .err()
                        .map(|e| errors::banking(&e)),
                    None => None,
                };
                let error = error.unwrap_or_else(|| {
                    ApiError::new(
                        ErrorCode::FailedPrecondition,
                        format!(
                            "branch {destination} refused the transfer; the reserved amount was returned to {}",
                            labels.0
                        ),
                    )
                });
                return Err(errors::status(error.with_reason("cross_branch_refused")));
            }
            SagaOutcome::Unknown(error) => {
                return Err(errors::status(ApiError::new(
                    ErrorCode::Internal,
                    format!(
                        "the transfer could not be reserved ({error}); the outcome is unknown: repeat the call with the same idempotency key"
                    ),
                )));
            }
        };
        let timestamp = self.stored(id).await?.map_or(0, |t| t.timestamp);
        Ok(v1::TransferReceipt {
            transfer_id: u128_field(id),
            debit_account: labels.0,
            credit_account: labels.1,
            amount: currency.format_amount(amount),
            currency: currency.alpha.to_string(),
            timestamp_ns: timestamp,
            status: status as i32,
            fee: String::new(),
            reference: body.reference.clone(),
            replayed,
            held_for_review: false,
            risk: None,
        })
    }

    /// Cash in or out at the counter, against the branch's vault in the account's currency.
    #[allow(clippy::too_many_arguments)]
    async fn cash_movement(
        &self,
        operation: Operation,
        account_number: &str,
        amount: &str,
        key: &str,
        reference: &str,
        context: Option<&v1::TransferContext>,
    ) -> Result<v1::TransferReceipt, Status> {
        check_reference(reference)?;
        let context = context_of(context)?;
        let (number, account, currency) = self.customer("account_number", account_number).await?;
        let amount = currency
            .parse_positive_amount(amount)
            .map_err(|e| errors::status(errors::banking(&e.into()).with_field("amount")))?;
        let id = self.id_for(operation, key)?;
        let transfer = if operation == Operation::Deposit {
            self.branch.deposit(id, &account, amount)
        } else {
            self.branch.withdraw(id, &account, amount)
        };
        let outcome = self.submit(vec![transfer], vec![context]).await?;
        let (debit, credit) = (
            self.label(transfer.debit_account_id),
            self.label(transfer.credit_account_id),
        );
        debug_assert!(debit == number.to_string() || credit == number.to_string());
        self.receipt(
            &transfer,
            outcome,
            currency,
            0,
            reference,
            (&debit, &credit),
        )
        .await
    }

    async fn hold_receipt(
        &self,
        hold_id: u128,
        replayed: bool,
        reference: &str,
    ) -> Result<v1::HoldReceipt, Status> {
        let (hold, status, settled_by) = read(&self.node, 0, |ledger| {
            let hold = ledger.transfer(hold_id);
            let status = ledger.pending_status(hold_id);
            // The post or void that settled it, if any (a few at most per hold).
            let settled = hold.and_then(|hold| {
                let filter = AccountFilter {
                    reversed: true,
                    ..AccountFilter::new(hold.debit_account_id, 8_190)
                };
                ledger
                    .get_account_transfers(&filter)
                    .ok()
                    .and_then(|transfers| transfers.into_iter().find(|t| t.pending_id == hold_id))
            });
            (hold, status, settled)
        })
        .await?;
        let hold = hold.ok_or_else(|| bank_error(BankingError::HoldNotFound))?;
        if !hold.flags.contains(TransferFlags::PENDING) {
            return Err(bank_error(BankingError::HoldNotFound));
        }
        let currency = Currency::from_numeric(hold.ledger).map_err(|e| bank_error(e.into()))?;
        let status = match status {
            Some(PendingStatus::Posted) => v1::HoldStatus::Captured,
            Some(PendingStatus::Voided) => v1::HoldStatus::Released,
            Some(PendingStatus::Expired) => v1::HoldStatus::Expired,
            _ => v1::HoldStatus::Active,
        };
        let captured =
            settled_by.filter(|t| t.flags.contains(TransferFlags::POST_PENDING_TRANSFER));
        Ok(v1::HoldReceipt {
            hold_id: u128_field(hold.id),
            account_number: self.label(hold.debit_account_id),
            amount: currency.format_amount(hold.amount),
            currency: currency.alpha.to_string(),
            status: status as i32,
            placed_at_ns: hold.timestamp,
            expires_at_ns: hold.expires_at().unwrap_or(0),
            captured_amount: captured
                .map(|t| currency.format_amount(t.amount))
                .unwrap_or_default(),
            settled_by_transfer_id: settled_by.map(|t| t.id).and_then(u128_field),
            reference: reference.to_string(),
            replayed,
        })
    }
}

#[tonic::async_trait]
impl banking_server::Banking for BankingService {
    async fn open_account(
        &self,
        request: tonic::Request<v1::OpenAccountRequest>,
    ) -> Result<Response<v1::OpenAccountResponse>, Status> {
        self.gate.check(&request, Scope::Transfer)?;
        let body = request.get_ref();
        let tag = customer_tag(&body.customer_id)
            .map_err(|e| errors::status(errors::banking(&e).with_field("customer_id")))?;
        let currency = Currency::from_alpha(&body.currency)
            .map_err(|e| errors::status(errors::banking(&e.into()).with_field("currency")))?;
        let product = match v1::Product::try_from(body.product) {
            Ok(v1::Product::Current) => Product::Current,
            Ok(v1::Product::Savings) => Product::Savings,
            Err(_) => {
                return Err(invalid(
                    "product",
                    format!("unknown product {}", body.product),
                ));
            }
        };
        // A serial is taken by someone else only after a leader change raced this one;
        // the ledger answers `exists*` and the next serial is tried.
        for _ in 0..8 {
            let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
            let account = self
                .branch
                .customer_account(serial, tag, currency, product)
                .map_err(bank_error)?;
            let outcome = self
                .node
                .submit(Request::CreateAccounts(vec![account]))
                .await;
            match outcome {
                Ok(RequestOutcome::Accounts { timestamp, results }) if results.is_empty() => {
                    let number = self.branch.account_number(account.id).map_err(bank_error)?;
                    metrics::counter!("corebank_accounts_opened_total").increment(1);
                    return Ok(Response::new(v1::OpenAccountResponse {
                        account_number: number.to_string(),
                        account_id: u128_field(account.id),
                        currency: currency.alpha.to_string(),
                        product: body.product,
                        timestamp_ns: timestamp,
                    }));
                }
                Ok(RequestOutcome::Accounts { .. }) => continue,
                Ok(RequestOutcome::Refused(error)) => return Err(errors::status(error.into())),
                Ok(_) => {
                    return Err(errors::status(ApiError::new(
                        ErrorCode::Internal,
                        "unexpected outcome",
                    )));
                }
                Err(error) => return Err(errors::status(errors::submit(error))),
            }
        }
        Err(errors::status(ApiError::new(
            ErrorCode::Unavailable,
            "no free account serial was found; retry",
        )))
    }

    async fn deposit(
        &self,
        request: tonic::Request<v1::DepositRequest>,
    ) -> Result<Response<v1::TransferReceipt>, Status> {
        self.gate.check(&request, Scope::Transfer)?;
        let body = request.get_ref();
        let receipt = self
            .cash_movement(
                Operation::Deposit,
                &body.account_number,
                &body.amount,
                &body.idempotency_key,
                &body.reference,
                body.context.as_ref(),
            )
            .await?;
        Ok(Response::new(receipt))
    }

    async fn withdraw(
        &self,
        request: tonic::Request<v1::WithdrawRequest>,
    ) -> Result<Response<v1::TransferReceipt>, Status> {
        self.gate.check(&request, Scope::Transfer)?;
        let body = request.get_ref();
        let receipt = self
            .cash_movement(
                Operation::Withdraw,
                &body.account_number,
                &body.amount,
                &body.idempotency_key,
                &body.reference,
                body.context.as_ref(),
            )
            .await?;
        Ok(Response::new(receipt))
    }

    async fn transfer(
        &self,
        request: tonic::Request<v1::TransferRequest>,
    ) -> Result<Response<v1::TransferReceipt>, Status> {
        self.gate.check(&request, Scope::Transfer)?;
        let body = request.get_ref();
        check_reference(&body.reference)?;
        if let Ok(number) = AccountNumber::parse_for(self.branch.prefix, &body.to_account)
            && number.branch() != self.branch.code
        {
            return self
                .cross_branch_transfer(body, number)
                .await
                .map(Response::new);
        }
        let (from_number, from, currency) =
            self.customer("from_account", &body.from_account).await?;
        let (to_number, to, to_currency) = self.customer("to_account", &body.to_account).await?;
        if currency != to_currency {
            return Err(bank_error(BankingError::CurrencyMismatch {
                from: from_number.to_string(),
                to: to_number.to_string(),
            }));
        }
        let amount = currency
            .parse_positive_amount(&body.amount)
            .map_err(|e| errors::status(errors::banking(&e.into()).with_field("amount")))?;
        let fee = if body.fee.trim().is_empty() {
            0
        } else {
            currency
                .parse_amount(&body.fee)
                .map_err(|e| errors::status(errors::banking(&e.into()).with_field("fee")))?
        };
        let payment_id = self.id_for(Operation::Transfer, &body.idempotency_key)?;
        let fee_id = if body.idempotency_key.is_empty() {
            random_id()?
        } else {
            transfer_id(
                self.branch.code,
                Operation::TransferFee,
                &body.idempotency_key,
            )
        };
        let transfers = self
            .branch
            .transfer((payment_id, fee_id), &from, &to, amount, fee)
            .map_err(bank_error)?;
        let payment = transfers[0];
        let context = context_of(body.context.as_ref())?;
        let contexts = (0..transfers.len())
            .map(|index| {
                if index == 0 {
                    context
                } else {
                    TransferContext::INTERNAL
                }
            })
            .collect();
        let outcome = self.submit(transfers, contexts).await?;
        let labels = (from_number.to_string(), to_number.to_string());
        let receipt = self
            .receipt(
                &payment,
                outcome,
                currency,
                fee,
                &body.reference,
                (&labels.0, &labels.1),
            )
            .await?;
        Ok(Response::new(receipt))
    }

    async fn get_balance(
        &self,
        request: tonic::Request<v1::GetBalanceRequest>,
    ) -> Result<Response<v1::GetBalanceResponse>, Status> {
        self.gate.check(&request, Scope::Read)?;
        let body = request.get_ref();
        let number = self
            .branch
            .parse_account(&body.account_number)
            .map_err(|e| errors::status(errors::banking(&e).with_field("account_number")))?;
        let id = number.account_id();
        let (account, as_of) = read(&self.node, body.consistency, |ledger| {
            (ledger.account(id), ledger.last_timestamp())
        })
        .await?;
        let account = account.ok_or_else(|| {
            bank_error(BankingError::AccountNotFound {
                account: number.to_string(),
            })
        })?;
        let currency = Currency::from_numeric(account.ledger).map_err(|e| bank_error(e.into()))?;
        let balance = CustomerBalance::of(&account);
        Ok(Response::new(v1::GetBalanceResponse {
            account_number: number.to_string(),
            currency: currency.alpha.to_string(),
            currency_exponent: u32::from(currency.exponent),
            posted: currency.format_amount(balance.posted),
            pending_debits: currency.format_amount(balance.held),
            pending_credits: currency.format_amount(balance.incoming),
            available: currency.format_amount(balance.available),
            posted_minor: u128_field(balance.posted),
            pending_debits_minor: u128_field(balance.held),
            pending_credits_minor: u128_field(balance.incoming),
            available_minor: u128_field(balance.available),
            as_of_ns: as_of,
            closed: account.flags.contains(AccountFlags::CLOSED),
        }))
    }

    async fn get_statement(
        &self,
        request: tonic::Request<v1::GetStatementRequest>,
    ) -> Result<Response<v1::GetStatementResponse>, Status> {
        self.gate.check(&request, Scope::Read)?;
        let body = request.get_ref();
        let number = self
            .branch
            .parse_account(&body.account_number)
            .map_err(|e| errors::status(errors::banking(&e).with_field("account_number")))?;
        let id = number.account_id();
        let limit = match body.limit {
            0 => STATEMENT_LIMIT_DEFAULT,
            n if n <= STATEMENT_LIMIT_MAX => n,
            n => {
                return Err(invalid(
                    "limit",
                    format!("a statement page holds 1 to {STATEMENT_LIMIT_MAX} entries, not {n}"),
                ));
            }
        };
        let mut filter = AccountFilter {
            timestamp_min: body.from_ns,
            timestamp_max: body.to_ns,
            reversed: body.reversed,
            // One more than asked, to know whether another page follows.
            limit: limit + 1,
            ..AccountFilter::new(id, limit + 1)
        };
        if !body.page_token.is_empty() {
            let after: u64 = body.page_token.parse().map_err(|_| {
                invalid(
                    "page_token",
                    "the page token is not one this server gave out",
                )
            })?;
            if body.reversed {
                filter.timestamp_max = after.saturating_sub(1).max(1);
            } else {
                filter.timestamp_min = after.saturating_add(1);
            }
        }
        let (account, transfers, balances, reservations) =
            read(&self.node, body.consistency, |ledger| {
                let account = ledger.account(id);
                let transfers = ledger.get_account_transfers(&filter);
                // Where each reservation on the page stands now (posted, voided, expired).
                let reservations: std::collections::HashMap<u128, PendingStatus> = transfers
                    .as_ref()
                    .map(|page| {
                        page.iter()
                            .filter(|t| t.flags.contains(TransferFlags::PENDING))
                            .filter_map(|t| ledger.pending_status(t.id).map(|s| (t.id, s)))
                            .collect()
                    })
                    .unwrap_or_default();
                let balances = ledger.get_account_balances(&AccountFilter {
                    limit: 8_190,
                    direction: corebank_ledger::Direction::Both,
                    code: 0,
                    ..filter
                });
                (account, transfers, balances, reservations)
            })
            .await?;
        let account = account.ok_or_else(|| {
            bank_error(BankingError::AccountNotFound {
                account: number.to_string(),
            })
        })?;
        let currency = Currency::from_numeric(account.ledger).map_err(|e| bank_error(e.into()))?;
        let mut transfers = transfers.map_err(|e| errors::status(e.into()))?;
        let balances = balances.unwrap_or_default();
        let next_page_token = if transfers.len() > limit as usize {
            transfers.truncate(limit as usize);
            transfers
                .last()
                .map(|t| t.timestamp.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let entries = transfers
            .iter()
            .map(|t| {
                let debit = t.debit_account_id == id;
                let counterparty = if debit {
                    t.credit_account_id
                } else {
                    t.debit_account_id
                };
                let balance_after = balances
                    .iter()
                    .find(|b| b.timestamp == t.timestamp)
                    .map(|b| b.credits_posted.saturating_sub(b.debits_posted));
                let pending = t.flags.contains(TransferFlags::PENDING);
                v1::StatementEntry {
                    timestamp_ns: t.timestamp,
                    direction: if debit {
                        v1::EntryDirection::Debit
                    } else {
                        v1::EntryDirection::Credit
                    } as i32,
                    counterparty_account: self.label(counterparty),
                    amount: currency.format_amount(t.amount),
                    amount_minor: u128_field(t.amount),
                    balance_after: balance_after
                        .map(|b| currency.format_amount(b))
                        .unwrap_or_default(),
                    balance_after_minor: balance_after.and_then(u128_field),
                    code: u32::from(t.code),
                    description: transfer_code::describe(t.code).to_string(),
                    reference: String::new(),
                    transfer_id: u128_field(t.id),
                    status: match (pending, reservations.get(&t.id)) {
                        (false, _) | (true, Some(PendingStatus::Posted)) => {
                            v1::TransferStatus::Posted
                        }
                        (true, Some(PendingStatus::Voided)) => v1::TransferStatus::Voided,
                        (true, Some(PendingStatus::Expired)) => v1::TransferStatus::Expired,
                        (true, _) => v1::TransferStatus::Pending,
                    } as i32,
                }
            })
            .collect();
        Ok(Response::new(v1::GetStatementResponse {
            account_number: number.to_string(),
            currency: currency.alpha.to_string(),
            entries,
            next_page_token,
        }))
    }

    async fn place_hold(
        &self,
        request: tonic::Request<v1::PlaceHoldRequest>,
    ) -> Result<Response<v1::HoldReceipt>, Status> {
        self.gate.check(&request, Scope::Transfer)?;
        let body = request.get_ref();
        check_reference(&body.reference)?;
        let (number, account, currency) = self
            .customer("account_number", &body.account_number)
            .await?;
        let amount = currency
            .parse_positive_amount(&body.amount)
            .map_err(|e| errors::status(errors::banking(&e.into()).with_field("amount")))?;
        let id = self.id_for(Operation::PlaceHold, &body.idempotency_key)?;
        let mut hold = self
            .branch
            .place_hold(id, &account, amount, body.timeout_seconds)
            .map_err(bank_error)?;
        if !body.to_account.is_empty() {
            let (_, beneficiary, beneficiary_currency) =
                self.customer("to_account", &body.to_account).await?;
            if beneficiary_currency != currency {
                return Err(bank_error(BankingError::CurrencyMismatch {
                    from: number.to_string(),
                    to: body.to_account.clone(),
                }));
            }
            hold.credit_account_id = beneficiary.id;
        }
        let Submitted { failure, .. } = self.submit(vec![hold], Vec::new()).await?;
        let settlement = self.label(
            self.branch
                .internal_account_id(InternalAccount::HoldsInSettlement, currency),
        );
        interpret(failure, &number.to_string(), &settlement).map_err(bank_error)?;
        let receipt = self
            .hold_receipt(
                id,
                failure == Some(CreateTransferResult::Exists),
                &body.reference,
            )
            .await?;
        Ok(Response::new(receipt))
    }

    async fn release_hold(
        &self,
        request: tonic::Request<v1::ReleaseHoldRequest>,
    ) -> Result<Response<v1::HoldReceipt>, Status> {
        self.gate.check(&request, Scope::Transfer)?;
        let hold_id = corebank_proto::convert::u128_of(request.get_ref().hold_id.as_ref());
        if hold_id == 0 {
            return Err(invalid("hold_id", "the hold id is missing"));
        }
        // One release per hold: the id is derived from the hold, so a retry is the same.
        let release = self.branch.release_hold(
            transfer_id(
                self.branch.code,
                Operation::ReleaseHold,
                &format!("{hold_id:032x}"),
            ),
            hold_id,
        );
        let Submitted { failure, .. } = self.submit(vec![release], Vec::new()).await?;
        interpret(failure, "", "").map_err(bank_error)?;
        let receipt = self
            .hold_receipt(hold_id, failure == Some(CreateTransferResult::Exists), "")
            .await?;
        Ok(Response::new(receipt))
    }

    async fn capture_hold(
        &self,
        request: tonic::Request<v1::CaptureHoldRequest>,
    ) -> Result<Response<v1::HoldReceipt>, Status> {
        self.gate.check(&request, Scope::Transfer)?;
        let body = request.get_ref();
        let hold_id = corebank_proto::convert::u128_of(body.hold_id.as_ref());
        if hold_id == 0 {
            return Err(invalid("hold_id", "the hold id is missing"));
        }
        let hold = self
            .stored(hold_id)
            .await?
            .ok_or_else(|| bank_error(BankingError::HoldNotFound))?;
        let currency = Currency::from_numeric(hold.ledger).map_err(|e| bank_error(e.into()))?;
        let amount = if body.amount.trim().is_empty() {
            None
        } else {
            Some(
                currency
                    .parse_positive_amount(&body.amount)
                    .map_err(|e| errors::status(errors::banking(&e.into()).with_field("amount")))?,
            )
        };
        let capture = self.branch.capture_hold(
            transfer_id(
                self.branch.code,
                Operation::CaptureHold,
                &format!("{hold_id:032x}"),
            ),
            hold_id,
            amount,
        );
        let Submitted { failure, .. } = self.submit(vec![capture], Vec::new()).await?;
        interpret(failure, "", "").map_err(bank_error)?;
        let receipt = self
            .hold_receipt(hold_id, failure == Some(CreateTransferResult::Exists), "")
            .await?;
        Ok(Response::new(receipt))
    }
}
