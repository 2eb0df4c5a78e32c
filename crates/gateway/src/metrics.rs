//! The gateway's own figures: requests by route and status, requests in flight,
//! and the latency of money movements through it (HDR histograms per 2-second
//! bucket, so that percentiles over the last minute and a p99 series are cheap).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::hub::now_ns;

const BUCKET_NS: u64 = 2_000_000_000;
/// Buckets kept: 3 minutes.
const BUCKETS: usize = 90;
/// Latencies above this (µs) are clamped.
const LATENCY_MAX_US: u64 = 60_000_000;

/// Latency percentiles in milliseconds, as decimal strings with three decimals
/// (so that no float is needed anywhere).
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Percentiles {
    pub count: u64,
    pub p50: String,
    pub p90: String,
    pub p99: String,
    pub p999: String,
    pub max: String,
}

/// Microseconds as milliseconds with three decimals.
pub fn ms_text(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

#[derive(Debug)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    in_flight: AtomicI64,
    /// (bucket start ns, histogram of µs), oldest first.
    money: Mutex<VecDeque<(u64, Histogram<u64>)>>,
    pub audit_records: AtomicU64,
    pub logins_ok: AtomicU64,
    pub logins_refused: AtomicU64,
    pub denials: AtomicU64,
    pub stream_clients: AtomicI64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn new_histogram() -> Option<Histogram<u64>> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).ok()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            requests: Mutex::new(BTreeMap::new()),
            in_flight: AtomicI64::new(0),
            money: Mutex::new(VecDeque::new()),
            audit_records: AtomicU64::new(0),
            logins_ok: AtomicU64::new(0),
            logins_refused: AtomicU64::new(0),
            denials: AtomicU64::new(0),
            stream_clients: AtomicI64::new(0),
        }
    }

    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn request_finished(&self, method: &str, route: &str, status: u16) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        *lock(&self.requests)
            .entry((method.to_owned(), route.to_owned(), status))
            .or_insert(0) += 1;
    }

    /// Requests being served now (the gateway's queue).
    pub fn in_flight(&self) -> u64 {
        u64::try_from(self.in_flight.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// A money movement took `elapsed` end to end inside the gateway.
    pub fn money_latency(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros())
            .unwrap_or(LATENCY_MAX_US)
            .clamp(1, LATENCY_MAX_US);
        let bucket = now_ns() / BUCKET_NS * BUCKET_NS;
        let mut money = lock(&self.money);
        if money.back().is_none_or(|(start, _)| *start < bucket)
            && let Some(histogram) = new_histogram()
        {
            money.push_back((bucket, histogram));
            while money.len() > BUCKETS {
                money.pop_front();
            }
        }
        if let Some((_, histogram)) = money.back_mut() {
            let _ = histogram.record(us);
        }
    }

    /// Percentiles of the money movements of the last `window`.
    pub fn money_percentiles(&self, window: Duration) -> Percentiles {
        let since = now_ns().saturating_sub(u64::try_from(window.as_nanos()).unwrap_or(0));
        let money = lock(&self.money);
        let Some(mut merged) = new_histogram() else {
            return Percentiles::default();
        };
        for (start, histogram) in money.iter() {
            if start + BUCKET_NS > since {
                let _ = merged.add(histogram);
            }
        }
        percentiles(&merged)
    }

    /// (bucket start, count, p50 µs, p99 µs) per bucket, oldest first.
    pub fn money_series(&self) -> Vec<(u64, u64, u64, u64)> {
        lock(&self.money)
            .iter()
            .map(|(start, h)| {
                (
                    *start,
                    h.len(),
                    h.value_at_quantile(0.5),
                    h.value_at_quantile(0.99),
                )
            })
            .collect()
    }

    /// The Prometheus text exposition.
    pub fn render(&self, extra: &[(String, u64)]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP corebank_gateway_requests_total HTTP requests answered, by method, route and status.\n# TYPE corebank_gateway_requests_total counter"
        );
        for ((method, route, status), count) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "corebank_gateway_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP corebank_gateway_requests_in_flight Requests being served.\n# TYPE corebank_gateway_requests_in_flight gauge\ncorebank_gateway_requests_in_flight {}",
            self.in_flight()
        );
        let p = self.money_percentiles(Duration::from_secs(60));
        let _ = writeln!(
            out,
            "# HELP corebank_gateway_money_latency_ms Latency of money movements through the gateway over the last minute.\n# TYPE corebank_gateway_money_latency_ms summary"
        );
        for (quantile, value) in [
            ("0.5", &p.p50),
            ("0.9", &p.p90),
            ("0.99", &p.p99),
            ("0.999", &p.p999),
        ] {
            let _ = writeln!(
                out,
                "corebank_gateway_money_latency_ms{{quantile=\"{quantile}\"}} {value}"
            );
        }
        let _ = writeln!(out, "corebank_gateway_money_latency_ms_count {}", p.count);
        for (name, value) in [
            (
                "corebank_gateway_logins_ok_total",
                self.logins_ok.load(Ordering::Relaxed),
            ),
            (
                "corebank_gateway_logins_refused_total",
                self.logins_refused.load(Ordering::Relaxed),
            ),
            (
                "corebank_gateway_denials_total",
                self.denials.load(Ordering::Relaxed),
            ),
            (
                "corebank_gateway_audit_records_total",
                self.audit_records.load(Ordering::Relaxed),
            ),
        ] {
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {value}");
        }
        let _ = writeln!(
            out,
            "# TYPE corebank_gateway_stream_clients gauge\ncorebank_gateway_stream_clients {}",
            self.stream_clients.load(Ordering::Relaxed).max(0)
        );
        for (name, value) in extra {
            let _ = writeln!(out, "# TYPE {name} gauge\n{name} {value}");
        }
        out
    }
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        count: h.len(),
        p50: ms_text(h.value_at_quantile(0.5)),
        p90: ms_text(h.value_at_quantile(0.9)),
        p99: ms_text(h.value_at_quantile(0.99)),
        p999: ms_text(h.value_at_quantile(0.999)),
        max: ms_text(h.max()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_out_in_milliseconds_without_floats() {
        let metrics = Metrics::new();
        for ms in 1..=100u64 {
            metrics.money_latency(Duration::from_millis(ms));
        }
        let p = metrics.money_percentiles(Duration::from_secs(60));
        assert_eq!(p.count, 100);
        assert!(p.p50.starts_with("50."), "{}", p.p50);
        assert!(p.p99.starts_with("99."), "{}", p.p99);
        assert_eq!(ms_text(1_234), "1.234");
        metrics.request_started();
        metrics.request_finished("POST", "/api/v1/transfers", 201);
        let text = metrics.render(&[]);
        assert!(text.contains(
            "corebank_gateway_requests_total{method=\"POST\",route=\"/api/v1/transfers\",status=\"201\"} 1"
        ));
        assert!(text.contains("corebank_gateway_money_latency_ms_count 100"));
    }
}
