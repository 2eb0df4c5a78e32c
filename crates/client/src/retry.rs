//! One call, attempted until it succeeds, fails for good, or runs out of
//! attempts or time.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::RetryPolicy;
use crate::error::{ClientError, Failure, classify};
use crate::route::Route;
use corebank_proto::ErrorCode;

/// Whether repeating a call can apply something twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Repeating is harmless: reads, ledger creates (client-chosen ids: a repeat of
    /// an applied event answers `exists`), banking calls with an idempotency key,
    /// hold captures and releases (ids derived from the hold).
    Safe,
    /// Repeating could apply the call twice (opening an account): retried only when
    /// the server said that it did nothing.
    Unsafe,
}

/// A successful call.
#[derive(Debug)]
pub(crate) struct Success<T> {
    pub value: T,
    /// An earlier attempt failed with an unknown outcome, so it may have been
    /// applied: an `exists` in this answer may be that attempt's doing.
    pub after_unknown_outcome: bool,
}

/// The timing of a call: per-attempt and overall deadlines, and the retry policy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub request_timeout: Duration,
    pub total_timeout: Duration,
    pub retries: RetryPolicy,
}

/// Runs `attempt` (given the attempt's deadline, to send as `grpc-timeout`) until
/// it succeeds or retrying is pointless or unsafe.
pub(crate) async fn run<T, F, Fut>(
    what: &'static str,
    route: &Route,
    timing: Timing,
    repeat: Repeat,
    mut attempt: F,
) -> Result<Success<T>, ClientError>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let deadline = Instant::now() + timing.total_timeout;
    let max_attempts = timing.retries.max_attempts.max(1);
    let mut backoff = timing.retries.initial_backoff;
    let mut after_unknown_outcome = false;
    let mut attempts = 0_u32;
    loop {
        attempts = attempts.saturating_add(1);
        let generation = route.generation();
        let remaining = deadline.saturating_duration_since(Instant::now());
        let per_attempt = timing.request_timeout.min(remaining);
        let (error, failure) = if per_attempt.is_zero() {
            (
                ClientError::Timeout {
                    after: timing.total_timeout,
                },
                Failure::Final,
            )
        } else {
            let started = Instant::now();
            match tokio::time::timeout(per_attempt, attempt(per_attempt)).await {
                Ok(Ok(response)) => {
                    return Ok(Success {
                        value: response.into_inner(),
                        after_unknown_outcome,
                    });
                }
                Ok(Err(status)) => {
                    // The server enforces the deadline too (tonic answers CANCELLED
                    // "Timeout expired"), and may say so before the local timer fires.
                    let deadline_passed = matches!(
                        status.code(),
                        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
                    ) && started.elapsed() >= per_attempt - per_attempt / 10;
                    // The endpoint only names a failure: read it when there is one.
                    match classify(&status, &route.endpoint()) {
                        (ClientError::Timeout { .. }, failure) => {
                            (ClientError::Timeout { after: per_attempt }, failure)
                        }
                        (_, failure) if deadline_passed => {
                            (ClientError::Timeout { after: per_attempt }, failure)
                        }
                        other => other,
                    }
                }
                Err(_) => (
                    ClientError::Timeout { after: per_attempt },
                    Failure::OutcomeUnknown,
                ),
            }
        };
        if failure == Failure::OutcomeUnknown {
            after_unknown_outcome = true;
        }
        // An election is under way (600 to 1,200 ms, longer under load): the branch
        // did nothing and will lead again soon, so waiting for it does not use up an
        // attempt, only time. Another replica may already know the new leader, or be
        // it: with several, the next attempt goes there, after the usual pause.
        let electing = matches!(
            &error,
            ClientError::Api(api) if api.code == ErrorCode::NotLeader && api.leader.is_none()
        );
        if electing {
            attempts = attempts.saturating_sub(1);
            route.fail_over(generation).await;
        }
        // Another replica leads: go there. A broken connection: try another replica.
        let moved = match &error {
            ClientError::Api(api) if api.code == ErrorCode::NotLeader => match &api.leader {
                Some(leader) => route.follow_leader(leader, generation).await,
                None => false,
            },
            ClientError::Transport { .. } | ClientError::Timeout { .. } => {
                route.fail_over(generation).await
            }
            _ => false,
        };
        let retry = match failure {
            Failure::Final => false,
            Failure::NothingApplied => true,
            Failure::OutcomeUnknown => repeat == Repeat::Safe,
        };
        if !retry || attempts >= max_attempts {
            return Err(error);
        }
        if moved {
            tracing::debug!(call = what, to = %route.endpoint(), "retrying on another replica");
            continue;
        }
        let pause = jittered(backoff, timing.retries.jitter);
        if Instant::now() + pause >= deadline {
            return Err(error);
        }
        tracing::debug!(
            call = what,
            endpoint = %route.endpoint(),
            attempt = attempts,
            code = error.code(),
            pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
            "retrying"
        );
        tokio::time::sleep(pause).await;
        backoff = backoff.saturating_mul(2).min(timing.retries.max_backoff);
    }
}

/// The pause before the next attempt: with jitter, uniformly between half of
/// `backoff` and all of it.
pub(crate) fn jittered(backoff: Duration, jitter: bool) -> Duration {
    if !jitter {
        return backoff;
    }
    let half = backoff / 2;
    let span = u64::try_from((backoff - half).as_nanos()).unwrap_or(u64::MAX);
    if span == 0 {
        return backoff;
    }
    half + Duration::from_nanos(random_u64() % (span + 1).max(1))
}

/// 64 random bits from the operating system's generator (aws-lc-rs, already
/// linked by rustls); 0 if it fails, which only removes the jitter.
pub(crate) fn random_u64() -> u64 {
    let mut bytes = [0_u8; 8];
    match aws_lc_rs::rand::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => 0,
    }
}

/// A fresh idempotency key for a banking call: a random UUID (version 4), in its
/// usual 36-character text form.
pub fn new_idempotency_key() -> String {
    let mut bytes = [0_u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // Practically unreachable; still unique enough within this process.
        let fallback = (u128::from(random_u64()) << 64)
            | u128::from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            );
        bytes = fallback.to_le_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_all() {
        let backoff = Duration::from_millis(100);
        for _ in 0..1_000 {
            let pause = jittered(backoff, true);
            assert!(pause >= backoff / 2 && pause <= backoff, "{pause:?}");
        }
        assert_eq!(jittered(backoff, false), backoff);
        assert_eq!(jittered(Duration::ZERO, true), Duration::ZERO);
    }

    #[test]
    fn idempotency_keys_are_uuids() {
        let key = new_idempotency_key();
        assert_eq!(key.len(), 36);
        assert_eq!(key.as_bytes()[14], b'4');
        assert!(key.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
        assert_ne!(key, new_idempotency_key());
    }
}
