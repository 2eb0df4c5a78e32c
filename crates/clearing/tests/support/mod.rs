//! A small bank of in-memory branches for the tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use corebank_account_number::{BranchCode, account_id};
use corebank_banking::{Branch, InternalAccount, Product, customer_tag};
use corebank_clearing::{
    Clock, GatherOptions, MemoryBranch, ReconcileConfig, ReconciliationReport, ResumeOptions,
    ResumeReport, gather, reconcile, resume,
};
use corebank_ledger::{Account, Transfer};
use corebank_money::Currency;

/// One second in the ledgers' nanoseconds.
pub const S: u64 = 1_000_000_000;
/// The saga timeout the tests reconcile with.
pub const TIMEOUT_NS: u64 = 60 * S;

pub fn code(branch: u16) -> BranchCode {
    BranchCode::new(branch).unwrap()
}

pub struct Bank {
    pub clock: Clock,
    pub branches: Vec<MemoryBranch>,
    next_deposit: std::cell::Cell<u128>,
}

impl Bank {
    /// Branches with their internal accounts and clearing accounts for each other.
    pub fn new(codes: &[u16]) -> Self {
        let clock = Clock::new(1_000 * S);
        let all: Vec<BranchCode> = codes.iter().map(|c| code(*c)).collect();
        let branches = all
            .iter()
            .map(|branch| {
                let port = MemoryBranch::new(*branch, clock.clone());
                let bank_branch = Branch::new(*branch);
                assert!(
                    port.create_accounts(&bank_branch.internal_accounts())
                        .is_empty()
                );
                assert!(
                    port.create_accounts(&bank_branch.clearing_accounts(&all))
                        .is_empty()
                );
                port
            })
            .collect();
        Self {
            clock,
            branches,
            next_deposit: std::cell::Cell::new(1),
        }
    }

    pub fn port(&self, branch: u16) -> &MemoryBranch {
        self.branches
            .iter()
            .find(|b| corebank_clearing::BranchPort::branch(*b) == code(branch))
            .unwrap()
    }

    pub fn route<'a>(&'a self) -> impl Fn(BranchCode) -> Option<&'a MemoryBranch> + 'a {
        |wanted| {
            self.branches
                .iter()
                .find(|b| corebank_clearing::BranchPort::branch(*b) == wanted)
        }
    }

    /// The id of customer `serial` at `branch` (not necessarily opened).
    pub fn customer_id(&self, branch: u16, serial: u64) -> u128 {
        account_id(code(branch), serial).unwrap()
    }

    /// Opens a current account and pays `amount` into it in cash.
    pub fn open(&self, branch: u16, serial: u64, currency: Currency, amount: u128) -> u128 {
        let bank_branch = Branch::new(code(branch));
        let account = bank_branch
            .customer_account(
                serial,
                customer_tag(&format!("c{branch}-{serial}")).unwrap(),
                currency,
                Product::Current,
            )
            .unwrap();
        assert!(self.port(branch).create_accounts(&[account]).is_empty());
        if amount > 0 {
            let id = self.next_deposit.get();
            self.next_deposit.set(id + 1);
            let deposit = bank_branch.deposit(u128::MAX - 1_000_000 - id, &account, amount);
            assert!(self.port(branch).apply(&[deposit]).is_empty());
        }
        account.id
    }

    pub fn account(&self, id: u128) -> Account {
        let branch = corebank_account_number::branch_of_account_id(id).unwrap();
        self.port(branch.get())
            .with_ledger(|l| l.account(id))
            .unwrap()
    }

    /// Posted credits minus posted debits of a customer account.
    pub fn balance(&self, id: u128) -> u128 {
        let account = self.account(id);
        account.credits_posted - account.debits_posted
    }

    pub fn transfer(&self, branch: u16, id: u128) -> Option<Transfer> {
        self.port(branch).with_ledger(|l| l.transfer(id))
    }

    pub fn cash_id(&self, branch: u16, currency: Currency) -> u128 {
        Branch::new(code(branch)).internal_account_id(InternalAccount::Cash, currency)
    }

    /// Resumes every branch once.
    pub async fn resume_all(&self) -> Vec<ResumeReport> {
        let mut reports = Vec::new();
        for branch in &self.branches {
            reports.push(
                resume(branch, self.route(), &ResumeOptions::default())
                    .await
                    .unwrap(),
            );
        }
        reports
    }

    pub async fn reconcile(&self) -> ReconciliationReport {
        let ports: Vec<&MemoryBranch> = self.branches.iter().collect();
        let input = gather(&ports, &GatherOptions::at(self.clock.now_ns()))
            .await
            .unwrap();
        reconcile(
            &input,
            &ReconcileConfig {
                saga_timeout_ns: TIMEOUT_NS,
            },
        )
    }

    pub fn heal(&self) {
        for branch in &self.branches {
            branch.heal();
        }
    }

    /// Every ledger's own invariants hold.
    pub fn check_ledgers(&self) {
        for branch in &self.branches {
            branch.with_ledger(|l| l.check_invariants()).unwrap();
        }
    }
}
