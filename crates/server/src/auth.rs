//! Who is calling, and may they: every RPC starts with `Gate::check(&request, scope)`.
//! The gate is `corebank-raft-net`'s [`AuthGate`] (the registry's too); a branch
//! counts its refusals.

use corebank_raft_net::AuthGate;
use corebank_security::{AuthError, Scope};

use crate::errors;

/// The authentication policy of a server.
pub type Gate = AuthGate;

/// A server's gate: `gate` with its refusals counted.
pub(crate) fn counted(gate: AuthGate) -> Gate {
    gate.with_refusal(counted_refusal)
}

fn counted_refusal(error: &AuthError, _needed: Scope) -> tonic::Status {
    metrics::counter!("corebank_auth_refusals_total", "code" => error.code()).increment(1);
    errors::status(corebank_raft_net::auth_error(error))
}
