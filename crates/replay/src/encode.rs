//! Ledger records → JSON: u128 values as decimal strings, flags as name arrays.

use corebank_ledger::{Account, AccountBalance, Transfer};
use serde_json::{Value, json};

pub fn account(account: &Account) -> Value {
    json!({
        "id": account.id.to_string(),
        "debits_pending": account.debits_pending.to_string(),
        "debits_posted": account.debits_posted.to_string(),
        "credits_pending": account.credits_pending.to_string(),
        "credits_posted": account.credits_posted.to_string(),
        "user_data_128": account.user_data_128.to_string(),
        "user_data_64": account.user_data_64,
        "user_data_32": account.user_data_32,
        "ledger": account.ledger,
        "code": account.code,
        "flags": account.flags.names().collect::<Vec<_>>(),
        "timestamp": account.timestamp,
    })
}

pub fn transfer(transfer: &Transfer) -> Value {
    json!({
        "id": transfer.id.to_string(),
        "debit_account_id": transfer.debit_account_id.to_string(),
        "credit_account_id": transfer.credit_account_id.to_string(),
        "amount": transfer.amount.to_string(),
        "pending_id": transfer.pending_id.to_string(),
        "user_data_128": transfer.user_data_128.to_string(),
        "user_data_64": transfer.user_data_64,
        "user_data_32": transfer.user_data_32,
        "timeout": transfer.timeout,
        "ledger": transfer.ledger,
        "code": transfer.code,
        "flags": transfer.flags.names().collect::<Vec<_>>(),
        "timestamp": transfer.timestamp,
    })
}

pub fn balance(balance: &AccountBalance) -> Value {
    json!({
        "timestamp": balance.timestamp,
        "debits_pending": balance.debits_pending.to_string(),
        "debits_posted": balance.debits_posted.to_string(),
        "credits_pending": balance.credits_pending.to_string(),
        "credits_posted": balance.credits_posted.to_string(),
    })
}
