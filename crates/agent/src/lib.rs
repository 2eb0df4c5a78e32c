//! corebank-agent: the risk agent's logic (`corebank agent`).
//!
//! - [`graph`]: cross-branch features and mule-ring detection over the committed
//!   transfers of every branch (pure: no I/O, no clock, bounded memory);
//! - [`alerts`]: the bounded alert store;
//! - [`registry`]: the model registry directory (`vNNNN.cbr` + `vNNNN.json`);
//! - [`training`]: a candidate model trained on synthetic labelled traffic and
//!   evaluated on held-out traffic;
//! - [`service`]: the running agent (branch followers, retraining, HTTP API).

pub mod alerts;
pub mod error;
pub mod graph;
pub mod registry;
pub mod service;
pub mod training;

pub use alerts::{Alert, AlertKind, AlertStore, NewAlert, Severity};
pub use error::AgentError;
pub use graph::{CommittedTransfer, Detection, DetectorConfig, Movement, MuleDetector};
pub use registry::{Figures, ModelRegistry, VersionEntry, VersionRecord};
pub use service::{AgentConfig, BranchTarget, RunningAgent};
pub use training::{TrainConfig, TrainedCandidate};
