//! What the replicated log carries, and what applying it answers.
//!
//! A log entry holds one `Command`: either many client requests formed into one entry by
//! the batcher (group commit), or an expiry sweep. Commands have their own compact
//! binary encoding (records in the ledger's 128-byte layout, see docs/node.md), carried
//! through serde as one byte string so that a 1 MiB batch costs one copy, not a
//! field-by-field walk.

use corebank_ledger::{
    Account, CreateAccountsResult, CreateTransfersResult, RECORD_BYTES, Transfer,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One client request inside a command: applied as its own ledger batch, so that a
/// linked chain never runs from one client's request into another's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    CreateAccounts(Vec<Account>),
    CreateTransfers(Vec<Transfer>),
}

impl Request {
    pub fn events(&self) -> usize {
        match self {
            Self::CreateAccounts(events) => events.len(),
            Self::CreateTransfers(events) => events.len(),
        }
    }
}

/// The payload of a log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Client requests, applied in order. The first event gets `timestamp` (or the
    /// ledger's next timestamp if that is later), the others follow one nanosecond apart.
    Apply {
        timestamp: u64,
        requests: Vec<Request>,
    },
    /// Expire pending transfers whose deadline is at or before `timestamp`.
    Expire { timestamp: u64 },
}

/// The outcome of one request of an `Apply` command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Event `i` of the request got timestamp `timestamp + i`; only failures are listed.
    Accounts {
        timestamp: u64,
        results: Vec<CreateAccountsResult>,
    },
    Transfers {
        timestamp: u64,
        results: Vec<CreateTransfersResult>,
    },
    /// The ledger refused the whole batch (e.g. too many events); nothing was applied.
    Refused(corebank_ledger::BatchError),
}

/// What applying a log entry answers.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CommandResponse {
    /// One per request of an `Apply` command (not serialized: responses never leave
    /// the node that applied them).
    #[serde(skip)]
    pub outcomes: Vec<RequestOutcome>,
    /// For an `Expire` command: how many pending transfers expired.
    pub expired: u64,
}

/// Why a command's bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed command: {0}")]
pub struct DecodeCommandError(pub &'static str);

const TAG_APPLY: u8 = 1;
const TAG_EXPIRE: u8 = 2;
const TAG_ACCOUNTS: u8 = 1;
const TAG_TRANSFERS: u8 = 2;

impl Command {
    /// tag (1 byte); for Apply: timestamp (u64), request count (u32), then per request a
    /// tag (1 byte), event count (u32) and the 128-byte records; for Expire: timestamp.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Apply {
                timestamp,
                requests,
            } => {
                let records: usize = requests.iter().map(Request::events).sum();
                let mut out = Vec::with_capacity(13 + requests.len() * 5 + records * RECORD_BYTES);
                out.push(TAG_APPLY);
                out.extend_from_slice(&timestamp.to_le_bytes());
                out.extend_from_slice(&count(requests.len()).to_le_bytes());
                for request in requests {
                    match request {
                        Request::CreateAccounts(events) => {
                            out.push(TAG_ACCOUNTS);
                            out.extend_from_slice(&count(events.len()).to_le_bytes());
                            for event in events {
                                out.extend_from_slice(&event.to_bytes());
                            }
                        }
                        Request::CreateTransfers(events) => {
                            out.push(TAG_TRANSFERS);
                            out.extend_from_slice(&count(events.len()).to_le_bytes());
                            for event in events {
                                out.extend_from_slice(&event.to_bytes());
                            }
                        }
                    }
                }
                out
            }
            Self::Expire { timestamp } => {
                let mut out = Vec::with_capacity(9);
                out.push(TAG_EXPIRE);
                out.extend_from_slice(&timestamp.to_le_bytes());
                out
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeCommandError> {
        let mut reader = Reader { bytes, at: 0 };
        let command = match reader.u8()? {
            TAG_APPLY => {
                let timestamp = reader.u64()?;
                let request_count = reader.u32()? as usize;
                // Each request takes at least 5 bytes: a count that exceeds what is left
                // is malformed, and is refused before anything is allocated for it.
                if request_count > reader.remaining() / 5 {
                    return Err(DecodeCommandError("request count exceeds the data"));
                }
                let mut requests = Vec::with_capacity(request_count);
                for _ in 0..request_count {
                    let tag = reader.u8()?;
                    let events = reader.u32()? as usize;
                    if events > reader.remaining() / RECORD_BYTES {
                        return Err(DecodeCommandError("event count exceeds the data"));
                    }
                    requests.push(match tag {
                        TAG_ACCOUNTS => Request::CreateAccounts(
                            (0..events)
                                .map(|_| reader.record().map(Account::from_bytes))
                                .collect::<Result<_, _>>()?,
                        ),
                        TAG_TRANSFERS => Request::CreateTransfers(
                            (0..events)
                                .map(|_| reader.record().map(Transfer::from_bytes))
                                .collect::<Result<_, _>>()?,
                        ),
                        _ => return Err(DecodeCommandError("unknown request tag")),
                    });
                }
                Self::Apply {
                    timestamp,
                    requests,
                }
            }
            TAG_EXPIRE => Self::Expire {
                timestamp: reader.u64()?,
            },
            _ => return Err(DecodeCommandError("unknown command tag")),
        };
        if reader.remaining() != 0 {
            return Err(DecodeCommandError("trailing bytes"));
        }
        Ok(command)
    }
}

/// Counts are bounded far below u32::MAX by the batch limits checked before a command
/// is formed.
fn count(len: usize) -> u32 {
    debug_assert!(len <= u32::MAX as usize);
    u32::try_from(len).unwrap_or(u32::MAX)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }
    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeCommandError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len());
        let end = end.ok_or(DecodeCommandError("truncated"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeCommandError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, DecodeCommandError> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeCommandError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeCommandError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn record(&mut self) -> Result<&'a [u8; RECORD_BYTES], DecodeCommandError> {
        self.take(RECORD_BYTES)?
            .try_into()
            .map_err(|_| DecodeCommandError("truncated record"))
    }
}

impl Serialize for Command {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.encode())
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl serde::de::Visitor<'_> for BytesVisitor {
            type Value = Command;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an encoded corebank command")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Command, E> {
                Command::decode(bytes).map_err(E::custom)
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Command, E> {
                self.visit_bytes(&bytes)
            }
        }
        deserializer.deserialize_bytes(BytesVisitor)
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Apply {
                timestamp,
                requests,
            } => {
                let events: usize = requests.iter().map(Request::events).sum();
                write!(
                    f,
                    "apply {} requests, {events} events at {timestamp}",
                    requests.len()
                )
            }
            Self::Expire { timestamp } => write!(f, "expire at {timestamp}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Command {
        let transfer = Transfer {
            id: 7,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: 5,
            ledger: 978,
            code: 1,
            ..Default::default()
        };
        let account = Account {
            id: 1,
            ledger: 978,
            code: 10,
            ..Default::default()
        };
        Command::Apply {
            timestamp: 42,
            requests: vec![
                Request::CreateAccounts(vec![account]),
                Request::CreateTransfers(vec![transfer; 3]),
            ],
        }
    }

    #[test]
    fn commands_round_trip_through_bytes_and_serde() {
        for command in [
            sample(),
            Command::Expire { timestamp: 9 },
            Command::Apply {
                timestamp: 1,
                requests: vec![],
            },
        ] {
            assert_eq!(Command::decode(&command.encode()).unwrap(), command);
            let config = bincode::config::standard();
            let bytes = bincode::serde::encode_to_vec(&command, config).unwrap();
            let (back, _): (Command, usize) =
                bincode::serde::decode_from_slice(&bytes, config).unwrap();
            assert_eq!(back, command);
        }
    }

    #[test]
    fn damaged_commands_are_refused_not_misread() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(
                Command::decode(&bytes[..len]).is_err(),
                "truncation at {len} accepted"
            );
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(Command::decode(&extra).is_err());
        let mut bad_tag = bytes.clone();
        bad_tag[0] = 9;
        assert!(Command::decode(&bad_tag).is_err());
        // A huge count is refused without allocating for it.
        let mut huge = vec![TAG_APPLY];
        huge.extend_from_slice(&1u64.to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Command::decode(&huge).is_err());
    }
}
