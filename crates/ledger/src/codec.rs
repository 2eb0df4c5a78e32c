//! Fixed-size little-endian encodings of the records, for disk and wire. The layouts
//! are specified in docs/ledger.md ("Binary formats") and never depend on the host.

use crate::flags::{AccountFlags, TransferFlags};
use crate::record::{Account, AccountBalance, Transfer};

/// Bytes of an encoded account or transfer.
pub const RECORD_BYTES: usize = 128;
/// Bytes of an encoded balance-history entry.
pub const BALANCE_BYTES: usize = 72;

/// Appends little-endian fields to a fixed buffer; a wrong layout is a programming
/// error caught by the length assertions in the tests.
struct Put<'a> {
    buffer: &'a mut [u8],
    at: usize,
}

impl Put<'_> {
    fn bytes(&mut self, bytes: &[u8]) {
        self.buffer[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
}

/// Reads little-endian fields from a fixed buffer.
struct Take<'a> {
    buffer: &'a [u8],
    at: usize,
}

impl Take<'_> {
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        out.copy_from_slice(&self.buffer[self.at..self.at + N]);
        self.at += N;
        out
    }
    fn u128(&mut self) -> u128 {
        u128::from_le_bytes(self.array())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }
}

impl Account {
    /// id, debits_pending, debits_posted, credits_pending, credits_posted, user_data_128
    /// (16 bytes each), user_data_64 (8), user_data_32 (4), ledger (4), code (2),
    /// flags (2), timestamp (8), 4 reserved zero bytes.
    pub fn to_bytes(&self) -> [u8; RECORD_BYTES] {
        let mut buffer = [0; RECORD_BYTES];
        let mut put = Put {
            buffer: &mut buffer,
            at: 0,
        };
        for value in [
            self.id,
            self.debits_pending,
            self.debits_posted,
            self.credits_pending,
            self.credits_posted,
            self.user_data_128,
        ] {
            put.bytes(&value.to_le_bytes());
        }
        put.bytes(&self.user_data_64.to_le_bytes());
        put.bytes(&self.user_data_32.to_le_bytes());
        put.bytes(&self.ledger.to_le_bytes());
        put.bytes(&self.code.to_le_bytes());
        put.bytes(&self.flags.bits().to_le_bytes());
        put.bytes(&self.timestamp.to_le_bytes());
        debug_assert_eq!(put.at, RECORD_BYTES - 4);
        buffer
    }

    pub fn from_bytes(bytes: &[u8; RECORD_BYTES]) -> Self {
        let mut take = Take {
            buffer: bytes,
            at: 0,
        };
        Self {
            id: take.u128(),
            debits_pending: take.u128(),
            debits_posted: take.u128(),
            credits_pending: take.u128(),
            credits_posted: take.u128(),
            user_data_128: take.u128(),
            user_data_64: take.u64(),
            user_data_32: take.u32(),
            ledger: take.u32(),
            code: take.u16(),
            flags: AccountFlags::from_bits(take.u16()),
            timestamp: take.u64(),
        }
    }
}

impl Transfer {
    /// id, debit_account_id, credit_account_id, amount, pending_id, user_data_128
    /// (16 bytes each), user_data_64 (8), user_data_32 (4), timeout (4), ledger (4),
    /// code (2), flags (2), timestamp (8).
    pub fn to_bytes(&self) -> [u8; RECORD_BYTES] {
        let mut buffer = [0; RECORD_BYTES];
        let mut put = Put {
            buffer: &mut buffer,
            at: 0,
        };
        for value in [
            self.id,
            self.debit_account_id,
            self.credit_account_id,
            self.amount,
            self.pending_id,
            self.user_data_128,
        ] {
            put.bytes(&value.to_le_bytes());
        }
        put.bytes(&self.user_data_64.to_le_bytes());
        put.bytes(&self.user_data_32.to_le_bytes());
        put.bytes(&self.timeout.to_le_bytes());
        put.bytes(&self.ledger.to_le_bytes());
        put.bytes(&self.code.to_le_bytes());
        put.bytes(&self.flags.bits().to_le_bytes());
        put.bytes(&self.timestamp.to_le_bytes());
        debug_assert_eq!(put.at, RECORD_BYTES);
        buffer
    }

    pub fn from_bytes(bytes: &[u8; RECORD_BYTES]) -> Self {
        let mut take = Take {
            buffer: bytes,
            at: 0,
        };
        Self {
            id: take.u128(),
            debit_account_id: take.u128(),
            credit_account_id: take.u128(),
            amount: take.u128(),
            pending_id: take.u128(),
            user_data_128: take.u128(),
            user_data_64: take.u64(),
            user_data_32: take.u32(),
            timeout: take.u32(),
            ledger: take.u32(),
            code: take.u16(),
            flags: TransferFlags::from_bits(take.u16()),
            timestamp: take.u64(),
        }
    }
}

impl AccountBalance {
    /// timestamp (8), debits_pending, debits_posted, credits_pending, credits_posted (16 each).
    pub fn to_bytes(&self) -> [u8; BALANCE_BYTES] {
        let mut buffer = [0; BALANCE_BYTES];
        let mut put = Put {
            buffer: &mut buffer,
            at: 0,
        };
        put.bytes(&self.timestamp.to_le_bytes());
        for value in [
            self.debits_pending,
            self.debits_posted,
            self.credits_pending,
            self.credits_posted,
        ] {
            put.bytes(&value.to_le_bytes());
        }
        buffer
    }

    pub fn from_bytes(bytes: &[u8; BALANCE_BYTES]) -> Self {
        let mut take = Take {
            buffer: bytes,
            at: 0,
        };
        Self {
            timestamp: take.u64(),
            debits_pending: take.u128(),
            debits_posted: take.u128(),
            credits_pending: take.u128(),
            credits_posted: take.u128(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_byte_exactly() {
        let account = Account {
            id: u128::MAX - 1,
            debits_pending: 1,
            debits_posted: 2,
            credits_pending: 3,
            credits_posted: 4,
            user_data_128: 5,
            user_data_64: 6,
            user_data_32: 7,
            ledger: 8,
            code: 9,
            flags: AccountFlags::HISTORY | AccountFlags::CLOSED,
            timestamp: 10,
        };
        assert_eq!(Account::from_bytes(&account.to_bytes()), account);
        assert_eq!(
            &account.to_bytes()[..16],
            &(u128::MAX - 1).to_le_bytes(),
            "little-endian id first"
        );
        let transfer = Transfer {
            id: 1,
            debit_account_id: 2,
            credit_account_id: 3,
            amount: u128::MAX,
            pending_id: 4,
            user_data_128: 5,
            user_data_64: 6,
            user_data_32: 7,
            timeout: 8,
            ledger: 9,
            code: 10,
            flags: TransferFlags::PENDING | TransferFlags::LINKED,
            timestamp: 11,
        };
        assert_eq!(Transfer::from_bytes(&transfer.to_bytes()), transfer);
        let balance = AccountBalance {
            timestamp: 1,
            debits_pending: 2,
            debits_posted: 3,
            credits_pending: 4,
            credits_posted: 5,
        };
        assert_eq!(AccountBalance::from_bytes(&balance.to_bytes()), balance);
    }
}
