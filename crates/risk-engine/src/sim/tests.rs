#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_arithmetic)]
use super::*;

fn small(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        customers: 150,
        days: 20,
        ..SimConfig::default()
    }
}

#[test]
fn candidates_follow_the_events() {
    let config = small(3);
    let mut prev = 0;
    let mut n = 0;
    for (c, e) in candidates(&config) {
        assert_eq!(c.amount, e.amount);
        assert_eq!((c.debit_account, c.credit_account), (e.debit, e.credit));
        assert!(c.timestamp_ns > prev, "timestamps ascend");
        prev = c.timestamp_ns;
        assert_eq!(
            c.timestamp_ns / NS / 86_400,
            SIM_EPOCH_SECS / 86_400 + e.timestamp / 86_400
        );
        if branch_of(e.debit).is_some() {
            assert!(c.debit_available >= c.amount, "event {}", e.id);
            assert!(c.debit_account_created_ns > 0);
        } else {
            assert_eq!(c.debit_account_created_ns, 0);
        }
        n += 1;
    }
    assert!(n > 1_000);
}

#[test]
fn feature_csv_has_header_and_rows() {
    let config = SimConfig {
        customers: 40,
        days: 5,
        ..SimConfig::default()
    };
    let mut out = Vec::new();
    let rows = export_features(&config, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("amount_log10,"));
    assert!(header.ends_with(",is_fraud,typology"));
    let columns = header.split(',').count();
    assert_eq!(columns, FEATURE_NAMES.len() + 2);
    let mut count = 0;
    for line in lines {
        assert_eq!(line.split(',').count(), columns, "{line}");
        count += 1;
    }
    assert_eq!(count, rows);
    // corebank-risk reads it as a dataset, typology ignored.
    let data = corebank_risk::Dataset::parse(&text, "is_fraud", &["typology".to_string()]).unwrap();
    assert_eq!(data.rows.len(), usize::try_from(rows).unwrap());
    assert!(data.labels.iter().any(|&l| l));
}

#[test]
fn typologies_are_caught_at_low_false_positive_rate() {
    let params = Params {
        trees: 60,
        max_depth: 5,
        ..Params::default()
    };
    let report = evaluate_typologies(&small(11), &small(12), &params).unwrap();
    println!("{report}");
    assert!(report.fpr < 0.01, "{report}");
    assert_eq!(report.rows.len(), 7, "{report}");
    // Floors measured on this configuration, with margin (see the crate README).
    assert!(report.auprc >= 0.80, "{report}");
    assert!(
        report.caught as f64 >= 0.90 * report.fraudulent as f64,
        "{report}"
    );
    assert!(report.min_recall() >= 0.70, "{report}");
}
