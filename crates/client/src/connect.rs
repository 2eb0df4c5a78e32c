//! The connection: endpoint, TLS 1.3 connector, and the API key on every call.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use corebank_security::rustls::{self, pki_types::ServerName};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tonic::codegen::Service;
use tonic::codegen::http::Uri;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};

use crate::config::ClientConfig;
use crate::error::ClientError;

/// The endpoint as configured (the first of a list), with its scheme made explicit.
#[cfg(test)]
pub(crate) fn endpoint_uri(config: &ClientConfig) -> Result<String, ClientError> {
    let list = endpoint_list(config)?;
    list.into_iter().next().ok_or_else(|| ClientError::Config {
        field: "endpoint",
        message: "no endpoint given".into(),
    })
}

/// Every configured endpoint (the `endpoint` setting may list the replicas of a
/// branch separated by commas), with schemes made explicit.
pub(crate) fn endpoint_list(config: &ClientConfig) -> Result<Vec<String>, ClientError> {
    let list: Vec<String> = config
        .endpoint
        .split(',')
        .map(str::trim)
        .filter(|raw| !raw.is_empty())
        .map(|raw| one_endpoint_uri(raw, config))
        .collect::<Result<_, _>>()?;
    if list.is_empty() {
        return Err(ClientError::Config {
            field: "endpoint",
            message: "no endpoint given".into(),
        });
    }
    Ok(list)
}

fn one_endpoint_uri(raw: &str, config: &ClientConfig) -> Result<String, ClientError> {
    let uri = if raw.contains("://") {
        raw.to_owned()
    } else if config.tls.is_some() {
        format!("https://{raw}")
    } else {
        format!("http://{raw}")
    };
    let parsed: Uri = uri.parse().map_err(|error| ClientError::Config {
        field: "endpoint",
        message: format!("{raw:?} is not an address like https://host:8080 ({error})"),
    })?;
    match (parsed.scheme_str(), config.tls.is_some()) {
        (Some("https"), true) | (Some("http"), false) => {}
        (Some("https"), false) => {
            return Err(ClientError::Config {
                field: "tls",
                message: format!(
                    "{uri} is an https endpoint: give the TLS settings (at least the CA to trust)"
                ),
            });
        }
        (Some("http"), true) => {
            return Err(ClientError::Config {
                field: "endpoint",
                message: format!(
                    "{uri} is a plain-text endpoint but TLS settings are given: use https://"
                ),
            });
        }
        _ => {
            return Err(ClientError::Config {
                field: "endpoint",
                message: format!("{uri}: the scheme must be https:// or http://"),
            });
        }
    }
    if parsed.host().is_none_or(str::is_empty) {
        return Err(ClientError::Config {
            field: "endpoint",
            message: format!("{uri} names no host"),
        });
    }
    Ok(uri)
}

/// The HTTP/2 endpoint settings for `uri`.
fn endpoint_for(uri: &str, config: &ClientConfig) -> Result<Endpoint, ClientError> {
    let mut endpoint = Endpoint::from_shared(uri.to_owned())
        .map_err(|error| ClientError::Config {
            field: "endpoint",
            message: format!("{uri}: {error}"),
        })?
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true)
        // Windows that hold a whole batch (HTTP/2's 64 KiB default makes a 1 MiB request
        // wait on dozens of window updates: measured 230k vs 317k transfers/s).
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(32 << 20));
    if let Some(interval) = config.keep_alive_interval {
        endpoint = endpoint
            .http2_keep_alive_interval(interval)
            .keep_alive_while_idle(true);
    }
    Ok(endpoint)
}

/// Connects to `uri` (one of [`endpoint_list`]): TCP (and TLS 1.3 for `https`),
/// HTTP/2, within the connect timeout.
pub(crate) async fn connect_to(uri: &str, config: &ClientConfig) -> Result<Channel, ClientError> {
    let uri = uri.to_owned();
    let endpoint = endpoint_for(&uri, config)?;
    let result = match &config.tls {
        None => endpoint.connect().await,
        Some(tls) => {
            let client_config = corebank_security::tls::client_config_from_files(
                &tls.ca_file,
                tls.client_cert
                    .as_ref()
                    .map(|(cert, key)| (cert.as_path(), key.as_path())),
            )
            .map_err(|error| ClientError::Tls {
                reason: error.code(),
                message: error.to_string(),
            })?;
            let host = match &tls.server_name {
                Some(name) => name.clone(),
                None => host_of(endpoint.uri()),
            };
            let server_name = ServerName::try_from(host.clone()).map_err(|_| ClientError::Tls {
                reason: "invalid_server_name",
                message: format!(
                    "{host:?} is neither a DNS name nor an IP address to verify the \
                         node's certificate against"
                ),
            })?;
            let connector = TlsConnector {
                config: Arc::new(client_config),
                server_name,
            };
            // Our connector does TLS itself; tonic is given the same address as plain
            // `http`, or (when built with its own TLS feature, as in a workspace that
            // also builds the server) it refuses an `https` URI on a custom connector.
            let plain = endpoint_for(&plain_twin(endpoint.uri()), config)?;
            plain.connect_with_connector(connector).await
        }
    };
    result.map_err(|error| connect_error(&uri, &error))
}

/// `https://host[:port]/path` as `http://host:port/path` (443 when no port was given).
fn plain_twin(uri: &Uri) -> String {
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(443);
    let path = uri.path_and_query().map_or("", |p| p.as_str());
    format!("http://{host}:{port}{path}")
}

/// The host of a URI, without the brackets of an IPv6 address.
fn host_of(uri: &Uri) -> String {
    let host = uri.host().unwrap_or_default();
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .to_owned()
}

/// A failed connection: a TLS handshake failure becomes [`ClientError::Tls`],
/// anything else [`ClientError::Transport`], with the deepest cause as detail.
fn connect_error(uri: &str, error: &(dyn StdError + 'static)) -> ClientError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    let mut deepest = error.to_string();
    while let Some(current) = source {
        if let Some(ConnectorError::Tls(io)) = current.downcast_ref::<ConnectorError>() {
            return ClientError::Tls {
                reason: "handshake_failed",
                message: format!("the TLS handshake with {uri} failed: {io}"),
            };
        }
        deepest = current.to_string();
        source = current.source();
    }
    ClientError::Transport {
        endpoint: uri.to_owned(),
        detail: deepest,
    }
}

/// Why the custom connector failed.
#[derive(Debug)]
enum ConnectorError {
    /// The URI names no host or port.
    Address(String),
    /// The TCP connection failed.
    Tcp(std::io::Error),
    /// The TLS handshake failed (rustls' error inside).
    Tls(std::io::Error),
}

impl fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(uri) => write!(f, "{uri} names no host"),
            Self::Tcp(error) => write!(f, "TCP connection failed: {error}"),
            Self::Tls(error) => write!(f, "TLS handshake failed: {error}"),
        }
    }
}

impl StdError for ConnectorError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Address(_) => None,
            Self::Tcp(error) | Self::Tls(error) => Some(error),
        }
    }
}

/// TCP, then a TLS 1.3 handshake with rustls (ALPN `h2`), for tonic.
#[derive(Clone)]
struct TlsConnector {
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
}

impl Service<Uri> for TlsConnector {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = ConnectorError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let server_name = self.server_name.clone();
        Box::pin(async move {
            let host = host_of(&uri);
            if host.is_empty() {
                return Err(ConnectorError::Address(uri.to_string()));
            }
            let port = uri.port_u16().unwrap_or(443);
            let tcp = TcpStream::connect((host.as_str(), port))
                .await
                .map_err(ConnectorError::Tcp)?;
            tcp.set_nodelay(true).map_err(ConnectorError::Tcp)?;
            let tls = connector
                .connect(server_name, tcp)
                .await
                .map_err(ConnectorError::Tls)?;
            Ok(TokioIo::new(tls))
        })
    }
}

/// Puts `authorization: Bearer <key>` on every call, marked sensitive so that
/// no HTTP/2 debug output shows it.
#[derive(Clone, Default)]
pub struct Auth {
    header: Option<AsciiMetadataValue>,
}

impl Auth {
    pub(crate) fn new(config: &ClientConfig) -> Result<Self, ClientError> {
        let Some(key) = &config.api_key else {
            return Ok(Self::default());
        };
        let mut value =
            MetadataValue::try_from(format!("Bearer {}", key.expose())).map_err(|_| {
                ClientError::Config {
                    field: "api_key",
                    // Never the key itself.
                    message: "the API key holds characters that cannot be sent in a header".into(),
                }
            })?;
        value.set_sensitive(true);
        Ok(Self {
            header: Some(value),
        })
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field(
                "api_key",
                &self
                    .header
                    .as_ref()
                    .map(|_| corebank_security::secret::REDACTED),
            )
            .finish()
    }
}

impl Interceptor for Auth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(header) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsSettings;

    #[test]
    fn endpoints_and_schemes() {
        let plain = ClientConfig::new("127.0.0.1:8080");
        assert_eq!(
            endpoint_uri(&plain).ok().as_deref(),
            Some("http://127.0.0.1:8080")
        );
        let tls = ClientConfig::new("localhost:8080").with_tls(TlsSettings::new("ca.pem"));
        assert_eq!(
            endpoint_uri(&tls).ok().as_deref(),
            Some("https://localhost:8080")
        );
        let https_without_tls = ClientConfig::new("https://localhost:8080");
        assert!(matches!(
            endpoint_uri(&https_without_tls),
            Err(ClientError::Config { field: "tls", .. })
        ));
        let http_with_tls =
            ClientConfig::new("http://localhost:8080").with_tls(TlsSettings::new("ca.pem"));
        assert!(matches!(
            endpoint_uri(&http_with_tls),
            Err(ClientError::Config {
                field: "endpoint",
                ..
            })
        ));
        assert!(endpoint_uri(&ClientConfig::new("ftp://x:1")).is_err());
        assert!(endpoint_uri(&ClientConfig::new("http://")).is_err());
        assert_eq!(
            endpoint_list(&ClientConfig::new("127.0.0.1:8080, 127.0.0.1:8081,")).ok(),
            Some(vec![
                "http://127.0.0.1:8080".to_owned(),
                "http://127.0.0.1:8081".to_owned()
            ])
        );
        assert!(endpoint_list(&ClientConfig::new(" , ")).is_err());
        assert_eq!(host_of(&Uri::from_static("https://[::1]:8080")), "::1");
    }

    #[test]
    fn the_api_key_is_never_printed() {
        let config = ClientConfig::new("x").with_api_key("cbk_0123456789ab_hunter2");
        let auth = Auth::new(&config).ok();
        let printed = format!("{auth:?} {config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        let bad = ClientConfig::new("x").with_api_key("line\nbreak-hunter2");
        let error = Auth::new(&bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("API key") && !error.contains("hunter2"),
            "{error}"
        );
    }
}
