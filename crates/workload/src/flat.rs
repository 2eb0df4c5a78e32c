//! A flat bank for throughput benchmarks: one currency, one funding account, customer
//! accounts, and uniformly random payments between them.

use corebank_ledger::{Account, AccountFlags, Transfer};

use crate::bank::{
    Currency, FIRST_CUSTOMER_SERIAL, InternalAccount, account_code, account_id, transfer_code,
};
use crate::rng::Rng;

/// The branch code of the flat bank.
const BRANCH: u16 = 1;

/// A flat bank: a cash account that funds everyone, and `n` customer accounts at one
/// branch, every other one unable to go overdrawn (`debits_must_not_exceed_credits`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlatBank {
    pub currency: Currency,
    /// The cash account the funding comes from.
    pub funding: u128,
    /// Customer account ids, in creation order.
    pub customers: Vec<u128>,
}

impl FlatBank {
    pub fn new(customers: u32, currency: Currency) -> Self {
        let funding = InternalAccount::Cash.id(BRANCH, 0).unwrap_or(1);
        let customers = (0..u64::from(customers))
            .filter_map(|i| account_id(BRANCH, FIRST_CUSTOMER_SERIAL + i))
            .collect();
        Self {
            currency,
            funding,
            customers,
        }
    }

    /// The funding account, then the customers (even positions cannot be overdrawn).
    pub fn accounts(&self) -> Vec<Account> {
        let mut accounts = Vec::with_capacity(self.customers.len() + 1);
        accounts.push(Account {
            id: self.funding,
            ledger: self.currency.numeric,
            code: account_code::CASH,
            ..Account::default()
        });
        for (i, id) in self.customers.iter().enumerate() {
            let flags = if i % 2 == 0 {
                AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
            } else {
                AccountFlags::empty()
            };
            accounts.push(Account {
                id: *id,
                ledger: self.currency.numeric,
                code: account_code::CURRENT,
                flags,
                ..Account::default()
            });
        }
        accounts
    }

    /// One deposit of `amount` from the funding account to every customer, with ids
    /// from `first_id` up.
    pub fn funding_transfers(&self, amount: u128, first_id: u128) -> Vec<Transfer> {
        self.customers
            .iter()
            .zip(first_id..)
            .map(|(customer, id)| Transfer {
                id,
                debit_account_id: self.funding,
                credit_account_id: *customer,
                amount,
                ledger: self.currency.numeric,
                code: transfer_code::DEPOSIT,
                ..Transfer::default()
            })
            .collect()
    }

    /// `count` payments between uniformly random pairs of distinct customers, with
    /// amounts uniform in `1..=max_amount` and ids from `first_id` up. Empty when there
    /// are fewer than two customers.
    pub fn random_transfers(
        &self,
        seed: u64,
        count: usize,
        first_id: u128,
        max_amount: u128,
    ) -> Vec<Transfer> {
        let n = self.customers.len();
        if n < 2 {
            return Vec::new();
        }
        let mut rng = Rng::new(seed);
        (first_id..)
            .take(count)
            .map(|id| {
                let debit = rng.index(n);
                // Any of the other n - 1 accounts.
                let credit = (debit + 1 + rng.index(n - 1)) % n;
                Transfer {
                    id,
                    debit_account_id: self.customers[debit],
                    credit_account_id: self.customers[credit],
                    amount: rng.amount_between(1, max_amount.max(1)),
                    ledger: self.currency.numeric,
                    code: transfer_code::PAYMENT,
                    ..Transfer::default()
                }
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use corebank_ledger::Ledger;

    #[test]
    fn funded_flat_bank_takes_random_payments() {
        let bank = FlatBank::new(100, Currency::EUR);
        let mut ledger = Ledger::new();
        assert!(
            ledger
                .create_accounts(1, &bank.accounts())
                .unwrap()
                .is_empty()
        );
        let funding = bank.funding_transfers(1_000_000, 1);
        assert!(
            ledger
                .create_transfers(ledger.last_timestamp() + 1, &funding)
                .unwrap()
                .is_empty()
        );
        let transfers = bank.random_transfers(3, 5_000, 1_000, 10_000);
        assert_eq!(transfers, bank.random_transfers(3, 5_000, 1_000, 10_000));
        assert_eq!(transfers.len(), 5_000);
        for t in &transfers {
            assert_ne!(t.debit_account_id, t.credit_account_id);
            assert!((1..=10_000).contains(&t.amount));
        }
        for chunk in transfers.chunks(1_000) {
            let results = ledger
                .create_transfers(ledger.last_timestamp() + 1, chunk)
                .unwrap();
            assert!(results.is_empty(), "{results:?}");
        }
        ledger.check_invariants().unwrap();
        let guarded = ledger
            .accounts()
            .iter()
            .filter(|a| {
                a.flags
                    .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            })
            .count();
        assert_eq!(guarded, 50);
        assert!(
            FlatBank::new(1, Currency::EUR)
                .random_transfers(1, 10, 1, 5)
                .is_empty()
        );
    }
}
