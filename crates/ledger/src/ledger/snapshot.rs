//! Snapshots: the whole ledger as a stream of bytes, and back. The format is in
//! docs/ledger.md ("Snapshot format"). Writing streams (no second copy of the state in
//! memory); reading checks the checksum, the structure and every invariant before it
//! hands out a ledger, so a damaged snapshot is refused, never served.

use std::io::{self, Read, Write};

use super::{Ledger, NO_POSITION, TransferSlot, to_position};
use crate::codec::{BALANCE_BYTES, RECORD_BYTES};
use crate::record::{Account, AccountBalance, PendingStatus, Transfer};
use crate::result::CreateTransferResult;

const MAGIC: &[u8; 8] = b"CBLEDGER";
const FORMAT_VERSION: u32 = 1;
/// Reserve at most this many records ahead of reading them, so that a corrupt count
/// cannot make the reader allocate unbounded memory before the data runs out.
const RESERVE_MAX: u64 = 1 << 20;

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read the snapshot: {0}")]
    Io(#[from] io::Error),
    #[error("not a corebank ledger snapshot (bad magic bytes)")]
    BadMagic,
    #[error(
        "snapshot format version {found} is not supported (this build reads version {FORMAT_VERSION})"
    )]
    UnsupportedVersion { found: u32 },
    #[error("the snapshot is damaged: its checksum does not match its contents")]
    ChecksumMismatch,
    #[error("the snapshot is damaged: {0}")]
    Malformed(String),
}

impl SnapshotError {
    /// The stable snake_case code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io(_) => "snapshot_io",
            Self::BadMagic => "snapshot_bad_magic",
            Self::UnsupportedVersion { .. } => "snapshot_unsupported_version",
            Self::ChecksumMismatch => "snapshot_checksum_mismatch",
            Self::Malformed(_) => "snapshot_malformed",
        }
    }
}

/// Hashes everything that passes through.
struct Hashing<T> {
    inner: T,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        Ok(written)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        Ok(read)
    }
}

fn read_array<const N: usize>(input: &mut impl Read) -> Result<[u8; N], SnapshotError> {
    let mut bytes = [0; N];
    input
        .read_exact(&mut bytes)
        .map_err(|error| match error.kind() {
            io::ErrorKind::UnexpectedEof => {
                SnapshotError::Malformed("it ends early (truncated)".into())
            }
            _ => SnapshotError::Io(error),
        })?;
    Ok(bytes)
}

fn read_u64(input: &mut impl Read) -> Result<u64, SnapshotError> {
    Ok(u64::from_le_bytes(read_array(input)?))
}

fn malformed(message: impl Into<String>) -> SnapshotError {
    SnapshotError::Malformed(message.into())
}

impl Ledger {
    /// Writes the whole state to `output` (buffer it: the writes are record-sized).
    pub fn write_snapshot(&self, output: impl Write) -> io::Result<()> {
        let mut out = Hashing {
            inner: output,
            hasher: blake3::Hasher::new(),
        };
        out.write_all(MAGIC)?;
        out.write_all(&FORMAT_VERSION.to_le_bytes())?;
        out.write_all(&self.last_timestamp.to_le_bytes())?;
        out.write_all(&(self.accounts.len() as u64).to_le_bytes())?;
        for account in &self.accounts {
            out.write_all(&account.to_bytes())?;
        }
        out.write_all(&(self.transfers.len() as u64).to_le_bytes())?;
        for (transfer, status) in self.transfers.iter().zip(&self.pending_status) {
            out.write_all(&transfer.to_bytes())?;
            out.write_all(&[status.to_byte()])?;
        }
        out.write_all(&(self.burnt.len() as u64).to_le_bytes())?;
        for (id, result) in &self.burnt {
            out.write_all(&id.to_le_bytes())?;
            out.write_all(&result.code().to_le_bytes())?;
        }
        for history in &self.account_history {
            out.write_all(&(history.len() as u64).to_le_bytes())?;
            for balance in history {
                out.write_all(&balance.to_bytes())?;
            }
        }
        let checksum = out.hasher.finalize();
        let mut output = out.inner;
        output.write_all(checksum.as_bytes())?;
        output.flush()
    }

    /// Reads a snapshot written by [`Ledger::write_snapshot`], rebuilding every index.
    /// Refuses anything damaged: a bad checksum, a truncated or malformed stream, or a
    /// state that breaks an invariant.
    pub fn read_snapshot(input: impl Read) -> Result<Ledger, SnapshotError> {
        let mut input = Hashing {
            inner: input,
            hasher: blake3::Hasher::new(),
        };
        if &read_array::<8>(&mut input)? != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = u32::from_le_bytes(read_array(&mut input)?);
        if version != FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion { found: version });
        }
        let mut ledger = Ledger::new();
        ledger.last_timestamp = read_u64(&mut input)?;

        let accounts = read_u64(&mut input)?;
        if accounts >= u64::from(NO_POSITION) {
            return Err(malformed(format!("it claims {accounts} accounts")));
        }
        let reserve = accounts.min(RESERVE_MAX) as usize;
        ledger.accounts.reserve(reserve);
        ledger.account_positions.reserve(reserve);
        for _ in 0..accounts {
            let account = Account::from_bytes(&read_array::<RECORD_BYTES>(&mut input)?);
            let position = to_position(ledger.accounts.len());
            if ledger
                .account_positions
                .insert(account.id, position)
                .is_some()
            {
                return Err(malformed(format!("account {} appears twice", account.id)));
            }
            ledger.accounts.push(account);
        }
        ledger.account_newest_transfer = vec![NO_POSITION; ledger.accounts.len()];
        ledger.account_history = vec![Vec::new(); ledger.accounts.len()];

        let transfers = read_u64(&mut input)?;
        if transfers >= u64::from(NO_POSITION) {
            return Err(malformed(format!("it claims {transfers} transfers")));
        }
        let reserve = transfers.min(RESERVE_MAX) as usize;
        ledger.transfers.reserve(reserve);
        ledger.pending_status.reserve(reserve);
        ledger.transfer_links.reserve(reserve);
        ledger.transfer_slots.reserve(reserve);
        for _ in 0..transfers {
            let transfer = Transfer::from_bytes(&read_array::<RECORD_BYTES>(&mut input)?);
            let [status] = read_array::<1>(&mut input)?;
            let status = PendingStatus::from_byte(status).ok_or_else(|| {
                malformed(format!(
                    "transfer {} has an unknown pending status {status}",
                    transfer.id
                ))
            })?;
            ledger.restore_transfer(transfer, status)?;
        }

        let burnt = read_u64(&mut input)?;
        for _ in 0..burnt {
            let id = u128::from_le_bytes(read_array(&mut input)?);
            let code = u32::from_le_bytes(read_array(&mut input)?);
            let result = CreateTransferResult::from_code(code)
                .filter(|result| result.is_transient())
                .ok_or_else(|| {
                    malformed(format!(
                        "burnt id {id} has result code {code}, which does not burn ids"
                    ))
                })?;
            if ledger
                .transfer_slots
                .insert(id, TransferSlot::Failed)
                .is_some()
            {
                return Err(malformed(format!(
                    "burnt id {id} is also a transfer or burnt twice"
                )));
            }
            ledger.burnt.push((id, result));
        }

        for at in 0..ledger.accounts.len() {
            let entries = read_u64(&mut input)?;
            let mut history = Vec::with_capacity(entries.min(RESERVE_MAX) as usize);
            for _ in 0..entries {
                history.push(AccountBalance::from_bytes(&read_array::<BALANCE_BYTES>(
                    &mut input,
                )?));
            }
            ledger.account_history[at] = history;
        }

        let expected = input.hasher.finalize();
        let found: [u8; 32] = read_array(&mut input.inner)?;
        if expected.as_bytes() != &found {
            return Err(SnapshotError::ChecksumMismatch);
        }
        let mut rest = [0u8; 1];
        if input.inner.read(&mut rest)? != 0 {
            return Err(malformed("bytes follow the checksum"));
        }
        if ledger
            .transfers
            .last()
            .is_some_and(|t| t.timestamp > ledger.last_timestamp)
            || ledger
                .accounts
                .last()
                .is_some_and(|a| a.timestamp > ledger.last_timestamp)
        {
            return Err(malformed("a record is newer than the ledger's clock"));
        }
        ledger
            .check_invariants()
            .map_err(|violation| malformed(violation.0))?;
        Ok(ledger)
    }

    /// Appends a transfer read from a snapshot, with its indexes.
    fn restore_transfer(
        &mut self,
        transfer: Transfer,
        status: PendingStatus,
    ) -> Result<(), SnapshotError> {
        let position = to_position(self.transfers.len());
        let debit = self
            .account_positions
            .get(&transfer.debit_account_id)
            .copied();
        let credit = self
            .account_positions
            .get(&transfer.credit_account_id)
            .copied();
        let (Some(debit), Some(credit)) = (debit, credit) else {
            return Err(malformed(format!(
                "transfer {} names an account that does not exist",
                transfer.id
            )));
        };
        if self
            .transfer_slots
            .insert(transfer.id, TransferSlot::Created(position))
            .is_some()
        {
            return Err(malformed(format!("transfer {} appears twice", transfer.id)));
        }
        let is_pending = transfer.flags.contains(crate::TransferFlags::PENDING);
        if is_pending == (status == PendingStatus::None) {
            return Err(malformed(format!(
                "transfer {} has a pending status that does not fit its flags",
                transfer.id
            )));
        }
        if status == PendingStatus::Pending
            && let Some(expires_at) = transfer.expires_at()
        {
            self.expiry_queue.insert((expires_at, position));
        }
        let (debit, credit) = (debit as usize, credit as usize);
        self.transfer_links.push([
            self.account_newest_transfer[debit],
            self.account_newest_transfer[credit],
        ]);
        self.account_newest_transfer[debit] = position;
        self.account_newest_transfer[credit] = position;
        self.transfers.push(transfer);
        self.pending_status.push(status);
        Ok(())
    }
}
