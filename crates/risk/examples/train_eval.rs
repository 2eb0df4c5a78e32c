//! Trains a model with the default settings on TRAIN and evaluates it on TEST, as
//! `corebank risk train` + `corebank risk eval` do (same library calls), printing the
//! figures and the training time.
//!
//! ```text
//! cargo run --release -p corebank-risk --example train_eval -- TRAIN.csv TEST.csv LABEL supervised|unsupervised
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_arithmetic)]

use corebank_risk::{AnomalyModel, AnomalyParams, Dataset, Model, Params, Scorer, evaluate};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let train = Dataset::read(args[1].as_ref(), &args[3], &[]).unwrap();
    let test = Dataset::read(args[2].as_ref(), &args[3], &[]).unwrap();
    let names: Vec<String> = train.columns.iter().map(|c| c.name.clone()).collect();
    let t = Instant::now();
    let model: Box<dyn Scorer> = if args[4] == "supervised" {
        Box::new(Model::train(
            names,
            &train.rows,
            &train.labels,
            &Params::default(),
            |_, _| {},
        ))
    } else {
        Box::new(AnomalyModel::train(
            names,
            &train.rows,
            &AnomalyParams::default(),
            |_, _| {},
        ))
    };
    let secs = t.elapsed().as_secs_f64();
    let scores: Vec<f64> = test.rows.iter().map(|r| model.score(r)).collect();
    let m = evaluate(&scores, &test.labels, 0.5);
    println!(
        "{}: auprc {:.4} roc_auc {:.4} recall@1%fpr {:.4} recall@0.1%fpr {:.4} precision@80%recall {:.4} training {secs:.1}s",
        args[4],
        m.auprc,
        m.roc_auc,
        m.recall_at_1pct_fpr,
        m.recall_at_01pct_fpr,
        m.precision_at_80pct_recall
    );
}
