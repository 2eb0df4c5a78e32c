//! The errors of the directory: refused commands ([`CommandError`]), failed lookups
//! ([`LookupError`]), refused snapshots ([`SnapshotError`]).
//!
//! Every variant has a stable snake_case `code()` (the `reason` of the API error)
//! and a `Display` sentence for people. [`CommandError`] travels in the Raft log's
//! responses, hence serde.

use corebank_account_number::{AccountNumberError, BranchCode};
use serde::{Deserialize, Serialize};

use crate::directory::NodeId;

/// What is wrong with a name or a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TextProblem {
    /// Nothing at all.
    Empty,
    /// Longer than [`NAME_BYTES_MAX`](crate::NAME_BYTES_MAX) bytes.
    TooLong {
        /// Its length.
        bytes: usize,
    },
    /// A control character (newline, tab, ...).
    ControlCharacter,
    /// Spaces at the start or the end.
    SurroundingSpace,
}

impl std::fmt::Display for TextProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("it is empty"),
            Self::TooLong { bytes } => write!(
                f,
                "it is {bytes} bytes long, the limit is {}",
                crate::NAME_BYTES_MAX
            ),
            Self::ControlCharacter => f.write_str("it contains a control character"),
            Self::SurroundingSpace => f.write_str("it starts or ends with a space"),
        }
    }
}

/// What is wrong with a replica address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AddressProblem {
    /// Nothing at all.
    Empty,
    /// Longer than [`ADDRESS_BYTES_MAX`](crate::ADDRESS_BYTES_MAX) bytes.
    TooLong {
        /// Its length.
        bytes: usize,
    },
    /// A space, a control character or a character outside ASCII.
    BadCharacter,
    /// A scheme other than `http://` or `https://`, or a path after the port.
    BadScheme,
    /// No host before the port.
    NoHost,
    /// No `:port` at the end, or a port that is not 1 to 65535.
    BadPort,
}

impl std::fmt::Display for AddressProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("it is empty"),
            Self::TooLong { bytes } => write!(
                f,
                "it is {bytes} bytes long, the limit is {}",
                crate::ADDRESS_BYTES_MAX
            ),
            Self::BadCharacter => {
                f.write_str("it contains a space, a control character or a non-ASCII character")
            }
            Self::BadScheme => f.write_str(
                "it must be host:port, optionally after http:// or https://, with no path",
            ),
            Self::NoHost => f.write_str("it names no host"),
            Self::BadPort => f.write_str("it must end with :port, a port from 1 to 65535"),
        }
    }
}

/// Why the directory refused a command. A refused command changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The branch's name is unusable.
    #[error("the branch name is invalid: {problem}")]
    InvalidName {
        /// What is wrong with it.
        problem: TextProblem,
    },
    /// The branch's region is unusable.
    #[error("the region is invalid: {problem}")]
    InvalidRegion {
        /// What is wrong with it.
        problem: TextProblem,
    },
    /// A replica address is unusable.
    #[error("replica address {address:?} is invalid: {problem}")]
    InvalidAddress {
        /// The address (at most its first 64 characters).
        address: String,
        /// What is wrong with it.
        problem: AddressProblem,
    },
    /// A branch registered without replicas.
    #[error("a branch has at least one replica")]
    NoReplicas,
    /// More replicas than a branch may have.
    #[error(
        "{count} replicas were given, a branch has at most {}",
        crate::REPLICAS_MAX
    )]
    TooManyReplicas {
        /// How many were given.
        count: usize,
    },
    /// The same node id twice in one registration.
    #[error("node id {node_id} is given twice")]
    DuplicateNodeId {
        /// The repeated node id.
        node_id: NodeId,
    },
    /// The same address twice in one registration.
    #[error("address {address:?} is given twice")]
    DuplicateAddress {
        /// The repeated address.
        address: String,
    },
    /// An update that names nothing to change.
    #[error("the update changes nothing: give a new name, a new region or both")]
    NothingToUpdate,
    /// The branch code is already registered with other settings.
    #[error(
        "branch {code:04} is already registered with another name, region or replicas; \
         change it with an update or by adding and removing replicas"
    )]
    BranchExists {
        /// The branch code.
        code: u16,
    },
    /// No branch has this code.
    #[error("branch {code:04} is not registered")]
    BranchNotFound {
        /// The branch code.
        code: u16,
    },
    /// The branch has no replica with this node id.
    #[error("branch {code:04} has no replica with node id {node_id}")]
    ReplicaNotFound {
        /// The branch code.
        code: u16,
        /// The node id looked for.
        node_id: NodeId,
    },
    /// The node id belongs to another replica of the branch (at another address).
    #[error("node id {node_id} of branch {code:04} is already the replica at {address:?}")]
    NodeIdTaken {
        /// The branch code.
        code: u16,
        /// The node id.
        node_id: NodeId,
        /// The address registered for it.
        address: String,
    },
    /// The address already belongs to a replica (of this or another branch).
    #[error("address {address:?} already belongs to replica {node_id} of branch {code:04}")]
    AddressTaken {
        /// The address.
        address: String,
        /// The branch of the replica that has it.
        code: u16,
        /// The node id of the replica that has it.
        node_id: NodeId,
    },
    /// A heartbeat from an address other than the replica's registered one.
    #[error(
        "replica {node_id} of branch {code:04} is registered at {registered:?}, \
         not at {given:?}; an operator changes addresses"
    )]
    ReplicaAddressMismatch {
        /// The branch code.
        code: u16,
        /// The node id.
        node_id: NodeId,
        /// The registered address.
        registered: String,
        /// The address given.
        given: String,
    },
    /// Removing the last replica of a branch.
    #[error("replica {node_id} is the last replica of branch {code:04}; a branch keeps one")]
    LastReplica {
        /// The branch code.
        code: u16,
        /// The node id.
        node_id: NodeId,
    },
    /// Adding a replica to a branch that has as many as it may.
    #[error(
        "branch {code:04} already has {} replicas, the most it may have",
        crate::REPLICAS_MAX
    )]
    ReplicasFull {
        /// The branch code.
        code: u16,
    },
    /// The identity state refused a command (users, sessions, API keys); the code
    /// is the identity error's own (`user_not_found`, `session_revoked`, ...).
    #[error(transparent)]
    Identity(corebank_identity::IdentityError),
}

/// The `field` of every identity refusal as an API error: it marks the error as
/// the identity state's (see [`identity_error`](crate::identity_error)).
pub const IDENTITY_FIELD: &str = "identity";

impl CommandError {
    /// Every code of the directory's own refusals (identity refusals have the codes
    /// of [`IdentityError::CODES`](corebank_identity::IdentityError::CODES)), for
    /// tests that want a scenario per code.
    pub const CODES: &'static [&'static str] = &[
        "invalid_name",
        "invalid_region",
        "invalid_address",
        "no_replicas",
        "too_many_replicas",
        "duplicate_node_id",
        "duplicate_address",
        "nothing_to_update",
        "branch_exists",
        "branch_not_found",
        "replica_not_found",
        "node_id_taken",
        "address_taken",
        "replica_address_mismatch",
        "last_replica",
        "replicas_full",
    ];

    /// The stable snake_case code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::InvalidName { .. } => "invalid_name",
            Self::InvalidRegion { .. } => "invalid_region",
            Self::InvalidAddress { .. } => "invalid_address",
            Self::NoReplicas => "no_replicas",
            Self::TooManyReplicas { .. } => "too_many_replicas",
            Self::DuplicateNodeId { .. } => "duplicate_node_id",
            Self::DuplicateAddress { .. } => "duplicate_address",
            Self::NothingToUpdate => "nothing_to_update",
            Self::BranchExists { .. } => "branch_exists",
            Self::BranchNotFound { .. } => "branch_not_found",
            Self::ReplicaNotFound { .. } => "replica_not_found",
            Self::NodeIdTaken { .. } => "node_id_taken",
            Self::AddressTaken { .. } => "address_taken",
            Self::ReplicaAddressMismatch { .. } => "replica_address_mismatch",
            Self::LastReplica { .. } => "last_replica",
            Self::ReplicasFull { .. } => "replicas_full",
            Self::Identity(error) => error.code(),
        }
    }

    /// The request field at fault, when there is one.
    pub const fn field(&self) -> &'static str {
        match self {
            Self::InvalidName { .. } => "name",
            Self::InvalidRegion { .. } => "region",
            Self::InvalidAddress { .. }
            | Self::DuplicateAddress { .. }
            | Self::AddressTaken { .. }
            | Self::ReplicaAddressMismatch { .. } => "address",
            Self::NoReplicas | Self::TooManyReplicas { .. } => "replicas",
            Self::DuplicateNodeId { .. }
            | Self::NodeIdTaken { .. }
            | Self::ReplicaNotFound { .. }
            | Self::LastReplica { .. } => "node_id",
            Self::BranchExists { .. } | Self::BranchNotFound { .. } | Self::ReplicasFull { .. } => {
                "branch"
            }
            Self::NothingToUpdate => "",
            Self::Identity(_) => IDENTITY_FIELD,
        }
    }
}

/// Why a lookup found nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// The account number or ledger account id is malformed (its
    /// [`code`](AccountNumberError::code) says how).
    #[error(transparent)]
    InvalidAccountNumber(#[from] AccountNumberError),
    /// No branch has this code.
    #[error("branch {code} is not registered")]
    BranchNotFound {
        /// The branch code.
        code: BranchCode,
    },
}

impl LookupError {
    /// The stable snake_case code: the account-number code (`bad_check_digits`,
    /// `account_id_zero`, ...) or `branch_not_found`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::InvalidAccountNumber(error) => error.code(),
            Self::BranchNotFound { .. } => "branch_not_found",
        }
    }
}

/// Why a snapshot was refused. A refused snapshot is never installed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Fewer bytes than the header.
    #[error("the snapshot is {bytes} bytes long, shorter than its {header}-byte header")]
    TooShort {
        /// Its length.
        bytes: usize,
        /// The header's length.
        header: usize,
    },
    /// The first bytes are not the registry snapshot's magic.
    #[error("the bytes are not a registry snapshot (wrong magic)")]
    BadMagic,
    /// A format version this code does not read.
    #[error("snapshot format version {found} is not supported (this version reads {supported})")]
    UnsupportedVersion {
        /// The version found.
        found: u32,
        /// The version supported.
        supported: u32,
    },
    /// The payload is larger than [`SNAPSHOT_BYTES_MAX`](crate::SNAPSHOT_BYTES_MAX).
    #[error(
        "the snapshot payload is {bytes} bytes, the limit is {}",
        crate::SNAPSHOT_BYTES_MAX
    )]
    TooLarge {
        /// The payload's length.
        bytes: u64,
    },
    /// The header's length does not match the bytes that follow it.
    #[error("the header announces {declared} payload bytes but {actual} follow")]
    LengthMismatch {
        /// The length in the header.
        declared: u64,
        /// The bytes present.
        actual: usize,
    },
    /// The BLAKE3 checksum of the payload does not match the header: a torn or
    /// damaged snapshot.
    #[error("the snapshot's BLAKE3 checksum does not match its contents: it is damaged")]
    ChecksumMismatch,
    /// The payload does not decode.
    #[error("the snapshot payload does not decode: {message}")]
    Decode {
        /// The decoder's message.
        message: String,
    },
    /// The directory could not be encoded.
    #[error("the directory could not be encoded: {message}")]
    Encode {
        /// The encoder's message.
        message: String,
    },
    /// The payload decodes into a directory that breaks an invariant.
    #[error("the snapshot holds an impossible directory: {message}")]
    Invariant {
        /// The invariant broken.
        message: String,
    },
}

impl SnapshotError {
    /// The stable snake_case code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "too_short",
            Self::BadMagic => "bad_magic",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::TooLarge { .. } => "too_large",
            Self::LengthMismatch { .. } => "length_mismatch",
            Self::ChecksumMismatch => "checksum_mismatch",
            Self::Decode { .. } => "decode",
            Self::Encode { .. } => "encode",
            Self::Invariant { .. } => "invariant",
        }
    }
}
