//! A tabular dataset read from CSV with a header row: one 0/1 label column, every other
//! column a feature (numeric, or categorical when a value does not parse as a number),
//! missing values (empty cell, `NA`) kept as `NaN`.

// Feature values are model inputs, not money: floats are the right type here.
#![allow(clippy::float_arithmetic)]

use std::collections::BTreeMap;
use std::path::Path;

/// Why a dataset could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file has no header row.
    #[error("the file is empty: no header row")]
    Empty,
    /// The label column is not in the header.
    #[error("label column {0:?} not found in the header")]
    MissingLabel(String),
    /// An ignored column is not in the header.
    #[error("ignored column {0:?} not found in the header")]
    MissingIgnored(String),
    /// A row has the wrong number of cells.
    #[error("line {line}: {found} columns, the header has {expected}")]
    ColumnCount {
        /// 1-based line number.
        line: usize,
        /// Cells in the header.
        expected: usize,
        /// Cells in this row.
        found: usize,
    },
    /// A label is neither 0 nor 1.
    #[error("line {line}: label {value:?} is neither 0 nor 1")]
    BadLabel {
        /// 1-based line number.
        line: usize,
        /// The cell.
        value: String,
    },
}

/// One feature column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Header name.
    pub name: String,
    /// Categorical columns: the categories in order of their code (code = index).
    pub categories: Option<Vec<String>>,
}

/// Rows of features (`NaN` = missing) with their 0/1 labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The feature columns, in header order.
    pub columns: Vec<Column>,
    /// Row-major feature values.
    pub rows: Vec<Vec<f64>>,
    /// One label per row.
    pub labels: Vec<bool>,
}

fn is_missing(cell: &str) -> bool {
    let c = cell.trim();
    c.is_empty() || c.eq_ignore_ascii_case("na") || c.eq_ignore_ascii_case("nan")
}

/// Splits one CSV line; double-quoted cells may contain commas and `""`.
fn split_line(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => cells.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    cells.push(cur);
    cells
}

impl Dataset {
    /// Reads a CSV file. See [`Dataset::parse`].
    pub fn read(path: &Path, label: &str, ignore: &[String]) -> Result<Dataset, DatasetError> {
        let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Dataset::parse(&text, label, ignore)
    }

    /// Parses CSV text with a header row. A column is categorical when any of its
    /// present values does not parse as a number; its categories are coded in sorted
    /// order (deterministic for the same set of values).
    pub fn parse(text: &str, label: &str, ignore: &[String]) -> Result<Dataset, DatasetError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or(DatasetError::Empty)?;
        let names: Vec<String> = split_line(header)
            .into_iter()
            .map(|s| s.trim().to_string())
            .collect();
        let label_at = names
            .iter()
            .position(|n| n == label)
            .ok_or_else(|| DatasetError::MissingLabel(label.to_string()))?;
        for ig in ignore {
            if !names.iter().any(|n| n == ig) {
                return Err(DatasetError::MissingIgnored(ig.clone()));
            }
        }
        let features: Vec<usize> = (0..names.len())
            .filter(|&i| i != label_at && !ignore.contains(&names[i]))
            .collect();
        let mut raw: Vec<Vec<String>> = Vec::new();
        let mut labels = Vec::new();
        for (line, text) in lines {
            let cells = split_line(text);
            if cells.len() != names.len() {
                return Err(DatasetError::ColumnCount {
                    line,
                    expected: names.len(),
                    found: cells.len(),
                });
            }
            let l = cells[label_at].trim();
            let value = match l {
                "0" | "0.0" => false,
                "1" | "1.0" => true,
                _ => {
                    return Err(DatasetError::BadLabel {
                        line,
                        value: l.to_string(),
                    });
                }
            };
            labels.push(value);
            raw.push(
                features
                    .iter()
                    .map(|&i| cells[i].trim().to_string())
                    .collect(),
            );
        }
        let mut columns = Vec::with_capacity(features.len());
        let mut rows = vec![Vec::with_capacity(features.len()); raw.len()];
        for (j, &i) in features.iter().enumerate() {
            let numeric = raw
                .iter()
                .all(|r| is_missing(&r[j]) || r[j].parse::<f64>().is_ok());
            let categories = if numeric {
                for (row, r) in rows.iter_mut().zip(&raw) {
                    row.push(r[j].parse::<f64>().unwrap_or(f64::NAN));
                }
                None
            } else {
                let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
                for r in &raw {
                    if !is_missing(&r[j]) {
                        codes.insert(&r[j], 0);
                    }
                }
                let cats: Vec<String> = codes.keys().map(|s| s.to_string()).collect();
                for (k, v) in codes.values_mut().enumerate() {
                    *v = k;
                }
                for (row, r) in rows.iter_mut().zip(&raw) {
                    row.push(codes.get(r[j].as_str()).map_or(f64::NAN, |&c| c as f64));
                }
                Some(cats)
            };
            columns.push(Column {
                name: names[i].clone(),
                categories,
            });
        }
        Ok(Dataset {
            columns,
            rows,
            labels,
        })
    }

    /// The rows at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        Dataset {
            columns: self.columns.clone(),
            rows: indices.iter().map(|&i| self.rows[i].clone()).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

fn shuffle(v: &mut [usize], rng: &mut crate::rng::SplitMix) {
    for i in (1..v.len()).rev() {
        let j = usize::try_from(rng.next_u64() % (i as u64 + 1)).unwrap_or(0);
        v.swap(i, j);
    }
}

/// Stratified split: returns (train indices, test indices), each class shuffled with
/// `seed` and `test_fraction` of it (rounded) sent to the test set. Indices ascend.
pub fn split_stratified(
    labels: &[bool],
    test_fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut state = crate::rng::SplitMix(seed);
    let mut train = Vec::new();
    let mut test = Vec::new();
    for class in [false, true] {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        shuffle(&mut idx, &mut state);
        let fraction = test_fraction.clamp(0.0, 1.0);
        #[allow(clippy::cast_possible_truncation)] // bounded by idx.len()
        let n_test = ((idx.len() as f64) * fraction).round() as usize;
        test.extend_from_slice(&idx[..n_test.min(idx.len())]);
        train.extend_from_slice(&idx[n_test.min(idx.len())..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_numeric_categorical_missing_and_ignored() {
        let csv = "id,amount,channel,fraud\n1,10.5,web,0\n2,,app,1\n3,NA,web,0\n4,3,,1\n";
        let d = Dataset::parse(csv, "fraud", &["id".to_string()]).unwrap();
        assert_eq!(d.columns.len(), 2);
        assert_eq!(d.columns[0].name, "amount");
        assert_eq!(
            d.columns[1].categories,
            Some(vec!["app".to_string(), "web".to_string()])
        );
        assert_eq!(d.labels, vec![false, true, false, true]);
        assert_eq!(d.rows[0], vec![10.5, 1.0]);
        assert!(d.rows[1][0].is_nan());
        assert_eq!(d.rows[1][1], 0.0);
        assert!(d.rows[2][0].is_nan());
        assert!(d.rows[3][1].is_nan());
    }

    #[test]
    fn quoted_cells() {
        let d = Dataset::parse("a,y\n\"x,1\",1\n", "y", &[]).unwrap();
        assert_eq!(d.columns[0].categories, Some(vec!["x,1".to_string()]));
    }

    #[test]
    fn errors_name_the_line() {
        let e = Dataset::parse("a,y\n1,0\n2\n", "y", &[]).unwrap_err();
        assert!(matches!(
            e,
            DatasetError::ColumnCount {
                line: 3,
                expected: 2,
                found: 1
            }
        ));
        let e = Dataset::parse("a,y\n1,2\n", "y", &[]).unwrap_err();
        assert!(matches!(e, DatasetError::BadLabel { line: 2, .. }));
        assert!(e.to_string().contains("line 2"));
        let e = Dataset::parse("a,y\n", "z", &[]).unwrap_err();
        assert!(matches!(e, DatasetError::MissingLabel(_)));
        let e = Dataset::parse("", "z", &[]).unwrap_err();
        assert!(matches!(e, DatasetError::Empty));
    }

    #[test]
    fn split_is_stratified_and_deterministic() {
        let labels: Vec<bool> = (0..1000).map(|i| i % 10 == 0).collect();
        let (train, test) = split_stratified(&labels, 0.3, 42);
        assert_eq!(train.len() + test.len(), 1000);
        assert_eq!(test.len(), 300);
        assert_eq!(test.iter().filter(|&&i| labels[i]).count(), 30);
        assert_eq!(split_stratified(&labels, 0.3, 42), (train.clone(), test));
        assert_ne!(split_stratified(&labels, 0.3, 7).0, train);
    }
}
