//! Conversions between the protobuf messages of [`crate::v1`] and the types of the
//! ledger core ([`corebank_ledger`]).
//!
//! From the core to protobuf, every conversion is total ([`From`]). From protobuf to
//! the core, a conversion fails only where a protobuf value does not fit the core's
//! type: a `uint32` code or flag set above 65535, an enum number that no variant
//! has, a missing required message, a batch of more than
//! [`BATCH_EVENTS_MAX`] events, an account number that does not parse. The
//! [`ConvertError`] names the field (as a path into the request, e.g.
//! `transfers[3].code`) and says why, with a stable [`reason`](ConvertError::reason).
//!
//! Everything else is passed through untouched, so that the ledger itself refuses
//! what it refuses (a reserved flag bit is the ledger's `reserved_flag` result of that
//! event, not a refusal of the whole request).

use corebank_account_number::{AccountNumber, AccountNumberError};
use corebank_ledger::{
    self as ledger, AccountFlags, BATCH_EVENTS_MAX, CreateAccountResult, CreateTransferResult,
    EventResult, TransferFlags,
};

use crate::error::ErrorCode;
use crate::v1;

// ------------------------------------------------------------------------ errors

/// Why a protobuf value could not be turned into a core value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {kind}")]
pub struct ConvertError {
    /// The path of the field at fault in the request, e.g. `transfers[3].code`,
    /// `filter.direction` (empty when the whole request is at fault).
    pub field: String,
    /// What is wrong with it.
    pub kind: ConvertErrorKind,
}

/// What is wrong with a field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertErrorKind {
    /// A number too large for the core's type.
    #[error("{found} is out of range (at most {max} is allowed)")]
    OutOfRange { found: u64, max: u64 },
    /// An enum number that no variant has.
    #[error("{value} is not a known value")]
    UnknownEnumValue { value: i32 },
    /// A required message is absent.
    #[error("the field is required")]
    Missing,
    /// More events or ids than one request may carry.
    #[error("{count} entries are too many for one request (at most {max})")]
    TooManyEvents { count: usize, max: usize },
    /// A result code that the ledger does not define.
    #[error("{code} is not a known result code")]
    UnknownResultCode { code: u32 },
    /// An account number that does not parse.
    #[error("{0}")]
    AccountNumber(AccountNumberError),
    /// Packed records whose length is not a multiple of the record size.
    #[error("{len} bytes are not a whole number of {record}-byte records")]
    PackedLength { len: usize, record: usize },
    /// Both the typed and the packed form of the events were given.
    #[error("give the events either as messages or packed, not both")]
    BothForms,
}

impl ConvertError {
    pub fn new(field: impl Into<String>, kind: ConvertErrorKind) -> Self {
        Self {
            field: field.into(),
            kind,
        }
    }

    /// The same error, with its field path put under `parent` (`"transfers[3]"` +
    /// `"code"` = `"transfers[3].code"`).
    #[must_use]
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }

    /// The same error, inside element `index` of the repeated field `list`.
    #[must_use]
    pub fn at(self, list: &str, index: usize) -> Self {
        self.within(&format!("{list}[{index}]"))
    }

    /// The stable snake_case reason, for `ErrorDetail.reason`.
    pub fn reason(&self) -> &'static str {
        match &self.kind {
            ConvertErrorKind::OutOfRange { .. } => "value_out_of_range",
            ConvertErrorKind::UnknownEnumValue { .. } => "unknown_enum_value",
            ConvertErrorKind::Missing => "missing_field",
            ConvertErrorKind::TooManyEvents { .. } => "too_many_events",
            ConvertErrorKind::UnknownResultCode { .. } => "unknown_result_code",
            ConvertErrorKind::AccountNumber(error) => error.code(),
            ConvertErrorKind::PackedLength { .. } => "packed_length",
            ConvertErrorKind::BothForms => "both_forms",
        }
    }

    /// The corebank error code of the API error this becomes.
    pub fn code(&self) -> ErrorCode {
        match &self.kind {
            ConvertErrorKind::TooManyEvents { .. } => ErrorCode::TooManyEvents,
            ConvertErrorKind::AccountNumber(_) => ErrorCode::InvalidAccountNumber,
            ConvertErrorKind::OutOfRange { .. }
            | ConvertErrorKind::UnknownEnumValue { .. }
            | ConvertErrorKind::Missing
            | ConvertErrorKind::UnknownResultCode { .. }
            | ConvertErrorKind::PackedLength { .. }
            | ConvertErrorKind::BothForms => ErrorCode::InvalidArgument,
        }
    }
}

// ------------------------------------------------------------------------ scalars

impl From<u128> for v1::U128 {
    #[allow(clippy::cast_possible_truncation)] // keeping the low half is the point
    fn from(value: u128) -> Self {
        Self {
            lo: value as u64,
            hi: (value >> 64) as u64,
        }
    }
}

impl From<v1::U128> for u128 {
    fn from(value: v1::U128) -> Self {
        (Self::from(value.hi) << 64) | Self::from(value.lo)
    }
}

impl From<&v1::U128> for u128 {
    fn from(value: &v1::U128) -> Self {
        Self::from(*value)
    }
}

/// The value of an optional U128 field: absent is 0.
pub fn u128_of(value: Option<&v1::U128>) -> u128 {
    value.map_or(0, u128::from)
}

/// A U128 field as servers send it: always present, even for 0.
pub fn u128_field(value: u128) -> Option<v1::U128> {
    Some(value.into())
}

/// A `uint32` field that holds a `u16` in the core.
pub fn u16_field(field: &str, value: u32) -> Result<u16, ConvertError> {
    u16::try_from(value).map_err(|_| {
        ConvertError::new(
            field,
            ConvertErrorKind::OutOfRange {
                found: value.into(),
                max: u16::MAX.into(),
            },
        )
    })
}

/// An enum field: the generated enum for a known number, an error otherwise
/// (prost keeps enum fields as `i32`, so unknown numbers reach the server).
pub fn enum_field<E: TryFrom<i32>>(field: &str, value: i32) -> Result<E, ConvertError> {
    E::try_from(value)
        .map_err(|_| ConvertError::new(field, ConvertErrorKind::UnknownEnumValue { value }))
}

/// Checks that a request carries at most [`BATCH_EVENTS_MAX`] entries in `field`.
pub fn check_batch_len(field: &str, count: usize) -> Result<(), ConvertError> {
    if count > BATCH_EVENTS_MAX {
        return Err(ConvertError::new(
            field,
            ConvertErrorKind::TooManyEvents {
                count,
                max: BATCH_EVENTS_MAX,
            },
        ));
    }
    Ok(())
}

/// Parses an account number field (electronic or printed form).
pub fn account_number_field(field: &str, text: &str) -> Result<AccountNumber, ConvertError> {
    AccountNumber::parse(text)
        .map_err(|error| ConvertError::new(field, ConvertErrorKind::AccountNumber(error)))
}

// ------------------------------------------------------------------------ records

impl From<ledger::Account> for v1::Account {
    fn from(account: ledger::Account) -> Self {
        Self {
            id: u128_field(account.id),
            debits_pending: u128_field(account.debits_pending),
            debits_posted: u128_field(account.debits_posted),
            credits_pending: u128_field(account.credits_pending),
            credits_posted: u128_field(account.credits_posted),
            user_data_128: u128_field(account.user_data_128),
            user_data_64: account.user_data_64,
            user_data_32: account.user_data_32,
            ledger: account.ledger,
            code: account.code.into(),
            flags: account.flags.bits().into(),
            timestamp: account.timestamp,
        }
    }
}

impl TryFrom<&v1::Account> for ledger::Account {
    type Error = ConvertError;

    fn try_from(account: &v1::Account) -> Result<Self, ConvertError> {
        Ok(Self {
            id: u128_of(account.id.as_ref()),
            debits_pending: u128_of(account.debits_pending.as_ref()),
            debits_posted: u128_of(account.debits_posted.as_ref()),
            credits_pending: u128_of(account.credits_pending.as_ref()),
            credits_posted: u128_of(account.credits_posted.as_ref()),
            user_data_128: u128_of(account.user_data_128.as_ref()),
            user_data_64: account.user_data_64,
            user_data_32: account.user_data_32,
            ledger: account.ledger,
            code: u16_field("code", account.code)?,
            flags: AccountFlags::from_bits(u16_field("flags", account.flags)?),
            timestamp: account.timestamp,
        })
    }
}

impl TryFrom<v1::Account> for ledger::Account {
    type Error = ConvertError;

    fn try_from(account: v1::Account) -> Result<Self, ConvertError> {
        Self::try_from(&account)
    }
}

impl From<ledger::Transfer> for v1::Transfer {
    fn from(transfer: ledger::Transfer) -> Self {
        Self {
            id: u128_field(transfer.id),
            debit_account_id: u128_field(transfer.debit_account_id),
            credit_account_id: u128_field(transfer.credit_account_id),
            amount: u128_field(transfer.amount),
            pending_id: u128_field(transfer.pending_id),
            user_data_128: u128_field(transfer.user_data_128),
            user_data_64: transfer.user_data_64,
            user_data_32: transfer.user_data_32,
            timeout: transfer.timeout,
            ledger: transfer.ledger,
            code: transfer.code.into(),
            flags: transfer.flags.bits().into(),
            timestamp: transfer.timestamp,
        }
    }
}

impl TryFrom<&v1::Transfer> for ledger::Transfer {
    type Error = ConvertError;

    fn try_from(transfer: &v1::Transfer) -> Result<Self, ConvertError> {
        Ok(Self {
            id: u128_of(transfer.id.as_ref()),
            debit_account_id: u128_of(transfer.debit_account_id.as_ref()),
            credit_account_id: u128_of(transfer.credit_account_id.as_ref()),
            amount: u128_of(transfer.amount.as_ref()),
            pending_id: u128_of(transfer.pending_id.as_ref()),
            user_data_128: u128_of(transfer.user_data_128.as_ref()),
            user_data_64: transfer.user_data_64,
            user_data_32: transfer.user_data_32,
            timeout: transfer.timeout,
            ledger: transfer.ledger,
            code: u16_field("code", transfer.code)?,
            flags: TransferFlags::from_bits(u16_field("flags", transfer.flags)?),
            timestamp: transfer.timestamp,
        })
    }
}

impl TryFrom<v1::Transfer> for ledger::Transfer {
    type Error = ConvertError;

    fn try_from(transfer: v1::Transfer) -> Result<Self, ConvertError> {
        Self::try_from(&transfer)
    }
}

impl From<ledger::AccountBalance> for v1::AccountBalance {
    fn from(balance: ledger::AccountBalance) -> Self {
        Self {
            timestamp: balance.timestamp,
            debits_pending: u128_field(balance.debits_pending),
            debits_posted: u128_field(balance.debits_posted),
            credits_pending: u128_field(balance.credits_pending),
            credits_posted: u128_field(balance.credits_posted),
        }
    }
}

impl From<&v1::AccountBalance> for ledger::AccountBalance {
    fn from(balance: &v1::AccountBalance) -> Self {
        Self {
            timestamp: balance.timestamp,
            debits_pending: u128_of(balance.debits_pending.as_ref()),
            debits_posted: u128_of(balance.debits_posted.as_ref()),
            credits_pending: u128_of(balance.credits_pending.as_ref()),
            credits_posted: u128_of(balance.credits_posted.as_ref()),
        }
    }
}

impl From<v1::AccountBalance> for ledger::AccountBalance {
    fn from(balance: v1::AccountBalance) -> Self {
        Self::from(&balance)
    }
}

// ------------------------------------------------------------------------ filters

impl From<ledger::Direction> for v1::Direction {
    fn from(direction: ledger::Direction) -> Self {
        match direction {
            ledger::Direction::Both => Self::Both,
            ledger::Direction::Debits => Self::Debits,
            ledger::Direction::Credits => Self::Credits,
        }
    }
}

impl From<v1::Direction> for ledger::Direction {
    fn from(direction: v1::Direction) -> Self {
        match direction {
            v1::Direction::Both => Self::Both,
            v1::Direction::Debits => Self::Debits,
            v1::Direction::Credits => Self::Credits,
        }
    }
}

impl From<ledger::AccountFilter> for v1::AccountFilter {
    fn from(filter: ledger::AccountFilter) -> Self {
        Self {
            account_id: u128_field(filter.account_id),
            user_data_128: u128_field(filter.user_data_128),
            user_data_64: filter.user_data_64,
            user_data_32: filter.user_data_32,
            code: filter.code.into(),
            timestamp_min: filter.timestamp_min,
            timestamp_max: filter.timestamp_max,
            limit: filter.limit,
            direction: v1::Direction::from(filter.direction).into(),
            reversed: filter.reversed,
        }
    }
}

impl TryFrom<&v1::AccountFilter> for ledger::AccountFilter {
    type Error = ConvertError;

    fn try_from(filter: &v1::AccountFilter) -> Result<Self, ConvertError> {
        Ok(Self {
            account_id: u128_of(filter.account_id.as_ref()),
            user_data_128: u128_of(filter.user_data_128.as_ref()),
            user_data_64: filter.user_data_64,
            user_data_32: filter.user_data_32,
            code: u16_field("code", filter.code)?,
            timestamp_min: filter.timestamp_min,
            timestamp_max: filter.timestamp_max,
            limit: filter.limit,
            direction: enum_field::<v1::Direction>("direction", filter.direction)?.into(),
            reversed: filter.reversed,
        })
    }
}

impl TryFrom<v1::AccountFilter> for ledger::AccountFilter {
    type Error = ConvertError;

    fn try_from(filter: v1::AccountFilter) -> Result<Self, ConvertError> {
        Self::try_from(&filter)
    }
}

impl From<ledger::QueryFilter> for v1::QueryFilter {
    fn from(filter: ledger::QueryFilter) -> Self {
        Self {
            user_data_128: u128_field(filter.user_data_128),
            user_data_64: filter.user_data_64,
            user_data_32: filter.user_data_32,
            ledger: filter.ledger,
            code: filter.code.into(),
            timestamp_min: filter.timestamp_min,
            timestamp_max: filter.timestamp_max,
            limit: filter.limit,
            reversed: filter.reversed,
        }
    }
}

impl TryFrom<&v1::QueryFilter> for ledger::QueryFilter {
    type Error = ConvertError;

    fn try_from(filter: &v1::QueryFilter) -> Result<Self, ConvertError> {
        Ok(Self {
            user_data_128: u128_of(filter.user_data_128.as_ref()),
            user_data_64: filter.user_data_64,
            user_data_32: filter.user_data_32,
            ledger: filter.ledger,
            code: u16_field("code", filter.code)?,
            timestamp_min: filter.timestamp_min,
            timestamp_max: filter.timestamp_max,
            limit: filter.limit,
            reversed: filter.reversed,
        })
    }
}

impl TryFrom<v1::QueryFilter> for ledger::QueryFilter {
    type Error = ConvertError;

    fn try_from(filter: v1::QueryFilter) -> Result<Self, ConvertError> {
        Self::try_from(&filter)
    }
}

// ------------------------------------------------------------------------ results

impl From<EventResult<CreateAccountResult>> for v1::CreateAccountResult {
    fn from(result: EventResult<CreateAccountResult>) -> Self {
        Self {
            index: result.index,
            code: result.result.code(),
            name: result.result.as_str().to_owned(),
            description: result.result.description().to_owned(),
        }
    }
}

impl TryFrom<&v1::CreateAccountResult> for EventResult<CreateAccountResult> {
    type Error = ConvertError;

    /// Reads the numeric code; the name and description are not consulted.
    fn try_from(result: &v1::CreateAccountResult) -> Result<Self, ConvertError> {
        let code = result.code;
        Ok(Self {
            index: result.index,
            result: CreateAccountResult::from_code(code).ok_or_else(|| {
                ConvertError::new("code", ConvertErrorKind::UnknownResultCode { code })
            })?,
        })
    }
}

impl From<EventResult<CreateTransferResult>> for v1::CreateTransferResult {
    fn from(result: EventResult<CreateTransferResult>) -> Self {
        Self {
            index: result.index,
            code: result.result.code(),
            name: result.result.as_str().to_owned(),
            description: result.result.description().to_owned(),
        }
    }
}

impl TryFrom<&v1::CreateTransferResult> for EventResult<CreateTransferResult> {
    type Error = ConvertError;

    /// Reads the numeric code; the name and description are not consulted.
    fn try_from(result: &v1::CreateTransferResult) -> Result<Self, ConvertError> {
        let code = result.code;
        Ok(Self {
            index: result.index,
            result: CreateTransferResult::from_code(code).ok_or_else(|| {
                ConvertError::new("code", ConvertErrorKind::UnknownResultCode { code })
            })?,
        })
    }
}

// ------------------------------------------------------------------------ requests

/// The accounts of a CreateAccounts request, checked for size and range.
/// Splits packed 128-byte records, checking the length and the batch bound.
fn packed_records<'a>(
    field: &str,
    bytes: &'a [u8],
) -> Result<impl Iterator<Item = &'a [u8; ledger::RECORD_BYTES]>, ConvertError> {
    let record = ledger::RECORD_BYTES;
    if !bytes.len().is_multiple_of(record) {
        return Err(ConvertError::new(
            field,
            ConvertErrorKind::PackedLength {
                len: bytes.len(),
                record,
            },
        ));
    }
    check_batch_len(field, bytes.len() / record)?;
    Ok(bytes
        .chunks_exact(record)
        .filter_map(|chunk| chunk.try_into().ok()))
}

pub fn accounts_from_request(
    request: &v1::CreateAccountsRequest,
) -> Result<Vec<ledger::Account>, ConvertError> {
    if !request.packed_accounts.is_empty() {
        if !request.accounts.is_empty() {
            return Err(ConvertError::new(
                "packed_accounts",
                ConvertErrorKind::BothForms,
            ));
        }
        let records = packed_records("packed_accounts", &request.packed_accounts)?;
        return Ok(records.map(ledger::Account::from_bytes).collect());
    }
    check_batch_len("accounts", request.accounts.len())?;
    request
        .accounts
        .iter()
        .enumerate()
        .map(|(index, account)| {
            ledger::Account::try_from(account).map_err(|error| error.at("accounts", index))
        })
        .collect()
}

/// The transfers of a CreateTransfers request, checked for size and range.
pub fn transfers_from_request(
    request: &v1::CreateTransfersRequest,
) -> Result<Vec<ledger::Transfer>, ConvertError> {
    if !request.packed_transfers.is_empty() {
        if !request.transfers.is_empty() {
            return Err(ConvertError::new(
                "packed_transfers",
                ConvertErrorKind::BothForms,
            ));
        }
        let records = packed_records("packed_transfers", &request.packed_transfers)?;
        return Ok(records.map(ledger::Transfer::from_bytes).collect());
    }
    check_batch_len("transfers", request.transfers.len())?;
    request
        .transfers
        .iter()
        .enumerate()
        .map(|(index, transfer)| {
            ledger::Transfer::try_from(transfer).map_err(|error| error.at("transfers", index))
        })
        .collect()
}

/// The ids of a Lookup request (field `ids`), checked for size.
pub fn ids_from_request(ids: &[v1::U128]) -> Result<Vec<u128>, ConvertError> {
    check_batch_len("ids", ids.len())?;
    Ok(ids.iter().map(u128::from).collect())
}

/// The required AccountFilter of a GetAccountTransfers or GetAccountBalances request.
pub fn account_filter_from_request(
    filter: Option<&v1::AccountFilter>,
) -> Result<ledger::AccountFilter, ConvertError> {
    let filter = filter.ok_or_else(|| ConvertError::new("filter", ConvertErrorKind::Missing))?;
    ledger::AccountFilter::try_from(filter).map_err(|error| error.within("filter"))
}

/// The required QueryFilter of a QueryAccounts or QueryTransfers request.
pub fn query_filter_from_request(
    filter: Option<&v1::QueryFilter>,
) -> Result<ledger::QueryFilter, ConvertError> {
    let filter = filter.ok_or_else(|| ConvertError::new("filter", ConvertErrorKind::Missing))?;
    ledger::QueryFilter::try_from(filter).map_err(|error| error.within("filter"))
}

/// The read consistency a read request asks for (field `consistency`).
pub fn consistency_from_request(value: i32) -> Result<v1::ReadConsistency, ConvertError> {
    enum_field("consistency", value)
}

/// The response to a CreateAccounts request whose first event got `timestamp`.
pub fn create_accounts_response(
    timestamp: u64,
    results: &[EventResult<CreateAccountResult>],
) -> v1::CreateAccountsResponse {
    v1::CreateAccountsResponse {
        results: results.iter().copied().map(Into::into).collect(),
        timestamp,
    }
}

/// The response to a CreateTransfers request whose first event got `timestamp`.
pub fn create_transfers_response(
    timestamp: u64,
    results: &[EventResult<CreateTransferResult>],
) -> v1::CreateTransfersResponse {
    v1::CreateTransfersResponse {
        results: results.iter().copied().map(Into::into).collect(),
        timestamp,
    }
}

#[cfg(test)]
mod tests;
