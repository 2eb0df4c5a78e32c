//! Per-typology recall of the full engine at under 1% false-positive rate.
//!
//! `cargo run --release -p corebank-risk-engine --example typologies [customers] [days] [--export FILE]`
//!
//! Trains on seed 1, tests on seed 2 (same size). `--export FILE` also writes the
//! training features as CSV (for `corebank risk train --data FILE --label is_fraud
//! --ignore typology`).

use corebank_fraud_sim::SimConfig;
use corebank_risk::Params;
use corebank_risk_engine::{evaluate_typologies, export_features};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut numbers = args.iter().take_while(|a| !a.starts_with("--"));
    let customers: u32 = numbers.next().map_or(Ok(1_000), |s| s.parse())?;
    let days: u32 = numbers.next().map_or(Ok(60), |s| s.parse())?;
    let train = SimConfig {
        seed: 1,
        customers,
        days,
        ..SimConfig::default()
    };
    let test = SimConfig {
        seed: 2,
        ..train.clone()
    };
    if let Some(i) = args.iter().position(|a| a == "--export") {
        let path = args.get(i + 1).ok_or("--export needs a file")?;
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        let n = export_features(&train, &mut out)?;
        println!("wrote {n} rows to {path}");
    }
    let t = Instant::now();
    let report = evaluate_typologies(&train, &test, &Params::default())?;
    println!("customers {customers}, days {days}, {:?}", t.elapsed());
    print!("{report}");
    Ok(())
}
