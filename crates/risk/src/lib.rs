//! corebank-risk: tabular datasets from labelled CSV and the evaluation metrics of
//! fraud models (AUPRC, ROC-AUC, recall at a false-positive rate, ...).
//!
//! Pure library: no I/O except reading the files given to it.

pub mod dataset;
pub mod gbdt;
pub mod metrics;

pub use dataset::{Column, Dataset, DatasetError, split_stratified};
pub use gbdt::{Model, ModelError, Params};
pub use metrics::{Confusion, Metrics, evaluate};
