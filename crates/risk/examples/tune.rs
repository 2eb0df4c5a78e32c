//! Hyper-parameter selection by repeated hold-out validation carved from a TRAIN file
//! only (the test file is never read here).
//!
//! ```text
//! cargo run --release -p corebank-risk --example tune -- TRAIN.csv LABEL SPLITS \
//!     'sup:trees=400,lr=0.05,bins=255' 'unsup:bins=20,wd=1,wh=1' ...
//! ```
//! For each configuration: mean (and each) validation AUPRC, recall at 1% FPR over
//! SPLITS stratified 70/30 splits of TRAIN (seeds 1..=SPLITS, shifted by the
//! environment variable SPLIT_OFFSET).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_arithmetic)]

use corebank_risk::{
    AnomalyModel, AnomalyParams, Dataset, Model, Params, evaluate, split_stratified,
};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let data = Dataset::read(args[1].as_ref(), &args[2], &[]).unwrap();
    let splits: u64 = args[3].parse().unwrap();
    let names: Vec<String> = data.columns.iter().map(|c| c.name.clone()).collect();
    for cfg in &args[4..] {
        let (kind, kv) = cfg.split_once(':').unwrap_or((cfg, ""));
        let mut p = Params::default();
        let mut a = AnomalyParams::default();
        let mut aug = false;
        for item in kv.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').unwrap();
            let x: f64 = v.parse().unwrap();
            let u = v.parse::<usize>().unwrap_or(0);
            match k {
                "trees" => p.trees = u,
                "depth" => p.max_depth = u,
                "lr" => p.learning_rate = x,
                "lambda" => p.lambda = x,
                "mcw" => p.min_child_weight = x,
                "bins" => {
                    p.max_bins = u;
                    a.hbos_bins = u;
                }
                "sub" => p.subsample = x,
                "col" => p.colsample = x,
                "spw" => p.scale_pos_weight = x,
                "ens" => p.ensemble = u,
                "mds" => p.max_delta_step = x,
                "core" => a.core_fraction = x,
                "aug" => aug = u == 1,
                "steps" => a.core_steps = u,
                "ridge" => a.ridge = x,
                "wd" => a.weight_distance = x,
                "wh" => a.weight_hbos = x,
                _ => panic!("unknown key {k}"),
            }
        }
        let (mut sa, mut sr, mut sr01, mut secs) = (0.0, 0.0, 0.0, 0.0);
        let mut each = Vec::new();
        let offset: u64 = std::env::var("SPLIT_OFFSET")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        for s in offset + 1..=offset + splits {
            let (tr, va) = split_stratified(&data.labels, 0.3, s);
            let mut train = data.subset(&tr);
            let mut val = data.subset(&va);
            let mut names = names.clone();
            if aug {
                let an = AnomalyModel::train(names.clone(), &train.rows, &a, |_, _| {});
                for r in train.rows.iter_mut().chain(val.rows.iter_mut()) {
                    let s = an.raw_score(r).ln_1p();
                    r.push(s);
                }
                names.push("anomaly".into());
            }
            let t0 = Instant::now();
            let scores: Vec<f64> = if kind == "sup" {
                let m = Model::train(names.clone(), &train.rows, &train.labels, &p, |_, _| {});
                val.rows.iter().map(|r| m.score(r)).collect()
            } else {
                let m = AnomalyModel::train(names.clone(), &train.rows, &a, |_, _| {});
                val.rows.iter().map(|r| m.score(r)).collect()
            };
            secs += t0.elapsed().as_secs_f64();
            let m = evaluate(&scores, &val.labels, 0.5);
            sa += m.auprc;
            sr += m.recall_at_1pct_fpr;
            sr01 += m.recall_at_01pct_fpr;
            each.push(format!("{:.4}", m.auprc));
        }
        let k = splits as f64;
        println!(
            "{cfg}: auprc {:.4} rec1 {:.4} rec01 {:.4} [{}] {:.1}s/fit",
            sa / k,
            sr / k,
            sr01 / k,
            each.join(" "),
            secs / k
        );
    }
}
