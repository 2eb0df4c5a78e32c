//! JSON → ledger events and filters, with errors that name the offending field.

use corebank_ledger::{
    Account, AccountFilter, AccountFlags, Direction, QueryFilter, Transfer, TransferFlags,
};
use serde_json::{Map, Value};

/// A malformed input line: what is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

pub type Object = Map<String, Value>;

fn error(path: &str, message: impl std::fmt::Display) -> DecodeError {
    DecodeError(format!("{path}: {message}"))
}

/// Fails when `object` has a field outside `known`: a misspelt field must not silently
/// become a zero.
pub fn reject_unknown_fields(
    object: &Object,
    known: &[&str],
    path: &str,
) -> Result<(), DecodeError> {
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        None => Ok(()),
        Some(key) => Err(error(
            path,
            format!(
                "unknown field \"{key}\" (known fields: {})",
                known.join(", ")
            ),
        )),
    }
}

pub fn as_object<'v>(value: &'v Value, path: &str) -> Result<&'v Object, DecodeError> {
    value
        .as_object()
        .ok_or_else(|| error(path, "expected a JSON object"))
}

/// An unsigned integer field: a JSON number, or a decimal string (required for values
/// above 2^53, and the only form used on output for u128). Absent or null means 0.
pub fn uint<T: TryFrom<u128>>(object: &Object, field: &str, path: &str) -> Result<T, DecodeError> {
    match object.get(field) {
        None | Some(Value::Null) => T::try_from(0).map_err(|_| error(path, "zero does not fit")),
        Some(value) => uint_value(value, &format!("{path}.{field}")),
    }
}

pub fn uint_value<T: TryFrom<u128>>(value: &Value, path: &str) -> Result<T, DecodeError> {
    let bits = std::mem::size_of::<T>() * 8;
    let value = match value {
        Value::String(text) => parse_decimal(text).ok_or_else(|| {
            error(
                path,
                format!("\"{text}\" is not a decimal unsigned integer below 2^128"),
            )
        })?,
        Value::Number(number) => match number.as_u64() {
            Some(value) => u128::from(value),
            None if number.is_i64() => return Err(error(path, format!("{number} is negative"))),
            None if number.as_f64().is_some_and(|f| f.fract() != 0.0) => {
                return Err(error(path, format!("{number} is not a whole number")));
            }
            None => {
                return Err(error(
                    path,
                    format!("{number} is too large for a JSON number; use a decimal string"),
                ));
            }
        },
        other => {
            return Err(error(
                path,
                format!(
                    "expected an unsigned integer (number or decimal string), found {}",
                    kind(other)
                ),
            ));
        }
    };
    T::try_from(value).map_err(|_| error(path, format!("{value} does not fit in {bits} bits")))
}

fn parse_decimal(text: &str) -> Option<u128> {
    if text.is_empty() || text.len() > 39 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

pub fn boolean(object: &Object, field: &str, path: &str) -> Result<Option<bool>, DecodeError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(other) => Err(error(
            &format!("{path}.{field}"),
            format!("expected true or false, found {}", kind(other)),
        )),
    }
}

fn flags_bits(
    object: &Object,
    path: &str,
    from_name: impl Fn(&str) -> Option<u16>,
    known: &str,
) -> Result<u16, DecodeError> {
    let path = format!("{path}.flags");
    match object.get("flags") {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Array(names)) => {
            let mut bits = 0;
            for (index, name) in names.iter().enumerate() {
                let Some(name) = name.as_str() else {
                    return Err(error(
                        &format!("{path}[{index}]"),
                        "expected a flag name (a string)",
                    ));
                };
                bits |= from_name(name).ok_or_else(|| {
                    error(
                        &format!("{path}[{index}]"),
                        format!("unknown flag \"{name}\" (known: {known})"),
                    )
                })?;
            }
            Ok(bits)
        }
        // A raw bit set is accepted too, so that reserved bits can be exercised.
        Some(Value::Number(number)) => number
            .as_u64()
            .and_then(|bits| u16::try_from(bits).ok())
            .ok_or_else(|| error(&path, format!("{number} is not a 16-bit flag set"))),
        Some(other) => Err(error(
            &path,
            format!("expected an array of flag names, found {}", kind(other)),
        )),
    }
}

fn flag_names<T: Copy>(all: &[(T, &str)]) -> String {
    all.iter()
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

const ACCOUNT_FIELDS: &[&str] = &[
    "id",
    "debits_pending",
    "debits_posted",
    "credits_pending",
    "credits_posted",
    "user_data_128",
    "user_data_64",
    "user_data_32",
    "ledger",
    "code",
    "flags",
    "timestamp",
];

pub fn account(value: &Value, path: &str) -> Result<Account, DecodeError> {
    let object = as_object(value, path)?;
    reject_unknown_fields(object, ACCOUNT_FIELDS, path)?;
    let flags = flags_bits(
        object,
        path,
        |name| AccountFlags::from_name(name).map(AccountFlags::bits),
        &flag_names(AccountFlags::ALL),
    )?;
    Ok(Account {
        id: uint(object, "id", path)?,
        debits_pending: uint(object, "debits_pending", path)?,
        debits_posted: uint(object, "debits_posted", path)?,
        credits_pending: uint(object, "credits_pending", path)?,
        credits_posted: uint(object, "credits_posted", path)?,
        user_data_128: uint(object, "user_data_128", path)?,
        user_data_64: uint(object, "user_data_64", path)?,
        user_data_32: uint(object, "user_data_32", path)?,
        ledger: uint(object, "ledger", path)?,
        code: uint(object, "code", path)?,
        flags: AccountFlags::from_bits(flags),
        timestamp: uint(object, "timestamp", path)?,
    })
}

const TRANSFER_FIELDS: &[&str] = &[
    "id",
    "debit_account_id",
    "credit_account_id",
    "amount",
    "pending_id",
    "user_data_128",
    "user_data_64",
    "user_data_32",
    "timeout",
    "ledger",
    "code",
    "flags",
    "timestamp",
];

pub fn transfer(value: &Value, path: &str) -> Result<Transfer, DecodeError> {
    let object = as_object(value, path)?;
    reject_unknown_fields(object, TRANSFER_FIELDS, path)?;
    let flags = flags_bits(
        object,
        path,
        |name| TransferFlags::from_name(name).map(TransferFlags::bits),
        &flag_names(TransferFlags::ALL),
    )?;
    Ok(Transfer {
        id: uint(object, "id", path)?,
        debit_account_id: uint(object, "debit_account_id", path)?,
        credit_account_id: uint(object, "credit_account_id", path)?,
        amount: uint(object, "amount", path)?,
        pending_id: uint(object, "pending_id", path)?,
        user_data_128: uint(object, "user_data_128", path)?,
        user_data_64: uint(object, "user_data_64", path)?,
        user_data_32: uint(object, "user_data_32", path)?,
        timeout: uint(object, "timeout", path)?,
        ledger: uint(object, "ledger", path)?,
        code: uint(object, "code", path)?,
        flags: TransferFlags::from_bits(flags),
        timestamp: uint(object, "timestamp", path)?,
    })
}

/// The `events` array of a create operation.
pub fn events<T>(
    object: &Object,
    decode: impl Fn(&Value, &str) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let Some(value) = object.get("events") else {
        return Err(DecodeError(
            "missing field \"events\" (an array of events)".into(),
        ));
    };
    let Some(items) = value.as_array() else {
        return Err(error(
            "events",
            format!("expected an array, found {}", kind(value)),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| decode(item, &format!("events[{index}]")))
        .collect()
}

/// The `ids` array of a lookup operation.
pub fn ids(object: &Object) -> Result<Vec<u128>, DecodeError> {
    let Some(value) = object.get("ids") else {
        return Err(DecodeError(
            "missing field \"ids\" (an array of decimal strings)".into(),
        ));
    };
    let Some(items) = value.as_array() else {
        return Err(error(
            "ids",
            format!("expected an array, found {}", kind(value)),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| uint_value(item, &format!("ids[{index}]")))
        .collect()
}

/// The most records a read returns: the ledger's batch bound.
const LIMIT_MAX: u32 = 8_190;
const _: () = assert!(LIMIT_MAX as usize == corebank_ledger::BATCH_EVENTS_MAX);

/// Results are capped by the ledger at 8,190; an absent limit asks for the most.
fn limit(object: &Object) -> Result<u32, DecodeError> {
    match object.get("limit") {
        None | Some(Value::Null) => Ok(LIMIT_MAX),
        Some(_) => uint(object, "limit", "filter"),
    }
}

pub const ACCOUNT_FILTER_FIELDS: &[&str] = &[
    "op",
    "account_id",
    "user_data_128",
    "user_data_64",
    "user_data_32",
    "code",
    "timestamp_min",
    "timestamp_max",
    "limit",
    "reversed",
    "debits",
    "credits",
    "direction",
];

pub fn account_filter(object: &Object) -> Result<AccountFilter, DecodeError> {
    reject_unknown_fields(object, ACCOUNT_FILTER_FIELDS, "filter")?;
    let debits = boolean(object, "debits", "filter")?;
    let credits = boolean(object, "credits", "filter")?;
    let direction = match (object.get("direction"), debits, credits) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(DecodeError(
                "filter: give either \"direction\" or \"debits\"/\"credits\", not both".into(),
            ));
        }
        (Some(Value::String(text)), None, None) => match text.as_str() {
            "debits" => Direction::Debits,
            "credits" => Direction::Credits,
            "both" => Direction::Both,
            other => {
                return Err(DecodeError(format!(
                    "filter.direction: unknown direction \"{other}\" (expected debits, credits or both)"
                )));
            }
        },
        (Some(other), None, None) => {
            return Err(DecodeError(format!(
                "filter.direction: expected a string, found {}",
                kind(other)
            )));
        }
        (None, None, None) => Direction::Both,
        (None, debits, credits) => match (debits.unwrap_or(false), credits.unwrap_or(false)) {
            (true, true) => Direction::Both,
            (true, false) => Direction::Debits,
            (false, true) => Direction::Credits,
            (false, false) => {
                return Err(DecodeError(
                    "filter: at least one of \"debits\" and \"credits\" must be true".into(),
                ));
            }
        },
    };
    Ok(AccountFilter {
        account_id: uint(object, "account_id", "filter")?,
        user_data_128: uint(object, "user_data_128", "filter")?,
        user_data_64: uint(object, "user_data_64", "filter")?,
        user_data_32: uint(object, "user_data_32", "filter")?,
        code: uint(object, "code", "filter")?,
        timestamp_min: uint(object, "timestamp_min", "filter")?,
        timestamp_max: uint(object, "timestamp_max", "filter")?,
        limit: limit(object)?,
        direction,
        reversed: boolean(object, "reversed", "filter")?.unwrap_or(false),
    })
}

pub const QUERY_FILTER_FIELDS: &[&str] = &[
    "op",
    "user_data_128",
    "user_data_64",
    "user_data_32",
    "ledger",
    "code",
    "timestamp_min",
    "timestamp_max",
    "limit",
    "reversed",
];

pub fn query_filter(object: &Object) -> Result<QueryFilter, DecodeError> {
    reject_unknown_fields(object, QUERY_FILTER_FIELDS, "filter")?;
    Ok(QueryFilter {
        user_data_128: uint(object, "user_data_128", "filter")?,
        user_data_64: uint(object, "user_data_64", "filter")?,
        user_data_32: uint(object, "user_data_32", "filter")?,
        ledger: uint(object, "ledger", "filter")?,
        code: uint(object, "code", "filter")?,
        timestamp_min: uint(object, "timestamp_min", "filter")?,
        timestamp_max: uint(object, "timestamp_max", "filter")?,
        limit: limit(object)?,
        reversed: boolean(object, "reversed", "filter")?.unwrap_or(false),
    })
}

pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
