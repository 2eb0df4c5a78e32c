//! # corebank-client
//!
//! A Rust client for a corebank branch node (the gRPC API of `docs/api.md`):
//!
//! - **Connection**: TLS 1.3 (rustls, ALPN `h2`) with the CA to trust and
//!   optionally a client certificate, or plain HTTP/2 for a node started with
//!   `--insecure`; an API key sent as `authorization: Bearer <key>` on every call.
//! - **Typed calls**: the Ledger service in the ledger core's types
//!   ([`corebank_ledger::Transfer`], ...), the Banking service with decimal
//!   amounts and idempotency keys, and the Events stream.
//! - **Automatic batching**: [`Client::create_transfer`] and
//!   [`Client::create_account`] merge the concurrent calls of many tasks into one
//!   request of up to 8,190 events, and hand each caller its own result.
//! - **Safe retries**: only what cannot apply anything twice, with exponential
//!   backoff and jitter (see below).
//! - **Timeouts**: per attempt (sent as `grpc-timeout` and enforced locally), per
//!   call (retries included), and for connecting.
//! - **Typed errors**: [`ClientError`], with a stable [`code`](ClientError::code).
//!
//! ```no_run
//! use corebank_client::{Client, ClientConfig, TlsSettings};
//! use corebank_ledger::Transfer;
//!
//! # async fn example() -> Result<(), corebank_client::ClientError> {
//! let client = Client::connect(
//!     ClientConfig::new("https://branch-0001.bank.example:8080")
//!         .with_tls(TlsSettings::new("ca.pem"))
//!         .with_api_key("cbk_3f9a0c1b2d4e_..."),
//! )
//! .await?;
//! let transfer = Transfer {
//!     id: 1001, debit_account_id: 10000001000, credit_account_id: 10000001001,
//!     amount: 5_000, ledger: 978, code: 10, ..Transfer::default()
//! };
//! match client.create_transfer(transfer).await? {
//!     None => println!("applied"),
//!     Some(result) => println!("refused: {result}"),
//! }
//! let receipt = client.deposit("XC68CORE00010000001000", "250.00", Some("6f1c1f7e")).await?;
//! println!("deposited at {}", receipt.timestamp_ns);
//! # Ok(()) }
//! ```
//!
//! ## Retries
//!
//! A failed attempt is retried (up to [`RetryPolicy::max_attempts`], within
//! [`ClientConfig::total_timeout`]) when:
//!
//! - the node said it **did nothing**: `busy_retry`, `unavailable`, or
//!   `not_leader` while no leader is known: any call. A branch without a leader
//!   is electing one: those answers are waited out (with several replicas, the
//!   next attempt goes to another one) and use up time, not attempts;
//! - the outcome is **unknown** (a transport error, a timeout): only calls that
//!   cannot apply anything twice: reads, ledger creates (the client chooses the
//!   ids: an event already applied answers `exists`), banking calls that move
//!   money (they always carry an idempotency key: the caller's, or a fresh one
//!   reused by every retry of the call), hold captures and releases. Not
//!   `OpenAccount`.
//!
//! Never retried: `invalid_argument` and every other refusal, `unauthenticated`,
//! `permission_denied`, `internal`, `not_leader` naming a leader.
//!
//! **`exists` after a retry.** When an earlier attempt of a create call had an
//! unknown outcome, it may have been applied, and then its events answer `exists`
//! on the retry. The client reports those as created (it is the first attempt's
//! outcome): `exists` is left out of the results, and so is a linked chain whose
//! first event answers `exists` and the others `linked_event_failed`. An event
//! that failed transiently (e.g. `exceeds_credits`) in that first attempt answers
//! `id_already_failed` on the retry: still a failure, and a new id is needed.
//! Without an unknown outcome before, `exists` is reported as it is.

mod banking;
mod batch;
mod client;
mod config;
mod connect;
mod error;
mod events;
mod retry;
mod route;

pub use batch::BatchStats;
pub use client::{AuthChannel, Client, ClientStats, connect_channel};
pub use config::{BatchPolicy, ClientConfig, RetryPolicy, TlsSettings};
pub use connect::Auth;
pub use error::ClientError;
pub use events::EventStream;
pub use retry::new_idempotency_key;
pub use route::RoutedChannel;

/// Re-exported: the API's messages and error model, and the ledger's types.
pub use corebank_ledger as ledger;
pub use corebank_proto::{ApiError, ErrorCode, v1};
