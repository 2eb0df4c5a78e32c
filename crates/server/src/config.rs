//! How a branch server runs: from flags, a TOML file, or both (flags win).

use std::net::SocketAddr;
use std::path::PathBuf;

use corebank_raft_net::{Transport, TransportError};

/// The server's settings. In a TOML file the keys are the field names.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The four-digit branch code (0 to 9999).
    pub branch: u16,
    pub data_dir: PathBuf,
    /// gRPC address.
    pub listen: SocketAddr,
    /// `/metrics`, `/health`, `/ready` over plain HTTP (keep it on a private network).
    #[serde(default)]
    pub admin: Option<SocketAddr>,
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// CA whose client certificates are accepted (mutual TLS).
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Plain TCP, loopback only: a development mode.
    #[serde(default)]
    pub insecure: bool,
    /// The API key file (`corebank keys create`).
    #[serde(default)]
    pub api_keys: Option<PathBuf>,
    #[serde(default = "default_queue")]
    pub queue_requests_max: usize,
    #[serde(default = "default_snapshot")]
    pub snapshot_every_entries: u64,
    /// This replica's Raft node id within its branch (unique, never reused).
    #[serde(default = "default_node_id")]
    pub node_id: u64,
    /// The address peers and clients dial for this replica (`host:port`); default:
    /// the listen address.
    #[serde(default)]
    pub advertise: Option<String>,
    /// The founding replicas, `ID=HOST:PORT` each, this one included; the same list on
    /// every founding replica. Empty: a branch of one replica.
    #[serde(default)]
    pub members: Vec<String>,
    /// Start empty and wait to be added to an existing branch (`corebank client
    /// add-replica` on its leader).
    #[serde(default)]
    pub join: bool,
    /// Log entries kept behind each snapshot, so a replica that was away briefly
    /// catches up from the log instead of receiving a whole snapshot.
    #[serde(default = "default_kept")]
    pub log_entries_kept_after_snapshot: u64,
    /// Where the other branches are, for transfers to their customers: `BRANCH=HOST:PORT`,
    /// one entry per replica (e.g. `0002=10.0.1.1:8080`).
    #[serde(default)]
    pub routes: Vec<String>,
    /// The registry's replicas (`host:port` each): this replica heartbeats to it, and
    /// branches without a route are looked up there.
    #[serde(default)]
    pub registry: Vec<String>,
    /// The API key this replica presents to its peers when they take API keys (never
    /// in a file: the binary reads it from COREBANK_PEER_API_KEY).
    #[serde(skip)]
    pub peer_api_key: Option<corebank_security::Secret<String>>,
    /// The fraud screen of new customer transfers (docs/risk.md).
    #[serde(default)]
    pub risk: RiskConfig,
}

/// How the branch screens transfers for fraud.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskConfig {
    /// Screen new customer transfers (on by default).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// A rules file (TOML); the compiled-in default rules when absent. Reloaded when
    /// it changes.
    #[serde(default)]
    pub rules: Option<PathBuf>,
    /// A supervised model file (`corebank risk train`), loaded at start.
    #[serde(default)]
    pub model: Option<PathBuf>,
    /// Without a usable model the screen fails, and `failure_policy` decides.
    #[serde(default)]
    pub require_model: bool,
    /// `open` (approve when the screen fails) or `closed` (refuse).
    #[serde(default = "default_policy")]
    pub failure_policy: String,
    /// Hold for review at or above this score (0..=1000).
    #[serde(default = "default_hold")]
    pub hold_threshold: u16,
    /// Decline at or above this score.
    #[serde(default = "default_decline")]
    pub decline_threshold: u16,
    /// Freeze an account after this many high-risk transfers within an hour (0: never).
    #[serde(default = "default_freeze_after")]
    pub freeze_after: u32,
    /// Adapt the hold threshold to hold about this many transfers a day.
    #[serde(default)]
    pub daily_review_budget: Option<u32>,
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            rules: None,
            model: None,
            require_model: false,
            failure_policy: default_policy(),
            hold_threshold: default_hold(),
            decline_threshold: default_decline(),
            freeze_after: default_freeze_after(),
            daily_review_budget: None,
        }
    }
}

impl RiskConfig {
    pub fn policy(&self) -> Result<corebank_node::FailurePolicy, ConfigError> {
        corebank_node::FailurePolicy::from_name(&self.failure_policy).ok_or_else(|| {
            ConfigError::Risk(format!(
                "the failure policy is open or closed, not {:?}",
                self.failure_policy
            ))
        })
    }

    /// The engine's configuration.
    pub fn engine(&self) -> Result<corebank_risk_engine::EngineConfig, ConfigError> {
        if self.hold_threshold > 1_000 || self.decline_threshold > 1_000 {
            return Err(ConfigError::Risk(
                "thresholds are scores from 0 to 1000".into(),
            ));
        }
        if self.hold_threshold > self.decline_threshold {
            return Err(ConfigError::Risk(format!(
                "the hold threshold ({}) is above the decline threshold ({})",
                self.hold_threshold, self.decline_threshold
            )));
        }
        Ok(corebank_risk_engine::EngineConfig {
            rules: self.rules.clone(),
            model: self.model.clone(),
            require_model: self.require_model,
            hold_threshold: self.hold_threshold,
            decline_threshold: self.decline_threshold,
            freeze_after: self.freeze_after,
            daily_review_budget: self.daily_review_budget,
            ..corebank_risk_engine::EngineConfig::default()
        })
    }
}

fn default_true() -> bool {
    true
}

fn default_policy() -> String {
    "open".into()
}

fn default_hold() -> u16 {
    corebank_risk_engine::EngineConfig::default().hold_threshold
}

fn default_decline() -> u16 {
    corebank_risk_engine::EngineConfig::default().decline_threshold
}

fn default_freeze_after() -> u32 {
    corebank_risk_engine::EngineConfig::default().freeze_after
}

fn default_node_id() -> u64 {
    1
}

fn default_kept() -> u64 {
    1_000
}

fn default_queue() -> usize {
    8_192
}

fn default_snapshot() -> u64 {
    1_000
}

/// A configuration that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("the branch code must be 0 to 9999, not {0}")]
    Branch(u16),
    #[error("--insecure serves plain TCP and may only listen on a loopback address, not {0}")]
    InsecureNotLoopback(SocketAddr),
    #[error(
        "TLS needs both a certificate and a key (--tls-cert and --tls-key), or --insecure for plain TCP on loopback"
    )]
    TlsMissing,
    #[error("--insecure and TLS settings exclude each other")]
    InsecureWithTls,
    #[error("the queue must hold at least one request")]
    Queue,
    #[error(
        "invalid replica member {0:?}: write ID=HOST:PORT with ID from 1, e.g. 2=10.0.0.2:8080"
    )]
    Member(String),
    #[error("replica {0} appears twice in the members")]
    DuplicateMember(u64),
    #[error(
        "this replica (node id {0}) is not among the members; list every founding replica, or use --join"
    )]
    NotAMember(u64),
    #[error("node ids start at 1")]
    NodeId,
    #[error(
        "invalid branch route {0:?}: write BRANCH=HOST:PORT for another branch, e.g. 0002=10.0.1.1:8080"
    )]
    Route(String),
    #[error("invalid registry address {0:?}: write HOST:PORT, e.g. 10.0.9.1:9090")]
    Registry(String),
    #[error(
        "replicas authenticate each other with their node certificates under TLS: several replicas need --tls-ca (the CA that signed them)"
    )]
    PeerCaMissing,
    #[error("risk screening: {0}")]
    Risk(String),
}

/// `BRANCH=HOST:PORT` (a four-digit branch code and a replica's address), as in
/// `--route` and `corebank reconcile --branch`; `None` when it is not that.
pub fn parse_route(text: &str) -> Option<(corebank_account_number::BranchCode, String)> {
    let (branch, address) = text.split_once('=')?;
    let (branch, address) = (branch.trim(), address.trim());
    if branch.len() != 4 || !branch.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code = corebank_account_number::BranchCode::new(branch.parse().ok()?).ok()?;
    corebank_raft_net::valid_address(address).then(|| (code, address.to_owned()))
}

impl ServerConfig {
    /// A development configuration: plain TCP on loopback, no credentials.
    pub fn insecure(branch: u16, data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            branch,
            data_dir: data_dir.into(),
            listen,
            admin: None,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            insecure: true,
            api_keys: None,
            queue_requests_max: default_queue(),
            snapshot_every_entries: default_snapshot(),
            node_id: default_node_id(),
            advertise: None,
            members: Vec::new(),
            join: false,
            log_entries_kept_after_snapshot: default_kept(),
            peer_api_key: None,
            routes: Vec::new(),
            registry: Vec::new(),
            risk: RiskConfig::default(),
        }
    }

    /// The branch routes as branch code → replica addresses.
    pub fn route_map(&self) -> Result<crate::cross_branch::BranchRoutes, ConfigError> {
        let mut routes = crate::cross_branch::BranchRoutes::new();
        for text in &self.routes {
            let (code, address) = parse_route(text)
                .filter(|(code, _)| code.get() != self.branch)
                .ok_or_else(|| ConfigError::Route(text.clone()))?;
            routes.entry(code).or_default().push(address);
        }
        Ok(routes)
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
    pub fn member_map(&self) -> Result<std::collections::BTreeMap<u64, String>, ConfigError> {
        corebank_raft_net::member_map(&self.members).map_err(|error| match error {
            corebank_raft_net::MemberError::Invalid(text) => ConfigError::Member(text),
            corebank_raft_net::MemberError::Duplicate(id) => ConfigError::DuplicateMember(id),
        })
    }

    pub fn from_toml_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let fail = |reason: String| ConfigError::File {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        toml::from_str(&text).map_err(|e| fail(e.to_string()))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.branch > 9_999 {
            return Err(ConfigError::Branch(self.branch));
        }
        if self.queue_requests_max == 0 {
            return Err(ConfigError::Queue);
        }
        if self.node_id == 0 {
            return Err(ConfigError::NodeId);
        }
        let members = self.member_map()?;
        self.route_map()?;
        if self.risk.enabled {
            self.risk.policy()?;
            self.risk.engine()?;
        }
        if let Some(bad) = self
            .registry
            .iter()
            .find(|address| !corebank_raft_net::valid_address(address))
        {
            return Err(ConfigError::Registry(bad.clone()));
        }
        if !self.join && !members.is_empty() && !members.contains_key(&self.node_id) {
            return Err(ConfigError::NotAMember(self.node_id));
        }
        let replicated = self.join || members.len() > 1;
        self.transport()
            .check(replicated)
            .map_err(|error| match error {
                TransportError::PeerCaMissing => ConfigError::PeerCaMissing,
                TransportError::InsecureWithTls => ConfigError::InsecureWithTls,
                TransportError::InsecureNotLoopback(address) => {
                    ConfigError::InsecureNotLoopback(address)
                }
                TransportError::TlsMissing => ConfigError::TlsMissing,
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn insecure_mode_is_loopback_only_and_tls_needs_cert_and_key() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let mut config = ServerConfig::insecure(1, "/tmp/x", local);
        assert!(config.validate().is_ok());
        config.listen = "0.0.0.0:8080".parse().unwrap();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::InsecureNotLoopback(_))
        ));
        config.insecure = false;
        assert!(matches!(config.validate(), Err(ConfigError::TlsMissing)));
        config.tls_cert = Some("node.pem".into());
        config.tls_key = Some("node-key.pem".into());
        assert!(config.validate().is_ok());
        config.branch = 10_000;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Branch(10_000))
        ));
    }

    #[test]
    fn replica_members_are_checked() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let mut config = ServerConfig::insecure(1, "/tmp/x", local);
        config.members = vec!["1=127.0.0.1:8080".into(), "2=127.0.0.1:8081".into()];
        assert_eq!(config.member_map().unwrap().len(), 2);
        assert!(config.validate().is_ok());
        config.node_id = 3;
        assert!(matches!(config.validate(), Err(ConfigError::NotAMember(3))));
        config.join = true;
        assert!(config.validate().is_ok());
        for bad in [
            "0=127.0.0.1:1",
            "x=127.0.0.1:1",
            "1=127.0.0.1",
            "1=:80",
            "1",
        ] {
            config.members = vec![bad.into()];
            assert!(
                matches!(config.validate(), Err(ConfigError::Member(_))),
                "{bad}"
            );
        }
        config.members = vec!["1=a:1".into(), "1=b:1".into()];
        assert!(matches!(
            config.validate(),
            Err(ConfigError::DuplicateMember(1))
        ));
        config.members = vec!["1=a:1".into(), "2=b:1".into()];
        config.node_id = 1;
        config.join = false;
        config.insecure = false;
        config.tls_cert = Some("node.pem".into());
        config.tls_key = Some("node-key.pem".into());
        assert!(matches!(config.validate(), Err(ConfigError::PeerCaMissing)));
        config.tls_ca = Some("ca.pem".into());
        assert!(config.validate().is_ok());
    }

    #[test]
    fn routes_and_registry_addresses_are_checked() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let mut config = ServerConfig::insecure(1, "/tmp/x", local);
        config.routes = vec!["0002=10.0.1.1:8080".into(), "0002=10.0.1.2:8080".into()];
        let routes = config.route_map().unwrap();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes.values().next().map(Vec::len), Some(2));
        for bad in [
            "0001=10.0.0.1:8080",
            "2=10.0.1.1:8080",
            "0002=10.0.1.1",
            "0002",
            "x=y:1",
        ] {
            config.routes = vec![bad.into()];
            assert!(
                matches!(config.validate(), Err(ConfigError::Route(_))),
                "{bad}"
            );
        }
        config.routes.clear();
        config.registry = vec!["127.0.0.1:9090".into()];
        assert!(config.validate().is_ok());
        config.registry = vec!["127.0.0.1".into()];
        assert!(matches!(config.validate(), Err(ConfigError::Registry(_))));
    }

    #[test]
    fn the_deployment_example_is_a_valid_configuration() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/node.toml.example");
        let config = ServerConfig::from_toml_file(&path).unwrap();
        config.validate().unwrap();
        assert_eq!(config.member_map().unwrap().len(), 3);
        assert_eq!(config.advertise.as_deref(), Some("10.0.0.1:8080"));
    }

    #[test]
    fn toml_files_refuse_unknown_keys() {
        let ok: Result<ServerConfig, _> = toml::from_str(
            "branch = 1\ndata_dir = \"/d\"\nlisten = \"127.0.0.1:1\"\ninsecure = true\n",
        );
        assert!(ok.is_ok());
        let typo: Result<ServerConfig, _> = toml::from_str(
            "branch = 1\ndata_dir = \"/d\"\nlisten = \"127.0.0.1:1\"\ninsecur = true\n",
        );
        assert!(typo.is_err());
    }
}
