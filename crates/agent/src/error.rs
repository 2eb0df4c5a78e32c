//! The agent's errors.

use std::path::PathBuf;

/// What can go wrong in the agent's library.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A file of the model registry could not be read or written.
    #[error("model registry {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A version's figures file is not valid JSON of the expected shape.
    #[error("model registry {path}: the figures file is corrupt ({detail}); fix or delete it")]
    CorruptFigures { path: PathBuf, detail: String },
    /// No such version in the registry.
    #[error("model version {0} is not in the registry")]
    UnknownVersion(u32),
    /// A model file that does not decode.
    #[error("model version {version}: the model file is unusable: {detail}")]
    BadModel { version: u32, detail: String },
    /// Training could not run (e.g. no positives in the synthetic traffic).
    #[error("training failed: {0}")]
    Training(String),
    /// A setting that cannot work.
    #[error("invalid setting: {0}")]
    Config(String),
}
