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
use corebank_screening::{Assessment, Channel, GeoPoint, ReasonCode, TransferContext, Verdict};

use crate::risk_state::{NOTE_BYTES_MAX, RiskRefusal};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One client request inside a command: applied as its own ledger batch, so that a
/// linked chain never runs from one client's request into another's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    CreateAccounts(Vec<Account>),
    /// Transfers applied as they are, without screening (the bank's own movements).
    CreateTransfers(Vec<Transfer>),
    /// Transfers screened by the leader before the entry is proposed.
    Screened(ScreenedTransfers),
    /// An analyst's (or the risk agent's) action on the risk state.
    Risk(RiskAction),
}

impl Request {
    pub fn events(&self) -> usize {
        match self {
            Self::CreateAccounts(events) => events.len(),
            Self::CreateTransfers(events) => events.len(),
            Self::Screened(screened) => screened.events.len(),
            Self::Risk(_) => 1,
        }
    }

    /// Screened transfers with what the bank knows of them (`context` is empty, or
    /// one per event); the leader fills in the decisions.
    pub fn screened(events: Vec<Transfer>, context: Vec<TransferContext>) -> Self {
        Self::Screened(ScreenedTransfers {
            events,
            context,
            decisions: Vec::new(),
        })
    }
}

/// Transfers with their context and the screen's decisions.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ScreenedTransfers {
    pub events: Vec<Transfer>,
    /// Empty, or one per event.
    pub context: Vec<TransferContext>,
    /// The verdicts other than a plain approval, by event index, in index order; set by
    /// the leader's screen, applied as they are by every replica.
    pub decisions: Vec<Decision>,
}

impl ScreenedTransfers {
    pub fn context_of(&self, index: usize) -> TransferContext {
        self.context.get(index).copied().unwrap_or_default()
    }
}

/// The screen's assessment of event `index` of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub index: u32,
    pub assessment: Assessment,
}

/// An action on the branch's risk state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RiskAction {
    /// Freeze an account: it cannot send money until unfrozen.
    Freeze {
        account: u128,
        reason: ReasonCode,
        note: String,
    },
    Unfreeze {
        account: u128,
        note: String,
    },
    /// Post (release) or void (reject) a held transfer: `event` is the post or void
    /// transfer naming it in `pending_id`.
    Review {
        event: Transfer,
        note: String,
    },
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
    /// The outcome of a screened request: the ledger's failures, and the screen's
    /// decisions that took effect (holds, declines, freezes).
    Screened {
        timestamp: u64,
        results: Vec<CreateTransfersResult>,
        decisions: Vec<Decision>,
    },
    /// The outcome of a risk action: refused as a whole, or applied (a review's
    /// post or void may still fail in the ledger: its failures are listed).
    Risk {
        timestamp: u64,
        outcome: Result<Vec<CreateTransfersResult>, RiskRefusal>,
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
const TAG_SCREENED: u8 = 3;
const TAG_RISK: u8 = 4;
const ACTION_FREEZE: u8 = 1;
const ACTION_UNFREEZE: u8 = 2;
const ACTION_REVIEW: u8 = 3;
/// channel, merchant category, device, location flag, latitude, longitude, occurred at.
const CONTEXT_BYTES: usize = 1 + 2 + 8 + 1 + 4 + 4 + 8;
/// index, verdict, score, three reasons, freeze flag.
const DECISION_BYTES: usize = 4 + 1 + 2 + 6 + 1;

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
                        Request::Screened(screened) => encode_screened(&mut out, screened),
                        Request::Risk(action) => encode_action(&mut out, action),
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
                    if tag != TAG_RISK && events > reader.remaining() / RECORD_BYTES {
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
                        TAG_SCREENED => Request::Screened(decode_screened(&mut reader, events)?),
                        TAG_RISK => Request::Risk(decode_action(&mut reader, events)?),
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

/// Tag, event count, the records, the context count (0 or the event count) and
/// contexts, the decision count and decisions.
fn encode_screened(out: &mut Vec<u8>, screened: &ScreenedTransfers) {
    out.push(TAG_SCREENED);
    out.extend_from_slice(&count(screened.events.len()).to_le_bytes());
    for event in &screened.events {
        out.extend_from_slice(&event.to_bytes());
    }
    out.extend_from_slice(&count(screened.context.len()).to_le_bytes());
    for context in &screened.context {
        out.push(context.channel as u8);
        out.extend_from_slice(&context.merchant_category.to_le_bytes());
        out.extend_from_slice(&context.device.to_le_bytes());
        let location = context.location.unwrap_or(GeoPoint {
            lat_micro: 0,
            lon_micro: 0,
        });
        out.push(u8::from(context.location.is_some()));
        out.extend_from_slice(&location.lat_micro.to_le_bytes());
        out.extend_from_slice(&location.lon_micro.to_le_bytes());
        out.extend_from_slice(&context.occurred_at_ns.to_le_bytes());
    }
    out.extend_from_slice(&count(screened.decisions.len()).to_le_bytes());
    for decision in &screened.decisions {
        let assessment = &decision.assessment;
        out.extend_from_slice(&decision.index.to_le_bytes());
        out.push(assessment.verdict as u8);
        out.extend_from_slice(&assessment.score.to_le_bytes());
        for reason in assessment.reasons {
            out.extend_from_slice(&reason.0.to_le_bytes());
        }
        out.push(u8::from(assessment.freeze_debit_account));
    }
}

fn decode_screened(
    reader: &mut Reader<'_>,
    events: usize,
) -> Result<ScreenedTransfers, DecodeCommandError> {
    let events: Vec<Transfer> = (0..events)
        .map(|_| reader.record().map(Transfer::from_bytes))
        .collect::<Result<_, _>>()?;
    let contexts = reader.u32()? as usize;
    if contexts > reader.remaining() / CONTEXT_BYTES {
        return Err(DecodeCommandError("context count exceeds the data"));
    }
    if contexts != 0 && contexts != events.len() {
        return Err(DecodeCommandError(
            "context count differs from the event count",
        ));
    }
    let mut context = Vec::with_capacity(contexts);
    for _ in 0..contexts {
        let channel =
            Channel::from_u8(reader.u8()?).ok_or(DecodeCommandError("unknown channel"))?;
        let merchant_category = u16::from_le_bytes(reader.array()?);
        let device = reader.u64()?;
        let has_location = reader.u8()?;
        let lat_micro = i32::from_le_bytes(reader.array()?);
        let lon_micro = i32::from_le_bytes(reader.array()?);
        let occurred_at_ns = reader.u64()?;
        context.push(TransferContext {
            occurred_at_ns,
            channel,
            merchant_category,
            device,
            location: match has_location {
                0 => None,
                1 => Some(GeoPoint {
                    lat_micro,
                    lon_micro,
                }),
                _ => return Err(DecodeCommandError("bad location flag")),
            },
        });
    }
    let decision_count = reader.u32()? as usize;
    if decision_count > reader.remaining() / DECISION_BYTES {
        return Err(DecodeCommandError("decision count exceeds the data"));
    }
    let mut decisions = Vec::with_capacity(decision_count);
    for _ in 0..decision_count {
        let index = reader.u32()?;
        if index as usize >= events.len() {
            return Err(DecodeCommandError(
                "a decision names an event outside the request",
            ));
        }
        let verdict =
            Verdict::from_u8(reader.u8()?).ok_or(DecodeCommandError("unknown verdict"))?;
        let score = u16::from_le_bytes(reader.array()?);
        let mut reasons = [ReasonCode::NONE; 3];
        for reason in &mut reasons {
            *reason = ReasonCode(u16::from_le_bytes(reader.array()?));
        }
        let freeze_debit_account = match reader.u8()? {
            0 => false,
            1 => true,
            _ => return Err(DecodeCommandError("bad freeze flag")),
        };
        decisions.push(Decision {
            index,
            assessment: Assessment {
                verdict,
                score,
                reasons,
                freeze_debit_account,
            },
        });
    }
    Ok(ScreenedTransfers {
        events,
        context,
        decisions,
    })
}

/// Tag, a count of 1 (the action counts as one event), the action's tag and fields;
/// notes as a u16 length and UTF-8 bytes.
fn encode_action(out: &mut Vec<u8>, action: &RiskAction) {
    out.push(TAG_RISK);
    out.extend_from_slice(&1u32.to_le_bytes());
    let note = match action {
        RiskAction::Freeze {
            account,
            reason,
            note,
        } => {
            out.push(ACTION_FREEZE);
            out.extend_from_slice(&account.to_le_bytes());
            out.extend_from_slice(&reason.0.to_le_bytes());
            note
        }
        RiskAction::Unfreeze { account, note } => {
            out.push(ACTION_UNFREEZE);
            out.extend_from_slice(&account.to_le_bytes());
            note
        }
        RiskAction::Review { event, note } => {
            out.push(ACTION_REVIEW);
            out.extend_from_slice(&event.to_bytes());
            note
        }
    };
    let note = bounded_note(note);
    out.extend_from_slice(&u16::try_from(note.len()).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(note.as_bytes());
}

/// The note cut to [`NOTE_BYTES_MAX`] on a character boundary.
pub fn bounded_note(note: &str) -> &str {
    let mut end = note.len().min(NOTE_BYTES_MAX);
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    &note[..end]
}

fn decode_action(reader: &mut Reader<'_>, events: usize) -> Result<RiskAction, DecodeCommandError> {
    if events != 1 {
        return Err(DecodeCommandError("a risk action counts as one event"));
    }
    let tag = reader.u8()?;
    let note = |reader: &mut Reader<'_>| -> Result<String, DecodeCommandError> {
        let len = u16::from_le_bytes(reader.array()?) as usize;
        if len > NOTE_BYTES_MAX {
            return Err(DecodeCommandError("note too long"));
        }
        String::from_utf8(reader.take(len)?.to_vec())
            .map_err(|_| DecodeCommandError("note is not UTF-8"))
    };
    Ok(match tag {
        ACTION_FREEZE => {
            let account = u128::from_le_bytes(reader.array()?);
            let reason = ReasonCode(u16::from_le_bytes(reader.array()?));
            RiskAction::Freeze {
                account,
                reason,
                note: note(reader)?,
            }
        }
        ACTION_UNFREEZE => {
            let account = u128::from_le_bytes(reader.array()?);
            RiskAction::Unfreeze {
                account,
                note: note(reader)?,
            }
        }
        ACTION_REVIEW => {
            let event = Transfer::from_bytes(reader.record()?);
            RiskAction::Review {
                event,
                note: note(reader)?,
            }
        }
        _ => return Err(DecodeCommandError("unknown risk action")),
    })
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
                Request::Screened(ScreenedTransfers {
                    events: vec![transfer; 2],
                    context: vec![
                        TransferContext {
                            channel: Channel::Mobile,
                            merchant_category: 5411,
                            device: 77,
                            location: Some(GeoPoint {
                                lat_micro: 48_856_600,
                                lon_micro: -2_352_200,
                            }),
                            occurred_at_ns: 1_700_000_000_000_000_000,
                        },
                        TransferContext::default(),
                    ],
                    decisions: vec![Decision {
                        index: 1,
                        assessment: Assessment {
                            verdict: Verdict::Hold,
                            score: 812,
                            reasons: [
                                ReasonCode::NEW_DEVICE,
                                ReasonCode::rule(2),
                                ReasonCode::NONE,
                            ],
                            freeze_debit_account: true,
                        },
                    }],
                }),
                Request::screened(vec![transfer], Vec::new()),
                Request::Risk(RiskAction::Freeze {
                    account: 9,
                    reason: ReasonCode::FAN_IN,
                    note: "mule ring é".into(),
                }),
                Request::Risk(RiskAction::Unfreeze {
                    account: 9,
                    note: String::new(),
                }),
                Request::Risk(RiskAction::Review {
                    event: transfer,
                    note: "ok".into(),
                }),
            ],
        }
    }

    #[test]
    fn notes_are_bounded_on_a_character_boundary() {
        let long = "é".repeat(400);
        let cut = bounded_note(&long);
        assert!(cut.len() <= NOTE_BYTES_MAX);
        assert!(cut.len() >= NOTE_BYTES_MAX - 1);
        assert_eq!(bounded_note("short"), "short");
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
