//! How to reach a branch node, and how patient to be with it.

use std::path::PathBuf;
use std::time::Duration;

use corebank_proto::v1;
use corebank_security::Secret;

/// Everything [`Client::connect`](crate::Client::connect) needs.
///
/// ```
/// use std::time::Duration;
/// use corebank_client::{ClientConfig, TlsSettings};
///
/// let config = ClientConfig::new("https://branch-0001.bank.example:8080")
///     .with_tls(TlsSettings::new("ca.pem").with_client_cert("client.pem", "client-key.pem"))
///     .with_request_timeout(Duration::from_secs(5));
/// assert_eq!(config.retries.max_attempts, 5);
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The node's address: `https://host:port` (needs [`tls`](Self::tls)) or
    /// `http://host:port` (plain text, only for a node started with `--insecure`,
    /// which listens on the loopback interface). Without a scheme, `https://` is
    /// assumed when `tls` is set and `http://` otherwise. The replicas of a
    /// branch may be listed separated by commas: the client uses the first that
    /// answers, moves to the leader when a replica answers `not_leader`, and to
    /// another listed replica when the connection breaks.
    pub endpoint: String,
    /// TLS 1.3 settings; required for an `https://` endpoint.
    pub tls: Option<TlsSettings>,
    /// An API key (`cbk_<id>_<secret>`), sent on every call as
    /// `authorization: Bearer <key>`. Never logged. Leave it out when the client
    /// authenticates with a client certificate (the certificate then decides).
    pub api_key: Option<Secret<String>>,
    /// The deadline of one attempt of a call (sent to the server as `grpc-timeout`,
    /// and enforced by the client). Default 10 s.
    pub request_timeout: Duration,
    /// The most time one call may take, all its retries and pauses included.
    /// Default 30 s.
    pub total_timeout: Duration,
    /// The most time connecting (TCP and the TLS handshake) may take. Default 5 s.
    pub connect_timeout: Duration,
    /// HTTP/2 keep-alive pings on an idle connection, to notice a dead peer;
    /// `None` (the default) sends none.
    pub keep_alive_interval: Option<Duration>,
    /// The consistency of every read (Ledger lookups and queries, balances,
    /// statements). Default linearizable: served by the leader, sees every committed
    /// transfer. Never decide that money is available from a stale read.
    pub read_consistency: v1::ReadConsistency,
    /// Which failed calls are retried, and how often.
    pub retries: RetryPolicy,
    /// How [`Client::create_transfer`](crate::Client::create_transfer) and
    /// [`Client::create_account`](crate::Client::create_account) merge concurrent
    /// calls into batches.
    pub batch: BatchPolicy,
}

impl ClientConfig {
    /// A configuration with the defaults and no TLS, no API key.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            tls: None,
            api_key: None,
            request_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            keep_alive_interval: None,
            read_consistency: v1::ReadConsistency::Linearizable,
            retries: RetryPolicy::default(),
            batch: BatchPolicy::default(),
        }
    }

    /// Sets the TLS settings.
    #[must_use]
    pub fn with_tls(mut self, tls: TlsSettings) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the API key sent on every call.
    #[must_use]
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(Secret::new(key.into()));
        self
    }

    /// Sets the deadline of one attempt.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the most time one call may take, retries included.
    #[must_use]
    pub fn with_total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = timeout;
        self
    }

    /// Sets the connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn with_retries(mut self, retries: RetryPolicy) -> Self {
        self.retries = retries;
        self
    }

    /// Sets the batching policy.
    #[must_use]
    pub fn with_batch(mut self, batch: BatchPolicy) -> Self {
        self.batch = batch;
        self
    }

    /// Sets the read consistency.
    #[must_use]
    pub fn with_read_consistency(mut self, consistency: v1::ReadConsistency) -> Self {
        self.read_consistency = consistency;
        self
    }
}

/// TLS 1.3 settings: the CA that signed the node's certificate, and optionally
/// a client certificate (mutual TLS; `corebank certs` makes both).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file of the CA (or CAs) to trust for the node's certificate.
    pub ca_file: PathBuf,
    /// PEM files of the client's certificate (chain) and private key.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// The name to verify the node's certificate against; default: the host of
    /// the endpoint (a DNS name or an IP address).
    pub server_name: Option<String>,
}

impl TlsSettings {
    /// Trust `ca_file`; no client certificate.
    pub fn new(ca_file: impl Into<PathBuf>) -> Self {
        Self {
            ca_file: ca_file.into(),
            client_cert: None,
            server_name: None,
        }
    }

    /// Present this client certificate and key.
    #[must_use]
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert.into(), key.into()));
        self
    }

    /// Verify the node's certificate against this name instead of the endpoint's host.
    #[must_use]
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }
}

/// Which failed attempts are tried again, and after what pause.
///
/// A call is retried only when that is safe (see the crate documentation): when
/// the server said that nothing was done (`busy_retry`, `unavailable`, a
/// `not_leader` that names no leader), or, for calls whose repetition cannot
/// apply anything twice, when the outcome is unknown (a transport error, a
/// timeout). The pause before attempt `n + 1` is `initial_backoff * 2^(n-1)`,
/// capped at `max_backoff`, and with `jitter` a random value between half of it
/// and all of it. Retries stop at `max_attempts` attempts or when the call's
/// `total_timeout` would be passed; answers that no leader is known (an election
/// under way) count against the time only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The most attempts of one call, the first included (1 = never retry).
    /// Default 5.
    pub max_attempts: u32,
    /// The pause after the first failed attempt. Default 20 ms.
    pub initial_backoff: Duration,
    /// The longest pause. Default 1 s.
    pub max_backoff: Duration,
    /// Randomise each pause between half and all of it, so that many clients
    /// turned away together do not come back together. Default on.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_secs(1),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// Never retry: every failure is returned at once.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }
}

/// How concurrent single-event calls are merged into batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPolicy {
    /// The most events in one batch; at most 8,190 (the ledger's limit), which is
    /// the default.
    pub max_events: usize,
    /// How long to keep a batch open for more events once it has a first one.
    /// Default 0: a batch leaves as soon as a request slot is free, and whatever
    /// arrived while the previous batch was in flight goes together in the next.
    pub max_delay: Duration,
    /// How many batch requests may be in flight at once (of each kind). Default 1.
    pub max_in_flight: usize,
    /// How many events may wait for a batch (of each kind); past that a call fails
    /// at once with [`ClientError::Busy`](crate::ClientError::Busy). Default 32,768.
    pub queue_capacity: usize,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        Self {
            max_events: corebank_proto::BATCH_EVENTS_MAX,
            max_delay: Duration::ZERO,
            max_in_flight: 1,
            queue_capacity: 32_768,
        }
    }
}
