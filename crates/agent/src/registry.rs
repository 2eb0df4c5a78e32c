//! The model registry: a directory holding every version the agent trained, each as
//! `vNNNN.cbr` (the model file, `corebank risk train --out` format) and `vNNNN.json`
//! (its figures and whether it was promoted). Versions are numbered from 1 and never
//! reused; a corrupt figures file is reported for its version and does not hide the
//! others.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::AgentError;

/// The evaluation figures of a version and what happened to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Figures {
    /// On the held-out data.
    pub auprc: f64,
    pub roc_auc: f64,
    pub recall_at_1pct_fpr: f64,
    pub recall_at_01pct_fpr: f64,
    pub precision_at_80pct_recall: f64,
    pub train_rows: u64,
    pub train_positives: u64,
    /// Rows learnt from analysts' reviews among the training rows.
    #[serde(default)]
    pub review_rows: u64,
    pub test_rows: u64,
    pub test_positives: u64,
    /// Seed of the synthetic training traffic (changes per version).
    pub train_seed: u64,
    /// Seed of the held-out traffic (the same for every version, so that versions
    /// compare).
    pub test_seed: u64,
    pub trees: u64,
    pub training_seconds: f64,
    /// Unix seconds.
    pub created_unix: u64,
    /// The version the branches report for this model (`model ...` in their status).
    pub engine_version: String,
    /// Whether it was promoted (pushed to the branches).
    pub promoted: bool,
    /// When it was last promoted (Unix seconds).
    #[serde(default)]
    pub promoted_unix: Option<u64>,
    /// Why it was or was not promoted.
    #[serde(default)]
    pub decision: String,
    /// Branches that refused or could not be reached when it was promoted.
    #[serde(default)]
    pub promotion_errors: Vec<String>,
}

/// One version with its figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionRecord {
    pub version: u32,
    /// `v0001`, ...
    pub name: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A version as listed: its figures, or why they cannot be read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum VersionEntry {
    Ok(VersionRecord),
    Broken {
        version: u32,
        name: String,
        error: String,
    },
}

impl VersionEntry {
    pub fn version(&self) -> u32 {
        match self {
            VersionEntry::Ok(r) => r.version,
            VersionEntry::Broken { version, .. } => *version,
        }
    }
}

/// The name of a version: `v0001`.
pub fn version_name(version: u32) -> String {
    format!("v{version:04}")
}

/// The registry directory.
#[derive(Debug, Clone)]
pub struct ModelRegistry {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AgentError + '_ {
    move |source| AgentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl ModelRegistry {
    /// Opens (creating it if needed) the registry directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, AgentError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn model_path(&self, version: u32) -> PathBuf {
        self.dir.join(format!("{}.cbr", version_name(version)))
    }

    pub fn figures_path(&self, version: u32) -> PathBuf {
        self.dir.join(format!("{}.json", version_name(version)))
    }

    /// Every version present (a model file or a figures file), ascending.
    pub fn versions(&self) -> Result<Vec<u32>, AgentError> {
        let mut versions = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(stem) = name
                .strip_suffix(".cbr")
                .or_else(|| name.strip_suffix(".json"))
            else {
                continue;
            };
            if let Some(n) = stem.strip_prefix('v').and_then(|d| d.parse::<u32>().ok())
                && n > 0
            {
                versions.push(n);
            }
        }
        versions.sort_unstable();
        versions.dedup();
        Ok(versions)
    }

    /// The number the next version gets.
    pub fn next_version(&self) -> Result<u32, AgentError> {
        Ok(self.versions()?.last().map_or(1, |v| v + 1))
    }

    /// The figures of a version.
    pub fn figures(&self, version: u32) -> Result<Figures, AgentError> {
        let path = self.figures_path(version);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(if self.model_path(version).exists() {
                    AgentError::CorruptFigures {
                        path,
                        detail: "the figures file is missing".into(),
                    }
                } else {
                    AgentError::UnknownVersion(version)
                });
            }
            Err(e) => return Err(io(&path)(e)),
        };
        serde_json::from_str(&text).map_err(|e| AgentError::CorruptFigures {
            path,
            detail: e.to_string(),
        })
    }

    /// Every version with its figures (or the error reading them), ascending.
    pub fn list(&self) -> Result<Vec<VersionEntry>, AgentError> {
        Ok(self
            .versions()?
            .into_iter()
            .map(|version| match self.figures(version) {
                Ok(figures) => VersionEntry::Ok(VersionRecord {
                    version,
                    name: version_name(version),
                    figures,
                }),
                Err(e) => VersionEntry::Broken {
                    version,
                    name: version_name(version),
                    error: e.to_string(),
                },
            })
            .collect())
    }

    /// The version in service: the one promoted last.
    pub fn current(&self) -> Result<Option<VersionRecord>, AgentError> {
        Ok(self
            .list()?
            .into_iter()
            .filter_map(|e| match e {
                VersionEntry::Ok(r) if r.figures.promoted => Some(r),
                _ => None,
            })
            .max_by_key(|r| (r.figures.promoted_unix.unwrap_or(0), r.version)))
    }

    /// Stores a new version (model file first, then its figures); returns its number.
    pub fn add(&self, model: &[u8], figures: &Figures) -> Result<u32, AgentError> {
        let version = self.next_version()?;
        write_atomic(&self.model_path(version), model)?;
        self.write_figures(version, figures)?;
        Ok(version)
    }

    /// Rewrites a version's figures.
    pub fn write_figures(&self, version: u32, figures: &Figures) -> Result<(), AgentError> {
        let path = self.figures_path(version);
        let mut text = serde_json::to_string_pretty(figures)
            .map_err(|e| AgentError::Config(format!("figures do not encode: {e}")))?;
        text.push('\n');
        write_atomic(&path, text.as_bytes())
    }

    /// The bytes of a version's model file.
    pub fn model_bytes(&self, version: u32) -> Result<Vec<u8>, AgentError> {
        let path = self.model_path(version);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(AgentError::UnknownVersion(version))
            }
            Err(e) => Err(io(&path)(e)),
        }
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AgentError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn figures(auprc: f64, promoted: bool, at: u64) -> Figures {
        Figures {
            auprc,
            train_rows: 100,
            promoted,
            promoted_unix: promoted.then_some(at),
            ..Figures::default()
        }
    }

    #[test]
    fn versions_are_numbered_and_figures_kept() {
        let dir = tempfile::tempdir().unwrap();
        let registry = ModelRegistry::open(dir.path().join("models")).unwrap();
        assert_eq!(registry.next_version().unwrap(), 1);
        assert!(registry.current().unwrap().is_none());
        assert_eq!(registry.add(b"one", &figures(0.5, true, 10)).unwrap(), 1);
        assert_eq!(registry.add(b"two", &figures(0.4, false, 0)).unwrap(), 2);
        assert!(registry.model_path(1).ends_with("v0001.cbr"));
        assert!(registry.figures_path(2).ends_with("v0002.json"));
        assert_eq!(registry.model_bytes(2).unwrap(), b"two");
        let list = registry.list().unwrap();
        assert_eq!(list.len(), 2);
        let VersionEntry::Ok(first) = &list[0] else {
            panic!("{list:?}")
        };
        assert_eq!((first.name.as_str(), first.figures.auprc), ("v0001", 0.5));
        assert_eq!(registry.current().unwrap().unwrap().version, 1);
        // A forced promotion of a later version makes it current.
        let mut f = registry.figures(2).unwrap();
        f.promoted = true;
        f.promoted_unix = Some(20);
        registry.write_figures(2, &f).unwrap();
        assert_eq!(registry.current().unwrap().unwrap().version, 2);
        // Reopening sees the same.
        let again = ModelRegistry::open(dir.path().join("models")).unwrap();
        assert_eq!(again.next_version().unwrap(), 3);
        assert!(matches!(
            again.model_bytes(9),
            Err(AgentError::UnknownVersion(9))
        ));
    }

    #[test]
    fn a_corrupt_figures_file_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let registry = ModelRegistry::open(dir.path()).unwrap();
        registry.add(b"one", &figures(0.5, true, 10)).unwrap();
        registry.add(b"two", &figures(0.6, false, 0)).unwrap();
        std::fs::write(registry.figures_path(1), b"{ not json").unwrap();
        std::fs::remove_file(registry.figures_path(2)).unwrap();
        // Stray files are ignored.
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        std::fs::write(dir.path().join("vx.json"), b"x").unwrap();
        let list = registry.list().unwrap();
        assert_eq!(list.len(), 2);
        let VersionEntry::Broken { error, name, .. } = &list[0] else {
            panic!("{list:?}")
        };
        assert_eq!(name, "v0001");
        assert!(
            error.contains("v0001.json") && error.contains("corrupt"),
            "{error}"
        );
        let VersionEntry::Broken { error, .. } = &list[1] else {
            panic!("{list:?}")
        };
        assert!(error.contains("missing"), "{error}");
        // Numbers are never reused, and the rest still works.
        assert_eq!(registry.next_version().unwrap(), 3);
        assert!(registry.current().unwrap().is_none());
        let json = serde_json::to_value(&list[0]).unwrap();
        assert_eq!(json["version"], 1);
        assert!(json["error"].as_str().is_some());
    }
}
