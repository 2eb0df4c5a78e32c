//! Evaluation metrics of a binary scorer: AUPRC (average precision), ROC-AUC, recall at
//! a false-positive rate, precision at a recall, and the confusion matrix at a threshold.

// Metrics are ratios of counts: floats are the right type (never money).
#![allow(clippy::float_arithmetic)]

use std::cmp::Ordering;

/// Counts at one threshold (score >= threshold is flagged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Confusion {
    /// Fraud flagged.
    pub tp: u64,
    /// Legitimate flagged.
    pub fp: u64,
    /// Legitimate passed.
    pub tn: u64,
    /// Fraud passed.
    pub fn_: u64,
}

/// Every figure of an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Average precision: sum over positives of precision at their rank.
    pub auprc: f64,
    /// Area under the ROC curve (ties count half).
    pub roc_auc: f64,
    /// Highest recall with false-positive rate at most 1%.
    pub recall_at_1pct_fpr: f64,
    /// Highest recall with false-positive rate at most 0.1%.
    pub recall_at_01pct_fpr: f64,
    /// Highest precision with recall at least 80%.
    pub precision_at_80pct_recall: f64,
    /// The confusion matrix at the threshold given.
    pub confusion: Confusion,
    /// Positives and negatives.
    pub positives: u64,
    /// Negatives.
    pub negatives: u64,
}

/// Operating points, one per distinct score, from the highest score down:
/// (true positives, false positives) flagged at that score and above.
fn curve(scores: &[f64], labels: &[bool]) -> Vec<(u64, u64)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap_or(Ordering::Equal));
    let mut points = Vec::new();
    let (mut tp, mut fp) = (0u64, 0u64);
    for (k, &i) in order.iter().enumerate() {
        if labels[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_tie = order.get(k + 1).is_none_or(|&n| scores[n] != scores[i]);
        if last_of_tie {
            points.push((tp, fp));
        }
    }
    points
}

/// Confusion matrix with `score >= threshold` flagged.
pub fn confusion(scores: &[f64], labels: &[bool], threshold: f64) -> Confusion {
    let mut c = Confusion::default();
    for (&s, &l) in scores.iter().zip(labels) {
        match (s >= threshold, l) {
            (true, true) => c.tp += 1,
            (true, false) => c.fp += 1,
            (false, false) => c.tn += 1,
            (false, true) => c.fn_ += 1,
        }
    }
    c
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Highest recall whose false-positive rate is at most `max_fpr`.
pub fn recall_at_fpr(scores: &[f64], labels: &[bool], max_fpr: f64) -> f64 {
    let p = labels.iter().filter(|&&l| l).count() as u64;
    let n = labels.len() as u64 - p;
    curve(scores, labels)
        .into_iter()
        .filter(|&(_, fp)| ratio(fp, n) <= max_fpr)
        .map(|(tp, _)| ratio(tp, p))
        .fold(0.0, f64::max)
}

/// Highest precision whose recall is at least `min_recall`.
pub fn precision_at_recall(scores: &[f64], labels: &[bool], min_recall: f64) -> f64 {
    let p = labels.iter().filter(|&&l| l).count() as u64;
    curve(scores, labels)
        .into_iter()
        .filter(|&(tp, _)| ratio(tp, p) >= min_recall)
        .map(|(tp, fp)| ratio(tp, tp + fp))
        .fold(0.0, f64::max)
}

/// Average precision (scikit-learn's definition): sum of (R_k - R_{k-1}) * P_k.
pub fn auprc(scores: &[f64], labels: &[bool]) -> f64 {
    let p = labels.iter().filter(|&&l| l).count() as u64;
    let mut prev_recall = 0.0;
    let mut ap = 0.0;
    for (tp, fp) in curve(scores, labels) {
        let r = ratio(tp, p);
        ap += (r - prev_recall) * ratio(tp, tp + fp);
        prev_recall = r;
    }
    ap
}

/// ROC-AUC by the trapezoid rule over the operating points (ties count half).
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let p = labels.iter().filter(|&&l| l).count() as u64;
    let n = labels.len() as u64 - p;
    let (mut px, mut py, mut area) = (0.0, 0.0, 0.0);
    for (tp, fp) in curve(scores, labels) {
        let (x, y) = (ratio(fp, n), ratio(tp, p));
        area += (x - px) * (y + py) / 2.0;
        px = x;
        py = y;
    }
    area
}

/// Every metric at once; `threshold` is for the confusion matrix.
pub fn evaluate(scores: &[f64], labels: &[bool], threshold: f64) -> Metrics {
    let positives = labels.iter().filter(|&&l| l).count() as u64;
    Metrics {
        auprc: auprc(scores, labels),
        roc_auc: roc_auc(scores, labels),
        recall_at_1pct_fpr: recall_at_fpr(scores, labels, 0.01),
        recall_at_01pct_fpr: recall_at_fpr(scores, labels, 0.001),
        precision_at_80pct_recall: precision_at_recall(scores, labels, 0.8),
        confusion: confusion(scores, labels, threshold),
        positives,
        negatives: labels.len() as u64 - positives,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    // scores 0.9 P, 0.8 N, 0.7 P, 0.6 N, 0.5 P, 0.1 N
    const S: [f64; 6] = [0.9, 0.8, 0.7, 0.6, 0.5, 0.1];
    const L: [bool; 6] = [true, false, true, false, true, false];

    #[test]
    fn average_precision_by_hand() {
        // P at each positive: 1/1, 2/3, 3/5 -> (1 + 2/3 + 3/5) / 3
        assert!(close(auprc(&S, &L), (1.0 + 2.0 / 3.0 + 0.6) / 3.0));
        assert!(close(auprc(&[0.9, 0.1], &[true, false]), 1.0));
    }

    #[test]
    fn roc_auc_by_hand() {
        // pairs (P,N) with P above N: P0.9 beats 3, P0.7 beats 2, P0.5 beats 1 -> 6/9
        assert!(close(roc_auc(&S, &L), 6.0 / 9.0));
        // all tied: 0.5
        assert!(close(roc_auc(&[0.5, 0.5], &[true, false]), 0.5));
    }

    #[test]
    fn recall_and_precision_points() {
        // no false positive allowed: only the top score -> recall 1/3
        assert!(close(recall_at_fpr(&S, &L, 0.0), 1.0 / 3.0));
        assert!(close(recall_at_fpr(&S, &L, 0.34), 2.0 / 3.0));
        assert!(close(recall_at_fpr(&S, &L, 1.0), 1.0));
        // recall >= 0.8 needs all three positives: precision 3/5
        assert!(close(precision_at_recall(&S, &L, 0.8), 0.6));
        // ties are one operating point
        assert!(close(recall_at_fpr(&[0.5, 0.5], &[true, false], 0.0), 0.0));
    }

    #[test]
    fn confusion_at_threshold() {
        let c = confusion(&S, &L, 0.65);
        assert_eq!(
            c,
            Confusion {
                tp: 2,
                fp: 1,
                tn: 2,
                fn_: 1
            }
        );
        let m = evaluate(&S, &L, 0.65);
        assert_eq!(m.positives, 3);
        assert_eq!(m.negatives, 3);
        assert_eq!(m.confusion, c);
    }
}
