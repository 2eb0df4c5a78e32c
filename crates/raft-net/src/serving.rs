//! Serving a replica's gRPC port: a tonic router over plain TCP, or over TLS through
//! a rustls acceptor whose handshakes run off the accept loop (bounded in number and
//! time), until a stop signal. Branch servers and registry replicas serve this way.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};

/// How long a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections whose TLS handshakes are in progress at once.
pub const HANDSHAKES_MAX: usize = 1_024;
/// Concurrent calls on one connection.
pub const CALLS_PER_CONNECTION_MAX: usize = 1_024;

/// The counter of failed or timed-out TLS handshakes (a branch server's metric).
pub const TLS_HANDSHAKE_FAILURES: &str = "corebank_tls_handshake_failures_total";

/// How [`serve`] reports on what it serves.
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// The log message when the gRPC server stops with an error.
    pub stopped_message: &'static str,
    /// Count failed and timed-out TLS handshakes in [`TLS_HANDSHAKE_FAILURES`]
    /// (the process-wide metrics recorder).
    pub count_handshake_failures: bool,
}

/// Resolves once `stop` turns `true` (or its sender is gone).
pub async fn stopped(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Serves `router` on `listener` (through TLS with `tls`, otherwise plain TCP) until
/// `stop` turns `true`; calls in progress finish. Returns the tasks to wait for.
pub fn serve(
    router: tonic::transport::server::Router,
    listener: TcpListener,
    tls: Option<corebank_security::rustls::ServerConfig>,
    stop: watch::Receiver<bool>,
    options: ServeOptions,
) -> Vec<JoinHandle<()>> {
    let shutdown = stopped(stop.clone());
    let stopped_message = options.stopped_message;
    match tls {
        None => vec![tokio::spawn(async move {
            // Without TCP_NODELAY an answer written in two segments (HTTP/2 headers,
            // then data) waits for the peer's delayed ACK: 40 ms per call on a
            // connection that carries one call at a time.
            let incoming = TcpListenerStream::new(listener).map(|accepted| {
                accepted.inspect(|tcp| {
                    let _ = tcp.set_nodelay(true);
                })
            });
            if let Err(error) = router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
            {
                tracing::error!(%error, "{stopped_message}");
            }
        })],
        Some(tls) => {
            let (incoming, acceptor) =
                tls_incoming(listener, tls, stop, options.count_handshake_failures);
            let server = tokio::spawn(async move {
                if let Err(error) = router
                    .serve_with_incoming_shutdown(ReceiverStream::new(incoming), shutdown)
                    .await
                {
                    tracing::error!(%error, "{stopped_message}");
                }
            });
            vec![acceptor, server]
        }
    }
}

type TlsStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// Accepts TCP connections and completes their TLS handshakes (bounded in number and
/// time) off the accept loop; finished connections come out of the receiver.
fn tls_incoming(
    listener: TcpListener,
    tls: corebank_security::rustls::ServerConfig,
    mut stop: watch::Receiver<bool>,
    count_failures: bool,
) -> (
    tokio::sync::mpsc::Receiver<Result<TlsStream, std::io::Error>>,
    JoinHandle<()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let (connections, incoming) = tokio::sync::mpsc::channel(HANDSHAKES_MAX);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_MAX));
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.changed() => return,
            };
            let Ok((tcp, peer)) = accepted else { continue };
            let _ = tcp.set_nodelay(true);
            let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let failed = || {
                    if count_failures {
                        metrics::counter!(TLS_HANDSHAKE_FAILURES).increment(1);
                    }
                };
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = connections.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => {
                        failed();
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                    }
                    Err(_) => {
                        failed();
                        tracing::debug!(%peer, "TLS handshake timed out");
                    }
                }
            });
        }
    });
    (incoming, task)
}
