//! corebank-screening: the contract between a branch's write pipeline and whatever screens its transfers.
//!
//! The pipeline (in `corebank-node`) builds one [`Candidate`] per new transfer, asks a
//! [`Screener`] for an [`Assessment`] of each on the leader before the batch is
//! proposed, and writes the non-approving verdicts into the log entry, so that every
//! replica applies the same outcome. After the entry is applied (on every replica) the
//! pipeline tells the screener what committed, so that features follow the ledger.
//! Scoring never runs inside apply.

/// How a transfer reached the bank. Stable numbers: they travel in the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Channel {
    #[default]
    Unknown = 0,
    Card = 1,
    Online = 2,
    Mobile = 3,
    Branch = 4,
    Atm = 5,
    /// Moved by the bank itself (clearing, fees, interest).
    Internal = 6,
}

impl Channel {
    pub const ALL: [Channel; 7] = [
        Channel::Unknown,
        Channel::Card,
        Channel::Online,
        Channel::Mobile,
        Channel::Branch,
        Channel::Atm,
        Channel::Internal,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Channel::Unknown => "unknown",
            Channel::Card => "card",
            Channel::Online => "online",
            Channel::Mobile => "mobile",
            Channel::Branch => "branch",
            Channel::Atm => "atm",
            Channel::Internal => "internal",
        }
    }

    pub fn from_name(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn from_u8(value: u8) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| *c as u8 == value)
    }
}

/// A place on Earth in micro-degrees (fits `i32`: ±180,000,000).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GeoPoint {
    pub lat_micro: i32,
    pub lon_micro: i32,
}

/// What the bank knows of a transfer beside the ledger's fields: where, how and from
/// which device it was asked for. All of it optional (zero / `None` when unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TransferContext {
    pub channel: Channel,
    /// ISO 18245 merchant category code; 0 when not a merchant payment.
    pub merchant_category: u16,
    /// A stable identifier of the customer's device (a hash); 0 when unknown.
    pub device: u64,
    pub location: Option<GeoPoint>,
    /// When the customer acted (ns since the epoch), when the payment message says so
    /// (a card authorisation's transaction time, a file of payments made earlier); 0
    /// when unknown: the ledger timestamp stands in. Features measure time with it.
    pub occurred_at_ns: u64,
}

impl TransferContext {
    /// The bank's own movement (a fee, a delivery from another branch, funding): never
    /// screened, only observed by the features.
    pub const INTERNAL: TransferContext = TransferContext {
        channel: Channel::Internal,
        merchant_category: 0,
        device: 0,
        location: None,
        occurred_at_ns: 0,
    };
}

/// One new transfer, as the screener sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub id: u128,
    pub debit_account: u128,
    pub credit_account: u128,
    /// Minor units.
    pub amount: u128,
    /// The currency (the ledger's `ledger` field).
    pub ledger: u32,
    /// The transfer code (why the money moves).
    pub code: u16,
    /// A pending transfer (a reservation), which cannot be held, only approved or declined.
    pub pending: bool,
    /// When the transfer happened: the context's `occurred_at_ns` when given, else the
    /// ledger timestamp proposed for (or, after commit, given to) the transfer.
    pub timestamp_ns: u64,
    /// When the debit account was created (its ledger timestamp); 0 when unknown.
    pub debit_account_created_ns: u64,
    /// When the credit account was created; 0 when unknown.
    pub credit_account_created_ns: u64,
    /// What the debit account can still spend before this transfer (posted credits
    /// minus posted and pending debits, floored at zero).
    pub debit_available: u128,
    pub context: TransferContext,
}

/// What to do with a transfer. Stable numbers: they travel in the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Verdict {
    #[default]
    Approve = 0,
    /// Create the transfer pending; an analyst posts or voids it.
    Hold = 1,
    /// Refuse the transfer with the fraud result code.
    Decline = 2,
}

impl Verdict {
    pub const fn name(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Hold => "hold",
            Verdict::Decline => "decline",
        }
    }

    pub fn from_u8(value: u8) -> Option<Verdict> {
        match value {
            0 => Some(Verdict::Approve),
            1 => Some(Verdict::Hold),
            2 => Some(Verdict::Decline),
            _ => None,
        }
    }
}

/// Why a transfer scored as it did. Codes below [`ReasonCode::RULE_BASE`] are the
/// built-in reasons listed in [`ReasonCode::BUILT_IN`]; a code at or above it is the
/// rule with index `code - RULE_BASE` of the rules file in force (the engine names it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReasonCode(pub u16);

macro_rules! reasons {
    ($( $name:ident = $code:literal, $text:literal, $sentence:literal; )*) => {
        impl ReasonCode {
            $( #[doc = $sentence] pub const $name: ReasonCode = ReasonCode($code); )*

            /// Every built-in reason with its stable name and a sentence.
            pub const BUILT_IN: &'static [(ReasonCode, &'static str, &'static str)] =
                &[ $( (ReasonCode($code), $text, $sentence), )* ];
        }
    };
}

reasons! {
    NONE = 0, "none", "No reason.";
    AMOUNT_UNUSUAL = 1, "amount_unusual", "The amount is far above what this account usually moves.";
    VELOCITY_COUNT = 2, "velocity_count", "Many transfers from this account in a short time.";
    VELOCITY_SUM = 3, "velocity_sum", "A large total leaving this account in a short time.";
    NEW_COUNTERPARTY = 4, "new_counterparty", "The account has never paid this counterparty before.";
    NEW_DEVICE = 5, "new_device", "The transfer comes from a device this account has not used before.";
    IMPOSSIBLE_TRAVEL = 6, "impossible_travel", "The location is too far from the previous one for the time between them.";
    UNUSUAL_HOUR = 7, "unusual_hour", "The transfer is at an hour when this account is rarely active.";
    NEW_ACCOUNT = 8, "new_account", "The account was opened very recently.";
    FAN_IN = 9, "fan_in", "Money arrived from many different payers in a short time.";
    FAN_OUT = 10, "fan_out", "Money left to many different payees in a short time.";
    NEAR_THRESHOLD = 11, "near_threshold", "Repeated amounts just under the reporting threshold.";
    CARD_TESTING = 12, "card_testing", "A burst of tiny payments, typical of testing a stolen card.";
    DORMANT_REACTIVATION = 13, "dormant_reactivation", "A long-dormant account suddenly moves money out.";
    DRAIN = 14, "drain", "The transfer empties most of the account.";
    MODEL = 15, "model", "The supervised fraud model scored the transfer high.";
    ANOMALY = 16, "anomaly", "The transfer is unlike this bank's normal traffic.";
    NEW_LOCATION = 17, "new_location", "The transfer comes from far away from where this account is usually used.";
    PASS_THROUGH = 18, "pass_through", "Money leaves the account soon after it arrived.";
    SCREENING_UNAVAILABLE = 19, "screening_unavailable", "The risk checks could not run; the branch's failure policy decided.";
    FROZEN_ACCOUNT = 20, "frozen_account", "The account is frozen after repeated high-risk transfers.";
}

impl ReasonCode {
    /// The first code of the rules file's rules.
    pub const RULE_BASE: u16 = 1_000;

    pub const fn is_none(self) -> bool {
        self.0 == 0
    }

    /// The stable name of a built-in reason; `None` for a rule's code.
    pub fn name(self) -> Option<&'static str> {
        Self::BUILT_IN
            .iter()
            .find(|(code, _, _)| *code == self)
            .map(|(_, name, _)| *name)
    }

    pub fn description(self) -> Option<&'static str> {
        Self::BUILT_IN
            .iter()
            .find(|(code, _, _)| *code == self)
            .map(|(_, _, sentence)| *sentence)
    }

    pub fn from_name(name: &str) -> Option<ReasonCode> {
        Self::BUILT_IN
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(code, _, _)| *code)
    }

    /// The code of rule `index` of the rules file.
    pub fn rule(index: u16) -> ReasonCode {
        ReasonCode(Self::RULE_BASE.saturating_add(index))
    }
}

/// The reasons an assessment carries at most.
pub const REASONS_MAX: usize = 3;

/// A screener's answer for one candidate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Assessment {
    pub verdict: Verdict,
    /// Risk from 0 (none) to 1,000 (certain fraud).
    pub score: u16,
    /// The strongest reasons first; [`ReasonCode::NONE`] pads.
    pub reasons: [ReasonCode; REASONS_MAX],
    /// Freeze the debit account (repeated high risk) after this transfer's entry.
    pub freeze_debit_account: bool,
}

impl Assessment {
    pub const SCORE_MAX: u16 = 1_000;

    pub fn approve() -> Assessment {
        Assessment::default()
    }

    /// The reasons that are set.
    pub fn reasons(&self) -> impl Iterator<Item = ReasonCode> + '_ {
        self.reasons.iter().copied().filter(|r| !r.is_none())
    }
}

/// Why a screener could not assess a batch; the branch's failure policy decides then.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScreenError {
    #[error("no risk model is loaded ({0})")]
    ModelMissing(String),
    #[error("the risk checks failed: {0}")]
    Failed(String),
}

/// What a branch's pipeline calls. Implementations keep their own state behind interior
/// mutability: both methods take `&self` and may be called from different threads.
pub trait Screener: Send + Sync + std::fmt::Debug {
    /// Assesses `batch` (new transfers, in log order) and pushes one assessment per
    /// candidate onto `out`. Called on the leader only, before the batch is proposed.
    fn screen(&self, batch: &[Candidate], out: &mut Vec<Assessment>) -> Result<(), ScreenError>;

    /// The transfers of `batch` that were applied (created, held included), with their
    /// ledger timestamps. Called on every replica after apply; never decides anything.
    fn committed(&self, batch: &[Candidate]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_unique_and_named() {
        let mut codes = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for (code, name, sentence) in ReasonCode::BUILT_IN {
            assert!(codes.insert(*code), "duplicate code {code:?}");
            assert!(names.insert(*name), "duplicate name {name}");
            assert!(code.0 < ReasonCode::RULE_BASE);
            assert!(sentence.ends_with('.'));
            assert_eq!(ReasonCode::from_name(name), Some(*code));
        }
        assert_eq!(ReasonCode::rule(3).name(), None);
        assert_eq!(ReasonCode::rule(3).0, 1_003);
    }

    #[test]
    fn stable_numbers_round_trip() {
        for channel in Channel::ALL {
            assert_eq!(Channel::from_u8(channel as u8), Some(channel));
            assert_eq!(Channel::from_name(channel.name()), Some(channel));
        }
        assert_eq!(Channel::from_u8(7), None);
        for verdict in [Verdict::Approve, Verdict::Hold, Verdict::Decline] {
            assert_eq!(Verdict::from_u8(verdict as u8), Some(verdict));
        }
        assert_eq!(Verdict::from_u8(3), None);
    }
}
