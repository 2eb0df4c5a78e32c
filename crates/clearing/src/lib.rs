//! # corebank-clearing
//!
//! Transfers between customers of different branches, as a saga with a reservation,
//! and the reconciliation of the branches' clearing accounts. A library: it talks to
//! branches through a [`BranchPort`] (in memory: [`MemoryBranch`]; in the server: a
//! gRPC client) and keeps no state of its own. The ledgers are the state.
//!
//! ## The protocol
//!
//! Transfer `X` of `m` minor units of currency `c` from customer `a` at branch `A` to
//! customer `b` at branch `B` (`A ≠ B`; a transfer inside one branch is not a saga).
//! `clearing_A(B)` is A's clearing account for B in `c`
//! ([`corebank_banking::clearing_account_id`]).
//!
//! | step | where | event | id |
//! |---|---|---|---|
//! | 1 reserve | A | pending `a → clearing_A(B)`, timeout 0, code `CROSS_BRANCH_OUT`, `user_data_128 = b` | `X` |
//! | 2 deliver | B | posted `clearing_B(A) → b`, code `CROSS_BRANCH_IN`, `user_data_128 = a` | `X` (ids are per ledger) |
//! | 3 settle | A | post the reservation if B delivered, void it if B refused | [`post_id`]`(X, n)` / [`void_id`]`(X)` |
//!
//! Both legs carry [`SAGA_PROTOCOL_V1`] in `user_data_64` and the other branch's code
//! in `user_data_32`. Every event is derived from the [`Saga`] alone, and the saga can
//! be read back from its reservation ([`Saga::from_reservation`]): **A's ledger is the
//! durable record of the saga**, and [`resume`] finds every unfinished one there
//! (pending `CROSS_BRANCH_OUT` transfers neither posted nor voided) with no other store.
//!
//! After a posted saga: `a` is debited `m`; `clearing_A(B)` is credited `m` (A owes B);
//! `clearing_B(A)` is debited `m` (B is owed by A); `b` is credited `m`. Each ledger
//! balances on its own, and the two clearing accounts of a pair mirror each other,
//! which is what [`reconcile`] checks.
//!
//! ## Why no money is made or lost
//!
//! **B's ledger decides the saga, once.** The ledger applies an id at most once and
//! answers a resubmission with `exists`; a transient failure (account missing or
//! closed, overflow) burns the id so that every later event with it gets
//! `id_already_failed`; every other failure is a pure function of the event and of
//! account fields that never change (ledger, ids). So B's first answer for `X` is its
//! answer forever, however many copies of step 2 arrive, in whatever order.
//!
//! **A follows B, never a guess.** Step 3 voids only on a ledger answer from B that is
//! not `ok`/`exists` ([`Delivery::Refused`]). A transport error, a timeout, a busy or
//! not-leader reply is [`PortError::Unavailable`] (outcome unknown: ask again later);
//! a refusal by anything in front of B's ledger is [`PortError::Rejected`]; neither
//! ever voids. The reservation has no timeout, so no clock can void it either.
//!
//! **Post and void exclude each other** in A's ledger (a pending transfer is posted or
//! voided once), and both are idempotent (`exists`, `pending_transfer_already_posted`
//! / `_voided` count as done).
//!
//! ## Failure analysis
//!
//! | the coordinator stops or a call fails... | state | what finishes it |
//! |---|---|---|
//! | during step 1, outcome unknown | maybe reserved | repeat [`start`] (`exists` continues); if never applied, nothing happened |
//! | after step 1 | reserved at A | [`resume`] at A sends step 2 |
//! | during step 2 (request or reply lost) | maybe delivered | [`resume`] resends: `exists` = delivered |
//! | after step 2 | delivered, not posted | [`resume`] resends step 2 (`exists`), then posts |
//! | during step 3 | maybe posted/voided | [`resume`] or [`start`] repeats it: `exists` / `already_*` |
//! | B unreachable for long | reserved at A (the customer sees funds held) | [`resume`] later; reconciliation reports `saga_stuck` past the timeout; optionally a fence (below) |
//! | B refuses in front of its ledger (risk, auth) | reserved at A | stays open until B's ledger answers, or a fence |
//! | `a` closed between steps 1 and 3 | delivered, post refused (`debit_account_already_closed`, which burns post id `n`) | [`SagaOutcome::Stuck`]; once reopened, [`resume`] posts with id `n + 1` (up to [`POST_ATTEMPTS_MAX`]) |
//! | two coordinators at once | identical events | the ledgers deduplicate; post/void exclusive |
//!
//! A customer who retries with the same id gets the same saga: [`start`] on a saga
//! already finished answers its final outcome without sending step 2 again, and
//! [`saga_status`] reads it from A alone.
//!
//! ## The known window: a delayed duplicate of step 2
//!
//! Copy 1 of step 2 is delayed in the network; the coordinator times out (unknown),
//! sends copy 2, B refuses it (say `b` was just closed) and A voids. Then copy 1 reaches
//! B. A design that decided refusals outside B's ledger, or voided on a timeout, would
//! now credit `b` after `a` was refunded: money made.
//!
//! Here it cannot happen. Copy 2's refusal came from B's ledger: either transient, which
//! burnt `X` at B, so copy 1 gets `id_already_failed`; or a pure validation failure,
//! which copy 1 (the same event, derived from the same reservation) meets again. Had
//! copy 1 arrived first, it would have been applied and copy 2 answered `exists`, so A
//! posts and never voids. No order of arrival lets B apply `X` after A voided it. This
//! rests on four rules, kept by this crate and owed by its ports and operators:
//!
//! 1. only B's ledger answers refuse (a check in front of the ledger that refuses must
//!    answer [`PortError::Rejected`], or burn `X` in the ledger before answering);
//! 2. every copy of step 2 is the same event (derived from the reservation);
//! 3. nobody voids a reservation outside the protocol: to give up on a destination, use
//!    a **fence** ([`fence`], or [`ResumeOptions::fence_after_ns`]): an event under `X`
//!    at B that can only fail and burns `X` there ([`Saga::fence`]), so B's ledger
//!    decides now, delivered if the delivery got there first and refused otherwise;
//! 4. `X` is not used for anything else at B (it is derived from A's code and the
//!    customer's key: a collision is a hash collision).
//!
//! Should a rule be broken anyway, [`reconcile`] finds the result: the pair's clearing
//! accounts no longer mirror (`clearing_mirror_mismatch`) and the saga is named
//! (`delivered_but_voided`, `delivery_without_reservation`, `posted_without_delivery`).
//!
//! ## Reconciliation
//!
//! [`gather`] reads every branch (clearing accounts, reservations with their state,
//! deliveries, per-currency totals); [`reconcile`] is a pure function of that which
//! checks (a) that each pair of clearing accounts mirrors the other, counting exactly
//! the open sagas already delivered, (b) that no saga is open longer than a timeout,
//! (c) that per currency posted debits equal posted credits across the bank, plus the
//! saga-by-saga checks above, into a [`ReconciliationReport`] (serde, and a table for
//! people).
//!
//! ## Example
//!
//! ```
//! use corebank_account_number::{BranchCode, account_id};
//! use corebank_banking::Branch;
//! use corebank_clearing::{Clock, MemoryBranch, Saga, SagaOutcome, saga_status, start};
//! use corebank_ledger::{Account, AccountFlags};
//! use corebank_money::Currency;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let (one, two) = (BranchCode::new(1).unwrap(), BranchCode::new(2).unwrap());
//! let clock = Clock::new(1);
//! let (a, b) = (MemoryBranch::new(one, clock.clone()), MemoryBranch::new(two, clock));
//! for (port, code) in [(&a, one), (&b, two)] {
//!     port.create_accounts(&Branch::new(code).internal_accounts());
//!     port.create_accounts(&Branch::new(code).clearing_accounts(&[one, two]));
//! }
//! let customer = |id| Account {
//!     id,
//!     ledger: Currency::EUR.numeric,
//!     code: 10,
//!     flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
//!     ..Account::default()
//! };
//! let (alice, bob) = (account_id(one, 1_000).unwrap(), account_id(two, 1_000).unwrap());
//! a.create_accounts(&[customer(alice)]);
//! b.create_accounts(&[customer(bob)]);
//! a.apply(&[Branch::new(one).deposit(1, &customer(alice), 10_000)]);
//!
//! let saga = Saga::new(42, alice, bob, 2_500, Currency::EUR).unwrap();
//! assert_eq!(start(&a, &b, &saga).await, SagaOutcome::Posted);
//! assert_eq!(saga_status(&a, 42).await.unwrap().as_str(), "posted");
//! assert_eq!(b.with_ledger(|l| l.account(bob)).unwrap().credits_posted, 2_500);
//! # });
//! ```
//!
//! ## Bounds
//!
//! Requests hold at most [`corebank_ledger::BATCH_EVENTS_MAX`] events; scans read at
//! most `records_max` records ([`ResumeOptions`], [`GatherOptions`]) and say when they
//! stopped there; a post is tried under at most [`POST_ATTEMPTS_MAX`] ids.

mod driver;
mod memory;
mod port;
mod reconcile;
mod saga;
mod scan;

pub use driver::{
    Delivery, Reservation, ResumeOptions, ResumeReport, SagaOutcome, SagaStatus, deliver, fence,
    reserve, resume, saga_status, settle, start,
};
pub use memory::{Clock, Fault, MemoryBranch};
pub use port::{BranchPort, PortError};
pub use reconcile::{
    BranchSnapshot, Break, BreakCode, CurrencyCheck, FlowCheck, GatherOptions, OpenSaga,
    ReconcileConfig, ReconciliationInput, ReconciliationReport, gather, reconcile,
};
pub use saga::{POST_ATTEMPTS_MAX, SAGA_PROTOCOL_V1, Saga, SagaError, post_id, void_id};
pub use scan::{ReservationRecord, SagaState};
