//! `corebank.v1.Risk`: the branch's fraud screen as analysts and the risk agent see it:
//! held transfers and their review, frozen accounts, the risk journal, and the screen's
//! model and rules (docs/risk.md).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use corebank_banking::Branch;
use corebank_ledger::{Transfer, TransferFlags};
use corebank_money::Currency;
use corebank_node::{
    HeldTransfer, Node, Request, RequestOutcome, RiskAction, RiskEvent, RiskRefusal,
};
use corebank_proto::convert::{u128_field, u128_of};
use corebank_proto::v1::{self, risk_server};
use corebank_proto::{ApiError, ErrorCode};
use corebank_risk_engine::Engine;
use corebank_screening::{Assessment, ReasonCode, Verdict};
use corebank_security::Scope;
use tonic::{Response, Status};

use crate::auth::Gate;
use crate::errors;

/// Items a list call returns at most.
const LIST_MAX: usize = 1_000;

#[derive(Clone, Debug)]
pub struct RiskService {
    pub node: Arc<Node>,
    pub gate: Gate,
    pub branch: Branch,
    /// The screen, when this branch screens.
    pub engine: Option<Arc<Engine>>,
}

/// The proto form of a reason, named by the engine when there is one.
pub fn reason(engine: Option<&Engine>, code: ReasonCode) -> v1::RiskReason {
    let (name, description) = match (code.name(), code.description()) {
        (Some(name), Some(description)) => (name.to_owned(), description.to_owned()),
        // A rule of the rules file in force (a reloaded file may have renumbered it).
        _ => match engine.and_then(|engine| engine.rules().rule_of(code).cloned()) {
            Some(rule) => (rule.name, rule.description),
            None => (
                format!("rule_{}", code.0.saturating_sub(ReasonCode::RULE_BASE)),
                "A rule of the rules file (no longer in force).".to_owned(),
            ),
        },
    };
    v1::RiskReason {
        code: u32::from(code.0),
        name,
        description,
    }
}

pub fn assessment(
    engine: Option<&Engine>,
    verdict: Verdict,
    score: u16,
    reasons: &[u16; 3],
) -> v1::ScreenAssessment {
    v1::ScreenAssessment {
        verdict: verdict.name().to_owned(),
        score: u32::from(score),
        reasons: reasons
            .iter()
            .filter(|code| **code != 0)
            .map(|code| reason(engine, ReasonCode(*code)))
            .collect(),
    }
}

/// The proto form of an applied decision (for receipts).
pub fn decision_assessment(
    engine: Option<&Engine>,
    assessment: &Assessment,
) -> v1::ScreenAssessment {
    self::assessment(
        engine,
        assessment.verdict,
        assessment.score,
        &assessment.reasons.map(|r| r.0),
    )
}

impl RiskService {
    fn engine(&self) -> Option<&Engine> {
        self.engine.as_deref()
    }

    fn label(&self, id: u128) -> String {
        self.branch
            .account_number(id)
            .map_or_else(|_| String::new(), |n| n.to_string())
    }

    fn held(&self, held: &HeldTransfer) -> v1::HeldTransfer {
        let currency = Currency::from_numeric(held.ledger).ok();
        v1::HeldTransfer {
            transfer_id: u128_field(held.transfer_id),
            debit_account_id: u128_field(held.debit_account),
            credit_account_id: u128_field(held.credit_account),
            debit_account: self.label(held.debit_account),
            credit_account: self.label(held.credit_account),
            amount_minor: u128_field(held.amount),
            amount: currency
                .map_or_else(|| held.amount.to_string(), |c| c.format_amount(held.amount)),
            currency: currency.map_or_else(String::new, |c| c.alpha.to_string()),
            timestamp_ns: held.timestamp,
            assessment: Some(assessment(
                self.engine(),
                Verdict::Hold,
                held.score,
                &held.reasons,
            )),
        }
    }

    fn event(&self, event: &RiskEvent) -> v1::RiskEvent {
        use corebank_node::RiskEventKind as K;
        let verdict = match event.kind {
            K::Declined => Verdict::Decline,
            K::Held | K::Released | K::Rejected => Verdict::Hold,
            K::Frozen | K::Unfrozen => Verdict::Approve,
        };
        v1::RiskEvent {
            sequence: event.sequence,
            timestamp_ns: event.timestamp,
            kind: event.kind.name().to_owned(),
            transfer_id: u128_field(event.transfer_id),
            account_id: u128_field(event.account),
            counterparty_id: u128_field(event.counterparty),
            amount_minor: u128_field(event.amount),
            ledger: event.ledger,
            assessment: Some(assessment(
                self.engine(),
                verdict,
                event.score,
                &event.reasons,
            )),
            note: event.note.clone(),
            branch: u32::from(self.branch.code.get()),
        }
    }

    fn status(&self, held_open: usize, frozen: usize) -> v1::RiskStatus {
        let counters = self.node.screening_counters();
        let screened = counters.screened.load(Ordering::Relaxed);
        v1::RiskStatus {
            screening: self.node.screening().is_some(),
            failure_policy: self
                .node
                .screening()
                .map_or("", |s| s.on_failure.name())
                .to_owned(),
            screened,
            held: counters.held.load(Ordering::Relaxed),
            declined: counters.declined.load(Ordering::Relaxed),
            freezes: counters.freezes.load(Ordering::Relaxed),
            failures: counters.failures.load(Ordering::Relaxed),
            mean_screen_ns: counters
                .screen_nanos
                .load(Ordering::Relaxed)
                .checked_div(screened)
                .unwrap_or(0),
            engine: self.engine().map_or_else(String::new, describe_engine),
            held_open: held_open as u64,
            frozen_accounts: frozen as u64,
            feature_batches_dropped: self.node.screening_feature_batches_dropped(),
        }
    }

    async fn current_status(&self) -> Result<v1::RiskStatus, Status> {
        let (held, frozen) = self
            .node
            .read_risk_local(|_, risk| (risk.held().count(), risk.frozen().count()))
            .map_err(|e| errors::status(errors::read(e)))?;
        Ok(self.status(held, frozen))
    }

    fn engine_required(&self) -> Result<&Engine, Status> {
        self.engine().ok_or_else(|| {
            errors::status(ApiError::new(
                ErrorCode::FailedPrecondition,
                "this branch does not screen transfers (started with --risk off)",
            ))
        })
    }

    async fn act(
        &self,
        action: RiskAction,
    ) -> Result<(u64, Vec<corebank_ledger::CreateTransfersResult>), Status> {
        match self.node.submit(Request::Risk(action)).await {
            Ok(RequestOutcome::Risk { timestamp, outcome }) => {
                outcome.map(|results| (timestamp, results)).map_err(refusal)
            }
            Ok(RequestOutcome::Refused(error)) => Err(errors::status(error.into())),
            Ok(_) => Err(errors::status(ApiError::new(
                ErrorCode::Internal,
                "the node answered a request of another kind",
            ))),
            Err(error) => Err(errors::status(errors::submit(error))),
        }
    }
}

/// One line about the engine in force: model, rules, thresholds.
pub fn describe_engine(engine: &Engine) -> String {
    let stats = engine.stats();
    format!(
        "model {}, rules {} ({} rules), hold at {}, decline at {}, {} accounts tracked",
        stats.model_version.as_deref().unwrap_or("none"),
        stats.rules_version,
        stats.rules,
        stats.hold_threshold,
        stats.decline_threshold,
        stats.tracked_accounts
    )
}

fn refusal(refusal: RiskRefusal) -> Status {
    let code = match refusal {
        RiskRefusal::AccountNotFound => ErrorCode::AccountNotFound,
        RiskRefusal::NotAReview => ErrorCode::InvalidArgument,
        RiskRefusal::NotHeld | RiskRefusal::NotFrozen => ErrorCode::FailedPrecondition,
    };
    errors::status(ApiError::new(code, refusal.to_string()).with_reason(refusal.code()))
}

fn limit(requested: u32) -> usize {
    match requested as usize {
        0 => LIST_MAX,
        n => n.min(LIST_MAX),
    }
}

fn note(text: &str) -> Result<String, Status> {
    if text.len() > corebank_node::risk_state::NOTE_BYTES_MAX {
        return Err(errors::status(
            ApiError::new(
                ErrorCode::InvalidArgument,
                format!(
                    "the note has {} bytes; at most {} are kept",
                    text.len(),
                    corebank_node::risk_state::NOTE_BYTES_MAX
                ),
            )
            .with_field("note"),
        ));
    }
    Ok(text.to_owned())
}

#[tonic::async_trait]
impl risk_server::Risk for RiskService {
    async fn list_held(
        &self,
        request: tonic::Request<v1::ListHeldRequest>,
    ) -> Result<Response<v1::ListHeldResponse>, Status> {
        self.gate.check(&request, Scope::Read)?;
        let limit = limit(request.get_ref().limit);
        let (held, total) = self
            .node
            .read_risk(|_, risk| {
                let mut held: Vec<HeldTransfer> = risk.held().cloned().collect();
                held.sort_by_key(|h| (h.timestamp, h.transfer_id));
                let total = held.len() as u64;
                held.truncate(limit);
                (held, total)
            })
            .await
            .map_err(|e| errors::status(errors::read(e)))?;
        Ok(Response::new(v1::ListHeldResponse {
            held: held.iter().map(|h| self.held(h)).collect(),
            total,
        }))
    }

    async fn review(
        &self,
        request: tonic::Request<v1::ReviewRequest>,
    ) -> Result<Response<v1::ReviewResponse>, Status> {
        self.gate.check(&request, Scope::Admin)?;
        let body = request.get_ref();
        let held_id = u128_of(body.transfer_id.as_ref());
        let note = note(&body.note)?;
        // The review's own id is derived from the held one (as a hold's release is), so
        // that a repeated review after a lost answer finds the first one's outcome.
        let review_id = corebank_banking::transfer_id(
            self.branch.code,
            corebank_banking::Operation::Review,
            &format!("{held_id:032x}"),
        );
        let event = Transfer {
            id: review_id,
            pending_id: held_id,
            flags: if body.release {
                TransferFlags::POST_PENDING_TRANSFER
            } else {
                TransferFlags::VOID_PENDING_TRANSFER
            },
            ..Default::default()
        };
        let (timestamp, results) = self.act(RiskAction::Review { event, note }).await?;
        if let Some(failure) = results.first() {
            return Err(errors::status(
                ApiError::new(
                    ErrorCode::for_transfer_result(failure.result),
                    failure.result.description(),
                )
                .with_reason(failure.result.as_str()),
            ));
        }
        if let Some(engine) = self.engine() {
            // A release says the transfer was legitimate; a rejection, fraud.
            engine.feedback(held_id, !body.release);
        }
        metrics::counter!("corebank_risk_reviews_total", "outcome" => if body.release { "released" } else { "rejected" }).increment(1);
        Ok(Response::new(v1::ReviewResponse {
            transfer_id: u128_field(held_id),
            outcome: if body.release { "released" } else { "rejected" }.to_owned(),
            timestamp_ns: timestamp,
        }))
    }

    async fn freeze(
        &self,
        request: tonic::Request<v1::FreezeRequest>,
    ) -> Result<Response<v1::FrozenAccount>, Status> {
        self.gate.check(&request, Scope::Admin)?;
        let body = request.get_ref();
        let account = u128_of(body.account_id.as_ref());
        let note = note(&body.note)?;
        let (timestamp, _) = self
            .act(RiskAction::Freeze {
                account,
                reason: ReasonCode::NONE,
                note: note.clone(),
            })
            .await?;
        let frozen = self
            .node
            .read_risk_local(|_, risk| risk.frozen().find(|f| f.account == account).cloned())
            .map_err(|e| errors::status(errors::read(e)))?;
        Ok(Response::new(v1::FrozenAccount {
            account_id: u128_field(account),
            account: self.label(account),
            since_ns: frozen.as_ref().map_or(timestamp, |f| f.since),
            reason: frozen
                .as_ref()
                .map(|f| reason(self.engine(), ReasonCode(f.reason))),
            note: frozen.map_or(note, |f| f.note),
        }))
    }

    async fn unfreeze(
        &self,
        request: tonic::Request<v1::UnfreezeRequest>,
    ) -> Result<Response<v1::UnfreezeResponse>, Status> {
        self.gate.check(&request, Scope::Admin)?;
        let body = request.get_ref();
        let account = u128_of(body.account_id.as_ref());
        let note = note(&body.note)?;
        self.act(RiskAction::Unfreeze { account, note }).await?;
        Ok(Response::new(v1::UnfreezeResponse {
            account_id: u128_field(account),
        }))
    }

    async fn list_frozen(
        &self,
        request: tonic::Request<v1::ListFrozenRequest>,
    ) -> Result<Response<v1::ListFrozenResponse>, Status> {
        self.gate.check(&request, Scope::Read)?;
        let frozen = self
            .node
            .read_risk(|_, risk| {
                risk.frozen()
                    .take(LIST_MAX * 10)
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| errors::status(errors::read(e)))?;
        Ok(Response::new(v1::ListFrozenResponse {
            frozen: frozen
                .into_iter()
                .map(|f| v1::FrozenAccount {
                    account_id: u128_field(f.account),
                    account: self.label(f.account),
                    since_ns: f.since,
                    reason: Some(reason(self.engine(), ReasonCode(f.reason))),
                    note: f.note,
                })
                .collect(),
        }))
    }

    async fn list_events(
        &self,
        request: tonic::Request<v1::ListRiskEventsRequest>,
    ) -> Result<Response<v1::ListRiskEventsResponse>, Status> {
        self.gate.check(&request, Scope::Read)?;
        let body = request.get_ref();
        let limit = limit(body.limit);
        let from = body.from_sequence.max(1);
        let (events, next_sequence) = self
            .node
            .read_risk(|_, risk| (risk.events_from(from, limit), risk.next_sequence()))
            .await
            .map_err(|e| errors::status(errors::read(e)))?;
        Ok(Response::new(v1::ListRiskEventsResponse {
            events: events.iter().map(|e| self.event(e)).collect(),
            next_sequence,
        }))
    }

    async fn status(
        &self,
        request: tonic::Request<v1::RiskStatusRequest>,
    ) -> Result<Response<v1::RiskStatus>, Status> {
        self.gate.check(&request, Scope::Read)?;
        Ok(Response::new(self.current_status().await?))
    }

    async fn load_model(
        &self,
        request: tonic::Request<v1::LoadModelRequest>,
    ) -> Result<Response<v1::RiskStatus>, Status> {
        self.gate.check(&request, Scope::Admin)?;
        let engine = self.engine_required()?;
        let model = corebank_risk::Model::from_bytes(&request.get_ref().model).map_err(|e| {
            errors::status(
                ApiError::new(
                    ErrorCode::InvalidArgument,
                    format!("the model was refused and the model in service stays: {e}"),
                )
                .with_field("model")
                .with_reason("bad_model"),
            )
        })?;
        let version = engine.set_model(model).map_err(|e| {
            errors::status(
                ApiError::new(
                    ErrorCode::InvalidArgument,
                    format!("the model was refused and the model in service stays: {e}"),
                )
                .with_field("model")
                .with_reason("incompatible_model"),
            )
        })?;
        tracing::info!(version, "a new risk model is in service");
        Ok(Response::new(self.current_status().await?))
    }

    async fn reload_rules(
        &self,
        request: tonic::Request<v1::ReloadRulesRequest>,
    ) -> Result<Response<v1::RiskStatus>, Status> {
        self.gate.check(&request, Scope::Admin)?;
        let engine = self.engine_required()?;
        engine.reload_rules().map_err(|e| {
            errors::status(
                ApiError::new(
                    ErrorCode::InvalidArgument,
                    format!("the rules file was refused and the rules in force stay: {e}"),
                )
                .with_reason("bad_rules"),
            )
        })?;
        Ok(Response::new(self.current_status().await?))
    }
}
