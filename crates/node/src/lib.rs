//! # corebank-node
//!
//! One replica of a branch: the Raft log and snapshots in the data directory, the
//! ledger core as the replicated state machine, and the write pipeline in front of it
//! (bounded queue → batcher → one log entry per batch → apply → replies). Replies are
//! sent only after the entry holding the request is durably committed and applied.
//!
//! Storage layout and formats: docs/node.md.

pub mod command;
pub mod group;
mod log_store;
mod network;
mod node;
pub mod pipeline;
pub mod risk_state;
pub mod screening;
mod state_machine;
pub mod types;

pub use command::{Command, Decision, Request, RequestOutcome, RiskAction, ScreenedTransfers};
pub use log_store::{LogStore, LogStoreError, LogTypeConfig};
pub use node::{ClusterView, Member, MembershipError, Node, NodeConfig, NodeError, ReadError};
pub use pipeline::SubmitError;
pub use risk_state::{
    FrozenAccount, HeldTransfer, RiskEvent, RiskEventKind, RiskRefusal, RiskState,
};
pub use screening::{FailurePolicy, Screening, ScreeningCounters};
pub use state_machine::StateMachineError;
pub use types::TypeConfig;

/// The Raft library, for the network between replicas (implemented over gRPC by the
/// server crate).
pub use openraft;
