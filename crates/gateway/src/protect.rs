//! Protection: rate limits, security headers and CORS.

use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::RateLimits;
use crate::problem::Problem;

type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// The keyed limiters: per client, per debited account, per address for sign-in.
#[derive(Debug)]
pub struct Limiters {
    clients: Keyed,
    accounts: Keyed,
    logins: Keyed,
}

fn nonzero(value: u32) -> NonZeroU32 {
    NonZeroU32::new(value.max(1)).unwrap_or(NonZeroU32::MIN)
}

impl Limiters {
    pub fn new(limits: RateLimits) -> Self {
        let per_second = |rate: u32| {
            Quota::per_second(nonzero(rate)).allow_burst(nonzero(rate.saturating_mul(2)))
        };
        Self {
            clients: RateLimiter::keyed(per_second(limits.per_client_per_second)),
            accounts: RateLimiter::keyed(per_second(limits.per_account_per_second)),
            logins: RateLimiter::keyed(
                Quota::per_minute(nonzero(limits.logins_per_minute))
                    .allow_burst(nonzero(limits.logins_per_minute)),
            ),
        }
    }

    fn check(limiter: &Keyed, key: &str, what: &str) -> Result<(), Problem> {
        match limiter.check_key(&key.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(rate_limited(what, wait))
            }
        }
    }

    /// A request of `client` (`user:7`, `key:ab12`, `ip:127.0.0.1`).
    pub fn client(&self, client: &str) -> Result<(), Problem> {
        Self::check(&self.clients, client, "requests from this client")
    }

    /// A money movement debiting `account`.
    pub fn account(&self, account: &str) -> Result<(), Problem> {
        Self::check(&self.accounts, account, "payments from this account")
    }

    /// A sign-in attempt from `address`.
    pub fn login(&self, address: &str) -> Result<(), Problem> {
        Self::check(&self.logins, address, "sign-in attempts from this address")
    }

    /// Forgets idle keys, so that the maps do not grow without bound.
    pub fn housekeeping(&self) {
        self.clients.retain_recent();
        self.accounts.retain_recent();
        self.logins.retain_recent();
        self.clients.shrink_to_fit();
        self.accounts.shrink_to_fit();
        self.logins.shrink_to_fit();
    }
}

fn rate_limited(what: &str, wait: Duration) -> Problem {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Problem::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("Too many {what}; retry after {} s.", seconds.max(1)),
    )
    .with_retry_after(seconds)
}

/// The Content-Security-Policy of every answer: scripts, styles, images (and
/// `data:` images for the server-drawn charts) and connections only from the
/// gateway itself; no frames, no inline script.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// Adds the security headers to every answer.
pub async fn security_headers(tls: bool, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(
        headers,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    set(
        headers,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    if tls {
        set(
            headers,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    response
}

/// CORS: only the configured origins; none by default (same-origin only).
pub fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([header::RETRY_AFTER, HeaderName::from_static("x-request-id")])
        .max_age(Duration::from_secs(600))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_client_over_its_burst_is_told_when_to_come_back() {
        let limiters = Limiters::new(RateLimits {
            per_client_per_second: 2,
            per_account_per_second: 1,
            logins_per_minute: 1,
        });
        for _ in 0..4 {
            limiters.client("user:1").unwrap();
        }
        let refused = limiters.client("user:1").unwrap_err();
        assert_eq!(refused.code, "rate_limited");
        assert_eq!(refused.status, axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.retry_after.unwrap() >= 1);
        // Another client is not affected.
        limiters.client("user:2").unwrap();
        limiters.login("ip:1").unwrap();
        let login = limiters.login("ip:1").unwrap_err();
        assert!(login.retry_after.unwrap() >= 1);
        limiters.account("A").unwrap();
        limiters.account("A").unwrap();
        assert!(limiters.account("A").is_err());
    }
}
