//! The replicated state machine: the ledger core, what has been applied to it, and its
//! snapshots on disk.
//!
//! A snapshot file is `CBSNAPSH` (8 bytes), the length of the encoded snapshot metadata
//! (u32 LE), the metadata (bincode), then the ledger snapshot (docs/ledger.md). It is
//! written to a temporary file, synced, and renamed into place, so a crash leaves
//! either the old snapshot or the new one, never half of one.

// openraft's StorageError is large, and it is the error type these traits must return.
#![allow(clippy::result_large_err)]

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use corebank_ledger::{BATCH_EVENTS_MAX, Ledger};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder};
use tokio::sync::broadcast;

use crate::command::{Command, CommandResponse, Request, RequestOutcome};
use crate::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

const SNAPSHOT_MAGIC: &[u8; 8] = b"CBSNAPSH";
const SNAPSHOT_FILE: &str = "snapshot.bin";
const SNAPSHOT_META_BYTES_MAX: u32 = 1 << 20;

/// Why the state machine could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StateMachineError {
    #[error(
        "cannot read the snapshot {path}: {reason}; refusing to start (restore the data directory from a replica or a backup)"
    )]
    DamagedSnapshot { path: String, reason: String },
    #[error("cannot use the data directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// What the applied log has produced, shared between the state machine (writer) and
/// the node's readers.
#[derive(Debug)]
pub struct Shared {
    pub ledger: RwLock<Ledger>,
    applied: Mutex<Applied>,
    snapshot_dir: PathBuf,
    /// Every applied command's timestamp range end, for subscribers waiting on progress.
    pub committed: broadcast::Sender<u64>,
}

#[derive(Debug, Default, Clone)]
struct Applied {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshot: Option<SnapshotMeta>,
    snapshots_built: u64,
}

/// The state machine handed to openraft; clones share one [`Shared`].
#[derive(Clone, Debug)]
pub struct StateMachine {
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

impl StateMachine {
    /// Loads the latest snapshot in `snapshot_dir` (or starts empty); the log replays the
    /// rest. A damaged snapshot stops the start-up.
    pub fn open(snapshot_dir: &Path, capacity: (usize, usize)) -> Result<Self, StateMachineError> {
        let io = |source| StateMachineError::Io {
            path: snapshot_dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(snapshot_dir).map_err(io)?;
        let path = snapshot_dir.join(SNAPSHOT_FILE);
        let (mut ledger, applied) = if path.exists() {
            let damaged = |reason: String| StateMachineError::DamagedSnapshot {
                path: path.display().to_string(),
                reason,
            };
            let file = File::open(&path).map_err(|e| damaged(e.to_string()))?;
            let (meta, ledger) = read_snapshot_file(file).map_err(damaged)?;
            let applied = Applied {
                last_applied: meta.last_log_id,
                membership: meta.last_membership.clone(),
                snapshot: Some(meta),
                snapshots_built: 0,
            };
            (ledger, applied)
        } else {
            (Ledger::new(), Applied::default())
        };
        ledger.reserve(capacity.0, capacity.1);
        let (committed, _) = broadcast::channel(1024);
        let shared = Shared {
            ledger: RwLock::new(ledger),
            applied: Mutex::new(applied),
            snapshot_dir: snapshot_dir.to_path_buf(),
            committed,
        };
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }
}

impl Shared {
    /// The index of the last applied log entry (0 before any).
    pub fn last_applied_index(&self) -> u64 {
        self.applied
            .lock()
            .map(|a| a.last_applied.map_or(0, |id| id.index))
            .unwrap_or(0)
    }

    /// How many snapshots this process has built.
    pub fn snapshots_built(&self) -> u64 {
        self.applied.lock().map(|a| a.snapshots_built).unwrap_or(0)
    }
}

/// Applies one command to the ledger. Deterministic: every replica computes the same
/// outcome from the same state, including the refusal of a whole request.
fn apply_command(ledger: &mut Ledger, command: Command) -> CommandResponse {
    match command {
        Command::Apply {
            timestamp,
            requests,
        } => {
            // The leader's clock proposed `timestamp`; after a leader change it may be
            // behind the ledger, so the ledger's own next timestamp wins.
            let mut next = timestamp.max(ledger.last_timestamp() + 1);
            let mut outcomes = Vec::with_capacity(requests.len());
            for request in requests {
                let outcome =
                    match request {
                        Request::CreateAccounts(events) => ledger
                            .create_accounts(next, &events)
                            .map(|results| RequestOutcome::Accounts {
                                timestamp: next,
                                results,
                            }),
                        Request::CreateTransfers(events) => ledger
                            .create_transfers(next, &events)
                            .map(|results| RequestOutcome::Transfers {
                                timestamp: next,
                                results,
                            }),
                    };
                outcomes.push(outcome.unwrap_or_else(RequestOutcome::Refused));
                next = next.max(ledger.last_timestamp() + 1);
            }
            CommandResponse {
                outcomes,
                expired: 0,
            }
        }
        Command::Expire { timestamp } => {
            let mut expired = 0u64;
            let mut at = timestamp.max(ledger.last_timestamp() + 1);
            // Only a clock at the end of its range refuses; nothing is applied then.
            while let Ok(count) = ledger.expire_pending_transfers(at, BATCH_EVENTS_MAX) {
                expired += count as u64;
                if count < BATCH_EVENTS_MAX {
                    break;
                }
                at = ledger.last_timestamp() + 1;
            }
            CommandResponse {
                outcomes: Vec::new(),
                expired,
            }
        }
    }
}

fn write_snapshot_file(path: &Path, meta: &SnapshotMeta, ledger: &Ledger) -> std::io::Result<()> {
    let meta_bytes = bincode::serde::encode_to_vec(meta, bincode::config::standard())
        .map_err(std::io::Error::other)?;
    let meta_len = u32::try_from(meta_bytes.len()).map_err(std::io::Error::other)?;
    let temporary = path.with_extension("tmp");
    {
        let file = File::create(&temporary)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(SNAPSHOT_MAGIC)?;
        out.write_all(&meta_len.to_le_bytes())?;
        out.write_all(&meta_bytes)?;
        ledger.write_snapshot(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn read_snapshot_file(file: File) -> Result<(SnapshotMeta, Ledger), String> {
    let mut input = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0; 8];
    input
        .read_exact(&mut magic)
        .map_err(|e| format!("cannot read its header: {e}"))?;
    if &magic != SNAPSHOT_MAGIC {
        return Err("not a corebank snapshot (bad magic bytes)".into());
    }
    let mut len = [0; 4];
    input
        .read_exact(&mut len)
        .map_err(|e| format!("cannot read its header: {e}"))?;
    let len = u32::from_le_bytes(len);
    if len > SNAPSHOT_META_BYTES_MAX {
        return Err(format!("its metadata claims {len} bytes"));
    }
    let mut meta_bytes = vec![0; len as usize];
    input
        .read_exact(&mut meta_bytes)
        .map_err(|e| format!("cannot read its metadata: {e}"))?;
    let (meta, _): (SnapshotMeta, usize) =
        bincode::serde::decode_from_slice(&meta_bytes, bincode::config::standard())
            .map_err(|e| format!("damaged metadata: {e}"))?;
    let ledger = Ledger::read_snapshot(input).map_err(|e| e.to_string())?;
    Ok((meta, ledger))
}

async fn open_snapshot_data(path: PathBuf) -> Result<Box<tokio::fs::File>, StorageError> {
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
    Ok(Box::new(file))
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let shared = self.shared();
        let meta = tokio::task::spawn_blocking(move || -> Result<SnapshotMeta, StorageError> {
            // The read lock holds applies back while the ledger streams to disk: the
            // snapshot is exactly the state at `last_applied`.
            let ledger = shared
                .ledger
                .read()
                .map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
            let mut applied = shared
                .applied
                .lock()
                .map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
            let meta = crate::group::snapshot_meta(
                applied.last_applied,
                applied.membership.clone(),
                applied.snapshots_built,
            );
            write_snapshot_file(&shared.snapshot_dir.join(SNAPSHOT_FILE), &meta, &ledger)
                .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
            applied.snapshot = Some(meta.clone());
            applied.snapshots_built += 1;
            Ok(meta)
        })
        .await
        .map_err(|e| snapshot_error(ErrorVerb::Write, e))??;
        let snapshot = open_snapshot_data(self.shared.snapshot_dir.join(SNAPSHOT_FILE)).await?;
        Ok(Snapshot { meta, snapshot })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = self
            .shared
            .applied
            .lock()
            .map_err(|e| sm_error(ErrorVerb::Read, e))?;
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let shared = self.shared();
        tokio::task::spawn_blocking(move || {
            let mut ledger = shared
                .ledger
                .write()
                .map_err(|e| sm_error(ErrorVerb::Write, e))?;
            let mut responses = Vec::with_capacity(entries.len());
            let mut last = None;
            let mut membership = None;
            for entry in entries {
                last = Some(entry.log_id);
                responses.push(match entry.payload {
                    EntryPayload::Blank => CommandResponse::default(),
                    EntryPayload::Normal(command) => apply_command(&mut ledger, command),
                    EntryPayload::Membership(config) => {
                        membership = Some(StoredMembership::new(Some(entry.log_id), config));
                        CommandResponse::default()
                    }
                });
            }
            let clock = ledger.last_timestamp();
            // Recorded before the ledger lock is released, so that a snapshot (which
            // reads both under the ledger lock) never pairs a state with an older index.
            let mut applied = shared
                .applied
                .lock()
                .map_err(|e| sm_error(ErrorVerb::Write, e))?;
            if last.is_some() {
                applied.last_applied = last;
            }
            if let Some(membership) = membership {
                applied.membership = membership;
            }
            drop(applied);
            drop(ledger);
            // Nobody listening is fine.
            let _ = shared.committed.send(clock);
            Ok(responses)
        })
        .await
        .map_err(|e| sm_error(ErrorVerb::Write, e))?
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = self.shared.snapshot_dir.join("incoming.bin");
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let mut file = snapshot.into_std().await;
        let shared = self.shared();
        let meta = meta.clone();
        tokio::task::spawn_blocking(move || -> Result<(), StorageError> {
            file.seek(SeekFrom::Start(0))
                .map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
            let (_, ledger) =
                read_snapshot_file(file).map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
            let path = shared.snapshot_dir.join(SNAPSHOT_FILE);
            write_snapshot_file(&path, &meta, &ledger)
                .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
            *shared
                .ledger
                .write()
                .map_err(|e| sm_error(ErrorVerb::Write, e))? = ledger;
            let mut applied = shared
                .applied
                .lock()
                .map_err(|e| sm_error(ErrorVerb::Write, e))?;
            applied.last_applied = meta.last_log_id;
            applied.membership = meta.last_membership.clone();
            applied.snapshot = Some(meta);
            Ok(())
        })
        .await
        .map_err(|e| snapshot_error(ErrorVerb::Write, e))?
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let meta = self
            .shared
            .applied
            .lock()
            .map_err(|e| snapshot_error(ErrorVerb::Read, e))?
            .snapshot
            .clone();
        match meta {
            None => Ok(None),
            Some(meta) => {
                let snapshot =
                    open_snapshot_data(self.shared.snapshot_dir.join(SNAPSHOT_FILE)).await?;
                Ok(Some(Snapshot { meta, snapshot }))
            }
        }
    }
}
