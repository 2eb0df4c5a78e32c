//! An in-memory branch: a [`Ledger`] behind a lock, a shared fake clock, and faults on
//! demand (for tests, simulations and single-process demos).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use corebank_account_number::BranchCode;
use corebank_ledger::{
    Account, CreateAccountsResult, CreateTransfersResult, Ledger, QueryFilter, Transfer,
};

use crate::port::{BranchPort, PortError};

/// A fake clock in nanoseconds, shared by the branches of a test.
#[derive(Clone, Debug, Default)]
pub struct Clock(Arc<AtomicU64>);

impl Clock {
    pub fn new(now_ns: u64) -> Self {
        Self(Arc::new(AtomicU64::new(now_ns)))
    }

    pub fn now_ns(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn advance_ns(&self, ns: u64) {
        self.0.fetch_add(ns, Ordering::SeqCst);
    }
}

/// What a failing call does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The request is lost: nothing applied, the caller sees `Unavailable`.
    Unavailable,
    /// The request is applied but the reply is lost: the caller sees `Unavailable`.
    /// (For a read, the same as `Unavailable`.)
    ReplyLost,
    /// The branch refuses the request as a whole: nothing applied, `Rejected`.
    Rejected,
}

#[derive(Debug, Default)]
struct State {
    ledger: Ledger,
    /// Per coming call, in order: its fault, if any.
    schedule: VecDeque<Option<Fault>>,
    /// Every call fails this way while set (a partition, a crashed branch).
    down: Option<Fault>,
    calls: u64,
}

/// One branch in memory, with its ledger and faults on demand.
#[derive(Debug)]
pub struct MemoryBranch {
    branch: BranchCode,
    clock: Clock,
    state: Mutex<State>,
}

impl MemoryBranch {
    pub fn new(branch: BranchCode, clock: Clock) -> Self {
        Self {
            branch,
            clock,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent ledger (it validates
        // before it writes); keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates accounts directly (set-up; no faults).
    pub fn create_accounts(&self, accounts: &[Account]) -> Vec<CreateAccountsResult> {
        let mut state = self.state();
        let timestamp = self.next_timestamp(&state.ledger);
        state
            .ledger
            .create_accounts(timestamp, accounts)
            .unwrap_or_else(|error| panic!("set-up batch refused: {error}"))
    }

    /// Applies transfers directly, bypassing faults (set-up, or a test that plays
    /// someone acting outside the protocol).
    pub fn apply(&self, transfers: &[Transfer]) -> Vec<CreateTransfersResult> {
        let mut state = self.state();
        let timestamp = self.next_timestamp(&state.ledger);
        state
            .ledger
            .create_transfers(timestamp, transfers)
            .unwrap_or_else(|error| panic!("direct batch refused: {error}"))
    }

    /// Reads the ledger.
    pub fn with_ledger<R>(&self, read: impl FnOnce(&Ledger) -> R) -> R {
        read(&self.state().ledger)
    }

    /// The next calls fail as listed (`None`: that call succeeds), then calls succeed.
    pub fn schedule(&self, faults: impl IntoIterator<Item = Option<Fault>>) {
        self.state().schedule.extend(faults);
    }

    /// The next call fails with `fault`.
    pub fn fail_next(&self, fault: Fault) {
        self.schedule([Some(fault)]);
    }

    /// Every call fails with `fault` until `heal` (a partition or a crash).
    pub fn take_down(&self, fault: Fault) {
        self.state().down = Some(fault);
    }

    /// Ends `take_down` and drops any scheduled fault.
    pub fn heal(&self) {
        let mut state = self.state();
        state.down = None;
        state.schedule.clear();
    }

    /// Calls made through the port so far.
    pub fn calls(&self) -> u64 {
        self.state().calls
    }

    fn next_timestamp(&self, ledger: &Ledger) -> u64 {
        self.clock.now_ns().max(ledger.last_timestamp() + 1)
    }

    /// The fault of the call being made, if any.
    fn fault(&self, state: &mut State) -> Option<Fault> {
        state.calls += 1;
        let scheduled = state.schedule.pop_front().flatten();
        state.down.or(scheduled)
    }

    fn fail(&self, fault: Fault) -> PortError {
        match fault {
            Fault::Unavailable | Fault::ReplyLost => {
                PortError::unavailable(format!("branch {} does not answer", self.branch))
            }
            Fault::Rejected => PortError::rejected(format!("branch {} refuses", self.branch)),
        }
    }

    /// A read through the port.
    fn read<R>(&self, read: impl FnOnce(&Ledger) -> Result<R, String>) -> Result<R, PortError> {
        let mut state = self.state();
        if let Some(fault) = self.fault(&mut state) {
            return Err(self.fail(fault));
        }
        read(&state.ledger).map_err(PortError::rejected)
    }
}

impl BranchPort for MemoryBranch {
    fn branch(&self) -> BranchCode {
        self.branch
    }

    async fn create_transfers(
        &self,
        transfers: Vec<Transfer>,
    ) -> Result<Vec<CreateTransfersResult>, PortError> {
        let mut state = self.state();
        let fault = self.fault(&mut state);
        if let Some(fault @ (Fault::Unavailable | Fault::Rejected)) = fault {
            return Err(self.fail(fault));
        }
        let timestamp = self.next_timestamp(&state.ledger);
        let results = state
            .ledger
            .create_transfers(timestamp, &transfers)
            .map_err(|error| PortError::rejected(error.to_string()))?;
        match fault {
            Some(fault) => Err(self.fail(fault)),
            None => Ok(results),
        }
    }

    async fn lookup_transfers(&self, ids: Vec<u128>) -> Result<Vec<Transfer>, PortError> {
        self.read(|ledger| ledger.lookup_transfers(&ids).map_err(|e| e.to_string()))
    }

    async fn lookup_accounts(&self, ids: Vec<u128>) -> Result<Vec<Account>, PortError> {
        self.read(|ledger| ledger.lookup_accounts(&ids).map_err(|e| e.to_string()))
    }

    async fn query_transfers(&self, filter: QueryFilter) -> Result<Vec<Transfer>, PortError> {
        self.read(|ledger| ledger.query_transfers(&filter).map_err(|e| e.to_string()))
    }

    async fn query_accounts(&self, filter: QueryFilter) -> Result<Vec<Account>, PortError> {
        self.read(|ledger| ledger.query_accounts(&filter).map_err(|e| e.to_string()))
    }
}
