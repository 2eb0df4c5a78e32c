//! corebank-risk: tabular datasets from labelled CSV, the fraud models trained on them,
//! the evaluation metrics of fraud models (AUPRC, ROC-AUC, recall at a false-positive
//! rate, ...), and the contract between a branch's pipeline and its screener.
//!
//! Pure library: no I/O except reading the files given to it.

pub mod dataset;
pub mod decision;
pub mod gbdt;
pub mod metrics;

pub use dataset::{Column, Dataset, DatasetError, split_stratified};
pub use decision::{
    Assessment, Candidate, Channel, GeoPoint, ReasonCode, ScreenError, Screener, TransferContext,
    Verdict,
};
pub use gbdt::{Model, ModelError, Params};
pub use metrics::{Confusion, Metrics, evaluate};
