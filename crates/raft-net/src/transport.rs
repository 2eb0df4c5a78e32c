//! The settings a replica's ports run with, the same for a branch replica and a
//! registry replica: where it listens, TLS or `--insecure`, API keys. [`Transport`]
//! checks them, and gives the gate, the TLS configuration, the peers' settings and
//! the bound ports; [`Serving`] is what runs on them until it is stopped.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use corebank_security::{ApiKeyStore, Authenticator, KeyStoreError, Secret, TlsError};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{AuthGate, Isolation, PeerSettings};

/// A replica's transport settings (borrowed from its configuration).
#[derive(Clone, Copy, Debug)]
pub struct Transport<'a> {
    /// The gRPC address.
    pub listen: SocketAddr,
    /// The admin address (`/health`, `/ready`, `/metrics`), if any.
    pub admin: Option<SocketAddr>,
    pub tls_cert: Option<&'a Path>,
    pub tls_key: Option<&'a Path>,
    /// The CA of client certificates and of the peers.
    pub tls_ca: Option<&'a Path>,
    /// Plain TCP on loopback only.
    pub insecure: bool,
    /// The API key file.
    pub api_keys: Option<&'a Path>,
}

/// Why transport settings cannot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// Replicas that talk TLS to each other need the CA.
    PeerCaMissing,
    /// `--insecure` together with TLS files.
    InsecureWithTls,
    /// `--insecure` on an address that is not loopback.
    InsecureNotLoopback(SocketAddr),
    /// Neither TLS (certificate and key) nor `--insecure`.
    TlsMissing,
}

/// Why the server's TLS configuration could not be made.
#[derive(Debug)]
pub enum ServerTlsError {
    /// Neither TLS (certificate and key) nor `--insecure`.
    Missing,
    /// The TLS files.
    Tls(TlsError),
}

/// A port that could not be bound.
#[derive(Debug)]
pub struct BindError {
    pub address: SocketAddr,
    pub source: std::io::Error,
}

/// A replica's bound ports.
#[derive(Debug)]
pub struct Listeners {
    pub grpc: TcpListener,
    pub grpc_addr: SocketAddr,
    pub admin: Option<TcpListener>,
    pub admin_addr: Option<SocketAddr>,
}

impl Transport<'_> {
    /// Checks the settings together; `replicated`: the replica has (or will have) peers.
    pub fn check(&self, replicated: bool) -> Result<(), TransportError> {
        if replicated && !self.insecure && self.tls_ca.is_none() {
            return Err(TransportError::PeerCaMissing);
        }
        let tls = self.tls_cert.is_some() || self.tls_key.is_some() || self.tls_ca.is_some();
        if self.insecure {
            if tls {
                return Err(TransportError::InsecureWithTls);
            }
            for address in [Some(self.listen), self.admin].into_iter().flatten() {
                if !address.ip().is_loopback() {
                    return Err(TransportError::InsecureNotLoopback(address));
                }
            }
        } else if self.tls_cert.is_none() || self.tls_key.is_none() {
            return Err(TransportError::TlsMissing);
        }
        Ok(())
    }

    /// The gate: the API key file's keys and client certificates, or, insecure
    /// without a key file, everyone as the development identity.
    pub fn gate(&self) -> Result<AuthGate, KeyStoreError> {
        let api_keys = self.api_keys.map(ApiKeyStore::load).transpose()?;
        Ok(if self.insecure && api_keys.is_none() {
            AuthGate::insecure_development()
        } else {
            AuthGate::new(Authenticator::new(api_keys))
        })
    }

    /// The server's TLS configuration, `None` when insecure.
    pub fn server_tls(
        &self,
    ) -> Result<Option<corebank_security::rustls::ServerConfig>, ServerTlsError> {
        if self.insecure {
            return Ok(None);
        }
        match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => {
                corebank_security::tls::server_config_from_files(cert, key, self.tls_ca)
                    .map(Some)
                    .map_err(ServerTlsError::Tls)
            }
            _ => Err(ServerTlsError::Missing),
        }
    }

    /// How the replica reaches its peers: its own certificate as client certificate
    /// under TLS, and `api_key` for peers that take API keys.
    pub fn peers(&self, api_key: Option<Secret<String>>, isolation: Isolation) -> PeerSettings {
        PeerSettings {
            tls: match (self.tls_ca, self.tls_cert, self.tls_key) {
                (Some(ca), Some(cert), Some(key)) if !self.insecure => {
                    Some(corebank_client::TlsSettings::new(ca).with_client_cert(cert, key))
                }
                _ => None,
            },
            api_key,
            isolation,
        }
    }

    /// Binds the gRPC port and the admin port.
    pub async fn bind(&self) -> Result<Listeners, BindError> {
        let grpc = TcpListener::bind(self.listen)
            .await
            .map_err(|source| BindError {
                address: self.listen,
                source,
            })?;
        let grpc_addr = grpc.local_addr().map_err(|source| BindError {
            address: self.listen,
            source,
        })?;
        let admin = match self.admin {
            Some(address) => Some(
                TcpListener::bind(address)
                    .await
                    .map_err(|source| BindError { address, source })?,
            ),
            None => None,
        };
        let admin_addr = admin
            .as_ref()
            .and_then(|listener| listener.local_addr().ok());
        Ok(Listeners {
            grpc,
            grpc_addr,
            admin,
            admin_addr,
        })
    }
}

/// What a replica runs on its ports: its gate, its isolation switch, the bound
/// addresses, and the tasks that stop when told to.
#[derive(Debug)]
pub struct Serving {
    pub gate: AuthGate,
    pub isolation: Isolation,
    pub grpc_addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub stop: watch::Sender<bool>,
    pub tasks: Vec<JoinHandle<()>>,
}

impl Serving {
    /// Re-reads the API key file (revocations and new keys take effect); returns the
    /// number of keys, or `None` without a key file.
    pub fn reload_api_keys(&self) -> Option<Result<usize, KeyStoreError>> {
        self.gate
            .authenticator()
            .api_keys()
            .map(ApiKeyStore::reload)
    }

    /// Fault injection: cuts the replica off from its peers (or heals it).
    pub fn isolate(&self, isolated: bool) {
        self.isolation.set(isolated);
    }

    /// Stops taking calls and lets calls in progress finish (each task gets 10 s).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}
