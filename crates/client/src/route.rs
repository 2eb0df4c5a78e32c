//! Which replica of the branch the client talks to.
//!
//! A branch is a Raft group: only its leader takes writes and linearizable reads. The
//! client is given one or more replica addresses; it connects to the first that
//! answers, moves to the leader a replica names when it answers `not_leader`, and to
//! the next configured address when the connection breaks. Calls pick the current
//! connection when they are sent, so a switch applies to every stub already made.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http;
use tonic::transport::Channel;
use tonic::transport::channel::ResponseFuture;

use crate::config::ClientConfig;
use crate::connect;
use crate::error::ClientError;

struct Current {
    /// The endpoint URI (with scheme) in use.
    endpoint: String,
    channel: Channel,
    /// Bumped on every switch, so that concurrent failures switch once.
    generation: u64,
}

/// The replica in use and how to reach the others.
pub(crate) struct Route {
    config: ClientConfig,
    /// The configured endpoints, with their schemes.
    endpoints: Vec<String>,
    current: Mutex<Current>,
    /// One switch at a time.
    switching: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("endpoints", &self.endpoints)
            .field("current", &self.endpoint())
            .finish_non_exhaustive()
    }
}

impl Route {
    /// Connects to the first configured endpoint that answers.
    pub(crate) async fn connect(config: &ClientConfig) -> Result<Arc<Self>, ClientError> {
        let endpoints = connect::endpoint_list(config)?;
        let mut last_error = None;
        for endpoint in &endpoints {
            match connect::connect_to(endpoint, config).await {
                Ok(channel) => {
                    return Ok(Arc::new(Self {
                        config: config.clone(),
                        endpoints: endpoints.clone(),
                        current: Mutex::new(Current {
                            endpoint: endpoint.clone(),
                            channel,
                            generation: 0,
                        }),
                        switching: tokio::sync::Mutex::new(()),
                    }));
                }
                // A bad certificate file or configuration fails the same everywhere.
                Err(error @ (ClientError::Tls { .. } | ClientError::Config { .. })) => {
                    return Err(error);
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| ClientError::Config {
            field: "endpoint",
            message: "no endpoint given".into(),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The endpoint in use.
    pub(crate) fn endpoint(&self) -> String {
        self.lock().endpoint.clone()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn channel(&self) -> Channel {
        self.lock().channel.clone()
    }

    /// A channel that always sends over the connection in use.
    pub(crate) fn routed(self: &Arc<Self>) -> RoutedChannel {
        RoutedChannel {
            route: Arc::clone(self),
            ready: None,
        }
    }

    fn install(&self, endpoint: String, channel: Channel) {
        let mut current = self.lock();
        tracing::info!(from = %current.endpoint, to = %endpoint, "switching replica");
        current.endpoint = endpoint;
        current.channel = channel;
        current.generation += 1;
    }

    /// Moves to the leader a replica named (`host:port`). `seen` is the generation the
    /// failed call used: if another call switched meanwhile, nothing is done.
    pub(crate) async fn follow_leader(&self, address: &str, seen: u64) -> bool {
        let _one = self.switching.lock().await;
        if self.generation() != seen {
            return true;
        }
        let scheme = if self.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let endpoint = format!("{scheme}://{}", address.trim());
        if endpoint == self.endpoint() {
            return false;
        }
        match connect::connect_to(&endpoint, &self.config).await {
            Ok(channel) => {
                self.install(endpoint, channel);
                true
            }
            Err(error) => {
                tracing::debug!(%endpoint, %error, "the leader named is not reachable");
                false
            }
        }
    }

    /// Moves to the next configured endpoint that answers, after a broken connection.
    /// False when there is no other endpoint, or none answers.
    pub(crate) async fn fail_over(&self, seen: u64) -> bool {
        if self.endpoints.len() < 2 {
            return false;
        }
        let _one = self.switching.lock().await;
        if self.generation() != seen {
            return true;
        }
        let now = self.endpoint();
        let start = self
            .endpoints
            .iter()
            .position(|endpoint| *endpoint == now)
            .map_or(0, |index| index + 1);
        for offset in 0..self.endpoints.len() {
            let endpoint = &self.endpoints[(start + offset) % self.endpoints.len()];
            if *endpoint == now {
                continue;
            }
            if let Ok(channel) = connect::connect_to(endpoint, &self.config).await {
                self.install(endpoint.clone(), channel);
                return true;
            }
        }
        false
    }
}

/// A channel that sends each call over the route's current connection.
pub struct RoutedChannel {
    route: Arc<Route>,
    /// The connection polled ready, which the next call must use.
    ready: Option<Channel>,
}

impl Clone for RoutedChannel {
    fn clone(&self) -> Self {
        // A clone picks its own connection when polled: the route may have moved.
        Self {
            route: Arc::clone(&self.route),
            ready: None,
        }
    }
}

impl fmt::Debug for RoutedChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutedChannel")
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl Service<http::Request<Body>> for RoutedChannel {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let route = &self.route;
        let channel = self.ready.get_or_insert_with(|| route.channel());
        channel.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self.ready.take() {
            Some(mut channel) => channel.call(request),
            // Called without poll_ready (a caller bug in tower terms): the channel's
            // own buffer still takes it.
            None => self.route.channel().call(request),
        }
    }
}
