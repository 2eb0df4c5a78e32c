//! corebank-risk: tabular datasets from labelled CSV, the evaluation metrics of fraud
//! models (AUPRC, ROC-AUC, recall at a false-positive rate, ...), and the two models
//! behind one scoring interface: gradient-boosted trees (supervised, [`Model`]) and an
//! anomaly model (unsupervised, [`AnomalyModel`]), both stored in one versioned file
//! format ([`file`]) and both explaining their scores ([`Scorer`]).
//!
//! Pure library: no I/O except reading and writing the files given to it.

pub mod anomaly;
pub mod dataset;
pub mod explain;
pub mod file;
pub mod gbdt;
pub mod metrics;
mod rng;

pub use anomaly::{AnomalyModel, AnomalyParams};
pub use dataset::{Column, Dataset, DatasetError, split_stratified};
pub use explain::Scorer;
pub use file::{FORMAT_VERSION, Header, ModelKind, TrainParams, TrainingInfo};
pub use gbdt::{Model, ModelError, Params};
pub use metrics::{Confusion, Metrics, evaluate};

use std::path::Path;

/// Either kind of model, as read from a model file.
#[derive(Debug, Clone, PartialEq)]
pub enum RiskModel {
    /// Gradient-boosted trees.
    Supervised(Model),
    /// Anomaly model.
    Unsupervised(AnomalyModel),
}

impl RiskModel {
    /// The kind of model.
    pub fn kind(&self) -> ModelKind {
        match self {
            RiskModel::Supervised(_) => ModelKind::Supervised,
            RiskModel::Unsupervised(_) => ModelKind::Unsupervised,
        }
    }

    /// Feature names in scoring order.
    pub fn features(&self) -> &[String] {
        match self {
            RiskModel::Supervised(m) => &m.features,
            RiskModel::Unsupervised(m) => &m.features,
        }
    }

    /// Per feature, the categories of a categorical column (code = index).
    pub fn categories(&self) -> &[Option<Vec<String>>] {
        match self {
            RiskModel::Supervised(m) => &m.categories,
            RiskModel::Unsupervised(m) => &m.categories,
        }
    }

    /// Sets the categories (from the training data's columns).
    pub fn set_categories(&mut self, categories: Vec<Option<Vec<String>>>) {
        match self {
            RiskModel::Supervised(m) => m.categories = categories,
            RiskModel::Unsupervised(m) => m.categories = categories,
        }
    }

    /// Training figures.
    pub fn info(&self) -> &TrainingInfo {
        match self {
            RiskModel::Supervised(m) => &m.info,
            RiskModel::Unsupervised(m) => &m.info,
        }
    }

    /// Training figures, to record what the caller measured.
    pub fn info_mut(&mut self) -> &mut TrainingInfo {
        match self {
            RiskModel::Supervised(m) => &mut m.info,
            RiskModel::Unsupervised(m) => &mut m.info,
        }
    }

    /// The header this model's file carries.
    pub fn header(&self) -> Header {
        match self {
            RiskModel::Supervised(m) => m.header(),
            RiskModel::Unsupervised(m) => m.header(),
        }
    }

    /// Encodes as a model file.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            RiskModel::Supervised(m) => m.to_bytes(),
            RiskModel::Unsupervised(m) => m.to_bytes(),
        }
    }

    /// Decodes a model file of either kind: bad magic, incompatible version,
    /// truncation, checksum mismatch and undecodable content are distinct errors.
    pub fn from_bytes(bytes: &[u8]) -> Result<RiskModel, ModelError> {
        let (header, body) = file::decode(bytes)?;
        match header.kind {
            ModelKind::Supervised => {
                Model::from_parts(header, file::decode_body(body)?).map(RiskModel::Supervised)
            }
            ModelKind::Unsupervised => AnomalyModel::from_parts(header, file::decode_body(body)?)
                .map(RiskModel::Unsupervised),
        }
    }

    /// Writes the model file.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        file::write(path, &self.to_bytes())
    }

    /// Reads a model file of either kind.
    pub fn load(path: &Path) -> Result<RiskModel, ModelError> {
        RiskModel::from_bytes(&file::read(path)?)
    }
}

impl Scorer for Model {
    fn score(&self, row: &[f64]) -> f64 {
        Model::score(self, row)
    }
    fn score_explained_into(&self, row: &[f64], k: usize, out: &mut Vec<(usize, f64)>) -> f64 {
        Model::score_explained_into(self, row, k, out)
    }
}

impl Scorer for AnomalyModel {
    fn score(&self, row: &[f64]) -> f64 {
        AnomalyModel::score(self, row)
    }
    fn score_explained_into(&self, row: &[f64], k: usize, out: &mut Vec<(usize, f64)>) -> f64 {
        AnomalyModel::score_explained_into(self, row, k, out)
    }
}

impl Scorer for RiskModel {
    fn score(&self, row: &[f64]) -> f64 {
        match self {
            RiskModel::Supervised(m) => m.score(row),
            RiskModel::Unsupervised(m) => m.score(row),
        }
    }
    fn score_explained_into(&self, row: &[f64], k: usize, out: &mut Vec<(usize, f64)>) -> f64 {
        match self {
            RiskModel::Supervised(m) => m.score_explained_into(row, k, out),
            RiskModel::Unsupervised(m) => m.score_explained_into(row, k, out),
        }
    }
}
