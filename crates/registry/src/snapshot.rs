//! The directory as bytes: a checksummed, versioned snapshot.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "CBREGDIR"
//!      8     4  format version, u32 little-endian (2; 1 is still read: no users)
//!     12     8  payload length in bytes, u64 little-endian
//!     20    32  BLAKE3 hash of the payload
//!     52     …  payload: the directory in bincode 2 (standard configuration, serde)
//! ```
//!
//! The payload is deterministic: branches in code order, replicas in node-id order,
//! so equal directories give equal bytes (and equal [`Directory::digest`]s). Reading
//! checks, in order: length, magic, version, size limit, declared length, checksum,
//! decoding (no trailing bytes), and every invariant of the directory. Nothing that
//! fails one of them is ever returned.

use crate::Directory;
use crate::error::SnapshotError;

/// The first bytes of every registry snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"CBREGDIR";
/// The format version written and read.
pub const SNAPSHOT_VERSION: u32 = 2;
/// The largest payload read or written: 10,000 branches of 7 replicas and a million
/// users (about 300 bytes each) stay below it.
pub const SNAPSHOT_BYTES_MAX: usize = 1 << 30;

/// Format 1: the branches only.
#[derive(serde::Deserialize)]
struct DirectoryV1 {
    branches: std::collections::BTreeMap<u16, crate::Branch>,
}

const HEADER_BYTES: usize = 8 + 4 + 8 + 32;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<SNAPSHOT_BYTES_MAX>()
}

impl Directory {
    /// The directory as snapshot bytes (header, checksum, payload).
    pub fn to_snapshot_bytes(&self) -> Result<Vec<u8>, SnapshotError> {
        let payload = self.payload()?;
        let length = u64::try_from(payload.len())
            .map_err(|_| SnapshotError::TooLarge { bytes: u64::MAX })?;
        let mut bytes = Vec::with_capacity(HEADER_BYTES + payload.len());
        bytes.extend_from_slice(&SNAPSHOT_MAGIC);
        bytes.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&length.to_le_bytes());
        bytes.extend_from_slice(blake3::hash(&payload).as_bytes());
        bytes.extend_from_slice(&payload);
        Ok(bytes)
    }

    /// Reads a snapshot written by [`to_snapshot_bytes`](Self::to_snapshot_bytes);
    /// damaged, truncated, foreign or impossible input is refused.
    pub fn from_snapshot_bytes(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let too_short = || SnapshotError::TooShort {
            bytes: bytes.len(),
            header: HEADER_BYTES,
        };
        let (header, payload) = bytes.split_at_checked(HEADER_BYTES).ok_or_else(too_short)?;
        let (magic, rest) = header.split_at_checked(8).ok_or_else(too_short)?;
        let (version, rest) = rest.split_at_checked(4).ok_or_else(too_short)?;
        let (length, hash) = rest.split_at_checked(8).ok_or_else(too_short)?;
        if magic != SNAPSHOT_MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = u32::from_le_bytes(version.try_into().map_err(|_| too_short())?);
        if version != SNAPSHOT_VERSION && version != 1 {
            return Err(SnapshotError::UnsupportedVersion {
                found: version,
                supported: SNAPSHOT_VERSION,
            });
        }
        let declared = u64::from_le_bytes(length.try_into().map_err(|_| too_short())?);
        if usize::try_from(declared).map_or(true, |d| d > SNAPSHOT_BYTES_MAX) {
            return Err(SnapshotError::TooLarge { bytes: declared });
        }
        if usize::try_from(declared).ok() != Some(payload.len()) {
            return Err(SnapshotError::LengthMismatch {
                declared,
                actual: payload.len(),
            });
        }
        if blake3::hash(payload).as_bytes().as_slice() != hash {
            return Err(SnapshotError::ChecksumMismatch);
        }
        let decode_error = |error: bincode::error::DecodeError| SnapshotError::Decode {
            message: error.to_string(),
        };
        let (directory, read): (Directory, usize) = if version == 1 {
            let (old, read): (DirectoryV1, usize) =
                bincode::serde::decode_from_slice(payload, config()).map_err(decode_error)?;
            (Directory::from_branches(old.branches), read)
        } else {
            bincode::serde::decode_from_slice(payload, config()).map_err(decode_error)?
        };
        if read != payload.len() {
            return Err(SnapshotError::Decode {
                message: format!("{} bytes left after the directory", payload.len() - read),
            });
        }
        directory
            .check_invariants()
            .map_err(|message| SnapshotError::Invariant { message })?;
        Ok(directory)
    }

    /// The BLAKE3 hash of the directory's canonical encoding (the snapshot payload):
    /// replicas of the registry that applied the same commands have the same digest.
    pub fn digest(&self) -> Result<[u8; 32], SnapshotError> {
        Ok(*blake3::hash(&self.payload()?).as_bytes())
    }

    fn payload(&self) -> Result<Vec<u8>, SnapshotError> {
        let payload = bincode::serde::encode_to_vec(self, config()).map_err(|error| {
            SnapshotError::Encode {
                message: error.to_string(),
            }
        })?;
        if payload.len() > SNAPSHOT_BYTES_MAX {
            return Err(SnapshotError::TooLarge {
                bytes: u64::try_from(payload.len()).unwrap_or(u64::MAX),
            });
        }
        Ok(payload)
    }
}
