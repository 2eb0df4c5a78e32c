//! One cross-branch transfer: its description and the four ledger events the protocol
//! sends for it, all derived from the description alone.

use corebank_account_number::{BranchCode, branch_of_account_id};
use corebank_banking::{clearing_account_id, clearing_counterparty, transfer_code};
use corebank_ledger::{Transfer, TransferFlags};
use corebank_money::Currency;

/// `user_data_64` of both legs: the version of this protocol. A pending
/// `CROSS_BRANCH_OUT` transfer without it is not a saga the driver touches.
pub const SAGA_PROTOCOL_V1: u64 = 0x636c_6561_7231; // "clear1"

/// How many post ids a saga has. A post fails only if an account of the reservation was
/// closed after it (or, in theory, a balance would overflow); such a failure burns its
/// id, so the next attempt uses the next id. Voids cannot fail that way: one void id.
pub const POST_ATTEMPTS_MAX: u8 = 8;

/// Why a saga cannot be described.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SagaError {
    #[error("the transfer id must not be 0 or 2^128-1")]
    IdInvalid,
    #[error("the amount must not be zero")]
    AmountZero,
    #[error("account id {account} is not an account number of any branch")]
    AccountNotRoutable { account: u128 },
    #[error(
        "both accounts belong to branch {branch}: a transfer inside one branch is not a cross-branch transfer"
    )]
    SameBranch { branch: BranchCode },
}

impl SagaError {
    /// The stable snake_case code of this error.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::IdInvalid => "id_invalid",
            Self::AmountZero => "amount_zero",
            Self::AccountNotRoutable { .. } => "account_not_routable",
            Self::SameBranch { .. } => "same_branch",
        }
    }
}

/// A transfer of `amount` from customer account `debit_account_id` at the source branch
/// to customer account `credit_account_id` at the destination branch, under transfer
/// id `id` (the same id in both ledgers).
///
/// The branches are read from the account ids, so a saga is always routable; fields are
/// private so that every `Saga` passed [`Saga::new`]'s checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Saga {
    id: u128,
    debit_account_id: u128,
    credit_account_id: u128,
    amount: u128,
    currency: Currency,
    source: BranchCode,
    destination: BranchCode,
}

impl Saga {
    /// Describes a cross-branch transfer.
    ///
    /// `id` should be derived from the customer's idempotency key at the source branch
    /// (`corebank_banking::transfer_id(source, Operation::Transfer, key)`), so that a
    /// retry is the same saga.
    pub fn new(
        id: u128,
        debit_account_id: u128,
        credit_account_id: u128,
        amount: u128,
        currency: Currency,
    ) -> Result<Self, SagaError> {
        if id == 0 || id == u128::MAX {
            return Err(SagaError::IdInvalid);
        }
        if amount == 0 {
            return Err(SagaError::AmountZero);
        }
        let route = |account: u128| {
            branch_of_account_id(account)
                .filter(|_| account != 0)
                .ok_or(SagaError::AccountNotRoutable { account })
        };
        let source = route(debit_account_id)?;
        let destination = route(credit_account_id)?;
        if source == destination {
            return Err(SagaError::SameBranch { branch: source });
        }
        Ok(Self {
            id,
            debit_account_id,
            credit_account_id,
            amount,
            currency,
            source,
            destination,
        })
    }

    pub const fn id(&self) -> u128 {
        self.id
    }

    /// The payer's account, at the source branch.
    pub const fn debit_account_id(&self) -> u128 {
        self.debit_account_id
    }

    /// The beneficiary's account, at the destination branch.
    pub const fn credit_account_id(&self) -> u128 {
        self.credit_account_id
    }

    pub const fn amount(&self) -> u128 {
        self.amount
    }

    pub const fn currency(&self) -> Currency {
        self.currency
    }

    pub const fn source(&self) -> BranchCode {
        self.source
    }

    pub const fn destination(&self) -> BranchCode {
        self.destination
    }

    /// The source branch's clearing account for the destination (credited by step 1).
    pub fn source_clearing_account_id(&self) -> u128 {
        clearing_account_id(self.source, self.destination, self.currency)
    }

    /// The destination branch's clearing account for the source (debited by step 2).
    pub fn destination_clearing_account_id(&self) -> u128 {
        clearing_account_id(self.destination, self.source, self.currency)
    }

    /// Step 1, at the source: reserve the funds. Pending, never expiring (the
    /// coordinator decides, not a clock), `user_data_128` = the beneficiary so that the
    /// saga can be resumed from the source's ledger alone.
    pub fn reservation(&self) -> Transfer {
        Transfer {
            id: self.id,
            debit_account_id: self.debit_account_id,
            credit_account_id: self.source_clearing_account_id(),
            amount: self.amount,
            pending_id: 0,
            user_data_128: self.credit_account_id,
            user_data_64: SAGA_PROTOCOL_V1,
            user_data_32: u32::from(self.destination.get()),
            timeout: 0,
            ledger: self.currency.numeric,
            code: transfer_code::CROSS_BRANCH_OUT,
            flags: TransferFlags::PENDING,
            timestamp: 0,
        }
    }

    /// Step 2, at the destination: the same id, posted at once, `user_data_128` = the
    /// payer.
    pub fn delivery(&self) -> Transfer {
        Transfer {
            id: self.id,
            debit_account_id: self.destination_clearing_account_id(),
            credit_account_id: self.credit_account_id,
            amount: self.amount,
            pending_id: 0,
            user_data_128: self.debit_account_id,
            user_data_64: SAGA_PROTOCOL_V1,
            user_data_32: u32::from(self.source.get()),
            timeout: 0,
            ledger: self.currency.numeric,
            code: transfer_code::CROSS_BRANCH_IN,
            flags: TransferFlags::empty(),
            timestamp: 0,
        }
    }

    /// Step 3 after a delivery, at the source: post the reservation in full. Code and
    /// user data are 0, so the post takes the reservation's.
    pub fn post(&self, attempt: u8) -> Transfer {
        Transfer {
            id: post_id(self.id, attempt),
            pending_id: self.id,
            flags: TransferFlags::POST_PENDING_TRANSFER,
            ..Transfer::default()
        }
    }

    /// Step 3 after a refusal, at the source: void the reservation; the funds return.
    pub fn void(&self) -> Transfer {
        Transfer {
            id: void_id(self.id),
            pending_id: self.id,
            flags: TransferFlags::VOID_PENDING_TRANSFER,
            ..Transfer::default()
        }
    }

    /// The fence, at the destination: an event under the saga's id that can only fail.
    /// It posts a pending transfer that never exists (its id is a hash no one else
    /// derives), so the ledger answers `pending_transfer_not_found`, a transient result
    /// that burns the id: the delivery can never be applied afterwards. If the delivery
    /// was applied first, the answer is `exists_with_different_flags` instead. Either
    /// way the destination's ledger has decided the saga for good.
    pub fn fence(&self) -> Transfer {
        Transfer {
            id: self.id,
            pending_id: fence_target_id(self.id),
            flags: TransferFlags::POST_PENDING_TRANSFER,
            ..Transfer::default()
        }
    }

    /// Reads a saga back from its reservation as stored in the `source` ledger; `None`
    /// when the transfer is not a reservation of this protocol.
    pub fn from_reservation(source: BranchCode, stored: &Transfer) -> Option<Self> {
        if stored.code != transfer_code::CROSS_BRANCH_OUT
            || stored.user_data_64 != SAGA_PROTOCOL_V1
            || stored.flags != TransferFlags::PENDING
        {
            return None;
        }
        let (destination, currency) = clearing_counterparty(stored.credit_account_id)?;
        let saga = Self::new(
            stored.id,
            stored.debit_account_id,
            stored.user_data_128,
            stored.amount,
            currency,
        )
        .ok()?;
        let expected = saga.reservation();
        let same = saga.source == source
            && saga.destination == destination
            && Transfer {
                timestamp: stored.timestamp,
                ..expected
            } == *stored;
        same.then_some(saga)
    }

    /// Reads a saga back from its delivery as stored in the `destination` ledger;
    /// `None` when the transfer is not a delivery of this protocol.
    pub fn from_delivery(destination: BranchCode, stored: &Transfer) -> Option<Self> {
        if stored.code != transfer_code::CROSS_BRANCH_IN || stored.user_data_64 != SAGA_PROTOCOL_V1
        {
            return None;
        }
        let (source, currency) = clearing_counterparty(stored.debit_account_id)?;
        let saga = Self::new(
            stored.id,
            stored.user_data_128,
            stored.credit_account_id,
            stored.amount,
            currency,
        )
        .ok()?;
        let same =
            saga.source == source && saga.destination == destination && saga.is_delivery(stored);
        same.then_some(saga)
    }

    /// Is `stored` (a record of the destination's ledger) this saga's delivery?
    pub fn is_delivery(&self, stored: &Transfer) -> bool {
        Transfer {
            timestamp: stored.timestamp,
            ..self.delivery()
        } == *stored
    }
}

/// The id of attempt `attempt` to post saga `saga_id`.
pub fn post_id(saga_id: u128, attempt: u8) -> u128 {
    derived_id(b"post", saga_id, attempt)
}

/// The id of the void of saga `saga_id`.
pub fn void_id(saga_id: u128) -> u128 {
    derived_id(b"void", saga_id, 0)
}

/// The pending transfer a fence names: a hash no one else derives, so it never exists.
fn fence_target_id(saga_id: u128) -> u128 {
    derived_id(b"fence-target", saga_id, 0)
}

fn derived_id(step: &[u8], saga_id: u128, attempt: u8) -> u128 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"corebank/clearing/v1\0");
    hasher.update(step);
    hasher.update(b"\0");
    hasher.update(&saga_id.to_le_bytes());
    hasher.update(&[attempt]);
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    // 0 and 2^128-1 are not valid ids; a hash lands there with probability 2^-127.
    match u128::from_le_bytes(bytes) {
        0 => 1,
        u128::MAX => u128::MAX - 1,
        id => id,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use corebank_account_number::account_id;

    fn branch(code: u16) -> BranchCode {
        BranchCode::new(code).unwrap()
    }

    fn saga() -> Saga {
        let a = account_id(branch(1), 1_000).unwrap();
        let b = account_id(branch(2), 1_000).unwrap();
        Saga::new(42, a, b, 500, Currency::EUR).unwrap()
    }

    #[test]
    fn legs_mirror_each_other_through_the_clearing_accounts() {
        let saga = saga();
        let out = saga.reservation();
        let into = saga.delivery();
        assert_eq!((out.id, into.id), (42, 42));
        assert_eq!(out.credit_account_id, saga.source_clearing_account_id());
        assert_eq!(
            into.debit_account_id,
            saga.destination_clearing_account_id()
        );
        assert_eq!(
            clearing_counterparty(out.credit_account_id),
            Some((branch(2), Currency::EUR))
        );
        assert_eq!(
            clearing_counterparty(into.debit_account_id),
            Some((branch(1), Currency::EUR))
        );
        assert_eq!(out.user_data_128, saga.credit_account_id());
        assert_eq!(into.user_data_128, saga.debit_account_id());
        assert_eq!((out.flags, out.timeout), (TransferFlags::PENDING, 0));
        assert_eq!(saga.post(0).pending_id, 42);
        assert_eq!(saga.void().pending_id, 42);
    }

    #[test]
    fn derived_ids_are_distinct_and_stable() {
        let mut ids: Vec<u128> = (0..POST_ATTEMPTS_MAX).map(|n| post_id(42, n)).collect();
        ids.push(void_id(42));
        ids.push(fence_target_id(42));
        ids.push(post_id(43, 0));
        ids.push(42);
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count);
        assert_eq!(post_id(42, 0), post_id(42, 0));
    }

    #[test]
    fn a_saga_reads_back_from_either_leg_and_nothing_else() {
        let saga = saga();
        let stored = Transfer {
            timestamp: 77,
            ..saga.reservation()
        };
        assert_eq!(Saga::from_reservation(branch(1), &stored), Some(saga));
        assert_eq!(Saga::from_reservation(branch(2), &stored), None);
        let stored_in = Transfer {
            timestamp: 78,
            ..saga.delivery()
        };
        assert_eq!(Saga::from_delivery(branch(2), &stored_in), Some(saga));
        assert_eq!(Saga::from_delivery(branch(1), &stored_in), None);
        for tampered in [
            Transfer {
                user_data_64: 0,
                ..stored
            },
            Transfer {
                timeout: 60,
                ..stored
            },
            Transfer {
                user_data_32: 3,
                ..stored
            },
            Transfer {
                ledger: Currency::USD.numeric,
                ..stored
            },
        ] {
            assert_eq!(Saga::from_reservation(branch(1), &tampered), None);
        }
    }

    #[test]
    fn invalid_sagas_are_refused() {
        let a = account_id(branch(1), 1_000).unwrap();
        let a2 = account_id(branch(1), 1_001).unwrap();
        let b = account_id(branch(2), 1_000).unwrap();
        let code = |r: Result<Saga, SagaError>| r.unwrap_err().code();
        assert_eq!(code(Saga::new(0, a, b, 1, Currency::EUR)), "id_invalid");
        assert_eq!(code(Saga::new(1, a, b, 0, Currency::EUR)), "amount_zero");
        assert_eq!(code(Saga::new(1, a, a2, 1, Currency::EUR)), "same_branch");
        assert_eq!(
            code(Saga::new(1, a, u128::MAX - 1, 1, Currency::EUR)),
            "account_not_routable"
        );
        assert_eq!(
            code(Saga::new(1, 0, b, 1, Currency::EUR)),
            "account_not_routable"
        );
    }
}
