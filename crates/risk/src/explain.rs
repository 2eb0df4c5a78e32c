//! Reason codes: the features that drove a score, and the one scoring interface over
//! both kinds of model.

// Contributions are model maths (floats), never money.
#![allow(clippy::float_arithmetic)]

/// Keeps in `v` the `k` entries with the largest absolute contribution, largest first
/// (ties by feature index). Sorts in place: no allocation.
pub(crate) fn top_k(v: &mut Vec<(usize, f64)>, k: usize) {
    let by_size =
        |a: &(usize, f64), b: &(usize, f64)| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0));
    if k < v.len() && k > 0 {
        v.select_nth_unstable_by(k - 1, by_size);
    }
    v.truncate(k);
    v.sort_unstable_by(by_size);
}

/// One scoring interface over every risk model: a score in [0, 1] (higher = riskier)
/// and the features that drove it.
pub trait Scorer {
    /// The score of one row (features in the model's order, `NaN` = missing).
    fn score(&self, row: &[f64]) -> f64;

    /// The score, and in `out` (cleared first, reused without allocation once grown to
    /// the number of features) up to `k` pairs (feature index, contribution), the
    /// largest absolute contribution first.
    fn score_explained_into(&self, row: &[f64], k: usize, out: &mut Vec<(usize, f64)>) -> f64;

    /// [`Scorer::score_explained_into`] into a new vector.
    fn score_explained(&self, row: &[f64], k: usize) -> (f64, Vec<(usize, f64)>) {
        let mut out = Vec::new();
        let s = self.score_explained_into(row, k, &mut out);
        (s, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_by_absolute_size() {
        let mut v = vec![(0, 0.1), (1, -3.0), (2, 2.0), (3, 0.0)];
        top_k(&mut v, 2);
        assert_eq!(v, vec![(1, -3.0), (2, 2.0)]);
        let mut w = vec![(0, 1.0)];
        top_k(&mut w, 5);
        assert_eq!(w, vec![(0, 1.0)]);
    }
}
