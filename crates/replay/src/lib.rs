//! # corebank-replay
//!
//! The JSON-lines replay protocol of the ledger core, for scripting, debugging and
//! black-box tests: each input line is one command, each output line its answer. The
//! format is specified in the repository README ("Replaying ledger commands").
//!
//! A [`Replay`] owns a fresh in-memory ledger whose clock starts at 1 ns and advances
//! by 1 ns per event; `advance_time` moves it on and expires pending transfers.

mod decode;
mod encode;

use corebank_ledger::{BATCH_EVENTS_MAX, Ledger, NS_PER_S, TIMESTAMP_MAX};
use serde_json::{Value, json};

pub use decode::DecodeError;

/// The operations a line may name.
pub const OPERATIONS: &[&str] = &[
    "create_accounts",
    "create_transfers",
    "lookup_accounts",
    "lookup_transfers",
    "get_account_transfers",
    "get_account_balances",
    "query_accounts",
    "query_transfers",
    "advance_time",
    "digest",
];

/// A replay session: a ledger and its clock.
#[derive(Debug)]
pub struct Replay {
    ledger: Ledger,
    /// The time the session has reached: the last event's timestamp, or later after
    /// `advance_time`. The next event gets `now + 1`.
    now: u64,
}

impl Default for Replay {
    fn default() -> Self {
        Self::new()
    }
}

impl Replay {
    pub fn new() -> Self {
        Self {
            ledger: Ledger::new(),
            now: 0,
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Answers one input line with one output line (without the newline). A malformed
    /// line is answered with `{"error": "..."}` and changes nothing.
    pub fn handle_line(&mut self, line: &str) -> String {
        let answer = match self.handle(line) {
            Ok(answer) => answer,
            Err(DecodeError(message)) => json!({ "error": message }),
        };
        answer.to_string()
    }

    fn handle(&mut self, line: &str) -> Result<Value, DecodeError> {
        if line.trim().is_empty() {
            return Err(DecodeError(
                "empty line (expected one JSON object per line)".into(),
            ));
        }
        let value: Value =
            serde_json::from_str(line).map_err(|e| DecodeError(format!("not valid JSON: {e}")))?;
        let object = decode::as_object(&value, "line")?;
        let op = match object.get("op") {
            Some(Value::String(op)) => op.as_str(),
            Some(other) => {
                return Err(DecodeError(format!(
                    "op: expected a string, found {}",
                    decode::kind(other)
                )));
            }
            None => {
                return Err(DecodeError(format!(
                    "missing field \"op\" (one of: {})",
                    OPERATIONS.join(", ")
                )));
            }
        };
        match op {
            "create_accounts" => {
                decode::reject_unknown_fields(object, &["op", "events"], "line")?;
                let events = decode::events(object, decode::account)?;
                let timestamp = self.batch_timestamp(events.len())?;
                let results = self
                    .ledger
                    .create_accounts(timestamp, &events)
                    .map_err(batch_error)?;
                self.now = self.ledger.last_timestamp().max(self.now);
                Ok(results_json(
                    results.iter().map(|r| (r.index, r.result.as_str())),
                ))
            }
            "create_transfers" => {
                decode::reject_unknown_fields(object, &["op", "events"], "line")?;
                let events = decode::events(object, decode::transfer)?;
                let timestamp = self.batch_timestamp(events.len())?;
                let results = self
                    .ledger
                    .create_transfers(timestamp, &events)
                    .map_err(batch_error)?;
                self.now = self.ledger.last_timestamp().max(self.now);
                Ok(results_json(
                    results.iter().map(|r| (r.index, r.result.as_str())),
                ))
            }
            "lookup_accounts" => {
                decode::reject_unknown_fields(object, &["op", "ids"], "line")?;
                let accounts = self
                    .ledger
                    .lookup_accounts(&decode::ids(object)?)
                    .map_err(batch_error)?;
                Ok(json!({ "accounts": accounts.iter().map(encode::account).collect::<Vec<_>>() }))
            }
            "lookup_transfers" => {
                decode::reject_unknown_fields(object, &["op", "ids"], "line")?;
                let transfers = self
                    .ledger
                    .lookup_transfers(&decode::ids(object)?)
                    .map_err(batch_error)?;
                Ok(
                    json!({ "transfers": transfers.iter().map(encode::transfer).collect::<Vec<_>>() }),
                )
            }
            "get_account_transfers" => {
                let filter = decode::account_filter(object)?;
                let transfers = self
                    .ledger
                    .get_account_transfers(&filter)
                    .map_err(filter_error)?;
                Ok(
                    json!({ "transfers": transfers.iter().map(encode::transfer).collect::<Vec<_>>() }),
                )
            }
            "get_account_balances" => {
                let filter = decode::account_filter(object)?;
                let balances = self
                    .ledger
                    .get_account_balances(&filter)
                    .map_err(filter_error)?;
                Ok(json!({ "balances": balances.iter().map(encode::balance).collect::<Vec<_>>() }))
            }
            "query_accounts" => {
                let filter = decode::query_filter(object)?;
                let accounts = self.ledger.query_accounts(&filter).map_err(filter_error)?;
                Ok(json!({ "accounts": accounts.iter().map(encode::account).collect::<Vec<_>>() }))
            }
            "query_transfers" => {
                let filter = decode::query_filter(object)?;
                let transfers = self.ledger.query_transfers(&filter).map_err(filter_error)?;
                Ok(
                    json!({ "transfers": transfers.iter().map(encode::transfer).collect::<Vec<_>>() }),
                )
            }
            "advance_time" => {
                decode::reject_unknown_fields(object, &["op", "seconds"], "line")?;
                if object.get("seconds").is_none() {
                    return Err(DecodeError(
                        "missing field \"seconds\" (a whole number of seconds)".into(),
                    ));
                }
                let seconds: u64 = decode::uint(object, "seconds", "line")?;
                Ok(json!({ "expired": self.advance_time(seconds)? }))
            }
            "digest" => {
                decode::reject_unknown_fields(object, &["op"], "line")?;
                let digest: String = self
                    .ledger
                    .digest()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                Ok(json!({ "digest": digest }))
            }
            other => Err(DecodeError(format!(
                "unknown op \"{other}\" (one of: {})",
                OPERATIONS.join(", ")
            ))),
        }
    }

    fn batch_timestamp(&self, events: usize) -> Result<u64, DecodeError> {
        if events > BATCH_EVENTS_MAX {
            return Err(DecodeError(format!(
                "events: a batch holds at most {BATCH_EVENTS_MAX} events, this one has {events}"
            )));
        }
        Ok(self.now + 1)
    }

    /// Moves the clock on by `seconds` and expires every pending transfer whose
    /// deadline has been reached; returns how many expired.
    fn advance_time(&mut self, seconds: u64) -> Result<usize, DecodeError> {
        let target = seconds
            .checked_mul(NS_PER_S)
            .and_then(|ns| self.now.checked_add(ns))
            .filter(|target| *target <= TIMESTAMP_MAX - BATCH_EVENTS_MAX as u64)
            .ok_or_else(|| {
                DecodeError(format!(
                    "seconds: {seconds} s would move the clock beyond its range"
                ))
            })?;
        if target == self.now {
            return Ok(0);
        }
        let mut expired_total = 0;
        let mut timestamp = target;
        loop {
            let expired = self
                .ledger
                .expire_pending_transfers(timestamp, BATCH_EVENTS_MAX)
                .map_err(batch_error)?;
            expired_total += expired;
            if expired < BATCH_EVENTS_MAX {
                break;
            }
            timestamp = self.ledger.last_timestamp() + 1;
        }
        self.now = self.ledger.last_timestamp().max(target);
        Ok(expired_total)
    }
}

fn results_json<'a>(failures: impl Iterator<Item = (u32, &'a str)>) -> Value {
    let results: Vec<Value> = failures
        .map(|(index, result)| json!({ "index": index, "result": result }))
        .collect();
    json!({ "results": results })
}

fn batch_error(error: corebank_ledger::BatchError) -> DecodeError {
    DecodeError(format!("{} ({})", error, error.code()))
}

fn filter_error(error: corebank_ledger::FilterError) -> DecodeError {
    DecodeError(format!("{} ({})", error, error.code()))
}
