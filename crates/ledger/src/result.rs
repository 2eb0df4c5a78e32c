//! Result codes: one per way an event can fail. Codes and names are stable: they are
//! part of every wire format and of the replicated log.

/// Defines a result-code enum with a stable number, a wire name and a sentence per code.
macro_rules! result_codes {
    (
        $(#[$meta:meta])*
        $name:ident { $( $variant:ident = $code:literal, $text:literal, $sentence:literal; )* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum $name {
            $( #[doc = $sentence] $variant = $code, )*
        }

        impl $name {
            /// Every code, in declaration order.
            pub const ALL: &'static [Self] = &[ $( Self::$variant, )* ];

            /// The stable snake_case name used on the wire.
            pub const fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $text, )* }
            }

            /// A sentence a person understands.
            pub const fn description(self) -> &'static str {
                match self { $( Self::$variant => $sentence, )* }
            }

            /// The stable number of this code.
            pub const fn code(self) -> u32 {
                self as u32
            }

            pub fn from_code(code: u32) -> Option<Self> {
                match code { $( $code => Some(Self::$variant), )* _ => None }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name { $( $text => Some(Self::$variant), )* _ => None }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

result_codes! {
    /// Why an account event was not created.
    CreateAccountResult {
        LinkedEventFailed = 1, "linked_event_failed", "Another event in the same linked chain failed, so this one was not applied.";
        LinkedEventChainOpen = 2, "linked_event_chain_open", "The last event of the batch has the linked flag, so its chain is never closed.";
        TimestampMustBeZero = 3, "timestamp_must_be_zero", "The timestamp is assigned by the ledger and must be zero on input.";
        ReservedFlag = 5, "reserved_flag", "A flag bit that has no meaning yet is set.";
        IdMustNotBeZero = 6, "id_must_not_be_zero", "The account id must not be zero.";
        IdMustNotBeIntMax = 7, "id_must_not_be_int_max", "The account id must not be 2^128-1.";
        FlagsAreMutuallyExclusive = 8, "flags_are_mutually_exclusive", "An account cannot have both debits_must_not_exceed_credits and credits_must_not_exceed_debits.";
        DebitsPendingMustBeZero = 9, "debits_pending_must_be_zero", "A new account must start with zero pending debits.";
        DebitsPostedMustBeZero = 10, "debits_posted_must_be_zero", "A new account must start with zero posted debits.";
        CreditsPendingMustBeZero = 11, "credits_pending_must_be_zero", "A new account must start with zero pending credits.";
        CreditsPostedMustBeZero = 12, "credits_posted_must_be_zero", "A new account must start with zero posted credits.";
        LedgerMustNotBeZero = 13, "ledger_must_not_be_zero", "The ledger (currency or asset) must not be zero.";
        CodeMustNotBeZero = 14, "code_must_not_be_zero", "The account code (its type in the chart of accounts) must not be zero.";
        ExistsWithDifferentFlags = 15, "exists_with_different_flags", "An account with this id already exists with different flags.";
        ExistsWithDifferentUserData128 = 16, "exists_with_different_user_data_128", "An account with this id already exists with a different user_data_128.";
        ExistsWithDifferentUserData64 = 17, "exists_with_different_user_data_64", "An account with this id already exists with a different user_data_64.";
        ExistsWithDifferentUserData32 = 18, "exists_with_different_user_data_32", "An account with this id already exists with a different user_data_32.";
        ExistsWithDifferentLedger = 19, "exists_with_different_ledger", "An account with this id already exists on a different ledger.";
        ExistsWithDifferentCode = 20, "exists_with_different_code", "An account with this id already exists with a different code.";
        Exists = 21, "exists", "This account already exists with exactly these fields; nothing was changed.";
    }
}

result_codes! {
    /// Why a transfer event was not created.
    CreateTransferResult {
        LinkedEventFailed = 1, "linked_event_failed", "Another event in the same linked chain failed, so this one was not applied.";
        LinkedEventChainOpen = 2, "linked_event_chain_open", "The last event of the batch has the linked flag, so its chain is never closed.";
        TimestampMustBeZero = 3, "timestamp_must_be_zero", "The timestamp is assigned by the ledger and must be zero on input.";
        ReservedFlag = 4, "reserved_flag", "A flag bit that has no meaning yet is set.";
        IdMustNotBeZero = 5, "id_must_not_be_zero", "The transfer id must not be zero.";
        IdMustNotBeIntMax = 6, "id_must_not_be_int_max", "The transfer id must not be 2^128-1.";
        FlagsAreMutuallyExclusive = 7, "flags_are_mutually_exclusive", "These flags cannot be combined: post and void exclude each other and every other kind flag.";
        DebitAccountIdMustNotBeZero = 8, "debit_account_id_must_not_be_zero", "The debit account id must not be zero.";
        DebitAccountIdMustNotBeIntMax = 9, "debit_account_id_must_not_be_int_max", "The debit account id must not be 2^128-1.";
        CreditAccountIdMustNotBeZero = 10, "credit_account_id_must_not_be_zero", "The credit account id must not be zero.";
        CreditAccountIdMustNotBeIntMax = 11, "credit_account_id_must_not_be_int_max", "The credit account id must not be 2^128-1.";
        AccountsMustBeDifferent = 12, "accounts_must_be_different", "A transfer cannot debit and credit the same account.";
        PendingIdMustBeZero = 13, "pending_id_must_be_zero", "Only a post or void names a pending transfer; pending_id must be zero here.";
        PendingIdMustNotBeZero = 14, "pending_id_must_not_be_zero", "A post or void must name the pending transfer in pending_id.";
        PendingIdMustNotBeIntMax = 15, "pending_id_must_not_be_int_max", "The pending_id must not be 2^128-1.";
        PendingIdMustBeDifferent = 16, "pending_id_must_be_different", "A post or void cannot name itself as its pending transfer.";
        TimeoutReservedForPendingTransfer = 17, "timeout_reserved_for_pending_transfer", "Only a pending transfer can have a timeout.";
        AmountMustNotBeZero = 18, "amount_must_not_be_zero", "The amount must not be zero.";
        LedgerMustNotBeZero = 19, "ledger_must_not_be_zero", "The ledger (currency or asset) must not be zero.";
        CodeMustNotBeZero = 20, "code_must_not_be_zero", "The transfer code (why the money moved) must not be zero.";
        DebitAccountNotFound = 21, "debit_account_not_found", "The debit account does not exist.";
        CreditAccountNotFound = 22, "credit_account_not_found", "The credit account does not exist.";
        AccountsMustHaveTheSameLedger = 23, "accounts_must_have_the_same_ledger", "The two accounts are on different ledgers (currencies); money cannot move between them directly.";
        TransferMustHaveTheSameLedgerAsAccounts = 24, "transfer_must_have_the_same_ledger_as_accounts", "The transfer's ledger differs from its accounts' ledger.";
        PendingTransferNotFound = 25, "pending_transfer_not_found", "The pending transfer named by pending_id does not exist.";
        PendingTransferNotPending = 26, "pending_transfer_not_pending", "The transfer named by pending_id is not a pending transfer.";
        PendingTransferHasDifferentDebitAccountId = 27, "pending_transfer_has_different_debit_account_id", "The pending transfer has a different debit account.";
        PendingTransferHasDifferentCreditAccountId = 28, "pending_transfer_has_different_credit_account_id", "The pending transfer has a different credit account.";
        PendingTransferHasDifferentLedger = 29, "pending_transfer_has_different_ledger", "The pending transfer is on a different ledger.";
        PendingTransferHasDifferentCode = 30, "pending_transfer_has_different_code", "The pending transfer has a different code.";
        ExceedsPendingTransferAmount = 31, "exceeds_pending_transfer_amount", "The amount is greater than the pending transfer's amount.";
        PendingTransferHasDifferentAmount = 32, "pending_transfer_has_different_amount", "A void must release the full pending amount (pass 0 or the exact amount).";
        PendingTransferAlreadyPosted = 33, "pending_transfer_already_posted", "The pending transfer was already posted.";
        PendingTransferAlreadyVoided = 34, "pending_transfer_already_voided", "The pending transfer was already voided.";
        PendingTransferExpired = 35, "pending_transfer_expired", "The pending transfer expired; its funds were released.";
        ExistsWithDifferentFlags = 36, "exists_with_different_flags", "A transfer with this id already exists with different flags.";
        ExistsWithDifferentDebitAccountId = 37, "exists_with_different_debit_account_id", "A transfer with this id already exists with a different debit account.";
        ExistsWithDifferentCreditAccountId = 38, "exists_with_different_credit_account_id", "A transfer with this id already exists with a different credit account.";
        ExistsWithDifferentAmount = 39, "exists_with_different_amount", "A transfer with this id already exists with a different amount.";
        ExistsWithDifferentPendingId = 40, "exists_with_different_pending_id", "A transfer with this id already exists with a different pending_id.";
        ExistsWithDifferentUserData128 = 41, "exists_with_different_user_data_128", "A transfer with this id already exists with a different user_data_128.";
        ExistsWithDifferentUserData64 = 42, "exists_with_different_user_data_64", "A transfer with this id already exists with a different user_data_64.";
        ExistsWithDifferentUserData32 = 43, "exists_with_different_user_data_32", "A transfer with this id already exists with a different user_data_32.";
        ExistsWithDifferentTimeout = 44, "exists_with_different_timeout", "A transfer with this id already exists with a different timeout.";
        ExistsWithDifferentCode = 45, "exists_with_different_code", "A transfer with this id already exists with a different code.";
        Exists = 46, "exists", "This transfer already exists with exactly these fields; nothing was applied twice.";
        OverflowsDebitsPending = 47, "overflows_debits_pending", "The debit account's pending debits would overflow.";
        OverflowsCreditsPending = 48, "overflows_credits_pending", "The credit account's pending credits would overflow.";
        OverflowsDebitsPosted = 49, "overflows_debits_posted", "The debit account's posted debits would overflow.";
        OverflowsCreditsPosted = 50, "overflows_credits_posted", "The credit account's posted credits would overflow.";
        OverflowsDebits = 51, "overflows_debits", "The debit account's pending plus posted debits would overflow.";
        OverflowsCredits = 52, "overflows_credits", "The credit account's pending plus posted credits would overflow.";
        OverflowsTimeout = 53, "overflows_timeout", "The timeout reaches beyond the ledger's time range.";
        ExceedsCredits = 54, "exceeds_credits", "The debit account has insufficient funds: its debits would exceed its credits.";
        ExceedsDebits = 55, "exceeds_debits", "The credit account's credits would exceed its debits, which its flags forbid.";
        ClosingTransferMustBePending = 64, "closing_transfer_must_be_pending", "A closing transfer must be pending, so that voiding it can reopen the account.";
        DebitAccountAlreadyClosed = 65, "debit_account_already_closed", "The debit account is closed.";
        CreditAccountAlreadyClosed = 66, "credit_account_already_closed", "The credit account is closed.";
        ExistsWithDifferentLedger = 67, "exists_with_different_ledger", "A transfer with this id already exists on a different ledger.";
        IdAlreadyFailed = 68, "id_already_failed", "An earlier transfer with this id failed on a condition that could change; use a new id to try again.";
        DeclinedByRisk = 69, "declined_by_risk", "The bank's fraud checks declined this transfer; nothing was moved.";
        DebitAccountFrozen = 70, "debit_account_frozen", "The debit account is frozen for a fraud review and cannot send money.";
        PendingTransferHeldForReview = 71, "pending_transfer_held_for_review", "The pending transfer is held for a fraud review; only an analyst's decision posts or voids it.";
        RiskCheckUnavailable = 72, "risk_check_unavailable", "The fraud checks could not run and this branch refuses transfers without them; retry later.";
    }
}

impl CreateTransferResult {
    /// A transient result depends on the ledger's state at the time (and could succeed
    /// later); the first one burns the id so that a retry returns the first outcome.
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            Self::DebitAccountNotFound
                | Self::CreditAccountNotFound
                | Self::PendingTransferNotFound
                | Self::ExceedsCredits
                | Self::ExceedsDebits
                | Self::DebitAccountAlreadyClosed
                | Self::CreditAccountAlreadyClosed
                | Self::OverflowsDebitsPending
                | Self::OverflowsCreditsPending
                | Self::OverflowsDebitsPosted
                | Self::OverflowsCreditsPosted
                | Self::OverflowsDebits
                | Self::OverflowsCredits
        )
    }
}

/// The outcome of one failed event of a batch: its index in the batch and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventResult<R> {
    pub index: u32,
    pub result: R,
}

pub type CreateAccountsResult = EventResult<CreateAccountResult>;
pub type CreateTransfersResult = EventResult<CreateTransferResult>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_and_names_are_unique_and_round_trip() {
        let mut codes = HashSet::new();
        let mut names = HashSet::new();
        for result in CreateTransferResult::ALL {
            assert!(
                codes.insert(result.code()),
                "duplicate code {}",
                result.code()
            );
            assert!(names.insert(result.as_str()));
            assert_eq!(
                CreateTransferResult::from_code(result.code()),
                Some(*result)
            );
            assert_eq!(
                CreateTransferResult::from_name(result.as_str()),
                Some(*result)
            );
            assert!(result.description().ends_with('.'));
        }
        let mut codes = HashSet::new();
        for result in CreateAccountResult::ALL {
            assert!(codes.insert(result.code()));
            assert_eq!(
                CreateAccountResult::from_name(result.as_str()),
                Some(*result)
            );
        }
    }
}
