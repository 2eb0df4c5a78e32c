//! Synthetic traffic (`corebank-fraud-sim`) through the engine's feature pipeline:
//! candidates, a feature CSV for training, and a per-typology evaluation.
//!
//! Events map to candidates as a branch would build them: seconds become nanosecond
//! timestamps from [`SIM_EPOCH_SECS`] (a UTC midnight, so the hour of day is the
//! simulator's), micro-degree locations become [`GeoPoint`]s, external parties
//! (employers, merchants, outside banks) are accounts outside the branch (creation time
//! unknown), customer accounts were opened 30 to 2,030 days before the simulation
//! (deterministic from the id), and the available balance is the simulator's tracked
//! balance before the event.

// Scores, rates and recall are floats; money is not (amounts stay u128).
#![allow(clippy::float_arithmetic)]

use crate::engine::{Engine, EngineConfig, EngineError};
use crate::features::{FEATURE_NAMES, FeatureConfig, FeatureStore, FeatureVector};
use corebank_fraud_sim::{Event, EventKind, SimConfig, Simulator, Typology, branch_of};
use corebank_risk::{Model, Params};
use corebank_screening::{Candidate, Channel, GeoPoint, TransferContext};
use std::collections::HashMap;
use std::fmt;
use std::io::Write;

/// The simulation's second 0, as a Unix time (2023-11-14T00:00:00Z).
pub const SIM_EPOCH_SECS: u64 = 1_699_920_000;
const NS: u64 = 1_000_000_000;
const DAY_NS: u64 = 86_400 * NS;

fn channel_of(c: corebank_fraud_sim::Channel) -> Channel {
    match c {
        corebank_fraud_sim::Channel::Card => Channel::Card,
        corebank_fraud_sim::Channel::Online => Channel::Online,
        corebank_fraud_sim::Channel::Mobile => Channel::Mobile,
        corebank_fraud_sim::Channel::Branch => Channel::Branch,
        corebank_fraud_sim::Channel::Atm => Channel::Atm,
    }
}

fn code_of(kind: EventKind) -> u16 {
    match kind {
        EventKind::Salary => 1,
        EventKind::Rent => 2,
        EventKind::Bill => 3,
        EventKind::CardPayment => 4,
        EventKind::P2p => 5,
        EventKind::CrossBranch => 6,
        EventKind::External => 7,
        EventKind::CashDeposit => 8,
        EventKind::CashWithdrawal => 9,
    }
}

/// When a simulated account was opened (0, unknown, for external parties).
pub fn created_ns(account: u128) -> u64 {
    if branch_of(account).is_none() {
        return 0;
    }
    let h = crate::features::fold(account).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let age_days = 30 + (h >> 40) % 2_000;
    (SIM_EPOCH_SECS * NS).saturating_sub(age_days * DAY_NS)
}

fn micro(v: i64) -> i32 {
    i32::try_from(v.clamp(-180_000_000, 180_000_000)).unwrap_or(0)
}

/// The candidate a branch would build for this event.
pub fn candidate_of(e: &Event, debit_available: u128) -> Candidate {
    let location = (e.lat != 0 || e.lon != 0).then(|| GeoPoint {
        lat_micro: micro(e.lat),
        lon_micro: micro(e.lon),
    });
    // The event id breaks ties between events of the same second.
    let at = (SIM_EPOCH_SECS + e.timestamp) * NS + e.id % 1_000_000;
    Candidate {
        id: u128::from(e.id) + 1,
        debit_account: e.debit,
        credit_account: e.credit,
        amount: e.amount,
        ledger: e.currency.numeric,
        code: code_of(e.kind),
        pending: false,
        timestamp_ns: at,
        debit_account_created_ns: created_ns(e.debit),
        credit_account_created_ns: created_ns(e.credit),
        debit_available,
        context: TransferContext {
            channel: channel_of(e.channel),
            merchant_category: e.merchant_category,
            device: e.device,
            location,
            occurred_at_ns: at,
        },
    }
}

/// Every event of a simulation with its candidate, in time order.
pub fn candidates(config: &SimConfig) -> impl Iterator<Item = (Candidate, Event)> {
    let sim = Simulator::new(config.clone());
    let mut balances: HashMap<u128, u128> = sim
        .customers()
        .iter()
        .enumerate()
        .map(|(i, c)| (c.account, sim.balance(i).unwrap_or(0)))
        .collect();
    sim.map(move |e| {
        let available = balances.get(&e.debit).copied().unwrap_or(0);
        let c = candidate_of(&e, available);
        if let Some(b) = balances.get_mut(&e.debit) {
            *b = b.saturating_sub(e.amount);
        }
        if let Some(b) = balances.get_mut(&e.credit) {
            *b = b.saturating_add(e.amount);
        }
        (c, e)
    })
}

fn feature_config(config: &SimConfig) -> FeatureConfig {
    FeatureConfig {
        reporting_threshold: config.reporting_threshold,
        ..FeatureConfig::default()
    }
}

/// Features of every event (state before it), with its label and typology.
pub fn feature_rows(config: &SimConfig) -> Vec<(FeatureVector, bool, Typology)> {
    let mut store = FeatureStore::new(feature_config(config));
    candidates(config)
        .map(|(c, e)| {
            let f = store.compute(&c);
            store.update(&c);
            (f, e.is_fraud, e.typology)
        })
        .collect()
}

/// Writes the feature CSV: [`FEATURE_NAMES`], `is_fraud` (0/1) and `typology`
/// (categorical: ignore it for training). Missing values are empty. Returns the rows.
pub fn export_features<W: Write>(config: &SimConfig, out: &mut W) -> std::io::Result<u64> {
    let mut header = FEATURE_NAMES.join(",");
    header.push_str(",is_fraud,typology");
    writeln!(out, "{header}")?;
    let mut store = FeatureStore::new(feature_config(config));
    let mut n = 0;
    let mut line = String::with_capacity(512);
    for (c, e) in candidates(config) {
        let f = store.compute(&c);
        store.update(&c);
        line.clear();
        for v in f {
            if !v.is_nan() {
                use std::fmt::Write as _;
                let _ = write!(line, "{v}");
            }
            line.push(',');
        }
        line.push_str(if e.is_fraud { "1," } else { "0," });
        line.push_str(e.typology.name());
        writeln!(out, "{line}")?;
        n += 1;
    }
    Ok(n)
}

/// One typology's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct TypologyRow {
    /// The typology's name.
    pub typology: &'static str,
    /// Fraudulent transfers of it in the test traffic.
    pub fraudulent: u64,
    /// Those scoring above the threshold.
    pub caught: u64,
    /// caught / fraudulent.
    pub recall: f64,
}

/// The evaluation of the engine on a test simulation.
#[derive(Clone, Debug, PartialEq)]
pub struct TypologyReport {
    /// Per fraud typology.
    pub rows: Vec<TypologyRow>,
    /// Normal transfers.
    pub normal: u64,
    /// Normal transfers above the threshold.
    pub false_positives: u64,
    /// false_positives / normal (kept under 1% by the choice of threshold).
    pub fpr: f64,
    /// The probability threshold (caught = above it).
    pub threshold: f64,
    /// Overall fraudulent transfers and caught.
    pub fraudulent: u64,
    /// Caught overall.
    pub caught: u64,
    /// Area under the precision-recall curve of the engine's score.
    pub auprc: f64,
    /// ROC-AUC.
    pub roc_auc: f64,
    /// Recall at 0.1% false-positive rate.
    pub recall_at_01pct_fpr: f64,
    /// Training rows and positives.
    pub train_rows: u64,
    /// Training positives.
    pub train_positives: u64,
}

impl TypologyReport {
    /// The lowest per-typology recall (1 when there are no typologies).
    pub fn min_recall(&self) -> f64 {
        self.rows.iter().map(|r| r.recall).fold(1.0, f64::min)
    }
}

impl fmt::Display for TypologyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "train rows {} (fraud {}); test normal {} fraud {}",
            self.train_rows, self.train_positives, self.normal, self.fraudulent
        )?;
        writeln!(
            f,
            "threshold {:.6}  FPR {:.4}% ({} false positives)  AUPRC {:.4}  ROC-AUC {:.4}  recall@0.1%FPR {:.4}  overall recall {:.4} ({}/{})",
            self.threshold,
            self.fpr * 100.0,
            self.false_positives,
            self.auprc,
            self.roc_auc,
            self.recall_at_01pct_fpr,
            ratio(self.caught, self.fraudulent),
            self.caught,
            self.fraudulent
        )?;
        writeln!(
            f,
            "{:<22} {:>10} {:>8} {:>8}",
            "typology", "fraudulent", "caught", "recall"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<22} {:>10} {:>8} {:>7.2}%",
                r.typology,
                r.fraudulent,
                r.caught,
                r.recall * 100.0
            )?;
        }
        Ok(())
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// A model trained on simulated traffic, with what it was trained on.
#[derive(Debug)]
pub struct TrainedModel {
    pub model: Model,
    pub rows: u64,
    pub positives: u64,
}

/// Trains the supervised model on the engine's features of `config`'s simulated
/// traffic (labels from the simulator). `progress(done, total)` follows the trees.
pub fn train_on_simulation(
    config: &SimConfig,
    params: &Params,
    progress: impl FnMut(usize, usize),
) -> TrainedModel {
    let rows = feature_rows(config);
    let labels: Vec<bool> = rows.iter().map(|r| r.1).collect();
    let x: Vec<Vec<f64>> = rows.iter().map(|r| r.0.to_vec()).collect();
    let names = FEATURE_NAMES.iter().map(|s| s.to_string()).collect();
    let model = Model::train(names, &x, &labels, params, progress);
    TrainedModel {
        model,
        rows: u64::try_from(rows.len()).unwrap_or(u64::MAX),
        positives: u64::try_from(labels.iter().filter(|&&l| l).count()).unwrap_or(0),
    }
}

/// Trains the supervised model on the features of `train`'s traffic, scores `test`'s
/// traffic through the full engine (rules, model, anomaly, calibration), picks the
/// threshold keeping the false-positive rate on normal traffic under 1% and reports
/// per typology.
pub fn evaluate_typologies(
    train: &SimConfig,
    test: &SimConfig,
    params: &Params,
) -> Result<TypologyReport, EngineError> {
    let trained = train_on_simulation(train, params, |_, _| {});
    let (model, train_rows, train_positives) = (trained.model, trained.rows, trained.positives);

    let engine = Engine::new(EngineConfig {
        reporting_threshold: test.reporting_threshold,
        freeze_after: 0,
        ..EngineConfig::default()
    })?;
    engine.set_model(model)?;
    let mut scores = Vec::new();
    let mut truth = Vec::new();
    let mut kinds = Vec::new();
    let mut detail = Vec::with_capacity(1);
    for (c, e) in candidates(test) {
        detail.clear();
        engine
            .screen_detailed(std::slice::from_ref(&c), &mut detail)
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let p = detail.first().map_or(0.0, |d| d.probability);
        corebank_screening::Screener::committed(&engine, std::slice::from_ref(&c));
        scores.push(p);
        truth.push(e.is_fraud);
        kinds.push(e.typology);
    }
    let mut normal: Vec<f64> = scores
        .iter()
        .zip(&truth)
        .filter(|(_, t)| !**t)
        .map(|(s, _)| *s)
        .collect();
    normal.sort_by(|a, b| b.total_cmp(a));
    let n_normal = normal.len();
    // FPR = fp / n < 1%  ⟺  fp <= ceil(n / 100) - 1.
    let allowed = n_normal.div_ceil(100).saturating_sub(1);
    let threshold = normal.get(allowed).copied().unwrap_or(0.0);
    let caught = |s: f64| s > threshold;
    let false_positives = u64::try_from(normal.iter().filter(|&&s| caught(s)).count()).unwrap_or(0);
    let mut rows = Vec::new();
    for t in Typology::FRAUD {
        let (mut n, mut k) = (0u64, 0u64);
        for (s, kind) in scores.iter().zip(&kinds) {
            if *kind == t {
                n += 1;
                k += u64::from(caught(*s));
            }
        }
        if n > 0 {
            rows.push(TypologyRow {
                typology: t.name(),
                fraudulent: n,
                caught: k,
                recall: ratio(k, n),
            });
        }
    }
    let metrics = corebank_risk::evaluate(&scores, &truth, threshold);
    let n_normal = u64::try_from(n_normal).unwrap_or(u64::MAX);
    Ok(TypologyReport {
        fraudulent: rows.iter().map(|r| r.fraudulent).sum(),
        caught: rows.iter().map(|r| r.caught).sum(),
        rows,
        normal: n_normal,
        false_positives,
        fpr: ratio(false_positives, n_normal),
        threshold,
        auprc: metrics.auprc,
        roc_auc: metrics.roc_auc,
        recall_at_01pct_fpr: metrics.recall_at_01pct_fpr,
        train_rows,
        train_positives,
    })
}

#[cfg(test)]
mod tests;
