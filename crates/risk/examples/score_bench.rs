//! Scoring cost of a model file on the rows of a CSV: mean, p50 and p99 per call of
//! `score` and of `score_explained_into` (top 3 reasons, reused output buffer).
//!
//! ```text
//! cargo run --release -p corebank-risk --example score_bench -- MODEL.cbr DATA.csv LABEL
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_arithmetic)]

use corebank_risk::{Dataset, RiskModel, Scorer};
use std::time::Instant;

fn report(what: &str, mut ns: Vec<u64>) {
    ns.sort_unstable();
    let n = ns.len().max(1);
    let mean = ns.iter().sum::<u64>() as f64 / n as f64;
    println!(
        "{what}: mean {mean:.0} ns, p50 {} ns, p99 {} ns ({n} rows)",
        ns[n / 2],
        ns[n * 99 / 100]
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = RiskModel::load(args[1].as_ref()).unwrap();
    let data = Dataset::read(args[2].as_ref(), &args[3], &[]).unwrap();
    let rows: Vec<&Vec<f64>> = data.rows.iter().take(50_000).collect();
    let mut sink = 0.0;
    let mut ns = Vec::with_capacity(rows.len());
    for r in &rows {
        let t = Instant::now();
        sink += model.score(r);
        ns.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    report(&format!("{} score", model.kind()), ns);
    let mut out = Vec::with_capacity(model.features().len());
    let mut ns = Vec::with_capacity(rows.len());
    for r in &rows {
        let t = Instant::now();
        sink += model.score_explained_into(r, 3, &mut out);
        ns.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    report(&format!("{} score_explained_into(k=3)", model.kind()), ns);
    eprintln!("(checksum {sink:.3})");
}
