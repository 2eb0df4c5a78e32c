//! A seeded, deterministic generator of synthetic bank traffic with labelled fraud.
//!
//! Customers have profiles (home branch and location, salary, rent, bills, card habits,
//! devices, contacts); every simulated day yields normal events plus injected fraud
//! typologies, each event labelled with `is_fraud` and its [`Typology`]. Amounts are
//! integers of minor units; locations are integer micro-degrees. The simulator tracks
//! every customer account's balance and never debits beyond it.

use corebank_money::Currency;
use std::fmt::Write as _;

const SECONDS_PER_DAY: u64 = 86_400;
const SERIAL_BASE: u64 = 1_000;
const ACCOUNT_BRANCH_FACTOR: u128 = 10_000_000_000;
/// External counterparties (employers, landlords, merchants, outside banks) have ids here.
pub const EXTERNAL_BASE: u128 = 1_000_000_000_000_000;

/// Seeded randomness: the workload's generator (one generator for every synthetic
/// stream of the project), with the few draws this simulator adds.
pub use corebank_workload::Rng;

/// Draws the simulator needs beyond [`Rng`]'s.
trait Draws {
    /// True with probability `ppm` parts per million.
    fn chance_ppm(&mut self, ppm: u64) -> bool;
    /// One of `items` (`None` when empty).
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T>;
    /// Uniform in `-spread..=spread`.
    fn offset(&mut self, spread: u64) -> i64;
}

impl Draws for Rng {
    fn chance_ppm(&mut self, ppm: u64) -> bool {
        self.below(1_000_000) < ppm
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.index(items.len()))
    }

    fn offset(&mut self, spread: u64) -> i64 {
        let v = i64::try_from(self.below(2 * spread + 1)).unwrap_or(0);
        v - i64::try_from(spread).unwrap_or(0)
    }
}

/// A fraud typology (or none, for normal traffic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Typology {
    /// Normal traffic.
    None,
    /// New device and location, then draining the account.
    AccountTakeover,
    /// Bursts of tiny card payments.
    CardTesting,
    /// Fan-in then fast fan-out across branches.
    Mule,
    /// Many cash deposits just under the reporting threshold.
    Structuring,
    /// Card use at two places too far apart for the time between.
    ImpossibleTravel,
    /// A long-dormant account suddenly moves money out.
    DormantReactivation,
    /// First-party bust-out: build trust, then spend everything at once.
    BustOut,
}

impl Typology {
    /// Every fraud typology.
    pub const FRAUD: [Typology; 7] = [
        Typology::AccountTakeover,
        Typology::CardTesting,
        Typology::Mule,
        Typology::Structuring,
        Typology::ImpossibleTravel,
        Typology::DormantReactivation,
        Typology::BustOut,
    ];
    /// Stable snake_case name (`none` for normal traffic).
    pub fn name(self) -> &'static str {
        match self {
            Typology::None => "none",
            Typology::AccountTakeover => "account_takeover",
            Typology::CardTesting => "card_testing",
            Typology::Mule => "mule",
            Typology::Structuring => "structuring",
            Typology::ImpossibleTravel => "impossible_travel",
            Typology::DormantReactivation => "dormant_reactivation",
            Typology::BustOut => "bust_out",
        }
    }
}

/// How the event reached the bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Card payment.
    Card,
    /// Online banking.
    Online,
    /// Mobile app.
    Mobile,
    /// At a branch counter.
    Branch,
    /// At a cash machine.
    Atm,
}

impl Channel {
    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Card => "card",
            Channel::Online => "online",
            Channel::Mobile => "mobile",
            Channel::Branch => "branch",
            Channel::Atm => "atm",
        }
    }
}

/// What kind of movement the event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Salary credited from an employer.
    Salary,
    /// Rent paid out.
    Rent,
    /// A bill paid out.
    Bill,
    /// A card payment at a merchant.
    CardPayment,
    /// A transfer to another customer of the same branch.
    P2p,
    /// A transfer to a customer of another branch.
    CrossBranch,
    /// A transfer from or to an outside bank.
    External,
    /// Cash deposited.
    CashDeposit,
    /// Cash withdrawn.
    CashWithdrawal,
}

impl EventKind {
    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Salary => "salary",
            EventKind::Rent => "rent",
            EventKind::Bill => "bill",
            EventKind::CardPayment => "card_payment",
            EventKind::P2p => "p2p",
            EventKind::CrossBranch => "cross_branch",
            EventKind::External => "external",
            EventKind::CashDeposit => "cash_deposit",
            EventKind::CashWithdrawal => "cash_withdrawal",
        }
    }
}

/// One movement of money, from `debit` to `credit` (either may be external).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Sequence number in the stream, from 0.
    pub id: u64,
    /// Seconds since the start of the simulation.
    pub timestamp: u64,
    /// The account debited (a customer account id, or an external id).
    pub debit: u128,
    /// The account credited.
    pub credit: u128,
    /// What kind of movement.
    pub kind: EventKind,
    /// How it reached the bank.
    pub channel: Channel,
    /// Device id (0 for branch counter operations).
    pub device: u64,
    /// Latitude in micro-degrees.
    pub lat: i64,
    /// Longitude in micro-degrees.
    pub lon: i64,
    /// Merchant category code (0 when not a merchant payment).
    pub merchant_category: u16,
    /// Amount in minor units, always positive.
    pub amount: u128,
    /// Currency.
    pub currency: Currency,
    /// Whether this event is fraudulent.
    pub is_fraud: bool,
    /// The typology it belongs to.
    pub typology: Typology,
}

/// The configuration of a simulation.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed: same seed, same events.
    pub seed: u64,
    /// Number of branches.
    pub branches: u16,
    /// Number of customers (each with one account).
    pub customers: u32,
    /// Simulated days.
    pub days: u32,
    /// Currency of all accounts.
    pub currency: Currency,
    /// Target share of fraudulent events, parts per million.
    pub fraud_rate_ppm: u64,
    /// Relative weights of the typologies, in [`Typology::FRAUD`] order.
    pub typology_weights: [u32; 7],
    /// Cash reporting threshold in minor units (structuring stays just below).
    pub reporting_threshold: u128,
    /// Share of customers that are dormant (no normal activity), parts per million.
    pub dormant_ppm: u64,
    /// No fraud before this day, so that victims have some history first; each
    /// typology then starts on its own day, staggered over the period
    /// ([`Simulator::first_day_of`]).
    pub first_fraud_day: u32,
    /// Chance per customer and day of a new device (a new phone), parts per million.
    pub new_device_ppm: u64,
    /// Chance per customer and day of leaving on a trip far from home, ppm.
    pub travel_ppm: u64,
    /// Share of card and person-to-person payments made at night, ppm.
    pub night_ppm: u64,
    /// Share of person-to-person payments to someone new rather than a contact, ppm.
    pub new_payee_ppm: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            branches: 4,
            customers: 200,
            days: 30,
            currency: Currency::EUR,
            fraud_rate_ppm: 20_000,
            typology_weights: [1; 7],
            reporting_threshold: 1_000_000,
            dormant_ppm: 50_000,
            first_fraud_day: 3,
            new_device_ppm: 3_000,
            travel_ppm: 4_000,
            night_ppm: 20_000,
            new_payee_ppm: 150_000,
        }
    }
}

/// A customer's profile.
#[derive(Debug, Clone)]
pub struct Customer {
    /// The customer's account id (`branch * 10^10 + serial`).
    pub account: u128,
    /// Home branch.
    pub branch: u16,
    /// Home latitude, micro-degrees.
    pub lat: i64,
    /// Home longitude, micro-degrees.
    pub lon: i64,
    /// Day of month (0..28) salary arrives.
    pub salary_day: u32,
    /// Monthly salary, minor units.
    pub salary: u128,
    /// Monthly rent, minor units.
    pub rent: u128,
    /// Monthly bills, minor units.
    pub bills: u128,
    /// Expected card payments per day, in thousandths.
    pub card_per_day_milli: u64,
    /// Usual merchant categories.
    pub merchant_categories: Vec<u16>,
    /// Usual devices.
    pub devices: Vec<u64>,
    /// Person-to-person contacts (indices of other customers).
    pub contacts: Vec<usize>,
    /// No normal activity.
    pub dormant: bool,
}

const MCCS: [u16; 10] = [5411, 5812, 5541, 5912, 5311, 5732, 4121, 5999, 7832, 5651];
const MCC_ELECTRONICS: u16 = 5732;
const MCC_DIGITAL: u16 = 5816;

/// Make the account id of a branch and serial.
pub fn account_id(branch: u16, serial: u64) -> u128 {
    u128::from(branch) * ACCOUNT_BRANCH_FACTOR + u128::from(serial)
}

/// The branch of a customer account id (None for external ids).
pub fn branch_of(account: u128) -> Option<u16> {
    if account >= EXTERNAL_BASE {
        None
    } else {
        u16::try_from(account / ACCOUNT_BRANCH_FACTOR).ok()
    }
}

#[derive(Debug, Clone)]
struct Draft {
    timestamp: u64,
    seq: u64,
    debit: Party,
    credit: Party,
    kind: EventKind,
    channel: Channel,
    device: u64,
    lat: i64,
    lon: i64,
    mcc: u16,
    amount: u128,
    typology: Typology,
}

impl Draft {
    fn channel(mut self, channel: Channel) -> Self {
        self.channel = channel;
        self
    }

    fn device(mut self, device: u64) -> Self {
        self.device = device;
        self
    }

    fn at(mut self, (lat, lon): (i64, i64)) -> Self {
        self.lat = lat;
        self.lon = lon;
        self
    }

    fn mcc(mut self, mcc: u16) -> Self {
        self.mcc = mcc;
        self
    }

    fn typology(mut self, typology: Typology) -> Self {
        self.typology = typology;
        self
    }
}

/// A customer's trip away from home.
#[derive(Debug, Clone, Copy)]
struct Trip {
    until_day: u32,
    lat: i64,
    lon: i64,
}

#[derive(Debug, Clone, Copy)]
enum Party {
    Customer(usize),
    External(u128),
}

/// The simulator: an iterator of [`Event`]s in timestamp order.
#[derive(Debug)]
pub struct Simulator {
    config: SimConfig,
    rng: Rng,
    customers: Vec<Customer>,
    balances: Vec<u128>,
    day: u32,
    buffer: std::collections::VecDeque<Event>,
    next_id: u64,
    seq: u64,
    normal_events: u64,
    fraud_events: u64,
    fraud_era_normal: u64,
    started: Vec<Typology>,
    trips: Vec<Option<Trip>>,
    new_devices: u64,
}

impl Simulator {
    /// A simulator for this configuration.
    pub fn new(config: SimConfig) -> Self {
        let mut rng = Rng::new(config.seed);
        let branches = config.branches.max(1);
        let count = usize::try_from(config.customers).unwrap_or(0);
        let mut customers = Vec::with_capacity(count);
        let mut balances = Vec::with_capacity(count);
        for i in 0..config.customers {
            let branch = u16::try_from(u64::from(i) % u64::from(branches)).unwrap_or(0);
            let serial = SERIAL_BASE + u64::from(i / u32::from(branches));
            let (blat, blon) = branch_centre(branch);
            let salary = u128::from(rng.between(1_500, 6_000)) * 100;
            let mut mccs = Vec::new();
            for _ in 0..rng.between(2, 5) {
                if let Some(&m) = rng.pick(&MCCS) {
                    mccs.push(m);
                }
            }
            let devices = (0..rng.between(1, 2))
                .map(|d| u64::from(i) * 16 + d + 1)
                .collect();
            let contacts = (0..rng.between(1, 5))
                .filter_map(|_| usize::try_from(rng.below(u64::from(config.customers))).ok())
                .filter(|&c| u32::try_from(c).ok() != Some(i))
                .collect();
            let dormant = rng.chance_ppm(config.dormant_ppm);
            customers.push(Customer {
                account: account_id(branch, serial),
                branch,
                lat: blat + rng.offset(50_000),
                lon: blon + rng.offset(50_000),
                salary_day: u32::try_from(rng.below(28)).unwrap_or(0),
                salary,
                rent: salary * u128::from(rng.between(20, 35)) / 100,
                bills: salary * u128::from(rng.between(5, 12)) / 100,
                card_per_day_milli: rng.between(500, 4_000),
                merchant_categories: mccs,
                devices,
                contacts,
                dormant,
            });
            balances.push(u128::from(rng.between(200, 20_000)) * 100);
        }
        Self {
            rng,
            customers,
            balances,
            day: 0,
            buffer: std::collections::VecDeque::new(),
            next_id: 0,
            seq: 0,
            normal_events: 0,
            fraud_events: 0,
            fraud_era_normal: 0,
            started: Vec::new(),
            trips: vec![None; count],
            new_devices: 0,
            config,
        }
    }

    /// The customers.
    pub fn customers(&self) -> &[Customer] {
        &self.customers
    }

    /// The balance the simulator tracks for a customer (by index).
    pub fn balance(&self, customer: usize) -> Option<u128> {
        self.balances.get(customer).copied()
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    fn fresh_device(&mut self) -> u64 {
        self.new_devices += 1;
        0x8000_0000_0000_0000 | self.new_devices
    }

    fn external(&mut self) -> Party {
        Party::External(EXTERNAL_BASE + u128::from(self.rng.below(1_000_000)))
    }

    /// Starts a draft (a builder): normal traffic, online, no device, no place, no
    /// merchant category until set.
    fn draft(
        &mut self,
        timestamp: u64,
        kind: EventKind,
        debit: Party,
        credit: Party,
        amount: u128,
    ) -> Draft {
        self.seq += 1;
        Draft {
            timestamp,
            seq: self.seq,
            debit,
            credit,
            kind,
            channel: Channel::Online,
            device: 0,
            lat: 0,
            lon: 0,
            mcc: 0,
            amount,
            typology: Typology::None,
        }
    }

    /// Where a customer is today (home, or the place of a trip).
    fn whereabouts(&self, c: usize) -> Option<(i64, i64)> {
        let cust = self.customers.get(c)?;
        match self.trips.get(c).copied().flatten() {
            Some(trip) if self.day < trip.until_day => Some((trip.lat, trip.lon)),
            _ => Some((cust.lat, cust.lon)),
        }
    }

    /// Normal life events that make normal traffic less uniform: a new phone, a trip.
    fn life_events(&mut self, c: usize) {
        if self.rng.chance_ppm(self.config.new_device_ppm) {
            let dev = self.fresh_device();
            if let Some(cust) = self.customers.get_mut(c) {
                cust.devices.insert(0, dev);
                cust.devices.truncate(3);
            }
        }
        let travelling = self
            .trips
            .get(c)
            .copied()
            .flatten()
            .is_some_and(|t| self.day < t.until_day);
        if !travelling && self.rng.chance_ppm(self.config.travel_ppm) {
            let Some(cust) = self.customers.get(c) else {
                return;
            };
            let (lat, lon) = (cust.lat, cust.lon);
            // Somewhere 300 to 3,000 km away for 2 to 8 days.
            let dlat = self.rng.offset(15_000_000);
            let dlon = self.rng.offset(25_000_000);
            let trip = Trip {
                until_day: self.day + u32::try_from(self.rng.between(2, 8)).unwrap_or(2),
                lat: (lat + dlat + dlat.signum() * 3_000_000).clamp(-80_000_000, 80_000_000),
                lon: (lon + dlon + dlon.signum() * 3_000_000).clamp(-179_000_000, 179_000_000),
            };
            if let Some(slot) = self.trips.get_mut(c) {
                *slot = Some(trip);
            }
        }
    }

    fn normal_day(&mut self, start: u64, drafts: &mut Vec<Draft>) {
        let dom = self.day % 30;
        let dormant_until = self.config.first_fraud_day.min(2);
        for c in 0..self.customers.len() {
            let Some(cust) = self.customers.get(c) else {
                continue;
            };
            // Dormant customers lived normally in the first days, then stopped.
            if cust.dormant && self.day >= dormant_until {
                continue;
            }
            self.life_events(c);
            let Some(cust) = self.customers.get(c).cloned() else {
                continue;
            };
            let home = (cust.lat, cust.lon);
            let here = self.whereabouts(c).unwrap_or(home);
            let dev = cust.devices.first().copied().unwrap_or(0);
            let t = |rng: &mut Rng, lo: u64, hi: u64| start + rng.between(lo * 3600, hi * 3600 - 1);
            if dom == cust.salary_day {
                let ts = t(&mut self.rng, 1, 6);
                let emp = self.external();
                let d = self
                    .draft(ts, EventKind::Salary, emp, Party::Customer(c), cust.salary)
                    .at(home);
                drafts.push(d);
            }
            if dom == 1 {
                let ts = t(&mut self.rng, 8, 12);
                let landlord = self.external();
                let d = self
                    .draft(ts, EventKind::Rent, Party::Customer(c), landlord, cust.rent)
                    .device(dev)
                    .at(home);
                drafts.push(d);
            }
            if dom == 5 || dom == 20 {
                let ts = t(&mut self.rng, 8, 20);
                let biller = self.external();
                let d = self
                    .draft(
                        ts,
                        EventKind::Bill,
                        Party::Customer(c),
                        biller,
                        cust.bills / 2,
                    )
                    .device(dev)
                    .at(home)
                    .mcc(4900);
                drafts.push(d);
            }
            let cards = cust.card_per_day_milli / 1000
                + u64::from(self.rng.below(1000) < cust.card_per_day_milli % 1000);
            for _ in 0..cards {
                // Now and then at night.
                let ts = if self.rng.chance_ppm(self.config.night_ppm) {
                    t(&mut self.rng, 0, 6)
                } else {
                    t(&mut self.rng, 7, 23)
                };
                let mut mcc = self
                    .rng
                    .pick(&cust.merchant_categories)
                    .copied()
                    .unwrap_or(5999);
                let roll = self.rng.below(1_000);
                let amount = if roll < 30 {
                    // Small change: parking, a coffee, an app.
                    u128::from(self.rng.between(50, 300))
                } else if roll < 36 {
                    // A big purchase now and then.
                    mcc = MCC_ELECTRONICS;
                    u128::from(self.rng.between(300, 2_500)) * 100
                } else {
                    u128::from(self.rng.between(300, 12_000))
                };
                if (36..46).contains(&roll) {
                    mcc = MCC_DIGITAL;
                }
                let loc = (
                    here.0 + self.rng.offset(20_000),
                    here.1 + self.rng.offset(20_000),
                );
                let merchant = self.external();
                let d = self
                    .draft(
                        ts,
                        EventKind::CardPayment,
                        Party::Customer(c),
                        merchant,
                        amount,
                    )
                    .channel(Channel::Card)
                    .device(dev)
                    .at(loc)
                    .mcc(mcc);
                drafts.push(d);
            }
            if self.rng.chance_ppm(150_000) {
                // Mostly a known contact; sometimes someone new.
                let to = if self.rng.chance_ppm(self.config.new_payee_ppm) {
                    self.random_customer(false)
                } else {
                    self.rng.pick(&cust.contacts).copied()
                };
                if let Some(to) = to.filter(|&to| to != c) {
                    let ts = if self.rng.chance_ppm(self.config.night_ppm) {
                        t(&mut self.rng, 0, 6)
                    } else {
                        t(&mut self.rng, 8, 22)
                    };
                    let to_branch = self.customers.get(to).map_or(cust.branch, |x| x.branch);
                    let kind = if to_branch == cust.branch {
                        EventKind::P2p
                    } else {
                        EventKind::CrossBranch
                    };
                    let channel = if self.rng.chance_ppm(500_000) {
                        Channel::Mobile
                    } else {
                        Channel::Online
                    };
                    let amount = if self.rng.chance_ppm(50_000) {
                        u128::from(self.rng.between(500, 3_000)) * 100
                    } else {
                        u128::from(self.rng.between(10, 300)) * 100
                    };
                    let d = self
                        .draft(ts, kind, Party::Customer(c), Party::Customer(to), amount)
                        .channel(channel)
                        .device(dev)
                        .at(here);
                    drafts.push(d);
                }
            }
            if self.rng.chance_ppm(60_000) {
                let ts = t(&mut self.rng, 9, 20);
                let amount = u128::from(self.rng.between(2, 30)) * 1000;
                let cash = self.external();
                let d = self
                    .draft(
                        ts,
                        EventKind::CashWithdrawal,
                        Party::Customer(c),
                        cash,
                        amount,
                    )
                    .channel(Channel::Atm)
                    .device(dev)
                    .at(here);
                drafts.push(d);
            }
            if self.rng.chance_ppm(20_000) {
                let ts = t(&mut self.rng, 9, 17);
                let threshold = self.config.reporting_threshold;
                // Rarely a large legitimate deposit (a car sold), just under the threshold.
                let amount = if self.rng.chance_ppm(30_000) && threshold > 10 {
                    threshold - threshold * u128::from(self.rng.between(1, 9)) / 100
                } else {
                    u128::from(self.rng.between(5, 100)) * 1000
                };
                let cash = self.external();
                let d = self
                    .draft(ts, EventKind::CashDeposit, cash, Party::Customer(c), amount)
                    .channel(Channel::Branch)
                    .at(home);
                drafts.push(d);
            }
        }
    }

    /// The day each typology may first appear: staggered over the period after the
    /// first fraud day, so that incidents do not all start on one day.
    pub fn first_day_of(&self, typology: Typology) -> u32 {
        let first = self
            .config
            .first_fraud_day
            .min(self.config.days.saturating_sub(1));
        let span = self.config.days.saturating_sub(first) / 2;
        let index = Typology::FRAUD
            .iter()
            .position(|&t| t == typology)
            .unwrap_or(0);
        let order = [0u32, 4, 1, 5, 2, 6, 3];
        let slot = order.get(index).copied().unwrap_or(0);
        let mut day = first + span * slot / 7;
        if typology == Typology::DormantReactivation {
            // Dormancy needs time to build up.
            day = day
                .max(self.config.days / 2)
                .min(self.config.days.saturating_sub(1));
        }
        day
    }

    /// A typology whose first day is today has not started yet.
    fn typology_due(&self) -> bool {
        Typology::FRAUD
            .iter()
            .zip(self.config.typology_weights.iter())
            .any(|(t, w)| *w > 0 && self.first_day_of(*t) == self.day && !self.started.contains(t))
    }

    fn pick_typology(&mut self) -> Typology {
        let weights = self.config.typology_weights;
        let eligible: Vec<(Typology, u64)> = Typology::FRAUD
            .iter()
            .zip(weights.iter())
            .filter(|(t, w)| **w > 0 && self.day >= self.first_day_of(**t))
            .map(|(t, w)| (*t, u64::from(*w)))
            .collect();
        // A typology whose first day is today goes first, so that each appears.
        if let Some((t, _)) = eligible
            .iter()
            .find(|(t, _)| self.first_day_of(*t) == self.day && !self.started.contains(t))
        {
            let t = *t;
            self.started.push(t);
            return t;
        }
        let total: u64 = eligible.iter().map(|(_, w)| w).sum();
        if total == 0 {
            return Typology::None;
        }
        let mut r = self.rng.below(total);
        for (t, w) in eligible {
            if r < w {
                if !self.started.contains(&t) {
                    self.started.push(t);
                }
                return t;
            }
            r -= w;
        }
        Typology::None
    }

    fn random_customer(&mut self, dormant: bool) -> Option<usize> {
        let n = u64::try_from(self.customers.len()).unwrap_or(0);
        for _ in 0..64 {
            let i = usize::try_from(self.rng.below(n)).ok()?;
            if self.customers.get(i).map(|c| c.dormant) == Some(dormant) {
                return Some(i);
            }
        }
        None
    }

    /// A customer with money to steal (falls back to any customer).
    fn random_victim(&mut self, dormant: bool) -> Option<usize> {
        for _ in 0..32 {
            let v = self.random_customer(dormant)?;
            if self.balances.get(v).copied().unwrap_or(0) >= 20_000 {
                return Some(v);
            }
        }
        self.random_customer(dormant)
    }

    fn inject(&mut self, typology: Typology, start: u64, drafts: &mut Vec<Draft>) {
        let far = |rng: &mut Rng| {
            (
                rng.between(1, 60_000_000) as i64 - 30_000_000,
                rng.between(1, 120_000_000) as i64 - 60_000_000,
            )
        };
        match typology {
            Typology::None => {}
            Typology::AccountTakeover | Typology::DormantReactivation => {
                let Some(v) = self.random_victim(typology == Typology::DormantReactivation) else {
                    return;
                };
                let Some(c) = self.customers.get(v).cloned() else {
                    return;
                };
                let dev = self.fresh_device();
                // Half the time the fraudster appears near the victim (a proxy).
                let loc = if self.rng.chance_ppm(500_000) {
                    far(&mut self.rng)
                } else {
                    (
                        c.lat + self.rng.offset(200_000),
                        c.lon + self.rng.offset(200_000),
                    )
                };
                let mut ts = start + self.rng.between(0, 20 * 3600);
                let balance = self.balances.get(v).copied().unwrap_or(0);
                let share = u128::from(self.rng.between(50, 95));
                let parts = self.rng.between(2, 4);
                for _ in 0..parts {
                    ts += self.rng.between(60, 900);
                    let amount = balance * share / 100 / u128::from(parts);
                    let to = self.external();
                    let channel = if self.rng.chance_ppm(500_000) {
                        Channel::Online
                    } else {
                        Channel::Mobile
                    };
                    let d = self
                        .draft(ts, EventKind::External, Party::Customer(v), to, amount)
                        .channel(channel)
                        .device(dev)
                        .at(loc)
                        .typology(typology);
                    drafts.push(d);
                }
            }
            Typology::CardTesting => {
                let Some(v) = self.random_victim(false) else {
                    return;
                };
                let dev = self.fresh_device();
                let loc = far(&mut self.rng);
                let mut ts = start + self.rng.between(0, 20 * 3600);
                let mcc = if self.rng.chance_ppm(700_000) {
                    MCC_DIGITAL
                } else {
                    self.rng.pick(&MCCS).copied().unwrap_or(5999)
                };
                for _ in 0..self.rng.between(5, 15) {
                    ts += self.rng.between(5, 120);
                    let amount = u128::from(self.rng.between(1, 200));
                    let m = self.external();
                    let d = self
                        .draft(ts, EventKind::CardPayment, Party::Customer(v), m, amount)
                        .channel(Channel::Card)
                        .device(dev)
                        .at(loc)
                        .mcc(mcc)
                        .typology(typology);
                    drafts.push(d);
                }
            }
            Typology::Mule => {
                let Some(m) = self.random_customer(false) else {
                    return;
                };
                let Some(mule) = self.customers.get(m).cloned() else {
                    return;
                };
                let dev = self.fresh_device();
                let mut ts = start + self.rng.between(0, 10 * 3600);
                let mut total = 0u128;
                for _ in 0..self.rng.between(4, 8) {
                    ts += self.rng.between(60, 1800);
                    let amount = u128::from(self.rng.between(300, 2_000)) * 100;
                    total += amount;
                    let from = self.external();
                    let d = self
                        .draft(ts, EventKind::External, from, Party::Customer(m), amount)
                        .at((mule.lat, mule.lon))
                        .typology(typology);
                    drafts.push(d);
                }
                let outs = self.rng.between(2, 4);
                for _ in 0..outs {
                    ts += self.rng.between(60, 1200);
                    // Fan out to accounts of other branches.
                    let mut to = self.random_customer(false).unwrap_or(m);
                    for _ in 0..8 {
                        if self.customers.get(to).map(|c| c.branch) != Some(mule.branch) {
                            break;
                        }
                        to = self.random_customer(false).unwrap_or(m);
                    }
                    let amount = total * 95 / 100 / u128::from(outs);
                    let d = self
                        .draft(
                            ts,
                            EventKind::CrossBranch,
                            Party::Customer(m),
                            Party::Customer(to),
                            amount,
                        )
                        .channel(Channel::Mobile)
                        .device(dev)
                        .at((mule.lat, mule.lon))
                        .typology(typology);
                    drafts.push(d);
                }
            }
            Typology::Structuring => {
                let Some(s) = self.random_customer(false) else {
                    return;
                };
                let Some(c) = self.customers.get(s).cloned() else {
                    return;
                };
                let mut ts = start + 9 * 3600;
                let threshold = self.config.reporting_threshold;
                for _ in 0..self.rng.between(4, 8) {
                    ts += self.rng.between(600, 3600);
                    let below = threshold * u128::from(self.rng.between(1, 8)) / 100;
                    let channel = if self.rng.chance_ppm(500_000) {
                        Channel::Atm
                    } else {
                        Channel::Branch
                    };
                    let cash = self.external();
                    let d = self
                        .draft(
                            ts,
                            EventKind::CashDeposit,
                            cash,
                            Party::Customer(s),
                            (threshold - below).max(1),
                        )
                        .channel(channel)
                        .at((c.lat, c.lon))
                        .typology(typology);
                    drafts.push(d);
                }
            }
            Typology::ImpossibleTravel => {
                let Some(v) = self.random_victim(false) else {
                    return;
                };
                let Some(c) = self.customers.get(v).cloned() else {
                    return;
                };
                let dev = c.devices.first().copied().unwrap_or(0);
                let here = self.whereabouts(v).unwrap_or((c.lat, c.lon));
                let ts = start + self.rng.between(8 * 3600, 20 * 3600);
                let mcc = self
                    .rng
                    .pick(&c.merchant_categories)
                    .copied()
                    .unwrap_or(5999);
                let m = self.external();
                let first = u128::from(self.rng.between(500, 5_000));
                let d = self
                    .draft(ts, EventKind::CardPayment, Party::Customer(v), m, first)
                    .channel(Channel::Card)
                    .device(dev)
                    .at(here)
                    .mcc(mcc);
                drafts.push(d);
                let loc = (
                    (here.0 + 35_000_000).clamp(-80_000_000, 80_000_000),
                    here.1 - 90_000_000,
                );
                let m = self.external();
                let amount = u128::from(self.rng.between(5_000, 60_000));
                let later = ts + self.rng.between(600, 3600);
                // A cloned card: the victim's usual device id is unknown to the cloner.
                let new_dev = self.fresh_device();
                let mcc = if self.rng.chance_ppm(500_000) {
                    MCC_ELECTRONICS
                } else {
                    mcc
                };
                let d = self
                    .draft(later, EventKind::CardPayment, Party::Customer(v), m, amount)
                    .channel(Channel::Card)
                    .device(new_dev)
                    .at(loc)
                    .mcc(mcc)
                    .typology(typology);
                drafts.push(d);
            }
            Typology::BustOut => {
                let Some(b) = self.random_customer(false) else {
                    return;
                };
                let Some(c) = self.customers.get(b).cloned() else {
                    return;
                };
                let dev = c.devices.first().copied().unwrap_or(0);
                let mut ts = start + self.rng.between(0, 6 * 3600);
                let big = c.salary * u128::from(self.rng.between(12, 30)) / 10;
                let src = self.external();
                let d = self
                    .draft(ts, EventKind::External, src, Party::Customer(b), big)
                    .device(dev)
                    .at((c.lat, c.lon))
                    .typology(typology);
                drafts.push(d);
                let balance = self.balances.get(b).copied().unwrap_or(0) + big;
                let parts = self.rng.between(4, 8);
                for k in 0..parts {
                    ts += self.rng.between(300, 3600);
                    let amount = balance / u128::from(parts);
                    let (kind, ch, mcc) = if k % 3 == 2 {
                        (EventKind::CashWithdrawal, Channel::Atm, 0)
                    } else {
                        (EventKind::CardPayment, Channel::Card, MCC_ELECTRONICS)
                    };
                    let m = self.external();
                    let d = self
                        .draft(ts, kind, Party::Customer(b), m, amount)
                        .channel(ch)
                        .device(dev)
                        .at((c.lat, c.lon))
                        .mcc(mcc)
                        .typology(typology);
                    drafts.push(d);
                }
            }
        }
    }

    fn party_id(&self, p: Party) -> u128 {
        match p {
            Party::Customer(i) => self.customers.get(i).map_or(0, |c| c.account),
            Party::External(id) => id,
        }
    }

    fn simulate_day(&mut self) {
        let start = u64::from(self.day) * SECONDS_PER_DAY;
        let mut drafts = Vec::new();
        self.normal_day(start, &mut drafts);
        let normal = u64::try_from(drafts.len()).unwrap_or(0);
        // The fraud rate is kept over the days when fraud may happen.
        if self.day
            >= self
                .config
                .first_fraud_day
                .min(self.config.days.saturating_sub(1))
        {
            self.fraud_era_normal += normal;
        }
        let rate = self.config.fraud_rate_ppm.min(999_999);
        let target = self.fraud_era_normal * rate / (1_000_000 - rate);
        let mut fraud = self.fraud_events;
        while fraud < target || self.typology_due() {
            let t = self.pick_typology();
            if t == Typology::None {
                break;
            }
            let before = drafts.len();
            self.inject(t, start, &mut drafts);
            let added = drafts
                .iter()
                .skip(before)
                .filter(|d| d.typology != Typology::None)
                .count();
            if drafts.len() == before {
                break;
            }
            fraud += u64::try_from(added).unwrap_or(0);
        }
        drafts.sort_by_key(|d| (d.timestamp, d.seq));
        for d in drafts {
            // Apply in time order; debits never exceed the tracked balance.
            let mut amount = d.amount;
            if let Party::Customer(i) = d.debit {
                let bal = self.balances.get(i).copied().unwrap_or(0);
                amount = amount.min(bal);
            }
            if amount == 0 {
                continue;
            }
            if let Party::Customer(i) = d.debit
                && let Some(b) = self.balances.get_mut(i)
            {
                *b -= amount;
            }
            if let Party::Customer(i) = d.credit
                && let Some(b) = self.balances.get_mut(i)
            {
                *b += amount;
            }
            let is_fraud = d.typology != Typology::None;
            if is_fraud {
                self.fraud_events += 1;
            } else {
                self.normal_events += 1;
            }
            let ev = Event {
                id: self.next_id,
                timestamp: d.timestamp,
                debit: self.party_id(d.debit),
                credit: self.party_id(d.credit),
                kind: d.kind,
                channel: d.channel,
                device: d.device,
                lat: d.lat,
                lon: d.lon,
                merchant_category: d.mcc,
                amount,
                currency: self.config.currency,
                is_fraud,
                typology: d.typology,
            };
            self.next_id += 1;
            self.buffer.push_back(ev);
        }
        self.day += 1;
    }
}

impl Iterator for Simulator {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        while self.buffer.is_empty() {
            if self.day >= self.config.days {
                return None;
            }
            self.simulate_day();
        }
        self.buffer.pop_front()
    }
}

fn branch_centre(branch: u16) -> (i64, i64) {
    (
        45_000_000 + i64::from(branch) * 700_000,
        5_000_000 + i64::from(branch % 7) * 900_000,
    )
}

/// The CSV header line (without newline).
pub const CSV_HEADER: &str = "event_id,timestamp,debit_account,debit_branch,credit_account,credit_branch,kind,channel,device_id,lat_micro,lon_micro,merchant_category,amount_minor,currency,is_fraud,typology";

/// One CSV row (without newline).
pub fn csv_row(e: &Event) -> String {
    let br = |a: u128| branch_of(a).map_or(String::new(), |b| b.to_string());
    let mut s = String::with_capacity(160);
    let _ = write!(
        s,
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
        e.id,
        e.timestamp,
        e.debit,
        br(e.debit),
        e.credit,
        br(e.credit),
        e.kind.name(),
        e.channel.name(),
        e.device,
        e.lat,
        e.lon,
        e.merchant_category,
        e.amount,
        e.currency.alpha,
        u8::from(e.is_fraud),
        e.typology.name()
    );
    s
}

/// Write every event as CSV with a header row; returns the number of rows.
pub fn write_csv<W: std::io::Write>(
    events: impl IntoIterator<Item = Event>,
    out: &mut W,
) -> std::io::Result<u64> {
    writeln!(out, "{CSV_HEADER}")?;
    let mut n = 0;
    for e in events {
        writeln!(out, "{}", csv_row(&e))?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
