//! Histogram-based gradient-boosted decision trees with logistic loss. Missing values
//! (`NaN`) follow a default direction learnt at each split. No sampling: training is
//! deterministic (the same data and parameters give the same model).

// Model maths (gradients, gains, leaf values) is floating point by nature; never money.
#![allow(clippy::float_arithmetic)]

use serde::{Deserialize, Serialize};
use std::path::Path;

const MAGIC: &[u8; 8] = b"CBRSKGBT";
/// Version of the model file format.
pub const FORMAT_VERSION: u32 = 1;

/// Training parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Boosting rounds.
    pub trees: usize,
    /// Maximum depth of a tree.
    pub max_depth: usize,
    /// Shrinkage.
    pub learning_rate: f64,
    /// L2 regularisation of leaf values.
    pub lambda: f64,
    /// Minimum hessian sum in a child.
    pub min_child_weight: f64,
    /// Maximum number of bins per feature (at most 255).
    pub max_bins: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            trees: 200,
            max_depth: 6,
            learning_rate: 0.1,
            lambda: 1.0,
            min_child_weight: 1.0,
            max_bins: 64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Node {
    Leaf(f64),
    Split {
        feature: usize,
        threshold: f64,
        missing_left: bool,
        left: usize,
        right: usize,
    },
}

/// A trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Feature names, in the order `score` expects them.
    pub features: Vec<String>,
    /// The parameters it was trained with.
    pub params: Params,
    /// Per feature, the categories of a categorical column (code = index), set by the
    /// caller so that scoring data can be coded the same way.
    pub categories: Vec<Option<Vec<String>>>,
    base: f64,
    trees: Vec<Vec<Node>>,
}

/// Why a model file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be read or written.
    #[error("model file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a corebank model file.
    #[error("not a corebank risk model file (bad magic)")]
    BadMagic,
    /// A format this build does not read.
    #[error("model file format version {found}, this build reads version {FORMAT_VERSION}")]
    Version {
        /// The file's version.
        found: u32,
    },
    /// The checksum does not match: the file is damaged.
    #[error("model file is corrupt (truncated or checksum mismatch)")]
    Corrupt,
    /// The body does not decode.
    #[error("model body does not decode: {0}")]
    Decode(String),
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Cut points of one feature: up to `max_bins - 1` quantiles of its present values.
fn cuts(values: impl Iterator<Item = f64>, max_bins: usize) -> Vec<f64> {
    let mut v: Vec<f64> = values.filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    let want = max_bins.clamp(2, 255) - 1;
    if v.len() <= want + 1 {
        return v.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    }
    let mut out: Vec<f64> = (1..=want)
        .map(|k| v[k * (v.len() - 1) / (want + 1)])
        .collect();
    out.dedup();
    out
}

/// One histogram bin: gradient and hessian sums.
#[derive(Clone, Copy, Default)]
struct Bin {
    g: f64,
    h: f64,
}

const MISSING: u8 = u8::MAX;

struct Best {
    gain: f64,
    feature: usize,
    bin: usize,
    missing_left: bool,
}

impl Model {
    /// Trains on row-major features (`NaN` = missing) and labels. `progress` is called
    /// after each tree with (trees done, trees total).
    pub fn train(
        features: Vec<String>,
        rows: &[Vec<f64>],
        labels: &[bool],
        params: &Params,
        mut progress: impl FnMut(usize, usize),
    ) -> Model {
        let n = rows.len();
        let f = features.len();
        let cut: Vec<Vec<f64>> = (0..f)
            .map(|j| cuts(rows.iter().map(|r| r[j]), params.max_bins))
            .collect();
        // column-major bins; MISSING for NaN
        let bins: Vec<Vec<u8>> = (0..f)
            .map(|j| {
                rows.iter()
                    .map(|r| {
                        if r[j].is_nan() {
                            MISSING
                        } else {
                            u8::try_from(cut[j].partition_point(|&c| c < r[j])).unwrap_or(254)
                        }
                    })
                    .collect()
            })
            .collect();
        let pos = labels.iter().filter(|&&l| l).count() as f64;
        let prior = ((pos + 0.5) / (n as f64 - pos + 0.5)).ln();
        let mut raw = vec![prior; n];
        let mut g = vec![0.0; n];
        let mut h = vec![0.0; n];
        let mut trees = Vec::with_capacity(params.trees);
        for t in 0..params.trees {
            for i in 0..n {
                let p = sigmoid(raw[i]);
                g[i] = p - if labels[i] { 1.0 } else { 0.0 };
                h[i] = (p * (1.0 - p)).max(1e-16);
            }
            let mut nodes = Vec::new();
            let all: Vec<usize> = (0..n).collect();
            build(&mut nodes, all, 0, &bins, &cut, &g, &h, params, &mut raw);
            trees.push(nodes);
            progress(t + 1, params.trees);
        }
        Model {
            features,
            params: params.clone(),
            categories: vec![None; f],
            base: prior,
            trees,
        }
    }

    /// The fraud probability of one row (features in `self.features` order).
    pub fn score(&self, row: &[f64]) -> f64 {
        let mut sum = self.base;
        for tree in &self.trees {
            let mut at = 0;
            loop {
                match tree.get(at) {
                    Some(Node::Leaf(v)) => {
                        sum += v;
                        break;
                    }
                    Some(Node::Split {
                        feature,
                        threshold,
                        missing_left,
                        left,
                        right,
                    }) => {
                        let x = row.get(*feature).copied().unwrap_or(f64::NAN);
                        let go_left = if x.is_nan() {
                            *missing_left
                        } else {
                            x <= *threshold
                        };
                        at = if go_left { *left } else { *right };
                    }
                    None => break,
                }
            }
        }
        sigmoid(sum)
    }

    /// Encodes as magic, format version, body length, bincode body, BLAKE3 of the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body =
            bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default();
        let mut out = Vec::with_capacity(body.len() + 52);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(blake3::hash(&body).as_bytes());
        out
    }

    /// Decodes what [`Model::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            return Err(ModelError::BadMagic);
        }
        let version = bytes
            .get(8..12)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
            .ok_or(ModelError::Corrupt)?;
        if version != FORMAT_VERSION {
            return Err(ModelError::Version { found: version });
        }
        let len = bytes
            .get(12..20)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
            .and_then(|l| usize::try_from(l).ok())
            .ok_or(ModelError::Corrupt)?;
        let end = 20usize.checked_add(len).ok_or(ModelError::Corrupt)?;
        let body = bytes.get(20..end).ok_or(ModelError::Corrupt)?;
        let sum = bytes.get(end..).ok_or(ModelError::Corrupt)?;
        if sum != blake3::hash(body).as_bytes() {
            return Err(ModelError::Corrupt);
        }
        bincode::serde::decode_from_slice(body, bincode::config::standard())
            .map(|(m, _)| m)
            .map_err(|e| ModelError::Decode(e.to_string()))
    }

    /// Writes the model file.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        std::fs::write(path, self.to_bytes()).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Reads a model file.
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Model::from_bytes(&bytes)
    }
}

fn leaf_value(g: f64, h: f64, p: &Params) -> f64 {
    -g / (h + p.lambda) * p.learning_rate
}

fn gain_of(g: f64, h: f64, lambda: f64) -> f64 {
    g * g / (h + lambda)
}

/// Grows one node (recursively) and adds its leaf values to `raw` for its rows.
#[allow(clippy::too_many_arguments)]
fn build(
    nodes: &mut Vec<Node>,
    rows: Vec<usize>,
    depth: usize,
    bins: &[Vec<u8>],
    cut: &[Vec<f64>],
    g: &[f64],
    h: &[f64],
    p: &Params,
    raw: &mut [f64],
) -> usize {
    let at = nodes.len();
    let (gs, hs) = rows
        .iter()
        .fold((0.0, 0.0), |(a, b), &i| (a + g[i], b + h[i]));
    nodes.push(Node::Leaf(0.0));
    let mut best: Option<Best> = None;
    if depth < p.max_depth && hs >= 2.0 * p.min_child_weight {
        let parent = gain_of(gs, hs, p.lambda);
        for (j, col) in bins.iter().enumerate() {
            let nb = cut[j].len() + 1;
            let mut hist = vec![Bin::default(); nb];
            let mut miss = Bin::default();
            for &i in &rows {
                let b = col[i];
                let slot = if b == MISSING {
                    &mut miss
                } else {
                    &mut hist[usize::from(b)]
                };
                slot.g += g[i];
                slot.h += h[i];
            }
            let (mut lg, mut lh) = (0.0, 0.0);
            for (b, bin) in hist.iter().enumerate().take(nb - 1) {
                lg += bin.g;
                lh += bin.h;
                for missing_left in [false, true] {
                    let (l_g, l_h) = if missing_left {
                        (lg + miss.g, lh + miss.h)
                    } else {
                        (lg, lh)
                    };
                    let (r_g, r_h) = (gs - l_g, hs - l_h);
                    if l_h < p.min_child_weight || r_h < p.min_child_weight {
                        continue;
                    }
                    let gain = gain_of(l_g, l_h, p.lambda) + gain_of(r_g, r_h, p.lambda) - parent;
                    if gain > 1e-9 && best.as_ref().is_none_or(|bst| gain > bst.gain) {
                        best = Some(Best {
                            gain,
                            feature: j,
                            bin: b,
                            missing_left,
                        });
                    }
                }
            }
        }
    }
    match best {
        None => {
            let v = leaf_value(gs, hs, p);
            nodes[at] = Node::Leaf(v);
            for &i in &rows {
                raw[i] += v;
            }
        }
        Some(b) => {
            let col = &bins[b.feature];
            let (l, r): (Vec<usize>, Vec<usize>) = rows.iter().partition(|&&i| {
                let x = col[i];
                if x == MISSING {
                    b.missing_left
                } else {
                    usize::from(x) <= b.bin
                }
            });
            drop(rows);
            let left = build(nodes, l, depth + 1, bins, cut, g, h, p, raw);
            let right = build(nodes, r, depth + 1, bins, cut, g, h, p, raw);
            nodes[at] = Node::Split {
                feature: b.feature,
                threshold: cut[b.feature][b.bin],
                missing_left: b.missing_left,
                left,
                right,
            };
        }
    }
    at
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::metrics::auprc;

    fn data(n: usize) -> (Vec<Vec<f64>>, Vec<bool>) {
        let mut s = 1u64;
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..n {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let a = (s >> 33) as f64 / (1u64 << 31) as f64;
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let b = (s >> 33) as f64 / (1u64 << 31) as f64;
            let miss = (s >> 20).is_multiple_of(7);
            // fraud: a high and b low, or b missing and a very high
            let y = if miss { a > 0.7 } else { a > 0.6 && b < 0.4 };
            rows.push(vec![a, if miss { f64::NAN } else { b }]);
            labels.push(y);
        }
        (rows, labels)
    }

    #[test]
    fn learns_interaction_and_missing_direction_deterministically() {
        let (rows, labels) = data(3000);
        let p = Params {
            trees: 40,
            ..Params::default()
        };
        let names = vec!["a".to_string(), "b".to_string()];
        let m = Model::train(names.clone(), &rows, &labels, &p, |_, _| {});
        let scores: Vec<f64> = rows.iter().map(|r| m.score(r)).collect();
        assert!(auprc(&scores, &labels) > 0.95);
        assert!(m.score(&[0.9, f64::NAN]) > 0.5);
        assert!(m.score(&[0.5, f64::NAN]) < 0.5);
        let again = Model::train(names, &rows, &labels, &p, |_, _| {});
        assert_eq!(m, again);
    }

    #[test]
    fn file_round_trip_and_errors() {
        let (rows, labels) = data(500);
        let p = Params {
            trees: 5,
            ..Params::default()
        };
        let m = Model::train(vec!["a".into(), "b".into()], &rows, &labels, &p, |_, _| {});
        let bytes = m.to_bytes();
        assert_eq!(Model::from_bytes(&bytes).unwrap(), m);
        let mut bad = bytes.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        assert!(matches!(Model::from_bytes(&bad), Err(ModelError::Corrupt)));
        assert!(matches!(
            Model::from_bytes(&bytes[..bytes.len() - 3]),
            Err(ModelError::Corrupt)
        ));
        assert!(matches!(
            Model::from_bytes(b"nonsense"),
            Err(ModelError::BadMagic)
        ));
        let mut v2 = bytes;
        v2[8] = 2;
        assert!(matches!(
            Model::from_bytes(&v2),
            Err(ModelError::Version { found: 2 })
        ));
    }
}
