//! Where the directory lives: behind [`RegistryStore`], so that the service runs
//! the same over [`MemoryStore`] (tests, one process) and over the registry's Raft
//! group.

use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use crate::directory::{Directory, RegistryCommand, RegistryResponse};

/// Why a store could not take a command or serve a read. The command was not
/// applied, except possibly after [`LeadershipLost`](Self::LeadershipLost) and
/// [`Internal`](Self::Internal).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// This registry replica does not lead; the leader's address when known.
    #[error("this registry replica is not the leader{}", leader_hint(.leader.as_deref()))]
    NotLeader {
        /// The leader's gRPC address, when known.
        leader: Option<String>,
    },
    /// This replica lost the lead while the command was in flight: the new leader
    /// may or may not have committed it (outcome unknown). Idempotent commands can be
    /// sent again; the leader's address when known.
    #[error("this registry replica lost the lead with the command in flight; it may or may not have been applied{}", leader_hint(.leader.as_deref()))]
    LeadershipLost {
        /// The new leader's gRPC address, when known.
        leader: Option<String>,
    },
    /// The store cannot commit or read now (no quorum, shutting down); nothing was
    /// done, retry later.
    #[error("the registry cannot serve this now: {message}")]
    Unavailable {
        /// What is wrong.
        message: String,
    },
    /// An internal failure; a command may or may not have been applied.
    #[error("internal registry failure: {message}")]
    Internal {
        /// What is wrong.
        message: String,
    },
}

fn leader_hint(leader: Option<&str>) -> String {
    match leader {
        Some(address) => format!("; the leader is {address}"),
        None => ", and no leader is known yet".to_owned(),
    }
}

impl StoreError {
    /// `not_leader`, `outcome_unknown`, `unavailable` or `internal`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NotLeader { .. } => "not_leader",
            Self::LeadershipLost { .. } => "outcome_unknown",
            Self::Unavailable { .. } => "unavailable",
            Self::Internal { .. } => "internal",
        }
    }
}

/// The directory's storage and replication.
///
/// - [`propose`](Self::propose) applies a command durably (for the Raft store:
///   committed by a quorum, then applied) and returns the directory's answer;
/// - [`read`](Self::read) runs `f` on a directory that reflects every command
///   acknowledged before the read began (for the Raft store: on the leader, after a
///   read-index check; a follower answers [`StoreError::NotLeader`]).
pub trait RegistryStore: Send + Sync + 'static {
    /// Applies a command. `Ok(Err(_))` is a refusal by the directory (nothing
    /// changed); `Err(_)` a failure of the store.
    fn propose(
        &self,
        command: RegistryCommand,
    ) -> impl Future<Output = Result<RegistryResponse, StoreError>> + Send;

    /// Reads the directory.
    fn read<T, F>(&self, f: F) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        F: FnOnce(&Directory) -> T + Send,
        T: Send;
}

/// The directory in memory, behind a mutex: for tests, and for a registry of one
/// process that keeps nothing across restarts.
#[derive(Debug, Default)]
pub struct MemoryStore {
    directory: Mutex<Directory>,
}

impl MemoryStore {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `directory` (e.g. read from a snapshot).
    pub fn with_directory(directory: Directory) -> Self {
        Self {
            directory: Mutex::new(directory),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Directory>, StoreError> {
        self.directory.lock().map_err(|_| StoreError::Internal {
            message: "the directory's lock was poisoned by a panic".to_owned(),
        })
    }

    /// Applies a command at once.
    pub fn apply(&self, command: &RegistryCommand) -> Result<RegistryResponse, StoreError> {
        Ok(self.lock()?.apply(command))
    }

    /// Reads the directory at once.
    pub fn read_now<T>(&self, f: impl FnOnce(&Directory) -> T) -> Result<T, StoreError> {
        let directory = self.lock()?;
        Ok(f(&directory))
    }
}

impl RegistryStore for MemoryStore {
    fn propose(
        &self,
        command: RegistryCommand,
    ) -> impl Future<Output = Result<RegistryResponse, StoreError>> + Send {
        std::future::ready(self.apply(&command))
    }

    fn read<T, F>(&self, f: F) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        F: FnOnce(&Directory) -> T + Send,
        T: Send,
    {
        std::future::ready(self.read_now(f))
    }
}
