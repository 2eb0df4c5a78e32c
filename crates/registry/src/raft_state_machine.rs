//! The directory as openraft's replicated state machine, and its snapshots.
//!
//! The directory is small (at most 10,000 branches), so a snapshot is held in memory
//! ([`std::io::Cursor`] over its bytes) and sent to peers whole; it is also kept in the
//! data directory so that a restart replays only the log after it:
//!
//! ```text
//! snapshot.bin
//! offset  size  field
//!      0     8  magic "CBREGRSN"
//!      8     4  metadata length M, u32 little-endian
//!     12     M  openraft SnapshotMeta (bincode 2, standard): last log id, membership, id
//!   12+M     8  directory snapshot length D, u64 little-endian
//!   20+M     D  the directory snapshot ("CBREGDIR", with its own BLAKE3 checksum)
//! 20+M+D    32  BLAKE3 hash of every byte before it
//! ```
//!
//! It is written to `snapshot.tmp`, synced, renamed over `snapshot.bin`, and the
//! directory is synced: a crash leaves the old snapshot or the new one. A damaged
//! snapshot stops the start (it is never loaded). The bytes sent to peers are the
//! directory snapshot alone (the metadata travels in openraft's own message).

// openraft's StorageError is large, and it is the error type these traits must return.
#![allow(clippy::result_large_err)]

use std::fs::File;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder};

use crate::directory::{Directory, RegistryResponse};
use crate::raft_store::{
    Entry, LogId, RegistryTypeConfig, Snapshot, SnapshotMeta, StorageError, StoredMembership,
};
use crate::snapshot::SNAPSHOT_BYTES_MAX;

const FILE_MAGIC: &[u8; 8] = b"CBREGRSN";
/// The snapshot file in the data directory.
pub(crate) const SNAPSHOT_FILE: &str = "snapshot.bin";
const SNAPSHOT_TMP: &str = "snapshot.tmp";
const META_BYTES_MAX: usize = 1 << 20;
const HASH_BYTES: usize = 32;

/// Why the state machine could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StateMachineError {
    /// The snapshot file is damaged or foreign; nothing was loaded.
    #[error(
        "cannot read the registry snapshot {path}: {reason}; refusing to start (restore the data directory from another registry replica or a backup)"
    )]
    DamagedSnapshot {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The data directory cannot be used.
    #[error("cannot use the registry data directory {path}: {source}")]
    Io {
        /// The directory.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
}

#[derive(Debug, Default, Clone)]
struct Applied {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    /// The latest snapshot: its metadata and the directory snapshot bytes.
    snapshot: Option<(SnapshotMeta, Arc<Vec<u8>>)>,
    snapshots_built: u64,
}

/// The directory and what has been applied to it, shared between the state machine
/// (writer) and the store's readers.
#[derive(Debug)]
pub(crate) struct Shared {
    directory: RwLock<Directory>,
    applied: Mutex<Applied>,
    data_dir: PathBuf,
}

impl Shared {
    /// Runs `f` on the directory as applied so far.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Directory) -> T) -> Result<T, String> {
        let directory = self
            .directory
            .read()
            .map_err(|_| "the directory's lock was poisoned by a panic".to_owned())?;
        Ok(f(&directory))
    }

    /// Runs `f` on the directory together with the index of the last entry applied
    /// to it (read under the directory's lock, so the two match).
    pub(crate) fn read_at<T>(&self, f: impl FnOnce(&Directory) -> T) -> Result<(u64, T), String> {
        let directory = self
            .directory
            .read()
            .map_err(|_| "the directory's lock was poisoned by a panic".to_owned())?;
        Ok((self.last_applied_index(), f(&directory)))
    }

    /// The index of the last applied log entry (0 before any).
    pub(crate) fn last_applied_index(&self) -> u64 {
        self.applied
            .lock()
            .map(|a| a.last_applied.map_or(0, |id| id.index))
            .unwrap_or(0)
    }

    /// How many snapshots this process has built.
    pub(crate) fn snapshots_built(&self) -> u64 {
        self.applied.lock().map(|a| a.snapshots_built).unwrap_or(0)
    }
}

/// The state machine handed to openraft; clones share one [`Shared`].
#[derive(Clone, Debug)]
pub(crate) struct StateMachine {
    shared: Arc<Shared>,
}

fn sm_error(verb: ErrorVerb, error: impl std::fmt::Display) -> StorageError {
    StorageError::from_io_error(
        ErrorSubject::StateMachine,
        verb,
        std::io::Error::other(error.to_string()),
    )
}

fn snapshot_error(verb: ErrorVerb, error: impl std::fmt::Display) -> StorageError {
    StorageError::from_io_error(
        ErrorSubject::Snapshot(None),
        verb,
        std::io::Error::other(error.to_string()),
    )
}

/// The snapshot file's bytes.
pub(crate) fn encode_snapshot_file(
    meta: &SnapshotMeta,
    directory: &[u8],
) -> Result<Vec<u8>, String> {
    let meta_bytes = bincode::serde::encode_to_vec(meta, bincode::config::standard())
        .map_err(|e| format!("cannot encode the snapshot metadata: {e}"))?;
    let meta_len = u32::try_from(meta_bytes.len()).map_err(|e| e.to_string())?;
    let directory_len = u64::try_from(directory.len()).map_err(|e| e.to_string())?;
    let mut bytes = Vec::with_capacity(8 + 4 + meta_bytes.len() + 8 + directory.len() + HASH_BYTES);
    bytes.extend_from_slice(FILE_MAGIC);
    bytes.extend_from_slice(&meta_len.to_le_bytes());
    bytes.extend_from_slice(&meta_bytes);
    bytes.extend_from_slice(&directory_len.to_le_bytes());
    bytes.extend_from_slice(directory);
    let hash = blake3::hash(&bytes);
    bytes.extend_from_slice(hash.as_bytes());
    Ok(bytes)
}

fn take<'a>(bytes: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], String> {
    let (head, rest) = bytes
        .split_at_checked(n)
        .ok_or_else(|| format!("truncated in its {what}"))?;
    *bytes = rest;
    Ok(head)
}

/// Reads a snapshot file: its metadata, the directory, and the directory's snapshot
/// bytes. Every check of the format runs; nothing damaged is returned.
pub(crate) fn decode_snapshot_file(
    bytes: &[u8],
) -> Result<(SnapshotMeta, Directory, Vec<u8>), String> {
    let body_len = bytes
        .len()
        .checked_sub(HASH_BYTES)
        .ok_or("shorter than its checksum")?;
    let (body, hash) = bytes.split_at(body_len);
    if blake3::hash(body).as_bytes().as_slice() != hash {
        return Err("checksum mismatch".into());
    }
    let mut rest = body;
    if take(&mut rest, 8, "header")? != FILE_MAGIC {
        return Err("not a registry snapshot (bad magic bytes)".into());
    }
    let meta_len = take(&mut rest, 4, "header")?;
    let meta_len = u32::from_le_bytes(meta_len.try_into().map_err(|_| "bad header")?);
    let meta_len = usize::try_from(meta_len).map_err(|e| e.to_string())?;
    if meta_len > META_BYTES_MAX {
        return Err(format!("its metadata claims {meta_len} bytes"));
    }
    let meta_bytes = take(&mut rest, meta_len, "metadata")?;
    let (meta, read): (SnapshotMeta, usize) =
        bincode::serde::decode_from_slice(meta_bytes, bincode::config::standard())
            .map_err(|e| format!("damaged metadata: {e}"))?;
    if read != meta_bytes.len() {
        return Err("trailing bytes after the metadata".into());
    }
    let directory_len = take(&mut rest, 8, "directory length")?;
    let directory_len = u64::from_le_bytes(
        directory_len
            .try_into()
            .map_err(|_| "bad directory length")?,
    );
    if usize::try_from(directory_len).ok() != Some(rest.len()) {
        return Err(format!(
            "the directory claims {directory_len} bytes but {} follow",
            rest.len()
        ));
    }
    let directory = Directory::from_snapshot_bytes(rest).map_err(|e| e.to_string())?;
    Ok((meta, directory, rest.to_vec()))
}

/// Writes `bytes` to `dir/snapshot.bin` atomically: a temporary file, synced, renamed
/// into place, then the directory synced.
fn write_atomically(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = dir.join(SNAPSHOT_TMP);
    {
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, dir.join(SNAPSHOT_FILE))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

impl StateMachine {
    /// Loads the snapshot in `data_dir` (or starts empty); the log replays the rest.
    /// A damaged snapshot stops the start.
    pub(crate) fn open(data_dir: &Path) -> Result<Self, StateMachineError> {
        let path = data_dir.join(SNAPSHOT_FILE);
        let damaged = |reason: String| StateMachineError::DamagedSnapshot {
            path: path.display().to_string(),
            reason,
        };
        let (directory, applied) = match std::fs::metadata(&path) {
            Ok(metadata) => {
                // The directory's own limit plus room for the metadata and headers.
                let limit = SNAPSHOT_BYTES_MAX + META_BYTES_MAX + 1024;
                if usize::try_from(metadata.len()).map_or(true, |len| len > limit) {
                    return Err(damaged(format!("it is {} bytes long", metadata.len())));
                }
                let bytes = std::fs::read(&path).map_err(|e| damaged(e.to_string()))?;
                let (meta, directory, directory_bytes) =
                    decode_snapshot_file(&bytes).map_err(damaged)?;
                let applied = Applied {
                    last_applied: meta.last_log_id,
                    membership: meta.last_membership.clone(),
                    snapshot: Some((meta, Arc::new(directory_bytes))),
                    snapshots_built: 0,
                };
                (directory, applied)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                (Directory::new(), Applied::default())
            }
            Err(source) => {
                return Err(StateMachineError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        Ok(Self {
            shared: Arc::new(Shared {
                directory: RwLock::new(directory),
                applied: Mutex::new(applied),
                data_dir: data_dir.to_path_buf(),
            }),
        })
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }
}

impl RaftSnapshotBuilder<RegistryTypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let shared = self.shared();
        let (meta, bytes) = tokio::task::spawn_blocking(
            move || -> Result<(SnapshotMeta, Arc<Vec<u8>>), StorageError> {
                // The read lock holds applies back while the snapshot is written: it is
                // exactly the state at `last_applied`.
                let directory = shared
                    .directory
                    .read()
                    .map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
                let mut applied = shared
                    .applied
                    .lock()
                    .map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
                let meta = corebank_node::group::snapshot_meta(
                    applied.last_applied,
                    applied.membership.clone(),
                    applied.snapshots_built,
                );
                let bytes = directory
                    .to_snapshot_bytes()
                    .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
                let file = encode_snapshot_file(&meta, &bytes)
                    .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
                write_atomically(&shared.data_dir, &file)
                    .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
                let bytes = Arc::new(bytes);
                applied.snapshot = Some((meta.clone(), Arc::clone(&bytes)));
                applied.snapshots_built += 1;
                Ok((meta, bytes))
            },
        )
        .await
        .map_err(|e| snapshot_error(ErrorVerb::Write, e))??;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes.as_ref().clone())),
        })
    }
}

impl RaftStateMachine<RegistryTypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = self
            .shared
            .applied
            .lock()
            .map_err(|e| sm_error(ErrorVerb::Read, e))?;
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Option<RegistryResponse>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        // The directory is small and every command is a few map operations: applied
        // in place, without a blocking task.
        let mut directory = self
            .shared
            .directory
            .write()
            .map_err(|e| sm_error(ErrorVerb::Write, e))?;
        let mut responses = Vec::new();
        let mut last = None;
        let mut membership = None;
        for entry in entries {
            last = Some(entry.log_id);
            responses.push(match entry.payload {
                EntryPayload::Blank => None,
                EntryPayload::Normal(command) => Some(directory.apply(&command)),
                EntryPayload::Membership(config) => {
                    membership = Some(StoredMembership::new(Some(entry.log_id), config));
                    None
                }
            });
        }
        // Recorded before the directory's lock is released, so that a snapshot or a
        // status (which read both under that lock) never pairs a state with an older
        // index.
        let mut applied = self
            .shared
            .applied
            .lock()
            .map_err(|e| sm_error(ErrorVerb::Write, e))?;
        if last.is_some() {
            applied.last_applied = last;
        }
        if let Some(membership) = membership {
            applied.membership = membership;
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let shared = self.shared();
        let meta = meta.clone();
        tokio::task::spawn_blocking(move || -> Result<(), StorageError> {
            // Checked completely (checksum, decoding, invariants) before anything changes.
            let directory = Directory::from_snapshot_bytes(&bytes)
                .map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
            let file = encode_snapshot_file(&meta, &bytes)
                .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
            let mut current = shared
                .directory
                .write()
                .map_err(|e| sm_error(ErrorVerb::Write, e))?;
            write_atomically(&shared.data_dir, &file)
                .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
            *current = directory;
            let mut applied = shared
                .applied
                .lock()
                .map_err(|e| sm_error(ErrorVerb::Write, e))?;
            applied.last_applied = meta.last_log_id;
            applied.membership = meta.last_membership.clone();
            applied.snapshot = Some((meta, Arc::new(bytes)));
            Ok(())
        })
        .await
        .map_err(|e| snapshot_error(ErrorVerb::Write, e))?
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let current = self
            .shared
            .applied
            .lock()
            .map_err(|e| snapshot_error(ErrorVerb::Read, e))?
            .snapshot
            .clone();
        Ok(current.map(|(meta, bytes)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes.as_ref().clone())),
        }))
    }
}
