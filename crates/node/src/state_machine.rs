//! The replicated state machine: the ledger core, what has been applied to it, and its
//! snapshots on disk.
//!
//! A snapshot file is `CBSNAPS2` (8 bytes), the length of the encoded snapshot metadata
//! (u32 LE), the metadata (bincode), the length of the risk state (u64 LE), the risk
//! state (bincode), then the ledger snapshot (docs/ledger.md). Files of the first
//! version (`CBSNAPSH`, no risk state) are still read. It is
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

use crate::command::{Command, CommandResponse, Request, RequestOutcome, ScreenedTransfers};
use crate::risk_state::RiskState;
use crate::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use corebank_screening::{Candidate, Screener};

/// Version 1 held the ledger only; version 2 adds the risk state after the metadata.
const SNAPSHOT_MAGIC_V1: &[u8; 8] = b"CBSNAPSH";
const SNAPSHOT_MAGIC: &[u8; 8] = b"CBSNAPS2";
const SNAPSHOT_RISK_BYTES_MAX: u64 = 1 << 32;
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
    /// Locked after `ledger` whenever both are held.
    pub risk: RwLock<RiskState>,
    /// Told what committed, for the screen's features (on every replica).
    observer: Mutex<Option<CommitObserver>>,
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
        let (mut ledger, risk, applied) = if path.exists() {
            let damaged = |reason: String| StateMachineError::DamagedSnapshot {
                path: path.display().to_string(),
                reason,
            };
            let file = File::open(&path).map_err(|e| damaged(e.to_string()))?;
            let (meta, risk, ledger) = read_snapshot_file(file).map_err(damaged)?;
            let applied = Applied {
                last_applied: meta.last_log_id,
                membership: meta.last_membership.clone(),
                snapshot: Some(meta),
                snapshots_built: 0,
            };
            (ledger, risk, applied)
        } else {
            (Ledger::new(), RiskState::default(), Applied::default())
        };
        ledger.reserve(capacity.0, capacity.1);
        let (committed, _) = broadcast::channel(1024);
        let shared = Shared {
            ledger: RwLock::new(ledger),
            risk: RwLock::new(risk),
            observer: Mutex::new(None),
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

/// Applies one command to the ledger and the risk state. Deterministic: every replica
/// computes the same outcome from the same state, including the refusal of a whole
/// request. `committed` (when given) collects the new transfers created, for the
/// screen's features.
fn apply_command(
    ledger: &mut Ledger,
    risk: &mut RiskState,
    command: Command,
    mut committed: Option<&mut Vec<Candidate>>,
) -> CommandResponse {
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
                        Request::Screened(screened) => {
                            risk.apply_screened(ledger, next, &screened).map(|outcome| {
                                if let Some(committed) = committed.as_deref_mut() {
                                    collect_created(
                                        ledger,
                                        next,
                                        &screened,
                                        &outcome.results,
                                        committed,
                                    );
                                }
                                RequestOutcome::Screened {
                                    timestamp: next,
                                    results: outcome.results,
                                    decisions: outcome.decisions,
                                }
                            })
                        }
                        Request::Risk(action) => Ok(RequestOutcome::Risk {
                            timestamp: next,
                            outcome: risk.apply_action(ledger, next, &action),
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

/// The new transfers of `screened` that were created (failures are listed in
/// `failures`, by index), as the screen sees them, with their ledger timestamps.
fn collect_created(
    ledger: &Ledger,
    timestamp: u64,
    screened: &ScreenedTransfers,
    failures: &[corebank_ledger::CreateTransfersResult],
    out: &mut Vec<Candidate>,
) {
    let mut failures = failures.iter().peekable();
    for (index, event) in screened.events.iter().enumerate() {
        if failures.next_if(|f| f.index as usize == index).is_some() {
            continue;
        }
        if crate::screening::is_new_transfer(event) {
            let at = timestamp + index as u64;
            out.push(crate::screening::candidate(
                ledger,
                event,
                at,
                screened.context_of(index),
            ));
        }
    }
}

/// Hands what committed to the screener on a thread of its own, so that applying never
/// waits for feature updates. When the screener falls behind by more than the channel
/// holds, batches are dropped and counted (features then miss them; decisions are
/// never affected on other replicas, since they travel in the log).
#[derive(Debug)]
struct CommitObserver {
    sender: std::sync::mpsc::SyncSender<Vec<Candidate>>,
    dropped: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// Tells `screener` about every transfer created from now on.
    pub fn observe_commits(&self, screener: Arc<dyn Screener>) -> std::io::Result<()> {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<Candidate>>(256);
        std::thread::Builder::new()
            .name("screen-features".into())
            .spawn(move || {
                while let Ok(batch) = receiver.recv() {
                    screener.committed(&batch);
                }
            })?;
        if let Ok(mut observer) = self.observer.lock() {
            *observer = Some(CommitObserver {
                sender,
                dropped: std::sync::atomic::AtomicU64::new(0),
            });
        }
        Ok(())
    }

    /// Committed batches the screener missed because it fell behind.
    pub fn observer_dropped(&self) -> u64 {
        self.observer
            .lock()
            .ok()
            .and_then(|o| {
                o.as_ref()
                    .map(|o| o.dropped.load(std::sync::atomic::Ordering::Relaxed))
            })
            .unwrap_or(0)
    }

    fn observing(&self) -> bool {
        self.observer.lock().is_ok_and(|o| o.is_some())
    }

    fn send_committed(&self, batch: Vec<Candidate>) {
        if batch.is_empty() {
            return;
        }
        if let Ok(observer) = self.observer.lock()
            && let Some(observer) = observer.as_ref()
            && observer.sender.try_send(batch).is_err()
        {
            observer
                .dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

fn write_snapshot_file(
    path: &Path,
    meta: &SnapshotMeta,
    risk: &RiskState,
    ledger: &Ledger,
) -> std::io::Result<()> {
    let meta_bytes = bincode::serde::encode_to_vec(meta, bincode::config::standard())
        .map_err(std::io::Error::other)?;
    let meta_len = u32::try_from(meta_bytes.len()).map_err(std::io::Error::other)?;
    let risk_bytes = bincode::serde::encode_to_vec(risk, bincode::config::standard())
        .map_err(std::io::Error::other)?;
    let temporary = path.with_extension("tmp");
    {
        let file = File::create(&temporary)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(SNAPSHOT_MAGIC)?;
        out.write_all(&meta_len.to_le_bytes())?;
        out.write_all(&meta_bytes)?;
        out.write_all(&(risk_bytes.len() as u64).to_le_bytes())?;
        out.write_all(&risk_bytes)?;
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

fn read_snapshot_file(file: File) -> Result<(SnapshotMeta, RiskState, Ledger), String> {
    let mut input = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0; 8];
    input
        .read_exact(&mut magic)
        .map_err(|e| format!("cannot read its header: {e}"))?;
    if &magic != SNAPSHOT_MAGIC && &magic != SNAPSHOT_MAGIC_V1 {
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
    let risk = if &magic == SNAPSHOT_MAGIC {
        let mut len = [0; 8];
        input
            .read_exact(&mut len)
            .map_err(|e| format!("cannot read its risk state: {e}"))?;
        let len = u64::from_le_bytes(len);
        if len > SNAPSHOT_RISK_BYTES_MAX {
            return Err(format!("its risk state claims {len} bytes"));
        }
        let mut bytes = Vec::new();
        (&mut input)
            .take(len)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read its risk state: {e}"))?;
        if bytes.len() as u64 != len {
            return Err("its risk state is truncated".into());
        }
        let (risk, _): (RiskState, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard())
                .map_err(|e| format!("damaged risk state: {e}"))?;
        risk
    } else {
        RiskState::default()
    };
    let ledger = Ledger::read_snapshot(input).map_err(|e| e.to_string())?;
    Ok((meta, risk, ledger))
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
            let risk = shared
                .risk
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
            write_snapshot_file(
                &shared.snapshot_dir.join(SNAPSHOT_FILE),
                &meta,
                &risk,
                &ledger,
            )
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
            let mut risk = shared
                .risk
                .write()
                .map_err(|e| sm_error(ErrorVerb::Write, e))?;
            let mut committed = shared.observing().then(Vec::new);
            let mut responses = Vec::with_capacity(entries.len());
            let mut last = None;
            let mut membership = None;
            for entry in entries {
                last = Some(entry.log_id);
                responses.push(match entry.payload {
                    EntryPayload::Blank => CommandResponse::default(),
                    EntryPayload::Normal(command) => {
                        apply_command(&mut ledger, &mut risk, command, committed.as_mut())
                    }
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
            drop(risk);
            drop(ledger);
            if let Some(committed) = committed {
                shared.send_committed(committed);
            }
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
            let (_, risk, ledger) =
                read_snapshot_file(file).map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
            let path = shared.snapshot_dir.join(SNAPSHOT_FILE);
            write_snapshot_file(&path, &meta, &risk, &ledger)
                .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
            let mut ledger_slot = shared
                .ledger
                .write()
                .map_err(|e| sm_error(ErrorVerb::Write, e))?;
            *ledger_slot = ledger;
            *shared
                .risk
                .write()
                .map_err(|e| sm_error(ErrorVerb::Write, e))? = risk;
            drop(ledger_slot);
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
