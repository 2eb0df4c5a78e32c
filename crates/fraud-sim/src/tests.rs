use super::*;
use std::collections::HashMap;

fn csv(config: SimConfig) -> Vec<u8> {
    let mut out = Vec::new();
    assert!(write_csv(Simulator::new(config), &mut out).is_ok());
    out
}

#[test]
fn same_seed_same_bytes() {
    let a = csv(SimConfig::default());
    let b = csv(SimConfig::default());
    assert_eq!(a, b);
    let c = csv(SimConfig {
        seed: 2,
        ..SimConfig::default()
    });
    assert_ne!(a, c);
}

#[test]
fn every_typology_appears_and_is_labelled() {
    let events: Vec<Event> = Simulator::new(SimConfig::default()).collect();
    for t in Typology::FRAUD {
        assert!(
            events.iter().any(|e| e.typology == t && e.is_fraud),
            "{t:?} missing"
        );
    }
    assert!(
        events
            .iter()
            .all(|e| e.is_fraud == (e.typology != Typology::None))
    );
}

#[test]
fn fraud_rate_near_configured() {
    let config = SimConfig {
        fraud_rate_ppm: 20_000,
        ..SimConfig::default()
    };
    let events: Vec<Event> = Simulator::new(config).collect();
    let fraud = events.iter().filter(|e| e.is_fraud).count();
    let ppm = fraud * 1_000_000 / events.len();
    assert!((12_000..=30_000).contains(&ppm), "fraud rate {ppm} ppm");
}

#[test]
fn amounts_positive_and_timestamps_ordered() {
    let events: Vec<Event> = Simulator::new(SimConfig::default()).collect();
    assert!(events.iter().all(|e| e.amount > 0));
    assert!(events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
}

#[test]
fn csv_header_and_rows() {
    let config = SimConfig {
        days: 5,
        ..SimConfig::default()
    };
    let count = Simulator::new(config.clone()).count();
    let text = String::from_utf8(csv(config)).unwrap_or_default();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER));
    assert_eq!(lines.count(), count);
    assert!(CSV_HEADER.contains("is_fraud") && CSV_HEADER.contains("typology"));
}

#[test]
fn no_debit_beyond_tracked_balance() {
    let sim = Simulator::new(SimConfig::default());
    let mut balances: HashMap<u128, u128> = sim
        .customers()
        .iter()
        .enumerate()
        .map(|(i, c)| (c.account, sim.balance(i).unwrap_or(0)))
        .collect();
    let mut sim = sim;
    for e in sim.by_ref() {
        if let Some(b) = balances.get_mut(&e.debit) {
            assert!(*b >= e.amount, "overdraw by event {}", e.id);
            *b -= e.amount;
        }
        if let Some(b) = balances.get_mut(&e.credit) {
            *b += e.amount;
        }
    }
    let final_sim_balances: Vec<u128> = (0..sim.customers().len())
        .filter_map(|i| sim.balance(i))
        .collect();
    for (i, c) in sim.customers().iter().enumerate() {
        assert_eq!(
            balances.get(&c.account).copied(),
            final_sim_balances.get(i).copied()
        );
    }
}

#[test]
fn account_ids_use_branch_and_serial() {
    let sim = Simulator::new(SimConfig::default());
    for c in sim.customers() {
        assert_eq!(branch_of(c.account), Some(c.branch));
        assert!(c.account % 10_000_000_000 >= 1_000);
    }
}

#[test]
#[ignore = "prints a sample for the report"]
fn print_sample() {
    let events: Vec<Event> = Simulator::new(SimConfig::default()).collect();
    let fraud = events.iter().filter(|e| e.is_fraud).count();
    println!("events {} fraud {}", events.len(), fraud);
    for t in Typology::FRAUD {
        println!(
            "{} {}",
            t.name(),
            events.iter().filter(|e| e.typology == t).count()
        );
    }
    let mut out = Vec::new();
    let _ = write_csv(events.into_iter().take(4), &mut out);
    println!("{}", String::from_utf8_lossy(&out));
}

#[test]
fn incidents_are_spread_over_the_period() {
    let config = SimConfig {
        days: 60,
        ..SimConfig::default()
    };
    let sim = Simulator::new(config.clone());
    let firsts: Vec<u32> = Typology::FRAUD
        .iter()
        .map(|&t| sim.first_day_of(t))
        .collect();
    let events: Vec<Event> = sim.collect();
    let day = |e: &Event| u32::try_from(e.timestamp / 86_400).unwrap_or(0);
    // No fraud during the first days: victims have history first.
    assert!(
        events
            .iter()
            .filter(|e| e.is_fraud)
            .all(|e| day(e) >= config.first_fraud_day)
    );
    let mut first_days = Vec::new();
    for (t, first) in Typology::FRAUD.iter().zip(&firsts) {
        let seen = events
            .iter()
            .filter(|e| e.typology == *t)
            .map(day)
            .min()
            .unwrap_or(u32::MAX);
        assert_eq!(
            seen, *first,
            "{t:?} first seen on day {seen}, planned {first}"
        );
        first_days.push(seen);
        // Each typology recurs after its first day: in both halves of its span.
        let last = events
            .iter()
            .filter(|e| e.typology == *t)
            .map(day)
            .max()
            .unwrap_or(0);
        assert!(last >= 40, "{t:?} last seen on day {last}");
    }
    first_days.sort_unstable();
    first_days.dedup();
    assert!(first_days.len() >= 6, "first days {first_days:?}");
    assert!(
        first_days.last().copied().unwrap_or(0) >= 20,
        "{first_days:?}"
    );
}

#[test]
fn normal_traffic_has_realistic_noise() {
    let events: Vec<Event> = Simulator::new(SimConfig {
        customers: 300,
        days: 30,
        ..SimConfig::default()
    })
    .collect();
    let normal = || events.iter().filter(|e| !e.is_fraud);
    // Night payments, tiny payments, new devices and electronics purchases happen to
    // normal customers too.
    assert!(normal().any(|e| e.timestamp % 86_400 < 6 * 3_600));
    assert!(normal().any(|e| e.amount <= 200));
    assert!(normal().any(|e| e.device >= 0x8000_0000_0000_0000));
    assert!(normal().any(|e| e.merchant_category == 5732 && e.amount >= 30_000));
}
