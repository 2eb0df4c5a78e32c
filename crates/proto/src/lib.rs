//! # corebank-proto
//!
//! The gRPC API of a corebank branch node: the protobuf definitions in `proto/`
//! (package `corebank.v1`), the Rust code generated from them (messages, tonic
//! clients and servers, in [`v1`]), the conversions between those messages and the
//! ledger core's types ([`convert`]), and the error model ([`error`]).
//!
//! The API reference for users is `docs/api.md` at the repository root; the
//! `.proto` files are its field-by-field documentation.
//!
//! | service | what |
//! |---|---|
//! | [`v1::ledger_server::Ledger`] | the ledger core's batch operations, in u128 ids and minor units |
//! | [`v1::banking_server::Banking`] | banking operations in account numbers and decimal amounts |
//! | [`v1::events_server::Events`] | the stream of committed events |
//! | [`v1::registry_server::Registry`] | the registry's directory: branches, replicas and their health, account routing, currencies, products |
//!
//! ```
//! use corebank_proto::v1;
//!
//! let transfer = corebank_ledger::Transfer {
//!     id: 7, debit_account_id: 1, credit_account_id: 2, amount: 5_000,
//!     ledger: 978, code: 1, ..Default::default()
//! };
//! let message = v1::Transfer::from(transfer);
//! assert_eq!(message.amount, Some(v1::U128 { lo: 5_000, hi: 0 }));
//! assert_eq!(corebank_ledger::Transfer::try_from(&message), Ok(transfer));
//! ```

/// The generated protobuf messages and gRPC services of package `corebank.v1`.
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    missing_debug_implementations,
    missing_docs,
    unreachable_pub,
    rustdoc::all
)]
pub mod v1 {
    tonic::include_proto!("corebank.v1");
}

pub mod convert;
pub mod error;

pub use convert::{ConvertError, ConvertErrorKind};
pub use error::{ApiError, ErrorCode};

/// The most events (or ids) in one request: the ledger's batch limit.
pub const BATCH_EVENTS_MAX: usize = corebank_ledger::BATCH_EVENTS_MAX;

/// The largest message a node accepts (4 MiB, tonic's default). A request of
/// [`BATCH_EVENTS_MAX`] events fits whatever their contents (at most about 1.4 MB).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The encoded `FileDescriptorSet` of every `.proto` file of the API, with source
/// comments, for gRPC server reflection (e.g. `tonic-reflection`), so that tools
/// such as `grpcurl` work without the `.proto` files.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/corebank_descriptor.bin"));

/// The fully qualified names of the three services.
pub const SERVICE_NAMES: [&str; 3] = [
    "corebank.v1.Ledger",
    "corebank.v1.Banking",
    "corebank.v1.Events",
];

#[cfg(test)]
mod tests;
