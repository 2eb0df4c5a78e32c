//! Per-transfer screening latency of the risk engine with a 200-tree model.
//!
//! `cargo run --release -p corebank-risk-engine --example screen_latency [customers] [days]`
//!
//! Trains the supervised model on one simulated month (seed 1), then screens another
//! (seed 2) one transfer at a time (`screen` then `committed`, as a branch does), timing
//! each call; prints percentiles.

// Timing statistics only.
#![allow(clippy::float_arithmetic)]

use corebank_fraud_sim::SimConfig;
use corebank_risk::{Model, Params};
use corebank_risk_engine::sim::{candidates, feature_rows};
use corebank_risk_engine::{Engine, EngineConfig, FEATURE_COUNT, FEATURE_NAMES};
use corebank_screening::Screener;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    let i = (sorted.len().saturating_sub(1)) * per_mille / 1_000;
    sorted.get(i).copied().unwrap_or_default()
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    println!(
        "{name:<10} n={} p50={:?} p90={:?} p99={:?} p99.9={:?} max={:?}",
        samples.len(),
        percentile(&samples, 500),
        percentile(&samples, 900),
        percentile(&samples, 990),
        percentile(&samples, 999),
        samples.last().copied().unwrap_or_default()
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let customers: u32 = args.next().map_or(Ok(1_000), |s| s.parse())?;
    let days: u32 = args.next().map_or(Ok(30), |s| s.parse())?;
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
    let rows = feature_rows(&train);
    let labels: Vec<bool> = rows.iter().map(|r| r.1).collect();
    let x: Vec<Vec<f64>> = rows.iter().map(|r| r.0.to_vec()).collect();
    let params = Params::default();
    let t = Instant::now();
    let names = FEATURE_NAMES.iter().map(|s| s.to_string()).collect();
    let model = Model::train(names, &x, &labels, &params, |_, _| {});
    println!(
        "trained {} trees on {} rows x {FEATURE_COUNT} features in {:?}",
        params.trees,
        x.len(),
        t.elapsed()
    );
    let engine = Engine::new(EngineConfig {
        reporting_threshold: test.reporting_threshold,
        ..EngineConfig::default()
    })?;
    engine.set_model(model)?;
    let all: Vec<_> = candidates(&test).map(|(c, _)| c).collect();
    let mut screen = Vec::with_capacity(all.len());
    let mut committed = Vec::with_capacity(all.len());
    let mut out = Vec::with_capacity(1);
    for c in &all {
        out.clear();
        let t = Instant::now();
        engine.screen(std::slice::from_ref(c), &mut out)?;
        screen.push(t.elapsed());
        let t = Instant::now();
        engine.committed(std::slice::from_ref(c));
        committed.push(t.elapsed());
    }
    report("screen", screen);
    report("committed", committed);
    // Batches of 64, per transfer.
    let engine2 = Engine::new(EngineConfig::default())?;
    let mut per = Vec::new();
    for chunk in all.chunks(64) {
        out.clear();
        let t = Instant::now();
        engine2.screen(chunk, &mut out)?;
        let n = u32::try_from(chunk.len()).unwrap_or(1).max(1);
        per.push(t.elapsed() / n);
        engine2.committed(chunk);
    }
    report("batch64/tx (no model)", per);
    println!("{:?}", engine.stats());
    Ok(())
}
