//! Model-based property tests: random batches go to the real ledger and to the
//! reference model in `tests/model/` (written from docs/ledger.md alone), and
//! everything observable must agree: results, every account and transfer record,
//! pending statuses, the reads, the stats. After every batch the ledger's own state
//! must also satisfy the spec's invariants, computed here from its records.
//!
//! Inputs are generated abstractly (e.g. "post the 3rd pending transfer, amount one
//! less than pending") and resolved against the model's state just before each batch,
//! so that posts, voids and resubmissions hit real transfers often.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

use std::collections::BTreeMap;

use corebank_ledger::{
    Account, AccountFilter, AccountFlags, BatchError, CreateAccountResult as AR,
    CreateTransferResult as TR, Direction, EventResult, Ledger, PendingStatus, QueryFilter,
    Transfer, TransferFlags,
};
use model::{Model, ModelBatchError, NS};
use proptest::prelude::*;

const MAX: u128 = u128::MAX;
const EUR: u32 = 978;
const USD: u32 = 840;
/// Account ids 1..=8 are used (9 never exists).
const ACCOUNT_IDS: u128 = 8;
/// Raw account events sometimes use these ids, which transfers never name, so that
/// the rules after "exists" are reached even once the funding accounts exist.
const FRESH_ACCOUNTS: std::ops::RangeInclusive<u128> = 10..=12;
/// Transfer ids 1..=40 are drawn at random; the funding transfers use 41..=46.
const TRANSFER_IDS: u128 = 40;
const EXPIRE_LIMIT: usize = 8_190;
/// A start time late enough that a pending transfer with a timeout of u32::MAX seconds
/// runs past 2^63-1 ns (`overflows_timeout`).
const LATE_START: u64 = 5_000_000_000_000_000_000;

// =====================================================================================
// Abstract inputs
// =====================================================================================

#[derive(Clone, Debug)]
enum AccountOp {
    /// The canonical account of this id (see [`canonical_account`]).
    Canonical { id: u128, linked: bool },
    /// Anything at all.
    Raw(Account),
    /// An existing account resubmitted, with one field changed (or none).
    Replay { pick: u8, mutation: u8 },
}

#[derive(Clone, Copy, Debug)]
enum PendingRef {
    Raw(u128),
    /// The event's own id (`pending_id_must_be_different`).
    SelfId,
    /// The k-th (mod count) transfer with the `pending` flag in the model.
    Pending(u8),
    /// The k-th (mod count) transfer of any kind in the model.
    Any(u8),
    /// The k-th (mod count) earlier event of this batch, counting back.
    Earlier(u8),
    /// The still-pending transfer that expires first (with [`Gap::AtExpiry`], this
    /// reaches the `expires_at <= timestamp` boundary).
    Expiring,
}

#[derive(Clone, Copy, Debug)]
enum AmountSel {
    Value(u128),
    PendingFull,
    PendingLess,
    PendingMore,
}

#[derive(Clone, Debug)]
enum TransferOp {
    /// A single-phase or pending transfer; `auto_ledger` takes the debit account's ledger.
    Plain { t: Transfer, auto_ledger: bool },
    /// A post or void (or a malformed one): `t` without pending_id and amount.
    PostVoid {
        t: Transfer,
        pending: PendingRef,
        amount: AmountSel,
    },
    /// An existing transfer resubmitted, with one field changed (or none).
    Replay { pick: u8, mutation: u8 },
}

#[derive(Clone, Copy, Debug)]
enum Gap {
    Nanos(u32),
    Seconds(u8),
    /// At the next expiry plus this many ns (when that is still ahead).
    AtExpiry(i8),
}

#[derive(Clone, Debug)]
enum Step {
    Accounts {
        gap: Gap,
        ops: Vec<AccountOp>,
        resubmit: bool,
    },
    Transfers {
        gap: Gap,
        ops: Vec<TransferOp>,
        resubmit: bool,
    },
    /// Advance the clock by this many seconds, then expire.
    Expire { seconds: u8 },
    /// Expire at the next expiry plus this many ns (when that is still ahead).
    ExpireAt { delta: i8 },
    /// A batch the ledger must refuse as a whole (0: empty transfers, 1: empty accounts,
    /// 2: transfers at a timestamp that does not advance, 3: expiry likewise).
    Refused { kind: u8 },
}

#[derive(Clone, Copy, Debug)]
enum TsSel {
    Zero,
    /// A transfer's timestamp (k-th mod count) plus a small delta.
    Record(u8, i8),
}

#[derive(Clone, Copy, Debug)]
struct FilterSpec {
    account_id: u128,
    user_data_128: u128,
    user_data_64: u64,
    user_data_32: u32,
    code: u16,
    ledger: u32,
    min: TsSel,
    max: TsSel,
    limit: u32,
    direction: Direction,
    reversed: bool,
}

#[derive(Clone, Debug)]
struct Workload {
    start: u64,
    funding: bool,
    steps: Vec<Step>,
    filters: Vec<FilterSpec>,
}

// =====================================================================================
// Fixed parts: canonical accounts and the funding batches
// =====================================================================================

fn canonical_ledger(id: u128) -> u32 {
    if id <= 4 { EUR } else { USD }
}

/// Accounts 1..=4 are EUR, 5..=8 USD: 1 and 5 are unrestricted "cash" accounts (5 with
/// history), 2/6 and 3/7 customer deposits (debits must not exceed credits; 2/6 with
/// history), 4/8 credits-must-not-exceed-debits accounts with history.
fn canonical_account(id: u128) -> Account {
    let flags = match id {
        1 => AccountFlags::empty(),
        5 => AccountFlags::HISTORY,
        2 | 6 => AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::HISTORY,
        3 | 7 => AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
        _ => AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS | AccountFlags::HISTORY,
    };
    Account {
        id,
        user_data_128: id % 3,
        ledger: canonical_ledger(id),
        code: u16::try_from(1 + id % 3).unwrap(),
        flags,
        ..Default::default()
    }
}

fn funding_accounts() -> Vec<Account> {
    (1..=ACCOUNT_IDS).map(canonical_account).collect()
}

fn funding_transfers() -> Vec<Transfer> {
    let t = |id: u128, dr: u128, cr: u128| Transfer {
        id,
        debit_account_id: dr,
        credit_account_id: cr,
        amount: 1_000_000,
        ledger: canonical_ledger(dr),
        code: 1,
        ..Default::default()
    };
    vec![
        t(41, 1, 2),
        t(42, 1, 3),
        t(43, 4, 1),
        t(44, 5, 6),
        t(45, 5, 7),
        t(46, 8, 5),
    ]
}

// =====================================================================================
// Resolution of abstract inputs against the model
// =====================================================================================

fn resolve_accounts(model: &Model, ops: &[AccountOp]) -> Vec<Account> {
    let existing = model.accounts_in_order();
    ops.iter()
        .map(|op| match op {
            AccountOp::Canonical { id, linked } => {
                let mut a = canonical_account(*id);
                if *linked {
                    a.flags.insert(AccountFlags::LINKED);
                }
                a
            }
            AccountOp::Raw(a) => *a,
            AccountOp::Replay { pick, mutation } => {
                let Some(stored) = existing.get(usize::from(*pick) % existing.len().max(1)) else {
                    return canonical_account(u128::from(*pick) % ACCOUNT_IDS + 1);
                };
                let mut a = Account {
                    debits_pending: 0,
                    debits_posted: 0,
                    credits_pending: 0,
                    credits_posted: 0,
                    timestamp: 0,
                    ..*stored
                };
                match mutation {
                    3 => {
                        a.flags =
                            AccountFlags::from_bits(a.flags.bits() ^ AccountFlags::HISTORY.bits())
                    }
                    4 => a.user_data_128 = a.user_data_128.wrapping_add(1),
                    5 => a.user_data_64 = a.user_data_64.wrapping_add(1),
                    6 => a.user_data_32 = a.user_data_32.wrapping_add(1),
                    7 => a.ledger = a.ledger.wrapping_add(1),
                    8 => a.code = a.code.wrapping_add(1),
                    9 => a.debits_posted = 1, // balances are not compared: still `exists`
                    10 => a.timestamp = 1,
                    _ => {}
                }
                a
            }
        })
        .collect()
}

fn resolve_transfers(model: &Model, ops: &[TransferOp]) -> Vec<Transfer> {
    let records = model.transfer_records();
    let pendings: Vec<Transfer> = records
        .iter()
        .copied()
        .filter(|t| t.flags.contains(TransferFlags::PENDING))
        .collect();
    let mut out: Vec<Transfer> = Vec::with_capacity(ops.len());
    for op in ops {
        let t = match op {
            TransferOp::Plain { t, auto_ledger } => {
                let mut t = *t;
                if *auto_ledger {
                    t.ledger = model
                        .accounts
                        .get(&t.debit_account_id)
                        .map_or_else(|| canonical_ledger(t.debit_account_id), |a| a.ledger);
                }
                t
            }
            TransferOp::PostVoid { t, pending, amount } => {
                let mut t = *t;
                let target: Option<Transfer> = match *pending {
                    PendingRef::Raw(id) => {
                        t.pending_id = id;
                        model.find_transfer(id).map(|(_, p, _)| p)
                    }
                    PendingRef::SelfId => {
                        t.pending_id = t.id;
                        None
                    }
                    PendingRef::Pending(k) => pendings
                        .get(usize::from(k) % pendings.len().max(1))
                        .copied(),
                    PendingRef::Any(k) => {
                        records.get(usize::from(k) % records.len().max(1)).copied()
                    }
                    PendingRef::Earlier(k) => {
                        if out.is_empty() {
                            None
                        } else {
                            out.get(out.len() - 1 - usize::from(k) % out.len()).copied()
                        }
                    }
                    PendingRef::Expiring => model
                        .transfers
                        .iter()
                        .filter(|(p, status)| *status == PendingStatus::Pending && p.timeout != 0)
                        .min_by_key(|(p, _)| (p.timestamp + u64::from(p.timeout) * NS, p.timestamp))
                        .map(|(p, _)| *p),
                };
                match (target, *pending) {
                    (
                        Some(p),
                        PendingRef::Pending(_)
                        | PendingRef::Any(_)
                        | PendingRef::Earlier(_)
                        | PendingRef::Expiring,
                    ) => {
                        t.pending_id = p.id;
                    }
                    (
                        None,
                        PendingRef::Pending(k) | PendingRef::Any(k) | PendingRef::Earlier(k),
                    ) => {
                        t.pending_id = u128::from(k) % TRANSFER_IDS + 1;
                    }
                    _ => {}
                }
                let pending_amount = target.map_or(1, |p| p.amount);
                t.amount = match *amount {
                    AmountSel::Value(v) => v,
                    AmountSel::PendingFull => pending_amount,
                    AmountSel::PendingLess => pending_amount.saturating_sub(1).max(1),
                    AmountSel::PendingMore => pending_amount.saturating_add(1),
                };
                t
            }
            TransferOp::Replay { pick, mutation } => {
                let Some(stored) = records.get(usize::from(*pick) % records.len().max(1)) else {
                    out.push(Transfer {
                        id: u128::from(*pick) % TRANSFER_IDS + 1,
                        debit_account_id: 1,
                        credit_account_id: 4,
                        amount: 10,
                        ledger: EUR,
                        code: 1,
                        ..Default::default()
                    });
                    continue;
                };
                let mut t = Transfer {
                    timestamp: 0,
                    ..*stored
                };
                match mutation {
                    3 => {
                        t.flags =
                            TransferFlags::from_bits(t.flags.bits() ^ TransferFlags::PENDING.bits())
                    }
                    4 => t.pending_id = t.pending_id.wrapping_add(1),
                    5 => t.timeout = t.timeout.wrapping_add(1),
                    6 => t.debit_account_id = t.debit_account_id % ACCOUNT_IDS + 1,
                    7 => t.credit_account_id = t.credit_account_id % ACCOUNT_IDS + 1,
                    8 => t.amount = t.amount.saturating_add(1),
                    9 => t.amount = t.amount.saturating_sub(1),
                    10 => t.user_data_128 = t.user_data_128.wrapping_add(1),
                    11 => t.user_data_64 = t.user_data_64.wrapping_add(1),
                    12 => t.user_data_32 = t.user_data_32.wrapping_add(1),
                    13 => t.ledger = t.ledger.wrapping_add(1),
                    14 => t.code = t.code.wrapping_add(1),
                    15 => {
                        t.debit_account_id = 0;
                        t.credit_account_id = 0;
                        t.ledger = 0;
                        t.code = 0;
                        t.user_data_128 = 0;
                        t.user_data_64 = 0;
                        t.user_data_32 = 0;
                        t.amount = 0;
                    }
                    _ => {}
                }
                t
            }
        };
        out.push(t);
    }
    out
}

fn resolve_ts(model: &Model, sel: TsSel) -> u64 {
    match sel {
        TsSel::Zero => 0,
        TsSel::Record(k, delta) => {
            let records = model.transfer_records();
            let base = records
                .get(usize::from(k) % records.len().max(1))
                .map_or(model.last_timestamp, |t| t.timestamp);
            base.saturating_add_signed(i64::from(delta)).max(1)
        }
    }
}

fn account_filter(model: &Model, f: &FilterSpec) -> AccountFilter {
    AccountFilter {
        account_id: f.account_id,
        user_data_128: f.user_data_128,
        user_data_64: f.user_data_64,
        user_data_32: f.user_data_32,
        code: f.code,
        timestamp_min: resolve_ts(model, f.min),
        timestamp_max: resolve_ts(model, f.max),
        limit: f.limit,
        direction: f.direction,
        reversed: f.reversed,
    }
}

fn query_filter(model: &Model, f: &FilterSpec) -> QueryFilter {
    QueryFilter {
        user_data_128: f.user_data_128,
        user_data_64: f.user_data_64,
        user_data_32: f.user_data_32,
        ledger: f.ledger,
        code: f.code,
        timestamp_min: resolve_ts(model, f.min),
        timestamp_max: resolve_ts(model, f.max),
        limit: f.limit,
        reversed: f.reversed,
    }
}

// =====================================================================================
// The harness: one real ledger, one model, checked after every step
// =====================================================================================

/// A batch as applied, for replaying into a fresh ledger.
#[derive(Clone, Debug)]
enum Applied {
    Accounts(u64, Vec<Account>),
    Transfers(u64, Vec<Transfer>),
    Expire(u64),
}

#[derive(Default)]
struct Histogram {
    transfers: BTreeMap<TR, u64>,
    accounts: BTreeMap<AR, u64>,
    transfers_ok: u64,
    accounts_ok: u64,
    expired: u64,
}

struct Harness<'h> {
    ledger: Ledger,
    model: Model,
    start: u64,
    log: Vec<Applied>,
    filters: Vec<FilterSpec>,
    histogram: Option<&'h mut Histogram>,
}

/// The chains of a batch as inclusive index ranges, from the linked flags.
fn chains(linked: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < linked.len() {
        let mut end = start;
        while end + 1 < linked.len() && linked[end] {
            end += 1;
        }
        out.push((start, end));
        start = end + 1;
    }
    out
}

/// Checks from the results and the ledger's records alone that each chain either was
/// applied entirely (no result for any of its events, each event's record carrying the
/// event's timestamp) or not at all (a result for every event, no record at those
/// timestamps).
fn check_chains_atomic<R: Copy + std::fmt::Debug>(
    timestamp: u64,
    linked: &[bool],
    ids: &[u128],
    results: &[EventResult<R>],
    record_timestamp: impl Fn(u128) -> Option<u64>,
    all_timestamps: &[u64],
) {
    let failed: Vec<bool> = (0..linked.len())
        .map(|i| results.iter().any(|r| r.index as usize == i))
        .collect();
    for (start, end) in chains(linked) {
        let chain_failed = failed[start];
        for i in start..=end {
            assert_eq!(
                failed[i], chain_failed,
                "chain {start}..={end} is not all-or-nothing: {results:?}"
            );
            let at = timestamp + i as u64;
            if chain_failed {
                assert!(
                    !all_timestamps.contains(&at),
                    "event {i} of a failed chain left a record at {at}"
                );
            } else {
                assert_eq!(
                    record_timestamp(ids[i]),
                    Some(at),
                    "event {i} of an applied chain has no record"
                );
            }
        }
    }
}

/// Sums with a carry, so that totals beyond 2^128 still compare exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Wide {
    carries: u128,
    low: u128,
}

impl Wide {
    fn add(&mut self, v: u128) {
        let (low, carry) = self.low.overflowing_add(v);
        self.low = low;
        self.carries += u128::from(carry);
    }
}

fn same_batch_error(real: &BatchError, model: &ModelBatchError) -> bool {
    match (real, model) {
        (
            BatchError::TimestampNotAdvancing { timestamp, last },
            ModelBatchError::TimestampNotAdvancing {
                timestamp: t,
                last: l,
            },
        ) => timestamp == t && last == l,
        (BatchError::TooManyEvents { count }, ModelBatchError::TooManyEvents(c)) => count == c,
        // The spec refuses an empty batch without naming the error.
        (_, ModelBatchError::Empty) => true,
        _ => false,
    }
}

impl<'h> Harness<'h> {
    fn new(start: u64, filters: Vec<FilterSpec>, histogram: Option<&'h mut Histogram>) -> Self {
        Self {
            ledger: Ledger::new(),
            model: Model::new(),
            start,
            log: Vec::new(),
            filters,
            histogram,
        }
    }

    fn next_timestamp(&self, gap: u64) -> u64 {
        self.ledger.last_timestamp().max(self.start) + gap.max(1)
    }

    fn batch_timestamp(&self, gap: Gap) -> u64 {
        match gap {
            Gap::Nanos(n) => self.next_timestamp(u64::from(n)),
            Gap::Seconds(s) => self.next_timestamp(u64::from(s) * NS),
            Gap::AtExpiry(delta) => {
                let earliest = self.next_timestamp(1);
                self.model
                    .next_expiry()
                    .map(|at| at.saturating_add_signed(i64::from(delta)))
                    .filter(|at| *at >= earliest)
                    .unwrap_or(earliest)
            }
        }
    }

    fn accounts(&mut self, timestamp: u64, events: &[Account]) -> Vec<EventResult<AR>> {
        let real = self
            .ledger
            .create_accounts(timestamp, events)
            .expect("batch accepted");
        let expected = self
            .model
            .create_accounts(timestamp, events)
            .expect("model accepts the batch");
        assert_eq!(
            real, expected,
            "create_accounts results differ at {timestamp} for {events:#?}"
        );
        self.log.push(Applied::Accounts(timestamp, events.to_vec()));
        if let Some(h) = self.histogram.as_deref_mut() {
            for r in &real {
                *h.accounts.entry(r.result).or_default() += 1;
            }
            h.accounts_ok += (events.len() - real.len()) as u64;
        }
        let linked: Vec<bool> = events
            .iter()
            .map(|a| a.flags.contains(AccountFlags::LINKED))
            .collect();
        let ids: Vec<u128> = events.iter().map(|a| a.id).collect();
        let stamps: Vec<u64> = self.ledger.accounts().iter().map(|a| a.timestamp).collect();
        check_chains_atomic(
            timestamp,
            &linked,
            &ids,
            &real,
            |id| self.ledger.account(id).map(|a| a.timestamp),
            &stamps,
        );
        self.check_all();
        real
    }

    fn transfers(&mut self, timestamp: u64, events: &[Transfer]) -> Vec<EventResult<TR>> {
        let real = self
            .ledger
            .create_transfers(timestamp, events)
            .expect("batch accepted");
        let expected = self
            .model
            .create_transfers(timestamp, events)
            .expect("model accepts the batch");
        assert_eq!(
            real, expected,
            "create_transfers results differ at {timestamp} for {events:#?}"
        );
        self.log
            .push(Applied::Transfers(timestamp, events.to_vec()));
        if let Some(h) = self.histogram.as_deref_mut() {
            for r in &real {
                *h.transfers.entry(r.result).or_default() += 1;
            }
            h.transfers_ok += (events.len() - real.len()) as u64;
        }
        let linked: Vec<bool> = events
            .iter()
            .map(|t| t.flags.contains(TransferFlags::LINKED))
            .collect();
        let ids: Vec<u128> = events.iter().map(|t| t.id).collect();
        let stamps: Vec<u64> = self
            .ledger
            .transfers()
            .iter()
            .map(|t| t.timestamp)
            .collect();
        check_chains_atomic(
            timestamp,
            &linked,
            &ids,
            &real,
            |id| self.ledger.transfer(id).map(|t| t.timestamp),
            &stamps,
        );
        self.check_all();
        real
    }

    fn expire(&mut self, timestamp: u64) {
        let real = self
            .ledger
            .expire_pending_transfers(timestamp, EXPIRE_LIMIT)
            .expect("expiry accepted");
        let expected = self
            .model
            .expire_pending_transfers(timestamp, EXPIRE_LIMIT)
            .expect("model accepts expiry");
        assert_eq!(
            real, expected,
            "expire_pending_transfers({timestamp}) counts differ"
        );
        self.log.push(Applied::Expire(timestamp));
        if let Some(h) = self.histogram.as_deref_mut() {
            h.expired += real as u64;
        }
        self.check_all();
    }

    /// A batch the ledger must refuse: same error as the model, nothing changed.
    fn refused(&mut self, kind: u8) {
        let digest = self.ledger.digest();
        let last = self.ledger.last_timestamp();
        let one = [Transfer {
            id: 1,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: 1,
            ledger: EUR,
            code: 1,
            ..Default::default()
        }];
        let ts = self.next_timestamp(1);
        let (real, expected) = match kind {
            0 => (
                self.ledger.create_transfers(ts, &[]).err(),
                self.model.create_transfers(ts, &[]).err(),
            ),
            1 => (
                self.ledger.create_accounts(ts, &[]).err(),
                self.model.create_accounts(ts, &[]).err(),
            ),
            2 => (
                self.ledger.create_transfers(last, &one).err(),
                self.model.create_transfers(last, &one).err(),
            ),
            _ => (
                self.ledger
                    .expire_pending_transfers(last, EXPIRE_LIMIT)
                    .err(),
                self.model
                    .expire_pending_transfers(last, EXPIRE_LIMIT)
                    .err(),
            ),
        };
        let expected = expected.expect("model refuses");
        match real {
            Some(real) => assert!(
                same_batch_error(&real, &expected),
                "refused with {real:?}, model says {expected:?}"
            ),
            // An empty batch is accepted as a no-op (docs/ledger.md, "Time"); it must
            // change nothing.
            None => assert_eq!(
                expected,
                ModelBatchError::Empty,
                "the ledger accepted a batch the spec refuses"
            ),
        }
        assert_eq!(
            self.ledger.digest(),
            digest,
            "a refused batch changed the state"
        );
        assert_eq!(self.ledger.last_timestamp(), last);
        self.check_all();
    }

    fn snapshot(&self) -> (Vec<Account>, Vec<Transfer>, Vec<Option<PendingStatus>>) {
        let transfers = self.ledger.transfers().to_vec();
        let statuses = transfers
            .iter()
            .map(|t| self.ledger.pending_status(t.id))
            .collect();
        (self.ledger.accounts().to_vec(), transfers, statuses)
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Accounts { gap, ops, resubmit } => {
                let events = resolve_accounts(&self.model, ops);
                let ts = self.batch_timestamp(*gap);
                self.accounts(ts, &events);
                if *resubmit {
                    let before = self.snapshot();
                    let ts = self.next_timestamp(1);
                    self.accounts(ts, &events);
                    assert_eq!(
                        self.snapshot(),
                        before,
                        "resubmitting an account batch changed the records"
                    );
                }
            }
            Step::Transfers { gap, ops, resubmit } => {
                let events = resolve_transfers(&self.model, ops);
                let ts = self.batch_timestamp(*gap);
                self.transfers(ts, &events);
                if *resubmit {
                    let before = self.snapshot();
                    let ts = self.next_timestamp(1);
                    self.transfers(ts, &events);
                    assert_eq!(
                        self.snapshot(),
                        before,
                        "resubmitting a transfer batch changed the records"
                    );
                }
            }
            Step::Expire { seconds } => {
                let ts = self.next_timestamp(u64::from(*seconds) * NS);
                self.expire(ts);
            }
            Step::ExpireAt { delta } => {
                let ts = self.batch_timestamp(Gap::AtExpiry(*delta));
                self.expire(ts);
            }
            Step::Refused { kind } => self.refused(*kind),
        }
    }

    fn run(&mut self, workload: &Workload) {
        self.run_restoring_at(workload, None);
    }

    /// Runs the workload; before step `restore_at` (if any), the ledger is replaced by
    /// one read back from its own snapshot, which must then carry on exactly alike.
    fn run_restoring_at(&mut self, workload: &Workload, restore_at: Option<usize>) {
        if workload.funding {
            let ts = self.next_timestamp(1);
            let results = self.accounts(ts, &funding_accounts());
            assert!(results.is_empty(), "{results:?}");
            let ts = self.next_timestamp(1);
            let results = self.transfers(ts, &funding_transfers());
            assert!(results.is_empty(), "{results:?}");
        }
        for (i, step) in workload.steps.iter().enumerate() {
            if restore_at == Some(i) {
                let mut bytes = Vec::new();
                self.ledger
                    .write_snapshot(&mut bytes)
                    .expect("snapshot written");
                let restored = Ledger::read_snapshot(bytes.as_slice()).expect("snapshot read back");
                assert_eq!(
                    restored.digest(),
                    self.ledger.digest(),
                    "the snapshot changed the state"
                );
                self.ledger = restored;
                self.check_all();
            }
            self.step(step);
        }
    }

    /// Everything observable agrees with the model, and the ledger's own records satisfy
    /// the invariants of the spec.
    fn check_all(&self) {
        let ledger = &self.ledger;
        let model = &self.model;

        // Records, in creation order.
        assert_eq!(
            ledger.accounts(),
            model.accounts_in_order().as_slice(),
            "accounts differ"
        );
        assert_eq!(
            ledger.transfers(),
            model.transfer_records().as_slice(),
            "transfers differ"
        );
        assert_eq!(
            ledger.last_timestamp(),
            model.last_timestamp,
            "last timestamps differ"
        );

        // Point reads and lookups.
        let mut ids: Vec<u128> = (0..=50).collect();
        ids.push(MAX);
        for id in &ids {
            assert_eq!(
                ledger.account(*id),
                model.accounts.get(id).copied(),
                "account({id})"
            );
            assert_eq!(
                ledger.transfer(*id),
                model.find_transfer(*id).map(|(_, t, _)| t),
                "transfer({id})"
            );
            assert_eq!(
                ledger.pending_status(*id),
                model.pending_status(*id),
                "pending_status({id})"
            );
        }
        let account_ids = [3, 9, 1, 1, 0, 8, MAX, 5];
        assert_eq!(
            ledger.lookup_accounts(&account_ids).ok(),
            model.lookup_accounts(&account_ids).ok()
        );
        ids.reverse();
        assert_eq!(
            ledger.lookup_transfers(&ids).ok(),
            model.lookup_transfers(&ids).ok()
        );

        // Stats and the expiry queue.
        let stats = ledger.stats();
        assert_eq!(stats.accounts, model.accounts.len());
        assert_eq!(stats.transfers, model.transfers.len());
        assert_eq!(
            stats.pending_transfers,
            model
                .transfers
                .iter()
                .filter(|(_, s)| *s == PendingStatus::Pending)
                .count()
        );
        assert_eq!(stats.burnt_ids, model.burnt.len(), "burnt ids differ");
        assert_eq!(
            stats.history_entries,
            model.history.len(),
            "history entry counts differ"
        );
        assert_eq!(
            ledger.next_expiry(),
            model.next_expiry(),
            "next expiry differs"
        );

        // Reads with the workload's filters.
        for spec in &self.filters {
            let af = account_filter(model, spec);
            assert_eq!(
                ledger.get_account_transfers(&af),
                model.get_account_transfers(&af),
                "get_account_transfers({af:?})"
            );
            assert_eq!(
                ledger.get_account_balances(&af),
                model.get_account_balances(&af),
                "get_account_balances({af:?})"
            );
            let qf = query_filter(model, spec);
            assert_eq!(
                ledger.query_accounts(&qf),
                model.query_accounts(&qf),
                "query_accounts({qf:?})"
            );
            assert_eq!(
                ledger.query_transfers(&qf),
                model.query_transfers(&qf),
                "query_transfers({qf:?})"
            );
        }

        // Invariants, computed from the ledger's records (not from the model).
        let mut totals: BTreeMap<u32, [Wide; 4]> = BTreeMap::new();
        for a in ledger.accounts() {
            let t = totals.entry(a.ledger).or_default();
            t[0].add(a.debits_posted);
            t[1].add(a.credits_posted);
            t[2].add(a.debits_pending);
            t[3].add(a.credits_pending);
            if a.flags
                .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            {
                let debits = a.debits_pending.checked_add(a.debits_posted);
                assert!(
                    debits.is_some_and(|d| d <= a.credits_posted),
                    "account {} exceeds its credits: {a:?}",
                    a.id
                );
            }
            if a.flags
                .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
            {
                let credits = a.credits_pending.checked_add(a.credits_posted);
                assert!(
                    credits.is_some_and(|c| c <= a.debits_posted),
                    "account {} exceeds its debits: {a:?}",
                    a.id
                );
            }
            let mut pending_debits = 0u128;
            let mut pending_credits = 0u128;
            for t in ledger.transfers() {
                if ledger.pending_status(t.id) == Some(PendingStatus::Pending) {
                    if t.debit_account_id == a.id {
                        pending_debits += t.amount;
                    }
                    if t.credit_account_id == a.id {
                        pending_credits += t.amount;
                    }
                }
            }
            assert_eq!(
                (a.debits_pending, a.credits_pending),
                (pending_debits, pending_credits),
                "pending of {}",
                a.id
            );
        }
        for (ledger_id, [dr_posted, cr_posted, dr_pending, cr_pending]) in &totals {
            assert_eq!(
                dr_posted, cr_posted,
                "posted not balanced on ledger {ledger_id}"
            );
            assert_eq!(
                dr_pending, cr_pending,
                "pending not balanced on ledger {ledger_id}"
            );
        }
        for (ledger_id, t) in ledger.totals_by_ledger() {
            let mine = totals[&ledger_id];
            if mine.iter().all(|w| w.carries == 0) {
                assert_eq!(
                    (
                        t.debits_posted,
                        t.credits_posted,
                        t.debits_pending,
                        t.credits_pending
                    ),
                    (mine[0].low, mine[1].low, mine[2].low, mine[3].low),
                    "totals_by_ledger({ledger_id})"
                );
            }
            assert!(t.is_conserved());
        }
        assert!(
            ledger
                .accounts()
                .windows(2)
                .all(|w| w[0].timestamp < w[1].timestamp)
        );
        assert!(
            ledger
                .transfers()
                .windows(2)
                .all(|w| w[0].timestamp < w[1].timestamp)
        );
        if let Err(violation) = ledger.check_invariants() {
            panic!("check_invariants: {violation}");
        }
    }
}

/// Applies a log of batches to a fresh ledger.
fn replay(log: &[Applied]) -> Ledger {
    let mut ledger = Ledger::new();
    for applied in log {
        match applied {
            Applied::Accounts(ts, events) => {
                ledger.create_accounts(*ts, events).unwrap();
            }
            Applied::Transfers(ts, events) => {
                ledger.create_transfers(*ts, events).unwrap();
            }
            Applied::Expire(ts) => {
                ledger.expire_pending_transfers(*ts, EXPIRE_LIMIT).unwrap();
            }
        }
    }
    ledger
}

// =====================================================================================
// Builders shared by the proptest strategies and the seeded generator
// =====================================================================================

/// (linked, debits_must_not_exceed_credits, credits_must_not_exceed_debits, history,
/// closed, a reserved bit)
type AccountBits = (bool, bool, bool, bool, bool, bool);

fn build_account(
    id: u128,
    (linked, dmnec, cmned, history, closed, reserved): AccountBits,
    ud: (u128, u64, u32),
    ledger: u32,
    code: u16,
    junk: Option<(usize, u128)>,
    timestamp: u64,
) -> Account {
    let mut bits = 0u16;
    for (on, flag) in [
        (linked, AccountFlags::LINKED),
        (dmnec, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
        (cmned, AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS),
        (history, AccountFlags::HISTORY),
        (closed, AccountFlags::CLOSED),
    ] {
        if on {
            bits |= flag.bits();
        }
    }
    if reserved {
        bits |= 1 << 9;
    }
    let mut a = Account {
        id,
        user_data_128: ud.0,
        user_data_64: ud.1,
        user_data_32: ud.2,
        ledger,
        code,
        flags: AccountFlags::from_bits(bits),
        timestamp,
        ..Default::default()
    };
    if let Some((which, v)) = junk {
        match which {
            0 => a.debits_pending = v,
            1 => a.debits_posted = v,
            2 => a.credits_pending = v,
            _ => a.credits_posted = v,
        }
    }
    a
}

/// (linked, pending, balancing_debit, balancing_credit, closing_debit, closing_credit)
type TransferBits = (bool, bool, bool, bool, bool, bool);

/// A plain (single-phase or pending) transfer; `odd` is (a reserved bit, the post flag
/// too, keep the timeout on a non-pending transfer); `ledger` None = the debit account's.
#[allow(clippy::too_many_arguments)]
fn build_plain(
    (id, dr, cr, amount): (u128, u128, u128, u128),
    same_ledger: bool,
    (linked, pending, bal_dr, bal_cr, close_dr, close_cr): TransferBits,
    (reserved, post, keep_timeout): (bool, bool, bool),
    timeout: u32,
    ledger: Option<u32>,
    code: u16,
    ud: (u128, u64, u32),
    (pending_id, timestamp): (u128, u64),
) -> TransferOp {
    let mut bits = 0u16;
    for (on, flag) in [
        (linked, TransferFlags::LINKED),
        (pending, TransferFlags::PENDING),
        (bal_dr, TransferFlags::BALANCING_DEBIT),
        (bal_cr, TransferFlags::BALANCING_CREDIT),
        (close_dr, TransferFlags::CLOSING_DEBIT),
        (close_cr, TransferFlags::CLOSING_CREDIT),
        (post, TransferFlags::POST_PENDING_TRANSFER),
    ] {
        if on {
            bits |= flag.bits();
        }
    }
    if reserved {
        bits |= 1 << 12;
    }
    // Mostly keep both sides on one ledger (and different), so that many transfers
    // get past rules 8 and 14.
    let in_range = |id: u128| (1..=ACCOUNT_IDS).contains(&id);
    let cr = if same_ledger && in_range(dr) && in_range(cr) {
        let group = (dr - 1) / 4 * 4;
        let mut cr = group + (cr - 1) % 4 + 1;
        if cr == dr {
            cr = group + cr % 4 + 1;
        }
        cr
    } else {
        cr
    };
    let t = Transfer {
        id,
        debit_account_id: dr,
        credit_account_id: cr,
        amount,
        pending_id,
        user_data_128: ud.0,
        user_data_64: ud.1,
        user_data_32: ud.2,
        timeout: if pending || keep_timeout { timeout } else { 0 },
        ledger: ledger.unwrap_or(0),
        code,
        flags: TransferFlags::from_bits(bits),
        timestamp,
    };
    TransferOp::Plain {
        t,
        auto_ledger: ledger.is_none(),
    }
}

/// A post (or void) with optional account/ledger/code/user data/timeout, extra flag bits,
/// and the linked flag.
#[allow(clippy::too_many_arguments)]
fn build_post_void(
    (id, post, pending, amount): (u128, bool, PendingRef, AmountSel),
    (dr, cr): (u128, u128),
    (ledger, code): (u32, u16),
    (ud, timeout): ((u128, u64, u32), u32),
    (extra, linked, timestamp): (u16, bool, u64),
) -> TransferOp {
    let kind = if post {
        TransferFlags::POST_PENDING_TRANSFER
    } else {
        TransferFlags::VOID_PENDING_TRANSFER
    };
    let mut bits = extra | kind.bits();
    if linked {
        bits |= TransferFlags::LINKED.bits();
    }
    let t = Transfer {
        id,
        debit_account_id: dr,
        credit_account_id: cr,
        user_data_128: ud.0,
        user_data_64: ud.1,
        user_data_32: ud.2,
        timeout,
        ledger,
        code,
        flags: TransferFlags::from_bits(bits),
        timestamp,
        ..Default::default()
    };
    TransferOp::PostVoid { t, pending, amount }
}

/// Extra flag bits that make a post/void malformed.
const POST_VOID_EXTRA: [u16; 5] = [
    0,
    TransferFlags::PENDING.bits(),
    TransferFlags::BALANCING_DEBIT.bits(),
    TransferFlags::CLOSING_CREDIT.bits(),
    TransferFlags::POST_PENDING_TRANSFER.bits() | TransferFlags::VOID_PENDING_TRANSFER.bits(),
];

// =====================================================================================
// Strategies
// =====================================================================================

fn weighted(percent: u32) -> impl Strategy<Value = bool> {
    (0..100u32).prop_map(move |x| x < percent)
}

fn id_in(max: u128) -> impl Strategy<Value = u128> {
    prop_oneof![60 => 1..=max, 1 => Just(0), 1 => Just(MAX)]
}

fn account_ref() -> impl Strategy<Value = u128> {
    prop_oneof![60 => 1..=ACCOUNT_IDS, 1 => Just(0), 1 => Just(MAX), 2 => Just(ACCOUNT_IDS + 1)]
}

fn amount() -> impl Strategy<Value = u128> {
    prop_oneof![
        70 => 1..=1_000u128,
        5 => 1_000..=2_000_000u128,
        4 => Just(0),
        5 => Just(MAX),
        5 => Just(MAX / 2),
        3 => Just(MAX / 2 + 1),
    ]
}

fn user_data() -> impl Strategy<Value = (u128, u64, u32)> {
    (
        prop_oneof![3 => Just(0u128), 1 => 1..=2u128],
        prop_oneof![3 => Just(0u64), 1 => 1..=2u64],
        prop_oneof![3 => Just(0u32), 1 => 1..=2u32],
    )
}

fn zero_mostly<T: Clone + std::fmt::Debug + 'static>(
    zero: T,
    other: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![8 => Just(zero), 1 => other].boxed()
}

fn raw_account() -> impl Strategy<Value = Account> {
    (
        prop_oneof![4 => id_in(ACCOUNT_IDS), 1 => FRESH_ACCOUNTS],
        (
            weighted(20),
            weighted(30),
            weighted(20),
            weighted(40),
            weighted(5),
            weighted(3),
        ),
        user_data(),
        prop_oneof![45 => Just(EUR), 45 => Just(USD), 3 => Just(0), 5 => Just(7)],
        prop_oneof![30 => 1..=3u16, 1 => Just(0)],
        prop_oneof![10 => Just(None), 1 => (0..4usize, 1..=5u128).prop_map(Some)],
        prop_oneof![40 => Just(0u64), 1 => Just(1u64)],
    )
        .prop_map(|(id, bits, ud, ledger, code, junk, timestamp)| {
            build_account(id, bits, ud, ledger, code, junk, timestamp)
        })
}

fn account_op() -> impl Strategy<Value = AccountOp> {
    prop_oneof![
        50 => (1..=ACCOUNT_IDS, weighted(20)).prop_map(|(id, linked)| AccountOp::Canonical { id, linked }),
        35 => raw_account().prop_map(AccountOp::Raw),
        15 => (any::<u8>(), 0..12u8).prop_map(|(pick, mutation)| AccountOp::Replay { pick, mutation }),
    ]
}

fn plain_transfer() -> impl Strategy<Value = TransferOp> {
    (
        (id_in(TRANSFER_IDS), account_ref(), account_ref(), amount()),
        weighted(85),
        (
            weighted(20),
            weighted(35),
            weighted(10),
            weighted(10),
            weighted(3),
            weighted(3),
        ),
        (weighted(2), weighted(2), weighted(5)),
        prop_oneof![50 => Just(0u32), 40 => 1..=5u32, 5 => Just(u32::MAX)],
        prop_oneof![
            90 => Just(None),
            3 => Just(Some(0u32)),
            7 => prop_oneof![Just(EUR), Just(USD), Just(7)].prop_map(Some),
        ],
        prop_oneof![30 => 1..=3u16, 1 => Just(0)],
        user_data(),
        (
            prop_oneof![30 => Just(0u128), 1 => 1..=TRANSFER_IDS],
            prop_oneof![60 => Just(0u64), 1 => Just(7u64)],
        ),
    )
        .prop_map(|(a, same, b, c, timeout, ledger, code, ud, d)| {
            build_plain(a, same, b, c, timeout, ledger, code, ud, d)
        })
}

fn post_void() -> impl Strategy<Value = TransferOp> {
    let pending = prop_oneof![
        60 => any::<u8>().prop_map(PendingRef::Pending),
        8 => any::<u8>().prop_map(PendingRef::Any),
        15 => (0..4u8).prop_map(PendingRef::Earlier),
        10 => Just(PendingRef::Expiring),
        8 => (1..=TRANSFER_IDS + 6).prop_map(PendingRef::Raw),
        1 => Just(PendingRef::Raw(0)),
        1 => Just(PendingRef::Raw(MAX)),
        1 => Just(PendingRef::SelfId),
    ];
    let amount = prop_oneof![
        35 => Just(AmountSel::Value(0)),
        10 => Just(AmountSel::Value(MAX)),
        20 => Just(AmountSel::PendingFull),
        12 => Just(AmountSel::PendingLess),
        5 => Just(AmountSel::PendingMore),
        15 => (1..=1_000u128).prop_map(AmountSel::Value),
    ];
    let extra = prop_oneof![40 => Just(0usize), 4 => 1..POST_VOID_EXTRA.len()]
        .prop_map(|i| POST_VOID_EXTRA[i]);
    (
        (id_in(TRANSFER_IDS), weighted(60), pending, amount),
        (
            zero_mostly(0u128, 1..=ACCOUNT_IDS),
            zero_mostly(0u128, 1..=ACCOUNT_IDS),
        ),
        (
            zero_mostly(0u32, prop_oneof![Just(EUR), Just(USD)]),
            zero_mostly(0u16, 1..=3u16),
        ),
        (
            prop_oneof![3 => Just((0u128, 0u64, 0u32)), 1 => user_data()],
            prop_oneof![30 => Just(0u32), 1 => 1..=3u32],
        ),
        (
            extra,
            weighted(20),
            prop_oneof![60 => Just(0u64), 1 => Just(7u64)],
        ),
    )
        .prop_map(|(a, b, c, d, e)| build_post_void(a, b, c, d, e))
}

fn transfer_op() -> impl Strategy<Value = TransferOp> {
    prop_oneof![
        55 => plain_transfer(),
        30 => post_void(),
        15 => (any::<u8>(), 0..18u8).prop_map(|(pick, mutation)| TransferOp::Replay { pick, mutation }),
    ]
}

fn gap() -> impl Strategy<Value = Gap> {
    prop_oneof![
        65 => (1..=1_000u32).prop_map(Gap::Nanos),
        25 => (1..=3u8).prop_map(Gap::Seconds),
        10 => (-1..=1i8).prop_map(Gap::AtExpiry),
    ]
}

fn step(resubmit_percent: u32) -> impl Strategy<Value = Step> {
    prop_oneof![
        15 => (gap(), prop::collection::vec(account_op(), 1..=6), weighted(resubmit_percent))
            .prop_map(|(gap, ops, resubmit)| Step::Accounts { gap, ops, resubmit }),
        65 => (gap(), prop::collection::vec(transfer_op(), 1..=12), weighted(resubmit_percent))
            .prop_map(|(gap, ops, resubmit)| Step::Transfers { gap, ops, resubmit }),
        8 => (1..=6u8).prop_map(|seconds| Step::Expire { seconds }),
        4 => (-1..=1i8).prop_map(|delta| Step::ExpireAt { delta }),
        3 => (0..4u8).prop_map(|kind| Step::Refused { kind }),
    ]
}

fn ts_sel() -> impl Strategy<Value = TsSel> {
    prop_oneof![3 => Just(TsSel::Zero), 1 => (any::<u8>(), -2..=2i8).prop_map(|(k, d)| TsSel::Record(k, d))]
}

const DIRECTIONS: [Direction; 3] = [Direction::Debits, Direction::Credits, Direction::Both];

fn filter_spec() -> impl Strategy<Value = FilterSpec> {
    (
        (
            prop_oneof![30 => 1..=ACCOUNT_IDS + 1, 1 => Just(0), 1 => Just(MAX)],
            user_data(),
        ),
        (
            zero_mostly(0u16, 1..=3u16),
            zero_mostly(0u32, prop_oneof![Just(EUR), Just(USD)]),
        ),
        (ts_sel(), ts_sel()),
        prop_oneof![10 => 1..=6u32, 2 => Just(8_190u32), 1 => Just(0), 1 => Just(100_000)],
        (0..3usize, any::<bool>()),
    )
        .prop_map(
            |((account_id, ud), (code, ledger), (min, max), limit, (direction, reversed))| {
                FilterSpec {
                    account_id,
                    user_data_128: ud.0,
                    user_data_64: ud.1,
                    user_data_32: ud.2,
                    code,
                    ledger,
                    min,
                    max,
                    limit,
                    direction: DIRECTIONS[direction],
                    reversed,
                }
            },
        )
}

fn workload(max_steps: usize, resubmit_percent: u32) -> impl Strategy<Value = Workload> {
    (
        prop_oneof![85 => Just(1_000u64), 15 => Just(LATE_START)],
        weighted(85),
        prop::collection::vec(step(resubmit_percent), 1..=max_steps),
        prop::collection::vec(filter_spec(), 4),
    )
        .prop_map(|(start, funding, steps, filters)| Workload {
            start,
            funding,
            steps,
            filters,
        })
}

/// `cases` by default; `PROPTEST_CASES=n` overrides it for a longer soak.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// =====================================================================================
// The same distributions from a seeded splitmix64, for the fixed coverage run
// =====================================================================================

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` (the tiny modulo bias does not matter here).
    fn range(&mut self, lo: u128, hi: u128) -> u128 {
        lo + u128::from(self.next()) % (hi - lo + 1)
    }

    fn small<T: TryFrom<u128>>(&mut self, lo: u128, hi: u128) -> T {
        T::try_from(self.range(lo, hi)).ok().expect("in range")
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    /// An index into `weights`, with those weights.
    fn pick(&mut self, weights: &[u64]) -> usize {
        let mut x = self.next() % weights.iter().sum::<u64>();
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        unreachable!()
    }

    fn zero_mostly(&mut self, lo: u128, hi: u128) -> u128 {
        if self.pick(&[8, 1]) == 0 {
            0
        } else {
            self.range(lo, hi)
        }
    }
}

fn r_id(rng: &mut SplitMix64, max: u128) -> u128 {
    [rng.range(1, max), 0, MAX][rng.pick(&[60, 1, 1])]
}

fn r_user_data(rng: &mut SplitMix64) -> (u128, u64, u32) {
    let one = |rng: &mut SplitMix64| {
        if rng.pick(&[3, 1]) == 0 {
            0
        } else {
            rng.range(1, 2)
        }
    };
    let a = one(rng);
    let b = one(rng);
    let c = one(rng);
    (a, u64::try_from(b).unwrap(), u32::try_from(c).unwrap())
}

fn r_account_op(rng: &mut SplitMix64) -> AccountOp {
    match rng.pick(&[50, 35, 15]) {
        0 => AccountOp::Canonical {
            id: rng.range(1, ACCOUNT_IDS),
            linked: rng.percent(20),
        },
        1 => {
            let id = if rng.pick(&[4, 1]) == 0 {
                r_id(rng, ACCOUNT_IDS)
            } else {
                rng.range(10, 12)
            };
            let bits = (
                rng.percent(20),
                rng.percent(30),
                rng.percent(20),
                rng.percent(40),
                rng.percent(5),
                rng.percent(3),
            );
            let ud = r_user_data(rng);
            let ledger = [EUR, USD, 0, 7][rng.pick(&[45, 45, 3, 5])];
            let code = if rng.pick(&[30, 1]) == 0 {
                rng.small(1, 3)
            } else {
                0
            };
            let junk = if rng.pick(&[10, 1]) == 0 {
                None
            } else {
                Some((rng.small(0, 3), rng.range(1, 5)))
            };
            let timestamp = if rng.pick(&[40, 1]) == 0 { 0 } else { 1 };
            AccountOp::Raw(build_account(id, bits, ud, ledger, code, junk, timestamp))
        }
        _ => AccountOp::Replay {
            pick: rng.small(0, 255),
            mutation: rng.small(0, 11),
        },
    }
}

fn r_amount(rng: &mut SplitMix64) -> u128 {
    match rng.pick(&[70, 5, 4, 5, 5, 3]) {
        0 => rng.range(1, 1_000),
        1 => rng.range(1_000, 2_000_000),
        2 => 0,
        3 => MAX,
        4 => MAX / 2,
        _ => MAX / 2 + 1,
    }
}

fn r_transfer_op(rng: &mut SplitMix64) -> TransferOp {
    match rng.pick(&[55, 30, 15]) {
        0 => {
            let account = |rng: &mut SplitMix64| {
                [rng.range(1, ACCOUNT_IDS), 0, MAX, ACCOUNT_IDS + 1][rng.pick(&[60, 1, 1, 2])]
            };
            let ids = (
                r_id(rng, TRANSFER_IDS),
                account(rng),
                account(rng),
                r_amount(rng),
            );
            let same = rng.percent(85);
            let bits = (
                rng.percent(20),
                rng.percent(35),
                rng.percent(10),
                rng.percent(10),
                rng.percent(3),
                rng.percent(3),
            );
            let odd = (rng.percent(2), rng.percent(2), rng.percent(5));
            let timeout = [0, rng.small(1, 5), u32::MAX][rng.pick(&[50, 40, 5])];
            let ledger =
                [None, Some(0), Some([EUR, USD, 7][rng.pick(&[1, 1, 1])])][rng.pick(&[90, 3, 7])];
            let code = if rng.pick(&[30, 1]) == 0 {
                rng.small(1, 3)
            } else {
                0
            };
            let ud = r_user_data(rng);
            let last = (
                if rng.pick(&[30, 1]) == 0 {
                    0
                } else {
                    rng.range(1, TRANSFER_IDS)
                },
                if rng.pick(&[60, 1]) == 0 { 0 } else { 7 },
            );
            build_plain(ids, same, bits, odd, timeout, ledger, code, ud, last)
        }
        1 => {
            let pending = match rng.pick(&[60, 8, 15, 8, 1, 1, 1, 10]) {
                0 => PendingRef::Pending(rng.small(0, 255)),
                1 => PendingRef::Any(rng.small(0, 255)),
                2 => PendingRef::Earlier(rng.small(0, 3)),
                3 => PendingRef::Raw(rng.range(1, TRANSFER_IDS + 6)),
                4 => PendingRef::Raw(0),
                5 => PendingRef::Raw(MAX),
                6 => PendingRef::SelfId,
                _ => PendingRef::Expiring,
            };
            let amount = match rng.pick(&[35, 10, 20, 12, 5, 15]) {
                0 => AmountSel::Value(0),
                1 => AmountSel::Value(MAX),
                2 => AmountSel::PendingFull,
                3 => AmountSel::PendingLess,
                4 => AmountSel::PendingMore,
                _ => AmountSel::Value(rng.range(1, 1_000)),
            };
            let head = (r_id(rng, TRANSFER_IDS), rng.percent(60), pending, amount);
            let accounts = (
                rng.zero_mostly(1, ACCOUNT_IDS),
                rng.zero_mostly(1, ACCOUNT_IDS),
            );
            let ledger = if rng.pick(&[8, 1]) == 0 {
                0
            } else {
                [EUR, USD][rng.pick(&[1, 1])]
            };
            let code: u16 = if rng.pick(&[8, 1]) == 0 {
                0
            } else {
                rng.small(1, 3)
            };
            let ud = if rng.pick(&[3, 1]) == 0 {
                (0, 0, 0)
            } else {
                r_user_data(rng)
            };
            let timeout = if rng.pick(&[30, 1]) == 0 {
                0
            } else {
                rng.small(1, 3)
            };
            let extra = if rng.pick(&[40, 4]) == 0 {
                0
            } else {
                POST_VOID_EXTRA[rng.small::<usize>(1, 4)]
            };
            let tail = (
                extra,
                rng.percent(20),
                if rng.pick(&[60, 1]) == 0 { 0 } else { 7 },
            );
            build_post_void(head, accounts, (ledger, code), (ud, timeout), tail)
        }
        _ => TransferOp::Replay {
            pick: rng.small(0, 255),
            mutation: rng.small(0, 17),
        },
    }
}

fn r_gap(rng: &mut SplitMix64) -> Gap {
    match rng.pick(&[65, 25, 10]) {
        0 => Gap::Nanos(rng.small(1, 1_000)),
        1 => Gap::Seconds(rng.small(1, 3)),
        _ => Gap::AtExpiry(i8::try_from(rng.range(0, 2)).unwrap() - 1),
    }
}

fn r_step(rng: &mut SplitMix64, resubmit_percent: u64) -> Step {
    match rng.pick(&[15, 65, 8, 4, 3]) {
        0 => {
            let gap = r_gap(rng);
            let n = rng.range(1, 6);
            let ops = (0..n).map(|_| r_account_op(rng)).collect();
            Step::Accounts {
                gap,
                ops,
                resubmit: rng.percent(resubmit_percent),
            }
        }
        1 => {
            let gap = r_gap(rng);
            let n = rng.range(1, 12);
            let ops = (0..n).map(|_| r_transfer_op(rng)).collect();
            Step::Transfers {
                gap,
                ops,
                resubmit: rng.percent(resubmit_percent),
            }
        }
        2 => Step::Expire {
            seconds: rng.small(1, 6),
        },
        3 => Step::ExpireAt {
            delta: i8::try_from(rng.range(0, 2)).unwrap() - 1,
        },
        _ => Step::Refused {
            kind: rng.small(0, 3),
        },
    }
}

fn r_ts_sel(rng: &mut SplitMix64) -> TsSel {
    if rng.pick(&[3, 1]) == 0 {
        TsSel::Zero
    } else {
        TsSel::Record(
            rng.small(0, 255),
            i8::try_from(rng.range(0, 4)).unwrap() - 2,
        )
    }
}

fn r_filter(rng: &mut SplitMix64) -> FilterSpec {
    let ud = r_user_data(rng);
    FilterSpec {
        account_id: [rng.range(1, ACCOUNT_IDS + 1), 0, MAX][rng.pick(&[30, 1, 1])],
        user_data_128: ud.0,
        user_data_64: ud.1,
        user_data_32: ud.2,
        code: u16::try_from(rng.zero_mostly(1, 3)).unwrap(),
        ledger: if rng.pick(&[8, 1]) == 0 {
            0
        } else {
            [EUR, USD][rng.pick(&[1, 1])]
        },
        min: r_ts_sel(rng),
        max: r_ts_sel(rng),
        limit: [rng.small(1, 6), 8_190, 0, 100_000][rng.pick(&[10, 2, 1, 1])],
        direction: DIRECTIONS[rng.pick(&[1, 1, 1])],
        reversed: rng.percent(50),
    }
}

fn r_workload(rng: &mut SplitMix64, max_steps: u128, resubmit_percent: u64) -> Workload {
    let start = if rng.pick(&[85, 15]) == 0 {
        1_000
    } else {
        LATE_START
    };
    let funding = rng.percent(85);
    let n = rng.range(1, max_steps);
    let steps = (0..n).map(|_| r_step(rng, resubmit_percent)).collect();
    let filters = (0..4).map(|_| r_filter(rng)).collect();
    Workload {
        start,
        funding,
        steps,
        filters,
    }
}

// =====================================================================================
// Properties
// =====================================================================================

proptest! {
    #![proptest_config(config(1024))]

    /// Results, balances, transfers, pending statuses and reads agree with the model
    /// after every step; invariants, flag limits and chain atomicity hold after every
    /// batch (resubmissions are mixed in).
    #[test]
    fn ledger_agrees_with_model(w in workload(16, 10)) {
        let mut h = Harness::new(w.start, w.filters.clone(), None);
        h.run(&w);
    }

}

proptest! {
    #![proptest_config(config(512))]

    /// Every create batch is resubmitted right after it was applied (same events, later
    /// timestamp): no account or transfer record and no pending status changes.
    #[test]
    fn resubmitting_a_batch_changes_nothing(w in workload(10, 100)) {
        let mut h = Harness::new(w.start, w.filters.clone(), None);
        h.run(&w);
    }

}

proptest! {
    #![proptest_config(config(512))]

    /// A ledger read back from a snapshot taken mid-run has the same digest and then
    /// behaves exactly like the model, like the original would (the indexes a snapshot
    /// does not store are rebuilt correctly).
    #[test]
    fn snapshot_restore_carries_on_alike(w in workload(16, 10), at in 0..16usize) {
        let mut h = Harness::new(w.start, w.filters.clone(), None);
        let at = at % w.steps.len();
        h.run_restoring_at(&w, Some(at));
    }

    /// The same batches applied to two fresh ledgers give the same digest (and the same
    /// digest as the ledger that applied them in the run).
    #[test]
    fn same_batches_same_digest(w in workload(12, 10)) {
        let mut h = Harness::new(w.start, w.filters.clone(), None);
        h.run(&w);
        let a = replay(&h.log);
        let b = replay(&h.log);
        prop_assert_eq!(a.digest(), b.digest());
        prop_assert_eq!(a.digest(), h.ledger.digest());
        prop_assert_eq!(a.accounts(), h.ledger.accounts());
        prop_assert_eq!(a.transfers(), h.ledger.transfers());
        prop_assert_eq!(a.last_timestamp(), h.ledger.last_timestamp());
        if !h.log.is_empty() {
            prop_assert_ne!(a.digest(), Ledger::new().digest());
        }
    }
}

// =====================================================================================
// Plain tests: coverage, and the places where spec and ledger part ways
// =====================================================================================

/// A large deterministic run (seeded splitmix64, same distributions as the strategies,
/// every check of the properties after every step) that prints which result codes it
/// produced, to show what the properties cover.
#[test]
fn coverage_of_result_codes() {
    let mut histogram = Histogram::default();
    let mut rng = SplitMix64(0x5eed_c0de_ba4c_0001);
    for _ in 0..600 {
        let w = r_workload(&mut rng, 24, 10);
        let mut h = Harness::new(w.start, w.filters.clone(), Some(&mut histogram));
        h.run(&w);
    }
    eprintln!(
        "ok: {} transfers, {} accounts; {} pending transfers expired",
        histogram.transfers_ok, histogram.accounts_ok, histogram.expired
    );
    eprintln!(
        "create_transfers results ({} of {} codes):",
        histogram.transfers.len(),
        TR::ALL.len()
    );
    for (code, count) in &histogram.transfers {
        eprintln!("  {:>3} {:<48} {count}", code.code(), code.as_str());
    }
    let missing: Vec<&str> = TR::ALL
        .iter()
        .filter(|c| !histogram.transfers.contains_key(c))
        .map(|c| c.as_str())
        .collect();
    eprintln!("  never seen: {missing:?}");
    eprintln!(
        "create_accounts results ({} of {} codes):",
        histogram.accounts.len(),
        AR::ALL.len()
    );
    for (code, count) in &histogram.accounts {
        eprintln!("  {:>3} {:<48} {count}", code.code(), code.as_str());
    }
    let missing: Vec<&str> = AR::ALL
        .iter()
        .filter(|c| !histogram.accounts.contains_key(c))
        .map(|c| c.as_str())
        .collect();
    eprintln!("  never seen: {missing:?}");
    assert!(
        histogram.transfers.len() >= 40,
        "only {} transfer result codes hit",
        histogram.transfers.len()
    );
}

/// The model's transient set is the spec's; the crate's must be the same.
#[test]
fn transient_results_are_the_specs() {
    for code in TR::ALL {
        assert_eq!(code.is_transient(), model::is_transient(*code), "{code}");
    }
}

#[test]
fn oversized_batches_and_lookups_are_refused() {
    let mut ledger = Ledger::new();
    let mut model = Model::new();
    let accounts = vec![Account::default(); model::BATCH_MAX + 1];
    let transfers = vec![Transfer::default(); model::BATCH_MAX + 1];
    let ids = vec![1u128; model::BATCH_MAX + 1];
    let count = model::BATCH_MAX + 1;
    assert_eq!(
        ledger.create_accounts(1, &accounts),
        Err(BatchError::TooManyEvents { count })
    );
    assert_eq!(
        model.create_accounts(1, &accounts),
        Err(ModelBatchError::TooManyEvents(count))
    );
    assert_eq!(
        ledger.create_transfers(1, &transfers),
        Err(BatchError::TooManyEvents { count })
    );
    assert_eq!(
        model.create_transfers(1, &transfers),
        Err(ModelBatchError::TooManyEvents(count))
    );
    assert!(ledger.lookup_accounts(&ids).is_err() && model.lookup_accounts(&ids).is_err());
    assert!(ledger.lookup_transfers(&ids).is_err() && model.lookup_transfers(&ids).is_err());
    assert_eq!(ledger.last_timestamp(), 0);
}

fn eur(id: u128, flags: AccountFlags) -> Account {
    Account {
        id,
        ledger: EUR,
        code: 1,
        flags,
        ..Default::default()
    }
}

fn move_eur(id: u128, dr: u128, cr: u128, amount: u128, flags: TransferFlags) -> Transfer {
    Transfer {
        id,
        debit_account_id: dr,
        credit_account_id: cr,
        amount,
        ledger: EUR,
        code: 1,
        flags,
        ..Default::default()
    }
}

/// docs/ledger.md, "Time": an empty batch is accepted, answers nothing and changes
/// nothing, not even the clock.
#[test]
fn empty_batch_is_a_no_op() {
    let mut ledger = Ledger::new();
    assert!(
        ledger
            .create_accounts(10, &[eur(1, AccountFlags::empty())])
            .unwrap()
            .is_empty()
    );
    let digest = ledger.digest();
    assert_eq!(ledger.create_accounts(20, &[]), Ok(vec![]));
    assert_eq!(ledger.create_transfers(20, &[]), Ok(vec![]));
    assert_eq!(ledger.create_transfers(5, &[]), Ok(vec![]));
    assert_eq!(ledger.last_timestamp(), 10);
    assert_eq!(ledger.digest(), digest);
}

/// Overflows depend on balances that a later event can lower (here a void), so they are
/// transient: the id is burnt and a resubmission of the batch changes nothing.
#[test]
fn an_overflow_burns_the_id_so_a_resubmission_changes_nothing() {
    let mut h = Harness::new(1, Vec::new(), None);
    let none = AccountFlags::empty();
    h.accounts(1, &[eur(1, none), eur(2, none), eur(3, none)]);
    let batch = [
        move_eur(10, 1, 2, MAX, TransferFlags::PENDING),
        move_eur(11, 1, 3, 5, TransferFlags::PENDING),
        Transfer {
            id: 12,
            pending_id: 10,
            flags: TransferFlags::VOID_PENDING_TRANSFER,
            ..Default::default()
        },
    ];
    let first = h.transfers(10, &batch);
    assert_eq!(
        first,
        vec![EventResult {
            index: 1,
            result: TR::OverflowsDebitsPending
        }]
    );
    let again = h.transfers(20, &batch);
    assert_eq!(
        again,
        vec![
            EventResult {
                index: 0,
                result: TR::Exists
            },
            EventResult {
                index: 1,
                result: TR::IdAlreadyFailed
            },
            EventResult {
                index: 2,
                result: TR::Exists
            }
        ]
    );
    assert!(
        h.ledger.transfer(11).is_none(),
        "the resubmission must not create transfer 11"
    );
}

/// docs/ledger.md, "Transient results": an event rolled back with `linked_event_failed`
/// left no trace, so a retry evaluates it afresh, against a state the rest of its batch
/// changed; it can then fail transiently and burn its id. The records do not change.
#[test]
fn a_rolled_back_chain_member_is_evaluated_afresh_on_retry() {
    let mut h = Harness::new(1, Vec::new(), None);
    h.accounts(
        1,
        &[
            eur(1, AccountFlags::empty()),
            eur(2, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
        ],
    );
    h.transfers(10, &[move_eur(1, 1, 2, 100, TransferFlags::empty())]);
    let batch = [
        move_eur(2, 2, 1, 100, TransferFlags::LINKED), // would succeed, rolled back
        move_eur(3, 2, 1, 0, TransferFlags::empty()),  // amount_must_not_be_zero
        move_eur(4, 2, 1, 100, TransferFlags::empty()), // spends the 100
    ];
    let first = h.transfers(20, &batch);
    assert_eq!(
        first,
        vec![
            EventResult {
                index: 0,
                result: TR::LinkedEventFailed
            },
            EventResult {
                index: 1,
                result: TR::AmountMustNotBeZero
            },
        ]
    );
    let burnt = h.ledger.stats().burnt_ids;
    let again = h.transfers(30, &batch);
    assert_eq!(
        again[0],
        EventResult {
            index: 0,
            result: TR::ExceedsCredits
        }
    );
    assert_eq!(
        h.ledger.stats().burnt_ids,
        burnt + 1,
        "the retry burnt transfer id 2"
    );
    let third = h.transfers(40, &batch);
    assert_eq!(
        third[0],
        EventResult {
            index: 0,
            result: TR::IdAlreadyFailed
        }
    );
}

/// docs/ledger.md, "Reads": an expiry changes the balances but creates no transfer, so
/// its history entry is listed only for a filter that selects by time alone: direction
/// both, no code, no user data (Debits ∪ Credits ≠ Both for expiries).
#[test]
fn expiry_history_entries_match_only_time_filters() {
    let mut h = Harness::new(1, Vec::new(), None);
    h.accounts(
        1,
        &[eur(1, AccountFlags::HISTORY), eur(2, AccountFlags::empty())],
    );
    h.transfers(
        10,
        &[Transfer {
            timeout: 1,
            ..move_eur(1, 1, 2, 10, TransferFlags::PENDING)
        }],
    );
    h.expire(10 + NS);
    let mut filter = AccountFilter::new(1, 10);
    let stamps = |h: &Harness, f: &AccountFilter| -> Vec<u64> {
        h.ledger
            .get_account_balances(f)
            .unwrap()
            .iter()
            .map(|b| b.timestamp)
            .collect()
    };
    assert_eq!(stamps(&h, &filter), vec![10, 10 + NS]);
    filter.direction = Direction::Debits;
    assert_eq!(stamps(&h, &filter), vec![10]);
    filter.direction = Direction::Credits;
    assert_eq!(stamps(&h, &filter), Vec::<u64>::new());
}
