//! How a registry replica runs (`corebank registry`): the same settings as a branch
//! replica's where they mean the same thing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use corebank_raft_net::{Transport, TransportError};
use corebank_security::Secret;

use crate::service::ServiceConfig;

/// The default gRPC address of a registry replica.
pub const REGISTRY_LISTEN_DEFAULT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9090);

/// A registry replica's settings.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// Where the Raft log and the snapshot live.
    pub data_dir: PathBuf,
    /// The gRPC address (Registry, Cluster and RaftTransport services).
    pub listen: SocketAddr,
    /// `/metrics`, `/health`, `/ready` over plain HTTP (keep it on a private network).
    pub admin: Option<SocketAddr>,
    /// The replica's TLS certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// The replica's TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// The CA whose client certificates are accepted (mutual TLS), and that signed the
    /// other registry replicas' certificates.
    pub tls_ca: Option<PathBuf>,
    /// Plain TCP, loopback only: a development mode.
    pub insecure: bool,
    /// The API key file (`corebank keys create`).
    pub api_keys: Option<PathBuf>,
    /// This replica's Raft node id in the registry group (from 1, never reused).
    pub node_id: u64,
    /// The address peers and clients dial for this replica; default: `listen`.
    pub advertise: Option<String>,
    /// The founding replicas, `ID=HOST:PORT` each, this one included, the same list on
    /// each. Empty: a registry of one replica.
    pub members: Vec<String>,
    /// Start empty and wait to be added by the leader (Cluster.AddReplica).
    pub join: bool,
    /// Log entries between snapshots.
    pub snapshot_every_entries: u64,
    /// Log entries kept behind each snapshot for replicas catching up.
    pub log_entries_kept_after_snapshot: u64,
    /// The API key (admin scope) this replica presents to peers that take API keys.
    pub peer_api_key: Option<Secret<String>>,
    /// The Registry service's behaviour (bank prefix, heartbeat window).
    pub service: ServiceConfig,
}

/// A configuration that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum RegistryConfigError {
    /// `--insecure` with a non-loopback address.
    #[error("--insecure serves plain TCP and may only listen on a loopback address, not {0}")]
    InsecureNotLoopback(SocketAddr),
    /// Neither TLS nor `--insecure`.
    #[error(
        "TLS needs both a certificate and a key (--tls-cert and --tls-key), or --insecure for plain TCP on loopback"
    )]
    TlsMissing,
    /// `--insecure` together with TLS files.
    #[error("--insecure and TLS settings exclude each other")]
    InsecureWithTls,
    /// A malformed member.
    #[error(
        "invalid registry member {0:?}: write ID=HOST:PORT with ID from 1, e.g. 2=10.0.0.2:9090"
    )]
    Member(String),
    /// A node id twice among the members.
    #[error("registry replica {0} appears twice in the members")]
    DuplicateMember(u64),
    /// This replica is not among the founding members.
    #[error(
        "this registry replica (node id {0}) is not among the members; list every founding replica, or use --join"
    )]
    NotAMember(u64),
    /// Node id 0.
    #[error("node ids start at 1")]
    NodeId,
    /// A malformed advertised address.
    #[error("the advertised address {0:?} is not HOST:PORT")]
    Advertise(String),
    /// Several replicas under TLS without the CA that signed them.
    #[error(
        "registry replicas authenticate each other with their certificates under TLS: several replicas need --tls-ca (the CA that signed them)"
    )]
    PeerCaMissing,
}

impl RegistryConfig {
    /// A development configuration: plain TCP on loopback, no credentials, one
    /// replica.
    pub fn insecure(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen,
            admin: None,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            insecure: true,
            api_keys: None,
            node_id: 1,
            advertise: None,
            members: Vec::new(),
            join: false,
            snapshot_every_entries: 1_000,
            log_entries_kept_after_snapshot: 1_000,
            peer_api_key: None,
            service: ServiceConfig::default(),
        }
    }

    /// The settings of the replica's ports, TLS and keys.
    pub fn transport(&self) -> Transport<'_> {
        Transport {
            listen: self.listen,
            admin: self.admin,
            tls_cert: self.tls_cert.as_deref(),
            tls_key: self.tls_key.as_deref(),
            tls_ca: self.tls_ca.as_deref(),
            insecure: self.insecure,
            api_keys: self.api_keys.as_deref(),
        }
    }

    /// The founding members as node id → address.
    pub fn member_map(&self) -> Result<BTreeMap<u64, String>, RegistryConfigError> {
        corebank_raft_net::member_map(&self.members).map_err(|error| match error {
            corebank_raft_net::MemberError::Invalid(text) => RegistryConfigError::Member(text),
            corebank_raft_net::MemberError::Duplicate(id) => {
                RegistryConfigError::DuplicateMember(id)
            }
        })
    }

    /// Checks the settings together.
    pub fn validate(&self) -> Result<(), RegistryConfigError> {
        if self.node_id == 0 {
            return Err(RegistryConfigError::NodeId);
        }
        let members = self.member_map()?;
        if !self.join && !members.is_empty() && !members.contains_key(&self.node_id) {
            return Err(RegistryConfigError::NotAMember(self.node_id));
        }
        if let Some(advertise) = &self.advertise
            && !corebank_raft_net::valid_address(advertise)
        {
            return Err(RegistryConfigError::Advertise(advertise.clone()));
        }
        let replicated = self.join || members.len() > 1;
        self.transport()
            .check(replicated)
            .map_err(|error| match error {
                TransportError::PeerCaMissing => RegistryConfigError::PeerCaMissing,
                TransportError::InsecureWithTls => RegistryConfigError::InsecureWithTls,
                TransportError::InsecureNotLoopback(address) => {
                    RegistryConfigError::InsecureNotLoopback(address)
                }
                TransportError::TlsMissing => RegistryConfigError::TlsMissing,
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn insecure_is_loopback_only_and_tls_needs_cert_and_key() {
        let mut config = RegistryConfig::insecure("/tmp/r", REGISTRY_LISTEN_DEFAULT);
        assert!(config.validate().is_ok());
        config.listen = "0.0.0.0:9090".parse().unwrap();
        assert!(matches!(
            config.validate(),
            Err(RegistryConfigError::InsecureNotLoopback(_))
        ));
        config.insecure = false;
        assert!(matches!(
            config.validate(),
            Err(RegistryConfigError::TlsMissing)
        ));
        config.tls_cert = Some("r.pem".into());
        config.tls_key = Some("r-key.pem".into());
        assert!(config.validate().is_ok());
        config.insecure = true;
        assert!(matches!(
            config.validate(),
            Err(RegistryConfigError::InsecureWithTls)
        ));
    }

    #[test]
    fn members_are_checked() {
        let mut config = RegistryConfig::insecure("/tmp/r", REGISTRY_LISTEN_DEFAULT);
        config.members = vec!["1=127.0.0.1:9090".into(), "2=127.0.0.1:9091".into()];
        assert_eq!(config.member_map().unwrap().len(), 2);
        assert!(config.validate().is_ok());
        config.node_id = 3;
        assert!(matches!(
            config.validate(),
            Err(RegistryConfigError::NotAMember(3))
        ));
        config.join = true;
        assert!(config.validate().is_ok());
        for bad in ["0=127.0.0.1:1", "x=a:1", "1=127.0.0.1", "1=:80", "1"] {
            config.members = vec![bad.into()];
            assert!(
                matches!(config.validate(), Err(RegistryConfigError::Member(_))),
                "{bad}"
            );
        }
        config.members = vec!["1=a:1".into(), "1=b:1".into()];
        assert!(matches!(
            config.validate(),
            Err(RegistryConfigError::DuplicateMember(1))
        ));
        config.members = vec!["1=a:1".into(), "2=b:1".into()];
        config.node_id = 1;
        config.join = false;
        config.insecure = false;
        config.tls_cert = Some("r.pem".into());
        config.tls_key = Some("r-key.pem".into());
        assert!(matches!(
            config.validate(),
            Err(RegistryConfigError::PeerCaMissing)
        ));
        config.tls_ca = Some("ca.pem".into());
        assert!(config.validate().is_ok());
        config.node_id = 0;
        assert!(matches!(
            config.validate(),
            Err(RegistryConfigError::NodeId)
        ));
    }
}
