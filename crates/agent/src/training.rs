//! Training a candidate model: synthetic labelled traffic (`corebank-fraud-sim`)
//! through the engine's feature pipeline (`corebank_risk_engine::sim::feature_rows`),
//! gradient-boosted trees (`corebank_risk::Model`), evaluated on held-out traffic from
//! a separate seed. The training seed changes per version; the held-out seed stays
//! the same, so that versions compare on the same data.

// Scores, rates and timings are floats; no money is computed here.
#![allow(clippy::float_arithmetic)]

use std::time::Instant;

use corebank_fraud_sim::SimConfig;
use corebank_risk::{Model, Params};
use corebank_risk_engine::FEATURE_NAMES;
use corebank_risk_engine::sim::feature_rows;

use crate::error::AgentError;
use crate::registry::Figures;

/// The sizes and seeds of a training run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainConfig {
    /// Simulated customers (training and held-out traffic alike).
    pub customers: u32,
    /// Simulated days.
    pub days: u32,
    /// Simulated branches.
    pub branches: u16,
    /// Boosting rounds.
    pub trees: usize,
    /// Maximum tree depth.
    pub max_depth: usize,
    /// Version N trains on traffic of seed `seed + N`.
    pub seed: u64,
    /// The held-out traffic's seed.
    pub test_seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            customers: 300,
            days: 30,
            branches: 4,
            trees: 60,
            max_depth: 5,
            seed: 1_000,
            test_seed: 999_999,
        }
    }
}

impl TrainConfig {
    fn sim(&self, seed: u64) -> SimConfig {
        SimConfig {
            seed,
            customers: self.customers,
            days: self.days,
            branches: self.branches,
            ..SimConfig::default()
        }
    }

    /// The training seed of a version.
    pub fn train_seed(&self, version: u32) -> u64 {
        self.seed.wrapping_add(u64::from(version))
    }
}

/// A trained, evaluated model not yet in the registry.
#[derive(Debug, Clone)]
pub struct TrainedCandidate {
    /// The model file's bytes.
    pub bytes: Vec<u8>,
    /// Its figures (not promoted).
    pub figures: Figures,
}

fn rows(config: &SimConfig) -> (Vec<Vec<f64>>, Vec<bool>) {
    let rows = feature_rows(config);
    let labels = rows.iter().map(|r| r.1).collect();
    let x = rows.into_iter().map(|r| r.0.to_vec()).collect();
    (x, labels)
}

/// The version a branch reports for a model (the engine's: the first 16 hex digits
/// of the BLAKE3 hash of its file).
pub fn engine_version(model: &Model) -> String {
    let hex = blake3::hash(&model.to_bytes()).to_hex();
    hex.as_str().get(..16).unwrap_or_default().to_string()
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Trains and evaluates the candidate for `version`; `now_unix` is recorded as its
/// creation time.
pub fn train_candidate(
    config: &TrainConfig,
    version: u32,
    now_unix: u64,
) -> Result<TrainedCandidate, AgentError> {
    if config.customers == 0 || config.days == 0 || config.branches == 0 || config.trees == 0 {
        return Err(AgentError::Config(
            "training needs customers, days, branches and trees above 0".into(),
        ));
    }
    let started = Instant::now();
    let train_seed = config.train_seed(version);
    let (x, labels) = rows(&config.sim(train_seed));
    let positives = labels.iter().filter(|l| **l).count();
    if positives == 0 || positives == labels.len() {
        return Err(AgentError::Training(format!(
            "the synthetic traffic (seed {train_seed}) has {positives} fraudulent rows of {}; \
             raise --train-customers or --train-days",
            labels.len()
        )));
    }
    let params = Params {
        trees: config.trees,
        max_depth: config.max_depth,
        seed: train_seed,
        ..Params::default()
    };
    let names = FEATURE_NAMES.iter().map(|s| (*s).to_string()).collect();
    let mut model = Model::train(names, &x, &labels, &params, |_, _| {});
    model.info.rows = count(labels.len());
    model.info.positives = count(positives);
    model.info.seed = train_seed;
    drop(x);
    let (test_x, test_labels) = rows(&config.sim(config.test_seed));
    let scores: Vec<f64> = test_x.iter().map(|row| model.score(row)).collect();
    let metrics = corebank_risk::evaluate(&scores, &test_labels, 0.5);
    let seconds = started.elapsed().as_secs_f64();
    model.info.training_seconds = seconds;
    let bytes = model.to_bytes();
    // The branch decodes and hashes what it loads: hash the decoded form too.
    let engine_version = match Model::from_bytes(&bytes) {
        Ok(decoded) => engine_version(&decoded),
        Err(e) => {
            return Err(AgentError::Training(format!(
                "the trained model does not decode: {e}"
            )));
        }
    };
    Ok(TrainedCandidate {
        bytes,
        figures: Figures {
            auprc: metrics.auprc,
            roc_auc: metrics.roc_auc,
            recall_at_1pct_fpr: metrics.recall_at_1pct_fpr,
            recall_at_01pct_fpr: metrics.recall_at_01pct_fpr,
            precision_at_80pct_recall: metrics.precision_at_80pct_recall,
            train_rows: count(labels.len()),
            train_positives: count(positives),
            review_rows: 0,
            test_rows: count(test_labels.len()),
            test_positives: metrics.positives,
            train_seed,
            test_seed: config.test_seed,
            trees: count(config.trees),
            training_seconds: seconds,
            created_unix: now_unix,
            engine_version,
            promoted: false,
            promoted_unix: None,
            decision: String::new(),
            promotion_errors: Vec::new(),
        },
    })
}

/// Whether a candidate with `candidate` AUPRC should replace the version in service
/// (`current`, none: always): it must beat it by more than `min_improvement`.
pub fn beats(candidate: f64, current: Option<f64>, min_improvement: f64) -> bool {
    match current {
        None => true,
        Some(current) => candidate > current + min_improvement.max(0.0),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_small_candidate_trains_and_is_deterministic_except_for_time() {
        let config = TrainConfig {
            customers: 60,
            days: 14,
            trees: 10,
            ..TrainConfig::default()
        };
        let a = train_candidate(&config, 1, 5).unwrap();
        assert!(a.figures.train_rows > 0 && a.figures.train_positives > 0);
        assert!(a.figures.test_positives > 0);
        assert!(a.figures.auprc > 0.1, "{:?}", a.figures);
        assert_eq!(a.figures.train_seed, config.train_seed(1));
        assert_eq!(a.figures.engine_version.len(), 16);
        let model = Model::from_bytes(&a.bytes).unwrap();
        assert_eq!(model.features.len(), FEATURE_NAMES.len());
        let b = train_candidate(&config, 2, 5).unwrap();
        assert_ne!(a.figures.train_seed, b.figures.train_seed);
        assert_eq!(a.figures.test_seed, b.figures.test_seed);
    }

    #[test]
    fn promotion_needs_a_strictly_better_auprc() {
        assert!(beats(0.1, None, 0.0));
        assert!(beats(0.8, Some(0.7), 0.0));
        assert!(!beats(0.7, Some(0.7), 0.0));
        assert!(!beats(0.75, Some(0.7), 0.1));
    }
}
