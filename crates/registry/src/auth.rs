//! Who may call the registry: every RPC names the [`Scope`] it needs
//! ([`RegistryRpc::scope`]) and asks an [`Authorize`] implementation first.
//!
//! | RPC | scope |
//! |---|---|
//! | RegisterBranch, UpdateBranch, AddBranchReplica, RemoveBranchReplica | `admin` |
//! | Heartbeat | `transfer` (a branch replica's credential; `admin` includes it) |
//! | ListBranches, GetBranch, ResolveAccount, ListCurrencies, ListProducts | `read` |
//! | Identity.Execute, Identity.Query (the gateway's internal API) | `admin` |
//!
//! Heartbeats need `transfer`, not `admin`, so that a replica does not have to hold
//! the bank's admin credential to say it is alive. What such a credential can do to
//! the directory is narrow: report liveness, term and applied index for a replica
//! that an admin registered, from that replica's registered address. It cannot add,
//! move or remove anything.
//!
//! [`Authorize`] and [`AuthGate`] (the policy branch servers use too) live in
//! `corebank-raft-net`.

use corebank_security::Scope;

pub use corebank_raft_net::{AuthGate, Authorize, auth_error, development_identity};

/// The RPCs of the registry, and the scope each needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegistryRpc {
    RegisterBranch,
    UpdateBranch,
    AddBranchReplica,
    RemoveBranchReplica,
    Heartbeat,
    ListBranches,
    GetBranch,
    ResolveAccount,
    ListCurrencies,
    ListProducts,
}

impl RegistryRpc {
    /// Every RPC, in the order of `registry.proto`.
    pub const ALL: [Self; 10] = [
        Self::RegisterBranch,
        Self::UpdateBranch,
        Self::AddBranchReplica,
        Self::RemoveBranchReplica,
        Self::Heartbeat,
        Self::ListBranches,
        Self::GetBranch,
        Self::ResolveAccount,
        Self::ListCurrencies,
        Self::ListProducts,
    ];

    /// The RPC's name in `registry.proto`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RegisterBranch => "RegisterBranch",
            Self::UpdateBranch => "UpdateBranch",
            Self::AddBranchReplica => "AddBranchReplica",
            Self::RemoveBranchReplica => "RemoveBranchReplica",
            Self::Heartbeat => "Heartbeat",
            Self::ListBranches => "ListBranches",
            Self::GetBranch => "GetBranch",
            Self::ResolveAccount => "ResolveAccount",
            Self::ListCurrencies => "ListCurrencies",
            Self::ListProducts => "ListProducts",
        }
    }

    /// The scope the RPC needs.
    pub const fn scope(self) -> Scope {
        match self {
            Self::RegisterBranch
            | Self::UpdateBranch
            | Self::AddBranchReplica
            | Self::RemoveBranchReplica => Scope::Admin,
            Self::Heartbeat => Scope::Transfer,
            Self::ListBranches
            | Self::GetBranch
            | Self::ResolveAccount
            | Self::ListCurrencies
            | Self::ListProducts => Scope::Read,
        }
    }
}
