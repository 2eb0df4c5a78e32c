//! corebank-risk-engine: inline fraud screening of a branch's transfers.
//!
//! [`features`] keeps bounded per-account state and turns each [`Candidate`] into a
//! fixed, named feature vector ([`FEATURE_NAMES`]); [`rules`] evaluates a TOML rules
//! file (hot-reloadable) on those features; [`engine`] combines rules, an optional
//! supervised model (`corebank_risk::Model`), a built-in anomaly signal and an online
//! calibration layer into an [`Assessment`], implementing
//! [`corebank_screening::Screener`]. [`sim`] runs the synthetic traffic of
//! `corebank-fraud-sim` through the same feature pipeline (CSV export, per-typology
//! evaluation).
//!
//! Everything is deterministic: no wall clock, no unseeded randomness.
//!
//! [`Candidate`]: corebank_screening::Candidate
//! [`Assessment`]: corebank_screening::Assessment

pub mod engine;
pub mod features;
pub mod rules;
pub mod sim;

pub use engine::{Engine, EngineConfig, EngineError, EngineStats, ScoreDetail};
pub use features::{
    FEATURE_COUNT, FEATURE_NAMES, Feature, FeatureConfig, FeatureStore, FeatureVector,
};
pub use rules::{Action, Condition, Rule, RuleSet, RulesError};
pub use sim::{TypologyReport, TypologyRow, candidate_of, evaluate_typologies, export_features};
