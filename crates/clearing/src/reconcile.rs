//! Reconciliation: gather what every branch's ledger says about clearing, then check,
//! as a pure function, that the branches agree with each other.

use std::collections::BTreeMap;
use std::fmt;

use corebank_account_number::BranchCode;
use corebank_banking::{clearing_account_id, transfer_code};
use corebank_ledger::{Account, BATCH_EVENTS_MAX, LedgerTotals, Transfer};
use corebank_money::{CURRENCIES, Currency};
use serde::Serialize;

use crate::port::{BranchPort, PortError};
use crate::saga::Saga;
use crate::scan::{
    ReservationRecord, SagaState, classify_reservations, scan_accounts, scan_transfers,
};

/// How [`gather`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatherOptions {
    /// The reconciler's clock, in the ledgers' nanoseconds: the ages of open sagas are
    /// measured against it.
    pub now_ns: u64,
    /// The most records one scan reads (per branch: reservations and their
    /// resolutions, deliveries, accounts). A scan that stops there is reported.
    pub records_max: usize,
}

impl GatherOptions {
    pub fn at(now_ns: u64) -> Self {
        Self {
            now_ns,
            records_max: 10_000_000,
        }
    }
}

/// What one branch's ledger says about clearing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchSnapshot {
    pub branch: BranchCode,
    /// Its clearing accounts towards the other branches gathered, those that exist.
    pub clearing_accounts: Vec<Account>,
    /// Every reservation of a saga sent from this branch, with its state.
    pub reservations: Vec<ReservationRecord>,
    /// Open pending `CROSS_BRANCH_OUT` transfers that are not reservations of the
    /// protocol.
    pub malformed_reservations: Vec<Transfer>,
    /// Every delivery of a saga received by this branch.
    pub deliveries: Vec<Saga>,
    /// `CROSS_BRANCH_IN` transfers that are not deliveries of the protocol.
    pub malformed_deliveries: Vec<Transfer>,
    /// Per ledger (currency): the totals over all the branch's accounts.
    pub totals: BTreeMap<u32, LedgerTotals>,
    /// A scan stopped at `records_max`: the itemised checks are incomplete.
    pub truncated: bool,
}

/// Everything [`reconcile`] checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconciliationInput {
    pub now_ns: u64,
    pub branches: Vec<BranchSnapshot>,
}

/// Reads every branch, one after the other. On a live bank the reads are not one
/// instant: a saga that moves between two reads can show as a break that a second run
/// no longer finds. A real break persists.
pub async fn gather<P: BranchPort>(
    ports: &[&P],
    options: &GatherOptions,
) -> Result<ReconciliationInput, PortError> {
    let codes: Vec<BranchCode> = ports.iter().map(|port| port.branch()).collect();
    let mut branches = Vec::with_capacity(ports.len());
    for port in ports {
        branches.push(gather_branch(*port, &codes, options.records_max).await?);
    }
    Ok(ReconciliationInput {
        now_ns: options.now_ns,
        branches,
    })
}

async fn gather_branch<P: BranchPort>(
    port: &P,
    all: &[BranchCode],
    records_max: usize,
) -> Result<BranchSnapshot, PortError> {
    let branch = port.branch();
    let ids: Vec<u128> = all
        .iter()
        .filter(|other| **other != branch)
        .flat_map(|other| {
            CURRENCIES
                .iter()
                .map(move |currency| clearing_account_id(branch, *other, *currency))
        })
        .collect();
    let mut clearing_accounts = Vec::new();
    for chunk in ids.chunks(BATCH_EVENTS_MAX) {
        clearing_accounts.extend(port.lookup_accounts(chunk.to_vec()).await?);
    }
    let (out, out_truncated) =
        scan_transfers(port, transfer_code::CROSS_BRANCH_OUT, 0, records_max).await?;
    let (reservations, malformed_reservations) = classify_reservations(branch, &out);
    let (into, in_truncated) =
        scan_transfers(port, transfer_code::CROSS_BRANCH_IN, 0, records_max).await?;
    let mut deliveries = Vec::new();
    let mut malformed_deliveries = Vec::new();
    for transfer in &into {
        match Saga::from_delivery(branch, transfer) {
            Some(saga) => deliveries.push(saga),
            None => malformed_deliveries.push(*transfer),
        }
    }
    let (accounts, accounts_truncated) = scan_accounts(port, records_max).await?;
    let mut totals: BTreeMap<u32, LedgerTotals> = BTreeMap::new();
    for account in &accounts {
        let entry = totals.entry(account.ledger).or_default();
        entry.accounts += 1;
        entry.debits_posted = entry.debits_posted.saturating_add(account.debits_posted);
        entry.credits_posted = entry.credits_posted.saturating_add(account.credits_posted);
        entry.debits_pending = entry.debits_pending.saturating_add(account.debits_pending);
        entry.credits_pending = entry
            .credits_pending
            .saturating_add(account.credits_pending);
    }
    Ok(BranchSnapshot {
        branch,
        clearing_accounts,
        reservations,
        malformed_reservations,
        deliveries,
        malformed_deliveries,
        totals,
        truncated: out_truncated || in_truncated || accounts_truncated,
    })
}

/// What [`reconcile`] is strict about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// A saga still open after this long is a break (`saga_stuck`).
    pub saga_timeout_ns: u64,
}

/// A kind of break. The snake_case names are stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakCode {
    /// What one branch sent to another (posted, plus in flight and already delivered)
    /// differs from what the other received.
    ClearingMirrorMismatch,
    /// A clearing account exists on one side of a pair only.
    ClearingAccountMissing,
    /// A clearing account's pending credits differ from its open sagas.
    ClearingPendingMismatch,
    /// A saga has been open longer than the timeout.
    SagaStuck,
    /// A delivery at the destination has no reservation at the source.
    DeliveryWithoutReservation,
    /// A delivery at the destination whose reservation the source voided.
    DeliveredButVoided,
    /// A delivery that does not match its reservation.
    DeliveryMismatch,
    /// A reservation posted at the source without a delivery at the destination.
    PostedWithoutDelivery,
    /// A pending `CROSS_BRANCH_OUT` transfer that is not a reservation of the protocol.
    MalformedReservation,
    /// A `CROSS_BRANCH_IN` transfer that is not a delivery of the protocol.
    MalformedDelivery,
    /// Across the bank, a currency's posted debits differ from its posted credits.
    CurrencyNotConserved,
    /// Across the bank, a currency's pending debits differ from its pending credits.
    PendingNotConserved,
    /// A scan stopped at its bound: the itemised checks of this branch are incomplete.
    ScanIncomplete,
}

impl BreakCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClearingMirrorMismatch => "clearing_mirror_mismatch",
            Self::ClearingAccountMissing => "clearing_account_missing",
            Self::ClearingPendingMismatch => "clearing_pending_mismatch",
            Self::SagaStuck => "saga_stuck",
            Self::DeliveryWithoutReservation => "delivery_without_reservation",
            Self::DeliveredButVoided => "delivered_but_voided",
            Self::DeliveryMismatch => "delivery_mismatch",
            Self::PostedWithoutDelivery => "posted_without_delivery",
            Self::MalformedReservation => "malformed_reservation",
            Self::MalformedDelivery => "malformed_delivery",
            Self::CurrencyNotConserved => "currency_not_conserved",
            Self::PendingNotConserved => "pending_not_conserved",
            Self::ScanIncomplete => "scan_incomplete",
        }
    }
}

impl fmt::Display for BreakCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One break: a stable code, a sentence, and what it concerns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Break {
    pub code: BreakCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "as_string_option"
    )]
    pub saga_id: Option<u128>,
}

/// One direction of one pair in one currency. Amounts in minor units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowCheck {
    pub from: String,
    pub to: String,
    pub currency: String,
    /// `clearing_from(to).credits_posted`: posted sagas from → to.
    #[serde(serialize_with = "as_string")]
    pub sent: u128,
    /// `clearing_from(to).credits_pending`: open sagas from → to.
    #[serde(serialize_with = "as_string")]
    pub in_flight: u128,
    /// The part of `in_flight` that `to` has already delivered.
    #[serde(serialize_with = "as_string")]
    pub delivered_in_flight: u128,
    /// `clearing_to(from).debits_posted`: deliveries at `to` from `from`.
    #[serde(serialize_with = "as_string")]
    pub received: u128,
    /// `sent + delivered_in_flight == received`.
    pub ok: bool,
}

impl FlowCheck {
    fn is_idle(&self) -> bool {
        self.sent == 0 && self.in_flight == 0 && self.received == 0
    }
}

/// One currency across the bank. Amounts in minor units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CurrencyCheck {
    pub currency: String,
    #[serde(serialize_with = "as_string")]
    pub debits_posted: u128,
    #[serde(serialize_with = "as_string")]
    pub credits_posted: u128,
    #[serde(serialize_with = "as_string")]
    pub debits_pending: u128,
    #[serde(serialize_with = "as_string")]
    pub credits_pending: u128,
    pub ok: bool,
}

impl CurrencyCheck {
    fn is_idle(&self) -> bool {
        self.debits_posted == 0
            && self.credits_posted == 0
            && self.debits_pending == 0
            && self.credits_pending == 0
    }
}

/// A saga still open at its source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpenSaga {
    #[serde(serialize_with = "as_string")]
    pub id: u128,
    pub from: String,
    pub to: String,
    pub currency: String,
    #[serde(serialize_with = "as_string")]
    pub amount: u128,
    pub age_ns: u64,
    /// The destination already holds the delivery; only the post is missing.
    pub delivered: bool,
    pub overdue: bool,
}

/// The result of [`reconcile`]: every flow and currency checked, every open saga, every
/// break.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReconciliationReport {
    pub now_ns: u64,
    pub saga_timeout_ns: u64,
    pub branches: Vec<String>,
    pub flows: Vec<FlowCheck>,
    pub currencies: Vec<CurrencyCheck>,
    pub open_sagas: Vec<OpenSaga>,
    pub breaks: Vec<Break>,
}

impl ReconciliationReport {
    /// No break at all.
    pub fn is_clean(&self) -> bool {
        self.breaks.is_empty()
    }

    /// The breaks with `code`.
    pub fn breaks_of(&self, code: BreakCode) -> impl Iterator<Item = &Break> {
        self.breaks.iter().filter(move |b| b.code == code)
    }
}

/// Checks that the branches agree:
///
/// - (a) per ordered pair of branches and currency, what `from` sent (its clearing
///   account's posted credits) plus its open sagas that `to` already delivered equals
///   what `to` received (its clearing account's posted debits); and each clearing
///   account's pending credits equal its open sagas;
/// - (b) no saga is open longer than `saga_timeout_ns`;
/// - (c) per currency, across the bank, posted debits equal posted credits (and pending
///   debits pending credits);
///
/// and, saga by saga, that every delivery has its reservation, that nothing voided was
/// delivered and nothing posted was not.
pub fn reconcile(input: &ReconciliationInput, config: &ReconcileConfig) -> ReconciliationReport {
    let mut breaks = Vec::new();
    let clearing: BTreeMap<u128, &Account> = input
        .branches
        .iter()
        .flat_map(|b| b.clearing_accounts.iter().map(|a| (a.id, a)))
        .collect();
    // Per destination, the sagas it delivered, by id.
    let delivered: BTreeMap<BranchCode, BTreeMap<u128, &Saga>> = input
        .branches
        .iter()
        .map(|b| (b.branch, b.deliveries.iter().map(|s| (s.id(), s)).collect()))
        .collect();
    let is_delivered = |saga: &Saga| {
        delivered
            .get(&saga.destination())
            .is_some_and(|ids| ids.get(&saga.id()).is_some_and(|d| *d == saga))
    };

    for snapshot in &input.branches {
        if snapshot.truncated {
            breaks.push(Break {
                code: BreakCode::ScanIncomplete,
                message: format!(
                    "branch {} has more records than one scan reads; the saga-by-saga checks of its sagas are incomplete",
                    snapshot.branch
                ),
                ..Break::at(snapshot.branch)
            });
        }
        for transfer in &snapshot.malformed_reservations {
            breaks.push(Break {
                code: BreakCode::MalformedReservation,
                message: format!(
                    "branch {} holds an open pending transfer {} with the cross-branch code that is not a reservation of the protocol; no coordinator will finish it",
                    snapshot.branch, transfer.id
                ),
                saga_id: Some(transfer.id),
                ..Break::at(snapshot.branch)
            });
        }
        for transfer in &snapshot.malformed_deliveries {
            breaks.push(Break {
                code: BreakCode::MalformedDelivery,
                message: format!(
                    "branch {} holds transfer {} with the cross-branch incoming code that is not a delivery of the protocol",
                    snapshot.branch, transfer.id
                ),
                saga_id: Some(transfer.id),
                ..Break::at(snapshot.branch)
            });
        }
    }

    // (b) and the open sagas.
    let mut open_sagas = Vec::new();
    for snapshot in &input.branches {
        for record in snapshot
            .reservations
            .iter()
            .filter(|r| r.state == SagaState::Pending)
        {
            let saga = record.saga;
            let age_ns = input.now_ns.saturating_sub(record.timestamp);
            let overdue = age_ns > config.saga_timeout_ns;
            let delivered_now = is_delivered(&saga);
            if overdue {
                breaks.push(Break {
                    code: BreakCode::SagaStuck,
                    message: format!(
                        "saga {} from {} to {} ({}) has been open for {} s, longer than the {} s allowed{}",
                        saga.id(),
                        saga.source(),
                        saga.destination(),
                        amount(saga.currency(), saga.amount()),
                        age_ns / 1_000_000_000,
                        config.saga_timeout_ns / 1_000_000_000,
                        if delivered_now {
                            "; it was delivered, only the post is missing"
                        } else {
                            "; it was not delivered yet"
                        }
                    ),
                    ..Break::flow(saga.source(), saga.destination(), saga.currency())
                        .with_saga(saga.id())
                });
            }
            open_sagas.push(OpenSaga {
                id: saga.id(),
                from: saga.source().to_string(),
                to: saga.destination().to_string(),
                currency: saga.currency().alpha.to_string(),
                amount: saga.amount(),
                age_ns,
                delivered: delivered_now,
                overdue,
            });
        }
    }

    // (a) per ordered pair and currency.
    let mut flows = Vec::new();
    for from in &input.branches {
        for to in input.branches.iter().filter(|to| to.branch != from.branch) {
            for currency in CURRENCIES {
                if let Some(flow) =
                    check_flow(from, to, *currency, &clearing, &is_delivered, &mut breaks)
                {
                    flows.push(flow);
                }
            }
            itemise(from, to, &mut breaks);
        }
    }

    // (c) per currency across the bank.
    let mut sums: BTreeMap<u32, LedgerTotals> = BTreeMap::new();
    for snapshot in &input.branches {
        for (ledger, totals) in &snapshot.totals {
            let sum = sums.entry(*ledger).or_default();
            sum.accounts += totals.accounts;
            sum.debits_posted = sum.debits_posted.saturating_add(totals.debits_posted);
            sum.credits_posted = sum.credits_posted.saturating_add(totals.credits_posted);
            sum.debits_pending = sum.debits_pending.saturating_add(totals.debits_pending);
            sum.credits_pending = sum.credits_pending.saturating_add(totals.credits_pending);
        }
    }
    let mut currencies = Vec::new();
    for (ledger, sum) in &sums {
        let name = currency_name(*ledger);
        if sum.debits_posted != sum.credits_posted {
            breaks.push(Break {
                code: BreakCode::CurrencyNotConserved,
                message: format!(
                    "across the bank, {name} posted debits ({}) differ from posted credits ({})",
                    sum.debits_posted, sum.credits_posted
                ),
                currency: Some(name.clone()),
                ..Break::blank()
            });
        }
        if sum.debits_pending != sum.credits_pending {
            breaks.push(Break {
                code: BreakCode::PendingNotConserved,
                message: format!(
                    "across the bank, {name} pending debits ({}) differ from pending credits ({})",
                    sum.debits_pending, sum.credits_pending
                ),
                currency: Some(name.clone()),
                ..Break::blank()
            });
        }
        currencies.push(CurrencyCheck {
            currency: name,
            debits_posted: sum.debits_posted,
            credits_posted: sum.credits_posted,
            debits_pending: sum.debits_pending,
            credits_pending: sum.credits_pending,
            ok: sum.is_conserved(),
        });
    }

    ReconciliationReport {
        now_ns: input.now_ns,
        saga_timeout_ns: config.saga_timeout_ns,
        branches: input
            .branches
            .iter()
            .map(|b| b.branch.to_string())
            .collect(),
        flows,
        currencies,
        open_sagas,
        breaks,
    }
}

/// Check (a) for one direction of one pair in one currency; `None` when neither side
/// has a clearing account and nothing is in flight.
fn check_flow(
    from: &BranchSnapshot,
    to: &BranchSnapshot,
    currency: Currency,
    clearing: &BTreeMap<u128, &Account>,
    is_delivered: &impl Fn(&Saga) -> bool,
    breaks: &mut Vec<Break>,
) -> Option<FlowCheck> {
    let ours = clearing
        .get(&clearing_account_id(from.branch, to.branch, currency))
        .copied();
    let theirs = clearing
        .get(&clearing_account_id(to.branch, from.branch, currency))
        .copied();
    let open: Vec<&Saga> = from
        .reservations
        .iter()
        .filter(|r| {
            r.state == SagaState::Pending
                && r.saga.destination() == to.branch
                && r.saga.currency() == currency
        })
        .map(|r| &r.saga)
        .collect();
    if ours.is_none() && theirs.is_none() && open.is_empty() {
        return None;
    }
    let context = Break::flow(from.branch, to.branch, currency);
    if ours.is_none() {
        breaks.push(Break {
            code: BreakCode::ClearingAccountMissing,
            message: format!(
                "branch {} has no {} clearing account for branch {}, which has one for it",
                from.branch, currency, to.branch
            ),
            ..context.clone()
        });
    }
    let sent = ours.map_or(0, |a| a.credits_posted);
    let in_flight = ours.map_or(0, |a| a.credits_pending);
    let received = theirs.map_or(0, |a| a.debits_posted);
    let open_total = open
        .iter()
        .fold(0_u128, |sum, saga| sum.saturating_add(saga.amount()));
    let delivered_in_flight = open
        .iter()
        .filter(|saga| is_delivered(saga))
        .fold(0_u128, |sum, saga| sum.saturating_add(saga.amount()));
    let ok = sent.checked_add(delivered_in_flight) == Some(received);
    if !ok {
        breaks.push(Break {
            code: BreakCode::ClearingMirrorMismatch,
            message: format!(
                "{} sent {} to {} (posted {}, plus {} in flight already delivered) but {} received {}: a difference of {}",
                from.branch,
                currency,
                to.branch,
                amount(currency, sent),
                amount(currency, delivered_in_flight),
                to.branch,
                amount(currency, received),
                signed_difference(currency, received, sent.saturating_add(delivered_in_flight)),
            ),
            ..context.clone()
        });
    }
    if !from.truncated && in_flight != open_total {
        breaks.push(Break {
            code: BreakCode::ClearingPendingMismatch,
            message: format!(
                "{}'s {} clearing account for {} holds {} pending, but its open sagas add up to {}",
                from.branch,
                currency,
                to.branch,
                amount(currency, in_flight),
                amount(currency, open_total)
            ),
            ..context
        });
    }
    Some(FlowCheck {
        from: from.branch.to_string(),
        to: to.branch.to_string(),
        currency: currency.alpha.to_string(),
        sent,
        in_flight,
        delivered_in_flight,
        received,
        ok,
    })
}

/// Saga by saga, between `from` (source) and `to` (destination).
fn itemise(from: &BranchSnapshot, to: &BranchSnapshot, breaks: &mut Vec<Break>) {
    if from.truncated || to.truncated {
        return;
    }
    let reservations: BTreeMap<u128, &ReservationRecord> = from
        .reservations
        .iter()
        .filter(|r| r.saga.destination() == to.branch)
        .map(|r| (r.saga.id(), r))
        .collect();
    let deliveries: BTreeMap<u128, &Saga> = to
        .deliveries
        .iter()
        .filter(|s| s.source() == from.branch)
        .map(|s| (s.id(), s))
        .collect();
    for (id, delivery) in &deliveries {
        let context = Break::flow(from.branch, to.branch, delivery.currency()).with_saga(*id);
        let what = amount(delivery.currency(), delivery.amount());
        match reservations.get(id) {
            None => breaks.push(Break {
                code: BreakCode::DeliveryWithoutReservation,
                message: format!(
                    "{} delivered saga {id} ({what}) from {}, which holds no reservation for it",
                    to.branch, from.branch
                ),
                ..context
            }),
            Some(record) if record.saga != **delivery => breaks.push(Break {
                code: BreakCode::DeliveryMismatch,
                message: format!(
                    "{} delivered saga {id} ({what}) differently from {}'s reservation ({})",
                    to.branch,
                    from.branch,
                    amount(record.saga.currency(), record.saga.amount())
                ),
                ..context
            }),
            Some(record) if record.state == SagaState::Voided => breaks.push(Break {
                code: BreakCode::DeliveredButVoided,
                message: format!(
                    "{} delivered saga {id} ({what}) but {} voided its reservation: the money was paid out and refunded",
                    to.branch, from.branch
                ),
                ..context
            }),
            Some(_) => {}
        }
    }
    let undelivered = reservations
        .iter()
        .filter(|(id, r)| r.state == SagaState::Posted && !deliveries.contains_key(id));
    for (id, record) in undelivered {
        breaks.push(Break {
            code: BreakCode::PostedWithoutDelivery,
            message: format!(
                "{} posted saga {id} ({}) to {}, which holds no delivery for it",
                from.branch,
                amount(record.saga.currency(), record.saga.amount()),
                to.branch
            ),
            ..Break::flow(from.branch, to.branch, record.saga.currency()).with_saga(*id)
        });
    }
}

impl Break {
    /// Every field empty; the code is always overwritten by the caller.
    fn blank() -> Self {
        Self {
            code: BreakCode::ClearingMirrorMismatch,
            message: String::new(),
            branch: None,
            counterparty: None,
            currency: None,
            saga_id: None,
        }
    }

    fn at(branch: BranchCode) -> Self {
        Self {
            branch: Some(branch.to_string()),
            ..Self::blank()
        }
    }

    fn flow(branch: BranchCode, counterparty: BranchCode, currency: Currency) -> Self {
        Self {
            branch: Some(branch.to_string()),
            counterparty: Some(counterparty.to_string()),
            currency: Some(currency.alpha.to_string()),
            ..Self::blank()
        }
    }

    fn with_saga(self, id: u128) -> Self {
        Self {
            saga_id: Some(id),
            ..self
        }
    }
}

fn currency_name(ledger: u32) -> String {
    Currency::from_numeric(ledger)
        .map_or_else(|_| format!("ledger {ledger}"), |c| c.alpha.to_string())
}

fn amount(currency: Currency, minor: u128) -> String {
    format!("{} {}", currency.format_amount(minor), currency.alpha)
}

fn signed_difference(currency: Currency, actual: u128, expected: u128) -> String {
    if actual >= expected {
        format!(
            "+{} {}",
            currency.format_amount(actual - expected),
            currency.alpha
        )
    } else {
        format!(
            "-{} {}",
            currency.format_amount(expected - actual),
            currency.alpha
        )
    }
}

fn as_string<S: serde::Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn as_string_option<S: serde::Serializer>(
    value: &Option<u128>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.collect_str(value),
        None => serializer.serialize_none(),
    }
}

impl fmt::Display for ReconciliationReport {
    /// A readable table: the active flows, the currencies, the open sagas, the breaks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fmt_amount = |currency: &str, minor: u128| {
            Currency::from_alpha(currency)
                .map_or_else(|_| minor.to_string(), |c| c.format_amount(minor))
        };
        writeln!(
            f,
            "reconciliation of branches {} at {} ns: {}",
            self.branches.join(", "),
            self.now_ns,
            if self.is_clean() {
                "clean".to_string()
            } else {
                format!("{} break(s)", self.breaks.len())
            }
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<5} {:<5} {:<4} {:>18} {:>18} {:>18} {:>18}  check",
            "from", "to", "ccy", "sent", "in flight", "delivered early", "received"
        )?;
        let mut idle = 0;
        for flow in &self.flows {
            if flow.is_idle() && flow.ok {
                idle += 1;
                continue;
            }
            writeln!(
                f,
                "{:<5} {:<5} {:<4} {:>18} {:>18} {:>18} {:>18}  {}",
                flow.from,
                flow.to,
                flow.currency,
                fmt_amount(&flow.currency, flow.sent),
                fmt_amount(&flow.currency, flow.in_flight),
                fmt_amount(&flow.currency, flow.delivered_in_flight),
                fmt_amount(&flow.currency, flow.received),
                if flow.ok { "ok" } else { "BREAK" }
            )?;
        }
        if idle > 0 {
            writeln!(
                f,
                "(and {idle} idle flow(s) checked: nothing sent, nothing received)"
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<9} {:>20} {:>20} {:>16} {:>16}  check",
            "currency", "debits posted", "credits posted", "debits pending", "credits pending"
        )?;
        let mut idle = 0;
        for currency in &self.currencies {
            if currency.is_idle() && currency.ok {
                idle += 1;
                continue;
            }
            writeln!(
                f,
                "{:<9} {:>20} {:>20} {:>16} {:>16}  {}",
                currency.currency,
                fmt_amount(&currency.currency, currency.debits_posted),
                fmt_amount(&currency.currency, currency.credits_posted),
                fmt_amount(&currency.currency, currency.debits_pending),
                fmt_amount(&currency.currency, currency.credits_pending),
                if currency.ok { "ok" } else { "BREAK" }
            )?;
        }
        if idle > 0 {
            writeln!(f, "(and {idle} currency(ies) with no movement)")?;
        }
        writeln!(f)?;
        if self.open_sagas.is_empty() {
            writeln!(f, "open sagas: none")?;
        } else {
            writeln!(f, "open sagas: {}", self.open_sagas.len())?;
            for saga in &self.open_sagas {
                writeln!(
                    f,
                    "  {} {} -> {} {} {} age {} s{}{}",
                    saga.id,
                    saga.from,
                    saga.to,
                    fmt_amount(&saga.currency, saga.amount),
                    saga.currency,
                    saga.age_ns / 1_000_000_000,
                    if saga.delivered { ", delivered" } else { "" },
                    if saga.overdue { ", OVERDUE" } else { "" },
                )?;
            }
        }
        writeln!(f)?;
        if self.breaks.is_empty() {
            writeln!(f, "breaks: none")?;
        } else {
            writeln!(f, "breaks: {}", self.breaks.len())?;
            for item in &self.breaks {
                writeln!(f, "  {:<29} {}", item.code.as_str(), item.message)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn break_codes_serialise_as_their_stable_names() {
        let all = [
            BreakCode::ClearingMirrorMismatch,
            BreakCode::ClearingAccountMissing,
            BreakCode::ClearingPendingMismatch,
            BreakCode::SagaStuck,
            BreakCode::DeliveryWithoutReservation,
            BreakCode::DeliveredButVoided,
            BreakCode::DeliveryMismatch,
            BreakCode::PostedWithoutDelivery,
            BreakCode::MalformedReservation,
            BreakCode::MalformedDelivery,
            BreakCode::CurrencyNotConserved,
            BreakCode::PendingNotConserved,
            BreakCode::ScanIncomplete,
        ];
        let mut names = BTreeSet::new();
        for code in all {
            let json = serde_json::to_string(&code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!(names.insert(code.as_str()));
        }
    }

    #[test]
    fn differences_carry_their_sign() {
        assert_eq!(signed_difference(Currency::EUR, 150, 100), "+0.50 EUR");
        assert_eq!(signed_difference(Currency::EUR, 100, 150), "-0.50 EUR");
        assert_eq!(signed_difference(Currency::JPY, 7, 7), "+0 JPY");
    }
}
