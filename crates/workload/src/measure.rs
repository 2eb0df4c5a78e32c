//! Measuring runs: latency percentiles, rates and their formatting, with integers only.

use std::time::Duration;

/// Latency percentiles of a set of samples (nearest-rank method).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencySummary {
    pub count: usize,
    pub total: Duration,
    pub min: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
}

impl LatencySummary {
    /// Summarises `samples` (sorted in place). All zero for no samples.
    pub fn from_samples(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let (Some(&min), Some(&max)) = (samples.first(), samples.last()) else {
            return Self::default();
        };
        Self {
            count: samples.len(),
            total: samples.iter().sum(),
            min,
            p50: percentile(samples, 500),
            p99: percentile(samples, 990),
            p999: percentile(samples, 999),
            max,
        }
    }
}

/// The `per_mille`-th percentile of `sorted` by the nearest-rank method: the smallest
/// sample with at least `per_mille / 1000` of the samples at or below it. `T::default()`
/// for no samples.
pub fn percentile<T: Copy + Default>(sorted: &[T], per_mille: u32) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let n = sorted.len() as u128;
    let rank = (n * u128::from(per_mille.min(1_000)))
        .div_ceil(1_000)
        .clamp(1, n);
    // rank <= n = sorted.len(), so it fits usize.
    sorted[usize::try_from(rank - 1).unwrap_or(0)]
}

/// `count` events over `elapsed`, per second, rounded down (0 for no time).
pub fn per_second(count: u64, elapsed: Duration) -> u64 {
    let nanos = elapsed.as_nanos();
    if nanos == 0 {
        return 0;
    }
    u64::try_from(u128::from(count) * 1_000_000_000 / nanos).unwrap_or(u64::MAX)
}

/// A duration for people, with three significant decimals in a fitting unit:
/// `"812 ns"`, `"41.250 µs"`, `"4.912 ms"`, `"1.234 s"`.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    let (unit, scale) = match nanos {
        0..1_000 => return format!("{nanos} ns"),
        1_000..1_000_000 => ("µs", 1_000),
        1_000_000..1_000_000_000 => ("ms", 1_000_000),
        _ => ("s", 1_000_000_000),
    };
    let thousandths = nanos * 1_000 / scale;
    format!("{}.{:03} {unit}", thousandths / 1_000, thousandths % 1_000)
}

/// `part` of `whole` as a percentage with one decimal, rounded down: `"95.8%"`.
pub fn format_percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_owned();
    }
    let tenths = u128::from(part) * 1_000 / u128::from(whole);
    format!("{}.{}%", tenths / 10, tenths % 10)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u32> = (1..=1_000).collect();
        assert_eq!(percentile(&samples, 500), 500);
        assert_eq!(percentile(&samples, 990), 990);
        assert_eq!(percentile(&samples, 999), 999);
        assert_eq!(percentile(&samples, 1_000), 1_000);
        assert_eq!(percentile(&samples, 0), 1);
        assert_eq!(percentile(&[7u32], 999), 7);
        assert_eq!(percentile(&[1u32, 2], 500), 1);
        assert_eq!(percentile(&[1u32, 2], 990), 2);
        assert_eq!(percentile::<u32>(&[], 500), 0);
    }

    #[test]
    fn summaries() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let summary = LatencySummary::from_samples(&mut samples);
        assert_eq!(summary.count, 100);
        assert_eq!(summary.min, Duration::from_millis(1));
        assert_eq!(summary.p50, Duration::from_millis(50));
        assert_eq!(summary.p99, Duration::from_millis(99));
        assert_eq!(summary.p999, Duration::from_millis(100));
        assert_eq!(summary.max, Duration::from_millis(100));
        assert_eq!(summary.total, Duration::from_millis(5_050));
        assert_eq!(
            LatencySummary::from_samples(&mut []),
            LatencySummary::default()
        );
    }

    #[test]
    fn rates_and_formats() {
        assert_eq!(per_second(1_000, Duration::from_millis(500)), 2_000);
        assert_eq!(per_second(5, Duration::ZERO), 0);
        assert_eq!(format_duration(Duration::from_nanos(812)), "812 ns");
        assert_eq!(format_duration(Duration::from_nanos(41_250)), "41.250 µs");
        assert_eq!(format_duration(Duration::from_micros(4_912)), "4.912 ms");
        assert_eq!(format_duration(Duration::from_millis(1_234)), "1.234 s");
        assert_eq!(format_duration(Duration::from_secs(90)), "90.000 s");
        assert_eq!(format_percent(958, 1_000), "95.8%");
        assert_eq!(format_percent(1, 3), "33.3%");
        assert_eq!(format_percent(5, 0), "-");
    }
}
