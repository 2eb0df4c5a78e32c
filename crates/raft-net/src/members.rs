//! The founding members of a Raft group as given on the command line or in a
//! configuration file: `ID=HOST:PORT` each.

use std::collections::BTreeMap;

/// Why a member list is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    /// Not `ID=HOST:PORT` with an id from 1 and a dialable address; the text as given.
    #[error("member {0:?} is not ID=HOST:PORT")]
    Invalid(String),
    /// The same node id twice.
    #[error("node id {0} is listed twice")]
    Duplicate(u64),
}

/// The members as node id → address, from `ID=HOST:PORT` texts.
pub fn member_map(members: &[String]) -> Result<BTreeMap<u64, String>, MemberError> {
    let mut map = BTreeMap::new();
    for text in members {
        let invalid = || MemberError::Invalid(text.clone());
        let (id, address) = text.split_once('=').ok_or_else(invalid)?;
        let id: u64 = id.trim().parse().map_err(|_| invalid())?;
        let address = address.trim();
        if id == 0 || !crate::valid_address(address) {
            return Err(invalid());
        }
        if map.insert(id, address.to_owned()).is_some() {
            return Err(MemberError::Duplicate(id));
        }
    }
    Ok(map)
}
