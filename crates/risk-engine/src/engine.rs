//! The engine: features → rules + supervised model + anomaly signal → an online
//! calibration layer → score, reasons and verdict, per candidate.
//!
//! Scoring: `p = σ(w₀ + w₁·logit(model) + w₂·rules/1000 + w₃·anomaly)`, score =
//! `round(1000·p)`. The weights start from fixed values (one set for "model loaded", one
//! for "no model") and move by SGD with a fixed learning rate on analyst feedback
//! ([`Engine::feedback`]). The verdict is hold at or above the hold threshold (which
//! adapts to the daily review budget when one is set, from the candidates' own
//! timestamps), decline at or above the decline threshold, or a rule's forced action,
//! whichever is stronger. Everything is deterministic.

// Scores, probabilities and weights are floats; money never is (amounts stay u128).
#![allow(clippy::float_arithmetic)]

use crate::features::{Feature, FeatureConfig, FeatureStore, FeatureVector};
use crate::rules::{RuleSet, RulesError};
use corebank_risk::{Model, ModelError};
use corebank_screening::{
    Assessment, Candidate, REASONS_MAX, ReasonCode, ScreenError, Screener, Verdict,
};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::SystemTime;

const NS_PER_DAY: u64 = 86_400 * 1_000_000_000;
const NS_PER_HOUR: u64 = 3_600 * 1_000_000_000;
/// Resolution of the adaptive threshold: probability buckets.
const BUCKETS: usize = 10_000;
/// Transfers whose scoring inputs are kept for feedback.
const FEEDBACK_MEMORY: usize = 100_000;
/// Accounts whose recent high-risk assessments are tracked for freezing.
const RISK_MEMORY: usize = 100_000;

/// How the engine is set up.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// A rules file; `None` uses the compiled-in default rules.
    pub rules: Option<PathBuf>,
    /// A supervised model file (`corebank risk train` output), loaded at start.
    pub model: Option<PathBuf>,
    /// Without a loaded model, `screen` fails with `ScreenError::ModelMissing` (the
    /// branch's fail-open/closed policy decides) instead of scoring without it.
    pub require_model: bool,
    /// Hold at or above this score (0..=1000); the start value when a budget is set.
    pub hold_threshold: u16,
    /// Decline at or above this score.
    pub decline_threshold: u16,
    /// Freeze the debit account after this many high-risk (hold or decline)
    /// assessments within `freeze_window_ns`; 0 never freezes.
    pub freeze_after: u32,
    /// The freeze window, nanoseconds of candidate time.
    pub freeze_window_ns: u64,
    /// The reporting threshold (structuring), minor units.
    pub reporting_threshold: u128,
    /// Tiny amounts (card testing) are at most this, minor units.
    pub tiny_amount: u128,
    /// Accounts tracked by the features at most.
    pub max_accounts: usize,
    /// When set, the hold threshold adapts so that about this many transfers are held
    /// per (candidate-time) day.
    pub daily_review_budget: Option<u32>,
    /// The SGD step of the calibration layer on feedback.
    pub learning_rate: f64,
    /// A pending transfer cannot be held: decline it (true) or approve it (false) when
    /// its score calls for a hold.
    pub hold_pending_as_decline: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            rules: None,
            model: None,
            require_model: false,
            hold_threshold: 600,
            decline_threshold: 900,
            freeze_after: 3,
            // Several high-risk attempts within an hour is an attack in progress (card
            // testing, a takeover draining the account); a day's scattered holds of a
            // busy customer is not.
            freeze_window_ns: NS_PER_HOUR,
            reporting_threshold: 1_000_000,
            tiny_amount: 200,
            max_accounts: 500_000,
            daily_review_budget: None,
            learning_rate: 0.05,
            hold_pending_as_decline: false,
        }
    }
}

/// Why the engine could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The rules file is unusable (the rules in force stay).
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// The model file is unusable (the model in service stays).
    #[error("model: {0}")]
    Model(#[from] ModelError),
    /// The model does not score this engine's features (the model in service stays).
    #[error("model is incompatible with the engine's features: {0}")]
    IncompatibleModel(String),
    /// The configuration is inconsistent.
    #[error("bad engine configuration: {0}")]
    Config(String),
}

/// One candidate's scoring, in detail.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreDetail {
    /// What the pipeline gets.
    pub assessment: Assessment,
    /// The calibrated fraud probability (the score is `round(1000 * probability)`).
    pub probability: f64,
    /// The supervised model's probability, when a model is loaded.
    pub model: Option<f64>,
    /// The rule score, 0..=1 (sum of the hits' contributions, capped).
    pub rules: f64,
    /// The built-in anomaly signal, 0..=1.
    pub anomaly: f64,
}

/// Counters and the settings in force.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Candidates screened.
    pub screened: u64,
    /// Approved.
    pub approved: u64,
    /// Held.
    pub held: u64,
    /// Declined.
    pub declined: u64,
    /// Accounts frozen.
    pub frozen: u64,
    /// Transfers folded into the features.
    pub committed: u64,
    /// Feedback taken.
    pub feedback: u64,
    /// The hold threshold in force (0..=1000).
    pub hold_threshold: u16,
    /// The decline threshold.
    pub decline_threshold: u16,
    /// The model in service (BLAKE3 of its file, 16 hex digits).
    pub model_version: Option<String>,
    /// The rules in force (BLAKE3 of the text, 16 hex digits).
    pub rules_version: String,
    /// How many rules.
    pub rules: usize,
    /// Accounts the features track.
    pub tracked_accounts: usize,
}

#[derive(Debug)]
struct LoadedModel {
    model: Model,
    /// For each model feature, its index in the engine's feature vector.
    map: Vec<usize>,
    version: String,
}

impl LoadedModel {
    fn new(model: Model) -> Result<LoadedModel, EngineError> {
        if model.features.is_empty() {
            return Err(EngineError::IncompatibleModel("no features".into()));
        }
        let mut map = Vec::with_capacity(model.features.len());
        for (j, name) in model.features.iter().enumerate() {
            let Some(f) = Feature::from_name(name) else {
                return Err(EngineError::IncompatibleModel(format!(
                    "unknown feature {name:?}"
                )));
            };
            if model.categories.get(j).is_some_and(Option::is_some) {
                return Err(EngineError::IncompatibleModel(format!(
                    "feature {name:?} is categorical in the model, numeric here"
                )));
            }
            map.push(f.index());
        }
        let hex = blake3::hash(&model.to_bytes()).to_hex();
        let version = hex.as_str().get(..16).unwrap_or_default().to_string();
        Ok(LoadedModel {
            model,
            map,
            version,
        })
    }

    fn score(&self, f: &FeatureVector, row: &mut Vec<f64>) -> f64 {
        row.clear();
        row.extend(
            self.map
                .iter()
                .map(|&i| f.get(i).copied().unwrap_or(f64::NAN)),
        );
        self.model.score(row)
    }
}

/// Calibration inputs: bias, logit(model), rules, anomaly.
type Inputs = [f64; 4];

const W_MODEL: Inputs = [-0.3, 1.0, 3.0, 1.0];
const W_PLAIN: Inputs = [-4.5, 0.0, 7.0, 5.0];

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn dot(w: &Inputs, x: &Inputs) -> f64 {
    w.iter().zip(x).map(|(a, b)| a * b).sum()
}

#[derive(Debug, Default)]
struct RiskState {
    times: VecDeque<u64>,
    frozen: bool,
    last: u64,
}

#[derive(Debug)]
struct Decisions {
    w_model: Inputs,
    w_plain: Inputs,
    /// Hold threshold in probability buckets.
    hold_bucket: usize,
    day: Option<u64>,
    today: Vec<u32>,
    recent: Vec<f64>,
    days_seen: u32,
    risky: HashMap<u128, RiskState, foldhash::fast::FixedState>,
    remembered: HashMap<u128, (Inputs, bool), foldhash::fast::FixedState>,
    order: VecDeque<u128>,
    stats: EngineStats,
}

fn bucket_of(p: f64) -> usize {
    let b = (p.clamp(0.0, 1.0) * BUCKETS as f64).floor();
    if b >= BUCKETS as f64 {
        BUCKETS
    } else if b > 0.0 {
        // In range 0..BUCKETS by the clamp above.
        #[allow(clippy::cast_possible_truncation)]
        let b = b as usize;
        b
    } else {
        0
    }
}

fn score_of(p: f64) -> u16 {
    let s = (p.clamp(0.0, 1.0) * 1_000.0).round();
    // 0..=1000 by the clamp.
    #[allow(clippy::cast_possible_truncation)]
    let s = s as u16;
    s.min(Assessment::SCORE_MAX)
}

impl Decisions {
    fn roll_day(&mut self, day: u64, budget: Option<u32>, decline_bucket: usize) {
        match self.day {
            Some(d) if d == day => return,
            Some(d) if day < d => return,
            None => {
                self.day = Some(day);
                return;
            }
            Some(_) => {}
        }
        self.day = Some(day);
        for (r, t) in self.recent.iter_mut().zip(self.today.iter_mut()) {
            *r = *r * 0.5 + f64::from(*t);
            *t = 0;
        }
        self.days_seen = self.days_seen.saturating_add(1);
        let Some(budget) = budget else {
            return;
        };
        // Expected per-day counts: the decayed histogram over the sum of its weights.
        let norm = 2.0 - 0.5f64.powi(i32::try_from(self.days_seen.min(60)).unwrap_or(60) - 1);
        let mut held = 0.0;
        let mut at = decline_bucket.min(BUCKETS);
        while at > 1 {
            let next = held + self.recent.get(at - 1).copied().unwrap_or(0.0) / norm;
            if next > f64::from(budget) {
                break;
            }
            held = next;
            at -= 1;
        }
        self.hold_bucket = at;
    }

    fn hold_threshold(&self) -> u16 {
        u16::try_from(self.hold_bucket * 1_000 / BUCKETS).unwrap_or(Assessment::SCORE_MAX)
    }
}

/// The risk engine: a [`Screener`].
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    features: Mutex<FeatureStore>,
    rules: RwLock<Arc<RuleSet>>,
    rules_stamp: Mutex<Option<(SystemTime, u64)>>,
    model: RwLock<Option<Arc<LoadedModel>>>,
    model_problem: Mutex<String>,
    decisions: Mutex<Decisions>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The built-in signals: per reason, a strength in 0..=1 from the features.
const SIGNALS: [ReasonCode; 16] = [
    ReasonCode::AMOUNT_UNUSUAL,
    ReasonCode::VELOCITY_COUNT,
    ReasonCode::VELOCITY_SUM,
    ReasonCode::NEW_COUNTERPARTY,
    ReasonCode::NEW_DEVICE,
    ReasonCode::IMPOSSIBLE_TRAVEL,
    ReasonCode::UNUSUAL_HOUR,
    ReasonCode::NEW_ACCOUNT,
    ReasonCode::FAN_IN,
    ReasonCode::FAN_OUT,
    ReasonCode::NEAR_THRESHOLD,
    ReasonCode::CARD_TESTING,
    ReasonCode::DORMANT_REACTIVATION,
    ReasonCode::DRAIN,
    ReasonCode::NEW_LOCATION,
    ReasonCode::PASS_THROUGH,
];

fn ramp(x: f64, from: f64, to: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        ((x - from) / (to - from)).clamp(0.0, 1.0)
    }
}

fn signals(f: &FeatureVector) -> [f64; 16] {
    let g = |k: Feature| f.get(k.index()).copied().unwrap_or(f64::NAN);
    let flag = |k: Feature| g(k) == 1.0;
    let history = g(Feature::OutHistory);
    let mean_ratio = g(Feature::AmountRatio);
    let burst_sum = if mean_ratio.is_nan() || g(Feature::AmountLog).is_nan() {
        f64::NAN
    } else {
        // (out in 1 h + amount) in units of the usual amount.
        let amount = 10f64.powf(g(Feature::AmountLog)) - 1.0;
        let mean = amount / mean_ratio.max(1e-9);
        (g(Feature::OutSum1h) + amount) / mean.max(1.0)
    };
    let tiny = flag(Feature::IsTiny);
    let fan_in = g(Feature::FanIn24h).max(g(Feature::CreditFanIn24h));
    [
        ramp(g(Feature::AmountZ), 2.5, 6.0).max(ramp(mean_ratio, 8.0, 40.0)),
        ramp(g(Feature::OutCount1h), 4.0, 12.0),
        ramp(burst_sum, 8.0, 30.0),
        if flag(Feature::NewCounterparty) && history >= 10.0 {
            0.15
        } else {
            0.0
        },
        if flag(Feature::NewDevice) && history >= 3.0 {
            0.35
        } else {
            0.0
        },
        ramp(g(Feature::SpeedKmh), 900.0, 2_000.0) * ramp(g(Feature::DistancePrevKm), 100.0, 500.0),
        ramp(g(Feature::HourRarity), 0.95, 1.0) * 0.4,
        ramp(-g(Feature::AccountAgeDays), -14.0, 0.0) * 0.4,
        ramp(fan_in, 3.0, 8.0),
        ramp(g(Feature::FanOut24h), 4.0, 10.0),
        if flag(Feature::NearThreshold) {
            ramp(
                g(Feature::NearThresholdCount24h).max(g(Feature::CreditNearThreshold24h)),
                0.0,
                3.0,
            )
            .max(0.3)
        } else {
            0.0
        },
        if tiny {
            ramp(g(Feature::TinyCount1h), 1.0, 5.0)
        } else {
            0.0
        },
        ramp(g(Feature::DormancyDays), 30.0, 120.0) * ramp(g(Feature::DrainShare), 0.1, 0.5),
        ramp(g(Feature::DrainShare), 0.6, 1.0),
        ramp(g(Feature::DistanceHomeKm), 300.0, 2_000.0),
        ramp(g(Feature::PassThrough), 0.5, 0.9)
            * ramp(-g(Feature::MinutesSinceIn), -720.0, -60.0)
            * ramp(fan_in, 1.0, 3.0),
    ]
}

impl Engine {
    /// An engine for this configuration: loads the rules (the compiled-in default rules
    /// when no file is given; a bad rules file is an error) and, when given, the model.
    /// A model file that cannot be loaded does not fail here: the engine starts without
    /// a model ([`Engine::model_problem`] says why) and then either scores on rules and
    /// anomaly alone or, with `require_model`, fails every `screen` with
    /// `ScreenError::ModelMissing` so that the branch's fail-open/closed policy applies.
    pub fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        if config.decline_threshold > Assessment::SCORE_MAX
            || config.hold_threshold > config.decline_threshold
        {
            return Err(EngineError::Config(format!(
                "need hold_threshold <= decline_threshold <= 1000, got {} and {}",
                config.hold_threshold, config.decline_threshold
            )));
        }
        if !config.learning_rate.is_finite() || config.learning_rate < 0.0 {
            return Err(EngineError::Config("learning_rate must be >= 0".into()));
        }
        let rules = match &config.rules {
            Some(path) => RuleSet::load(path)?,
            None => RuleSet::default_rules()?,
        };
        let stamp = config.rules.as_deref().and_then(stamp);
        let features = FeatureStore::new(FeatureConfig {
            reporting_threshold: config.reporting_threshold,
            tiny_amount: config.tiny_amount,
            max_accounts: config.max_accounts.max(16),
        });
        let hold_bucket = usize::from(config.hold_threshold) * BUCKETS / 1_000;
        let hasher = || foldhash::fast::FixedState::with_seed(0xC0FE);
        let engine = Engine {
            features: Mutex::new(features),
            rules: RwLock::new(Arc::new(rules)),
            rules_stamp: Mutex::new(stamp),
            model: RwLock::new(None),
            model_problem: Mutex::new("no model file configured".to_string()),
            decisions: Mutex::new(Decisions {
                w_model: W_MODEL,
                w_plain: W_PLAIN,
                hold_bucket,
                day: None,
                today: vec![0; BUCKETS + 1],
                recent: vec![0.0; BUCKETS + 1],
                days_seen: 0,
                risky: HashMap::with_hasher(hasher()),
                remembered: HashMap::with_hasher(hasher()),
                order: VecDeque::new(),
                stats: EngineStats::default(),
            }),
            config,
        };
        if let Some(path) = engine.config.model.clone()
            && let Err(e) = engine.load_model(&path)
        {
            *lock(&engine.model_problem) = e.to_string();
        }
        Ok(engine)
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Loads a model file and puts it in service; on any error (unreadable, corrupt,
    /// incompatible) the model in service stays. Returns the new model's version.
    pub fn load_model(&self, path: &Path) -> Result<String, EngineError> {
        let model = Model::load(path)?;
        self.set_model(model)
    }

    /// Puts a model in service (after checking it scores this engine's features);
    /// returns its version.
    pub fn set_model(&self, model: Model) -> Result<String, EngineError> {
        let loaded = LoadedModel::new(model)?;
        let version = loaded.version.clone();
        *self
            .model
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(loaded));
        lock(&self.model_problem).clear();
        Ok(version)
    }

    /// Why no model is in service (`None` when one is).
    pub fn model_problem(&self) -> Option<String> {
        if self.current_model().is_some() {
            return None;
        }
        Some(lock(&self.model_problem).clone())
    }

    /// The version of the model in service.
    pub fn model_version(&self) -> Option<String> {
        self.current_model().map(|m| m.version.clone())
    }

    fn current_model(&self) -> Option<Arc<LoadedModel>> {
        self.model
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Puts a rule set in force.
    pub fn set_rules(&self, rules: RuleSet) {
        *self
            .rules
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(rules);
    }

    /// Re-reads the configured rules file (the compiled-in rules when none); a broken
    /// file keeps the rules in force and returns the error. Returns the rule count.
    pub fn reload_rules(&self) -> Result<usize, EngineError> {
        let rules = match &self.config.rules {
            Some(path) => {
                *lock(&self.rules_stamp) = stamp(path);
                RuleSet::load(path)?
            }
            None => RuleSet::default_rules()?,
        };
        let n = rules.rules.len();
        self.set_rules(rules);
        Ok(n)
    }

    /// Reloads the rules file when its modification time or size changed since the
    /// last (attempted) load. `Ok(true)` when new rules are in force.
    pub fn reload_rules_if_changed(&self) -> Result<bool, EngineError> {
        let Some(path) = &self.config.rules else {
            return Ok(false);
        };
        let now = stamp(path);
        if now.is_none() || *lock(&self.rules_stamp) == now {
            return Ok(false);
        }
        self.reload_rules().map(|_| true)
    }

    /// A sentence for a reason code: a built-in reason, or the rule it names.
    pub fn explain_reason(&self, code: ReasonCode) -> String {
        if let (Some(name), Some(text)) = (code.name(), code.description()) {
            return format!("{name}: {text}");
        }
        let rules = self.rules();
        match rules.rule_of(code) {
            Some(rule) if rule.description.is_empty() => format!("rule {}", rule.name),
            Some(rule) => format!("rule {}: {}", rule.name, rule.description),
            None => format!("unknown reason {}", code.0),
        }
    }

    /// Counters and settings in force.
    pub fn stats(&self) -> EngineStats {
        let tracked = lock(&self.features).tracked_accounts();
        let rules = self.rules();
        let mut stats = {
            let d = lock(&self.decisions);
            let mut s = d.stats.clone();
            s.hold_threshold = d.hold_threshold();
            s
        };
        stats.decline_threshold = self.config.decline_threshold;
        stats.model_version = self.model_version();
        stats.rules_version = rules.version.clone();
        stats.rules = rules.rules.len();
        stats.tracked_accounts = tracked;
        stats
    }

    /// Analyst feedback on a screened transfer (void = fraud, post = legitimate): one
    /// SGD step of the calibration layer. False when the transfer is not remembered.
    pub fn feedback(&self, transfer_id: u128, is_fraud: bool) -> bool {
        let mut d = lock(&self.decisions);
        let Some(&(x, with_model)) = d.remembered.get(&transfer_id) else {
            return false;
        };
        let y = if is_fraud { 1.0 } else { 0.0 };
        let lr = self.config.learning_rate;
        let w = if with_model {
            &mut d.w_model
        } else {
            &mut d.w_plain
        };
        let p = sigmoid(dot(w, &x));
        for (wi, xi) in w.iter_mut().zip(x.iter()) {
            *wi += lr * (y - p) * xi;
        }
        d.stats.feedback += 1;
        true
    }

    /// Screens a batch with the scoring details of each candidate.
    pub fn screen_detailed(
        &self,
        batch: &[Candidate],
        out: &mut Vec<ScoreDetail>,
    ) -> Result<(), ScreenError> {
        self.assess(batch, |d| out.push(d))
    }

    fn assess(
        &self,
        batch: &[Candidate],
        mut sink: impl FnMut(ScoreDetail),
    ) -> Result<(), ScreenError> {
        let model = self.current_model();
        if self.config.require_model && model.is_none() {
            return Err(ScreenError::ModelMissing(lock(&self.model_problem).clone()));
        }
        let mut vectors: Vec<FeatureVector> = Vec::with_capacity(batch.len());
        lock(&self.features).compute_batch(batch, &mut vectors);
        let rules = self.rules();
        let mut row = Vec::with_capacity(vectors.first().map_or(0, |f| f.len()));
        let mut parts = Vec::with_capacity(batch.len());
        for f in &vectors {
            parts.push(self.components(f, &rules, model.as_deref(), &mut row));
        }
        let mut d = lock(&self.decisions);
        let decline_bucket = usize::from(self.config.decline_threshold) * BUCKETS / 1_000;
        for (c, part) in batch.iter().zip(parts) {
            d.roll_day(
                c.timestamp_ns / NS_PER_DAY,
                self.config.daily_review_budget,
                decline_bucket,
            );
            let x: Inputs = [
                1.0,
                part.model.map_or(0.0, |p| {
                    let p = p.clamp(1e-6, 1.0 - 1e-6);
                    (p / (1.0 - p)).ln()
                }),
                part.rules,
                part.anomaly,
            ];
            let w = if part.model.is_some() {
                d.w_model
            } else {
                d.w_plain
            };
            let p = sigmoid(dot(&w, &x));
            let bucket = bucket_of(p);
            if let Some(h) = d.today.get_mut(bucket) {
                *h = h.saturating_add(1);
            }
            let mut verdict = if bucket >= decline_bucket {
                Verdict::Decline
            } else if bucket >= d.hold_bucket {
                Verdict::Hold
            } else {
                Verdict::Approve
            };
            if let Some(forced) = part.forced {
                verdict = verdict.max(forced);
            }
            if c.pending && verdict == Verdict::Hold {
                verdict = if self.config.hold_pending_as_decline {
                    Verdict::Decline
                } else {
                    Verdict::Approve
                };
            }
            let freeze = verdict != Verdict::Approve && self.note_risk(&mut d, c);
            remember(&mut d, c.id, (x, part.model.is_some()));
            let stats = &mut d.stats;
            stats.screened += 1;
            match verdict {
                Verdict::Approve => stats.approved += 1,
                Verdict::Hold => stats.held += 1,
                Verdict::Decline => stats.declined += 1,
            }
            if freeze {
                stats.frozen += 1;
            }
            sink(ScoreDetail {
                assessment: Assessment {
                    verdict,
                    score: score_of(p),
                    reasons: part.reasons,
                    freeze_debit_account: freeze,
                },
                probability: p,
                model: part.model,
                rules: part.rules,
                anomaly: part.anomaly,
            });
        }
        Ok(())
    }

    /// Records a high-risk assessment; true when the account is to be frozen now.
    fn note_risk(&self, d: &mut Decisions, c: &Candidate) -> bool {
        let after = self.config.freeze_after;
        if after == 0 {
            return false;
        }
        if !d.risky.contains_key(&c.debit_account) && d.risky.len() >= RISK_MEMORY {
            let victim = d
                .risky
                .iter()
                .take(8)
                .min_by_key(|(_, r)| r.last)
                .map(|(k, _)| *k);
            if let Some(k) = victim {
                d.risky.remove(&k);
            }
        }
        let window = self.config.freeze_window_ns;
        let r = d.risky.entry(c.debit_account).or_default();
        let now = c.timestamp_ns;
        r.last = r.last.max(now);
        while r
            .times
            .front()
            .is_some_and(|&t| now.saturating_sub(t) > window)
        {
            r.times.pop_front();
        }
        r.times.push_back(now);
        let cap = usize::try_from(after).unwrap_or(usize::MAX);
        while r.times.len() > cap {
            r.times.pop_front();
        }
        if !r.frozen && r.times.len() >= cap {
            r.frozen = true;
            return true;
        }
        false
    }

    fn components(
        &self,
        f: &FeatureVector,
        rules: &RuleSet,
        model: Option<&LoadedModel>,
        row: &mut Vec<f64>,
    ) -> Components {
        let mut rule_score = 0u32;
        let mut forced: Option<Verdict> = None;
        // Strongest rule hits: (forced action, score, index).
        let mut hits: [(u8, u16, u16); REASONS_MAX] = [(0, 0, 0); REASONS_MAX];
        let mut n_hits = 0usize;
        for i in rules.hits(f) {
            let Some(rule) = rules.rules.get(i) else {
                continue;
            };
            rule_score += u32::from(rule.score);
            let action = rule.action.map(|a| a.verdict());
            forced = forced.max(action);
            let key = (
                action.map_or(0, |v| v as u8),
                rule.score,
                u16::try_from(i).unwrap_or(u16::MAX),
            );
            if n_hits < REASONS_MAX {
                if let Some(slot) = hits.get_mut(n_hits) {
                    *slot = key;
                }
                n_hits += 1;
            } else if let Some(weakest) = hits.iter_mut().min_by_key(|h| (h.0, h.1))
                && (key.0, key.1) > (weakest.0, weakest.1)
            {
                *weakest = key;
            }
        }
        let mut hit_list = hits.get(..n_hits).unwrap_or(&[]).to_vec();
        hit_list.sort_by(|a, b| (b.0, b.1, a.2).cmp(&(a.0, a.1, b.2)));
        let model_p = model.map(|m| m.score(f, row));
        let sig = signals(f);
        let anomaly = 1.0 - sig.iter().fold(1.0, |acc, s| acc * (1.0 - s));
        let mut reasons = [ReasonCode::NONE; REASONS_MAX];
        let mut k = 0;
        for h in &hit_list {
            if let Some(slot) = reasons.get_mut(k) {
                *slot = ReasonCode::rule(h.2);
                k += 1;
            }
        }
        if model_p.is_some_and(|p| p >= 0.5)
            && let Some(slot) = reasons.get_mut(k)
        {
            *slot = ReasonCode::MODEL;
            k += 1;
        }
        let mut order: [usize; 16] = std::array::from_fn(|i| i);
        order.sort_by(|&a, &b| {
            let (sa, sb) = (sig.get(a).copied(), sig.get(b).copied());
            sb.partial_cmp(&sa).unwrap_or(std::cmp::Ordering::Equal)
        });
        for i in order {
            if sig.get(i).copied().unwrap_or(0.0) < 0.1 {
                break;
            }
            if let (Some(slot), Some(code)) = (reasons.get_mut(k), SIGNALS.get(i)) {
                *slot = *code;
                k += 1;
            }
        }
        Components {
            rules: f64::from(rule_score.min(1_000)) / 1_000.0,
            forced,
            reasons,
            model: model_p,
            anomaly,
        }
    }
}

fn remember(d: &mut Decisions, id: u128, x: (Inputs, bool)) {
    if d.remembered.insert(id, x).is_none() {
        d.order.push_back(id);
        while d.order.len() > FEEDBACK_MEMORY {
            if let Some(old) = d.order.pop_front() {
                d.remembered.remove(&old);
            }
        }
    }
}

struct Components {
    rules: f64,
    forced: Option<Verdict>,
    reasons: [ReasonCode; REASONS_MAX],
    model: Option<f64>,
    anomaly: f64,
}

impl Screener for Engine {
    fn screen(&self, batch: &[Candidate], out: &mut Vec<Assessment>) -> Result<(), ScreenError> {
        out.reserve(batch.len());
        self.assess(batch, |d| out.push(d.assessment))
    }

    fn committed(&self, batch: &[Candidate]) {
        let mut store = lock(&self.features);
        for c in batch {
            store.update(c);
        }
        drop(store);
        let n = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        lock(&self.decisions).stats.committed += n;
    }
}

#[cfg(test)]
mod tests;
