#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_arithmetic)]
use super::*;
use corebank_screening::{Channel, TransferContext};

const T0: u64 = 1_700_000_000 * NS_PER_SEC - (1_700_000_000 % 86_400) * NS_PER_SEC;
const A: u128 = 10_000_001_000;
const B: u128 = 20_000_001_000;

fn cand(debit: u128, credit: u128, amount: u128, ts: u64) -> Candidate {
    Candidate {
        id: u128::from(ts),
        debit_account: debit,
        credit_account: credit,
        amount,
        ledger: 978,
        code: 1,
        pending: false,
        timestamp_ns: ts,
        debit_account_created_ns: T0 - 100 * DAY,
        credit_account_created_ns: 0,
        debit_available: 1_000_000,
        context: TransferContext {
            channel: Channel::Card,
            merchant_category: 5411,
            device: 7,
            location: Some(GeoPoint {
                lat_micro: 48_850_000,
                lon_micro: 2_350_000,
            }),
            occurred_at_ns: ts,
        },
    }
}

fn store() -> FeatureStore {
    FeatureStore::new(FeatureConfig::default())
}

fn get(f: &FeatureVector, k: Feature) -> f64 {
    f[k.index()]
}

#[test]
fn names_are_unique_and_round_trip() {
    let mut seen = std::collections::HashSet::new();
    for (i, f) in Feature::ALL.iter().enumerate() {
        assert_eq!(f.index(), i);
        assert_eq!(FEATURE_NAMES[i], f.name());
        assert!(seen.insert(f.name()));
        assert_eq!(Feature::from_name(f.name()), Some(*f));
        assert!(f.description().ends_with('.'));
    }
    assert_eq!(FEATURE_COUNT, Feature::ALL.len());
    const { assert!(FEATURE_COUNT >= 30) };
}

#[test]
fn features_exclude_the_candidate_itself() {
    let mut s = store();
    let c = cand(A, B, 1_000, T0);
    let before = s.compute(&c);
    assert_eq!(get(&before, Feature::OutCount1h), 0.0);
    assert_eq!(get(&before, Feature::OutHistory), 0.0);
    s.update(&c);
    let c2 = cand(A, B, 1_000, T0 + NS_PER_SEC);
    let f = s.compute(&c2);
    assert_eq!(get(&f, Feature::OutCount1h), 1.0);
    assert_eq!(get(&f, Feature::OutHistory), 1.0);
}

#[test]
fn amount_against_own_history() {
    let mut s = store();
    for i in 0..10u64 {
        s.update(&cand(A, B, 1_000 + u128::from(i) * 10, T0 + i * HOUR));
    }
    let normal = s.compute(&cand(A, B, 1_050, T0 + 11 * HOUR));
    let big = s.compute(&cand(A, B, 100_000, T0 + 11 * HOUR));
    assert!((get(&normal, Feature::AmountRatio) - 1.0).abs() < 0.1);
    assert!(get(&big, Feature::AmountRatio) > 50.0);
    assert!(get(&normal, Feature::AmountZ).abs() < 1.0);
    assert!(get(&big, Feature::AmountZ) > 5.0);
    // No history: missing.
    let fresh = s.compute(&cand(B, A, 100, T0));
    assert!(get(&fresh, Feature::AmountRatio).is_nan());
    assert!(get(&fresh, Feature::AmountZ).is_nan());
    assert!((get(&fresh, Feature::AmountLog) - 101f64.log10()).abs() < 1e-12);
}

#[test]
fn velocity_windows() {
    let mut s = store();
    // 3 in the last minute, 5 in the last hour, 8 in the last day.
    let now = T0 + 2 * DAY;
    let times = [
        now - 20 * HOUR,
        now - 10 * HOUR,
        now - 2 * HOUR,
        now - 50 * MINUTE,
        now - 30 * MINUTE,
        now - 40 * NS_PER_SEC,
        now - 20 * NS_PER_SEC,
        now - 10 * NS_PER_SEC,
        now - 30 * HOUR,
    ];
    let mut sorted = times;
    sorted.sort_unstable();
    for t in sorted {
        s.update(&cand(A, B, 100_000, t));
    }
    let f = s.compute(&cand(A, B, 1_000, now));
    assert_eq!(get(&f, Feature::OutCount1m), 3.0);
    assert_eq!(get(&f, Feature::OutCount1h), 5.0);
    assert_eq!(get(&f, Feature::OutCount24h), 8.0);
    assert_eq!(get(&f, Feature::OutSum1h), 500_000.0);
    assert_eq!(get(&f, Feature::OutSum24h), 800_000.0);
    assert_eq!(get(&f, Feature::OutHistory), 9.0);
}

#[test]
fn new_counterparty_device_and_merchant_category() {
    let mut s = store();
    s.update(&cand(A, B, 1_000, T0));
    let same = s.compute(&cand(A, B, 1_000, T0 + HOUR));
    assert_eq!(get(&same, Feature::NewCounterparty), 0.0);
    assert_eq!(get(&same, Feature::NewDevice), 0.0);
    assert_eq!(get(&same, Feature::NewMerchantCategory), 0.0);
    let mut other = cand(A, 30_000_001_000, 1_000, T0 + HOUR);
    other.context.device = 99;
    other.context.merchant_category = 5732;
    let f = s.compute(&other);
    assert_eq!(get(&f, Feature::NewCounterparty), 1.0);
    assert_eq!(get(&f, Feature::NewDevice), 1.0);
    assert_eq!(get(&f, Feature::NewMerchantCategory), 1.0);
    other.context.device = 0;
    other.context.merchant_category = 0;
    let f = s.compute(&other);
    assert!(get(&f, Feature::NewDevice).is_nan());
    assert!(get(&f, Feature::NewMerchantCategory).is_nan());
}

#[test]
fn counterparties_and_devices_are_bounded() {
    let mut s = store();
    for i in 0..500u64 {
        let mut c = cand(A, 1_000_000 + u128::from(i), 1_000, T0 + i * NS_PER_SEC);
        c.context.device = i;
        s.update(&c);
    }
    let a = s.accounts.get(&A).unwrap();
    assert_eq!(a.counterparties.len(), MAX_COUNTERPARTIES);
    assert_eq!(a.devices.len(), MAX_DEVICES);
    assert_eq!(a.recent.len(), RING);
    // The most recent ones are remembered.
    let f = s.compute(&cand(A, 1_000_000 + 499, 1_000, T0 + 600 * NS_PER_SEC));
    assert_eq!(get(&f, Feature::NewCounterparty), 0.0);
    let f = s.compute(&cand(A, 1_000_000, 1_000, T0 + 600 * NS_PER_SEC));
    assert_eq!(get(&f, Feature::NewCounterparty), 1.0);
}

#[test]
fn accounts_are_capped() {
    let mut s = FeatureStore::new(FeatureConfig {
        max_accounts: 50,
        ..FeatureConfig::default()
    });
    for i in 0..200u64 {
        s.update(&cand(u128::from(i) * 2, u128::from(i) * 2 + 1, 10, T0 + i));
    }
    assert!(s.tracked_accounts() <= 50);
    assert!(s.evicted_accounts() >= 150);
}

#[test]
fn hour_of_day_and_rarity() {
    let mut s = store();
    for d in 0..10u64 {
        s.update(&cand(A, B, 1_000, T0 + d * DAY + 14 * HOUR));
    }
    let day = s.compute(&cand(A, B, 1_000, T0 + 11 * DAY + 14 * HOUR + 5 * MINUTE));
    let night = s.compute(&cand(A, B, 1_000, T0 + 11 * DAY + 3 * HOUR));
    assert_eq!(get(&day, Feature::HourOfDay), 14.0);
    assert_eq!(get(&night, Feature::HourOfDay), 3.0);
    assert!(get(&day, Feature::HourRarity) < 0.1);
    assert!(get(&night, Feature::HourRarity) > 0.9);
    // Too little history: missing.
    let fresh = s.compute(&cand(B, A, 1, T0));
    assert!(get(&fresh, Feature::HourRarity).is_nan());
}

#[test]
fn channel_and_merchant_category() {
    let s = store();
    let mut c = cand(A, B, 1, T0);
    c.context.channel = Channel::Atm;
    c.context.merchant_category = 6011;
    let f = s.compute(&c);
    assert_eq!(get(&f, Feature::ChannelCode), 5.0);
    assert_eq!(get(&f, Feature::MerchantCategory), 6011.0);
}

#[test]
fn distance_speed_and_home() {
    let mut s = store();
    for i in 0..5u64 {
        s.update(&cand(A, B, 1_000, T0 + i * HOUR));
    }
    // Paris to New York (about 5,840 km) ten minutes later.
    let mut c = cand(A, B, 1_000, T0 + 4 * HOUR + 10 * MINUTE);
    c.context.location = Some(GeoPoint {
        lat_micro: 40_710_000,
        lon_micro: -74_010_000,
    });
    let f = s.compute(&c);
    let d = get(&f, Feature::DistancePrevKm);
    assert!((5_700.0..6_000.0).contains(&d), "{d}");
    assert!(get(&f, Feature::SpeedKmh) > 30_000.0);
    assert!(get(&f, Feature::DistanceHomeKm) > 5_000.0);
    let near = s.compute(&cand(A, B, 1_000, T0 + 5 * HOUR));
    assert!(get(&near, Feature::DistancePrevKm) < 0.001);
    assert!(get(&near, Feature::DistanceHomeKm) < 0.001);
    // One trip barely moves the usual location.
    s.update(&c);
    let back = s.compute(&cand(A, B, 1_000, T0 + 30 * HOUR));
    assert!(get(&back, Feature::DistanceHomeKm) < 200.0);
    assert!(get(&back, Feature::SpeedKmh) < 300.0);
}

#[test]
fn account_ages() {
    let s = store();
    let mut c = cand(A, B, 1, T0 + 2 * DAY);
    c.credit_account_created_ns = T0;
    let f = s.compute(&c);
    assert!((get(&f, Feature::AccountAgeDays) - 102.0).abs() < 1e-9);
    assert!((get(&f, Feature::CreditAgeDays) - 2.0).abs() < 1e-9);
    c.debit_account_created_ns = 0;
    assert!(get(&s.compute(&c), Feature::AccountAgeDays).is_nan());
}

#[test]
fn fan_in_fan_out_and_pass_through() {
    let mut s = store();
    // Five payers pay A 20,000 each, then A pays out.
    for i in 0..5u64 {
        s.update(&cand(900 + u128::from(i), A, 20_000, T0 + i * 10 * MINUTE));
    }
    let mut out = cand(A, B, 90_000, T0 + HOUR);
    out.debit_available = 100_000;
    let f = s.compute(&out);
    assert_eq!(get(&f, Feature::FanIn24h), 5.0);
    assert_eq!(get(&f, Feature::FanOut24h), 0.0);
    assert_eq!(get(&f, Feature::InSum24h), 100_000.0);
    assert!((get(&f, Feature::PassThrough) - 0.9).abs() < 1e-9);
    assert!((get(&f, Feature::MinutesSinceIn) - 20.0).abs() < 1e-9);
    // Credit side: B sees nothing yet; A as a payee has five payers.
    let to_a = s.compute(&cand(B, A, 1, T0 + HOUR));
    assert_eq!(get(&to_a, Feature::CreditFanIn24h), 5.0);
    assert_eq!(get(&to_a, Feature::CreditInCount24h), 5.0);
    assert_eq!(get(&to_a, Feature::CreditInHistory), 5.0);
    assert!((get(&to_a, Feature::CreditAmountRatio) - 1.0 / 20_000.0).abs() < 1e-9);
    for i in 0..3u64 {
        s.update(&cand(
            A,
            700 + u128::from(i),
            10_000,
            T0 + HOUR + i * MINUTE,
        ));
    }
    let f = s.compute(&cand(A, B, 1, T0 + 2 * HOUR));
    assert_eq!(get(&f, Feature::FanOut24h), 3.0);
    let later = s.compute(&cand(A, B, 1, T0 + 3 * DAY));
    assert_eq!(get(&later, Feature::FanIn24h), 0.0);
    assert!(get(&later, Feature::PassThrough).is_nan());
}

#[test]
fn reporting_threshold_closeness() {
    let mut s = store();
    let near = s.compute(&cand(A, B, 950_000, T0));
    assert_eq!(get(&near, Feature::NearThreshold), 1.0);
    assert!((get(&near, Feature::ThresholdRatio) - 0.95).abs() < 1e-12);
    assert_eq!(
        get(
            &s.compute(&cand(A, B, 1_000_000, T0)),
            Feature::NearThreshold
        ),
        0.0
    );
    assert_eq!(
        get(&s.compute(&cand(A, B, 899_999, T0)), Feature::NearThreshold),
        0.0
    );
    for i in 0..3u64 {
        s.update(&cand(800, A, 960_000, T0 + i * HOUR));
    }
    let f = s.compute(&cand(801, A, 970_000, T0 + 4 * HOUR));
    assert_eq!(get(&f, Feature::CreditNearThreshold24h), 3.0);
    let f = s.compute(&cand(A, B, 970_000, T0 + 4 * HOUR));
    assert_eq!(get(&f, Feature::NearThresholdCount24h), 3.0);
}

#[test]
fn dormancy() {
    let mut s = store();
    s.update(&cand(A, B, 1_000, T0));
    let f = s.compute(&cand(A, B, 1_000, T0 + 90 * DAY));
    assert!((get(&f, Feature::DormancyDays) - 90.0).abs() < 1e-9);
    assert!(get(&s.compute(&cand(999, B, 1, T0)), Feature::DormancyDays).is_nan());
}

#[test]
fn drain_share() {
    let s = store();
    let mut c = cand(A, B, 900, T0);
    c.debit_available = 1_000;
    assert!((get(&s.compute(&c), Feature::DrainShare) - 0.9).abs() < 1e-12);
    c.debit_available = 0;
    assert!(get(&s.compute(&c), Feature::DrainShare).is_nan());
}

#[test]
fn tiny_amount_bursts() {
    let mut s = store();
    for i in 0..6u64 {
        s.update(&cand(A, 500 + u128::from(i), 150, T0 + i * 20 * NS_PER_SEC));
    }
    s.update(&cand(A, B, 50_000, T0 + 200 * NS_PER_SEC));
    let f = s.compute(&cand(A, 600, 99, T0 + 300 * NS_PER_SEC));
    assert_eq!(get(&f, Feature::IsTiny), 1.0);
    assert_eq!(get(&f, Feature::TinyCount1h), 6.0);
    let f = s.compute(&cand(A, 600, 201, T0 + 2 * HOUR));
    assert_eq!(get(&f, Feature::IsTiny), 0.0);
    assert_eq!(get(&f, Feature::TinyCount1h), 0.0);
}

#[test]
fn seconds_since_last_out() {
    let mut s = store();
    s.update(&cand(A, B, 1, T0));
    let f = s.compute(&cand(A, B, 1, T0 + 99 * NS_PER_SEC));
    assert!((get(&f, Feature::SecondsSinceOut) - 2.0).abs() < 1e-12);
    let f = s.compute(&cand(B, A, 1, T0 + 99 * NS_PER_SEC));
    assert!(get(&f, Feature::SecondsSinceOut).is_nan());
    assert_eq!(get(&f, Feature::CreditOutCount24h), 1.0);
}

#[test]
fn distance_is_symmetric_and_zero_on_same_point() {
    let p = GeoPoint {
        lat_micro: 1,
        lon_micro: 2,
    };
    let q = GeoPoint {
        lat_micro: 10_000_000,
        lon_micro: 0,
    };
    assert!(distance_km(p, p) < 1e-9);
    assert!((distance_km(p, q) - distance_km(q, p)).abs() < 1e-9);
    assert!((distance_km(p, q) - 1_112.0).abs() < 5.0);
}

#[test]
fn batch_features_see_earlier_candidates_of_the_batch() {
    let mut s = store();
    s.update(&cand(A, B, 1_000, T0));
    let batch: Vec<Candidate> = (1..=6u64)
        .map(|i| cand(A, 500 + u128::from(i), 100, T0 + i * NS_PER_SEC))
        .collect();
    let mut out = Vec::new();
    s.compute_batch(&batch, &mut out);
    assert_eq!(out.len(), 6);
    for (i, f) in out.iter().enumerate() {
        assert_eq!(get(f, Feature::OutCount1h), (i + 1) as f64);
        assert_eq!(get(f, Feature::TinyCount1h), i as f64);
    }
    // The store itself is unchanged, and single candidates match `compute`.
    assert_eq!(get(&s.compute(&batch[5]), Feature::OutCount1h), 1.0);
    let mut one = Vec::new();
    s.compute_batch(&batch[..1], &mut one);
    assert_eq!(
        one[0].map(f64::to_bits),
        s.compute(&batch[0]).map(f64::to_bits)
    );
    // A batch of unrelated accounts gives the same as one by one.
    let unrelated: Vec<Candidate> = (0..5u64)
        .map(|i| cand(10 + u128::from(i), 20 + u128::from(i), 100, T0 + i))
        .collect();
    let mut out = Vec::new();
    s.compute_batch(&unrelated, &mut out);
    for (c, f) in unrelated.iter().zip(&out) {
        assert_eq!(f.map(f64::to_bits), s.compute(c).map(f64::to_bits));
    }
}
