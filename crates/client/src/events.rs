//! The event stream, resumed by position after a disconnection.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use corebank_proto::{ErrorCode, v1};
use futures_core::Stream;

use crate::client::{Client, Core};
use crate::error::{ClientError, Failure, classify};
use crate::retry::{self, Repeat, jittered};

/// The stream of a branch's committed events, from [`Client::subscribe`].
///
/// Every event is delivered once, in commit order. When the stream breaks (a
/// lost connection, the node restarting, `subscriber_too_slow`), the client
/// subscribes again from the position of the last event it delivered, after the
/// retry policy's pause; nothing is missed and nothing is repeated. After
/// `max_attempts` failures in a row without an event between them, or an error
/// that retrying cannot fix (`position_too_old`, `unauthenticated`, ...), the
/// stream yields that error and ends.
pub struct EventStream {
    inner: Pin<Box<dyn Stream<Item = Result<v1::Event, ClientError>> + Send>>,
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl Stream for EventStream {
    type Item = Result<v1::Event, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl Client {
    /// Follows the branch's committed events, starting right after
    /// `from_position` (the position of the last event already processed; 0 = from
    /// the beginning). Heartbeats are delivered too: their position is safe to
    /// store as the place to resume from.
    ///
    /// The stream has no deadline; the connection's keep-alive
    /// ([`ClientConfig::keep_alive_interval`](crate::ClientConfig)) notices a dead
    /// peer.
    pub fn subscribe(&self, from_position: u64) -> EventStream {
        let state = State {
            core: self.core().clone(),
            position: from_position,
            stream: None,
            failures: 0,
            done: false,
        };
        EventStream {
            inner: Box::pin(futures_util::stream::unfold(state, next)),
        }
    }
}

struct State {
    core: Arc<Core>,
    /// The position of the last event delivered.
    position: u64,
    stream: Option<tonic::Streaming<v1::Event>>,
    /// Failures since the last event delivered.
    failures: u32,
    done: bool,
}

async fn next(mut state: State) -> Option<(Result<v1::Event, ClientError>, State)> {
    loop {
        if state.done {
            return None;
        }
        let stream = match state.stream.as_mut() {
            Some(stream) => stream,
            None => match open(&state.core, state.position).await {
                Ok(stream) => state.stream.insert(stream),
                Err(error) => {
                    state.done = true;
                    return Some((Err(error), state));
                }
            },
        };
        let error = match stream.message().await {
            Ok(Some(event)) => {
                state.position = state.position.max(event.position);
                state.failures = 0;
                return Some((Ok(event), state));
            }
            Ok(None) => ClientError::Transport {
                endpoint: state.core.route.endpoint(),
                detail: "the node ended the event stream".into(),
            },
            Err(status) => {
                let (error, failure) = classify(&status, &state.core.route.endpoint());
                let too_slow = error
                    .api_error()
                    .is_some_and(|e| e.code == ErrorCode::SubscriberTooSlow);
                if failure == Failure::Final && !too_slow {
                    state.done = true;
                    return Some((Err(error), state));
                }
                error
            }
        };
        state.stream = None;
        state.failures += 1;
        let policy = state.core.timing.retries;
        if state.failures >= policy.max_attempts.max(1) {
            state.done = true;
            return Some((Err(error), state));
        }
        let exponent = (state.failures - 1).min(20);
        let backoff = policy
            .initial_backoff
            .saturating_mul(1 << exponent)
            .min(policy.max_backoff);
        tracing::debug!(
            endpoint = %state.core.route.endpoint(),
            position = state.position,
            code = error.code(),
            "event stream broke; subscribing again"
        );
        tokio::time::sleep(jittered(backoff, policy.jitter)).await;
    }
}

/// Subscribes from `position`, with retries; no `grpc-timeout` (the stream has
/// no end), but the response headers must arrive within the request timeout.
async fn open(core: &Core, position: u64) -> Result<tonic::Streaming<v1::Event>, ClientError> {
    let stub = core.events();
    let success = retry::run(
        "Subscribe",
        &core.route,
        core.timing,
        Repeat::Safe,
        |_: Duration| {
            let mut stub = stub.clone();
            async move {
                stub.subscribe(v1::SubscribeRequest {
                    from_position: position,
                })
                .await
            }
        },
    )
    .await?;
    Ok(success.value)
}
