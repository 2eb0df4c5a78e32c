//! The unsupervised anomaly model: it never sees a label.
//!
//! Every feature is standardised robustly (median, interquartile range). The score is
//! a weighted sum of two detectors, each scaled by its median on the training rows:
//!
//! - a robust Mahalanobis distance: the covariance of the standardised features is
//!   estimated on the "core" of the data (the `core_fraction` of rows nearest the
//!   centre, refined by a few concentration steps as in the minimum covariance
//!   determinant), so that outliers do not inflate it;
//! - a histogram-based outlier score (HBOS): per feature, minus the log of the density
//!   of the row's equal-count bin relative to the densest bin, extrapolated linearly
//!   beyond the range seen in training.
//!
//! Both are sums over features, so each feature's share of the score is its reason:
//! `z_j * (S⁻¹ z)_j` for the distance and its own term for HBOS. Scoring costs one
//! matrix-vector product and one binary search per feature.

// Model maths (statistics, distances, densities) is floating point by nature; never money.
#![allow(clippy::float_arithmetic)]

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::explain::top_k;
use crate::file::{self, Header, ModelError, ModelKind, TrainParams, TrainingInfo};
use crate::rng::SplitMix;

/// Training parameters of the anomaly model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyParams {
    /// Share of the rows (those nearest the centre) the covariance is estimated on.
    pub core_fraction: f64,
    /// Concentration steps refining the core.
    pub core_steps: usize,
    /// Added to the covariance diagonal (standardised units) before inversion.
    pub ridge: f64,
    /// Equal-count bins per feature of the histogram detector.
    pub hbos_bins: usize,
    /// Weight of the Mahalanobis detector (scaled by its training median).
    pub weight_distance: f64,
    /// Weight of the histogram detector (scaled by its training median).
    pub weight_hbos: f64,
    /// At most this many rows (a seeded sample) estimate the covariance.
    pub max_rows: usize,
    /// Share of the training rows scoring below 0.5: the default threshold of 0.5 then
    /// flags about `1 - flag_quantile` of rows like the training data.
    pub flag_quantile: f64,
    /// Seed of the sample.
    pub seed: u64,
}

impl Default for AnomalyParams {
    fn default() -> Self {
        AnomalyParams {
            core_fraction: 0.98,
            core_steps: 2,
            ridge: 1e-3,
            hbos_bins: 20,
            weight_distance: 1.0,
            weight_hbos: 1.0,
            max_rows: 100_000,
            flag_quantile: 0.99,
            seed: 42,
        }
    }
}

/// One feature's histogram: bin edges and each bin's score (−ln relative density).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Hist {
    /// `edges.len() == scores.len() + 1`, ascending.
    edges: Vec<f64>,
    scores: Vec<f64>,
    /// Score added per bin width beyond the range seen in training.
    slope_low: f64,
    slope_high: f64,
    /// Score of a missing value.
    missing: f64,
}

impl Hist {
    fn score(&self, x: f64) -> f64 {
        if x.is_nan() {
            return self.missing;
        }
        let (Some(&lo), Some(&hi)) = (self.edges.first(), self.edges.last()) else {
            return 0.0;
        };
        let n = self.scores.len();
        if n == 0 {
            return 0.0;
        }
        if x < lo {
            let w = (self.edges[1] - lo).max(1e-12);
            return self.scores[0] + self.slope_low * (lo - x) / w;
        }
        if x > hi {
            let w = (hi - self.edges[n - 1]).max(1e-12);
            return self.scores[n - 1] + self.slope_high * (x - hi) / w;
        }
        let b = self.edges.partition_point(|&e| e <= x).clamp(1, n) - 1;
        self.scores[b]
    }
}

/// What the model file's body holds for an anomaly model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AnomalyBody {
    center: Vec<f64>,
    scale: Vec<f64>,
    /// Mean of the core in standardised units.
    core_mean: Vec<f64>,
    /// Inverse core covariance, row-major `f × f`.
    precision: Vec<f64>,
    hists: Vec<Hist>,
    /// Weights already divided by each detector's training median.
    w_distance: f64,
    w_hbos: f64,
    /// The raw score at the `flag_quantile` of the training rows: score 0.5 there.
    pivot: f64,
}

/// A trained anomaly model.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyModel {
    /// Feature names, in the order `score` expects them.
    pub features: Vec<String>,
    /// The parameters it was trained with.
    pub params: AnomalyParams,
    /// Per feature, the categories of a categorical column (code = index).
    pub categories: Vec<Option<Vec<String>>>,
    /// Training figures.
    pub info: TrainingInfo,
    body: AnomalyBody,
}

fn median_of(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    *m
}

fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    #[allow(clippy::cast_possible_truncation)] // q in [0, 1]: at most len - 1
    let k = ((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    v[k.min(v.len() - 1)]
}

/// Inverts a symmetric positive-definite matrix (row-major, `n × n`) by Cholesky.
fn invert_spd(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    // inverse of L (lower triangular)
    let mut li = vec![0.0; n * n];
    for i in 0..n {
        li[i * n + i] = 1.0 / l[i * n + i];
        for j in 0..i {
            let mut s = 0.0;
            for k in j..i {
                s -= l[i * n + k] * li[k * n + j];
            }
            li[i * n + j] = s / l[i * n + i];
        }
    }
    // A⁻¹ = L⁻ᵀ L⁻¹
    let mut inv = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = 0.0;
            for k in i..n {
                s += li[k * n + i] * li[k * n + j];
            }
            inv[i * n + j] = s;
            inv[j * n + i] = s;
        }
    }
    Some(inv)
}

fn covariance(z: &[Vec<f64>], idx: &[usize], f: usize, ridge: f64) -> (Vec<f64>, Vec<f64>) {
    let m = idx.len().max(1) as f64;
    let mut mean = vec![0.0; f];
    for &i in idx {
        for (a, x) in mean.iter_mut().zip(&z[i]) {
            *a += x;
        }
    }
    for a in &mut mean {
        *a /= m;
    }
    let mut cov = vec![0.0; f * f];
    let mut d = vec![0.0; f];
    for &i in idx {
        for (dj, (x, mu)) in d.iter_mut().zip(z[i].iter().zip(&mean)) {
            *dj = x - mu;
        }
        for a in 0..f {
            for b in 0..=a {
                cov[a * f + b] += d[a] * d[b];
            }
        }
    }
    for a in 0..f {
        for b in 0..=a {
            let v = cov[a * f + b] / m;
            cov[a * f + b] = v;
            cov[b * f + a] = v;
        }
        cov[a * f + a] += ridge;
    }
    (mean, cov)
}

fn distance(z: &[f64], mean: &[f64], precision: &[f64], d: &mut [f64]) -> f64 {
    let f = mean.len();
    for (dj, (x, mu)) in d.iter_mut().zip(z.iter().zip(mean)) {
        *dj = x - mu;
    }
    let mut s = 0.0;
    for a in 0..f {
        let row = &precision[a * f..(a + 1) * f];
        let q: f64 = row.iter().zip(d.iter()).map(|(p, x)| p * x).sum();
        s += d[a] * q;
    }
    s
}

fn histogram(values: &mut [f64], bins: usize, total: usize) -> Hist {
    values.sort_by(f64::total_cmp);
    let present = values.len();
    let missing_share = (total - present) as f64 / total.max(1) as f64;
    let mut edges: Vec<f64> = (0..=bins.max(1))
        .map(|k| quantile_sorted(values, k as f64 / bins.max(1) as f64))
        .collect();
    edges.dedup();
    if edges.len() < 2 {
        // constant (or absent) feature: every present value scores 0
        let v = edges.first().copied().unwrap_or(0.0);
        return Hist {
            edges: vec![v, v],
            scores: vec![0.0],
            slope_low: 1.0,
            slope_high: 1.0,
            missing: if missing_share > 0.0 { 0.0 } else { 1.0 },
        };
    }
    let nb = edges.len() - 1;
    let mut counts = vec![0usize; nb];
    for &x in values.iter() {
        let b = edges.partition_point(|&e| e <= x).clamp(1, nb) - 1;
        counts[b] += 1;
    }
    let span = (edges[nb] - edges[0]).max(1e-12);
    // density of each bin, smoothed so that a narrow bin of a discrete value is not
    // infinitely dense: width floored at 1/1000 of the span
    let density: Vec<f64> = counts
        .iter()
        .enumerate()
        .map(|(b, &c)| {
            let w = (edges[b + 1] - edges[b]).max(span * 1e-3);
            (c as f64 + 1.0) / w
        })
        .collect();
    let top = density.iter().copied().fold(f64::MIN_POSITIVE, f64::max);
    let scores: Vec<f64> = density.iter().map(|d| -(d / top).ln()).collect();
    let slope = |s: f64| (s + 1.0).max(1.0);
    Hist {
        slope_low: slope(scores[0]),
        slope_high: slope(scores[nb - 1]),
        scores,
        edges,
        missing: if missing_share > 0.0 {
            -(missing_share.max(1e-6)).ln()
        } else {
            (present as f64 + 1.0).ln()
        },
    }
}

impl AnomalyModel {
    /// Trains on row-major features (`NaN` = missing); no labels. `progress` is called
    /// with (steps done, steps total).
    pub fn train(
        features: Vec<String>,
        rows: &[Vec<f64>],
        params: &AnomalyParams,
        mut progress: impl FnMut(usize, usize),
    ) -> AnomalyModel {
        let n = rows.len();
        let f = features.len();
        let steps = f + params.core_steps + 3;
        let mut done = 0;
        let col = |j: usize| {
            rows.iter()
                .map(move |r| r.get(j).copied().unwrap_or(f64::NAN))
                .filter(|x| !x.is_nan())
        };
        // robust standardisation and histograms
        let mut center = vec![0.0; f];
        let mut scale = vec![1.0; f];
        let mut hists = Vec::with_capacity(f);
        for j in 0..f {
            let mut v: Vec<f64> = col(j).collect();
            hists.push(histogram(&mut v, params.hbos_bins, n));
            // v is sorted now
            let med = quantile_sorted(&v, 0.5);
            let iqr = quantile_sorted(&v, 0.75) - quantile_sorted(&v, 0.25);
            let s = if iqr > 1e-12 {
                iqr / 1.349
            } else {
                let m = v.len().max(1) as f64;
                let mean = v.iter().sum::<f64>() / m;
                let sd = (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / m).sqrt();
                if sd > 1e-12 { sd } else { 1.0 }
            };
            center[j] = med;
            scale[j] = s;
            done += 1;
            progress(done, steps);
        }
        // standardised sample (missing = centre)
        let mut rng = SplitMix(params.seed);
        let keep = params.max_rows.max(f + 2);
        let sample: Vec<usize> = if n > keep {
            let share = keep as f64 / n as f64;
            (0..n).filter(|_| rng.unit() < share).collect()
        } else {
            (0..n).collect()
        };
        let z: Vec<Vec<f64>> = sample
            .iter()
            .map(|&i| {
                (0..f)
                    .map(|j| {
                        let x = rows[i].get(j).copied().unwrap_or(f64::NAN);
                        if x.is_nan() {
                            0.0
                        } else {
                            (x - center[j]) / scale[j]
                        }
                    })
                    .collect()
            })
            .collect();
        let m = z.len();
        // initial core: the rows of smallest standardised norm
        let mut dist: Vec<(f64, usize)> = z
            .iter()
            .enumerate()
            .map(|(i, r)| (r.iter().map(|x| x * x).sum::<f64>(), i))
            .collect();
        #[allow(clippy::cast_possible_truncation)] // at most m
        let core_n =
            ((m as f64 * params.core_fraction.clamp(0.05, 1.0)).ceil() as usize).clamp(1.min(m), m);
        let identity = |f: usize| {
            let mut v = vec![0.0; f * f];
            for a in 0..f {
                v[a * f + a] = 1.0;
            }
            v
        };
        let mut core_mean = vec![0.0; f];
        let mut precision = identity(f);
        let mut d = vec![0.0; f];
        for _ in 0..=params.core_steps {
            dist.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let idx: Vec<usize> = dist.iter().take(core_n).map(|&(_, i)| i).collect();
            let (mean, cov) = covariance(&z, &idx, f, params.ridge);
            if let Some(inv) = invert_spd(&cov, f) {
                core_mean = mean;
                precision = inv;
            }
            for (dv, i) in &mut dist {
                *dv = distance(&z[*i], &core_mean, &precision, &mut d);
            }
            done += 1;
            progress(done.min(steps), steps);
        }
        // scale each detector by its median over the sample
        let mut body = AnomalyBody {
            center,
            scale,
            core_mean,
            precision,
            hists,
            w_distance: 1.0,
            w_hbos: 1.0,
            pivot: 1.0,
        };
        let mut dists: Vec<f64> = dist.iter().map(|&(dv, _)| dv).collect();
        let mut hb: Vec<f64> = sample
            .iter()
            .map(|&i| {
                body.hists
                    .iter()
                    .enumerate()
                    .map(|(j, h)| h.score(rows[i].get(j).copied().unwrap_or(f64::NAN)))
                    .sum()
            })
            .collect();
        let md = median_of(&mut dists).max(1e-9);
        let mh = median_of(&mut hb).max(1e-9);
        body.w_distance = params.weight_distance / md;
        body.w_hbos = params.weight_hbos / mh;
        let mut raws: Vec<f64> = sample
            .iter()
            .map(|&i| AnomalyModel::raw_of(&body, &rows[i], None))
            .collect();
        raws.sort_by(f64::total_cmp);
        body.pivot = quantile_sorted(&raws, params.flag_quantile).max(1e-9);
        progress(steps, steps);
        AnomalyModel {
            features,
            params: params.clone(),
            categories: vec![None; f],
            info: TrainingInfo {
                rows: n as u64,
                positives: 0,
                seed: params.seed,
                training_seconds: 0.0,
            },
            body,
        }
    }

    /// The raw anomaly score (≥ 0, unbounded; about 2 at a typical row).
    pub fn raw_score(&self, row: &[f64]) -> f64 {
        AnomalyModel::raw_of(&self.body, row, None)
    }

    fn squash(&self, r: f64) -> f64 {
        r / (r + self.body.pivot)
    }

    /// Sum of both detectors; per-feature shares added to `out` when given
    /// (`out[j].1`, `out` holding one entry per feature).
    fn raw_of(b: &AnomalyBody, row: &[f64], mut out: Option<&mut Vec<(usize, f64)>>) -> f64 {
        let f = b.center.len();
        // standardised deviation from the core mean, on the stack for usual widths
        let mut stack = [0.0f64; 64];
        let mut heap = Vec::new();
        let d: &mut [f64] = if f <= stack.len() {
            &mut stack[..f]
        } else {
            heap.resize(f, 0.0);
            &mut heap
        };
        for (j, dj) in d.iter_mut().enumerate() {
            let x = row.get(j).copied().unwrap_or(f64::NAN);
            let zj = if x.is_nan() {
                0.0
            } else {
                (x - b.center[j]) / b.scale[j]
            };
            *dj = zj - b.core_mean[j];
        }
        let mut total = 0.0;
        for a in 0..f {
            let prow = &b.precision[a * f..(a + 1) * f];
            let q: f64 = prow.iter().zip(d.iter()).map(|(p, x)| p * x).sum();
            let share = d[a] * q * b.w_distance
                + b.hists
                    .get(a)
                    .map_or(0.0, |h| h.score(row.get(a).copied().unwrap_or(f64::NAN)))
                    * b.w_hbos;
            total += share;
            if let Some(o) = out.as_deref_mut()
                && let Some(slot) = o.get_mut(a)
            {
                slot.1 += share;
            }
        }
        total.max(0.0)
    }

    /// The anomaly score in [0, 1): `r / (r + pivot)` of the raw score `r`, where the
    /// pivot is the raw score at the `flag_quantile` (99%) of the training rows: above
    /// 0.5 = more anomalous than that share of the training data.
    pub fn score(&self, row: &[f64]) -> f64 {
        self.squash(self.raw_score(row))
    }

    /// The score and, in `out`, the `k` features with the largest share of it (their
    /// deviation: distance and histogram terms), largest first. `out` is reused: no
    /// allocation once it has grown to the number of features.
    pub fn score_explained_into(&self, row: &[f64], k: usize, out: &mut Vec<(usize, f64)>) -> f64 {
        out.clear();
        out.extend((0..self.features.len()).map(|j| (j, 0.0)));
        let r = AnomalyModel::raw_of(&self.body, row, Some(out));
        top_k(out, k);
        self.squash(r)
    }

    /// [`AnomalyModel::score_explained_into`] returning a new vector.
    pub fn score_explained(&self, row: &[f64], k: usize) -> (f64, Vec<(usize, f64)>) {
        let mut out = Vec::with_capacity(self.features.len());
        let s = self.score_explained_into(row, k, &mut out);
        (s, out)
    }

    pub(crate) fn header(&self) -> Header {
        Header {
            kind: ModelKind::Unsupervised,
            features: self.features.clone(),
            categories: self.categories.clone(),
            params: TrainParams::Unsupervised(self.params.clone()),
            training: self.info.clone(),
        }
    }

    pub(crate) fn from_parts(header: Header, body: AnomalyBody) -> Result<Self, ModelError> {
        let TrainParams::Unsupervised(params) = header.params else {
            return Err(ModelError::Decode(
                "unsupervised model with supervised parameters".into(),
            ));
        };
        let f = header.features.len();
        let ok = body.center.len() == f
            && body.scale.len() == f
            && body.core_mean.len() == f
            && body.hists.len() == f
            && body.precision.len() == f * f
            && body.pivot > 0.0
            && body
                .hists
                .iter()
                .all(|h| h.edges.len() == h.scores.len() + 1 && !h.scores.is_empty());
        if !ok {
            return Err(ModelError::Decode(
                "anomaly model dimensions do not match its features".into(),
            ));
        }
        Ok(AnomalyModel {
            features: header.features,
            params,
            categories: header.categories,
            info: header.training,
            body,
        })
    }

    /// Encodes as a model file (see [`crate::file`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        file::encode(&self.header(), &self.body)
    }

    /// Decodes what [`AnomalyModel::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<AnomalyModel, ModelError> {
        match crate::RiskModel::from_bytes(bytes)? {
            crate::RiskModel::Unsupervised(m) => Ok(m),
            crate::RiskModel::Supervised(_) => Err(ModelError::WrongKind {
                expected: ModelKind::Unsupervised,
                found: ModelKind::Supervised,
            }),
        }
    }

    /// Writes the model file.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        file::write(path, &self.to_bytes())
    }

    /// Reads a model file.
    pub fn load(path: &Path) -> Result<AnomalyModel, ModelError> {
        AnomalyModel::from_bytes(&file::read(path)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn inverse_of_a_small_matrix() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let inv = invert_spd(&a, 2).unwrap();
        // [[4,2],[2,3]]⁻¹ = 1/8 [[3,-2],[-2,4]]
        let want = [0.375, -0.25, -0.25, 0.5];
        for (x, y) in inv.iter().zip(want) {
            assert!((x - y).abs() < 1e-12);
        }
    }

    #[test]
    fn correlated_outlier_and_its_reason() {
        // x1 ≈ x0 on normal rows; a row breaking the correlation is anomalous even
        // though each value alone is ordinary; a row extreme in x2 is explained by x2
        let mut rng = SplitMix(3);
        let rows: Vec<Vec<f64>> = (0..4000)
            .map(|_| {
                let a = rng.unit() * 2.0 - 1.0;
                vec![a, a + (rng.unit() - 0.5) * 0.1, rng.unit()]
            })
            .collect();
        let m = AnomalyModel::train(
            vec!["x0".into(), "x1".into(), "x2".into()],
            &rows,
            &AnomalyParams::default(),
            |_, _| {},
        );
        let normal = m.score(&[0.5, 0.5, 0.5]);
        let broken = m.score(&[0.5, -0.5, 0.5]);
        assert!(broken > normal + 0.2, "{broken} vs {normal}");
        let (_, why) = m.score_explained(&[0.0, 0.0, 40.0], 1);
        assert_eq!(why[0].0, 2);
    }
}
