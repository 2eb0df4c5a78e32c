//! The Raft log, vote and commit index in an embedded redb database.
//!
//! Every log record carries a BLAKE3 checksum of its bytes. redb's copy-on-write commits
//! already make a torn write invisible (a crash mid-commit leaves the previous commit);
//! the checksum catches what redb cannot: bytes damaged after they were written. The
//! store verifies every record when it opens and refuses to start on a damaged one, and
//! every read verifies again, so a damaged record is never applied.
//!
//! The store is generic over the Raft type configuration ([`LogTypeConfig`]): a branch
//! keeps its [`TypeConfig`](crate::TypeConfig) entries in it, the registry its own. The
//! on-disk format is the same for every configuration (docs/node.md, "The log").

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{BasicNode, ErrorSubject, ErrorVerb, RaftLogReader, RaftTypeConfig};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::types::{LogId, StorageError, Vote};

/// The Raft type configurations whose logs this store keeps: node ids are `u64`, nodes
/// are [`BasicNode`]s (an address), entries are openraft's own [`openraft::Entry`]
/// (their application data is serde-encoded, which openraft's `serde` feature
/// guarantees).
pub trait LogTypeConfig:
    RaftTypeConfig<NodeId = u64, Node = BasicNode, Entry = openraft::Entry<Self>>
{
}

impl<C> LogTypeConfig for C where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode, Entry = openraft::Entry<C>>
{
}

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_LAST_PURGED: &str = "last_purged";
const CHECKSUM_BYTES: usize = 32;

/// Why the log store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error("cannot open the Raft log database {path}: {source}")]
    Open {
        path: String,
        source: redb::DatabaseError,
    },
    #[error(
        "the Raft log is damaged at entry {index}: {reason}; refusing to start (restore the data directory from a replica or a backup)"
    )]
    Damaged { index: u64, reason: String },
    #[error("cannot read the Raft log: {0}")]
    Storage(String),
}

/// The log store of a Raft group of type configuration `C`; cheap to clone (the
/// database is shared).
pub struct LogStore<C> {
    db: Arc<Database>,
    config: PhantomData<fn() -> C>,
}

impl<C> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        Self {
            db: Arc::clone(&self.db),
            config: PhantomData,
        }
    }
}

impl<C> Debug for LogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogStore")
    }
}

fn storage_error(
    verb: ErrorVerb,
    error: impl std::error::Error + Send + Sync + 'static,
) -> StorageError {
    StorageError::from_io_error(ErrorSubject::Logs, verb, std::io::Error::other(error))
}

fn vote_error(verb: ErrorVerb, error: impl std::fmt::Display) -> StorageError {
    StorageError::from_io_error(
        ErrorSubject::Vote,
        verb,
        std::io::Error::other(error.to_string()),
    )
}

fn encode_entry<C: LogTypeConfig>(
    entry: &openraft::Entry<C>,
) -> Result<Vec<u8>, bincode::error::EncodeError> {
    let payload = bincode::serde::encode_to_vec(entry, bincode::config::standard())?;
    let mut record = Vec::with_capacity(CHECKSUM_BYTES + payload.len());
    record.extend_from_slice(blake3::hash(&payload).as_bytes());
    record.extend_from_slice(&payload);
    Ok(record)
}

/// The payload of a record whose hash matches it.
fn checked_payload(record: &[u8]) -> Result<&[u8], String> {
    if record.len() < CHECKSUM_BYTES {
        return Err("the record is shorter than its checksum".into());
    }
    let (checksum, payload) = record.split_at(CHECKSUM_BYTES);
    if blake3::hash(payload).as_bytes() != checksum {
        return Err("checksum mismatch".into());
    }
    Ok(payload)
}

/// Decodes a record, checking its checksum and that it holds the entry it is filed under.
fn decode_entry<C: LogTypeConfig>(index: u64, record: &[u8]) -> Result<openraft::Entry<C>, String> {
    let payload = checked_payload(record)?;
    let (entry, read): (openraft::Entry<C>, usize) =
        bincode::serde::decode_from_slice(payload, bincode::config::standard())
            .map_err(|error| format!("undecodable record: {error}"))?;
    if read != payload.len() {
        return Err("trailing bytes after the entry".into());
    }
    if entry.log_id.index != index {
        return Err(format!(
            "the record holds entry {} instead",
            entry.log_id.index
        ));
    }
    Ok(entry)
}

fn encode_meta<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, bincode::error::EncodeError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
}

fn decode_meta<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard()).map(|(value, _)| value)
}

impl<C: LogTypeConfig> LogStore<C> {
    /// Opens (or creates) the log at `path` and verifies every record in it.
    pub fn open(path: &Path) -> Result<Self, LogStoreError> {
        let db = Database::create(path).map_err(|source| LogStoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        let store = Self {
            db: Arc::new(db),
            config: PhantomData,
        };
        store
            .ensure_tables()
            .map_err(|e| LogStoreError::Storage(e.to_string()))?;
        store.verify()?;
        Ok(store)
    }

    fn ensure_tables(&self) -> Result<(), redb::Error> {
        let txn = self.db.begin_write()?;
        txn.open_table(LOG)?;
        txn.open_table(META)?;
        txn.commit()?;
        Ok(())
    }

    /// Reads every record back and checks it (run at start-up).
    fn verify(&self) -> Result<(), LogStoreError> {
        let storage = |e: redb::Error| LogStoreError::Storage(e.to_string());
        let txn = self.db.begin_read().map_err(|e| storage(e.into()))?;
        let table = txn.open_table(LOG).map_err(|e| storage(e.into()))?;
        let mut previous: Option<u64> = None;
        for row in table.iter().map_err(|e| storage(e.into()))? {
            let (key, value) = row.map_err(|e| storage(e.into()))?;
            let index = key.value();
            // The hash proves the bytes are the ones written; decoding (and the check
            // that the record holds entry `index`) happens on every read, replay included.
            checked_payload(value.value())
                .map_err(|reason| LogStoreError::Damaged { index, reason })?;
            if let Some(previous) = previous
                && index != previous + 1
            {
                return Err(LogStoreError::Damaged {
                    index,
                    reason: format!("entry {} is missing", previous + 1),
                });
            }
            previous = Some(index);
        }
        Ok(())
    }

    fn read_meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, String> {
        let txn = self.db.begin_read().map_err(|e| e.to_string())?;
        let table = txn.open_table(META).map_err(|e| e.to_string())?;
        let Some(value) = table.get(key).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        decode_meta(value.value())
            .map(Some)
            .map_err(|e| format!("damaged {key} record: {e}"))
    }

    fn write_meta<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
        durability: Durability,
    ) -> Result<(), String> {
        let bytes = encode_meta(value).map_err(|e| e.to_string())?;
        let mut txn = self.db.begin_write().map_err(|e| e.to_string())?;
        txn.set_durability(durability).map_err(|e| e.to_string())?;
        {
            let mut table = txn.open_table(META).map_err(|e| e.to_string())?;
            table
                .insert(key, bytes.as_slice())
                .map_err(|e| e.to_string())?;
        }
        txn.commit().map_err(|e| e.to_string())
    }

    fn last_entry_log_id(&self) -> Result<Option<LogId>, String> {
        let txn = self.db.begin_read().map_err(|e| e.to_string())?;
        let table = txn.open_table(LOG).map_err(|e| e.to_string())?;
        let Some((key, value)) = table.last().map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        decode_entry::<C>(key.value(), value.value()).map(|entry| Some(entry.log_id))
    }

    fn read_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<Vec<openraft::Entry<C>>, String> {
        let txn = self.db.begin_read().map_err(|e| e.to_string())?;
        let table = txn.open_table(LOG).map_err(|e| e.to_string())?;
        let mut entries = Vec::new();
        for row in table
            .range::<u64>((start, end))
            .map_err(|e| e.to_string())?
        {
            let (key, value) = row.map_err(|e| e.to_string())?;
            let index = key.value();
            let entry = decode_entry(index, value.value())
                .map_err(|reason| format!("entry {index} is damaged: {reason}"))?;
            entries.push(entry);
        }
        Ok(entries)
    }

    fn append_blocking(&self, records: Vec<(u64, Vec<u8>)>) -> Result<(), redb::Error> {
        let mut txn = self.db.begin_write()?;
        // Acknowledged means durable: the commit returns after the data is synced.
        txn.set_durability(Durability::Immediate)?;
        {
            let mut table = txn.open_table(LOG)?;
            for (index, record) in &records {
                table.insert(*index, record.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn remove_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
        last_purged: Option<LogId>,
    ) -> Result<(), String> {
        let bytes = last_purged
            .map(|id| encode_meta(&id))
            .transpose()
            .map_err(|e| e.to_string())?;
        let txn = self.db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut table = txn.open_table(LOG).map_err(|e| e.to_string())?;
            table
                .retain_in::<u64, _>((start, end), |_, _| false)
                .map_err(|e| e.to_string())?;
            if let Some(bytes) = &bytes {
                let mut meta = txn.open_table(META).map_err(|e| e.to_string())?;
                meta.insert(KEY_LAST_PURGED, bytes.as_slice())
                    .map_err(|e| e.to_string())?;
            }
        }
        txn.commit().map_err(|e| e.to_string())
    }
}

impl<C: LogTypeConfig> RaftLogReader<C> for LogStore<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<openraft::Entry<C>>, StorageError> {
        let start = range.start_bound().cloned();
        let end = range.end_bound().cloned();
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_range(start, end))
            .await
            .map_err(|e| storage_error(ErrorVerb::Read, e))?
            .map_err(|e| storage_error(ErrorVerb::Read, std::io::Error::other(e)))
    }
}

impl<C: LogTypeConfig> RaftLogStorage<C> for LogStore<C> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError> {
        let read = |e: String| storage_error(ErrorVerb::Read, std::io::Error::other(e));
        let last_purged_log_id: Option<LogId> = self.read_meta(KEY_LAST_PURGED).map_err(read)?;
        let last_log_id = self
            .last_entry_log_id()
            .map_err(read)?
            .or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let store = self.clone();
        let vote = *vote;
        tokio::task::spawn_blocking(move || {
            store.write_meta(KEY_VOTE, &vote, Durability::Immediate)
        })
        .await
        .map_err(|e| vote_error(ErrorVerb::Write, e))?
        .map_err(|e| vote_error(ErrorVerb::Write, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(KEY_VOTE)
            .map_err(|e| vote_error(ErrorVerb::Read, e))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // The commit index may lag on disk (openraft re-derives it); no sync needed.
        self.write_meta(KEY_COMMITTED, &committed, Durability::None)
            .map_err(|e| storage_error(ErrorVerb::Write, std::io::Error::other(e)))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self
            .read_meta::<Option<LogId>>(KEY_COMMITTED)
            .map_err(|e| storage_error(ErrorVerb::Read, std::io::Error::other(e)))?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<C>> + Send,
        I::IntoIter: Send,
    {
        let mut records = Vec::new();
        for entry in entries {
            let record = encode_entry(&entry).map_err(|e| storage_error(ErrorVerb::Write, e))?;
            records.push((entry.log_id.index, record));
        }
        let store = self.clone();
        let outcome = tokio::task::spawn_blocking(move || store.append_blocking(records))
            .await
            .map_err(|e| storage_error(ErrorVerb::Write, e))?;
        match outcome {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(error) => {
                let message = error.to_string();
                callback.log_io_completed(Err(std::io::Error::other(message.clone())));
                Err(storage_error(
                    ErrorVerb::Write,
                    std::io::Error::other(message),
                ))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.remove_range(Bound::Included(log_id.index), Bound::Unbounded, None)
            .map_err(|e| storage_error(ErrorVerb::Delete, std::io::Error::other(e)))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.remove_range(
            Bound::Unbounded,
            Bound::Included(log_id.index),
            Some(log_id),
        )
        .map_err(|e| storage_error(ErrorVerb::Delete, std::io::Error::other(e)))
    }
}
