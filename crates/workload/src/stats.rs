//! Tallies of batch outcomes by result code.

use std::collections::BTreeMap;

use corebank_ledger::{CreateTransferResult, CreateTransfersResult};

/// Counts events applied, created and failed, and failures by result code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResultTally {
    events: u64,
    failed: u64,
    by_result: BTreeMap<CreateTransferResult, u64>,
}

impl ResultTally {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one batch of `events` events and the failures the ledger reported.
    pub fn record(&mut self, events: usize, results: &[CreateTransfersResult]) {
        self.events += events as u64;
        self.failed += results.len() as u64;
        for result in results {
            *self.by_result.entry(result.result).or_default() += 1;
        }
    }

    /// Adds another tally to this one.
    pub fn merge(&mut self, other: &Self) {
        self.events += other.events;
        self.failed += other.failed;
        for (result, count) in &other.by_result {
            *self.by_result.entry(*result).or_default() += count;
        }
    }

    /// Events applied.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Events that succeeded (transfers created).
    pub fn created(&self) -> u64 {
        self.events - self.failed
    }

    /// Events that failed.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// How many events failed with `result`.
    pub fn count(&self, result: CreateTransferResult) -> u64 {
        self.by_result.get(&result).copied().unwrap_or(0)
    }

    /// How many events failed with the result named `name` (its wire name).
    pub fn count_by_name(&self, name: &str) -> u64 {
        CreateTransferResult::from_name(name).map_or(0, |result| self.count(result))
    }

    /// Failures by result, most frequent first (ties in code order).
    pub fn by_frequency(&self) -> Vec<(CreateTransferResult, u64)> {
        let mut rows: Vec<_> = self.by_result.iter().map(|(r, n)| (*r, *n)).collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        rows
    }

    /// Failures by result wire name, most frequent first.
    pub fn by_name(&self) -> Vec<(&'static str, u64)> {
        self.by_frequency()
            .into_iter()
            .map(|(r, n)| (r.as_str(), n))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use corebank_ledger::EventResult;

    #[test]
    fn tallies_by_code() {
        let mut tally = ResultTally::new();
        let fail = |index, result| EventResult { index, result };
        tally.record(
            10,
            &[
                fail(1, CreateTransferResult::Exists),
                fail(3, CreateTransferResult::ExceedsCredits),
                fail(4, CreateTransferResult::ExceedsCredits),
            ],
        );
        tally.record(5, &[]);
        assert_eq!(tally.events(), 15);
        assert_eq!(tally.failed(), 3);
        assert_eq!(tally.created(), 12);
        assert_eq!(tally.count(CreateTransferResult::ExceedsCredits), 2);
        assert_eq!(tally.count_by_name("exists"), 1);
        assert_eq!(tally.count_by_name("nonsense"), 0);
        assert_eq!(tally.by_name(), vec![("exceeds_credits", 2), ("exists", 1)]);
        let mut total = ResultTally::new();
        total.merge(&tally);
        total.merge(&tally);
        assert_eq!(total.events(), 30);
        assert_eq!(total.count(CreateTransferResult::Exists), 2);
    }
}
