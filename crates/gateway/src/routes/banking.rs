//! Accounts, balances, statements, transfers, deposits, withdrawals and holds.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use corebank_client::v1;
use corebank_identity::{ACCOUNTS_PER_USER_MAX, IdentityCommand, Role};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{App, now_ms};
use crate::auth::{Caller, Perm, Principal, forbidden};
use crate::backend::{number_of, parse_account};
use crate::extract::{Body, Path, Query, idempotency_key, text};
use crate::hub::rfc3339;
use crate::problem::{ApiResult, Problem, Problems};

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(open_account, list_accounts))
        .routes(routes!(get_account))
        .routes(routes!(transactions))
        .routes(routes!(create_transfer))
        .routes(routes!(get_transfer))
        .routes(routes!(deposit))
        .routes(routes!(withdraw))
        .routes(routes!(place_hold))
        .routes(routes!(capture_hold))
        .routes(routes!(release_hold))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Balance {
    pub posted: String,
    pub available: String,
    pub pending_debits: String,
    pub pending_credits: String,
    pub as_of: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub number: String,
    pub currency: String,
    /// The owner's user id (0 when the account was opened outside the gateway).
    pub owner_id: u64,
    pub branch: u16,
    pub frozen: bool,
    pub closed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<Balance>,
}

fn balance_of(reply: &v1::GetBalanceResponse) -> Balance {
    Balance {
        posted: reply.posted.clone(),
        available: reply.available.clone(),
        pending_debits: reply.pending_debits.clone(),
        pending_credits: reply.pending_credits.clone(),
        as_of: rfc3339(reply.as_of_ns),
    }
}

async fn frozen(app: &App, branch: u16, account: &str) -> bool {
    let Ok(client) = app.backend.branch(branch).await else {
        return false;
    };
    let mut stub = client.risk_stub();
    match stub.list_frozen(v1::ListFrozenRequest {}).await {
        Ok(reply) => reply
            .into_inner()
            .frozen
            .iter()
            .any(|f| f.account == account),
        Err(_) => false,
    }
}

async fn owner_of(app: &App, account: &str) -> u64 {
    match app
        .identity_query(corebank_identity::IdentityQuery::AccountOwner(
            account.to_owned(),
        ))
        .await
    {
        Ok(corebank_identity::IdentityAnswer::AccountOwner(owner)) => owner.unwrap_or(0),
        _ => 0,
    }
}

async fn account_view(app: &App, account: &str, owner_id: Option<u64>) -> ApiResult<AccountView> {
    let (branch, client) = app.backend.for_account("account", account).await?;
    let reply = client.balance(account).await?;
    let owner_id = match owner_id {
        Some(id) => id,
        None => owner_of(app, &reply.account_number).await,
    };
    Ok(AccountView {
        number: reply.account_number.clone(),
        currency: reply.currency.clone(),
        owner_id,
        branch,
        frozen: frozen(app, branch, &reply.account_number).await,
        closed: reply.closed,
        balance: Some(balance_of(&reply)),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// ISO 4217, e.g. `EUR`.
    pub currency: String,
    /// `current` (default) or `savings`.
    #[serde(default)]
    pub product: Option<String>,
    /// For staff: the customer (user id) who owns it. Customers open for themselves.
    #[serde(default)]
    pub customer_id: Option<u64>,
}

/// Opens an account: customers for themselves, tellers and admins for a customer.
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = NewAccount,
    responses(
        (status = 201, description = "Opened", body = AccountView),
        Problems),
    security(("bearer" = [])))]
pub async fn open_account(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<NewAccount>,
) -> ApiResult<(StatusCode, Json<AccountView>)> {
    let customer_id = match (&caller.principal, body.customer_id) {
        (
            Principal::User {
                id,
                role: Role::Customer,
                ..
            },
            None,
        ) => *id,
        (
            Principal::User {
                id,
                role: Role::Customer,
                ..
            },
            Some(other),
        ) if other == *id => *id,
        (principal, Some(customer)) if principal.has(Perm::CustomersManage) => customer,
        (principal, None) if principal.has(Perm::CustomersManage) => {
            return Err(Problem::invalid(
                "customer_id",
                "Say which customer owns the account.",
            ));
        }
        _ => {
            let problem = forbidden(Perm::CustomersManage);
            app.audit(&caller, "account.open", "accounts", Err(&problem))
                .await;
            return Err(problem);
        }
    };
    let product = match body.product.as_deref().unwrap_or("current") {
        "current" => v1::Product::Current,
        "savings" => v1::Product::Savings,
        _ => {
            return Err(Problem::invalid(
                "product",
                "product must be `current` or `savings`.",
            ));
        }
    };
    text("currency", &body.currency, 8)?;
    app.forget_user(customer_id);
    let customer = app.user(customer_id).await?;
    if customer.role != Role::Customer {
        return Err(Problem::invalid(
            "customer_id",
            "Accounts belong to customers.",
        ));
    }
    if customer.accounts.len() >= ACCOUNTS_PER_USER_MAX {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "too_many_accounts",
            format!("A customer holds at most {ACCOUNTS_PER_USER_MAX} accounts."),
        ));
    }
    let resource = format!("user:{customer_id}");
    let client = app.backend.branch(customer.home_branch).await?;
    let opened = match client
        .open_account(&customer_id.to_string(), &body.currency, product)
        .await
    {
        Ok(opened) => opened,
        Err(error) => {
            let problem = Problem::from(error);
            app.audit(&caller, "account.open", &resource, Err(&problem))
                .await;
            return Err(problem);
        }
    };
    let linked = app
        .identity_execute(IdentityCommand::LinkAccount {
            user_id: customer_id,
            account_number: opened.account_number.clone(),
            at_ms: now_ms(),
        })
        .await;
    app.forget_user(customer_id);
    app.audit(
        &caller,
        "account.open",
        &format!("account:{}", opened.account_number),
        linked.as_ref().map(|_| ""),
    )
    .await;
    if let Err(problem) = linked {
        // The branch has the account, tagged with the customer; the next listing of
        // the customer's accounts links it (`adopt_unlinked`).
        tracing::warn!(account = %opened.account_number, code = %problem.code, "account opened but not yet linked to its owner");
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "account_link_pending",
            format!(
                "Account {} was opened, but the registry did not record its owner yet; it appears in the account list once the registry answers.",
                opened.account_number
            ),
        )
        .with_retry_after(1));
    }
    let view = account_view(&app, &opened.account_number, Some(customer_id)).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountListQuery {
    /// Staff: whose accounts. Customers see their own.
    pub customer_id: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    pub items: Vec<AccountView>,
}

/// Lists a customer's accounts with their balances.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts", params(AccountListQuery),
    responses(
        (status = 200, description = "The accounts", body = AccountList),
        Problems),
    security(("bearer" = [])))]
pub async fn list_accounts(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(query): Query<AccountListQuery>,
) -> ApiResult<Json<AccountList>> {
    let customer_id = match (&caller.principal, query.customer_id) {
        (
            Principal::User {
                id,
                role: Role::Customer,
                ..
            },
            None,
        ) => *id,
        (
            Principal::User {
                id,
                role: Role::Customer,
                ..
            },
            Some(other),
        ) if other == *id => *id,
        (principal, Some(customer)) if principal.has(Perm::AccountsRead) => {
            app.audit(&caller, "account.list", &format!("user:{customer}"), Ok(""))
                .await;
            customer
        }
        (principal, None) if principal.has(Perm::AccountsRead) => {
            return Err(Problem::invalid(
                "customer_id",
                "Say whose accounts to list.",
            ));
        }
        _ => {
            let problem = forbidden(Perm::AccountsRead);
            app.audit(&caller, "account.list", "accounts", Err(&problem))
                .await;
            return Err(problem);
        }
    };
    let mut user = app.user(customer_id).await?;
    if user.role == Role::Customer && adopt_unlinked(&app, &caller, &user).await? {
        app.forget_user(customer_id);
        user = app.user(customer_id).await?;
    }
    let mut items = Vec::with_capacity(user.accounts.len());
    for account in &user.accounts {
        items.push(account_view(&app, account, Some(customer_id)).await?);
    }
    Ok(Json(AccountList { items }))
}

/// Links to `user` the accounts their home branch holds under their id that the
/// registry does not know: an open whose second step (`LinkAccount`) failed. The
/// branch tags every account with a hash of its customer's id, so the accounts are
/// found again without any memory in the gateway. Answers whether any was linked.
async fn adopt_unlinked(
    app: &App,
    caller: &Caller,
    user: &corebank_identity::User,
) -> Result<bool, Problem> {
    let Ok(tag) = corebank_banking::customer_tag(&user.id.to_string()) else {
        return Ok(false);
    };
    let client = app.backend.branch(user.home_branch).await?;
    let mut filter = corebank_ledger::QueryFilter::new(
        u32::try_from(ACCOUNTS_PER_USER_MAX + 1).unwrap_or(u32::MAX),
    );
    filter.user_data_128 = tag;
    let held = client.query_accounts(filter).await.map_err(Problem::from)?;
    let mut adopted = false;
    for account in held {
        let Some(number) = number_of(account.id) else {
            continue;
        };
        if user.accounts.contains(&number) {
            continue;
        }
        // Best effort: a customer over the account limit (accounts opened outside the
        // gateway) still gets their list.
        if let Err(problem) = app
            .identity_execute(IdentityCommand::LinkAccount {
                user_id: user.id,
                account_number: number.clone(),
                at_ms: now_ms(),
            })
            .await
        {
            tracing::warn!(account = %number, user = user.id, code = %problem.code, "cannot link an account tagged with its customer");
            continue;
        }
        tracing::info!(account = %number, user = user.id, "linked an account whose open was not completed");
        app.audit_raw(
            "gateway",
            "system",
            "account.link_recovered",
            &format!("account:{number}"),
            corebank_audit::Outcome::Granted,
            "ok",
            &format!("linked to user {}", user.id),
            &caller.facts,
        )
        .await;
        adopted = true;
    }
    Ok(adopted)
}

/// An account with its balances.
#[utoipa::path(get, path = "/api/v1/accounts/{number}", tag = "accounts", params(("number" = String, Path, description = "The account number")),
    responses(
        (status = 200, description = "The account", body = AccountView),
        Problems),
    security(("bearer" = [])))]
pub async fn get_account(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(number): Path<String>,
) -> ApiResult<Json<AccountView>> {
    let number = parse_account("number", &number)?.to_string();
    app.allow_account(&caller, Perm::AccountsRead, "account.read", &number)
        .await?;
    let owner = caller
        .principal
        .is_customer()
        .then(|| caller.principal.user_id())
        .flatten();
    Ok(Json(account_view(&app, &number, owner).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Entry {
    pub transfer_id: String,
    pub at: String,
    /// `debit` (money left the account) or `credit`.
    pub direction: String,
    pub amount: String,
    pub currency: String,
    /// The other customer account, when there is one.
    pub counterparty: String,
    pub description: String,
    pub reference: String,
    /// `posted`, `pending`, `voided` or `expired`.
    pub status: String,
    /// The posted balance after this entry, when the branch knows it.
    pub balance_after: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryPage {
    pub items: Vec<Entry>,
    pub next_cursor: Option<String>,
}

fn status_name(status: i32) -> &'static str {
    match v1::TransferStatus::try_from(status) {
        Ok(v1::TransferStatus::Posted) => "posted",
        Ok(v1::TransferStatus::Pending) => "pending",
        Ok(v1::TransferStatus::Voided) => "voided",
        Ok(v1::TransferStatus::Expired) => "expired",
        _ => "unknown",
    }
}

/// The account's movements, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/accounts/{number}/transactions", tag = "accounts",
    params(("number" = String, Path, description = "The account number"), PageQuery),
    responses(
        (status = 200, description = "A page of movements", body = EntryPage),
        Problems),
    security(("bearer" = [])))]
pub async fn transactions(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(number): Path<String>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<EntryPage>> {
    let number = parse_account("number", &number)?.to_string();
    app.allow_account(&caller, Perm::AccountsRead, "account.statement", &number)
        .await?;
    let cursor = page.cursor.unwrap_or_default();
    text("cursor", &cursor, 512)?;
    let (_, client) = app.backend.for_account("number", &number).await?;
    let reply = client
        .statement_with(v1::GetStatementRequest {
            account_number: number.clone(),
            from_ns: 0,
            to_ns: 0,
            limit: page.limit.unwrap_or(20).clamp(1, 100),
            page_token: cursor,
            reversed: true,
            consistency: 0,
        })
        .await?;
    let items = reply
        .entries
        .iter()
        .map(|e| Entry {
            transfer_id: e.transfer_id.map_or(0, u128::from).to_string(),
            at: rfc3339(e.timestamp_ns),
            direction: if e.direction == i32::from(v1::EntryDirection::Credit) {
                "credit"
            } else {
                "debit"
            }
            .to_owned(),
            amount: e.amount.clone(),
            currency: reply.currency.clone(),
            counterparty: e.counterparty_account.clone(),
            description: e.description.clone(),
            reference: e.reference.clone(),
            status: status_name(e.status).to_owned(),
            balance_after: e.balance_after.clone(),
        })
        .collect();
    Ok(Json(EntryPage {
        items,
        next_cursor: (!reply.next_page_token.is_empty()).then_some(reply.next_page_token),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Risk {
    pub score: u32,
    pub reasons: Vec<String>,
}

/// The outcome of a money movement.
#[derive(Debug, Serialize, ToSchema)]
pub struct Receipt {
    pub transfer_id: String,
    /// `posted`, `pending` or `held_for_review`.
    pub status: String,
    pub debit_account: String,
    pub credit_account: String,
    pub amount: String,
    pub currency: String,
    pub fee: String,
    pub reference: String,
    pub at: String,
    /// The Idempotency-Key had been used: nothing new happened.
    pub replayed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
}

fn receipt(reply: &v1::TransferReceipt) -> Receipt {
    let status = if reply.held_for_review {
        "held_for_review"
    } else {
        status_name(reply.status)
    };
    Receipt {
        transfer_id: reply.transfer_id.map_or(0, u128::from).to_string(),
        status: status.to_owned(),
        debit_account: reply.debit_account.clone(),
        credit_account: reply.credit_account.clone(),
        amount: reply.amount.clone(),
        currency: reply.currency.clone(),
        fee: reply.fee.clone(),
        reference: reply.reference.clone(),
        at: rfc3339(reply.timestamp_ns),
        replayed: reply.replayed,
        risk: reply.risk.as_ref().map(|r| Risk {
            score: r.score,
            reasons: r.reasons.iter().map(|reason| reason.name.clone()).collect(),
        }),
    }
}

fn receipt_status(receipt: &Receipt) -> StatusCode {
    if receipt.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    }
}

/// How the payment reached the bank, for the fraud screen.
fn context(headers: &HeaderMap) -> v1::TransferContext {
    let device = headers
        .get("x-device-id")
        .and_then(|v| v.to_str().ok())
        .filter(|d| d.len() <= 128 && d.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        .unwrap_or_default();
    v1::TransferContext {
        channel: "online".to_owned(),
        device_id: device.to_owned(),
        ..v1::TransferContext::default()
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    pub from_account: String,
    pub to_account: String,
    /// A positive decimal amount in the accounts' currency, e.g. `"25.00"`.
    pub amount: String,
    #[serde(default)]
    pub reference: Option<String>,
}

/// Pays from one account to another (customers: from their own accounts).
#[utoipa::path(post, path = "/api/v1/transfers", tag = "payments", request_body = NewTransfer,
    params(("Idempotency-Key" = String, Header, description = "1 to 128 printable ASCII characters; a retry with the same key answers the first outcome")),
    responses(
        (status = 201, description = "Done (or held for review)", body = Receipt),
        (status = 200, description = "A retry: the first outcome", body = Receipt),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create_transfer(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<NewTransfer>,
) -> ApiResult<(StatusCode, Json<Receipt>)> {
    let key = idempotency_key(&headers)?;
    let from = parse_account("from_account", &body.from_account)?.to_string();
    let to = parse_account("to_account", &body.to_account)?.to_string();
    let reference = body.reference.unwrap_or_default();
    text("reference", &reference, 140)?;
    text("amount", &body.amount, 40)?;
    app.allow_account(&caller, Perm::PaymentsWrite, "transfer.create", &from)
        .await?;
    app.limiters.account(&from)?;
    let (_, client) = app.backend.for_account("from_account", &from).await?;
    let started = Instant::now();
    let result = client
        .transfer_with(v1::TransferRequest {
            from_account: from.clone(),
            to_account: to.clone(),
            amount: body.amount,
            idempotency_key: key,
            reference,
            fee: String::new(),
            context: Some(context(&headers)),
        })
        .await;
    app.metrics.money_latency(started.elapsed());
    let result = result.map(|reply| receipt(&reply)).map_err(Problem::from);
    let detail = match &result {
        Ok(r) => format!("{} {} to {} ({})", r.amount, r.currency, to, r.status),
        Err(_) => String::new(),
    };
    app.audit(
        &caller,
        "transfer.result",
        &format!("account:{from}"),
        result.as_ref().map(|_| detail.as_str()),
    )
    .await;
    let receipt = result?;
    Ok((receipt_status(&receipt), Json(receipt)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferView {
    pub transfer_id: String,
    /// `posted`, or `pending` for a reservation (a hold, a transfer held for review).
    pub status: String,
    pub debit_account: String,
    pub credit_account: String,
    pub amount: String,
    pub currency: String,
    pub at: String,
}

/// A transfer, for the owner of either account or staff who read accounts.
#[utoipa::path(get, path = "/api/v1/transfers/{id}", tag = "payments", params(("id" = String, Path, description = "The transfer id (decimal)")),
    responses(
        (status = 200, description = "The transfer", body = TransferView),
        Problems),
    security(("bearer" = [])))]
pub async fn get_transfer(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<TransferView>> {
    let transfer_id: u128 = id
        .parse()
        .map_err(|_| Problem::invalid("id", "A transfer id is a decimal number."))?;
    let not_found = || Problem::not_found("transfer_not_found", "No such transfer.");
    for view in app.backend.branches().await? {
        let Ok(client) = app.backend.branch(view.code.get()).await else {
            continue;
        };
        let Ok(found) = client.lookup_transfers(&[transfer_id]).await else {
            continue;
        };
        let Some(transfer) = found.first() else {
            continue;
        };
        let debit = number_of(transfer.debit_account_id).unwrap_or_default();
        let credit = number_of(transfer.credit_account_id).unwrap_or_default();
        let resource = format!("transfer:{transfer_id}");
        if !caller.principal.has(Perm::AccountsRead) {
            let Principal::User {
                id: user_id,
                role: Role::Customer,
                ..
            } = &caller.principal
            else {
                let problem = forbidden(Perm::AccountsRead);
                app.audit(&caller, "transfer.read", &resource, Err(&problem))
                    .await;
                return Err(problem);
            };
            let user = app.user(*user_id).await?;
            let owns = user.accounts.iter().any(|a| *a == debit || *a == credit);
            if !owns {
                let problem = not_found();
                app.audit(
                    &caller,
                    "transfer.read",
                    &resource,
                    Err(&forbidden(Perm::AccountsRead)),
                )
                .await;
                return Err(problem);
            }
        }
        app.audit(&caller, "transfer.read", &resource, Ok("")).await;
        let currency = corebank_money::Currency::from_numeric(transfer.ledger).ok();
        let pending = transfer
            .flags
            .contains(corebank_ledger::TransferFlags::PENDING);
        let status = if pending {
            // Where a reservation stands (still pending, posted, voided, expired) is
            // on the statement line of the transfer, found at its own timestamp.
            pending_status(&client, &debit, &credit, transfer_id, transfer.timestamp)
                .await
                .unwrap_or("pending")
        } else {
            "posted"
        };
        return Ok(Json(TransferView {
            transfer_id: transfer_id.to_string(),
            status: status.to_owned(),
            debit_account: debit,
            credit_account: credit,
            amount: currency.map_or_else(
                || transfer.amount.to_string(),
                |c| c.format_amount(transfer.amount),
            ),
            currency: currency.map(|c| c.alpha.to_owned()).unwrap_or_default(),
            at: rfc3339(transfer.timestamp),
        }));
    }
    Err(not_found())
}

/// The status of a pending transfer from the statement line at its timestamp.
async fn pending_status(
    client: &corebank_client::Client,
    debit: &str,
    credit: &str,
    transfer_id: u128,
    timestamp_ns: u64,
) -> Option<&'static str> {
    let account = if debit.is_empty() { credit } else { debit };
    if account.is_empty() {
        return None;
    }
    let reply = client
        .statement_with(v1::GetStatementRequest {
            account_number: account.to_owned(),
            from_ns: timestamp_ns,
            to_ns: timestamp_ns,
            limit: 10,
            page_token: String::new(),
            reversed: false,
            consistency: 0,
        })
        .await
        .ok()?;
    reply
        .entries
        .iter()
        .find(|e| e.transfer_id.map(u128::from) == Some(transfer_id))
        .map(|e| status_name(e.status))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CashMovement {
    pub account: String,
    pub amount: String,
    #[serde(default)]
    pub reference: Option<String>,
}

async fn cash(
    app: Arc<App>,
    caller: Caller,
    headers: HeaderMap,
    body: CashMovement,
    deposit: bool,
) -> ApiResult<(StatusCode, Json<Receipt>)> {
    let key = idempotency_key(&headers)?;
    let account = parse_account("account", &body.account)?.to_string();
    let reference = body.reference.unwrap_or_default();
    text("reference", &reference, 140)?;
    text("amount", &body.amount, 40)?;
    let action = if deposit {
        "deposit.create"
    } else {
        "withdrawal.create"
    };
    let resource = format!("account:{account}");
    app.allow(&caller, Perm::PaymentsWrite, action, &resource)
        .await?;
    if !deposit {
        app.limiters.account(&account)?;
    }
    let (_, client) = app.backend.for_account("account", &account).await?;
    let started = Instant::now();
    let result = if deposit {
        client
            .deposit_with(v1::DepositRequest {
                account_number: account.clone(),
                amount: body.amount,
                idempotency_key: key,
                reference,
                context: Some(v1::TransferContext {
                    channel: "branch".into(),
                    ..Default::default()
                }),
            })
            .await
    } else {
        client
            .withdraw_with(v1::WithdrawRequest {
                account_number: account.clone(),
                amount: body.amount,
                idempotency_key: key,
                reference,
                context: Some(v1::TransferContext {
                    channel: "branch".into(),
                    ..Default::default()
                }),
            })
            .await
    };
    app.metrics.money_latency(started.elapsed());
    let result = result.map(|reply| receipt(&reply)).map_err(Problem::from);
    let detail = result
        .as_ref()
        .map(|r| format!("{} {}", r.amount, r.currency))
        .unwrap_or_default();
    app.audit(
        &caller,
        if deposit {
            "deposit.result"
        } else {
            "withdrawal.result"
        },
        &resource,
        result.as_ref().map(|_| detail.as_str()),
    )
    .await;
    let receipt = result?;
    Ok((receipt_status(&receipt), Json(receipt)))
}

/// Money paid in at the branch (tellers).
#[utoipa::path(post, path = "/api/v1/deposits", tag = "payments", request_body = CashMovement,
    params(("Idempotency-Key" = String, Header, description = "1 to 128 printable ASCII characters")),
    responses(
        (status = 201, description = "Deposited", body = Receipt),
        (status = 200, description = "A retry: the first outcome", body = Receipt),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn deposit(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<CashMovement>,
) -> ApiResult<(StatusCode, Json<Receipt>)> {
    cash(app, caller, headers, body, true).await
}

/// Money paid out (tellers).
#[utoipa::path(post, path = "/api/v1/withdrawals", tag = "payments", request_body = CashMovement,
    params(("Idempotency-Key" = String, Header, description = "1 to 128 printable ASCII characters")),
    responses(
        (status = 201, description = "Withdrawn", body = Receipt),
        (status = 200, description = "A retry: the first outcome", body = Receipt),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn withdraw(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<CashMovement>,
) -> ApiResult<(StatusCode, Json<Receipt>)> {
    cash(app, caller, headers, body, false).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldView {
    pub hold_id: String,
    pub account: String,
    pub amount: String,
    pub currency: String,
    /// `active`, `captured`, `released` or `expired`.
    pub status: String,
    pub placed_at: String,
    pub expires_at: String,
    pub captured_amount: String,
    pub replayed: bool,
}

fn hold_view(reply: &v1::HoldReceipt) -> HoldView {
    let status = match v1::HoldStatus::try_from(reply.status) {
        Ok(v1::HoldStatus::Active) => "active",
        Ok(v1::HoldStatus::Captured) => "captured",
        Ok(v1::HoldStatus::Released) => "released",
        Ok(v1::HoldStatus::Expired) => "expired",
        _ => "unknown",
    };
    HoldView {
        hold_id: reply.hold_id.map_or(0, u128::from).to_string(),
        account: reply.account_number.clone(),
        amount: reply.amount.clone(),
        currency: reply.currency.clone(),
        status: status.to_owned(),
        placed_at: rfc3339(reply.placed_at_ns),
        expires_at: rfc3339(reply.expires_at_ns),
        captured_amount: reply.captured_amount.clone(),
        replayed: reply.replayed,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHold {
    pub account: String,
    pub amount: String,
    #[serde(default)]
    pub reference: Option<String>,
    /// Seconds until the hold lapses by itself (default: the branch's).
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
}

/// Reserves money on an account (a card authorisation).
#[utoipa::path(post, path = "/api/v1/holds", tag = "holds", request_body = NewHold,
    params(("Idempotency-Key" = String, Header, description = "1 to 128 printable ASCII characters")),
    responses(
        (status = 201, description = "Placed", body = HoldView),
        (status = 200, description = "A retry: the first outcome", body = HoldView),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn place_hold(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<NewHold>,
) -> ApiResult<(StatusCode, Json<HoldView>)> {
    let key = idempotency_key(&headers)?;
    let account = parse_account("account", &body.account)?.to_string();
    let reference = body.reference.unwrap_or_default();
    text("reference", &reference, 140)?;
    text("amount", &body.amount, 40)?;
    let resource = format!("account:{account}");
    app.allow(&caller, Perm::HoldsWrite, "hold.place", &resource)
        .await?;
    app.limiters.account(&account)?;
    let (_, client) = app.backend.for_account("account", &account).await?;
    let result = client
        .place_hold_with(v1::PlaceHoldRequest {
            account_number: account.clone(),
            amount: body.amount,
            idempotency_key: key,
            timeout_seconds: body.timeout_seconds.unwrap_or(0).min(30 * 86_400),
            reference,
            to_account: String::new(),
        })
        .await
        .map(|reply| hold_view(&reply))
        .map_err(Problem::from);
    app.audit(
        &caller,
        "hold.result",
        &resource,
        result.as_ref().map(|_| ""),
    )
    .await;
    let view = result?;
    let status = if view.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(view)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleHold {
    /// The held account (it says which branch holds the hold).
    pub account: String,
    /// For a capture: how much (default: all of it).
    #[serde(default)]
    pub amount: Option<String>,
}

async fn settle(
    app: Arc<App>,
    caller: Caller,
    id: String,
    body: SettleHold,
    capture: bool,
) -> ApiResult<Json<HoldView>> {
    let hold_id: u128 = id
        .parse()
        .map_err(|_| Problem::invalid("id", "A hold id is a decimal number."))?;
    let account = parse_account("account", &body.account)?.to_string();
    let action = if capture {
        "hold.capture"
    } else {
        "hold.release"
    };
    let resource = format!("hold:{hold_id}");
    app.allow(&caller, Perm::HoldsWrite, action, &resource)
        .await?;
    let (_, client) = app.backend.for_account("account", &account).await?;
    let result = if capture {
        let amount = body.amount.unwrap_or_default();
        text("amount", &amount, 40)?;
        client
            .capture_hold(hold_id, (!amount.is_empty()).then_some(amount.as_str()))
            .await
    } else {
        client.release_hold(hold_id).await
    };
    let result = result.map(|reply| hold_view(&reply)).map_err(Problem::from);
    app.audit(&caller, action, &resource, result.as_ref().map(|_| ""))
        .await;
    Ok(Json(result?))
}

/// Takes the held money (all or part); the rest is released.
#[utoipa::path(post, path = "/api/v1/holds/{id}/capture", tag = "holds", request_body = SettleHold,
    params(("id" = String, Path, description = "The hold id (decimal)")),
    responses(
        (status = 200, description = "Captured", body = HoldView),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn capture_hold(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<SettleHold>,
) -> ApiResult<Json<HoldView>> {
    settle(app, caller, id, body, true).await
}

/// Releases a hold: nothing is taken.
#[utoipa::path(post, path = "/api/v1/holds/{id}/release", tag = "holds", request_body = SettleHold,
    params(("id" = String, Path, description = "The hold id (decimal)")),
    responses(
        (status = 200, description = "Released", body = HoldView),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn release_hold(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<SettleHold>,
) -> ApiResult<Json<HoldView>> {
    settle(app, caller, id, body, false).await
}
