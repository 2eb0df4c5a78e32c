//! Alerts: what the agent raises, kept in a bounded in-memory store with increasing
//! ids.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

/// The kind of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A branch held a transfer for review.
    Held,
    /// A branch declined a transfer.
    Declined,
    /// A branch froze an account.
    Frozen,
    /// The agent found mule accounts (a fan-in then fast fan-out, or a chain of them),
    /// possibly across branches.
    MuleRing,
}

impl AlertKind {
    pub const ALL: [AlertKind; 4] = [
        AlertKind::Held,
        AlertKind::Declined,
        AlertKind::Frozen,
        AlertKind::MuleRing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Held => "held",
            AlertKind::Declined => "declined",
            AlertKind::Frozen => "frozen",
            AlertKind::MuleRing => "mule_ring",
        }
    }

    /// The alert kind of a risk-journal event kind (`held`, `declined`, `frozen`);
    /// `None` for the others (unfrozen, released, rejected).
    pub fn of_risk_event(kind: &str) -> Option<AlertKind> {
        match kind {
            "held" => Some(AlertKind::Held),
            "declined" => Some(AlertKind::Declined),
            "frozen" => Some(AlertKind::Frozen),
            _ => None,
        }
    }
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Medium,
    High,
}

impl Severity {
    /// The stable name (as in the JSON).
    pub fn name(self) -> &'static str {
        match self {
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    /// High from a score of 900 (of 1000), medium below.
    pub fn of_score(score: u32) -> Severity {
        if score >= 900 {
            Severity::High
        } else {
            Severity::Medium
        }
    }
}

/// An alert before the store numbers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewAlert {
    pub kind: AlertKind,
    pub severity: Severity,
    /// The branch that reported it (none for cross-branch detections).
    pub branch: Option<u16>,
    /// When it happened (ledger ns).
    pub timestamp_ns: u64,
    /// The transfer (decimal u128), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
    /// The account concerned (the payer), decimal u128.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterparty_id: Option<String>,
    /// Minor units, decimal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_minor: Option<String>,
    /// 0..=1000, when scored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<u32>,
    /// Reason names, most important first.
    pub reasons: Vec<String>,
    /// The accounts involved (mule chains: upstream first), decimal u128.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// The branches involved.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<u16>,
    /// A sentence for people.
    pub summary: String,
    /// The risk-journal sequence number, for branch events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// Increasing from 1, never reused.
    pub id: u64,
    #[serde(flatten)]
    pub alert: NewAlert,
}

/// The most recent alerts, at most `capacity`; the oldest are dropped first.
#[derive(Debug)]
pub struct AlertStore {
    capacity: usize,
    alerts: VecDeque<Alert>,
    last_id: u64,
    by_kind: BTreeMap<AlertKind, u64>,
    dropped: u64,
}

impl AlertStore {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            alerts: VecDeque::new(),
            last_id: 0,
            by_kind: BTreeMap::new(),
            dropped: 0,
        }
    }

    /// Stores an alert; returns it with its id.
    pub fn push(&mut self, alert: NewAlert) -> Alert {
        self.last_id += 1;
        *self.by_kind.entry(alert.kind).or_default() += 1;
        let alert = Alert {
            id: self.last_id,
            alert,
        };
        if self.alerts.len() == self.capacity {
            self.alerts.pop_front();
            self.dropped += 1;
        }
        self.alerts.push_back(alert.clone());
        alert
    }

    /// Alerts with an id above `after`, oldest first, at most `limit`.
    pub fn after(&self, after: u64, limit: usize) -> Vec<Alert> {
        let start = self.alerts.partition_point(|a| a.id <= after);
        self.alerts.range(start..).take(limit).cloned().collect()
    }

    /// The id of the last alert raised (0: none yet).
    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    /// Alerts held now.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Alerts dropped to stay within the capacity.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Alerts raised since start, per kind (every kind listed).
    pub fn counts(&self) -> Vec<(AlertKind, u64)> {
        AlertKind::ALL
            .iter()
            .map(|k| (*k, self.by_kind.get(k).copied().unwrap_or(0)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn alert(kind: AlertKind, score: u32) -> NewAlert {
        NewAlert {
            kind,
            severity: Severity::of_score(score),
            branch: Some(1),
            timestamp_ns: 1,
            transfer_id: None,
            account_id: None,
            counterparty_id: None,
            amount_minor: None,
            score: Some(score),
            reasons: vec![],
            accounts: vec![],
            branches: vec![],
            summary: String::new(),
            sequence: None,
        }
    }

    #[test]
    fn bounded_with_increasing_ids() {
        let mut store = AlertStore::new(3);
        for i in 0..5 {
            let a = store.push(alert(AlertKind::Held, 100 * i));
            assert_eq!(a.id, u64::from(i) + 1);
        }
        store.push(alert(AlertKind::MuleRing, 950));
        assert_eq!(store.len(), 3);
        assert_eq!(store.dropped(), 3);
        assert_eq!(store.last_id(), 6);
        let ids: Vec<u64> = store.after(0, 100).iter().map(|a| a.id).collect();
        assert_eq!(ids, [4, 5, 6]);
        let ids: Vec<u64> = store.after(4, 1).iter().map(|a| a.id).collect();
        assert_eq!(ids, [5]);
        assert!(store.after(6, 10).is_empty());
        assert_eq!(
            store.counts(),
            [
                (AlertKind::Held, 5),
                (AlertKind::Declined, 0),
                (AlertKind::Frozen, 0),
                (AlertKind::MuleRing, 1)
            ]
        );
    }

    #[test]
    fn severity_and_kinds() {
        assert_eq!(Severity::of_score(899), Severity::Medium);
        assert_eq!(Severity::of_score(900), Severity::High);
        assert_eq!(AlertKind::of_risk_event("held"), Some(AlertKind::Held));
        assert_eq!(AlertKind::of_risk_event("released"), None);
        let json = serde_json::to_value(Alert {
            id: 7,
            alert: alert(AlertKind::MuleRing, 950),
        })
        .unwrap();
        assert_eq!(json["id"], 7);
        assert_eq!(json["kind"], "mule_ring");
        assert_eq!(json["severity"], "high");
    }
}
