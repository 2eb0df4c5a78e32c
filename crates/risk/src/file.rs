//! The model file: one versioned format for every kind of risk model.
//!
//! ```text
//! magic "CBRSKMDL" | format version u32 LE | kind u8 | header length u64 LE | header |
//! body length u64 LE | body | BLAKE3 of everything before it (32 bytes)
//! ```
//!
//! The header (bincode) names the kind, the feature names, the categories of
//! categorical features, the training parameters and the training figures (rows,
//! positives, seed, seconds); the body (bincode) holds the kind's model. Files of the
//! first format (magic `CBRSKGBT`, gradient-boosted trees only) are recognised and
//! refused as an incompatible version.

// Training seconds are a float figure; never money.
#![allow(clippy::float_arithmetic)]

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::path::Path;

use crate::anomaly::AnomalyParams;
use crate::gbdt::Params;

/// Magic of a model file.
pub const MAGIC: &[u8; 8] = b"CBRSKMDL";
/// Magic of the first (gradient-boosted only) format, refused as incompatible.
const OLD_MAGIC: &[u8; 8] = b"CBRSKGBT";
/// Version of the model file format this build reads and writes.
pub const FORMAT_VERSION: u32 = 2;

/// The kind of model a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelKind {
    /// Gradient-boosted trees trained on labels.
    Supervised,
    /// Anomaly model trained without labels.
    Unsupervised,
}

impl ModelKind {
    fn code(self) -> u8 {
        match self {
            ModelKind::Supervised => 1,
            ModelKind::Unsupervised => 2,
        }
    }

    fn from_code(code: u8) -> Option<ModelKind> {
        match code {
            1 => Some(ModelKind::Supervised),
            2 => Some(ModelKind::Unsupervised),
            _ => None,
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelKind::Supervised => "supervised",
            ModelKind::Unsupervised => "unsupervised",
        })
    }
}

/// Training figures kept in the file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// Training rows.
    pub rows: u64,
    /// Positive rows among them (0 when unknown; the unsupervised model never reads
    /// labels, the caller may record the count for the record).
    pub positives: u64,
    /// Seed of the training.
    pub seed: u64,
    /// Wall-clock training time, set by the caller (0 when not measured). This is the
    /// only field that differs between two trainings of the same data and seed.
    pub training_seconds: f64,
}

/// The training parameters of either kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TrainParams {
    /// Gradient-boosted trees.
    Supervised(Params),
    /// Anomaly model.
    Unsupervised(AnomalyParams),
}

/// The header of a model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The kind of model.
    pub kind: ModelKind,
    /// Feature names in scoring order.
    pub features: Vec<String>,
    /// Per feature, the categories of a categorical column (code = index).
    pub categories: Vec<Option<Vec<String>>>,
    /// Training parameters.
    pub params: TrainParams,
    /// Training figures.
    pub training: TrainingInfo,
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
    #[error(
        "incompatible model file: format version {found}, this build reads version {FORMAT_VERSION}"
    )]
    Version {
        /// The file's version.
        found: u32,
    },
    /// The file ends before its declared length: it is truncated.
    #[error("model file is corrupt: truncated ({have} bytes, at least {need} expected)")]
    Truncated {
        /// Bytes needed.
        need: u64,
        /// Bytes present.
        have: u64,
    },
    /// The checksum does not match: the file is damaged.
    #[error("model file is corrupt (checksum mismatch)")]
    Corrupt,
    /// The kind byte is not a known kind.
    #[error("model file is corrupt: unknown model kind {0}")]
    UnknownKind(u8),
    /// The file holds another kind of model than the caller asked for.
    #[error("model file holds a {found} model, a {expected} model was expected")]
    WrongKind {
        /// The kind asked for.
        expected: ModelKind,
        /// The kind in the file.
        found: ModelKind,
    },
    /// The header or body does not decode.
    #[error("model body does not decode: {0}")]
    Decode(String),
}

fn bincode_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap_or_default()
}

fn from_bincode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ModelError> {
    match bincode::serde::decode_from_slice(bytes, bincode::config::standard()) {
        Ok((v, used)) if used == bytes.len() => Ok(v),
        Ok(_) => Err(ModelError::Decode(format!("{what}: trailing bytes"))),
        Err(e) => Err(ModelError::Decode(format!("{what}: {e}"))),
    }
}

/// Encodes a header and a body into a model file.
pub(crate) fn encode<B: Serialize>(header: &Header, body: &B) -> Vec<u8> {
    let h = bincode_bytes(header);
    let b = bincode_bytes(body);
    let mut out = Vec::with_capacity(h.len() + b.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(header.kind.code());
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    out.extend_from_slice(&b);
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

fn take<'a>(bytes: &'a [u8], at: &mut usize, n: u64) -> Result<&'a [u8], ModelError> {
    let have = bytes.len() as u64;
    let need = (*at as u64).saturating_add(n).saturating_add(32);
    let end = usize::try_from(n)
        .ok()
        .and_then(|n| at.checked_add(n))
        .filter(|&e| e.saturating_add(32) <= bytes.len())
        .ok_or(ModelError::Truncated { need, have })?;
    let out = &bytes[*at..end];
    *at = end;
    Ok(out)
}

fn take_u64(bytes: &[u8], at: &mut usize) -> Result<u64, ModelError> {
    let b = take(bytes, at, 8)?;
    Ok(<[u8; 8]>::try_from(b).map(u64::from_le_bytes).unwrap_or(0))
}

/// Decodes a model file into its header and its (still encoded) body, checking magic,
/// version, lengths and checksum.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Header, &[u8]), ModelError> {
    let magic = bytes.get(..8).ok_or(ModelError::BadMagic)?;
    let version = bytes
        .get(8..12)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes);
    if magic == OLD_MAGIC {
        return Err(ModelError::Version {
            found: version.unwrap_or(1),
        });
    }
    if magic != MAGIC {
        return Err(ModelError::BadMagic);
    }
    let version = version.ok_or(ModelError::Truncated {
        need: 12,
        have: bytes.len() as u64,
    })?;
    if version != FORMAT_VERSION {
        return Err(ModelError::Version { found: version });
    }
    let mut at = 12;
    let kind = take(bytes, &mut at, 1)?[0];
    let header_len = take_u64(bytes, &mut at)?;
    let header = take(bytes, &mut at, header_len)?;
    let body_len = take_u64(bytes, &mut at)?;
    let body = take(bytes, &mut at, body_len)?;
    let (content, sum) = bytes.split_at(at);
    if sum.len() < 32 {
        return Err(ModelError::Truncated {
            need: at as u64 + 32,
            have: bytes.len() as u64,
        });
    }
    if sum != blake3::hash(content).as_bytes() {
        return Err(ModelError::Corrupt);
    }
    let kind = ModelKind::from_code(kind).ok_or(ModelError::UnknownKind(kind))?;
    let header: Header = from_bincode(header, "header")?;
    if header.kind != kind {
        return Err(ModelError::Decode(format!(
            "kind byte says {kind}, header says {}",
            header.kind
        )));
    }
    if header.categories.len() != header.features.len() {
        return Err(ModelError::Decode(
            "categories and features differ in length".into(),
        ));
    }
    Ok((header, body))
}

/// Decodes a body.
pub(crate) fn decode_body<B: DeserializeOwned>(body: &[u8]) -> Result<B, ModelError> {
    from_bincode(body, "body")
}

/// Writes a model file.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    std::fs::write(path, bytes).map_err(|source| ModelError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Reads a model file's bytes.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.display().to_string(),
        source,
    })
}
