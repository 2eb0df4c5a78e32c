#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const MIN_NS: u64 = 60 * 1_000_000_000;
const T0: u64 = 1_700_000_000 * 1_000_000_000;

fn account(branch: u128, serial: u128) -> u128 {
    branch * SERIALS_PER_BRANCH + serial
}

fn clearing(own: u128, other: u128) -> u128 {
    account(own, u128::from(CLEARING_SERIAL_BASE) + other * 100 + 1)
}

/// Branch 1's cash account (serial 101).
const CASH_1: u128 = SERIALS_PER_BRANCH + 101;

struct Feed {
    detector: MuleDetector,
    next_id: u128,
    found: Vec<Detection>,
}

impl Feed {
    fn new() -> Self {
        Self {
            detector: MuleDetector::new(DetectorConfig::default()),
            next_id: 1,
            found: Vec::new(),
        }
    }

    fn send(&mut self, t: CommittedTransfer) {
        self.next_id += 1;
        let t = CommittedTransfer {
            id: self.next_id,
            ..t
        };
        self.found.extend(self.detector.observe(&t));
    }

    /// A payment inside one branch.
    fn pay(&mut self, at: u64, from: u128, to: u128, amount: u128) {
        self.send(CommittedTransfer {
            branch: branch_of(from),
            timestamp_ns: at,
            debit: from,
            credit: to,
            amount,
            ledger: 978,
            code: transfer_code::PAYMENT,
            ..CommittedTransfer::default()
        });
    }

    /// A cross-branch payment as the two branches' streams show it: the reservation
    /// at the source, its post, and the delivery at the destination.
    fn pay_across(&mut self, at: u64, from: u128, to: u128, amount: u128) {
        let (a, b) = (u128::from(branch_of(from)), u128::from(branch_of(to)));
        let out = CommittedTransfer {
            branch: branch_of(from),
            timestamp_ns: at,
            debit: from,
            credit: clearing(a, b),
            amount,
            ledger: 978,
            code: transfer_code::CROSS_BRANCH_OUT,
            flags: FLAG_PENDING,
            user_data_128: to,
            user_data_32: u32::try_from(b).unwrap(),
            ..CommittedTransfer::default()
        };
        self.send(out);
        self.send(CommittedTransfer {
            branch: branch_of(to),
            timestamp_ns: at + 1_000,
            debit: clearing(b, a),
            credit: to,
            code: transfer_code::CROSS_BRANCH_IN,
            flags: 0,
            user_data_128: from,
            user_data_32: u32::try_from(a).unwrap(),
            ..out
        });
        self.send(CommittedTransfer {
            timestamp_ns: at + 2_000,
            flags: FLAG_POST,
            user_data_128: 0,
            ..out
        });
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.found.iter().map(|d| d.kind).collect()
    }
}

#[test]
fn clearing_legs_map_to_the_real_parties() {
    let (a, b) = (account(1, 1_000), account(2, 1_000));
    let out = CommittedTransfer {
        branch: 1,
        debit: a,
        credit: clearing(1, 2),
        amount: 500,
        code: transfer_code::CROSS_BRANCH_OUT,
        flags: FLAG_PENDING,
        user_data_128: b,
        user_data_32: 2,
        ..CommittedTransfer::default()
    };
    let m = out.movement().unwrap();
    assert_eq!(
        (m.payer, m.payee, m.payee_branch, m.sides),
        (a, b, 2, Sides::PayerOnly)
    );
    let post = CommittedTransfer {
        flags: FLAG_POST,
        ..out
    };
    assert_eq!(post.movement(), None, "counted once, at the reservation");
    let delivery = CommittedTransfer {
        branch: 2,
        debit: clearing(2, 1),
        credit: b,
        code: transfer_code::CROSS_BRANCH_IN,
        flags: 0,
        user_data_128: a,
        user_data_32: 1,
        ..out
    };
    let m = delivery.movement().unwrap();
    assert_eq!(
        (m.payer, m.payer_branch, m.payee, m.sides),
        (a, 1, b, Sides::PayeeOnly)
    );
    // Held (pending) payments move nothing until posted; voids never.
    let held = CommittedTransfer {
        code: transfer_code::PAYMENT,
        flags: FLAG_PENDING,
        ..out
    };
    assert_eq!(held.movement(), None);
    let void = CommittedTransfer {
        code: transfer_code::PAYMENT,
        flags: FLAG_VOID,
        ..out
    };
    assert_eq!(void.movement(), None);
    assert!(is_clearing(clearing(1, 2)) && !is_customer(clearing(1, 2)));
    assert!(!is_customer(CASH_1) && is_customer(a));
}

#[test]
fn a_ring_across_two_branches_is_flagged() {
    let mut feed = Feed::new();
    // Branch 1: mule A collects from three victims (two of them on branch 3).
    let mule_a = account(1, 5_000);
    let mule_b = account(2, 6_000);
    let cash_out = account(2, 7_000);
    let victims = [account(1, 1_001), account(3, 1_002), account(3, 1_003)];
    for (i, v) in victims.iter().enumerate() {
        let at = T0 + (i as u64) * 20 * MIN_NS;
        if branch_of(*v) == 1 {
            feed.pay(at, *v, mule_a, 40_000);
        } else {
            feed.pay_across(at, *v, mule_a, 40_000);
        }
    }
    assert!(feed.found.is_empty(), "fan-in alone is not a mule");
    let f = feed.detector.features(mule_a, T0 + 60 * MIN_NS);
    assert_eq!(
        (f.distinct_payers, f.distinct_payer_branches, f.money_in),
        (3, 2, 120_000)
    );
    // A forwards most of it to B on branch 2 within the hour.
    feed.pay_across(T0 + 90 * MIN_NS, mule_a, mule_b, 110_000);
    assert_eq!(feed.kinds(), ["mule_account"]);
    assert_eq!(feed.found[0].accounts, [mule_a]);
    assert_eq!(feed.found[0].payers.len(), 3);
    // B also collects from two others and sends it all out: B is a mule, and the
    // chain A → B is a ring spanning branches 1 and 2.
    feed.pay(T0 + 100 * MIN_NS, account(2, 1_010), mule_b, 30_000);
    feed.pay(T0 + 110 * MIN_NS, account(2, 1_011), mule_b, 30_000);
    feed.pay(T0 + 150 * MIN_NS, mule_b, cash_out, 160_000);
    assert_eq!(feed.kinds(), ["mule_account", "mule_account", "mule_ring"]);
    let ring = feed.found.last().unwrap();
    assert_eq!(ring.accounts, [mule_a, mule_b]);
    assert_eq!(ring.branches, [1, 2]);
    // Nothing is reported twice.
    feed.pay(T0 + 160 * MIN_NS, mule_b, cash_out, 100);
    assert_eq!(feed.found.len(), 3);
    // The clearing accounts never are.
    assert!(
        feed.found
            .iter()
            .all(|d| d.accounts.iter().all(|a| is_customer(*a)))
    );
}

#[test]
fn a_ring_of_three_reports_the_whole_chain() {
    let mut feed = Feed::new();
    let mules = [account(1, 5_000), account(2, 5_000), account(1, 5_001)];
    let mut at = T0;
    for (k, mule) in mules.iter().enumerate() {
        for p in 0..3u128 {
            at += MIN_NS;
            feed.pay(at, account(3, 2_000 + 10 * k as u128 + p), *mule, 10_000);
        }
    }
    for (pair, amount) in mules.windows(2).zip([25_000, 45_000]) {
        at += MIN_NS;
        feed.pay_across(at, pair[0], pair[1], amount);
    }
    at += MIN_NS;
    feed.pay(at, mules[2], account(1, 9_999), 60_000);
    let rings: Vec<&Detection> = feed
        .found
        .iter()
        .filter(|d| d.kind == "mule_ring")
        .collect();
    let longest = rings.iter().map(|d| d.accounts.len()).max().unwrap();
    assert_eq!(longest, 3, "{:?}", feed.found);
    assert!(rings.iter().any(|d| d.accounts == mules));
}

#[test]
fn salaries_rent_and_bills_are_not_flagged() {
    let mut feed = Feed::new();
    let employer = account(1, 1_000);
    let landlord = account(2, 1_500);
    let utility = account(1, 1_600);
    let staff: Vec<u128> = (0..20).map(|i| account(1 + (i % 2), 3_000 + i)).collect();
    for month in 0..3u64 {
        let payday = T0 + month * 30 * 24 * 60 * MIN_NS;
        for (i, person) in staff.iter().enumerate() {
            let at = payday + i as u64 * MIN_NS;
            if branch_of(*person) == 1 {
                feed.pay(at, employer, *person, 300_000);
            } else {
                feed.pay_across(at, employer, *person, 300_000);
            }
            // Rent goes to one landlord (fan-in from many tenants, across branches),
            // bills to the utility, the same day.
            let rent_at = at + 30 * MIN_NS;
            if branch_of(*person) == 2 {
                feed.pay(rent_at, *person, landlord, 90_000);
            } else {
                feed.pay_across(rent_at, *person, landlord, 90_000);
            }
            feed.pay(rent_at + MIN_NS, *person, utility, 8_000);
            // Cash withdrawals go to the branch's cash account.
            feed.pay(rent_at + 2 * MIN_NS, *person, CASH_1, 20_000);
        }
        // The landlord pays a contractor a small part of the rent.
        feed.pay(
            payday + 5 * 60 * MIN_NS,
            landlord,
            account(2, 8_000),
            100_000,
        );
        // The employer is funded by one client, then pays salaries (one payer).
        feed.pay(payday + 10 * MIN_NS, account(1, 8_500), employer, 6_000_000);
    }
    assert!(feed.found.is_empty(), "{:?}", feed.found);
    let f = feed
        .detector
        .features(landlord, T0 + 2 * 30 * 24 * 60 * MIN_NS + 2 * 60 * MIN_NS);
    assert!(
        f.distinct_payers >= 3 && f.distinct_payer_branches == 2,
        "{f:?}"
    );
}

#[test]
fn memory_stays_bounded() {
    let mut detector = MuleDetector::new(DetectorConfig {
        max_accounts: 1_000,
        max_movements: 8,
        ..DetectorConfig::default()
    });
    for i in 0..20_000u128 {
        let t = CommittedTransfer {
            branch: 1,
            timestamp_ns: T0 + u64::try_from(i).unwrap() * MIN_NS,
            id: i + 1,
            debit: account(1, 1_000 + i),
            credit: account(1, 1_000 + (i * 7919) % 20_000),
            amount: 100,
            code: transfer_code::PAYMENT,
            ..CommittedTransfer::default()
        };
        detector.observe(&t);
        assert!(detector.tracked_accounts() <= 1_001);
    }
    assert!(
        detector
            .accounts
            .values()
            .all(|a| a.inflows.len() <= 8 && a.outflows.len() <= 8)
    );
    assert_eq!(detector.movements(), 20_000);
}
