//! What a gateway runs with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use corebank_client::ClientConfig;

/// The gateway's default port.
pub const GATEWAY_LISTEN_DEFAULT: &str = "127.0.0.1:8443";

/// Request rates allowed before `429`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per second per client (a user, an API key, or an address before
    /// sign-in), with a burst of twice as many.
    pub per_client_per_second: u32,
    /// Money movements per second debiting one account, burst twice as many.
    pub per_account_per_second: u32,
    /// Sign-in attempts per minute per address (login and second factor).
    pub logins_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_client_per_second: 50,
            per_account_per_second: 10,
            logins_per_minute: 30,
        }
    }
}

/// Token lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetimes {
    /// The JWT access token.
    pub access: Duration,
    /// A session (its refresh tokens), from sign-in.
    pub refresh: Duration,
    /// The token between the password and the second factor.
    pub mfa: Duration,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        Self {
            access: Duration::from_secs(300),
            refresh: Duration::from_secs(12 * 3600),
            mfa: Duration::from_secs(300),
        }
    }
}

/// The gateway's configuration.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where the REST API and the console listen.
    pub listen: SocketAddr,
    /// TLS certificate chain and key (PEM); both or neither. Without them the
    /// gateway speaks plain HTTP, which it allows on loopback only.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The registry's replicas (`host:port`), where users and sessions live and
    /// where the branches are found.
    pub registry: Vec<String>,
    /// How to reach the registry and the branches (TLS, the gateway's API key with
    /// the `admin` scope); the endpoint is filled per service.
    pub backend: ClientConfig,
    /// The gateway's own files: the audit trail and the JWT signing key.
    pub data_dir: PathBuf,
    /// The JWT signing key file (32+ random bytes); default `data_dir/jwt.key`,
    /// made on first start. Gateways that share it accept each other's tokens.
    pub jwt_key_file: Option<PathBuf>,
    /// Origins allowed to call the API from a browser page of another origin.
    pub cors_origins: Vec<String>,
    pub limits: RateLimits,
    pub tokens: TokenLifetimes,
    /// The largest request body.
    pub body_bytes_max: usize,
    /// The longest a (non-stream) request may take.
    pub request_timeout: Duration,
    /// The name shown in authenticator apps for the second factor.
    pub totp_issuer: String,
    /// The risk agent (`http://host:port`) whose mule-ring alerts join the analysts'
    /// feed; without it the feed has the branches' verdicts only.
    pub agent: Option<String>,
}

impl GatewayConfig {
    /// Plain HTTP on `listen` (loopback), the registry at `registry`, data in
    /// `data_dir`, default limits.
    pub fn new(listen: SocketAddr, registry: Vec<String>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen,
            tls_cert: None,
            tls_key: None,
            registry,
            backend: ClientConfig::new(String::new()),
            data_dir: data_dir.into(),
            jwt_key_file: None,
            cors_origins: Vec::new(),
            limits: RateLimits::default(),
            tokens: TokenLifetimes::default(),
            body_bytes_max: 64 * 1024,
            request_timeout: Duration::from_secs(10),
            totp_issuer: "corebank".to_owned(),
            agent: None,
        }
    }

    /// Whether the gateway serves TLS.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some()
    }

    /// The checks that need no I/O.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::TlsHalf);
        }
        if !self.tls() && !self.listen.ip().is_loopback() {
            return Err(ConfigError::PlainNotLoopback(self.listen));
        }
        if self.registry.is_empty() {
            return Err(ConfigError::NoRegistry);
        }
        if self.limits.per_client_per_second == 0
            || self.limits.per_account_per_second == 0
            || self.limits.logins_per_minute == 0
        {
            return Err(ConfigError::ZeroLimit);
        }
        for origin in &self.cors_origins {
            if !(origin.starts_with("https://") || origin.starts_with("http://"))
                || origin.ends_with('/')
                || origin.contains('*')
            {
                return Err(ConfigError::CorsOrigin(origin.clone()));
            }
        }
        if self.tokens.access.is_zero() || self.tokens.refresh < self.tokens.access {
            return Err(ConfigError::TokenLifetimes);
        }
        if let Some(agent) = &self.agent
            && crate::agent_feed::agent_uri(agent).is_err()
        {
            return Err(ConfigError::AgentAddress(agent.clone()));
        }
        Ok(())
    }
}

/// A configuration the gateway refuses.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("give both --tls-cert and --tls-key, or neither")]
    TlsHalf,
    #[error("plain HTTP is allowed on loopback only; {0} is not: give --tls-cert and --tls-key")]
    PlainNotLoopback(SocketAddr),
    #[error("the gateway needs at least one registry address (--registry)")]
    NoRegistry,
    #[error("rate limits must be at least 1")]
    ZeroLimit,
    #[error(
        "CORS origin {0:?} must be a scheme and host (and port), e.g. https://app.example.com, without a path or wildcard"
    )]
    CorsOrigin(String),
    #[error(
        "the access token lifetime must be positive and at most the session (refresh) lifetime"
    )]
    TokenLifetimes,
    #[error("the risk agent's address {0:?} must be http://host:port")]
    AgentAddress(String),
}

impl ConfigError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::TlsHalf => "tls_half",
            Self::PlainNotLoopback(_) => "plain_not_loopback",
            Self::NoRegistry => "no_registry",
            Self::ZeroLimit => "zero_limit",
            Self::CorsOrigin(_) => "cors_origin",
            Self::TokenLifetimes => "token_lifetimes",
            Self::AgentAddress(_) => "agent_address",
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback_and_origins_are_exact() {
        let mut config = GatewayConfig::new(
            "127.0.0.1:8443".parse().unwrap(),
            vec!["127.0.0.1:9090".into()],
            "/tmp/gw",
        );
        assert_eq!(config.validate(), Ok(()));
        config.listen = "0.0.0.0:8443".parse().unwrap();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::PlainNotLoopback(_))
        ));
        config.tls_cert = Some("c.pem".into());
        assert_eq!(config.validate(), Err(ConfigError::TlsHalf));
        config.tls_key = Some("k.pem".into());
        assert_eq!(config.validate(), Ok(()));
        config.cors_origins = vec!["*".into()];
        assert!(matches!(config.validate(), Err(ConfigError::CorsOrigin(_))));
        config.cors_origins = vec!["https://app.example.com".into()];
        assert_eq!(config.validate(), Ok(()));
        config.agent = Some("127.0.0.1:7070".into());
        assert!(matches!(
            config.validate(),
            Err(ConfigError::AgentAddress(_))
        ));
        config.agent = Some("http://127.0.0.1:7070".into());
        assert_eq!(config.validate(), Ok(()));
    }
}
