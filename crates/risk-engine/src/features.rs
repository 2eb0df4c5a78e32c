//! Features, computed incrementally in memory with bounded state per account.
//!
//! [`FeatureStore::compute`] reads the state *before* a candidate (a transfer's own
//! features never include itself); [`FeatureStore::update`] folds a committed transfer
//! into the state of both its accounts. Per account the state is bounded: a ring of the
//! last [`RING`] movements, at most [`MAX_COUNTERPARTIES`] remembered counterparties,
//! [`MAX_DEVICES`] devices and [`MAX_MCCS`] merchant categories, a 24-bucket hour
//! histogram and a few running moments. The number of accounts is capped too
//! ([`FeatureConfig::max_accounts`]); the least recently active of a small sample is
//! evicted when the cap is reached.
//!
//! Missing values are `NaN` (no history, unknown device or location): the supervised
//! model learns a direction for them, and no rule condition holds on them.

// The maths here is features and scores (ratios, distances, moments), never money:
// amounts and their sums stay integers of minor units; a feature value is formed from
// them at the last step (`minor_units`, `ratio`), and nothing is summed in floats.
#![allow(clippy::float_arithmetic)]

/// An amount (or a sum of amounts) in minor units, as a feature value.
fn minor_units(amount: u128) -> f64 {
    amount as f64
}

/// `numerator / denominator` of two amounts in minor units, as a feature value (the
/// denominator floored at one minor unit).
fn ratio(numerator: u128, denominator: u128) -> f64 {
    minor_units(numerator) / minor_units(denominator.max(1))
}

use corebank_screening::{Candidate, GeoPoint};
use std::collections::{HashMap, VecDeque};

macro_rules! features {
    ($( $variant:ident => $name:literal, $doc:literal; )*) => {
        /// A feature of [`FEATURE_NAMES`]; `feature as usize` is its index.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Feature {
            $( #[doc = $doc] $variant, )*
        }

        impl Feature {
            /// Every feature, in vector order.
            pub const ALL: &'static [Feature] = &[$(Feature::$variant,)*];

            /// The stable name (a CSV column, a rules-file feature).
            pub const fn name(self) -> &'static str {
                match self { $(Feature::$variant => $name,)* }
            }

            /// What it measures.
            pub const fn description(self) -> &'static str {
                match self { $(Feature::$variant => $doc,)* }
            }

            /// Its position in a [`FeatureVector`].
            pub const fn index(self) -> usize {
                self as usize
            }

            /// The feature with this name.
            pub fn from_name(name: &str) -> Option<Feature> {
                Self::ALL.iter().copied().find(|f| f.name() == name)
            }
        }

        /// The names of the feature vector, in order.
        pub const FEATURE_NAMES: &[&str] = &[$($name,)*];
    };
}

features! {
    AmountLog => "amount_log10", "log10(1 + amount in minor units).";
    AmountRatio => "amount_ratio_mean", "Amount over the mean of the debit account's past outgoing amounts.";
    AmountZ => "amount_zscore", "Deviation of log(amount) from the debit account's past outgoing amounts, in (floored) standard deviations.";
    OutCount1m => "out_count_1m", "Transfers out of the debit account in the last minute.";
    OutCount1h => "out_count_1h", "Transfers out of the debit account in the last hour.";
    OutCount24h => "out_count_24h", "Transfers out of the debit account in the last 24 hours.";
    OutSum1h => "out_sum_1h", "Minor units out of the debit account in the last hour.";
    OutSum24h => "out_sum_24h", "Minor units out of the debit account in the last 24 hours.";
    OutHistory => "out_history", "Transfers out of the debit account ever seen (saturating).";
    NewCounterparty => "new_counterparty", "1 when the debit account has not paid the credit account before.";
    HourOfDay => "hour_of_day", "Hour of day (UTC) of the transfer.";
    HourRarity => "hour_rarity", "1 minus the share of the debit account's past activity within an hour of this hour.";
    ChannelCode => "channel", "The channel's stable number.";
    MerchantCategory => "merchant_category", "ISO 18245 merchant category (0 when none).";
    NewMerchantCategory => "new_merchant_category", "1 when the debit account has not paid this merchant category before.";
    NewDevice => "new_device", "1 when the device is new to the debit account (missing when unknown).";
    DistancePrevKm => "distance_prev_km", "Kilometres from the debit account's previous location.";
    SpeedKmh => "speed_kmh", "Implied speed from the previous location, km/h.";
    DistanceHomeKm => "distance_home_km", "Kilometres from the debit account's usual location.";
    AccountAgeDays => "account_age_days", "Age of the debit account in days.";
    FanIn24h => "fan_in_24h", "Distinct payers into the debit account in the last 24 hours.";
    FanOut24h => "fan_out_24h", "Distinct payees of the debit account in the last 24 hours.";
    InSum24h => "in_sum_24h", "Minor units into the debit account in the last 24 hours.";
    PassThrough => "pass_through_ratio", "(Out in 24 h + amount) over money in during 24 h.";
    MinutesSinceIn => "minutes_since_last_in", "Minutes since money last came into the debit account.";
    ThresholdRatio => "threshold_ratio", "Amount over the reporting threshold.";
    NearThreshold => "near_threshold", "1 when the amount is within 10% under the reporting threshold.";
    NearThresholdCount24h => "near_threshold_count_24h", "Near-threshold movements of the debit account in 24 hours.";
    DormancyDays => "dormancy_days", "Days since the debit account's last activity.";
    DrainShare => "drain_share", "Amount over the debit account's available balance.";
    IsTiny => "is_tiny", "1 when the amount is at most the tiny-amount limit.";
    TinyCount1h => "tiny_count_1h", "Tiny payments out of the debit account in the last hour.";
    SecondsSinceOut => "log_seconds_since_out", "log10(1 + seconds since the debit account's last outgoing transfer).";
    CreditInCount24h => "credit_in_count_24h", "Transfers into the credit account in 24 hours.";
    CreditFanIn24h => "credit_fan_in_24h", "Distinct payers into the credit account in 24 hours.";
    CreditNearThreshold24h => "credit_near_threshold_count_24h", "Near-threshold movements of the credit account in 24 hours.";
    CreditAgeDays => "credit_account_age_days", "Age of the credit account in days.";
    CreditAmountRatio => "credit_amount_ratio", "Amount over the mean of the credit account's past incoming amounts.";
    CreditInHistory => "credit_in_history", "Transfers into the credit account ever seen (saturating).";
    CreditOutCount24h => "credit_out_count_24h", "Transfers out of the credit account in 24 hours.";
}

/// How many features there are.
pub const FEATURE_COUNT: usize = FEATURE_NAMES.len();

/// One candidate's features, in [`FEATURE_NAMES`] order (`NaN` = missing).
pub type FeatureVector = [f64; FEATURE_COUNT];

/// Movements remembered per account (the sliding windows look at these).
pub const RING: usize = 48;
/// Counterparties remembered per account.
pub const MAX_COUNTERPARTIES: usize = 48;
/// Devices remembered per account.
pub const MAX_DEVICES: usize = 8;
/// Merchant categories remembered per account.
pub const MAX_MCCS: usize = 16;

const NS_PER_SEC: u64 = 1_000_000_000;
const MINUTE: u64 = 60 * NS_PER_SEC;
const HOUR: u64 = 3_600 * NS_PER_SEC;
const DAY: u64 = 86_400 * NS_PER_SEC;

/// What the features need to know beyond the candidates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureConfig {
    /// The reporting threshold, minor units (structuring stays just under it).
    pub reporting_threshold: u128,
    /// Amounts at or under this are tiny (card testing), minor units.
    pub tiny_amount: u128,
    /// At most this many accounts are tracked.
    pub max_accounts: usize,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            reporting_threshold: 1_000_000,
            tiny_amount: 200,
            max_accounts: 500_000,
        }
    }
}

const FLAG_OUT: u8 = 1;
const FLAG_TINY: u8 = 2;
const FLAG_NEAR: u8 = 4;

#[derive(Clone, Copy, Debug)]
struct Movement {
    ts: u64,
    amount: u64,
    party: u32,
    flags: u8,
}

/// Running amount moments: the mean amount in minor units (integer), and the mean and
/// variance of the log-amount (a feature); plain averages over the first 64 values,
/// exponentially weighted after.
#[derive(Clone, Copy, Debug, Default)]
struct Moments {
    n: u32,
    mean_log: f64,
    var_log: f64,
    mean_minor: u128,
}

impl Moments {
    fn add(&mut self, amount: u128) {
        self.n = self.n.saturating_add(1);
        let k = u128::from(self.n.min(64));
        self.mean_minor = if amount >= self.mean_minor {
            self.mean_minor + (amount - self.mean_minor) / k
        } else {
            self.mean_minor - (self.mean_minor - amount) / k
        };
        let x = minor_units(amount).ln_1p();
        let w = 1.0 / f64::from(self.n.min(64));
        let d = x - self.mean_log;
        self.mean_log += w * d;
        self.var_log = (1.0 - w) * (self.var_log + w * d * d);
    }
}

#[derive(Clone, Debug, Default)]
struct AccountState {
    created_ns: u64,
    recent: VecDeque<Movement>,
    out: Moments,
    inc: Moments,
    counterparties: Vec<u32>,
    devices: Vec<u64>,
    mccs: Vec<u16>,
    last_location: Option<(GeoPoint, u64)>,
    home: Option<(f64, f64)>,
    locations: u32,
    hours: [u16; 24],
    hours_total: u32,
    last_activity: u64,
    last_out: u64,
    last_in: u64,
}

/// Sums over the ring for one account and one window set.
#[derive(Default)]
struct Windows {
    out_1m: u32,
    out_1h: u32,
    out_24h: u32,
    out_sum_1h: u128,
    out_sum_24h: u128,
    in_24h: u32,
    in_sum_24h: u128,
    tiny_1h: u32,
    near_24h: u32,
    fan_in: u32,
    fan_out: u32,
}

impl AccountState {
    fn windows(&self, now: u64) -> Windows {
        let mut w = Windows::default();
        let mut payers = [0u32; RING];
        let mut payees = [0u32; RING];
        let (mut np, mut nq) = (0usize, 0usize);
        for m in self.recent.iter().rev() {
            let age = now.saturating_sub(m.ts);
            if age > DAY {
                break;
            }
            let amount = u128::from(m.amount);
            if m.flags & FLAG_NEAR != 0 {
                w.near_24h += 1;
            }
            if m.flags & FLAG_OUT != 0 {
                w.out_24h += 1;
                w.out_sum_24h = w.out_sum_24h.saturating_add(amount);
                if age <= HOUR {
                    w.out_1h += 1;
                    w.out_sum_1h = w.out_sum_1h.saturating_add(amount);
                    if m.flags & FLAG_TINY != 0 {
                        w.tiny_1h += 1;
                    }
                }
                if age <= MINUTE {
                    w.out_1m += 1;
                }
                if let Some(slot) = payees.get_mut(nq) {
                    *slot = m.party;
                    nq += 1;
                }
            } else {
                w.in_24h += 1;
                w.in_sum_24h = w.in_sum_24h.saturating_add(amount);
                if let Some(slot) = payers.get_mut(np) {
                    *slot = m.party;
                    np += 1;
                }
            }
        }
        w.fan_in = distinct(payers.get_mut(..np).unwrap_or(&mut []));
        w.fan_out = distinct(payees.get_mut(..nq).unwrap_or(&mut []));
        w
    }

    fn hour_rarity(&self, hour: usize) -> f64 {
        if self.hours_total < 5 {
            return f64::NAN;
        }
        let near: u32 = [hour + 23, hour, hour + 1]
            .iter()
            .map(|h| u32::from(self.hours.get(h % 24).copied().unwrap_or(0)))
            .sum();
        1.0 - (f64::from(near) + 0.5) / (f64::from(self.hours_total) + 1.0)
    }

    fn push(&mut self, m: Movement) {
        if self.recent.len() >= RING {
            self.recent.pop_front();
        }
        self.recent.push_back(m);
    }

    fn touch_hour(&mut self, hour: usize) {
        if let Some(h) = self.hours.get_mut(hour) {
            *h = h.saturating_add(1);
        }
        self.hours_total += 1;
        if self.hours_total >= 2_000 {
            for h in &mut self.hours {
                *h /= 2;
            }
            self.hours_total = self.hours.iter().map(|&h| u32::from(h)).sum();
        }
    }
}

fn distinct(v: &mut [u32]) -> u32 {
    v.sort_unstable();
    let mut n = 0u32;
    let mut prev = None;
    for &x in v.iter() {
        if prev != Some(x) {
            n += 1;
            prev = Some(x);
        }
    }
    n
}

/// The two halves of an id, xored.
pub(crate) fn fold(id: u128) -> u64 {
    let lo = u64::try_from(id & u128::from(u64::MAX)).unwrap_or(0);
    let hi = u64::try_from(id >> 64).unwrap_or(0);
    lo ^ hi
}

/// A 32-bit tag of an account id (counterparty sets store tags, not ids).
fn tag(id: u128) -> u32 {
    let mixed = fold(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    u32::try_from(mixed >> 32).unwrap_or(0)
}

/// Remembers `x` in a bounded most-recently-used list; true when it was new.
fn remember<T: PartialEq + Copy>(list: &mut Vec<T>, x: T, cap: usize) -> bool {
    if let Some(pos) = list.iter().position(|&y| y == x) {
        let v = list.remove(pos);
        list.push(v);
        false
    } else {
        if list.len() >= cap {
            list.remove(0);
        }
        list.push(x);
        true
    }
}

/// Great-circle distance in kilometres.
pub fn distance_km(a: GeoPoint, b: GeoPoint) -> f64 {
    haversine(
        f64::from(a.lat_micro) / 1e6,
        f64::from(a.lon_micro) / 1e6,
        f64::from(b.lat_micro) / 1e6,
        f64::from(b.lon_micro) / 1e6,
    )
}

fn haversine(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371.0 * h.sqrt().min(1.0).asin()
}

fn age_days(now: u64, created: u64) -> f64 {
    if created == 0 {
        f64::NAN
    } else {
        now.saturating_sub(created) as f64 / DAY as f64
    }
}

/// Per-account state of every tracked account, bounded.
#[derive(Debug)]
pub struct FeatureStore {
    config: FeatureConfig,
    accounts: HashMap<u128, AccountState, foldhash::fast::FixedState>,
    evicted: u64,
}

impl FeatureStore {
    /// An empty store.
    pub fn new(config: FeatureConfig) -> Self {
        Self {
            config,
            accounts: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x5EED)),
            evicted: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// Accounts tracked now.
    pub fn tracked_accounts(&self) -> usize {
        self.accounts.len()
    }

    /// Accounts evicted because of the cap.
    pub fn evicted_accounts(&self) -> u64 {
        self.evicted
    }

    fn is_tiny(&self, amount: u128) -> bool {
        amount <= self.config.tiny_amount
    }

    fn is_near(&self, amount: u128) -> bool {
        let t = self.config.reporting_threshold;
        t > 0 && amount < t && amount.saturating_mul(10) >= t.saturating_mul(9)
    }

    /// The features of `c` from the state before it.
    pub fn compute(&self, c: &Candidate) -> FeatureVector {
        self.compute_from(
            c,
            self.accounts.get(&c.debit_account),
            self.accounts.get(&c.credit_account),
        )
    }

    /// The features of each candidate of a batch, in order, each seeing the earlier
    /// candidates of the batch as if they had committed (a burst inside one batch
    /// counts) without changing the store.
    pub fn compute_batch(&self, batch: &[Candidate], out: &mut Vec<FeatureVector>) {
        out.reserve(batch.len());
        if batch.len() < 2 {
            out.extend(batch.iter().map(|c| self.compute(c)));
            return;
        }
        let hasher = foldhash::fast::FixedState::with_seed(1);
        let mut seen: HashMap<u128, u32, _> =
            HashMap::with_capacity_and_hasher(batch.len() * 2, hasher.clone());
        for c in batch {
            *seen.entry(c.debit_account).or_insert(0) += 1;
            *seen.entry(c.credit_account).or_insert(0) += 1;
        }
        let mut overlay: HashMap<u128, AccountState, _> = HashMap::with_hasher(hasher);
        for c in batch {
            let f = self.compute_from(
                c,
                overlay
                    .get(&c.debit_account)
                    .or_else(|| self.accounts.get(&c.debit_account)),
                overlay
                    .get(&c.credit_account)
                    .or_else(|| self.accounts.get(&c.credit_account)),
            );
            out.push(f);
            let m = self.movement(c);
            for (account, debit) in [(c.debit_account, true), (c.credit_account, false)] {
                if seen.get(&account).copied().unwrap_or(0) < 2 {
                    continue;
                }
                let state = overlay
                    .entry(account)
                    .or_insert_with(|| self.accounts.get(&account).cloned().unwrap_or_default());
                if debit {
                    apply_debit(state, c, m);
                } else {
                    apply_credit(state, c, m);
                }
            }
        }
    }

    fn movement(&self, c: &Candidate) -> Movement {
        let mut flags = FLAG_OUT;
        if self.is_near(c.amount) {
            flags |= FLAG_NEAR;
        }
        if self.is_tiny(c.amount) {
            flags |= FLAG_TINY;
        }
        Movement {
            ts: c.timestamp_ns,
            amount: u64::try_from(c.amount).unwrap_or(u64::MAX),
            party: 0,
            flags,
        }
    }

    fn compute_from(
        &self,
        c: &Candidate,
        debit: Option<&AccountState>,
        credit: Option<&AccountState>,
    ) -> FeatureVector {
        let mut f = [f64::NAN; FEATURE_COUNT];
        let mut set = |feature: Feature, v: f64| {
            if let Some(slot) = f.get_mut(feature.index()) {
                *slot = v;
            }
        };
        let now = c.timestamp_ns;
        let amount = c.amount;
        let hour = usize::try_from((now / NS_PER_SEC) % 86_400 / 3_600).unwrap_or(0);
        set(
            Feature::AmountLog,
            minor_units(amount).ln_1p() / std::f64::consts::LN_10,
        );
        set(Feature::HourOfDay, hour as f64);
        set(Feature::ChannelCode, f64::from(c.context.channel as u8));
        set(
            Feature::MerchantCategory,
            f64::from(c.context.merchant_category),
        );
        let threshold = self.config.reporting_threshold;
        if threshold > 0 {
            set(Feature::ThresholdRatio, ratio(amount, threshold));
        }
        set(
            Feature::NearThreshold,
            f64::from(u8::from(self.is_near(c.amount))),
        );
        set(Feature::IsTiny, f64::from(u8::from(self.is_tiny(c.amount))));
        set(
            Feature::AccountAgeDays,
            age_days(now, c.debit_account_created_ns),
        );
        set(
            Feature::CreditAgeDays,
            age_days(now, c.credit_account_created_ns),
        );
        if c.debit_available > 0 {
            set(
                Feature::DrainShare,
                ratio(amount, c.debit_available).min(10.0),
            );
        }

        let zero_windows = |set: &mut dyn FnMut(Feature, f64)| {
            for feature in [
                Feature::OutCount1m,
                Feature::OutCount1h,
                Feature::OutCount24h,
                Feature::OutSum1h,
                Feature::OutSum24h,
                Feature::OutHistory,
                Feature::FanIn24h,
                Feature::FanOut24h,
                Feature::InSum24h,
                Feature::NearThresholdCount24h,
                Feature::TinyCount1h,
            ] {
                set(feature, 0.0);
            }
        };
        match debit {
            None => {
                zero_windows(&mut set);
                set(Feature::NewCounterparty, 1.0);
                if c.context.merchant_category != 0 {
                    set(Feature::NewMerchantCategory, 1.0);
                }
                if c.context.device != 0 {
                    set(Feature::NewDevice, 1.0);
                }
            }
            Some(a) => {
                let w = a.windows(now);
                set(Feature::OutCount1m, f64::from(w.out_1m));
                set(Feature::OutCount1h, f64::from(w.out_1h));
                set(Feature::OutCount24h, f64::from(w.out_24h));
                set(Feature::OutSum1h, minor_units(w.out_sum_1h));
                set(Feature::OutSum24h, minor_units(w.out_sum_24h));
                set(Feature::OutHistory, f64::from(a.out.n));
                set(Feature::FanIn24h, f64::from(w.fan_in));
                set(Feature::FanOut24h, f64::from(w.fan_out));
                set(Feature::InSum24h, minor_units(w.in_sum_24h));
                set(Feature::NearThresholdCount24h, f64::from(w.near_24h));
                set(Feature::TinyCount1h, f64::from(w.tiny_1h));
                if w.in_sum_24h > 0 {
                    set(
                        Feature::PassThrough,
                        ratio(w.out_sum_24h.saturating_add(amount), w.in_sum_24h).min(10.0),
                    );
                }
                if a.last_in > 0 {
                    set(
                        Feature::MinutesSinceIn,
                        now.saturating_sub(a.last_in) as f64 / MINUTE as f64,
                    );
                }
                if a.last_out > 0 {
                    set(
                        Feature::SecondsSinceOut,
                        (1.0 + now.saturating_sub(a.last_out) as f64 / NS_PER_SEC as f64).log10(),
                    );
                }
                if a.last_activity > 0 {
                    set(
                        Feature::DormancyDays,
                        now.saturating_sub(a.last_activity) as f64 / DAY as f64,
                    );
                }
                if a.out.n > 0 {
                    set(Feature::AmountRatio, ratio(amount, a.out.mean_minor));
                }
                if a.out.n >= 3 {
                    let sd = a.out.var_log.sqrt().max(0.25);
                    set(
                        Feature::AmountZ,
                        (minor_units(amount).ln_1p() - a.out.mean_log) / sd,
                    );
                }
                set(
                    Feature::NewCounterparty,
                    f64::from(u8::from(!a.counterparties.contains(&tag(c.credit_account)))),
                );
                if c.context.merchant_category != 0 {
                    set(
                        Feature::NewMerchantCategory,
                        f64::from(u8::from(!a.mccs.contains(&c.context.merchant_category))),
                    );
                }
                if c.context.device != 0 {
                    set(
                        Feature::NewDevice,
                        f64::from(u8::from(!a.devices.contains(&c.context.device))),
                    );
                }
                set(Feature::HourRarity, a.hour_rarity(hour));
                if let Some(here) = c.context.location {
                    if let Some((prev, at)) = a.last_location {
                        let d = distance_km(prev, here);
                        set(Feature::DistancePrevKm, d);
                        let hours =
                            (now.saturating_sub(at).max(60 * NS_PER_SEC)) as f64 / HOUR as f64;
                        set(Feature::SpeedKmh, d / hours);
                    }
                    if let Some((lat, lon)) = a.home {
                        set(
                            Feature::DistanceHomeKm,
                            haversine(
                                lat,
                                lon,
                                f64::from(here.lat_micro) / 1e6,
                                f64::from(here.lon_micro) / 1e6,
                            ),
                        );
                    }
                }
            }
        }

        match credit {
            None => {
                for feature in [
                    Feature::CreditInCount24h,
                    Feature::CreditFanIn24h,
                    Feature::CreditNearThreshold24h,
                    Feature::CreditInHistory,
                    Feature::CreditOutCount24h,
                ] {
                    set(feature, 0.0);
                }
            }
            Some(a) => {
                let w = a.windows(now);
                set(Feature::CreditInCount24h, f64::from(w.in_24h));
                set(Feature::CreditFanIn24h, f64::from(w.fan_in));
                set(Feature::CreditNearThreshold24h, f64::from(w.near_24h));
                set(Feature::CreditInHistory, f64::from(a.inc.n));
                set(Feature::CreditOutCount24h, f64::from(w.out_24h));
                if a.inc.n > 0 {
                    set(Feature::CreditAmountRatio, ratio(amount, a.inc.mean_minor));
                }
            }
        }
        f
    }

    fn entry(&mut self, id: u128) -> &mut AccountState {
        if !self.accounts.contains_key(&id) && self.accounts.len() >= self.config.max_accounts {
            // Evict the least recently active account of a small (deterministic) sample.
            let victim = self
                .accounts
                .iter()
                .take(8)
                .min_by_key(|(_, a)| a.last_activity)
                .map(|(k, _)| *k);
            if let Some(k) = victim {
                self.accounts.remove(&k);
                self.evicted += 1;
            }
        }
        self.accounts.entry(id).or_default()
    }

    /// Folds a committed transfer into the state of both its accounts.
    pub fn update(&mut self, c: &Candidate) {
        let m = self.movement(c);
        apply_debit(self.entry(c.debit_account), c, m);
        apply_credit(self.entry(c.credit_account), c, m);
    }
}

fn apply_debit(d: &mut AccountState, c: &Candidate, m: Movement) {
    let now = c.timestamp_ns;
    let hour = usize::try_from((now / NS_PER_SEC) % 86_400 / 3_600).unwrap_or(0);
    if d.created_ns == 0 {
        d.created_ns = c.debit_account_created_ns;
    }
    d.push(Movement {
        party: tag(c.credit_account),
        ..m
    });
    d.out.add(c.amount);
    remember(
        &mut d.counterparties,
        tag(c.credit_account),
        MAX_COUNTERPARTIES,
    );
    if c.context.device != 0 {
        remember(&mut d.devices, c.context.device, MAX_DEVICES);
    }
    if c.context.merchant_category != 0 {
        remember(&mut d.mccs, c.context.merchant_category, MAX_MCCS);
    }
    if let Some(p) = c.context.location {
        d.last_location = Some((p, now));
        d.locations = d.locations.saturating_add(1);
        let (lat, lon) = (f64::from(p.lat_micro) / 1e6, f64::from(p.lon_micro) / 1e6);
        d.home = Some(match d.home {
            None => (lat, lon),
            Some((hl, ho)) => {
                // A far-away point moves the usual location only slowly.
                let w = if haversine(hl, ho, lat, lon) > 300.0 {
                    0.02
                } else {
                    1.0 / f64::from(d.locations.min(20))
                };
                (hl + w * (lat - hl), ho + w * (lon - ho))
            }
        });
    }
    d.touch_hour(hour);
    d.last_activity = d.last_activity.max(now);
    d.last_out = d.last_out.max(now);
}

fn apply_credit(k: &mut AccountState, c: &Candidate, m: Movement) {
    let now = c.timestamp_ns;
    if k.created_ns == 0 {
        k.created_ns = c.credit_account_created_ns;
    }
    k.push(Movement {
        party: tag(c.debit_account),
        flags: m.flags & !FLAG_OUT,
        ..m
    });
    k.inc.add(c.amount);
    remember(
        &mut k.counterparties,
        tag(c.debit_account),
        MAX_COUNTERPARTIES,
    );
    k.last_activity = k.last_activity.max(now);
    k.last_in = k.last_in.max(now);
}

#[cfg(test)]
mod tests;
