//! The fraud analyst's queue: held transfers, alerts, reviews, freezes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use corebank_client::v1;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::auth::{Caller, Perm};
use crate::backend::parse_account;
use crate::extract::{Body, Path, Query, text};
use crate::hub::{Alert, rfc3339};
use crate::problem::{ApiResult, Problem, Problems};
use crate::routes::banking::AccountView;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list_held))
        .routes(routes!(review))
        .routes(routes!(list_alerts))
        .routes(routes!(list_frozen))
        .routes(routes!(freeze))
        .routes(routes!(unfreeze))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeldView {
    pub transfer_id: String,
    pub branch: u16,
    pub debit_account: String,
    pub credit_account: String,
    pub amount: String,
    pub currency: String,
    pub score: u32,
    /// Reason codes, e.g. `new_device`, `amount_spike`.
    pub reasons: Vec<String>,
    /// The same, explained.
    pub reason_details: Vec<String>,
    pub held_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeldList {
    pub items: Vec<HeldView>,
}

/// Transfers the risk screen held, on every branch, oldest first.
#[utoipa::path(get, path = "/api/v1/risk/held", tag = "risk",
    responses(
        (status = 200, description = "The queue", body = HeldList),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_held(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<HeldList>> {
    app.allow(&caller, Perm::RiskRead, "risk.held.list", "risk")
        .await?;
    let mut items = Vec::new();
    for view in app.backend.branches().await? {
        let code = view.code.get();
        let client = app.backend.branch(code).await?;
        let reply = client
            .risk_stub()
            .list_held(v1::ListHeldRequest { limit: 500 })
            .await
            .map_err(|status| rpc(&status))?
            .into_inner();
        for held in reply.held {
            let assessment = held.assessment.unwrap_or_default();
            items.push(HeldView {
                transfer_id: held.transfer_id.map_or(0, u128::from).to_string(),
                branch: code,
                debit_account: held.debit_account,
                credit_account: held.credit_account,
                amount: held.amount,
                currency: held.currency,
                score: assessment.score,
                reasons: assessment.reasons.iter().map(|r| r.name.clone()).collect(),
                reason_details: assessment
                    .reasons
                    .iter()
                    .map(|r| r.description.clone())
                    .collect(),
                held_at: rfc3339(held.timestamp_ns),
            });
        }
    }
    Ok(Json(HeldList { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    /// The branch that holds it (from the queue).
    pub branch: u16,
    /// `release` (post it) or `reject` (void it; the money returns).
    pub decision: String,
    /// Why, for the record (at most 500 characters).
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    pub transfer_id: String,
    pub decision: String,
    pub outcome: String,
    pub at: String,
}

fn rpc(status: &tonic::Status) -> Problem {
    let error = corebank_proto::ApiError::from_status(status).map_or_else(
        || corebank_client::ClientError::Rpc {
            code: status.code(),
            message: status.message().to_owned(),
        },
        corebank_client::ClientError::Api,
    );
    Problem::from(error)
}

/// Releases or rejects a held transfer.
#[utoipa::path(post, path = "/api/v1/risk/held/{transfer_id}/review", tag = "risk", request_body = ReviewBody,
    params(("transfer_id" = String, Path, description = "The held transfer (decimal)")),
    responses(
        (status = 200, description = "Reviewed", body = ReviewView),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn review(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(transfer_id): Path<String>,
    Body(body): Body<ReviewBody>,
) -> ApiResult<Json<ReviewView>> {
    let id: u128 = transfer_id
        .parse()
        .map_err(|_| Problem::invalid("transfer_id", "A transfer id is a decimal number."))?;
    let release = match body.decision.as_str() {
        "release" => true,
        "reject" => false,
        _ => {
            return Err(Problem::invalid(
                "decision",
                "decision must be `release` or `reject`.",
            ));
        }
    };
    text("comment", &body.comment, 500)?;
    let resource = format!("transfer:{id}");
    app.allow(&caller, Perm::RiskWrite, "risk.review", &resource)
        .await?;
    let client = app.backend.branch(body.branch).await?;
    let note = format!(
        "{} by {}: {}",
        body.decision,
        caller.principal.actor(),
        body.comment
    );
    let result = client
        .risk_stub()
        .review(v1::ReviewRequest {
            transfer_id: Some(id.into()),
            release,
            note,
        })
        .await
        .map(|reply| reply.into_inner())
        .map_err(|status| rpc(&status));
    let detail = format!("{}: {}", body.decision, body.comment);
    app.audit(
        &caller,
        "risk.review.result",
        &resource,
        result.as_ref().map(|_| detail.as_str()),
    )
    .await;
    let reply = result?;
    Ok(Json(ReviewView {
        transfer_id: id.to_string(),
        decision: body.decision,
        outcome: reply.outcome,
        at: rfc3339(reply.timestamp_ns),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// 1 to 500 (default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertList {
    pub items: Vec<Alert>,
}

/// Risk alerts from every branch's journal (and the agent), newest first.
#[utoipa::path(get, path = "/api/v1/risk/alerts", tag = "risk", params(AlertQuery),
    responses(
        (status = 200, description = "Alerts", body = AlertList),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_alerts(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(query): Query<AlertQuery>,
) -> ApiResult<Json<AlertList>> {
    app.allow(&caller, Perm::RiskRead, "risk.alerts.list", "risk")
        .await?;
    let limit = usize::try_from(query.limit.unwrap_or(100).clamp(1, 500)).unwrap_or(100);
    let mut items: Vec<Alert> = app
        .hub
        .alerts_after(None, limit)
        .iter()
        .map(|a| a.as_ref().clone())
        .collect();
    items.reverse();
    Ok(Json(AlertList { items }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FrozenView {
    pub account: String,
    pub branch: u16,
    pub reason: String,
    pub note: String,
    pub frozen_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FrozenList {
    pub items: Vec<FrozenView>,
}

/// Frozen accounts on every branch.
#[utoipa::path(get, path = "/api/v1/risk/frozen", tag = "risk",
    responses(
        (status = 200, description = "Frozen accounts", body = FrozenList),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_frozen(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> ApiResult<Json<FrozenList>> {
    app.allow(&caller, Perm::RiskRead, "risk.frozen.list", "risk")
        .await?;
    let mut items = Vec::new();
    for view in app.backend.branches().await? {
        let code = view.code.get();
        let client = app.backend.branch(code).await?;
        let reply = client
            .risk_stub()
            .list_frozen(v1::ListFrozenRequest {})
            .await
            .map_err(|status| rpc(&status))?
            .into_inner();
        items.extend(reply.frozen.into_iter().map(|f| FrozenView {
            account: f.account,
            branch: code,
            reason: f.reason.map(|r| r.name).unwrap_or_default(),
            note: f.note,
            frozen_at: rfc3339(f.since_ns),
        }));
    }
    Ok(Json(FrozenList { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeBody {
    /// Why (at most 500 characters).
    #[serde(default)]
    pub reason: String,
}

async fn set_frozen(
    app: Arc<App>,
    caller: Caller,
    number: String,
    reason: String,
    freeze: bool,
) -> ApiResult<Json<AccountView>> {
    let account = parse_account("number", &number)?;
    text("reason", &reason, 500)?;
    let number = account.to_string();
    let action = if freeze {
        "risk.freeze"
    } else {
        "risk.unfreeze"
    };
    let resource = format!("account:{number}");
    app.allow(&caller, Perm::RiskWrite, action, &resource)
        .await?;
    let (_, client) = app.backend.for_account("number", &number).await?;
    let note = format!(
        "{} by {}: {reason}",
        if freeze { "frozen" } else { "unfrozen" },
        caller.principal.actor()
    );
    let id = Some(account.account_id().into());
    let mut stub = client.risk_stub();
    let result = if freeze {
        stub.freeze(v1::FreezeRequest {
            account_id: id,
            note,
        })
        .await
        .map(|_| ())
    } else {
        stub.unfreeze(v1::UnfreezeRequest {
            account_id: id,
            note,
        })
        .await
        .map(|_| ())
    };
    let result = result.map_err(|status| rpc(&status));
    app.audit(
        &caller,
        &format!("{action}.result"),
        &resource,
        result.as_ref().map(|()| reason.as_str()),
    )
    .await;
    result?;
    let reply = client.balance(&number).await?;
    Ok(Json(AccountView {
        number: reply.account_number.clone(),
        currency: reply.currency.clone(),
        owner_id: 0,
        branch: account.branch().get(),
        frozen: freeze,
        closed: reply.closed,
        balance: None,
    }))
}

/// Freezes an account: it can receive but not send money.
#[utoipa::path(post, path = "/api/v1/accounts/{number}/freeze", tag = "risk", request_body = FreezeBody,
    params(("number" = String, Path, description = "The account number")),
    responses(
        (status = 200, description = "Frozen", body = AccountView),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn freeze(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(number): Path<String>,
    Body(body): Body<FreezeBody>,
) -> ApiResult<Json<AccountView>> {
    set_frozen(app, caller, number, body.reason, true).await
}

/// Lifts a freeze.
#[utoipa::path(post, path = "/api/v1/accounts/{number}/unfreeze", tag = "risk", request_body = FreezeBody,
    params(("number" = String, Path, description = "The account number")),
    responses(
        (status = 200, description = "Unfrozen", body = AccountView),
        Problems),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn unfreeze(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(number): Path<String>,
    Body(body): Body<FreezeBody>,
) -> ApiResult<Json<AccountView>> {
    set_frozen(app, caller, number, body.reason, false).await
}
