//! Cross-branch features and mule-ring detection.
//!
//! Fed with the committed transfers of every branch ([`CommittedTransfer`]), the
//! [`MuleDetector`] keeps, per customer account, its recent inflows (who paid, from
//! which branch) and outflows over a sliding window, and flags:
//!
//! - a **mule account**: it received from at least `min_payers` distinct payers (any
//!   branch) within `window_ns` and sent at least `onward_percent` % of that onward
//!   within `onward_ns` of the money arriving;
//! - a **mule ring**: a mule account whose onward payees are mule accounts
//!   themselves; the chain of mule accounts is reported.
//!
//! Cross-branch legs go through clearing accounts (crate `corebank-clearing`): the
//! payer's branch records `payer → clearing` (code `CROSS_BRANCH_OUT`, pending, the
//! beneficiary in `user_data_128`), the payee's branch `clearing → payee` (code
//! `CROSS_BRANCH_IN`, the real payer in `user_data_128`, its branch in
//! `user_data_32`). Both are mapped back to the real payer and payee; clearing and
//! other internal accounts (cash, fees, holds) are never flagged.
//!
//! Pure: no I/O, no clock (time is the transfers' timestamps), memory bounded by
//! `max_accounts` × `max_movements`.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use corebank_banking::{CLEARING_SERIAL_BASE, transfer_code};
use serde::Serialize;

/// Account ids are `branch * 10^10 + serial`.
const SERIALS_PER_BRANCH: u128 = 10_000_000_000;
/// Customer serials start here (below: the branch's own accounts).
const FIRST_CUSTOMER_SERIAL: u128 = 1_000;
const HOUR_NS: u64 = 3_600 * 1_000_000_000;

// Ledger transfer flags (corebank-ledger's `TransferFlags` bits).
const FLAG_PENDING: u32 = 1 << 1;
const FLAG_POST: u32 = 1 << 2;
const FLAG_VOID: u32 = 1 << 3;

/// The branch an account id belongs to.
pub fn branch_of(account: u128) -> u16 {
    u16::try_from(account / SERIALS_PER_BRANCH).unwrap_or(u16::MAX)
}

/// Whether the id is a customer account (not cash, fees, holds or clearing).
pub fn is_customer(account: u128) -> bool {
    let serial = account % SERIALS_PER_BRANCH;
    (FIRST_CUSTOMER_SERIAL..u128::from(CLEARING_SERIAL_BASE)).contains(&serial)
}

/// Whether the id is a clearing account (a branch's position towards another).
pub fn is_clearing(account: u128) -> bool {
    account % SERIALS_PER_BRANCH >= u128::from(CLEARING_SERIAL_BASE)
}

/// A transfer as a branch committed it (from its event stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommittedTransfer {
    /// The branch that committed it.
    pub branch: u16,
    /// Its ledger timestamp (ns).
    pub timestamp_ns: u64,
    pub id: u128,
    pub debit: u128,
    pub credit: u128,
    /// Minor units.
    pub amount: u128,
    pub ledger: u32,
    pub code: u16,
    /// Ledger transfer flags.
    pub flags: u32,
    pub user_data_128: u128,
    pub user_data_32: u32,
}

/// Money that moved from a payer to a payee (clearing legs mapped to the real
/// parties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Movement {
    pub timestamp_ns: u64,
    /// The branch that reported it.
    pub branch: u16,
    pub transfer_id: u128,
    pub payer: u128,
    pub payer_branch: u16,
    pub payee: u128,
    pub payee_branch: u16,
    pub amount: u128,
    pub ledger: u32,
    /// Which side of the movement this record tells: a cross-branch transfer is seen
    /// twice (the payer's outflow at the source, the payee's inflow at the
    /// destination); a transfer inside a branch tells both.
    pub sides: Sides,
}

/// Which account's history a [`Movement`] updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sides {
    Both,
    PayerOnly,
    PayeeOnly,
}

impl CommittedTransfer {
    /// The money movement this transfer stands for, if any: pending transfers move
    /// nothing until posted (except the reservation leg of a cross-branch transfer,
    /// which is counted as the payer's outflow once), voids move nothing.
    pub fn movement(&self) -> Option<Movement> {
        if self.flags & FLAG_VOID != 0 || self.amount == 0 {
            return None;
        }
        let base = Movement {
            timestamp_ns: self.timestamp_ns,
            branch: self.branch,
            transfer_id: self.id,
            payer: self.debit,
            payer_branch: branch_of(self.debit),
            payee: self.credit,
            payee_branch: branch_of(self.credit),
            amount: self.amount,
            ledger: self.ledger,
            sides: Sides::Both,
        };
        if self.code == transfer_code::CROSS_BRANCH_OUT {
            // Counted once, at the reservation (the post carries no beneficiary).
            if self.flags & FLAG_PENDING == 0 || self.flags & FLAG_POST != 0 {
                return None;
            }
            let payee = if self.user_data_128 != 0 {
                self.user_data_128
            } else {
                self.credit
            };
            return Some(Movement {
                payee,
                payee_branch: branch_of(payee),
                sides: Sides::PayerOnly,
                ..base
            });
        }
        if self.code == transfer_code::CROSS_BRANCH_IN {
            let payer = if self.user_data_128 != 0 {
                self.user_data_128
            } else {
                self.debit
            };
            let payer_branch = u16::try_from(self.user_data_32)
                .ok()
                .filter(|b| *b != 0)
                .unwrap_or_else(|| branch_of(payer));
            return Some(Movement {
                payer,
                payer_branch,
                sides: Sides::PayeeOnly,
                ..base
            });
        }
        if self.flags & FLAG_PENDING != 0 {
            return None;
        }
        Some(base)
    }
}

/// The detector's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorConfig {
    /// Fan-in window: distinct payers are counted over it (default 24 h).
    pub window_ns: u64,
    /// How soon after the money arrives it must leave (default 6 h).
    pub onward_ns: u64,
    /// Distinct payers that make a fan-in (default 3).
    pub min_payers: usize,
    /// Share of the money received that must leave, in percent (default 50).
    pub onward_percent: u128,
    /// Accounts tracked at most; the least recently active are forgotten first.
    pub max_accounts: usize,
    /// Movements kept per account and direction.
    pub max_movements: usize,
    /// Longest chain reported.
    pub max_chain: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            window_ns: 24 * HOUR_NS,
            onward_ns: 6 * HOUR_NS,
            min_payers: 3,
            onward_percent: 50,
            max_accounts: 200_000,
            max_movements: 64,
            max_chain: 8,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Flow {
    timestamp_ns: u64,
    /// The payer (for an inflow) or the payee (for an outflow).
    party: u128,
    party_branch: u16,
    amount: u128,
}

#[derive(Debug, Default)]
struct AccountState {
    inflows: VecDeque<Flow>,
    outflows: VecDeque<Flow>,
    last_seen_ns: u64,
    /// When it was last flagged as a mule.
    flagged_ns: Option<u64>,
    /// When it was last part of a reported ring.
    ring_reported_ns: Option<u64>,
}

/// Cross-branch features of one account over the window ending at its latest
/// movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct AccountFeatures {
    pub distinct_payers: usize,
    pub distinct_payer_branches: usize,
    /// Minor units received in the window (all currencies summed: a signal, not a
    /// balance).
    pub money_in: u128,
    /// Minor units sent onward: after the first inflow of the window, within the
    /// onward delay of the last one.
    pub money_out: u128,
    /// From the last inflow before the latest outflow to that outflow (ns).
    pub in_to_out_ns: Option<u64>,
}

/// Something the detector found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detection {
    /// `mule_account` (one account) or `mule_ring` (a chain of them).
    pub kind: &'static str,
    /// The mule accounts, upstream first.
    pub accounts: Vec<u128>,
    /// Their branches, in the same order.
    pub branches: Vec<u16>,
    /// The distinct payers into the first account of the chain.
    pub payers: Vec<u128>,
    /// The first account's features when it was flagged.
    pub features: AccountFeatures,
    /// The timestamp of the transfer that completed the pattern.
    pub timestamp_ns: u64,
}

/// Mule-account and mule-ring detection over every branch's transfers.
#[derive(Debug, Default)]
pub struct MuleDetector {
    config: DetectorConfig,
    accounts: HashMap<u128, AccountState>,
    /// Mule → mule links already reported.
    reported_links: HashSet<(u128, u128)>,
    /// Movements seen, for the figures.
    movements: u64,
    /// Transfers that moved no money (pending, voids) or involved no customer.
    ignored: u64,
}

impl MuleDetector {
    pub fn new(config: DetectorConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Accounts tracked now.
    pub fn tracked_accounts(&self) -> usize {
        self.accounts.len()
    }

    /// Movements processed so far.
    pub fn movements(&self) -> u64 {
        self.movements
    }

    /// Accounts currently flagged as mules.
    pub fn flagged_accounts(&self) -> usize {
        self.accounts
            .values()
            .filter(|a| a.flagged_ns.is_some())
            .count()
    }

    /// Feeds one committed transfer; returns what it completed.
    pub fn observe(&mut self, transfer: &CommittedTransfer) -> Vec<Detection> {
        match transfer.movement() {
            Some(movement) => self.observe_movement(&movement),
            None => {
                self.ignored += 1;
                Vec::new()
            }
        }
    }

    /// Feeds one movement; returns what it completed.
    pub fn observe_movement(&mut self, m: &Movement) -> Vec<Detection> {
        self.movements += 1;
        let now = m.timestamp_ns;
        let keep = self.config.window_ns.saturating_add(self.config.onward_ns);
        let cap = self.config.max_movements.max(1);
        let payee_side = matches!(m.sides, Sides::Both | Sides::PayeeOnly);
        let payer_side = matches!(m.sides, Sides::Both | Sides::PayerOnly);
        if payee_side && is_customer(m.payee) && m.payee != m.payer {
            let state = self.accounts.entry(m.payee).or_default();
            push(
                &mut state.inflows,
                Flow {
                    timestamp_ns: now,
                    party: m.payer,
                    party_branch: m.payer_branch,
                    amount: m.amount,
                },
                cap,
                keep,
            );
            state.last_seen_ns = state.last_seen_ns.max(now);
        }
        let mut detections = Vec::new();
        if payer_side && is_customer(m.payer) && m.payee != m.payer {
            let state = self.accounts.entry(m.payer).or_default();
            push(
                &mut state.outflows,
                Flow {
                    timestamp_ns: now,
                    party: m.payee,
                    party_branch: m.payee_branch,
                    amount: m.amount,
                },
                cap,
                keep,
            );
            state.last_seen_ns = state.last_seen_ns.max(now);
            detections = self.check(m.payer, now);
        }
        // A payee already flagged that now receives from a flagged mule: a ring link.
        if payee_side
            && self.is_flagged(m.payee)
            && self.is_flagged(m.payer)
            && let Some(ring) = self.link(m.payer, m.payee, now)
        {
            detections.push(ring);
        }
        if self.accounts.len() > self.config.max_accounts {
            self.evict();
        }
        detections
    }

    fn is_flagged(&self, account: u128) -> bool {
        self.accounts
            .get(&account)
            .is_some_and(|a| a.flagged_ns.is_some())
    }

    /// The cross-branch features of an account over the window ending at `now`.
    pub fn features(&self, account: u128, now: u64) -> AccountFeatures {
        let Some(state) = self.accounts.get(&account) else {
            return AccountFeatures::default();
        };
        let from = now.saturating_sub(self.config.window_ns);
        let inflows: Vec<&Flow> = state
            .inflows
            .iter()
            .filter(|f| f.timestamp_ns >= from && f.timestamp_ns <= now)
            .collect();
        let payers: HashSet<u128> = inflows.iter().map(|f| f.party).collect();
        let payer_branches: HashSet<u16> = inflows.iter().map(|f| f.party_branch).collect();
        let money_in: u128 = inflows.iter().map(|f| f.amount).sum();
        let first_in = inflows.iter().map(|f| f.timestamp_ns).min();
        let last_in = inflows.iter().map(|f| f.timestamp_ns).max();
        let money_out = match (first_in, last_in) {
            (Some(first), Some(last)) => {
                let until = last.saturating_add(self.config.onward_ns);
                state
                    .outflows
                    .iter()
                    .filter(|f| f.timestamp_ns >= first && f.timestamp_ns <= until)
                    .map(|f| f.amount)
                    .sum()
            }
            _ => 0,
        };
        let in_to_out_ns = state.outflows.back().and_then(|out| {
            state
                .inflows
                .iter()
                .filter(|f| f.timestamp_ns <= out.timestamp_ns)
                .map(|f| f.timestamp_ns)
                .max()
                .map(|t| out.timestamp_ns - t)
        });
        AccountFeatures {
            distinct_payers: payers.len(),
            distinct_payer_branches: payer_branches.len(),
            money_in,
            money_out,
            in_to_out_ns,
        }
    }

    /// After an outflow of `account`: is it a mule now, and does it link a ring?
    fn check(&mut self, account: u128, now: u64) -> Vec<Detection> {
        let features = self.features(account, now);
        let mule = features.distinct_payers >= self.config.min_payers
            && features.money_in > 0
            && features.money_out.saturating_mul(100)
                >= features.money_in.saturating_mul(self.config.onward_percent)
            && features
                .in_to_out_ns
                .is_some_and(|d| d <= self.config.onward_ns);
        let mut detections = Vec::new();
        if !mule {
            return detections;
        }
        let window = self.config.window_ns;
        let Some(state) = self.accounts.get_mut(&account) else {
            return detections;
        };
        let newly = state
            .flagged_ns
            .is_none_or(|t| now.saturating_sub(t) > window);
        state.flagged_ns = Some(now);
        if newly {
            let from = now.saturating_sub(window);
            let payers: BTreeSet<u128> = state
                .inflows
                .iter()
                .filter(|f| f.timestamp_ns >= from)
                .map(|f| f.party)
                .collect();
            detections.push(Detection {
                kind: "mule_account",
                accounts: vec![account],
                branches: vec![branch_of(account)],
                payers: payers.into_iter().collect(),
                features,
                timestamp_ns: now,
            });
        }
        // Links to flagged payees (downstream) and from flagged payers (upstream).
        let (payees, payers) = self.neighbours(account, now);
        for payee in payees {
            if self.is_flagged(payee)
                && let Some(ring) = self.link(account, payee, now)
            {
                detections.push(ring);
            }
        }
        for payer in payers {
            if self.is_flagged(payer)
                && let Some(ring) = self.link(payer, account, now)
            {
                detections.push(ring);
            }
        }
        detections
    }

    /// Customer payees and payers of `account` within the window.
    fn neighbours(&self, account: u128, now: u64) -> (Vec<u128>, Vec<u128>) {
        let from = now.saturating_sub(self.config.window_ns);
        let Some(state) = self.accounts.get(&account) else {
            return (Vec::new(), Vec::new());
        };
        let payees: BTreeSet<u128> = state
            .outflows
            .iter()
            .filter(|f| f.timestamp_ns >= from && is_customer(f.party) && f.party != account)
            .map(|f| f.party)
            .collect();
        let payers: BTreeSet<u128> = state
            .inflows
            .iter()
            .filter(|f| f.timestamp_ns >= from && is_customer(f.party) && f.party != account)
            .map(|f| f.party)
            .collect();
        (payees.into_iter().collect(), payers.into_iter().collect())
    }

    /// Whether `account` was part of a ring reported within the window.
    fn in_reported_ring(&self, account: u128, now: u64) -> bool {
        self.accounts
            .get(&account)
            .and_then(|a| a.ring_reported_ns)
            .is_some_and(|t| now.saturating_sub(t) <= self.config.window_ns)
    }

    /// A new mule → mule link: the whole chain through it. A link between two accounts
    /// both already in a ring reported within the window adds nothing new and is not
    /// reported again (a dense web of mules gives one alert per new account, not one
    /// per pair).
    fn link(&mut self, from: u128, to: u128, now: u64) -> Option<Detection> {
        if from == to
            || (self.in_reported_ring(from, now) && self.in_reported_ring(to, now))
            || !self.reported_links.insert((from, to))
        {
            return None;
        }
        if self.reported_links.len() > self.config.max_accounts {
            // Bounded: the per-account stamps carry the deduplication from here.
            self.reported_links.clear();
            self.reported_links.insert((from, to));
        }
        // Walk upstream from `from` and downstream from `to` through flagged accounts.
        let max = self.config.max_chain.max(2);
        let mut chain: VecDeque<u128> = VecDeque::from([from, to]);
        let mut seen: HashSet<u128> = HashSet::from([from, to]);
        let mut head = from;
        while chain.len() < max {
            let (_, payers) = self.neighbours(head, now);
            let Some(up) = payers
                .into_iter()
                .find(|p| self.is_flagged(*p) && !seen.contains(p))
            else {
                break;
            };
            seen.insert(up);
            chain.push_front(up);
            head = up;
        }
        let mut tail = to;
        while chain.len() < max {
            let (payees, _) = self.neighbours(tail, now);
            let Some(down) = payees
                .into_iter()
                .find(|p| self.is_flagged(*p) && !seen.contains(p))
            else {
                break;
            };
            seen.insert(down);
            chain.push_back(down);
            tail = down;
        }
        let accounts: Vec<u128> = chain.into_iter().collect();
        let first = accounts.first().copied().unwrap_or(from);
        let window_from = now.saturating_sub(self.config.window_ns);
        let payers: BTreeSet<u128> = self
            .accounts
            .get(&first)
            .map(|s| {
                s.inflows
                    .iter()
                    .filter(|f| f.timestamp_ns >= window_from)
                    .map(|f| f.party)
                    .collect()
            })
            .unwrap_or_default();
        for account in &accounts {
            if let Some(state) = self.accounts.get_mut(account) {
                state.ring_reported_ns = Some(now);
            }
        }
        Some(Detection {
            kind: "mule_ring",
            branches: accounts.iter().map(|a| branch_of(*a)).collect(),
            features: self.features(first, now),
            accounts,
            payers: payers.into_iter().collect(),
            timestamp_ns: now,
        })
    }

    /// Forgets the least recently active tenth of the accounts.
    fn evict(&mut self) {
        let target = self.config.max_accounts - self.config.max_accounts / 10;
        let excess = self.accounts.len().saturating_sub(target);
        if excess == 0 {
            return;
        }
        let mut seen: Vec<u64> = self.accounts.values().map(|a| a.last_seen_ns).collect();
        seen.sort_unstable();
        let cutoff = seen.get(excess.saturating_sub(1)).copied().unwrap_or(0);
        let mut removed = 0;
        self.accounts.retain(|_, a| {
            if removed < excess && a.last_seen_ns <= cutoff {
                removed += 1;
                false
            } else {
                true
            }
        });
        let accounts = &self.accounts;
        self.reported_links
            .retain(|(a, b)| accounts.contains_key(a) && accounts.contains_key(b));
    }
}

fn push(flows: &mut VecDeque<Flow>, flow: Flow, cap: usize, keep_ns: u64) {
    let from = flow.timestamp_ns.saturating_sub(keep_ns);
    while flows.front().is_some_and(|f| f.timestamp_ns < from) {
        flows.pop_front();
    }
    while flows.len() >= cap {
        flows.pop_front();
    }
    flows.push_back(flow);
}

#[cfg(test)]
mod tests;
