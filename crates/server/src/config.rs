//! How a branch server runs: from flags, a TOML file, or both (flags win).

use std::net::SocketAddr;
use std::path::PathBuf;

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
        }
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
        let tls = self.tls_cert.is_some() || self.tls_key.is_some() || self.tls_ca.is_some();
        if self.insecure {
            if tls {
                return Err(ConfigError::InsecureWithTls);
            }
            for address in [Some(self.listen), self.admin].into_iter().flatten() {
                if !address.ip().is_loopback() {
                    return Err(ConfigError::InsecureNotLoopback(address));
                }
            }
        } else if self.tls_cert.is_none() || self.tls_key.is_none() {
            return Err(ConfigError::TlsMissing);
        }
        Ok(())
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
