//! `corebank client` commands of the fraud screen: the review queue, freezes, the risk
//! journal, the screen's status and model.

use std::path::PathBuf;

use corebank_client::{Client, v1};
use corebank_proto::convert::{u128_field, u128_of};
use serde_json::{Value, json};

use super::format::{Align, Table, pairs, rfc3339};
use super::{Failure, Output, parse_id, status_failure};

/// How a payment was asked for, for the fraud screen.
#[derive(Debug, Default, clap::Args)]
pub(super) struct ContextArgs {
    /// How the payment was asked for: card, online, mobile, branch or atm.
    #[arg(long, value_name = "CHANNEL")]
    channel: Option<String>,
    /// The customer's device (any stable identifier; the branch keeps a hash).
    #[arg(long, value_name = "ID")]
    device: Option<String>,
    /// The merchant category code of a card payment (four digits).
    #[arg(long, value_name = "MCC")]
    merchant_category: Option<u32>,
    /// Where the customer was, as LATITUDE,LONGITUDE in decimal degrees
    /// (e.g. 48.8566,2.3522).
    #[arg(long, value_name = "LAT,LON", allow_negative_numbers = true)]
    location: Option<String>,
}

impl ContextArgs {
    pub(super) fn to_proto(&self) -> Result<Option<v1::TransferContext>, Failure> {
        if self.channel.is_none()
            && self.device.is_none()
            && self.merchant_category.is_none()
            && self.location.is_none()
        {
            return Ok(None);
        }
        let mut context = v1::TransferContext {
            channel: self.channel.clone().unwrap_or_default(),
            merchant_category: self.merchant_category.unwrap_or(0),
            device_id: self.device.clone().unwrap_or_default(),
            ..Default::default()
        };
        if let Some(location) = &self.location {
            let bad = || {
                Failure::new(
                    "invalid_argument",
                    format!("--location {location:?} is not LATITUDE,LONGITUDE in decimal degrees"),
                )
            };
            let (lat, lon) = location.split_once(',').ok_or_else(bad)?;
            context.has_location = true;
            context.latitude_micro = micro_degrees(lat).ok_or_else(bad)?;
            context.longitude_micro = micro_degrees(lon).ok_or_else(bad)?;
        }
        Ok(Some(context))
    }
}

/// Decimal degrees ("-48.8566") as micro-degrees, without floating point.
fn micro_degrees(text: &str) -> Option<i32> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty()
        || fraction.len() > 6
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = format!("{fraction:0<6}").parse().ok()?;
    let value = whole.checked_mul(1_000_000)?.checked_add(fraction)?;
    let value = if negative { -value } else { value };
    (-180_000_000..=180_000_000)
        .contains(&value)
        .then(|| i32::try_from(value).ok())
        .flatten()
}

#[derive(Debug, clap::Args)]
pub(super) struct HeldArgs {
    /// At most this many (1 to 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    limit: u32,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("decision").required(true).args(["release", "reject"])))]
pub(super) struct ReviewArgs {
    /// The held transfer's id (decimal).
    transfer_id: String,
    /// Post the transfer: the money moves to the beneficiary.
    #[arg(long)]
    release: bool,
    /// Void the transfer: the reserved money returns to the payer.
    #[arg(long)]
    reject: bool,
    /// The analyst's comment, kept in the risk journal (at most 500 bytes).
    #[arg(long, value_name = "TEXT", default_value = "")]
    note: String,
}

#[derive(Debug, clap::Args)]
pub(super) struct FreezeArgs {
    /// The account's ledger id (decimal).
    account_id: String,
    /// Why, kept in the risk journal (at most 500 bytes).
    #[arg(long, value_name = "TEXT", default_value = "")]
    note: String,
}

#[derive(Debug, clap::Args)]
pub(super) struct EventsArgs {
    /// The first sequence number wanted (events are numbered from 1).
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// At most this many (1 to 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    limit: u32,
}

#[derive(Debug, clap::Args)]
pub(super) struct LoadModelArgs {
    /// A model file written by `corebank risk train`.
    #[arg(long, value_name = "FILE")]
    file: PathBuf,
}

pub(super) fn reasons_text(assessment: Option<&v1::ScreenAssessment>) -> String {
    assessment.map_or_else(String::new, |a| {
        a.reasons
            .iter()
            .map(|r| r.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    })
}

pub(super) fn assessment_json(assessment: Option<&v1::ScreenAssessment>) -> Value {
    assessment.map_or(Value::Null, |a| {
        json!({
            "verdict": a.verdict,
            "score": a.score,
            "reasons": a.reasons.iter().map(|r| json!({
                "code": r.code, "name": r.name, "description": r.description,
            })).collect::<Vec<_>>(),
        })
    })
}

pub(super) async fn held(client: &Client, args: HeldArgs) -> Result<Output, Failure> {
    let response = client
        .risk_stub()
        .list_held(v1::ListHeldRequest { limit: args.limit })
        .await
        .map_err(status_failure)?
        .into_inner();
    let mut table = Table::new(&[
        ("transfer id", Align::Left),
        ("from", Align::Left),
        ("to", Align::Left),
        ("amount", Align::Right),
        ("score", Align::Right),
        ("reasons", Align::Left),
        ("held at", Align::Left),
    ]);
    let mut items = Vec::new();
    for held in &response.held {
        let id = u128_of(held.transfer_id.as_ref()).to_string();
        table.row(vec![
            id.clone(),
            held.debit_account.clone(),
            held.credit_account.clone(),
            format!("{} {}", held.amount, held.currency),
            held.assessment.as_ref().map_or(0, |a| a.score).to_string(),
            reasons_text(held.assessment.as_ref()),
            rfc3339(held.timestamp_ns),
        ]);
        items.push(json!({
            "transfer_id": id,
            "debit_account": held.debit_account,
            "credit_account": held.credit_account,
            "debit_account_id": u128_of(held.debit_account_id.as_ref()).to_string(),
            "credit_account_id": u128_of(held.credit_account_id.as_ref()).to_string(),
            "amount": held.amount,
            "currency": held.currency,
            "timestamp_ns": held.timestamp_ns.to_string(),
            "assessment": assessment_json(held.assessment.as_ref()),
        }));
    }
    Ok(Output {
        json: json!({ "held": items, "total": response.total }),
        text: format!("{}{} held for review\n", table.render(), response.total),
    })
}

pub(super) async fn review(client: &Client, args: ReviewArgs) -> Result<Output, Failure> {
    let id = parse_id(&args.transfer_id, "transfer_id")?;
    let response = client
        .risk_stub()
        .review(v1::ReviewRequest {
            transfer_id: u128_field(id),
            release: args.release,
            note: args.note,
        })
        .await
        .map_err(status_failure)?
        .into_inner();
    Ok(Output {
        json: json!({
            "transfer_id": id.to_string(),
            "outcome": response.outcome,
            "timestamp_ns": response.timestamp_ns.to_string(),
        }),
        text: pairs(&[
            ("transfer id", id.to_string()),
            ("outcome", response.outcome),
            ("time", rfc3339(response.timestamp_ns)),
        ]),
    })
}

pub(super) async fn freeze(
    client: &Client,
    args: FreezeArgs,
    freeze: bool,
) -> Result<Output, Failure> {
    let id = parse_id(&args.account_id, "account_id")?;
    let mut stub = client.risk_stub();
    if freeze {
        let frozen = stub
            .freeze(v1::FreezeRequest {
                account_id: u128_field(id),
                note: args.note,
            })
            .await
            .map_err(status_failure)?
            .into_inner();
        Ok(Output {
            json: json!({
                "account_id": id.to_string(),
                "account": frozen.account,
                "frozen": true,
                "since_ns": frozen.since_ns.to_string(),
                "note": frozen.note,
            }),
            text: pairs(&[
                ("account id", id.to_string()),
                ("account", frozen.account),
                ("frozen since", rfc3339(frozen.since_ns)),
            ]),
        })
    } else {
        stub.unfreeze(v1::UnfreezeRequest {
            account_id: u128_field(id),
            note: args.note,
        })
        .await
        .map_err(status_failure)?;
        Ok(Output {
            json: json!({ "account_id": id.to_string(), "frozen": false }),
            text: pairs(&[("account id", id.to_string()), ("frozen", "no".into())]),
        })
    }
}

pub(super) async fn frozen(client: &Client) -> Result<Output, Failure> {
    let response = client
        .risk_stub()
        .list_frozen(v1::ListFrozenRequest {})
        .await
        .map_err(status_failure)?
        .into_inner();
    let mut table = Table::new(&[
        ("account id", Align::Left),
        ("account", Align::Left),
        ("since", Align::Left),
        ("reason", Align::Left),
        ("note", Align::Left),
    ]);
    let mut items = Vec::new();
    for f in &response.frozen {
        let id = u128_of(f.account_id.as_ref()).to_string();
        let reason = f
            .reason
            .as_ref()
            .map_or_else(String::new, |r| r.name.clone());
        table.row(vec![
            id.clone(),
            f.account.clone(),
            rfc3339(f.since_ns),
            reason.clone(),
            f.note.clone(),
        ]);
        items.push(json!({
            "account_id": id, "account": f.account, "since_ns": f.since_ns.to_string(),
            "reason": reason, "note": f.note,
        }));
    }
    Ok(Output {
        json: json!({ "frozen": items }),
        text: format!("{}{} frozen\n", table.render(), items.len()),
    })
}

pub(super) async fn events(client: &Client, args: EventsArgs) -> Result<Output, Failure> {
    let response = client
        .risk_stub()
        .list_events(v1::ListRiskEventsRequest {
            from_sequence: args.from,
            limit: args.limit,
        })
        .await
        .map_err(status_failure)?
        .into_inner();
    let mut table = Table::new(&[
        ("seq", Align::Right),
        ("time", Align::Left),
        ("kind", Align::Left),
        ("transfer id", Align::Left),
        ("account id", Align::Left),
        ("score", Align::Right),
        ("reasons", Align::Left),
        ("note", Align::Left),
    ]);
    let mut items = Vec::new();
    for e in &response.events {
        let transfer = u128_of(e.transfer_id.as_ref()).to_string();
        let account = u128_of(e.account_id.as_ref()).to_string();
        table.row(vec![
            e.sequence.to_string(),
            rfc3339(e.timestamp_ns),
            e.kind.clone(),
            transfer.clone(),
            account.clone(),
            e.assessment.as_ref().map_or(0, |a| a.score).to_string(),
            reasons_text(e.assessment.as_ref()),
            e.note.clone(),
        ]);
        items.push(json!({
            "sequence": e.sequence,
            "timestamp_ns": e.timestamp_ns.to_string(),
            "kind": e.kind,
            "transfer_id": transfer,
            "account_id": account,
            "counterparty_id": u128_of(e.counterparty_id.as_ref()).to_string(),
            "amount_minor": u128_of(e.amount_minor.as_ref()).to_string(),
            "ledger": e.ledger,
            "assessment": assessment_json(e.assessment.as_ref()),
            "note": e.note,
        }));
    }
    Ok(Output {
        json: json!({ "events": items, "next_sequence": response.next_sequence }),
        text: format!(
            "{}next sequence: {}\n",
            table.render(),
            response.next_sequence
        ),
    })
}

fn status_output(status: &v1::RiskStatus) -> Output {
    Output {
        json: json!({
            "screening": status.screening,
            "failure_policy": status.failure_policy,
            "screened": status.screened,
            "held": status.held,
            "declined": status.declined,
            "freezes": status.freezes,
            "failures": status.failures,
            "mean_screen_ns": status.mean_screen_ns,
            "engine": status.engine,
            "held_open": status.held_open,
            "frozen_accounts": status.frozen_accounts,
            "feature_batches_dropped": status.feature_batches_dropped,
        }),
        text: pairs(&[
            (
                "screening",
                if status.screening { "on" } else { "off" }.into(),
            ),
            ("on failure", status.failure_policy.clone()),
            ("screened", status.screened.to_string()),
            ("held", status.held.to_string()),
            ("declined", status.declined.to_string()),
            ("freezes", status.freezes.to_string()),
            ("failures", status.failures.to_string()),
            ("mean screen time", format!("{} ns", status.mean_screen_ns)),
            ("held now", status.held_open.to_string()),
            ("frozen accounts", status.frozen_accounts.to_string()),
            (
                "feature batches missed",
                status.feature_batches_dropped.to_string(),
            ),
            ("engine", status.engine.clone()),
        ]),
    }
}

pub(super) async fn status(client: &Client) -> Result<Output, Failure> {
    let status = client
        .risk_stub()
        .status(v1::RiskStatusRequest {})
        .await
        .map_err(status_failure)?
        .into_inner();
    Ok(status_output(&status))
}

pub(super) async fn load_model(client: &Client, args: LoadModelArgs) -> Result<Output, Failure> {
    let model = std::fs::read(&args.file).map_err(|e| {
        Failure::new(
            "invalid_argument",
            format!("cannot read the model file {}: {e}", args.file.display()),
        )
    })?;
    let status = client
        .risk_stub()
        .load_model(v1::LoadModelRequest { model })
        .await
        .map_err(status_failure)?
        .into_inner();
    Ok(status_output(&status))
}

#[cfg(test)]
mod tests {
    use super::micro_degrees;

    #[test]
    fn decimal_degrees_become_micro_degrees_exactly() {
        assert_eq!(micro_degrees("48.8566"), Some(48_856_600));
        assert_eq!(micro_degrees("-2.352219"), Some(-2_352_219));
        assert_eq!(micro_degrees("180"), Some(180_000_000));
        assert_eq!(micro_degrees("180.000001"), None);
        assert_eq!(micro_degrees("1.2345678"), None);
        assert_eq!(micro_degrees("1e3"), None);
        assert_eq!(micro_degrees(""), None);
        assert_eq!(micro_degrees("-"), None);
    }
}
