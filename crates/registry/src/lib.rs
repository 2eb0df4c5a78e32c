//! # corebank-registry
//!
//! The registry's directory (`corebank registry`, gRPC port 9090): which branches
//! exist, where their replicas are, which replica leads and how healthy each is,
//! and therefore where any account lives (the branch code inside its account
//! number); plus the currencies and products the bank offers.
//!
//! - [`Directory`]: the state machine. Pure and deterministic: no clock, no I/O;
//!   time arrives inside [`RegistryCommand`]s. [`Directory::apply`] answers every
//!   command with what it did ([`Applied`]) or why it refused ([`CommandError`],
//!   nothing changed). Queries: [`Directory::branch`], [`Directory::branches`],
//!   [`Directory::resolve`] (account number or ledger id → [`Route`]),
//!   [`Directory::health`]. Snapshots: [`Directory::to_snapshot_bytes`] /
//!   [`Directory::from_snapshot_bytes`] (versioned, BLAKE3-checked, invariants
//!   re-checked).
//! - [`RegistryStore`]: where the directory lives. [`MemoryStore`] (tests, one
//!   process), or [`RaftStore`]: the registry's own Raft group (openraft, the redb
//!   log of `corebank-node`, snapshots in the data directory; [`RegistryTypeConfig`]).
//! - [`start`]: a registry replica ([`RegistryConfig`] → [`RunningRegistry`]): the
//!   Registry, Identity, Cluster and RaftTransport services on one gRPC port (TLS 1.3, or plain
//!   TCP on loopback), `/health`, `/ready`, `/metrics`. `corebank registry` runs it.
//! - [`RegistryService`]: the `corebank.v1.Registry` gRPC service over any store,
//!   with every call authorised through [`Authorize`] ([`RegistryRpc::scope`]:
//!   `admin` to change the directory, `transfer` for heartbeats, `read` for the
//!   rest) and time from a [`Clock`].
//! - Identity: the directory also holds the bank's users, sessions, API keys and
//!   account owners ([`Directory::identity`], an
//!   [`IdentityState`](corebank_identity::IdentityState) of `corebank-identity`,
//!   re-exported as [`identity`]), changed by [`RegistryCommand::Identity`]
//!   through the same Raft log. [`IdentityService`] serves them as
//!   `corebank.v1.Identity` (an internal API for the gateway, `admin` scope,
//!   bincode payloads); [`RegistryClient::identity_execute`] and
//!   [`RegistryClient::identity_query`] call it, and [`identity_error`] recovers
//!   an identity refusal from the client's error.
//! - [`RegistryClient`]: several registry addresses, failover, `not_leader`
//!   redirection, and a route cache with a time to live.
//! - [`heartbeat_loop`]: the task a branch replica runs to stay healthy in the
//!   directory.
//!
//! ```
//! use corebank_account_number::{AccountNumber, BankPrefix, BranchCode};
//! use corebank_registry::{Directory, RegistryCommand, ReplicaAddress};
//!
//! let code = BranchCode::new(2)?;
//! let mut directory = Directory::new();
//! let registered = directory.apply(&RegistryCommand::RegisterBranch {
//!     code,
//!     name: "Porto".into(),
//!     region: "eu-south".into(),
//!     replicas: vec![ReplicaAddress::new(1, "10.0.2.1:8080")],
//!     at_unix_ms: 1_700_000_000_000,
//! });
//! assert!(registered.is_ok());
//!
//! let number = AccountNumber::new(BankPrefix::COREBANK, code, 1_000)?;
//! let route = directory.resolve(&number.to_string()).expect("registered");
//! assert_eq!(route.branch, code);
//! assert_eq!(route.replicas[0].address, "10.0.2.1:8080");
//! assert_eq!(route.leader, None); // until a replica says it leads
//! # Ok::<(), corebank_account_number::AccountNumberError>(())
//! ```

mod auth;
mod cache;
mod catalog;
mod client;
mod clock;
mod cluster;
mod config;
mod directory;
mod error;
pub mod errors;
mod heartbeat;
mod identity_service;
mod raft_state_machine;
mod raft_store;
mod running;
mod service;
mod snapshot;
mod store;
mod view;

/// The identity state the registry replicates (users, sessions, API keys).
pub use corebank_identity as identity;

pub use auth::{AuthGate, Authorize, RegistryRpc, auth_error, development_identity};
pub use catalog::{PRODUCTS, ProductInfo, currencies, products};
pub use client::{
    ATTEMPTS_MAX_DEFAULT, CACHE_TTL_DEFAULT, HeartbeatAck, LEARNED_ENDPOINTS_MAX,
    REGISTRY_ENDPOINTS_MAX, RegistryClient, RegistryClientConfig, identity_error,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{REGISTRY_LISTEN_DEFAULT, RegistryConfig, RegistryConfigError};
pub use directory::{
    ADDRESS_BYTES_MAX, Applied, BRANCHES_MAX, Branch, Directory, Health, HeartbeatReport, Leader,
    NAME_BYTES_MAX, NodeId, REPLICAS_MAX, RegistryCommand, RegistryResponse, Replica,
    ReplicaAddress, Route, validate_address, validate_text,
};
pub use error::{
    AddressProblem, CommandError, IDENTITY_FIELD, LookupError, SnapshotError, TextProblem,
};
pub use heartbeat::{
    HEARTBEAT_INTERVAL_MIN, HeartbeatStats, HeartbeatTarget, ReplicaReport, heartbeat_loop,
};
pub use identity_service::{
    IDENTITY_PAYLOAD_BYTES_MAX, IDENTITY_REQUEST_BYTES_MAX, IdentityService,
    decode as decode_identity_payload, encode as encode_identity_payload,
};
pub use raft_state_machine::StateMachineError;
pub use raft_store::{
    REGISTRY_DATA_VERSION, RaftStore, RaftStoreConfig, RaftStoreError, RegistryRaft,
    RegistryTypeConfig,
};
pub use running::{RegistryStartError, RunningRegistry, start};
pub use service::{
    HEARTBEAT_WINDOW_MS_DEFAULT, LIST_BRANCHES_LIMIT_MAX, REQUEST_BYTES_MAX, RegistryService,
    ServiceConfig,
};
pub use snapshot::{SNAPSHOT_BYTES_MAX, SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
pub use store::{MemoryStore, RegistryStore, StoreError};
pub use view::{AccountRoute, BranchView, InvalidView, ReplicaView, product_to_proto};

#[cfg(test)]
mod identity_tests;
#[cfg(test)]
mod raft_tests;
#[cfg(test)]
mod tests;
