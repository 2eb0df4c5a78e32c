//! `corebank risk`: split a labelled CSV, train the gradient-boosted model, evaluate it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use corebank_risk::{Dataset, Model, Params, evaluate, split_stratified};

/// The `risk` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RiskCommand {
    /// Train the supervised model (gradient-boosted trees) on a labelled CSV.
    Train(TrainArgs),
    /// Score a labelled CSV with a model and print AUPRC, ROC-AUC, recall at 1% and
    /// 0.1% false-positive rate, precision at 80% recall and the confusion matrix.
    Eval(EvalArgs),
    /// Split a labelled CSV into train and test files, stratified by the label.
    Split(SplitArgs),
}

/// Arguments of `risk train`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  corebank risk train --data train.csv --label Class --out model.cbr --ignore Time"
)]
pub struct TrainArgs {
    /// The CSV with a header row.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// The label column (0/1).
    #[arg(long, value_name = "COLUMN")]
    pub label: String,
    /// Where to write the model file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Columns to leave out (ids), separated by commas.
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub ignore: Vec<String>,
    /// Seed (training is deterministic; kept for reproducible runs).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Boosting rounds.
    #[arg(long, default_value_t = 200)]
    pub trees: usize,
    /// Maximum depth of a tree.
    #[arg(long, default_value_t = 6)]
    pub max_depth: usize,
    /// Learning rate.
    #[arg(long, default_value = "0.1")]
    pub learning_rate: String,
}

/// Arguments of `risk eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The model file.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The CSV with a header row.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// The label column (0/1).
    #[arg(long, value_name = "COLUMN")]
    pub label: String,
    /// Columns to leave out, separated by commas.
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub ignore: Vec<String>,
    /// Score at or above which a row is flagged (for the confusion matrix).
    #[arg(long, default_value = "0.5")]
    pub threshold: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `risk split`.
#[derive(Debug, clap::Args)]
pub struct SplitArgs {
    /// The CSV with a header row.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// The label column (0/1).
    #[arg(long, value_name = "COLUMN")]
    pub label: String,
    /// Fraction of each class sent to the test file.
    #[arg(long, default_value = "0.3")]
    pub test_fraction: String,
    /// Shuffle seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The train file to write.
    #[arg(long, value_name = "FILE")]
    pub train: PathBuf,
    /// The test file to write.
    #[arg(long, value_name = "FILE")]
    pub test: PathBuf,
}

/// Runs a `risk` subcommand.
pub fn run(command: RiskCommand) -> anyhow::Result<ExitCode> {
    match command {
        RiskCommand::Train(a) => train(a),
        RiskCommand::Eval(a) => eval(a),
        RiskCommand::Split(a) => split(a),
    }
}

fn number(text: &str, what: &str) -> anyhow::Result<f64> {
    text.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .with_context(|| format!("{what}: {text:?} is not a number"))
}

fn train(a: TrainArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let data = Dataset::read(&a.data, &a.label, &a.ignore)?;
    eprintln!(
        "read {} rows x {} features in {:.1?}",
        data.rows.len(),
        data.columns.len(),
        started.elapsed()
    );
    let params = Params {
        trees: a.trees,
        max_depth: a.max_depth,
        learning_rate: number(&a.learning_rate, "--learning-rate")?,
        ..Params::default()
    };
    let names = data.columns.iter().map(|c| c.name.clone()).collect();
    let mut model = Model::train(names, &data.rows, &data.labels, &params, |done, total| {
        if done % 10 == 0 || done == total {
            eprint!("\rtraining: {done}/{total} trees");
        }
    });
    eprintln!();
    model.categories = data.columns.iter().map(|c| c.categories.clone()).collect();
    model.save(&a.out)?;
    eprintln!(
        "wrote {} (seed {}) in {:.1?}",
        a.out.display(),
        a.seed,
        started.elapsed()
    );
    Ok(ExitCode::SUCCESS)
}

fn eval(a: EvalArgs) -> anyhow::Result<ExitCode> {
    let threshold = number(&a.threshold, "--threshold")?;
    let model = Model::load(&a.model)?;
    let data = Dataset::read(&a.data, &a.label, &a.ignore)?;
    // Each model feature: its column in this file and the recoding of categories.
    let mut map = Vec::with_capacity(model.features.len());
    for (k, name) in model.features.iter().enumerate() {
        let j = data
            .columns
            .iter()
            .position(|c| &c.name == name)
            .with_context(|| format!("the model needs column {name:?}, not in the data"))?;
        let recode: Option<Vec<f64>> = match (&data.columns[j].categories, model.categories.get(k))
        {
            (Some(here), Some(Some(trained))) => Some(
                here.iter()
                    .map(|c| {
                        trained.iter().position(|t| t == c).map_or(f64::NAN, |p| {
                            f64::from(u32::try_from(p).unwrap_or(u32::MAX))
                        })
                    })
                    .collect(),
            ),
            _ => None,
        };
        map.push((j, recode));
    }
    let started = Instant::now();
    let mut row = vec![0.0; map.len()];
    let scores: Vec<f64> = data
        .rows
        .iter()
        .map(|r| {
            for (slot, (j, recode)) in row.iter_mut().zip(&map) {
                let x = r[*j];
                *slot = match recode {
                    Some(codes) if !x.is_nan() => format!("{x}")
                        .parse::<usize>()
                        .ok()
                        .and_then(|c| codes.get(c).copied())
                        .unwrap_or(f64::NAN),
                    _ => x,
                };
            }
            model.score(&row)
        })
        .collect();
    let elapsed = started.elapsed();
    let m = evaluate(&scores, &data.labels, threshold);
    let per_row_ns = elapsed.as_nanos() / (scores.len().max(1) as u128);
    if a.json {
        let out = serde_json::json!({
            "rows": scores.len(),
            "positives": m.positives,
            "negatives": m.negatives,
            "auprc": m.auprc,
            "roc_auc": m.roc_auc,
            "recall_at_1pct_fpr": m.recall_at_1pct_fpr,
            "recall_at_01pct_fpr": m.recall_at_01pct_fpr,
            "precision_at_80pct_recall": m.precision_at_80pct_recall,
            "threshold": threshold,
            "confusion": {
                "tp": m.confusion.tp, "fp": m.confusion.fp,
                "tn": m.confusion.tn, "fn": m.confusion.fn_,
            },
            "scoring_ns_per_row": u64::try_from(per_row_ns).unwrap_or(u64::MAX),
        });
        println!("{out}");
    } else {
        println!(
            "rows                      {} ({} positive)",
            scores.len(),
            m.positives
        );
        println!("AUPRC                     {:.4}", m.auprc);
        println!("ROC-AUC                   {:.4}", m.roc_auc);
        println!("recall at 1% FPR          {:.4}", m.recall_at_1pct_fpr);
        println!("recall at 0.1% FPR        {:.4}", m.recall_at_01pct_fpr);
        println!(
            "precision at 80% recall   {:.4}",
            m.precision_at_80pct_recall
        );
        println!("confusion at threshold {threshold}:");
        println!("                 flagged   passed");
        println!(
            "  fraud       {:>10} {:>8}",
            m.confusion.tp, m.confusion.fn_
        );
        println!("  legitimate  {:>10} {:>8}", m.confusion.fp, m.confusion.tn);
        println!("scoring: {per_row_ns} ns per row");
    }
    Ok(ExitCode::SUCCESS)
}

fn split(a: SplitArgs) -> anyhow::Result<ExitCode> {
    let fraction = number(&a.test_fraction, "--test-fraction")?;
    let text = std::fs::read_to_string(&a.data)
        .with_context(|| format!("cannot read {}", a.data.display()))?;
    let data = Dataset::parse(&text, &a.label, &[])?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().unwrap_or_default();
    let body: Vec<&str> = lines.collect();
    let (train, test) = split_stratified(&data.labels, fraction, a.seed);
    for (path, idx) in [(&a.train, &train), (&a.test, &test)] {
        let mut out = String::with_capacity(text.len());
        out.push_str(header);
        out.push('\n');
        for &i in idx {
            out.push_str(body.get(i).copied().unwrap_or_default());
            out.push('\n');
        }
        std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {} rows to {}", idx.len(), path.display());
    }
    Ok(ExitCode::SUCCESS)
}
